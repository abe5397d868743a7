/* `budgie bench conv`: every convolution layer shape of SENet-18 (width 1.0
 * and 0.67, batch 512, 32x32; seed-spec 2.1) and ResNeSt-50d_1s4x24d (batch
 * 96, 160x160; seed-spec 3), forward, backward-data and backward-weight:
 * time per call, TFLOP/s, the share of the H100's dense peak (FP16 989,
 * FP32 67), and the same layers through PyTorch (channels_last, AMP, cuDNN)
 * measured in the same run via bench/torch_conv_peer.py when python3 + torch
 * (with CUDA) are importable. Each net ends with a total weighted by how often
 * its shapes occur, against the target: fwd + both bwd <= 1.43x PyTorch.
 * Without a device it prints "skipped: no CUDA device". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "../tools/options.h"
#include "../engine/tensor.h"
#ifdef BG_WITH_CUDA
#include "../kernels/conv/conv.h"
#include "../kernels/gemm/gemm.h"
#include "../kernels/rtc/rtc.h"
#endif

#define PEAK_F16 989.0
#define PEAK_F32 67.0
#define TARGET_RATIO 1.43

typedef struct {
    const char *name;
    int c, co, hw, k, s, groups, count; /* square input hw, kernel k x k, stride s, padding k/2 */
    int first;                          /* the input layer: no data gradient in training */
} layer;

#define MAX_LAYERS 48

#ifdef BG_WITH_CUDA
/* SENet-18 (pre-activation SE-ResNet-18) at channel widths w0..w3, 32x32 input. */
static int senet_layers(layer *L, const int w[4])
{
    int n = 0, se[4];
    for (int i = 0; i < 4; i++) se[i] = w[i] / 16;
    L[n++] = (layer){"stem 3x3", 3, w[0], 32, 3, 1, 1, 1, 1};
    L[n++] = (layer){"s1 3x3", w[0], w[0], 32, 3, 1, 1, 4, 0};
    L[n++] = (layer){"s1 se fc1", w[0], se[0], 1, 1, 1, 1, 2, 0};
    L[n++] = (layer){"s1 se fc2", se[0], w[0], 1, 1, 1, 1, 2, 0};
    for (int st = 1; st < 4; st++) {
        int hw_in = 32 >> (st - 1), hw = hw_in / 2;
        static const char *nm[3][5] = {{"s2 3x3 s2", "s2 3x3", "s2 short 1x1 s2", "s2 se fc1", "s2 se fc2"},
                                       {"s3 3x3 s2", "s3 3x3", "s3 short 1x1 s2", "s3 se fc1", "s3 se fc2"},
                                       {"s4 3x3 s2", "s4 3x3", "s4 short 1x1 s2", "s4 se fc1", "s4 se fc2"}};
        L[n++] = (layer){nm[st - 1][0], w[st - 1], w[st], hw_in, 3, 2, 1, 1, 0};
        L[n++] = (layer){nm[st - 1][1], w[st], w[st], hw, 3, 1, 1, 3, 0};
        L[n++] = (layer){nm[st - 1][2], w[st - 1], w[st], hw_in, 1, 2, 1, 1, 0};
        L[n++] = (layer){nm[st - 1][3], w[st], se[st], 1, 1, 1, 1, 2, 0};
        L[n++] = (layer){nm[st - 1][4], se[st], w[st], 1, 1, 1, 1, 2, 0};
    }
    return n;
}

/* ResNeSt-50d_1s4x24d at 160x160: deep stem, 4 stages of bottlenecks with a
 * grouped (cardinality 4, radix 1) 3x3 and SplitAttn fc1/fc2, avg-down shortcuts. */
