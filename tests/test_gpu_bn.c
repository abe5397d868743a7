/* GPU suite: batchnorm beyond the generic op cases.
 *  - the fused BN+ReLU launcher equals the op row followed by relu, bit for
 *    bit (relu commutes with rounding), forward and backward;
 *  - the running statistics follow the CPU reference (PyTorch's rule);
 *  - f16 activations with f32 parameters (the mixed-precision layout) agree
 *    with the f32 CPU reference within the f16 limit;
 *  - two runs give bit-identical outputs, gradients and running stats
 *    (deterministic reductions). */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../ops/ops.h"
#ifdef BG_WITH_CUDA /* the whole file: it calls the CUDA launchers */
#include "../kernels/batchnorm.h"

/* A device tensor (dtype dt) holding the values of host f64 tensor h. */
static bg_tensor *to_dev(bg_ctx *g, const bg_tensor *h, bg_dtype dt, const char *name)
{
    bg_ctx *c = g; /* host staging through the same context's CPU allocator */
    bg_tensor *s = bg_tensor_new(c, BG_CPU, dt, h->ndim, h->shape, name);
    bg_tensor *d = bg_tensor_new(g, BG_CUDA, dt, h->ndim, h->shape, name);
    if (s && d && (bg_tensor_convert(c, s, h) || bg_tensor_copy(g, d, s))) {
        bg_tensor_free(g, d);
        d = NULL;
    }
    bg_tensor_free(c, s);
    return d;
}

