/* Quadratic models over the cache (NOMAD 4's QUAD_MODEL_SEARCH and model
 * ordering). Around a centre, the valid cached points within a box of
 * box_factor frame sizes (doubled until there are enough) give least-squares
 * quadratic models of the objective and of every constraint. With fewer
 * points than coefficients a small ridge on the second-order terms picks the
 * flattest model that fits, as in minimum-Frobenius-norm interpolation.
 *
 * The model problem (min model f s.t. model c_j <= 0 over the data's box) is
 * solved exactly on a box when there are no constraints (every face of the box
 * is tried with a Newton step, so indefinite models are fine); with
 * constraints a small pattern search on the model takes the feasible side
 * first. The minimiser is then put on the mesh by trying the corners of its
 * mesh cell on the model, which keeps points predicted feasible when plain
 * rounding would step across a constraint. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mads_linalg.h"
#include "mads_internal.h"

void mads_quad_free(mads_quad *q)
{
    free(q->g);
    free(q->H);
    q->g = q->H = NULL;
    q->nout = 0;
}

double mads_quad_value(const mads_quad *q, int k, const double *z)
{
    int nz = q->nz;
    const double *g = q->g + (size_t)k * nz, *H = q->H + (size_t)k * nz * nz;
    double v = q->c[k];
    for (int i = 0; i < nz; i++) {
        double hz = 0;
        for (int j = 0; j < nz; j++) hz += H[i * nz + j] * z[j];
        v += z[i] * (g[i] + 0.5 * hz);
    }
    return v;
}

/* Model objective and infeasibility at z. */
static void model_fh(const mads_quad *q, const double *z, double *f, double *h)
{
    *f = mads_quad_value(q, 0, z);
    double s = 0;
    for (int k = 1; k < q->nout; k++) {
        double c = mads_quad_value(q, k, z);
        if (c > 0) s += c * c;
    }
    *h = s;
}

void mads_quad_to_z(const mads_quad *q, const double *x, double *z)
{
    for (int k = 0; k < q->nz; k++) z[k] = (x[q->idx[k]] - q->centre[k]) / q->scale[k];
}

void mads_quad_predict(const mads_quad *q, const double *x, double *f, double *h)
{
    double z[MADS_N];
    mads_quad_to_z(q, x, z);
    model_fh(q, z, f, h);
}

/* Feasible side first, then the objective. */
static bool better(double fa, double ha, double fb, double hb)
{
    if (ha > 0 || hb > 0) return ha < hb || (ha == hb && fa < fb);
    return fa < fb;
}

/* ---- fitting --------------------------------------------------------------- */

typedef struct {
    double d;
    long e;
} near_pt;

static int cmp_near(const void *a, const void *b)
{
    const near_pt *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->e < y->e ? -1 : x->e > y->e;
}

static bool valid_for_model(const mads_quad *q, const mads_cache *c, const bg_mads_problem *p, long e,
                            const double *cx)
{
    if (!(c->flags[e] & MADS_OK)) return false;
    const double *out = c->out + (size_t)e * c->m;
    for (int k = 0; k < q->nout; k++) {
        double v = out[q->outcol[k]];
        if (!isfinite(v) || fabs(v) > 1e10) return false;
    }
    const double *x = c->x + (size_t)e * c->n;
    for (int i = 0; i < p->n; i++)
        if (p->type[i] == BG_MADS_CATEGORICAL && x[i] != cx[i]) return false;
    return true;
}

