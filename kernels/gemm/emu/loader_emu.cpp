// Host emulation of the conv/GEMM loaders, step 2 of 2 (see mkemu.py): runs
// every thread's load_vec / get_a / get_b exactly as the kernels would,
// rebuilds the shared tiles (poisoned first, so an unwritten element is
// caught), multiplies them in double, scatters through out_row, and compares
// with a direct convolution / GEMM. Every output element must be written
// exactly once. Covers fprop, dgrad (stride phases), wgrad, channel padding
// (with the split-K reduce's index maps), a split-K slice starting mid-way,
// all tile configs and GEMM transposes. Values are small integers, so the
// comparison is exact. Not built by make: a developer tool.
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cmath>
#include <string>
#include "gemm/igemm_main.cuh"
#include "conv/conv_problem.cuh"
#include "gemm/gemm_problem.cuh"

unsigned char *bgk::g_smem;
using namespace bgk;

template <int T_, int BM_, int BN_, int BK_> struct Cfg {
    static constexpr int THREADS = T_, BM = BM_, BN = BN_, BK = BK_;
};

static uint16_t *alloc16(size_t n) {
    void *p = aligned_alloc(64, ((n * 2 + 63) / 64) * 64 + 64);
    return (uint16_t *)p;
}

struct Conv { int n, h, w, c, co, kh, kw, sh, sw, ph, pw, dh, dw, groups; };

static int fails = 0;

// One implicit-GEMM "launch" in emulation; out: the output index space.
template <class C, template <class, class, class> class Prob>
static void run(const BgIgemmParams &p, int gx, int gy, int gz, bool vec, std::vector<double> &out, std::vector<int> &cnt, const char *what)
{
    using P = Prob<BgGeo, uint16_t, C>;
    const int BM = C::BM, BN = C::BN, BK = C::BK, NT = C::THREADS;
    std::vector<uint16_t> smem_store(2 * (BM + BN) * BK + 64);
    uint16_t *As = alloc16((BM + BN) * BK), *Bs = As + BM * BK;
    unsigned char *base = (unsigned char *)As;
    for (int z = 0; z < gz; z++)
        for (int bx = 0; bx < gx; bx++)
            for (int by = 0; by < gy; by++) {
                const int bm0 = bx * BM, bn0 = by * BN;
                std::vector<P> pr;
                for (int t = 0; t < NT; t++) pr.emplace_back(p, p.geo, bm0, bn0, z);
                if (!pr[0].active()) continue;
                std::vector<double> acc(BM * BN, 0.0);
                if constexpr (C::BK >= 16) if (vec) {
                    for (int t = 0; t < NT; t++) pr[t].init_vec(t);
                    const int KT = pr[0].ktiles_vec();
                    for (int kt = 0; kt < KT; kt++) {
                        if (kt == KT / 2 && kt > 0) { // a split-K slice starts mid-way: fresh state
                            pr.clear();
                            for (int t = 0; t < NT; t++) pr.emplace_back(p, p.geo, bm0, bn0, z);
                            for (int t = 0; t < NT; t++) pr[t].init_vec(t);
                        }
                        // emulated shared memory: As and Bs share one arena (offsets from As)
                        g_smem = base;
                        for (int i = 0; i < BM * BK; i++) As[i] = 0xFFFF;
                        for (int i = 0; i < BN * BK; i++) Bs[i] = 0xFFFF;
                        for (int t = 0; t < NT; t++) pr[t].load_vec(kt, As, Bs, t);
                        for (int i = 0; i < BM * BK; i++) if (As[i] == 0xFFFF) { printf("%s: A tile element %d unwritten\n", what, i); fails++; return; }
                        for (int i = 0; i < BN * BK; i++) if (Bs[i] == 0xFFFF) { printf("%s: B tile element %d unwritten\n", what, i); fails++; return; }
                        for (int m = 0; m < BM; m++)
                            for (int n = 0; n < BN; n++) {
                                double s = 0;
                                for (int k = 0; k < BK; k++) {
                                    double a = P::A_KC ? As[tile_off<C::BK / 8>(m, k)] : As[tile_off<C::BM / 8>(k, m)];
                                    double b = P::B_KC ? Bs[tile_off<C::BK / 8>(n, k)] : Bs[tile_off<C::BN / 8>(k, n)];
                                    s += a * b;
                                }
                                acc[m * BN + n] += s;
                            }
                    }
                }
                if (!vec) {
                    const int KT = pr[0].ktiles_scalar();
                    for (int kt = 0; kt < KT; kt++)
                        for (int m = 0; m < BM; m++)
                            for (int n = 0; n < BN; n++) {
                                double s = 0;
                                for (int k = 0; k < BK; k++) s += (double)pr[0].get_a(bm0 + m, kt * BK + k) * pr[0].get_b(kt * BK + k, bn0 + n);
                                acc[m * BN + n] += s;
                            }
                }
                const int N = pr[0].n_extent();
                for (int m = 0; m < BM; m++) {
                    long long row = pr[0].out_row(bm0 + m);
                    if (row < 0) continue;
                    for (int n = 0; n < BN; n++) {
                        if (bn0 + n >= N) continue;
                        long long at = row + bn0 + n;
                        if (at < 0 || at >= (long long)out.size()) { printf("%s: output index %lld out of range\n", what, at); fails++; return; }
                        out[at] += acc[m * BN + n];
                        cnt[at]++;
                    }
                }
            }
    free(As);
}

