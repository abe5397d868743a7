/* AutoAugment numerics shared by the CPU reference (augment/autoaugment.c,
 * augment/transforms.c) and the CUDA kernels (kernels/augment.cu): the CIFAR-10
 * policy table, the magnitude -> parameter maps of the two variants, the
 * per-image draw layout and the per-pixel arithmetic. Both sides call these
 * same functions, so CPU/GPU parity holds by construction. Header-only, C and
 * CUDA (BG_HD comes from engine/philox.h).
 *
 * PIL facts matched here (Pillow 9.4, checked against PIL on random images by
 * tools/make_augment_fixtures.py and tests/test_augment.c):
 *  - grey L = (19595 R + 38470 G + 7471 B + 32768) >> 16;
 *  - Image.blend: float32 out = deg + f*(img - deg), clipped to [0,255], truncated;
 *  - SMOOTH: (sum of the 3x3 window + 4*centre)/13 rounded to nearest; the
 *    one-pixel border keeps the input;
 *  - affine BICUBIC: the a = -1 cubic (not the a = -0.5 of resize), in double,
 *    taps clamped to the image, sample point at pixel centre (+0.5), truncated;
 *    a sample point outside the image takes the fill colour;
 *  - affine NEAREST: 16.16 fixed point, FIX(v) = floor(v*65536 + 0.5);
 *    a pure translation (PIL's scale path) shifts by floor(t + 0.5);
 *  - equalize LUT values are clipped to 255 (Image.point clips).
 *
 * Why the explicit-rounding macros: nvcc fuses a*b+c into one FMA by default
 * (even across statements), which rounds once instead of twice and changes
 * PIL's truncated results; __fmul_rn/__fadd_rn are never fused. Every
 * multiply that feeds an add goes through them. gcc in ISO C mode (-std=c11)
 * does not contract, so both sides perform the same IEEE operations. */
#ifndef BG_AA_NUMERICS_H
#define BG_AA_NUMERICS_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "../engine/philox.h"

/* clang contracts a*b+c by default on FMA hardware (aarch64, -march=native);
 * PIL's rounding needs the separate operations. gcc -std=c11 never contracts. */
#if defined(__clang__) && !defined(__CUDACC__)
#pragma STDC FP_CONTRACT OFF
#endif

#ifdef __CUDA_ARCH__
#define BG_FADD(a, b) __fadd_rn(a, b)
#define BG_FSUB(a, b) __fsub_rn(a, b)
#define BG_FMUL(a, b) __fmul_rn(a, b)
#define BG_FDIV(a, b) __fdiv_rn(a, b)
#define BG_DADD(a, b) __dadd_rn(a, b)
#define BG_DSUB(a, b) __dsub_rn(a, b)
#define BG_DMUL(a, b) __dmul_rn(a, b)
#else
#define BG_FADD(a, b) ((a) + (b))
#define BG_FSUB(a, b) ((a) - (b))
#define BG_FMUL(a, b) ((a) * (b))
#define BG_FDIV(a, b) ((a) / (b))
#define BG_DADD(a, b) ((a) + (b))
#define BG_DSUB(a, b) ((a) - (b))
#define BG_DMUL(a, b) ((a) * (b))
#endif

/* The 14 operations, in the order `budgie augment --help` lists them. */
enum {
    BG_AA_SHEARX, BG_AA_SHEARY, BG_AA_TRANSLATEX, BG_AA_TRANSLATEY, BG_AA_ROTATE, BG_AA_COLOR,
    BG_AA_POSTERIZE, BG_AA_SOLARIZE, BG_AA_CONTRAST, BG_AA_SHARPNESS, BG_AA_BRIGHTNESS,
    BG_AA_AUTOCONTRAST, BG_AA_EQUALIZE, BG_AA_INVERT, BG_AA_NOPS
};
#define BG_AA_IDENTITY (-1) /* a step that was not drawn */

/* Variants: HAET ran DeepVoltaire's PIL code; torchvision's AutoAugment
 * (0.14, PIL input) differs in magnitudes, signs, fills and interpolation. */
