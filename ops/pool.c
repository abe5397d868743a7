/* Pooling over NHWC activations: global_avgpool, avgpool2d and maxpool2d.
 *
 * avgpool2d and maxpool2d follow PyTorch exactly (dilation 1):
 *  - output size = floor_or_ceil((H + 2p - k) / s) + 1, and with ceil_mode
 *    the last window must start inside the input or the left padding, so an
 *    output whose window would start in the right padding is dropped;
 *  - padding is at most half the kernel, so every window holds at least one
 *    real element;
 *  - average divisor: with count_include_pad, the window clipped to the
 *    padded input (so a ceil_mode overhang past the right padding does not
 *    count); without it, the window clipped to the real input;
 *  - max pooling treats padding as -inf, keeps the first maximum in window
 *    order and lets NaN win (as PyTorch's CPU kernel), and saves the argmax
 *    (iy*W + ix per output element, i32) for backward.
 * A stride of 0 means "= kernel", PyTorch's default.
 *
 * Backward scatters into dx. Windows of one image overlap, so loops split by
 * image across threads; different images never share a dx element.
 *
 * CUDA (kernels/pool.cu): f32 or f16 storage, f32 math; the backward passes
 * gather instead of scattering (no atomics) in the CPU's order.
 *
 * The file includes itself once per element type (the part under
 * BG_POOL_TMPL) so each kernel is written once for float and double. */
#ifndef BG_POOL_TMPL

#include <math.h>
#include <stdio.h>
#include "op_util.h"
#include "ops.h"
#include "fast/fast.h"
#include "pool_geom.h"
#ifdef BG_WITH_CUDA
#include "../kernels/pool.h"
#endif

/* PyTorch's pooling_output_shape with dilation 1; requires in + 2p >= k. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode)
{
    int64_t span = in + 2 * p - k;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) out--; /* the last window would start in the right padding */
    return out;
}

pool_geom pool_geometry(const bg_node *n)
{
    const bg_pool_params *p = BG_PARAMS(n, const bg_pool_params);
    const bg_tensor *x = n->in[0];
    pool_geom g;
    g.N = x->shape[0], g.H = x->shape[1], g.W = x->shape[2], g.C = x->shape[3];
    g.kh = p->kernel[0], g.kw = p->kernel[1];
    g.sh = p->stride[0] ? p->stride[0] : p->kernel[0];
    g.sw = p->stride[1] ? p->stride[1] : p->kernel[1];
    g.ph = p->padding[0], g.pw = p->padding[1];
    g.ceil_mode = p->ceil_mode != 0;
    g.include_pad = p->count_include_pad != 0;
    g.Ho = g.sh > 0 ? pool_out_size(g.H, g.kh, g.sh, g.ph, g.ceil_mode) : 0;
    g.Wo = g.sw > 0 ? pool_out_size(g.W, g.kw, g.sw, g.pw, g.ceil_mode) : 0;
    return g;
}

/* One output's window along one axis: [a, e) in real input coordinates and
 * the divisor's extent, per the rules above. */
void pool_window(int64_t o, int64_t k, int64_t s, int64_t p, int64_t in, bool include_pad, int64_t *a, int64_t *e,
                 int64_t *count)
{
    int64_t start = o * s - p, end = start + k;
    if (end > in + p) end = in + p;
    int64_t padded = end - start;
    if (start < 0) start = 0;
    if (end > in) end = in;
    *a = start;
    *e = end;
    *count = include_pad ? padded : end - start;
}

static bg_status check_x4(bg_ctx *ctx, const bg_node *n)
{
    const bg_tensor *x = n->in[0];
    char xs[80];
    if (x->ndim != 4)
        return bg_fail(ctx, BG_ERR_SHAPE, "%s: input '%s' must be 4-D NHWC {N,H,W,C}, got %s", n->op->name, x->name,
                       bg_shape_str(x, xs, sizeof xs));
    return bg_op_check_float(ctx, n, 0);
}

#define BG_POOL_TMPL 1
#define T float
#define SFX(name) name##_f32
#include "pool.c"
#undef T
#undef SFX
#define T double
#define SFX(name) name##_f64
#include "pool.c"
#undef T
#undef SFX
#undef BG_POOL_TMPL

