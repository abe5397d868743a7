/* budgie train on a JPEG class folder (data_format jpeg-folder): a tiny
 * ImageNet-style set written with TurboJPEG into a mkdtemp directory at
 * test time (3 classes, 12 train and 4 val images each, 40x36, a class
 * colour plus per-image noise so a small CNN can learn something), trained
 * for a few seconds through the threaded loader, with the final test-time
 * ensemble checked against `budgie eval`. Also the data path on its own:
 * subsets, the validation split and restarting the stream at any batch. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include "../augment/jpeg_data.h"
#include "../engine/safetensors.h"
#include "../train/budget_run.h"
#include "cli_util.h"
#include "harness.h"

#define NC 3
#define N_TRAIN 12
#define N_VAL 4

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static bool write_jpeg(const char *path, int c, int i)
{
    const int w = 40, h = 36;
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px) return false;
    uint32_t r = (uint32_t)(c * 7919 + i * 104729 + 1);
    for (int p = 0; p < w * h; p++)
        for (int ch = 0; ch < 3; ch++) {
            r = r * 1664525u + 1013904223u;
            const int base = ch == c ? 190 : 60, v = base + (int)(r >> 26) - 32;
            px[3 * p + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    bool ok = tj && tjCompress2(tj, px, w, 0, h, TJPF_RGB, &jpg, &size, TJSAMP_444, 90, 0) == 0;
    if (tj) tjDestroy(tj);
    free(px);
    FILE *f = ok ? fopen(path, "wb") : NULL;
    ok = f && fwrite(jpg, 1, size, f) == size;
    if (f) ok = fclose(f) == 0 && ok;
    tjFree(jpg);
    return ok;
}

/* root/{train,val}/c0..c2/imgNN.jpg; false on failure. */
static bool make_set(char *root)
{
    strcpy(root, "/tmp/bg_train_jpeg_XXXXXX");
    if (!mkdtemp(root)) return false;
    char p[600];
    const char *split[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/%s", root, split[s]);
        if (mkdir(p, 0755)) return false;
        for (int c = 0; c < NC; c++) {
            snprintf(p, sizeof p, "%s/%s/c%d", root, split[s], c);
            if (mkdir(p, 0755)) return false;
            for (int i = 0; i < (s ? N_VAL : N_TRAIN); i++) {
                snprintf(p, sizeof p, "%s/%s/c%d/img%02d.jpg", root, split[s], c, i);
                if (!write_jpeg(p, c, s ? 100 + i : i)) return false;
            }
        }
    }
    return true;
}

