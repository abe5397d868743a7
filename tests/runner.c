/* The test runner: every registered BG_TEST and every op case, one line of
 * summary at the end ("N passed, N failed, N skipped").
 *   run [--gpu] [-v] [--list] [--progress] [--exclude PATTERN]... [FILTER...]
 * Without --gpu: the CPU suite (unit tests, op gradchecks, f32-vs-f64).
 * With --gpu: the CUDA suite (GPU tests, every op case against the CPU);
 * without a CUDA device every GPU check is reported as skipped, with why.
 * On a terminal a line marks each group (source file) as it starts. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "op_checks.h"
#include "../engine/clock.h"

typedef struct {
    const char *name, *file;
    bg_test_fn fn;
    bool gpu;
} test_entry;

typedef struct {
    test_entry *tests;
    int n, cap;
    case_entry *cases;
    int n_cases, cap_cases;
} registry;

/* Filled by constructors before main() runs; read-only afterwards. */
static registry reg;

static void *grow(void *p, int *cap, int n, size_t elem)
{
    if (n < *cap) return p;
    *cap = *cap ? 2 * *cap : 64;
    p = realloc(p, (size_t)*cap * elem);
    if (!p) { fprintf(stderr, "test registry: out of memory\n"); abort(); }
    return p;
}

void bg_test_register(const char *name, const char *file, bg_test_fn fn, bool gpu)
{
    reg.tests = grow(reg.tests, &reg.cap, reg.n, sizeof *reg.tests);
    reg.tests[reg.n++] = (test_entry){name, file, fn, gpu};
}

void bg_op_cases_register(const bg_op_case *cases, int n, const char *file)
{
    for (int i = 0; i < n; i++) {
        reg.cases = grow(reg.cases, &reg.cap_cases, reg.n_cases, sizeof *reg.cases);
        reg.cases[reg.n_cases++] = (case_entry){&cases[i], file, i};
    }
}

