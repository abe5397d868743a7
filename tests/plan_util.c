/* The planned-against-eager comparison (plan_util.h). */
#include "plan_util.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/alloc.h"
#include "../engine/optim.h"
#include "../models/model.h"
#include "../ops/ops.h"

typedef struct {
    bg_ctx ctx;
    bg_model *m;
    bg_graph *g;
    bg_tensor *x, *y, *logits, *loss;
    bg_optim *opt;
    bg_tensor *params[1024];
    int np;
    unsigned char *snap[8];  /* per step: loss, logits, parameter grads, parameters */
    unsigned char *eval_snap; /* eval logits */
    size_t snap_bytes, eval_bytes;
} side;

static bool fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return false;
}

static bg_status fill_batch(side *s, bg_tensor *x, bg_tensor *y)
{
    const size_t n = (size_t)bg_numel(x);
    float *h = malloc(n * sizeof *h);
    if (!h) return bg_fail(&s->ctx, BG_ERR_OOM, "plan test: out of host memory");
    for (size_t i = 0; i < n; i++) h[i] = (float)((i * 7919u) % 1000u) / 500.0f - 1.0f;
    bg_status st = bg_tensor_upload(&s->ctx, x, h, n * sizeof *h);
    free(h);
    if (st || !y) return st;
    int32_t lab[4096];
    for (int64_t i = 0; i < bg_numel(y) && i < 4096; i++) lab[i] = (int32_t)(i * 3 % s->m->n_classes);
    return bg_tensor_upload(&s->ctx, y, lab, bg_nbytes(y));
}

/* Append t's bytes (or its grad's) to the snapshot at *off. */
static bg_status take(side *s, unsigned char *dst, size_t *off, const bg_tensor *t)
{
    bg_status st = dst ? bg_tensor_download(&s->ctx, t, dst + *off, bg_nbytes(t)) : BG_OK;
    *off += bg_nbytes(t);
    return st;
}

static bg_status snapshot(side *s, unsigned char *dst, size_t *bytes)
{
    size_t off = 0;
    bg_status st = take(s, dst, &off, s->loss);
    if (!st) st = take(s, dst, &off, s->logits);
    for (int i = 0; i < s->np && !st; i++) st = take(s, dst, &off, s->params[i]->grad);
    for (int i = 0; i < s->np && !st; i++) st = take(s, dst, &off, s->params[i]);
    *bytes = off;
    return st;
}

static bool train(side *s, const bg_plan_run_cfg *cfg, bool plan, bg_plan_parity *out, char *why, size_t cap)
{
    bg_ctx *ctx = &s->ctx;
    bg_allocator *a = &ctx->alloc[cfg->device];
    if (bg_model_new(ctx, cfg->device, cfg->spec, &s->m)) return fail(why, cap, "model: %s", bg_errmsg(ctx));
    s->g = bg_graph_new(ctx, cfg->device, true);
    if (!s->g) return fail(why, cap, "%s", bg_errmsg(ctx));
    s->g->defer = plan;
    int64_t xs[4] = {cfg->batch, s->m->in_h, s->m->in_w, s->m->in_c}, ys[1] = {cfg->batch};
    s->x = bg_graph_tensor(s->g, BG_F32, 4, xs, "x");
    s->y = bg_graph_tensor(s->g, BG_I32, 1, ys, "y");
    if (!s->x || !s->y || fill_batch(s, s->x, s->y)) return fail(why, cap, "input: %s", bg_errmsg(ctx));
    s->logits = bg_model_forward(s->g, s->m, s->x);
    s->loss = bg_softmax_xent(s->g, s->logits, s->y, 0.1f);
    if (!s->loss) return fail(why, cap, "record: %s", bg_errmsg(ctx));
    s->np = bg_graph_params(s->g, s->params, 1024);
    if (plan) {
        out->before_plan = a->in_use;
        bg_tensor *keep[2] = {s->logits, s->loss};
        if (bg_graph_plan(s->g, s->loss, keep, 2)) return fail(why, cap, "plan: %s", bg_errmsg(ctx));
        /* NaN everywhere in a CPU arena: a buffer read before it is written
         * (a gradient a fast backward was to store into but did not, see
         * bg_node.grad_fresh) then shows in the bits */
        if (cfg->device == BG_CPU) memset(s->g->arena, 0xff, s->g->plan->arena_bytes);
        out->after_plan = a->in_use;
        out->arena = s->g->plan->arena_bytes, out->sum = s->g->plan->sum_bytes;
        out->scratch = s->g->plan->scratch_bytes;
        out->leaf_grads = 0;
        for (int i = 0; i < s->np; i++)
            if (s->params[i]->requires_grad) out->leaf_grads += bg_alloc_rounded(bg_nbytes(s->params[i]));
    }
    bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
    oc.lr = 0.05, oc.momentum = 0.9, oc.weight_decay = 5e-4;
    if (bg_optim_new(ctx, &oc, s->params, s->np, &s->opt)) return fail(why, cap, "optim: %s", bg_errmsg(ctx));
    for (int k = 0; k < cfg->steps && k < 8; k++) {
        bg_status st = k || plan ? bg_graph_forward(s->g) : BG_OK; /* eager recording ran the first forward */
        if (!st) st = bg_graph_backward(s->g, s->loss);
        if (!st) st = snapshot(s, NULL, &s->snap_bytes);
        if (!st && !(s->snap[k] = malloc(s->snap_bytes))) st = bg_fail(ctx, BG_ERR_OOM, "plan test: host memory");
        if (!st) st = bg_optim_step(ctx, s->opt);
        if (!st) st = snapshot(s, s->snap[k], &s->snap_bytes);
        if (st) return fail(why, cap, "%s step %d: %s", plan ? "planned" : "eager", k, bg_errmsg(ctx));
    }
    if (plan) out->peak_planned = a->peak, out->fixed_planned = a->in_use;
    else out->peak_eager = a->peak;
    return true;
}

