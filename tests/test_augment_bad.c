/* Bad input to the augmentation code: broken JPEGs, unknown op names, bad
 * magnitudes and signs, bad images. Each error names the file or field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../augment/transforms.h"

static uint8_t *fixture_jpeg(bg_t *tc, bg_ctx *ctx, char *path, size_t *n)
{
    snprintf(path, 512, "%s/augment/in_0.jpg", bg_test_fixtures_dir());
    uint8_t *d = NULL;
    if (bg_read_file(ctx, path, &d, n)) return NULL;
    return d;
}

BG_TEST(augment_bad_jpeg)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char path[512];
    size_t n;
    uint8_t *d = fixture_jpeg(tc, &ctx, path, &n);
    if (!d) SKIP("fixture JPEG missing: %s", bg_errmsg(&ctx));
    bg_jpeg j = {0};
    const uint8_t *px;
    int w, h;
    /* Truncated: a prefix of a valid file. */
    CHECK_ERR(&ctx, bg_jpeg_decode(&ctx, &j, d, n / 2, "cut.jpg", 0, 0, &px, &w, &h), BG_ERR_FORMAT, "cut.jpg");
    CHECK(strstr(bg_errmsg(&ctx), "truncated") || strstr(bg_errmsg(&ctx), "corrupt"), "message: %s", bg_errmsg(&ctx));
    /* Cut inside its headers (100 bytes): the header parse "succeeds" with
     * no size, which must read as truncated, never as a made-up size. */
    CHECK(n > 300, "fixture JPEG of %zu bytes", n);
    w = h = -7;
    CHECK_ERR(&ctx, bg_jpeg_decode(&ctx, &j, d, 100, "cut100.jpg", 0, 0, &px, &w, &h), BG_ERR_FORMAT,
              "cut100.jpg: corrupt or truncated JPEG: its 100 bytes end before the image size");
    int sw = -7, sh = -7;
    CHECK_ERR(&ctx, bg_jpeg_size(&ctx, &j, d, 100, "cut100.jpg", &sw, &sh), BG_ERR_FORMAT, "truncated");
    CHECK(sw == 0 && sh == 0, "size of a cut file: %dx%d (must be cleared, not left as it was)", sw, sh);
    /* Corrupt: the entropy-coded data overwritten. */
    uint8_t *bad = malloc(n);
    memcpy(bad, d, n);
    for (size_t i = n / 2; i < n - 2; i++) bad[i] = (uint8_t)(i * 7);
    bg_clear_error(&ctx);
    bg_status s = bg_jpeg_decode(&ctx, &j, bad, n, "garbled.jpg", 0, 0, &px, &w, &h);
    /* libjpeg may decode garbage scan data without complaint; if it fails it must say which file. */
    CHECK(s == BG_OK || (s == BG_ERR_FORMAT && strstr(bg_errmsg(&ctx), "garbled.jpg")), "garbled: %s", bg_errmsg(&ctx));
    /* Header destroyed. */
    memcpy(bad, d, n);
    memset(bad + 2, 0xEE, 40);
    CHECK_ERR(&ctx, bg_jpeg_decode(&ctx, &j, bad, n, "nohdr.jpg", 0, 0, &px, &w, &h), BG_ERR_FORMAT, "nohdr.jpg");
    /* Not a JPEG at all, and empty. */
    CHECK_ERR(&ctx, bg_jpeg_decode(&ctx, &j, (const uint8_t *)"\x89PNG\r\n\x1a\n", 8, "x.png", 0, 0, &px, &w, &h),
              BG_ERR_FORMAT, "x.png: not a JPEG image");
    CHECK_ERR(&ctx, bg_jpeg_decode(&ctx, &j, d, 0, "empty.jpg", 0, 0, &px, &w, &h), BG_ERR_FORMAT, "empty.jpg: empty");
    /* The handle still works after all that. */
    CHECK_OK(&ctx, bg_jpeg_decode(&ctx, &j, d, n, path, 0, 0, &px, &w, &h));
    CHECK(w == 32 && h == 32, "good decode after failures: %dx%d", w, h);
    /* DCT scaling: at least 16x16 requested from 32x32 gives 16x16. */
    CHECK_OK(&ctx, bg_jpeg_decode(&ctx, &j, d, n, path, 16, 16, &px, &w, &h));
    CHECK(w == 16 && h == 16, "scaled decode: %dx%d", w, h);
    free(bad);
    CHECK_ERR(&ctx, bg_read_file(&ctx, "/nonexistent/a.jpg", &bad, &n), BG_ERR_IO, "/nonexistent/a.jpg");
    CHECK(bad == NULL, "failed read must return NULL");
    free(d);
    bg_jpeg_free(&j);
    bg_ctx_free(&ctx);
}