bool mads_quad_build(mads_quad *q, const mads_cache *c, const bg_mads_problem *p, const mads_mesh *g,
                     const double *cx, double box_factor, int max_pts)
{
    mads_quad_free(q);
    q->nz = 0;
    for (int i = 0; i < p->n; i++)
        if (g->active[i]) q->idx[q->nz++] = i;
    int nz = q->nz;
    /* a full quadratic has (nz+1)(nz+2)/2 coefficients: beyond MADS_MODEL_MAXDIM
     * variables the fit costs more than it is worth (NOMAD stops at 50) */
    if (nz == 0 || nz > MADS_MODEL_MAXDIM) return false;
    q->nout = 0;
    for (int j = 0; j < p->m; j++)
        if (p->out[j] == BG_MADS_OBJ) q->outcol[q->nout++] = j;
    for (int j = 0; j < p->m; j++)
        if (p->out[j] == BG_MADS_EB || p->out[j] == BG_MADS_PB) q->outcol[q->nout++] = j;
    int nout = q->nout;
    int ncoef = 1 + nz + nz * (nz + 1) / 2;

    near_pt *sel = malloc((size_t)(c->count > 0 ? c->count : 1) * sizeof *sel);
    if (!sel) return false;
    long nvalid = 0;
    for (long e = 0; e < c->count; e++)
        if (valid_for_model(q, c, p, e, cx)) nvalid++;
    double r[MADS_N];
    for (int k = 0; k < nz; k++) r[k] = box_factor * mads_mesh_frame(g, q->idx[k]);
    long ns = 0;
    for (int grow = 0; grow <= 10; grow++) {
        ns = 0;
        for (long e = 0; e < c->count; e++) {
            if (!valid_for_model(q, c, p, e, cx)) continue;
            const double *x = c->x + (size_t)e * c->n;
            double d = 0;
            bool in = true;
            for (int k = 0; k < nz && in; k++) {
                int i = q->idx[k];
                double t = fabs(x[i] - cx[i]);
                if (t > r[k]) in = false;
                double u = t / mads_mesh_frame(g, i);
                d += u * u;
            }
            if (in) sel[ns++] = (near_pt){d, e};
        }
        /* too few points for a full quadratic while the cache has them: widen */
        if (ns >= ncoef || nvalid < ncoef) break;
        for (int k = 0; k < nz; k++) r[k] *= 2;
    }
    if (ns > max_pts) {
        qsort(sel, (size_t)ns, sizeof *sel, cmp_near);
        ns = max_pts;
    }
    if (ns < nz + 1) {
        free(sel);
        return false;
    }
    for (int k = 0; k < nz; k++) {
        int i = q->idx[k];
        q->centre[k] = cx[i];
        double s = 0;
        for (long t = 0; t < ns; t++) s = fmax(s, fabs(c->x[(size_t)sel[t].e * c->n + i] - cx[i]));
        q->scale[k] = fmax(s, mads_mesh_delta(g, i));
    }

    /* rows: the data, then one ridge row per non-constant coefficient */
    int rows = (int)ns + ncoef - 1;
    double *A = calloc((size_t)rows * ncoef, sizeof *A);
    double *B = calloc((size_t)rows * nout, sizeof *B);
    double *X = calloc((size_t)ncoef * nout, sizeof *X);
    q->g = calloc((size_t)nout * nz, sizeof *q->g);
    q->H = calloc((size_t)nout * nz * nz, sizeof *q->H);
    bool ok = A && B && X && q->g && q->H;
    if (ok) {
        for (int k = 0; k < nz; k++) q->lo[k] = q->hi[k] = 0;
        for (long t = 0; t < ns; t++) {
            const double *x = c->x + (size_t)sel[t].e * c->n;
            const double *out = c->out + (size_t)sel[t].e * c->m;
            double z[MADS_N];
            for (int k = 0; k < nz; k++) {
                z[k] = (x[q->idx[k]] - q->centre[k]) / q->scale[k];
                q->lo[k] = fmin(q->lo[k], z[k]);
                q->hi[k] = fmax(q->hi[k], z[k]);
            }
            double *row = A + (size_t)t * ncoef;
            /* nearer points weigh more: the model should be right where
             * the next step lands */
            double d2 = 0;
            for (int k = 0; k < nz; k++) d2 += z[k] * z[k];
            double wgt = 1.0 / (1.0 + d2);
            int col = 0;
            row[col++] = 1;
            for (int k = 0; k < nz; k++) row[col++] = z[k];
            for (int a = 0; a < nz; a++)
                for (int b = a; b < nz; b++) row[col++] = a == b ? 0.5 * z[a] * z[a] : z[a] * z[b];
            for (int k = 0; k < nout; k++) B[(size_t)t * nout + k] = wgt * out[q->outcol[k]];
            for (int k = 0; k < ncoef; k++) row[k] *= wgt;
        }
        /* ridge: tiny on the linear terms (only matters with fewer than nz+1
         * affinely independent points), small on the quadratic ones */
        for (int col = 1; col < ncoef; col++)
            A[((size_t)ns + col - 1) * ncoef + col] = col <= nz ? 1e-6 : 1e-3;
        ok = mads_lsq(A, rows, ncoef, B, nout, X);
    }
    if (ok) {
        for (int k = 0; k < nout; k++) {
            q->c[k] = X[k];
            int col = 1;
            for (int a = 0; a < nz; a++) q->g[(size_t)k * nz + a] = X[(size_t)(col++) * nout + k];
            double *H = q->H + (size_t)k * nz * nz;
            for (int a = 0; a < nz; a++)
                for (int b = a; b < nz; b++) {
                    double v = X[(size_t)(col++) * nout + k];
                    H[a * nz + b] = H[b * nz + a] = v;
                }
        }
        q->npts = (int)ns;
    }
    free(A);
    free(B);
    free(X);
    free(sel);
    if (!ok) mads_quad_free(q);
    return ok;
}

