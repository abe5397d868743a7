/* Batch assembly: dataset images -> normalised float NHWC, with the standard
 * CIFAR training augmentations (pad-and-random-crop, horizontal flip).
 * Each image's draws come from Philox(seed, {position, step, 'BTCH'}) and the
 * images are independent, so the batch is the same for any OpenMP thread
 * count and can be regenerated from (seed, step) alone.
 * With AutoAugment or Cutout on, each image goes through the uint8 chain of
 * augment/transforms.c (crop -> flip -> AutoAugment -> Cutout) before the
 * normalising table; the crop/flip draws are the same in both paths. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"
#include "transforms.h"
#include "../engine/philox.h"

#define TAG_BATCH 0x42544348u /* "BTCH" */
_Static_assert(TAG_BATCH == BG_TAG_BATCH, "aa_numerics.h and batch.c must share the crop/flip stream");

/* The HAET chain: per image, uint8 crop/flip/AutoAugment/Cutout in two
 * per-thread buffers, then the table. Arguments are validated by the caller. */
static bg_status chain_batch(bg_ctx *ctx, const bg_dataset *ds, const int64_t *idx, int64_t n,
                             const bg_batch_opts *aug, uint64_t seed, uint64_t step, float (*lut)[256],
                             float *out_nhwc, int32_t *labels_out)
{
    const int H = ds->h, W = ds->w, C = ds->c;
    if (aug->autoaugment && aug->autoaugment != BG_AUTOAUG_PIL && aug->autoaugment != BG_AUTOAUG_TORCHVISION)
        return bg_fail(ctx, BG_ERR_ARG, "%s: autoaugment %d (0 off, 1 pil, 2 torchvision)", ds->source, aug->autoaugment);
    if (aug->autoaugment && C != 1 && C != 3)
        return bg_fail(ctx, BG_ERR_ARG, "%s: AutoAugment needs 1 or 3 channels, the images have %d", ds->source, C);
    if (aug->cutout < 0 || aug->cutout > 2 * (H > W ? H : W))
        return bg_fail(ctx, BG_ERR_ARG, "%s: cutout %d outside 0..%d", ds->source, aug->cutout, 2 * (H > W ? H : W));
    const size_t img = (size_t)H * (size_t)W * (size_t)C;
    const int nt = omp_get_max_threads();
    uint8_t *bufs = malloc((size_t)nt * 2 * img);
    if (!bufs) return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory for augmentation buffers", ds->source);
    const bg_aug_cfg cfg = {aug->crop_pad, aug->flip, aug->autoaugment, aug->cutout};
    const int cut_before = aug->cutout_after_norm ? 0 : aug->cutout;
#pragma omp parallel num_threads(nt)
    {
        uint8_t *a = bufs + (size_t)omp_get_thread_num() * 2 * img, *b = a + img;
#pragma omp for schedule(static)
        for (int64_t p = 0; p < n; p++) {
            bg_aug_plan pl = bg_aug_plan_make(&cfg, seed, step, (uint32_t)p, H, W);
            bg_aug_apply_plan_u8(&pl, cut_before, bg_dataset_image(ds, idx[p]), H, W, C, a, b);
            float *dst = out_nhwc + (size_t)p * img;
            for (size_t i = 0; i < img; i += (size_t)C)
                for (int ch = 0; ch < C; ch++) dst[i + ch] = lut[ch][a[i + ch]];
            if (aug->cutout_after_norm && aug->cutout > 0)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        if (bg_aug_in_hole(&pl, aug->cutout, H, W, x, y))
                            for (int ch = 0; ch < C; ch++) dst[((size_t)y * W + x) * C + ch] = 0.0f;
            if (labels_out) labels_out[p] = ds->labels[idx[p]];
        }
    }
    free(bufs);
    return BG_OK;
}

