/* The trainer's CUDA step: one graph per training step (train/step_cuda.c,
 * on the capture of engine/cuda_graph.h). */
#ifndef BG_STEP_CUDA_H
#define BG_STEP_CUDA_H
#include <stdbool.h>
#include "../engine/cuda_graph.h"
#include "loss_scale.h"
#include "trainer.h"

/* ---- the trainer's CUDA step ------------------------------------------------------
 * A CUDA trainer (train/trainer.c) records and runs its first step eagerly
 * (that allocates every gradient and warms the tables), then captures
 * forward + loss + backward + [inf/NaN check] + optimizer update into one
 * graph and replays it every later step. Host work per step: upload the
 * batch into the same input tensors, write the optimizer's per-step scalars
 * (and the loss scale) into device memory, launch, download the loss. If the
 * capture fails (an op that cannot be captured), the trainer says why in
 * graph_note and replays eagerly instead; the result is the same.
 *
 * Mixed precision (amp): the inputs are f16 (the model's parameters must be
 * f16 already, e.g. bg_model_to(..., BG_F16)); BN statistics, the loss and
 * the optimizer's masters stay f32; d(loss) is seeded with the loss scale,
 * the gradients are checked for inf/NaN and unscaled inside the update, and
 * a step with an overflow is skipped (bg_loss_scaler_update). */
typedef struct {
    bool graph;             /* capture and replay the step (default true) */
    bool amp;               /* mixed precision (default false) */
    bg_loss_scaler scaler;  /* amp only (default bg_loss_scaler_defaults()) */
} bg_trainer_cuda_opts;

typedef struct {
    bool graph_active;      /* the last step was a graph replay */
    size_t graph_nodes;
    size_t graph_pinned_bytes;  /* workspaces pinned by the graph */
    int64_t captures;       /* captures so far (a new one when the launch layout changes) */
    char graph_note[256];   /* why the graph is off, "" when it is not */
    bool amp;
    double loss_scale;
    int64_t skipped_steps;
    bool last_skipped;
} bg_trainer_cuda_status;

bg_trainer_cuda_opts bg_trainer_cuda_defaults(void);
/* Before the first step of a CUDA trainer. */
bg_status bg_trainer_set_cuda(bg_trainer *tr, const bg_trainer_cuda_opts *o);
/* The defaults with mixed precision on or off, on a CUDA trainer; a CPU
 * trainer is left as it is (its precision is f32). */
bg_status bg_trainer_set_amp(bg_trainer *tr, bool amp);
void bg_trainer_cuda_get_status(const bg_trainer *tr, bg_trainer_cuda_status *out);
/* The loss scaler of an amp trainer (NULL otherwise), for checkpoints: a
 * restored scale reaches the device before the next step. */
bg_loss_scaler *bg_trainer_cuda_scaler(bg_trainer *tr);

/* Used by train/trainer.c. */
bg_status bg_trainer_cuda_init(bg_trainer *tr);           /* default state for a CUDA trainer */
void bg_trainer_cuda_free(bg_trainer *tr);
bg_dtype bg_trainer_input_dtype(const bg_trainer *tr);   /* f16 under amp, else f32 */
/* Upload n floats (bg_numel(t)) into input tensor t, converting to f16 if t is f16. */
bg_status bg_trainer_upload_input(bg_trainer *tr, bg_tensor *t, const float *host);
/* Download t (f32, or f16 converted) into bg_numel(t) floats. */
bg_status bg_trainer_download_f32(bg_trainer *tr, const bg_tensor *t, float *host);
/* The rest of a step once the batch is uploaded: on the first step (the
 * forward already ran while recording) backward + update; afterwards the
 * whole step, replayed as a graph when possible. *loss gets the loss. */
bg_status bg_trainer_cuda_step(bg_trainer *tr, double lr, bool first, double *loss);


#endif
