/* The model zoo against PyTorch 1.13 (tools/make_model_oracles.py): the
 * same weights on both sides from budgie's Philox stream, no weights in the
 * fixtures. Each oracle: budgie init in state-dict order (checked through
 * the PyTorch-layout export against the script's values), BN gamma/beta
 * redrawn U(0.5,1.5) / U(-0.5,0.5) in the same order, input N(0,1) NHWC
 * from the stream, labels {3, 8}; one train-mode forward and backward of the
 * mean cross-entropy (batch 2; 4 for ResNeSt, see the script). PyTorch ran
 * in float64, so the errors below are ours.
 * Limits (CPU f32): logits max-abs error relative to the largest |logit|
 * <= 1e-4; loss relative <= 1e-5; per parameter, the gradient's L2 norm
 * relative <= 1e-3 and the sampled elements (relative L2 over the samples)
 * <= 1e-3; running statistics after the forward <= 1e-4. On CUDA the same
 * check runs in f32 with the same limits and in f16 against PyTorch's own
 * f16 error (see F16_K).
 * Float32 ReLU flips: a ReLU input within float32 rounding of zero (|x| <
 * tau = 1e-5 in float64: 22 to 25 of each oracle's 3.3M-4.5M ReLU inputs)
 * may land on the other side of zero in any f32 implementation, and its
 * derivative then flips: a finite gradient change, up to a few per cent of
 * a parameter's gradient norm (SENet's SE fc1/fc2, the stem BN; PyTorch's
 * own f32 misses by 5e-3 on the norms through one such flip).
 * The script computes that change exactly for every flagged input and
 * stores per parameter its bound (the "flip slack": flip_norm for the norm,
 * flip[k] per sampled element); in f32 a gradient error passes if it is
 * within limit x scale + slack. The fixtures keep tau, the flagged count and
 * PyTorch's own f32 ReLU-input error under "flip". */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../models/model.h"
#include "../ops/ops.h"

/* grad_norm/grad_samples are what the limits see (after the flip slack in
 * f32); the _raw ones are before it, for the report. */
typedef struct {
    double logits, loss, grad_norm, grad_samples, stats, grad_norm_raw, grad_samples_raw;
    char worst_norm[64], worst_samples[64];
} errs;

/* f32: flip_slack adds the fixture's ReLU flip slack (never in f64, where
 * no input is near enough to zero to flip, nor in f16, whose flips are part
 * of PyTorch's own f16 error). f16: f16_k > 0 makes each limit the larger
 * of the floor given here and f16_k x the fixture's "torch_f16" error. */
typedef struct {
    double logits, loss, grad, stats;
    bool flip_slack;
    double f16_k;
} limits;

static json_t *load_oracle(bg_t *tc, const char *stem)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s.json", bg_test_fixtures_dir(), stem);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    CHECK(doc != NULL, "%s: %s (line %d); regenerate with tools/make_model_oracles.py", path, je.text, je.line);
    return doc;
}

/* The oracle's BN redraw, in entry order (the script walks BN modules the same way). */
static bg_status perturb_bn(bg_ctx *ctx, bg_model *m)
{
    for (int i = 0; i < m->n_sd; i++) {
        bg_sd_entry *e = &m->sd[i];
        bg_status s = BG_OK;
        if (e->role == BG_ROLE_BN_W) s = bg_tensor_fill_uniform(ctx, e->t, 0.5, 1.5);
        else if (e->role == BG_ROLE_BN_B) s = bg_tensor_fill_uniform(ctx, e->t, -0.5, 0.5);
        if (s) return s;
    }
    return BG_OK;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

/* Compare sampled PyTorch-layout values of entry e ("init"/"value" or "grad"). */
static bool sampled(bg_t *tc, bg_ctx *ctx, const bg_sd_entry *e, bool grad, json_t *idx, json_t *vals, double *l2_err,
                    double *l2_ref)
{
    int64_t n = bg_numel(e->t);
    float *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) return false;
    bg_status s = bg_model_entry_torch(ctx, e, grad, buf);
    CHECK(s == BG_OK, "%s: %s", e->name, bg_errmsg(ctx));
    *l2_err = *l2_ref = 0;
    for (size_t k = 0; !s && k < json_array_size(idx); k++) {
        int64_t j = json_integer_value(json_array_get(idx, k));
        double want = json_number_value(json_array_get(vals, k)), got = j < n ? buf[j] : NAN;
        *l2_err += (got - want) * (got - want);
        *l2_ref += want * want;
    }
    *l2_err = sqrt(*l2_err);
    *l2_ref = sqrt(*l2_ref);
    free(buf);
    return !s;
}

