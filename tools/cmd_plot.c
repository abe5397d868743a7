/* budgie plot RUN_DIR [--out curves.png]: the run's log.jsonl drawn as three
 * panels against elapsed time: training loss (per epoch, and per
 * log_every window when logged), test and validation accuracy, learning
 * rate. A small raster of its own (lines, axes, a 5x7 font) written with
 * libpng (bg_write_png). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../augment/dataset.h"
#include "options.h"
#include "verbs.h"

#define W 960
#define PANEL_H 260
#define N_PANELS 3
#define H (PANEL_H * N_PANELS)
#define LEFT 110
#define RIGHT 30
#define TOP 34
#define BOTTOM 40

typedef struct {
    uint8_t *px;
} canvas;

static void put(canvas *c, int x, int y, const uint8_t rgb[3])
{
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(c->px + ((size_t)y * W + x) * 3, rgb, 3);
}

static void line(canvas *c, double x0, double y0, double x1, double y1, const uint8_t rgb[3], int thick)
{
    const int n = (int)fmax(fabs(x1 - x0), fabs(y1 - y0)) + 1;
    for (int i = 0; i <= n; i++) {
        const double t = (double)i / n;
        const int x = (int)lround(x0 + t * (x1 - x0)), y = (int)lround(y0 + t * (y1 - y0));
        for (int dx = 0; dx < thick; dx++)
            for (int dy = 0; dy < thick; dy++) put(c, x + dx, y + dy, rgb);
    }
}

/* 5x7 glyphs, one byte per row, bit 4 the leftmost column. */
static const char GLYPH_CHARS[] = "0123456789abcdefghijklmnopqrstuvwxyz.-%:+() ";
static const uint8_t GLYPHS[][7] = {
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}, {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}, {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}, {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C},
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}, {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}, {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10},
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}, {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}, {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}, {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}, {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}, {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}, {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, {0, 0, 0, 0, 0, 0, 0},
};

/* Text at (x, y) (top-left), 2x scale; unknown characters are blank. */
static int text(canvas *c, int x, int y, const char *s, const uint8_t rgb[3])
{
    for (; *s; s++, x += 12) {
        const char ch = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
        const char *at = strchr(GLYPH_CHARS, ch);
        if (!at || !ch) continue;
        const uint8_t *g = GLYPHS[at - GLYPH_CHARS];
        for (int r = 0; r < 7; r++)
            for (int b = 0; b < 5; b++)
                if (g[r] & (0x10 >> b))
                    for (int d = 0; d < 4; d++) put(c, x + 2 * b + (d & 1), y + 2 * r + (d >> 1), rgb);
    }
    return x;
}

typedef struct {
    double *x, *y;
    int n, cap;
} series;

static void add(series *s, double x, double y)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->x = realloc(s->x, (size_t)s->cap * sizeof *s->x);
        s->y = realloc(s->y, (size_t)s->cap * sizeof *s->y);
    }
    if (s->x && s->y) s->x[s->n] = x, s->y[s->n] = y, s->n++;
}

static const uint8_t BLACK[3] = {0, 0, 0}, GREY[3] = {215, 215, 215}, BLUE[3] = {31, 90, 200},
                     LIGHT[3] = {150, 180, 235}, RED[3] = {210, 50, 40}, GREEN[3] = {30, 150, 60};

/* One panel: axes, grid, ticks, the series, a title and a legend. */
static void panel(canvas *c, int index, const char *title, double xmax, series *const *ss, const uint8_t *const *cols,
                  const char *const *names, int ns)
{
    const int y0 = index * PANEL_H + TOP, y1 = (index + 1) * PANEL_H - BOTTOM, x0 = LEFT, x1 = W - RIGHT;
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < ss[k]->n; i++) lo = fmin(lo, ss[k]->y[i]), hi = fmax(hi, ss[k]->y[i]);
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) hi = lo + (fabs(lo) > 0 ? fabs(lo) * 0.1 : 1);
    const double pad = 0.05 * (hi - lo);
    lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad; /* no negative ticks for data that has none */
    hi += pad;
    if (xmax <= 0) xmax = 1;
    char buf[64];
    for (int t = 0; t <= 4; t++) { /* grid and ticks */
        const double fy = lo + (hi - lo) * t / 4, py = y1 - (double)(y1 - y0) * t / 4;
        line(c, x0, py, x1, py, GREY, 1);
        snprintf(buf, sizeof buf, "%.3g", fy);
        text(c, x0 - 12 * (int)strlen(buf) - 6, (int)py - 7, buf, BLACK);
        const double fx = xmax * t / 4, px = x0 + (double)(x1 - x0) * t / 4;
        line(c, px, y0, px, y1, GREY, 1);
        snprintf(buf, sizeof buf, "%.3g", fx);
        text(c, (int)px - 6 * (int)strlen(buf), y1 + 6, buf, BLACK);
    }
    line(c, x0, y0, x0, y1, BLACK, 2);
    line(c, x0, y1, x1, y1, BLACK, 2);
    int tx = text(c, x0, y0 - 24, title, BLACK) + 24;
    for (int k = 0; k < ns; k++) {
        for (int i = 1; i < ss[k]->n; i++)
            line(c, x0 + (x1 - x0) * ss[k]->x[i - 1] / xmax, y1 - (y1 - y0) * (ss[k]->y[i - 1] - lo) / (hi - lo),
                 x0 + (x1 - x0) * ss[k]->x[i] / xmax, y1 - (y1 - y0) * (ss[k]->y[i] - lo) / (hi - lo), cols[k], 2);
        for (int i = 0; i < ss[k]->n; i++) /* a dot per point: single points show too */
            line(c, x0 + (x1 - x0) * ss[k]->x[i] / xmax - 2, y1 - (y1 - y0) * (ss[k]->y[i] - lo) / (hi - lo) - 2,
                 x0 + (x1 - x0) * ss[k]->x[i] / xmax - 2, y1 - (y1 - y0) * (ss[k]->y[i] - lo) / (hi - lo) - 2, cols[k], 5);
        if (ss[k]->n) {
            line(c, tx, y0 - 18, tx + 20, y0 - 18, cols[k], 3);
            tx = text(c, tx + 26, y0 - 24, names[k], cols[k]) + 18;
        }
    }
    if (index == N_PANELS - 1) text(c, x1 - 12 * 9, y1 + 22, "elapsed s", BLACK);
}

