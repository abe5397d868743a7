/* Recipes (train/recipe.h): strict values with messages naming the key and
 * where it came from, recipe files, the budget syntax and GPU conversion,
 * the HAET recipe's exact learning rates, and `budgie train` refusing bad
 * input before it reads any data and staying inside its budget. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../train/budget_run.h"
#include "../models/model.h"
#include "../train/checkpoint.h"
#include "../train/recipe.h"
#include "cli_util.h"
#include "harness.h"

BG_TEST(recipe_values_are_strict)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_recipe r;
    bg_recipe_defaults(&r);
    CHECK_OK(&ctx, bg_recipe_set(&ctx, &r, "lr", "0.1", "--lr"));
    CHECK(r.lr == 0.1, "lr %g", r.lr);
    CHECK_OK(&ctx, bg_recipe_set(&ctx, &r, "schedule", "cosine_torch_epoch", "--schedule"));
    CHECK(!strcmp(r.schedule, "cosine_torch_epoch"), "the longest choice is kept whole: '%s'", r.schedule);
    CHECK_OK(&ctx, bg_recipe_set(&ctx, &r, "mem_cap", "6G", "--mem-cap"));
    CHECK(r.mem_cap == 6.0 * 1073741824.0, "mem_cap %g", r.mem_cap);
    CHECK_OK(&ctx, bg_recipe_set(&ctx, &r, "nesterov", "true", "--nesterov"));
    CHECK(r.nesterov, "nesterov");
    const char *bad_nums[] = {"abc", "1e", "inf", "nan", " 5", "5 ", "", "0x", "1,5"};
    for (size_t i = 0; i < sizeof bad_nums / sizeof bad_nums[0]; i++)
        CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "lr", bad_nums[i], "--lr"), BG_ERR_ARG, "--lr: lr must be a finite number");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "train_per_class", "abc", "--train-per-class"), BG_ERR_ARG,
              "--train-per-class: train_per_class must be an integer, got 'abc'");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "batch", "2.5", "x"), BG_ERR_ARG, "batch must be an integer");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "epochs", "-1", "--epochs"), BG_ERR_ARG, "epochs = -1 is outside");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "batch", "0", "--batch"), BG_ERR_ARG, "batch = 0 is outside");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "aug", "autoaugment", "--aug"), BG_ERR_ARG,
              "aug must be one of none|crop-flip|haet|rrc-flip, got 'autoaugment'");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "lrr", "3", "--lrr"), BG_ERR_ARG, "--lrr: unknown key 'lrr' (keys: model");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "nesterov", "yes", "--nesterov"), BG_ERR_ARG, "must be 0 or 1");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &r, "mem_cap", "6X", "--mem-cap"), BG_ERR_ARG, "byte count");
    CHECK(r.lr == 0.1 && r.batch == 64 && !strcmp(r.aug, "crop-flip"), "a refused value changes nothing");
    /* "auto": batch and epochs only, and only with a memory cap to size the batch against */
    bg_recipe a = r;
    CHECK_OK(&ctx, bg_recipe_set(&ctx, &a, "batch", "auto", "--batch"));
    CHECK_OK(&ctx, bg_recipe_set(&ctx, &a, "epochs", "auto", "--epochs"));
    CHECK(a.batch == -1 && a.epochs == -1, "auto is stored as -1: %lld %lld", (long long)a.batch, (long long)a.epochs);
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &a, "lr", "auto", "--lr"), BG_ERR_ARG, "lr must be a finite number");
    CHECK_ERR(&ctx, bg_recipe_set(&ctx, &a, "seed", "auto", "--seed"), BG_ERR_ARG, "seed must be an integer");
    snprintf(a.schedule, sizeof a.schedule, "cosine_time");
    a.mem_cap = 0;
    CHECK_ERR(&ctx, bg_recipe_check(&ctx, &a), BG_ERR_ARG, "batch = auto and epochs = auto need mem_cap");
    a.mem_cap = 1e8;
    a.nesterov = false;
    CHECK_OK(&ctx, bg_recipe_check(&ctx, &a));
    snprintf(r.schedule, sizeof r.schedule, "cosine_time");
    /* checks across keys */
    bg_recipe c = r;
    snprintf(c.schedule, sizeof c.schedule, "cosine_epoch");
    c.t_max = 0;
    CHECK_ERR(&ctx, bg_recipe_check(&ctx, &c), BG_ERR_ARG, "schedule cosine_epoch needs t_max >= 1");
    c = r;
    c.eta_min = 1;
    CHECK_ERR(&ctx, bg_recipe_check(&ctx, &c), BG_ERR_ARG, "eta_min 1 is above lr 0.1");
    c = r;
    c.val_per_class = 0;
    CHECK_ERR(&ctx, bg_recipe_check(&ctx, &c), BG_ERR_ARG, "select = val needs val_per_class >= 1");
    c.val_per_class = 500;
    snprintf(c.select, sizeof c.select, "test");
    CHECK_ERR(&ctx, bg_recipe_check(&ctx, &c), BG_ERR_ARG, "val_per_class 500 leaves nothing of train_per_class 500");
    c = r;
    snprintf(c.optimizer, sizeof c.optimizer, "adam");
    CHECK_ERR(&ctx, bg_recipe_check(&ctx, &c), BG_ERR_ARG, "nesterov = 1 needs optimizer sgd");
    bg_ctx_free(&ctx);
}

