#include "tensor.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "philox.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#include "../kernels/random.h"
#endif

bg_desc bg_desc_make(bg_dtype dt, int ndim, const int64_t *shape)
{
    bg_desc d = {0};
    d.dtype = dt;
    d.ndim = ndim;
    for (int i = 0; i < ndim && i < BG_MAX_DIMS; i++) d.shape[i] = shape[i];
    return d;
}

int64_t bg_desc_numel(const bg_desc *d)
{
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}

static void set_contiguous_strides(bg_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

/* The tensor struct with its shape checked and no storage (data NULL). */
bg_tensor *bg_tensor_unbound(bg_ctx *ctx, bg_device device, bg_dtype dt, int ndim, const int64_t *shape,
                             const char *name)
{
    const char *nm = name ? name : "tensor";
    if (ndim < 0 || ndim > BG_MAX_DIMS) {
        bg_fail(ctx, BG_ERR_SHAPE, "tensor '%s': %d dims (at most %d)", nm, ndim, BG_MAX_DIMS);
        return NULL;
    }
    if ((unsigned)dt >= BG_DTYPE_COUNT) {
        bg_fail(ctx, BG_ERR_DTYPE, "tensor '%s': invalid dtype %d", nm, (int)dt);
        return NULL;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / 16 / shape[i])) {
            bg_fail(ctx, BG_ERR_SHAPE, "tensor '%s': invalid size %lld in dim %d", nm, (long long)shape[i], i);
            return NULL;
        }
        n *= shape[i];
    }
    bg_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        bg_fail(ctx, BG_ERR_OOM, "tensor '%s': out of host memory", nm);
        return NULL;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    set_contiguous_strides(t);
    t->dtype = dt;
    t->device = device;
    if (ndim == 4) t->layout = BG_NHWC;
    snprintf(t->name, sizeof t->name, "%s", nm);
    return t;
}

bg_tensor *bg_tensor_new(bg_ctx *ctx, bg_device device, bg_dtype dt, int ndim, const int64_t *shape,
                         const char *name)
{
    bg_tensor *t = bg_tensor_unbound(ctx, device, dt, ndim, shape, name);
    if (!t) return NULL;
    t->alloc_bytes = bg_nbytes(t);
    if (bg_alloc(ctx, device, t->alloc_bytes, t->name, &t->data) != BG_OK) {
        free(t);
        return NULL;
    }
    return t;
}

bg_tensor *bg_tensor_from_desc(bg_ctx *ctx, bg_device device, const bg_desc *d, const char *name)
{
    return bg_tensor_new(ctx, device, d->dtype, d->ndim, d->shape, name);
}

bg_tensor *bg_tensor_like(bg_ctx *ctx, const bg_tensor *t, const char *name)
{
    bg_tensor *r = bg_tensor_new(ctx, t->device, t->dtype, t->ndim, t->shape, name);
    if (r) r->layout = t->layout;
    return r;
}

void bg_tensor_free(bg_ctx *ctx, bg_tensor *t)
{
    if (!t) return;
    bg_tensor_free(ctx, t->grad);
    if (t->alloc_bytes) bg_free(ctx, t->device, t->data, t->alloc_bytes);
    free(t);
}

