/* The op table. Every op is one row: its name, a small parameter struct
 * described field by field (so the test runner, `budgie validate` and the
 * CLI parse and print parameters generically), shape inference, a MAC count,
 * and per device a forward and a backward function. Dispatch looks up the
 * function for the inputs' device; a missing entry is an error, never a
 * silent CPU fallback.
 *
 * Adding an op touches three files: ops/X.c (row + CPU reference),
 * kernels/X.cu (CUDA launchers) and one test case. */
#ifndef BG_OP_H
#define BG_OP_H
#include <stdbool.h>
#include <stddef.h>
#include "tensor.h"

#define BG_MAX_IN 6
#define BG_MAX_OUT 2
#define BG_MAX_SAVED 4
#define BG_MAX_FIELDS 8
#define BG_PARAM_BYTES 128

typedef enum { BG_P_INT, BG_P_INT2, BG_P_INT4, BG_P_FLOAT, BG_P_BOOL } bg_param_kind;

/* One field of an op's parameter struct. INT2 is int[2] (h, w), INT4 int[4]; a JSON or
 * command-line scalar sets both. dflt is used when the field is absent. */
typedef struct {
    const char *name;
    bg_param_kind kind;
    size_t offset;
    double dflt[4];
} bg_param_field;

typedef struct bg_node bg_node;
struct bg_op;

/* Shape inference: check n->in (shapes, dtypes; NULL for an absent optional
 * input) and fill the descriptors of the outputs and of the tensors the
 * forward saves for backward (batch statistics, argmax indices...). */
typedef bg_status (*bg_infer_fn)(bg_ctx *ctx, const bg_node *n, bg_desc *out, int *n_out,
                                 bg_desc *saved, int *n_saved);
/* Forward writes n->out (and n->saved). Backward reads n->out[k]->grad and
 * ADDS into n->in[j]->grad for every input whose grad is non-NULL, so inputs
 * used twice accumulate. */
typedef bg_status (*bg_kernel_fn)(bg_ctx *ctx, bg_node *n);
/* Whether the device's kernels take this call (dtypes, shapes, parameters),
 * asked before it is recorded, so a graph builder can choose between a fused
 * row and the unfused ops it replaces. in may hold NULL for absent optional
 * inputs. NULL in the row means: whatever infer accepts. */
typedef bool (*bg_supports_fn)(bg_device dev, const void *params, bg_tensor *const *in, int n_in);

typedef struct bg_op {
    const char *name;
    int n_in;                          /* inputs, optional ones included */
    int n_in_required;                 /* the first n_in_required must be present */
    const char *in_names[BG_MAX_IN];   /* "x", "weight", "bias"... (validate files use them) */
    const char *out_names[BG_MAX_OUT]; /* "y"... */
    bool in_differentiable[BG_MAX_IN];      /* false for labels and the like */
    size_t param_size;
    bg_param_field fields[BG_MAX_FIELDS];
    int n_fields;
    bg_infer_fn infer;
    double (*macs)(const bg_node *n);  /* conv/linear MACs, 0 otherwise; may be NULL */
    bg_kernel_fn fwd[BG_NDEVICES];
    bg_kernel_fn bwd[BG_NDEVICES];
    bg_supports_fn supports;           /* may be NULL */
    /* The fast CPU backend (engine/cpu_isa.h, ops/fast/): used for CPU
     * tensors unless the context asks for the reference. NULL = the
     * reference fwd/bwd[BG_CPU] serves both backends. A fast kernel may
     * decline a call it does not cover (a dtype, a shape) by returning
     * BG_ERR_UNSUPPORTED before touching anything; the reference then runs
     * it. That code means nothing else from a fast kernel. */
    bg_kernel_fn fast_fwd, fast_bwd;
    /* fast_bwd honours bg_node.grad_fresh: where it takes the node it
     * stores into a fresh input gradient instead of adding (see there). */
    bool fast_bwd_stores;
    /* What backward reads besides the output grads (BG_BWD_* bits), for the
     * memory planner (engine/plan.h): a tensor nothing reads after its last
     * forward use need not survive into the backward. 0 = not stated: the
     * planner assumes every input, output and saved tensor is read. */
    unsigned bwd_reads;
    /* Bytes the forward (bwd false) or backward kernels allocate for
     * themselves at most at once during one call on n's device (im2col
     * scratch, workspaces), counted as the allocator rounds them; the
     * planner adds the largest to the planned peak. NULL = none. */
    size_t (*scratch)(bg_ctx *ctx, const bg_node *n, bool bwd);
    /* In-place (BG_BWD_IN bits): inputs whose buffer output 0 may take over
     * when nothing reads that input after this node (the memory planner,
     * CPU graphs). The kernels must then take y == x, and a backward that
     * reads such an input must get the same answer from the output's values
     * (relu: y > 0 exactly where x > 0). 0 = never. */
    unsigned inplace;
} bg_op;

