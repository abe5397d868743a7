/* The search spaces of the HAET 2021 system (seed-spec §1.3, §1.4) and the
 * decoding of a point into `budgie train` options.
 *
 * NAS: the depth, width and resolution multipliers of the recipe's model
 * family, bounds (0.25 0.05 0.125) / (4 2.5 10) and X0 the recipe's own
 * values (the seed: 1 1 1). The model builder applies the seed's rounding
 * (blocks int(round(2d)), widths round(c*w) or 8*floor(c*w/8), side
 * int(32r)); the variables move on a 0.01 mesh, and points that round to the
 * same network are recognised by the driver and not trained twice.
 *
 * HPO: the seed's final decoding with lr and wd on log scales: lr =
 * 10^x * the optimizer's multiplier, wd = 10^x, optimizer one of seven
 * (categorical), batch = 2^x (an integer exponent: the seed's 128/256/512 are
 * its values 7..9). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../models/model.h"
#include "drive.h"

static const char *const optim_names[BG_DRIVE_N_OPTIM] = {"adadelta", "adagrad", "sgd", "adam",
                                                          "adamw", "adamax", "asgd"};
static const double optim_scale[BG_DRIVE_N_OPTIM] = {10, 0.1, 1, 0.01, 0.01, 0.02, 0.1};

const char *bg_drive_optim_name(int k) { return k >= 1 && k <= BG_DRIVE_N_OPTIM ? optim_names[k - 1] : "?"; }
double bg_drive_optim_lr_scale(int k) { return k >= 1 && k <= BG_DRIVE_N_OPTIM ? optim_scale[k - 1] : 1; }

static double snap(double v, double g) { return g > 0 ? round(v / g) * g : v; }

static void add_var(bg_drive_space *s, const char *name, bg_mads_vartype t, double lb, double ub, double x0,
                    double g, const char *help)
{
    bg_drive_var *v = &s->v[s->n++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->help, sizeof v->help, "%s", help);
    v->type = t, v->granularity = g, v->x0 = snap(x0, g);
    /* the seed's bounds, widened to hold the recipe's own value */
    v->lb = fmin(lb, v->x0), v->ub = fmax(ub, v->x0);
}

/* The value of key in a spec ("w" in "senet18:w=0.67,d=1"), or dflt. */
static double spec_value(const char *spec, const char *key, double dflt)
{
    const char *colon = strchr(spec, ':');
    const size_t kl = strlen(key);
    for (const char *p = colon; p; p = strchr(p + 1, ','))
        if (!strncmp(p + 1, key, kl) && p[1 + kl] == '=') return strtod(p + 2 + kl, NULL);
    return dflt;
}

bg_status bg_drive_space_nas(bg_ctx *ctx, bg_drive_space *s, const char *model, const char *vars)
{
    memset(s, 0, sizeof *s);
    s->kind = BG_DRIVE_NAS;
    snprintf(s->model, sizeof s->model, "%s", model);
    if (bg_model_spec_check(ctx, model)) return ctx->status;
    const char *colon = strchr(model, ':');
    const int fl = colon ? (int)(colon - model) : (int)strlen(model);
    static const char *const keys[3] = {"d", "w", "r"};
    static const double lb[3] = {0.25, 0.05, 0.125}, ub[3] = {4, 2.5, 10};
    static const char *const help[3] = {"blocks per stage int(round(2d))", "widths round(c*w) (resnet18: 8*floor(c*w/8))",
                                        "input side int(32r)"};
    bool has[3];
    char probe[64], fam_keys[64] = "";
    for (int k = 0; k < 3; k++) {
        snprintf(probe, sizeof probe, "%.*s:%s=1", fl, model, keys[k]);
        bg_ctx c2;
        bg_ctx_init(&c2, BG_CPU, 0);
        has[k] = bg_model_spec_check(&c2, probe) == BG_OK;
        bg_ctx_free(&c2);
        if (has[k]) snprintf(fam_keys + strlen(fam_keys), sizeof fam_keys - strlen(fam_keys), "%s%s",
                             fam_keys[0] ? ", " : "", keys[k]);
    }
    /* r is left out unless asked for: budgie train feeds the images at their
     * stored size (no Resize((s, s)) stage yet), so a different r would only
     * change the MAC count, not what trains (docs/search.md) */
    const char *want = vars ? vars : "d,w";
    char buf[64];
    snprintf(buf, sizeof buf, "%s", want);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < 3 && strcmp(tok, keys[k])) k++;
        if (k == 3)
            return bg_fail(ctx, BG_ERR_ARG, "--vars: unknown search variable '%s' (the nas variables are d, w, r)", tok);
        if (!has[k]) {
            if (!vars) continue;
            return bg_fail(ctx, BG_ERR_ARG, "--vars: the model family of '%s' has no '%s' multiplier (it has: %s)",
                           model, tok, fam_keys[0] ? fam_keys : "none");
        }
        for (int j = 0; j < s->n; j++)
            if (!strcmp(s->v[j].name, tok)) return bg_fail(ctx, BG_ERR_ARG, "--vars: '%s' given twice", tok);
        add_var(s, keys[k], BG_MADS_REAL, lb[k], ub[k], spec_value(model, keys[k], 1), 0.01, help[k]);
    }
    if (s->n == 0)
        return bg_fail(ctx, BG_ERR_ARG, "model '%s': no depth/width multiplier to search (the family has: %s; "
                       "--vars names them)", model, fam_keys[0] ? fam_keys : "none");
    return BG_OK;
}

