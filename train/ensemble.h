/* Test-time augmentation and ensembles: the scores of several views of each
 * test image (the image, its mirror, other input sizes) from one or more
 * models, averaged as softmax probabilities or as logits, and the metrics
 * taken from them (top-1, top-5, per-class accuracy, confusion matrix). */
#ifndef BG_ENSEMBLE_H
#define BG_ENSEMBLE_H
#include <stdbool.h>
#include <stdint.h>
#include "../augment/eval_set.h"
#include "trainer.h"

/* Bilinear resize of n NHWC float images h x w -> oh x ow with half-pixel
 * centres (PyTorch's F.interpolate(mode="bilinear", align_corners=False),
 * no antialiasing). Being linear with weights summing to 1, it commutes
 * with the per-channel normalisation, so normalised batches can be resized. */
void bg_resize_nhwc_f32(const float *src, int n, int h, int w, int c, float *dst, int oh, int ow);
/* Mirror n NHWC images left-right in place. */
void bg_flip_nhwc_f32(float *x, int n, int h, int w, int c);

/* Add one view's scores for n images to scores (n rows of k): the trainer's
 * logits (average_logits) or their softmax. x holds the images at their
 * native h x w (not modified); the trainer's input size picks the resize;
 * flip mirrors them first. */
bg_status bg_ensemble_add_view(bg_trainer *tr, const float *x, int n, int h, int w, int c, bool flip,
                               bool average_logits, double *scores, int k);

/* Add one model's views of every image of a set to scores (set->n rows of
 * set->k): for each side in sizes (n_sizes > 0), the images resized to it
 * through an eval-only trainer of `chunk` images, and with flip their
 * mirrors too; labels (set->n) get the set's labels. *views (may be NULL)
 * is increased by the views added per image. What `budgie eval` and the
 * final ensemble of `budgie train` both run. */
bg_status bg_ensemble_scores(bg_ctx *ctx, bg_device device, bg_forward_fn forward, void *model, const bg_eval_set *set,
                             const int *sizes, int n_sizes, bool flip, bool average_logits, int chunk, double *scores,
                             int32_t *labels, int *views);

typedef struct {
    int64_t n;
    int k;
    double top1, top5;        /* fractions */
    double *per_class;        /* k accuracies (recall), -1 for a class with no image */
    int64_t *confusion;       /* k x k: row = true class, column = predicted */
} bg_metrics;

/* Metrics of scores (n rows of k; a higher score wins, ties to the lower
 * class) against labels. Frees nothing it did not allocate: call
 * bg_metrics_free after. */
bg_status bg_metrics_compute(bg_ctx *ctx, const double *scores, const int32_t *labels, int64_t n, int k, bg_metrics *m);
void bg_metrics_free(bg_metrics *m);

#endif
