/* softmax_xent: mean softmax cross-entropy of logits {N,K} against integer
 * labels {N} (i32), with PyTorch's label smoothing: the target of row i is
 * (1-eps) * onehot(label_i) + eps/K, so
 *     loss_i = logsumexp(x_i) - sum_k target_k * x_ik,
 * and the output {1} is the mean over the N rows. Everything is computed in
 * double via log-sum-exp (shifted by the row max), so large logits do not
 * overflow. The forward saves the softmax probabilities for the backward:
 *     dx_ik += (p_ik - target_ik) / N * dloss.
 *
 * CUDA (kernels/loss.cu): f32 or f16 logits; the loss and the saved
 * probabilities are f32 for f16 logits (loss in FP32 under mixed
 * precision), and the node keeps the per-row losses {N} f32 as a second
 * saved tensor so the mean is summed in a fixed order. Labels are not read
 * on the host there: an out-of-range label gives a NaN loss. */
#include <math.h>
#include <stdlib.h>
#include "op_util.h"
#include "ops.h"
#ifdef BG_WITH_CUDA
#include "../kernels/loss.h"
#endif

static bg_status infer_xent(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                            int *n_saved)
{
    const bg_tensor *x = n->in[0], *lab = n->in[1];
    float eps = BG_PARAMS(n, bg_xent_params)->label_smoothing;
    char bx[96], bl[96];
    bg_status s = bg_op_check_float(ctx, n, 0);
    if (s) return s;
    if ((s = bg_check_ndim(ctx, x, 2, "softmax_xent: logits"))) return s;
    if ((s = bg_check_ndim(ctx, lab, 1, "softmax_xent: labels"))) return s;
    if (lab->dtype != BG_I32)
        return bg_fail(ctx, BG_ERR_DTYPE, "softmax_xent: labels '%s' must be i32, got %s", lab->name,
                       bg_dtype_name(lab->dtype));
    if (lab->shape[0] != x->shape[0])
        return bg_fail(ctx, BG_ERR_SHAPE, "softmax_xent: labels '%s' %s do not match the batch of logits '%s' %s",
                       lab->name, bg_shape_str(lab, bl, sizeof bl), x->name, bg_shape_str(x, bx, sizeof bx));
    if (x->shape[0] < 1 || x->shape[1] < 1)
        return bg_fail(ctx, BG_ERR_SHAPE, "softmax_xent: logits '%s' %s: the mean needs at least one row and one class",
                       x->name, bg_shape_str(x, bx, sizeof bx));
    if (!(eps >= 0.0f && eps <= 1.0f))
        return bg_fail(ctx, BG_ERR_ARG, "softmax_xent: label_smoothing %g is outside [0, 1]", (double)eps);
    int64_t one = 1;
    bg_dtype ldt = x->dtype == BG_F16 ? BG_F32 : x->dtype; /* the loss stays f32 under f16 */
    out[0] = bg_desc_make(ldt, 1, &one);
    *n_out = 1;
    saved[0] = bg_desc_make(ldt, 2, x->shape); /* softmax probabilities */
    *n_saved = 1;
    if (x->device == BG_CUDA) {
        saved[1] = bg_desc_make(BG_F32, 1, x->shape); /* per-row losses */
        *n_saved = 2;
    }
    return BG_OK;
}

/* Row i: probabilities into p, the row's loss returned. Labels are checked
 * by the caller. */
#define DEFINE_XENT(T, SFX)                                                                   \
    static double xent_row_##SFX(const T *x, T *p, int64_t k, int32_t label, double eps)     \
    {                                                                                         \
        double mx = (double)x[0], sum = 0, sum_x = 0;                                         \
        for (int64_t j = 1; j < k; j++)                                                       \
            if ((double)x[j] > mx) mx = (double)x[j];                                         \
        for (int64_t j = 0; j < k; j++) {                                                     \
            sum += exp((double)x[j] - mx);                                                    \
            sum_x += (double)x[j];                                                            \
        }                                                                                     \
        double lse = mx + log(sum);                                                           \
        for (int64_t j = 0; j < k; j++) p[j] = (T)exp((double)x[j] - lse);                   \
        /* sum_k target_k x_k with target = (1-eps) onehot + eps/K */                         \
        double tx = (1.0 - eps) * (double)x[label] + eps / (double)k * sum_x;                 \
        return lse - tx;                                                                      \
    }                                                                                         \
    static void xent_bwd_##SFX(const T *p, const int32_t *lab, T *dx, int64_t n, int64_t k,  \
                               double eps, double scale)                                      \
    {                                                                                         \
        _Pragma("omp parallel for if (n * k >= 32768)")                                     \
        for (int64_t i = 0; i < n; i++)                                                       \
            for (int64_t j = 0; j < k; j++) {                                                 \
                double target = (j == lab[i] ? 1.0 - eps : 0.0) + eps / (double)k;            \
                dx[i * k + j] = (T)((double)dx[i * k + j] + ((double)p[i * k + j] - target) * scale); \
            }                                                                                 \
    }

DEFINE_XENT(float, f32)
DEFINE_XENT(double, f64)

