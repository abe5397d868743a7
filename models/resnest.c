/* ResNeSt as timm builds it (seed-spec §3): a ResNet-D skeleton with
 * ResNestBottleneck blocks.
 *   stem   conv3x3(3->32, s2) BN ReLU, conv3x3(32->32) BN ReLU,
 *          conv3x3(32->64) BN ReLU, maxpool(3, s2, p1)        [conv1.0/.1/.3/.4/.6, bn1]
 *   stages planes 64/128/256/512 (out x4), first strides 1/2/2/2; the first
 *          block's shortcut is avg_down: AvgPool(2, s, ceil, no pad count)
 *          (identity at stride 1) -> conv1x1 -> BN              [downsample.1/.2]
 *   block  conv1x1(in->gw) BN ReLU, [avd_first pool], SplitAttn,
 *          [avd_last pool], conv1x1(gw->4 planes) BN (gamma 0), + shortcut, ReLU;
 *          gw = int(planes*base_width/64)*cardinality; avd (AvgPool(3, s, p1),
 *          count_include_pad) replaces the conv stride when stride > 1
 *   split  conv3x3(gw -> gw*r, groups K*r) bn0 ReLU -> x (r splits of gw);
 *   attn   gap(sum of splits) -> fc1 (groups K, bias) bn1 ReLU -> fc2 (groups K,
 *          bias) -> radix_softmax (sigmoid when r = 1) -> a; out = sum_r x_r*a_r,
 *          i.e. split_sum(mul(x, a)); attn width make_divisible(gw*r/4, 8, min 32)
 *   head   global average pool, Linear(2048 -> classes)
 * Any input size and class count. The splits are summed before the global
 * pool here (the reference pools the sum): the same value, fewer elements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "layers.h"

typedef struct {
    int layers[4], radix, card, base_width;
    bool avd_first;
} config;

typedef struct {
    int stride, avd_stride, gw, attn, cin, cout;
    int stage, index;          /* for the section name layerS.I */
    bool down;
    bg_mconv conv1, conv2, fc1, fc2, conv3, down_conv;
    bg_mbn bn1, bn0, attn_bn, bn3, down_bn;
} block;

typedef struct {
    config cfg;
    bg_mconv stem[3];
    bg_mbn stem_bn[3];
    block *blocks;
    int n_blocks;
    bg_mlinear fc;
} arch;

static void free_arch(void *p)
{
    arch *a = p;
    if (!a) return;
    free(a->blocks);
    free(a);
}

/* timm's make_divisible(v, divisor, min_value, round_limit 0.9) */
static int make_divisible(double v, int divisor, int min_value)
{
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < min_value) nv = min_value;
    if (nv < 0.9 * v) nv += divisor;
    return nv;
}

static bg_status new_block(bg_ctx *ctx, bg_model *m, const config *c, block *b, int planes, const char *pfx)
{
    char nm[64];
    bg_status s;
#define NM(suffix) (snprintf(nm, sizeof nm, "%s.%s", pfx, suffix), nm)
    int r = c->radix, K = c->card;
    b->gw = (int)(planes * (c->base_width / 64.0)) * K;
    b->attn = make_divisible(b->gw * r * 0.25, 8, 32);
    b->avd_stride = b->stride > 1 ? b->stride : 0; /* avd is on for every ResNeSt here; never in stage 1 */
    int conv_stride = b->avd_stride ? 1 : b->stride;
    b->cout = planes * 4;
    /* registration order: conv1, bn1, conv2.{conv, bn0, fc1, bn1, fc2}, conv3, bn3, downsample.{1,2} */
    if ((s = bg_mconv_new(ctx, m, &b->conv1, NM("conv1"), b->cin, b->gw, 1, 1, 0, 1, false))) return s;
    if ((s = bg_mbn_new(ctx, m, &b->bn1, NM("bn1"), b->gw, 1.0))) return s;
    if ((s = bg_mconv_new(ctx, m, &b->conv2, NM("conv2.conv"), b->gw, b->gw * r, 3, conv_stride, 1, K * r, false)))
        return s;
    if ((s = bg_mbn_new(ctx, m, &b->bn0, NM("conv2.bn0"), b->gw * r, 1.0))) return s;
    if ((s = bg_mconv_new(ctx, m, &b->fc1, NM("conv2.fc1"), b->gw, b->attn, 1, 1, 0, K, true))) return s;
    if ((s = bg_mbn_new(ctx, m, &b->attn_bn, NM("conv2.bn1"), b->attn, 1.0))) return s;
    if ((s = bg_mconv_new(ctx, m, &b->fc2, NM("conv2.fc2"), b->attn, b->gw * r, 1, 1, 0, K, true))) return s;
    if ((s = bg_mconv_new(ctx, m, &b->conv3, NM("conv3"), b->gw, b->cout, 1, 1, 0, 1, false))) return s;
    if ((s = bg_mbn_new(ctx, m, &b->bn3, NM("bn3"), b->cout, 0.0))) return s; /* zero_init_last */
    if (b->down) {
        if ((s = bg_mconv_new(ctx, m, &b->down_conv, NM("downsample.1"), b->cin, b->cout, 1, 1, 0, 1, false))) return s;
        if ((s = bg_mbn_new(ctx, m, &b->down_bn, NM("downsample.2"), b->cout, 1.0))) return s;
    }
    return BG_OK;
#undef NM
}

