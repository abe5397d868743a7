/* batchnorm2d over NHWC: per channel c, over the M = N*H*W positions,
 *     y = (x - mean) * invstd * gamma + beta,   invstd = 1 / sqrt(var + eps).
 * Training: mean and the BIASED variance of the batch; the running stats are
 * updated in place as PyTorch does, with the UNBIASED variance:
 *     rm = (1-m) rm + m mean,   rv = (1-m) rv + m var * M/(M-1).
 * Eval: mean = rm, var = rv (the running stats are not touched).
 * Either way the forward saves mean and invstd ({C}, x's dtype) for the
 * backward. Statistics and sums accumulate in double. The channel is the
 * fastest dim, so each channel's loop strides by C; channels are independent,
 * which makes them the unit of (deterministic) parallel work.
 *
 * CUDA (kernels/batchnorm.cu): f32 or f16 activations, f32 math. Mixed
 * precision keeps the statistics in f32: with f16 x the saved mean and
 * invstd are f32, and gamma, beta and the running statistics may be f32 too
 * (all four the same dtype). On CUDA the node also keeps a third saved
 * tensor, the f32 workspace of the deterministic reductions (its size
 * depends on the shape only; see bg_bn_workspace_floats).
 *
 * batchnorm2d_relu is the fused row y = relu(bn(x)): the same inputs,
 * parameters and saved tensors, one pass instead of two and one activation
 * instead of two. Its backward masks dy with y > 0 (relu' = 0 at 0, as
 * PyTorch) on the way into the BN gradient. The CPU reference computes the
 * BN value exactly as batchnorm2d does and then applies relu's rule, so the
 * fused and unfused graphs agree bit for bit. */
#include <math.h>
#include "op_util.h"
#include "ops.h"
#include "fast/fast.h"
#ifdef BG_WITH_CUDA
#include "../kernels/batchnorm.h"
#endif


static bg_status infer_bn(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved, int *n_saved)
{
    const bg_tensor *x = n->in[0];
    const bg_batchnorm_params *p = BG_PARAMS(n, bg_batchnorm_params);
    char bx[96], bv[96];
    bg_status s;
    if ((s = bg_op_check_float(ctx, n, 0))) return s;
    if ((s = bg_check_ndim(ctx, x, 4, "batchnorm2d: x"))) return s;
    int64_t c = x->shape[3];
    /* f16 activations may come with f32 parameters (mixed precision) */
    bool f32_params = x->dtype == BG_F16 && n->in[1]->dtype == BG_F32;
    for (int i = 1; i < 5; i++) {
        const bg_tensor *v = n->in[i];
        if ((s = bg_op_check_same_dtype(ctx, n, i, f32_params ? 1 : 0))) return s;
        if (v->ndim != 1 || v->shape[0] != c)
            return bg_fail(ctx, BG_ERR_SHAPE, "%s: %s '%s' %s must be [%lld], one value per channel of x '%s' %s",
                           n->op->name, n->op->in_names[i], v->name, bg_shape_str(v, bv, sizeof bv), (long long)c, x->name,
                           bg_shape_str(x, bx, sizeof bx));
    }
    if (!(p->momentum >= 0.0f && p->momentum <= 1.0f))
        return bg_fail(ctx, BG_ERR_ARG, "batchnorm2d: momentum %g is outside [0, 1]", (double)p->momentum);
    if (!(p->eps > 0.0f)) return bg_fail(ctx, BG_ERR_ARG, "batchnorm2d: eps %g must be positive", (double)p->eps);
    out[0] = bg_desc_make(x->dtype, 4, x->shape);
    *n_out = 1;
    bg_dtype sdt = x->dtype == BG_F16 ? BG_F32 : x->dtype; /* statistics stay f32 under f16 */
    saved[0] = bg_desc_make(sdt, 1, &c); /* mean */
    saved[1] = bg_desc_make(sdt, 1, &c); /* invstd */
    *n_saved = 2;
#ifdef BG_WITH_CUDA
    if (x->device == BG_CUDA) {
        int64_t ws = bg_bn_workspace_floats(bg_numel(x) / (c ? c : 1), c);
        saved[2] = bg_desc_make(BG_F32, 1, &ws);
        *n_saved = 3;
    }
#endif
    return BG_OK;
}

