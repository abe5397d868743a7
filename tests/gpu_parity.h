/* Host-side helpers of the GPU kernel tests (test_gpu_gemm.c, test_gpu_conv.c):
 * values live in double on the host, are rounded to the kernel's storage
 * dtype on upload, and come back as double for comparison. */
#ifndef BG_GPU_PARITY_H
#define BG_GPU_PARITY_H
#include <stdbool.h>
#include "../engine/tensor.h"

typedef struct { uint64_t s; } gp_rng; /* xorshift64; seed must be non-zero */
double gp_rnd(gp_rng *r);              /* uniform in [-1, 1) */

/* A 1-D CUDA tensor of n values (f16 when half, else f32) holding v rounded to
 * that dtype; back[i] gets the rounded value, i.e. what the GPU sees (back may
 * be v itself). n = 0 gives a one-element zero tensor. NULL on failure. */
bg_tensor *gp_upload(bg_ctx *g, int64_t n, int half, const double *v, double *back);
/* The first n values of an f32/f16 CUDA tensor as doubles. */
bool gp_download(bg_ctx *g, const bg_tensor *t, int64_t n, double *out);
/* ||got - ref|| / ||ref|| (plain norm when ref is zero); INFINITY if any got is not finite. */
double gp_rel_l2(const double *got, const double *ref, int64_t n);
/* True when the CUDA device is budgie's emulator (tools/emu), whose knobs
 * (BGEMU_SM_COUNT, BGEMU_NVRTC_FAIL) some tests need; name gets the device's
 * name for a skip message. */
bool gp_on_emulator(char *name, size_t n);

#endif
