/* GPU suite: the CUDA augmentation (kernels/augment.cu) against the CPU
 * reference. Both sides run the same functions of augment/aa_numerics.h with
 * explicit IEEE rounding, so the expected result is bit-identical for every
 * op. The stated tolerance: integer ops (Invert, Posterize, Solarize,
 * AutoContrast, Equalize, TranslateX/Y) and crop/flip/Cutout/normalise exact;
 * interpolating and blending ops (Shear, Rotate, Color, Contrast,
 * Brightness, Sharpness) within 1 level per value, which only a difference
 * in the device's cos/sin/tan could cause (rotate and torchvision shear
 * matrices). Every test prints nothing on success. */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../augment/transforms.h"
#ifdef BG_WITH_CUDA
#include "../kernels/augment.h"
#include "../kernels/cuda_api.h"
#endif

#ifdef BG_WITH_CUDA
/* Natural-ish test images: smooth gradients plus noise, one flat image, one
 * with a few saturated pixels (equalize's clipped table). */
static void make_images(uint8_t *px, int n, int h, int w)
{
    uint32_t s = 777;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) {
                    s = s * 1664525u + 1013904223u;
                    int v = (x * (40 + 20 * c) + y * (30 + i * 7)) / 8 + (int)(s >> 28) - 8 + 16 * i;
                    if (i == 1) v = 90;
                    if (i == 2 && (x + y) % 13 == 0) v = 255;
                    px[(((size_t)i * h + y) * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
}

static bool integer_op(int op)
{
    return op == BG_AA_INVERT || op == BG_AA_POSTERIZE || op == BG_AA_SOLARIZE || op == BG_AA_AUTOCONTRAST ||
           op == BG_AA_EQUALIZE || op == BG_AA_TRANSLATEX || op == BG_AA_TRANSLATEY;
}

/* ops (all when NULL, else the list ended by -1) at magnitudes m_step apart */
static void ops_parity_some(bg_t *tc, int h, int w, int n, const int *only, int m_step)
{
    bg_ctx ctx;
    CHECK_OK(&ctx, bg_ctx_init(&ctx, BG_CUDA, 1));
    if (tc->failures) return;
    const size_t img = (size_t)h * w * 3, bytes = n * img;
    uint8_t *host = malloc(bytes), *got = malloc(bytes), *want = malloc(img);
    make_images(host, n, h, w);
    void *d_src = NULL, *d_dst = NULL;
    char err[256];
    CHECK(!bg_cuda_malloc(&d_src, bytes, err, sizeof err) && !bg_cuda_malloc(&d_dst, bytes, err, sizeof err), "%s", err);
    CHECK(!bg_cuda_memcpy(d_src, host, bytes, BG_COPY_H2D, ctx.stream, err, sizeof err), "%s", err);
    for (int variant = BG_AUTOAUG_PIL; variant <= BG_AUTOAUG_TORCHVISION && !tc->failures; variant++)
        for (int k = 0; (only ? only[k] >= 0 : k < BG_AA_NOPS) && !tc->failures; k++) {
            const int op = only ? only[k] : k;
            int worst = 0;
            long ndiff = 0;
            for (int m = 0; m < 10; m += m_step)
                for (int sign = 1; sign >= -1; sign -= 2) {
                    bg_aa_step st;
                    CHECK_OK(&ctx, bg_aa_step_make(&ctx, variant, op, m, sign, w, h, &st));
                    CHECK(!bg_cuda_aa_apply(d_src, d_dst, n, h, w, 3, &st, ctx.stream, err, sizeof err), "%s", err);
                    CHECK(!bg_cuda_memcpy(got, d_dst, bytes, BG_COPY_D2H, ctx.stream, err, sizeof err), "%s", err);
                    if (tc->failures) break;
                    for (int i = 0; i < n; i++) {
                        bg_aa_apply_unchecked(&st, host + i * img, want, h, w, 3);
                        for (size_t k = 0; k < img; k++) {
                            int d = abs((int)got[i * img + k] - want[k]);
                            worst = d > worst ? d : worst;
                            ndiff += d != 0;
                        }
                    }
                }
            int limit = integer_op(op) ? 0 : 1;
            CHECK(worst <= limit, "%s %s (%dx%d): max diff %d over the magnitudes x 2 signs (limit %d), %ld values differ",
                  variant == BG_AUTOAUG_PIL ? "pil" : "torchvision", bg_aa_op_name(op), w, h, worst, limit, ndiff);
        }
    bg_cuda_free(d_src), bg_cuda_free(d_dst);
    free(host), free(got), free(want);
    bg_ctx_free(&ctx);
}

static void ops_parity(bg_t *tc, int h, int w) { ops_parity_some(tc, h, w, 8, NULL, 1); }
#endif

/* Each op on the GPU equals the CPU reference, all magnitudes and signs. */
BG_GPU_TEST(gpu_augment_ops_match_cpu)
{
#ifdef BG_WITH_CUDA
    ops_parity(tc, 32, 32);
    ops_parity(tc, 24, 41); /* non-square: rotation centre, translate bins */
#else
    SKIP("CPU-only build");
#endif
}

#ifdef BG_WITH_CUDA
/* The whole batch (crop, flip, AutoAugment, Cutout, normalise) on the GPU
 * against bg_make_batch, f32 and f16. */
static void batch_parity_at(bg_t *tc, const bg_batch_opts *o, const char *what, int H, int W, int B)
{
    bg_ctx cpu, gpu;
    bg_test_ctx(&cpu, 1);
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 1));
    if (tc->failures) return;
    const int N = 300;
    const size_t img = (size_t)H * W * 3;
    bg_dataset ds;
    memset(&ds, 0, sizeof ds);
    CHECK_OK(&cpu, bg_dataset_alloc(&cpu, &ds, N, H, W, 3, "gpu-parity"));
    snprintf(ds.source, sizeof ds.source, "gpu-parity");
    for (int i = 0; i < N; i += 4) make_images(ds.pixels + (size_t)i * img, N - i < 4 ? N - i : 4, H, W);
    for (int i = 0; i < N; i++) ds.labels[i] = i % 10;
    int64_t idx[256];
    for (int i = 0; i < B; i++) idx[i] = (i * 37) % N;
    float *want = malloc(B * img * sizeof(float)), *got = malloc(B * img * sizeof(float));
    uint16_t *got16 = malloc(B * img * sizeof(uint16_t));
    int32_t lw[256], lg[256];
    bg_gpu_dataset g;
    void *d_out = NULL;
    char err[256];
    CHECK_OK(&gpu, bg_gpu_dataset_upload(&gpu, &ds, &g));
    CHECK(!bg_cuda_malloc(&d_out, B * img * sizeof(float), err, sizeof err), "%s", err);
    for (uint64_t step = 0; step < 3 && !tc->failures; step++) {
        CHECK_OK(&cpu, bg_make_batch(&cpu, &ds, idx, B, o, 11, step, want, lw));
        CHECK_OK(&gpu, bg_make_batch_cuda(&gpu, &g, idx, B, o, 11, step, d_out, false, lg));
        CHECK(!bg_cuda_memcpy(got, d_out, B * img * sizeof(float), BG_COPY_D2H, gpu.stream, err, sizeof err), "%s", err);
        if (tc->failures) break;
        CHECK(!memcmp(lw, lg, (size_t)B * sizeof *lw), "%s: labels differ", what);
        long ndiff = 0;
        double worst = 0;
        for (size_t k = 0; k < B * img; k++)
            if (got[k] != want[k]) {
                ndiff++;
                double d = fabs((double)got[k] - want[k]);
                worst = d > worst ? d : worst;
            }
        /* One pixel level is 1/(255*std) ~ 0.0197 for CIFAR's std. */
        CHECK(ndiff == 0 || (worst <= 0.0200 && ndiff <= (long)(B * img / 1000)),
              "%s step %llu: %ld of %zu values differ, max %g", what, (unsigned long long)step, ndiff, B * img, worst);
        CHECK_OK(&gpu, bg_make_batch_cuda(&gpu, &g, idx, B, o, 11, step, d_out, true, NULL));
        CHECK(!bg_cuda_memcpy(got16, d_out, B * img * 2, BG_COPY_D2H, gpu.stream, err, sizeof err), "%s", err);
        long n16 = 0;
        for (size_t k = 0; k < B * img && !tc->failures; k++) n16 += got16[k] != bg_f32_to_f16(got[k]);
        CHECK(n16 == 0, "%s: %ld f16 values are not the f32 batch rounded", what, n16);
    }
    idx[5] = N;
    idx[B > 5 ? 5 : 0] = N;
    CHECK_ERR(&gpu, bg_make_batch_cuda(&gpu, &g, idx, B, o, 11, 0, d_out, false, NULL), BG_ERR_ARG, "image 300");
    bg_cuda_free(d_out);
    bg_gpu_dataset_free(&gpu, &g);
    CHECK(gpu.alloc[BG_CUDA].in_use == 0, "device memory left: %zu", gpu.alloc[BG_CUDA].in_use);
    free(want), free(got), free(got16);
    bg_dataset_free(&ds);
    bg_ctx_free(&gpu);
    bg_ctx_free(&cpu);
}

