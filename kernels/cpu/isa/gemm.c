/* The fast GEMM's loop nest, packers and micro-kernels, one copy per
 * instruction set (kernels/cpu/isa.h); the contract is in kernels/cpu/gemm.h.
 *
 * Micro-tiles. C's rows are output pixels (or batch rows) and its columns
 * are channels, contiguous in memory, so a tile is MR rows by NR columns of
 * vector registers: each k step loads NR values of packed B, broadcasts one
 * A value per row and does MR * NR / width FMAs.
 *   AVX-512  12 x 32: 24 zmm accumulators + 2 for B + 1 broadcast of 32.
 *            24 FMAs to 14 loads per step keeps both FMA ports busy with
 *            the loads on the other ports; 32 columns (not 48 or 64) wastes
 *            less on the ragged channel counts of width-scaled models.
 *   AVX2     6 x 16: 12 ymm accumulators + 2 for B + 1 broadcast of 16.
 *   generic  4 x 8 in plain C the compiler vectorises.
 * The kernel broadcasts A straight from MR row pointers (see gemm.h), and
 * loads B from kc x NR packed panels (zero columns past n) or, in place,
 * through per-k row pointers with masked loads. A column edge of at most
 * half a tile runs a half-width kernel.
 *
 * Blocks (Sapphire Rapids: 48 KiB L1d, 2 MiB L2 per core). A B panel
 * (KC x NR floats, 32 KiB at AVX-512) stays in L1 while MC / MR row tiles
 * stream past it; the MC x KC block of A (144 x 256 floats, 144 KiB) and a
 * k-block of B (256 x n) stay in L2.
 *
 * C is loaded, added to and stored by the micro-kernel itself (masked at the
 * ragged column edge, row count clipped), so there is no temporary tile. */
#include <math.h>
#include <string.h>
#include "../gemm.h"
#include "../isa.h"
#if BG_ISA >= 1
#include <immintrin.h>
#endif

#if BG_ISA == 2
#define MR 12
#define NR 32
#define MC 144
#elif BG_ISA == 1
#define MR 6
#define NR 16
#define MC 120
#else
#define MR 4
#define NR 8
#define MC 128
#endif
#define KC 256
#define NC 1024
_Static_assert(MC % MR == 0, "an A block holds whole row tiles");

/* What A rows in the padding (and rows past m) point at. Read-only. */
static const float zeros[KC];

static const bg_gemm_geom geom = {MR, NR, MC, KC, NC, MR / 3 > 0 ? MR / 3 : 1};

void BG_ISA_FN(bg_k_gemm_geom)(bg_gemm_geom *g) { *g = geom; }

/* ---- micro-kernels: c[mr x nr] (+)= sum_p a[i][p * as] * b[p][j] ----
 * `as` is A's stride along k: 1 for rows read in place or gathered, lda for
 * a transposed A, whose MR values of one k step are then adjacent in memory
 * (one or two cache lines) and need no packing at all. */

#if BG_ISA == 2
/* wide: both vectors of the tile; else only the first (a ragged edge of 16
 * columns or fewer costs half the FMAs, e.g. the last 11 of 43 channels).
 * indirect: B row p is brow[p] + boff in place (masked loads), else the
 * packed panel b. */
