/* Elementwise activations: relu and sigmoid. Any rank, output shape = input's.
 * The CPU bodies are written once per element type by the DEFINE_* macros
 * below (instantiated for float and double); CUDA lives in kernels/elementwise.cu. */
#include <math.h>
#include "op_util.h"
#include "ops.h"
#include "fast/fast.h"
#ifdef BG_WITH_CUDA
#include "../kernels/elementwise.h"
#endif


static bg_status infer_unary(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                             int *n_saved)
{
    (void)saved;
    const bg_tensor *x = n->in[0];
    bg_status s = bg_op_check_float(ctx, n, 0);
    if (s) return s;
    out[0] = bg_desc_make(x->dtype, x->ndim, x->shape);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

/* ---- CPU bodies ---------------------------------------------------------- */

/* relu' is taken as 0 at x == 0 (as PyTorch), so the mask is x > 0. */
#define DEFINE_RELU(T, SFX)                                                          \
    static void relu_fwd_##SFX(const T *x, T *y, int64_t cnt)                       \
    {                                                                                \
        _Pragma("omp parallel for if (cnt >= BG_PAR_MIN)")                             \
        for (int64_t i = 0; i < cnt; i++) y[i] = x[i] > 0 ? x[i] : (T)0;            \
    }                                                                                \
    static void relu_bwd_##SFX(const T *x, const T *dy, T *dx, int64_t cnt)         \
    {                                                                                \
        _Pragma("omp parallel for if (cnt >= BG_PAR_MIN)")                             \
        for (int64_t i = 0; i < cnt; i++)                                            \
            if (x[i] > 0) dx[i] += dy[i];                                            \
    }

/* Two branches so exp never overflows: for x < 0, e^x/(1+e^x) instead of
 * 1/(1+e^-x). Computed in double for both types. Backward uses the saved
 * output: sigma' = y(1-y). */
#define DEFINE_SIGMOID(T, SFX)                                                       \
    static void sigmoid_fwd_##SFX(const T *x, T *y, int64_t cnt)                    \
    {                                                                                \
        _Pragma("omp parallel for if (cnt >= BG_PAR_MIN)")                             \
        for (int64_t i = 0; i < cnt; i++) {                                          \
            double v = (double)x[i];                                                 \
            double e = exp(-fabs(v));                                                \
            y[i] = (T)(v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));                    \
        }                                                                            \
    }                                                                                \
    static void sigmoid_bwd_##SFX(const T *y, const T *dy, T *dx, int64_t cnt)      \
    {                                                                                \
        _Pragma("omp parallel for if (cnt >= BG_PAR_MIN)")                             \
        for (int64_t i = 0; i < cnt; i++) {                                          \
            double s = (double)y[i];                                                 \
            dx[i] = (T)((double)dx[i] + (double)dy[i] * s * (1.0 - s));              \
        }                                                                            \
    }

DEFINE_RELU(float, f32)
DEFINE_RELU(double, f64)
DEFINE_SIGMOID(float, f32)
DEFINE_SIGMOID(double, f64)

static bg_status relu_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    int64_t cnt = bg_numel(x);
    switch (x->dtype) {
    case BG_F32: relu_fwd_f32(x->data, n->out[0]->data, cnt); return BG_OK;
    case BG_F64: relu_fwd_f64(x->data, n->out[0]->data, cnt); return BG_OK;
    default: return bg_op_cpu_dtype(ctx, n, x, "x");
    }
}

static bg_status relu_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    bg_tensor *dx = x->grad;
    if (!dx || !dy) return BG_OK;
    int64_t cnt = bg_numel(x);
    switch (x->dtype) {
    case BG_F32: relu_bwd_f32(x->data, dy->data, dx->data, cnt); return BG_OK;
    case BG_F64: relu_bwd_f64(x->data, dy->data, dx->data, cnt); return BG_OK;
    default: return bg_op_cpu_dtype(ctx, n, x, "x");
    }
}

static bg_status sigmoid_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0];
    int64_t cnt = bg_numel(x);
    switch (x->dtype) {
    case BG_F32: sigmoid_fwd_f32(x->data, n->out[0]->data, cnt); return BG_OK;
    case BG_F64: sigmoid_fwd_f64(x->data, n->out[0]->data, cnt); return BG_OK;
    default: return bg_op_cpu_dtype(ctx, n, x, "x");
    }
}

static bg_status sigmoid_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *y = n->out[0], *dy = n->out[0]->grad;
    bg_tensor *dx = x->grad;
    if (!dx || !dy) return BG_OK;
    int64_t cnt = bg_numel(x);
    switch (x->dtype) {
    case BG_F32: sigmoid_bwd_f32(y->data, dy->data, dx->data, cnt); return BG_OK;
    case BG_F64: sigmoid_bwd_f64(y->data, dy->data, dx->data, cnt); return BG_OK;
    default: return bg_op_cpu_dtype(ctx, n, x, "x");
    }
}

/* ---- CUDA glue: dtype check, launch, launch-error check -------------------- */
#ifdef BG_WITH_CUDA
/* f32 or f16 (storage) on the GPU; *half tells the launcher which. */
static bg_status relu_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status s = bg_op_cuda_dtype(ctx, n, n->in[0], "x", &half);
    if (s) return s;
    bg_cuda_relu_fwd(n->in[0]->data, n->out[0]->data, bg_numel(n->in[0]), half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status relu_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    bg_status s = bg_op_cuda_dtype(ctx, n, x, "x", &half);
    if (s) return s;
    bg_cuda_relu_bwd(x->data, dy->data, x->grad->data, bg_numel(x), half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}

static bg_status sigmoid_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status s = bg_op_cuda_dtype(ctx, n, n->in[0], "x", &half);
    if (s) return s;
    bg_cuda_sigmoid_fwd(n->in[0]->data, n->out[0]->data, bg_numel(n->in[0]), half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status sigmoid_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    bg_status s = bg_op_cuda_dtype(ctx, n, x, "x", &half);
    if (s) return s;
    bg_cuda_sigmoid_bwd(n->out[0]->data, dy->data, x->grad->data, bg_numel(x), half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

/* ---- rows and builders ----------------------------------------------------- */

const bg_op bg_op_relu = {
    .name = "relu",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    .param_size = sizeof(bg_noparams),
    .infer = infer_unary,
    .fwd = {[BG_CPU] = relu_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(relu_fwd_cuda)},
    .bwd = {[BG_CPU] = relu_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(relu_bwd_cuda)},
    .fast_fwd = bg_fast_relu_fwd,
    .fast_bwd = bg_fast_relu_bwd,
    .fast_bwd_stores = true,
    .bwd_reads = BG_BWD_STATED | BG_BWD_IN(0), /* the mask comes from x */
    .inplace = BG_BWD_IN(0),                   /* y over x: y > 0 exactly where x > 0 */
};

const bg_op bg_op_sigmoid = {
    .name = "sigmoid",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    .param_size = sizeof(bg_noparams),
    .infer = infer_unary,
    .fwd = {[BG_CPU] = sigmoid_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(sigmoid_fwd_cuda)},
    .bwd = {[BG_CPU] = sigmoid_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(sigmoid_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED | BG_BWD_OUT(0), /* y (1 - y) */
};

bg_tensor *bg_relu(bg_graph *g, bg_tensor *x) { return bg_graph_op(g, &bg_op_relu, NULL, &x, 1); }

bg_tensor *bg_sigmoid(bg_graph *g, bg_tensor *x) { return bg_graph_op(g, &bg_op_sigmoid, NULL, &x, 1); }
