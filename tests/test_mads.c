/* MADS (search/mads*.c) on problems with known optima, through the C
 * callback API. The evaluation counts are "blackbox evaluations until the
 * best feasible f is within 1e-3 of the optimum", median over seeds 0-4 with
 * a 2000-evaluation budget, as measured for NOMAD 4.5.1 with its defaults:
 *   2-D Rosenbrock from (-1.2, 1) in [-5, 10]^2          NOMAD 103
 *   4-D Rosenbrock from (-1.2, 1, -1.2, 1)                NOMAD 508 (4 of 5 seeds; target 5 of 5)
 *   min x1 + x2 s.t. x1^2 + x2^2 <= 1, [-2, 2]^2, EB, (0, 0)        NOMAD 64
 *   the same with PB from (1.5, 1.5)                      NOMAD 78
 * Our measured numbers are in docs/mads.md; the tests assert them (a run is
 * deterministic), with NOMAD's as the bar where we meet it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../search/mads.h"
#include "harness.h"

typedef struct {
    int prob;         /* 0 rosen2, 1 rosen4, 2 circle EB, 3 circle PB */
    int n;
    long count, hit;  /* evaluations so far; first one within 1e-3 (-1: never) */
    double target;
    double *xs;       /* every evaluated point, when recording */
    long cap;
} bench;

static double rosen(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i + 1 < n; i++) {
        double a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
        s += 100 * a * a + b * b;
    }
    return s;
}

static bg_status bench_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    bench *b = user;
    for (int k = 0; k < count; k++) {
        const double *p = x + (size_t)k * b->n;
        double f, c = 0;
        if (b->prob <= 1) {
            f = rosen(p, b->n);
            out[k] = f;
        } else {
            f = p[0] + p[1];
            c = p[0] * p[0] + p[1] * p[1] - 1;
            out[2 * k] = f;
            out[2 * k + 1] = c;
        }
        ok[k] = true;
        if (b->xs && b->count < b->cap) memcpy(b->xs + (size_t)b->count * b->n, p, (size_t)b->n * sizeof *p);
        b->count++;
        if (b->hit < 0 && f <= b->target + 1e-3 && c <= 0) b->hit = b->count;
    }
    return BG_OK;
}

static void bench_problem(int prob, bg_mads_problem *p, bench *b)
{
    int n = prob == 1 ? 4 : 2;
    bg_mads_problem_init(p, n, prob <= 1 ? 1 : 2);
    memset(b, 0, sizeof *b);
    b->prob = prob;
    b->n = n;
    b->hit = -1;
    if (prob <= 1) {
        for (int i = 0; i < n; i++) {
            p->lb[i] = -5;
            p->ub[i] = 10;
            p->x0[0][i] = i % 2 == 0 ? -1.2 : 1;
        }
        b->target = 0;
    } else {
        for (int i = 0; i < n; i++) {
            p->lb[i] = -2;
            p->ub[i] = 2;
            p->x0[0][i] = prob == 2 ? 0 : 1.5;
        }
        p->out[1] = prob == 2 ? BG_MADS_EB : BG_MADS_PB;
        b->target = -sqrt(2.0);
    }
}

static void plain(bg_mads_options *o)
{
    /* MADS without models: NOMAD's DISABLE MODELS */
    o->quad_model_search = false;
    o->model_sort = false;
    o->direction = BG_MADS_ORTHO_NP1_NEG;
}

/* Evaluations to reach the target for seeds 0-4 (LONG_MAX when not reached),
 * sorted; returns how many seeds reached it. */
static int run_seeds(bg_t *tc, int prob, bool models, long *sorted)
{
    int reached = 0;
    for (int seed = 0; seed < 5; seed++) {
        bg_ctx ctx;
        bg_test_ctx(&ctx, 0);
        bg_mads_problem p;
        bench b;
        bench_problem(prob, &p, &b);
        bg_mads_options o;
        bg_mads_options_default(&o);
        if (!models) plain(&o);
        o.eval = bench_eval;
        o.eval_user = &b;
        o.max_bb_eval = 2000;
        o.seed = (uint32_t)seed;
        bg_mads_result r;
        CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &r));
        sorted[seed] = b.hit < 0 ? 2147483647L : b.hit;
        reached += b.hit >= 0;
        bg_ctx_free(&ctx);
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (sorted[j] < sorted[i]) {
                long t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    return reached;
}