/* Any tensor as a host f64 copy. */
static bg_tensor *to_host64(bg_ctx *g, const bg_tensor *t)
{
    bg_tensor *s = bg_tensor_new(g, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
    bg_tensor *d = bg_tensor_new(g, BG_CPU, BG_F64, t->ndim, t->shape, t->name);
    if (s && d && (bg_tensor_copy(g, s, t) || bg_tensor_convert(g, d, s))) {
        bg_tensor_free(g, d);
        d = NULL;
    }
    bg_tensor_free(g, s);
    return d;
}

static bool bytes_equal(bg_ctx *g, const bg_tensor *a, const bg_tensor *b)
{
    size_t n = bg_nbytes(a);
    if (n != bg_nbytes(b)) return false;
    void *x = malloc(n), *y = malloc(n);
    bool ok = x && y && !bg_tensor_download(g, a, x, n) && !bg_tensor_download(g, b, y, n) && !memcmp(x, y, n);
    free(x);
    free(y);
    return ok;
}

typedef struct {
    bg_tensor *x, *gamma, *beta, *rm, *rv, *dy; /* host f64 */
} bn_inputs;

static void draw_inputs(bg_ctx *h, bn_inputs *in, int64_t n, int64_t hh, int64_t w, int64_t c)
{
    int64_t xs[4] = {n, hh, w, c};
    in->x = bg_tensor_new(h, BG_CPU, BG_F64, 4, xs, "x");
    in->dy = bg_tensor_new(h, BG_CPU, BG_F64, 4, xs, "dy");
    in->gamma = bg_tensor_new(h, BG_CPU, BG_F64, 1, &c, "gamma");
    in->beta = bg_tensor_new(h, BG_CPU, BG_F64, 1, &c, "beta");
    in->rm = bg_tensor_new(h, BG_CPU, BG_F64, 1, &c, "running_mean");
    in->rv = bg_tensor_new(h, BG_CPU, BG_F64, 1, &c, "running_var");
    bg_tensor_fill_normal(h, in->x, 0.5, 2.0); /* a mean away from 0: the shifted sums matter */
    bg_tensor_fill_normal(h, in->dy, 0, 1);
    bg_tensor_fill_uniform(h, in->gamma, 0.5, 1.5);
    bg_tensor_fill_normal(h, in->beta, 0, 1);
    bg_tensor_fill_normal(h, in->rm, 0, 1);
    bg_tensor_fill_uniform(h, in->rv, 0.5, 1.5);
}

static void free_inputs(bg_ctx *h, bn_inputs *in)
{
    bg_tensor *all[] = {in->x, in->gamma, in->beta, in->rm, in->rv, in->dy};
    for (int i = 0; i < 6; i++) bg_tensor_free(h, all[i]);
}

/* The op row (device dt, params pdt) forward + backward; results as device
 * tensors owned by the returned node (and the input tensors in `t`). */
typedef struct {
    bg_tensor *t[5]; /* x gamma beta rm rv on the device */
    bg_node bn, relu;
    bool with_relu;
} bn_run;

static bool run_op(bg_t *tc, bg_ctx *g, const bn_inputs *in, bg_dtype dt, bg_dtype pdt, bool train, bool relu,
                   bn_run *r)
{
    memset(r, 0, sizeof *r);
    r->with_relu = relu;
    const bg_tensor *src[5] = {in->x, in->gamma, in->beta, in->rm, in->rv};
    for (int i = 0; i < 5; i++) {
        r->t[i] = to_dev(g, src[i], i == 0 ? dt : pdt, src[i]->name);
        if (!r->t[i]) {
            CHECK(false, "upload: %s", bg_errmsg(g));
            return false;
        }
    }
    bg_batchnorm_params p = {.momentum = 0.1f, .eps = 1e-5f};
    CHECK_OK(g, bg_node_init(g, &r->bn, &bg_op_batchnorm2d, &p, r->t, 5, train));
    if (relu) CHECK_OK(g, bg_node_init(g, &r->relu, &bg_op_relu, NULL, &r->bn.out[0], 1, train));
    if (tc->failures) return false;
    CHECK_OK(g, bg_node_forward(g, &r->bn));
    if (relu) CHECK_OK(g, bg_node_forward(g, &r->relu));
    for (int i = 0; i < 3; i++) CHECK_OK(g, bg_tensor_ensure_grad(g, r->t[i]));
    CHECK_OK(g, bg_tensor_ensure_grad(g, r->bn.out[0]));
    bg_tensor *top = relu ? r->relu.out[0] : r->bn.out[0];
    if (relu) CHECK_OK(g, bg_tensor_ensure_grad(g, top));
    bg_tensor *dyd = to_dev(g, in->dy, dt, "dy");
    CHECK(dyd && !bg_tensor_copy(g, top->grad, dyd), "dy upload: %s", bg_errmsg(g));
    bg_tensor_free(g, dyd);
    if (relu) CHECK_OK(g, bg_node_backward(g, &r->relu));
    CHECK_OK(g, bg_node_backward(g, &r->bn));
    return tc->failures == 0;
}

static void free_run(bg_ctx *g, bn_run *r)
{
    if (r->with_relu) bg_node_release(g, &r->relu);
    bg_node_release(g, &r->bn);
    for (int i = 0; i < 5; i++) bg_tensor_free(g, r->t[i]);
}

/* The fused launcher on fresh copies of the same inputs; outputs compared
 * with run `ref` (op row + relu) byte for byte. */
static void check_fused(bg_t *tc, bg_ctx *g, const bn_inputs *in, bg_dtype dt, bool train)
{
    bn_run ref;
    if (!run_op(tc, g, in, dt, dt, train, true, &ref)) return;
    const bg_tensor *x = ref.t[0];
    int64_t c = x->shape[3], m = bg_numel(x) / c, wsn = bg_bn_workspace_floats(m, c);
    bg_tensor *t[5], *y = bg_tensor_like(g, x, "y"), *dx = bg_tensor_like(g, x, "dx");
    const bg_tensor *src[5] = {in->x, in->gamma, in->beta, in->rm, in->rv};
    for (int i = 0; i < 5; i++) t[i] = to_dev(g, src[i], dt, src[i]->name);
    bg_tensor *dg = bg_tensor_like(g, t[1], "dgamma"), *db = bg_tensor_like(g, t[2], "dbeta");
    bg_tensor *mean = bg_tensor_new(g, BG_CUDA, BG_F32, 1, &c, "mean"), *invstd = bg_tensor_new(g, BG_CUDA, BG_F32, 1, &c, "invstd");
    bg_tensor *ws = bg_tensor_new(g, BG_CUDA, BG_F32, 1, &wsn, "ws"), *dyd = to_dev(g, in->dy, dt, "dy");
    CHECK(y && dx && dg && db && mean && invstd && ws && dyd && t[4], "alloc: %s", bg_errmsg(g));
    if (tc->failures) goto out;
    CHECK_OK(g, bg_tensor_zero(g, dx));
    CHECK_OK(g, bg_tensor_zero(g, dg));
    CHECK_OK(g, bg_tensor_zero(g, db));
    int half = dt == BG_F16;
    bg_bn_fwd_args fa = {.x = t[0]->data, .y = y->data, .gamma = t[1]->data, .beta = t[2]->data,
                         .running_mean = t[3]->data, .running_var = t[4]->data, .mean = mean->data,
                         .invstd = invstd->data, .work = ws->data, .m = m, .c = c, .x_half = half, .p_half = half,
                         .train = train, .relu = 1, .momentum = 0.1f, .eps = 1e-5f};
    bg_cuda_bn_fwd(&fa, g->stream);
    bg_bn_bwd_args ba = {.x = t[0]->data, .y = y->data, .dy = dyd->data, .dx = dx->data, .gamma = t[1]->data,
                         .dgamma = dg->data, .dbeta = db->data, .mean = mean->data, .invstd = invstd->data,
                         .work = ws->data, .m = m, .c = c, .x_half = half, .p_half = half, .train = train, .relu = 1};
    bg_cuda_bn_bwd(&ba, g->stream);
    const char *dn = bg_dtype_name(dt);
    CHECK(bytes_equal(g, y, ref.relu.out[0]), "%s: fused y != bn + relu", dn);
    CHECK(bytes_equal(g, dx, ref.t[0]->grad), "%s: fused dx != bn + relu", dn);
    CHECK(bytes_equal(g, dg, ref.t[1]->grad), "%s: fused dgamma != bn + relu", dn);
    CHECK(bytes_equal(g, db, ref.t[2]->grad), "%s: fused dbeta != bn + relu", dn);
    CHECK(bytes_equal(g, t[3], ref.t[3]) && bytes_equal(g, t[4], ref.t[4]), "%s: running stats differ", dn);
out:
    for (int i = 0; i < 5; i++) bg_tensor_free(g, t[i]);
    bg_tensor *all[] = {y, dx, dg, db, mean, invstd, ws, dyd};
    for (int i = 0; i < 8; i++) bg_tensor_free(g, all[i]);
    free_run(g, &ref);
}

BG_GPU_TEST(gpu_bn_relu_fused_matches_ops)
{
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 21));
    if (tc->failures) return;
    bn_inputs in;
    const int64_t shapes[][4] = {{2, 37, 37, 43}, {8, 8, 8, 64}, {513, 1, 1, 86}};
    for (int k = 0; k < 3 && !tc->failures; k++) {
        draw_inputs(&g, &in, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3]);
        for (int train = 0; train < 2; train++) {
            check_fused(tc, &g, &in, BG_F32, train);
            check_fused(tc, &g, &in, BG_F16, train);
        }
        free_inputs(&g, &in);
    }
    bg_alloc_trim(&g, BG_CUDA);
    bg_ctx_free(&g);
}

