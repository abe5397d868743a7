// Attention-block kernels: radix softmax, squeeze-excitation channel scale,
// split-attention weighted sum (see kernels/attention.h).
//
// Elementwise passes are grid-stride loops with 64-bit indices, four
// channels per thread (16-byte f32 / 8-byte f16 accesses) when the channel
// count allows. Reductions over positions use (32 channels x 8 positions)
// blocks, one block column per (channel group, image), combined in a fixed
// tree: deterministic, and coalesced for any channel count.
#include "attention.h"
#include "reduce.cuh"

namespace {

using bgkr::ld;
using bgkr::st;

// ---- radix softmax ---------------------------------------------------------------------

// One thread per (row, k, j): the radix values of one softmax group.
template <typename T>
__global__ void rsoftmax_fwd_k(const T *x, T *y, int64_t rows, int64_t radix, int64_t card, int64_t rest)
{
    const int64_t groups = card * rest, c = radix * groups, total = rows * groups;
    for (int64_t t = bgkr::gtid(); t < total; t += bgkr::gstride()) {
        const int64_t row = t / groups, kj = t % groups, k = kj / rest, j = kj % rest;
        const T *xr = x + row * c + k * radix * rest + j; // element r at xr[r * rest]
        T *yr = y + row * c + k * rest + j;               // element r at yr[r * card * rest]
        float mx = ld(xr, 0);
        for (int64_t r = 1; r < radix; r++) mx = fmaxf(mx, ld(xr, r * rest));
        float sum = 0.f;
        for (int64_t r = 0; r < radix; r++) sum += expf(ld(xr, r * rest) - mx);
        const float inv = 1.f / sum;
        for (int64_t r = 0; r < radix; r++) st(yr, r * groups, expf(ld(xr, r * rest) - mx) * inv);
    }
}

template <typename T>
__global__ void rsoftmax_bwd_k(const T *y, const T *dy, T *dx, int64_t rows, int64_t radix, int64_t card, int64_t rest)
{
    const int64_t groups = card * rest, c = radix * groups, total = rows * groups;
    for (int64_t t = bgkr::gtid(); t < total; t += bgkr::gstride()) {
        const int64_t row = t / groups, kj = t % groups, k = kj / rest, j = kj % rest;
        const int64_t out0 = row * c + k * rest + j, in0 = row * c + k * radix * rest + j;
        float dot = 0.f;
        for (int64_t r = 0; r < radix; r++) dot += ld(dy, out0 + r * groups) * ld(y, out0 + r * groups);
        for (int64_t r = 0; r < radix; r++) {
            const int64_t o = out0 + r * groups, i = in0 + r * rest;
            st(dx, i, ld(dx, i) + ld(y, o) * (ld(dy, o) - dot));
        }
    }
}

// ---- squeeze-excitation channel scale ---------------------------------------------------

template <typename T, bool RELU>
__global__ void se_fwd_k(const T *x, const T *s, const T *res, T *y, int64_t total, int64_t p, int64_t c)
{
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        const int64_t b = i / (p * c), k = i % c;
        float v = ld(x, i) * ld(s, b * c + k);
        if (res) v += ld(res, i);
        st(y, i, RELU ? fmaxf(v, 0.f) : v);
    }
}

template <typename T, bool RELU>
__global__ void se_fwd4_k(const T *x, const T *s, const T *res, T *y, int64_t total4, int64_t p, int64_t c)
{
    for (int64_t q = bgkr::gtid(); q < total4; q += bgkr::gstride()) {
        const int64_t i = q * 4, b = i / (p * c), k = i % c;
        float v[4], r[4] = {0.f, 0.f, 0.f, 0.f};
        bgkr::ld4(x, i, v);
        if (res) bgkr::ld4(res, i, r);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float t = v[j] * ld(s, b * c + k + j) + r[j];
            v[j] = RELU ? fmaxf(t, 0.f) : t;
        }
        bgkr::st4(y, i, v);
    }
}

template <typename T, bool RELU>
__device__ __forceinline__ float dz_at(const T *y, const T *dy, int64_t i)
{
    float g = ld(dy, i);
    if (RELU) g = ld(y, i) > 0.f ? g : 0.f;
    return g;
}

