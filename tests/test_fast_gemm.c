/* The fast CPU GEMM (kernels/cpu/gemm.h) against a naive triple loop in
 * double, at every instruction set this CPU runs: all four transpose cases,
 * sizes that are not multiples of any tile or block (and k past one k-block,
 * m past one row block), padded leading dimensions, accumulation into a
 * non-zero C, the threading shapes (tall with its column slabs, wide, deep) and the
 * epilogue (overwrite, bias, residual, relu / sigmoid). */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../kernels/cpu/gemm.h"

static void fill(float *p, int64_t n, uint64_t *s)
{
    for (int64_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(*s >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
    }
}

/* One product at one ISA; returns the number of bad elements. */
static int check_gemm(bg_t *tc, bg_cpu_isa isa, bool ta, bool tb, int64_t m, int64_t n, int64_t k, bool ep)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    ctx.cpu_backend = BG_CPU_FAST;
    ctx.cpu_isa = isa;
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 7;
    int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *A = malloc(sizeof(float) * (size_t)(arows * lda)), *B = malloc(sizeof(float) * (size_t)(brows * ldb));
    float *C = malloc(sizeof(float) * (size_t)(m * ldc)), *C0 = malloc(sizeof(float) * (size_t)(m * ldc));
    float *bias = malloc(sizeof(float) * (size_t)n), *res = malloc(sizeof(float) * (size_t)(m * n));
    uint64_t s = (uint64_t)(m * 1000003 + n * 1009 + k) * 2 + (ta ? 1 : 0) + (tb ? 7 : 0);
    fill(A, arows * lda, &s), fill(B, brows * ldb, &s), fill(C0, m * ldc, &s), fill(bias, n, &s), fill(res, m * n, &s);
    memcpy(C, C0, sizeof(float) * (size_t)(m * ldc));
    const int act = (int)(k % 3); /* none, relu, sigmoid across the cases */
    if (ep) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) C[i * ldc + j] = NAN; /* overwrite must not read C */
        bg_gemm_job j = {.m = m, .n = n, .k = k, .c = C, .ldc = ldc};
        j.a = (bg_gsrc){.kind = ta ? BG_GS_COLS : BG_GS_ROWS, .p = A, .ld = lda};
        j.b = (bg_gsrc){.kind = tb ? BG_GS_COLS : BG_GS_ROWS, .p = B, .ld = ldb};
        j.ep = (bg_gemm_ep){.overwrite = true, .bias = bias, .res = res, .ldr = n, .act = act};
        CHECK_OK(&ctx, bg_fast_gemm_job(&ctx, &j));
    } else {
        CHECK_OK(&ctx, bg_fast_gemm_f32(&ctx, ta, tb, m, n, k, A, lda, B, ldb, C, ldc));
    }
    int bad = 0;
    for (int64_t i = 0; i < m && bad < 3; i++)
        for (int64_t j = 0; j < n && bad < 3; j++) {
            double acc = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                double a = ta ? A[p * lda + i] : A[i * lda + p], b = tb ? B[j * ldb + p] : B[p * ldb + j];
                acc += a * b, mag += fabs(a * b);
            }
            double want = acc + C0[i * ldc + j];
            if (ep) {
                want = acc + bias[j] + res[i * n + j];
                if (act == 1) want = want > 0 ? want : 0;
                if (act == 2) want = 1.0 / (1.0 + exp(-want));
            }
            double got = C[i * ldc + j];
            if (!(fabs(got - want) <= 1e-5 * (mag + 1.0))) {
                CHECK(false, "%s ta=%d tb=%d %lldx%lldx%lld%s: C[%lld,%lld] = %.7g, want %.7g", bg_cpu_isa_name(isa),
                      ta, tb, (long long)m, (long long)n, (long long)k, ep ? " (epilogue)" : "", (long long)i,
                      (long long)j, got, want);
                bad++;
            }
        }
    /* Padding between rows of C is never written. */
    for (int64_t i = 0; i < m && !bad; i++)
        for (int64_t j = n; j < ldc; j++)
            if (memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float))) {
                CHECK(false, "%s %lldx%lldx%lld: wrote C's padding at [%lld,%lld]", bg_cpu_isa_name(isa),
                      (long long)m, (long long)n, (long long)k, (long long)i, (long long)j);
                bad++;
                break;
            }
    free(A), free(B), free(C), free(C0), free(bias), free(res);
    bg_ctx_free(&ctx);
    return bad;
}

BG_TEST(fast_gemm_vs_naive)
{
    /* m, n, k: tiny, ragged against every tile (4/6/12 x 8/16/32), k past a
     * 256 k-block, m past a 144-row block; the last six are big enough to
     * fork threads: tall, wide (m one tile, n many), deep (k >> m, n), tall
     * with one row block cut into column slabs, and three row blocks with
     * B packed by the threads together, then rows x column slabs. */
    static const int64_t sz[][3] = {{1, 1, 1},    {3, 13, 17},    {13, 17, 3},    {25, 33, 257},
                                    {7, 70, 40},  {151, 45, 300}, {200, 130, 90}, {9, 700, 60},
                                    {20, 37, 5000}, {290, 64, 27}, {130, 200, 300}, {400, 100, 70},
                                    {64, 96, 600}};
    int fails = 0;
    for (int isa = 0; isa < BG_NISA; isa++) {
        if (!bg_cpu_isa_runs((bg_cpu_isa)isa)) continue;
        for (size_t c = 0; c < sizeof sz / sizeof sz[0]; c++)
            for (int t = 0; t < 4; t++)
                for (int ep = 0; ep < 2; ep++)
                    fails += check_gemm(tc, (bg_cpu_isa)isa, t & 1, t >> 1, sz[c][0], sz[c][1], sz[c][2], ep);
    }
    CHECK(fails == 0, "%d mismatches", fails);
}
