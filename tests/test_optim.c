/* Optimizers against PyTorch: every fixture in tests/fixtures/optim (written by
 * tools/make_optim_fixtures.py with torch 1.13) holds initial parameters, five
 * steps of gradients and torch's parameters after each step, in f64 and f32.
 * We replay the same gradients and compare after every step with
 *   err = max over elements |ours - torch| / max(|torch|, 1e-3)
 * (relative, with a floor so elements that pass near zero do not turn ulp
 * noise into a huge ratio), requiring err <= 1e-6 in f64 and <= 1e-5 in f32.
 * Plus bad input, state checkpoints and memory accounting. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../engine/optim.h"
#include "../engine/safetensors.h"
#include "harness.h"

#define STEPS 5
#define NPARAM 2
#define ERR_FLOOR 1e-3

static double max_rel_err(const bg_tensor *a, const bg_tensor *b)
{
    double m = 0;
    int64_t n = bg_numel(b);
    if (bg_numel(a) != n) return INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double x = bg_get(a, i), y = bg_get(b, i);
        double e = fabs(x - y) / fmax(fabs(y), ERR_FLOOR);
        if (!(e <= m)) m = isnan(e) ? INFINITY : e;
    }
    return m;
}

/* The fixture's "hyperparameters" JSON (torch constructor kwargs) onto cfg. */
static bg_status config_from_json(bg_ctx *ctx, bg_optim_config *cfg, const char *text)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return bg_fail(ctx, BG_ERR_FORMAT, "hyperparameters: not a JSON object (%s)", jerr.text);
    }
    const char *key;
    json_t *v;
    bg_status s = BG_OK;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "betas") == 0 && json_is_array(v) && json_array_size(v) == 2) {
            s = bg_optim_config_set(ctx, cfg, "beta1", json_number_value(json_array_get(v, 0)));
            if (!s) s = bg_optim_config_set(ctx, cfg, "beta2", json_number_value(json_array_get(v, 1)));
        } else if (json_is_boolean(v)) {
            s = bg_optim_config_set(ctx, cfg, key, json_is_true(v) ? 1.0 : 0.0);
        } else if (json_is_number(v)) {
            s = bg_optim_config_set(ctx, cfg, key, json_number_value(v));
        } else {
            s = bg_fail(ctx, BG_ERR_FORMAT, "hyperparameters: '%s' has an unexpected type", key);
        }
        if (s) break;
    }
    json_decref(root);
    return s;
}

/* Replay one dtype's run of a fixture; returns the worst error over steps. */
static double replay(bg_t *tc, bg_ctx *ctx, const bg_st_file *f, const bg_optim_config *cfg,
                     const char *dt)
{
    char name[64];
    bg_tensor *p[NPARAM] = {0};
    bg_optim *opt = NULL;
    double worst = 0;
    for (int i = 0; i < NPARAM; i++) {
        snprintf(name, sizeof name, "%s.p%d.init", dt, i);
        p[i] = bg_st_load(ctx, f, name, BG_CPU);
        CHECK(p[i] != NULL, "%s: load %s: %s", f->path, name, bg_errmsg(ctx));
        if (!p[i]) goto done;
        snprintf(p[i]->name, sizeof p[i]->name, "p%d", i);
    }
    CHECK_OK(ctx, bg_optim_new(ctx, cfg, p, NPARAM, &opt));
    if (!opt) goto done;
    for (int k = 1; k <= STEPS; k++) {
        for (int i = 0; i < NPARAM; i++) {
            snprintf(name, sizeof name, "%s.g%d.step%d", dt, i, k);
            if (!bg_st_find(f, name)) { /* torch had grad None here */
                bg_tensor_free(ctx, p[i]->grad);
                p[i]->grad = NULL;
                continue;
            }
            bg_tensor *g = bg_st_load(ctx, f, name, BG_CPU);
            CHECK(g != NULL, "%s: load %s: %s", f->path, name, bg_errmsg(ctx));
            if (!g) goto done;
            CHECK_OK(ctx, bg_tensor_ensure_grad(ctx, p[i]));
            CHECK_OK(ctx, bg_tensor_copy(ctx, p[i]->grad, g));
            bg_tensor_free(ctx, g);
        }
        CHECK_OK(ctx, bg_optim_step(ctx, opt));
        for (int i = 0; i < NPARAM; i++) {
            const char *what[2] = {"p", "ax"};
            bg_tensor *ours[2] = {p[i], bg_optim_asgd_ax(opt, i)};
            for (int w = 0; w < 2; w++) {
                if (!ours[w]) continue;
                snprintf(name, sizeof name, "%s.%s%d.step%d", dt, what[w], i, k);
                bg_tensor *ref = bg_st_load(ctx, f, name, BG_CPU);
                CHECK(ref != NULL, "%s: load %s: %s", f->path, name, bg_errmsg(ctx));
                if (!ref) goto done;
                double e = max_rel_err(ours[w], ref);
                double tol = strcmp(dt, "f64") == 0 ? 1e-6 : 1e-5;
                CHECK(e <= tol, "%s: %s: rel err %.3g > %g", f->path, name, e, tol);
                if (e > worst) worst = e;
                bg_tensor_free(ctx, ref);
            }
        }
    }
    /* parameter 1 had no grad at one step, so it took one step fewer */
    CHECK(bg_optim_param_steps(opt, 0) == STEPS && bg_optim_param_steps(opt, 1) == STEPS - 1,
          "step counts %lld, %lld", (long long)bg_optim_param_steps(opt, 0),
          (long long)bg_optim_param_steps(opt, 1));
done:
    bg_optim_free(ctx, opt);
    for (int i = 0; i < NPARAM; i++) bg_tensor_free(ctx, p[i]);
    return worst;
}

