/* `budgie bench bn`: batchnorm forward (training, eval, fused ReLU) and
 * backward on NHWC activations, against the measured HBM bandwidth and
 * PyTorch's F.batch_norm on the same shape (channels_last) in the same run.
 * Minimal traffic per pass (S = bytes of x): forward 2S (read x, write y;
 * the kernels read x twice, once for the statistics), backward 4S (read x
 * and dy, read and write dx; +S for the ReLU mask y). */
#include <math.h>
#include <string.h>
#include "bench.h"
#include "bench_gpu.h"
#ifdef BG_WITH_CUDA
#include "../kernels/batchnorm.h"
#endif

typedef struct {
    int64_t n, h, w, c;
    const char *dtype;
    bool no_torch;
} bn_opts;

#ifdef BG_WITH_CUDA
typedef struct {
    bg_bn_fwd_args f;
    bg_bn_bwd_args b;
} bn_arg;

static int run_fwd(bg_ctx *ctx, void *arg)
{
    bg_cuda_bn_fwd(&((bn_arg *)arg)->f, ctx->stream);
    return 0;
}

static int run_bwd(bg_ctx *ctx, void *arg)
{
    bg_cuda_bn_bwd(&((bn_arg *)arg)->b, ctx->stream);
    return 0;
}

static int bench_run(const bn_opts *o, FILE *out)
{
    bg_dtype dt = strcmp(o->dtype, "f32") ? BG_F16 : BG_F32;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CUDA, 7)) {
        fprintf(out, "skipped: %s\n", bg_errmsg(&ctx));
        return 0;
    }
    int rc = 1;
    double hbm = bg_bench_hbm_gbps(&ctx, out);
    int64_t xs[4] = {o->n, o->h, o->w, o->c}, c = o->c, m = o->n * o->h * o->w;
    int64_t wsn = bg_bn_workspace_floats(m, c);
    bg_tensor *x = bg_bench_tensor(&ctx, dt, 4, xs, "x", 0, 0), *dy = bg_bench_tensor(&ctx, dt, 4, xs, "dy", 0, 0);
    bg_tensor *y = bg_bench_tensor(&ctx, dt, 4, xs, "y", 0, 0), *dx = bg_bench_tensor(&ctx, dt, 4, xs, "dx", 0, 0);
    bg_tensor *g = bg_bench_tensor(&ctx, BG_F32, 1, &c, "gamma", 0.5, 1.5), *b = bg_bench_tensor(&ctx, BG_F32, 1, &c, "beta", 0, 0);
    bg_tensor *rm = bg_bench_tensor(&ctx, BG_F32, 1, &c, "rm", 0, 0), *rv = bg_bench_tensor(&ctx, BG_F32, 1, &c, "rv", 0.5, 1.5);
    bg_tensor *dg = bg_bench_tensor(&ctx, BG_F32, 1, &c, "dg", 0, 0), *db = bg_bench_tensor(&ctx, BG_F32, 1, &c, "db", 0, 0);
    bg_tensor *mean = bg_tensor_new(&ctx, BG_CUDA, BG_F32, 1, &c, "mean"), *inv = bg_tensor_new(&ctx, BG_CUDA, BG_F32, 1, &c, "inv");
    bg_tensor *ws = bg_tensor_new(&ctx, BG_CUDA, BG_F32, 1, &wsn, "ws");
    if (!x || !dy || !y || !dx || !g || !b || !rm || !rv || !dg || !db || !mean || !inv || !ws) {
        fprintf(out, "error: %s\n", bg_errmsg(&ctx));
        goto out;
    }
    int half = dt == BG_F16;
    bn_arg a = {
        .f = {.x = x->data, .y = y->data, .gamma = g->data, .beta = b->data, .running_mean = rm->data,
              .running_var = rv->data, .mean = mean->data, .invstd = inv->data, .work = ws->data, .m = m, .c = c,
              .x_half = half, .p_half = 0, .train = 1, .relu = 0, .momentum = 0.1f, .eps = 1e-5f},
        .b = {.x = x->data, .y = y->data, .dy = dy->data, .dx = dx->data, .gamma = g->data, .dgamma = dg->data,
              .dbeta = db->data, .mean = mean->data, .invstd = inv->data, .work = ws->data, .m = m, .c = c,
              .x_half = half, .p_half = 0, .train = 1, .relu = 0},
    };
    const double S = (double)bg_nbytes(x);
    char targs[256];
    snprintf(targs, sizeof targs, "bn --n %lld --h %lld --w %lld --c %lld --dtype %s", (long long)o->n, (long long)o->h,
             (long long)o->w, (long long)o->c, half ? "f16" : "f32");
    const char *names[5] = {"bn_fwd_train", "bn_bwd_train", "bn_relu_fwd_train", "bn_relu_bwd_train", "bn_fwd_eval"};
    double t[5] = {NAN, NAN, NAN, NAN, NAN};
    if (!o->no_torch) bg_bench_torch_ms(out, targs, names, t, 5);
    fprintf(out, "batchnorm2d, x {%lld, %lld, %lld, %lld} %s, f32 parameters\n", (long long)o->n, (long long)o->h,
            (long long)o->w, (long long)o->c, half ? "f16" : "f32");
    bg_bench_header(out, hbm);
    bg_bench_row(out, "forward (train)", bg_bench_time(&ctx, out, run_fwd, &a, 3, 15, 10), 2 * S, hbm, t[0]);
    bg_bench_row(out, "backward (train)", bg_bench_time(&ctx, out, run_bwd, &a, 3, 15, 10), 4 * S, hbm, t[1]);
    a.f.relu = a.b.relu = 1;
    bg_bench_row(out, "forward + relu (train)", bg_bench_time(&ctx, out, run_fwd, &a, 3, 15, 10), 2 * S, hbm, t[2]);
    bg_bench_row(out, "backward + relu (train)", bg_bench_time(&ctx, out, run_bwd, &a, 3, 15, 10), 5 * S, hbm, t[3]);
    a.f.relu = 0, a.f.train = 0;
    bg_bench_row(out, "forward (eval)", bg_bench_time(&ctx, out, run_fwd, &a, 3, 15, 10), 2 * S, hbm, t[4]);
    rc = 0;
out:;
    bg_tensor *all[] = {x, dy, y, dx, g, b, rm, rv, dg, db, mean, inv, ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bg_tensor_free(&ctx, all[i]);
    bg_alloc_trim(&ctx, BG_CUDA);
    bg_ctx_free(&ctx);
    return rc;
}
#endif

BG_BENCH(bn, "batchnorm forward/backward (+ fused ReLU) vs HBM bandwidth and PyTorch (CUDA)")
{
    bn_opts o = {.n = 256, .h = 32, .w = 32, .c = 128, .dtype = "f16"};
    const bg_bench_opt opts[] = {
        {"n", 'i', &o.n, "batch (256)"},          {"h", 'i', &o.h, "height (32)"},
        {"w", 'i', &o.w, "width (32)"},           {"c", 'i', &o.c, "channels (128)"},
        {"dtype", 's', &o.dtype, "f16 or f32 activations (f16)"},
        {"no-torch", 'b', &o.no_torch, "skip the PyTorch comparison"},
    };
    int r = bg_bench_parse(argc, argv, opts, 6, out, "usage: budgie bench bn [options]");
    if (r) return r == 1 ? 0 : 2;
    if (bg_bench_no_gpu(out)) return 0;
#ifdef BG_WITH_CUDA
    return bench_run(&o, out);
#else
    return 0;
#endif
}
