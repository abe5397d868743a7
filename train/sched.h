/* Learning-rate schedules: pure functions of a counter (step or epoch, the
 * caller decides which it passes) or of elapsed time; a config and nothing
 * else, so resuming a run needs only the counter.
 *
 *  constant      lr = base
 *  step          lr = base * gamma^floor(t / step_size)            (torch StepLR)
 *  cosine        closed form: lr = eta_min + (base - eta_min)(1 + cos(pi u))/2,
 *                u = (t - warmup)/(t_max - warmup) clamped to [0, 1], so the
 *                lr stays at eta_min from t_max on
 *  cosine_torch  torch's CosineAnnealingLR as it behaves when stepped: the
 *                chained recurrence over e = t - warmup with period
 *                T = t_max - warmup. Equal to the closed form up to rounding
 *                for e <= T, but it does not stop at eta_min: it rises again
 *                along the cosine (the quirk runs that call it past T_max
 *                inherit). Costs O(e) per call: meant for epoch counters.
 *  cosine_time   lr(f) = eta_min + (base - eta_min)(1 + cos(pi f))/2 with
 *                f = elapsed/budget clamped to [0, 1]; see bg_sched_lr_time.
 *
 * Warmup (cosine and cosine_torch): for t < warmup,
 * lr = base * (t + 1)/(warmup + 1), a linear ramp that never gives a zero
 * first step and reaches base at t = warmup, where the cosine starts.
 * cosine_time instead takes warmup_frac: lr = base * f/warmup_frac for
 * f < warmup_frac, then the cosine over the rest of the budget. */
#ifndef BG_SCHED_H
#define BG_SCHED_H
#include <stdint.h>
#include "../engine/context.h"

typedef enum {
    BG_SCHED_CONSTANT = 0,
    BG_SCHED_STEP,
    BG_SCHED_COSINE,
    BG_SCHED_COSINE_TORCH,
    BG_SCHED_COSINE_TIME,
    BG_SCHED_COUNT
} bg_sched_kind;

typedef struct {
    bg_sched_kind kind;
    double base_lr;
    double eta_min;       /* cosine kinds: the floor */
    int64_t step_size;    /* step: counts between decays */
    double gamma;         /* step: decay factor */
    int64_t t_max;        /* cosine, cosine_torch: the counter where lr reaches eta_min */
    int64_t warmup;       /* cosine, cosine_torch: ramp length in counts (0 = none) */
    double warmup_frac;   /* cosine_time: ramp length as a fraction of the budget */
} bg_sched;

/* A config of `kind` with base_lr set and everything else neutral
 * (gamma 0.1 and step_size 30 as torch's StepLR examples, eta_min 0). */
bg_sched bg_sched_make(bg_sched_kind kind, double base_lr);
/* "constant", "step", "cosine", "cosine_torch", "cosine_time". */
const char *bg_sched_name(bg_sched_kind kind);
bg_status bg_sched_parse(bg_ctx *ctx, const char *name, bg_sched_kind *out);
/* Range checks (base_lr >= 0, step_size > 0, warmup < t_max, ...). */
bg_status bg_sched_check(bg_ctx *ctx, const bg_sched *s);

/* The lr at counter t (negative t counts as 0). cosine_time reads it as
 * elapsed = t of a budget of t_max counts. Call bg_sched_check first: an
 * invalid config gives NaN here rather than an error (bg_optim_set_lr
 * rejects a NaN lr, so misuse still surfaces). */
double bg_sched_lr(const bg_sched *s, int64_t t);
/* The lr after `elapsed` of a `budget` (any unit, e.g. seconds) for
 * cosine_time; constant gives base_lr; the counter-based kinds give NaN.
 * A budget <= 0 counts as spent (f = 1). */
double bg_sched_lr_time(const bg_sched *s, double elapsed, double budget);

#endif
