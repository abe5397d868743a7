/* Data pipeline tests: readers (JPEG folders, CIFAR binary, idx), samplers,
 * batch assembly and PNG writing. Inputs are written into a fresh mkdtemp
 * folder per test (self-contained); the one test on real data reads the
 * tools/fetch_data.sh cache and skips, saying so, when it is absent. */
#include <ftw.h>
#include <omp.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>
#include "harness.h"
#include "../augment/dataset.h"

/* ---- helpers ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool make_tmp(bg_t *tc, char *dir)
{
    strcpy(dir, "/tmp/bg_data_XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return false;
    }
    return true;
}

/* dir + "/" + rel, in a rotating set of static-free buffers owned by the caller. */
static const char *at(char *buf, const char *dir, const char *rel)
{
    snprintf(buf, 512, "%s/%s", dir, rel);
    return buf;
}

static void mkdir_at(const char *dir, const char *rel)
{
    char p[512];
    mkdir(at(p, dir, rel), 0755);
}

static bool write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Encode w x h RGB at quality 100 without chroma subsampling, so solid colours
 * come back within a couple of levels. *out is freed with tjFree. */
static unsigned long encode_jpeg(const uint8_t *rgb, int w, int h, unsigned char **out)
{
    tjhandle tj = tjInitCompress();
    unsigned long size = 0;
    *out = NULL;
    if (tj && tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, out, &size, TJSAMP_444, 100, 0) != 0) size = 0;
    if (tj) tjDestroy(tj);
    return size;
}

/* A solid-colour JPEG at dir/rel. */
static bool write_jpeg(const char *dir, const char *rel, int w, int h, const uint8_t rgb[3])
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) memcpy(px + 3 * i, rgb, 3);
    unsigned char *jpg;
    unsigned long n = encode_jpeg(px, w, h, &jpg);
    free(px);
    char p[512];
    bool ok = n > 0 && write_bytes(at(p, dir, rel), jpg, n);
    tjFree(jpg);
    return ok;
}

static bool near_rgb(const uint8_t *px, const uint8_t rgb[3], int tol)
{
    for (int k = 0; k < 3; k++)
        if (abs((int)px[k] - (int)rgb[k]) > tol) return false;
    return true;
}

/* ---- image folders ---- */

BG_TEST(data_folder_synthetic)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64];
    if (!make_tmp(tc, dir)) return;
    /* Classes created out of order; file names whose byte order ("10" < "2")
     * differs from numeric order; a hidden file that must be ignored. */
    const uint8_t cb10[3] = {200, 30, 30}, cb2[3] = {30, 200, 30}, ca[3] = {30, 30, 200};
    const uint8_t cc[3][3] = {{250, 250, 10}, {10, 250, 250}, {128, 128, 128}};
    mkdir_at(dir, "b_cls");
    mkdir_at(dir, "a_cls");
    mkdir_at(dir, "c_cls");
    bool ok = write_jpeg(dir, "b_cls/2.jpg", 8, 6, cb2) && write_jpeg(dir, "b_cls/10.jpg", 8, 6, cb10) &&
              write_jpeg(dir, "a_cls/x.jpg", 8, 6, ca) && write_jpeg(dir, "c_cls/1.jpg", 8, 6, cc[0]) &&
              write_jpeg(dir, "c_cls/3.jpg", 8, 6, cc[1]) && write_jpeg(dir, "c_cls/5.jpg", 8, 6, cc[2]);
    char p[512];
    ok = ok && write_bytes(at(p, dir, "a_cls/.DS_Store"), "junk", 4);
    CHECK(ok, "writing the test images in %s", dir);

    bg_dataset ds;
    CHECK_OK(&ctx, bg_read_image_folder(&ctx, dir, NULL, &ds));
    CHECK(ds.n == 6 && ds.h == 6 && ds.w == 8 && ds.c == 3, "shape n=%lld h=%d w=%d c=%d",
          (long long)ds.n, ds.h, ds.w, ds.c);
    CHECK(ds.n_classes == 3, "n_classes %d", ds.n_classes);
    if (ds.n == 6 && ds.n_classes == 3) {
        CHECK(!strcmp(ds.class_names[0], "a_cls") && !strcmp(ds.class_names[1], "b_cls") &&
              !strcmp(ds.class_names[2], "c_cls"), "class names %s %s %s", ds.class_names[0],
              ds.class_names[1], ds.class_names[2]);
        const int32_t want[6] = {0, 1, 1, 2, 2, 2};
        for (int i = 0; i < 6; i++) CHECK(ds.labels[i] == want[i], "label %d: %d", i, ds.labels[i]);
        const uint8_t *cols[6] = {ca, cb10, cb2, cc[0], cc[1], cc[2]};
        for (int i = 0; i < 6; i++) {
            const uint8_t *img = bg_dataset_image(&ds, i);
            /* A corner and the far corner: the whole image is one colour. */
            CHECK(near_rgb(img, cols[i], 3) && near_rgb(img + (6 * 8 - 1) * 3, cols[i], 3),
                  "image %d is %d,%d,%d, want %d,%d,%d", i, img[0], img[1], img[2], cols[i][0],
                  cols[i][1], cols[i][2]);
        }
        CHECK(ds.n_skipped == 0, "skipped %lld", (long long)ds.n_skipped);
    }
    bg_dataset_free(&ds);

    bg_folder_opts o = {.max_per_class = 2};
    CHECK_OK(&ctx, bg_read_image_folder(&ctx, dir, &o, &ds));
    CHECK(ds.n == 5, "max_per_class=2: n=%lld, want 5", (long long)ds.n);
    if (ds.n == 5) {
        CHECK(ds.labels[4] == 2 && near_rgb(bg_dataset_image(&ds, 4), cc[1], 3),
              "max_per_class keeps the first files by name");
    }
    bg_dataset_free(&ds);
    rm_rf(dir);
    bg_ctx_free(&ctx);
}

