/* The tape: gradients through fan-out (a tensor used several times, a shared
 * parameter), replay with new input bytes, eval mode, error chaining. */
#include <string.h>
#include "harness.h"
#include "../engine/init.h"
#include "../ops/ops.h"

typedef struct {
    bg_tensor *w1, *b1, *w2;
    bg_tensor *x, *y;
} tiny_net;

static bg_status fill_n(bg_ctx *ctx, bg_tensor *t, void *arg) { return bg_tensor_fill_normal(ctx, t, 0, 0.5); }

static bg_tensor *param64(bg_ctx *ctx, int nd, const int64_t *sh, const char *name)
{
    bg_tensor *t = bg_tensor_new(ctx, BG_CPU, BG_F64, nd, sh, name);
    if (t) {
        fill_n(ctx, t, NULL);
        t->is_param = t->requires_grad = true;
    }
    return t;
}

/* loss = xent(linear(o, w2, b1'), y), o = h*h + h, h = relu(linear(x, w1, b1));
 * h feeds three uses; w1 is shared by two linears via a second branch. */
static bg_tensor *build(bg_graph *g, tiny_net *n)
{
    bg_tensor *h = bg_relu(g, bg_linear(g, n->x, n->w1, n->b1));
    bg_tensor *o = bg_add(g, bg_mul(g, h, h), h);
    bg_tensor *o2 = bg_linear(g, o, n->w1, NULL); /* w1 is square: reused */
    bg_tensor *logits = bg_linear(g, o2, n->w2, NULL);
    return bg_softmax_xent(g, logits, n->y, 0.1f);
}

static double loss_value(bg_tensor *l) { return bg_get(l, 0); }

BG_TEST(graph_backward_matches_finite_differences_with_fanout)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 3);
    int64_t xs[2] = {4, 5}, ws[2] = {5, 5}, bs[1] = {5}, w2s[2] = {3, 5}, ys[1] = {4};
    tiny_net n = {param64(&ctx, 2, ws, "w1"), param64(&ctx, 1, bs, "b1"), param64(&ctx, 2, w2s, "w2"), NULL, NULL};
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, true);
    n.x = bg_graph_tensor(g, BG_F64, 2, xs, "x");
    n.y = bg_graph_tensor(g, BG_I32, 1, ys, "y");
    bg_tensor_fill_normal(&ctx, n.x, 0, 1);
    for (int i = 0; i < 4; i++) bg_set(n.y, i, i % 3);
    bg_tensor *loss = build(g, &n);
    CHECK(loss != NULL, "build: %s", bg_errmsg(&ctx));
    if (!loss) goto out;
    bg_tensor *params[8];
    CHECK(bg_graph_params(g, params, 8) == 3, "shared w1 must be listed once");
    CHECK_OK(&ctx, bg_graph_backward(g, loss));
    bg_tensor *ps[3] = {n.w1, n.b1, n.w2};
    for (int p = 0; p < 3; p++) {
        double worst = 0, ref = 0;
        for (int64_t i = 0; i < bg_numel(ps[p]); i++) {
            double v = bg_get(ps[p], i), h = 1e-6;
            bg_set(ps[p], i, v + h);
            bg_graph_forward(g);
            double lp = loss_value(loss);
            bg_set(ps[p], i, v - h);
            bg_graph_forward(g);
            double lm = loss_value(loss);
            bg_set(ps[p], i, v);
            double num = (lp - lm) / (2 * h), ana = bg_get(ps[p]->grad, i);
            worst = fmax(worst, fabs(num - ana));
            ref = fmax(ref, fabs(num));
        }
        CHECK(worst / fmax(ref, 1e-3) < 1e-6, "%s: max error %.3g (scale %.3g)", ps[p]->name, worst, ref);
    }
    /* a second backward starts from zeroed grads: same result */
    bg_graph_forward(g);
    double g0 = bg_get(n.w1->grad, 7);
    CHECK_OK(&ctx, bg_graph_backward(g, loss));
    CHECK(bg_get(n.w1->grad, 7) == g0, "gradients accumulated across backward calls");
out:
    bg_graph_free(g);
    for (int p = 0; p < 3; p++) bg_tensor_free(&ctx, (bg_tensor *[]){n.w1, n.b1, n.w2}[p]);
}

