// Device building blocks shared by the GEMM and convolution kernels: raw
// binary16 storage, the PTX instructions the tensor-core path is made of
// (cp.async, ldmatrix, mma.sync), the shared-memory swizzle, and the one
// parameter struct every implicit-GEMM kernel takes.
//
// This file is compiled twice: by nvcc into the precompiled kernels, and at
// run time by NVRTC (kernels/rtc) when a kernel is specialised for one
// layer's shape. NVRTC gets no system headers, so nothing here includes any:
// f16 values are raw `unsigned short` bits converted with PTX cvt, integer
// types are the built-in ones, and every instruction is inline PTX.
#ifndef BG_TC_CORE_CUH
#define BG_TC_CORE_CUH

typedef unsigned short bg_f16; // IEEE binary16 bits (storage only; math is f32)

// ---- the kernel parameters --------------------------------------------------
// One struct for every implicit-GEMM kernel (plain GEMM and the three conv
// passes), passed by value. The problem type decides which fields it reads.
// In an NVRTC-specialised kernel the geometry below is replaced by
// compile-time constants (see StaticGeo in kernels/rtc/rtc.cu), so the same
// struct is passed and its geometry fields are simply ignored.
struct BgGeo {
    // GEMM view: C[M x N] = op(A)[M x K] * op(B)[K x N]. For a convolution
    // these are per group (conv passes) and per stride phase (dgrad).
    int M, N, K;
    int batch;                 // GEMM batch count, or conv groups
    long long lda, ldb, ldc;   // GEMM leading dimensions (elements)
    long long sA, sB, sC;      // GEMM batch strides (elements)
    // convolution: input NHWC {n, h, w, c}, weight OHWI {co, kh, kw, cg}, output {n, ho, wo, co}
    int n, h, w, c, co, kh, kw, ho, wo;
    int sh, sw, ph, pw, dh, dw;
    int cg, cog;               // channels per group, in and out
    int oc, ocg;               // the output tensor's channels and channels per group (may differ
                               // from the operands' when they are channel-padded copies)
};

struct BgEpilogue {
    float alpha, beta;         // out = alpha*acc + beta*out (beta 0: out is never read)
    const void *bias;          // per output column (conv: per output channel), or null
    const void *residual;      // same layout as out, added after bias, or null
    int act;                   // applied last: 0 none, 1 ReLU, 2 sigmoid (BG_ACT_* in gemm.h)
    float *stats;              // per-channel partials [2][m_tiles][stats_ld] (sum, sum of squares), or null
    int stats_ld;              // columns of one stats row (conv: co)
};

struct BgIgemmParams {
    BgGeo geo;
    BgEpilogue epi;
    const void *a;             // the problem's A operand (GEMM A; conv: x, dy or dy)
    const void *b;             // the problem's B operand (GEMM B; conv: w, w or x)
    void *out;                 // C (GEMM), y (fprop), dx (dgrad), dw (wgrad)
    float *ws;                 // split-K partials [splits][ws_stride], f32, or null
    long long ws_stride;       // elements of one slice: the output's index space
    int splits;                // K is cut into this many slices (1 = none)
    int kt_per_split;          // k-tiles per slice
};

namespace bgk {

// ---- conversions ----------------------------------------------------------
__device__ __forceinline__ float h2f(bg_f16 h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ bg_f16 f2h(float f)
{
    bg_f16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bg_f16 v) { return h2f(v); }
__device__ __forceinline__ void from_f(float &d, float v) { d = v; }
__device__ __forceinline__ void from_f(bg_f16 &d, float v) { d = f2h(v); }
template <class T> __device__ __forceinline__ T zero_of();
template <> __device__ __forceinline__ float zero_of<float>() { return 0.f; }
template <> __device__ __forceinline__ bg_f16 zero_of<bg_f16>() { return 0; }

// ---- shared memory and async copies ------------------------------------------
__device__ __forceinline__ unsigned smem_addr(const void *p)
{
    unsigned r;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
}

// 16 bytes global -> shared, of which the first src_bytes are read and the
// rest zero-filled (src_bytes 0: nothing is read, the chunk becomes zeros).
// .cg bypasses L1: tiles are read once per block, L2 serves the reuse.
__device__ __forceinline__ void cp_async16(unsigned dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// ---- tensor-core fragments --------------------------------------------------
// ldmatrix .x4: lanes 8i..8i+7 give the row addresses of 8x8 matrix i; each
// lane receives, per matrix, the two b16 at (row lane/4, cols 2*(lane%4)+{0,1})
// (.trans: at (rows 2*(lane%4)+{0,1}, col lane/4) of the stored matrix).
__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned (&r)[4], unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// D = A*B + D, A 16x16 (row), B 16x8 (col), f16 in, f32 accumulate.
// Fragments (g = lane/4, t = lane%4): a[0] (row g, k 2t..2t+1), a[1] (row g+8),
// a[2] (row g, k+8), a[3] (row g+8, k+8); b[0] (k 2t..2t+1, col g), b[1] (k+8);
// d[0..1] (row g, cols 2t, 2t+1), d[2..3] (row g+8).
__device__ __forceinline__ void mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- swizzled tiles ------------------------------------------------------------
// A tile is `rows` rows of RC 16-byte chunks (8 halves each). ldmatrix reads
// one chunk from each of 8 consecutive rows per phase; XOR-ing the chunk
// index with bits of the row index sends those 8 reads to 8 different
// 16-byte bank groups, so the reads are conflict-free without padding:
//   RC >= 8 (rows of 128 B or more): chunk ^ (row % 8)
//   RC == 4 (64 B rows, two per 128 B line): chunk ^ ((row / 2) % 4)
//   RC == 2 (32 B rows, four per line): chunk ^ ((row / 4) % 2)
// The same function places the cp.async writes, so writer and reader agree.
template <int RC> __device__ __forceinline__ int swz(int row, int chunk)
{
    if (RC >= 8) return chunk ^ (row & 7);
    if (RC == 4) return chunk ^ ((row >> 1) & 3);
    if (RC == 2) return chunk ^ ((row >> 2) & 1);
    return chunk;
}
// Element offset of (row, col) in such a tile.
template <int RC> __device__ __forceinline__ int tile_off(int row, int col)
{
    return row * RC * 8 + swz<RC>(row, col >> 3) * 8 + (col & 7);
}

__device__ __forceinline__ int clamp16(long long bytes) { return bytes <= 0 ? 0 : bytes >= 16 ? 16 : (int)bytes; }

} // namespace bgk

#endif
