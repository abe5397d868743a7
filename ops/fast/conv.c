/* conv2d and conv2d_fused on the fast CPU backend (f32; ops/conv2d.c has the
 * layouts and the reference). Per group, with col the implicit im2col:
 *   forward   y[:, g] = act(col_g . W_g^T + b + res): one GEMM whose A panel
 *             is read straight from the NHWC input (kernels/cpu/gemm.h,
 *             BG_GS_IM2COL) and whose epilogue adds bias and residual and
 *             applies the activation on each tile as it finishes;
 *   dW        dW_g += dy[:, g]^T . col_g: the same implicit im2col as the
 *             GEMM's B, k = pixels (the driver splits k across threads);
 *   dx        pointwise: dx += dy . W, one GEMM. Stride 1: the convolution
 *             of dy with the flipped, transposed weights (B rows read
 *             through a row map, no copy), again an implicit
 *             GEMM reading dy in place. Otherwise dcol = dy . W_g
 *             for a block of pixels into a small per-thread scratch, then
 *             col2im adds it into dx. Threads take whole images when
 *             receptive fields overlap (kernel extent > stride), so no two
 *             threads add into one dx pixel, else any block of pixels.
 * Depthwise (groups = C = Cout) has no channel reduction, so it skips the
 * GEMM: a direct loop over the taps, vectorised along the channels.
 * The fused row's backward forms dz = dy * act'(y) from the saved output y,
 * adds dz into the residual's gradient and runs the conv backward on dz. */
#include <stdlib.h>
#include <string.h>
#include "../ops.h"
#include "fast.h"
#include "../../kernels/cpu/gemm.h"
#include "../../kernels/cpu/parallel.h"

BG_ISA_DECL(void, bg_k_dw_fwd,
            (const bg_im2col *cv, const float *x, const float *wt, const float *bias, const float *res, int act,
             float *y, int64_t p0, int64_t p1))
BG_ISA_DECL(void, bg_k_dw_bwd,
            (const bg_im2col *cv, const float *x, const float *dy, const float *wt, float *dx, float *dwt,
             int64_t p0, int64_t p1))
BG_ISA_DECL(void, bg_k_col2im, (const bg_im2col *cv, const float *dcol, int64_t p0, int64_t np, float *dx))
BG_ISA_DECL(void, bg_k_act_dz, (const float *y, const float *dy, float *dz, int64_t n, int act))
BG_ISA_DECL(void, bg_k_colsum, (const float *g, int64_t ld, int64_t n, int64_t r0, int64_t r1, double *acc))
BG_ISA_DECL(void, bg_k_add_into, (float *a, const float *b, int64_t n))

typedef struct {
    bg_im2col cv;            /* c0 = 0; set per group */
    int64_t Co, Cog, groups, rows;
    bool pointwise;          /* 1x1, stride 1, no padding: x is its own im2col */
    bool depthwise;          /* one input and one output channel per group */
} conv_plan;

static conv_plan conv_plan_of(const bg_node *n)
{
    const bg_conv2d_params *p = BG_PARAMS(n, const bg_conv2d_params);
    const bg_tensor *x = n->in[0], *w = n->in[1], *y = n->out[0];
    conv_plan c;
    bg_im2col *v = &c.cv;
    v->N = x->shape[0], v->H = x->shape[1], v->W = x->shape[2], v->C = x->shape[3];
    v->Ho = y->shape[1], v->Wo = y->shape[2];
    v->kh = w->shape[1], v->kw = w->shape[2], v->Cg = w->shape[3];
    v->sh = p->stride[0], v->sw = p->stride[1], v->ph = p->padding[0], v->pw = p->padding[1];
    v->dh = p->dilation[0], v->dw = p->dilation[1];
    v->c0 = 0;
    v->K = v->kh * v->kw * v->Cg;
    c.Co = w->shape[0], c.groups = p->groups, c.Cog = c.Co / c.groups;
    c.rows = v->N * v->Ho * v->Wo;
    c.pointwise = v->kh == 1 && v->kw == 1 && v->sh == 1 && v->sw == 1 && v->ph == 0 && v->pw == 0;
    c.depthwise = v->Cg == 1 && c.Cog == 1;
    return c;
}

/* Everything f32 and dense, else the reference takes the call. */
static bool covered(const bg_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && (n->in[i]->dtype != BG_F32 || !bg_is_contiguous(n->in[i]))) return false;
    return true;
}

