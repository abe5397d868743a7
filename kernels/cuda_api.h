/* The C side's view of the CUDA runtime: plain functions with C linkage,
 * implemented in kernels/device.cu. Only compiled in with BG_WITH_CUDA.
 * Each returns 0 on success, or a CUDA error code with its text in err. */
#ifndef BG_CUDA_API_H
#define BG_CUDA_API_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

enum { BG_COPY_H2D = 0, BG_COPY_D2H = 1, BG_COPY_D2D = 2 };

int bg_cuda_device_count(void);
/* One line on the CUDA runtime and device 0 ("CUDA runtime 13.0, driver
 * 13.0; device 0: NAME, sm_90, 132 SMs, 79.1 GiB"), or why there is none. */
void bg_cuda_describe(char *buf, size_t n);
int bg_cuda_malloc(void **p, size_t bytes, char *err, size_t errn);
/* 0, or the CUDA error (cudaFree fails during a stream capture, for one). */
int bg_cuda_free(void *p);
/* Free and total device memory (cudaMemGetInfo). */
int bg_cuda_mem_info(size_t *free_bytes, size_t *total_bytes);
int bg_cuda_memcpy(void *dst, const void *src, size_t bytes, int kind, void *stream, char *err, size_t errn);
int bg_cuda_memset(void *p, int value, size_t bytes, void *stream, char *err, size_t errn);
int bg_cuda_stream_create(void **stream, char *err, size_t errn);
void bg_cuda_stream_destroy(void *stream);
int bg_cuda_sync(void *stream, char *err, size_t errn);
/* The last launch error (cudaGetLastError), 0 if none. */
int bg_cuda_check_launch(char *err, size_t errn);

#ifdef __cplusplus
}
#endif
#endif