static void fill(uint16_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) { seed = seed * 1103515245u + 12345u; p[i] = 1 + (seed >> 16) % 5; }
}

// pad_k of conv.cu: dst[a][b][c][d] = (b < B && d < D) ? src[a][b][c][d] : 0
static void pad(const uint16_t *src, uint16_t *dst, long long A, int B, int Bp, int Cc, int D, int Dp) {
    for (long long a = 0; a < A; a++) for (int b = 0; b < Bp; b++) for (int c = 0; c < Cc; c++) for (int d = 0; d < Dp; d++)
        dst[((a * Bp + b) * Cc + c) * Dp + d] = (b < B && d < D) ? src[((a * B + b) * Cc + c) * D + d] : 0;
}

static int r8(int v) { return (v + 7) / 8 * 8; }

template <class C>
static void check_conv(const Conv &s, bool vec, bool padded, const char *cname)
{
    const int eh = s.dh * (s.kh - 1) + 1, ew = s.dw * (s.kw - 1) + 1;
    const int ho = (s.h + 2 * s.ph - eh) / s.sh + 1, wo = (s.w + 2 * s.pw - ew) / s.sw + 1;
    const int cg = s.c / s.groups, cog = s.co / s.groups, taps = s.kh * s.kw;
    const long long nx = (long long)s.n * s.h * s.w * s.c, ny = (long long)s.n * ho * wo * s.co, nw = (long long)s.co * taps * cg;
    uint16_t *x = alloc16(nx), *w = alloc16(nw), *dy = alloc16(ny);
    fill(x, nx, 1), fill(w, nw, 2), fill(dy, ny, 3);
    // references
    std::vector<double> y_ref(ny, 0), dx_ref(nx, 0), dw_ref(nw, 0);
    for (int img = 0; img < s.n; img++) for (int oy = 0; oy < ho; oy++) for (int ox = 0; ox < wo; ox++) for (int o = 0; o < s.co; o++) {
        int grp = o / cog;
        long long yi = (((long long)img * ho + oy) * wo + ox) * s.co + o;
        for (int ky = 0; ky < s.kh; ky++) for (int kx = 0; kx < s.kw; kx++) {
            int iy = oy * s.sh - s.ph + ky * s.dh, ix = ox * s.sw - s.pw + kx * s.dw;
            if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
            for (int c = 0; c < cg; c++) {
                long long xi = (((long long)img * s.h + iy) * s.w + ix) * s.c + grp * cg + c;
                long long wi = (((long long)o * s.kh + ky) * s.kw + kx) * cg + c;
                y_ref[yi] += (double)x[xi] * w[wi];
                dx_ref[xi] += (double)dy[yi] * w[wi];
                dw_ref[wi] += (double)dy[yi] * x[xi];
            }
        }
    }
    const int cgp = padded ? r8(cg) : cg, cogp = padded ? r8(cog) : cog;
    BgGeo g = {};
    g.n = s.n, g.h = s.h, g.w = s.w, g.kh = s.kh, g.kw = s.kw, g.ho = ho, g.wo = wo;
    g.sh = s.sh, g.sw = s.sw, g.ph = s.ph, g.pw = s.pw, g.dh = s.dh, g.dw = s.dw, g.batch = s.groups;
    char what[256];
    const int BM = C::BM, BN = C::BN;
    // ---- fprop ----
    {
        BgGeo f = g;
        f.cg = cgp, f.c = s.groups * cgp, f.cog = cog, f.co = s.co, f.oc = s.co, f.ocg = cog;
        uint16_t *xa = x, *wa = w;
        if (padded) {
            xa = alloc16((long long)s.n * s.h * s.w * s.groups * cgp);
            wa = alloc16((long long)s.co * taps * cgp);
            pad(x, xa, (long long)s.n * s.h * s.w, s.groups, s.groups, 1, cg, cgp);
            pad(w, wa, 1, s.co, s.co, taps, cg, cgp);
        }
        BgIgemmParams p = {};
        p.geo = f, p.a = xa, p.b = wa, p.splits = 1;
        std::vector<double> out(ny, 0);
        std::vector<int> cnt(ny, 0);
        long long M = (long long)s.n * ho * wo;
        snprintf(what, sizeof what, "fprop %s %s%s", cname, vec ? "vec" : "scalar", padded ? " padded" : "");
        run<C, ConvFprop>(p, (int)((M + BM - 1) / BM), (cog + BN - 1) / BN, s.groups, vec, out, cnt, what);
        int bad = 0;
        for (long long i = 0; i < ny; i++) if (cnt[i] != 1 || out[i] != y_ref[i]) { if (bad++ < 3) printf("%s: y[%lld] = %g (x%d), want %g\n", what, i, out[i], cnt[i], y_ref[i]); }
        if (bad) fails++;
        if (padded) free(xa), free(wa);
    }
    // ---- dgrad ----
    {
        BgGeo d = g;
        d.cg = cgp, d.c = s.groups * cgp, d.cog = cogp, d.co = s.groups * cogp, d.oc = s.c, d.ocg = cg;
        uint16_t *dya = dy, *wa = w;
        if (padded) {
            dya = alloc16((long long)s.n * ho * wo * s.groups * cogp);
            wa = alloc16((long long)s.groups * cogp * taps * cgp);
            pad(dy, dya, (long long)s.n * ho * wo, s.groups, s.groups, 1, cog, cogp);
            pad(w, wa, s.groups, cog, cogp, taps, cg, cgp);
        }
        BgIgemmParams p = {};
        p.geo = d, p.a = dya, p.b = wa, p.splits = 1;
        std::vector<double> out(nx, 0);
        std::vector<int> cnt(nx, 0);
        long long M = (long long)s.n * ((s.h + s.sh - 1) / s.sh) * ((s.w + s.sw - 1) / s.sw);
        snprintf(what, sizeof what, "dgrad %s %s%s", cname, vec ? "vec" : "scalar", padded ? " padded" : "");
        run<C, ConvDgrad>(p, (int)((M + BM - 1) / BM), (cgp + BN - 1) / BN, s.groups * s.sh * s.sw, vec, out, cnt, what);
        int bad = 0;
        for (long long i = 0; i < nx; i++) if (cnt[i] != 1 || out[i] != dx_ref[i]) { if (bad++ < 3) printf("%s: dx[%lld] = %g (x%d), want %g\n", what, i, out[i], cnt[i], dx_ref[i]); }
        if (bad) fails++;
        if (padded) free(dya), free(wa);
    }
    // ---- wgrad ---- (padded: through the workspace layout + the reduce's index maps)
    {
        BgGeo d = g;
        d.cg = cgp, d.c = s.groups * cgp, d.cog = cogp, d.co = s.groups * cogp, d.oc = d.co, d.ocg = d.cog;
        uint16_t *dya = dy, *xa = x;
        if (padded) {
            dya = alloc16((long long)s.n * ho * wo * s.groups * cogp);
            xa = alloc16((long long)s.n * s.h * s.w * s.groups * cgp);
            pad(dy, dya, (long long)s.n * ho * wo, s.groups, s.groups, 1, cog, cogp);
            pad(x, xa, (long long)s.n * s.h * s.w, s.groups, s.groups, 1, cg, cgp);
        }
        BgIgemmParams p = {};
        p.geo = d, p.a = dya, p.b = xa, p.splits = 1;
        const long long wsn = (long long)s.groups * cogp * taps * cgp;
        std::vector<double> out(wsn, 0);
        std::vector<int> cnt(wsn, 0);
        snprintf(what, sizeof what, "wgrad %s %s%s", cname, vec ? "vec" : "scalar", padded ? " padded" : "");
        run<C, ConvWgrad>(p, (cogp + BM - 1) / BM, (taps * cgp + BN - 1) / BN, s.groups, vec, out, cnt, what);
        int bad = 0;
        for (long long i = 0; i < nw; i++) {
            int r = (int)(i / (taps * cg)), col = (int)(i % (taps * cg));
            int wr = (r / cog) * cogp + r % cog, wc = (col / cg) * cgp + col % cg; // PadMap
            long long at = (long long)wr * taps * cgp + wc;
            if (cnt[at] != 1 || out[at] != dw_ref[i]) { if (bad++ < 3) printf("%s: dw[%lld] = %g (x%d), want %g\n", what, i, out[at], cnt[at], dw_ref[i]); }
        }
        if (bad) fails++;
        if (padded) free(dya), free(xa);
    }
    free(x), free(w), free(dy);
}

