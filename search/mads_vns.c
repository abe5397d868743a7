/* VNS search: variable neighbourhood search inside MADS (Audet, Bechard &
 * Le Digabel 2008, "Nonsmooth optimization through mesh adaptive direct
 * search and variable neighborhood search"; NOMAD's VNS_MADS_SEARCH).
 *
 * MADS is a local method: on 4-D Rosenbrock about one start in six settles in
 * the local minimum f = 3.70. When the mesh has converged (the point where
 * MADS would stop on the minimum mesh size) and budget is left, VNS
 *   1. shakes the incumbent x*: x' = x* + k Delta0 u, u a random direction
 *      (Philox normal, scaled to unit max-norm) rounded on the initial mesh,
 *      k the neighbourhood index;
 *   2. descends from x': a local MADS (quadratic-model search and poll) that
 *      starts on the initial mesh, centred on its own best point rather than
 *      on x*, enlarging on a local success and refining on a failure;
 *   3. a descent point better than x* (a full success of the barrier) ends
 *      VNS: the main iteration goes on from it with the descent's mesh, and
 *      the neighbourhood index returns to 1; a descent whose frame has
 *      shrunk to 1e-4 of the initial one without beating x* moves to
 *      neighbourhood k + 1.
 * The neighbourhoods stop growing when k Delta0 covers every bounded range
 * (10 neighbourhoods for unbounded coordinates), and VNS may use at most
 * vns_trigger of all evaluations (NOMAD's VNS_MADS_SEARCH_TRIGGER, 0.75).
 * Since it starts only once MADS has converged, it never changes what MADS
 * does before that point; it spends budget that would otherwise be left
 * unused. Every draw is Philox(seed, counter): a run stays deterministic. */
#include <math.h>
#include <string.h>
#include "mads_run.h"

void mads_vns_init(mads_run *R)
{
    R->mesh0 = R->mesh;
    R->vns_c = -1;
    R->vns_k = 1;
    R->vns_evals = 0;
    int kmax = 0;
    for (int i = 0; i < R->pb.n; i++) {
        if (!R->mesh.active[i]) continue;
        double k = isfinite(R->mesh.range[i]) ? ceil(R->mesh.range[i] / mads_mesh_frame(&R->mesh, i) - 1e-9) : 10;
        if (k > kmax) kmax = (int)fmin(k, 50);
    }
    R->vns_kmax = kmax;
}

/* Local comparison: lower infeasibility first, then lower f. */
static bool better(const mads_run *R, long e, long c)
{
    if (!(R->cache.flags[e] & MADS_OK)) return false;
    double he = mads_h(R, e), hc = mads_h(R, c);
    if (he != hc) return he < hc;
    return mads_f(R, e) < mads_f(R, c);
}

/* The best of the points evaluated since index `from` that beats c, or -1. */
static long best_new(const mads_run *R, long from, long c)
{
    long best = -1;
    for (long e = from; e < R->cache.count; e++)
        if (better(R, e, best >= 0 ? best : c)) best = e;
    return best;
}