bg_status bg_make_batch(bg_ctx *ctx, const bg_dataset *ds, const int64_t *idx, int64_t n,
                        const bg_batch_opts *aug, uint64_t seed, uint64_t step,
                        float *out_nhwc, int32_t *labels_out)
{
    if (!ds || !aug || (n > 0 && (!idx || !out_nhwc)))
        return bg_fail(ctx, BG_ERR_ARG, "bg_make_batch: NULL argument");
    if (n < 0) return bg_fail(ctx, BG_ERR_ARG, "%s: batch size %lld < 0", ds->source, (long long)n);
    const int H = ds->h, W = ds->w, C = ds->c;
    if (C < 1 || C > 4 || !ds->pixels)
        return bg_fail(ctx, BG_ERR_ARG, "%s: dataset has %d channels (1..4 supported) or no pixels",
                       ds->source, C);
    if (aug->crop_pad < 0 || aug->crop_pad > (H < W ? H : W))
        return bg_fail(ctx, BG_ERR_ARG, "%s: crop_pad %d outside 0..%d", ds->source, aug->crop_pad,
                       H < W ? H : W);
    /* Everything is validated before the parallel loop, which cannot fail. */
    for (int ch = 0; ch < C; ch++)
        if (!(aug->std[ch] > 0.0f) || !isfinite(aug->std[ch]) || !isfinite(aug->mean[ch]))
            return bg_fail(ctx, BG_ERR_ARG, "%s: channel %d has mean %g std %g (std must be > 0)",
                           ds->source, ch, (double)aug->mean[ch], (double)aug->std[ch]);
    for (int64_t p = 0; p < n; p++)
        if (idx[p] < 0 || idx[p] >= ds->n)
            return bg_fail(ctx, BG_ERR_ARG, "%s: batch position %lld asks for image %lld, outside 0..%lld",
                           ds->source, (long long)p, (long long)idx[p], (long long)ds->n - 1);

    /* 256-entry table per channel: one load per pixel instead of a divide.
     * Index 0 is also the padding value (black, as torchvision pads). */
    float lut[4][256];
    for (int ch = 0; ch < C; ch++)
        for (int v = 0; v < 256; v++)
            lut[ch][v] = ((float)v / 255.0f - aug->mean[ch]) / aug->std[ch];

    const int pad = aug->crop_pad;
    const size_t img = (size_t)H * (size_t)W * (size_t)C;
    if (aug->autoaugment || aug->cutout)
        return chain_batch(ctx, ds, idx, n, aug, seed, step, lut, out_nhwc, labels_out);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < n; p++) {
        bg_u32x4 ctr = {{(uint32_t)p, (uint32_t)step, (uint32_t)(step >> 32), TAG_BATCH}};
        bg_u32x4 r = bg_philox4x32_10(ctr, seed);
        /* Offset of the crop window in the padded image, 0..2*pad each way. */
        int dx = pad ? (int)(r.v[0] % (uint32_t)(2 * pad + 1)) - pad : 0;
        int dy = pad ? (int)(r.v[1] % (uint32_t)(2 * pad + 1)) - pad : 0;
        int flip = aug->flip && (r.v[2] & 1u);
        const uint8_t *src = bg_dataset_image(ds, idx[p]);
        float *dst = out_nhwc + (size_t)p * img;
        for (int y = 0; y < H; y++) {
            int sy = y + dy;
            float *row = dst + (size_t)y * W * C;
            if (sy < 0 || sy >= H) {
                for (int x = 0; x < W; x++)
                    for (int ch = 0; ch < C; ch++) row[x * C + ch] = lut[ch][0];
                continue;
            }
            const uint8_t *srow = src + (size_t)sy * W * C;
            for (int x = 0; x < W; x++) {
                /* Flip after cropping: output column x shows crop column W-1-x. */
                int sx = (flip ? W - 1 - x : x) + dx;
                float *o = row + x * C;
                if (sx < 0 || sx >= W)
                    for (int ch = 0; ch < C; ch++) o[ch] = lut[ch][0];
                else
                    for (int ch = 0; ch < C; ch++) o[ch] = lut[ch][srow[sx * C + ch]];
            }
        }
        if (labels_out) labels_out[p] = ds->labels[idx[p]];
    }
    return BG_OK;
}
