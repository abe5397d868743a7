/* Packed data sets (augment/pack.c): round trip, and every way a pack can
 * be broken gives an error naming the file and what is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "../augment/pack.h"

static void make_ds(bg_dataset *ds, int n)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n, ds->h = 5, ds->w = 7, ds->c = 3, ds->n_classes = 3;
    ds->pixels = malloc((size_t)n * 105 + 1);
    ds->labels = malloc((size_t)n * 4 + 4);
    for (size_t i = 0; i < (size_t)n * 105; i++) ds->pixels[i] = (uint8_t)(i * 31 + 7);
    for (int i = 0; i < n; i++) ds->labels[i] = (i * 2) % 3;
    ds->class_names = calloc(3, sizeof(char *));
    ds->class_names[0] = strdup("airplane");
    ds->class_names[1] = strdup("");
    ds->class_names[2] = strdup("truck");
    snprintf(ds->source, sizeof ds->source, "memory");
}

static bool tmp_path(bg_t *tc, char *p)
{
    strcpy(p, "/tmp/bg_pack_XXXXXX");
    int fd = mkstemp(p);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    return fd >= 0;
}

static long file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Overwrite one byte at offset (XOR with x). */
static void poke(const char *p, long off, uint8_t x)
{
    FILE *f = fopen(p, "r+b");
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc((c ^ x) & 0xFF, f);
    fclose(f);
}

BG_TEST(pack_round_trip)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char p[64];
    if (!tmp_path(tc, p)) return;
    bg_dataset a, b;
    make_ds(&a, 41);
    CHECK_OK(&ctx, bg_pack_write(&ctx, &a, p));
    CHECK(bg_pack_is_pack(p), "written file lacks the magic");
    CHECK_OK(&ctx, bg_pack_read(&ctx, p, &b));
    CHECK(b.n == 41 && b.h == 5 && b.w == 7 && b.c == 3 && b.n_classes == 3, "shape %lld %dx%dx%d %d classes",
          (long long)b.n, b.h, b.w, b.c, b.n_classes);
    if (!tc->failures) {
        CHECK(!memcmp(a.pixels, b.pixels, 41 * 105), "pixels differ");
        CHECK(!memcmp(a.labels, b.labels, 41 * 4), "labels differ");
        CHECK(!strcmp(b.class_names[0], "airplane") && !strcmp(b.class_names[1], "") && !strcmp(b.class_names[2], "truck"),
              "class names differ");
        CHECK(!strcmp(b.source, p), "source '%s'", b.source);
    }
    bg_dataset_free(&b);
    /* An empty data set is a valid pack too. */
    a.n = 0;
    CHECK_OK(&ctx, bg_pack_write(&ctx, &a, p));
    CHECK_OK(&ctx, bg_pack_read(&ctx, p, &b));
    CHECK(b.n == 0 && b.n_classes == 3, "empty pack: %lld images", (long long)b.n);
    bg_dataset_free(&b);
    bg_dataset_free(&a);
    remove(p);
    bg_ctx_free(&ctx);
}

BG_TEST(pack_bad_files)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char p[64];
    if (!tmp_path(tc, p)) return;
    bg_dataset a, b;
    make_ds(&a, 20);
    CHECK_OK(&ctx, bg_pack_write(&ctx, &a, p));
    long size = file_size(p);
    const long pixels_at = size - 20 * 105, labels_at = pixels_at - 20 * 4;

    poke(p, pixels_at + 50, 0x10); /* one pixel bit */
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "data checksum mismatch");
    CHECK(strstr(bg_errmsg(&ctx), p) != NULL, "message must name the file: %s", bg_errmsg(&ctx));
    CHECK(b.pixels == NULL && b.n == 0, "dataset not left empty on failure");
    poke(p, pixels_at + 50, 0x10);
    CHECK_OK(&ctx, bg_pack_read(&ctx, p, &b));
    bg_dataset_free(&b);

    poke(p, labels_at + 4, 0x01); /* a label */
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "checksum");
    poke(p, labels_at + 4, 0x01);

    poke(p, 70, 0x20); /* a class name */
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "header checksum mismatch");
    poke(p, 70, 0x20);

    poke(p, 0, 0xFF); /* magic */
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "not a budgie pack");
    CHECK(!bg_pack_is_pack(p), "bad magic still detected as a pack");
    poke(p, 0, 0xFF);

    poke(p, 8, 0x02); /* version 3 */
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "pack version 3");
    poke(p, 8, 0x02);

    poke(p, 23, 0x40); /* count's top byte: absurd image count */
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, p);
    poke(p, 23, 0x40);

    poke(p, 32, 0x09); /* channels 3 -> 10 */
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "corrupt pack header");
    poke(p, 32, 0x09);

    CHECK(truncate(p, size - 1) == 0, "truncate");
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "truncated");
    CHECK(truncate(p, 30) == 0, "truncate");
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "shorter than a pack header");
    CHECK(truncate(p, 0) == 0, "truncate");
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, p);

    CHECK_OK(&ctx, bg_pack_write(&ctx, &a, p));
    FILE *f = fopen(p, "ab");
    if (f) fputc(0, f), fclose(f);
    CHECK_ERR(&ctx, bg_pack_read(&ctx, p, &b), BG_ERR_FORMAT, "trailing bytes");

    CHECK_ERR(&ctx, bg_pack_read(&ctx, "/nonexistent/x.bgpk", &b), BG_ERR_IO, "/nonexistent/x.bgpk");
    CHECK_ERR(&ctx, bg_pack_write(&ctx, &a, "/nonexistent/dir/x.bgpk"), BG_ERR_IO, "/nonexistent/dir/x.bgpk.tmp");
    a.labels[3] = 7;
    CHECK_ERR(&ctx, bg_pack_write(&ctx, &a, p), BG_ERR_ARG, "label 7");
    bg_dataset_free(&a);
    remove(p);
    bg_ctx_free(&ctx);
}
