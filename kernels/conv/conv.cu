// Convolution launchers (kernels/conv/conv.h): one plan per call decides the
// algorithm, tile, channel padding, split-K and workspace layout from the
// shape alone (so bg_conv_ws_bytes and the call agree), then runs it. Also
// here: the naive reference kernels, the depthwise kernels, the padding copy,
// the statistics pass and the tile tuner.
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "conv.h"
#include "conv_internal.h"
#include "conv_problem.cuh"
#include "../gemm/gemm.h"
#include "../gemm/igemm_launch.h"
#include "../rtc/rtc_internal.h"

namespace bgk {

// ---- reference kernels: one thread per output element -----------------------------------
template <class T>
__global__ void naive_fwd_k(const T *x, const T *w, T *y, BgGeo g, BgEpilogue e)
{
    const long long total = (long long)g.n * g.ho * g.wo * g.co;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const int o = (int)(i % g.co);
        const long long pix = i / g.co;
        const int ox = (int)(pix % g.wo), oy = (int)(pix / g.wo % g.ho), img = (int)(pix / ((long long)g.wo * g.ho));
        const int grp = o / g.cog;
        float acc = 0.f;
        for (int ky = 0; ky < g.kh; ky++) {
            const int iy = oy * g.sh - g.ph + ky * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int kx = 0; kx < g.kw; kx++) {
                const int ix = ox * g.sw - g.pw + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                const T *xs = x + ((long long)(img * g.h + iy) * g.w + ix) * g.c + grp * g.cg;
                const T *ws = w + ((long long)(o * g.kh + ky) * g.kw + kx) * g.cg;
                for (int c = 0; c < g.cg; c++) acc = fmaf(to_f(xs[c]), to_f(ws[c]), acc);
            }
        }
        epi_one<T>(e, y, i, o, acc);
    }
}

template <class T>
__global__ void naive_dgrad_k(const T *dy, const T *w, T *dx, BgGeo g, BgEpilogue e)
{
    const long long total = (long long)g.n * g.h * g.w * g.c;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const int ch = (int)(i % g.c), grp = ch / g.cg, c = ch - grp * g.cg;
        const long long pix = i / g.c;
        const int ix = (int)(pix % g.w), iy = (int)(pix / g.w % g.h), img = (int)(pix / ((long long)g.w * g.h));
        float acc = 0.f;
        for (int ky = 0; ky < g.kh; ky++) {
            const int ty = iy + g.ph - ky * g.dh;
            if (ty < 0 || ty % g.sh) continue;
            const int oy = ty / g.sh;
            if (oy >= g.ho) continue;
            for (int kx = 0; kx < g.kw; kx++) {
                const int tx = ix + g.pw - kx * g.dw;
                if (tx < 0 || tx % g.sw) continue;
                const int ox = tx / g.sw;
                if (ox >= g.wo) continue;
                const T *d = dy + ((long long)(img * g.ho + oy) * g.wo + ox) * g.co + grp * g.cog;
                for (int o = 0; o < g.cog; o++)
                    acc = fmaf(to_f(d[o]), to_f(w[((long long)((grp * g.cog + o) * g.kh + ky) * g.kw + kx) * g.cg + c]), acc);
            }
        }
        epi_one<T>(e, dx, i, ch, acc);
    }
}

template <class T>
__global__ void naive_wgrad_k(const T *x, const T *dy, T *dw, BgGeo g, BgEpilogue e)
{
    const int kf = g.kh * g.kw * g.cg;
    const long long total = (long long)g.co * kf;
    const long long pixels = (long long)g.n * g.ho * g.wo;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const int o = (int)(i / kf), r = (int)(i % kf), tap = r / g.cg, c = r - tap * g.cg;
        const int ky = tap / g.kw, kx = tap - ky * g.kw, grp = o / g.cog;
        float acc = 0.f;
        for (long long pix = 0; pix < pixels; pix++) {
            const int ox = (int)(pix % g.wo), oy = (int)(pix / g.wo % g.ho), img = (int)(pix / ((long long)g.wo * g.ho));
            const int iy = oy * g.sh - g.ph + ky * g.dh, ix = ox * g.sw - g.pw + kx * g.dw;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            acc = fmaf(to_f(dy[pix * g.co + o]), to_f(x[((long long)(img * g.h + iy) * g.w + ix) * g.c + grp * g.cg + c]), acc);
        }
        epi_one<T>(e, dw, i, o, acc);
    }
}

// ---- depthwise (channels per group == 1; output channel o reads input o / cog) ----------------
// Forward and data gradient are direct: consecutive threads take consecutive
// channels, so every load is coalesced; taps re-read neighbours from cache.
template <class T>
__global__ void dw_fwd_k(const T *x, const T *w, T *y, BgGeo g, BgEpilogue e)
{
    const long long total = (long long)g.n * g.ho * g.wo * g.co;
    const int taps = g.kh * g.kw;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const int o = (int)(i % g.co), ci = o / g.cog;
        const long long pix = i / g.co;
        const int ox = (int)(pix % g.wo), oy = (int)(pix / g.wo % g.ho), img = (int)(pix / ((long long)g.wo * g.ho));
        const T *xi = x + (long long)img * g.h * g.w * g.c + ci;
        const T *wo = w + (long long)o * taps;
        float acc = 0.f;
        for (int ky = 0; ky < g.kh; ky++) {
            const int iy = oy * g.sh - g.ph + ky * g.dh;
            if ((unsigned)iy >= (unsigned)g.h) continue;
            for (int kx = 0; kx < g.kw; kx++) {
                const int ix = ox * g.sw - g.pw + kx * g.dw;
                if ((unsigned)ix >= (unsigned)g.w) continue;
                acc = fmaf(to_f(xi[((long long)iy * g.w + ix) * g.c]), to_f(wo[ky * g.kw + kx]), acc);
            }
        }
        epi_one<T>(e, y, i, o, acc);
    }
}

