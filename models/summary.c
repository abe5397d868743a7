/* The model summary, read from a recorded graph: per section (the blocks
 * the forward marks) the output shape, the parameters first used there, the
 * MACs of its conv and linear nodes (each op's own count, divided by the
 * batch: per image) and its activation memory.
 *
 * Activation memory = bytes of every tensor the graph keeps for backward:
 * each node's outputs and saved tensors, plus the input batch and labels, at
 * the model's dtype (f32). Gradient buffers, parameters, optimizer state and
 * the conv im2col scratch are not included. Every such tensor either scales
 * with the batch or does not depend on it (BN's per-channel statistics), so
 * recording at batch 1 and 2 gives mem(B) = m1 + (B-1)(m2 - m1) exactly,
 * without running a big batch. The graph is recorded in eval mode: the same
 * tensors as training, but the running statistics are left alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../ops/ops.h"
#include "model.h"

typedef struct {
    double *bytes;   /* per section */
    double input_bytes;
} mem_pass;

static double tensor_bytes(const bg_tensor *t) { return t ? (double)bg_nbytes(t) : 0.0; }

/* Record forward + loss at `batch`; marks land in m->marks. */
static bg_status record(bg_ctx *ctx, bg_model *m, int batch, int c, int h, int w, bg_graph **out, bg_tensor **loss)
{
    *out = NULL;
    bg_graph *g = bg_graph_new(ctx, m->device, false);
    if (!g) return ctx->status;
    int64_t xs[4] = {batch, h, w, c}, ys[1] = {batch};
    bg_tensor *x = bg_graph_tensor(g, m->dtype, 4, xs, "input");
    bg_tensor *y = bg_graph_tensor(g, BG_I32, 1, ys, "labels");
    bg_status s = x && y ? BG_OK : ctx->status;
    if (!s && m->device == BG_CPU) {
        /* deterministic, finite input; the values do not matter */
        for (int64_t i = 0; i < bg_numel(x); i++) bg_set(x, i, (double)(i % 7) * 0.25 - 0.75);
        for (int64_t i = 0; i < batch; i++) ((int32_t *)y->data)[i] = (int32_t)(i % m->n_classes);
    } else if (!s) {
        s = bg_tensor_zero(ctx, x);
        if (!s) s = bg_tensor_zero(ctx, y);
    }
    m->n_marks = 0;
    m->cap_marks = 64;
    m->marks = calloc((size_t)m->cap_marks, sizeof *m->marks);
    if (!s && !m->marks) s = bg_fail(ctx, BG_ERR_OOM, "summary: out of host memory");
    bg_tensor *logits = s ? NULL : bg_model_forward(g, m, x);
    bg_tensor *l = logits ? bg_softmax_xent(g, logits, y, 0.0f) : NULL;
    if (!s && !l) s = ctx->status ? ctx->status : bg_fail(ctx, BG_ERR_ARG, "summary of %s failed", m->spec);
    if (s) {
        bg_graph_free(g);
        return s;
    }
    *out = g;
    *loss = l;
    return BG_OK;
}

static void clear_marks(bg_model *m)
{
    free(m->marks);
    m->marks = NULL;
    m->n_marks = m->cap_marks = 0;
}

static void section_bytes(const bg_graph *g, const bg_model *m, double *bytes)
{
    int sec = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        while (sec < m->n_marks && i >= m->marks[sec].end_node) sec++;
        const bg_node *n = &g->nodes[i];
        double b = 0;
        for (int k = 0; k < n->n_out; k++) b += tensor_bytes(n->out[k]);
        for (int k = 0; k < n->n_saved; k++) b += tensor_bytes(n->saved[k]);
        bytes[sec < m->n_marks ? sec : m->n_marks] += b;
    }
}