static bg_status build(bg_ctx *ctx, bg_model *m, const bg_model_args *args, const config *cfg)
{
    snprintf(m->spec, sizeof m->spec, "%s:classes=%d,size=%d", m->family->name, args->classes, args->size);
    arch *a = calloc(1, sizeof *a);
    if (!a) return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", m->spec);
    m->arch = a;
    a->cfg = *cfg;
    m->in_c = 3, m->in_h = m->in_w = args->size;
    static const int stem_out[3] = {32, 32, 64};
    bg_status s;
    static const char *const stem_conv[3] = {"conv1.0", "conv1.3", "conv1.6"};
    static const char *const stem_bn[3] = {"conv1.1", "conv1.4", "bn1"};
    /* registration order: conv1.0, conv1.1, conv1.3, conv1.4, conv1.6, bn1 */
    for (int i = 0; i < 3; i++) {
        if ((s = bg_mconv_new(ctx, m, &a->stem[i], stem_conv[i], i ? stem_out[i - 1] : 3, stem_out[i], 3, i ? 1 : 2, 1, 1,
                              false)))
            return s;
        if ((s = bg_mbn_new(ctx, m, &a->stem_bn[i], stem_bn[i], stem_out[i], 1.0))) return s;
    }
    for (int st = 0; st < 4; st++) a->n_blocks += cfg->layers[st];
    if (!(a->blocks = calloc((size_t)a->n_blocks, sizeof *a->blocks)))
        return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", m->spec);
    int cin = 64, k = 0;
    for (int st = 0; st < 4; st++)
        for (int j = 0; j < cfg->layers[st]; j++, k++) {
            block *b = &a->blocks[k];
            char pfx[32];
            int planes = 64 << st;
            snprintf(pfx, sizeof pfx, "layer%d.%d", st + 1, j);
            b->stage = st + 1, b->index = j;
            b->cin = cin;
            b->stride = j == 0 && st > 0 ? 2 : 1;
            b->down = j == 0; /* stride 2 or 64 -> 256 channels: the first block of every stage */
            if ((s = new_block(ctx, m, cfg, b, planes, pfx))) return s;
            cin = b->cout;
        }
    return bg_mlinear_new(ctx, m, &a->fc, "fc", cin, args->classes, 1, 1);
}

static bg_tensor *split_attn(bg_graph *g, const config *c, const block *b, bg_tensor *x)
{
    int r = c->radix;
    x = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &b->conv2), &b->bn0);
    bg_tensor *gap = bg_global_avgpool(g, x);
    if (r > 1) gap = bg_split_sum(g, gap, r);
    bg_tensor *att = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, gap, &b->fc1), &b->attn_bn);
    att = bg_radix_softmax(g, bg_mconv_fwd(g, att, &b->fc2), r, c->card);
    /* radix 1: a per-channel sigmoid gate, the SE scale; else the weighted sum */
    return r > 1 ? bg_split_attn_fwd(g, x, att, r) : bg_scale_fwd(g, x, att, NULL, false);
}

