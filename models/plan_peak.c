/* Planned peaks of a training step and an evaluation (model.h,
 * bg_model_plan_peaks): deferred recordings planned dry, so a batch that
 * would not fit in memory can still be sized. */
#include <string.h>
#include "../engine/alloc.h"
#include "../engine/optim.h"
#include "../ops/ops.h"
#include "model.h"

static double rounded(const bg_tensor *t) { return (double)bg_alloc_rounded(bg_nbytes(t)); }

/* One dry plan: training (with the loss and its backward) or evaluation. */
static bg_status plan_once(bg_ctx *ctx, bg_model *m, bool train, int batch, int c, int h, int w, bg_plan *p,
                           double *input, double *leaf, double *optim)
{
    bg_graph *g = bg_graph_new(ctx, m->device, train);
    if (!g) return ctx->status;
    g->defer = true;
    int64_t xs[4] = {batch, h, w, c}, ys[1] = {batch};
    bg_tensor *x = bg_graph_tensor(g, m->dtype, 4, xs, "input");
    bg_tensor *y = train ? bg_graph_tensor(g, BG_I32, 1, ys, "labels") : NULL;
    bg_tensor *logits = x ? bg_model_forward(g, m, x) : NULL;
    bg_tensor *loss = train && logits && y ? bg_softmax_xent(g, logits, y, 0.0f) : NULL;
    bg_status s = logits && (!train || loss) ? BG_OK : ctx->status ? ctx->status : bg_fail(ctx, BG_ERR_ARG, "plan of %s failed", m->spec);
    size_t lg = 0;
    bg_tensor *keep[2] = {logits, loss};
    if (!s) s = bg_graph_plan_dry(g, loss, keep, train ? 2 : 1, p, &lg);
    if (!s && train) { /* SGD momentum's state for the parameters the step updates */
        bg_tensor *params[1024];
        int n = bg_graph_params(g, params, 1024);
        bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
        oc.momentum = 0.9;
        *optim = n <= 1024 ? (double)bg_optim_state_bytes(&oc, params, n, m->device) : 0;
    }
    *input = (x ? rounded(x) : 0) + (y ? rounded(y) : 0);
    *leaf = (double)lg;
    bg_graph_free(g);
    return s;
}

bg_status bg_model_plan_peaks(bg_ctx *ctx, bg_model *m, int batch, int c, int h, int w, bg_plan_peaks *out)
{
    memset(out, 0, sizeof *out);
    if (batch < 1) return bg_fail(ctx, BG_ERR_ARG, "plan of %s: batch %d must be >= 1", m->spec, batch);
    c = c > 0 ? c : m->in_c, h = h > 0 ? h : m->in_h, w = w > 0 ? w : m->in_w;
    for (int i = 0; i < m->n_sd; i++) {
        const bg_tensor *t = m->sd[i].t;
        if (t->device != m->device) continue; /* counters live on the host */
        out->model += rounded(t);
    }
    bg_plan p;
    double leaf = 0, none = 0;
    bg_status s = plan_once(ctx, m, true, batch, c, h, w, &p, &out->input, &leaf, &out->momentum);
    if (s) return s;
    out->grads = leaf, out->arena = (double)p.arena_bytes, out->scratch = (double)p.scratch_bytes;
    out->eager_act = (double)p.sum_bytes;
    bg_plan_free(&p);
    out->train_peak = out->model + out->grads + out->momentum + out->input + out->arena + out->scratch;
    if ((s = plan_once(ctx, m, false, batch, c, h, w, &p, &out->eval_input, &leaf, &none))) return s;
    out->eval_arena = (double)p.arena_bytes, out->eval_scratch = (double)p.scratch_bytes;
    out->eval_eager_act = (double)p.sum_bytes;
    bg_plan_free(&p);
    out->eval_peak = out->model + out->eval_input + out->eval_arena + out->eval_scratch;
    return BG_OK;
}
