#include "data_source.h"
#include <stdio.h>
#include <sys/stat.h>

bool bg_is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

bool bg_is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool bg_find_idx(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", dir, name);
    if (bg_is_file(out)) return true;
    snprintf(out, n, "%s/%s.gz", dir, name);
    return bg_is_file(out);
}

bg_status bg_open_train_test(bg_ctx *ctx, const char *dir, int max_per_class, bg_dataset *train, bg_dataset *test,
                             const char **format)
{
    char a[1200], b[1200];
    bg_status s;
    if (!bg_is_dir(dir)) return bg_fail(ctx, BG_ERR_IO, "data: '%s' is not a directory", dir);
    snprintf(a, sizeof a, "%s/train", dir);
    snprintf(b, sizeof b, "%s/test", dir);
    if (bg_is_dir(a) && bg_is_dir(b)) {
        bg_folder_opts o = {.max_per_class = max_per_class, .skip_bad = false};
        *format = "folders";
        if ((s = bg_read_image_folder(ctx, a, &o, train))) return s;
        if ((s = bg_read_image_folder(ctx, b, &o, test))) return bg_dataset_free(train), s;
        return BG_OK;
    }
    snprintf(a, sizeof a, "%s/data_batch_1.bin", dir);
    if (bg_is_file(a)) {
        char p[5][1200];
        const char *ps[5];
        for (int i = 0; i < 5; i++) snprintf(p[i], sizeof p[i], "%s/data_batch_%d.bin", dir, i + 1), ps[i] = p[i];
        snprintf(b, sizeof b, "%s/test_batch.bin", dir);
        const char *tb = b;
        *format = "cifar-bin";
        if ((s = bg_read_cifar_bin(ctx, ps, 5, 1, train))) return s;
        if ((s = bg_read_cifar_bin(ctx, &tb, 1, 1, test))) return bg_dataset_free(train), s;
        return BG_OK;
    }
    char ti[1200], tl[1200], vi[1200], vl[1200];
    if (bg_find_idx(dir, "train-images-idx3-ubyte", ti, sizeof ti) && bg_find_idx(dir, "train-labels-idx1-ubyte", tl, sizeof tl) &&
        bg_find_idx(dir, "t10k-images-idx3-ubyte", vi, sizeof vi) && bg_find_idx(dir, "t10k-labels-idx1-ubyte", vl, sizeof vl)) {
        *format = "idx";
        if ((s = bg_read_idx(ctx, ti, tl, train))) return s;
        if ((s = bg_read_idx(ctx, vi, vl, test))) return bg_dataset_free(train), s;
        return BG_OK;
    }
    return bg_fail(ctx, BG_ERR_FORMAT,
                   "data: '%s' holds no known data set (train/ and test/ image folders, CIFAR data_batch_*.bin, "
                   "or MNIST-style idx files)", dir);
}
