/* `budgie bench attn`: ResNeSt split attention (kernels/attention.h,
 * kernels/pool.h): the squeeze over the radix splits (GAP fused with
 * split_sum), the radix softmax of the gate, and the attention-weighted sum
 * with its backward, against the measured HBM bandwidth and PyTorch (the
 * same math on channels_last tensors) in the same run.
 * Minimal traffic (S = bytes of x {n, h, w, r*c}): squeeze S; weighted sum
 * S + S/r (read x, write y); backward dx 2S + S/r (dy; dx read+write);
 * backward da S + S/r (x, dy). The gate tensors are n*r*c: negligible. */
#include <math.h>
#include <string.h>
#include "bench.h"
#include "bench_gpu.h"
#ifdef BG_WITH_CUDA
#include "../kernels/attention.h"
#include "../kernels/pool.h"
#endif

typedef struct {
    int64_t n, h, w, c, r, card;
    const char *dtype;
    bool no_torch;
} attn_opts;

#ifdef BG_WITH_CUDA
typedef struct {
    const void *x, *a, *dy, *gin, *gdy;
    void *y, *dx, *da, *g, *gout, *gdx;
    int64_t n, p, r, c, card;
    int half;
} attn_arg;

static int run_gap(bg_ctx *ctx, void *arg)
{
    attn_arg *a = arg;
    bg_cuda_gap_fwd(a->x, a->g, a->n, a->p, a->r, a->c, a->half, ctx->stream);
    return 0;
}

static int run_rs_fwd(bg_ctx *ctx, void *arg)
{
    attn_arg *a = arg;
    bg_cuda_radix_softmax_fwd(a->gin, a->gout, a->n, a->r, a->card, a->c / a->card, a->half, ctx->stream);
    return 0;
}

static int run_rs_bwd(bg_ctx *ctx, void *arg)
{
    attn_arg *a = arg;
    bg_cuda_radix_softmax_bwd(a->gout, a->gdy, a->gdx, a->n, a->r, a->card, a->c / a->card, a->half, ctx->stream);
    return 0;
}

static int run_fwd(bg_ctx *ctx, void *arg)
{
    attn_arg *a = arg;
    bg_cuda_splat_fwd(a->x, a->a, a->y, a->n, a->p, a->r, a->c, a->half, ctx->stream);
    return 0;
}

static int run_bwd_dx(bg_ctx *ctx, void *arg)
{
    attn_arg *a = arg;
    bg_cuda_splat_bwd(a->x, a->a, a->dy, a->dx, NULL, a->n, a->p, a->r, a->c, a->half, ctx->stream);
    return 0;
}

static int run_bwd_da(bg_ctx *ctx, void *arg)
{
    attn_arg *a = arg;
    bg_cuda_splat_bwd(a->x, a->a, a->dy, NULL, a->da, a->n, a->p, a->r, a->c, a->half, ctx->stream);
    return 0;
}

