/* MADS: mesh adaptive direct search for blackbox optimisation (hyper-parameter
 * and architecture search), after NOMAD 4's algorithm (docs/mads.md):
 *   - real, granular/integer, binary and categorical variables with bounds;
 *   - the GMesh (per-coordinate frame a*10^b, anisotropic enlargement);
 *   - OrthoMADS polls (ORTHO 2N, N+1 NEG, N+1 QUAD) from Householder bases;
 *   - speculative search and a quadratic-model search over the cache;
 *   - extreme and progressive barrier constraints;
 *   - an extended poll for categorical variables (not in NOMAD 4);
 *   - a cache that never evaluates a point twice, and replay of a history
 *     (resume after a kill ends where an uninterrupted run ends).
 * A run is bitwise deterministic for a given seed and block size: every random
 * draw is Philox(seed, counter) and points are processed in a fixed order.
 *
 * The library part is a plain C API: describe the problem, give an evaluation
 * callback that takes a block of points, call bg_mads_run. Batch mode (NOMAD
 * parameter files, a blackbox executable, history/stats files) is built on it:
 * see mads_batch.h. */
#ifndef BG_MADS_H
#define BG_MADS_H
#include <stdbool.h>
#include <stdint.h>
#include "../engine/context.h"

#define BG_MADS_MAX_DIM 64  /* variables */
#define BG_MADS_MAX_OUT 32  /* blackbox outputs */
#define BG_MADS_MAX_X0 8    /* starting points */

typedef enum {
    BG_MADS_REAL = 0,    /* continuous (granular when granularity > 0) */
    BG_MADS_INTEGER,     /* granularity 1 */
    BG_MADS_BINARY,      /* integer in [0, 1] */
    BG_MADS_CATEGORICAL  /* integer-coded choice: no mesh, changed only by the extended poll */
} bg_mads_vartype;

typedef enum {
    BG_MADS_OBJ = 0,     /* the objective (exactly one) */
    BG_MADS_EB,          /* constraint c <= 0, extreme barrier */
    BG_MADS_PB,          /* constraint c <= 0, progressive barrier */
    BG_MADS_CNT_EVAL,    /* 0: do not count this evaluation in the budget */
    BG_MADS_EXTRA        /* ignored ("-", NOTHING, EXTRA_O) */
} bg_mads_outtype;

typedef enum {
    BG_MADS_ORTHO_NP1_QUAD = 0,  /* NOMAD 4 default: n directions, the last from a quadratic model */
    BG_MADS_ORTHO_NP1_NEG,       /* n directions and minus their sum */
    BG_MADS_ORTHO_2N             /* the 2n directions +-h_j */
} bg_mads_direction;

typedef struct {
    int n;
    bg_mads_vartype type[BG_MADS_MAX_DIM];
    double lb[BG_MADS_MAX_DIM], ub[BG_MADS_MAX_DIM]; /* -INFINITY / INFINITY: unbounded */
    double granularity[BG_MADS_MAX_DIM];             /* reals only: 0 continuous, > 0 step */
    double frame0[BG_MADS_MAX_DIM];                  /* initial frame size; 0: NOMAD's default */
    int n_x0;
    double x0[BG_MADS_MAX_X0][BG_MADS_MAX_DIM];
    int m;
    bg_mads_outtype out[BG_MADS_MAX_OUT];
} bg_mads_problem;

/* n variables (real, unbounded), m outputs: out[0] = OBJ, the rest EXTRA;
 * one starting point at 0. Fill in the rest by hand. */
void bg_mads_problem_init(bg_mads_problem *p, int n, int m);
/* Sizes, types, bounds, starting points (inside the bounds, integral for
 * integer/categorical, multiples of the granularity), one OBJ output. */
bg_status bg_mads_problem_check(bg_ctx *ctx, const bg_mads_problem *p);

/* Evaluate `count` points (x: count*n row-major). Write count*m outputs and
 * ok[i] = false for a failed evaluation (its outputs are then ignored). A
 * status other than BG_OK aborts the run with that error. */
typedef bg_status (*bg_mads_eval_fn)(void *user, bg_ctx *ctx, int count, const double *x, double *out,
                                     bool *ok);
/* Categorical neighbourhood of x: write up to `max` points (n values each)
 * into out and return how many. NULL: for each categorical variable, every
 * other value in its bounds, the rest of x unchanged. */
typedef int (*bg_mads_neighbors_fn)(void *user, const double *x, int n, double *out, int max);

/* What an observer sees after each evaluation, in evaluation order (the order
 * of the points given to the eval callback, replayed ones interleaved). */