BG_TEST(recipe_budgets_and_gpu_table)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    struct {
        const char *text;
        double s;
        const char *gpu;
    } ok[] = {{"600", 600, ""}, {"600s", 600, ""}, {"10m", 600, ""}, {"1.5h", 5400, ""},
              {"10m@v100", 600, "v100"}, {"3h@rtx3090", 10800, "rtx3090"}, {"0.25", 0.25, ""}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double s = -1;
        char gpu[16] = "?";
        CHECK_OK(&ctx, bg_budget_parse(&ctx, ok[i].text, &s, gpu, sizeof gpu));
        CHECK(s == ok[i].s && !strcmp(gpu, ok[i].gpu), "%s: %g s @'%s'", ok[i].text, s, gpu);
    }
    const char *bad[] = {"", "0", "-5", "abc", "10x", "10m@", "10m@gtx480", "inf", "nan", "m", "400d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double s;
        char gpu[16];
        CHECK_ERR(&ctx, bg_budget_parse(&ctx, bad[i], &s, gpu, sizeof gpu), BG_ERR_ARG, "budget '");
    }
    CHECK_ERR(&ctx, bg_budget_parse(&ctx, "10m@gtx480", &(double){0}, (char[16]){0}, 16), BG_ERR_ARG,
              "unknown GPU 'gtx480' (known: v100, rtx3090, a100, h100)");
    /* Lambda's ResNet-50 AMP images/s: V100 833, RTX 3090 905, A100 1582, H100 2800 */
    CHECK(bg_gpu_speed("v100") == 1.0, "v100 %g", bg_gpu_speed("v100"));
    CHECK(fabs(bg_gpu_speed("h100") - 2800.0 / 833.0) < 1e-12, "h100 %g", bg_gpu_speed("h100"));
    CHECK(bg_gpu_speed("NVIDIA H100 80GB HBM3") == bg_gpu_speed("h100"), "device name");
    CHECK(bg_gpu_speed("NVIDIA GeForce RTX 3090") == bg_gpu_speed("rtx3090"), "device name");
    CHECK(bg_gpu_speed("NVIDIA A100-SXM4-80GB") == bg_gpu_speed("a100"), "device name");
    CHECK(bg_gpu_speed("Tesla T4") == 0 && bg_gpu_speed("no device") == 0, "unknown GPUs are 0");
    /* 10 V100-minutes on an H100: 600 * 833/2800 = 178.5 s (anchors: ~180-190 s) */
    CHECK(fabs(600 * bg_gpu_speed("v100") / bg_gpu_speed("h100") - 178.5) < 0.1, "10m@v100 on an H100");
    bg_ctx_free(&ctx);
}

