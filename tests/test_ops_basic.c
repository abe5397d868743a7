/* The basic ops: batchnorm2d, relu, sigmoid, add, mul, flatten, reshape,
 * concat, softmax_xent, radix_softmax. The op cases give each a gradient
 * check and an f32-vs-f64 check (and CUDA parity where the op has kernels);
 * the tests below pin hand-computed values and the error messages. */
#include <string.h>
#include "harness.h"
#include "../ops/ops.h"

/* ---- op cases ----------------------------------------------------------------- */

#define N_ BG_INIT_NORMAL
#define P_ BG_INIT_POSITIVE
#define L_ BG_INIT_LABELS

static const bg_op_case basic_cases[] = {
    /* batchnorm2d: x, gamma, beta, running_mean, running_var (variances positive) */
    {.op = "batchnorm2d", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{2, 3, 3, 3}, {3}, {3}, {3}, {3}}, .init = {N_, P_, N_, N_, P_}, .train = true},
    {.op = "batchnorm2d", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{3, 2, 2, 5}, {5}, {5}, {5}, {5}}, .init = {N_, P_, N_, N_, P_}, .train = true},
    {.op = "batchnorm2d", .params = "momentum=0.3 eps=0.001", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{4, 1, 1, 5}, {5}, {5}, {5}, {5}}, .init = {N_, P_, N_, N_, P_}, .train = true},
    {.op = "batchnorm2d", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{2, 3, 3, 3}, {3}, {3}, {3}, {3}}, .init = {N_, P_, N_, N_, P_}, .train = false},
    {.op = "batchnorm2d", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{1, 2, 3, 5}, {5}, {5}, {5}, {5}}, .init = {N_, P_, N_, N_, P_}, .train = false},

    {.op = "relu", .n_in = 1, .ndim = {4}, .shape = {{2, 3, 4, 5}}},
    {.op = "relu", .n_in = 1, .ndim = {2}, .shape = {{3, 7}}},
    {.op = "sigmoid", .n_in = 1, .ndim = {4}, .shape = {{2, 3, 4, 5}}},
    {.op = "sigmoid", .n_in = 1, .ndim = {1}, .shape = {{11}}},

    /* add / mul: a, b with b broadcasting */
    {.op = "add", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 4}, {2, 3, 3, 4}}},
    {.op = "add", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 4}, {2, 1, 1, 4}}},
    {.op = "add", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 5}, {1, 1, 1, 5}}},
    {.op = "add", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 4, 3}, {1, 3, 1, 1}}},
    {.op = "add", .n_in = 2, .ndim = {2, 2}, .shape = {{3, 4}, {1, 4}}},
    {.op = "mul", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 4}, {2, 3, 3, 4}}},
    {.op = "mul", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 4}, {2, 1, 1, 4}}},
    {.op = "mul", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 5}, {1, 1, 1, 5}}},
    {.op = "mul", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 4, 3}, {2, 1, 4, 1}}},
    {.op = "mul", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 4}, {1, 1, 1, 1}}},

    /* shape ops */
    {.op = "concat", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 2}, {2, 3, 3, 4}}},
    {.op = "concat", .n_in = 3, .ndim = {4, 4, 4}, .shape = {{2, 2, 2, 1}, {2, 2, 2, 3}, {2, 2, 2, 2}}},
    {.op = "concat", .n_in = 2, .ndim = {2, 2}, .shape = {{3, 2}, {3, 5}}},
    {.op = "flatten", .n_in = 1, .ndim = {4}, .shape = {{2, 3, 3, 4}}},
    {.op = "flatten", .params = "start_dim=2", .n_in = 1, .ndim = {4}, .shape = {{2, 3, 3, 4}}},
    {.op = "reshape", .params = "shape=4,-1", .n_in = 1, .ndim = {4}, .shape = {{2, 3, 4, 2}}},
    {.op = "reshape", .params = "shape=2,-1,4", .n_in = 1, .ndim = {2}, .shape = {{4, 12}}},

    /* softmax_xent: logits {N,K}, labels {N} in [0, K) */
    {.op = "softmax_xent", .n_in = 2, .ndim = {2, 1}, .shape = {{5, 4}, {5}}, .init = {N_, L_}, .label_range = 4},
    {.op = "softmax_xent", .params = "label_smoothing=0.1", .n_in = 2, .ndim = {2, 1}, .shape = {{6, 7}, {6}},
     .init = {N_, L_}, .label_range = 7},

    /* radix_softmax in the {N,C} and {N,1,1,C} forms */
    {.op = "radix_softmax", .params = "radix=2 cardinality=1", .n_in = 1, .ndim = {2}, .shape = {{3, 8}}},
    {.op = "radix_softmax", .params = "radix=2 cardinality=1", .n_in = 1, .ndim = {4}, .shape = {{3, 1, 1, 8}}},
    {.op = "radix_softmax", .params = "radix=2 cardinality=2", .n_in = 1, .ndim = {2}, .shape = {{3, 12}}},
    {.op = "radix_softmax", .params = "radix=2 cardinality=2", .n_in = 1, .ndim = {4}, .shape = {{3, 1, 1, 12}}},
    {.op = "radix_softmax", .params = "radix=4 cardinality=1", .n_in = 1, .ndim = {2}, .shape = {{2, 8}}},
    {.op = "radix_softmax", .params = "radix=4 cardinality=1", .n_in = 1, .ndim = {4}, .shape = {{2, 1, 1, 8}}},
    {.op = "radix_softmax", .params = "radix=1 cardinality=4", .n_in = 1, .ndim = {2}, .shape = {{2, 8}}},
    {.op = "radix_softmax", .params = "radix=1 cardinality=4", .n_in = 1, .ndim = {4}, .shape = {{2, 1, 1, 8}}},

    /* Large enough (>= 32768 elements) to take the OpenMP paths on the CPU
     * and several blocks / grid-stride loops / long reductions on the GPU.
     * A finite-difference check at this size would take minutes: f32-vs-f64
     * and the backend parity checks only. */
    {.op = "batchnorm2d", .n_in = 5, .ndim = {4, 1, 1, 1, 1}, .shape = {{8, 16, 16, 32}, {32}, {32}, {32}, {32}},
     .init = {N_, P_, N_, N_, P_}, .train = true, .no_gradcheck = true},
    {.op = "relu", .n_in = 1, .ndim = {4}, .shape = {{8, 16, 16, 32}}, .no_gradcheck = true},
    {.op = "sigmoid", .n_in = 1, .ndim = {4}, .shape = {{8, 16, 16, 32}}, .no_gradcheck = true},
    {.op = "add", .n_in = 2, .ndim = {4, 4}, .shape = {{8, 16, 16, 32}, {8, 1, 1, 32}}, .no_gradcheck = true},
    {.op = "add", .n_in = 2, .ndim = {4, 4}, .shape = {{8, 16, 16, 32}, {8, 16, 16, 32}}, .no_gradcheck = true},
    {.op = "mul", .n_in = 2, .ndim = {4, 4}, .shape = {{8, 16, 16, 32}, {1, 1, 1, 32}}, .no_gradcheck = true},
    {.op = "mul", .n_in = 2, .ndim = {4, 4}, .shape = {{8, 16, 16, 32}, {8, 1, 1, 32}}, .no_gradcheck = true},
    {.op = "concat", .n_in = 2, .ndim = {4, 4}, .shape = {{8, 16, 16, 16}, {8, 16, 16, 24}}, .no_gradcheck = true},
    {.op = "softmax_xent", .params = "label_smoothing=0.1", .n_in = 2, .ndim = {2, 1}, .shape = {{1024, 40}, {1024}},
     .init = {N_, L_}, .label_range = 40, .no_gradcheck = true},
    {.op = "radix_softmax", .params = "radix=2 cardinality=2", .n_in = 1, .ndim = {4}, .shape = {{2048, 1, 1, 32}},
     .no_gradcheck = true},
    {.op = "radix_softmax", .params = "radix=1 cardinality=1", .n_in = 1, .ndim = {2}, .shape = {{2048, 32}},
     .no_gradcheck = true},
};
BG_OP_CASES(basic_cases)

