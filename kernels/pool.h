/* CUDA pooling over NHWC activations, implemented in kernels/pool.cu: global
 * average pooling (optionally summed over `r` channel splits, the squeeze of
 * ResNeSt's split attention fused with split_sum), avgpool2d and maxpool2d.
 * Semantics are those of ops/pool.c (PyTorch's, dilation 1); the geometry is
 * computed by the op and passed in. `half`: 0 = f32, 1 = f16 storage (f32
 * math). Backward launchers ADD into dx. The caller checks the launch.
 *
 * Determinism: no atomics. The backward passes gather: one thread per input
 * element sums the gradients of the windows that cover it, in increasing
 * output order, which is also the order in which the CPU reference scatters
 * them, so f32 results match the CPU bit for bit. */
#ifndef BG_KERNELS_POOL_H
#define BG_KERNELS_POOL_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n, h, w, c, ho, wo;
    int64_t kh, kw, sh, sw, ph, pw;
    int ceil_mode, include_pad;
} bg_pool_geom;

/* x {n, p, r*c} -> y {n, c}: y[n,k] = (1/p) sum_q sum_s x[n, q, s*c + k].
 * r = 1 is plain global average pooling over p = H*W positions. */
void bg_cuda_gap_fwd(const void *x, void *y, int64_t n, int64_t p, int64_t r, int64_t c, int half, void *stream);
/* dx[n, q, s*c + k] += dy[n, k] / p (every split gets the same gradient). */
void bg_cuda_gap_bwd(const void *dy, void *dx, int64_t n, int64_t p, int64_t r, int64_t c, int half, void *stream);

void bg_cuda_avgpool_fwd(const void *x, void *y, const bg_pool_geom *g, int half, void *stream);
void bg_cuda_avgpool_bwd(const void *dy, void *dx, const bg_pool_geom *g, int half, void *stream);
/* argmax: i32 {n, ho, wo, c}, iy*w + ix of each maximum (first in window
 * order; NaN wins, the last NaN in window order, as the CPU reference). */
void bg_cuda_maxpool_fwd(const void *x, void *y, int32_t *argmax, const bg_pool_geom *g, int half, void *stream);
void bg_cuda_maxpool_bwd(const void *dy, const int32_t *argmax, void *dx, const bg_pool_geom *g, int half,
                         void *stream);

#ifdef __cplusplus
}
#endif
#endif