enum { BG_AUTOAUG_NONE = 0, BG_AUTOAUG_PIL = 1, BG_AUTOAUG_TORCHVISION = 2 };

/* One resolved operation. */
typedef struct {
    int32_t op;      /* BG_AA_* or BG_AA_IDENTITY */
    int32_t ival;    /* Posterize: bits kept; TranslateX/Y: out(x) = in(x + ival) */
    double fval;     /* Shear: s (in_x = x + s*y); Rotate: degrees counter-clockwise;
                        Color/Contrast/Sharpness/Brightness: blend factor; Solarize: threshold */
    int32_t fill;    /* geometric ops: value of uncovered pixels */
    int32_t bicubic; /* Shear: 1 bicubic (PIL variant), 0 nearest */
} bg_aa_step;

/* ---------------------------------------------------------------- tables */

typedef struct { int8_t op1, m1, op2, m2; double p1, p2; } bg_aa_subpolicy;

/* The 25 CIFAR-10 sub-policies (seed-spec 4.1); magnitude 0 where unused. */
BG_HD bg_aa_subpolicy bg_aa_cifar10(int i)
{
    const bg_aa_subpolicy t[25] = {
        {BG_AA_INVERT, 0, BG_AA_CONTRAST, 6, 0.1, 0.2},
        {BG_AA_ROTATE, 2, BG_AA_TRANSLATEX, 9, 0.7, 0.3},
        {BG_AA_SHARPNESS, 1, BG_AA_SHARPNESS, 3, 0.8, 0.9},
        {BG_AA_SHEARY, 8, BG_AA_TRANSLATEY, 9, 0.5, 0.7},
        {BG_AA_AUTOCONTRAST, 0, BG_AA_EQUALIZE, 0, 0.5, 0.9},
        {BG_AA_SHEARY, 7, BG_AA_POSTERIZE, 7, 0.2, 0.3},
        {BG_AA_COLOR, 3, BG_AA_BRIGHTNESS, 7, 0.4, 0.6},
        {BG_AA_SHARPNESS, 9, BG_AA_BRIGHTNESS, 9, 0.3, 0.7},
        {BG_AA_EQUALIZE, 0, BG_AA_EQUALIZE, 0, 0.6, 0.5},
        {BG_AA_CONTRAST, 7, BG_AA_SHARPNESS, 5, 0.6, 0.6},
        {BG_AA_COLOR, 7, BG_AA_TRANSLATEX, 8, 0.7, 0.5},
        {BG_AA_EQUALIZE, 0, BG_AA_AUTOCONTRAST, 0, 0.3, 0.4},
        {BG_AA_TRANSLATEY, 3, BG_AA_SHARPNESS, 6, 0.4, 0.2},
        {BG_AA_BRIGHTNESS, 6, BG_AA_COLOR, 8, 0.9, 0.2},
        {BG_AA_SOLARIZE, 2, BG_AA_INVERT, 0, 0.5, 0.0},
        {BG_AA_EQUALIZE, 0, BG_AA_AUTOCONTRAST, 0, 0.2, 0.6},
        {BG_AA_EQUALIZE, 0, BG_AA_EQUALIZE, 0, 0.2, 0.6},
        {BG_AA_COLOR, 9, BG_AA_EQUALIZE, 0, 0.9, 0.6},
        {BG_AA_AUTOCONTRAST, 0, BG_AA_SOLARIZE, 8, 0.8, 0.2},
        {BG_AA_BRIGHTNESS, 3, BG_AA_COLOR, 0, 0.1, 0.7},
        {BG_AA_SOLARIZE, 5, BG_AA_AUTOCONTRAST, 0, 0.4, 0.9},
        {BG_AA_TRANSLATEY, 9, BG_AA_TRANSLATEY, 9, 0.9, 0.7},
        {BG_AA_AUTOCONTRAST, 0, BG_AA_SOLARIZE, 3, 0.9, 0.8},
        {BG_AA_EQUALIZE, 0, BG_AA_INVERT, 0, 0.8, 0.1},
        {BG_AA_TRANSLATEY, 9, BG_AA_AUTOCONTRAST, 0, 0.7, 0.9},
    };
    return t[i < 0 ? 0 : i > 24 ? 24 : i];
}