template <class T>
__global__ void dw_dgrad_k(const T *dy, const T *w, T *dx, BgGeo g, BgEpilogue e)
{
    const long long total = (long long)g.n * g.h * g.w * g.c;
    const int taps = g.kh * g.kw;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const int c = (int)(i % g.c);
        const long long pix = i / g.c;
        const int ix = (int)(pix % g.w), iy = (int)(pix / g.w % g.h), img = (int)(pix / ((long long)g.w * g.h));
        const T *di = dy + (long long)img * g.ho * g.wo * g.co + (long long)c * g.cog;
        float acc = 0.f;
        for (int ky = 0; ky < g.kh; ky++) {
            const int ty = iy + g.ph - ky * g.dh;
            if (ty < 0 || ty % g.sh || ty / g.sh >= g.ho) continue;
            for (int kx = 0; kx < g.kw; kx++) {
                const int tx = ix + g.pw - kx * g.dw;
                if (tx < 0 || tx % g.sw || tx / g.sw >= g.wo) continue;
                const T *d = di + ((long long)(ty / g.sh) * g.wo + tx / g.sw) * g.co;
                for (int j = 0; j < g.cog; j++)
                    acc = fmaf(to_f(d[j]), to_f(w[(long long)(c * g.cog + j) * taps + ky * g.kw + kx]), acc);
            }
        }
        epi_one<T>(e, dx, i, c, acc);
    }
}

// Weight gradient: block = 32 output channels x 8 pixel lanes; blockIdx.y is
// a pixel chunk. Each thread keeps up to 9 tap sums for its channel (larger
// kernels take several passes over the pixels), lanes are combined in shared
// memory in a fixed order, and the chunk's sums go to ws[chunk][o*taps + t]
// (several chunks, reduced afterwards in order) or straight into dw.
constexpr int DW_TAPS = 9;
template <class T>
__global__ void dw_wgrad_k(const T *x, const T *dy, T *dw, float *ws, BgGeo g, BgEpilogue e, long long chunk)
{
    __shared__ float red[8][32][DW_TAPS];
    const int lx = threadIdx.x & 31, ly = threadIdx.x >> 5;
    const int o = blockIdx.x * 32 + lx, taps = g.kh * g.kw, ci = o / g.cog;
    const long long pixels = (long long)g.n * g.ho * g.wo;
    const long long p0 = blockIdx.y * chunk, p1 = p0 + chunk < pixels ? p0 + chunk : pixels;
    for (int t0 = 0; t0 < taps; t0 += DW_TAPS) {
        float acc[DW_TAPS];
#pragma unroll
        for (int t = 0; t < DW_TAPS; t++) acc[t] = 0.f;
        if (o < g.co)
            for (long long pix = p0 + ly; pix < p1; pix += 8) {
                const int ox = (int)(pix % g.wo), oy = (int)(pix / g.wo % g.ho), img = (int)(pix / ((long long)g.wo * g.ho));
                const float d = to_f(dy[pix * g.co + o]);
                const T *xi = x + (long long)img * g.h * g.w * g.c + ci;
#pragma unroll
                for (int t = 0; t < DW_TAPS; t++) {
                    if (t0 + t >= taps) break;
                    const int ky = (t0 + t) / g.kw, kx = (t0 + t) - ky * g.kw;
                    const int iy = oy * g.sh - g.ph + ky * g.dh, ix = ox * g.sw - g.pw + kx * g.dw;
                    if ((unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w)
                        acc[t] = fmaf(d, to_f(xi[((long long)iy * g.w + ix) * g.c]), acc[t]);
                }
            }
#pragma unroll
        for (int t = 0; t < DW_TAPS; t++) red[ly][lx][t] = acc[t];
        __syncthreads();
        // 32 x DW_TAPS results, spread over the 256 threads
        for (int q = threadIdx.x; q < 32 * DW_TAPS; q += blockDim.x) {
            const int qx = q / DW_TAPS, t = q % DW_TAPS, oo = blockIdx.x * 32 + qx;
            if (oo >= g.co || t0 + t >= taps) continue;
            float s = 0.f;
            for (int l = 0; l < 8; l++) s += red[l][qx][t];
            const long long at = (long long)oo * taps + t0 + t;
            if (ws) ws[blockIdx.y * (long long)g.co * taps + at] = s;
            else epi_one<T>(e, dw, at, oo, s);
        }
        __syncthreads();
    }
}

// ---- channel padding: dst[a][b][c][d] = (b < B && d < D) ? src[a][b][c][d] : 0 --------------
template <class T>
__global__ void pad_k(const T *src, T *dst, long long A, int B, int Bp, int C, int D, int Dp)
{
    const long long total = A * Bp * C * Dp;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const int d = (int)(i % Dp);
        long long r = i / Dp;
        const int c = (int)(r % C);
        r /= C;
        const int b = (int)(r % Bp);
        const long long a = r / Bp;
        dst[i] = (b < B && d < D) ? src[((a * B + b) * C + c) * D + d] : zero_of<T>();
    }
}

// ---- batchnorm statistics ---------------------------------------------------------------------
// sum[c] = sum over rows of part[r][c] (and the squares half), fixed order.
__global__ void stats_fin_k(const float *part, int rows, int cols, float *sum, float *sumsq)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.f, q = 0.f;
    for (int r = 0; r < rows; r++) s += part[(long long)r * cols + c], q += part[((long long)rows + r) * cols + c];
    sum[c] = s;
    sumsq[c] = q;
}