static double l2(bg_ctx *ctx, const bg_tensor *t)
{
    int64_t n = bg_numel(t);
    bg_tensor *h = bg_tensor_new(ctx, BG_CPU, t->dtype, t->ndim, t->shape, "host");
    double a = 0;
    if (h && !bg_tensor_copy(ctx, h, t))
        for (int64_t i = 0; i < n; i++) a += bg_get(h, i) * bg_get(h, i);
    bg_tensor_free(ctx, h);
    return sqrt(a);
}

/* Build, check the init, run, compare. device/dt: where and in what the model runs. */
static void run_oracle(bg_t *tc, const char *stem, bg_device device, bg_dtype dt, limits lim)
{
    /* several oracles run in one test: only this one's failures stop it */
    const int fail0 = tc->failures;
    json_t *doc = load_oracle(tc, stem);
    if (!doc) return;
    const char *spec = json_string_value(json_object_get(doc, "spec"));
    uint64_t seed = (uint64_t)json_integer_value(json_object_get(doc, "seed"));
    json_t *params = json_object_get(doc, "params"), *buffers = json_object_get(doc, "buffers");
    json_t *in = json_object_get(doc, "input"), *labels = json_object_get(doc, "labels");
    /* One context throughout: the model is built (and its weights drawn) on
     * the host with the same seed either way, then moved to the device. */
    bg_ctx ctx;
    bg_status cs = device == BG_CPU ? (bg_test_ctx(&ctx, seed), BG_OK) : bg_ctx_init(&ctx, device, seed);
    CHECK(cs == BG_OK, "%s context: %s", bg_device_name(device), bg_errmsg(&ctx));
    if (cs) {
        json_decref(doc);
        return;
    }
    bg_ctx *rc = &ctx;
    bg_model *m = NULL;
    bg_graph *g = NULL;
    errs E = {0};
    CHECK_OK(&ctx, bg_model_new(&ctx, BG_CPU, spec, &m));
    if (!m) goto out;

    /* 1. the parameters, in the script's order, with its initial values in PyTorch layout */
    int np = 0;
    double init_err = 0;
    for (int i = 0; i < m->n_sd && tc->failures == fail0; i++) {
        const bg_sd_entry *e = &m->sd[i];
        if (!e->t->is_param) continue;
        json_t *p = json_array_get(params, (size_t)np++);
        const char *pn = json_string_value(json_object_get(p, "name"));
        CHECK(pn && !strcmp(pn, e->name), "parameter %d is '%s' here, '%s' in PyTorch", np - 1, e->name, pn ? pn : "?");
        double de, dr;
        if (sampled(tc, &ctx, e, false, json_object_get(p, "value_idx"), json_object_get(p, "init"), &de, &dr))
            init_err = fmax(init_err, de / fmax(dr, 1e-30));
    }
    CHECK(np == (int)json_array_size(params), "%d parameters here, %zu in PyTorch", np, json_array_size(params));
    /* Philox normals: numpy's cos/sin there, glibc's here, at most the last f32 bit apart */
    CHECK(init_err <= 1e-6, "initial weights differ from PyTorch's export: %.3g", init_err);
    if (tc->failures > fail0) goto out;
    CHECK_OK(&ctx, perturb_bn(&ctx, m));

    /* 2. input from the stream (NHWC), labels */
    int64_t xs[4];
    for (int d = 0; d < 4; d++) xs[d] = json_integer_value(json_array_get(in, (size_t)d));
    int64_t nb = xs[0], ys[1] = {nb};
    bg_tensor *hx = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, xs, "input");
    CHECK_OK(&ctx, bg_tensor_fill_normal(&ctx, hx, 0, 1));
    if (device != BG_CPU || dt != BG_F32) CHECK_OK(&ctx, bg_model_to(&ctx, m, device, dt));
    g = bg_graph_new(rc, device, true);
    bg_tensor *x = bg_graph_tensor(g, dt, 4, xs, "input"), *y = bg_graph_tensor(g, BG_I32, 1, ys, "labels");
    if (!x || !y) goto out;
    bg_tensor *hxd = bg_tensor_new(&ctx, BG_CPU, dt, 4, xs, "input");
    bg_tensor *hy = bg_tensor_new(&ctx, BG_CPU, BG_I32, 1, ys, "labels");
    for (int64_t i = 0; i < nb; i++) ((int32_t *)hy->data)[i] = (int32_t)json_integer_value(json_array_get(labels, (size_t)i));
    CHECK_OK(&ctx, bg_tensor_convert(&ctx, hxd, hx));
    CHECK_OK(rc, bg_tensor_copy(rc, x, hxd));
    CHECK_OK(rc, bg_tensor_copy(rc, y, hy));
    bg_tensor_free(&ctx, hx);
    bg_tensor_free(&ctx, hxd);
    bg_tensor_free(&ctx, hy);

    /* 3. forward (train mode), loss, backward */
    bg_tensor *logits = bg_model_forward(g, m, x);
    bg_tensor *loss = logits ? bg_softmax_xent(g, logits, y, 0.0f) : NULL;
    CHECK(loss != NULL, "forward of %s: %s", spec, bg_errmsg(rc));
    if (!loss) goto out;
    CHECK_OK(rc, bg_graph_backward(g, loss));
    if (tc->failures > fail0) goto out;

    /* 4. compare */
    json_t *jl = json_object_get(doc, "logits");
    int64_t nl = bg_numel(logits);
    bg_tensor *hl = bg_tensor_new(&ctx, BG_CPU, dt, 2, logits->shape, "logits");
    CHECK_OK(&ctx, bg_tensor_copy(&ctx, hl, logits));
    double lmax = 0, lerr = 0;
    for (int64_t i = 0; i < nl; i++) {
        double want = json_number_value(json_array_get(jl, (size_t)i));
        lmax = fmax(lmax, fabs(want));
        lerr = fmax(lerr, fabs(bg_get(hl, i) - want));
    }
    bg_tensor_free(&ctx, hl);
    E.logits = lerr / lmax;
    CHECK((size_t)nl == json_array_size(jl), "%lld logits, %zu in PyTorch", (long long)nl, json_array_size(jl));
    /* the loss keeps its own dtype (f32 even in an f16 graph): compare it as it is */
    bg_tensor *hloss = bg_tensor_new(&ctx, BG_CPU, loss->dtype, 1, (int64_t[]){1}, "loss");
    CHECK_OK(&ctx, bg_tensor_copy(&ctx, hloss, loss));
    E.loss = rel(bg_get(hloss, 0), json_number_value(json_object_get(doc, "loss")));
    bg_tensor_free(&ctx, hloss);
    /* A gradient that is zero in exact arithmetic (a conv bias feeding a
     * train-mode BN) is float noise on both sides: each parameter's error is
     * taken relative to its own norm, floored at 1e-3 of the largest one. */
    double gmax = 0;
    for (size_t k = 0; k < json_array_size(params); k++)
        gmax = fmax(gmax, json_number_value(json_object_get(json_array_get(params, k), "grad_norm")));
    np = 0;
    for (int i = 0; i < m->n_sd; i++) {
        const bg_sd_entry *e = &m->sd[i];
        if (!e->t->is_param) continue;
        json_t *p = json_array_get(params, (size_t)np++);
        double want_norm = json_number_value(json_object_get(p, "grad_norm")), floor_ = 1e-3 * gmax;
        CHECK(e->t->grad != NULL, "%s has no gradient", e->name);
        if (!e->t->grad) continue;
        /* the flip slack: 0 where no flagged ReLU feeds this parameter (no keys) */
        double flip_norm = 0, flip_samples = 0;
        json_t *jf = json_object_get(p, "flip");
        if (lim.flip_slack) {
            flip_norm = json_number_value(json_object_get(p, "flip_norm"));
            for (size_t k = 0; k < json_array_size(jf); k++) {
                double f = json_number_value(json_array_get(jf, k));
                flip_samples += f * f;
            }
            flip_samples = sqrt(flip_samples);
        }
        double scale = fmax(want_norm, floor_), dn = fabs(l2(rc, e->t->grad) - want_norm), de, dr;
        double ne = fmax(0, dn - flip_norm) / scale;
        E.grad_norm_raw = fmax(E.grad_norm_raw, dn / scale);
        if (ne > E.grad_norm) E.grad_norm = ne, snprintf(E.worst_norm, sizeof E.worst_norm, "%s", e->name);
        if (!sampled(tc, &ctx, e, true, json_object_get(p, "idx"), json_object_get(p, "grad"), &de, &dr)) continue;
        /* the samples: L2 error over L2 of the reference samples, with the same floor scaled to their count;
         * the slack of each sampled element bounds its own error, so their L2 bounds the samples' */
        double n_el = (double)bg_numel(e->t), k = (double)json_array_size(json_object_get(p, "idx"));
        double sden = fmax(dr, scale * sqrt(k / n_el) * 1e-1), se = fmax(0, de - flip_samples) / sden;
        E.grad_samples_raw = fmax(E.grad_samples_raw, de / sden);
        if (se > E.grad_samples) E.grad_samples = se, snprintf(E.worst_samples, sizeof E.worst_samples, "%s", e->name);
    }
    for (size_t b = 0; b < json_array_size(buffers); b++) {
        json_t *jb = json_array_get(buffers, b);
        const bg_sd_entry *e = bg_model_find(m, json_string_value(json_object_get(jb, "name")));
        CHECK(e != NULL, "buffer '%s' is not in the model", json_string_value(json_object_get(jb, "name")));
        double de, dr;
        if (e && sampled(tc, &ctx, e, false, json_object_get(jb, "idx"), json_object_get(jb, "value"), &de, &dr))
            E.stats = fmax(E.stats, de / fmax(dr, 1e-30));
    }
    printf("    %s on %s %s: logits %.2e, loss %.2e, grad norms %.2e (%s), grad samples %.2e (%s), running stats %.2e\n",
           spec, bg_device_name(device), bg_dtype_name(dt), E.logits, E.loss, E.grad_norm, E.worst_norm, E.grad_samples,
           E.worst_samples, E.stats);
    if (lim.flip_slack) {
        json_t *jflip = json_object_get(doc, "flip");
        printf("      before the flip slack (tau %g, %lld ReLU inputs flagged): grad norms %.2e, grad samples %.2e\n",
               json_number_value(json_object_get(jflip, "tau")),
               (long long)json_integer_value(json_object_get(jflip, "flagged")), E.grad_norm_raw, E.grad_samples_raw);
    }
    /* f16: PyTorch's own error in budgie's f16 storage regime, k times over (never below the floors) */
    limits L = lim;
    double lim_norm = lim.grad, lim_samples = lim.grad;
    if (lim.f16_k > 0) {
        json_t *t16 = json_object_get(doc, "torch_f16");
        CHECK(t16 != NULL, "%s has no torch_f16 errors; regenerate with tools/make_model_oracles.py", stem);
        double k = lim.f16_k;
        L.logits = fmax(lim.logits, k * json_number_value(json_object_get(t16, "logits")));
        L.loss = fmax(lim.loss, k * json_number_value(json_object_get(t16, "loss")));
        L.stats = fmax(lim.stats, k * json_number_value(json_object_get(t16, "stats")));
        lim_norm = fmax(lim.grad, k * json_number_value(json_object_get(t16, "grad_norm")));
        lim_samples = fmax(lim.grad, k * json_number_value(json_object_get(t16, "grad_samples")));
        printf("      PyTorch's own f16: logits %.2e, loss %.2e, grad norms %.2e, grad samples %.2e, running stats %.2e\n",
               json_number_value(json_object_get(t16, "logits")), json_number_value(json_object_get(t16, "loss")),
               json_number_value(json_object_get(t16, "grad_norm")),
               json_number_value(json_object_get(t16, "grad_samples")), json_number_value(json_object_get(t16, "stats")));
    }
    CHECK(E.logits <= L.logits, "logits error %.3g > %g", E.logits, L.logits);
    CHECK(E.loss <= L.loss, "loss error %.3g > %g", E.loss, L.loss);
    CHECK(E.grad_norm <= lim_norm, "gradient norm error %.3g > %g (%s)", E.grad_norm, lim_norm, E.worst_norm);
    CHECK(E.grad_samples <= lim_samples, "gradient element error %.3g > %g (%s)", E.grad_samples, lim_samples,
          E.worst_samples);
    CHECK(E.stats <= L.stats, "running statistics error %.3g > %g", E.stats, L.stats);
