/* GPU suite: the CUDA convolution kernels (kernels/conv/conv.h) against a
 * double-precision CPU reference computed from the very same (f16-rounded
 * where f16) inputs: forward, backward-data and backward-weight, for every
 * algorithm (naive, implicit GEMM with cp.async / padded / scalar loads, FMA,
 * depthwise) and tile, in overwrite mode (outputs poisoned with NaN first, so
 * an unwritten element fails) and in accumulate mode (outputs pre-filled);
 * the fused epilogue (bias, residual, ReLU, batchnorm sums); the NVRTC path
 * and the tile tuner. Shapes include the awkward ones of the real models:
 * channels 43, 86, 172, 343 (SENet-18 at width 0.67), 37x37 inputs, batch 1
 * and 513, groups 4 and 8 (ResNeSt), depthwise (MobileNetV2), 7x7 stride 2.
 *
 * Error limits, as the normalised L2 error |got - ref| / |ref|:
 *   f32 (FMA or naive, f32 accumulation):          1e-5
 *   f16 (tensor cores or naive, f32 accumulation): 1e-3 (f16 output rounding alone ~3e-4)
 *   batchnorm sums (f32 either way):               1e-5 f32, 1e-3 f16 (relative to |sum| + |sum of |y||)
 *
 * Extra op cases below also put these shapes through the runner's generic
 * CUDA parity checks (cuda-f32, cuda-f16) via the conv2d op row.
 *
 * Memory checking: compute-sanitizer --tool memcheck build/tests/run --gpu conv
 * (and --tool racecheck / synccheck); see docs/kernels-gemm-conv.md. */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "gpu_parity.h"
#ifdef BG_WITH_CUDA
#include "../kernels/conv/conv.h"
#include "../kernels/cuda_api.h"
#include "../kernels/gemm/gemm.h"
#include "../kernels/rtc/rtc.h"
#endif

#define TOL_F32 1e-5
#define TOL_F16 1e-3

/* The parity sweep through the op table (too big for finite differences). */
static const bg_op_case gpu_conv_cases[] = {
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 1}, .shape = {{2, 9, 9, 43}, {86, 3, 3, 43}, {86}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=1", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{2, 9, 9, 86}, {172, 3, 3, 86}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{1, 5, 5, 343}, {343, 3, 3, 343}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{1, 37, 37, 3}, {43, 3, 3, 3}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{2, 8, 8, 172}, {343, 1, 1, 172}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "padding=1 groups=4", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{2, 10, 10, 96}, {96, 3, 3, 24}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=1 groups=8", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{1, 8, 8, 64}, {128, 3, 3, 8}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=1 groups=96", .n_in = 3, .ndim = {4, 4, 1}, .shape = {{2, 9, 9, 96}, {96, 3, 3, 1}, {96}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=3", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{1, 20, 20, 8}, {16, 7, 7, 8}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=1", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{2, 8, 8, 64}, {128, 3, 3, 64}}, .no_gradcheck = true},
    {.op = "linear", .n_in = 3, .ndim = {2, 2, 1}, .shape = {{513, 343}, {10, 343}, {10}}, .no_gradcheck = true},
    {.op = "linear", .n_in = 3, .ndim = {2, 2, 0}, .shape = {{64, 512}, {256, 512}}, .no_gradcheck = true},
};
BG_OP_CASES(gpu_conv_cases)

