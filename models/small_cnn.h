/* The foundation's small CNN: three conv-bn-relu blocks (the first two
 * followed by 2x2 max-pooling), global average pooling, a linear head.
 * Widths are w, 2w, 4w (default w = 16). Any input size >= 4x4, any
 * channel count, so it runs on CIFAR (32x32x3) and Fashion-MNIST (28x28x1). */
#ifndef BG_SMALL_CNN_H
#define BG_SMALL_CNN_H
#include "../engine/graph.h"

#define BG_SMALL_CNN_MAX_TENSORS 24

typedef struct {
    int in_c, width, n_classes;
    bg_tensor *conv_w[3], *bn_g[3], *bn_b[3], *bn_m[3], *bn_v[3];
    bg_tensor *fc_w, *fc_b;
    bg_tensor *all[BG_SMALL_CNN_MAX_TENSORS]; /* every tensor above, for checkpoints */
    int n_all;
} bg_small_cnn;

/* Kaiming-normal (fan_out) convs, BN gamma 1 / beta 0, PyTorch-default linear. */
bg_status bg_small_cnn_new(bg_ctx *ctx, bg_device device, int in_c, int width, int n_classes, bg_small_cnn **out);
void bg_small_cnn_free(bg_ctx *ctx, bg_small_cnn *m);
/* A bg_forward_fn: records the network on g; returns logits {N, n_classes}. */
bg_tensor *bg_small_cnn_forward(bg_graph *g, void *model, bg_tensor *x);

#endif