/* The number after "key": in text (the first occurrence after `from`), or NAN. */
static double json_num(const char *text, const char *from, const char *key)
{
    const char *p = text ? strstr(text, from) : NULL;
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    p = p ? strstr(p, k) : NULL;
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static bool exists(const char *dir, const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

#define COMMON "--train-size 24 --test-size 32 --aug rrc-flip --model small_cnn:w=0.5 --batch 6 --eval-batch 8 " \
               "--val-per-class 2 --train-per-class 0 --test-per-class 0 --loader-threads 2 --prefetch 3 --device cpu --lr 0.05"

/* A few seconds of training bounded by the budget: checkpoints, epoch lines
 * with accuracies, an ensemble line (scored, or skipped when the machine is
 * too loaded for it to fit), and the whole process inside its budget,
 * measured from outside. Then a run bounded by epochs, whose ensemble must
 * run, and whose accuracy `budgie eval` reproduces on the same checkpoint. */
BG_TEST(cli_train_jpeg_folder_trains_and_ensembles)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    char root[64], run[128], cmd[2048], log[700];
    static char out[1 << 16];
    CHECK(make_set(root), "writing the data set under /tmp");
    snprintf(run, sizeof run, "%s/run", root);
    const double budget = 4;
    snprintf(cmd, sizeof cmd, "%s train --data %s " COMMON " --test-sizes 24,32 --tta flip --budget %g --out %s 2>&1",
             bg_test_budgie_bin(), root, budget, run);
    const double t0 = bg_monotonic_s();
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    const double wall = bg_monotonic_s() - t0;
    CHECK(rc == 0, "exit %d: %s", rc, out);
    CHECK(wall <= budget + 0.5, "the run took %.2f s for a budget of %g s", wall, budget);
    CHECK(exists(run, "last.safetensors") && exists(run, "best.safetensors"), "checkpoints missing in %s", run);
    snprintf(log, sizeof log, "%s/log.jsonl", run);
    char *text = bg_test_slurp(log);
    CHECK(text && strstr(text, "\"format\":\"jpeg-folder\"") && strstr(text, "\"n_train\":30") &&
              strstr(text, "\"n_val\":6") && strstr(text, "\"n_test\":12"),
          "config line: %.400s", text ? text : "(no log)");
    const int epochs = count(text, "\"test_acc\":"); /* epoch lines (the done line has best_/last_test_acc) */
    CHECK(epochs >= 1 && count(text, "\"val_acc\":") == epochs, "%d epoch lines with test and val accuracy", epochs);
    const double acc = json_num(text, "{\"epoch\":1,", "test_acc");
    CHECK(acc >= 0 && acc <= 1 && fabs(acc * 12 - round(acc * 12)) < 1e-4, "epoch 1 test_acc %g is k/12", acc);
    CHECK(text && (strstr(text, "{\"ensemble\":\"skipped\"") || json_num(text, "{\"ensemble\":", "views") == 4),
          "no ensemble line: %.2000s", text ? text : "");
    free(text);
    /* bounded by epochs: the ensemble runs, and budgie eval agrees with it */
    snprintf(run, sizeof run, "%s/run2", root);
    snprintf(cmd, sizeof cmd, "%s train --data %s " COMMON " --test-sizes 24,32 --tta flip --epochs 3 --budget 120 "
             "--out %s 2>&1", bg_test_budgie_bin(), root, run);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "exit %d: %s", rc, out);
    snprintf(log, sizeof log, "%s/log.jsonl", run);
    text = bg_test_slurp(log);
    const double ens = json_num(text, "{\"ensemble\":", "top1"), views = json_num(text, "{\"ensemble\":", "views");
    CHECK(ens >= 0 && ens <= 1 && views == 4, "ensemble line: top1 %g, views %g: %.300s", ens, views,
          text && strstr(text, "{\"ensemble\"") ? strstr(text, "{\"ensemble\"") : "(none)");
    CHECK(text && strstr(text, "{\"ensemble\":\"") && strstr(strstr(text, "{\"ensemble\":\""), "best.safetensors"),
          "the ensemble scores best.safetensors");
    CHECK(json_num(text, "{\"saved\":", "ensemble_top1") == ens, "the final line carries the ensemble accuracy");
    CHECK(strstr(out, "(tta flip, sizes 24,32, probs averaged, 4 views): test accuracy"), "summary: %s", out);
    free(text);
    snprintf(cmd, sizeof cmd, "%s eval %s --tta flip --sizes 24,32 --json --device cpu 2>&1", bg_test_budgie_bin(), run);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "eval exit %d: %s", rc, out);
    CHECK(json_num(out, "{", "top1") == ens && json_num(out, "{", "images") == 12,
          "budgie eval says top1 %g on %g images, the run's ensemble %g", json_num(out, "{", "top1"),
          json_num(out, "{", "images"), ens);
    rm_rf(root);
}

/* Two epochs, then --resume to four, give the bytes of four straight epochs
 * (model and optimizer state): the stream restarts at the resumed batch. */
BG_TEST(cli_train_jpeg_resume_is_exact)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    char root[64], a[128], b[128], cmd[2048], pa[200], pb[200];
    static char out[1 << 16];
    CHECK(make_set(root), "writing the data set under /tmp");
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    snprintf(cmd, sizeof cmd, "%s train --data %s " COMMON " --schedule constant --budget 60 --epochs 4 --out %s 2>&1",
             bg_test_budgie_bin(), root, a);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "straight run: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s train --data %s " COMMON " --schedule constant --budget 60 --epochs 2 --out %s 2>&1",
             bg_test_budgie_bin(), root, b);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "first part: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s train --resume %s --epochs 4 2>&1", bg_test_budgie_bin(), b);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "resuming"), "resume: exit %d: %s", rc, out);
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_st_file fa = {0}, fb = {0};
    snprintf(pa, sizeof pa, "%s/last.safetensors", a);
    snprintf(pb, sizeof pb, "%s/last.safetensors", b);
    CHECK_OK(&ctx, bg_st_open(&ctx, pa, &fa));
    CHECK_OK(&ctx, bg_st_open(&ctx, pb, &fb));
    int compared = 0, differ = 0;
    for (int i = 0; i < fa.n; i++) {
        const bg_st_entry *ea = &fa.entries[i], *eb = bg_st_find(&fb, ea->name);
        if (!eb || ea->end - ea->begin != eb->end - eb->begin ||
            memcmp(bg_st_bytes(&fa, ea), bg_st_bytes(&fb, eb), ea->end - ea->begin)) {
            if (!differ++) CHECK(false, "tensor %s differs after the resume", ea->name);
        }
        compared++;
    }
    CHECK(compared > 10 && compared == fb.n && differ == 0, "%d tensors compared, %d differ", compared, differ);
    bg_st_close(&fa);
    bg_st_close(&fb);
    bg_ctx_free(&ctx);
    rm_rf(root);
}

