/* The fast CPU backend's pooling (ops/pool.c has the math): f32 only,
 * anything else declined to the reference.
 *  - global_avgpool: one image per thread, as the reference (no sums shared
 *    between threads); the backward divides dy by P once per channel
 *    instead of once per element.
 *  - avgpool2d / maxpool2d: per output pixel, the window's rows vectorised
 *    over C, with the reference's sum order, division and tie / NaN rules,
 *    so the same bits; backward divides once per channel (avg) and scatters
 *    through the saved argmax without a division per element (max). The
 *    backward passes give each thread whole images: windows overlap within
 *    an image, never across images. */
#include <stdlib.h>
#include "fast.h"
#include "../pool_geom.h"
#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/parallel.h"
#include "../ops.h"

BG_ISA_DECL(void, bg_k_gap_fwd_image, (const float *x, float *y, int64_t p, int64_t c))
BG_ISA_DECL(void, bg_k_gap_bwd_image, (const float *g, float *dx, int64_t p, int64_t c))
BG_ISA_DECL(void, bg_k_avgpool_pixel,
            (const float *img, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1, float div, float *y,
             int64_t c))
BG_ISA_DECL(void, bg_k_avgpool_pixel_bwd,
            (float *img, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1, float div, const float *dy,
             float *g, int64_t c))
BG_ISA_DECL(void, bg_k_maxpool_pixel,
            (const float *img, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1, float *y, int32_t *arg,
             int64_t c))

static bool f32_dense(const bg_tensor *t) { return t && t->dtype == BG_F32 && bg_is_contiguous(t); }

/* x {N, H, W, C}: nn images of p rows of c channels. */
static bool geometry(const bg_node *n, int64_t *nn, int64_t *p, int64_t *c)
{
    const bg_tensor *x = n->in[0];
    if (x->ndim != 4 || !f32_dense(x) || !f32_dense(n->out[0])) return false;
    *nn = x->shape[0], *p = x->shape[1] * x->shape[2], *c = x->shape[3];
    return *nn > 0 && *p > 0 && *c > 0;
}

static int image_threads(int64_t nn, int64_t p, int64_t c)
{
    int t = bg_cpu_chunks(nn * p * c, BG_CPU_GRAIN);
    return t > nn ? (int)nn : t;
}

bg_status bg_fast_gap_fwd(bg_ctx *ctx, bg_node *n)
{
    int64_t nn, p, c;
    if (!geometry(n, &nn, &p, &c)) return BG_ERR_UNSUPPORTED;
    void (*k)(const float *, float *, int64_t, int64_t) = BG_ISA_PICK(ctx->cpu_isa, bg_k_gap_fwd_image);
    const float *x = n->in[0]->data;
    float *y = n->out[0]->data;
    const int threads = image_threads(nn, p, c);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < nn; b++) k(x + b * p * c, y + b * c, p, c);
    return BG_OK;
}

bg_status bg_fast_gap_bwd(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    int64_t nn, p, c;
    if (!geometry(n, &nn, &p, &c) || !f32_dense(dy) || !f32_dense(x->grad)) return BG_ERR_UNSUPPORTED;
    float *g = malloc((size_t)(nn * c) * sizeof(float));
    if (!g) return bg_fail(ctx, BG_ERR_OOM, "global_avgpool: no memory for %lld gradients", (long long)(nn * c));
    const float *gp = dy->data;
    for (int64_t i = 0; i < nn * c; i++) g[i] = gp[i] / (float)p; /* the reference's rounding */
    void (*k)(const float *, float *, int64_t, int64_t) = BG_ISA_PICK(ctx->cpu_isa, bg_k_gap_bwd_image);
    float *dx = x->grad->data;
    const int threads = image_threads(nn, p, c);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < nn; b++) k(g + b * c, dx + b * p * c, p, c);
    free(g);
    return BG_OK;
}

/* ---- avgpool2d / maxpool2d ---------------------------------------------------
 * The geometry and window rules are ops/pool.c's (ops/pool_geom.h). */

static bool fast_geometry(const bg_node *n, pool_geom *g)
{
    const bg_tensor *x = n->in[0], *y = n->out[0];
    if (x->ndim != 4 || y->ndim != 4 || !f32_dense(x) || !f32_dense(y)) return false;
    *g = pool_geometry(n);
    return g->sh >= 1 && g->sw >= 1 && g->C >= 1 && g->Ho > 0 && g->Wo > 0;
}

/* Threads for a pass over the input: at least a grain of elements each. */
static int pool_threads(const pool_geom *g, int64_t units)
{
    int t = bg_cpu_chunks(g->N * g->H * g->W * g->C, BG_CPU_GRAIN);
    return t > units ? (int)units : t;
}

