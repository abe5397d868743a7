/* The GNU parallel launcher: a batch of jobs becomes a jobs file (one shell
 * command per line) that `parallel --jobs N --joblog LOG [--sshloginfile F]
 * [--timeout S]` runs, here or on the hosts of the sshloginfile. Parallel
 * does the scheduling, the remote starts and the timeouts; this file reads
 * the joblog as it grows, so each job is reported as it ends, with its exit
 * status, signal and run time.
 *
 * Each command changes to this process's working directory and runs the
 * budgie binary with its output in the run folder, so on other hosts the
 * binary, the search folder and the data must be at the same paths (a
 * shared filesystem; docs/search.md). parallel runs in the search's process
 * group: a Ctrl-C or a kill of the group stops it and its local jobs. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "drive.h"

extern char **environ;

typedef struct {
    char exe[1024];
    char parallel[1024];
    char dir[1024];
    char sshloginfile[1024];
    int devices;
} par_impl;

/* One job's command line: cd, the run folder, the device, the binary. */
static bool job_line(const par_impl *pi, const char *cwd, bg_drive_job *j, char *out, size_t cap)
{
    size_t n = 0;
    char sub[1100];
    out[0] = 0;
    j->argv[0] = (char *)pi->exe;
    bool ok = true;
    ok = ok && (n += (size_t)snprintf(out + n, cap - n, "cd ")) < cap && bg_drive_quote(out, cap, &n, cwd);
    ok = ok && (n += (size_t)snprintf(out + n, cap - n, " && mkdir -p ")) < cap && bg_drive_quote(out, cap, &n, j->dir);
    if (ok && pi->devices > 0)
        ok = (n += (size_t)snprintf(out + n, cap - n, " && export CUDA_VISIBLE_DEVICES=$(( (PARALLEL_JOBSLOT - 1) %% %d ))",
                                    pi->devices)) < cap;
    ok = ok && (n += (size_t)snprintf(out + n, cap - n, " && exec")) < cap;
    for (int a = 0; ok && j->argv[a]; a++) ok = (n += 1) < cap && (out[n - 1] = ' ', bg_drive_quote(out, cap, &n, j->argv[a]));
    snprintf(sub, sizeof sub, "%s/stdout.txt", j->dir);
    ok = ok && (n += (size_t)snprintf(out + n, cap - n, " > ")) < cap && bg_drive_quote(out, cap, &n, sub);
    snprintf(sub, sizeof sub, "%s/stderr.txt", j->dir);
    ok = ok && (n += (size_t)snprintf(out + n, cap - n, " 2> ")) < cap && bg_drive_quote(out, cap, &n, sub);
    ok = ok && (n += (size_t)snprintf(out + n, cap - n, " < /dev/null\n")) < cap;
    return ok;
}

/* One joblog line (Seq Host Starttime JobRuntime Send Receive Exitval Signal
 * Command, tab-separated) into its job; false for the header or a line
 * that does not parse. */
static bool joblog_line(char *line, bg_drive_job *jobs, int n, bool *reported, int *which)
{
    char *f[9];
    int k = 0;
    for (char *p = line; k < 9; k++) {
        f[k] = p;
        char *t = strchr(p, '\t');
        if (!t) {
            k++;
            break;
        }
        *t = 0;
        p = t + 1;
    }
    if (k < 8) return false;
    char *end;
    long seq = strtol(f[0], &end, 10);
    if (end == f[0] || seq < 1 || seq > n || reported[seq - 1]) return false;
    bg_drive_job *j = &jobs[seq - 1];
    const double runtime = strtod(f[3], NULL);
    const long exitval = strtol(f[6], NULL, 10), sig = strtol(f[7], NULL, 10);
    j->wall_s = runtime;
    j->signal = (int)sig;
    j->exit_code = sig ? -1 : (int)exitval;
    /* parallel's --timeout (whole seconds) sends TERM, then KILL: budgie
     * train stops at the TERM and exits 143, a job that ignores it is
     * logged with its signal; either way it failed at the limit */
    j->timed_out = j->timeout_s > 0 && (sig || exitval != 0) && runtime >= ceil(j->timeout_s) - 0.25;
    reported[seq - 1] = true;
    *which = (int)seq - 1;
    return true;
}

/* Report the joblog's complete lines past *offset. */
static void read_joblog(const char *path, long *offset, bg_drive_job *jobs, int n, bool *reported, int *left,
                        bg_drive_job_done done, void *user)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fseek(f, *offset, SEEK_SET) != 0) {
        fclose(f);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') break; /* parallel is still writing it */
        *offset += (long)len;
        line[len - 1] = 0;
        int which;
        if (joblog_line(line, jobs, n, reported, &which)) {
            (*left)--;
            done(user, &jobs[which]);
        }
    }
    free(line);
    fclose(f);
}