static void run_fixture(bg_t *tc, const char *fixture)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char path[1024];
    snprintf(path, sizeof path, "%s/optim/%s.safetensors", bg_test_fixtures_dir(), fixture);
    bg_st_file f;
    bg_status s = bg_st_open(&ctx, path, &f);
    CHECK(s == BG_OK, "open %s: %s", path, bg_errmsg(&ctx));
    if (s) {
        bg_ctx_free(&ctx);
        return;
    }
    const char *oname = bg_st_meta(&f, "optimizer"), *hyper = bg_st_meta(&f, "hyperparameters");
    CHECK(oname && hyper, "%s: metadata lacks optimizer/hyperparameters", path);
    bg_optim_kind kind;
    if (oname && hyper && bg_optim_parse(&ctx, oname, &kind) == BG_OK) {
        bg_optim_config cfg = bg_optim_defaults(kind);
        CHECK_OK(&ctx, config_from_json(&ctx, &cfg, hyper));
        double e64 = replay(tc, &ctx, &f, &cfg, "f64");
        double e32 = replay(tc, &ctx, &f, &cfg, "f32");
        printf("  %-14s max rel err vs torch: f64 %.3g, f32 %.3g\n", fixture, e64, e32);
    } else {
        CHECK(0, "%s: %s", path, bg_errmsg(&ctx));
    }
    bg_st_close(&f);
    CHECK(ctx.alloc[BG_CPU].in_use == 0, "%s: %zu bytes still allocated", fixture, ctx.alloc[BG_CPU].in_use);
    bg_ctx_free(&ctx);
}

BG_TEST(optim_torch_sgd_plain) { run_fixture(tc, "sgd_plain"); }
BG_TEST(optim_torch_sgd_momentum) { run_fixture(tc, "sgd_momentum"); }
BG_TEST(optim_torch_sgd_nesterov) { run_fixture(tc, "sgd_nesterov"); }
BG_TEST(optim_torch_adam) { run_fixture(tc, "adam"); }
BG_TEST(optim_torch_adam_amsgrad) { run_fixture(tc, "adam_amsgrad"); }
BG_TEST(optim_torch_adamw) { run_fixture(tc, "adamw"); }
BG_TEST(optim_torch_adamw_amsgrad) { run_fixture(tc, "adamw_amsgrad"); }
BG_TEST(optim_torch_adamax) { run_fixture(tc, "adamax"); }
BG_TEST(optim_torch_adagrad) { run_fixture(tc, "adagrad"); }
BG_TEST(optim_torch_adadelta) { run_fixture(tc, "adadelta"); }
BG_TEST(optim_torch_asgd) { run_fixture(tc, "asgd"); }

