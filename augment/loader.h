/* A dataset-backed source of batches for a training run: a training subset
 * reshuffled every epoch (seeded), augmented by bg_make_batch, and a test
 * subset handed out in chunks for evaluation (train/evaluate.h). The last
 * partial training batch of an epoch is dropped (the graph has one batch
 * shape); evaluation covers every image. The loader knows no trainer. */
#ifndef BG_LOADER_H
#define BG_LOADER_H
#include "../engine/tensor.h"
#include "dataset.h"
#include "eval_set.h"
#include "transforms.h"

typedef struct {
    bg_ctx *ctx;
    const bg_dataset *train, *test;
    int64_t *train_idx, n_train;  /* owned */
    int64_t *order;               /* this epoch's permutation of train_idx (owned) */
    int64_t order_epoch;
    int64_t *test_idx, n_test;    /* owned */
    int64_t *val_idx, n_val;      /* owned; a split of the training subset (bg_loader_split_val) */
    bg_gpu_dataset *gpu;          /* the training set on the device, for bg_loader_next_batch_device (not owned) */
    int batch;
    bg_batch_opts train_opts, test_opts;
    uint64_t seed;
} bg_loader;

/* train_per_class / test_per_class: 0 = all images, else a seeded subset. */
bg_status bg_loader_init(bg_loader *ld, bg_ctx *ctx, const bg_dataset *train, const bg_dataset *test,
                         int train_per_class, int test_per_class, int batch, const bg_batch_opts *train_opts,
                         const bg_batch_opts *test_opts, uint64_t seed);
int64_t bg_loader_steps_per_epoch(const bg_loader *ld);
/* The training-batch callback of bg_run_config (data = the loader). */
bg_status bg_loader_next_batch(void *data, int64_t epoch, int64_t step_in_epoch, int64_t step, float *x, int32_t *y);
/* The same batch assembled on the device (ld->gpu, the training set
 * uploaded with bg_gpu_dataset_upload) straight into x: the same draws and,
 * in f32, the same bits (f16 when x is f16); labels into the host array y. */
bg_status bg_loader_next_batch_device(bg_loader *ld, int64_t epoch, int64_t step_in_epoch, int64_t step, bg_tensor *x,
                                      int32_t *y);
/* Carve k_per_class images per class out of the training subset (a seeded
 * draw) as a validation split: they are never trained on. Call once, right
 * after init. */
bg_status bg_loader_split_val(bg_loader *ld, int k_per_class);
/* Validation images first..first+n-1, prepared like test images. */
bg_status bg_loader_val_batch(bg_loader *ld, int64_t first, int n, float *x, int32_t *y);
/* Test images first..first+n-1 of the subset, normalised (x: n*h*w*c
 * floats), and their labels into y (may be NULL). */
bg_status bg_loader_test_batch(bg_loader *ld, int64_t first, int n, float *x, int32_t *y);
/* The test subset and the validation split as evaluation sets (eval_set.h). */
bg_eval_set bg_loader_test_set(bg_loader *ld);
bg_eval_set bg_loader_val_set(bg_loader *ld);
void bg_loader_free(bg_loader *ld);

#endif
