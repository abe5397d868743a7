/* The training step machine. A model is a forward function that records ops
 * on a graph; the trainer records it once per batch shape (the first call),
 * then each step uploads a new batch into the same input tensors and replays
 * forward, backward and the optimizer update over the same buffers. A second
 * graph in eval mode (running batchnorm statistics, no gradients) shares the
 * parameters for evaluation. The trainer knows no model and no data format. */
#ifndef BG_TRAINER_H
#define BG_TRAINER_H
#include "../engine/graph.h"
#include "../engine/optim.h"

struct bg_trainer_cuda;

/* Records the model on g for input x {N,H,W,C}; returns the logits {N,K}. */
typedef bg_tensor *(*bg_forward_fn)(bg_graph *g, void *model, bg_tensor *x);

typedef struct {
    bg_ctx *ctx;
    bg_device device;
    bg_forward_fn forward;
    void *model;
    int batch, eval_batch, h, w, c;
    float label_smoothing;
    bg_optim_config optim_cfg;
    bg_graph *train_g, *eval_g;
    bg_tensor *x, *y, *logits, *loss;  /* train graph */
    bg_tensor *ex, *elogits;           /* eval graph */
    bg_optim *opt;
    float *host_logits;
    struct bg_trainer_cuda *cuda; /* CUDA step state: graph, mixed precision (train/step_cuda.h) */
    char resume_path[512];        /* a checkpoint whose optimizer state the first step restores ("" = none) */
} bg_trainer;

bg_status bg_trainer_init(bg_trainer *tr, bg_ctx *ctx, bg_device device, bg_forward_fn forward, void *model,
                          int batch, int eval_batch, int h, int w, int c, const bg_optim_config *optim,
                          float label_smoothing);
/* One step on a full batch (x: batch*h*w*c floats NHWC, y: batch labels) at
 * learning rate lr; *loss gets the batch's mean loss. */
bg_status bg_trainer_step(bg_trainer *tr, const float *x, const int32_t *y, double lr, double *loss);
/* The same, with the batch written by `fill` straight into the input tensor
 * x (on the trainer's device, f16 under amp) and the batch's labels into
 * the host array y: GPU-resident data assembles its batches on the device. */
typedef bg_status (*bg_fill_fn)(void *arg, bg_tensor *x, int32_t *y);
bg_status bg_trainer_step_fill(bg_trainer *tr, bg_fill_fn fill, void *arg, double lr, double *loss);
/* Class predictions for n <= eval_batch images (the rest of the batch is
 * zero-padded and ignored). */
bg_status bg_trainer_predict(bg_trainer *tr, const float *x, int n, int32_t *pred);
/* The eval graph's logits for n <= eval_batch images: *logits points at
 * n rows of bg_trainer_classes() floats, valid until the next call. */
bg_status bg_trainer_logits(bg_trainer *tr, const float *x, int n, const float **logits);
int bg_trainer_classes(const bg_trainer *tr); /* 0 before the first prediction */
void bg_trainer_free(bg_trainer *tr);
/* Before the first step: restore the optimizer state from a checkpoint
 * (train/checkpoint.h) as soon as the first step has built the optimizer,
 * before its update, so a resumed run goes on exactly. */
bg_status bg_trainer_resume_from(bg_trainer *tr, const char *checkpoint);

#endif
