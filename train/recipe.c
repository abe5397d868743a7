/* Recipes (see recipe.h): the key table, strict value parsing, recipe files
 * and budgets with the GPU throughput table. */
#include "recipe.h"
#include "../augment/data_source.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_STR, K_INT, K_NUM, K_BOOL, K_CHOICE, K_BYTES, K_BUDGET, K_SIZES } key_type;

typedef struct {
    const char *name;
    key_type type;
    bool auto_ok;         /* K_INT: "auto" is accepted (stored as -1: the profile phase decides) */
    size_t off, cap;      /* field offset; char array size for strings */
    double min, max;      /* K_INT, K_NUM, K_BYTES: inclusive range */
    const char *choices;  /* K_CHOICE: '|'-separated */
    const char *help;
} key_spec;

#define F(field) offsetof(bg_recipe, field)
#define S(field) sizeof(((bg_recipe *)0)->field)
static const key_spec KEYS[] = {
    {"model", K_STR, false, F(model), S(model), 0, 0, NULL, "model-zoo spec (budgie model list), e.g. senet18:w=0.67"},
    {"data", K_STR, false, F(data), S(data), 0, 0, NULL, "data folder; empty: .cache/cifar10, else Fashion-MNIST"},
    {"data_format", K_CHOICE, false, F(data_format), S(data_format), 0, 0, "auto|memory|jpeg-folder",
     "memory: decode the whole set once at its own size (CIFAR binary, idx, small image folders); jpeg-folder: "
     "stream train/<class>/*.JPEG through the threaded loader with RandomResizedCrop; auto: jpeg-folder when "
     "train_size is set"},
    {"train_size", K_INT, false, F(train_size), 0, 0, 4096, NULL,
     "jpeg-folder: training input side (RandomResizedCrop output; 0 = the memory path's own size)"},
    {"test_size", K_INT, false, F(test_size), 0, 0, 4096, NULL,
     "jpeg-folder: evaluation input side, resize to size*256/224 then centre crop (0 = train_size)"},
    {"test_sizes", K_SIZES, false, F(test_sizes), 4, 4, 4096, NULL,
     "final ensemble: input sides of its views, e.g. 160,224 (resized from the test images; empty = none)"},
    {"tta", K_CHOICE, false, F(tta), S(tta), 0, 0, "none|flip",
     "final ensemble: flip adds each image's mirror as a view (with test_sizes, at every size)"},
    {"tta_average", K_CHOICE, false, F(tta_average), S(tta_average), 0, 0, "probs|logits",
     "final ensemble: average softmax probabilities or logits over the views"},
    {"loader_threads", K_INT, false, F(loader_threads), 0, 0, 256, NULL, "jpeg-folder: decode threads (0 = 4)"},
    {"prefetch", K_INT, false, F(prefetch), 0, 0, 1024, NULL,
     "jpeg-folder: decoded batches kept ready ahead of the step (0 = 2 x loader_threads)"},
    {"rrc_scale_min", K_NUM, false, F(rrc_scale_min), 0, 0.01, 1, NULL, "jpeg-folder: RandomResizedCrop smallest area fraction"},
    {"rrc_scale_max", K_NUM, false, F(rrc_scale_max), 0, 0.01, 1, NULL, "jpeg-folder: RandomResizedCrop largest area fraction"},
    {"train_per_class", K_INT, false, F(train_per_class), 0, 0, 1e9, NULL, "seeded training subset per class (0 = all)"},
    {"test_per_class", K_INT, false, F(test_per_class), 0, 0, 1e9, NULL, "seeded test subset per class (0 = all)"},
    {"val_per_class", K_INT, false, F(val_per_class), 0, 0, 1e9, NULL,
     "validation images per class, carved out of the training subset (never trained on)"},
    {"select", K_CHOICE, false, F(select), S(select), 0, 0, "val|test|none",
     "what best.safetensors is chosen on: val (the validation split), test (the HAET seed's way: optimistic), none"},
    {"aug", K_CHOICE, false, F(aug), S(aug), 0, 0, "none|crop-flip|haet|rrc-flip",
     "training augmentation: haet = crop, flip, AutoAugment (PIL numerics), Cutout; rrc-flip (jpeg-folder) = "
     "RandomResizedCrop + flip"},
    {"crop_pad", K_INT, false, F(crop_pad), 0, 0, 64, NULL, "zero padding before the random crop"},
    {"cutout", K_INT, false, F(cutout), 0, 0, 1024, NULL, "haet: Cutout square side (0 = none)"},
    {"normalize", K_CHOICE, false, F(normalize), S(normalize), 0, 0, "cifar10|half|imagenet",
     "cifar10: HAET's mean/std; half: mean 0.5, std 0.25; imagenet: 0.485,0.456,0.406 / 0.229,0.224,0.225"},
    {"optimizer", K_CHOICE, false, F(optimizer), S(optimizer), 0, 0, "sgd|adam|adamw|adamax|adagrad|adadelta|asgd",
     "optimizer (weight decay coupled L2, AdamW decoupled)"},
    {"lr", K_NUM, false, F(lr), 0, 0, 1e3, NULL, "base learning rate"},
    {"momentum", K_NUM, false, F(momentum), 0, 0, 0.999999, NULL, "sgd momentum"},
    {"nesterov", K_BOOL, false, F(nesterov), 0, 0, 0, NULL, "sgd: Nesterov momentum (0 or 1)"},
    {"wd", K_NUM, false, F(wd), 0, 0, 10, NULL, "weight decay"},
    {"label_smoothing", K_NUM, false, F(label_smoothing), 0, 0, 1, NULL, "cross-entropy label smoothing"},
    {"schedule", K_CHOICE, false, F(schedule), S(schedule), 0, 0, "cosine_time|cosine_epoch|cosine_torch_epoch|constant",
     "cosine_time: the lr reaches eta_min exactly when the budget ends; cosine_epoch: closed-form cosine "
     "over t_max epochs; cosine_torch_epoch: torch's CosineAnnealingLR stepped per epoch (rises after t_max)"},
    {"eta_min", K_NUM, false, F(eta_min), 0, 0, 1e3, NULL, "the schedule's floor"},
    {"warmup", K_INT, false, F(warmup), 0, 0, 1e9, NULL, "epoch schedules: linear warmup over this many epochs (0 = none)"},
    {"warmup_frac", K_NUM, false, F(warmup_frac), 0, 0, 0.9, NULL,
     "cosine_time: linear warmup over this fraction of the budget, then the cosine (0 = none)"},
    {"t_max", K_INT, false, F(t_max), 0, 0, 1e9, NULL, "epoch schedules: epochs to reach eta_min"},
    {"sched_freeze", K_INT, false, F(sched_freeze), 0, 0, 1e9, NULL,
     "epoch schedules: the epoch counter stops here (0 = never)"},
    {"batch", K_INT, true, F(batch), 0, 1, 65536, NULL,
     "training batch (the last partial batch of an epoch is dropped; auto = the largest under mem_cap)"},
    {"eval_batch", K_INT, false, F(eval_batch), 0, 1, 65536, NULL, "evaluation batch"},
    {"epochs", K_INT, true, F(epochs), 0, 0, 1e9, NULL,
     "stop after this many epochs (0 = when the budget ends; auto = as many as the profile says fit)"},
    {"precision", K_CHOICE, false, F(precision), S(precision), 0, 0, "fp32|amp",
     "amp: f16 storage, f32 master weights, dynamic loss scaling (CUDA)"},
    {"mem_cap", K_BYTES, false, F(mem_cap), 0, 0, 1e15, NULL, "device memory cap, bytes or with K/M/G (0 = none)"},
    {"budget", K_BUDGET, false, F(budget), S(budget), 0, 0, NULL,
     "wall-clock budget for the whole process: 600, 600s, 10m, 1.5h, or 10m@v100 (GPU-relative)"},
    {"device", K_CHOICE, false, F(device), S(device), 0, 0, "auto|cpu|cuda", "auto: cuda when a device is present"},
    {"gpu_data", K_CHOICE, false, F(gpu_data), S(gpu_data), 0, 0, "auto|off",
     "auto: on CUDA, the training set on the device, batches assembled and augmented there"},
    {"rtc", K_CHOICE, false, F(rtc), S(rtc), 0, 0, "auto|off",
     "auto: on CUDA, conv/GEMM kernels specialised to each layer's shape by NVRTC (cached on disk) when it loads"},
    {"seed", K_INT, false, F(seed), 0, 0, 9.007199254740992e15, NULL, "seed of init, subsets, order and augmentation"},
    {"log_every", K_INT, false, F(log_every), 0, 0, 1e9, NULL, "also a JSON log line every this many steps (0 = per epoch only)"},
    {"checkpoint_every", K_NUM, false, F(checkpoint_every), 0, 0, 1e9, NULL,
     "also write last.safetensors every this many seconds between steps (0 = after epochs only)"},
    {"out", K_STR, false, F(out), S(out), 0, 0, NULL, "run folder; empty: runs/<date>-<time>-<model>"},
};
#undef F
#undef S
#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

