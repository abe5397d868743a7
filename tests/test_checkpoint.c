/* Checkpoints and resume (train/checkpoint.h, train/budget_run.h): a run of
 * 2N steps straight, and N steps + stop + checkpoint + a fresh process-like
 * restart (new context, model, trainer, loader) + N steps, give the same
 * per-step losses and the same final weights, bit for bit (CPU backend,
 * deterministic mode; CUDA in the GPU suite); with SGD+momentum and with
 * Adam, across an epoch boundary and a mid-epoch stop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../augment/loader.h"
#include "../engine/safetensors.h"
#include "../models/model.h"
#include "../train/checkpoint.h"
#include "../train/evaluate.h"
#include "harness.h"

#define N_IMG 64
#define BATCH 8          /* 8 steps per epoch */
#define STEPS 20         /* straight run: 2.5 epochs */

typedef struct {
    bg_loader *ld;
    double losses[STEPS];
    const char *ckpt;
    const bg_model *m;
    bg_ctx *ctx;
    char recipe[64];
} run_data;

static bg_status next_batch(void *d, int64_t e, int64_t k, int64_t s, float *x, int32_t *y)
{
    return bg_loader_next_batch(((run_data *)d)->ld, e, k, s, x, y);
}
static bg_status next_batch_device(void *d, int64_t e, int64_t k, int64_t s, bg_tensor *x, int32_t *y)
{
    return bg_loader_next_batch_device(((run_data *)d)->ld, e, k, s, x, y);
}
static bg_status evaluate(void *d, bg_trainer *tr, double *acc) { return bg_evaluate_loader(((run_data *)d)->ld, tr, acc); }
static void on_step(void *d, int64_t step, double loss)
{
    if (step >= 0 && step < STEPS) ((run_data *)d)->losses[step] = loss;
}
static bg_status save(void *d, bg_trainer *tr, const bg_run_position *pos)
{
    run_data *rd = d;
    bg_ckpt_meta meta = {.pos = *pos, .rng_offset = rd->ctx->rng_offset};
    snprintf(meta.recipe, sizeof meta.recipe, "%s", rd->recipe);
    return bg_ckpt_save(rd->ctx, rd->ckpt, rd->m, tr, &meta);
}

static void fill_dataset(bg_ctx *ctx, bg_dataset *ds, uint32_t seed)
{
    bg_dataset_alloc(ctx, ds, N_IMG, 8, 8, 3, "synthetic");
    bg_dataset_number_names(ctx, ds, 4);
    uint32_t r = seed;
    /* noise plus a per-class brightness and colour: learnable in a few steps */
    for (int64_t i = 0; i < N_IMG; i++) {
        const int label = (int)(i % 4);
        ds->labels[i] = label;
        uint8_t *px = bg_dataset_image(ds, i);
        for (int j = 0; j < 8 * 8 * 3; j++)
            px[j] = (uint8_t)(((r = r * 1664525u + 1013904223u) >> 26) + 50 * label + (j % 3 == label % 3 ? 40 : 0));
    }
}

/* The synthetic train and test sets every test here uses, and the plain
 * (normalise only) batch options that go with them. */
static bg_batch_opts make_data(bg_ctx *ctx, bg_dataset *train, bg_dataset *test)
{
    fill_dataset(ctx, train, 1);
    fill_dataset(ctx, test, 2);
    bg_batch_opts plain = {0};
    for (int c = 0; c < 4; c++) plain.mean[c] = 0.5f, plain.std[c] = 0.25f;
    return plain;
}

/* One "process": a run from `start` (or a resume from `resume`) to at most
 * max_steps; returns the final weights (host f32 copies, caller frees). */
