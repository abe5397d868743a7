/* budgie train: a budgeted training run of the small CNN (the foundation's
 * main job; later issues add the model zoo and the HAET/RCV recipes). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../augment/data_source.h"
#include "../augment/loader.h"
#include "../engine/budget_run.h"
#include "../engine/safetensors.h"
#include "../models/model.h"
#include "../models/small_cnn.h"
#include "verbs.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: budgie train [options]\n"
            "  --data DIR          train/test data (image folders, CIFAR .bin or idx); default: .cache/cifar10,\n"
            "                      else /usr/share/datasets/fashion-mnist (run tools/fetch_data.sh first)\n"
            "  --budget S          wall-clock budget in seconds (default 120); the run stops before it\n"
            "  --train-per-class N seeded training subset per class (default 500: HAET's 5k; 0 = all)\n"
            "  --test-per-class N  seeded test subset per class (default 100: HAET's 1k; 0 = all)\n"
            "  --epochs N          stop after N epochs even with budget left (default 0 = budget only)\n"
            "  --batch N           batch size (default 64)\n"
            "  --aug NAME          crop-flip (default), haet (crop, flip, AutoAugment CIFAR-10 PIL policy,\n"
            "                      Cutout 16 before normalising) or none\n"
            "  --optim NAME        sgd|adam|adamw|adamax|adagrad|adadelta|asgd (default sgd, momentum 0.9)\n"
            "  --lr X --wd X       learning rate (default 0.05), weight decay (default 5e-4)\n"
            "  --model SPEC        small_cnn (default) or a model-zoo spec, e.g. senet18:w=0.67 (budgie model list);\n"
            "                      zoo weights are saved with PyTorch's names\n"
            "  --width N           small CNN width (default 16: widths 16/32/64)\n"
            "  --device D          auto|cpu|cuda (default auto: cuda when a device is present)\n"
            "  --seed N            seed for init, subsets, shuffling and augmentation (default 0)\n"
            "  --out FILE          final weights as safetensors (default runs/last.safetensors)\n"
            "  --log FILE          JSON lines (default: stdout)\n");
}

int bg_cmd_train(int argc, char **argv)
{
    const char *data = NULL, *out = "runs/last.safetensors", *logp = NULL, *dev = "auto", *optim = "sgd";
    const char *aug = "crop-flip", *spec = "small_cnn";
    double budget = 120, lr = 0.05, wd = 5e-4;
    int train_pc = 500, test_pc = 100, batch = 64, width = 16, epochs = 0;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!v) { fprintf(stderr, "budgie train: option %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--budget")) budget = atof(v);
        else if (!strcmp(a, "--train-per-class")) train_pc = atoi(v);
        else if (!strcmp(a, "--test-per-class")) test_pc = atoi(v);
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--optim")) optim = v;
        else if (!strcmp(a, "--aug")) aug = v;
        else if (!strcmp(a, "--model")) spec = v;
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--wd")) wd = atof(v);
        else if (!strcmp(a, "--width")) width = atoi(v);
        else if (!strcmp(a, "--device")) dev = v;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--log")) logp = v;
        else { fprintf(stderr, "budgie train: unknown option %s\n", a); usage(stderr); return 2; }
    }
    if (!data) data = bg_is_dir(".cache/cifar10") ? ".cache/cifar10" : "/usr/share/datasets/fashion-mnist";
    bg_device device = !strcmp(dev, "cuda") ? BG_CUDA : !strcmp(dev, "cpu") ? BG_CPU : bg_cuda_available() ? BG_CUDA : BG_CPU;
    if (strcmp(aug, "crop-flip") && strcmp(aug, "haet") && strcmp(aug, "none")) {
        fprintf(stderr, "budgie train: --aug must be crop-flip, haet or none, got '%s'\n", aug);
        return 2;
    }
    if (strcmp(dev, "cuda") && strcmp(dev, "cpu") && strcmp(dev, "auto")) {
        fprintf(stderr, "budgie train: --device must be auto, cpu or cuda, got '%s'\n", dev);
        return 2;
    }

    bg_ctx ctx;
    bg_dataset train = {0}, test = {0};
    bg_loader ld = {0};
    bg_trainer tr = {0};
    bg_small_cnn *model = NULL;
    bg_model *zoo = NULL;
    FILE *log = stdout;
    int rc = 1;
    const char *fmt = "";
    if (bg_ctx_init(&ctx, device, seed)) goto fail;
    if (logp && !(log = fopen(logp, "w"))) {
        bg_fail(&ctx, BG_ERR_IO, "cannot open log file '%s'", logp);
        log = stdout;
        goto fail;
    }
    fprintf(stderr, "budgie train: reading %s ...\n", data);
    if (bg_open_train_test(&ctx, data, 0, &train, &test, &fmt)) goto fail;
    bool augment = strcmp(aug, "none") != 0, haet = !strcmp(aug, "haet");
    if (haet && train.c != 3) {
        bg_fail(&ctx, BG_ERR_ARG, "--aug haet needs RGB images; %s has %d channel(s)", data, train.c);
        goto fail;
    }
    bg_batch_opts train_opts = {.crop_pad = augment ? (train.h >= 32 ? 4 : 2) : 0, .flip = augment && train.c == 3,
                                .autoaugment = haet, .cutout = haet ? 16 : 0};
    bg_batch_opts test_opts = {0};
    for (int c = 0; c < 4; c++) { /* per-dataset normalisation is a later issue: centre [0,1] pixels */
        train_opts.mean[c] = test_opts.mean[c] = 0.5f;
        train_opts.std[c] = test_opts.std[c] = 0.25f;
    }
    if (bg_loader_init(&ld, &ctx, &train, &test, train_pc, test_pc, batch, &train_opts, &test_opts, seed)) goto fail;
    bg_optim_kind kind;
    if (bg_optim_parse(&ctx, optim, &kind)) goto fail;
    bg_optim_config oc = bg_optim_defaults(kind);
    oc.lr = lr;
    oc.weight_decay = wd;
    if (kind == BG_OPT_SGD) oc.momentum = 0.9;
    bool small = !strcmp(spec, "small_cnn");
    if (small) {
        if (bg_small_cnn_new(&ctx, device, train.c, width, train.n_classes, &model)) goto fail;
    } else {
        if (bg_model_new(&ctx, device, spec, &zoo)) goto fail;
        if (zoo->n_classes != train.n_classes || zoo->in_c != train.c) {
            bg_fail(&ctx, BG_ERR_SHAPE, "model '%s' takes %d channels and %d classes; the data has %d and %d (set classes= in the spec)",
                    zoo->spec, zoo->in_c, zoo->n_classes, train.c, train.n_classes);
            goto fail;
        }
    }
    if (bg_trainer_init(&tr, &ctx, device, small ? bg_small_cnn_forward : bg_model_forward,
                        small ? (void *)model : (void *)zoo, batch, 256, train.h, train.w, train.c, &oc, 0.0f))
        goto fail;
    fprintf(stderr, "budgie train: %s on %s data (%s), %lld train / %lld test images of %dx%dx%d, %d classes, %s, budget %.0f s\n",
            small ? "small_cnn" : zoo->spec, fmt, data, (long long)ld.n_train, (long long)ld.n_test, train.h, train.w, train.c, train.n_classes,
            bg_device_name(device), budget);
    /* The first log line records everything needed to rerun: the subsets are
     * a function of the seed and the per-class counts. */
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:f, s:f, s:i, s:f, s:s, s:s}", "config",
                            "train", "model", small ? "small_cnn" : zoo->spec, "data", data, "format", fmt, "seed",
                            (json_int_t)seed, "train_per_class", (json_int_t)train_pc, "test_per_class",
                            (json_int_t)test_pc, "batch", (json_int_t)batch, "optim", optim, "lr", lr, "wd", wd,
                            "width", width, "budget_s", budget, "aug", aug, "device", bg_device_name(device));
    char *line = cfg ? json_dumps(cfg, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (line) fprintf(log, "%s\n", line), fflush(log);
    free(line);
    json_decref(cfg);
    bg_run_config rc_cfg = {
        .next_batch = bg_loader_next_batch, .evaluate = bg_loader_evaluate, .data = &ld,
        .steps_per_epoch = bg_loader_steps_per_epoch(&ld), .budget_s = budget, .max_epochs = epochs,
        .sched = bg_sched_make(BG_SCHED_COSINE_TIME, lr), .log = log,
    };
    bg_run_result res;
    if (bg_run_budgeted(&ctx, &tr, &rc_cfg, &res)) goto fail;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) { *slash = 0; mkdir(dir, 0777); }
    const char *mk[] = {"model", "format"}, *mv[] = {"small_cnn", "budgie NHWC/OHWI"};
    if (small ? bg_st_save(&ctx, out, model->all, NULL, model->n_all, mk, mv, 2) : bg_model_save(&ctx, zoo, out)) goto fail;
    fprintf(stderr, "budgie train: %lld epochs, %lld steps in %.1f s of %.0f s; best test accuracy %.2f%%; weights in %s\n",
            (long long)res.epochs, (long long)res.steps, res.elapsed_s, budget, 100 * res.best_accuracy, out);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "budgie train: %s\n", bg_errmsg(&ctx));
    if (log != stdout) fclose(log);
    bg_trainer_free(&tr);
    bg_small_cnn_free(&ctx, model);
    bg_model_free(&ctx, zoo);
    bg_loader_free(&ld);
    bg_dataset_free(&train);
    bg_dataset_free(&test);
    bg_ctx_free(&ctx);
    return rc;
}
