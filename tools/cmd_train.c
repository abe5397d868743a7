/* budgie train [RECIPE] [--key value ...]: a budgeted training run. The
 * recipe (train/recipe.h) is read and every override checked, the model spec
 * parsed, the budget converted and the run folder created before any data is
 * read; the budget counts from the moment this verb starts, and the loop
 * keeps the time of the final save free. */
#include <errno.h>
#include <signal.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../augment/data_source.h"
#include "../augment/jpeg_data.h"
#include "../augment/loader.h"
#include "../engine/version.h"
#include "../models/model.h"
#include "../train/budget_run.h"
#include "../train/checkpoint.h"
#include "../train/ensemble.h"
#include "../train/profile.h"
#include "../train/evaluate.h"
#include "../train/recipe.h"
#include "../train/step_cuda.h"
#include "verbs.h"
#ifdef BG_WITH_CUDA
#include "../kernels/rtc/rtc.h"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: budgie train [RECIPE] [--key value | --key=value ...] [--print-recipe]\n"
            "       budgie train --resume RUN_DIR [--budget B] [--epochs N] [--checkpoint-every S]\n"
            "\n"
            "A budgeted training run. RECIPE is a `key = value` file (recipes/default, recipes/haet2021, rcv2023),\n"
            "or the name of one in recipes/; without it the built-in defaults run (a short HAET-style\n"
            "run of the small CNN). Any key can be overridden on the command line ('-' or '_' in names).\n"
            "Every key is checked, the model spec parsed and the run folder created before any data is\n"
            "read; a bad value exits with status 2 and names the key. The budget bounds the whole run,\n"
            "from start to the last byte of the saved weights. --print-recipe prints the resolved recipe\n"
            "and exits. The run folder gets recipe.txt, log.jsonl and last.safetensors: a checkpoint after\n"
            "every epoch (and every --checkpoint-every seconds), holding the model (PyTorch names; leave\n"
            "out the 'optim.' entries to load it as weights), the optimizer state and the run position.\n"
            "SIGINT or SIGTERM finishes the step in flight, writes the checkpoint and exits (status 130\n"
            "or 143); --resume RUN_DIR goes on from it, bit for bit on the CPU, within the same budget\n"
            "(the run's total, which --budget may raise).\n"
            "\n"
            "keys:\n");
    bg_recipe_help(f);
}

/* "train_per_class" from "--train-per-class" (or "--train_per_class"). */
static void key_of(const char *opt, char *key, size_t cap)
{
    snprintf(key, cap, "%.*s", (int)(cap - 1), opt + 2);
    for (char *p = key; *p; p++)
        if (*p == '-') *p = '_';
}

/* The recipe file a positional argument names: a path, or a name in recipes/. */
static const char *recipe_path(const char *arg, char *buf, size_t cap)
{
    struct stat st;
    if (stat(arg, &st) == 0 || strchr(arg, '/')) return arg;
    snprintf(buf, cap, "recipes/%s", arg);
    return stat(buf, &st) == 0 ? buf : arg;
}

static bool mkdirs(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return false;
            *p = '/';
        }
    return mkdir(buf, 0777) == 0 || errno == EEXIST;
}

/* The run folder: created new (an older run's folder is never reused, so
 * nothing in it can pass for this run's output), with the recipe written
 * into it, atomically. Fails before any data is read. */
static bg_status make_run_dir(bg_ctx *ctx, bg_recipe *r)
{
    if (!r->out[0]) {
        char stamp[32], model[48];
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
        snprintf(model, sizeof model, "%.*s", (int)sizeof model - 1, r->model);
        for (char *p = model; *p; p++)
            if (*p == ':' || *p == ',' || *p == '=' || *p == '/') *p = *p == ':' ? '-' : '_';
        snprintf(r->out, sizeof r->out, "runs/%s-%s-%d", stamp, model, (int)getpid());
    }
    char path[600], tmp[620];
    snprintf(path, sizeof path, "%s/recipe.txt", r->out);
    struct stat st;
    if (stat(path, &st) == 0)
        return bg_fail(ctx, BG_ERR_ARG, "out: %s already holds a run (%s); give a new folder", r->out, path);
    if (!mkdirs(r->out)) return bg_fail(ctx, BG_ERR_IO, "out: cannot create the run folder %s: %s", r->out, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "out: cannot write in %s: %s", r->out, strerror(errno));
    bg_recipe_write(r, f);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return bg_fail(ctx, BG_ERR_IO, "out: cannot write %s: %s", path, strerror(errno));
    }
    return BG_OK;
}

/* Cleared before any other output, so log lines never mix with it. */
static volatile int progress_shown;

static void clear_progress(void)
{
    if (progress_shown) fputs("\r\033[K", stderr), progress_shown = 0;
}

/* A FILE that writes to both the terminal and the run's log.jsonl: every
 * JSON line of a run goes through it (bg_run_log_json's, from the run loop and from here). */
typedef struct {
    FILE *a, *b;
} tee;

