/* GPU suite: the fused CUDA optimizer update against the CPU update.
 *
 * f32 parameters: the CUDA kernel repeats optim_kernels.inc op for op with
 * correctly rounded f32 operations and no FMA contraction, so after every
 * step the parameters and every state buffer must equal the CPU's bit for
 * bit (all seven kinds, with their options). f16 parameters: the f32 master
 * must equal a CPU f32 run fed the same (f16-rounded) values, and the f16
 * parameter must be the master rounded to f16. Mixed precision: gradients
 * scaled by 2^10 and unscaled by the kernel give the unscaled result
 * exactly; a step flagged inf/NaN changes nothing. A parameter of 300,000
 * elements crosses several chunks of the multi-tensor launch. */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../engine/optim.h"
#ifdef BG_WITH_CUDA /* the whole file: it calls the CUDA runtime shim */
#include "../kernels/cuda_api.h"

#define NP 3
#define STEPS 4

static const int64_t SIZES[NP] = {300000, 15, 1};

typedef struct {
    const char *name;
    bg_optim_kind kind;
    const char *keys[6];
    double vals[6];
} opt_case;

static const opt_case CASES[] = {
    {"sgd", BG_OPT_SGD, {"lr"}, {0.1}},
    {"sgd_momentum_wd", BG_OPT_SGD, {"lr", "momentum", "dampening", "weight_decay"}, {0.05, 0.9, 0.1, 5e-4}},
    {"sgd_nesterov", BG_OPT_SGD, {"lr", "momentum", "nesterov"}, {0.05, 0.9, 1}},
    {"adam", BG_OPT_ADAM, {"lr"}, {1e-3}},
    {"adam_amsgrad_wd", BG_OPT_ADAM, {"lr", "amsgrad", "weight_decay"}, {2e-3, 1, 1e-2}},
    {"adamw", BG_OPT_ADAMW, {"lr"}, {1e-3}},
    {"adamw_amsgrad", BG_OPT_ADAMW, {"lr", "amsgrad", "weight_decay", "beta1"}, {1e-3, 1, 0.1, 0.8}},
    {"adamax_wd", BG_OPT_ADAMAX, {"lr", "weight_decay"}, {2e-3, 1e-2}},
    {"adagrad", BG_OPT_ADAGRAD, {"lr", "lr_decay", "initial_accumulator_value", "weight_decay"}, {1e-2, 1e-3, 0.1, 1e-3}},
    {"adadelta_wd", BG_OPT_ADADELTA, {"lr", "weight_decay", "rho"}, {1.0, 1e-2, 0.8}},
    {"asgd_averaging", BG_OPT_ASGD, {"lr", "t0", "weight_decay"}, {1e-2, 1, 1e-3}},
};

static bg_optim_config make_config(bg_t *tc, bg_ctx *ctx, const opt_case *c)
{
    bg_optim_config cfg = bg_optim_defaults(c->kind);
    for (int k = 0; k < 6 && c->keys[k]; k++) CHECK_OK(ctx, bg_optim_config_set(ctx, &cfg, c->keys[k], c->vals[k]));
    return cfg;
}

/* A CPU tensor of dtype dt filled from draws of `src` (f64 normal * scale). */
static bg_tensor *host_like(bg_ctx *ctx, bg_dtype dt, const bg_tensor *src, const char *name)
{
    bg_tensor *t = bg_tensor_new(ctx, BG_CPU, dt, src->ndim, src->shape, name);
    if (t) bg_tensor_convert(ctx, t, src);
    return t;
}

static bool same_bytes(bg_ctx *gpu, const bg_tensor *dev, const bg_tensor *host)
{
    size_t n = bg_nbytes(host);
    void *buf = malloc(n);
    bool ok = buf && bg_tensor_download(gpu, dev, buf, n) == BG_OK && memcmp(buf, host->data, n) == 0;
    free(buf);
    return ok;
}

/* One configuration, f32 parameters on both backends; grads scaled by
 * `gscale` on the GPU and unscaled by the kernel through inv_scale. */
