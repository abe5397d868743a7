/* Running a blackbox executable, NOMAD batch style. For each point of a
 * block: write the point to a file of its own, start `/bin/sh -c "CMD 'FILE'"`
 * with posix_spawn in its own process group (so a timeout kills the whole
 * tree a shell or a Python linker starts), read its standard output through a
 * pipe, and parse the last line. All points of a block run at once (that is
 * NB_THREADS_PARALLEL_EVAL); the results are stored by position, so the
 * order of completion never shows. Whatever a blackbox does (exit codes,
 * signals, hangs, garbage) ends as a failed evaluation with a reason. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "mads_batch.h"
#include "../../engine/clock.h"

extern char **environ;

#define OUT_CAP 65536 /* bytes of a blackbox's output kept (the tail) */

bg_status bg_mads_blackbox_open(bg_ctx *ctx, bg_mads_blackbox *bb, const char *cmd, const char *workdir,
                                const char *tmp_parent, const bg_mads_problem *p)
{
    memset(bb, 0, sizeof *bb);
    if (!cmd || !cmd[0]) return bg_fail(ctx, BG_ERR_ARG, "blackbox: empty command");
    if (strlen(cmd) >= sizeof bb->cmd) return bg_fail(ctx, BG_ERR_ARG, "blackbox: command too long");
    strcpy(bb->cmd, cmd);
    snprintf(bb->workdir, sizeof bb->workdir, "%s", workdir ? workdir : "");
    bb->n = p->n;
    bb->m = p->m;
    memcpy(bb->types, p->type, sizeof bb->types);
    const char *parent = tmp_parent && tmp_parent[0] ? tmp_parent : getenv("TMPDIR");
    if (!parent || !parent[0]) parent = "/tmp";
    if (snprintf(bb->tmp, sizeof bb->tmp, "%s/budgie-mads-XXXXXX", parent) >= (int)sizeof bb->tmp)
        return bg_fail(ctx, BG_ERR_ARG, "blackbox: temporary directory name too long");
    if (!mkdtemp(bb->tmp))
        return bg_fail(ctx, BG_ERR_IO, "blackbox: cannot create a temporary directory in %s: %s", parent,
                       strerror(errno));
    return BG_OK;
}

void bg_mads_blackbox_close(bg_mads_blackbox *bb)
{
    if (bb->tmp[0]) rmdir(bb->tmp);
    bb->tmp[0] = 0;
}

/* ---- output parsing --------------------------------------------------------- */

static int numbers(const char *s, const char *end, int max, double *out)
{
    int k = 0;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == ',')) s++;
        if (s >= end) break;
        char tok[128];
        size_t len = 0;
        while (s < end && !(*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == ',')) {
            if (len + 1 < sizeof tok) tok[len] = *s;
            len++;
            s++;
        }
        if (len >= sizeof tok) return -1;
        tok[len] = 0;
        char *e;
        double v = strtod(tok, &e);
        if (e == tok || *e) return -1;
        if (k < max) out[k] = v;
        k++;
    }
    return k;
}

bool bg_mads_parse_outputs(const char *text, int m, double *out, char *why, size_t cap)
{
    const char *end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
    if (end == text) {
        snprintf(why, cap, "no output");
        return false;
    }
    const char *line = end;
    while (line > text && line[-1] != '\n') line--;
    double v[BG_MADS_MAX_OUT];
    if (numbers(line, end, BG_MADS_MAX_OUT, v) == m) {
        memcpy(out, v, (size_t)m * sizeof *v);
        return true;
    }
    /* outputs one per line are fine too */
    if (numbers(text, end, BG_MADS_MAX_OUT, v) == m) {
        memcpy(out, v, (size_t)m * sizeof *v);
        return true;
    }
    snprintf(why, cap, "unreadable output (want %d numbers): '%.*s'", m, (int)(end - line > 80 ? 80 : end - line),
             line);
    return false;
}

/* ---- one block ---------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int fd;
    char *buf;
    size_t len;
    bool exited, eof, timed_out, started;
    int status;
    double exit_time;
    char file[BG_MADS_PATH + 64];
} child;

static void append(child *c, const char *d, size_t k)
{
    if (c->len + k > OUT_CAP) {
        /* keep the tail: the outputs are on the last line */
        size_t drop = c->len + k - OUT_CAP;
        if (drop > c->len) {
            d += drop - c->len;
            k -= drop - c->len;
            drop = c->len;
        }
        memmove(c->buf, c->buf + drop, c->len - drop);
        c->len -= drop;
    }
    memcpy(c->buf + c->len, d, k);
    c->len += k;
}

static bool write_point(const bg_mads_blackbox *bb, const double *x, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return false;
    for (int i = 0; i < bb->n; i++) {
        char v[64];
        bg_mads_format_value(x[i], bb->types[i] != BG_MADS_REAL, v, sizeof v);
        fprintf(f, "%s%s", i ? " " : "", v);
    }
    fputc('\n', f);
    return fclose(f) == 0;
}

/* CMD 'FILE' with the file name quoted for the shell. */
static bool build_command(const char *cmd, const char *file, char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "%s '", cmd);
    if (k >= cap) return false;
    for (const char *s = file; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t need = piece ? 4 : 1;
        if (k + need + 2 >= cap) return false;
        if (piece) memcpy(out + k, piece, 4);
        else out[k] = *s;
        k += need;
    }
    out[k++] = '\'';
    out[k] = 0;
    return true;
}

