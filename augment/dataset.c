/* The bg_dataset container: allocation shared by the readers, and release. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"

void bg_dataset_free(bg_dataset *ds)
{
    if (!ds) return;
    free(ds->pixels);
    free(ds->labels);
    if (ds->class_names)
        for (int k = 0; k < ds->n_classes; k++) free(ds->class_names[k]);
    free(ds->class_names);
    memset(ds, 0, sizeof *ds);
}

bg_status bg_dataset_alloc(bg_ctx *ctx, bg_dataset *ds, int64_t n, int h, int w, int c,
                           const char *file)
{
    if (n < 0 || h <= 0 || w <= 0 || c <= 0)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: bad dataset shape n=%lld h=%d w=%d c=%d", file,
                       (long long)n, h, w, c);
    size_t per = (size_t)h * (size_t)w * (size_t)c;
    /* Guard the multiplication: header fields of a broken file can be huge. */
    if ((uint64_t)n > (SIZE_MAX / 2) / per)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: %lld images of %dx%dx%d do not fit in memory", file,
                       (long long)n, h, w, c);
    /* malloc(0) may return NULL; one byte keeps "NULL means failure" simple. */
    ds->pixels = malloc(n ? (size_t)n * per : 1);
    ds->labels = malloc(n ? (size_t)n * sizeof(int32_t) : 1);
    if (!ds->pixels || !ds->labels) {
        free(ds->pixels);
        free(ds->labels);
        ds->pixels = NULL;
        ds->labels = NULL;
        return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate %lld images of %dx%dx%d", file,
                       (long long)n, h, w, c);
    }
    ds->n = n;
    ds->h = h;
    ds->w = w;
    ds->c = c;
    return BG_OK;
}

bg_status bg_dataset_number_names(bg_ctx *ctx, bg_dataset *ds, int n_classes)
{
    ds->class_names = calloc(n_classes > 0 ? (size_t)n_classes : 1, sizeof(char *));
    if (!ds->class_names) return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate class names", ds->source);
    ds->n_classes = n_classes;
    for (int k = 0; k < n_classes; k++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", k);
        ds->class_names[k] = strdup(buf);
        if (!ds->class_names[k])
            return bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate class names", ds->source);
    }
    return BG_OK;
}
