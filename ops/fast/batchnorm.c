/* The fast CPU backend's batchnorm2d and batchnorm2d_relu (the math and the
 * saved tensors are ops/batchnorm.c's): f32 only, anything else declined to
 * the reference. x is {M, C} rows of C contiguous channels; the reference
 * walks each channel down the rows with stride C, in double, in three passes
 * (training forward) or two (backward). Here every pass streams whole rows:
 *   forward, training: one pass for sum (x - k) and sum (x - k)^2 per
 *     channel (k: the first block's mean, a shift near the mean), then one
 *     pass writing y (and the relu) from per-channel mean, scale and beta;
 *   forward, eval: the writing pass only;
 *   backward: one pass for sum g and sum g (x - mean) (g = dy, masked by the
 *     fused relu's output), then one pass writing dx.
 * The sums run over fixed row chunks (kernels/cpu/rows.h) and their partials
 * are added in chunk order, so results do not depend on the thread count.
 * Per-channel constants are worked out in double between the passes. */
#include <math.h>
#include <stdlib.h>
#include "fast.h"
#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/rows.h"
#include "../ops.h"

BG_ISA_DECL(void, bg_k_bn_stats,
            (const float *x, int64_t rows, int64_t c, const float *shift, double *s1, double *s2))
BG_ISA_DECL(void, bg_k_bn_apply,
            (const float *x, float *y, int64_t rows, int64_t c, const float *mean, const float *scale,
             const float *beta, int relu))
BG_ISA_DECL(void, bg_k_bn_bwd_sums,
            (const float *x, const float *dy, const float *mask, int64_t rows, int64_t c, const float *mean,
             double *s1, double *s2))
BG_ISA_DECL(void, bg_k_bn_dx,
            (const float *x, const float *dy, const float *mask, float *dx, int64_t rows, int64_t c,
             const float *mean, const float *a, const float *b, const float *e, int store))

static bool f32_dense(const bg_tensor *t) { return !t || (t->dtype == BG_F32 && bg_is_contiguous(t)); }

/* What the fast kernels cover: every tensor f32 and dense, a non-empty x.
 * Training on one row per channel is declined so the reference reports it. */
static bool covered(const bg_node *n, int64_t m, int64_t c)
{
    for (int i = 0; i < 5; i++)
        if (!f32_dense(n->in[i])) return false;
    return m > 0 && c > 0 && !(n->train && m < 2) && f32_dense(n->saved[0]) && f32_dense(n->saved[1]);
}

static bg_status oom(bg_ctx *ctx, const bg_node *n, int64_t c)
{
    return bg_fail(ctx, BG_ERR_OOM, "%s: no memory for the per-channel sums of %lld channels", n->op->name,
                   (long long)c);
}

/* Rows [lo, hi) of chunk i of m rows cut into `chunks` for an elementwise pass. */
static void rows_of(int64_t m, int chunks, int i, int64_t *lo, int64_t *hi) { bg_cpu_chunk(m, chunks, i, 1, lo, hi); }

/* Adds the chunks' partials (chunk ch: s1 at part[2 ch c], s2 right after)
 * in chunk order into tot1, tot2. */
static void add_partials(const double *part, int64_t chunks, int64_t c, double *tot1, double *tot2)
{
    for (int64_t k = 0; k < c; k++) tot1[k] = 0, tot2[k] = 0;
    for (int64_t ch = 0; ch < chunks; ch++) {
        const double *p1 = part + 2 * ch * c, *p2 = p1 + c;
        for (int64_t k = 0; k < c; k++) tot1[k] += p1[k], tot2[k] += p2[k];
    }
}

/* Training statistics: mean and biased variance per channel into mean_d,
 * var_d (double, c each); part holds 2 c doubles per chunk, shift c floats. */
