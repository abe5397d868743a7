/* Poll directions of OrthoMADS (Abramson, Audet, Dennis & Le Digabel 2009):
 * a random unit vector v gives the Householder matrix H = I - 2vv', whose
 * columns are orthonormal; +-h_j scaled to the frame and rounded on the mesh
 * are the poll directions. A fresh v every iteration makes the directions
 * dense in the unit sphere, which MADS' convergence theory needs. The draws
 * come from the engine's counter-based Philox, so a run is a pure function
 * of its seed. */
#include <math.h>
#include <string.h>
#include "../engine/philox.h"
#include "mads_internal.h"

#define MADS_TAG 0x4D414453u /* "MADS": keeps these streams apart from other Philox users */

static double unit53(uint32_t a, uint32_t b)
{
    /* 53 random bits, mapped to (0, 1]: never 0, safe for log() */
    double u = ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) / 9007199254740992.0;
    return u + 1.0 / 9007199254740992.0;
}

uint32_t mads_random_u32(uint32_t seed, uint64_t counter)
{
    bg_u32x4 ctr = {{(uint32_t)counter, (uint32_t)(counter >> 32), MADS_TAG, 1u}};
    return bg_philox4x32_10(ctr, (uint64_t)seed).v[0];
}

void mads_normal2(uint32_t seed, uint64_t counter, double *z0, double *z1)
{
    bg_u32x4 ctr = {{(uint32_t)counter, (uint32_t)(counter >> 32), MADS_TAG, 0u}};
    bg_u32x4 r = bg_philox4x32_10(ctr, (uint64_t)seed);
    double u1 = unit53(r.v[0], r.v[1]), u2 = unit53(r.v[2], r.v[3]);
    double rad = sqrt(-2.0 * log(u1));
    *z0 = rad * cos(2 * M_PI * u2);
    *z1 = rad * sin(2 * M_PI * u2);
}

int mads_householder(const mads_mesh *g, uint32_t seed, uint64_t *counter, double *basis)
{
    int n = g->n, idx[MADS_N], na = 0;
    for (int i = 0; i < n; i++)
        if (g->active[i]) idx[na++] = i;
    if (na == 0) return 0;
    double v[MADS_N], nrm2 = 0;
    for (int k = 0; k < na; k += 2) {
        double z0, z1;
        mads_normal2(seed, (*counter)++, &z0, &z1);
        v[k] = z0;
        if (k + 1 < na) v[k + 1] = z1;
    }
    for (int k = 0; k < na; k++) nrm2 += v[k] * v[k];
    if (!(nrm2 > 1e-300)) { /* a zero draw (probability nil): use e_1 */
        memset(v, 0, sizeof v);
        v[0] = 1;
        nrm2 = 1;
    }
    memset(basis, 0, (size_t)na * n * sizeof *basis);
    for (int j = 0; j < na; j++)
        for (int k = 0; k < na; k++)
            basis[(size_t)j * n + idx[k]] = (j == k ? 1.0 : 0.0) - 2.0 * v[j] * v[k] / nrm2;
    return na;
}

bool mads_scale_to_frame(const mads_mesh *g, const double *d, double *out)
{
    double inf = 0;
    for (int i = 0; i < g->n; i++)
        if (g->active[i]) inf = fmax(inf, fabs(d[i]));
    bool any = false;
    for (int i = 0; i < g->n; i++) {
        out[i] = 0;
        if (!g->active[i] || !(inf > 0)) continue;
        double k = round(mads_mesh_rho(g, i) * d[i] / inf);
        out[i] = k * mads_mesh_delta(g, i);
        if (k != 0) any = true;
    }
    return any;
}
