/* `budgie data bench`: images per second of the CPU data pipelines, on one
 * core by default (bench/augment_peer.py measures the PIL / torchvision
 * equivalents on the same images):
 *  - CIFAR HAET chain: pad-4 crop, flip, AutoAugment (PIL numerics), Cutout
 *    16, normalise, through bg_make_batch; plus crop+flip+normalise alone;
 *  - JPEG: decode, and decode + RandomResizedCrop + flip + normalise on
 *    Imagenette JPEGs held in memory (file reading is not timed). */
#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../augment/transforms.h"
#include "data_cmds.h"
#include "options.h"
#include "../engine/clock.h"

static void usage(FILE *o)
{
    fprintf(o,
        "usage: budgie data bench [--cifar SRC] [--per-class K] [--imagenette DIR] [--jpegs N]\n"
        "       [--size S] [--seconds T] [--threads N] [--batch B]\n"
        "\n"
        "CPU throughput (images/s) of the augmentation pipelines, on --threads (default 1)\n"
        "threads, each timed for about --seconds (default 3):\n"
        "  cifar: the first K (default 1000) training images per class of SRC (default\n"
        "         .cache/cifar10; anything `budgie data pack` reads) through bg_make_batch in\n"
        "         batches of B (default 512): HAET chain (crop 4, flip, AutoAugment PIL,\n"
        "         Cutout 16, normalise), and crop+flip+normalise alone;\n"
        "  jpeg:  N (default 500) JPEGs from DIR/<class>/ (default .cache/imagenette/train)\n"
        "         read into memory, then TurboJPEG decode, and decode + RandomResizedCrop to\n"
        "         S (default 160) + flip + normalise.\n"
        "Compare with bench/augment_peer.py (PIL / torchvision on the same images).\n");
}

static void report(const char *name, long images, double secs, int threads)
{
    printf("%-46s %8ld images %6.2f s  %10.1f img/s  (%d thread%s)\n", name, images, secs, images / secs, threads,
           threads == 1 ? "" : "s");
    fflush(stdout);
}

/* bg_make_batch over the dataset in a loop until `seconds` have passed. */
static bg_status time_batches(bg_ctx *ctx, const bg_dataset *ds, const bg_batch_opts *o, int batch, double seconds,
                              const char *name, int threads)
{
    int64_t *idx = malloc((size_t)batch * sizeof *idx);
    float *x = malloc((size_t)batch * ds->h * ds->w * ds->c * sizeof *x);
    if (!idx || !x) {
        free(idx), free(x);
        return bg_fail(ctx, BG_ERR_OOM, "bench: out of memory");
    }
    long images = 0;
    bg_status s = BG_OK;
    double t0 = bg_monotonic_s(), t = t0;
    for (uint64_t step = 0; !s && (t - t0 < seconds || step < 2); step++) {
        for (int i = 0; i < batch; i++) idx[i] = (int64_t)((step * (uint64_t)batch + (uint64_t)i) % (uint64_t)ds->n);
        s = bg_make_batch(ctx, ds, idx, batch, o, 1, step, x, NULL);
        images += batch;
        t = bg_monotonic_s();
    }
    if (!s) report(name, images, t - t0, threads);
    free(idx), free(x);
    return s;
}

typedef struct {
    uint8_t **data;
    size_t *size;
    char **path;
    int n;
} jpeg_set;