/* numpy.linspace(a, b, 10)[i] in double: i*((b-a)/9) + a, the last one exactly b. */
BG_HD double bg_np_linspace10(double a, double b, int i)
{
    return i == 9 ? b : BG_DADD(BG_DMUL((double)i, (b - a) / 9.0), a);
}

/* torch.linspace(a, b, 10)[i] in float32, computed from both ends as ATen's
 * scalar kernel does. ATen's vector path can differ by one float ulp for some
 * endpoints (seen for 150/331*224); that only moves a truncated translate or
 * a blend factor in rare cases, and this variant is not the HAET one. */
BG_HD float bg_torch_linspace10(float a, float b, int i)
{
    float st = BG_FDIV(BG_FSUB(b, a), 9.0f);
    return i < 5 ? BG_FADD(a, BG_FMUL(st, (float)i)) : BG_FSUB(b, BG_FMUL(st, (float)(9 - i)));
}

/* True for ops whose parameter comes from the magnitude bins. */
BG_HD int bg_aa_has_magnitude(int op)
{
    return op >= 0 && op < BG_AA_AUTOCONTRAST;
}

/* True for ops that draw a random sign in the variant. */
BG_HD int bg_aa_signed(int variant, int op)
{
    switch (op) {
    case BG_AA_SHEARX: case BG_AA_SHEARY: case BG_AA_TRANSLATEX: case BG_AA_TRANSLATEY:
    case BG_AA_COLOR: case BG_AA_CONTRAST: case BG_AA_SHARPNESS: case BG_AA_BRIGHTNESS:
        return 1;
    case BG_AA_ROTATE: return variant == BG_AUTOAUG_TORCHVISION; /* DeepVoltaire: always positive */
    default: return 0;
    }
}

/* Resolve op at magnitude bin m (0..9) with sign (+1/-1) for a w x h image.
 * Arguments are trusted here (bg_aa_step_make validates them). */
BG_HD bg_aa_step bg_aa_resolve(int variant, int op, int m, int sign, int w, int h)
{
    bg_aa_step s;
    s.op = op, s.ival = 0, s.fval = 0.0, s.fill = 128, s.bicubic = 1;
    const int8_t bits[10] = {8, 8, 7, 7, 6, 6, 5, 5, 4, 4}; /* round(linspace(8,4)); same in both */
    double sg = bg_aa_signed(variant, op) && sign < 0 ? -1.0 : 1.0;
    if (variant == BG_AUTOAUG_TORCHVISION) {
        s.fill = 0, s.bicubic = 0;
        switch (op) {
        case BG_AA_SHEARX: case BG_AA_SHEARY: {
            /* F.affine(shear=degrees(atan(v))) builds tan(radians(that)). */
            double v = sg * (double)bg_torch_linspace10(0.0f, 0.3f, m);
            s.fval = tan((atan(v) * (180.0 / M_PI)) * (M_PI / 180.0));
            break;
        }
        case BG_AA_TRANSLATEX: case BG_AA_TRANSLATEY: {
            float hi = (float)(150.0 / 331.0 * (double)(op == BG_AA_TRANSLATEX ? w : h));
            /* translate=[int(v)] moves content by +int(v): out(x) = in(x - int(v)). */
            s.ival = -(int32_t)(sg * (double)bg_torch_linspace10(0.0f, hi, m));
            break;
        }
        case BG_AA_ROTATE: s.fval = sg * (double)bg_torch_linspace10(0.0f, 30.0f, m); break;
        case BG_AA_COLOR: case BG_AA_CONTRAST: case BG_AA_SHARPNESS: case BG_AA_BRIGHTNESS:
            s.fval = BG_DADD(1.0, BG_DMUL(sg, (double)bg_torch_linspace10(0.0f, 0.9f, m)));
            break;
        case BG_AA_POSTERIZE: s.ival = bits[m]; break;
        case BG_AA_SOLARIZE: s.fval = (double)bg_torch_linspace10(255.0f, 0.0f, m); break;
        default: break;
        }
        return s;
    }
    switch (op) {
    case BG_AA_SHEARX: case BG_AA_SHEARY: s.fval = bg_np_linspace10(0.0, 0.3, m) * sg; break;
    case BG_AA_TRANSLATEX: case BG_AA_TRANSLATEY: {
        /* magnitude * img.size[k] * sign, then PIL's scale path rounds half up. */
        double t = BG_DMUL(BG_DMUL(bg_np_linspace10(0.0, 150.0 / 331.0, m), (double)(op == BG_AA_TRANSLATEX ? w : h)), sg);
        s.ival = (int32_t)floor(BG_DADD(t, 0.5));
        break;
    }
    case BG_AA_ROTATE: s.fval = bg_np_linspace10(0.0, 30.0, m); break;
    case BG_AA_COLOR: case BG_AA_CONTRAST: case BG_AA_SHARPNESS: case BG_AA_BRIGHTNESS:
        s.fval = BG_DADD(1.0, BG_DMUL(bg_np_linspace10(0.0, 0.9, m), sg));
        break;
    case BG_AA_POSTERIZE: s.ival = bits[m]; break;
    case BG_AA_SOLARIZE: s.fval = bg_np_linspace10(256.0, 0.0, m); break;
    default: break;
    }
    return s;
}