bool bg_fast_conv2d_takes(const bg_ctx *ctx, const bg_node *n)
{
    return n->in[0]->device == BG_CPU && ctx->cpu_backend == BG_CPU_FAST && covered(n);
}

static int max_threads(double work)
{
#ifdef _OPENMP
    if (work >= BG_CPU_GRAIN && !omp_in_parallel()) return omp_get_max_threads();
#endif
    (void)work;
    return 1;
}

/* Depthwise weights {C, kh, kw, 1} as [tap][C], so the loops read them along C. */
static float *dw_weights(const conv_plan *c, const float *w)
{
    int64_t taps = c->cv.kh * c->cv.kw, C = c->cv.C;
    float *wt = malloc((size_t)(taps * C) * sizeof(float));
    if (wt)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t t = 0; t < taps; t++) wt[t * C + ch] = w[ch * taps + t];
    return wt;
}

static bg_status oom(bg_ctx *ctx, const char *what)
{
    return bg_fail(ctx, BG_ERR_OOM, "conv2d (fast): out of host memory for %s", what);
}

static bg_status conv_fwd(bg_ctx *ctx, bg_node *n, const float *res, int act)
{
    conv_plan c = conv_plan_of(n);
    const float *x = n->in[0]->data, *w = n->in[1]->data;
    const float *b = n->in[2] ? (const float *)n->in[2]->data : NULL;
    float *y = n->out[0]->data;
    if (c.rows == 0) return BG_OK;
    if (c.depthwise) {
        float *wt = dw_weights(&c, w);
        if (!wt) return oom(ctx, "depthwise weights");
        void (*k)(const bg_im2col *, const float *, const float *, const float *, const float *, int, float *,
                  int64_t, int64_t) = BG_ISA_PICK(ctx->cpu_isa, bg_k_dw_fwd);
        int nth = max_threads((double)c.rows * (double)c.cv.C * (double)(c.cv.kh * c.cv.kw));
        int64_t blk = 64; /* pixels per task */
        int64_t nb = (c.rows + blk - 1) / blk;
#pragma omp parallel for num_threads(nth) if (nth > 1) schedule(dynamic, 4)
        for (int64_t t = 0; t < nb; t++) {
            int64_t p0 = t * blk, p1 = p0 + blk < c.rows ? p0 + blk : c.rows;
            k(&c.cv, x, wt, b, res, act, y, p0, p1);
        }
        free(wt);
        return BG_OK;
    }
    for (int64_t g = 0; g < c.groups; g++) {
        bg_im2col cv = c.cv;
        cv.c0 = g * cv.Cg;
        bg_gemm_job j = {.m = c.rows, .n = c.Cog, .k = cv.K, .c = y + g * c.Cog, .ldc = c.Co};
        j.a = c.pointwise ? (bg_gsrc){.kind = BG_GS_ROWS, .p = x + cv.c0, .ld = cv.C}
                          : (bg_gsrc){.kind = BG_GS_IM2COL, .p = x, .cv = &cv};
        j.b = (bg_gsrc){.kind = BG_GS_COLS, .p = w + g * c.Cog * cv.K, .ld = cv.K};
        j.ep = (bg_gemm_ep){.overwrite = true, .bias = b ? b + g * c.Cog : NULL, .res = res ? res + g * c.Cog : NULL,
                            .ldr = c.Co, .act = act};
        bg_status s = bg_fast_gemm_job(ctx, &j);
        if (s) return s;
    }
    return BG_OK;
}

/* Pieces per thread for the reductions below, dealt out dynamically (a
 * thread that lost its core leaves its share to the others); each piece
 * has its own partial sums, added in piece order so the rounding does not
 * depend on the schedule. */
#define CONV_PIECES_PER_THREAD 4

/* db += column sums of dz: partials in double per piece of rows. */
static bg_status bias_grad(bg_ctx *ctx, const conv_plan *c, const float *dz, float *db)
{
    void (*k)(const float *, int64_t, int64_t, int64_t, int64_t, double *) = BG_ISA_PICK(ctx->cpu_isa, bg_k_colsum);
    int nth = max_threads((double)c->rows * (double)c->Co);
    int np = nth > 1 ? CONV_PIECES_PER_THREAD * nth : 1;
    double *acc = calloc((size_t)(np * c->Co), sizeof(double));
    if (!acc) return oom(ctx, "the bias gradient");
#pragma omp parallel for num_threads(nth) if (nth > 1) schedule(dynamic, 1)
    for (int t = 0; t < np; t++) {
        int64_t r0, r1;
        bg_cpu_chunk(c->rows, np, t, 1, &r0, &r1);
        k(dz, c->Co, c->Co, r0, r1, acc + t * c->Co);
    }
    for (int64_t j = 0; j < c->Co; j++) {
        double s = 0;
        for (int t = 0; t < np; t++) s += acc[t * c->Co + j];
        db[j] += (float)s;
    }
    free(acc);
    return BG_OK;
}

