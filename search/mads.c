/* bg_mads_run: the MADS loop (NOMAD 4's Mads iteration, docs/mads.md).
 *   start: evaluate the starting points (one block, not opportunistic);
 *   each iteration, around the primary centre (x_F, or x_I under the
 *   progressive barrier when it is much better):
 *     1. search: speculative, then quadratic model (stop at a success);
 *     2. poll: OrthoMADS directions (+ two around the secondary centre);
 *     3. extended poll when categorical variables exist and 1-2 failed;
 *     4. update: success -> enlarge the frame along the successful
 *        direction; failure -> refine; h_max follows the barrier;
 *   stop on the budget, the time, the minimum mesh size, or (all-granular
 *   problems) when the finest mesh yields nothing new. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mads_run.h"

/* Integer-like variables get integral bounds; binaries live in [0, 1]. */
static void normalise(bg_mads_problem *p)
{
    for (int i = 0; i < p->n; i++) {
        if (p->type[i] == BG_MADS_BINARY) {
            p->lb[i] = fmax(p->lb[i], 0.0);
            p->ub[i] = fmin(p->ub[i], 1.0);
        }
        if (p->type[i] != BG_MADS_REAL) {
            p->lb[i] = ceil(p->lb[i]);
            p->ub[i] = floor(p->ub[i]);
            p->granularity[i] = 1;
        } else if (p->granularity[i] > 0) {
            double g = p->granularity[i];
            p->lb[i] = ceil(p->lb[i] / g - 1e-9) * g;
            p->ub[i] = floor(p->ub[i] / g + 1e-9) * g;
        }
    }
}

static bg_status setup(mads_run *R)
{
    const bg_mads_problem *p = &R->pb;
    const bg_mads_options *o = R->o;
    mads_mesh_init(&R->mesh, p, o->min_mesh_size > 0 ? o->min_mesh_size : 1e-13);
    double scale[MADS_N], tol[MADS_N];
    for (int i = 0; i < p->n; i++) {
        if (p->type[i] == BG_MADS_CATEGORICAL) {
            scale[i] = 1;
            tol[i] = 1e-9;
            continue;
        }
        scale[i] = mads_mesh_frame(&R->mesh, i);
        /* far below the finest mesh a run can reach */
        tol[i] = 1e-3 * R->mesh.min_mesh[i];
    }
    bg_status st = mads_cache_init(R->ctx, &R->cache, p->n, p->m, scale, tol);
    if (!st) st = mads_cache_init(R->ctx, &R->replay, p->n, p->m, scale, tol);
    if (st) return st;
    for (long k = 0; k < o->n_replay; k++) {
        const double *x = o->replay_x + (size_t)k * p->n;
        bool ok = o->replay_ok ? o->replay_ok[k] : true;
        if (mads_cache_find(&R->replay, x) >= 0) continue;
        if (mads_cache_add(R->ctx, &R->replay, x, o->replay_out + (size_t)k * p->m, ok ? MADS_OK : 0) < 0)
            return R->ctx->status;
    }
    R->obj_col = R->cnt_col = -1;
    for (int j = 0; j < p->m; j++) {
        if (p->out[j] == BG_MADS_OBJ) R->obj_col = j;
        if (p->out[j] == BG_MADS_CNT_EVAL) R->cnt_col = j;
        if (p->out[j] == BG_MADS_EB) R->has_eb = true;
    }
    for (int i = 0; i < p->n; i++) R->has_cat |= p->type[i] == BG_MADS_CATEGORICAL;
    int bs = o->block_size > 0 ? o->block_size : 1;
    R->trials = malloc(MADS_MAX_TRIALS * sizeof *R->trials);
    R->evx = malloc((size_t)bs * p->n * sizeof *R->evx);
    R->evout = malloc((size_t)bs * p->m * sizeof *R->evout);
    R->evok = malloc((size_t)bs * sizeof *R->evok);
    R->evsrc = malloc((size_t)bs * sizeof *R->evsrc);
    if (!R->trials || !R->evx || !R->evout || !R->evok || !R->evsrc)
        return bg_fail(R->ctx, BG_ERR_OOM, "mads: out of memory");
    R->xf = R->xi = R->fallback = -1;
    R->hmax = o->h_max0 > 0 ? o->h_max0 : INFINITY;
    R->phase_one = R->has_eb;
    mads_vns_init(R);
    return BG_OK;
}

static void teardown(mads_run *R)
{
    mads_cache_free(&R->cache);
    mads_cache_free(&R->replay);
    free(R->filt);
    free(R->trials);
    free(R->evx);
    free(R->evout);
    free(R->evok);
    free(R->evsrc);
}

static bg_status start(mads_run *R)
{
    const bg_mads_problem *p = &R->pb;
    for (int k = 0; k < p->n_x0; k++) {
        memcpy(R->trials[k].x, p->x0[k], (size_t)p->n * sizeof(double));
        R->trials[k].from = -1;
        R->trials[k].seq = k;
    }
    /* all starting points are evaluated: not opportunistic */
    bg_mads_options o = *R->o;
    o.opportunistic = false;
    const bg_mads_options *keep = R->o;
    R->o = &o;
    int level;
    bg_status st = mads_eval_trials(R, R->trials, p->n_x0, "x0", NAN, &level, NULL);
    R->o = keep;
    if (st) return st;
    /* with no valid starting point, poll around the first one anyway */
    R->fallback = mads_cache_find(&R->cache, p->x0[0]);
    return BG_OK;
}

/* The direction of the success that made e an incumbent. */
static bool success_dir(const mads_run *R, long e, double *d)
{
    long from = e >= 0 ? R->cache.from[e] : -1;
    if (from < 0) return false;
    for (int i = 0; i < R->pb.n; i++) d[i] = R->cache.x[(size_t)e * R->pb.n + i] - R->cache.x[(size_t)from * R->pb.n + i];
    return true;
}

