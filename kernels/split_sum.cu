// split_sum on the GPU: one thread per output element (forward) or per
// input element (backward), grid-stride loops, 64-bit indices. Each output
// sums its r inputs in a fixed order, so results are deterministic without
// atomics; the backward writes every dx element from exactly one thread.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include "split_sum.h"

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535; // grid-stride loops cover the rest

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    if (b < 1) b = 1;
    return (int)(b < kMaxBlocks ? b : kMaxBlocks);
}

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }

// i indexes y = {rows, c}: y[p, k] = sum_s x[p, s*c + k]
template <typename T>
__global__ void split_sum_fwd_k(const T *x, T *y, int64_t rows, int64_t r, int64_t c)
{
    int64_t n = rows * c;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
        int64_t p = i / c, k = i - p * c;
        const T *xp = x + p * r * c + k;
        float acc = 0.f;
        for (int64_t s = 0; s < r; s++) acc += ld(xp, s * c);
        st(y, i, acc);
    }
}

// i indexes dx = {rows, r*c}: dx[p, s*c + k] += dy[p, k]
template <typename T>
__global__ void split_sum_bwd_k(const T *dy, T *dx, int64_t rows, int64_t r, int64_t c)
{
    int64_t rc = r * c, n = rows * rc;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
        int64_t p = i / rc, k = (i - p * rc) % c;
        st(dx, i, ld(dx, i) + ld(dy, p * c + k));
    }
}

} // namespace

extern "C" void bg_cuda_split_sum_fwd(const void *x, void *y, int64_t rows, int64_t r, int64_t c, int half,
                                      void *stream)
{
    int64_t n = rows * c;
    if (n <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        split_sum_fwd_k<__half><<<blocks_for(n), kThreads, 0, st>>>((const __half *)x, (__half *)y, rows, r, c);
    else
        split_sum_fwd_k<float><<<blocks_for(n), kThreads, 0, st>>>((const float *)x, (float *)y, rows, r, c);
}

extern "C" void bg_cuda_split_sum_bwd(const void *dy, void *dx, int64_t rows, int64_t r, int64_t c, int half,
                                      void *stream)
{
    int64_t n = rows * r * c;
    if (n <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        split_sum_bwd_k<__half><<<blocks_for(n), kThreads, 0, st>>>((const __half *)dy, (__half *)dx, rows, r, c);
    else
        split_sum_bwd_k<float><<<blocks_for(n), kThreads, 0, st>>>((const float *)dy, (float *)dx, rows, r, c);
}
