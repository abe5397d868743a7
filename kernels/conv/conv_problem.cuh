// The three convolution passes as implicit-GEMM problems (see
// kernels/gemm/igemm_main.cuh for the engine). NHWC activations, OHWI
// weights {co, kh, kw, cg}; per group g (blockIdx.z) the passes are
//
//  fprop  y[pix, g*cog + o]          M = n*ho*wo pixels, N = cog, K = kh*kw*cg
//         A[pix][(ky,kx,c)] = x[n, oy*sh-ph+ky*dh, ox*sw-pw+kx*dw, g*cg+c]  (0 outside)
//         B[(ky,kx,c)][o]   = w[g*cog+o, ky, kx, c]
//  dgrad  dx[pix, g*cg + c]          per stride phase, see below; N = cg, K = taps*cog
//         A[pix][(tap,o)]   = dy[n, oy, ox, g*cog+o] where oy*sh = iy+ph-ky*dh
//         B[(tap,o)][c]     = w[g*cog+o, ky, kx, c]
//  wgrad  dw[g*cog+o, (ky,kx,c)]     M = cog, N = kh*kw*cg, K = n*ho*wo pixels
//         A[o][pix]         = dy[pix, g*cog+o]
//         B[pix][(ky,kx,c)] = x[n, oy*sh-ph+ky*dh, ox*sw-pw+kx*dw, g*cg+c]
//
// No im2col buffer: the loaders compute these addresses tile by tile.
//
// K tiling. The cp.async path (VEC) needs a 16-byte chunk of 8 channels to
// be contiguous in memory, so its k-tiles never cross a tap: tile kt covers
// tap kt / CT and channels (kt % CT)*BK ... +BK of it (CT = ceil(channels/BK),
// the tail of the last one zero-filled). The scalar path walks the flat K.
//
// Strided dgrad. An input pixel iy only receives from taps with
// (iy + ph - ky*dh) divisible by sh. Instead of multiplying zeros, the input
// pixels are split into sh*sw phases (iy % sh, ix % sw); within a phase the
// valid taps are a fixed arithmetic progression ky0, ky0+sty, ... (sty =
// sh/gcd(sh, dh)), so each phase is a dense GEMM over only its taps. Phases
// ride on blockIdx.z; a phase with no valid tap still runs its (empty) K loop
// so its pixels get the epilogue (zeros, or "+= 0").
#ifndef BG_CONV_PROBLEM_CUH
#define BG_CONV_PROBLEM_CUH
#include "../gemm/igemm_main.cuh"

namespace bgk {

// ---- forward -------------------------------------------------------------------------
template <class G, class T, class Cfg>
struct ConvFprop {
    using Geo = G;
    using OutT = T;
    static constexpr bool A_KC = true, B_KC = true;
    static constexpr int BK = Cfg::BK;
    static constexpr int NVA = vec_slots(Cfg::THREADS, BK, Cfg::BM, true);
    static constexpr int NVB = vec_slots(Cfg::THREADS, BK, Cfg::BN, true);

    const G &g;
    const T *x, *w;
    int grp, bm0, bn0;
    // cp.async state: per A row (output pixel) the image's first pixel index
    // (-1: no such row) and the top-left input coordinate; per B row (output
    // channel) the offset of its weights (-1: no such channel).
    int a_img[NVA], a_iy[NVA], a_ix[NVA];
    long long b_off[NVB];
    // The k-tile last loaded and its decomposition (tap ky/kx, channel block
    // cb): tiles are loaded in order, so the next one is one increment away
    // and the hot loop needs no integer division.
    int cur_kt, cur_ky, cur_kx, cur_cb;

    __device__ ConvFprop(const BgIgemmParams &p, const G &g_, int bm0_, int bn0_, int zb)
        : g(g_), x((const T *)p.a), w((const T *)p.b), grp(zb), bm0(bm0_), bn0(bn0_)
    {
    }
    __device__ bool active() const { return true; }
    __device__ int m_extent() const { return g.n * g.ho * g.wo; }
    __device__ int k_flat() const { return g.kh * g.kw * g.cg; }
    __device__ int ctiles() const { return (g.cg + BK - 1) / BK; }
    __device__ int ktiles_vec() const { return g.kh * g.kw * ctiles(); }
    __device__ int ktiles_scalar() const { return (k_flat() + BK - 1) / BK; }