BG_TEST(data_folder_cifar_cache)
{
    const char *root = ".cache/cifar10/train";
    if (access(".cache/cifar10/.done", F_OK) != 0)
        SKIP("no .cache/cifar10 (run tools/fetch_data.sh to unpack the bundled CIFAR-10 JPEGs)");
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_dataset ds;
    bg_folder_opts o = {.max_per_class = 3};
    CHECK_OK(&ctx, bg_read_image_folder(&ctx, root, &o, &ds));
    CHECK(ds.n == 30 && ds.h == 32 && ds.w == 32 && ds.c == 3 && ds.n_classes == 10,
          "shape n=%lld %dx%dx%d classes=%d", (long long)ds.n, ds.h, ds.w, ds.c, ds.n_classes);
    static const char *names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                    "dog", "frog", "horse", "ship", "truck"};
    if (ds.n == 30 && ds.n_classes == 10) {
        for (int k = 0; k < 10; k++)
            CHECK(!strcmp(ds.class_names[k], names[k]), "class %d is %s, want %s", k,
                  ds.class_names[k], names[k]);
        for (int i = 0; i < 30; i++) CHECK(ds.labels[i] == i / 3, "label %d: %d", i, ds.labels[i]);
        /* train/airplane/0000.jpg as decoded by libjpeg-turbo 2.1: a light sky
         * (pixel (0,0) ~ 200,202,197) with a dark aeroplane in the middle
         * (pixel (16,16) ~ 8,7,12), mean ~148 per channel. A few levels of
         * slack allow other IDCT implementations. */
        const uint8_t *a = bg_dataset_image(&ds, 0);
        const uint8_t c00[3] = {200, 202, 197}, c16[3] = {8, 7, 12};
        CHECK(near_rgb(a, c00, 4), "airplane/0000 (0,0) = %d,%d,%d", a[0], a[1], a[2]);
        CHECK(near_rgb(a + (16 * 32 + 16) * 3, c16, 4), "airplane/0000 (16,16) = %d,%d,%d",
              a[(16 * 32 + 16) * 3], a[(16 * 32 + 16) * 3 + 1], a[(16 * 32 + 16) * 3 + 2]);
        double mean = 0;
        for (int i = 0; i < 32 * 32 * 3; i++) mean += a[i];
        CHECK_NEAR(mean / (32 * 32 * 3), 148.57, 0.005, "airplane/0000 mean");
    }
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
}