#ifdef BG_WITH_CUDA
/* The definition, in double: y = conv(x, w), dx = conv^T(dy, w), dw = dy (x) x. */
static void conv_ref(const bg_conv_shape *s, int ho, int wo, const double *x, const double *w, const double *dy,
                     double *y, double *dx, double *dw)
{
    const int cg = s->c / s->groups, cog = s->co / s->groups;
    const int64_t nx = (int64_t)s->n * s->h * s->w * s->c, nw = (int64_t)s->co * s->kh * s->kw * cg;
    memset(dx, 0, sizeof(double) * (size_t)nx);
#pragma omp parallel for schedule(static)
    for (int img = 0; img < s->n; img++) /* images own disjoint parts of dx */
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                for (int o = 0; o < s->co; o++) {
                    const int grp = o / cog;
                    const int64_t yi = (((int64_t)img * ho + oy) * wo + ox) * s->co + o;
                    double acc = 0;
                    for (int ky = 0; ky < s->kh; ky++)
                        for (int kx = 0; kx < s->kw; kx++) {
                            int iy = oy * s->sh - s->ph + ky * s->dh, ix = ox * s->sw - s->pw + kx * s->dw;
                            if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                            const double *xs = x + (((int64_t)img * s->h + iy) * s->w + ix) * s->c + grp * cg;
                            double *dxs = dx + (((int64_t)img * s->h + iy) * s->w + ix) * s->c + grp * cg;
                            const double *ws = w + (((int64_t)o * s->kh + ky) * s->kw + kx) * cg;
                            for (int c = 0; c < cg; c++) acc += xs[c] * ws[c], dxs[c] += dy[yi] * ws[c];
                        }
                    y[yi] = acc;
                }
#pragma omp parallel for schedule(static)
    for (int o = 0; o < s->co; o++) { /* output channels own disjoint rows of dw */
        const int grp = o / cog;
        double *dwo = dw + (int64_t)o * s->kh * s->kw * cg;
        for (int64_t i = 0; i < (int64_t)s->kh * s->kw * cg; i++) dwo[i] = 0;
        for (int img = 0; img < s->n; img++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    const double d = dy[(((int64_t)img * ho + oy) * wo + ox) * s->co + o];
                    for (int ky = 0; ky < s->kh; ky++)
                        for (int kx = 0; kx < s->kw; kx++) {
                            int iy = oy * s->sh - s->ph + ky * s->dh, ix = ox * s->sw - s->pw + kx * s->dw;
                            if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                            const double *xs = x + (((int64_t)img * s->h + iy) * s->w + ix) * s->c + grp * cg;
                            double *t = dwo + (ky * s->kw + kx) * cg;
                            for (int c = 0; c < cg; c++) t[c] += d * xs[c];
                        }
                }
    }
    (void)nw;
}

/* One case at one dtype: inputs, references, and the buffers the variants share. */
typedef struct {
    bg_conv_shape s;
    int ho, wo, half;
    int64_t nx, nw, ny;
    double *x, *w, *dy, *y_ref, *dx_ref, *dw_ref, *got, *init;
    bg_tensor *tx, *tw, *tdy;
} cfix;

static bool fix_init(bg_t *tc, bg_ctx *g, cfix *f, const bg_conv_shape *s, int half, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->s = *s, f->half = half;
    char err[200];
    if (bg_conv_check(s, &f->ho, &f->wo, err, sizeof err)) {
        CHECK(false, "bad test shape: %s", err);
        return false;
    }
    const int cg = s->c / s->groups;
    f->nx = (int64_t)s->n * s->h * s->w * s->c, f->nw = (int64_t)s->co * s->kh * s->kw * cg;
    f->ny = (int64_t)s->n * f->ho * f->wo * s->co;
    int64_t big = f->nx > f->ny ? f->nx : f->ny;
    if (f->nw > big) big = f->nw;
    f->x = malloc(sizeof(double) * (size_t)f->nx), f->w = malloc(sizeof(double) * (size_t)f->nw);
    f->dy = malloc(sizeof(double) * (size_t)f->ny), f->y_ref = malloc(sizeof(double) * (size_t)f->ny);
    f->dx_ref = malloc(sizeof(double) * (size_t)f->nx), f->dw_ref = malloc(sizeof(double) * (size_t)f->nw);
    f->got = malloc(sizeof(double) * (size_t)big), f->init = malloc(sizeof(double) * (size_t)big);
    gp_rng r = {seed | 1};
    for (int64_t i = 0; i < f->nx; i++) f->x[i] = gp_rnd(&r);
    for (int64_t i = 0; i < f->nw; i++) f->w[i] = gp_rnd(&r);
    for (int64_t i = 0; i < f->ny; i++) f->dy[i] = gp_rnd(&r);
    f->tx = gp_upload(g, f->nx, half, f->x, f->x), f->tw = gp_upload(g, f->nw, half, f->w, f->w), f->tdy = gp_upload(g, f->ny, half, f->dy, f->dy);
    if (!f->tx || !f->tw || !f->tdy) {
        CHECK(false, "upload: %s", bg_errmsg(g));
        return false;
    }
    conv_ref(s, f->ho, f->wo, f->x, f->w, f->dy, f->y_ref, f->dx_ref, f->dw_ref);
    return true;
}

