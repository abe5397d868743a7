/* Pooling: op cases for the generic checks, PyTorch's output sizes and
 * divisors worked out by hand, max-pool argmax routing, and bad inputs. */
#include <string.h>
#include "harness.h"
#include "../ops/ops.h"

static const bg_op_case pool_cases[] = {
    /* ResNeSt avg_down: kernel = stride = 2, ceil_mode, padding not counted, odd sizes */
    {.op = "avgpool2d", .params = "kernel=2 stride=2 ceil_mode=1 count_include_pad=0", .n_in = 1, .ndim = {4},
     .shape = {{2, 7, 5, 3}}},
    /* 3x3 stride 2 pad 1, padding counted */
    {.op = "avgpool2d", .params = "kernel=3 stride=2 padding=1 count_include_pad=1", .n_in = 1, .ndim = {4},
     .shape = {{2, 6, 7, 2}}},
    /* ceil_mode with padding counted: the last window overhangs the padded input */
    {.op = "avgpool2d", .params = "kernel=3 stride=2 padding=1 ceil_mode=1", .n_in = 1, .ndim = {4},
     .shape = {{1, 6, 5, 2}}},
    /* ceil_mode where the rule drops a window that would start in the padding */
    {.op = "avgpool2d", .params = "kernel=3 stride=3 padding=1 ceil_mode=1 count_include_pad=0", .n_in = 1,
     .ndim = {4}, .shape = {{1, 5, 5, 2}}},
    /* default stride (= kernel) */
    {.op = "avgpool2d", .params = "kernel=2", .n_in = 1, .ndim = {4}, .shape = {{1, 4, 6, 2}}},
    /* the ResNet stem max pool; SPREAD inputs have no ties */
    {.op = "maxpool2d", .params = "kernel=3 stride=2 padding=1", .n_in = 1, .ndim = {4}, .shape = {{2, 7, 7, 3}},
     .init = {BG_INIT_SPREAD}},
    {.op = "maxpool2d", .params = "kernel=2 stride=2 ceil_mode=1", .n_in = 1, .ndim = {4}, .shape = {{1, 5, 7, 2}},
     .init = {BG_INIT_SPREAD}},
    {.op = "global_avgpool", .n_in = 1, .ndim = {4}, .shape = {{2, 3, 4, 5}}},
};
BG_OP_CASES(pool_cases)

static bg_pool_params pool_params(int k, int s, int p, int ceil_mode, int include_pad)
{
    bg_pool_params q = {{k, k}, {s, s}, {p, p}, ceil_mode, include_pad};
    return q;
}

static bg_tensor *new4(bg_ctx *ctx, bg_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d, const char *name)
{
    int64_t s[4] = {a, b, c, d};
    return bg_tensor_new(ctx, BG_CPU, dt, 4, s, name);
}

static bg_status try_pool(bg_ctx *ctx, const bg_op *op, const bg_pool_params *p, bg_tensor *x)
{
    bg_node n;
    bg_tensor *in[1] = {x};
    bg_status s = bg_node_init(ctx, &n, op, p, in, 1, false);
    if (!s) s = bg_node_forward(ctx, &n);
    bg_node_release(ctx, &n);
    return s;
}

BG_TEST(pool_avgpool_ceil_sizes)
{
    /* Output sizes as torch.nn.AvgPool2d / MaxPool2d give them:
     * floor_or_ceil((in + 2p - k) / s) + 1, minus one in ceil mode when the
     * last window would start in the right padding. */
    struct { int in, k, s, p, ceil, want; } c[] = {
        {7, 2, 2, 0, 1, 4}, {7, 2, 2, 0, 0, 3}, {8, 2, 2, 0, 1, 4}, {5, 2, 2, 0, 1, 3},
        {5, 3, 3, 1, 1, 2}, /* ceil gives 3 windows but the third would start at 6 >= 5 + 1 */
        {6, 3, 2, 1, 1, 4}, {6, 3, 2, 1, 0, 3}, {4, 2, 3, 1, 1, 2}, {1, 2, 2, 1, 1, 1},
        {56, 3, 2, 1, 0, 28}, {56, 3, 2, 1, 1, 29}, {112, 3, 2, 1, 0, 56},
    };
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        /* H carries the case, W a fixed 4 with kernel 1: checks the axes separately */
        bg_tensor *x = new4(&ctx, BG_F32, 1, c[i].in, 4, 1, "x");
        bg_pool_params p = {{c[i].k, 1}, {c[i].s, 1}, {c[i].p, 0}, c[i].ceil, 0};
        for (int m = 0; m < 2; m++) {
            bg_node n;
            bg_tensor *in[1] = {x};
            const bg_op *op = m ? &bg_op_maxpool2d : &bg_op_avgpool2d;
            CHECK_OK(&ctx, bg_node_init(&ctx, &n, op, &p, in, 1, false));
            if (ctx.status != BG_OK) { bg_clear_error(&ctx); continue; }
            CHECK(n.out[0]->shape[1] == c[i].want && n.out[0]->shape[2] == 4,
                  "%s in=%d k=%d s=%d p=%d ceil=%d: got %lldx%lld, want %dx4", op->name, c[i].in, c[i].k, c[i].s,
                  c[i].p, c[i].ceil, (long long)n.out[0]->shape[1], (long long)n.out[0]->shape[2], c[i].want);
            CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
            bg_node_release(&ctx, &n);
        }
        bg_tensor_free(&ctx, x);
    }
    bg_ctx_free(&ctx);
}

