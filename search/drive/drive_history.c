/* The search's JSON-lines history: a header line that describes the search
 * (so a resume can refuse another search's file), then one line per
 * evaluation, each written with a single write() and fsynced before the
 * search goes on. A kill can therefore only cut the last line; that line is
 * dropped on resume (its point is evaluated again). Anything else that does
 * not parse is an error naming the line: it is not a kill's trace. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "drive.h"

static bg_status write_all(bg_ctx *ctx, const char *path, int fd, const char *line)
{
    const size_t len = strlen(line);
    /* one write: the line lands whole or (killed mid-call) cut, never interleaved */
    ssize_t w = write(fd, line, len);
    if (w != (ssize_t)len) return bg_fail(ctx, BG_ERR_IO, "%s: cannot append: %s", path, w < 0 ? strerror(errno) : "short write");
    if (fsync(fd) != 0) return bg_fail(ctx, BG_ERR_IO, "%s: cannot sync: %s", path, strerror(errno));
    return BG_OK;
}

/* One line (text + newline) into PATH opened with `flags`; `how` names the
 * open for the message. */
static bg_status write_line(bg_ctx *ctx, const char *path, int flags, const char *how, const char *text)
{
    int fd = open(path, flags, 0644);
    if (fd < 0) return bg_fail(ctx, BG_ERR_IO, "%s: cannot %s: %s", path, how, strerror(errno));
    char *l = malloc(strlen(text) + 2);
    if (!l) {
        close(fd);
        return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path);
    }
    sprintf(l, "%s\n", text);
    bg_status s = write_all(ctx, path, fd, l);
    free(l);
    close(fd);
    return s;
}

bg_status bg_drive_history_create(bg_ctx *ctx, const char *path, const char *header)
{
    return write_line(ctx, path, O_WRONLY | O_CREAT | O_TRUNC, "create", header);
}

bg_status bg_drive_history_append(bg_ctx *ctx, const char *path, const char *line)
{
    return write_line(ctx, path, O_WRONLY | O_APPEND, "open for appending", line);
}

void bg_drive_history_free(bg_drive_history *h)
{
    for (long k = 0; k < h->count && h->key; k++) free(h->key[k]);
    free(h->x), free(h->out), free(h->ok), free(h->key), free(h->acc);
    memset(h, 0, sizeof *h);
}

/* The first field of `want` that `got` lacks or holds differently. */
static bg_status same_search(bg_ctx *ctx, const char *path, json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    if (!want) return bg_fail(ctx, BG_ERR_ARG, "search: internal: bad history header");
    const char *key;
    json_t *v;
    bg_status s = BG_OK;
    json_object_foreach(want, key, v)
    {
        json_t *g = json_object_get(got, key);
        if (g && json_equal(g, v)) continue;
        char *gs = g ? json_dumps(g, JSON_COMPACT | JSON_ENCODE_ANY) : NULL, *ws = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        /* recipes are long: name the key only */
        const bool long_ = (gs && strlen(gs) > 80) || (ws && strlen(ws) > 80);
        s = bg_fail(ctx, BG_ERR_ARG, "--resume: %s is the history of a different search: its %s %s%s%s%s (this search: %s)",
                    path, key, g ? "is " : "is missing", g && !long_ ? gs : "", g && long_ ? "different" : "", "",
                    long_ ? "see the file" : ws ? ws : "?");
        free(gs), free(ws);
        break;
    }
    json_decref(want);
    return s;
}

static bool grow(bg_drive_history *h, long need)
{
    static const long step = 64;
    if (need <= 0 || (need - 1) % step) return true;
    const size_t cap = (size_t)(need - 1 + step);
    double *x = realloc(h->x, cap * (size_t)(h->n > 0 ? h->n : 1) * sizeof *x);
    if (x) h->x = x;
    double *o = realloc(h->out, cap * (size_t)(h->m > 0 ? h->m : 1) * sizeof *o);
    if (o) h->out = o;
    bool *ok = realloc(h->ok, cap * sizeof *ok);
    if (ok) h->ok = ok;
    char **key = realloc(h->key, cap * sizeof *key);
    if (key) h->key = key;
    double *acc = realloc(h->acc, cap * sizeof *acc);
    if (acc) h->acc = acc;
    return x && o && ok && key && acc;
}

bg_status bg_drive_history_load(bg_ctx *ctx, const char *path, const char *header, int n, int m,
                                bg_drive_history *h)
{
    memset(h, 0, sizeof *h);
    h->n = n, h->m = m;
    FILE *f = fopen(path, "r");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "--resume: cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, valid = 0, offset = 0;
    bg_status s = BG_OK;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        const bool whole = line[len - 1] == '\n';
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!whole) {
            /* the kill's trace: the last line without its newline */
            json_decref(o);
            h->dropped_tail = true;
            break;
        }
        if (!o || !json_is_object(o)) {
            s = bg_fail(ctx, BG_ERR_FORMAT, "--resume: %s:%ld: not a JSON record (%s); the history is damaged", path,
                        lineno, o ? "not an object" : err.text);
            json_decref(o);
            break;
        }
        if (lineno == 1) {
            if (!json_is_string(json_object_get(o, "search")))
                s = bg_fail(ctx, BG_ERR_FORMAT, "--resume: %s:1: not a search history (no \"search\" header line)", path);
            else
                s = same_search(ctx, path, o, header);
            json_decref(o);
            if (s) break;
            valid = offset += len;
            continue;
        }
        json_t *x = json_object_get(o, "x"), *out = json_object_get(o, "out");
        if (!json_is_array(x) || (int)json_array_size(x) != n || !json_is_array(out) || (int)json_array_size(out) != m) {
            s = bg_fail(ctx, BG_ERR_FORMAT, "--resume: %s:%ld: not an evaluation of this search (x needs %d values, "
                        "out %d)", path, lineno, n, m);
            json_decref(o);
            break;
        }
        if (!grow(h, h->count + 1)) {
            json_decref(o);
            s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path);
            break;
        }
        const long k = h->count;
        for (int i = 0; i < n; i++) {
            json_t *v = json_array_get(x, (size_t)i);
            h->x[(size_t)k * n + i] = json_is_number(v) ? json_number_value(v) : NAN;
        }
        for (int j = 0; j < m; j++) {
            json_t *v = json_array_get(out, (size_t)j);
            h->out[(size_t)k * m + j] = json_is_number(v) ? json_number_value(v) : NAN;
        }
        h->ok[k] = json_is_true(json_object_get(o, "ok"));
        json_t *key = json_object_get(o, "key");
        h->key[k] = strdup(json_is_string(key) ? json_string_value(key) : "");
        json_t *acc = json_object_get(o, "acc");
        h->acc[k] = json_is_number(acc) ? json_number_value(acc) : NAN;
        json_t *ev = json_object_get(o, "eval");
        if (json_is_integer(ev) && json_integer_value(ev) > h->max_eval) h->max_eval = (long)json_integer_value(ev);
        h->count++;
        json_decref(o);
        valid = offset += len;
    }
    free(line);
    fclose(f);
    if (!s && lineno == 0) s = bg_fail(ctx, BG_ERR_FORMAT, "--resume: %s is empty (no header line)", path);
    if (!s && h->dropped_tail && truncate(path, valid) != 0)
        s = bg_fail(ctx, BG_ERR_IO, "--resume: cannot cut the broken last line of %s: %s", path, strerror(errno));
    if (s) bg_drive_history_free(h);
    return s;
}