// The same sums straight from y (paths without the fused partials): one
// block per 32 channels, 8 row lanes, combined in a fixed order.
template <class T>
__global__ void stats_y_k(const T *y, long long rows, int cols, float *sum, float *sumsq)
{
    __shared__ float ps[8][33], pq[8][33];
    const int cx = threadIdx.x & 31, cy = threadIdx.x >> 5, c = blockIdx.x * 32 + cx;
    float s = 0.f, q = 0.f;
    if (c < cols)
        for (long long r = cy; r < rows; r += 8) {
            const float v = to_f(y[r * cols + c]);
            s += v, q += v * v;
        }
    ps[cy][cx] = s, pq[cy][cx] = q;
    __syncthreads();
    if (cy == 0 && c < cols) {
        float ts = 0.f, tq = 0.f;
        for (int l = 0; l < 8; l++) ts += ps[l][cx], tq += pq[l][cx];
        sum[c] = ts, sumsq[c] = tq;
    }
}

// ---- the plan ---------------------------------------------------------------------------------
enum Kind { K_NAIVE, K_DW, K_TC_VEC, K_TC_SCALAR, K_SIMT };

struct Plan {
    int pass, half, kind, cfg;
    int ho, wo, cg, cog;         // real channels per group
    int pad, cgp, cogp;          // channel padding (cgp == cg, cogp == cog when off)
    int splits;                  // wgrad: k slices into the workspace
    bool via_ws;                 // wgrad: results pass through the workspace (split or padded)
    size_t off_a, off_b, off_split, off_stats, ws_total; // workspace regions (bytes)
    int stats_rows;              // fused statistics: partial rows (= grid.x)
    long long dw_chunk;          // depthwise wgrad: pixels per chunk
    int dw_chunks;
    BgGeo geo;
    dim3 grid;
    int threads, smem;
    char tune_key[160];
};

static size_t align256(size_t v) { return (v + 255) & ~(size_t)255; }
static int round8(int v) { return (v + 7) / 8 * 8; }

static int check_shape(const bg_conv_shape *s, int *ho, int *wo, char *err, size_t errn)
{
    if (!s) return fail(err, errn, BG_KERR_ARG, "conv: no shape");
    if (s->n < 1 || s->h < 1 || s->w < 1 || s->c < 1 || s->co < 1 || s->kh < 1 || s->kw < 1)
        return fail(err, errn, BG_KERR_ARG, "conv: empty shape n=%d h=%d w=%d c=%d co=%d kernel %dx%d", s->n, s->h,
                    s->w, s->c, s->co, s->kh, s->kw);
    if (s->sh < 1 || s->sw < 1 || s->dh < 1 || s->dw < 1 || s->ph < 0 || s->pw < 0 || s->groups < 1)
        return fail(err, errn, BG_KERR_ARG, "conv: stride %dx%d dilation %dx%d groups %d must be >= 1, padding %dx%d >= 0",
                    s->sh, s->sw, s->dh, s->dw, s->groups, s->ph, s->pw);
    if (s->c % s->groups || s->co % s->groups)
        return fail(err, errn, BG_KERR_ARG, "conv: groups %d does not divide c=%d and co=%d", s->groups, s->c, s->co);
    const int eh = s->dh * (s->kh - 1) + 1, ew = s->dw * (s->kw - 1) + 1;
    if (eh > s->h + 2 * s->ph || ew > s->w + 2 * s->pw)
        return fail(err, errn, BG_KERR_ARG, "conv: kernel extent %dx%d exceeds the padded input %dx%d", eh, ew,
                    s->h + 2 * s->ph, s->w + 2 * s->pw);
    *ho = (s->h + 2 * s->ph - eh) / s->sh + 1;
    *wo = (s->w + 2 * s->pw - ew) / s->sw + 1;
    const long long in = (long long)s->n * s->h * s->w * s->c, out = (long long)s->n * *ho * *wo * s->co;
    const long long wt = (long long)s->co * s->kh * s->kw * (s->c / s->groups);
    // Pixel and channel indices are 32-bit inside the kernels; offsets are 64-bit.
    if ((long long)s->n * s->h * s->w >= (1LL << 31) || (long long)s->n * *ho * *wo >= (1LL << 31) ||
        wt >= (1LL << 31) || in >= (1LL << 40) || out >= (1LL << 40))
        return fail(err, errn, BG_KERR_ARG, "conv: tensor too large for 32-bit pixel indices");
    return 0;
}

static const char *kind_name(int k)
{
    switch (k) {
    case K_NAIVE: return "naive";
    case K_DW: return "depthwise";
    case K_TC_VEC: return "igemm-tc cp.async";
    case K_TC_SCALAR: return "igemm-tc scalar";
    default: return "igemm-fma";
    }
}

static void tile_of(int kind, int cfg, int &bm, int &bn, int &threads, int &smem)
{
    if (kind == K_SIMT) {
        bm = bn = cfg == CFG_L ? 128 : 64;
        threads = 256;
        smem = cfg == CFG_L ? SimtL::SMEM : SimtS::SMEM;
        return;
    }
    if (kind == K_TC_SCALAR) {
        bm = TcScalar::BM, bn = TcScalar::BN, threads = TcScalar::THREADS, smem = TcScalar::SMEM_SCALAR;
        return;
    }
    switch (cfg) {
    case CFG_L: bm = TcL::BM, bn = TcL::BN, threads = TcL::THREADS, smem = TcL::SMEM_VEC; break;
    case CFG_W: bm = TcW::BM, bn = TcW::BN, threads = TcW::THREADS, smem = TcW::SMEM_VEC; break;
    default: bm = TcS::BM, bn = TcS::BN, threads = TcS::THREADS, smem = TcS::SMEM_VEC; break;
    }
}

