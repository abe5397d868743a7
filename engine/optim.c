/* The optimizer object: config checks, state allocation and the per-step
 * scalars. The per-element math lives in optim_kernels.inc (CPU) and
 * kernels/optim.cu (CUDA, the same operations in the same order).
 *
 * CUDA parameters (f32 or f16) keep their state in f32 on the device; an f16
 * parameter also gets an f32 master copy, which is what the update works on
 * (the f16 tensor is the working copy the kernel rewrites from it). Each
 * step describes the parameters that have a gradient in a host table
 * (pointers, sizes, the per-step scalars cast to f32 exactly as the CPU loop
 * casts them) cut into chunks, uploads it, and launches one kernel over all
 * of them. The per-parameter step counts advance on the host afterwards
 * (commit), or not at all for a step the loss scaler skipped. */
#include "optim.h"
#include "alloc.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#include "../kernels/optim.h"
#include "../kernels/shape.h"
#endif

/* At most three state buffers per parameter (Adam with amsgrad). */
#define NBUF 3

#ifdef BG_WITH_CUDA
/* The device tables of one CUDA step (see kernels/optim.h). */
typedef struct {
    bg_opt_tensor *h_tensors;  /* n entries, host staging */
    bg_opt_chunk *h_chunks;    /* max_chunks, host staging */
    int *h_param;              /* entry -> parameter index */
    void *d_tensors, *d_chunks;
    size_t d_tensors_bytes, d_chunks_bytes;
    int64_t max_chunks;
    int n_entries;             /* of the last prepare */
    int64_t n_chunks;          /* of the last prepare */
} cuda_tables;
#endif

struct bg_optim {
    bg_optim_config cfg;
    int n;
    bg_tensor **params;
    bg_tensor **bufs;     /* n * NBUF, NULL where the kind has no such buffer */
    bg_tensor *scalars;   /* {n, 3} f64: step, eta, mu (see bg_optim_state) */
    bg_device device;     /* of every parameter */
    bg_tensor **master;   /* n; the f32 master of an f16 CUDA parameter, else NULL */
#ifdef BG_WITH_CUDA
    cuda_tables cu;
#endif
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
    if (p->device == BG_CUDA) {
        /* The update needs a device: without one (or without CUDA in the
         * build) a CUDA parameter is refused before its storage is touched. */
        if (!bg_cuda_available())
            return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s: parameter %s is on cuda, and no CUDA device is available",
                           on, nm);
        if (!p->data && bg_numel(p) > 0)
            return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s: parameter %s is on cuda without device storage", on, nm);
        if (p->dtype != BG_F32 && p->dtype != BG_F16)
            return bg_fail(ctx, BG_ERR_DTYPE, "optimizer %s: parameter %s is %s; CUDA updates need f32 or f16",
                           on, nm, bg_dtype_name(p->dtype));
    } else if (p->device != BG_CPU) {
        return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s: parameter %s is on device %d", on, nm, (int)p->device);
    } else if (p->dtype != BG_F32 && p->dtype != BG_F64) {
        return bg_fail(ctx, BG_ERR_DTYPE, "optimizer %s: parameter %s is %s; updates need f32 or f64",
                       on, nm, bg_dtype_name(p->dtype));
    }
    if (i > 0 && params[0] && p->device != params[0]->device) {
        char n0[64];
        return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s: parameter %s is on %s but %s is on %s (one device per optimizer)",
                       on, nm, bg_device_name(p->device), pname(params[0], 0, n0, sizeof n0),
                       bg_device_name(params[0]->device));
    }
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

/* A state tensor shaped like parameter p: the parameter's dtype on the CPU,
 * f32 on CUDA (the update runs in f32 there, whatever the parameter). */
static bg_tensor *state_like(bg_ctx *ctx, const bg_tensor *p, const char *name)
{
    if (p->device == BG_CPU) return bg_tensor_like(ctx, p, name);
    return bg_tensor_new(ctx, p->device, BG_F32, p->ndim, p->shape, name);
}