void bg_recipe_defaults(bg_recipe *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "built-in");
    snprintf(r->model, sizeof r->model, "small_cnn");
    r->train_per_class = 500, r->test_per_class = 100;
    r->val_per_class = 50;
    snprintf(r->select, sizeof r->select, "val");
    snprintf(r->aug, sizeof r->aug, "crop-flip");
    r->crop_pad = 4;
    snprintf(r->normalize, sizeof r->normalize, "half");
    snprintf(r->optimizer, sizeof r->optimizer, "sgd");
    r->lr = 0.05, r->momentum = 0.9, r->wd = 5e-4;
    snprintf(r->schedule, sizeof r->schedule, "cosine_time");
    r->batch = 64, r->eval_batch = 256;
    snprintf(r->precision, sizeof r->precision, "fp32");
    snprintf(r->budget, sizeof r->budget, "120");
    r->budget_s = 120;
    snprintf(r->device, sizeof r->device, "auto");
    snprintf(r->gpu_data, sizeof r->gpu_data, "auto");
    snprintf(r->rtc, sizeof r->rtc, "auto");
    snprintf(r->data_format, sizeof r->data_format, "auto");
    snprintf(r->tta, sizeof r->tta, "none");
    snprintf(r->tta_average, sizeof r->tta_average, "probs");
    r->rrc_scale_min = 0.08, r->rrc_scale_max = 1;
}

