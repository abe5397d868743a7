// Precompiled FP32 (FMA) implicit-GEMM convolution kernels.
#include "conv_internal.h"
#include "conv_problem.cuh"
#include "../gemm/igemm_launch.h"

namespace bgk {

template <template <class, class, class> class Prob>
static cudaError_t run(int cfg, dim3 grid, cudaStream_t s, const BgIgemmParams &p)
{
    if (cfg == CFG_L)
        return launch(simt_kernel<SimtL, Prob<BgGeo, float, SimtL>>, grid, SimtL::THREADS, SimtL::SMEM, s, p);
    return launch(simt_kernel<SimtS, Prob<BgGeo, float, SimtS>>, grid, SimtS::THREADS, SimtS::SMEM, s, p);
}

cudaError_t conv_launch_simt(int pass, int cfg, dim3 grid, cudaStream_t s, const BgIgemmParams &p)
{
    switch (pass) {
    case 0: return run<ConvFprop>(cfg, grid, s, p);
    case 1: return run<ConvDgrad>(cfg, grid, s, p);
    default: return run<ConvWgrad>(cfg, grid, s, p);
    }
}

} // namespace bgk
