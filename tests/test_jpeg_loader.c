/* The threaded JPEG loader (augment/jpeg_loader.h) on a small folder of
 * solid-colour JPEGs written with TurboJPEG into a mkdtemp directory:
 * 3 classes x 7 images of 40x30, image (c, i) coloured (30 + 80c, 20 + 30i, 128)
 * so a centre crop tells which file it came from. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include "harness.h"
#include "../augment/jpeg_loader.h"
#include "../engine/dtype.h"

#define NC 3
#define NI 7

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static bool write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* A gradient in x on top of the solid colour would break the colour check
 * after random crops; solid colours keep every check simple. */
static bool write_jpeg(const char *path, int w, int h, const uint8_t rgb[3])
{
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px) return false;
    for (int i = 0; i < w * h; i++) memcpy(px + 3 * i, rgb, 3);
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    bool ok = tj && tjCompress2(tj, px, w, 0, h, TJPF_RGB, &jpg, &size, TJSAMP_444, 100, 0) == 0;
    if (tj) tjDestroy(tj);
    free(px);
    ok = ok && write_file(path, jpg, size);
    tjFree(jpg);
    return ok;
}

static void colour_of(int c, int i, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(30 + 80 * c);
    rgb[1] = (uint8_t)(20 + 30 * i);
    rgb[2] = 128;
}

/* root/c0..c2/img0.jpg..img6.jpg plus a hidden file; false on failure. */
static bool make_folder(char *root)
{
    strcpy(root, "/tmp/bg_jload_XXXXXX");
    if (!mkdtemp(root)) return false;
    char p[600];
    for (int c = 0; c < NC; c++) {
        snprintf(p, sizeof p, "%s/c%d", root, c);
        if (mkdir(p, 0755) != 0) return false;
        for (int i = 0; i < NI; i++) {
            uint8_t rgb[3];
            colour_of(c, i, rgb);
            snprintf(p, sizeof p, "%s/c%d/img%d.jpg", root, c, i);
            if (!write_jpeg(p, 40, 30, rgb)) return false;
        }
    }
    snprintf(p, sizeof p, "%s/c0/.hidden", root);
    return write_file(p, "x", 1);
}

static bg_jpeg_loader_opts eval_opts(void)
{
    bg_jpeg_loader_opts o;
    memset(&o, 0, sizeof o);
    o.batch = 4;
    o.size = 16;
    o.train = false;
    o.shuffle = true;
    o.epochs = 2;
    o.threads = 3;
    o.prefetch = 3;
    o.seed = 7;
    return o;
}

static bg_jpeg_loader_opts train_opts(int threads, int prefetch)
{
    bg_jpeg_loader_opts o;
    memset(&o, 0, sizeof o);
    o.batch = 5;
    o.size = 24;
    o.train = true;
    o.flip = true;
    o.shuffle = true;
    o.drop_last = true;
    o.epochs = 2;
    o.threads = threads;
    o.prefetch = prefetch;
    o.seed = 11;
    return o;
}

BG_TEST(loader_list_folder)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char root[64];
    if (!make_folder(root)) { rm_rf(root); SKIP("cannot write the JPEG folder"); }
    bg_jpeg_list l;
    CHECK_OK(&ctx, bg_jpeg_list_folder(&ctx, root, 0, &l));
    CHECK(l.n == NC * NI && l.n_classes == NC, "n %lld classes %d", (long long)l.n, l.n_classes);
    for (int64_t k = 0; k < l.n && l.n == NC * NI; k++) {
        char want[600];
        snprintf(want, sizeof want, "%s/c%d/img%d.jpg", root, (int)(k / NI), (int)(k % NI));
        CHECK(l.labels[k] == k / NI && strcmp(l.paths[k], want) == 0, "%lld: %s label %d", (long long)k, l.paths[k],
              l.labels[k]);
    }
    CHECK(l.n_classes == NC && strcmp(l.class_names[2], "c2") == 0, "class names");
    bg_jpeg_list_free(&l);
    CHECK_OK(&ctx, bg_jpeg_list_folder(&ctx, root, 2, &l));
    CHECK(l.n == NC * 2 && l.labels[5] == 2, "max_per_class: n %lld", (long long)l.n);
    bg_jpeg_list_free(&l);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope", root);
    CHECK_ERR(&ctx, bg_jpeg_list_folder(&ctx, missing, 0, &l), BG_ERR_IO, "nope");
    rm_rf(root);
}

/* Eval mode: the centre crop of image (c, i) is its colour; each epoch holds
 * every image once, in batches of 4, 4, 4, 4, 4, 1. */
