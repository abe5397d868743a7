/* GPU suite: the fused attention-block launchers (kernels/attention.h,
 * kernels/pool.h) against plain double-precision loops on the host:
 *  - squeeze-excitation: y = relu(x * s + res), ds = sum dz * x, dres = dz,
 *    dx += dz * s + dgap / p;
 *  - split attention: y = sum_r x_r * a_r, dx, da;
 *  - the squeeze over radix splits: GAP fused with split_sum, and its backward.
 * Limits: normalised MSE 1e-10 in f32, 1e-5 in f16 (inputs rounded to f16
 * first). Shapes cover the 4-wide path (c % 4 == 0) and the scalar one (43),
 * a 37x37 map, and batch 1. Every launcher runs twice: bit-identical. */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#ifdef BG_WITH_CUDA /* the whole file: it calls the CUDA launchers */
#include "../kernels/attention.h"
#include "../kernels/cuda_api.h"
#include "../kernels/pool.h"

/* Host values (double) and their device copy in dt; `vals` is rounded to
 * dt in place so the reference sees what the device sees. */
typedef struct {
    double *h;
    void *d;
    int64_t n;
    int half;
} buf;

/* xorshift64: the test's own stream, state held by the caller */
static double draw(uint64_t *st, double lo, double hi)
{
    *st ^= *st << 13, *st ^= *st >> 7, *st ^= *st << 17;
    return lo + (hi - lo) * (double)(*st >> 11) / 9007199254740992.0;
}

static bool buf_new(bg_t *tc, bg_ctx *g, uint64_t *st, buf *b, int64_t n, int half, double lo, double hi)
{
    b->n = n;
    b->half = half;
    b->h = malloc((size_t)n * sizeof *b->h);
    size_t es = half ? 2 : 4;
    void *stage = malloc((size_t)n * es);
    CHECK(b->h && stage, "host memory");
    if (!b->h || !stage) return free(stage), false;
    for (int64_t i = 0; i < n; i++) {
        double v = draw(st, lo, hi);
        if (half) {
            uint16_t q = bg_f32_to_f16((float)v);
            ((uint16_t *)stage)[i] = q;
            b->h[i] = bg_f16_to_f32(q);
        } else {
            ((float *)stage)[i] = (float)v;
            b->h[i] = (float)v;
        }
    }
    char err[200];
    bool ok = bg_alloc(g, BG_CUDA, (size_t)n * es, "buf", &b->d) == BG_OK &&
              bg_cuda_memcpy(b->d, stage, (size_t)n * es, BG_COPY_H2D, g->stream, err, sizeof err) == 0;
    CHECK(ok, "device buffer: %s", bg_errmsg(g));
    free(stage);
    return ok;
}

static void buf_free(bg_ctx *g, buf *b)
{
    free(b->h);
    if (b->d) bg_free(g, BG_CUDA, b->d, (size_t)b->n * (b->half ? 2 : 4));
    memset(b, 0, sizeof *b);
}

/* Device contents as doubles (caller frees). */
static double *fetch(bg_ctx *g, const buf *b)
{
    size_t es = b->half ? 2 : 4;
    void *stage = malloc((size_t)b->n * es);
    double *out = malloc((size_t)b->n * sizeof *out);
    char err[200];
    if (!stage || !out || bg_cuda_memcpy(stage, b->d, (size_t)b->n * es, BG_COPY_D2H, g->stream, err, sizeof err)) {
        free(stage);
        free(out);
        return NULL;
    }
    for (int64_t i = 0; i < b->n; i++)
        out[i] = b->half ? bg_f16_to_f32(((uint16_t *)stage)[i]) : ((float *)stage)[i];
    free(stage);
    return out;
}

static double nmse(const double *got, const double *want, int64_t n)
{
    if (!got) return INFINITY;
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i])) return INFINITY;
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return den > 0 ? num / den : num;
}

static void expect(bg_t *tc, bg_ctx *g, const buf *b, const double *want, double tol, const char *what)
{
    double *got = fetch(g, b);
    double e = nmse(got, want, b->n);
    CHECK(e <= tol, "%s: nmse %.3g > %.1g", what, e, tol);
    free(got);
}

static bool same_device_bytes(bg_ctx *g, const buf *a, const buf *b)
{
    double *x = fetch(g, a), *y = fetch(g, b);
    bool ok = x && y && memcmp(x, y, (size_t)a->n * sizeof *x) == 0;
    free(x);
    free(y);
    return ok;
}

