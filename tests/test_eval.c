/* Test-time augmentation and ensembles (train/ensemble.h) and `budgie
 * eval`: the bilinear resize against hand-worked PyTorch values, the
 * mirror, the metrics on a hand-made score table, and the command line on a
 * checkpoint of a short run (its top-1 must be the accuracy the run
 * recorded for that checkpoint). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>
#include "../train/checkpoint.h"
#include "../train/ensemble.h"
#include "../train/profile.h"
#include "cli_util.h"
#include "harness.h"

BG_TEST(tta_resize_and_flip)
{
    /* F.interpolate([[0,1],[2,3]], size=4, mode="bilinear", align_corners=False) */
    const float src[4] = {0, 1, 2, 3};
    const float want[16] = {0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3};
    float dst[16];
    bg_resize_nhwc_f32(src, 1, 2, 2, 1, dst, 4, 4);
    for (int i = 0; i < 16; i++) CHECK(fabsf(dst[i] - want[i]) < 1e-6f, "up [%d]: %g, want %g", i, dst[i], want[i]);
    /* down by 2: each output is the mean of a 2x2 block (half-pixel centres) */
    float back[4];
    bg_resize_nhwc_f32(want, 1, 4, 4, 1, back, 2, 2);
    const float mean4[4] = {0.375f, 1.125f, 1.875f, 2.625f};
    for (int i = 0; i < 4; i++) CHECK(fabsf(back[i] - mean4[i]) < 1e-6f, "down [%d]: %g, want %g", i, back[i], mean4[i]);
    /* same size: a copy; channels stay apart */
    float rgb[2 * 2 * 3], same[2 * 2 * 3];
    for (int i = 0; i < 12; i++) rgb[i] = (float)(i * 7 % 5) - 1.5f;
    bg_resize_nhwc_f32(rgb, 1, 2, 2, 3, same, 2, 2);
    CHECK(!memcmp(rgb, same, sizeof rgb), "same-size resize changes the image");
    /* flip: pixel (y, x) goes to (y, w-1-x) with its channels; twice is nothing */
    float img[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++) img[i] = (float)i;
    float f[24];
    memcpy(f, img, sizeof f);
    bg_flip_nhwc_f32(f, 2, 2, 3, 2);
    CHECK(f[0] == img[4] && f[1] == img[5] && f[2] == img[2] && f[4] == img[0] && f[12] == img[16],
          "flip: %g %g %g %g %g", f[0], f[1], f[2], f[4], f[12]);
    bg_flip_nhwc_f32(f, 2, 2, 3, 2);
    CHECK(!memcmp(f, img, sizeof f), "flip twice");
}

BG_TEST(tta_metrics_from_scores)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    /* 6 classes; image 0 right, 1 wrong (true class 2nd), 2 wrong (true class 6th), 3 a tie (goes to class 0) */
    const double s[4 * 6] = {
        0.1, 0.7, 0.0, 0.1, 0.05, 0.05,   /* y=1: top-1 */
        0.5, 0.1, 0.3, 0.05, 0.05, 0.0,   /* y=2: top-5, not top-1 */
        0.3, 0.25, 0.2, 0.15, 0.1, 0.0,   /* y=5: neither */
        0.4, 0.4, 0.1, 0.05, 0.05, 0.0,   /* y=1: tie with class 0, predicted 0 */
    };
    const int32_t y[4] = {1, 2, 5, 1};
    bg_metrics m;
    CHECK_OK(&ctx, bg_metrics_compute(&ctx, s, y, 4, 6, &m));
    CHECK(m.top1 == 0.25 && m.top5 == 0.75, "top1 %g top5 %g", m.top1, m.top5);
    CHECK(m.per_class[1] == 0.5 && m.per_class[2] == 0 && m.per_class[5] == 0 && m.per_class[0] == -1,
          "per class %g %g %g %g", m.per_class[0], m.per_class[1], m.per_class[2], m.per_class[5]);
    CHECK(m.confusion[1 * 6 + 1] == 1 && m.confusion[1 * 6 + 0] == 1 && m.confusion[2 * 6 + 0] == 1 &&
              m.confusion[5 * 6 + 0] == 1,
          "confusion");
    int64_t total = 0;
    for (int i = 0; i < 36; i++) total += m.confusion[i];
    CHECK(total == 4, "confusion sums to %lld", (long long)total);
    bg_metrics_free(&m);
    const int32_t bad[1] = {6};
    CHECK_ERR(&ctx, bg_metrics_compute(&ctx, s, bad, 1, 6, &m), BG_ERR_ARG, "label 6 of image 0 is outside 0..5");
    bg_ctx_free(&ctx);
}


