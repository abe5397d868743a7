// Pooling kernels over NHWC (see kernels/pool.h). One thread per output
// element for the forward passes and per input element for the backward
// passes (a gather, so overlapping windows need no atomics); the channel is
// the fastest index, so a warp reads consecutive channels of one pixel.
#include "pool.h"
#include "reduce.cuh"

namespace {

using bgkr::ld;
using bgkr::st;

// ---- global average pooling ------------------------------------------------------

// Block (32 channels x 8 position rows), grid (channel groups, images). Each
// thread sums positions ty, ty+8, ... (and the r splits inside), then the
// block combines the 8 partial sums in a fixed tree.
template <typename T>
__global__ void __launch_bounds__(256) gap_fwd_k(const T *x, T *y, int64_t n, int64_t p, int64_t r, int64_t c)
{
    __shared__ float buf[8][32];
    const int64_t k = (int64_t)blockIdx.x * 32 + threadIdx.x, rc = r * c;
    const float inv_p = 1.f / (float)p;
    for (int64_t b = blockIdx.y; b < n; b += gridDim.y) {
        float acc = 0.f;
        if (k < c) {
            const T *xb = x + b * p * rc + k;
#pragma unroll 4
            for (int64_t q = threadIdx.y; q < p; q += 8)
                for (int64_t s = 0; s < r; s++) acc += ld(xb, q * rc + s * c);
        }
        acc = bgkr::column_sum<8>(buf, acc);
        if (threadIdx.y == 0 && k < c) st(y, b * c + k, acc * inv_p);
    }
}

template <typename T>
__global__ void gap_bwd_k(const T *dy, T *dx, int64_t total, int64_t p, int64_t r, int64_t c)
{
    const float fp = (float)p;
    const int64_t rc = r * c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        const int64_t b = i / (p * rc), k = (i % rc) % c;
        st(dx, i, ld(dx, i) + ld(dy, b * c + k) / fp);
    }
}

// ---- windows ---------------------------------------------------------------------------

// ops/pool.c's pool_window: output o's window [a, e) in real coordinates and
// the average's divisor along one axis.
__device__ __forceinline__ void window(int64_t o, int64_t k, int64_t s, int64_t p, int64_t in, int include_pad,
                                       int64_t *a, int64_t *e, int64_t *count)
{
    int64_t start = o * s - p, end = start + k;
    if (end > in + p) end = in + p;
    const int64_t padded = end - start;
    if (start < 0) start = 0;
    if (end > in) end = in;
    *a = start;
    *e = end;
    *count = include_pad ? padded : end - start;
}

// Outputs whose window covers input coordinate i: [lo, hi] (empty if lo > hi).
__device__ __forceinline__ void covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t out, int64_t *lo,
                                         int64_t *hi)
{
    const int64_t first = i + p - k + 1; // o*s >= first
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    int64_t h = (i + p) / s;             // o*s <= i + p
    *hi = h < out - 1 ? h : out - 1;
}

// ---- avgpool2d -------------------------------------------------------------------------

template <typename T>
__global__ void avgpool_fwd_k(const T *x, T *y, bg_pool_geom g)
{
    const int64_t total = g.n * g.ho * g.wo * g.c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        int64_t t = i;
        const int64_t ch = t % g.c; t /= g.c;
        const int64_t ox = t % g.wo; t /= g.wo;
        const int64_t oy = t % g.ho;
        const int64_t img = t / g.ho;
        int64_t y0, y1, cy, x0, x1, cx;
        window(oy, g.kh, g.sh, g.ph, g.h, g.include_pad, &y0, &y1, &cy);
        window(ox, g.kw, g.sw, g.pw, g.w, g.include_pad, &x0, &x1, &cx);
        float acc = 0.f;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) acc += ld(x, ((img * g.h + iy) * g.w + ix) * g.c + ch);
        st(y, i, acc / (float)(cy * cx));
    }
}

template <typename T>
__global__ void avgpool_bwd_k(const T *dy, T *dx, bg_pool_geom g)
{
    const int64_t total = g.n * g.h * g.w * g.c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        int64_t t = i;
        const int64_t ch = t % g.c; t /= g.c;
        const int64_t ix = t % g.w; t /= g.w;
        const int64_t iy = t % g.h;
        const int64_t img = t / g.h;
        int64_t oy0, oy1, ox0, ox1;
        covering(iy, g.kh, g.sh, g.ph, g.ho, &oy0, &oy1);
        covering(ix, g.kw, g.sw, g.pw, g.wo, &ox0, &ox1);
        float acc = ld(dx, i);
        for (int64_t oy = oy0; oy <= oy1; oy++) {
            int64_t y0, y1, cy;
            window(oy, g.kh, g.sh, g.ph, g.h, g.include_pad, &y0, &y1, &cy);
            for (int64_t ox = ox0; ox <= ox1; ox++) {
                int64_t x0, x1, cx;
                window(ox, g.kw, g.sw, g.pw, g.w, g.include_pad, &x0, &x1, &cx);
                acc += ld(dy, ((img * g.ho + oy) * g.wo + ox) * g.c + ch) / (float)(cy * cx);
            }
        }
        st(dx, i, acc);
    }
}

