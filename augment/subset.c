/* Seeded samplers: a class-balanced subset and the per-epoch shuffle.
 * Draws come from Philox keyed by the seed; the counter names the draw
 * (see the stream layout in dataset.h), so a result is a pure function of
 * (seed, dataset labels) or (seed, epoch, n). */
#include <stdlib.h>
#include <string.h>
#include "dataset.h"
#include "../engine/philox.h"

#define TAG_SUBSET 0x53554253u  /* "SUBS" */
#define TAG_SHUFFLE 0x53485546u /* "SHUF" */

/* Uniform in [0, bound) from 64 random bits. The modulo bias is at most
 * bound / 2^64, far below anything a dataset index could show. */
static uint64_t draw_below(uint64_t seed, uint64_t i, uint32_t stream, uint32_t tag, uint64_t bound)
{
    bg_u32x4 ctr = {{(uint32_t)i, (uint32_t)(i >> 32), stream, tag}};
    bg_u32x4 r = bg_philox4x32_10(ctr, seed);
    uint64_t x = (uint64_t)r.v[0] | (uint64_t)r.v[1] << 32;
    return x % bound;
}

void bg_shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t epoch)
{
    if (!idx) return;
    /* Forward Fisher-Yates: draw i picks position i's element from [i, n). */
    for (int64_t i = 0; i + 1 < n; i++) {
        int64_t j = i + (int64_t)draw_below(seed, (uint64_t)i, (uint32_t)epoch, TAG_SHUFFLE,
                                            (uint64_t)(n - i));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

bg_status bg_subset_per_class(bg_ctx *ctx, const bg_dataset *ds, int n_per_class, uint64_t seed,
                              int64_t **idx_out, int64_t *n_out)
{
    if (!ds || !idx_out || !n_out)
        return bg_fail(ctx, BG_ERR_ARG, "bg_subset_per_class: NULL argument");
    *idx_out = NULL;
    *n_out = 0;
    if (n_per_class <= 0)
        return bg_fail(ctx, BG_ERR_ARG, "%s: n_per_class must be positive, got %d", ds->source,
                       n_per_class);
    int nk = ds->n_classes;
    if (nk <= 0) return bg_fail(ctx, BG_ERR_ARG, "%s: dataset has no classes", ds->source);

    /* Counting sort by label: start[k]..start[k+1] holds class k's indices, ascending. */
    int64_t *start = calloc((size_t)nk + 1, sizeof *start);
    int64_t *byclass = malloc((ds->n ? (size_t)ds->n : 1) * sizeof *byclass);
    int64_t *out = NULL;
    bg_status st = BG_OK;
    if (!start || !byclass) {
        st = bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate a %d-per-class subset", ds->source,
                     n_per_class);
        goto done;
    }
    for (int64_t i = 0; i < ds->n; i++) {
        int32_t l = ds->labels[i];
        if (l < 0 || l >= nk) {
            st = bg_fail(ctx, BG_ERR_FORMAT, "%s: image %lld has label %d, outside 0..%d", ds->source,
                         (long long)i, (int)l, nk - 1);
            goto done;
        }
        start[l + 1]++;
    }
    for (int k = 0; k < nk; k++) {
        int64_t m = start[k + 1];
        if (m < n_per_class) {
            st = bg_fail(ctx, BG_ERR_ARG, "%s: class %d (%s) has %lld images, fewer than the %d "
                         "per class requested", ds->source, k,
                         ds->class_names && ds->class_names[k] ? ds->class_names[k] : "?",
                         (long long)m, n_per_class);
            goto done;
        }
        start[k + 1] += start[k];
    }
    if (!(out = malloc((size_t)nk * (size_t)n_per_class * sizeof *out))) {
        st = bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate a %d-per-class subset", ds->source,
                     n_per_class);
        goto done;
    }
    {
        int64_t *fill = malloc((size_t)nk * sizeof *fill);
        if (!fill) {
            st = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", ds->source);
            goto done;
        }
        memcpy(fill, start, (size_t)nk * sizeof *fill);
        for (int64_t i = 0; i < ds->n; i++) byclass[fill[ds->labels[i]]++] = i;
        free(fill);
    }
    for (int k = 0; k < nk; k++) {
        int64_t m = start[k + 1] - start[k];
        /* Partial Fisher-Yates: only the first n_per_class draws are made,
         * and draw i depends on (seed, class, i) alone. */
        int64_t *a = byclass + start[k];
        for (int i = 0; i < n_per_class; i++) {
            int64_t j = i + (int64_t)draw_below(seed, (uint64_t)i, (uint32_t)k, TAG_SUBSET,
                                                (uint64_t)(m - i));
            int64_t t = a[i];
            a[i] = a[j];
            a[j] = t;
            out[(size_t)k * (size_t)n_per_class + (size_t)i] = a[i];
        }
    }
    *idx_out = out;
    *n_out = (int64_t)nk * n_per_class;
    out = NULL;
done:
    free(start);
    free(byclass);
    free(out);
    return st;
}

bg_status bg_split_per_class(bg_ctx *ctx, const bg_dataset *ds, const int64_t *idx, int64_t n, int k_per_class,
                             uint64_t seed, int64_t **val, int64_t *n_val, int64_t **rest, int64_t *n_rest)
{
    *val = *rest = NULL;
    *n_val = *n_rest = 0;
    if (k_per_class <= 0) return bg_fail(ctx, BG_ERR_ARG, "%s: a split of %d per class", ds->source, k_per_class);
    const int nk = ds->n_classes;
    int64_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    int64_t *taken = calloc((size_t)(nk > 0 ? nk : 1), sizeof *taken);
    unsigned char *is_val = calloc((size_t)(n > 0 ? n : 1), 1);
    *val = malloc((size_t)nk * (size_t)k_per_class * sizeof **val + 1);
    *rest = malloc((size_t)(n > 0 ? n : 1) * sizeof **rest);
    bg_status st = BG_OK;
    if (!order || !taken || !is_val || !*val || !*rest) {
        st = bg_fail(ctx, BG_ERR_OOM, "%s: cannot allocate a %d-per-class split", ds->source, k_per_class);
        goto done;
    }
    /* positions 0..n-1 in a seeded order; the first k of each class go to val */
    for (int64_t i = 0; i < n; i++) order[i] = i;
    bg_shuffle(order, n, seed, 0);
    for (int64_t j = 0; j < n; j++) {
        const int32_t l = ds->labels[idx[order[j]]];
        if (taken[l] < k_per_class) taken[l]++, is_val[order[j]] = 1;
    }
    for (int k = 0; k < nk; k++)
        if (taken[k] < k_per_class || taken[k] == 0) {
            st = bg_fail(ctx, BG_ERR_ARG, "%s: class %d has %lld of the %d images a validation split takes from "
                         "each class (and training needs some left)", ds->source, k, (long long)taken[k], k_per_class);
            goto done;
        }
    for (int64_t i = 0; i < n; i++) {
        if (is_val[i]) (*val)[(*n_val)++] = idx[i];
        else (*rest)[(*n_rest)++] = idx[i];
    }
    for (int k = 0; k < nk && !st; k++) {
        int64_t left = 0;
        for (int64_t i = 0; i < *n_rest; i++) left += ds->labels[(*rest)[i]] == k;
        if (left == 0)
            st = bg_fail(ctx, BG_ERR_ARG, "%s: a validation split of %d per class leaves class %d no training image",
                         ds->source, k_per_class, k);
    }
done:
    free(order), free(taken), free(is_val);
    if (st) {
        free(*val), free(*rest);
        *val = *rest = NULL;
        *n_val = *n_rest = 0;
    }
    return st;
}