size_t bg_optim_state_bytes(const bg_optim_config *cfg, bg_tensor *const *params, int n, bg_device device)
{
    const char *bn[NBUF];
    buffer_names(cfg, bn);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        for (int b = 0; b < NBUF; b++)
            if (bn[b] && params[i]->device == device) /* as state_like allocates them */
                total += bg_alloc_rounded(params[i]->device == BG_CPU ? bg_nbytes(params[i]) : (size_t)bg_numel(params[i]) * 4);
    if (device == BG_CPU && n > 0) total += bg_alloc_rounded((size_t)n * SC_N * sizeof(double)); /* optim.scalars */
    return total;
}

/* Every element of a state tensor set to v, on any device. */
static bg_status fill_state(bg_ctx *ctx, bg_tensor *t, double v)
{
    if (v == 0.0) return bg_tensor_zero(ctx, t);
    if (t->device == BG_CPU) return bg_tensor_fill_const(ctx, t, v);
    bg_tensor *h = bg_tensor_new(ctx, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
    if (!h) return ctx->status;
    bg_status s = bg_tensor_fill_const(ctx, h, v);
    if (!s) s = bg_tensor_copy(ctx, t, h);
    bg_tensor_free(ctx, h);
    return s;
}

#ifdef BG_WITH_CUDA
static bg_status cuda_launched(bg_ctx *ctx, const bg_optim *o, const char *what)
{
    char err[200];
    if (bg_cuda_check_launch(err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "optimizer %s: %s: %s", NAMES[o->cfg.kind], what, err);
    return BG_OK;
}

/* master = f32 copy of each f16 parameter. */
static bg_status cuda_sync_master(bg_ctx *ctx, bg_optim *o)
{
    for (int i = 0; i < o->n; i++) {
        if (!o->master[i]) continue;
        bg_cuda_cast(o->params[i]->data, 1, o->master[i]->data, 0, bg_numel(o->params[i]), ctx->stream);
        bg_status s = cuda_launched(ctx, o, "master copy");
        if (s) return s;
    }
    return BG_OK;
}

/* Masters for the f16 parameters and the device tables, sized for every
 * parameter at once, so a step allocates nothing (a captured step must not). */
static bg_status cuda_init(bg_ctx *ctx, bg_optim *o)
{
    o->master = calloc((size_t)o->n, sizeof *o->master);
    cuda_tables *cu = &o->cu;
    cu->h_tensors = calloc((size_t)o->n, sizeof *cu->h_tensors);
    cu->h_param = calloc((size_t)o->n, sizeof *cu->h_param);
    if (!o->master || !cu->h_tensors || !cu->h_param)
        return bg_fail(ctx, BG_ERR_OOM, "optimizer %s: out of host memory", NAMES[o->cfg.kind]);
    for (int i = 0; i < o->n; i++) {
        const bg_tensor *p = o->params[i];
        cu->max_chunks += (bg_numel(p) + BG_OPT_CHUNK - 1) / BG_OPT_CHUNK;
        if (p->dtype != BG_F16) continue;
        char name[48];
        snprintf(name, sizeof name, "optim.%d.master", i);
        o->master[i] = bg_tensor_new(ctx, BG_CUDA, BG_F32, p->ndim, p->shape, name);
        if (!o->master[i]) return ctx->status ? ctx->status : BG_ERR_OOM;
    }
    cu->h_chunks = calloc((size_t)(cu->max_chunks ? cu->max_chunks : 1), sizeof *cu->h_chunks);
    if (!cu->h_chunks) return bg_fail(ctx, BG_ERR_OOM, "optimizer %s: out of host memory", NAMES[o->cfg.kind]);
    cu->d_tensors_bytes = (size_t)o->n * sizeof(bg_opt_tensor);
    cu->d_chunks_bytes = (size_t)(cu->max_chunks ? cu->max_chunks : 1) * sizeof(bg_opt_chunk);
    bg_status s = bg_alloc(ctx, BG_CUDA, cu->d_tensors_bytes, "optim.tensor_table", &cu->d_tensors);
    if (!s) s = bg_alloc(ctx, BG_CUDA, cu->d_chunks_bytes, "optim.chunk_table", &cu->d_chunks);
    if (!s) s = cuda_sync_master(ctx, o);
    return s;
}

static void cuda_free(bg_ctx *ctx, bg_optim *o)
{
    cuda_tables *cu = &o->cu;
    if (cu->d_tensors) bg_free(ctx, BG_CUDA, cu->d_tensors, cu->d_tensors_bytes);
    if (cu->d_chunks) bg_free(ctx, BG_CUDA, cu->d_chunks, cu->d_chunks_bytes);
    free(cu->h_tensors);
    free(cu->h_chunks);
    free(cu->h_param);
}
#endif

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

    o->device = params[0]->device;
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
            bg_tensor *t = state_like(ctx, params[i], name);
            if (!t) s = ctx->status ? ctx->status : BG_ERR_OOM;
            else {
                o->bufs[i * NBUF + b] = t;
                s = fill_state(ctx, t, fill);
            }
        }
    }
