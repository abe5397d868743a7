/* conv2d: NHWC input, OHWI weight {Cout, kh, kw, Cin/groups}, optional bias
 * {Cout}; stride, zero padding, dilation and groups (depthwise included).
 *
 * CPU reference: im2col + GEMM. For one group g, a row of the im2col matrix is
 * the receptive field of one output pixel, laid out (ky, kx, c) with c the
 * channel inside the group. Because weights are OHWI, output channel co's
 * weights are the same contiguous (ky, kx, c) vector of K = kh*kw*Cin/groups
 * values, so with no reshuffling
 *   y[:, g]   = col_g  . W_g^T          (forward)
 *   dW_g     += dy[:, g]^T . col_g      (weight gradient)
 *   dcol_g    = dy[:, g] . W_g          (data gradient, then col2im scatters it)
 * where [:, g] is the group's Cout/groups columns of the NHWC output, read in
 * place through the GEMM's leading dimension.
 *
 * The im2col matrix would be (N*Ho*Wo) x K, which for a real batch is far
 * larger than the activations, so output pixels are processed in chunks that
 * keep the scratch under CONV_SCRATCH_BYTES. The scratch comes from
 * bg_tensor_new so the context's memory cap and peak count it.
 *
 * A 1x1 kernel with stride 1 and no padding needs no im2col at all: the NHWC
 * input already is the matrix (rows = pixels, leading dimension = C).
 *
 * The file includes itself once per element type (the part under
 * BG_CONV_TMPL) so each kernel is written once for float and double.
 *
 * CUDA (f32, f16): kernels/conv/conv.h, implicit GEMM without im2col; the
 * glue below only maps the node onto its shape struct and lends the kernels
 * a workspace from the context's allocator.
 *
 * conv2d_fused is the row y = act(conv2d(x, w, b) + residual) (act relu,
 * sigmoid or none): the residual add and the activation ride in the conv's
 * epilogue instead of two more passes over y. Backward forms dz = dy * act'
 * from the saved output y (relu: y > 0; sigmoid: y (1 - y)), then runs the
 * conv backward on dz and adds dz into the residual's gradient. The CPU
 * reference rounds exactly like conv2d, add, relu/sigmoid one after the
 * other, so the fused and unfused CPU graphs agree bit for bit. */
#ifndef BG_CONV_TMPL

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "gemm_cpu.h"
#include "fast/fast.h"
#include "op_util.h"
#include "ops.h"
#ifdef BG_WITH_CUDA
#include "../kernels/conv/conv.h"
#include "../kernels/elementwise.h"
#include "../kernels/gemm/gemm.h"
#endif

/* Upper bound on the im2col scratch per call (at least one row is used).
 * 8 MiB keeps a chunk in the last-level cache while the GEMM reads it and
 * still gives the GEMM hundreds of rows for K up to 3*3*512. */
#define CONV_SCRATCH_BYTES ((int64_t)8 << 20)

/* Everything the kernels need, derived from the shapes and parameters. */
typedef struct {
    int64_t N, H, W, C;     /* input */
    int64_t Co, kh, kw, Cg; /* weight; Cg = C / groups */
    int64_t Ho, Wo, Cog;    /* output; Cog = Co / groups */
    int64_t sh, sw, ph, pw, dh, dw, groups;
    int64_t K;              /* kh * kw * Cg: one im2col row */
    int64_t rows;           /* N * Ho * Wo: output pixels */
    bool pointwise;         /* 1x1, stride 1, no padding: the input is its own im2col */
} conv_geom;

static conv_geom conv_geometry(const bg_node *n)
{
    const bg_conv2d_params *p = BG_PARAMS(n, const bg_conv2d_params);
    const bg_tensor *x = n->in[0], *w = n->in[1];
    conv_geom g;
    g.N = x->shape[0], g.H = x->shape[1], g.W = x->shape[2], g.C = x->shape[3];
    g.Co = w->shape[0], g.kh = w->shape[1], g.kw = w->shape[2], g.Cg = w->shape[3];
    g.sh = p->stride[0], g.sw = p->stride[1];
    g.ph = p->padding[0], g.pw = p->padding[1];
    g.dh = p->dilation[0], g.dw = p->dilation[1];
    g.groups = p->groups;
    g.Cog = g.groups > 0 ? g.Co / g.groups : 0;
    int64_t eh = g.dh * (g.kh - 1) + 1, ew = g.dw * (g.kw - 1) + 1; /* dilated kernel extent */
    g.Ho = g.sh > 0 ? (g.H + 2 * g.ph - eh) / g.sh + 1 : 0;
    g.Wo = g.sw > 0 ? (g.W + 2 * g.pw - ew) / g.sw + 1 : 0;
    g.K = g.kh * g.kw * g.Cg;
    g.rows = g.N * g.Ho * g.Wo;
    g.pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
    return g;
}

