/* `budgie search nas|hpo` end to end on a tiny recipe (the small CNN, 20
 * train / 10 test / 5 validation images per class, 3 s runs): the history
 * and the report's rerun line, a search killed mid-run (parent and
 * children) and resumed without evaluating a point twice, evaluations that
 * fail without training (memory cap) recorded as infeasible and the exit
 * status of a search where all fail, HPO repeats, and each bad input
 * exiting 2 with a message naming it. Plus the decoding tables, no binary. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../search/drive/drive.h"
#include "cli_util.h"
#include "search_util.h"
#include "harness.h"

#define TINY BG_TEST_TINY_SEARCH " --budget-per-eval 3"

static int run(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bg_test_budgie_bin(), args);
    return bg_test_run_cmd(cmd, out, cap);
}

BG_TEST(search_drive_decodes_the_seed_tables)
{
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, 0);
    bg_drive_space s;
    CHECK_OK(&ctx, bg_drive_space_hpo(&ctx, &s, 0.1, 5e-4, "sgd", 256));
    CHECK(s.n == 4 && s.v[2].type == BG_MADS_CATEGORICAL, "hpo variables: %d", s.n);
    /* adam at base 10^-1: lr base/100; batch 2^9 */
    const double x[4] = {-1, -3, 4, 9};
    char line[512];
    bg_drive_decode_line(&s, x, line, sizeof line);
    CHECK(!strcmp(line, "--optimizer adam --lr 0.001 --wd 0.001 --batch 512"), "decoded: %s", line);
    const double x2[4] = {-2, -4, 1, 7};
    bg_drive_decode_line(&s, x2, line, sizeof line);
    CHECK(!strcmp(line, "--optimizer adadelta --lr 0.1 --wd 0.0001 --batch 128"), "decoded: %s", line);
    CHECK(s.v[0].x0 == -1 && s.v[3].x0 == 8 && s.v[2].x0 == 3, "X0 from the recipe: %g %g %g", s.v[0].x0, s.v[3].x0,
          s.v[2].x0);
    /* NAS: the family's multipliers put into the recipe's spec, other keys kept */
    CHECK_OK(&ctx, bg_drive_space_nas(&ctx, &s, "senet18:w=0.67,classes=100", "d,w,r"));
    CHECK(s.n == 3 && s.v[1].x0 == 0.67 && s.v[0].lb == 0.25 && s.v[2].ub == 10, "nas space");
    const double y[3] = {0.83, 0.54, 1.03};
    bg_drive_decode_line(&s, y, line, sizeof line);
    CHECK(!strcmp(line, "--model senet18:classes=100,d=0.83,w=0.54,r=1.03"), "decoded: %s", line);
    CHECK_ERR(&ctx, bg_drive_space_bounds(&ctx, &s, "w=2:1"), BG_ERR_ARG, "lower bound 2 > upper bound 1");
    CHECK_ERR(&ctx, bg_drive_space_bounds(&ctx, &s, "depth=1:2"), BG_ERR_ARG, "unknown search variable 'depth'");
    CHECK_ERR(&ctx, bg_drive_space_nas(&ctx, &s, "small_cnn", "d"), BG_ERR_ARG, "has no 'd' multiplier");
    /* a map that vanishes is infeasible before any training, with the builder's reason */
    bg_drive_model_check mc;
    CHECK_OK(&ctx, bg_drive_check_model(&ctx, "resnet18:w=0.125,d=0.5,r=0.5", 64, 0, &mc));
    CHECK(!mc.ok && strstr(mc.why, "vanishes"), "vanishing map: %s", mc.why);
    CHECK_OK(&ctx, bg_drive_check_model(&ctx, "small_cnn:w=1", 64, 1000, &mc));
    CHECK(!mc.ok && strstr(mc.why, "mem_cap"), "memory: %s", mc.why);
    bg_ctx_free(&ctx);
}