// The GEMM view of a pass: M x N per z, z = groups (x stride phases for dgrad).
static void gemm_view(const Plan &P, const bg_conv_shape *s, long long &M, long long &N, long long &K, long long &Z)
{
    if (P.pass == BG_CONV_FWD) {
        M = (long long)s->n * P.ho * P.wo, N = P.cog, K = (long long)s->kh * s->kw * P.cgp, Z = s->groups;
    } else if (P.pass == BG_CONV_DGRAD) {
        M = (long long)s->n * ((s->h + s->sh - 1) / s->sh) * ((s->w + s->sw - 1) / s->sw);
        N = P.cgp, K = (long long)s->kh * s->kw * P.cogp, Z = (long long)s->groups * s->sh * s->sw;
    } else {
        M = P.cogp, N = (long long)s->kh * s->kw * P.cgp, K = (long long)s->n * P.ho * P.wo, Z = s->groups;
    }
}

// Decide everything from the shape. ws_avail: bytes the caller offers
// (SIZE_MAX when sizing the workspace); aligned: operand pointers allow 16-byte loads.
static int make_plan(Plan &P, const bg_conv_shape *s, bg_conv_pass pass, int half, const bg_conv_opts *o,
                     int with_stats, size_t ws_avail, bool aligned, char *err, size_t errn)
{
    P = Plan{};
    int rc = check_shape(s, &P.ho, &P.wo, err, errn);
    if (rc) return rc;
    if (pass < BG_CONV_FWD || pass > BG_CONV_WGRAD) return fail(err, errn, BG_KERR_ARG, "conv: unknown pass %d", (int)pass);
    const bg_conv_algo algo = o ? o->algo : BG_CONV_AUTO;
    const int flags = o ? o->flags : 0;
    P.pass = pass, P.half = half;
    P.cg = s->c / s->groups, P.cog = s->co / s->groups;
    P.cgp = P.cg, P.cogp = P.cog;
    P.splits = 1;
    // Deterministic plans assume a nominal H100 whatever the device, so the
    // tile and the split (and so the summation order) depend on the shape
    // alone; otherwise the device's SM count shapes them (no device, when
    // sizing ahead of time: plan for an H100 too).
    const bool det = (flags & BG_CONV_DETERMINISTIC) != 0;
    const int sms_dev = det ? 0 : sm_count();
    const int sms = sms_dev > 0 ? sms_dev : NOMINAL_SMS;

    switch (algo) {
    case BG_CONV_NAIVE: P.kind = K_NAIVE; break;
    case BG_CONV_DEPTHWISE:
        if (P.cg != 1)
            return fail(err, errn, BG_KERR_ARG, "conv: the depthwise kernel needs 1 channel per group, got %d (c=%d groups=%d)",
                        P.cg, s->c, s->groups);
        P.kind = K_DW;
        break;
    case BG_CONV_AUTO:
    case BG_CONV_IGEMM:
    case BG_CONV_IGEMM_SCALAR:
        if (algo == BG_CONV_AUTO && P.cg == 1) P.kind = K_DW;
        else if (!half) P.kind = K_SIMT;
        else if (algo == BG_CONV_IGEMM_SCALAR) P.kind = K_TC_SCALAR;
        else P.kind = K_TC_VEC;
        break;
    default: return fail(err, errn, BG_KERR_ARG, "conv: unknown algorithm %d", (int)algo);
    }

    // cp.async needs whole 8-channel chunks: c per group (and co per group
    // for the backward passes). Otherwise pad into the workspace, or load
    // element by element.
    const size_t es = half ? 2 : 4;
    if (P.kind == K_TC_VEC) {
        const bool fits = P.cg % 8 == 0 && (pass == BG_CONV_FWD || P.cog % 8 == 0);
        if (!fits || !aligned) {
            if (flags & BG_CONV_NO_PAD) P.kind = K_TC_SCALAR;
            else {
                P.pad = 1;
                P.cgp = round8(P.cg);
                if (pass != BG_CONV_FWD) P.cogp = round8(P.cog);
            }
        }
    }
    size_t off = 0;
    if (P.pad) {
        const long long pin = (long long)s->n * s->h * s->w, pout = (long long)s->n * P.ho * P.wo, taps = (long long)s->kh * s->kw;
        size_t a_bytes, b_bytes;
        if (pass == BG_CONV_FWD) { // x', w'
            a_bytes = (size_t)pin * s->groups * P.cgp * es;
            b_bytes = (size_t)s->co * taps * P.cgp * es;
        } else if (pass == BG_CONV_DGRAD) { // dy', w'
            a_bytes = (size_t)pout * s->groups * P.cogp * es;
            b_bytes = (size_t)s->groups * P.cogp * taps * P.cgp * es;
        } else { // dy', x'
            a_bytes = (size_t)pout * s->groups * P.cogp * es;
            b_bytes = (size_t)pin * s->groups * P.cgp * es;
        }
        P.off_a = off, off = align256(off + a_bytes);
        P.off_b = off, off = align256(off + b_bytes);
    }

    long long M, N, K, Z;
    gemm_view(P, s, M, N, K, Z);
    const int bk = P.kind == K_SIMT ? 8 : 32;
    if (P.kind == K_TC_VEC) {
        P.cfg = o && o->config > 0 ? o->config : 0;
        if (P.cfg >= CFG_COUNT) return fail(err, errn, BG_KERR_ARG, "conv: no tensor-core config %d", P.cfg);
        snprintf(P.tune_key, sizeof P.tune_key, "conv%d.%d.%d.%d.%d.%d.%d.%d.%d.%d.%d.%d.%d.%d.%d.%d", (int)pass, s->n, s->h,
                 s->w, s->c, s->co, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->dh, s->dw, s->groups, P.pad);
        if (!P.cfg && o && o->rtc && !det) P.cfg = rtc_tuned_get(o->rtc, P.tune_key); // timings differ per GPU
        if (!P.cfg) P.cfg = tc_pick(M, N, Z, sms);
    } else if (P.kind == K_TC_SCALAR) {
        P.cfg = CFG_S;
    } else if (P.kind == K_SIMT) {
        P.cfg = o && o->config > 0 ? o->config : simt_pick(M, N, Z, sms);
        if (P.cfg != CFG_L && P.cfg != CFG_S) return fail(err, errn, BG_KERR_ARG, "conv: no FMA config %d", P.cfg);
    }

    const long long kt = (K + bk - 1) / bk;
    if (P.kind == K_TC_VEC || P.kind == K_TC_SCALAR || P.kind == K_SIMT) {
        int bm, bn;
        tile_of(P.kind, P.cfg, bm, bn, P.threads, P.smem);
        const long long tiles = ((M + bm - 1) / bm) * ((N + bn - 1) / bn) * Z;
        if (pass == BG_CONV_WGRAD) {
            int want = o && o->splits > 0 ? o->splits : 0;
            if (!want) { // auto: fill ~1.5 waves, at least 8 k-tiles per slice
                want = 1;
                if (sms > 0 && tiles < sms) want = (int)((3LL * sms / 2 + tiles - 1) / tiles);
                const long long cap = kt / 8 > 1 ? kt / 8 : 1;
                if (want > cap) want = (int)cap;
                if (want > 64) want = 64;
            }
            if (want < 1) want = 1;
            if (want > kt && kt > 0) want = (int)kt;
            const size_t slice = (size_t)s->groups * P.cogp * s->kh * s->kw * P.cgp * sizeof(float);
            if (P.pad || want > 1) {
                if (off + align256(slice * want) > ws_avail && want > 1) want = 1; // no room: no split
                if (P.pad || want > 1) {
                    P.via_ws = true;
                    P.splits = want;
                    P.off_split = off, off = align256(off + slice * want);
                }
            }
        }
        const int kps = (int)((kt + P.splits - 1) / P.splits);
        if (P.splits > 1) P.splits = (int)((kt + kps - 1) / kps); // no empty slices
        P.grid = dim3((unsigned)((M + bm - 1) / bm), (unsigned)((N + bn - 1) / bn), (unsigned)(Z * P.splits));
        if (P.grid.y > 65535 || P.grid.z > 65535)
            return fail(err, errn, BG_KERR_ARG, "conv: grid %ux%ux%u too large", P.grid.x, P.grid.y, P.grid.z);
        if (with_stats && pass == BG_CONV_FWD && P.kind != K_SIMT) {
            P.stats_rows = (int)P.grid.x;
            P.off_stats = off, off = align256(off + (size_t)2 * P.stats_rows * s->co * sizeof(float));
        }
        (void)K;
    }
    if (P.kind == K_DW && pass == BG_CONV_WGRAD) {
        const long long pixels = (long long)s->n * P.ho * P.wo, cb = (s->co + 31) / 32;
        long long chunks = 1;
        if (sms > 0 && cb < 2LL * sms) chunks = (2LL * sms + cb - 1) / cb;
        const long long maxc = (pixels + 255) / 256;
        if (chunks > maxc) chunks = maxc;
        if (chunks > 4096) chunks = 4096;
        if (chunks < 1) chunks = 1;
        const size_t need = align256((size_t)chunks * s->co * s->kh * s->kw * sizeof(float));
        if (chunks > 1 && off + need > ws_avail) chunks = 1;
        P.dw_chunks = (int)chunks;
        P.dw_chunk = (pixels + chunks - 1) / chunks;
        if (chunks > 1) P.off_split = off, off += need;
    }
    P.ws_total = off;
    if (off > ws_avail) { // only the padded path insists on its workspace
        if (P.pad && !(flags & BG_CONV_NO_PAD)) {
            bg_conv_opts o2 = o ? *o : bg_conv_opts{};
            o2.flags |= BG_CONV_NO_PAD;
            return make_plan(P, s, pass, half, &o2, with_stats, ws_avail, aligned, err, errn);
        }
        // stats partials with no room: computed from y afterwards instead
        if (P.stats_rows) {
            P.stats_rows = 0;
            P.ws_total = P.off_stats;
        }
        if (P.ws_total > ws_avail) return fail(err, errn, BG_KERR_ARG, "conv: workspace of %zu bytes needed, %zu given", P.ws_total, ws_avail);
    }

    // geometry as the kernels see it (padded operands, real output)
    BgGeo &g = P.geo;
    g.n = s->n, g.h = s->h, g.w = s->w, g.kh = s->kh, g.kw = s->kw, g.ho = P.ho, g.wo = P.wo;
    g.sh = s->sh, g.sw = s->sw, g.ph = s->ph, g.pw = s->pw, g.dh = s->dh, g.dw = s->dw;
    g.batch = s->groups;
    g.cg = P.cgp, g.c = s->groups * P.cgp;
    g.cog = P.cogp, g.co = s->groups * P.cogp;
    if (pass == BG_CONV_FWD) g.oc = s->co, g.ocg = P.cog;
    else if (pass == BG_CONV_DGRAD) g.oc = s->c, g.ocg = P.cg;
    else g.oc = g.co, g.ocg = g.cog;
    g.M = (int)M, g.N = (int)N, g.K = (int)(K < (1LL << 31) ? K : (1LL << 31) - 1);
    return 0;
}

