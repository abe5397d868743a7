// Batchnorm forward (training, eval) and backward over {m, c} NHWC rows, with
// an optional fused ReLU. See kernels/batchnorm.h for the algorithm; the
// comments here say why each kernel is shaped the way it is.
//
// Reductions use (32 channels x 8 rows) blocks: a warp reads 32 consecutive
// channels of one row, so every 32-byte sector it touches is fully used in
// f32 and f16 alike, for any channel count (43 leaves a partly idle second
// column of threads, never an uncoalesced access). Each block covers a fixed
// range of rows (a "split"); partial sums go to the workspace and a second
// small kernel combines them in split order. No atomics anywhere.
#include "batchnorm.h"
#include "reduce.cuh"

namespace {

using bgkr::ld;
using bgkr::st;

constexpr int TC = BG_BN_TILE_C;
constexpr int TR = BG_BN_TILE_R;

struct Geom {
    int64_t m, c, splits, rows_per_split, groups;
};

Geom geom(int64_t m, int64_t c)
{
    Geom g;
    g.m = m;
    g.c = c;
    g.splits = bg_bn_splits(m, c);
    g.rows_per_split = (m + g.splits - 1) / g.splits;
    g.groups = (c + TC - 1) / TC;
    return g;
}

// ---- forward ------------------------------------------------------------------

// Partial sums of d = x - x[0, ch] and d^2 over this block's row split.
template <typename T>
__global__ void __launch_bounds__(TC *TR) bn_stats_k(const T *x, Geom g, float *s1, float *s2)
{
    __shared__ float buf[TR][32];
    const int64_t ch = (int64_t)blockIdx.x * TC + threadIdx.x;
    const int64_t r0 = (int64_t)blockIdx.y * g.rows_per_split;
    const int64_t r1 = r0 + g.rows_per_split < g.m ? r0 + g.rows_per_split : g.m;
    float a = 0.f, b = 0.f;
    if (ch < g.c) {
        const float shift = ld(x, ch);
#pragma unroll 4
        for (int64_t r = r0 + threadIdx.y; r < r1; r += TR) {
            float d = ld(x, r * g.c + ch) - shift;
            a += d;
            b += d * d;
        }
    }
    a = bgkr::column_sum<TR>(buf, a);
    b = bgkr::column_sum<TR>(buf, b);
    if (threadIdx.y == 0 && ch < g.c) {
        s1[blockIdx.y * g.c + ch] = a;
        s2[blockIdx.y * g.c + ch] = b;
    }
}

// Sum the splits of one channel in a fixed order; thread (tx, 0) gets it.
__device__ __forceinline__ void sum_splits(const float *s1, const float *s2, const Geom &g, int64_t ch, float (*buf)[32],
                                           float *t1, float *t2)
{
    float a = 0.f, b = 0.f;
    if (ch < g.c)
        for (int64_t sp = threadIdx.y; sp < g.splits; sp += TR) {
            a += s1[sp * g.c + ch];
            b += s2[sp * g.c + ch];
        }
    *t1 = bgkr::column_sum<TR>(buf, a);
    *t2 = bgkr::column_sum<TR>(buf, b);
}

// coef rows: [0] mean, [1] invstd * gamma, [2] beta (read by bn_apply_k).
template <typename T, typename P>
__global__ void __launch_bounds__(TC *TR) bn_finalize_train_k(const T *x, Geom g, const float *s1, const float *s2,
                                                            const P *gamma, const P *beta, P *rm, P *rv, float mom,
                                                            float eps, float *mean_out, float *invstd_out, float *coef)
{
    __shared__ float buf[TR][32];
    const int64_t ch = (int64_t)blockIdx.x * TC + threadIdx.x;
    float t1, t2;
    sum_splits(s1, s2, g, ch, buf, &t1, &t2);
    if (threadIdx.y != 0 || ch >= g.c) return;
    const float inv_m = 1.f / (float)g.m;
    const float dm = t1 * inv_m;
    const float mean = ld(x, ch) + dm;
    float var = t2 * inv_m - dm * dm;
    var = var > 0.f ? var : 0.f; // rounding can push an (almost) constant channel below 0
    const float invstd = 1.f / sqrtf(var + eps);
    // PyTorch: running var takes the unbiased estimate (m > 1 is checked by the op).
    const float unbiased = g.m > 1 ? var * ((float)g.m / (float)(g.m - 1)) : var;
    st(rm, ch, (1.f - mom) * ld(rm, ch) + mom * mean);
    st(rv, ch, (1.f - mom) * ld(rv, ch) + mom * unbiased);
    mean_out[ch] = mean;
    invstd_out[ch] = invstd;
    coef[ch] = mean;
    coef[g.c + ch] = invstd * ld(gamma, ch);
    coef[2 * g.c + ch] = ld(beta, ch);
}

template <typename P>
__global__ void bn_finalize_eval_k(int64_t c, const P *gamma, const P *beta, const P *rm, const P *rv, float eps,
                                   float *mean_out, float *invstd_out, float *coef)
{
    for (int64_t ch = bgkr::gtid(); ch < c; ch += bgkr::gstride()) {
        const float mean = ld(rm, ch), invstd = 1.f / sqrtf(ld(rv, ch) + eps);
        mean_out[ch] = mean;
        invstd_out[ch] = invstd;
        coef[ch] = mean;
        coef[c + ch] = invstd * ld(gamma, ch);
        coef[2 * c + ch] = ld(beta, ch);
    }
}

// y = (x - mean) * scale + beta (, relu). (x - mean) first, as the CPU
// reference, so a large mean does not cost precision.
template <typename T, bool RELU>
__global__ void bn_apply_k(const T *x, T *y, int64_t total, int64_t c, const float *coef)
{
    const float *mean = coef, *scale = coef + c, *beta = coef + 2 * c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        const int64_t ch = i % c;
        float v = (ld(x, i) - mean[ch]) * scale[ch] + beta[ch];
        st(y, i, RELU ? fmaxf(v, 0.f) : v);
    }
}

