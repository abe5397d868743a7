/* Building blocks shared by the model families (internal to models/):
 * layers that register their tensors as state-dict entries of a bg_model,
 * initialised at registration, and the family table the spec parser reads. */
#ifndef BG_MODEL_LAYERS_H
#define BG_MODEL_LAYERS_H
#include "../ops/ops.h"
#include "model.h"

typedef struct {
    bg_tensor *w, *b;   /* b NULL when the conv has no bias */
    bg_conv2d_params p;
} bg_mconv;

typedef struct {
    bg_tensor *g, *b, *mean, *var;
} bg_mbn;

typedef struct {
    bg_tensor *w, *b;
} bg_mlinear;

/* name is the PyTorch module path ("layer1.0.conv1"); ".weight" etc. are appended.
 * Weights: Kaiming normal fan_out; bias: U(+-1/sqrt(Cin/groups * k * k)). */
bg_status bg_mconv_new(bg_ctx *ctx, bg_model *m, bg_mconv *c, const char *name, int cin, int cout, int k,
                       int stride, int pad, int groups, bool bias);
/* gamma is 1 (or 0 for a zero-initialised last BN), beta 0, running mean 0 / var 1, counter 0. */
bg_status bg_mbn_new(bg_ctx *ctx, bg_model *m, bg_mbn *bn, const char *name, int c, double gamma);
/* PyTorch default: weight and bias U(+-1/sqrt(in)). map_h x map_w > 1 marks a
 * linear over a flattened NHWC map (columns (h,w,c) here, (c,h,w) in PyTorch). */
bg_status bg_mlinear_new(bg_ctx *ctx, bg_model *m, bg_mlinear *l, const char *name, int in, int out, int map_h,
                         int map_w);

bg_tensor *bg_mconv_fwd(bg_graph *g, bg_tensor *x, const bg_mconv *c);
bg_tensor *bg_mbn_fwd(bg_graph *g, bg_tensor *x, const bg_mbn *bn);
bg_tensor *bg_mlinear_fwd(bg_graph *g, bg_tensor *x, const bg_mlinear *l);
/* Fused where the device supports it (one row), else the plain ops:
 *   relu(bn(x))                      batchnorm2d_relu
 *   act(conv(x) + res), act BG_EP_*  conv2d_fused (res may be NULL)
 *   act(x * s + res), s {N,1,1,C}    se_scale (res may be NULL)
 *   split_sum(mul(x, a), radix)      split_attn */
bg_tensor *bg_mbn_relu_fwd(bg_graph *g, bg_tensor *x, const bg_mbn *bn);
bg_tensor *bg_mconv_act_fwd(bg_graph *g, bg_tensor *x, const bg_mconv *c, bg_tensor *res, int act);
bg_tensor *bg_scale_fwd(bg_graph *g, bg_tensor *x, bg_tensor *s, bg_tensor *res, bool relu);
bg_tensor *bg_split_attn_fwd(bg_graph *g, bg_tensor *x, bg_tensor *a, int radix);
/* PyTorch-style pooling parameters (stride 0 = kernel). */
bg_pool_params bg_mpool(int k, int stride, int pad, bool ceil_mode, bool count_include_pad);

/* Output size of a conv / pool along one axis (PyTorch's rule, dilation 1). */
int bg_conv_out(int in, int k, int stride, int pad);

/* ---- spec arguments and the family table ---- */
typedef struct {
    double w, d, r;     /* width, depth, resolution multipliers (CIFAR families) */
    int classes;
    int size;           /* ResNeSt: default input side; small_cnn: the summary's */
    int c;              /* small_cnn: input channels (default 3) */
} bg_model_args;

struct bg_model_family {
    const char *name;
    const char *keys;   /* accepted keys, comma-separated */
    const char *help;
    int default_classes, default_size;
    bg_status (*build)(bg_ctx *ctx, bg_model *m, const bg_model_args *a);
    bg_tensor *(*forward)(bg_graph *g, bg_model *m, bg_tensor *x);
    void (*free_arch)(void *arch);
    int variant;        /* which member of a family file (e.g. SE / preact / basic) */
};

/* Defined in the family files. */
extern const bg_model_family bg_family_senet18, bg_family_resnet18, bg_family_preact_resnet18;
extern const bg_model_family bg_family_mobilenetv2, bg_family_small_cnn;
extern const bg_model_family bg_family_resnest50d_1s4x24d, bg_family_resnest50d, bg_family_resnest26d;

#endif
