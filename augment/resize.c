/* PIL-compatible bilinear resize, torchvision's RandomResizedCrop box and
 * the Resize + CenterCrop evaluation transform.
 *
 * The resize follows PIL's published numerics (Pillow 9.4, Image.resize with
 * BILINEAR and no reducing_gap): for each output sample the triangle filter
 * is centred at (i + 0.5) * in/out, widened by in/out when downscaling (that
 * is PIL's antialias), its weights normalised to sum 1 and turned into 22-bit
 * fixed point rounded half away from zero; each pass adds 2^21 and shifts,
 * clamped to 0..255. The horizontal pass runs first on the rows the vertical
 * pass needs. tests/test_augment.c checks it against PIL fixtures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "transforms.h"

#define PREC 22

typedef struct {
    int *first;  /* first input index per output sample */
    int *count;  /* taps per output sample */
    int32_t *k;  /* ksize coefficients per output sample */
    int ksize;
} coeffs;

static void coeffs_free(coeffs *c)
{
    free(c->first), free(c->count), free(c->k);
    memset(c, 0, sizeof *c);
}

static int coeffs_make(coeffs *c, int in, int out)
{
    double scale = (double)in / (double)out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * fscale; /* the triangle's support is 1 */
    c->ksize = (int)ceil(support) * 2 + 1;
    c->first = malloc((size_t)out * sizeof *c->first);
    c->count = malloc((size_t)out * sizeof *c->count);
    c->k = calloc((size_t)out * (size_t)c->ksize, sizeof *c->k);
    double *w = malloc((size_t)c->ksize * sizeof *w);
    if (!c->first || !c->count || !c->k || !w) {
        free(w);
        coeffs_free(c);
        return -1;
    }
    for (int o = 0; o < out; o++) {
        double centre = (o + 0.5) * scale, ss = 1.0 / fscale;
        int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        int n = hi - lo;
        if (n > c->ksize) n = c->ksize;
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            double t = fabs((i + lo - centre + 0.5) * ss);
            w[i] = t < 1.0 ? 1.0 - t : 0.0;
            sum += w[i];
        }
        for (int i = 0; i < n; i++) {
            double v = sum != 0.0 ? w[i] / sum : w[i];
            c->k[(size_t)o * c->ksize + i] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC)) : (int32_t)(0.5 + v * (1 << PREC));
        }
        c->first[o] = lo;
        c->count[o] = n;
    }
    free(w);
    return 0;
}

static inline uint8_t clip_shift(int32_t s)
{
    s >>= PREC; /* s >= 0: the triangle's weights are never negative */
    return (uint8_t)(s > 255 ? 255 : s);
}

/* mirror: write output column o at dw-1-o, i.e. flip for free (the
 * vertical pass treats columns independently, so this equals a flip after). */
