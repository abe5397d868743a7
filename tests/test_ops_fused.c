/* The fused rows: batchnorm2d_relu, se_scale, split_attn, conv2d_fused.
 * The op cases give each a gradient check, f32-vs-f64 and CUDA parity (f32
 * and f16, against the CPU reference); PyTorch's numbers are in
 * tests/fixtures/ops (tools/make_op_fixtures.py). The tests below check
 *  - that a whole model's graph built with fused rows computes exactly what
 *    the op-by-op graph computes (CPU: bit for bit, logits, loss and every
 *    parameter gradient; CUDA: within f32 rounding), and that the fused
 *    graph really holds fused rows (and the unfused one none);
 *  - the supports checks and the error messages of bad inputs. */
#include <math.h>
#include <string.h>
#include "harness.h"
#include "../models/model.h"
#include "../ops/ops.h"

#define N_ BG_INIT_NORMAL
#define P_ BG_INIT_POSITIVE

static const bg_op_case fused_cases[] = {
    {.op = "batchnorm2d_relu", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{2, 3, 3, 3}, {3}, {3}, {3}, {3}}, .init = {N_, P_, N_, N_, P_}, .train = true},
    {.op = "batchnorm2d_relu", .params = "momentum=0.3", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{3, 2, 2, 5}, {5}, {5}, {5}, {5}}, .init = {N_, P_, N_, N_, P_}, .train = true},
    {.op = "batchnorm2d_relu", .n_in = 5, .ndim = {4, 1, 1, 1, 1},
     .shape = {{2, 3, 3, 4}, {4}, {4}, {4}, {4}}, .init = {N_, P_, N_, N_, P_}, .train = false},

    /* se_scale: x, s {N,1,1,C} or {N,C}, residual (absent: ndim 0) */
    {.op = "se_scale", .n_in = 3, .ndim = {4, 4, 4}, .shape = {{2, 3, 3, 4}, {2, 1, 1, 4}, {2, 3, 3, 4}},
     .init = {N_, P_, N_}},
    {.op = "se_scale", .params = "relu=1", .n_in = 3, .ndim = {4, 4, 4},
     .shape = {{2, 2, 3, 5}, {2, 1, 1, 5}, {2, 2, 3, 5}}, .init = {N_, N_, N_}},
    {.op = "se_scale", .n_in = 3, .ndim = {4, 2, 0}, .shape = {{3, 2, 2, 3}, {3, 3}}, .init = {N_, P_}},
    {.op = "se_scale", .params = "relu=1", .n_in = 3, .ndim = {4, 4, 0}, .shape = {{2, 4, 4, 3}, {2, 1, 1, 3}},
     .init = {N_, N_}},

    /* split_attn: x {N,H,W,r*C}, a {N,1,1,r*C} or {N,r*C} */
    {.op = "split_attn", .params = "radix=2", .n_in = 2, .ndim = {4, 4}, .shape = {{2, 3, 3, 6}, {2, 1, 1, 6}}},
    {.op = "split_attn", .params = "radix=4", .n_in = 2, .ndim = {4, 2}, .shape = {{2, 2, 2, 8}, {2, 8}}},
    {.op = "split_attn", .params = "radix=1", .n_in = 2, .ndim = {4, 4}, .shape = {{3, 2, 3, 3}, {3, 1, 1, 3}}},

    /* conv2d_fused: x, weight, bias, residual; act 0 none, 1 relu, 2 sigmoid */
    {.op = "conv2d_fused", .params = "padding=1 act=0", .n_in = 4, .ndim = {4, 4, 1, 4},
     .shape = {{2, 5, 5, 3}, {4, 3, 3, 3}, {4}, {2, 5, 5, 4}}},
    {.op = "conv2d_fused", .params = "padding=1 stride=2 act=1", .n_in = 4, .ndim = {4, 4, 1, 4},
     .shape = {{2, 6, 6, 3}, {4, 3, 3, 3}, {4}, {2, 3, 3, 4}}},
    {.op = "conv2d_fused", .params = "act=2", .n_in = 4, .ndim = {4, 4, 1, 0},
     .shape = {{3, 1, 1, 4}, {5, 1, 1, 4}, {5}}},
    {.op = "conv2d_fused", .params = "act=1", .n_in = 4, .ndim = {4, 4, 0, 0}, .shape = {{2, 3, 3, 4}, {6, 1, 1, 4}}},
    {.op = "conv2d_fused", .params = "padding=1 groups=4 act=1", .n_in = 4, .ndim = {4, 4, 1, 4},
     .shape = {{2, 4, 4, 4}, {4, 3, 3, 1}, {4}, {2, 4, 4, 4}}},

    /* Large enough for the OpenMP paths and several CUDA blocks (no FD check). */
    /* f16 here and in conv2d_fused below: outputs within rounding of 0 flip
     * the relu mask against the f32 reference, and each flip moves a whole
     * dy into or out of the gradients: 1e-4. */
    {.op = "batchnorm2d_relu", .n_in = 5, .ndim = {4, 1, 1, 1, 1}, .shape = {{8, 16, 16, 32}, {32}, {32}, {32}, {32}},
     .init = {N_, P_, N_, N_, P_}, .train = true, .no_gradcheck = true, .tol_f16 = 1e-4},
    {.op = "se_scale", .params = "relu=1", .n_in = 3, .ndim = {4, 4, 4},
     .shape = {{8, 16, 16, 32}, {8, 1, 1, 32}, {8, 16, 16, 32}}, .init = {N_, N_, N_}, .no_gradcheck = true},
    {.op = "split_attn", .params = "radix=2", .n_in = 2, .ndim = {4, 4}, .shape = {{8, 16, 16, 64}, {8, 1, 1, 64}},
     .no_gradcheck = true},
    {.op = "conv2d_fused", .params = "padding=1 act=1", .n_in = 4, .ndim = {4, 4, 1, 4},
     .shape = {{4, 16, 16, 16}, {16, 3, 3, 16}, {16}, {4, 16, 16, 16}}, .no_gradcheck = true, .tol_f16 = 1e-4},
};
BG_OP_CASES(fused_cases)

