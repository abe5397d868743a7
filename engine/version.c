/* Build and device descriptions (engine/version.h). BG_COMMIT and
 * BG_CUDA_TARGETS come from the Makefile. */
#include <stdio.h>
#include "version.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#endif

#ifndef BG_COMMIT
#define BG_COMMIT "unknown"
#endif
#ifndef BG_CUDA_TARGETS
#define BG_CUDA_TARGETS "?"
#endif

const char *bg_build_commit(void) { return BG_COMMIT; }

void bg_build_describe(char *buf, size_t n)
{
#if defined(BG_WITH_CUDA) && defined(BG_EMU_BUILD)
    snprintf(buf, n, "CUDA kernels built for the CPU emulator (tools/emu), not for a GPU");
#elif defined(BG_WITH_CUDA)
    snprintf(buf, n, "CUDA kernels for %s, with the CPU reference beside them", BG_CUDA_TARGETS);
#else
    snprintf(buf, n, "CPU-only build (no nvcc when it was built): the CPU backend only");
#endif
}

void bg_device_describe(char *buf, size_t n)
{
#ifdef BG_WITH_CUDA
    bg_cuda_describe(buf, n);
#else
    snprintf(buf, n, "no CUDA in this build");
#endif
}