static void report(const char *what, const long *s, int reached, long bar)
{
    char v[5][16];
    for (int i = 0; i < 5; i++) {
        if (s[i] == 2147483647L) snprintf(v[i], sizeof v[i], "-");
        else snprintf(v[i], sizeof v[i], "%ld", s[i]);
    }
    printf("    %-38s median %5s (seeds %s %s %s %s %s; %d/5 reached; NOMAD %ld)\n", what, v[2], v[0], v[1], v[2], v[3],
           v[4], reached, bar);
}

BG_TEST(mads_rosenbrock2_evaluations)
{
    long s[5];
    int reached = run_seeds(tc, 0, true, s);
    report("2-D Rosenbrock, quad model:", s, reached, 103);
    CHECK(reached == 5, "2-D Rosenbrock: %d/5 seeds reached 1e-3", reached);
    CHECK(s[2] <= 103, "2-D Rosenbrock: median %ld evaluations, NOMAD needs 103", s[2]);
    reached = run_seeds(tc, 0, false, s);
    report("2-D Rosenbrock, no model:", s, reached, 103);
    CHECK(reached == 5 && s[2] <= 205, "2-D Rosenbrock without models: median %ld (measured 205)", s[2]);
}

BG_TEST(mads_rosenbrock4_evaluations)
{
    long s[5];
    int reached = run_seeds(tc, 1, true, s);
    report("4-D Rosenbrock, quad model:", s, reached, 508);
    /* target: all five seeds. Seed 2's MADS converges on the local minimum
     * f = 3.70 (as one of NOMAD's five did); the VNS search gets it out
     * (582 evaluations), see docs/mads.md and the test below */
    CHECK(reached == 5, "4-D Rosenbrock: %d/5 seeds reached 1e-3 (measured 5)", reached);
    CHECK(s[2] <= 508, "4-D Rosenbrock: median %ld evaluations, NOMAD needs 508", s[2]);
    reached = run_seeds(tc, 1, false, s);
    report("4-D Rosenbrock, no model:", s, reached, 508);
    /* without models no seed gets within 1e-3 in 2000 evaluations */
    CHECK(reached >= 0, "4-D Rosenbrock without models");
}

/* Seed 2 on 4-D Rosenbrock: without VNS MADS stops on the minimum mesh size in
 * the local minimum f = 3.70 with most of the budget unused; with it (the
 * default) a shaken descent finds the global basin. Everything before the
 * convergence point is the same run. */
BG_TEST(mads_vns_escapes_local_minimum)
{
    for (int vns = 0; vns <= 1; vns++) {
        bg_ctx ctx;
        bg_test_ctx(&ctx, 0);
        bg_mads_problem p;
        bench b;
        bench_problem(1, &p, &b);
        bg_mads_options o;
        bg_mads_options_default(&o);
        CHECK(o.vns_search, "VNS search is on by default");
        o.vns_search = vns;
        o.eval = bench_eval;
        o.eval_user = &b;
        o.max_bb_eval = 2000;
        o.seed = 2;
        bg_mads_result r;
        CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &r));
        if (!vns) {
            CHECK(r.stop == BG_MADS_STOP_MIN_MESH && fabs(r.f - 3.7014) < 1e-3 && r.bb_evals < 500 && b.hit < 0,
                  "without VNS: stop %s f %g after %ld evaluations", bg_mads_stop_name(r.stop), r.f, r.bb_evals);
        } else {
            CHECK(r.f < 1e-3 && b.hit > 257 && b.hit <= 2000, "with VNS: f %g, reached 1e-3 after %ld", r.f, b.hit);
        }
        bg_ctx_free(&ctx);
    }
}

BG_TEST(mads_constrained_eb_evaluations)
{
    long s[5];
    int reached = run_seeds(tc, 2, true, s);
    report("x1+x2, circle EB from (0,0), quad:", s, reached, 64);
    CHECK(reached == 5, "EB: %d/5 seeds reached 1e-3", reached);
    CHECK(s[2] <= 64, "EB: median %ld evaluations, NOMAD needs 64", s[2]);
    reached = run_seeds(tc, 2, false, s);
    report("x1+x2, circle EB, no model:", s, reached, 64);
    CHECK(reached >= 3 && s[2] <= 151, "EB without models: median %ld, %d/5 reached (measured 151, 3/5)", s[2],
          reached);
}