BG_TEST(loader_epoch_covers_all)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char root[64];
    if (!make_folder(root)) { rm_rf(root); SKIP("cannot write the JPEG folder"); }
    bg_jpeg_list l;
    CHECK_OK(&ctx, bg_jpeg_list_folder(&ctx, root, 0, &l));
    bg_jpeg_loader_opts o = eval_opts();
    bg_jpeg_loader *ld = NULL;
    CHECK_OK(&ctx, bg_jpeg_loader_start(&ctx, &l, &o, &ld));
    if (!ld) { bg_jpeg_list_free(&l); rm_rf(root); return; }
    CHECK(bg_jpeg_loader_steps_per_epoch(ld) == 6, "steps %lld", (long long)bg_jpeg_loader_steps_per_epoch(ld));
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    int seen[2][NC * NI] = {{0}};
    int first_order[2][NC * NI];
    int64_t nb = 0;
    for (;;) {
        bg_jpeg_batch b;
        bg_status s = bg_jpeg_loader_next(ld, &b);
        CHECK_OK(&ctx, s);
        if (s || b.n == 0) break;
        CHECK(b.epoch == nb / 6 && b.index == nb % 6 && b.seq == nb, "batch %lld: epoch %lld index %lld", (long long)nb,
              (long long)b.epoch, (long long)b.index);
        CHECK(b.n == (b.index == 5 ? 1 : 4), "batch %lld has %lld images", (long long)nb, (long long)b.n);
        const float *x = b.x;
        for (int64_t p = 0; p < b.n; p++) {
            const float *px = x + (size_t)p * 16 * 16 * 3 + (8 * 16 + 8) * 3;
            int rgb[3];
            for (int k = 0; k < 3; k++) rgb[k] = (int)lrintf((px[k] * sd[k] + mean[k]) * 255.0f);
            int c = (int)lrint((rgb[0] - 30) / 80.0), i = (int)lrint((rgb[1] - 20) / 30.0);
            bool ok = c >= 0 && c < NC && i >= 0 && i < NI && abs(rgb[0] - (30 + 80 * c)) <= 4 &&
                      abs(rgb[1] - (20 + 30 * i)) <= 4 && abs(rgb[2] - 128) <= 4;
            CHECK(ok, "batch %lld image %lld: colour %d %d %d", (long long)nb, (long long)p, rgb[0], rgb[1], rgb[2]);
            if (!ok) continue;
            CHECK(b.y[p] == c, "batch %lld image %lld: label %d, colour says class %d", (long long)nb, (long long)p,
                  b.y[p], c);
            if (b.epoch < 2) {
                first_order[b.epoch][b.index * 4 + p] = c * NI + i;
                seen[b.epoch][c * NI + i]++;
            }
        }
        bg_jpeg_loader_release(ld, &b);
        nb++;
    }
    CHECK(nb == 12, "%lld batches over 2 epochs, want 12", (long long)nb);
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < NC * NI; k++) CHECK(seen[e][k] == 1, "epoch %d: image %d seen %d times", e, k, seen[e][k]);
    CHECK(memcmp(first_order[0], first_order[1], sizeof first_order[0]) != 0, "epochs 0 and 1 in the same order");
    bg_jpeg_loader_stats st;
    bg_jpeg_loader_get_stats(ld, &st);
    CHECK(st.batches == 12 && st.images == 2 * NC * NI && st.skipped == 0, "stats: %lld batches %lld images %lld skipped",
          (long long)st.batches, (long long)st.images, (long long)st.skipped);
    CHECK(st.wait_s >= 0, "wait %g", st.wait_s);
    bg_jpeg_loader_free(ld);
    bg_jpeg_list_free(&l);
    rm_rf(root);
}

/* Every batch of two training epochs (random-resized-crop + flip), as bytes. */
static size_t run_all(bg_t *tc, bg_ctx *ctx, const bg_jpeg_list *l, const bg_jpeg_loader_opts *o, uint8_t *out,
                      int32_t *labels)
{
    bg_jpeg_loader *ld = NULL;
    CHECK_OK(ctx, bg_jpeg_loader_start(ctx, l, o, &ld));
    if (!ld) return 0;
    size_t off = 0, noff = 0, img = (size_t)o->size * o->size * 3 * (o->f16 ? 2 : 4);
    bg_jpeg_batch held[2];
    int nheld = 0;
    for (;;) {
        bg_jpeg_batch b;
        bg_status s = bg_jpeg_loader_next(ld, &b);
        CHECK_OK(ctx, s);
        if (s || b.n == 0) break;
        memcpy(out + off, b.x, (size_t)b.n * img);
        memcpy(labels + noff, b.y, (size_t)b.n * sizeof *labels);
        off += (size_t)b.n * img;
        noff += (size_t)b.n;
        /* hold two batches at a time, released out of order */
        held[nheld++] = b;
        if (nheld == 2) {
            bg_jpeg_loader_release(ld, &held[1]);
            bg_jpeg_loader_release(ld, &held[0]);
            nheld = 0;
        }
    }
    for (int k = 0; k < nheld; k++) bg_jpeg_loader_release(ld, &held[k]);
    bg_jpeg_loader_free(ld);
    return off;
}

