/* What the GNU parallel and Slurm launchers share: finding their binaries on
 * PATH (a missing one is bad input, caught before any evaluation), quoting
 * a job's argv for the shell that runs it, running a short command (sbatch,
 * squeue, scancel) for its output, and the launch/ folder their files go to. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "drive.h"

extern char **environ;

bool bg_drive_which(const char *name, char *out, size_t cap)
{
    if (strchr(name, '/')) {
        snprintf(out, cap, "%s", name);
        return access(name, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    if (!path) return false;
    while (*path) {
        size_t n = strcspn(path, ":");
        /* an empty PATH entry is the current directory */
        snprintf(out, cap, "%.*s%s%s", (int)n, n ? path : ".", "/", name);
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) return true;
        path += n + (path[n] == ':');
    }
    return false;
}

bool bg_drive_quote(char *out, size_t cap, size_t *len, const char *s)
{
    size_t k = *len;
    if (k + 1 >= cap) return false;
    out[k++] = '\'';
    for (; *s; s++) {
        if (*s == '\n') return false;
        /* a quote ends the quoted string, is escaped, and a new one starts: '\'' */
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        const size_t m = piece ? 4 : 1;
        if (k + m + 2 >= cap) return false;
        if (piece) memcpy(out + k, piece, m);
        else out[k] = *s;
        k += m;
    }
    out[k++] = '\'';
    out[k] = 0;
    *len = k;
    return true;
}

bg_status bg_drive_capture(bg_ctx *ctx, char *const argv[], char *out, size_t cap, int *status)
{
    int fd[2];
    if (pipe(fd) != 0) return bg_fail(ctx, BG_ERR_IO, "search: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    /* the child gets no blocked signals, whatever the caller blocks while it waits */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fd[1]);
    if (rc) {
        close(fd[0]);
        return bg_fail(ctx, BG_ERR_IO, "search: cannot run %s: %s", argv[0], strerror(rc));
    }
    size_t n = 0;
    char sink[512];
    for (;;) {
        /* read to the end even past cap, so the child never blocks on a full pipe */
        char *to = n + 1 < cap ? out + n : sink;
        size_t room = n + 1 < cap ? cap - 1 - n : sizeof sink;
        ssize_t got = read(fd[0], to, room);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        if (to != sink) n += (size_t)got;
    }
    out[n] = 0;
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    return BG_OK;
}

bg_status bg_drive_launch_dir(bg_ctx *ctx, const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/launch", dir);
    if (mkdir(out, 0777) != 0 && errno != EEXIST)
        return bg_fail(ctx, BG_ERR_IO, "search: cannot create %s: %s", out, strerror(errno));
    return BG_OK;
}

void bg_drive_launch_stem(const char *launch_dir, const char *prefix, char *out, size_t cap)
{
    /* the first K whose jobs file is not there yet */
    char probe[1200];
    struct stat st;
    for (int k = 1;; k++) {
        snprintf(out, cap, "%s/%s-%d", launch_dir, prefix, k);
        snprintf(probe, sizeof probe, "%s.jobs", out);
        if (stat(probe, &st) != 0) return;
    }
}
