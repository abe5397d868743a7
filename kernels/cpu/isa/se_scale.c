/* se_scale loops of the fast CPU backend, one copy per instruction set
 * (kernels/cpu/isa.h): y = act(x * s + res) over x {N, P, C} (P = H*W rows
 * of C contiguous channels per image) with the gate s {N, C}. Every loop
 * walks a row's channels (vectorised) against the image's gate row; the
 * reference's backward instead walks each gate element's P values with
 * stride C, dividing the flat index to find them. The callers are in
 * ops/fast/se_scale.c.
 *
 * The fused row must give the same bits as the unfused fast ops it
 * replaces (mul, add, relu; tests/test_ops_fused.c compares whole models),
 * so the rounding here is theirs: the product rounded before the residual
 * is added, and the gate gradient summed the way ops/fast/binary.c sums
 * mul's b gradient. */
#include "../isa.h"
#include "../rows.h"

#define TILE 256

/* Rows [r0, r1) of the flattened N*P rows; res may be NULL. The product is
 * stored and the residual added in a second loop over the row (still in
 * L1): one expression would be contracted into an FMA, which rounds once
 * where mul then add round twice. */
void BG_ISA_FN(bg_k_se_fwd)(const float *restrict x, const float *restrict s, const float *restrict res,
                            float *restrict y, int64_t r0, int64_t r1, int64_t p, int64_t c, int relu)
{
    for (int64_t r = r0; r < r1; r++) {
        const int64_t o = r * c;
        const float *restrict xr = x + o, *restrict sr = s + (r / p) * c;
        float *restrict yr = y + o;
#pragma omp simd
        for (int64_t k = 0; k < c; k++) yr[k] = xr[k] * sr[k];
        if (res) {
            const float *restrict rr = res + o;
#pragma omp simd
            for (int64_t k = 0; k < c; k++) yr[k] = yr[k] + rr[k];
        }
        if (relu) {
#pragma omp simd
            for (int64_t k = 0; k < c; k++) yr[k] = yr[k] > 0.0f ? yr[k] : 0.0f;
        }
    }
}

/* Backward of one image (x, y, dy, dx, dres: its P rows; s, ds: its gate
 * row), in one pass: with g = dy (0 where y is not > 0 under relu; mask
 * NULL: no relu), dx += g s, dres += g, ds += sum_rows g x. Any of dx, ds,
 * dres may be NULL. ds sums in float over blocks of BG_ROW_BLOCK rows, the
 * blocks in double over chunks of `per` rows (bg_row_chunk_rows(c)), the
 * chunks in double in order: ops/fast/binary.c's order for mul's b
 * gradient (see kernels/cpu/isa/batchnorm.c for why float blocks are
 * accurate enough). store bit 0 (dx) / 2 (dres): that gradient holds
 * garbage and gets 0.0f + the term (bg_node.grad_fresh), which contracts as
 * the accumulation does (fma(g, s, +0) with FMA, g s + 0 without): the bits
 * of adding into zeros. */
void BG_ISA_FN(bg_k_se_bwd_image)(const float *restrict x, const float *restrict s, const float *restrict mask,
                                  const float *restrict dy, float *restrict dx, float *restrict ds,
                                  float *restrict dres, int64_t p, int64_t c, int64_t per, int store)
{
    for (int64_t c0 = 0; c0 < c; c0 += TILE) {
        const int64_t w = c - c0 < TILE ? c - c0 : TILE;
        double tot[TILE], part[TILE];
        for (int64_t k = 0; k < w; k++) tot[k] = 0;
        for (int64_t q0 = 0; q0 < p; q0 += per) {
            const int64_t q1 = p - q0 < per ? p : q0 + per;
            for (int64_t k = 0; k < w; k++) part[k] = 0;
            for (int64_t r0 = q0; r0 < q1; r0 += BG_ROW_BLOCK) {
                const int64_t r1 = q1 - r0 < BG_ROW_BLOCK ? q1 : r0 + BG_ROW_BLOCK;
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
                    if (dx && (store & 1)) {
                        float *restrict dr = dx + o;
                        const float *restrict sr = s + c0;
#pragma omp simd
                        for (int64_t k = 0; k < w; k++) dr[k] = 0.0f + g[k] * sr[k];
                    } else if (dx) {
                        float *restrict dr = dx + o;
                        const float *restrict sr = s + c0;
#pragma omp simd
                        for (int64_t k = 0; k < w; k++) dr[k] += g[k] * sr[k];
                    }
                    if (dres && (store & 4)) {
                        float *restrict dr = dres + o;
#pragma omp simd
                        for (int64_t k = 0; k < w; k++) dr[k] = 0.0f + g[k];
                    } else if (dres) {
                        float *restrict dr = dres + o;
#pragma omp simd
                        for (int64_t k = 0; k < w; k++) dr[k] += g[k];
                    }
                }
#pragma omp simd
                for (int64_t k = 0; k < w; k++) part[k] += (double)acc[k];
            }
            for (int64_t k = 0; k < w; k++) tot[k] += part[k];
        }
        if (ds)
            for (int64_t k = 0; k < w; k++) ds[c0 + k] = (float)((double)ds[c0 + k] + tot[k]);
    }
}