static ssize_t tee_write(void *c, const char *buf, size_t n)
{
    tee *t = c;
    clear_progress();
    /* the run's own file first: a reader gone from stdout must not cost the log */
    if (t->b) fwrite(buf, 1, n, t->b), fflush(t->b);
    if (t->a) fwrite(buf, 1, n, t->a), fflush(t->a);
    return (ssize_t)n;
}

/* Set by SIGINT/SIGTERM: the run loop finishes its step, checkpoints and
 * returns. A signal handler can only reach static storage; this is the
 * command line's, not the library's. */
static volatile sig_atomic_t stop_signal;
static volatile int stop_flag;

static void on_signal(int sig)
{
    stop_signal = sig;
    stop_flag = 1;
}

typedef struct {
    bg_loader *ld;
    bg_jpeg_data *jd;          /* the jpeg-folder path's data (NULL on the memory path) */
    bg_eval_set test_set, val_set;
    bg_trainer *etr;           /* the eval-only trainer at test_size (NULL: the training trainer evaluates) */
    bg_model *model;
    bg_ctx *ctx;
    const char *path, *best_path;
    const char *recipe_text;
    bg_device device;
    /* the live progress line (a terminal on stderr only) */
    bool progress;
    int64_t steps_per_epoch;
    double t0, budget, elapsed_before, last_draw;
} ckpt_data;

static void on_step(void *d, int64_t step, double loss)
{
    ckpt_data *cd = d;
    if (!cd->progress) return;
    const double now = bg_monotonic_s(), elapsed = cd->elapsed_before + now - cd->t0;
    if (now - cd->last_draw < 0.25) return;
    cd->last_draw = now;
    fprintf(stderr, "\r\033[Kepoch %lld, step %lld/%lld: loss %.4f, %.0f of %.0f s",
            (long long)(step / cd->steps_per_epoch + 1), (long long)(step % cd->steps_per_epoch + 1),
            (long long)cd->steps_per_epoch, loss, elapsed, cd->budget);
    fflush(stderr);
    progress_shown = 1;
}

static void log_extra(void *d, bg_trainer *tr, void *obj)
{
    ckpt_data *cd = d;
    json_t *o = obj;
    json_object_set_new(o, "mem_peak_bytes", json_integer((json_int_t)cd->ctx->alloc[cd->device].peak));
    bg_loss_scaler *sc = bg_trainer_cuda_scaler(tr);
    if (sc) json_object_set_new(o, "loss_scale", json_real(sc->scale));
}

static bg_status next_batch(void *d, int64_t e, int64_t k, int64_t s, float *x, int32_t *y)
{
    ckpt_data *cd = d;
    if (cd->jd) return bg_jpeg_data_next_batch(cd->jd, e, k, x, y);
    return bg_loader_next_batch(cd->ld, e, k, s, x, y);
}

static bg_status next_batch_device(void *d, int64_t e, int64_t k, int64_t s, bg_tensor *x, int32_t *y)
{
    return bg_loader_next_batch_device(((ckpt_data *)d)->ld, e, k, s, x, y);
}

static bg_status evaluate(void *d, bg_trainer *tr, double *acc)
{
    ckpt_data *cd = d;
    return bg_evaluate_set(&cd->test_set, cd->etr ? cd->etr : tr, acc);
}

static bg_status validate(void *d, bg_trainer *tr, double *acc)
{
    ckpt_data *cd = d;
    return bg_evaluate_set(&cd->val_set, cd->etr ? cd->etr : tr, acc);
}

static bg_status save_to(ckpt_data *cd, const char *path, bg_trainer *tr, const bg_run_position *pos);

static bg_status save_checkpoint(void *d, bg_trainer *tr, const bg_run_position *pos)
{
    return save_to(d, ((ckpt_data *)d)->path, tr, pos);
}

static bg_status save_best(void *d, bg_trainer *tr, const bg_run_position *pos)
{
    return save_to(d, ((ckpt_data *)d)->best_path, tr, pos);
}

static bg_status save_to(ckpt_data *cd, const char *path, bg_trainer *tr, const bg_run_position *pos)
{
    if (pos->step == 0) return BG_OK; /* nothing trained: nothing worth a file */
    bg_ckpt_meta *meta = calloc(1, sizeof *meta);
    if (!meta) return bg_fail(cd->ctx, BG_ERR_OOM, "checkpoint: out of host memory");
    meta->pos = *pos;
    meta->rng_offset = cd->ctx->rng_offset;
    bg_loss_scaler *sc = bg_trainer_cuda_scaler(tr);
    if (sc) meta->has_scaler = true, meta->scaler = *sc;
    snprintf(meta->recipe, sizeof meta->recipe, "%s", cd->recipe_text);
    bg_status s = bg_ckpt_save(cd->ctx, path, cd->model, tr, meta);
    free(meta);
    return s;
}

/* The final test-time ensemble (keys tta, test_sizes, tta_average) of a
 * checkpoint: a fresh f32 model loaded from the file and scored by the code
 * `budgie eval` runs (train/ensemble.h), with the run's evaluation batch, so
 * `budgie eval RUN --tta flip --sizes ...` reports the same accuracy. */
