/* CUDA graph capture and replay (see cuda_graph.h). The runtime's graph API
 * is a C API, so this module calls it directly; builds without CUDA get
 * stubs that say so. */
#include "cuda_graph.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef BG_WITH_CUDA
#include <cuda_runtime_api.h>
#include "../kernels/cuda_api.h"
#endif

struct bg_cuda_graph {
#ifdef BG_WITH_CUDA
    cudaGraphExec_t exec;
#endif
    size_t n_nodes;
    bg_alloc_blocks *pinned; /* device blocks the graph uses (see alloc.h) */
    size_t pinned_bytes;
};


#ifdef BG_WITH_CUDA
static bg_status cuda_fail(bg_ctx *ctx, cudaError_t e, const char *what)
{
    cudaGetLastError(); /* a failed capture leaves the error sticky for the thread's next check */
    return bg_fail(ctx, BG_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}

bg_status bg_cuda_graph_capture(bg_ctx *ctx, bg_capture_fn fn, void *arg, bg_cuda_graph **out)
{
    *out = NULL;
    if (ctx->device != BG_CUDA || !ctx->stream)
        return bg_fail(ctx, BG_ERR_UNSUPPORTED, "CUDA graph capture needs a CUDA context (its own stream)");
    cudaStream_t st = (cudaStream_t)ctx->stream;
    cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) return cuda_fail(ctx, e, "CUDA graph capture: begin");
    bg_alloc_capture_begin(ctx, BG_CUDA);
    bg_status s = fn(ctx, arg);
    bg_alloc_blocks *pinned = bg_alloc_capture_end(ctx, BG_CUDA);
    cudaGraph_t graph = NULL;
    cudaError_t end = cudaStreamEndCapture(st, &graph);
    if (s) {
        if (graph) cudaGraphDestroy(graph);
        bg_alloc_blocks_release(ctx, BG_CUDA, pinned); /* nothing ran: the blocks are free again */
        cudaGetLastError();
        char msg[sizeof ctx->err];
        snprintf(msg, sizeof msg, "%s", ctx->err);
        return bg_fail(ctx, s, "during CUDA graph capture: %s", msg);
    }
    if (end != cudaSuccess || !graph) {
        if (graph) cudaGraphDestroy(graph);
        bg_alloc_blocks_release(ctx, BG_CUDA, pinned);
        return cuda_fail(ctx, end != cudaSuccess ? end : cudaErrorStreamCaptureInvalidated,
                         "CUDA graph capture failed (a step must not synchronise or copy to or from the host)");
    }
    bg_cuda_graph *g = calloc(1, sizeof *g);
    if (!g) {
        cudaGraphDestroy(graph);
        bg_alloc_blocks_release(ctx, BG_CUDA, pinned);
        return bg_fail(ctx, BG_ERR_OOM, "CUDA graph: out of host memory");
    }
    cudaGraphGetNodes(graph, NULL, &g->n_nodes);
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph); /* the executable graph keeps what it needs */
    if (e != cudaSuccess) {
        free(g);
        bg_alloc_blocks_release(ctx, BG_CUDA, pinned);
        return cuda_fail(ctx, e, "CUDA graph instantiate");
    }
    g->pinned = pinned;
    g->pinned_bytes = bg_alloc_blocks_bytes(pinned);
    *out = g;
    return BG_OK;
}

bg_status bg_cuda_graph_launch(bg_ctx *ctx, const bg_cuda_graph *g)
{
    if (!g) return bg_fail(ctx, BG_ERR_ARG, "CUDA graph launch: NULL graph");
    cudaError_t e = cudaGraphLaunch(g->exec, (cudaStream_t)ctx->stream);
    return e == cudaSuccess ? BG_OK : cuda_fail(ctx, e, "CUDA graph launch");
}

void bg_cuda_graph_free(bg_ctx *ctx, bg_cuda_graph *g)
{
    if (!g) return;
    cudaGraphExecDestroy(g->exec);
    bg_alloc_blocks_release(ctx, BG_CUDA, g->pinned);
    free(g);
}
#else
bg_status bg_cuda_graph_capture(bg_ctx *ctx, bg_capture_fn fn, void *arg, bg_cuda_graph **out)
{
    (void)fn, (void)arg;
    *out = NULL;
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "CUDA graph capture: this build has no CUDA");
}

bg_status bg_cuda_graph_launch(bg_ctx *ctx, const bg_cuda_graph *g)
{
    (void)g;
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "CUDA graph launch: this build has no CUDA");
}

void bg_cuda_graph_free(bg_ctx *ctx, bg_cuda_graph *g)
{
    (void)ctx;
    free(g);
}
#endif

size_t bg_cuda_graph_nodes(const bg_cuda_graph *g) { return g ? g->n_nodes : 0; }
size_t bg_cuda_graph_pinned_bytes(const bg_cuda_graph *g) { return g ? g->pinned_bytes : 0; }