BG_TEST(search_nas_history_report_and_rerun)
{
    if (!bg_test_have_cli(tc)) return;
    char dir[] = "/tmp/bg_search_XXXXXX", args[1024], out[16384];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(args, sizeof args, "search nas " TINY " --evals 3 --out %s/s", dir);
    int rc = run(args, out, sizeof out);
    CHECK(rc == 0, "search exit %d: %s", rc, out);
    char hist[256];
    snprintf(hist, sizeof hist, "%s/s/history.jsonl", dir);
    json_t *recs[16];
    int n = bg_test_history_records(hist, recs, 16);
    CHECK(n == 3, "history records: %d", n);
    for (int i = 0; i < n; i++) {
        json_t *x = json_object_get(recs[i], "x");
        CHECK(json_array_size(x) == 1 && json_is_boolean(json_object_get(recs[i], "ok")) &&
              json_is_number(json_object_get(recs[i], "wall_s")) && json_is_array(json_object_get(recs[i], "runs")),
              "record %d lacks point, status, wall time or runs", i);
        if (json_is_true(json_object_get(recs[i], "ok")))
            CHECK(json_is_number(json_object_get(recs[i], "acc")) && json_is_number(json_object_get(recs[i], "f")),
                  "record %d has no score", i);
    }
    bg_test_history_free(recs, n);
    /* the report's first rerun line trains */
    snprintf(args, sizeof args, "search report %s --out %s/plot.png", hist, dir);
    rc = run(args, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "best points"), "report exit %d: %s", rc, out);
    char *bt = strstr(out, "budgie train ");
    CHECK(bt != NULL, "no rerun line: %s", out);
    if (bt) {
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(bt + 13, "\n"), bt + 13);
        snprintf(args, sizeof args, "train %s --budget 3 --out %s/rerun", line, dir);
        rc = run(args, out, sizeof out);
        CHECK(rc == 0, "rerun exit %d: %s", rc, out);
    }
    char png[256];
    snprintf(png, sizeof png, "%s/plot.png", dir);
    CHECK(access(png, R_OK) == 0, "no %s", png);
    snprintf(png, sizeof png, "%s/plot-pareto.png", dir);
    CHECK(access(png, R_OK) == 0, "no %s", png);
}