static bg_status final_ensemble(bg_ctx *ctx, bg_device device, const bg_recipe *r, const char *spec, const char *ckpt,
                                const bg_eval_set *set, double *top1, int *views)
{
    int sizes[4], n = 0;
    for (int i = 0; i < r->n_test_sizes && i < 4; i++) sizes[n++] = (int)r->test_sizes[i];
    if (!n) sizes[n++] = set->h;
    double *scores = calloc((size_t)set->n * set->k + 1, sizeof *scores);
    int32_t *labels = malloc((size_t)set->n * sizeof *labels + 1);
    bg_model *m = NULL;
    bg_metrics mt = {0};
    bg_status s = scores && labels ? BG_OK : bg_fail(ctx, BG_ERR_OOM, "ensemble: out of host memory for %lld test images",
                                                     (long long)set->n);
    if (!s) s = bg_model_new(ctx, device, spec, &m);
    if (!s) s = bg_ckpt_load_model(ctx, ckpt, m);
    if (!s) s = bg_ensemble_scores(ctx, device, bg_model_forward, m, set, sizes, n, !strcmp(r->tta, "flip"),
                                   !strcmp(r->tta_average, "logits"), (int)r->eval_batch, scores, labels, views);
    if (!s) s = bg_metrics_compute(ctx, scores, labels, set->n, set->k, &mt);
    if (!s) *top1 = mt.top1;
    bg_metrics_free(&mt);
    bg_model_free(ctx, m);
    free(scores), free(labels);
    return s;
}