static bg_tensor *block_fwd(bg_graph *g, const config *c, const block *b, bg_tensor *x)
{
    bg_pool_params avd = bg_mpool(3, b->avd_stride, 1, false, true);
    bg_tensor *out = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &b->conv1), &b->bn1);
    if (b->avd_stride && c->avd_first) out = bg_avgpool2d(g, out, avd);
    out = split_attn(g, c, b, out);
    if (b->avd_stride && !c->avd_first) out = bg_avgpool2d(g, out, avd);
    out = bg_mbn_fwd(g, bg_mconv_fwd(g, out, &b->conv3), &b->bn3);
    bg_tensor *sc = x;
    if (b->down) {
        if (b->stride > 1) sc = bg_avgpool2d(g, sc, bg_mpool(2, b->stride, 0, true, false));
        sc = bg_mbn_fwd(g, bg_mconv_fwd(g, sc, &b->down_conv), &b->down_bn);
    }
    return bg_relu(g, bg_add(g, out, sc));
}

static bg_tensor *forward(bg_graph *g, bg_model *m, bg_tensor *x)
{
    arch *a = m->arch;
    for (int i = 0; i < 3; i++) x = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &a->stem[i]), &a->stem_bn[i]);
    x = bg_maxpool2d(g, x, bg_mpool(3, 2, 1, false, true));
    bg_model_mark_section(g, m, "stem");
    for (int k = 0; k < a->n_blocks; k++) {
        x = block_fwd(g, &a->cfg, &a->blocks[k], x);
        char nm[32];
        snprintf(nm, sizeof nm, "layer%d.%d", a->blocks[k].stage, a->blocks[k].index);
        bg_model_mark_section(g, m, nm);
    }
    x = bg_mlinear_fwd(g, bg_flatten(g, bg_global_avgpool(g, x), 1), &a->fc);
    bg_model_mark_section(g, m, "head");
    return x;
}

static const config CFG_1S4X24D = {{3, 4, 6, 3}, 1, 4, 24, true};
static const config CFG_50D = {{3, 4, 6, 3}, 2, 1, 64, false};
static const config CFG_26D = {{2, 2, 2, 2}, 2, 1, 64, false};

static bg_status build_1s4x24d(bg_ctx *ctx, bg_model *m, const bg_model_args *a) { return build(ctx, m, a, &CFG_1S4X24D); }
static bg_status build_50d(bg_ctx *ctx, bg_model *m, const bg_model_args *a) { return build(ctx, m, a, &CFG_50D); }
static bg_status build_26d(bg_ctx *ctx, bg_model *m, const bg_model_args *a) { return build(ctx, m, a, &CFG_26D); }

#define RESNEST_KEYS "classes,size"
const bg_model_family bg_family_resnest50d_1s4x24d = {
    .name = "resnest50d_1s4x24d", .keys = RESNEST_KEYS, .default_classes = 1000, .default_size = 224,
    .help = "timm ResNeSt-50d 1s4x24d: radix 1 (sigmoid gates), cardinality 4, base width 24, avd_first",
    .build = build_1s4x24d, .forward = forward, .free_arch = free_arch};
const bg_model_family bg_family_resnest50d = {
    .name = "resnest50d", .keys = RESNEST_KEYS, .default_classes = 1000, .default_size = 224,
    .help = "timm ResNeSt-50d 2s1x64d: radix 2, cardinality 1, base width 64, avd after the split attention",
    .build = build_50d, .forward = forward, .free_arch = free_arch};
const bg_model_family bg_family_resnest26d = {
    .name = "resnest26d", .keys = RESNEST_KEYS, .default_classes = 1000, .default_size = 224,
    .help = "timm ResNeSt-26d: layers 2,2,2,2, radix 2, cardinality 1, base width 64",
    .build = build_26d, .forward = forward, .free_arch = free_arch};