static void fix_free(bg_ctx *g, cfix *f)
{
    bg_tensor_free(g, f->tx), bg_tensor_free(g, f->tw), bg_tensor_free(g, f->tdy);
    free(f->x), free(f->w), free(f->dy), free(f->y_ref), free(f->dx_ref), free(f->dw_ref), free(f->got), free(f->init);
}

static const char *pass_name(bg_conv_pass p) { return p == BG_CONV_FWD ? "fwd" : p == BG_CONV_DGRAD ? "dgrad" : "wgrad"; }

/* Run one pass with options o (workspace allocated here when with_ws) in
 * overwrite mode (poisoned output) or accumulate mode (random initial
 * values) and compare with the reference. */
static void run_pass(bg_t *tc, bg_ctx *g, cfix *f, bg_conv_pass pass, bg_conv_opts o, bool with_ws, int accumulate,
                     uint64_t seed, const char *label)
{
    const bg_conv_shape *s = &f->s;
    const int64_t n = pass == BG_CONV_FWD ? f->ny : pass == BG_CONV_DGRAD ? f->nx : f->nw;
    const double *ref = pass == BG_CONV_FWD ? f->y_ref : pass == BG_CONV_DGRAD ? f->dx_ref : f->dw_ref;
    gp_rng r = {seed | 1};
    for (int64_t i = 0; i < n; i++) f->init[i] = accumulate ? gp_rnd(&r) : NAN;
    bg_tensor *out = gp_upload(g, n, f->half, f->init, f->init), *ws = NULL;
    if (with_ws) {
        size_t b = bg_conv_ws_bytes(s, pass, f->half, &o, 0);
        if (b) {
            int64_t cnt = (int64_t)(b + 3) / 4;
            ws = bg_tensor_new(g, BG_CUDA, BG_F32, 1, &cnt, "ws");
            o.ws = ws ? ws->data : NULL, o.ws_bytes = ws ? b : 0;
        }
    }
    char desc[160], err[300];
    bg_conv_describe(s, pass, f->half, &o, desc, sizeof desc);
    char what[400];
    snprintf(what, sizeof what, "%s %s n%d %dx%d c%d->%d k%dx%d s%dx%d p%dx%d d%dx%d g%d %s%s [%s]", label, pass_name(pass), s->n,
             s->h, s->w, s->c, s->co, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->dh, s->dw, s->groups,
             f->half ? "f16" : "f32", accumulate ? " accumulate" : "", desc);
    if (!out || (with_ws && o.ws_bytes == 0 && bg_conv_ws_bytes(s, pass, f->half, &o, 0))) {
        CHECK(false, "%s: setup: %s", what, bg_errmsg(g));
        goto done;
    }
    int rc;
    if (pass == BG_CONV_FWD) {
        bg_conv_epilogue ep = {0};
        ep.accumulate = accumulate;
        rc = bg_conv_fwd_cuda(s, f->half, f->tx->data, f->tw->data, out->data, &ep, &o, g->stream, err, sizeof err);
    } else if (pass == BG_CONV_DGRAD)
        rc = bg_conv_dgrad_cuda(s, f->half, f->tdy->data, f->tw->data, out->data, accumulate, &o, g->stream, err, sizeof err);
    else
        rc = bg_conv_wgrad_cuda(s, f->half, f->tx->data, f->tdy->data, out->data, accumulate, &o, g->stream, err, sizeof err);
    if (!rc) rc = bg_cuda_sync(g->stream, err, sizeof err);
    if (rc) {
        CHECK(false, "%s: %s", what, err);
        goto done;
    }
    if (!gp_download(g, out, n, f->got)) {
        CHECK(false, "%s: download: %s", what, bg_errmsg(g));
        goto done;
    }
    if (accumulate)
        for (int64_t i = 0; i < n; i++) f->got[i] -= f->init[i];
    double e = gp_rel_l2(f->got, ref, n), tol = f->half ? TOL_F16 : TOL_F32;
    if (accumulate && f->half) tol *= 2; /* the initial values add their own f16 rounding */
    CHECK(e <= tol, "%s: rel err %.3g > %g", what, e, tol);
done:
    bg_tensor_free(g, out);
    bg_tensor_free(g, ws);
}

