/* The fast GEMM's driver: how a product is cut across threads, and its
 * scratch (kernels/cpu/gemm.h; the loops are in kernels/cpu/isa/gemm.c).
 *
 * Three shapes of work, none with a barrier inside the arithmetic (on a busy
 * two-core machine a barrier waits for whichever thread was descheduled;
 * see ops/gemm_cpu.c):
 *   tall   m large (conv forward and data gradient, linear with a batch):
 *          tasks of row blocks, and with few row blocks also column slabs
 *          (tall_split_of), dealt out dynamically, so a thread that lost
 *          its core simply takes fewer. With more than two row blocks a
 *          packable B is packed once, by all the threads together (one
 *          barrier, before the arithmetic); with fewer each task packs its
 *          own blocks, so nothing is serial.
 *   wide   n large, m small (linear weight gradient): slabs of columns,
 *          dealt out dynamically, each packing its own B (or reading it in
 *          place); A is shared read-only.
 *   deep   m and n small next to k (conv weight gradient, k = pixels):
 *          pieces of k dealt out dynamically, each summing into its own
 *          partial C, then the partials are added in piece order, so the
 *          result does not depend on which thread took which piece.
 * Scratch is plain malloc like the reference GEMM's packing buffers: the
 * per-thread blocks are bounded (about 1.5 MiB), the packed B is the size of
 * a weight matrix. */
#include "gemm.h"
#include <stdlib.h>
#include <string.h>
#include "parallel.h"

/* Below this many multiply-adds a product stays on the calling thread. */
#define GEMM_PAR_MIN_MACS (1 << 18)

static int gemm_threads(const bg_gemm_job *j)
{
#ifdef _OPENMP
    double macs = (double)j->m * (double)j->n * (double)j->k;
    if (macs >= GEMM_PAR_MIN_MACS && !omp_in_parallel()) return omp_get_max_threads();
#endif
    (void)j;
    return 1;
}

static bg_status oom(bg_ctx *ctx, const bg_gemm_job *j)
{
    return bg_fail(ctx, BG_ERR_OOM, "fast gemm %lldx%lldx%lld: out of host memory for packing buffers",
                   (long long)j->m, (long long)j->n, (long long)j->k);
}

static float *alloc_floats(int64_t n)
{
    size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* Columns per packing piece: a k-block of them (at most 256 x 256 floats)
 * is a quarter of an L2. */
#define GEMM_PACK_COLS 256

void bg_gemm_pack_b_all(bg_ctx *ctx, const bg_gemm_job *j, float *dst)
{
    void (*pack)(const bg_gemm_job *, int64_t, int64_t, int64_t, float *) = BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_pack_b);
    bg_gemm_geom g;
    BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_geom)(&g);
    /* k-blocks are kc long but where an A read in place from an im2col
     * cuts them at taps (bg_gemm_kblock): found by stepping, a few dozen. */
    int64_t nkb = 0;
    for (int64_t pc = 0; pc < j->k; pc += bg_gemm_kblock(&g, j, pc)) nkb++;
    const int64_t ncol = (j->n + GEMM_PACK_COLS - 1) / GEMM_PACK_COLS;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < nkb * ncol; t++) {
        int64_t pc = 0, j0 = t % ncol * GEMM_PACK_COLS;
        for (int64_t b = t / ncol; b > 0; b--) pc += bg_gemm_kblock(&g, j, pc);
        int64_t j1 = j0 + GEMM_PACK_COLS < j->n ? j0 + GEMM_PACK_COLS : j->n;
        pack(j, pc, j0, j1, dst);
    }
}

/* Up to this many row blocks, each task packs its own B blocks (the loop
 * nest's per-block packing, into per-thread scratch that stays in cache)
 * and the rows are not cut further: a shared packed B is as big as the
 * weights (9 MiB for 512 x 512 x 3 x 3), written to freshly mapped pages
 * on every call, and read back from L3. */
#define GEMM_FEW_ROW_BLOCKS 2

/* Tasks for the tall shape: row blocks of rb rows (MC, or fewer so that
 * every thread gets some; with few rows, as few blocks as can be) and,
 * when there are fewer than
 * GEMM_PIECES_PER_THREAD per thread (a conv's deep stages at small batch:
 * 8 images of 4 x 4 pixels are 128 rows, one row block), column slabs of
 * sw columns too, so the threads share the work evenly and a descheduled
 * thread leaves its share to the others. Each C element is one task's, over
 * all of k: the result does not depend on the split. */
typedef struct {
    int64_t rb, nrb, sw, nsw;
} tall_split;

