/* se_scale: y = act(x * s + res), the squeeze-excitation scale fused with the
 * residual add (and a relu, for post-activation blocks) that follows it:
 *     y[b, q, k] = act(x[b, q, k] * s[b, k] + res[b, q, k])
 * x {N,H,W,C}, s {N,1,1,C} or {N,C}, res x-shaped or absent; act is relu
 * (param relu = 1) or the identity. It replaces mul(x, s), add(., res) and
 * relu(.): one pass and one activation instead of three of each.
 *
 * Backward with dz = dy (masked by y > 0 under relu):
 *     dx += dz * s,   ds[b, k] += sum_q dz * x,   dres += dz.
 * The CPU reference rounds like the unfused ops (the product in T, then the
 * sum in T; ds summed in double in q order), so the fused and unfused CPU
 * graphs agree bit for bit. CUDA: kernels/attention.h (bg_cuda_se_scale_*). */
#include "op_util.h"
#include "ops.h"
#include "fast/fast.h"
#ifdef BG_WITH_CUDA
#include "../kernels/attention.h"
#endif

static bool gate_shape_ok(const bg_tensor *x, const bg_tensor *s)
{
    int64_t n = x->shape[0], c = x->shape[3];
    if (s->ndim == 2) return s->shape[0] == n && s->shape[1] == c;
    return s->ndim == 4 && s->shape[0] == n && s->shape[1] == 1 && s->shape[2] == 1 && s->shape[3] == c;
}