static bool one_run_ex(bg_t *tc, bg_device dev, bool gpu_data, bg_optim_kind kind, const char *ckpt, bool resume,
                       int64_t max_steps, run_data *rd, float **weights, int64_t *n_weights)
{
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, dev, 7)) {
        CHECK(false, "context: %s", bg_errmsg(&ctx));
        return false;
    }
    bg_dataset train = {0}, test = {0};
    const bg_batch_opts plain = make_data(&ctx, &train, &test);
    bg_batch_opts aug = plain;
    aug.crop_pad = 2, aug.flip = true;
    bg_loader ld;
    bg_model *m = NULL;
    bg_trainer tr = {0};
    bool ok = false;
    bg_gpu_dataset gpu = {0};
    CHECK_OK(&ctx, bg_loader_init(&ld, &ctx, &train, &test, 0, 0, BATCH, &aug, &plain, 3));
    CHECK_OK(&ctx, bg_model_new(&ctx, dev, "small_cnn:w=0.25,classes=4,size=8", &m));
    if (gpu_data) {
        CHECK_OK(&ctx, bg_gpu_dataset_upload(&ctx, &train, &gpu));
        ld.gpu = &gpu;
    }
    if (tc->failures) goto out;
    bg_optim_config oc = bg_optim_defaults(kind);
    oc.lr = kind == BG_OPT_SGD ? 0.05 : 0.003;
    oc.weight_decay = 5e-4;
    if (kind == BG_OPT_SGD) oc.momentum = 0.9;
    CHECK_OK(&ctx, bg_trainer_init(&tr, &ctx, dev, bg_model_forward, m, BATCH, 16, 8, 8, 3, &oc, 0.0f));
    bg_run_position start = {0};
    if (resume) {
        bg_ckpt_meta meta;
        CHECK_OK(&ctx, bg_ckpt_read_meta(&ctx, ckpt, &meta));
        CHECK(!strcmp(meta.recipe, "test recipe"), "recipe text '%s'", meta.recipe);
        CHECK(!strcmp(meta.model, m->spec), "model '%s'", meta.model);
        CHECK_OK(&ctx, bg_ckpt_load_model(&ctx, ckpt, m));
        CHECK_OK(&ctx, bg_trainer_resume_from(&tr, ckpt));
        ctx.rng_offset = meta.rng_offset;
        start = meta.pos;
    }
    if (tc->failures) goto out;
    rd->ld = &ld, rd->ckpt = ckpt, rd->m = m, rd->ctx = &ctx;
    snprintf(rd->recipe, sizeof rd->recipe, "test recipe");
    bg_sched sc = bg_sched_make(BG_SCHED_COSINE, oc.lr);
    sc.t_max = STEPS;
    bg_run_config cfg = {.next_batch = next_batch, .next_batch_device = gpu_data ? next_batch_device : NULL,
                         .evaluate = evaluate, .checkpoint = save, .on_step = on_step,
                         .data = rd, .steps_per_epoch = bg_loader_steps_per_epoch(&ld), .budget_s = 600,
                         .max_steps = max_steps, .sched = sc, .eval_images = N_IMG, .start = start};
    bg_run_result res;
    CHECK_OK(&ctx, bg_run_budgeted(&ctx, &tr, &cfg, &res));
    CHECK(res.end.step == max_steps, "stopped at step %lld, want %lld", (long long)res.end.step, (long long)max_steps);
    /* the weights, as a PyTorch-layout host copy */
    int64_t total = 0;
    for (int i = 0; i < m->n_sd; i++)
        if (m->sd[i].kind != BG_SD_COUNTER) total += bg_numel(m->sd[i].t);
    *weights = malloc((size_t)total * sizeof **weights);
    *n_weights = total;
    int64_t at = 0;
    for (int i = 0; i < m->n_sd && *weights; i++) {
        if (m->sd[i].kind == BG_SD_COUNTER) continue;
        CHECK_OK(&ctx, bg_model_entry_torch(&ctx, &m->sd[i], false, *weights + at));
        at += bg_numel(m->sd[i].t);
    }
    ok = tc->failures == 0;
out:
    bg_trainer_free(&tr);
    bg_gpu_dataset_free(&ctx, &gpu);
    bg_model_free(&ctx, m);
    bg_loader_free(&ld);
    bg_dataset_free(&train);
    bg_dataset_free(&test);
    bg_ctx_free(&ctx);
    return ok;
}

static bool one_run(bg_t *tc, bg_device dev, bg_optim_kind kind, const char *ckpt, bool resume, int64_t max_steps,
                    run_data *rd, float **weights, int64_t *n_weights)
{
    return one_run_ex(tc, dev, false, kind, ckpt, resume, max_steps, rd, weights, n_weights);
}

static void resume_is_exact(bg_t *tc, bg_device dev, bg_optim_kind kind, int64_t stop_at)
{
    char ckpt[] = "/tmp/bg_ckpt_XXXXXX";
    int fd = mkstemp(ckpt);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    run_data a = {0}, b = {0};
    float *wa = NULL, *wb = NULL, *wc = NULL;
    int64_t na = 0, nb = 0;
    if (one_run(tc, dev, kind, ckpt, false, STEPS, &a, &wa, &na) &&
        one_run(tc, dev, kind, ckpt, false, stop_at, &b, &wc, &nb)) {
        free(wc);
        wc = NULL;
        if (one_run(tc, dev, kind, ckpt, true, STEPS, &b, &wb, &nb)) {
            int diff = 0;
            for (int i = 0; i < STEPS; i++) diff += memcmp(&a.losses[i], &b.losses[i], sizeof(double)) != 0;
            CHECK(diff == 0, "%s, stop at %lld: %d of %d step losses differ (step %lld: %.9g vs %.9g)",
                  bg_optim_name(kind), (long long)stop_at, diff, STEPS, (long long)stop_at, a.losses[stop_at],
                  b.losses[stop_at]);
            CHECK(na == nb && memcmp(wa, wb, (size_t)na * sizeof *wa) == 0, "%s: final weights differ",
                  bg_optim_name(kind));
            CHECK(a.losses[STEPS - 1] < a.losses[0], "the run learns nothing: loss %g -> %g", a.losses[0],
                  a.losses[STEPS - 1]);
        }
    }
    free(wa), free(wb);
    unlink(ckpt);
}

