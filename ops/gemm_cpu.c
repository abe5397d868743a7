/* Cache-blocked GEMM, C += op(A) * op(B) (see gemm_cpu.h).
 *
 * Threads: C is cut into one contiguous slab per thread, by rows when C is
 * at least as tall as wide, else by columns (a weight gradient is 64 x 576
 * with k in the thousands), and each thread runs the serial algorithm on its
 * slab with its own packing buffers. No barriers inside: every slab is
 * independent, at the price of each thread packing the operand the slabs
 * share, which is small next to the slab's arithmetic. (A shared-B version
 * with two barriers per k slice crawled when the two cores were also busy
 * with other work: every barrier waited for a descheduled thread.)
 *
 * Serial algorithm (the classic Goto/BLIS loop nest):
 *   for each NC-wide column block of C            (B slice sized for L3)
 *     for each KC-deep slice of k
 *       pack B[kc x nc] into NR-wide micro-panels
 *       for each MC-tall row block
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
#ifdef _OPENMP
#include <omp.h>
#endif

/* Block sizes. KC x NR of B plus MR x KC of A stay in L1 during a
 * micro-kernel call; MC x KC of A stays in L2; KC x NC of B lives in L3.
 * Per thread that is at most 120 KiB + 2 MiB of packing buffers (f32). */
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

/* The micro-kernel body: tile[MR x NR] = a_panel * b_panel over kc steps.
 * a holds MR values per k step, b holds NR; fused selects fma() so that the
 * AVX2+FMA instance (where fma is one instruction) gets fused multiply-adds,
 * while the portable instance never calls the libm function. It is a
 * constant at each call site, so the branch folds away after inlining.
 *
 * Sanitizers are off here: instrumenting every access to the accumulator
 * block makes the GEMM ~200x slower, which turns `make test SAN=1` runs of
 * anything with a conv into minutes. The kernel reads only the packed
 * buffers this file sized itself; the packers reading A and B and add_tile
 * writing C stay instrumented, so out-of-bounds operands are still caught. */
#define GEMM_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
static inline __attribute__((always_inline)) GEMM_NO_SANITIZE void SFX(kernel_body)(int64_t kc, const T *restrict a,
                                                                                    const T *restrict b,
                                                                                    T *restrict tile, bool fused)
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
    for (int i = 0; i < MR; i++)
#pragma omp simd
        for (int j = 0; j < NR; j++) tile[i * NR + j] = acc[i][j];
}

static GEMM_NO_SANITIZE void SFX(kernel_portable)(int64_t kc, const T *restrict a, const T *restrict b,
                                                  T *restrict tile)
{
    SFX(kernel_body)(kc, a, b, tile, false);
}

#if GEMM_X86
__attribute__((target("avx2,fma"))) static GEMM_NO_SANITIZE void SFX(kernel_avx2)(int64_t kc, const T *restrict a,
                                                                                  const T *restrict b,
                                                                                  T *restrict tile)
{
    SFX(kernel_body)(kc, a, b, tile, true);
}
#endif

/* c[mr x nr] += tile, clipped to the ragged edge of C. */
static void SFX(add_tile)(T *restrict c, int64_t ldc, const T *restrict tile, int mr, int nr)
{
    if (mr == MR && nr == NR) { /* full tile: fixed trip counts vectorise */
        for (int i = 0; i < MR; i++)
#pragma omp simd
            for (int j = 0; j < NR; j++) c[i * ldc + j] += tile[i * NR + j];
    } else {
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) c[i * ldc + j] += tile[i * NR + j];
    }
}

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

typedef void (*SFX(kernel_fn))(int64_t, const T *restrict, const T *restrict, T *restrict);

_Static_assert(GEMM_MC % MR == 0, "row blocks must hold whole micro-panels");

/* One thread's slab: the loop nest above, with private buffers apack
 * (round_up(min(m, MC), MR) x min(k, KC)) and bpack (min(k, KC) x round_up(min(n, NC), NR)). */