static inline __attribute__((always_inline)) void ukernel_body(int64_t nseg, int64_t seglen, const float *const *arow, int64_t as,
                                                               const float *restrict b, const float *const *brow,
                                                               int64_t boff, float *c, int64_t ldc, int mr, int nr,
                                                               bool load_c, const bool wide, const bool indirect,
                                                               const int rows, const bool apanel)
{
    __m512 c0[MR], c1[MR];
    const float *a[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (int64_t sg = 0; sg < nseg; sg++) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            if (i >= rows || apanel) break;
            a[i] = arow[sg * MC + i];
        }
        const float *a0 = arow[sg * MC]; /* apanel: row i at a0 + i */
        const float *bs = indirect ? NULL : b + sg * seglen * NR;
        const float *const *brs = indirect ? brow + sg * seglen : NULL;
        for (int64_t p = 0, off = 0; p < seglen; p++, off += as) {
            __m512 b0, b1;
            if (indirect) {
                const float *bp = brs[p] + boff;
                /* Eight steps ahead: rows read in place lie C floats apart
                 * and conflict in L1, so each comes from L2 (3% on 64 x 576). */
                if (p + 8 < seglen) {
                    _mm_prefetch((const char *)(brs[p + 8] + boff), _MM_HINT_T0);
                    _mm_prefetch((const char *)(brs[p + 8] + boff + 16), _MM_HINT_T0);
                }
                b0 = _mm512_maskz_loadu_ps(m0, bp);
                b1 = wide ? _mm512_maskz_loadu_ps(m1, bp + 16) : b0;
            } else {
                b0 = _mm512_loadu_ps(bs + p * NR);
                b1 = wide ? _mm512_loadu_ps(bs + p * NR + 16) : b0;
            }
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                if (i >= rows) break;
                __m512 ai = _mm512_set1_ps(apanel ? a0[off + i] : a[i][off]);
                c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
                if (wide) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
            }
        }
    }
    /* Fully unrolled with a guard, so the accumulators keep constant indices
     * (a variable index would send them to the stack for the whole kernel). */
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        float *ci = c + i * ldc;
        __m512 v0 = c0[i];
        if (load_c) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
        _mm512_mask_storeu_ps(ci, m0, v0);
        if (wide) {
            __m512 v1 = c1[i];
            if (load_c) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
            _mm512_mask_storeu_ps(ci + 16, m1, v1);
        }
    }
}

#define HALF 16
#elif BG_ISA == 1
/* As above: wide (edges of 8 or fewer use one vector), indirect B. */
static inline __attribute__((always_inline)) void ukernel_body(int64_t nseg, int64_t seglen, const float *const *arow, int64_t as,
                                                               const float *restrict b, const float *const *brow,
                                                               int64_t boff, float *c, int64_t ldc, int mr, int nr,
                                                               bool load_c, const bool wide, const bool indirect,
                                                               const int rows, const bool apanel)
{
    __m256 c0[MR], c1[MR];
    const float *a[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), n = _mm256_set1_epi32(nr);
    const __m256i m0 = _mm256_cmpgt_epi32(n, lane), m1 = _mm256_cmpgt_epi32(n, _mm256_add_epi32(lane, _mm256_set1_epi32(8)));
    const bool full = nr == NR;
    for (int64_t sg = 0; sg < nseg; sg++) {
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            if (i >= rows || apanel) break;
            a[i] = arow[sg * MC + i];
        }
        const float *a0 = arow[sg * MC]; /* apanel: row i at a0 + i */
        const float *bs = indirect ? NULL : b + sg * seglen * NR;
        const float *const *brs = indirect ? brow + sg * seglen : NULL;
        for (int64_t p = 0, off = 0; p < seglen; p++, off += as) {
            __m256 b0, b1;
            if (indirect && full) { /* vmaskmovps takes an FMA port: only at edges */
                const float *bp = brs[p] + boff;
                b0 = _mm256_loadu_ps(bp);
                b1 = _mm256_loadu_ps(bp + 8);
            } else if (indirect) {
                const float *bp = brs[p] + boff;
                b0 = _mm256_maskload_ps(bp, m0);
                b1 = wide ? _mm256_maskload_ps(bp + 8, m1) : b0;
            } else {
                b0 = _mm256_loadu_ps(bs + p * NR);
                b1 = wide ? _mm256_loadu_ps(bs + p * NR + 8) : b0;
            }
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) {
                if (i >= rows) break;
                __m256 ai = _mm256_broadcast_ss(apanel ? a0 + off + i : a[i] + off);
                c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
                if (wide) c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        float *ci = c + i * ldc;
        __m256 v0 = c0[i], v1 = c1[i];
        if (full) {
            if (load_c) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, v0);
            _mm256_storeu_ps(ci + 8, v1);
        } else {
            if (load_c) v0 = _mm256_add_ps(v0, _mm256_maskload_ps(ci, m0));
            _mm256_maskstore_ps(ci, m0, v0);
            if (wide) {
                if (load_c) v1 = _mm256_add_ps(v1, _mm256_maskload_ps(ci + 8, m1));
                _mm256_maskstore_ps(ci + 8, m1, v1);
            }
        }
    }
}