/* Bad keys and values are refused (exit 2, naming the key) before the data
 * folder, which does not exist here, is looked at. */
BG_TEST(cli_train_jpeg_rejects_bad_input_before_reading_data)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--data-format jpeg-folder", "data_format jpeg-folder needs train_size"},
        {"--test-size 32", "test_size needs data_format jpeg-folder"},
        {"--train-size 24 --test-sizes 24,abc", "--test-sizes: test_sizes '24,abc'"},
        {"--train-size 24 --test-sizes 8,16,24,32,40", "lists more than 4 sides"},
        {"--train-size 24 --tta both", "tta must be one of none|flip"},
        {"--train-size 24 --tta-average mean", "tta_average must be one of probs|logits"},
        {"--train-size 24 --aug haet", "aug haet runs on the memory path"},
        {"--aug rrc-flip", "aug rrc-flip needs data_format jpeg-folder"},
        {"--train-size 24 --aug rrc-flip --rrc-scale-min 0.9 --rrc-scale-max 0.5", "rrc_scale_min 0.9 is above rrc_scale_max 0.5"},
        {"--train-size 24 --loader-threads 1000", "loader_threads = 1000 is outside"},
        {"--train-size 5000", "train_size = 5000 is outside"},
        {"--data-format png", "data_format must be one of auto|memory|jpeg-folder"},
    };
    char cmd[1024];
    static char out[1 << 14];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s train --data /nonexistent/bg_jpeg --device cpu --out /nonexistent/bg_run %s 2>&1",
                 bg_test_budgie_bin(), cases[i].args);
        const int rc = bg_test_run_cmd(cmd, out, sizeof out);
        CHECK(rc == 2 && strstr(out, cases[i].needle), "%s: exit %d (want 2), output: %s", cases[i].args, rc, out);
    }
}

/* A corrupt JPEG in the training folder stops the run with a message naming the file. */
BG_TEST(cli_train_jpeg_names_a_corrupt_file)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    char root[64], bad[200], cmd[2048];
    static char out[1 << 16];
    CHECK(make_set(root), "writing the data set under /tmp");
    snprintf(bad, sizeof bad, "%s/train/c1/img03.jpg", root);
    FILE *f = fopen(bad, "wb");
    CHECK(f && fwrite("\xff\xd8\xff\xe0 not a jpeg at all", 1, 24, f) == 24, "writing %s", bad);
    if (f) fclose(f);
    snprintf(cmd, sizeof cmd, "%s train --data %s " COMMON " --val-per-class 0 --select none --budget 20 --out %s/run 2>&1",
             bg_test_budgie_bin(), root, root);
    const int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, bad), "exit %d (want 1), the message names %s: %s", rc, bad, out);
    rm_rf(root);
}

/* The data path alone: subsets and the split are disjoint and the sizes
 * asked for, and any batch asked for first (a resumed run's) has the bits
 * the uninterrupted stream gives it. */