static int bench_run(const attn_opts *o, FILE *out)
{
    bg_dtype dt = strcmp(o->dtype, "f32") ? BG_F16 : BG_F32;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CUDA, 9)) {
        fprintf(out, "skipped: %s\n", bg_errmsg(&ctx));
        return 0;
    }
    int rc = 1;
    double hbm = bg_bench_hbm_gbps(&ctx, out);
    int64_t rc_ = o->r * o->c;
    int64_t xs[4] = {o->n, o->h, o->w, rc_}, ys[4] = {o->n, o->h, o->w, o->c}, as[2] = {o->n, rc_}, gs[2] = {o->n, o->c};
    bg_tensor *t[11] = {
        bg_bench_tensor(&ctx, dt, 4, xs, "x", 0, 0),     bg_bench_tensor(&ctx, dt, 2, as, "a", 0, 1),
        bg_bench_tensor(&ctx, dt, 4, ys, "dy", 0, 0),    bg_bench_tensor(&ctx, dt, 2, as, "gate_in", 0, 0),
        bg_bench_tensor(&ctx, dt, 2, as, "gate_dy", 0, 0), bg_bench_tensor(&ctx, dt, 4, ys, "y", 0, 0),
        bg_bench_tensor(&ctx, dt, 4, xs, "dx", 0, 0),    bg_bench_tensor(&ctx, dt, 2, as, "da", 0, 0),
        bg_bench_tensor(&ctx, dt, 2, gs, "g", 0, 0),     bg_bench_tensor(&ctx, dt, 2, as, "gate_out", 0, 0),
        bg_bench_tensor(&ctx, dt, 2, as, "gate_dx", 0, 0),
    };
    for (int i = 0; i < 11; i++)
        if (!t[i]) {
            fprintf(out, "error: %s\n", bg_errmsg(&ctx));
            goto out;
        }
    if (o->c % o->card) {
        fprintf(out, "error: cardinality %lld does not divide c %lld\n", (long long)o->card, (long long)o->c);
        goto out;
    }
    attn_arg a = {t[0]->data, t[1]->data, t[2]->data, t[3]->data, t[4]->data, t[5]->data, t[6]->data, t[7]->data,
                  t[8]->data, t[9]->data, t[10]->data, o->n, o->h * o->w, o->r, o->c, o->card, dt == BG_F16};
    const double S = (double)bg_nbytes(t[0]), G = (double)bg_nbytes(t[3]);
    char targs[256];
    snprintf(targs, sizeof targs, "attn --n %lld --h %lld --w %lld --c %lld --r %lld --card %lld --dtype %s",
             (long long)o->n, (long long)o->h, (long long)o->w, (long long)o->c, (long long)o->r, (long long)o->card,
             a.half ? "f16" : "f32");
    const char *names[4] = {"attn_gap_splits", "attn_rsoftmax_fwd", "attn_wsum_fwd", "attn_wsum_bwd"};
    double tm[4] = {NAN, NAN, NAN, NAN};
    if (!o->no_torch) bg_bench_torch_ms(out, targs, names, tm, 4);
    fprintf(out, "split attention, x {%lld, %lld, %lld, %lld x %lld} %s, cardinality %lld\n", (long long)o->n,
            (long long)o->h, (long long)o->w, (long long)o->r, (long long)o->c, a.half ? "f16" : "f32",
            (long long)o->card);
    bg_bench_header(out, hbm);
    const double r = (double)o->r;
    bg_bench_row(out, "squeeze (gap + split sum)", bg_bench_time(&ctx, out, run_gap, &a, 3, 15, 10), S, hbm, tm[0]);
    bg_bench_row(out, "radix softmax fwd", bg_bench_time(&ctx, out, run_rs_fwd, &a, 3, 15, 10), 2 * G, hbm, tm[1]);
    bg_bench_row(out, "radix softmax bwd", bg_bench_time(&ctx, out, run_rs_bwd, &a, 3, 15, 10), 4 * G, hbm, NAN);
    bg_bench_row(out, "weighted sum fwd", bg_bench_time(&ctx, out, run_fwd, &a, 3, 15, 10), S + S / r, hbm, tm[2]);
    bg_bench_row(out, "weighted sum bwd dx", bg_bench_time(&ctx, out, run_bwd_dx, &a, 3, 15, 10), 2 * S + S / r, hbm,
                 NAN);
    bg_bench_row(out, "weighted sum bwd da", bg_bench_time(&ctx, out, run_bwd_da, &a, 3, 15, 10), S + S / r, hbm, NAN);
    fprintf(out, "(torch weighted-sum backward, both grads: %.4f ms)\n", tm[3]);
    rc = 0;
out:
    for (int i = 0; i < 11; i++) bg_tensor_free(&ctx, t[i]);
    bg_alloc_trim(&ctx, BG_CUDA);
    bg_ctx_free(&ctx);
    return rc;
}
#endif

BG_BENCH(attn, "split attention: squeeze, radix softmax, weighted sum vs HBM bandwidth and PyTorch (CUDA)")
{
    attn_opts o = {.n = 96, .h = 40, .w = 40, .c = 128, .r = 2, .card = 1, .dtype = "f16"};
    const bg_bench_opt opts[] = {
        {"n", 'i', &o.n, "batch (96)"},          {"h", 'i', &o.h, "height (40)"},
        {"w", 'i', &o.w, "width (40)"},          {"c", 'i', &o.c, "channels per split (128)"},
        {"r", 'i', &o.r, "radix (2)"},           {"card", 'i', &o.card, "cardinality (1)"},
        {"dtype", 's', &o.dtype, "f16 or f32 (f16)"},
        {"no-torch", 'b', &o.no_torch, "skip the PyTorch comparison"},
    };
    int r = bg_bench_parse(argc, argv, opts, 8, out, "usage: budgie bench attn [options]");
    if (r) return r == 1 ? 0 : 2;
    if (bg_bench_no_gpu(out)) return 0;
#ifdef BG_WITH_CUDA
    return bench_run(&o, out);
#else
    return 0;
#endif
}