static bg_status dw_bwd(bg_ctx *ctx, const conv_plan *c, const float *x, const float *w, const float *dz, float *dx,
                        float *dw)
{
    int64_t taps = c->cv.kh * c->cv.kw, C = c->cv.C, plane = c->cv.Ho * c->cv.Wo;
    int nth = max_threads((double)c->rows * (double)C * (double)taps);
    int64_t np = nth > 1 ? CONV_PIECES_PER_THREAD * nth : 1;
    if (np > c->cv.N) np = c->cv.N;
    float *wt = dw_weights(c, w), *part = dw ? calloc((size_t)(np * taps * C), sizeof(float)) : NULL;
    if (!wt || (dw && !part)) {
        free(wt), free(part);
        return oom(ctx, "depthwise scratch");
    }
    void (*k)(const bg_im2col *, const float *, const float *, const float *, float *, float *, int64_t, int64_t) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_dw_bwd);
    /* Whole images per piece: dx pixels of one image are touched by one thread. */
#pragma omp parallel for num_threads(nth) if (nth > 1) schedule(dynamic, 1)
    for (int64_t t = 0; t < np; t++) {
        int64_t n0, n1;
        bg_cpu_chunk(c->cv.N, (int)np, (int)t, 1, &n0, &n1);
        k(&c->cv, x, dz, wt, dx, part ? part + t * taps * C : NULL, n0 * plane, n1 * plane);
    }
    if (dw)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t tp = 0; tp < taps; tp++) {
                float s = 0;
                for (int64_t t = 0; t < np; t++) s += part[(t * taps + tp) * C + ch];
                dw[ch * taps + tp] += s;
            }
    free(wt), free(part);
    return BG_OK;
}

/* dx += col2im(dz_g . W_g) through a per-thread scratch of `blk` pixels. */
static bg_status data_grad_col2im(bg_ctx *ctx, const conv_plan *c, const bg_im2col *cv, const float *dzg,
                                  const float *wg, float *dx)
{
    bg_gemm_geom geo;
    BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_geom)(&geo);
    void (*run)(const bg_gemm_job *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *) =
        BG_ISA_PICK(ctx->cpu_isa, bg_k_gemm_run);
    void (*col2im)(const bg_im2col *, const float *, int64_t, int64_t, float *) = BG_ISA_PICK(ctx->cpu_isa, bg_k_col2im);
    bg_gemm_job j = {.m = c->rows, .n = cv->K, .k = c->Cog, .ldc = cv->K};
    j.a = (bg_gsrc){.kind = BG_GS_ROWS, .p = dzg, .ld = c->Co};
    j.b = (bg_gsrc){.kind = BG_GS_ROWS, .p = wg, .ld = cv->K};
    j.ep.overwrite = true;
    /* Pixels per GEMM: about 1 MiB of dcol, whole row tiles. */
    int64_t blk = ((int64_t)1 << 18) / cv->K;
    blk = blk < geo.mr ? geo.mr : blk > geo.mc ? geo.mc : blk / geo.mr * geo.mr;
    const bool overlap = (cv->kh - 1) * cv->dh + 1 > cv->sh || (cv->kw - 1) * cv->dw + 1 > cv->sw;
    int nth = max_threads((double)c->rows * (double)cv->K * (double)c->Cog);
    /* Pixels per task: whole images where receptive fields overlap, as many
     * as fill a block while leaving two tasks per thread (4 x 4 planes one
     * by one made 16-row GEMMs, each reading all the packed weights). */
    const int64_t plane = cv->Ho * cv->Wo, half = (cv->N + 2 * nth - 1) / (2 * nth);
    int64_t imgs = blk / plane < half ? blk / plane : half;
    if (imgs < 1) imgs = 1;
    const int64_t unit = overlap ? imgs * plane : blk;
    const int64_t ntask = (c->rows + unit - 1) / unit;
    if (nth > ntask) nth = (int)ntask;
    int64_t wf = bg_gemm_work_floats(&geo, &j), sf = bg_gemm_round(blk * cv->K, 16);
    float *bp = malloc((size_t)bg_gemm_bpack_floats(&geo, &j) * sizeof(float));
    float *work = malloc((size_t)((wf + sf) * nth) * sizeof(float));
    if (!bp || !work) {
        free(bp), free(work);
        return oom(ctx, "the data gradient");
    }
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        bg_gemm_pack_b_all(ctx, &j, bp); /* together, then one barrier */
        float *wk = work + (size_t)bg_cpu_thread_id() * (size_t)(wf + sf), *dcol = wk + wf;
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t t = 0; t < ntask; t++) {
            int64_t a = t * unit, e = a + unit < c->rows ? a + unit : c->rows;
            for (int64_t r0 = a; r0 < e; r0 += blk) {
                int64_t nr = e - r0 < blk ? e - r0 : blk;
                bg_gemm_job sj = j;
                sj.bpack = bp;
                sj.m = nr;
                sj.a.p = dzg + r0 * c->Co;
                sj.c = dcol;
                run(&sj, 0, nr, 0, sj.n, 0, sj.k, wk);
                col2im(cv, dcol, r0, nr, dx);
            }
        }
    }
    free(bp), free(work);
    return BG_OK;
}