/* Output pixels per im2col chunk for element size `es`. */
static int64_t conv_chunk_rows(const conv_geom *g, size_t es)
{
    int64_t r = CONV_SCRATCH_BYTES / (g->K * (int64_t)es);
    if (r < 1) r = 1;
    return r < g->rows ? r : g->rows;
}

#define BG_CONV_TMPL 1
#define T float
#define SFX(name) name##_f32
#include "conv2d.c"
#undef T
#undef SFX
#define T double
#define SFX(name) name##_f64
#include "conv2d.c"
#undef T
#undef SFX
#undef BG_CONV_TMPL

/* ---- shape inference ---- */

static bg_status conv2d_infer(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                              int *n_saved)
{
    const bg_conv2d_params *p = BG_PARAMS(n, const bg_conv2d_params);
    const bg_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    char xs[80], ws[80], bs[80];
    bg_shape_str(x, xs, sizeof xs);
    bg_shape_str(w, ws, sizeof ws);
    if (x->ndim != 4)
        return bg_fail(ctx, BG_ERR_SHAPE, "conv2d: input '%s' must be 4-D NHWC {N,H,W,C}, got %s", x->name, xs);
    if (w->ndim != 4)
        return bg_fail(ctx, BG_ERR_SHAPE, "conv2d: weight '%s' must be 4-D OHWI {Cout,kh,kw,Cin/groups}, got %s",
                       w->name, ws);
    bg_status s;
    for (int i = 0; i < 3; i++)
        if ((s = bg_op_check_float(ctx, n, i))) return s;
    if ((s = bg_op_check_same_dtype(ctx, n, 1, 0)) || (s = bg_op_check_same_dtype(ctx, n, 2, 0))) return s;
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->dilation[0] < 1 || p->dilation[1] < 1 || p->padding[0] < 0 ||
        p->padding[1] < 0 || p->groups < 1)
        return bg_fail(ctx, BG_ERR_ARG,
                       "conv2d: invalid parameters stride=%d,%d dilation=%d,%d padding=%d,%d groups=%d "
                       "(stride, dilation and groups must be >= 1, padding >= 0)",
                       p->stride[0], p->stride[1], p->dilation[0], p->dilation[1], p->padding[0], p->padding[1],
                       p->groups);
    conv_geom g = conv_geometry(n);
    if (g.C % g.groups)
        return bg_fail(ctx, BG_ERR_SHAPE, "conv2d: groups %d does not divide the %lld channels of input '%s' %s",
                       p->groups, (long long)g.C, x->name, xs);
    if (g.Co % g.groups)
        return bg_fail(ctx, BG_ERR_SHAPE, "conv2d: groups %d does not divide the %lld output channels of weight '%s' %s",
                       p->groups, (long long)g.Co, w->name, ws);
    if (g.Cg * g.groups != g.C)
        return bg_fail(ctx, BG_ERR_SHAPE, "conv2d: input '%s' has %lld channels but weight '%s' %s expects %lld (groups %d)",
                       x->name, (long long)g.C, w->name, ws, (long long)(g.Cg * g.groups), p->groups);
    if (g.kh < 1 || g.kw < 1 || g.Co < 1 || g.Cg < 1)
        return bg_fail(ctx, BG_ERR_SHAPE, "conv2d: weight '%s' %s has an empty kernel, no input or no output channels", w->name, ws);
    int64_t eh = g.dh * (g.kh - 1) + 1, ew = g.dw * (g.kw - 1) + 1;
    if (eh > g.H + 2 * g.ph || ew > g.W + 2 * g.pw)
        return bg_fail(ctx, BG_ERR_SHAPE,
                       "conv2d: kernel %lldx%lld (dilation %lldx%lld, extent %lldx%lld) of weight '%s' is larger than "
                       "input '%s' %s padded by %lldx%lld (%lldx%lld)",
                       (long long)g.kh, (long long)g.kw, (long long)g.dh, (long long)g.dw, (long long)eh, (long long)ew,
                       w->name, x->name, xs, (long long)g.ph, (long long)g.pw, (long long)(g.H + 2 * g.ph),
                       (long long)(g.W + 2 * g.pw));
    if (b) {
        bg_shape_str(b, bs, sizeof bs);
        if (b->ndim != 1 || b->shape[0] != g.Co)
            return bg_fail(ctx, BG_ERR_SHAPE, "conv2d: bias '%s' must be {%lld} (one per output channel of '%s'), got %s",
                           b->name, (long long)g.Co, w->name, bs);
    }
    int64_t os[4] = {g.N, g.Ho, g.Wo, g.Co};
    out[0] = bg_desc_make(x->dtype, 4, os);
    *n_out = 1;
    *n_saved = 0;
    (void)saved;
    return BG_OK;
}

