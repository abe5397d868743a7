/* CUDA launchers for the elementwise ops (relu, sigmoid, add, mul), forward
 * and backward, implemented in kernels/elementwise.cu. C linkage, plain
 * pointers: the C glue in ops/activation.c and ops/binary.c passes
 * ctx->stream and then checks the launch with bg_cuda_check_launch.
 *
 * `half` selects the element type: 0 = f32, 1 = f16 (f16 storage, f32 math).
 * Backward launchers ADD into the gradient buffers (the op contract), and a
 * NULL gradient pointer means "not wanted". Empty tensors launch nothing. */
#ifndef BG_ELEMENTWISE_H
#define BG_ELEMENTWISE_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void bg_cuda_relu_fwd(const void *x, void *y, int64_t n, int half, void *stream);
/* dx += dy where x > 0 */
void bg_cuda_relu_bwd(const void *x, const void *dy, void *dx, int64_t n, int half, void *stream);
void bg_cuda_sigmoid_fwd(const void *x, void *y, int64_t n, int half, void *stream);
/* dx += dy * y * (1 - y), y the forward output */
void bg_cuda_sigmoid_bwd(const void *y, const void *dy, void *dx, int64_t n, int half, void *stream);

/* Shapes of a binary op, both padded to 4-D with leading 1s: b[d] is a[d] or 1
 * (validated by the op's shape inference); the output has a's shape. */
typedef struct {
    int64_t a[4];
    int64_t b[4];
} bg_ew_shapes;

void bg_cuda_add_fwd(const void *a, const void *b, void *y, bg_ew_shapes s, int half, void *stream);
/* da += dy; db += dy summed over b's broadcast dims (deterministic, no atomics) */
void bg_cuda_add_bwd(const void *dy, void *da, void *db, bg_ew_shapes s, int half, void *stream);
void bg_cuda_mul_fwd(const void *a, const void *b, void *y, bg_ew_shapes s, int half, void *stream);
/* da += dy * b (broadcast); db += (dy * a) summed over b's broadcast dims */
void bg_cuda_mul_bwd(const void *dy, const void *a, const void *b, void *da, void *db, bg_ew_shapes s, int half,
                     void *stream);

#ifdef __cplusplus
}
#endif
#endif
