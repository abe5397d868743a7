/* GPU suite: the CUDA GEMM (kernels/gemm/gemm.h) against a double-precision
 * CPU reference computed from the very same (f16-rounded where f16) inputs,
 * for every algorithm, tile config, transpose pair, batching, epilogue and
 * split-K; outputs are poisoned with NaN first so an unwritten element fails.
 *
 * Error limits, as the normalised L2 error |got - ref| / |ref|:
 *   f32 (FMA tiles or naive, f32 accumulation):     1e-5  (k <= 1100: ~sqrt(k)*6e-8 expected)
 *   f16 (tensor cores or naive, f32 accumulation):  1e-3  (the f16 output rounding alone is ~3e-4)
 * plus every element finite. A CPU test checks that the kernel source still
 * compiles under NVRTC (no GPU needed). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "gpu_parity.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#include "../kernels/gemm/gemm.h"
#include "../kernels/rtc/rtc.h"
#endif

#define TOL_F32 1e-5
#define TOL_F16 1e-3

#ifdef BG_WITH_CUDA
typedef struct {
    int m, n, k, batch, ta, tb;
    float alpha, beta;
    int bias, act, half, config, splits; /* act: BG_ACT_* */
    bg_gemm_algo algo;
    int pad_ld;     /* leading dimensions rounded up to a multiple of 8 (cp.async) */
    int use_rtc;
} gcase;

/* Run one GEMM and compare; returns the error (INFINITY on a failed call, with the message in msg). */
static double run_gemm(bg_ctx *g, const gcase *c, bg_rtc *rtc, uint64_t seed, char *msg, size_t msgn)
{
    const int B = c->batch > 0 ? c->batch : 1;
    int64_t lda = c->ta ? c->m : c->k, ldb = c->tb ? c->k : c->n, ldc = c->n;
    if (c->pad_ld) lda = (lda + 7) / 8 * 8, ldb = (ldb + 7) / 8 * 8;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    const int64_t sA = lda * (c->ta ? c->k : c->m), sB = ldb * (c->tb ? c->n : c->k), sC = ldc * c->m;
    const int64_t nA = sA * B, nB = sB * B, nC = sC * B;
    gp_rng r = {seed | 1};
    double *A = malloc(sizeof(double) * (size_t)(nA + 1)), *Bv = malloc(sizeof(double) * (size_t)(nB + 1));
    double *C0 = malloc(sizeof(double) * (size_t)nC), *bias = malloc(sizeof(double) * (size_t)(c->n + 1));
    double *ref = malloc(sizeof(double) * (size_t)nC), *got = malloc(sizeof(double) * (size_t)nC);
    for (int64_t i = 0; i < nA; i++) A[i] = gp_rnd(&r);
    for (int64_t i = 0; i < nB; i++) Bv[i] = gp_rnd(&r);
    for (int64_t i = 0; i < nC; i++) C0[i] = c->beta != 0 ? gp_rnd(&r) : NAN; /* beta 0: poisoned */
    for (int i = 0; i < c->n; i++) bias[i] = gp_rnd(&r);
    double err = INFINITY;
    bg_tensor *tA = gp_upload(g, nA, c->half, A, A), *tB = gp_upload(g, nB, c->half, Bv, Bv);
    bg_tensor *tC = gp_upload(g, nC, c->half, C0, C0), *tb = gp_upload(g, c->n, c->half, bias, bias);
    bg_tensor *ws = NULL;
    if (c->splits > 1) {
        int64_t wn = (int64_t)c->splits * c->m * ldc;
        ws = bg_tensor_new(g, BG_CUDA, BG_F32, 1, &wn, "ws");
    }
    if (!tA || !tB || !tC || !tb || (c->splits > 1 && !ws)) {
        snprintf(msg, msgn, "setup: %s", bg_errmsg(g));
        goto out;
    }
    bg_gemm_desc d = {0};
    d.m = c->m, d.n = c->n, d.k = c->k, d.batch = B, d.ta = c->ta, d.tb = c->tb;
    d.A = tA->data, d.lda = lda, d.sA = sA, d.B = tB->data, d.ldb = ldb, d.sB = sB, d.C = tC->data, d.ldc = ldc, d.sC = sC;
    d.alpha = c->alpha, d.beta = c->beta, d.bias = c->bias ? tb->data : NULL, d.act = c->act, d.half = c->half;
    d.config = c->config, d.splits = c->splits, d.ws = ws ? ws->data : NULL, d.ws_bytes = ws ? bg_nbytes(ws) : 0;
    d.rtc = c->use_rtc ? rtc : NULL;
    char err_s[300];
    int rc = bg_gemm_cuda(&d, c->algo, g->stream, err_s, sizeof err_s);
    if (!rc) rc = bg_cuda_sync(g->stream, err_s, sizeof err_s);
    if (rc) {
        snprintf(msg, msgn, "bg_gemm_cuda: %s", err_s);
        goto out;
    }
    if (!gp_download(g, tC, nC, got)) {
        snprintf(msg, msgn, "download: %s", bg_errmsg(g));
        goto out;
    }
    for (int b = 0; b < B; b++)
        for (int i = 0; i < c->m; i++)
            for (int j = 0; j < c->n; j++) {
                double s = 0;
                for (int p = 0; p < c->k; p++) {
                    double a = c->ta ? A[b * sA + p * lda + i] : A[b * sA + i * lda + p];
                    double v = c->tb ? Bv[b * sB + j * ldb + p] : Bv[b * sB + p * ldb + j];
                    s += a * v;
                }
                int64_t at = b * sC + i * ldc + j;
                s = c->alpha * s + (c->beta != 0 ? c->beta * C0[at] : 0) + (c->bias ? bias[j] : 0);
                ref[at] = c->act == BG_ACT_RELU ? (s < 0 ? 0 : s) : c->act == BG_ACT_SIGMOID ? 1 / (1 + exp(-s)) : s;
            }
    err = gp_rel_l2(got, ref, nC);
    snprintf(msg, msgn, "rel err %.3g", err);
out:
    bg_tensor_free(g, tA), bg_tensor_free(g, tB), bg_tensor_free(g, tC), bg_tensor_free(g, tb), bg_tensor_free(g, ws);
    free(A), free(Bv), free(C0), free(bias), free(ref), free(got);
    return err;
}

