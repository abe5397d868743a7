/* CUDA GEMM: C = alpha * op(A) . op(B) + beta * C (+ bias, ReLU/sigmoid), f32 or f16
 * (f16 storage, f32 accumulation), strided-batched, any transposes.
 * Implemented in kernels/gemm/gemm.cu; the kernels themselves are in
 * igemm_main.cuh + gemm_problem.cuh. C linkage, plain pointers, row-major:
 *
 *   op(A) is m x k: A (stored m x k, lda) or, with ta, A^T (A stored k x m);
 *   op(B) is k x n: B (stored k x n, ldb) or, with tb, B^T (B stored n x k);
 *   C is m x n with leading dimension ldc. Batch b uses A + b*sA, B + b*sB, C + b*sC.
 *
 * linear's three products are (N x K input x, M x K weight W):
 *   y  = x . W^T + b   m=N n=M k=K, tb=1, beta=0, bias
 *   dx += dy . W       m=N n=K k=M, beta=1
 *   dW += dy^T . x     m=M n=K k=N, ta=1, beta=1
 *
 * beta == 0 never reads C (it may hold garbage or NaN). Every function returns
 * 0 on success, or with a one-line message in err: BG_KERR_ARG (a bad
 * argument), BG_KERR_UNSUPPORTED (valid, but not something this build or
 * algorithm does), or a positive CUDA runtime error code. */
#ifndef BG_GEMM_H
#define BG_GEMM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

struct bg_rtc;
enum { BG_KERR_ARG = -1, BG_KERR_UNSUPPORTED = -2 };
/* Epilogue activations (GEMM and conv forward). */
enum { BG_ACT_NONE = 0, BG_ACT_RELU = 1, BG_ACT_SIGMOID = 2 };

typedef enum {
    BG_GEMM_AUTO = 0, /* f16: tensor cores (cp.async path when aligned); f32: FMA tiles */
    BG_GEMM_NAIVE,    /* one thread per output, f32 sum in k order: the debugging reference */
    BG_GEMM_SIMT,     /* FP32 FMA tiles (f32 only) */
    BG_GEMM_TC,       /* f16 tensor cores, cp.async pipeline; fails unless rows are 16-byte aligned */
    BG_GEMM_TC_SCALAR,/* f16 tensor cores, register-staged loads (any alignment) */
    BG_GEMM_WGMMA     /* sm_90a wgmma (see docs/kernels-gemm-conv.md): not built yet, fails */
} bg_gemm_algo;

typedef struct {
    int m, n, k, batch;     /* batch 0 is taken as 1 */
    int ta, tb;
    const void *A;
    int64_t lda, sA;
    const void *B;
    int64_t ldb, sB;
    void *C;
    int64_t ldc, sC;
    float alpha, beta;      /* alpha 0 is NOT special: set it (1 for a plain product) */
    const void *bias;       /* n values of C's dtype added to every row, or NULL */
    int act;                /* BG_ACT_NONE / BG_ACT_RELU / BG_ACT_SIGMOID, applied last */
    int half;               /* 0: f32 everywhere, 1: f16 everywhere */
    /* Tuning knobs, 0 = automatic: tile config index (bg_gemm_config_name)
     * and split-K slices (needs ws, f32, splits * m * ldc floats; batch 1 only). */
    int config;
    int splits;
    float *ws;
    size_t ws_bytes;
    int deterministic;      /* 1: the tile from the shape alone (planned for a nominal 132-SM device), so
                               results are bit-identical on every GPU; 0: the device's SM count decides */
    struct bg_rtc *rtc;     /* NVRTC specialisation cache (kernels/rtc/rtc.h), or NULL */
} bg_gemm_desc;

int bg_gemm_cuda(const bg_gemm_desc *d, bg_gemm_algo algo, void *stream, char *err, size_t errn);
/* "128x128x32/8w/4st" for config 1.., NULL past the last; config 0 = auto. */
const char *bg_gemm_config_name(int half, int config);

/* db[j] += sum_i dy[i*ld + j], i < rows, j < cols (the bias gradient of
 * linear and conv): a fixed-order, atomic-free reduction, f32 sums. With a
 * workspace of bg_colsum_ws_bytes(rows, cols) bytes (f32) tall inputs are cut
 * into row chunks reduced in parallel; with none (NULL) one block per 32
 * columns walks all rows. Either way the result depends only on the shapes. */
size_t bg_colsum_ws_bytes(int64_t rows, int64_t cols);
int bg_colsum_cuda(const void *dy, int64_t rows, int64_t cols, int64_t ld, void *db, int half, float *ws,
                   size_t ws_bytes, void *stream, char *err, size_t errn);

/* Times `reps` calls of fn(arg) on `stream` with CUDA events after `warmup`
 * untimed calls; *ms is the mean per call. fn returns 0 or an error code. */
int bg_cuda_time(int (*fn)(void *arg), void *arg, int warmup, int reps, void *stream, float *ms, char *err,
                 size_t errn);
/* Name, SM count and compute capability of the current device. */
int bg_cuda_device_info(char *name, size_t namen, int *sms, int *cc_major, int *cc_minor);

#ifdef __cplusplus
}
#endif
#endif
