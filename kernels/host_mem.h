/* Page-locked (pinned) host memory for staging batches that the trainer
 * copies to the device asynchronously. C linkage, implemented in
 * kernels/host_mem.cu; only compiled in with BG_WITH_CUDA. Callers fall back
 * to malloc when there is no CUDA build or no device (bg_cuda_available()). */
#ifndef BG_HOST_MEM_H
#define BG_HOST_MEM_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* cudaHostAlloc(portable); 0 on success, else the CUDA error code with its
 * text in err. */
int bg_host_alloc_pinned(void **p, size_t bytes, char *err, size_t errn);
/* cudaFreeHost; NULL is a no-op. */
void bg_host_free_pinned(void *p);

#ifdef __cplusplus
}
#endif
#endif
