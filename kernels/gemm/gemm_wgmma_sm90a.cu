// Hopper (sm_90a) FP16 GEMM on wgmma: C = alpha * A . B^T (+ beta C, bias,
// ReLU) with A stored M x K and B stored N x K (both K-contiguous: the
// linear forward x.W^T and attention's Q.K^T; other transposes use the
// mma.sync kernels). Opt-in (BG_GEMM_WGMMA) until validated on an H100:
// written and compile-checked without a GPU.
//
// Design (one CTA = 2 warpgroups = 256 threads, tile 128 x 256 x 64):
//  - every thread issues cp.async 16-byte chunks into a 4-stage ring of
//    shared tiles: A 128 x 64 halves, B 256 x 64 halves; one 64-half row is
//    128 bytes, stored with the 128-byte swizzle (chunk ^ row % 8, the
//    tile_off<8> of tc_core.cuh), tiles 1024-byte aligned, which is exactly
//    the canonical K-major SWIZZLE_128B layout wgmma reads through a matrix
//    descriptor (start >> 4, leading offset 16 B (unused when K fits the
//    swizzle), stride offset 1024 B between 8-row groups, mode 1 = 128B);
//  - warpgroup w multiplies rows 64w..64w+63 with two m64n128k16 per 16-deep
//    step (N halves), 4 steps per stage, advancing the descriptors by 32 B;
//  - cp.async writes are generic-proxy stores that the tensor cores read
//    through the async proxy: each thread fences (fence.proxy.async) after
//    its copies land and before the barrier that publishes the stage;
//  - a stage is refilled only after every warpgroup's wgmma on it completed
//    (wgmma.wait_group 1 + a barrier).
// Accumulators: per warpgroup and N half, 64 f32 per thread; register r of
// thread (warp w4 of the warpgroup, lane g*4+t) holds row 16*w4 + g + 8*(r%4/2),
// column 8*(r/4) + 2t + r%2 of the 64 x 128 block (the mma.m16n8 layout per
// 8 columns).
//
// Build: this translation unit needs -gencode arch=compute_90a,code=sm_90a
// and -DBG_SM90A_BUILD=1 (the Makefile's *_sm90a.cu rule). Compiled with the
// generic flags instead, the kernel body is empty and the launcher reports
// BG_KERR_UNSUPPORTED.
#include <cuda_runtime.h>
#include <stdint.h>
#include "igemm_launch.h"

