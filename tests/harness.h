/* The test harness: one runner (tests/runner.c) for every suite.
 * - BG_TEST(name) { ... } registers a test function (constructor-based); inside,
 *   `tc` is the running test (CHECK* and SKIP use it);
 *   CHECK* record failures with file:line, SKIP marks the test skipped with a reason.
 * - BG_OP_CASES(array) registers op cases in the style of ggml's
 *   test-backend-ops: each case declares an op, input shapes and parameters,
 *   and the runner derives the checks: finite-difference gradients in double
 *   on the CPU reference, the f32 CPU path against the f64 one, and every other
 *   available backend against the CPU (f32 and f16) with per-case limits.
 * The run ends with "N passed, N failed, N skipped". */
#ifndef BG_HARNESS_H
#define BG_HARNESS_H
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include "../engine/graph.h"

typedef struct bg_t {
    const char *name;
    int failures;
    bool skipped;
    char skip_reason[256];
    bool gpu_only;        /* the GPU suite (make test-gpu) */
} bg_t;

typedef void (*bg_test_fn)(bg_t *t);
void bg_test_register(const char *name, const char *file, bg_test_fn fn, bool gpu);
void bg_test_fail(bg_t *t, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void bg_test_skip(bg_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define BG_TEST_(fn, gpu)                                                           \
    static void fn(bg_t *tc);                                                        \
    __attribute__((constructor)) static void bg_reg_##fn(void) { bg_test_register(#fn, __FILE__, fn, gpu); } \
    static void fn(bg_t *tc)
#define BG_TEST(fn) BG_TEST_(fn, false)
#define BG_GPU_TEST(fn) BG_TEST_(fn, true)

#define CHECK(cond, ...)                                                            \
    do { if (!(cond)) bg_test_fail(tc, __FILE__, __LINE__, __VA_ARGS__); } while (0)
/* |a-b| <= tol*max(1,|b|); NaN never passes. */
#define CHECK_NEAR(a, b, tol, what)                                                 \
    do { double a_ = (a), b_ = (b);                                                 \
         if (!(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_))))                       \
             bg_test_fail(tc, __FILE__, __LINE__, "%s: got %.9g, want %.9g (tol %g)", what, a_, b_, (double)(tol)); \
    } while (0)
/* A library call must succeed; prints the context's message otherwise. */
#define CHECK_OK(ctx, expr)                                                         \
    do { bg_status s_ = (expr);                                                     \
         if (s_ != BG_OK) bg_test_fail(tc, __FILE__, __LINE__, "%s -> %s: %s", #expr, bg_status_name(s_), bg_errmsg(ctx)); \
    } while (0)
/* A library call must fail with `code` and a message containing `needle`. */
#define CHECK_ERR(ctx, expr, code, needle)                                          \
    do { bg_clear_error(ctx); bg_status s_ = (expr);                                \
         if (s_ != (code)) bg_test_fail(tc, __FILE__, __LINE__, "%s: got %s (%s), want %s", #expr, bg_status_name(s_), bg_errmsg(ctx), bg_status_name(code)); \
         else if (!strstr(bg_errmsg(ctx), (needle))) bg_test_fail(tc, __FILE__, __LINE__, "%s: message '%s' lacks '%s'", #expr, bg_errmsg(ctx), needle); \
    } while (0)
#define SKIP(...) do { bg_test_skip(tc, __VA_ARGS__); return; } while (0)

/* ---- op cases ---- */
typedef enum {
    BG_INIT_NORMAL = 0,  /* N(0,1) */
    BG_INIT_POSITIVE,    /* U(0.5, 1.5): variances, scales */
    BG_INIT_LABELS,      /* i32 in [0, label_range) */
    BG_INIT_SPREAD       /* distinct values with gaps >= 1e-2 (max-pool ties) */
} bg_init_kind;

typedef struct {
    const char *op;          /* table name */
    const char *params;      /* "stride=2 padding=1 groups=4" (bg_op_set_param syntax) */
    int n_in;
    int ndim[BG_MAX_IN];     /* 0 = absent optional input */
    int64_t shape[BG_MAX_IN][BG_MAX_DIMS];
    bg_init_kind init[BG_MAX_IN];
    int label_range;
    bool train;              /* node training mode */
    double tol_f32;          /* backend parity, normalised MSE; 0 -> 1e-10 */
    double tol_f16;          /* 0 -> 1e-5 */
    double tol_grad;         /* FD gradcheck relative error; 0 -> 1e-6 */
    bool no_gradcheck;       /* too big for finite differences: the runner makes no gradcheck test */
} bg_op_case;

void bg_op_cases_register(const bg_op_case *cases, int n, const char *file);
#define BG_OP_CASES(arr)                                                            \
    __attribute__((constructor)) static void bg_reg_cases_##arr(void) {            \
        bg_op_cases_register(arr, (int)(sizeof(arr) / sizeof(arr[0])), __FILE__); }

/* Shared by tests: a CPU context with a fixed seed. */
void bg_test_ctx(bg_ctx *ctx, uint64_t seed);
/* Normalised MSE sum((a-b)^2)/sum(b^2) over CPU tensors (any float dtype); NaN -> INFINITY. */
double bg_nmse(const bg_tensor *a, const bg_tensor *b);
/* BG_TEST_SIZE=small (the emulated CUDA suite in CI, make test-emu): tests
 * with a big shape use a smaller one of the same awkwardness instead (the
 * full shapes: make test-gpu, make test-emu-full). */
bool bg_test_small(void);
/* Path of the repo's test fixtures folder (tests/fixtures) and the data cache. */
const char *bg_test_fixtures_dir(void);

#endif
