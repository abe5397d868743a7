/* GPU data augmentation for data sets resident on the device as uint8 HWC:
 * pad-and-crop, flip, AutoAugment (PIL numerics), Cutout and normalisation
 * in one kernel that writes the FP32 or FP16 NHWC batch. One thread block
 * per image holds the image in shared memory; each block derives its draws
 * from the same Philox blocks and the same arithmetic (augment/aa_numerics.h)
 * as the CPU path (bg_make_batch), so the batches match the CPU ones.
 * Launchers return 0 or a CUDA error code with its text in err. */
#ifndef BG_KERNELS_AUGMENT_H
#define BG_KERNELS_AUGMENT_H
#include <stddef.h>
#include <stdint.h>
#include "../augment/aa_numerics.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    bg_aug_cfg aug;            /* crop_pad, flip, autoaugment, cutout */
    int32_t cutout_after_norm; /* 0: black hole before normalising (HAET); 1: 0 after */
    float mean[4], std[4];     /* (p/255 - mean) / std per channel */
} bg_cuda_batch_cfg;

/* Dynamic shared memory one block needs for h x w x c images (two image buffers). */
size_t bg_cuda_augment_smem(int h, int w, int c);

/* out[p] = normalise(augment(pixels[idx[p]])) for p < n; d_idx holds n int64
 * image indices (trusted: the caller checks the range). out is n*h*w*c f32,
 * or f16 when out_f16. c is 1..4 (AutoAugment needs 1 or 3). */
int bg_cuda_augment_batch(const uint8_t *d_pixels, int h, int w, int c, const int64_t *d_idx, int n,
                          const bg_cuda_batch_cfg *cfg, uint64_t seed, uint64_t step, void *d_out, int out_f16,
                          void *stream, char *err, size_t errn);

/* One resolved AutoAugment step on n device images (uint8 HWC, c = 1 or 3),
 * d_dst distinct from d_src: the parity check for each op. */
int bg_cuda_aa_apply(const uint8_t *d_src, uint8_t *d_dst, int n, int h, int w, int c, const bg_aa_step *st,
                     void *stream, char *err, size_t errn);

#ifdef __cplusplus
}
#endif
#endif
