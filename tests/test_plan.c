/* The memory planner (engine/plan.h): liveness and offsets on hand-built
 * graphs, and on zoo models a planned (deferred) graph against the eager
 * one: bit-identical losses, logits and parameter gradients over steps with
 * an optimizer, the allocator's measured peak equal to the plan's, and how
 * much less it is than the eager graph's (the planned arena starts as NaN,
 * so a buffer read before it is written shows); and fast backwards storing
 * into fresh gradients (bg_node.grad_fresh). -v prints the bytes. */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "plan_util.h"
#include "../engine/alloc.h"
#include "../models/model.h"
#include "../ops/ops.h"

static bool verbose(void)
{
    const char *e = getenv("BG_TEST_VERBOSE");
    return e && e[0] == '1';
}

/* Buffers of 256 bytes with known lives pack as the greedy rule says. */
BG_TEST(plan_pack_hand_made_lives)
{
    bg_plan_buf b[5] = {
        {.bytes = 512, .start = 0, .end = 2}, {.bytes = 256, .start = 1, .end = 3}, {.bytes = 256, .start = 3, .end = 4},
        {.bytes = 768, .start = 4, .end = 5}, {.bytes = 256, .start = 5, .end = 5},
    };
    size_t arena = bg_plan_pack(b, 5);
    /* largest first: [3] at 0; [0] at 0 (no overlap with [3]); [1] overlaps [0] -> 512;
     * [2] overlaps [1] (512) and [3] (0..768) -> 768; [4] overlaps [3] -> 768 */
    const size_t want[5] = {0, 512, 768, 0, 768};
    for (int i = 0; i < 5; i++) CHECK(b[i].offset == want[i], "buffer %d at %zu, want %zu", i, b[i].offset, want[i]);
    CHECK(arena == 1024, "arena %zu, want 1024", arena);
}

/* a = relu(x), b = relu(a), c = a + b, loss = xent(c, y) with x a leaf that
 * needs a gradient. Every buffer is [4,16] f32 = 256 bytes (the loss rounds
 * up to 256). Steps: forward 0-3, backward of node 3..0 at 4..7. Lives:
 *   a [0,6] (relu's backward at 6 reads its input), b [1,2] (add reads
 *   nothing back, relu reads its input, not its output), c [2,3], loss [3,8]
 *   (kept), softmax [3,4] (saved); grads: loss [4,4], c [4,5], b [5,6],
 *   a [5,7] (zeroed before the add's backward, read by relu's at 7). */
