/* CUDA softmax cross-entropy with label smoothing (the op row softmax_xent,
 * ops/loss.c), implemented in kernels/loss.cu. Logits {n, k} f32 or f16
 * (`half`); labels i32; the saved probabilities, the per-row losses and the
 * loss itself are f32 whatever the logits (loss in FP32 under mixed
 * precision). Per row: lse = logsumexp(x) (max-shifted),
 *     loss_i = lse - ((1-eps) x[label] + eps/k sum_j x_j),
 * and the output is the mean over rows: per-row losses land in row_loss and
 * one block sums them in a fixed order (deterministic, no atomics).
 *
 * Labels are not checked on the host (that would need a synchronising copy,
 * and the step may be captured into a CUDA graph): a label outside [0, k)
 * makes its row's loss and gradient NaN, so the loss reports it.
 *
 * Backward reads d(loss) from device memory (dloss, f32: it may be the loss
 * scale under mixed precision) and ADDS dloss/n * (p - target) into dx. */
#ifndef BG_KERNELS_LOSS_H
#define BG_KERNELS_LOSS_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void bg_cuda_xent_fwd(const void *logits, const int32_t *labels, float *probs, float *row_loss, float *loss, int64_t n,
                      int64_t k, float label_smoothing, int half, void *stream);
void bg_cuda_xent_bwd(const float *probs, const int32_t *labels, const float *dloss, void *dx, int64_t n, int64_t k,
                      float label_smoothing, int half, void *stream);

#ifdef __cplusplus
}
#endif
#endif
