// Elementwise CUDA kernels: relu, sigmoid, add and mul (b broadcast over a's
// 4-D shape), forward and backward, for f32 and f16 (f16 storage, f32 math).
// Launchers have C linkage (kernels/elementwise.h); the caller checks the
// launch with bg_cuda_check_launch. Index math is 64-bit throughout and every
// kernel uses a grid-stride loop, so any size runs with a capped grid.
//
// The broadcast reduction for b's gradient is deterministic: one block per
// element of b, each thread sums a fixed strided subset in a fixed order, and
// the block combines the partial sums with a fixed tree. The block size
// depends only on the shapes, so the same shapes give bit-identical results.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include "elementwise.h"

namespace {

constexpr int kThreads = 256;
// 65535 blocks of 256 threads is plenty to fill any current GPU; the grid-
// stride loops cover larger tensors.
constexpr int64_t kMaxBlocks = 65535;

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (int)(b < kMaxBlocks ? b : kMaxBlocks);
}

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }

__device__ __forceinline__ int64_t first_index() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return (int64_t)blockDim.x * gridDim.x; }

// ---- unary ----------------------------------------------------------------

template <typename T>
__global__ void relu_fwd_k(const T *x, T *y, int64_t n)
{
    for (int64_t i = first_index(); i < n; i += grid_stride()) {
        float v = ld(x, i);
        st(y, i, v > 0.f ? v : 0.f);
    }
}

// relu' = 1 for x > 0, else 0 (also at 0, as the CPU reference).
template <typename T>
__global__ void relu_bwd_k(const T *x, const T *dy, T *dx, int64_t n)
{
    for (int64_t i = first_index(); i < n; i += grid_stride())
        if (ld(x, i) > 0.f) st(dx, i, ld(dx, i) + ld(dy, i));
}

// exp of a non-positive argument only, so it never overflows.
template <typename T>
__global__ void sigmoid_fwd_k(const T *x, T *y, int64_t n)
{
    for (int64_t i = first_index(); i < n; i += grid_stride()) {
        float v = ld(x, i);
        float e = expf(-fabsf(v));
        st(y, i, v >= 0.f ? 1.f / (1.f + e) : e / (1.f + e));
    }
}

template <typename T>
__global__ void sigmoid_bwd_k(const T *y, const T *dy, T *dx, int64_t n)
{
    for (int64_t i = first_index(); i < n; i += grid_stride()) {
        float s = ld(y, i);
        st(dx, i, ld(dx, i) + ld(dy, i) * s * (1.f - s));
    }
}

// ---- binary with broadcast ---------------------------------------------------

// a's 4-D shape and b's element strides with 0 on the broadcast dims, so the
// b element paired with a's flat index i is sum(coord_d(i) * bstride[d]).
struct Bcast {
    int64_t a[4];
    int64_t bstride[4];
    int64_t n;    // elements of a (and of the output)
    bool same;    // b has a's shape: b's index is i, no decomposition needed
};

Bcast make_bcast(const bg_ew_shapes &s)
{
    Bcast r;
    int64_t stride = 1;
    r.n = 1;
    r.same = true;
    for (int d = 3; d >= 0; d--) {
        r.a[d] = s.a[d];
        r.bstride[d] = s.b[d] == 1 && s.a[d] != 1 ? 0 : stride;
        stride *= s.b[d];
        r.n *= s.a[d];
        r.same = r.same && s.a[d] == s.b[d];
    }
    return r;
}

__device__ __forceinline__ int64_t b_offset(const Bcast &s, int64_t i)
{
    if (s.same) return i;
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += (i % s.a[d]) * s.bstride[d];
        i /= s.a[d];
    }
    return off;
}

template <typename T, bool MUL>
__global__ void binary_fwd_k(const T *a, const T *b, T *y, Bcast s)
{
    for (int64_t i = first_index(); i < s.n; i += grid_stride()) {
        float av = ld(a, i), bv = ld(b, b_offset(s, i));
        st(y, i, MUL ? av * bv : av + bv);
    }
}