/* A recipe's text without its first line (which names where it came from). */
static char *recipe_text(const bg_recipe *r)
{
    char *buf = bg_recipe_text(r);
    char *nl = buf ? strchr(buf, '\n') : NULL;
    if (nl) memmove(buf, nl + 1, strlen(nl + 1) + 1);
    return buf;
}

static bool same_recipe(const bg_recipe *a, const bg_recipe *b)
{
    char *x = recipe_text(a), *y = recipe_text(b);
    bool same = x && y && !strcmp(x, y) && a->budget_s == b->budget_s && !strcmp(a->budget_gpu, b->budget_gpu);
    free(x), free(y);
    return same;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

BG_TEST(recipe_files_load_and_name_the_line)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[] = "/tmp/bg_recipe_XXXXXX", path[64], back[64];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/r", dir);
    write_text(path, "# a comment\n\nmodel = resnet18:w=0.5   # trailing comment\n  lr=0.2\nbudget = 2m@a100\n");
    bg_recipe r;
    bg_recipe_defaults(&r);
    CHECK_OK(&ctx, bg_recipe_load(&ctx, &r, path));
    CHECK(!strcmp(r.model, "resnet18:w=0.5") && r.lr == 0.2 && r.budget_s == 120 && !strcmp(r.budget_gpu, "a100"),
          "loaded: model '%s' lr %g budget %g@%s", r.model, r.lr, r.budget_s, r.budget_gpu);
    CHECK(!strcmp(r.name, path), "name %s", r.name);
    /* written out and read back: the same recipe */
    snprintf(back, sizeof back, "%s/back", dir);
    FILE *f = fopen(back, "w");
    CHECK(f != NULL, "open %s", back);
    if (f) bg_recipe_write(&r, f), fclose(f);
    bg_recipe r2;
    bg_recipe_defaults(&r2);
    CHECK_OK(&ctx, bg_recipe_load(&ctx, &r2, back));
    CHECK(same_recipe(&r, &r2), "a written recipe reads back identical");
    write_text(path, "lr = 0.1\nbatch = 128\nmomentum = high\n");
    char want[160];
    snprintf(want, sizeof want, "%s:3: momentum must be a finite number, got 'high'", path);
    CHECK_ERR(&ctx, bg_recipe_load(&ctx, &r, path), BG_ERR_ARG, want);
    write_text(path, "lr 0.1\n");
    snprintf(want, sizeof want, "%s:1: 'lr 0.1' is not 'key = value'", path);
    CHECK_ERR(&ctx, bg_recipe_load(&ctx, &r, path), BG_ERR_FORMAT, want);
    CHECK_ERR(&ctx, bg_recipe_load(&ctx, &r, "/nonexistent/recipe"), BG_ERR_IO, "recipe /nonexistent/recipe");
    unlink(path), unlink(back), rmdir(dir);
    bg_ctx_free(&ctx);
}

/* recipes/haet2021 holds the seed's values, and its schedule gives the
 * seed's learning rates epoch by epoch (seed-spec §1.2: 0.042, 0.03585,
 * 0.021, 0.006151, 1.8e-6, 1e-8, 1.80e-4, 7.16e-4, then 7.88e-4 for ever). */