/* Every algorithm that applies to the case, all three passes, both modes. */
static void run_variants(bg_t *tc, bg_ctx *g, cfix *f, uint64_t seed)
{
    const int cg = f->s.c / f->s.groups;
    typedef struct { bg_conv_algo algo; int config, flags; bool ws; const char *label; } variant;
    variant v[12];
    int nv = 0;
    v[nv++] = (variant){BG_CONV_NAIVE, 0, 0, false, "naive"};
    v[nv++] = (variant){BG_CONV_AUTO, 0, 0, true, "auto+ws"};
    v[nv++] = (variant){BG_CONV_AUTO, 0, 0, false, "auto"};
    if (cg == 1) v[nv++] = (variant){BG_CONV_DEPTHWISE, 0, 0, true, "depthwise"};
    if (f->half) {
        v[nv++] = (variant){BG_CONV_IGEMM_SCALAR, 0, 0, false, "igemm-scalar"};
        for (int cfg = 1; cfg <= 3; cfg++) v[nv++] = (variant){BG_CONV_IGEMM, cfg, 0, true, "igemm+ws"};
        v[nv++] = (variant){BG_CONV_IGEMM, 0, BG_CONV_NO_PAD, false, "igemm-nopad"};
    } else {
        for (int cfg = 1; cfg <= 3; cfg += 2) v[nv++] = (variant){BG_CONV_IGEMM, cfg, 0, true, "igemm-fma+ws"};
        v[nv++] = (variant){BG_CONV_IGEMM, 0, 0, false, "igemm-fma"};
    }
    for (int i = 0; i < nv; i++)
        for (int p = 0; p < 3; p++)
            for (int acc = 0; acc < 2; acc++) {
                if (v[i].algo == BG_CONV_NAIVE && p == BG_CONV_WGRAD && (int64_t)f->s.n * f->ho * f->wo > 40000 && acc)
                    continue; /* the naive weight gradient is one long loop per weight: once is enough */
                /* small size: accumulate mode (the epilogue's beta = 1) on the default path and the last variant only */
                if (acc && bg_test_small() && i != 1 && i != nv - 1) continue;
                bg_conv_opts o = {0};
                o.algo = v[i].algo, o.config = v[i].config, o.flags = v[i].flags;
                run_pass(tc, g, f, (bg_conv_pass)p, o, v[i].ws, acc, seed + 7 * i + p + 100 * acc, v[i].label);
            }
}