BG_TEST(augment_bad_op_arguments)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    CHECK(bg_aa_op_parse("Shear") == -1 && bg_aa_op_parse("") == -1 && bg_aa_op_parse(NULL) == -1, "bad names parse");
    CHECK(bg_aa_op_parse("autocontrast") == BG_AA_AUTOCONTRAST, "names are case-insensitive");
    for (int op = 0; op < BG_AA_NOPS; op++) CHECK(bg_aa_op_parse(bg_aa_op_name(op)) == op, "op %d name round trip", op);
    CHECK(bg_aa_op_name(BG_AA_NOPS) == NULL && bg_aa_op_name(-1) == NULL, "out-of-range names");
    bg_aa_step st;
    CHECK_ERR(&ctx, bg_aa_step_make(&ctx, BG_AUTOAUG_PIL, BG_AA_ROTATE, 10, 1, 32, 32, &st), BG_ERR_ARG,
              "Rotate: magnitude 10 outside the bins 0..9");
    CHECK_ERR(&ctx, bg_aa_step_make(&ctx, BG_AUTOAUG_PIL, BG_AA_COLOR, -1, 1, 32, 32, &st), BG_ERR_ARG, "magnitude -1");
    CHECK_ERR(&ctx, bg_aa_step_make(&ctx, BG_AUTOAUG_PIL, BG_AA_COLOR, 3, 0, 32, 32, &st), BG_ERR_ARG, "Color: sign 0");
    CHECK_ERR(&ctx, bg_aa_step_make(&ctx, 5, BG_AA_COLOR, 3, 1, 32, 32, &st), BG_ERR_ARG, "variant 5");
    CHECK_ERR(&ctx, bg_aa_step_make(&ctx, BG_AUTOAUG_PIL, 14, 3, 1, 32, 32, &st), BG_ERR_ARG, "op 14");
    CHECK_ERR(&ctx, bg_aa_step_make(&ctx, BG_AUTOAUG_PIL, BG_AA_COLOR, 3, 1, 0, 32, &st), BG_ERR_ARG, "image size");
    uint8_t img[4 * 4 * 4] = {0}, out[4 * 4 * 4];
    CHECK_OK(&ctx, bg_aa_step_make(&ctx, BG_AUTOAUG_PIL, BG_AA_EQUALIZE, 0, 1, 4, 4, &st));
    CHECK_ERR(&ctx, bg_aa_apply(&ctx, &st, img, out, 4, 4, 4), BG_ERR_ARG, "Equalize: 4 channels");
    CHECK_ERR(&ctx, bg_aa_apply(&ctx, &st, img, img + 1, 4, 4, 3), BG_ERR_ARG, "overlap");
    st.op = 99;
    CHECK_ERR(&ctx, bg_aa_apply(&ctx, &st, img, out, 4, 4, 3), BG_ERR_ARG, "op 99");
    st.op = BG_AA_POSTERIZE, st.ival = 0;
    CHECK_ERR(&ctx, bg_aa_apply(&ctx, &st, img, out, 4, 4, 3), BG_ERR_ARG, "Posterize: 0 bits");
    /* Tiny images (no interior for SMOOTH, 1-px shears) work without reading outside. */
    for (int op = 0; op < BG_AA_NOPS; op++) {
        CHECK_OK(&ctx, bg_aa_step_make(&ctx, BG_AUTOAUG_PIL, op, 9, -1, 1, 2, &st));
        CHECK_OK(&ctx, bg_aa_apply(&ctx, &st, img, out, 2, 1, 3));
        CHECK_OK(&ctx, bg_aa_apply(&ctx, &st, img, out, 2, 1, 1));
    }
    uint8_t r[3 * 3 * 3];
    CHECK_ERR(&ctx, bg_resize_bilinear(&ctx, img, 0, 3, 3, 9, r, 3, 3), BG_ERR_ARG, "resize");
    CHECK_ERR(&ctx, bg_resize_bilinear(&ctx, img, 3, 3, 3, 5, r, 3, 3), BG_ERR_ARG, "stride 5");
    CHECK_ERR(&ctx, bg_resize_center_crop(&ctx, img, 4, 4, 3, 4, 8, r), BG_ERR_ARG, "crop 8 larger");
    bg_ctx_free(&ctx);
}