/* ---- CUDA glue ---- */
#ifdef BG_WITH_CUDA
static bg_pool_geom cuda_geom(const bg_node *n)
{
    pool_geom g = pool_geometry(n);
    bg_pool_geom r = {g.N, g.H, g.W, g.C, g.Ho, g.Wo, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.ceil_mode, g.include_pad};
    return r;
}

static bg_status gap_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    const bg_tensor *x = n->in[0];
    bg_cuda_gap_fwd(x->data, n->out[0]->data, x->shape[0], x->shape[1] * x->shape[2], 1, x->shape[3], half,
                    ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status gap_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    const bg_tensor *x = n->in[0];
    if (!x->grad || !n->out[0]->grad) return BG_OK;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    bg_cuda_gap_bwd(n->out[0]->grad->data, x->grad->data, x->shape[0], x->shape[1] * x->shape[2], 1, x->shape[3],
                    half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}

static bg_status avgpool_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    bg_pool_geom g = cuda_geom(n);
    bg_cuda_avgpool_fwd(n->in[0]->data, n->out[0]->data, &g, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status avgpool_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    if (!n->in[0]->grad || !n->out[0]->grad) return BG_OK;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    bg_pool_geom g = cuda_geom(n);
    bg_cuda_avgpool_bwd(n->out[0]->grad->data, n->in[0]->grad->data, &g, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}

static bg_status maxpool_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    bg_pool_geom g = cuda_geom(n);
    bg_cuda_maxpool_fwd(n->in[0]->data, n->out[0]->data, n->saved[0]->data, &g, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "forward");
}

static bg_status maxpool_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    if (!n->in[0]->grad || !n->out[0]->grad) return BG_OK;
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (s) return s;
    bg_pool_geom g = cuda_geom(n);
    bg_cuda_maxpool_bwd(n->out[0]->grad->data, n->saved[0]->data, n->in[0]->grad->data, &g, half, ctx->stream);
    return bg_op_cuda_launched(ctx, n, "backward");
}
#endif

/* ---- global average pooling {N,H,W,C} -> {N,1,1,C} ---- */

static bg_status gap_infer(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved, int *n_saved)
{
    bg_status s = check_x4(ctx, n);
    if (s) return s;
    const bg_tensor *x = n->in[0];
    char xs[80];
    if (x->shape[1] < 1 || x->shape[2] < 1)
        return bg_fail(ctx, BG_ERR_SHAPE, "global_avgpool: input '%s' %s has an empty spatial plane", x->name,
                       bg_shape_str(x, xs, sizeof xs));
    int64_t os[4] = {x->shape[0], 1, 1, x->shape[3]};
    out[0] = bg_desc_make(x->dtype, 4, os);
    *n_out = 1;
    *n_saved = 0;
    (void)saved;
    return BG_OK;
}

static bg_status gap_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s) return s;
    if (n->in[0]->dtype == BG_F64) gap_fwd_f64(n);
    else gap_fwd_f32(n);
    return BG_OK;
}

static bg_status gap_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s || !n->in[0]->grad || !n->out[0]->grad) return s;
    if (n->in[0]->dtype == BG_F64) gap_bwd_f64(n);
    else gap_bwd_f32(n);
    return BG_OK;
}