BG_TEST(mads_constrained_pb_evaluations)
{
    long s[5];
    int reached = run_seeds(tc, 3, true, s);
    report("x1+x2, circle PB from (1.5,1.5), quad:", s, reached, 78);
    CHECK(reached == 5, "PB: %d/5 seeds reached 1e-3", reached);
    CHECK(s[2] <= 78, "PB: median %ld evaluations, NOMAD needs 78", s[2]);
    reached = run_seeds(tc, 3, false, s);
    report("x1+x2, circle PB, no model:", s, reached, 78);
    CHECK(reached == 5 && s[2] <= 183, "PB without models: median %ld (measured 183)", s[2]);
}

/* ---- properties ------------------------------------------------------------- */

static long run_recorded(bg_ctx *ctx, int prob, uint32_t seed, int block, long budget, double *xs, long cap,
                         bg_mads_result *r)
{
    bg_mads_problem p;
    bench b;
    bench_problem(prob, &p, &b);
    b.xs = xs;
    b.cap = cap;
    bg_mads_options o;
    bg_mads_options_default(&o);
    o.eval = bench_eval;
    o.eval_user = &b;
    o.max_bb_eval = budget;
    o.seed = seed;
    o.block_size = block;
    if (bg_mads_run(ctx, &p, &o, r) != BG_OK) return -1;
    return b.count;
}

BG_TEST(mads_cache_never_evaluates_twice)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    long cap = 3000;
    double *xs = malloc((size_t)cap * 4 * sizeof *xs);
    bg_mads_result r;
    for (int prob = 0; prob < 4; prob++) {
        int n = prob == 1 ? 4 : 2;
        long cnt = run_recorded(&ctx, prob, 3, 1, 2000, xs, cap, &r);
        CHECK(cnt > 50, "problem %d: %ld evaluations", prob, cnt);
        CHECK(r.cache_hits > 0, "problem %d: the cache was never hit, the test proves nothing", prob);
        long dups = 0;
        for (long a = 0; a < cnt; a++)
            for (long b = a + 1; b < cnt; b++) {
                bool same = true;
                for (int i = 0; i < n && same; i++)
                    same = fabs(xs[a * n + i] - xs[b * n + i]) <= 1e-13 * fmax(1.0, fabs(xs[a * n + i]));
                dups += same;
            }
        CHECK(dups == 0, "problem %d: %ld points evaluated twice", prob, dups);
    }
    free(xs);
    bg_ctx_free(&ctx);
}

BG_TEST(mads_deterministic_for_a_seed)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    long cap = 600;
    double *a = malloc((size_t)cap * 2 * sizeof *a), *b = malloc((size_t)cap * 2 * sizeof *b);
    double *c = malloc((size_t)cap * 2 * sizeof *c);
    for (int block = 1; block <= 4; block += 3) {
        bg_mads_result ra, rb, rc;
        long na = run_recorded(&ctx, 3, 7, block, 300, a, cap, &ra);
        long nb = run_recorded(&ctx, 3, 7, block, 300, b, cap, &rb);
        long nc = run_recorded(&ctx, 3, 8, block, 300, c, cap, &rc);
        CHECK(na == nb && na > 0, "block %d: %ld vs %ld evaluations", block, na, nb);
        CHECK(na > 0 && !memcmp(a, b, (size_t)na * 2 * sizeof *a), "block %d: same seed, different histories", block);
        CHECK(ra.f == rb.f && !memcmp(ra.x, rb.x, sizeof ra.x), "block %d: same seed, different results", block);
        long m = na < nc ? na : nc;
        CHECK(memcmp(a, c, (size_t)m * 2 * sizeof *a) != 0, "block %d: seeds 7 and 8 gave the same history", block);
    }
    free(a);
    free(b);
    free(c);
    bg_ctx_free(&ctx);
}

/* sum of (x_i - t_i)^2 with the optimum outside the box, integer x0, x1 */
typedef struct {
    long count, outside, fractional;
    const bg_mads_problem *p;
} boxcheck;

static bg_status box_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    boxcheck *b = user;
    static const double t[4] = {7.3, -9.6, 2.25, -0.4};
    for (int k = 0; k < count; k++) {
        const double *p = x + (size_t)k * 4;
        double f = 0;
        for (int i = 0; i < 4; i++) {
            f += (p[i] - t[i]) * (p[i] - t[i]);
            if (p[i] < b->p->lb[i] || p[i] > b->p->ub[i]) b->outside++;
        }
        b->fractional += p[0] != floor(p[0]) || p[1] != floor(p[1]);
        out[k] = f;
        ok[k] = true;
        b->count++;
    }
    return BG_OK;
}

