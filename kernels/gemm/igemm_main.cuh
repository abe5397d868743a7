// The implicit-GEMM engine behind every GEMM and convolution kernel:
// C[M x N] = op(A)[M x K] . op(B)[K x N], where a "problem" type (plain
// GEMM in gemm_problem.cuh, the three convolution passes in
// kernels/conv/conv_problem.cuh) says where each element of A, B and C lives.
// The engine owns the tiling, the pipeline, the tensor-core or FMA inner loop
// and the epilogue; a problem owns only addressing. Self-contained for NVRTC
// (see tc_core.cuh).
//
// Three main loops:
//  - tc_body<Cfg, P, VEC=true>: f16 tensor cores (mma.sync m16n8k16, f32
//    accumulators), tiles fetched by cp.async 16-byte chunks into a STAGES-deep
//    ring of swizzled shared-memory tiles; the load of tile kt+STAGES-1 is in
//    flight while tile kt is multiplied. Needs 16-byte-aligned rows (the
//    problem's vec_ok()).
//  - tc_body<Cfg, P, VEC=false>: same tensor-core math, but any alignment:
//    every element is fetched by an ordinary load into registers while the
//    previous tile is multiplied, then stored to the other of two tiles.
//  - simt_body<Cfg, P>: f32 FMA, the same register-staged double buffer, each
//    thread computing an RM x RN block from k-major shared tiles.
//
// Operand orientation: A is "K-contiguous" (A_KC) when, in memory, consecutive
// k of one row m are adjacent (e.g. an NHWC activation: channels adjacent);
// otherwise m is contiguous; likewise B_KC for B's columns n. The shared tile
// keeps the memory orientation, so every cp.async chunk is 16 contiguous
// bytes, and ldmatrix builds the mma fragments from either orientation (plain
// for a K-contiguous tile, .trans otherwise; see tc_compute).
//
// The index logic (fragments, swizzle, loaders) runs on the CPU under the CUDA
// emulator (make test-emu, docs/emulator.md): no GPU needed to test a change.
#ifndef BG_IGEMM_MAIN_CUH
#define BG_IGEMM_MAIN_CUH
#include "tc_core.cuh"