/* Pieces per thread in every shape: enough that a thread which lost its
 * core for a while leaves its share to the others. */
#define GEMM_PIECES_PER_THREAD 4

static tall_split tall_split_of(const bg_gemm_job *j, const bg_gemm_geom *g, int nth)
{
    tall_split t;
    /* B read in place (a weight gradient's im2col) keeps the plain row
     * split: column slabs cut its panels at the taps and re-read A per slab,
     * a fifth slower on 64 x 576 x 8192 at two threads. */
    const bool inplace = !j->bpack && bg_gemm_b_inplace(j);
    if (j->m <= GEMM_FEW_ROW_BLOCKS * g->mc && !inplace) { /* as few row blocks as can be */
        t.nrb = (j->m + g->mc - 1) / g->mc;
        t.rb = bg_gemm_round((j->m + t.nrb - 1) / t.nrb, g->mr);
    } else if (inplace) {
        /* Few rows (a weight gradient's output channels), so evenly: row
         * blocks of at most MC, as many as a multiple of the threads (512
         * rows at two threads are 4 x 128, not 144 x 3 + 80), rounded to the
         * edge kernels' mq, not MR (64 rows are 32 + 32, 12 + 12 + 8 each,
         * not 36 + 28: three tiles of 12 against two and a 4). */
        int64_t nb = (j->m + g->mc - 1) / g->mc;
        nb = (nb + nth - 1) / nth * nth;
        t.rb = bg_gemm_round((j->m + nb - 1) / nb, g->mq);
    } else {
        t.rb = bg_gemm_round((j->m + nth - 1) / nth, g->mr);
        if (t.rb > g->mc) t.rb = g->mc;
    }
    t.nrb = (j->m + t.rb - 1) / t.rb;
    t.nsw = 1, t.sw = j->n;
    const int64_t want = (int64_t)GEMM_PIECES_PER_THREAD * nth, panels = (j->n + g->nr - 1) / g->nr;
    if (nth > 1 && t.nrb < want && !inplace) {
        int64_t ns = (want + t.nrb - 1) / t.nrb;
        if (ns > panels) ns = panels;
        t.sw = (panels + ns - 1) / ns * g->nr;
        t.nsw = (j->n + t.sw - 1) / t.sw;
    }
    return t;
}

static bg_status run_tall(bg_ctx *ctx, const bg_gemm_job *jin, const bg_gemm_geom *g, int nth)
{
    bg_gemm_job j = *jin;
    void (*run)(const bg_gemm_job *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_run);
    const tall_split sp = tall_split_of(&j, g, nth);
    const int64_t ntask = sp.nrb * sp.nsw;
    if (ntask < nth) nth = (int)ntask;
    /* B packed once and shared when several row blocks would each pack it
     * (not an im2col B: that is read in place or packed per block). */
    const bool share_b = j.b.kind != BG_GS_IM2COL && sp.nrb > GEMM_FEW_ROW_BLOCKS && !j.bpack;
    int64_t wf = bg_gemm_work_floats(g, &j);
    float *bp = share_b ? alloc_floats(bg_gemm_bpack_floats(g, &j)) : NULL;
    float *work = alloc_floats(wf * nth);
    if (!work || (share_b && !bp)) {
        free(bp), free(work);
        return oom(ctx, &j);
    }
    /* One parallel region: the threads pack the shared B together (the
     * one barrier, at the end of the packing loop: B packed by the calling
     * thread alone left the others idle for a third of a deep stage's
     * forward), then take tasks. */
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        if (share_b) bg_gemm_pack_b_all(ctx, &j, bp);
        bg_gemm_job tj = j;
        if (share_b) tj.bpack = bp;
        float *wk = work + (size_t)bg_cpu_thread_id() * (size_t)wf;
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t t = 0; t < ntask; t++) {
            int64_t i0 = t / sp.nsw * sp.rb, i1 = i0 + sp.rb < j.m ? i0 + sp.rb : j.m;
            int64_t j0 = t % sp.nsw * sp.sw, j1 = j0 + sp.sw < j.n ? j0 + sp.sw : j.n;
            run(&tj, i0, i1, j0, j1, 0, j.k, wk);
        }
    }
    free(bp), free(work);
    return BG_OK;
}