static const key_spec *find_key(const char *name)
{
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].name, name)) return &KEYS[i];
    return NULL;
}

bool bg_parse_finite(const char *s, double *v)
{
    if (!*s || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end == 0 && errno == 0 && isfinite(*v);
}

bool bg_choice_ok(const char *choices, const char *v)
{
    const size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *e = strchr(p, '|');
        const size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, v, n)) return true;
        p += l + (e ? 1 : 0);
    }
    return false;
}

/* "6G", "512M", "100K", "123" (bytes; binary multiples). */
static bool parse_bytes(const char *s, double *v)
{
    char buf[64];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n + 1);
    double mult = 1;
    const char last = (char)toupper((unsigned char)buf[n - 1]);
    if (last == 'K' || last == 'M' || last == 'G' || last == 'T') {
        mult = last == 'K' ? 1024.0 : last == 'M' ? 1048576.0 : last == 'G' ? 1073741824.0 : 1099511627776.0;
        buf[n - 1] = 0;
    }
    if (!bg_parse_finite(buf, v)) return false;
    *v *= mult;
    return true;
}

bg_status bg_budget_parse(bg_ctx *ctx, const char *text, double *seconds, char *gpu, size_t gpu_cap)
{
    char num[64];
    const char *at = strchr(text, '@');
    const size_t n = at ? (size_t)(at - text) : strlen(text);
    if (gpu && gpu_cap) gpu[0] = 0;
    if (n == 0 || n >= sizeof num)
        return bg_fail(ctx, BG_ERR_ARG, "budget '%s': give seconds (600, 600s), minutes (10m) or hours (1.5h), "
                                        "optionally @gpu (10m@v100)", text);
    memcpy(num, text, n);
    num[n] = 0;
    double unit = 1;
    const char last = num[n - 1];
    if (last == 's' || last == 'm' || last == 'h') {
        unit = last == 's' ? 1 : last == 'm' ? 60 : 3600;
        num[n - 1] = 0;
    }
    double v;
    if (!bg_parse_finite(num, &v) || !(v > 0))
        return bg_fail(ctx, BG_ERR_ARG, "budget '%s': '%s' is not a positive number (e.g. 600, 10m, 1.5h, 10m@v100)",
                       text, num);
    if (v * unit > 366.0 * 86400)
        return bg_fail(ctx, BG_ERR_ARG, "budget '%s' is over a year", text);
    if (at) {
        if (bg_gpu_speed(at + 1) <= 0 || strlen(at + 1) >= gpu_cap)
            return bg_fail(ctx, BG_ERR_ARG, "budget '%s': unknown GPU '%s' (known: %s)", text, at + 1,
                           bg_gpu_speed_names());
        snprintf(gpu, gpu_cap, "%s", at + 1);
    }
    *seconds = v * unit;
    return BG_OK;
}

