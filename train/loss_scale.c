#include "loss_scale.h"
#include <math.h>

bg_loss_scaler bg_loss_scaler_defaults(void)
{
    bg_loss_scaler s = {0};
    s.scale = 65536.0;
    s.growth = 2.0;
    s.backoff = 0.5;
    s.growth_interval = 2000;
    s.min_scale = ldexp(1.0, -24);
    s.max_scale = ldexp(1.0, 24);
    return s;
}

bg_status bg_loss_scaler_check(bg_ctx *ctx, const bg_loss_scaler *s)
{
    if (!s) return bg_fail(ctx, BG_ERR_ARG, "loss scaler: NULL");
    if (!(s->min_scale > 0 && s->max_scale >= s->min_scale && isfinite(s->max_scale)))
        return bg_fail(ctx, BG_ERR_ARG, "loss scaler: bounds [%g, %g] must be positive, finite and ordered", s->min_scale,
                       s->max_scale);
    if (!(s->scale >= s->min_scale && s->scale <= s->max_scale))
        return bg_fail(ctx, BG_ERR_ARG, "loss scaler: scale %g is outside [%g, %g]", s->scale, s->min_scale,
                       s->max_scale);
    if (!(s->growth > 1 && isfinite(s->growth)))
        return bg_fail(ctx, BG_ERR_ARG, "loss scaler: growth %g must be > 1", s->growth);
    if (!(s->backoff > 0 && s->backoff < 1))
        return bg_fail(ctx, BG_ERR_ARG, "loss scaler: backoff %g must be in (0, 1)", s->backoff);
    if (s->growth_interval < 1)
        return bg_fail(ctx, BG_ERR_ARG, "loss scaler: growth_interval %lld must be >= 1", (long long)s->growth_interval);
    return BG_OK;
}

bool bg_loss_scaler_update(bg_loss_scaler *s, bool found_inf)
{
    s->steps++;
    s->collapsed = found_inf && s->scale <= s->min_scale;
    if (found_inf) {
        s->skipped++;
        s->clean_steps = 0;
        s->scale = fmax(s->scale * s->backoff, s->min_scale);
        return true;
    }
    if (++s->clean_steps >= s->growth_interval) {
        s->clean_steps = 0;
        s->scale = fmin(s->scale * s->growth, s->max_scale);
    }
    return false;
}
