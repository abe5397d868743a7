// Shape-op kernels and generic copies (see kernels/shape.h). Grid-stride
// loops, 64-bit indices; every output element is written by exactly one
// thread, so the backward adds need no atomics.
#include "shape.h"
#include "reduce.cuh"

namespace {

using bgkr::ld;
using bgkr::st;

template <typename T>
__global__ void add_into_k(T *dst, const T *src, int64_t n)
{
    for (int64_t i = bgkr::gtid(); i < n; i += bgkr::gstride()) st(dst, i, ld(dst, i) + ld(src, i));
}

template <typename T>
__global__ void add_into4_k(T *dst, const T *src, int64_t n4)
{
    for (int64_t q = bgkr::gtid(); q < n4; q += bgkr::gstride()) {
        float a[4], b[4];
        bgkr::ld4(dst, q * 4, a);
        bgkr::ld4(src, q * 4, b);
#pragma unroll
        for (int j = 0; j < 4; j++) a[j] += b[j];
        bgkr::st4(dst, q * 4, a);
    }
}

// Which input owns column j of a row, and the column within it.
__device__ __forceinline__ int owner(const bg_concat_args &a, int64_t j, int64_t *col)
{
    int i = 0;
    while (i < a.n - 1 && j >= a.width[i]) j -= a.width[i++];
    *col = j;
    return i;
}

template <typename E>
__global__ void concat_fwd_k(bg_concat_args a, E *y, int64_t rows, int64_t wy)
{
    const int64_t total = rows * wy;
    for (int64_t t = bgkr::gtid(); t < total; t += bgkr::gstride()) {
        const int64_t r = t / wy;
        int64_t col;
        const int i = owner(a, t % wy, &col);
        y[t] = ((const E *)a.x[i])[r * a.width[i] + col];
    }
}

template <typename T>
__global__ void concat_bwd_k(bg_concat_args a, const T *dy, int64_t rows, int64_t wy)
{
    const int64_t total = rows * wy;
    for (int64_t t = bgkr::gtid(); t < total; t += bgkr::gstride()) {
        const int64_t r = t / wy;
        int64_t col;
        const int i = owner(a, t % wy, &col);
        T *g = (T *)a.grad[i];
        if (!g) continue;
        const int64_t o = r * a.width[i] + col;
        st(g, o, ld(g, o) + ld(dy, t));
    }
}

template <typename S, typename D>
__global__ void cast_k(const S *src, D *dst, int64_t n)
{
    for (int64_t i = bgkr::gtid(); i < n; i += bgkr::gstride()) st(dst, i, ld(src, i));
}

__global__ void copy16_k(uint4 *dst, const uint4 *src, int64_t n)
{
    for (int64_t i = bgkr::gtid(); i < n; i += bgkr::gstride()) dst[i] = src[i];
}

} // namespace

extern "C" void bg_cuda_add_into(void *dst, const void *src, int64_t n, int half, void *stream)
{
    if (n <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (bgkr::vec4_ok(n, dst, src)) {
        if (half) add_into4_k<__half><<<bgkr::blocks_for(n / 4), bgkr::kThreads, 0, st>>>((__half *)dst, (const __half *)src, n / 4);
        else add_into4_k<float><<<bgkr::blocks_for(n / 4), bgkr::kThreads, 0, st>>>((float *)dst, (const float *)src, n / 4);
    } else {
        if (half) add_into_k<__half><<<bgkr::blocks_for(n), bgkr::kThreads, 0, st>>>((__half *)dst, (const __half *)src, n);
        else add_into_k<float><<<bgkr::blocks_for(n), bgkr::kThreads, 0, st>>>((float *)dst, (const float *)src, n);
    }
}

extern "C" void bg_cuda_concat_fwd(const bg_concat_args *a, void *y, int64_t rows, size_t elem_size, void *stream)
{
    int64_t wy = 0;
    for (int i = 0; i < a->n; i++) wy += a->width[i];
    const int64_t total = rows * wy;
    if (total <= 0 || a->n < 1) return;
    cudaStream_t st = (cudaStream_t)stream;
    const int b = bgkr::blocks_for(total);
    switch (elem_size) {
    case 1: concat_fwd_k<uint8_t><<<b, bgkr::kThreads, 0, st>>>(*a, (uint8_t *)y, rows, wy); break;
    case 2: concat_fwd_k<uint16_t><<<b, bgkr::kThreads, 0, st>>>(*a, (uint16_t *)y, rows, wy); break;
    case 4: concat_fwd_k<uint32_t><<<b, bgkr::kThreads, 0, st>>>(*a, (uint32_t *)y, rows, wy); break;
    case 8: concat_fwd_k<uint64_t><<<b, bgkr::kThreads, 0, st>>>(*a, (uint64_t *)y, rows, wy); break;
    default: break; // the op glue only passes dtype sizes
    }
}

extern "C" void bg_cuda_concat_bwd(const bg_concat_args *a, const void *dy, int64_t rows, int half, void *stream)
{
    int64_t wy = 0;
    for (int i = 0; i < a->n; i++) wy += a->width[i];
    const int64_t total = rows * wy;
    if (total <= 0 || a->n < 1) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half) concat_bwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(*a, (const __half *)dy, rows, wy);
    else concat_bwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(*a, (const float *)dy, rows, wy);
}

extern "C" void bg_cuda_cast(const void *src, int src_half, void *dst, int dst_half, int64_t n, void *stream)
{
    if (n <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    const int b = bgkr::blocks_for(n);
    if (src_half && dst_half) cast_k<__half, __half><<<b, bgkr::kThreads, 0, st>>>((const __half *)src, (__half *)dst, n);
    else if (src_half) cast_k<__half, float><<<b, bgkr::kThreads, 0, st>>>((const __half *)src, (float *)dst, n);
    else if (dst_half) cast_k<float, __half><<<b, bgkr::kThreads, 0, st>>>((const float *)src, (__half *)dst, n);
    else cast_k<float, float><<<b, bgkr::kThreads, 0, st>>>((const float *)src, (float *)dst, n);
}

extern "C" void bg_cuda_copy16(void *dst, const void *src, size_t bytes, void *stream)
{
    const int64_t n = (int64_t)(bytes / 16);
    if (n <= 0) return;
    // Many blocks in flight: this kernel is the bandwidth yardstick.
    int64_t blocks = (n + bgkr::kThreads - 1) / bgkr::kThreads;
    if (blocks > 1 << 20) blocks = 1 << 20;
    copy16_k<<<(unsigned)blocks, bgkr::kThreads, 0, (cudaStream_t)stream>>>((uint4 *)dst, (const uint4 *)src, n);
}
