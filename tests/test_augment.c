/* AutoAugment, resize and JPEG decoding against PIL reference outputs
 * (tests/fixtures/augment, written by tools/make_augment_fixtures.py), and
 * the draw layout of the augmentation chain. Integer ops must be bit-exact;
 * interpolating and blending ops may differ by 1 level (today they are
 * bit-exact too; the summary line says so). */
#include <omp.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../augment/transforms.h"

/* ---- helpers ---- */

/* 8-bit RGB PNG -> malloc'd pixels (NULL on failure). */
static uint8_t *read_png_rgb(const char *path, int *w, int *h)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return NULL;
    im.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
    if (!px || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&im);
        return NULL;
    }
    *w = (int)im.width, *h = (int)im.height;
    return px;
}

static bool integer_op(int op)
{
    return op == BG_AA_INVERT || op == BG_AA_POSTERIZE || op == BG_AA_SOLARIZE || op == BG_AA_AUTOCONTRAST ||
           op == BG_AA_EQUALIZE || op == BG_AA_TRANSLATEX || op == BG_AA_TRANSLATEY;
}

typedef struct {
    int max_diff, n_cases;
    long n_diff;
} op_stat;

/* Every case of cases.txt for one variant ("pil" or "tv"). */
static void run_fixtures(bg_t *tc, const char *variant_name, int variant)
{
    char path[512];
    snprintf(path, sizeof path, "%s/augment/cases.txt", bg_test_fixtures_dir());
    FILE *f = fopen(path, "r");
    if (!f) SKIP("%s missing (run tools/make_augment_fixtures.py)", path);
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    op_stat stats[BG_AA_NOPS];
    memset(stats, 0, sizeof stats);
    uint8_t *in[8] = {0}, *strip[8] = {0};
    int sw[8] = {0}, cases = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char var[16], opname[32];
        int k, m, sign, tile;
        if (line[0] == '#' || sscanf(line, "%15s %d %31s %d %d %d", var, &k, opname, &m, &sign, &tile) != 6) continue;
        if (strcmp(var, variant_name) || k < 0 || k >= 8) continue;
        int op = bg_aa_op_parse(opname);
        CHECK(op >= 0, "unknown op '%s' in %s", opname, path);
        if (op < 0) continue;
        int w, h;
        if (!in[k]) {
            snprintf(path, sizeof path, "%s/augment/in_%d.png", bg_test_fixtures_dir(), k);
            in[k] = read_png_rgb(path, &w, &h);
            CHECK(in[k] && w == 32 && h == 32, "cannot read %s as 32x32 RGB", path);
            snprintf(path, sizeof path, "%s/augment/%s_%d.png", bg_test_fixtures_dir(), variant_name, k);
            strip[k] = read_png_rgb(path, &sw[k], &h);
            CHECK(strip[k] && h == 32, "cannot read %s", path);
            if (!in[k] || !strip[k]) break;
        }
        CHECK(tile >= 0 && (tile + 1) * 32 <= sw[k], "tile %d outside the strip", tile);
        if (tc->failures) break;
        bg_aa_step st;
        uint8_t out[32 * 32 * 3];
        CHECK_OK(&ctx, bg_aa_step_make(&ctx, variant, op, m, sign, 32, 32, &st));
        CHECK_OK(&ctx, bg_aa_apply(&ctx, &st, in[k], out, 32, 32, 3));
        int worst = 0;
        long ndiff = 0;
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 96; x++) {
                int want = strip[k][(size_t)y * sw[k] * 3 + (size_t)tile * 96 + x];
                int d = abs((int)out[y * 96 + x] - want);
                worst = d > worst ? d : worst;
                ndiff += d != 0;
            }
        op_stat *s = &stats[op];
        s->max_diff = worst > s->max_diff ? worst : s->max_diff;
        s->n_diff += ndiff;
        s->n_cases++;
        cases++;
        int limit = integer_op(op) ? 0 : 1;
        CHECK(worst <= limit, "%s %s m=%d sign=%+d image %d: max diff %d (limit %d), %ld values differ", variant_name,
              opname, m, sign, k, worst, limit, ndiff);
    }
    fclose(f);
    for (int k = 0; k < 8; k++) free(in[k]), free(strip[k]);
    CHECK(cases >= 40, "only %d %s cases found", cases, variant_name);
    int exact = 1;
    for (int op = 0; op < BG_AA_NOPS; op++) {
        CHECK(stats[op].n_cases > 0, "no %s case for %s", variant_name, bg_aa_op_name(op));
        if (stats[op].max_diff) {
            exact = 0;
            printf("    %s %-12s max diff %d, %ld values differ over %d cases\n", variant_name, bg_aa_op_name(op),
                   stats[op].max_diff, stats[op].n_diff, stats[op].n_cases);
        }
    }
    if (exact) printf("    %s: %d cases, all 14 ops bit-exact with the %s reference\n", variant_name, cases,
                       variant == BG_AUTOAUG_PIL ? "PIL (DeepVoltaire)" : "torchvision 0.14");
    bg_ctx_free(&ctx);
}