#ifdef BG_WITH_CUDA
    if (!s && o->device == BG_CUDA) s = cuda_init(ctx, o);
#endif
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
    if (o->master)
        for (int i = 0; i < o->n; i++) bg_tensor_free(ctx, o->master[i]);
    free(o->master);
#ifdef BG_WITH_CUDA
    cuda_free(ctx, o);
#endif
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
    if (p->device != o->device || g->device != o->device)
        return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s: parameter %s or its grad is not on the %s", on, nm,
                       o->device == BG_CPU ? "CPU" : "GPU");
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

/* The per-step scalars of parameter i's next update, in double (the CPU
 * loops and the CUDA table cast them to the element type). */
typedef union {
    sgd_k sgd;
    adam_k adam;
    adamax_k adamax;
    adagrad_k adagrad;
    adadelta_k adadelta;
    asgd_k asgd;
} step_k;

static step_k step_scalars(const bg_optim *o, int i)
{
    const bg_optim_config *c = &o->cfg;
    const double *sc = (const double *)o->scalars->data + i * SC_N;
    /* torch increments step before using it (SGD and Adadelta ignore it). */
    const double step = sc[SC_STEP] + 1;
    step_k k;
    memset(&k, 0, sizeof k);
    switch (c->kind) {
    case BG_OPT_SGD:
        k.sgd = (sgd_k){c->weight_decay, c->momentum, c->dampening, c->lr, c->nesterov, sc[SC_STEP] == 0};
        break;
    case BG_OPT_ADAM:
    case BG_OPT_ADAMW: {
        const bool w = c->kind == BG_OPT_ADAMW;
        k.adam = (adam_k){
            .wd = w ? 0.0 : c->weight_decay,
            .decay = w ? 1.0 - c->lr * c->weight_decay : 1.0,
            .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
            .step_size = c->lr / (1.0 - pow(c->beta1, step)),
            .bc2_sqrt = sqrt(1.0 - pow(c->beta2, step)),
            .decoupled = w,
        };
        break;
    }
    case BG_OPT_ADAMAX:
        k.adamax = (adamax_k){c->weight_decay, c->beta1, c->beta2, c->eps, c->lr / (1.0 - pow(c->beta1, step))};
        break;
    case BG_OPT_ADAGRAD:
        k.adagrad = (adagrad_k){c->weight_decay, c->eps, c->lr / (1.0 + (step - 1.0) * c->lr_decay)};
        break;
    case BG_OPT_ADADELTA: k.adadelta = (adadelta_k){c->weight_decay, c->rho, c->eps, c->lr}; break;
    case BG_OPT_ASGD: {
        const double eta = sc[SC_ETA], mu = sc[SC_MU];
        k.asgd = (asgd_k){c->weight_decay, 1.0 - c->lambd * eta, eta, mu};
        break;
    }
    default: break;
    }
    return k;
}

/* After an update of parameter i: its step count, and ASGD's next eta and
 * mu, f32-rounded as torch stores them. */
static void advance(bg_optim *o, int i)
{
    const bg_optim_config *c = &o->cfg;
    double *sc = (double *)o->scalars->data + i * SC_N;
    const double step = sc[SC_STEP] + 1;
    if (c->kind == BG_OPT_ASGD) {
        sc[SC_ETA] = (double)(float)(c->lr / pow(1.0 + c->lambd * c->lr * step, c->alpha));
        sc[SC_MU] = (double)(float)(1.0 / fmax(1.0, step - c->t0));
    }
    sc[SC_STEP] = step;
}

