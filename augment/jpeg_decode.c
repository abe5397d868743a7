/* JPEG decoding for single images and the JPEG training transform:
 * TurboJPEG with optional DCT-domain scaling (decoding at 1/2, 1/4 or 1/8
 * size costs a fraction of a full decode and replaces most of a large
 * downscale), then random-resized-crop and flip. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include "transforms.h"

void bg_jpeg_free(bg_jpeg *j)
{
    if (!j) return;
    if (j->tj) tjDestroy((tjhandle)j->tj);
    free(j->pixels);
    memset(j, 0, sizeof *j);
}

/* A clear "not a JPEG" before the decoder's own complaint. */
static bg_status check_magic(bg_ctx *ctx, const uint8_t *data, size_t n, const char *name)
{
    if (n == 0) return bg_fail(ctx, BG_ERR_FORMAT, "%s: empty file, not a JPEG image", name);
    if (n < 4 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        uint8_t b[4] = {0, 0, 0, 0};
        memcpy(b, data, n < 4 ? n : 4);
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: not a JPEG image (starts with %02x %02x %02x %02x)", name, b[0], b[1],
                       b[2], b[3]);
    }
    return BG_OK;
}

/* TurboJPEG 2.1 leaves a handle unusable after some failures; start afresh. */
static void reset(bg_jpeg *j)
{
    if (j->tj) tjDestroy((tjhandle)j->tj);
    j->tj = NULL;
}

bg_status bg_jpeg_size(bg_ctx *ctx, bg_jpeg *j, const uint8_t *data, size_t n, const char *name, int *w, int *h)
{
    if (!j || !data || !w || !h) return bg_fail(ctx, BG_ERR_ARG, "%s: bg_jpeg_size: NULL argument", name ? name : "jpeg");
    if (!name) name = "<memory>";
    bg_status s = check_magic(ctx, data, n, name);
    if (s) return s;
    if (!j->tj && !(j->tj = tjInitDecompress())) return bg_fail(ctx, BG_ERR_OOM, "%s: cannot create a JPEG decoder", name);
    int sub = 0, cs = 0;
    *w = 0, *h = 0;
    if (tjDecompressHeader3((tjhandle)j->tj, data, (unsigned long)n, w, h, &sub, &cs) != 0) {
        bg_fail(ctx, BG_ERR_FORMAT, "%s: corrupt JPEG header: %s", name, tjGetErrorStr2((tjhandle)j->tj));
        reset(j);
        return BG_ERR_FORMAT;
    }
    /* A file cut before its frame header "succeeds" without a size. */
    if (*w <= 0 || *h <= 0) {
        reset(j);
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: corrupt or truncated JPEG: its %zu bytes end before the image size",
                       name, n);
    }
    return BG_OK;
}

bg_status bg_jpeg_decode(bg_ctx *ctx, bg_jpeg *j, const uint8_t *data, size_t n, const char *name, int min_w,
                         int min_h, const uint8_t **pixels, int *w, int *h)
{
    if (!name) name = "<memory>";
    if (!pixels) return bg_fail(ctx, BG_ERR_ARG, "%s: bg_jpeg_decode: NULL argument", name);
    int fw, fh;
    bg_status s = bg_jpeg_size(ctx, j, data, n, name, &fw, &fh);
    if (s) return s;
    /* The smallest scaled size still covering min_w x min_h. */
    int dw = fw, dh = fh;
    if (min_w > 0 && min_h > 0) {
        int nsf = 0;
        tjscalingfactor *sf = tjGetScalingFactors(&nsf);
        for (int i = 0; sf && i < nsf; i++) {
            if (sf[i].num > sf[i].denom) continue; /* never upscale */
            int sw = TJSCALED(fw, sf[i]), sh = TJSCALED(fh, sf[i]);
            if (sw >= min_w && sh >= min_h && (size_t)sw * sh < (size_t)dw * dh) dw = sw, dh = sh;
        }
    }
    size_t need = (size_t)dw * (size_t)dh * 3;
    if (need > j->cap) {
        uint8_t *p = realloc(j->pixels, need);
        if (!p) return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate a %dx%d image", name, dw, dh);
        j->pixels = p;
        j->cap = need;
    }
    /* STOPONWARNING: a truncated file only warns ("premature end of data")
     * and would otherwise decode to a grey-padded image. */
    if (tjDecompress2((tjhandle)j->tj, data, (unsigned long)n, j->pixels, dw, 0, dh, TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
        bg_fail(ctx, BG_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", name, tjGetErrorStr2((tjhandle)j->tj));
        reset(j);
        return BG_ERR_FORMAT;
    }
    *pixels = j->pixels;
    if (w) *w = dw;
    if (h) *h = dh;
    return BG_OK;
}

bg_status bg_read_file(bg_ctx *ctx, const char *path, uint8_t **data, size_t *n)
{
    if (!path || !data || !n) return bg_fail(ctx, BG_ERR_ARG, "bg_read_file: NULL argument");
    *data = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return bg_fail(ctx, BG_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate %zu bytes to read it", path, size);
    }
    size_t got = size ? fread(buf, 1, size, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (got != size) {
        free(buf);
        return bg_fail(ctx, BG_ERR_IO, "%s: read %zu of %zu bytes%s", path, got, size, err ? " (read error)" : "");
    }
    *data = buf;
    *n = size;
    return BG_OK;
}

bg_status bg_jpeg_rrc(bg_ctx *ctx, bg_jpeg *j, const uint8_t *data, size_t n, const char *name, int out,
                      const bg_rrc_opts *o, bool flip, uint64_t seed, uint64_t step, uint32_t pos, uint8_t *dst)
{
    if (!o || !dst || out <= 0) return bg_fail(ctx, BG_ERR_ARG, "%s: bg_jpeg_rrc: bad arguments", name ? name : "jpeg");
    int fw, fh;
    bg_status s = bg_jpeg_size(ctx, j, data, n, name, &fw, &fh);
    if (s) return s;
    bg_box b = bg_rrc_box(fw, fh, o, seed, step, pos);
    /* Decode small enough that the crop still has >= out pixels each way. */
    int min_w = (int)(((int64_t)out * fw + b.w - 1) / b.w), min_h = (int)(((int64_t)out * fh + b.h - 1) / b.h);
    const uint8_t *px;
    int dw, dh;
    if ((s = bg_jpeg_decode(ctx, j, data, n, name, min_w, min_h, &px, &dw, &dh))) return s;
    if (dw != fw || dh != fh) { /* map the box onto the scaled image */
        int x0 = (int)((int64_t)b.x * dw / fw), y0 = (int)((int64_t)b.y * dh / fh);
        int x1 = (int)(((int64_t)(b.x + b.w) * dw + fw - 1) / fw), y1 = (int)(((int64_t)(b.y + b.h) * dh + fh - 1) / fh);
        b.x = x0, b.y = y0, b.w = (x1 > dw ? dw : x1) - x0, b.h = (y1 > dh ? dh : y1) - y0;
    }
    bg_u32x4 r = bg_aug_block(seed, step, pos, BG_TAG_BATCH);
    const uint8_t *crop = px + ((size_t)b.y * dw + b.x) * 3;
    if (flip && (r.v[2] & 1u)) return bg_resize_bilinear_mirror(ctx, crop, b.w, b.h, 3, (size_t)dw * 3, dst, out, out);
    return bg_resize_bilinear(ctx, crop, b.w, b.h, 3, (size_t)dw * 3, dst, out, out);
}
