/* The profile phase (see profile.h). */
#include "profile.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/model.h"
#include "budget_run.h"
#include "step_cuda.h"
#include "trainer.h"

typedef struct {
    bool fits;
    double peak, step_s;
} trial;

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One real training step (or `steps`) at `batch` in a fresh capped context.
 * BG_OK with t->fits false when the allocator refused (out of memory under
 * the cap); another status for anything else (note filled). */
static bg_status try_batch(const bg_profile_query *q, int64_t batch, int steps, trial *t, char *note, size_t cap)
{
    memset(t, 0, sizeof *t);
    bg_ctx ctx;
    bg_status s = bg_ctx_init(&ctx, q->device, q->seed);
    bg_model *m = NULL;
    bg_trainer tr = {0}, etr = {0};
    float *x = NULL;
    int32_t *y = NULL;
    if (s) goto out;
    if (q->mem_cap > 0) ctx.alloc[q->device].cap = (size_t)q->mem_cap;
    if ((s = bg_model_new(&ctx, q->device, q->spec, &m))) goto out;
    const int h = q->size ? q->size : m->in_h, w = q->size ? q->size : m->in_w, c = m->in_c;
    if (q->amp && (s = bg_model_to(&ctx, m, q->device, BG_F16))) goto out;
    bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
    oc.lr = 0.01, oc.momentum = 0.9, oc.weight_decay = 5e-4;
    const int eval_batch = q->eval_batch > 0 ? (int)q->eval_batch : 1;
    if ((s = bg_trainer_init(&tr, &ctx, q->device, bg_model_forward, m, (int)batch, eval_batch, h, w, c, &oc, 0.0f)))
        goto out;
    if ((s = bg_trainer_set_amp(&tr, q->amp))) goto out;
    const int es = q->eval_size > 0 && q->eval_size != h ? q->eval_size : 0, side = es > h ? es : h;
    if (es) { /* the run's eval-only trainer at the test size, sharing the model */
        if ((s = bg_trainer_init(&etr, &ctx, q->device, bg_model_forward, m, 1, eval_batch, es, es, c, &oc, 0.0f)) ||
            (s = bg_trainer_set_amp(&etr, q->amp)))
            goto out;
    }
    const size_t n = (size_t)(batch > eval_batch ? batch : eval_batch) * side * (w > side ? w : side) * c;
    x = malloc(n * sizeof *x), y = malloc((size_t)batch * sizeof *y);
    if (!x || !y) {
        s = bg_fail(&ctx, BG_ERR_OOM, "profile: out of host memory for a batch of %lld", (long long)batch);
        goto out;
    }
    uint32_t r = (uint32_t)q->seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) x[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f * 2 - 1;
    for (int64_t i = 0; i < batch; i++) y[i] = (int32_t)(i % m->n_classes);
    int32_t *pred = NULL;
    double times[8];
    for (int k = 0; k < steps && k < 8; k++) {
        const double t0 = bg_monotonic_s();
        double loss;
        if ((s = bg_trainer_step(&tr, x, y, 0.01, &loss))) goto out;
        times[k] = bg_monotonic_s() - t0;
    }
    if (q->eval_batch > 0) { /* an evaluation, as between epochs */
        if (!(pred = malloc((size_t)eval_batch * sizeof *pred))) {
            s = bg_fail(&ctx, BG_ERR_OOM, "profile: out of host memory");
            goto out;
        }
        s = bg_trainer_predict(es ? &etr : &tr, x, eval_batch, pred);
        free(pred);
        if (s) goto out;
        /* and a training step with the eval graph alive, as every epoch after the first has */
        double loss;
        if ((s = bg_trainer_step(&tr, x, y, 0.01, &loss))) goto out;
    }
    t->fits = true;
    t->peak = (double)ctx.alloc[q->device].peak;
    /* the first step records the graph: the later ones are the steady state */
    if (steps > 1) {
        qsort(times + 1, (size_t)(steps - 1), sizeof *times, cmp_double);
        t->step_s = times[1 + (steps - 1) / 2];
    } else {
        t->step_s = times[0];
    }
out:
    /* the cap refusing a request is the answer "does not fit"; anything else is a reason to give up */
    if (s && ctx.status == BG_ERR_OOM && strstr(bg_errmsg(&ctx), "memory cap")) {
        t->fits = false;
        s = BG_OK;
    } else if (s) {
        snprintf(note, cap, "%s", bg_errmsg(&ctx));
    }
    free(x), free(y);
    bg_trainer_free(&etr);
    bg_trainer_free(&tr);
    bg_model_free(&ctx, m);
    bg_ctx_free(&ctx);
    return s;
}

/* The planned peak of a run's step at `batch`: the training step, plus the
 * evaluation graph's arena and input beside it (sharing the model). */
static bg_status planned_peak(bg_ctx *ctx, bg_model *m, const bg_profile_query *q, int64_t batch, double *peak)
{
    const int h = q->size ? q->size : m->in_h, w = q->size ? q->size : m->in_w;
    bg_plan_peaks t, e;
    bg_status s = bg_model_plan_peaks(ctx, m, (int)batch, m->in_c, h, w, &t);
    if (s) return s;
    *peak = t.train_peak;
    if (q->eval_batch > 0) {
        const int es = q->eval_size > 0 ? q->eval_size : h;
        if ((s = bg_model_plan_peaks(ctx, m, (int)q->eval_batch, m->in_c, es, es, &e))) return s;
        const double extra_scratch = e.eval_scratch > t.scratch ? e.eval_scratch - t.scratch : 0;
        *peak += e.eval_arena + e.eval_input + extra_scratch;
    }
    return BG_OK;
}

/* The largest batch in [1, max_batch] whose planned peak fits under the cap
 * (0 when not even 1 does), by bisection over dry plans. */