/* ------------------------------------------------------------------ draws
 * Image `pos` of a batch at training step `step` draws Philox-4x32-10 blocks
 * keyed by the seed, counter {pos, step lo, step hi, tag}:
 *   BTCH  v0 % (2*pad+1) crop x, v1 crop y, v2 bit 0 flip (the plain
 *         bg_make_batch path uses exactly these, so turning AutoAugment on
 *         does not change the crops);
 *   AUTO  v0*25 >> 32 sub-policy; op 1 applies when unit(v1) < p1
 *         (torchvision: <=), op 2 likewise with v2; v3 bit 0 / bit 1 the
 *         sign of op 1 / op 2 (set = -1);
 *   CUTO  v0*H >> 32 hole centre row, v1*W >> 32 column;
 *   'RRC'+k  RandomResizedCrop attempt k (augment/resize.c).
 * unit() takes the top 24 bits (engine/philox.h). Each value depends only
 * on its counter: any thread count, CPU or GPU, draws the same numbers. */

#define BG_TAG_BATCH 0x42544348u  /* "BTCH": crop x, crop y, flip (augment/batch.c) */
#define BG_TAG_AUTO 0x4155544Fu   /* "AUTO": sub-policy, op 1 / op 2 coin, signs */
#define BG_TAG_CUTOUT 0x4355544Fu /* "CUTO": hole centre row, column */

/* The Philox block of one image: counter {pos, step lo, step hi, tag}. */
BG_HD bg_u32x4 bg_aug_block(uint64_t seed, uint64_t step, uint32_t pos, uint32_t tag)
{
    bg_u32x4 c = {{pos, (uint32_t)step, (uint32_t)(step >> 32), tag}};
    return bg_philox4x32_10(c, seed);
}

/* floor(v * n / 2^32): a value in [0, n) without a divide. */
BG_HD uint32_t bg_u32_below(uint32_t v, uint32_t n)
{
    return (uint32_t)(((uint64_t)v * (uint64_t)n) >> 32);
}

typedef struct {
    int32_t crop_pad;    /* pad-and-random-crop border, 0 = off */
    int32_t flip;        /* horizontal flip with p = 0.5 */
    int32_t autoaugment; /* BG_AUTOAUG_* */
    int32_t cutout;      /* hole side in pixels, 0 = off */
} bg_aug_cfg;

