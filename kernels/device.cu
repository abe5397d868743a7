// The CUDA runtime shim: the only place the host library touches the CUDA
// runtime API for memory and streams. Allocation policy (the cap, the
// accounting) lives in engine/alloc.c; this file only performs the calls.
#include <cuda_runtime.h>
#include <stdio.h>
#include "cuda_api.h"

static int report(cudaError_t e, const char *what, char *err, size_t errn)
{
    if (e == cudaSuccess) return 0;
    if (err && errn) snprintf(err, errn, "%s: %s", what, cudaGetErrorString(e));
    return (int)e;
}

extern "C" int bg_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" error
        return 0;
    }
    return n;
}

extern "C" void bg_cuda_describe(char *buf, size_t n)
{
    int rt = 0, drv = 0, count = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    char d[32] = "no CUDA driver";
    if (drv > 0) snprintf(d, sizeof d, "driver %d.%d", drv / 1000, drv % 1000 / 10);
    const int k = snprintf(buf, n, "CUDA runtime %d.%d, %s; ", rt / 1000, rt % 1000 / 10, d);
    char *rest = buf + (k > 0 && (size_t)k < n ? k : 0);
    const size_t left = n - (size_t)(rest - buf);
    const cudaError_t e = cudaGetDeviceCount(&count);
    cudaDeviceProp p;
    if (e != cudaSuccess || count <= 0) {
        cudaGetLastError();
        snprintf(rest, left, "no device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    } else if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        cudaGetLastError();
        snprintf(rest, left, "%d device(s); device 0 does not answer", count);
    } else {
        snprintf(rest, left, "device 0 of %d: %s, sm_%d%d, %d SMs, %.1f GiB", count, p.name, p.major, p.minor,
                 p.multiProcessorCount, (double)p.totalGlobalMem / (1u << 30));
    }
}

extern "C" int bg_cuda_malloc(void **p, size_t bytes, char *err, size_t errn)
{
    return report(cudaMalloc(p, bytes), "cudaMalloc", err, errn);
}

extern "C" int bg_cuda_free(void *p)
{
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess) cudaGetLastError(); // the caller acts on the code; keep it from the next launch check
    return (int)e;
}

extern "C" int bg_cuda_mem_info(size_t *free_bytes, size_t *total_bytes)
{
    cudaError_t e = cudaMemGetInfo(free_bytes, total_bytes);
    if (e != cudaSuccess) cudaGetLastError();
    return (int)e;
}

extern "C" int bg_cuda_memcpy(void *dst, const void *src, size_t bytes, int kind, void *stream,
                              char *err, size_t errn)
{
    cudaMemcpyKind k = kind == BG_COPY_H2D ? cudaMemcpyHostToDevice
                     : kind == BG_COPY_D2H ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    cudaStream_t s = (cudaStream_t)stream;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, k, s);
    // Host-visible copies complete before returning, so callers may reuse buffers.
    if (e == cudaSuccess && kind != BG_COPY_D2D) e = cudaStreamSynchronize(s);
    return report(e, "cudaMemcpy", err, errn);
}

extern "C" int bg_cuda_memset(void *p, int value, size_t bytes, void *stream, char *err, size_t errn)
{
    return report(cudaMemsetAsync(p, value, bytes, (cudaStream_t)stream), "cudaMemset", err, errn);
}

extern "C" int bg_cuda_stream_create(void **stream, char *err, size_t errn)
{
    cudaStream_t s;
    int rc = report(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate", err, errn);
    *stream = rc ? NULL : (void *)s;
    return rc;
}

extern "C" void bg_cuda_stream_destroy(void *stream)
{
    if (stream) cudaStreamDestroy((cudaStream_t)stream);
}

extern "C" int bg_cuda_sync(void *stream, char *err, size_t errn)
{
    return report(cudaStreamSynchronize((cudaStream_t)stream), "cudaStreamSynchronize", err, errn);
}

extern "C" int bg_cuda_check_launch(char *err, size_t errn)
{
    return report(cudaGetLastError(), "kernel launch", err, errn);
}
