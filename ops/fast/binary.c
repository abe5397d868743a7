/* The fast CPU backend's add and mul (ops/binary.c has the math): f32, and
 * the broadcasts the models use: b of a's shape (the residual add), or b
 * keeping a's leading dims and broadcasting over the rest of the rows (the
 * SE gate {N,1,1,C}, a per-channel {1,1,1,C}), with b's last dim a's or 1.
 * Seen as rows of a's last dim, row r of a pairs with row r / g of b. Other
 * broadcasts ({1,H,W,C}, {1,C,1,1}...) are declined to the reference.
 *
 * The reference finds every element's partner by division; here a row
 * finds its b row once and the row loop is vectorised. b's gradient sums
 * each group of g rows over fixed row chunks (kernels/cpu/rows.h) whose
 * partials are added in chunk order: the bits do not depend on the thread
 * count. */
#include <stdlib.h>
#include <string.h>
#include "fast.h"
#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/rows.h"

BG_ISA_DECL(void, bg_k_binary_fwd,
            (const float *a, const float *b, float *y, int64_t r0, int64_t r1, int64_t w, int64_t g, int bstep, int mul))
BG_ISA_DECL(void, bg_k_binary_bwd_a,
            (const float *dy, const float *b, float *da, int64_t r0, int64_t r1, int64_t w, int64_t g, int bstep,
             int mul, int store))
BG_ISA_DECL(void, bg_k_binary_bwd_b_same, (const float *dy, const float *a, float *db, int64_t n, int mul, int store))
BG_ISA_DECL(void, bg_k_binary_colsum, (const float *dy, const float *a, int64_t rows, int64_t w, int mul, double *out))

typedef struct {
    int64_t rows, w, g; /* a is {rows, w}; row r pairs with b's row r / g */
    int bstep;          /* b's rows hold w elements (1) or one (0) */
} bin_geom;

static bool f32_dense(const bg_tensor *t) { return !t || (t->dtype == BG_F32 && bg_is_contiguous(t)); }

static bool geometry(const bg_node *n, bin_geom *q)
{
    const bg_tensor *a = n->in[0], *b = n->in[1];
    if (!f32_dense(a) || !f32_dense(b) || !f32_dense(n->out[0]) || a->ndim != b->ndim || a->ndim < 1 || a->ndim > 4)
        return false;
    int64_t sa[4], sb[4];
    const int lead = 4 - a->ndim;
    for (int d = 0; d < 4; d++) {
        sa[d] = d < lead ? 1 : a->shape[d - lead];
        sb[d] = d < lead ? 1 : b->shape[d - lead];
    }
    q->w = sa[3];
    q->rows = sa[0] * sa[1] * sa[2];
    if (q->w < 1 || q->rows < 1 || (sb[3] != sa[3] && sb[3] != 1)) return false;
    q->bstep = sb[3] == sa[3];
    int d = 0;
    while (d < 3 && sb[d] == sa[d]) d++; /* kept leading dims */
    q->g = 1;
    for (; d < 3; d++) {
        if (sb[d] != 1) return false; /* a kept dim after a broadcast one */
        q->g *= sa[d];
    }
    return true;
}

static bg_status binary_fwd(bg_ctx *ctx, bg_node *n, int mul)
{
    bin_geom q;
    if (!geometry(n, &q)) return BG_ERR_UNSUPPORTED;
    void (*k)(const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, int, int) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_binary_fwd);
    const float *a = n->in[0]->data, *b = n->in[1]->data;
    float *y = n->out[0]->data;
    const int chunks = bg_cpu_chunks(q.rows * q.w, BG_CPU_GRAIN);
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
    for (int i = 0; i < chunks; i++) {
        int64_t lo, hi;
        bg_cpu_chunk(q.rows, chunks, i, 1, &lo, &hi);
        k(a, b, y, lo, hi, q.w, q.g, q.bstep, mul);
    }
    return BG_OK;
}

/* db += the sums over each group of g rows of dy (add) or dy * a (mul),
 * also over the row when b's rows hold one element. */