static bg_status iterate(mads_run *R)
{
    const bg_mads_options *o = R->o;
    R->iteration++;
    R->evals_this_iter = 0;
    long c1 = mads_primary(R), c2 = mads_secondary(R);
    long xf0 = R->xf, xi0 = R->xi;
    double hxi0 = xi0 >= 0 ? mads_h(R, xi0) : INFINITY;
    int level = SUCC_NONE, lv;
    bool extended = false;
    bg_status st = BG_OK;
    if (c1 < 0) return bg_fail(R->ctx, BG_ERR_ARG, "mads: no poll centre");
    if (o->speculative_search) {
        st = mads_speculative_search(R, c1, c2, &lv);
        if (st) return st;
        level = lv > level ? lv : level;
    }
    if (level < SUCC_FULL && o->quad_model_search && !mads_should_stop(R)) {
        st = mads_quad_search(R, c1, "quad", &lv);
        if (st) return st;
        level = lv > level ? lv : level;
    }
    if (level < SUCC_FULL && !mads_should_stop(R)) {
        st = mads_poll(R, c1, c2, &lv);
        if (st) return st;
        level = lv > level ? lv : level;
    }
    if (level == SUCC_NONE && R->has_cat && !mads_should_stop(R)) {
        st = mads_extended_poll(R, c1, &lv);
        if (st) return st;
        if (lv == SUCC_FULL) extended = true;
        level = lv > level ? lv : level;
    }
    if (level == SUCC_FULL && !extended) {
        /* enlarge along the step that produced the new incumbent */
        long e = R->xf != xf0 ? R->xf : R->xi != xi0 ? R->xi : -1;
        double d[MADS_N];
        if (success_dir(R, e, d)) mads_mesh_enlarge(&R->mesh, d, o->anisotropy_factor, o->anisotropic);
    } else if (level == SUCC_NONE) {
        mads_mesh_refine(&R->mesh);
    }
    mads_hmax_update(R, level, xi0, hxi0);
    R->idle = R->evals_this_iter > 0 ? 0 : R->idle + 1;
    return BG_OK;
}

static void fill_result(const mads_run *R, bg_mads_result *r)
{
    const int n = R->pb.n;
    r->has_feasible = R->xf >= 0;
    if (R->xf >= 0) {
        memcpy(r->x, R->cache.x + (size_t)R->xf * n, (size_t)n * sizeof(double));
        r->f = mads_f(R, R->xf);
    } else {
        r->f = INFINITY;
    }
    r->has_infeasible = R->xi >= 0;
    if (R->xi >= 0) {
        memcpy(r->x_inf, R->cache.x + (size_t)R->xi * n, (size_t)n * sizeof(double));
        r->f_inf = mads_f(R, R->xi);
        r->h_inf = mads_h(R, R->xi);
    } else {
        r->f_inf = r->h_inf = INFINITY;
    }
    r->iterations = R->iteration;
    r->stop = R->stop;
    for (int i = 0; i < n; i++) {
        r->mesh[i] = R->mesh.active[i] ? mads_mesh_delta(&R->mesh, i) : 0;
        r->frame[i] = R->mesh.active[i] ? mads_mesh_frame(&R->mesh, i) : 0;
    }
}

bg_status bg_mads_run(bg_ctx *ctx, const bg_mads_problem *p, const bg_mads_options *o, bg_mads_result *r)
{
    if (!o || !r) return bg_fail(ctx, BG_ERR_ARG, "mads: NULL %s", o ? "result" : "options");
    memset(r, 0, sizeof *r);
    bg_status st = bg_mads_problem_check(ctx, p);
    if (st) return st;
    if (!o->eval) return bg_fail(ctx, BG_ERR_ARG, "mads: no evaluation callback");
    if (o->n_replay < 0 || (o->n_replay > 0 && (!o->replay_x || !o->replay_out)))
        return bg_fail(ctx, BG_ERR_ARG, "mads: replay history without points or outputs");
    if (o->block_size > 4096) return bg_fail(ctx, BG_ERR_ARG, "mads: block size %d too large", o->block_size);
    mads_run R;
    memset(&R, 0, sizeof R);
    R.ctx = ctx;
    R.pb = *p;
    normalise(&R.pb);
    R.o = o;
    R.r = r;
    R.t0 = bg_monotonic_s();
    st = setup(&R);
    if (!st) st = start(&R);
    const long idle_limit = 20;
    while (!st && !mads_should_stop(&R)) {
        if (o->max_iterations > 0 && R.iteration >= o->max_iterations) {
            R.stop = BG_MADS_STOP_MAX_ITERATIONS;
            break;
        }
        if (mads_mesh_min_reached(&R.mesh)) {
            /* converged (or a VNS descent did): shake before stopping */
            bool started = false;
            if (o->vns_search) st = mads_vns_shake(&R, &started);
            if (st) break;
            if (started) continue;
            if (!R.stop) R.stop = BG_MADS_STOP_MIN_MESH;
            break;
        }
        /* a granular (or categorical-only) problem at its finest mesh keeps
         * drawing new directions; it ends when they stop producing new points */
        if (R.idle >= idle_limit && (mads_mesh_finest(&R.mesh) || mads_mesh_all_granular(&R.mesh))) {
            R.stop = BG_MADS_STOP_NO_NEW_POINTS;
            break;
        }
        st = R.vns_c >= 0 ? mads_vns_iterate(&R) : iterate(&R);
    }
    fill_result(&R, r);
    teardown(&R);
    return st;
}
