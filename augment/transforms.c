/* The per-image training chain on uint8 HWC images (HAET order):
 * pad-and-crop -> horizontal flip -> AutoAugment sub-policy -> Cutout, plus
 * flips and normalisation. The random decisions come in a bg_aug_plan
 * (aa_numerics.h), so this file is deterministic. */
#include <string.h>
#include "transforms.h"

void bg_cutout_u8(const bg_aug_plan *pl, int side, uint8_t *img, int h, int w, int c)
{
    if (pl->cut_y < 0 || side <= 0) return;
    int half = side / 2;
    int y0 = pl->cut_y - half, y1 = pl->cut_y + half, x0 = pl->cut_x - half, x1 = pl->cut_x + half;
    y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > h ? h : y1, x1 = x1 > w ? w : x1;
    for (int y = y0; y < y1; y++)
        if (x1 > x0) memset(img + ((size_t)y * w + x0) * c, 0, (size_t)(x1 - x0) * c);
}

void bg_aug_apply_plan_u8(const bg_aug_plan *pl, int cutout, const uint8_t *src, int h, int w, int c,
                          uint8_t *out, uint8_t *tmp)
{
    const size_t row = (size_t)w * c;
    /* Crop and flip, row by row: rows outside the source are black padding. */
    for (int y = 0; y < h; y++) {
        uint8_t *o = out + (size_t)y * row;
        int sy = y + pl->dy;
        if (sy < 0 || sy >= h) {
            memset(o, 0, row);
            continue;
        }
        const uint8_t *s = src + (size_t)sy * row;
        if (!pl->flip && pl->dx == 0) {
            memcpy(o, s, row);
            continue;
        }
        for (int x = 0; x < w; x++) {
            int sx = (pl->flip ? w - 1 - x : x) + pl->dx;
            if (sx < 0 || sx >= w) memset(o + (size_t)x * c, 0, (size_t)c);
            else memcpy(o + (size_t)x * c, s + (size_t)sx * c, (size_t)c);
        }
    }
    for (int k = 0; k < 2; k++) {
        if (bg_aa_is_identity(&pl->op[k])) continue;
        bg_aa_apply_unchecked(&pl->op[k], out, tmp, h, w, c);
        memcpy(out, tmp, (size_t)h * row);
    }
    if (cutout > 0) bg_cutout_u8(pl, cutout, out, h, w, c);
}

void bg_hflip_u8(uint8_t *img, int h, int w, int c)
{
    for (int y = 0; y < h; y++) {
        uint8_t *r = img + (size_t)y * w * c;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int ch = 0; ch < c; ch++) {
                uint8_t t = r[(size_t)a * c + ch];
                r[(size_t)a * c + ch] = r[(size_t)b * c + ch];
                r[(size_t)b * c + ch] = t;
            }
    }
}

void bg_normalize_u8(const uint8_t *src, size_t n_pixels, int c, const float *mean, const float *std, float *out)
{
    float lut[4][256];
    if (c < 1 || c > 4) return;
    for (int ch = 0; ch < c; ch++)
        for (int v = 0; v < 256; v++) lut[ch][v] = ((float)v / 255.0f - mean[ch]) / std[ch];
    if (c == 3) { /* the common case without the inner loop */
        for (size_t i = 0; i < n_pixels; i++, src += 3, out += 3)
            out[0] = lut[0][src[0]], out[1] = lut[1][src[1]], out[2] = lut[2][src[2]];
        return;
    }
    for (size_t i = 0; i < n_pixels; i++)
        for (int ch = 0; ch < c; ch++) out[i * c + ch] = lut[ch][src[i * c + ch]];
}