/* ---- helpers -------------------------------------------------------------------- */

/* A CPU tensor of dtype dt holding v[0..numel) (NULL: uninitialised). */
static bg_tensor *tensor_of(bg_ctx *ctx, bg_dtype dt, int ndim, const int64_t *shape, const double *v,
                            const char *name)
{
    bg_tensor *x = bg_tensor_new(ctx, BG_CPU, dt, ndim, shape, name);
    if (x && v)
        for (int64_t i = 0; i < bg_numel(x); i++) bg_set(x, i, v[i]);
    return x;
}

/* Which inputs get a gradient, one flag per input slot (unlisted: none). */
#define WANT(...) ((const bool[BG_MAX_IN]){__VA_ARGS__})

/* Set the node's output grad to all ones and ensure the grads of inputs `want`. */
static bg_status prepare_backward(bg_ctx *ctx, bg_node *n, const bool *want)
{
    bg_status s = bg_tensor_ensure_grad(ctx, n->out[0]);
    if (s) return s;
    for (int64_t i = 0; i < bg_numel(n->out[0]); i++) bg_set(n->out[0]->grad, i, 1.0);
    for (int i = 0; i < n->n_in; i++)
        if (want[i] && n->in[i] && (s = bg_tensor_ensure_grad(ctx, n->in[i]))) return s;
    return BG_OK;
}

