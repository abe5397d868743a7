/* The local launcher: each job is a child process (posix_spawn) of this
 * one, with its stdout and stderr in its run folder, up to `slots` at once;
 * with devices, slot k sees CUDA_VISIBLE_DEVICES = k % devices. A job that
 * overruns its timeout is killed (SIGKILL: the search has stopped waiting,
 * and a half-written run is an infeasible point anyway).
 *
 * Children stay in the search's process group: a terminal's Ctrl-C, or a
 * kill of the group, ends the whole search at once; --resume picks it up. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "drive.h"
#include "../../engine/clock.h"

extern char **environ;

typedef struct {
    char exe[1024];
    int devices;
} local_impl;

/* The environment with CUDA_VISIBLE_DEVICES replaced (devices > 0). */
static char **child_env(int slot, int devices, char *var, size_t cap)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (devices <= 0 || strncmp(environ[i], "CUDA_VISIBLE_DEVICES=", 21)) env[k++] = environ[i];
    if (devices > 0) {
        snprintf(var, cap, "CUDA_VISIBLE_DEVICES=%d", slot % devices);
        env[k++] = var;
    }
    env[k] = NULL;
    return env;
}

static bool spawn(local_impl *li, bg_drive_job *j, int slot, pid_t *pid)
{
    char out[1100], err[1100], var[64];
    mkdir(j->dir, 0777);
    snprintf(out, sizeof out, "%s/stdout.txt", j->dir);
    snprintf(err, sizeof err, "%s/stderr.txt", j->dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char **env = child_env(slot, li->devices, var, sizeof var);
    j->argv[0] = li->exe;
    int rc = env ? posix_spawn(pid, li->exe, &fa, NULL, j->argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc) {
        FILE *f = fopen(err, "a");
        if (f) fprintf(f, "search: cannot start %s: %s\n", li->exe, strerror(rc)), fclose(f);
    }
    return rc == 0;
}

static bg_status local_run(bg_drive_launcher *l, bg_ctx *ctx, bg_drive_job *jobs, int n, bg_drive_job_done done,
                           void *user)
{
    local_impl *li = l->impl;
    const int slots = l->slots > 0 ? l->slots : 1;
    pid_t *pid = calloc((size_t)slots, sizeof *pid);
    int *job_of = calloc((size_t)slots, sizeof *job_of);
    double *t0 = calloc((size_t)slots, sizeof *t0);
    if (!pid || !job_of || !t0) {
        free(pid), free(job_of), free(t0);
        return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    }
    int next = 0, running = 0;
    while (next < n || running > 0) {
        /* fill the free slots */
        for (int s = 0; s < slots && next < n; s++) {
            if (pid[s]) continue;
            bg_drive_job *j = &jobs[next];
            j->slot = s, j->exit_code = -1, j->signal = 0, j->timed_out = false, j->spawn_failed = false;
            j->why[0] = 0;
            const double ts = bg_monotonic_s();
            if (!spawn(li, j, s, &pid[s])) {
                j->spawn_failed = true, j->wall_s = 0;
                next++;
                pid[s] = 0;
                done(user, j);
                s--; /* the slot is still free */
                continue;
            }
            job_of[s] = next++, t0[s] = ts, running++;
        }
        /* reap what has ended, kill what overran */
        bool reaped = false;
        for (int s = 0; s < slots; s++) {
            if (!pid[s]) continue;
            bg_drive_job *j = &jobs[job_of[s]];
            int st;
            pid_t r = waitpid(pid[s], &st, WNOHANG);
            if (r == 0) {
                if (j->timeout_s > 0 && bg_monotonic_s() - t0[s] > j->timeout_s && !j->timed_out) {
                    j->timed_out = true;
                    kill(pid[s], SIGKILL);
                }
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            j->wall_s = bg_monotonic_s() - t0[s];
            if (r > 0 && WIFEXITED(st)) j->exit_code = WEXITSTATUS(st);
            else if (r > 0 && WIFSIGNALED(st)) j->signal = WTERMSIG(st);
            pid[s] = 0, running--, reaped = true;
            done(user, j);
        }
        if (!reaped && running > 0) {
            struct timespec d = {0, 20 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
    }
    free(pid), free(job_of), free(t0);
    return BG_OK;
}

static void local_close(bg_drive_launcher *l)
{
    free(l->impl);
    l->impl = NULL;
}

bg_status bg_drive_launcher_local(bg_ctx *ctx, bg_drive_launcher *l, const char *exe, int slots, int devices)
{
    memset(l, 0, sizeof *l);
    if (access(exe, X_OK) != 0)
        return bg_fail(ctx, BG_ERR_ARG, "launcher local: %s is not an executable: %s", exe, strerror(errno));
    local_impl *li = calloc(1, sizeof *li);
    if (!li) return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    snprintf(li->exe, sizeof li->exe, "%s", exe);
    li->devices = devices;
    l->name = "local";
    l->slots = slots;
    l->run = local_run;
    l->close = local_close;
    l->impl = li;
    return BG_OK;
}