static double conv2d_macs(const bg_node *n)
{
    conv_geom g = conv_geometry(n);
    return (double)g.rows * (double)g.Co * (double)(g.kh * g.kw * g.Cg);
}

/* conv2d_fused shares the glue below; this tells the two rows apart. */
static bool fused_row(const bg_node *n) { return n->op == &bg_op_conv2d_fused; }

static bg_status conv2d_fwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s) return s;
    const bool f64 = n->in[0]->dtype == BG_F64;
    if (fused_row(n)) return f64 ? conv2d_fused_fwd_f64(ctx, n) : conv2d_fused_fwd_f32(ctx, n);
    return f64 ? conv2d_fwd_f64(ctx, n) : conv2d_fwd_f32(ctx, n);
}

static bg_status conv2d_bwd_cpu(bg_ctx *ctx, bg_node *n)
{
    bg_status s = bg_op_check_dense_inputs(ctx, n, BG_CPU, NULL);
    if (s) return s;
    if (!n->out[0]->grad) return BG_OK; /* nothing flows back */
    const bool f64 = n->in[0]->dtype == BG_F64;
    if (fused_row(n)) return f64 ? conv2d_fused_bwd_f64(ctx, n) : conv2d_fused_bwd_f32(ctx, n);
    const void *dy = n->out[0]->grad->data;
    return f64 ? conv2d_bwd_f64(ctx, n, dy) : conv2d_bwd_f32(ctx, n, dy);
}

/* ---- CUDA glue: shapes for kernels/conv, a workspace from the allocator ---- */
#ifdef BG_WITH_CUDA
static bg_conv_shape conv2d_cuda_shape(const bg_node *n)
{
    conv_geom g = conv_geometry(n);
    bg_conv_shape s = {(int)g.N, (int)g.H, (int)g.W, (int)g.C, (int)g.Co, (int)g.kh, (int)g.kw, (int)g.sh, (int)g.sw,
                       (int)g.ph, (int)g.pw, (int)g.dh, (int)g.dw, (int)g.groups};
    return s;
}

/* A kernel's status as the context's error. */
static bg_status cuda_rc(bg_ctx *ctx, int rc, const char *what, const char *err)
{
    if (!rc) return BG_OK;
    bg_status code = rc == BG_KERR_ARG ? BG_ERR_ARG : rc == BG_KERR_UNSUPPORTED ? BG_ERR_UNSUPPORTED : BG_ERR_CUDA;
    return bg_fail(ctx, code, "conv2d %s: %s", what, err);
}

/* Scratch for the kernels (channel padding, split-K partials), charged to the
 * context's CUDA allocator. Under a memory cap a refused workspace is not an
 * error: the kernels have paths that need none. */
/* The options every conv2d call starts from: a deterministic context plans
 * from the shape alone (kernels/conv/conv.h). */
static bg_conv_opts conv2d_cuda_opts(const bg_ctx *ctx)
{
    bg_conv_opts o = {0};
    if (ctx->deterministic) o.flags |= BG_CONV_DETERMINISTIC;
    o.rtc = ctx->rtc;
    return o;
}

static bg_tensor *conv2d_cuda_ws(bg_ctx *ctx, size_t bytes, bg_conv_opts *o)
{
    o->ws = NULL;
    o->ws_bytes = 0;
    if (!bytes) return NULL;
    int64_t cnt = (int64_t)((bytes + 3) / 4);
    bg_tensor *t = bg_tensor_new(ctx, BG_CUDA, BG_F32, 1, &cnt, "conv2d.workspace");
    if (!t) {
        bg_clear_error(ctx);
        return NULL;
    }
    o->ws = t->data;
    o->ws_bytes = bytes;
    return t;
}

static bg_status conv2d_fwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (st) return st;
    bg_conv_shape s = conv2d_cuda_shape(n);
    bg_conv_opts o = conv2d_cuda_opts(ctx);
    bg_tensor *ws = conv2d_cuda_ws(ctx, bg_conv_ws_bytes(&s, BG_CONV_FWD, half, &o, 0), &o);
    bg_conv_epilogue ep = {0};
    ep.bias = bg_data_or_null(n->in[2]);
    if (fused_row(n)) {
        ep.residual = bg_data_or_null(n->in[3]);
        ep.act = BG_PARAMS(n, bg_conv2d_fused_params)->act; /* BG_EP_* equal BG_ACT_* */
    }
    char err[300];
    int rc = bg_conv_fwd_cuda(&s, half, n->in[0]->data, n->in[1]->data, n->out[0]->data, &ep, &o, ctx->stream, err,
                              sizeof err);
    bg_tensor_free(ctx, ws);
    return cuda_rc(ctx, rc, "forward", err);
}