/* ---- softmax_xent ----------------------------------------------------------------- */

BG_TEST(softmax_xent_known_value)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    /* row 0: logits (0, ln 3) -> p = (1/4, 3/4), label 1; row 1: (2, 2) -> (1/2, 1/2), label 0 */
    int64_t sx[2] = {2, 2}, sl[1] = {2};
    double xv[4] = {0, log(3.0), 2, 2}, lv[2] = {1, 0};
    for (int smooth = 0; smooth < 2; smooth++) {
        float ls = smooth ? 0.1f : 0.0f;
        double e = ls; /* the float the op sees */
        bg_graph *g = bg_graph_new(&ctx, BG_CPU, true);
        bg_tensor *x = bg_graph_tensor(g, BG_F64, 2, sx, "logits");
        bg_tensor *lab = bg_graph_tensor(g, BG_I32, 1, sl, "labels");
        for (int i = 0; i < 4; i++) bg_set(x, i, xv[i]);
        for (int i = 0; i < 2; i++) bg_set(lab, i, lv[i]);
        x->requires_grad = true;
        bg_tensor *loss = bg_softmax_xent(g, x, lab, ls);
        CHECK(loss != NULL, "softmax_xent: %s", bg_errmsg(&ctx));
        if (loss) {
            /* target = (1-e) onehot + e/2; loss_i = -sum_k target_k log p_k */
            double l0 = -((e / 2) * log(0.25) + (1 - e + e / 2) * log(0.75));
            double l1 = log(2.0); /* uniform p: every target gives ln 2 */
            CHECK_NEAR(bg_get(loss, 0), (l0 + l1) / 2, 1e-12, smooth ? "smoothed loss" : "loss");
            CHECK_OK(&ctx, bg_graph_backward(g, loss));
            /* dx = (p - target) / N */
            double want[4] = {(0.25 - e / 2) / 2, (0.75 - (1 - e / 2)) / 2, (0.5 - (1 - e / 2)) / 2, (0.5 - e / 2) / 2};
            for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(x->grad, i), want[i], 1e-12, "dlogits");
        }
        bg_graph_free(g);
    }
    bg_ctx_free(&ctx);
}

BG_TEST(softmax_xent_large_logits_are_stable)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t sx[2] = {1, 3}, sl[1] = {1};
    double xv[3] = {1000, 1000, -1000}, lv[1] = {0};
    bg_tensor *x = tensor_of(&ctx, BG_F32, 2, sx, xv, "logits");
    bg_tensor *lab = tensor_of(&ctx, BG_I32, 1, sl, lv, "labels");
    bg_tensor *in[2] = {x, lab};
    bg_xent_params p = {0};
    bg_node n;
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_softmax_xent, &p, in, 2, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    CHECK_NEAR(bg_get(n.out[0], 0), log(2.0), 1e-6, "loss of (1000, 1000, -1000)");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, x);
    bg_tensor_free(&ctx, lab);
    bg_ctx_free(&ctx);
}

