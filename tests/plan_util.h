/* The planned-against-eager comparison the CPU and GPU planner tests share:
 * a zoo model trained a few SGD-momentum steps on a fixed batch through an
 * eager graph and through a deferred, planned one (each in its own context,
 * so each allocator measures one of them), then one evaluation each. */
#ifndef BG_TEST_PLAN_UTIL_H
#define BG_TEST_PLAN_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include "../engine/context.h"

typedef struct {
    const char *spec;
    int batch;
    bg_device device;
    int steps;
} bg_plan_run_cfg;

typedef struct {
    size_t peak_eager;      /* the eager context's measured peak over the steps */
    size_t peak_planned;    /* the planned context's */
    size_t before_plan;     /* in use before bg_graph_plan (model, input batch) */
    size_t after_plan;      /* in use right after it */
    size_t fixed_planned;   /* in use after the steps (optimizer state too) */
    size_t arena, sum, scratch, leaf_grads;
    size_t eval_act_eager;  /* bytes an eager eval graph allocates while recording */
    size_t eval_fixed, eval_arena, eval_scratch, eval_peak_planned;
} bg_plan_parity;

/* false with `why` filled when anything differs by one bit or fails. */
bool bg_plan_compare(const bg_plan_run_cfg *cfg, bg_plan_parity *out, char *why, size_t why_cap);

#endif