BG_TEST(optim_names_and_defaults)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    for (int k = 0; k < BG_OPT_COUNT; k++) {
        bg_optim_kind got = BG_OPT_COUNT;
        CHECK_OK(&ctx, bg_optim_parse(&ctx, bg_optim_name((bg_optim_kind)k), &got));
        CHECK(got == (bg_optim_kind)k, "%s parsed as %d", bg_optim_name((bg_optim_kind)k), (int)got);
    }
    bg_optim_kind kind;
    CHECK_ERR(&ctx, bg_optim_parse(&ctx, "lamb", &kind), BG_ERR_ARG, "unknown optimizer 'lamb'");
    /* torch 1.13's constructor defaults */
    CHECK(isnan(bg_optim_defaults(BG_OPT_SGD).lr), "sgd has no default lr");
    CHECK(bg_optim_defaults(BG_OPT_ADAM).lr == 1e-3 && bg_optim_defaults(BG_OPT_ADAM).weight_decay == 0, "adam");
    CHECK(bg_optim_defaults(BG_OPT_ADAMW).weight_decay == 1e-2, "adamw weight_decay");
    CHECK(bg_optim_defaults(BG_OPT_ADAMAX).lr == 2e-3, "adamax lr");
    CHECK(bg_optim_defaults(BG_OPT_ADAGRAD).eps == 1e-10, "adagrad eps");
    CHECK(bg_optim_defaults(BG_OPT_ADADELTA).lr == 1.0 && bg_optim_defaults(BG_OPT_ADADELTA).eps == 1e-6 &&
          bg_optim_defaults(BG_OPT_ADADELTA).rho == 0.9, "adadelta");
    bg_optim_config a = bg_optim_defaults(BG_OPT_ASGD);
    CHECK(a.lr == 1e-2 && a.lambd == 1e-4 && a.alpha == 0.75 && a.t0 == 1e6, "asgd");
    bg_optim_config c = bg_optim_defaults(BG_OPT_ADAM);
    CHECK_OK(&ctx, bg_optim_config_set(&ctx, &c, "amsgrad", 1));
    CHECK(c.amsgrad, "amsgrad set");
    CHECK_ERR(&ctx, bg_optim_config_set(&ctx, &c, "momentum", 0.9), BG_ERR_ARG, "adam has no option 'momentum'");
    CHECK_ERR(&ctx, bg_optim_config_set(&ctx, &c, "betaz", 0.9), BG_ERR_ARG, "unknown option 'betaz'");
    CHECK_ERR(&ctx, bg_optim_config_set(&ctx, &c, "amsgrad", 2), BG_ERR_ARG, "boolean");
    bg_ctx_free(&ctx);
}

BG_TEST(optim_bad_config)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t shape[1] = {4};
    bg_tensor *p = bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, shape, "w");
    CHECK(p != NULL, "alloc");
    if (!p) return;
    bg_optim *opt = NULL;
    bg_optim_config c = bg_optim_defaults(BG_OPT_SGD);
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &p, 1, &opt), BG_ERR_ARG, "lr must be given");
    c.lr = -0.1;
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &p, 1, &opt), BG_ERR_ARG, "invalid lr");
    c.lr = 0.1;
    c.nesterov = true;
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &p, 1, &opt), BG_ERR_ARG, "nesterov");
    c = bg_optim_defaults(BG_OPT_ADAM);
    c.beta2 = 1.0;
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &p, 1, &opt), BG_ERR_ARG, "beta2");
    c = bg_optim_defaults(BG_OPT_ADAGRAD);
    c.initial_accumulator_value = -1;
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &p, 1, &opt), BG_ERR_ARG, "initial_accumulator_value");
    c = bg_optim_defaults(BG_OPT_ADAM);
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &p, 0, &opt), BG_ERR_ARG, "empty parameter list");
    bg_tensor *twice[2] = {p, p};
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, twice, 2, &opt), BG_ERR_ARG, "listed twice");
    CHECK(opt == NULL, "no optimizer on failure");
    CHECK_OK(&ctx, bg_optim_new(&ctx, &c, &p, 1, &opt));
    CHECK_ERR(&ctx, bg_optim_set_lr(&ctx, opt, -1e-3), BG_ERR_ARG, "invalid lr");
    CHECK_ERR(&ctx, bg_optim_set_lr(&ctx, opt, NAN), BG_ERR_ARG, "invalid lr");
    CHECK_OK(&ctx, bg_optim_set_lr(&ctx, opt, 5e-4));
    CHECK(bg_optim_lr(opt) == 5e-4, "lr now %g", bg_optim_lr(opt));
    bg_optim_free(&ctx, opt);
    bg_tensor_free(&ctx, p);
    bg_ctx_free(&ctx);
}