BG_TEST(data_folder_bad_inputs)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64], p[512], root[512];
    if (!make_tmp(tc, dir)) return;
    const uint8_t grey[3] = {90, 90, 90};
    bg_dataset ds;
    bg_folder_opts skip = {.skip_bad = true};

    /* missing root */
    CHECK_ERR(&ctx, bg_read_image_folder(&ctx, at(p, dir, "nope"), NULL, &ds), BG_ERR_IO, p);

    /* empty class folder */
    mkdir_at(dir, "empty");
    mkdir_at(dir, "empty/a");
    mkdir_at(dir, "empty/b");
    write_jpeg(dir, "empty/a/0.jpg", 8, 8, grey);
    CHECK_ERR(&ctx, bg_read_image_folder(&ctx, at(root, dir, "empty"), NULL, &ds), BG_ERR_FORMAT,
              at(p, dir, "empty/b"));

    /* a non-image file: an error, or skipped and counted with skip_bad */
    mkdir_at(dir, "text");
    mkdir_at(dir, "text/a");
    write_jpeg(dir, "text/a/0.jpg", 8, 8, grey);
    write_jpeg(dir, "text/a/1.jpg", 8, 8, grey);
    write_bytes(at(p, dir, "text/a/notes.txt"), "not an image\n", 13);
    at(root, dir, "text");
    CHECK_ERR(&ctx, bg_read_image_folder(&ctx, root, NULL, &ds), BG_ERR_FORMAT, p);
    CHECK(strstr(bg_errmsg(&ctx), "not a JPEG"), "message: %s", bg_errmsg(&ctx));
    CHECK_OK(&ctx, bg_read_image_folder(&ctx, root, &skip, &ds));
    CHECK(ds.n == 2 && ds.n_skipped == 1 && strstr(ds.skip_note, "notes.txt"),
          "skip_bad: n=%lld skipped=%lld note '%s'", (long long)ds.n, (long long)ds.n_skipped,
          ds.skip_note);
    bg_dataset_free(&ds);

    /* corrupt JPEG (valid start, garbage after) after a good one */
    mkdir_at(dir, "corrupt");
    mkdir_at(dir, "corrupt/a");
    write_jpeg(dir, "corrupt/a/0.jpg", 8, 8, grey);
    unsigned char junk[200] = {0xFF, 0xD8, 0xFF};
    for (int i = 3; i < 200; i++) junk[i] = (unsigned char)(i * 37 + 11);
    write_bytes(at(p, dir, "corrupt/a/bad.jpg"), junk, sizeof junk);
    CHECK_ERR(&ctx, bg_read_image_folder(&ctx, at(root, dir, "corrupt"), NULL, &ds), BG_ERR_FORMAT, p);
    /* A failed header must not spoil the decoder for the files after it
     * (TurboJPEG 2.1 handles need resetting), in the parallel pass... */
    write_jpeg(dir, "corrupt/a/c.jpg", 8, 8, grey);
    write_jpeg(dir, "corrupt/a/d.jpg", 8, 8, grey);
    CHECK_OK(&ctx, bg_read_image_folder(&ctx, root, &skip, &ds));
    CHECK(ds.n == 3 && ds.n_skipped == 1, "corrupt + skip_bad: n=%lld skipped=%lld", (long long)ds.n,
          (long long)ds.n_skipped);
    bg_dataset_free(&ds);
    /* ...and when the bad file comes first (the pass that fixes the size). */
    mkdir_at(dir, "hdrfirst");
    mkdir_at(dir, "hdrfirst/a");
    write_bytes(at(p, dir, "hdrfirst/a/0.jpg"), junk, sizeof junk);
    write_jpeg(dir, "hdrfirst/a/1.jpg", 8, 8, grey);
    CHECK_OK(&ctx, bg_read_image_folder(&ctx, at(root, dir, "hdrfirst"), &skip, &ds));
    CHECK(ds.n == 1 && ds.n_skipped == 1, "bad first + skip_bad: n=%lld skipped=%lld", (long long)ds.n,
          (long long)ds.n_skipped);
    bg_dataset_free(&ds);

    /* truncated JPEG, first in its class (the reference-size path) */
    mkdir_at(dir, "trunc");
    mkdir_at(dir, "trunc/a");
    {
        uint8_t px[64 * 64 * 3];
        for (int i = 0; i < 64 * 64 * 3; i++) px[i] = (uint8_t)((i * 7919) >> 3); /* busy: long scan */
        unsigned char *jpg;
        unsigned long n = encode_jpeg(px, 64, 64, &jpg);
        CHECK(n > 1000, "encoded %lu bytes", n);
        write_bytes(at(p, dir, "trunc/a/0.jpg"), jpg, n / 2);
        tjFree(jpg);
    }
    write_jpeg(dir, "trunc/a/1.jpg", 64, 64, grey);
    at(p, dir, "trunc/a/0.jpg");
    CHECK_ERR(&ctx, bg_read_image_folder(&ctx, at(root, dir, "trunc"), NULL, &ds), BG_ERR_FORMAT, p);
    /* cut inside its headers: named as truncated, never "image is 0x0" */
    {
        unsigned char *jpg;
        uint8_t px[32 * 32 * 3];
        for (int i = 0; i < 32 * 32 * 3; i++) px[i] = (uint8_t)(i * 13);
        unsigned long n = encode_jpeg(px, 32, 32, &jpg);
        CHECK(n > 300, "encoded %lu bytes", n);
        mkdir_at(dir, "cut100");
        mkdir_at(dir, "cut100/a");
        write_jpeg(dir, "cut100/a/0.jpg", 32, 32, grey);
        write_bytes(at(p, dir, "cut100/a/1.jpg"), jpg, 100);
        tjFree(jpg);
        char root100[512];
        CHECK_ERR(&ctx, bg_read_image_folder(&ctx, at(root100, dir, "cut100"), NULL, &ds), BG_ERR_FORMAT,
                  "1.jpg: corrupt or truncated JPEG: its 100 bytes end before the image size");
        CHECK(!strstr(bg_errmsg(&ctx), "0x0"), "message: %s", bg_errmsg(&ctx));
    }
    /* skip_bad + max_per_class: the bad file is replaced by the next one */
    write_jpeg(dir, "trunc/a/2.jpg", 64, 64, grey);
    skip.max_per_class = 2;
    CHECK_OK(&ctx, bg_read_image_folder(&ctx, root, &skip, &ds));
    CHECK(ds.n == 2 && ds.n_skipped == 1, "skip+max: n=%lld skipped=%lld", (long long)ds.n,
          (long long)ds.n_skipped);
    bg_dataset_free(&ds);
    skip.max_per_class = 0;

    /* mixed sizes: the message names the file and both sizes */
    mkdir_at(dir, "sizes");
    mkdir_at(dir, "sizes/a");
    write_jpeg(dir, "sizes/a/0.jpg", 8, 6, grey);
    write_jpeg(dir, "sizes/a/1.jpg", 6, 6, grey);
    CHECK_ERR(&ctx, bg_read_image_folder(&ctx, at(root, dir, "sizes"), &skip, &ds), BG_ERR_FORMAT,
              at(p, dir, "sizes/a/1.jpg"));
    CHECK(strstr(bg_errmsg(&ctx), "6x6") && strstr(bg_errmsg(&ctx), "8x6"), "message: %s",
          bg_errmsg(&ctx));

    /* a class whose only file is bad stays an error under skip_bad */
    mkdir_at(dir, "allbad");
    mkdir_at(dir, "allbad/a");
    mkdir_at(dir, "allbad/b");
    write_jpeg(dir, "allbad/a/0.jpg", 8, 8, grey);
    write_bytes(at(p, dir, "allbad/b/x.jpg"), "GIF89a", 6);
    CHECK_ERR(&ctx, bg_read_image_folder(&ctx, at(root, dir, "allbad"), &skip, &ds), BG_ERR_FORMAT,
              at(p, dir, "allbad/b"));

    rm_rf(dir);
    bg_ctx_free(&ctx);
}

