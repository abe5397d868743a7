/* End to end: `budgie search blackbox` on a NOMAD parameter file with a tiny
 * shell-script blackbox in a temporary directory, including evaluations that
 * fail (exit 3), crash (SIGSEGV), print garbage and hang (killed by the
 * timeout); then `budgie search report`, and --resume after a simulated kill
 * (history cut in the middle of a line). The library path (parameter file,
 * blackbox runner, bg_mads_run) is tested first without the binary. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../search/batch/mads_batch.h"
#include "cli_util.h"
#include "harness.h"

static const char bb_script[] =
    "#!/bin/sh\n"
    "read a b < \"$1\"\n"
    "case \"$a\" in 1.95) exit 3 ;; -1.6) echo 'Traceback: not a number'; exit 0 ;; esac\n"
    "case \"$b\" in -1.6) kill -SEGV $$ ;; 1.9) sleep 5 ;; esac\n"
    "awk -v a=\"$a\" -v b=\"$b\" 'BEGIN { printf \"%.17g\\n\", (a-1)*(a-1) + (b+0.5)*(b+0.5) }'\n";

static const char param_text[] =
    "# a NOMAD 4 parameter file\n"
    "DIMENSION 2\n"
    "BB_EXE %s\n"
    "BB_OUTPUT_TYPE OBJ\n"
    "X0 ( 0 0 )\n"
    "X0 ( 1.95 0 )    # exits with status 3\n"
    "X0 ( -1.6 0 )    # prints garbage\n"
    "X0 ( 0 -1.6 )    # crashes\n"
    "X0 ( 0 1.9 )     # hangs\n"
    "LOWER_BOUND * -2\n"
    "UPPER_BOUND * 2\n"
    "MAX_BB_EVAL 40\n"
    "NB_THREADS_PARALLEL_EVAL 5\n"
    "HISTORY_FILE history.txt\n"
    "STATS_FILE stats.txt BBE ( SOL ) OBJ\n"
    "DISPLAY_DEGREE 1\n"
    "DISPLAY_ALL_EVAL yes\n";

static bool write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode) == 0;
}

static int count_lines(const char *s)
{
    int k = 0;
    for (; s && *s; s++) k += *s == '\n';
    return k;
}

static void setup_dir(bg_t *tc, char *dir, const char *exe)
{
    strcpy(dir, "/tmp/budgie-mads-e2e-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    char param[1024];
    snprintf(param, sizeof param, param_text, exe);
    CHECK(write_file(dir, "bb.sh", bb_script, 0755), "write bb.sh");
    CHECK(write_file(dir, "param.txt", param, 0644), "write param.txt");
}

static void cleanup_dir(const char *dir)
{
    const char *names[] = {"bb.sh", "param.txt", "history.0.txt", "history.0.txt.jsonl", "stats.0.txt", "out.txt",
                           "report.txt", "plot.png", "full.txt"};
    char path[1200];
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        unlink(path);
    }
    rmdir(dir);
}

BG_TEST(mads_blackbox_library)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    char dir[64], path[1200];
    setup_dir(tc, dir, "bb.sh");
    snprintf(path, sizeof path, "%s/param.txt", dir);
    bg_mads_params *pp = malloc(sizeof *pp);
    bg_mads_blackbox *bb = malloc(sizeof *bb);
    CHECK_OK(&ctx, bg_mads_params_read(&ctx, path, pp));
    char cmd[4096];
    bg_mads_params_command(pp, cmd, sizeof cmd);
    CHECK(strstr(cmd, "/bb.sh'") && cmd[0] == '\'', "command '%s'", cmd);
    CHECK_OK(&ctx, bg_mads_blackbox_open(&ctx, bb, cmd, pp->dir, NULL, &pp->pb));
    bb->timeout_s = 0.5;
    bb->quiet = true;
    /* the five starting points as one block */
    double x[10], out[5];
    bool ok[5];
    CHECK(pp->pb.n_x0 == 5, "%d starting points", pp->pb.n_x0);
    for (int k = 0; k < 5; k++) memcpy(x + 2 * k, pp->pb.x0[k], 2 * sizeof *x);
    CHECK_OK(&ctx, bg_mads_blackbox_eval(bb, &ctx, 5, x, out, ok));
    CHECK(ok[0] && fabs(out[0] - 1.25) < 1e-12, "good point: ok %d f %g", ok[0], out[0]);
    CHECK(!ok[1] && strstr(bb->reason[1], "exit status 3"), "exit 3: %s", bb->reason[1]);
    CHECK(!ok[2] && strstr(bb->reason[2], "unreadable output"), "garbage: %s", bb->reason[2]);
    CHECK(!ok[3] && strstr(bb->reason[3], "signal 11"), "crash: %s", bb->reason[3]);
    CHECK(!ok[4] && strstr(bb->reason[4], "timed out"), "hang: %s", bb->reason[4]);
    /* a whole run through the library */
    bg_mads_options o = pp->opt;
    o.eval = bg_mads_blackbox_eval;
    o.eval_user = bb;
    bg_mads_result r;
    CHECK_OK(&ctx, bg_mads_run(&ctx, &pp->pb, &o, &r));
    CHECK(r.failed == 4 && r.bb_evals == 40, "failed %ld evaluations %ld", r.failed, r.bb_evals);
    CHECK(r.has_feasible && r.f < 1e-3, "best f %g at (%g, %g)", r.f, r.x[0], r.x[1]);
    bg_mads_blackbox_close(bb);
    free(pp);
    free(bb);
    cleanup_dir(dir);
    bg_ctx_free(&ctx);
}

