/* The `budgie bench` verb: a registry of cases and `all`. */
#include "bench.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../tools/verbs.h"

typedef struct { const char *name, *help; bg_bench_fn fn; } bench_case;

/* Filled by constructors before main(); read-only afterwards. */
static struct { bench_case *v; int n, cap; } cases;

void bg_bench_register(const char *name, const char *help, bg_bench_fn fn)
{
    if (cases.n == cases.cap) {
        cases.cap = cases.cap ? 2 * cases.cap : 16;
        bench_case *p = realloc(cases.v, (size_t)cases.cap * sizeof *p);
        if (!p) { fprintf(stderr, "bench registry: out of memory\n"); abort(); }
        cases.v = p;
    }
    cases.v[cases.n++] = (bench_case){name, help, fn};
}

const char *bg_bench_peer_path(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "bench/%s", name);
    if (access(buf, R_OK) == 0) return buf;
    char exe[900];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(buf, n, "%s/../bench/%s", exe, name);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

int bg_bench_torch_cuda(void)
{
    return system("python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 3)' >/dev/null 2>&1") == 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: budgie bench CASE [options] | all   (budgie bench CASE --help for options)\n\ncases:\n");
    for (int i = 0; i < cases.n; i++) fprintf(f, "  %-12s %s\n", cases.v[i].name, cases.v[i].help);
}

int bg_cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "all")) {
        int rc = 0;
        for (int i = 0; i < cases.n; i++) {
            printf("== bench %s\n", cases.v[i].name);
            char *av[] = {(char *)cases.v[i].name, NULL};
            int r = cases.v[i].fn(1, av, stdout);
            if (r) rc = r;
        }
        return rc;
    }
    for (int i = 0; i < cases.n; i++)
        if (!strcmp(argv[1], cases.v[i].name)) return cases.v[i].fn(argc - 1, argv + 1, stdout);
    fprintf(stderr, "budgie bench: unknown case '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

void bg_bench_fill_batch(float *x, size_t n_x, int32_t *y, int64_t batch, int classes)
{
    uint64_t st = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < n_x; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        x[i] = (float)((double)(st >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    for (int64_t i = 0; i < batch; i++) y[i] = (int32_t)(i % classes);
}