// Same, four channels per thread (c % 4 == 0, aligned pointers).
template <typename T, bool RELU>
__global__ void bn_apply4_k(const T *x, T *y, int64_t total4, int64_t c, const float *coef)
{
    const float *mean = coef, *scale = coef + c, *beta = coef + 2 * c;
    for (int64_t q = bgkr::gtid(); q < total4; q += bgkr::gstride()) {
        const int64_t i = q * 4, ch = i % c;
        float v[4];
        bgkr::ld4(x, i, v);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float t = (v[k] - mean[ch + k]) * scale[ch + k] + beta[ch + k];
            v[k] = RELU ? fmaxf(t, 0.f) : t;
        }
        bgkr::st4(y, i, v);
    }
}

// ---- backward -------------------------------------------------------------------

// dz = dy, or dy where y > 0 for the fused ReLU (y = relu(z): y > 0 iff z > 0).
template <typename T, bool RELU>
__device__ __forceinline__ float dz_at(const T *y, const T *dy, int64_t i)
{
    float g = ld(dy, i);
    if (RELU) g = ld(y, i) > 0.f ? g : 0.f;
    return g;
}

template <typename T, bool RELU>
__global__ void __launch_bounds__(TC *TR) bn_bwd_stats_k(const T *x, const T *y, const T *dy, const float *mean, Geom g,
                                                       float *s1, float *s2)
{
    __shared__ float buf[TR][32];
    const int64_t ch = (int64_t)blockIdx.x * TC + threadIdx.x;
    const int64_t r0 = (int64_t)blockIdx.y * g.rows_per_split;
    const int64_t r1 = r0 + g.rows_per_split < g.m ? r0 + g.rows_per_split : g.m;
    float a = 0.f, b = 0.f;
    if (ch < g.c) {
        const float mu = mean[ch];
#pragma unroll 4
        for (int64_t r = r0 + threadIdx.y; r < r1; r += TR) {
            const int64_t i = r * g.c + ch;
            float d = dz_at<T, RELU>(y, dy, i);
            a += d;
            b += d * (ld(x, i) - mu);
        }
    }
    a = bgkr::column_sum<TR>(buf, a);
    b = bgkr::column_sum<TR>(buf, b);
    if (threadIdx.y == 0 && ch < g.c) {
        s1[blockIdx.y * g.c + ch] = a;
        s2[blockIdx.y * g.c + ch] = b;
    }
}

