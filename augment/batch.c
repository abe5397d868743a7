/* Batch assembly: dataset images -> normalised float NHWC, with the standard
 * CIFAR training augmentations (pad-and-random-crop, horizontal flip).
 * Each image's draws come from Philox(seed, {position, step, 'BTCH'}) and the
 * images are independent, so the batch is the same for any OpenMP thread
 * count and can be regenerated from (seed, step) alone. */
#include <math.h>
#include <string.h>
#include "dataset.h"
#include "../engine/philox.h"

#define TAG_BATCH 0x42544348u /* "BTCH" */

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