BG_TEST(cli_eval_reproduces_the_runs_accuracy)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    struct stat st;
    if (stat(".cache/cifar10", &st) != 0) SKIP("no .cache/cifar10 (run tools/fetch_data.sh)");
    char dir[] = "/tmp/bg_eval_XXXXXX", cmd[512], out[16384], best[128];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "%s train --budget 4 --train-per-class 60 --test-per-class 20 --val-per-class 10 "
             "--out %s/run >/dev/null 2>&1", bg_test_budgie_bin(), dir);
    CHECK(system(cmd) == 0, "training run failed: %s", cmd);
    snprintf(best, sizeof best, "%s/run/best.safetensors", dir);
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_ckpt_meta *meta = calloc(1, sizeof *meta);
    CHECK_OK(&ctx, bg_ckpt_read_meta(&ctx, best, meta));
    snprintf(cmd, sizeof cmd, "%s eval %s/run --json 2>&1", bg_test_budgie_bin(), dir);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "eval: exit %d: %s", rc, out);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    CHECK(o != NULL, "eval --json printed no JSON: %s", out);
    if (o) {
        const double top1 = json_number_value(json_object_get(o, "top1"));
        CHECK(json_integer_value(json_object_get(o, "images")) == 200, "images");
        /* the same images and weights: the run's own number, to one image (batch-dependent rounding) */
        CHECK(fabs(top1 - meta->pos.last_accuracy) <= 1.0 / 200 + 1e-12, "eval top-1 %.4f, the run recorded %.4f",
              top1, meta->pos.last_accuracy);
        CHECK(json_number_value(json_object_get(o, "top5")) >= top1, "top-5 below top-1");
        CHECK(json_array_size(json_object_get(o, "confusion")) == 10, "confusion rows");
        json_decref(o);
    }
    /* flip TTA and a two-member ensemble of the same checkpoint run and report 2 and 4 views */
    snprintf(cmd, sizeof cmd, "%s eval %s %s/run/last.safetensors --tta flip --average logits --json 2>&1",
             bg_test_budgie_bin(), best, dir);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    o = json_loads(out, 0, &je);
    CHECK(rc == 0 && o && json_integer_value(json_object_get(o, "views")) == 4, "ensemble: exit %d: %s", rc, out);
    json_decref(o);
    /* two sizes (the small CNN takes any): 2 views; a side below 4: refused */
    snprintf(cmd, sizeof cmd, "%s eval %s --sizes 32,40 --json 2>&1", bg_test_budgie_bin(), best);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    o = json_loads(out, 0, &je);
    CHECK(rc == 0 && o && json_integer_value(json_object_get(o, "views")) == 2, "sizes 32,40: exit %d: %s", rc, out);
    json_decref(o);
    snprintf(cmd, sizeof cmd, "%s eval %s --sizes 3 2>&1", bg_test_budgie_bin(), best);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--sizes: '3' is not an integer in [4, 4096]"), "size 3: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s eval /nonexistent/x.safetensors 2>&1", bg_test_budgie_bin());
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "/nonexistent/x.safetensors"), "missing file: exit %d: %s", rc, out);
    free(meta);
    bg_ctx_free(&ctx);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* budgie plot on a hand-written log: a PNG of the stated size; a log with
 * no progress yet, or a run folder without one, is an error that says so. */
BG_TEST(cli_plot_draws_a_log)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    char dir[] = "/tmp/bg_plot_XXXXXX", path[128], cmd[512], out[4096];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "open %s", path);
    if (!f) return;
    fputs("{\"config\":\"train\"}\n", f);
    for (int e = 1; e <= 4; e++) {
        fprintf(f, "{\"step\":%d,\"epoch\":%d,\"loss\":%g,\"lr\":%g,\"elapsed_s\":%g}\n", 10 * e, e - 1, 2.0 / e, 0.1 / e,
                e - 0.5);
        fprintf(f, "{\"epoch\":%d,\"steps\":%d,\"elapsed_s\":%d,\"train_loss\":%g,\"test_acc\":%g,\"lr\":%g,"
                   "\"val_acc\":%g}\n", e, 10 * e, e, 2.0 / e, 0.2 * e, 0.1 / e, 0.19 * e);
    }
    fputs("not json\n{\"done\":true,\"elapsed_s\":4}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s plot %s --out %s/c.png 2>&1", bg_test_budgie_bin(), dir, dir);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "4 epochs, 4 step windows") && strstr(out, ":10 is not JSON"), "plot: exit %d: %s", rc,
          out);
    snprintf(path, sizeof path, "%s/c.png", dir);
    unsigned char head[24] = {0};
    f = fopen(path, "rb");
    CHECK(f && fread(head, 1, 24, f) == 24, "read %s", path);
    if (f) fclose(f);
    /* PNG signature, then IHDR: width 960, height 780 (3 panels of 260) */
    CHECK(!memcmp(head, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
    const unsigned w = (unsigned)head[16] << 24 | head[17] << 16 | head[18] << 8 | head[19];
    const unsigned h = (unsigned)head[20] << 24 | head[21] << 16 | head[22] << 8 | head[23];
    CHECK(w == 960 && h == 780, "size %ux%u", w, h);
    /* no progress yet; no log at all */
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    f = fopen(path, "w");
    if (f) fputs("{\"config\":\"train\"}\n", f), fclose(f);
    snprintf(cmd, sizeof cmd, "%s plot %s --out %s/d.png 2>&1", bg_test_budgie_bin(), dir, dir);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "no training progress yet"), "empty log: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s plot %s/nothing 2>&1", bg_test_budgie_bin(), dir);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "cannot open"), "no run: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* The profile's batch is the largest under the cap, by measurement: with
 * the cap set to the peak it measured, the same batch; one byte less, a
 * smaller one; and the notes for what cannot run. */