/* Stride 1: dx += the convolution of dz with the weights flipped in space
 * and transposed in channels, itself an implicit GEMM whose A rows are read
 * in place from dz and whose B rows are the weights' rows in flipped order
 * (no copy, no scratch, no col2im, threads over dx rows without conflicts):
 *   dx[iy, ix, c] += sum over (ky', kx', co) of dz[iy - ph' + ky' dh, ix - pw' + kx' dw, co]
 *                    * W[co, kh-1-ky', kw-1-kx', c],   ph' = dh (kh - 1) - ph
 * (a negative ph' is fine: the im2col view only asks whether a tap is inside). */
static bg_status data_grad_conv(bg_ctx *ctx, const conv_plan *c, const bg_im2col *cv, const float *dz,
                                const float *wg, float *dx)
{
    const int64_t taps = cv->kh * cv->kw, Cog = c->Cog, Cg = cv->Cg;
    bg_im2col tv = {.N = cv->N, .H = cv->Ho, .W = cv->Wo, .C = c->Co, .Ho = cv->H, .Wo = cv->W,
                    .kh = cv->kh, .kw = cv->kw, .sh = 1, .sw = 1,
                    .ph = cv->dh * (cv->kh - 1) - cv->ph, .pw = cv->dw * (cv->kw - 1) - cv->pw,
                    .dh = cv->dh, .dw = cv->dw, .Cg = Cog, .c0 = cv->c0 / Cg * Cog, .K = taps * Cog};
    bg_gemm_job j = {.m = cv->N * cv->H * cv->W, .n = Cg, .k = tv.K, .c = dx + cv->c0, .ldc = cv->C};
    j.a = (bg_gsrc){.kind = BG_GS_IM2COL, .p = dz, .cv = &tv};
    j.b = (bg_gsrc){.kind = BG_GS_ROWS, .p = wg, .ld = Cg, .flip_taps = taps, .flip_cog = Cog};
    return bg_fast_gemm_job(ctx, &j);
}