// da += dy (add) or dy * b (mul)
template <typename T, bool MUL>
__global__ void binary_bwd_a_k(const T *dy, const T *b, T *da, Bcast s)
{
    for (int64_t i = first_index(); i < s.n; i += grid_stride()) {
        float g = ld(dy, i);
        if (MUL) g *= ld(b, b_offset(s, i));
        st(da, i, ld(da, i) + g);
    }
}

// db += dy (add) or dy * a (mul) when b has a's shape: nothing to reduce.
template <typename T, bool MUL>
__global__ void binary_bwd_b_same_k(const T *dy, const T *a, T *db, int64_t n)
{
    for (int64_t i = first_index(); i < n; i += grid_stride()) {
        float g = ld(dy, i);
        if (MUL) g *= ld(a, i);
        st(db, i, ld(db, i) + g);
    }
}

// The reduction for b's gradient. r[d] is a[d] on the dims b broadcasts over
// and 1 elsewhere; nr = prod(r) elements of a map onto each element of b.
struct Reduce {
    int64_t a[4], b[4], r[4];
    int64_t nb, nr;
};

Reduce make_reduce(const bg_ew_shapes &s)
{
    Reduce r;
    r.nb = r.nr = 1;
    for (int d = 0; d < 4; d++) {
        r.a[d] = s.a[d];
        r.b[d] = s.b[d];
        r.r[d] = s.b[d] == 1 ? s.a[d] : 1;
        r.nb *= s.b[d];
        r.nr *= r.r[d];
    }
    return r;
}

// One block per element j of b (grid-stride over j). blockDim.x is a power of
// two; dynamic shared memory holds blockDim.x floats.
template <typename T, bool MUL>
__global__ void bcast_reduce_k(const T *dy, const T *a, T *db, Reduce s)
{
    extern __shared__ float part[];
    const int tid = threadIdx.x;
    for (int64_t j = blockIdx.x; j < s.nb; j += gridDim.x) {
        int64_t cb[4];
        int64_t t = j;
        for (int d = 3; d >= 0; d--) {
            cb[d] = t % s.b[d];
            t /= s.b[d];
        }
        float acc = 0.f;
        for (int64_t r = tid; r < s.nr; r += blockDim.x) {
            // a's coordinates: b's on kept dims (where r[d] == 1 adds 0),
            // r's own coordinates on the reduced dims (where cb[d] == 0).
            int64_t u = r, c[4];
            for (int d = 3; d >= 0; d--) {
                c[d] = cb[d] + u % s.r[d];
                u /= s.r[d];
            }
            int64_t off = ((c[0] * s.a[1] + c[1]) * s.a[2] + c[2]) * s.a[3] + c[3];
            float g = ld(dy, off);
            acc += MUL ? g * ld(a, off) : g;
        }
        part[tid] = acc;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w >>= 1) {
            if (tid < w) part[tid] += part[tid + w];
            __syncthreads();
        }
        if (tid == 0) st(db, j, ld(db, j) + part[0]);
        __syncthreads(); // part[] is rewritten for the next j
    }
}

// Power of two in [32, 256], the smallest covering nr: short reductions do
// not leave most of a block idle. A function of the shape only.
int reduce_threads(int64_t nr)
{
    int t = 32;
    while (t < kThreads && t < nr) t *= 2;
    return t;
}

template <typename T, bool MUL>
void binary_fwd(const void *a, const void *b, void *y, const bg_ew_shapes &shapes, cudaStream_t st)
{
    Bcast s = make_bcast(shapes);
    if (s.n == 0) return;
    binary_fwd_k<T, MUL><<<blocks_for(s.n), kThreads, 0, st>>>((const T *)a, (const T *)b, (T *)y, s);
}

