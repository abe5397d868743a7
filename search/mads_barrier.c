/* Constraints (Audet & Dennis 2006, 2009; NOMAD 4's barrier):
 *   h(x) = sum of max(c_j, 0)^2 over the PB constraints (H_NORM L2);
 *   an EB constraint above 0 makes h infinite: the point is rejected;
 *   a failed evaluation is rejected the same way.
 * The progressive barrier keeps the best feasible point x_F and the
 * non-dominated infeasible points with h <= h_max, among which x_I has the
 * lowest f. h_max only decreases, so the search is drawn to feasibility.
 * While no point satisfies the EB constraints (an infeasible X0), they are
 * treated as PB constraints: NOMAD's phase one, which looks for a point
 * satisfying them. */
#include <math.h>
#include <stdlib.h>
#include "mads_run.h"

double mads_f(const mads_run *R, long e)
{
    return (R->cache.flags[e] & MADS_OK) ? R->cache.f[e] : INFINITY;
}

double mads_h(const mads_run *R, long e)
{
    if (!(R->cache.flags[e] & MADS_OK)) return INFINITY;
    if (R->phase_one) return R->cache.hpb[e] + R->cache.heb[e];
    return R->cache.heb[e] > 0 ? INFINITY : R->cache.hpb[e];
}

int mads_classify(const mads_run *R, long e)
{
    if (!(R->cache.flags[e] & MADS_OK)) return SUCC_NONE;
    return mads_classify_fh(R, mads_f(R, e), mads_h(R, e));
}

int mads_classify_fh(const mads_run *R, double f, double h)
{
    if (h == INFINITY || isnan(f) || isnan(h)) return SUCC_NONE;
    if (h == 0) return R->xf < 0 || f < mads_f(R, R->xf) ? SUCC_FULL : SUCC_NONE;
    if (h > R->hmax) return SUCC_NONE;
    if (R->xi < 0) return R->xf < 0 ? SUCC_FULL : SUCC_PARTIAL;
    double fi = mads_f(R, R->xi), hi = mads_h(R, R->xi);
    if (f <= fi && h <= hi && (f < fi || h < hi)) return SUCC_FULL;
    if (h < hi) return SUCC_PARTIAL;
    return SUCC_NONE;
}

static bool dominates(double fa, double ha, double fb, double hb)
{
    return fa <= fb && ha <= hb && (fa < fb || ha < hb);
}

static void recompute_xi(mads_run *R)
{
    R->xi = -1;
    for (long k = 0; k < R->nfilt; k++) {
        long e = R->filt[k];
        if (R->xi < 0) { R->xi = e; continue; }
        double f = mads_f(R, e), h = mads_h(R, e), fi = mads_f(R, R->xi), hi = mads_h(R, R->xi);
        if (f < fi || (f == fi && (h < hi || (h == hi && e < R->xi)))) R->xi = e;
    }
}

bg_status mads_barrier_insert(mads_run *R, long e)
{
    double f = mads_f(R, e), h = mads_h(R, e);
    if (!(R->cache.flags[e] & MADS_OK) || h == INFINITY || isnan(f)) return BG_OK;
    if (h == 0) {
        if (R->xf < 0 || f < mads_f(R, R->xf)) R->xf = e;
        return BG_OK;
    }
    if (h > R->hmax) return BG_OK;
    for (long k = 0; k < R->nfilt; k++) {
        double fk = mads_f(R, R->filt[k]), hk = mads_h(R, R->filt[k]);
        if (dominates(fk, hk, f, h) || (fk == f && hk == h)) return BG_OK;
    }
    long w = 0;
    for (long k = 0; k < R->nfilt; k++) {
        long q = R->filt[k];
        if (!dominates(f, h, mads_f(R, q), mads_h(R, q))) R->filt[w++] = q;
    }
    R->nfilt = w;
    if (R->nfilt == R->capfilt) {
        long cap = R->capfilt ? 2 * R->capfilt : 64;
        long *p = realloc(R->filt, (size_t)cap * sizeof *p);
        if (!p) return bg_fail(R->ctx, BG_ERR_OOM, "mads barrier: out of memory");
        R->filt = p;
        R->capfilt = cap;
    }
    R->filt[R->nfilt++] = e;
    recompute_xi(R);
    return BG_OK;
}

bg_status mads_barrier_rebuild(mads_run *R)
{
    R->xf = R->xi = -1;
    R->nfilt = 0;
    R->hmax = R->o->h_max0 > 0 ? R->o->h_max0 : INFINITY;
    for (long e = 0; e < R->cache.count; e++) {
        bg_status st = mads_barrier_insert(R, e);
        if (st) return st;
    }
    return BG_OK;
}

long mads_primary(const mads_run *R)
{
    if (R->xf >= 0 && (R->xi < 0 || !(mads_f(R, R->xf) - R->o->rho > mads_f(R, R->xi)))) return R->xf;
    if (R->xi >= 0) return R->xi;
    if (R->xf >= 0) return R->xf;
    return R->fallback;
}

long mads_secondary(const mads_run *R)
{
    if (R->xf < 0 || R->xi < 0) return -1;
    return mads_primary(R) == R->xf ? R->xi : R->xf;
}

void mads_hmax_update(mads_run *R, int level, long xi_prev, double h_xi_prev)
{
    double hmax = R->hmax;
    if (level == SUCC_FULL) {
        if (xi_prev >= 0) hmax = h_xi_prev;
    } else if (level == SUCC_PARTIAL) {
        /* the largest h in the barrier below the previous infeasible incumbent's */
        double best = -1;
        for (long k = 0; k < R->nfilt; k++) {
            double h = mads_h(R, R->filt[k]);
            if (h < h_xi_prev && h > best) best = h;
        }
        if (best > 0) hmax = best;
    } else if (R->xi >= 0) {
        hmax = mads_h(R, R->xi);
    }
    if (!(hmax < R->hmax)) return;
    R->hmax = hmax;
    long w = 0;
    for (long k = 0; k < R->nfilt; k++)
        if (mads_h(R, R->filt[k]) <= hmax) R->filt[w++] = R->filt[k];
    R->nfilt = w;
    recompute_xi(R);
}
