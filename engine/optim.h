/* Optimizers: the seven torch.optim update rules, each reproducing PyTorch's
 * single-tensor (foreach=False) implementation op for op, weight decay coupling
 * included (L2 added to the gradient for all but AdamW, whose decay is
 * decoupled). tests/test_optim.c checks every step against fixtures written by
 * tools/make_optim_fixtures.py with PyTorch 1.13.
 *
 * State tensors are allocated once, when the optimizer is created, through the
 * engine allocator on the parameter's device, so the memory a run needs is
 * known (and accounted) before the first step. Parameters are contiguous and
 * all on one device: CPU tensors of dtype f32 or f64, or CUDA tensors of
 * dtype f32 or f16.
 *
 * On CUDA the state is f32, and an f16 parameter (mixed precision) gets an
 * f32 master copy "optim.<i>.master": the update runs on the master with
 * exactly the f32 arithmetic of the CPU loops, then refreshes the f16
 * working copy. One fused kernel updates every parameter of a step
 * (kernels/optim.h). */
#ifndef BG_OPTIM_H
#define BG_OPTIM_H
#include <stdbool.h>
#include "tensor.h"

typedef enum {
    BG_OPT_SGD = 0,
    BG_OPT_ADAM,
    BG_OPT_ADAMW,
    BG_OPT_ADAMAX,
    BG_OPT_ADAGRAD,
    BG_OPT_ADADELTA,
    BG_OPT_ASGD,
    BG_OPT_COUNT
} bg_optim_kind;

/* Every hyperparameter of every kind; each kind reads only its own.
 * Names and meanings are torch's. */
typedef struct {
    bg_optim_kind kind;
    double lr;            /* NaN in SGD's defaults: torch requires it */
    double weight_decay;  /* L2 on the gradient; AdamW: p *= 1 - lr*wd first */
    /* sgd */
    double momentum, dampening;
    bool nesterov;        /* needs momentum > 0 and dampening == 0 */
    /* adam, adamw, adamax: betas; also eps for adagrad and adadelta */
    double beta1, beta2, eps;
    bool amsgrad;         /* adam, adamw */
    /* adagrad */
    double lr_decay, initial_accumulator_value;
    /* adadelta */
    double rho;
    /* asgd */
    double lambd, alpha, t0;
} bg_optim_config;

/* PyTorch's defaults for a kind (SGD's lr is NaN: set it). */
bg_optim_config bg_optim_defaults(bg_optim_kind kind);
/* "sgd", "adam", "adamw", "adamax", "adagrad", "adadelta", "asgd". */
const char *bg_optim_name(bg_optim_kind kind);
/* Name -> kind; BG_ERR_ARG naming the unknown name. */
bg_status bg_optim_parse(bg_ctx *ctx, const char *name, bg_optim_kind *out);
/* Set one hyperparameter by its torch name ("lr", "momentum", "betas" is two
 * keys: "beta1" and "beta2"; booleans take 0 or 1). A key the config's kind
 * does not use is BG_ERR_ARG, so a typo or a misplaced option is reported. */
bg_status bg_optim_config_set(bg_ctx *ctx, bg_optim_config *cfg, const char *key, double value);
/* The range checks torch's constructors make (lr >= 0, betas in [0,1), ...). */
bg_status bg_optim_check(bg_ctx *ctx, const bg_optim_config *cfg);

typedef struct bg_optim bg_optim;

/* An optimizer over n parameters (the array is copied, the tensors are not
 * owned). Validates the config and every parameter. */
bg_status bg_optim_new(bg_ctx *ctx, const bg_optim_config *cfg, bg_tensor *const *params,
                       int n, bg_optim **out);
void bg_optim_free(bg_ctx *ctx, bg_optim *opt); /* NULL is fine */
/* Bytes bg_optim_new would allocate on `device` for these parameters (state
 * buffers and, on the CPU, the per-parameter scalars), as the allocator
 * counts them; the CUDA update's small device tables are not included. */
size_t bg_optim_state_bytes(const bg_optim_config *cfg, bg_tensor *const *params, int n, bg_device device);

/* One update of every parameter from its ->grad. Parameters whose grad is
 * NULL are skipped and their state (step count included) is left alone. */
bg_status bg_optim_step(bg_ctx *ctx, bg_optim *opt);

/* Change the learning rate (schedules call this before each step). */
bg_status bg_optim_set_lr(bg_ctx *ctx, bg_optim *opt, double lr);
double bg_optim_lr(const bg_optim *opt);
const bg_optim_config *bg_optim_get_config(const bg_optim *opt);
/* Steps taken by parameter i (torch's per-parameter state['step']). */
int64_t bg_optim_param_steps(const bg_optim *opt, int i);

/* The optimizer state as tensors, for checkpoints: per-parameter buffers
 * named "optim.<i>.<buffer>" (momentum_buffer, exp_avg, exp_avg_sq,
 * max_exp_avg_sq, exp_inf, sum, square_avg, acc_delta, ax; then the f32
 * masters "optim.<i>.master" of f16 CUDA parameters) and
 * "optim.scalars", an {n, 3} f64 CPU tensor holding per parameter the step
 * count, ASGD's eta and mu. Writes up to cap pointers (out may be NULL) and
 * returns how many there are. The tensors stay owned by the optimizer: a
 * checkpoint saves them (bg_st_save with names NULL) and restores them by
 * copying the saved values into the same tensors. */
int bg_optim_state(const bg_optim *opt, bg_tensor **out, int cap);
/* ASGD's averaged parameters for parameter i (NULL for other kinds). */
bg_tensor *bg_optim_asgd_ax(const bg_optim *opt, int i);

/* ---- CUDA ---- */
/* The f32 master of parameter i when it is an f16 CUDA parameter, else NULL. */
bg_tensor *bg_optim_master(const bg_optim *opt, int i);
/* Copy the f16 parameters into their masters again, after something other
 * than the optimizer wrote the parameters (loading weights). No-op on CPU. */
bg_status bg_optim_sync_master(bg_ctx *ctx, bg_optim *opt);

/* bg_optim_step on CUDA, in stages, for a step captured into a CUDA graph:
 *  - prepare (host, outside the capture): checks the grads, writes the
 *    per-step scalars into the device tables (a synchronous upload); sets
 *    *layout_changed (may be NULL) when the launch would differ from the last
 *    prepare's (other parameters have grads): a captured launch is then stale;
 *  - check_finite (capturable): *found_inf = 1 if any grad * *inv_scale is
 *    inf or NaN (the caller zeroes *found_inf first);
 *  - launch (capturable): one kernel updates every parameter with a grad,
 *    grads multiplied by *inv_scale, nothing done when *found_inf != 0;
 *    inv_scale and found_inf are device pointers read when the kernel runs
 *    (NULL: 1 and never);
 *  - commit (host, after the step): step counts and ASGD's eta/mu advance
 *    when `applied`, and stay for a step the loss scaler skipped. */
bg_status bg_optim_cuda_prepare(bg_ctx *ctx, bg_optim *opt, bool *layout_changed);
bg_status bg_optim_cuda_check_finite(bg_ctx *ctx, const bg_optim *opt, const float *inv_scale, int32_t *found_inf);
bg_status bg_optim_cuda_launch(bg_ctx *ctx, const bg_optim *opt, const float *inv_scale, const int32_t *found_inf);
void bg_optim_cuda_commit(bg_optim *opt, bool applied);

#endif