// ds[b, k] += sum_q dz * x; dres += dz on the way (each element seen once).
template <typename T, bool RELU>
__global__ void __launch_bounds__(256) se_bwd_reduce_k(const T *x, const T *y, const T *dy, T *ds, T *dres, int64_t n,
                                                      int64_t p, int64_t c)
{
    __shared__ float buf[8][32];
    const int64_t k = (int64_t)blockIdx.x * 32 + threadIdx.x;
    for (int64_t b = blockIdx.y; b < n; b += gridDim.y) {
        float acc = 0.f;
        if (k < c) {
#pragma unroll 4
            for (int64_t q = threadIdx.y; q < p; q += 8) {
                const int64_t i = (b * p + q) * c + k;
                const float d = dz_at<T, RELU>(y, dy, i);
                acc += d * ld(x, i);
                if (dres) st(dres, i, ld(dres, i) + d);
            }
        }
        acc = bgkr::column_sum<8>(buf, acc);
        if (threadIdx.y == 0 && k < c && ds) st(ds, b * c + k, ld(ds, b * c + k) + acc);
    }
}

template <typename T, bool RELU>
__global__ void se_bwd_dx_k(const T *dy, const T *y, const T *s, const T *dgap, T *dx, int64_t total, int64_t p,
                            int64_t c)
{
    const float fp = (float)p;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        const int64_t b = i / (p * c), k = i % c, j = b * c + k;
        float v = dz_at<T, RELU>(y, dy, i) * ld(s, j);
        if (dgap) v += ld(dgap, j) / fp;
        st(dx, i, ld(dx, i) + v);
    }
}

// ---- split-attention weighted sum ---------------------------------------------------------

template <typename T>
__global__ void splat_fwd_k(const T *x, const T *a, T *y, int64_t total, int64_t p, int64_t r, int64_t c)
{
    const int64_t rc = r * c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        const int64_t row = i / c, k = i % c, b = row / p; // row = (b, q)
        const T *xr = x + row * rc + k;
        const T *ar = a + b * rc + k;
        float acc = 0.f;
        for (int64_t s = 0; s < r; s++) acc += ld(xr, s * c) * ld(ar, s * c);
        st(y, i, acc);
    }
}

template <typename T>
__global__ void splat_bwd_dx_k(const T *a, const T *dy, T *dx, int64_t total, int64_t p, int64_t r, int64_t c)
{
    const int64_t rc = r * c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        const int64_t row = i / rc, j = i % rc, k = j % c, b = row / p;
        st(dx, i, ld(dx, i) + ld(dy, row * c + k) * ld(a, b * rc + j));
    }
}

// da[b, j] += sum_q dy[b, q, j % c] * x[b, q, j] over the r*c gate channels j.
template <typename T>
__global__ void __launch_bounds__(256) splat_bwd_da_k(const T *x, const T *dy, T *da, int64_t n, int64_t p, int64_t r,
                                                     int64_t c)
{
    __shared__ float buf[8][32];
    const int64_t rc = r * c, j = (int64_t)blockIdx.x * 32 + threadIdx.x, k = j % c;
    for (int64_t b = blockIdx.y; b < n; b += gridDim.y) {
        float acc = 0.f;
        if (j < rc) {
#pragma unroll 4
            for (int64_t q = threadIdx.y; q < p; q += 8) {
                const int64_t row = b * p + q;
                acc += ld(dy, row * c + k) * ld(x, row * rc + j);
            }
        }
        acc = bgkr::column_sum<8>(buf, acc);
        if (threadIdx.y == 0 && j < rc) st(da, b * rc + j, ld(da, b * rc + j) + acc);
    }
}

dim3 reduce_grid(int64_t channels, int64_t n)
{
    return dim3((unsigned)((channels + 31) / 32), (unsigned)(n < 65535 ? n : 65535));
}

template <typename T>
void se_fwd(const void *x, const void *s, const void *res, void *y, int64_t n, int64_t p, int64_t c, int relu,
            cudaStream_t st)
{
    const int64_t total = n * p * c;
    const T *xt = (const T *)x, *stt = (const T *)s, *rt = (const T *)res;
    T *yt = (T *)y;
    if (bgkr::vec4_ok(c, x, res, y)) {
        if (relu) se_fwd4_k<T, true><<<bgkr::blocks_for(total / 4), bgkr::kThreads, 0, st>>>(xt, stt, rt, yt, total / 4, p, c);
        else se_fwd4_k<T, false><<<bgkr::blocks_for(total / 4), bgkr::kThreads, 0, st>>>(xt, stt, rt, yt, total / 4, p, c);
    } else {
        if (relu) se_fwd_k<T, true><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(xt, stt, rt, yt, total, p, c);
        else se_fwd_k<T, false><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(xt, stt, rt, yt, total, p, c);
    }
}

template <typename T>
void se_bwd_reduce(const void *x, const void *y, const void *dy, void *ds, void *dres, int64_t n, int64_t p, int64_t c,
                   int relu, cudaStream_t st)
{
    dim3 grid = reduce_grid(c, n), block(32, 8);
    if (relu)
        se_bwd_reduce_k<T, true><<<grid, block, 0, st>>>((const T *)x, (const T *)y, (const T *)dy, (T *)ds, (T *)dres, n, p, c);
    else
        se_bwd_reduce_k<T, false><<<grid, block, 0, st>>>((const T *)x, (const T *)y, (const T *)dy, (T *)ds, (T *)dres, n, p, c);
}

