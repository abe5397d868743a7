/* `budgie data preview`: a PNG grid of augmented training samples, each
 * tile labelled with its class name in a built-in 5x7 bitmap font, and the
 * ops drawn for each tile listed on stdout. For checking by eye that the
 * pipeline does what it says (HAET: crop, flip, AutoAugment, Cutout). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../augment/transforms.h"
#include "data_cmds.h"
#include "options.h"

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column. */
static const uint8_t DIGITS[10][7] = {
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
};
static const uint8_t LETTERS[26][7] = {
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}, /* a b */
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}, {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}, /* c d */
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}, {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}, /* e f */
    {0x00, 0x00, 0x0F, 0x11, 0x0F, 0x01, 0x0E}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, /* g h */
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}, {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}, /* i j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* k l */
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}, {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, /* m n */
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}, {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}, /* o p */
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}, {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, /* q r */
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}, {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}, /* s t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}, {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}, /* u v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}, {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}, /* w x */
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}, {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}, /* y z */
};

static const uint8_t *glyph(char ch)
{
    static const uint8_t dash[7] = {0, 0, 0, 0x1F, 0, 0, 0}, under[7] = {0, 0, 0, 0, 0, 0, 0x1F},
                         dot[7] = {0, 0, 0, 0, 0, 0x0C, 0x0C}, space[7] = {0}, box[7] = {0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F};
    unsigned char c = (unsigned char)tolower((unsigned char)ch);
    if (c >= '0' && c <= '9') return DIGITS[c - '0'];
    if (c >= 'a' && c <= 'z') return LETTERS[c - 'a'];
    return c == '-' ? dash : c == '_' ? under : c == '.' ? dot : c == ' ' ? space : box;
}

/* Text at (x, y) of an RGB canvas, clipped to max_w pixels. */
static void draw_text(uint8_t *img, int iw, int ih, int x, int y, int max_w, const char *s, const uint8_t rgb[3])
{
    for (int k = 0; s[k] && (k + 1) * 6 - 1 <= max_w; k++) {
        const uint8_t *g = glyph(s[k]);
        for (int r = 0; r < 7; r++)
            for (int col = 0; col < 5; col++) {
                int px = x + k * 6 + col, py = y + r;
                if ((g[r] >> (4 - col) & 1) && px >= 0 && px < iw && py >= 0 && py < ih)
                    memcpy(img + ((size_t)py * iw + px) * 3, rgb, 3);
            }
    }
}

static void usage(FILE *o)
{
    fprintf(o,
        "usage: budgie data preview SPEC --out GRID.png [--aug haet|crop-flip|none]\n"
        "       [--variant pil|torchvision] [--n N] [--cols C] [--scale S] [--seed S] [--step T]\n"
        "       [--split train|test] [--max-per-class K]\n"
        "\n"
        "Draws N (default 64) training samples of SPEC (anything `budgie data pack` reads:\n"
        "a data set directory, an image folder, a .bgpk pack, a CIFAR .bin) after the\n"
        "augmentation pipeline and writes them as a grid, each tile scaled by S (default 2)\n"
        "with its class name underneath. --aug haet (default): pad-4 crop, flip,\n"
        "AutoAugment CIFAR-10 policy, Cutout 16 (black, before normalising); crop-flip: the\n"
        "first two only. The ops drawn per tile are printed. Draws are those of training\n"
        "step T (default 0) with seed S (default 1), positions 0..N-1.\n");
}

static void describe_step(const bg_aa_step *s, char *buf, size_t n)
{
    if (s->op == BG_AA_IDENTITY) return;
    size_t l = strlen(buf);
    const char *name = bg_aa_op_name(s->op);
    if (s->op == BG_AA_TRANSLATEX || s->op == BG_AA_TRANSLATEY || s->op == BG_AA_POSTERIZE)
        snprintf(buf + l, n - l, " %s(%d)", name, s->ival);
    else if (bg_aa_has_magnitude(s->op))
        snprintf(buf + l, n - l, " %s(%.3g)", name, s->fval);
    else
        snprintf(buf + l, n - l, " %s", name);
}