static bg_status infer_se_scale(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                                int *n_saved)
{
    (void)saved;
    const bg_tensor *x = n->in[0], *s = n->in[1], *res = n->in[2];
    char bx[96], bs[96];
    bg_status st;
    for (int i = 0; i < 3; i++)
        if ((st = bg_op_check_float(ctx, n, i)) || (st = bg_op_check_same_dtype(ctx, n, i, 0))) return st;
    if ((st = bg_check_ndim(ctx, x, 4, "se_scale: x"))) return st;
    if (!gate_shape_ok(x, s))
        return bg_fail(ctx, BG_ERR_SHAPE, "se_scale: gate s '%s' %s must be [%lld, 1, 1, %lld] (or [%lld, %lld]) for x '%s' %s",
                       s->name, bg_shape_str(s, bs, sizeof bs), (long long)x->shape[0], (long long)x->shape[3],
                       (long long)x->shape[0], (long long)x->shape[3], x->name, bg_shape_str(x, bx, sizeof bx));
    if (res && !bg_same_shape(res, x))
        return bg_fail(ctx, BG_ERR_SHAPE, "se_scale: residual '%s' %s must have x '%s''s shape %s", res->name,
                       bg_shape_str(res, bs, sizeof bs), x->name, bg_shape_str(x, bx, sizeof bx));
    out[0] = bg_desc_make(x->dtype, 4, x->shape);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

typedef struct {
    int64_t n, p, c;
} se_geom;

static se_geom geom(const bg_node *n)
{
    const bg_tensor *x = n->in[0];
    se_geom g = {x->shape[0], x->shape[1] * x->shape[2], x->shape[3]};
    return g;
}

#define DEFINE_SE(T, SFX)                                                                               \
    static void se_fwd_##SFX(const T *x, const T *s, const T *res, T *y, se_geom g, int relu)          \
    {                                                                                                   \
        _Pragma("omp parallel for if (g.n * g.p * g.c >= BG_PAR_MIN)")                                    \
        for (int64_t r = 0; r < g.n * g.p; r++) {                                                       \
            const T *sr = s + (r / g.p) * g.c;                                                          \
            for (int64_t k = 0; k < g.c; k++) {                                                         \
                int64_t i = r * g.c + k;                                                                \
                T v = x[i] * sr[k];                                                                     \
                if (res) v = v + res[i];                                                                \
                y[i] = relu && !(v > 0) ? (T)0 : v;                                                     \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
    static void se_bwd_##SFX(const T *x, const T *s, const T *y, const T *dy, T *dx, T *ds, T *dres,   \
                             se_geom g, int relu)                                                       \
    {                                                                                                   \
        if (dx || dres) {                                                                               \
            _Pragma("omp parallel for if (g.n * g.p * g.c >= BG_PAR_MIN)")                                \
            for (int64_t r = 0; r < g.n * g.p; r++) {                                                   \
                const T *sr = s + (r / g.p) * g.c;                                                      \
                for (int64_t k = 0; k < g.c; k++) {                                                     \
                    int64_t i = r * g.c + k;                                                            \
                    T d = relu && !(y[i] > 0) ? (T)0 : dy[i];                                           \
                    if (dx) dx[i] += d * sr[k];                                                         \
                    if (dres) dres[i] += d;                                                             \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
        if (!ds) return;                                                                                \
        /* one gate element per iteration: no sums shared between threads */                           \
        _Pragma("omp parallel for if (g.n * g.p * g.c >= BG_PAR_MIN)")                                    \
        for (int64_t j = 0; j < g.n * g.c; j++) {                                                       \
            int64_t b = j / g.c, k = j % g.c;                                                           \
            double acc = 0;                                                                             \
            for (int64_t q = 0; q < g.p; q++) {                                                         \
                int64_t i = (b * g.p + q) * g.c + k;                                                    \
                double d = relu && !(y[i] > 0) ? 0.0 : (double)dy[i];                                   \
                acc += d * (double)x[i];                                                                \
            }                                                                                           \
            ds[j] = (T)((double)ds[j] + acc);                                                           \
        }                                                                                               \
    }

DEFINE_SE(float, f32)
DEFINE_SE(double, f64)

static bg_status se_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (st) return st;
    int relu = BG_PARAMS(n, bg_se_scale_params)->relu;
    void *x = n->in[0]->data, *s = n->in[1]->data, *res = bg_data_or_null(n->in[2]), *y = n->out[0]->data;
    if (n->in[0]->dtype == BG_F64) se_fwd_f64(x, s, res, y, geom(n), relu);
    else se_fwd_f32(x, s, res, y, geom(n), relu);
    return BG_OK;
}

static bg_status se_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (st) return st;
    int relu = BG_PARAMS(n, bg_se_scale_params)->relu;
    void *x = n->in[0]->data, *s = n->in[1]->data, *y = n->out[0]->data;
    void *dx = bg_grad_or_null(n->in[0]), *ds = bg_grad_or_null(n->in[1]), *dres = bg_grad_or_null(n->in[2]);
    if (n->in[0]->dtype == BG_F64) se_bwd_f64(x, s, y, dy->data, dx, ds, dres, geom(n), relu);
    else se_bwd_f32(x, s, y, dy->data, dx, ds, dres, geom(n), relu);
    return BG_OK;
}

#ifdef BG_WITH_CUDA
static bg_status se_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (st) return st;
    se_geom g = geom(n);
    bg_cuda_se_scale_fwd(n->in[0]->data, n->in[1]->data, bg_data_or_null(n->in[2]), n->out[0]->data, g.n, g.p, g.c,
                         BG_PARAMS(n, bg_se_scale_params)->relu, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status se_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    int half = 0;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (st) return st;
    se_geom g = geom(n);
    int relu = BG_PARAMS(n, bg_se_scale_params)->relu;
    bg_cuda_se_scale_bwd_reduce(n->in[0]->data, n->out[0]->data, dy->data, bg_grad_or_null(n->in[1]),
                                bg_grad_or_null(n->in[2]), g.n, g.p, g.c, relu, half, ctx->stream);
    bg_cuda_se_scale_bwd_dx(dy->data, n->out[0]->data, n->in[1]->data, NULL, bg_grad_or_null(n->in[0]), g.n, g.p,
                            g.c, relu, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

/* Both backends take every shape infer accepts; only the dtypes must agree. */
static bool se_supports(bg_device dev, const void *params, bg_tensor *const *in, int n_in)
{
    (void)params;
    return bg_op_same_backend_dtype(dev, in, n_in);
}

const bg_op bg_op_se_scale = {
    .name = "se_scale",
    .n_in = 3,
    .n_in_required = 2,
    .in_names = {"x", "s", "residual"},
    .out_names = {"y"},
    .in_differentiable = {true, true, true},
    .param_size = sizeof(bg_se_scale_params),
    .fields = {{"relu", BG_P_BOOL, offsetof(bg_se_scale_params, relu), {0}}},
    .n_fields = 1,
    .infer = infer_se_scale,
    .fwd = {[BG_CPU] = se_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(se_fwd_cuda)},
    .bwd = {[BG_CPU] = se_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(se_bwd_cuda)},
    .supports = se_supports,
    .fast_fwd = bg_fast_se_scale_fwd,
    .fast_bwd = bg_fast_se_scale_bwd,
    .fast_bwd_stores = true,
};

bg_tensor *bg_se_scale(bg_graph *g, bg_tensor *x, bg_tensor *s, bg_tensor *res, bool relu)
{
    bg_se_scale_params p = {.relu = relu};
    bg_tensor *in[3] = {x, s, res};
    return bg_graph_op(g, &bg_op_se_scale, &p, in, 3);
}
