/* budgie eval RUN_OR_CKPT... [--tta flip] [--sizes 32,40] [--average probs|logits] [--json]:
 * the test accuracy of one checkpoint or of an ensemble of several, with
 * flip and multi-resolution test-time augmentation (train/ensemble.h). The
 * test subset is the one the (first) run trained against: its recipe, kept
 * in the checkpoint, names the data, the subset size, the normalisation and
 * the seed. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../augment/data_source.h"
#include "../augment/loader.h"
#include "../models/model.h"
#include "../train/checkpoint.h"
#include "../train/ensemble.h"
#include "../train/recipe.h"
#include "options.h"
#include "verbs.h"

#define MAX_MEMBERS 16
#define MAX_SIZES 4

static void usage(FILE *f)
{
    fprintf(f, "usage: budgie eval RUN_OR_CKPT... [--tta flip] [--sizes S1,S2] [--average probs|logits]\n"
               "                   [--device auto|cpu|cuda] [--json]\n"
               "\n"
               "Test accuracy of a checkpoint, or of the ensemble of several (their scores averaged):\n"
               "top-1, top-5, per-class accuracy and the confusion matrix. A run folder stands for its\n"
               "best.safetensors (else last.safetensors). The test subset, normalisation and data are the\n"
               "first checkpoint's recipe's; every member must share them.\n"
               "  --tta flip        add each image's mirror image as a second view\n"
               "  --sizes S1,S2     also evaluate the images resized (bilinear) to S x S; the model must\n"
               "                    accept that size (the CIFAR ResNets and MobileNetV2 take their training\n"
               "                    size only; small_cnn and ResNeSt take any)\n"
               "  --average A       average softmax probabilities (default) or logits over views and models\n"
               "  --json            one JSON object instead of the table\n");
}

/* A run folder's checkpoint: best, else last; a file stands for itself. */
static void resolve(const char *arg, char *out, size_t cap)
{
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(out, cap, "%s/best.safetensors", arg);
        if (stat(out, &st) != 0) snprintf(out, cap, "%s/last.safetensors", arg);
    } else {
        snprintf(out, cap, "%s", arg);
    }
}

static bool same_test_set(const bg_recipe *a, const bg_recipe *b)
{
    const int ta = (int)(a->test_size ? a->test_size : a->train_size), tb = (int)(b->test_size ? b->test_size : b->train_size);
    return !strcmp(a->data, b->data) && a->test_per_class == b->test_per_class && a->seed == b->seed &&
           !strcmp(a->normalize, b->normalize) && bg_recipe_is_jpeg(a) == bg_recipe_is_jpeg(b) &&
           (!bg_recipe_is_jpeg(a) || ta == tb);
}