BG_TEST(mads_bounds_and_integers)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_problem p;
    bg_mads_problem_init(&p, 4, 1);
    p.type[0] = p.type[1] = BG_MADS_INTEGER;
    double lb[4] = {-3, -4, -1, 0}, ub[4] = {5, 4, 1, 3}, x0[4] = {0, 0, 0, 1.5};
    for (int i = 0; i < 4; i++) {
        p.lb[i] = lb[i];
        p.ub[i] = ub[i];
        p.x0[0][i] = x0[i];
    }
    boxcheck b = {.p = &p};
    bg_mads_options o;
    bg_mads_options_default(&o);
    o.eval = box_eval;
    o.eval_user = &b;
    o.max_bb_eval = 400;
    bg_mads_result r;
    CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &r));
    CHECK(b.outside == 0, "%ld coordinates evaluated outside the bounds", b.outside);
    CHECK(b.fractional == 0, "%ld points with a fractional integer variable", b.fractional);
    /* the optimum on the box: (5, -4, 1, 0) */
    CHECK(r.x[0] == 5 && r.x[1] == -4, "integers ended at %g %g", r.x[0], r.x[1]);
    CHECK_NEAR(r.x[2], 1, 1e-9, "x2 at its upper bound");
    CHECK_NEAR(r.x[3], 0, 1e-9, "x3 at its lower bound");
    bg_ctx_free(&ctx);
}

/* f = (x - 1)^2 + T[c], c in 1..7 from 4: c = 4 costs 10, its neighbours
 * 2, 3, 5, 6 cost 100, c = 1 costs 0. Plain integer MADS polls c +- 1 (and
 * never enlarges that frame: no step in c ever succeeds); the extended poll
 * evaluates every category. */
static bg_status trap_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    static const double T[8] = {0, 0, 100, 100, 10, 100, 100, 100};
    for (int k = 0; k < count; k++) {
        double xv = x[2 * k], c = x[2 * k + 1];
        int ci = (int)c;
        ok[k] = ci >= 1 && ci <= 7 && c == ci;
        out[k] = ok[k] ? (xv - 1) * (xv - 1) + T[ci] : NAN;
    }
    (void)user;
    return BG_OK;
}

BG_TEST(mads_categorical_extended_poll_escapes)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    for (int cat = 0; cat <= 1; cat++) {
        bg_mads_problem p;
        bg_mads_problem_init(&p, 2, 1);
        p.lb[0] = -2;
        p.ub[0] = 4;
        p.lb[1] = 1;
        p.ub[1] = 7;
        p.x0[0][0] = 3;
        p.x0[0][1] = 4;
        p.type[1] = cat ? BG_MADS_CATEGORICAL : BG_MADS_INTEGER;
        bg_mads_options o;
        bg_mads_options_default(&o);
        o.eval = trap_eval;
        o.max_bb_eval = 300;
        /* the extended poll alone: the VNS search (on by default) also gets
         * the integer-coded run out of the trap once it has converged */
        o.vns_search = false;
        bg_mads_result r;
        CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &r));
        if (cat) {
            CHECK(r.x[1] == 1, "categorical: ended with c = %g (f %g), want 1", r.x[1], r.f);
            CHECK_NEAR(r.f, 0, 1e-6, "categorical: f");
        } else {
            CHECK(r.x[1] == 4, "integer: c = %g; the trap did not trap plain MADS (the test proves nothing)", r.x[1]);
            CHECK_NEAR(r.f, 10, 1e-6, "integer: f stuck at the c = 4 value");
        }
    }
    bg_ctx_free(&ctx);
}

/* A user neighbourhood (here: the two ends of the range) replaces the
 * default "every other value". */
static int ends_neighbors(void *user, const double *x, int n, double *out, int max)
{
    int *calls = user, k = 0;
    ++*calls;
    for (double v = 1; v <= 7 && k < max; v += 6) {
        if (v == x[1]) continue;
        memcpy(out + (size_t)k * n, x, (size_t)n * sizeof *x);
        out[(size_t)k * n + 1] = v;
        k++;
    }
    return k;
}