static int grid_for(long long total)
{
    const long long b = (total + 255) / 256;
    return (int)(b < 65535 * 4 ? (b > 0 ? b : 1) : 65535 * 4);
}

struct Bufs {
    const void *a, *b; // fprop: x, w; dgrad: dy, w; wgrad: x, dy (as the API takes them)
    void *out;
};

static int run_plan(const Plan &P, const bg_conv_shape *s, const Bufs &B, const bg_conv_epilogue *ep, int accumulate,
                    const bg_conv_opts *o, cudaStream_t st, char *err, size_t errn)
{
    const bool half = P.half;
    char *ws = o ? (char *)o->ws : NULL;
    BgEpilogue e = {};
    e.alpha = 1.f;
    e.beta = accumulate ? 1.f : 0.f;
    if (ep && P.pass == BG_CONV_FWD) e.bias = ep->bias, e.residual = ep->residual, e.act = ep->act;
    const BgGeo &g = P.geo;
    cudaError_t ce = cudaSuccess;

    if (P.kind == K_NAIVE || P.kind == K_DW) {
        const long long total = P.pass == BG_CONV_FWD ? (long long)s->n * P.ho * P.wo * s->co
                              : P.pass == BG_CONV_DGRAD ? (long long)s->n * s->h * s->w * s->c
                                                        : (long long)s->co * s->kh * s->kw * P.cg;
        const int blocks = grid_for(total);
        if (P.kind == K_NAIVE) {
            if (P.pass == BG_CONV_FWD) {
                if (half) naive_fwd_k<bg_f16><<<blocks, 256, 0, st>>>((const bg_f16 *)B.a, (const bg_f16 *)B.b, (bg_f16 *)B.out, g, e);
                else naive_fwd_k<float><<<blocks, 256, 0, st>>>((const float *)B.a, (const float *)B.b, (float *)B.out, g, e);
            } else if (P.pass == BG_CONV_DGRAD) {
                if (half) naive_dgrad_k<bg_f16><<<blocks, 256, 0, st>>>((const bg_f16 *)B.a, (const bg_f16 *)B.b, (bg_f16 *)B.out, g, e);
                else naive_dgrad_k<float><<<blocks, 256, 0, st>>>((const float *)B.a, (const float *)B.b, (float *)B.out, g, e);
            } else {
                if (half) naive_wgrad_k<bg_f16><<<blocks, 256, 0, st>>>((const bg_f16 *)B.a, (const bg_f16 *)B.b, (bg_f16 *)B.out, g, e);
                else naive_wgrad_k<float><<<blocks, 256, 0, st>>>((const float *)B.a, (const float *)B.b, (float *)B.out, g, e);
            }
        } else if (P.pass == BG_CONV_FWD) {
            if (half) dw_fwd_k<bg_f16><<<blocks, 256, 0, st>>>((const bg_f16 *)B.a, (const bg_f16 *)B.b, (bg_f16 *)B.out, g, e);
            else dw_fwd_k<float><<<blocks, 256, 0, st>>>((const float *)B.a, (const float *)B.b, (float *)B.out, g, e);
        } else if (P.pass == BG_CONV_DGRAD) {
            if (half) dw_dgrad_k<bg_f16><<<blocks, 256, 0, st>>>((const bg_f16 *)B.a, (const bg_f16 *)B.b, (bg_f16 *)B.out, g, e);
            else dw_dgrad_k<float><<<blocks, 256, 0, st>>>((const float *)B.a, (const float *)B.b, (float *)B.out, g, e);
        } else {
            float *part = P.dw_chunks > 1 ? (float *)(ws + P.off_split) : NULL;
            const dim3 grid((unsigned)((s->co + 31) / 32), (unsigned)P.dw_chunks);
            if (half) dw_wgrad_k<bg_f16><<<grid, 256, 0, st>>>((const bg_f16 *)B.a, (const bg_f16 *)B.b, (bg_f16 *)B.out, part, g, e, P.dw_chunk);
            else dw_wgrad_k<float><<<grid, 256, 0, st>>>((const float *)B.a, (const float *)B.b, (float *)B.out, part, g, e, P.dw_chunk);
            ce = cudaGetLastError();
            if (ce == cudaSuccess && part) {
                const int taps = s->kh * s->kw;
                ce = splitk_reduce(part, (long long)s->co * taps, P.dw_chunks, B.out, half, s->co, taps, taps, taps,
                                   PadMap{0, 1}, PadMap{0, 1}, e, st);
            }
        }
        if (ce == cudaSuccess) ce = cudaGetLastError();
        return cuda_fail(err, errn, ce, P.kind == K_NAIVE ? "conv naive launch" : "conv depthwise launch");
    }

    // ---- implicit GEMM ----
    const void *a = P.pass == BG_CONV_WGRAD ? B.b : B.a; // the kernels' A: x, dy, dy
    const void *b = P.pass == BG_CONV_WGRAD ? B.a : B.b; // and B: w, w, x
    if (P.pad) {
        void *ap = ws + P.off_a, *bp = ws + P.off_b;
        const long long pin = (long long)s->n * s->h * s->w, pout = (long long)s->n * P.ho * P.wo;
        const int taps = s->kh * s->kw;
        // A: fprop x -> [pin][groups][cgp]; dgrad/wgrad dy -> [pout][groups][cogp]
        const long long a_rows = P.pass == BG_CONV_FWD ? pin : pout;
        const int a_d = P.pass == BG_CONV_FWD ? P.cg : P.cog, a_dp = P.pass == BG_CONV_FWD ? P.cgp : P.cogp;
        const long long a_total = a_rows * s->groups * a_dp;
        if (half) pad_k<bg_f16><<<grid_for(a_total), 256, 0, st>>>((const bg_f16 *)a, (bg_f16 *)ap, a_rows, s->groups, s->groups, 1, a_d, a_dp);
        else pad_k<float><<<grid_for(a_total), 256, 0, st>>>((const float *)a, (float *)ap, a_rows, s->groups, s->groups, 1, a_d, a_dp);
        // B: fprop w -> [co][taps][cgp]; dgrad w -> [groups][cogp][taps][cgp]; wgrad x -> [pin][groups][cgp]
        long long bA;
        int bB, bBp, bC, bD, bDp;
        if (P.pass == BG_CONV_FWD) bA = 1, bB = s->co, bBp = s->co, bC = taps, bD = P.cg, bDp = P.cgp;
        else if (P.pass == BG_CONV_DGRAD) bA = s->groups, bB = P.cog, bBp = P.cogp, bC = taps, bD = P.cg, bDp = P.cgp;
        else bA = pin, bB = s->groups, bBp = s->groups, bC = 1, bD = P.cg, bDp = P.cgp;
        const long long b_total = bA * bBp * bC * bDp;
        if (half) pad_k<bg_f16><<<grid_for(b_total), 256, 0, st>>>((const bg_f16 *)b, (bg_f16 *)bp, bA, bB, bBp, bC, bD, bDp);
        else pad_k<float><<<grid_for(b_total), 256, 0, st>>>((const float *)b, (float *)bp, bA, bB, bBp, bC, bD, bDp);
        ce = cudaGetLastError();
        if (ce != cudaSuccess) return cuda_fail(err, errn, ce, "conv padding launch");
        a = ap, b = bp;
    }
    BgIgemmParams p = {};
    p.geo = g;
    p.epi = e;
    p.a = a, p.b = b, p.out = B.out;
    p.splits = P.splits;
    p.kt_per_split = 1;
    if (P.via_ws) {
        long long M, N, K, Z;
        gemm_view(P, s, M, N, K, Z);
        const long long kt = (K + (P.kind == K_SIMT ? 8 : 32) - 1) / (P.kind == K_SIMT ? 8 : 32);
        p.kt_per_split = (int)((kt + P.splits - 1) / P.splits);
        p.ws = (float *)(ws + P.off_split);
        p.ws_stride = (long long)s->groups * P.cogp * s->kh * s->kw * P.cgp;
    }
    if (P.stats_rows) {
        p.epi.stats = (float *)(ws + P.off_stats);
        p.epi.stats_ld = s->co;
    }

    // NVRTC-specialised kernel if a cache is given and it compiles; else precompiled.
    const void *fn = NULL;
    if (o && o->rtc) {
        static const char *probs[3] = {"bgk::ConvFprop", "bgk::ConvDgrad", "bgk::ConvWgrad"};
        if (rtc_igemm_kernel(o->rtc, probs[P.pass], "", cfg_type_name(P.kind == K_SIMT, P.kind == K_TC_SCALAR, P.cfg), P.kind == K_TC_VEC,
                             P.kind == K_SIMT, g, &fn))
            fn = NULL;
    }
    if (fn) {
        if (P.smem > 48 * 1024) ce = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, P.smem);
        void *args[] = {(void *)&p};
        if (ce == cudaSuccess) ce = cudaLaunchKernel(fn, P.grid, dim3(P.threads), args, (size_t)P.smem, st);
    } else if (P.kind == K_SIMT) {
        ce = conv_launch_simt(P.pass, P.cfg, P.grid, st, p);
    } else {
        ce = conv_launch_tc(P.pass, P.cfg, P.kind == K_TC_VEC, P.grid, st, p);
    }
    if (ce != cudaSuccess) return cuda_fail(err, errn, ce, "conv implicit-GEMM launch");

    if (P.via_ws) { // wgrad: sum the slices (and drop the channel padding) into dw
        const int taps = s->kh * s->kw;
        ce = splitk_reduce(p.ws, p.ws_stride, P.splits, B.out, half, s->co, taps * P.cg, (long long)taps * P.cg,
                           (long long)taps * P.cgp, PadMap{P.cogp != P.cog ? P.cogp : 0, P.cog},
                           PadMap{P.cgp != P.cg ? P.cgp : 0, P.cg}, e, st);
        if (ce != cudaSuccess) return cuda_fail(err, errn, ce, "conv split-K reduce");
    }
    return 0;
}

} // namespace bgk