bg_status bg_drive_space_hpo(bg_ctx *ctx, bg_drive_space *s, double lr, double wd, const char *optimizer, long batch)
{
    memset(s, 0, sizeof *s);
    s->kind = BG_DRIVE_HPO;
    snprintf(s->optimizer, sizeof s->optimizer, "%s", optimizer);
    int ok = 0;
    for (int k = 1; k <= BG_DRIVE_N_OPTIM; k++)
        if (!strcmp(optimizer, bg_drive_optim_name(k))) ok = k;
    if (!ok)
        return bg_fail(ctx, BG_ERR_ARG, "optimizer: '%s' is not one of the seven the search knows (adadelta, adagrad, "
                       "sgd, adam, adamw, adamax, asgd)", optimizer);
    if (!(lr > 0)) return bg_fail(ctx, BG_ERR_ARG, "lr: %g; the search needs lr > 0 for its log scale", lr);
    if (batch < 1) return bg_fail(ctx, BG_ERR_ARG, "batch: %ld; the search needs a fixed batch (not auto)", batch);
    add_var(s, "lr", BG_MADS_REAL, -3, -0.22, log10(lr / bg_drive_optim_lr_scale(ok)), 0.01,
            "lr = 10^x times the optimizer's multiplier");
    /* wd 0 has no logarithm: X0 starts at the lower bound */
    add_var(s, "wd", BG_MADS_REAL, -6, -0.3, wd > 0 ? log10(wd) : -6, 0.01, "wd = 10^x");
    add_var(s, "optimizer", BG_MADS_CATEGORICAL, 1, BG_DRIVE_N_OPTIM, ok, 0,
            "1 adadelta(10x) 2 adagrad(/10) 3 sgd 4 adam(/100) 5 adamw(/100) 6 adamax(/50) 7 asgd(/10)");
    add_var(s, "batch", BG_MADS_INTEGER, 7, 9, round(log2((double)batch)), 0, "batch = 2^x");
    return BG_OK;
}

bg_status bg_drive_space_bounds(bg_ctx *ctx, bg_drive_space *s, const char *text)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *colon = eq ? strchr(eq, ':') : NULL;
        if (!eq || !colon) return bg_fail(ctx, BG_ERR_ARG, "--bounds: '%s' is not name=lo:hi", tok);
        *eq = *colon = 0;
        bg_drive_var *v = NULL;
        char names[96] = "";
        for (int i = 0; i < s->n; i++) {
            if (!strcmp(s->v[i].name, tok)) v = &s->v[i];
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", s->v[i].name);
        }
        if (!v) return bg_fail(ctx, BG_ERR_ARG, "--bounds: unknown search variable '%s' (this search has: %s)", tok, names);
        char *e1, *e2;
        const double lo = strtod(eq + 1, &e1), hi = strtod(colon + 1, &e2);
        if (e1 == eq + 1 || *e1 || e2 == colon + 1 || *e2 || !isfinite(lo) || !isfinite(hi))
            return bg_fail(ctx, BG_ERR_ARG, "--bounds: %s=%s:%s needs two numbers", tok, eq + 1, colon + 1);
        if (lo > hi) return bg_fail(ctx, BG_ERR_ARG, "--bounds: %s has lower bound %g > upper bound %g", tok, lo, hi);
        if (v->x0 < lo || v->x0 > hi)
            return bg_fail(ctx, BG_ERR_ARG, "--bounds: %s in [%g, %g] leaves out the recipe's value %g (X0)", tok, lo,
                           hi, v->x0);
        if (v->type != BG_MADS_REAL && floor(hi) < ceil(lo))
            return bg_fail(ctx, BG_ERR_ARG, "--bounds: %s in [%g, %g] holds no integer", tok, lo, hi);
        v->lb = lo, v->ub = hi;
    }
    return BG_OK;
}

