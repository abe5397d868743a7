// Plain (strided-batched) GEMM as an implicit-GEMM problem:
//   C[b] (M x N, ldc) = op(A[b]) . op(B[b]),  A[b] = a + b*sA, ...
// op(A) = A (stored M x K, lda) or, with TA, A^T (A stored K x M);
// op(B) = B (stored K x N, ldb) or, with TB, B^T (B stored N x K).
// So A is K-contiguous unless TA, and B is K-contiguous only with TB.
// The interface every problem provides is documented in igemm_main.cuh's
// tc_body: addressing only, no arithmetic.
#ifndef BG_GEMM_PROBLEM_CUH
#define BG_GEMM_PROBLEM_CUH
#include "igemm_main.cuh"

namespace bgk {

template <class G, class T, class Cfg, bool TA, bool TB>
struct GemmProb {
    using Geo = G;
    using OutT = T;
    static constexpr bool A_KC = !TA, B_KC = TB;
    static constexpr int BK = Cfg::BK;

    const G &g;
    const T *A, *B;
    long long cbase;
    int bm0, bn0;

    __device__ GemmProb(const BgIgemmParams &p, const G &g_, int bm0_, int bn0_, int zb)
        : g(g_), A((const T *)p.a + zb * g_.sA), B((const T *)p.b + zb * g_.sB), cbase(zb * g_.sC), bm0(bm0_),
          bn0(bn0_)
    {
    }
    __device__ bool active() const { return true; }
    __device__ int ktiles_vec() const { return (g.K + BK - 1) / BK; }
    __device__ int ktiles_scalar() const { return (g.K + BK - 1) / BK; }
    __device__ void init_vec(int) {} // addresses are affine: nothing to precompute

    // cp.async one k-tile of A and B. Chunks straddling the K (or M, N) edge
    // read only their valid bytes; the rest of the chunk is zero-filled.
    __device__ void load_vec(int kt, bg_f16 *As, bg_f16 *Bs, int tid) const
    {
        using MapA = TileMap<Cfg::THREADS, BK, Cfg::BM, A_KC>;
        using MapB = TileMap<Cfg::THREADS, BK, Cfg::BN, B_KC>;
        const int k0 = kt * BK;
#pragma unroll
        for (int i = 0; i < MapA::VEC_PER_THREAD; i++) {
            const int row = MapA::vrow(tid, i), col = MapA::vchunk(tid) * 8;
            long long off = 0;
            int bytes;
            if (A_KC) { // row = m, col = k
                const int m = bm0 + row, k = k0 + col;
                bytes = m < g.M ? clamp16(2LL * (g.K - k)) : 0;
                if (bytes) off = m * g.lda + k;
            } else { // row = k, col = m
                const int k = k0 + row, m = bm0 + col;
                bytes = k < g.K ? clamp16(2LL * (g.M - m)) : 0;
                if (bytes) off = k * g.lda + m;
            }
            cp_async16(smem_addr(As + MapA::off(row, col)), A + off, bytes);
        }
#pragma unroll
        for (int i = 0; i < MapB::VEC_PER_THREAD; i++) {
            const int row = MapB::vrow(tid, i), col = MapB::vchunk(tid) * 8;
            long long off = 0;
            int bytes;
            if (B_KC) { // row = n, col = k
                const int n = bn0 + row, k = k0 + col;
                bytes = n < g.N ? clamp16(2LL * (g.K - k)) : 0;
                if (bytes) off = n * g.ldb + k;
            } else { // row = k, col = n
                const int k = k0 + row, n = bn0 + col;
                bytes = k < g.K ? clamp16(2LL * (g.N - n)) : 0;
                if (bytes) off = k * g.ldb + n;
            }
            cp_async16(smem_addr(Bs + MapB::off(row, col)), B + off, bytes);
        }
    }

    __device__ T get_a(int m, int k) const
    {
        if (m >= g.M || k >= g.K) return zero_of<T>();
        return TA ? A[k * g.lda + m] : A[m * g.lda + k];
    }
    __device__ T get_b(int k, int n) const
    {
        if (k >= g.K || n >= g.N) return zero_of<T>();
        return TB ? B[n * g.ldb + k] : B[k * g.ldb + n];
    }
    __device__ int n_extent() const { return g.N; }
    __device__ int col_base() const { return 0; }
    __device__ long long out_row(int m) const { return m < g.M ? cbase + m * g.ldc : -1; }
};

} // namespace bgk

#endif
