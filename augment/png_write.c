/* Write an 8-bit image as PNG through libpng (augmentation previews).
 * libpng reports errors by longjmp; the handler keeps its message so the
 * caller gets a bg_status naming the path instead of an abort. The file is
 * written beside its destination and renamed into place, so an interrupted
 * write never leaves a truncated PNG under the real name. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"

typedef struct {
    char msg[256];
} png_errbuf;

static void on_png_error(png_structp png, png_const_charp m)
{
    png_errbuf *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", m ? m : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp m)
{
    (void)png;
    (void)m; /* warnings do not change the output; nothing to report */
}

/* libpng's part, isolated so the setjmp frame holds nothing we modify. */
static int encode(FILE *f, int w, int h, int channels, const uint8_t *pixels, png_errbuf *e)
{
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e, on_png_error, on_png_warning);
    if (!png) {
        snprintf(e->msg, sizeof e->msg, "cannot create a PNG writer");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(e->msg, sizeof e->msg, "cannot create a PNG writer");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const size_t stride = (size_t)w * (size_t)channels;
    for (int y = 0; y < h; y++) png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

bg_status bg_write_png(bg_ctx *ctx, const char *path, int w, int h, int channels,
                       const uint8_t *pixels)
{
    if (!path || !pixels) return bg_fail(ctx, BG_ERR_ARG, "bg_write_png: NULL %s", path ? "pixels" : "path");
    if (w <= 0 || h <= 0 || channels < 1 || channels > 4)
        return bg_fail(ctx, BG_ERR_ARG, "%s: cannot write a %dx%d image with %d channels as PNG", path,
                       w, h, channels);
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    if (!tmp) return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        bg_status st = bg_fail(ctx, BG_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    png_errbuf e = {""};
    int rc = encode(f, w, h, channels, pixels, &e);
    int close_err = fclose(f) != 0 ? errno : 0;
    bg_status st = BG_OK;
    if (rc != 0)
        st = bg_fail(ctx, BG_ERR_IO, "%s: PNG write failed: %s", path, e.msg);
    else if (close_err)
        st = bg_fail(ctx, BG_ERR_IO, "%s: write failed: %s", path, strerror(close_err));
    else if (rename(tmp, path) != 0)
        st = bg_fail(ctx, BG_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (st != BG_OK) remove(tmp);
    free(tmp);
    return st;
}