static int resnest_layers(layer *L)
{
    int n = 0;
    L[n++] = (layer){"stem1 3x3 s2", 3, 32, 160, 3, 2, 1, 1, 1};
    L[n++] = (layer){"stem2 3x3", 32, 32, 80, 3, 1, 1, 1, 0};
    L[n++] = (layer){"stem3 3x3", 32, 64, 80, 3, 1, 1, 1, 0};
    static const struct { int planes, gw, attn, blocks, hw_in, hw, cin; } st[4] = {
        {64, 96, 32, 3, 40, 40, 64}, {128, 192, 48, 4, 40, 20, 256}, {256, 384, 96, 6, 20, 10, 512}, {512, 768, 192, 3, 10, 5, 1024}};
    static const char *nm[4][8] = {
        {"s1 conv1 first", "s1 conv1", "s1 conv2 g4", "s1 fc1 g4", "s1 fc2 g4", "s1 conv3", "s1 shortcut", ""},
        {"s2 conv1 first", "s2 conv1", "s2 conv2 g4", "s2 fc1 g4", "s2 fc2 g4", "s2 conv3", "s2 shortcut", ""},
        {"s3 conv1 first", "s3 conv1", "s3 conv2 g4", "s3 fc1 g4", "s3 fc2 g4", "s3 conv3", "s3 shortcut", ""},
        {"s4 conv1 first", "s4 conv1", "s4 conv2 g4", "s4 fc1 g4", "s4 fc2 g4", "s4 conv3", "s4 shortcut", ""}};
    for (int i = 0; i < 4; i++) {
        const int out = st[i].planes * 4, b = st[i].blocks;
        L[n++] = (layer){nm[i][0], st[i].cin, st[i].gw, st[i].hw_in, 1, 1, 1, 1, 0}; /* then avd pool (s2+) */
        L[n++] = (layer){nm[i][1], out, st[i].gw, st[i].hw, 1, 1, 1, b - 1, 0};
        L[n++] = (layer){nm[i][2], st[i].gw, st[i].gw, st[i].hw, 3, 1, 4, b, 0};
        L[n++] = (layer){nm[i][3], st[i].gw, st[i].attn, 1, 1, 1, 4, b, 0};
        L[n++] = (layer){nm[i][4], st[i].attn, st[i].gw, 1, 1, 1, 4, b, 0};
        L[n++] = (layer){nm[i][5], st[i].gw, out, st[i].hw, 1, 1, 1, b, 0};
        L[n++] = (layer){nm[i][6], st[i].cin, out, st[i].hw, 1, 1, 1, 1, 0}; /* after the avg-down pool */
    }
    return n;
}

typedef struct {
    const bg_conv_shape *s;
    bg_conv_pass pass;
    int half;
    const void *a, *b;
    void *out;
    bg_conv_opts *o;
    void *stream;
    char err[300];
} ccall;

static int call_conv(void *arg)
{
    ccall *c = arg;
    if (c->pass == BG_CONV_FWD) return bg_conv_fwd_cuda(c->s, c->half, c->a, c->b, c->out, NULL, c->o, c->stream, c->err, sizeof c->err);
    if (c->pass == BG_CONV_DGRAD)
        return bg_conv_dgrad_cuda(c->s, c->half, c->a, c->b, c->out, 0, c->o, c->stream, c->err, sizeof c->err);
    return bg_conv_wgrad_cuda(c->s, c->half, c->a, c->b, c->out, 0, c->o, c->stream, c->err, sizeof c->err);
}

static bg_conv_shape shape_of(const layer *l, int batch)
{
    bg_conv_shape s = {batch, l->hw, l->hw, l->c, l->co, l->k, l->k, l->s, l->s, l->k / 2, l->k / 2, 1, 1, l->groups};
    return s;
}