static void batch_parity(bg_t *tc, const bg_batch_opts *o, const char *what) { batch_parity_at(tc, o, what, 32, 32, 256); }
#endif

/* Images whose shared memory needs the opt-in only because of the kernels'
 * static per-block state: 48 KiB hold static + dynamic bytes together.
 * AutoAugment keeps one image (120x120x3: 43,200 dynamic bytes), the batch
 * kernel two (84x84x3: 42,336; 90x90x3: 48,600); 128x128x3 (49,152) is past
 * the limit on the dynamic bytes alone, 32x32 far below it. A launch without
 * the right opt-in fails on a GPU (and under the emulator). */
BG_GPU_TEST(gpu_augment_shared_memory_opt_in)
{
#ifdef BG_WITH_CUDA
    static const int ops[] = {BG_AA_EQUALIZE, BG_AA_ROTATE, BG_AA_SHEARX, -1};
    ops_parity_some(tc, 120, 120, 2, ops, 9);
    ops_parity_some(tc, 128, 128, 1, ops, 9);
    bg_batch_opts o = {.mean = {0.4914f, 0.4822f, 0.4465f}, .std = {0.2023f, 0.1994f, 0.2010f}};
    o.crop_pad = 4, o.flip = true, o.cutout = 16, o.autoaugment = BG_AUTOAUG_PIL;
    batch_parity_at(tc, &o, "HAET chain at 84x84", 84, 84, 4);
    batch_parity_at(tc, &o, "HAET chain at 90x90", 90, 90, 4);
#else
    SKIP("CPU-only build");
#endif
}

BG_GPU_TEST(gpu_augment_batch_matches_cpu)
{
#ifdef BG_WITH_CUDA
    const bg_batch_opts base = {.mean = {0.4914f, 0.4822f, 0.4465f}, .std = {0.2023f, 0.1994f, 0.2010f}};
    bg_batch_opts o = base;
    batch_parity(tc, &o, "plain normalise");
    o.crop_pad = 4, o.flip = true;
    batch_parity(tc, &o, "crop+flip");
    o.cutout = 16;
    batch_parity(tc, &o, "crop+flip+cutout");
    o.autoaugment = BG_AUTOAUG_PIL;
    batch_parity(tc, &o, "HAET chain (pil)");
    o.cutout_after_norm = true;
    batch_parity(tc, &o, "HAET chain, cutout after normalise");
    o.autoaugment = BG_AUTOAUG_TORCHVISION;
    batch_parity(tc, &o, "torchvision AutoAugment chain");
#else
    SKIP("CPU-only build");
#endif
}