typedef struct {
    int32_t dx, dy, flip;  /* output (y, x) reads source (y+dy, (flip ? W-1-x : x)+dx) */
    int32_t cut_y, cut_x;  /* hole centre; cut_y < 0: no hole */
    bg_aa_step op[2];      /* op[k].op == BG_AA_IDENTITY: not drawn */
} bg_aug_plan;

/* Every random decision for the image at batch position pos of a step. */
BG_HD bg_aug_plan bg_aug_plan_make(const bg_aug_cfg *cfg, uint64_t seed, uint64_t step, uint32_t pos, int h, int w)
{
    bg_aug_plan pl;
    bg_u32x4 r = bg_aug_block(seed, step, pos, BG_TAG_BATCH);
    int pad = cfg->crop_pad;
    /* The same arithmetic as the plain crop/flip path of bg_make_batch. */
    pl.dx = pad ? (int32_t)(r.v[0] % (uint32_t)(2 * pad + 1)) - pad : 0;
    pl.dy = pad ? (int32_t)(r.v[1] % (uint32_t)(2 * pad + 1)) - pad : 0;
    pl.flip = cfg->flip && (r.v[2] & 1u);
    pl.op[0].op = pl.op[1].op = BG_AA_IDENTITY;
    pl.cut_y = pl.cut_x = -1;
    if (cfg->autoaugment == BG_AUTOAUG_PIL || cfg->autoaugment == BG_AUTOAUG_TORCHVISION) {
        bg_u32x4 a = bg_aug_block(seed, step, pos, BG_TAG_AUTO);
        bg_aa_subpolicy sp = bg_aa_cifar10((int)bg_u32_below(a.v[0], 25));
        double u1 = (double)bg_u32_to_unit(a.v[1]), u2 = (double)bg_u32_to_unit(a.v[2]);
        int tv = cfg->autoaugment == BG_AUTOAUG_TORCHVISION;
        /* DeepVoltaire: random() < p; torchvision: rand <= p. */
        if (tv ? u1 <= sp.p1 : u1 < sp.p1)
            pl.op[0] = bg_aa_resolve(cfg->autoaugment, sp.op1, sp.m1, (a.v[3] & 1u) ? -1 : 1, w, h);
        if (tv ? u2 <= sp.p2 : u2 < sp.p2)
            pl.op[1] = bg_aa_resolve(cfg->autoaugment, sp.op2, sp.m2, (a.v[3] & 2u) ? -1 : 1, w, h);
    }
    if (cfg->cutout > 0) {
        bg_u32x4 c = bg_aug_block(seed, step, pos, BG_TAG_CUTOUT);
        pl.cut_y = (int32_t)bg_u32_below(c.v[0], (uint32_t)h);
        pl.cut_x = (int32_t)bg_u32_below(c.v[1], (uint32_t)w);
    }
    return pl;
}

/* Pixel (x, y, ch) of the cropped and flipped image; 0 (black) in the padding. */
BG_HD uint8_t bg_aug_crop_pixel(const bg_aug_plan *pl, const uint8_t *src, int h, int w, int c, int x, int y, int ch)
{
    int sy = y + pl->dy, sx = (pl->flip ? w - 1 - x : x) + pl->dx;
    if (sy < 0 || sy >= h || sx < 0 || sx >= w) return 0;
    return src[((size_t)sy * (size_t)w + (size_t)sx) * (size_t)c + (size_t)ch];
}

/* Cutout box [y0,y1) x [x0,x1): centre +- side/2, clipped (uoguelph-mlrg/Cutout). */
BG_HD int bg_aug_in_hole(const bg_aug_plan *pl, int side, int h, int w, int x, int y)
{
    if (pl->cut_y < 0 || side <= 0) return 0;
    int half = side / 2;
    int y0 = pl->cut_y - half, y1 = pl->cut_y + half, x0 = pl->cut_x - half, x1 = pl->cut_x + half;
    y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > h ? h : y1, x1 = x1 > w ? w : x1;
    return y >= y0 && y < y1 && x >= x0 && x < x1;
}

