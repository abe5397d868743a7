/* The GMesh of NOMAD 4 (Audet, Le Digabel & Tribes 2019, "The MADS algorithm
 * for granular and discrete variables"): each coordinate has its own frame
 * size Delta = g' a 10^b with a in {1, 2, 5}, so the mesh can stretch along the
 * directions that keep succeeding (anisotropy) and integer coordinates never
 * go below a step of one. The mesh size delta shrinks twice as fast as the
 * frame below the initial exponent b0, which makes the poll directions denser
 * and denser inside the frame (what MADS convergence needs). */
#include <math.h>
#include <stdlib.h>
#include "mads_internal.h"

static double pow10i(int e) { return pow(10.0, (double)e); }

/* NOMAD's initial frame: 10% of the range with both bounds, else |x0|/10, else
 * 1; granular coordinates round it up to a multiple of the granularity. */
static double initial_frame(const bg_mads_problem *p, int i)
{
    double d;
    if (p->frame0[i] > 0)
        d = p->frame0[i];
    else if (isfinite(p->lb[i]) && isfinite(p->ub[i]) && p->ub[i] > p->lb[i])
        d = 0.1 * (p->ub[i] - p->lb[i]);
    else if (p->x0[0][i] != 0)
        d = fabs(p->x0[0][i]) / 10.0;
    else
        d = 1.0;
    double g = p->type[i] == BG_MADS_REAL ? p->granularity[i] : 1.0;
    if (g > 0) d = fmax(g, ceil(d / g - 1e-9) * g);
    return d;
}

void mads_mesh_init(mads_mesh *g, const bg_mads_problem *p, double min_mesh)
{
    g->n = p->n;
    for (int i = 0; i < p->n; i++) {
        g->active[i] = p->type[i] != BG_MADS_CATEGORICAL;
        g->gran[i] = p->type[i] == BG_MADS_REAL ? p->granularity[i] : 1.0;
        g->range[i] = isfinite(p->lb[i]) && isfinite(p->ub[i]) ? p->ub[i] - p->lb[i] : INFINITY;
        double unit = g->gran[i] > 0 ? g->gran[i] : 1.0;
        double div = initial_frame(p, i) / unit;
        /* (int) truncates toward zero: NOMAD's rounding, so 0.278 gives b = 0
         * and a frame of 1 (docs/mads.md). */
        int b = (int)log10(div);
        double mant = div * pow10i(-b);
        g->b[i] = g->b0[i] = b;
        g->a[i] = mant < 1.5 ? 1 : mant < 3.5 ? 2 : 5;
        g->min_mesh[i] = g->gran[i] > 0 ? g->gran[i] : min_mesh;
    }
}

double mads_mesh_delta(const mads_mesh *g, int i)
{
    int e = g->b[i] - abs(g->b[i] - g->b0[i]);
    double d = pow10i(e);
    return g->gran[i] > 0 ? g->gran[i] * fmax(1.0, d) : d;
}

double mads_mesh_frame(const mads_mesh *g, int i)
{
    return (g->gran[i] > 0 ? g->gran[i] : 1.0) * g->a[i] * pow10i(g->b[i]);
}

double mads_mesh_rho(const mads_mesh *g, int i)
{
    double p = pow10i(abs(g->b[i] - g->b0[i]));
    if (g->gran[i] > 0) return g->a[i] * fmin(pow10i(g->b[i]), p);
    return g->a[i] * p;
}

static void larger(int *a, int *b)
{
    if (*a == 1) *a = 2;
    else if (*a == 2) *a = 5;
    else { *a = 1; ++*b; }
}

bool mads_mesh_enlarge(mads_mesh *g, const double *dir, double anisotropy_factor, bool anisotropic)
{
    double min_rho = INFINITY;
    for (int i = 0; i < g->n; i++)
        if (g->active[i] && g->gran[i] == 0) min_rho = fmin(min_rho, mads_mesh_rho(g, i));
    bool changed = false;
    for (int i = 0; i < g->n; i++) {
        if (!g->active[i]) continue;
        double delta = mads_mesh_delta(g, i), rho = mads_mesh_rho(g, i);
        /* enlarge where the step moved this coordinate noticeably; continuous
         * coordinates whose ratio ran far ahead of the others catch up too */
        bool go = !anisotropic || fabs(dir[i]) / delta / rho > anisotropy_factor ||
                  (g->gran[i] == 0 && g->b[i] < g->b0[i] && rho > min_rho * min_rho);
        if (!go) continue;
        /* a frame already spanning the whole range only wastes polls on the bounds */
        if (mads_mesh_frame(g, i) >= g->range[i]) continue;
        larger(&g->a[i], &g->b[i]);
        changed = true;
    }
    return changed;
}

void mads_mesh_refine(mads_mesh *g)
{
    for (int i = 0; i < g->n; i++) {
        if (!g->active[i]) continue;
        /* below the minimum mesh size the frame stays where it is */
        if (mads_mesh_delta(g, i) < g->min_mesh[i]) continue;
        int a = g->a[i], b = g->b[i];
        if (a == 1) { a = 5; b--; }
        else if (a == 2) a = 1;
        else a = 2;
        /* granular frames stop at one granule */
        if (g->gran[i] > 0 && b <= 0 && a != 1) { a = 1; b = 0; }
        g->a[i] = a;
        g->b[i] = b;
    }
}

bool mads_mesh_all_granular(const mads_mesh *g)
{
    for (int i = 0; i < g->n; i++)
        if (g->active[i] && g->gran[i] == 0) return false;
    return true;
}

bool mads_mesh_min_reached(const mads_mesh *g)
{
    if (mads_mesh_all_granular(g)) return false;
    for (int i = 0; i < g->n; i++)
        if (g->active[i] && g->gran[i] == 0 && mads_mesh_delta(g, i) >= g->min_mesh[i]) return false;
    return true;
}

bool mads_mesh_finest(const mads_mesh *g)
{
    for (int i = 0; i < g->n; i++) {
        if (!g->active[i]) continue;
        if (g->gran[i] > 0) {
            if (!(g->a[i] == 1 && g->b[i] == 0)) return false;
        } else if (mads_mesh_delta(g, i) >= g->min_mesh[i]) {
            return false;
        }
    }
    return true;
}

double mads_mesh_round(const mads_mesh *g, int i, double c, double value)
{
    double d = mads_mesh_delta(g, i);
    double v = c + round((value - c) / d) * d;
    if (g->gran[i] > 0) v = round(v / g->gran[i]) * g->gran[i];
    return v;
}