BG_TEST(plan_liveness_hand_built_graph)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 3);
    int64_t xs[2] = {4, 16}, ys[1] = {4};
    bg_graph *ge = bg_graph_new(&ctx, BG_CPU, true), *gp = bg_graph_new(&ctx, BG_CPU, true);
    gp->defer = true;
    bg_tensor *loss[2], *x[2];
    bg_graph *gs[2] = {ge, gp};
    for (int k = 0; k < 2; k++) {
        x[k] = bg_graph_tensor(gs[k], BG_F32, 2, xs, "x");
        bg_tensor *y = bg_graph_tensor(gs[k], BG_I32, 1, ys, "y");
        for (int i = 0; i < 64; i++) bg_set(x[k], i, (i % 9) * 0.3 - 1.1);
        for (int i = 0; i < 4; i++) bg_set(y, i, i * 3);
        x[k]->requires_grad = true;
        bg_tensor *a = bg_relu(gs[k], x[k]);
        loss[k] = bg_softmax_xent(gs[k], bg_add(gs[k], a, bg_relu(gs[k], a)), y, 0.0f);
    }
    CHECK(loss[0] && loss[1], "build: %s", bg_errmsg(&ctx));
    if (!loss[0] || !loss[1]) goto out;
    CHECK(loss[1]->data == NULL, "a deferred graph allocates nothing while recording");
    CHECK_ERR(&ctx, bg_graph_forward(gp), BG_ERR_ARG, "bg_graph_plan");
    CHECK_OK(&ctx, bg_graph_plan(gp, loss[1], &loss[1], 1));
    const bg_plan *p = gp->plan;
    CHECK(p && p->n_bufs == 9 && p->n_steps == 8, "%d buffers over %d steps, want 9 over 8", p ? p->n_bufs : -1,
          p ? p->n_steps : -1);
    if (!p || p->n_bufs != 9) goto out;
    /* buffer order: outputs and saved by node (a, b, c, loss, softmax), then grads (a, b, c, loss) */
    const int want[9][3] = {{0, 6, 0},    {1, 2, 256}, {2, 3, 512},  {3, 8, 256}, {3, 4, 768},
                            {5, 7, 768}, {5, 6, 1024}, {4, 5, 512}, {4, 4, 1024}};
    for (int i = 0; i < 9; i++)
        CHECK(p->bufs[i].start == want[i][0] && p->bufs[i].end == want[i][1] && p->bufs[i].offset == (size_t)want[i][2],
              "buffer %d (%s): [%d,%d] at %zu, want [%d,%d] at %d", i, p->bufs[i].t->name, p->bufs[i].start,
              p->bufs[i].end, p->bufs[i].offset, want[i][0], want[i][1], want[i][2]);
    CHECK(p->arena_bytes == 1280 && p->sum_bytes == 9 * 256, "arena %zu (want 1280), sum %zu (want 2304)",
          p->arena_bytes, p->sum_bytes);
    for (int step = 0; step < 2; step++) {
        CHECK_OK(&ctx, bg_graph_forward(gp));
        if (step) CHECK_OK(&ctx, bg_graph_forward(ge));
        CHECK_OK(&ctx, bg_graph_backward(ge, loss[0]));
        CHECK_OK(&ctx, bg_graph_backward(gp, loss[1]));
        CHECK(bg_get(loss[0], 0) == bg_get(loss[1], 0), "loss %g vs %g", bg_get(loss[0], 0), bg_get(loss[1], 0));
        CHECK(!memcmp(x[0]->grad->data, x[1]->grad->data, bg_nbytes(x[0])), "step %d: d(x) differs", step);
    }
out:
    bg_graph_free(ge);
    bg_graph_free(gp);
    bg_ctx_free(&ctx);
}

/* Eval: a chain of relus runs in one buffer, whatever its length: the
 * first relu reads the graph's input (not planned), each later one writes
 * over its input in place (bg_op.inplace). */
BG_TEST(plan_eval_chain_two_buffers)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 3);
    int64_t xs[2] = {8, 32};
    bg_graph *g = bg_graph_new(&ctx, BG_CPU, false);
    g->defer = true;
    bg_tensor *x = bg_graph_tensor(g, BG_F32, 2, xs, "x"), *t = x;
    for (int i = 0; i < 10; i++) t = bg_relu(g, t);
    CHECK_OK(&ctx, bg_graph_plan(g, NULL, &t, 1));
    CHECK(g->plan && g->plan->arena_bytes == 1024 && g->plan->sum_bytes == 10 * 1024,
          "arena %zu (want 1024), sum %zu (want 10240)", g->plan ? g->plan->arena_bytes : 0,
          g->plan ? g->plan->sum_bytes : 0);
    for (int i = 0; i < 256; i++) bg_set(x, i, i % 5 - 2.0);
    CHECK_OK(&ctx, bg_graph_forward(g));
    for (int i = 0; i < 256; i++) CHECK(bg_get(t, i) == (i % 5 > 2 ? i % 5 - 2.0 : 0), "element %d", i);
    bg_graph_free(g);
    bg_ctx_free(&ctx);
}

/* peak_factor: the eager peak over the planned one (parameters, their grads
 * and momentum included, so it is small where weights dominate);
 * act_factor: the same for what is not fixed (activations, gradients,
 * scratch); eval_factor: an eager eval graph's activations over the arena. */