BG_TEST(checkpoint_resume_is_bitwise_sgd_epoch_boundary) { resume_is_exact(tc, BG_CPU, BG_OPT_SGD, 8); }
BG_TEST(checkpoint_resume_is_bitwise_sgd_mid_epoch) { resume_is_exact(tc, BG_CPU, BG_OPT_SGD, 11); }
BG_TEST(checkpoint_resume_is_bitwise_adam_mid_epoch) { resume_is_exact(tc, BG_CPU, BG_OPT_ADAM, 13); }
/* CUDA (deterministic mode, the step replayed as a CUDA graph after the
 * first): the resumed run records a new graph and must still match. */
BG_GPU_TEST(gpu_checkpoint_resume_is_bitwise) { resume_is_exact(tc, BG_CUDA, BG_OPT_SGD, 11); }

/* GPU-resident data: batches assembled and augmented on the device give the
 * run the host batches give, bit for bit (the kernels reproduce the CPU's
 * f32 values), step losses and final weights. */
BG_GPU_TEST(gpu_train_device_batches_match_host_batches)
{
    char ckpt[] = "/tmp/bg_ckpt_XXXXXX";
    int fd = mkstemp(ckpt);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    run_data a = {0}, b = {0};
    float *wa = NULL, *wb = NULL;
    int64_t na = 0, nb = 0;
    if (one_run_ex(tc, BG_CUDA, false, BG_OPT_SGD, ckpt, false, STEPS, &a, &wa, &na) &&
        one_run_ex(tc, BG_CUDA, true, BG_OPT_SGD, ckpt, false, STEPS, &b, &wb, &nb)) {
        int diff = 0;
        for (int i = 0; i < STEPS; i++) diff += memcmp(&a.losses[i], &b.losses[i], sizeof(double)) != 0;
        CHECK(diff == 0, "%d of %d step losses differ (step 0: %.9g vs %.9g)", diff, STEPS, a.losses[0], b.losses[0]);
        CHECK(na == nb && memcmp(wa, wb, (size_t)na * sizeof *wa) == 0, "final weights differ");
    }
    free(wa), free(wb);
    unlink(ckpt);
}

/* The validation split: k per class, disjoint from what is trained on, a
 * function of the seed. */
BG_TEST(loader_validation_split_is_disjoint)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_dataset train = {0}, test = {0};
    const bg_batch_opts plain = make_data(&ctx, &train, &test);
    bg_loader ld, ld2;
    CHECK_OK(&ctx, bg_loader_init(&ld, &ctx, &train, &test, 12, 0, 8, &plain, &plain, 5));
    CHECK_OK(&ctx, bg_loader_split_val(&ld, 3));
    CHECK(ld.n_val == 12 && ld.n_train == 36, "val %lld, train %lld", (long long)ld.n_val, (long long)ld.n_train);
    int per_class[4] = {0};
    for (int64_t i = 0; i < ld.n_val; i++) {
        per_class[train.labels[ld.val_idx[i]]]++;
        for (int64_t j = 0; j < ld.n_train; j++)
            CHECK(ld.train_idx[j] != ld.val_idx[i], "image %lld is in both splits", (long long)ld.val_idx[i]);
    }
    CHECK(per_class[0] == 3 && per_class[1] == 3 && per_class[2] == 3 && per_class[3] == 3, "per class %d %d %d %d",
          per_class[0], per_class[1], per_class[2], per_class[3]);
    CHECK_ERR(&ctx, bg_loader_split_val(&ld, 3), BG_ERR_ARG, "already carved");
    /* the same seed gives the same split */
    CHECK_OK(&ctx, bg_loader_init(&ld2, &ctx, &train, &test, 12, 0, 8, &plain, &plain, 5));
    CHECK_OK(&ctx, bg_loader_split_val(&ld2, 3));
    CHECK(ld2.n_val == ld.n_val && !memcmp(ld2.val_idx, ld.val_idx, (size_t)ld.n_val * sizeof *ld.val_idx),
          "the split is not a function of the seed");
    bg_loader_free(&ld2);
    /* too many per class: named */
    CHECK_OK(&ctx, bg_loader_init(&ld2, &ctx, &train, &test, 12, 0, 8, &plain, &plain, 5));
    CHECK_ERR(&ctx, bg_loader_split_val(&ld2, 12), BG_ERR_ARG, "leaves class 0 no training image");
    bg_loader_free(&ld2);
    float x[3 * 8 * 8 * 3];
    int32_t y[3];
    CHECK_OK(&ctx, bg_loader_val_batch(&ld, 0, 3, x, y));
    CHECK(y[0] == train.labels[ld.val_idx[0]], "val labels");
    CHECK_ERR(&ctx, bg_loader_val_batch(&ld, 11, 3, x, y), BG_ERR_ARG, "validation images 11..14 of 12");
    bg_loader_free(&ld);
    bg_dataset_free(&train);
    bg_dataset_free(&test);
    bg_ctx_free(&ctx);
}