/* ---- CIFAR binary ---- */

static uint8_t cifar_px(int rec, int ch, int p) { return (uint8_t)(rec * 7 + ch * 85 + p * (ch + 1)); }

static bool write_cifar(const char *path, int first, int count, int nlab)
{
    size_t rec = (size_t)nlab + 3072;
    unsigned char *b = malloc(rec * count);
    for (int r = 0; r < count; r++) {
        unsigned char *q = b + r * rec;
        int i = first + r;
        if (nlab == 2) q[0] = (unsigned char)(i % 20);
        q[nlab - 1] = (unsigned char)(nlab == 2 ? (i * 31) % 100 : (i * 3) % 10);
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 1024; p++) q[nlab + ch * 1024 + p] = cifar_px(i, ch, p);
    }
    bool ok = write_bytes(path, b, rec * count);
    free(b);
    return ok;
}

BG_TEST(data_cifar_bin)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64], p1[512], p2[512], p[512];
    if (!make_tmp(tc, dir)) return;
    CHECK(write_cifar(at(p1, dir, "data_batch_1.bin"), 0, 3, 1) &&
          write_cifar(at(p2, dir, "data_batch_2.bin"), 3, 2, 1), "writing CIFAR files");
    const char *paths[2] = {p1, p2};
    bg_dataset ds;
    CHECK_OK(&ctx, bg_read_cifar_bin(&ctx, paths, 2, 1, &ds));
    CHECK(ds.n == 5 && ds.h == 32 && ds.w == 32 && ds.c == 3 && ds.n_classes == 10,
          "shape n=%lld %dx%dx%d classes %d", (long long)ds.n, ds.h, ds.w, ds.c, ds.n_classes);
    if (ds.n == 5) {
        CHECK(!strcmp(ds.class_names[0], "airplane") && !strcmp(ds.class_names[9], "truck"),
              "built-in CIFAR-10 names");
        int bad = 0;
        for (int i = 0; i < 5; i++) {
            CHECK(ds.labels[i] == (i * 3) % 10, "label %d: %d", i, ds.labels[i]);
            const uint8_t *img = bg_dataset_image(&ds, i);
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    for (int ch = 0; ch < 3; ch++)
                        bad += img[(y * 32 + x) * 3 + ch] != cifar_px(i, ch, y * 32 + x);
        }
        CHECK(bad == 0, "%d pixels differ after planar -> HWC", bad);
    }
    bg_dataset_free(&ds);

    /* names from batches.meta.txt beside the batch; CIFAR-100 uses the fine label */
    write_bytes(at(p, dir, "batches.meta.txt"), "n0\nn1\nn2\nn3\nn4\nn5\nn6\nn7\nn8\nn9\n\n", 31);
    CHECK_OK(&ctx, bg_read_cifar_bin(&ctx, paths, 1, 1, &ds));
    CHECK(ds.n == 3 && ds.class_names && !strcmp(ds.class_names[3], "n3"), "names from batches.meta.txt");
    bg_dataset_free(&ds);
    const char *p100 = at(p, dir, "train.bin");
    write_cifar(p100, 0, 4, 2);
    CHECK_OK(&ctx, bg_read_cifar_bin(&ctx, &p100, 1, 2, &ds));
    CHECK(ds.n == 4 && ds.n_classes == 100 && ds.labels[3] == 93 && bg_dataset_image(&ds, 3)[0] == cifar_px(3, 0, 0),
          "CIFAR-100: n=%lld classes=%d label[3]=%d", (long long)ds.n, ds.n_classes, ds.n ? ds.labels[3] : -1);
    bg_dataset_free(&ds);

    /* wrong size: names the file and its size */
    {
        unsigned char junk[3073 * 2 + 5] = {0};
        const char *pb = at(p, dir, "odd.bin");
        write_bytes(pb, junk, sizeof junk);
        CHECK_ERR(&ctx, bg_read_cifar_bin(&ctx, &pb, 1, 1, &ds), BG_ERR_FORMAT, pb);
        CHECK(strstr(bg_errmsg(&ctx), "6151"), "message lacks the size: %s", bg_errmsg(&ctx));
        /* label outside CIFAR-10's classes */
        junk[3073] = 12;
        write_bytes(pb, junk, 3073 * 2);
        CHECK_ERR(&ctx, bg_read_cifar_bin(&ctx, &pb, 1, 1, &ds), BG_ERR_FORMAT, "record 1");
    }
    const char *missing = at(p, dir, "missing.bin");
    CHECK_ERR(&ctx, bg_read_cifar_bin(&ctx, &missing, 1, 1, &ds), BG_ERR_IO, missing);
    rm_rf(dir);
    bg_ctx_free(&ctx);
}

