/* CUDA graphs: record the work a function enqueues on the context's stream
 * once (stream capture), then replay it with one launch. A training step is
 * hundreds of small kernels; replaying them as a graph removes the CPU's
 * launch overhead and the gaps between kernels.
 *
 * What a captured function may do: enqueue kernels, device-to-device copies
 * and memsets on ctx->stream, and allocate and free device memory through
 * the context's allocator (a per-call workspace): blocks freed during the
 * capture are pinned to the graph until it is freed (engine/alloc.h), so the
 * graph's pointers stay valid and no one else gets those bytes. Such
 * requests should hit the allocator's cache (the eager first step put the
 * same sizes there): a cudaMalloc inside a capture may be refused. What it
 * must not do: synchronise, copy to or from the host, or read device memory
 * on the host (those calls fail inside a capture, and the capture reports
 * it). Kernel arguments are frozen at capture: anything that changes per
 * step (the learning rate, step counts, the loss scale) must live in device
 * memory that the captured kernels read, and be written before each replay.
 *
 * The capture is thread-local (cudaStreamCaptureModeThreadLocal): loader
 * threads may keep using the runtime while the trainer captures. */
#ifndef BG_CUDA_GRAPH_H
#define BG_CUDA_GRAPH_H
#include <stdbool.h>
#include <stddef.h>
#include "context.h"
#include "loss_scale.h"
#include "trainer.h"

typedef struct bg_cuda_graph bg_cuda_graph;
typedef bg_status (*bg_capture_fn)(bg_ctx *ctx, void *arg);

/* Run fn(ctx, arg) under capture on ctx->stream (a CUDA context) and
 * instantiate what it enqueued. Nothing executes during the capture: launch
 * the graph to run it. On failure nothing is kept and the error says why
 * (fn's own error is passed through, prefixed). */
bg_status bg_cuda_graph_capture(bg_ctx *ctx, bg_capture_fn fn, void *arg, bg_cuda_graph **out);
/* Enqueue one replay on ctx->stream (asynchronous). */
bg_status bg_cuda_graph_launch(bg_ctx *ctx, const bg_cuda_graph *g);
/* Nodes (kernels, copies, memsets) in the graph, for reports. */
size_t bg_cuda_graph_nodes(const bg_cuda_graph *g);
/* Bytes of device memory pinned by the graph (workspaces freed during capture). */
size_t bg_cuda_graph_pinned_bytes(const bg_cuda_graph *g);
/* Frees the graph and returns its pinned blocks to ctx's cache. NULL is fine. */
void bg_cuda_graph_free(bg_ctx *ctx, bg_cuda_graph *g);

/* ---- the trainer's CUDA step ------------------------------------------------------
 * A CUDA trainer (engine/trainer.c) records and runs its first step eagerly
 * (that allocates every gradient and warms the tables), then captures
 * forward + loss + backward + [inf/NaN check] + optimizer update into one
 * graph and replays it every later step. Host work per step: upload the
 * batch into the same input tensors, write the optimizer's per-step scalars
 * (and the loss scale) into device memory, launch, download the loss. If the
 * capture fails (an op that cannot be captured), the trainer says why in
 * graph_note and replays eagerly instead; the result is the same.
 *
 * Mixed precision (amp): the inputs are f16 (the model's parameters must be
 * f16 already, e.g. bg_model_to(..., BG_F16)); BN statistics, the loss and
 * the optimizer's masters stay f32; d(loss) is seeded with the loss scale,
 * the gradients are checked for inf/NaN and unscaled inside the update, and
 * a step with an overflow is skipped (bg_loss_scaler_update). */
typedef struct {
    bool graph;             /* capture and replay the step (default true) */
    bool amp;               /* mixed precision (default false) */
    bg_loss_scaler scaler;  /* amp only (default bg_loss_scaler_defaults()) */
} bg_trainer_cuda_opts;

typedef struct {
    bool graph_active;      /* the last step was a graph replay */
    size_t graph_nodes;
    size_t graph_pinned_bytes;  /* workspaces pinned by the graph */
    int64_t captures;       /* captures so far (a new one when the launch layout changes) */
    char graph_note[256];   /* why the graph is off, "" when it is not */
    bool amp;
    double loss_scale;
    int64_t skipped_steps;
    bool last_skipped;
} bg_trainer_cuda_status;

bg_trainer_cuda_opts bg_trainer_cuda_defaults(void);
/* Before the first step of a CUDA trainer. */
bg_status bg_trainer_set_cuda(bg_trainer *tr, const bg_trainer_cuda_opts *o);
void bg_trainer_cuda_get_status(const bg_trainer *tr, bg_trainer_cuda_status *out);

/* Used by engine/trainer.c. */
bg_status bg_trainer_cuda_init(bg_trainer *tr);           /* default state for a CUDA trainer */
void bg_trainer_cuda_free(bg_trainer *tr);
bg_dtype bg_trainer_input_dtype(const bg_trainer *tr);   /* f16 under amp, else f32 */
/* Upload n floats (bg_numel(t)) into input tensor t, converting to f16 if t is f16. */
bg_status bg_trainer_upload_input(bg_trainer *tr, bg_tensor *t, const float *host);
/* Download t (f32, or f16 converted) into bg_numel(t) floats. */
bg_status bg_trainer_download_f32(bg_trainer *tr, const bg_tensor *t, float *host);
/* The rest of a step once the batch is uploaded: on the first step (the
 * forward already ran while recording) backward + update; afterwards the
 * whole step, replayed as a graph when possible. *loss gets the loss. */
bg_status bg_trainer_cuda_step(bg_trainer *tr, double lr, bool first, double *loss);

#endif
