/* CUDA kernels of the attention blocks, implemented in kernels/attention.cu:
 * the radix softmax of split attention (the op row radix_softmax), the
 * squeeze-excitation channel scale, and the attention-weighted sum of split
 * attention. `half`: 0 = f32, 1 = f16 storage (f32 math). Backward launchers
 * ADD into their gradient outputs; NULL means "not wanted". No atomics: every
 * reduction runs in a fixed order (see kernels/reduce.cuh).
 *
 * Squeeze-excitation, with x {n, p, c} (p = H*W) and the gate s {n, c}:
 *   forward   g = bg_cuda_gap_fwd(x)                 (kernels/pool.h; reads x)
 *             s = sigmoid(fc2(relu(fc1(g))))         (GEMM + elementwise)
 *             y = act(x * s + res)                   bg_cuda_se_scale_fwd (reads x, res; writes y)
 *   backward  ds += sum_p dz * x, dres += dz         bg_cuda_se_scale_bwd_reduce (reads dy, y, x)
 *             dgap = fc chain backward of ds         (GEMM + elementwise)
 *             dx += dz * s + dgap / p                bg_cuda_se_scale_bwd_dx (reads dy, y, dx; writes dx)
 *   with dz = dy, masked by y > 0 when act is relu. Against the unfused ops
 *   (mul, add, relu, global_avgpool) this saves, per step, one write and two
 *   reads of the block output in the forward (the separate add and relu) and
 *   one read-modify-write of dx in the backward (GAP's and mul's dx merged).
 *
 * Split attention (ResNeSt) with radix r, x {n, p, r*c} (the radix splits as
 * contiguous channel blocks) and the gate a {n, r*c} from radix_softmax
 * (radix-major):
 *   y[n,q,k] = sum_s x[n,q,s*c+k] * a[n,s*c+k]       bg_cuda_splat_fwd
 *   the fusion of mul (broadcast) and split_sum: x is read once and the
 *   r-times-larger product is never written. Its squeeze is bg_cuda_gap_fwd
 *   with r splits (GAP and split_sum in one pass). */
#ifndef BG_KERNELS_ATTENTION_H
#define BG_KERNELS_ATTENTION_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* radix_softmax with radix > 1 over rows of radix*card*rest channels:
 *   y[i, (r*card + k)*rest + j] = softmax_r x[i, (k*radix + r)*rest + j]
 * (radix 1 is a sigmoid: kernels/elementwise.h). Backward through the saved
 * output: dx_r += y_r * (dy_r - sum_s dy_s y_s). */
void bg_cuda_radix_softmax_fwd(const void *x, void *y, int64_t rows, int64_t radix, int64_t card, int64_t rest,
                               int half, void *stream);
void bg_cuda_radix_softmax_bwd(const void *y, const void *dy, void *dx, int64_t rows, int64_t radix, int64_t card,
                               int64_t rest, int half, void *stream);

/* y = act(x * s[n, k] + res) over x {n, p, c}; res may be NULL; relu selects act. */
void bg_cuda_se_scale_fwd(const void *x, const void *s, const void *res, void *y, int64_t n, int64_t p, int64_t c,
                          int relu, int half, void *stream);
/* ds[n, k] += sum_q dz * x; dres += dz (dres may be NULL). y is read only when relu. */
void bg_cuda_se_scale_bwd_reduce(const void *x, const void *y, const void *dy, void *ds, void *dres, int64_t n,
                                 int64_t p, int64_t c, int relu, int half, void *stream);
/* dx += dz * s[n, k] + dgap[n, k] / p (dgap may be NULL). */
void bg_cuda_se_scale_bwd_dx(const void *dy, const void *y, const void *s, const void *dgap, void *dx, int64_t n,
                             int64_t p, int64_t c, int relu, int half, void *stream);

/* Split attention's weighted sum over x {n, p, r*c}, a {n, r*c} -> y {n, p, c}. */
void bg_cuda_splat_fwd(const void *x, const void *a, void *y, int64_t n, int64_t p, int64_t r, int64_t c, int half,
                       void *stream);
/* dx[n,q,s*c+k] += dy[n,q,k] * a[n,s*c+k]; da[n,s*c+k] += sum_q dy[n,q,k] * x[n,q,s*c+k]. */
void bg_cuda_splat_bwd(const void *x, const void *a, const void *dy, void *dx, void *da, int64_t n, int64_t p,
                       int64_t r, int64_t c, int half, void *stream);

#ifdef __cplusplus
}
#endif
#endif