int bg_cmd_train(int argc, char **argv)
{
    /* the budget bounds the whole process: its clock starts at exec, not here */
    const double t0 = bg_monotonic_s() - bg_process_age_s();
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, 0);
    bg_recipe r;
    bg_recipe_defaults(&r);
    bool print_only = false;
    char buf[600], key[64], resume_dir[512] = "", ckpt_path[620] = "";
    bg_ckpt_meta *resume = NULL;
    /* 1. the recipe file (or the resumed run's), then the overrides, in order */
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--resume")) {
        snprintf(resume_dir, sizeof resume_dir, "%s", argv[2]);
        snprintf(ckpt_path, sizeof ckpt_path, "%s/last.safetensors", resume_dir);
        if (!(resume = calloc(1, sizeof *resume))) {
            bg_fail(&ctx, BG_ERR_OOM, "out of host memory");
            goto usage_error;
        }
        /* the checkpoint's recipe: the run's, with any "auto" resolved */
        if (bg_ckpt_read_meta(&ctx, ckpt_path, resume)) goto usage_error;
        if (bg_recipe_load_text(&ctx, &r, resume->recipe, ckpt_path)) goto usage_error;
        first = 3;
    } else if (argc > 1 && argv[1][0] != '-') {
        if (bg_recipe_load(&ctx, &r, recipe_path(argv[1], buf, sizeof buf))) goto usage_error;
        first = 2;
    }
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            bg_ctx_free(&ctx);
            return 0;
        }
        if (!strcmp(a, "--print-recipe")) {
            print_only = true;
            continue;
        }
        if (!strcmp(a, "--resume")) {
            bg_fail(&ctx, BG_ERR_ARG, "--resume RUN_DIR comes first, alone with --budget or --epochs");
            goto usage_error;
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            bg_fail(&ctx, BG_ERR_ARG, "'%s': expected --key value (a recipe file comes first)", a);
            goto usage_error;
        }
        const char *eq = strchr(a, '='), *v;
        if (eq) {
            snprintf(buf, sizeof buf, "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(buf, sizeof buf, "%s", a);
            if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) {
                bg_fail(&ctx, BG_ERR_ARG, "%s needs a value%s%s%s", a, i + 1 < argc ? " (got the option '" : "",
                        i + 1 < argc ? argv[i + 1] : "", i + 1 < argc ? "')" : "");
                goto usage_error;
            }
            v = argv[++i];
        }
        key_of(buf, key, sizeof key);
        if (resume && strcmp(key, "budget") && strcmp(key, "epochs") && strcmp(key, "checkpoint_every")) {
            bg_fail(&ctx, BG_ERR_ARG, "%s: a resumed run keeps its recipe (the one in %s); only --budget, "
                    "--epochs and --checkpoint-every may change", buf, ckpt_path);
            goto usage_error;
        }
        if (bg_recipe_set(&ctx, &r, key, v, buf)) goto usage_error;
    }
    /* 2. checks that need no data: keys together, the model spec, the device, the budget */
    if (bg_recipe_check(&ctx, &r)) goto usage_error;
    if (bg_model_spec_check(&ctx, r.model)) {
        char m[sizeof ctx.err];
        snprintf(m, sizeof m, "%s", bg_errmsg(&ctx));
        bg_fail(&ctx, BG_ERR_ARG, "model: %s", m);
        goto usage_error;
    }
    const bool has_cuda = bg_cuda_available();
    if (!strcmp(r.device, "cuda") && !has_cuda) {
        char d[256];
        bg_device_describe(d, sizeof d);
        bg_fail(&ctx, BG_ERR_ARG, "device: cuda was asked for, but %s", d);
        goto usage_error;
    }
    const bg_device device = !strcmp(r.device, "cpu") ? BG_CPU : !strcmp(r.device, "cuda") || has_cuda ? BG_CUDA : BG_CPU;
    if (!strcmp(r.precision, "amp") && device != BG_CUDA) {
        bg_fail(&ctx, BG_ERR_ARG, "precision: amp needs a CUDA device (this run is on the CPU)");
        goto usage_error;
    }
    double budget = r.budget_s;
    char budget_note[320] = "";
    if (r.budget_gpu[0]) {
        char d[256];
        bg_device_describe(d, sizeof d);
        const double ref = bg_gpu_speed(r.budget_gpu), here = device == BG_CUDA ? bg_gpu_speed(d) : 0;
        if (device == BG_CUDA && here <= 0) {
            bg_fail(&ctx, BG_ERR_ARG, "budget %s: this GPU is not in the throughput table (%s; known: %s); give the "
                    "budget in seconds", r.budget, d, bg_gpu_speed_names());
            goto usage_error;
        }
        if (device == BG_CUDA) {
            budget = r.budget_s * ref / here;
            snprintf(budget_note, sizeof budget_note, "%s = %.0f s of a %s, %.1f s here (throughput ratio %.2f, "
                     "ResNet-50 AMP images/s, Lambda benchmark)", r.budget, r.budget_s, r.budget_gpu, budget, here / ref);
        } else {
            snprintf(budget_note, sizeof budget_note, "%s: no GPU here, so the %s's %.0f s are taken as wall time on "
                     "this CPU", r.budget, r.budget_gpu, r.budget_s);
        }
    } else {
        snprintf(budget_note, sizeof budget_note, "%.1f s of wall time", budget);
    }
    if (print_only) {
        bg_recipe_write(&r, stdout);
        bg_ctx_free(&ctx);
        return 0;
    }
    if (resume) snprintf(r.out, sizeof r.out, "%s", resume_dir);
    else if (make_run_dir(&ctx, &r)) goto usage_error;
    if (!resume) snprintf(ckpt_path, sizeof ckpt_path, "%s/last.safetensors", r.out);
    bg_ctx_free(&ctx);

    /* 3. the run. `budgie train | head` must not kill it when head exits:
     * writes to a closed pipe fail instead, and the run goes on to its
     * checkpoint and its log file. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    bg_dataset train = {0}, test = {0};
    bg_loader ld = {0};
    bg_jpeg_data jd = {0};
    const bool jpeg = bg_recipe_is_jpeg(&r);
    int in_h = 0, in_w = 0, in_c = 0, n_classes = 0;
    const int test_side = (int)(r.test_size > 0 ? r.test_size : r.train_size);
    int64_t n_train = 0, n_val = 0, n_test = 0, spe = 0;
    bg_trainer tr = {0}, etr = {0};
    bg_gpu_dataset gpu_ds = {0};
    bg_model *model = NULL;
    FILE *logf = NULL, *tee_f = NULL;
    tee tt = {stdout, NULL};
    int rc = 1;
    const char *fmt = "";
    char *rtext = NULL; /* the recipe as the checkpoints keep it: after the profile resolved any "auto" */
    const char *weights = ckpt_path;
    if (bg_ctx_init(&ctx, device, (uint64_t)r.seed)) goto fail;
#ifdef BG_WITH_CUDA
    /* specialised kernels take the precompiled ones' tiles and plans: same bits, fewer integer divisions */
    if (device == BG_CUDA && strcmp(r.rtc, "off")) ctx.rtc = bg_rtc_new(NULL);
