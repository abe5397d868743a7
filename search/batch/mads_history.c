/* The files of a batch run: HISTORY_FILE lines (point then outputs, as NOMAD
 * writes them), reading a history back for --resume (a line cut by a kill
 * is dropped, not an error), and STATS_FILE lines in NOMAD's keyword format. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mads_batch.h"

void bg_mads_format_value(double v, bool integer, char *buf, size_t cap)
{
    if (isnan(v)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(v)) { snprintf(buf, cap, v > 0 ? "inf" : "-inf"); return; }
    if (integer && v == floor(v) && fabs(v) < 1e15) { snprintf(buf, cap, "%.0f", v); return; }
    /* the shortest decimal that reads back to the same double */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static size_t put(char *buf, size_t cap, size_t k, const char *s)
{
    size_t l = strlen(s);
    if (k + l + 1 < cap) {
        memcpy(buf + k, s, l + 1);
        return k + l;
    }
    return k;
}

void bg_mads_history_line(const bg_mads_problem *p, const double *x, const double *out, bool ok, char *buf,
                          size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    char v[64];
    for (int i = 0; i < p->n; i++) {
        bg_mads_format_value(x[i], p->type[i] != BG_MADS_REAL, v, sizeof v);
        if (i) k = put(buf, cap, k, " ");
        k = put(buf, cap, k, v);
    }
    for (int j = 0; j < p->m; j++) {
        bg_mads_format_value(ok ? out[j] : NAN, false, v, sizeof v);
        k = put(buf, cap, k, " ");
        k = put(buf, cap, k, v);
    }
    put(buf, cap, k, "\n");
}

bg_status bg_mads_history_read(bg_ctx *ctx, const char *path, int n, int m, double **xo, double **oo,
                               long *count, long *valid_bytes)
{
    *xo = *oo = NULL;
    *count = *valid_bytes = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    double *x = NULL, *out = NULL;
    long cnt = 0, cap = 0, offset = 0, valid = 0;
    int lineno = 0;
    bg_status st = BG_OK;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        lineno++;
        offset += len;
        bool complete = line[len - 1] == '\n';
        double v[BG_MADS_MAX_DIM + BG_MADS_MAX_OUT];
        int k = 0;
        bool bad = false;
        char *save = NULL;
        for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
            char *e;
            double d = strtod(t, &e);
            if (e == t || *e) { bad = true; break; }
            if (k < n + m) v[k] = d;
            k++;
        }
        if (k == 0 && !bad) { /* blank line */
            if (complete) valid = offset;
            continue;
        }
        if (bad || k != n + m) {
            if (!complete) break; /* the last line, cut by a kill */
            st = bg_fail(ctx, BG_ERR_FORMAT, "%s:%d: expected %d values (%d coordinates, %d outputs), found %s%d",
                         path, lineno, n + m, n, m, bad ? "a non-number after " : "", k);
            break;
        }
        if (!complete) break;
        if (cnt == cap) {
            long nc = cap ? 2 * cap : 256;
            double *nx = realloc(x, (size_t)nc * n * sizeof *nx);
            if (nx) x = nx;
            double *no = realloc(out, (size_t)nc * m * sizeof *no);
            if (no) out = no;
            if (!nx || !no) { st = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path); break; }
            cap = nc;
        }
        memcpy(x + (size_t)cnt * n, v, (size_t)n * sizeof *v);
        memcpy(out + (size_t)cnt * m, v + n, (size_t)m * sizeof *v);
        cnt++;
        valid = offset;
    }
    free(line);
    fclose(f);
    if (st) {
        free(x);
        free(out);
        return st;
    }
    *xo = x;
    *oo = out;
    *count = cnt;
    *valid_bytes = valid;
    return BG_OK;
}

/* ---- stats ------------------------------------------------------------------ */

static const char *const keywords[] = {"FRAME_SIZE", "MESH_SIZE", "ITER_NUM", "CONS_H", "H_MAX", "EVAL",
                                       "TIME", "BBE", "BBO", "OBJ", "SOL"};

static size_t put_num(char *buf, size_t cap, size_t k, const char *spec, double v)
{
    char t[64];
    if (spec[0]) snprintf(t, sizeof t, spec, v);
    else if (isfinite(v) && v == floor(v) && fabs(v) < 1e15) snprintf(t, sizeof t, "%.0f", v);
    else snprintf(t, sizeof t, "%.10g", v);
    return put(buf, cap, k, t);
}

static size_t put_list(char *buf, size_t cap, size_t k, const char *spec, const double *v, int n)
{
    for (int i = 0; i < n; i++) {
        if (i) k = put(buf, cap, k, " ");
        k = put_num(buf, cap, k, spec, v[i]);
    }
    return k;
}

void bg_mads_stats_line(const char *format, const bg_mads_eval_info *e, double time_s, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    const char *s = format && format[0] ? format : "BBE OBJ";
    while (*s) {
        char spec[32] = "";
        const char *p = s;
        if (*p == '%') {
            /* a printf format for the keyword right after it: %[flags][width][.prec]conv */
            size_t l = 1;
            while (p[l] && strchr("-+ #0123456789.", p[l]) && l < 20) l++;
            if (p[l] && strchr("eEfFgG", p[l])) {
                memcpy(spec, p, l + 1);
                spec[l + 1] = 0;
                p += l + 1;
            }
        }
        const char *kw = NULL;
        for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
            if (!strncmp(p, keywords[i], strlen(keywords[i]))) { kw = keywords[i]; break; }
        if (!kw) {
            char c[2] = {*s, 0};
            k = put(buf, cap, k, c);
            s++;
            continue;
        }
        if (!strcmp(kw, "BBE")) k = put_num(buf, cap, k, spec, (double)e->bb_evals);
        else if (!strcmp(kw, "EVAL")) k = put_num(buf, cap, k, spec, (double)(e->index + 1));
        else if (!strcmp(kw, "ITER_NUM")) k = put_num(buf, cap, k, spec, (double)e->iteration);
        else if (!strcmp(kw, "OBJ")) k = put_num(buf, cap, k, spec, e->f);
        else if (!strcmp(kw, "CONS_H")) k = put_num(buf, cap, k, spec, e->h);
        else if (!strcmp(kw, "H_MAX")) k = put_num(buf, cap, k, spec, e->h_max);
        else if (!strcmp(kw, "TIME")) k = put_num(buf, cap, k, spec[0] ? spec : "%.2f", time_s);
        else if (!strcmp(kw, "SOL")) k = put_list(buf, cap, k, spec, e->x, e->n);
        else if (!strcmp(kw, "BBO")) k = put_list(buf, cap, k, spec, e->out, e->m);
        else if (!strcmp(kw, "MESH_SIZE")) k = put_list(buf, cap, k, spec, e->mesh, e->n);
        else if (!strcmp(kw, "FRAME_SIZE")) k = put_list(buf, cap, k, spec, e->frame, e->n);
        s = p + strlen(kw);
    }
    put(buf, cap, k, "\n");
}
