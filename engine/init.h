/* Parameter initialisation, seeded through the context's Philox stream.
 * Conventions follow PyTorch so models start where their PyTorch twins do. */
#ifndef BG_INIT_H
#define BG_INIT_H
#include "tensor.h"

/* Kaiming normal, mode fan_out, ReLU gain: std = sqrt(2 / fan_out), where
 * fan_out = Cout * kh * kw for an OHWI conv weight (or rows for {out,in}). */
bg_status bg_init_kaiming_normal_fan_out(bg_ctx *ctx, bg_tensor *w);
/* PyTorch's Linear/Conv default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
 * fan_in given (for both weight, via kaiming_uniform a=sqrt(5), and bias). */
bg_status bg_init_uniform_fan_in(bg_ctx *ctx, bg_tensor *t, int64_t fan_in);

/* A parameter tensor on `device` (is_param, requires_grad), filled on the
 * host by `fill` (NULL = zeros) and uploaded. */
typedef bg_status (*bg_fill_fn)(bg_ctx *ctx, bg_tensor *host, void *arg);
bg_tensor *bg_param_new(bg_ctx *ctx, bg_device device, int ndim, const int64_t *shape, const char *name,
                        bg_fill_fn fill, void *arg);
/* A buffer (running statistics): not a parameter, no grad, constant fill. */
bg_tensor *bg_buffer_new(bg_ctx *ctx, bg_device device, int ndim, const int64_t *shape, const char *name,
                         double value);

#endif