/* ResNet-50 training throughput with PyTorch AMP on one GPU, images/s, from
 * Lambda's deep-learning benchmark (lambdal/deeplearning-benchmark,
 * pytorch/pytorch-train-throughput-fp16.csv and -v2-fp16.csv, NGC 22.10),
 * as quoted in ../shared/reference/engine-anchors.md: V100-16GB 833,
 * RTX 3090 905, A100-80GB-SXM 1582, H100-SXM 2616-2800. The H100 takes the
 * top of its range: a faster local GPU gets fewer seconds, so a converted
 * budget errs towards stopping early, never late. */
static const struct {
    const char *name;
    double images_per_s;
} GPUS[] = {{"v100", 833}, {"rtx3090", 905}, {"a100", 1582}, {"h100", 2800}};

double bg_gpu_speed(const char *name)
{
    char low[128];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof low; n++) low[n] = (char)tolower((unsigned char)name[n]);
    low[n] = 0;
    for (size_t i = 0; i < sizeof GPUS / sizeof GPUS[0]; i++) {
        if (!strcmp(low, GPUS[i].name)) return GPUS[i].images_per_s / GPUS[0].images_per_s;
        /* a device name: "NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 3090" */
        const char *key = !strcmp(GPUS[i].name, "rtx3090") ? "rtx 3090" : GPUS[i].name;
        if (strstr(low, key) && strchr(low, ' ')) return GPUS[i].images_per_s / GPUS[0].images_per_s;
    }
    return 0;
}

const char *bg_gpu_speed_names(void) { return "v100, rtx3090, a100, h100"; }

bg_status bg_recipe_set(bg_ctx *ctx, bg_recipe *r, const char *key, const char *value, const char *where)
{
    const key_spec *k = find_key(key);
    if (!k) {
        char known[1024] = "";
        for (int i = 0; i < N_KEYS; i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, KEYS[i].name, sizeof known - strlen(known) - 1);
        }
        return bg_fail(ctx, BG_ERR_ARG, "%s: unknown key '%s' (keys: %s)", where, key, known);
    }
    char *field = (char *)r + k->off;
    double v;
    switch (k->type) {
    case K_STR:
        if (strlen(value) >= k->cap)
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s is %zu characters long, at most %zu", where, key, strlen(value),
                           k->cap - 1);
        snprintf(field, k->cap, "%s", value);
        return BG_OK;
    case K_CHOICE:
        if (!bg_choice_ok(k->choices, value) || strlen(value) >= k->cap)
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s must be one of %s, got '%s'", where, key, k->choices, value);
        snprintf(field, k->cap, "%s", value);
        return BG_OK;
    case K_BOOL:
        if (strcmp(value, "0") && strcmp(value, "1") && strcmp(value, "true") && strcmp(value, "false"))
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s must be 0 or 1 (or true/false), got '%s'", where, key, value);
        *(bool *)field = !strcmp(value, "1") || !strcmp(value, "true");
        return BG_OK;
    case K_INT:
        if (k->auto_ok && !strcmp(value, "auto")) {
            *(int64_t *)field = -1;
            return BG_OK;
        }
        if (!bg_parse_finite(value, &v) || v != floor(v))
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s must be an integer, got '%s'", where, key, value);
        if (v < k->min || v > k->max)
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s = %s is outside [%.15g, %.15g]", where, key, value, k->min, k->max);
        *(int64_t *)field = (int64_t)v;
        return BG_OK;
    case K_NUM:
    case K_BYTES:
        if (!(k->type == K_NUM ? bg_parse_finite(value, &v) : parse_bytes(value, &v)))
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s must be a %s, got '%s'", where, key,
                           k->type == K_NUM ? "finite number" : "byte count (e.g. 6G, 512M)", value);
        if (v < k->min || v > k->max)
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s = %s is outside [%g, %g]", where, key, value, k->min, k->max);
        *(double *)field = v;
        return BG_OK;
    case K_SIZES: { /* "" or "S1,S2,...": at most k->cap sides in [k->min, k->max] */
        int64_t v64[8];
        int n = 0;
        char buf[128];
        if (strlen(value) >= sizeof buf)
            return bg_fail(ctx, BG_ERR_ARG, "%s: %s '%s' is too long", where, key, value);
        snprintf(buf, sizeof buf, "%s", value);
        for (char *p = buf, *e; *value; p = e + 1) {
            e = strchr(p, ',');
            if (e) *e = 0;
            if (n == (int)k->cap)
                return bg_fail(ctx, BG_ERR_ARG, "%s: %s '%s' lists more than %zu sides", where, key, value, k->cap);
            if (!bg_parse_finite(p, &v) || v != floor(v) || v < k->min || v > k->max)
                return bg_fail(ctx, BG_ERR_ARG, "%s: %s '%s': '%s' is not a side in [%g, %g] (e.g. 160,224)", where,
                               key, value, p, k->min, k->max);
            v64[n++] = (int64_t)v;
            if (!e) break;
        }
        memcpy(field, v64, (size_t)n * sizeof *v64);
        r->n_test_sizes = n;
        return BG_OK;
    }
    case K_BUDGET: {
        char gpu[16];
        double s;
        bg_status st = bg_budget_parse(ctx, value, &s, gpu, sizeof gpu);
        if (st) {
            char msg[sizeof ctx->err];
            snprintf(msg, sizeof msg, "%s", bg_errmsg(ctx));
            return bg_fail(ctx, st, "%s: %s", where, msg);
        }
        if (strlen(value) >= k->cap) return bg_fail(ctx, BG_ERR_ARG, "%s: budget '%s' is too long", where, value);
        snprintf(r->budget, sizeof r->budget, "%s", value);
        snprintf(r->budget_gpu, sizeof r->budget_gpu, "%s", gpu);
        r->budget_s = s;
        return BG_OK;
    }
    }
    return bg_fail(ctx, BG_ERR_ARG, "%s: key '%s' has no parser", where, key);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* Apply `key = value` lines from f; `name` stands for the source in messages. */
