/* Shape ops: flatten, reshape, concat.
 *
 * flatten and reshape keep the row-major element order of the tensor as
 * stored. Activations are NHWC, so flatten({N,H,W,C}, 1) gives {N, H*W*C}
 * with the channel index fastest: NOT the order of PyTorch's flatten on an
 * NCHW tensor ({N, C*H*W}, width fastest). A linear layer after a flatten
 * of a map with H*W > 1 therefore needs its weight columns permuted when
 * weights are exchanged with PyTorch; after a global pool (H = W = 1) the two
 * orders agree.
 *
 * Both copy the data (no aliasing views): simple and obviously correct, at
 * the price of one copy. The forward copies bytes, so it works for any dtype;
 * the backward adds gradients and needs f32 or f64.
 *
 * concat joins 2 to 6 inputs along the last (channel) axis.
 *
 * CUDA: the forward copies are device-to-device copies on the context's
 * stream (stream-ordered, capturable into a CUDA graph); the backward adds
 * and concat run in kernels/shape.cu (f32 or f16 gradients). */
#include <stdio.h>
#include <string.h>
#include "op_util.h"
#include "ops.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#include "../kernels/shape.h"
#endif


/* dst[i] += src[i] for i < cnt, either float type (dst and src share it). */
static void add_into(void *dst, const void *src, int64_t cnt, bg_dtype dt)
{
    if (dt == BG_F32) {
        float *d = dst;
        const float *s = src;
#pragma omp parallel for if (cnt >= BG_PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) d[i] += s[i];
    } else {
        double *d = dst;
        const double *s = src;
#pragma omp parallel for if (cnt >= BG_PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) d[i] += s[i];
    }
}

/* ---- flatten and reshape: same bytes, new shape ------------------------------ */

static bg_status copy_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    (void)ctx;
    memcpy(n->out[0]->data, n->in[0]->data, bg_nbytes(n->in[0]));
    return BG_OK;
}

static bg_status copy_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    bg_status s = bg_op_cpu_dtype(ctx, n, x, "x");
    if (s) return s;
    add_into(x->grad->data, dy->data, bg_numel(x), x->dtype);
    return BG_OK;
}