static bg_status conv2d_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    int half = 0;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (st) return st;
    const bg_tensor *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    bg_conv_shape s = conv2d_cuda_shape(n);
    char err[300];
    int rc = 0;
    if (n->in[2] && n->in[2]->grad) { /* db += sum of dy over pixels */
        int64_t rows = bg_numel(dy) / s.co;
        bg_conv_opts o = {0};
        bg_tensor *ws = conv2d_cuda_ws(ctx, bg_colsum_ws_bytes(rows, s.co), &o);
        rc = bg_colsum_cuda(dy->data, rows, s.co, s.co, n->in[2]->grad->data, half, o.ws, o.ws_bytes, ctx->stream, err,
                            sizeof err);
        bg_tensor_free(ctx, ws);
        if (rc) return cuda_rc(ctx, rc, "bias gradient", err);
    }
    if (n->in[0]->grad) {
        bg_conv_opts o = conv2d_cuda_opts(ctx);
        bg_tensor *ws = conv2d_cuda_ws(ctx, bg_conv_ws_bytes(&s, BG_CONV_DGRAD, half, &o, 0), &o);
        rc = bg_conv_dgrad_cuda(&s, half, dy->data, n->in[1]->data, n->in[0]->grad->data, 1, &o, ctx->stream, err,
                                sizeof err);
        bg_tensor_free(ctx, ws);
        if (rc) return cuda_rc(ctx, rc, "data gradient", err);
    }
    if (n->in[1]->grad) {
        bg_conv_opts o = conv2d_cuda_opts(ctx);
        bg_tensor *ws = conv2d_cuda_ws(ctx, bg_conv_ws_bytes(&s, BG_CONV_WGRAD, half, &o, 0), &o);
        rc = bg_conv_wgrad_cuda(&s, half, n->in[0]->data, dy->data, n->in[1]->grad->data, 1, &o, ctx->stream, err,
                                sizeof err);
        bg_tensor_free(ctx, ws);
        if (rc) return cuda_rc(ctx, rc, "weight gradient", err);
    }
    return BG_OK;
}
#define CONV2D_CUDA(f) f
#else
#define CONV2D_CUDA(f) NULL
#endif

#ifdef BG_WITH_CUDA
/* conv2d_fwd_cuda / conv2d_bwd_cuda's workspaces: one at a time. */
static size_t conv2d_cuda_scratch(bg_ctx *ctx, const bg_node *n, bool bwd)
{
    const int half = n->in[0]->dtype == BG_F16;
    bg_conv_shape s = conv2d_cuda_shape(n);
    bg_conv_opts o = conv2d_cuda_opts(ctx);
#define WS(b) ((b) ? bg_alloc_rounded(((b) + 3) / 4 * 4) : 0)
    if (!bwd) return WS(bg_conv_ws_bytes(&s, BG_CONV_FWD, half, &o, 0));
    size_t m = 0, v;
    const bg_tensor *dy = n->out[0]->grad;
    if (n->in[2] && n->in[2]->grad && (v = WS(bg_colsum_ws_bytes(bg_numel(dy) / s.co, s.co))) > m) m = v;
    if (n->in[0]->grad && (v = WS(bg_conv_ws_bytes(&s, BG_CONV_DGRAD, half, &o, 0))) > m) m = v;
    if (n->in[1]->grad && (v = WS(bg_conv_ws_bytes(&s, BG_CONV_WGRAD, half, &o, 0))) > m) m = v;
#undef WS
    return m;
}
#endif

/* bg_op.scratch: what one call allocates for itself at most at once (the
 * CPU im2col chunk or the CUDA workspace; the fused backward's dz beside
 * it), as the allocator rounds it, so the planned peak is the measured one. */
static size_t conv2d_scratch(bg_ctx *ctx, const bg_node *n, bool bwd)
{
    const bg_tensor *x = n->in[0], *y = n->out[0];
    if (bwd && !y->grad) return 0;
    const bool fused_act = fused_row(n) && BG_PARAMS(n, const bg_conv2d_fused_params)->act != BG_EP_NONE;
    const size_t dz = bwd && fused_act ? bg_alloc_rounded(bg_nbytes(y)) : 0;
#ifdef BG_WITH_CUDA
    if (x->device == BG_CUDA) return dz + conv2d_cuda_scratch(ctx, n, bwd);
#endif
    /* the fast kernels need no im2col chunk; their panels are plain malloc */
    if (bg_fast_conv2d_takes(ctx, n)) return dz;
    conv_geom g = conv_geometry(n);
    if (g.rows == 0 || g.pointwise || (bwd && !x->grad && !n->in[1]->grad)) return dz;
    const size_t es = bg_dtype_size(x->dtype);
    return dz + bg_alloc_rounded((size_t)(conv_chunk_rows(&g, es) * g.K) * es);
}

