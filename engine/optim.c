/* The optimizer object: config checks, state allocation and the per-step
 * scalars. The per-element math lives in optim_kernels.inc. */
#include "optim.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most three state buffers per parameter (Adam with amsgrad). */
#define NBUF 3

struct bg_optim {
    bg_optim_config cfg;
    int n;
    bg_tensor **params;
    bg_tensor **bufs;     /* n * NBUF, NULL where the kind has no such buffer */
    bg_tensor *scalars;   /* {n, 3} f64: step, eta, mu (see bg_optim_state) */
};

enum { SC_STEP = 0, SC_ETA, SC_MU, SC_N };

/* ---- per-step scalars handed to the loops ---- */
typedef struct { double wd, momentum, dampening, lr; bool nesterov, first; } sgd_k;
typedef struct {
    double wd, decay, beta1, beta2, eps, step_size, bc2_sqrt;
    bool decoupled;
} adam_k;
typedef struct { double wd, beta1, beta2, eps, clr; } adamax_k;
typedef struct { double wd, eps, clr; } adagrad_k;
typedef struct { double wd, rho, eps, lr; } adadelta_k;
typedef struct { double wd, decay, eta, mu; } asgd_k;

#define T float
#define SFX f32
#include "optim_kernels.inc"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "optim_kernels.inc"
#undef T
#undef SFX

/* ---- names, defaults, keys ---- */
static const char *const NAMES[BG_OPT_COUNT] = {
    "sgd", "adam", "adamw", "adamax", "adagrad", "adadelta", "asgd",
};

const char *bg_optim_name(bg_optim_kind kind)
{
    return (unsigned)kind < BG_OPT_COUNT ? NAMES[kind] : "?";
}

bg_status bg_optim_parse(bg_ctx *ctx, const char *name, bg_optim_kind *out)
{
    if (!name || !out) return bg_fail(ctx, BG_ERR_ARG, "optimizer name: NULL argument");
    for (int k = 0; k < BG_OPT_COUNT; k++) {
        if (strcmp(name, NAMES[k]) == 0) {
            *out = (bg_optim_kind)k;
            return BG_OK;
        }
    }
    return bg_fail(ctx, BG_ERR_ARG,
                   "unknown optimizer '%s' (sgd, adam, adamw, adamax, adagrad, adadelta, asgd)", name);
}

bg_optim_config bg_optim_defaults(bg_optim_kind kind)
{
    /* Values from the torch.optim constructors (1.13). */
    bg_optim_config c = {0};
    c.kind = kind;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.rho = 0.9;
    c.lambd = 1e-4;
    c.alpha = 0.75;
    c.t0 = 1e6;
    switch (kind) {
    case BG_OPT_SGD: c.lr = NAN; break;
    case BG_OPT_ADAM: c.lr = 1e-3; break;
    case BG_OPT_ADAMW: c.lr = 1e-3; c.weight_decay = 1e-2; break;
    case BG_OPT_ADAMAX: c.lr = 2e-3; break;
    case BG_OPT_ADAGRAD: c.lr = 1e-2; c.eps = 1e-10; break;
    case BG_OPT_ADADELTA: c.lr = 1.0; c.eps = 1e-6; break;
    case BG_OPT_ASGD: c.lr = 1e-2; break;
    default: break;
    }
    return c;
}

#define K(x) (1u << (x))
#define ADAMS (K(BG_OPT_ADAM) | K(BG_OPT_ADAMW))
#define ALL (K(BG_OPT_COUNT) - 1u)

typedef struct {
    const char *key;
    size_t off;      /* of a double, or of a bool when is_bool */
    bool is_bool;
    unsigned kinds;  /* which kinds read it */
} key_info;