static void parity(bg_t *tc, const char *spec, int batch, double peak_factor, double act_factor, double eval_factor)
{
    bg_plan_run_cfg cfg = {.spec = spec, .batch = batch, .device = BG_CPU, .steps = 3};
    bg_plan_parity res;
    char why[512] = "";
    bool ok = bg_plan_compare(&cfg, &res, why, sizeof why);
    CHECK(ok, "%s: %s", spec, why);
    if (!ok) return;
    CHECK(res.peak_planned == res.fixed_planned + res.scratch,
          "%s: measured peak %zu != fixed %zu + kernel scratch %zu", spec, res.peak_planned, res.fixed_planned,
          res.scratch);
    CHECK(res.after_plan == res.before_plan + res.arena + res.leaf_grads,
          "%s: in use after planning %zu != before %zu + arena %zu + parameter grads %zu", spec, res.after_plan,
          res.before_plan, res.arena, res.leaf_grads);
    CHECK(res.peak_eager > peak_factor * res.peak_planned, "%s: eager peak %zu is not %.2fx the planned %zu", spec,
          res.peak_eager, peak_factor, res.peak_planned);
    /* both contexts hold the same fixed bytes: the planned one's in use less its arena */
    const size_t fixed = res.fixed_planned - res.arena, act_eager = res.peak_eager - fixed;
    CHECK(act_eager > act_factor * (res.arena + res.scratch), "%s: eager activations+grads %zu not %.2fx the planned %zu",
          spec, act_eager, act_factor, res.arena + res.scratch);
    CHECK(res.eval_peak_planned == res.eval_fixed + res.eval_arena + res.eval_scratch,
          "%s eval: measured peak %zu != fixed %zu + arena %zu + scratch %zu", spec, res.eval_peak_planned,
          res.eval_fixed, res.eval_arena, res.eval_scratch);
    CHECK(res.eval_act_eager > eval_factor * res.eval_arena, "%s eval: eager activations %zu not %.1fx the arena %zu",
          spec, res.eval_act_eager, eval_factor, res.eval_arena);
    /* the summary's dry plans (nothing allocated) give the same numbers */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_model *m = NULL;
    bg_plan_peaks pk;
    CHECK_OK(&ctx, bg_model_new_ex(&ctx, BG_CPU, spec, BG_MODEL_NO_INIT, &m));
    if (m) {
        bg_alloc_reset_peak(&ctx, BG_CPU);
        CHECK_OK(&ctx, bg_model_plan_peaks(&ctx, m, batch, 0, 0, 0, &pk));
        CHECK(pk.arena == (double)res.arena && pk.scratch == (double)res.scratch && pk.grads == (double)res.leaf_grads &&
                  pk.eager_act == (double)res.sum && pk.eval_arena == (double)res.eval_arena,
              "%s: dry plan arena %.0f scratch %.0f grads %.0f eval arena %.0f, real %zu %zu %zu %zu", spec, pk.arena,
              pk.scratch, pk.grads, pk.eval_arena, res.arena, res.scratch, res.leaf_grads, res.eval_arena);
        CHECK(ctx.alloc[BG_CPU].peak == ctx.alloc[BG_CPU].in_use + (size_t)pk.input,
              "%s: dry plans allocated %zu bytes beyond the input batch %.0f", spec,
              ctx.alloc[BG_CPU].peak - ctx.alloc[BG_CPU].in_use, pk.input);
    }
    bg_model_free(&ctx, m);
    bg_ctx_free(&ctx);
    if (verbose())
        printf("  %s batch %d: training peak eager %zu, planned %zu (arena %zu of %zu planned bytes, scratch %zu, "
               "fixed %zu: %.2fx less; not fixed: eager %zu, planned %zu, %.2fx less); eval activations eager %zu, "
               "arena %zu (%.1fx less), eval peak planned %zu\n",
               spec, batch, res.peak_eager, res.peak_planned, res.arena, res.sum, res.scratch, res.fixed_planned,
               (double)res.peak_eager / (double)res.peak_planned, act_eager, res.arena + res.scratch,
               (double)act_eager / (double)(res.arena + res.scratch), res.eval_act_eager, res.eval_arena,
               (double)res.eval_act_eager / (double)res.eval_arena, res.eval_peak_planned);
}

BG_TEST(plan_small_cnn_matches_eager_at_planned_peak) { parity(tc, "small_cnn", 8, 1.4, 1.4, 2); }
BG_TEST(plan_preact_resnet18_matches_eager_at_planned_peak) { parity(tc, "preact_resnet18:w=0.125", 4, 1.4, 1.6, 5); }
BG_TEST(plan_senet18_matches_eager_at_planned_peak) { parity(tc, "senet18:w=0.25", 4, 1.3, 1.5, 5); }
/* 17 M parameters against a 2x32x32 batch: the weights dominate the peak */
BG_TEST(plan_resnest26d_matches_eager_at_planned_peak) { parity(tc, "resnest26d:classes=10,size=32", 2, 1.02, 1.8, 10); }