void bg_test_fail(bg_t *t, const char *file, int line, const char *fmt, ...)
{
    if (t->failures++ >= 8) return; /* enough to diagnose; keep logs short */
    fprintf(stdout, "    %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

bool bg_test_small(void)
{
    const char *e = getenv("BG_TEST_SIZE");
    return e && !strcmp(e, "small");
}

void bg_test_skip(bg_t *t, const char *fmt, ...)
{
    t->skipped = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->skip_reason, sizeof t->skip_reason, fmt, ap);
    va_end(ap);
}

/* Filters are substrings; a name matches when it contains one of them (or
 * there are none) and contains none of the exclusions. */
static bool matches(const char *name, int nf, char **filters, int nx, char **excl)
{
    for (int i = 0; i < nx; i++)
        if (strstr(name, excl[i])) return false;
    if (nf == 0) return true;
    for (int i = 0; i < nf; i++)
        if (strstr(name, filters[i])) return true;
    return false;
}

typedef struct { int passed, failed, skipped; bool verbose; } tally;

static void report(tally *ty, const char *name, const bg_t *t, double secs)
{
    if (t->skipped && t->failures == 0) {
        ty->skipped++;
        printf("SKIP %s: %s\n", name, t->skip_reason);
    } else if (t->failures) {
        ty->failed++;
        printf("FAIL %s (%d failed checks)\n", name, t->failures);
    } else {
        ty->passed++;
        if (ty->verbose) printf("ok   %s (%.3f s)\n", name, secs);
    }
    fflush(stdout);
}

/* cpu-fast: the fast CPU backend against the reference, at every
 * instruction set this CPU runs; only for ops that have fast kernels. */
static const char *const KINDS_CPU[] = {"gradcheck", "f32-vs-f64", "cpu-fast"}, *const KINDS_GPU[] = {"cuda-f32", "cuda-f16"};
#define N_KINDS_CPU 3
#define N_KINDS_GPU 2

/* Whether the runner derives this check from the case at all (not a skip:
 * a check that does not apply is not listed). */
static bool case_has_kind(const case_entry *e, const char *kind)
{
    if (!strcmp(kind, "gradcheck")) return !e->c->no_gradcheck; /* big cases opt out */
    if (!strcmp(kind, "cpu-fast")) {
        const bg_op *op = bg_op_find(e->c->op);
        return op && (op->fast_fwd || op->fast_bwd);
    }
    return true;
}

/* How many tests and op checks the arguments select. */
static int count_selected(bool gpu, int nf, char **filters, int nx, char **excl)
{
    int n = 0;
    for (int i = 0; i < reg.n; i++)
        n += reg.tests[i].gpu == gpu && matches(reg.tests[i].name, nf, filters, nx, excl);
    for (int i = 0; i < reg.n_cases; i++)
        for (int k = 0; k < (gpu ? N_KINDS_GPU : N_KINDS_CPU); k++) {
            char name[320];
            const char *kind = gpu ? KINDS_GPU[k] : KINDS_CPU[k];
            if (!case_has_kind(&reg.cases[i], kind)) continue;
            op_case_name(&reg.cases[i], kind, name, sizeof name);
            n += matches(name, nf, filters, nx, excl);
        }
    return n;
}

static void progress_line(const char **group, const char *file, int done, int total, double t_start)
{
    if (*group && !strcmp(*group, file)) return;
    *group = file;
    printf("[%4d/%d, %5.1f s] %s\n", done, total, bg_monotonic_s() - t_start, file);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    bool gpu = false, list = false, force_progress = false;
    tally ty = {0};
    char **filters = calloc((size_t)argc, sizeof *filters), **excl = calloc((size_t)argc, sizeof *excl);
    int nf = 0, nx = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gpu")) gpu = true;
        else if (!strcmp(argv[i], "-v")) ty.verbose = true, setenv("BG_TEST_VERBOSE", "1", 1); /* tests that print numbers read it */
        else if (!strcmp(argv[i], "--list")) list = true;
        else if (!strcmp(argv[i], "--progress")) force_progress = true;
        else if (!strcmp(argv[i], "--exclude")) {
            if (i + 1 == argc) {
                fprintf(stderr, "%s: --exclude needs a PATTERN\n", argv[0]);
                free(filters), free(excl);
                return 2;
            }
            excl[nx++] = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s [--gpu] [-v] [--list] [--progress] [--exclude PATTERN]... [FILTER...]\n"
                   "  runs the tests whose name contains any FILTER (all when none)\n"
                   "  and no --exclude PATTERN (excluded tests are not run nor counted);\n"
                   "  --gpu runs the CUDA suite instead of the CPU one;\n"
                   "  --progress prints a line as each group starts even when not on a terminal\n", argv[0]);
            free(filters), free(excl);
            return 0;
        } else filters[nf++] = argv[i];
    }
    /* On a terminal, a line as each group (source file) starts, so a long
     * run is never silent; logs (not a terminal) keep only the results. */
    const bool progress = !list && (force_progress || (!ty.verbose && isatty(STDOUT_FILENO)));
    int total = 0, done = 0;
    const char *group = NULL;
    if (progress) total = count_selected(gpu, nf, filters, nx, excl);
    {   /* BUDGIE_CPU / BUDGIE_CPU_ISA apply to every context the tests make:
         * a value this machine cannot honour stops the run here, loudly */
        bg_ctx probe;
        if (bg_ctx_init(&probe, BG_CPU, 0)) {
            fprintf(stderr, "%s: %s\n", argv[0], bg_errmsg(&probe));
            free(filters), free(excl);
            return 2;
        }
        if (!list)
            printf("CPU backend: %s (%s)\n", bg_cpu_backend_name(probe.cpu_backend), bg_cpu_isa_name(probe.cpu_isa));
        bg_ctx_free(&probe);
    }
    int cuda = bg_cuda_available();
    if (gpu) printf("CUDA suite: %s\n", cuda ? "device found" : "SKIPPED, no CUDA device (or a CPU-only build); every GPU check below is counted as skipped");
    double t_start = bg_monotonic_s();

    for (int i = 0; i < reg.n; i++) {
        test_entry *e = &reg.tests[i];
        if (e->gpu != gpu || !matches(e->name, nf, filters, nx, excl)) continue;
        if (list) { printf("%s\n", e->name); continue; }
        if (progress) progress_line(&group, e->file, done++, total, t_start);
        bg_t t = {.name = e->name, .gpu_only = e->gpu};
        double t0 = bg_monotonic_s();
        if (e->gpu && !cuda) bg_test_skip(&t, "no CUDA device");
        else e->fn(&t);
        report(&ty, e->name, &t, bg_monotonic_s() - t0);
    }

    /* Op cases: each yields named checks (gradcheck, f32-vs-f64, cpu-fast on the CPU;
     * cuda-f32, cuda-f16 on the GPU). */
    for (int i = 0; i < reg.n_cases; i++) {
        const char *const *kinds = gpu ? KINDS_GPU : KINDS_CPU;
        for (int k = 0; k < (gpu ? N_KINDS_GPU : N_KINDS_CPU); k++) {
            char name[320];
            if (!case_has_kind(&reg.cases[i], kinds[k])) continue;
            op_case_name(&reg.cases[i], kinds[k], name, sizeof name);
            if (!matches(name, nf, filters, nx, excl)) continue;
            if (list) { printf("%s\n", name); continue; }
            if (progress) progress_line(&group, reg.cases[i].file, done++, total, t_start);
            bg_t t = {.name = name, .gpu_only = gpu};
            double t0 = bg_monotonic_s();
            if (gpu && !cuda) bg_test_skip(&t, "no CUDA device");
            else op_case_run(&t, &reg.cases[i], kinds[k]);
            report(&ty, name, &t, bg_monotonic_s() - t0);
        }
    }
    free(filters), free(excl);
    if (list) return 0;
    printf("(%.1f s)\n%d passed, %d failed, %d skipped\n", bg_monotonic_s() - t_start, ty.passed, ty.failed, ty.skipped);
    fflush(stdout); /* before any at-exit checker (LeakSanitizer) may end the process */
    return ty.failed ? 1 : 0;
}