using namespace bgk;

extern "C" int bg_conv_check(const bg_conv_shape *s, int *ho, int *wo, char *err, size_t errn)
{
    int h = 0, w = 0;
    int rc = check_shape(s, &h, &w, err, errn);
    if (ho) *ho = h;
    if (wo) *wo = w;
    return rc;
}

extern "C" size_t bg_conv_ws_bytes(const bg_conv_shape *s, bg_conv_pass pass, int half, const bg_conv_opts *o,
                                   int with_stats)
{
    Plan P;
    char err[8];
    if (make_plan(P, s, pass, half, o, with_stats, SIZE_MAX, true, err, sizeof err)) return 0;
    return P.ws_total;
}

extern "C" const char *bg_conv_describe(const bg_conv_shape *s, bg_conv_pass pass, int half, const bg_conv_opts *o,
                                        char *buf, size_t n)
{
    Plan P;
    char err[160];
    const size_t avail = o && o->ws ? o->ws_bytes : 0;
    if (make_plan(P, s, pass, half, o, 0, avail, true, err, sizeof err)) {
        snprintf(buf, n, "invalid: %s", err);
        return buf;
    }
    const char *tile = P.kind == K_TC_VEC || P.kind == K_TC_SCALAR ? bg_gemm_config_name(1, P.cfg)
                     : P.kind == K_SIMT ? bg_gemm_config_name(0, P.cfg) : "";
    snprintf(buf, n, "%s%s%s%s", kind_name(P.kind), tile && *tile ? " " : "", tile ? tile : "", P.pad ? " padded" : "");
    if (P.splits > 1) {
        size_t k = strlen(buf);
        snprintf(buf + k, n > k ? n - k : 0, " split-k %d", P.splits);
    }
    return buf;
}