static bg_status load_stream(bg_ctx *ctx, bg_recipe *r, FILE *f, const char *name)
{
    char line[1024], where[600];
    int ln = 0;
    bg_status s = BG_OK;
    while (!s && fgets(line, sizeof line, f)) {
        ln++;
        snprintf(where, sizeof where, "%s:%d", name, ln);
        if (!strchr(line, '\n') && !feof(f)) {
            s = bg_fail(ctx, BG_ERR_FORMAT, "%s: line longer than %zu characters", where, sizeof line - 2);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *t = trim(line);
        if (!*t) continue;
        char *eq = strchr(t, '=');
        if (!eq) {
            s = bg_fail(ctx, BG_ERR_FORMAT, "%s: '%s' is not 'key = value'", where, t);
            break;
        }
        *eq = 0;
        s = bg_recipe_set(ctx, r, trim(t), trim(eq + 1), where);
    }
    if (!s && ferror(f)) s = bg_fail(ctx, BG_ERR_IO, "recipe %s: read error", name);
    if (!s) snprintf(r->name, sizeof r->name, "%s", name);
    return s;
}

bg_status bg_recipe_load(bg_ctx *ctx, bg_recipe *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "recipe %s: %s", path, strerror(errno));
    bg_status s = load_stream(ctx, r, f, path);
    fclose(f);
    return s;
}

bg_status bg_recipe_load_text(bg_ctx *ctx, bg_recipe *r, const char *text, const char *name)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f) return bg_fail(ctx, BG_ERR_OOM, "recipe %s: cannot read it from memory", name);
    bg_status s = load_stream(ctx, r, f, name);
    fclose(f);
    return s;
}