/* ---- minimising the model -------------------------------------------------- */

static double qval(const double *g, const double *H, int nz, const double *z)
{
    double v = 0;
    for (int i = 0; i < nz; i++) {
        double hz = 0;
        for (int j = 0; j < nz; j++) hz += H[i * nz + j] * z[j];
        v += z[i] * (g[i] + 0.5 * hz);
    }
    return v;
}

/* Exact minimum of g'z + z'Hz/2 over a box: on every face (each coordinate
 * free, at its lower or at its upper bound) solve for the free coordinates
 * when the reduced Hessian is positive definite and keep the best point that
 * stays in the box. The global minimum lies on one such face, so indefinite
 * models are handled too. 3^nz faces: small nz only. */
static void box_qp_exact(const double *g, const double *H, int nz, const double *lo, const double *hi,
                         double *zbest)
{
    long nfaces = 1;
    for (int i = 0; i < nz; i++) nfaces *= 3;
    double best = INFINITY;
    for (int i = 0; i < nz; i++) zbest[i] = fmin(fmax(0.0, lo[i]), hi[i]);
    for (long face = 0; face < nfaces; face++) {
        int st[MADS_N], fr[MADS_N], nf = 0;
        long t = face;
        double z[MADS_N];
        for (int i = 0; i < nz; i++) {
            st[i] = (int)(t % 3);
            t /= 3;
            if (st[i] == 0) fr[nf++] = i;
            else z[i] = st[i] == 1 ? lo[i] : hi[i];
        }
        if (nf > 0) {
            double M[MADS_N * MADS_N], rhs[MADS_N];
            for (int a = 0; a < nf; a++) {
                double s = g[fr[a]];
                for (int j = 0; j < nz; j++)
                    if (st[j] != 0) s += H[fr[a] * nz + j] * z[j];
                rhs[a] = -s;
                for (int b = 0; b < nf; b++) M[a * nf + b] = H[fr[a] * nz + fr[b]];
            }
            if (!mads_cholesky_solve(M, nf, rhs)) continue;
            bool inside = true;
            for (int a = 0; a < nf && inside; a++) {
                int i = fr[a];
                double tol = 1e-12 * (hi[i] - lo[i] + 1);
                if (!(rhs[a] >= lo[i] - tol && rhs[a] <= hi[i] + tol)) inside = false;
                z[i] = fmin(fmax(rhs[a], lo[i]), hi[i]);
            }
            if (!inside) continue;
        }
        double v = qval(g, H, nz, z);
        if (v < best) {
            best = v;
            memcpy(zbest, z, (size_t)nz * sizeof *z);
        }
    }
}

/* Coordinate descent with exact one-dimensional steps: the large-n fallback. */
static void box_qp_descent(const double *g, const double *H, int nz, const double *lo, const double *hi,
                           double *z)
{
    for (int i = 0; i < nz; i++) z[i] = fmin(fmax(0.0, lo[i]), hi[i]);
    for (int sweep = 0; sweep < 500; sweep++) {
        double moved = 0;
        for (int i = 0; i < nz; i++) {
            double gi = g[i];
            for (int j = 0; j < nz; j++) gi += H[i * nz + j] * z[j];
            double hii = H[i * nz + i], old = z[i], nv;
            if (hii > 0) {
                nv = fmin(fmax(old - gi / hii, lo[i]), hi[i]);
            } else {
                /* concave or flat along i: the better end */
                double dl = lo[i] - old, dh = hi[i] - old;
                double vl = gi * dl + 0.5 * hii * dl * dl, vh = gi * dh + 0.5 * hii * dh * dh;
                nv = vl < vh ? lo[i] : hi[i];
                if (fmin(vl, vh) >= 0) nv = old;
            }
            z[i] = nv;
            moved = fmax(moved, fabs(nv - old));
        }
        if (moved < 1e-12) break;
    }
}

