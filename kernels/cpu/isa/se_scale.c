/* se_scale loops of the fast CPU backend, one copy per instruction set
 * (kernels/cpu/isa.h): y = act(x * s + res) over x {N, P, C} (P = H*W rows
 * of C contiguous channels per image) with the gate s {N, C}. Every loop
 * walks a row's channels (vectorised) against the image's gate row; the
 * reference's backward instead walks each gate element's P values with
 * stride C, dividing the flat index to find them. The callers are in
 * kernels/cpu/se_scale.c. */
#include "../isa.h"
#include "../rows.h"

#define TILE 256

/* Rows [r0, r1) of the flattened N*P rows; res may be NULL. */
void BG_ISA_FN(bg_k_se_fwd)(const float *restrict x, const float *restrict s, const float *restrict res,
                            float *restrict y, int64_t r0, int64_t r1, int64_t p, int64_t c, int relu)
{
    for (int64_t r = r0; r < r1; r++) {
        const int64_t o = r * c;
        const float *restrict xr = x + o, *restrict sr = s + (r / p) * c;
        float *restrict yr = y + o;
        if (res && relu) {
            const float *restrict rr = res + o;
#pragma omp simd
            for (int64_t k = 0; k < c; k++) {
                float v = xr[k] * sr[k] + rr[k];
                yr[k] = v > 0.0f ? v : 0.0f;
            }
        } else if (res) {
            const float *restrict rr = res + o;
#pragma omp simd
            for (int64_t k = 0; k < c; k++) yr[k] = xr[k] * sr[k] + rr[k];
        } else if (relu) {
#pragma omp simd
            for (int64_t k = 0; k < c; k++) {
                float v = xr[k] * sr[k];
                yr[k] = v > 0.0f ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int64_t k = 0; k < c; k++) yr[k] = xr[k] * sr[k];
        }
    }
}

/* Backward of one image (x, y, dy, dx, dres: its P rows; s, ds: its gate
 * row), in one pass: with g = dy (0 where y is not > 0 under relu; mask
 * NULL: no relu), dx += g s, dres += g, ds += sum_rows g x. Any of dx, ds,
 * dres may be NULL. ds sums in float over blocks of BG_ROW_BLOCK rows, then
 * in double (see kernels/cpu/isa/batchnorm.c for why that is enough). */
void BG_ISA_FN(bg_k_se_bwd_image)(const float *restrict x, const float *restrict s, const float *restrict mask,
                                  const float *restrict dy, float *restrict dx, float *restrict ds,
                                  float *restrict dres, int64_t p, int64_t c)
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
                const int64_t o = r * c + c0;
                float g[TILE];
                const float *restrict gr = dy + o;
                if (mask) {
                    const float *restrict yr = mask + o;
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) g[k] = yr[k] > 0.0f ? gr[k] : 0.0f;
                } else {
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) g[k] = gr[k];
                }
                if (ds) {
                    const float *restrict xr = x + o;
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) acc[k] += g[k] * xr[k];
                }
                if (dx) {
                    float *restrict dr = dx + o;
                    const float *restrict sr = s + c0;
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) dr[k] += g[k] * sr[k];
                }
                if (dres) {
                    float *restrict dr = dres + o;
#pragma omp simd
                    for (int64_t k = 0; k < w; k++) dr[k] += g[k];
                }
            }
#pragma omp simd
            for (int64_t k = 0; k < w; k++) tot[k] += (double)acc[k];
        }
        if (ds)
            for (int64_t k = 0; k < w; k++) ds[c0 + k] = (float)((double)ds[c0 + k] + tot[k]);
    }
}
