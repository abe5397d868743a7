/* The fast CPU backend's split_attn (ops/split_attn.c has the math): f32
 * only, anything else declined to the reference. The forward cuts the N*H*W
 * rows into chunks across threads; the backward gives each thread whole
 * images, so one pass makes dx and the image's gate gradient and the bits
 * do not depend on the thread count. The rounding is that of the unfused
 * fast mul and split_sum, so fusing changes no bits (see
 * kernels/cpu/isa/split_attn.c). */
#include "fast.h"
#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/rows.h"
#include "../ops.h"

BG_ISA_DECL(void, bg_k_sa_fwd,
            (const float *x, const float *a, float *y, int64_t r0, int64_t r1, int64_t p, int64_t r, int64_t c))
BG_ISA_DECL(void, bg_k_sa_bwd_image,
            (const float *x, const float *a, const float *dy, float *dx, float *da, int64_t p, int64_t r, int64_t c,
             int64_t per))

static bool f32_dense(const bg_tensor *t) { return !t || (t->dtype == BG_F32 && bg_is_contiguous(t)); }

/* x {N, H, W, r*C}: n images of p rows; radix r, c channels out. */
static bool geometry(const bg_node *n, int64_t *nn, int64_t *p, int64_t *r, int64_t *c)
{
    const bg_tensor *x = n->in[0];
    *r = BG_PARAMS(n, const bg_split_sum_params)->radix;
    if (x->ndim != 4 || *r < 1 || !f32_dense(x) || !f32_dense(n->in[1]) || !f32_dense(n->out[0])) return false;
    *nn = x->shape[0], *p = x->shape[1] * x->shape[2], *c = x->shape[3] / *r;
    return *nn > 0 && *p > 0 && *c > 0;
}

bg_status bg_fast_split_attn_fwd(bg_ctx *ctx, bg_node *n)
{
    int64_t nn, p, r, c;
    if (!geometry(n, &nn, &p, &r, &c)) return BG_ERR_UNSUPPORTED;
    void (*k)(const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_sa_fwd);
    const float *x = n->in[0]->data, *a = n->in[1]->data;
    float *y = n->out[0]->data;
    const int64_t rows = nn * p;
    const int chunks = bg_cpu_chunks(rows * r * c, BG_CPU_GRAIN);
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
    for (int i = 0; i < chunks; i++) {
        int64_t lo, hi;
        bg_cpu_chunk(rows, chunks, i, 1, &lo, &hi);
        k(x, a, y, lo, hi, p, r, c);
    }
    return BG_OK;
}

bg_status bg_fast_split_attn_bwd(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *a = n->in[1], *dy = n->out[0]->grad;
    if (!dy || (!x->grad && !a->grad)) return BG_OK;
    int64_t nn, p, r, c;
    if (!geometry(n, &nn, &p, &r, &c) || !f32_dense(dy) || !f32_dense(x->grad) || !f32_dense(a->grad))
        return BG_ERR_UNSUPPORTED;
    void (*k)(const float *, const float *, const float *, float *, float *, int64_t, int64_t, int64_t, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_sa_bwd_image);
    const float *xp = x->data, *ap = a->data, *g = dy->data;
    float *dx = x->grad ? x->grad->data : NULL, *da = a->grad ? a->grad->data : NULL;
    const int64_t rc = r * c, per = bg_row_chunk_rows(rc);
    int threads = bg_cpu_chunks(nn * p * rc, BG_CPU_GRAIN);
    if (threads > nn) threads = (int)nn;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < nn; b++)
        k(xp + b * p * rc, ap + b * rc, g + b * p * c, dx ? dx + b * p * rc : NULL, da ? da + b * rc : NULL, p, r, c,
          per);
    return BG_OK;
}
