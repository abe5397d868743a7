/* A training recipe: every choice a budgeted run makes, as `key = value`
 * text (recipes/haet2021, recipes/rcv2023, recipes/default). One key table
 * serves recipe files, the command line (`--key value`) and the help text;
 * each value is parsed strictly (the whole string, finite, in range, one of
 * the listed choices) and an error names the key and where it came from
 * (file:line or the option), before any data is read.
 *
 * Budgets: "600", "600s", "10m", "1.5h", or GPU-relative "10m@v100",
 * "3h@rtx3090": that much of the named GPU's work, converted to this GPU's
 * seconds by the ratio of their training throughputs (bg_budget_table). */
#ifndef BG_RECIPE_H
#define BG_RECIPE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../augment/dataset.h"
#include "../augment/jpeg_data.h"
#include "../engine/context.h"
#include "sched.h"

typedef struct {
    char name[256];            /* the recipe file it came from, or "built-in" */
    char model[192];           /* zoo spec; small_cnn's c and classes follow the data unless given */
    char data[512];            /* "" = the default data (.cache/cifar10, else Fashion-MNIST) */
    char data_format[16];      /* auto (jpeg-folder when train_size is set) | memory | jpeg-folder */
    int64_t train_size;        /* jpeg-folder: RandomResizedCrop output side (0 = memory path: the images' size) */
    int64_t test_size;         /* jpeg-folder: resize + centre-crop side for evaluation (0 = train_size) */
    int64_t test_sizes[4];     /* the final ensemble's input sides (views resized from the test images) */
    int n_test_sizes;          /* 0: no multi-resolution views */
    char tta[8];               /* the final ensemble: none | flip (adds each image's mirror) */
    char tta_average[8];       /* probs | logits */
    int64_t loader_threads, prefetch; /* jpeg-folder: decode threads and ready batches (0 = defaults) */
    double rrc_scale_min, rrc_scale_max; /* jpeg-folder: RandomResizedCrop area range */
    int64_t train_per_class, test_per_class; /* seeded subsets (0 = all) */
    int64_t val_per_class;     /* carved out of the training subset for choosing "best" (0 = none) */
    char select[8];            /* what "best" is chosen on: val | test (the seed's way) | none */
    char aug[16];              /* none | crop-flip | haet (memory path) | rrc-flip (jpeg-folder) */
    int64_t crop_pad;          /* crop-flip and haet: zero padding before the random crop */
    int64_t cutout;            /* haet: Cutout side (0 = none) */
    char normalize[16];        /* cifar10 (HAET's constants) | half (mean 0.5, std 0.25) | imagenet */
    char optimizer[16];        /* sgd | adam | adamw | ... (engine/optim.h) */
    double lr, momentum, wd;
    bool nesterov;
    double label_smoothing;
    char schedule[24];         /* cosine_time | cosine_epoch | cosine_torch_epoch | constant */
    double eta_min;
    int64_t warmup;            /* epoch schedules: linear warmup over this many epochs (0 = none) */
    double warmup_frac;        /* cosine_time: linear warmup over this fraction of the budget (0 = none) */
    int64_t t_max;             /* epoch schedules: the epoch where lr reaches eta_min */
    int64_t sched_freeze;      /* epoch schedules: the counter stops here (0 = never; HAET: 262) */
    int64_t batch, eval_batch;
    int64_t epochs;            /* 0 = until the budget ends */
    char precision[8];         /* fp32 | amp */
    double mem_cap;            /* bytes of device memory (0 = no cap) */
    char budget[64];           /* as written: "600", "10m@v100" */
    double budget_s;           /* parsed, before any GPU conversion */
    char budget_gpu[16];       /* "" or the reference GPU of a relative budget */
    char device[8];            /* auto | cpu | cuda */
    char gpu_data[8];          /* auto: on CUDA the training set lives on the device and batches are
                                  assembled and augmented there | off: host batches */
    char rtc[8];               /* auto: on CUDA, NVRTC-specialised conv/GEMM kernels when NVRTC loads | off */
    int64_t seed;
    int64_t log_every;         /* > 0: a JSON log line every this many steps too */
    double checkpoint_every;   /* > 0: last.safetensors also every this many seconds between steps */
    char out[512];             /* run folder ("" = runs/<time>-<model>) */
} bg_recipe;

