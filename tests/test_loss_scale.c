/* The loss scaler's state machine (train/loss_scale.c), on the CPU: the
 * PyTorch GradScaler rules (halve and skip on inf/NaN, double after
 * growth_interval clean steps), the bounds, and the argument checks. */
#include <string.h>
#include "harness.h"
#include "../train/loss_scale.h"

BG_TEST(loss_scale_defaults_are_torch)
{
    bg_loss_scaler s = bg_loss_scaler_defaults();
    CHECK(s.scale == 65536.0 && s.growth == 2.0 && s.backoff == 0.5 && s.growth_interval == 2000,
          "defaults %g %g %g %lld", s.scale, s.growth, s.backoff, (long long)s.growth_interval);
    CHECK(s.clean_steps == 0 && s.skipped == 0 && s.steps == 0, "counters start at 0");
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    CHECK_OK(&ctx, bg_loss_scaler_check(&ctx, &s));
}

BG_TEST(loss_scale_backoff_skips_and_halves)
{
    bg_loss_scaler s = bg_loss_scaler_defaults();
    s.growth_interval = 3;
    CHECK(!bg_loss_scaler_update(&s, false), "a clean step is not skipped");
    CHECK(!bg_loss_scaler_update(&s, false), "a clean step is not skipped");
    CHECK(s.clean_steps == 2 && s.scale == 65536.0, "two clean steps: %lld, scale %g", (long long)s.clean_steps, s.scale);
    CHECK(bg_loss_scaler_update(&s, true), "an overflow skips the step");
    CHECK(s.scale == 32768.0 && s.clean_steps == 0 && s.skipped == 1, "after overflow: scale %g, clean %lld, skipped %lld",
          s.scale, (long long)s.clean_steps, (long long)s.skipped);
    /* the clean-step count restarts: growth needs growth_interval clean steps in a row */
    bg_loss_scaler_update(&s, false);
    bg_loss_scaler_update(&s, false);
    CHECK(s.scale == 32768.0, "grew too early: %g", s.scale);
    bg_loss_scaler_update(&s, false);
    CHECK(s.scale == 65536.0 && s.clean_steps == 0, "third clean step grows: %g", s.scale);
    CHECK(s.steps == 6, "steps %lld", (long long)s.steps);
}

BG_TEST(loss_scale_sequence_matches_gradscaler)
{
    /* A hand-traced GradScaler(init_scale=8, growth_interval=2) run: steps
     * clean, clean (grow to 16), inf (8), clean, inf (4), clean, clean (8). */
    bg_loss_scaler s = bg_loss_scaler_defaults();
    s.scale = 8;
    s.growth_interval = 2;
    const bool inf[7] = {false, false, true, false, true, false, false};
    const double want[7] = {8, 16, 8, 8, 4, 4, 8};
    for (int i = 0; i < 7; i++) {
        bool skipped = bg_loss_scaler_update(&s, inf[i]);
        CHECK(skipped == inf[i], "step %d skipped %d", i, skipped);
        CHECK(s.scale == want[i], "step %d: scale %g, want %g", i, s.scale, want[i]);
    }
    CHECK(s.skipped == 2, "skipped %lld", (long long)s.skipped);
}

BG_TEST(loss_scale_bounds)
{
    bg_loss_scaler s = bg_loss_scaler_defaults();
    s.scale = s.min_scale * 2;
    bg_loss_scaler_update(&s, true);
    bg_loss_scaler_update(&s, true);
    bg_loss_scaler_update(&s, true);
    CHECK(s.scale == s.min_scale, "scale %g fell below the minimum %g", s.scale, s.min_scale);
    s.scale = s.max_scale;
    s.growth_interval = 1;
    bg_loss_scaler_update(&s, false);
    CHECK(s.scale == s.max_scale, "scale %g grew past the maximum %g", s.scale, s.max_scale);
}

BG_TEST(loss_scale_bad_config)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_loss_scaler s = bg_loss_scaler_defaults();
    s.growth = 1.0;
    CHECK_ERR(&ctx, bg_loss_scaler_check(&ctx, &s), BG_ERR_ARG, "growth 1 must be > 1");
    s = bg_loss_scaler_defaults();
    s.backoff = 1.0;
    CHECK_ERR(&ctx, bg_loss_scaler_check(&ctx, &s), BG_ERR_ARG, "backoff 1 must be in (0, 1)");
    s = bg_loss_scaler_defaults();
    s.growth_interval = 0;
    CHECK_ERR(&ctx, bg_loss_scaler_check(&ctx, &s), BG_ERR_ARG, "growth_interval 0");
    s = bg_loss_scaler_defaults();
    s.scale = 1e30;
    CHECK_ERR(&ctx, bg_loss_scaler_check(&ctx, &s), BG_ERR_ARG, "is outside");
    CHECK_ERR(&ctx, bg_loss_scaler_check(&ctx, NULL), BG_ERR_ARG, "NULL");
}

/* Overflows that backoff can no longer answer (already at min_scale) mark
 * the scaler collapsed, which stops an amp run with a message; one that
 * reaches min_scale, or a clean step there, does not. */
BG_TEST(loss_scale_collapse_is_flagged)
{
    bg_loss_scaler s = bg_loss_scaler_defaults();
    s.scale = 4.0, s.min_scale = 1.0;
    bg_loss_scaler_update(&s, true);
    CHECK(s.scale == 2.0 && !s.collapsed, "4 -> 2: scale %g, collapsed %d", s.scale, s.collapsed);
    bg_loss_scaler_update(&s, true);
    CHECK(s.scale == 1.0 && !s.collapsed, "2 -> 1 reaches the floor, not a collapse: %g %d", s.scale, s.collapsed);
    bg_loss_scaler_update(&s, false);
    CHECK(!s.collapsed, "a clean step at the floor");
    bg_loss_scaler_update(&s, true);
    CHECK(s.scale == 1.0 && s.collapsed, "an overflow at the floor: collapsed (%g, %d)", s.scale, s.collapsed);
    bg_loss_scaler_update(&s, false);
    CHECK(!s.collapsed, "the flag speaks of the last update only");
}
