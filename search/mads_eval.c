/* Evaluating trial points: drop the ones already in the cache, send the rest
 * in blocks of block_size to the eval callback (or answer them from the
 * replay history), then record each result in evaluation order: cache,
 * barrier, statistics, observer. Opportunism is per block, so a given seed
 * and block size always give the same sequence of evaluations, however the
 * points of a block are scheduled. */
#include <math.h>
#include <string.h>
#include "mads_run.h"

bool mads_should_stop(mads_run *R)
{
    if (R->stop != BG_MADS_STOP_NONE) return true;
    const bg_mads_options *o = R->o;
    if (o->max_bb_eval > 0 && R->r->bb_evals >= o->max_bb_eval) R->stop = BG_MADS_STOP_MAX_BB_EVAL;
    else if (o->max_time > 0 && bg_monotonic_s() - R->t0 >= o->max_time) R->stop = BG_MADS_STOP_MAX_TIME;
    return R->stop != BG_MADS_STOP_NONE;
}

void mads_snap(const mads_run *R, double *x)
{
    const bg_mads_problem *p = &R->pb;
    for (int i = 0; i < p->n; i++) {
        double g = R->mesh.gran[i];
        if (g > 0) x[i] = round(x[i] / g) * g;
        x[i] = fmin(fmax(x[i], p->lb[i]), p->ub[i]);
    }
}

static bool same_point(const mads_run *R, const double *a, const double *b)
{
    for (int i = 0; i < R->pb.n; i++) {
        double t = R->cache.tol[i] + 1e-15 * fmax(fabs(a[i]), fabs(b[i]));
        if (!(fabs(a[i] - b[i]) <= t)) return false;
    }
    return true;
}

/* Record one evaluation (cache, barrier, counts, observer); *level gets its success. */
static bg_status record(mads_run *R, const mads_trial *t, const double *out_in, bool ok, bool replayed, int *level,
                        const char *step)
{
    const bg_mads_problem *p = &R->pb;
    double out[BG_MADS_MAX_OUT];
    memcpy(out, out_in, (size_t)p->m * sizeof *out);
    /* an undefined objective or constraint makes the evaluation a failure */
    for (int j = 0; j < p->m && ok; j++)
        if ((p->out[j] == BG_MADS_OBJ || p->out[j] == BG_MADS_EB || p->out[j] == BG_MADS_PB) && isnan(out[j]))
            ok = false;
    bool counted = !(ok && R->cnt_col >= 0 && out[R->cnt_col] == 0);
    long e = mads_cache_add(R->ctx, &R->cache, t->x, out, (uint8_t)((ok ? MADS_OK : 0) | (counted ? MADS_COUNTED : 0)));
    if (e < 0) return R->ctx->status;
    R->cache.from[e] = t->from;
    if (ok) {
        double hpb = 0, heb = 0;
        for (int j = 0; j < p->m; j++) {
            double v = out[j];
            if (p->out[j] == BG_MADS_PB && v > 0) hpb += v * v;
            if (p->out[j] == BG_MADS_EB && v > 0) heb += v * v;
        }
        R->cache.f[e] = out[R->obj_col];
        R->cache.hpb[e] = hpb;
        R->cache.heb[e] = heb;
    }
    *level = mads_classify(R, e);
    bg_status st = mads_barrier_insert(R, e);
    if (st) return st;
    if (R->phase_one && ok && R->cache.heb[e] == 0) {
        /* the first point satisfying the EB constraints ends phase one */
        R->phase_one = false;
        st = mads_barrier_rebuild(R);
        if (st) return st;
        *level = SUCC_FULL;
    }
    bg_mads_result *r = R->r;
    r->evaluations++;
    r->bb_evals += counted;
    r->failed += !ok;
    r->replayed += replayed;
    R->evals_this_iter++;
    if (R->o->observer) {
        double mesh[MADS_N], frame[MADS_N];
        for (int i = 0; i < p->n; i++) {
            mesh[i] = R->mesh.active[i] ? mads_mesh_delta(&R->mesh, i) : 0;
            frame[i] = R->mesh.active[i] ? mads_mesh_frame(&R->mesh, i) : 0;
        }
        bg_mads_eval_info in = {
            .index = r->evaluations - 1, .n = p->n, .m = p->m, .x = t->x, .out = out, .ok = ok,
            .counted = counted, .replayed = replayed, .f = mads_f(R, e), .h = mads_h(R, e), .step = step,
            .iteration = R->iteration, .bb_evals = r->bb_evals,
            .improved = e == R->xf || (R->xf < 0 && e == R->xi), .has_feasible = R->xf >= 0,
            .best_f = R->xf >= 0 ? mads_f(R, R->xf) : R->xi >= 0 ? mads_f(R, R->xi) : INFINITY,
            .best_h = R->xf >= 0 ? 0 : R->xi >= 0 ? mads_h(R, R->xi) : INFINITY,
            .mesh = mesh, .frame = frame, .h_max = R->hmax};
        st = R->o->observer(R->o->observer_user, R->ctx, &in);
        if (st) return st;
    }
    return BG_OK;
}