static bg_status run_wide(bg_ctx *ctx, const bg_gemm_job *j, const bg_gemm_geom *g, int nth)
{
    void (*run)(const bg_gemm_job *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_run);
    int64_t slab = bg_gemm_round((j->n + GEMM_PIECES_PER_THREAD * nth - 1) / (GEMM_PIECES_PER_THREAD * nth), g->nr);
    int64_t nslab = (j->n + slab - 1) / slab;
    int64_t wf = bg_gemm_work_floats(g, j);
    float *work = alloc_floats(wf * nth);
    if (!work) return oom(ctx, j);
#pragma omp parallel for num_threads(nth) if (nth > 1) schedule(dynamic, 1)
    for (int64_t t = 0; t < nslab; t++) {
        int64_t j0 = t * slab, j1 = j0 + slab < j->n ? j0 + slab : j->n;
        run(j, 0, j->m, j0, j1, 0, j->k, work + (size_t)bg_cpu_thread_id() * (size_t)wf);
    }
    free(work);
    return BG_OK;
}

/* Each piece of k sums into its own partial C (m x n, small here), and the
 * partials are added in piece order afterwards, so the rounding does not
 * depend on which thread took which piece. */
static bg_status run_deep(bg_ctx *ctx, const bg_gemm_job *j, const bg_gemm_geom *g, int nth)
{
    void (*run)(const bg_gemm_job *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_run);
    bg_gemm_job pj = *j;
    pj.ldc = j->n;
    pj.bpack = NULL;
    pj.ep = (bg_gemm_ep){.overwrite = true};
    int64_t per = bg_gemm_round((j->k + GEMM_PIECES_PER_THREAD * nth - 1) / (GEMM_PIECES_PER_THREAD * nth), g->kc);
    int64_t npiece = (j->k + per - 1) / per;
    int64_t wf = bg_gemm_work_floats(g, &pj), cf = bg_gemm_round(j->m * j->n, 16);
    float *work = alloc_floats(wf * nth + cf * npiece), *parts = work + (size_t)nth * (size_t)wf;
    if (!work) return oom(ctx, j);
#pragma omp parallel for num_threads(nth) if (nth > 1) schedule(dynamic, 1)
    for (int64_t t = 0; t < npiece; t++) {
        bg_gemm_job tj = pj;
        tj.c = parts + (size_t)t * (size_t)cf;
        int64_t p0 = t * per, p1 = p0 + per < j->k ? p0 + per : j->k;
        run(&tj, 0, j->m, 0, j->n, p0, p1, work + (size_t)bg_cpu_thread_id() * (size_t)wf);
    }
    const bool add = !j->ep.overwrite;
    for (int64_t i = 0; i < j->m; i++) {
        float *ci = j->c + i * j->ldc;
        for (int64_t jj = 0; jj < j->n; jj++) {
            float s = add ? ci[jj] : 0.0f;
            for (int64_t t = 0; t < npiece; t++) s += parts[(size_t)t * (size_t)cf + (size_t)(i * j->n + jj)];
            ci[jj] = s;
        }
    }
    free(work);
    return BG_OK;
}

bg_status bg_fast_gemm_job(bg_ctx *ctx, const bg_gemm_job *j)
{
    if (j->m <= 0 || j->n <= 0) return BG_OK;
    if (j->k <= 0 && !j->ep.overwrite) return BG_OK;
    bg_gemm_geom g;
    BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_geom)(&g);
    int nth = gemm_threads(j);
    int64_t mt = (j->m + g.mr - 1) / g.mr, nt = (j->n + g.nr - 1) / g.nr;
    if (j->k <= 0) { /* an empty sum; callers with an epilogue always have k > 0 */
        for (int64_t i = 0; i < j->m; i++) memset(j->c + i * j->ldc, 0, (size_t)j->n * sizeof(float));
        return BG_OK;
    }
    if (nth > 1 && !j->ep.bias && !j->ep.res && j->ep.act == BG_GACT_NONE && mt * nt < 8 * nth &&
        j->k >= 4 * g.kc * nth)
        return run_deep(ctx, j, &g, nth);
    if (nth > 1 && mt < 2 * nth && nt >= 2 * nth) return run_wide(ctx, j, &g, nth);
    return run_tall(ctx, j, &g, nth);
}

bg_status bg_fast_gemm_f32(bg_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A,
                           int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc)
{
    bg_gemm_job j = {.m = m, .n = n, .k = k, .c = C, .ldc = ldc};
    j.a = (bg_gsrc){.kind = ta ? BG_GS_COLS : BG_GS_ROWS, .p = A, .ld = lda};
    j.b = (bg_gsrc){.kind = tb ? BG_GS_COLS : BG_GS_ROWS, .p = B, .ld = ldb};
    return bg_fast_gemm_job(ctx, &j);
}
