/* global_avgpool loops of the fast CPU backend, one copy per instruction
 * set (kernels/cpu/isa.h): one image's P rows of C contiguous channels.
 * Callers: kernels/cpu/pool.c. */
#include "../isa.h"
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