bg_status mads_vns_shake(mads_run *R, bool *started)
{
    *started = false;
    if (R->vns_c >= 0) {
        /* the descent from neighbourhood k converged without beating x* */
        R->vns_c = -1;
        R->vns_k++;
    }
    long c = R->xf >= 0 ? R->xf : mads_primary(R);
    const bg_mads_options *o = R->o;
    if (c < 0 || R->vns_k > R->vns_kmax || R->vns_evals > o->vns_trigger * (double)R->r->bb_evals ||
        mads_should_stop(R))
        return BG_OK;
    const int n = R->pb.n;
    const double *cx = R->cache.x + (size_t)c * n;
    R->mesh = R->mesh0;
    double z[MADS_N] = {0}, amax = 0;
    for (int i = 0; i < n; i += 2) {
        double z0, z1;
        mads_normal2(o->seed, R->rng++, &z0, &z1);
        z[i] = R->mesh.active[i] ? z0 : 0;
        if (i + 1 < n) z[i + 1] = R->mesh.active[i + 1] ? z1 : 0;
    }
    for (int i = 0; i < n; i++) amax = fmax(amax, fabs(z[i]));
    if (!(amax > 0)) return BG_OK;
    mads_trial *t = &R->trials[0];
    for (int i = 0; i < n; i++) {
        t->x[i] = cx[i];
        if (!R->mesh.active[i]) continue;
        double step = R->vns_k * mads_mesh_frame(&R->mesh, i) * z[i] / amax;
        t->x[i] = mads_mesh_round(&R->mesh, i, cx[i], cx[i] + step);
    }
    mads_snap(R, t->x);
    t->from = c;
    t->seq = 0;
    long b0 = R->r->bb_evals;
    int level;
    bg_status st = mads_eval_trials(R, R->trials, 1, "vns", NAN, &level, NULL);
    R->vns_evals += R->r->bb_evals - b0;
    if (st) return st;
    long e = mads_cache_find(&R->cache, t->x);
    if (e < 0) return BG_OK; /* out of budget */
    *started = true;
    if (level == SUCC_FULL) {
        /* the shaken point itself beats x*: MADS goes on from it */
        R->vns_k = 1;
        return BG_OK;
    }
    R->vns_c = e;
    return BG_OK;
}

/* A descent ends when its frame is 1e-4 of the initial one on every
 * continuous coordinate (or at the minimum mesh size): by then it has found
 * its basin's minimum to well below the shake's scale, and going further
 * would only re-resolve a point MADS has already converged on. */
static bool descent_done(const mads_run *R)
{
    for (int i = 0; i < R->pb.n; i++) {
        if (!R->mesh.active[i] || R->mesh.gran[i] > 0) continue;
        if (mads_mesh_delta(&R->mesh, i) >= R->mesh.min_mesh[i] &&
            mads_mesh_frame(&R->mesh, i) > 1e-4 * mads_mesh_frame(&R->mesh0, i))
            return false;
    }
    return true;
}

bg_status mads_vns_iterate(mads_run *R)
{
    const bg_mads_options *o = R->o;
    const int n = R->pb.n;
    long c = R->vns_c;
    R->iteration++;
    R->evals_this_iter = 0;
    long b0 = R->r->bb_evals, first = R->cache.count;
    double stop_f = mads_h(R, c) == 0 ? mads_f(R, c) : NAN;
    int level = SUCC_NONE, lv;
    bg_status st = BG_OK;
    if (o->quad_model_search) {
        st = mads_quad_search(R, c, "vns", &lv);
        level = lv;
    }
    long e = st ? -1 : best_new(R, first, c);
    if (!st && e < 0 && level < SUCC_FULL && !mads_should_stop(R)) {
        st = mads_poll_local(R, c, stop_f, "vns", &lv);
        if (lv > level) level = lv;
        e = st ? -1 : best_new(R, first, c);
    }
    R->vns_evals += R->r->bb_evals - b0;
    if (st) return st;
    if (e >= 0) {
        double d[MADS_N];
        const double *x = R->cache.x + (size_t)e * n, *xc = R->cache.x + (size_t)c * n;
        for (int i = 0; i < n; i++) d[i] = x[i] - xc[i];
        mads_mesh_enlarge(&R->mesh, d, o->anisotropy_factor, o->anisotropic);
        R->vns_c = e;
    } else {
        mads_mesh_refine(&R->mesh);
    }
    if (level == SUCC_FULL) {
        /* better than x*: back to MADS from the new incumbent */
        R->vns_c = -1;
        R->vns_k = 1;
    }
    R->idle = R->evals_this_iter > 0 ? 0 : R->idle + 1;
    if (R->vns_c >= 0 && descent_done(R)) {
        /* this neighbourhood failed: the next one, or stop converged */
        bool started;
        st = mads_vns_shake(R, &started);
        if (!st && !started && !R->stop) R->stop = BG_MADS_STOP_MIN_MESH;
    }
    return st;
}
