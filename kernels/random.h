/* Philox fills on the GPU: element i takes word i%4 of block i/4 of the
 * stream (seed, offset), exactly as engine/tensor.c does on the CPU, so both
 * backends produce the same numbers (uniform bit-identical; normal equal up
 * to the last bit of the device's log/cos). dtype: 0 = f32, 1 = f16. */
#ifndef BG_KERNELS_RANDOM_H
#define BG_KERNELS_RANDOM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void bg_cuda_fill_uniform(void *p, int64_t n, int dtype, uint64_t seed, uint64_t offset, double lo, double hi,
                          void *stream);
void bg_cuda_fill_normal(void *p, int64_t n, int dtype, uint64_t seed, uint64_t offset, double mean, double std,
                         void *stream);

#ifdef __cplusplus
}
#endif
#endif