BG_TEST(loader_threads_bit_identical)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char root[64];
    if (!make_folder(root)) { rm_rf(root); SKIP("cannot write the JPEG folder"); }
    bg_jpeg_list l;
    CHECK_OK(&ctx, bg_jpeg_list_folder(&ctx, root, 0, &l));
    const size_t imgs = 2 * 4 * 5, vals = (size_t)24 * 24 * 3; /* 2 epochs x 4 full batches of 5 */
    uint8_t *a = malloc(imgs * vals * 4), *b = malloc(imgs * vals * 4), *h = malloc(imgs * vals * 2);
    int32_t ya[40], yb[40], yh[40];
    bg_jpeg_loader_opts o1 = train_opts(1, 2), o3 = train_opts(3, 5), oh = train_opts(2, 3);
    oh.f16 = true;
    size_t na = run_all(tc, &ctx, &l, &o1, a, ya), nb = run_all(tc, &ctx, &l, &o3, b, yb);
    size_t nh = run_all(tc, &ctx, &l, &oh, h, yh);
    CHECK(na == imgs * vals * 4 && nb == na && nh == imgs * vals * 2, "bytes %zu %zu %zu", na, nb, nh);
    if (na == nb && na == imgs * vals * 4) {
        CHECK(memcmp(a, b, na) == 0, "1 and 3 threads give different batches");
        CHECK(memcmp(ya, yb, sizeof ya) == 0, "1 and 3 threads give different labels");
    }
    if (nh == imgs * vals * 2 && na == imgs * vals * 4) {
        size_t bad = 0;
        for (size_t i = 0; i < imgs * vals; i++) {
            float f;
            memcpy(&f, a + 4 * i, 4);
            uint16_t want = bg_f32_to_f16(f), got;
            memcpy(&got, h + 2 * i, 2);
            bad += got != want;
        }
        CHECK(bad == 0, "f16 output differs from the rounded f32 output in %zu values", bad);
        CHECK(memcmp(ya, yh, sizeof ya) == 0, "f16 run labels differ");
    }
    /* a different seed gives different crops */
    bg_jpeg_loader_opts o2 = train_opts(2, 2);
    o2.seed = 12;
    size_t n2 = run_all(tc, &ctx, &l, &o2, b, yb);
    CHECK(n2 == na && memcmp(a, b, na) != 0, "seed 12 gives the same batches as seed 11");
    free(a);
    free(b);
    free(h);
    bg_jpeg_list_free(&l);
    rm_rf(root);
}

