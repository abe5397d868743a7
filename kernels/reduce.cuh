// Device helpers shared by the kernel families of issue 6 (batchnorm, pool,
// attention, loss, shape, optim, amp). Header-only, included from .cu files.
//
// Determinism: every reduction here runs in an order fixed by the shapes
// alone (never by the device, the timing or atomics), so the same inputs give
// bit-identical results from run to run and from GPU to GPU. Launch
// configurations that shape a reduction (block size, number of splits) are
// therefore computed from the tensor shapes only, never from the SM count.
#ifndef BG_KERNELS_REDUCE_CUH
#define BG_KERNELS_REDUCE_CUH
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace bgkr {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU; grid-stride loops cover the rest.
constexpr int64_t kMaxBlocks = 65535;

inline int blocks_for(int64_t n, int threads = kThreads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    return (int)(b < kMaxBlocks ? b : kMaxBlocks);
}

// Element access with f32 math whatever the storage.
__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }

__device__ __forceinline__ int64_t gtid() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t gstride() { return (int64_t)blockDim.x * gridDim.x; }

// Four consecutive elements as one 16-byte (f32) or 8-byte (f16) access.
// The caller guarantees alignment (index multiple of 4, base 256-aligned
// from the allocator, i.e. contiguous tensors starting at offset 0).
__device__ __forceinline__ void ld4(const float *p, int64_t i, float v[4])
{
    float4 q = *reinterpret_cast<const float4 *>(p + i);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void ld4(const __half *p, int64_t i, float v[4])
{
    uint2 q = *reinterpret_cast<const uint2 *>(p + i);
    __half2 a = *reinterpret_cast<__half2 *>(&q.x), b = *reinterpret_cast<__half2 *>(&q.y);
    float2 fa = __half22float2(a), fb = __half22float2(b);
    v[0] = fa.x, v[1] = fa.y, v[2] = fb.x, v[3] = fb.y;
}
__device__ __forceinline__ void st4(float *p, int64_t i, const float v[4])
{
    *reinterpret_cast<float4 *>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void st4(__half *p, int64_t i, const float v[4])
{
    __half2 a = __floats2half2_rn(v[0], v[1]), b = __floats2half2_rn(v[2], v[3]);
    uint2 q;
    q.x = *reinterpret_cast<unsigned *>(&a);
    q.y = *reinterpret_cast<unsigned *>(&b);
    *reinterpret_cast<uint2 *>(p + i) = q;
}

// True when 4-wide accesses are safe for a contiguous {rows, c} tensor whose
// per-channel pattern must not straddle a vector: c divisible by 4 and every
// pointer aligned to the vector width.
inline bool vec4_ok(int64_t c, const void *a, const void *b = nullptr, const void *d = nullptr,
                    const void *e = nullptr)
{
    auto al = [](const void *p) { return p == nullptr || ((uintptr_t)p % 16) == 0; };
    return c % 4 == 0 && al(a) && al(b) && al(d) && al(e);
}

// Sum over the blockDim.y rows of a (32 x blockDim.y) tile held in shared
// memory buf[ty][32], combined in a fixed tree; thread (tx, 0) gets the total
// of column tx. All threads of the block must call it.
template <int ROWS>
__device__ __forceinline__ float column_sum(float (*buf)[32], float v)
{
    const int tx = threadIdx.x, ty = threadIdx.y;
    buf[ty][tx] = v;
    __syncthreads();
#pragma unroll
    for (int w = ROWS / 2; w > 0; w >>= 1) {
        if (ty < w) buf[ty][tx] += buf[ty + w][tx];
        __syncthreads();
    }
    float r = buf[0][tx];
    __syncthreads(); // buf is reused by the caller's next call
    return r;
}

// Sum of v over a block of blockDim.x threads (a power of two, <= 1024),
// fixed tree; every thread gets the total. smem holds blockDim.x floats.
__device__ __forceinline__ float block_sum(float *smem, float v)
{
    const int t = threadIdx.x;
    smem[t] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (t < w) smem[t] += smem[t + w];
        __syncthreads();
    }
    float r = smem[0];
    __syncthreads();
    return r;
}

// Warp-wide reductions with a fixed butterfly: deterministic, every lane gets
// the result.
__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

} // namespace bgkr

#endif
