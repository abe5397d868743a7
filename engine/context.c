#include "context.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#endif

const char *bg_device_name(bg_device d) { return d == BG_CUDA ? "cuda" : d == BG_CPU ? "cpu" : "invalid"; }

int bg_cuda_available(void)
{
#ifdef BG_WITH_CUDA
    return bg_cuda_device_count() > 0;
#else
    return 0;
#endif
}

bg_status bg_ctx_init(bg_ctx *ctx, bg_device device, uint64_t seed)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->device = BG_CPU;
    ctx->seed = seed;
    ctx->deterministic = true;
    ctx->cpu_backend = BG_CPU_FAST;
    ctx->cpu_isa = bg_cpu_isa_best();
    bg_status cs = bg_ctx_set_cpu(ctx, getenv("BUDGIE_CPU"), getenv("BUDGIE_CPU_ISA"), "BUDGIE_CPU", "BUDGIE_CPU_ISA");
    if (cs) return cs;
    if (device == BG_CPU) return BG_OK;
    if (device != BG_CUDA) return bg_fail(ctx, BG_ERR_ARG, "unknown device %d", (int)device);
#ifdef BG_WITH_CUDA
    if (bg_cuda_device_count() <= 0)
        return bg_fail(ctx, BG_ERR_UNSUPPORTED, "no CUDA device is present");
    char err[256];
    if (bg_cuda_stream_create(&ctx->stream, err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "%s", err);
    ctx->device = BG_CUDA;
    return BG_OK;
#else
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "this build has no CUDA (nvcc was not found at build time)");
#endif
}

void bg_ctx_free(bg_ctx *ctx)
{
    /* cached device blocks belong to this context: give them back */
    for (int d = 0; d < BG_NDEVICES; d++) bg_alloc_trim(ctx, d);
#ifdef BG_WITH_CUDA
    bg_cuda_stream_destroy(ctx->stream);
#endif
    ctx->stream = NULL;
}

bg_status bg_fail(bg_ctx *ctx, bg_status code, const char *fmt, ...)
{
    if (!ctx) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    ctx->status = code;
    return code;
}

const char *bg_errmsg(const bg_ctx *ctx) { return ctx->status == BG_OK ? "" : ctx->err; }

void bg_clear_error(bg_ctx *ctx)
{
    ctx->status = BG_OK;
    ctx->err[0] = 0;
}

uint64_t bg_rng_take(bg_ctx *ctx, uint64_t nblocks)
{
    uint64_t first = ctx->rng_offset;
    ctx->rng_offset += nblocks;
    return first;
}
