/* The Slurm launcher: a batch of jobs becomes one job array. A commands file
 * holds one line per job (the run folder, then the argv, shell-quoted); a
 * bash batch script picks line SLURM_ARRAY_TASK_ID + 1, runs it with its
 * output in the run folder under coreutils' timeout, and writes its exit
 * status and times to RUN/slurm-exit.txt. `sbatch --parsable` submits the
 * script (the array, its throttle and the time limit are #SBATCH lines in
 * it, so it can be resubmitted by hand); this file reports each job as its
 * exit file appears and polls `squeue -j ID` until the array is gone. A job
 * without an exit file then (cancelled, over the time limit, a lost node)
 * is a failed evaluation.
 *
 * Slurm runs the jobs outside this process's group, so while it waits
 * SIGINT, SIGTERM and SIGHUP are blocked and taken with sigtimedwait: one
 * of them cancels the array (scancel) and ends the search with an error;
 * --resume picks it up. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "drive.h"

typedef struct {
    char exe[1024];
    char dir[1024];
    char partition[128];
    char sbatch_args[1024];
    double poll_s;
} slurm_impl;

static bool write_commands(const char *path, const char *exe, bg_drive_job *jobs, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) return false;
    char line[8192];
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        bg_drive_job *j = &jobs[i];
        j->argv[0] = (char *)exe;
        size_t len = 0;
        line[0] = 0;
        ok = bg_drive_quote(line, sizeof line, &len, j->dir);
        for (int a = 0; ok && j->argv[a]; a++) {
            ok = len + 2 < sizeof line;
            if (ok) line[len++] = ' ', line[len] = 0;
            ok = ok && bg_drive_quote(line, sizeof line, &len, j->argv[a]);
        }
        ok = ok && fprintf(f, "%s\n", line) > 0;
    }
    return fclose(f) == 0 && ok;
}

/* The folder and the output pattern (paths that may hold blanks) are given
 * on sbatch's command line; the script cds there itself. */
static bool write_script(const char *path, const char *cwd, const char *cmds, int n, int slots, double timeout,
                         const char *partition)
{
    FILE *f = fopen(path, "w");
    if (!f) return false;
    char q_cwd[1200], q_cmds[1400], tmo[64] = "";
    size_t a = 0, b = 0;
    if (!bg_drive_quote(q_cwd, sizeof q_cwd, &a, cwd) || !bg_drive_quote(q_cmds, sizeof q_cmds, &b, cmds)) {
        fclose(f);
        return false;
    }
    fprintf(f, "#!/bin/bash\n"
               "# budgie search: one batch of evaluations as a Slurm job array (docs/search.md).\n"
               "# Task T runs line T+1 of the commands file: the run folder, then the command.\n"
               "#SBATCH --job-name=budgie-search\n"
               "#SBATCH --array=0-%d%%%d\n",
            n - 1, slots);
    if (timeout > 0) {
        /* Slurm's limit is a backstop behind timeout(1), which lets the exit file be written */
        fprintf(f, "#SBATCH --time=%.0f\n", ceil((timeout + 60) / 60));
        snprintf(tmo, sizeof tmo, "timeout --kill-after=10 %.0f ", ceil(timeout));
    }
    if (partition && partition[0]) fprintf(f, "#SBATCH --partition=%s\n", partition);
    fprintf(f, "set -u\n"
               "cd %s || exit 1\n"
               "line=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" %s)\n"
               "[ -n \"$line\" ] || { echo \"budgie search: no command for task $SLURM_ARRAY_TASK_ID\" >&2; exit 1; }\n"
               "eval \"set -- $line\"\n"
               "dir=$1\n"
               "shift\n"
               "mkdir -p \"$dir\" || exit 1\n"
               "rm -f \"$dir/slurm-exit.txt\"\n"
               "t0=$EPOCHREALTIME\n"
               "%s\"$@\" > \"$dir/stdout.txt\" 2> \"$dir/stderr.txt\" < /dev/null\n"
               "rc=$?\n"
               "echo \"$rc $t0 $EPOCHREALTIME\" > \"$dir/slurm-exit.txt.tmp\" && mv \"$dir/slurm-exit.txt.tmp\" "
               "\"$dir/slurm-exit.txt\"\n",
            q_cwd, q_cmds, tmo);
    return fclose(f) == 0;
}