const bg_op bg_op_conv2d = {
    .name = "conv2d",
    .n_in = 3,
    .n_in_required = 2,
    .in_names = {"x", "weight", "bias"},
    .out_names = {"y"},
    .in_differentiable = {true, true, true},
    .param_size = sizeof(bg_conv2d_params),
    .fields = {{"stride", BG_P_INT2, offsetof(bg_conv2d_params, stride), {1, 1}},
               {"padding", BG_P_INT2, offsetof(bg_conv2d_params, padding), {0, 0}},
               {"dilation", BG_P_INT2, offsetof(bg_conv2d_params, dilation), {1, 1}},
               {"groups", BG_P_INT, offsetof(bg_conv2d_params, groups), {1}}},
    .n_fields = 4,
    .infer = conv2d_infer,
    .macs = conv2d_macs,
    .fwd = {[BG_CPU] = conv2d_fwd_cpu, [BG_CUDA] = CONV2D_CUDA(conv2d_fwd_cuda)},
    .bwd = {[BG_CPU] = conv2d_bwd_cpu, [BG_CUDA] = CONV2D_CUDA(conv2d_bwd_cuda)},
    .bwd_reads = BG_BWD_STATED | BG_BWD_IN(0) | BG_BWD_IN(1), /* x and W; the bias grad is a sum of dy */
    .scratch = conv2d_scratch,
    .fast_fwd = bg_fast_conv2d_fwd,
    .fast_bwd = bg_fast_conv2d_bwd,
};

bg_tensor *bg_conv2d(bg_graph *g, bg_tensor *x, bg_tensor *w, bg_tensor *b, bg_conv2d_params p)
{
    bg_tensor *in[3] = {x, w, b};
    return bg_graph_op(g, &bg_op_conv2d, &p, in, 3);
}

/* ---- conv2d_fused ---------------------------------------------------------- */

static bg_status conv2d_fused_infer(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out, bg_desc *saved,
                                    int *n_saved)
{
    bg_status s = conv2d_infer(ctx, n, out, n_out, saved, n_saved);
    if (s) return s;
    const bg_conv2d_fused_params *p = BG_PARAMS(n, const bg_conv2d_fused_params);
    const bg_tensor *res = n->in[3];
    if (p->act < BG_EP_NONE || p->act > BG_EP_SIGMOID)
        return bg_fail(ctx, BG_ERR_ARG, "conv2d_fused: act %d is not 0 (none), 1 (relu) or 2 (sigmoid)", p->act);
    if (res) {
        char rs[80];
        if ((s = bg_op_check_float(ctx, n, 3)) || (s = bg_op_check_same_dtype(ctx, n, 3, 0))) return s;
        bool same = res->ndim == 4;
        for (int d = 0; same && d < 4; d++) same = res->shape[d] == out[0].shape[d];
        if (!same)
            return bg_fail(ctx, BG_ERR_SHAPE, "conv2d_fused: residual '%s' %s must have the output's shape [%lld, %lld, %lld, %lld]",
                           res->name, bg_shape_str(res, rs, sizeof rs), (long long)out[0].shape[0],
                           (long long)out[0].shape[1], (long long)out[0].shape[2], (long long)out[0].shape[3]);
    }
    return BG_OK;
}

#ifdef BG_WITH_CUDA
/* dz = dy * act'(y) into a scratch gradient (none needed without an
 * activation), dres += dz, then conv2d's backward reads dz as its dy. */
static bg_status conv2d_fused_bwd_cuda(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *y = n->out[0], *dy = y->grad;
    if (!dy) return BG_OK;
    int half = 0;
    bg_status st = bg_op_check_dense_inputs(ctx, n, BG_CUDA, &half);
    if (st) return st;
    int act = BG_PARAMS(n, bg_conv2d_fused_params)->act;
    int64_t cnt = bg_numel(y);
    bg_tensor *dz = dy;
    if (act != BG_EP_NONE) {
        if (!(dz = bg_tensor_new(ctx, BG_CUDA, y->dtype, y->ndim, y->shape, "conv2d_fused.dz"))) return ctx->status;
        if ((st = bg_tensor_zero(ctx, dz))) {
            bg_tensor_free(ctx, dz);
            return st;
        }
        if (act == BG_EP_RELU) bg_cuda_relu_bwd(y->data, dy->data, dz->data, cnt, half, ctx->stream);
        else bg_cuda_sigmoid_bwd(y->data, dy->data, dz->data, cnt, half, ctx->stream);
    }
    const bg_tensor *res = n->in[3];
    if (res && res->grad) {
        bg_ew_shapes es;
        for (int d = 0; d < 4; d++) es.a[d] = es.b[d] = y->shape[d];
        bg_cuda_add_bwd(dz->data, NULL, res->grad->data, es, half, ctx->stream);
    }
    if (!(st = bg_op_cuda_launched(ctx, n, "backward epilogue"))) {
        bg_tensor *saved = y->grad;
        y->grad = dz; /* conv2d's backward reads the output's gradient */
        st = conv2d_bwd_cuda(ctx, n);
        y->grad = saved;
    }
    if (dz != dy) bg_tensor_free(ctx, dz);
    return st;
}
#endif

