/* The poll step and the extended poll.
 *
 * Poll (OrthoMADS): the 2n directions +-h_j of a Householder basis, scaled to
 * the frame and rounded on the mesh. ORTHO 2N polls them all; ORTHO N+1 keeps
 * n of them that span the space (the most promising first) and, when those
 * fail, a last direction in the cone opposite to them: minus their sum (NEG)
 * or the cone direction the quadratic model prefers (QUAD). Trial points are
 * ordered by the quadratic model when one can be built, else by the angle
 * with the last successful direction, and evaluated opportunistically. With a
 * progressive barrier the secondary centre gets two directions (+-h_1).
 *
 * Extended poll (categorical variables; MADS for mixed variables, Audet &
 * Dennis 2001, Abramson et al. 2009, as in NOMAD 3): when search and poll
 * fail, evaluate the neighbours of the centre; from every neighbour within
 * the trigger of the incumbent's value, run poll descents on the other
 * variables with the categorical values held, until a poll fails. A choice
 * whose own neighbours are both worse no longer traps the search. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mads_run.h"

static int cmp_trial(const void *a, const void *b)
{
    const mads_trial *x = a, *y = b;
    if (x->k1 != y->k1) return x->k1 < y->k1 ? -1 : 1;
    if (x->k2 != y->k2) return x->k2 < y->k2 ? -1 : 1;
    return x->seq - y->seq;
}

static bool at_centre(const mads_run *R, const double *x, const double *cx)
{
    for (int i = 0; i < R->pb.n; i++)
        if (fabs(x[i] - cx[i]) > R->cache.tol[i]) return false;
    return true;
}

/* Sort keys: model prediction (infeasibility first), else closeness to the
 * direction of the centre's last success, else generation order. */
static void set_keys(const mads_run *R, mads_trial *t, const double *cx, long c, const mads_quad *q)
{
    int n = R->pb.n;
    if (q) {
        mads_quad_predict(q, t->x, &t->k2, &t->k1);
        return;
    }
    t->k1 = t->k2 = 0;
    long from = c >= 0 ? R->cache.from[c] : -1;
    if (from < 0) return;
    const double *xp = R->cache.x + (size_t)from * n;
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < n; i++) {
        double a = t->x[i] - cx[i], b = cx[i] - xp[i];
        dot += a * b;
        na += a * a;
        nb += b * b;
    }
    if (na > 0 && nb > 0) t->k2 = -dot / sqrt(na * nb);
}

/* centre + dir, snapped; false when that is the centre itself. */
static bool make_trial(const mads_run *R, long c, const double *cx, const double *dir, mads_trial *t)
{
    for (int i = 0; i < R->pb.n; i++) t->x[i] = cx[i] + dir[i];
    mads_snap(R, t->x);
    t->from = c;
    t->k1 = t->k2 = 0;
    return !at_centre(R, t->x, cx);
}

static bool push(mads_run *R, int *nt, long c, const double *cx, const double *dir)
{
    if (*nt >= MADS_MAX_TRIALS || !make_trial(R, c, cx, dir, &R->trials[*nt])) return false;
    R->trials[*nt].seq = *nt;
    (*nt)++;
    return true;
}

/* Greedy: keep a direction when it adds a dimension (Gram-Schmidt residual). */
static bool adds_rank(int n, double (*basis)[MADS_N], int nb, const double *d)
{
    double r[MADS_N], nd = 0, nr = 0;
    for (int i = 0; i < n; i++) r[i] = d[i], nd += d[i] * d[i];
    for (int k = 0; k < nb; k++) {
        double dot = 0;
        for (int i = 0; i < n; i++) dot += r[i] * basis[k][i];
        for (int i = 0; i < n; i++) r[i] -= dot * basis[k][i];
    }
    for (int i = 0; i < n; i++) nr += r[i] * r[i];
    if (!(nr > 1e-4 * nd)) return false;
    nr = sqrt(nr);
    for (int i = 0; i < n; i++) basis[nb][i] = r[i] / nr;
    return true;
}

