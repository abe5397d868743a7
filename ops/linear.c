/* linear: y {N,M} = x {N,K} . W^T + b, with W {M,K} as in PyTorch and an
 * optional bias {M}. Every product is one call of the CPU GEMM:
 *   y  += x . W^T        dx += dy . W        dW += dy^T . x
 * The file includes itself once per element type (the part under
 * BG_LINEAR_TMPL) so each kernel is written once for float and double. */
#ifndef BG_LINEAR_TMPL

#include <stdio.h>
#include "gemm_cpu.h"
#include "ops.h"

#define BG_LINEAR_TMPL 1
#define T float
#define SFX(name) name##_f32
#include "linear.c"
#undef T
#undef SFX
#define T double
#define SFX(name) name##_f64
#include "linear.c"
#undef T
#undef SFX
#undef BG_LINEAR_TMPL

static bg_status linear_infer(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                              int *n_saved)
{
    const bg_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    char xs[80], ws[80], bs[80];
    bg_shape_str(x, xs, sizeof xs);
    bg_shape_str(w, ws, sizeof ws);
    if (x->ndim != 2)
        return bg_fail(ctx, BG_ERR_SHAPE, "linear: input '%s' must be 2-D {N,K} (flatten first), got %s", x->name, xs);
    if (w->ndim != 2)
        return bg_fail(ctx, BG_ERR_SHAPE, "linear: weight '%s' must be 2-D {M,K}, got %s", w->name, ws);
    bg_status s;
    for (int i = 0; i < 3; i++)
        if ((s = bg_op_check_float(ctx, n, i))) return s;
    if ((s = bg_op_check_same_dtype(ctx, n, 1, 0)) || (s = bg_op_check_same_dtype(ctx, n, 2, 0))) return s;
    if (w->shape[1] != x->shape[1])
        return bg_fail(ctx, BG_ERR_SHAPE, "linear: input '%s' %s has %lld features but weight '%s' %s expects %lld",
                       x->name, xs, (long long)x->shape[1], w->name, ws, (long long)w->shape[1]);
    if (b) {
        bg_shape_str(b, bs, sizeof bs);
        if (b->ndim != 1 || b->shape[0] != w->shape[0])
            return bg_fail(ctx, BG_ERR_SHAPE, "linear: bias '%s' must be {%lld} (one per output of weight '%s'), got %s",
                           b->name, (long long)w->shape[0], w->name, bs);
    }
    int64_t os[2] = {x->shape[0], w->shape[0]};
    out[0] = bg_desc_make(x->dtype, 2, os);
    *n_out = 1;
    *n_saved = 0;
    (void)saved;
    return BG_OK;
}

static double linear_macs(const bg_node *n)
{
    return (double)n->in[0]->shape[0] * (double)n->in[1]->shape[0] * (double)n->in[1]->shape[1];
}

static bg_status linear_check_cpu(bg_ctx *ctx, const bg_node *n)
{
    for (int i = 0; i < 3; i++) {
        const bg_tensor *t = n->in[i];
        if (!t) continue;
        if (t->dtype != BG_F32 && t->dtype != BG_F64)
            return bg_fail(ctx, BG_ERR_DTYPE, "linear: %s '%s' is %s; the CPU backend computes in f32 or f64 only",
                           n->op->in_names[i], t->name, bg_dtype_name(t->dtype));
        if (!bg_is_contiguous(t))
            return bg_fail(ctx, BG_ERR_ARG, "linear: %s '%s' is not contiguous", n->op->in_names[i], t->name);
    }
    return BG_OK;
}

static bg_status linear_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = linear_check_cpu(ctx, n);
    if (s) return s;
    return n->in[0]->dtype == BG_F64 ? linear_fwd_f64(ctx, n) : linear_fwd_f32(ctx, n);
}

static bg_status linear_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = linear_check_cpu(ctx, n);
    if (s) return s;
    if (!n->out[0]->grad) return BG_OK;
    return n->in[0]->dtype == BG_F64 ? linear_bwd_f64(ctx, n) : linear_bwd_f32(ctx, n);
}

const bg_op bg_op_linear = {
    .name = "linear",
    .n_in = 3,
    .n_in_required = 2,
    .in_names = {"x", "weight", "bias"},
    .out_names = {"y"},
    .in_differentiable = {true, true, true},
    .param_size = sizeof(bg_noparams),
    .n_fields = 0,
    .infer = linear_infer,
    .macs = linear_macs,
    .fwd = {[BG_CPU] = linear_fwd_cpu},
    .bwd = {[BG_CPU] = linear_bwd_cpu},
};

bg_tensor *bg_linear(bg_graph *g, bg_tensor *x, bg_tensor *w, bg_tensor *b)
{
    bg_tensor *in[3] = {x, w, b};
    return bg_graph_op(g, &bg_op_linear, NULL, in, 3);
}

#else /* ---- type-generic kernels: T, SFX set by the includer ---- */

static bg_status SFX(linear_fwd)(bg_ctx *ctx, bg_node *n)
{
    int64_t N = n->in[0]->shape[0], K = n->in[0]->shape[1], M = n->in[1]->shape[0];
    const T *x = n->in[0]->data, *w = n->in[1]->data;
    const T *b = n->in[2] ? (const T *)n->in[2]->data : NULL;
    T *y = n->out[0]->data;
    /* The GEMM accumulates, so start from the bias (or zero). */
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < M; j++) y[i * M + j] = b ? b[j] : 0;
    return SFX(bg_gemm)(ctx, false, true, N, M, K, x, K, w, K, y, M);
}

static bg_status SFX(linear_bwd)(bg_ctx *ctx, bg_node *n)
{
    int64_t N = n->in[0]->shape[0], K = n->in[0]->shape[1], M = n->in[1]->shape[0];
    const T *x = n->in[0]->data, *w = n->in[1]->data, *dy = n->out[0]->grad->data;
    bg_status s = BG_OK;
    if (n->in[2] && n->in[2]->grad) {
        T *db = n->in[2]->grad->data;
        for (int64_t j = 0; j < M; j++) {
            double acc = 0; /* double so long f32 batch sums stay accurate */
            for (int64_t i = 0; i < N; i++) acc += dy[i * M + j];
            db[j] += (T)acc;
        }
    }
    if (n->in[0]->grad) s = SFX(bg_gemm)(ctx, false, false, N, K, M, dy, M, w, K, (T *)n->in[0]->grad->data, K);
    if (!s && n->in[1]->grad) s = SFX(bg_gemm)(ctx, true, false, M, K, N, dy, M, x, K, (T *)n->in[1]->grad->data, K);
    return s;
}

#endif /* BG_LINEAR_TMPL */