/* The CPU reference takes everything infer accepts. On CUDA the conv
 * kernels apply bias, residual and activation on every path (implicit GEMM,
 * depthwise, naive); the dtypes must agree and be f32 or f16. */
static bool conv2d_fused_supports(bg_device dev, const void *params, bg_tensor *const *in, int n_in)
{
    const bg_conv2d_fused_params *p = params;
    if (p->act < BG_EP_NONE || p->act > BG_EP_SIGMOID) return false;
    return bg_op_same_backend_dtype(dev, in, n_in);
}

const bg_op bg_op_conv2d_fused = {
    .name = "conv2d_fused",
    .n_in = 4,
    .n_in_required = 2,
    .in_names = {"x", "weight", "bias", "residual"},
    .out_names = {"y"},
    .in_differentiable = {true, true, true, true},
    .param_size = sizeof(bg_conv2d_fused_params),
    .fields = {{"stride", BG_P_INT2, offsetof(bg_conv2d_fused_params, stride), {1, 1}},
               {"padding", BG_P_INT2, offsetof(bg_conv2d_fused_params, padding), {0, 0}},
               {"dilation", BG_P_INT2, offsetof(bg_conv2d_fused_params, dilation), {1, 1}},
               {"groups", BG_P_INT, offsetof(bg_conv2d_fused_params, groups), {1}},
               {"act", BG_P_INT, offsetof(bg_conv2d_fused_params, act), {0}}},
    .n_fields = 5,
    .infer = conv2d_fused_infer,
    .macs = conv2d_macs,
    .fwd = {[BG_CPU] = conv2d_fwd_cpu, [BG_CUDA] = CONV2D_CUDA(conv2d_fwd_cuda)},
    .bwd = {[BG_CPU] = conv2d_bwd_cpu, [BG_CUDA] = CONV2D_CUDA(conv2d_fused_bwd_cuda)},
    .fast_fwd = bg_fast_conv2d_fused_fwd,
    .fast_bwd = bg_fast_conv2d_fused_bwd,
    .supports = conv2d_fused_supports,
    .bwd_reads = BG_BWD_STATED | BG_BWD_IN(0) | BG_BWD_IN(1) | BG_BWD_OUT(0), /* x, W and y (the activation's derivative); not the residual */
    .scratch = conv2d_scratch,
};

bg_tensor *bg_conv2d_fused(bg_graph *g, bg_tensor *x, bg_tensor *w, bg_tensor *b, bg_tensor *res,
                           bg_conv2d_fused_params p)
{
    bg_tensor *in[4] = {x, w, b, res};
    return bg_graph_op(g, &bg_op_conv2d_fused, &p, in, 4);
}

#else /* ---- type-generic kernels: T, SFX set by the includer ---- */

/* col[r, (ky,kx,c)] = x[n, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw, grp*Cg + c],
 * zero outside the input, for output pixels r0 .. r0+nrows-1. */
static void SFX(im2col)(const conv_geom *g, const T *x, int64_t grp, int64_t r0, int64_t nrows, T *col)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nrows; r++) {
        int64_t pix = r0 + r, n = pix / (g->Ho * g->Wo), oy = pix / g->Wo % g->Ho, ox = pix % g->Wo;
        T *dst = col + r * g->K;
        for (int64_t ky = 0; ky < g->kh; ky++) {
            int64_t iy = oy * g->sh - g->ph + ky * g->dh;
            for (int64_t kx = 0; kx < g->kw; kx++) {
                int64_t ix = ox * g->sw - g->pw + kx * g->dw;
                T *d = dst + (ky * g->kw + kx) * g->Cg;
                if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) {
                    for (int64_t c = 0; c < g->Cg; c++) d[c] = 0;
                } else {
                    const T *s = x + ((n * g->H + iy) * g->W + ix) * g->C + grp * g->Cg;
                    for (int64_t c = 0; c < g->Cg; c++) d[c] = s[c];
                }
            }
        }
    }
}

/* The adjoint of im2col: dx[...] += dcol[r, (ky,kx,c)]. Receptive fields of
 * one image overlap, so threads split by image: pixels of different images
 * never touch the same dx element. */