/* ---- idx ---- */

static void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* An idx file: magic, dims, then `payload` bytes (0..len) of a pattern. gz picks gzip. */
static bool write_idx(const char *path, bool gz, uint32_t magic, int ndim, const uint32_t *dims,
                      const unsigned char *payload, size_t len)
{
    unsigned char hdr[16];
    be32_put(hdr, magic);
    for (int d = 0; d < ndim; d++) be32_put(hdr + 4 + 4 * d, dims[d]);
    size_t hn = 4 + 4 * (size_t)ndim;
    if (!gz) {
        FILE *f = fopen(path, "wb");
        if (!f) return false;
        bool ok = fwrite(hdr, 1, hn, f) == hn && fwrite(payload, 1, len, f) == len;
        return fclose(f) == 0 && ok;
    }
    gzFile g = gzopen(path, "wb");
    if (!g) return false;
    bool ok = gzwrite(g, hdr, (unsigned)hn) == (int)hn && (len == 0 || gzwrite(g, payload, (unsigned)len) == (int)len);
    return gzclose(g) == Z_OK && ok;
}

BG_TEST(data_idx)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64], pi[512], pl[512];
    if (!make_tmp(tc, dir)) return;
    enum { N = 4, R = 3, C = 5 };
    unsigned char px[N * R * C], lab[N] = {3, 1, 4, 1};
    for (int i = 0; i < N * R * C; i++) px[i] = (unsigned char)(i * 13 + 1);
    const uint32_t dims3[3] = {N, R, C}, dims1[1] = {N}, dims1_short[1] = {N - 1};
    for (int gz = 0; gz < 2; gz++) {
        at(pi, dir, gz ? "img.gz" : "img");
        at(pl, dir, gz ? "lab.gz" : "lab");
        CHECK(write_idx(pi, gz, 0x803, 3, dims3, px, sizeof px) &&
              write_idx(pl, gz, 0x801, 1, dims1, lab, sizeof lab), "writing idx files");
        bg_dataset ds;
        CHECK_OK(&ctx, bg_read_idx(&ctx, pi, pl, &ds));
        CHECK(ds.n == N && ds.h == R && ds.w == C && ds.c == 1 && ds.n_classes == 5,
              "%s: n=%lld %dx%dx%d classes=%d", pi, (long long)ds.n, ds.h, ds.w, ds.c, ds.n_classes);
        if (ds.n == N) {
            CHECK(!memcmp(ds.pixels, px, sizeof px), "%s: pixels differ", pi);
            for (int i = 0; i < N; i++) CHECK(ds.labels[i] == lab[i], "%s: label %d = %d", pl, i, ds.labels[i]);
            CHECK(!strcmp(ds.class_names[4], "4"), "numeric class names");
        }
        bg_dataset_free(&ds);
    }
    bg_dataset ds;
    /* wrong magic: names the file and the magic found */
    write_idx(at(pi, dir, "magic.gz"), true, 0x802, 3, dims3, px, sizeof px);
    CHECK_ERR(&ctx, bg_read_idx(&ctx, pi, pl, &ds), BG_ERR_FORMAT, pi);
    CHECK(strstr(bg_errmsg(&ctx), "0x00000802"), "message lacks the magic: %s", bg_errmsg(&ctx));
    /* labels and images disagree on the count */
    at(pi, dir, "img.gz");
    write_idx(at(pl, dir, "short_lab"), false, 0x801, 1, dims1_short, lab, N - 1);
    CHECK_ERR(&ctx, bg_read_idx(&ctx, pi, pl, &ds), BG_ERR_FORMAT, pl);
    /* payload shorter, or longer, than the header says */
    at(pl, dir, "lab.gz");
    write_idx(at(pi, dir, "trunc.gz"), true, 0x803, 3, dims3, px, sizeof px - 2);
    CHECK_ERR(&ctx, bg_read_idx(&ctx, pi, pl, &ds), BG_ERR_FORMAT, pi);
    CHECK(strstr(bg_errmsg(&ctx), "truncated"), "message: %s", bg_errmsg(&ctx));
    {
        unsigned char more[N * R * C + 3] = {0};
        write_idx(at(pi, dir, "long"), false, 0x803, 3, dims3, more, sizeof more);
        CHECK_ERR(&ctx, bg_read_idx(&ctx, pi, pl, &ds), BG_ERR_FORMAT, pi);
    }
    CHECK_ERR(&ctx, bg_read_idx(&ctx, at(pi, dir, "absent-idx3-ubyte.gz"), pl, &ds), BG_ERR_IO, pi);
    rm_rf(dir);
    bg_ctx_free(&ctx);
}