static bg_status infer_flatten(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                               int *n_saved)
{
    (void)saved;
    const bg_tensor *x = n->in[0];
    int sd = BG_PARAMS(n, bg_flatten_params)->start_dim;
    char b[96];
    if (x->ndim < 1)
        return bg_fail(ctx, BG_ERR_SHAPE, "flatten: x '%s' %s has no dims to flatten", x->name,
                       bg_shape_str(x, b, sizeof b));
    if (sd < 0) sd += x->ndim; /* -1 = the last dim, as PyTorch */
    if (sd < 0 || sd >= x->ndim)
        return bg_fail(ctx, BG_ERR_ARG, "flatten: start_dim %d is out of range for x '%s' %s",
                       BG_PARAMS(n, bg_flatten_params)->start_dim, x->name, bg_shape_str(x, b, sizeof b));
    int64_t shape[BG_MAX_DIMS], tail = 1;
    for (int d = 0; d < sd; d++) shape[d] = x->shape[d];
    for (int d = sd; d < x->ndim; d++) tail *= x->shape[d];
    shape[sd] = tail;
    out[0] = bg_desc_make(x->dtype, sd + 1, shape);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

/* The target shape: entries up to the last non-zero one, at most one -1
 * (inferred), every other entry positive. */
static bg_status infer_reshape(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                               int *n_saved)
{
    (void)saved;
    const bg_tensor *x = n->in[0];
    const int *want = BG_PARAMS(n, bg_reshape_params)->shape;
    char b[96], w[64];
    int nd = 0;
    for (int d = 0; d < 4; d++)
        if (want[d] != 0) nd = d + 1;
    size_t k = (size_t)snprintf(w, sizeof w, "[");
    for (int d = 0; d < nd; d++) k += (size_t)snprintf(w + k, sizeof w - k, d ? ", %d" : "%d", want[d]);
    snprintf(w + k, sizeof w - k, "]");
    if (nd == 0) return bg_fail(ctx, BG_ERR_ARG, "reshape: shape %s names no dims", w);
    int64_t shape[BG_MAX_DIMS], known = 1;
    int infer_at = -1;
    for (int d = 0; d < nd; d++) {
        if (want[d] == -1 && infer_at < 0) {
            infer_at = d;
            shape[d] = 1;
            continue;
        }
        if (want[d] == -1)
            return bg_fail(ctx, BG_ERR_ARG, "reshape: shape %s has more than one -1", w);
        if (want[d] <= 0)
            return bg_fail(ctx, BG_ERR_ARG,
                           "reshape: shape %s: dim %d is %d (dims are positive, one may be -1, unused trailing dims 0)",
                           w, d, want[d]);
        shape[d] = want[d];
        known *= want[d];
    }
    int64_t cnt = bg_numel(x);
    if (infer_at >= 0) {
        if (cnt % known)
            return bg_fail(ctx, BG_ERR_SHAPE, "reshape: x '%s' %s (%lld elements) does not fit shape %s", x->name,
                           bg_shape_str(x, b, sizeof b), (long long)cnt, w);
        shape[infer_at] = cnt / known;
    } else if (known != cnt) {
        return bg_fail(ctx, BG_ERR_SHAPE, "reshape: x '%s' %s (%lld elements) does not fit shape %s", x->name,
                       bg_shape_str(x, b, sizeof b), (long long)cnt, w);
    }
    out[0] = bg_desc_make(x->dtype, nd, shape);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

/* ---- concat ----------------------------------------------------------------- */

/* Present inputs form a prefix x0..x(k-1); returns k. */
static int concat_count(const bg_node *n)
{
    int k = 0;
    while (k < n->n_in && n->in[k]) k++;
    return k;
}

static bg_status infer_concat(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                              int *n_saved)
{
    (void)saved;
    int k = concat_count(n);
    for (int i = k; i < n->n_in; i++)
        if (n->in[i])
            return bg_fail(ctx, BG_ERR_ARG, "concat: input %s '%s' is given but %s is missing (inputs must be x0, x1, ...)",
                           n->op->in_names[i], n->in[i]->name, n->op->in_names[k]);
    const bg_tensor *x0 = n->in[0];
    char b0[96], bi[96];
    if (x0->ndim < 1)
        return bg_fail(ctx, BG_ERR_SHAPE, "concat: x0 '%s' %s has no axis to join along", x0->name,
                       bg_shape_str(x0, b0, sizeof b0));
    int64_t shape[BG_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[x0->ndim - 1] = 0;
    for (int i = 0; i < k; i++) {
        const bg_tensor *x = n->in[i];
        bg_status s = bg_op_check_same_dtype(ctx, n, i, 0);
        if (s) return s;
        bool ok = x->ndim == x0->ndim;
        for (int d = 0; ok && d < x0->ndim - 1; d++) ok = x->shape[d] == x0->shape[d];
        if (!ok)
            return bg_fail(ctx, BG_ERR_SHAPE,
                           "concat: %s '%s' %s does not match x0 '%s' %s (same rank, all dims but the last equal)",
                           n->op->in_names[i], x->name, bg_shape_str(x, bi, sizeof bi), x0->name,
                           bg_shape_str(x0, b0, sizeof b0));
        shape[x0->ndim - 1] += x->shape[x0->ndim - 1];
    }
    out[0] = bg_desc_make(x0->dtype, x0->ndim, shape);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

/* Every row (all dims but the last) of y is the rows of x0, x1, ... side by side. */
static bg_status concat_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    (void)ctx;
    int k = concat_count(n);
    const bg_tensor *y = n->out[0];
    size_t es = bg_dtype_size(y->dtype);
    int64_t wy = y->shape[y->ndim - 1], rows = wy ? bg_numel(y) / wy : 0;
    int64_t col = 0; /* first channel of input i within a row of y */
    for (int i = 0; i < k; i++) {
        const bg_tensor *x = n->in[i];
        int64_t wx = x->shape[x->ndim - 1];
        const unsigned char *src = x->data;
        unsigned char *dst = y->data;
#pragma omp parallel for if (rows * wx >= BG_PAR_MIN)
        for (int64_t r = 0; r < rows; r++)
            memcpy(dst + (size_t)(r * wy + col) * es, src + (size_t)(r * wx) * es, (size_t)wx * es);
        col += wx;
    }
    return BG_OK;
}

#define DEFINE_CONCAT_BWD(T, SFX)                                                          \
    static void concat_slice_bwd_##SFX(const T *dy, T *dx, int64_t rows, int64_t wy,     \
                                       int64_t col, int64_t wx)                           \
    {                                                                                      \
        _Pragma("omp parallel for if (rows * wx >= BG_PAR_MIN)")                             \
        for (int64_t r = 0; r < rows; r++)                                                 \
            for (int64_t c = 0; c < wx; c++) dx[r * wx + c] += dy[r * wy + col + c];       \
    }

DEFINE_CONCAT_BWD(float, f32)
DEFINE_CONCAT_BWD(double, f64)

static bg_status concat_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    int k = concat_count(n);
    const bg_tensor *y = n->out[0], *dy = y->grad;
    if (!dy) return BG_OK;
    int64_t wy = y->shape[y->ndim - 1], rows = wy ? bg_numel(y) / wy : 0;
    int64_t col = 0;
    for (int i = 0; i < k; i++) {
        bg_tensor *x = n->in[i];
        int64_t wx = x->shape[x->ndim - 1];
        if (x->grad) {
            bg_status s = bg_op_cpu_dtype(ctx, n, x, n->op->in_names[i]);
            if (s) return s;
            if (x->dtype == BG_F32) concat_slice_bwd_f32(dy->data, x->grad->data, rows, wy, col, wx);
            else concat_slice_bwd_f64(dy->data, x->grad->data, rows, wy, col, wx);
        }
        col += wx;
    }
    return BG_OK;
}

/* ---- CUDA glue ----------------------------------------------------------------- */
#ifdef BG_WITH_CUDA
static bg_status copy_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    char err[200];
    if (bg_cuda_memcpy(n->out[0]->data, n->in[0]->data, bg_nbytes(n->in[0]), BG_COPY_D2D, ctx->stream, err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "%s forward of '%s': %s", n->op->name, n->in[0]->name, err);
    return BG_OK;
}

static bg_status copy_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    int half;
    bg_status s = bg_op_cuda_dtype(ctx, n, x, "x", &half);
    if (s) return s;
    bg_cuda_add_into(x->grad->data, dy->data, bg_numel(x), x->dtype == BG_F16, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}

static bg_concat_args concat_args(const bg_node *n, int64_t *rows)
{
    bg_concat_args a;
    memset(&a, 0, sizeof a);
    a.n = concat_count(n);
    for (int i = 0; i < a.n && i < BG_CONCAT_MAX; i++) {
        const bg_tensor *x = n->in[i];
        a.x[i] = x->data;
        a.grad[i] = x->grad ? x->grad->data : NULL;
        a.width[i] = x->shape[x->ndim - 1];
    }
    const bg_tensor *y = n->out[0];
    int64_t wy = y->shape[y->ndim - 1];
    *rows = wy ? bg_numel(y) / wy : 0;
    return a;
}

static bg_status concat_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int64_t rows;
    bg_concat_args a = concat_args(n, &rows);
    bg_cuda_concat_fwd(&a, n->out[0]->data, rows, bg_dtype_size(n->out[0]->dtype), ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status concat_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    int64_t rows;
    bg_concat_args a = concat_args(n, &rows);
    bool any = false;
    for (int i = 0; i < a.n; i++) {
        if (!a.grad[i]) continue;
        int half;
        bg_status s = bg_op_cuda_dtype(ctx, n, n->in[i], n->op->in_names[i], &half);
        if (s) return s;
        any = true;
    }
    if (!any) return BG_OK;
    bg_cuda_concat_bwd(&a, dy->data, rows, dy->dtype == BG_F16, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

/* ---- rows and builders ----------------------------------------------------- */

const bg_op bg_op_flatten = {
    .name = "flatten",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    .param_size = sizeof(bg_flatten_params),
    .fields = {{"start_dim", BG_P_INT, offsetof(bg_flatten_params, start_dim), {1}}},
    .n_fields = 1,
    .infer = infer_flatten,
    .fwd = {[BG_CPU] = copy_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(copy_fwd_cuda)},
    .bwd = {[BG_CPU] = copy_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(copy_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED, /* a copy back */
};

const bg_op bg_op_reshape = {
    .name = "reshape",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    .param_size = sizeof(bg_reshape_params),
    .fields = {{"shape", BG_P_INT4, offsetof(bg_reshape_params, shape), {-1, 0, 0, 0}}},
    .n_fields = 1,
    .infer = infer_reshape,
    .fwd = {[BG_CPU] = copy_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(copy_fwd_cuda)},
    .bwd = {[BG_CPU] = copy_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(copy_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED, /* a copy back */
};

const bg_op bg_op_concat = {
    .name = "concat",
    .n_in = 6,
    .n_in_required = 2,
    .in_names = {"x0", "x1", "x2", "x3", "x4", "x5"},
    .out_names = {"y"},
    .in_differentiable = {true, true, true, true, true, true},
    .param_size = sizeof(bg_noparams),
    .infer = infer_concat,
    .fwd = {[BG_CPU] = concat_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(concat_fwd_cuda)},
    .bwd = {[BG_CPU] = concat_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(concat_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED, /* slices of dy */
};

bg_tensor *bg_flatten(bg_graph *g, bg_tensor *x, int start_dim)
{
    bg_flatten_params p = {.start_dim = start_dim};
    return bg_graph_op(g, &bg_op_flatten, &p, &x, 1);
}

bg_tensor *bg_reshape(bg_graph *g, bg_tensor *x, int ndim, const int *shape)
{
    if (ndim < 1 || ndim > BG_MAX_DIMS) {
        bg_fail(g->ctx, BG_ERR_ARG, "reshape: %d dims asked (1 to %d)", ndim, BG_MAX_DIMS);
        return NULL;
    }
    bg_reshape_params p = {{0, 0, 0, 0}};
    for (int d = 0; d < ndim; d++) {
        /* a 0 would read as "unused" and silently drop this and later dims */
        if (shape[d] == 0) {
            bg_fail(g->ctx, BG_ERR_ARG, "reshape: dim %d is 0 (dims are positive, one may be -1)", d);
            return NULL;
        }
        p.shape[d] = shape[d];
    }
    return bg_graph_op(g, &bg_op_reshape, &p, &x, 1);
}

bg_tensor *bg_concat(bg_graph *g, bg_tensor *const *xs, int n)
{
    if (n < 2 || n > BG_MAX_IN) {
        bg_fail(g->ctx, BG_ERR_ARG, "concat: %d inputs (2 to %d)", n, BG_MAX_IN);
        return NULL;
    }
    /* bg_graph_op only checks the required inputs; a NULL among the optional
     * ones is an earlier failure too, and must not be skipped silently. */
    for (int i = 0; i < n; i++)
        if (!xs[i]) return NULL;
    return bg_graph_op(g, &bg_op_concat, NULL, xs, n);
}
