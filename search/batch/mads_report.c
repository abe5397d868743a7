/* `budgie search report`: the evaluations of a run, from the JSON-lines log
 * beside a history (it knows f, h and failures) or from the history itself
 * read with the parameter file's output types; and the plot of the best
 * objective against evaluations, drawn into an RGB pixel buffer here (axes,
 * tick labels in a small built-in digit font); the tool writes it as PNG. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "mads_report.h"

void bg_mads_records_free(bg_mads_records *r)
{
    free(r->x);
    free(r->f);
    free(r->h);
    free(r->ok);
    memset(r, 0, sizeof *r);
}

static bool grow(bg_mads_records *r, long need)
{
    if (need <= r->cap) return true;
    long cap = r->cap ? 2 * r->cap : 256;
    while (cap < need) cap *= 2;
    double *x = realloc(r->x, (size_t)cap * BG_MADS_MAX_DIM * sizeof *x);
    if (x) r->x = x;
    double *f = realloc(r->f, (size_t)cap * sizeof *f);
    if (f) r->f = f;
    double *h = realloc(r->h, (size_t)cap * sizeof *h);
    if (h) r->h = h;
    bool *ok = realloc(r->ok, (size_t)cap * sizeof *ok);
    if (ok) r->ok = ok;
    if (!x || !f || !h || !ok) return false;
    r->cap = cap;
    return true;
}

static double jnum(json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static bg_status load_jsonl(bg_ctx *ctx, const char *path, bg_mads_records *r)
{
    FILE *f = fopen(path, "rb");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    bg_status st = BG_OK;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') break; /* cut by a kill */
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        json_t *x = o ? json_object_get(o, "x") : NULL;
        if (!o || !json_is_array(x) || json_array_size(x) == 0 || json_array_size(x) > BG_MADS_MAX_DIM) {
            st = bg_fail(ctx, BG_ERR_FORMAT, "%s:%d: not an evaluation record%s%s", path, lineno, o ? "" : ": ",
                         o ? "" : err.text);
            json_decref(o);
            break;
        }
        if (!grow(r, r->count + 1)) {
            json_decref(o);
            st = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path);
            break;
        }
        int n = (int)json_array_size(x);
        if (r->n == 0) r->n = n;
        long k = r->count++;
        for (int i = 0; i < BG_MADS_MAX_DIM; i++)
            r->x[(size_t)k * BG_MADS_MAX_DIM + i] = i < n ? jnum(json_array_get(x, (size_t)i)) : 0;
        r->ok[k] = json_is_true(json_object_get(o, "ok"));
        double fv = jnum(json_object_get(o, "f")), hv = jnum(json_object_get(o, "h"));
        r->f[k] = r->ok[k] && !isnan(fv) ? fv : INFINITY;
        r->h[k] = r->ok[k] && !isnan(hv) ? hv : INFINITY;
        json_decref(o);
    }
    free(line);
    fclose(f);
    return st;
}

static bg_status load_history(bg_ctx *ctx, const char *path, const bg_mads_problem *p, bg_mads_records *r)
{
    double *x, *out;
    long count, valid;
    bg_status st = bg_mads_history_read(ctx, path, p->n, p->m, &x, &out, &count, &valid);
    if (st) return st;
    if (!grow(r, count)) {
        free(x);
        free(out);
        return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path);
    }
    r->n = p->n;
    for (long k = 0; k < count; k++) {
        const double *o = out + (size_t)k * p->m;
        double fv = NAN, h = 0;
        bool ok = true, eb = false;
        for (int j = 0; j < p->m; j++) {
            if (p->out[j] == BG_MADS_OBJ) fv = o[j];
            if ((p->out[j] == BG_MADS_OBJ || p->out[j] == BG_MADS_EB || p->out[j] == BG_MADS_PB) && isnan(o[j]))
                ok = false;
            if (p->out[j] == BG_MADS_PB && o[j] > 0) h += o[j] * o[j];
            if (p->out[j] == BG_MADS_EB && o[j] > 0) eb = true;
        }
        for (int i = 0; i < BG_MADS_MAX_DIM; i++)
            r->x[(size_t)k * BG_MADS_MAX_DIM + i] = i < p->n ? x[(size_t)k * p->n + i] : 0;
        r->ok[k] = ok;
        r->f[k] = ok ? fv : INFINITY;
        r->h[k] = ok ? (eb ? INFINITY : h) : INFINITY;
    }
    r->count = count;
    free(x);
    free(out);
    return BG_OK;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bg_status bg_mads_records_load(bg_ctx *ctx, const char *path, const bg_mads_problem *p, bg_mads_records *r)
{
    memset(r, 0, sizeof *r);
    size_t l = strlen(path);
    if (l > 6 && !strcmp(path + l - 6, ".jsonl")) return load_jsonl(ctx, path, r);
    char log[2 * BG_MADS_PATH];
    snprintf(log, sizeof log, "%s.jsonl", path);
    if (exists(log)) return load_jsonl(ctx, log, r);
    if (!p)
        return bg_fail(ctx, BG_ERR_ARG,
                       "%s: no %s beside it to tell the objective column: give the parameter file (--param)", path,
                       log);
    return load_history(ctx, path, p, r);
}

