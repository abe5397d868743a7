/* split_attn: split attention's weighted sum, split_sum(mul(x, a), radix)
 * in one pass:
 *     y[b, q, k] = sum_{s < r} x[b, q, s*C + k] * a[b, s*C + k]
 * x {N,H,W,r*C} (the radix splits as contiguous channel blocks, the layout
 * of ResNeSt's grouped conv), a {N,1,1,r*C} or {N,r*C} (radix_softmax's
 * radix-major gate), y {N,H,W,C}. The r-times-larger product of the unfused
 * pair is never written.
 *
 * Backward: dx[b,q,s*C+k] += dy[b,q,k] * a[b,s*C+k];
 *           da[b, s*C+k]  += sum_q dy[b,q,k] * x[b,q,s*C+k].
 * The CPU reference rounds like the unfused ops (products in T, sums in
 * double), so the fused and unfused CPU graphs agree bit for bit. CUDA:
 * kernels/attention.h (bg_cuda_splat_*). */
#include "op_util.h"
#include "ops.h"
#include "fast/fast.h"
#ifdef BG_WITH_CUDA
#include "../kernels/attention.h"
#endif

static bg_status infer_split_attn(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                                  int *n_saved)
{
    (void)saved;
    const bg_tensor *x = n->in[0], *a = n->in[1];
    int r = BG_PARAMS(n, const bg_split_sum_params)->radix;
    char bx[96], ba[96];
    bg_status st;
    if ((st = bg_op_check_float(ctx, n, 0)) || (st = bg_op_check_float(ctx, n, 1)) ||
        (st = bg_op_check_same_dtype(ctx, n, 1, 0)))
        return st;
    if (r < 1) return bg_fail(ctx, BG_ERR_ARG, "split_attn: radix %d must be >= 1", r);
    if ((st = bg_check_ndim(ctx, x, 4, "split_attn: x"))) return st;
    int64_t nb = x->shape[0], rc = x->shape[3];
    if (rc % r)
        return bg_fail(ctx, BG_ERR_SHAPE, "split_attn: radix %d does not divide the %lld channels of x '%s' %s", r,
                       (long long)rc, x->name, bg_shape_str(x, bx, sizeof bx));
    bool ok = a->ndim == 2 ? a->shape[0] == nb && a->shape[1] == rc
                           : a->ndim == 4 && a->shape[0] == nb && a->shape[1] == 1 && a->shape[2] == 1 &&
                                 a->shape[3] == rc;
    if (!ok)
        return bg_fail(ctx, BG_ERR_SHAPE, "split_attn: gate a '%s' %s must be [%lld, 1, 1, %lld] (or [%lld, %lld]) for x '%s' %s",
                       a->name, bg_shape_str(a, ba, sizeof ba), (long long)nb, (long long)rc, (long long)nb,
                       (long long)rc, x->name, bg_shape_str(x, bx, sizeof bx));
    int64_t os[4] = {nb, x->shape[1], x->shape[2], rc / r};
    out[0] = bg_desc_make(x->dtype, 4, os);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

typedef struct {
    int64_t n, p, r, c;
} sa_geom;

static sa_geom geom(const bg_node *n)
{
    const bg_tensor *x = n->in[0];
    int64_t r = BG_PARAMS(n, const bg_split_sum_params)->radix;
    sa_geom g = {x->shape[0], x->shape[1] * x->shape[2], r, x->shape[3] / r};
    return g;
}

#define DEFINE_SPLIT_ATTN(T, SFX)                                                                  \
    static void sa_fwd_##SFX(const T *x, const T *a, T *y, sa_geom g)                             \
    {                                                                                              \
        int64_t rc = g.r * g.c;                                                                    \
        _Pragma("omp parallel for if (g.n * g.p * rc >= BG_PAR_MIN)")                                \
        for (int64_t row = 0; row < g.n * g.p; row++) {                                            \
            const T *xr = x + row * rc, *ar = a + (row / g.p) * rc;                                \
            for (int64_t k = 0; k < g.c; k++) {                                                    \
                double acc = 0;                                                                    \
                for (int64_t s = 0; s < g.r; s++) acc += (double)(T)(xr[s * g.c + k] * ar[s * g.c + k]); \
                y[row * g.c + k] = (T)acc;                                                         \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void sa_bwd_##SFX(const T *x, const T *a, const T *dy, T *dx, T *da, sa_geom g)        \
    {                                                                                              \
        int64_t rc = g.r * g.c;                                                                    \
        if (dx) {                                                                                  \
            _Pragma("omp parallel for if (g.n * g.p * rc >= BG_PAR_MIN)")                            \
            for (int64_t row = 0; row < g.n * g.p; row++) {                                        \
                const T *ar = a + (row / g.p) * rc, *gr = dy + row * g.c;                          \
                T *dr = dx + row * rc;                                                             \
                for (int64_t j = 0; j < rc; j++) dr[j] += gr[j % g.c] * ar[j];                     \
            }                                                                                      \
        }                                                                                          \
        if (!da) return;                                                                           \
        _Pragma("omp parallel for if (g.n * g.p * rc >= BG_PAR_MIN)")                                \
        for (int64_t jj = 0; jj < g.n * rc; jj++) {                                                \
            int64_t b = jj / rc, j = jj % rc, k = j % g.c;                                         \
            double acc = 0;                                                                        \
            for (int64_t q = 0; q < g.p; q++) {                                                    \
                int64_t row = b * g.p + q;                                                         \
                acc += (double)dy[row * g.c + k] * (double)x[row * rc + j];                        \
            }                                                                                      \
            da[jj] = (T)((double)da[jj] + acc);                                                    \
        }                                                                                          \
    }

DEFINE_SPLIT_ATTN(float, f32)
DEFINE_SPLIT_ATTN(double, f64)

static bg_status sa_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (st) return st;
    if (n->in[0]->dtype == BG_F64) sa_fwd_f64(n->in[0]->data, n->in[1]->data, n->out[0]->data, geom(n));
    else sa_fwd_f32(n->in[0]->data, n->in[1]->data, n->out[0]->data, geom(n));
    return BG_OK;
}

static bg_status sa_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *a = n->in[1], *dy = n->out[0]->grad;
    if (!dy || (!x->grad && !a->grad)) return BG_OK;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (st) return st;
    if (x->dtype == BG_F64) sa_bwd_f64(x->data, a->data, dy->data, bg_grad_or_null(x), bg_grad_or_null(a), geom(n));
    else sa_bwd_f32(x->data, a->data, dy->data, bg_grad_or_null(x), bg_grad_or_null(a), geom(n));
    return BG_OK;
}

#ifdef BG_WITH_CUDA
static bg_status sa_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (st) return st;
    sa_geom g = geom(n);
    bg_cuda_splat_fwd(n->in[0]->data, n->in[1]->data, n->out[0]->data, g.n, g.p, g.r, g.c, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status sa_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *a = n->in[1], *dy = n->out[0]->grad;
    if (!dy || (!x->grad && !a->grad)) return BG_OK;
    int half = 0;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (st) return st;
    sa_geom g = geom(n);
    bg_cuda_splat_bwd(x->data, a->data, dy->data, bg_grad_or_null(x), bg_grad_or_null(a), g.n, g.p, g.r, g.c, half,
                      ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

static bool sa_supports(bg_device dev, const void *params, bg_tensor *const *in, int n_in)
{
    (void)params;
    return bg_op_same_backend_dtype(dev, in, n_in);
}

const bg_op bg_op_split_attn = {
    .name = "split_attn",
    .n_in = 2,
    .n_in_required = 2,
    .in_names = {"x", "a"},
    .out_names = {"y"},
    .in_differentiable = {true, true},
    .param_size = sizeof(bg_split_sum_params),
    .fields = {{"radix", BG_P_INT, offsetof(bg_split_sum_params, radix), {2}}},
    .n_fields = 1,
    .infer = infer_split_attn,
    .fwd = {[BG_CPU] = sa_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(sa_fwd_cuda)},
    .bwd = {[BG_CPU] = sa_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(sa_bwd_cuda)},
    .supports = sa_supports,
    .fast_fwd = bg_fast_split_attn_fwd,
    .fast_bwd = bg_fast_split_attn_bwd,
};

bg_tensor *bg_split_attn(bg_graph *g, bg_tensor *x, bg_tensor *a, int radix)
{
    bg_split_sum_params p = {.radix = radix};
    bg_tensor *in[2] = {x, a};
    return bg_graph_op(g, &bg_op_split_attn, &p, in, 2);
}