BG_TEST(softmax_xent_bad_inputs)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t sx[2] = {2, 4}, sl[1] = {2}, sl3[1] = {3};
    bg_tensor *x = tensor_of(&ctx, BG_F32, 2, sx, NULL, "logits");
    bg_tensor *lab = tensor_of(&ctx, BG_I32, 1, sl, (double[]){0, 5}, "labels");
    bg_tensor *neg = tensor_of(&ctx, BG_I32, 1, sl, (double[]){-1, 0}, "labels_neg");
    bg_tensor *labf = tensor_of(&ctx, BG_F32, 1, sl, (double[]){0, 1}, "labels_f32");
    bg_tensor *lab3 = tensor_of(&ctx, BG_I32, 1, sl3, (double[]){0, 1, 2}, "labels3");
    bg_tensor_fill_normal(&ctx, x, 0, 1);
    bg_xent_params p = {0};
    bg_node n;

    /* out of range: the forward names the index and the value */
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_softmax_xent, &p, (bg_tensor *[]){x, lab}, 2, true));
    CHECK_ERR(&ctx, bg_node_forward(&ctx, &n), BG_ERR_ARG, "labels 'labels'[1] = 5 is outside [0, 4)");
    bg_node_release(&ctx, &n);
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_softmax_xent, &p, (bg_tensor *[]){x, neg}, 2, true));
    CHECK_ERR(&ctx, bg_node_forward(&ctx, &n), BG_ERR_ARG, "'labels_neg'[0] = -1");
    bg_node_release(&ctx, &n);

    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_softmax_xent, &p, (bg_tensor *[]){x, labf}, 2, true),
              BG_ERR_DTYPE, "labels 'labels_f32' must be i32, got f32");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_softmax_xent, &p, (bg_tensor *[]){x, lab3}, 2, true),
              BG_ERR_SHAPE, "labels 'labels3' [3] i32 cpu do not match the batch of logits 'logits' [2, 4]");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_softmax_xent, &p, (bg_tensor *[]){lab3, lab3}, 2, true),
              BG_ERR_DTYPE, "must be a float tensor");
    bg_xent_params bad = {.label_smoothing = 1.5f};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_softmax_xent, &bad, (bg_tensor *[]){x, lab}, 2, true),
              BG_ERR_ARG, "label_smoothing 1.5");
    bg_tensor_free(&ctx, x);
    bg_tensor_free(&ctx, lab);
    bg_tensor_free(&ctx, neg);
    bg_tensor_free(&ctx, labf);
    bg_tensor_free(&ctx, lab3);
    bg_ctx_free(&ctx);
}

/* ---- batchnorm2d ----------------------------------------------------------------- */

BG_TEST(batchnorm2d_running_stats)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    /* x {2,1,1,2}: channel 0 sees (1, 3): mean 2, biased var 1, unbiased 2;
     * channel 1 sees (0, 4): mean 2, biased var 4, unbiased 8. */
    int64_t sx[4] = {2, 1, 1, 2}, sc[1] = {2};
    bg_tensor *x = tensor_of(&ctx, BG_F64, 4, sx, (double[]){1, 0, 3, 4}, "x");
    bg_tensor *gamma = tensor_of(&ctx, BG_F64, 1, sc, (double[]){1, 2}, "gamma");
    bg_tensor *beta = tensor_of(&ctx, BG_F64, 1, sc, (double[]){0, 0.5}, "beta");
    bg_tensor *rm = tensor_of(&ctx, BG_F64, 1, sc, (double[]){0, 0}, "running_mean");
    bg_tensor *rv = tensor_of(&ctx, BG_F64, 1, sc, (double[]){1, 1}, "running_var");
    bg_tensor *in[5] = {x, gamma, beta, rm, rv};
    bg_batchnorm_params p = {.momentum = 0.1f, .eps = 1e-5f};
    double m = p.momentum, eps = p.eps; /* the floats the op sees */
    bg_node n;
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_batchnorm2d, &p, in, 5, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    CHECK_NEAR(bg_get(rm, 0), m * 2, 1e-12, "running_mean[0]");
    CHECK_NEAR(bg_get(rm, 1), m * 2, 1e-12, "running_mean[1]");
    CHECK_NEAR(bg_get(rv, 0), (1 - m) * 1 + m * 2, 1e-12, "running_var[0] (unbiased 2)");
    CHECK_NEAR(bg_get(rv, 1), (1 - m) * 1 + m * 8, 1e-12, "running_var[1] (unbiased 8)");
    /* y normalised with the biased variance */
    double want[4] = {-1 / sqrt(1 + eps), -2 * 2 / sqrt(4 + eps) + 0.5, 1 / sqrt(1 + eps), 2 * 2 / sqrt(4 + eps) + 0.5};
    for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(n.out[0], i), want[i], 1e-12, "train y");
    CHECK_NEAR(bg_get(n.saved[0], 1), 2, 1e-12, "saved mean");
    CHECK_NEAR(bg_get(n.saved[1], 1), 1 / sqrt(4 + eps), 1e-12, "saved invstd");

    /* Eval: the running stats normalise and stay as they are. */
    n.train = false;
    double rm0 = bg_get(rm, 0), rv0 = bg_get(rv, 0);
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    CHECK_NEAR(bg_get(n.out[0], 0), (1 - rm0) / sqrt(rv0 + eps), 1e-12, "eval y[0]");
    CHECK(bg_get(rm, 0) == rm0 && bg_get(rv, 0) == rv0, "eval changed the running stats");

    /* Eval backward is the affine one: dx = gamma * invstd * dy. */
    CHECK_OK(&ctx, prepare_backward(&ctx, &n, WANT(true, true, true, false, false)));
    CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
    CHECK_NEAR(bg_get(x->grad, 1), 2 / sqrt(bg_get(rv, 1) + eps), 1e-12, "eval dx");
    CHECK_NEAR(bg_get(beta->grad, 0), 2, 1e-12, "dbeta = sum dy");
    CHECK(rm->grad == NULL && rv->grad == NULL, "running stats got gradients");

    /* Training backward with dy = 1 everywhere: dx = 0 (a shift of y), dgamma = sum xhat = 0. */
    n.train = true;
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    bg_tensor_zero(&ctx, x->grad);
    bg_tensor_zero(&ctx, gamma->grad);
    CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
    for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(x->grad, i), 0, 1e-12, "train dx for constant dy");
    CHECK_NEAR(bg_get(gamma->grad, 0), 0, 1e-12, "train dgamma for constant dy");

    bg_node_release(&ctx, &n);
    for (int i = 0; i < 5; i++) bg_tensor_free(&ctx, in[i]);
    bg_ctx_free(&ctx);
}

