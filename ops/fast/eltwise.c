/* The fast CPU backend's elementwise ops (relu): f32 only (anything else is
 * declined to the reference), chunks across threads, the per-ISA loop from
 * kernels/cpu/isa/eltwise.c on each chunk. */
#include "fast.h"
#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/parallel.h"

BG_ISA_DECL(void, bg_k_relu_fwd, (const float *x, float *y, int64_t n))
BG_ISA_DECL(void, bg_k_relu_bwd, (const float *x, const float *dy, float *dx, int64_t n, int store))

bg_status bg_fast_relu_fwd(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    if (x->dtype != BG_F32) return BG_ERR_UNSUPPORTED;
    void (*k)(const float *, float *, int64_t) = BG_ISA_PICK(ctx->cpu_isa, bg_k_relu_fwd);
    const float *xp = x->data;
    float *yp = n->out[0]->data;
    const int64_t cnt = bg_numel(x);
    const int chunks = bg_cpu_chunks(cnt, BG_CPU_GRAIN);
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
    for (int c = 0; c < chunks; c++) {
        int64_t lo, hi;
        bg_cpu_chunk(cnt, chunks, c, 16, &lo, &hi);
        k(xp + lo, yp + lo, hi - lo);
    }
    return BG_OK;
}

bg_status bg_fast_relu_bwd(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (x->dtype != BG_F32) return BG_ERR_UNSUPPORTED;
    if (!x->grad || !dy) return BG_OK;
    void (*k)(const float *, const float *, float *, int64_t, int) = BG_ISA_PICK(ctx->cpu_isa, bg_k_relu_bwd);
    const float *xp = x->data, *dyp = dy->data;
    float *dxp = x->grad->data;
    const int64_t cnt = bg_numel(x);
    const int chunks = bg_cpu_chunks(cnt, BG_CPU_GRAIN);
    const int store = n->grad_fresh & 1;
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
    for (int c = 0; c < chunks; c++) {
        int64_t lo, hi;
        bg_cpu_chunk(cnt, chunks, c, 16, &lo, &hi);
        k(xp + lo, dyp + lo, dxp + lo, hi - lo, store);
    }
    n->grad_fresh &= (unsigned char)~1u;
    return BG_OK;
}
