/* The memory planner on the CUDA backend: a planned (deferred) training
 * graph against the eager one on the device, bit for bit over SGD-momentum
 * steps, and the allocator's measured peak equal to the plan's (device
 * memory, the arena from the same capped allocator). -v prints the bytes. */
#include <stdlib.h>
#include "harness.h"
#include "plan_util.h"

BG_GPU_TEST(gpu_plan_small_cnn_matches_eager_at_planned_peak)
{
    bg_plan_run_cfg cfg = {.spec = "small_cnn:size=16", .batch = 4, .device = BG_CUDA, .steps = 2};
    bg_plan_parity r;
    char why[512] = "";
    bool ok = bg_plan_compare(&cfg, &r, why, sizeof why);
    CHECK(ok, "%s: %s", cfg.spec, why);
    if (!ok) return;
    CHECK(r.after_plan == r.before_plan + r.arena + r.leaf_grads,
          "in use after planning %zu != before %zu + arena %zu + parameter grads %zu", r.after_plan, r.before_plan,
          r.arena, r.leaf_grads);
    CHECK(r.peak_planned == r.fixed_planned + r.scratch, "measured peak %zu != fixed %zu + kernel workspace %zu",
          r.peak_planned, r.fixed_planned, r.scratch);
    CHECK(r.peak_planned < r.peak_eager, "planned peak %zu not below the eager %zu", r.peak_planned, r.peak_eager);
    CHECK(r.eval_peak_planned == r.eval_fixed + r.eval_arena + r.eval_scratch,
          "eval: measured peak %zu != fixed %zu + arena %zu + workspace %zu", r.eval_peak_planned, r.eval_fixed,
          r.eval_arena, r.eval_scratch);
    const char *v = getenv("BG_TEST_VERBOSE");
    if (v && v[0] == '1')
        printf("  cuda %s batch %d: training peak eager %zu, planned %zu (arena %zu of %zu, workspace %zu); eval "
               "activations eager %zu, arena %zu, eval peak planned %zu\n",
               cfg.spec, cfg.batch, r.peak_eager, r.peak_planned, r.arena, r.sum, r.scratch, r.eval_act_eager,
               r.eval_arena, r.eval_peak_planned);
}
