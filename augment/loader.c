#include "loader.h"
#include <stdlib.h>
#include <string.h>

static bg_status all_indices(bg_ctx *ctx, const bg_dataset *ds, int64_t **idx, int64_t *n)
{
    *n = ds->n;
    *idx = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof **idx);
    if (!*idx) return bg_fail(ctx, BG_ERR_OOM, "loader: out of host memory");
    for (int64_t i = 0; i < ds->n; i++) (*idx)[i] = i;
    return BG_OK;
}

bg_status bg_loader_init(bg_loader *ld, bg_ctx *ctx, const bg_dataset *train, const bg_dataset *test,
                         int train_per_class, int test_per_class, int batch, const bg_batch_opts *train_opts,
                         const bg_batch_opts *test_opts, uint64_t seed)
{
    memset(ld, 0, sizeof *ld);
    ld->ctx = ctx;
    ld->train = train, ld->test = test;
    ld->batch = batch;
    ld->train_opts = *train_opts, ld->test_opts = *test_opts;
    ld->seed = seed;
    ld->order_epoch = -1;
    if (train->h != test->h || train->w != test->w || train->c != test->c)
        return bg_fail(ctx, BG_ERR_SHAPE, "loader: train images %dx%dx%d (%s) and test images %dx%dx%d (%s) differ",
                       train->h, train->w, train->c, train->source, test->h, test->w, test->c, test->source);
    bg_status s = train_per_class ? bg_subset_per_class(ctx, train, train_per_class, seed, &ld->train_idx, &ld->n_train)
                                  : all_indices(ctx, train, &ld->train_idx, &ld->n_train);
    if (!s) s = test_per_class ? bg_subset_per_class(ctx, test, test_per_class, seed + 1, &ld->test_idx, &ld->n_test)
                               : all_indices(ctx, test, &ld->test_idx, &ld->n_test);
    if (s) return bg_loader_free(ld), s;
    if (ld->n_train < batch)
        return bg_loader_free(ld), bg_fail(ctx, BG_ERR_ARG, "loader: %lld training images for a batch of %d",
                                           (long long)ld->n_train, batch);
    ld->order = malloc((size_t)ld->n_train * sizeof *ld->order);
    if (!ld->order) return bg_loader_free(ld), bg_fail(ctx, BG_ERR_OOM, "loader: out of host memory");
    return BG_OK;
}

int64_t bg_loader_steps_per_epoch(const bg_loader *ld) { return ld->n_train / ld->batch; }

/* This epoch's order of the training subset: a seeded shuffle. */
static const int64_t *epoch_order(bg_loader *ld, int64_t epoch)
{
    if (epoch != ld->order_epoch) {
        memcpy(ld->order, ld->train_idx, (size_t)ld->n_train * sizeof *ld->order);
        bg_shuffle(ld->order, ld->n_train, ld->seed, (uint64_t)epoch);
        ld->order_epoch = epoch;
    }
    return ld->order;
}

bg_status bg_loader_next_batch(void *data, int64_t epoch, int64_t step_in_epoch, int64_t step, float *x, int32_t *y)
{
    bg_loader *ld = data;
    return bg_make_batch(ld->ctx, ld->train, epoch_order(ld, epoch) + step_in_epoch * ld->batch, ld->batch,
                         &ld->train_opts, ld->seed, (uint64_t)step, x, y);
}

bg_status bg_loader_next_batch_device(bg_loader *ld, int64_t epoch, int64_t step_in_epoch, int64_t step, bg_tensor *x,
                                      int32_t *y)
{
    if (!ld->gpu) return bg_fail(ld->ctx, BG_ERR_ARG, "loader: no device copy of the training set");
    if (bg_numel(x) != (int64_t)ld->batch * ld->train->h * ld->train->w * ld->train->c ||
        (x->dtype != BG_F32 && x->dtype != BG_F16))
        return bg_fail(ld->ctx, BG_ERR_SHAPE, "loader: input '%s' does not hold a batch of %d images of %dx%dx%d "
                       "(f32 or f16)", x->name, ld->batch, ld->train->h, ld->train->w, ld->train->c);
    return bg_make_batch_cuda(ld->ctx, ld->gpu, epoch_order(ld, epoch) + step_in_epoch * ld->batch, ld->batch,
                              &ld->train_opts, ld->seed, (uint64_t)step, x->data, x->dtype == BG_F16, y);
}