BG_TEST(jpeg_data_restarts_at_any_batch)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char root[64];
    CHECK(make_set(root), "writing the data set under /tmp");
    bg_jpeg_data_opts o = {.train_per_class = 10, .val_per_class = 3, .test_per_class = 2, .batch = 5,
                           .train_size = 16, .test_size = 20, .augment = true, .scale_lo = 0.3, .scale_hi = 1,
                           .threads = 2, .prefetch = 2, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f},
                           .seed = 11};
    bg_jpeg_data d;
    CHECK_OK(&ctx, bg_jpeg_data_open(&ctx, root, &o, &d));
    CHECK(d.train.n == NC * 7 && d.val.n == NC * 3 && d.test.n == NC * 2 && d.steps_per_epoch == 4,
          "train %lld, val %lld, test %lld, %lld steps", (long long)d.train.n, (long long)d.val.n, (long long)d.test.n,
          (long long)d.steps_per_epoch);
    for (int64_t i = 0; i < d.val.n; i++)
        for (int64_t j = 0; j < d.train.n; j++) CHECK(strcmp(d.val.paths[i], d.train.paths[j]), "%s is in both", d.val.paths[i]);
    const size_t nb = (size_t)5 * 16 * 16 * 3;
    float *seq = malloc(6 * nb * sizeof *seq), *x = malloc(nb * sizeof *x);
    int32_t ys[6][5], y[5];
    for (int q = 0; q < 6; q++) CHECK_OK(&ctx, bg_jpeg_data_next_batch(&d, q / 4, q % 4, seq + q * nb, ys[q]));
    bg_jpeg_data_free(&d);
    CHECK_OK(&ctx, bg_jpeg_data_open(&ctx, root, &o, &d));
    const int order[3] = {5, 2, 3}; /* epoch 1 batch 1 first, then back into epoch 0 */
    for (int i = 0; i < 3; i++) {
        const int q = order[i];
        CHECK_OK(&ctx, bg_jpeg_data_next_batch(&d, q / 4, q % 4, x, y));
        CHECK(!memcmp(x, seq + q * nb, nb * sizeof *x) && !memcmp(y, ys[q], sizeof y), "batch %d differs when asked for "
              "out of order", q);
    }
    CHECK(memcmp(seq, seq + 4 * nb, nb * sizeof *seq), "epochs 0 and 1 start with the same batch");
    bg_jpeg_data_free(&d);
    free(seq), free(x);
    bg_ctx_free(&ctx);
    rm_rf(root);
}

/* The CUDA route of the JPEG path (BUDGIE_BIN names a CUDA build: make
 * test-emu sets bin/budgie-emu): the training and the evaluation trainer at
 * test_size run on the device (f32, then AMP), and the final ensemble runs
 * on the device and agrees with `budgie eval --device cuda` on the same
 * checkpoint. Whole CLI runs under the emulator take minutes: the
 * emulated suite runs gpu_cli_* tests under its forward schedule only. */
BG_GPU_TEST(gpu_cli_train_jpeg_folder)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built", bg_test_budgie_bin());
    char root[64], run[128], cmd[2048], log[700];
    static char out[1 << 16];
    CHECK(make_set(root), "writing the data set under /tmp");
    snprintf(run, sizeof run, "%s/f32", root);
    snprintf(cmd, sizeof cmd,
             "%s train --data %s --train-size 24 --test-size 32 --aug rrc-flip --model small_cnn:w=0.5 --batch 6 "
             "--eval-batch 8 --val-per-class 2 --train-per-class 0 --test-per-class 0 "
             "--loader-threads 2 --prefetch 3 --device cuda --lr 0.05 --epochs 1 --budget 600 --test-sizes 24,32 "
             "--tta flip --out %s 2>&1", bg_test_budgie_bin(), root, run);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "cuda f32: exit %d: %s", rc, out);
    snprintf(log, sizeof log, "%s/log.jsonl", run);
    char *text = bg_test_slurp(log);
    CHECK(text && strstr(text, "\"device\":\"cuda\"") && count(text, "\"val_acc\":") == 1,
          "an epoch on cuda with validation: %.600s", text ? text : "(no log)");
    const double ens = json_num(text, "{\"ensemble\":", "top1");
    CHECK(ens >= 0 && ens <= 1 && json_num(text, "{\"ensemble\":", "views") == 4, "ensemble top1 %g", ens);
    free(text);
    snprintf(cmd, sizeof cmd, "%s eval %s --tta flip --sizes 24,32 --json --device cuda 2>&1", bg_test_budgie_bin(), run);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && json_num(out, "{", "top1") == ens, "budgie eval --device cuda: exit %d, top1 %g vs the run's %g: %s",
          rc, json_num(out, "{", "top1"), ens, out);
    snprintf(run, sizeof run, "%s/amp", root);
    snprintf(cmd, sizeof cmd,
             "%s train --data %s --train-size 24 --test-size 32 --aug rrc-flip --model small_cnn:w=0.5 --batch 6 "
             "--eval-batch 8 --val-per-class 2 --train-per-class 0 --test-per-class 0 --device cuda --precision amp "
             "--lr 0.05 --epochs 1 --budget 600 --out %s 2>&1", bg_test_budgie_bin(), root, run);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    snprintf(log, sizeof log, "%s/log.jsonl", run);
    text = bg_test_slurp(log);
    CHECK(rc == 0 && text && count(text, "\"test_acc\":") == 1 && strstr(text, "\"precision\":\"amp\""),
          "cuda amp: exit %d: %s", rc, out);
    free(text);
    rm_rf(root);
}
