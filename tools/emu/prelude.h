/* Force-included (g++ -include) when tools/emu/nvcc-emu preprocesses a CUDA
 * source for the emulator. It fixes how the CUDA keywords come out of the
 * preprocessor: the ones the rewriter acts on (__global__, __shared__,
 * __launch_bounds__) stay as they are written, the others take the host
 * meaning NVIDIA's host headers give them (__device__ and __host__ vanish,
 * __align__ becomes an aligned attribute). Then it brings in bgemu.h, so the
 * built-in variables and intrinsics are defined before the source starts.
 *
 * __CUDACC__ and __CUDA_ARCH__ stay undefined: the CUDA headers must take
 * their host paths (the emulator runs everything as host code), and so do
 * the project's own `#ifdef __CUDA_ARCH__` branches (documented in
 * docs/emulator.md). BG_EMU is defined instead for code that must know. */
#ifndef BGEMU_PRELUDE_H
#define BGEMU_PRELUDE_H

/* A macro that names itself is not expanded again: the keyword survives
 * preprocessing, and host_defines.h, seeing it defined, leaves it alone. */
#define __global__ __global__
#define __shared__ __shared__

#include <cuda_runtime.h>
#include <cuda_fp16.h>

/* host_defines.h makes it always_inline: plain inline compiles faster and
 * keeps kernel frames visible to a debugger. */
#undef __forceinline__
#define __forceinline__ inline

#ifndef BG_EMU
#define BG_EMU 1
#endif

#include "bgemu.h"

/* The built-in variables: the running fiber's. */
#define threadIdx (::bgemu::t_cur->tid)
#define blockIdx (::bgemu::t_cur->bid)
#define blockDim (::bgemu::t_cur->bdim)
#define gridDim (::bgemu::t_cur->gdim)
#define warpSize 32

#endif
