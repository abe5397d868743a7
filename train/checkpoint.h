/* Checkpoints: one safetensors file holding everything a run needs to go on
 * bit for bit: the model's state dict (PyTorch names and layouts, so the
 * file also loads as weights once the "optim." entries are left out), the
 * optimizer state ("optim.<i>.<buffer>", the f32 masters of f16 parameters,
 * "optim.scalars" with the step counts), and metadata: the run position
 * (epoch, step in epoch, step, elapsed budget seconds, accuracies), the
 * context's Philox offset, the loss scaler (amp), the commit and the whole
 * recipe text. Written atomically: a temporary file, fsync, rename, fsync
 * of the folder (engine/safetensors.c), so a kill at any moment leaves the
 * previous checkpoint whole. */
#ifndef BG_CHECKPOINT_H
#define BG_CHECKPOINT_H
#include "../models/model.h"
#include "budget_run.h"
#include "loss_scale.h"
#include "trainer.h"

typedef struct {
    bg_run_position pos;
    uint64_t rng_offset;     /* ctx->rng_offset */
    bool has_scaler;         /* amp */
    bg_loss_scaler scaler;
    char recipe[8192];       /* the recipe text (bg_recipe_write) */
    char model[192];         /* the model's canonical spec */
} bg_ckpt_meta;

/* Save model + optimizer (tr->opt; none before the first step) + meta. */
bg_status bg_ckpt_save(bg_ctx *ctx, const char *path, const bg_model *m, bg_trainer *tr, const bg_ckpt_meta *meta);
/* Read the metadata only (a clear error for a file that is no checkpoint). */
bg_status bg_ckpt_read_meta(bg_ctx *ctx, const char *path, bg_ckpt_meta *meta);
/* Load the model's state dict from the checkpoint (the optimizer entries
 * are left for bg_trainer's restore, see bg_trainer_resume_from). */
bg_status bg_ckpt_load_model(bg_ctx *ctx, const char *path, bg_model *m);
/* Copy the checkpoint's optimizer state into opt's tensors; every one must
 * be there with its shape and dtype, and nothing else may be. */
bg_status bg_ckpt_restore_optim(bg_ctx *ctx, const char *path, bg_optim *opt);

#endif