static const key_info KEYS[] = {
    {"lr", offsetof(bg_optim_config, lr), false, ALL},
    {"weight_decay", offsetof(bg_optim_config, weight_decay), false, ALL},
    {"momentum", offsetof(bg_optim_config, momentum), false, K(BG_OPT_SGD)},
    {"dampening", offsetof(bg_optim_config, dampening), false, K(BG_OPT_SGD)},
    {"nesterov", offsetof(bg_optim_config, nesterov), true, K(BG_OPT_SGD)},
    {"beta1", offsetof(bg_optim_config, beta1), false, ADAMS | K(BG_OPT_ADAMAX)},
    {"beta2", offsetof(bg_optim_config, beta2), false, ADAMS | K(BG_OPT_ADAMAX)},
    {"eps", offsetof(bg_optim_config, eps), false,
     ADAMS | K(BG_OPT_ADAMAX) | K(BG_OPT_ADAGRAD) | K(BG_OPT_ADADELTA)},
    {"amsgrad", offsetof(bg_optim_config, amsgrad), true, ADAMS},
    {"lr_decay", offsetof(bg_optim_config, lr_decay), false, K(BG_OPT_ADAGRAD)},
    {"initial_accumulator_value", offsetof(bg_optim_config, initial_accumulator_value), false,
     K(BG_OPT_ADAGRAD)},
    {"rho", offsetof(bg_optim_config, rho), false, K(BG_OPT_ADADELTA)},
    {"lambd", offsetof(bg_optim_config, lambd), false, K(BG_OPT_ASGD)},
    {"alpha", offsetof(bg_optim_config, alpha), false, K(BG_OPT_ASGD)},
    {"t0", offsetof(bg_optim_config, t0), false, K(BG_OPT_ASGD)},
};

bg_status bg_optim_config_set(bg_ctx *ctx, bg_optim_config *cfg, const char *key, double value)
{
    if (!cfg || !key) return bg_fail(ctx, BG_ERR_ARG, "optimizer option: NULL argument");
    if ((unsigned)cfg->kind >= BG_OPT_COUNT)
        return bg_fail(ctx, BG_ERR_ARG, "optimizer option '%s': invalid kind %d", key, (int)cfg->kind);
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        const key_info *ki = &KEYS[i];
        if (strcmp(ki->key, key) != 0) continue;
        if (!(ki->kinds & K(cfg->kind)))
            return bg_fail(ctx, BG_ERR_ARG, "optimizer %s has no option '%s'", NAMES[cfg->kind], key);
        if (ki->is_bool) {
            if (value != 0.0 && value != 1.0)
                return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: '%s' is a boolean (0 or 1), got %g",
                               NAMES[cfg->kind], key, value);
            *(bool *)((char *)cfg + ki->off) = value != 0.0;
        } else {
            *(double *)((char *)cfg + ki->off) = value;
        }
        return BG_OK;
    }
    return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: unknown option '%s'", NAMES[cfg->kind], key);
}

/* ---- checks ---- */
static bg_status need(bg_ctx *ctx, const bg_optim_config *c, bool ok, const char *what, double v)
{
    if (ok) return BG_OK;
    return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: invalid %s (got %g)", NAMES[c->kind], what, v);
}

bg_status bg_optim_check(bg_ctx *ctx, const bg_optim_config *c)
{
    if (!c) return bg_fail(ctx, BG_ERR_ARG, "optimizer config: NULL");
    if ((unsigned)c->kind >= BG_OPT_COUNT)
        return bg_fail(ctx, BG_ERR_ARG, "optimizer config: invalid kind %d", (int)c->kind);
    if (c->kind == BG_OPT_SGD && isnan(c->lr))
        return bg_fail(ctx, BG_ERR_ARG, "optimizer sgd: lr must be given (PyTorch has no default)");
    bg_status s;
#define NEED(cond, what, v) if ((s = need(ctx, c, (cond), (what), (v)))) return s
    NEED(isfinite(c->lr) && c->lr >= 0, "lr: must be finite and >= 0", c->lr);
    NEED(isfinite(c->weight_decay) && c->weight_decay >= 0, "weight_decay: must be >= 0", c->weight_decay);
    switch (c->kind) {
    case BG_OPT_SGD:
        NEED(isfinite(c->momentum) && c->momentum >= 0, "momentum: must be >= 0", c->momentum);
        NEED(isfinite(c->dampening), "dampening: must be finite", c->dampening);
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return bg_fail(ctx, BG_ERR_ARG,
                           "optimizer sgd: nesterov needs momentum > 0 and dampening 0 (got %g, %g)",
                           c->momentum, c->dampening);
        break;
    case BG_OPT_ADAM:
    case BG_OPT_ADAMW:
    case BG_OPT_ADAMAX:
        NEED(c->beta1 >= 0 && c->beta1 < 1, "beta1: must be in [0, 1)", c->beta1);
        NEED(c->beta2 >= 0 && c->beta2 < 1, "beta2: must be in [0, 1)", c->beta2);
        NEED(isfinite(c->eps) && c->eps >= 0, "eps: must be >= 0", c->eps);
        break;
    case BG_OPT_ADAGRAD:
        NEED(isfinite(c->lr_decay) && c->lr_decay >= 0, "lr_decay: must be >= 0", c->lr_decay);
        NEED(isfinite(c->initial_accumulator_value) && c->initial_accumulator_value >= 0,
             "initial_accumulator_value: must be >= 0", c->initial_accumulator_value);
        NEED(isfinite(c->eps) && c->eps >= 0, "eps: must be >= 0", c->eps);
        break;
    case BG_OPT_ADADELTA:
        NEED(c->rho >= 0 && c->rho <= 1, "rho: must be in [0, 1]", c->rho);
        NEED(isfinite(c->eps) && c->eps >= 0, "eps: must be >= 0", c->eps);
        break;
    case BG_OPT_ASGD:
        /* torch checks none of these; these keep eta's pow() real and finite */
        NEED(isfinite(c->lambd) && c->lambd >= 0, "lambd: must be >= 0", c->lambd);
        NEED(isfinite(c->alpha), "alpha: must be finite", c->alpha);
        NEED(!isnan(c->t0), "t0: must not be NaN", c->t0);
        break;
    default: break;
    }
#undef NEED
    return BG_OK;
}

