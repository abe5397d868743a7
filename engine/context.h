/* The context: everything a call needs that is not an argument. There is no
 * hidden global state in the library; two contexts are fully independent. */
#ifndef BG_CONTEXT_H
#define BG_CONTEXT_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include "status.h"
#include "alloc.h"
#include "cpu_isa.h"

typedef enum { BG_CPU = 0, BG_CUDA = 1, BG_NDEVICES } bg_device;

struct bg_rtc;

typedef struct bg_ctx {
    bg_device device;                 /* where new tensors go by default */
    bg_allocator alloc[BG_NDEVICES];  /* one capped, accounted allocator per device */
    uint64_t seed;                    /* Philox key for every random draw */
    uint64_t rng_offset;              /* next unused Philox counter block */
    void *stream;                     /* cudaStream_t when device is CUDA, else NULL */
    bool deterministic;               /* no atomics in reductions */
    /* Which CPU kernels run CPU tensors (engine/cpu_isa.h): fast by default,
     * at the best instruction set the CPU runs; BUDGIE_CPU and
     * BUDGIE_CPU_ISA override at bg_ctx_init. */
    bg_cpu_backend cpu_backend;
    bg_cpu_isa cpu_isa;
    /* NVRTC specialisation cache of the CUDA conv/GEMM kernels
     * (kernels/rtc/rtc.h), owned by whoever set it; NULL = the precompiled
     * kernels only. Ops pass it to the kernels; the context never frees it. */
    struct bg_rtc *rtc;
    bg_status status;                 /* the last error */
    char err[512];                    /* its message */
} bg_ctx;

/* A CUDA context fails with BG_ERR_UNSUPPORTED when the build has no CUDA or no
 * device is present; the message says which. A BUDGIE_CPU or BUDGIE_CPU_ISA
 * this machine cannot honour fails too (BG_ERR_ARG / BG_ERR_UNSUPPORTED). */
bg_status bg_ctx_init(bg_ctx *ctx, bg_device device, uint64_t seed);
void bg_ctx_free(bg_ctx *ctx);
const char *bg_device_name(bg_device d);
/* 1 when this build has CUDA and a device answers. */
int bg_cuda_available(void);

/* Record an error in the context and return its code (printf-style message). */
bg_status bg_fail(bg_ctx *ctx, bg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *bg_errmsg(const bg_ctx *ctx);
void bg_clear_error(bg_ctx *ctx);

/* Reserve n Philox counter blocks (4 x u32 each) and return the first. */
uint64_t bg_rng_take(bg_ctx *ctx, uint64_t nblocks);

#endif
