/* `budgie augment`: apply one AutoAugment operation to one JPEG and write a
 * PNG, deterministically (the magnitude bin and the sign are given, nothing
 * is drawn). For eyeballing ops and checking them against PIL by hand. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../augment/transforms.h"
#include "options.h"
#include "verbs.h"

static void usage(FILE *o)
{
    fprintf(o,
        "usage: budgie augment --op NAME --magnitude M [--sign +1|-1] [--variant pil|torchvision]\n"
        "                      --in IMAGE.jpg --out OUT.png\n"
        "\n"
        "Applies one AutoAugment operation to a JPEG image (decoded with TurboJPEG)\n"
        "and writes the result as PNG.\n"
        "  --op NAME        ShearX ShearY TranslateX TranslateY Rotate Color Posterize\n"
        "                   Solarize Contrast Sharpness Brightness AutoContrast Equalize\n"
        "                   Invert (case-insensitive)\n"
        "  --magnitude M    the magnitude bin 0..9 (ignored by AutoContrast, Equalize, Invert)\n"
        "  --sign S         +1 (default) or -1: the sign AutoAugment would draw; Rotate in the\n"
        "                   pil variant ignores it (DeepVoltaire always rotates counter-clockwise)\n"
        "  --variant V      pil (default): DeepVoltaire's PIL code as HAET ran it, bicubic shear,\n"
        "                   fill 128; torchvision: torchvision 0.14's bins, nearest, fill 0\n"
        "Exit status: 0 done, 1 the image could not be read or written, 2 usage error.\n");
}

int bg_cmd_augment(int argc, char **argv)
{
    const char *op_name = NULL, *in = NULL, *out = NULL, *variant_name = "pil";
    int64_t magnitude = -1, sign = 1;
    const bg_opt opts[] = {
        {.name = "op", .type = BG_OPT_STR, .dst = &op_name},
        {.name = "in", .type = BG_OPT_STR, .dst = &in},
        {.name = "out", .type = BG_OPT_STR, .dst = &out},
        {.name = "variant", .type = BG_OPT_CHOICE, .dst = &variant_name, .choices = "pil|torchvision"},
        {.name = "magnitude", .type = BG_OPT_INT, .dst = &magnitude, .min = 0, .max = 9},
        {.name = "sign", .type = BG_OPT_INT, .dst = &sign, .min = -1, .max = 1},
    };
    const int prc = bg_opts_parse("augment", opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, NULL, 0, NULL);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc) return prc;
    if (!op_name || !in || !out) {
        fprintf(stderr, "budgie augment: --op, --in and --out are required (budgie augment --help)\n");
        return 2;
    }
    int op = bg_aa_op_parse(op_name);
    if (op < 0) {
        fprintf(stderr, "budgie augment: --op '%s' is not an AutoAugment operation; one of:", op_name);
        for (int k = 0; k < BG_AA_NOPS; k++) fprintf(stderr, " %s", bg_aa_op_name(k));
        fprintf(stderr, "\n");
        return 2;
    }
    const int variant = !strcmp(variant_name, "pil") ? BG_AUTOAUG_PIL : BG_AUTOAUG_TORCHVISION;
    if (bg_aa_has_magnitude(op) && magnitude < 0) {
        fprintf(stderr, "budgie augment: %s needs --magnitude 0..9\n", bg_aa_op_name(op));
        return 2;
    }
    if (magnitude < 0) magnitude = 0;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) {
        fprintf(stderr, "budgie augment: %s\n", bg_errmsg(&ctx));
        return 1;
    }
    bg_aa_step st;
    if (bg_aa_step_make(&ctx, variant, op, (int)magnitude, (int)sign, 1, 1, &st)) {
        fprintf(stderr, "budgie augment: --magnitude/--sign: %s\n", bg_errmsg(&ctx));
        bg_ctx_free(&ctx);
        return 2;
    }
    uint8_t *data = NULL, *dst = NULL;
    const uint8_t *px;
    bg_jpeg j = {0};
    int w = 0, h = 0, rc = 1;
    size_t n = 0;
    bg_status s = bg_read_file(&ctx, in, &data, &n);
    if (!s) s = bg_jpeg_decode(&ctx, &j, data, n, in, 0, 0, &px, &w, &h);
    /* Translate bins scale with the image, so resolve again at its size. */
    if (!s) s = bg_aa_step_make(&ctx, variant, op, magnitude, sign, w, h, &st);
    if (!s && !(dst = malloc((size_t)w * h * 3))) s = bg_fail(&ctx, BG_ERR_OOM, "%s: out of memory", in);
    if (!s) s = bg_aa_apply(&ctx, &st, px, dst, h, w, 3);
    if (!s) s = bg_write_png(&ctx, out, w, h, 3, dst);
    if (s) fprintf(stderr, "budgie augment: %s\n", bg_errmsg(&ctx));
    else {
        printf("%s m=%d sign=%+d (%s): %s %dx%d -> %s\n", bg_aa_op_name(op), (int)magnitude, (int)sign, variant_name, in, w, h, out);
        rc = 0;
    }
    free(dst);
    free(data);
    bg_jpeg_free(&j);
    bg_ctx_free(&ctx);
    return rc;
}
