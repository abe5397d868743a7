/* The search step: a few promising points tried before the poll, each on
 * the mesh so MADS' convergence theory still holds.
 *   - Speculative search (NOMAD's SPECULATIVE_SEARCH): after a success from
 *     x_prev to x, go further along d = x - x_prev: x + t_i d_i with
 *     t_i = max(Delta_i/|d_i| - 1, s): at least s more steps (NOMAD 3; our
 *     default 2, measured better, docs/mads.md) and at least to the edge of
 *     the frame. Skipped when the model predicts an infeasible point while a
 *     feasible incumbent exists.
 *   - Quadratic model search (QUAD_MODEL_SEARCH): minimise the models of the
 *     objective and constraints over the box spanned by their data and try
 *     the model-best mesh point next to the minimiser. On smooth problems
 *     this is where most of NOMAD 4's speed comes from. */
#include <math.h>
#include <string.h>
#include "mads_run.h"

static bool differs(const mads_run *R, const double *a, const double *b)
{
    for (int i = 0; i < R->pb.n; i++)
        if (fabs(a[i] - b[i]) > R->cache.tol[i]) return true;
    return false;
}

static bool speculative_point(mads_run *R, long c, mads_trial *t)
{
    long from = c >= 0 ? R->cache.from[c] : -1;
    if (from < 0 || from == c) return false;
    const int n = R->pb.n;
    const double *x = R->cache.x + (size_t)c * n, *xp = R->cache.x + (size_t)from * n;
    bool any = false;
    for (int i = 0; i < n; i++) {
        double d = x[i] - xp[i];
        t->x[i] = x[i];
        if (d == 0 || !R->mesh.active[i]) continue;
        double fac = fmax(mads_mesh_frame(&R->mesh, i) / fabs(d) - 1.0, R->o->speculative_factor);
        t->x[i] = mads_mesh_round(&R->mesh, i, x[i], x[i] + fac * d);
        any = true;
    }
    if (!any) return false;
    mads_snap(R, t->x);
    t->from = c;
    return differs(R, t->x, x);
}

bg_status mads_speculative_search(mads_run *R, long c1, long c2, int *level)
{
    *level = SUCC_NONE;
    int nt = 0;
    /* a point the model predicts infeasible while a feasible incumbent
     * exists is not worth an evaluation */
    mads_quad q = {0};
    bool screen = R->o->quad_model_search && R->xf >= 0 &&
                  mads_quad_build(&q, &R->cache, &R->pb, &R->mesh, R->cache.x + (size_t)c1 * R->pb.n,
                                  MADS_MODEL_BOX, MADS_MODEL_MAXPTS);
    long centres[2] = {c1, c2};
    for (int k = 0; k < 2; k++)
        if (centres[k] >= 0 && speculative_point(R, centres[k], &R->trials[nt])) {
            if (screen) {
                double f, h;
                mads_quad_predict(&q, R->trials[nt].x, &f, &h);
                if (h > 0) continue;
            }
            R->trials[nt].seq = nt;
            nt++;
        }
    mads_quad_free(&q);
    if (nt == 0) return BG_OK;
    return mads_eval_trials(R, R->trials, nt, "speculative", NAN, level, NULL);
}

bg_status mads_quad_search(mads_run *R, long c, const char *step, int *level)
{
    *level = SUCC_NONE;
    if (c < 0) return BG_OK;
    const bg_mads_problem *p = &R->pb;
    const double *cx = R->cache.x + (size_t)c * p->n;
    mads_quad q = {0};
    if (!mads_quad_build(&q, &R->cache, p, &R->mesh, cx, MADS_MODEL_BOX, MADS_MODEL_MAXPTS)) return BG_OK;
    /* the model is trusted over the box of its data, inside the bounds */
    double lo[MADS_N], hi[MADS_N], z[MADS_N];
    for (int k = 0; k < q.nz; k++) {
        int i = q.idx[k];
        lo[k] = fmax(q.lo[k], (p->lb[i] - cx[i]) / q.scale[k]);
        hi[k] = fmin(q.hi[k], (p->ub[i] - cx[i]) / q.scale[k]);
        if (hi[k] < lo[k]) hi[k] = lo[k];
    }
    mads_quad_minimize(&q, lo, hi, R->o->seed, &R->rng, z);
    double xs[MADS_N];
    memcpy(xs, cx, (size_t)p->n * sizeof *xs);
    for (int k = 0; k < q.nz; k++) xs[q.idx[k]] = cx[q.idx[k]] + q.scale[k] * z[k];
    mads_trial *t = &R->trials[0];
    bool have = mads_quad_to_mesh(&q, &R->mesh, p, &R->cache, cx, xs, t->x);
    mads_quad_free(&q);
    if (!have) return BG_OK;
    t->from = c;
    t->seq = 0;
    return mads_eval_trials(R, R->trials, 1, step, NAN, level, NULL);
}