/* The forward of both: output rows (image, oy) across threads. */
static bg_status pool_fwd(bg_ctx *ctx, bg_node *n, bool max)
{
    pool_geom g;
    if (!fast_geometry(n, &g) || (max && (n->n_saved < 1 || n->saved[0]->dtype != BG_I32)))
        return BG_ERR_UNSUPPORTED;
    void (*avg)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, float, float *, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_avgpool_pixel);
    void (*mx)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, float *, int32_t *, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_maxpool_pixel);
    const float *x = n->in[0]->data;
    float *y = n->out[0]->data;
    int32_t *arg = max ? n->saved[0]->data : NULL;
    const int64_t rows = g.N * g.Ho;
    const int threads = pool_threads(&g, rows);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t img = r / g.Ho, oy = r % g.Ho;
        const float *xi = x + img * g.H * g.W * g.C;
        int64_t y0, y1, cy;
        pool_window(oy, g.kh, g.sh, g.ph, g.H, max || g.include_pad, &y0, &y1, &cy);
        for (int64_t ox = 0; ox < g.Wo; ox++) {
            int64_t x0, x1, cx;
            pool_window(ox, g.kw, g.sw, g.pw, g.W, max || g.include_pad, &x0, &x1, &cx);
            const int64_t o = (r * g.Wo + ox) * g.C;
            if (max) mx(xi, g.W, y0, y1, x0, x1, y + o, arg + o, g.C);
            else avg(xi, g.W, y0, y1, x0, x1, (float)(cy * cx), y + o, g.C);
        }
    }
    return BG_OK;
}

bg_status bg_fast_avgpool_fwd(bg_ctx *ctx, bg_node *n) { return pool_fwd(ctx, n, false); }
bg_status bg_fast_maxpool_fwd(bg_ctx *ctx, bg_node *n) { return pool_fwd(ctx, n, true); }

bg_status bg_fast_avgpool_bwd(bg_ctx *ctx, bg_node *n)
{
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    pool_geom g;
    if (!fast_geometry(n, &g) || !f32_dense(dy) || !f32_dense(x->grad)) return BG_ERR_UNSUPPORTED;
    void (*k)(float *, int64_t, int64_t, int64_t, int64_t, int64_t, float, const float *, float *, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_avgpool_pixel_bwd);
    const int threads = pool_threads(&g, g.N);
    float *scratch = malloc((size_t)threads * (size_t)g.C * sizeof(float));
    if (!scratch) return bg_fail(ctx, BG_ERR_OOM, "avgpool2d: no memory for %lld channels", (long long)g.C);
    const float *gp = dy->data;
    float *dx = x->grad->data;
#pragma omp parallel for num_threads(threads) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        int64_t lo, hi;
        bg_cpu_chunk(g.N, threads, t, 1, &lo, &hi);
        for (int64_t img = lo; img < hi; img++)
            for (int64_t oy = 0; oy < g.Ho; oy++) {
                int64_t y0, y1, cy;
                pool_window(oy, g.kh, g.sh, g.ph, g.H, g.include_pad, &y0, &y1, &cy);
                for (int64_t ox = 0; ox < g.Wo; ox++) {
                    int64_t x0, x1, cx;
                    pool_window(ox, g.kw, g.sw, g.pw, g.W, g.include_pad, &x0, &x1, &cx);
                    k(dx + img * g.H * g.W * g.C, g.W, y0, y1, x0, x1, (float)(cy * cx),
                      gp + ((img * g.Ho + oy) * g.Wo + ox) * g.C, scratch + t * g.C, g.C);
                }
            }
    }
    free(scratch);
    return BG_OK;
}

/* dx[argmax] += dy, channel by channel: a scatter, left scalar. */
bg_status bg_fast_maxpool_bwd(bg_ctx *ctx, bg_node *n)
{
    (void)ctx;
    const bg_tensor *x = n->in[0], *dy = n->out[0]->grad;
    if (!x->grad || !dy) return BG_OK;
    pool_geom g;
    if (!fast_geometry(n, &g) || !f32_dense(dy) || !f32_dense(x->grad) || n->n_saved < 1 ||
        n->saved[0]->dtype != BG_I32)
        return BG_ERR_UNSUPPORTED;
    const float *gp = dy->data;
    const int32_t *arg = n->saved[0]->data;
    float *dx = x->grad->data;
    const int64_t pix = g.Ho * g.Wo;
    const int threads = pool_threads(&g, g.N);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t img = 0; img < g.N; img++) {
        float *dxi = dx + img * g.H * g.W * g.C;
        for (int64_t q = 0; q < pix; q++) {
            const int64_t o = (img * pix + q) * g.C;
            for (int64_t k = 0; k < g.C; k++) dxi[(int64_t)arg[o + k] * g.C + k] += gp[o + k];
        }
    }
    return BG_OK;
}
