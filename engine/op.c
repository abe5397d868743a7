/* Generic op machinery: parameter fields, standalone nodes, dispatch. */
#include "op.h"
#include <stdio.h>
#include <string.h>

static const bg_param_field *find_field(const bg_op *op, const char *name)
{
    for (int i = 0; i < op->n_fields; i++)
        if (!strcmp(op->fields[i].name, name)) return &op->fields[i];
    return NULL;
}

static int field_width(bg_param_kind k) { return k == BG_P_INT2 ? 2 : k == BG_P_INT4 ? 4 : 1; }

static void field_store(const bg_param_field *f, void *params, const double *v, int nv)
{
    unsigned char *base = (unsigned char *)params + f->offset;
    switch (f->kind) {
    case BG_P_INT:
    case BG_P_BOOL: *(int *)base = (int)v[0]; break;
    case BG_P_FLOAT: *(float *)base = (float)v[0]; break;
    case BG_P_INT2:
    case BG_P_INT4:
        for (int i = 0; i < field_width(f->kind); i++)
            /* a scalar sets every slot of an INT2 (3 -> 3x3); INT4 takes what is given */
            ((int *)base)[i] = (int)(i < nv ? v[i] : f->kind == BG_P_INT2 ? v[0] : 0);
        break;
    }
}

void bg_op_default_params(const bg_op *op, void *params)
{
    memset(params, 0, op->param_size);
    for (int i = 0; i < op->n_fields; i++) field_store(&op->fields[i], params, op->fields[i].dflt, 4);
}

bg_status bg_op_set_param(bg_ctx *ctx, const bg_op *op, void *params, const char *field, const double *v, int nv)
{
    const bg_param_field *f = find_field(op, field);
    if (!f) {
        char known[256] = "";
        for (int i = 0; i < op->n_fields; i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, op->fields[i].name, sizeof known - strlen(known) - 1);
        }
        return bg_fail(ctx, BG_ERR_ARG, "op '%s' has no parameter '%s' (known: %s)", op->name, field,
                       known[0] ? known : "none");
    }
    int w = field_width(f->kind);
    if (nv < 1 || nv > w || (f->kind == BG_P_INT2 && nv != 1 && nv != 2))
        return bg_fail(ctx, BG_ERR_ARG, "op '%s' parameter '%s' takes %s, got %d values", op->name, field,
                       w == 1 ? "one value" : w == 2 ? "1 or 2 values" : "1 to 4 values", nv);
    if (f->kind != BG_P_FLOAT)
        for (int i = 0; i < nv; i++)
            if (v[i] != (double)(int)v[i])
                return bg_fail(ctx, BG_ERR_ARG, "op '%s' parameter '%s' must be an integer, got %g", op->name, field, v[i]);
    field_store(f, params, v, nv);
    return BG_OK;
}

const char *bg_op_params_str(const bg_op *op, const void *params, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < op->n_fields && k < n; i++) {
        const bg_param_field *f = &op->fields[i];
        const unsigned char *base = (const unsigned char *)params + f->offset;
        k += (size_t)snprintf(buf + k, n - k, "%s%s=", i ? " " : "", f->name);
        if (k >= n) break;
        if (f->kind == BG_P_FLOAT) k += (size_t)snprintf(buf + k, n - k, "%g", *(const float *)base);
        else if (f->kind == BG_P_INT || f->kind == BG_P_BOOL) k += (size_t)snprintf(buf + k, n - k, "%d", *(const int *)base);
        else {
            int w = field_width(f->kind);
            for (int j = 0; j < w && k < n; j++)
                k += (size_t)snprintf(buf + k, n - k, "%s%d", j ? "," : "", ((const int *)base)[j]);
        }
    }
    return buf;
}

bg_status bg_op_check_same_device(bg_ctx *ctx, const bg_node *n)
{
    const bg_tensor *first = NULL;
    for (int i = 0; i < n->n_in; i++) {
        const bg_tensor *t = n->in[i];
        if (!t) continue;
        if (!first) first = t;
        else if (t->device != first->device)
            return bg_fail(ctx, BG_ERR_DEVICE, "%s: input '%s' is on %s but '%s' is on %s", n->op->name,
                           t->name, bg_device_name(t->device), first->name, bg_device_name(first->device));
    }
    return BG_OK;
}

bg_status bg_op_check_float(bg_ctx *ctx, const bg_node *n, int i)
{
    const bg_tensor *t = n->in[i];
    if (t && !bg_dtype_is_float(t->dtype))
        return bg_fail(ctx, BG_ERR_DTYPE, "%s: %s '%s' must be a float tensor, got %s", n->op->name,
                       n->op->in_names[i], t->name, bg_dtype_name(t->dtype));
    return BG_OK;
}

bg_status bg_op_check_same_dtype(bg_ctx *ctx, const bg_node *n, int i, int j)
{
    const bg_tensor *a = n->in[i], *b = n->in[j];
    if (a && b && a->dtype != b->dtype)
        return bg_fail(ctx, BG_ERR_DTYPE, "%s: %s '%s' is %s but %s '%s' is %s", n->op->name, n->op->in_names[i],
                       a->name, bg_dtype_name(a->dtype), n->op->in_names[j], b->name, bg_dtype_name(b->dtype));
    return BG_OK;
}

void bg_node_release(bg_ctx *ctx, bg_node *n)
{
    for (int i = 0; i < n->n_out; i++) bg_tensor_free(ctx, n->out[i]), n->out[i] = NULL;
    for (int i = 0; i < n->n_saved; i++) bg_tensor_free(ctx, n->saved[i]), n->saved[i] = NULL;
    n->n_out = n->n_saved = 0;
}

