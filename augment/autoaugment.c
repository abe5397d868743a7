/* The 14 AutoAugment operations on uint8 HWC images, CPU reference.
 * The per-pixel arithmetic is in aa_numerics.h (shared with the CUDA
 * kernels); this file adds what needs the whole image first (histograms,
 * the contrast mean, matrices), the image loops, names and validation. */
#include <string.h>
#include <strings.h>
#include "transforms.h"

static const char *const op_names[BG_AA_NOPS] = {
    "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Color", "Posterize",
    "Solarize", "Contrast", "Sharpness", "Brightness", "AutoContrast", "Equalize", "Invert",
};

const char *bg_aa_op_name(int op)
{
    return op >= 0 && op < BG_AA_NOPS ? op_names[op] : NULL;
}

int bg_aa_op_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < BG_AA_NOPS; i++)
        if (!strcasecmp(name, op_names[i])) return i;
    return -1;
}

bg_status bg_aa_step_make(bg_ctx *ctx, int variant, int op, int magnitude, int sign, int w, int h,
                          bg_aa_step *out)
{
    if (!out) return bg_fail(ctx, BG_ERR_ARG, "bg_aa_step_make: out is NULL");
    if (variant != BG_AUTOAUG_PIL && variant != BG_AUTOAUG_TORCHVISION)
        return bg_fail(ctx, BG_ERR_ARG, "autoaugment variant %d: want %d (pil) or %d (torchvision)", variant,
                       BG_AUTOAUG_PIL, BG_AUTOAUG_TORCHVISION);
    if (op < 0 || op >= BG_AA_NOPS) return bg_fail(ctx, BG_ERR_ARG, "autoaugment op %d: want 0..%d", op, BG_AA_NOPS - 1);
    if (magnitude < 0 || magnitude > 9)
        return bg_fail(ctx, BG_ERR_ARG, "%s: magnitude %d outside the bins 0..9", op_names[op], magnitude);
    if (sign != 1 && sign != -1) return bg_fail(ctx, BG_ERR_ARG, "%s: sign %d, want +1 or -1", op_names[op], sign);
    if (w <= 0 || h <= 0) return bg_fail(ctx, BG_ERR_ARG, "%s: image size %dx%d", op_names[op], w, h);
    *out = bg_aa_resolve(variant, op, bg_aa_has_magnitude(op) ? magnitude : 0, sign, w, h);
    return BG_OK;
}

void bg_aa_prepare(bg_aa_prep *p, const bg_aa_step *st, const uint8_t *src, int h, int w, int c)
{
    p->st = *st;
    p->f = (float)st->fval; /* PIL's C blend takes a float */
    p->mean = 0;
    const size_t npx = (size_t)h * (size_t)w;
    if (st->op == BG_AA_AUTOCONTRAST || st->op == BG_AA_EQUALIZE) {
        uint32_t hist[4][256];
        memset(hist, 0, sizeof hist);
        for (size_t i = 0; i < npx; i++)
            for (int ch = 0; ch < c; ch++) hist[ch][src[i * c + ch]]++;
        for (int ch = 0; ch < c; ch++) bg_aa_channel_lut(st->op, hist[ch], p->lut[ch]);
    } else if (st->op == BG_AA_CONTRAST) {
        uint64_t sum = 0;
        for (size_t i = 0; i < npx; i++)
            sum += c >= 3 ? bg_pil_grey(src[i * c], src[i * c + 1], src[i * c + 2]) : src[i * c];
        p->mean = bg_aa_contrast_mean(sum, npx);
    } else if (st->op == BG_AA_SHEARX || st->op == BG_AA_SHEARY || st->op == BG_AA_ROTATE) {
        bg_aa_prep_geometry(p, w, h);
    }
}

void bg_aa_apply_unchecked(const bg_aa_step *st, const uint8_t *src, uint8_t *dst, int h, int w, int c)
{
    const size_t n = (size_t)h * (size_t)w * (size_t)c;
    if (bg_aa_is_identity(st)) {
        memcpy(dst, src, n);
        return;
    }
    bg_aa_prep p;
    bg_aa_prepare(&p, st, src, h, w, c);
    /* Value-only ops go through one 256-entry table per channel. */
    if (st->op == BG_AA_INVERT || st->op == BG_AA_POSTERIZE || st->op == BG_AA_SOLARIZE ||
        st->op == BG_AA_AUTOCONTRAST || st->op == BG_AA_EQUALIZE || st->op == BG_AA_BRIGHTNESS ||
        st->op == BG_AA_CONTRAST) {
        uint8_t lut[4][256];
        for (int ch = 0; ch < c; ch++)
            for (int v = 0; v < 256; v++) {
                uint8_t px[4] = {0, 0, 0, 0};
                px[ch] = (uint8_t)v;
                lut[ch][v] = bg_aa_pixel(&p, px, 1, 1, c, 0, 0, ch);
            }
        for (size_t i = 0; i < n; i += (size_t)c)
            for (int ch = 0; ch < c; ch++) dst[i + ch] = lut[ch][src[i + ch]];
        return;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++)
                dst[((size_t)y * w + x) * c + ch] = bg_aa_pixel(&p, src, w, h, c, x, y, ch);
}

bg_status bg_aa_apply(bg_ctx *ctx, const bg_aa_step *st, const uint8_t *src, uint8_t *dst, int h, int w, int c)
{
    if (!st || !src || !dst) return bg_fail(ctx, BG_ERR_ARG, "bg_aa_apply: NULL argument");
    if (st->op != BG_AA_IDENTITY && (st->op < 0 || st->op >= BG_AA_NOPS))
        return bg_fail(ctx, BG_ERR_ARG, "bg_aa_apply: op %d unknown", st->op);
    const char *name = st->op == BG_AA_IDENTITY ? "identity" : op_names[st->op];
    if (c != 1 && c != 3) return bg_fail(ctx, BG_ERR_ARG, "%s: %d channels (1 or 3 supported)", name, c);
    if (h <= 0 || w <= 0) return bg_fail(ctx, BG_ERR_ARG, "%s: image size %dx%d", name, w, h);
    if (st->op == BG_AA_POSTERIZE && (st->ival < 1 || st->ival > 8))
        return bg_fail(ctx, BG_ERR_ARG, "Posterize: %d bits, want 1..8", st->ival);
    const size_t n = (size_t)h * (size_t)w * (size_t)c;
    if (src < dst + n && dst < src + n) return bg_fail(ctx, BG_ERR_ARG, "%s: source and destination overlap", name);
    bg_aa_apply_unchecked(st, src, dst, h, w, c);
    return BG_OK;
}