out:
    bg_graph_free(g);
    bg_model_free(&ctx, m);
    bg_ctx_free(&ctx);
    json_decref(doc);
}

static const limits CPU_F32 = {1e-4, 1e-5, 1e-3, 1e-4, true, 0};
/* ResNeSt's split-attention BN normalises one value per image and channel
 * (a 1x1 map), over 4 images here: its backward cancels most of the
 * incoming gradient, so float32 rounding is amplified, to an RMS of 1e-4 at
 * the ReLU inputs of the deeper stages, where flips outside tau happen (the
 * Gaussian estimate is ~8 of them). PyTorch's own float32 misses its
 * float64 gradient samples by 5.7e-2, 8.8e-3 after the flip slack; budgie's
 * CPU f32 by 4.5e-2, 2.9e-2 after it (layer4's attention fc1). The f64 run
 * shows the graph itself is exact. */
static const limits RESNEST_F32 = {1e-4, 1e-5, 1e-1, 5e-4, true, 0};
static const limits CPU_F64 = {1e-8, 1e-8, 1e-6, 1e-6, false, 0};

BG_TEST(model_oracle_senet18_w067) { run_oracle(tc, "senet18_w067_r2", BG_CPU, BG_F32, CPU_F32); }
BG_TEST(model_oracle_resnet18) { run_oracle(tc, "resnet18_r2", BG_CPU, BG_F32, CPU_F32); }
BG_TEST(model_oracle_resnest50d_1s4x24d)
{
    run_oracle(tc, "resnest50d_1s4x24d", BG_CPU, BG_F32, RESNEST_F32);
    run_oracle(tc, "resnest50d_1s4x24d", BG_CPU, BG_F64, CPU_F64);
}