/* The built-in defaults: a short HAET-style run of the small CNN that suits
 * a CPU (also what recipes/default writes out). */
void bg_recipe_defaults(bg_recipe *r);
/* Set one key from text; `where` names the origin for messages ("--lr",
 * "recipes/haet2021:12"). Unknown keys list the known ones. */
bg_status bg_recipe_set(bg_ctx *ctx, bg_recipe *r, const char *key, const char *value, const char *where);
/* Apply a recipe file: `key = value` lines, '#' comments, blank lines. */
bg_status bg_recipe_load(bg_ctx *ctx, bg_recipe *r, const char *path);
/* The same from text (a checkpoint's recipe); `name` stands for it in messages. */
bg_status bg_recipe_load_text(bg_ctx *ctx, bg_recipe *r, const char *text, const char *name);
/* Checks between keys (e.g. amp needs a CUDA device, eval_batch >= 1). */
bg_status bg_recipe_check(bg_ctx *ctx, const bg_recipe *r);
/* The data folder the recipe names, or the default one: .cache/cifar10 when
 * it is there, else Debian's Fashion-MNIST. */
const char *bg_recipe_data_dir(const bg_recipe *r);
/* Whether the recipe trains from a JPEG class folder through the threaded
 * loader (data_format jpeg-folder, or auto with train_size set). */
bool bg_recipe_is_jpeg(const bg_recipe *r);
/* The JPEG data path's options for a training batch of `batch`. */
void bg_recipe_jpeg_opts(const bg_recipe *r, int64_t batch, bg_jpeg_data_opts *o);
/* Whether the recipe asks for a final test-time ensemble (tta flip or test_sizes). */
bool bg_recipe_has_ensemble(const bg_recipe *r);
/* The recipe's normalisation (mean and std per channel) into o. */
void bg_recipe_normalisation(const bg_recipe *r, bg_batch_opts *o);
/* The learning-rate schedule the recipe names: the config, whether its
 * counter is the epoch (else time-based), and where that counter freezes. */
void bg_recipe_schedule(const bg_recipe *r, bg_sched *s, bool *per_epoch, int64_t *freeze);
/* The recipe as `key = value` text, every key (for the run folder and the log). */
void bg_recipe_write(const bg_recipe *r, FILE *f);
/* The same as a malloc'd string (NULL when out of memory). */
char *bg_recipe_text(const bg_recipe *r);
/* One line per key: name, default, help (for --help). */
void bg_recipe_help(FILE *f);

/* ---- strict values (also the command line's, tools/options.h) ---- */
/* A number from the whole string: no leading blank, no trailing text, finite. */
bool bg_parse_finite(const char *s, double *v);
/* Whether v is one of choices ("a|b|c"). */
bool bg_choice_ok(const char *choices, const char *v);

/* ---- budgets ---- */
/* "600" / "600s" / "10m" / "1.5h" [@gpu] into seconds and the GPU name ("" if none). */
bg_status bg_budget_parse(bg_ctx *ctx, const char *text, double *seconds, char *gpu, size_t gpu_cap);
/* Training throughput of a GPU relative to a V100 (ResNet-50 AMP images/s,
 * Lambda's benchmark; see train/recipe.c), by a short name ("v100",
 * "rtx3090", "a100", "h100") or a device name containing one ("NVIDIA H100
 * 80GB HBM3"); 0 when unknown. */
double bg_gpu_speed(const char *name);
/* The known short names, for messages: "v100, rtx3090, a100, h100". */
const char *bg_gpu_speed_names(void);

#endif