#endif
    /* the cap bounds the run device's allocator (on the CPU: every tensor the engine holds) */
    if (r.mem_cap > 0) ctx.alloc[device].cap = (size_t)r.mem_cap;
    snprintf(buf, sizeof buf, "%s/log.jsonl", r.out);
    if (!(logf = fopen(buf, resume ? "a" : "w"))) {
        bg_fail(&ctx, BG_ERR_IO, "cannot open %s: %s", buf, strerror(errno));
        goto fail;
    }
    tt.b = logf;
    cookie_io_functions_t io = {.write = tee_write};
    if (!(tee_f = fopencookie(&tt, "w", io))) {
        bg_fail(&ctx, BG_ERR_IO, "cannot set up the log stream: %s", strerror(errno));
        goto fail;
    }
    const char *data = bg_recipe_data_dir(&r);
    if (resume)
        fprintf(stderr, "budgie train: resuming %s at epoch %lld, step %lld (%.1f s of the budget spent)\n", r.out,
                (long long)resume->pos.epoch, (long long)resume->pos.step, resume->pos.elapsed_s);
    fprintf(stderr, "budgie train: recipe %s; budget %s; reading %s ...\n", r.name, budget_note, data);
    if (jpeg) { /* listed only: images are decoded as batches are needed */
        bg_jpeg_data_opts jo;
        bg_recipe_jpeg_opts(&r, r.batch > 0 ? r.batch : 1, &jo);
        if (bg_jpeg_data_open(&ctx, data, &jo, &jd)) goto fail;
        fmt = "jpeg-folder";
        in_h = in_w = (int)r.train_size, in_c = 3, n_classes = jd.train.n_classes;
    } else {
        if (bg_open_train_test(&ctx, data, 0, &train, &test, &fmt)) goto fail;
        in_h = train.h, in_w = train.w, in_c = train.c, n_classes = train.n_classes;
    }
    const bool augment = strcmp(r.aug, "none") != 0, haet = !strcmp(r.aug, "haet");
    if (haet && train.c != 3) {
        bg_fail(&ctx, BG_ERR_ARG, "aug haet needs RGB images; %s has %d channel(s)", data, train.c);
        goto fail;
    }
    bg_batch_opts train_opts = {.crop_pad = augment ? (int)r.crop_pad : 0, .flip = augment && train.c == 3,
                                .autoaugment = haet, .cutout = haet ? (int)r.cutout : 0};
    bg_batch_opts test_opts = {0};
    bg_recipe_normalisation(&r, &train_opts);
    bg_recipe_normalisation(&r, &test_opts);
    /* Every zoo model takes the data's class count unless the spec fixes it
     * (resnest50d_1s4x24d: 10 on Imagenette, 100 on the challenge's set);
     * the small CNN also follows the data's channels. */
    char spec[256];
    snprintf(spec, sizeof spec, "%s", r.model);
    size_t sn = strlen(spec);
    if (!strncmp(r.model, "small_cnn", 9) && (r.model[9] == 0 || r.model[9] == ':') && !bg_model_spec_has_key(r.model, "c"))
        sn += (size_t)snprintf(spec + sn, sizeof spec - sn, "%sc=%d", strchr(spec, ':') ? "," : ":", in_c);
    if (!bg_model_spec_has_key(r.model, "classes"))
        snprintf(spec + sn, sizeof spec - sn, "%sclasses=%d", strchr(spec, ':') ? "," : ":", n_classes);
    /* batch = auto / epochs = auto: the profile phase, on this run's model, input and precision */
    bg_profile_result prof = {0};
    if (r.batch < 0 || r.epochs < 0) {
        const int64_t per = r.train_per_class > 0 ? r.train_per_class : train.n / (train.n_classes ? train.n_classes : 1);
        /* GPU-resident data takes its share of the cap before any step */
        const double data_bytes = !jpeg && device == BG_CUDA && strcmp(r.gpu_data, "off")
                                      ? (double)train.n * train.h * train.w * train.c + 1048576.0 : 0;
        bg_profile_query q = {.spec = spec, .size = jpeg ? in_h : train.h == train.w ? train.h : 0,
                              .eval_size = jpeg ? test_side : 0, .amp = !strcmp(r.precision, "amp"),
                              .device = device, .mem_cap = r.mem_cap - data_bytes, .eval_batch = r.eval_batch,
                              .n_train = jpeg ? jd.train.n : (per - r.val_per_class) * train.n_classes,
                              .seed = (uint64_t)r.seed};
        if (r.batch > 0) q.max_batch = r.batch; /* epochs = auto with a fixed batch: time that batch */
        const double tp = bg_monotonic_s();
        if (bg_profile(&ctx, &q, &prof)) goto fail;
        if (prof.note[0] || prof.batch == 0) {
            bg_fail(&ctx, BG_ERR_ARG, "profile: %s cannot train under mem_cap %.0f bytes: %s", spec, r.mem_cap,
                    prof.note[0] ? prof.note : "no batch fits");
            goto fail;
        }
        const double left = budget - (bg_monotonic_s() - t0);
        if (r.batch < 0) r.batch = prof.batch;
        if (r.epochs < 0) r.epochs = (int64_t)(left / prof.epoch_s) > 0 ? (int64_t)(left / prof.epoch_s) : 1;
        fprintf(stderr, "budgie train: profile: batch %lld (peak %.1f MiB of %.1f, planned %.1f), step %.3f s, epoch %.1f s: %lld "
                "epochs in the %.0f s left (%d trial steps, %.1f s)\n", (long long)r.batch, prof.peak_bytes / 1048576,
                r.mem_cap / 1048576, prof.planned_peak_bytes / 1048576, prof.step_s, prof.epoch_s, (long long)r.epochs, left, prof.trials,
                bg_monotonic_s() - tp);
    }
    rtext = bg_recipe_text(&r);
    if (jpeg) {
        if (bg_jpeg_data_set_batch(&jd, (int)r.batch)) goto fail;
        n_train = jd.train.n, n_val = jd.val.n, n_test = jd.test.n, spe = jd.steps_per_epoch;
    } else {
        if (bg_loader_init(&ld, &ctx, &train, &test, (int)r.train_per_class, (int)r.test_per_class, (int)r.batch,
                           &train_opts, &test_opts, (uint64_t)r.seed))
            goto fail;
        if (r.val_per_class > 0 && bg_loader_split_val(&ld, (int)r.val_per_class)) goto fail;
        n_train = ld.n_train, n_val = ld.n_val, n_test = ld.n_test, spe = bg_loader_steps_per_epoch(&ld);
    }
    const bool gpu_data = !jpeg && device == BG_CUDA && strcmp(r.gpu_data, "off");
    if (gpu_data) {
        if (bg_gpu_dataset_upload(&ctx, &train, &gpu_ds)) goto fail;
        ld.gpu = &gpu_ds;
    }
    bg_optim_kind kind;
    if (bg_optim_parse(&ctx, r.optimizer, &kind)) goto fail;
    bg_optim_config oc = bg_optim_defaults(kind);
    oc.lr = r.lr;
    oc.weight_decay = r.wd;
    if (kind == BG_OPT_SGD) oc.momentum = r.momentum, oc.nesterov = r.nesterov;
    if (bg_model_new(&ctx, device, spec, &model)) goto fail;
    if (model->n_classes != n_classes || model->in_c != in_c) {
        bg_fail(&ctx, BG_ERR_SHAPE, "model '%s' takes %d channels and %d classes; the data has %d and %d (set classes= in the spec)",
                model->spec, model->in_c, model->n_classes, in_c, n_classes);
        goto fail;
    }
    const bool amp = !strcmp(r.precision, "amp");
    if (amp && bg_model_to(&ctx, model, device, BG_F16)) goto fail;
    if (bg_trainer_init(&tr, &ctx, device, bg_model_forward, model, (int)r.batch, (int)r.eval_batch, in_h, in_w,
                        in_c, &oc, (float)r.label_smoothing))
        goto fail;
    if (device == BG_CUDA) {
        bg_trainer_cuda_opts co = bg_trainer_cuda_defaults();
        co.amp = amp;
        if (resume && resume->has_scaler) co.scaler = resume->scaler;
        if (bg_trainer_set_cuda(&tr, &co)) goto fail;
    }
    /* Evaluation at another side than training (train 160, test 224): an
     * eval-only trainer sharing the model's parameters and BN statistics. */
    if (jpeg && test_side != in_h) {
        if (bg_trainer_init(&etr, &ctx, device, bg_model_forward, model, 1, (int)r.eval_batch, test_side, test_side,
                            in_c, &oc, 0.0f) ||
            bg_trainer_set_amp(&etr, amp))
            goto fail;
    }
    if (resume) {
        if (strcmp(resume->model, model->spec)) {
            bg_fail(&ctx, BG_ERR_FORMAT, "%s holds model %s, the recipe builds %s", ckpt_path, resume->model, model->spec);
            goto fail;
        }
        if (bg_ckpt_load_model(&ctx, ckpt_path, model)) goto fail;
        if (bg_trainer_resume_from(&tr, ckpt_path)) goto fail;
        ctx.rng_offset = resume->rng_offset;
    }
    /* A checkpoint's cost, measured now on the real weights (and proof the
     * folder takes them); the optimizer's state adds up to twice as much. */
    char probe[640];
    snprintf(probe, sizeof probe, "%s/probe.safetensors", r.out);
    const double ts = bg_monotonic_s();
    if (bg_model_save(&ctx, model, probe)) goto fail;
    const double save_cost = 3 * (bg_monotonic_s() - ts);
    unlink(probe);
    fprintf(stderr, "budgie train: %s on %s data (%s), %lld train / %lld test images of %dx%dx%d, %d classes, %s, %s%s; "
            "run folder %s\n", model->spec, fmt, data, (long long)n_train, (long long)n_test, in_h, in_w,
            in_c, n_classes, bg_device_name(device), r.precision,
            gpu_data ? ", data and augmentation on the GPU" : "", r.out);
    char dev_line[256], build_line[256];
    bg_device_describe(dev_line, sizeof dev_line);
    bg_build_describe(build_line, sizeof build_line);
    /* The first log line records everything needed to rerun (the recipe is in the folder too). */
    bg_run_log_json(tee_f,
             json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:f, s:f, s:s, s:s, s:s, s:s, s:s}", "config",
                       "train", "recipe", r.name, "model", model->spec, "data", data, "format", fmt, "run", r.out,
                       "seed", (json_int_t)r.seed, "n_train", (json_int_t)n_train, "n_val", (json_int_t)n_val, "n_test", (json_int_t)n_test,
                       "budget", r.budget, "budget_s", budget, "startup_s", bg_monotonic_s() - t0, "device",
                       bg_device_name(device), "gpu", dev_line, "build", build_line, "commit", bg_build_commit(),
                       "precision", r.precision));
    bg_sched sc;
    bool per_epoch;
    int64_t freeze;
    bg_recipe_schedule(&r, &sc, &per_epoch, &freeze);
    char best_path[640];
    snprintf(best_path, sizeof best_path, "%s/best.safetensors", r.out);
    /* the final ensemble costs about its views, weighted by their pixels, times the test share of an epoch's evaluation */
    double ens_factor = 0;
    if (bg_recipe_has_ensemble(&r)) {
        const int base = jpeg ? test_side : in_h, flips = !strcmp(r.tta, "flip") ? 2 : 1;
        for (int i = 0; i < (r.n_test_sizes ? r.n_test_sizes : 1); i++) {
            const double side = r.n_test_sizes ? (double)r.test_sizes[i] : base;
            ens_factor += flips * side * side / ((double)base * base);
        }
        ens_factor *= (double)n_test / (double)(n_test + n_val > 0 ? n_test + n_val : 1);
    }
    /* evaluation images in training-image units: a 224 side costs about (224/160)^2 of a 160 one */
    const double eval_scale = jpeg ? (double)test_side * test_side / ((double)in_h * in_h) : 1.0;
    ckpt_data cd = {.ld = &ld, .jd = jpeg ? &jd : NULL, .etr = etr.ctx ? &etr : NULL,
                    .test_set = jpeg ? bg_jpeg_data_test_set(&jd) : bg_loader_test_set(&ld),
                    .val_set = jpeg ? bg_jpeg_data_val_set(&jd) : bg_loader_val_set(&ld), .model = model, .ctx = &ctx, .path = ckpt_path, .best_path = best_path,
                    .recipe_text = rtext ? rtext : "", .device = device, .progress = isatty(2) != 0,
                    .steps_per_epoch = spe, .t0 = t0, .budget = budget,
                    .elapsed_before = resume ? resume->pos.elapsed_s : 0};
    bg_run_config rc_cfg = {
        .next_batch = next_batch, .evaluate = evaluate, .checkpoint = save_checkpoint, .data = &cd,
        .steps_per_epoch = spe, .budget_s = budget, .max_epochs = r.epochs,
        .sched = sc, .sched_per_epoch = per_epoch, .sched_freeze = freeze, .t0 = t0,
        /* the final save, and with an ensemble the load of the chosen checkpoint (a save's cost, at most) */
        .reserve_s = save_cost * (ens_factor > 0 ? 2 : 1) + 0.05, .final_eval_factor = ens_factor,
        .checkpoint_every_s = r.checkpoint_every, .eval_images = (int64_t)ceil((double)(n_test + n_val) * eval_scale),
        .stop = &stop_flag, .log = tee_f,
        .next_batch_device = gpu_data ? next_batch_device : NULL, .validate = n_val ? validate : NULL,
        .checkpoint_best = strcmp(r.select, "none") ? save_best : NULL,
        .select_on_test = !strcmp(r.select, "test"), .on_step = on_step, .log_every = r.log_every,
        .log_extra = log_extra,
    };
    if (resume) rc_cfg.start = resume->pos;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    bg_run_result res;
    bg_status run_s = bg_run_budgeted(&ctx, &tr, &rc_cfg, &res);
    clear_progress();
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (run_s) goto fail;
    if (res.end.step == 0) {
        bg_fail(&ctx, BG_ERR_ARG, "budget %s (%.2f s) ran out before the first training step (%.2f s spent "
                "starting up); nothing was trained", r.budget, budget, bg_monotonic_s() - t0);
        goto fail;
    }
    /* the final ensemble, inside the budget: the loop kept its estimated time free */
    double ens_top1 = -1;
    int ens_views = 0;
    const char *ens_ckpt = NULL;
    char ens_text[1024] = "";
    if (!res.stopped_by_signal && ens_factor > 0) {
        struct stat st;
        ens_ckpt = strcmp(r.select, "none") && res.end.best_select >= 0 && stat(best_path, &st) == 0 ? best_path : weights;
        const double spent = bg_monotonic_s() - t0 + (resume ? resume->pos.elapsed_s : 0);
        const double est = ens_factor * res.eval_s + save_cost;
        char sizes_txt[64] = "";
        for (int i = 0; i < r.n_test_sizes; i++)
            snprintf(sizes_txt + strlen(sizes_txt), sizeof sizes_txt - strlen(sizes_txt), "%s%lld", i ? "," : "",
                     (long long)r.test_sizes[i]);
        if (!sizes_txt[0]) snprintf(sizes_txt, sizeof sizes_txt, "%d", jpeg ? test_side : in_h);
        if (spent + BG_RUN_MARGIN * est > budget) { /* the margin the loop reserved it with */
            snprintf(ens_text, sizeof ens_text, "ensemble skipped: about %.1f s needed, %.1f s of the budget left", est,
                     budget - spent);
            bg_run_log_json(tee_f, json_pack("{s:s, s:s, s:f, s:f}", "ensemble", "skipped", "reason", ens_text, "estimate_s",
                                      est, "budget_left_s", budget - spent));
        } else {
            /* the training graphs' memory goes back before the views' eval graphs take theirs */
            bg_trainer_free(&etr);
            bg_trainer_free(&tr);
            const double te = bg_monotonic_s();
            if (final_ensemble(&ctx, device, &r, model->spec, ens_ckpt, &cd.test_set, &ens_top1, &ens_views)) goto fail;
            snprintf(ens_text, sizeof ens_text, "ensemble of %s (tta %s, sizes %s, %s averaged, %d views): test "
                     "accuracy %.2f%%", ens_ckpt, r.tta, sizes_txt, r.tta_average, ens_views, 100 * ens_top1);
            bg_run_log_json(tee_f, json_pack("{s:s, s:f, s:i, s:s, s:s, s:s, s:f, s:f, s:f}", "ensemble", ens_ckpt, "top1",
                                      ens_top1, "views", ens_views, "sizes", sizes_txt, "tta", r.tta, "average",
                                      r.tta_average, "ensemble_s", bg_monotonic_s() - te, "estimate_s", est,
                                      "elapsed_s", bg_monotonic_s() - t0 + (resume ? resume->pos.elapsed_s : 0)));
        }
    }
    const double total = bg_monotonic_s() - t0 + (resume ? resume->pos.elapsed_s : 0);
    json_t *saved = json_pack("{s:s, s:f, s:f, s:f, s:s}", "saved", weights, "total_s", total, "budget_s", budget,
                              "checkpoint_s", res.checkpoint_s, "note", total <= budget ? "within budget" : "over budget");
    if (saved && ens_top1 >= 0) json_object_set_new(saved, "ensemble_top1", json_real(ens_top1));
    bg_run_log_json(tee_f, saved);
    if (res.stopped_by_signal) {
        fprintf(stderr, "budgie train: stopped by signal %d after step %lld; checkpoint in %s (budgie train --resume %s)\n",
                (int)stop_signal, (long long)res.end.step, weights, r.out);
        rc = 128 + (int)stop_signal;
        goto fail;
    }
    fprintf(stderr, "budgie train: %lld epochs, %lld steps; %.1f s of %.1f s from start to saved weights\n"
            "  %s: the last state, test accuracy %.2f%%\n", (long long)res.end.epochs_done, (long long)res.end.step,
            total, budget, weights, 100 * res.last_accuracy);
    bg_ckpt_meta *bm = calloc(1, sizeof *bm);
    if (bm && strcmp(r.select, "none") && res.end.best_select >= 0 && !bg_ckpt_read_meta(&ctx, best_path, bm))
        fprintf(stderr, "  %s: the best by %s accuracy (%.2f%%, after epoch %lld), test accuracy %.2f%%%s\n", best_path,
                r.select, 100 * bm->pos.best_select, (long long)bm->pos.epochs_done, 100 * bm->pos.last_accuracy,
                !strcmp(r.select, "test") ? " (chosen on the test split as the seed did: optimistic)" : "");
    free(bm);
    if (ens_text[0]) fprintf(stderr, "  %s\n", ens_text);
    rc = 0;