/* One complete poll around c (and two directions around c2 when c2 >= 0). */
static bg_status poll_around(mads_run *R, long c, long c2, double stop_f, const char *step, int *level,
                             long *best_e)
{
    *level = SUCC_NONE;
    if (best_e) *best_e = -1;
    const int n = R->pb.n;
    const bg_mads_options *o = R->o;
    double cx[MADS_N];
    memcpy(cx, R->cache.x + (size_t)c * n, (size_t)n * sizeof *cx);
    double basis[MADS_N * MADS_N];
    int na = mads_householder(&R->mesh, o->seed, &R->rng, basis);
    if (na == 0) return BG_OK;

    mads_quad q = {0};
    bool want_model = o->model_sort || o->direction == BG_MADS_ORTHO_NP1_QUAD;
    bool have_model = want_model && mads_quad_build(&q, &R->cache, &R->pb, &R->mesh, cx, MADS_MODEL_BOX, MADS_MODEL_MAXPTS);

    /* the 2n candidates with their scaled directions */
    double dirs[2 * MADS_N][MADS_N];
    int nt = 0;
    /* ORTHO N+1 without a model: one sign of each +-h_j at random. An
     * informed choice (closest to the last success) can pick the same half
     * space at every iteration and never poll into a cone of descent along a
     * constraint; random signs keep the directions asymptotically dense. */
    bool random_signs = o->direction != BG_MADS_ORTHO_2N && !(have_model && o->model_sort);
    uint32_t signs = 0;
    int nsign = 0;
    for (int j = 0; j < na; j++)
        for (int sg = 1; sg >= -1; sg -= 2) {
            if (random_signs) {
                if (nsign == 0) {
                    signs = mads_random_u32(o->seed, R->rng++);
                    nsign = 32;
                }
                int want = (signs & 1u) ? 1 : -1;
                if (sg == -1) { signs >>= 1; nsign--; }
                if (sg != want) continue;
            }
            double d[MADS_N], ds[MADS_N];
            for (int i = 0; i < n; i++) d[i] = sg * basis[(size_t)j * n + i];
            if (!mads_scale_to_frame(&R->mesh, d, ds)) continue;
            if (push(R, &nt, c, cx, ds)) memcpy(dirs[nt - 1], ds, sizeof ds);
        }
    for (int k = 0; k < nt; k++)
        set_keys(R, &R->trials[k], cx, c, have_model && o->model_sort ? &q : NULL);
    /* sort trials and their directions together (seq holds the old slot) */
    qsort(R->trials, (size_t)nt, sizeof *R->trials, cmp_trial);
    double sorted[2 * MADS_N][MADS_N];
    for (int k = 0; k < nt; k++) memcpy(sorted[k], dirs[R->trials[k].seq], sizeof sorted[k]);

    int nsel = nt;
    double span[MADS_N][MADS_N];
    if (o->direction != BG_MADS_ORTHO_2N) {
        /* ORTHO N+1: the first n candidates that span */
        int w = 0;
        for (int k = 0; k < nt && w < na; k++)
            if (adds_rank(n, span, w, sorted[k])) {
                R->trials[w] = R->trials[k];
                memcpy(sorted[w], sorted[k], sizeof sorted[w]);
                w++;
            }
        nsel = w;
    }
    for (int k = 0; k < nsel; k++) R->trials[k].seq = k;
    int ntot = nsel;
    if (c2 >= 0) {
        /* DOUBLE poll of the secondary centre */
        double cx2[MADS_N], d[MADS_N], ds[MADS_N];
        memcpy(cx2, R->cache.x + (size_t)c2 * n, (size_t)n * sizeof *cx2);
        for (int sg = 1; sg >= -1; sg -= 2) {
            for (int i = 0; i < n; i++) d[i] = sg * basis[i];
            if (!mads_scale_to_frame(&R->mesh, d, ds) || !push(R, &ntot, c2, cx2, ds)) continue;
            /* the secondary centre's points are a heuristic: skip the ones
             * the model says cannot improve the barrier */
            if (have_model) {
                double f, h;
                mads_quad_predict(&q, R->trials[ntot - 1].x, &f, &h);
                if (mads_classify_fh(R, f, h) == SUCC_NONE) ntot--;
            }
        }
    }
    bg_status st = mads_eval_trials(R, R->trials, ntot, step, stop_f, level, best_e);
    if (st || o->direction == BG_MADS_ORTHO_2N || *level == SUCC_FULL || nsel == 0 || R->stop) {
        mads_quad_free(&q);
        return st;
    }
    if (isfinite(stop_f) && best_e && *best_e >= 0 && mads_f(R, *best_e) < stop_f) {
        mads_quad_free(&q);
        return BG_OK;
    }

    /* the (n+1)-th direction, in the cone opposite to the n polled ones */
    double neg[MADS_N] = {0}, ds[MADS_N];
    for (int k = 0; k < nsel; k++)
        for (int i = 0; i < n; i++) neg[i] -= sorted[k][i];
    int nx = 0;
    if (o->direction == BG_MADS_ORTHO_NP1_QUAD && have_model) {
        /* candidates -sum(a_k d_k), a_k > 0: the plain sum and one leaning
         * towards each -d_k; the model picks */
        for (int v = -1; v < nsel; v++) {
            double d[MADS_N] = {0};
            for (int k = 0; k < nsel; k++) {
                double a = v < 0 ? 1.0 : (k == v ? 1.0 + nsel : 1.0);
                for (int i = 0; i < n; i++) d[i] -= a * sorted[k][i];
            }
            mads_trial t;
            if (!mads_scale_to_frame(&R->mesh, d, ds) || !make_trial(R, c, cx, ds, &t)) continue;
            mads_quad_predict(&q, t.x, &t.k2, &t.k1);
            if (!nx || cmp_trial(&t, &R->trials[0]) < 0) {
                t.seq = 0;
                R->trials[0] = t;
                nx = 1;
            }
        }
    }
    if (!nx && mads_scale_to_frame(&R->mesh, neg, ds)) push(R, &nx, c, cx, ds);
    mads_quad_free(&q);
    if (!nx) return BG_OK;
    int lv;
    long be;
    st = mads_eval_trials(R, R->trials, 1, step, stop_f, &lv, &be);
    if (lv > *level) *level = lv;
    if (best_e && be >= 0 && (*best_e < 0 || mads_f(R, be) < mads_f(R, *best_e))) *best_e = be;
    return st;
}

