/* A JPEG class-folder data set as a training run uses it (ImageNet-style:
 * <root>/train/<class>/<image> and <root>/test/<class>/<image>, or val/
 * when there is no test/). Seeded class-balanced subsets (the same draws as
 * the in-memory path: train with the seed, a validation split carved out of
 * it with seed + 2, test with seed + 1); training batches streamed by the
 * threaded loader (jpeg_loader.h: RandomResizedCrop + flip at train_size,
 * decoded by N threads into a ring of prefetched batches, so decoding
 * overlaps the step); the test and validation images as evaluation sets
 * (eval_set.h: resize + centre crop at test_size, decoded afresh each pass).
 *
 * Batch (epoch, k) is a pure function of (seed, epoch, position), so asking
 * for any batch (a resumed run's first) restarts the stream there and gets
 * the bits an uninterrupted stream would have given. */
#ifndef BG_JPEG_DATA_H
#define BG_JPEG_DATA_H
#include "eval_set.h"
#include "jpeg_loader.h"

typedef struct {
    int train_per_class, val_per_class, test_per_class; /* 0 = all (val: none) */
    int batch;                 /* training batch; the last partial batch of an epoch is dropped */
    int train_size, test_size; /* output sides */
    bool augment;              /* RandomResizedCrop + flip (else resize + centre crop, as for tests) */
    double scale_lo, scale_hi; /* RandomResizedCrop area fractions */
    int threads, prefetch;     /* decode threads and ready batches (0 = the loader's defaults) */
    float mean[3], std[3];
    uint64_t seed;
} bg_jpeg_data_opts;

typedef struct {
    bg_ctx *ctx;
    char train_dir[600], test_dir[600];
    bg_jpeg_list train, val, test;
    bg_jpeg_loader_opts train_o, eval_o;
    bg_jpeg_loader *stream;    /* the training stream, started at the first batch asked for */
    int64_t stream_next;       /* the batch number it hands out next */
    int64_t steps_per_epoch;
} bg_jpeg_data;

/* Lists the folders (no image is opened) and draws the subsets. A bad
 * layout, a class missing from the test folder or too few images fail
 * naming the folder. */
bg_status bg_jpeg_data_open(bg_ctx *ctx, const char *root, const bg_jpeg_data_opts *o, bg_jpeg_data *d);
/* Set the training batch (after the profile phase chose it); fails when
 * the training list holds fewer images. */
bg_status bg_jpeg_data_set_batch(bg_jpeg_data *d, int batch);
/* Training batch k of `epoch` (batch * train_size^2 * 3 floats, labels). A
 * corrupt file fails naming it. */
bg_status bg_jpeg_data_next_batch(bg_jpeg_data *d, int64_t epoch, int64_t k, float *x, int32_t *y);
/* The test images, and the validation split, as evaluation sets at test_size. */
bg_eval_set bg_jpeg_data_test_set(bg_jpeg_data *d);
bg_eval_set bg_jpeg_data_val_set(bg_jpeg_data *d);
void bg_jpeg_data_free(bg_jpeg_data *d);

#endif