/* ---- construction ---- */
static const char *pname(const bg_tensor *p, int i, char *buf, size_t n)
{
    if (p && p->name[0]) snprintf(buf, n, "'%s'", p->name);
    else snprintf(buf, n, "#%d", i);
    return buf;
}

static bg_status check_param(bg_ctx *ctx, const bg_optim_config *c, bg_tensor *const *params, int i)
{
    const bg_tensor *p = params[i];
    char nm[64];
    const char *on = NAMES[c->kind];
    if (!p) return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: parameter #%d is NULL", on, i);
    pname(p, i, nm, sizeof nm);
    if (p->device != BG_CPU)
        return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s: parameter %s is on %s; only CPU updates exist so far",
                       on, nm, bg_device_name(p->device));
    if (p->dtype != BG_F32 && p->dtype != BG_F64)
        return bg_fail(ctx, BG_ERR_DTYPE, "optimizer %s: parameter %s is %s; updates need f32 or f64",
                       on, nm, bg_dtype_name(p->dtype));
    if (!bg_is_contiguous(p))
        return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: parameter %s is not contiguous", on, nm);
    for (int j = 0; j < i; j++)
        if (params[j] == p)
            return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: parameter %s is listed twice (#%d and #%d)",
                           on, nm, j, i);
    return BG_OK;
}

/* The buffer names a kind keeps per parameter, in slot order (NULL = none). */
static void buffer_names(const bg_optim_config *c, const char *names[NBUF])
{
    for (int b = 0; b < NBUF; b++) names[b] = NULL;
    switch (c->kind) {
    case BG_OPT_SGD:
        if (c->momentum != 0) names[0] = "momentum_buffer";
        break;
    case BG_OPT_ADAM:
    case BG_OPT_ADAMW:
        names[0] = "exp_avg";
        names[1] = "exp_avg_sq";
        if (c->amsgrad) names[2] = "max_exp_avg_sq";
        break;
    case BG_OPT_ADAMAX: names[0] = "exp_avg"; names[1] = "exp_inf"; break;
    case BG_OPT_ADAGRAD: names[0] = "sum"; break;
    case BG_OPT_ADADELTA: names[0] = "square_avg"; names[1] = "acc_delta"; break;
    case BG_OPT_ASGD: names[0] = "ax"; break;
    default: break;
    }
}

