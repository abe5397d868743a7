/* The ops: parameter structs, the table rows, and typed graph builders.
 * Layouts: activations NHWC {N,H,W,C}; conv weights OHWI {Cout,kh,kw,Cin/groups};
 * linear weights {out,in} (as PyTorch); per-channel vectors {C}. */
#ifndef BG_OPS_H
#define BG_OPS_H
#include "../engine/graph.h"

typedef struct { int stride[2], padding[2], dilation[2]; int groups; } bg_conv2d_params;
typedef struct { float momentum, eps; } bg_batchnorm_params;
typedef struct { int kernel[2], stride[2], padding[2]; int ceil_mode, count_include_pad; } bg_pool_params;
typedef struct { int start_dim; } bg_flatten_params;
typedef struct { int shape[4]; } bg_reshape_params;      /* -1 infers one dim; unused trailing = 0 */
typedef struct { float label_smoothing; } bg_xent_params;
typedef struct { int radix, cardinality; } bg_rsoftmax_params;
typedef struct { int radix; } bg_split_sum_params;
typedef struct { int unused; } bg_noparams;
typedef struct { int relu; } bg_se_scale_params;
/* conv2d's parameters plus the epilogue's activation (BG_EP_*). */
typedef struct { int stride[2], padding[2], dilation[2]; int groups; int act; } bg_conv2d_fused_params;
enum { BG_EP_NONE = 0, BG_EP_RELU = 1, BG_EP_SIGMOID = 2 };

/* Table rows (defined in ops/X.c, listed in ops/ops.def). */
#define BG_OP(name) extern const bg_op bg_op_##name;
#include "ops.def"
#undef BG_OP

/* Typed builders: record the op on g and return its output (NULL on error,
 * message in g->ctx; NULL inputs propagate). */
bg_tensor *bg_conv2d(bg_graph *g, bg_tensor *x, bg_tensor *w, bg_tensor *b, bg_conv2d_params p);
/* x, gamma, beta, running_mean, running_var; train mode updates the running stats. */
bg_tensor *bg_batchnorm2d(bg_graph *g, bg_tensor *x, bg_tensor *gamma, bg_tensor *beta,
                          bg_tensor *rmean, bg_tensor *rvar, bg_batchnorm_params p);
bg_tensor *bg_relu(bg_graph *g, bg_tensor *x);

/* Fused rows: each computes exactly what the unfused ops it names compute
 * (tests compare the two graphs); models/layers.h picks them where the
 * device supports them (bg_op_supports) and the graph's fuse flag is on. */
/* relu(batchnorm2d(x)) */
bg_tensor *bg_batchnorm2d_relu(bg_graph *g, bg_tensor *x, bg_tensor *gamma, bg_tensor *beta,
                               bg_tensor *rmean, bg_tensor *rvar, bg_batchnorm_params p);
/* act(x * s + res): x {N,H,W,C}, s {N,1,1,C} (or {N,C}), res x-shaped or NULL,
 * act relu or none: the squeeze-excitation scale with its residual add. */
bg_tensor *bg_se_scale(bg_graph *g, bg_tensor *x, bg_tensor *s, bg_tensor *res, bool relu);
/* split_sum(mul(x, a), radix): x {N,H,W,r*C}, a {N,1,1,r*C} -> {N,H,W,C},
 * split attention's weighted sum without the r-times-larger product. */
bg_tensor *bg_split_attn(bg_graph *g, bg_tensor *x, bg_tensor *a, int radix);
/* act(conv2d(x, w, b) + res): res y-shaped or NULL; act BG_EP_*. */
bg_tensor *bg_conv2d_fused(bg_graph *g, bg_tensor *x, bg_tensor *w, bg_tensor *b, bg_tensor *res,
                           bg_conv2d_fused_params p);
bg_tensor *bg_sigmoid(bg_graph *g, bg_tensor *x);
bg_tensor *bg_add(bg_graph *g, bg_tensor *a, bg_tensor *b);  /* b broadcasts (dims equal or 1) */
bg_tensor *bg_mul(bg_graph *g, bg_tensor *a, bg_tensor *b);  /* b broadcasts, e.g. {N,1,1,C} */
bg_tensor *bg_global_avgpool(bg_graph *g, bg_tensor *x);     /* {N,H,W,C} -> {N,1,1,C} */
bg_tensor *bg_avgpool2d(bg_graph *g, bg_tensor *x, bg_pool_params p);
bg_tensor *bg_maxpool2d(bg_graph *g, bg_tensor *x, bg_pool_params p);
bg_tensor *bg_linear(bg_graph *g, bg_tensor *x, bg_tensor *w, bg_tensor *b); /* x {N,K}, w {M,K} */
bg_tensor *bg_flatten(bg_graph *g, bg_tensor *x, int start_dim);
bg_tensor *bg_reshape(bg_graph *g, bg_tensor *x, int ndim, const int *shape);
bg_tensor *bg_concat(bg_graph *g, bg_tensor *const *xs, int n);  /* along the last (channel) axis */
/* logits {N,K}, labels {N} i32 -> mean loss {1} */
bg_tensor *bg_softmax_xent(bg_graph *g, bg_tensor *logits, bg_tensor *labels, float label_smoothing);
/* x {N,C} or {N,1,1,C}, C = radix*cardinality*rest: softmax over radix (sigmoid if radix 1) */
bg_tensor *bg_radix_softmax(bg_graph *g, bg_tensor *x, int radix, int cardinality);
/* x {...,r*C} -> {...,C}: y[c] = sum_i x[i*C + c] (ResNeSt's sum over radix splits) */
bg_tensor *bg_split_sum(bg_graph *g, bg_tensor *x, int radix);

#endif
