/* The fast CPU GEMM (f32): C (+)= op(A) . op(B) with an optional epilogue,
 * where A and B may be plain matrices or the implicit im2col matrix of an
 * NHWC convolution, so a conv never materialises its im2col.
 *
 * Operands ("sources"). A is read as element (i, p), i < m, p < k; B as
 * element (p, j), p < k, j < n:
 *   BG_GS_ROWS    A: a[i*ld + p]      B: b[p*ld + j]      (not transposed)
 *   BG_GS_COLS    A: a[p*ld + i]      B: b[j*ld + p]      (transposed)
 *   BG_GS_IM2COL  row = output pixel, column = (ky, kx, c) of the receptive
 *                 field of one group (conv2d.c's layout), zero in the padding:
 *                 A is col (pixels x K), B is col with pixels along k.
 * The per-ISA loop nest (kernels/cpu/isa/gemm.c) packs as little as it can:
 *   A  read in place through one pointer per row and a stride along k:
 *      ROWS (stride 1), IM2COL when a group has enough channels that each (ky, kx)
 *      tap is a long contiguous run (a k-block then holds whole taps, one
 *      micro-kernel segment each, and a tap in the padding points at zeros).
 *      An im2col with short taps is gathered into a small scratch, and
 *      COLS copied into MR-wide panels (its k steps lie ld apart: at
 *      power-of-two ld they share a few L1 sets).
 *   B  packed into NR-wide panels once per call and shared by the threads
 *      when m is large; otherwise a long-tap IM2COL is read in place
 *      (per-k row pointers, panels ending at each tap) and ROWS, COLS or a
 *      short-tap im2col is packed, per block.
 *
 * The epilogue runs on each C tile after its last k-block, while the tile is
 * in L1: c = act(c + bias[j] + res[i, j]). With `overwrite` the first k-block
 * stores instead of adding, so C need not be initialised. */
#ifndef BG_CPU_GEMM_H
#define BG_CPU_GEMM_H
#include <stdbool.h>
#include <stdint.h>
#include "../../engine/context.h"

typedef enum { BG_GS_ROWS = 0, BG_GS_COLS, BG_GS_IM2COL } bg_gsrc_kind;

/* One group's im2col view of an NHWC input. */
typedef struct {
    int64_t N, H, W, C;     /* input */
    int64_t Ho, Wo;         /* output */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t Cg, c0;         /* channels per group, the group's first channel */
    int64_t K;              /* kh * kw * Cg */
} bg_im2col;

typedef struct {
    bg_gsrc_kind kind;
    const float *p;
    int64_t ld;             /* ROWS, COLS */
    const bg_im2col *cv;    /* IM2COL (p is the input tensor) */
    /* ROWS B only, flip_taps > 0: the rows of a conv's weights {Cog, taps,
     * ld} flipped in space and transposed to tap-major order, row
     * p = t * flip_cog + co being weight row co * taps + taps - 1 - t (the
     * stride-1 data gradient's B, read without a flipped copy). */
    int64_t flip_taps, flip_cog;
} bg_gsrc;

/* Row p of a ROWS source. */
static inline const float *bg_gsrc_row(const bg_gsrc *s, int64_t p)
{
    if (s->flip_taps > 0) {
        const int64_t t = p / s->flip_cog, co = p - t * s->flip_cog;
        return s->p + (co * s->flip_taps + s->flip_taps - 1 - t) * s->ld;
    }
    return s->p + p * s->ld;
}

enum { BG_GACT_NONE = 0, BG_GACT_RELU = 1, BG_GACT_SIGMOID = 2 }; /* = BG_EP_* */

typedef struct {
    bool overwrite;         /* the first k-block stores (C uninitialised) */
    const float *bias;      /* [n] or NULL */
    const float *res;       /* residual laid out like C (ldr) or NULL */
    int64_t ldr;
    int act;
} bg_gemm_ep;

/* One product. bpack (optional) is B already packed by bg_k_gemm_pack_b
 * over all of k and n; the loop nest then packs nothing of B. */
typedef struct {
    int64_t m, n, k;
    bg_gsrc a, b;
    float *c;
    int64_t ldc;
    bg_gemm_ep ep;
    const float *bpack;
} bg_gemm_job;

/* Per-ISA tile geometry and scratch sizes (kernels/cpu/isa/gemm.c). */
typedef struct {
    int mr, nr;             /* micro-tile */
    int64_t mc, kc, nc;     /* cache blocks */
    int mq;                 /* a ragged row edge runs a kernel of a multiple of mq rows */
} bg_gemm_geom;

/* A rows of an IM2COL A are read in place when a group has at least this
 * many channels: shorter taps would make k-blocks too short to pay for the
 * micro-kernel's C loads and stores. */
#define BG_GEMM_DIRECT_MIN_CG 16

