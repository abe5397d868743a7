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

#endif
