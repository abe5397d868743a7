/* MobileNetV2, CIFAR variant of kuangliu/pytorch-cifar (seed-spec §2.4):
 * stem conv3x3(3->32, s1)+BN+ReLU; 17 inverted-residual blocks
 *   1x1 expand (t*in) BN ReLU -> 3x3 depthwise (groups = channels, stride s)
 *   BN ReLU -> 1x1 project BN (linear)
 * with a residual only when s == 1: identity if in == out, else a 1x1
 * conv+BN projection (unlike the paper); ReLU, not ReLU6. Then conv1x1
 * (320->1280)+BN+ReLU, avg_pool2d(kernel 4), flatten, Linear. Total stride 8;
 * the input side is int(32*r) and the Linear's in-features follow from the
 * pooled map, as for the ResNets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "layers.h"

/* (expansion, out channels, blocks, first stride) per stage */
static const int CFG[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
#define N_BLOCKS 17

typedef struct {
    int stride, cin, cout;
    bool proj;
    bg_mconv conv1, conv2, conv3, sc;
    bg_mbn bn1, bn2, bn3, sc_bn;
} block;

typedef struct {
    bg_mconv stem, conv2;
    bg_mbn stem_bn, bn2;
    block blocks[N_BLOCKS];
    int pool_h, pool_w, in_side;
    bg_mlinear fc;
} arch;

static void free_arch(void *p) { free(p); }

static bg_status build(bg_ctx *ctx, bg_model *m, const bg_model_args *args)
{
    snprintf(m->spec, sizeof m->spec, "mobilenetv2:r=%g,classes=%d", args->r, args->classes);
    arch *a = calloc(1, sizeof *a);
    if (!a) return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", m->spec);
    m->arch = a;
    int side = (int)(32.0 * args->r);
    a->in_side = side;
    m->in_c = 3, m->in_h = m->in_w = side;
    int hw = side;
    for (int st = 0; st < 7; st++) hw = bg_conv_out(hw, 3, CFG[st][3], 1);
    if (side < 1 || hw < 4)
        return bg_fail(ctx, BG_ERR_SHAPE,
                       "%s: r=%g (input %dx%d) leaves a %dx%d map before the 4x4 average-pool head; the feature map "
                       "vanishes (need r >= %g)", m->spec, args->r, side, side, hw, hw, 25 / 32.0);
    a->pool_h = a->pool_w = (hw - 4) / 4 + 1;

    bg_status s;
    if ((s = bg_mconv_new(ctx, m, &a->stem, "conv1", 3, 32, 3, 1, 1, 1, false))) return s;
    if ((s = bg_mbn_new(ctx, m, &a->stem_bn, "bn1", 32, 1.0))) return s;
    int cin = 32, k = 0;
    for (int st = 0; st < 7; st++)
        for (int j = 0; j < CFG[st][2]; j++, k++) {
            block *b = &a->blocks[k];
            char nm[64];
            int mid = CFG[st][0] * cin;
            b->stride = j == 0 ? CFG[st][3] : 1;
            b->cin = cin;
            b->cout = CFG[st][1];
            b->proj = b->stride == 1 && b->cin != b->cout;
#define NM(suffix) (snprintf(nm, sizeof nm, "layers.%d.%s", k, suffix), nm)
            if ((s = bg_mconv_new(ctx, m, &b->conv1, NM("conv1"), cin, mid, 1, 1, 0, 1, false))) return s;
            if ((s = bg_mbn_new(ctx, m, &b->bn1, NM("bn1"), mid, 1.0))) return s;
            if ((s = bg_mconv_new(ctx, m, &b->conv2, NM("conv2"), mid, mid, 3, b->stride, 1, mid, false))) return s;
            if ((s = bg_mbn_new(ctx, m, &b->bn2, NM("bn2"), mid, 1.0))) return s;
            if ((s = bg_mconv_new(ctx, m, &b->conv3, NM("conv3"), mid, b->cout, 1, 1, 0, 1, false))) return s;
            if ((s = bg_mbn_new(ctx, m, &b->bn3, NM("bn3"), b->cout, 1.0))) return s;
            if (b->proj) {
                if ((s = bg_mconv_new(ctx, m, &b->sc, NM("shortcut.0"), cin, b->cout, 1, 1, 0, 1, false))) return s;
                if ((s = bg_mbn_new(ctx, m, &b->sc_bn, NM("shortcut.1"), b->cout, 1.0))) return s;
            }
#undef NM
            cin = b->cout;
        }
    if ((s = bg_mconv_new(ctx, m, &a->conv2, "conv2", 320, 1280, 1, 1, 0, 1, false))) return s;
    if ((s = bg_mbn_new(ctx, m, &a->bn2, "bn2", 1280, 1.0))) return s;
    return bg_mlinear_new(ctx, m, &a->fc, "linear", 1280 * a->pool_h * a->pool_w, args->classes, a->pool_h, a->pool_w);
}

static bg_tensor *forward(bg_graph *g, bg_model *m, bg_tensor *x)
{
    arch *a = m->arch;
    x = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &a->stem), &a->stem_bn);
    bg_model_mark_section(g, m, "stem");
    for (int k = 0; k < N_BLOCKS; k++) {
        const block *b = &a->blocks[k];
        bg_tensor *out = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &b->conv1), &b->bn1);
        out = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, out, &b->conv2), &b->bn2);
        out = bg_mbn_fwd(g, bg_mconv_fwd(g, out, &b->conv3), &b->bn3);
        if (b->stride == 1) out = bg_add(g, out, b->proj ? bg_mbn_fwd(g, bg_mconv_fwd(g, x, &b->sc), &b->sc_bn) : x);
        x = out;
        char nm[32];
        snprintf(nm, sizeof nm, "layers.%d", k);
        bg_model_mark_section(g, m, nm);
    }
    x = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &a->conv2), &a->bn2);
    bg_model_mark_section(g, m, "conv2");
    x = bg_avgpool2d(g, x, bg_mpool(4, 4, 0, false, true));
    if (x && (x->shape[1] != a->pool_h || x->shape[2] != a->pool_w)) {
        bg_fail(g->ctx, BG_ERR_SHAPE,
                "%s: this input leaves a %lldx%lld map after the 4x4 average pool, but the model was built for a "
                "%dx%d input (a %dx%d map, Linear in_features %d): give r so that int(32r) fits this input",
                m->spec, (long long)x->shape[1], (long long)x->shape[2], a->in_side, a->in_side, a->pool_h, a->pool_w,
                1280 * a->pool_h * a->pool_w);
        return NULL;
    }
    x = bg_mlinear_fwd(g, bg_flatten(g, x, 1), &a->fc);
    bg_model_mark_section(g, m, "head");
    return x;
}

const bg_model_family bg_family_mobilenetv2 = {
    .name = "mobilenetv2", .keys = "r,classes", .default_classes = 10, .default_size = 32,
    .help = "kuangliu MobileNetV2 (CIFAR: stem and stage-2 strides 1, ReLU, 1x1 projection shortcuts), input int(32r)",
    .build = build, .forward = forward, .free_arch = free_arch};