BG_TEST(batchnorm2d_bad_inputs)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t sx[4] = {2, 2, 2, 3}, s1[4] = {1, 1, 1, 3}, sc[1] = {3}, sc4[1] = {4};
    bg_tensor *x = tensor_of(&ctx, BG_F32, 4, sx, NULL, "x");
    bg_tensor *x1 = tensor_of(&ctx, BG_F32, 4, s1, NULL, "x1");
    bg_tensor *v = tensor_of(&ctx, BG_F32, 1, sc, (double[]){1, 1, 1}, "v");
    bg_tensor *v4 = tensor_of(&ctx, BG_F32, 1, sc4, (double[]){1, 1, 1, 1}, "gamma4");
    bg_tensor *v64 = tensor_of(&ctx, BG_F64, 1, sc, (double[]){1, 1, 1}, "beta64");
    bg_tensor_fill_normal(&ctx, x, 0, 1);
    bg_tensor_fill_normal(&ctx, x1, 0, 1);
    bg_batchnorm_params p = {.momentum = 0.1f, .eps = 1e-5f};
    bg_node n;
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_batchnorm2d, &p, (bg_tensor *[]){x, v4, v, v, v}, 5, true),
              BG_ERR_SHAPE, "gamma 'gamma4' [4] f32 cpu must be [3]");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_batchnorm2d, &p, (bg_tensor *[]){x, v, v64, v, v}, 5, true),
              BG_ERR_DTYPE, "beta 'beta64' is f64");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_batchnorm2d, &p, (bg_tensor *[]){v, v, v, v, v}, 5, true),
              BG_ERR_SHAPE, "x 'v' must have 4 dims");
    bg_batchnorm_params bad = {.momentum = 0.1f, .eps = 0};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_batchnorm2d, &bad, (bg_tensor *[]){x, v, v, v, v}, 5, true),
              BG_ERR_ARG, "eps 0 must be positive");
    /* one value per channel: no variance to estimate in training; eval is fine */
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_batchnorm2d, &p, (bg_tensor *[]){x1, v, v, v, v}, 5, true));
    CHECK_ERR(&ctx, bg_node_forward(&ctx, &n), BG_ERR_SHAPE, "more than one value per channel");
    n.train = false;
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    bg_node_release(&ctx, &n);
    bg_tensor *all[] = {x, x1, v, v4, v64};
    for (int i = 0; i < 5; i++) bg_tensor_free(&ctx, all[i]);
    bg_ctx_free(&ctx);
}

/* ---- radix_softmax ------------------------------------------------------------------ */