bg_status mads_poll(mads_run *R, long c1, long c2, int *level)
{
    return poll_around(R, c1, c2, NAN, c2 >= 0 ? "poll2" : "poll", level, NULL);
}

bg_status mads_poll_local(mads_run *R, long c, double stop_f, const char *step, int *level)
{
    long be;
    return poll_around(R, c, -1, stop_f, step, level, &be);
}

/* ---- extended poll ------------------------------------------------------- */

static int default_neighbors(const bg_mads_problem *p, const double *x, double *out, int max)
{
    int k = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->type[i] != BG_MADS_CATEGORICAL) continue;
        for (double v = p->lb[i]; v <= p->ub[i] && k < max; v += 1) {
            if (v == x[i]) continue;
            memcpy(out + (size_t)k * p->n, x, (size_t)p->n * sizeof *x);
            out[(size_t)k * p->n + i] = v;
            k++;
        }
    }
    return k;
}

static bool same_categories(const bg_mads_problem *p, const double *a, const double *b)
{
    for (int i = 0; i < p->n; i++)
        if (p->type[i] == BG_MADS_CATEGORICAL && a[i] != b[i]) return false;
    return true;
}

/* Best feasible cached point with the categorical values of x. */
static long best_in_slice(const mads_run *R, const double *x)
{
    long best = -1;
    for (long e = 0; e < R->cache.count; e++) {
        if (mads_h(R, e) != 0 || !same_categories(&R->pb, R->cache.x + (size_t)e * R->pb.n, x)) continue;
        if (best < 0 || mads_f(R, e) < mads_f(R, best)) best = e;
    }
    return best;
}