void bg_drive_space_problem(const bg_drive_space *s, int m, bg_mads_problem *p)
{
    bg_mads_problem_init(p, s->n, m);
    for (int i = 0; i < s->n; i++) {
        p->type[i] = s->v[i].type;
        p->lb[i] = s->v[i].lb, p->ub[i] = s->v[i].ub;
        p->granularity[i] = s->v[i].type == BG_MADS_REAL ? s->v[i].granularity : 0;
        p->x0[0][i] = s->v[i].x0;
    }
}

/* The recipe's spec with the search's multipliers put in. */
static void nas_spec(const bg_drive_space *s, const double *x, char *out, size_t cap)
{
    const char *colon = strchr(s->model, ':');
    int n = snprintf(out, cap, "%.*s", colon ? (int)(colon - s->model) : (int)strlen(s->model), s->model);
    bool first = true;
    if (colon) {
        char buf[192];
        snprintf(buf, sizeof buf, "%s", colon + 1);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            bool searched = false;
            for (int i = 0; i < s->n; i++)
                if (!strncmp(tok, s->v[i].name, strlen(s->v[i].name)) && tok[strlen(s->v[i].name)] == '=')
                    searched = true;
            if (searched) continue;
            n += snprintf(out + n, cap > (size_t)n ? cap - (size_t)n : 0, "%s%s", first ? ":" : ",", tok);
            first = false;
        }
    }
    for (int i = 0; i < s->n; i++) {
        n += snprintf(out + n, cap > (size_t)n ? cap - (size_t)n : 0, "%s%s=%.10g", first ? ":" : ",", s->v[i].name,
                      snap(x[i], s->v[i].granularity));
        first = false;
    }
}

bg_status bg_drive_decode(bg_ctx *ctx, const bg_drive_space *s, const double *x, char *buf, size_t cap,
                          const char **args, int *n)
{
    size_t used = 0;
    *n = 0;
#define PUT(...)                                                                                \
    do {                                                                                        \
        int w_ = snprintf(buf + used, cap - used, __VA_ARGS__);                                 \
        if (w_ < 0 || (size_t)w_ + 1 > cap - used)                                              \
            return bg_fail(ctx, BG_ERR_ARG, "search: a point's options do not fit %zu bytes", cap); \
        args[(*n)++] = buf + used;                                                              \
        used += (size_t)w_ + 1;                                                                 \
    } while (0)
    if (s->kind == BG_DRIVE_NAS) {
        char spec[256];
        nas_spec(s, x, spec, sizeof spec);
        PUT("--model");
        PUT("%s", spec);
        return BG_OK;
    }
    const int opt = (int)lround(x[2]);
    PUT("--optimizer");
    PUT("%s", bg_drive_optim_name(opt));
    PUT("--lr");
    PUT("%.6g", pow(10, snap(x[0], 0.01)) * bg_drive_optim_lr_scale(opt));
    PUT("--wd");
    PUT("%.6g", pow(10, snap(x[1], 0.01)));
    PUT("--batch");
    PUT("%ld", (long)lround(pow(2, x[3])));
#undef PUT
    return BG_OK;
}

void bg_drive_decode_line(const bg_drive_space *s, const double *x, char *out, size_t cap)
{
    char buf[1024];
    const char *args[BG_DRIVE_MAX_ARGS];
    int n = 0;
    bg_ctx c;
    bg_ctx_init(&c, BG_CPU, 0);
    out[0] = 0;
    if (bg_drive_decode(&c, s, x, buf, sizeof buf, args, &n) == BG_OK) {
        size_t used = 0;
        for (int i = 0; i < n && used < cap; i++)
            used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? " " : "", args[i]);
    }
    bg_ctx_free(&c);
}
