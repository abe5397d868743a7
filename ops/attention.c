/* radix_softmax: the split-attention gate of ResNeSt (timm's RadixSoftmax).
 * Input {N,C} or {N,1,1,C}, C = radix * cardinality * rest. With radix > 1
 * each row is viewed as (card, radix, rest), transposed to (radix, card,
 * rest) and soft-maxed over radix:
 *     y[n, (r*card + k)*rest + j] = softmax_r x[n, (k*radix + r)*rest + j]
 * i.e. the output is laid out radix-major, ready to be split into `radix`
 * gates of card*rest channels. With radix == 1 it is an elementwise sigmoid
 * (no permutation). The output has the input's shape.
 *
 * CUDA: kernels/attention.cu (radix > 1) and the sigmoid of
 * kernels/elementwise.cu (radix 1), f32 or f16 storage with f32 math. */
#include <math.h>
#include "op_util.h"
#include "ops.h"
#ifdef BG_WITH_CUDA
#include "../kernels/attention.h"
#include "../kernels/elementwise.h"
#endif


static bg_status infer_rsoftmax(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                                int *n_saved)
{
    (void)saved;
    const bg_tensor *x = n->in[0];
    const bg_rsoftmax_params *p = BG_PARAMS(n, bg_rsoftmax_params);
    char b[96];
    bg_status s = bg_op_check_float(ctx, n, 0);
    if (s) return s;
    if (p->radix < 1 || p->cardinality < 1)
        return bg_fail(ctx, BG_ERR_ARG, "radix_softmax: radix %d and cardinality %d must both be >= 1", p->radix,
                       p->cardinality);
    bool ok = x->ndim == 2 || (x->ndim == 4 && x->shape[1] == 1 && x->shape[2] == 1);
    if (!ok)
        return bg_fail(ctx, BG_ERR_SHAPE, "radix_softmax: x '%s' %s must be {N,C} or {N,1,1,C}", x->name,
                       bg_shape_str(x, b, sizeof b));
    int64_t c = x->shape[x->ndim - 1], group = (int64_t)p->radix * p->cardinality;
    if (c % group)
        return bg_fail(ctx, BG_ERR_SHAPE,
                       "radix_softmax: radix %d * cardinality %d = %lld does not divide the %lld channels of x '%s' %s",
                       p->radix, p->cardinality, (long long)group, (long long)c, x->name, bg_shape_str(x, b, sizeof b));
    out[0] = bg_desc_make(x->dtype, x->ndim, x->shape);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

/* Geometry of one row: C = radix * card * rest. */
typedef struct {
    int64_t rows, radix, card, rest;
} rs_geom;

static rs_geom geom(const bg_node *n)
{
    const bg_tensor *x = n->in[0];
    const bg_rsoftmax_params *p = BG_PARAMS(n, bg_rsoftmax_params);
    int64_t c = x->shape[x->ndim - 1];
    rs_geom g = {x->shape[0], p->radix, p->cardinality, 0};
    g.rest = c / (g.radix * g.card);
    return g;
}

/* Channel of input element (k, r, j) and of output element (r, k, j). */
static inline int64_t in_ch(const rs_geom *g, int64_t k, int64_t r, int64_t j) { return (k * g->radix + r) * g->rest + j; }
static inline int64_t out_ch(const rs_geom *g, int64_t k, int64_t r, int64_t j) { return (r * g->card + k) * g->rest + j; }

/* Softmax over r in double, max-shifted. Backward of a softmax through the
 * saved output y: dx_r = y_r * (dy_r - sum_s dy_s y_s). Sigmoid (radix 1)
 * as in ops/activation.c: exp of a non-positive argument only. */
#define DEFINE_RSOFTMAX(T, SFX)                                                                \
    static void rs_fwd_##SFX(const T *x, T *y, rs_geom g)                                     \
    {                                                                                          \
        int64_t c = g.radix * g.card * g.rest;                                                 \
        if (g.radix == 1) {                                                                    \
            int64_t cnt = g.rows * c;                                                          \
            _Pragma("omp parallel for if (cnt >= BG_PAR_MIN)")                                   \
            for (int64_t i = 0; i < cnt; i++) {                                                \
                double v = (double)x[i], e = exp(-fabs(v));                                    \
                y[i] = (T)(v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));                          \
            }                                                                                  \
            return;                                                                            \
        }                                                                                      \
        _Pragma("omp parallel for if (g.rows * c >= BG_PAR_MIN)")                                \
        for (int64_t i = 0; i < g.rows; i++) {                                                 \
            const T *xr = x + i * c;                                                           \
            T *yr = y + i * c;                                                                 \
            for (int64_t k = 0; k < g.card; k++)                                               \
                for (int64_t j = 0; j < g.rest; j++) {                                         \
                    double mx = (double)xr[in_ch(&g, k, 0, j)], sum = 0;                       \
                    for (int64_t r = 1; r < g.radix; r++)                                      \
                        mx = fmax(mx, (double)xr[in_ch(&g, k, r, j)]);                         \
                    for (int64_t r = 0; r < g.radix; r++)                                      \
                        sum += exp((double)xr[in_ch(&g, k, r, j)] - mx);                       \
                    for (int64_t r = 0; r < g.radix; r++)                                      \
                        yr[out_ch(&g, k, r, j)] = (T)(exp((double)xr[in_ch(&g, k, r, j)] - mx) / sum); \
                }                                                                              \
        }                                                                                      \
    }                                                                                          \
    static void rs_bwd_##SFX(const T *y, const T *dy, T *dx, rs_geom g)                       \
    {                                                                                          \
        int64_t c = g.radix * g.card * g.rest;                                                 \
        if (g.radix == 1) {                                                                    \
            int64_t cnt = g.rows * c;                                                          \
            _Pragma("omp parallel for if (cnt >= BG_PAR_MIN)")                                   \
            for (int64_t i = 0; i < cnt; i++) {                                                \
                double s = (double)y[i];                                                       \
                dx[i] = (T)((double)dx[i] + (double)dy[i] * s * (1.0 - s));                    \
            }                                                                                  \
            return;                                                                            \
        }                                                                                      \
        _Pragma("omp parallel for if (g.rows * c >= BG_PAR_MIN)")                                \
        for (int64_t i = 0; i < g.rows; i++) {                                                 \
            const T *yr = y + i * c, *gr = dy + i * c;                                         \
            T *dr = dx + i * c;                                                                \
            for (int64_t k = 0; k < g.card; k++)                                               \
                for (int64_t j = 0; j < g.rest; j++) {                                         \
                    double dot = 0;                                                            \
                    for (int64_t r = 0; r < g.radix; r++)                                      \
                        dot += (double)gr[out_ch(&g, k, r, j)] * (double)yr[out_ch(&g, k, r, j)]; \
                    for (int64_t r = 0; r < g.radix; r++) {                                    \
                        int64_t o = out_ch(&g, k, r, j), ii = in_ch(&g, k, r, j);               \
                        dr[ii] = (T)((double)dr[ii] + (double)yr[o] * ((double)gr[o] - dot));  \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }

DEFINE_RSOFTMAX(float, f32)
DEFINE_RSOFTMAX(double, f64)

static bg_status dtype_error(bg_ctx *ctx, const bg_tensor *x)
{
    return bg_fail(ctx, BG_ERR_DTYPE, "radix_softmax: x '%s' is %s; the CPU kernel takes f32 or f64", x->name,
                   bg_dtype_name(x->dtype));
}

static bg_status rs_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    rs_geom g = geom(n);
    switch (x->dtype) {
    case BG_F32: rs_fwd_f32(x->data, n->out[0]->data, g); return BG_OK;
    case BG_F64: rs_fwd_f64(x->data, n->out[0]->data, g); return BG_OK;
    default: return dtype_error(ctx, x);
    }
}

static bg_status rs_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *y = n->out[0], *dy = y->grad;
    if (!x->grad || !dy) return BG_OK;
    rs_geom g = geom(n);
    switch (x->dtype) {
    case BG_F32: rs_bwd_f32(y->data, dy->data, x->grad->data, g); return BG_OK;
    case BG_F64: rs_bwd_f64(y->data, dy->data, x->grad->data, g); return BG_OK;
    default: return dtype_error(ctx, x);
    }
}

#ifdef BG_WITH_CUDA
static bg_status rs_check_cuda(bg_ctx *ctx, const bg_tensor *x)
{
    if (x->dtype == BG_F32 || x->dtype == BG_F16) return BG_OK;
    return bg_fail(ctx, BG_ERR_DTYPE, "radix_softmax: x '%s' is %s; the CUDA kernel takes f32 or f16", x->name,
                   bg_dtype_name(x->dtype));
}

static bg_status rs_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    bg_status s = rs_check_cuda(ctx, x);
    if (s) return s;
    rs_geom g = geom(n);
    int half = x->dtype == BG_F16;
    if (g.radix == 1) bg_cuda_sigmoid_fwd(x->data, n->out[0]->data, bg_numel(x), half, ctx->stream);
    else bg_cuda_radix_softmax_fwd(x->data, n->out[0]->data, g.rows, g.radix, g.card, g.rest, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status rs_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *y = n->out[0], *dy = y->grad;
    if (!x->grad || !dy) return BG_OK;
    bg_status s = rs_check_cuda(ctx, x);
    if (s) return s;
    rs_geom g = geom(n);
    int half = x->dtype == BG_F16;
    if (g.radix == 1) bg_cuda_sigmoid_bwd(y->data, dy->data, x->grad->data, bg_numel(x), half, ctx->stream);
    else bg_cuda_radix_softmax_bwd(y->data, dy->data, x->grad->data, g.rows, g.radix, g.card, g.rest, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

const bg_op bg_op_radix_softmax = {
    .name = "radix_softmax",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    .param_size = sizeof(bg_rsoftmax_params),
    .fields = {{"radix", BG_P_INT, offsetof(bg_rsoftmax_params, radix), {1}},
               {"cardinality", BG_P_INT, offsetof(bg_rsoftmax_params, cardinality), {1}}},
    .n_fields = 2,
    .infer = infer_rsoftmax,
    .fwd = {[BG_CPU] = rs_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(rs_fwd_cuda)},
    .bwd = {[BG_CPU] = rs_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(rs_bwd_cuda)},
};

bg_tensor *bg_radix_softmax(bg_graph *g, bg_tensor *x, int radix, int cardinality)
{
    bg_rsoftmax_params p = {.radix = radix, .cardinality = cardinality};
    return bg_graph_op(g, &bg_op_radix_softmax, &p, &x, 1);
}