static bg_status resize(bg_ctx *ctx, const uint8_t *src, int sw, int sh, int c, size_t stride, uint8_t *dst, int dw,
                        int dh, bool mirror)
{
    if (!src || !dst) return bg_fail(ctx, BG_ERR_ARG, "resize: NULL image");
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || c < 1 || c > 4 || stride < (size_t)sw * c)
        return bg_fail(ctx, BG_ERR_ARG, "resize: %dx%dx%d (stride %zu) -> %dx%d is not a valid request", sw, sh, c,
                       stride, dw, dh);
    coeffs cx = {0}, cy = {0};
    uint8_t *tmp = NULL;
    if (coeffs_make(&cx, sw, dw) || coeffs_make(&cy, sh, dh)) goto oom;
    /* Rows the vertical pass reads. */
    int y_lo = cy.first[0], y_hi = cy.first[dh - 1] + cy.count[dh - 1];
    for (int o = 0; o < dh; o++) {
        if (cy.first[o] < y_lo) y_lo = cy.first[o];
        if (cy.first[o] + cy.count[o] > y_hi) y_hi = cy.first[o] + cy.count[o];
    }
    const int rows = y_hi - y_lo;
    if (!(tmp = malloc((size_t)(rows > 0 ? rows : 1) * (size_t)dw * c))) goto oom;
    /* int32 sums cannot overflow: the weights are >= 0 and sum to about
     * 2^22, so a sum stays below 255 * (2^22 + ksize) + 2^21 < 2^31. */
    const int32_t half = (int32_t)1 << (PREC - 1);
    /* Horizontal pass (PIL skips it when the width is unchanged). RGB rows
     * go in pairs: the two rows share every weight and index load. */
    int r0 = 0;
    if (c == 3 && dw != sw)
        for (; r0 + 1 < rows; r0 += 2) {
            const uint8_t *s0 = src + (size_t)(y_lo + r0) * stride, *s1 = s0 + stride;
            uint8_t *t0 = tmp + (size_t)r0 * dw * 3, *t1 = t0 + (size_t)dw * 3;
            for (int o = 0; o < dw; o++) {
                const int32_t *k = cx.k + (size_t)o * cx.ksize;
                const size_t off = (size_t)cx.first[o] * 3;
                const uint8_t *p = s0 + off, *q = s1 + off;
                int32_t a0 = half, a1 = half, a2 = half, b0 = half, b1 = half, b2 = half;
                for (int i = 0; i < cx.count[o]; i++, p += 3, q += 3) {
                    const int32_t ki = k[i];
                    a0 += p[0] * ki, a1 += p[1] * ki, a2 += p[2] * ki;
                    b0 += q[0] * ki, b1 += q[1] * ki, b2 += q[2] * ki;
                }
                const size_t at = (size_t)(mirror ? dw - 1 - o : o) * 3;
                t0[at] = clip_shift(a0), t0[at + 1] = clip_shift(a1), t0[at + 2] = clip_shift(a2);
                t1[at] = clip_shift(b0), t1[at + 1] = clip_shift(b1), t1[at + 2] = clip_shift(b2);
            }
        }
    for (int r = r0; r < rows; r++) {
        const uint8_t *s = src + (size_t)(y_lo + r) * stride;
        uint8_t *t = tmp + (size_t)r * dw * c;
        if (dw == sw) {
            if (!mirror) memcpy(t, s, (size_t)sw * c);
            else
                for (int o = 0; o < dw; o++) memcpy(t + (size_t)(dw - 1 - o) * c, s + (size_t)o * c, (size_t)c);
            continue;
        }
        for (int o = 0; o < dw; o++) {
            const int32_t *k = cx.k + (size_t)o * cx.ksize;
            const uint8_t *p = s + (size_t)cx.first[o] * c;
            const int n = cx.count[o];
            uint8_t *q = t + (size_t)(mirror ? dw - 1 - o : o) * c;
            if (c == 3) { /* the common case, unrolled over channels */
                int32_t a0 = half, a1 = half, a2 = half;
                for (int i = 0; i < n; i++, p += 3) a0 += p[0] * k[i], a1 += p[1] * k[i], a2 += p[2] * k[i];
                q[0] = clip_shift(a0), q[1] = clip_shift(a1), q[2] = clip_shift(a2);
                continue;
            }
            for (int ch = 0; ch < c; ch++) {
                int32_t acc = half;
                for (int i = 0; i < n; i++) acc += p[(size_t)i * c + ch] * k[i];
                q[ch] = clip_shift(acc);
            }
        }
    }
    /* Vertical pass: whole rows at a time so the inner loop vectorises. */
    const size_t rowlen = (size_t)dw * c;
    int32_t *acc = malloc(rowlen * sizeof *acc);
    if (!acc) goto oom;
    for (int o = 0; o < dh; o++) {
        uint8_t *d = dst + (size_t)o * rowlen;
        const uint8_t *t0 = tmp + (size_t)(cy.first[o] - y_lo) * rowlen;
        if (dh == sh) {
            memcpy(d, t0, rowlen);
            continue;
        }
        const int32_t *k = cy.k + (size_t)o * cy.ksize;
#pragma omp simd
        for (size_t i = 0; i < rowlen; i++) acc[i] = half;
        for (int j = 0; j < cy.count[o]; j++) {
            const uint8_t *tr = t0 + (size_t)j * rowlen;
            const int32_t kj = k[j];
#pragma omp simd
            for (size_t i = 0; i < rowlen; i++) acc[i] += tr[i] * kj;
        }
#pragma omp simd
        for (size_t i = 0; i < rowlen; i++) d[i] = clip_shift(acc[i]);
    }
    free(acc);
    free(tmp);
    coeffs_free(&cx), coeffs_free(&cy);
    return BG_OK;
oom:
    free(tmp);
    coeffs_free(&cx), coeffs_free(&cy);
    return bg_fail(ctx, BG_ERR_OOM, "resize: out of memory for %dx%d -> %dx%d", sw, sh, dw, dh);
}