static void SFX(col2im)(const conv_geom *g, const T *dcol, int64_t grp, int64_t r0, int64_t nrows, T *dx)
{
    int64_t plane = g->Ho * g->Wo, n_first = r0 / plane, n_last = (r0 + nrows - 1) / plane;
#pragma omp parallel for schedule(static)
    for (int64_t n = n_first; n <= n_last; n++) {
        int64_t a = n * plane > r0 ? n * plane : r0;
        int64_t e = (n + 1) * plane < r0 + nrows ? (n + 1) * plane : r0 + nrows;
        for (int64_t pix = a; pix < e; pix++) {
            int64_t oy = pix / g->Wo % g->Ho, ox = pix % g->Wo;
            const T *src = dcol + (pix - r0) * g->K;
            for (int64_t ky = 0; ky < g->kh; ky++) {
                int64_t iy = oy * g->sh - g->ph + ky * g->dh;
                if (iy < 0 || iy >= g->H) continue;
                for (int64_t kx = 0; kx < g->kw; kx++) {
                    int64_t ix = ox * g->sw - g->pw + kx * g->dw;
                    if (ix < 0 || ix >= g->W) continue;
                    T *d = dx + ((n * g->H + iy) * g->W + ix) * g->C + grp * g->Cg;
                    const T *s = src + (ky * g->kw + kx) * g->Cg;
                    for (int64_t c = 0; c < g->Cg; c++) d[c] += s[c];
                }
            }
        }
    }
}

static bg_status SFX(conv2d_fwd)(bg_ctx *ctx, bg_node *n)
{
    conv_geom g = conv_geometry(n);
    const T *x = n->in[0]->data, *w = n->in[1]->data;
    const T *b = n->in[2] ? (const T *)n->in[2]->data : NULL;
    T *y = n->out[0]->data;
    /* The GEMM accumulates, so start from the bias (or zero). */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < g.rows; r++)
        for (int64_t co = 0; co < g.Co; co++) y[r * g.Co + co] = b ? b[co] : 0;
    if (g.rows == 0) return BG_OK;
    bg_status s = BG_OK;
    if (g.pointwise) {
        for (int64_t grp = 0; grp < g.groups && !s; grp++)
            s = SFX(bg_gemm)(ctx, false, true, g.rows, g.Cog, g.Cg, x + grp * g.Cg, g.C, w + grp * g.Cog * g.K, g.K,
                             y + grp * g.Cog, g.Co);
        return s;
    }
    int64_t chunk = conv_chunk_rows(&g, sizeof(T));
    int64_t cs[2] = {chunk, g.K};
    bg_tensor *colt = bg_tensor_new(ctx, BG_CPU, n->in[0]->dtype, 2, cs, "conv2d.im2col");
    if (!colt) return ctx->status;
    T *col = colt->data;
    for (int64_t r0 = 0; r0 < g.rows && !s; r0 += chunk) {
        int64_t nr = g.rows - r0 < chunk ? g.rows - r0 : chunk;
        for (int64_t grp = 0; grp < g.groups && !s; grp++) {
            SFX(im2col)(&g, x, grp, r0, nr, col);
            s = SFX(bg_gemm)(ctx, false, true, nr, g.Cog, g.K, col, g.K, w + grp * g.Cog * g.K, g.K,
                             y + r0 * g.Co + grp * g.Cog, g.Co);
        }
    }
    bg_tensor_free(ctx, colt);
    return s;
}

