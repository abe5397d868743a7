/* CUDA batchnorm over NHWC activations viewed as {m, c} (m = N*H*W rows,
 * channel fastest), implemented in kernels/batchnorm.cu. The op row
 * (ops/batchnorm.c) calls these with relu = 0; relu = 1 is the fused
 * BN+ReLU path (y = max(0, bn(x)); its backward masks dy with y > 0) for
 * builders that want one pass instead of two.
 *
 * Storage: x/y/dy/dx are f32 or f16 (x_half); gamma, beta and the running
 * statistics f32 or f16 (p_half, independently of x: an f16 network may keep
 * its BN parameters in f32). All math is f32. The batch statistics, the saved
 * mean and invstd and the workspace are always f32.
 *
 * Training forward, three launches, no atomics (deterministic):
 *   1. partial sums per (channel, row split) of (x - x[0,c]) and its square
 *      (shifted by the channel's first value, so E[d^2] - E[d]^2 does not
 *      cancel catastrophically when |mean| >> std);
 *   2. per channel: the splits summed in a fixed order -> mean, biased var,
 *      invstd; running stats updated as PyTorch (unbiased var);
 *   3. y = (x - mean) * invstd * gamma + beta (, relu), 16-byte accesses when
 *      c % 4 == 0.
 * Eval forward: 2' (statistics from the running buffers) and 3.
 * Backward: partial sums of dz and dz*(x - mean) (dz = dy, masked by y > 0
 * when relu), per-channel dgamma/dbeta (ADDED, as the op contract) and the
 * dx coefficients, then dx += gamma*invstd*(dz - mean(dz) - xhat*mean(dz*xhat))
 * in training, dx += gamma*invstd*dz in eval.
 *
 * The number of row splits depends on (m, c) only: the same shapes reduce in
 * the same order on every GPU. The workspace holds
 * bg_bn_workspace_floats(m, c) floats and is used by forward and backward
 * (the op keeps it as a CUDA-only saved tensor). */
#ifndef BG_KERNELS_BATCHNORM_H
#define BG_KERNELS_BATCHNORM_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Channels per block column and thread rows per block of the reductions. */
#define BG_BN_TILE_C 32
#define BG_BN_TILE_R 8

/* Row splits of the statistics pass: about 1024 blocks in all, at least 64
 * rows per split, at most 1024 splits. A function of the shape only. */
static inline int64_t bg_bn_splits(int64_t m, int64_t c)
{
    int64_t groups = (c + BG_BN_TILE_C - 1) / BG_BN_TILE_C;
    if (groups < 1) groups = 1;
    int64_t want = (1024 + groups - 1) / groups, most = m / 64;
    if (want > most) want = most;
    if (want > 1024) want = 1024;
    return want < 1 ? 1 : want;
}

/* f32 elements of workspace: two partial-sum planes plus four per-channel
 * coefficient rows. */
static inline int64_t bg_bn_workspace_floats(int64_t m, int64_t c) { return (2 * bg_bn_splits(m, c) + 4) * c; }

typedef struct {
    const void *x;
    void *y;                          /* {m, c} */
    const void *gamma, *beta;         /* {c} */
    void *running_mean, *running_var; /* {c}; updated in training */
    float *mean, *invstd;             /* {c} out: what backward needs */
    float *work;                      /* bg_bn_workspace_floats(m, c) */
    int64_t m, c;
    int x_half, p_half;
    int train, relu;
    float momentum, eps;
} bg_bn_fwd_args;

typedef struct {
    const void *x, *y, *dy;  /* y is read only when relu (the mask y > 0) */
    void *dx;                /* NULL: not wanted */
    const void *gamma;
    void *dgamma, *dbeta;    /* NULL: not wanted */
    const float *mean, *invstd;
    float *work;
    int64_t m, c;
    int x_half, p_half;
    int train, relu;
} bg_bn_bwd_args;

void bg_cuda_bn_fwd(const bg_bn_fwd_args *a, void *stream);
void bg_cuda_bn_bwd(const bg_bn_bwd_args *a, void *stream);

#ifdef __cplusplus
}
#endif
#endif