bg_status bg_recipe_check(bg_ctx *ctx, const bg_recipe *r)
{
    if (!r->model[0]) return bg_fail(ctx, BG_ERR_ARG, "model: empty (e.g. small_cnn, senet18:w=0.67)");
    if (!strcmp(r->schedule, "cosine_epoch") || !strcmp(r->schedule, "cosine_torch_epoch")) {
        if (r->t_max < 1) return bg_fail(ctx, BG_ERR_ARG, "schedule %s needs t_max >= 1 (epochs)", r->schedule);
    }
    if ((r->batch < 0 || r->epochs < 0) && !(r->mem_cap > 0))
        return bg_fail(ctx, BG_ERR_ARG, "batch = auto and epochs = auto need mem_cap (the profile finds the largest "
                       "batch under it)");
    if (!strcmp(r->select, "val") && r->val_per_class < 1)
        return bg_fail(ctx, BG_ERR_ARG, "select = val needs val_per_class >= 1 (or select = test or none)");
    if (r->train_per_class > 0 && r->val_per_class >= r->train_per_class)
        return bg_fail(ctx, BG_ERR_ARG, "val_per_class %lld leaves nothing of train_per_class %lld to train on",
                       (long long)r->val_per_class, (long long)r->train_per_class);
    if (r->eta_min > r->lr)
        return bg_fail(ctx, BG_ERR_ARG, "eta_min %g is above lr %g", r->eta_min, r->lr);
    if (r->nesterov && (strcmp(r->optimizer, "sgd") || !(r->momentum > 0)))
        return bg_fail(ctx, BG_ERR_ARG, "nesterov = 1 needs optimizer sgd with momentum > 0");
    const bool jpeg = bg_recipe_is_jpeg(r);
    if (!strcmp(r->data_format, "jpeg-folder") && r->train_size < 1)
        return bg_fail(ctx, BG_ERR_ARG, "data_format jpeg-folder needs train_size (the RandomResizedCrop side, e.g. 160)");
    if (!jpeg && (r->train_size > 0 || r->test_size > 0))
        return bg_fail(ctx, BG_ERR_ARG, "%s needs data_format jpeg-folder (the memory path trains and tests at the "
                       "images' own size)", r->train_size > 0 ? "train_size" : "test_size");
    if (jpeg && (!strcmp(r->aug, "crop-flip") || !strcmp(r->aug, "haet")))
        return bg_fail(ctx, BG_ERR_ARG, "aug %s runs on the memory path; the jpeg-folder path takes rrc-flip or none", r->aug);
    if (!jpeg && !strcmp(r->aug, "rrc-flip"))
        return bg_fail(ctx, BG_ERR_ARG, "aug rrc-flip needs data_format jpeg-folder (and train_size)");
    if (r->rrc_scale_min > r->rrc_scale_max)
        return bg_fail(ctx, BG_ERR_ARG, "rrc_scale_min %g is above rrc_scale_max %g", r->rrc_scale_min, r->rrc_scale_max);
    if (!strcmp(r->precision, "amp") && !strcmp(r->device, "cpu"))
        return bg_fail(ctx, BG_ERR_ARG, "precision amp runs on CUDA only (device = cpu)");
    bg_sched sc;
    bool per_epoch;
    int64_t freeze;
    bg_recipe_schedule(r, &sc, &per_epoch, &freeze);
    return bg_sched_check(ctx, &sc);
}

const char *bg_recipe_data_dir(const bg_recipe *r)
{
    if (r->data[0]) return r->data;
    return bg_is_dir(".cache/cifar10") ? ".cache/cifar10" : "/usr/share/datasets/fashion-mnist";
}

bool bg_recipe_is_jpeg(const bg_recipe *r)
{
    return !strcmp(r->data_format, "jpeg-folder") || (!strcmp(r->data_format, "auto") && r->train_size > 0);
}

bool bg_recipe_has_ensemble(const bg_recipe *r) { return !strcmp(r->tta, "flip") || r->n_test_sizes > 0; }

void bg_recipe_jpeg_opts(const bg_recipe *r, int64_t batch, bg_jpeg_data_opts *o)
{
    bg_batch_opts norm;
    bg_recipe_normalisation(r, &norm);
    *o = (bg_jpeg_data_opts){.train_per_class = (int)r->train_per_class, .val_per_class = (int)r->val_per_class,
                             .test_per_class = (int)r->test_per_class, .batch = (int)batch,
                             .train_size = (int)r->train_size,
                             .test_size = (int)(r->test_size > 0 ? r->test_size : r->train_size),
                             .augment = !strcmp(r->aug, "rrc-flip"), .scale_lo = r->rrc_scale_min,
                             .scale_hi = r->rrc_scale_max, .threads = (int)r->loader_threads,
                             .prefetch = (int)r->prefetch, .seed = (uint64_t)r->seed};
    for (int c = 0; c < 3; c++) o->mean[c] = norm.mean[c], o->std[c] = norm.std[c];
}