/* bwd_reads bits: input i, output k; BG_BWD_STATED marks a stated mask (so
 * "reads nothing" is BG_BWD_STATED alone). Saved tensors exist for the
 * backward and are always taken as read. */
#define BG_BWD_IN(i) (1u << (i))
#define BG_BWD_OUT(k) (1u << (8 + (k)))
#define BG_BWD_STATED (1u << 15)

struct bg_node {
    const bg_op *op;
    int n_in, n_out, n_saved;
    bg_tensor *in[BG_MAX_IN];
    bg_tensor *out[BG_MAX_OUT];
    bg_tensor *saved[BG_MAX_SAVED];
    bool train;                      /* training mode (batchnorm statistics) */
    /* Bit i: in[i]->grad holds garbage, not zeros, at this backward, which
     * is the first to write it (set by the planned backward only for rows
     * with fast_bwd_stores, cleared after). A fast backward stores 0.0f + v
     * there (the bits adding into zeros gives: -0 becomes +0), skipping the
     * memset and the read, and clears the bit; bg_node_backward zeroes what
     * is still marked, before the reference or after a kernel that wrote
     * nothing there. */
    unsigned char grad_fresh;
    union { unsigned char bytes[BG_PARAM_BYTES]; double align_; } p;
};

#define BG_PARAMS(n, T) ((T *)(void *)(n)->p.bytes)

/* The registry. */
const bg_op *bg_op_find(const char *name);
int bg_op_count(void);
const bg_op *bg_op_at(int i);

/* The row has forward and backward kernels on dev and its supports check
 * (if any) accepts these inputs and parameters. */
bool bg_op_supports(const bg_op *op, bg_device dev, const void *params, bg_tensor *const *in, int n_in);

/* Fill a params struct with the op's defaults. */
void bg_op_default_params(const bg_op *op, void *params);
/* Set one field by name from one or two numbers; BG_ERR_ARG names an unknown field. */
bg_status bg_op_set_param(bg_ctx *ctx, const bg_op *op, void *params, const char *field,
                          const double *v, int nv);
/* "stride=[2,2] padding=[1,1] groups=1" into buf. */
const char *bg_op_params_str(const bg_op *op, const void *params, char *buf, size_t n);

/* Standalone node use (tests, validate, the tape): set op/params/inputs,
 * infer and allocate outputs + saved on the inputs' device. */
bg_status bg_node_init(bg_ctx *ctx, bg_node *n, const bg_op *op, const void *params,
                       bg_tensor *const *in, int n_in, bool train);
/* The same; with bind false the outputs and saved tensors get no storage
 * (bg_tensor_unbound): a deferred graph's plan binds them later. */
bg_status bg_node_init_ex(bg_ctx *ctx, bg_node *n, const bg_op *op, const void *params,
                          bg_tensor *const *in, int n_in, bool train, bool bind);
bg_status bg_node_forward(bg_ctx *ctx, bg_node *n);
/* Which CPU kernels a forward/backward of this node runs under ctx: "ref" or
 * "fast" (the latter only when the row has one; a decline is not seen). */
const char *bg_node_cpu_kernels(const bg_ctx *ctx, const bg_node *n);
/* Requires the out grads to be set; accumulates into the inputs' grads. */
bg_status bg_node_backward(bg_ctx *ctx, bg_node *n);
void bg_node_release(bg_ctx *ctx, bg_node *n); /* frees outputs and saved tensors */

/* Helpers for op implementations. */
bg_status bg_op_check_same_device(bg_ctx *ctx, const bg_node *n);
bg_status bg_op_check_float(bg_ctx *ctx, const bg_node *n, int i);
bg_status bg_op_check_same_dtype(bg_ctx *ctx, const bg_node *n, int i, int j);

#endif
