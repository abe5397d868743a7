/* add and mul: y = a + b, y = a * b, where b broadcasts to a. Both have the
 * same rank and every dim of b equals a's or is 1 (an SE gate {N,1,1,C}, a
 * per-channel {1,1,1,C}); the output has a's shape. b's gradient sums over
 * its broadcast dims. Shapes are handled as 4-D, padded with leading 1s. */
#include <string.h>
#include "op_util.h"
#include "ops.h"
#include "fast/fast.h"
#ifdef BG_WITH_CUDA
#include "../kernels/elementwise.h"
#endif


typedef struct {
    int64_t a[4], b[4];
} shapes4;

static shapes4 pad4(const bg_tensor *a, const bg_tensor *b)
{
    shapes4 s;
    int lead = 4 - a->ndim; /* same rank, checked by infer */
    for (int d = 0; d < 4; d++) {
        s.a[d] = d < lead ? 1 : a->shape[d - lead];
        s.b[d] = d < lead ? 1 : b->shape[d - lead];
    }
    return s;
}

static bg_status infer_binary(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                              int *n_saved)
{
    (void)saved;
    const bg_tensor *a = n->in[0], *b = n->in[1];
    char sa[96], sb[96];
    bg_status s;
    if ((s = bg_op_check_float(ctx, n, 0)) || (s = bg_op_check_float(ctx, n, 1)) ||
        (s = bg_op_check_same_dtype(ctx, n, 0, 1)))
        return s;
    bool ok = a->ndim == b->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = b->shape[d] == a->shape[d] || b->shape[d] == 1;
    if (!ok)
        return bg_fail(ctx, BG_ERR_SHAPE,
                       "%s: b '%s' %s does not broadcast to a '%s' %s (same rank, each dim of b equal to a's or 1)",
                       n->op->name, b->name, bg_shape_str(b, sb, sizeof sb), a->name, bg_shape_str(a, sa, sizeof sa));
    out[0] = bg_desc_make(a->dtype, a->ndim, a->shape);
    *n_out = 1;
    *n_saved = 0;
    return BG_OK;
}

/* Offset of the b row paired with row r of a, rows being a's first three
 * (padded) dims; within a row b steps by 1, or by 0 when b's last dim is 1. */
static int64_t b_row_offset(const shapes4 *s, int64_t r)
{
    int64_t i2 = r % s->a[2];
    r /= s->a[2];
    int64_t i1 = r % s->a[1], i0 = r / s->a[1];
    int64_t j0 = s->b[0] == 1 ? 0 : i0, j1 = s->b[1] == 1 ? 0 : i1, j2 = s->b[2] == 1 ? 0 : i2;
    return ((j0 * s->b[1] + j1) * s->b[2] + j2) * s->b[3];
}

/* The bodies, once per element type. `mul` selects the op (a branch that is
 * the same for every element). The products are taken in T, as the GPU does;
 * b's gradient accumulates in double, one element of b at a time (no shared
 * sums between threads, so the result does not depend on the thread count). */
