/* CUDA helpers for the shape ops and generic device copies, implemented in
 * kernels/shape.cu. flatten and reshape copy bytes with the runtime's
 * device-to-device copy (kernels/cuda_api.h); their backward is
 * bg_cuda_add_into. `half`: 0 = f32, 1 = f16. The caller checks the launch. */
#ifndef BG_KERNELS_SHAPE_H
#define BG_KERNELS_SHAPE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define BG_CONCAT_MAX 6

/* dst[i] += src[i], i < n. */
void bg_cuda_add_into(void *dst, const void *src, int64_t n, int half, void *stream);

/* concat along the last axis: rows = every position before it, width[i]
 * channels of input i; y {rows, sum(width)}. The forward copies elements of
 * elem_size bytes (1, 2, 4 or 8: any dtype); the backward adds each slice of
 * dy into grad[i] (NULL: not wanted), f32 or f16. */
typedef struct {
    const void *x[BG_CONCAT_MAX];
    void *grad[BG_CONCAT_MAX];
    int64_t width[BG_CONCAT_MAX];
    int n;
} bg_concat_args;
void bg_cuda_concat_fwd(const bg_concat_args *a, void *y, int64_t rows, size_t elem_size, void *stream);
void bg_cuda_concat_bwd(const bg_concat_args *a, const void *dy, int64_t rows, int half, void *stream);

/* dst = src converted (f32 <-> f16, or a plain copy when the types agree), n elements. */
void bg_cuda_cast(const void *src, int src_half, void *dst, int dst_half, int64_t n, void *stream);

/* A plain 16-byte-per-thread copy kernel (bytes a multiple of 16, both
 * pointers 16-byte aligned): what `budgie bench hbm` times as the card's
 * measured memory bandwidth (bytes read + bytes written). */
void bg_cuda_copy16(void *dst, const void *src, size_t bytes, void *stream);

#ifdef __cplusplus
}
#endif
#endif