bg_status bg_model_summary(bg_ctx *ctx, bg_model *m, int batch, int c, int h, int w, bool with_memory, bg_summary *out)
{
    memset(out, 0, sizeof *out);
    if (batch < 1) return bg_fail(ctx, BG_ERR_ARG, "summary of %s: batch %d must be >= 1", m->spec, batch);
    if (c <= 0) c = m->in_c;
    if (h <= 0) h = m->in_h;
    if (w <= 0) w = m->in_w;
    out->batch = batch, out->c = c, out->h = h, out->w = w;
    out->params = bg_model_param_count(m);

    bg_graph *g1 = NULL, *g2 = NULL;
    bg_tensor *loss;
    double *b1 = NULL, *b2 = NULL;
    bg_status s = record(ctx, m, 1, c, h, w, &g1, &loss);
    if (s) goto done;
    int n_sec = m->n_marks + 1; /* the loss node follows the last mark */
    out->rows = calloc((size_t)n_sec, sizeof *out->rows);
    b1 = calloc((size_t)n_sec, sizeof *b1);
    b2 = calloc((size_t)n_sec, sizeof *b2);
    if (!out->rows || !b1 || !b2) {
        s = bg_fail(ctx, BG_ERR_OOM, "summary: out of host memory");
        goto done;
    }
    out->n_rows = n_sec;
    bg_model_mark *marks = m->marks;
    /* params, MACs, shapes, batch-1 bytes */
    bg_tensor **seen = calloc((size_t)m->n_sd + 1, sizeof *seen);
    int n_seen = 0, sec = 0;
    if (!seen) {
        s = bg_fail(ctx, BG_ERR_OOM, "summary: out of host memory");
        goto done;
    }
    for (int i = 0; i < n_sec; i++)
        snprintf(out->rows[i].name, sizeof out->rows[i].name, "%s", i < m->n_marks ? marks[i].name : "loss");
    for (int i = 0; i < g1->n_nodes; i++) {
        while (sec < m->n_marks && i >= marks[sec].end_node) sec++;
        bg_summary_row *r = &out->rows[sec];
        const bg_node *n = &g1->nodes[i];
        r->n_nodes++;
        if (n->op->macs) r->macs += n->op->macs(n);
        r->ndim = n->out[0]->ndim;
        memcpy(r->shape, n->out[0]->shape, sizeof r->shape);
        for (int k = 0; k < n->n_in; k++) {
            bg_tensor *t = n->in[k];
            if (!t || !t->is_param) continue;
            bool dup = false;
            for (int j = 0; j < n_seen && !dup; j++) dup = seen[j] == t;
            if (dup || n_seen >= m->n_sd) continue;
            seen[n_seen++] = t;
            r->params += bg_numel(t);
        }
    }
    free(seen);
    section_bytes(g1, m, b1);
    double in1 = tensor_bytes(g1->owned[0]) + tensor_bytes(g1->owned[1]), in2 = 2 * in1;
    bg_graph_free(g1);
    g1 = NULL;
    if (with_memory && batch > 1) {
        clear_marks(m);
        if ((s = record(ctx, m, 2, c, h, w, &g2, &loss))) goto done;
        section_bytes(g2, m, b2);
        in2 = tensor_bytes(g2->owned[0]) + tensor_bytes(g2->owned[1]);
        bg_graph_free(g2);
        g2 = NULL;
    }
    for (int i = 0; i < n_sec; i++) {
        bg_summary_row *r = &out->rows[i];
        out->macs += r->macs;
        if (r->ndim > 0) r->shape[0] = r->shape[0] == 1 && i < n_sec - 1 ? batch : r->shape[0];
        if (with_memory) r->act_bytes = batch == 1 ? b1[i] : b1[i] + (batch - 1) * (b2[i] - b1[i]);
        out->act_bytes += r->act_bytes;
    }
    if (with_memory) {
        out->input_bytes = batch == 1 ? in1 : in1 + (batch - 1) * (in2 - in1);
        out->act_bytes += out->input_bytes;
    }
done:
    bg_graph_free(g1);
    bg_graph_free(g2);
    clear_marks(m);
    free(b1);
    free(b2);
    if (s) bg_summary_free(out);
    return s;
}

void bg_summary_free(bg_summary *s)
{
    free(s->rows);
    s->rows = NULL;
    s->n_rows = 0;
}
