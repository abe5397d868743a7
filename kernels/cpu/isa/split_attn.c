/* split_attn loops of the fast CPU backend, one copy per instruction set
 * (kernels/cpu/isa.h). x {N, P, r*C} (P = H*W rows; the radix splits are
 * contiguous blocks of C channels), gate a {N, r*C}, y {N, P, C}. The
 * reference finds dy's channel of every x element by j % C; here the loops
 * run over the splits s and then over C contiguous channels. Callers:
 * ops/fast/split_attn.c. */
#include "../isa.h"
#include "../rows.h"

#define TILE 256

/* y = sum_s x[., s] * a[s] over rows [r0, r1) of the flattened N*P rows:
 * each product rounded to f32, the sum in double in split order, as the
 * unfused mul then split_sum do (the fused row must give their bits;
 * tests/test_ops_fused.c). The conversion to double keeps the compiler
 * from contracting product and sum into an FMA. */
void BG_ISA_FN(bg_k_sa_fwd)(const float *restrict x, const float *restrict a, float *restrict y, int64_t r0,
                            int64_t r1, int64_t p, int64_t r, int64_t c)
{
    const int64_t rc = r * c;
    for (int64_t row = r0; row < r1; row++) {
        const float *restrict xr = x + row * rc, *restrict ar = a + (row / p) * rc;
        float *restrict yr = y + row * c;
        for (int64_t c0 = 0; c0 < c; c0 += TILE) {
            const int64_t w = c - c0 < TILE ? c - c0 : TILE;
            double acc[TILE];
            for (int64_t k = 0; k < w; k++) acc[k] = 0;
            for (int64_t s = 0; s < r; s++) {
                const float *restrict xs = xr + s * c + c0, *restrict as = ar + s * c + c0;
#pragma omp simd
                for (int64_t k = 0; k < w; k++) acc[k] += (double)(xs[k] * as[k]);
            }
#pragma omp simd
            for (int64_t k = 0; k < w; k++) yr[c0 + k] = (float)acc[k];
        }
    }
}

/* Backward of one image (x, dx: its P rows of r*C; dy: its P rows of C;
 * a, da: its gate row): dx[., s] += dy a[s], da[s] += sum_rows dy x[., s].
 * dx or da may be NULL. da sums in float over blocks of BG_ROW_BLOCK rows,
 * the blocks in double over chunks of `per` rows (bg_row_chunk_rows(r*C)),
 * the chunks in double in order: ops/fast/binary.c's order for the
 * unfused mul's b gradient, so fusing changes no bits (and see
 * kernels/cpu/isa/batchnorm.c for why float blocks are accurate enough). */
void BG_ISA_FN(bg_k_sa_bwd_image)(const float *restrict x, const float *restrict a, const float *restrict dy,
                                  float *restrict dx, float *restrict da, int64_t p, int64_t r, int64_t c, int64_t per)
{
    const int64_t rc = r * c;
    for (int64_t s = 0; s < r; s++)
        for (int64_t c0 = 0; c0 < c; c0 += TILE) {
            const int64_t w = c - c0 < TILE ? c - c0 : TILE, j0 = s * c + c0;
            const float *restrict as = a + j0;
            double tot[TILE], part[TILE];
            for (int64_t k = 0; k < w; k++) tot[k] = 0;
            for (int64_t q0 = 0; q0 < p; q0 += per) {
                const int64_t q1 = p - q0 < per ? p : q0 + per;
                for (int64_t k = 0; k < w; k++) part[k] = 0;
                for (int64_t b0 = q0; b0 < q1; b0 += BG_ROW_BLOCK) {
                    const int64_t b1 = q1 - b0 < BG_ROW_BLOCK ? q1 : b0 + BG_ROW_BLOCK;
                    float acc[TILE];
                    for (int64_t k = 0; k < w; k++) acc[k] = 0;
                    for (int64_t q = b0; q < b1; q++) {
                        const float *restrict gr = dy + q * c + c0;
                        if (da) {
                            const float *restrict xr = x + q * rc + j0;
#pragma omp simd
                            for (int64_t k = 0; k < w; k++) acc[k] += gr[k] * xr[k];
                        }
                        if (dx) {
                            float *restrict dr = dx + q * rc + j0;
#pragma omp simd
                            for (int64_t k = 0; k < w; k++) dr[k] += gr[k] * as[k];
                        }
                    }
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) part[k] += (double)acc[k];
                }
                for (int64_t k = 0; k < w; k++) tot[k] += part[k];
            }
            if (da)
                for (int64_t k = 0; k < w; k++) da[j0 + k] = (float)((double)da[j0 + k] + tot[k]);
        }
}
