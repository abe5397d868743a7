/* The fused multi-tensor optimizer update on CUDA, implemented in
 * kernels/optim.cu, and the inf/NaN check of mixed precision.
 *
 * engine/optim.c describes every parameter of a step in a device table of
 * bg_opt_tensor entries (pointers, size, the per-step scalars of torch's
 * update rule, already cast to f32 exactly as engine/optim_kernels.inc casts
 * them) and cuts the parameters into chunks of BG_OPT_CHUNK elements; ONE
 * launch then updates every element of every parameter. The per-element
 * arithmetic repeats optim_kernels.inc op for op with the rounding
 * intrinsics (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn), which the
 * compiler never contracts into FMAs: an f32 update is bit-identical to the
 * CPU's f32 update of the same inputs.
 *
 * Parameters are updated in f32: an f32 parameter in place; an f16 parameter
 * through its f32 master copy (p), after which the kernel refreshes the f16
 * working copy (p16) from it. Gradients are f32 or f16; they are multiplied
 * by *inv_scale first (the loss scale's inverse under mixed precision, a
 * power of two, so exact), and the whole update is skipped when *found_inf is
 * non-zero (a step the loss scaler rejects). Both pointers are device memory
 * (NULL: 1 and "never"), read when the kernel runs, so a step captured into
 * a CUDA graph picks up new values at every replay. */
#ifndef BG_KERNELS_OPTIM_H
#define BG_KERNELS_OPTIM_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define BG_OPT_CHUNK 65536
#define BG_OPT_NSCALAR 10

/* The update rule: the values of bg_optim_kind (engine/optim.h). */
enum { BG_OPTK_SGD = 0, BG_OPTK_ADAM, BG_OPTK_ADAMW, BG_OPTK_ADAMAX, BG_OPTK_ADAGRAD, BG_OPTK_ADADELTA, BG_OPTK_ASGD };

/* Flags of one entry. */
enum {
    BG_OPTF_WD = 1,        /* weight_decay != 0: add wd * p to the gradient */
    BG_OPTF_FIRST = 2,     /* SGD: the momentum buffer starts as the gradient */
    BG_OPTF_NESTEROV = 4,  /* SGD */
    BG_OPTF_DECOUPLED = 8, /* AdamW: p *= 1 - lr * wd first */
    BG_OPTF_AVERAGE = 16   /* ASGD: mu != 1, ax averages */
};

/* Scalars s[] by kind (names of optim.c's structs, cast to f32):
 *   SGD       wd, momentum, 1-dampening, -lr
 *   ADAM(W)   wd, decay, beta1, beta2, 1-beta1, 1-beta2, sqrt(bias_correction2), eps, -step_size
 *   ADAMAX    wd, beta1, beta2, 1-beta1, eps, -clr
 *   ADAGRAD   wd, eps, -clr
 *   ADADELTA  wd, rho, 1-rho, eps, -lr
 *   ASGD      wd, 1-lambd*eta, -eta, mu
 * Buffers: SGD b0 = momentum (NULL without momentum); Adam b0 exp_avg, b1
 * exp_avg_sq, b2 max_exp_avg_sq (amsgrad, else NULL); Adamax b0 exp_avg, b1
 * exp_inf; Adagrad b0 sum; Adadelta b0 square_avg, b1 acc_delta; ASGD b0 ax. */
typedef struct {
    float *p;            /* f32 parameter, or the f32 master of an f16 one */
    void *p16;           /* f16 working copy refreshed from p, or NULL */
    const void *g;       /* gradient, f32 or f16 (g_half) */
    float *b0, *b1, *b2;
    int64_t n;
    float s[BG_OPT_NSCALAR];
    int32_t flags;
    int32_t g_half;
} bg_opt_tensor;

typedef struct {
    int32_t tensor;      /* index into the tensor table */
    int32_t unused;
    int64_t start;       /* first element; the chunk ends BG_OPT_CHUNK later or at n */
} bg_opt_chunk;

/* One launch over n_chunks chunks (tables in device memory). */
void bg_cuda_optim_update(int kind, const bg_opt_tensor *tensors, const bg_opt_chunk *chunks, int64_t n_chunks,
                          const float *inv_scale, const int32_t *found_inf, void *stream);
/* Sets *found_inf to 1 when any gradient element times *inv_scale is inf or
 * NaN (never back to 0: the caller zeroes it before). Only the value 1 is
 * ever stored, so the result is deterministic without atomics. */
void bg_cuda_nonfinite_check(const bg_opt_tensor *tensors, const bg_opt_chunk *chunks, int64_t n_chunks,
                             const float *inv_scale, int32_t *found_inf, void *stream);

#ifdef __cplusplus
}
#endif
#endif
