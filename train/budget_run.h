/* A training run under a wall-clock budget. The clock is the caller's: t0
 * (CLOCK_MONOTONIC seconds, e.g. taken first thing in main()) so the budget
 * bounds the whole process, data loading included; 0 starts it here. Before
 * each step the loop checks that the step, the evaluation that closes the
 * epoch and the final save (reserve_s, measured by the caller) still fit,
 * using the slowest step seen so far plus 10% and, before the first
 * evaluation ran, an estimate of it from the step time (an image forward
 * costs at most half an image's training step). Data comes through
 * callbacks: the loop knows no data format. */
#ifndef BG_BUDGET_RUN_H
#define BG_BUDGET_RUN_H
#include <stdio.h>
#include "../engine/clock.h"
#include "sched.h"
#include "trainer.h"

/* Where a run stands between steps: what a checkpoint records and a resumed
 * run starts from. */
typedef struct {
    int64_t epoch;          /* the epoch in progress (0-based) */
    int64_t step_in_epoch;  /* its next step */
    int64_t step;           /* steps done in all, over every resume */
    int64_t epochs_done;    /* evaluated epochs in all */
    double elapsed_s;       /* budget seconds spent in all */
    double best_accuracy, last_accuracy;  /* test */
    double best_select, last_val;         /* the metric "best" is chosen on (validation, or test if so
                                             configured); the last validation accuracy (-1: none) */
} bg_run_position;

typedef struct {
    /* Fill one training batch (tr->batch images) for global step `step` of `epoch`. */
    bg_status (*next_batch)(void *data, int64_t epoch, int64_t step_in_epoch, int64_t step, float *x, int32_t *y);
    /* Optional, used instead of next_batch when set: the batch written
     * straight into the trainer's input tensor x (GPU-resident data), its
     * labels into the host array y. */
    bg_status (*next_batch_device)(void *data, int64_t epoch, int64_t step_in_epoch, int64_t step, bg_tensor *x,
                                   int32_t *y);
    /* Test accuracy of the current model (the callback calls bg_trainer_predict). */
    bg_status (*evaluate)(void *data, bg_trainer *tr, double *accuracy);
    /* Optional: validation accuracy (a split of the training data). */
    bg_status (*validate)(void *data, bg_trainer *tr, double *accuracy);
    /* Optional: save the "best" checkpoint; called after an evaluation whose
     * selection metric (validation accuracy, or test with select_on_test)
     * beats every earlier one. */
    bg_status (*checkpoint_best)(void *data, bg_trainer *tr, const bg_run_position *pos);
    bool select_on_test;    /* the seed's choice: best by test accuracy (an explicit option; optimistic) */
    /* Optional: save a checkpoint at `pos` (called after every evaluation,
     * every checkpoint_every_s seconds between steps, and when the run stops
     * for any reason, so the last call holds the final state). */
    bg_status (*checkpoint)(void *data, bg_trainer *tr, const bg_run_position *pos);
    /* Optional: each step's loss, as it happens. */
    void (*on_step)(void *data, int64_t step, double loss);
    void *data;
    int64_t steps_per_epoch;
    double budget_s;        /* wall-clock seconds, over every resume */
    int64_t max_epochs;     /* 0 = until the budget ends */
    int64_t max_steps;      /* 0 = no limit; else stop (and checkpoint) once `step` reaches it */
    bg_sched sched;         /* cosine_time reads elapsed/budget; others read the step (or the epoch) */
    bool sched_per_epoch;   /* counter-based schedules count epochs, not steps */
    int64_t sched_freeze;   /* > 0: the counter stops there (HAET steps its scheduler only while epoch <= 260) */
    double t0;              /* CLOCK_MONOTONIC seconds the budget counts from (0 = now) */
    double reserve_s;       /* kept free at the end for the caller's own final work */
    double final_eval_factor; /* > 0: the caller evaluates once more after the run (a test-time ensemble)
                                 at about this many times the cost of an epoch's evaluation; from the
                                 first measured evaluation on, that time is kept free too, like the
                                 final checkpoint's */
    double checkpoint_every_s; /* > 0: also checkpoint between steps this often */
    int64_t eval_images;    /* images one evaluation covers, test and validation (for the estimate before the first) */
    bg_run_position start;  /* a resumed run's position (zeros: a new run) */
    const volatile int *stop; /* optional: when it becomes nonzero (a signal), the step in flight finishes,
                                 a checkpoint is written and the run returns */
    FILE *log;              /* JSON lines, one per epoch and a final one; may be NULL */
    int64_t log_every;      /* > 0: also a JSON line every this many steps (mean loss of those steps) */
    /* Optional: extra fields for every log line (loss scale, memory peak...). */
    void (*log_extra)(void *data, bg_trainer *tr, void *json_object);
} bg_run_config;

typedef struct {
    int64_t epochs, steps;  /* this run's share (not counting what a resumed run did before) */
    double elapsed_s, best_accuracy, last_accuracy, last_loss;
    bool stopped_by_budget, stopped_by_signal, stopped_by_max_steps;
    bool eval_skipped;      /* an evaluation was left out because it would have overrun the budget */
    bg_run_position end;    /* where the run stopped (as checkpointed) */
    double checkpoint_s;    /* the slowest checkpoint */
    double eval_s;          /* an epoch's evaluation: the last one measured, else the estimate */
} bg_run_result;

bg_status bg_run_budgeted(bg_ctx *ctx, bg_trainer *tr, const bg_run_config *cfg, bg_run_result *res);
/* The factor the loop reserves on the measured cost of a checkpoint and of
 * the caller's final evaluation (bg_run_config.final_eval_factor). */
#define BG_RUN_MARGIN 1.5

/* One line of a run's log: obj as compact JSON (6 significant digits),
 * a newline, flushed; takes obj's reference (NULL: nothing written). */
struct json_t;
void bg_run_log_json(FILE *f, struct json_t *obj);

/* The lr the loop trains at: time-based (elapsed of budget_s) or from the
 * step or epoch counter (0-based), frozen at sched_freeze when set. */
double bg_run_lr(const bg_run_config *cfg, double elapsed, int64_t step, int64_t epoch);

#endif