    __device__ void init_vec(int tid)
    {
        using MapA = TileMap<Cfg::THREADS, BK, Cfg::BM, true>;
        using MapB = TileMap<Cfg::THREADS, BK, Cfg::BN, true>;
        const int M = m_extent(), hw = g.ho * g.wo;
#pragma unroll
        for (int i = 0; i < NVA; i++) {
            const int m = bm0 + MapA::vrow(tid, i);
            const int img = m / hw, r = m - img * hw, oy = r / g.wo, ox = r - oy * g.wo;
            a_img[i] = m < M ? img * g.h * g.w : -1;
            a_iy[i] = oy * g.sh - g.ph;
            a_ix[i] = ox * g.sw - g.pw;
        }
#pragma unroll
        for (int i = 0; i < NVB; i++) {
            const int o = bn0 + MapB::vrow(tid, i);
            b_off[i] = o < g.cog ? (long long)(grp * g.cog + o) * k_flat() : -1;
        }
        cur_kt = -2;
    }

    __device__ void seek(int kt)
    {
        const int ct = ctiles();
        if (kt == cur_kt + 1) {
            if (++cur_cb == ct) {
                cur_cb = 0;
                if (++cur_kx == g.kw) cur_kx = 0, cur_ky++;
            }
        } else {
            const int tap = kt / ct;
            cur_cb = kt - tap * ct, cur_ky = tap / g.kw, cur_kx = tap - cur_ky * g.kw;
        }
        cur_kt = kt;
    }

