/* The engine launchers of `budgie search nas|hpo` (issue #13 point 6) on the
 * tiny recipe of test_search_drive.c: GNU parallel runs the evaluations (the
 * history gets every one with its score, the run folders their stdout and
 * stderr, launch/ the jobs file and joblog), parallel's timeout makes an
 * infeasible point, the Slurm launcher's batch script and exit files work
 * under a stand-in sbatch/squeue/scancel that runs the array's tasks here
 * (a real Slurm is `make test-slurm`), and a launcher binary missing from
 * PATH exits 2 naming it before any evaluation. Skipped, saying so, when
 * GNU parallel is not installed (tools/setup.sh installs it). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../search/drive/drive.h"
#include "cli_util.h"
#include "harness.h"
#include "search_util.h"

#define TINY BG_TEST_TINY_SEARCH " --budget-per-eval 3"
/* HPO's poll gives MADS blocks of two points: a batch of two jobs at once */
#define TINY_HPO BG_TEST_TINY_SEARCH " --budget-per-eval 5 --evals 3 --jobs 2"

static bool have_parallel(bg_t *tc)
{
    char path[1024];
    if (bg_drive_which("parallel", path, sizeof path)) return true;
    bg_test_skip(tc, "GNU parallel is not installed ('parallel' not on PATH; tools/setup.sh installs it)");
    return false;
}

static int run_env(const char *env, const char *args, char *out, size_t cap)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", env, bg_test_budgie_bin(), args);
    return bg_test_run_cmd(cmd, out, cap);
}

