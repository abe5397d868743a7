// Between the convolution launcher (conv.cu) and the translation units that
// hold the precompiled implicit-GEMM instantiations (conv_tc.cu,
// conv_simt.cu): split so the kernels compile in parallel. C++ only.
#ifndef BG_CONV_INTERNAL_H
#define BG_CONV_INTERNAL_H
#include <cuda_runtime.h>
#include "../gemm/tc_core.cuh"

namespace bgk {
// pass: 0 fprop, 1 dgrad, 2 wgrad (bg_conv_pass). cfg: CFG_L/W/S of
// igemm_launch.h (vec == false always uses the scalar tile).
cudaError_t conv_launch_tc(int pass, int cfg, bool vec, dim3 grid, cudaStream_t s, const BgIgemmParams &p);
// cfg: CFG_L (128x128) or CFG_S (64x64).
cudaError_t conv_launch_simt(int pass, int cfg, dim3 grid, cudaStream_t s, const BgIgemmParams &p);
} // namespace bgk
#endif