/* Count the lines of a file. */
static int lines_of(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

BG_TEST(search_killed_and_resumed_evaluates_nothing_twice)
{
    if (!bg_test_have_cli(tc)) return;
    char dir[] = "/tmp/bg_search_XXXXXX", args[1024], out[16384], hist[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(hist, sizeof hist, "%s/s/history.jsonl", dir);
    /* the search in a session of its own, so the kill takes its children too */
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        char outp[256], ev[32];
        snprintf(outp, sizeof outp, "%s/s", dir);
        snprintf(ev, sizeof ev, "4");
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(bg_test_budgie_bin(), "budgie", "search", "nas", "recipes/default", "--model", "small_cnn",
              "--train-per-class", "20", "--test-per-class", "10", "--val-per-class", "5", "--batch", "64",
              "--budget-per-eval", "3", "--evals", ev, "--out", outp, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0, "fork");
    /* wait for two evaluations, then kill the whole group in the middle of the third */
    for (int i = 0; i < 600 && lines_of(hist) < 3; i++) usleep(50000);
    usleep(800000);
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    const int before = lines_of(hist) - 1;
    CHECK(before >= 2 && before < 4, "evaluations before the kill: %d", before);
    /* a kill in the middle of an append leaves a cut line: dropped on resume */
    FILE *f = fopen(hist, "a");
    if (f) fputs("{\"eval\":3,\"x\":[1.2", f), fclose(f);
    snprintf(args, sizeof args, "search nas " TINY " --evals 4 --out %s/s --resume", dir);
    int rc = run(args, out, sizeof out);
    CHECK(rc == 0, "resume exit %d: %s", rc, out);
    CHECK(strstr(out, "was cut") != NULL, "no note about the cut line: %s", out);
    CHECK(strstr(out, "replayed") != NULL, "no replay: %s", out);
    json_t *recs[16];
    int n = bg_test_history_records(hist, recs, 16);
    CHECK(n == 4, "records after the resume: %d", n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            CHECK(!json_equal(json_object_get(recs[i], "x"), json_object_get(recs[j], "x")),
                  "records %d and %d hold the same point", j + 1, i + 1);
    for (int i = 0; i < n; i++)
        CHECK(json_integer_value(json_object_get(recs[i], "eval")) == i + 1, "record %d is eval %lld", i + 1,
              (long long)json_integer_value(json_object_get(recs[i], "eval")));
    bg_test_history_free(recs, n);
}

BG_TEST(search_failed_evaluations_are_infeasible_and_all_failed_exits_1)
{
    if (!bg_test_have_cli(tc)) return;
    char dir[] = "/tmp/bg_search_XXXXXX", args[1024], out[16384], hist[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    /* a memory cap no model fits: every point is infeasible before training, and the search goes on */
    snprintf(args, sizeof args, "search nas " TINY " --mem-cap 1000 --evals 3 --out %s/s", dir);
    int rc = run(args, out, sizeof out);
    CHECK(rc == 1, "exit %d (want 1): %s", rc, out);
    CHECK(strstr(out, "every evaluation failed") != NULL, "message: %s", out);
    snprintf(hist, sizeof hist, "%s/s/history.jsonl", dir);
    json_t *recs[16];
    int n = bg_test_history_records(hist, recs, 16);
    CHECK(n == 3, "records: %d", n);
    for (int i = 0; i < n; i++) {
        const char *e = json_string_value(json_object_get(recs[i], "error"));
        CHECK(json_is_false(json_object_get(recs[i], "ok")) && e && strstr(e, "mem_cap"), "record %d: %s", i + 1,
              e ? e : "(no error)");
    }
    bg_test_history_free(recs, n);

    /* bad input: exit 2, the message naming the fault */
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"--vars q", "unknown search variable 'q'"},
        {"--bounds depth=1:2", "unknown search variable 'depth'"},
        {"--bounds w=2:1", "lower bound 2 > upper bound 1"},
        {"--colour red", "colour"},
        {"--budgie /nonexistent/budgie", "/nonexistent/budgie"},
        {"--val-per-class 0", "val_per_class"},
        {"--sshloginfile hosts", "--sshloginfile is for --launcher parallel"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        snprintf(args, sizeof args, "search nas " TINY " %s --evals 1 --out %s/bad%zu", bad[k].args, dir, k);
        rc = run(args, out, sizeof out);
        CHECK(rc == 2 && strstr(out, bad[k].want), "%s: exit %d, output: %s", bad[k].args, rc, out);
    }
    /* a history of another search (other bounds) */
    snprintf(args, sizeof args, "search nas " TINY " --mem-cap 1000 --bounds w=0.5:1.5 --evals 3 --out %s/s --resume", dir);
    rc = run(args, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "different search") && strstr(out, "vars"), "other search: exit %d: %s", rc, out);
    /* a damaged line inside the history (not a kill's cut last line) */
    char *text = NULL;
    FILE *f = fopen(hist, "r");
    if (f) {
        text = calloc(1, 1 << 16);
        size_t got = text ? fread(text, 1, (1 << 16) - 1, f) : 0;
        (void)got;
        fclose(f);
    }
    if (text) {
        char *second = strchr(text, '\n');
        f = fopen(hist, "w");
        if (f && second) fprintf(f, "%.*s\n{\"eval\": 1, \"x\": [\n%s", (int)(second - text), text, second + 1);
        if (f) fclose(f);
        free(text);
    }
    snprintf(args, sizeof args, "search nas " TINY " --mem-cap 1000 --evals 3 --out %s/s --resume", dir);
    rc = run(args, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "history.jsonl:2"), "damaged history: exit %d: %s", rc, out);
}

BG_TEST(search_hpo_repeats_score_the_mean)
{
    if (!bg_test_have_cli(tc)) return;
    char dir[] = "/tmp/bg_search_XXXXXX", args[1024], out[16384], hist[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(args, sizeof args, "search hpo " TINY " --repeats 2 --evals 2 --out %s/s", dir);
    int rc = run(args, out, sizeof out);
    CHECK(rc == 0, "exit %d: %s", rc, out);
    snprintf(hist, sizeof hist, "%s/s/history.jsonl", dir);
    json_t *recs[8];
    int n = bg_test_history_records(hist, recs, 8);
    CHECK(n == 2, "records: %d", n);
    for (int i = 0; i < n; i++) {
        json_t *runs = json_object_get(recs[i], "runs");
        const char *a = json_string_value(json_object_get(recs[i], "args"));
        CHECK(a && strstr(a, "--optimizer") && strstr(a, "--batch"), "args: %s", a ? a : "");
        if (!json_is_true(json_object_get(recs[i], "ok")) || json_array_size(runs) != 2) continue;
        const double v0 = json_number_value(json_object_get(json_array_get(runs, 0), "val_acc"));
        const double v1 = json_number_value(json_object_get(json_array_get(runs, 1), "val_acc"));
        CHECK_NEAR(json_number_value(json_object_get(recs[i], "acc")), 0.5 * (v0 + v1), 1e-12, "mean of the repeats");
        CHECK(json_integer_value(json_object_get(json_array_get(runs, 1), "seed")) == 1, "second seed");
    }
    bg_test_history_free(recs, n);
}