/* After training: the training graph goes, an eval graph comes. */
static bool eval(side *s, const bg_plan_run_cfg *cfg, bool plan, bg_plan_parity *out, char *why, size_t cap)
{
    bg_ctx *ctx = &s->ctx;
    bg_allocator *a = &ctx->alloc[cfg->device];
    bg_optim_free(ctx, s->opt), s->opt = NULL;
    bg_graph_free(s->g);
    s->g = bg_graph_new(ctx, cfg->device, false);
    if (!s->g) return fail(why, cap, "%s", bg_errmsg(ctx));
    s->g->defer = plan;
    int64_t xs[4] = {cfg->batch, s->m->in_h, s->m->in_w, s->m->in_c};
    bg_tensor *x = bg_graph_tensor(s->g, BG_F32, 4, xs, "x");
    if (!x || fill_batch(s, x, NULL)) return fail(why, cap, "eval input: %s", bg_errmsg(ctx));
    const size_t before = a->in_use;
    bg_tensor *logits = bg_model_forward(s->g, s->m, x);
    if (!logits) return fail(why, cap, "eval record: %s", bg_errmsg(ctx));
    if (plan) {
        out->eval_fixed = a->in_use;
        bg_alloc_reset_peak(ctx, cfg->device);
        if (bg_graph_plan(s->g, NULL, &logits, 1) || bg_graph_forward(s->g))
            return fail(why, cap, "eval: %s", bg_errmsg(ctx));
        out->eval_arena = s->g->plan->arena_bytes, out->eval_scratch = s->g->plan->scratch_bytes;
        out->eval_peak_planned = a->peak;
    } else {
        out->eval_act_eager = a->in_use - before;
    }
    s->eval_bytes = bg_nbytes(logits);
    if (!(s->eval_snap = malloc(s->eval_bytes)) || bg_tensor_download(ctx, logits, s->eval_snap, s->eval_bytes))
        return fail(why, cap, "eval logits: %s", bg_errmsg(ctx));
    return true;
}

static void side_free(side *s)
{
    bg_optim_free(&s->ctx, s->opt);
    bg_graph_free(s->g);
    bg_model_free(&s->ctx, s->m);
    for (int k = 0; k < 8; k++) free(s->snap[k]);
    free(s->eval_snap);
    bg_ctx_free(&s->ctx);
}

bool bg_plan_compare(const bg_plan_run_cfg *cfg, bg_plan_parity *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    side *s = calloc(2, sizeof *s);
    if (!s) return fail(why, cap, "out of host memory");
    bool ok = !bg_ctx_init(&s[0].ctx, cfg->device, 7) && !bg_ctx_init(&s[1].ctx, cfg->device, 7);
    if (!ok) fail(why, cap, "context: %s", bg_errmsg(&s[0].ctx));
    for (int k = 0; k < 2 && ok; k++) ok = train(&s[k], cfg, k == 1, out, why, cap);
    for (int k = 0; k < cfg->steps && ok; k++)
        if (s[0].snap_bytes != s[1].snap_bytes || memcmp(s[0].snap[k], s[1].snap[k], s[0].snap_bytes))
            ok = fail(why, cap, "step %d: the planned graph's loss, logits, gradients or parameters differ", k);
    for (int k = 0; k < 2 && ok; k++) ok = eval(&s[k], cfg, k == 1, out, why, cap);
    if (ok && (s[0].eval_bytes != s[1].eval_bytes || memcmp(s[0].eval_snap, s[1].eval_snap, s[0].eval_bytes)))
        ok = fail(why, cap, "the planned eval graph's logits differ");
    side_free(&s[0]);
    side_free(&s[1]);
    free(s);
    return ok;
}