template <class G, class T, class C> using GemmNN = GemmProb<G, T, C, false, false>;
template <class G, class T, class C> using GemmNT = GemmProb<G, T, C, false, true>;
template <class G, class T, class C> using GemmTN = GemmProb<G, T, C, true, false>;
template <class G, class T, class C> using GemmTT = GemmProb<G, T, C, true, true>;

template <class C>
static void check_gemm(int M, int N, int K, int batch, bool ta, bool tb, bool vec, const char *cname)
{
    long long lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
    if (vec) lda = (lda + 7) / 8 * 8, ldb = (ldb + 7) / 8 * 8;
    long long sA = lda * (ta ? K : M), sB = ldb * (tb ? N : K), sC = ldc * M;
    uint16_t *A = alloc16(sA * batch), *B = alloc16(sB * batch);
    fill(A, sA * batch, 5), fill(B, sB * batch, 6);
    BgIgemmParams p = {};
    p.geo.M = M, p.geo.N = N, p.geo.K = K, p.geo.lda = lda, p.geo.ldb = ldb, p.geo.ldc = ldc, p.geo.sA = sA, p.geo.sB = sB, p.geo.sC = sC;
    p.a = A, p.b = B, p.splits = 1;
    std::vector<double> out(sC * batch, 0);
    std::vector<int> cnt(sC * batch, 0);
    char what[128];
    snprintf(what, sizeof what, "gemm %dx%dx%d b%d ta%d tb%d %s %s", M, N, K, batch, ta, tb, cname, vec ? "vec" : "scalar");
    int gx = (M + C::BM - 1) / C::BM, gy = (N + C::BN - 1) / C::BN;
    if (!ta && !tb) run<C, GemmNN>(p, gx, gy, batch, vec, out, cnt, what);
    if (!ta && tb) run<C, GemmNT>(p, gx, gy, batch, vec, out, cnt, what);
    if (ta && !tb) run<C, GemmTN>(p, gx, gy, batch, vec, out, cnt, what);
    if (ta && tb) run<C, GemmTT>(p, gx, gy, batch, vec, out, cnt, what);
    int bad = 0;
    for (int b = 0; b < batch; b++) for (int m = 0; m < M; m++) for (int n = 0; n < N; n++) {
        double r = 0;
        for (int k = 0; k < K; k++) r += (double)(ta ? A[b * sA + k * lda + m] : A[b * sA + m * lda + k]) * (tb ? B[b * sB + n * ldb + k] : B[b * sB + k * ldb + n]);
        long long at = b * sC + m * ldc + n;
        if (cnt[at] != 1 || out[at] != r) { if (bad++ < 3) printf("%s: C[%lld] = %g (x%d), want %g\n", what, at, out[at], cnt[at], r); }
    }
    if (bad) fails++;
    free(A), free(B);
}