#define DEFINE_BINARY(T, SFX)                                                                  \
    static void binary_fwd_##SFX(const T *a, const T *b, T *y, shapes4 s, int mul)            \
    {                                                                                          \
        int64_t rows = s.a[0] * s.a[1] * s.a[2], w = s.a[3], bstep = s.b[3] == 1 ? 0 : 1;     \
        _Pragma("omp parallel for if (rows * w >= BG_PAR_MIN)")                                  \
        for (int64_t r = 0; r < rows; r++) {                                                   \
            const T *ar = a + r * w, *br = b + b_row_offset(&s, r);                            \
            T *yr = y + r * w;                                                                 \
            for (int64_t k = 0; k < w; k++)                                                    \
                yr[k] = mul ? ar[k] * br[k * bstep] : ar[k] + br[k * bstep];                   \
        }                                                                                      \
    }                                                                                          \
    /* da += dy (add) or dy * b (mul) */                                                       \
    static void binary_bwd_a_##SFX(const T *dy, const T *b, T *da, shapes4 s, int mul)        \
    {                                                                                          \
        int64_t rows = s.a[0] * s.a[1] * s.a[2], w = s.a[3], bstep = s.b[3] == 1 ? 0 : 1;     \
        _Pragma("omp parallel for if (rows * w >= BG_PAR_MIN)")                                  \
        for (int64_t r = 0; r < rows; r++) {                                                   \
            const T *gr = dy + r * w, *br = mul ? b + b_row_offset(&s, r) : NULL;              \
            T *dr = da + r * w;                                                                \
            for (int64_t k = 0; k < w; k++) dr[k] += mul ? gr[k] * br[k * bstep] : gr[k];      \
        }                                                                                      \
    }                                                                                          \
    /* db[j] += sum of dy (add) or dy * a (mul) over the elements of a that                    \
     * element j of b was paired with: b's coordinates on kept dims, every                     \
     * coordinate on the dims b broadcasts over (rd[d] = a[d] there, else 1). */               \
    static void binary_bwd_b_##SFX(const T *dy, const T *a, T *db, shapes4 s, int mul)        \
    {                                                                                          \
        int64_t nb = s.b[0] * s.b[1] * s.b[2] * s.b[3], rd[4], nr = 1;                         \
        for (int d = 0; d < 4; d++) nr *= rd[d] = s.b[d] == 1 ? s.a[d] : 1;                    \
        _Pragma("omp parallel for if (nb * nr >= BG_PAR_MIN)")                                   \
        for (int64_t j = 0; j < nb; j++) {                                                     \
            int64_t cb[4], t = j;                                                              \
            for (int d = 3; d >= 0; d--) cb[d] = t % s.b[d], t /= s.b[d];                      \
            double acc = 0;                                                                    \
            for (int64_t r = 0; r < nr; r++) {                                                 \
                int64_t c[4], u = r;                                                           \
                for (int d = 3; d >= 0; d--) c[d] = cb[d] + u % rd[d], u /= rd[d];             \
                int64_t off = ((c[0] * s.a[1] + c[1]) * s.a[2] + c[2]) * s.a[3] + c[3];        \
                acc += mul ? (double)dy[off] * (double)a[off] : (double)dy[off];               \
            }                                                                                  \
            db[j] = (T)((double)db[j] + acc);                                                  \
        }                                                                                      \
    }

DEFINE_BINARY(float, f32)
DEFINE_BINARY(double, f64)

static bg_status binary_fwd_cpu(bg_ctx *ctx, bg_node *n, int mul)
{
    const bg_tensor *a = n->in[0], *b = n->in[1];
    shapes4 s = pad4(a, b);
    switch (a->dtype) {
    case BG_F32: binary_fwd_f32(a->data, b->data, n->out[0]->data, s, mul); return BG_OK;
    case BG_F64: binary_fwd_f64(a->data, b->data, n->out[0]->data, s, mul); return BG_OK;
    default: return bg_op_cpu_dtype(ctx, n, n->in[0], "a");
    }
}

static bg_status binary_bwd_cpu(bg_ctx *ctx, bg_node *n, int mul)
{
    const bg_tensor *a = n->in[0], *b = n->in[1], *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    shapes4 s = pad4(a, b);
    if (a->dtype != BG_F32 && a->dtype != BG_F64) return bg_op_cpu_dtype(ctx, n, n->in[0], "a");
    bool f32 = a->dtype == BG_F32;
    /* a first, then b: if a and b are one tensor (x * x) both terms land in
     * its grad one after the other. */
    if (a->grad) {
        if (f32) binary_bwd_a_f32(dy->data, b->data, a->grad->data, s, mul);
        else binary_bwd_a_f64(dy->data, b->data, a->grad->data, s, mul);
    }
    if (b->grad) {
        if (f32) binary_bwd_b_f32(dy->data, a->data, b->grad->data, s, mul);
        else binary_bwd_b_f64(dy->data, a->data, b->grad->data, s, mul);
    }
    return BG_OK;
}

