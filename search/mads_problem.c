/* The MADS problem and option records: defaults and validation. Every
 * message names the variable (0-based, as NOMAD's index ranges are) or the
 * output at fault. */
#include <math.h>
#include <string.h>
#include "mads.h"

void bg_mads_problem_init(bg_mads_problem *p, int n, int m)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->m = m;
    for (int i = 0; i < BG_MADS_MAX_DIM; i++) {
        p->type[i] = BG_MADS_REAL;
        p->lb[i] = -INFINITY;
        p->ub[i] = INFINITY;
    }
    p->n_x0 = 1;
    for (int j = 0; j < BG_MADS_MAX_OUT; j++) p->out[j] = j == 0 ? BG_MADS_OBJ : BG_MADS_EXTRA;
}

void bg_mads_options_default(bg_mads_options *o)
{
    memset(o, 0, sizeof *o);
    o->direction = BG_MADS_ORTHO_NP1_QUAD;
    o->quad_model_search = true;
    o->speculative_search = true;
    o->speculative_factor = 2.0;
    o->model_sort = true;
    o->opportunistic = true;
    o->anisotropic = true;
    o->anisotropy_factor = 3.0;
    o->min_mesh_size = 1e-13;
    o->h_max0 = INFINITY;
    o->rho = 0.1;
    o->block_size = 1;
    o->vns_search = true;
    o->vns_trigger = 0.75;
    o->ext_poll_trigger = 0.1;
    o->ext_poll_relative = true;
}

const char *bg_mads_stop_name(bg_mads_stop s)
{
    switch (s) {
    case BG_MADS_STOP_NONE: return "none";
    case BG_MADS_STOP_MAX_BB_EVAL: return "maximum number of blackbox evaluations (MAX_BB_EVAL)";
    case BG_MADS_STOP_MAX_TIME: return "maximum wall-clock time (MAX_TIME)";
    case BG_MADS_STOP_MIN_MESH: return "minimum mesh size reached";
    case BG_MADS_STOP_NO_NEW_POINTS: return "finest mesh reached and no new point to evaluate";
    case BG_MADS_STOP_MAX_ITERATIONS: return "maximum number of iterations";
    }
    return "unknown";
}

static const char *type_name(bg_mads_vartype t)
{
    return t == BG_MADS_REAL ? "R" : t == BG_MADS_INTEGER ? "I" : t == BG_MADS_BINARY ? "B" : "C";
}

bg_status bg_mads_problem_check(bg_ctx *ctx, const bg_mads_problem *p)
{
    if (!p) return bg_fail(ctx, BG_ERR_ARG, "mads: NULL problem");
    if (p->n < 1 || p->n > BG_MADS_MAX_DIM)
        return bg_fail(ctx, BG_ERR_ARG, "mads: dimension %d out of range 1..%d", p->n, BG_MADS_MAX_DIM);
    if (p->m < 1 || p->m > BG_MADS_MAX_OUT)
        return bg_fail(ctx, BG_ERR_ARG, "mads: %d outputs, out of range 1..%d", p->m, BG_MADS_MAX_OUT);
    if (p->n_x0 < 1 || p->n_x0 > BG_MADS_MAX_X0)
        return bg_fail(ctx, BG_ERR_ARG, "mads: %d starting points, out of range 1..%d", p->n_x0, BG_MADS_MAX_X0);
    int nobj = 0, ncnt = 0;
    for (int j = 0; j < p->m; j++) {
        if ((unsigned)p->out[j] > BG_MADS_EXTRA)
            return bg_fail(ctx, BG_ERR_ARG, "mads: output %d has an unknown type %d", j, (int)p->out[j]);
        nobj += p->out[j] == BG_MADS_OBJ;
        ncnt += p->out[j] == BG_MADS_CNT_EVAL;
    }
    if (nobj != 1)
        return bg_fail(ctx, BG_ERR_ARG, "mads: %s (bi-objective runs are not supported)",
                       nobj ? "more than one OBJ output" : "no OBJ output");
    if (ncnt > 1) return bg_fail(ctx, BG_ERR_ARG, "mads: more than one CNT_EVAL output");
    for (int i = 0; i < p->n; i++) {
        bg_mads_vartype t = p->type[i];
        if ((unsigned)t > BG_MADS_CATEGORICAL)
            return bg_fail(ctx, BG_ERR_ARG, "mads: variable %d has an unknown type %d", i, (int)t);
        double lb = p->lb[i], ub = p->ub[i];
        if (isnan(lb) || isnan(ub) || lb > ub || lb == INFINITY || ub == -INFINITY)
            return bg_fail(ctx, BG_ERR_ARG, "mads: variable %d has bounds [%g, %g]", i, lb, ub);
        double g = p->granularity[i];
        if (!(g >= 0) || !isfinite(g))
            return bg_fail(ctx, BG_ERR_ARG, "mads: variable %d has granularity %g", i, g);
        if (!(p->frame0[i] >= 0) || !isfinite(p->frame0[i]))
            return bg_fail(ctx, BG_ERR_ARG, "mads: variable %d has initial frame size %g", i, p->frame0[i]);
        if (t == BG_MADS_CATEGORICAL && !(isfinite(lb) && isfinite(ub)))
            return bg_fail(ctx, BG_ERR_ARG, "mads: categorical variable %d needs finite bounds", i);
        if (t == BG_MADS_BINARY && (lb > 1 || ub < 0))
            return bg_fail(ctx, BG_ERR_ARG, "mads: binary variable %d has bounds [%g, %g] outside [0, 1]", i, lb, ub);
        if (t != BG_MADS_REAL && floor(ub) < ceil(lb))
            return bg_fail(ctx, BG_ERR_ARG, "mads: %s variable %d has no integer in [%g, %g]", type_name(t), i, lb, ub);
        for (int k = 0; k < p->n_x0; k++) {
            double v = p->x0[k][i];
            if (!isfinite(v))
                return bg_fail(ctx, BG_ERR_ARG, "mads: X0 %d, variable %d is %g", k, i, v);
            if (v < lb || v > ub)
                return bg_fail(ctx, BG_ERR_ARG, "mads: X0 %d, variable %d = %g is outside its bounds [%g, %g]", k, i,
                               v, lb, ub);
            if (t != BG_MADS_REAL && v != floor(v))
                return bg_fail(ctx, BG_ERR_ARG, "mads: X0 %d, variable %d = %g is not an integer (type %s)", k, i, v,
                               type_name(t));
            if (t == BG_MADS_BINARY && v != 0 && v != 1)
                return bg_fail(ctx, BG_ERR_ARG, "mads: X0 %d, binary variable %d = %g", k, i, v);
            if (t == BG_MADS_REAL && g > 0 && fabs(v / g - round(v / g)) > 1e-9)
                return bg_fail(ctx, BG_ERR_ARG, "mads: X0 %d, variable %d = %g is not a multiple of its granularity %g",
                               k, i, v, g);
        }
    }
    return BG_OK;
}