#define HALF 8
#else
static inline void ukernel_body(int64_t nseg, int64_t seglen, const float *const *arow, int64_t as, const float *restrict b,
                                const float *const *brow, int64_t boff, float *c, int64_t ldc, int mr, int nr,
                                bool load_c, const bool wide, const bool indirect, const int rows,
                                const bool apanel)
{
    (void)wide, (void)rows, (void)apanel;
    float acc[MR][NR] = {{0}}, bv[NR] = {0};
    for (int64_t sg = 0; sg < nseg; sg++) {
        const float *a[MR];
        for (int i = 0; i < MR; i++) a[i] = arow[sg * MC + i];
        const float *bs = indirect ? NULL : b + sg * seglen * NR;
        const float *const *brs = indirect ? brow + sg * seglen : NULL;
        for (int64_t p = 0, off = 0; p < seglen; p++, off += as) {
            const float *bp = indirect ? bv : bs + p * NR;
            if (indirect)
                for (int j = 0; j < nr; j++) bv[j] = brs[p][boff + j];
            for (int i = 0; i < MR; i++) {
                const float ai = a[i][off];
#pragma omp simd
                for (int j = 0; j < NR; j++) acc[i][j] += ai * bp[j];
            }
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = (load_c ? c[i * ldc + j] : 0.0f) + acc[i][j];
}
#define HALF NR
#endif

/* The micro-kernel for one tile over nseg segments of k, seglen steps each:
 * segment s reads A through the row pointers arow[s * MC + i] (one segment
 * per im2col tap, so the accumulators stay in registers across the taps of
 * a k-block), B from a packed panel b or in place at brow[p] + boff (brow
 * NULL: packed). A ragged row edge runs a kernel of RQ = MR / 3 or 2 RQ
 * rows: a weight gradient's m of 64 or 128 channels is 5 or 10 tiles of 12
 * and a remainder of 4 or 8, which at full height wasted a tenth of the
 * FMAs (6% of 64 x 576 x 8192 at one thread). */
#define RQ (MR / 3 > 0 ? MR / 3 : 1)
#define UK_ROWS(wide, indirect, ap)                                                                                    \
    do {                                                                                                               \
        if (mr > 2 * RQ || MR < 3)                                                                                     \
            ukernel_body(nseg, seglen, arow, as, b, brow, boff, c, ldc, mr, nr, load_c, wide, indirect, MR, ap);       \
        else if (mr > RQ)                                                                                              \
            ukernel_body(nseg, seglen, arow, as, b, brow, boff, c, ldc, mr, nr, load_c, wide, indirect, 2 * RQ, ap);   \
        else                                                                                                           \
            ukernel_body(nseg, seglen, arow, as, b, brow, boff, c, ldc, mr, nr, load_c, wide, indirect, RQ, ap);       \
    } while (0)
/* as == MR: A copied into an MR-wide panel (prepare_a), row i at arow[0] + i,
 * read through one pointer: twelve row pointers and B's do not fit in the
 * general registers, and reloading the spilled ones in the k loop cost 7%
 * of a weight gradient with B in place (512 x 4608 x 128). */
#define UK_A(wide, indirect)                                                                                           \
    do {                                                                                                               \
        if (as == MR) UK_ROWS(wide, indirect, true);                                                                   \
        else UK_ROWS(wide, indirect, false);                                                                           \
    } while (0)
static void ukernel(int64_t nseg, int64_t seglen, const float *const *arow, int64_t as, const float *restrict b,
                    const float *const *brow, int64_t boff, float *c, int64_t ldc, int mr, int nr, bool load_c)
{
    if (brow) {
        if (nr > HALF) UK_A(true, true);
        else UK_A(false, true);
    } else {
        if (nr > HALF) UK_A(true, false);
        else UK_A(false, false);
    }
}

/* c = act(c + bias + res) on one finished tile. */
static void tile_ep(const bg_gemm_ep *ep, float *c, int64_t ldc, int64_t i0, int64_t j0, int mr, int nr)
{
    const float *bias = ep->bias ? ep->bias + j0 : NULL;
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *res = ep->res ? ep->res + (i0 + i) * ep->ldr + j0 : NULL;
        if (bias)
#pragma omp simd
            for (int j = 0; j < nr; j++) ci[j] += bias[j];
        if (res)
#pragma omp simd
            for (int j = 0; j < nr; j++) ci[j] += res[j];
        if (ep->act == BG_GACT_RELU) {
#pragma omp simd
            for (int j = 0; j < nr; j++) ci[j] = ci[j] > 0.0f ? ci[j] : 0.0f;
        } else if (ep->act == BG_GACT_SIGMOID) {
            /* In double as the sigmoid op rounds it, so the fused and unfused
             * graphs agree bit for bit (SE gates only: few elements). */
            for (int j = 0; j < nr; j++) {
                double d = ci[j], e = exp(-fabs(d));
                ci[j] = (float)(d >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
            }
        }
    }
}

/* ---- operand access ---- */

/* An output pixel's coordinates, stepped along without divisions. */
typedef struct {
    int64_t n, oy, ox;
} pix_pos;

static inline pix_pos pix_at(const bg_im2col *cv, int64_t pix)
{
    int64_t plane = cv->Ho * cv->Wo, r = pix % plane;
    return (pix_pos){pix / plane, r / cv->Wo, r % cv->Wo};
}

static inline void pix_next(const bg_im2col *cv, pix_pos *q)
{
    if (++q->ox == cv->Wo) {
        q->ox = 0;
        if (++q->oy == cv->Ho) q->oy = 0, q->n++;
    }
}

/* The im2col row of the output pixel at q, columns [p, p + len), into dst. */
static void im2col_row(const bg_im2col *cv, const float *x, pix_pos q, int64_t p, int64_t len, float *restrict dst)
{
    int64_t tap = p / cv->Cg, c = p - tap * cv->Cg, ky = tap / cv->kw, kx = tap - ky * cv->kw;
    const int64_t iy0 = q.oy * cv->sh - cv->ph, ix0 = q.ox * cv->sw - cv->pw;
    const float *img = x + q.n * cv->H * cv->W * cv->C + cv->c0;
    while (len > 0) {
        int64_t run = cv->Cg - c < len ? cv->Cg - c : len;
        int64_t iy = iy0 + ky * cv->dh, ix = ix0 + kx * cv->dw;
        if (iy < 0 || iy >= cv->H || ix < 0 || ix >= cv->W) {
            for (int64_t r = 0; r < run; r++) dst[r] = 0.0f;
        } else {
            const float *restrict src = img + (iy * cv->W + ix) * cv->C + c;
#pragma omp simd
            for (int64_t r = 0; r < run; r++) dst[r] = src[r];
        }
        dst += run, len -= run, c = 0;
        if (++kx == cv->kw) kx = 0, ky++;
    }
}

/* Row pointers for A[ic : ic+mc, pc : pc+kc] and their stride along k
 * (returned): in place where rows are contiguous along k, columns of a
 * transposed A in place with stride lda, else gathered into tmp (mc x kc).
 * Rows past mc, up to the next multiple of MR, repeat a real row (their
 * results are never stored). */
static int64_t prepare_a(const bg_gemm_job *j, int64_t ic, int64_t mc, int64_t pc, int64_t kc, float *tmp,
                         const float **arow)
{
    const bg_gsrc *a = &j->a;
    int64_t as = 1;
    if (a->kind == BG_GS_ROWS) {
        for (int64_t i = 0; i < mc; i++) arow[i] = a->p + (ic + i) * a->ld + pc;
    } else if (a->kind == BG_GS_COLS) {
        /* Copied into MR-wide panels (k step p of panel ir at tmp + ir * kc +
         * p * MR): read in place, a tile's kc steps lie ld apart, and with
         * the power-of-two channel counts of a weight gradient's dy they all
         * fall into a few L1 sets and miss. The block serves all n columns. */
        for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t w = mc - ir < MR ? mc - ir : MR;
            const float *src = a->p + pc * a->ld + ic + ir;
            float *restrict d = tmp + ir * kc;
            if (w == MR) /* a constant length: a vector copy per k step */
                for (int64_t p = 0; p < kc; p++, src += a->ld) memcpy(d + p * MR, src, MR * sizeof(float));
            else /* rows past w zero: the kernel reads the panel through d alone */
                for (int64_t p = 0; p < kc; p++, src += a->ld)
                    for (int64_t i = 0; i < MR; i++) d[p * MR + i] = i < w ? src[i] : 0.0f;
            for (int64_t i = 0; i < MR; i++) arow[ir + i] = d + i;
        }
        return MR;
    } else if (bg_gemm_a_direct(j)) { /* one segment of pointers per tap in the block */
        const bg_im2col *cv = a->cv;
        const int64_t tap0 = pc / cv->Cg, c = pc - tap0 * cv->Cg, nseg = kc > cv->Cg ? kc / cv->Cg : 1;
        pix_pos q = pix_at(cv, ic);
        for (int64_t i = 0; i < mc; i++, pix_next(cv, &q)) {
            const int64_t iy0 = q.oy * cv->sh - cv->ph, ix0 = q.ox * cv->sw - cv->pw;
            const float *img = a->p + q.n * cv->H * cv->W * cv->C + cv->c0 + c;
            int64_t ky = tap0 / cv->kw, kx = tap0 - ky * cv->kw;
            for (int64_t sg = 0; sg < nseg; sg++) {
                int64_t iy = iy0 + ky * cv->dh, ix = ix0 + kx * cv->dw;
                arow[sg * MC + i] =
                    iy < 0 || iy >= cv->H || ix < 0 || ix >= cv->W ? zeros : img + (iy * cv->W + ix) * cv->C;
                if (++kx == cv->kw) kx = 0, ky++;
            }
        }
        for (int64_t sg = 0; sg < nseg; sg++)
            for (int64_t i = mc; i < bg_gemm_round(mc, MR); i++) arow[sg * MC + i] = arow[sg * MC + mc - 1];
        return as;
    } else {
        pix_pos q = pix_at(a->cv, ic);
        for (int64_t i = 0; i < mc; i++, pix_next(a->cv, &q)) {
            im2col_row(a->cv, a->p, q, pc, kc, tmp + i * kc);
            arow[i] = tmp + i * kc;
        }
    }
    for (int64_t i = mc; i < bg_gemm_round(mc, MR); i++) arow[i] = arow[mc - 1];
    return as;
}

/* Row p of a ROWS-like source scattered into the NR panels of a kc x nc block. */
static void scatter_row(const float *src, int64_t nc, int64_t kc, int64_t p, float *dst)
{
    for (int64_t jr = 0; jr < nc; jr += NR) {
        float *d = dst + jr * kc + p * NR;
        int64_t w = nc - jr < NR ? nc - jr : NR;
#pragma omp simd
        for (int64_t jj = 0; jj < w; jj++) d[jj] = src[jr + jj];
        for (int64_t jj = w; jj < NR; jj++) d[jj] = 0.0f;
    }
}

/* One panel of a transposed B: column jj < w of the kc x NR panel d is the
 * contiguous run src + jj * ld, columns past w zero. A transpose in
 * TW x TW blocks of registers: a strided scalar store per element made this
 * packing a third of a forward conv whose rows fit one row block (the
 * weights are packed again on every call). */
#if BG_ISA == 2
#define TW 16
typedef __m512 tvec;
static inline tvec tv_load(const float *p, int w) { return _mm512_maskz_loadu_ps((__mmask16)((1u << w) - 1), p); }
static inline void transpose_tw(tvec r[TW])
{
    tvec t[TW], u[TW];
    for (int i = 0; i < TW; i += 2) t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < TW; i += 4)
        for (int h = 0; h < 2; h++) {
            __m512d a = _mm512_castps_pd(t[i + h]), b = _mm512_castps_pd(t[i + 2 + h]);
            u[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            u[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    /* u[4q + s] holds, in each 128-bit lane l, row-group q's columns 4l + s'
     * (s' = {0, 1, 2, 3}[s] after the two unpacks: order 0, 1, 2, 3). */
    for (int s = 0; s < 4; s++) {
        tvec v0 = _mm512_shuffle_f32x4(u[s], u[4 + s], 0x88), v1 = _mm512_shuffle_f32x4(u[s], u[4 + s], 0xdd);
        tvec v2 = _mm512_shuffle_f32x4(u[8 + s], u[12 + s], 0x88), v3 = _mm512_shuffle_f32x4(u[8 + s], u[12 + s], 0xdd);
        r[s] = _mm512_shuffle_f32x4(v0, v2, 0x88), r[8 + s] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
        r[4 + s] = _mm512_shuffle_f32x4(v1, v3, 0x88), r[12 + s] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
    }
}
static inline void tv_store(float *p, tvec v) { _mm512_storeu_ps(p, v); }
#elif BG_ISA == 1
#define TW 8
typedef __m256 tvec;
static inline tvec tv_load(const float *p, int w)
{
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_maskload_ps(p, m);
}
static inline void transpose_tw(tvec r[TW])
{
    tvec t[TW], u[TW];
    for (int i = 0; i < TW; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < TW; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44), u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int s = 0; s < 4; s++) {
        r[s] = _mm256_permute2f128_ps(u[s], u[4 + s], 0x20);
        r[4 + s] = _mm256_permute2f128_ps(u[s], u[4 + s], 0x31);
    }
}
static inline void tv_store(float *p, tvec v) { _mm256_storeu_ps(p, v); }
#endif

static void pack_cols_panel(const float *src, int64_t ld, int w, int64_t kc, float *restrict d)
{
    int64_t p = 0;
#ifdef TW
    for (int jb = 0; jb < NR; jb += TW) {
        if (jb >= w) break;
        const int rows = w - jb < TW ? w - jb : TW;
        for (p = 0; p + TW <= kc; p += TW) {
            tvec r[TW];
            for (int i = 0; i < TW; i++) r[i] = tv_load(src + (jb + (i < rows ? i : 0)) * ld + p, i < rows ? TW : 0);
            transpose_tw(r);
            for (int q = 0; q < TW; q++) tv_store(d + (p + q) * NR + jb, r[q]);
        }
    }
#endif
    const int64_t p0 = p;
    for (int64_t jj = 0; jj < NR; jj++) {
        const float *s = src + jj * ld;
        if (jj < w)
            for (int64_t q = p0; q < kc; q++) d[q * NR + jj] = s[q];
        else
            for (int64_t q = p0; q < kc; q++) d[q * NR + jj] = 0.0f;
    }
#ifdef TW
    /* Column blocks wholly past w skipped the transposes: zero their head. */
    for (int jb = 0; jb < NR; jb += TW)
        if (jb >= w)
            for (int64_t q = 0; q < p0; q++)
                for (int jj = 0; jj < TW; jj++) d[q * NR + jb + jj] = 0.0f;
#endif
}

/* B[pc : pc+kc, jc : jc+nc] into panels: panel jr at dst + jr * kc, each kc
 * rows of NR. rowbuf: nc floats (IM2COL only). */
static void pack_b_block(const bg_gemm_job *j, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float *dst,
                         float *rowbuf)
{
    const bg_gsrc *b = &j->b;
    if (b->kind == BG_GS_ROWS) {
        for (int64_t p = 0; p < kc; p++) scatter_row(bg_gsrc_row(b, pc + p) + jc, nc, kc, p, dst);
    } else if (b->kind == BG_GS_IM2COL) {
        pix_pos q = pix_at(b->cv, pc);
        for (int64_t p = 0; p < kc; p++, pix_next(b->cv, &q)) {
            im2col_row(b->cv, b->p, q, jc, nc, rowbuf);
            scatter_row(rowbuf, nc, kc, p, dst);
        }
    } else { /* COLS: column j of the panel is a contiguous run of B's row jc + j */
        for (int64_t jr = 0; jr < nc; jr += NR) {
            int64_t w = nc - jr < NR ? nc - jr : NR;
            pack_cols_panel(b->p + (jc + jr) * b->ld + pc, b->ld, (int)w, kc, dst + jr * kc);
        }
    }
}

void BG_ISA_FN(bg_k_gemm_pack_b)(const bg_gemm_job *j, int64_t pc, int64_t j0, int64_t j1, float *dst)
{
    const int64_t kc = bg_gemm_kblock(&geom, j, pc);
    pack_b_block(j, pc, kc, j0, j1 - j0, dst + pc * bg_gemm_round(j->n, NR) + j0 * kc, NULL);
}

/* Row pointers of B for k-block [pc, pc + kc) in place: ROWS rows, or the
 * pixels of one im2col tap (the zero block where the tap is in padding). */
static void b_rows(const bg_gemm_job *j, int64_t tap, int64_t pc, int64_t kc, const float *bzero, const float **brow)
{
    const bg_gsrc *b = &j->b;
    if (b->kind == BG_GS_ROWS) {
        for (int64_t p = 0; p < kc; p++) brow[p] = bg_gsrc_row(b, pc + p);
        return;
    }
    const bg_im2col *cv = b->cv;
    const int64_t ky = tap / cv->kw, kx = tap - ky * cv->kw;
    const int64_t dy = ky * cv->dh - cv->ph, dx = kx * cv->dw - cv->pw;
    pix_pos q = pix_at(cv, pc);
    for (int64_t p = 0; p < kc; p++, pix_next(cv, &q)) {
        int64_t iy = q.oy * cv->sh + dy, ix = q.ox * cv->sw + dx;
        brow[p] = iy < 0 || iy >= cv->H || ix < 0 || ix >= cv->W
                      ? bzero
                      : b->p + ((q.n * cv->H + iy) * cv->W + ix) * cv->C + cv->c0;
    }
}

void BG_ISA_FN(bg_k_gemm_run)(const bg_gemm_job *j, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t p0,
                              int64_t p1, float *work)
{
    const int64_t ncb = j->bpack ? j1 - j0 : NC, ncmax = bg_gemm_round(j->n < NC ? j->n : NC, NR);
    float *atmp = work, *bblk = atmp + MC * KC, *rowbuf = bblk + KC * ncmax;
    const float **arow = (const float **)(void *)(rowbuf + KC * ncmax), **brow = arow + MC * KC / BG_GEMM_DIRECT_MIN_CG;
    float *bzero = (float *)(void *)(brow + KC);
    const bg_gemm_ep *ep = &j->ep;
    const bool has_ep = ep->bias || ep->res || ep->act != BG_GACT_NONE;
    /* The portable kernel has no masked loads: it would copy every B row it
     * reads in place, so it packs instead. */
    const bool inplace_b = BG_ISA >= 1 && !j->bpack && bg_gemm_b_inplace(j);
    const int64_t npad = bg_gemm_round(j->n, NR), Cg = j->b.kind == BG_GS_IM2COL ? j->b.cv->Cg : 0;
    const bool a_taps = j->a.kind == BG_GS_IM2COL && bg_gemm_a_direct(j);
    const int64_t Cga = a_taps ? j->a.cv->Cg : 0;
    if (inplace_b && Cg) memset(bzero, 0, (size_t)Cg * sizeof(float));
    for (int64_t jc = j0; jc < j1; jc += ncb) {
        int64_t nc = j1 - jc < ncb ? j1 - jc : ncb;
        for (int64_t pc = p0; pc < p1;) {
            int64_t kc = bg_gemm_kblock(&geom, j, pc);
            if (kc > p1 - pc) kc = p1 - pc;
            /* A read in place from an im2col: whole taps as segments (a block
             * cut short by p1 keeps whole taps; the rest starts the next). */
            int64_t nseg = 1, seglen = kc;
            if (a_taps && kc > Cga) {
                kc -= kc % Cga;
                nseg = kc / Cga, seglen = Cga;
            }
            const float *bp = NULL;
            if (j->bpack) bp = j->bpack + pc * npad + jc * kc;
            else if (!inplace_b) {
                pack_b_block(j, pc, kc, jc, nc, bblk, rowbuf);
                bp = bblk;
            }
            const bool load_c = !(ep->overwrite && pc == p0), last = pc + kc == p1;
            for (int64_t ic = i0; ic < i1; ic += MC) {
                int64_t mc = i1 - ic < MC ? i1 - ic : MC;
                const int64_t as = prepare_a(j, ic, mc, pc, kc, atmp, arow);
                int64_t cur_tap = -1;
                if (inplace_b && !Cg) b_rows(j, 0, pc, kc, bzero, brow);
                /* Panels: NR wide, and with B in place also ending at each im2col tap. */
                for (int64_t jr = jc, w; jr < jc + nc; jr += w) {
                    int64_t boff = jr;
                    w = jc + nc - jr;
                    if (inplace_b && Cg) {
                        int64_t tap = jr / Cg;
                        boff = jr - tap * Cg;
                        if (Cg - boff < w) w = Cg - boff;
                        if (tap != cur_tap) b_rows(j, tap, pc, kc, bzero, brow), cur_tap = tap;
                    }
                    if (w > NR) w = NR;
                    const float *bpanel = bp ? bp + (jr - jc) * kc : NULL;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? (int)(mc - ir) : MR;
                        float *ct = j->c + (ic + ir) * j->ldc + jr;
                        ukernel(nseg, seglen, arow + ir, as, bpanel, inplace_b ? brow : NULL, boff, ct, j->ldc, mr, (int)w,
                                load_c);
                        if (last && has_ep) tile_ep(ep, ct, j->ldc, ic + ir, jr, mr, (int)w);
                    }
                }
            }
            pc += kc;
        }
    }
}
