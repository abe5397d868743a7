/* Pinned host memory (kernels/host_mem.h). */
#include <cstdio>
#include <cuda_runtime.h>
#include "host_mem.h"

extern "C" int bg_host_alloc_pinned(void **p, size_t bytes, char *err, size_t errn)
{
    *p = nullptr;
    cudaError_t e = cudaHostAlloc(p, bytes ? bytes : 1, cudaHostAllocPortable);
    if (e != cudaSuccess) {
        if (err && errn) snprintf(err, errn, "%s", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky-free error state */
        *p = nullptr;
        return (int)e;
    }
    return 0;
}

extern "C" void bg_host_free_pinned(void *p)
{
    if (p) cudaFreeHost(p);
}