fail:
    if (rc && !stop_flag) {
        fprintf(stderr, "budgie train: %s\n", bg_errmsg(&ctx));
        if (ctx.status == BG_ERR_OOM && r.mem_cap > 0)
            fprintf(stderr, "budgie train: the memory cap (mem_cap = %.0f bytes) is below what %s needs at batch %lld: "
                    "lower the batch or raise mem_cap\n", r.mem_cap, model ? model->spec : r.model, (long long)r.batch);
        struct stat st;
        if (ckpt_path[0] && stat(ckpt_path, &st) == 0 && S_ISREG(st.st_mode))
            fprintf(stderr, "budgie train: the last good checkpoint stays in %s (budgie train --resume %s)\n",
                    ckpt_path, r.out);
        else if (r.out[0])
            fprintf(stderr, "budgie train: no checkpoint was written (%s holds the recipe and the log)\n", r.out);
    }
    free(rtext);
    free(resume);
    if (tee_f) fclose(tee_f);
    if (logf) fclose(logf);
    bg_trainer_free(&etr);
    bg_trainer_free(&tr);
    bg_gpu_dataset_free(&ctx, &gpu_ds);
    bg_jpeg_data_free(&jd);
    bg_model_free(&ctx, model);
    bg_loader_free(&ld);
    bg_dataset_free(&train);
    bg_dataset_free(&test);
#ifdef BG_WITH_CUDA
    if (ctx.rtc) {
        const char *note = bg_rtc_note(ctx.rtc);
        if (note) fprintf(stderr, "budgie train: %s\n", note);
        bg_rtc_free(ctx.rtc);
        ctx.rtc = NULL;
    }
#endif
    bg_ctx_free(&ctx);
    sigaction(SIGPIPE, &old_pipe, NULL);
    return rc;
usage_error:
    fprintf(stderr, "budgie train: %s\n", bg_errmsg(&ctx));
    free(resume);
    bg_ctx_free(&ctx);
    return 2;
}