static void check(bg_t *tc, bg_ctx *g, const gcase *c, bg_rtc *rtc, uint64_t seed)
{
    char msg[400];
    double e = run_gemm(g, c, rtc, seed, msg, sizeof msg);
    double tol = c->half ? TOL_F16 : TOL_F32;
    CHECK(e <= tol, "gemm %dx%dx%d batch %d ta=%d tb=%d %s algo %d config %d splits %d alpha %g beta %g bias %d act %d%s: %s (limit %g)",
          c->m, c->n, c->k, c->batch, c->ta, c->tb, c->half ? "f16" : "f32", (int)c->algo, c->config, c->splits,
          (double)c->alpha, (double)c->beta, c->bias, c->act, c->use_rtc ? " nvrtc" : "", msg, tol);
}
#endif

/* Every algorithm and tile on odd and even shapes, all four transpose pairs. */
BG_GPU_TEST(gpu_gemm_variants_match_cpu)
{
#ifdef BG_WITH_CUDA
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 1));
    if (tc->failures) return;
    static const int shapes[][3] = {{1, 1, 1}, {5, 3, 7}, {37, 45, 70}, {64, 64, 64}, {127, 129, 65}, {200, 43, 343}};
    uint64_t seed = 11;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int t = 0; t < 4; t++) {
            gcase c = {shapes[si][0], shapes[si][1], shapes[si][2], 1, t >> 1, t & 1, 1.f, 0.f, 0, 0, 0, 0, 0, BG_GEMM_AUTO, 0, 0};
            /* f32: naive, both FMA tiles */
            c.half = 0;
            c.algo = BG_GEMM_NAIVE, check(tc, &g, &c, NULL, seed++);
            c.algo = BG_GEMM_SIMT;
            for (int cfg = 1; cfg <= 3; cfg += 2) c.config = cfg, check(tc, &g, &c, NULL, seed++);
            /* f16: naive, scalar tensor cores, cp.async tensor cores (each tile), on padded rows */
            c.half = 1, c.config = 0;
            c.algo = BG_GEMM_NAIVE, check(tc, &g, &c, NULL, seed++);
            c.algo = BG_GEMM_TC_SCALAR, check(tc, &g, &c, NULL, seed++);
            c.algo = BG_GEMM_TC, c.pad_ld = 1;
            for (int cfg = 1; cfg <= 3; cfg++) c.config = cfg, check(tc, &g, &c, NULL, seed++);
            c.algo = BG_GEMM_AUTO, c.pad_ld = 0, c.config = 0, check(tc, &g, &c, NULL, seed++);
        }
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* Strided batches (attention), alpha/beta/bias/ReLU epilogues, split-K. */
BG_GPU_TEST(gpu_gemm_batched_epilogue_splitk)
{
#ifdef BG_WITH_CUDA
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 2));
    if (tc->failures) return;
    uint64_t seed = 101;
    for (int half = 0; half < 2; half++)
        for (int t = 0; t < 4; t++) {
            /* attention-like: 6 heads of 77x64 . 64x77 with scaling, then accumulate */
            gcase c = {77, 77, 64, 6, t >> 1, t & 1, 0.125f, 0.f, 0, 0, half, 0, 0, BG_GEMM_AUTO, 1, 0};
            check(tc, &g, &c, NULL, seed++);
            c.beta = 1.f, check(tc, &g, &c, NULL, seed++);
            /* linear with bias and ReLU fused (batch 513, 343 -> 172); an SE gate: bias + sigmoid */
            gcase l = {513, 172, 343, 1, t >> 1, t & 1, 1.f, 0.f, 1, BG_ACT_RELU, half, 0, 0, BG_GEMM_AUTO, 0, 0};
            check(tc, &g, &l, NULL, seed++);
            gcase se = {512, 64, 4, 1, t >> 1, t & 1, 1.f, 0.f, 1, BG_ACT_SIGMOID, half, 0, 0, BG_GEMM_AUTO, 0, 0};
            check(tc, &g, &se, NULL, seed++);
            /* split-K: a tall reduction (weight-gradient shaped), overwrite and accumulate */
            gcase s = {64, 96, 1100, 1, t >> 1, t & 1, 1.f, 0.f, 1, 0, half, 0, 3, BG_GEMM_AUTO, 1, 0};
            check(tc, &g, &s, NULL, seed++);
            s.beta = 1.f, s.splits = 5, check(tc, &g, &s, NULL, seed++);
        }
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* NVRTC-specialised GEMMs give the same results (or fall back, saying why). */
BG_GPU_TEST(gpu_gemm_nvrtc_specialised)
{
#ifdef BG_WITH_CUDA
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 3));
    if (tc->failures) return;
    char dir[] = "/tmp/bg_rtc_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    bg_rtc *r = bg_rtc_new(dir);
    uint64_t seed = 201;
    for (int half = 0; half < 2; half++) {
        gcase c = {130, 200, 77, 2, 0, 1, 1.f, 0.f, 1, 1, half, 0, 0, BG_GEMM_AUTO, 1, 1};
        check(tc, &g, &c, r, seed++);
        c.ta = 1, c.tb = 0, check(tc, &g, &c, r, seed++);
        c.ta = 1, c.tb = 0, check(tc, &g, &c, r, seed++); /* memory hit */
    }
    int compiled = 0, disk = 0, mem = 0, failed = 0;
    bg_rtc_stats(r, &compiled, &disk, &mem, &failed);
    const char *note = bg_rtc_note(r);
    if (bg_rtc_available(r))
        CHECK(failed == 0 && compiled + disk == 4 && mem == 2, "nvrtc: %d compiled, %d from disk, %d from memory, %d failed (%s)",
              compiled, disk, mem, failed, note ? note : "");
    else if (note)
        printf("  note: %s\n", note);
    bg_rtc_free(r);
    /* a second cache object on the same folder loads from disk */
    r = bg_rtc_new(dir);
    gcase c = {130, 200, 77, 2, 0, 1, 1.f, 0.f, 1, 1, 1, 0, 0, BG_GEMM_AUTO, 1, 1};
    check(tc, &g, &c, r, seed++);
    bg_rtc_stats(r, &compiled, &disk, &mem, &failed);
    if (bg_rtc_available(r)) CHECK(disk == 1 && compiled == 0, "disk cache: %d from disk, %d compiled", disk, compiled);
    bg_rtc_free(r);
    DIR *dd = opendir(dir); /* the cache folder holds only files */
    for (struct dirent *de; dd && (de = readdir(dd));) {
        char path[300];
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (dd) closedir(dd);
    CHECK(rmdir(dir) == 0, "cleanup of %s", dir);
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* A failing NVRTC step leaves a note that names it (and the GEMM falls back
 * to the precompiled kernel). Failures are injected through the emulator's
 * NVRTC (BGEMU_NVRTC_FAIL): on a real GPU there is no way to provoke one. */
BG_GPU_TEST(gpu_rtc_failure_note_names_the_step)
{
#ifdef BG_WITH_CUDA
    char name[256] = "";
    if (!gp_on_emulator(name, sizeof name)) SKIP("needs the CUDA emulator's NVRTC fault injection (device: %s)", name);
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 3));
    if (tc->failures) return;
    static const char *steps[] = {"compile", "cubin"}, *want[] = {"injected by BGEMU_NVRTC_FAIL", "nvrtcGetCUBINSize"};
    for (int i = 0; i < 2; i++) {
        setenv("BGEMU_NVRTC_FAIL", steps[i], 1);
        bg_rtc *r = bg_rtc_new("");
        gcase c = {130, 200, 77, 2, 0, 1, 1.f, 0.f, 1, 1, 1, 0, 0, BG_GEMM_AUTO, 1, 1};
        check(tc, &g, &c, r, 300 + (uint64_t)i); /* still right: the precompiled kernel ran */
        int compiled = 0, disk = 0, mem = 0, failed = 0;
        bg_rtc_stats(r, &compiled, &disk, &mem, &failed);
        const char *note = bg_rtc_note(r);
        CHECK(failed == 1 && compiled == 0, "%s: %d failed, %d compiled", steps[i], failed, compiled);
        CHECK(note && strstr(note, want[i]), "%s: the note must say '%s': %s", steps[i], want[i], note ? note : "(none)");
        bg_rtc_free(r);
        unsetenv("BGEMU_NVRTC_FAIL");
    }
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}