/* ---- samplers ---- */

/* Labels only (1x1x1 pixels): classes of 20, 15 and 30 images interleaved. */
static bool label_dataset(bg_ctx *ctx, bg_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    snprintf(ds->source, sizeof ds->source, "synthetic");
    if (bg_dataset_alloc(ctx, ds, 65, 1, 1, 1, "synthetic") != BG_OK) return false;
    int left[3] = {20, 15, 30}, k = 0;
    for (int64_t i = 0; i < 65; i++) {
        while (!left[k % 3]) k++;
        ds->labels[i] = k % 3;
        ds->pixels[i] = (uint8_t)i;
        left[k % 3]--;
        k++;
    }
    return bg_dataset_number_names(ctx, ds, 3) == BG_OK;
}

BG_TEST(data_subset_and_shuffle)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_dataset ds;
    CHECK(label_dataset(&ctx, &ds), "building the dataset: %s", bg_errmsg(&ctx));
    int64_t *a = NULL, *b = NULL, *c = NULL, *d = NULL, na = 0, nb = 0, nc = 0, nd = 0;
    CHECK_OK(&ctx, bg_subset_per_class(&ctx, &ds, 5, 7, &a, &na));
    CHECK_OK(&ctx, bg_subset_per_class(&ctx, &ds, 5, 7, &b, &nb));
    CHECK_OK(&ctx, bg_subset_per_class(&ctx, &ds, 5, 8, &c, &nc));
    CHECK_OK(&ctx, bg_subset_per_class(&ctx, &ds, 3, 7, &d, &nd));
    if (a && b && c && d) {
        CHECK(na == 15 && nb == 15 && nc == 15 && nd == 9, "sizes %lld %lld %lld %lld",
              (long long)na, (long long)nb, (long long)nc, (long long)nd);
        CHECK(!memcmp(a, b, 15 * sizeof *a), "same seed, different subsets");
        CHECK(memcmp(a, c, 15 * sizeof *a), "seeds 7 and 8 gave the same subset");
        bool seen[65] = {false};
        for (int i = 0; i < 15; i++) {
            CHECK(a[i] >= 0 && a[i] < 65 && !seen[a[i]], "index %lld repeated or out of range", (long long)a[i]);
            if (a[i] >= 0 && a[i] < 65) {
                seen[a[i]] = true;
                CHECK(ds.labels[a[i]] == i / 5, "position %d: image %lld has label %d", i,
                      (long long)a[i], ds.labels[a[i]]);
            }
        }
        for (int k = 0; k < 3; k++)
            CHECK(!memcmp(d + 3 * k, a + 5 * k, 3 * sizeof *a), "class %d: K=3 is not a prefix of K=5", k);
    }
    free(a); free(b); free(c); free(d);
    int64_t *e = NULL, ne = 0;
    CHECK_ERR(&ctx, bg_subset_per_class(&ctx, &ds, 16, 7, &e, &ne), BG_ERR_ARG, "class 1");
    CHECK(e == NULL && ne == 0, "failed subset left output");
    bg_dataset_free(&ds);

    int64_t s1[100], s2[100], s3[100];
    for (int i = 0; i < 100; i++) s1[i] = s2[i] = s3[i] = i;
    bg_shuffle(s1, 100, 3, 0);
    bg_shuffle(s2, 100, 3, 0);
    bg_shuffle(s3, 100, 3, 1);
    CHECK(!memcmp(s1, s2, sizeof s1), "same (seed, epoch), different order");
    CHECK(memcmp(s1, s3, sizeof s1), "epochs 0 and 1 gave the same order");
    bool seen[100] = {false};
    int fixed = 0;
    for (int i = 0; i < 100; i++) {
        if (s1[i] >= 0 && s1[i] < 100) seen[s1[i]] = true;
        fixed += s1[i] == i;
    }
    int all = 1;
    for (int i = 0; i < 100; i++) all &= seen[i];
    CHECK(all, "shuffle is not a permutation");
    CHECK(fixed < 10, "%d of 100 elements did not move", fixed);
    bg_ctx_free(&ctx);
}