BG_TEST(profile_finds_the_largest_batch_under_the_cap)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_profile_query q = {.spec = "small_cnn:w=0.5", .size = 16, .device = BG_CPU, .mem_cap = 24.0 * 1048576,
                          .n_train = 1000, .budget_s = 60};
    bg_profile_result r, r2, r3;
    CHECK_OK(&ctx, bg_profile(&ctx, &q, &r));
    CHECK(r.note[0] == 0 && r.batch > 2 && r.peak_bytes <= q.mem_cap, "batch %lld, peak %.0f of %.0f (%s)",
          (long long)r.batch, r.peak_bytes, q.mem_cap, r.note);
    /* the plan's batch, confirmed by one real trial whose measured peak is the planned one */
    CHECK(r.trials == 1 && r.plans > 0 && r.planned_peak_bytes == r.peak_bytes,
          "%d trials after %d plans; planned peak %.0f, measured %.0f", r.trials, r.plans, r.planned_peak_bytes,
          r.peak_bytes);
    CHECK(r.step_s > 0 && fabs(r.epoch_s - (double)(1000 / r.batch) * r.step_s) < 1e-9 &&
              r.epochs_in_budget == (int64_t)floor(60 / r.epoch_s),
          "times: step %g, epoch %g, epochs %lld", r.step_s, r.epoch_s, (long long)r.epochs_in_budget);
    q.mem_cap = r.peak_bytes;
    CHECK_OK(&ctx, bg_profile(&ctx, &q, &r2));
    CHECK(r2.batch == r.batch, "cap = the measured peak: batch %lld, was %lld", (long long)r2.batch, (long long)r.batch);
    q.mem_cap = r.peak_bytes - 1;
    CHECK_OK(&ctx, bg_profile(&ctx, &q, &r3));
    CHECK(r3.batch < r.batch && r3.batch > 0, "one byte less: batch %lld, was %lld", (long long)r3.batch,
          (long long)r.batch);
    q.mem_cap = 1024;
    CHECK_OK(&ctx, bg_profile(&ctx, &q, &r3));
    CHECK(r3.batch == 0 && strstr(r3.note, "not even batch 1"), "tiny cap: %s", r3.note);
    q.mem_cap = 24.0 * 1048576, q.amp = true;
    CHECK_OK(&ctx, bg_profile(&ctx, &q, &r3));
    CHECK(strstr(r3.note, "amp needs a CUDA device"), "amp on the CPU: %s", r3.note);
    q.amp = false, q.spec = "resnet18", q.size = 40;
    CHECK_OK(&ctx, bg_profile(&ctx, &q, &r3));
    CHECK(r3.batch == 0 && r3.note[0], "a size the model rejects is noted: '%s'", r3.note);
    bg_ctx_free(&ctx);
}

/* On CUDA, as budgie train profiles rcv2023: AMP, the evaluation trainer at
 * another size beside the training step, the CUDA allocator's exact peak.
 * The largest batch under the cap; the cap set to its peak gives it again,
 * one byte less a smaller one. (Many real steps: the emulated suite runs
 * gpu_profile_* under its forward schedule only.) */
BG_GPU_TEST(gpu_profile_largest_batch_amp_with_eval_size)
{
    if (!bg_cuda_available()) SKIP("no CUDA device");
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_profile_query q = {.spec = "small_cnn:w=0.5", .size = 16, .amp = true, .device = BG_CUDA,
                          .mem_cap = 2.5 * 1048576, .max_batch = 64, .eval_batch = 8, .eval_size = 24,
                          .n_train = 512, .budget_s = 60};
    bg_profile_result r, r2, r3;
    CHECK_OK(&ctx, bg_profile(&ctx, &q, &r));
    CHECK(r.note[0] == 0 && r.batch > 2 && r.peak_bytes <= q.mem_cap, "batch %lld, peak %.0f of %.0f (%s)",
          (long long)r.batch, r.peak_bytes, q.mem_cap, r.note);
    if (!tc->failures && r.batch < q.max_batch) {
        q.mem_cap = r.peak_bytes;
        CHECK_OK(&ctx, bg_profile(&ctx, &q, &r2));
        CHECK(r2.batch == r.batch, "cap = the measured peak: batch %lld, was %lld", (long long)r2.batch,
              (long long)r.batch);
        q.mem_cap = r.peak_bytes - 1;
        CHECK_OK(&ctx, bg_profile(&ctx, &q, &r3));
        CHECK(r3.batch < r.batch && r3.batch > 0, "one byte less: batch %lld, was %lld", (long long)r3.batch,
              (long long)r.batch);
    }
    printf("    small_cnn:w=0.5 amp 16 px, eval at 24 px: batch %lld under %.1f MiB (peak %.2f MiB), %d trials\n",
           (long long)r.batch, 2.5, r.peak_bytes / 1048576, r.trials);
    bg_ctx_free(&ctx);
}