/* x, y, dy, dx are {M, C} row-major; vectors are {C}. */
#define DEFINE_BN(T, SFX)                                                                             \
    static void bn_fwd_##SFX(const T *x, const T *gamma, const T *beta, T *rm, T *rv, T *mean_out,   \
                             T *invstd_out, T *y, int64_t m, int64_t c, int train, double mom,        \
                             double eps, int relu)                                                    \
    {                                                                                                 \
        _Pragma("omp parallel for if (m * c >= BG_PAR_MIN)")                                            \
        for (int64_t ch = 0; ch < c; ch++) {                                                          \
            double mean, var;                                                                         \
            if (train) {                                                                              \
                double sum = 0, sq = 0;                                                               \
                for (int64_t i = 0; i < m; i++) sum += (double)x[i * c + ch];                         \
                mean = sum / (double)m;                                                               \
                /* two passes: no cancellation from E[x^2] - E[x]^2 */                              \
                for (int64_t i = 0; i < m; i++) {                                                     \
                    double d = (double)x[i * c + ch] - mean;                                          \
                    sq += d * d;                                                                      \
                }                                                                                     \
                var = sq / (double)m;                                                                 \
                rm[ch] = (T)((1.0 - mom) * (double)rm[ch] + mom * mean);                              \
                rv[ch] = (T)((1.0 - mom) * (double)rv[ch] + mom * var * (double)m / (double)(m - 1)); \
            } else {                                                                                  \
                mean = (double)rm[ch];                                                                \
                var = (double)rv[ch];                                                                 \
            }                                                                                         \
            double invstd = 1.0 / sqrt(var + eps);                                                    \
            double scale = invstd * (double)gamma[ch], shift = (double)beta[ch];                      \
            for (int64_t i = 0; i < m; i++) {                                                         \
                T v = (T)(((double)x[i * c + ch] - mean) * scale + shift);                            \
                y[i * c + ch] = relu && !(v > 0) ? (T)0 : v;                                          \
            }                                                                                         \
            mean_out[ch] = (T)mean;                                                                   \
            invstd_out[ch] = (T)invstd;                                                               \
        }                                                                                             \
    }                                                                                                 \
    /* With xh = (x - mean) * invstd: dbeta = sum dy, dgamma = sum dy xh, and                         \
     * dx = gamma invstd (dy - dbeta/M - xh dgamma/M) in training (mean and                          \
     * var depend on x), dx = gamma invstd dy in eval (they are constants).                          \
     * mask (the fused relu's output, or NULL): dy counts only where mask > 0. */                    \
    static void bn_bwd_##SFX(const T *x, const T *gamma, const T *mean_in, const T *invstd_in,       \
                             const T *dy, const T *mask, T *dx, T *dgamma, T *dbeta, int64_t m,       \
                             int64_t c, int train)                                                    \
    {                                                                                                 \
        _Pragma("omp parallel for if (m * c >= BG_PAR_MIN)")                                            \
        for (int64_t ch = 0; ch < c; ch++) {                                                          \
            double mean = (double)mean_in[ch], invstd = (double)invstd_in[ch];                        \
            double sum_dy = 0, sum_dy_xh = 0;                                                         \
            for (int64_t i = 0; i < m; i++) {                                                         \
                double g = mask && !(mask[i * c + ch] > 0) ? 0.0 : (double)dy[i * c + ch];            \
                sum_dy += g;                                                                          \
                sum_dy_xh += g * ((double)x[i * c + ch] - mean) * invstd;                             \
            }                                                                                         \
            if (dgamma) dgamma[ch] = (T)((double)dgamma[ch] + sum_dy_xh);                             \
            if (dbeta) dbeta[ch] = (T)((double)dbeta[ch] + sum_dy);                                   \
            if (!dx) continue;                                                                        \
            double k = (double)gamma[ch] * invstd;                                                    \
            double mean_dy = train ? sum_dy / (double)m : 0, mean_dy_xh = train ? sum_dy_xh / (double)m : 0; \
            for (int64_t i = 0; i < m; i++) {                                                         \
                double xh = ((double)x[i * c + ch] - mean) * invstd;                                  \
                double d = mask && !(mask[i * c + ch] > 0) ? 0.0 : (double)dy[i * c + ch];            \
                double g = d - mean_dy - xh * mean_dy_xh;                                             \
                dx[i * c + ch] = (T)((double)dx[i * c + ch] + k * g);                                 \
            }                                                                                         \
        }                                                                                             \
    }

