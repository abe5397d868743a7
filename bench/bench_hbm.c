/* `budgie bench hbm`: the card's measured device-memory bandwidth (a plain
 * copy kernel, bytes read + written), the yardstick of the other GPU cases;
 * and the helpers they share (bench/bench_gpu.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "bench_gpu.h"
#include "../tools/options.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#include "../kernels/shape.h"
#endif

bool bg_bench_no_gpu(FILE *out)
{
    if (bg_cuda_available()) return false;
    fprintf(out, "skipped: no CUDA device\n");
    return true;
}

#ifdef BG_WITH_CUDA
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
#endif

double bg_bench_time(bg_ctx *ctx, FILE *out, int (*fn)(bg_ctx *ctx, void *arg), void *arg, int warmup, int groups,
                     int per_group)
{
#ifdef BG_WITH_CUDA
    char err[200];
    for (int i = 0; i < warmup; i++)
        if (fn(ctx, arg)) {
            fprintf(out, "error: %s\n", bg_errmsg(ctx));
            return NAN;
        }
    if (bg_cuda_sync(ctx->stream, err, sizeof err)) {
        fprintf(out, "error: %s\n", err);
        return NAN;
    }
    double *t = malloc((size_t)groups * sizeof *t);
    if (!t) return NAN;
    for (int g = 0; g < groups; g++) {
        double t0 = bg_monotonic_s();
        for (int i = 0; i < per_group; i++)
            if (fn(ctx, arg)) {
                fprintf(out, "error: %s\n", bg_errmsg(ctx));
                free(t);
                return NAN;
            }
        if (bg_cuda_sync(ctx->stream, err, sizeof err) || bg_cuda_check_launch(err, sizeof err)) {
            fprintf(out, "error: %s\n", err);
            free(t);
            return NAN;
        }
        t[g] = (bg_monotonic_s() - t0) / per_group;
    }
    qsort(t, (size_t)groups, sizeof *t, cmp_double);
    double med = t[groups / 2];
    free(t);
    return med;
#else
    (void)ctx, (void)out, (void)fn, (void)arg, (void)warmup, (void)groups, (void)per_group;
    return NAN;
#endif
}

bg_tensor *bg_bench_tensor(bg_ctx *ctx, bg_dtype dt, int ndim, const int64_t *shape, const char *name, double lo,
                           double hi)
{
    bg_tensor *t = bg_tensor_new(ctx, BG_CUDA, dt, ndim, shape, name);
    if (!t) return NULL;
    bg_status s = lo < hi ? bg_tensor_fill_uniform(ctx, t, lo, hi) : bg_tensor_fill_normal(ctx, t, 0, 1);
    if (s) {
        bg_tensor_free(ctx, t);
        return NULL;
    }
    return t;
}

#ifdef BG_WITH_CUDA
typedef struct {
    void *dst;
    const void *src;
    size_t bytes;
} copy_arg;

static int run_copy(bg_ctx *ctx, void *arg)
{
    copy_arg *a = arg;
    bg_cuda_copy16(a->dst, a->src, a->bytes, ctx->stream);
    return 0;
}
#endif

double bg_bench_hbm_gbps(bg_ctx *ctx, FILE *out)
{
#ifdef BG_WITH_CUDA
    int64_t n = (int64_t)1 << 27; /* 512 MiB of f32 each way: far past any L2 */
    bg_tensor *src = bg_bench_tensor(ctx, BG_F32, 1, &n, "hbm.src", 0, 0);
    bg_tensor *dst = bg_tensor_new(ctx, BG_CUDA, BG_F32, 1, &n, "hbm.dst");
    double gbps = NAN;
    if (src && dst) {
        copy_arg a = {dst->data, src->data, bg_nbytes(src)};
        double s = bg_bench_time(ctx, out, run_copy, &a, 3, 20, 5);
        gbps = 2.0 * (double)a.bytes / s / 1e9;
    } else {
        fprintf(out, "error: %s\n", bg_errmsg(ctx));
    }
    bg_tensor_free(ctx, src);
    bg_tensor_free(ctx, dst);
    return gbps;
