/* Elementwise loops of the fast CPU backend, one copy per instruction set
 * (kernels/cpu/isa.h). Each takes one contiguous chunk; the callers in
 * ops/fast/eltwise.c cut the tensor into chunks across threads. */
#include "../isa.h"

/* y may be x (the memory planner's in-place relu): no restrict on the pair. */
void BG_ISA_FN(bg_k_relu_fwd)(const float *x, float *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* relu' = [x > 0] (0 at x == 0, as the reference and PyTorch). store: dx
 * holds garbage and gets 0.0f + the term (bg_node.grad_fresh). */
void BG_ISA_FN(bg_k_relu_bwd)(const float *restrict x, const float *restrict dy, float *restrict dx, int64_t n,
                              int store)
{
    if (store) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dx[i] = 0.0f + (x[i] > 0.0f ? dy[i] : 0.0f);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
    }
}