DEFINE_BN(float, f32)
DEFINE_BN(double, f64)

static bg_status dtype_error(bg_ctx *ctx, const bg_tensor *x)
{
    return bg_fail(ctx, BG_ERR_DTYPE, "batchnorm2d: x '%s' is %s; the CPU kernel takes f32 or f64", x->name,
                   bg_dtype_name(x->dtype));
}

/* The fused row shares everything below; this tells them apart. */
static int fused_relu(const bg_node *n) { return n->op == &bg_op_batchnorm2d_relu; }

static bg_status bn_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *rm = n->in[3], *rv = n->in[4];
    const bg_batchnorm_params *p = BG_PARAMS(n, bg_batchnorm_params);
    int64_t c = x->shape[3], m = bg_numel(x) / (c ? c : 1);
    char b[96];
    /* The unbiased variance needs two values; PyTorch refuses this too. The
     * mode can change after shape inference, so the check lives here. */
    if (n->train && m < 2)
        return bg_fail(ctx, BG_ERR_SHAPE, "batchnorm2d: training needs more than one value per channel, x '%s' is %s",
                       x->name, bg_shape_str(x, b, sizeof b));
    switch (x->dtype) {
    case BG_F32:
        bn_fwd_f32(x->data, gamma->data, beta->data, rm->data, rv->data, n->saved[0]->data, n->saved[1]->data,
                   n->out[0]->data, m, c, n->train, p->momentum, p->eps, fused_relu(n));
        return BG_OK;
    case BG_F64:
        bn_fwd_f64(x->data, gamma->data, beta->data, rm->data, rv->data, n->saved[0]->data, n->saved[1]->data,
                   n->out[0]->data, m, c, n->train, p->momentum, p->eps, fused_relu(n));
        return BG_OK;
    default: return dtype_error(ctx, x);
    }
}

static bg_status bn_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *dy = n->out[0]->grad;
    if (!dy || (!x->grad && !gamma->grad && !beta->grad)) return BG_OK;
    int64_t c = x->shape[3], m = bg_numel(x) / (c ? c : 1);
    void *dx = bg_grad_or_null(x), *dg = bg_grad_or_null(gamma), *db = bg_grad_or_null(beta);
    const void *mask = fused_relu(n) ? n->out[0]->data : NULL;
    switch (x->dtype) {
    case BG_F32:
        bn_bwd_f32(x->data, gamma->data, n->saved[0]->data, n->saved[1]->data, dy->data, mask, dx, dg, db, m, c,
                   n->train);
        return BG_OK;
    case BG_F64:
        bn_bwd_f64(x->data, gamma->data, n->saved[0]->data, n->saved[1]->data, dy->data, mask, dx, dg, db, m, c,
                   n->train);
        return BG_OK;
    default: return dtype_error(ctx, x);
    }
}

/* ---- CUDA glue ---------------------------------------------------------------- */
#ifdef BG_WITH_CUDA
static bg_status cuda_check(bg_ctx *ctx, const bg_node *n)
{
    const bg_tensor *x = n->in[0];
    if (x->dtype != BG_F32 && x->dtype != BG_F16)
        return bg_fail(ctx, BG_ERR_DTYPE, "batchnorm2d: x '%s' is %s; the CUDA kernel takes f32 or f16", x->name,
                       bg_dtype_name(x->dtype));
    if (n->n_saved < 3)
        return bg_fail(ctx, BG_ERR_ARG, "batchnorm2d: node for '%s' was built without the CUDA workspace", x->name);
    return BG_OK;
}

