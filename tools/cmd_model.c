/* budgie model: the model zoo from the command line.
 *   budgie model list
 *   budgie model summary SPEC [--input CxHxW] [--batch B]
 *   budgie model time SPEC [--input CxHxW] [--batch B] [--steps N] [--seed S]
 *   budgie model save SPEC OUT.safetensors [--seed S] [--weights IN.safetensors] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../models/model.h"
#include "../ops/ops.h"
#include "options.h"
#include "verbs.h"
#include "../engine/clock.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: budgie model list\n"
            "       budgie model summary SPEC [--input CxHxW] [--batch B]\n"
            "       budgie model time SPEC [--input CxHxW] [--batch B] [--steps N] [--seed S]\n"
            "       budgie model save SPEC OUT.safetensors [--seed S] [--weights IN.safetensors]\n"
            "\n"
            "SPEC is NAME[:key=value,...], e.g. senet18:w=0.67 or resnest50d_1s4x24d:classes=100.\n"
            "summary  per block: output shape [N,H,W,C], parameters, MACs per image (conv + linear\n"
            "         only, as the seed spec counts them) and training activation memory at batch B\n"
            "         (bytes of every tensor the graph keeps for backward: node outputs + saved\n"
            "         tensors + the input batch, f32); then the totals. Default input: the model's own\n"
            "         (int(32r) for the CIFAR models, size=224 for ResNeSt), batch 1. Then the planned\n"
            "         peaks (engine/plan.h: one arena, buffers reused once dead) of a training step\n"
            "         (SGD momentum) and of an evaluation at batch B, with the unplanned bytes.\n"
            "time     CPU wall time of forward + backward (loss included) at batch B (default 8),\n"
            "         median of N steps (default 3) after the recording step.\n"
            "save     initial weights (seeded, default seed 0), or IN's weights, as a PyTorch-named\n"
            "         safetensors state dict that load_state_dict accepts.\n"
            "Models:\n");
    for (int i = 0; i < bg_model_family_count(); i++)
        fprintf(f, "  %-20s %s\n", bg_model_family_name(i), bg_model_family_help(i));
}

typedef struct {
    int c, h, w, batch, steps;
    unsigned long long seed;
    const char *weights;
} opts;

static int parse_opts(int argc, char **argv, int first, opts *o)
{
    const char *input = NULL;
    int64_t batch = o->batch, steps = o->steps, seed = (int64_t)o->seed;
    const bg_opt table[] = {
        {.name = "input", .type = BG_OPT_STR, .dst = &input},
        {.name = "batch", .type = BG_OPT_INT, .dst = &batch, .min = 1, .max = 1 << 20},
        {.name = "steps", .type = BG_OPT_INT, .dst = &steps, .min = 1, .max = 100000},
        {.name = "seed", .type = BG_OPT_INT, .dst = &seed, .min = 0, .max = 9.007199254740992e15},
        {.name = "weights", .type = BG_OPT_STR, .dst = &o->weights},
    };
    /* the options after the positional arguments, as a command line of their own */
    const int rc = bg_opts_parse("model", table, (int)(sizeof table / sizeof table[0]), argc - first + 1,
                                 argv + first - 1, NULL, 0, NULL);
    if (rc) return 2;
    int used = 0;
    if (input && (sscanf(input, "%dx%dx%d%n", &o->c, &o->h, &o->w, &used) != 3 || input[used] || o->c < 1 ||
                  o->h < 1 || o->w < 1)) {
        fprintf(stderr, "budgie model: --input wants CxHxW (e.g. 3x32x32), got '%s'\n", input);
        return 2;
    }
    o->batch = (int)batch, o->steps = (int)steps, o->seed = (unsigned long long)seed;
    return 0;
}

/* "1,234,567" */
static const char *grouped(long long v, char *buf, size_t n)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", v < 0 ? -v : v);
    size_t len = strlen(raw), k = 0;
    if (v < 0 && k < n - 1) buf[k++] = '-';
    for (size_t i = 0; i < len && k < n - 1; i++) {
        if (i && (len - i) % 3 == 0 && k < n - 1) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
    return buf;
}

