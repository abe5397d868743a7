/* Checks derived from an op case (see harness.h). Inputs are drawn in f64
 * from a per-case seed, so every check of a case sees the same numbers:
 *  - gradcheck: analytic backward (f64) against central differences of
 *    L = sum_k <G_k, y_k> with random upstream gradients G_k;
 *  - f32-vs-f64: the f32 CPU path against the f64 one, forward and backward;
 *  - cuda-f32 / cuda-f16: the CUDA backend against the CPU f32 reference,
 *    outputs poisoned with NaN first so unwritten elements fail;
 *  - cpu-fast: the fast CPU backend (f32, outputs poisoned too) against the
 *    reference, once per instruction set this CPU runs.
 * Every other run uses the reference CPU backend: it is the oracle. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "op_checks.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#endif

void bg_test_ctx(bg_ctx *ctx, uint64_t seed) { bg_ctx_init(ctx, BG_CPU, seed); }

double bg_nmse(const bg_tensor *a, const bg_tensor *b)
{
    if (bg_numel(a) != bg_numel(b)) return INFINITY;
    double num = 0, den = 0;
    int64_t n = bg_numel(a);
    for (int64_t i = 0; i < n; i++) {
        double x = bg_get(a, i), y = bg_get(b, i);
        if (isnan(x) || isnan(y)) return INFINITY;
        num += (x - y) * (x - y);
        den += y * y;
    }
    return den > 0 ? num / den : num;
}

const char *bg_test_fixtures_dir(void)
{
    const char *e = getenv("BG_FIXTURES");
    return e && *e ? e : "tests/fixtures";
}

bg_status op_parse_params(bg_ctx *ctx, const bg_op *op, const char *spec, void *params)
{
    bg_op_default_params(op, params);
    if (!spec) return BG_OK;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return bg_fail(ctx, BG_ERR_ARG, "param '%s': expected key=value", tok);
        *eq = 0;
        double v[4];
        int nv = 0;
        for (char *s2 = NULL, *x = strtok_r(eq + 1, ",", &s2); x && nv < 4; x = strtok_r(NULL, ",", &s2))
            v[nv++] = strtod(x, NULL);
        bg_status s = bg_op_set_param(ctx, op, params, tok, v, nv);
        if (s) return s;
    }
    return BG_OK;
}

void op_case_name(const case_entry *e, const char *kind, char *buf, size_t n)
{
    const bg_op_case *c = e->c;
    const bg_op *op = bg_op_find(c->op);
    size_t k = (size_t)snprintf(buf, n, "%s[", c->op);
    for (int i = 0; i < c->n_in && k < n; i++) {
        if (!c->ndim[i]) continue;
        const char *nm = op && op->in_names[i] ? op->in_names[i] : "in";
        k += (size_t)snprintf(buf + k, n - k, "%s%s=", k > strlen(c->op) + 1 ? " " : "", nm);
        for (int d = 0; d < c->ndim[i] && k < n; d++)
            k += (size_t)snprintf(buf + k, n - k, d ? "x%lld" : "%lld", (long long)c->shape[i][d]);
    }
    if (k < n && c->params && *c->params) k += (size_t)snprintf(buf + k, n - k, " %s", c->params);
    if (k < n && c->train) k += (size_t)snprintf(buf + k, n - k, " train");
    if (k < n) snprintf(buf + k, n - k, "]:%s", kind);
}

/* ---- building inputs ---- */
typedef struct {
    bg_ctx ctx;
    const bg_op_case *c;
    bool c_train, c_no_grad;
    const bg_op *op;
    unsigned char params[BG_PARAM_BYTES];
    bg_tensor *in[BG_MAX_IN];
    int n_in;
} case_inputs;

static void free_tensors(bg_ctx *ctx, bg_tensor **ts, int n)
{
    for (int i = 0; i < n; i++) bg_tensor_free(ctx, ts[i]), ts[i] = NULL;
}

static uint64_t case_seed(const case_entry *e)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the file name and index */
    for (const char *p = e->file; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ^ (uint64_t)e->index * 0x9E3779B97F4A7C15ull;
}

