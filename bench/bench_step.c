/* `budgie bench step`: images/s of a whole training step (upload, forward,
 * loss, backward, SGD update, loss download) of a zoo model given as a spec
 * string (models/model.h), with the step captured into a CUDA graph and
 * without (eager launches), f32 or mixed precision, on random data; and
 * PyTorch's step on the same model in the same run (bench/torch_ops_peer.py,
 * which takes SENet-18 from the shared HAET peer and ResNeSt from timm).
 * The graph/eager gap is the launch overhead the graph removes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "bench_gpu.h"
#include "../train/step_cuda.h"
#include "../models/model.h"

typedef struct {
    const char *model;
    int64_t batch, steps;
    bool amp, no_torch;
} step_opts;

/* ms per step of `steps` steps after 3 warm-up steps; NaN on error. */
static double time_steps(bg_ctx *ctx, bg_model *m, const step_opts *o, bool graph, const float *x, const int32_t *y,
                         FILE *out, bg_trainer_cuda_status *st)
{
    bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
    oc.lr = 0.01, oc.momentum = 0.9, oc.weight_decay = 5e-4;
    bg_trainer tr;
    double ms = NAN, loss = 0;
    if (bg_trainer_init(&tr, ctx, BG_CUDA, bg_model_forward, m, (int)o->batch, (int)o->batch, m->in_h, m->in_w, m->in_c,
                        &oc, 0.0f)) {
        fprintf(out, "error: %s\n", bg_errmsg(ctx));
        return NAN;
    }
    bg_trainer_cuda_opts co = bg_trainer_cuda_defaults();
    co.graph = graph;
    co.amp = o->amp;
    bg_status s = bg_trainer_set_cuda(&tr, &co);
    for (int i = 0; i < 3 && !s; i++) s = bg_trainer_step(&tr, x, y, 0.01, &loss);
    double t0 = bg_monotonic_s();
    for (int64_t i = 0; i < o->steps && !s; i++) s = bg_trainer_step(&tr, x, y, 0.01, &loss);
    if (s) fprintf(out, "error: %s\n", bg_errmsg(ctx));
    else ms = (bg_monotonic_s() - t0) * 1e3 / (double)o->steps; /* each step ends with a loss download: synchronised */
    bg_trainer_cuda_get_status(&tr, st);
    bg_trainer_free(&tr);
    return ms;
}

BG_BENCH(step, "images/s of a full training step of a zoo model, with and without the CUDA graph (CUDA)")
{
    step_opts o = {.model = "senet18:w=0.67", .batch = 512, .steps = 20};
    const bg_bench_opt opts[] = {
        {"model", 's', &o.model, "model spec string (senet18:w=0.67); see budgie model --help"},
        {"batch", 'i', &o.batch, "batch size (512)"},
        {"steps", 'i', &o.steps, "timed steps (20)"},
        {"amp", 'b', &o.amp, "mixed precision: f16 weights and activations, loss scaling"},
        {"no-torch", 'b', &o.no_torch, "skip the PyTorch comparison"},
    };
    int r = bg_bench_parse(argc, argv, opts, 5, out, "usage: budgie bench step [options]");
    if (r) return r == 1 ? 0 : 2;
    if (bg_bench_no_gpu(out)) return 0;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CUDA, 3)) {
        fprintf(out, "skipped: %s\n", bg_errmsg(&ctx));
        return 0;
    }
    int rc = 1;
    bg_model *m = NULL;
    float *x = NULL;
    int32_t *y = NULL;
    if (bg_model_new(&ctx, BG_CUDA, o.model, &m) || (o.amp && bg_model_to(&ctx, m, BG_CUDA, BG_F16))) {
        fprintf(out, "error: %s\n", bg_errmsg(&ctx));
        goto out;
    }
    size_t img = (size_t)m->in_h * m->in_w * m->in_c;
    x = malloc((size_t)o.batch * img * sizeof *x);
    y = malloc((size_t)o.batch * sizeof *y);
    if (!x || !y) goto out;
    bg_bench_fill_batch(x, (size_t)o.batch * img, y, o.batch, m->n_classes);
    bg_trainer_cuda_status sg, se;
    double g_ms = time_steps(&ctx, m, &o, true, x, y, out, &sg);
    double e_ms = time_steps(&ctx, m, &o, false, x, y, out, &se);
    char targs[256];
    snprintf(targs, sizeof targs, "step --model '%s' --batch %lld --size %d%s", o.model, (long long)o.batch, m->in_h,
             o.amp ? " --amp" : "");
    const char *names[1] = {"step"};
    double t_ms = NAN;
    if (!o.no_torch) bg_bench_torch_ms(out, targs, names, &t_ms, 1);
    fprintf(out, "%s, batch %lld, %dx%dx%d, %s, SGD momentum; peak %.2f GiB in use, %.2f GiB reserved\n", m->spec,
            (long long)o.batch, m->in_h, m->in_w, m->in_c, o.amp ? "mixed precision (f16, loss scale)" : "f32",
            (double)ctx.alloc[BG_CUDA].peak / 1073741824.0, (double)ctx.alloc[BG_CUDA].peak_reserved / 1073741824.0);
    fprintf(out, "%-34s %10s %10s\n", "variant", "ms/step", "images/s");
    fprintf(out, "%-34s %10.2f %10.0f\n", sg.graph_active ? "CUDA graph replay" : "CUDA graph (capture failed)", g_ms,
            (double)o.batch / g_ms * 1e3);
    if (sg.graph_active)
        fprintf(out, "  graph: %zu nodes, %.1f MB of workspaces pinned\n", sg.graph_nodes, sg.graph_pinned_bytes / 1e6);
    else fprintf(out, "  %s\n", sg.graph_note);
    fprintf(out, "%-34s %10.2f %10.0f\n", "eager launches", e_ms, (double)o.batch / e_ms * 1e3);
    if (!isnan(t_ms)) fprintf(out, "%-34s %10.2f %10.0f\n", "PyTorch (channels_last, eager)", t_ms, (double)o.batch / t_ms * 1e3);
    if (o.amp) fprintf(out, "loss scale %g, skipped steps %lld\n", sg.loss_scale, (long long)sg.skipped_steps);
    rc = isnan(g_ms) || isnan(e_ms);
out:
    free(x);
    free(y);
    bg_model_free(&ctx, m);
    bg_alloc_trim(&ctx, BG_CUDA);
    bg_ctx_free(&ctx);
    return rc;
}
