/* idx files (MNIST, Fashion-MNIST): a big-endian header (magic 0x0000080N:
 * unsigned bytes, N dimensions; then N u32 sizes) and the raw bytes.
 * zlib's gzopen reads gzip and plain files alike, so both forms work. The
 * payload must match the header exactly: a short or over-long file usually
 * means images and labels from different downloads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include "dataset.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u

/* Bytes read (up to n, fewer at end of file), or -1 with msg set. */
static int64_t gz_read_all(gzFile gz, const char *path, void *dst, size_t n, char *msg, size_t msgsz)
{
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done < (1u << 30) ? n - done : (1u << 30); /* gzread takes an unsigned */
        int got = gzread(gz, (char *)dst + done, (unsigned)chunk);
        if (got < 0) {
            int zerr = 0;
            const char *zm = gzerror(gz, &zerr);
            snprintf(msg, msgsz, "%s: read failed: %s", path,
                     zerr == Z_ERRNO ? strerror(errno) : zm);
            return -1;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    return (int64_t)done;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct {
    gzFile gz;
    uint32_t dims[3];
} idx_file;

/* Open `path` and check its magic and header; `ndim` is 3 (images) or 1. */
static bg_status idx_open(bg_ctx *ctx, const char *path, int ndim, idx_file *f)
{
    char msg[512];
    f->gz = gzopen(path, "rb");
    if (!f->gz) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char hdr[16];
    size_t hbytes = 4 + 4 * (size_t)ndim;
    int64_t got = gz_read_all(f->gz, path, hdr, hbytes, msg, sizeof msg);
    if (got < 0) return bg_fail(ctx, BG_ERR_IO, "%s", msg);
    uint32_t want = ndim == 3 ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
    if (got < 4)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: %lld bytes, too short for an idx header", path,
                       (long long)got);
    uint32_t magic = be32(hdr);
    if (magic != want)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: idx magic is 0x%08x, want 0x%08x (%s)", path, magic,
                       want, ndim == 3 ? "idx3-ubyte images" : "idx1-ubyte labels");
    if ((size_t)got < hbytes)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: header truncated (%lld of %zu bytes)", path,
                       (long long)got, hbytes);
    for (int d = 0; d < ndim; d++) f->dims[d] = be32(hdr + 4 + 4 * d);
    return BG_OK;
}

/* Read exactly `n` payload bytes and insist the file ends there. */
static bg_status idx_payload(bg_ctx *ctx, const char *path, gzFile gz, void *dst, uint64_t n,
                             const char *what)
{
    char msg[512];
    int64_t got = gz_read_all(gz, path, dst, (size_t)n, msg, sizeof msg);
    if (got < 0) return bg_fail(ctx, BG_ERR_FORMAT, "%s", msg);
    if ((uint64_t)got != n)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: truncated: the header promises %llu bytes of %s, "
                       "the file holds %lld", path, (unsigned long long)n, what, (long long)got);
    unsigned char extra;
    got = gz_read_all(gz, path, &extra, 1, msg, sizeof msg);
    if (got < 0) return bg_fail(ctx, BG_ERR_FORMAT, "%s", msg);
    if (got > 0)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: longer than its header says (%llu bytes of %s "
                       "then more data)", path, (unsigned long long)n, what);
    return BG_OK;
}

/* Bound what a lying header can make us allocate: deflate expands at most
 * ~1032x, so a file of S bytes (gzip or plain) cannot hold more than that. */
static bg_status check_fits(bg_ctx *ctx, const char *path, uint64_t payload)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return BG_OK; /* opened already; the read reports problems */
    uint64_t limit = 1100ull * (uint64_t)sb.st_size + (1u << 20);
    if (payload > limit)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: header promises %llu bytes, more than a %lld-byte "
                       "file can hold", path, (unsigned long long)payload, (long long)sb.st_size);
    return BG_OK;
}

bg_status bg_read_idx(bg_ctx *ctx, const char *images_path, const char *labels_path,
                      bg_dataset *ds)
{
    if (!ds) return bg_fail(ctx, BG_ERR_ARG, "bg_read_idx: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!images_path || !labels_path)
        return bg_fail(ctx, BG_ERR_ARG, "bg_read_idx: %s path is NULL", images_path ? "labels" : "images");
    snprintf(ds->source, sizeof ds->source, "%s", images_path);
    idx_file im = {0}, lb = {0};
    bg_status st = idx_open(ctx, images_path, 3, &im);
    if (st == BG_OK) st = idx_open(ctx, labels_path, 1, &lb);
    uint64_t n = im.dims[0], rows = im.dims[1], cols = im.dims[2];
    if (st == BG_OK && (n == 0 || rows == 0 || cols == 0))
        st = bg_fail(ctx, BG_ERR_FORMAT, "%s: header declares %llu images of %llux%llu", images_path,
                     (unsigned long long)n, (unsigned long long)rows, (unsigned long long)cols);
    if (st == BG_OK && lb.dims[0] != n)
        st = bg_fail(ctx, BG_ERR_FORMAT, "%s has %u labels but %s has %llu images", labels_path,
                     lb.dims[0], images_path, (unsigned long long)n);
    if (st == BG_OK && (rows > 65536 || cols > 65536))
        st = bg_fail(ctx, BG_ERR_FORMAT, "%s: image size %llux%llu is implausible", images_path,
                     (unsigned long long)rows, (unsigned long long)cols);
    if (st == BG_OK) st = check_fits(ctx, images_path, n * rows * cols);
    if (st == BG_OK) st = check_fits(ctx, labels_path, n);
    if (st == BG_OK) st = bg_dataset_alloc(ctx, ds, (int64_t)n, (int)rows, (int)cols, 1, images_path);
    if (st == BG_OK) st = idx_payload(ctx, images_path, im.gz, ds->pixels, n * rows * cols, "pixels");
    /* Labels arrive as bytes; widen in place from the back of the i32 array. */
    if (st == BG_OK) st = idx_payload(ctx, labels_path, lb.gz, ds->labels, n, "labels");
    if (st == BG_OK) {
        const uint8_t *b = (const uint8_t *)ds->labels;
        int maxl = 0;
        for (int64_t i = (int64_t)n - 1; i >= 0; i--) {
            int v = b[i];
            ds->labels[i] = v;
            if (v > maxl) maxl = v;
        }
        st = bg_dataset_number_names(ctx, ds, maxl + 1);
    }
    if (im.gz) gzclose(im.gz);
    if (lb.gz) gzclose(lb.gz);
    if (st != BG_OK) bg_dataset_free(ds);
    return st;
}