BG_TEST(recipe_haet2021_is_the_seed)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_recipe r;
    bg_recipe_defaults(&r);
    CHECK_OK(&ctx, bg_recipe_load(&ctx, &r, "recipes/haet2021"));
    CHECK_OK(&ctx, bg_recipe_check(&ctx, &r));
    CHECK(!strcmp(r.model, "senet18:w=0.67") && r.train_per_class == 500 && r.test_per_class == 100, "model, data");
    CHECK(r.val_per_class == 0 && !strcmp(r.select, "test"), "the seed chose its checkpoint on the test split");
    CHECK(!strcmp(r.aug, "haet") && r.crop_pad == 4 && r.cutout == 16 && !strcmp(r.normalize, "cifar10"), "aug");
    CHECK(!strcmp(r.optimizer, "sgd") && r.lr == 0.042 && r.momentum == 0.9 && r.wd == 0.005 && !r.nesterov &&
              r.label_smoothing == 0 && !strcmp(r.precision, "fp32"), "optimizer");
    CHECK(r.batch == 512 && r.eval_batch == 128 && r.budget_s == 600 && !strcmp(r.budget_gpu, "v100"), "batch, budget");
    bg_run_config cfg = {.budget_s = 600};
    bg_recipe_schedule(&r, &cfg.sched, &cfg.sched_per_epoch, &cfg.sched_freeze);
    CHECK_OK(&ctx, bg_sched_check(&ctx, &cfg.sched));
    const struct {
        int64_t epoch;
        double lr, tol;
    } want[] = {{0, 0.042, 1e-12}, {60, 0.03585, 5e-6}, {120, 0.021, 1e-6}, {180, 0.006151, 5e-7},
                {239, 1.8e-6, 5e-8}, {240, 1e-8, 1e-10}, {250, 1.80e-4, 5e-7}, {260, 7.16e-4, 5e-7},
                {261, 7.88e-4, 5e-7}, {262, 7.88e-4, 5e-7}, {400, 7.88e-4, 5e-7}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        /* the step counter and the clock must not matter */
        const double lr = bg_run_lr(&cfg, 123.0, 9 * want[i].epoch + 5, want[i].epoch);
        CHECK(fabs(lr - want[i].lr) <= want[i].tol, "epoch %lld: lr %.6g, seed %.6g", (long long)want[i].epoch, lr,
              want[i].lr);
    }
    /* the default recipe file is the built-in defaults */
    bg_recipe d, f;
    bg_recipe_defaults(&d);
    bg_recipe_defaults(&f);
    CHECK_OK(&ctx, bg_recipe_load(&ctx, &f, "recipes/default"));
    CHECK(same_recipe(&d, &f), "recipes/default differs from the built-in defaults");
    bg_ctx_free(&ctx);
}


/* recipes/rcv2023 holds what seed-spec §3.5 pins for KakaoBank's method
 * (resnest50d_1s4x24d, AdamW + cosine, AMP, a 6 GB cap, batch and epochs
 * from the profile phase, train 160 / test 224, the flip + 160/224
 * ensemble, 9 hours), its text round-trips, and its warmup ramps the
 * time-based cosine as documented. */
BG_TEST(recipe_rcv2023_is_the_seed)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_recipe r;
    bg_recipe_defaults(&r);
    CHECK_OK(&ctx, bg_recipe_load(&ctx, &r, "recipes/rcv2023"));
    CHECK_OK(&ctx, bg_recipe_check(&ctx, &r));
    CHECK(!strcmp(r.model, "resnest50d_1s4x24d"), "model %s (classes follow the data)", r.model);
    CHECK(bg_recipe_is_jpeg(&r) && r.train_size == 160 && r.test_size == 224 && !strcmp(r.aug, "rrc-flip") &&
              !strcmp(r.normalize, "imagenet"), "the JPEG path at 160 / 224");
    CHECK(r.n_test_sizes == 2 && r.test_sizes[0] == 160 && r.test_sizes[1] == 224 && !strcmp(r.tta, "flip") &&
              bg_recipe_has_ensemble(&r), "the flip + 160/224 ensemble");
    CHECK(!strcmp(r.optimizer, "adamw") && !strcmp(r.schedule, "cosine_time") && !strcmp(r.precision, "amp"),
          "AdamW, cosine, AMP");
    CHECK(r.mem_cap == 6.0 * 1073741824.0 && r.batch == -1 && r.epochs == -1, "6 GB cap, batch and epochs auto");
    CHECK(r.budget_s == 9 * 3600.0 && !strcmp(r.budget_gpu, "a100"), "9 hours of the spec's A100 variant");
    CHECK(!strcmp(r.select, "val") && r.val_per_class > 0, "best by a validation split");
    /* the text a run folder keeps reads back as the same recipe */
    char *text = bg_recipe_text(&r);
    bg_recipe back;
    bg_recipe_defaults(&back);
    CHECK(text != NULL, "recipe text");
    if (text) CHECK_OK(&ctx, bg_recipe_load_text(&ctx, &back, text, "rcv2023 text"));
    snprintf(back.name, sizeof back.name, "%s", r.name);
    CHECK(same_recipe(&r, &back), "recipes/rcv2023 does not round-trip through its text");
    free(text);
    bg_run_config cfg = {.budget_s = 1000};
    bg_recipe_schedule(&r, &cfg.sched, &cfg.sched_per_epoch, &cfg.sched_freeze);
    CHECK_OK(&ctx, bg_sched_check(&ctx, &cfg.sched));
    CHECK_NEAR(bg_run_lr(&cfg, 15.0, 0, 0), 0.5e-3, 1e-9, "halfway up the 3% warmup");
    CHECK(bg_run_lr(&cfg, 30.0, 0, 0) > 0.99e-3 && bg_run_lr(&cfg, 999.0, 0, 0) < 1e-6, "cosine after the warmup");
    bg_ctx_free(&ctx);
}