static void run_rsoftmax(bg_t *tc, bg_ctx *ctx, int radix, int card, const double *xv, const double *want, int c)
{
    int64_t sx[2] = {1, c};
    bg_tensor *x = tensor_of(ctx, BG_F64, 2, sx, xv, "x");
    bg_rsoftmax_params p = {.radix = radix, .cardinality = card};
    bg_node n;
    CHECK_OK(ctx, bg_node_init(ctx, &n, &bg_op_radix_softmax, &p, &x, 1, true));
    CHECK_OK(ctx, bg_node_forward(ctx, &n));
    char what[64];
    for (int i = 0; i < c; i++) {
        snprintf(what, sizeof what, "radix %d card %d y[%d]", radix, card, i);
        CHECK_NEAR(bg_get(n.out[0], i), want[i], 1e-12, what);
    }
    bg_node_release(ctx, &n);
    bg_tensor_free(ctx, x);
}

BG_TEST(radix_softmax_permutation_order)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    /* radix 2, card 2, rest 1: input channels are (k, r) = (0,0) (0,1) (1,0) (1,1);
     * the pair of group 0, (0, ln 3), gives (1/4, 3/4), that of group 1,
     * (ln 9, 0), gives (9/10, 1/10); output channels are (r, k) =
     * (0,0) (0,1) (1,0) (1,1). */
    run_rsoftmax(tc, &ctx, 2, 2, (double[]){0, log(3.0), log(9.0), 0}, (double[]){0.25, 0.9, 0.75, 0.1}, 4);
    /* radix 2, card 1, rest 2: softmax pairs channel j with j + 2, no move */
    run_rsoftmax(tc, &ctx, 2, 1, (double[]){0, log(9.0), log(3.0), 0}, (double[]){0.25, 0.9, 0.75, 0.1}, 4);
    /* radix 1: sigmoid */
    run_rsoftmax(tc, &ctx, 1, 2, (double[]){0, log(3.0)}, (double[]){0.5, 0.75}, 2);
    bg_ctx_free(&ctx);
}

BG_TEST(radix_softmax_bad_shapes)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s2[2] = {2, 8}, s4[4] = {2, 2, 1, 8};
    bg_tensor *x = tensor_of(&ctx, BG_F32, 2, s2, NULL, "x");
    bg_tensor *x4 = tensor_of(&ctx, BG_F32, 4, s4, NULL, "x4");
    bg_node n;
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_radix_softmax, &(bg_rsoftmax_params){3, 1}, &x, 1, true),
              BG_ERR_SHAPE, "radix 3 * cardinality 1 = 3 does not divide the 8 channels of x 'x'");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_radix_softmax, &(bg_rsoftmax_params){2, 3}, &x, 1, true),
              BG_ERR_SHAPE, "does not divide");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_radix_softmax, &(bg_rsoftmax_params){0, 1}, &x, 1, true),
              BG_ERR_ARG, "radix 0");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_radix_softmax, &(bg_rsoftmax_params){2, 1}, &x4, 1, true),
              BG_ERR_SHAPE, "x 'x4' [2, 2, 1, 8] f32 cpu must be {N,C} or {N,1,1,C}");
    bg_tensor_free(&ctx, x);
    bg_tensor_free(&ctx, x4);
    bg_ctx_free(&ctx);
}

/* ---- add / mul -------------------------------------------------------------------- */

BG_TEST(mul_broadcast_values)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    /* a {1,1,2,3} * b {1,1,1,3}: each column scaled; db sums over the rows */
    int64_t sa[4] = {1, 1, 2, 3}, sb[4] = {1, 1, 1, 3};
    bg_tensor *a = tensor_of(&ctx, BG_F32, 4, sa, (double[]){1, 2, 3, 4, 5, 6}, "a");
    bg_tensor *b = tensor_of(&ctx, BG_F32, 4, sb, (double[]){10, 100, 1000}, "b");
    bg_node n;
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_mul, NULL, (bg_tensor *[]){a, b}, 2, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    double want[6] = {10, 200, 3000, 40, 500, 6000};
    for (int i = 0; i < 6; i++) CHECK_NEAR(bg_get(n.out[0], i), want[i], 0, "a * b");
    CHECK_OK(&ctx, prepare_backward(&ctx, &n, WANT(true, true)));
    CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
    double wb[3] = {1 + 4, 2 + 5, 3 + 6};
    for (int i = 0; i < 3; i++) CHECK_NEAR(bg_get(b->grad, i), wb[i], 0, "db = column sums of a");
    CHECK_NEAR(bg_get(a->grad, 4), 100, 0, "da = b");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, a);
    bg_tensor_free(&ctx, b);
    bg_ctx_free(&ctx);
}