int64_t bg_numel(const bg_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t bg_nbytes(const bg_tensor *t) { return (size_t)bg_numel(t) * bg_dtype_size(t->dtype); }

bool bg_is_contiguous(const bg_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool bg_same_shape(const bg_tensor *a, const bg_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static const char *shape_fmt(int ndim, const int64_t *shape, bg_dtype dt, const char *dev, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "] %s%s%s", bg_dtype_name(dt), dev ? " " : "", dev ? dev : "");
    return buf;
}

const char *bg_shape_str(const bg_tensor *t, char *buf, size_t n)
{
    return shape_fmt(t->ndim, t->shape, t->dtype, bg_device_name(t->device), buf, n);
}

const char *bg_desc_str(const bg_desc *d, char *buf, size_t n)
{
    return shape_fmt(d->ndim, d->shape, d->dtype, NULL, buf, n);
}

bg_status bg_tensor_zero(bg_ctx *ctx, bg_tensor *t)
{
    if (!bg_is_contiguous(t)) return bg_fail(ctx, BG_ERR_ARG, "zero '%s': not contiguous", t->name);
    if (t->device == BG_CPU) {
        memset(t->data, 0, bg_nbytes(t));
        return BG_OK;
    }
#ifdef BG_WITH_CUDA
    char err[200];
    if (bg_cuda_memset(t->data, 0, bg_nbytes(t), ctx->stream, err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "zero '%s': %s", t->name, err);
    return BG_OK;
#else
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "zero '%s': no CUDA in this build", t->name);
#endif
}

bg_status bg_tensor_ensure_grad(bg_ctx *ctx, bg_tensor *t)
{
    if (t->grad) return BG_OK;
    char nm[64];
    snprintf(nm, sizeof nm, "%.40s.grad", t->name);
    t->grad = bg_tensor_like(ctx, t, nm);
    if (!t->grad) return ctx->status;
    return bg_tensor_zero(ctx, t->grad);
}

static bg_status copy_bytes(bg_ctx *ctx, void *dst, bg_device dd, const void *src, bg_device sd, size_t n,
                            const char *what)
{
    if (dd == BG_CPU && sd == BG_CPU) {
        memcpy(dst, src, n);
        return BG_OK;
    }
#ifdef BG_WITH_CUDA
    int kind = dd == BG_CUDA && sd == BG_CUDA ? BG_COPY_D2D : dd == BG_CUDA ? BG_COPY_H2D : BG_COPY_D2H;
    char err[200];
    if (bg_cuda_memcpy(dst, src, n, kind, ctx->stream, err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "copy '%s': %s", what, err);
    return BG_OK;
#else
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "copy '%s': no CUDA in this build", what);
#endif
}

bg_status bg_tensor_copy(bg_ctx *ctx, bg_tensor *dst, const bg_tensor *src)
{
    char a[96], b[96];
    if (!bg_same_shape(dst, src) || dst->dtype != src->dtype)
        return bg_fail(ctx, BG_ERR_SHAPE, "copy '%s' %s into '%s' %s: shapes or dtypes differ", src->name,
                       bg_shape_str(src, a, sizeof a), dst->name, bg_shape_str(dst, b, sizeof b));
    if (!bg_is_contiguous(dst) || !bg_is_contiguous(src))
        return bg_fail(ctx, BG_ERR_ARG, "copy '%s': strided copies are not supported", src->name);
    return copy_bytes(ctx, dst->data, dst->device, src->data, src->device, bg_nbytes(src), src->name);
}

bg_status bg_tensor_upload(bg_ctx *ctx, bg_tensor *t, const void *host, size_t n)
{
    if (n != bg_nbytes(t))
        return bg_fail(ctx, BG_ERR_SHAPE, "upload into '%s': %zu bytes given, tensor holds %zu", t->name, n, bg_nbytes(t));
    return copy_bytes(ctx, t->data, t->device, host, BG_CPU, n, t->name);
}

bg_status bg_tensor_download(bg_ctx *ctx, const bg_tensor *t, void *host, size_t n)
{
    if (n != bg_nbytes(t))
        return bg_fail(ctx, BG_ERR_SHAPE, "download of '%s': %zu bytes asked, tensor holds %zu", t->name, n, bg_nbytes(t));
    return copy_bytes(ctx, host, BG_CPU, t->data, t->device, n, t->name);
}

/* Offset in elements of the i-th element in row-major logical order. */
static int64_t elem_offset(const bg_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t k = i % t->shape[d];
        i /= t->shape[d];
        off += k * t->stride[d];
    }
    return off;
}

double bg_get(const bg_tensor *t, int64_t i)
{
    int64_t o = elem_offset(t, i);
    switch (t->dtype) {
    case BG_F32: return ((const float *)t->data)[o];
    case BG_F64: return ((const double *)t->data)[o];
    case BG_F16: return bg_f16_to_f32(((const uint16_t *)t->data)[o]);
    case BG_U8: return ((const uint8_t *)t->data)[o];
    case BG_I32: return ((const int32_t *)t->data)[o];
    default: return NAN;
    }
}

void bg_set(bg_tensor *t, int64_t i, double v)
{
    int64_t o = elem_offset(t, i);
    switch (t->dtype) {
    case BG_F32: ((float *)t->data)[o] = (float)v; break;
    case BG_F64: ((double *)t->data)[o] = v; break;
    case BG_F16: ((uint16_t *)t->data)[o] = bg_f32_to_f16((float)v); break;
    case BG_U8: ((uint8_t *)t->data)[o] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5); break;
    case BG_I32: ((int32_t *)t->data)[o] = (int32_t)v; break;
    default: break;
    }
}

bg_status bg_tensor_convert(bg_ctx *ctx, bg_tensor *dst, const bg_tensor *src)
{
    char a[96], b[96];
    if (dst->device != BG_CPU || src->device != BG_CPU)
        return bg_fail(ctx, BG_ERR_DEVICE, "convert '%s' -> '%s': CPU tensors only", src->name, dst->name);
    if (bg_numel(dst) != bg_numel(src))
        return bg_fail(ctx, BG_ERR_SHAPE, "convert '%s' %s -> '%s' %s: element counts differ", src->name,
                       bg_shape_str(src, a, sizeof a), dst->name, bg_shape_str(dst, b, sizeof b));
    int64_t n = bg_numel(src);
    for (int64_t i = 0; i < n; i++) bg_set(dst, i, bg_get(src, i));
    return BG_OK;
}