BG_TEST(optim_bad_params)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t shape[2] = {2, 3};
    bg_optim_config c = bg_optim_defaults(BG_OPT_ADAM);
    bg_optim *opt = NULL;
    bg_tensor *ip = bg_tensor_new(&ctx, BG_CPU, BG_I32, 2, shape, "conv.bias_i");
    CHECK(ip != NULL, "alloc");
    if (ip) CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &ip, 1, &opt), BG_ERR_DTYPE, "'conv.bias_i' is i32");
    bg_tensor_free(&ctx, ip);

    /* A CUDA parameter without device storage (or in a build without a
     * device) is refused before its storage is touched: a descriptor with no
     * data stands in for one. Real CUDA parameters go to the fused kernels. */
    bg_tensor fake = {0};
    fake.ndim = 2;
    fake.shape[0] = 2, fake.shape[1] = 3;
    fake.stride[0] = 3, fake.stride[1] = 1;
    fake.dtype = BG_F32;
    fake.device = BG_CUDA;
    snprintf(fake.name, sizeof fake.name, "fc.w");
    bg_tensor *fp = &fake;
    CHECK_ERR(&ctx, bg_optim_new(&ctx, &c, &fp, 1, &opt), BG_ERR_DEVICE, "'fc.w' is on");

    /* a grad whose shape or dtype differs fails the step and changes nothing */
    bg_tensor *p = bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, shape, "w");
    bg_tensor *q = bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, shape, "v");
    CHECK(p && q, "alloc");
    if (!p || !q) return;
    CHECK_OK(&ctx, bg_tensor_fill_const(&ctx, p, 1.0));
    CHECK_OK(&ctx, bg_tensor_fill_const(&ctx, q, 1.0));
    bg_tensor *ps[2] = {q, p};
    CHECK_OK(&ctx, bg_optim_new(&ctx, &c, ps, 2, &opt));
    CHECK_OK(&ctx, bg_tensor_ensure_grad(&ctx, q));
    CHECK_OK(&ctx, bg_tensor_fill_const(&ctx, q->grad, 1.0));
    p->grad = bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, shape, "w.grad");
    CHECK_ERR(&ctx, bg_optim_step(&ctx, opt), BG_ERR_SHAPE, "grad of 'w'");
    bg_tensor_free(&ctx, p->grad);
    p->grad = bg_tensor_new(&ctx, BG_CPU, BG_F64, 2, shape, "w.grad");
    CHECK_ERR(&ctx, bg_optim_step(&ctx, opt), BG_ERR_DTYPE, "grad of 'w' is f64");
    CHECK(bg_get(q, 0) == 1.0 && bg_optim_param_steps(opt, 0) == 0, "a failed step changed 'v'");
    bg_optim_free(&ctx, opt);
    bg_tensor_free(&ctx, p);
    bg_tensor_free(&ctx, q);
    bg_ctx_free(&ctx);
}

BG_TEST(optim_state_accounted)
{
    /* Adam with amsgrad keeps three buffers per parameter, allocated up front
     * through the context's allocator and returned on free. */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t shape[2] = {100, 10};
    bg_tensor *p = bg_tensor_new(&ctx, BG_CPU, BG_F64, 2, shape, "w");
    CHECK(p != NULL, "alloc");
    if (!p) return;
    size_t before = ctx.alloc[BG_CPU].in_use;
    bg_optim_config c = bg_optim_defaults(BG_OPT_ADAM);
    c.amsgrad = true;
    bg_optim *opt = NULL;
    CHECK_OK(&ctx, bg_optim_new(&ctx, &c, &p, 1, &opt));
    size_t want = 3 * bg_alloc_rounded(1000 * sizeof(double)) + bg_alloc_rounded(3 * sizeof(double));
    CHECK(ctx.alloc[BG_CPU].in_use - before == want, "state took %zu bytes, want %zu",
          ctx.alloc[BG_CPU].in_use - before, want);
    bg_tensor *st[8];
    CHECK(bg_optim_state(opt, st, 8) == 4, "adam+amsgrad state tensors");
    CHECK(strcmp(st[2]->name, "optim.0.max_exp_avg_sq") == 0, "name %s", st[2]->name);
    bg_optim_free(&ctx, opt);
    CHECK(ctx.alloc[BG_CPU].in_use == before, "state not returned: %zu vs %zu", ctx.alloc[BG_CPU].in_use, before);
    bg_tensor_free(&ctx, p);
    bg_ctx_free(&ctx);
}

