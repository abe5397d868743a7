/* `budgie validate`: check our ops against reference numbers stored in
 * safetensors files (written by tools/make_op_fixtures.py from PyTorch, or
 * by hand). The work is in ops/validate.c; this file parses the command
 * line and turns the counts into an exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/validate.h"
#include "options.h"

int bg_cmd_validate(int argc, char **argv);

static void usage(FILE *o)
{
    fprintf(o,
        "usage: budgie validate [--atol A] [--rtol R] [--backend cpu|cuda|all] FILE.safetensors...\n"
        "\n"
        "Runs the op call each file describes on the chosen backends (default all:\n"
        "the CPU, plus CUDA when a device is present) and compares every expected\n"
        "tensor element by element: pass when |got - want| <= atol + rtol*|want|\n"
        "(NaN never passes). Defaults atol 1e-5, rtol 1e-4; a file's own atol/rtol\n"
        "metadata overrides the command line. Per tensor it prints the shape,\n"
        "max_abs = max|got-want| and max_rel = max|got-want|/max(|want|, atol).\n"
        "Exit status: 0 all pass, 1 some tensor failed, 2 usage or file error.\n"
        "\n"
        "File format (safetensors; __metadata__ values are strings):\n"
        "  op       op table name: conv2d, batchnorm2d, linear, ... (required)\n"
        "  params   JSON object of the op's parameters, e.g.\n"
        "           {\"stride\":[2,2],\"padding\":1,\"groups\":4}; omitted keys keep defaults\n"
        "  train    \"1\" (default) or \"0\": training mode (batchnorm statistics)\n"
        "  layout   \"NCHW\" (PyTorch: every 4-D tensor is permuted (0,2,3,1) on load,\n"
        "           which also takes OIHW conv weights to our OHWI) or \"NHWC\";\n"
        "           required when the file has a 4-D tensor\n"
        "  atol, rtol  optional per-file tolerances\n"
        "Tensors:\n"
        "  <input>        each input by the op's input name (x, weight, bias...);\n"
        "                 absent optional inputs are left out. Float inputs run as\n"
        "                 f32; integer ones (labels, I64 allowed) as i32\n"
        "  out.<output>   expected output (out.y...)\n"
        "  out.<input>    expected state of an input updated in place\n"
        "                 (batchnorm's out.running_mean, out.running_var)\n"
        "  dout.<output>  upstream gradient; when present the backward runs\n"
        "  grad.<input>   expected gradient of a differentiable input\n"
        "See docs/validate-format.md.\n");
}

int bg_cmd_validate(int argc, char **argv)
{
    bg_validate_opts o;
    bg_validate_defaults(&o);
    const char *backend = "all";
    const bg_opt opts[] = {
        {.name = "atol", .type = BG_OPT_NUM, .dst = &o.atol, .min = 0, .max = 1e30},
        {.name = "rtol", .type = BG_OPT_NUM, .dst = &o.rtol, .min = 0, .max = 1e30},
        {.name = "backend", .type = BG_OPT_CHOICE, .dst = &backend, .choices = "cpu|cuda|all"},
    };
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0;
    if (!files) {
        fprintf(stderr, "budgie validate: out of memory\n");
        return 2;
    }
    const int prc = bg_opts_parse("validate", opts, 3, argc, argv, files, argc, &n_files);
    if (prc || !n_files) {
        if (prc == 1) usage(stdout);
        else if (!prc) usage(stderr);
        free(files);
        return prc == 1 ? 0 : 2;
    }
    o.backends = !strcmp(backend, "cpu") ? BG_VAL_CPU : !strcmp(backend, "cuda") ? BG_VAL_CUDA : BG_VAL_ALL;

    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0) != BG_OK) {
        fprintf(stderr, "budgie validate: %s\n", bg_errmsg(&ctx));
        return 2;
    }
    bg_validate_counts total = {0};
    int n_err = 0, n_files_failed = 0;
    for (int i = 0; i < n_files; i++) {
        bg_validate_counts c = {0};
        bg_clear_error(&ctx);
        bg_status s = bg_validate_file(&ctx, files[i], &o, stdout, &c);
        fflush(stdout);
        if (s != BG_OK) {
            fprintf(stderr, "error: %s\n", bg_errmsg(&ctx));
            n_err++;
        }
        total.n_tensors += c.n_tensors;
        total.n_pass += c.n_pass;
        total.n_fail += c.n_fail;
        n_files_failed += c.n_fail > 0;
    }
    bg_ctx_free(&ctx);
    printf("%d tensors: %d passed, %d failed; %d of %d files failed, %d errors\n", total.n_tensors,
           total.n_pass, total.n_fail, n_files_failed, n_files, n_err);
    free(files);
    return n_err ? 2 : total.n_fail ? 1 : 0;
}
