/* Mixed-precision helpers on CUDA, implemented in kernels/amp.cu. The loss
 * scaler's state machine is plain C (train/loss_scale.c); the inf/NaN check
 * of the gradients is bg_cuda_nonfinite_check (kernels/optim.h), which shares
 * the optimizer's tensor table. */
#ifndef BG_KERNELS_AMP_H
#define BG_KERNELS_AMP_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* The backward seed: dst[0] = *scale (device memory; 1 when scale is NULL),
 * stored as f32 or f16 (`half`). A kernel rather than a host upload, so the
 * seed is stream-ordered, needs no synchronisation, can be captured into a
 * CUDA graph and follows the loss scale at every replay. */
void bg_cuda_seed_grad(void *dst, int half, const float *scale, void *stream);

#ifdef __cplusplus
}
#endif
#endif
