/* CUDA convolution: forward, backward-data and backward-weight of conv2d on
 * NHWC activations and OHWI weights {co, kh, kw, c/groups}, f32 or f16 (f16
 * storage, f32 accumulation). Implemented in kernels/conv/conv.cu.
 *
 * Algorithms:
 *  - implicit GEMM (conv_problem.cuh on the engine of kernels/gemm): f16 runs
 *    on tensor cores, with cp.async 16-byte loads when the channels per group
 *    are multiples of 8 and register-staged scalar loads otherwise; f32 runs
 *    on FMA tiles. No im2col buffer. With a workspace, misaligned f16 channel
 *    counts (43, 86, 343...) are first copied into zero-padded buffers so the
 *    fast path applies (BG_CONV_PAD in bg_conv_opts.flags, on by default in AUTO).
 *  - depthwise (channels per group == 1): a direct kernel, any multiplier.
 *  - naive: one thread per output element; the reference for debugging.
 *
 * The forward pass can fuse bias, a residual add, ReLU or sigmoid and the per-channel
 * sum / sum of squares a following batchnorm needs (f16 tensor-core path;
 * other paths compute the statistics in a second pass over y).
 *
 * Every function returns 0, or with a one-line message in err BG_KERR_ARG /
 * BG_KERR_UNSUPPORTED (kernels/gemm/gemm.h) or a positive CUDA error code.
 * Nothing is allocated here: workspaces come from the caller, sized by
 * bg_conv_ws_bytes. */
#ifndef BG_CONV_H
#define BG_CONV_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

struct bg_rtc;

typedef struct {
    int n, h, w, c;       /* input {n, h, w, c} */
    int co, kh, kw;       /* weight {co, kh, kw, c/groups} */
    int sh, sw, ph, pw, dh, dw, groups;
} bg_conv_shape;

typedef enum { BG_CONV_FWD = 0, BG_CONV_DGRAD = 1, BG_CONV_WGRAD = 2 } bg_conv_pass;

typedef enum {
    BG_CONV_AUTO = 0,       /* depthwise when c/groups == 1, else implicit GEMM */
    BG_CONV_NAIVE,          /* one thread per output element */
    BG_CONV_IGEMM,          /* implicit GEMM (f16: cp.async if aligned, else padded or scalar; f32: FMA) */
    BG_CONV_IGEMM_SCALAR,   /* implicit GEMM with scalar loads, no padding (f16 tensor cores) */
    BG_CONV_DEPTHWISE       /* the direct depthwise kernel; fails unless c/groups == 1 */
} bg_conv_algo;

enum {
    BG_CONV_NO_PAD = 1,       /* never pad misaligned channels (use the scalar loader) */
    BG_CONV_DETERMINISTIC = 2 /* tile, split-K and chunking from the shape alone (planned for a nominal
                                 132-SM device, tuned tiles ignored): bit-identical results on every GPU */
};

typedef struct {
    bg_conv_algo algo;
    int config;             /* tensor-core tile 1..3 (bg_gemm_config_name), 0 = by shape */
    int splits;             /* wgrad split-K slices; 0 = by shape (needs ws), 1 = none */
    int flags;              /* BG_CONV_NO_PAD, BG_CONV_DETERMINISTIC */
    void *ws;               /* workspace, bg_conv_ws_bytes bytes, 256-byte aligned; may be NULL */
    size_t ws_bytes;
    struct bg_rtc *rtc;     /* NVRTC specialisation cache (kernels/rtc/rtc.h), or NULL */
} bg_conv_opts;

typedef struct {
    const void *bias;       /* {co}, x's dtype, or NULL */
    const void *residual;   /* y-shaped, added after the bias, or NULL */
    int act;                /* BG_ACT_NONE / BG_ACT_RELU / BG_ACT_SIGMOID (gemm.h), applied last */
    int accumulate;         /* y += conv(...) instead of y = conv(...) */
    float *sum, *sumsq;     /* {co} f32: per-channel sums of the final y over all pixels, or NULL */
} bg_conv_epilogue;

/* Output size; BG_KERR_ARG (with the reason) for a shape that has none. */
int bg_conv_check(const bg_conv_shape *s, int *ho, int *wo, char *err, size_t errn);
/* Workspace for the fastest path of `pass` (0 when it needs none). with_stats:
 * the forward will be asked for sum/sumsq. */
size_t bg_conv_ws_bytes(const bg_conv_shape *s, bg_conv_pass pass, int half, const bg_conv_opts *o, int with_stats);

int bg_conv_fwd_cuda(const bg_conv_shape *s, int half, const void *x, const void *w, void *y,
                     const bg_conv_epilogue *ep, const bg_conv_opts *o, void *stream, char *err, size_t errn);
/* dx (= or +=) the gradient w.r.t. x given dy. */
int bg_conv_dgrad_cuda(const bg_conv_shape *s, int half, const void *dy, const void *w, void *dx, int accumulate,
                       const bg_conv_opts *o, void *stream, char *err, size_t errn);
/* dw (= or +=) the gradient w.r.t. w given x and dy. */
int bg_conv_wgrad_cuda(const bg_conv_shape *s, int half, const void *x, const void *dy, void *dw, int accumulate,
                       const bg_conv_opts *o, void *stream, char *err, size_t errn);

/* The tile-choice search: times every tensor-core tile for this shape and
 * pass (a few runs each, overwriting `out`; a = x or dy and b = w or dy as in
 * the calls above) and remembers the fastest in o->rtc, which later calls
 * with config 0 use. *best gets the config, *ms its time per call. Cases
 * without a tile choice (not the f16 cp.async path) return 0 with *best = 0. */
int bg_conv_tune(const bg_conv_shape *s, bg_conv_pass pass, int half, const void *a, const void *b, void *out,
                 const bg_conv_opts *o, void *stream, int *best, float *ms, char *err, size_t errn);

/* Which kernel a call with these arguments would run, e.g.
 * "igemm-tc 128x128x32/8w/4st cp.async" or "depthwise"; for logs and benches. */
const char *bg_conv_describe(const bg_conv_shape *s, bg_conv_pass pass, int half, const bg_conv_opts *o, char *buf,
                             size_t n);

#ifdef __cplusplus
}
#endif
#endif