namespace bgk {

constexpr int WG_BM = 128, WG_BN = 256, WG_BK = 64, WG_STAGES = 4, WG_THREADS = 256;
constexpr int WG_A_ELEMS = WG_BM * WG_BK, WG_B_ELEMS = WG_BN * WG_BK;
constexpr int WG_SMEM = WG_STAGES * (WG_A_ELEMS + WG_B_ELEMS) * 2 + 1024; // + alignment slack

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ uint64_t wg_desc(unsigned saddr)
{
    uint64_t d = (uint64_t)((saddr & 0x3FFFF) >> 4);
    d |= (uint64_t)(16 >> 4) << 16;   // leading byte offset (ignored for swizzled K-major)
    d |= (uint64_t)(1024 >> 4) << 32; // stride byte offset: 8 rows x 128 B
    d |= (uint64_t)1 << 62;           // 128-byte swizzle
    return d;
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// D(64x128, f32) += A(64x16 from smem) . B(16x128 from smem), both K-major.
__device__ __forceinline__ void wgmma_64x128(float (&d)[64], uint64_t da, uint64_t db)
{
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "%64, %65, 1, 1, 1, 0, 0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db));
}

// cp.async one k-tile: A rows m (K-contiguous), B rows n (K-contiguous).
__device__ __forceinline__ void wg_load(const BgIgemmParams &p, const bg_f16 *A, const bg_f16 *B, int bm0, int bn0,
                                        int kt, bg_f16 *As, bg_f16 *Bs, int tid)
{
    const BgGeo &g = p.geo;
    const int k0 = kt * WG_BK, ch = tid % 8, col = ch * 8, k = k0 + col;
    const int kb = clamp16(2LL * (g.K - k));
#pragma unroll
    for (int i = 0; i < WG_BM * 8 / WG_THREADS; i++) {
        const int row = tid / 8 + i * (WG_THREADS / 8), m = bm0 + row;
        const int bytes = m < g.M ? kb : 0;
        cp_async16(smem_addr(As + tile_off<8>(row, col)), bytes ? A + m * g.lda + k : A, bytes);
    }
#pragma unroll
    for (int i = 0; i < WG_BN * 8 / WG_THREADS; i++) {
        const int row = tid / 8 + i * (WG_THREADS / 8), n = bn0 + row;
        const int bytes = n < g.N ? kb : 0;
        cp_async16(smem_addr(Bs + tile_off<8>(row, col)), bytes ? B + n * g.ldb + k : B, bytes);
    }
}
#endif

__global__ void __launch_bounds__(WG_THREADS, 1) wgmma_gemm_k(const BgIgemmParams p)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ unsigned char wg_smem_raw[];
    // 1024-byte alignment: the 128-byte swizzle pattern repeats every 8 rows.
    const unsigned raw = smem_addr(wg_smem_raw);
    bg_f16 *As = (bg_f16 *)(wg_smem_raw + (((raw + 1023) & ~1023u) - raw));
    bg_f16 *Bs = As + WG_STAGES * WG_A_ELEMS;
    const BgGeo &g = p.geo;
    const int tid = threadIdx.x, wg = tid / 128, w4 = (tid / 32) % 4, lane = tid % 32;
    const int bm0 = blockIdx.x * WG_BM, bn0 = blockIdx.y * WG_BN, z = blockIdx.z;
    const bg_f16 *A = (const bg_f16 *)p.a + z * g.sA, *B = (const bg_f16 *)p.b + z * g.sB;
    const int KT = (g.K + WG_BK - 1) / WG_BK;

    float acc[2][64];
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int r = 0; r < 64; r++) acc[h][r] = 0.f;

#pragma unroll
    for (int s = 0; s < WG_STAGES - 1; s++) {
        if (s < KT) wg_load(p, A, B, bm0, bn0, s, As + s * WG_A_ELEMS, Bs + s * WG_B_ELEMS, tid);
        cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        const int st = kt % WG_STAGES;
        cp_async_wait<WG_STAGES - 2>();
        fence_proxy_async(); // my copies of tile kt, visible to the tensor cores
        __syncthreads();     // ... and everyone's
        const unsigned a0 = smem_addr(As + st * WG_A_ELEMS + wg * 64 * WG_BK);
        const unsigned b0 = smem_addr(Bs + st * WG_B_ELEMS);
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < WG_BK / 16; ks++) {
            const uint64_t da = wg_desc(a0 + ks * 32);
            wgmma_64x128(acc[0], da, wg_desc(b0 + ks * 32));
            wgmma_64x128(acc[1], da, wg_desc(b0 + 128 * WG_BK * 2 + ks * 32));
        }
        wg_commit();
        wg_wait<1>();    // my wgmma on tile kt-1 are done ...
        __syncthreads(); // ... and everyone's: its stage may be refilled
        const int nk = kt + WG_STAGES - 1;
        if (nk < KT) wg_load(p, A, B, bm0, bn0, nk, As + (nk % WG_STAGES) * WG_A_ELEMS, Bs + (nk % WG_STAGES) * WG_B_ELEMS, tid);
        cp_async_commit();
    }
    wg_wait<0>();
    cp_async_wait<0>();

    const int gq = lane / 4, tq = lane % 4;
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            const int m = bm0 + wg * 64 + w4 * 16 + gq + 8 * hr;
            const long long row = m < g.M ? z * g.sC + m * g.ldc : -1;
#pragma unroll
            for (int j = 0; j < 16; j++) {
                float r2[2];
                const int n = bn0 + h * 128 + j * 8 + 2 * tq;
                epi_pair<bg_f16>(p, row, 0, n, g.N, 0, acc[h][4 * j + 2 * hr], acc[h][4 * j + 2 * hr + 1], r2);
            }
        }
#endif
}

// Host side: 0 (launched), or a CUDA error; cudaErrorNotSupported when this
// object was not built for sm_90a.
cudaError_t wgmma_gemm_launch(const BgIgemmParams &p, int batch, cudaStream_t s)
{
#ifdef BG_SM90A_BUILD
    const dim3 grid((unsigned)((p.geo.M + WG_BM - 1) / WG_BM), (unsigned)((p.geo.N + WG_BN - 1) / WG_BN), (unsigned)batch);
    cudaError_t e = cudaFuncSetAttribute(wgmma_gemm_k, cudaFuncAttributeMaxDynamicSharedMemorySize, WG_SMEM);
    if (e != cudaSuccess) return e;
    wgmma_gemm_k<<<grid, WG_THREADS, WG_SMEM, s>>>(p);
    return cudaGetLastError();
#else
    (void)p, (void)batch, (void)s, (void)WG_SMEM;
    return cudaErrorNotSupported;
#endif
}

} // namespace bgk
