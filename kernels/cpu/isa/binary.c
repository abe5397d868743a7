/* add / mul loops of the fast CPU backend, one copy per instruction set
 * (kernels/cpu/isa.h). a, y, dy are {rows, w} row-major; row r pairs with
 * row r / g of b, which has w elements (bstep 1) or one broadcast along the
 * row (bstep 0). The callers (ops/fast/binary.c) cut the rows into
 * chunks and check that every shape they pass has this form. */
#include "../isa.h"
#include "../rows.h"

#define TILE 256

/* y = a + b or a * b over rows [r0, r1). y may be a (the memory planner's
 * in-place add): a and y carry no restrict; each element is read before it
 * is written, at the same index. */
void BG_ISA_FN(bg_k_binary_fwd)(const float *a, const float *restrict b, float *y, int64_t r0, int64_t r1, int64_t w,
                                int64_t g, int bstep, int mul)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *ar = a + r * w, *restrict br = b + (r / g) * (bstep ? w : 1);
        float *yr = y + r * w;
        if (bstep && mul) {
#pragma omp simd
            for (int64_t k = 0; k < w; k++) yr[k] = ar[k] * br[k];
        } else if (bstep) {
#pragma omp simd
            for (int64_t k = 0; k < w; k++) yr[k] = ar[k] + br[k];
        } else {
            const float v = br[0];
            if (mul) {
#pragma omp simd
                for (int64_t k = 0; k < w; k++) yr[k] = ar[k] * v;
            } else {
#pragma omp simd
                for (int64_t k = 0; k < w; k++) yr[k] = ar[k] + v;
            }
        }
    }
}

/* da += dy (add) or dy * b (mul) over rows [r0, r1). store (add only): da
 * holds garbage and gets 0.0f + dy (bg_node.grad_fresh). */
void BG_ISA_FN(bg_k_binary_bwd_a)(const float *restrict dy, const float *restrict b, float *restrict da, int64_t r0,
                                  int64_t r1, int64_t w, int64_t g, int bstep, int mul, int store)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *restrict gr = dy + r * w;
        float *restrict dr = da + r * w;
        if (!mul && store) {
#pragma omp simd
            for (int64_t k = 0; k < w; k++) dr[k] = 0.0f + gr[k];
            continue;
        }
        if (!mul) { /* b is not read (it may be NULL): the planner was told so */
#pragma omp simd
            for (int64_t k = 0; k < w; k++) dr[k] += gr[k];
            continue;
        }
        const float *restrict br = b + (r / g) * (bstep ? w : 1);
        if (bstep) {
#pragma omp simd
            for (int64_t k = 0; k < w; k++) dr[k] += gr[k] * br[k];
        } else {
            const float v = br[0];
#pragma omp simd
            for (int64_t k = 0; k < w; k++) dr[k] += gr[k] * v;
        }
    }
}

/* b's gradient where b has a's shape: db += dy or dy * a over n elements
 * (a is read only by mul and may be NULL for add); store as in bwd_a. */
void BG_ISA_FN(bg_k_binary_bwd_b_same)(const float *restrict dy, const float *restrict a, float *restrict db,
                                       int64_t n, int mul, int store)
{
    if (!mul && store) { /* db holds garbage (bg_node.grad_fresh) */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) db[i] = 0.0f + dy[i];
    } else if (mul) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) db[i] += dy[i] * a[i];
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) db[i] += dy[i];
    }
}

/* Column sums of `rows` rows: out[k] = sum_r dy[r,k] (add; a may be NULL)
 * or dy[r,k] a[r,k] (mul), in float over blocks of BG_ROW_BLOCK rows, then in double (see
 * kernels/cpu/isa/batchnorm.c for why that is enough). */
void BG_ISA_FN(bg_k_binary_colsum)(const float *restrict dy, const float *restrict a, int64_t rows, int64_t w,
                                   int mul, double *restrict out)
{
    for (int64_t c0 = 0; c0 < w; c0 += TILE) {
        const int64_t n = w - c0 < TILE ? w - c0 : TILE;
        double *restrict o = out + c0;
        for (int64_t k = 0; k < n; k++) o[k] = 0;
        for (int64_t r0 = 0; r0 < rows; r0 += BG_ROW_BLOCK) {
            const int64_t r1 = rows - r0 < BG_ROW_BLOCK ? rows : r0 + BG_ROW_BLOCK;
            float acc[TILE];
            for (int64_t k = 0; k < n; k++) acc[k] = 0;
            for (int64_t r = r0; r < r1; r++) {
                const float *restrict gr = dy + r * w + c0;
                if (mul) {
                    const float *restrict ar = a + r * w + c0;
#pragma omp simd
                    for (int64_t k = 0; k < n; k++) acc[k] += gr[k] * ar[k];
                } else {
#pragma omp simd
                    for (int64_t k = 0; k < n; k++) acc[k] += gr[k];
                }
            }
#pragma omp simd
            for (int64_t k = 0; k < n; k++) o[k] += (double)acc[k];
        }
    }
}
