/* The fast GEMM's driver: how a product is cut across threads, and its
 * scratch (kernels/cpu/gemm.h; the loops are in kernels/cpu/isa/gemm.c).
 *
 * Three shapes of work, none with a barrier inside the arithmetic (on a busy
 * two-core machine a barrier waits for whichever thread was descheduled;
 * see ops/gemm_cpu.c):
 *   tall   m large (conv forward and data gradient, linear with a batch):
 *          B is packed once, by all threads (one barrier, before any
 *          arithmetic), then row blocks are dealt out dynamically, so a
 *          thread that lost its core simply takes fewer blocks.
 *   wide   n large, m small (linear weight gradient): each thread takes a
 *          slab of columns and packs its own B; A is shared read-only.
 *   deep   m and n small next to k (conv weight gradient, k = pixels): each
 *          thread sums its own run of k into a private C, then the partial
 *          Cs are added in thread order, so the result does not depend on
 *          which thread ran first.
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

/* The k-blocks' start offsets (k-blocks stop at im2col taps). */
static int64_t *kblock_starts(const bg_gemm_geom *g, const bg_gemm_job *j, int64_t *count)
{
    int64_t n = 0;
    for (int64_t p = 0; p < j->k; p += bg_gemm_kblock(g, j, p)) n++;
    int64_t *s = malloc((size_t)(n + 1) * sizeof *s);
    if (!s) return NULL;
    n = 0;
    for (int64_t p = 0; p < j->k; p += bg_gemm_kblock(g, j, p)) s[n++] = p;
    s[n] = j->k;
    *count = n;
    return s;
}

static bg_status run_tall(bg_ctx *ctx, const bg_gemm_job *jin, const bg_gemm_geom *g, int nth)
{
    bg_gemm_job j = *jin;
    void (*run)(const bg_gemm_job *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_run);
    void (*pack)(const bg_gemm_job *, int64_t, int64_t, float *) = BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_pack_b);
    /* Row blocks: MC tall, or fewer rows so that every thread gets some. */
    int64_t rb = bg_gemm_round((j.m + nth - 1) / nth, g->mr);
    if (rb > g->mc) rb = g->mc;
    int64_t nblk = (j.m + rb - 1) / rb;
    if (nblk < nth) nth = (int)nblk;
    const bool share_b = j.b.kind != BG_GS_IM2COL && nblk > 1 && !j.bpack;
    int64_t nkb = 0, *kb = share_b ? kblock_starts(g, &j, &nkb) : NULL;
    int64_t wf = bg_gemm_work_floats(g, &j);
    float *bp = share_b ? alloc_floats(bg_gemm_bpack_floats(g, &j)) : NULL;
    float *work = alloc_floats(wf * nth);
    if (!work || (share_b && (!kb || !bp))) {
        free(kb), free(bp), free(work);
        return oom(ctx, &j);
    }
    if (share_b) j.bpack = bp;
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        if (share_b) {
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < nkb; b++) pack(&j, kb[b], kb[b + 1], bp);
        }
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t b = 0; b < nblk; b++) {
            int64_t i0 = b * rb, i1 = i0 + rb < j.m ? i0 + rb : j.m;
            run(&j, i0, i1, 0, j.n, 0, j.k, work + (size_t)t * (size_t)wf);
        }
    }
    free(kb), free(bp), free(work);
    return BG_OK;
}

static bg_status run_wide(bg_ctx *ctx, const bg_gemm_job *j, const bg_gemm_geom *g, int nth)
{
    void (*run)(const bg_gemm_job *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_run);
    int64_t slab = bg_gemm_round((j->n + nth - 1) / nth, g->nr);
    nth = (int)((j->n + slab - 1) / slab);
    int64_t wf = bg_gemm_work_floats(g, j);
    float *work = alloc_floats(wf * nth);
    if (!work) return oom(ctx, j);
#pragma omp parallel for num_threads(nth) if (nth > 1) schedule(static, 1)
    for (int t = 0; t < nth; t++) {
        int64_t j0 = t * slab, j1 = j0 + slab < j->n ? j0 + slab : j->n;
        run(j, 0, j->m, j0, j1, 0, j->k, work + (size_t)t * (size_t)wf);
    }
    free(work);
    return BG_OK;
}

static bg_status run_deep(bg_ctx *ctx, const bg_gemm_job *j, const bg_gemm_geom *g, int nth)
{
    void (*run)(const bg_gemm_job *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_run);
    /* Private partials: overwrite on each thread's first k-block, no epilogue. */
    bg_gemm_job pj = *j;
    pj.ldc = j->n;
    pj.bpack = NULL;
    pj.ep = (bg_gemm_ep){.overwrite = true};
    int64_t per = bg_gemm_round((j->k + nth - 1) / nth, g->kc);
    nth = (int)((j->k + per - 1) / per);
    int64_t wf = bg_gemm_work_floats(g, &pj), cf = bg_gemm_round(j->m * j->n, 16);
    float *work = alloc_floats((wf + cf) * nth);
    if (!work) return oom(ctx, j);
#pragma omp parallel for num_threads(nth) if (nth > 1) schedule(static, 1)
    for (int t = 0; t < nth; t++) {
        bg_gemm_job tj = pj;
        tj.c = work + (size_t)nth * (size_t)wf + (size_t)t * (size_t)cf;
        int64_t p0 = t * per, p1 = p0 + per < j->k ? p0 + per : j->k;
        run(&tj, 0, j->m, 0, j->n, p0, p1, work + (size_t)t * (size_t)wf);
    }
    /* C (+)= the partials in thread order; rows across threads. */
    const float *parts = work + (size_t)nth * (size_t)wf;
    const bool add = !j->ep.overwrite;
#pragma omp parallel for num_threads(nth) if (j->m * j->n >= BG_CPU_GRAIN)
    for (int64_t i = 0; i < j->m; i++) {
        float *ci = j->c + i * j->ldc;
        for (int64_t jj = 0; jj < j->n; jj++) {
            float s = add ? ci[jj] : 0.0f;
            for (int t = 0; t < nth; t++) s += parts[(size_t)t * (size_t)cf + (size_t)(i * j->n + jj)];
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
