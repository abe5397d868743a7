/* CUDA launchers for split_sum (ops/split_sum.c), implemented in
 * kernels/split_sum.cu. x is {rows, r*c} and y {rows, c}, channels last:
 *     y[p, k] = sum_i x[p, i*c + k]        (forward)
 *     dx[p, i*c + k] += dy[p, k]           (backward, adds as the op contract says)
 * `half` selects the element type: 0 = f32, 1 = f16 (f16 storage, f32 math).
 * The caller checks the launch with bg_cuda_check_launch. */
#ifndef BG_KERNELS_SPLIT_SUM_H
#define BG_KERNELS_SPLIT_SUM_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void bg_cuda_split_sum_fwd(const void *x, void *y, int64_t rows, int64_t r, int64_t c, int half, void *stream);
void bg_cuda_split_sum_bwd(const void *dy, void *dx, int64_t rows, int64_t r, int64_t c, int half, void *stream);

#ifdef __cplusplus
}
#endif
#endif
