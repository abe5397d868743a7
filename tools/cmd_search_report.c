/* `budgie search report HISTORY` on a search driver's history.jsonl: the
 * best feasible points, each with the `budgie train` line that reruns it,
 * and with --out the objective against evaluations (search/batch's plot)
 * and, for NAS, MACs against validation accuracy with the Pareto front. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../augment/dataset.h"
#include "../search/batch/mads_report.h"
#include "search_verbs.h"

bool bg_search_is_drive_history(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char *line = NULL;
    size_t cap = 0;
    bool yes = false;
    if (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        yes = o && json_is_string(json_object_get(o, "search")) && json_object_get(o, "vars");
        json_decref(o);
    }
    free(line);
    fclose(f);
    return yes;
}

typedef struct {
    long eval;
    bool ok;
    double f, h, acc, macs;
    char args[1024];
    char error[320];
} rec;

static int by_f(const void *a, const void *b)
{
    const rec *x = *(rec *const *)a, *y = *(rec *const *)b;
    if (x->f != y->f) return x->f < y->f ? -1 : 1;
    return (x->eval > y->eval) - (x->eval < y->eval);
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int write_plot(bg_ctx *ctx, const char *path, int w, int h, uint8_t *px)
{
    int rc = bg_write_png(ctx, path, w, h, 3, px) ? 1 : 0;
    free(px);
    if (rc) fprintf(stderr, "budgie search report: %s\n", bg_errmsg(ctx));
    else printf("plot: %s\n", path);
    return rc;
}

int bg_search_drive_report(const char *path, long top, const char *png)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "budgie search report: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    char *line = NULL, dir[1024], recipe[1100];
    size_t cap = 0;
    ssize_t len;
    long n = 0, cap_r = 0, lineno = 0;
    rec *r = NULL;
    char verb[16] = "", objective[16] = "";
    int rc = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') break; /* a running search's line in the making */
        json_t *o = json_loads(line, 0, NULL);
        if (!o) {
            fprintf(stderr, "budgie search report: %s:%ld: not a JSON record\n", path, lineno);
            rc = 2;
            break;
        }
        if (lineno == 1) {
            snprintf(verb, sizeof verb, "%s", json_string_value(json_object_get(o, "search")));
            json_t *ob = json_object_get(o, "objective");
            snprintf(objective, sizeof objective, "%s", json_is_string(ob) ? json_string_value(ob) : "");
            json_decref(o);
            continue;
        }
        if (n == cap_r) {
            cap_r = cap_r ? 2 * cap_r : 64;
            rec *nr = realloc(r, (size_t)cap_r * sizeof *r);
            if (!nr) {
                json_decref(o);
                rc = 1;
                break;
            }
            r = nr;
        }
        rec *e = &r[n++];
        memset(e, 0, sizeof *e);
        e->eval = (long)num(o, "eval");
        e->ok = json_is_true(json_object_get(o, "ok"));
        e->f = e->ok ? num(o, "f") : INFINITY;
        e->h = e->ok ? num(o, "h") : INFINITY;
        e->acc = num(o, "acc");
        e->macs = num(o, "macs");
        json_t *a = json_object_get(o, "args"), *er = json_object_get(o, "error");
        snprintf(e->args, sizeof e->args, "%s", json_is_string(a) ? json_string_value(a) : "");
        snprintf(e->error, sizeof e->error, "%s", json_is_string(er) ? json_string_value(er) : "");
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (rc) {
        free(r);
        return rc;
    }
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(recipe, sizeof recipe, "%s/recipe", dirname(dir));
    const bool macs_obj = !strcmp(objective, "macs");
    long failed = 0, feas = 0;
    rec **best = malloc((size_t)(n > 0 ? n : 1) * sizeof *best);
    if (!best) {
        free(r);
        return 1;
    }
    for (long k = 0; k < n; k++) {
        failed += !r[k].ok;
        if (r[k].ok && r[k].h == 0 && isfinite(r[k].f)) best[feas++] = &r[k];
    }
    qsort(best, (size_t)feas, sizeof *best, by_f);
    printf("%s: search %s (objective %s), %ld evaluations, %ld failed, %ld feasible\n", path, verb,
           macs_obj ? "min MACs s.t. val acc >= baseline" : "max validation accuracy", n, failed, feas);
    if (feas) {
        printf("best points (rerun with a final --budget):\n");
        for (long t = 0; t < feas && t < top; t++) {
            const rec *e = best[t];
            printf("  eval %-4ld val acc %6.2f%%", e->eval, 100 * e->acc);
            if (isfinite(e->macs)) printf("  %9.2f MMACs", e->macs / 1e6);
            printf("\n    budgie train %s %s\n", recipe, e->args);
        }
    } else {
        printf("no feasible evaluation\n");
    }
    if (png && n) {
        bg_ctx ctx;
        bg_ctx_init(&ctx, BG_CPU, 0);
        /* the objective against evaluations: search/batch's plot of MADS records */
        bg_mads_records mr = {0};
        mr.count = mr.cap = n;
        mr.n = 1;
        mr.x = calloc((size_t)n * BG_MADS_MAX_DIM, sizeof *mr.x);
        mr.f = malloc((size_t)n * sizeof *mr.f);
        mr.h = malloc((size_t)n * sizeof *mr.h);
        mr.ok = malloc((size_t)n * sizeof *mr.ok);
        int w, hh;
        uint8_t *px = NULL;
        if (mr.x && mr.f && mr.h && mr.ok) {
            for (long k = 0; k < n; k++) mr.f[k] = r[k].f, mr.h[k] = r[k].h, mr.ok[k] = r[k].ok;
            if (bg_mads_plot_render(&ctx, &mr, &w, &hh, &px)) {
                fprintf(stderr, "budgie search report: %s\n", bg_errmsg(&ctx));
                rc = 1;
            } else {
                rc |= write_plot(&ctx, png, w, hh, px);
            }
        }
        bg_mads_records_free(&mr);
        /* NAS: MACs against validation accuracy, the Pareto front (fewer MACs, more accuracy) marked */
        double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        bool *front = calloc((size_t)n, sizeof *front);
        long with_macs = 0;
        for (long k = 0; x && y && front && k < n; k++) {
            x[k] = r[k].ok ? r[k].macs / 1e6 : NAN;
            y[k] = r[k].ok ? 100 * r[k].acc : NAN;
            with_macs += isfinite(x[k]) && isfinite(y[k]);
        }
        if (x && y && front && with_macs) {
            for (long k = 0; k < n; k++) {
                if (!isfinite(x[k]) || !isfinite(y[k])) continue;
                bool dominated = false;
                for (long j = 0; j < n && !dominated; j++)
                    dominated = j != k && isfinite(x[j]) && isfinite(y[j]) && x[j] <= x[k] && y[j] >= y[k] &&
                                (x[j] < x[k] || y[j] > y[k]);
                front[k] = !dominated;
            }
            char pp[1100];
            const char *dot = strrchr(png, '.');
            snprintf(pp, sizeof pp, "%.*s-pareto.png", dot ? (int)(dot - png) : (int)strlen(png), png);
            if (bg_mads_scatter_render(&ctx, n, x, y, front, false, &w, &hh, &px)) {
                fprintf(stderr, "budgie search report: %s\n", bg_errmsg(&ctx));
                rc = 1;
            } else {
                rc |= write_plot(&ctx, pp, w, hh, px);
                printf("  (x: MMACs, y: validation accuracy %%; red: the Pareto front)\n");
            }
        }
        free(x), free(y), free(front);
        bg_ctx_free(&ctx);
    }
    free(best);
    free(r);
    return rc;
}
