/* `budgie bench cpu-step`: images/s and peak memory of a whole CPU training
 * step (forward, loss, backward, SGD momentum update, loss read-back) of a
 * zoo model on random data, through the trainer that `budgie train` uses.
 * Threads: OMP_NUM_THREADS; kernels: BUDGIE_CPU / BUDGIE_CPU_ISA. One
 * machine-readable line, so bench/cpu_step.sh can interleave it with
 * PyTorch's step (bench/torch_cpu_step.py) in separate processes: each
 * process's peak resident memory is then its own. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "bench.h"
#include "bench_gpu.h"
#include "../models/model.h"
#include "../train/trainer.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static double max_rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0.0 : (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

BG_BENCH(cpu_step, "images/s and peak memory of a CPU training step (bench/cpu_step.sh compares it with PyTorch)")
{
    const char *model = "senet18:w=0.67";
    int64_t batch = 64, steps = 5, warmup = 2;
    const bg_bench_opt opts[] = {
        {"model", 's', &model, "model spec string (senet18:w=0.67); see budgie model --help"},
        {"batch", 'i', &batch, "batch size (64)"},
        {"steps", 'i', &steps, "timed steps (5)"},
        {"warmup", 'i', &warmup, "untimed steps first (2; the first one records the graph)"},
    };
    int r = bg_bench_parse(argc, argv, opts, 4, out, "usage: budgie bench cpu-step [options]");
    if (r) return r == 1 ? 0 : 2;
    if (batch < 1 || steps < 1 || warmup < 1) {
        fprintf(out, "error: --batch, --steps and --warmup must be at least 1\n");
        return 2;
    }
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 3)) {
        fprintf(out, "error: %s\n", bg_errmsg(&ctx));
        return 2;
    }
    int rc = 1;
    bg_model *m = NULL;
    float *x = NULL;
    int32_t *y = NULL;
    bg_trainer tr = {0};
    const double rss0 = max_rss_mib();
    if (bg_model_new(&ctx, BG_CPU, model, &m)) {
        fprintf(out, "error: %s\n", bg_errmsg(&ctx));
        goto out;
    }
    const size_t img = (size_t)m->in_h * m->in_w * m->in_c;
    x = malloc((size_t)batch * img * sizeof *x);
    y = malloc((size_t)batch * sizeof *y);
    if (!x || !y) goto out;
    bg_bench_fill_batch(x, (size_t)batch * img, y, batch, m->n_classes);
    bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
    oc.lr = 0.01, oc.momentum = 0.9, oc.weight_decay = 5e-4;
    double loss = 0;
    bg_status s = bg_trainer_init(&tr, &ctx, BG_CPU, bg_model_forward, m, (int)batch, 1, m->in_h, m->in_w, m->in_c,
                                  &oc, 0.0f);
    for (int64_t i = 0; i < warmup && !s; i++) s = bg_trainer_step(&tr, x, y, 0.01, &loss);
    const double t0 = bg_monotonic_s();
    for (int64_t i = 0; i < steps && !s; i++) s = bg_trainer_step(&tr, x, y, 0.01, &loss);
    const double dt = bg_monotonic_s() - t0;
    if (s) {
        fprintf(out, "error: %s\n", bg_errmsg(&ctx));
        goto out;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    fprintf(out, "budgie model=%s batch=%lld threads=%d kernels=%s/%s steps=%lld img_s=%.2f ms_step=%.1f "
                 "peak_rss_mib=%.0f base_rss_mib=%.0f alloc_peak_mib=%.0f loss=%.4f\n",
            m->spec, (long long)batch, threads, bg_cpu_backend_name(ctx.cpu_backend), bg_cpu_isa_name(ctx.cpu_isa),
            (long long)steps, (double)batch * (double)steps / dt, dt * 1e3 / (double)steps, max_rss_mib(), rss0,
            (double)ctx.alloc[BG_CPU].peak / 1048576.0, loss);
    rc = 0;
out:
    bg_trainer_free(&tr);
    free(x);
    free(y);
    bg_model_free(&ctx, m);
    bg_ctx_free(&ctx);
    return rc;
}
