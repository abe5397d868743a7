/* Learning-rate schedules: closed forms, warmup, StepLR, torch's chained
 * CosineAnnealingLR (values printed by torch 1.13 for the HAET setting) and the
 * time-based cosine. */
#include <string.h>

#include "../train/sched.h"
#include "harness.h"

/* |got - want| <= tol * |want|: CHECK_NEAR is absolute below 1, too loose
 * for learning rates of 1e-4. */
#define CHECK_REL(got, want, tol, what)                                              \
    do { double g_ = (got), w_ = (want);                                            \
         CHECK(fabs(g_ - w_) <= (tol) * fabs(w_), "%s: got %.17g, want %.17g (rel tol %g)", what, g_, w_, \
               (double)(tol));                                                      \
    } while (0)

#define PI 3.14159265358979323846

BG_TEST(sched_constant_and_step)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_sched c = bg_sched_make(BG_SCHED_CONSTANT, 0.3);
    CHECK_OK(&ctx, bg_sched_check(&ctx, &c));
    CHECK(bg_sched_lr(&c, 0) == 0.3 && bg_sched_lr(&c, 123456) == 0.3, "constant");
    CHECK(bg_sched_lr_time(&c, 5, 10) == 0.3, "constant over time");

    bg_sched s = bg_sched_make(BG_SCHED_STEP, 0.1);
    s.step_size = 30;
    s.gamma = 0.1;
    CHECK_OK(&ctx, bg_sched_check(&ctx, &s));
    CHECK_REL(bg_sched_lr(&s, 0), 0.1, 1e-15, "step t=0");
    CHECK_REL(bg_sched_lr(&s, 29), 0.1, 1e-15, "step t=29");
    CHECK_REL(bg_sched_lr(&s, 30), 0.01, 1e-15, "step t=30");
    CHECK_REL(bg_sched_lr(&s, 89), 0.001, 1e-15, "step t=89");
    CHECK_REL(bg_sched_lr(&s, 90), 0.0001, 1e-15, "step t=90");
    CHECK(isnan(bg_sched_lr_time(&s, 1, 2)), "step is not time-based");
    bg_ctx_free(&ctx);
}

BG_TEST(sched_cosine_closed_form)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_sched s = bg_sched_make(BG_SCHED_COSINE, 1.0);
    s.eta_min = 0.1;
    s.t_max = 100;
    CHECK_OK(&ctx, bg_sched_check(&ctx, &s));
    CHECK_REL(bg_sched_lr(&s, 0), 1.0, 1e-15, "t=0");
    CHECK_REL(bg_sched_lr(&s, 25), 0.1 + 0.9 * (1 + cos(PI / 4)) / 2, 1e-15, "t=25");
    CHECK_REL(bg_sched_lr(&s, 50), 0.55, 1e-15, "t=50");
    CHECK_REL(bg_sched_lr(&s, 100), 0.1, 1e-15, "t=t_max");
    /* the closed form holds at eta_min past t_max (unlike torch's recurrence) */
    CHECK_REL(bg_sched_lr(&s, 150), 0.1, 1e-15, "t past t_max");
    CHECK_REL(bg_sched_lr(&s, -5), 1.0, 1e-15, "negative t");
    for (int64_t k = 1; k <= 100; k++)
        CHECK(bg_sched_lr(&s, k) <= bg_sched_lr(&s, k - 1), "not monotone at %lld", (long long)k);
    bg_ctx_free(&ctx);
}

BG_TEST(sched_cosine_warmup)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_sched s = bg_sched_make(BG_SCHED_COSINE, 0.2);
    s.warmup = 9;
    s.t_max = 109;
    CHECK_OK(&ctx, bg_sched_check(&ctx, &s));
    CHECK_REL(bg_sched_lr(&s, 0), 0.02, 1e-15, "warmup t=0 is base/(warmup+1)");
    CHECK_REL(bg_sched_lr(&s, 4), 0.1, 1e-15, "warmup t=4");
    CHECK_REL(bg_sched_lr(&s, 8), 0.18, 1e-15, "warmup t=8");
    CHECK_REL(bg_sched_lr(&s, 9), 0.2, 1e-15, "cosine starts at base");
    CHECK_REL(bg_sched_lr(&s, 59), 0.1, 1e-15, "half way through the cosine");
    CHECK(bg_sched_lr(&s, 109) == 0 && bg_sched_lr(&s, 500) == 0, "eta_min at and after t_max");
    /* the same warmup ramps into the torch recurrence */
    s.kind = BG_SCHED_COSINE_TORCH;
    CHECK_REL(bg_sched_lr(&s, 4), 0.1, 1e-15, "torch warmup t=4");
    CHECK_REL(bg_sched_lr(&s, 59), 0.1, 1e-12, "torch half way");
    bg_ctx_free(&ctx);
}