typedef struct {
    bg_loader *ld;
    const double *val;       /* scripted validation accuracies, one per epoch */
    int n_eval;
    int64_t best_epochs[8];  /* epochs_done at each best checkpoint */
    int n_best;
} best_data;

static bg_status bd_batch(void *d, int64_t e, int64_t k, int64_t s, float *x, int32_t *y)
{
    return bg_loader_next_batch(((best_data *)d)->ld, e, k, s, x, y);
}
static bg_status bd_test(void *d, bg_trainer *tr, double *acc)
{
    best_data *bd = d;
    *acc = 1.0 - bd->val[bd->n_eval]; /* test moves the other way: selection must not look at it */
    return BG_OK;
}
static bg_status bd_val(void *d, bg_trainer *tr, double *acc)
{
    best_data *bd = d;
    *acc = bd->val[bd->n_eval++];
    return BG_OK;
}
static bg_status bd_best(void *d, bg_trainer *tr, const bg_run_position *pos)
{
    best_data *bd = d;
    if (bd->n_best < 8) bd->best_epochs[bd->n_best++] = pos->epochs_done;
    return BG_OK;
}

/* "best" follows the validation accuracy (0.5, 0.4, 0.6, 0.6: epochs 1 and 3),
 * or the test accuracy when asked (1 - those: epochs 1 and 2). */
BG_TEST(run_best_checkpoint_follows_the_selection_metric)
{
    for (int on_test = 0; on_test < 2; on_test++) {
        bg_ctx ctx;
        bg_test_ctx(&ctx, 1);
        bg_dataset train = {0}, test = {0};
        const bg_batch_opts plain = make_data(&ctx, &train, &test);
        bg_loader ld;
        bg_model *m = NULL;
        bg_trainer tr = {0};
        CHECK_OK(&ctx, bg_loader_init(&ld, &ctx, &train, &test, 0, 0, 32, &plain, &plain, 1));
        CHECK_OK(&ctx, bg_model_new(&ctx, BG_CPU, "small_cnn:w=0.25,classes=4,size=8", &m));
        bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
        oc.lr = 0.01;
        CHECK_OK(&ctx, bg_trainer_init(&tr, &ctx, BG_CPU, bg_model_forward, m, 32, 16, 8, 8, 3, &oc, 0.0f));
        const double val[4] = {0.5, 0.4, 0.6, 0.6};
        best_data bd = {.ld = &ld, .val = val};
        bg_run_config cfg = {.next_batch = bd_batch, .evaluate = bd_test, .validate = bd_val,
                             .checkpoint_best = bd_best, .select_on_test = on_test, .data = &bd,
                             .steps_per_epoch = 2, .budget_s = 600, .max_epochs = 4,
                             .sched = bg_sched_make(BG_SCHED_CONSTANT, 0.01), .eval_images = 64};
        bg_run_result res;
        if (!tc->failures) CHECK_OK(&ctx, bg_run_budgeted(&ctx, &tr, &cfg, &res));
        const int64_t want[2][2] = {{1, 3}, {1, 2}};
        CHECK(bd.n_best == 2 && bd.best_epochs[0] == want[on_test][0] && bd.best_epochs[1] == want[on_test][1],
              "select on %s: %d best checkpoints, after epochs %lld, %lld", on_test ? "test" : "val", bd.n_best,
              (long long)bd.best_epochs[0], (long long)bd.best_epochs[1]);
        CHECK(res.end.best_select == (on_test ? 0.6 : 0.6), "best_select %g", res.end.best_select);
        bg_trainer_free(&tr);
        bg_model_free(&ctx, m);
        bg_loader_free(&ld);
        bg_dataset_free(&train);
        bg_dataset_free(&test);
        bg_ctx_free(&ctx);
    }
}