static void run_f32(bg_t *tc, const opt_case *c, double gscale)
{
    bg_ctx cpu, gpu;
    bg_test_ctx(&cpu, 11);
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 11));
    if (tc->failures) return;
    bg_optim_config cfg = make_config(tc, &cpu, c);
    bg_tensor *hp[NP], *dp[NP], *draw[NP];
    for (int i = 0; i < NP; i++) {
        draw[i] = bg_tensor_new(&cpu, BG_CPU, BG_F64, 1, &SIZES[i], "draw");
        bg_tensor_fill_normal(&cpu, draw[i], 0, 1);
        hp[i] = host_like(&cpu, BG_F32, draw[i], "p");
        dp[i] = bg_tensor_new(&gpu, BG_CUDA, BG_F32, 1, &SIZES[i], "p");
        CHECK_OK(&gpu, bg_tensor_copy(&gpu, dp[i], hp[i]));
        hp[i]->is_param = dp[i]->is_param = true;
    }
    bg_optim *ho = NULL, *dopt = NULL;
    CHECK_OK(&cpu, bg_optim_new(&cpu, &cfg, hp, NP, &ho));
    CHECK_OK(&gpu, bg_optim_new(&gpu, &cfg, dp, NP, &dopt));
    float *scale_dev = NULL;
    if (gscale != 1.0 && !tc->failures) {
        float inv = (float)(1.0 / gscale);
        char err[200];
        CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, sizeof inv, "inv_scale", (void **)&scale_dev));
        if (scale_dev)
            CHECK(bg_cuda_memcpy(scale_dev, &inv, sizeof inv, BG_COPY_H2D, gpu.stream, err, sizeof err) == 0, "%s", err);
    }
    for (int step = 0; step < STEPS && !tc->failures; step++) {
        for (int i = 0; i < NP; i++) {
            CHECK_OK(&cpu, bg_tensor_ensure_grad(&cpu, hp[i]));
            CHECK_OK(&gpu, bg_tensor_ensure_grad(&gpu, dp[i]));
            bg_tensor_fill_normal(&cpu, draw[i], 0, 1);
            bg_tensor_convert(&cpu, hp[i]->grad, draw[i]);
            bg_tensor *scaled = bg_tensor_new(&cpu, BG_CPU, BG_F32, 1, &SIZES[i], "g");
            for (int64_t j = 0; j < SIZES[i]; j++) bg_set(scaled, j, bg_get(hp[i]->grad, j) * gscale);
            CHECK_OK(&gpu, bg_tensor_copy(&gpu, dp[i]->grad, scaled));
            bg_tensor_free(&cpu, scaled);
        }
        CHECK_OK(&cpu, bg_optim_step(&cpu, ho));
        if (gscale == 1.0) {
            CHECK_OK(&gpu, bg_optim_step(&gpu, dopt));
        } else {
            CHECK_OK(&gpu, bg_optim_cuda_prepare(&gpu, dopt, NULL));
            CHECK_OK(&gpu, bg_optim_cuda_launch(&gpu, dopt, scale_dev, NULL));
            bg_optim_cuda_commit(dopt, true);
        }
        for (int i = 0; i < NP; i++) {
            CHECK(same_bytes(&gpu, dp[i], hp[i]), "%s step %d: parameter %d differs from the CPU", c->name, step, i);
            CHECK(bg_optim_param_steps(dopt, i) == bg_optim_param_steps(ho, i), "%s: step counts differ", c->name);
        }
        bg_tensor *hs[16], *ds[16];
        int nh = bg_optim_state(ho, hs, 16), nd = bg_optim_state(dopt, ds, 16);
        CHECK(nh == nd, "%s: %d state tensors on the CPU, %d on CUDA", c->name, nh, nd);
        for (int k = 0; k < nh - 1 && k < nd - 1; k++) /* the last is the host scalars */
            CHECK(same_bytes(&gpu, ds[k], hs[k]), "%s step %d: state '%s' differs from the CPU", c->name, step,
                  hs[k]->name);
        if (tc->failures) break;
    }
    if (scale_dev) bg_free(&gpu, BG_CUDA, scale_dev, sizeof(float));
    bg_optim_free(&cpu, ho);
    bg_optim_free(&gpu, dopt);
    for (int i = 0; i < NP; i++) {
        bg_tensor_free(&cpu, hp[i]);
        bg_tensor_free(&gpu, dp[i]);
        bg_tensor_free(&cpu, draw[i]);
    }
    bg_alloc_trim(&gpu, BG_CUDA);
    bg_ctx_free(&gpu);
}