/* n h w c co kh kw sh sw ph pw dh dw groups */
static const bg_conv_shape conv_shapes[] = {
    {513, 8, 8, 43, 43, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* batch 513, SENet w0.67 stage 1 */
    {1, 37, 37, 86, 172, 3, 3, 2, 2, 1, 1, 1, 1, 1},   /* batch 1, 37x37 (NAS resolution), stride 2 */
    {2, 37, 37, 3, 43, 3, 3, 1, 1, 1, 1, 1, 1, 1},     /* the stem, 3 channels */
    {4, 10, 10, 172, 343, 1, 1, 2, 2, 0, 0, 1, 1, 1},  /* 1x1 stride-2 shortcut */
    {2, 5, 5, 343, 343, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* stage 4, w0.67 */
    {2, 20, 20, 96, 96, 3, 3, 1, 1, 1, 1, 1, 1, 4},    /* ResNeSt 1s4x24d: groups 4, 24 per group */
    {2, 10, 10, 128, 128, 3, 3, 2, 2, 1, 1, 1, 1, 8},  /* cardinality 4 x radix 2 */
    {2, 32, 32, 3, 64, 7, 7, 2, 2, 3, 3, 1, 1, 1},     /* 7x7 stride-2 stem */
    {4, 16, 16, 96, 96, 3, 3, 2, 2, 1, 1, 1, 1, 96},   /* MobileNetV2 depthwise, stride 2 */
    {2, 9, 9, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 8},       /* depthwise, channel multiplier 2 */
    {8, 16, 16, 64, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1},   /* SENet w1.0 stage transition: aligned */
    {1, 12, 12, 16, 16, 3, 3, 1, 1, 2, 2, 2, 2, 1},    /* dilation 2 */
    {3, 11, 9, 24, 40, 3, 1, 2, 1, 1, 0, 1, 1, 1},     /* asymmetric kernel, stride and padding */
};
#endif

BG_GPU_TEST(gpu_conv_all_algorithms_match_cpu)
{
#ifdef BG_WITH_CUDA
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 5));
    if (tc->failures) return;
    for (size_t i = 0; i < sizeof conv_shapes / sizeof *conv_shapes; i++)
        for (int half = 0; half < 2; half++) {
            /* small size: batch 65 instead of 513 (still a partial last M tile, 85% of the emulated time saved) */
            bg_conv_shape s = conv_shapes[i];
            if (bg_test_small() && s.n > 64) s.n = 65;
            cfix f;
            if (fix_init(tc, &g, &f, &s, half, 1000 + 10 * i + half)) run_variants(tc, &g, &f, 77 * i + half);
            fix_free(&g, &f);
        }
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* y = relu(conv + bias + residual) with the per-channel sums of y, fused on
 * the f16 tensor-core path and computed from y elsewhere. */
BG_GPU_TEST(gpu_conv_fused_epilogue_and_stats)
{
#ifdef BG_WITH_CUDA
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 6));
    if (tc->failures) return;
    static const bg_conv_shape shapes[] = {
        {8, 16, 16, 64, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1},
        {2, 9, 9, 43, 86, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {2, 20, 20, 96, 96, 3, 3, 1, 1, 1, 1, 1, 1, 4},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int half = 0; half < 2; half++)
            for (int algo = 0; algo < 2; algo++) {
                cfix f;
                if (!fix_init(tc, &g, &f, &shapes[i], half, 500 + i)) {
                    fix_free(&g, &f);
                    continue;
                }
                const bg_conv_shape *s = &f.s;
                gp_rng r = {900 + i};
                double *bias = malloc(sizeof(double) * (size_t)s->co), *res = malloc(sizeof(double) * (size_t)f.ny);
                double *yp = malloc(sizeof(double) * (size_t)f.ny);
                double *sum_ref = calloc((size_t)s->co, sizeof(double)), *sq_ref = calloc((size_t)s->co, sizeof(double));
                double *abs_ref = calloc((size_t)s->co, sizeof(double));
                for (int c = 0; c < s->co; c++) bias[c] = gp_rnd(&r);
                for (int64_t k = 0; k < f.ny; k++) res[k] = gp_rnd(&r), yp[k] = NAN;
                bg_tensor *tb = gp_upload(&g, s->co, half, bias, bias), *tr = gp_upload(&g, f.ny, half, res, res), *ty = gp_upload(&g, f.ny, half, yp, yp);
                int64_t two = s->co;
                bg_tensor *tsum = bg_tensor_new(&g, BG_CUDA, BG_F32, 1, &two, "sum"), *tsq = bg_tensor_new(&g, BG_CUDA, BG_F32, 1, &two, "sq");
                bg_conv_opts o = {0};
                o.algo = algo ? BG_CONV_NAIVE : BG_CONV_AUTO;
                size_t wb = bg_conv_ws_bytes(s, BG_CONV_FWD, half, &o, 1);
                int64_t wn = (int64_t)(wb + 3) / 4;
                bg_tensor *ws = wb ? bg_tensor_new(&g, BG_CUDA, BG_F32, 1, &wn, "ws") : NULL;
                o.ws = ws ? ws->data : NULL, o.ws_bytes = ws ? wb : 0;
                bg_conv_epilogue ep = {0};
                ep.bias = tb ? tb->data : NULL, ep.residual = tr ? tr->data : NULL, ep.act = BG_ACT_RELU;
                ep.sum = tsum ? tsum->data : NULL, ep.sumsq = tsq ? tsq->data : NULL;
                char err[300], desc[160];
                bg_conv_describe(s, BG_CONV_FWD, half, &o, desc, sizeof desc);
                int rc = !tb || !tr || !ty || !tsum || !tsq || (wb && !ws);
                if (rc) snprintf(err, sizeof err, "setup: %s", bg_errmsg(&g));
                if (!rc) rc = bg_conv_fwd_cuda(s, half, f.tx->data, f.tw->data, ty->data, &ep, &o, g.stream, err, sizeof err);
                if (!rc) rc = bg_cuda_sync(g.stream, err, sizeof err);
                CHECK(rc == 0, "fused %s [%s]: %s", half ? "f16" : "f32", desc, err);
                if (!rc) {
                    for (int64_t k = 0; k < f.ny; k++) {
                        double v = f.y_ref[k] + bias[k % s->co] + res[k];
                        f.y_ref[k] = v > 0 ? v : 0;
                        sum_ref[k % s->co] += f.y_ref[k], sq_ref[k % s->co] += f.y_ref[k] * f.y_ref[k];
                        abs_ref[k % s->co] += fabs(f.y_ref[k]);
                    }
                    double tol = half ? TOL_F16 : TOL_F32;
                    gp_download(&g, ty, f.ny, f.got);
                    double e = gp_rel_l2(f.got, f.y_ref, f.ny);
                    CHECK(e <= tol, "fused y %s c%d->%d [%s]: rel err %.3g > %g", half ? "f16" : "f32", s->c, s->co, desc, e, tol);
                    double *gs = malloc(sizeof(double) * (size_t)s->co), *gq = malloc(sizeof(double) * (size_t)s->co);
                    gp_download(&g, tsum, s->co, gs);
                    gp_download(&g, tsq, s->co, gq);
                    double worst = 0;
                    for (int c = 0; c < s->co; c++) {
                        double e1 = fabs(gs[c] - sum_ref[c]) / (abs_ref[c] + 1e-30), e2 = fabs(gq[c] - sq_ref[c]) / (sq_ref[c] + 1e-30);
                        if (!(e1 <= worst)) worst = isnan(e1) ? INFINITY : e1;
                        if (!(e2 <= worst)) worst = isnan(e2) ? INFINITY : e2;
                    }
                    CHECK(worst <= tol, "batchnorm sums %s c%d->%d [%s]: relative error %.3g > %g", half ? "f16" : "f32", s->c, s->co,
                          desc, worst, tol);
                    free(gs), free(gq);
                }
                bg_tensor_free(&g, tb), bg_tensor_free(&g, tr), bg_tensor_free(&g, ty), bg_tensor_free(&g, tsum);
                bg_tensor_free(&g, tsq), bg_tensor_free(&g, ws);
                free(bias), free(res), free(yp), free(sum_ref), free(sq_ref), free(abs_ref);
                fix_free(&g, &f);
            }
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* NVRTC-specialised kernels and the tile tuner: same results as the
 * precompiled ones (bit for bit at the same tile: same arithmetic order). */
BG_GPU_TEST(gpu_conv_nvrtc_and_tuner)
{
#ifdef BG_WITH_CUDA
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 7));
    if (tc->failures) return;
    bg_rtc *r = bg_rtc_new("");
    static const bg_conv_shape shapes[] = {
        {8, 16, 16, 64, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1}, /* cp.async */
        {4, 10, 10, 172, 343, 1, 1, 2, 2, 0, 0, 1, 1, 1}, /* padded */
        {2, 20, 20, 96, 96, 3, 3, 1, 1, 1, 1, 1, 1, 4},  /* grouped, f32 FMA below */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int half = 0; half < 2; half++) {
            cfix f;
            if (!fix_init(tc, &g, &f, &shapes[i], half, 700 + i)) {
                fix_free(&g, &f);
                continue;
            }
            for (int p = 0; p < 3; p++) {
                bg_conv_opts o = {0};
                o.config = half ? 2 : 0;
                run_pass(tc, &g, &f, (bg_conv_pass)p, o, true, 0, 31 + p, "precompiled");
                double *pre = malloc(sizeof(double) * (size_t)(p == 0 ? f.ny : p == 1 ? f.nx : f.nw));
                memcpy(pre, f.got, sizeof(double) * (size_t)(p == 0 ? f.ny : p == 1 ? f.nx : f.nw));
                o.rtc = r;
                run_pass(tc, &g, &f, (bg_conv_pass)p, o, true, 0, 31 + p, "nvrtc");
                if (bg_rtc_available(r) && p != 2) /* wgrad may split differently: only compare within tolerance */
                    CHECK(!memcmp(pre, f.got, sizeof(double) * (size_t)(p == 0 ? f.ny : f.nx)),
                          "nvrtc %s: results differ from the precompiled kernel at the same tile", pass_name((bg_conv_pass)p));
                free(pre);
            }
            if (half) { /* the tuner picks a tile and later calls use it */
                bg_conv_opts o = {0};
                o.rtc = r;
                bg_tensor *ty = NULL;
                double *nanv = malloc(sizeof(double) * (size_t)f.ny);
                for (int64_t k = 0; k < f.ny; k++) nanv[k] = NAN;
                ty = gp_upload(&g, f.ny, 1, nanv, nanv);
                free(nanv);
                size_t wb = bg_conv_ws_bytes(&f.s, BG_CONV_FWD, 1, &o, 0);
                int64_t wn = (int64_t)(wb + 3) / 4;
                bg_tensor *ws = wb ? bg_tensor_new(&g, BG_CUDA, BG_F32, 1, &wn, "ws") : NULL;
                o.ws = ws ? ws->data : NULL, o.ws_bytes = ws ? wb : 0;
                int best = 0;
                float ms = 0;
                char err[300];
                int rc = ty ? bg_conv_tune(&f.s, BG_CONV_FWD, 1, f.tx->data, f.tw->data, ty->data, &o, g.stream, &best, &ms, err, sizeof err) : 1;
                CHECK(rc == 0 && best >= 1 && best <= 3 && ms > 0, "tune: rc %d best %d %.3f ms: %s", rc, best, (double)ms, rc ? err : "");
                bg_tensor_free(&g, ty), bg_tensor_free(&g, ws);
                run_pass(tc, &g, &f, BG_CONV_FWD, o, true, 0, 5, "tuned");
            }
            fix_free(&g, &f);
        }
    const char *note = bg_rtc_note(r);
    if (note) printf("  note: %s\n", note);
    int compiled = 0, disk = 0, mem = 0, failed = 0;
    bg_rtc_stats(r, &compiled, &disk, &mem, &failed);
    if (bg_rtc_available(r)) CHECK(failed == 0 && compiled > 0, "nvrtc: %d compiled, %d failed", compiled, failed);
    bg_rtc_free(r);
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* Deterministic plans (BG_CONV_DETERMINISTIC, what a deterministic context
 * asks for) do not depend on the device: the same bits on a GPU of any size.
 * The emulator pretends other SM counts (BGEMU_SM_COUNT); without the flag
 * the weight gradient's split-K changes with them, with it nothing does. */