namespace bgk {

// ---- configurations ------------------------------------------------------------
// Tensor-core tile: BM x BN output, BK deep, WARPS_M x WARPS_N warps, each warp
// owning a (BM/WARPS_M) x (BN/WARPS_N) sub-tile made of 16x8 mma tiles.
// MIN_BLOCKS: blocks per SM the register allocation must allow (__launch_bounds__).
template <int BM_, int BN_, int BK_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_ = 1>
struct TcCfg {
    static constexpr int BM = BM_, BN = BN_, BK = BK_;
    static constexpr int WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_, MIN_BLOCKS = MIN_BLOCKS_;
    static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    static constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N; // warp tile
    static constexpr int MI = WTM / 16, NJ = WTN / 8;               // mma tiles per warp
    static constexpr int A_ELEMS = BM * BK, B_ELEMS = BN * BK;      // one stage
    static constexpr int SMEM_VEC = STAGES * (A_ELEMS + B_ELEMS) * 2;
    static constexpr int SMEM_SCALAR = 2 * (A_ELEMS + B_ELEMS) * 2;
    static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile must hold whole 16x16 fragments");
    static_assert(BK % 16 == 0 && BK >= 16, "BK is a multiple of the mma depth");
    static_assert(STAGES >= 2, "a pipeline needs two stages");
};

// FMA tile: 256 threads as 16 x 16, each computing RM x RN outputs (RM, RN
// 4 or 8), in groups of 4 adjacent rows/columns spaced BM/2 (BN/2) apart so a
// warp's float4 shared-memory reads never conflict.
template <int BM_, int BN_, int BK_>
struct SimtCfg {
    static constexpr int BM = BM_, BN = BN_, BK = BK_;
    static constexpr int THREADS = 256;
    static constexpr int RM = BM / 16, RN = BN / 16;
    static constexpr int LDA = BM + 4, LDB = BN + 4; // padded k-major rows
    static constexpr int SMEM = 2 * BK * (LDA + LDB) * 4;
    static_assert(RM == 4 || RM == 8, "4 or 8 rows per thread");
    static_assert(RN == 4 || RN == 8, "4 or 8 columns per thread");
};

// Which elements of an operand tile (TM = BM or BN by BK) thread tid loads:
// the i-th is (mn, k); consecutive threads walk the memory-contiguous
// dimension (k when KC, else mn), so the loads coalesce.
template <int THREADS, int BK, int TM, bool KC>
struct ElemMap {
    __device__ static void elem(int tid, int i, int &mn, int &k)
    {
        int e = tid + i * THREADS;
        if (KC) mn = e / BK, k = e % BK;
        else k = e / TM, mn = e % TM;
    }
};

// Where the 16-byte chunks of a tensor-core operand tile go, for a tile whose
// memory-contiguous extent is along k (KC) or along m/n.
template <int THREADS, int BK, int TM, bool KC>
struct TileMap : ElemMap<THREADS, BK, TM, KC> {
    static constexpr int RC = KC ? BK / 8 : TM / 8;   // 16-byte chunks per tile row
    static constexpr int ROWS = KC ? TM : BK;
    static constexpr int CHUNKS = ROWS * RC;
    static constexpr int VEC_PER_THREAD = CHUNKS / THREADS;
    static constexpr int ELEMS_PER_THREAD = CHUNKS * 8 / THREADS;
    static_assert(CHUNKS % THREADS == 0 && THREADS % RC == 0, "tile does not split evenly over the threads");
    // i-th chunk of thread tid: tile row and chunk index; the chunk index is
    // the same for all i because THREADS is a multiple of RC.
    __device__ static int vrow(int tid, int i) { return (tid + i * THREADS) / RC; }
    __device__ static int vchunk(int tid) { return tid % RC; }
    __device__ static int off(int row, int col) { return tile_off<RC>(row, col); }
    __device__ static int elem_off(int mn, int k) { return KC ? tile_off<RC>(mn, k) : tile_off<RC>(k, mn); }
};

// ---- epilogue -------------------------------------------------------------------
// out[off] = act(alpha*v + beta*out[off] + bias[col] + residual[off]), act =
// identity, ReLU or sigmoid; returns the stored value before rounding (what the
// batchnorm statistics see).
template <class T>
__device__ __forceinline__ float epi_one(const BgEpilogue &e, T *out, long long off, int col, float v)
{
    v *= e.alpha;
    if (e.beta != 0.f) v += e.beta * to_f(out[off]);
    if (e.bias) v += to_f(((const T *)e.bias)[col]);
    if (e.residual) v += to_f(((const T *)e.residual)[off]);
    if (e.act == 1) v = v > 0.f ? v : 0.f;
    else if (e.act == 2) { // exp of a non-positive argument only: no overflow
        const float t = __expf(-fabsf(v));
        v = v >= 0.f ? 1.f / (1.f + t) : t / (1.f + t);
    }
    from_f(out[off], v);
    return v;
}

// Two horizontally adjacent results (n, n+1) of row `row` (offset of column 0
// in out), each only if its column exists. With split-K the raw sums go to
// this slice's partial buffer (p.ws set: split-K, or an output that needs
// remapping); the reduce kernel applies the epilogue later.
template <class T>
__device__ __forceinline__ void epi_pair(const BgIgemmParams &p, long long row, int colbase, int n, int N,
                                         int split, float v0, float v1, float (&r)[2])
{
    r[0] = r[1] = 0.f;
    if (row < 0) return;
    if (p.ws) {
        float *w = p.ws + (long long)split * p.ws_stride;
        if (n < N) w[row + n] = v0;
        if (n + 1 < N) w[row + n + 1] = v1;
        return;
    }
    T *out = (T *)p.out;
    if (n < N) r[0] = epi_one<T>(p.epi, out, row + n, colbase + n, v0);
    if (n + 1 < N) r[1] = epi_one<T>(p.epi, out, row + n + 1, colbase + n + 1, v1);
}

// ---- tensor-core inner product of one shared-memory stage ---------------------
template <class Cfg, bool A_KC, bool B_KC>
__device__ __forceinline__ void tc_compute(const bg_f16 *As, const bg_f16 *Bs, int wm0, int wn0, int lane,
                                           float (&acc)[Cfg::MI][Cfg::NJ][4])
{
    constexpr int BK = Cfg::BK, BM = Cfg::BM, BN = Cfg::BN, MI = Cfg::MI, NJ = Cfg::NJ;
    const int j8 = lane >> 3, r8 = lane & 7;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ks++) {
        unsigned a[MI][4], b[NJ][2];
#pragma unroll
        for (int i = 0; i < MI; i++) {
            const int m0 = wm0 + i * 16;
            if (A_KC) // [BM][BK]: matrices (rows 0-7,k 0-7) (rows 8-15,k 0-7) (rows 0-7,k 8-15) (rows 8-15,k 8-15)
                ldsm_x4(a[i], smem_addr(As + tile_off<BK / 8>(m0 + (lane & 15), ks * 16 + (lane >> 4) * 8)));
            else // [BK][BM], transposed on load: (k 0-7,m 0-7) (k 0-7,m 8-15) (k 8-15,m 0-7) (k 8-15,m 8-15)
                ldsm_x4_t(a[i], smem_addr(As + tile_off<BM / 8>(ks * 16 + (j8 >> 1) * 8 + r8, m0 + (j8 & 1) * 8)));
        }
#pragma unroll
        for (int jj = 0; jj < NJ / 2; jj++) {
            const int n0 = wn0 + jj * 16;
            unsigned r[4];
            if (B_KC) // [BN][BK]: (n 0-7,k 0-7) (n 0-7,k 8-15) (n 8-15,k 0-7) (n 8-15,k 8-15)
                ldsm_x4(r, smem_addr(Bs + tile_off<BK / 8>(n0 + (j8 >> 1) * 8 + r8, ks * 16 + (j8 & 1) * 8)));
            else // [BK][BN], transposed: (k 0-7,n 0-7) (k 8-15,n 0-7) (k 0-7,n 8-15) (k 8-15,n 8-15)
                ldsm_x4_t(r, smem_addr(Bs + tile_off<BN / 8>(ks * 16 + (j8 & 1) * 8 + r8, n0 + (j8 >> 1) * 8)));
            b[2 * jj][0] = r[0];
            b[2 * jj][1] = r[1];
            b[2 * jj + 1][0] = r[2];
            b[2 * jj + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int j = 0; j < NJ; j++) mma16816(acc[i][j], a[i], b[j][0], b[j][1]);
    }
}

// k-tile range of this block: all of [0, KT), or its split-K slice.
__device__ __forceinline__ void ktile_range(const BgIgemmParams &p, int KT, int split, int &kt0, int &kt1)
{
    if (p.splits <= 1) {
        kt0 = 0, kt1 = KT;
        return;
    }
    kt0 = split * p.kt_per_split;
    kt1 = kt0 + p.kt_per_split < KT ? kt0 + p.kt_per_split : KT;
    if (kt0 > KT) kt0 = KT;
}

// ---- the tensor-core kernel body ---------------------------------------------------
// Grid: x = M tiles, y = N tiles, z = batch/group (x phase for dgrad) x splits.
template <class Cfg, class P, bool VEC>
__device__ __forceinline__ void tc_body(const BgIgemmParams &p, const typename P::Geo &g)
{
    extern __shared__ __align__(128) unsigned char bgk_smem[];
    constexpr int NT = Cfg::THREADS, BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
    constexpr int MI = Cfg::MI, NJ = Cfg::NJ;
    constexpr int NSTAGE = VEC ? Cfg::STAGES : 2;
    using MapA = TileMap<NT, BK, BM, P::A_KC>;
    using MapB = TileMap<NT, BK, BN, P::B_KC>;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm0 = (warp % Cfg::WARPS_M) * Cfg::WTM, wn0 = (warp / Cfg::WARPS_M) * Cfg::WTN;
    const int bm0 = blockIdx.x * BM, bn0 = blockIdx.y * BN;
    const int split = blockIdx.z % p.splits, zb = blockIdx.z / p.splits;

    P prob(p, g, bm0, bn0, zb);
    if (!prob.active()) return; // whole block: a dgrad phase with fewer rows than the grid
    if constexpr (VEC) prob.init_vec(tid);

    bg_f16 *As = (bg_f16 *)bgk_smem;
    bg_f16 *Bs = As + NSTAGE * Cfg::A_ELEMS;

    float acc[MI][NJ][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

    int kt0, kt1;
    ktile_range(p, VEC ? prob.ktiles_vec() : prob.ktiles_scalar(), split, kt0, kt1);

    if constexpr (VEC) {
        // Prologue: STAGES-1 tiles in flight (empty commit groups past the end
        // keep the group count, and so the wait below, uniform).
#pragma unroll
        for (int s = 0; s < NSTAGE - 1; s++) {
            if (kt0 + s < kt1) prob.load_vec(kt0 + s, As + s * Cfg::A_ELEMS, Bs + s * Cfg::B_ELEMS, tid);
            cp_async_commit();
        }
        for (int kt = kt0; kt < kt1; kt++) {
            const int rel = kt - kt0;
            cp_async_wait<NSTAGE - 2>(); // this thread's copies of tile kt have landed
            __syncthreads();             // ... everyone's; and everyone is done with tile kt-1
            const int nk = kt + NSTAGE - 1, ns = (rel + NSTAGE - 1) % NSTAGE;
            if (nk < kt1) prob.load_vec(nk, As + ns * Cfg::A_ELEMS, Bs + ns * Cfg::B_ELEMS, tid);
            cp_async_commit();
            const int cs = rel % NSTAGE;
            tc_compute<Cfg, P::A_KC, P::B_KC>(As + cs * Cfg::A_ELEMS, Bs + cs * Cfg::B_ELEMS, wm0, wn0, lane, acc);
        }
        cp_async_wait<0>();
    } else {
        // Register-staged double buffer: tile kt+1 is read from global memory
        // into registers while tile kt is multiplied, then stored.
        constexpr int EA = MapA::ELEMS_PER_THREAD, EB = MapB::ELEMS_PER_THREAD;
        bg_f16 ra[EA], rb[EB];
        auto fetch = [&](int kt) {
#pragma unroll
            for (int i = 0; i < EA; i++) {
                int mn, k;
                MapA::elem(tid, i, mn, k);
                ra[i] = prob.get_a(bm0 + mn, kt * BK + k);
            }
#pragma unroll
            for (int i = 0; i < EB; i++) {
                int mn, k;
                MapB::elem(tid, i, mn, k);
                rb[i] = prob.get_b(kt * BK + k, bn0 + mn);
            }
        };
        auto store = [&](int s) {
            bg_f16 *a = As + s * Cfg::A_ELEMS, *b = Bs + s * Cfg::B_ELEMS;
#pragma unroll
            for (int i = 0; i < EA; i++) {
                int mn, k;
                MapA::elem(tid, i, mn, k);
                a[MapA::elem_off(mn, k)] = ra[i];
            }
#pragma unroll
            for (int i = 0; i < EB; i++) {
                int mn, k;
                MapB::elem(tid, i, mn, k);
                b[MapB::elem_off(mn, k)] = rb[i];
            }
        };
        if (kt0 < kt1) {
            fetch(kt0);
            store(0);
        }
        __syncthreads();
        for (int kt = kt0; kt < kt1; kt++) {
            const int cs = (kt - kt0) & 1;
            if (kt + 1 < kt1) fetch(kt + 1);
            tc_compute<Cfg, P::A_KC, P::B_KC>(As + cs * Cfg::A_ELEMS, Bs + cs * Cfg::B_ELEMS, wm0, wn0, lane, acc);
            if (kt + 1 < kt1) store(cs ^ 1);
            __syncthreads();
        }
    }

    // ---- epilogue: fragment (row g / g+8, cols 2t, 2t+1) of each 16x8 tile ----
    const int gq = lane >> 2, tq = lane & 3;
    const int N = prob.n_extent(), colbase = prob.col_base();
    const bool stats = p.epi.stats != 0 && p.ws == 0;
    float csum[NJ][2], csq[NJ][2];
#pragma unroll
    for (int j = 0; j < NJ; j++) csum[j][0] = csum[j][1] = csq[j][0] = csq[j][1] = 0.f;
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int m = bm0 + wm0 + i * 16 + gq + 8 * h;
            const long long row = prob.out_row(m); // -1 past the last row
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                const int n = bn0 + wn0 + j * 8 + 2 * tq;
                float r[2];
                epi_pair<typename P::OutT>(p, row, colbase, n, N, split, acc[i][j][2 * h], acc[i][j][2 * h + 1], r);
                csum[j][0] += r[0], csum[j][1] += r[1];
                csq[j][0] += r[0] * r[0], csq[j][1] += r[1] * r[1];
            }
        }
    if (!stats) return;