/* dz: the gradient at the conv's own output (the fused row passes its dz). */
static bg_status conv_bwd(bg_ctx *ctx, bg_node *n, const float *dz)
{
    conv_plan c = conv_plan_of(n);
    const float *x = n->in[0]->data, *w = n->in[1]->data;
    float *dx = n->in[0]->grad ? (float *)n->in[0]->grad->data : NULL;
    float *dw = n->in[1]->grad ? (float *)n->in[1]->grad->data : NULL;
    float *db = n->in[2] && n->in[2]->grad ? (float *)n->in[2]->grad->data : NULL;
    if (c.rows == 0) return BG_OK;
    bg_status s;
    if (db && (s = bias_grad(ctx, &c, dz, db))) return s;
    if (!dx && !dw) return BG_OK;
    if (c.depthwise) return dw_bwd(ctx, &c, x, w, dz, dx, dw);
    for (int64_t g = 0; g < c.groups; g++) {
        bg_im2col cv = c.cv;
        cv.c0 = g * cv.Cg;
        const float *dzg = dz + g * c.Cog, *wg = w + g * c.Cog * cv.K;
        if (dw) {
            bg_gemm_job j = {.m = c.Cog, .n = cv.K, .k = c.rows, .c = dw + g * c.Cog * cv.K, .ldc = cv.K};
            j.a = (bg_gsrc){.kind = BG_GS_COLS, .p = dzg, .ld = c.Co};
            j.b = c.pointwise ? (bg_gsrc){.kind = BG_GS_ROWS, .p = x + cv.c0, .ld = cv.C}
                              : (bg_gsrc){.kind = BG_GS_IM2COL, .p = x, .cv = &cv};
            if ((s = bg_fast_gemm_job(ctx, &j))) return s;
        }
        if (dx) {
            if (c.pointwise) {
                bg_gemm_job j = {.m = c.rows, .n = cv.Cg, .k = c.Cog, .c = dx + cv.c0, .ldc = cv.C};
                j.a = (bg_gsrc){.kind = BG_GS_ROWS, .p = dzg, .ld = c.Co};
                j.b = (bg_gsrc){.kind = BG_GS_ROWS, .p = wg, .ld = cv.K};
                s = bg_fast_gemm_job(ctx, &j);
            } else if (cv.sh == 1 && cv.sw == 1) {
                s = data_grad_conv(ctx, &c, &cv, dz, wg, dx);
            } else {
                s = data_grad_col2im(ctx, &c, &cv, dzg, wg, dx);
            }
            if (s) return s;
        }
    }
    return BG_OK;
}

bg_status bg_fast_conv2d_fwd(bg_ctx *ctx, bg_node *n)
{
    if (!covered(n)) return BG_ERR_UNSUPPORTED;
    return conv_fwd(ctx, n, NULL, BG_GACT_NONE);
}

bg_status bg_fast_conv2d_bwd(bg_ctx *ctx, bg_node *n)
{
    if (!covered(n)) return BG_ERR_UNSUPPORTED;
    if (!n->out[0]->grad) return BG_OK;
    return conv_bwd(ctx, n, n->out[0]->grad->data);
}

bg_status bg_fast_conv2d_fused_fwd(bg_ctx *ctx, bg_node *n)
{
    if (!covered(n)) return BG_ERR_UNSUPPORTED;
    const bg_tensor *res = n->in[3];
    return conv_fwd(ctx, n, res ? (const float *)res->data : NULL, BG_PARAMS(n, const bg_conv2d_fused_params)->act);
}

bg_status bg_fast_conv2d_fused_bwd(bg_ctx *ctx, bg_node *n)
{
    if (!covered(n)) return BG_ERR_UNSUPPORTED;
    const bg_tensor *y = n->out[0];
    if (!y->grad) return BG_OK;
    const int act = BG_PARAMS(n, const bg_conv2d_fused_params)->act;
    const int64_t cnt = bg_numel(y);
    const float *dz = y->grad->data;
    bg_tensor *dzt = NULL;
    const int chunks = bg_cpu_chunks(cnt, BG_CPU_GRAIN);
    if (act != BG_GACT_NONE) {
        if (!(dzt = bg_tensor_new(ctx, BG_CPU, BG_F32, y->ndim, y->shape, "conv2d_fused.dz"))) return ctx->status;
        void (*k)(const float *, const float *, float *, int64_t, int) = BG_ISA_PICK(ctx->cpu_isa, bg_k_act_dz);
        const float *yp = y->data, *dyp = y->grad->data;
        float *dzp = dzt->data;
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
        for (int t = 0; t < chunks; t++) {
            int64_t lo, hi;
            bg_cpu_chunk(cnt, chunks, t, 16, &lo, &hi);
            k(yp + lo, dyp + lo, dzp + lo, hi - lo, act);
        }
        dz = dzp;
    }
    const bg_tensor *res = n->in[3];
    if (res && res->grad) {
        void (*k)(float *, const float *, int64_t) = BG_ISA_PICK(ctx->cpu_isa, bg_k_add_into);
        float *dres = res->grad->data;
#pragma omp parallel for num_threads(chunks) if (chunks > 1)
        for (int t = 0; t < chunks; t++) {
            int64_t lo, hi;
            bg_cpu_chunk(cnt, chunks, t, 16, &lo, &hi);
            k(dres + lo, dz + lo, hi - lo);
        }
    }
    bg_status s = conv_bwd(ctx, n, dz);
    bg_tensor_free(ctx, dzt);
    return s;
}