static void box_qp(const double *g, const double *H, int nz, const double *lo, const double *hi, double *z,
                   int exact_max)
{
    if (nz <= exact_max) box_qp_exact(g, H, nz, lo, hi, z);
    else box_qp_descent(g, H, nz, lo, hi, z);
}

/* Quadratic penalty P = f + mu * sum max(c_j, 0)^2 minimised by Newton steps
 * on the box with a backtracking line search, mu growing tenfold per stage:
 * a smooth route to the constrained model minimum that slides along curved
 * constraint boundaries, where a pattern search on the model stalls. */
static double penalty(const mads_quad *q, const double *z, double mu)
{
    double f, h;
    model_fh(q, z, &f, &h);
    return f + mu * h;
}

static void penalty_newton(const mads_quad *q, const double *lo, const double *hi, double *z)
{
    int nz = q->nz;
    double mu = 1;
    for (int stage = 0; stage < 12; stage++, mu *= 10) {
        for (int it = 0; it < 30; it++) {
            double gP[MADS_N], HP[MADS_N * MADS_N];
            const double *g0 = q->g, *H0 = q->H;
            for (int i = 0; i < nz; i++) {
                double s = g0[i];
                for (int j = 0; j < nz; j++) s += H0[i * nz + j] * z[j];
                gP[i] = s;
            }
            memcpy(HP, H0, (size_t)nz * nz * sizeof *HP);
            for (int k = 1; k < q->nout; k++) {
                double c = mads_quad_value(q, k, z);
                if (!(c > 0)) continue;
                const double *gk = q->g + (size_t)k * nz, *Hk = q->H + (size_t)k * nz * nz;
                double gc[MADS_N];
                for (int i = 0; i < nz; i++) {
                    double s = gk[i];
                    for (int j = 0; j < nz; j++) s += Hk[i * nz + j] * z[j];
                    gc[i] = s;
                }
                for (int i = 0; i < nz; i++) {
                    gP[i] += 2 * mu * c * gc[i];
                    for (int j = 0; j < nz; j++) HP[i * nz + j] += 2 * mu * (gc[i] * gc[j] + c * Hk[i * nz + j]);
                }
            }
            double plo[MADS_N], phi[MADS_N], p[MADS_N];
            for (int i = 0; i < nz; i++) {
                plo[i] = lo[i] - z[i];
                phi[i] = hi[i] - z[i];
            }
            box_qp(gP, HP, nz, plo, phi, p, 4);
            double P0 = penalty(q, z, mu), step = 1;
            bool moved = false;
            for (int ls = 0; ls < 30; ls++, step *= 0.5) {
                double t[MADS_N];
                for (int i = 0; i < nz; i++) t[i] = fmin(fmax(z[i] + step * p[i], lo[i]), hi[i]);
                if (penalty(q, t, mu) < P0 - 1e-15 * fabs(P0)) {
                    memcpy(z, t, (size_t)nz * sizeof *t);
                    moved = true;
                    break;
                }
            }
            double pn = 0;
            for (int i = 0; i < nz; i++) pn = fmax(pn, fabs(step * p[i]));
            if (!moved || pn < 1e-12) break;
        }
    }
}

/* Pattern search on the model (feasible side first) with a fresh orthogonal
 * basis each iteration, so it slides along curved constraint boundaries. */
static void model_pattern_search(const mads_quad *q, const double *lo, const double *hi, uint32_t seed,
                                 uint64_t *counter, double *z)
{
    int nz = q->nz;
    double f, h;
    model_fh(q, z, &f, &h);
    double s = 0.25;
    int evals = 0;
    while (s > 1e-7 && evals < 4000) {
        double v[MADS_N], nrm2 = 0;
        for (int k = 0; k < nz; k += 2) {
            double a, b;
            mads_normal2(seed, (*counter)++, &a, &b);
            v[k] = a;
            if (k + 1 < nz) v[k + 1] = b;
        }
        for (int k = 0; k < nz; k++) nrm2 += v[k] * v[k];
        if (!(nrm2 > 0)) nrm2 = 1;
        double bz[MADS_N], bf = f, bh = h;
        bool moved = false;
        for (int j = 0; j < nz; j++)
            for (int sg = -1; sg <= 1; sg += 2) {
                double t[MADS_N];
                for (int i = 0; i < nz; i++) {
                    double d = (i == j ? 1.0 : 0.0) - 2.0 * v[j] * v[i] / nrm2;
                    t[i] = fmin(fmax(z[i] + sg * s * d * (hi[i] - lo[i]), lo[i]), hi[i]);
                }
                double tf, th;
                model_fh(q, t, &tf, &th);
                evals++;
                if (better(tf, th, bf, bh)) {
                    bf = tf;
                    bh = th;
                    memcpy(bz, t, (size_t)nz * sizeof *t);
                    moved = true;
                }
            }
        if (moved) {
            memcpy(z, bz, (size_t)nz * sizeof *z);
            f = bf;
            h = bh;
            s = fmin(2 * s, 0.5);
        } else {
            s *= 0.5;
        }
    }
}