bool bg_op_supports(const bg_op *op, bg_device dev, const void *params, bg_tensor *const *in, int n_in)
{
    if (!op || (int)dev < 0 || dev >= BG_NDEVICES || !op->fwd[dev] || !op->bwd[dev]) return false;
    return !op->supports || op->supports(dev, params, in, n_in);
}

bg_status bg_node_init(bg_ctx *ctx, bg_node *n, const bg_op *op, const void *params, bg_tensor *const *in,
                       int n_in, bool train)
{
    return bg_node_init_ex(ctx, n, op, params, in, n_in, train, true);
}

static bg_tensor *node_tensor(bg_ctx *ctx, bg_device dev, const bg_desc *d, const char *nm, bool bind)
{
    return bind ? bg_tensor_from_desc(ctx, dev, d, nm) : bg_tensor_unbound(ctx, dev, d->dtype, d->ndim, d->shape, nm);
}

bg_status bg_node_init_ex(bg_ctx *ctx, bg_node *n, const bg_op *op, const void *params, bg_tensor *const *in,
                          int n_in, bool train, bool bind)
{
    memset(n, 0, sizeof *n);
    if (!op) return bg_fail(ctx, BG_ERR_ARG, "null op");
    if (op->param_size > BG_PARAM_BYTES)
        return bg_fail(ctx, BG_ERR_ARG, "%s: parameter struct too large", op->name);
    if (n_in > op->n_in || n_in < op->n_in_required)
        return bg_fail(ctx, BG_ERR_ARG, "%s: takes %d to %d inputs, got %d", op->name, op->n_in_required, op->n_in, n_in);
    n->op = op;
    n->train = train;
    n->n_in = op->n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    for (int i = 0; i < op->n_in_required; i++)
        if (!n->in[i]) return bg_fail(ctx, BG_ERR_ARG, "%s: required input '%s' is missing", op->name, op->in_names[i]);
    if (params) memcpy(n->p.bytes, params, op->param_size);
    else bg_op_default_params(op, n->p.bytes);
    bg_status s = bg_op_check_same_device(ctx, n);
    if (s) return s;
    bg_desc out[BG_MAX_OUT], saved[BG_MAX_SAVED];
    int n_out = 0, n_saved = 0;
    memset(out, 0, sizeof out);
    memset(saved, 0, sizeof saved);
    s = op->infer(ctx, n, out, &n_out, saved, &n_saved);
    if (s) return s;
    bg_device dev = n->in[0]->device;
    char nm[64];
    for (int i = 0; i < n_out; i++) {
        snprintf(nm, sizeof nm, "%s.%s", op->name, op->out_names[i] ? op->out_names[i] : "out");
        n->out[i] = node_tensor(ctx, dev, &out[i], nm, bind);
        if (!n->out[i]) return bg_node_release(ctx, n), ctx->status;
        n->n_out++;
    }
    for (int i = 0; i < n_saved; i++) {
        snprintf(nm, sizeof nm, "%s.saved%d", op->name, i);
        n->saved[i] = node_tensor(ctx, dev, &saved[i], nm, bind);
        if (!n->saved[i]) return bg_node_release(ctx, n), ctx->status;
        n->n_saved++;
    }
    return BG_OK;
}

/* Whether a fast CPU kernel (may) take this node under ctx. */
static bool fast_runs(const bg_ctx *ctx, const bg_node *n, bg_kernel_fn fast)
{
    return fast && n->in[0]->device == BG_CPU && ctx->cpu_backend == BG_CPU_FAST;
}

static bg_status dispatch(bg_ctx *ctx, bg_node *n, bg_kernel_fn const *table, bg_kernel_fn fast, const char *pass)
{
    bg_device dev = n->in[0]->device;
    if (fast_runs(ctx, n, fast)) {
        bg_status s = fast(ctx, n);
        if (s != BG_ERR_UNSUPPORTED) return s;
        /* declined (a dtype or shape it does not cover): the reference takes it */
    }
    bg_kernel_fn fn = table[dev];
    if (!fn)
        return bg_fail(ctx, BG_ERR_DEVICE, "%s: no %s %s implementation", n->op->name, bg_device_name(dev), pass);
    return fn(ctx, n);
}

/* The gradients still marked fresh get the zeros a backward adds into. */
static bg_status zero_fresh(bg_ctx *ctx, bg_node *n)
{
    for (int i = 0; i < n->n_in && n->grad_fresh; i++) {
        if (!(n->grad_fresh & (1u << i))) continue;
        n->grad_fresh &= (unsigned char)~(1u << i);
        bg_status s = bg_tensor_zero(ctx, n->in[i]->grad);
        if (s) return s;
    }
    return BG_OK;
}

bg_status bg_node_forward(bg_ctx *ctx, bg_node *n) { return dispatch(ctx, n, n->op->fwd, n->op->fast_fwd, "forward"); }

bg_status bg_node_backward(bg_ctx *ctx, bg_node *n)
{
    if (!n->grad_fresh) return dispatch(ctx, n, n->op->bwd, n->op->fast_bwd, "backward");
    bg_status s = BG_ERR_UNSUPPORTED;
    if (n->op->fast_bwd_stores && fast_runs(ctx, n, n->op->fast_bwd)) s = n->op->fast_bwd(ctx, n);
    if (s == BG_ERR_UNSUPPORTED) { /* the reference adds: it gets zeros */
        s = zero_fresh(ctx, n);
        if (!s) s = dispatch(ctx, n, n->op->bwd, NULL, "backward");
    } else if (!s) { /* what the kernel did not write (no output grad...) is zero */
        s = zero_fresh(ctx, n);
    }
    n->grad_fresh = 0;
    return s;
}

const char *bg_node_cpu_kernels(const bg_ctx *ctx, const bg_node *n)
{
    return fast_runs(ctx, n, n->op->fast_fwd) ? "fast" : "ref";
}
