/* CPU image transforms on uint8 HWC images: the 14 AutoAugment operations
 * with PIL's numerics (augment/autoaugment.c), the per-image HAET chain
 * crop -> flip -> AutoAugment -> Cutout (augment/transforms.c), PIL-compatible
 * bilinear resize, random-resized-crop and centre crop (augment/resize.c), and
 * JPEG decoding with DCT-domain scaling (augment/jpeg_decode.c).
 *
 * The numerics and the random-draw layout live in augment/aa_numerics.h,
 * shared with the CUDA kernels (kernels/augment.cu). What is PIL-exact and
 * what the tolerances are: docs/augment.md. */
#ifndef BG_TRANSFORMS_H
#define BG_TRANSFORMS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "aa_numerics.h"
#include "dataset.h"

/* ---- AutoAugment operations (augment/autoaugment.c) ---- */

/* "ShearX" ... "Invert"; NULL outside 0..BG_AA_NOPS-1. */
const char *bg_aa_op_name(int op);
/* Case-insensitive name -> BG_AA_*, or -1. */
int bg_aa_op_parse(const char *name);
/* Validate (variant, op, magnitude 0..9, sign +1/-1, image size) and resolve
 * the step; the message names the field at fault. Ops without a magnitude
 * ignore it; Rotate in the PIL variant ignores the sign (DeepVoltaire never
 * negates it). */
bg_status bg_aa_step_make(bg_ctx *ctx, int variant, int op, int magnitude, int sign, int w, int h,
                          bg_aa_step *out);
/* Apply one step: src and dst are h x w x c (c = 1 grey or 3 RGB), distinct. */
bg_status bg_aa_apply(bg_ctx *ctx, const bg_aa_step *st, const uint8_t *src, uint8_t *dst, int h, int w, int c);
/* The same without checks, for loops that validated once (batch assembly). */
void bg_aa_apply_unchecked(const bg_aa_step *st, const uint8_t *src, uint8_t *dst, int h, int w, int c);
/* Per-image quantities of a step (histogram tables, contrast mean, matrices). */
void bg_aa_prepare(bg_aa_prep *p, const bg_aa_step *st, const uint8_t *src, int h, int w, int c);

/* ---- the per-image training chain (augment/transforms.c) ---- */

/* crop/flip (plan) -> its AutoAugment steps -> Cutout of side `cutout` when
 * cutout > 0 (a black hole; pass 0 to cut after normalising instead).
 * out and tmp are h*w*c bytes each, distinct from src. */
void bg_aug_apply_plan_u8(const bg_aug_plan *pl, int cutout, const uint8_t *src, int h, int w, int c,
                          uint8_t *out, uint8_t *tmp);
/* Zero the plan's Cutout hole of side `side` in a uint8 image. */
void bg_cutout_u8(const bg_aug_plan *pl, int side, uint8_t *img, int h, int w, int c);
/* Mirror left-right in place (test-time augmentation and random flips). */
void bg_hflip_u8(uint8_t *img, int h, int w, int c);
/* (p/255 - mean[ch]) / std[ch] per value, exactly as bg_make_batch rounds it. */
void bg_normalize_u8(const uint8_t *src, size_t n_pixels, int c, const float *mean, const float *std, float *out);

/* ---- resize and crops (augment/resize.c) ---- */

typedef struct { int x, y, w, h; } bg_box;

/* PIL Image.resize(BILINEAR) of a w x h x c image whose rows are `stride`
 * bytes apart (so a crop is a pointer and a stride): separable triangle
 * filter widened by the scale when downscaling (PIL's antialias), 22-bit
 * fixed-point coefficients, horizontal pass first, round to nearest.
 * Bit-exact with Pillow 9.4 in every case we tested. */
bg_status bg_resize_bilinear(bg_ctx *ctx, const uint8_t *src, int sw, int sh, int c, size_t stride, uint8_t *dst,
                             int dw, int dh);
/* The same, mirrored left-right (a flip at no extra cost). */
bg_status bg_resize_bilinear_mirror(bg_ctx *ctx, const uint8_t *src, int sw, int sh, int c, size_t stride,
                                    uint8_t *dst, int dw, int dh);

typedef struct {
    double scale_lo, scale_hi; /* area fraction, torchvision default 0.08 .. 1 */
    double ratio_lo, ratio_hi; /* aspect w/h, default 3/4 .. 4/3 */
} bg_rrc_opts;
/* torchvision RandomResizedCrop.get_params: 10 attempts, then the centre-crop
 * fallback. Attempt k draws Philox block {pos, step lo, step hi, 'RRC'+k}:
 * v0 area fraction, v1 log aspect ratio, v2 top row, v3 left column. */