static bool exists(const char *dir, const char *name)
{
    char p[1400];
    snprintf(p, sizeof p, "%.1200s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* `want` evaluations, each scored or short of its first validation (two
 * runs at once on a small CPU can spend the budget before it; that is a
 * result, not a launcher failure), at least one scored, and every run
 * folder with the child's output. */
static void check_history(bg_t *tc, const char *sdir, int want)
{
    char hist[1100];
    snprintf(hist, sizeof hist, "%s/history.jsonl", sdir);
    json_t *recs[16];
    const int n = bg_test_history_records(hist, recs, 16);
    CHECK(n == want, "%s: %d evaluations, want %d", hist, n, want);
    int scored = 0;
    for (int i = 0; i < n; i++) {
        const char *e = json_string_value(json_object_get(recs[i], "error"));
        const bool ok = json_is_true(json_object_get(recs[i], "ok")) && json_is_number(json_object_get(recs[i], "acc")) &&
                        json_is_number(json_object_get(recs[i], "f"));
        scored += ok;
        CHECK(ok || (e && strstr(e, "no validation accuracy")), "record %d: %s", i + 1, e ? e : "no score, no error");
        json_t *runs = json_object_get(recs[i], "runs");
        CHECK(json_array_size(runs) == 1, "record %d has %zu runs", i + 1, json_array_size(runs));
        for (size_t r = 0; r < json_array_size(runs); r++) {
            char rd[1200];
            snprintf(rd, sizeof rd, "%s/%s", sdir, json_string_value(json_object_get(json_array_get(runs, r), "dir")));
            CHECK(exists(rd, "stdout.txt") && exists(rd, "stderr.txt") && exists(rd, "log.jsonl"),
                  "%s lacks stdout.txt, stderr.txt or log.jsonl", rd);
        }
    }
    CHECK(scored >= 1, "%s: no evaluation scored", hist);
    bg_test_history_free(recs, n);
}

/* Lines of a file (-1: none). */
static int lines_of(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

BG_TEST(search_launch_parallel_runs_the_evaluations)
{
    if (!bg_test_have_cli(tc) || !have_parallel(tc)) return;
    char dir[] = "/tmp/bg_launch_XXXXXX", args[1024], out[16384], sdir[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(sdir, sizeof sdir, "%s/s", dir);
    snprintf(args, sizeof args, "search hpo " TINY_HPO " --launcher parallel --out %s", sdir);
    int rc = run_env("", args, out, sizeof out);
    CHECK(rc == 0, "search exit %d: %s", rc, out);
    CHECK(strstr(out, "(parallel launcher)") != NULL, "not the parallel launcher: %s", out);
    check_history(tc, sdir, 3);
    /* X0 alone, then a batch of two: its jobs file and a joblog line each (and the header) */
    char p[400];
    snprintf(p, sizeof p, "%s/launch/parallel-2.jobs", sdir);
    CHECK(lines_of(p) == 2, "%s: %d lines, want 2", p, lines_of(p));
    snprintf(p, sizeof p, "%s/launch/parallel-2.joblog", sdir);
    CHECK(lines_of(p) == 3, "%s: %d lines, want 3", p, lines_of(p));

    /* parallel's --timeout: the run is killed, the point is infeasible, the search goes on and exits 1 */
    snprintf(sdir, sizeof sdir, "%s/t", dir);
    snprintf(args, sizeof args, "search nas " TINY " --evals 2 --jobs 2 --eval-timeout 0.5 --launcher parallel --out %s",
             sdir);
    rc = run_env("", args, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "killed after 0.5 s (eval timeout)") && strstr(out, "every evaluation failed"),
          "timeout: exit %d: %s", rc, out);
}

/* Stand-ins for sbatch, squeue and scancel: sbatch starts every task of
 * the script's --array here, in the background, and squeue lists the job
 * while one of them is alive. Enough to run the launcher's own part (the
 * commands file, the batch script, the exit files, the wait). */
static bool write_fake_slurm(const char *bin)
{
    static const struct {
        const char *name, *text;
    } f[] = {
        {"sbatch", "#!/bin/sh\n"
                   "echo \"$@\" > \"$(dirname \"$0\")/sbatch.args\"\n"
                   "out=; script=\n"
                   "for a; do case $a in --output=*) out=${a#--output=};; --chdir=*) cd \"${a#--chdir=}\";;\n"
                   "  -*) ;; *) script=$a;; esac; done\n"
                   "last=$(sed -n 's/^#SBATCH --array=0-\\([0-9]*\\)%.*/\\1/p' \"$script\")\n"
                   "t=0\n"
                   "while [ \"$t\" -le \"$last\" ]; do\n"
                   "  o=$(echo \"$out\" | sed \"s/%a/$t/\")\n"
                   "  SLURM_ARRAY_TASK_ID=$t bash \"$script\" > \"$o\" 2>&1 &\n"
                   "  echo $! >> \"$(dirname \"$0\")/pids\"\n"
                   "  t=$((t + 1))\n"
                   "done\n"
                   "echo 4242\n"},
        {"squeue", "#!/bin/sh\n"
                   "for p in $(cat \"$(dirname \"$0\")/pids\"); do\n"
                   "  if kill -0 \"$p\" 2>/dev/null; then echo 4242; exit 0; fi\n"
                   "done\n"},
        {"scancel", "#!/bin/sh\nexit 0\n"},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", bin, f[i].name);
        FILE *o = fopen(p, "w");
        if (!o || fputs(f[i].text, o) < 0 || fclose(o) != 0 || chmod(p, 0755) != 0) return false;
    }
    return true;
}

BG_TEST(search_launch_slurm_script_under_a_stand_in_sbatch)
{
    if (!bg_test_have_cli(tc)) return;
    char dir[] = "/tmp/bg_launch_XXXXXX", args[1024], out[16384], sdir[256], bin[256], env[1400];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(bin, sizeof bin, "%s/bin", dir);
    CHECK(mkdir(bin, 0777) == 0 && write_fake_slurm(bin), "stand-in slurm commands in %s", bin);
    snprintf(env, sizeof env, "PATH='%s':\"$PATH\"", bin);
    snprintf(sdir, sizeof sdir, "%s/s", dir);
    snprintf(args, sizeof args, "search hpo " TINY_HPO " --launcher slurm --partition debug --out %s", sdir);
    int rc = run_env(env, args, out, sizeof out);
    CHECK(rc == 0, "search exit %d: %s", rc, out);
    check_history(tc, sdir, 3);
    char p[400], text[4096] = "";
    snprintf(p, sizeof p, "%s/launch/slurm-2.sh", sdir);
    FILE *f = fopen(p, "r");
    if (f) {
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = 0;
        fclose(f);
    }
    CHECK(strstr(text, "#SBATCH --array=0-1%2") && strstr(text, "#SBATCH --partition=debug") &&
          strstr(text, "#SBATCH --time="), "batch script %s: %s", p, text);
    snprintf(p, sizeof p, "%s/s/evals/1", dir);
    CHECK(exists(p, "slurm-exit.txt"), "no exit file in %s", p);
    snprintf(p, sizeof p, "%s/sbatch.args", bin);
    f = fopen(p, "r");
    text[0] = 0;
    if (f) {
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = 0;
        fclose(f);
    }
    CHECK(strstr(text, "--parsable") && strstr(text, "--chdir=") && strstr(text, "--output="), "sbatch got: %s", text);
}

BG_TEST(search_launch_missing_binary_exits_2_before_any_evaluation)
{
    if (!bg_test_have_cli(tc)) return;
    char dir[] = "/tmp/bg_launch_XXXXXX", args[1024], out[16384];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    static const struct {
        const char *env, *args, *want;
    } bad[] = {
        {"PATH=/nonexistent", "--launcher parallel", "'parallel' is not on PATH"},
        {"PATH=/nonexistent", "--launcher slurm", "'sbatch' is not on PATH"},
        {"", "--launcher local --partition debug", "--partition is for --launcher slurm"},
        {"", "--launcher parallel --sbatch-args=--mem=1G", "--sbatch-args is for --launcher slurm"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        snprintf(args, sizeof args, "search nas " TINY " %s --evals 1 --out %s/bad%zu", bad[k].args, dir, k);
        int rc = run_env(bad[k].env, args, out, sizeof out);
        CHECK(rc == 2 && strstr(out, bad[k].want), "%s: exit %d, output: %s", bad[k].args, rc, out);
        char p[300];
        snprintf(p, sizeof p, "%s/bad%zu", dir, k);
        CHECK(access(p, F_OK) != 0, "%s: the search folder %s was made before the error", bad[k].args, p);
    }
    char path[1024];
    if (bg_drive_which("parallel", path, sizeof path)) {
        snprintf(args, sizeof args, "search nas " TINY " --launcher parallel --sshloginfile %s/no-hosts --out %s/h", dir,
                 dir);
        int rc = run_env("", args, out, sizeof out);
        CHECK(rc == 2 && strstr(out, "cannot read the sshloginfile") && strstr(out, "no-hosts"),
              "missing sshloginfile: exit %d: %s", rc, out);
    }
}
