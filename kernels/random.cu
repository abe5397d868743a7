// Philox-based fills; the stream layout mirrors engine/tensor.c (see random.h).
#include <cuda_fp16.h>
#include "../engine/philox.h"
#include "random.h"

__device__ __forceinline__ void store(void *p, int64_t i, int dtype, double v)
{
    if (dtype == 1) ((__half *)p)[i] = __float2half_rn((float)v);
    else ((float *)p)[i] = (float)v;
}

__global__ void fill_uniform_kernel(void *p, int64_t n, int dtype, uint64_t seed, uint64_t offset, double lo, double hi)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        bg_u32x4 r = bg_philox_block(seed, offset, (uint64_t)i / 4);
        store(p, i, dtype, lo + (hi - lo) * (double)bg_u32_to_unit(r.v[i % 4]));
    }
}

// One thread per pair of elements: Box-Muller on words (k, k+1) of a block.
__global__ void fill_normal_kernel(void *p, int64_t n, int dtype, uint64_t seed, uint64_t offset, double mean, double sd)
{
    int64_t pairs = (n + 1) / 2;
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < pairs; j += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = 2 * j;
        bg_u32x4 r = bg_philox_block(seed, offset, (uint64_t)i / 4);
        int k = (int)(i % 4);
        double u1 = bg_u32_to_unit_open0(r.v[k]), u2 = bg_u32_to_unit(r.v[k + 1]);
        double rad = sqrt(-2.0 * log(u1));
        store(p, i, dtype, mean + sd * rad * cos(2.0 * M_PI * u2));
        if (i + 1 < n) store(p, i + 1, dtype, mean + sd * rad * sin(2.0 * M_PI * u2));
    }
}

static int blocks_for(int64_t n)
{
    int64_t b = (n + 255) / 256;
    return (int)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

extern "C" void bg_cuda_fill_uniform(void *p, int64_t n, int dtype, uint64_t seed, uint64_t offset, double lo, double hi,
                                     void *stream)
{
    if (n > 0) fill_uniform_kernel<<<blocks_for(n), 256, 0, (cudaStream_t)stream>>>(p, n, dtype, seed, offset, lo, hi);
}

extern "C" void bg_cuda_fill_normal(void *p, int64_t n, int dtype, uint64_t seed, uint64_t offset, double mean, double sd,
                                    void *stream)
{
    if (n > 0) fill_normal_kernel<<<blocks_for((n + 1) / 2), 256, 0, (cudaStream_t)stream>>>(p, n, dtype, seed, offset, mean, sd);
}
