/* A training run under a wall-clock budget. The clock starts when the run
 * starts (data already loaded, model built); before each step the loop checks
 * that the step, plus the evaluation that closes the epoch, still fits, so a
 * run never overruns its budget by more than the error of that estimate
 * (the slowest step seen so far plus 10%). Data comes through callbacks: the
 * engine knows no data format. */
#ifndef BG_BUDGET_RUN_H
#define BG_BUDGET_RUN_H
#include <stdio.h>
#include "sched.h"
#include "trainer.h"

typedef struct {
    /* Fill one training batch (tr->batch images) for global step `step` of `epoch`. */
    bg_status (*next_batch)(void *data, int64_t epoch, int64_t step_in_epoch, int64_t step, float *x, int32_t *y);
    /* Test accuracy of the current model (the callback calls bg_trainer_predict). */
    bg_status (*evaluate)(void *data, bg_trainer *tr, double *accuracy);
    void *data;
    int64_t steps_per_epoch;
    double budget_s;        /* wall-clock seconds */
    int64_t max_epochs;     /* 0 = until the budget ends */
    bg_sched sched;         /* cosine_time reads elapsed/budget; others read the step */
    FILE *log;              /* JSON lines, one per epoch and a final one; may be NULL */
} bg_run_config;

typedef struct {
    int64_t epochs, steps;
    double elapsed_s, best_accuracy, last_accuracy, last_loss;
    bool stopped_by_budget;
} bg_run_result;

bg_status bg_run_budgeted(bg_ctx *ctx, bg_trainer *tr, const bg_run_config *cfg, bg_run_result *res);

#endif