/* A job's exit file: "STATUS T0 T1" (124: timeout(1) killed it). */
static bool read_exit(bg_drive_job *j)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/slurm-exit.txt", j->dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    int rc = -1;
    double t0 = 0, t1 = 0;
    const int got = fscanf(f, "%d %lf %lf", &rc, &t0, &t1);
    fclose(f);
    if (got < 1) return false; /* not written yet */
    j->wall_s = got == 3 ? t1 - t0 : 0;
    if (rc == 124 && j->timeout_s > 0) j->timed_out = true, j->signal = SIGKILL;
    else if (rc > 128) j->signal = rc - 128;
    else j->exit_code = rc;
    return true;
}

/* Is the array still in the queue? An error after many failed squeue calls in a row. */
static int array_state(bg_ctx *ctx, const char *id, int *fails)
{
    char *argv[] = {"squeue", "-h", "-j", (char *)id, "-o", "%i", NULL};
    char out[4096];
    int st;
    if (bg_drive_capture(ctx, argv, out, sizeof out, &st)) return -1;
    if (st == 0) {
        *fails = 0;
        return out[strspn(out, " \t\n")] != 0; /* listed: pending or running */
    }
    if (strstr(out, "Invalid job id")) return 0; /* done and already purged */
    if (++*fails >= 30) {
        bg_fail(ctx, BG_ERR_IO, "launcher slurm: squeue -j %s keeps failing: %s", id, out);
        return -1;
    }
    return 1;
}

/* Best effort: the search is stopping either way. */
static void scancel(const char *id)
{
    char *argv[] = {"scancel", (char *)id, NULL};
    char out[1024];
    int st;
    bg_ctx c;
    bg_ctx_init(&c, BG_CPU, 0);
    bg_drive_capture(&c, argv, out, sizeof out, &st);
    bg_ctx_free(&c);
}

