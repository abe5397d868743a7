/* GPU suite: whole training steps of the small CNN (models/small_cnn.c) on
 * synthetic batches.
 *  - CUDA (f32, CUDA graph) against the CPU: same initial weights (both are
 *    drawn on the host from the same seed), same batches, 6 SGD+momentum
 *    steps. Limits: every step's loss within 5e-3 relative, every parameter
 *    within normalised MSE 1e-4 at the end. Both run f32 math but in
 *    different orders (and the convolutions may use TF32 tensor cores), so
 *    bitwise agreement is not expected; a wrong kernel misses these limits by
 *    orders of magnitude.
 *  - determinism: two graph runs and one eager run (graph off) of the same
 *    steps give bit-identical losses and parameters; the graph is really
 *    used from the second step on.
 *  - mixed precision: f16 weights and activations, f32 masters, loss
 *    scaling; losses within 3e-2 relative of the f32 CPU run, no skipped
 *    step at a 2^10 scale, predictions work on the f16 eval graph. */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../train/step_cuda.h"
#include "../models/model.h"
#ifdef BG_WITH_CUDA
#include "../kernels/rtc/rtc.h"
#endif

#define B 32
#define HW 16
#define STEPS 6
#define SMALL_CNN "small_cnn:w=0.5" /* width 8 */
#define MAX_TENSORS 24   /* the small CNN's parameters and BN buffers */

typedef struct {
    float *x;
    int32_t *y;
} batches;

static void make_batches(batches *b)
{
    bg_ctx h;
    bg_test_ctx(&h, 99);
    int64_t n = (int64_t)STEPS * B * HW * HW * 3, m = (int64_t)STEPS * B;
    bg_tensor *x = bg_tensor_new(&h, BG_CPU, BG_F32, 1, &n, "x");
    bg_tensor *u = bg_tensor_new(&h, BG_CPU, BG_F64, 1, &m, "u");
    bg_tensor_fill_normal(&h, x, 0, 1);
    bg_tensor_fill_uniform(&h, u, 0, 1);
    b->x = malloc((size_t)n * sizeof *b->x);
    b->y = malloc((size_t)m * sizeof *b->y);
    memcpy(b->x, x->data, (size_t)n * sizeof *b->x);
    for (int64_t i = 0; i < m; i++) b->y[i] = (int32_t)(bg_get(u, i) * 10) % 10;
    bg_tensor_free(&h, x);
    bg_tensor_free(&h, u);
    bg_ctx_free(&h);
}


typedef struct {
    double loss[STEPS];
    bg_tensor *params[MAX_TENSORS]; /* host f32 copies at the end */
    int n;
    bg_trainer_cuda_status st;
} run_result;

static void free_result(bg_ctx *h, run_result *r)
{
    for (int i = 0; i < r->n; i++) bg_tensor_free(h, r->params[i]);
    r->n = 0;
}

/* Train STEPS steps on `device`; graph/amp for CUDA; rtc: the context's
 * NVRTC specialisation cache (NULL: precompiled kernels). */