bg_status bg_optim_new(bg_ctx *ctx, const bg_optim_config *cfg, bg_tensor *const *params, int n,
                       bg_optim **out)
{
    if (!out) return bg_fail(ctx, BG_ERR_ARG, "optimizer: NULL output pointer");
    *out = NULL;
    bg_status s = bg_optim_check(ctx, cfg);
    if (s) return s;
    if (n <= 0 || !params)
        return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: empty parameter list (%d)", NAMES[cfg->kind], n);
    for (int i = 0; i < n; i++)
        if ((s = check_param(ctx, cfg, params, i))) return s;

    bg_optim *o = calloc(1, sizeof *o);
    if (!o) return bg_fail(ctx, BG_ERR_OOM, "optimizer %s: out of host memory", NAMES[cfg->kind]);
    o->cfg = *cfg;
    o->n = n;
    o->params = calloc((size_t)n, sizeof *o->params);
    o->bufs = calloc((size_t)n * NBUF, sizeof *o->bufs);
    if (!o->params || !o->bufs) {
        bg_optim_free(ctx, o);
        return bg_fail(ctx, BG_ERR_OOM, "optimizer %s: out of host memory", NAMES[cfg->kind]);
    }
    memcpy(o->params, params, (size_t)n * sizeof *params);

    const char *bn[NBUF];
    buffer_names(cfg, bn);
    /* Adagrad's sum starts at initial_accumulator_value, everything else at 0
     * (SGD's momentum buffer is overwritten by the first step anyway). */
    double fill = cfg->kind == BG_OPT_ADAGRAD ? cfg->initial_accumulator_value : 0.0;
    for (int i = 0; i < n && !s; i++) {
        for (int b = 0; b < NBUF && !s; b++) {
            if (!bn[b]) continue;
            char name[48];
            snprintf(name, sizeof name, "optim.%d.%s", i, bn[b]);
            bg_tensor *t = bg_tensor_like(ctx, params[i], name);
            if (!t) s = ctx->status ? ctx->status : BG_ERR_OOM;
            else {
                o->bufs[i * NBUF + b] = t;
                s = fill != 0.0 ? bg_tensor_fill_const(ctx, t, fill) : bg_tensor_zero(ctx, t);
            }
        }
    }
    if (!s) {
        int64_t shape[2] = {n, SC_N};
        o->scalars = bg_tensor_new(ctx, BG_CPU, BG_F64, 2, shape, "optim.scalars");
        if (!o->scalars) s = ctx->status ? ctx->status : BG_ERR_OOM;
    }
    if (s) {
        bg_optim_free(ctx, o);
        return s;
    }
    double *sc = o->scalars->data;
    for (int i = 0; i < n; i++) {
        sc[i * SC_N + SC_STEP] = 0;
        /* torch keeps ASGD's eta and mu in default-dtype (f32) scalar
         * tensors, so they carry f32 rounding even for f64 parameters. */
        sc[i * SC_N + SC_ETA] = (double)(float)cfg->lr;
        sc[i * SC_N + SC_MU] = 1.0;
    }
    *out = o;
    return BG_OK;
}

void bg_optim_free(bg_ctx *ctx, bg_optim *o)
{
    if (!o) return;
    if (o->bufs)
        for (int i = 0; i < o->n * NBUF; i++) bg_tensor_free(ctx, o->bufs[i]);
    bg_tensor_free(ctx, o->scalars);
    free(o->bufs);
    free(o->params);
    free(o);
}

/* ---- stepping ---- */
static bg_status check_grad(bg_ctx *ctx, const bg_optim *o, int i)
{
    const bg_tensor *p = o->params[i], *g = p->grad;
    char nm[64];
    const char *on = NAMES[o->cfg.kind];
    pname(p, i, nm, sizeof nm);
    /* the parameter itself may have been changed since creation */
    if (p->device != BG_CPU || g->device != BG_CPU)
        return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s: parameter %s or its grad is not on the CPU", on, nm);
    if (g->dtype != p->dtype)
        return bg_fail(ctx, BG_ERR_DTYPE, "optimizer %s: grad of %s is %s, the parameter %s", on, nm,
                       bg_dtype_name(g->dtype), bg_dtype_name(p->dtype));
    if (!bg_same_shape(p, g)) {
        char a[96], b[96];
        return bg_fail(ctx, BG_ERR_SHAPE, "optimizer %s: grad of %s is %s, the parameter %s", on, nm,
                       bg_shape_str(g, a, sizeof a), bg_shape_str(p, b, sizeof b));
    }
    if (!bg_is_contiguous(g) || !bg_is_contiguous(p))
        return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: parameter %s or its grad is not contiguous", on, nm);
    return BG_OK;
}