static bool build_inputs(bg_t *tc, const case_entry *e, case_inputs *ci)
{
    const bg_op_case *c = e->c;
    memset(ci, 0, sizeof *ci);
    ci->c = c;
    ci->c_train = c->train;
    bg_ctx_init(&ci->ctx, BG_CPU, case_seed(e));
    ci->ctx.cpu_backend = BG_CPU_REF;
    ci->op = bg_op_find(c->op);
    if (!ci->op) {
        CHECK(false, "op '%s' is not in the registry", c->op);
        return false;
    }
    if (op_parse_params(&ci->ctx, ci->op, c->params, ci->params)) {
        CHECK(false, "params '%s': %s", c->params, bg_errmsg(&ci->ctx));
        return false;
    }
    ci->n_in = c->n_in;
    for (int i = 0; i < c->n_in; i++) {
        if (!c->ndim[i]) continue;
        bool labels = c->init[i] == BG_INIT_LABELS;
        bg_tensor *x = bg_tensor_new(&ci->ctx, BG_CPU, labels ? BG_I32 : BG_F64, c->ndim[i], c->shape[i],
                                     ci->op->in_names[i] ? ci->op->in_names[i] : "in");
        if (!x) {
            CHECK(false, "input %d: %s", i, bg_errmsg(&ci->ctx));
            return false;
        }
        ci->in[i] = x;
        int64_t n = bg_numel(x);
        switch (c->init[i]) {
        case BG_INIT_NORMAL: bg_tensor_fill_normal(&ci->ctx, x, 0, 1); break;
        case BG_INIT_POSITIVE: bg_tensor_fill_uniform(&ci->ctx, x, 0.5, 1.5); break;
        case BG_INIT_LABELS: {
            bg_tensor *u = bg_tensor_new(&ci->ctx, BG_CPU, BG_F64, x->ndim, x->shape, "u");
            bg_tensor_fill_uniform(&ci->ctx, u, 0, 1);
            int r = c->label_range > 0 ? c->label_range : 2;
            for (int64_t j = 0; j < n; j++) bg_set(x, j, (int)(bg_get(u, j) * r) % r);
            bg_tensor_free(&ci->ctx, u);
            break;
        }
        case BG_INIT_SPREAD: {
            /* a random permutation of k*0.05 - shift: distinct, gaps of 0.05 */
            int64_t *perm = malloc((size_t)n * sizeof *perm);
            bg_tensor *u = bg_tensor_new(&ci->ctx, BG_CPU, BG_F64, 1, &n, "u");
            bg_tensor_fill_uniform(&ci->ctx, u, 0, 1);
            for (int64_t j = 0; j < n; j++) perm[j] = j;
            for (int64_t j = n - 1; j > 0; j--) {
                int64_t k = (int64_t)(bg_get(u, j) * (double)(j + 1)) % (j + 1);
                int64_t tmp = perm[j]; perm[j] = perm[k]; perm[k] = tmp;
            }
            for (int64_t j = 0; j < n; j++) bg_set(x, j, 0.05 * (double)perm[j] - 0.025 * (double)n);
            free(perm);
            bg_tensor_free(&ci->ctx, u);
            break;
        }
        }
    }
    return true;
}

static bool differentiable(const case_inputs *ci, int i)
{
    return ci->in[i] && ci->op->in_differentiable[i] && bg_dtype_is_float(ci->in[i]->dtype);
}

/* Copy the inputs to dtype dt on device dev. */
static bool convert_inputs(bg_t *tc, case_inputs *ci, bg_dtype dt, bg_device dev, bg_tensor **out)
{
    bg_ctx *ctx = &ci->ctx;
    for (int i = 0; i < ci->n_in; i++) {
        out[i] = NULL;
        if (!ci->in[i]) continue;
        bg_dtype d = bg_dtype_is_float(ci->in[i]->dtype) ? dt : ci->in[i]->dtype;
        bg_tensor *h = bg_tensor_new(ctx, BG_CPU, d, ci->in[i]->ndim, ci->in[i]->shape, ci->in[i]->name);
        if (!h || bg_tensor_convert(ctx, h, ci->in[i])) {
            CHECK(false, "convert input %d: %s", i, bg_errmsg(ctx));
            bg_tensor_free(ctx, h);
            return false;
        }
        if (dev == BG_CPU) { out[i] = h; continue; }
        out[i] = bg_tensor_new(ctx, dev, d, h->ndim, h->shape, h->name);
        bool ok = out[i] && bg_tensor_copy(ctx, out[i], h) == BG_OK;
        bg_tensor_free(ctx, h);
        if (!ok) {
            CHECK(false, "upload input %d: %s", i, bg_errmsg(ctx));
            return false;
        }
    }
    return true;
}