bg_status mads_extended_poll(mads_run *R, long c, int *level)
{
    *level = SUCC_NONE;
    if (c < 0) return BG_OK;
    const bg_mads_problem *p = &R->pb;
    const bg_mads_options *o = R->o;
    const int n = p->n, maxnb = MADS_MAX_TRIALS / 2;
    double cx[MADS_N];
    memcpy(cx, R->cache.x + (size_t)c * n, (size_t)n * sizeof *cx);
    double *nb = malloc((size_t)maxnb * n * sizeof *nb);
    if (!nb) return bg_fail(R->ctx, BG_ERR_OOM, "mads extended poll: out of memory");
    int nn = o->neighbors ? o->neighbors(o->neighbors_user, cx, n, nb, maxnb) : default_neighbors(p, cx, nb, maxnb);
    if (nn > maxnb) nn = maxnb;
    int nt = 0;
    for (int k = 0; k < nn; k++) {
        mads_trial *t = &R->trials[nt];
        memcpy(t->x, nb + (size_t)k * n, (size_t)n * sizeof *t->x);
        bool valid = true;
        for (int i = 0; i < n; i++) {
            if (!isfinite(t->x[i])) valid = false;
            if (p->type[i] == BG_MADS_CATEGORICAL) t->x[i] = round(t->x[i]);
        }
        if (!valid) continue;
        mads_snap(R, t->x);
        if (at_centre(R, t->x, cx)) continue;
        t->from = c;
        t->seq = nt++;
    }
    /* keep the neighbours: the trial buffer is reused by the descents */
    for (int k = 0; k < nt; k++) memcpy(nb + (size_t)k * n, R->trials[k].x, (size_t)n * sizeof(double));
    bg_status st = mads_eval_trials(R, R->trials, nt, "extended", NAN, level, NULL);
    if (st || *level == SUCC_FULL || R->stop) {
        free(nb);
        return st;
    }
    double fc = mads_f(R, c);
    double thr = fc + (o->ext_poll_relative ? o->ext_poll_trigger * fmax(fabs(fc), 1e-12) : o->ext_poll_trigger);
    /* descend from the promising neighbours, best first */
    long starts[MADS_MAX_TRIALS / 2];
    int ns = 0;
    for (int k = 0; k < nt; k++) {
        long e = best_in_slice(R, nb + (size_t)k * n);
        if (e < 0 || !(mads_f(R, e) < thr)) continue;
        bool dup = false;
        for (int s = 0; s < ns; s++) dup |= starts[s] == e;
        if (!dup) starts[ns++] = e;
    }
    for (int a = 1; a < ns; a++) /* insertion sort by f, stable */
        for (int b = a; b > 0 && mads_f(R, starts[b]) < mads_f(R, starts[b - 1]); b--) {
            long t = starts[b];
            starts[b] = starts[b - 1];
            starts[b - 1] = t;
        }
    for (int s = 0; s < ns && !R->stop; s++) {
        long cur = starts[s];
        for (int it = 0; it < 50 && !R->stop; it++) {
            int lv;
            long be;
            st = poll_around(R, cur, -1, mads_f(R, cur), "extended", &lv, &be);
            if (st) break;
            if (lv == SUCC_FULL) {
                *level = SUCC_FULL;
                break;
            }
            if (be >= 0 && mads_f(R, be) < mads_f(R, cur)) cur = be;
            else break;
        }
        if (st || *level == SUCC_FULL) break;
    }
    free(nb);
    return st;
}