static void batch_stats(bg_ctx *ctx, const float *x, int64_t m, int64_t c, double *part, float *shift,
                        double *mean_d, double *var_d)
{
    void (*stats)(const float *, int64_t, int64_t, const float *, double *, double *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_bn_stats);
    const int64_t b = m < BG_ROW_BLOCK ? m : BG_ROW_BLOCK;
    for (int64_t k = 0; k < c; k++) {
        double s = 0;
        for (int64_t r = 0; r < b; r++) s += (double)x[r * c + k];
        shift[k] = (float)(s / (double)b);
    }
    const int64_t per = bg_row_chunk_rows(c), chunks = bg_row_chunk_count(m, c);
    const int threads = bg_row_threads(chunks);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t lo = ch * per, hi = lo + per < m ? lo + per : m;
        stats(x + lo * c, hi - lo, c, shift, part + 2 * ch * c, part + (2 * ch + 1) * c);
    }
    add_partials(part, chunks, c, mean_d, var_d);
    for (int64_t k = 0; k < c; k++) {
        double d = mean_d[k] / (double)m, v = var_d[k] / (double)m - d * d;
        mean_d[k] = (double)shift[k] + d;
        var_d[k] = v > 0 ? v : 0; /* rounding can take a constant channel's variance below 0 */
    }
}

bg_status bg_fast_bn_fwd(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0];
    const int64_t c = x->ndim == 4 ? x->shape[3] : 0, m = c ? bg_numel(x) / c : 0;
    if (!covered(n, m, c)) return BG_ERR_UNSUPPORTED;
    const bg_batchnorm_params *p = BG_PARAMS(n, bg_batchnorm_params);
    const float *xp = x->data, *gamma = n->in[1]->data, *beta = n->in[2]->data;
    float *rm = n->in[3]->data, *rv = n->in[4]->data, *mean = n->saved[0]->data, *invstd = n->saved[1]->data;
    const int64_t chunks = n->train ? bg_row_chunk_count(m, c) : 0;
    /* doubles: the chunk partials, mean and variance; floats: shift, scale */
    double *work = malloc((size_t)(2 * chunks + 2) * (size_t)c * sizeof(double) + 2 * (size_t)c * sizeof(float));
    if (!work) return oom(ctx, n, c);
    double *mean_d = work + 2 * chunks * c, *var_d = mean_d + c;
    float *shift = (float *)(var_d + c), *scale = shift + c;
    const double mom = p->momentum, eps = p->eps;
    if (n->train) {
        batch_stats(ctx, xp, m, c, work, shift, mean_d, var_d);
        /* the running statistics as the reference updates them */
        for (int64_t k = 0; k < c; k++) {
            rm[k] = (float)((1.0 - mom) * (double)rm[k] + mom * mean_d[k]);
            rv[k] = (float)((1.0 - mom) * (double)rv[k] + mom * var_d[k] * (double)m / (double)(m - 1));
        }
    } else {
        for (int64_t k = 0; k < c; k++) mean_d[k] = rm[k], var_d[k] = rv[k];
    }
    for (int64_t k = 0; k < c; k++) {
        double is = 1.0 / sqrt(var_d[k] + eps);
        mean[k] = (float)mean_d[k];
        invstd[k] = (float)is;
        scale[k] = (float)(is * (double)gamma[k]);
    }
    void (*apply)(const float *, float *, int64_t, int64_t, const float *, const float *, const float *, int) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_bn_apply);
    float *yp = n->out[0]->data;
    const int relu = n->op == &bg_op_batchnorm2d_relu, parts = bg_cpu_chunks(m * c, BG_CPU_GRAIN);
#pragma omp parallel for num_threads(parts) if (parts > 1)
    for (int i = 0; i < parts; i++) {
        int64_t lo, hi;
        rows_of(m, parts, i, &lo, &hi);
        apply(xp + lo * c, yp + lo * c, hi - lo, c, mean, scale, beta, relu);
    }
    free(work);
    return BG_OK;
}

/* With xh = (x - mean) invstd, k = gamma invstd and the sums S1 = sum g,
 * S2 = sum g (x - mean): dbeta += S1, dgamma += invstd S2, and
 *   training: dx += k g - k invstd (invstd S2 / M) (x - mean) - k S1 / M,
 *   eval:     dx += k g. */