BG_TEST(mads_categorical_user_neighbourhood)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_problem p;
    bg_mads_problem_init(&p, 2, 1);
    p.lb[0] = -2;
    p.ub[0] = 4;
    p.lb[1] = 1;
    p.ub[1] = 7;
    p.x0[0][0] = 3;
    p.x0[0][1] = 4;
    p.type[1] = BG_MADS_CATEGORICAL;
    int calls = 0;
    bg_mads_options o;
    bg_mads_options_default(&o);
    o.eval = trap_eval;
    o.neighbors = ends_neighbors;
    o.neighbors_user = &calls;
    o.max_bb_eval = 200;
    bg_mads_result r;
    CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &r));
    CHECK(calls > 0, "the neighbourhood callback was never called");
    CHECK(r.x[1] == 1 && fabs(r.f) < 1e-6, "ended at c = %g, f = %g", r.x[1], r.f);
    bg_ctx_free(&ctx);
}

/* Resume: a run killed after K evaluations (the callback fails the run)
 * replays its history and ends exactly where an uninterrupted run ends. */
typedef struct {
    bench b;
    long kill_after;
    double *hx, *hout; /* the history: points and outputs in evaluation order */
    long nh, cap;
    int n, m;
} killable;

static bg_status kill_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    killable *k = user;
    if (k->kill_after >= 0 && k->b.count + count > k->kill_after)
        return bg_fail(ctx, BG_ERR_IO, "simulated kill after %ld evaluations", k->b.count);
    return bench_eval(&k->b, ctx, count, x, out, ok);
}

static bg_status kill_observe(void *user, bg_ctx *ctx, const bg_mads_eval_info *e)
{
    killable *k = user;
    if (e->replayed || k->nh >= k->cap) return BG_OK;
    memcpy(k->hx + (size_t)k->nh * k->n, e->x, (size_t)k->n * sizeof(double));
    memcpy(k->hout + (size_t)k->nh * k->m, e->out, (size_t)k->m * sizeof(double));
    k->nh++;
    return BG_OK;
}

BG_TEST(mads_resume_after_kill)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    for (int prob = 0; prob <= 3; prob += 3) {
        long cap = 2000;
        killable full = {.kill_after = -1}, part = {.kill_after = 57};
        bg_mads_result rf, rp, rr;
        killable *runs[2] = {&full, &part};
        bg_mads_problem p;
        for (int w = 0; w < 2; w++) {
            killable *k = runs[w];
            bench_problem(prob, &p, &k->b);
            k->n = p.n;
            k->m = p.m;
            k->cap = cap;
            k->hx = malloc((size_t)cap * p.n * sizeof(double));
            k->hout = malloc((size_t)cap * p.m * sizeof(double));
            bg_mads_options o;
            bg_mads_options_default(&o);
            o.eval = kill_eval;
            o.eval_user = k;
            o.observer = kill_observe;
            o.observer_user = k;
            o.max_bb_eval = 400;
            o.seed = 11;
            bg_status st = bg_mads_run(&ctx, &p, &o, w ? &rp : &rf);
            if (w == 0) CHECK_OK(&ctx, st);
            else CHECK(st == BG_ERR_IO, "the simulated kill did not stop the run");
        }
        CHECK(part.nh == 57, "killed run logged %ld evaluations", part.nh);
        /* resume: the same run with the partial history replayed */
        killable res = {.kill_after = -1, .cap = cap, .n = p.n, .m = p.m};
        bench_problem(prob, &p, &res.b);
        res.hx = malloc((size_t)cap * p.n * sizeof(double));
        res.hout = malloc((size_t)cap * p.m * sizeof(double));
        bg_mads_options o;
        bg_mads_options_default(&o);
        o.eval = kill_eval;
        o.eval_user = &res;
        o.observer = kill_observe;
        o.observer_user = &res;
        o.max_bb_eval = 400;
        o.seed = 11;
        o.n_replay = part.nh;
        o.replay_x = part.hx;
        o.replay_out = part.hout;
        CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &rr));
        CHECK(rr.replayed == 57, "replayed %ld evaluations, want 57", rr.replayed);
        CHECK(res.b.count + 57 == full.b.count, "resumed run evaluated %ld new points, the full run %ld in all",
              res.b.count, full.b.count);
        CHECK(rr.f == rf.f && !memcmp(rr.x, rf.x, sizeof rr.x) && rr.bb_evals == rf.bb_evals,
              "problem %d: resumed run ended at f = %.17g after %ld evaluations, uninterrupted at %.17g after %ld",
              prob, rr.f, rr.bb_evals, rf.f, rf.bb_evals);
        /* and the fresh evaluations are exactly the rest of the full history */
        CHECK(res.nh + 57 == full.nh && !memcmp(res.hx, full.hx + (size_t)57 * p.n, (size_t)res.nh * p.n * sizeof(double)),
              "problem %d: resumed evaluations differ from the uninterrupted run's", prob);
        for (killable *k = &full; k; k = k == &full ? &part : k == &part ? &res : NULL) {
            free(k->hx);
            free(k->hout);
        }
    }
    bg_ctx_free(&ctx);
}