static void start(bg_mads_blackbox *bb, child *c, int idx, const double *x)
{
    snprintf(c->file, sizeof c->file, "%s/x.%ld.txt", bb->tmp, bb->seq++);
    if (!write_point(bb, x, c->file)) {
        snprintf(bb->reason[idx], sizeof bb->reason[idx], "cannot write the point file %.80s: %.40s", c->file,
                 strerror(errno));
        return;
    }
    char command[8192];
    if (!build_command(bb->cmd, c->file, command, sizeof command)) {
        snprintf(bb->reason[idx], sizeof bb->reason[idx], "command too long");
        return;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(bb->reason[idx], sizeof bb->reason[idx], "pipe: %s", strerror(errno));
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (bb->quiet) posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (bb->workdir[0]) posix_spawn_file_actions_addchdir_np(&fa, bb->workdir);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGALRM};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) sigaddset(&dflt, sigs[k]);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", command, NULL};
    int rc = posix_spawn(&c->pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        snprintf(bb->reason[idx], sizeof bb->reason[idx], "cannot start /bin/sh: %s", strerror(rc));
        return;
    }
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    c->fd = fds[0];
    c->started = true;
}

bg_status bg_mads_blackbox_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    bg_mads_blackbox *bb = user;
    if (count < 0 || count > BG_MADS_MAX_BLOCK)
        return bg_fail(ctx, BG_ERR_ARG, "blackbox: block of %d points (at most %d)", count, BG_MADS_MAX_BLOCK);
    child *ch = calloc((size_t)(count > 0 ? count : 1), sizeof *ch);
    char *bufs = malloc((size_t)(count > 0 ? count : 1) * (OUT_CAP + 1));
    if (!ch || !bufs) {
        free(ch);
        free(bufs);
        return bg_fail(ctx, BG_ERR_OOM, "blackbox: out of memory");
    }
    bb->last_count = count;
    for (int i = 0; i < count; i++) {
        bb->reason[i][0] = 0;
        ch[i].fd = -1;
        ch[i].buf = bufs + (size_t)i * (OUT_CAP + 1);
        ok[i] = false;
        for (int j = 0; j < bb->m; j++) out[(size_t)i * bb->m + j] = NAN;
        start(bb, &ch[i], i, x + (size_t)i * bb->n);
    }
    double t0 = bg_monotonic_s();
    for (;;) {
        int running = 0;
        struct pollfd pf[BG_MADS_MAX_BLOCK];
        int who[BG_MADS_MAX_BLOCK], np = 0;
        for (int i = 0; i < count; i++) {
            child *c = &ch[i];
            if (!c->started) continue;
            if (!c->exited) {
                /* look without reaping: while the leader is a zombie its
                 * process group id cannot be reused, so the group kill that
                 * clears what it left behind hits only our processes */
                siginfo_t si;
                memset(&si, 0, sizeof si);
                if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c->pid) {
                    kill(-c->pid, SIGKILL);
                    int st = 0;
                    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
                    }
                    c->exited = true;
                    c->status = st;
                    c->exit_time = bg_monotonic_s();
                }
            }
            if (!c->exited && bb->timeout_s > 0 && bg_monotonic_s() - t0 > bb->timeout_s && !c->timed_out) {
                c->timed_out = true;
                kill(-c->pid, SIGKILL);
                kill(c->pid, SIGKILL);
            }
            /* a grandchild may keep the pipe open after the blackbox exits */
            bool done = c->exited && (c->eof || bg_monotonic_s() - c->exit_time > 1.0);
            if (done) {
                if (c->fd >= 0) {
                    close(c->fd);
                    c->fd = -1;
                }
                continue;
            }
            running++;
            if (c->fd >= 0 && !c->eof) {
                pf[np] = (struct pollfd){.fd = c->fd, .events = POLLIN};
                who[np++] = i;
            }
        }
        if (!running) break;
        int wait_ms = np ? 20 : 2;
        int pr = poll(pf, (nfds_t)np, wait_ms);
        if (pr < 0 && errno != EINTR) break;
        for (int k = 0; k < np && pr > 0; k++) {
            if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            child *c = &ch[who[k]];
            char tmp[8192];
            for (;;) {
                ssize_t r = read(c->fd, tmp, sizeof tmp);
                if (r > 0) {
                    append(c, tmp, (size_t)r);
                    continue;
                }
                if (r == 0) c->eof = true;
                else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c->eof = true;
                break;
            }
        }
    }
    for (int i = 0; i < count; i++) {
        child *c = &ch[i];
        if (c->started) {
            if (!c->exited) { /* only after a poll failure */
                kill(-c->pid, SIGKILL);
                while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR) {
                }
            }
            if (c->fd >= 0) close(c->fd);
            c->buf[c->len] = 0;
            char *why = bb->reason[i];
            size_t cap = sizeof bb->reason[i];
            if (c->timed_out)
                snprintf(why, cap, "timed out after %g s", bb->timeout_s);
            else if (WIFSIGNALED(c->status))
                snprintf(why, cap, "killed by signal %d (%s)", WTERMSIG(c->status), strsignal(WTERMSIG(c->status)));
            else if (WIFEXITED(c->status) && WEXITSTATUS(c->status) > 128 && WEXITSTATUS(c->status) < 128 + 32)
                snprintf(why, cap, "exit status %d (a shell reporting signal %d, %s)", WEXITSTATUS(c->status),
                         WEXITSTATUS(c->status) - 128, strsignal(WEXITSTATUS(c->status) - 128));
            else if (WIFEXITED(c->status) && WEXITSTATUS(c->status) != 0)
                snprintf(why, cap, "exit status %d", WEXITSTATUS(c->status));
            else
                ok[i] = bg_mads_parse_outputs(c->buf, bb->m, out + (size_t)i * bb->m, why, cap);
        }
        if (c->file[0]) unlink(c->file);
    }
    free(ch);
    free(bufs);
    return BG_OK;
}