/* --------------------------------------------------------- pixel numerics */

BG_HD uint8_t bg_pil_grey(uint8_t r, uint8_t g, uint8_t b)
{
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
}

/* Image.blend(deg, img, f) for one value. */
BG_HD uint8_t bg_pil_blend(uint8_t deg, uint8_t img, float f)
{
    float v = BG_FADD((float)deg, BG_FMUL(f, (float)((int)img - (int)deg)));
    if (v <= 0.0f) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)v;
}

/* PIL's a = -1 cubic through v1..v4 at fraction d of the v2..v3 interval. */
BG_HD double bg_pil_cubic(double v1, double v2, double v3, double v4, double d)
{
    double p2 = BG_DADD(-v1, v3);
    double p3 = BG_DSUB(BG_DADD(BG_DMUL(2.0, BG_DSUB(v1, v2)), v3), v4);
    double p4 = BG_DADD(BG_DSUB(BG_DADD(-v1, v2), v3), v4);
    return BG_DADD(v2, BG_DMUL(d, BG_DADD(p2, BG_DMUL(d, BG_DADD(p3, BG_DMUL(d, p4))))));
}

/* A prepared step: per-image quantities computed once (tables, matrices). */
typedef struct {
    bg_aa_step st;
    float f;               /* blend factor as the float PIL's C code receives */
    uint8_t mean;          /* Contrast: int(mean of L + 0.5) */
    int64_t fx[6];         /* nearest affine, 16.16: a0, a1, a3, a4, x origin, y origin */
    double m[6];           /* bicubic affine: in = (m0 x + m1 y + m2, m3 x + m4 y + m5) at centres */
    uint8_t lut[4][256];   /* AutoContrast / Equalize, per channel */
} bg_aa_prep;

BG_HD int64_t bg_pil_fix(double v)
{
    return (int64_t)floor(BG_DADD(BG_DMUL(v, 65536.0), 0.5));
}

/* Python's round(v, 15), closely enough: the result feeds FIX(), whose
 * 2^-16 grid swallows any last-digit disagreement. */
BG_HD double bg_round15(double v)
{
    return nearbyint(v * 1e15) / 1e15;
}

/* Matrices of geometric steps (PIL Image.rotate / Image.transform AFFINE). */
BG_HD void bg_aa_prep_geometry(bg_aa_prep *p, int w, int h)
{
    double m[6] = {1.0, 0.0, 0.0, 0.0, 1.0, 0.0};
    const bg_aa_step *s = &p->st;
    if (s->op == BG_AA_SHEARX) m[1] = s->fval;
    else if (s->op == BG_AA_SHEARY) m[3] = s->fval;
    else if (s->op == BG_AA_ROTATE) {
        /* Image.rotate: angle % 360, matrix rounded to 15 digits, about (w/2, h/2). */
        double a = fmod(s->fval, 360.0);
        if (a != 0.0 && a < 0.0) a += 360.0;
        double r = -(a * (M_PI / 180.0));
        double cx = (double)w / 2.0, cy = (double)h / 2.0;
        m[0] = bg_round15(cos(r)), m[1] = bg_round15(sin(r)), m[3] = bg_round15(-sin(r)), m[4] = bg_round15(cos(r));
        m[2] = BG_DADD(BG_DADD(BG_DADD(BG_DMUL(m[0], -cx), BG_DMUL(m[1], -cy)), 0.0), cx);
        m[5] = BG_DADD(BG_DADD(BG_DADD(BG_DMUL(m[3], -cx), BG_DMUL(m[4], -cy)), 0.0), cy);
    }
    for (int i = 0; i < 6; i++) p->m[i] = m[i];
    p->fx[0] = bg_pil_fix(m[0]), p->fx[1] = bg_pil_fix(m[1]);
    p->fx[2] = bg_pil_fix(m[3]), p->fx[3] = bg_pil_fix(m[4]);
    p->fx[4] = bg_pil_fix(BG_DADD(BG_DADD(m[2], BG_DMUL(m[1], 0.5)), BG_DMUL(m[0], 0.5)));
    p->fx[5] = bg_pil_fix(BG_DADD(BG_DADD(m[5], BG_DMUL(m[4], 0.5)), BG_DMUL(m[3], 0.5)));
}

