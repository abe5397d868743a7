/* `budgie bench opt`: the fused multi-tensor optimizer update over a
 * ResNet-18-like parameter set (62 tensors, 11.2 M elements by default),
 * f32 parameters or f16 parameters with f32 masters, against the measured
 * HBM bandwidth and torch.optim (fused=True where torch has it, else
 * foreach=True) in the same run. Two timings: the whole bg_optim_step (host
 * scalars, table upload, launch) and the kernel alone (what a captured step
 * replays). Minimal traffic per element: parameter read + write (f32 master:
 * 8 B; plus 2 B for the f16 copy's write), gradient read (4 or 2 B), every
 * state buffer read + write (8 B each). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "bench_gpu.h"
#include "../engine/optim.h"

typedef struct {
    const char *kind, *dtype;
    double scale;
    bool no_torch;
} opt_opts;

#ifdef BG_WITH_CUDA
/* A ResNet-18's parameter tensor sizes (conv weights, BN vectors, fc), for a
 * realistic mix of large and tiny tensors. */
static int resnet18_sizes(int64_t *out, double scale)
{
    int n = 0;
    int64_t cin = 64;
    out[n++] = (int64_t)(64 * 3 * 7 * 7 * scale);
    out[n++] = 64, out[n++] = 64;
    for (int stage = 0; stage < 4; stage++) {
        int64_t c = (int64_t)64 << stage;
        for (int blk = 0; blk < 2; blk++) {
            out[n++] = (int64_t)(c * cin * 9 * scale), out[n++] = c, out[n++] = c;
            out[n++] = (int64_t)(c * c * 9 * scale), out[n++] = c, out[n++] = c;
            if (blk == 0 && stage > 0) out[n++] = (int64_t)(c * cin * scale), out[n++] = c, out[n++] = c;
            cin = c;
        }
    }
    out[n++] = (int64_t)(1000 * 512 * scale), out[n++] = 1000;
    return n;
}

static int run_step(bg_ctx *ctx, void *arg) { return bg_optim_step(ctx, arg) != BG_OK; }
static int run_kernel(bg_ctx *ctx, void *arg) { return bg_optim_cuda_launch(ctx, arg, NULL, NULL) != BG_OK; }

static int bench_run(const opt_opts *o, FILE *out)
{
    bg_optim_kind kind;
    bg_ctx ctx;
    if (bg_optim_parse(NULL, o->kind, &kind)) {
        fprintf(stderr, "unknown optimizer '%s'\n", o->kind);
        return 2;
    }
    bg_dtype dt = strcmp(o->dtype, "f16") ? BG_F32 : BG_F16;
    if (bg_ctx_init(&ctx, BG_CUDA, 10)) {
        fprintf(out, "skipped: %s\n", bg_errmsg(&ctx));
        return 0;
    }
    int rc = 1;
    double hbm = bg_bench_hbm_gbps(&ctx, out);
    int64_t sizes[80];
    int n = resnet18_sizes(sizes, o->scale);
    bg_tensor *p[80] = {0};
    int64_t total = 0;
    bg_optim *opt = NULL;
    for (int i = 0; i < n; i++) {
        p[i] = bg_bench_tensor(&ctx, dt, 1, &sizes[i], "param", 0, 0);
        if (!p[i] || bg_tensor_ensure_grad(&ctx, p[i]) || bg_tensor_fill_normal(&ctx, p[i]->grad, 0, 1e-2)) {
            fprintf(out, "error: %s\n", bg_errmsg(&ctx));
            goto out;
        }
        p[i]->is_param = true;
        total += sizes[i];
    }
    bg_optim_config cfg = bg_optim_defaults(kind);
    if (kind == BG_OPT_SGD) cfg.lr = 0.01, cfg.momentum = 0.9, cfg.weight_decay = 5e-4;
    if (bg_optim_new(&ctx, &cfg, p, n, &opt)) {
        fprintf(out, "error: %s\n", bg_errmsg(&ctx));
        goto out;
    }
    bg_tensor *st[4 * 80];
    int nst = bg_optim_state(opt, st, 4 * 80) - 1; /* minus the host scalars */
    int bufs = 0;
    for (int k = 0; k < nst; k++) bufs += strstr(st[k]->name, ".master") == NULL;
    double per_elem = (dt == BG_F16 ? 8 + 2 + 2 : 8 + 4) + 8.0 * bufs / n;
    double bytes = per_elem * (double)total;
    char targs[128];
    snprintf(targs, sizeof targs, "opt --kind %s --dtype %s --scale %g", o->kind, dt == BG_F16 ? "f16" : "f32", o->scale);
    const char *names[1] = {"opt_step"};
    double tm = NAN;
    if (!o->no_torch) bg_bench_torch_ms(out, targs, names, &tm, 1);
    fprintf(out, "%s over %d tensors, %.2f M elements, %s parameters%s\n", o->kind, n, (double)total / 1e6,
            dt == BG_F16 ? "f16" : "f32", dt == BG_F16 ? " (f32 masters)" : "");
    bg_bench_header(out, hbm);
    bg_bench_row(out, "bg_optim_step (host + kernel)", bg_bench_time(&ctx, out, run_step, opt, 3, 15, 5), bytes, hbm, tm);
    if (bg_optim_cuda_prepare(&ctx, opt, NULL) == BG_OK)
        bg_bench_row(out, "update kernel alone", bg_bench_time(&ctx, out, run_kernel, opt, 3, 15, 10), bytes, hbm, NAN);
    rc = 0;
out:
    bg_optim_free(&ctx, opt);
    for (int i = 0; i < n; i++) bg_tensor_free(&ctx, p[i]);
    bg_alloc_trim(&ctx, BG_CUDA);
    bg_ctx_free(&ctx);
    return rc;
}
#endif

BG_BENCH(opt, "fused multi-tensor optimizer update vs HBM bandwidth and torch.optim (CUDA)")
{
    opt_opts o = {.kind = "adam", .dtype = "f32", .scale = 1.0};
    const bg_bench_opt opts[] = {
        {"kind", 's', &o.kind, "sgd, adam, adamw, adamax, adagrad, adadelta, asgd (adam)"},
        {"dtype", 's', &o.dtype, "f32, or f16 parameters with f32 masters (f32)"},
        {"scale", 'd', &o.scale, "multiply every weight tensor's size (1 = ResNet-18, 11.2 M)"},
        {"no-torch", 'b', &o.no_torch, "skip the PyTorch comparison"},
    };
    int r = bg_bench_parse(argc, argv, opts, 4, out, "usage: budgie bench opt [options]");
    if (r) return r == 1 ? 0 : 2;
    if (bg_bench_no_gpu(out)) return 0;
#ifdef BG_WITH_CUDA
    return bench_run(&o, out);
#else
    return 0;
#endif
}