    __device__ void load_vec(int kt, bg_f16 *As, bg_f16 *Bs, int tid)
    {
        using MapA = TileMap<Cfg::THREADS, BK, Cfg::BM, true>;
        using MapB = TileMap<Cfg::THREADS, BK, Cfg::BN, true>;
        seek(kt);
        const int ky = cur_ky, kx = cur_kx, tap = ky * g.kw + kx, c = cur_cb * BK + MapA::vchunk(tid) * 8;
        const bool cok = c < g.cg;
#pragma unroll
        for (int i = 0; i < NVA; i++) {
            const int iy = a_iy[i] + ky * g.dh, ix = a_ix[i] + kx * g.dw;
            const bool ok = cok && a_img[i] >= 0 && (unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w;
            const T *src = ok ? x + (long long)(a_img[i] + iy * g.w + ix) * g.c + grp * g.cg + c : x;
            const int row = MapA::vrow(tid, i);
            cp_async16(smem_addr(As + MapA::off(row, MapA::vchunk(tid) * 8)), src, ok ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < NVB; i++) {
            const bool ok = cok && b_off[i] >= 0;
            const T *src = ok ? w + b_off[i] + tap * g.cg + c : w;
            const int row = MapB::vrow(tid, i);
            cp_async16(smem_addr(Bs + MapB::off(row, MapB::vchunk(tid) * 8)), src, ok ? 16 : 0);
        }
    }

    __device__ T get_a(int m, int k) const
    {
        if (m >= m_extent() || k >= k_flat()) return zero_of<T>();
        const int hw = g.ho * g.wo, img = m / hw, r = m - img * hw, oy = r / g.wo, ox = r - oy * g.wo;
        const int tap = k / g.cg, c = k - tap * g.cg, ky = tap / g.kw, kx = tap - ky * g.kw;
        const int iy = oy * g.sh - g.ph + ky * g.dh, ix = ox * g.sw - g.pw + kx * g.dw;
        if ((unsigned)iy >= (unsigned)g.h || (unsigned)ix >= (unsigned)g.w) return zero_of<T>();
        return x[(long long)((img * g.h + iy) * g.w + ix) * g.c + grp * g.cg + c];
    }
    __device__ T get_b(int k, int o) const
    {
        if (k >= k_flat() || o >= g.cog) return zero_of<T>();
        return w[(long long)(grp * g.cog + o) * k_flat() + k];
    }
    __device__ int n_extent() const { return g.cog; }
    __device__ int col_base() const { return grp * g.ocg; }
    __device__ long long out_row(int m) const
    {
        return m < m_extent() ? (long long)m * g.oc + grp * g.ocg : -1;
    }
};

// ---- backward data (per stride phase) ---------------------------------------------------
template <class G, class T, class Cfg>
struct ConvDgrad {
    using Geo = G;
    using OutT = T;
    static constexpr bool A_KC = true, B_KC = false;
    static constexpr int BK = Cfg::BK;
    static constexpr int NVA = vec_slots(Cfg::THREADS, BK, Cfg::BM, true);
    static constexpr int NVB = vec_slots(Cfg::THREADS, BK, Cfg::BN, false);

    const G &g;
    const T *dy, *w;
    int grp, bm0, bn0;
    int ry, rx;        // this block's phase: input pixels with iy % sh == ry, ix % sw == rx
    int hp, wp, mp;    // the phase's pixel grid and pixel count
    int ky0, nky, sty, oys; // valid taps ky0 + i*sty, i < nky; oy steps by -oys per i
    int kx0, nkx, stx, oxs;
    int a_img[NVA], a_oy[NVA], a_ox[NVA]; // per A row: image base (-1: none), oy/ox at tap i=0
    int cur_kt, cur_ti, cur_tj, cur_cb;   // the k-tile last loaded, decomposed (see ConvFprop)

    __device__ static int gcd(int a, int b)
    {
        while (b) {
            int t = a % b;
            a = b, b = t;
        }
        return a;
    }
    // First tap k0 < k with (r + pad - k0*dil) % s == 0; the progression step;
    // the count; and how far the output coordinate moves per step.
    __device__ static void taps(int r, int pad, int dil, int s, int k, int &k0, int &cnt, int &step, int &ostep)
    {
        step = s / gcd(s, dil);
        ostep = step * dil / s;
        k0 = 0;
        while (k0 < step && k0 < k && (r + pad - k0 * dil) % s != 0) k0++;
        cnt = k0 < k && (r + pad - k0 * dil) % s == 0 ? (k - 1 - k0) / step + 1 : 0;
    }

    __device__ ConvDgrad(const BgIgemmParams &p, const G &g_, int bm0_, int bn0_, int zb)
        : g(g_), dy((const T *)p.a), w((const T *)p.b), bm0(bm0_), bn0(bn0_)
    {
        const int phases = g.sh * g.sw, ph_ = zb % phases;
        grp = zb / phases;
        ry = ph_ / g.sw, rx = ph_ - ry * g.sw;
        hp = ry < g.h ? (g.h - ry + g.sh - 1) / g.sh : 0;
        wp = rx < g.w ? (g.w - rx + g.sw - 1) / g.sw : 0;
        mp = g.n * hp * wp;
        taps(ry, g.ph, g.dh, g.sh, g.kh, ky0, nky, sty, oys);
        taps(rx, g.pw, g.dw, g.sw, g.kw, kx0, nkx, stx, oxs);
    }
    __device__ bool active() const { return bm0 < mp; }
    __device__ int k_flat() const { return nky * nkx * g.cog; }
    __device__ int ctiles() const { return (g.cog + BK - 1) / BK; }
    __device__ int ktiles_vec() const { return nky * nkx * ctiles(); }
    __device__ int ktiles_scalar() const { return (k_flat() + BK - 1) / BK; }

    // Phase pixel m -> image, input coordinates.
    __device__ void pixel(int m, int &img, int &iy, int &ix) const
    {
        const int hw = hp * wp, r = m - (img = m / hw) * hw, jy = r / wp, jx = r - jy * wp;
        iy = ry + jy * g.sh, ix = rx + jx * g.sw;
    }

    __device__ void init_vec(int tid)
    {
        using MapA = TileMap<Cfg::THREADS, BK, Cfg::BM, true>;
#pragma unroll
        for (int i = 0; i < NVA; i++) {
            const int m = bm0 + MapA::vrow(tid, i);
            int img, iy, ix;
            pixel(m, img, iy, ix);
            a_img[i] = m < mp ? img * g.ho * g.wo : -1;
            // exact: (iy + ph - ky0*dh) is a multiple of sh by the choice of ky0
            a_oy[i] = (iy + g.ph - ky0 * g.dh) / g.sh;
            a_ox[i] = (ix + g.pw - kx0 * g.dw) / g.sw;
        }
        cur_kt = -2;
    }

    __device__ void seek(int kt)
    {
        const int ct = ctiles();
        if (kt == cur_kt + 1) {
            if (++cur_cb == ct) {
                cur_cb = 0;
                if (++cur_tj == nkx) cur_tj = 0, cur_ti++;
            }
        } else {
            const int tap = kt / ct;
            cur_cb = kt - tap * ct, cur_ti = tap / nkx, cur_tj = tap - cur_ti * nkx;
        }
        cur_kt = kt;
    }

    __device__ void load_vec(int kt, bg_f16 *As, bg_f16 *Bs, int tid)
    {
        using MapA = TileMap<Cfg::THREADS, BK, Cfg::BM, true>;
        using MapB = TileMap<Cfg::THREADS, BK, Cfg::BN, false>;
        seek(kt);
        const int ti = cur_ti, tj = cur_tj, o0 = cur_cb * BK;
        const int ky = ky0 + ti * sty, kx = kx0 + tj * stx;
        // A: rows = phase pixels, chunks along o (dy's channels)
        const int oa = o0 + MapA::vchunk(tid) * 8;
#pragma unroll
        for (int i = 0; i < NVA; i++) {
            const int oy = a_oy[i] - ti * oys, ox = a_ox[i] - tj * oxs;
            const bool ok = oa < g.cog && a_img[i] >= 0 && (unsigned)oy < (unsigned)g.ho && (unsigned)ox < (unsigned)g.wo;
            const T *src = ok ? dy + (long long)(a_img[i] + oy * g.wo + ox) * g.co + grp * g.cog + oa : dy;
            const int row = MapA::vrow(tid, i);
            cp_async16(smem_addr(As + MapA::off(row, MapA::vchunk(tid) * 8)), src, ok ? 16 : 0);
        }
        // B: rows = k (o), chunks along n (the input channel c)
        const int c = bn0 + MapB::vchunk(tid) * 8;
#pragma unroll
        for (int i = 0; i < NVB; i++) {
            const int row = MapB::vrow(tid, i), o = o0 + row;
            const bool ok = o < g.cog && c < g.cg;
            const T *src = ok ? w + ((long long)((grp * g.cog + o) * g.kh + ky) * g.kw + kx) * g.cg + c : w;
            cp_async16(smem_addr(Bs + MapB::off(row, MapB::vchunk(tid) * 8)), src, ok ? 16 : 0);
        }
    }

    __device__ T get_a(int m, int k) const
    {
        if (m >= mp || k >= k_flat()) return zero_of<T>();
        const int tap = k / g.cog, o = k - tap * g.cog, ti = tap / nkx, tj = tap - ti * nkx;
        int img, iy, ix;
        pixel(m, img, iy, ix);
        const int oy = (iy + g.ph - (ky0 + ti * sty) * g.dh) / g.sh;
        const int ox = (ix + g.pw - (kx0 + tj * stx) * g.dw) / g.sw;
        if ((unsigned)oy >= (unsigned)g.ho || (unsigned)ox >= (unsigned)g.wo) return zero_of<T>();
        return dy[(long long)((img * g.ho + oy) * g.wo + ox) * g.co + grp * g.cog + o];
    }
    __device__ T get_b(int k, int c) const
    {
        if (k >= k_flat() || c >= g.cg) return zero_of<T>();
        const int tap = k / g.cog, o = k - tap * g.cog, ti = tap / nkx, tj = tap - ti * nkx;
        const int ky = ky0 + ti * sty, kx = kx0 + tj * stx;
        return w[((long long)((grp * g.cog + o) * g.kh + ky) * g.kw + kx) * g.cg + c];
    }
    __device__ int n_extent() const { return g.ocg; }
    __device__ int col_base() const { return grp * g.ocg; }
    __device__ long long out_row(int m) const
    {
        if (m >= mp) return -1;
        int img, iy, ix;
        pixel(m, img, iy, ix);
        return (long long)((img * g.h + iy) * g.w + ix) * g.oc + grp * g.ocg;
    }
};

// ---- backward weights --------------------------------------------------------------------
template <class G, class T, class Cfg>
struct ConvWgrad {
    using Geo = G;
    using OutT = T;
    static constexpr bool A_KC = false, B_KC = false;
    static constexpr int BK = Cfg::BK;

    const G &g;
    const T *dy, *x;
    int grp, bm0, bn0;
    // cp.async state: this thread's A chunk (output channel) and B chunk
    // (tap and channel) are fixed for the whole K loop.
    int a_o;
    int b_dy, b_dx, b_c; // ky*dh - ph, kx*dw - pw, channel in x; b_c < 0: no such column

    __device__ ConvWgrad(const BgIgemmParams &p, const G &g_, int bm0_, int bn0_, int zb)
        : g(g_), dy((const T *)p.a), x((const T *)p.b), grp(zb), bm0(bm0_), bn0(bn0_)
    {
    }
    __device__ bool active() const { return true; }
    __device__ int pixels() const { return g.n * g.ho * g.wo; }
    __device__ int n_flat() const { return g.kh * g.kw * g.cg; }
    __device__ int ktiles_vec() const { return (pixels() + BK - 1) / BK; }
    __device__ int ktiles_scalar() const { return ktiles_vec(); }

    __device__ void init_vec(int tid)
    {
        using MapA = TileMap<Cfg::THREADS, BK, Cfg::BM, false>;
        using MapB = TileMap<Cfg::THREADS, BK, Cfg::BN, false>;
        a_o = bm0 + MapA::vchunk(tid) * 8;
        const int nb = bn0 + MapB::vchunk(tid) * 8, tap = nb / g.cg, c = nb - tap * g.cg;
        const int ky = tap / g.kw, kx = tap - ky * g.kw;
        b_dy = ky * g.dh - g.ph, b_dx = kx * g.dw - g.pw;
        b_c = nb < n_flat() ? grp * g.cg + c : -1;
    }

    __device__ void load_vec(int kt, bg_f16 *As, bg_f16 *Bs, int tid) const
    {
        using MapA = TileMap<Cfg::THREADS, BK, Cfg::BM, false>;
        using MapB = TileMap<Cfg::THREADS, BK, Cfg::BN, false>;
        const int P = pixels(), hw = g.ho * g.wo;
#pragma unroll
        for (int i = 0; i < MapA::VEC_PER_THREAD; i++) {
            const int row = MapA::vrow(tid, i), pix = kt * BK + row;
            const bool ok = pix < P && a_o < g.cog;
            const T *src = ok ? dy + (long long)pix * g.co + grp * g.cog + a_o : dy;
            cp_async16(smem_addr(As + MapA::off(row, MapA::vchunk(tid) * 8)), src, ok ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < MapB::VEC_PER_THREAD; i++) {
            const int row = MapB::vrow(tid, i), pix = kt * BK + row;
            const int img = pix / hw, r = pix - img * hw, oy = r / g.wo, ox = r - oy * g.wo;
            const int iy = oy * g.sh + b_dy, ix = ox * g.sw + b_dx;
            const bool ok = pix < P && b_c >= 0 && (unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w;
            const T *src = ok ? x + (long long)((img * g.h + iy) * g.w + ix) * g.c + b_c : x;
            cp_async16(smem_addr(Bs + MapB::off(row, MapB::vchunk(tid) * 8)), src, ok ? 16 : 0);
        }
    }

    __device__ T get_a(int o, int pix) const
    {
        if (o >= g.cog || pix >= pixels()) return zero_of<T>();
        return dy[(long long)pix * g.co + grp * g.cog + o];
    }
    __device__ T get_b(int pix, int nn) const
    {
        if (pix >= pixels() || nn >= n_flat()) return zero_of<T>();
        const int hw = g.ho * g.wo, img = pix / hw, r = pix - img * hw, oy = r / g.wo, ox = r - oy * g.wo;
        const int tap = nn / g.cg, c = nn - tap * g.cg, ky = tap / g.kw, kx = tap - ky * g.kw;
        const int iy = oy * g.sh - g.ph + ky * g.dh, ix = ox * g.sw - g.pw + kx * g.dw;
        if ((unsigned)iy >= (unsigned)g.h || (unsigned)ix >= (unsigned)g.w) return zero_of<T>();
        return x[(long long)((img * g.h + iy) * g.w + ix) * g.c + grp * g.cg + c];
    }
    __device__ int n_extent() const { return n_flat(); }
    __device__ int col_base() const { return 0; }
    __device__ long long out_row(int m) const { return m < g.cog ? (long long)(grp * g.cog + m) * n_flat() : -1; }
};

} // namespace bgk

#endif
