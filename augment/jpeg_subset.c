/* Seeded subsets of a JPEG list (see bg_jpeg_list_subset in jpeg_loader.h).
 * The samplers take a bg_dataset; a list's labels are all they read, so a
 * pixel-less view of the list stands in for one, and a JPEG run draws its
 * subsets exactly as an in-memory run of the same labels would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"
#include "jpeg_loader.h"

/* The entries idx[0..n) of src, in that order, with copies of the strings. */
static bg_status take(bg_ctx *ctx, const bg_jpeg_list *src, const char *name, const int64_t *idx, int64_t n,
                      bg_jpeg_list *out)
{
    memset(out, 0, sizeof *out);
    out->paths = calloc((size_t)(n > 0 ? n : 1), sizeof *out->paths);
    out->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *out->labels);
    out->class_names = calloc((size_t)src->n_classes, sizeof *out->class_names);
    bool ok = out->paths && out->labels && out->class_names;
    if (ok) out->n_classes = src->n_classes;
    for (int c = 0; ok && c < src->n_classes; c++) ok = (out->class_names[c] = strdup(src->class_names[c])) != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        ok = (out->paths[i] = strdup(src->paths[idx[i]])) != NULL;
        if (ok) out->labels[i] = src->labels[idx[i]], out->n = i + 1;
    }
    if (ok) return BG_OK;
    bg_jpeg_list_free(out);
    return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory for a list of %lld images", name, (long long)n);
}

bg_status bg_jpeg_list_subset(bg_ctx *ctx, const bg_jpeg_list *src, const char *name, int keep, uint64_t seed,
                              int split, uint64_t split_seed, bg_jpeg_list *out, bg_jpeg_list *split_out)
{
    memset(out, 0, sizeof *out);
    if (split_out) memset(split_out, 0, sizeof *split_out);
    if (split > 0 && !split_out) return bg_fail(ctx, BG_ERR_ARG, "bg_jpeg_list_subset: a split needs split_out");
    bg_dataset view = {.n = src->n, .labels = src->labels, .n_classes = src->n_classes,
                       .class_names = src->class_names};
    snprintf(view.source, sizeof view.source, "%s", name);
    int64_t *idx = NULL, n = 0, *val = NULL, n_val = 0, *rest = NULL, n_rest = 0;
    bg_status s;
    if (keep > 0) {
        s = bg_subset_per_class(ctx, &view, keep, seed, &idx, &n);
    } else {
        n = src->n;
        idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
        s = idx ? BG_OK : bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", name);
        for (int64_t i = 0; !s && i < n; i++) idx[i] = i;
    }
    if (!s && split > 0) s = bg_split_per_class(ctx, &view, idx, n, split, split_seed, &val, &n_val, &rest, &n_rest);
    if (!s) s = split > 0 ? take(ctx, src, name, rest, n_rest, out) : take(ctx, src, name, idx, n, out);
    if (!s && split > 0) s = take(ctx, src, name, val, n_val, split_out);
    if (s) bg_jpeg_list_free(out);
    free(idx), free(val), free(rest);
    return s;
}
