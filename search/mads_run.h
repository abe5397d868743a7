/* The state of one bg_mads_run and the steps that share it (internal):
 * mads.c (the loop), mads_barrier.c, mads_eval.c, mads_search.c,
 * mads_pollstep.c. */
#ifndef BG_MADS_RUN_H
#define BG_MADS_RUN_H
#include "../engine/clock.h"
#include "mads_internal.h"

enum { SUCC_NONE = 0, SUCC_PARTIAL = 1, SUCC_FULL = 2 };

/* A point to evaluate: already on the mesh and inside the bounds. */
typedef struct {
    double x[MADS_N];
    long from;        /* cache index of its centre, -1 for starting points */
    double k1, k2;    /* sort keys (smaller first) */
    int seq;          /* generation order: ties and stable sorting */
} mads_trial;

#define MADS_MAX_TRIALS 512

typedef struct {
    bg_ctx *ctx;
    bg_mads_problem pb;          /* normalised copy: integer bounds rounded inward, B in [0,1] */
    const bg_mads_options *o;
    bg_mads_result *r;
    mads_cache cache, replay;
    mads_mesh mesh;
    int obj_col, cnt_col;
    bool has_eb, has_cat;
    /* barrier */
    long xf, xi;                 /* feasible / infeasible incumbents (cache index), -1 none */
    long *filt;                  /* non-dominated infeasible points with h <= hmax */
    long nfilt, capfilt;
    double hmax;
    bool phase_one;              /* no point satisfies the EB constraints yet: treat them as PB */
    long fallback;               /* poll centre while no point is valid (x0 failed) */
    /* run */
    uint64_t rng;                /* next Philox counter */
    long iteration;
    long evals_this_iter;
    long idle;                   /* consecutive iterations without a new evaluation */
    double t0;
    bg_mads_stop stop;
    const char *step;
    /* VNS search (mads_vns.c) */
    mads_mesh mesh0;             /* the initial mesh: descents start on it */
    long vns_c;                  /* centre of the running descent, -1 none */
    int vns_k, vns_kmax;         /* neighbourhood index (1 after a success) and the last one */
    long vns_evals;              /* counted evaluations spent by VNS */
    mads_trial *trials;          /* MADS_MAX_TRIALS work buffer for the steps */
    double *evx, *evout;         /* block buffers for the eval callback */
    bool *evok;
    int *evsrc;
} mads_run;

/* mads_barrier.c */
double mads_h(const mads_run *R, long e);
double mads_f(const mads_run *R, long e);
int mads_classify(const mads_run *R, long e);
/* The success a point with these values would be (model screening). */
int mads_classify_fh(const mads_run *R, double f, double h);
bg_status mads_barrier_insert(mads_run *R, long e);
bg_status mads_barrier_rebuild(mads_run *R);
long mads_primary(const mads_run *R);
long mads_secondary(const mads_run *R);
void mads_hmax_update(mads_run *R, int level, long xi_prev, double h_xi_prev);

/* mads_eval.c: evaluate trials[0..nt) in order, in blocks, skipping cached
 * points; opportunistic stops after the block holding a full success (or,
 * with stop_f finite, a feasible point below stop_f). *level gets the best
 * success; *best_e (may be NULL) the lowest-f feasible new point. */
bg_status mads_eval_trials(mads_run *R, mads_trial *trials, int nt, const char *step, double stop_f, int *level,
                           long *best_e);
bool mads_should_stop(mads_run *R);
/* Clamp to the bounds and round granular coordinates. */
void mads_snap(const mads_run *R, double *x);

/* mads_search.c */
bg_status mads_speculative_search(mads_run *R, long c1, long c2, int *level);
bg_status mads_quad_search(mads_run *R, long c, const char *step, int *level);

/* mads_vns.c: VNS search. mads_vns_shake starts a descent from a random point
 * of the next neighbourhood of the incumbent (false in *started when no
 * neighbourhood or budget share is left); mads_vns_iterate runs one
 * iteration of the descent. */
void mads_vns_init(mads_run *R);
bg_status mads_vns_shake(mads_run *R, bool *started);
bg_status mads_vns_iterate(mads_run *R);

/* mads_pollstep.c */
bg_status mads_poll(mads_run *R, long c1, long c2, int *level);
bg_status mads_extended_poll(mads_run *R, long c, int *level);
/* One poll around c alone, opportunistic at the first feasible f < stop_f. */
bg_status mads_poll_local(mads_run *R, long c, double stop_f, const char *step, int *level);

#endif