const bg_op bg_op_global_avgpool = {
    .name = "global_avgpool",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    .param_size = sizeof(bg_noparams),
    .n_fields = 0,
    .infer = gap_infer,
    .fwd = {[BG_CPU] = gap_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(gap_fwd_cuda)},
    .bwd = {[BG_CPU] = gap_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(gap_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED, /* dy spread evenly: shapes only */
    .fast_fwd = bg_fast_gap_fwd,
    .fast_bwd = bg_fast_gap_bwd,
};

bg_tensor *bg_global_avgpool(bg_graph *g, bg_tensor *x)
{
    bg_tensor *in[1] = {x};
    return bg_graph_op(g, &bg_op_global_avgpool, NULL, in, 1);
}

/* ---- avgpool2d / maxpool2d ---- */

static bg_status pool_infer_common(bg_ctx *ctx, const bg_node *n, pool_geom *g)
{
    bg_status s = check_x4(ctx, n);
    if (s) return s;
    const bg_pool_params *p = BG_PARAMS(n, const bg_pool_params);
    const bg_tensor *x = n->in[0];
    const char *op = n->op->name;
    char xs[80];
    bg_shape_str(x, xs, sizeof xs);
    if (p->kernel[0] < 1 || p->kernel[1] < 1 || p->stride[0] < 0 || p->stride[1] < 0 || p->padding[0] < 0 ||
        p->padding[1] < 0)
        return bg_fail(ctx, BG_ERR_ARG,
                       "%s: invalid parameters kernel=%d,%d stride=%d,%d padding=%d,%d (kernel must be >= 1, "
                       "stride >= 0 with 0 meaning = kernel, padding >= 0)",
                       op, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1], p->padding[0], p->padding[1]);
    if (2 * p->padding[0] > p->kernel[0] || 2 * p->padding[1] > p->kernel[1])
        return bg_fail(ctx, BG_ERR_ARG, "%s: padding %d,%d must be at most half of kernel %d,%d", op, p->padding[0],
                       p->padding[1], p->kernel[0], p->kernel[1]);
    *g = pool_geometry(n);
    if (g->kh > g->H + 2 * g->ph || g->kw > g->W + 2 * g->pw)
        return bg_fail(ctx, BG_ERR_SHAPE, "%s: kernel %lldx%lld is larger than input '%s' %s padded by %lldx%lld",
                       op, (long long)g->kh, (long long)g->kw, x->name, xs, (long long)g->ph, (long long)g->pw);
    if (g->Ho < 1 || g->Wo < 1) /* unreachable given the checks above; kept as a guard */
        return bg_fail(ctx, BG_ERR_SHAPE, "%s: input '%s' %s gives an empty output %lldx%lld", op, x->name, xs,
                       (long long)g->Ho, (long long)g->Wo);
    return BG_OK;
}

static bg_status avgpool_infer(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                               int *n_saved)
{
    pool_geom g;
    bg_status s = pool_infer_common(ctx, n, &g);
    if (s) return s;
    int64_t os[4] = {g.N, g.Ho, g.Wo, g.C};
    out[0] = bg_desc_make(n->in[0]->dtype, 4, os);
    *n_out = 1;
    *n_saved = 0;
    (void)saved;
    return BG_OK;
}

static bg_status maxpool_infer(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                               int *n_saved)
{
    pool_geom g;
    bg_status s = pool_infer_common(ctx, n, &g);
    if (s) return s;
    if (g.H * g.W > INT32_MAX)
        return bg_fail(ctx, BG_ERR_SHAPE, "maxpool2d: input '%s' plane %lldx%lld is too large for i32 argmax indices",
                       n->in[0]->name, (long long)g.H, (long long)g.W);
    int64_t os[4] = {g.N, g.Ho, g.Wo, g.C};
    out[0] = bg_desc_make(n->in[0]->dtype, 4, os);
    saved[0] = bg_desc_make(BG_I32, 4, os); /* argmax: iy*W + ix of each output's maximum */
    *n_out = 1;
    *n_saved = 1;
    return BG_OK;
}

static bg_status avgpool_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s) return s;
    pool_geom g = pool_geometry(n);
    if (n->in[0]->dtype == BG_F64) avgpool_fwd_f64(&g, n);
    else avgpool_fwd_f32(&g, n);
    return BG_OK;
}

static bg_status avgpool_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s || !n->in[0]->grad || !n->out[0]->grad) return s;
    pool_geom g = pool_geometry(n);
    if (n->in[0]->dtype == BG_F64) avgpool_bwd_f64(&g, n);
    else avgpool_bwd_f32(&g, n);
    return BG_OK;
}

static bg_status maxpool_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s) return s;
    pool_geom g = pool_geometry(n);
    if (n->in[0]->dtype == BG_F64) maxpool_fwd_f64(&g, n);
    else maxpool_fwd_f32(&g, n);
    return BG_OK;
}

