#include "small_cnn.h"
#include <stdio.h>
#include <stdlib.h>
#include "../engine/init.h"
#include "../ops/ops.h"

static bg_status fill_kaiming(bg_ctx *ctx, bg_tensor *t, void *arg) { return bg_init_kaiming_normal_fan_out(ctx, t); }
static bg_status fill_one(bg_ctx *ctx, bg_tensor *t, void *arg) { return bg_tensor_fill_const(ctx, t, 1.0); }
static bg_status fill_fan_in(bg_ctx *ctx, bg_tensor *t, void *arg) { return bg_init_uniform_fan_in(ctx, t, *(int64_t *)arg); }

static bg_tensor *keep(bg_small_cnn *m, bg_tensor *t)
{
    if (t) m->all[m->n_all++] = t;
    return t;
}

bg_status bg_small_cnn_new(bg_ctx *ctx, bg_device device, int in_c, int width, int n_classes, bg_small_cnn **out)
{
    *out = NULL;
    if (in_c < 1 || width < 1 || n_classes < 2)
        return bg_fail(ctx, BG_ERR_ARG, "small_cnn: in_c %d, width %d, classes %d (need >= 1, >= 1, >= 2)", in_c, width, n_classes);
    bg_small_cnn *m = calloc(1, sizeof *m);
    if (!m) return bg_fail(ctx, BG_ERR_OOM, "small_cnn: out of host memory");
    m->in_c = in_c, m->width = width, m->n_classes = n_classes;
    int cin = in_c;
    char nm[48];
    for (int i = 0; i < 3; i++) {
        int64_t cout = (int64_t)width << i;
        int64_t ws[4] = {cout, 3, 3, cin}, cs[1] = {cout};
        snprintf(nm, sizeof nm, "conv%d.weight", i + 1);
        if (!keep(m, m->conv_w[i] = bg_param_new(ctx, device, 4, ws, nm, fill_kaiming, NULL))) goto fail;
        snprintf(nm, sizeof nm, "bn%d.weight", i + 1);
        if (!keep(m, m->bn_g[i] = bg_param_new(ctx, device, 1, cs, nm, fill_one, NULL))) goto fail;
        snprintf(nm, sizeof nm, "bn%d.bias", i + 1);
        if (!keep(m, m->bn_b[i] = bg_param_new(ctx, device, 1, cs, nm, NULL, NULL))) goto fail;
        snprintf(nm, sizeof nm, "bn%d.running_mean", i + 1);
        if (!keep(m, m->bn_m[i] = bg_buffer_new(ctx, device, 1, cs, nm, 0.0))) goto fail;
        snprintf(nm, sizeof nm, "bn%d.running_var", i + 1);
        if (!keep(m, m->bn_v[i] = bg_buffer_new(ctx, device, 1, cs, nm, 1.0))) goto fail;
        cin = (int)cout;
    }
    int64_t fan_in = cin, fs[2] = {n_classes, cin}, bs[1] = {n_classes};
    if (!keep(m, m->fc_w = bg_param_new(ctx, device, 2, fs, "fc.weight", fill_fan_in, &fan_in))) goto fail;
    if (!keep(m, m->fc_b = bg_param_new(ctx, device, 1, bs, "fc.bias", fill_fan_in, &fan_in))) goto fail;
    *out = m;
    return BG_OK;
fail:
    bg_small_cnn_free(ctx, m);
    return ctx->status;
}

void bg_small_cnn_free(bg_ctx *ctx, bg_small_cnn *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_all; i++) bg_tensor_free(ctx, m->all[i]);
    free(m);
}

bg_tensor *bg_small_cnn_forward(bg_graph *g, void *model, bg_tensor *x)
{
    bg_small_cnn *m = model;
    bg_conv2d_params conv = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 1};
    bg_batchnorm_params bn = {.momentum = 0.1f, .eps = 1e-5f};
    bg_pool_params pool = {.kernel = {2, 2}, .stride = {2, 2}, .padding = {0, 0}, .ceil_mode = 0, .count_include_pad = 1};
    for (int i = 0; i < 3; i++) {
        x = bg_conv2d(g, x, m->conv_w[i], NULL, conv);
        x = bg_batchnorm2d(g, x, m->bn_g[i], m->bn_b[i], m->bn_m[i], m->bn_v[i], bn);
        x = bg_relu(g, x);
        if (i < 2) x = bg_maxpool2d(g, x, pool);
    }
    x = bg_flatten(g, bg_global_avgpool(g, x), 1);
    return bg_linear(g, x, m->fc_w, m->fc_b);
}