BG_TEST(augment_ops_match_pil_deepvoltaire) { run_fixtures(tc, "pil", BG_AUTOAUG_PIL); }
BG_TEST(augment_ops_match_torchvision) { run_fixtures(tc, "tv", BG_AUTOAUG_TORCHVISION); }

/* TurboJPEG decodes the fixture JPEGs exactly as PIL does. */
BG_TEST(augment_jpeg_decode_matches_pil)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_jpeg j = {0};
    for (int k = 0; k < 3; k++) {
        char jp[512], pp[512];
        snprintf(jp, sizeof jp, "%s/augment/in_%d.jpg", bg_test_fixtures_dir(), k);
        snprintf(pp, sizeof pp, "%s/augment/in_%d.png", bg_test_fixtures_dir(), k);
        uint8_t *data;
        size_t n;
        if (bg_read_file(&ctx, jp, &data, &n)) SKIP("%s", bg_errmsg(&ctx));
        int w, h, pw, ph;
        const uint8_t *px;
        uint8_t *ref = read_png_rgb(pp, &pw, &ph);
        CHECK_OK(&ctx, bg_jpeg_decode(&ctx, &j, data, n, jp, 0, 0, &px, &w, &h));
        if (ref && !tc->failures) {
            CHECK(w == pw && h == ph, "%s: %dx%d vs %dx%d", jp, w, h, pw, ph);
            CHECK(w == pw && h == ph && !memcmp(px, ref, (size_t)w * h * 3), "%s: pixels differ from PIL's decode", jp);
        }
        free(ref);
        free(data);
    }
    bg_jpeg_free(&j);
    bg_ctx_free(&ctx);
}

/* Crop + bilinear resize against PIL (down- and upscaling, non-square). */
BG_TEST(augment_resize_matches_pil)
{
    char path[512];
    snprintf(path, sizeof path, "%s/augment/resize.txt", bg_test_fixtures_dir());
    FILE *f = fopen(path, "r");
    if (!f) SKIP("%s missing", path);
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int bw, bh;
    snprintf(path, sizeof path, "%s/augment/resize_in.png", bg_test_fixtures_dir());
    uint8_t *big = read_png_rgb(path, &bw, &bh);
    CHECK(big != NULL, "cannot read %s", path);
    char line[256];
    int cases = 0;
    while (big && fgets(line, sizeof line, f)) {
        int i, x, y, w, h, ow, oh, rw, rh;
        if (line[0] == '#' || sscanf(line, "%d %d %d %d %d %d %d", &i, &x, &y, &w, &h, &ow, &oh) != 7) continue;
        snprintf(path, sizeof path, "%s/augment/resize_%d.png", bg_test_fixtures_dir(), i);
        uint8_t *ref = read_png_rgb(path, &rw, &rh);
        CHECK(ref && rw == ow && rh == oh, "cannot read %s as %dx%d", path, ow, oh);
        uint8_t *out = malloc((size_t)ow * oh * 3);
        CHECK_OK(&ctx, bg_resize_bilinear(&ctx, big + ((size_t)y * bw + x) * 3, w, h, 3, (size_t)bw * 3, out, ow, oh));
        int worst = 0;
        for (int v = 0; ref && v < ow * oh * 3; v++) {
            int d = abs((int)out[v] - ref[v]);
            worst = d > worst ? d : worst;
        }
        CHECK(worst == 0, "resize case %d (%dx%d crop -> %dx%d): max diff %d", i, w, h, ow, oh, worst);
        /* The mirrored resize is the resize flipped. */
        uint8_t *mir = malloc((size_t)ow * oh * 3);
        CHECK_OK(&ctx, bg_resize_bilinear_mirror(&ctx, big + ((size_t)y * bw + x) * 3, w, h, 3, (size_t)bw * 3, mir, ow, oh));
        bg_hflip_u8(out, oh, ow, 3);
        CHECK(!memcmp(out, mir, (size_t)ow * oh * 3), "resize case %d: mirrored resize is not the flipped resize", i);
        free(mir);
        free(out), free(ref);
        cases++;
    }
    fclose(f);
    free(big);
    CHECK(cases >= 3, "only %d resize cases", cases);
    bg_ctx_free(&ctx);
}

