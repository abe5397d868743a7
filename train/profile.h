/* The profile phase (the ICCV 2023 RCV winners' recipe, seed-spec §3.5):
 * for a model, an input size and a precision, the largest batch whose real
 * training step fits under a memory cap, the time of a step and of an
 * epoch, and how many epochs fit a budget.
 *
 * The batch is found first by planning: the memory planner's peak
 * (engine/plan.h, bg_model_plan_peaks: a training step with SGD momentum
 * and the evaluation beside it) of deferred recordings, computed without
 * running a kernel, searched by bisection for the largest batch under the
 * cap; one real trial at that batch confirms it (both peaks are reported).
 * The plan does not count everything a real run holds (the optimizer's
 * CUDA tables, mixed precision's masters, a captured graph's pinned
 * workspaces), so when the confirmation does not fit, the measured search
 * below runs instead.
 *
 * The measured search: the allocator's exact peak over a real
 * training step (forward, loss, backward, optimizer update) on random data,
 * in a fresh context capped at the limit. Peaks at batch 1 and 2 give the
 * affine law every tensor follows (proportional to the batch, or not
 * depending on it) and so a first guess; real steps at the guess and around
 * it settle the answer, each one either fitting under the cap or failing
 * with the allocator's out-of-memory error. */
#ifndef BG_PROFILE_H
#define BG_PROFILE_H
#include <stdbool.h>
#include <stdint.h>
#include "../engine/context.h"

typedef struct {
    const char *spec;       /* zoo spec */
    int size;               /* input side (0 = the model's own) */
    bool amp;               /* f16 storage, f32 masters (CUDA only) */
    bg_device device;
    double mem_cap;         /* bytes the step may hold at its peak */
    int64_t max_batch;      /* search bound (0 = 4096) */
    int64_t eval_batch;     /* > 0: each trial also evaluates this many images, as a run does between epochs
                               (the eval graph lives beside the training one, so it counts against the cap) */
    int eval_size;          /* > 0 and not size: the evaluation runs at this side, through a second
                               eval-only trainer beside the training one (as budgie train's test_size) */
    int64_t n_train;        /* images per epoch */
    double budget_s;        /* for epochs_in_budget */
    uint64_t seed;
} bg_profile_query;

typedef struct {
    int64_t batch;          /* the largest that fits (0: not even 1) */
    double peak_bytes;      /* measured at that batch */
    double step_s;          /* a replayed step at that batch (median of 3) */
    double epoch_s;         /* n_train / batch steps (last partial batch dropped, as the loader does) */
    int64_t epochs_in_budget;
    double bytes_per_image, fixed_bytes; /* the affine law from batches 1 and 2 */
    int trials;             /* real trials (steps) taken to find the batch */
    double planned_peak_bytes; /* the memory plan's peak at that batch (0 when the plan was not used) */
    int plans;              /* dry plans computed (no kernels, no activations allocated) */
    char note[256];         /* why a candidate is out ("" when it runs) */
} bg_profile_result;

/* BG_OK with result->note set when the candidate cannot run at all (a model
 * that rejects the size, amp on the CPU, not even batch 1 under the cap); an
 * error status only for failures of the machinery itself. */
bg_status bg_profile(bg_ctx *ctx, const bg_profile_query *q, bg_profile_result *out);

#endif