BG_GPU_TEST(gpu_optim_f32_bitwise_equal_to_cpu)
{
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0] && !tc->failures; k++) run_f32(tc, &CASES[k], 1.0);
}

BG_GPU_TEST(gpu_optim_unscales_gradients_exactly)
{
    /* 2^10 is a power of two: g * 2^10 * 2^-10 == g exactly */
    run_f32(tc, &CASES[1], 1024.0);
    run_f32(tc, &CASES[4], 1024.0);
}

/* f16 parameters and grads: master == CPU f32 run on the f16-rounded values. */
BG_GPU_TEST(gpu_optim_f16_master_weights)
{
    bg_ctx cpu, gpu;
    bg_test_ctx(&cpu, 12);
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 12));
    if (tc->failures) return;
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0] && !tc->failures; k++) {
        const opt_case *c = &CASES[k];
        bg_optim_config cfg = make_config(tc, &cpu, c);
        bg_tensor *hp[NP], *dp[NP], *h16[NP];
        for (int i = 0; i < NP; i++) {
            bg_tensor *d = bg_tensor_new(&cpu, BG_CPU, BG_F64, 1, &SIZES[i], "draw");
            bg_tensor_fill_normal(&cpu, d, 0, 1);
            h16[i] = host_like(&cpu, BG_F16, d, "p16");
            hp[i] = host_like(&cpu, BG_F32, h16[i], "p");
            dp[i] = bg_tensor_new(&gpu, BG_CUDA, BG_F16, 1, &SIZES[i], "p");
            CHECK_OK(&gpu, bg_tensor_copy(&gpu, dp[i], h16[i]));
            bg_tensor_free(&cpu, d);
        }
        bg_optim *ho = NULL, *dopt = NULL;
        CHECK_OK(&cpu, bg_optim_new(&cpu, &cfg, hp, NP, &ho));
        CHECK_OK(&gpu, bg_optim_new(&gpu, &cfg, dp, NP, &dopt));
        for (int step = 0; step < STEPS && !tc->failures; step++) {
            for (int i = 0; i < NP; i++) {
                bg_tensor *d = bg_tensor_new(&cpu, BG_CPU, BG_F64, 1, &SIZES[i], "draw");
                bg_tensor_fill_normal(&cpu, d, 0, 1);
                bg_tensor *g16 = host_like(&cpu, BG_F16, d, "g16");
                CHECK_OK(&cpu, bg_tensor_ensure_grad(&cpu, hp[i]));
                CHECK_OK(&gpu, bg_tensor_ensure_grad(&gpu, dp[i]));
                bg_tensor_convert(&cpu, hp[i]->grad, g16);
                CHECK_OK(&gpu, bg_tensor_copy(&gpu, dp[i]->grad, g16));
                bg_tensor_free(&cpu, d);
                bg_tensor_free(&cpu, g16);
            }
            CHECK_OK(&cpu, bg_optim_step(&cpu, ho));
            CHECK_OK(&gpu, bg_optim_step(&gpu, dopt));
            for (int i = 0; i < NP; i++) {
                bg_tensor *m = bg_optim_master(dopt, i);
                CHECK(m && same_bytes(&gpu, m, hp[i]), "%s step %d: master %d differs from the CPU f32 run", c->name,
                      step, i);
                bg_tensor *want16 = host_like(&cpu, BG_F16, hp[i], "want16");
                CHECK(same_bytes(&gpu, dp[i], want16), "%s step %d: f16 copy %d is not the rounded master", c->name,
                      step, i);
                bg_tensor_free(&cpu, want16);
            }
        }
        bg_optim_free(&cpu, ho);
        bg_optim_free(&gpu, dopt);
        for (int i = 0; i < NP; i++) {
            bg_tensor_free(&cpu, hp[i]);
            bg_tensor_free(&cpu, h16[i]);
            bg_tensor_free(&gpu, dp[i]);
        }
    }
    bg_alloc_trim(&gpu, BG_CUDA);
    bg_ctx_free(&gpu);
}