int bg_data_preview(int argc, char **argv)
{
    const char *spec = NULL, *out = NULL, *aug = "haet", *variant = "pil", *split = "train";
    int64_t n_o = 64, cols_o = 8, scale_o = 2, seed_o = 1, step_o = 0, max_per_class_o = 0;
    int n_pos = 0;
    const bg_opt opts[] = {
        {.name = "out", .type = BG_OPT_STR, .dst = &out},
        {.name = "aug", .type = BG_OPT_CHOICE, .dst = &aug, .choices = "haet|crop-flip|none"},
        {.name = "variant", .type = BG_OPT_CHOICE, .dst = &variant, .choices = "pil|torchvision"},
        {.name = "split", .type = BG_OPT_CHOICE, .dst = &split, .choices = "train|test"},
        {.name = "n", .type = BG_OPT_INT, .dst = &n_o, .min = 1, .max = 4096},
        {.name = "cols", .type = BG_OPT_INT, .dst = &cols_o, .min = 1, .max = 256},
        {.name = "scale", .type = BG_OPT_INT, .dst = &scale_o, .min = 1, .max = 16},
        {.name = "seed", .type = BG_OPT_INT, .dst = &seed_o, .min = 0, .max = 2000000000},
        {.name = "step", .type = BG_OPT_INT, .dst = &step_o, .min = 0, .max = 2000000000},
        {.name = "max-per-class", .type = BG_OPT_INT, .dst = &max_per_class_o, .min = 0, .max = 1000000000},
    };
    const int prc = bg_opts_parse("data preview", opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, &spec, 1,
                                  &n_pos);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc) return prc;
    int n = (int)n_o, cols = (int)cols_o;
    const int scale = (int)scale_o, seed = (int)seed_o, step = (int)step_o, max_per_class = (int)max_per_class_o;
    if (!spec || !out) {
        usage(stderr);
        return 2;
    }
    bg_aug_cfg cfg = {4, 1, 0, 0};
    if (!strcmp(aug, "haet")) cfg.cutout = 16, cfg.autoaugment = 1;
    else if (!strcmp(aug, "none")) cfg.crop_pad = 0, cfg.flip = 0;

    if (cfg.autoaugment) cfg.autoaugment = !strcmp(variant, "pil") ? BG_AUTOAUG_PIL : BG_AUTOAUG_TORCHVISION;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, (uint64_t)seed)) return fprintf(stderr, "budgie data preview: %s\n", bg_errmsg(&ctx)), 1;
    bg_dataset ds;
    const char *fmt;
    int rc = 1;
    uint8_t *canvas = NULL, *a = NULL, *b = NULL;
    int64_t *order = NULL;
    bg_status s = bg_data_open(&ctx, spec, split, max_per_class, &ds, &fmt);
    if (s) goto done;
    if (ds.n == 0) {
        s = bg_fail(&ctx, BG_ERR_ARG, "%s: no images", spec);
        goto done;
    }
    if (cfg.autoaugment && ds.c != 3 && ds.c != 1) {
        s = bg_fail(&ctx, BG_ERR_ARG, "%s: AutoAugment needs 1 or 3 channels, the images have %d", spec, ds.c);
        goto done;
    }
    if (ds.n < n) n = (int)ds.n;
    if (cols > n) cols = n;
    const int H = ds.h, W = ds.w, C = ds.c, rows = (n + cols - 1) / cols;
    const int tw = W * scale, th = H * scale + 10, gap = 2; /* 10 px text band */
    const int cw = cols * (tw + gap) + gap, ch = rows * (th + gap) + gap;
    if ((int64_t)cw * ch > 200000000) {
        s = bg_fail(&ctx, BG_ERR_ARG, "%s: a %dx%d grid is too large; lower --n or --scale", spec, cw, ch);
        goto done;
    }
    canvas = malloc((size_t)cw * ch * 3);
    a = malloc((size_t)H * W * C), b = malloc((size_t)H * W * C);
    order = malloc((size_t)ds.n * sizeof *order);
    if (!canvas || !a || !b || !order) {
        s = bg_fail(&ctx, BG_ERR_OOM, "preview: out of memory");
        goto done;
    }
    memset(canvas, 64, (size_t)cw * ch * 3);
    for (int64_t i = 0; i < ds.n; i++) order[i] = i;
    bg_shuffle(order, ds.n, (uint64_t)seed, 0);
    printf("%s (%s, %lld images %dx%dx%d), --aug %s%s%s, seed %d step %d\n", spec, fmt, (long long)ds.n, W, H, C, aug,
           cfg.autoaugment ? " --variant " : "", cfg.autoaugment ? variant : "", seed, step);
    const uint8_t white[3] = {255, 255, 255};
    for (int t = 0; t < n; t++) {
        bg_aug_plan pl = bg_aug_plan_make(&cfg, (uint64_t)seed, (uint64_t)step, (uint32_t)t, H, W);
        const uint8_t *src = bg_dataset_image(&ds, order[t]);
        bg_aug_apply_plan_u8(&pl, cfg.cutout, src, H, W, C, a, b);
        int x0 = gap + (t % cols) * (tw + gap), y0 = gap + (t / cols) * (th + gap);
        for (int y = 0; y < H * scale; y++)
            for (int x = 0; x < tw; x++) {
                const uint8_t *p = a + ((size_t)(y / scale) * W + x / scale) * C;
                uint8_t *q = canvas + ((size_t)(y0 + y) * cw + x0 + x) * 3;
                q[0] = p[0], q[1] = p[C > 1 ? 1 : 0], q[2] = p[C > 2 ? 2 : 0];
            }
        for (int y = H * scale; y < th; y++) memset(canvas + ((size_t)(y0 + y) * cw + x0) * 3, 0, (size_t)tw * 3);
        int label = ds.labels[order[t]];
        const char *name = ds.class_names && ds.class_names[label] ? ds.class_names[label] : "?";
        draw_text(canvas, cw, ch, x0 + 1, y0 + H * scale + 2, tw - 2, name, white);
        char ops[160] = "";
        describe_step(&pl.op[0], ops, sizeof ops);
        describe_step(&pl.op[1], ops, sizeof ops);
        printf("  r%d c%d  #%lld  label %d %-12s crop %+d,%+d%s%s", t / cols, t % cols, (long long)order[t], label,
               name, pl.dx, pl.dy, pl.flip ? " flip" : "", ops);
        if (pl.cut_y >= 0) printf(" cutout@%d,%d", pl.cut_y, pl.cut_x);
        printf("\n");
    }
    s = bg_write_png(&ctx, out, cw, ch, 3, canvas);
    if (!s) {
        printf("wrote %s (%dx%d, %d tiles)\n", out, cw, ch, n);
        rc = 0;
    }
done:
    if (s) fprintf(stderr, "budgie data preview: %s\n", bg_errmsg(&ctx));
    free(canvas), free(a), free(b), free(order);
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
    return rc;
}