static bool train_rtc(bg_t *tc, bg_ctx *h, bg_device device, bool graph, bool amp, const batches *data, run_result *out,
                      struct bg_rtc *rtc)
{
    memset(out, 0, sizeof *out);
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, device, 5)) {
        CHECK(false, "context: %s", bg_errmsg(&ctx));
        return false;
    }
    ctx.rtc = rtc;
    bg_model *m = NULL;
    bg_trainer tr = {0};
    bool ok = false;
    CHECK_OK(&ctx, bg_model_new(&ctx, device, SMALL_CNN, &m));
    if (tc->failures) goto out;
    if (amp) CHECK_OK(&ctx, bg_model_to(&ctx, m, device, BG_F16));
    bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
    oc.lr = 0.05, oc.momentum = 0.9, oc.weight_decay = 5e-4;
    CHECK_OK(&ctx, bg_trainer_init(&tr, &ctx, device, bg_model_forward, m, B, B, HW, HW, 3, &oc, 0.1f));
    if (device == BG_CUDA && !tc->failures) {
        bg_trainer_cuda_opts o = bg_trainer_cuda_defaults();
        o.graph = graph;
        o.amp = amp;
        o.scaler.scale = 1024;
        CHECK_OK(&ctx, bg_trainer_set_cuda(&tr, &o));
    }
    for (int s = 0; s < STEPS && !tc->failures; s++) {
        const float *x = data->x + (size_t)s * B * HW * HW * 3;
        CHECK_OK(&ctx, bg_trainer_step(&tr, x, data->y + (size_t)s * B, 0.05, &out->loss[s]));
        if (device == BG_CUDA) {
            bg_trainer_cuda_get_status(&tr, &out->st);
            if (graph && s >= 1)
                CHECK(out->st.graph_active, "step %d was not a graph replay: %s", s, out->st.graph_note);
        }
    }
    if (amp && !tc->failures) {
        int32_t pred[B];
        CHECK_OK(&ctx, bg_trainer_predict(&tr, data->x, B, pred));
        bool range = true;
        for (int i = 0; i < B; i++) range &= pred[i] >= 0 && pred[i] < 10;
        CHECK(range, "f16 predictions out of range");
    }
    if (tc->failures) goto out;
    /* parameters (and BN buffers) back as host f32 */
    for (int i = 0; i < m->n_sd && out->n < MAX_TENSORS; i++) {
        if (m->sd[i].kind == BG_SD_COUNTER) continue; /* the step count, a CPU integer */
        const bg_tensor *t = m->sd[i].t;
        bg_tensor *raw = bg_tensor_new(&ctx, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
        out->params[out->n] = bg_tensor_new(h, BG_CPU, BG_F32, t->ndim, t->shape, t->name);
        CHECK_OK(&ctx, bg_tensor_copy(&ctx, raw, t));
        CHECK_OK(h, bg_tensor_convert(h, out->params[out->n], raw));
        bg_tensor_free(&ctx, raw);
        out->n++;
    }
    ok = tc->failures == 0;
out:
    bg_trainer_free(&tr);
    bg_model_free(&ctx, m);
    bg_alloc_trim(&ctx, BG_CUDA);
    bg_ctx_free(&ctx);
    return ok;
}

static bool train(bg_t *tc, bg_ctx *h, bg_device device, bool graph, bool amp, const batches *data, run_result *out)
{
    return train_rtc(tc, h, device, graph, amp, data, out, NULL);
}

BG_GPU_TEST(gpu_train_small_cnn_matches_cpu)
{
    batches data;
    make_batches(&data);
    run_result cpu, gpu;
    bg_ctx h;
    bg_test_ctx(&h, 0);
    if (train(tc, &h, BG_CPU, false, false, &data, &cpu) && train(tc, &h, BG_CUDA, true, false, &data, &gpu)) {
        for (int s = 0; s < STEPS; s++)
            CHECK(fabs(gpu.loss[s] - cpu.loss[s]) <= 5e-3 * fabs(cpu.loss[s]), "step %d: loss %.7f on cuda, %.7f on cpu",
                  s, gpu.loss[s], cpu.loss[s]);
        for (int i = 0; i < cpu.n && i < gpu.n; i++) {
            double e = bg_nmse(gpu.params[i], cpu.params[i]);
            CHECK(e <= 1e-4, "'%s' after %d steps: nmse %.3g > 1e-4", cpu.params[i]->name, STEPS, e);
        }
        printf("    small CNN, %d steps: loss %.5f (cuda) vs %.5f (cpu); graph of %zu nodes\n", STEPS,
               gpu.loss[STEPS - 1], cpu.loss[STEPS - 1], gpu.st.graph_nodes);
    }
    free_result(&h, &cpu);
    free_result(&h, &gpu);
    free(data.x);
    free(data.y);
}