BG_TEST(sched_cosine_torch_recurrence)
{
    /* HAET: base 0.042, T_max 240, eta_min 1e-8, stepped per epoch. torch's
     * chained get_lr reaches eta_min at 240 and then climbs back. Exact values
     * are torch 1.13's param_groups[0]['lr']; the short ones the rounded
     * numbers quoted for that run. */
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_sched s = bg_sched_make(BG_SCHED_COSINE_TORCH, 0.042);
    s.t_max = 240;
    s.eta_min = 1e-8;
    CHECK_OK(&ctx, bg_sched_check(&ctx, &s));
    CHECK_REL(bg_sched_lr(&s, 60), 0.03585, 2e-4, "e=60");
    CHECK_REL(bg_sched_lr(&s, 120), 0.021, 1e-6, "e=120");
    CHECK_REL(bg_sched_lr(&s, 180), 0.006151, 1e-4, "e=180");
    CHECK_REL(bg_sched_lr(&s, 250), 1.80e-4, 3e-3, "e=250");
    CHECK_REL(bg_sched_lr(&s, 260), 7.16e-4, 1e-3, "e=260");
    struct { int64_t e; double lr; } torch_lr[] = {
        {0, 0.042},
        {1, 0.041998200879482514},
        {60, 0.0358492438693836},
        {120, 0.02100000500000001},
        {180, 0.006150766130616408},
        {239, 1.809120517490864e-06},
        {240, 1e-08},
        {241, 1.8091205174908644e-06},
        {250, 0.00017966786837428654},
        {260, 0.0007155674775586948},
        {480, 0.042000000000000065},
        {490, 0.04182034213162578},
    };
    for (size_t i = 0; i < sizeof torch_lr / sizeof torch_lr[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "torch e=%lld", (long long)torch_lr[i].e);
        CHECK_REL(bg_sched_lr(&s, torch_lr[i].e), torch_lr[i].lr, 1e-12, what);
    }
    /* up to T_max the recurrence is the closed form, give or take rounding */
    bg_sched c = s;
    c.kind = BG_SCHED_COSINE;
    for (int64_t e = 0; e <= 240; e++)
        CHECK(fabs(bg_sched_lr(&s, e) - bg_sched_lr(&c, e)) <= 1e-15,
              "e=%lld: recurrence %.17g, closed form %.17g", (long long)e, bg_sched_lr(&s, e), bg_sched_lr(&c, e));
    bg_ctx_free(&ctx);
}

BG_TEST(sched_cosine_time)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_sched s = bg_sched_make(BG_SCHED_COSINE_TIME, 0.4);
    s.eta_min = 0.02;
    CHECK_OK(&ctx, bg_sched_check(&ctx, &s));
    CHECK_REL(bg_sched_lr_time(&s, 0, 600), 0.4, 1e-15, "f=0");
    CHECK_REL(bg_sched_lr_time(&s, 300, 600), 0.21, 1e-15, "f=0.5");
    CHECK_REL(bg_sched_lr_time(&s, 150, 600), 0.02 + 0.38 * (1 + cos(PI / 4)) / 2, 1e-15, "f=0.25");
    CHECK_REL(bg_sched_lr_time(&s, 600, 600), 0.02, 1e-15, "f=1");
    CHECK_REL(bg_sched_lr_time(&s, 900, 600), 0.02, 1e-15, "past the budget clamps to eta_min");
    CHECK_REL(bg_sched_lr_time(&s, -1, 600), 0.4, 1e-15, "before the start clamps to base");
    CHECK_REL(bg_sched_lr_time(&s, 5, 0), 0.02, 1e-15, "no budget counts as spent");
    /* counter form: t of t_max */
    s.t_max = 1000;
    CHECK_REL(bg_sched_lr(&s, 500), 0.21, 1e-15, "counter f=0.5");
    CHECK_REL(bg_sched_lr(&s, 2000), 0.02, 1e-15, "counter past the end");
    /* warmup over the first 10% of the budget, then the cosine over the rest */
    s.warmup_frac = 0.1;
    CHECK_OK(&ctx, bg_sched_check(&ctx, &s));
    CHECK_REL(bg_sched_lr_time(&s, 30, 600), 0.2, 1e-12, "warmup half way");
    CHECK_REL(bg_sched_lr_time(&s, 60, 600), 0.4, 1e-12, "warmup end");
    CHECK_REL(bg_sched_lr_time(&s, 330, 600), 0.21, 1e-12, "cosine half way after warmup");
    CHECK_REL(bg_sched_lr_time(&s, 600, 600), 0.02, 1e-12, "end");
    bg_ctx_free(&ctx);
}

BG_TEST(sched_bad_config)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_sched_kind k;
    CHECK_OK(&ctx, bg_sched_parse(&ctx, "cosine_torch", &k));
    CHECK(k == BG_SCHED_COSINE_TORCH, "parsed %d", (int)k);
    for (int i = 0; i < BG_SCHED_COUNT; i++) {
        CHECK_OK(&ctx, bg_sched_parse(&ctx, bg_sched_name((bg_sched_kind)i), &k));
        CHECK(k == (bg_sched_kind)i, "%s round trip", bg_sched_name((bg_sched_kind)i));
    }
    CHECK_ERR(&ctx, bg_sched_parse(&ctx, "onecycle", &k), BG_ERR_ARG, "unknown schedule 'onecycle'");
    bg_sched s = bg_sched_make(BG_SCHED_COSINE, 0.1);
    CHECK_ERR(&ctx, bg_sched_check(&ctx, &s), BG_ERR_ARG, "t_max");
    s.t_max = 10;
    s.warmup = 10;
    CHECK_ERR(&ctx, bg_sched_check(&ctx, &s), BG_ERR_ARG, "warmup");
    CHECK(isnan(bg_sched_lr(&s, 3)), "invalid config gives NaN");
    s = bg_sched_make(BG_SCHED_STEP, -0.1);
    CHECK_ERR(&ctx, bg_sched_check(&ctx, &s), BG_ERR_ARG, "base_lr");
    s = bg_sched_make(BG_SCHED_STEP, 0.1);
    s.step_size = 0;
    CHECK_ERR(&ctx, bg_sched_check(&ctx, &s), BG_ERR_ARG, "step_size");
    s = bg_sched_make(BG_SCHED_COSINE_TIME, 0.1);
    s.warmup_frac = 1.0;
    CHECK_ERR(&ctx, bg_sched_check(&ctx, &s), BG_ERR_ARG, "warmup_frac");
    bg_ctx_free(&ctx);
}
