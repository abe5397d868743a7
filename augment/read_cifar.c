/* Official CIFAR-10 / CIFAR-100 binary batches (data_batch_N.bin, test.bin,
 * train.bin): fixed-size records, label byte(s) then 32x32 R, G and B planes.
 * Sizes are checked for every file before anything is allocated, so a wrong
 * file (or the wrong n_label_bytes) fails fast with its name and size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "dataset.h"

#define CIFAR_SIDE 32
#define CIFAR_PLANE (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_PIXELS (3 * CIFAR_PLANE)

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};

/* Non-empty lines of `path`, if it has exactly `want` of them; 0 otherwise
 * (the names are a convenience; a missing or odd file is not an error). */
static int read_names_file(const char *path, int want, char **names)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int n = 0, ok = 1;
    while (fgets(line, sizeof line, f)) {
        size_t l = strcspn(line, "\r\n");
        while (l > 0 && (line[l - 1] == ' ' || line[l - 1] == '\t')) l--;
        line[l] = 0;
        if (!l) continue;
        if (n == want || !(names[n] = strdup(line))) { ok = 0; break; }
        n++;
    }
    fclose(f);
    if (ok && n == want) return 1;
    for (int i = 0; i < n; i++) { free(names[i]); names[i] = NULL; }
    return 0;
}

static bg_status set_names(bg_ctx *ctx, bg_dataset *ds, const char *first_path, int fine)
{
    int nk = fine ? 100 : 10;
    ds->class_names = calloc((size_t)nk, sizeof(char *));
    if (!ds->class_names) return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate class names", first_path);
    ds->n_classes = nk;
    /* The official archives ship the names beside the batches. */
    const char *slash = strrchr(first_path, '/');
    size_t dl = slash ? (size_t)(slash - first_path) + 1 : 0;
    const char *leaf = fine ? "fine_label_names.txt" : "batches.meta.txt";
    char *meta = malloc(dl + strlen(leaf) + 1);
    if (!meta) return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate class names", first_path);
    memcpy(meta, first_path, dl);
    strcpy(meta + dl, leaf);
    int found = read_names_file(meta, nk, ds->class_names);
    free(meta);
    if (found) return BG_OK;
    for (int k = 0; k < nk; k++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", k);
        if (!(ds->class_names[k] = strdup(fine ? buf : cifar10_names[k])))
            return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate class names", first_path);
    }
    return BG_OK;
}

/* Convert one file's records into ds starting at image `at`. */
static bg_status read_records(bg_ctx *ctx, const char *path, int64_t count, int nlab, int64_t at,
                              bg_dataset *ds)
{
    FILE *f = fopen(path, "rb");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const size_t rec = (size_t)nlab + CIFAR_PIXELS;
    enum { CHUNK = 256 }; /* records per read: few syscalls, small buffer */
    unsigned char *buf = malloc(CHUNK * rec);
    if (!buf) {
        fclose(f);
        return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate a read buffer", path);
    }
    bg_status st = BG_OK;
    for (int64_t r0 = 0; r0 < count && st == BG_OK; r0 += CHUNK) {
        size_t m = (size_t)(count - r0 < CHUNK ? count - r0 : CHUNK);
        size_t got = fread(buf, rec, m, f);
        if (got != m) {
            st = bg_fail(ctx, BG_ERR_IO, "%s: short read at record %lld%s%s", path,
                         (long long)(r0 + (int64_t)got), ferror(f) ? ": " : " (file shrank?)",
                         ferror(f) ? strerror(errno) : "");
            break;
        }
        for (size_t r = 0; r < m; r++) {
            const unsigned char *src = buf + r * rec;
            int label = src[nlab - 1]; /* CIFAR-100: coarse, fine; the fine one is last */
            int64_t i = at + r0 + (int64_t)r;
            if (label >= ds->n_classes) {
                st = bg_fail(ctx, BG_ERR_FORMAT, "%s: record %lld has label %d, outside 0..%d",
                             path, (long long)(r0 + (int64_t)r), label, ds->n_classes - 1);
                break;
            }
            ds->labels[i] = label;
            /* Planar RGB -> interleaved HWC. */
            const unsigned char *pr = src + nlab, *pg = pr + CIFAR_PLANE, *pb = pg + CIFAR_PLANE;
            uint8_t *dst = bg_dataset_image(ds, i);
            for (int p = 0; p < CIFAR_PLANE; p++) {
                dst[3 * p + 0] = pr[p];
                dst[3 * p + 1] = pg[p];
                dst[3 * p + 2] = pb[p];
            }
        }
    }
    free(buf);
    fclose(f);
    return st;
}

bg_status bg_read_cifar_bin(bg_ctx *ctx, const char *const *paths, int n_paths,
                            int n_label_bytes, bg_dataset *ds)
{
    if (!ds) return bg_fail(ctx, BG_ERR_ARG, "bg_read_cifar_bin: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!paths || n_paths <= 0)
        return bg_fail(ctx, BG_ERR_ARG, "bg_read_cifar_bin: no files given (n_paths=%d)", n_paths);
    for (int i = 0; i < n_paths; i++)
        if (!paths[i]) return bg_fail(ctx, BG_ERR_ARG, "bg_read_cifar_bin: paths[%d] is NULL", i);
    if (n_label_bytes != 1 && n_label_bytes != 2)
        return bg_fail(ctx, BG_ERR_ARG, "%s: n_label_bytes must be 1 (CIFAR-10) or 2 (CIFAR-100), got %d",
                       paths[0], n_label_bytes);
    snprintf(ds->source, sizeof ds->source, "%s", paths[0]);
    const int64_t rec = n_label_bytes + CIFAR_PIXELS;

    int64_t *counts = malloc((size_t)n_paths * sizeof *counts);
    if (!counts) return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", paths[0]);
    int64_t total = 0;
    bg_status st = BG_OK;
    for (int i = 0; i < n_paths && st == BG_OK; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0)
            st = bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", paths[i], strerror(errno));
        else if (!S_ISREG(sb.st_mode))
            st = bg_fail(ctx, BG_ERR_IO, "%s: not a regular file", paths[i]);
        else if (sb.st_size == 0 || sb.st_size % rec != 0)
            st = bg_fail(ctx, BG_ERR_FORMAT,
                         "%s: size %lld bytes is not a positive multiple of the %lld-byte record "
                         "(%d label byte%s + 3072 pixels): not a CIFAR-%s binary batch", paths[i],
                         (long long)sb.st_size, (long long)rec, n_label_bytes,
                         n_label_bytes == 1 ? "" : "s", n_label_bytes == 1 ? "10" : "100");
        else {
            counts[i] = sb.st_size / rec;
            total += counts[i];
        }
    }
    if (st == BG_OK) st = bg_dataset_alloc(ctx, ds, total, CIFAR_SIDE, CIFAR_SIDE, 3, paths[0]);
    if (st == BG_OK) st = set_names(ctx, ds, paths[0], n_label_bytes == 2);
    int64_t at = 0;
    for (int i = 0; i < n_paths && st == BG_OK; i++) {
        st = read_records(ctx, paths[i], counts[i], n_label_bytes, at, ds);
        at += counts[i];
    }
    free(counts);
    if (st != BG_OK) bg_dataset_free(ds);
    return st;
}