static bool identical(const run_result *a, const run_result *b)
{
    if (memcmp(a->loss, b->loss, sizeof a->loss) || a->n != b->n) return false;
    for (int i = 0; i < a->n; i++)
        if (memcmp(a->params[i]->data, b->params[i]->data, bg_nbytes(a->params[i]))) return false;
    return true;
}

BG_GPU_TEST(gpu_train_deterministic_graph_and_eager)
{
    batches data;
    make_batches(&data);
    run_result g1, g2, eager;
    bg_ctx h;
    bg_test_ctx(&h, 0);
    if (train(tc, &h, BG_CUDA, true, false, &data, &g1) && train(tc, &h, BG_CUDA, true, false, &data, &g2) &&
        train(tc, &h, BG_CUDA, false, false, &data, &eager)) {
        CHECK(identical(&g1, &g2), "two graph runs differ (non-deterministic kernels)");
        CHECK(identical(&g1, &eager), "graph replay and eager replay differ");
        CHECK(g1.st.captures == 1, "captured %lld times", (long long)g1.st.captures);
        CHECK(!eager.st.graph_active, "graph off, yet a graph replayed");
    }
    free_result(&h, &g1);
    free_result(&h, &g2);
    free_result(&h, &eager);
    free(data.x);
    free(data.y);
}

/* budgie train hands the context an NVRTC cache (recipe key rtc): the
 * specialised kernels take the precompiled ones' tiles and, in a
 * deterministic context, their split-K plan, so a training run is bit for
 * bit the same with and without it. */
BG_GPU_TEST(gpu_train_nvrtc_matches_precompiled)
{
#ifdef BG_WITH_CUDA
    batches data;
    make_batches(&data);
    run_result pre, spec;
    bg_ctx h;
    bg_test_ctx(&h, 0);
    bg_rtc *r = bg_rtc_new("");
    CHECK(r != NULL, "bg_rtc_new");
    if (r && train(tc, &h, BG_CUDA, true, false, &data, &pre) &&
        train_rtc(tc, &h, BG_CUDA, true, false, &data, &spec, r)) {
        CHECK(identical(&pre, &spec), "training with NVRTC-specialised kernels differs from the precompiled ones");
        int compiled = 0, disk = 0, mem = 0, failed = 0;
        bg_rtc_stats(r, &compiled, &disk, &mem, &failed);
        if (bg_rtc_available(r))
            CHECK(compiled > 0 && failed == 0, "nvrtc: %d compiled, %d failed", compiled, failed);
        else
            printf("    note: %s\n", bg_rtc_note(r) ? bg_rtc_note(r) : "NVRTC unavailable");
        printf("    small CNN, %d steps with NVRTC: %d kernels compiled, %d served from memory\n", STEPS, compiled, mem);
    }
    bg_rtc_free(r);
    free_result(&h, &pre);
    free_result(&h, &spec);
    free(data.x);
    free(data.y);
#else
    SKIP("CPU-only build");
#endif
}

BG_GPU_TEST(gpu_train_mixed_precision)
{
    batches data;
    make_batches(&data);
    run_result cpu, amp;
    bg_ctx h;
    bg_test_ctx(&h, 0);
    if (train(tc, &h, BG_CPU, false, false, &data, &cpu) && train(tc, &h, BG_CUDA, true, true, &data, &amp)) {
        CHECK(amp.st.amp && amp.st.skipped_steps == 0, "amp %d, %lld skipped steps at scale 2^10", amp.st.amp,
              (long long)amp.st.skipped_steps);
        for (int s = 0; s < STEPS; s++)
            CHECK(fabs(amp.loss[s] - cpu.loss[s]) <= 3e-2 * fabs(cpu.loss[s]), "step %d: loss %.5f (amp) vs %.5f (cpu)",
                  s, amp.loss[s], cpu.loss[s]);
        printf("    small CNN, amp: loss %.5f vs %.5f (cpu f32), loss scale %g\n", amp.loss[STEPS - 1],
               cpu.loss[STEPS - 1], amp.st.loss_scale);
    }
    free_result(&h, &cpu);
    free_result(&h, &amp);
    free(data.x);
    free(data.y);
}