/* Bad input exits 2 naming the key, before any data is read (no "reading"
 * line, no run folder). */
BG_TEST(cli_train_rejects_bad_input_before_reading_data)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    char dir[] = "/tmp/bg_train_cli_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const struct {
        const char *args, *msg;
    } cases[] = {
        {"--budget abc", "--budget: budget 'abc'"},
        {"--budget inf", "--budget: budget 'inf'"},
        {"--train-per-class abc", "train_per_class must be an integer, got 'abc'"},
        {"--epochs -1", "epochs = -1 is outside"},
        {"--model senet19", "model: unknown model 'senet19'"},
        {"--model senet18:w=abc", "model: senet18: key 'w' needs a number"},
        {"--out /proc/budgie/x", "out: cannot create the run folder /proc/budgie/x"},
        {"--lrr 3", "unknown key 'lrr'"},
        {"--precision amp --device cpu", "amp runs on CUDA only"},
        {"--device tpu", "device must be one of auto|cpu|cuda"},
        {"nonexistent-recipe", "recipe nonexistent-recipe"},
        {"--lr", "--lr needs a value"},
    };
    char cmd[1024], out[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s train %s --out %s/run%zu 2>&1", bg_test_budgie_bin(), cases[i].args, dir, i);
        if (strstr(cases[i].args, "--out")) snprintf(cmd, sizeof cmd, "%s train %s 2>&1", bg_test_budgie_bin(), cases[i].args);
        int rc = bg_test_run_cmd(cmd, out, sizeof out);
        CHECK(rc == 2, "'%s': exit %d: %s", cases[i].args, rc, out);
        CHECK(strstr(out, cases[i].msg) != NULL, "'%s': message lacks '%s': %s", cases[i].args, cases[i].msg, out);
        CHECK(!strstr(out, "reading"), "'%s' read data before refusing: %s", cases[i].args, out);
        char run[128];
        struct stat st;
        snprintf(run, sizeof run, "%s/run%zu", dir, i);
        CHECK(stat(run, &st) != 0, "'%s' left a run folder", cases[i].args);
    }
    /* an existing run folder is never reused */
    char run[128], recipe[160];
    snprintf(run, sizeof run, "%s/old", dir);
    mkdir(run, 0777);
    snprintf(recipe, sizeof recipe, "%s/recipe.txt", run);
    write_text(recipe, "lr = 0.1\n");
    snprintf(cmd, sizeof cmd, "%s train --out %s 2>&1", bg_test_budgie_bin(), run);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "already holds a run"), "reused run folder: exit %d: %s", rc, out);
    unlink(recipe), rmdir(run), rmdir(dir);
}