#else
    (void)ctx, (void)out;
    return NAN;
#endif
}

void bg_bench_torch_ms(FILE *out, const char *args, const char *const *names, double *ms, int n)
{
    for (int i = 0; i < n; i++) ms[i] = NAN;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 bench/torch_ops_peer.py %s --json 2>&1", args);
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(out, "torch: could not start python3\n");
        return;
    }
    char line[2048];
    while (fgets(line, sizeof line, p)) {
        json_error_t e;
        json_t *j = line[0] == '{' ? json_loads(line, 0, &e) : NULL;
        if (!j) {
            fprintf(out, "torch: %s", line);
            continue;
        }
        const char *nm = json_string_value(json_object_get(j, "name"));
        for (int i = 0; nm && i < n; i++)
            if (!strcmp(nm, names[i])) ms[i] = json_number_value(json_object_get(j, "ms"));
        json_decref(j);
    }
    pclose(p);
}

void bg_bench_header(FILE *out, double hbm)
{
    fprintf(out, "measured HBM copy bandwidth: %.0f GB/s\n", hbm);
    fprintf(out, "%-28s %10s %10s %9s %7s %10s %7s\n", "kernel", "ms", "MB (min)", "GB/s", "% HBM", "torch ms",
            "vs torch");
}

void bg_bench_row(FILE *out, const char *name, double sec, double bytes, double hbm, double torch_ms)
{
    double gbps = bytes / sec / 1e9;
    fprintf(out, "%-28s %10.4f %10.1f %9.0f %6.1f%%", name, sec * 1e3, bytes / 1e6, gbps, 100.0 * gbps / hbm);
    if (isnan(torch_ms)) fprintf(out, " %10s %7s\n", "-", "-");
    else fprintf(out, " %10.4f %6.2fx\n", torch_ms, torch_ms / (sec * 1e3));
}

int bg_bench_parse(int argc, char **argv, const bg_bench_opt *opts, int n, FILE *out, const char *usage)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fprintf(out, "%s\noptions:\n", usage);
            for (int k = 0; k < n; k++) fprintf(out, "  --%-12s %s\n", opts[k].key, opts[k].help);
            return 1;
        }
    /* the command line's parser (tools/options.h), from this table */
    bg_opt *t = calloc((size_t)n + 1, sizeof *t);
    if (!t) return 2;
    for (int k = 0; k < n; k++) {
        t[k].name = opts[k].key;
        t[k].dst = opts[k].dst;
        t[k].min = -9.007199254740992e15, t[k].max = 9.007199254740992e15;
        t[k].type = opts[k].kind == 'i' ? BG_OPT_INT : opts[k].kind == 'd' ? BG_OPT_NUM
                    : opts[k].kind == 'b' ? BG_OPT_FLAG : BG_OPT_STR;
    }
    const int rc = bg_opts_parse("bench", t, n, argc, argv, NULL, 0, NULL);
    free(t);
    return rc;
}

BG_BENCH(hbm, "device memory bandwidth: a copy kernel over 2 x 512 MiB (the yardstick of the GPU cases)")
{
    int r = bg_bench_parse(argc, argv, NULL, 0, out, "usage: budgie bench hbm");
    if (r) return r == 1 ? 0 : 2;
    if (bg_bench_no_gpu(out)) return 0;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CUDA, 1)) {
        fprintf(out, "skipped: %s\n", bg_errmsg(&ctx));
        return 0;
    }
    double gbps = bg_bench_hbm_gbps(&ctx, out);
    fprintf(out, "copy kernel, 2 x 512 MiB: %.0f GB/s (read + write)\n", gbps);
    const char *names[1] = {"copy"};
    double torch_ms;
    bg_bench_torch_ms(out, "hbm", names, &torch_ms, 1);
    if (!isnan(torch_ms))
        fprintf(out, "torch copy_ of the same bytes: %.0f GB/s\n", 2.0 * 536870912.0 / (torch_ms * 1e-3) / 1e9);
    bg_alloc_trim(&ctx, BG_CUDA);
    bg_ctx_free(&ctx);
    return isnan(gbps) ? 1 : 0;
}