// ---- maxpool2d -------------------------------------------------------------------------

template <typename T>
__global__ void maxpool_fwd_k(const T *x, T *y, int32_t *arg, bg_pool_geom g)
{
    const int64_t total = g.n * g.ho * g.wo * g.c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        int64_t t = i;
        const int64_t ch = t % g.c; t /= g.c;
        const int64_t ox = t % g.wo; t /= g.wo;
        const int64_t oy = t % g.ho;
        const int64_t img = t / g.ho;
        int64_t y0, y1, x0, x1, unused;
        window(oy, g.kh, g.sh, g.ph, g.h, 1, &y0, &y1, &unused);
        window(ox, g.kw, g.sw, g.pw, g.w, 1, &x0, &x1, &unused);
        // padding is -inf: start below everything, pointing at the first real element
        float best = -INFINITY;
        int64_t where = y0 * g.w + x0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                const float v = ld(x, ((img * g.h + iy) * g.w + ix) * g.c + ch);
                if (v > best || isnan(v)) {
                    best = v;
                    where = iy * g.w + ix;
                }
            }
        st(y, i, best);
        arg[i] = (int32_t)where;
    }
}

template <typename T>
__global__ void maxpool_bwd_k(const T *dy, const int32_t *arg, T *dx, bg_pool_geom g)
{
    const int64_t total = g.n * g.h * g.w * g.c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        int64_t t = i;
        const int64_t ch = t % g.c; t /= g.c;
        const int64_t ix = t % g.w; t /= g.w;
        const int64_t iy = t % g.h;
        const int64_t img = t / g.h;
        const int32_t me = (int32_t)(iy * g.w + ix);
        int64_t oy0, oy1, ox0, ox1;
        covering(iy, g.kh, g.sh, g.ph, g.ho, &oy0, &oy1);
        covering(ix, g.kw, g.sw, g.pw, g.wo, &ox0, &ox1);
        float acc = ld(dx, i);
        bool hit = false;
        for (int64_t oy = oy0; oy <= oy1; oy++)
            for (int64_t ox = ox0; ox <= ox1; ox++) {
                const int64_t o = ((img * g.ho + oy) * g.wo + ox) * g.c + ch;
                if (arg[o] == me) {
                    acc += ld(dy, o);
                    hit = true;
                }
            }
        if (hit) st(dx, i, acc); // untouched elements keep their exact bytes
    }
}

} // namespace

extern "C" void bg_cuda_gap_fwd(const void *x, void *y, int64_t n, int64_t p, int64_t r, int64_t c, int half,
                                void *stream)
{
    if (n <= 0 || c <= 0 || p <= 0 || r <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    dim3 grid((unsigned)((c + 31) / 32), (unsigned)(n < 65535 ? n : 65535));
    if (half) gap_fwd_k<__half><<<grid, dim3(32, 8), 0, st>>>((const __half *)x, (__half *)y, n, p, r, c);
    else gap_fwd_k<float><<<grid, dim3(32, 8), 0, st>>>((const float *)x, (float *)y, n, p, r, c);
}

extern "C" void bg_cuda_gap_bwd(const void *dy, void *dx, int64_t n, int64_t p, int64_t r, int64_t c, int half,
                                void *stream)
{
    const int64_t total = n * p * r * c;
    if (total <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        gap_bwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)dy, (__half *)dx, total, p, r, c);
    else
        gap_bwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)dy, (float *)dx, total, p, r, c);
}

extern "C" void bg_cuda_avgpool_fwd(const void *x, void *y, const bg_pool_geom *g, int half, void *stream)
{
    const int64_t total = g->n * g->ho * g->wo * g->c;
    if (total <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half) avgpool_fwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)x, (__half *)y, *g);
    else avgpool_fwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)x, (float *)y, *g);
}

extern "C" void bg_cuda_avgpool_bwd(const void *dy, void *dx, const bg_pool_geom *g, int half, void *stream)
{
    const int64_t total = g->n * g->h * g->w * g->c;
    if (total <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        avgpool_bwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)dy, (__half *)dx, *g);
    else avgpool_bwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)dy, (float *)dx, *g);
}

extern "C" void bg_cuda_maxpool_fwd(const void *x, void *y, int32_t *argmax, const bg_pool_geom *g, int half,
                                    void *stream)
{
    const int64_t total = g->n * g->ho * g->wo * g->c;
    if (total <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        maxpool_fwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)x, (__half *)y, argmax, *g);
    else maxpool_fwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)x, (float *)y, argmax, *g);
}

extern "C" void bg_cuda_maxpool_bwd(const void *dy, const int32_t *argmax, void *dx, const bg_pool_geom *g, int half,
                                    void *stream)
{
    const int64_t total = g->n * g->h * g->w * g->c;
    if (total <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        maxpool_bwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const __half *)dy, argmax,
                                                                                 (__half *)dx, *g);
    else
        maxpool_bwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>((const float *)dy, argmax, (float *)dx,
                                                                                *g);
}
