/* Dynamic loss scaling for mixed-precision training, as PyTorch's
 * GradScaler: the backward starts from d(loss) = scale instead of 1 so small
 * f16 gradients do not flush to zero; the optimizer multiplies the
 * gradients by 1/scale before using them. After every step:
 *   - some gradient was inf or NaN: the step is skipped (no parameter, state
 *     or step count changes) and the scale is multiplied by backoff (0.5);
 *   - otherwise the step counts as clean; after growth_interval clean steps
 *     in a row the scale is multiplied by growth (2).
 * The scale stays within [min_scale, max_scale]; with the defaults it is a
 * power of two, so scaling and unscaling are exact.
 *
 * This file is the state machine only: plain C, no device, CPU-tested. The
 * inf/NaN check is a kernel (bg_cuda_nonfinite_check, kernels/optim.h); the
 * trainer (train/trainer.c) wires the two together around each step. */
#ifndef BG_LOSS_SCALE_H
#define BG_LOSS_SCALE_H
#include <stdbool.h>
#include <stdint.h>
#include "../engine/context.h"

typedef struct {
    double scale;          /* current scale */
    double growth;         /* factor after growth_interval clean steps (> 1) */
    double backoff;        /* factor after an overflow (in (0, 1)) */
    int64_t growth_interval;
    double min_scale, max_scale;
    int64_t clean_steps;   /* clean steps since the last change of scale */
    int64_t skipped;       /* steps skipped so far */
    int64_t steps;         /* updates seen so far */
    bool collapsed;        /* the last update overflowed already at min_scale: scaling cannot help */
} bg_loss_scaler;

/* PyTorch's GradScaler defaults: scale 2^16, growth 2, backoff 0.5, interval
 * 2000; bounds [2^-24, 2^24]. */
bg_loss_scaler bg_loss_scaler_defaults(void);
/* Range checks: scale within bounds, growth > 1, backoff in (0, 1), interval >= 1. */
bg_status bg_loss_scaler_check(bg_ctx *ctx, const bg_loss_scaler *s);
/* Record the outcome of one step. Returns true when the step must be
 * skipped (found_inf), after updating the scale either way. */
bool bg_loss_scaler_update(bg_loss_scaler *s, bool found_inf);

#endif
