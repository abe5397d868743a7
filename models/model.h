/* The model zoo: architectures built from a spec string, with PyTorch-named
 * state dicts, a summary (shapes, parameters, MACs, activation memory) and
 * safetensors import/export.
 *
 * Spec strings: "NAME[:key=value,key=value...]", e.g. "senet18:w=0.67,d=1,r=1"
 * or "resnest50d_1s4x24d:classes=100". Families and keys (docs/models.md):
 *   senet18, resnet18, preact_resnet18   w, d, r, classes   (CIFAR, seed-spec §1.3, §2)
 *   mobilenetv2                          r, classes         (CIFAR, §2.4)
 *   resnest50d_1s4x24d, resnest50d,
 *   resnest26d                           classes, size      (timm ResNeSt, §3)
 *   small_cnn                            w, c, classes, size (the foundation's CNN)
 * Every parameter and buffer is a state-dict entry named as PyTorch names it
 * (kuangliu names for the CIFAR models, timm names for ResNeSt), registered
 * and initialised in PyTorch's registration order: Kaiming-normal fan_out
 * convs (bias U(+-1/sqrt(fan_in))), BN gamma 1 / beta 0 (0 for ResNeSt's
 * last BN per bottleneck), PyTorch-default Linear. Draws come from the
 * context's Philox stream in entry order, so a seed fixes every weight. */
#ifndef BG_MODEL_H
#define BG_MODEL_H
#include <stdbool.h>
#include "../engine/graph.h"

/* How an entry converts between our layout and PyTorch's. */
typedef enum {
    BG_SD_PLAIN,      /* same shape and order (BN vectors, biases, {out,in} linear on a 1x1 map) */
    BG_SD_CONV,       /* ours OHWI {O,kh,kw,I}, PyTorch OIHW {O,I,kh,kw} */
    BG_SD_LINEAR_HWC, /* linear after flattening an HxW map: our columns are (h,w,c), PyTorch's (c,h,w) */
    BG_SD_COUNTER     /* BN num_batches_tracked: a 0-d integer (I32 here, I64 in PyTorch) */
} bg_sd_kind;

/* What an entry is, for init and tests (e.g. perturbing every BN gamma). */
typedef enum {
    BG_ROLE_CONV_W, BG_ROLE_CONV_B, BG_ROLE_BN_W, BG_ROLE_BN_B, BG_ROLE_BN_MEAN, BG_ROLE_BN_VAR, BG_ROLE_BN_COUNT,
    BG_ROLE_LINEAR_W, BG_ROLE_LINEAR_B
} bg_sd_role;

typedef struct {
    char name[64];     /* the PyTorch state-dict key */
    bg_tensor *t;      /* parameters and buffers on the model's device; counters on the CPU */
    bg_sd_kind kind;
    bg_sd_role role;
    int hw[2];         /* BG_SD_LINEAR_HWC: the flattened map's height and width */
} bg_sd_entry;

/* Summary sections: the forward marks the end of each named block. */
typedef struct {
    char name[32];
    int end_node;      /* nodes [previous end, end_node) belong to this section */
} bg_model_mark;

typedef struct bg_model bg_model;
typedef struct bg_model_family bg_model_family;

struct bg_model {
    const bg_model_family *family;
    char spec[192];            /* canonical: every key spelled out */
    bg_device device;
    bg_dtype dtype;            /* of parameters and buffers (F32 unless bg_model_to changed it) */
    unsigned flags;            /* BG_MODEL_* given at creation */
    int in_c, in_h, in_w;      /* the input the model is built for (summary default) */
    int n_classes;
    bg_sd_entry *sd;
    int n_sd, cap_sd;
    void *arch;                /* the family's own structure */
    bg_model_mark *marks;      /* NULL unless a summary is recording */
    int n_marks, cap_marks;
};

/* Parse `spec` only: the family exists and every key and value is valid
 * (the checks bg_model_new makes before building anything). */
bg_status bg_model_spec_check(bg_ctx *ctx, const char *spec);
/* Whether spec gives `key` explicitly ("small_cnn:c=1" has c). */
bool bg_model_spec_has_key(const char *spec, const char *key);
/* Parse `spec`, build and initialise the model on `device` (f32). Errors name
 * the unknown model or key, or the value at fault. */
bg_status bg_model_new(bg_ctx *ctx, bg_device device, const char *spec, bg_model **out);
/* Shapes only: parameters are zero-filled and no random numbers are drawn
 * (the context's stream does not move). For counting, summaries, and
 * models whose weights are loaded right after. */