/* f32 CPU reference of the op (forward + backward + running stats). */
static bool run_cpu(bg_t *tc, bg_ctx *h, const bn_inputs *in, bool train, bg_tensor **y, bg_tensor **grads,
                    bg_tensor **rs)
{
    bg_tensor *t[5];
    const bg_tensor *src[5] = {in->x, in->gamma, in->beta, in->rm, in->rv};
    for (int i = 0; i < 5; i++) {
        t[i] = bg_tensor_new(h, BG_CPU, BG_F32, src[i]->ndim, src[i]->shape, src[i]->name);
        bg_tensor_convert(h, t[i], src[i]);
    }
    bg_batchnorm_params p = {.momentum = 0.1f, .eps = 1e-5f};
    bg_node n;
    CHECK_OK(h, bg_node_init(h, &n, &bg_op_batchnorm2d, &p, t, 5, train));
    if (tc->failures) return false;
    CHECK_OK(h, bg_node_forward(h, &n));
    for (int i = 0; i < 3; i++) CHECK_OK(h, bg_tensor_ensure_grad(h, t[i]));
    CHECK_OK(h, bg_tensor_ensure_grad(h, n.out[0]));
    bg_tensor_convert(h, n.out[0]->grad, in->dy);
    CHECK_OK(h, bg_node_backward(h, &n));
    *y = to_host64(h, n.out[0]);
    for (int i = 0; i < 3; i++) grads[i] = to_host64(h, t[i]->grad);
    rs[0] = to_host64(h, t[3]);
    rs[1] = to_host64(h, t[4]);
    bg_node_release(h, &n);
    for (int i = 0; i < 5; i++) bg_tensor_free(h, t[i]);
    return true;
}

