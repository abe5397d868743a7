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
 * The window rules are ops/pool.c's (PyTorch's), restated because the
 * reference keeps them private; tests/test_ops_pool.c's op cases (ceil_mode,
 * padding, count_include_pad) hold the two to the same answers (cpu-fast). */

typedef struct {
    int64_t n, h, w, c, ho, wo, kh, kw, sh, sw, ph, pw;
    bool include_pad;
} pool_geom;


/* Output o's window along one axis: [a, e) in the input, and the divisor's
 * extent (the window clipped to the padded input, or to the real one). */
static void window(int64_t o, int64_t k, int64_t s, int64_t p, int64_t in, bool include_pad, int64_t *a, int64_t *e,
                   int64_t *count)
{
    int64_t start = o * s - p, end = start + k;
    if (end > in + p) end = in + p;
    int64_t padded = end - start;
    if (start < 0) start = 0;
    if (end > in) end = in;
    *a = start, *e = end;
    *count = include_pad ? padded : end - start;
}

static bool pool_geometry(const bg_node *n, pool_geom *g)
{
    const bg_tensor *x = n->in[0], *y = n->out[0];
    const bg_pool_params *p = BG_PARAMS(n, const bg_pool_params);
    if (x->ndim != 4 || !f32_dense(x) || !f32_dense(y)) return false;
    g->n = x->shape[0], g->h = x->shape[1], g->w = x->shape[2], g->c = x->shape[3];
    g->kh = p->kernel[0], g->kw = p->kernel[1], g->ph = p->padding[0], g->pw = p->padding[1];
    g->sh = p->stride[0] ? p->stride[0] : p->kernel[0];
    g->sw = p->stride[1] ? p->stride[1] : p->kernel[1];
    g->include_pad = p->count_include_pad != 0;
    if (g->sh < 1 || g->sw < 1 || g->c < 1) return false;
    if (y->ndim != 4) return false;
    /* the output size (ceil mode included) is the row's shape rule's, in ops/pool.c */
    g->ho = y->shape[1], g->wo = y->shape[2];
    return g->ho > 0 && g->wo > 0;
}

/* Threads for a pass over the input: at least a grain of elements each. */
static int pool_threads(const pool_geom *g, int64_t units)
{
    int t = bg_cpu_chunks(g->n * g->h * g->w * g->c, BG_CPU_GRAIN);
    return t > units ? (int)units : t;
}

/* The forward of both: output rows (image, oy) across threads. */
static bg_status pool_fwd(bg_ctx *ctx, bg_node *n, bool max)
{
    pool_geom g;
    if (!pool_geometry(n, &g) || (max && (n->n_saved < 1 || n->saved[0]->dtype != BG_I32)))
        return BG_ERR_UNSUPPORTED;
    void (*avg)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, float, float *, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_avgpool_pixel);
    void (*mx)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, float *, int32_t *, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_maxpool_pixel);
    const float *x = n->in[0]->data;
    float *y = n->out[0]->data;
    int32_t *arg = max ? n->saved[0]->data : NULL;
    const int64_t rows = g.n * g.ho;
    const int threads = pool_threads(&g, rows);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t img = r / g.ho, oy = r % g.ho;
        const float *xi = x + img * g.h * g.w * g.c;
        int64_t y0, y1, cy;
        window(oy, g.kh, g.sh, g.ph, g.h, max || g.include_pad, &y0, &y1, &cy);
        for (int64_t ox = 0; ox < g.wo; ox++) {
            int64_t x0, x1, cx;
            window(ox, g.kw, g.sw, g.pw, g.w, max || g.include_pad, &x0, &x1, &cx);
            const int64_t o = (r * g.wo + ox) * g.c;
            if (max) mx(xi, g.w, y0, y1, x0, x1, y + o, arg + o, g.c);
            else avg(xi, g.w, y0, y1, x0, x1, (float)(cy * cx), y + o, g.c);
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
    if (!pool_geometry(n, &g) || !f32_dense(dy) || !f32_dense(x->grad)) return BG_ERR_UNSUPPORTED;
    void (*k)(float *, int64_t, int64_t, int64_t, int64_t, int64_t, float, const float *, float *, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_avgpool_pixel_bwd);
    const int threads = pool_threads(&g, g.n);
    float *scratch = malloc((size_t)threads * (size_t)g.c * sizeof(float));
    if (!scratch) return bg_fail(ctx, BG_ERR_OOM, "avgpool2d: no memory for %lld channels", (long long)g.c);
    const float *gp = dy->data;
    float *dx = x->grad->data;
#pragma omp parallel for num_threads(threads) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        int64_t lo, hi;
        bg_cpu_chunk(g.n, threads, t, 1, &lo, &hi);
        for (int64_t img = lo; img < hi; img++)
            for (int64_t oy = 0; oy < g.ho; oy++) {
                int64_t y0, y1, cy;
                window(oy, g.kh, g.sh, g.ph, g.h, g.include_pad, &y0, &y1, &cy);
                for (int64_t ox = 0; ox < g.wo; ox++) {
                    int64_t x0, x1, cx;
                    window(ox, g.kw, g.sw, g.pw, g.w, g.include_pad, &x0, &x1, &cx);
                    k(dx + img * g.h * g.w * g.c, g.w, y0, y1, x0, x1, (float)(cy * cx),
                      gp + ((img * g.ho + oy) * g.wo + ox) * g.c, scratch + t * g.c, g.c);
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
    if (!pool_geometry(n, &g) || !f32_dense(dy) || !f32_dense(x->grad) || n->n_saved < 1 ||
        n->saved[0]->dtype != BG_I32)
        return BG_ERR_UNSUPPORTED;
    const float *gp = dy->data;
    const int32_t *arg = n->saved[0]->data;
    float *dx = x->grad->data;
    const int64_t pix = g.ho * g.wo;
    const int threads = pool_threads(&g, g.n);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t img = 0; img < g.n; img++) {
        float *dxi = dx + img * g.h * g.w * g.c;
        for (int64_t q = 0; q < pix; q++) {
            const int64_t o = (img * pix + q) * g.c;
            for (int64_t k = 0; k < g.c; k++) dxi[(int64_t)arg[o + k] * g.c + k] += gp[o + k];
        }
    }
    return BG_OK;
}