static bg_status par_run(bg_drive_launcher *l, bg_ctx *ctx, bg_drive_job *jobs, int n, bg_drive_job_done done,
                         void *user)
{
    par_impl *pi = l->impl;
    char launch[1100], stem[1200], jobs_path[1300], log_path[1300], out_path[1300], cwd[1024];
    if (bg_drive_launch_dir(ctx, pi->dir, launch, sizeof launch)) return ctx->status;
    if (!getcwd(cwd, sizeof cwd)) return bg_fail(ctx, BG_ERR_IO, "launcher parallel: getcwd: %s", strerror(errno));
    bg_drive_launch_stem(launch, "parallel", stem, sizeof stem);
    snprintf(jobs_path, sizeof jobs_path, "%s.jobs", stem);
    snprintf(log_path, sizeof log_path, "%s.joblog", stem);
    snprintf(out_path, sizeof out_path, "%s.out", stem);
    /* 1. the jobs file, one command per line, in the jobs' order (parallel's Seq) */
    FILE *f = fopen(jobs_path, "w");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "launcher parallel: cannot write %s: %s", jobs_path, strerror(errno));
    double timeout = 0;
    char line[8192];
    for (int i = 0; i < n; i++) {
        bg_drive_job *j = &jobs[i];
        j->slot = -1, j->exit_code = -1, j->signal = 0, j->timed_out = false, j->spawn_failed = false, j->wall_s = 0;
        j->why[0] = 0;
        if (j->timeout_s > timeout) timeout = j->timeout_s;
        if (!job_line(pi, cwd, j, line, sizeof line)) {
            fclose(f);
            return bg_fail(ctx, BG_ERR_ARG, "launcher parallel: the command of %s is too long or has a newline", j->dir);
        }
        fputs(line, f);
    }
    if (fclose(f) != 0) return bg_fail(ctx, BG_ERR_IO, "launcher parallel: cannot write %s: %s", jobs_path, strerror(errno));
    /* 2. parallel, its own output to a file, the jobs on its stdin */
    char jobs_n[32], tmo[32];
    snprintf(jobs_n, sizeof jobs_n, "%d", l->slots > 0 ? l->slots : 1);
    snprintf(tmo, sizeof tmo, "%.0f", ceil(timeout));
    char *argv[16];
    int a = 0;
    argv[a++] = pi->parallel;
    argv[a++] = "--will-cite";
    argv[a++] = "--jobs";
    argv[a++] = jobs_n;
    argv[a++] = "--joblog";
    argv[a++] = log_path;
    if (pi->sshloginfile[0]) argv[a++] = "--sshloginfile", argv[a++] = pi->sshloginfile;
    if (timeout > 0) argv[a++] = "--timeout", argv[a++] = tmo;
    argv[a] = NULL;
    /* the commands are POSIX sh, whatever the user's login shell */
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **env = malloc((ne + 2) * sizeof *env);
    if (!env) return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "PARALLEL_SHELL=", 15)) env[k++] = environ[i];
    env[k++] = "PARALLEL_SHELL=/bin/sh";
    env[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, jobs_path, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, pi->parallel, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc) return bg_fail(ctx, BG_ERR_IO, "launcher parallel: cannot start %s: %s", pi->parallel, strerror(rc));
    /* 3. the joblog as it grows, until parallel ends */
    bool *reported = calloc((size_t)n, sizeof *reported);
    if (!reported) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    }
    long offset = 0;
    int left = n, st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        read_joblog(log_path, &offset, jobs, n, reported, &left, done, user);
        if (r != 0) break;
        struct timespec d = {0, 100 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    const int pst = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    bg_status status = BG_OK;
    if (left == n && n > 0 && pst != 0) {
        /* nothing ran: parallel itself could not work (a bad sshloginfile, no host reachable) */
        char last[400];
        bg_drive_last_line(out_path, last, sizeof last);
        status = bg_fail(ctx, BG_ERR_IO, "launcher parallel: GNU parallel ran no job (exit %d): %s (%s)", pst,
                         last[0] ? last : "no message", out_path);
    } else {
        for (int i = 0; i < n; i++) {
            if (reported[i]) continue;
            snprintf(jobs[i].why, sizeof jobs[i].why, "GNU parallel ended (exit %d) without running it (see launch/%.60s)",
                     pst, strrchr(out_path, '/') + 1);
            done(user, &jobs[i]);
        }
    }
    free(reported);
    return status;
}

static void par_close(bg_drive_launcher *l)
{
    free(l->impl);
    l->impl = NULL;
}

bg_status bg_drive_launcher_parallel(bg_ctx *ctx, bg_drive_launcher *l, const bg_drive_engine_opts *o)
{
    memset(l, 0, sizeof *l);
    par_impl *pi = calloc(1, sizeof *pi);
    if (!pi) return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    if (!bg_drive_which("parallel", pi->parallel, sizeof pi->parallel)) {
        free(pi);
        return bg_fail(ctx, BG_ERR_ARG, "launcher parallel: 'parallel' is not on PATH (GNU parallel; on Debian: "
                       "apt-get install parallel)");
    }
    if (access(o->exe, X_OK) != 0) {
        const int e = errno;
        free(pi);
        return bg_fail(ctx, BG_ERR_ARG, "launcher parallel: %s is not an executable: %s", o->exe, strerror(e));
    }
    if (o->sshloginfile && access(o->sshloginfile, R_OK) != 0) {
        const int e = errno;
        free(pi);
        return bg_fail(ctx, BG_ERR_ARG, "launcher parallel: cannot read the sshloginfile %s: %s", o->sshloginfile,
                       strerror(e));
    }
    snprintf(pi->exe, sizeof pi->exe, "%s", o->exe);
    snprintf(pi->dir, sizeof pi->dir, "%s", o->dir);
    if (o->sshloginfile) snprintf(pi->sshloginfile, sizeof pi->sshloginfile, "%s", o->sshloginfile);
    pi->devices = o->devices;
    l->name = "parallel";
    l->slots = o->slots;
    l->run = par_run;
    l->close = par_close;
    l->impl = pi;
    return BG_OK;
}
