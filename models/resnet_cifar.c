/* The CIFAR ResNet family of kuangliu/pytorch-cifar with the HAET scaling
 * rules (seed-spec §1.3, §2.1-2.3):
 *   senet18          pre-activation SE blocks: a = relu(bn1(x)); the shortcut
 *                    is a 1x1 conv of a (no BN) when the shape changes, else x
 *                    itself; out = conv2(relu(bn2(conv1(a)))); SE gate
 *                    sigmoid(fc2(relu(fc1(avgpool(out))))) with biased 1x1
 *                    convs and C//16 hidden channels; out*gate + shortcut.
 *   preact_resnet18  the same block without SE; the stem is a bare conv.
 *   resnet18         post-activation BasicBlock, conv1x1+BN shortcut.
 * Stem conv3x3 s1 (+BN+ReLU except preact), stages of round(2d) blocks with
 * first strides 1,2,2,2, then avg_pool2d(kernel 4) (not global: a 5x5 map
 * keeps its top-left 4x4 window), flatten, Linear. Widths: SENet (and, our
 * choice, preact) int(round(c*w)); ResNet 8*floor(c*w/8), stem included.
 * Input side int(32*r); the Linear's in-features follow from the map the
 * pool leaves, as the reference measures them with a dummy forward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "layers.h"

enum { V_SENET, V_PREACT, V_BASIC };

typedef struct {
    int stride, cin, cout;
    bool proj;               /* shortcut is a projection */
    bg_mconv conv1, conv2, sc, fc1, fc2;
    bg_mbn bn1, bn2, sc_bn;
} block;

typedef struct {
    int variant;
    bg_mconv stem;
    bg_mbn stem_bn;
    block *blocks;
    int n_blocks, per_stage;
    int final_c, pool_h, pool_w; /* what the Linear was built for */
    int in_side;
    bg_mlinear fc;
} arch;

static void free_arch(void *p)
{
    arch *a = p;
    if (!a) return;
    free(a->blocks);
    free(a);
}

static bool preact(int v) { return v == V_SENET || v == V_PREACT; }

static int stage_width(int v, int base, double w)
{
    if (v == V_BASIC) return 8 * (int)floor(base * w / 8.0);
    return (int)rint(base * w); /* Python round(): half to even, as rint in the default mode */
}

static bg_status new_block(bg_ctx *ctx, bg_model *m, block *b, int v, const char *pfx)
{
    char nm[64];
    bg_status s = BG_OK;
#define NM(suffix) (snprintf(nm, sizeof nm, "%s.%s", pfx, suffix), nm)
    b->proj = b->stride != 1 || b->cin != b->cout;
    if (preact(v)) {
        /* registration order: bn1, conv1, bn2, conv2, shortcut.0, fc1, fc2 */
        if ((s = bg_mbn_new(ctx, m, &b->bn1, NM("bn1"), b->cin, 1.0))) return s;
        if ((s = bg_mconv_new(ctx, m, &b->conv1, NM("conv1"), b->cin, b->cout, 3, b->stride, 1, 1, false))) return s;
        if ((s = bg_mbn_new(ctx, m, &b->bn2, NM("bn2"), b->cout, 1.0))) return s;
        if ((s = bg_mconv_new(ctx, m, &b->conv2, NM("conv2"), b->cout, b->cout, 3, 1, 1, 1, false))) return s;
        if (b->proj && (s = bg_mconv_new(ctx, m, &b->sc, NM("shortcut.0"), b->cin, b->cout, 1, b->stride, 0, 1, false)))
            return s;
        if (v == V_SENET) {
            int hid = b->cout / 16;
            if (hid < 1)
                return bg_fail(ctx, BG_ERR_ARG, "%s: block '%s' has %d channels, so its SE hidden width %d//16 is 0 "
                               "(raise w)", m->spec, pfx, b->cout, b->cout);
            if ((s = bg_mconv_new(ctx, m, &b->fc1, NM("fc1"), b->cout, hid, 1, 1, 0, 1, true))) return s;
            if ((s = bg_mconv_new(ctx, m, &b->fc2, NM("fc2"), hid, b->cout, 1, 1, 0, 1, true))) return s;
        }
        return BG_OK;
    }
    /* BasicBlock: conv1, bn1, conv2, bn2, shortcut.0 (conv), shortcut.1 (BN) */
    if ((s = bg_mconv_new(ctx, m, &b->conv1, NM("conv1"), b->cin, b->cout, 3, b->stride, 1, 1, false))) return s;
    if ((s = bg_mbn_new(ctx, m, &b->bn1, NM("bn1"), b->cout, 1.0))) return s;
    if ((s = bg_mconv_new(ctx, m, &b->conv2, NM("conv2"), b->cout, b->cout, 3, 1, 1, 1, false))) return s;
    if ((s = bg_mbn_new(ctx, m, &b->bn2, NM("bn2"), b->cout, 1.0))) return s;
    if (b->proj) {
        if ((s = bg_mconv_new(ctx, m, &b->sc, NM("shortcut.0"), b->cin, b->cout, 1, b->stride, 0, 1, false))) return s;
        if ((s = bg_mbn_new(ctx, m, &b->sc_bn, NM("shortcut.1"), b->cout, 1.0))) return s;
    }
    return BG_OK;
#undef NM
}