typedef struct {
    long index;          /* 0-based evaluation number (cache hits excluded) */
    int n, m;
    const double *x, *out;
    bool ok, counted, replayed;
    double f, h;         /* objective, infeasibility; INFINITY when failed or EB-violated */
    const char *step;    /* x0, speculative, quad, poll, poll2, extended, vns */
    long iteration;
    long bb_evals;       /* counted evaluations so far, this one included */
    bool improved;       /* a new best feasible point (or best infeasible while none is feasible) */
    bool has_feasible;
    double best_f, best_h;                  /* the incumbent after this evaluation */
    const double *mesh, *frame;             /* delta and Delta (n values) */
    double h_max;
} bg_mads_eval_info;
typedef bg_status (*bg_mads_observer_fn)(void *user, bg_ctx *ctx, const bg_mads_eval_info *e);

typedef enum {
    BG_MADS_STOP_NONE = 0,
    BG_MADS_STOP_MAX_BB_EVAL,
    BG_MADS_STOP_MAX_TIME,
    BG_MADS_STOP_MIN_MESH,       /* every continuous mesh size below min_mesh_size */
    BG_MADS_STOP_NO_NEW_POINTS,  /* all-granular problem at its finest mesh, nothing new to try */
    BG_MADS_STOP_MAX_ITERATIONS
} bg_mads_stop;
const char *bg_mads_stop_name(bg_mads_stop s);

typedef struct {
    long max_bb_eval;            /* <= 0: no limit */
    double max_time;             /* seconds of wall clock; <= 0: no limit */
    long max_iterations;         /* <= 0: no limit */
    uint32_t seed;               /* NOMAD SEED (default 0) */
    bg_mads_direction direction; /* default ORTHO N+1 QUAD */
    bool quad_model_search;      /* default true */
    bool speculative_search;     /* default true */
    double speculative_factor;   /* at least this many more steps along the last success (default 2) */
    bool model_sort;             /* order trial points by the quadratic model (default true) */
    bool opportunistic;          /* stop a step at the first success (default true) */
    bool anisotropic;            /* default true */
    double anisotropy_factor;    /* enlarge Delta_i when |d_i| > factor*Delta_i (default 3; NOMAD 0.1) */
    double min_mesh_size;        /* continuous coordinates; default 1e-13 */
    double h_max0;               /* default INFINITY */
    double rho;                  /* primary centre switch, default 0.1 */
    int block_size;              /* points per eval call (parallel evaluations), default 1 */
    /* VNS search (NOMAD's VNS_MADS_SEARCH, Audet, Bechard & Le Digabel 2008):
     * when the mesh has converged on a local minimum and budget is left,
     * shake the incumbent in a growing neighbourhood and descend from there
     * (docs/mads.md). Default true. */
    bool vns_search;
    double vns_trigger;          /* at most this fraction of the evaluations go to VNS (default 0.75) */
    double ext_poll_trigger;     /* extended poll: descend from neighbours with f < f* + trigger */
    bool ext_poll_relative;      /* trigger relative to |f*| (default true, 0.1) */
    bg_mads_neighbors_fn neighbors;
    void *neighbors_user;
    bg_mads_eval_fn eval;        /* required */
    void *eval_user;
    bg_mads_observer_fn observer;
    void *observer_user;
    /* Replay: earlier evaluations (a history) answered instead of the eval
     * callback when the run asks for the same point. */
    long n_replay;
    const double *replay_x;      /* n_replay * n */
    const double *replay_out;    /* n_replay * m */
    const bool *replay_ok;       /* n_replay; NULL: all ok */
} bg_mads_options;

void bg_mads_options_default(bg_mads_options *o);

typedef struct {
    bool has_feasible;
    double x[BG_MADS_MAX_DIM], f;           /* best feasible point */
    bool has_infeasible;
    double x_inf[BG_MADS_MAX_DIM], f_inf, h_inf; /* infeasible incumbent (PB) */
    long bb_evals;       /* counted evaluations */
    long evaluations;    /* every evaluation, counted or not, replayed or not */
    long replayed;       /* answered from the replay history */
    long failed;         /* failed evaluations */
    long cache_hits;     /* trial points found in the cache (not evaluated again) */
    long iterations;
    bg_mads_stop stop;
    double mesh[BG_MADS_MAX_DIM], frame[BG_MADS_MAX_DIM];
} bg_mads_result;

/* Run MADS. Returns BG_OK when a stopping criterion ended the run (r->stop
 * says which), or the error of a failing callback or bad problem. */
bg_status bg_mads_run(bg_ctx *ctx, const bg_mads_problem *p, const bg_mads_options *o, bg_mads_result *r);

#endif