static void jpegs_free(jpeg_set *j)
{
    for (int i = 0; i < j->n; i++) free(j->data[i]), free(j->path[i]);
    free(j->data), free(j->size), free(j->path);
    memset(j, 0, sizeof *j);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Up to `want` JPEG files from dir/<class>/, spread over the classes in name order. */
static bg_status load_jpegs(bg_ctx *ctx, const char *dir, int want, jpeg_set *out)
{
    memset(out, 0, sizeof *out);
    out->data = calloc((size_t)want, sizeof *out->data);
    out->size = calloc((size_t)want, sizeof *out->size);
    out->path = calloc((size_t)want, sizeof *out->path);
    if (!out->data || !out->size || !out->path) return jpegs_free(out), bg_fail(ctx, BG_ERR_OOM, "bench: out of memory");
    DIR *d = opendir(dir);
    if (!d) return jpegs_free(out), bg_fail(ctx, BG_ERR_IO, "%s: cannot open (unpack Imagenette there, see bench/results)", dir);
    char *cls[256];
    int nc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nc < 256)
        if (e->d_name[0] != '.') cls[nc++] = strdup(e->d_name);
    closedir(d);
    qsort(cls, (size_t)nc, sizeof *cls, cmp_str);
    bg_status s = BG_OK;
    for (int k = 0; k < nc && !s; k++) {
        int quota = (want - out->n + (nc - k) - 1) / (nc - k);
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", dir, cls[k]);
        DIR *cd = opendir(sub);
        if (!cd) continue;
        char *files[4096];
        int nf = 0;
        while ((e = readdir(cd)) && nf < 4096)
            if (e->d_name[0] != '.') files[nf++] = strdup(e->d_name);
        closedir(cd);
        qsort(files, (size_t)nf, sizeof *files, cmp_str);
        for (int i = 0; i < nf; i++) {
            if (!s && i < quota && out->n < want) {
                char p[2048];
                snprintf(p, sizeof p, "%s/%s", sub, files[i]);
                s = bg_read_file(ctx, p, &out->data[out->n], &out->size[out->n]);
                if (!s) out->path[out->n++] = strdup(p);
            }
            free(files[i]);
        }
    }
    for (int k = 0; k < nc; k++) free(cls[k]);
    if (!s && out->n == 0) s = bg_fail(ctx, BG_ERR_IO, "%s: no JPEG files in its class folders", dir);
    if (s) jpegs_free(out);
    return s;
}

static bg_status bench_jpeg(bg_ctx *ctx, const jpeg_set *js, int size, double seconds, int threads)
{
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    const bg_rrc_opts rrc = {0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0};
    int nt = threads;
    uint8_t *u8 = malloc((size_t)nt * size * size * 3);
    float *f32 = malloc((size_t)nt * size * size * 3 * sizeof *f32);
    if (!u8 || !f32) {
        free(u8), free(f32);
        return bg_fail(ctx, BG_ERR_OOM, "bench: out of memory");
    }
    bg_status st = BG_OK;
    for (int mode = 0; mode < 2 && !st; mode++) {
        long images = 0;
        double t0 = bg_monotonic_s(), t = t0;
        for (uint64_t round = 0; !st && (t - t0 < seconds || round < 1); round++) {
            int failed = 0;
#pragma omp parallel num_threads(nt) reduction(+ : failed)
            {
                bg_jpeg j = {0};
                bg_ctx local = *ctx; /* errors land in a private copy */
                int me = omp_get_thread_num();
#pragma omp for schedule(dynamic, 8)
                for (int i = 0; i < js->n; i++) {
                    const uint8_t *px;
                    int w, h;
                    bg_status s;
                    if (mode == 0) {
                        s = bg_jpeg_decode(&local, &j, js->data[i], js->size[i], js->path[i], 0, 0, &px, &w, &h);
                    } else {
                        uint8_t *img = u8 + (size_t)me * size * size * 3;
                        s = bg_jpeg_rrc(&local, &j, js->data[i], js->size[i], js->path[i], size, &rrc, true, 7, round,
                                        (uint32_t)i, img);
                        if (!s) bg_normalize_u8(img, (size_t)size * size, 3, mean, std, f32 + (size_t)me * size * size * 3);
                    }
                    failed += s != BG_OK;
                }
                bg_jpeg_free(&j);
            }
            if (failed) st = bg_fail(ctx, BG_ERR_FORMAT, "bench: %d JPEGs failed to decode", failed);
            images += js->n;
            t = bg_monotonic_s();
        }
        char name[96];
        if (mode == 0) snprintf(name, sizeof name, "jpeg decode (TurboJPEG, full size)");
        else snprintf(name, sizeof name, "jpeg decode+rrc%d+flip+normalise", size);
        if (!st) report(name, images, t - t0, threads);
    }
    free(u8), free(f32);
    return st;
}

