/* conv2d and linear: op cases for the generic checks (gradcheck, f32 vs f64,
 * backends vs CPU), hand-computed outputs, a direct-loop oracle for the
 * im2col path, and the errors bad inputs must produce. */
#include <string.h>
#include "harness.h"
#include "../ops/ops.h"

/* Tiny shapes: the gradcheck runs two forwards per input element. */
static const bg_op_case conv_cases[] = {
    /* 3x3 stride 1 pad 1 with bias */
    {.op = "conv2d", .params = "stride=1 padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 5, 5, 3}, {4, 3, 3, 3}, {4}}},
    /* 3x3 stride 2 pad 1, no bias */
    {.op = "conv2d", .params = "stride=2 padding=1", .n_in = 3, .ndim = {4, 4, 0},
     .shape = {{2, 6, 6, 3}, {4, 3, 3, 3}}},
    /* 1x1 stride 2 (downsample shortcut): im2col path */
    {.op = "conv2d", .params = "stride=2", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 5, 5, 4}, {3, 1, 1, 4}, {3}}},
    /* 1x1 stride 1: the direct (no im2col) path, plain and grouped */
    {.op = "conv2d", .params = "", .n_in = 3, .ndim = {4, 4, 1}, .shape = {{2, 4, 3, 4}, {5, 1, 1, 4}, {5}}},
    {.op = "conv2d", .params = "groups=2", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{1, 3, 3, 4}, {6, 1, 1, 2}}},
    /* 7x7 stride 2 pad 3 (the ResNet stem, small) */
    {.op = "conv2d", .params = "stride=2 padding=3", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{1, 8, 8, 3}, {2, 7, 7, 3}, {2}}},
    /* dilation 2 */
    {.op = "conv2d", .params = "padding=2 dilation=2", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{1, 7, 7, 2}, {3, 3, 3, 2}, {3}}},
    /* groups 4 (ResNeXt/ResNeSt cardinality) */
    {.op = "conv2d", .params = "padding=1 groups=4", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 5, 5, 8}, {8, 3, 3, 2}, {8}}},
    /* depthwise (groups = C), and depthwise with channel multiplier 2 */
    {.op = "conv2d", .params = "padding=1 groups=4", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 5, 5, 4}, {4, 3, 3, 1}, {4}}},
    {.op = "conv2d", .params = "stride=2 padding=1 groups=3", .n_in = 3, .ndim = {4, 4, 0},
     .shape = {{1, 6, 5, 3}, {6, 3, 3, 1}}},
    /* odd sizes: 7x5 input with 3 channels; asymmetric kernel, stride and padding */
    {.op = "conv2d", .params = "stride=2 padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{1, 7, 5, 3}, {2, 3, 3, 3}, {2}}},
    {.op = "conv2d", .params = "stride=2,1 padding=1,0", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 7, 5, 3}, {2, 3, 2, 3}, {2}}},
};
BG_OP_CASES(conv_cases)

static const bg_op_case linear_cases[] = {
    {.op = "linear", .n_in = 3, .ndim = {2, 2, 1}, .shape = {{3, 5}, {4, 5}, {4}}},
    {.op = "linear", .n_in = 3, .ndim = {2, 2, 0}, .shape = {{2, 7}, {3, 7}}},
};
BG_OP_CASES(linear_cases)

/* ---- helpers ---- */

static bg_tensor *new4(bg_ctx *ctx, bg_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d, const char *name)
{
    int64_t s[4] = {a, b, c, d};
    return bg_tensor_new(ctx, BG_CPU, dt, 4, s, name);
}

static bg_tensor *new1(bg_ctx *ctx, bg_dtype dt, int64_t a, const char *name)
{
    return bg_tensor_new(ctx, BG_CPU, dt, 1, &a, name);
}

static bg_conv2d_params conv_params(int stride, int pad, int dil, int groups)
{
    bg_conv2d_params p = {{stride, stride}, {pad, pad}, {dil, dil}, groups};
    return p;
}

