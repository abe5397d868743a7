#include "alloc.h"
#include <stdlib.h>
#include "context.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#endif

size_t bg_alloc_rounded(size_t bytes)
{
    if (bytes == 0) bytes = 1;
    return (bytes + BG_ALLOC_ALIGN - 1) / BG_ALLOC_ALIGN * BG_ALLOC_ALIGN;
}

int bg_alloc(bg_ctx *ctx, int device, size_t bytes, const char *what, void **out)
{
    *out = NULL;
    if (device < 0 || device >= BG_NDEVICES)
        return bg_fail(ctx, BG_ERR_ARG, "allocation for '%s': unknown device %d", what, device);
    bg_allocator *a = &ctx->alloc[device];
    size_t r = bg_alloc_rounded(bytes);
    if (r < bytes) return bg_fail(ctx, BG_ERR_OOM, "allocation for '%s': %zu bytes overflows", what, bytes);
    if (a->cap && (r > a->cap || a->in_use > a->cap - r))
        return bg_fail(ctx, BG_ERR_OOM,
                       "allocation of %zu bytes for '%s' on %s exceeds the memory cap: %zu in use + %zu > cap %zu",
                       bytes, what, bg_device_name((bg_device)device), a->in_use, r, a->cap);
    void *p = NULL;
    if (device == BG_CPU) {
        p = aligned_alloc(BG_ALLOC_ALIGN, r);
        if (!p) return bg_fail(ctx, BG_ERR_OOM, "allocation of %zu bytes for '%s' on cpu failed", bytes, what);
    } else {
#ifdef BG_WITH_CUDA
        char err[200];
        if (bg_cuda_malloc(&p, r, err, sizeof err))
            return bg_fail(ctx, BG_ERR_OOM, "allocation of %zu bytes for '%s' on cuda failed: %s", bytes, what, err);
#else
        return bg_fail(ctx, BG_ERR_UNSUPPORTED, "allocation for '%s' on cuda: this build has no CUDA", what);
#endif
    }
    a->in_use += r;
    a->n_alloc++;
    if (a->in_use > a->peak) a->peak = a->in_use;
    *out = p;
    return BG_OK;
}

void bg_free(bg_ctx *ctx, int device, void *p, size_t bytes)
{
    if (!p) return;
    bg_allocator *a = &ctx->alloc[device];
    size_t r = bg_alloc_rounded(bytes);
    a->in_use -= r <= a->in_use ? r : a->in_use;
    a->n_alloc--;
    if (device == BG_CPU) free(p);
#ifdef BG_WITH_CUDA
    else bg_cuda_free(p);
#endif
}

void bg_alloc_set_cap(bg_ctx *ctx, int device, size_t cap) { ctx->alloc[device].cap = cap; }
void bg_alloc_reset_peak(bg_ctx *ctx, int device) { ctx->alloc[device].peak = ctx->alloc[device].in_use; }