BG_TEST(loader_corrupt_file)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char root[64], p[600];
    if (!make_folder(root)) { rm_rf(root); SKIP("cannot write the JPEG folder"); }
    snprintf(p, sizeof p, "%s/c1/img3.jpg", root);
    static const uint8_t junk[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 2, 3, 4, 5};
    CHECK(write_file(p, junk, sizeof junk), "cannot write %s", p);
    bg_jpeg_list l;
    CHECK_OK(&ctx, bg_jpeg_list_folder(&ctx, root, 0, &l));

    /* default: the batch holding it fails, naming the file, and so does every later call */
    bg_jpeg_loader_opts o = eval_opts();
    o.epochs = 1;
    bg_jpeg_loader *ld = NULL;
    CHECK_OK(&ctx, bg_jpeg_loader_start(&ctx, &l, &o, &ld));
    bg_status last = BG_OK;
    for (int k = 0; ld && k < 10; k++) {
        bg_jpeg_batch b;
        bg_clear_error(&ctx);
        last = bg_jpeg_loader_next(ld, &b);
        if (last || b.n == 0) break;
        bg_jpeg_loader_release(ld, &b);
    }
    CHECK(last == BG_ERR_FORMAT && strstr(bg_errmsg(&ctx), "c1/img3.jpg"), "got %s: %s", bg_status_name(last),
          bg_errmsg(&ctx));
    if (ld) {
        bg_jpeg_batch b;
        CHECK_ERR(&ctx, bg_jpeg_loader_next(ld, &b), BG_ERR_FORMAT, "img3.jpg");
    }
    bg_jpeg_loader_free(ld);

    /* skip_bad: replaced and counted once per epoch */
    o.epochs = 2;
    o.skip_bad = true;
    ld = NULL;
    CHECK_OK(&ctx, bg_jpeg_loader_start(&ctx, &l, &o, &ld));
    int64_t images = 0;
    for (int k = 0; ld && k < 20; k++) {
        bg_jpeg_batch b;
        bg_status s = bg_jpeg_loader_next(ld, &b);
        CHECK_OK(&ctx, s);
        if (s || b.n == 0) break;
        images += b.n;
        bg_jpeg_loader_release(ld, &b);
    }
    bg_jpeg_loader_stats st;
    bg_jpeg_loader_get_stats(ld, &st);
    CHECK(images == 2 * NC * NI && st.skipped == 2, "%lld images, %lld skipped", (long long)images,
          (long long)st.skipped);
    CHECK(strstr(st.skip_note, "img3.jpg") != NULL, "skip note: %s", st.skip_note);
    bg_jpeg_loader_free(ld);

    /* not a JPEG at all */
    snprintf(p, sizeof p, "%s/c2/img0.jpg", root);
    CHECK(write_file(p, "hello", 5), "cannot write %s", p);
    o.skip_bad = false;
    o.shuffle = false;
    o.epochs = 1;
    ld = NULL;
    CHECK_OK(&ctx, bg_jpeg_loader_start(&ctx, &l, &o, &ld));
    for (int k = 0; ld && k < 10; k++) {
        bg_jpeg_batch b;
        bg_clear_error(&ctx);
        last = bg_jpeg_loader_next(ld, &b);
        if (last || b.n == 0) break;
        bg_jpeg_loader_release(ld, &b);
    }
    /* in list order c1/img3 (position 10) comes before c2/img0 (14) */
    CHECK(last == BG_ERR_FORMAT && strstr(bg_errmsg(&ctx), "c1/img3.jpg"), "got %s: %s", bg_status_name(last),
          bg_errmsg(&ctx));
    bg_jpeg_loader_free(ld);
    bg_jpeg_list_free(&l);
    rm_rf(root);
}

/* Endless training stream stopped mid-epoch with batches held and decoders
 * blocked on full slots: free must join and release everything (ASan checks
 * the leaks under make test SAN=1). */
BG_TEST(loader_shutdown_mid_epoch)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char root[64];
    if (!make_folder(root)) { rm_rf(root); SKIP("cannot write the JPEG folder"); }
    bg_jpeg_list l;
    CHECK_OK(&ctx, bg_jpeg_list_folder(&ctx, root, 0, &l));
    bg_jpeg_loader_opts o = train_opts(3, 2);
    o.epochs = 0;
    bg_jpeg_loader *ld = NULL;
    CHECK_OK(&ctx, bg_jpeg_loader_start(&ctx, &l, &o, &ld));
    bg_jpeg_batch b1, b2, b3;
    if (ld) {
        CHECK_OK(&ctx, bg_jpeg_loader_next(ld, &b1));
        CHECK_OK(&ctx, bg_jpeg_loader_next(ld, &b2));
        /* both slots held: one more would wait forever, so it fails */
        CHECK_ERR(&ctx, bg_jpeg_loader_next(ld, &b3), BG_ERR_ARG, "release");
        bg_jpeg_loader_release(ld, &b1);
        CHECK_OK(&ctx, bg_jpeg_loader_next(ld, &b3));
        CHECK(b3.seq == 2 && b3.n == 5, "seq %lld n %lld", (long long)b3.seq, (long long)b3.n);
        bg_jpeg_loader_release(ld, &b3);
    }
    bg_jpeg_loader_free(ld); /* b2 still held */
    /* started and stopped at once */
    ld = NULL;
    CHECK_OK(&ctx, bg_jpeg_loader_start(&ctx, &l, &o, &ld));
    bg_jpeg_loader_free(ld);
    /* bad options */
    bg_jpeg_loader_opts bad = o;
    bad.batch = 0;
    CHECK_ERR(&ctx, bg_jpeg_loader_start(&ctx, &l, &bad, &ld), BG_ERR_ARG, "batch");
    bad = o;
    bad.batch = 100;
    CHECK_ERR(&ctx, bg_jpeg_loader_start(&ctx, &l, &bad, &ld), BG_ERR_ARG, "no full batch");
    bg_jpeg_list_free(&l);
    rm_rf(root);
}