/* ---- the plot ---------------------------------------------------------------- */

/* 3x5 digit font, rows top to bottom, bit 2 = left column. */
static const char font_chars[] = "0123456789.-+e";
static const unsigned char font[][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
    {0, 0, 0, 0, 2}, {0, 0, 7, 0, 0}, {0, 2, 7, 2, 0}, {0, 6, 7, 4, 3}};

typedef struct {
    int w, h;
    uint8_t *px; /* RGB */
} canvas;

static void dot(canvas *c, int x, int y, uint8_t r, uint8_t g, uint8_t b)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
    p[0] = r;
    p[1] = g;
    p[2] = b;
}

static void line(canvas *c, int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        dot(c, x0, y0, r, g, b);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

/* Text in the digit font, scale 2; right-aligned at x when right is set. */
static void text(canvas *c, int x, int y, const char *s, bool right)
{
    int len = (int)strlen(s), adv = 8;
    if (right) x -= len * adv;
    for (int k = 0; k < len; k++) {
        const char *at = strchr(font_chars, s[k]);
        if (!at || !s[k]) continue;
        const unsigned char *g = font[at - font_chars];
        for (int row = 0; row < 5; row++)
            for (int col = 0; col < 3; col++)
                if (g[row] & (4 >> col))
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++) dot(c, x + k * adv + 2 * col + a, y + 2 * row + b, 0, 0, 0);
    }
}

bg_status bg_mads_plot_render(bg_ctx *ctx, const bg_mads_records *r, int *w, int *h, uint8_t **pixels)
{
    const int W = 800, H = 500, L = 90, R = 20, T = 20, B = 50;
    const char *png = "plot";
    *pixels = NULL;
    long n = r->count;
    /* best feasible value after each evaluation */
    double *best = malloc((size_t)(n > 0 ? n : 1) * sizeof *best);
    if (!best) return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", png);
    double b = INFINITY, lo = INFINITY, hi = -INFINITY;
    for (long k = 0; k < n; k++) {
        if (r->ok[k] && r->h[k] == 0 && r->f[k] < b) b = r->f[k];
        best[k] = b;
        if (isfinite(b)) {
            lo = fmin(lo, b);
            hi = fmax(hi, b);
        }
    }
    if (!isfinite(lo)) {
        free(best);
        return bg_fail(ctx, BG_ERR_ARG, "%s: no feasible evaluation to plot", png);
    }
    bool logy = lo > 0 && hi / lo > 1e3;
    double ylo = logy ? log10(lo) : lo, yhi = logy ? log10(hi) : hi;
    if (yhi - ylo < 1e-12 * (fabs(yhi) + 1)) {
        ylo -= 0.5 * (fabs(ylo) + 1) * 0.1;
        yhi += 0.5 * (fabs(yhi) + 1) * 0.1;
    }
    double pad = 0.05 * (yhi - ylo);
    ylo -= pad;
    yhi += pad;
    canvas c = {W, H, malloc((size_t)W * H * 3)};
    if (!c.px) {
        free(best);
        return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", png);
    }
    memset(c.px, 255, (size_t)W * H * 3);
    int pw = W - L - R, ph = H - T - B;
    double xmax = n > 1 ? (double)n : 2;
#define PX(k) (L + (int)lround(((double)(k) - 1) / (xmax - 1) * pw))
#define PY(v) (T + ph - (int)lround(((logy ? log10(v) : (v)) - ylo) / (yhi - ylo) * ph))
    /* grid and ticks */
    char lab[32];
    for (int t = 0; t <= 5; t++) {
        double yv = ylo + (yhi - ylo) * t / 5;
        int y = T + ph - (int)lround((double)ph * t / 5);
        line(&c, L, y, L + pw, y, 225, 225, 225);
        line(&c, L - 5, y, L, y, 0, 0, 0);
        snprintf(lab, sizeof lab, "%.3g", logy ? pow(10, yv) : yv);
        text(&c, L - 8, y - 5, lab, true);
        long xv = 1 + lround((xmax - 1) * t / 5);
        int x = L + (int)lround((double)pw * t / 5);
        line(&c, x, T, x, T + ph, 225, 225, 225);
        line(&c, x, T + ph, x, T + ph + 5, 0, 0, 0);
        snprintf(lab, sizeof lab, "%ld", xv);
        text(&c, x - (int)strlen(lab) * 4, T + ph + 10, lab, false);
    }
    line(&c, L, T, L, T + ph, 0, 0, 0);
    line(&c, L, T + ph, L + pw, T + ph, 0, 0, 0);
    /* every feasible evaluation as a grey dot (when inside the range) */
    for (long k = 0; k < n; k++) {
        if (!(r->ok[k] && r->h[k] == 0 && isfinite(r->f[k]))) continue;
        double v = r->f[k];
        if (logy ? (v <= 0 || log10(v) > yhi) : v > yhi) continue;
        int x = PX(k + 1), y = PY(v);
        for (int a = -1; a <= 1; a++) dot(&c, x + a, y, 170, 170, 170), dot(&c, x, y + a, 170, 170, 170);
    }
    /* the best-so-far staircase */
    int px = -1, py = -1;
    for (long k = 0; k < n; k++) {
        if (!isfinite(best[k])) continue;
        int x = PX(k + 1), y = PY(best[k]);
        if (px >= 0) {
            line(&c, px, py, x, py, 20, 60, 200);
            line(&c, x, py, x, y, 20, 60, 200);
            line(&c, px, py + 1, x, py + 1, 20, 60, 200);
        }
        px = x;
        py = y;
    }
#undef PX
#undef PY
    free(best);
    *w = W;
    *h = H;
    *pixels = c.px;
    return BG_OK;
}