/* A step flagged by the inf/NaN check changes nothing; the check finds a
 * single NaN among 300,000 elements and leaves clean grads unflagged. */
BG_GPU_TEST(gpu_optim_nonfinite_step_is_skipped)
{
    bg_ctx gpu;
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 13));
    if (tc->failures) return;
    bg_optim_config cfg = bg_optim_defaults(BG_OPT_ADAM);
    bg_tensor *p = bg_tensor_new(&gpu, BG_CUDA, BG_F32, 1, &SIZES[0], "p");
    CHECK_OK(&gpu, bg_tensor_fill_normal(&gpu, p, 0, 1));
    CHECK_OK(&gpu, bg_tensor_ensure_grad(&gpu, p));
    CHECK_OK(&gpu, bg_tensor_fill_normal(&gpu, p->grad, 0, 1));
    bg_optim *o = NULL;
    CHECK_OK(&gpu, bg_optim_new(&gpu, &cfg, &p, 1, &o));
    int32_t *found = NULL;
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, sizeof *found, "found_inf", (void **)&found));
    if (tc->failures) return;
    size_t nb = bg_nbytes(p);
    float *before = malloc(nb), *after = malloc(nb);
    char err[200];
    int32_t f = -1;
    /* clean grads: not flagged, the step runs */
    CHECK_OK(&gpu, bg_optim_cuda_prepare(&gpu, o, NULL));
    CHECK(bg_cuda_memset(found, 0, sizeof *found, gpu.stream, err, sizeof err) == 0, "%s", err);
    CHECK_OK(&gpu, bg_optim_cuda_check_finite(&gpu, o, NULL, found));
    CHECK(bg_cuda_memcpy(&f, found, sizeof f, BG_COPY_D2H, gpu.stream, err, sizeof err) == 0, "%s", err);
    CHECK(f == 0, "clean gradients flagged (%d)", (int)f);
    /* one NaN far into the tensor: flagged, and the update does nothing */
    float nan = NAN;
    CHECK(bg_cuda_memcpy((float *)p->grad->data + 250001, &nan, sizeof nan, BG_COPY_H2D, gpu.stream, err, sizeof err) == 0,
          "%s", err);
    CHECK_OK(&gpu, bg_tensor_download(&gpu, p, before, nb));
    CHECK(bg_cuda_memset(found, 0, sizeof *found, gpu.stream, err, sizeof err) == 0, "%s", err);
    CHECK_OK(&gpu, bg_optim_cuda_check_finite(&gpu, o, NULL, found));
    CHECK_OK(&gpu, bg_optim_cuda_launch(&gpu, o, NULL, found));
    CHECK(bg_cuda_memcpy(&f, found, sizeof f, BG_COPY_D2H, gpu.stream, err, sizeof err) == 0, "%s", err);
    CHECK(f == 1, "a NaN gradient was not flagged (%d)", (int)f);
    bg_optim_cuda_commit(o, f == 0);
    CHECK_OK(&gpu, bg_tensor_download(&gpu, p, after, nb));
    CHECK(memcmp(before, after, nb) == 0, "a skipped step changed the parameter");
    CHECK(bg_optim_param_steps(o, 0) == 0, "a skipped step advanced the step count to %lld",
          (long long)bg_optim_param_steps(o, 0));
    free(before);
    free(after);
    bg_free(&gpu, BG_CUDA, found, sizeof *found);
    bg_optim_free(&gpu, o);
    bg_tensor_free(&gpu, p);
    bg_alloc_trim(&gpu, BG_CUDA);
    bg_ctx_free(&gpu);
}
#endif