static void compare_to_cpu(bg_t *tc, bg_ctx *g, const bn_inputs *in, bg_dtype dt, bg_dtype pdt, bool train, double tol)
{
    bg_tensor *y = NULL, *grads[3] = {0}, *rs[2] = {0};
    if (!run_cpu(tc, g, in, train, &y, grads, rs)) return;
    bn_run r;
    if (run_op(tc, g, in, dt, pdt, train, false, &r)) {
        bg_tensor *gy = to_host64(g, r.bn.out[0]);
        double e = bg_nmse(gy, y);
        CHECK(e <= tol, "%s x, %s params, train %d: y nmse %.3g > %.1g", bg_dtype_name(dt), bg_dtype_name(pdt), train, e, tol);
        bg_tensor_free(g, gy);
        for (int i = 0; i < 3; i++) {
            bg_tensor *gg = to_host64(g, r.t[i]->grad);
            e = bg_nmse(gg, grads[i]);
            CHECK(e <= tol, "%s x, %s params, train %d: grad %d nmse %.3g > %.1g", bg_dtype_name(dt), bg_dtype_name(pdt),
                  train, i, e, tol);
            bg_tensor_free(g, gg);
        }
        for (int i = 0; i < 2; i++) {
            bg_tensor *gr = to_host64(g, r.t[3 + i]);
            e = bg_nmse(gr, rs[i]);
            /* f16 running stats carry f16 rounding; f32 ones the f32 math */
            CHECK(e <= (pdt == BG_F16 ? 1e-6 : 1e-10), "%s params: running %s nmse %.3g", bg_dtype_name(pdt),
                  i ? "var" : "mean", e);
            bg_tensor_free(g, gr);
        }
        free_run(g, &r);
    }
    bg_tensor_free(g, y);
    for (int i = 0; i < 3; i++) bg_tensor_free(g, grads[i]);
    for (int i = 0; i < 2; i++) bg_tensor_free(g, rs[i]);
}

BG_GPU_TEST(gpu_bn_matches_cpu_mixed_precision)
{
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 22));
    if (tc->failures) return;
    bn_inputs in;
    draw_inputs(&g, &in, 4, 37, 37, 43);
    for (int train = 0; train < 2 && !tc->failures; train++) {
        compare_to_cpu(tc, &g, &in, BG_F32, BG_F32, train, 1e-10);
        compare_to_cpu(tc, &g, &in, BG_F16, BG_F32, train, 1e-5); /* mixed precision layout */
        compare_to_cpu(tc, &g, &in, BG_F16, BG_F16, train, 1e-5);
    }
    free_inputs(&g, &in);
    bg_alloc_trim(&g, BG_CUDA);
    bg_ctx_free(&g);
}

BG_GPU_TEST(gpu_bn_deterministic)
{
    bg_ctx g;
    CHECK_OK(&g, bg_ctx_init(&g, BG_CUDA, 23));
    if (tc->failures) return;
    CHECK(g.deterministic, "contexts start deterministic");
    bn_inputs in;
    draw_inputs(&g, &in, 64, 16, 16, 96);
    bn_run a, b;
    if (run_op(tc, &g, &in, BG_F32, BG_F32, true, false, &a)) {
        if (run_op(tc, &g, &in, BG_F32, BG_F32, true, false, &b)) {
            CHECK(bytes_equal(&g, a.bn.out[0], b.bn.out[0]), "y differs between two runs");
            for (int i = 0; i < 3; i++) CHECK(bytes_equal(&g, a.t[i]->grad, b.t[i]->grad), "grad %d differs", i);
            CHECK(bytes_equal(&g, a.t[3], b.t[3]) && bytes_equal(&g, a.t[4], b.t[4]), "running stats differ");
            free_run(&g, &b);
        }
        free_run(&g, &a);
    }
    free_inputs(&g, &in);
    bg_alloc_trim(&g, BG_CUDA);
    bg_ctx_free(&g);
}
#endif
