/* The tape: record-while-running, replay, reverse-mode backward. */
#include "graph.h"
#include <stdlib.h>
#include <string.h>
#ifdef BG_WITH_CUDA
#include "../kernels/amp.h"
#include "../kernels/cuda_api.h"
#endif

bg_graph *bg_graph_new(bg_ctx *ctx, bg_device device, bool train)
{
    bg_graph *g = calloc(1, sizeof *g);
    if (!g) {
        bg_fail(ctx, BG_ERR_OOM, "graph: out of host memory");
        return NULL;
    }
    g->ctx = ctx;
    g->device = device;
    g->train = train;
    g->grad = train;
    g->fuse = true;
    return g;
}

void bg_graph_free(bg_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) bg_node_release(g->ctx, &g->nodes[i]);
    for (int i = 0; i < g->n_owned; i++) bg_tensor_free(g->ctx, g->owned[i]);
    if (g->arena) bg_free(g->ctx, g->device, g->arena, g->plan->arena_bytes);
    bg_plan_free(g->plan);
    free(g->plan);
    free(g->nodes);
    free(g->owned);
    free(g);
}

static bool own(bg_graph *g, bg_tensor *t)
{
    if (g->n_owned == g->cap_owned) {
        int cap = g->cap_owned ? 2 * g->cap_owned : 64;
        bg_tensor **p = realloc(g->owned, (size_t)cap * sizeof *p);
        if (!p) return false;
        g->owned = p;
        g->cap_owned = cap;
    }
    g->owned[g->n_owned++] = t;
    return true;
}

bg_tensor *bg_graph_tensor(bg_graph *g, bg_dtype dt, int ndim, const int64_t *shape, const char *name)
{
    bg_tensor *t = bg_tensor_new(g->ctx, g->device, dt, ndim, shape, name);
    if (t && !own(g, t)) {
        bg_tensor_free(g->ctx, t);
        bg_fail(g->ctx, BG_ERR_OOM, "graph: out of host memory");
        return NULL;
    }
    return t;
}

bg_tensor *bg_graph_op(bg_graph *g, const bg_op *op, const void *params, bg_tensor *const *in, int n_in)
{
    bg_ctx *ctx = g->ctx;
    for (int i = 0; i < n_in && i < op->n_in_required; i++)
        if (!in[i]) return NULL; /* an earlier builder call failed; its error stands */
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        bg_node *p = realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) {
            bg_fail(ctx, BG_ERR_OOM, "graph: out of host memory");
            return NULL;
        }
        g->nodes = p;
        g->cap_nodes = cap;
    }
    bg_node *n = &g->nodes[g->n_nodes];
    if (g->plan) {
        bg_fail(ctx, BG_ERR_ARG, "%s: the graph's memory is planned; nothing more can be recorded", op->name);
        return NULL;
    }
    if (bg_node_init_ex(ctx, n, op, params, in, n_in, g->train, !g->defer)) return NULL;
    if (!g->defer && bg_node_forward(ctx, n)) {
        bg_node_release(ctx, n);
        return NULL;
    }
    bool needs_grad = false;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && op->in_differentiable[i] && n->in[i]->requires_grad) needs_grad = true;
    for (int i = 0; i < n->n_out; i++) n->out[i]->requires_grad = g->grad && needs_grad;
    g->n_nodes++;
    return n->out[0];
}

bg_tensor *bg_graph_last_out(bg_graph *g, int k)
{
    if (g->n_nodes == 0 || k < 0 || k >= g->nodes[g->n_nodes - 1].n_out) return NULL;
    return g->nodes[g->n_nodes - 1].out[k];
}

void bg_graph_set_train(bg_graph *g, bool train)
{
    g->train = train;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].train = train;
}

bg_status bg_graph_forward(bg_graph *g)
{
    if (g->defer && !g->plan)
        return bg_fail(g->ctx, BG_ERR_ARG, "forward: the graph was recorded deferred and has no memory yet (bg_graph_plan)");
    for (int i = 0; i < g->n_nodes; i++) {
        bg_status s = bg_node_forward(g->ctx, &g->nodes[i]);
        if (s) return s;
    }
    return BG_OK;
}

static bg_status zero_grad(bg_ctx *ctx, bg_tensor *t)
{
    if (!t || !t->requires_grad) return BG_OK;
    if (!t->grad) return bg_tensor_ensure_grad(ctx, t); /* allocated zeroed */
    return bg_tensor_zero(ctx, t->grad);
}

static bg_status set_one(bg_ctx *ctx, const bg_graph *g, bg_tensor *t)
{
#ifdef BG_WITH_CUDA
    if (t->device == BG_CUDA && (t->dtype == BG_F32 || t->dtype == BG_F16)) {
        char err[200];
        bg_cuda_seed_grad(t->data, t->dtype == BG_F16, g->loss_seed, ctx->stream);
        if (bg_cuda_check_launch(err, sizeof err)) return bg_fail(ctx, BG_ERR_CUDA, "backward seed: %s", err);
        return BG_OK;
    }
#else
    (void)g;
#endif
    double one64 = 1.0;
    float one32 = 1.0f;
    uint16_t one16 = bg_f32_to_f16(1.0f);
    const void *src = t->dtype == BG_F64 ? (const void *)&one64 : t->dtype == BG_F16 ? (const void *)&one16 : (const void *)&one32;
    return bg_tensor_upload(ctx, t, src, bg_dtype_size(t->dtype));
}