static bool al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

static int conv_call(const bg_conv_shape *s, bg_conv_pass pass, int half, const void *a, const void *b, void *out,
                     const bg_conv_epilogue *ep, int accumulate, const bg_conv_opts *o, void *stream, char *err,
                     size_t errn)
{
    if (!a || !b || !out) return fail(err, errn, BG_KERR_ARG, "conv: null tensor pointer");
    if (o && o->ws && ((uintptr_t)o->ws & 255))
        return fail(err, errn, BG_KERR_ARG, "conv: workspace must be 256-byte aligned");
    const size_t avail = o && o->ws ? o->ws_bytes : 0;
    const bool aligned = al16(a) && al16(b);
    Plan P;
    int rc = make_plan(P, s, pass, half, o, ep && ep->sum && ep->sumsq, avail, aligned, err, errn);
    if (rc) return rc;
    if (ep && (ep->act < BG_ACT_NONE || ep->act > BG_ACT_SIGMOID))
        return fail(err, errn, BG_KERR_ARG, "conv: unknown activation %d", ep->act);
    if (ep && (ep->sum != NULL) != (ep->sumsq != NULL))
        return fail(err, errn, BG_KERR_ARG, "conv: sum and sumsq come together");
    Bufs B = {a, b, out};
    cudaStream_t st = (cudaStream_t)stream;
    rc = run_plan(P, s, B, ep, accumulate, o, st, err, errn);
    if (rc || pass != BG_CONV_FWD || !ep || !ep->sum) return rc;
    cudaError_t ce;
    if (P.stats_rows) {
        stats_fin_k<<<(s->co + 255) / 256, 256, 0, st>>>((const float *)((char *)o->ws + P.off_stats), P.stats_rows,
                                                         s->co, ep->sum, ep->sumsq);
    } else {
        const long long rows = (long long)s->n * P.ho * P.wo;
        if (half) stats_y_k<bg_f16><<<(s->co + 31) / 32, 256, 0, st>>>((const bg_f16 *)out, rows, s->co, ep->sum, ep->sumsq);
        else stats_y_k<float><<<(s->co + 31) / 32, 256, 0, st>>>((const float *)out, rows, s->co, ep->sum, ep->sumsq);
    }
    ce = cudaGetLastError();
    return cuda_fail(err, errn, ce, "conv statistics launch");
}