#define BG_MODEL_NO_INIT 1u
bg_status bg_model_new_ex(bg_ctx *ctx, bg_device device, const char *spec, unsigned flags, bg_model **out);
void bg_model_free(bg_ctx *ctx, bg_model *m);
/* A bg_forward_fn: records the network on g for x {N,H,W,C}; returns logits {N,classes}. */
bg_tensor *bg_model_forward(bg_graph *g, void *model, bg_tensor *x);
/* "senet18, resnet18, ..." (for help texts) and a one-line description per family. */
int bg_model_family_count(void);
const char *bg_model_family_name(int i);
const char *bg_model_family_help(int i);

int64_t bg_model_param_count(const bg_model *m); /* elements of every parameter (buffers excluded) */
const bg_sd_entry *bg_model_find(const bg_model *m, const char *name);

/* Weights as a safetensors state dict with PyTorch names and layouts (F32;
 * num_batches_tracked as a 0-d I32, which PyTorch's load_state_dict copies
 * into its int64 buffer). Loading accepts F32/F16/F64/BF16 floats and I64/I32
 * counters, checks every key and shape first and changes nothing on error:
 * a missing, unexpected or mis-shaped tensor is named. A missing
 * num_batches_tracked is allowed (PyTorch fills it in too). */
bg_status bg_model_save(bg_ctx *ctx, const bg_model *m, const char *path);
bg_status bg_model_load(bg_ctx *ctx, bg_model *m, const char *path);
/* The same file with more in it (checkpoints): `extra` tensors saved under
 * their own names after the state dict, and metadata pairs beside
 * "budgie_model"; loading ignores tensors whose name starts with
 * skip_prefix (e.g. "optim."). */
bg_status bg_model_save_ex(bg_ctx *ctx, const bg_model *m, const char *path, bg_tensor *const *extra, int n_extra,
                           const char *const *meta_keys, const char *const *meta_vals, int n_meta);
bg_status bg_model_load_ex(bg_ctx *ctx, bg_model *m, const char *path, const char *skip_prefix);
/* One entry's values (or its gradient, when grad is true) in PyTorch layout
 * as f32 on the host; dst holds numel values. */
bg_status bg_model_entry_torch(bg_ctx *ctx, const bg_sd_entry *e, bool grad, float *dst);

/* Move every parameter and buffer to `device` as `dt` (F32 or F16), in place:
 * the tensor handles stay valid. Gradients are dropped. */
bg_status bg_model_to(bg_ctx *ctx, bg_model *m, bg_device device, bg_dtype dt);

/* ---- summary ---- */
typedef struct {
    char name[32];
    int ndim;
    int64_t shape[4];   /* output of the section's last node, at the summary batch */
    int64_t params;     /* parameters first used in this section */
    double macs;        /* per image, conv + linear only (seed-spec convention) */
    double act_bytes;   /* node outputs + saved tensors at the summary batch, f32 */
    int n_nodes;
} bg_summary_row;

typedef struct {
    bg_summary_row *rows;
    int n_rows;
    int batch, c, h, w;
    int64_t params;       /* every parameter of the model */
    double macs;          /* per image */
    double act_bytes;     /* sections + the input batch and labels */
    double input_bytes;
} bg_summary;

/* Record the training graph (forward + loss) on the CPU at batch 1 (and 2, to
 * extrapolate memory exactly to `batch`: every tensor is proportional to the
 * batch or independent of it) in eval mode, so the running statistics are not
 * touched. c/h/w <= 0 take the model's input size. `with_memory` false skips
 * the batch-2 recording (MACs and params need batch 1 only). */
bg_status bg_model_summary(bg_ctx *ctx, bg_model *m, int batch, int c, int h, int w, bool with_memory,
                           bg_summary *out);
void bg_summary_free(bg_summary *s);

/* Planned memory of one training step and one evaluation at `batch`, from
 * deferred recordings and dry plans (engine/plan.h): nothing runs and no
 * activation is allocated, so any batch can be sized. Bytes as the
 * allocator counts them (rounded to 256). The training step is forward,
 * loss, backward and an SGD-momentum update: parameters and buffers, their
 * gradients, the optimizer's state (bg_optim_state_bytes), the input batch and
 * labels, the arena and the largest kernel scratch. The evaluation: the
 * model, its input batch, its arena and scratch (no gradients). */
typedef struct {
    double model, grads, momentum, input, arena, scratch, train_peak;
    double eager_act;   /* the same activations and gradients unplanned (each its own allocation) */
    double eval_input, eval_arena, eval_scratch, eval_peak, eval_eager_act;
} bg_plan_peaks;
bg_status bg_model_plan_peaks(bg_ctx *ctx, bg_model *m, int batch, int c, int h, int w, bg_plan_peaks *out);

/* For builders: mark the end of a named section on the graph being recorded. */
void bg_model_mark_section(bg_graph *g, bg_model *m, const char *name);

#endif
