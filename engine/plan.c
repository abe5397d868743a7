/* The memory planner (see plan.h): liveness over the tape, then packing. */
#include "plan.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "graph.h"

/* tensor -> buffer index, sorted by address for bsearch */
typedef struct {
    const bg_tensor *t;
    int buf;
} slot;

static int cmp_slot(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const slot *)a)->t, y = (uintptr_t)((const slot *)b)->t;
    return x < y ? -1 : x > y;
}

static int find(const slot *map, int n, const bg_tensor *t)
{
    if (!t) return -1;
    slot key = {t, 0};
    const slot *s = bsearch(&key, map, (size_t)n, sizeof *map, cmp_slot);
    return s ? s->buf : -1;
}

static bool bwd_reads(const bg_node *n, bool out, int k)
{
    unsigned m = n->op->bwd_reads;
    if (!(m & BG_BWD_STATED)) return true;
    return (m & (out ? BG_BWD_OUT(k) : BG_BWD_IN(k))) != 0;
}

static bool runs_bwd(const bg_graph *g, const bg_node *n, bool with_grad)
{
    if (!with_grad || !g->grad) return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k]->requires_grad) return true;
    return false;
}

static void add_buf(bg_plan *p, bg_tensor *t, int step, bool is_grad)
{
    bg_plan_buf *b = &p->bufs[p->n_bufs++];
    memset(b, 0, sizeof *b);
    b->t = t;
    b->bytes = bg_alloc_rounded(bg_nbytes(t));
    b->start = b->end = step;
    b->is_grad = is_grad;
}

static void extend(bg_plan *p, int buf, int step)
{
    if (buf >= 0 && p->bufs[buf].end < step) p->bufs[buf].end = step;
}

static int cmp_grad_start(const void *a, const void *b, void *bufs)
{
    const bg_plan_buf *v = bufs;
    int x = *(const int *)a, y = *(const int *)b;
    return v[x].start != v[y].start ? (v[x].start > v[y].start) - (v[x].start < v[y].start) : (x > y) - (x < y);
}

/* qsort has no context argument in C11: a plain insertion sort (grads are few thousand at most) */
static void sort_grads(int *idx, int n, const bg_plan_buf *bufs)
{
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i;
        while (j > 0 && cmp_grad_start(&idx[j - 1], &v, (void *)bufs) > 0) idx[j] = idx[j - 1], j--;
        idx[j] = v;
    }
}

static bg_status liveness(bg_ctx *ctx, const bg_graph *g, const bg_tensor *loss, bg_tensor *const *keep, int n_keep,
                          bg_plan *p, slot *map)
{
    const int N = g->n_nodes;
    const bool grad = loss != NULL && g->grad;
    p->n_steps = grad ? 2 * N : N;
    /* every output and saved tensor, born at its node's forward */
    int nm = 0;
    for (int i = 0; i < N; i++) {
        const bg_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out; k++) map[nm++] = (slot){n->out[k], p->n_bufs}, add_buf(p, n->out[k], i, false);
        for (int k = 0; k < n->n_saved; k++) map[nm++] = (slot){n->saved[k], p->n_bufs}, add_buf(p, n->saved[k], i, false);
    }
    qsort(map, (size_t)nm, sizeof *map, cmp_slot);
    for (int j = 0; j < N; j++) {
        const bg_node *n = &g->nodes[j];
        const bool bwd = runs_bwd(g, n, grad);
        const int tb = 2 * N - 1 - j;
        for (int k = 0; k < n->n_in; k++) {
            int b = find(map, nm, n->in[k]);
            extend(p, b, j);
            if (bwd && bwd_reads(n, false, k)) extend(p, b, tb);
        }
        for (int k = 0; k < n->n_out && bwd; k++)
            if (bwd_reads(n, true, k)) extend(p, find(map, nm, n->out[k]), tb);
        for (int k = 0; k < n->n_saved && bwd; k++) extend(p, find(map, nm, n->saved[k]), tb);
    }
    for (int k = 0; k < n_keep; k++) extend(p, find(map, nm, keep[k]), p->n_steps);
    if (!grad) return BG_OK;
    int lb = find(map, nm, loss);
    if (lb < 0 || !loss->requires_grad || !loss->grad)
        return bg_fail(ctx, BG_ERR_ARG, "plan: the loss '%s' is not an output of the graph that needs a gradient", loss->name);
    /* gradients: from the first backward adding into them to their producer's backward */
    int first_grad = p->n_bufs;
    for (int i = 0; i < N; i++) {
        const bg_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k]->requires_grad) {
                if (!n->out[k]->grad)
                    return bg_fail(ctx, BG_ERR_ARG, "plan: activation '%s' has no gradient tensor", n->out[k]->name);
                add_buf(p, n->out[k]->grad, 2 * N - 1 - i, true);
            }
    }
    /* the map now sends an activation to its gradient's buffer */
    nm = 0;
    int gb = first_grad;
    for (int i = 0; i < N; i++) {
        const bg_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k]->requires_grad) map[nm++] = (slot){n->out[k], gb++};
    }
    qsort(map, (size_t)nm, sizeof *map, cmp_slot);
    for (int j = 0; j < N; j++) {
        const bg_node *n = &g->nodes[j];
        if (!runs_bwd(g, n, grad)) continue;
        for (int k = 0; k < n->n_in; k++) {
            int b = find(map, nm, n->in[k]);
            if (b >= 0 && p->bufs[b].start > 2 * N - 1 - j) p->bufs[b].start = 2 * N - 1 - j;
        }
    }
    /* d(loss) is seeded before the first backward step */
    int b = find(map, nm, loss);
    p->bufs[b].start = N;
    p->n_grads = p->n_bufs - first_grad;
    p->grad_order = malloc((size_t)(p->n_grads > 0 ? p->n_grads : 1) * sizeof *p->grad_order);
    if (!p->grad_order) return bg_fail(ctx, BG_ERR_OOM, "plan: out of host memory");
    for (int i = 0; i < p->n_grads; i++) p->grad_order[i] = first_grad + i;
    sort_grads(p->grad_order, p->n_grads, p->bufs);
    return BG_OK;
}