static bg_status grad_b_groups(bg_ctx *ctx, const bg_node *n, const bin_geom *q, const float *dy, const float *a,
                               float *db, int mul)
{
    void (*colsum)(const float *, const float *, int64_t, int64_t, int, double *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_binary_colsum);
    const int64_t groups = q->rows / q->g, per = bg_row_chunk_rows(q->w);
    const int64_t cpg = (q->g + per - 1) / per, items = groups * cpg; /* fixed chunks of each group */
    double *part = malloc((size_t)items * (size_t)q->w * sizeof(double));
    if (!part)
        return bg_fail(ctx, BG_ERR_OOM, "%s: no memory for the partial sums of b's gradient", n->op->name);
    const int threads = bg_row_threads(items);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t it = 0; it < items; it++) {
        const int64_t grp = it / cpg, lo = grp * q->g + (it % cpg) * per, end = (grp + 1) * q->g;
        const int64_t hi = lo + per < end ? lo + per : end;
        colsum(dy + lo * q->w, a ? a + lo * q->w : NULL, hi - lo, q->w, mul, part + it * q->w);
    }
    for (int64_t grp = 0; grp < groups; grp++) {
        const double *p = part + grp * cpg * q->w;
        double one = 0;
        for (int64_t k = 0; k < q->w; k++) {
            double t = 0;
            for (int64_t ch = 0; ch < cpg; ch++) t += p[ch * q->w + k];
            if (q->bstep) db[grp * q->w + k] = (float)((double)db[grp * q->w + k] + t);
            else one += t;
        }
        if (!q->bstep) db[grp] = (float)((double)db[grp] + one);
    }
    free(part);
    return BG_OK;
}

static bg_status binary_bwd(bg_ctx *ctx, bg_node *n, int mul)
{
    const bg_tensor *a = n->in[0], *b = n->in[1], *dy = n->out[0]->grad;
    if (!dy) return BG_OK;
    bin_geom q;
    if (!geometry(n, &q) || !f32_dense(dy) || !f32_dense(a->grad) || !f32_dense(b->grad)) return BG_ERR_UNSUPPORTED;
    /* add's backward reads no values but dy (ops/binary.c tells the memory
     * planner so): a and b go in as NULL */
    const float *g = dy->data, *ap = mul ? a->data : NULL, *bp = mul ? b->data : NULL;
    /* a first, then b, as the reference: with a and b one tensor (x * x)
     * both terms land in its gradient one after the other */
    /* add stores into a fresh gradient (bg_node.grad_fresh; only add's row
     * says it can, and the graph never marks an input given twice) */
    const int store_a = !mul && (n->grad_fresh & 1), store_b = !mul && (n->grad_fresh & 2);
    if (a->grad) {
        void (*k)(const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, int, int, int) =
            BG_ISA_PICK(ctx->cpu_isa, bg_k_binary_bwd_a);
        float *da = a->grad->data;
        const int chunks = bg_cpu_chunks(q.rows * q.w, BG_CPU_GRAIN);
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
        for (int i = 0; i < chunks; i++) {
            int64_t lo, hi;
            bg_cpu_chunk(q.rows, chunks, i, 1, &lo, &hi);
            k(g, bp, da, lo, hi, q.w, q.g, q.bstep, mul, store_a);
        }
        if (store_a) n->grad_fresh &= (unsigned char)~1u;
    }
    if (!b->grad) return BG_OK;
    float *db = b->grad->data;
    if (q.g > 1 || !q.bstep) {
        if (store_b) { /* the group sums add into db: small, so zeroed here */
            memset(db, 0, (size_t)bg_numel(b) * sizeof *db);
            n->grad_fresh &= (unsigned char)~2u;
        }
        return grad_b_groups(ctx, n, &q, g, ap, db, mul);
    }
    void (*k)(const float *, const float *, float *, int64_t, int, int) = BG_ISA_PICK(ctx->cpu_isa, bg_k_binary_bwd_b_same);
    const int64_t cnt = q.rows * q.w;
    const int chunks = bg_cpu_chunks(cnt, BG_CPU_GRAIN);
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
    for (int i = 0; i < chunks; i++) {
        int64_t lo, hi;
        bg_cpu_chunk(cnt, chunks, i, 16, &lo, &hi);
        k(g + lo, ap ? ap + lo : NULL, db + lo, hi - lo, mul, store_b);
    }
    if (store_b) n->grad_fresh &= (unsigned char)~2u;
    return BG_OK;
}

bg_status bg_fast_add_fwd(bg_ctx *ctx, bg_node *n) { return binary_fwd(ctx, n, 0); }
bg_status bg_fast_add_bwd(bg_ctx *ctx, bg_node *n) { return binary_bwd(ctx, n, 0); }
bg_status bg_fast_mul_fwd(bg_ctx *ctx, bg_node *n) { return binary_fwd(ctx, n, 1); }
bg_status bg_fast_mul_bwd(bg_ctx *ctx, bg_node *n) { return binary_bwd(ctx, n, 1); }