bg_status bg_fast_bn_bwd(bg_ctx *ctx, bg_node *n)
{
    bg_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *dy = n->out[0]->grad;
    if (!dy || (!x->grad && !gamma->grad && !beta->grad)) return BG_OK;
    const int64_t c = x->ndim == 4 ? x->shape[3] : 0, m = c ? bg_numel(x) / c : 0;
    if (!covered(n, m, c) || !f32_dense(dy) || !f32_dense(x->grad) || !f32_dense(gamma->grad) ||
        !f32_dense(beta->grad) || !f32_dense(n->out[0]))
        return BG_ERR_UNSUPPORTED;
    const float *xp = x->data, *g = gamma->data, *dyp = dy->data, *mean = n->saved[0]->data,
                *invstd = n->saved[1]->data;
    const float *mask = n->op == &bg_op_batchnorm2d_relu ? n->out[0]->data : NULL;
    float *dx = x->grad ? x->grad->data : NULL, *dg = gamma->grad ? gamma->grad->data : NULL,
          *db = beta->grad ? beta->grad->data : NULL;
    const bool sums = dg || db || (dx && n->train);
    const int64_t chunks = sums ? bg_row_chunk_count(m, c) : 0;
    /* doubles: the chunk partials, S1, S2; floats: a, b, e */
    double *work = malloc((size_t)(2 * chunks + 2) * (size_t)c * sizeof(double) + 3 * (size_t)c * sizeof(float));
    if (!work) return oom(ctx, n, c);
    double *s1 = work + 2 * chunks * c, *s2 = s1 + c;
    float *a = (float *)(s2 + c), *b = a + c, *e = b + c;
    if (sums) {
        void (*bsums)(const float *, const float *, const float *, int64_t, int64_t, const float *, double *,
                      double *) = BG_ISA_PICK(ctx->cpu_isa, bg_k_bn_bwd_sums);
        const int64_t per = bg_row_chunk_rows(c);
        const int threads = bg_row_threads(chunks);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
        for (int64_t ch = 0; ch < chunks; ch++) {
            int64_t lo = ch * per, hi = lo + per < m ? lo + per : m;
            bsums(xp + lo * c, dyp + lo * c, mask ? mask + lo * c : NULL, hi - lo, c, mean, work + 2 * ch * c,
                  work + (2 * ch + 1) * c);
        }
        add_partials(work, chunks, c, s1, s2);
        for (int64_t k = 0; k < c; k++) {
            double sxh = s2[k] * (double)invstd[k];
            if (dg) dg[k] = (float)((double)dg[k] + sxh);
            if (db) db[k] = (float)((double)db[k] + s1[k]);
        }
    }
    if (dx) {
        for (int64_t k = 0; k < c; k++) {
            double is = invstd[k], kk = (double)g[k] * is;
            a[k] = (float)kk;
            b[k] = n->train ? (float)(-kk * is * (s2[k] * is / (double)m)) : 0.0f;
            e[k] = n->train ? (float)(-kk * s1[k] / (double)m) : 0.0f;
        }
        void (*kdx)(const float *, const float *, const float *, float *, int64_t, int64_t, const float *,
                    const float *, const float *, const float *, int) = BG_ISA_PICK(ctx->cpu_isa, bg_k_bn_dx);
        const int parts = bg_cpu_chunks(m * c, BG_CPU_GRAIN), store = n->grad_fresh & 1;
#pragma omp parallel for num_threads(parts) if (parts > 1)
        for (int i = 0; i < parts; i++) {
            int64_t lo, hi;
            rows_of(m, parts, i, &lo, &hi);
            kdx(xp + lo * c, dyp + lo * c, mask ? mask + lo * c : NULL, dx + lo * c, hi - lo, c, mean, a, b, e, store);
        }
        n->grad_fresh &= (unsigned char)~1u;
    }
    free(work);
    return BG_OK;
}
