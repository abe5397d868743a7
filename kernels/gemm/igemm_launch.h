// Host-side helpers shared by the GEMM and convolution launchers (C++, only
// included by kernels/*/*.cu): the precompiled tile configurations, the
// launch wrapper that raises the dynamic shared-memory limit, the split-K
// reduction and error formatting.
#ifndef BG_IGEMM_LAUNCH_H
#define BG_IGEMM_LAUNCH_H
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdio.h>
#include "igemm_main.cuh"

namespace bgk {
// Tensor-core tiles (config 1..3), chosen per shape by tc_pick.
using TcL = TcCfg<128, 128, 32, 2, 4, 4, 2>; // 256 threads, warp tile 64x32, 64 KiB shared, 2 blocks/SM (<= 128 registers)
using TcW = TcCfg<128, 64, 32, 2, 2, 4>;  // 128 threads, warp tile 64x32, 48 KiB
using TcS = TcCfg<64, 64, 32, 2, 2, 4>;   // 128 threads, warp tile 32x32, 32 KiB
// The scalar (any-alignment) tensor-core path and the FP32 path use these.
using TcScalar = TcS;
using SimtL = SimtCfg<128, 128, 8>;
using SimtS = SimtCfg<64, 64, 8>;

enum { CFG_AUTO = 0, CFG_L = 1, CFG_W = 2, CFG_S = 3, CFG_COUNT = 4 };

// Multiprocessors of the current device (0 if unknown).
int sm_count();
// What deterministic plans (and plans made without a device) assume: an H100.
constexpr int NOMINAL_SMS = 132;
// A tensor-core tile for an M x N output repeated z times: the largest tile
// that still gives every SM a block, else the smallest.
int tc_pick(long long M, long long N, long long z, int sms);
// A FP32 tile (1 = 128x128, 3 = 64x64) by the same rule.
int simt_pick(long long M, long long N, long long z, int sms);
const char *tc_name(int cfg);
// The C++ type of a configuration, as NVRTC specialisations name it.
const char *cfg_type_name(bool simt, bool scalar, int cfg);

// How the rows or columns of a split-K workspace map to the output's: the
// workspace may hold a channel-padded layout where every group of `real`
// consecutive indices was padded to `pad` (pad 0: identity).
struct PadMap {
    int pad, real;
};
// out[r*ldo + c] = epilogue(sum over s of ws[s*ws_stride + wr*ldw + wc]) for
// r < rows, c < cols, (wr, wc) = (r, c) mapped through rmap and cmap. Fixed
// summation order: deterministic.
cudaError_t splitk_reduce(const float *ws, long long ws_stride, int splits, void *out, int half, int rows, int cols,
                          long long ldo, long long ldw, PadMap rmap, PadMap cmap, const BgEpilogue &epi,
                          cudaStream_t s);

template <class K>
cudaError_t launch(K kernel, dim3 grid, int threads, int smem, cudaStream_t s, const BgIgemmParams &p)
{
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
    }
    kernel<<<grid, threads, smem, s>>>(p);
    return cudaGetLastError();
}

// The sm_90a wgmma GEMM (gemm_wgmma_sm90a.cu): f16, A M x K and B N x K
// (both K-contiguous, 16-byte aligned rows), no split-K. Returns
// cudaErrorNotSupported when that file was not built for sm_90a.
cudaError_t wgmma_gemm_launch(const BgIgemmParams &p, int batch, cudaStream_t s);

// printf into err; returns code (so `return fail(...)` reads naturally).
int fail(char *err, size_t errn, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int cuda_fail(char *err, size_t errn, cudaError_t e, const char *what);

} // namespace bgk
#endif