/* The input of n whose gradient is grad t, when n's fast backward may
 * store into it instead of adding into zeros (bg_node.grad_fresh): the
 * row says it can, the fast CPU kernels run, and t is the gradient of one
 * input only (x + x adds twice into one buffer). -1 otherwise. */
static int fresh_input(const bg_ctx *ctx, const bg_node *n, const bg_tensor *t)
{
    if (!n->op->fast_bwd_stores || t->device != BG_CPU || ctx->cpu_backend != BG_CPU_FAST) return -1;
    int k = -1;
    for (int j = 0; j < n->n_in; j++) {
        if (!n->in[j] || n->in[j]->grad != t) continue;
        if (k >= 0) return -1;
        k = j;
    }
    return k < 8 ? k : -1;
}

/* The planned backward: activation gradients share arena bytes, so each
 * is zeroed just before the first backward step that adds into it (the
 * plan's order), not all at the start; or not at all where that step's
 * fast kernel stores into it (fresh_input). */
static bg_status bg_graph_backward_planned(bg_graph *g, bg_tensor *loss)
{
    bg_ctx *ctx = g->ctx;
    const bg_plan *p = g->plan;
    if (loss != g->plan_loss)
        return bg_fail(ctx, BG_ERR_ARG, "backward: '%s' is not the loss the graph's memory was planned for", loss->name);
    for (int i = 0; i < g->n_nodes; i++) { /* leaf gradients (parameters): their own storage */
        bg_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            bg_tensor *t = n->in[k];
            if (t && t->requires_grad && t->grad && t->grad->alloc_bytes) {
                bg_status s = bg_tensor_zero(ctx, t->grad);
                if (s) return s;
            }
        }
    }
    const int N = g->n_nodes;
    int c = 0;
    for (int i = N - 1; i >= 0; i--) {
        const int step = 2 * N - 1 - i;
        bg_node *n = &g->nodes[i];
        bool any = false;
        for (int k = 0; k < n->n_out; k++) any |= n->out[k]->requires_grad;
        for (; c < p->n_grads && p->bufs[p->grad_order[c]].start <= step; c++) {
            const bg_plan_buf *b = &p->bufs[p->grad_order[c]];
            bg_tensor *t = b->t;
            const int k = any && b->start == step ? fresh_input(ctx, n, t) : -1;
            if (k >= 0) {
                n->grad_fresh |= (unsigned char)(1u << k);
                continue;
            }
            bg_status s = bg_tensor_zero(ctx, t);
            if (s) return s;
        }
        if (i == N - 1) {
            bg_status s = set_one(ctx, g, loss->grad);
            if (s) return s;
        }
        if (!any) continue;
        bg_status s = bg_node_backward(ctx, n);
        if (s) return s;
    }
    return BG_OK;
}

bg_status bg_graph_backward(bg_graph *g, bg_tensor *loss)
{
    bg_ctx *ctx = g->ctx;
    if (!g->grad) return bg_fail(ctx, BG_ERR_ARG, "backward: the graph was recorded without gradients (eval mode)");
    if (!loss || bg_numel(loss) != 1 || !bg_dtype_is_float(loss->dtype))
        return bg_fail(ctx, BG_ERR_SHAPE, "backward: the loss must be a one-element float tensor");
    if (!loss->requires_grad)
        return bg_fail(ctx, BG_ERR_ARG, "backward: '%s' does not depend on any parameter", loss->name);
    if (g->plan) return bg_graph_backward_planned(g, loss);
    /* Zero every gradient reachable from the tape: parameters (so each step
     * starts clean) and activations (backward functions accumulate). */
    for (int i = 0; i < g->n_nodes; i++) {
        bg_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            bg_status s = zero_grad(ctx, n->in[k]);
            if (s) return s;
        }
        for (int k = 0; k < n->n_out; k++) {
            bg_status s = zero_grad(ctx, n->out[k]);
            if (s) return s;
        }
    }
    bg_status s = set_one(ctx, g, loss->grad);
    if (s) return s;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        bg_node *n = &g->nodes[i];
        bool any = false;
        for (int k = 0; k < n->n_out; k++) any |= n->out[k]->requires_grad;
        if (!any) continue;
        s = bg_node_backward(ctx, n);
        if (s) return s;
    }
    return BG_OK;
}

int bg_graph_params(const bg_graph *g, bg_tensor **out, int cap)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const bg_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_in; k++) {
            bg_tensor *t = nd->in[k];
            if (!t || !t->is_param) continue;
            bool seen = false;
            for (int j = 0; j < n && j < cap; j++) seen |= out[j] == t;
            if (seen) continue;
            if (n < cap) out[n] = t;
            n++;
        }
    }
    return n;
}
