/* Data sets resident on the GPU and batch assembly there: the host side of
 * kernels/augment.cu. Arguments are checked here as bg_make_batch checks
 * them, so the kernel can trust them. */
#include <math.h>
#include <string.h>
#include "transforms.h"
#ifdef BG_WITH_CUDA
#include "../kernels/augment.h"
#include "../kernels/cuda_api.h"
#endif

void bg_gpu_dataset_free(bg_ctx *ctx, bg_gpu_dataset *g)
{
    if (!g) return;
    if (g->pixels) bg_free(ctx, BG_CUDA, g->pixels, (size_t)g->n * g->h * g->w * g->c);
    if (g->idx) bg_free(ctx, BG_CUDA, g->idx, (size_t)g->idx_cap * sizeof(int64_t));
    memset(g, 0, sizeof *g);
}

#ifdef BG_WITH_CUDA

bg_status bg_gpu_dataset_upload(bg_ctx *ctx, const bg_dataset *ds, bg_gpu_dataset *g)
{
    if (!ds || !g) return bg_fail(ctx, BG_ERR_ARG, "bg_gpu_dataset_upload: NULL argument");
    memset(g, 0, sizeof *g);
    if (ds->n < 0 || ds->h <= 0 || ds->w <= 0 || ds->c < 1 || ds->c > 4 || (ds->n > 0 && !ds->pixels))
        return bg_fail(ctx, BG_ERR_ARG, "%s: cannot upload %lld images %dx%dx%d", ds->source, (long long)ds->n, ds->h,
                       ds->w, ds->c);
    size_t bytes = (size_t)ds->n * ds->h * ds->w * ds->c;
    bg_status s = bg_alloc(ctx, BG_CUDA, bytes, "dataset pixels", (void **)&g->pixels);
    if (s) return s;
    g->n = ds->n, g->h = ds->h, g->w = ds->w, g->c = ds->c, g->host = ds;
    char err[256];
    if (bytes && bg_cuda_memcpy(g->pixels, ds->pixels, bytes, BG_COPY_H2D, ctx->stream, err, sizeof err)) {
        bg_gpu_dataset_free(ctx, g);
        return bg_fail(ctx, BG_ERR_CUDA, "%s: uploading %zu bytes of pixels: %s", ds->source, bytes, err);
    }
    return BG_OK;
}

bg_status bg_make_batch_cuda(bg_ctx *ctx, bg_gpu_dataset *g, const int64_t *idx, int64_t n, const bg_batch_opts *aug,
                             uint64_t seed, uint64_t step, void *d_out, bool f16, int32_t *labels_out)
{
    if (!g || !aug || !g->host || (n > 0 && (!idx || !d_out)))
        return bg_fail(ctx, BG_ERR_ARG, "bg_make_batch_cuda: NULL argument");
    const char *src = g->host->source;
    const int H = g->h, W = g->w, C = g->c;
    if (n < 0 || n > 0x7fffffff) return bg_fail(ctx, BG_ERR_ARG, "%s: batch size %lld", src, (long long)n);
    if (aug->crop_pad < 0 || aug->crop_pad > (H < W ? H : W))
        return bg_fail(ctx, BG_ERR_ARG, "%s: crop_pad %d outside 0..%d", src, aug->crop_pad, H < W ? H : W);
    if (aug->autoaugment && aug->autoaugment != BG_AUTOAUG_PIL && aug->autoaugment != BG_AUTOAUG_TORCHVISION)
        return bg_fail(ctx, BG_ERR_ARG, "%s: autoaugment %d (0 off, 1 pil, 2 torchvision)", src, aug->autoaugment);
    if (aug->autoaugment && C != 1 && C != 3)
        return bg_fail(ctx, BG_ERR_ARG, "%s: AutoAugment needs 1 or 3 channels, the images have %d", src, C);
    if (aug->cutout < 0 || aug->cutout > 2 * (H > W ? H : W))
        return bg_fail(ctx, BG_ERR_ARG, "%s: cutout %d outside 0..%d", src, aug->cutout, 2 * (H > W ? H : W));
    for (int ch = 0; ch < C; ch++)
        if (!(aug->std[ch] > 0.0f) || !isfinite(aug->std[ch]) || !isfinite(aug->mean[ch]))
            return bg_fail(ctx, BG_ERR_ARG, "%s: channel %d has mean %g std %g (std must be > 0)", src, ch,
                           (double)aug->mean[ch], (double)aug->std[ch]);
    for (int64_t p = 0; p < n; p++)
        if (idx[p] < 0 || idx[p] >= g->n)
            return bg_fail(ctx, BG_ERR_ARG, "%s: batch position %lld asks for image %lld, outside 0..%lld", src,
                           (long long)p, (long long)idx[p], (long long)g->n - 1);
    if (n == 0) return BG_OK;
    char err[256];
    if (n > g->idx_cap) {
        if (g->idx) bg_free(ctx, BG_CUDA, g->idx, (size_t)g->idx_cap * sizeof(int64_t));
        g->idx = NULL, g->idx_cap = 0;
        bg_status s = bg_alloc(ctx, BG_CUDA, (size_t)n * sizeof(int64_t), "batch indices", (void **)&g->idx);
        if (s) return s;
        g->idx_cap = n;
    }
    if (bg_cuda_memcpy(g->idx, idx, (size_t)n * sizeof(int64_t), BG_COPY_H2D, ctx->stream, err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "%s: batch indices: %s", src, err);
    bg_cuda_batch_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.aug.crop_pad = aug->crop_pad, cfg.aug.flip = aug->flip, cfg.aug.autoaugment = aug->autoaugment;
    cfg.aug.cutout = aug->cutout, cfg.cutout_after_norm = aug->cutout_after_norm;
    for (int ch = 0; ch < C; ch++) cfg.mean[ch] = aug->mean[ch], cfg.std[ch] = aug->std[ch];
    if (bg_cuda_augment_batch(g->pixels, H, W, C, g->idx, (int)n, &cfg, seed, step, d_out, f16, ctx->stream, err,
                              sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "%s: %s", src, err);
    if (labels_out)
        for (int64_t p = 0; p < n; p++) labels_out[p] = g->host->labels[idx[p]];
    return BG_OK;
}

#else

bg_status bg_gpu_dataset_upload(bg_ctx *ctx, const bg_dataset *ds, bg_gpu_dataset *g)
{
    if (g) memset(g, 0, sizeof *g);
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "%s: GPU data sets need a CUDA build", ds ? ds->source : "dataset");
}

bg_status bg_make_batch_cuda(bg_ctx *ctx, bg_gpu_dataset *g, const int64_t *idx, int64_t n, const bg_batch_opts *aug,
                             uint64_t seed, uint64_t step, void *d_out, bool f16, int32_t *labels_out)
{
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "bg_make_batch_cuda: this build has no CUDA");
}

#endif