/* bg_node.grad_fresh: a backward given gradients full of NaN and marked
 * fresh leaves in them exactly the bits an unmarked backward adds into
 * zeros, at every instruction set the CPU runs, whether the fast kernel
 * stores (f32) or declines to the reference (f64: zeroed first). */
typedef struct {
    const char *op;
    bg_dtype dt;
    int n_in;
    int64_t shape[BG_MAX_IN][4];
    unsigned fresh; /* inputs marked (activations; parameters never are) */
    const void *params;
} fresh_case;

static void fresh_run(bg_t *tc, const fresh_case *fc, bg_cpu_isa isa)
{
    bg_ctx ctx;
    CHECK_OK(&ctx, bg_ctx_init(&ctx, BG_CPU, 7));
    ctx.cpu_backend = BG_CPU_FAST, ctx.cpu_isa = isa;
    bg_tensor *in[BG_MAX_IN] = {0};
    bg_node n;
    bool ok = true;
    for (int i = 0; i < fc->n_in && ok; i++) {
        const int nd = fc->shape[i][1] ? 4 : 1;
        in[i] = bg_tensor_new(&ctx, BG_CPU, fc->dt, nd, fc->shape[i], "in");
        ok = in[i] && !bg_tensor_fill_uniform(&ctx, in[i], i == 4 ? 0.5 : -1.0, 1.0); /* running_var > 0 */
        if (ok && i < 3) in[i]->requires_grad = true, ok = !bg_tensor_ensure_grad(&ctx, in[i]);
    }
    ok = ok && !bg_node_init(&ctx, &n, bg_op_find(fc->op), fc->params, in, fc->n_in, true);
    CHECK(ok, "%s: set up: %s", fc->op, bg_errmsg(&ctx));
    if (!ok) goto out;
    ok = !bg_node_forward(&ctx, &n) && !bg_tensor_ensure_grad(&ctx, n.out[0]) &&
         !bg_tensor_fill_uniform(&ctx, n.out[0]->grad, -1.0, 1.0);
    /* one dy element -0.0: adding it into zeros gives +0, and so must a store */
    if (ok && fc->dt == BG_F32) {
        ((float *)n.out[0]->grad->data)[0] = -0.0f;
        if (in[0]->ndim == 4) ((float *)in[0]->data)[0] = 0.5f; /* relu passes it */
    }
    bg_tensor *want[BG_MAX_IN] = {0};
    if (ok) ok = !bg_node_backward(&ctx, &n);
    for (int i = 0; i < fc->n_in && ok; i++) {
        if (!(fc->fresh & (1u << i))) continue;
        want[i] = bg_tensor_like(&ctx, in[i]->grad, "want");
        ok = want[i] && !bg_tensor_copy(&ctx, want[i], in[i]->grad);
        if (ok) memset(in[i]->grad->data, 0xff, bg_nbytes(in[i]->grad)); /* NaN */
    }
    for (int i = 0; i < 3 && ok; i++) /* the unmarked (parameter) gradients start from zero again */
        if (in[i] && in[i]->grad && !(fc->fresh & (1u << i))) ok = !bg_tensor_zero(&ctx, in[i]->grad);
    n.grad_fresh = (unsigned char)fc->fresh;
    ok = ok && !bg_node_backward(&ctx, &n);
    CHECK(ok, "%s: %s", fc->op, bg_errmsg(&ctx));
    CHECK(n.grad_fresh == 0, "%s: grad_fresh left %u", fc->op, n.grad_fresh);
    for (int i = 0; i < fc->n_in && ok; i++)
        if (want[i])
            CHECK(!memcmp(want[i]->data, in[i]->grad->data, bg_nbytes(want[i])),
                  "%s %s (%s): input %d's fresh gradient differs from adding into zeros", fc->op,
                  bg_dtype_name(fc->dt), bg_cpu_isa_name(isa), i);
    for (int i = 0; i < BG_MAX_IN; i++) bg_tensor_free(&ctx, want[i]);
    bg_node_release(&ctx, &n);
out:
    for (int i = 0; i < BG_MAX_IN; i++) bg_tensor_free(&ctx, in[i]);
    bg_ctx_free(&ctx);
}