/* dy: the gradient at the conv's own output (the fused row passes dz). */
static bg_status SFX(conv2d_bwd)(bg_ctx *ctx, bg_node *n, const T *dy)
{
    conv_geom g = conv_geometry(n);
    const T *x = n->in[0]->data, *w = n->in[1]->data;
    T *dx = n->in[0]->grad ? (T *)n->in[0]->grad->data : NULL;
    T *dw = n->in[1]->grad ? (T *)n->in[1]->grad->data : NULL;
    T *db = n->in[2] && n->in[2]->grad ? (T *)n->in[2]->grad->data : NULL;
    if (g.rows == 0) return BG_OK;
    if (db) {
        /* Summed per channel over all pixels; in double so long f32 sums stay accurate. */
#pragma omp parallel for schedule(static)
        for (int64_t co = 0; co < g.Co; co++) {
            double acc = 0;
            for (int64_t r = 0; r < g.rows; r++) acc += dy[r * g.Co + co];
            db[co] += (T)acc;
        }
    }
    if (!dx && !dw) return BG_OK;
    bg_status s = BG_OK;
    if (g.pointwise) {
        for (int64_t grp = 0; grp < g.groups && !s; grp++) {
            if (dw)
                s = SFX(bg_gemm)(ctx, true, false, g.Cog, g.Cg, g.rows, dy + grp * g.Cog, g.Co, x + grp * g.Cg, g.C,
                                 dw + grp * g.Cog * g.K, g.K);
            if (dx && !s)
                s = SFX(bg_gemm)(ctx, false, false, g.rows, g.Cg, g.Cog, dy + grp * g.Cog, g.Co, w + grp * g.Cog * g.K,
                                 g.K, dx + grp * g.Cg, g.C);
        }
        return s;
    }
    /* One scratch serves both: im2col of x for the weight gradient, then the
     * data-gradient columns before col2im scatters them. */
    int64_t chunk = conv_chunk_rows(&g, sizeof(T));
    int64_t cs[2] = {chunk, g.K};
    bg_tensor *colt = bg_tensor_new(ctx, BG_CPU, n->in[0]->dtype, 2, cs, "conv2d.im2col");
    if (!colt) return ctx->status;
    T *col = colt->data;
    for (int64_t r0 = 0; r0 < g.rows && !s; r0 += chunk) {
        int64_t nr = g.rows - r0 < chunk ? g.rows - r0 : chunk;
        for (int64_t grp = 0; grp < g.groups && !s; grp++) {
            const T *dyg = dy + r0 * g.Co + grp * g.Cog;
            if (dw) {
                SFX(im2col)(&g, x, grp, r0, nr, col);
                s = SFX(bg_gemm)(ctx, true, false, g.Cog, g.K, nr, dyg, g.Co, col, g.K, dw + grp * g.Cog * g.K, g.K);
            }
            if (dx && !s) {
                memset(col, 0, (size_t)(nr * g.K) * sizeof(T));
                s = SFX(bg_gemm)(ctx, false, false, nr, g.K, g.Cog, dyg, g.Co, w + grp * g.Cog * g.K, g.K, col, g.K);
                if (!s) SFX(col2im)(&g, col, grp, r0, nr, dx);
            }
        }
    }
    bg_tensor_free(ctx, colt);
    return s;
}

/* The fused row's epilogue on the CPU: y = act(y + res), each step rounded
 * to T as the separate add and activation ops round it. */
static void SFX(conv_ep_fwd)(T *y, const T *res, int64_t cnt, int act)
{
#pragma omp parallel for if (cnt >= BG_PAR_MIN)
    for (int64_t i = 0; i < cnt; i++) {
        T v = res ? y[i] + res[i] : y[i];
        if (act == BG_EP_RELU) v = v > 0 ? v : (T)0;
        else if (act == BG_EP_SIGMOID) {
            double d = (double)v, e = exp(-fabs(d));
            v = (T)(d >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
        }
        y[i] = v;
    }
}

/* dz = dy * act'(.) from the saved output y. */
static void SFX(conv_ep_dz)(const T *y, const T *dy, T *dz, int64_t cnt, int act)
{
#pragma omp parallel for if (cnt >= BG_PAR_MIN)
    for (int64_t i = 0; i < cnt; i++) {
        if (act == BG_EP_RELU) dz[i] = y[i] > 0 ? dy[i] : (T)0;
        else dz[i] = (T)((double)dy[i] * (double)y[i] * (1.0 - (double)y[i]));
    }
}

static bg_status SFX(conv2d_fused_fwd)(bg_ctx *ctx, bg_node *n)
{
    bg_status s = SFX(conv2d_fwd)(ctx, n);
    if (s) return s;
    const bg_tensor *res = n->in[3];
    SFX(conv_ep_fwd)(n->out[0]->data, res ? (const T *)res->data : NULL, bg_numel(n->out[0]),
                     BG_PARAMS(n, bg_conv2d_fused_params)->act);
    return BG_OK;
}

static bg_status SFX(conv2d_fused_bwd)(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *y = n->out[0];
    const T *dy = y->grad->data;
    int act = BG_PARAMS(n, bg_conv2d_fused_params)->act;
    int64_t cnt = bg_numel(y);
    bg_tensor *dzt = NULL;
    const T *dz = dy;
    if (act != BG_EP_NONE) {
        if (!(dzt = bg_tensor_new(ctx, BG_CPU, y->dtype, y->ndim, y->shape, "conv2d_fused.dz"))) return ctx->status;
        SFX(conv_ep_dz)(y->data, dy, dzt->data, cnt, act);
        dz = dzt->data;
    }
    const bg_tensor *res = n->in[3];
    if (res && res->grad) {
        T *dres = res->grad->data;
#pragma omp parallel for if (cnt >= BG_PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) dres[i] += dz[i];
    }
    bg_status s = SFX(conv2d_bwd)(ctx, n, dz);
    bg_tensor_free(ctx, dzt);
    return s;
}

#endif /* BG_CONV_TMPL */
