/* `budgie data pack|preview|bench`: the dispatcher, the data source opener
 * shared by the three, and `pack`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../augment/pack.h"
#include "data_cmds.h"
#include "../augment/data_source.h"
#include "options.h"
#include "verbs.h"

bg_status bg_data_open(bg_ctx *ctx, const char *src, const char *split, int max_per_class, bg_dataset *ds,
                       const char **format)
{
    memset(ds, 0, sizeof *ds);
    const char *fmt_dummy;
    if (!format) format = &fmt_dummy;
    if (strcmp(split, "train") && strcmp(split, "test"))
        return bg_fail(ctx, BG_ERR_ARG, "--split '%s': want train or test", split);
    bool train = !strcmp(split, "train");
    char a[1200], b[1200];
    if (bg_is_file(src)) {
        if (bg_pack_is_pack(src)) {
            *format = "pack";
            return bg_pack_read(ctx, src, ds);
        }
        size_t l = strlen(src);
        if (l > 4 && !strcmp(src + l - 4, ".bin")) {
            *format = "cifar-bin";
            return bg_read_cifar_bin(ctx, &src, 1, 1, ds);
        }
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: neither a budgie pack nor a CIFAR .bin batch", src);
    }
    if (!bg_is_dir(src)) return bg_fail(ctx, BG_ERR_IO, "%s: no such file or directory", src);
    snprintf(a, sizeof a, "%s/train", src);
    snprintf(b, sizeof b, "%s/test", src);
    if (bg_is_dir(a) || bg_is_dir(b)) { /* train/ and test/ image folders (one may be absent) */
        bg_folder_opts o = {.max_per_class = max_per_class};
        *format = "folders";
        if (!bg_is_dir(train ? a : b)) return bg_fail(ctx, BG_ERR_IO, "%s: has no %s/ folder", src, split);
        return bg_read_image_folder(ctx, train ? a : b, &o, ds);
    }
    snprintf(a, sizeof a, "%s/data_batch_1.bin", src);
    if (bg_is_file(a)) {
        char p[5][1200];
        const char *ps[5];
        for (int i = 0; i < 5; i++) snprintf(p[i], sizeof p[i], "%s/data_batch_%d.bin", src, i + 1), ps[i] = p[i];
        snprintf(b, sizeof b, "%s/test_batch.bin", src);
        const char *tb = b;
        *format = "cifar-bin";
        return train ? bg_read_cifar_bin(ctx, ps, 5, 1, ds) : bg_read_cifar_bin(ctx, &tb, 1, 1, ds);
    }
    snprintf(a, sizeof a, "%s/%s.bin", src, split);
    if (bg_is_file(a)) {
        const char *pa = a;
        *format = "cifar100-bin";
        return bg_read_cifar_bin(ctx, &pa, 1, 2, ds);
    }
    char ti[1200], tl[1200];
    if (bg_find_idx(src, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte", ti, sizeof ti) &&
        bg_find_idx(src, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte", tl, sizeof tl)) {
        *format = "idx";
        return bg_read_idx(ctx, ti, tl, ds);
    }
    bg_folder_opts o = {.max_per_class = max_per_class};
    *format = "folder";
    return bg_read_image_folder(ctx, src, &o, ds);
}

static void pack_usage(FILE *o)
{
    fprintf(o,
        "usage: budgie data pack SRC OUT.bgpk [--split train|test] [--max-per-class K]\n"
        "\n"
        "Writes one split of a data set as a budgie pack: a header (magic, version,\n"
        "count, shape, class names, CRC32s), int32 labels and raw uint8 HWC pixels,\n"
        "loaded later with three reads and no decoding (format: augment/pack.h).\n"
        "SRC is one of:\n"
        "  DIR with train/ and/or test/ image folders  (--split picks one; default train)\n"
        "  DIR with CIFAR-10 data_batch_{1..5}.bin + test_batch.bin, or CIFAR-100\n"
        "      train.bin + test.bin, or MNIST-style {train,t10k}-{images,labels} idx files\n"
        "  DIR/<class>/<image>.jpg                 (one image folder; labels = sorted class names)\n"
        "  FILE.bin                                 (one CIFAR-10 binary batch)\n"
        "--max-per-class K keeps the first K images (by name) of each class folder.\n");
}

int bg_data_pack(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL}, *split = "train";
    int npos = 0;
    int64_t max_per_class = 0;
    const bg_opt opts[] = {
        {.name = "split", .type = BG_OPT_CHOICE, .dst = &split, .choices = "train|test"},
        {.name = "max-per-class", .type = BG_OPT_INT, .dst = &max_per_class, .min = 0, .max = 1e9},
    };
    const int prc = bg_opts_parse("data pack", opts, 2, argc, argv, pos, 2, &npos);
    if (prc == 1) {
        pack_usage(stdout);
        return 0;
    }
    if (prc) return prc;
    if (npos != 2) {
        pack_usage(stderr);
        return 2;
    }
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) return fprintf(stderr, "budgie data pack: %s\n", bg_errmsg(&ctx)), 1;
    bg_dataset ds;
    const char *fmt = "?";
    bg_status s = bg_data_open(&ctx, pos[0], split, (int)max_per_class, &ds, &fmt);
    if (!s) s = bg_pack_write(&ctx, &ds, pos[1]);
    if (s) {
        fprintf(stderr, "budgie data pack: %s\n", bg_errmsg(&ctx));
    } else {
        printf("packed %lld images %dx%dx%d, %d classes (%s: %s) -> %s\n", (long long)ds.n, ds.h, ds.w, ds.c,
               ds.n_classes, fmt, pos[0], pos[1]);
        if (ds.n_skipped) printf("skipped %lld files (first: %s)\n", (long long)ds.n_skipped, ds.skip_note);
    }
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
    return s ? 1 : 0;
}

static void usage(FILE *o)
{
    fprintf(o,
        "usage: budgie data SUBVERB [options]   (budgie data SUBVERB --help for each)\n"
        "  pack SRC OUT.bgpk        write a data set split as one packed file\n"
        "  preview SPEC --out PNG   a grid of augmented training samples with their labels\n"
        "  bench                    images/s of the CPU augmentation pipelines (one core)\n");
}

int bg_cmd_data(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "pack")) return bg_data_pack(argc - 1, argv + 1);
    if (!strcmp(argv[1], "preview")) return bg_data_preview(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench")) return bg_data_bench(argc - 1, argv + 1);
    fprintf(stderr, "budgie data: unknown sub-verb '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