static bg_status build(bg_ctx *ctx, bg_model *m, const bg_model_args *args, int v)
{
    const char *name = m->family->name;
    snprintf(m->spec, sizeof m->spec, "%s:w=%g,d=%g,r=%g,classes=%d", name, args->w, args->d, args->r, args->classes);
    arch *a = calloc(1, sizeof *a);
    if (!a) return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", m->spec);
    m->arch = a;
    a->variant = v;
    double blocks = rint(2.0 * args->d);
    a->per_stage = (int)blocks;
    int side = (int)(32.0 * args->r);
    a->in_side = side;
    m->in_c = 3, m->in_h = m->in_w = side;
    static const int base[4] = {64, 128, 256, 512}, first_stride[4] = {1, 2, 2, 2};
    int width[4], stem_c = stage_width(v, 64, args->w);
    for (int i = 0; i < 4; i++) width[i] = stage_width(v, base[i], args->w);
    for (int i = 0; i < 4; i++)
        if (width[i] < 1 || stem_c < 1)
            return bg_fail(ctx, BG_ERR_ARG, "%s: w=%g makes stage %d %d channels wide (%s rounding of %d*w)", m->spec,
                           args->w, i + 1, width[i], v == V_BASIC ? "8*floor(c*w/8)" : "round(c*w)", base[i]);
    if (side < 1) return bg_fail(ctx, BG_ERR_ARG, "%s: r=%g gives an input side int(32*r) = %d", m->spec, args->r, side);

    /* Feature-map sizes, checked before any tensor exists. */
    int hw = side, c = stem_c;
    for (int i = 0; i < 4 && a->per_stage > 0; i++) {
        hw = bg_conv_out(hw, 3, first_stride[i], 1);
        c = width[i];
    }
    if (hw < 4)
        return bg_fail(ctx, BG_ERR_SHAPE,
                       "%s: r=%g (input %dx%d) leaves a %dx%d map before the 4x4 average-pool head; the feature map "
                       "vanishes (need r >= %g)", m->spec, args->r, side, side, hw, hw, a->per_stage > 0 ? 25 / 32.0 : 4 / 32.0);
    a->final_c = c;
    a->pool_h = a->pool_w = (hw - 4) / 4 + 1;

    bg_status s;
    if ((s = bg_mconv_new(ctx, m, &a->stem, "conv1", 3, stem_c, 3, 1, 1, 1, false))) return s;
    if (!preact(v) || v == V_SENET)
        if ((s = bg_mbn_new(ctx, m, &a->stem_bn, "bn1", stem_c, 1.0))) return s;
    a->n_blocks = 4 * a->per_stage;
    if (a->n_blocks && !(a->blocks = calloc((size_t)a->n_blocks, sizeof *a->blocks)))
        return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", m->spec);
    int cin = stem_c;
    for (int st = 0; st < 4; st++)
        for (int j = 0; j < a->per_stage; j++) {
            block *b = &a->blocks[st * a->per_stage + j];
            char pfx[32];
            snprintf(pfx, sizeof pfx, "layer%d.%d", st + 1, j);
            b->stride = j == 0 ? first_stride[st] : 1;
            b->cin = cin;
            b->cout = width[st];
            if ((s = new_block(ctx, m, b, v, pfx))) return s;
            cin = b->cout;
        }
    int feat = a->final_c * a->pool_h * a->pool_w;
    return bg_mlinear_new(ctx, m, &a->fc, "linear", feat, args->classes, a->pool_h, a->pool_w);
}

/* The SE squeeze is avg_pool2d(kernel = H) in the reference: global on the
 * square maps these models see. */
static bg_tensor *se_gate(bg_graph *g, bg_model *m, bg_tensor *out, bg_tensor *res, const block *b)
{
    if (!out) return NULL;
    if (out->shape[1] != out->shape[2]) {
        char sb[96];
        bg_fail(g->ctx, BG_ERR_SHAPE, "%s: the SE squeeze (avg_pool2d with kernel = H) needs a square map, got %s",
                m->spec, bg_shape_str(out, sb, sizeof sb));
        return NULL;
    }
    bg_tensor *s = bg_global_avgpool(g, out);
    s = bg_mconv_act_fwd(g, s, &b->fc1, NULL, BG_EP_RELU);
    s = bg_mconv_act_fwd(g, s, &b->fc2, NULL, BG_EP_SIGMOID);
    return bg_scale_fwd(g, out, s, res, false);
}