static void SFX(gemm_serial)(SFX(kernel_fn) kern, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T *A,
                             int64_t lda, const T *B, int64_t ldb, T *C, int64_t ldc, T *apack, T *bpack)
{
    for (int64_t jc = 0; jc < n; jc += GEMM_NC) {
        int64_t nc = n - jc < GEMM_NC ? n - jc : GEMM_NC;
        for (int64_t pc = 0; pc < k; pc += GEMM_KC) {
            int64_t kc = k - pc < GEMM_KC ? k - pc : GEMM_KC;
            for (int64_t jr = 0; jr < nc; jr += NR)
                SFX(pack_b_panel)(tb, B, ldb, pc, jc + jr, kc, nc - jr < NR ? nc - jr : NR, bpack + jr * kc);
            for (int64_t ic = 0; ic < m; ic += GEMM_MC) {
                int64_t mc = m - ic < GEMM_MC ? m - ic : GEMM_MC;
                SFX(pack_a)(ta, A, lda, ic, pc, mc, kc, apack);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? (int)(nc - jr) : NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? (int)(mc - ir) : MR;
                        T tile[MR * NR];
                        kern(kc, apack + ir * kc, bpack + jr * kc, tile);
                        SFX(add_tile)(C + (ic + ir) * ldc + jc + jr, ldc, tile, mr, nr);
                    }
                }
            }
        }
    }
}

bg_status SFX(bg_gemm)(bg_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T *A, int64_t lda,
                       const T *B, int64_t ldb, T *C, int64_t ldc)
{
    if (m <= 0 || n <= 0 || k <= 0) return BG_OK;
    SFX(kernel_fn) kern = SFX(kernel_portable);
#if GEMM_X86
    if (gemm_have_avx2_fma()) kern = SFX(kernel_avx2);
#endif
    /* Slabs: split the longer side of C, in whole micro-tiles. */
    bool by_rows = m >= n;
    int64_t side = by_rows ? m : n, unit = by_rows ? MR : NR;
    int64_t nth = gemm_threads((double)m * (double)n * (double)k);
    if (nth > (side + unit - 1) / unit) nth = (side + unit - 1) / unit;
    int64_t slab = ((side + nth - 1) / nth + unit - 1) / unit * unit;
    nth = (side + slab - 1) / slab;
    /* Buffers sized to the slab, so tiny products (gradient checks) stay tiny. */
    int64_t rows = by_rows ? slab : m, cols = by_rows ? n : slab, kc_max = k < GEMM_KC ? k : GEMM_KC;
    int64_t mc_pad = ((rows < GEMM_MC ? rows : GEMM_MC) + MR - 1) / MR * MR;
    int64_t nc_pad = ((cols < GEMM_NC ? cols : GEMM_NC) + NR - 1) / NR * NR;
    size_t a_elems = (size_t)(mc_pad * kc_max), b_elems = (size_t)(nc_pad * kc_max);
    T *buf = malloc((a_elems + b_elems) * (size_t)nth * sizeof(T));
    if (!buf)
        return bg_fail(ctx, BG_ERR_OOM, "gemm %lldx%lldx%lld: out of host memory for packing buffers",
                       (long long)m, (long long)n, (long long)k);
#pragma omp parallel for num_threads((int)nth) if (nth > 1) schedule(static, 1)
    for (int64_t t = 0; t < nth; t++) {
        int64_t lo = t * slab, len = side - lo < slab ? side - lo : slab;
        T *apack = buf + (size_t)t * (a_elems + b_elems), *bpack = apack + a_elems;
        if (by_rows)
            SFX(gemm_serial)(kern, ta, tb, len, n, k, ta ? A + lo : A + lo * lda, lda, B, ldb, C + lo * ldc, ldc,
                             apack, bpack);
        else
            SFX(gemm_serial)(kern, ta, tb, m, len, k, A, lda, tb ? B + lo * ldb : B + lo, ldb, C + lo, ldc, apack,
                             bpack);
    }
    free(buf);
    return BG_OK;
}

#endif /* BG_GEMM_TMPL */
