#include "init.h"
#include <math.h>

bg_status bg_init_kaiming_normal_fan_out(bg_ctx *ctx, bg_tensor *w)
{
    if (w->ndim < 2) return bg_fail(ctx, BG_ERR_SHAPE, "kaiming init of '%s': needs at least 2 dims", w->name);
    int64_t fan_out = w->shape[0];
    if (w->ndim == 4) fan_out *= w->shape[1] * w->shape[2]; /* OHWI: Cout*kh*kw */
    return bg_tensor_fill_normal(ctx, w, 0.0, sqrt(2.0 / (double)fan_out));
}

bg_status bg_init_uniform_fan_in(bg_ctx *ctx, bg_tensor *t, int64_t fan_in)
{
    double b = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    return bg_tensor_fill_uniform(ctx, t, -b, b);
}

static bg_tensor *make_on_device(bg_ctx *ctx, bg_device device, int ndim, const int64_t *shape, const char *name,
                                 bg_fill_fn fill, void *arg, double value)
{
    bg_tensor *h = bg_tensor_new(ctx, BG_CPU, BG_F32, ndim, shape, name);
    if (!h) return NULL;
    bg_status s = fill ? fill(ctx, h, arg) : bg_tensor_fill_const(ctx, h, value);
    if (s) {
        bg_tensor_free(ctx, h);
        return NULL;
    }
    if (device == BG_CPU) return h;
    bg_tensor *d = bg_tensor_new(ctx, device, BG_F32, ndim, shape, name);
    if (d && bg_tensor_copy(ctx, d, h)) {
        bg_tensor_free(ctx, d);
        d = NULL;
    }
    bg_tensor_free(ctx, h);
    return d;
}

bg_tensor *bg_param_new(bg_ctx *ctx, bg_device device, int ndim, const int64_t *shape, const char *name,
                        bg_fill_fn fill, void *arg)
{
    bg_tensor *t = make_on_device(ctx, device, ndim, shape, name, fill, arg, 0.0);
    if (t) t->is_param = t->requires_grad = true;
    return t;
}

bg_tensor *bg_buffer_new(bg_ctx *ctx, bg_device device, int ndim, const int64_t *shape, const char *name,
                         double value)
{
    return make_on_device(ctx, device, ndim, shape, name, NULL, NULL, value);
}
