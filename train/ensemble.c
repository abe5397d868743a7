/* Test-time augmentation, ensembles and their metrics (see ensemble.h). */
#include "ensemble.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bg_resize_nhwc_f32(const float *src, int n, int h, int w, int c, float *dst, int oh, int ow)
{
    const double sy = (double)h / oh, sx = (double)w / ow;
    for (int i = 0; i < n; i++) {
        const float *s = src + (size_t)i * h * w * c;
        float *d = dst + (size_t)i * oh * ow * c;
        for (int y = 0; y < oh; y++) {
            double fy = (y + 0.5) * sy - 0.5;
            if (fy < 0) fy = 0;
            int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            const double wy = fy - y0;
            for (int x = 0; x < ow; x++) {
                double fx = (x + 0.5) * sx - 0.5;
                if (fx < 0) fx = 0;
                int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
                const double wx = fx - x0;
                for (int ch = 0; ch < c; ch++) {
                    const double a = s[((size_t)y0 * w + x0) * c + ch], b = s[((size_t)y0 * w + x1) * c + ch],
                                 p = s[((size_t)y1 * w + x0) * c + ch], q = s[((size_t)y1 * w + x1) * c + ch];
                    d[((size_t)y * ow + x) * c + ch] =
                        (float)((1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * p + wx * q));
                }
            }
        }
    }
}

void bg_flip_nhwc_f32(float *x, int n, int h, int w, int c)
{
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++) {
            float *row = x + ((size_t)i * h + y) * w * c;
            for (int a = 0, b = w - 1; a < b; a++, b--)
                for (int ch = 0; ch < c; ch++) {
                    const float t = row[(size_t)a * c + ch];
                    row[(size_t)a * c + ch] = row[(size_t)b * c + ch];
                    row[(size_t)b * c + ch] = t;
                }
        }
}

bg_status bg_ensemble_add_view(bg_trainer *tr, const float *x, int n, int h, int w, int c, bool flip,
                               bool average_logits, double *scores, int k)
{
    const size_t view = (size_t)n * tr->h * tr->w * c;
    float *v = malloc((view ? view : 1) * sizeof *v);
    if (!v) return bg_fail(tr->ctx, BG_ERR_OOM, "ensemble: out of host memory");
    if (tr->h == h && tr->w == w) memcpy(v, x, view * sizeof *v);
    else bg_resize_nhwc_f32(x, n, h, w, c, v, tr->h, tr->w);
    if (flip) bg_flip_nhwc_f32(v, n, tr->h, tr->w, c);
    const float *logits;
    bg_status s = bg_trainer_logits(tr, v, n, &logits);
    free(v);
    if (s) return s;
    if (bg_trainer_classes(tr) != k)
        return bg_fail(tr->ctx, BG_ERR_SHAPE, "ensemble: the model gives %d classes, the test set has %d",
                       bg_trainer_classes(tr), k);
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * k;
        double *out = scores + (size_t)i * k;
        if (average_logits) {
            for (int j = 0; j < k; j++) out[j] += row[j];
            continue;
        }
        double mx = row[0], sum = 0;
        for (int j = 1; j < k; j++) mx = fmax(mx, row[j]);
        for (int j = 0; j < k; j++) sum += exp(row[j] - mx);
        for (int j = 0; j < k; j++) out[j] += exp(row[j] - mx) / sum;
    }
    return BG_OK;
}

typedef struct {
    bg_trainer *tr;
    const bg_eval_set *set;
    bool flip, logits;
    double *scores;
    int32_t *labels;
} view_pass;

static bg_status add_chunk(void *arg, int64_t first, int n, const float *x, const int32_t *y)
{
    view_pass *p = arg;
    const bg_eval_set *set = p->set;
    memcpy(p->labels + first, y, (size_t)n * sizeof *y);
    bg_status s = BG_OK;
    for (int f = 0; !s && f < (p->flip ? 2 : 1); f++)
        s = bg_ensemble_add_view(p->tr, x, n, set->h, set->w, set->c, f == 1, p->logits,
                                 p->scores + (size_t)first * set->k, set->k);
    return s;
}

bg_status bg_ensemble_scores(bg_ctx *ctx, bg_device device, bg_forward_fn forward, void *model, const bg_eval_set *set,
                             const int *sizes, int n_sizes, bool flip, bool average_logits, int chunk, double *scores,
                             int32_t *labels, int *views)
{
    for (int si = 0; si < n_sizes; si++) {
        bg_trainer tr = {0};
        bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
        oc.lr = 0;
        bg_status s = bg_trainer_init(&tr, ctx, device, forward, model, 1, chunk, sizes[si], sizes[si], set->c, &oc, 0.0f);
        view_pass p = {&tr, set, flip, average_logits, scores, labels};
        if (!s) s = bg_eval_set_each(set, chunk, add_chunk, &p);
        bg_trainer_free(&tr);
        if (s) {
            char msg[sizeof ctx->err];
            snprintf(msg, sizeof msg, "%s", bg_errmsg(ctx));
            return bg_fail(ctx, s, "at %dx%d: %s", sizes[si], sizes[si], msg);
        }
        if (views) *views += flip ? 2 : 1;
    }
    return BG_OK;
}

bg_status bg_metrics_compute(bg_ctx *ctx, const double *scores, const int32_t *labels, int64_t n, int k, bg_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->n = n, m->k = k;
    m->per_class = malloc((size_t)k * sizeof *m->per_class);
    m->confusion = calloc((size_t)k * k, sizeof *m->confusion);
    int64_t *count = calloc((size_t)k, sizeof *count);
    if (!m->per_class || !m->confusion || !count) {
        free(count);
        bg_metrics_free(m);
        return bg_fail(ctx, BG_ERR_OOM, "metrics: out of host memory");
    }
    int64_t top1 = 0, top5 = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *row = scores + (size_t)i * k;
        const int y = labels[i];
        if (y < 0 || y >= k) {
            free(count);
            bg_metrics_free(m);
            return bg_fail(ctx, BG_ERR_ARG, "metrics: label %d of image %lld is outside 0..%d", y, (long long)i, k - 1);
        }
        int best = 0, above = 0; /* classes that beat the true one (ties go to the lower class) */
        for (int j = 0; j < k; j++) {
            if (row[j] > row[best]) best = j;
            if (row[j] > row[y] || (row[j] == row[y] && j < y)) above++;
        }
        top1 += best == y;
        top5 += above < 5;
        count[y]++;
        m->confusion[(size_t)y * k + best]++;
    }
    m->top1 = n ? (double)top1 / (double)n : 0;
    m->top5 = n ? (double)top5 / (double)n : 0;
    for (int j = 0; j < k; j++) m->per_class[j] = count[j] ? (double)m->confusion[(size_t)j * k + j] / (double)count[j] : -1;
    free(count);
    return BG_OK;
}

void bg_metrics_free(bg_metrics *m)
{
    free(m->per_class);
    free(m->confusion);
    m->per_class = NULL;
    m->confusion = NULL;
}