/* Results of one forward+backward: outputs and input grads, as CPU f64. */
typedef struct {
    bg_tensor *out[BG_MAX_OUT];
    int n_out;
    bg_tensor *grad[BG_MAX_IN];
} results;

static void free_results(bg_ctx *ctx, results *r)
{
    free_tensors(ctx, r->out, BG_MAX_OUT);
    free_tensors(ctx, r->grad, BG_MAX_IN);
}

static bg_tensor *to_cpu_f64(bg_ctx *ctx, const bg_tensor *t)
{
    bg_tensor *h = bg_tensor_new(ctx, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
    if (!h) return NULL;
    bg_tensor *d = NULL;
    if (bg_tensor_copy(ctx, h, t) == BG_OK && (d = bg_tensor_new(ctx, BG_CPU, BG_F64, t->ndim, t->shape, t->name)))
        bg_tensor_convert(ctx, d, h);
    bg_tensor_free(ctx, h);
    return d;
}

static bg_status poison(bg_ctx *ctx, bg_tensor *t)
{
    if (t->device == BG_CPU) {
        memset(t->data, 0xff, bg_nbytes(t)); /* all-ones bytes = NaN for f16/f32/f64 */
        return BG_OK;
    }
#ifdef BG_WITH_CUDA
    char err[200];
    if (bg_cuda_memset(t->data, 0xff, bg_nbytes(t), ctx->stream, err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "poison: %s", err);
#endif
    return BG_OK;
}

/* Upstream gradients: f64 CPU tensors with the outputs' shapes. */
static bool make_upstream(bg_t *tc, case_inputs *ci, const bg_node *n, bg_tensor **up)
{
    bg_ctx tmp;
    bg_ctx_init(&tmp, BG_CPU, ci->ctx.seed ^ 0xD1B54A32D192ED03ull);
    for (int k = 0; k < n->n_out; k++) {
        up[k] = NULL;
        if (!bg_dtype_is_float(n->out[k]->dtype)) continue;
        up[k] = bg_tensor_new(&ci->ctx, BG_CPU, BG_F64, n->out[k]->ndim, n->out[k]->shape, "upstream");
        if (!up[k] || bg_tensor_fill_normal(&tmp, up[k], 0, 1)) {
            CHECK(false, "upstream gradient: %s", bg_errmsg(&ci->ctx));
            return false;
        }
    }
    return true;
}

/* Forward + backward of the case at (dt, dev) with upstream `up`; results
 * come back as CPU f64. Outputs and grads are poisoned first on CUDA. */
static bool run_case(bg_t *tc, case_inputs *ci, bg_dtype dt, bg_device dev, bg_tensor **up_in, results *r)
{
    bg_ctx *ctx = &ci->ctx;
    bg_tensor *in[BG_MAX_IN] = {0}, *up[BG_MAX_OUT] = {0};
    bg_node n;
    bool ok = false;
    memset(r, 0, sizeof *r);
    if (!convert_inputs(tc, ci, dt, dev, in)) goto done;
    if (bg_node_init(ctx, &n, ci->op, ci->params, in, ci->n_in, ci->c_train)) {
        CHECK(false, "init: %s", bg_errmsg(ctx));
        goto done;
    }
    for (int k = 0; k < n.n_out; k++)
        if ((dev != BG_CPU || ctx->cpu_backend == BG_CPU_FAST) && poison(ctx, n.out[k])) {
            CHECK(false, "%s", bg_errmsg(ctx));
            goto release;
        }
    if (bg_node_forward(ctx, &n)) {
        CHECK(false, "forward on %s %s: %s", bg_device_name(dev), bg_dtype_name(dt), bg_errmsg(ctx));
        goto release;
    }
    r->n_out = n.n_out;
    for (int k = 0; k < n.n_out; k++) r->out[k] = to_cpu_f64(ctx, n.out[k]);
    if (!ci->c_no_grad) {
        for (int i = 0; i < ci->n_in; i++)
            if (differentiable(ci, i) && bg_tensor_ensure_grad(ctx, in[i])) { CHECK(false, "%s", bg_errmsg(ctx)); goto release; }
        for (int k = 0; k < n.n_out; k++) {
            if (!up_in[k]) continue;
            if (bg_tensor_ensure_grad(ctx, n.out[k])) { CHECK(false, "%s", bg_errmsg(ctx)); goto release; }
            up[k] = bg_tensor_new(ctx, BG_CPU, n.out[k]->dtype, up_in[k]->ndim, up_in[k]->shape, "up");
            if (!up[k] || bg_tensor_convert(ctx, up[k], up_in[k]) || bg_tensor_copy(ctx, n.out[k]->grad, up[k])) {
                CHECK(false, "upstream: %s", bg_errmsg(ctx));
                goto release;
            }
        }
        if (bg_node_backward(ctx, &n)) {
            CHECK(false, "backward on %s %s: %s", bg_device_name(dev), bg_dtype_name(dt), bg_errmsg(ctx));
            goto release;
        }
        for (int i = 0; i < ci->n_in; i++)
            if (differentiable(ci, i)) r->grad[i] = to_cpu_f64(ctx, in[i]->grad);
    }
    ok = true;
release:
    bg_node_release(ctx, &n);
done:
    free_tensors(ctx, up, BG_MAX_OUT);
    free_tensors(ctx, in, BG_MAX_IN);
    if (!ok) free_results(ctx, r);
    return ok;
}

static double weighted_sum(bg_node *n, bg_tensor **up)
{
    double s = 0;
    for (int k = 0; k < n->n_out; k++) {
        if (!up[k]) continue;
        int64_t m = bg_numel(n->out[k]);
        for (int64_t j = 0; j < m; j++) s += bg_get(up[k], j) * bg_get(n->out[k], j);
    }
    return s;
}

static void gradcheck(bg_t *tc, case_inputs *ci)
{
    bg_ctx *ctx = &ci->ctx;
    const double tol = ci->c->tol_grad > 0 ? ci->c->tol_grad : 1e-6;
    bg_node n;
    if (bg_node_init(ctx, &n, ci->op, ci->params, ci->in, ci->n_in, ci->c_train)) {
        CHECK(false, "init: %s", bg_errmsg(ctx));
        return;
    }
    bg_tensor *up[BG_MAX_OUT] = {0};
    results r;
    if (!make_upstream(tc, ci, &n, up) || !run_case(tc, ci, BG_F64, BG_CPU, up, &r)) goto out;
    int checked = 0;
    for (int i = 0; i < ci->n_in; i++) {
        if (!differentiable(ci, i)) continue;
        bg_tensor *x = ci->in[i];
        double max_err = 0, max_ref = 0;
        int64_t worst = -1;
        for (int64_t j = 0; j < bg_numel(x); j++) {
            double x0 = bg_get(x, j), h = 1e-6 * fmax(1.0, fabs(x0));
            bg_set(x, j, x0 + h);
            bg_status s1 = bg_node_forward(ctx, &n);
            double lp = weighted_sum(&n, up);
            bg_set(x, j, x0 - h);
            bg_status s2 = bg_node_forward(ctx, &n);
            double lm = weighted_sum(&n, up);
            bg_set(x, j, x0);
            if (s1 || s2) {
                CHECK(false, "forward: %s", bg_errmsg(ctx));
                goto out_r;
            }
            double num = (lp - lm) / (2 * h), ana = bg_get(r.grad[i], j);
            double err = fabs(num - ana);
            if (!(err <= max_err)) { max_err = isnan(err) ? INFINITY : err; worst = j; }
            if (fabs(num) > max_ref) max_ref = fabs(num);
        }
        double rel = max_err / fmax(max_ref, 1e-3);
        CHECK(rel <= tol, "d/d%s: max |analytic - numeric| = %.3g at element %lld, relative %.3g > %.1g",
              ci->op->in_names[i], max_err, (long long)worst, rel, tol);
        checked++;
    }
    CHECK(checked > 0, "no differentiable input was checked");
out_r:
    free_results(ctx, &r);
out:
    free_tensors(ctx, up, BG_MAX_OUT);
    bg_node_release(ctx, &n);
}

/* Compare two result sets output by output and grad by grad. */
static void compare(bg_t *tc, case_inputs *ci, const results *got, const results *ref, double tol, const char *what)
{
    CHECK(got->n_out == ref->n_out, "%s: %d outputs, reference has %d", what, got->n_out, ref->n_out);
    for (int k = 0; k < ref->n_out && k < got->n_out; k++) {
        double e = bg_nmse(got->out[k], ref->out[k]);
        CHECK(e <= tol, "%s: output %d nmse %.3g > %.1g", what, k, e, tol);
    }
    for (int i = 0; i < ci->n_in; i++) {
        if (!ref->grad[i]) continue;
        if (!got->grad[i]) { CHECK(false, "%s: no gradient for %s", what, ci->op->in_names[i]); continue; }
        double e = bg_nmse(got->grad[i], ref->grad[i]);
        CHECK(e <= tol, "%s: grad of %s nmse %.3g > %.1g", what, ci->op->in_names[i], e, tol);
    }
}

/* The fast CPU backend at each instruction set against the f32 reference. */
static void cpu_fast(bg_t *tc, const case_entry *e, case_inputs *ci)
{
    bg_ctx *ctx = &ci->ctx;
    bg_node probe;
    if (bg_node_init(ctx, &probe, ci->op, ci->params, ci->in, ci->n_in, ci->c_train)) {
        CHECK(false, "init: %s", bg_errmsg(ctx));
        return;
    }
    bg_tensor *up[BG_MAX_OUT] = {0};
    bool have_up = make_upstream(tc, ci, &probe, up);
    bg_node_release(ctx, &probe);
    results ref, got;
    const double tol = e->c->tol_f32 > 0 ? e->c->tol_f32 : 1e-10;
    if (have_up && run_case(tc, ci, BG_F32, BG_CPU, up, &ref)) {
        for (int isa = 0; isa < BG_NISA; isa++) {
            if (!bg_cpu_isa_runs((bg_cpu_isa)isa)) continue;
            char what[64];
            snprintf(what, sizeof what, "cpu-fast %s", bg_cpu_isa_name((bg_cpu_isa)isa));
            ctx->cpu_backend = BG_CPU_FAST;
            ctx->cpu_isa = (bg_cpu_isa)isa;
            bool ran = run_case(tc, ci, BG_F32, BG_CPU, up, &got);
            ctx->cpu_backend = BG_CPU_REF;
            if (!ran) break;
            compare(tc, ci, &got, &ref, tol, what);
            free_results(ctx, &got);
        }
        free_results(ctx, &ref);
    }
    free_tensors(ctx, up, BG_MAX_OUT);
}

void op_case_run(bg_t *tc, const case_entry *e, const char *kind)
{
    case_inputs ci;
    if (!build_inputs(tc, e, &ci)) goto out;
    if (!strncmp(kind, "cuda", 4) && (!ci.op->fwd[BG_CUDA] || !ci.op->bwd[BG_CUDA])) {
        /* an op without a CUDA kernel is not a pass: say so in the skip list */
        bg_test_skip(tc, "op '%s' has no CUDA %s kernel yet", ci.op->name, ci.op->fwd[BG_CUDA] ? "backward" : "forward");
        goto out;
    }
    if (!strcmp(kind, "gradcheck")) {
        gradcheck(tc, &ci);
        goto out;
    }
    if (!strcmp(kind, "cpu-fast")) {
        cpu_fast(tc, e, &ci);
        goto out;
    }
    /* Reference: CPU at f64 (for f32-vs-f64) or f32 (for the CUDA checks). */
    bool vs64 = !strcmp(kind, "f32-vs-f64");
    bg_node probe;
    if (bg_node_init(&ci.ctx, &probe, ci.op, ci.params, ci.in, ci.n_in, ci.c_train)) {
        CHECK(false, "init: %s", bg_errmsg(&ci.ctx));
        goto out;
    }
    bg_tensor *up[BG_MAX_OUT] = {0};
    bool have_up = make_upstream(tc, &ci, &probe, up);
    bg_node_release(&ci.ctx, &probe);
    results ref, got;
    if (have_up && run_case(tc, &ci, vs64 ? BG_F64 : BG_F32, BG_CPU, up, &ref)) {
        bg_dtype dt = !strcmp(kind, "cuda-f16") ? BG_F16 : BG_F32;
        bg_device dev = vs64 ? BG_CPU : BG_CUDA;
        double tol = dt == BG_F16 ? (e->c->tol_f16 > 0 ? e->c->tol_f16 : 1e-5)
                                  : (e->c->tol_f32 > 0 ? e->c->tol_f32 : 1e-10);
        if (run_case(tc, &ci, dt, dev, up, &got)) {
            compare(tc, &ci, &got, &ref, tol, kind);
            free_results(&ci.ctx, &got);
        }
        free_results(&ci.ctx, &ref);
    }
    free_tensors(&ci.ctx, up, BG_MAX_OUT);
out:
    free_tensors(&ci.ctx, ci.in, BG_MAX_IN);
    bg_ctx_free(&ci.ctx);
}