static const char *macs_str(double macs, char *buf, size_t n)
{
    if (macs >= 1e9) snprintf(buf, n, "%.3f G", macs / 1e9);
    else if (macs >= 1e6) snprintf(buf, n, "%.2f M", macs / 1e6);
    else if (macs >= 1e3) snprintf(buf, n, "%.2f K", macs / 1e3);
    else snprintf(buf, n, "%.0f", macs);
    return buf;
}

static const char *bytes_str(double b, char *buf, size_t n)
{
    if (b >= 1024.0 * 1024 * 1024) snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024) snprintf(buf, n, "%.2f MiB", b / (1024.0 * 1024));
    else snprintf(buf, n, "%.1f KiB", b / 1024.0);
    return buf;
}

static int cmd_summary(bg_ctx *ctx, bg_model *m, const opts *o)
{
    bg_summary s;
    if (bg_model_summary(ctx, m, o->batch, o->c, o->h, o->w, true, &s)) {
        fprintf(stderr, "budgie model summary: %s\n", bg_errmsg(ctx));
        return 1;
    }
    char a[48], b[48], c[48];
    printf("%s  input %dx%dx%d (CxHxW), batch %d\n", m->spec, s.c, s.h, s.w, s.batch);
    printf("%-12s %-20s %12s %12s %14s\n", "layer", "output [N,H,W,C]", "params", "MACs/image", "act. memory");
    for (int i = 0; i < s.n_rows; i++) {
        const bg_summary_row *r = &s.rows[i];
        char shp[48] = "[";
        for (int d = 0; d < r->ndim; d++) {
            char t[16];
            snprintf(t, sizeof t, "%s%lld", d ? "," : "", (long long)r->shape[d]);
            strncat(shp, t, sizeof shp - strlen(shp) - 1);
        }
        strncat(shp, "]", sizeof shp - strlen(shp) - 1);
        printf("%-12s %-20s %12s %12s %14s\n", r->name, shp, grouped(r->params, a, sizeof a),
               macs_str(r->macs, b, sizeof b), bytes_str(r->act_bytes, c, sizeof c));
    }
    printf("%-12s %-20s %12s %12s %14s\n", "input", "", "", "", bytes_str(s.input_bytes, c, sizeof c));
    printf("total: %s params, %s MACs per image, %s training activation memory at batch %d\n",
           grouped(s.params, a, sizeof a), macs_str(s.macs, b, sizeof b), bytes_str(s.act_bytes, c, sizeof c), s.batch);
    bg_summary_free(&s);
    bg_plan_peaks p;
    if (bg_model_plan_peaks(ctx, m, o->batch, o->c, o->h, o->w, &p)) {
        fprintf(stderr, "budgie model summary: %s\n", bg_errmsg(ctx));
        return 1;
    }
    char d[48], e[48], f[48], g[48];
    printf("planned training step peak at batch %d (forward, loss, backward, SGD momentum; f32): %s = arena %s "
           "(unplanned %s) + scratch %s + weights %s + grads %s + momentum %s + input %s\n",
           o->batch, bytes_str(p.train_peak, a, sizeof a), bytes_str(p.arena, b, sizeof b),
           bytes_str(p.eager_act, c, sizeof c), bytes_str(p.scratch, d, sizeof d), bytes_str(p.model, e, sizeof e),
           bytes_str(p.grads, f, sizeof f), bytes_str(p.momentum, g, sizeof g), bytes_str(p.input, d, sizeof d));
    printf("planned evaluation peak at batch %d: %s = arena %s (unplanned %s) + scratch %s + weights %s + input %s\n",
           o->batch, bytes_str(p.eval_peak, a, sizeof a), bytes_str(p.eval_arena, b, sizeof b),
           bytes_str(p.eval_eager_act, c, sizeof c), bytes_str(p.eval_scratch, d, sizeof d),
           bytes_str(p.model, e, sizeof e), bytes_str(p.eval_input, f, sizeof f));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_time(bg_ctx *ctx, bg_model *m, const opts *o)
{
    int c = o->c > 0 ? o->c : m->in_c, h = o->h > 0 ? o->h : m->in_h, w = o->w > 0 ? o->w : m->in_w;
    bg_graph *g = bg_graph_new(ctx, BG_CPU, true);
    if (!g) goto fail;
    int64_t xs[4] = {o->batch, h, w, c}, ys[1] = {o->batch};
    bg_tensor *x = bg_graph_tensor(g, BG_F32, 4, xs, "input"), *y = bg_graph_tensor(g, BG_I32, 1, ys, "labels");
    if (!x || !y || bg_tensor_fill_normal(ctx, x, 0, 1)) goto fail;
    for (int i = 0; i < o->batch; i++) ((int32_t *)y->data)[i] = i % m->n_classes;
    double t0 = bg_monotonic_s();
    bg_tensor *loss = bg_softmax_xent(g, bg_model_forward(g, m, x), y, 0.0f);
    if (!loss || bg_graph_backward(g, loss)) goto fail;
    double first = bg_monotonic_s() - t0;
    double *t = calloc((size_t)o->steps, sizeof *t);
    if (!t) goto fail;
    for (int i = 0; i < o->steps; i++) {
        double a = bg_monotonic_s();
        if (bg_graph_forward(g) || bg_graph_backward(g, loss)) {
            free(t);
            goto fail;
        }
        t[i] = bg_monotonic_s() - a;
    }
    qsort(t, (size_t)o->steps, sizeof *t, cmp_double);
    printf("%s  input %dx%dx%d, batch %d, CPU f32: forward+backward median %.3f s (min %.3f, max %.3f, %d steps; "
           "recording step %.3f s), %.1f img/s\n",
           m->spec, c, h, w, o->batch, t[o->steps / 2], t[0], t[o->steps - 1], o->steps, first,
           o->batch / t[o->steps / 2]);
    free(t);
    bg_graph_free(g);
    return 0;
fail:
    fprintf(stderr, "budgie model time: %s\n", bg_errmsg(ctx));
    bg_graph_free(g);
    return 1;
}

static int cmd_save(bg_ctx *ctx, bg_model *m, const char *out, const opts *o)
{
    if (o->weights && bg_model_load(ctx, m, o->weights)) {
        fprintf(stderr, "budgie model save: %s\n", bg_errmsg(ctx));
        return 1;
    }
    if (bg_model_save(ctx, m, out)) {
        fprintf(stderr, "budgie model save: %s\n", bg_errmsg(ctx));
        return 1;
    }
    printf("wrote %s (%s, %d tensors)\n", out, m->spec, m->n_sd);
    return 0;
}

int bg_cmd_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "list")) {
        for (int i = 0; i < bg_model_family_count(); i++)
            printf("%-20s %s\n", bg_model_family_name(i), bg_model_family_help(i));
        return 0;
    }
    bool is_save = !strcmp(sub, "save");
    if (strcmp(sub, "summary") && strcmp(sub, "time") && !is_save) {
        fprintf(stderr, "budgie model: unknown sub-command '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc < (is_save ? 4 : 3)) {
        fprintf(stderr, "budgie model %s: missing %s\n", sub, argc < 3 ? "SPEC" : "OUT.safetensors");
        return 2;
    }
    opts o = {.batch = !strcmp(sub, "time") ? 8 : 1, .steps = 3};
    int rc = parse_opts(argc, argv, is_save ? 4 : 3, &o);
    if (rc) return rc;
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, o.seed);
    bg_model *m = NULL;
    /* a summary reads shapes only: skip drawing the weights */
    unsigned flags = !strcmp(sub, "summary") ? BG_MODEL_NO_INIT : 0;
    if (bg_model_new_ex(&ctx, BG_CPU, argv[2], flags, &m)) {
        fprintf(stderr, "budgie model %s: %s\n", sub, bg_errmsg(&ctx));
        bg_ctx_free(&ctx);
        return 2;
    }
    if (!strcmp(sub, "summary")) rc = cmd_summary(&ctx, m, &o);
    else if (!strcmp(sub, "time")) rc = cmd_time(&ctx, m, &o);
    else rc = cmd_save(&ctx, m, argv[3], &o);
    bg_model_free(&ctx, m);
    bg_ctx_free(&ctx);
    return rc;
}