/* Measured from outside the process: a 6 s run ends, weights saved, within
 * 6 s plus the issue's tolerance (0.5 s); a budget too short for one step
 * ends with a message that says so. Needs the CIFAR cache (tools/fetch_data.sh). */
BG_TEST(cli_train_stays_within_its_budget)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    struct stat st;
    if (stat(".cache/cifar10", &st) != 0) SKIP("no .cache/cifar10 (run tools/fetch_data.sh)");
    char dir[] = "/tmp/bg_train_budget_XXXXXX", cmd[512], out[8192], path[160];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "%s train --budget 6 --test-per-class 20 --out %s/run 2>&1", bg_test_budgie_bin(), dir);
    const double t = bg_monotonic_s();
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    const double wall = bg_monotonic_s() - t;
    CHECK(rc == 0, "exit %d: %s", rc, out);
    CHECK(wall <= 6.5, "the 6 s run took %.2f s from outside", wall);
    CHECK(strstr(out, "\"note\":\"within budget\""), "no 'within budget' line: %s", out);
    const char *files[] = {"recipe.txt", "log.jsonl", "last.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/run/%s", dir, files[i]);
        CHECK(stat(path, &st) == 0 && st.st_size > 0, "%s missing or empty", path);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/run", dir);
    rmdir(path);
    /* too short for a single step */
    snprintf(cmd, sizeof cmd, "%s train --budget 0.05 --out %s/short 2>&1", bg_test_budgie_bin(), dir);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "ran out before the first training step"), "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/short/last.safetensors", dir);
    CHECK(stat(path, &st) != 0, "weights saved for a run that trained nothing");
    const char *left[] = {"recipe.txt", "log.jsonl"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/short/%s", dir, left[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/short", dir);
    rmdir(path);
    rmdir(dir);
}

/* Start `budgie train ARGS...` in the background, output into `log`. */
static pid_t spawn_train(const char *log, const char *const *args, int n)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    FILE *f = freopen(log, "w", stdout);
    if (f) dup2(fileno(stdout), 2);
    const char *argv[24] = {bg_test_budgie_bin(), "train"};
    for (int i = 0; i < n && i < 20; i++) argv[2 + i] = args[i];
    argv[2 + (n < 20 ? n : 20)] = NULL;
    execv(bg_test_budgie_bin(), (char *const *)argv);
    _exit(127);
}

/* SIGTERM finishes the step, checkpoints and exits 143; --resume goes on
 * from that checkpoint; kill -9 in the middle of frequent checkpoints
 * leaves a complete, loadable one. Needs the CIFAR cache. */
