/* A JPEG class-folder data set for a training run (see jpeg_data.h). */
#include "jpeg_data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_source.h"

bg_status bg_jpeg_data_open(bg_ctx *ctx, const char *root, const bg_jpeg_data_opts *o, bg_jpeg_data *d)
{
    memset(d, 0, sizeof *d);
    d->ctx = ctx;
    snprintf(d->train_dir, sizeof d->train_dir, "%s/train", root);
    snprintf(d->test_dir, sizeof d->test_dir, "%s/test", root);
    if (!bg_is_dir(d->test_dir)) snprintf(d->test_dir, sizeof d->test_dir, "%s/val", root);
    if (!bg_is_dir(d->train_dir) || !bg_is_dir(d->test_dir))
        return bg_fail(ctx, BG_ERR_FORMAT, "data: %s is not a JPEG class folder: it needs train/<class>/<image> and "
                       "test/<class>/<image> (or val/)", root);
    bg_jpeg_list all_train = {0}, all_test = {0};
    bg_status s = bg_jpeg_list_folder(ctx, d->train_dir, 0, &all_train);
    if (!s) s = bg_jpeg_list_folder(ctx, d->test_dir, 0, &all_test);
    if (!s && all_test.n_classes != all_train.n_classes)
        s = bg_fail(ctx, BG_ERR_FORMAT, "data: %s has %d classes, %s has %d", d->train_dir, all_train.n_classes,
                    d->test_dir, all_test.n_classes);
    for (int c = 0; !s && c < all_train.n_classes; c++)
        if (strcmp(all_train.class_names[c], all_test.class_names[c]))
            s = bg_fail(ctx, BG_ERR_FORMAT, "data: class %d is '%s' in %s and '%s' in %s", c, all_train.class_names[c],
                        d->train_dir, all_test.class_names[c], d->test_dir);
    if (!s) s = bg_jpeg_list_subset(ctx, &all_train, d->train_dir, o->train_per_class, o->seed, o->val_per_class,
                                    o->seed + 2, &d->train, &d->val);
    if (!s) s = bg_jpeg_list_subset(ctx, &all_test, d->test_dir, o->test_per_class, o->seed + 1, 0, 0, &d->test, NULL);
    bg_jpeg_list_free(&all_train);
    bg_jpeg_list_free(&all_test);
    if (s) return bg_jpeg_data_free(d), s;
    bg_jpeg_loader_opts t = {.batch = o->batch, .size = o->train_size, .train = o->augment, .flip = o->augment,
                             .rrc = {o->scale_lo, o->scale_hi, 3.0 / 4.0, 4.0 / 3.0}, .shuffle = true,
                             .drop_last = true, .threads = o->threads, .prefetch = o->prefetch, .seed = o->seed};
    memcpy(t.mean, o->mean, sizeof t.mean);
    memcpy(t.std, o->std, sizeof t.std);
    d->train_o = t;
    /* evaluation: in list order, every image, one pass; a short ring (eval
     * batches are large and only need to stay ahead of one forward pass) */
    bg_jpeg_loader_opts e = t;
    e.train = false, e.flip = false, e.shuffle = false, e.drop_last = false, e.epochs = 1;
    e.size = o->test_size, e.prefetch = 3;
    d->eval_o = e;
    if ((s = bg_jpeg_data_set_batch(d, o->batch))) return bg_jpeg_data_free(d), s;
    return BG_OK;
}

bg_status bg_jpeg_data_set_batch(bg_jpeg_data *d, int batch)
{
    if (batch < 1 || d->train.n < batch)
        return bg_fail(d->ctx, BG_ERR_ARG, "data: %lld training images in %s for a batch of %d", (long long)d->train.n,
                       d->train_dir, batch);
    bg_jpeg_loader_free(d->stream);
    d->stream = NULL;
    d->train_o.batch = batch;
    d->steps_per_epoch = d->train.n / batch;
    return BG_OK;
}

bg_status bg_jpeg_data_next_batch(bg_jpeg_data *d, int64_t epoch, int64_t k, float *x, int32_t *y)
{
    const int64_t seq = epoch * d->steps_per_epoch + k;
    if (d->stream && d->stream_next != seq) { /* a jump (a resumed run): restart the stream there */
        bg_jpeg_loader_free(d->stream);
        d->stream = NULL;
    }
    bg_status s;
    if (!d->stream) {
        bg_jpeg_loader_opts o = d->train_o;
        o.first_batch = seq;
        if ((s = bg_jpeg_loader_start(d->ctx, &d->train, &o, &d->stream))) return s;
        d->stream_next = seq;
    }
    bg_jpeg_batch b;
    if ((s = bg_jpeg_loader_next(d->stream, &b))) return s;
    if (b.n != d->train_o.batch || b.seq != seq) {
        bg_jpeg_loader_release(d->stream, &b);
        return bg_fail(d->ctx, BG_ERR_ARG, "jpeg data: the stream gave batch %lld of %lld images, not batch %lld of %d",
                       (long long)b.seq, (long long)b.n, (long long)seq, d->train_o.batch);
    }
    memcpy(x, b.x, (size_t)b.n * d->train_o.size * d->train_o.size * 3 * sizeof *x);
    memcpy(y, b.y, (size_t)b.n * sizeof *y);
    bg_jpeg_loader_release(d->stream, &b);
    d->stream_next = seq + 1;
    return BG_OK;
}

/* One pass over a list through its own loader (threads started and joined per pass). */
static bg_status each(bg_jpeg_data *d, const bg_jpeg_list *l, int chunk, bg_chunk_fn fn, void *arg)
{
    if (l->n == 0) return BG_OK;
    bg_jpeg_loader_opts o = d->eval_o;
    o.batch = chunk;
    bg_jpeg_loader *ld;
    bg_status s = bg_jpeg_loader_start(d->ctx, l, &o, &ld);
    for (int64_t first = 0; !s;) {
        bg_jpeg_batch b;
        if ((s = bg_jpeg_loader_next(ld, &b)) || b.n == 0) break;
        s = fn(arg, first, (int)b.n, b.x, b.y);
        first += b.n;
        bg_jpeg_loader_release(ld, &b);
    }
    bg_jpeg_loader_free(ld);
    return s;
}

static bg_status each_test(void *impl, int chunk, bg_chunk_fn fn, void *arg)
{
    bg_jpeg_data *d = impl;
    return each(d, &d->test, chunk, fn, arg);
}

static bg_status each_val(void *impl, int chunk, bg_chunk_fn fn, void *arg)
{
    bg_jpeg_data *d = impl;
    return each(d, &d->val, chunk, fn, arg);
}

static bg_eval_set set_of(bg_jpeg_data *d, const bg_jpeg_list *l, bool val)
{
    return (bg_eval_set){.n = l->n, .h = d->eval_o.size, .w = d->eval_o.size, .c = 3, .k = d->train.n_classes,
                         .each = val ? each_val : each_test, .impl = d};
}

bg_eval_set bg_jpeg_data_test_set(bg_jpeg_data *d) { return set_of(d, &d->test, false); }
bg_eval_set bg_jpeg_data_val_set(bg_jpeg_data *d) { return set_of(d, &d->val, true); }

void bg_jpeg_data_free(bg_jpeg_data *d)
{
    bg_jpeg_loader_free(d->stream);
    bg_jpeg_list_free(&d->train);
    bg_jpeg_list_free(&d->val);
    bg_jpeg_list_free(&d->test);
    d->stream = NULL;
}