bg_status bg_mads_scatter_render(bg_ctx *ctx, long n, const double *x, const double *y, const bool *mark, bool logx,
                                 int *w, int *h, uint8_t **pixels)
{
    const int W = 800, H = 500, L = 90, R = 20, T = 20, B = 50;
    *pixels = NULL;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (long k = 0; k < n; k++) {
        if (!isfinite(x[k]) || !isfinite(y[k]) || (logx && x[k] <= 0)) continue;
        const double xv = logx ? log10(x[k]) : x[k];
        xlo = fmin(xlo, xv), xhi = fmax(xhi, xv), ylo = fmin(ylo, y[k]), yhi = fmax(yhi, y[k]);
    }
    if (!isfinite(xlo)) return bg_fail(ctx, BG_ERR_ARG, "scatter: no point to plot");
    /* a margin, and some width when every point has the same value */
    double dx = xhi - xlo, dy = yhi - ylo;
    if (dx < 1e-12 * (fabs(xhi) + 1)) dx = 0.1 * (fabs(xhi) + 1);
    if (dy < 1e-12 * (fabs(yhi) + 1)) dy = 0.1 * (fabs(yhi) + 1);
    xlo -= 0.05 * dx, xhi += 0.05 * dx, ylo -= 0.05 * dy, yhi += 0.05 * dy;
    canvas c = {W, H, malloc((size_t)W * H * 3)};
    if (!c.px) return bg_fail(ctx, BG_ERR_OOM, "scatter: out of memory");
    memset(c.px, 255, (size_t)W * H * 3);
    const int pw = W - L - R, ph = H - T - B;
#define SX(v) (L + (int)lround(((logx ? log10(v) : (v)) - xlo) / (xhi - xlo) * pw))
#define SY(v) (T + ph - (int)lround(((v) - ylo) / (yhi - ylo) * ph))
    char lab[32];
    for (int t = 0; t <= 5; t++) {
        const double yv = ylo + (yhi - ylo) * t / 5, xv = xlo + (xhi - xlo) * t / 5;
        const int yy = T + ph - (int)lround((double)ph * t / 5), xx = L + (int)lround((double)pw * t / 5);
        line(&c, L, yy, L + pw, yy, 225, 225, 225);
        line(&c, L - 5, yy, L, yy, 0, 0, 0);
        snprintf(lab, sizeof lab, "%.3g", yv);
        text(&c, L - 8, yy - 5, lab, true);
        line(&c, xx, T, xx, T + ph, 225, 225, 225);
        line(&c, xx, T + ph, xx, T + ph + 5, 0, 0, 0);
        snprintf(lab, sizeof lab, "%.3g", logx ? pow(10, xv) : xv);
        text(&c, xx - (int)strlen(lab) * 4, T + ph + 10, lab, false);
    }
    line(&c, L, T, L, T + ph, 0, 0, 0);
    line(&c, L, T + ph, L + pw, T + ph, 0, 0, 0);
    /* the marked points joined in x order (insertion sort of their indices: fronts are short) */
    long *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx), m = 0;
    if (!idx) {
        free(c.px);
        return bg_fail(ctx, BG_ERR_OOM, "scatter: out of memory");
    }
    for (long k = 0; k < n; k++) {
        if (!mark || !mark[k] || !isfinite(x[k]) || !isfinite(y[k]) || (logx && x[k] <= 0)) continue;
        long j = m++;
        while (j > 0 && x[idx[j - 1]] > x[k]) idx[j] = idx[j - 1], j--;
        idx[j] = k;
    }
    for (long j = 1; j < m; j++)
        line(&c, SX(x[idx[j - 1]]), SY(y[idx[j - 1]]), SX(x[idx[j]]), SY(y[idx[j]]), 220, 40, 40);
    free(idx);
    for (long k = 0; k < n; k++) {
        if (!isfinite(x[k]) || !isfinite(y[k]) || (logx && x[k] <= 0)) continue;
        const bool mk = mark && mark[k];
        const int px = SX(x[k]), py = SY(y[k]), r = mk ? 3 : 2;
        for (int a = -r; a <= r; a++)
            for (int b = -r; b <= r; b++)
                if (a * a + b * b <= r * r) dot(&c, px + a, py + b, mk ? 220 : 20, mk ? 40 : 60, mk ? 40 : 200);
    }
#undef SX
#undef SY
    *w = W;
    *h = H;
    *pixels = c.px;
    return BG_OK;
}