BG_TEST(cli_train_survives_signals_and_resumes)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    struct stat st;
    if (stat(".cache/cifar10", &st) != 0) SKIP("no .cache/cifar10 (run tools/fetch_data.sh)");
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[] = "/tmp/bg_train_signal_XXXXXX", run[96], log[128], ckpt[128], cmd[512], out[8192];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(log, sizeof log, "%s/out.txt", dir);
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", run);
    const char *args[] = {"--budget", "60", "--train-per-class", "100", "--test-per-class", "10",
                          "--checkpoint-every", "0.3", "--out", run};
    pid_t pid = spawn_train(log, args, 10);
    CHECK(pid > 0, "fork");
    if (pid <= 0) return;
    /* wait for the first checkpoint, then a little more */
    for (int i = 0; i < 200 && stat(ckpt, &st) != 0; i++) usleep(50000);
    usleep(400000);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 143, "SIGTERM: status %d", status);
    bg_ckpt_meta *meta = calloc(1, sizeof *meta);
    CHECK_OK(&ctx, bg_ckpt_read_meta(&ctx, ckpt, meta));
    const int64_t stopped_at = meta->pos.step;
    CHECK(stopped_at > 0 && meta->pos.elapsed_s > 0 && meta->pos.elapsed_s < 60, "checkpoint at step %lld, %g s",
          (long long)stopped_at, meta->pos.elapsed_s);
    CHECK(strstr(meta->recipe, "model = small_cnn") != NULL, "the recipe is in the checkpoint");
    /* resume, one more epoch */
    snprintf(cmd, sizeof cmd, "%s train --resume %s --epochs %lld 2>&1", bg_test_budgie_bin(), run,
             (long long)meta->pos.epoch + 1);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "resuming"), "resume: exit %d: %s", rc, out);
    CHECK_OK(&ctx, bg_ckpt_read_meta(&ctx, ckpt, meta));
    CHECK(meta->pos.step > stopped_at && meta->pos.step_in_epoch == 0, "after resume: step %lld (was %lld), in epoch %lld",
          (long long)meta->pos.step, (long long)stopped_at, (long long)meta->pos.step_in_epoch);
    /* kill -9 while checkpoints are written often: the file stays whole */
    snprintf(run, sizeof run, "%s/run9", dir);
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", run);
    const char *args9[] = {"--budget", "60", "--train-per-class", "100", "--test-per-class", "10",
                           "--checkpoint-every", "0.01", "--out", run};
    pid = spawn_train(log, args9, 10);
    for (int i = 0; i < 200 && stat(ckpt, &st) != 0; i++) usleep(50000);
    usleep(700000);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
    CHECK_OK(&ctx, bg_ckpt_read_meta(&ctx, ckpt, meta));
    bg_model *m = NULL;
    CHECK_OK(&ctx, bg_model_new(&ctx, BG_CPU, meta->model, &m));
    if (m) CHECK_OK(&ctx, bg_ckpt_load_model(&ctx, ckpt, m));
    bg_model_free(&ctx, m);
    free(meta);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    bg_ctx_free(&ctx);
}

/* Faults end the run with a message and a clean state: a loss that turns
 * NaN (fp32) keeps the last good checkpoint; a memory cap below the model's
 * need says so; a checkpoint that cannot be written stops the run (its
 * output could not be delivered) and leaves no temporary file. */
