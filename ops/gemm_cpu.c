/* Cache-blocked GEMM, C += op(A) * op(B) (see gemm_cpu.h).
 *
 * Structure (the classic Goto/BLIS loop nest):
 *   for each NC-wide column block of C           (B panel sized for L3)
 *     for each KC-deep slice of k                (one packed B slice)
 *       pack B[kc x nc] into NR-wide micro-panels (shared by all threads)
 *       parallel for each MC-tall row block       (each thread packs its own A)
 *         pack A[mc x kc] into MR-tall micro-panels   (sized for L2)
 *         for each NR panel, for each MR panel: micro-kernel
 * Packing pads ragged edges with zeros so the micro-kernel always computes a
 * full MR x NR tile from unit-stride data; only the store is clipped. The
 * micro-kernel keeps an MR x NR accumulator block and its inner loop over NR
 * is a fixed-length `omp simd` loop the compiler turns into vector FMAs.
 *
 * The file includes itself once per element type (the second part, under
 * BG_GEMM_TMPL) so the kernel code is written once. */
#ifndef BG_GEMM_TMPL

#include "gemm_cpu.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Block sizes. KC x NR of B plus MR x KC of A stay in L1 during a
 * micro-kernel call; MC x KC of A stays in L2; KC x NC of B lives in L3. */
#define GEMM_KC 256
#define GEMM_MC 120 /* a multiple of MR */
#define GEMM_NC 2048
/* Below this many multiply-adds the OpenMP fork costs more than it saves. */
#define GEMM_PAR_MIN 65536.0

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GEMM_X86 1
/* Read once per call: __builtin_cpu_supports consults libgcc's CPU model,
 * which its own constructor fills before main. */
static bool gemm_have_avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#else
#define GEMM_X86 0
#endif

static int gemm_threads(double work)
{
#ifdef _OPENMP
    if (work >= GEMM_PAR_MIN && !omp_in_parallel()) return omp_get_max_threads();
#endif
    (void)work;
    return 1;
}

#define BG_GEMM_TMPL 1

#define T float
#define SFX(name) name##_f32
#define MR 6
#define NR 16 /* two 8-float AVX registers per accumulator row */
#define FMA_T fmaf
#include "gemm_cpu.c"
#undef T
#undef SFX
#undef MR
#undef NR
#undef FMA_T

#define T double
#define SFX(name) name##_f64
#define MR 6
#define NR 8 /* two 4-double AVX registers per accumulator row */
#define FMA_T fma
#include "gemm_cpu.c"
#undef T
#undef SFX
#undef MR
#undef NR
#undef FMA_T

#undef BG_GEMM_TMPL

#else /* ---- type-generic part, included with T, SFX, MR, NR, FMA_T set ---- */

/* The micro-kernel body: c[mr x nr] += a_panel * b_panel over kc steps.
 * a holds MR values per k step, b holds NR; fused selects fma() so that the
 * AVX2+FMA instance (where fma is one instruction) gets fused multiply-adds,
 * while the portable instance never calls the libm function. It is a
 * constant at each call site, so the branch folds away after inlining. */
static inline __attribute__((always_inline)) void SFX(kernel_body)(int64_t kc, const T *restrict a,
                                                                   const T *restrict b, T *restrict c,
                                                                   int64_t ldc, int mr, int nr, bool fused)
{
    T acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0;
#pragma GCC unroll 4 /* lets loads of step p+1 overlap the FMAs of step p */
    for (int64_t p = 0; p < kc; p++) {
        const T *ap = a + p * MR, *bp = b + p * NR;
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            T ai = ap[i];
#pragma omp simd
            for (int j = 0; j < NR; j++) acc[i][j] = fused ? FMA_T(ai, bp[j], acc[i][j]) : acc[i][j] + ai * bp[j];
        }
    }
    if (mr == MR && nr == NR) { /* full tile: fixed trip counts vectorise */
        for (int i = 0; i < MR; i++)
#pragma omp simd
            for (int j = 0; j < NR; j++) c[i * ldc + j] += acc[i][j];
    } else {
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) c[i * ldc + j] += acc[i][j];
    }
}

static void SFX(kernel_portable)(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,
                                 int64_t ldc, int mr, int nr)
{
    SFX(kernel_body)(kc, a, b, c, ldc, mr, nr, false);
}

#if GEMM_X86
__attribute__((target("avx2,fma"))) static void SFX(kernel_avx2)(int64_t kc, const T *restrict a,
                                                                 const T *restrict b, T *restrict c,
                                                                 int64_t ldc, int mr, int nr)
{
    SFX(kernel_body)(kc, a, b, c, ldc, mr, nr, true);
}
#endif

/* Pack op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels: panel r holds, for each
 * k step, MR consecutive rows. Rows past mc are zero. */
