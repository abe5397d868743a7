/* Pooling loops of the fast CPU backend, one copy per instruction set
 * (kernels/cpu/isa.h): rows of C contiguous channels (NHWC). Callers:
 * ops/fast/pool.c. */
#include "../isa.h"
#include <math.h>
#include "../rows.h"

#define TILE 256

/* y[k] = sum_rows x[., k] / p, the sum in float over blocks of BG_ROW_BLOCK
 * rows, then in double (the reference sums all P rows in float, so this is
 * the more accurate of the two). */
void BG_ISA_FN(bg_k_gap_fwd_image)(const float *restrict x, float *restrict y, int64_t p, int64_t c)
{
    for (int64_t c0 = 0; c0 < c; c0 += TILE) {
        const int64_t w = c - c0 < TILE ? c - c0 : TILE;
        double tot[TILE];
        for (int64_t k = 0; k < w; k++) tot[k] = 0;
        for (int64_t r0 = 0; r0 < p; r0 += BG_ROW_BLOCK) {
            const int64_t r1 = p - r0 < BG_ROW_BLOCK ? p : r0 + BG_ROW_BLOCK;
            float acc[TILE];
            for (int64_t k = 0; k < w; k++) acc[k] = 0;
            for (int64_t r = r0; r < r1; r++) {
                const float *restrict xr = x + r * c + c0;
#pragma omp simd
                for (int64_t k = 0; k < w; k++) acc[k] += xr[k];
            }
#pragma omp simd
            for (int64_t k = 0; k < w; k++) tot[k] += (double)acc[k];
        }
        for (int64_t k = 0; k < w; k++) y[c0 + k] = (float)(tot[k] / (double)p);
    }
}

/* dx[r, k] += g[k] for every row (g = dy / P, worked out once by the caller). */
void BG_ISA_FN(bg_k_gap_bwd_image)(const float *restrict g, float *restrict dx, int64_t p, int64_t c)
{
    for (int64_t r = 0; r < p; r++) {
        float *restrict dr = dx + r * c;
#pragma omp simd
        for (int64_t k = 0; k < c; k++) dr[k] += g[k];
    }
}

/* ---- avgpool2d / maxpool2d: one output pixel, vectorised over C ----
 * img is the image's {H, W, C} input (or input gradient); the window is
 * rows [y0, y1) and columns [x0, x1) of it, non-empty, in real coordinates. */

/* y[k] = (the window's sum, in window order) / div: the reference's sum
 * order and division, so the same bits. */
void BG_ISA_FN(bg_k_avgpool_pixel)(const float *restrict img, int64_t w, int64_t y0, int64_t y1, int64_t x0,
                                   int64_t x1, float div, float *restrict y, int64_t c)
{
#pragma omp simd
    for (int64_t k = 0; k < c; k++) y[k] = 0;
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
            const float *restrict xr = img + (iy * w + ix) * c;
#pragma omp simd
            for (int64_t k = 0; k < c; k++) y[k] += xr[k];
        }
#pragma omp simd
    for (int64_t k = 0; k < c; k++) y[k] /= div;
}

/* The window's input gradient += dy / div (the reference's rounding, taken
 * once per channel instead of once per window element). g: c floats of
 * scratch. */
void BG_ISA_FN(bg_k_avgpool_pixel_bwd)(float *restrict img, int64_t w, int64_t y0, int64_t y1, int64_t x0,
                                       int64_t x1, float div, const float *restrict dy, float *restrict g, int64_t c)
{
#pragma omp simd
    for (int64_t k = 0; k < c; k++) g[k] = dy[k] / div;
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
            float *restrict dr = img + (iy * w + ix) * c;
#pragma omp simd
            for (int64_t k = 0; k < c; k++) dr[k] += g[k];
        }
}

/* The window's maximum per channel and where it is (iy*W + ix): the first
 * maximum in window order wins and NaN wins, as the reference; the -inf
 * start points at the window's first pixel. */
void BG_ISA_FN(bg_k_maxpool_pixel)(const float *restrict img, int64_t w, int64_t y0, int64_t y1, int64_t x0,
                                   int64_t x1, float *restrict y, int32_t *restrict arg, int64_t c)
{
    const int32_t first = (int32_t)(y0 * w + x0);
#pragma omp simd
    for (int64_t k = 0; k < c; k++) y[k] = -INFINITY, arg[k] = first;
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
            const float *restrict xr = img + (iy * w + ix) * c;
            const int32_t at = (int32_t)(iy * w + ix);
#pragma omp simd
            for (int64_t k = 0; k < c; k++) {
                const float v = xr[k];
                const int take = v > y[k] || v != v;
                y[k] = take ? v : y[k];
                arg[k] = take ? at : arg[k];
            }
        }
}