BG_TEST(mul_same_tensor_accumulates)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    /* y = x * x: both terms of the gradient land in x's grad: 2x */
    int64_t s[1] = {3};
    bg_tensor *x = tensor_of(&ctx, BG_F64, 1, s, (double[]){1, -2, 3}, "x");
    bg_node n;
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_mul, NULL, (bg_tensor *[]){x, x}, 2, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    CHECK_OK(&ctx, prepare_backward(&ctx, &n, WANT(true, true)));
    CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
    for (int i = 0; i < 3; i++) CHECK_NEAR(bg_get(x->grad, i), 2 * bg_get(x, i), 0, "d(x*x)/dx");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, x);
    bg_ctx_free(&ctx);
}

BG_TEST(mul_broadcast_errors)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t sa[4] = {2, 3, 3, 4}, sb[4] = {2, 1, 1, 3}, sc[1] = {4};
    bg_tensor *a = tensor_of(&ctx, BG_F32, 4, sa, NULL, "feat");
    bg_tensor *b = tensor_of(&ctx, BG_F32, 4, sb, NULL, "gate");
    bg_tensor *c = tensor_of(&ctx, BG_F32, 1, sc, NULL, "vec");
    bg_tensor *d = tensor_of(&ctx, BG_F64, 4, sa, NULL, "feat64");
    bg_node n;
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_mul, NULL, (bg_tensor *[]){a, b}, 2, true), BG_ERR_SHAPE,
              "mul: b 'gate' [2, 1, 1, 3] f32 cpu does not broadcast to a 'feat' [2, 3, 3, 4]");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_mul, NULL, (bg_tensor *[]){a, c}, 2, true), BG_ERR_SHAPE,
              "b 'vec' [4] f32 cpu does not broadcast");
    /* b broadcasts to a, not the other way round */
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_add, NULL, (bg_tensor *[]){b, a}, 2, true), BG_ERR_SHAPE,
              "add: b 'feat'");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_add, NULL, (bg_tensor *[]){a, d}, 2, true), BG_ERR_DTYPE,
              "a 'feat' is f32 but b 'feat64' is f64");
    bg_tensor_free(&ctx, a);
    bg_tensor_free(&ctx, b);
    bg_tensor_free(&ctx, c);
    bg_tensor_free(&ctx, d);
    bg_ctx_free(&ctx);
}

/* ---- relu / sigmoid ------------------------------------------------------------------ */

BG_TEST(relu_values_and_cpu_dtypes)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s[1] = {4};
    bg_tensor *x = tensor_of(&ctx, BG_F32, 1, s, (double[]){-1, 0, 0.5, 2}, "x");
    bg_tensor *h = tensor_of(&ctx, BG_F16, 1, s, (double[]){-1, 0, 0.5, 2}, "xh");
    bg_node n;
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_relu, NULL, &x, 1, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    double want[4] = {0, 0, 0.5, 2};
    for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(n.out[0], i), want[i], 0, "relu");
    CHECK_OK(&ctx, prepare_backward(&ctx, &n, WANT(true)));
    CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
    double dwant[4] = {0, 0, 1, 1}; /* 0 at x == 0 */
    for (int i = 0; i < 4; i++) CHECK_NEAR(bg_get(x->grad, i), dwant[i], 0, "relu'");
    bg_node_release(&ctx, &n);
    /* f16 is storage-only on the CPU */
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_relu, NULL, &h, 1, true));
    CHECK_ERR(&ctx, bg_node_forward(&ctx, &n), BG_ERR_DTYPE, "relu: x 'xh' is f16; the CPU kernel takes f32 or f64");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, x);
    bg_tensor_free(&ctx, h);
    bg_ctx_free(&ctx);
}

BG_TEST(sigmoid_extremes)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s[1] = {3};
    bg_tensor *x = tensor_of(&ctx, BG_F32, 1, s, (double[]){-1000, 0, 1000}, "x");
    bg_node n;
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_sigmoid, NULL, &x, 1, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    CHECK_NEAR(bg_get(n.out[0], 0), 0, 0, "sigmoid(-1000)");
    CHECK_NEAR(bg_get(n.out[0], 1), 0.5, 0, "sigmoid(0)");
    CHECK_NEAR(bg_get(n.out[0], 2), 1, 0, "sigmoid(1000)");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, x);
    bg_ctx_free(&ctx);
}