    // Per-column partial sums for a following batchnorm: reduce over the 8
    // row groups of the warp (lanes with the same t), then over the WARPS_M
    // warps of a column strip in shared memory, in a fixed order (deterministic).
#pragma unroll
    for (int j = 0; j < NJ; j++)
#pragma unroll
        for (int e = 0; e < 2; e++)
#pragma unroll
            for (int o = 4; o < 32; o <<= 1) {
                csum[j][e] += __shfl_xor_sync(0xffffffffu, csum[j][e], o);
                csq[j][e] += __shfl_xor_sync(0xffffffffu, csq[j][e], o);
            }
    __syncthreads(); // the pipeline's shared memory is reused below
    float *red = (float *)bgk_smem;     // [2][WARPS_M][BN]
    const int wmi = warp % Cfg::WARPS_M;
    if (gq == 0)
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int c = wn0 + j * 8 + 2 * tq + e;
                red[wmi * BN + c] = csum[j][e];
                red[(Cfg::WARPS_M + wmi) * BN + c] = csq[j][e];
            }
    __syncthreads();
    for (int c = tid; c < BN; c += NT) {
        if (bn0 + c >= N) continue;
        float s = 0.f, q = 0.f;
        for (int w = 0; w < Cfg::WARPS_M; w++) s += red[w * BN + c], q += red[(Cfg::WARPS_M + w) * BN + c];
        const long long at = (long long)blockIdx.x * p.epi.stats_ld + colbase + bn0 + c;
        p.epi.stats[at] = s;
        p.epi.stats[(long long)gridDim.x * p.epi.stats_ld + at] = q;
    }
}