/* The policy draws: deterministic, sub-policies uniform, coins at their p. */
BG_TEST(augment_policy_draws)
{
    bg_aug_cfg cfg = {4, 1, BG_AUTOAUG_PIL, 16};
    int count[25] = {0}, applied1[25] = {0};
    const int N = 100000;
    for (int i = 0; i < N; i++) {
        bg_aug_plan a = bg_aug_plan_make(&cfg, 42, (uint64_t)i / 512, (uint32_t)(i % 512), 32, 32);
        bg_aug_plan b = bg_aug_plan_make(&cfg, 42, (uint64_t)i / 512, (uint32_t)(i % 512), 32, 32);
        if (memcmp(&a, &b, sizeof a)) {
            CHECK(0, "plan %d not deterministic", i);
            return;
        }
        CHECK(a.dx >= -4 && a.dx <= 4 && a.dy >= -4 && a.dy <= 4, "crop offset %d,%d", a.dx, a.dy);
        CHECK(a.cut_y >= 0 && a.cut_y < 32 && a.cut_x >= 0 && a.cut_x < 32, "hole centre %d,%d", a.cut_y, a.cut_x);
        /* Recover the sub-policy from the AUTO block to count it. */
        bg_u32x4 r = bg_aug_block(42, (uint64_t)i / 512, (uint32_t)(i % 512), BG_TAG_AUTO);
        int sp = (int)bg_u32_below(r.v[0], 25);
        count[sp]++;
        applied1[sp] += a.op[0].op != BG_AA_IDENTITY;
        if (a.op[0].op != BG_AA_IDENTITY) CHECK(a.op[0].op == bg_aa_cifar10(sp).op1, "op1 of sub-policy %d", sp);
    }
    for (int s = 0; s < 25; s++) {
        CHECK(fabs(count[s] - N / 25.0) < 5 * sqrt(N / 25.0), "sub-policy %d drawn %d times of %d", s, count[s], N);
        double p = bg_aa_cifar10(s).p1, got = (double)applied1[s] / count[s];
        CHECK(fabs(got - p) < 5 * sqrt(p * (1 - p) / count[s]) + 1e-9, "sub-policy %d op1 applied at %.3f, p = %.1f", s,
              got, p);
    }
}