static void update_one(bg_optim *o, int i)
{
    const bg_optim_config *c = &o->cfg;
    bg_tensor *p = o->params[i];
    bg_tensor **bt = &o->bufs[i * NBUF];
    void *b0 = bt[0] ? bt[0]->data : NULL, *b1 = bt[1] ? bt[1]->data : NULL;
    void *b2 = bt[2] ? bt[2]->data : NULL;
    double *sc = (double *)o->scalars->data + i * SC_N;
    const bool f64 = p->dtype == BG_F64;
    const int64_t n = bg_numel(p);
    void *pd = p->data;
    const void *gd = p->grad->data;
    /* torch increments step before using it (SGD and Adadelta ignore it). */
    const double step = sc[SC_STEP] + 1;

#define DISPATCH(fn, ...) \
    do { if (f64) fn##_f64(pd, gd, __VA_ARGS__); else fn##_f32(pd, gd, __VA_ARGS__); } while (0)
    switch (c->kind) {
    case BG_OPT_SGD: {
        sgd_k k = {c->weight_decay, c->momentum, c->dampening, c->lr, c->nesterov, sc[SC_STEP] == 0};
        DISPATCH(sgd_update, b0, n, &k);
        break;
    }
    case BG_OPT_ADAM:
    case BG_OPT_ADAMW: {
        const bool w = c->kind == BG_OPT_ADAMW;
        adam_k k = {
            .wd = w ? 0.0 : c->weight_decay,
            .decay = w ? 1.0 - c->lr * c->weight_decay : 1.0,
            .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
            .step_size = c->lr / (1.0 - pow(c->beta1, step)),
            .bc2_sqrt = sqrt(1.0 - pow(c->beta2, step)),
            .decoupled = w,
        };
        DISPATCH(adam_update, b0, b1, b2, n, &k);
        break;
    }
    case BG_OPT_ADAMAX: {
        adamax_k k = {c->weight_decay, c->beta1, c->beta2, c->eps, c->lr / (1.0 - pow(c->beta1, step))};
        DISPATCH(adamax_update, b0, b1, n, &k);
        break;
    }
    case BG_OPT_ADAGRAD: {
        adagrad_k k = {c->weight_decay, c->eps, c->lr / (1.0 + (step - 1.0) * c->lr_decay)};
        DISPATCH(adagrad_update, b0, n, &k);
        break;
    }
    case BG_OPT_ADADELTA: {
        adadelta_k k = {c->weight_decay, c->rho, c->eps, c->lr};
        DISPATCH(adadelta_update, b0, b1, n, &k);
        break;
    }
    case BG_OPT_ASGD: {
        const double eta = sc[SC_ETA], mu = sc[SC_MU];
        asgd_k k = {c->weight_decay, 1.0 - c->lambd * eta, eta, mu};
        DISPATCH(asgd_update, b0, n, &k);
        /* the next step's eta and mu, f32-rounded as torch stores them */
        sc[SC_ETA] = (double)(float)(c->lr / pow(1.0 + c->lambd * c->lr * step, c->alpha));
        sc[SC_MU] = (double)(float)(1.0 / fmax(1.0, step - c->t0));
        break;
    }
    default: break;
    }
#undef DISPATCH
    sc[SC_STEP] = step;
}

bg_status bg_optim_step(bg_ctx *ctx, bg_optim *o)
{
    if (!o) return bg_fail(ctx, BG_ERR_ARG, "optimizer step: NULL optimizer");
    /* Check everything first so a bad grad leaves every parameter untouched. */
    for (int i = 0; i < o->n; i++) {
        if (!o->params[i]->grad) continue;
        bg_status s = check_grad(ctx, o, i);
        if (s) return s;
    }
    for (int i = 0; i < o->n; i++)
        if (o->params[i]->grad) update_one(o, i);
    return BG_OK;
}

/* ---- accessors ---- */
bg_status bg_optim_set_lr(bg_ctx *ctx, bg_optim *o, double lr)
{
    if (!o) return bg_fail(ctx, BG_ERR_ARG, "optimizer set_lr: NULL optimizer");
    if (!(isfinite(lr) && lr >= 0))
        return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: invalid lr %g (must be finite and >= 0)",
                       NAMES[o->cfg.kind], lr);
    o->cfg.lr = lr;
    return BG_OK;
}

double bg_optim_lr(const bg_optim *o) { return o->cfg.lr; }
const bg_optim_config *bg_optim_get_config(const bg_optim *o) { return &o->cfg; }

int64_t bg_optim_param_steps(const bg_optim *o, int i)
{
    if (!o || i < 0 || i >= o->n) return -1;
    return (int64_t)((const double *)o->scalars->data)[i * SC_N + SC_STEP];
}

int bg_optim_state(const bg_optim *o, bg_tensor **out, int cap)
{
    int k = 0;
    for (int i = 0; i < o->n * NBUF; i++) {
        if (!o->bufs[i]) continue;
        if (out && k < cap) out[k] = o->bufs[i];
        k++;
    }
    if (out && k < cap) out[k] = o->scalars;
    return k + 1;
}

bg_tensor *bg_optim_asgd_ax(const bg_optim *o, int i)
{
    if (!o || o->cfg.kind != BG_OPT_ASGD || i < 0 || i >= o->n) return NULL;
    return o->bufs[i * NBUF];
}