/* Shape inference + forward of one op on standalone inputs. */
static bg_status try_op(bg_ctx *ctx, const bg_op *op, const void *params, bg_tensor *x, bg_tensor *w, bg_tensor *b)
{
    bg_node n;
    bg_tensor *in[3] = {x, w, b};
    bg_status s = bg_node_init(ctx, &n, op, params, in, 3, false);
    if (!s) s = bg_node_forward(ctx, &n);
    bg_node_release(ctx, &n);
    return s;
}

/* ---- conv2d ---- */

BG_TEST(conv2d_hand_computed)
{
    /* x = 1..9 as a 3x3 single-channel image, kernel = 1..9 (row-major),
     * bias 0.5. Cross-correlation (no kernel flip), so without padding the
     * single output is sum(i*i) = 285; with padding 1 and stride 2 the four
     * outputs see the corners of x against the opposite corners of the
     * kernel, e.g. y(0,0) = 1*5 + 2*6 + 4*8 + 5*9 = 94. */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, false);
    int64_t xs[4] = {1, 3, 3, 1}, ws[4] = {1, 3, 3, 1}, bs[1] = {1};
    bg_tensor *x = bg_graph_tensor(g, BG_F32, 4, xs, "x");
    bg_tensor *w = bg_graph_tensor(g, BG_F32, 4, ws, "w");
    bg_tensor *b = bg_graph_tensor(g, BG_F32, 1, bs, "b");
    for (int i = 0; i < 9; i++) bg_set(x, i, i + 1), bg_set(w, i, i + 1);
    bg_set(b, 0, 0.5);

    bg_tensor *y = bg_conv2d(g, x, w, b, conv_params(1, 0, 1, 1));
    CHECK(y != NULL, "conv2d: %s", bg_errmsg(&ctx));
    if (y) {
        CHECK(y->shape[0] == 1 && y->shape[1] == 1 && y->shape[2] == 1 && y->shape[3] == 1, "shape");
        CHECK_NEAR(bg_get(y, 0), 285.5, 1e-6, "valid 3x3");
    }
    y = bg_conv2d(g, x, w, b, conv_params(2, 1, 1, 1));
    CHECK(y != NULL, "conv2d: %s", bg_errmsg(&ctx));
    if (y) {
        CHECK(y->shape[1] == 2 && y->shape[2] == 2, "stride 2 pad 1 on 3x3: got %lldx%lld, want 2x2",
              (long long)y->shape[1], (long long)y->shape[2]);
        const double want[4] = {94.5, 106.5, 106.5, 94.5};
        for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(y, i), want[i], 1e-6, "stride 2 pad 1");
    }
    /* dilation 2 with padding 2 keeps 3x3; the taps are 2 apart, so output
     * (0,0) sees x's corners at kernel taps (1,1),(1,2),(2,1),(2,2) and the
     * centre output sees only x(1,1) at the kernel's centre. */
    y = bg_conv2d(g, x, w, NULL, conv_params(1, 2, 2, 1));
    CHECK(y != NULL, "conv2d: %s", bg_errmsg(&ctx));
    if (y) {
        CHECK(y->shape[1] == 3 && y->shape[2] == 3, "dilation 2 pad 2 on 3x3 keeps 3x3");
        CHECK_NEAR(bg_get(y, 0), 1 * 5 + 3 * 6 + 7 * 8 + 9 * 9, 1e-6, "dilated corner");
        CHECK_NEAR(bg_get(y, 4), 5 * 5, 1e-6, "dilated centre");
        CHECK_NEAR(bg_get(y, 8), 1 * 1 + 3 * 2 + 7 * 4 + 9 * 5, 1e-6, "dilated far corner");
    }
    bg_graph_free(g);
    bg_ctx_free(&ctx);
}