/* ---- whole models: fused graph against the op-by-op graph ------------------ */

static bool is_fused_row(const bg_op *op)
{
    return op == &bg_op_batchnorm2d_relu || op == &bg_op_se_scale || op == &bg_op_split_attn ||
           op == &bg_op_conv2d_fused;
}

typedef struct {
    bg_tensor *logits, *loss;  /* host f32 copies */
    bg_tensor *grads[256];     /* host f32 copies of every parameter gradient, in model order */
    int n_grads, n_fused, n_nodes;
    double tape_bytes;         /* node outputs and saved tensors: what the tape keeps */
} step_out;

static void step_out_free(bg_ctx *h, step_out *o)
{
    bg_tensor_free(h, o->logits);
    bg_tensor_free(h, o->loss);
    for (int i = 0; i < o->n_grads; i++) bg_tensor_free(h, o->grads[i]);
    memset(o, 0, sizeof *o);
}

static bg_tensor *host_copy(bg_ctx *h, bg_ctx *ctx, const bg_tensor *t)
{
    bg_tensor *c = bg_tensor_new(h, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
    if (c && bg_tensor_copy(ctx, c, t)) {
        bg_tensor_free(h, c);
        return NULL;
    }
    return c;
}

/* One training-mode forward + loss + backward of m on a fixed batch. */
static bool model_step(bg_t *tc, bg_ctx *h, bg_ctx *ctx, bg_model *m, bg_device dev, bool fuse, int side,
                       step_out *o)
{
    memset(o, 0, sizeof *o);
    int64_t xs[4] = {2, side, side, 3}, ys[1] = {2};
    bg_graph *g = bg_graph_new(ctx, dev, true);
    if (!g) return false;
    g->fuse = fuse;
    bg_tensor *hx = bg_tensor_new(h, BG_CPU, BG_F32, 4, xs, "x"), *hy = bg_tensor_new(h, BG_CPU, BG_I32, 1, ys, "y");
    for (int64_t i = 0; i < bg_numel(hx); i++) bg_set(hx, i, sin(0.37 * (double)i) + 0.1 * cos(1.3 * (double)i));
    ((int32_t *)hy->data)[0] = 1, ((int32_t *)hy->data)[1] = 3;
    bg_tensor *x = bg_graph_tensor(g, BG_F32, 4, xs, "x"), *y = bg_graph_tensor(g, BG_I32, 1, ys, "y");
    bool ok = x && y && !bg_tensor_copy(ctx, x, hx) && !bg_tensor_copy(ctx, y, hy);
    bg_tensor *logits = ok ? bg_model_forward(g, m, x) : NULL;
    bg_tensor *loss = logits ? bg_softmax_xent(g, logits, y, 0.0f) : NULL;
    ok = loss && !bg_graph_backward(g, loss);
    CHECK(ok, "%s step (fuse %d): %s", m->spec, fuse, bg_errmsg(ctx));
    if (ok) {
        o->logits = host_copy(h, ctx, logits);
        o->loss = host_copy(h, ctx, loss);
        for (int i = 0; i < m->n_sd && o->n_grads < 256; i++) {
            const bg_tensor *t = m->sd[i].t;
            if (t->grad) o->grads[o->n_grads++] = host_copy(h, ctx, t->grad);
        }
        for (int i = 0; i < g->n_nodes; i++) {
            const bg_node *nd = &g->nodes[i];
            o->n_fused += is_fused_row(nd->op);
            for (int k = 0; k < nd->n_out; k++) o->tape_bytes += (double)bg_nbytes(nd->out[k]);
            for (int k = 0; k < nd->n_saved; k++) o->tape_bytes += (double)bg_nbytes(nd->saved[k]);
        }
        o->n_nodes = g->n_nodes;
    }
    bg_tensor_free(h, hx);
    bg_tensor_free(h, hy);
    bg_graph_free(g);
    return ok;
}

/* Relative L2 distance of two host tensors; INFINITY if a is not finite. */
static double rel_l2(const bg_tensor *a, const bg_tensor *b)
{
    double d = 0, r = 0;
    for (int64_t i = 0; i < bg_numel(a); i++) {
        double u = bg_get(a, i), v = bg_get(b, i);
        if (!isfinite(u)) return INFINITY;
        d += (u - v) * (u - v), r += v * v;
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* tol 0: bit for bit. min_fused: fused rows the model must hold at least. */
static void compare_fused(bg_t *tc, bg_device dev, const char *spec, int side, int min_fused, double tol)
{
    bg_ctx h, ctx;
    bg_test_ctx(&h, 1);
    if (bg_ctx_init(&ctx, dev, 7)) {
        CHECK(false, "context: %s", bg_errmsg(&ctx));
        bg_ctx_free(&h);
        return;
    }
    bg_model *m = NULL;
    CHECK_OK(&ctx, bg_model_new(&ctx, dev, spec, &m));
    step_out f = {0}, u = {0};
    if (m && model_step(tc, &h, &ctx, m, dev, true, side, &f) && model_step(tc, &h, &ctx, m, dev, false, side, &u)) {
        CHECK(f.n_fused >= min_fused, "%s: %d fused rows in the fused graph, expected at least %d", spec, f.n_fused,
              min_fused);
        CHECK(u.n_fused == 0, "%s: the unfused graph holds %d fused rows", spec, u.n_fused);
        CHECK(f.n_nodes < u.n_nodes, "%s: fused graph has %d nodes, unfused %d", spec, f.n_nodes, u.n_nodes);
        CHECK(f.tape_bytes < u.tape_bytes, "%s: the fused tape keeps %.0f bytes, the unfused %.0f", spec, f.tape_bytes,
              u.tape_bytes);
        if (dev == BG_CPU)
            printf("    %s: %d nodes (%d fused) vs %d; tape %.2f MiB vs %.2f MiB (%.0f%%)\n", spec, f.n_nodes, f.n_fused,
                   u.n_nodes, f.tape_bytes / 1048576, u.tape_bytes / 1048576, 100 * f.tape_bytes / u.tape_bytes);
        CHECK(f.n_grads == u.n_grads && f.n_grads > 0, "%s: %d vs %d gradients", spec, f.n_grads, u.n_grads);
        const bg_tensor *pa[258], *pb[258];
        const char *what[258];
        int n = 0;
        pa[n] = f.logits, pb[n] = u.logits, what[n++] = "logits";
        pa[n] = f.loss, pb[n] = u.loss, what[n++] = "loss";
        for (int i = 0; i < f.n_grads && i < u.n_grads; i++) pa[n] = f.grads[i], pb[n] = u.grads[i], what[n++] = f.grads[i]->name;
        int bad = 0;
        for (int i = 0; i < n && bad < 3; i++) {
            bool same = tol == 0 ? !memcmp(pa[i]->data, pb[i]->data, bg_nbytes(pa[i])) : rel_l2(pa[i], pb[i]) <= tol;
            if (!same) {
                bad++;
                CHECK(false, "%s %s: fused and unfused differ (relative L2 %.3g, limit %s)", spec, what[i],
                      rel_l2(pa[i], pb[i]), tol == 0 ? "bit for bit" : "tol");
            }
        }
    }
    step_out_free(&h, &f);
    step_out_free(&h, &u);
    bg_model_free(&ctx, m);
    bg_ctx_free(&ctx);
    bg_ctx_free(&h);
}

/* The SE pre-activation net: batchnorm2d_relu, conv2d_fused (relu and
 * sigmoid excitation convs), se_scale with the residual. */
BG_TEST(fused_graph_bitwise_senet18)
{
    compare_fused(tc, BG_CPU, "senet18:w=0.25,classes=5", 32, 8 * 4 + 8, 0);
}

/* Pre-activation ResNet: the residual add in conv2's epilogue. */
BG_TEST(fused_graph_bitwise_preact_resnet18)
{
    compare_fused(tc, BG_CPU, "preact_resnet18:w=0.125,classes=5", 32, 8 * 3, 0);
}

/* Post-activation ResNet and the small CNN: batchnorm2d_relu only. */
BG_TEST(fused_graph_bitwise_resnet18_small_cnn)
{
    compare_fused(tc, BG_CPU, "resnet18:w=0.125,classes=5", 32, 9, 0);
    compare_fused(tc, BG_CPU, "small_cnn:w=0.5", 16, 3, 0);
}

/* ResNeSt: radix 2 (split_attn) and radix 1 (the gate as se_scale). */
BG_TEST(fused_graph_bitwise_resnest)
{
    compare_fused(tc, BG_CPU, "resnest26d:classes=5,size=32", 32, 8 * 4 + 3, 0);
    compare_fused(tc, BG_CPU, "resnest50d_1s4x24d:classes=5,size=32", 32, 16 * 4 + 3, 0);
}

/* On CUDA the fused kernels sum in other orders: f32 rounding apart. */
BG_GPU_TEST(fused_graph_matches_unfused_cuda)
{
    compare_fused(tc, BG_CUDA, "senet18:w=0.25,classes=5", 32, 8 * 4 + 8, 1e-4);
    compare_fused(tc, BG_CUDA, "preact_resnet18:w=0.125,classes=5", 32, 8 * 3, 1e-4);
}

/* ---- supports checks and bad inputs ---------------------------------------- */

BG_TEST(fused_supports_checks)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 3);
    int64_t xs[4] = {2, 3, 3, 4}, ss[4] = {2, 1, 1, 4};
    bg_tensor *x = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, xs, "x"), *s = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, ss, "s");
    bg_tensor *x64 = bg_tensor_new(&ctx, BG_CPU, BG_F64, 4, xs, "x64"), *s64 = bg_tensor_new(&ctx, BG_CPU, BG_F64, 4, ss, "s64");
    bg_se_scale_params sp = {0};
    CHECK(bg_op_supports(&bg_op_se_scale, BG_CPU, &sp, (bg_tensor *[]){x, s, NULL}, 3), "se_scale f32 on the CPU");
    CHECK(bg_op_supports(&bg_op_se_scale, BG_CPU, &sp, (bg_tensor *[]){x64, s64, x64}, 3), "se_scale f64 on the CPU");
    CHECK(!bg_op_supports(&bg_op_se_scale, BG_CPU, &sp, (bg_tensor *[]){x, s64, NULL}, 3), "mixed dtypes refused");
    CHECK(!bg_op_supports(&bg_op_se_scale, BG_CUDA, &sp, (bg_tensor *[]){x64, s64, NULL}, 3), "no f64 CUDA kernel");
    bg_split_sum_params rp = {.radix = 2};
    CHECK(!bg_op_supports(&bg_op_split_attn, BG_CUDA, &rp, (bg_tensor *[]){x64, s64}, 2), "split_attn f64 on CUDA");
    bg_conv2d_fused_params cp = {.stride = {1, 1}, .dilation = {1, 1}, .groups = 1, .act = 3};
    CHECK(!bg_op_supports(&bg_op_conv2d_fused, BG_CPU, &cp, (bg_tensor *[]){x, x, NULL, NULL}, 4), "act 3 refused");
    cp.act = BG_EP_SIGMOID;
    CHECK(bg_op_supports(&bg_op_conv2d_fused, BG_CPU, &cp, (bg_tensor *[]){x, x, NULL, NULL}, 4), "act 2 on the CPU");
