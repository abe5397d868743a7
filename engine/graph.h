/* The tape. Ops called on a graph run at once (eager) and are recorded as
 * nodes. backward() walks the nodes in reverse. Because the node list and
 * every buffer are fixed after the first step, the same graph is replayed
 * each step: write new bytes into the input tensors, call bg_graph_forward
 * and bg_graph_backward. (The CUDA backend captures that replay into a CUDA
 * graph; the memory planner reads the node list to size one arena.) */
#ifndef BG_GRAPH_H
#define BG_GRAPH_H
#include "op.h"
#include "plan.h"

typedef struct bg_graph {
    bg_ctx *ctx;
    bg_node *nodes;
    int n_nodes, cap_nodes;
    bg_tensor **owned;     /* tensors the graph created (inputs, activations) */
    int n_owned, cap_owned;
    bool train;            /* batchnorm uses batch statistics */
    bool grad;             /* record for backward (false = no-grad / eval) */
    /* Builders may record a fused row (batchnorm2d_relu, se_scale...) in
     * place of the ops it replaces where the device supports it. On by
     * default; off gives the plain op-by-op graph (tests compare the two). */
    bool fuse;
    bg_device device;
    /* CUDA: d(loss) is seeded from this device f32 scalar (the loss scale
     * under mixed precision; NULL = 1). The seed is a kernel, not an upload,
     * so a backward can be captured into a CUDA graph. */
    const float *loss_seed;
    /* Deferred recording (set before the first op): bg_graph_op infers
     * shapes and records, allocating and running nothing; bg_graph_plan
     * then packs every activation, saved tensor and activation gradient
     * into one arena (engine/plan.h) and the first bg_graph_forward runs
     * the ops. Off by default: eager graphs run each op as it is recorded. */
    bool defer;
    bg_plan *plan;         /* set by bg_graph_plan */
    void *arena;           /* plan->arena_bytes on `device`, from the capped allocator */
    const bg_tensor *plan_loss;
} bg_graph;

bg_graph *bg_graph_new(bg_ctx *ctx, bg_device device, bool train);
void bg_graph_free(bg_graph *g);   /* frees owned tensors, not parameters */

/* A tensor owned by the graph (e.g. the input batch). */
bg_tensor *bg_graph_tensor(bg_graph *g, bg_dtype dt, int ndim, const int64_t *shape, const char *name);

/* Record + run one op. Inputs may be NULL for absent optional inputs; if a
 * required input is NULL (an earlier call failed) this returns NULL without
 * touching the error, so builder code can chain calls and check once. */
bg_tensor *bg_graph_op(bg_graph *g, const bg_op *op, const void *params,
                       bg_tensor *const *in, int n_in);
/* For ops with two outputs: the k-th output of the last recorded node. */
bg_tensor *bg_graph_last_out(bg_graph *g, int k);

/* Replay every node's forward in order (same buffers, new input bytes). */
bg_status bg_graph_forward(bg_graph *g);
/* Zero all grads reachable from the tape (activations and parameters), set
 * d(loss)=1 and run every node's backward in reverse. loss must be a
 * one-element tensor produced by the graph. */
bg_status bg_graph_backward(bg_graph *g, bg_tensor *loss);
/* Plan a deferred graph's memory and bind its tensors into one arena.
 * loss: where backward will start (NULL: forward only, as an eval graph);
 * keep: tensors read after a step (the logits, the loss), which live to
 * its end. With a loss this also allocates (zeroed) the gradients of the
 * parameters and other leaf tensors that need one, outside the arena. The
 * arena belongs to the graph; its tensors are views (alloc_bytes 0). */
bg_status bg_graph_plan(bg_graph *g, const bg_tensor *loss, bg_tensor *const *keep, int n_keep);
/* The same plan computed without allocating or binding anything (sizing a
 * batch before running it); *leaf_grad_bytes gets what the parameters'
 * gradients would take. bg_plan_free the result; the graph stays deferred. */
bg_status bg_graph_plan_dry(bg_graph *g, const bg_tensor *loss, bg_tensor *const *keep, int n_keep, bg_plan *out,
                            size_t *leaf_grad_bytes);
/* Switch batchnorm mode for the next replay. */
void bg_graph_set_train(bg_graph *g, bool train);

/* Parameters reachable from the tape, in first-use order (deduplicated). */
int bg_graph_params(const bg_graph *g, bg_tensor **out, int cap);

#endif