/* The definition, written as directly as possible, in double. */
static double direct_conv(const bg_tensor *x, const bg_tensor *w, const bg_tensor *b, bg_conv2d_params p,
                          int64_t n, int64_t oy, int64_t ox, int64_t co)
{
    int64_t H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t kh = w->shape[1], kw = w->shape[2], Cg = w->shape[3], Cog = w->shape[0] / p.groups;
    int64_t grp = co / Cog;
    double acc = b ? bg_get(b, co) : 0;
    for (int64_t ky = 0; ky < kh; ky++)
        for (int64_t kx = 0; kx < kw; kx++)
            for (int64_t c = 0; c < Cg; c++) {
                int64_t iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
                int64_t ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += bg_get(x, ((n * H + iy) * W + ix) * C + grp * Cg + c) *
                       bg_get(w, ((co * kh + ky) * kw + kx) * Cg + c);
            }
    return acc;
}

BG_TEST(conv2d_matches_direct_loop)
{
    struct { int64_t x[4], w[4]; int s0, s1, p0, p1, d0, d1, groups; bool bias; } cfg[] = {
        {{2, 9, 7, 6}, {4, 3, 3, 6}, 1, 1, 1, 1, 1, 1, 1, true},
        {{1, 9, 8, 6}, {6, 3, 2, 2}, 2, 1, 1, 0, 1, 2, 3, true},
        {{3, 6, 6, 4}, {4, 3, 3, 1}, 2, 2, 1, 1, 1, 1, 4, false},
        {{1, 11, 10, 5}, {3, 5, 5, 5}, 3, 2, 2, 1, 2, 1, 1, true},
        {{2, 5, 5, 8}, {12, 1, 1, 2}, 1, 1, 0, 0, 1, 1, 4, true},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        for (int dt = 0; dt < 2; dt++) {
            bg_dtype type = dt ? BG_F64 : BG_F32;
            bg_ctx ctx;
            bg_test_ctx(&ctx, 7 + k);
            bg_tensor *x = bg_tensor_new(&ctx, BG_CPU, type, 4, cfg[k].x, "x");
            bg_tensor *w = bg_tensor_new(&ctx, BG_CPU, type, 4, cfg[k].w, "w");
            bg_tensor *b = cfg[k].bias ? new1(&ctx, type, cfg[k].w[0], "b") : NULL;
            bg_tensor_fill_normal(&ctx, x, 0, 1);
            bg_tensor_fill_normal(&ctx, w, 0, 1);
            if (b) bg_tensor_fill_normal(&ctx, b, 0, 1);
            bg_conv2d_params p = {{cfg[k].s0, cfg[k].s1}, {cfg[k].p0, cfg[k].p1}, {cfg[k].d0, cfg[k].d1}, cfg[k].groups};
            bg_node n;
            bg_tensor *in[3] = {x, w, b};
            CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_conv2d, &p, in, 3, false));
            if (ctx.status == BG_OK) {
                CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
                const bg_tensor *y = n.out[0];
                double worst = 0;
                for (int64_t i = 0; i < y->shape[0]; i++)
                    for (int64_t oy = 0; oy < y->shape[1]; oy++)
                        for (int64_t ox = 0; ox < y->shape[2]; ox++)
                            for (int64_t co = 0; co < y->shape[3]; co++) {
                                double want = direct_conv(x, w, b, p, i, oy, ox, co);
                                double got = bg_get(y, ((i * y->shape[1] + oy) * y->shape[2] + ox) * y->shape[3] + co);
                                worst = fmax(worst, fabs(got - want) / fmax(1, fabs(want)));
                            }
                CHECK(worst <= (dt ? 1e-12 : 1e-5), "config %zu %s: worst relative error %.3g", k,
                      bg_dtype_name(type), worst);
                bg_node_release(&ctx, &n);
            }
            bg_tensor_free(&ctx, x);
            bg_tensor_free(&ctx, w);
            bg_tensor_free(&ctx, b);
            bg_ctx_free(&ctx);
        }
    }
}

/* Forward + backward of a bias-free conv on standalone tensors, upstream
 * gradient dy; fills x->grad and w->grad (zeroed first). */