/* Every op the zoo records, for the CUDA check's precondition. */
static const char *const ZOO_OPS[] = {"conv2d", "batchnorm2d", "relu", "sigmoid", "add", "mul", "global_avgpool",
                                      "avgpool2d", "maxpool2d", "linear", "flatten", "softmax_xent", "radix_softmax",
                                      "split_sum"};

#define F16_K 3.0

/* The CUDA ops of the zoo, or a note naming the missing ones. */
static bool zoo_has_cuda(char *missing, size_t cap)
{
    missing[0] = 0;
    for (size_t i = 0; i < sizeof ZOO_OPS / sizeof ZOO_OPS[0]; i++) {
        const bg_op *op = bg_op_find(ZOO_OPS[i]);
        if (!op || !op->fwd[BG_CUDA] || !op->bwd[BG_CUDA]) {
            strncat(missing, missing[0] ? ", " : "", cap - strlen(missing) - 1);
            strncat(missing, ZOO_OPS[i], cap - strlen(missing) - 1);
        }
    }
    return missing[0] == 0;
}

/* f16: budgie stores every activation, activation gradient, parameter and
 * parameter gradient in binary16 and computes in f32. The script replays
 * exactly that regime in PyTorch and stores its errors against float64 in
 * the test's metrics ("torch_f16"): the error f16 storage itself costs here,
 * flips and all (several per cent on the gradients, over 1 for ResNeSt's
 * sampled elements, whose attention BN amplifies it). budgie must come
 * within F16_K = 3 times that. An equally good implementation lands within
 * 1.5x of it (the same regime computed in float64 instead of float32 does,
 * on the logits, gradients and statistics; budgie within 0.6x-1.9x), while a
 * kernel bug is far off. The old fixed limits stay as floors; they rule the
 * loss, a single number whose f16 error moves by up to 5x between such
 * variants. */
static const limits CUDA_F16 = {2e-2, 2e-2, 5e-2, 5e-2, false, F16_K};
static const limits CUDA_F16_RESNEST = {2e-2, 2e-2, 3e-1, 5e-2, false, F16_K};

static void run_cuda_oracles(bg_t *tc, const char *stem, limits f32, limits f16)
{
    char missing[256];
    if (!zoo_has_cuda(missing, sizeof missing)) SKIP("no CUDA kernels yet for: %s", missing);
    run_oracle(tc, stem, BG_CUDA, BG_F32, f32);
    run_oracle(tc, stem, BG_CUDA, BG_F16, f16);
}

BG_GPU_TEST(model_oracle_cuda_senet18_w067) { run_cuda_oracles(tc, "senet18_w067_r2", CPU_F32, CUDA_F16); }
BG_GPU_TEST(model_oracle_cuda_resnet18) { run_cuda_oracles(tc, "resnet18_r2", CPU_F32, CUDA_F16); }
BG_GPU_TEST(model_oracle_cuda_resnest50d_1s4x24d)
{
    run_cuda_oracles(tc, "resnest50d_1s4x24d", RESNEST_F32, CUDA_F16_RESNEST);
}
