/* split_sum: sum the `radix` channel splits of x. Input {..., r*C} (rank 2
 * to 4, channels last), output {..., C}:
 *     y[p, c] = sum_{i < r} x[p, i*C + c]
 * so split i is the contiguous channel block [i*C, (i+1)*C), the layout of
 * ResNeSt's split-attention conv output (groups = cardinality * radix) and of
 * the radix-major gate that radix_softmax produces. Backward copies dy into
 * every split: dx[p, i*C + c] += dy[p, c].
 * CPU sums in double (at most a handful of terms, but f32 and f64 then agree
 * to rounding); CUDA lives in kernels/split_sum.cu. */
#include "op_util.h"
#include "ops.h"
#ifdef BG_WITH_CUDA
#include "../kernels/split_sum.h"
#endif


static bg_status infer_split_sum(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                                 int *n_saved)
{
    (void)saved;
    const bg_tensor *x = n->in[0];
    const bg_split_sum_params *p = BG_PARAMS(n, bg_split_sum_params);
    char b[96];
    bg_status s = bg_op_check_float(ctx, n, 0);
    if (s) return s;
    if (p->radix < 1) return bg_fail(ctx, BG_ERR_ARG, "split_sum: radix %d must be >= 1", p->radix);
    if (x->ndim < 2)
        return bg_fail(ctx, BG_ERR_SHAPE, "split_sum: x '%s' %s must have 2 to 4 dims, channels last", x->name,
                       bg_shape_str(x, b, sizeof b));
    int64_t rc = x->shape[x->ndim - 1];
    if (rc % p->radix)
        return bg_fail(ctx, BG_ERR_SHAPE, "split_sum: radix %d does not divide the %lld channels of x '%s' %s", p->radix,
                       (long long)rc, x->name, bg_shape_str(x, b, sizeof b));
    int64_t os[BG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) os[d] = x->shape[d];
    os[x->ndim - 1] = rc / p->radix;
    out[0] = bg_desc_make(x->dtype, x->ndim, os);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

/* rows = every position before the channel axis; c = channels per split. */
#define DEFINE_SPLIT_SUM(T, SFX)                                                         \
    static void ss_fwd_##SFX(const T *x, T *y, int64_t rows, int64_t r, int64_t c)     \
    {                                                                                    \
        _Pragma("omp parallel for if (rows * r * c >= BG_PAR_MIN)")                        \
        for (int64_t p = 0; p < rows; p++) {                                             \
            const T *xp = x + p * r * c;                                                 \
            T *yp = y + p * c;                                                           \
            for (int64_t k = 0; k < c; k++) {                                            \
                double acc = 0;                                                          \
                for (int64_t i = 0; i < r; i++) acc += (double)xp[i * c + k];            \
                yp[k] = (T)acc;                                                          \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
    static void ss_bwd_##SFX(const T *dy, T *dx, int64_t rows, int64_t r, int64_t c)   \
    {                                                                                    \
        _Pragma("omp parallel for if (rows * r * c >= BG_PAR_MIN)")                        \
        for (int64_t p = 0; p < rows; p++) {                                             \
            const T *gp = dy + p * c;                                                    \
            T *dp = dx + p * r * c;                                                      \
            for (int64_t i = 0; i < r; i++)                                              \
                for (int64_t k = 0; k < c; k++) dp[i * c + k] += gp[k];                  \
        }                                                                                \
    }

DEFINE_SPLIT_SUM(float, f32)
DEFINE_SPLIT_SUM(double, f64)

typedef struct {
    int64_t rows, r, c;
} ss_geom;

static ss_geom geom(const bg_node *n)
{
    const bg_tensor *x = n->in[0];
    ss_geom g;
    g.r = BG_PARAMS(n, const bg_split_sum_params)->radix;
    g.c = x->shape[x->ndim - 1] / g.r;
    g.rows = bg_numel(x) / (g.r * g.c > 0 ? g.r * g.c : 1);
    return g;
}

static bg_status dtype_error(bg_ctx *ctx, const bg_tensor *x, const char *backend, const char *types)
{
    return bg_fail(ctx, BG_ERR_DTYPE, "split_sum: x '%s' is %s; the %s kernel takes %s", x->name,
                   bg_dtype_name(x->dtype), backend, types);
}

static bg_status ss_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    ss_geom g = geom(n);
    switch (x->dtype) {
    case BG_F32: ss_fwd_f32(x->data, n->out[0]->data, g.rows, g.r, g.c); return BG_OK;
    case BG_F64: ss_fwd_f64(x->data, n->out[0]->data, g.rows, g.r, g.c); return BG_OK;
    default: return dtype_error(ctx, x, "CPU", "f32 or f64");
    }
}

static bg_status ss_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    ss_geom g = geom(n);
    switch (x->dtype) {
    case BG_F32: ss_bwd_f32(dy->data, x->grad->data, g.rows, g.r, g.c); return BG_OK;
    case BG_F64: ss_bwd_f64(dy->data, x->grad->data, g.rows, g.r, g.c); return BG_OK;
    default: return dtype_error(ctx, x, "CPU", "f32 or f64");
    }
}

#ifdef BG_WITH_CUDA
static bg_status ss_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    if (x->dtype != BG_F32 && x->dtype != BG_F16) return dtype_error(ctx, x, "CUDA", "f32 or f16");
    ss_geom g = geom(n);
    bg_cuda_split_sum_fwd(x->data, n->out[0]->data, g.rows, g.r, g.c, x->dtype == BG_F16, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status ss_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    if (x->dtype != BG_F32 && x->dtype != BG_F16) return dtype_error(ctx, x, "CUDA", "f32 or f16");
    ss_geom g = geom(n);
    bg_cuda_split_sum_bwd(dy->data, x->grad->data, g.rows, g.r, g.c, x->dtype == BG_F16, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

const bg_op bg_op_split_sum = {
    .name = "split_sum",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    .param_size = sizeof(bg_split_sum_params),
    .fields = {{"radix", BG_P_INT, offsetof(bg_split_sum_params, radix), {2}}},
    .n_fields = 1,
    .infer = infer_split_sum,
    .fwd = {[BG_CPU] = ss_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(ss_fwd_cuda)},
    .bwd = {[BG_CPU] = ss_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(ss_bwd_cuda)},
};

bg_tensor *bg_split_sum(bg_graph *g, bg_tensor *x, int radix)
{
    bg_split_sum_params p = {.radix = radix};
    return bg_graph_op(g, &bg_op_split_sum, &p, &x, 1);
}