/* One net: every layer, three passes; returns nonzero on a hard error. */
static int bench_net(bg_ctx *ctx, FILE *out, const char *net, const layer *L, int nl, int batch, int half, int reps,
                     bg_rtc *rtc, int tune, const char *script, int have_torch)
{
    double peer[MAX_LAYERS][3];
    for (int i = 0; i < nl; i++) peer[i][0] = peer[i][1] = peer[i][2] = -1;
    char spec[4000] = "";
    size_t sl = 0;
    for (int i = 0; i < nl && sl < sizeof spec; i++) {
        bg_conv_shape s = shape_of(&L[i], batch);
        sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%s%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d", i ? ";" : "", s.n, s.h,
                               s.w, s.c, s.co, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw, s.groups);
    }
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "python3 %s conv --dtype %s --reps %d --spec '%s'", script ? script : "bench/torch_conv_peer.py",
             half ? "f16" : "f32", reps, spec);
    if (have_torch) {
        FILE *p = popen(cmd, "r");
        char line[512];
        while (p && fgets(line, sizeof line, p)) {
            int idx;
            double f, d, w;
            if (sscanf(line, "conv %d %lf %lf %lf", &idx, &f, &d, &w) == 4 && idx >= 0 && idx < nl)
                peer[idx][0] = f, peer[idx][1] = d, peer[idx][2] = w;
            else if (line[0] == '#') fprintf(out, "peer %s", line + 1);
        }
        if (p) pclose(p);
    }
    fprintf(out, "\n== %s, batch %d, %s\n", net, batch, half ? "f16 (fp32 accumulation)" : "f32");
    fprintf(out, "%-16s %4s %4s %4s %3s %2s %3s %3s | %8s %8s %8s | %7s %6s | %8s %8s %8s | %6s | %s\n", "layer", "cin", "cout",
            "hw", "k", "s", "g", "x", "fwd ms", "dgrad ms", "wgrad ms", "TFLOP/s", "%peak", "pt fwd", "pt dgrad", "pt wgrad",
            "ratio", "kernels (fwd / dgrad / wgrad)");
    double tot = 0, tot_pt = 0, flops_tot = 0;
    int pt_complete = have_torch;
    for (int i = 0; i < nl; i++) {
        const layer *l = &L[i];
        bg_conv_shape s = shape_of(l, batch);
        int ho = 0, wo = 0;
        char err[300];
        if (bg_conv_check(&s, &ho, &wo, err, sizeof err)) {
            fprintf(out, "%-16s invalid shape: %s\n", l->name, err);
            continue;
        }
        const bg_dtype dt = half ? BG_F16 : BG_F32;
        int64_t nx = (int64_t)s.n * s.h * s.w * s.c, ny = (int64_t)s.n * ho * wo * s.co, nw = (int64_t)s.co * s.kh * s.kw * (s.c / s.groups);
        bg_tensor *x = bg_tensor_new(ctx, BG_CUDA, dt, 1, &nx, "x"), *dx = bg_tensor_new(ctx, BG_CUDA, dt, 1, &nx, "dx");
        bg_tensor *y = bg_tensor_new(ctx, BG_CUDA, dt, 1, &ny, "y"), *dy = bg_tensor_new(ctx, BG_CUDA, dt, 1, &ny, "dy");
        bg_tensor *w = bg_tensor_new(ctx, BG_CUDA, dt, 1, &nw, "w"), *dw = bg_tensor_new(ctx, BG_CUDA, dt, 1, &nw, "dw");
        bg_conv_opts o = {0};
        o.rtc = rtc;
        size_t wsb = 0;
        for (int p = 0; p < 3; p++) {
            size_t b = bg_conv_ws_bytes(&s, (bg_conv_pass)p, half, &o, 0);
            if (b > wsb) wsb = b;
        }
        int64_t wsn = (int64_t)(wsb + 3) / 4;
        bg_tensor *ws = wsb ? bg_tensor_new(ctx, BG_CUDA, BG_F32, 1, &wsn, "ws") : NULL;
        if (!x || !dx || !y || !dy || !w || !dw || (wsb && !ws) || bg_tensor_fill_uniform(ctx, x, -1, 1) ||
            bg_tensor_fill_uniform(ctx, w, -0.1, 0.1) || bg_tensor_fill_uniform(ctx, dy, -1, 1)) {
            fprintf(stderr, "budgie bench conv: %s: %s\n", l->name, bg_errmsg(ctx));
            bg_tensor_free(ctx, x), bg_tensor_free(ctx, dx), bg_tensor_free(ctx, y), bg_tensor_free(ctx, dy);
            bg_tensor_free(ctx, w), bg_tensor_free(ctx, dw), bg_tensor_free(ctx, ws);
            return 1;
        }
        o.ws = ws ? ws->data : NULL, o.ws_bytes = wsb;
        const void *A[3] = {x->data, dy->data, x->data}, *B[3] = {w->data, w->data, dy->data};
        void *O[3] = {y->data, dx->data, dw->data};
        float ms[3] = {0, 0, 0};
        char desc[3][96];
        int bad = 0;
        for (int p = 0; p < 3 && !bad; p++) {
            if (tune) {
                int best = 0;
                float tms = 0;
                if (bg_conv_tune(&s, (bg_conv_pass)p, half, A[p], B[p], O[p], &o, ctx->stream, &best, &tms, err, sizeof err))
                    fprintf(out, "  tune %s %d: %s\n", l->name, p, err);
            }
            bg_conv_describe(&s, (bg_conv_pass)p, half, &o, desc[p], sizeof desc[p]);
            ccall c = {&s, (bg_conv_pass)p, half, A[p], B[p], O[p], &o, ctx->stream, ""};
            if (bg_cuda_time(call_conv, &c, 2, reps, ctx->stream, &ms[p], c.err, sizeof c.err)) {
                fprintf(out, "%-16s %s: error: %s\n", l->name, p == 0 ? "fwd" : p == 1 ? "dgrad" : "wgrad", c.err);
                bad = 1;
            }
        }
        if (!bad) {
            const double flop = 2.0 * ny * s.kh * s.kw * (s.c / s.groups);
            const double sum_ms = ms[0] + (l->first ? 0 : ms[1]) + ms[2], passes = l->first ? 2 : 3;
            const double tf = passes * flop / (sum_ms * 1e-3) / 1e12;
            double pt_sum = -1;
            if (peer[i][0] > 0) pt_sum = peer[i][0] + (l->first ? 0 : peer[i][1]) + peer[i][2];
            else pt_complete = 0;
            tot += l->count * sum_ms, flops_tot += l->count * passes * flop;
            if (pt_sum > 0) tot_pt += l->count * pt_sum;
            char pf[16] = "-", pd[16] = "-", pw[16] = "-", ratio[16] = "-";
            if (pt_sum > 0) {
                snprintf(pf, sizeof pf, "%.4f", peer[i][0]), snprintf(pd, sizeof pd, "%.4f", peer[i][1]);
                snprintf(pw, sizeof pw, "%.4f", peer[i][2]), snprintf(ratio, sizeof ratio, "%.2fx", sum_ms / pt_sum);
            }
            fprintf(out, "%-16s %4d %4d %4d %3d %2d %3d %3d | %8.4f %8.4f %8.4f | %7.2f %5.1f%% | %8s %8s %8s | %6s | %s / %s / %s\n",
                    l->name, l->c, l->co, l->hw, l->k, l->s, l->groups, l->count, ms[0], ms[1], ms[2], tf,
                    100.0 * tf / (half ? PEAK_F16 : PEAK_F32), pf, pd, pw, ratio, desc[0], desc[1], desc[2]);
        }
        bg_tensor_free(ctx, x), bg_tensor_free(ctx, dx), bg_tensor_free(ctx, y), bg_tensor_free(ctx, dy);
        bg_tensor_free(ctx, w), bg_tensor_free(ctx, dw), bg_tensor_free(ctx, ws);
    }
    const double tf_tot = tot > 0 ? flops_tot / (tot * 1e-3) / 1e12 : 0;
    fprintf(out, "total (each layer x its count; the input layer without dgrad): %.3f ms, %.1f TFLOP/s", tot, tf_tot);
    if (pt_complete && tot_pt > 0)
        fprintf(out, "; PyTorch %.3f ms; ratio %.2fx (target <= %.2fx: %s)\n", tot_pt, tot / tot_pt, TARGET_RATIO,
                tot / tot_pt <= TARGET_RATIO ? "met" : "NOT met");
    else
        fprintf(out, "\npeer: python3 + torch (CUDA) not importable here; to measure it run:\n  %s\n", cmd);
    return 0;
}
#endif