/* Forward avgpool2d on x and compare every output with want[]. */
static void check_avg(bg_t *tc, bg_ctx *ctx, bg_tensor *x, bg_pool_params p, int ho, const double *want, const char *what)
{
    bg_node n;
    bg_tensor *in[1] = {x};
    CHECK_OK(ctx, bg_node_init(ctx, &n, &bg_op_avgpool2d, &p, in, 1, false));
    if (ctx->status != BG_OK) { bg_clear_error(ctx); return; }
    CHECK(n.out[0]->shape[1] == ho && n.out[0]->shape[2] == ho, "%s: output %lldx%lld, want %dx%d", what,
          (long long)n.out[0]->shape[1], (long long)n.out[0]->shape[2], ho, ho);
    CHECK_OK(ctx, bg_node_forward(ctx, &n));
    for (int i = 0; i < ho * ho && n.out[0]->shape[1] == ho; i++) CHECK_NEAR(bg_get(n.out[0], i), want[i], 1e-12, what);
    bg_node_release(ctx, &n);
}

BG_TEST(pool_avgpool_divisors)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_tensor *x3 = new4(&ctx, BG_F64, 1, 3, 3, 1, "x3"), *x4 = new4(&ctx, BG_F64, 1, 4, 4, 1, "x4");
    for (int i = 0; i < 9; i++) bg_set(x3, i, i + 1);
    for (int i = 0; i < 16; i++) bg_set(x4, i, i + 1);
    /* x3 = 1..9. kernel 2 stride 2 ceil: the right/bottom windows hang over
     * the edge; the overhang is never counted, padding or not. */
    const double ceil2[4] = {12.0 / 4, 9.0 / 2, 15.0 / 2, 9.0 / 1};
    check_avg(tc, &ctx, x3, pool_params(2, 2, 0, 1, 0), 2, ceil2, "k2 s2 ceil exclude-pad");
    check_avg(tc, &ctx, x3, pool_params(2, 2, 0, 1, 1), 2, ceil2, "k2 s2 ceil include-pad");
    /* kernel 3 stride 2 pad 1: every window has 4 real elements */
    const double inc[4] = {12.0 / 9, 16.0 / 9, 24.0 / 9, 28.0 / 9}, exc[4] = {12.0 / 4, 16.0 / 4, 24.0 / 4, 28.0 / 4};
    check_avg(tc, &ctx, x3, pool_params(3, 2, 1, 0, 1), 2, inc, "k3 s2 p1 include-pad");
    check_avg(tc, &ctx, x3, pool_params(3, 2, 1, 0, 0), 2, exc, "k3 s2 p1 exclude-pad");
    /* x4 = 1..16, kernel 3 stride 2 pad 1 ceil: 3x3 outputs; the last window
     * spans rows 3..5, clipped to the padded input it is rows 3..4, so with
     * padding counted the corner divides x(3,3) = 16 by 2*2. */
    const double ceil_inc[9] = {14.0 / 9, 30.0 / 9, 12.0 / 6, 57.0 / 9, 99.0 / 9, 36.0 / 6, 27.0 / 6, 45.0 / 6, 16.0 / 4};
    check_avg(tc, &ctx, x4, pool_params(3, 2, 1, 1, 1), 3, ceil_inc, "k3 s2 p1 ceil include-pad");
    const double ceil_exc[9] = {14.0 / 4, 30.0 / 6, 12.0 / 2, 57.0 / 6, 99.0 / 9, 36.0 / 3, 27.0 / 2, 45.0 / 3, 16.0};
    check_avg(tc, &ctx, x4, pool_params(3, 2, 1, 1, 0), 3, ceil_exc, "k3 s2 p1 ceil exclude-pad");
    bg_tensor_free(&ctx, x3);
    bg_tensor_free(&ctx, x4);
    bg_ctx_free(&ctx);
}