BG_TEST(graph_replay_equals_fresh_recording)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 4);
    int64_t xs[2] = {4, 5}, ws[2] = {5, 5}, bs[1] = {5}, w2s[2] = {3, 5}, ys[1] = {4};
    tiny_net n = {param64(&ctx, 2, ws, "w1"), param64(&ctx, 1, bs, "b1"), param64(&ctx, 2, w2s, "w2"), NULL, NULL};
    bg_tensor *xa = bg_tensor_new(&ctx, BG_CPU, BG_F64, 2, xs, "xa"), *xb = bg_tensor_new(&ctx, BG_CPU, BG_F64, 2, xs, "xb");
    bg_tensor_fill_normal(&ctx, xa, 0, 1);
    bg_tensor_fill_normal(&ctx, xb, 0, 1);
    double loss_replay = 0, grad_replay = 0, loss_fresh = 0, grad_fresh = 0;
    for (int pass = 0; pass < 2; pass++) {
        bg_graph *g = bg_graph_new(&ctx, BG_CPU, true);
        n.x = bg_graph_tensor(g, BG_F64, 2, xs, "x");
        n.y = bg_graph_tensor(g, BG_I32, 1, ys, "y");
        for (int i = 0; i < 4; i++) bg_set(n.y, i, (i + 1) % 3);
        bg_tensor_copy(&ctx, n.x, pass == 0 ? xa : xb);
        bg_tensor *loss = build(g, &n);
        if (pass == 0) { /* record on xa, then replay on xb */
            bg_tensor_copy(&ctx, n.x, xb);
            CHECK_OK(&ctx, bg_graph_forward(g));
            CHECK_OK(&ctx, bg_graph_backward(g, loss));
            loss_replay = loss_value(loss), grad_replay = bg_get(n.w1->grad, 3);
        } else {
            CHECK_OK(&ctx, bg_graph_backward(g, loss));
            loss_fresh = loss_value(loss), grad_fresh = bg_get(n.w1->grad, 3);
        }
        bg_graph_free(g);
    }
    CHECK(loss_replay == loss_fresh && grad_replay == grad_fresh, "replay %.17g/%.17g vs fresh %.17g/%.17g",
          loss_replay, grad_replay, loss_fresh, grad_fresh);
    bg_tensor_free(&ctx, xa), bg_tensor_free(&ctx, xb);
    bg_tensor_free(&ctx, n.w1), bg_tensor_free(&ctx, n.b1), bg_tensor_free(&ctx, n.w2);
}

BG_TEST(graph_eval_mode_and_error_chaining)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 5);
    int64_t xs[2] = {2, 3}, ws[2] = {4, 5}, ys[1] = {2};
    bg_tensor *w = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, ws, "fc.weight");
    bg_tensor_fill_normal(&ctx, w, 0, 1);
    w->is_param = w->requires_grad = true;
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, false);
    bg_tensor *x = bg_graph_tensor(g, BG_F32, 2, xs, "x");
    bg_tensor *y = bg_graph_tensor(g, BG_I32, 1, ys, "y");
    bg_tensor_fill_normal(&ctx, x, 0, 1);
    memset(y->data, 0, bg_nbytes(y));
    /* x has 3 features, the weight expects 5: the first op fails naming both,
     * the chained calls return NULL and keep that first message */
    bg_tensor *loss = bg_softmax_xent(g, bg_relu(g, bg_linear(g, x, w, NULL)), y, 0);
    CHECK(loss == NULL && ctx.status == BG_ERR_SHAPE, "mismatch must fail with a shape error: %s", bg_errmsg(&ctx));
    CHECK(strstr(ctx.err, "fc.weight") != NULL, "message names the weight: %s", ctx.err);
    CHECK(g->n_nodes == 0, "a failed op must not be recorded (%d nodes)", g->n_nodes);
    /* eval graphs record no gradients: backward is refused clearly */
    int64_t w2s[2] = {4, 3};
    bg_tensor *w2 = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, w2s, "w2");
    bg_tensor_fill_normal(&ctx, w2, 0, 1);
    w2->is_param = w2->requires_grad = true;
    loss = bg_softmax_xent(g, bg_linear(g, x, w2, NULL), y, 0);
    CHECK(loss != NULL, "eval forward: %s", bg_errmsg(&ctx));
    CHECK_ERR(&ctx, bg_graph_backward(g, loss), BG_ERR_ARG, "without gradients");
    CHECK(w2->grad == NULL, "eval mode allocated a gradient");
    bg_graph_free(g);
    bg_tensor_free(&ctx, w), bg_tensor_free(&ctx, w2);
}