static inline bool bg_gemm_a_direct(const bg_gemm_job *j)
{
    return j->a.kind == BG_GS_ROWS || (j->a.kind == BG_GS_IM2COL && j->a.cv->Cg >= BG_GEMM_DIRECT_MIN_CG);
}

/* The k-block starting at p: at most kc long. When A's rows are read in
 * place from an im2col, a block holds whole taps (as many as fit in kc,
 * each a segment of the micro-kernel) or, for taps longer than kc, part of
 * one tap; a block starting inside a tap ends with it. */
static inline int64_t bg_gemm_kblock(const bg_gemm_geom *g, const bg_gemm_job *j, int64_t p)
{
    int64_t end = j->k;
    if (j->a.kind == BG_GS_IM2COL && bg_gemm_a_direct(j)) {
        const int64_t Cg = j->a.cv->Cg;
        int64_t tap_end = (p / Cg + 1) * Cg;
        if (p % Cg == 0 && Cg <= g->kc) tap_end = p + g->kc / Cg * Cg;
        if (tap_end < end) end = tap_end;
    }
    return end - p < g->kc ? end - p : g->kc;
}

/* B rows are read in place (no packing) when the loop nest packs B itself
 * (nobody shared a packed B) and B is an im2col with long taps (panels then
 * end at each tap), whose gathering would cost more than the strided reads.
 * ROWS are packed: a copy of contiguous rows is cheap, and read in place a
 * panel's rows lie ld apart, which for the power-of-two channel counts of
 * most nets maps them to a few L1 sets (a fifth slower at 512 channels). */
static inline bool bg_gemm_b_inplace(const bg_gemm_job *j)
{
    return j->b.kind == BG_GS_IM2COL && j->b.cv->Cg >= BG_GEMM_DIRECT_MIN_CG;
}

static inline int64_t bg_gemm_round(int64_t v, int64_t to) { return (v + to - 1) / to * to; }


/* Per-thread scratch, in floats: gathered A block (mc x kc), B block
 * (kc x nc, padded to NR) and, for an IM2COL B, its rows before packing
 * (kc x nc), then A row pointers (mc per tap segment, at most kc / 16
 * segments), kc B row pointers and a block of zeros for B rows in padding. */
static inline int64_t bg_gemm_work_floats(const bg_gemm_geom *g, const bg_gemm_job *j)
{
    int64_t nc = j->n < g->nc ? j->n : g->nc, ptr = (int64_t)(sizeof(void *) / sizeof(float));
    int64_t zeros = j->b.kind == BG_GS_IM2COL ? j->b.cv->Cg : 0;
    /* a multiple of 16 floats, so each thread's scratch (and its pointers) stays aligned */
    return bg_gemm_round(g->mc * g->kc + 2 * g->kc * bg_gemm_round(nc, g->nr) +
                             (g->mc * g->kc / BG_GEMM_DIRECT_MIN_CG + g->kc) * ptr + zeros + 64,
                         16);
}

/* A whole packed B: every k-block, each as n (padded to NR) / NR panels of
 * kblock x NR, block p0 starting at p0 * round(n, NR). */
static inline int64_t bg_gemm_bpack_floats(const bg_gemm_geom *g, const bg_gemm_job *j)
{
    return j->k * bg_gemm_round(j->n, g->nr);
}

#include "dispatch.h"
BG_ISA_DECL(void, bg_k_gemm_geom, (bg_gemm_geom * g))
/* Pack columns [j0, j1) (j0 a multiple of NR) of the k-block starting at pc
 * of B into dst (the whole packed B's layout); not IM2COL. */
BG_ISA_DECL(void, bg_k_gemm_pack_b, (const bg_gemm_job *j, int64_t pc, int64_t j0, int64_t j1, float *dst))
/* C[i0:i1, j0:j1] over k-range [p0, p1) (p0 a k-block start); j0 a multiple
 * of NR when bpack is used. The epilogue and overwrite apply at k-blocks that
 * end at k and start at 0 respectively, so a k-split caller passes its own
 * job. work: bg_gemm_work_floats floats. */
BG_ISA_DECL(void, bg_k_gemm_run,
            (const bg_gemm_job *j, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t p0, int64_t p1,
             float *work))

/* All of B into dst (bg_gemm_bpack_floats), in pieces of k-blocks by column
 * ranges. Called by every thread of a parallel region, the pieces are shared
 * out among them (an orphaned `omp for`, which ends with a barrier);
 * outside one, the calling thread packs it all. */
void bg_gemm_pack_b_all(bg_ctx *ctx, const bg_gemm_job *j, float *dst);

/* The driver (kernels/cpu/gemm.c): threads, scratch, shared B packing.
 * Fails only with BG_ERR_OOM. */
bg_status bg_fast_gemm_job(bg_ctx *ctx, const bg_gemm_job *j);
/* Plain C += op(A) op(B), the reference GEMM's contract (ops/gemm_cpu.h). */
bg_status bg_fast_gemm_f32(bg_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A,
                           int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc);

#endif