int bg_cmd_eval(int argc, char **argv)
{
    const char *paths[MAX_MEMBERS], *tta = NULL, *average = "probs", *dev = "auto";
    int n_paths = 0, sizes[MAX_SIZES], n_sizes = 0;
    bool json = false;
    const bg_opt opts[] = {
        {.name = "tta", .type = BG_OPT_CHOICE, .dst = &tta, .choices = "flip"},
        {.name = "sizes", .type = BG_OPT_INTS, .dst = sizes, .min = 4, .max = 4096, .count = &n_sizes,
         .max_items = MAX_SIZES},
        {.name = "average", .type = BG_OPT_CHOICE, .dst = &average, .choices = "probs|logits"},
        {.name = "device", .type = BG_OPT_CHOICE, .dst = &dev, .choices = "auto|cpu|cuda"},
        {.name = "json", .type = BG_OPT_FLAG, .dst = &json},
    };
    const int prc = bg_opts_parse("eval", opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, paths, MAX_MEMBERS,
                                  &n_paths);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc) return prc;
    const bool flip = tta != NULL, logits = !strcmp(average, "logits");
    if (!n_paths) {
        usage(stderr);
        return 2;
    }
    bg_ctx ctx;
    const bg_device device = !strcmp(dev, "cpu") ? BG_CPU : !strcmp(dev, "cuda") || bg_cuda_available() ? BG_CUDA : BG_CPU;
    if (bg_ctx_init(&ctx, device, 0)) {
        fprintf(stderr, "budgie eval: %s\n", bg_errmsg(&ctx));
        return 2;
    }
    /* every member's recipe first: nothing is loaded when one does not fit */
    char ckpt[MAX_MEMBERS][600];
    bg_ckpt_meta *meta = calloc(1, sizeof *meta);
    bg_recipe *rec = calloc(MAX_MEMBERS, sizeof *rec);
    char models[MAX_MEMBERS][192];
    int rc = 2;
    bg_dataset train = {0}, test = {0};
    bg_loader ld = {0};
    bg_jpeg_data jd = {0};
    double *scores = NULL;
    int32_t *labels = NULL;
    bg_metrics m = {0};
    if (!meta || !rec) {
        bg_fail(&ctx, BG_ERR_OOM, "out of host memory");
        goto out;
    }
    for (int i = 0; i < n_paths; i++) {
        resolve(paths[i], ckpt[i], sizeof ckpt[i]);
        bg_recipe_defaults(&rec[i]);
        if (bg_ckpt_read_meta(&ctx, ckpt[i], meta) || bg_recipe_load_text(&ctx, &rec[i], meta->recipe, ckpt[i]))
            goto out;
        snprintf(models[i], sizeof models[i], "%s", meta->model);
        if (i && !same_test_set(&rec[0], &rec[i])) {
            bg_fail(&ctx, BG_ERR_ARG, "%s was tested on another set than %s (data, data path, test_size, test_per_class, seed "
                    "or normalisation differ)", ckpt[i], ckpt[0]);
            goto out;
        }
    }
    rc = 1;
    const bg_recipe *r = &rec[0];
    const char *data = bg_recipe_data_dir(r);
    /* the run's test set, through the run's own data path */
    bg_eval_set set;
    const char **class_names = NULL;
    if (bg_recipe_is_jpeg(r)) {
        bg_jpeg_data_opts jo;
        bg_recipe_jpeg_opts(r, 1, &jo);
        if (bg_jpeg_data_open(&ctx, data, &jo, &jd)) goto out;
        set = bg_jpeg_data_test_set(&jd);
        class_names = (const char **)jd.test.class_names;
    } else {
        const char *fmt;
        if (bg_open_train_test(&ctx, data, 0, &train, &test, &fmt)) goto out;
        bg_batch_opts plain = {0};
        bg_recipe_normalisation(r, &plain);
        if (bg_loader_init(&ld, &ctx, &train, &test, 1, (int)r->test_per_class, 1, &plain, &plain, (uint64_t)r->seed))
            goto out;
        set = bg_loader_test_set(&ld);
        class_names = (const char **)test.class_names;
    }
    const int k = set.k;
    scores = calloc((size_t)set.n * k + 1, sizeof *scores);
    labels = malloc((size_t)set.n * sizeof *labels + 1);
    if (!scores || !labels) {
        bg_fail(&ctx, BG_ERR_OOM, "out of host memory for %lld test images", (long long)set.n);
        goto out;
    }
    if (!n_sizes) sizes[n_sizes++] = set.h;
    int views = 0;
    for (int i = 0; i < n_paths; i++) {
        bg_model *model = NULL;
        if (bg_model_new(&ctx, device, models[i], &model) || bg_ckpt_load_model(&ctx, ckpt[i], model)) {
            bg_model_free(&ctx, model);
            goto out;
        }
        /* the first run's evaluation batch: `budgie train`'s final ensemble uses it too, so both see the same bits */
        if (bg_ensemble_scores(&ctx, device, bg_model_forward, model, &set, sizes, n_sizes, flip, logits,
                               (int)r->eval_batch, scores, labels, &views)) {
            char msg[sizeof ctx.err];
            snprintf(msg, sizeof msg, "%s", bg_errmsg(&ctx));
            bg_fail(&ctx, ctx.status, "%s %s", ckpt[i], msg);
            bg_model_free(&ctx, model);
            goto out;
        }
        bg_model_free(&ctx, model);
    }
    if (bg_metrics_compute(&ctx, scores, labels, set.n, k, &m)) goto out;
    if (json) {
        json_t *o = json_pack("{s:I, s:i, s:i, s:f, s:f, s:s, s:b}", "images", (json_int_t)m.n, "classes", k, "views",
                              views, "top1", m.top1, "top5", m.top5, "average", logits ? "logits" : "probs", "flip", flip);
        json_t *members = json_array(), *pc = json_array(), *conf = json_array();
        for (int i = 0; i < n_paths; i++) json_array_append_new(members, json_string(ckpt[i]));
        for (int j = 0; j < k; j++) {
            json_array_append_new(pc, json_real(m.per_class[j]));
            json_t *row = json_array();
            for (int q = 0; q < k; q++) json_array_append_new(row, json_integer(m.confusion[(size_t)j * k + q]));
            json_array_append_new(conf, row);
        }
        json_object_set_new(o, "checkpoints", members);
        json_object_set_new(o, "per_class", pc);
        json_object_set_new(o, "confusion", conf);
        char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (txt) printf("%s\n", txt);
        free(txt);
        json_decref(o);
    } else {
        printf("%d checkpoint(s), %d view(s) each averaged as %s; %lld test images of %s, %d classes\n", n_paths,
               views / n_paths, logits ? "logits" : "probabilities", (long long)m.n, data, k);
        printf("top-1 %.2f%%   top-5 %.2f%%\n\nper class:\n", 100 * m.top1, 100 * m.top5);
        for (int j = 0; j < k; j++)
            printf("  %-12s %6.2f%%\n", class_names ? class_names[j] : "?", 100 * m.per_class[j]);
        printf("\nconfusion (rows: true class, columns: predicted)\n      ");
        for (int q = 0; q < k; q++) printf("%5d", q);
        printf("\n");
        for (int j = 0; j < k; j++) {
            printf("  %3d ", j);
            for (int q = 0; q < k; q++) printf("%5lld", (long long)m.confusion[(size_t)j * k + q]);
            printf("\n");
        }
    }
    rc = 0;
out:
    if (rc) fprintf(stderr, "budgie eval: %s\n", bg_errmsg(&ctx));
    bg_metrics_free(&m);
    free(scores), free(labels), free(meta), free(rec);
    bg_jpeg_data_free(&jd);
    bg_loader_free(&ld);
    bg_dataset_free(&train);
    bg_dataset_free(&test);
    bg_ctx_free(&ctx);
    return rc;
}