extern "C" int bg_conv_fwd_cuda(const bg_conv_shape *s, int half, const void *x, const void *w, void *y,
                                const bg_conv_epilogue *ep, const bg_conv_opts *o, void *stream, char *err, size_t errn)
{
    return conv_call(s, BG_CONV_FWD, half, x, w, y, ep, ep ? ep->accumulate : 0, o, stream, err, errn);
}

extern "C" int bg_conv_dgrad_cuda(const bg_conv_shape *s, int half, const void *dy, const void *w, void *dx,
                                  int accumulate, const bg_conv_opts *o, void *stream, char *err, size_t errn)
{
    return conv_call(s, BG_CONV_DGRAD, half, dy, w, dx, NULL, accumulate, o, stream, err, errn);
}

extern "C" int bg_conv_wgrad_cuda(const bg_conv_shape *s, int half, const void *x, const void *dy, void *dw,
                                  int accumulate, const bg_conv_opts *o, void *stream, char *err, size_t errn)
{
    return conv_call(s, BG_CONV_WGRAD, half, x, dy, dw, NULL, accumulate, o, stream, err, errn);
}

extern "C" int bg_conv_tune(const bg_conv_shape *s, bg_conv_pass pass, int half, const void *a, const void *b, void *out,
                            const bg_conv_opts *o, void *stream, int *best, float *ms, char *err, size_t errn)
{
    *best = 0, *ms = 0.f;
    Plan P;
    const size_t avail = o && o->ws ? o->ws_bytes : 0;
    int rc = make_plan(P, s, pass, half, o, 0, avail, al16(a) && al16(b), err, errn);
    if (rc || P.kind != K_TC_VEC) return rc;
    cudaStream_t st = (cudaStream_t)stream;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cudaError_t ce = cudaEventCreate(&e0);
    if (ce == cudaSuccess) ce = cudaEventCreate(&e1);
    float best_ms = 0.f;
    for (int cfg = CFG_L; cfg < CFG_COUNT && ce == cudaSuccess && !rc; cfg++) {
        bg_conv_opts o2 = o ? *o : bg_conv_opts{};
        o2.config = cfg;
        auto call = [&]() {
            return pass == BG_CONV_FWD ? bg_conv_fwd_cuda(s, half, a, b, out, NULL, &o2, stream, err, errn)
                 : pass == BG_CONV_DGRAD ? bg_conv_dgrad_cuda(s, half, a, b, out, 0, &o2, stream, err, errn)
                                         : bg_conv_wgrad_cuda(s, half, a, b, out, 0, &o2, stream, err, errn);
        };
        rc = call(); // warm-up (and NVRTC compile, if any)
        if (!rc) ce = cudaEventRecord(e0, st);
        for (int i = 0; i < 3 && !rc && ce == cudaSuccess; i++) rc = call();
        if (!rc && ce == cudaSuccess) ce = cudaEventRecord(e1, st);
        if (!rc && ce == cudaSuccess) ce = cudaEventSynchronize(e1);
        float t = 0.f;
        if (!rc && ce == cudaSuccess) ce = cudaEventElapsedTime(&t, e0, e1);
        if (!rc && ce == cudaSuccess && (!*best || t / 3 < best_ms)) *best = cfg, best_ms = t / 3;
    }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (rc) return rc;
    if (ce != cudaSuccess) return cuda_fail(err, errn, ce, "conv tune");
    *ms = best_ms;
    if (o && o->rtc && *best) rtc_tuned_put(o->rtc, P.tune_key, *best);
    return 0;
}