static bg_status slurm_run(bg_drive_launcher *l, bg_ctx *ctx, bg_drive_job *jobs, int n, bg_drive_job_done done,
                           void *user)
{
    slurm_impl *si = l->impl;
    char launch[1100], stem[1200], cmds[1300], script[1300], outp[1300], cwd[1024];
    if (bg_drive_launch_dir(ctx, si->dir, launch, sizeof launch)) return ctx->status;
    if (!getcwd(cwd, sizeof cwd)) return bg_fail(ctx, BG_ERR_IO, "launcher slurm: getcwd: %s", strerror(errno));
    bg_drive_launch_stem(launch, "slurm", stem, sizeof stem);
    snprintf(cmds, sizeof cmds, "%s.jobs", stem);
    snprintf(script, sizeof script, "%s.sh", stem);
    snprintf(outp, sizeof outp, "%s-%%a.out", stem);
    /* 1. the commands and the script */
    double timeout = 0;
    for (int i = 0; i < n; i++) {
        bg_drive_job *j = &jobs[i];
        j->slot = -1, j->exit_code = -1, j->signal = 0, j->timed_out = false, j->spawn_failed = false, j->wall_s = 0;
        j->why[0] = 0;
        if (j->timeout_s > timeout) timeout = j->timeout_s;
        char ef[1100];
        snprintf(ef, sizeof ef, "%s/slurm-exit.txt", j->dir);
        unlink(ef); /* a stale one must not read as this run's */
    }
    if (!write_commands(cmds, si->exe, jobs, n))
        return bg_fail(ctx, BG_ERR_IO, "launcher slurm: cannot write %s (or a command is too long or has a newline)",
                       cmds);
    if (!write_script(script, cwd, cmds, n, l->slots > 0 ? l->slots : 1, timeout, si->partition))
        return bg_fail(ctx, BG_ERR_IO, "launcher slurm: cannot write %s", script);
    /* 2. sbatch; its extra options go before the script, overriding its #SBATCH lines */
    char *argv[64], args[1024], out[4096], chdir_opt[1100], out_opt[1400];
    int a = 0, st;
    snprintf(chdir_opt, sizeof chdir_opt, "--chdir=%s", cwd);
    snprintf(out_opt, sizeof out_opt, "--output=%s", outp);
    argv[a++] = "sbatch";
    argv[a++] = "--parsable";
    argv[a++] = chdir_opt;
    argv[a++] = out_opt;
    snprintf(args, sizeof args, "%s", si->sbatch_args);
    char *save = NULL;
    for (char *t = strtok_r(args, " \t", &save); t && a < 60; t = strtok_r(NULL, " \t", &save)) argv[a++] = t;
    argv[a++] = script;
    argv[a] = NULL;
    if (bg_drive_capture(ctx, argv, out, sizeof out, &st)) return ctx->status;
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)strspn(out, "0123456789"), out);
    if (st != 0 || !id[0]) {
        out[strcspn(out, "\n")] = 0;
        return bg_fail(ctx, BG_ERR_IO, "launcher slurm: sbatch %s failed (exit %d): %s", script, st, out);
    }
    /* 3. wait: exit files as they appear, squeue until the array is gone */
    bool *reported = calloc((size_t)n, sizeof *reported);
    if (!reported) {
        scancel(id);
        return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    }
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, &old);
    const double poll = si->poll_s > 0 ? si->poll_s : 2;
    double next_poll = bg_monotonic_s() + poll;
    int left = n, fails = 0;
    bool gone = false;
    bg_status status = BG_OK;
    while (left > 0) {
        for (int i = 0; i < n; i++)
            if (!reported[i] && read_exit(&jobs[i])) reported[i] = true, left--, done(user, &jobs[i]);
        if (left == 0 || gone) break;
        if (bg_monotonic_s() >= next_poll) {
            const int s = array_state(ctx, id, &fails);
            if (s < 0) {
                status = ctx->status;
                scancel(id);
                break;
            }
            gone = s == 0; /* one more look at the exit files, then the rest failed */
            next_poll = bg_monotonic_s() + poll;
            if (gone) continue;
        }
        struct timespec d = {0, 250 * 1000 * 1000};
        siginfo_t info;
        const int sig = sigtimedwait(&stop, &info, &d);
        if (sig > 0) {
            scancel(id);
            status = bg_fail(ctx, BG_ERR_IO, "launcher slurm: stopped by signal %d; Slurm job %s was cancelled "
                             "(--resume goes on)", sig, id);
            break;
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    const char *base = strrchr(stem, '/') ? strrchr(stem, '/') + 1 : stem;
    if (!status)
        for (int i = 0; i < n; i++) {
            if (reported[i]) continue;
            snprintf(jobs[i].why, sizeof jobs[i].why, "Slurm task %s_%d ended without an exit status (cancelled, "
                     "over its time limit or its node failed; see launch/%.40s-%d.out)", id, i, base, i);
            done(user, &jobs[i]);
        }
    free(reported);
    return status;
}

static void slurm_close(bg_drive_launcher *l)
{
    free(l->impl);
    l->impl = NULL;
}

bg_status bg_drive_launcher_slurm(bg_ctx *ctx, bg_drive_launcher *l, const bg_drive_engine_opts *o)
{
    memset(l, 0, sizeof *l);
    static const char *const need[] = {"sbatch", "squeue", "scancel"};
    char path[1024];
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (!bg_drive_which(need[i], path, sizeof path))
            return bg_fail(ctx, BG_ERR_ARG, "launcher slurm: '%s' is not on PATH (the Slurm client commands; on "
                           "Debian: apt-get install slurm-client)", need[i]);
    if (access(o->exe, X_OK) != 0)
        return bg_fail(ctx, BG_ERR_ARG, "launcher slurm: %s is not an executable: %s", o->exe, strerror(errno));
    if (o->sbatch_args && strlen(o->sbatch_args) >= 1024)
        return bg_fail(ctx, BG_ERR_ARG, "launcher slurm: --sbatch-args is too long");
    if (o->partition && (strlen(o->partition) >= 128 || strpbrk(o->partition, " \t\n'\"")))
        return bg_fail(ctx, BG_ERR_ARG, "launcher slurm: bad --partition '%.200s'", o->partition);
    slurm_impl *si = calloc(1, sizeof *si);
    if (!si) return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    snprintf(si->exe, sizeof si->exe, "%s", o->exe);
    snprintf(si->dir, sizeof si->dir, "%s", o->dir);
    if (o->partition) snprintf(si->partition, sizeof si->partition, "%s", o->partition);
    if (o->sbatch_args) snprintf(si->sbatch_args, sizeof si->sbatch_args, "%s", o->sbatch_args);
    si->poll_s = o->poll_s;
    l->name = "slurm";
    l->slots = o->slots;
    l->run = slurm_run;
    l->close = slurm_close;
    l->impl = si;
    return BG_OK;
}
