/* Internals shared by the mads*.c files (not a public API): the cache, the
 * GMesh, the barrier, quadratic models and poll directions. */
#ifndef BG_MADS_INTERNAL_H
#define BG_MADS_INTERNAL_H
#include <stddef.h>
#include "mads.h"

#define MADS_N BG_MADS_MAX_DIM

/* ---- cache (mads_cache.c) ---------------------------------------------------
 * Every evaluated point, in evaluation order. Two points are the same when
 * each coordinate agrees within a tolerance far below the finest mesh (so a
 * point reached through different floating-point paths is still found); a
 * hash of coarse cells finds candidates in O(1). */
typedef struct {
    int n, m;
    long count, cap;
    double *x;        /* cap * n */
    double *out;      /* cap * m */
    double *f;        /* objective (INFINITY when failed) */
    double *hpb;      /* sum of squared PB violations */
    double *heb;      /* sum of squared EB violations */
    long *from;       /* cache index of the centre that generated the point, -1 */
    uint8_t *flags;   /* MADS_OK, MADS_COUNTED */
    long *table;      /* open addressing, -1 empty */
    long tsize;
    double cell[MADS_N];  /* hash cell widths */
    double tol[MADS_N];   /* absolute equality tolerance */
    double mag[MADS_N];   /* typical step size (the initial frame): floors the ulp term */
} mads_cache;

enum { MADS_OK = 1, MADS_COUNTED = 2 };

bg_status mads_cache_init(bg_ctx *ctx, mads_cache *c, int n, int m, const double *scale, const double *tol);
void mads_cache_free(mads_cache *c);
/* Index of the cached point equal to x, or -1. */
long mads_cache_find(const mads_cache *c, const double *x);
/* Append a point (must not be present); returns its index or -1 on OOM. */
long mads_cache_add(bg_ctx *ctx, mads_cache *c, const double *x, const double *out, uint8_t flags);

/* ---- GMesh (mads_mesh.c) ----------------------------------------------------
 * Per coordinate: frame Delta = g' * a * 10^b (g' = granularity or 1),
 * mesh delta = 10^(b - |b - b0|) (granular: g * max(1, that)), ratio rho = Delta/delta. */
typedef struct {
    int n;
    bool active[MADS_N];   /* false for categorical coordinates */
    double gran[MADS_N];
    int a[MADS_N], b[MADS_N], b0[MADS_N];
    double min_mesh[MADS_N];
    double range[MADS_N];  /* ub - lb, INFINITY when unbounded */
} mads_mesh;

void mads_mesh_init(mads_mesh *g, const bg_mads_problem *p, double min_mesh);
double mads_mesh_delta(const mads_mesh *g, int i);
double mads_mesh_frame(const mads_mesh *g, int i);
double mads_mesh_rho(const mads_mesh *g, int i);
/* Enlarge along direction dir (anisotropic rule); true when a size changed. */
bool mads_mesh_enlarge(mads_mesh *g, const double *dir, double anisotropy_factor, bool anisotropic);
void mads_mesh_refine(mads_mesh *g);
/* Every continuous coordinate below its minimum mesh size (NOMAD's stop). */
bool mads_mesh_min_reached(const mads_mesh *g);
/* Every coordinate at its finest frame (granular at 1*g, continuous at the minimum). */
bool mads_mesh_finest(const mads_mesh *g);
bool mads_mesh_all_granular(const mads_mesh *g);
/* Round value to the mesh centred at c (coordinate i), then onto the granularity. */
double mads_mesh_round(const mads_mesh *g, int i, double c, double value);

/* ---- quadratic models (mads_quad.c) ------------------------------------------
 * q(z) = c + g.z + 1/2 z'Hz in scaled coordinates z_k = (x_k - centre_k)/scale_k
 * over the k < nz active coordinates. */
typedef struct {
    int nz;                 /* active coordinates */
    int idx[MADS_N];        /* their indices in x */
    double centre[MADS_N], scale[MADS_N];
    int nout;               /* models: [0] objective, then each constraint */
    int outcol[1 + BG_MADS_MAX_OUT];  /* problem output column of each model */
    double c[1 + BG_MADS_MAX_OUT];
    double *g;              /* nout * nz */
    double *H;              /* nout * nz * nz */
    double lo[MADS_N], hi[MADS_N];    /* box of the data in z */
    int npts;
} mads_quad;

/* Models use the cached points within MADS_MODEL_BOX frame sizes of the
 * centre (NOMAD: QUAD_MODEL_BOX_FACTOR 4 = +-2 frames; 3 measured better
 * here, docs/mads.md), at most MADS_MODEL_MAXPTS of them. */
#define MADS_MODEL_BOX 3.0
#define MADS_MODEL_MAXPTS 100
#define MADS_MODEL_MAXDIM 24
/* Models of the objective and EB/PB constraints around cx from the valid
 * cached points (same categorical values) within box_factor frame sizes,
 * widened until there are enough; at most max_pts nearest. False when fewer
 * than nz + 1 points qualify. Free with mads_quad_free. */
bool mads_quad_build(mads_quad *q, const mads_cache *c, const bg_mads_problem *p, const mads_mesh *g,
                     const double *cx, double box_factor, int max_pts);
void mads_quad_free(mads_quad *q);
double mads_quad_value(const mads_quad *q, int k, const double *z);
void mads_quad_to_z(const mads_quad *q, const double *x, double *z);
/* Model objective and infeasibility (sum of squared predicted violations) at x. */
void mads_quad_predict(const mads_quad *q, const double *x, double *f, double *h);
/* Minimise the objective model subject to the constraint models over the box
 * [lo, hi] (scaled units); z receives the minimiser. */
void mads_quad_minimize(const mads_quad *q, const double *lo, const double *hi, uint32_t seed,
                        uint64_t *counter, double *z);
/* Put x* on the mesh around cx: the corner of its mesh cell the model likes
 * best, snapped to the bounds, other than cx and not in the cache. */
bool mads_quad_to_mesh(const mads_quad *q, const mads_mesh *g, const bg_mads_problem *p, const mads_cache *c,
                       const double *cx, const double *xstar, double *out);

/* ---- poll directions (mads_poll.c) ------------------------------------------ */
/* Orthogonal Householder basis H = I - 2vv'/|v|^2 over the active coordinates
 * (columns h_j in rows of `basis`, n values each, zero on inactive ones);
 * v ~ N(0, I) from Philox(seed, counter). Returns the number of columns. */
int mads_householder(const mads_mesh *g, uint32_t seed, uint64_t *counter, double *basis);
/* Scale a direction to the frame and round it on the mesh:
 * d_i <- round(rho_i d_i / |d|_inf) delta_i. False when it vanishes. */
bool mads_scale_to_frame(const mads_mesh *g, const double *d, double *out);
/* 32 random bits (a stream apart from the normal draws). */
uint32_t mads_random_u32(uint32_t seed, uint64_t counter);
/* Normal deviate pair from one Philox block. */
void mads_normal2(uint32_t seed, uint64_t counter, double *z0, double *z1);

#endif