template <typename T, bool MUL>
void binary_bwd(const void *dy, const void *a, const void *b, void *da, void *db, const bg_ew_shapes &shapes,
                cudaStream_t st)
{
    Bcast s = make_bcast(shapes);
    if (s.n == 0) return;
    // Two launches in stream order, so da and db may even be the same buffer
    // (x * x) without a race.
    if (da) binary_bwd_a_k<T, MUL><<<blocks_for(s.n), kThreads, 0, st>>>((const T *)dy, (const T *)b, (T *)da, s);
    if (!db) return;
    if (s.same) {
        binary_bwd_b_same_k<T, MUL><<<blocks_for(s.n), kThreads, 0, st>>>((const T *)dy, (const T *)a, (T *)db, s.n);
        return;
    }
    Reduce r = make_reduce(shapes);
    int threads = reduce_threads(r.nr);
    int blocks = (int)(r.nb < kMaxBlocks ? r.nb : kMaxBlocks);
    bcast_reduce_k<T, MUL><<<blocks, threads, (size_t)threads * sizeof(float), st>>>((const T *)dy, (const T *)a,
                                                                                       (T *)db, r);
}

template <typename T>
void unary_launch(void (*k)(const T *, T *, int64_t), const void *x, void *y, int64_t n, cudaStream_t st)
{
    if (n <= 0) return;
    k<<<blocks_for(n), kThreads, 0, st>>>((const T *)x, (T *)y, n);
}

template <typename T>
void unary_bwd_launch(void (*k)(const T *, const T *, T *, int64_t), const void *x, const void *dy, void *dx,
                      int64_t n, cudaStream_t st)
{
    if (n <= 0 || !dx) return;
    k<<<blocks_for(n), kThreads, 0, st>>>((const T *)x, (const T *)dy, (T *)dx, n);
}

} // namespace

extern "C" void bg_cuda_relu_fwd(const void *x, void *y, int64_t n, int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    if (half) unary_launch<__half>(relu_fwd_k<__half>, x, y, n, st);
    else unary_launch<float>(relu_fwd_k<float>, x, y, n, st);
}

extern "C" void bg_cuda_relu_bwd(const void *x, const void *dy, void *dx, int64_t n, int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    if (half) unary_bwd_launch<__half>(relu_bwd_k<__half>, x, dy, dx, n, st);
    else unary_bwd_launch<float>(relu_bwd_k<float>, x, dy, dx, n, st);
}

extern "C" void bg_cuda_sigmoid_fwd(const void *x, void *y, int64_t n, int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    if (half) unary_launch<__half>(sigmoid_fwd_k<__half>, x, y, n, st);
    else unary_launch<float>(sigmoid_fwd_k<float>, x, y, n, st);
}

extern "C" void bg_cuda_sigmoid_bwd(const void *y, const void *dy, void *dx, int64_t n, int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    if (half) unary_bwd_launch<__half>(sigmoid_bwd_k<__half>, y, dy, dx, n, st);
    else unary_bwd_launch<float>(sigmoid_bwd_k<float>, y, dy, dx, n, st);
}

extern "C" void bg_cuda_add_fwd(const void *a, const void *b, void *y, bg_ew_shapes s, int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    if (half) binary_fwd<__half, false>(a, b, y, s, st);
    else binary_fwd<float, false>(a, b, y, s, st);
}

extern "C" void bg_cuda_add_bwd(const void *dy, void *da, void *db, bg_ew_shapes s, int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    // add's gradients do not read a or b
    if (half) binary_bwd<__half, false>(dy, nullptr, nullptr, da, db, s, st);
    else binary_bwd<float, false>(dy, nullptr, nullptr, da, db, s, st);
}

extern "C" void bg_cuda_mul_fwd(const void *a, const void *b, void *y, bg_ew_shapes s, int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    if (half) binary_fwd<__half, true>(a, b, y, s, st);
    else binary_fwd<float, true>(a, b, y, s, st);
}

extern "C" void bg_cuda_mul_bwd(const void *dy, const void *a, const void *b, void *da, void *db, bg_ew_shapes s,
                                int half, void *stream)
{
    cudaStream_t st = (cudaStream_t)stream;
    if (half) binary_bwd<__half, true>(dy, a, b, da, db, s, st);
    else binary_bwd<float, true>(dy, a, b, da, db, s, st);
}