/* ImageOps.autocontrast (cutoff 0) / ImageOps.equalize table of one channel
 * from its histogram. */
BG_HD void bg_aa_channel_lut(int op, const uint32_t *hist, uint8_t *lut)
{
    for (int i = 0; i < 256; i++) lut[i] = (uint8_t)i;
    if (op == BG_AA_AUTOCONTRAST) {
        int lo = 0, hi = 255;
        while (lo < 256 && !hist[lo]) lo++;
        while (hi >= 0 && !hist[hi]) hi--;
        if (lo > 255 || hi <= lo) return;
        double scale = 255.0 / (double)(hi - lo), offset = -(double)lo * scale;
        for (int i = 0; i < 256; i++) {
            int v = (int)BG_DADD(BG_DMUL((double)i, scale), offset); /* int() truncates */
            lut[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    } else if (op == BG_AA_EQUALIZE) {
        uint64_t total = 0, last = 0;
        int nonzero = 0;
        for (int i = 0; i < 256; i++)
            if (hist[i]) total += hist[i], last = hist[i], nonzero++;
        if (nonzero <= 1) return;
        uint64_t step = (total - last) / 255;
        if (!step) return;
        uint64_t n = step / 2;
        for (int i = 0; i < 256; i++) {
            uint64_t v = n / step;
            lut[i] = (uint8_t)(v > 255 ? 255 : v);
            n += hist[i];
        }
    }
}

/* ImageEnhance.Contrast's degenerate grey: int(sum(L)/count + 0.5). */
BG_HD uint8_t bg_aa_contrast_mean(uint64_t sum_l, uint64_t count)
{
    double mean = (double)sum_l / (double)(count ? count : 1);
    int v = (int)(mean + 0.5);
    return (uint8_t)(v > 255 ? 255 : v);
}

BG_HD uint8_t bg_aa_at(const uint8_t *src, int w, int c, int x, int y, int ch)
{
    return src[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)ch];
}

/* The SMOOTH-filtered value (interior pixels only). */
BG_HD uint8_t bg_pil_smooth(const uint8_t *src, int w, int c, int x, int y, int ch)
{
    uint32_t s = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) s += bg_aa_at(src, w, c, x + dx, y + dy, ch);
    s += 4u * bg_aa_at(src, w, c, x, y, ch);
    return (uint8_t)((s + 6u) / 13u); /* round(s/13): s/13 is never a half */
}

BG_HD uint8_t bg_pil_bicubic(const bg_aa_prep *p, const uint8_t *src, int w, int h, int c, int x, int y, int ch)
{
    double xo = BG_DADD(BG_DADD(BG_DMUL(p->m[0], x + 0.5), BG_DMUL(p->m[1], y + 0.5)), p->m[2]);
    double yo = BG_DADD(BG_DADD(BG_DMUL(p->m[3], x + 0.5), BG_DMUL(p->m[4], y + 0.5)), p->m[5]);
    if (xo < 0.0 || xo >= (double)w || yo < 0.0 || yo >= (double)h) return (uint8_t)p->st.fill;
    xo -= 0.5, yo -= 0.5;
    double fx = floor(xo), fy = floor(yo);
    double dx = xo - fx, dy = yo - fy;
    int x0 = (int)fx - 1, y0 = (int)fy - 1;
    int xs[4];
    for (int i = 0; i < 4; i++) {
        int xi = x0 + i;
        xs[i] = xi < 0 ? 0 : xi >= w ? w - 1 : xi;
    }
    double row[4];
    for (int j = 0; j < 4; j++) {
        int yj = y0 + j;
        yj = yj < 0 ? 0 : yj >= h ? h - 1 : yj;
        row[j] = bg_pil_cubic(bg_aa_at(src, w, c, xs[0], yj, ch), bg_aa_at(src, w, c, xs[1], yj, ch),
                              bg_aa_at(src, w, c, xs[2], yj, ch), bg_aa_at(src, w, c, xs[3], yj, ch), dx);
    }
    double v = bg_pil_cubic(row[0], row[1], row[2], row[3], dy);
    return v <= 0.0 ? 0 : v >= 255.0 ? 255 : (uint8_t)v;
}