static bg_tensor *block_fwd(bg_graph *g, bg_model *m, int v, const block *b, bg_tensor *x)
{
    if (preact(v)) {
        bg_tensor *a = bg_mbn_relu_fwd(g, x, &b->bn1);
        bg_tensor *sc = b->proj ? bg_mconv_fwd(g, a, &b->sc) : x;
        bg_tensor *out = bg_mconv_fwd(g, a, &b->conv1);
        bg_tensor *t = bg_mbn_relu_fwd(g, out, &b->bn2);
        /* the residual add rides in the SE scale or in conv2's epilogue */
        if (v == V_SENET) return se_gate(g, m, bg_mconv_fwd(g, t, &b->conv2), sc, b);
        return bg_mconv_act_fwd(g, t, &b->conv2, sc, BG_EP_NONE);
    }
    bg_tensor *out = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &b->conv1), &b->bn1);
    out = bg_mbn_fwd(g, bg_mconv_fwd(g, out, &b->conv2), &b->bn2);
    bg_tensor *sc = b->proj ? bg_mbn_fwd(g, bg_mconv_fwd(g, x, &b->sc), &b->sc_bn) : x;
    return bg_relu(g, bg_add(g, out, sc));
}

static bg_tensor *forward(bg_graph *g, bg_model *m, bg_tensor *x)
{
    arch *a = m->arch;
    x = bg_mconv_fwd(g, x, &a->stem);
    if (a->variant != V_PREACT) x = bg_mbn_relu_fwd(g, x, &a->stem_bn);
    bg_model_mark_section(g, m, "stem");
    for (int i = 0; i < a->n_blocks; i++) {
        x = block_fwd(g, m, a->variant, &a->blocks[i], x);
        char nm[32];
        snprintf(nm, sizeof nm, "layer%d.%d", i / a->per_stage + 1, i % a->per_stage);
        bg_model_mark_section(g, m, nm);
    }
    x = bg_avgpool2d(g, x, bg_mpool(4, 4, 0, false, true));
    if (x && (x->shape[1] != a->pool_h || x->shape[2] != a->pool_w)) {
        bg_fail(g->ctx, BG_ERR_SHAPE,
                "%s: this input leaves a %lldx%lld map after the 4x4 average pool, but the model was built for a "
                "%dx%d input (a %dx%d map, Linear in_features %d): give r so that int(32r) fits this input",
                m->spec, (long long)x->shape[1], (long long)x->shape[2], a->in_side, a->in_side, a->pool_h, a->pool_w,
                a->final_c * a->pool_h * a->pool_w);
        return NULL;
    }
    x = bg_mlinear_fwd(g, bg_flatten(g, x, 1), &a->fc);
    bg_model_mark_section(g, m, "head");
    return x;
}

static bg_status build_senet(bg_ctx *ctx, bg_model *m, const bg_model_args *a) { return build(ctx, m, a, V_SENET); }
static bg_status build_preact(bg_ctx *ctx, bg_model *m, const bg_model_args *a) { return build(ctx, m, a, V_PREACT); }
static bg_status build_basic(bg_ctx *ctx, bg_model *m, const bg_model_args *a) { return build(ctx, m, a, V_BASIC); }

const bg_model_family bg_family_senet18 = {
    .name = "senet18", .keys = "w,d,r,classes", .default_classes = 10, .default_size = 32,
    .help = "kuangliu SENet18 (pre-activation SE blocks), HAET scaling: widths round(c*w), round(2d) blocks/stage, input int(32r)",
    .build = build_senet, .forward = forward, .free_arch = free_arch, .variant = V_SENET};
const bg_model_family bg_family_preact_resnet18 = {
    .name = "preact_resnet18", .keys = "w,d,r,classes", .default_classes = 10, .default_size = 32,
    .help = "kuangliu PreActResNet18; widths round(c*w) (as senet18), round(2d) blocks/stage, input int(32r)",
    .build = build_preact, .forward = forward, .free_arch = free_arch, .variant = V_PREACT};
const bg_model_family bg_family_resnet18 = {
    .name = "resnet18", .keys = "w,d,r,classes", .default_classes = 10, .default_size = 32,
    .help = "kuangliu ResNet18 (BasicBlock), HAET scaling: widths 8*floor(c*w/8), round(2d) blocks/stage, input int(32r)",
    .build = build_basic, .forward = forward, .free_arch = free_arch, .variant = V_BASIC};