static void se_case(bg_t *tc, bg_ctx *g, int64_t n, int64_t p, int64_t c, int half)
{
    const double tol = half ? 1e-5 : 1e-10;
    uint64_t rng = 88172645463325252ull ^ (uint64_t)(n * 131 + p * 7 + c);
    const int64_t N = n * p * c;
    buf x, s, res, y, dy, ds, dres, dgap, dx, y2;
    memset(&x, 0, sizeof x), s = res = y = dy = ds = dres = dgap = dx = y2 = x;
    bool ok = buf_new(tc, g, &rng, &x, N, half, -2, 2) && buf_new(tc, g, &rng, &s, n * c, half, 0, 1) &&
              buf_new(tc, g, &rng, &res, N, half, -1, 1) && buf_new(tc, g, &rng, &y, N, half, 0, 0) &&
              buf_new(tc, g, &rng, &y2, N, half, 0, 0) && buf_new(tc, g, &rng, &dy, N, half, -1, 1) &&
              buf_new(tc, g, &rng, &ds, n * c, half, -1, 1) && buf_new(tc, g, &rng, &dres, N, half, -1, 1) &&
              buf_new(tc, g, &rng, &dgap, n * c, half, -1, 1) && buf_new(tc, g, &rng, &dx, N, half, -1, 1);
    double *wy = malloc((size_t)N * sizeof *wy), *wds = malloc((size_t)(n * c) * sizeof *wds);
    double *wdres = malloc((size_t)N * sizeof *wdres), *wdx = malloc((size_t)N * sizeof *wdx);
    if (!ok || !wy || !wds || !wdres || !wdx) goto out;
    /* reference: y, then the gradients (ADDED to the buffers' initial values) */
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < c; k++) wds[b * c + k] = ds.h[b * c + k];
    for (int64_t i = 0; i < N; i++) {
        int64_t b = i / (p * c), k = i % c;
        double v = x.h[i] * s.h[b * c + k] + res.h[i];
        wy[i] = v > 0 ? v : 0;
    }
    bg_cuda_se_scale_fwd(x.d, s.d, res.d, y.d, n, p, c, 1, half, g->stream);
    bg_cuda_se_scale_fwd(x.d, s.d, res.d, y2.d, n, p, c, 1, half, g->stream);
    expect(tc, g, &y, wy, tol, "se forward");
    CHECK(same_device_bytes(g, &y, &y2), "se forward differs between two runs");
    /* the backward's relu mask comes from the device y (rounded as stored) */
    double *ydev = fetch(g, &y);
    if (!ydev) goto out;
    for (int64_t i = 0; i < N; i++) {
        int64_t b = i / (p * c), k = i % c;
        double dz = ydev[i] > 0 ? dy.h[i] : 0;
        wds[b * c + k] += dz * x.h[i];
        wdres[i] = dres.h[i] + dz;
        wdx[i] = dx.h[i] + dz * s.h[b * c + k] + dgap.h[b * c + k] / (double)p;
    }
    free(ydev);
    bg_cuda_se_scale_bwd_reduce(x.d, y.d, dy.d, ds.d, dres.d, n, p, c, 1, half, g->stream);
    bg_cuda_se_scale_bwd_dx(dy.d, y.d, s.d, dgap.d, dx.d, n, p, c, 1, half, g->stream);
    char err[200];
    CHECK(bg_cuda_check_launch(err, sizeof err) == 0, "launch: %s", err);
    expect(tc, g, &ds, wds, tol, "se ds");
    expect(tc, g, &dres, wdres, tol, "se dres");
    expect(tc, g, &dx, wdx, tol, "se dx");
out:
    free(wy), free(wds), free(wdres), free(wdx);
    buf *all[] = {&x, &s, &res, &y, &y2, &dy, &ds, &dres, &dgap, &dx};
    for (int i = 0; i < 10; i++) buf_free(g, all[i]);
}

BG_GPU_TEST(gpu_se_fused_matches_reference)
{
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 31));
    if (tc->failures) return;
    for (int half = 0; half < 2; half++) {
        se_case(tc, &g, 3, 37 * 37, 43, half); /* scalar path */
        se_case(tc, &g, 2, 49, 64, half);      /* 4-wide path */
        se_case(tc, &g, 1, 8 * 8, 172, half);  /* batch 1 */
    }
    bg_alloc_trim(&g, BG_CUDA);
    bg_ctx_free(&g);
}