static bg_status planned_batch(const bg_profile_query *q, int64_t max_batch, int64_t *batch, double *peak, int *plans)
{
    bg_ctx ctx;
    bg_model *m = NULL;
    *batch = 0, *peak = 0;
    bg_status s = bg_ctx_init(&ctx, q->device, q->seed);
    if (!s) s = bg_model_new_ex(&ctx, q->device, q->spec, BG_MODEL_NO_INIT, &m);
    if (!s && q->amp) s = bg_model_to(&ctx, m, q->device, BG_F16);
    int64_t lo = 0, hi = max_batch + 1;
    double p = 0;
    while (!s && hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        (*plans)++;
        if ((s = planned_peak(&ctx, m, q, mid, &p))) break;
        if (p <= q->mem_cap) lo = mid, *peak = p;
        else hi = mid;
    }
    *batch = lo;
    bg_model_free(&ctx, m);
    bg_ctx_free(&ctx);
    return s;
}

bg_status bg_profile(bg_ctx *ctx, const bg_profile_query *q, bg_profile_result *out)
{
    memset(out, 0, sizeof *out);
    if (!(q->mem_cap > 0)) return bg_fail(ctx, BG_ERR_ARG, "profile: a memory cap is needed (the batch is bounded by it)");
    if (q->amp && q->device != BG_CUDA) {
        snprintf(out->note, sizeof out->note, "amp needs a CUDA device");
        return BG_OK;
    }
    if (bg_model_spec_check(ctx, q->spec)) return ctx->status;
    const int64_t max_batch = q->max_batch > 0 ? q->max_batch : 4096;
    trial t1, t2, t;
    /* On CUDA the second step captures the CUDA graph, which holds memory the
     * first (eager) step does not: a one-step trial under-measures the peak
     * every later step has (seen under the emulator: a batch that fitted in
     * one step failed the three-step check). Search with the steady state. */
    const int ss = q->device == BG_CUDA ? 2 : 1;
#define TRY(b, steps, res)                                                                                          \
    do {                                                                                                           \
        out->trials++;                                                                                             \
        if (try_batch(q, (b), (steps), &(res), out->note, sizeof out->note)) return BG_OK; /* note says why */    \
    } while (0)
    /* the plan's answer, confirmed by one real trial (timed over 3 steps) */
    int64_t pb = 0;
    double pp = 0;
    if (!planned_batch(q, max_batch, &pb, &pp, &out->plans) && pb > 0) {
        TRY(pb, 3, t);
        if (t.fits) {
            out->batch = pb;
            out->peak_bytes = t.peak;
            out->planned_peak_bytes = pp;
            out->step_s = t.step_s;
            const int64_t steps = q->n_train / pb;
            out->epoch_s = (double)(steps > 0 ? steps : 1) * t.step_s;
            out->epochs_in_budget = q->budget_s > 0 ? (int64_t)floor(q->budget_s / out->epoch_s) : 0;
            return BG_OK;
        }
    }
    out->note[0] = 0;
    TRY(1, ss, t1);
    if (!t1.fits) {
        snprintf(out->note, sizeof out->note, "not even batch 1 fits under %.0f MiB", q->mem_cap / 1048576);
        return BG_OK;
    }
    int64_t lo = 1, hi = max_batch + 1; /* lo fits; hi does not (or is past the bound) */
    TRY(2, ss, t2);
    if (!t2.fits) hi = 2;
    else lo = 2;
    out->bytes_per_image = t2.fits ? t2.peak - t1.peak : t1.peak;
    out->fixed_bytes = t2.fits ? 2 * t1.peak - t2.peak : 0;
    if (hi - lo > 1) {
        /* the affine law's guess, then a gallop away from it and a bisection */
        int64_t guess = out->bytes_per_image > 0 ? (int64_t)floor((q->mem_cap - out->fixed_bytes) / out->bytes_per_image)
                                                 : max_batch;
        if (guess < lo + 1) guess = lo + 1;
        if (guess > hi - 1) guess = hi - 1;
        TRY(guess, ss, t);
        if (t.fits) {
            lo = guess;
            for (int64_t step = 1; lo < hi - 1; step *= 2) {
                const int64_t b = lo + step < hi ? lo + step : hi - 1;
                TRY(b, ss, t);
                if (!t.fits) {
                    hi = b;
                    break;
                }
                lo = b;
            }
        } else {
            hi = guess;
            for (int64_t step = 1; hi - lo > 1; step *= 2) {
                const int64_t b = hi - step > lo ? hi - step : lo + 1;
                if (b <= lo) break;
                TRY(b, ss, t);
                if (t.fits) {
                    lo = b;
                    break;
                }
                hi = b;
            }
        }
        while (hi - lo > 1) {
            const int64_t mid = lo + (hi - lo) / 2;
            TRY(mid, ss, t);
            if (t.fits) lo = mid;
            else hi = mid;
        }
    }
    /* the answer, timed over 3 steps (the peak holds for every step: the
     * same buffers are replayed) */
    TRY(lo, 3, t);
#undef TRY
    if (!t.fits) { /* a step that fitted once and not now: the cap sits on the edge */
        snprintf(out->note, sizeof out->note, "batch %lld fitted once, then not: the cap is at the edge", (long long)lo);
        return BG_OK;
    }
    out->batch = lo;
    out->peak_bytes = t.peak;
    out->step_s = t.step_s;
    const int64_t steps = q->n_train / lo;
    out->epoch_s = (double)(steps > 0 ? steps : 1) * t.step_s;
    out->epochs_in_budget = q->budget_s > 0 ? (int64_t)floor(q->budget_s / out->epoch_s) : 0;
    return BG_OK;
}