static bg_status add_fwd_cpu(bg_ctx *ctx, bg_node *n) { return binary_fwd_cpu(ctx, n, 0); }
static bg_status add_bwd_cpu(bg_ctx *ctx, bg_node *n) { return binary_bwd_cpu(ctx, n, 0); }
static bg_status mul_fwd_cpu(bg_ctx *ctx, bg_node *n) { return binary_fwd_cpu(ctx, n, 1); }
static bg_status mul_bwd_cpu(bg_ctx *ctx, bg_node *n) { return binary_bwd_cpu(ctx, n, 1); }

/* ---- CUDA glue ------------------------------------------------------------- */
#ifdef BG_WITH_CUDA
static bg_status cuda_prep(bg_ctx *ctx, const bg_node *n, bg_ew_shapes *es, int *half)
{
    const bg_tensor *a = n->in[0];
    if (a->dtype != BG_F32 && a->dtype != BG_F16)
        return bg_fail(ctx, BG_ERR_DTYPE, "%s: a '%s' is %s; the CUDA kernel takes f32 or f16", n->op->name, a->name,
                       bg_dtype_name(a->dtype));
    *half = a->dtype == BG_F16;
    shapes4 s = pad4(a, n->in[1]);
    memcpy(es->a, s.a, sizeof es->a);
    memcpy(es->b, s.b, sizeof es->b);
    return BG_OK;
}

static bg_status add_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_ew_shapes es;
    int half = 0;
    bg_status s = cuda_prep(ctx, n, &es, &half);
    if (s) return s;
    bg_cuda_add_fwd(n->in[0]->data, n->in[1]->data, n->out[0]->data, es, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status add_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_ew_shapes es;
    int half = 0;
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    bg_status s = cuda_prep(ctx, n, &es, &half);
    if (s) return s;
    bg_cuda_add_bwd(dy->data, bg_grad_or_null(n->in[0]), bg_grad_or_null(n->in[1]), es, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}

static bg_status mul_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_ew_shapes es;
    int half = 0;
    bg_status s = cuda_prep(ctx, n, &es, &half);
    if (s) return s;
    bg_cuda_mul_fwd(n->in[0]->data, n->in[1]->data, n->out[0]->data, es, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status mul_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_ew_shapes es;
    int half = 0;
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    bg_status s = cuda_prep(ctx, n, &es, &half);
    if (s) return s;
    bg_cuda_mul_bwd(dy->data, n->in[0]->data, n->in[1]->data, bg_grad_or_null(n->in[0]), bg_grad_or_null(n->in[1]),
                    es, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

/* ---- rows and builders ----------------------------------------------------- */

const bg_op bg_op_add = {
    .name = "add",
    .n_in = 2,
    .n_in_required = 2,
    .in_names = {"a", "b"},
    .out_names = {"y"},
    .in_differentiable = {true, true},
    .param_size = sizeof(bg_noparams),
    .infer = infer_binary,
    .fwd = {[BG_CPU] = add_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(add_fwd_cuda)},
    .bwd = {[BG_CPU] = add_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(add_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED, /* dy flows through: no values read */
    .inplace = BG_BWD_IN(0),    /* y over a (same shape; b may broadcast) */
    .fast_fwd = bg_fast_add_fwd,
    .fast_bwd = bg_fast_add_bwd,
    .fast_bwd_stores = true,
};

const bg_op bg_op_mul = {
    .name = "mul",
    .n_in = 2,
    .n_in_required = 2,
    .in_names = {"a", "b"},
    .out_names = {"y"},
    .in_differentiable = {true, true},
    .param_size = sizeof(bg_noparams),
    .infer = infer_binary,
    .fwd = {[BG_CPU] = mul_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(mul_fwd_cuda)},
    .bwd = {[BG_CPU] = mul_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(mul_bwd_cuda)},
    .fast_fwd = bg_fast_mul_fwd,
    .fast_bwd = bg_fast_mul_bwd,
};

bg_tensor *bg_add(bg_graph *g, bg_tensor *a, bg_tensor *b)
{
    bg_tensor *in[2] = {a, b};
    return bg_graph_op(g, &bg_op_add, NULL, in, 2);
}

bg_tensor *bg_mul(bg_graph *g, bg_tensor *a, bg_tensor *b)
{
    bg_tensor *in[2] = {a, b};
    return bg_graph_op(g, &bg_op_mul, NULL, in, 2);
}