static bg_status xent_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *labt = n->in[1];
    int64_t rows = x->shape[0], k = x->shape[1];
    const int32_t *lab = labt->data;
    double eps = BG_PARAMS(n, bg_xent_params)->label_smoothing;
    if (x->dtype != BG_F32 && x->dtype != BG_F64)
        return bg_fail(ctx, BG_ERR_DTYPE, "softmax_xent: logits '%s' are %s; the CPU kernel takes f32 or f64", x->name,
                       bg_dtype_name(x->dtype));
    for (int64_t i = 0; i < rows; i++)
        if (lab[i] < 0 || lab[i] >= k)
            return bg_fail(ctx, BG_ERR_ARG, "softmax_xent: labels '%s'[%lld] = %d is outside [0, %lld)", labt->name,
                           (long long)i, (int)lab[i], (long long)k);
    /* Per-row losses land in their own slots and are summed in row order
     * afterwards, so the result does not depend on the thread count. */
    double *row_loss = malloc((size_t)rows * sizeof *row_loss);
    if (!row_loss) return bg_fail(ctx, BG_ERR_OOM, "softmax_xent: out of host memory for %lld row losses", (long long)rows);
    bool f32 = x->dtype == BG_F32;
#pragma omp parallel for if (rows * k >= 32768)
    for (int64_t i = 0; i < rows; i++) {
        if (f32)
            row_loss[i] = xent_row_f32((const float *)x->data + i * k, (float *)n->saved[0]->data + i * k, k, lab[i], eps);
        else
            row_loss[i] = xent_row_f64((const double *)x->data + i * k, (double *)n->saved[0]->data + i * k, k, lab[i], eps);
    }
    double total = 0;
    for (int64_t i = 0; i < rows; i++) total += row_loss[i];
    free(row_loss);
    bg_set(n->out[0], 0, total / (double)rows);
    return BG_OK;
}

static bg_status xent_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dloss = n->out[0]->grad;
    if (!x->grad || !dloss) return BG_OK;
    int64_t rows = x->shape[0], k = x->shape[1];
    double eps = BG_PARAMS(n, bg_xent_params)->label_smoothing;
    double scale = bg_get(dloss, 0) / (double)rows;
    const int32_t *lab = n->in[1]->data;
    switch (x->dtype) {
    case BG_F32: xent_bwd_f32(n->saved[0]->data, lab, x->grad->data, rows, k, eps, scale); return BG_OK;
    case BG_F64: xent_bwd_f64(n->saved[0]->data, lab, x->grad->data, rows, k, eps, scale); return BG_OK;
    default:
        return bg_fail(ctx, BG_ERR_DTYPE, "softmax_xent: logits '%s' are %s; the CPU kernel takes f32 or f64", x->name,
                       bg_dtype_name(x->dtype));
    }
}

#ifdef BG_WITH_CUDA
static bg_status xent_check_cuda(bg_ctx *ctx, const bg_node *n)
{
    const bg_tensor *x = n->in[0];
    if (x->dtype != BG_F32 && x->dtype != BG_F16)
        return bg_fail(ctx, BG_ERR_DTYPE, "softmax_xent: logits '%s' are %s; the CUDA kernel takes f32 or f16", x->name,
                       bg_dtype_name(x->dtype));
    if (n->n_saved < 2 || n->out[0]->dtype != BG_F32)
        return bg_fail(ctx, BG_ERR_ARG, "softmax_xent: node for '%s' was not built for CUDA", x->name);
    return BG_OK;
}

static bg_status xent_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    bg_status s = xent_check_cuda(ctx, n);
    if (s) return s;
    bg_cuda_xent_fwd(x->data, n->in[1]->data, n->saved[0]->data, n->saved[1]->data, n->out[0]->data, x->shape[0],
                     x->shape[1], BG_PARAMS(n, bg_xent_params)->label_smoothing, x->dtype == BG_F16, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status xent_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dloss = n->out[0]->grad;
    if (!x->grad || !dloss) return BG_OK;
    bg_status s = xent_check_cuda(ctx, n);
    if (s) return s;
    bg_cuda_xent_bwd(n->saved[0]->data, n->in[1]->data, dloss->data, x->grad->data, x->shape[0], x->shape[1],
                     BG_PARAMS(n, bg_xent_params)->label_smoothing, x->dtype == BG_F16, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

const bg_op bg_op_softmax_xent = {
    .name = "softmax_xent",
    .n_in = 2,
    .n_in_required = 2,
    .in_names = {"logits", "labels"},
    .out_names = {"loss"},
    .in_differentiable = {true, false},
    .param_size = sizeof(bg_xent_params),
    .fields = {{"label_smoothing", BG_P_FLOAT, offsetof(bg_xent_params, label_smoothing), {0}}},
    .n_fields = 1,
    .infer = infer_xent,
    .fwd = {[BG_CPU] = xent_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(xent_fwd_cuda)},
    .bwd = {[BG_CPU] = xent_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(xent_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED | BG_BWD_IN(1), /* the saved softmax and the labels */
};

bg_tensor *bg_softmax_xent(bg_graph *g, bg_tensor *logits, bg_tensor *labels, float label_smoothing)
{
    bg_xent_params p = {.label_smoothing = label_smoothing};
    bg_tensor *in[2] = {logits, labels};
    return bg_graph_op(g, &bg_op_softmax_xent, &p, in, 2);
}