static bg_status maxpool_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s || !n->in[0]->grad || !n->out[0]->grad) return s;
    pool_geom g = pool_geometry(n);
    if (n->in[0]->dtype == BG_F64) maxpool_bwd_f64(&g, n);
    else maxpool_bwd_f32(&g, n);
    return BG_OK;
}


#define POOL_FIELDS                                                                      \
    .param_size = sizeof(bg_pool_params),                                                \
    .fields = {{"kernel", BG_P_INT2, offsetof(bg_pool_params, kernel), {2, 2}},          \
               {"stride", BG_P_INT2, offsetof(bg_pool_params, stride), {0, 0}},          \
               {"padding", BG_P_INT2, offsetof(bg_pool_params, padding), {0, 0}},        \
               {"ceil_mode", BG_P_BOOL, offsetof(bg_pool_params, ceil_mode), {0}},       \
               {"count_include_pad", BG_P_BOOL, offsetof(bg_pool_params, count_include_pad), {1}}}, \
    .n_fields = 5

const bg_op bg_op_avgpool2d = {
    .name = "avgpool2d",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    POOL_FIELDS,
    .infer = avgpool_infer,
    .fwd = {[BG_CPU] = avgpool_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(avgpool_fwd_cuda)},
    .bwd = {[BG_CPU] = avgpool_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(avgpool_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED, /* dy spread evenly: shapes only */
    .fast_fwd = bg_fast_avgpool_fwd,
    .fast_bwd = bg_fast_avgpool_bwd,
};

/* count_include_pad is listed for a uniform parameter struct; max pooling ignores it. */
const bg_op bg_op_maxpool2d = {
    .name = "maxpool2d",
    .n_in = 1,
    .n_in_required = 1,
    .in_names = {"x"},
    .out_names = {"y"},
    .in_differentiable = {true},
    POOL_FIELDS,
    .infer = maxpool_infer,
    .fwd = {[BG_CPU] = maxpool_fwd_cpu, [BG_CUDA] = BG_CUDA_FN(maxpool_fwd_cuda)},
    .bwd = {[BG_CPU] = maxpool_bwd_cpu, [BG_CUDA] = BG_CUDA_FN(maxpool_bwd_cuda)},
    .fast_fwd = bg_fast_maxpool_fwd,
    .fast_bwd = bg_fast_maxpool_bwd,
};

bg_tensor *bg_avgpool2d(bg_graph *g, bg_tensor *x, bg_pool_params p)
{
    bg_tensor *in[1] = {x};
    return bg_graph_op(g, &bg_op_avgpool2d, &p, in, 1);
}

bg_tensor *bg_maxpool2d(bg_graph *g, bg_tensor *x, bg_pool_params p)
{
    bg_tensor *in[1] = {x};
    return bg_graph_op(g, &bg_op_maxpool2d, &p, in, 1);
}

#else /* ---- type-generic kernels: T, SFX set by the includer ---- */

static void SFX(gap_fwd)(bg_node *n)
{
    const bg_tensor *xt = n->in[0];
    int64_t N = xt->shape[0], P = xt->shape[1] * xt->shape[2], C = xt->shape[3];
    const T *x = xt->data;
    T *y = n->out[0]->data;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < N; b++) {
        T *yb = y + b * C;
        for (int64_t c = 0; c < C; c++) yb[c] = 0;
        for (int64_t p = 0; p < P; p++)
            for (int64_t c = 0; c < C; c++) yb[c] += x[(b * P + p) * C + c];
        for (int64_t c = 0; c < C; c++) yb[c] /= (T)P;
    }
}

static void SFX(gap_bwd)(bg_node *n)
{
    const bg_tensor *xt = n->in[0];
    int64_t N = xt->shape[0], P = xt->shape[1] * xt->shape[2], C = xt->shape[3];
    const T *dy = n->out[0]->grad->data;
    T *dx = xt->grad->data;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < N; b++)
        for (int64_t p = 0; p < P; p++)
            for (int64_t c = 0; c < C; c++) dx[(b * P + p) * C + c] += dy[b * C + c] / (T)P;
}