static bg_status bn_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0];
    const bg_batchnorm_params *p = BG_PARAMS(n, bg_batchnorm_params);
    bg_status s = cuda_check(ctx, n);
    if (s) return s;
    int64_t c = x->shape[3], m = bg_numel(x) / (c ? c : 1);
    char b[96];
    if (n->train && m < 2)
        return bg_fail(ctx, BG_ERR_SHAPE, "batchnorm2d: training needs more than one value per channel, x '%s' is %s",
                       x->name, bg_shape_str(x, b, sizeof b));
    bg_bn_fwd_args a = {
        .x = x->data, .y = n->out[0]->data,
        .gamma = n->in[1]->data, .beta = n->in[2]->data,
        .running_mean = n->in[3]->data, .running_var = n->in[4]->data,
        .mean = n->saved[0]->data, .invstd = n->saved[1]->data, .work = n->saved[2]->data,
        .m = m, .c = c,
        .x_half = x->dtype == BG_F16, .p_half = n->in[1]->dtype == BG_F16,
        .train = n->train, .relu = fused_relu(n),
        .momentum = p->momentum, .eps = p->eps,
    };
    bg_cuda_bn_fwd(&a, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status bn_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *dy = n->out[0]->grad;
    if (!dy || (!x->grad && !gamma->grad && !beta->grad)) return BG_OK;
    bg_status s = cuda_check(ctx, n);
    if (s) return s;
    int64_t c = x->shape[3], m = bg_numel(x) / (c ? c : 1);
    bg_bn_bwd_args a = {
        .x = x->data, .y = n->out[0]->data, .dy = dy->data, .dx = bg_grad_or_null(x),
        .gamma = gamma->data, .dgamma = bg_grad_or_null(gamma), .dbeta = bg_grad_or_null(beta),
        .mean = n->saved[0]->data, .invstd = n->saved[1]->data, .work = n->saved[2]->data,
        .m = m, .c = c,
        .x_half = x->dtype == BG_F16, .p_half = gamma->dtype == BG_F16,
        .train = n->train, .relu = fused_relu(n),
    };
    bg_cuda_bn_bwd(&a, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

/* The two rows share inputs, parameters, shape rules and kernels. */
/* Backward reads x, gamma and the saved statistics; the fused row also its
 * output (the relu mask): READS is the row's bg_op.bwd_reads. */
#define BN_ROW(NAME, READS)                                                                                 \
    {                                                                                                       \
        .name = NAME, .n_in = 5, .n_in_required = 5,                                                       \
        .in_names = {"x", "gamma", "beta", "running_mean", "running_var"}, .out_names = {"y"},             \
        .in_differentiable = {true, true, true, false, false}, .param_size = sizeof(bg_batchnorm_params),  \
        .fields = {{"momentum", BG_P_FLOAT, offsetof(bg_batchnorm_params, momentum), {0.1}},               \
                   {"eps", BG_P_FLOAT, offsetof(bg_batchnorm_params, eps), {1e-5}}},                       \
        .n_fields = 2, .infer = infer_bn,                                                                   \
        .fwd = {[BG_CPU] = bn_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(bn_fwd_cuda)},                               \
        .bwd = {[BG_CPU] = bn_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(bn_bwd_cuda)},                               \
        .fast_fwd = bg_fast_bn_fwd, .fast_bwd = bg_fast_bn_bwd, .fast_bwd_stores = true,                    \
        .bwd_reads = BG_BWD_STATED | BG_BWD_IN(0) | BG_BWD_IN(1) | (READS),                                \
    }

const bg_op bg_op_batchnorm2d = BN_ROW("batchnorm2d", 0);

/* Fused BN + ReLU: every device with batchnorm2d kernels runs it (the CUDA
 * kernels take the relu flag on all their paths), so no supports check. */
const bg_op bg_op_batchnorm2d_relu = BN_ROW("batchnorm2d_relu", BG_BWD_OUT(0));

bg_tensor *bg_batchnorm2d_relu(bg_graph *g, bg_tensor *x, bg_tensor *gamma, bg_tensor *beta, bg_tensor *rmean,
                               bg_tensor *rvar, bg_batchnorm_params p)
{
    bg_tensor *in[5] = {x, gamma, beta, rmean, rvar};
    return bg_graph_op(g, &bg_op_batchnorm2d_relu, &p, in, 5);
}

bg_tensor *bg_batchnorm2d(bg_graph *g, bg_tensor *x, bg_tensor *gamma, bg_tensor *beta, bg_tensor *rmean,
                          bg_tensor *rvar, bg_batchnorm_params p)
{
    bg_tensor *in[5] = {x, gamma, beta, rmean, rvar};
    return bg_graph_op(g, &bg_op_batchnorm2d, &p, in, 5);
}