void bg_recipe_normalisation(const bg_recipe *r, bg_batch_opts *o)
{
    /* HAET's constants (seed-spec §1.2) for RGB; the fourth channel never has them */
    static const float CIFAR_MEAN[3] = {0.4914f, 0.4822f, 0.4465f}, CIFAR_STD[3] = {0.2023f, 0.1994f, 0.2010f};
    /* torchvision's ImageNet constants (timm's default cfg, seed-spec §3.2) */
    static const float IN_MEAN[3] = {0.485f, 0.456f, 0.406f}, IN_STD[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 4; c++) {
        const bool cifar = !strcmp(r->normalize, "cifar10") && c < 3, in = !strcmp(r->normalize, "imagenet") && c < 3;
        o->mean[c] = cifar ? CIFAR_MEAN[c] : in ? IN_MEAN[c] : 0.5f;
        o->std[c] = cifar ? CIFAR_STD[c] : in ? IN_STD[c] : 0.25f;
    }
}

void bg_recipe_schedule(const bg_recipe *r, bg_sched *s, bool *per_epoch, int64_t *freeze)
{
    if (!strcmp(r->schedule, "cosine_time")) *s = bg_sched_make(BG_SCHED_COSINE_TIME, r->lr);
    else if (!strcmp(r->schedule, "constant")) *s = bg_sched_make(BG_SCHED_CONSTANT, r->lr);
    else if (!strcmp(r->schedule, "cosine_epoch")) *s = bg_sched_make(BG_SCHED_COSINE, r->lr);
    else *s = bg_sched_make(BG_SCHED_COSINE_TORCH, r->lr);
    s->eta_min = r->eta_min;
    s->t_max = r->t_max;
    s->warmup = r->warmup;
    s->warmup_frac = r->warmup_frac;
    *per_epoch = strcmp(r->schedule, "cosine_time") != 0;
    *freeze = r->sched_freeze;
}

static void write_value(const bg_recipe *r, const key_spec *k, FILE *f)
{
    const char *field = (const char *)r + k->off;
    switch (k->type) {
    case K_STR:
    case K_CHOICE:
    case K_BUDGET: fprintf(f, "%s", field); break;
    case K_BOOL: fprintf(f, "%d", *(const bool *)field ? 1 : 0); break;
    case K_SIZES:
        for (int i = 0; i < r->n_test_sizes; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)((const int64_t *)field)[i]);
        break;
    case K_INT:
        if (k->auto_ok && *(const int64_t *)field < 0) fputs("auto", f);
        else fprintf(f, "%lld", (long long)*(const int64_t *)field);
        break;
    case K_NUM:
    case K_BYTES: { /* the shortest text that reads back as the same double */
        const double v = *(const double *)field;
        char b[40];
        snprintf(b, sizeof b, "%.15g", v);
        if (strtod(b, NULL) != v) snprintf(b, sizeof b, "%.17g", v);
        fputs(b, f);
        break;
    }
    }
}

void bg_recipe_write(const bg_recipe *r, FILE *f)
{
    fprintf(f, "# budgie recipe (from %s)\n", r->name);
    for (int i = 0; i < N_KEYS; i++) {
        fprintf(f, "%s = ", KEYS[i].name);
        write_value(r, &KEYS[i], f);
        fputc('\n', f);
    }
}

char *bg_recipe_text(const bg_recipe *r)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    bg_recipe_write(r, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

void bg_recipe_help(FILE *f)
{
    bg_recipe d;
    bg_recipe_defaults(&d);
    for (int i = 0; i < N_KEYS; i++) {
        fprintf(f, "  --%-16s %s", KEYS[i].name, KEYS[i].help);
        if (KEYS[i].type == K_CHOICE) fprintf(f, " (%s)", KEYS[i].choices);
        fprintf(f, "; default ");
        const char *field = (const char *)&d + KEYS[i].off;
        if ((KEYS[i].type == K_STR && !field[0]) || (KEYS[i].type == K_SIZES && !d.n_test_sizes)) fprintf(f, "\"\"");
        else write_value(&d, &KEYS[i], f);
        fputc('\n', f);
    }
}