static bg_status conv_fwd_bwd(bg_ctx *ctx, bg_node *n, bg_tensor *x, bg_tensor *w, const bg_tensor *dy)
{
    bg_status s;
    if ((s = bg_node_forward(ctx, n)) || (s = bg_tensor_ensure_grad(ctx, x)) || (s = bg_tensor_zero(ctx, x->grad)) ||
        (s = bg_tensor_ensure_grad(ctx, w)) || (s = bg_tensor_zero(ctx, w->grad)) ||
        (s = bg_tensor_ensure_grad(ctx, n->out[0])) || (s = bg_tensor_copy(ctx, n->out[0]->grad, dy)))
        return s;
    return bg_node_backward(ctx, n);
}

BG_TEST(conv2d_im2col_chunks_match_one_pass)
{
    /* The im2col scratch is bounded (8 MiB), so a batch of two 48x48x64
     * images with K = 3*3*64 (2 x 5.3 MB of columns) is processed in two
     * chunks that split the second image, while a single image fits in one.
     * Outputs and input gradients must match the per-image runs exactly
     * (each output pixel's arithmetic does not depend on the chunking), the
     * weight gradient up to summation order, and the peak memory must show
     * the scratch stayed bounded. */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 3);
    bg_tensor *x = new4(&ctx, BG_F32, 2, 48, 48, 64, "x");
    bg_tensor *w = new4(&ctx, BG_F32, 4, 3, 3, 64, "w");
    bg_tensor *dy = new4(&ctx, BG_F32, 2, 48, 48, 4, "dy");
    bg_tensor *x1 = new4(&ctx, BG_F32, 1, 48, 48, 64, "x1");
    bg_tensor *dy1 = new4(&ctx, BG_F32, 1, 48, 48, 4, "dy1");
    bg_tensor *dw_sum = new4(&ctx, BG_F64, 4, 3, 3, 64, "dw_sum");
    bg_tensor_fill_normal(&ctx, x, 0, 1);
    bg_tensor_fill_normal(&ctx, w, 0, 1);
    bg_tensor_fill_normal(&ctx, dy, 0, 1);
    bg_tensor_zero(&ctx, dw_sum);
    bg_conv2d_params p = conv_params(1, 1, 1, 1);
    bg_node n, n1;
    bg_tensor *in[3] = {x, w, NULL}, *in1[3] = {x1, w, NULL};
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_conv2d, &p, in, 3, true));
    CHECK_OK(&ctx, bg_node_init(&ctx, &n1, &bg_op_conv2d, &p, in1, 3, true));
    if (ctx.status == BG_OK) {
        size_t img = bg_nbytes(x1), oimg = bg_nbytes(n1.out[0]);
        for (int i = 0; i < 2; i++) {
            memcpy(x1->data, (char *)x->data + i * img, img);
            memcpy(dy1->data, (char *)dy->data + i * oimg, oimg);
            CHECK_OK(&ctx, conv_fwd_bwd(&ctx, &n1, x1, w, dy1));
            for (int64_t j = 0; j < bg_numel(dw_sum); j++) bg_set(dw_sum, j, bg_get(dw_sum, j) + bg_get(w->grad, j));
            /* the batch run shares w->grad, so it goes after image 0's dw is summed */
            if (i == 0) CHECK_OK(&ctx, conv_fwd_bwd(&ctx, &n, x, w, dy));
            CHECK(memcmp(n1.out[0]->data, (char *)n.out[0]->data + i * oimg, oimg) == 0,
                  "image %d: output differs between chunked and single-image runs", i);
            CHECK(memcmp(x1->grad->data, (char *)x->grad->data + i * img, img) == 0,
                  "image %d: input gradient differs between chunked and single-image runs", i);
        }
        CHECK_OK(&ctx, conv_fwd_bwd(&ctx, &n, x, w, dy));
        double worst = 0;
        for (int64_t j = 0; j < bg_numel(dw_sum); j++)
            worst = fmax(worst, fabs(bg_get(w->grad, j) - bg_get(dw_sum, j)) / fmax(1, fabs(bg_get(dw_sum, j))));
        CHECK(worst < 1e-4, "weight gradient: chunked vs per-image sum differ by %.3g (relative)", worst);
        /* x, x1 and their grads; dy, dy1, both outputs and their grads; w, its grad, dw_sum */
        size_t tensors = 2 * (bg_nbytes(x) + bg_nbytes(x1)) + 3 * (bg_nbytes(dy) + bg_nbytes(dy1)) + 2 * bg_nbytes(w) +
                         bg_nbytes(dw_sum);
        CHECK(ctx.alloc[BG_CPU].peak < tensors + (9u << 20), "peak %zu bytes over %zu of tensors: the im2col scratch is not bounded",
              ctx.alloc[BG_CPU].peak, tensors);
    }
    bg_node_release(&ctx, &n);
    bg_node_release(&ctx, &n1);
    bg_tensor *ts[] = {x, w, dy, x1, dy1, dw_sum};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) bg_tensor_free(&ctx, ts[i]);
    bg_ctx_free(&ctx);
}