BG_TEST(pool_maxpool_argmax_routes_gradient)
{
    /* 4x4 input, kernel 3 stride 2 pad 1 -> 2x2. With x = 1..16 the maxima
     * are the windows' bottom-right elements; with x = 0 everywhere (all
     * ties) PyTorch keeps the first element of each window in row-major
     * order, and the gradient goes there. */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_tensor *x = new4(&ctx, BG_F32, 1, 4, 4, 1, "x");
    bg_pool_params p = pool_params(3, 2, 1, 0, 1);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 16; i++) bg_set(x, i, pass ? 0 : i + 1);
        bg_node n;
        bg_tensor *in[1] = {x};
        CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_maxpool2d, &p, in, 1, false));
        if (ctx.status != BG_OK) break;
        CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
        CHECK_OK(&ctx, bg_tensor_ensure_grad(&ctx, x));
        CHECK_OK(&ctx, bg_tensor_zero(&ctx, x->grad));
        CHECK_OK(&ctx, bg_tensor_ensure_grad(&ctx, n.out[0]));
        for (int i = 0; i < 4; i++) bg_set(n.out[0]->grad, i, 10 * (i + 1));
        CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
        const double want_y[2][4] = {{6, 8, 14, 16}, {0, 0, 0, 0}};
        const int want_at[2][4] = {{5, 7, 13, 15}, {0, 1, 4, 5}};
        double want_dx[16] = {0};
        for (int i = 0; i < 4; i++) want_dx[want_at[pass][i]] += 10 * (i + 1);
        for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(n.out[0], i), want_y[pass][i], 0, pass ? "ties: y" : "y");
        for (int i = 0; i < 16; i++) CHECK_NEAR(bg_get(x->grad, i), want_dx[i], 0, pass ? "ties: dx" : "dx");
        bg_node_release(&ctx, &n);
    }
    bg_tensor_free(&ctx, x);
    bg_ctx_free(&ctx);
}

BG_TEST(pool_global_avgpool_hand_computed)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, false);
    int64_t s[4] = {2, 2, 2, 2};
    bg_tensor *x = bg_graph_tensor(g, BG_F32, 4, s, "x");
    for (int i = 0; i < 16; i++) bg_set(x, i, i); /* image b, pixel p, channel c = 8b + 2p + c */
    bg_tensor *y = bg_global_avgpool(g, x);
    CHECK(y != NULL, "global_avgpool: %s", bg_errmsg(&ctx));
    if (y) {
        CHECK(y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 1 && y->shape[2] == 1 && y->shape[3] == 2, "shape");
        const double want[4] = {3, 4, 11, 12};
        for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(y, i), want[i], 1e-6, "mean");
    }
    bg_graph_free(g);
    bg_ctx_free(&ctx);
}

BG_TEST(pool_bad_input)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s3[3] = {5, 5, 3};
    bg_tensor *flat = bg_tensor_new(&ctx, BG_CPU, BG_F32, 3, s3, "flat");
    bg_tensor *x = new4(&ctx, BG_F32, 1, 5, 5, 3, "img");
    bg_tensor *xh = new4(&ctx, BG_F16, 1, 5, 5, 3, "half");
    bg_pool_params ok = pool_params(3, 2, 1, 0, 1);
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_avgpool2d, &ok, flat), BG_ERR_SHAPE, "'flat' must be 4-D");
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_maxpool2d, &ok, flat), BG_ERR_SHAPE, "'flat' must be 4-D");
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_global_avgpool, NULL, flat), BG_ERR_SHAPE, "'flat' must be 4-D");
    bg_pool_params pad = pool_params(3, 2, 2, 0, 1);
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_maxpool2d, &pad, x), BG_ERR_ARG, "at most half of kernel");
    bg_pool_params big = pool_params(7, 1, 0, 0, 1);
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_avgpool2d, &big, x), BG_ERR_SHAPE, "larger than input 'img'");
    bg_pool_params zero = pool_params(0, 1, 0, 0, 1);
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_avgpool2d, &zero, x), BG_ERR_ARG, "kernel=0,0");
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_avgpool2d, &ok, xh), BG_ERR_DTYPE, "'half' is f16");
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_maxpool2d, &ok, xh), BG_ERR_DTYPE, "'half' is f16");
    CHECK_ERR(&ctx, try_pool(&ctx, &bg_op_global_avgpool, NULL, xh), BG_ERR_DTYPE, "'half' is f16");
    bg_tensor_free(&ctx, flat);
    bg_tensor_free(&ctx, x);
    bg_tensor_free(&ctx, xh);
    bg_ctx_free(&ctx);
}