void mads_quad_minimize(const mads_quad *q, const double *lo, const double *hi, uint32_t seed,
                        uint64_t *counter, double *z)
{
    int nz = q->nz;
    box_qp(q->g, q->H, nz, lo, hi, z, 8);
    if (q->nout == 1) return;
    /* constrained: a penalty-Newton path from the centre, and pattern
     * searches from the centre and from the objective's minimiser; the best
     * (feasible side first, up to rounding) wins */
    double cand[3][MADS_N];
    for (int i = 0; i < nz; i++) cand[0][i] = cand[1][i] = fmin(fmax(0.0, lo[i]), hi[i]);
    memcpy(cand[2], z, (size_t)nz * sizeof *z);
    penalty_newton(q, lo, hi, cand[0]);
    model_pattern_search(q, lo, hi, seed, counter, cand[1]);
    model_pattern_search(q, lo, hi, seed, counter, cand[2]);
    double f0, h0, htol = 0;
    model_fh(q, cand[1], &f0, &h0);
    for (int k = 1; k < q->nout; k++) {
        double c = q->c[k];
        htol += 1e-14 * (1 + c * c);
    }
    int best = -1;
    double bf = 0, bh = 0;
    for (int c = 0; c < 3; c++) {
        double f, h;
        model_fh(q, cand[c], &f, &h);
        if (h <= htol) h = 0;
        if (best < 0 || better(f, h, bf, bh)) {
            best = c;
            bf = f;
            bh = h;
        }
    }
    memcpy(z, cand[best], (size_t)nz * sizeof *z);
}

/* ---- onto the mesh --------------------------------------------------------- */

bool mads_quad_to_mesh(const mads_quad *q, const mads_mesh *g, const bg_mads_problem *p, const mads_cache *c,
                       const double *cx, const double *xstar, double *out)
{
    int n = p->n, nz = q->nz;
    double base[MADS_N], step[MADS_N];
    int var[MADS_N], nv = 0;
    for (int i = 0; i < n; i++) base[i] = cx[i];
    for (int k = 0; k < nz; k++) {
        int i = q->idx[k];
        double d = mads_mesh_delta(g, i);
        double u = (xstar[i] - cx[i]) / d;
        double fl = floor(u);
        base[i] = cx[i] + fl * d;
        step[i] = d;
        if (u - fl > 1e-9 && nv < 12) var[nv++] = i;
        else if (u - fl > 0.5) base[i] += d; /* beyond 12 free coordinates: plain rounding */
    }
    bool found = false;
    double bf = INFINITY, bh = INFINITY;
    for (long mask = 0; mask < (1L << nv); mask++) {
        double x[MADS_N];
        memcpy(x, base, (size_t)n * sizeof *x);
        for (int j = 0; j < nv; j++)
            if (mask & (1L << j)) x[var[j]] += step[var[j]];
        bool is_centre = true;
        for (int k = 0; k < nz; k++) {
            int i = q->idx[k];
            if (g->gran[i] > 0) x[i] = round(x[i] / g->gran[i]) * g->gran[i];
            x[i] = fmin(fmax(x[i], p->lb[i]), p->ub[i]);
            if (fabs(x[i] - cx[i]) > 0.5 * step[i]) is_centre = false;
        }
        if (is_centre || mads_cache_find(c, x) >= 0) continue;
        double f, h;
        mads_quad_predict(q, x, &f, &h);
        if (!found || better(f, h, bf, bh)) {
            found = true;
            bf = f;
            bh = h;
            memcpy(out, x, (size_t)n * sizeof *x);
        }
    }
    return found;
}