BG_GPU_TEST(gpu_conv_deterministic_plans_ignore_the_device)
{
#ifdef BG_WITH_CUDA
    char name[256] = "";
    if (!gp_on_emulator(name, sizeof name)) SKIP("needs the CUDA emulator to vary the SM count (device: %s)", name);
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 8));
    if (tc->failures) return;
    const bg_conv_shape s = {8, 16, 16, 64, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    for (int half = 0; half < 2; half++) {
        cfix f;
        if (!fix_init(tc, &g, &f, &s, half, 900 + half)) {
            fix_free(&g, &f);
            continue;
        }
        char desc[2][2][160];
        double *got[2][2];
        const char *sms[2] = {"132", "12"};
        for (int det = 0; det < 2; det++)
            for (int k = 0; k < 2; k++) {
                setenv("BGEMU_SM_COUNT", sms[k], 1);
                bg_conv_opts o = {0};
                o.flags = det ? BG_CONV_DETERMINISTIC : 0;
                run_pass(tc, &g, &f, BG_CONV_WGRAD, o, true, 0, 55, det ? "deterministic" : "device-sized");
                bg_conv_opts od = o;
                od.ws = (void *)(uintptr_t)256, od.ws_bytes = bg_conv_ws_bytes(&s, BG_CONV_WGRAD, half, &o, 0);
                bg_conv_describe(&s, BG_CONV_WGRAD, half, &od, desc[det][k], sizeof desc[det][k]);
                got[det][k] = malloc(sizeof(double) * (size_t)f.nw);
                memcpy(got[det][k], f.got, sizeof(double) * (size_t)f.nw);
            }
        unsetenv("BGEMU_SM_COUNT");
        CHECK(strcmp(desc[0][0], desc[0][1]) != 0, "%s: the device-sized plan should follow the SM count (%s / %s)",
              half ? "f16" : "f32", desc[0][0], desc[0][1]);
        CHECK(!strcmp(desc[1][0], desc[1][1]), "%s: deterministic plans differ: %s / %s", half ? "f16" : "f32",
              desc[1][0], desc[1][1]);
        CHECK(!memcmp(got[1][0], got[1][1], sizeof(double) * (size_t)f.nw), "%s: deterministic results differ between "
              "SM counts", half ? "f16" : "f32");
        for (int det = 0; det < 2; det++)
            for (int k = 0; k < 2; k++) free(got[det][k]);
        fix_free(&g, &f);
    }
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* No GPU needed: the planner picks the expected path for representative
 * shapes and asks for a workspace exactly when it needs one. */
BG_TEST(conv_plans_pick_expected_paths)
{
#ifdef BG_WITH_CUDA
    struct { bg_conv_shape s; bg_conv_pass pass; int half, ws; const char *want; bool needs_ws; } t[] = {
        {{8, 16, 16, 64, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1}, BG_CONV_FWD, 1, 0, "igemm-tc cp.async", false},
        {{8, 16, 16, 43, 86, 3, 3, 1, 1, 1, 1, 1, 1, 1}, BG_CONV_FWD, 1, 1, "padded", true},
        {{8, 16, 16, 43, 86, 3, 3, 1, 1, 1, 1, 1, 1, 1}, BG_CONV_FWD, 1, 0, "igemm-tc scalar", true},
        {{8, 16, 16, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}, BG_CONV_FWD, 0, 0, "igemm-fma", false},
        {{8, 16, 16, 96, 96, 3, 3, 2, 2, 1, 1, 1, 1, 96}, BG_CONV_WGRAD, 1, 0, "depthwise", true},
        {{512, 32, 32, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}, BG_CONV_WGRAD, 1, 1, "split-k", true},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        bg_conv_opts o = {0};
        size_t need = bg_conv_ws_bytes(&t[i].s, t[i].pass, t[i].half, &o, 0);
        CHECK((need > 0) == t[i].needs_ws, "case %zu: workspace %zu bytes", i, need);
        if (t[i].ws) o.ws = (void *)(uintptr_t)256, o.ws_bytes = need; /* describe only reads the size */
        char d[160];
        bg_conv_describe(&t[i].s, t[i].pass, t[i].half, &o, d, sizeof d);
        CHECK(strstr(d, t[i].want) != NULL, "case %zu: planned '%s', expected '%s'", i, d, t[i].want);
    }
    char err[200];
    bg_conv_shape bad = {1, 4, 4, 6, 4, 3, 3, 1, 1, 0, 0, 1, 1, 4};
    CHECK(bg_conv_check(&bad, NULL, NULL, err, sizeof err) == BG_KERR_ARG && strstr(err, "groups"), "bad groups: %s", err);
    bad = (bg_conv_shape){1, 2, 2, 4, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1};
    CHECK(bg_conv_check(&bad, NULL, NULL, err, sizeof err) == BG_KERR_ARG && strstr(err, "exceeds"), "kernel too big: %s", err);
#else
    SKIP("CPU-only build");
#endif
}