#ifdef BG_WITH_CUDA
    CHECK(bg_op_supports(&bg_op_conv2d_fused, BG_CUDA, &cp, (bg_tensor *[]){x, x, NULL, NULL}, 4), "f32 on CUDA");
#else
    CHECK(!bg_op_supports(&bg_op_conv2d_fused, BG_CUDA, &cp, (bg_tensor *[]){x, x, NULL, NULL}, 4),
          "no CUDA kernels in this build");
#endif
    /* no supports function: every device with both kernels */
    CHECK(bg_op_supports(&bg_op_batchnorm2d_relu, BG_CPU, NULL, NULL, 0), "batchnorm2d_relu on the CPU");
    CHECK(!bg_op_supports(NULL, BG_CPU, NULL, NULL, 0), "no op");
    bg_tensor_free(&ctx, x), bg_tensor_free(&ctx, s), bg_tensor_free(&ctx, x64), bg_tensor_free(&ctx, s64);
    bg_ctx_free(&ctx);
}

BG_TEST(fused_bad_inputs_name_the_fault)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 4);
    int64_t xs[4] = {2, 3, 3, 4}, bad_s[4] = {2, 1, 1, 3}, a6[4] = {2, 1, 1, 4}, ws[4] = {5, 3, 3, 4};
    int64_t rs[4] = {2, 3, 3, 4};
    bg_tensor *x = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, xs, "x"), *s = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, bad_s, "gate");
    bg_tensor *a = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, a6, "a"), *w = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, ws, "w");
    bg_tensor *r = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, rs, "res");
    bg_node n;
    bg_se_scale_params sp = {0};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_se_scale, &sp, (bg_tensor *[]){x, s, NULL}, 3, true), BG_ERR_SHAPE,
              "gate s 'gate' [2, 1, 1, 3] f32 cpu must be [2, 1, 1, 4]");
    bg_split_sum_params rp = {.radix = 3};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_split_attn, &rp, (bg_tensor *[]){x, a}, 2, true), BG_ERR_SHAPE,
              "radix 3 does not divide the 4 channels of x 'x'");
    bg_conv2d_fused_params cp = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 1, .act = 1};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_conv2d_fused, &cp, (bg_tensor *[]){x, w, NULL, r}, 4, true),
              BG_ERR_SHAPE, "residual 'res' [2, 3, 3, 4] f32 cpu must have the output's shape [2, 3, 3, 5]");
    cp.act = 7;
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, &bg_op_conv2d_fused, &cp, (bg_tensor *[]){x, w, NULL, NULL}, 4, true),
              BG_ERR_ARG, "act 7 is not 0 (none), 1 (relu) or 2 (sigmoid)");
    bg_tensor_free(&ctx, x), bg_tensor_free(&ctx, s), bg_tensor_free(&ctx, a), bg_tensor_free(&ctx, w);
    bg_tensor_free(&ctx, r);
    bg_ctx_free(&ctx);
}
