/* bg_graph_plan: a deferred graph's gradients, plan, arena and bindings. */
#include <stdio.h>
#include <stdlib.h>
#include "alloc.h"
#include "graph.h"

/* Unbound gradient tensors for every activation that needs one (the plan
 * places them); leaf tensors (parameters, inputs marked requires_grad) get
 * real, zeroed storage: their gradients outlive the step. */
static bg_status make_grads(bg_graph *g)
{
    bg_ctx *ctx = g->ctx;
    for (int i = 0; i < g->n_nodes; i++) {
        bg_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            bg_tensor *t = n->in[k];
            if (!t || !t->requires_grad || t->grad || !t->data) continue; /* unbound: an activation, below */
            bg_status s = bg_tensor_ensure_grad(ctx, t);
            if (s) return s;
        }
        for (int k = 0; k < n->n_out; k++) {
            bg_tensor *t = n->out[k];
            if (!t->requires_grad || t->grad) continue;
            char nm[64];
            snprintf(nm, sizeof nm, "%.40s.grad", t->name);
            t->grad = bg_tensor_unbound(ctx, t->device, t->dtype, t->ndim, t->shape, nm);
            if (!t->grad) return ctx->status;
            t->grad->layout = t->layout;
        }
    }
    return BG_OK;
}

bg_status bg_graph_plan(bg_graph *g, const bg_tensor *loss, bg_tensor *const *keep, int n_keep)
{
    bg_ctx *ctx = g->ctx;
    if (!g->defer) return bg_fail(ctx, BG_ERR_ARG, "plan: the graph was recorded eagerly (set defer before recording)");
    if (g->plan) return bg_fail(ctx, BG_ERR_ARG, "plan: the graph is planned already");
    if (loss && !g->grad) return bg_fail(ctx, BG_ERR_ARG, "plan: a loss for a graph recorded without gradients");
    bg_status s = loss ? make_grads(g) : BG_OK;
    if (s) return s;
    bg_plan *p = calloc(1, sizeof *p);
    if (!p) return bg_fail(ctx, BG_ERR_OOM, "plan: out of host memory");
    if ((s = bg_plan_build(ctx, g, loss, keep, n_keep, p))) {
        free(p);
        return s;
    }
    void *arena = NULL;
    if (p->arena_bytes && (s = bg_alloc(ctx, g->device, p->arena_bytes, "graph.arena", &arena))) {
        bg_plan_free(p);
        free(p);
        return s;
    }
    for (int i = 0; i < p->n_bufs; i++) p->bufs[i].t->data = (char *)arena + p->bufs[i].offset;
    g->plan = p;
    g->arena = arena;
    g->plan_loss = loss;
    return BG_OK;
}

/* The leaf tensors (parameters...) that need a gradient, each once. */
static int leaves(const bg_graph *g, bg_tensor **out, int cap)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            bg_tensor *t = g->nodes[i].in[k];
            if (!t || !t->requires_grad || !t->data) continue;
            bool seen = false;
            for (int j = 0; j < n && !seen; j++) seen = out[j] == t;
            if (!seen && n < cap) out[n++] = t;
        }
    return n;
}

bg_status bg_graph_plan_dry(bg_graph *g, const bg_tensor *loss, bg_tensor *const *keep, int n_keep, bg_plan *out,
                            size_t *leaf_grad_bytes)
{
    bg_ctx *ctx = g->ctx;
    *leaf_grad_bytes = 0;
    if (!g->defer || g->plan) return bg_fail(ctx, BG_ERR_ARG, "plan: a dry plan needs a deferred, unplanned graph");
    if (loss && !g->grad) return bg_fail(ctx, BG_ERR_ARG, "plan: a loss for a graph recorded without gradients");
    bg_tensor **leaf = NULL;
    bool *temp = NULL;
    int n = 0;
    bg_status s = BG_OK;
    if (loss) {
        int cap = 1;
        for (int i = 0; i < g->n_nodes; i++) cap += g->nodes[i].n_in;
        leaf = calloc((size_t)cap, sizeof *leaf);
        temp = calloc((size_t)cap, sizeof *temp);
        if (!leaf || !temp) s = bg_fail(ctx, BG_ERR_OOM, "plan: out of host memory");
        if (!s) n = leaves(g, leaf, cap);
        /* stand-in grads without storage, so the scratch rows see which grads the backward computes */
        for (int i = 0; i < n && !s; i++) {
            *leaf_grad_bytes += bg_alloc_rounded(bg_nbytes(leaf[i]));
            if (leaf[i]->grad) continue;
            leaf[i]->grad = bg_tensor_unbound(ctx, leaf[i]->device, leaf[i]->dtype, leaf[i]->ndim, leaf[i]->shape, "dry.grad");
            temp[i] = leaf[i]->grad != NULL;
            if (!leaf[i]->grad) s = ctx->status;
        }
        if (!s) s = make_grads(g); /* activations only now: every leaf has a grad */
    }
    if (!s) s = bg_plan_build(ctx, g, loss, keep, n_keep, out);
    for (int i = 0; i < n; i++)
        if (temp[i]) bg_tensor_free(ctx, leaf[i]->grad), leaf[i]->grad = NULL;
    free(leaf);
    free(temp);
    return s;
}
