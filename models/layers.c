/* Layers as state-dict entries: each constructor appends its tensors to the
 * model in PyTorch's registration order and initialises them there, so the
 * Philox draws happen in a fixed, documented order (the oracle script
 * replays it). */
#include "layers.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/init.h"

static bg_status fill_kaiming(bg_ctx *ctx, bg_tensor *t, void *arg)
{
    (void)arg;
    return bg_init_kaiming_normal_fan_out(ctx, t);
}

static bg_status fill_fan_in(bg_ctx *ctx, bg_tensor *t, void *arg)
{
    return bg_init_uniform_fan_in(ctx, t, *(const int64_t *)arg);
}

static bg_status fill_value(bg_ctx *ctx, bg_tensor *t, void *arg)
{
    return bg_tensor_fill_const(ctx, t, *(const double *)arg);
}

/* Append an entry for t (already created); takes ownership of t. */
static bg_status add_entry(bg_ctx *ctx, bg_model *m, bg_tensor *t, const char *name, bg_sd_kind kind,
                           bg_sd_role role)
{
    if (!t) return ctx->status;
    if (m->n_sd == m->cap_sd) {
        int cap = m->cap_sd ? 2 * m->cap_sd : 64;
        bg_sd_entry *p = realloc(m->sd, (size_t)cap * sizeof *p);
        if (!p) {
            bg_tensor_free(ctx, t);
            return bg_fail(ctx, BG_ERR_OOM, "model %s: out of host memory registering '%s'", m->spec, name);
        }
        m->sd = p;
        m->cap_sd = cap;
    }
    bg_sd_entry *e = &m->sd[m->n_sd++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->t = t;
    e->kind = kind;
    e->role = role;
    return BG_OK;
}

static bg_tensor *param(bg_ctx *ctx, bg_model *m, const char *name, int ndim, const int64_t *shape, bg_fill_fn fill,
                        void *arg)
{
    if (m->flags & BG_MODEL_NO_INIT) fill = NULL; /* zeros, no draws */
    return bg_param_new(ctx, m->device, ndim, shape, name, fill, arg);
}

bg_status bg_mconv_new(bg_ctx *ctx, bg_model *m, bg_mconv *c, const char *name, int cin, int cout, int k,
                       int stride, int pad, int groups, bool bias)
{
    char nm[96];
    memset(c, 0, sizeof *c);
    if (cin < 1 || cout < 1 || groups < 1 || cin % groups || cout % groups)
        return bg_fail(ctx, BG_ERR_ARG, "model %s: conv '%s' has %d -> %d channels in %d groups", m->spec, name, cin,
                       cout, groups);
    c->p = (bg_conv2d_params){.stride = {stride, stride}, .padding = {pad, pad}, .dilation = {1, 1}, .groups = groups};
    int64_t ws[4] = {cout, k, k, cin / groups};
    snprintf(nm, sizeof nm, "%s.weight", name);
    bg_status s = add_entry(ctx, m, c->w = param(ctx, m, nm, 4, ws, fill_kaiming, NULL), nm, BG_SD_CONV, BG_ROLE_CONV_W);
    if (s || !bias) return s;
    int64_t fan_in = (int64_t)(cin / groups) * k * k, bs[1] = {cout};
    snprintf(nm, sizeof nm, "%s.bias", name);
    return add_entry(ctx, m, c->b = param(ctx, m, nm, 1, bs, fill_fan_in, &fan_in), nm, BG_SD_PLAIN, BG_ROLE_CONV_B);
}

bg_status bg_mbn_new(bg_ctx *ctx, bg_model *m, bg_mbn *bn, const char *name, int c, double gamma)
{
    char nm[96];
    int64_t cs[1] = {c};
    bg_status s;
    memset(bn, 0, sizeof *bn);
    snprintf(nm, sizeof nm, "%s.weight", name);
    if ((s = add_entry(ctx, m, bn->g = param(ctx, m, nm, 1, cs, fill_value, &gamma), nm, BG_SD_PLAIN, BG_ROLE_BN_W)))
        return s;
    snprintf(nm, sizeof nm, "%s.bias", name);
    if ((s = add_entry(ctx, m, bn->b = param(ctx, m, nm, 1, cs, NULL, NULL), nm, BG_SD_PLAIN, BG_ROLE_BN_B))) return s;
    snprintf(nm, sizeof nm, "%s.running_mean", name);
    if ((s = add_entry(ctx, m, bn->mean = bg_buffer_new(ctx, m->device, 1, cs, nm, 0.0), nm, BG_SD_PLAIN,
                       BG_ROLE_BN_MEAN)))
        return s;
    snprintf(nm, sizeof nm, "%s.running_var", name);
    if ((s = add_entry(ctx, m, bn->var = bg_buffer_new(ctx, m->device, 1, cs, nm, 1.0), nm, BG_SD_PLAIN,
                       BG_ROLE_BN_VAR)))
        return s;
    /* Never used in compute: kept on the host so checkpoints round-trip it. */
    snprintf(nm, sizeof nm, "%s.num_batches_tracked", name);
    bg_tensor *cnt = bg_tensor_new(ctx, BG_CPU, BG_I32, 0, NULL, nm);
    if (cnt) *(int32_t *)cnt->data = 0;
    return add_entry(ctx, m, cnt, nm, BG_SD_COUNTER, BG_ROLE_BN_COUNT);
}

bg_status bg_mlinear_new(bg_ctx *ctx, bg_model *m, bg_mlinear *l, const char *name, int in, int out, int map_h,
                         int map_w)
{
    char nm[96];
    int64_t fan_in = in, ws[2] = {out, in}, bs[1] = {out};
    bool spatial = map_h * map_w > 1;
    memset(l, 0, sizeof *l);
    snprintf(nm, sizeof nm, "%s.weight", name);
    bg_status s = add_entry(ctx, m, l->w = param(ctx, m, nm, 2, ws, fill_fan_in, &fan_in), nm,
                            spatial ? BG_SD_LINEAR_HWC : BG_SD_PLAIN, BG_ROLE_LINEAR_W);
    if (s) return s;
    if (spatial) m->sd[m->n_sd - 1].hw[0] = map_h, m->sd[m->n_sd - 1].hw[1] = map_w;
    snprintf(nm, sizeof nm, "%s.bias", name);
    return add_entry(ctx, m, l->b = param(ctx, m, nm, 1, bs, fill_fan_in, &fan_in), nm, BG_SD_PLAIN, BG_ROLE_LINEAR_B);
}

bg_tensor *bg_mconv_fwd(bg_graph *g, bg_tensor *x, const bg_mconv *c) { return bg_conv2d(g, x, c->w, c->b, c->p); }

/* PyTorch's BatchNorm2d defaults. */
bg_tensor *bg_mbn_fwd(bg_graph *g, bg_tensor *x, const bg_mbn *bn)
{
    bg_batchnorm_params p = {.momentum = 0.1f, .eps = 1e-5f};
    return bg_batchnorm2d(g, x, bn->g, bn->b, bn->mean, bn->var, p);
}

/* ---- fused where supported ----
 * Each helper records one fused row when the graph asks for fusion and the
 * row's supports check accepts these inputs on the graph's device, and the
 * unfused ops otherwise; both compute the same function. */
static bool use_fused(bg_graph *g, const bg_op *op, const void *params, bg_tensor *const *in, int n_in)
{
    return g->fuse && bg_op_supports(op, g->device, params, in, n_in);
}

bg_tensor *bg_mbn_relu_fwd(bg_graph *g, bg_tensor *x, const bg_mbn *bn)
{
    if (!x) return NULL;
    bg_batchnorm_params p = {.momentum = 0.1f, .eps = 1e-5f};
    bg_tensor *in[5] = {x, bn->g, bn->b, bn->mean, bn->var};
    if (use_fused(g, &bg_op_batchnorm2d_relu, &p, in, 5)) return bg_batchnorm2d_relu(g, x, bn->g, bn->b, bn->mean, bn->var, p);
    return bg_relu(g, bg_mbn_fwd(g, x, bn));
}

bg_tensor *bg_mconv_act_fwd(bg_graph *g, bg_tensor *x, const bg_mconv *c, bg_tensor *res, int act)
{
    if (!x) return NULL;
    bg_conv2d_fused_params p = {.groups = c->p.groups, .act = act};
    memcpy(p.stride, c->p.stride, sizeof p.stride);
    memcpy(p.padding, c->p.padding, sizeof p.padding);
    memcpy(p.dilation, c->p.dilation, sizeof p.dilation);
    bg_tensor *in[4] = {x, c->w, c->b, res};
    if (use_fused(g, &bg_op_conv2d_fused, &p, in, 4)) return bg_conv2d_fused(g, x, c->w, c->b, res, p);
    bg_tensor *y = bg_mconv_fwd(g, x, c);
    if (res) y = bg_add(g, y, res);
    return act == BG_EP_RELU ? bg_relu(g, y) : act == BG_EP_SIGMOID ? bg_sigmoid(g, y) : y;
}

bg_tensor *bg_scale_fwd(bg_graph *g, bg_tensor *x, bg_tensor *s, bg_tensor *res, bool relu)
{
    if (!x || !s) return NULL;
    bg_se_scale_params p = {.relu = relu};
    bg_tensor *in[3] = {x, s, res};
    if (use_fused(g, &bg_op_se_scale, &p, in, 3)) return bg_se_scale(g, x, s, res, relu);
    bg_tensor *y = bg_mul(g, x, s);
    if (res) y = bg_add(g, y, res);
    return relu ? bg_relu(g, y) : y;
}

bg_tensor *bg_split_attn_fwd(bg_graph *g, bg_tensor *x, bg_tensor *a, int radix)
{
    if (!x || !a) return NULL;
    bg_split_sum_params p = {.radix = radix};
    bg_tensor *in[2] = {x, a};
    if (use_fused(g, &bg_op_split_attn, &p, in, 2)) return bg_split_attn(g, x, a, radix);
    return bg_split_sum(g, bg_mul(g, x, a), radix);
}

bg_tensor *bg_mlinear_fwd(bg_graph *g, bg_tensor *x, const bg_mlinear *l) { return bg_linear(g, x, l->w, l->b); }

bg_pool_params bg_mpool(int k, int stride, int pad, bool ceil_mode, bool count_include_pad)
{
    bg_pool_params p = {.kernel = {k, k}, .stride = {stride, stride}, .padding = {pad, pad},
                        .ceil_mode = ceil_mode, .count_include_pad = count_include_pad};
    return p;
}

int bg_conv_out(int in, int k, int stride, int pad)
{
    int span = in + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}
