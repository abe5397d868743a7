/* `budgie bench gemm`: the CUDA GEMM (kernels/gemm/gemm.h) per shape and
 * dtype: time per call, TFLOP/s, the share of the H100's dense peak (FP16
 * tensor cores 989 TFLOP/s, FP32 67), and torch.matmul on the same shapes in
 * the same run through bench/torch_conv_peer.py when python3 + torch (with
 * CUDA) are importable. Without a device it prints "skipped: no CUDA device". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "../tools/options.h"
#include "../engine/tensor.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#include "../kernels/gemm/gemm.h"
#include "../kernels/rtc/rtc.h"
#endif

#define PEAK_F16 989.0
#define PEAK_F32 67.0

#ifdef BG_WITH_CUDA
typedef struct {
    int m, n, k, batch, ta, tb;
    const char *what;
} gshape;

/* The FP16 target shape, the linear layers of the models, attention-style batches. */
static const gshape default_shapes[] = {
    {4096, 4096, 4096, 1, 0, 0, "square 4096^3 (target: >= 60% of torch.matmul)"},
    {8192, 8192, 8192, 1, 0, 0, "square 8192^3"},
    {512, 10, 512, 1, 0, 1, "SENet-18 fc forward (x.W^T)"},
    {96, 100, 2048, 1, 0, 1, "ResNeSt fc forward"},
    {2048, 100, 96, 1, 1, 0, "ResNeSt fc weight gradient (dy^T.x)"},
    {4096, 1024, 1024, 1, 0, 1, "linear 4096x1024x1024 NT"},
    {1024, 1024, 4096, 1, 1, 0, "weight gradient TN, tall k"},
    {256, 256, 64, 96, 0, 1, "attention QK^T, 96 heads"},
    {256, 64, 256, 96, 0, 0, "attention PV, 96 heads"},
};

typedef struct {
    bg_gemm_desc d;
    bg_gemm_algo algo;
    void *stream;
    char err[300];
} gcall;

static int call_gemm(void *arg)
{
    gcall *c = arg;
    return bg_gemm_cuda(&c->d, c->algo, c->stream, c->err, sizeof c->err);
}

static bg_gemm_algo parse_algo(const char *s)
{
    if (!strcmp(s, "naive")) return BG_GEMM_NAIVE;
    if (!strcmp(s, "simt")) return BG_GEMM_SIMT;
    if (!strcmp(s, "tc")) return BG_GEMM_TC;
    if (!strcmp(s, "scalar")) return BG_GEMM_TC_SCALAR;
    if (!strcmp(s, "wgmma")) return BG_GEMM_WGMMA;
    return BG_GEMM_AUTO;
}
#endif