BG_HD uint8_t bg_pil_nearest(const bg_aa_prep *p, const uint8_t *src, int w, int h, int c, int x, int y, int ch)
{
    int64_t xx = p->fx[4] + (int64_t)y * p->fx[1] + (int64_t)x * p->fx[0];
    int64_t yy = p->fx[5] + (int64_t)y * p->fx[3] + (int64_t)x * p->fx[2];
    if (xx < 0 || yy < 0) return (uint8_t)p->st.fill;
    int64_t xi = xx >> 16, yi = yy >> 16;
    if (xi >= w || yi >= h) return (uint8_t)p->st.fill;
    return bg_aa_at(src, w, c, (int)xi, (int)yi, ch);
}

/* Output value (x, y, ch) of a prepared step. c is 1 (L) or 3 (RGB). */
BG_HD uint8_t bg_aa_pixel(const bg_aa_prep *p, const uint8_t *src, int w, int h, int c, int x, int y, int ch)
{
    uint8_t v = bg_aa_at(src, w, c, x, y, ch);
    switch (p->st.op) {
    case BG_AA_INVERT: return (uint8_t)(255 - v);
    case BG_AA_POSTERIZE: return (uint8_t)(v & ~((1u << (8 - p->st.ival)) - 1u));
    case BG_AA_SOLARIZE: return (double)v < p->st.fval ? v : (uint8_t)(255 - v);
    case BG_AA_AUTOCONTRAST: case BG_AA_EQUALIZE: return p->lut[ch][v];
    case BG_AA_BRIGHTNESS: return bg_pil_blend(0, v, p->f);
    case BG_AA_CONTRAST: return bg_pil_blend(p->mean, v, p->f);
    case BG_AA_COLOR: {
        uint8_t g = v;
        if (c >= 3) g = bg_pil_grey(bg_aa_at(src, w, c, x, y, 0), bg_aa_at(src, w, c, x, y, 1), bg_aa_at(src, w, c, x, y, 2));
        return bg_pil_blend(g, v, p->f);
    }
    case BG_AA_SHARPNESS: {
        int border = x == 0 || y == 0 || x == w - 1 || y == h - 1;
        return bg_pil_blend(border ? v : bg_pil_smooth(src, w, c, x, y, ch), v, p->f);
    }
    case BG_AA_TRANSLATEX: {
        int sx = x + p->st.ival;
        return sx >= 0 && sx < w ? bg_aa_at(src, w, c, sx, y, ch) : (uint8_t)p->st.fill;
    }
    case BG_AA_TRANSLATEY: {
        int sy = y + p->st.ival;
        return sy >= 0 && sy < h ? bg_aa_at(src, w, c, x, sy, ch) : (uint8_t)p->st.fill;
    }
    case BG_AA_SHEARX: case BG_AA_SHEARY:
        return p->st.bicubic ? bg_pil_bicubic(p, src, w, h, c, x, y, ch) : bg_pil_nearest(p, src, w, h, c, x, y, ch);
    case BG_AA_ROTATE:
        return bg_pil_nearest(p, src, w, h, c, x, y, ch);
    default: return v;
    }
}

/* Rotating by a multiple of 360 degrees returns a copy in PIL (no resampling). */
BG_HD int bg_aa_is_identity(const bg_aa_step *s)
{
    if (s->op == BG_AA_IDENTITY) return 1;
    if (s->op == BG_AA_ROTATE) return fmod(s->fval, 360.0) == 0.0;
    if (s->op == BG_AA_POSTERIZE) return s->ival >= 8;
    return 0;
}

#endif