/* No GPU needed: the embedded kernel source must compile under NVRTC for
 * sm_90 (and sm_86), or run-time specialisation silently falls back. */
BG_TEST(rtc_kernel_source_compiles_under_nvrtc)
{
#ifdef BG_WITH_CUDA
    bg_rtc *r = bg_rtc_new("");
    CHECK(r != NULL, "bg_rtc_new");
    if (!r) return;
    char err[1000];
    int rc = bg_rtc_selftest(r, "sm_90", err, sizeof err);
    bg_rtc_free(r);
    if (rc < 0) SKIP("NVRTC is not installed: %s", err);
    CHECK(rc == 0, "NVRTC compile for sm_90 failed: %s", err);
#else
    SKIP("CPU-only build");
#endif
}

/* The opt-in sm_90a wgmma GEMM (A m x k, B n x k), when this build and device
 * have it: odd and tile-sized shapes, batches, the full epilogue. */
BG_GPU_TEST(gpu_gemm_wgmma_sm90a)
{
#ifdef BG_WITH_CUDA
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 4));
    if (tc->failures) return;
    char name[128];
    int sms = 0, major = 0, minor = 0;
    bg_cuda_device_info(name, sizeof name, &sms, &major, &minor);
    if (major != 9) {
        bg_ctx_free(&g);
        SKIP("wgmma needs sm_90; this device is sm_%d%d", major, minor);
    }
    gcase probe = {128, 256, 64, 1, 0, 1, 1.f, 0.f, 0, 0, 1, 0, 0, BG_GEMM_WGMMA, 1, 0};
    char msg[400];
    double e = run_gemm(&g, &probe, NULL, 301, msg, sizeof msg);
    if (!(e <= TOL_F16) && strstr(msg, "no sm_90a code")) {
        bg_ctx_free(&g);
        SKIP("%s", msg);
    }
    CHECK(e <= TOL_F16, "wgmma 128x256x64: %s", msg);
    static const int shapes[][4] = {{1, 1, 1, 1}, {37, 45, 70, 1}, {200, 300, 520, 1}, {513, 172, 343, 1}, {256, 256, 64, 6}, {1024, 1024, 1024, 1}};
    uint64_t seed = 310;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        gcase c = {shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], 0, 1, 1.f, 0.f, 0, 0, 1, 0, 0, BG_GEMM_WGMMA, 1, 0};
        check(tc, &g, &c, NULL, seed++);
        c.alpha = 0.5f, c.beta = 1.f, c.bias = 1, c.act = BG_ACT_RELU;
        check(tc, &g, &c, NULL, seed++);
    }
    bg_ctx_free(&g);
#else
    SKIP("CPU-only build");
#endif
}