using TcL = Cfg<256, 128, 128, 32>;
using TcW = Cfg<128, 128, 64, 32>;
using TcS = Cfg<128, 64, 64, 32>;
using Simt = Cfg<256, 64, 64, 8>;

int main()
{
    try {
    const Conv cases[] = {
        // n h w c co kh kw sh sw ph pw dh dw groups
        {2, 5, 5, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {2, 6, 6, 3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1},
        {2, 5, 5, 4, 3, 1, 1, 2, 2, 0, 0, 1, 1, 1},
        {1, 3, 3, 4, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2},
        {1, 8, 8, 3, 2, 7, 7, 2, 2, 3, 3, 1, 1, 1},
        {1, 7, 7, 2, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1},
        {2, 5, 5, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4},
        {2, 7, 5, 3, 2, 3, 2, 2, 1, 1, 0, 1, 1, 1},
        {2, 9, 7, 16, 24, 3, 3, 2, 1, 1, 1, 1, 1, 1},   // aligned: cp.async path without padding
        {1, 6, 6, 32, 16, 3, 3, 2, 2, 1, 1, 2, 2, 2},   // aligned, dilated strided grouped
        {3, 7, 7, 16, 32, 1, 1, 2, 2, 0, 0, 1, 1, 1},   // 1x1 stride 2 aligned
        {2, 6, 5, 43, 86, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // SENet w0.67 channels
        {1, 9, 9, 96, 96, 3, 3, 1, 1, 1, 1, 1, 1, 4},   // ResNeSt groups 4 (24 per group)
        {1, 5, 5, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 8},   // cardinality 4 x radix 2
        {1, 11, 11, 8, 16, 7, 7, 2, 2, 3, 3, 1, 1, 1},  // 7x7 s2 p3, aligned
        {2, 4, 4, 40, 24, 3, 3, 3, 2, 1, 0, 1, 1, 1},   // stride 3x2
    };
    for (const Conv &c : cases) {
        int cg = c.c / c.groups, cog = c.co / c.groups;
        bool aligned = cg % 8 == 0 && cog % 8 == 0;
        check_conv<TcS>(c, false, false, "64x64x32");
        check_conv<Simt>(c, false, false, "simt64x64x8");
        if (aligned) {
            check_conv<TcL>(c, true, false, "128x128x32");
            check_conv<TcW>(c, true, false, "128x64x32");
            check_conv<TcS>(c, true, false, "64x64x32");
        }
        check_conv<TcS>(c, true, true, "64x64x32");
        check_conv<TcL>(c, true, true, "128x128x32");
        printf("conv n%d %dx%d c%d co%d k%dx%d s%dx%d p%dx%d d%dx%d g%d: %s\n", c.n, c.h, c.w, c.c, c.co, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.groups, fails ? "FAILURES so far" : "ok");
    }
    for (int ta = 0; ta < 2; ta++) for (int tb = 0; tb < 2; tb++) {
        check_gemm<TcS>(37, 45, 70, 2, ta, tb, false, "64x64x32");
        check_gemm<Simt>(37, 45, 70, 1, ta, tb, false, "simt");
        check_gemm<TcS>(37, 45, 70, 2, ta, tb, true, "64x64x32");
        check_gemm<TcL>(130, 200, 77, 1, ta, tb, true, "128x128x32");
        check_gemm<TcW>(130, 200, 77, 2, ta, tb, true, "128x64x32");
        check_gemm<TcS>(5, 3, 5, 1, ta, tb, true, "64x64x32");
    }
    } catch (const char *e) { printf("exception: %s\n", e); return 2; }
    printf("%s (%d failures)\n", fails ? "FAIL" : "ALL OK", fails);
    return fails != 0;
}