BG_TEST(cli_train_faults_stop_cleanly)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    struct stat st;
    if (stat(".cache/cifar10", &st) != 0) SKIP("no .cache/cifar10 (run tools/fetch_data.sh)");
    char dir[] = "/tmp/bg_train_fault_XXXXXX", cmd[512], out[8192], path[160];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    /* NaN: lr 1000 diverges within a few steps; checkpoints every step before that */
    snprintf(cmd, sizeof cmd, "%s train --budget 30 --lr 1000 --checkpoint-every 0 --train-per-class 100 "
             "--test-per-class 10 --val-per-class 10 --batch 16 --checkpoint-every 0.001 --out %s/nan 2>&1",
             bg_test_budgie_bin(), dir);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "loss became") && strstr(out, "nan at step"), "NaN: exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/nan/last.safetensors", dir);
    if (strstr(out, "the last good checkpoint stays in")) {
        bg_ctx ctx;
        bg_test_ctx(&ctx, 1);
        bg_ckpt_meta *meta = calloc(1, sizeof *meta);
        CHECK_OK(&ctx, bg_ckpt_read_meta(&ctx, path, meta));
        CHECK(meta->pos.step > 0, "checkpoint at step %lld", (long long)meta->pos.step);
        free(meta);
        bg_ctx_free(&ctx);
    } else {
        CHECK(strstr(out, "no checkpoint was written") && stat(path, &st) != 0, "NaN before any checkpoint: %s", out);
    }
    /* a memory cap below the model's need */
    snprintf(cmd, sizeof cmd, "%s train --budget 30 --mem-cap 200K --out %s/cap 2>&1", bg_test_budgie_bin(), dir);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "exceeds the memory cap") && strstr(out, "lower the batch or raise mem_cap"),
          "cap: exit %d: %s", rc, out);
    /* a checkpoint that cannot be written: last.safetensors is taken by a folder */
    snprintf(path, sizeof path, "%s/disk", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/disk/last.safetensors", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/disk/last.safetensors/keep", dir);
    write_text(path, "x");
    snprintf(cmd, sizeof cmd, "%s train --budget 30 --train-per-class 100 --test-per-class 10 --val-per-class 10 "
             "--out %s/disk 2>&1", bg_test_budgie_bin(), dir);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "cannot rename") && strstr(out, "last.safetensors"), "unwritable checkpoint: exit %d: %s",
          rc, out);
    CHECK(!strstr(out, "last good checkpoint stays"), "a folder passed for a checkpoint: %s", out);
    snprintf(cmd, sizeof cmd, "ls %s/disk", dir);
    bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(!strstr(out, ".tmp."), "a temporary file was left behind: %s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* batch = auto, epochs = auto: the profile sizes the batch against the cap
 * (evaluation included) and the run stays under it; the checkpoint keeps
 * the resolved numbers, recipe.txt what was asked. A 15 s budget: under
 * load the profile alone took 9 s on the 2-core machine. */
BG_TEST(cli_train_auto_batch_stays_under_the_cap)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    struct stat st;
    if (stat(".cache/cifar10", &st) != 0) SKIP("no .cache/cifar10 (run tools/fetch_data.sh)");
    char dir[] = "/tmp/bg_train_auto_XXXXXX", cmd[512], out[16384], path[128];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "%s train --batch auto --epochs auto --mem-cap 96M --eval-batch 100 --budget 15 "
             "--train-per-class 100 --test-per-class 20 --val-per-class 10 --out %s/run 2>&1", bg_test_budgie_bin(), dir);
    int rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "budgie train: profile: batch "), "exit %d: %s", rc, out);
    const char *p = out;
    long long peak = 0;
    while ((p = strstr(p, "\"mem_peak_bytes\":"))) {
        p += 17;
        const long long v = atoll(p);
        if (v > peak) peak = v;
    }
    CHECK(peak > 0 && peak <= 96LL * 1048576, "memory peak %lld over the 96 MiB cap", peak);
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_ckpt_meta *meta = calloc(1, sizeof *meta);
    snprintf(path, sizeof path, "%s/run/last.safetensors", dir);
    CHECK_OK(&ctx, bg_ckpt_read_meta(&ctx, path, meta));
    CHECK(strstr(meta->recipe, "batch = auto") == NULL && strstr(meta->recipe, "\nbatch = "),
          "the checkpoint keeps the resolved batch: %.200s", meta->recipe);
    free(meta);
    bg_ctx_free(&ctx);
    snprintf(cmd, sizeof cmd, "grep -c '^batch = auto' %s/run/recipe.txt", dir);
    rc = bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && atoi(out) == 1, "recipe.txt keeps what was asked: %s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* `budgie train | head -c 1`: the reader leaves at once; the run must still
 * train to its end, write its checkpoint and log (SIGPIPE would have killed
 * it at the next log line). The log's last lines say so (the whole log of a
 * fast CPU outgrows the buffer). */
BG_TEST(cli_train_outlives_a_closed_stdout)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    struct stat st;
    if (stat(".cache/cifar10", &st) != 0) SKIP("no .cache/cifar10 (run tools/fetch_data.sh)");
    char dir[] = "/tmp/bg_train_pipe_XXXXXX", cmd[512], out[4096];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "%s train --budget 3 --train-per-class 50 --test-per-class 10 --val-per-class 5 "
             "--out %s/run 2>/dev/null | head -c 1 >/dev/null; sleep 0; tail -n 3 %s/run/log.jsonl", bg_test_budgie_bin(),
             dir, dir);
    bg_test_run_cmd(cmd, out, sizeof out);
    CHECK(strstr(out, "\"saved\":") && strstr(out, "\"done\":true"), "the run died with its reader: %s", out);
    snprintf(cmd, sizeof cmd, "%s/run/last.safetensors", dir);
    CHECK(stat(cmd, &st) == 0, "no checkpoint: %s", cmd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}
