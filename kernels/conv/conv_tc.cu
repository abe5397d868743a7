// Precompiled tensor-core implicit-GEMM convolution kernels: every pass with
// every tile config on the cp.async path, and the scalar-load path.
#include "conv_internal.h"
#include "conv_problem.cuh"
#include "../gemm/igemm_launch.h"

namespace bgk {

template <template <class, class, class> class Prob>
static cudaError_t run(int cfg, bool vec, dim3 grid, cudaStream_t s, const BgIgemmParams &p)
{
    if (!vec)
        return launch(tc_kernel<TcScalar, Prob<BgGeo, bg_f16, TcScalar>, false>, grid, TcScalar::THREADS,
                      TcScalar::SMEM_SCALAR, s, p);
    switch (cfg) {
    case CFG_L: return launch(tc_kernel<TcL, Prob<BgGeo, bg_f16, TcL>, true>, grid, TcL::THREADS, TcL::SMEM_VEC, s, p);
    case CFG_W: return launch(tc_kernel<TcW, Prob<BgGeo, bg_f16, TcW>, true>, grid, TcW::THREADS, TcW::SMEM_VEC, s, p);
    default: return launch(tc_kernel<TcS, Prob<BgGeo, bg_f16, TcS>, true>, grid, TcS::THREADS, TcS::SMEM_VEC, s, p);
    }
}

cudaError_t conv_launch_tc(int pass, int cfg, bool vec, dim3 grid, cudaStream_t s, const BgIgemmParams &p)
{
    switch (pass) {
    case 0: return run<ConvFprop>(cfg, vec, grid, s, p);
    case 1: return run<ConvDgrad>(cfg, vec, grid, s, p);
    default: return run<ConvWgrad>(cfg, vec, grid, s, p);
    }
}

} // namespace bgk