/* Run `n` steps with a fixed grad pattern that depends on the step. */
static void steps(bg_t *tc, bg_ctx *ctx, bg_optim *opt, bg_tensor *p, int from, int n)
{
    for (int k = from; k < from + n; k++) {
        for (int64_t i = 0; i < bg_numel(p); i++) bg_set(p->grad, i, sin(0.7 * (double)(i + 1) * (k + 1)));
        CHECK_OK(ctx, bg_optim_step(ctx, opt));
    }
}

BG_TEST(optim_state_checkpoint)
{
    /* Save the state after 2 steps, restore it into a fresh optimizer over a
     * copy of the parameter, and check 3 more steps agree bit for bit. */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 7);
    int64_t shape[1] = {6};
    char path[256];
    snprintf(path, sizeof path, "/tmp/bg_optim_state_%d.safetensors", (int)getpid());
    const bg_optim_kind kinds[] = {BG_OPT_SGD, BG_OPT_ADAM, BG_OPT_ASGD, BG_OPT_ADAGRAD};
    for (size_t kk = 0; kk < sizeof kinds / sizeof kinds[0]; kk++) {
        bg_optim_config c = bg_optim_defaults(kinds[kk]);
        c.lr = 0.05;
        c.momentum = 0.9;
        c.amsgrad = true;
        c.t0 = 1;
        c.weight_decay = 0.01;
        bg_tensor *a = bg_tensor_new(&ctx, BG_CPU, BG_F64, 1, shape, "a");
        bg_tensor *b = bg_tensor_new(&ctx, BG_CPU, BG_F64, 1, shape, "b");
        if (!a || !b) break;
        CHECK_OK(&ctx, bg_tensor_fill_normal(&ctx, a, 0, 1));
        CHECK_OK(&ctx, bg_tensor_ensure_grad(&ctx, a));
        CHECK_OK(&ctx, bg_tensor_ensure_grad(&ctx, b));
        bg_optim *oa = NULL, *ob = NULL;
        CHECK_OK(&ctx, bg_optim_new(&ctx, &c, &a, 1, &oa));
        CHECK_OK(&ctx, bg_optim_new(&ctx, &c, &b, 1, &ob));
        if (!oa || !ob) break;
        steps(tc, &ctx, oa, a, 0, 2);
        bg_tensor *sa[8], *sb[8];
        int n = bg_optim_state(oa, sa, 8);
        CHECK(n == bg_optim_state(ob, sb, 8), "state counts differ");
        CHECK_OK(&ctx, bg_st_save(&ctx, path, sa, NULL, n, NULL, NULL, 0));
        bg_st_file f;
        CHECK_OK(&ctx, bg_st_open(&ctx, path, &f));
        for (int i = 0; i < n; i++) {
            bg_tensor *s = bg_st_load(&ctx, &f, sb[i]->name, BG_CPU);
            CHECK(s != NULL, "%s: %s", sb[i]->name, bg_errmsg(&ctx));
            if (s) CHECK_OK(&ctx, bg_tensor_copy(&ctx, sb[i], s));
            bg_tensor_free(&ctx, s);
        }
        bg_st_close(&f);
        CHECK_OK(&ctx, bg_tensor_copy(&ctx, b, a));
        steps(tc, &ctx, oa, a, 2, 3);
        steps(tc, &ctx, ob, b, 2, 3);
        for (int64_t i = 0; i < bg_numel(a); i++)
            CHECK(bg_get(a, i) == bg_get(b, i), "%s: element %lld: %.17g vs %.17g", bg_optim_name(kinds[kk]),
                  (long long)i, bg_get(a, i), bg_get(b, i));
        CHECK(bg_optim_param_steps(ob, 0) == 5, "restored step count");
        bg_optim_free(&ctx, oa);
        bg_optim_free(&ctx, ob);
        bg_tensor_free(&ctx, a);
        bg_tensor_free(&ctx, b);
    }
    unlink(path);
    bg_ctx_free(&ctx);
}
