/* linear: y {N,M} = x {N,K} . W^T + b, with W {M,K} as in PyTorch and an
 * optional bias {M}. Every product is one call of the CPU GEMM:
 *   y  += x . W^T        dx += dy . W        dW += dy^T . x
 * The file includes itself once per element type (the part under
 * BG_LINEAR_TMPL) so each kernel is written once for float and double.
 * CUDA (f32, f16): the same three products through kernels/gemm/gemm.h, the
 * bias fused into the forward's epilogue and its gradient a column sum. */
#ifndef BG_LINEAR_TMPL

#include <stdio.h>
#include "gemm_cpu.h"
#include "fast/fast.h"
#include "op_util.h"
#include "ops.h"
#ifdef BG_WITH_CUDA
#include "../kernels/gemm/gemm.h"
#endif

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

static bg_status linear_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s) return s;
    return n->in[0]->dtype == BG_F64 ? linear_fwd_f64(ctx, n) : linear_fwd_f32(ctx, n);
}

static bg_status linear_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s) return s;
    if (!n->out[0]->grad) return BG_OK;
    return n->in[0]->dtype == BG_F64 ? linear_bwd_f64(ctx, n) : linear_bwd_f32(ctx, n);
}

/* ---- CUDA glue ---- */
#ifdef BG_WITH_CUDA
static bg_status linear_cuda_rc(bg_ctx *ctx, int rc, const char *what, const char *err)
{
    if (!rc) return BG_OK;
    bg_status code = rc == BG_KERR_ARG ? BG_ERR_ARG : rc == BG_KERR_UNSUPPORTED ? BG_ERR_UNSUPPORTED : BG_ERR_CUDA;
    return bg_fail(ctx, code, "linear %s: %s", what, err);
}

/* One row-major product C (+)= op(A) op(B) through the CUDA GEMM. */
static int linear_gemm(bg_ctx *ctx, int half, int ta, int tb, int64_t m, int64_t nn, int64_t k, const void *A,
                       int64_t lda, const void *B, int64_t ldb, void *C, int64_t ldc, float beta, const void *bias,
                       char *err, size_t errn)
{
    bg_gemm_desc d = {0};
    d.m = (int)m, d.n = (int)nn, d.k = (int)k, d.batch = 1, d.ta = ta, d.tb = tb;
    d.A = A, d.lda = lda, d.B = B, d.ldb = ldb, d.C = C, d.ldc = ldc;
    d.alpha = 1.f, d.beta = beta, d.bias = bias, d.half = half;
    d.deterministic = ctx->deterministic;
    d.rtc = ctx->rtc;
    return bg_gemm_cuda(&d, BG_GEMM_AUTO, ctx->stream, err, errn);
}

static bg_status linear_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    int64_t N = n->in[0]->shape[0], K = n->in[0]->shape[1], M = n->in[1]->shape[0];
    if (N > 0x7fffffff || K > 0x7fffffff || M > 0x7fffffff)
        return bg_fail(ctx, BG_ERR_SHAPE, "linear: sizes %lld x %lld x %lld exceed the CUDA GEMM's 32-bit range",
                       (long long)N, (long long)K, (long long)M);
    char err[300];
    int rc = linear_gemm(ctx, half, 0, 1, N, M, K, n->in[0]->data, K, n->in[1]->data, K, n->out[0]->data, M, 0.f,
                         bg_data_or_null(n->in[2]), err, sizeof err);
    return linear_cuda_rc(ctx, rc, "forward", err);
}

static bg_status linear_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    int64_t N = n->in[0]->shape[0], K = n->in[0]->shape[1], M = n->in[1]->shape[0];
    char err[300];
    int rc = 0;
    if (n->in[2] && n->in[2]->grad) {
        rc = bg_colsum_cuda(dy->data, N, M, M, n->in[2]->grad->data, half, NULL, 0, ctx->stream, err, sizeof err);
        if (rc) return linear_cuda_rc(ctx, rc, "bias gradient", err);
    }
    if (n->in[0]->grad) { /* dx += dy . W */
        rc = linear_gemm(ctx, half, 0, 0, N, K, M, dy->data, M, n->in[1]->data, K, n->in[0]->grad->data, K, 1.f, NULL,
                         err, sizeof err);
        if (rc) return linear_cuda_rc(ctx, rc, "data gradient", err);
    }
    if (n->in[1]->grad) { /* dW += dy^T . x */
        rc = linear_gemm(ctx, half, 1, 0, M, K, N, dy->data, M, n->in[0]->data, K, n->in[1]->grad->data, K, 1.f, NULL,
                         err, sizeof err);
        if (rc) return linear_cuda_rc(ctx, rc, "weight gradient", err);
    }
    return BG_OK;
}
#define LINEAR_CUDA(f) f
#else
#define LINEAR_CUDA(f) NULL
#endif

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
    .fwd = {[BG_CPU] = linear_fwd_cpu, [BG_CUDA] = LINEAR_CUDA(linear_fwd_cuda)},
    .bwd = {[BG_CPU] = linear_bwd_cpu, [BG_CUDA] = LINEAR_CUDA(linear_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED | BG_BWD_IN(0) | BG_BWD_IN(1), /* x and W; the bias grad is a sum of dy */
    .fast_fwd = bg_fast_linear_fwd,
    .fast_bwd = bg_fast_linear_bwd,
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
