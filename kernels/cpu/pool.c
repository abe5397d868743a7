/* The fast CPU backend's global_avgpool (ops/pool.c has the math): f32
 * only, anything else declined to the reference. One image per thread, as
 * the reference: no sums shared between threads. The backward divides dy by
 * P once per channel instead of once per element. */
#include <stdlib.h>
#include "fast.h"
#include "dispatch.h"
#include "parallel.h"

BG_ISA_DECL(void, bg_k_gap_fwd_image, (const float *x, float *y, int64_t p, int64_t c))
BG_ISA_DECL(void, bg_k_gap_bwd_image, (const float *g, float *dx, int64_t p, int64_t c))

static bool f32_dense(const bg_tensor *t) { return t && t->dtype == BG_F32 && bg_is_contiguous(t); }

/* x {N, H, W, C}: nn images of p rows of c channels. */
static bool geometry(const bg_node *n, int64_t *nn, int64_t *p, int64_t *c)
{
    const bg_tensor *x = n->in[0];
    if (x->ndim != 4 || !f32_dense(x) || !f32_dense(n->out[0])) return false;
    *nn = x->shape[0], *p = x->shape[1] * x->shape[2], *c = x->shape[3];
    return *nn > 0 && *p > 0 && *c > 0;
}

static int image_threads(int64_t nn, int64_t p, int64_t c)
{
    int t = bg_cpu_chunks(nn * p * c, BG_CPU_GRAIN);
    return t > nn ? (int)nn : t;
}

bg_status bg_fast_gap_fwd(bg_ctx *ctx, bg_node *n)
{
    int64_t nn, p, c;
    if (!geometry(n, &nn, &p, &c)) return BG_ERR_UNSUPPORTED;
    void (*k)(const float *, float *, int64_t, int64_t) = BG_ISA_PICK(ctx->cpu_isa, bg_k_gap_fwd_image);
    const float *x = n->in[0]->data;
    float *y = n->out[0]->data;
    const int threads = image_threads(nn, p, c);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < nn; b++) k(x + b * p * c, y + b * c, p, c);
    return BG_OK;
}

bg_status bg_fast_gap_bwd(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    int64_t nn, p, c;
    if (!geometry(n, &nn, &p, &c) || !f32_dense(dy) || !f32_dense(x->grad)) return BG_ERR_UNSUPPORTED;
    float *g = malloc((size_t)(nn * c) * sizeof(float));
    if (!g) return bg_fail(ctx, BG_ERR_OOM, "global_avgpool: no memory for %lld gradients", (long long)(nn * c));
    const float *gp = dy->data;
    for (int64_t i = 0; i < nn * c; i++) g[i] = gp[i] / (float)p; /* the reference's rounding */
    void (*k)(const float *, float *, int64_t, int64_t) = BG_ISA_PICK(ctx->cpu_isa, bg_k_gap_bwd_image);
    float *dx = x->grad->data;
    const int threads = image_threads(nn, p, c);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < nn; b++) k(g + b * c, dx + b * p * c, p, c);
    free(g);
    return BG_OK;
}