bg_box bg_rrc_box(int w, int h, const bg_rrc_opts *o, uint64_t seed, uint64_t step, uint32_t pos);
/* torchvision CenterCrop box (offsets round half to even, as Python's round). */
bg_box bg_center_crop_box(int w, int h, int cw, int ch);
/* torchvision Resize(size): shorter side -> size, the other int(size*long/short). */
void bg_resize_shorter_dims(int w, int h, int size, int *ow, int *oh);
/* Evaluation transform: Resize(resize) then CenterCrop(crop) -> crop x crop x c. */
bg_status bg_resize_center_crop(bg_ctx *ctx, const uint8_t *src, int sw, int sh, int c, int resize, int crop,
                                uint8_t *dst);

/* ---- JPEG (augment/jpeg_decode.c) ---- */

typedef struct {
    void *tj;          /* TurboJPEG handle, created on first use */
    uint8_t *pixels;   /* the last decoded image (owned, reused) */
    size_t cap;
} bg_jpeg;

void bg_jpeg_free(bg_jpeg *j);
/* Size of a JPEG held in memory; `name` (a path) is used in messages. */
bg_status bg_jpeg_size(bg_ctx *ctx, bg_jpeg *j, const uint8_t *data, size_t n, const char *name, int *w, int *h);
/* Decode to RGB. With min_w/min_h > 0 the decoder scales in the DCT domain
 * to the smallest of TurboJPEG's factors (1/8 .. 1) that keeps the image at
 * least min_w x min_h: much cheaper than a full decode and a large resize.
 * *pixels points into j (valid until the next call). A corrupt or truncated
 * file fails with BG_ERR_FORMAT naming `name`. */
bg_status bg_jpeg_decode(bg_ctx *ctx, bg_jpeg *j, const uint8_t *data, size_t n, const char *name, int min_w,
                         int min_h, const uint8_t **pixels, int *w, int *h);
/* Whole file into a malloc'd buffer (*data freed by the caller). */
bg_status bg_read_file(bg_ctx *ctx, const char *path, uint8_t **data, size_t *n);
/* Training transform for JPEG data sets: decode (DCT-scaled when the crop is
 * much larger than the output), RandomResizedCrop to out x out with PIL
 * bilinear, horizontal flip when `flip` and the BTCH draw says so. dst is
 * out*out*3. Draws as bg_rrc_box and bg_make_batch (seed, step, pos). */
bg_status bg_jpeg_rrc(bg_ctx *ctx, bg_jpeg *j, const uint8_t *data, size_t n, const char *name, int out,
                      const bg_rrc_opts *o, bool flip, uint64_t seed, uint64_t step, uint32_t pos, uint8_t *dst);

/* ---- data sets resident on the GPU (augment/gpu_batch.c) ---- */

/* A data set's pixels on the device as uint8 (taken from the context's CUDA
 * allocator, so the memory cap counts them); labels stay on the host. */
typedef struct {
    uint8_t *pixels;          /* device, n*h*w*c bytes */
    int64_t *idx;             /* device staging for one batch's image indices */
    int64_t idx_cap;
    int64_t n;
    int h, w, c;
    const bg_dataset *host;   /* labels, class names, source (not owned) */
} bg_gpu_dataset;

/* Copy ds's pixels to the device (ctx: a CUDA context). Without CUDA in the
 * build: BG_ERR_UNSUPPORTED. */
bg_status bg_gpu_dataset_upload(bg_ctx *ctx, const bg_dataset *ds, bg_gpu_dataset *g);
void bg_gpu_dataset_free(bg_ctx *ctx, bg_gpu_dataset *g);
/* bg_make_batch on the device: the same draws and values (f32 bit-identical
 * to the CPU batch; f16 is that value rounded to nearest). d_out is device
 * memory of n*h*w*c f32 or f16; labels_out (host, may be NULL) as on the CPU.
 * Runs on ctx->stream and does not wait for the kernel. */
bg_status bg_make_batch_cuda(bg_ctx *ctx, bg_gpu_dataset *g, const int64_t *idx, int64_t n, const bg_batch_opts *aug,
                             uint64_t seed, uint64_t step, void *d_out, bool f16, int32_t *labels_out);

#endif