BG_TEST(plan_fresh_gradients_match_adding_into_zeros)
{
    static const bg_batchnorm_params bn = {0.1f, 1e-5f};
    static const bg_se_scale_params se = {1};
    const fresh_case cases[] = {
        {"relu", BG_F32, 1, {{2, 5, 5, 24}}, 1, NULL},
        {"relu", BG_F64, 1, {{2, 5, 5, 24}}, 1, NULL}, /* declined: zeroed, then the reference */
        {"add", BG_F32, 2, {{2, 5, 5, 24}, {2, 5, 5, 24}}, 3, NULL},
        {"add", BG_F32, 2, {{2, 5, 5, 24}, {2, 1, 1, 24}}, 3, NULL}, /* b's group sums add: zeroed by the kernel */
        {"add", BG_F32, 2, {{2, 5, 5, 24}, {2, 5, 5, 24}}, 2, NULL},
        {"batchnorm2d", BG_F32, 5, {{4, 5, 5, 24}, {24}, {24}, {24}, {24}}, 1, &bn},
        {"batchnorm2d_relu", BG_F32, 5, {{4, 5, 5, 24}, {24}, {24}, {24}, {24}}, 1, &bn},
        {"se_scale", BG_F32, 3, {{2, 5, 5, 24}, {2, 1, 1, 24}, {2, 5, 5, 24}}, 7, &se},
        {"se_scale", BG_F32, 3, {{2, 5, 5, 24}, {2, 1, 1, 24}, {2, 5, 5, 24}}, 5, &se},
    };
    for (int isa = 0; isa < BG_NISA; isa++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0] && bg_cpu_isa_runs((bg_cpu_isa)isa); i++)
            fresh_run(tc, &cases[i], (bg_cpu_isa)isa);
}

/* In place only where nothing reads the input afterwards: b = relu(a) may
 * not write over a, which the add reads later; the add writes over a, its
 * last reader. In training it may not: relu's backward still reads a. */
BG_TEST(plan_in_place_only_over_dead_inputs)
{
    for (int train = 0; train < 2; train++) {
        bg_ctx ctx;
        bg_test_ctx(&ctx, 4);
        int64_t xs[2] = {8, 32}, ys[1] = {8}; /* 1 KiB per activation */
        bg_graph *g = bg_graph_new(&ctx, BG_CPU, train);
        g->defer = true;
        bg_tensor *x = bg_graph_tensor(g, BG_F32, 2, xs, "x"), *y = bg_graph_tensor(g, BG_I32, 1, ys, "y");
        x->requires_grad = train;
        bg_tensor *a = bg_mul(g, x, x), *b = bg_relu(g, a), *c = bg_add(g, a, b);
        bg_tensor *loss = train ? bg_softmax_xent(g, c, y, 0.0f) : NULL;
        CHECK_OK(&ctx, bg_graph_plan(g, loss, &c, 1));
        const bg_plan *p = g->plan;
        if (!p) break;
        CHECK(p->bufs[1].t == b && !p->bufs[1].alias, "relu's output has its own bytes (a is read later)");
        if (train) CHECK(p->bufs[2].t == c && !p->bufs[2].alias && a->data != c->data, "relu's backward reads a: no add over it");
        else CHECK(p->bufs[2].t == c && p->bufs[2].alias == 1 && a->data == c->data && p->arena_bytes == 2048,
                   "eval: add writes over a; arena %zu, want 2048", p->arena_bytes);
        for (int i = 0; i < 256; i++) bg_set(x, i, (i % 7) - 3.0);
        for (int i = 0; i < 8; i++) ((int32_t *)y->data)[i] = i % 32;
        CHECK_OK(&ctx, bg_graph_forward(g));
        for (int i = 0; i < 256; i++) {
            const double v = ((i % 7) - 3.0) * ((i % 7) - 3.0);
            CHECK(bg_get(c, i) == 2 * v, "c[%d] = %g, want %g", i, bg_get(c, i), 2 * v);
        }
        if (train) CHECK_OK(&ctx, bg_graph_backward(g, loss));
        bg_graph_free(g);
        bg_ctx_free(&ctx);
    }
}
