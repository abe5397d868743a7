/* The foundation's small CNN as a zoo family ("small_cnn:w=1,c=3,classes=10"):
 * three conv3x3-BN-ReLU blocks of widths 16w, 32w, 64w (no conv bias), the
 * first two followed by 2x2 max-pooling, global average pooling and a linear
 * head. Any input of at least 4x4 with c channels, so it runs on CIFAR
 * (32x32x3) and Fashion-MNIST (28x28x1, c=1); `size` only sets the input the
 * summary assumes. Entries: conv1..3, bn1..3, fc (PyTorch-style names of an
 * equivalent module with those attributes). */
#include <stdio.h>
#include <stdlib.h>
#include "layers.h"

typedef struct {
    bg_mconv conv[3];
    bg_mbn bn[3];
    bg_mlinear fc;
} arch;

static void free_arch(void *p) { free(p); }

static bg_status build(bg_ctx *ctx, bg_model *m, const bg_model_args *a)
{
    const int width = (int)(16.0 * a->w + 0.5);
    snprintf(m->spec, sizeof m->spec, "small_cnn:w=%g,c=%d,classes=%d,size=%d", a->w, a->c, a->classes, a->size);
    if (width < 1) return bg_fail(ctx, BG_ERR_ARG, "%s: w=%g gives a width of %d channels (need w >= 1/32)", m->spec, a->w, width);
    if (a->classes < 2) return bg_fail(ctx, BG_ERR_ARG, "%s: classes must be at least 2", m->spec);
    if (a->size < 4) return bg_fail(ctx, BG_ERR_ARG, "%s: size %d: the two 2x2 pools need at least 4x4", m->spec, a->size);
    arch *ar = calloc(1, sizeof *ar);
    if (!ar) return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", m->spec);
    m->arch = ar;
    m->in_c = a->c, m->in_h = m->in_w = a->size;
    int cin = a->c;
    bg_status s;
    for (int i = 0; i < 3; i++) {
        char nm[16];
        const int cout = width << i;
        snprintf(nm, sizeof nm, "conv%d", i + 1);
        if ((s = bg_mconv_new(ctx, m, &ar->conv[i], nm, cin, cout, 3, 1, 1, 1, false))) return s;
        snprintf(nm, sizeof nm, "bn%d", i + 1);
        if ((s = bg_mbn_new(ctx, m, &ar->bn[i], nm, cout, 1.0))) return s;
        cin = cout;
    }
    return bg_mlinear_new(ctx, m, &ar->fc, "fc", cin, a->classes, 1, 1);
}

static bg_tensor *forward(bg_graph *g, bg_model *m, bg_tensor *x)
{
    const arch *ar = m->arch;
    for (int i = 0; i < 3; i++) {
        x = bg_mbn_relu_fwd(g, bg_mconv_fwd(g, x, &ar->conv[i]), &ar->bn[i]);
        if (i < 2) x = bg_maxpool2d(g, x, bg_mpool(2, 2, 0, false, true));
        char nm[16];
        snprintf(nm, sizeof nm, "block%d", i + 1);
        bg_model_mark_section(g, m, nm);
    }
    x = bg_mlinear_fwd(g, bg_flatten(g, bg_global_avgpool(g, x), 1), &ar->fc);
    bg_model_mark_section(g, m, "head");
    return x;
}

const bg_model_family bg_family_small_cnn = {
    .name = "small_cnn", .keys = "w,c,classes,size", .default_classes = 10, .default_size = 32,
    .help = "the foundation's small CNN: 3 conv-BN-ReLU blocks (16w, 32w, 64w), two 2x2 max-pools, GAP, linear; "
            "c input channels, any input >= 4x4",
    .build = build, .forward = forward, .free_arch = free_arch};