/* Whether anything but node j reads tensor x after node j's forward: a later
 * forward, a backward that reads it (node j's own excepted: bg_op.inplace
 * promises the output's values serve it), the caller (keep), or another
 * input of node j itself. */
static bool read_after(const bg_graph *g, int j, const bg_tensor *x, bool grad, bg_tensor *const *keep, int n_keep)
{
    for (int k = 0; k < n_keep; k++)
        if (keep[k] == x) return true;
    int uses = 0;
    for (int k = 0; k < g->nodes[j].n_in; k++) uses += g->nodes[j].in[k] == x;
    if (uses != 1) return true;
    for (int i = 0; i < g->n_nodes; i++) {
        const bg_node *n = &g->nodes[i];
        const bool bwd = i != j && runs_bwd(g, n, grad);
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == x && (i > j || (bwd && bwd_reads(n, false, k)))) return true;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] == x && bwd && bwd_reads(n, true, k)) return true;
    }
    return false;
}

static int root_of(const bg_plan *p, int b)
{
    while (p->bufs[b].alias) b = p->bufs[b].alias - 1;
    return b;
}

/* Outputs that take over an input's buffer (CPU graphs; see plan.h). The
 * forward buffers are the first ones, in node order: outputs then saved. */
static void in_place(const bg_graph *g, bool grad, bg_tensor *const *keep, int n_keep, bg_plan *p)
{
    if (g->device != BG_CPU) return; /* the CUDA kernels are not written for y == x */
    int b = 0;
    for (int j = 0; j < g->n_nodes; j++) {
        const bg_node *n = &g->nodes[j];
        const int out0 = b;
        b += n->n_out + n->n_saved;
        for (int k = 0; k < n->n_in && n->op->inplace; k++) {
            const bg_tensor *x = n->in[k];
            if (!(n->op->inplace & BG_BWD_IN(k)) || !x || x->dtype != n->out[0]->dtype ||
                bg_nbytes(x) != bg_nbytes(n->out[0]))
                continue;
            int xb = -1; /* x's buffer: an output of an earlier node */
            for (int q = 0; q < out0 && xb < 0; q++)
                if (p->bufs[q].t == x && !p->bufs[q].is_grad) xb = q;
            if (xb < 0 || read_after(g, j, x, grad, keep, n_keep)) continue;
            const int root = root_of(p, xb);
            bg_plan_buf *r = &p->bufs[root], *y = &p->bufs[out0];
            if (y->end > r->end) r->end = y->end;
            y->alias = root + 1;
            break;
        }
    }
}