/* ---- batches ---- */

BG_TEST(data_batch_normalise)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_dataset ds;
    memset(&ds, 0, sizeof ds);
    CHECK_OK(&ctx, bg_dataset_alloc(&ctx, &ds, 2, 2, 3, 3, "synthetic"));
    for (int i = 0; i < 2 * 2 * 3 * 3; i++) ds.pixels[i] = (uint8_t)(i * 5);
    ds.labels[0] = 4;
    ds.labels[1] = 9;
    /* image 1, y=1, x=2, channel 1 */
    ds.pixels[18 + (1 * 3 + 2) * 3 + 1] = 200;
    bg_batch_opts o = {.mean = {0.5f, 0.4f, 0.3f}, .std = {0.25f, 0.2f, 0.1f}};
    const int64_t idx[2] = {1, 0};
    float out[2 * 18];
    int32_t lab[2];
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, 2, &o, 1, 0, out, lab));
    /* By hand: (200/255 - 0.4) / 0.2 = (0.78431373 - 0.4) / 0.2 = 1.92156863 */
    CHECK_NEAR(out[(1 * 3 + 2) * 3 + 1], 1.92156863, 1e-6, "batch[0] (y1,x2,c1)");
    /* batch[1] = image 0, y=0, x=1, channel 2: pixel (0*3+1)*3+2 = 5 -> 25:
     * (25/255 - 0.3) / 0.1 = (0.09803922 - 0.3) / 0.1 = -2.01960784 */
    CHECK_NEAR(out[18 + 5], -2.01960784, 1e-6, "batch[1] (y0,x1,c2)");
    CHECK(lab[0] == 9 && lab[1] == 4, "labels %d %d", lab[0], lab[1]);
    const int64_t badidx[1] = {2};
    CHECK_ERR(&ctx, bg_make_batch(&ctx, &ds, badidx, 1, &o, 1, 0, out, lab), BG_ERR_ARG, "image 2");
    o.std[2] = 0;
    CHECK_ERR(&ctx, bg_make_batch(&ctx, &ds, idx, 1, &o, 1, 0, out, lab), BG_ERR_ARG, "channel 2");
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
}

/* The reference: output (y, x) of a pad-p crop at offset (ox, oy) in the padded
 * image, flipped or not, reading 0 outside the source. */
static float ref_px(const bg_dataset *ds, int64_t i, int ox, int oy, int flip, int pad, int y, int x,
                    int ch, const float lut[256])
{
    int cx = flip ? ds->w - 1 - x : x;
    int sy = y + oy - pad, sx = cx + ox - pad;
    if (sy < 0 || sy >= ds->h || sx < 0 || sx >= ds->w) return lut[0];
    return lut[bg_dataset_image(ds, i)[(sy * ds->w + sx) * ds->c + ch]];
}

