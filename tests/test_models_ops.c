/* split_sum, the op the model zoo added for ResNeSt's split attention: op
 * cases (finite-difference gradients in double, f32 against f64, and CUDA
 * against the CPU in the GPU suite; run them with TEST_ARGS=split_sum), a
 * hand-computed value, and its errors. */
#include <string.h>
#include "harness.h"
#include "../ops/ops.h"

static const bg_op_case split_sum_cases[] = {
    {.op = "split_sum", .params = "radix=2", .n_in = 1, .ndim = {4}, .shape = {{2, 3, 3, 8}}},
    {.op = "split_sum", .params = "radix=4", .n_in = 1, .ndim = {4}, .shape = {{2, 1, 1, 12}}},
    {.op = "split_sum", .params = "radix=3", .n_in = 1, .ndim = {2}, .shape = {{3, 12}}},
    {.op = "split_sum", .params = "radix=1", .n_in = 1, .ndim = {4}, .shape = {{2, 2, 2, 5}}},
    {.op = "split_sum", .params = "radix=2", .n_in = 1, .ndim = {3}, .shape = {{2, 5, 6}}},
    /* large enough for the OpenMP path and many CUDA blocks */
    {.op = "split_sum", .params = "radix=2", .n_in = 1, .ndim = {4}, .shape = {{4, 16, 16, 64}}, .no_gradcheck = true},
};
BG_OP_CASES(split_sum_cases)

BG_TEST(model_op_split_sum_values)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, true);
    int64_t xs[4] = {1, 1, 2, 6};
    bg_tensor *x = bg_graph_tensor(g, BG_F32, 4, xs, "x");
    x->requires_grad = true;
    for (int i = 0; i < 12; i++) bg_set(x, i, i + 1); /* pixel 0: 1..6, pixel 1: 7..12 */
    bg_tensor *y = bg_split_sum(g, x, 3);             /* splits of 2 channels */
    CHECK(y && y->ndim == 4 && y->shape[3] == 2, "output {1,1,2,2}");
    const double want[4] = {1 + 3 + 5, 2 + 4 + 6, 7 + 9 + 11, 8 + 10 + 12};
    for (int i = 0; y && i < 4; i++) CHECK(bg_get(y, i) == want[i], "y[%d] = %g, want %g", i, bg_get(y, i), want[i]);
    bg_graph_free(g);

    /* backward, on a standalone node: every split receives dy, added to what is there */
    bg_tensor *xn = bg_tensor_new(&ctx, BG_CPU, BG_F64, 4, xs, "x");
    for (int i = 0; i < 12; i++) bg_set(xn, i, i);
    bg_node n;
    bg_split_sum_params p = {.radix = 3};
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_split_sum, &p, &xn, 1, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    CHECK_OK(&ctx, bg_tensor_ensure_grad(&ctx, n.out[0]));
    CHECK_OK(&ctx, bg_tensor_ensure_grad(&ctx, xn));
    for (int i = 0; i < 4; i++) bg_set(n.out[0]->grad, i, 10 * (i + 1));
    bg_set(xn->grad, 0, 0.5);
    CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
    for (int i = 0; i < 12; i++) {
        int pix = i / 6, k = i % 2;
        double want = 10.0 * (pix * 2 + k + 1) + (i == 0 ? 0.5 : 0);
        CHECK(bg_get(xn->grad, i) == want, "dx[%d] = %g, want %g", i, bg_get(xn->grad, i), want);
    }
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, xn);

    /* errors name the tensor and the radix */
    g = bg_graph_new(&ctx, BG_CPU, true);
    int64_t bs[4] = {1, 2, 2, 10};
    bg_tensor *b = bg_graph_tensor(g, BG_F32, 4, bs, "splat");
    bg_clear_error(&ctx);
    CHECK(bg_split_sum(g, b, 4) == NULL && strstr(bg_errmsg(&ctx), "radix 4 does not divide the 10 channels of x 'splat'"),
          "radix 4 on 10 channels: %s", bg_errmsg(&ctx));
    bg_clear_error(&ctx);
    CHECK(bg_split_sum(g, b, 0) == NULL && strstr(bg_errmsg(&ctx), "radix 0"), "radix 0: %s", bg_errmsg(&ctx));
    bg_graph_free(g);
    bg_ctx_free(&ctx);
}
