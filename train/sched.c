/* Learning-rate schedules (see sched.h for the formulas). */
#include "sched.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

static const char *const NAMES[BG_SCHED_COUNT] = {
    "constant", "step", "cosine", "cosine_torch", "cosine_time",
};

const char *bg_sched_name(bg_sched_kind kind)
{
    return (unsigned)kind < BG_SCHED_COUNT ? NAMES[kind] : "?";
}

bg_status bg_sched_parse(bg_ctx *ctx, const char *name, bg_sched_kind *out)
{
    if (!name || !out) return bg_fail(ctx, BG_ERR_ARG, "schedule name: NULL argument");
    for (int k = 0; k < BG_SCHED_COUNT; k++) {
        if (strcmp(name, NAMES[k]) == 0) {
            *out = (bg_sched_kind)k;
            return BG_OK;
        }
    }
    return bg_fail(ctx, BG_ERR_ARG,
                   "unknown schedule '%s' (constant, step, cosine, cosine_torch, cosine_time)", name);
}

bg_sched bg_sched_make(bg_sched_kind kind, double base_lr)
{
    bg_sched s = {0};
    s.kind = kind;
    s.base_lr = base_lr;
    s.step_size = 30;
    s.gamma = 0.1;
    return s;
}

bg_status bg_sched_check(bg_ctx *ctx, const bg_sched *s)
{
    if (!s) return bg_fail(ctx, BG_ERR_ARG, "schedule: NULL config");
    if ((unsigned)s->kind >= BG_SCHED_COUNT)
        return bg_fail(ctx, BG_ERR_ARG, "schedule: invalid kind %d", (int)s->kind);
    const char *nm = NAMES[s->kind];
    if (!(isfinite(s->base_lr) && s->base_lr >= 0))
        return bg_fail(ctx, BG_ERR_ARG, "schedule %s: base_lr must be finite and >= 0 (got %g)", nm, s->base_lr);
    switch (s->kind) {
    case BG_SCHED_STEP:
        if (s->step_size <= 0)
            return bg_fail(ctx, BG_ERR_ARG, "schedule step: step_size must be > 0 (got %lld)",
                           (long long)s->step_size);
        if (!(isfinite(s->gamma) && s->gamma >= 0))
            return bg_fail(ctx, BG_ERR_ARG, "schedule step: gamma must be finite and >= 0 (got %g)", s->gamma);
        break;
    case BG_SCHED_COSINE:
    case BG_SCHED_COSINE_TORCH:
        if (s->warmup < 0 || s->t_max <= s->warmup)
            return bg_fail(ctx, BG_ERR_ARG, "schedule %s: need 0 <= warmup < t_max (got warmup %lld, t_max %lld)",
                           nm, (long long)s->warmup, (long long)s->t_max);
        /* fall through */
    case BG_SCHED_COSINE_TIME:
        if (!(isfinite(s->eta_min) && s->eta_min >= 0))
            return bg_fail(ctx, BG_ERR_ARG, "schedule %s: eta_min must be finite and >= 0 (got %g)", nm, s->eta_min);
        if (s->kind == BG_SCHED_COSINE_TIME && !(s->warmup_frac >= 0 && s->warmup_frac < 1))
            return bg_fail(ctx, BG_ERR_ARG, "schedule cosine_time: warmup_frac must be in [0, 1) (got %g)",
                           s->warmup_frac);
        break;
    default: break;
    }
    return BG_OK;
}

/* The closed form at progress u in [0, 1], in torch's operation order. */
static double cosine_at(double base, double eta_min, double u)
{
    return eta_min + (base - eta_min) * (1 + cos(PI * u)) / 2;
}

/* torch's CosineAnnealingLR.get_lr chained from last_epoch 0 (lr = base) to
 * e, each branch in the order torch evaluates it so the rounding matches. */
static double cosine_torch_at(double base, double eta_min, int64_t T, int64_t e)
{
    double lr = base;
    for (int64_t k = 1; k <= e; k++) {
        /* Python's % is non-negative for a positive modulus */
        int64_t r = (k - 1 - T) % (2 * T);
        if (r < 0) r += 2 * T;
        if (r == 0)
            lr = lr + (base - eta_min) * (1 - cos(PI / (double)T)) / 2;
        else
            lr = (1 + cos(PI * (double)k / (double)T)) / (1 + cos(PI * (double)(k - 1) / (double)T)) *
                     (lr - eta_min) + eta_min;
    }
    return lr;
}

static double cosine_time_at(const bg_sched *s, double f)
{
    if (!(f > 0)) f = 0; /* NaN counts as the start */
    if (f > 1) f = 1;
    double w = s->warmup_frac;
    if (w > 0 && f < w) return s->base_lr * f / w;
    return cosine_at(s->base_lr, s->eta_min, w > 0 ? (f - w) / (1 - w) : f);
}

double bg_sched_lr(const bg_sched *s, int64_t t)
{
    if (t < 0) t = 0;
    switch (s->kind) {
    case BG_SCHED_CONSTANT: return s->base_lr;
    case BG_SCHED_STEP:
        if (s->step_size <= 0) return NAN;
        return s->base_lr * pow(s->gamma, (double)(t / s->step_size));
    case BG_SCHED_COSINE:
    case BG_SCHED_COSINE_TORCH: {
        if (s->warmup < 0 || s->t_max <= s->warmup) return NAN;
        if (t < s->warmup) return s->base_lr * (double)(t + 1) / (double)(s->warmup + 1);
        int64_t e = t - s->warmup, T = s->t_max - s->warmup;
        if (s->kind == BG_SCHED_COSINE_TORCH) return cosine_torch_at(s->base_lr, s->eta_min, T, e);
        if (e >= T) return s->eta_min;
        return cosine_at(s->base_lr, s->eta_min, (double)e / (double)T);
    }
    case BG_SCHED_COSINE_TIME:
        return cosine_time_at(s, s->t_max > 0 ? (double)t / (double)s->t_max : 1.0);
    default: return NAN;
    }
}

double bg_sched_lr_time(const bg_sched *s, double elapsed, double budget)
{
    switch (s->kind) {
    case BG_SCHED_CONSTANT: return s->base_lr;
    case BG_SCHED_COSINE_TIME: return cosine_time_at(s, budget > 0 ? elapsed / budget : 1.0);
    default: return NAN;
    }
}