BG_TEST(conv2d_macs)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_tensor *x = new4(&ctx, BG_F32, 2, 8, 8, 8, "x");
    bg_tensor *w = new4(&ctx, BG_F32, 16, 3, 3, 2, "w");
    bg_conv2d_params p = conv_params(2, 1, 1, 4);
    bg_node n;
    bg_tensor *in[3] = {x, w, NULL};
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_conv2d, &p, in, 3, false));
    /* out 2x4x4x16 elements, each 3*3*(8/4) MACs */
    if (ctx.status == BG_OK) CHECK_NEAR(bg_op_conv2d.macs(&n), 2.0 * 4 * 4 * 16 * 3 * 3 * 2, 0, "conv MACs");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, x);
    bg_tensor_free(&ctx, w);
    bg_ctx_free(&ctx);
}

BG_TEST(conv2d_bad_input)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_tensor *x = new4(&ctx, BG_F32, 1, 5, 5, 3, "img");
    bg_tensor *x6 = new4(&ctx, BG_F32, 1, 5, 5, 6, "img6");
    bg_tensor *w4 = new4(&ctx, BG_F32, 8, 3, 3, 4, "w4");
    bg_tensor *w3 = new4(&ctx, BG_F32, 8, 3, 3, 3, "w3");
    bg_tensor *wbig = new4(&ctx, BG_F32, 2, 9, 9, 3, "wbig");
    int64_t s3[3] = {5, 5, 3};
    bg_tensor *x3d = bg_tensor_new(&ctx, BG_CPU, BG_F32, 3, s3, "flat");
    bg_tensor *xh = new4(&ctx, BG_F16, 1, 5, 5, 3, "half");
    bg_tensor *wh = new4(&ctx, BG_F16, 8, 3, 3, 3, "whalf");
    bg_tensor *wd = new4(&ctx, BG_F64, 8, 3, 3, 3, "wdouble");
    bg_tensor *b5 = new1(&ctx, BG_F32, 5, "b5");
    bg_conv2d_params p1 = conv_params(1, 1, 1, 1);

    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &p1, x, w4, NULL), BG_ERR_SHAPE, "has 3 channels but weight 'w4'");
    bg_conv2d_params p4 = conv_params(1, 1, 1, 4);
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &p4, x6, w3, NULL), BG_ERR_SHAPE, "groups 4 does not divide the 6 channels");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &p1, x3d, w3, NULL), BG_ERR_SHAPE, "'flat' must be 4-D");
    bg_conv2d_params p0 = conv_params(1, 0, 1, 1);
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &p0, x, wbig, NULL), BG_ERR_SHAPE, "is larger than input 'img'");
    bg_conv2d_params pd = conv_params(1, 0, 3, 1); /* 3x3 dilated by 3 spans 7 > 5 */
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &pd, x, w3, NULL), BG_ERR_SHAPE, "extent 7x7");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &p1, xh, wh, NULL), BG_ERR_DTYPE, "'half' is f16");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &p1, x, wd, NULL), BG_ERR_DTYPE, "'wdouble' is f64");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &p1, x, w3, b5), BG_ERR_SHAPE, "bias 'b5' must be {8}");
    bg_conv2d_params ps = conv_params(0, 1, 1, 1);
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_conv2d, &ps, x, w3, NULL), BG_ERR_ARG, "stride=0,0");

    bg_tensor *ts[] = {x, x6, w4, w3, wbig, x3d, xh, wh, wd, b5};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) bg_tensor_free(&ctx, ts[i]);
    bg_ctx_free(&ctx);
}