BG_BENCH(conv, "CUDA conv2d fwd/dgrad/wgrad per layer of SENet-18 and ResNeSt-50d_1s4x24d vs PyTorch")
{
    const char *net = "all", *dtype = "f16";
    int64_t batch_o = 0, reps_o = 10;
    bool rtc_o = false, tune_o = false, no_peer = false;
    const bg_opt opts[] = {
        {.name = "net", .type = BG_OPT_CHOICE, .dst = &net, .choices = "senet18|senet18w67|resnest|all"},
        {.name = "batch", .type = BG_OPT_INT, .dst = &batch_o, .min = 1, .max = 1 << 20},
        {.name = "reps", .type = BG_OPT_INT, .dst = &reps_o, .min = 1, .max = 1e6},
        {.name = "dtype", .type = BG_OPT_CHOICE, .dst = &dtype, .choices = "f16|f32"},
        {.name = "rtc", .type = BG_OPT_FLAG, .dst = &rtc_o},
        {.name = "tune", .type = BG_OPT_FLAG, .dst = &tune_o},
        {.name = "no-peer", .type = BG_OPT_FLAG, .dst = &no_peer},
    };
    const int prc = bg_opts_parse("bench conv", opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, NULL, 0, NULL);
    if (prc == 1) {
        fprintf(out, "usage: budgie bench conv [--net senet18|senet18w67|resnest|all] [--batch B] [--dtype f16|f32]\n"
                     "                         [--reps R] [--rtc] [--tune] [--no-peer]\n"
                     "Default batches: 512 for SENet-18 (32x32), 96 for ResNeSt-50d_1s4x24d (160x160).\n"
                     "--rtc specialises each layer with NVRTC (first run compiles, later runs load from\n"
                     "~/.cache/budgie/kernels); --tune times every tile per layer first and keeps the fastest.\n"
                     "The PyTorch peer runs through bench/torch_conv_peer.py when python3 + torch are importable.\n");
        return 0;
    }
    if (prc) return prc;
    int batch = (int)batch_o, reps = (int)reps_o, peer = !no_peer, use_rtc = rtc_o, tune = tune_o;
    const int half = strcmp(dtype, "f32") != 0;
    if (!bg_cuda_available()) {
        fprintf(out, "skipped: no CUDA device\n");
        return 0;
    }
#ifdef BG_WITH_CUDA
    if (reps < 1) reps = 1;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CUDA, 1)) {
        fprintf(stderr, "budgie bench conv: %s\n", bg_errmsg(&ctx));
        return 1;
    }
    char dev[128] = "?";
    int sms = 0, ccmaj = 0, ccmin = 0;
    bg_cuda_device_info(dev, sizeof dev, &sms, &ccmaj, &ccmin);
    fprintf(out, "device: %s (%d SMs, sm_%d%d); peaks used: FP16 dense %.0f TFLOP/s, FP32 %.0f (H100 SXM)\n", dev, sms,
            ccmaj, ccmin, PEAK_F16, PEAK_F32);
    /* The cache object also remembers tuned tiles: --tune alone uses one with NVRTC off. */
    bg_rtc *rtc = use_rtc || tune ? bg_rtc_new(NULL) : NULL;
    if (rtc && !use_rtc) bg_rtc_enable(rtc, 0);
    char pbuf[1000];
    const char *script = peer ? bg_bench_peer_path("torch_conv_peer.py", pbuf, sizeof pbuf) : NULL;
    const int have_torch = script && bg_bench_torch_cuda();
    layer L[MAX_LAYERS];
    int rc = 0;
    static const int w100[4] = {64, 128, 256, 512}, w067[4] = {43, 86, 172, 343};
    if (!rc && (!strcmp(net, "all") || !strcmp(net, "senet18")))
        rc = bench_net(&ctx, out, "SENet-18 width 1.0, 32x32", L, senet_layers(L, w100), batch ? batch : 512, half, reps, rtc,
                       tune, script, have_torch);
    if (!rc && (!strcmp(net, "all") || !strcmp(net, "senet18w67")))
        rc = bench_net(&ctx, out, "SENet-18 width 0.67 (HAET), 32x32", L, senet_layers(L, w067), batch ? batch : 512, half,
                       reps, rtc, tune, script, have_torch);
    if (!rc && (!strcmp(net, "all") || !strcmp(net, "resnest")))
        rc = bench_net(&ctx, out, "ResNeSt-50d_1s4x24d, 160x160", L, resnest_layers(L), batch ? batch : 96, half, reps, rtc,
                       tune, script, have_torch);
    if (rtc) {
        const char *note = bg_rtc_note(rtc);
        if (note) fprintf(out, "note: %s\n", note);
        int compiled = 0, disk = 0, mem = 0, failed = 0;
        bg_rtc_stats(rtc, &compiled, &disk, &mem, &failed);
        fprintf(out, "nvrtc: %d kernels compiled, %d from the disk cache, %d reused, %d failed\n", compiled, disk, mem, failed);
        bg_rtc_free(rtc);
    }
    bg_ctx_free(&ctx);
    return rc;
#else
    (void)tune, (void)use_rtc, (void)half, (void)reps, (void)batch, (void)peer;
    return 0;
#endif
}
