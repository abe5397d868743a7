/* Convolution loops of the fast CPU backend that are not the GEMM, one copy
 * per instruction set (kernels/cpu/isa.h): the depthwise convolution (one
 * channel per group, so no reduction over channels: a direct loop over the
 * taps, vectorised across the contiguous NHWC channels), col2im for the data
 * gradient, the fused row's dz and the bias gradient's column sums. The
 * callers in ops/fast/conv.c cut the work across threads. */
#include <math.h>
#include <string.h>
#include "../gemm.h"
#include "../isa.h"

/* Input pixel of output pixel pix under tap (ky, kx), or -1 in the padding. */
static inline int64_t tap_pixel(const bg_im2col *cv, int64_t pix, int64_t ky, int64_t kx)
{
    int64_t n = pix / (cv->Ho * cv->Wo), oy = pix / cv->Wo % cv->Ho, ox = pix % cv->Wo;
    int64_t iy = oy * cv->sh - cv->ph + ky * cv->dh, ix = ox * cv->sw - cv->pw + kx * cv->dw;
    if (iy < 0 || iy >= cv->H || ix < 0 || ix >= cv->W) return -1;
    return (n * cv->H + iy) * cv->W + ix;
}

/* Depthwise forward over output pixels [p0, p1): y = act(bias + sum over
 * taps of x * w + res), wt the weights as [tap][C]. */
void BG_ISA_FN(bg_k_dw_fwd)(const bg_im2col *cv, const float *restrict x, const float *restrict wt,
                            const float *restrict bias, const float *restrict res, int act, float *restrict y,
                            int64_t p0, int64_t p1)
{
    const int64_t C = cv->C;
    for (int64_t pix = p0; pix < p1; pix++) {
        float *out = y + pix * C;
        if (bias) memcpy(out, bias, (size_t)C * sizeof(float));
        else memset(out, 0, (size_t)C * sizeof(float));
        for (int64_t ky = 0; ky < cv->kh; ky++)
            for (int64_t kx = 0; kx < cv->kw; kx++) {
                int64_t ip = tap_pixel(cv, pix, ky, kx);
                if (ip < 0) continue;
                const float *xp = x + ip * C, *w = wt + (ky * cv->kw + kx) * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++) out[c] += xp[c] * w[c];
            }
        if (res) {
            const float *r = res + pix * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) out[c] += r[c];
        }
        if (act == BG_GACT_RELU) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) out[c] = out[c] > 0.0f ? out[c] : 0.0f;
        } else if (act == BG_GACT_SIGMOID) { /* in double, as the sigmoid op */
            for (int64_t c = 0; c < C; c++) {
                double d = out[c], e = exp(-fabs(d));
                out[c] = (float)(d >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
            }
        }
    }
}

/* Depthwise backward over output pixels [p0, p1): dx += dy * w scattered to
 * the taps (callers give each thread whole images, so no two threads touch
 * one dx pixel), dwt[tap][C] += x * dy (a per-thread partial). Either may
 * be NULL. */
void BG_ISA_FN(bg_k_dw_bwd)(const bg_im2col *cv, const float *restrict x, const float *restrict dy,
                            const float *restrict wt, float *restrict dx, float *restrict dwt, int64_t p0, int64_t p1)
{
    const int64_t C = cv->C;
    for (int64_t pix = p0; pix < p1; pix++) {
        const float *g = dy + pix * C;
        for (int64_t ky = 0; ky < cv->kh; ky++)
            for (int64_t kx = 0; kx < cv->kw; kx++) {
                int64_t ip = tap_pixel(cv, pix, ky, kx), t = ky * cv->kw + kx;
                if (ip < 0) continue;
                if (dx) {
                    float *d = dx + ip * C;
                    const float *w = wt + t * C;
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) d[c] += g[c] * w[c];
                }
                if (dwt) {
                    float *d = dwt + t * C;
                    const float *xp = x + ip * C;
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) d[c] += g[c] * xp[c];
                }
            }
    }
}

/* dx += col2im(dcol) for output pixels [p0, p0 + np); dcol rows are K long
 * (ld K), one group's channels c0 .. c0 + Cg. */
void BG_ISA_FN(bg_k_col2im)(const bg_im2col *cv, const float *restrict dcol, int64_t p0, int64_t np,
                            float *restrict dx)
{
    for (int64_t r = 0; r < np; r++) {
        const float *src = dcol + r * cv->K;
        for (int64_t ky = 0; ky < cv->kh; ky++)
            for (int64_t kx = 0; kx < cv->kw; kx++) {
                int64_t ip = tap_pixel(cv, p0 + r, ky, kx);
                if (ip < 0) continue;
                float *d = dx + ip * cv->C + cv->c0;
                const float *s = src + (ky * cv->kw + kx) * cv->Cg;
#pragma omp simd
                for (int64_t c = 0; c < cv->Cg; c++) d[c] += s[c];
            }
    }
}

/* dz = dy * act'(y) from the saved output y (relu: y > 0; sigmoid: y(1-y),
 * in double as the sigmoid op's backward rounds it, so the fused and
 * unfused graphs agree bit for bit). */
void BG_ISA_FN(bg_k_act_dz)(const float *restrict y, const float *restrict dy, float *restrict dz, int64_t n, int act)
{
    if (act == BG_GACT_RELU) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dz[i] = (float)((double)dy[i] * (double)y[i] * (1.0 - (double)y[i]));
    }
}

/* acc[j] += sum of rows [r0, r1) of g (n columns, ld), in double so long f32
 * sums over a batch of pixels stay accurate. */
void BG_ISA_FN(bg_k_colsum)(const float *restrict g, int64_t ld, int64_t n, int64_t r0, int64_t r1,
                            double *restrict acc)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *row = g + r * ld;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) acc[j] += (double)row[j];
    }
}

/* a[i] += b[i]. */
void BG_ISA_FN(bg_k_add_into)(float *restrict a, const float *restrict b, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) a[i] += b[i];
}