/* Magnitude tables of the PIL variant at 32 px (seed-spec 4.2). */
BG_TEST(augment_magnitudes_deepvoltaire)
{
    const int shift[10] = {0, 2, 3, 5, 6, 8, 10, 11, 13, 15}; /* round-half-up of linspace(0,150/331)*32 */
    const int tv_shift[10] = {0, 1, 3, 4, 6, 8, 9, 11, 12, 14};
    for (int m = 0; m < 10; m++) {
        bg_aa_step s = bg_aa_resolve(BG_AUTOAUG_PIL, BG_AA_TRANSLATEX, m, 1, 32, 32);
        CHECK(s.ival == shift[m], "PIL TranslateX m=%d: shift %d, want %d", m, s.ival, shift[m]);
        s = bg_aa_resolve(BG_AUTOAUG_PIL, BG_AA_TRANSLATEY, m, -1, 32, 32);
        CHECK(s.ival == -shift[m], "PIL TranslateY m=%d sign -1: shift %d", m, s.ival);
        s = bg_aa_resolve(BG_AUTOAUG_TORCHVISION, BG_AA_TRANSLATEX, m, 1, 32, 32);
        CHECK(s.ival == -tv_shift[m], "torchvision TranslateX m=%d: shift %d, want %d", m, s.ival, -tv_shift[m]);
        s = bg_aa_resolve(BG_AUTOAUG_PIL, BG_AA_ROTATE, m, -1, 32, 32);
        CHECK_NEAR(s.fval, 30.0 * m / 9, 1e-12, "PIL rotate ignores the sign");
        s = bg_aa_resolve(BG_AUTOAUG_PIL, BG_AA_SOLARIZE, m, 1, 32, 32);
        CHECK_NEAR(s.fval, 256.0 - 256.0 * m / 9, 1e-12, "solarize threshold");
    }
    bg_aa_step p = bg_aa_resolve(BG_AUTOAUG_PIL, BG_AA_POSTERIZE, 7, 1, 32, 32);
    CHECK(p.ival == 5, "posterize m=7 keeps %d bits, want 5", p.ival);
    bg_aa_step c = bg_aa_resolve(BG_AUTOAUG_PIL, BG_AA_CONTRAST, 6, -1, 32, 32);
    CHECK_NEAR(c.fval, 0.4, 1e-12, "contrast m=6 sign -1");
}

/* Cutout box: 16x16 inside, clipped to 8x8 at a corner; one hole per image. */
BG_TEST(augment_cutout_box)
{
    uint8_t img[32 * 32 * 3];
    bg_aug_plan pl = {0};
    const int cy[3] = {16, 0, 31}, cx[3] = {16, 0, 31}, want[3] = {256, 64, 81}; /* [23,39) clips to [23,32) at the far corner */
    for (int t = 0; t < 3; t++) {
        memset(img, 200, sizeof img);
        pl.cut_y = cy[t], pl.cut_x = cx[t];
        bg_cutout_u8(&pl, 16, img, 32, 32, 3);
        int zeros = 0, agree = 1;
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                zeros += img[(y * 32 + x) * 3] == 0;
                agree &= (img[(y * 32 + x) * 3] == 0) == bg_aug_in_hole(&pl, 16, 32, 32, x, y);
            }
        CHECK(zeros == want[t], "hole at (%d,%d): %d pixels, want %d", cy[t], cx[t], zeros, want[t]);
        CHECK(agree, "bg_cutout_u8 and bg_aug_in_hole disagree at (%d,%d)", cy[t], cx[t]);
    }
}

static void fill_dataset(bg_dataset *ds, int n, int h, int w)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n, ds->h = h, ds->w = w, ds->c = 3, ds->n_classes = 10;
    ds->pixels = malloc((size_t)n * h * w * 3);
    ds->labels = malloc((size_t)n * sizeof(int32_t));
    snprintf(ds->source, sizeof ds->source, "synthetic");
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)n * h * w * 3; i++) {
        s = s * 1664525u + 1013904223u;
        ds->pixels[i] = (uint8_t)((s >> 24) / 2 + (i % 97)); /* smooth-ish with noise */
    }
    for (int i = 0; i < n; i++) ds->labels[i] = i % 10;
}

/* The chain path reproduces the plain crop/flip draws: a 1-px Cutout is an
 * empty hole, so the two paths must agree bit for bit. */
