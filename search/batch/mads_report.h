/* Reading a finished (or running) search back for `budgie search report`
 * (mads_report.c). */
#ifndef BG_MADS_REPORT_H
#define BG_MADS_REPORT_H
#include <stdint.h>
#include "mads_batch.h"

typedef struct {
    long count, cap;
    int n;
    double *x;     /* count * BG_MADS_MAX_DIM (first n used) */
    double *f, *h; /* INFINITY for failed evaluations (h: also EB-violated) */
    bool *ok;
} bg_mads_records;

/* From PATH.jsonl (or PATH itself when it ends in .jsonl); else from the
 * history PATH read with the problem's sizes and output types (p may be NULL
 * when a log exists). */
bg_status bg_mads_records_load(bg_ctx *ctx, const char *path, const bg_mads_problem *p, bg_mads_records *r);
void bg_mads_records_free(bg_mads_records *r);
/* Best feasible objective against evaluations (log scale when it spans more
 * than three decades), feasible evaluations as dots: *pixels (w*h*3 RGB,
 * malloc'd) for bg_write_png. */
bg_status bg_mads_plot_render(bg_ctx *ctx, const bg_mads_records *r, int *w, int *h, uint8_t **pixels);

/* A scatter of n points (x[i], y[i]) with axes and tick labels, the points
 * with mark[i] set drawn larger, in red and joined in x order (a Pareto
 * front): *pixels (w*h*3 RGB, malloc'd) for bg_write_png. logx: log scale. */
bg_status bg_mads_scatter_render(bg_ctx *ctx, long n, const double *x, const double *y, const bool *mark, bool logx,
                                 int *w, int *h, uint8_t **pixels);

#endif