bg_status bg_resize_bilinear(bg_ctx *ctx, const uint8_t *src, int sw, int sh, int c, size_t stride, uint8_t *dst,
                             int dw, int dh)
{
    return resize(ctx, src, sw, sh, c, stride, dst, dw, dh, false);
}

bg_status bg_resize_bilinear_mirror(bg_ctx *ctx, const uint8_t *src, int sw, int sh, int c, size_t stride,
                                    uint8_t *dst, int dw, int dh)
{
    return resize(ctx, src, sw, sh, c, stride, dst, dw, dh, true);
}

#define TAG_RRC 0x52524300u /* "RRC" + attempt */

bg_box bg_rrc_box(int w, int h, const bg_rrc_opts *o, uint64_t seed, uint64_t step, uint32_t pos)
{
    const double area = (double)w * (double)h;
    const double lr0 = log(o->ratio_lo), lr1 = log(o->ratio_hi);
    for (uint32_t k = 0; k < 10; k++) {
        bg_u32x4 r = bg_aug_block(seed, step, pos, TAG_RRC + k);
        double target = area * (o->scale_lo + (o->scale_hi - o->scale_lo) * (double)bg_u32_to_unit(r.v[0]));
        double aspect = exp(lr0 + (lr1 - lr0) * (double)bg_u32_to_unit(r.v[1]));
        /* int(round(...)): Python rounds half to even, as nearbyint does. */
        int cw = (int)nearbyint(sqrt(target * aspect)), ch = (int)nearbyint(sqrt(target / aspect));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            bg_box b = {(int)bg_u32_below(r.v[3], (uint32_t)(w - cw + 1)), (int)bg_u32_below(r.v[2], (uint32_t)(h - ch + 1)),
                        cw, ch};
            return b;
        }
    }
    /* Fallback: the central crop with the ratio clamped into range. */
    double in_ratio = (double)w / (double)h;
    int cw = w, ch = h;
    if (in_ratio < o->ratio_lo) ch = (int)nearbyint(w / o->ratio_lo);
    else if (in_ratio > o->ratio_hi) cw = (int)nearbyint(h * o->ratio_hi);
    if (cw > w) cw = w;
    if (ch > h) ch = h;
    bg_box b = {(w - cw) / 2, (h - ch) / 2, cw, ch};
    return b;
}

bg_box bg_center_crop_box(int w, int h, int cw, int ch)
{
    bg_box b = {(int)nearbyint((w - cw) / 2.0), (int)nearbyint((h - ch) / 2.0), cw, ch};
    return b;
}

void bg_resize_shorter_dims(int w, int h, int size, int *ow, int *oh)
{
    if (w <= h) *ow = size, *oh = (int)((double)size * h / w);
    else *oh = size, *ow = (int)((double)size * w / h);
}

bg_status bg_resize_center_crop(bg_ctx *ctx, const uint8_t *src, int sw, int sh, int c, int resize, int crop,
                                uint8_t *dst)
{
    if (!src || !dst || sw <= 0 || sh <= 0 || c < 1 || c > 4 || resize <= 0 || crop <= 0)
        return bg_fail(ctx, BG_ERR_ARG, "resize+centre crop: bad request %dx%dx%d resize %d crop %d", sw, sh, c, resize,
                       crop);
    int rw, rh;
    bg_resize_shorter_dims(sw, sh, resize, &rw, &rh);
    if (crop > rw || crop > rh)
        return bg_fail(ctx, BG_ERR_ARG, "resize+centre crop: crop %d larger than the resized %dx%d image", crop, rw, rh);
    uint8_t *mid = malloc((size_t)rw * rh * c);
    if (!mid) return bg_fail(ctx, BG_ERR_OOM, "resize+centre crop: out of memory for %dx%d", rw, rh);
    bg_status s = bg_resize_bilinear(ctx, src, sw, sh, c, (size_t)sw * c, mid, rw, rh);
    if (!s) {
        bg_box b = bg_center_crop_box(rw, rh, crop, crop);
        for (int y = 0; y < crop; y++)
            memcpy(dst + (size_t)y * crop * c, mid + ((size_t)(b.y + y) * rw + b.x) * c, (size_t)crop * c);
    }
    free(mid);
    return s;
}