template <typename T>
void se_bwd_dx(const void *dy, const void *y, const void *s, const void *dgap, void *dx, int64_t n, int64_t p, int64_t c,
               int relu, cudaStream_t st)
{
    const int64_t total = n * p * c;
    if (relu)
        se_bwd_dx_k<T, true><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const T *)dy, (const T *)y, (const T *)s,
                                                                              (const T *)dgap, (T *)dx, total, p, c);
    else
        se_bwd_dx_k<T, false><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const T *)dy, (const T *)y, (const T *)s,
                                                                               (const T *)dgap, (T *)dx, total, p, c);
}

} // namespace

extern "C" void bg_cuda_radix_softmax_fwd(const void *x, void *y, int64_t rows, int64_t radix, int64_t card,
                                          int64_t rest, int half, void *stream)
{
    const int64_t total = rows * card * rest;
    if (total <= 0 || radix <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        rsoftmax_fwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)x, (__half *)y, rows,
                                                                                  radix, card, rest);
    else
        rsoftmax_fwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)x, (float *)y, rows,
                                                                                 radix, card, rest);
}

extern "C" void bg_cuda_radix_softmax_bwd(const void *y, const void *dy, void *dx, int64_t rows, int64_t radix,
                                          int64_t card, int64_t rest, int half, void *stream)
{
    const int64_t total = rows * card * rest;
    if (total <= 0 || radix <= 0 || !dx) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        rsoftmax_bwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)y, (const __half *)dy,
                                                                                  (__half *)dx, rows, radix, card, rest);
    else
        rsoftmax_bwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)y, (const float *)dy,
                                                                                 (float *)dx, rows, radix, card, rest);
}

extern "C" void bg_cuda_se_scale_fwd(const void *x, const void *s, const void *res, void *y, int64_t n, int64_t p,
                                     int64_t c, int relu, int half, void *stream)
{
    if (n * p * c <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half) se_fwd<__half>(x, s, res, y, n, p, c, relu, st);
    else se_fwd<float>(x, s, res, y, n, p, c, relu, st);
}

extern "C" void bg_cuda_se_scale_bwd_reduce(const void *x, const void *y, const void *dy, void *ds, void *dres,
                                            int64_t n, int64_t p, int64_t c, int relu, int half, void *stream)
{
    if (n * p * c <= 0 || (!ds && !dres)) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half) se_bwd_reduce<__half>(x, y, dy, ds, dres, n, p, c, relu, st);
    else se_bwd_reduce<float>(x, y, dy, ds, dres, n, p, c, relu, st);
}

extern "C" void bg_cuda_se_scale_bwd_dx(const void *dy, const void *y, const void *s, const void *dgap, void *dx,
                                        int64_t n, int64_t p, int64_t c, int relu, int half, void *stream)
{
    if (n * p * c <= 0 || !dx) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half) se_bwd_dx<__half>(dy, y, s, dgap, dx, n, p, c, relu, st);
    else se_bwd_dx<float>(dy, y, s, dgap, dx, n, p, c, relu, st);
}

extern "C" void bg_cuda_splat_fwd(const void *x, const void *a, void *y, int64_t n, int64_t p, int64_t r, int64_t c,
                                  int half, void *stream)
{
    const int64_t total = n * p * c;
    if (total <= 0 || r <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        splat_fwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)x, (const __half *)a,
                                                                               (__half *)y, total, p, r, c);
    else
        splat_fwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)x, (const float *)a,
                                                                              (float *)y, total, p, r, c);
}

extern "C" void bg_cuda_splat_bwd(const void *x, const void *a, const void *dy, void *dx, void *da, int64_t n,
                                  int64_t p, int64_t r, int64_t c, int half, void *stream)
{
    const int64_t total = n * p * r * c;
    if (total <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (dx) {
        if (half)
            splat_bwd_dx_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(
                (const __half *)a, (const __half *)dy, (__half *)dx, total, p, r, c);
        else
            splat_bwd_dx_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(
                (const float *)a, (const float *)dy, (float *)dx, total, p, r, c);
    }
    if (da) {
        dim3 grid = reduce_grid(r * c, n), block(32, 8);
        if (half)
            splat_bwd_da_k<__half><<<grid, block, 0, st>>>((const __half *)x, (const __half *)dy, (__half *)da, n, p, r, c);
        else
            splat_bwd_da_k<float><<<grid, block, 0, st>>>((const float *)x, (const float *)dy, (float *)da, n, p, r, c);
    }
}