BG_TEST(augment_batch_chain_keeps_crop_flip)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_dataset ds;
    fill_dataset(&ds, 64, 32, 32);
    int64_t idx[64];
    for (int i = 0; i < 64; i++) idx[i] = 63 - i;
    float *a = malloc(64 * 3072 * sizeof(float)), *b = malloc(64 * 3072 * sizeof(float));
    bg_batch_opts plain = {.mean = {0.4914f, 0.4822f, 0.4465f}, .std = {0.2023f, 0.1994f, 0.2010f}, .crop_pad = 4, .flip = true};
    bg_batch_opts chain = plain;
    chain.cutout = 1;
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, 64, &plain, 9, 17, a, NULL));
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, 64, &chain, 9, 17, b, NULL));
    CHECK(!memcmp(a, b, 64 * 3072 * sizeof(float)), "chain path changes the crop/flip result");
    free(a), free(b);
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
}

/* The HAET chain: thread-count independent; the hole is -mean/std before
 * normalising and 0 after; the chain equals the per-image reference. */
BG_TEST(augment_batch_haet_chain)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_dataset ds;
    fill_dataset(&ds, 96, 32, 32);
    int64_t idx[96];
    for (int i = 0; i < 96; i++) idx[i] = i;
    const size_t img = 3072;
    float *a = malloc(96 * img * sizeof(float)), *b = malloc(96 * img * sizeof(float));
    bg_batch_opts o = {.mean = {0.4914f, 0.4822f, 0.4465f}, .std = {0.2023f, 0.1994f, 0.2010f}, .crop_pad = 4,
                       .flip = true, .autoaugment = BG_AUTOAUG_PIL, .cutout = 16};
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, 96, &o, 5, 3, a, NULL));
    omp_set_num_threads(nt > 1 ? nt : 2);
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, 96, &o, 5, 3, b, NULL));
    omp_set_num_threads(nt);
    CHECK(!memcmp(a, b, 96 * img * sizeof(float)), "batch depends on the thread count");
    const bg_aug_cfg cfg = {4, 1, BG_AUTOAUG_PIL, 16};
    uint8_t u[3072], t[3072];
    int ops_seen = 0;
    for (int p = 0; p < 96 && !tc->failures; p++) {
        bg_aug_plan pl = bg_aug_plan_make(&cfg, 5, 3, (uint32_t)p, 32, 32);
        ops_seen += (pl.op[0].op != BG_AA_IDENTITY) + (pl.op[1].op != BG_AA_IDENTITY);
        bg_aug_apply_plan_u8(&pl, 16, bg_dataset_image(&ds, p), 32, 32, 3, u, t);
        float ref[3072];
        bg_normalize_u8(u, 1024, 3, o.mean, o.std, ref);
        CHECK(!memcmp(ref, a + p * img, sizeof ref), "image %d differs from the per-image reference", p);
        int y = pl.cut_y, x = pl.cut_x;
        CHECK_NEAR(a[p * img + (y * 32 + x) * 3], -0.4914 / 0.2023, 1e-5, "hole centre before normalising");
    }
    CHECK(ops_seen > 40, "only %d AutoAugment ops drawn over 96 images", ops_seen);
    o.cutout_after_norm = true;
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, 96, &o, 5, 3, b, NULL));
    for (int p = 0; p < 96; p++) {
        bg_aug_plan pl = bg_aug_plan_make(&cfg, 5, 3, (uint32_t)p, 32, 32);
        CHECK(b[p * img + (pl.cut_y * 32 + pl.cut_x) * 3 + 1] == 0.0f, "hole after normalising must be 0");
    }
    o.autoaugment = 7;
    CHECK_ERR(&ctx, bg_make_batch(&ctx, &ds, idx, 96, &o, 5, 3, b, NULL), BG_ERR_ARG, "autoaugment 7");
    free(a), free(b);
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
}

/* RandomResizedCrop boxes stay inside, respect scale/ratio, and fall back to
 * the centre crop when no attempt fits. */