static void update_one(bg_optim *o, int i)
{
    const bg_optim_config *c = &o->cfg;
    bg_tensor *p = o->params[i];
    bg_tensor **bt = &o->bufs[i * NBUF];
    void *b0 = bt[0] ? bt[0]->data : NULL, *b1 = bt[1] ? bt[1]->data : NULL;
    void *b2 = bt[2] ? bt[2]->data : NULL;
    const bool f64 = p->dtype == BG_F64;
    const int64_t n = bg_numel(p);
    void *pd = p->data;
    const void *gd = p->grad->data;
    const step_k k = step_scalars(o, i);

#define DISPATCH(fn, ...) \
    do { if (f64) fn##_f64(pd, gd, __VA_ARGS__); else fn##_f32(pd, gd, __VA_ARGS__); } while (0)
    switch (c->kind) {
    case BG_OPT_SGD: DISPATCH(sgd_update, b0, n, &k.sgd); break;
    case BG_OPT_ADAM:
    case BG_OPT_ADAMW: DISPATCH(adam_update, b0, b1, b2, n, &k.adam); break;
    case BG_OPT_ADAMAX: DISPATCH(adamax_update, b0, b1, n, &k.adamax); break;
    case BG_OPT_ADAGRAD: DISPATCH(adagrad_update, b0, n, &k.adagrad); break;
    case BG_OPT_ADADELTA: DISPATCH(adadelta_update, b0, b1, n, &k.adadelta); break;
    case BG_OPT_ASGD: DISPATCH(asgd_update, b0, n, &k.asgd); break;
    default: break;
    }
#undef DISPATCH
    advance(o, i);
}

static bg_status check_grads(bg_ctx *ctx, const bg_optim *o)
{
    /* Check everything first so a bad grad leaves every parameter untouched. */
    for (int i = 0; i < o->n; i++) {
        if (!o->params[i]->grad) continue;
        bg_status s = check_grad(ctx, o, i);
        if (s) return s;
    }
    return BG_OK;
}

/* ---- the CUDA step ---- */
#ifdef BG_WITH_CUDA
/* Parameter i's table entry: pointers and the f32 scalars, cast exactly as
 * optim_kernels.inc casts them for T = float. */
static bg_opt_tensor cuda_entry(const bg_optim *o, int i)
{
    const bg_optim_config *c = &o->cfg;
    const bg_tensor *p = o->params[i];
    bg_tensor *const *bt = &o->bufs[i * NBUF];
    bg_opt_tensor e;
    memset(&e, 0, sizeof e);
    e.p = o->master[i] ? o->master[i]->data : p->data;
    e.p16 = o->master[i] ? p->data : NULL;
    e.g = p->grad->data;
    e.g_half = p->grad->dtype == BG_F16;
    e.b0 = bt[0] ? bt[0]->data : NULL;
    e.b1 = bt[1] ? bt[1]->data : NULL;
    e.b2 = bt[2] ? bt[2]->data : NULL;
    e.n = bg_numel(p);
    const step_k k = step_scalars(o, i);
    float *f = e.s;
    switch (c->kind) {
    case BG_OPT_SGD:
        f[0] = (float)k.sgd.wd, f[1] = (float)k.sgd.momentum, f[2] = (float)(1.0 - k.sgd.dampening);
        f[3] = (float)(-k.sgd.lr);
        e.flags = (k.sgd.wd != 0 ? BG_OPTF_WD : 0) | (k.sgd.first ? BG_OPTF_FIRST : 0) |
                  (k.sgd.nesterov ? BG_OPTF_NESTEROV : 0);
        break;
    case BG_OPT_ADAM:
    case BG_OPT_ADAMW:
        f[0] = (float)k.adam.wd, f[1] = (float)k.adam.decay, f[2] = (float)k.adam.beta1, f[3] = (float)k.adam.beta2;
        f[4] = (float)(1.0 - k.adam.beta1), f[5] = (float)(1.0 - k.adam.beta2), f[6] = (float)k.adam.bc2_sqrt;
        f[7] = (float)k.adam.eps, f[8] = (float)(-k.adam.step_size);
        e.flags = (k.adam.wd != 0 ? BG_OPTF_WD : 0) | (k.adam.decoupled ? BG_OPTF_DECOUPLED : 0);
        break;
    case BG_OPT_ADAMAX:
        f[0] = (float)k.adamax.wd, f[1] = (float)k.adamax.beta1, f[2] = (float)k.adamax.beta2;
        f[3] = (float)(1.0 - k.adamax.beta1), f[4] = (float)k.adamax.eps, f[5] = (float)(-k.adamax.clr);
        e.flags = k.adamax.wd != 0 ? BG_OPTF_WD : 0;
        break;
    case BG_OPT_ADAGRAD:
        f[0] = (float)k.adagrad.wd, f[1] = (float)k.adagrad.eps, f[2] = (float)(-k.adagrad.clr);
        e.flags = k.adagrad.wd != 0 ? BG_OPTF_WD : 0;
        break;
    case BG_OPT_ADADELTA:
        f[0] = (float)k.adadelta.wd, f[1] = (float)k.adadelta.rho, f[2] = (float)(1.0 - k.adadelta.rho);
        f[3] = (float)k.adadelta.eps, f[4] = (float)(-k.adadelta.lr);
        e.flags = k.adadelta.wd != 0 ? BG_OPTF_WD : 0;
        break;
    case BG_OPT_ASGD:
        f[0] = (float)k.asgd.wd, f[1] = (float)k.asgd.decay, f[2] = (float)(-k.asgd.eta), f[3] = (float)k.asgd.mu;
        e.flags = (k.asgd.wd != 0 ? BG_OPTF_WD : 0) | (k.asgd.mu != 1.0 ? BG_OPTF_AVERAGE : 0);
        break;
    default: break;
    }
    return e;
}
#endif

/* The kernel's kind constants are bg_optim_kind's values. */
#ifdef BG_WITH_CUDA
_Static_assert(BG_OPTK_SGD == (int)BG_OPT_SGD && BG_OPTK_ADAM == (int)BG_OPT_ADAM &&
                   BG_OPTK_ADAMW == (int)BG_OPT_ADAMW && BG_OPTK_ADAMAX == (int)BG_OPT_ADAMAX &&
                   BG_OPTK_ADAGRAD == (int)BG_OPT_ADAGRAD && BG_OPTK_ADADELTA == (int)BG_OPT_ADADELTA &&
                   BG_OPTK_ASGD == (int)BG_OPT_ASGD,
               "kernels/optim.h kinds must match bg_optim_kind");
#endif

static bg_status need_cuda(bg_ctx *ctx, const bg_optim *o, const char *what)
{
    if (!o) return bg_fail(ctx, BG_ERR_ARG, "optimizer %s: NULL optimizer", what);
    if (o->device != BG_CUDA)
        return bg_fail(ctx, BG_ERR_DEVICE, "optimizer %s %s: the parameters are on the %s", NAMES[o->cfg.kind], what,
                       bg_device_name(o->device));
#ifdef BG_WITH_CUDA
    return BG_OK;
#else
    return bg_fail(ctx, BG_ERR_UNSUPPORTED, "optimizer %s %s: this build has no CUDA", NAMES[o->cfg.kind], what);
#endif
}

bg_status bg_optim_cuda_prepare(bg_ctx *ctx, bg_optim *o, bool *layout_changed)
{
    bg_status s = need_cuda(ctx, o, "prepare");
    if (s) return s;
    if ((s = check_grads(ctx, o))) return s;
#ifdef BG_WITH_CUDA
    cuda_tables *cu = &o->cu;
    int ne = 0;
    int64_t nc = 0;
    bool changed = false;
    for (int i = 0; i < o->n; i++) {
        if (!o->params[i]->grad) continue;
        bg_opt_tensor e = cuda_entry(o, i);
        /* the grid and the tables' pointers are what a captured launch keeps */
        if (ne >= cu->n_entries || cu->h_param[ne] != i || cu->h_tensors[ne].g != e.g) changed = true;
        cu->h_tensors[ne] = e;
        cu->h_param[ne] = i;
        for (int64_t start = 0; start < e.n; start += BG_OPT_CHUNK)
            cu->h_chunks[nc++] = (bg_opt_chunk){.tensor = ne, .unused = 0, .start = start};
        ne++;
    }
    changed = changed || ne != cu->n_entries || nc != cu->n_chunks;
    cu->n_entries = ne;
    cu->n_chunks = nc;
    if (layout_changed) *layout_changed = changed;
    char err[200];
    if (ne && bg_cuda_memcpy(cu->d_tensors, cu->h_tensors, (size_t)ne * sizeof *cu->h_tensors, BG_COPY_H2D, ctx->stream,
                             err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "optimizer %s: tensor table upload: %s", NAMES[o->cfg.kind], err);
    if (nc && bg_cuda_memcpy(cu->d_chunks, cu->h_chunks, (size_t)nc * sizeof *cu->h_chunks, BG_COPY_H2D, ctx->stream,
                             err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "optimizer %s: chunk table upload: %s", NAMES[o->cfg.kind], err);
    return BG_OK;
#else
    (void)layout_changed;
    return BG_OK;
#endif
}

bg_status bg_optim_cuda_check_finite(bg_ctx *ctx, const bg_optim *o, const float *inv_scale, int32_t *found_inf)
{
    bg_status s = need_cuda(ctx, o, "inf/NaN check");
    if (s) return s;
#ifdef BG_WITH_CUDA
    bg_cuda_nonfinite_check(o->cu.d_tensors, o->cu.d_chunks, o->cu.n_chunks, inv_scale, found_inf, ctx->stream);
    return cuda_launched(ctx, o, "inf/NaN check");
#else
    (void)inv_scale, (void)found_inf;
    return BG_OK;
#endif
}

bg_status bg_optim_cuda_launch(bg_ctx *ctx, const bg_optim *o, const float *inv_scale, const int32_t *found_inf)
{
    bg_status s = need_cuda(ctx, o, "update");
    if (s) return s;
#ifdef BG_WITH_CUDA
    bg_cuda_optim_update((int)o->cfg.kind, o->cu.d_tensors, o->cu.d_chunks, o->cu.n_chunks, inv_scale, found_inf,
                         ctx->stream);
    return cuda_launched(ctx, o, "update");
#else
    (void)inv_scale, (void)found_inf;
    return BG_OK;
#endif
}

void bg_optim_cuda_commit(bg_optim *o, bool applied)
{
#ifdef BG_WITH_CUDA
    if (!o || o->device != BG_CUDA || !applied) return;
    for (int e = 0; e < o->cu.n_entries; e++) advance(o, o->cu.h_param[e]);
#else
    (void)o, (void)applied;
#endif
}

bg_status bg_optim_sync_master(bg_ctx *ctx, bg_optim *o)
{
    if (!o || o->device != BG_CUDA) return BG_OK;
#ifdef BG_WITH_CUDA
    return cuda_sync_master(ctx, o);
#else
    return BG_OK;
#endif
}

bg_tensor *bg_optim_master(const bg_optim *o, int i)
{
    if (!o || !o->master || i < 0 || i >= o->n) return NULL;
    return o->master[i];
}

bg_status bg_optim_step(bg_ctx *ctx, bg_optim *o)
{
    if (!o) return bg_fail(ctx, BG_ERR_ARG, "optimizer step: NULL optimizer");
    if (o->device == BG_CUDA) {
        bg_status s = bg_optim_cuda_prepare(ctx, o, NULL);
        if (!s) s = bg_optim_cuda_launch(ctx, o, NULL, NULL);
        if (!s) bg_optim_cuda_commit(o, true);
        return s;
    }
    bg_status s = check_grads(ctx, o);
    if (s) return s;
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
    for (int i = 0; o->master && i < o->n; i++) {
        if (!o->master[i]) continue;
        if (out && k < cap) out[k] = o->master[i];
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
