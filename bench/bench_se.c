/* `budgie bench se`: the squeeze-excitation kernels (kernels/attention.h):
 * the squeeze (global average pool), the fused excite y = relu(x*s + res),
 * and the two backward passes, against the measured HBM bandwidth and the
 * same computation in PyTorch (channels_last) in the same run.
 * Minimal traffic (S = bytes of x): squeeze S, excite 3S (x, res -> y),
 * backward reduce 5S (x, y, dy; dres read+write), backward dx 4S (dy, y;
 * dx read+write). The whole backward could move 7S in one pass if ds were
 * known before dx: it is not (dx needs the FC chain's gradient of the
 * squeeze), hence the two passes. */
#include <math.h>
#include <string.h>
#include "bench.h"
#include "bench_gpu.h"
#ifdef BG_WITH_CUDA
#include "../kernels/attention.h"
#include "../kernels/pool.h"
#endif

typedef struct {
    int64_t n, h, w, c;
    const char *dtype;
    bool no_torch;
} se_opts;

#ifdef BG_WITH_CUDA
typedef struct {
    const void *x, *s, *res, *dy, *dgap;
    void *y, *g, *ds, *dres, *dx;
    int64_t n, p, c;
    int half;
} se_arg;

static int run_gap(bg_ctx *ctx, void *arg)
{
    se_arg *a = arg;
    bg_cuda_gap_fwd(a->x, a->g, a->n, a->p, 1, a->c, a->half, ctx->stream);
    return 0;
}

static int run_fwd(bg_ctx *ctx, void *arg)
{
    se_arg *a = arg;
    bg_cuda_se_scale_fwd(a->x, a->s, a->res, a->y, a->n, a->p, a->c, 1, a->half, ctx->stream);
    return 0;
}

static int run_reduce(bg_ctx *ctx, void *arg)
{
    se_arg *a = arg;
    bg_cuda_se_scale_bwd_reduce(a->x, a->y, a->dy, a->ds, a->dres, a->n, a->p, a->c, 1, a->half, ctx->stream);
    return 0;
}

static int run_dx(bg_ctx *ctx, void *arg)
{
    se_arg *a = arg;
    bg_cuda_se_scale_bwd_dx(a->dy, a->y, a->s, a->dgap, a->dx, a->n, a->p, a->c, 1, a->half, ctx->stream);
    return 0;
}

static int run_bwd(bg_ctx *ctx, void *arg) { return run_reduce(ctx, arg) || run_dx(ctx, arg); }

static int bench_run(const se_opts *o, FILE *out)
{
    bg_dtype dt = strcmp(o->dtype, "f32") ? BG_F16 : BG_F32;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CUDA, 8)) {
        fprintf(out, "skipped: %s\n", bg_errmsg(&ctx));
        return 0;
    }
    int rc = 1;
    double hbm = bg_bench_hbm_gbps(&ctx, out);
    int64_t xs[4] = {o->n, o->h, o->w, o->c}, vs[2] = {o->n, o->c};
    bg_tensor *t[10] = {
        bg_bench_tensor(&ctx, dt, 4, xs, "x", 0, 0),        bg_bench_tensor(&ctx, dt, 2, vs, "s", 0, 1),
        bg_bench_tensor(&ctx, dt, 4, xs, "res", 0, 0),      bg_bench_tensor(&ctx, dt, 4, xs, "dy", 0, 0),
        bg_bench_tensor(&ctx, dt, 2, vs, "dgap", 0, 0),     bg_bench_tensor(&ctx, dt, 4, xs, "y", 0, 0),
        bg_bench_tensor(&ctx, dt, 2, vs, "g", 0, 0),        bg_bench_tensor(&ctx, dt, 2, vs, "ds", 0, 0),
        bg_bench_tensor(&ctx, dt, 4, xs, "dres", 0, 0),     bg_bench_tensor(&ctx, dt, 4, xs, "dx", 0, 0),
    };
    for (int i = 0; i < 10; i++)
        if (!t[i]) {
            fprintf(out, "error: %s\n", bg_errmsg(&ctx));
            goto out;
        }
    se_arg a = {t[0]->data, t[1]->data, t[2]->data, t[3]->data, t[4]->data, t[5]->data, t[6]->data, t[7]->data,
                t[8]->data, t[9]->data, o->n, o->h * o->w, o->c, dt == BG_F16};
    const double S = (double)bg_nbytes(t[0]);
    char targs[256];
    snprintf(targs, sizeof targs, "se --n %lld --h %lld --w %lld --c %lld --dtype %s", (long long)o->n, (long long)o->h,
             (long long)o->w, (long long)o->c, a.half ? "f16" : "f32");
    const char *names[3] = {"se_gap", "se_scale_fwd", "se_scale_bwd"};
    double tm[3] = {NAN, NAN, NAN};
    if (!o->no_torch) bg_bench_torch_ms(out, targs, names, tm, 3);
    fprintf(out, "squeeze-excitation, x {%lld, %lld, %lld, %lld} %s\n", (long long)o->n, (long long)o->h,
            (long long)o->w, (long long)o->c, a.half ? "f16" : "f32");
    bg_bench_header(out, hbm);
    bg_bench_row(out, "squeeze (gap)", bg_bench_time(&ctx, out, run_gap, &a, 3, 15, 10), S, hbm, tm[0]);
    bg_bench_row(out, "excite relu(x*s+res)", bg_bench_time(&ctx, out, run_fwd, &a, 3, 15, 10), 3 * S, hbm, tm[1]);
    bg_bench_row(out, "backward: ds, dres", bg_bench_time(&ctx, out, run_reduce, &a, 3, 15, 10), 5 * S, hbm, NAN);
    bg_bench_row(out, "backward: dx (+ gap grad)", bg_bench_time(&ctx, out, run_dx, &a, 3, 15, 10), 4 * S, hbm, NAN);
    bg_bench_row(out, "backward total (min 7S)", bg_bench_time(&ctx, out, run_bwd, &a, 3, 15, 10), 7 * S, hbm, tm[2]);
    rc = 0;
out:
    for (int i = 0; i < 10; i++) bg_tensor_free(&ctx, t[i]);
    bg_alloc_trim(&ctx, BG_CUDA);
    bg_ctx_free(&ctx);
    return rc;
}
#endif

BG_BENCH(se, "squeeze-excitation: squeeze, fused excite, backward vs HBM bandwidth and PyTorch (CUDA)")
{
    se_opts o = {.n = 256, .h = 16, .w = 16, .c = 256, .dtype = "f16"};
    const bg_bench_opt opts[] = {
        {"n", 'i', &o.n, "batch (256)"},          {"h", 'i', &o.h, "height (16)"},
        {"w", 'i', &o.w, "width (16)"},           {"c", 'i', &o.c, "channels (256)"},
        {"dtype", 's', &o.dtype, "f16 or f32 (f16)"},
        {"no-torch", 'b', &o.no_torch, "skip the PyTorch comparison"},
    };
    int r = bg_bench_parse(argc, argv, opts, 6, out, "usage: budgie bench se [options]");
    if (r) return r == 1 ? 0 : 2;
    if (bg_bench_no_gpu(out)) return 0;
#ifdef BG_WITH_CUDA
    return bench_run(&o, out);
#else
    return 0;
#endif
}