static void SFX(pack_a)(bool ta, const T *A, int64_t lda, int64_t i0, int64_t p0, int64_t mc, int64_t kc, T *dst)
{
    for (int64_t ir = 0; ir < mc; ir += MR) {
        T *d = dst + ir * kc;
        int64_t rows = mc - ir < MR ? mc - ir : MR;
        for (int64_t p = 0; p < kc; p++) {
            for (int64_t i = 0; i < rows; i++) {
                int64_t gi = i0 + ir + i, gp = p0 + p;
                d[p * MR + i] = ta ? A[gp * lda + gi] : A[gi * lda + gp];
            }
            for (int64_t i = rows; i < MR; i++) d[p * MR + i] = 0;
        }
    }
}

/* Pack op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels; columns past nc are zero. */
static void SFX(pack_b_panel)(bool tb, const T *B, int64_t ldb, int64_t p0, int64_t j0, int64_t kc, int64_t cols,
                              T *d)
{
    for (int64_t p = 0; p < kc; p++) {
        int64_t gp = p0 + p;
        for (int64_t j = 0; j < cols; j++) d[p * NR + j] = tb ? B[(j0 + j) * ldb + gp] : B[gp * ldb + j0 + j];
        for (int64_t j = cols; j < NR; j++) d[p * NR + j] = 0;
    }
}

typedef void (*SFX(kernel_fn))(int64_t, const T *restrict, const T *restrict, T *restrict, int64_t, int, int);

bg_status SFX(bg_gemm)(bg_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T *A, int64_t lda,
                       const T *B, int64_t ldb, T *C, int64_t ldc)
{
    if (m <= 0 || n <= 0 || k <= 0) return BG_OK;
    SFX(kernel_fn) kern = SFX(kernel_portable);
#if GEMM_X86
    if (gemm_have_avx2_fma()) kern = SFX(kernel_avx2);
#endif
    int nth = gemm_threads((double)m * (double)n * (double)k);
    /* Row block height: at most GEMM_MC, but small enough that every thread
     * gets a block when m is short (e.g. Cout = 64 in a weight gradient). */
    int64_t mc_blk = (m + nth - 1) / nth;
    mc_blk = (mc_blk + MR - 1) / MR * MR;
    if (mc_blk > GEMM_MC) mc_blk = GEMM_MC;
    int64_t nc_max = n < GEMM_NC ? n : GEMM_NC;
    int64_t kc_max = k < GEMM_KC ? k : GEMM_KC;
    int64_t nc_pad = (nc_max + NR - 1) / NR * NR;
    size_t b_elems = (size_t)(kc_max * nc_pad), a_elems = (size_t)(kc_max * mc_blk);
    T *bpack = malloc(b_elems * sizeof(T));
    T *apack = malloc(a_elems * (size_t)nth * sizeof(T));
    if (!bpack || !apack) {
        free(bpack);
        free(apack);
        return bg_fail(ctx, BG_ERR_OOM, "gemm %lldx%lldx%lld: out of host memory for packing buffers",
                       (long long)m, (long long)n, (long long)k);
    }
    int64_t n_iblk = (m + mc_blk - 1) / mc_blk;

#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        T *my_a = apack + (size_t)tid * a_elems;
        for (int64_t jc = 0; jc < n; jc += GEMM_NC) {
            int64_t nc = n - jc < GEMM_NC ? n - jc : GEMM_NC;
            int64_t n_panels = (nc + NR - 1) / NR;
            for (int64_t pc = 0; pc < k; pc += GEMM_KC) {
                int64_t kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
                /* Everyone helps pack the shared B slice; the implied barrier
                 * at the end of the loop publishes it before any use. */
#pragma omp for schedule(static)
                for (int64_t jp = 0; jp < n_panels; jp++) {
                    int64_t cols = nc - jp * NR < NR ? nc - jp * NR : NR;
                    SFX(pack_b_panel)(tb, B, ldb, pc, jc + jp * NR, kc, cols, bpack + jp * NR * kc);
                }
                /* Each row block of C belongs to one thread, so C needs no locking.
                 * The barrier at the end keeps B packed until all are done. */
#pragma omp for schedule(static)
                for (int64_t ib = 0; ib < n_iblk; ib++) {
                    int64_t ic = ib * mc_blk;
                    int64_t mc = m - ic < mc_blk ? m - ic : mc_blk;
                    SFX(pack_a)(ta, A, lda, ic, pc, mc, kc, my_a);
                    for (int64_t jr = 0; jr < nc; jr += NR) {
                        int nr = nc - jr < NR ? (int)(nc - jr) : NR;
                        const T *bp = bpack + jr * kc;
                        for (int64_t ir = 0; ir < mc; ir += MR) {
                            int mr = mc - ir < MR ? (int)(mc - ir) : MR;
                            kern(kc, my_a + ir * kc, bp, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr);
                        }
                    }
                }
            }
        }
    }
    free(bpack);
    free(apack);
    return BG_OK;
}

#endif /* BG_GEMM_TMPL */