BG_BENCH(gemm, "CUDA GEMM (f16 tensor cores, f32 FMA): TFLOP/s, share of H100 peak, torch.matmul peer")
{
    int64_t m_o = 0, n_o = 0, k_o = 0, batch_o = 1, reps_o = 20;
    bool ta_o = false, tb_o = false, rtc_o = false, no_peer = false;
    const char *algo_s = "auto", *dtype = "both";
    const bg_opt opts[] = {
        {.name = "m", .type = BG_OPT_INT, .dst = &m_o, .min = 1, .max = 1 << 20},
        {.name = "n", .type = BG_OPT_INT, .dst = &n_o, .min = 1, .max = 1 << 20},
        {.name = "k", .type = BG_OPT_INT, .dst = &k_o, .min = 1, .max = 1 << 20},
        {.name = "batch", .type = BG_OPT_INT, .dst = &batch_o, .min = 1, .max = 1 << 20},
        {.name = "ta", .type = BG_OPT_FLAG, .dst = &ta_o},
        {.name = "tb", .type = BG_OPT_FLAG, .dst = &tb_o},
        {.name = "reps", .type = BG_OPT_INT, .dst = &reps_o, .min = 1, .max = 1e6},
        {.name = "algo", .type = BG_OPT_CHOICE, .dst = &algo_s, .choices = "auto|tc|scalar|simt|naive|wgmma"},
        {.name = "dtype", .type = BG_OPT_CHOICE, .dst = &dtype, .choices = "f16|f32|both"},
        {.name = "rtc", .type = BG_OPT_FLAG, .dst = &rtc_o},
        {.name = "no-peer", .type = BG_OPT_FLAG, .dst = &no_peer},
    };
    const int prc = bg_opts_parse("bench gemm", opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, NULL, 0, NULL);
    if (prc == 1) {
        fprintf(out, "usage: budgie bench gemm [--m M --n N --k K [--batch B] [--ta] [--tb]] [--dtype f16|f32|both]\n"
                     "                         [--algo auto|tc|scalar|simt|naive|wgmma] [--reps R] [--rtc] [--no-peer]\n"
                     "Without --m/--n/--k: 4096^3, 8192^3 and the models' linear/attention shapes.\n"
                     "--rtc specialises each shape with NVRTC (cached under ~/.cache/budgie/kernels).\n"
                     "The torch.matmul peer runs through bench/torch_conv_peer.py when python3 + torch are importable.\n");
        return 0;
    }
    if (prc) return prc;
    int m = (int)m_o, n = (int)n_o, k = (int)k_o, batch = (int)batch_o, ta = ta_o, tb = tb_o, reps = (int)reps_o;
    int peer = !no_peer, use_rtc = rtc_o, do16 = strcmp(dtype, "f32") != 0, do32 = strcmp(dtype, "f16") != 0;
    if (!bg_cuda_available()) {
        fprintf(out, "skipped: no CUDA device\n");
        return 0;
    }
#ifdef BG_WITH_CUDA
    if (reps < 1) reps = 1;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CUDA, 1)) {
        fprintf(stderr, "budgie bench gemm: %s\n", bg_errmsg(&ctx));
        return 1;
    }
    char dev[128] = "?";
    int sms = 0, ccmaj = 0, ccmin = 0;
    bg_cuda_device_info(dev, sizeof dev, &sms, &ccmaj, &ccmin);
    fprintf(out, "device: %s (%d SMs, sm_%d%d); peaks used: FP16 dense %.0f TFLOP/s, FP32 %.0f (H100 SXM)\n", dev, sms,
            ccmaj, ccmin, PEAK_F16, PEAK_F32);
    gshape one = {m, n, k, batch, ta, tb, "custom"};
    const gshape *shapes = m > 0 && n > 0 && k > 0 ? &one : default_shapes;
    const int ns = m > 0 && n > 0 && k > 0 ? 1 : (int)(sizeof default_shapes / sizeof *default_shapes);
    bg_rtc *rtc = use_rtc ? bg_rtc_new(NULL) : NULL;
    char pbuf[1000];
    const char *script = peer ? bg_bench_peer_path("torch_conv_peer.py", pbuf, sizeof pbuf) : NULL;
    const int have_torch = script && bg_bench_torch_cuda();
    int rc = 0;
    for (int dti = 0; dti < 2 && !rc; dti++) {
        const int half = dti == 0;
        if ((half && !do16) || (!half && !do32)) continue;
        double peer_ms[16];
        for (int i = 0; i < 16; i++) peer_ms[i] = -1;
        char spec[2000] = "";
        size_t sl = 0;
        for (int i = 0; i < ns && sl < sizeof spec; i++)
            sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%s%d,%d,%d,%d,%d,%d", i ? ";" : "", shapes[i].m, shapes[i].n,
                                   shapes[i].k, shapes[i].batch, shapes[i].ta, shapes[i].tb);
        char cmd[2600];
        snprintf(cmd, sizeof cmd, "python3 %s gemm --dtype %s --reps %d --spec '%s'", script ? script : "bench/torch_conv_peer.py",
                 half ? "f16" : "f32", reps, spec);
        if (have_torch) {
            FILE *p = popen(cmd, "r");
            char line[512];
            while (p && fgets(line, sizeof line, p)) {
                int idx;
                double ms;
                if (sscanf(line, "gemm %d %lf", &idx, &ms) == 2 && idx >= 0 && idx < 16) peer_ms[idx] = ms;
                else if (line[0] == '#') fprintf(out, "peer %s", line + 1);
            }
            if (p) pclose(p);
        }
        fprintf(out, "\n%s  %-5s %-5s %-5s %-3s %-3s %-22s %9s %9s %7s %10s %8s\n", half ? "f16" : "f32", "m", "n", "k",
                "b", "t", "kernel", "ms", "TFLOP/s", "%peak", "torch ms", "ours/pt");
        for (int i = 0; i < ns && !rc; i++) {
            const gshape *s = &shapes[i];
            int64_t na = (int64_t)s->m * s->k * s->batch, nb = (int64_t)s->k * s->n * s->batch, nc = (int64_t)s->m * s->n * s->batch;
            bg_dtype dt = half ? BG_F16 : BG_F32;
            bg_tensor *A = bg_tensor_new(&ctx, BG_CUDA, dt, 1, &na, "A"), *B = bg_tensor_new(&ctx, BG_CUDA, dt, 1, &nb, "B");
            bg_tensor *C = bg_tensor_new(&ctx, BG_CUDA, dt, 1, &nc, "C");
            if (!A || !B || !C || bg_tensor_fill_uniform(&ctx, A, -1, 1) || bg_tensor_fill_uniform(&ctx, B, -1, 1)) {
                fprintf(stderr, "budgie bench gemm: %s\n", bg_errmsg(&ctx));
                rc = 1;
            } else {
                gcall c;
                memset(&c, 0, sizeof c);
                c.d.m = s->m, c.d.n = s->n, c.d.k = s->k, c.d.batch = s->batch, c.d.ta = s->ta, c.d.tb = s->tb;
                c.d.A = A->data, c.d.lda = s->ta ? s->m : s->k, c.d.sA = (int64_t)s->m * s->k;
                c.d.B = B->data, c.d.ldb = s->tb ? s->k : s->n, c.d.sB = (int64_t)s->k * s->n;
                c.d.C = C->data, c.d.ldc = s->n, c.d.sC = (int64_t)s->m * s->n;
                c.d.alpha = 1.f, c.d.half = half, c.d.rtc = rtc;
                c.algo = parse_algo(algo_s);
                c.stream = ctx.stream;
                float ms = 0;
                int r = bg_cuda_time(call_gemm, &c, 3, reps, ctx.stream, &ms, c.err, sizeof c.err);
                if (r) {
                    fprintf(out, "     %-5d %-5d %-5d %-3d %d%d  error: %s\n", s->m, s->n, s->k, s->batch, s->ta, s->tb, c.err);
                } else {
                    double tf = 2.0 * s->m * s->n * (double)s->k * s->batch / (ms * 1e-3) / 1e12;
                    char pt[32] = "-", ratio[32] = "-";
                    if (i < 16 && peer_ms[i] > 0) {
                        snprintf(pt, sizeof pt, "%.4f", peer_ms[i]);
                        snprintf(ratio, sizeof ratio, "%.2fx", ms / peer_ms[i]);
                    }
                    const char *tile = bg_gemm_config_name(half, 0);
                    fprintf(out, "     %-5d %-5d %-5d %-3d %d%d  %-22s %9.4f %9.2f %6.1f%% %10s %8s  %s\n", s->m, s->n, s->k,
                            s->batch, s->ta, s->tb, tile ? tile : (half ? "tc auto" : "fma auto"), ms, tf,
                            100.0 * tf / (half ? PEAK_F16 : PEAK_F32), pt, ratio, s->what);
                }
            }
            bg_tensor_free(&ctx, A), bg_tensor_free(&ctx, B), bg_tensor_free(&ctx, C);
        }
        if (!have_torch) fprintf(out, "peer: python3 + torch (CUDA) not importable here; to measure it run:\n  %s\n", cmd);
    }
    if (rtc) {
        const char *note = bg_rtc_note(rtc);
        if (note) fprintf(out, "note: %s\n", note);
        bg_rtc_free(rtc);
    }
    bg_ctx_free(&ctx);
    return rc;
#else
    (void)m, (void)n, (void)k, (void)batch, (void)ta, (void)tb, (void)reps, (void)peer, (void)use_rtc, (void)do16;
    (void)do32, (void)algo_s;
    return 0;
#endif
}