/* Failed evaluations (x0 > 0.5 fails) never stop the search nor become incumbents. */
static bg_status failing_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    long *fails = user;
    for (int k = 0; k < count; k++) {
        const double *p = x + (size_t)k * 2;
        ok[k] = p[0] <= 0.5;
        *fails += !ok[k];
        out[k] = ok[k] ? (p[0] - 2) * (p[0] - 2) + (p[1] - 1) * (p[1] - 1) : 12345;
    }
    return BG_OK;
}

BG_TEST(mads_failed_evaluations)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_problem p;
    bg_mads_problem_init(&p, 2, 1);
    for (int i = 0; i < 2; i++) {
        p.lb[i] = -3;
        p.ub[i] = 3;
    }
    long fails = 0;
    bg_mads_options o;
    bg_mads_options_default(&o);
    o.eval = failing_eval;
    o.eval_user = &fails;
    o.max_bb_eval = 300;
    bg_mads_result r;
    CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &r));
    CHECK(fails > 0 && r.failed == fails, "failures: %ld seen, %ld counted", fails, r.failed);
    CHECK(r.has_feasible && r.x[0] <= 0.5, "best point in the failing region: %g", r.x[0]);
    CHECK_NEAR(r.x[0], 0.5, 1e-6, "best x0 at the edge of the working region");
    CHECK_NEAR(r.x[1], 1, 1e-6, "best x1");
    bg_ctx_free(&ctx);
}

/* EB with an infeasible start: phase one finds a feasible point first. */
BG_TEST(mads_eb_infeasible_start)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_problem p;
    bench b;
    bench_problem(2, &p, &b);
    p.x0[0][0] = p.x0[0][1] = 1.5;
    bg_mads_options o;
    bg_mads_options_default(&o);
    o.eval = bench_eval;
    o.eval_user = &b;
    o.max_bb_eval = 500;
    bg_mads_result r;
    CHECK_OK(&ctx, bg_mads_run(&ctx, &p, &o, &r));
    CHECK(r.has_feasible, "no feasible point from an EB-infeasible start");
    CHECK(b.hit > 0, "never within 1e-3 of the optimum (f = %g)", r.f);
    bg_ctx_free(&ctx);
}

BG_TEST(mads_problem_errors)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_problem p;
    bg_mads_problem_init(&p, 2, 1);
    p.lb[0] = 0;
    p.ub[0] = 1;
    p.x0[0][0] = 2;
    CHECK_ERR(&ctx, bg_mads_problem_check(&ctx, &p), BG_ERR_ARG, "outside its bounds");
    p.x0[0][0] = 0.5;
    p.type[0] = BG_MADS_INTEGER;
    CHECK_ERR(&ctx, bg_mads_problem_check(&ctx, &p), BG_ERR_ARG, "not an integer");
    p.type[0] = BG_MADS_REAL;
    p.out[0] = BG_MADS_EB;
    CHECK_ERR(&ctx, bg_mads_problem_check(&ctx, &p), BG_ERR_ARG, "no OBJ output");
    p.out[0] = BG_MADS_OBJ;
    p.type[1] = BG_MADS_CATEGORICAL;
    CHECK_ERR(&ctx, bg_mads_problem_check(&ctx, &p), BG_ERR_ARG, "needs finite bounds");
    p.type[1] = BG_MADS_REAL;
    bg_mads_options o;
    bg_mads_options_default(&o);
    bg_mads_result r;
    CHECK_ERR(&ctx, bg_mads_run(&ctx, &p, &o, &r), BG_ERR_ARG, "no evaluation callback");
    bg_ctx_free(&ctx);
}