/* ---- linear ---- */

BG_TEST(linear_hand_computed)
{
    /* x = [[1,2,3],[4,5,6]], W = [[1,0,-1],[2,1,0]], b = [0.5,-1]:
     * y = x W^T + b = [[1-3, 2+2], [4-6, 8+5]] + b = [[-1.5, 3], [-1.5, 12]]. */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, false);
    int64_t xs[2] = {2, 3}, ws[2] = {2, 3}, bs[1] = {2};
    bg_tensor *x = bg_graph_tensor(g, BG_F64, 2, xs, "x");
    bg_tensor *w = bg_graph_tensor(g, BG_F64, 2, ws, "w");
    bg_tensor *b = bg_graph_tensor(g, BG_F64, 1, bs, "b");
    const double xv[6] = {1, 2, 3, 4, 5, 6}, wv[6] = {1, 0, -1, 2, 1, 0};
    for (int i = 0; i < 6; i++) bg_set(x, i, xv[i]), bg_set(w, i, wv[i]);
    bg_set(b, 0, 0.5);
    bg_set(b, 1, -1);
    bg_tensor *y = bg_linear(g, x, w, b);
    CHECK(y != NULL, "linear: %s", bg_errmsg(&ctx));
    if (y) {
        CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 2, "shape");
        const double want[4] = {-1.5, 3, -1.5, 12};
        for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(y, i), want[i], 1e-12, "y");
    }
    bg_graph_free(g);
    bg_ctx_free(&ctx);
}

BG_TEST(linear_bad_input)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s35[2] = {3, 5}, s45[2] = {4, 5}, s46[2] = {4, 6};
    bg_tensor *x = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, s35, "feats");
    bg_tensor *w = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, s45, "fc");
    bg_tensor *w6 = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, s46, "fc6");
    bg_tensor *x4 = new4(&ctx, BG_F32, 3, 1, 1, 5, "pooled");
    bg_tensor *b3 = new1(&ctx, BG_F32, 3, "b3");
    bg_tensor *xh = bg_tensor_new(&ctx, BG_CPU, BG_F16, 2, s35, "half");
    bg_tensor *wh = bg_tensor_new(&ctx, BG_CPU, BG_F16, 2, s45, "fchalf");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_linear, NULL, x, w6, NULL), BG_ERR_SHAPE, "has 5 features but weight 'fc6'");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_linear, NULL, x4, w, NULL), BG_ERR_SHAPE, "'pooled' must be 2-D");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_linear, NULL, x, w, b3), BG_ERR_SHAPE, "bias 'b3' must be {4}");
    CHECK_ERR(&ctx, try_op(&ctx, &bg_op_linear, NULL, xh, wh, NULL), BG_ERR_DTYPE, "'half' is f16");
    bg_tensor *ts[] = {x, w, w6, x4, b3, xh, wh};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) bg_tensor_free(&ctx, ts[i]);
    bg_ctx_free(&ctx);
}

BG_TEST(linear_macs)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s[2] = {3, 5}, sw[2] = {4, 5};
    bg_tensor *x = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, s, "x");
    bg_tensor *w = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, sw, "w");
    bg_node n;
    bg_tensor *in[3] = {x, w, NULL};
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_linear, NULL, in, 3, false));
    if (ctx.status == BG_OK) CHECK_NEAR(bg_op_linear.macs(&n), 3.0 * 4 * 5, 0, "linear MACs");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, x);
    bg_tensor_free(&ctx, w);
    bg_ctx_free(&ctx);
}