/* ---- shape ops ---------------------------------------------------------------------- */

BG_TEST(concat_values_and_errors)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s1[2] = {2, 1}, s2[2] = {2, 2}, s3[2] = {3, 2};
    bg_tensor *a = tensor_of(&ctx, BG_F32, 2, s1, (double[]){1, 2}, "a");
    bg_tensor *b = tensor_of(&ctx, BG_F32, 2, s2, (double[]){3, 4, 5, 6}, "b");
    bg_tensor *c = tensor_of(&ctx, BG_F32, 2, s3, NULL, "c");
    bg_node n;
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_concat, NULL, (bg_tensor *[]){a, b, a}, 3, true));
    CHECK_OK(&ctx, bg_node_forward(&ctx, &n));
    CHECK(n.out[0]->shape[0] == 2 && n.out[0]->shape[1] == 4, "concat shape");
    double want[8] = {1, 3, 4, 1, 2, 5, 6, 2};
    for (int i = 0; i < 8; i++) CHECK_NEAR(bg_get(n.out[0], i), want[i], 0, "concat");
    /* a is used twice: its grad collects both slices */
    CHECK_OK(&ctx, prepare_backward(&ctx, &n, WANT(true, true, true)));
    CHECK_OK(&ctx, bg_node_backward(&ctx, &n));
    CHECK_NEAR(bg_get(a->grad, 0), 2, 0, "grad of a used twice");
    bg_node_release(&ctx, &n);

    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_concat, NULL, (bg_tensor *[]){a, c}, 2, true), BG_ERR_SHAPE,
              "concat: x1 'c' [3, 2] f32 cpu does not match x0 'a' [2, 1]");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_concat, NULL, (bg_tensor *[]){a, b, NULL, a}, 4, true),
              BG_ERR_ARG, "input x3 'a' is given but x2 is missing");
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, false);
    CHECK_ERR(&ctx, bg_concat(g, (bg_tensor *[]){a}, 1) ? BG_OK : ctx.status, BG_ERR_ARG, "concat: 1 inputs");
    bg_graph_free(g);
    bg_tensor_free(&ctx, a);
    bg_tensor_free(&ctx, b);
    bg_tensor_free(&ctx, c);
    bg_ctx_free(&ctx);
}

BG_TEST(reshape_and_flatten_shapes)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t s[4] = {2, 3, 4, 2};
    bg_tensor *x = tensor_of(&ctx, BG_F32, 4, s, NULL, "x");
    bg_node n;
    /* flatten keeps NHWC order: {N, H*W*C} */
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_flatten, NULL, &x, 1, true));
    CHECK(n.out[0]->ndim == 2 && n.out[0]->shape[1] == 24, "flatten default start_dim 1");
    bg_node_release(&ctx, &n);
    CHECK_OK(&ctx, bg_node_init(&ctx, &n, &bg_op_reshape, &(bg_reshape_params){{-1, 4, 0, 0}}, &x, 1, true));
    CHECK(n.out[0]->ndim == 2 && n.out[0]->shape[0] == 12 && n.out[0]->shape[1] == 4, "reshape -1,4");
    bg_node_release(&ctx, &n);
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_reshape, &(bg_reshape_params){{5, -1, 0, 0}}, &x, 1, true),
              BG_ERR_SHAPE, "reshape: x 'x' [2, 3, 4, 2] f32 cpu (48 elements) does not fit shape [5, -1]");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_reshape, &(bg_reshape_params){{7, 7, 0, 0}}, &x, 1, true),
              BG_ERR_SHAPE, "does not fit shape [7, 7]");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_reshape, &(bg_reshape_params){{-1, -1, 0, 0}}, &x, 1, true),
              BG_ERR_ARG, "more than one -1");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_reshape, &(bg_reshape_params){{2, 0, 24, 0}}, &x, 1, true),
              BG_ERR_ARG, "dim 1 is 0");
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_flatten, &(bg_flatten_params){4}, &x, 1, true), BG_ERR_ARG,
              "flatten: start_dim 4 is out of range for x 'x'");
    bg_tensor_free(&ctx, x);
    bg_ctx_free(&ctx);
}
