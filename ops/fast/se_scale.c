/* The fast CPU backend's se_scale (ops/se_scale.c has the math): f32 only,
 * anything else declined to the reference. The forward cuts the N*H*W rows
 * into chunks across threads; the backward gives each thread whole images,
 * which makes one pass produce dx, dres and the image's gate gradient
 * ds[n, :] = sum over its rows of g * x (no sums shared between threads, so
 * the result does not depend on the thread count). The rounding is that of
 * the unfused fast ops, mul, add and relu, so fusing changes no bits (see
 * kernels/cpu/isa/se_scale.c). */
#include <string.h>
#include "fast.h"
#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/rows.h"
#include "../ops.h"

BG_ISA_DECL(void, bg_k_se_fwd,
            (const float *x, const float *s, const float *res, float *y, int64_t r0, int64_t r1, int64_t p,
             int64_t c, int relu))
BG_ISA_DECL(void, bg_k_se_bwd_image,
            (const float *x, const float *s, const float *mask, const float *dy, float *dx, float *ds, float *dres,
             int64_t p, int64_t c, int64_t per, int store))

static bool f32_dense(const bg_tensor *t) { return !t || (t->dtype == BG_F32 && bg_is_contiguous(t)); }

/* x {N, H, W, C}: n images of p rows of c channels. */
static bool geometry(const bg_node *n, int64_t *nn, int64_t *p, int64_t *c)
{
    const bg_tensor *x = n->in[0];
    if (x->ndim != 4) return false;
    *nn = x->shape[0], *p = x->shape[1] * x->shape[2], *c = x->shape[3];
    for (int i = 0; i < 3; i++)
        if (!f32_dense(n->in[i])) return false;
    return *nn > 0 && *p > 0 && *c > 0 && f32_dense(n->out[0]);
}

bg_status bg_fast_se_scale_fwd(bg_ctx *ctx, bg_node *n)
{
    int64_t nn, p, c;
    if (!geometry(n, &nn, &p, &c)) return BG_ERR_UNSUPPORTED;
    void (*k)(const float *, const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, int) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_se_fwd);
    const float *x = n->in[0]->data, *s = n->in[1]->data, *res = n->in[2] ? n->in[2]->data : NULL;
    float *y = n->out[0]->data;
    const int relu = BG_PARAMS(n, bg_se_scale_params)->relu;
    const int64_t rows = nn * p;
    const int chunks = bg_cpu_chunks(rows * c, BG_CPU_GRAIN);
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
    for (int i = 0; i < chunks; i++) {
        int64_t lo, hi;
        bg_cpu_chunk(rows, chunks, i, 1, &lo, &hi);
        k(x, s, res, y, lo, hi, p, c, relu);
    }
    return BG_OK;
}

bg_status bg_fast_se_scale_bwd(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    int64_t nn, p, c;
    if (!geometry(n, &nn, &p, &c) || !f32_dense(dy)) return BG_ERR_UNSUPPORTED;
    for (int i = 0; i < 3; i++)
        if (n->in[i] && !f32_dense(n->in[i]->grad)) return BG_ERR_UNSUPPORTED;
    float *dx = n->in[0]->grad ? n->in[0]->grad->data : NULL, *ds = n->in[1]->grad ? n->in[1]->grad->data : NULL,
          *dres = n->in[2] && n->in[2]->grad ? n->in[2]->grad->data : NULL;
    if (!dx && !ds && !dres) return BG_OK;
    void (*k)(const float *, const float *, const float *, const float *, float *, float *, float *, int64_t,
              int64_t, int64_t, int) = BG_ISA_PICK(ctx->cpu_isa, bg_k_se_bwd_image);
    /* fresh gradients (bg_node.grad_fresh): dx and dres are stored into; the
     * gate's, {N, C} sums added into, is zeroed here */
    const int store = (n->grad_fresh & (dx ? 1 : 0)) | (n->grad_fresh & (dres ? 4 : 0));
    if (ds && (n->grad_fresh & 2)) memset(ds, 0, (size_t)(nn * c) * sizeof *ds);
    n->grad_fresh &= (unsigned char)~(store | (ds ? 2 : 0));
    const float *x = n->in[0]->data, *s = n->in[1]->data, *g = dy->data;
    const float *mask = BG_PARAMS(n, bg_se_scale_params)->relu ? n->out[0]->data : NULL;
    const int64_t img = p * c, per = bg_row_chunk_rows(c);
    int threads = bg_cpu_chunks(nn * img, BG_CPU_GRAIN);
    if (threads > nn) threads = (int)nn;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < nn; b++) {
        const int64_t o = b * img;
        k(x + o, s + b * c, mask ? mask + o : NULL, g + o, dx ? dx + o : NULL, ds ? ds + b * c : NULL,
          dres ? dres + o : NULL, p, c, per, store);
    }
    return BG_OK;
}