// dbeta += sum dz, dgamma += sum dz * xhat; coef rows for dx:
// [0] k = gamma*invstd, [1] a = mean(dz), [2] b = invstd^2 * mean(dz*(x-mean)),
// [3] mean; eval mode zeroes a and b (the statistics are constants there).
template <typename P>
__global__ void __launch_bounds__(TC *TR) bn_bwd_finalize_k(Geom g, const float *s1, const float *s2, const P *gamma,
                                                          const float *mean, const float *invstd, P *dgamma, P *dbeta,
                                                          int train, float *coef)
{
    __shared__ float buf[TR][32];
    const int64_t ch = (int64_t)blockIdx.x * TC + threadIdx.x;
    float sdy, sdyx;
    sum_splits(s1, s2, g, ch, buf, &sdy, &sdyx);
    if (threadIdx.y != 0 || ch >= g.c) return;
    const float is = invstd[ch];
    if (dbeta) st(dbeta, ch, ld(dbeta, ch) + sdy);
    if (dgamma) st(dgamma, ch, ld(dgamma, ch) + sdyx * is);
    const float inv_m = 1.f / (float)g.m;
    coef[ch] = ld(gamma, ch) * is;
    coef[g.c + ch] = train ? sdy * inv_m : 0.f;
    coef[2 * g.c + ch] = train ? sdyx * inv_m * is * is : 0.f;
    coef[3 * g.c + ch] = mean[ch];
}

template <typename T, bool RELU>
__global__ void bn_bwd_apply_k(const T *x, const T *y, const T *dy, T *dx, int64_t total, int64_t c, const float *coef)
{
    const float *k = coef, *a = coef + c, *b = coef + 2 * c, *mean = coef + 3 * c;
    for (int64_t i = bgkr::gtid(); i < total; i += bgkr::gstride()) {
        const int64_t ch = i % c;
        float d = dz_at<T, RELU>(y, dy, i);
        float g = d - a[ch] - (ld(x, i) - mean[ch]) * b[ch];
        st(dx, i, ld(dx, i) + k[ch] * g);
    }
}

template <typename T, bool RELU>
__global__ void bn_bwd_apply4_k(const T *x, const T *y, const T *dy, T *dx, int64_t total4, int64_t c,
                                const float *coef)
{
    const float *k = coef, *a = coef + c, *b = coef + 2 * c, *mean = coef + 3 * c;
    for (int64_t q = bgkr::gtid(); q < total4; q += bgkr::gstride()) {
        const int64_t i = q * 4, ch = i % c;
        float xv[4], gv[4], dv[4], yv[4] = {1.f, 1.f, 1.f, 1.f};
        bgkr::ld4(x, i, xv);
        bgkr::ld4(dy, i, gv);
        bgkr::ld4(dx, i, dv);
        if (RELU) bgkr::ld4(y, i, yv);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float d = RELU && !(yv[j] > 0.f) ? 0.f : gv[j];
            float g = d - a[ch + j] - (xv[j] - mean[ch + j]) * b[ch + j];
            dv[j] = dv[j] + k[ch + j] * g;
        }
        bgkr::st4(dx, i, dv);
    }
}

// ---- launchers ----------------------------------------------------------------------