BG_TEST(data_batch_augment)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    enum { N = 16, H = 8, W = 8, C = 3, PAD = 2 };
    bg_dataset ds;
    memset(&ds, 0, sizeof ds);
    CHECK_OK(&ctx, bg_dataset_alloc(&ctx, &ds, N, H, W, C, "synthetic"));
    for (int i = 0; i < N * H * W * C; i++) ds.pixels[i] = (uint8_t)(1 + (i * 2654435761u >> 24) % 255);
    for (int i = 0; i < N; i++) ds.labels[i] = i % 10;
    bg_batch_opts o = {.mean = {0, 0, 0}, .std = {1, 1, 1}, .crop_pad = PAD, .flip = true};
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    int64_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = N - 1 - i;
    size_t sz = (size_t)N * H * W * C;
    float *a = malloc(sz * 4), *b = malloc(sz * 4), *c = malloc(sz * 4);
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, N, &o, 11, 3, a, NULL));
    int threads = omp_get_max_threads();
    omp_set_num_threads(1); /* the draws are per image: one thread must agree */
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, N, &o, 11, 3, b, NULL));
    omp_set_num_threads(threads);
    CHECK_OK(&ctx, bg_make_batch(&ctx, &ds, idx, N, &o, 11, 4, c, NULL));
    CHECK(!memcmp(a, b, sz * 4), "same (seed, step) gave different batches");
    CHECK(memcmp(a, c, sz * 4), "steps 3 and 4 gave the same batch");
    /* Every output image is exactly one of the 2*(2*PAD+1)^2 crops/flips. */
    int flips = 0, shifted = 0;
    for (int p = 0; p < N; p++) {
        int found = 0;
        for (int oy = 0; oy <= 2 * PAD && !found; oy++)
            for (int ox = 0; ox <= 2 * PAD && !found; ox++)
                for (int f = 0; f < 2 && !found; f++) {
                    bool same = true;
                    for (int y = 0; y < H && same; y++)
                        for (int x = 0; x < W && same; x++)
                            for (int ch = 0; ch < C && same; ch++)
                                same = a[(((size_t)p * H + y) * W + x) * C + ch] ==
                                       ref_px(&ds, idx[p], ox, oy, f, PAD, y, x, ch, lut);
                    if (same) {
                        found = 1;
                        flips += f;
                        shifted += ox != PAD || oy != PAD;
                    }
                }
        CHECK(found, "batch image %d is no crop/flip of image %lld", p, (long long)idx[p]);
    }
    CHECK(flips > 0 && flips < N && shifted > 0, "flips %d shifted %d of %d", flips, shifted, N);
    free(a); free(b); free(c);
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
}

/* ---- PNG ---- */

BG_TEST(data_png_write)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64], p[512], tmp[520];
    if (!make_tmp(tc, dir)) return;
    enum { W = 5, H = 4 };
    for (int ch = 1; ch <= 4; ch += 2) { /* grey and RGB */
        uint8_t px[W * H * 4], back[W * H * 4];
        for (int i = 0; i < W * H * ch; i++) px[i] = (uint8_t)(i * 11 + ch);
        at(p, dir, ch == 1 ? "g.png" : "rgb.png");
        CHECK_OK(&ctx, bg_write_png(&ctx, p, W, H, ch, px));
        snprintf(tmp, sizeof tmp, "%s.tmp", p);
        CHECK(access(tmp, F_OK) != 0, "%s left behind", tmp);
        png_image img;
        memset(&img, 0, sizeof img);
        img.version = PNG_IMAGE_VERSION;
        bool ok = png_image_begin_read_from_file(&img, p);
        if (ok) {
            img.format = ch == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
            ok = img.width == W && img.height == H && png_image_finish_read(&img, NULL, back, 0, NULL);
        }
        CHECK(ok, "%s: reading back failed: %s", p, img.message);
        CHECK(!ok || !memcmp(px, back, (size_t)W * H * ch), "%s: pixels differ", p);
        png_image_free(&img);
    }
    uint8_t px[4] = {0};
    CHECK_ERR(&ctx, bg_write_png(&ctx, at(p, dir, "no/such/dir/x.png"), 1, 1, 3, px), BG_ERR_IO, p);
    CHECK_ERR(&ctx, bg_write_png(&ctx, at(p, dir, "x.png"), 1, 1, 5, px), BG_ERR_ARG, p);
    rm_rf(dir);
    bg_ctx_free(&ctx);
}