static void SFX(avgpool_fwd)(const pool_geom *g, bg_node *n)
{
    const T *x = n->in[0]->data;
    T *y = n->out[0]->data;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->N * g->Ho; b++) {
        int64_t img = b / g->Ho, oy = b % g->Ho, y0, y1, cy;
        pool_window(oy, g->kh, g->sh, g->ph, g->H, g->include_pad, &y0, &y1, &cy);
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            int64_t x0, x1, cx;
            pool_window(ox, g->kw, g->sw, g->pw, g->W, g->include_pad, &x0, &x1, &cx);
            T *yo = y + ((img * g->Ho + oy) * g->Wo + ox) * g->C;
            for (int64_t c = 0; c < g->C; c++) yo[c] = 0;
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ix = x0; ix < x1; ix++) {
                    const T *xi = x + ((img * g->H + iy) * g->W + ix) * g->C;
                    for (int64_t c = 0; c < g->C; c++) yo[c] += xi[c];
                }
            T div = (T)(cy * cx);
            for (int64_t c = 0; c < g->C; c++) yo[c] /= div;
        }
    }
}

static void SFX(avgpool_bwd)(const pool_geom *g, bg_node *n)
{
    const T *dy = n->out[0]->grad->data;
    T *dx = n->in[0]->grad->data;
#pragma omp parallel for schedule(static)
    for (int64_t img = 0; img < g->N; img++)
        for (int64_t oy = 0; oy < g->Ho; oy++) {
            int64_t y0, y1, cy;
            pool_window(oy, g->kh, g->sh, g->ph, g->H, g->include_pad, &y0, &y1, &cy);
            for (int64_t ox = 0; ox < g->Wo; ox++) {
                int64_t x0, x1, cx;
                pool_window(ox, g->kw, g->sw, g->pw, g->W, g->include_pad, &x0, &x1, &cx);
                const T *go = dy + ((img * g->Ho + oy) * g->Wo + ox) * g->C;
                T div = (T)(cy * cx);
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        T *gi = dx + ((img * g->H + iy) * g->W + ix) * g->C;
                        for (int64_t c = 0; c < g->C; c++) gi[c] += go[c] / div;
                    }
            }
        }
}

static void SFX(maxpool_fwd)(const pool_geom *g, bg_node *n)
{
    const T *x = n->in[0]->data;
    T *y = n->out[0]->data;
    int32_t *arg = n->saved[0]->data;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->N * g->Ho; b++) {
        int64_t img = b / g->Ho, oy = b % g->Ho, y0, y1, unused;
        pool_window(oy, g->kh, g->sh, g->ph, g->H, true, &y0, &y1, &unused);
        for (int64_t ox = 0; ox < g->Wo; ox++) {
            int64_t x0, x1;
            pool_window(ox, g->kw, g->sw, g->pw, g->W, true, &x0, &x1, &unused);
            int64_t o = ((img * g->Ho + oy) * g->Wo + ox) * g->C;
            /* Padding is -inf: start below everything, pointing at the first
             * real element so an all -inf window still has a valid argmax. */
            for (int64_t c = 0; c < g->C; c++) {
                y[o + c] = -(T)INFINITY;
                arg[o + c] = (int32_t)(y0 * g->W + x0);
            }
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ix = x0; ix < x1; ix++) {
                    const T *xi = x + ((img * g->H + iy) * g->W + ix) * g->C;
                    for (int64_t c = 0; c < g->C; c++)
                        if (xi[c] > y[o + c] || isnan(xi[c])) {
                            y[o + c] = xi[c];
                            arg[o + c] = (int32_t)(iy * g->W + ix);
                        }
                }
        }
    }
}

static void SFX(maxpool_bwd)(const pool_geom *g, bg_node *n)
{
    const T *dy = n->out[0]->grad->data;
    const int32_t *arg = n->saved[0]->data;
    T *dx = n->in[0]->grad->data;
    int64_t per_img = g->Ho * g->Wo * g->C;
#pragma omp parallel for schedule(static)
    for (int64_t img = 0; img < g->N; img++) {
        T *dxi = dx + img * g->H * g->W * g->C;
        for (int64_t k = 0; k < per_img; k++) {
            int64_t o = img * per_img + k, c = k % g->C;
            dxi[(int64_t)arg[o] * g->C + c] += dy[o];
        }
    }
}

#endif /* BG_POOL_TMPL */