int bg_data_bench(int argc, char **argv)
{
    const char *cifar = ".cache/cifar10", *jdir = ".cache/imagenette/train";
    int64_t per_class_o = 1000, njpeg_o = 500, size_o = 160, threads_o = 1, batch_o = 512;
    double secs = 3.0;
    const bg_opt opts[] = {
        {.name = "cifar", .type = BG_OPT_STR, .dst = &cifar},
        {.name = "imagenette", .type = BG_OPT_STR, .dst = &jdir},
        {.name = "per-class", .type = BG_OPT_INT, .dst = &per_class_o, .min = 1, .max = 100000},
        {.name = "jpegs", .type = BG_OPT_INT, .dst = &njpeg_o, .min = 1, .max = 100000},
        {.name = "size", .type = BG_OPT_INT, .dst = &size_o, .min = 8, .max = 1024},
        {.name = "threads", .type = BG_OPT_INT, .dst = &threads_o, .min = 1, .max = 1024},
        {.name = "batch", .type = BG_OPT_INT, .dst = &batch_o, .min = 1, .max = 65536},
        {.name = "seconds", .type = BG_OPT_NUM, .dst = &secs, .min = 0.1, .max = 3599},
    };
    const int prc = bg_opts_parse("data bench", opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, NULL, 0, NULL);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc) return prc;
    const int secs10 = (int)(secs * 10 + 0.5), per_class = (int)per_class_o, njpeg = (int)njpeg_o, size = (int)size_o,
              threads = (int)threads_o;
    int batch = (int)batch_o;
    const double seconds = secs10 / 10.0;
    omp_set_num_threads(threads);
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 1)) return fprintf(stderr, "budgie data bench: %s\n", bg_errmsg(&ctx)), 1;
    int rc = 0;
    bg_dataset ds;
    const char *fmt;
    printf("budgie data bench: CPU, %d thread%s, ~%.1f s per measurement\n", threads, threads == 1 ? "" : "s", seconds);
    bg_status s = bg_data_open(&ctx, cifar, "train", per_class, &ds, &fmt);
    if (s) {
        fprintf(stderr, "budgie data bench: cifar part skipped: %s\n", bg_errmsg(&ctx));
        rc = 1;
    } else {
        printf("cifar: %lld images %dx%dx%d from %s (%s)\n", (long long)ds.n, ds.w, ds.h, ds.c, cifar, fmt);
        bg_batch_opts haet = {.mean = {0.4914f, 0.4822f, 0.4465f}, .std = {0.2023f, 0.1994f, 0.2010f}, .crop_pad = 4,
                              .flip = true, .autoaugment = BG_AUTOAUG_PIL, .cutout = 16};
        bg_batch_opts plain = haet;
        plain.autoaugment = 0, plain.cutout = 0;
        if (batch > ds.n) batch = (int)ds.n;
        s = time_batches(&ctx, &ds, &haet, batch, seconds, "cifar haet chain (crop flip AA-pil cutout norm)", threads);
        if (!s) s = time_batches(&ctx, &ds, &plain, batch, seconds, "cifar crop+flip+normalise", threads);
        if (s) fprintf(stderr, "budgie data bench: %s\n", bg_errmsg(&ctx)), rc = 1;
        bg_dataset_free(&ds);
    }
    jpeg_set js;
    s = load_jpegs(&ctx, jdir, njpeg, &js);
    if (s) {
        fprintf(stderr, "budgie data bench: jpeg part skipped: %s\n", bg_errmsg(&ctx));
        rc = 1;
    } else {
        printf("jpeg: %d files from %s\n", js.n, jdir);
        if (bench_jpeg(&ctx, &js, size, seconds, threads)) fprintf(stderr, "budgie data bench: %s\n", bg_errmsg(&ctx)), rc = 1;
        jpegs_free(&js);
    }
    bg_ctx_free(&ctx);
    return rc;
}
