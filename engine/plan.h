/* The memory planner. A recorded tape is static, so the life of every
 * buffer a step needs is known before the step runs. On the timeline
 *   forward of node 0 .. N-1 (steps 0 .. N-1), then
 *   backward of node N-1 .. 0 (steps N .. 2N-1; node i at 2N-1-i)
 * a buffer lives from the step that first writes it to the step that last
 * reads it:
 *   a node output: from its node's forward to its last reader, which is a
 *     later forward, or a backward that reads it (bg_op.bwd_reads; every
 *     input and output when the row does not say), or forever when the
 *     caller keeps it (the loss, the logits);
 *   a saved tensor: from its node's forward to its node's backward;
 *   an activation gradient: from the first backward that adds into it (it
 *     is zeroed just before, or that backward stores into it instead:
 *     bg_node.grad_fresh) to its producer's backward, which reads it.
 * An eval graph (no gradients) has only the forward half, so nothing
 * outlives its last forward reader. Buffers whose lives do not overlap
 * share bytes of one arena: offsets are assigned greedily, largest buffer
 * first, at the lowest offset free over its whole life.
 *
 * In place: on CPU graphs, an op row that allows it (bg_op.inplace: relu,
 * add) writes its output over an input that nothing reads after it; the
 * output's buffer is then the input's, its life extended.
 *
 * Parameters, their gradients, optimizer state and the graph's own input
 * tensors (bg_graph_tensor) are not planned: they outlive a step. */
#ifndef BG_PLAN_H
#define BG_PLAN_H
#include "op.h"

struct bg_graph;

typedef struct {
    bg_tensor *t;   /* the tensor it backs (an activation's grad tensor for gradients) */
    size_t bytes;   /* rounded to BG_ALLOC_ALIGN */
    int start, end; /* first and last step of its life, inclusive */
    size_t offset;  /* in the arena */
    bool is_grad;   /* zeroed at `start` before that step's backward adds into it */
    int alias;      /* 1 + the buffer whose bytes this one takes over in place (bg_op.inplace), 0 = its own */
} bg_plan_buf;

typedef struct bg_plan {
    bg_plan_buf *bufs;
    int n_bufs;
    int n_steps;          /* 2N with gradients, N without */
    size_t arena_bytes;   /* the packed arena */
    size_t sum_bytes;     /* every buffer end to end: what the eager graph holds */
    size_t scratch_bytes; /* the largest kernel scratch of any one call (bg_op.scratch) */
    int *grad_order;      /* the gradient buffers by start step: the backward zeroes them in this order */
    int n_grads;
} bg_plan;

/* The liveness of every buffer of g (recorded, storage or not) and their
 * offsets. loss: the tensor backward starts from (NULL for an eval plan or
 * a graph without gradients); keep: tensors read after the step. Activation
 * gradient tensors must exist (unbound) before: bg_graph_plan makes them. */
bg_status bg_plan_build(bg_ctx *ctx, const struct bg_graph *g, const bg_tensor *loss, bg_tensor *const *keep,
                        int n_keep, bg_plan *out);
/* Offsets for buffers whose sizes and lives are set; returns the arena size. */
size_t bg_plan_pack(bg_plan_buf *b, int n);
void bg_plan_free(bg_plan *p);

#endif