template <typename T, typename P, bool RELU>
void fwd(const bg_bn_fwd_args &a, cudaStream_t st)
{
    const Geom g = geom(a.m, a.c);
    float *s1 = a.work, *s2 = a.work + g.splits * g.c, *coef = a.work + 2 * g.splits * g.c;
    const T *x = (const T *)a.x;
    if (a.train) {
        bn_stats_k<T><<<dim3((unsigned)g.groups, (unsigned)g.splits), dim3(TC, TR), 0, st>>>(x, g, s1, s2);
        bn_finalize_train_k<T, P><<<(unsigned)g.groups, dim3(TC, TR), 0, st>>>(
            x, g, s1, s2, (const P *)a.gamma, (const P *)a.beta, (P *)a.running_mean, (P *)a.running_var, a.momentum,
            a.eps, a.mean, a.invstd, coef);
    } else {
        bn_finalize_eval_k<P><<<bgkr::blocks_for(g.c), bgkr::kThreads, 0, st>>>(
            g.c, (const P *)a.gamma, (const P *)a.beta, (const P *)a.running_mean, (const P *)a.running_var, a.eps,
            a.mean, a.invstd, coef);
    }
    const int64_t total = g.m * g.c;
    if (bgkr::vec4_ok(g.c, a.x, a.y))
        bn_apply4_k<T, RELU><<<bgkr::blocks_for(total / 4), bgkr::kThreads, 0, st>>>(x, (T *)a.y, total / 4, g.c, coef);
    else
        bn_apply_k<T, RELU><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(x, (T *)a.y, total, g.c, coef);
}

template <typename T, typename P, bool RELU>
void bwd(const bg_bn_bwd_args &a, cudaStream_t st)
{
    const Geom g = geom(a.m, a.c);
    float *s1 = a.work, *s2 = a.work + g.splits * g.c, *coef = a.work + 2 * g.splits * g.c;
    const T *x = (const T *)a.x, *y = (const T *)a.y, *dy = (const T *)a.dy;
    bn_bwd_stats_k<T, RELU><<<dim3((unsigned)g.groups, (unsigned)g.splits), dim3(TC, TR), 0, st>>>(x, y, dy, a.mean, g,
                                                                                                s1, s2);
    bn_bwd_finalize_k<P><<<(unsigned)g.groups, dim3(TC, TR), 0, st>>>(g, s1, s2, (const P *)a.gamma, a.mean, a.invstd,
                                                                     (P *)a.dgamma, (P *)a.dbeta, a.train, coef);
    if (!a.dx) return;
    const int64_t total = g.m * g.c;
    if (bgkr::vec4_ok(g.c, a.x, a.dy, a.dx, RELU ? a.y : nullptr))
        bn_bwd_apply4_k<T, RELU><<<bgkr::blocks_for(total / 4), bgkr::kThreads, 0, st>>>(x, y, dy, (T *)a.dx, total / 4,
                                                                                       g.c, coef);
    else
        bn_bwd_apply_k<T, RELU><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(x, y, dy, (T *)a.dx, total, g.c, coef);
}

template <typename T, typename P>
void fwd_r(const bg_bn_fwd_args &a, cudaStream_t st)
{
    if (a.relu) fwd<T, P, true>(a, st);
    else fwd<T, P, false>(a, st);
}

template <typename T, typename P>
void bwd_r(const bg_bn_bwd_args &a, cudaStream_t st)
{
    if (a.relu) bwd<T, P, true>(a, st);
    else bwd<T, P, false>(a, st);
}

} // namespace

extern "C" void bg_cuda_bn_fwd(const bg_bn_fwd_args *a, void *stream)
{
    if (a->m <= 0 || a->c <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (a->x_half) {
        if (a->p_half) fwd_r<__half, __half>(*a, st);
        else fwd_r<__half, float>(*a, st);
    } else {
        if (a->p_half) fwd_r<float, __half>(*a, st);
        else fwd_r<float, float>(*a, st);
    }
}

extern "C" void bg_cuda_bn_bwd(const bg_bn_bwd_args *a, void *stream)
{
    if (a->m <= 0 || a->c <= 0 || !a->dy || (!a->dx && !a->dgamma && !a->dbeta)) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (a->x_half) {
        if (a->p_half) bwd_r<__half, __half>(*a, st);
        else bwd_r<__half, float>(*a, st);
    } else {
        if (a->p_half) bwd_r<float, __half>(*a, st);
        else bwd_r<float, float>(*a, st);
    }
}
