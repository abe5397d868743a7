/* The CPU GEMM behind conv2d and linear: C += op(A) * op(B), row-major.
 *
 * op(A) is m x k: A itself (stored m x k, leading dimension lda) or, with ta,
 * A^T where A is stored k x m. op(B) is k x n: B (k x n, ldb) or, with tb,
 * B^T where B is stored n x k. C is m x n with leading dimension ldc and is
 * accumulated into, never overwritten, because every caller wants "+=":
 * conv outputs start from the bias, and backward passes add into grads.
 *
 * Cache-blocked (Goto-style packing of A and B panels), OpenMP across
 * slabs of C (one per thread, no barriers), with an AVX2+FMA micro-kernel
 * picked at run time on x86 CPUs that have it. Packing buffers are plain
 * malloc: they are small and bounded (about 2 MiB per thread at most,
 * independent of the problem size), so they are not charged to the
 * context's memory cap. The only failure is BG_ERR_OOM. Called from inside
 * an OpenMP parallel region it runs on the calling thread only. */
#ifndef BG_GEMM_CPU_H
#define BG_GEMM_CPU_H
#include <stdbool.h>
#include <stdint.h>
#include "../engine/context.h"

bg_status bg_gemm_f32(bg_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc);
bg_status bg_gemm_f64(bg_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      const double *A, int64_t lda, const double *B, int64_t ldb, double *C, int64_t ldc);

#endif