int bg_cmd_plot(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    int n_pos = 0;
    const bg_opt opts[] = {{.name = "out", .type = BG_OPT_STR, .dst = &out}};
    const int prc = bg_opts_parse("plot", opts, 1, argc, argv, &dir, 1, &n_pos);
    if (prc == 1) {
        printf("usage: budgie plot RUN_DIR [--out curves.png]\n"
               "  draws RUN_DIR/log.jsonl: training loss, test and validation accuracy and the learning\n"
               "  rate against elapsed seconds (default output RUN_DIR/curves.png)\n");
        return 0;
    }
    if (prc) return prc;
    if (!n_pos) {
        fprintf(stderr, "usage: budgie plot RUN_DIR [--out curves.png]\n");
        return 2;
    }
    char path[1024], outp[1024];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    snprintf(outp, sizeof outp, "%s", out ? out : "");
    if (!out) snprintf(outp, sizeof outp, "%s/curves.png", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "budgie plot: cannot open %s\n", path);
        return 2;
    }
    series loss = {0}, wloss = {0}, test = {0}, val = {0}, lr = {0};
    double xmax = 0;
    char buf[8192];
    int ln = 0, bad = 0;
    while (fgets(buf, sizeof buf, f)) {
        ln++;
        json_error_t je;
        json_t *o = json_loads(buf, 0, &je);
        if (!o) {
            if (!bad++) fprintf(stderr, "budgie plot: %s:%d is not JSON (%s); skipping such lines\n", path, ln, je.text);
            continue;
        }
        const json_t *t = json_object_get(o, "elapsed_s");
        const double x = json_is_number(t) ? json_number_value(t) : -1;
        if (x >= 0) {
            xmax = fmax(xmax, x);
            const json_t *v;
            if (json_object_get(o, "epoch") && (v = json_object_get(o, "train_loss")) && json_is_number(v))
                add(&loss, x, json_number_value(v));
            if (json_object_get(o, "step") && (v = json_object_get(o, "loss")) && json_is_number(v))
                add(&wloss, x, json_number_value(v));
            if ((v = json_object_get(o, "test_acc")) && json_is_number(v) && json_object_get(o, "epoch"))
                add(&test, x, json_number_value(v));
            if ((v = json_object_get(o, "val_acc")) && json_is_number(v) && json_number_value(v) >= 0)
                add(&val, x, json_number_value(v));
            if ((v = json_object_get(o, "lr")) && json_is_number(v) && !json_object_get(o, "done"))
                add(&lr, x, json_number_value(v));
        }
        json_decref(o);
    }
    fclose(f);
    int rc = 0;
    if (!loss.n && !wloss.n) {
        fprintf(stderr, "budgie plot: %s has no training progress yet (no epoch or step lines)\n", path);
        rc = 1;
        goto out;
    }
    canvas c = {malloc((size_t)W * H * 3)};
    if (!c.px) {
        fprintf(stderr, "budgie plot: out of memory\n");
        rc = 1;
        goto out;
    }
    memset(c.px, 255, (size_t)W * H * 3);
    series *p1[2] = {&wloss, &loss}, *p2[2] = {&test, &val}, *p3[1] = {&lr};
    const uint8_t *c1[2] = {LIGHT, BLUE}, *c2[2] = {RED, GREEN}, *c3[1] = {BLACK};
    const char *n1[2] = {"per window", "per epoch"}, *n2[2] = {"test", "val"}, *n3[1] = {"lr"};
    panel(&c, 0, "training loss", xmax, p1, c1, n1, 2);
    panel(&c, 1, "accuracy", xmax, p2, c2, n2, 2);
    panel(&c, 2, "learning rate", xmax, p3, c3, n3, 1);
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, 0);
    if (bg_write_png(&ctx, outp, W, H, 3, c.px)) {
        fprintf(stderr, "budgie plot: %s\n", bg_errmsg(&ctx));
        rc = 1;
    } else {
        printf("budgie plot: %s (%d epochs, %d step windows, %.0f s)\n", outp, loss.n, wloss.n, xmax);
    }
    bg_ctx_free(&ctx);
    free(c.px);
out:
    free(loss.x), free(loss.y), free(wloss.x), free(wloss.y), free(test.x), free(test.y);
    free(val.x), free(val.y), free(lr.x), free(lr.y);
    return rc;
}