bg_status mads_eval_trials(mads_run *R, mads_trial *trials, int nt, const char *step, double stop_f, int *level,
                           long *best_e)
{
    const bg_mads_problem *p = &R->pb;
    const bg_mads_options *o = R->o;
    int n = p->n, m = p->m;
    *level = SUCC_NONE;
    if (best_e) *best_e = -1;
    /* keep each new point once, in the given order */
    int k = 0;
    for (int i = 0; i < nt; i++) {
        if (mads_cache_find(&R->cache, trials[i].x) >= 0) {
            R->r->cache_hits++;
            continue;
        }
        bool dup = false;
        for (int j = 0; j < k && !dup; j++) dup = same_point(R, trials[j].x, trials[i].x);
        if (dup) continue;
        if (k != i) trials[k] = trials[i];
        k++;
    }
    int bs = o->block_size > 0 ? o->block_size : 1;
    for (int i = 0; i < k;) {
        if (mads_should_stop(R)) break;
        int nb = k - i < bs ? k - i : bs;
        if (o->max_bb_eval > 0 && nb > o->max_bb_eval - R->r->bb_evals) nb = (int)(o->max_bb_eval - R->r->bb_evals);
        /* replayed points are answered from the history, the rest go out as one block */
        int nreal = 0;
        for (int j = 0; j < nb; j++) {
            long e = R->replay.count ? mads_cache_find(&R->replay, trials[i + j].x) : -1;
            R->evsrc[j] = e >= 0 ? (int)(-1 - e) : nreal;
            if (e < 0) {
                memcpy(R->evx + (size_t)nreal * n, trials[i + j].x, (size_t)n * sizeof(double));
                for (int q = 0; q < m; q++) R->evout[(size_t)nreal * m + q] = NAN;
                R->evok[nreal] = false;
                nreal++;
            }
        }
        if (nreal > 0) {
            bg_status st = o->eval(o->eval_user, R->ctx, nreal, R->evx, R->evout, R->evok);
            if (st) return st;
        }
        bool stop_now = false;
        for (int j = 0; j < nb; j++) {
            const double *out;
            bool ok, replayed = R->evsrc[j] < 0;
            if (replayed) {
                long e = -1 - (long)R->evsrc[j];
                out = R->replay.out + (size_t)e * m;
                ok = R->replay.flags[e] & MADS_OK;
            } else {
                out = R->evout + (size_t)R->evsrc[j] * m;
                ok = R->evok[R->evsrc[j]];
            }
            int lv;
            bg_status st = record(R, &trials[i + j], out, ok, replayed, &lv, step);
            if (st) return st;
            if (lv > *level) *level = lv;
            long e = R->cache.count - 1;
            if ((R->cache.flags[e] & MADS_OK) && mads_h(R, e) == 0) {
                if (best_e && (*best_e < 0 || mads_f(R, e) < mads_f(R, *best_e))) *best_e = e;
                if (isfinite(stop_f) && mads_f(R, e) < stop_f) stop_now = true;
            }
            if (lv == SUCC_FULL) stop_now = true;
        }
        i += nb;
        if (o->opportunistic && stop_now) break;
    }
    return BG_OK;
}