static void splat_case(bg_t *tc, bg_ctx *g, int64_t n, int64_t p, int64_t r, int64_t c, int half)
{
    const double tol = half ? 1e-5 : 1e-10;
    uint64_t rng = 88172645463325252ull ^ (uint64_t)(n * 131 + p * 7 + c);
    const int64_t NX = n * p * r * c, NY = n * p * c, NA = n * r * c;
    buf x, a, y, y2, dy, dx, da;
    memset(&x, 0, sizeof x), a = y = y2 = dy = dx = da = x;
    bool ok = buf_new(tc, g, &rng, &x, NX, half, -2, 2) && buf_new(tc, g, &rng, &a, NA, half, 0, 1) &&
              buf_new(tc, g, &rng, &y, NY, half, 0, 0) && buf_new(tc, g, &rng, &y2, NY, half, 0, 0) &&
              buf_new(tc, g, &rng, &dy, NY, half, -1, 1) && buf_new(tc, g, &rng, &dx, NX, half, -1, 1) &&
              buf_new(tc, g, &rng, &da, NA, half, -1, 1);
    double *wy = calloc((size_t)NY, sizeof *wy), *wdx = malloc((size_t)NX * sizeof *wdx);
    double *wda = malloc((size_t)NA * sizeof *wda);
    if (!ok || !wy || !wdx || !wda) goto out;
    memcpy(wda, da.h, (size_t)NA * sizeof *wda);
    for (int64_t row = 0; row < n * p; row++) {
        int64_t b = row / p;
        for (int64_t s = 0; s < r; s++)
            for (int64_t k = 0; k < c; k++) {
                int64_t xi = row * r * c + s * c + k, ai = b * r * c + s * c + k, yi = row * c + k;
                wy[yi] += x.h[xi] * a.h[ai];
                wdx[xi] = dx.h[xi] + dy.h[yi] * a.h[ai];
                wda[ai] += dy.h[yi] * x.h[xi];
            }
    }
    bg_cuda_splat_fwd(x.d, a.d, y.d, n, p, r, c, half, g->stream);
    bg_cuda_splat_fwd(x.d, a.d, y2.d, n, p, r, c, half, g->stream);
    bg_cuda_splat_bwd(x.d, a.d, dy.d, dx.d, da.d, n, p, r, c, half, g->stream);
    char err[200];
    CHECK(bg_cuda_check_launch(err, sizeof err) == 0, "launch: %s", err);
    expect(tc, g, &y, wy, tol, "splat y");
    CHECK(same_device_bytes(g, &y, &y2), "splat forward differs between two runs");
    expect(tc, g, &dx, wdx, tol, "splat dx");
    expect(tc, g, &da, wda, tol, "splat da");
out:
    free(wy), free(wdx), free(wda);
    buf *all[] = {&x, &a, &y, &y2, &dy, &dx, &da};
    for (int i = 0; i < 7; i++) buf_free(g, all[i]);
}

BG_GPU_TEST(gpu_split_attention_sum_matches_reference)
{
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 32));
    if (tc->failures) return;
    for (int half = 0; half < 2; half++) {
        splat_case(tc, &g, 2, 37 * 37, 2, 43, half);
        splat_case(tc, &g, 3, 7 * 7, 4, 32, half);
        splat_case(tc, &g, 1, 14 * 14, 2, 86, half);
    }
    bg_alloc_trim(&g, BG_CUDA);
    bg_ctx_free(&g);
}

static void gap_case(bg_t *tc, bg_ctx *g, int64_t n, int64_t p, int64_t r, int64_t c, int half)
{
    const double tol = half ? 1e-5 : 1e-10;
    uint64_t rng = 88172645463325252ull ^ (uint64_t)(n * 131 + p * 7 + c);
    const int64_t NX = n * p * r * c, NY = n * c;
    buf x, y, dy, dx;
    memset(&x, 0, sizeof x), y = dy = dx = x;
    bool ok = buf_new(tc, g, &rng, &x, NX, half, -2, 2) && buf_new(tc, g, &rng, &y, NY, half, 0, 0) &&
              buf_new(tc, g, &rng, &dy, NY, half, -1, 1) && buf_new(tc, g, &rng, &dx, NX, half, -1, 1);
    double *wy = calloc((size_t)NY, sizeof *wy), *wdx = malloc((size_t)NX * sizeof *wdx);
    if (!ok || !wy || !wdx) goto out;
    for (int64_t i = 0; i < NX; i++) {
        int64_t b = i / (p * r * c), k = (i % (r * c)) % c;
        wy[b * c + k] += x.h[i] / (double)p;
        wdx[i] = dx.h[i] + dy.h[b * c + k] / (double)p;
    }
    bg_cuda_gap_fwd(x.d, y.d, n, p, r, c, half, g->stream);
    bg_cuda_gap_bwd(dy.d, dx.d, n, p, r, c, half, g->stream);
    char err[200];
    CHECK(bg_cuda_check_launch(err, sizeof err) == 0, "launch: %s", err);
    expect(tc, g, &y, wy, tol, "gap y");
    expect(tc, g, &dx, wdx, tol, "gap dx");
out:
    free(wy), free(wdx);
    buf *all[] = {&x, &y, &dy, &dx};
    for (int i = 0; i < 4; i++) buf_free(g, all[i]);
}

BG_GPU_TEST(gpu_gap_over_splits_matches_reference)
{
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 33));
    if (tc->failures) return;
    for (int half = 0; half < 2; half++) {
        gap_case(tc, &g, 2, 37 * 37, 2, 43, half);
        gap_case(tc, &g, 513, 4, 1, 86, half);
        gap_case(tc, &g, 1, 28 * 28, 4, 24, half);
    }
    bg_alloc_trim(&g, BG_CUDA);
    bg_ctx_free(&g);
}
#endif