/* Images idx[first..first+n) of ds, prepared for evaluation (no augmentation). */
static bg_status eval_batch(bg_loader *ld, const bg_dataset *ds, const int64_t *idx, int64_t total, const char *what,
                            int64_t first, int n, float *x, int32_t *y)
{
    if (first < 0 || n < 0 || first + n > total)
        return bg_fail(ld->ctx, BG_ERR_ARG, "loader: %s images %lld..%lld of %lld", what, (long long)first,
                       (long long)(first + n), (long long)total);
    bg_status s = bg_make_batch(ld->ctx, ds, idx + first, n, &ld->test_opts, ld->seed, 0, x, NULL);
    if (!s && y)
        for (int j = 0; j < n; j++) y[j] = ds->labels[idx[first + j]];
    return s;
}

bg_status bg_loader_test_batch(bg_loader *ld, int64_t first, int n, float *x, int32_t *y)
{
    return eval_batch(ld, ld->test, ld->test_idx, ld->n_test, "test", first, n, x, y);
}

bg_status bg_loader_split_val(bg_loader *ld, int k_per_class)
{
    if (ld->val_idx) return bg_fail(ld->ctx, BG_ERR_ARG, "loader: the validation split is already carved");
    int64_t *val, *rest, n_val, n_rest;
    bg_status s = bg_split_per_class(ld->ctx, ld->train, ld->train_idx, ld->n_train, k_per_class, ld->seed + 2, &val,
                                     &n_val, &rest, &n_rest);
    if (s) return s;
    if (n_rest < ld->batch) {
        free(val), free(rest);
        return bg_fail(ld->ctx, BG_ERR_ARG, "loader: %lld training images left after a validation split of %d per "
                       "class, fewer than a batch of %d", (long long)n_rest, k_per_class, ld->batch);
    }
    free(ld->train_idx);
    ld->train_idx = rest, ld->n_train = n_rest;
    ld->val_idx = val, ld->n_val = n_val;
    return BG_OK;
}

bg_status bg_loader_val_batch(bg_loader *ld, int64_t first, int n, float *x, int32_t *y)
{
    return eval_batch(ld, ld->train, ld->val_idx, ld->n_val, "validation", first, n, x, y);
}

/* One pass over the test subset or the validation split in chunks. */
static bg_status each(bg_loader *ld, bool val, int chunk, bg_chunk_fn fn, void *arg)
{
    const bg_dataset *ds = val ? ld->train : ld->test;
    const int64_t total = val ? ld->n_val : ld->n_test;
    float *x = malloc((size_t)(chunk > 0 ? chunk : 1) * ds->h * ds->w * ds->c * sizeof *x);
    int32_t *y = malloc((size_t)(chunk > 0 ? chunk : 1) * sizeof *y);
    bg_status s = x && y ? BG_OK : bg_fail(ld->ctx, BG_ERR_OOM, "loader: out of host memory for %d images", chunk);
    for (int64_t first = 0; !s && first < total; first += chunk) {
        const int n = (int)(total - first < chunk ? total - first : chunk);
        s = val ? bg_loader_val_batch(ld, first, n, x, y) : bg_loader_test_batch(ld, first, n, x, y);
        if (!s) s = fn(arg, first, n, x, y);
    }
    free(x), free(y);
    return s;
}

static bg_status each_test(void *impl, int chunk, bg_chunk_fn fn, void *arg) { return each(impl, false, chunk, fn, arg); }
static bg_status each_val(void *impl, int chunk, bg_chunk_fn fn, void *arg) { return each(impl, true, chunk, fn, arg); }

bg_eval_set bg_loader_test_set(bg_loader *ld)
{
    return (bg_eval_set){.n = ld->n_test, .h = ld->test->h, .w = ld->test->w, .c = ld->test->c,
                         .k = ld->test->n_classes, .each = each_test, .impl = ld};
}

bg_eval_set bg_loader_val_set(bg_loader *ld)
{
    return (bg_eval_set){.n = ld->n_val, .h = ld->train->h, .w = ld->train->w, .c = ld->train->c,
                         .k = ld->train->n_classes, .each = each_val, .impl = ld};
}

void bg_loader_free(bg_loader *ld)
{
    free(ld->train_idx), free(ld->test_idx), free(ld->order), free(ld->val_idx);
    ld->train_idx = ld->test_idx = ld->order = ld->val_idx = NULL;
}