// ---- the FP32 FMA kernel body -------------------------------------------------------
template <class Cfg, class P>
__device__ __forceinline__ void simt_body(const BgIgemmParams &p, const typename P::Geo &g)
{
    extern __shared__ __align__(128) unsigned char bgk_smem[];
    constexpr int NT = Cfg::THREADS, BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
    constexpr int RM = Cfg::RM, RN = Cfg::RN, LDA = Cfg::LDA, LDB = Cfg::LDB;
    using MapA = ElemMap<NT, BK, BM, P::A_KC>;
    using MapB = ElemMap<NT, BK, BN, P::B_KC>;
    constexpr int EA = BM * BK / NT, EB = BN * BK / NT;
    static_assert(EA * NT == BM * BK && EB * NT == BN * BK, "tile does not split evenly");

    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const int bm0 = blockIdx.x * BM, bn0 = blockIdx.y * BN;
    const int split = blockIdx.z % p.splits, zb = blockIdx.z / p.splits;
    P prob(p, g, bm0, bn0, zb);
    if (!prob.active()) return;

    float *As = (float *)bgk_smem;   // [2][BK][LDA]
    float *Bs = As + 2 * BK * LDA;   // [2][BK][LDB]
    float acc[RM][RN];
#pragma unroll
    for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < RN; j++) acc[i][j] = 0.f;

    int kt0, kt1;
    ktile_range(p, prob.ktiles_scalar(), split, kt0, kt1);
    float ra[EA], rb[EB];
    auto fetch = [&](int kt) {
#pragma unroll
        for (int i = 0; i < EA; i++) {
            int mn, k;
            MapA::elem(tid, i, mn, k);
            ra[i] = prob.get_a(bm0 + mn, kt * BK + k);
        }
#pragma unroll
        for (int i = 0; i < EB; i++) {
            int mn, k;
            MapB::elem(tid, i, mn, k);
            rb[i] = prob.get_b(kt * BK + k, bn0 + mn);
        }
    };
    auto store = [&](int s) {
#pragma unroll
        for (int i = 0; i < EA; i++) {
            int mn, k;
            MapA::elem(tid, i, mn, k);
            As[(s * BK + k) * LDA + mn] = ra[i];
        }
#pragma unroll
        for (int i = 0; i < EB; i++) {
            int mn, k;
            MapB::elem(tid, i, mn, k);
            Bs[(s * BK + k) * LDB + mn] = rb[i];
        }
    };
    // Row r of this thread's block is ty*4 + (r%4) + (r/4)*(BM/2); likewise columns.
    if (kt0 < kt1) {
        fetch(kt0);
        store(0);
    }
    __syncthreads();
    for (int kt = kt0; kt < kt1; kt++) {
        const int cs = (kt - kt0) & 1;
        if (kt + 1 < kt1) fetch(kt + 1);
        const float *a = As + cs * BK * LDA, *b = Bs + cs * BK * LDB;
#pragma unroll
        for (int k = 0; k < BK; k++) {
            float av[RM], bv[RN];
#pragma unroll
            for (int q = 0; q < RM / 4; q++) {
                const float4 v = *(const float4 *)(a + k * LDA + q * (BM / 2) + ty * 4);
                av[4 * q] = v.x, av[4 * q + 1] = v.y, av[4 * q + 2] = v.z, av[4 * q + 3] = v.w;
            }
#pragma unroll
            for (int q = 0; q < RN / 4; q++) {
                const float4 v = *(const float4 *)(b + k * LDB + q * (BN / 2) + tx * 4);
                bv[4 * q] = v.x, bv[4 * q + 1] = v.y, bv[4 * q + 2] = v.z, bv[4 * q + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int j = 0; j < RN; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        if (kt + 1 < kt1) store(cs ^ 1);
        __syncthreads();
    }

    const int N = prob.n_extent(), colbase = prob.col_base();
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int m = bm0 + (i / 4) * (BM / 2) + ty * 4 + (i % 4);
        const long long row = prob.out_row(m);
#pragma unroll
        for (int j = 0; j < RN; j += 2) {
            const int n = bn0 + (j / 4) * (BN / 2) + tx * 4 + (j % 4);
            float r[2];
            epi_pair<typename P::OutT>(p, row, colbase, n, N, split, acc[i][j], acc[i][j + 1], r);
        }
    }
}

// ---- kernels ----------------------------------------------------------------------
// The precompiled instantiations; an NVRTC-specialised kernel is an extern "C"
// wrapper around the same bodies (kernels/rtc/rtc.cu).
template <class Cfg, class P, bool VEC>
__global__ void __launch_bounds__(Cfg::THREADS, Cfg::MIN_BLOCKS) tc_kernel(const BgIgemmParams p)
{
    const typename P::Geo g(p.geo);
    tc_body<Cfg, P, VEC>(p, g);
}

template <class Cfg, class P>
__global__ void __launch_bounds__(Cfg::THREADS) simt_kernel(const BgIgemmParams p)
{
    const typename P::Geo g(p.geo);
    simt_body<Cfg, P>(p, g);
}

// Per-thread counts for a problem's cp.async state, without TileMap's checks
// (a problem type is also instantiated with FMA tiles, which never use them).
__host__ __device__ constexpr int vec_slots(int threads, int bk, int tm, bool kc)
{
    return (kc ? tm * (bk / 8) : bk * (tm / 8)) / threads > 0 ? (kc ? tm * (bk / 8) : bk * (tm / 8)) / threads : 1;
}

} // namespace bgk

#endif