static bg_status check_fillable(bg_ctx *ctx, const bg_tensor *t, const char *what)
{
    if (!bg_dtype_is_float(t->dtype)) return bg_fail(ctx, BG_ERR_DTYPE, "%s '%s': float tensors only", what, t->name);
    if (!bg_is_contiguous(t)) return bg_fail(ctx, BG_ERR_ARG, "%s '%s': not contiguous", what, t->name);
    if (t->device == BG_CUDA && t->dtype == BG_F64)
        return bg_fail(ctx, BG_ERR_DTYPE, "%s '%s': f64 is a CPU-only dtype", what, t->name);
    return BG_OK;
}

/* The CUDA twin of the fills below (same stream layout). */
static bg_status fill_cuda(bg_ctx *ctx, bg_tensor *t, bool normal, uint64_t off, double a, double b)
{
#ifdef BG_WITH_CUDA
    int dt = t->dtype == BG_F16 ? 1 : 0;
    if (normal) bg_cuda_fill_normal(t->data, bg_numel(t), dt, ctx->seed, off, a, b, ctx->stream);
    else bg_cuda_fill_uniform(t->data, bg_numel(t), dt, ctx->seed, off, a, b, ctx->stream);
    char err[200];
    if (bg_cuda_check_launch(err, sizeof err)) return bg_fail(ctx, BG_ERR_CUDA, "fill '%s': %s", t->name, err);
    return BG_OK;
#else
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "fill '%s': no CUDA in this build", t->name);
#endif
}

/* Element i takes word i%4 of Philox block i/4 of a fresh stream, so a
 * GPU kernel drawing the same (seed, offset) produces the same values. */
bg_status bg_tensor_fill_uniform(bg_ctx *ctx, bg_tensor *t, double lo, double hi)
{
    bg_status s = check_fillable(ctx, t, "fill_uniform");
    if (s) return s;
    int64_t n = bg_numel(t);
    uint64_t off = bg_rng_take(ctx, (uint64_t)(n + 3) / 4);
    if (t->device != BG_CPU) return fill_cuda(ctx, t, false, off, lo, hi);
    for (int64_t i = 0; i < n; i++) {
        bg_u32x4 r = bg_philox_block(ctx->seed, off, (uint64_t)i / 4);
        bg_set(t, i, lo + (hi - lo) * bg_u32_to_unit(r.v[i % 4]));
    }
    return BG_OK;
}

/* Box-Muller on words (0,1) and (2,3) of each block: 2 normals per pair. */
bg_status bg_tensor_fill_normal(bg_ctx *ctx, bg_tensor *t, double mean, double std)
{
    bg_status s = check_fillable(ctx, t, "fill_normal");
    if (s) return s;
    int64_t n = bg_numel(t);
    uint64_t off = bg_rng_take(ctx, (uint64_t)(n + 3) / 4);
    if (t->device != BG_CPU) return fill_cuda(ctx, t, true, off, mean, std);
    for (int64_t i = 0; i < n; i += 4) {
        bg_u32x4 r = bg_philox_block(ctx->seed, off, (uint64_t)i / 4);
        for (int k = 0; k < 4 && i + k < n; k += 2) {
            double u1 = bg_u32_to_unit_open0(r.v[k]), u2 = bg_u32_to_unit(r.v[k + 1]);
            double rad = sqrt(-2.0 * log(u1));
            bg_set(t, i + k, mean + std * rad * cos(2.0 * M_PI * u2));
            if (i + k + 1 < n) bg_set(t, i + k + 1, mean + std * rad * sin(2.0 * M_PI * u2));
        }
    }
    return BG_OK;
}

bg_status bg_tensor_fill_const(bg_ctx *ctx, bg_tensor *t, double v)
{
    if (t->device != BG_CPU) return bg_fail(ctx, BG_ERR_DEVICE, "fill_const '%s': CPU tensors only", t->name);
    bg_status s = check_fillable(ctx, t, "fill_const");
    if (s) return s;
    int64_t n = bg_numel(t);
    for (int64_t i = 0; i < n; i++) bg_set(t, i, v);
    return BG_OK;
}

bg_status bg_check_ndim(bg_ctx *ctx, const bg_tensor *t, int ndim, const char *what)
{
    char b[96];
    if (t->ndim != ndim)
        return bg_fail(ctx, BG_ERR_SHAPE, "%s '%s' must have %d dims, got %s", what, t->name, ndim,
                       bg_shape_str(t, b, sizeof b));
    return BG_OK;
}
