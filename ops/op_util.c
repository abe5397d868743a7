#include "op_util.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#endif

bg_status bg_op_cpu_dtype(bg_ctx *ctx, const bg_node *n, const bg_tensor *t, const char *role)
{
    if (t->dtype == BG_F32 || t->dtype == BG_F64) return BG_OK;
    return bg_fail(ctx, BG_ERR_DTYPE, "%s: %s '%s' is %s; the CPU kernel takes f32 or f64", n->op->name, role,
                   t->name, bg_dtype_name(t->dtype));
}

bg_status bg_op_cuda_dtype(bg_ctx *ctx, const bg_node *n, const bg_tensor *t, const char *role, int *half)
{
    if (t->dtype == BG_F32 || t->dtype == BG_F16) {
        *half = t->dtype == BG_F16;
        return BG_OK;
    }
    return bg_fail(ctx, BG_ERR_DTYPE, "%s: %s '%s' is %s; the CUDA kernel takes f32 or f16", n->op->name, role,
                   t->name, bg_dtype_name(t->dtype));
}

bg_status bg_op_check_dense_inputs(bg_ctx *ctx, const bg_node *n, bg_device dev, int *half)
{
    int h = 0;
    for (int i = 0; i < n->n_in; i++) {
        const bg_tensor *t = n->in[i];
        if (!t || !bg_dtype_is_float(t->dtype)) continue;
        const char *role = n->op->in_names[i] ? n->op->in_names[i] : "input";
        bg_status s = dev == BG_CPU ? bg_op_cpu_dtype(ctx, n, t, role) : bg_op_cuda_dtype(ctx, n, t, role, &h);
        if (s) return s;
        if (!bg_is_contiguous(t)) return bg_fail(ctx, BG_ERR_ARG, "%s: %s '%s' is not contiguous", n->op->name, role, t->name);
    }
    if (half) *half = n->in[0]->dtype == BG_F16;
    return BG_OK;
}

bool bg_op_same_backend_dtype(bg_device dev, bg_tensor *const *in, int n_in)
{
    if (n_in < 1 || !in[0]) return false;
    bg_dtype dt = in[0]->dtype;
    if (!(dt == BG_F32 || (dev == BG_CPU ? dt == BG_F64 : dt == BG_F16))) return false;
    for (int i = 1; i < n_in; i++)
        if (in[i] && in[i]->dtype != dt) return false;
    return true;
}

bg_status bg_op_cuda_launched(bg_ctx *ctx, const bg_node *n, const char *pass)
{
#ifdef BG_WITH_CUDA
    char err[200];
    if (bg_cuda_check_launch(err, sizeof err)) return bg_fail(ctx, BG_ERR_CUDA, "%s %s: %s", n->op->name, pass, err);
    return BG_OK;
#else
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "%s %s: this build has no CUDA", n->op->name, pass);
#endif
}