BG_TEST(augment_rrc_and_center_crop)
{
    bg_rrc_opts o = {0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0};
    int fallback = 0;
    for (uint32_t p = 0; p < 2000; p++) {
        bg_box b = bg_rrc_box(224, 160, &o, 3, 1, p);
        CHECK(b.x >= 0 && b.y >= 0 && b.w > 0 && b.h > 0 && b.x + b.w <= 224 && b.y + b.h <= 160, "box %d,%d %dx%d", b.x,
              b.y, b.w, b.h);
        double area = (double)b.w * b.h / (224.0 * 160.0), r = (double)b.w / b.h;
        if (b.w == 213 && b.h == 160) fallback++;
        else CHECK(area > 0.07 && area < 1.01 && r > 0.72 && r < 1.39, "box %dx%d: area %.3f ratio %.3f", b.w, b.h, area, r);
    }
    CHECK(fallback < 100, "%d fallbacks of 2000", fallback);
    /* A 1000x10 strip never fits the ratio range: centre crop of ratio 4/3. */
    bg_box f = bg_rrc_box(1000, 10, &o, 3, 1, 0);
    CHECK(f.w == 13 && f.h == 10 && f.x == 493 && f.y == 0, "fallback box %d,%d %dx%d", f.x, f.y, f.w, f.h);
    bg_box c = bg_center_crop_box(256, 293, 224, 224);
    CHECK(c.x == 16 && c.y == 34, "centre crop %d,%d (want 16,34: round(34.5) is 34)", c.x, c.y);
    int ow, oh;
    bg_resize_shorter_dims(500, 375, 256, &ow, &oh);
    CHECK(ow == 341 && oh == 256, "Resize(256) of 500x375: %dx%d", ow, oh);
}

/* Flip is an involution and mirrors columns. */
BG_TEST(augment_hflip)
{
    uint8_t a[2 * 3 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}, b[18];
    memcpy(b, a, sizeof a);
    bg_hflip_u8(b, 2, 3, 3);
    CHECK(b[0] == 7 && b[6] == 1 && b[3] == 4 && b[9] == 16, "flip moved the wrong pixels");
    bg_hflip_u8(b, 2, 3, 3);
    CHECK(!memcmp(a, b, sizeof a), "flip twice is not the identity");
}

/* The JPEG training transform: without DCT scaling it is decode -> box ->
 * PIL resize -> flip by the BTCH draw; with a small output it decodes scaled. */
BG_TEST(augment_jpeg_rrc)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char path[512];
    snprintf(path, sizeof path, "%s/augment/in_1.jpg", bg_test_fixtures_dir());
    uint8_t *data;
    size_t n;
    if (bg_read_file(&ctx, path, &data, &n)) SKIP("%s", bg_errmsg(&ctx));
    bg_jpeg j = {0}, k = {0};
    const bg_rrc_opts o = {0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0};
    uint8_t got[32 * 32 * 3], want[32 * 32 * 3], small[8 * 8 * 3];
    int flips = 0;
    for (uint32_t pos = 0; pos < 16 && !tc->failures; pos++) {
        CHECK_OK(&ctx, bg_jpeg_rrc(&ctx, &j, data, n, path, 32, &o, true, 5, 2, pos, got));
        const uint8_t *px;
        int w, h;
        CHECK_OK(&ctx, bg_jpeg_decode(&ctx, &k, data, n, path, 0, 0, &px, &w, &h));
        bg_box b = bg_rrc_box(w, h, &o, 5, 2, pos);
        CHECK_OK(&ctx, bg_resize_bilinear(&ctx, px + ((size_t)b.y * w + b.x) * 3, b.w, b.h, 3, (size_t)w * 3, want, 32, 32));
        if (bg_aug_block(5, 2, pos, BG_TAG_BATCH).v[2] & 1u) bg_hflip_u8(want, 32, 32, 3), flips++;
        CHECK(!memcmp(got, want, sizeof got), "position %u: bg_jpeg_rrc differs from decode + box + resize + flip", pos);
        CHECK_OK(&ctx, bg_jpeg_rrc(&ctx, &j, data, n, path, 8, &o, false, 5, 2, pos, small));
    }
    CHECK(flips > 0 && flips < 16, "%d of 16 flipped", flips);
    bg_jpeg_free(&j), bg_jpeg_free(&k);
    free(data);
    bg_ctx_free(&ctx);
}