bg_status bg_plan_build(bg_ctx *ctx, const bg_graph *g, const bg_tensor *loss, bg_tensor *const *keep, int n_keep,
                        bg_plan *out)
{
    memset(out, 0, sizeof *out);
    int cap = 0;
    for (int i = 0; i < g->n_nodes; i++) cap += 2 * g->nodes[i].n_out + g->nodes[i].n_saved;
    out->bufs = calloc((size_t)(cap > 0 ? cap : 1), sizeof *out->bufs);
    slot *map = calloc((size_t)(cap > 0 ? cap : 1), sizeof *map);
    bg_status s = out->bufs && map ? BG_OK : bg_fail(ctx, BG_ERR_OOM, "plan: out of host memory");
    if (!s) s = liveness(ctx, g, loss, keep, n_keep, out, map);
    free(map);
    if (s) {
        bg_plan_free(out);
        return s;
    }
    for (int i = 0; i < out->n_bufs; i++) out->sum_bytes += out->bufs[i].bytes;
    const bool grad = loss != NULL && g->grad;
    in_place(g, grad, keep, n_keep, out);
    out->arena_bytes = bg_plan_pack(out->bufs, out->n_bufs);
    for (int i = 0; i < g->n_nodes; i++) {
        const bg_node *n = &g->nodes[i];
        if (!n->op->scratch) continue;
        size_t f = n->op->scratch(ctx, n, false), b = runs_bwd(g, n, grad) ? n->op->scratch(ctx, n, true) : 0;
        if (f > out->scratch_bytes) out->scratch_bytes = f;
        if (b > out->scratch_bytes) out->scratch_bytes = b;
    }
    return BG_OK;
}

/* ---- packing ---------------------------------------------------------------------- */
static int cmp_size(const void *a, const void *b, const bg_plan_buf *v)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (v[x].bytes != v[y].bytes) return v[x].bytes < v[y].bytes ? 1 : -1; /* largest first */
    if (v[x].start != v[y].start) return v[x].start < v[y].start ? -1 : 1;
    return (x > y) - (x < y);
}

static int cmp_offset(const void *a, const void *b)
{
    const bg_plan_buf *x = *(bg_plan_buf *const *)a, *y = *(bg_plan_buf *const *)b;
    return x->offset != y->offset ? (x->offset > y->offset) - (x->offset < y->offset) : 0;
}

size_t bg_plan_pack(bg_plan_buf *b, int n)
{
    int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    const bg_plan_buf **live = malloc((size_t)(n > 0 ? n : 1) * sizeof *live);
    size_t arena = 0;
    if (!order || !live) {
        /* no room to plan: every buffer gets its own bytes */
        for (int i = 0; i < n; i++) b[i].offset = arena, arena += b[i].bytes;
        free(order), free(live);
        return arena;
    }
    int m = 0; /* buffers of their own; the aliased take their root's offset at the end */
    for (int i = 0; i < n; i++)
        if (!b[i].alias) order[m++] = i;
    for (int i = 1; i < m; i++) { /* insertion sort: deterministic, n is a few thousand */
        int v = order[i], j = i;
        while (j > 0 && cmp_size(&order[j - 1], &v, b) > 0) order[j] = order[j - 1], j--;
        order[j] = v;
    }
    for (int r = 0; r < m; r++) {
        bg_plan_buf *x = &b[order[r]];
        int nl = 0;
        for (int q = 0; q < r; q++) {
            const bg_plan_buf *y = &b[order[q]];
            if (y->start <= x->end && x->start <= y->end) live[nl++] = y;
        }
        qsort(live, (size_t)nl, sizeof *live, cmp_offset);
        size_t off = 0;
        for (int q = 0; q < nl; q++) {
            if (off + x->bytes <= live[q]->offset) break; /* the gap before it fits */
            if (live[q]->offset + live[q]->bytes > off) off = live[q]->offset + live[q]->bytes;
        }
        x->offset = off;
        if (off + x->bytes > arena) arena = off + x->bytes;
    }
    for (int i = 0; i < n; i++) {
        int r = i;
        while (b[r].alias) r = b[r].alias - 1;
        b[i].offset = b[r].offset;
    }
    free(order);
    free(live);
    return arena;
}

void bg_plan_free(bg_plan *p)
{
    if (!p) return;
    free(p->bufs);
    free(p->grad_order);
    memset(p, 0, sizeof *p);
}
