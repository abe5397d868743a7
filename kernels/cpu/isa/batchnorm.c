/* batchnorm2d loops of the fast CPU backend, one copy per instruction set
 * (kernels/cpu/isa.h). x, y, dy, dx are {rows, c} row-major (NHWC with
 * rows = N*H*W): every loop walks a row's c contiguous channels, which is
 * what gets vectorised, against per-channel vectors of c floats. The callers
 * in ops/fast/batchnorm.c cut the rows into chunks (kernels/cpu/rows.h).
 *
 * The sums accumulate in float over blocks of BG_ROW_BLOCK rows and each
 * block's sum is then added into double. A float sum of 32 terms is off by
 * at most 31 roundings of 2^-24 relative to the sum of the terms' magnitudes
 * (about 2e-6; about 3e-7 in practice, as the roundings are random), and
 * the double sums over blocks add nothing measurable at any batch size; the
 * reference sums everything in double, and the results agree to far below
 * the f32 rounding of the outputs' consumers (checked by cpu-fast at nmse
 * 1e-10). Channels are processed in tiles of at most TILE so the block
 * accumulators stay in L1 for any c. */
#include "../isa.h"
#include "../rows.h"

#define TILE 256

/* Statistics of one chunk: s1[k] = sum_r (x[r,k] - shift[k]),
 * s2[k] = sum_r (x[r,k] - shift[k])^2. Shifting by a value near the mean
 * (the caller's: the first block's mean) keeps the one-pass variance
 * s2/M - (s1/M)^2 free of the cancellation that sum x^2 - M mean^2 has. */
void BG_ISA_FN(bg_k_bn_stats)(const float *restrict x, int64_t rows, int64_t c, const float *restrict shift,
                              double *restrict s1, double *restrict s2)
{
    for (int64_t c0 = 0; c0 < c; c0 += TILE) {
        const int64_t w = c - c0 < TILE ? c - c0 : TILE;
        const float *restrict sh = shift + c0;
        double *restrict d1 = s1 + c0, *restrict d2 = s2 + c0;
        for (int64_t k = 0; k < w; k++) d1[k] = 0, d2[k] = 0;
        for (int64_t r0 = 0; r0 < rows; r0 += BG_ROW_BLOCK) {
            const int64_t r1 = rows - r0 < BG_ROW_BLOCK ? rows : r0 + BG_ROW_BLOCK;
            float a1[TILE], a2[TILE];
            for (int64_t k = 0; k < w; k++) a1[k] = 0, a2[k] = 0;
            for (int64_t r = r0; r < r1; r++) {
                const float *restrict xr = x + r * c + c0;
#pragma omp simd
                for (int64_t k = 0; k < w; k++) {
                    float d = xr[k] - sh[k];
                    a1[k] += d;
                    a2[k] += d * d;
                }
            }
#pragma omp simd
            for (int64_t k = 0; k < w; k++) d1[k] += (double)a1[k], d2[k] += (double)a2[k];
        }
    }
}

/* y = (x - mean) * scale + beta, then relu if asked (NaN -> 0, as the
 * reference's !(v > 0)). Centring first keeps the rounding relative to the
 * output, not to mean * scale. */
void BG_ISA_FN(bg_k_bn_apply)(const float *restrict x, float *restrict y, int64_t rows, int64_t c,
                              const float *restrict mean, const float *restrict scale, const float *restrict beta,
                              int relu)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * c;
        float *restrict yr = y + r * c;
        if (relu) {
#pragma omp simd
            for (int64_t k = 0; k < c; k++) {
                float v = (xr[k] - mean[k]) * scale[k] + beta[k];
                yr[k] = v > 0.0f ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int64_t k = 0; k < c; k++) yr[k] = (xr[k] - mean[k]) * scale[k] + beta[k];
        }
    }
}

/* Backward sums of one chunk, with g = dy (0 where the fused relu's output
 * y is not > 0; mask NULL: no relu): s1[k] = sum_r g, s2[k] = sum_r g (x - mean). */
void BG_ISA_FN(bg_k_bn_bwd_sums)(const float *restrict x, const float *restrict dy, const float *restrict mask,
                                 int64_t rows, int64_t c, const float *restrict mean, double *restrict s1,
                                 double *restrict s2)
{
    for (int64_t c0 = 0; c0 < c; c0 += TILE) {
        const int64_t w = c - c0 < TILE ? c - c0 : TILE;
        const float *restrict mu = mean + c0;
        double *restrict d1 = s1 + c0, *restrict d2 = s2 + c0;
        for (int64_t k = 0; k < w; k++) d1[k] = 0, d2[k] = 0;
        for (int64_t r0 = 0; r0 < rows; r0 += BG_ROW_BLOCK) {
            const int64_t r1 = rows - r0 < BG_ROW_BLOCK ? rows : r0 + BG_ROW_BLOCK;
            float a1[TILE], a2[TILE];
            for (int64_t k = 0; k < w; k++) a1[k] = 0, a2[k] = 0;
            for (int64_t r = r0; r < r1; r++) {
                const int64_t o = r * c + c0;
                const float *restrict xr = x + o, *restrict gr = dy + o;
                if (mask) {
                    const float *restrict yr = mask + o;
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) {
                        float g = yr[k] > 0.0f ? gr[k] : 0.0f;
                        a1[k] += g;
                        a2[k] += g * (xr[k] - mu[k]);
                    }
                } else {
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) {
                        a1[k] += gr[k];
                        a2[k] += gr[k] * (xr[k] - mu[k]);
                    }
                }
            }
#pragma omp simd
            for (int64_t k = 0; k < w; k++) d1[k] += (double)a1[k], d2[k] += (double)a2[k];
        }
    }
}

/* dx += a g + b (x - mean) + e, per channel (g as in bg_k_bn_bwd_sums):
 * the training gradient gamma invstd (g - mean(g) - xh mean(g xh)) with the
 * per-channel constants folded by the caller; eval has b = e = 0. store: dx
 * holds garbage and gets 0.0f + the term (bg_node.grad_fresh); the term's
 * last operation is an add either way, so no multiply contracts into the
 * accumulation and both forms round the term alike. */
void BG_ISA_FN(bg_k_bn_dx)(const float *restrict x, const float *restrict dy, const float *restrict mask,
                           float *restrict dx, int64_t rows, int64_t c, const float *restrict mean,
                           const float *restrict a, const float *restrict b, const float *restrict e, int store)
{
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = r * c;
        const float *restrict xr = x + o, *restrict gr = dy + o;
        float *restrict dr = dx + o;
        if (mask) {
            const float *restrict yr = mask + o;
            if (store) {
#pragma omp simd
                for (int64_t k = 0; k < c; k++) {
                    float g = yr[k] > 0.0f ? gr[k] : 0.0f;
                    dr[k] = 0.0f + (a[k] * g + b[k] * (xr[k] - mean[k]) + e[k]);
                }
            } else {
#pragma omp simd
                for (int64_t k = 0; k < c; k++) {
                    float g = yr[k] > 0.0f ? gr[k] : 0.0f;
                    dr[k] += a[k] * g + b[k] * (xr[k] - mean[k]) + e[k];
                }
            }
        } else if (store) {
#pragma omp simd
            for (int64_t k = 0; k < c; k++) dr[k] = 0.0f + (a[k] * gr[k] + b[k] * (xr[k] - mean[k]) + e[k]);
        } else {
#pragma omp simd
            for (int64_t k = 0; k < c; k++) dr[k] += a[k] * gr[k] + b[k] * (xr[k] - mean[k]) + e[k];
        }
    }
}
