/* Tensors: up to 4-D, element strides, a dtype and a device.
 * Activations are NHWC on every backend (shape = {N, H, W, C}); conv weights
 * are OHWI ({Cout, kh, kw, Cin/groups}). The layout tag records which of the
 * two 4-D conventions a tensor follows so NCHW data (PyTorch) is expressible
 * and converted at the boundary, never silently mixed. */
#ifndef BG_TENSOR_H
#define BG_TENSOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "context.h"
#include "dtype.h"

#define BG_MAX_DIMS 4

typedef enum { BG_LAYOUT_ANY = 0, BG_NHWC, BG_NCHW } bg_layout;

typedef struct bg_tensor {
    int ndim;
    int64_t shape[BG_MAX_DIMS];
    int64_t stride[BG_MAX_DIMS]; /* in elements */
    bg_dtype dtype;
    bg_device device;
    bg_layout layout;
    void *data;
    size_t alloc_bytes;          /* bytes owned (0 for a view) */
    struct bg_tensor *grad;      /* same shape/dtype/device; NULL until needed */
    bool requires_grad;
    bool is_param;
    char name[48];               /* used in error messages and state dicts */
} bg_tensor;

/* A shape + dtype without storage: what shape inference produces. */
typedef struct {
    int ndim;
    int64_t shape[BG_MAX_DIMS];
    bg_dtype dtype;
} bg_desc;

bg_desc bg_desc_make(bg_dtype dt, int ndim, const int64_t *shape);
int64_t bg_desc_numel(const bg_desc *d);

/* Create a contiguous tensor on `device`, storage from the capped allocator.
 * Contents are uninitialised. Returns NULL with the error in ctx. */
bg_tensor *bg_tensor_new(bg_ctx *ctx, bg_device device, bg_dtype dt, int ndim,
                         const int64_t *shape, const char *name);
/* The same without storage (data NULL, alloc_bytes 0): a deferred graph
 * records such tensors and its memory plan later points them into its arena. */
bg_tensor *bg_tensor_unbound(bg_ctx *ctx, bg_device device, bg_dtype dt, int ndim, const int64_t *shape,
                             const char *name);
bg_tensor *bg_tensor_from_desc(bg_ctx *ctx, bg_device device, const bg_desc *d, const char *name);
/* Same shape/dtype/device as t (contents uninitialised). */
bg_tensor *bg_tensor_like(bg_ctx *ctx, const bg_tensor *t, const char *name);
void bg_tensor_free(bg_ctx *ctx, bg_tensor *t); /* frees grad too; NULL is fine */

int64_t bg_numel(const bg_tensor *t);
size_t bg_nbytes(const bg_tensor *t);
bool bg_is_contiguous(const bg_tensor *t);
bool bg_same_shape(const bg_tensor *a, const bg_tensor *b);
/* "[2, 8, 8, 3] f32 cpu" into buf; returns buf. */
const char *bg_shape_str(const bg_tensor *t, char *buf, size_t n);
const char *bg_desc_str(const bg_desc *d, char *buf, size_t n);

/* Allocate t->grad if missing (zeroed). */
bg_status bg_tensor_ensure_grad(bg_ctx *ctx, bg_tensor *t);
bg_status bg_tensor_zero(bg_ctx *ctx, bg_tensor *t);
/* Copy between any devices; shapes must match, dtypes must match. */
bg_status bg_tensor_copy(bg_ctx *ctx, bg_tensor *dst, const bg_tensor *src);
/* Copy with dtype conversion (CPU tensors): f32/f16/f64/u8/i32 to any float type. */
bg_status bg_tensor_convert(bg_ctx *ctx, bg_tensor *dst, const bg_tensor *src);
/* Host <-> tensor bytes (any device). n must equal bg_nbytes(t). */
bg_status bg_tensor_upload(bg_ctx *ctx, bg_tensor *t, const void *host, size_t n);
bg_status bg_tensor_download(bg_ctx *ctx, const bg_tensor *t, void *host, size_t n);

/* Random fills through the context's Philox stream: CPU (f32/f16/f64) and
 * CUDA (f32/f16) draw identical streams. fill_const is CPU only. */
bg_status bg_tensor_fill_uniform(bg_ctx *ctx, bg_tensor *t, double lo, double hi);
bg_status bg_tensor_fill_normal(bg_ctx *ctx, bg_tensor *t, double mean, double std);
bg_status bg_tensor_fill_const(bg_ctx *ctx, bg_tensor *t, double v);

/* Element access on CPU tensors as double, for tests and tools (slow). */
double bg_get(const bg_tensor *t, int64_t i);
void bg_set(bg_tensor *t, int64_t i, double v);

/* Fail unless t has the expected rank; `what` names the tensor in the message. */
bg_status bg_check_ndim(bg_ctx *ctx, const bg_tensor *t, int ndim, const char *what);

#endif