BG_TEST(mads_search_cli_end_to_end)
{
    const char *exe = getenv("BUDGIE_BIN") ? getenv("BUDGIE_BIN") : "bin/budgie"; /* e.g. the SAN=1 build */
    if (access(exe, X_OK) != 0) SKIP("%s not built (make builds it)", exe);
    char dir[64], cmd[2048], path[1200];
    setup_dir(tc, dir, "'$sh bb.sh'"); /* NOMAD's quoting: a system command, run from the file's directory */
    snprintf(cmd, sizeof cmd, "%s search blackbox %s/param.txt --eval-timeout 0.5 --quiet-bb > %s/out.txt 2>&1", exe,
             dir, dir);
    int rc = system(cmd);
    CHECK(rc == 0, "search blackbox exit %d", rc);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    char *out = bg_test_slurp(path);
    CHECK(out && strstr(out, "best feasible solution:"), "output: %s", out ? out : "(none)");
    CHECK(out && strstr(out, "DISPLAY_ALL_EVAL (line 17) is accepted and ignored"), "no note for DISPLAY_ALL_EVAL");
    free(out);
    snprintf(path, sizeof path, "%s/history.0.txt", dir);
    char *hist = bg_test_slurp(path);
    CHECK(count_lines(hist) == 40, "history has %d lines, want 40", count_lines(hist));
    CHECK(hist && !strncmp(hist, "0 0 1.25\n1.95 0 nan\n-1.6 0 nan\n0 -1.6 nan\n0 1.9 nan\n", 45),
          "history starts '%.60s'", hist ? hist : "");
    snprintf(path, sizeof path, "%s/history.0.txt.jsonl", dir);
    char *log = bg_test_slurp(path);
    CHECK(count_lines(log) == 40, "log has %d lines", count_lines(log));
    CHECK(log && strstr(log, "\"fail\":\"exit status 3\"") && strstr(log, "signal 11") &&
              strstr(log, "unreadable output") && strstr(log, "timed out after 0.5 s"),
          "failure reasons missing from the log");
    free(log);
    snprintf(path, sizeof path, "%s/stats.0.txt", dir);
    char *stats = bg_test_slurp(path);
    CHECK(stats && !strncmp(stats, "1 ( 0 0 ) 1.25\n", 15), "stats start '%.40s'", stats ? stats : "");
    free(stats);

    /* report: best points and the plot */
    snprintf(cmd, sizeof cmd, "%s search report %s/history.0.txt --top 3 --out %s/plot.png > %s/report.txt 2>&1", exe,
             dir, dir, dir);
    rc = system(cmd);
    CHECK(rc == 0, "search report exit %d", rc);
    snprintf(path, sizeof path, "%s/report.txt", dir);
    char *rep = bg_test_slurp(path);
    CHECK(rep && strstr(rep, "40 evaluations, 4 failed, 36 feasible"), "report: %s", rep ? rep : "");
    free(rep);
    snprintf(path, sizeof path, "%s/plot.png", dir);
    char *png = bg_test_slurp(path);
    CHECK(png && !memcmp(png, "\x89PNG", 4), "plot.png is not a PNG");
    free(png);

    /* a kill: keep 12 lines and half of the 13th, then --resume */
    snprintf(path, sizeof path, "%s/history.0.txt", dir);
    const char *cut = hist;
    for (int k = 0; k < 12 && cut; k++) cut = strchr(cut, '\n') + 1;
    FILE *f = fopen(path, "w");
    if (f && cut) {
        fwrite(hist, 1, (size_t)(cut - hist) + 5, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "%s search blackbox %s/param.txt --resume --eval-timeout 0.5 --quiet-bb > %s/out.txt 2>&1",
             exe, dir, dir);
    rc = system(cmd);
    CHECK(rc == 0, "resume exit %d", rc);
    char *again = bg_test_slurp(path);
    CHECK(again && hist && !strcmp(again, hist), "the resumed history differs from the uninterrupted one");
    snprintf(path, sizeof path, "%s/out.txt", dir);
    out = bg_test_slurp(path);
    CHECK(out && strstr(out, "12 replayed from the history"), "resume output: %s", out ? out : "");
    free(out);
    free(again);
    free(hist);

    /* a parameter-file error exits with 2 and names the line */
    write_file(dir, "param.txt", "DIMENSION 2\nBB_EXE bb.sh\nBOGUS_KEY 3\n", 0644);
    snprintf(cmd, sizeof cmd, "%s search blackbox %s/param.txt > %s/out.txt 2>&1", exe, dir, dir);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "bad file: exit %d", rc);
    out = bg_test_slurp(path);
    CHECK(out && strstr(out, "param.txt:3: unknown parameter 'BOGUS_KEY'"), "message: %s", out ? out : "");
    free(out);
    cleanup_dir(dir);
}
