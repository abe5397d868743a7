/* `budgie search nas|hpo RECIPE [options] [--key value ...]`: MADS over real
 * training runs (search/drive/, docs/search.md). Each evaluation is one
 * `budgie train` child per repeat, on the search's resolved recipe with the
 * point's options, scored on the validation split; the history gets one
 * fsynced line per evaluation as it ends, and --resume replays it. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../search/drive/drive.h"
#include "../train/recipe.h"
#include "options.h"
#include "search_verbs.h"
#include "../engine/clock.h"

void bg_search_drive_usage(FILE *f)
{
    fprintf(f,
        "       budgie search nas RECIPE [options] [--key value ...]\n"
        "       budgie search hpo RECIPE [options] [--key value ...]\n"
        "\n"
        "nas: the depth/width (and with --vars, resolution) multipliers of the recipe's model family\n"
        "  (seed-spec 1.3; bounds d 0.25:4, w 0.05:2.5, r 0.125:10; X0 the recipe's spec). Objective\n"
        "  --objective accuracy: maximise validation accuracy; macs: minimise MACs subject to validation\n"
        "  accuracy >= the baseline's (X0, trained first; a progressive-barrier constraint). Points the\n"
        "  builder rejects or that need more than mem_cap are infeasible without training.\n"
        "hpo: lr = 10^x times the optimizer's multiplier, wd = 10^x, the optimizer among adadelta (10x),\n"
        "  adagrad (/10), sgd, adam (/100), adamw (/100), adamax (/50), asgd (/10) (categorical, extended\n"
        "  poll), batch = 2^x (seed-spec 1.4); objective the mean validation accuracy over --repeats seeds.\n"
        "Each evaluation runs `budgie train DIR/recipe --key value ... --out DIR/evals/N` (a failed run:\n"
        "an infeasible point). Options (other --key value pairs override the recipe's keys):\n"
        "  --out DIR              the search folder (history.jsonl, recipe, evals/); default search-VERB-TIME\n"
        "  --budget-per-eval S    seconds of training per run (default 60)\n"
        "  --evals N              evaluations (default 100)\n"
        "  --objective accuracy|macs   (nas)\n"
        "  --vars d,w,r           (nas) which multipliers to search (default d,w: see docs/search.md on r)\n"
        "  --bounds NAME=LO:HI,.. narrower or wider bounds\n"
        "  --repeats K            runs per point with seeds seed..seed+K-1, scored by their mean (default 1)\n"
        "  --jobs N               runs at once (CUDA_VISIBLE_DEVICES round-robin over --devices)\n"
        "  --devices N            GPUs to spread the runs over (default: all seen, 0 on the CPU)\n"
        "  --launcher local|parallel|slurm   where the runs go: child processes here (default), GNU parallel\n"
        "                         (--jobs N per host), or a Slurm job array per batch (--jobs N at once)\n"
        "  --sshloginfile FILE    (parallel) hosts for the runs; the search folder, data and binary must be at\n"
        "                         the same paths on every host (a shared filesystem)\n"
        "  --partition P          (slurm) the partition the arrays go to\n"
        "  --sbatch-args=\"...\"    (slurm) more sbatch options, split at blanks (e.g. \"--gres=gpu:1 --mem=8G\")\n"
        "  --budgie PATH          the budgie binary the runs use (default this one)\n"
        "  --eval-timeout S       kill a run after S seconds (default 1.5 x budget + 30)\n"
        "  --seed N               the MADS seed (default 0)\n"
        "  --resume               replay DIR/history.jsonl and go on; nothing is evaluated twice\n"
        "Exit status: 0 a feasible point was found, 1 none was (or every evaluation failed), 2 bad input.\n");
}

typedef struct {
    int point;   /* index in the block */
    int rep;
    bg_drive_score sc;
    bool ok;
    char why[320];
} run_res;

typedef struct {
    bg_drive_space sp;
    bool macs;               /* objective */
    int m, repeats;
    long seed0;              /* the recipe's seed */
    long batch;
    double mem_cap, budget, timeout;
    char dir[700], hist[800], recipe_path[800];
    bg_drive_launcher *launcher;
    /* this search's evaluations so far (history and new), for dedupe */
    long n_done, cap_done;
    char **key;
    double *out_done, *acc_done;
    bool *ok_done;
    long *eval_no;
    long next_eval;
    double baseline_acc;     /* macs: the X0 run's accuracy (NAN until known) */
    long n_ok;
    bg_status err;
    bg_ctx *ctx;
} drive;

static bool remember(drive *d, const char *key, const double *out, double acc, bool ok, long eval)
{
    if (d->n_done == d->cap_done) {
        long cap = d->cap_done ? 2 * d->cap_done : 64;
        char **k = realloc(d->key, (size_t)cap * sizeof *k);
        if (k) d->key = k;
        double *o = realloc(d->out_done, (size_t)cap * d->m * sizeof *o);
        if (o) d->out_done = o;
        double *a = realloc(d->acc_done, (size_t)cap * sizeof *a);
        if (a) d->acc_done = a;
        bool *b = realloc(d->ok_done, (size_t)cap * sizeof *b);
        if (b) d->ok_done = b;
        long *e = realloc(d->eval_no, (size_t)cap * sizeof *e);
        if (e) d->eval_no = e;
        if (!k || !o || !a || !b || !e) return false;
        d->cap_done = cap;
    }
    long i = d->n_done++;
    d->key[i] = strdup(key ? key : "");
    memcpy(d->out_done + (size_t)i * d->m, out, (size_t)d->m * sizeof *out);
    d->acc_done[i] = acc, d->ok_done[i] = ok, d->eval_no[i] = eval;
    if (ok) d->n_ok++;
    return d->key[i] != NULL;
}

static long find_key(const drive *d, const char *key)
{
    if (!key[0]) return -1;
    for (long i = 0; i < d->n_done; i++)
        if (!strcmp(d->key[i], key)) return i;
    return -1;
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* The outputs of a point from its mean validation accuracy. */
static void outputs(const drive *d, double acc, double macs, double *out)
{
    if (d->macs) {
        out[0] = macs / 1e6;
        out[1] = isfinite(d->baseline_acc) ? d->baseline_acc - acc : 0;
    } else {
        out[0] = -acc;
    }
}

typedef struct {
    const double *x;
    char args_line[1024];
    char key[320];
    double macs;
    bool checked_ok;
    char why[320];
    long same_as;            /* index into the done list, or -1 */
    int pending_same;        /* another point of this block with the same key, or -1 */
    long eval;
    double t0;
} point_state;

static bg_status append_record(drive *d, long eval, const double *x, const point_state *ps, bool ok,
                               const double *out, double acc, const run_res *runs, int n_runs, double wall,
                               long same_as_eval)
{
    json_t *o = json_object(), *jx = json_array(), *jo = json_array(), *jr = json_array();
    for (int i = 0; i < d->sp.n; i++) json_array_append_new(jx, json_real(x[i]));
    for (int j = 0; j < d->m; j++) json_array_append_new(jo, ok ? jnum(out[j]) : json_null());
    json_object_set_new(o, "eval", json_integer(eval));
    json_object_set_new(o, "x", jx);
    json_object_set_new(o, "args", json_string(ps->args_line));
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "out", jo);
    json_object_set_new(o, "f", ok ? jnum(out[0]) : json_null());
    double h = 0;
    if (d->macs && ok) h = out[1] > 0 ? out[1] * out[1] : 0;
    json_object_set_new(o, "h", ok ? json_real(h) : json_null());
    json_object_set_new(o, "acc", jnum(acc));
    if (d->sp.kind == BG_DRIVE_NAS && ps->macs > 0) json_object_set_new(o, "macs", json_real(ps->macs));
    json_object_set_new(o, "key", json_string(ps->key));
    for (int r = 0; r < n_runs; r++) {
        const run_res *rr = &runs[r];
        char dir[900];
        snprintf(dir, sizeof dir, "evals/%ld%s", eval, "");
        if (d->repeats > 1) snprintf(dir, sizeof dir, "evals/%ld-%d", eval, rr->rep);
        json_t *one = json_pack("{s:s, s:I, s:b}", "dir", dir, "seed", (json_int_t)(d->seed0 + rr->rep), "ok", rr->ok);
        json_object_set_new(one, "val_acc", rr->sc.best_val >= 0 ? json_real(rr->sc.best_val) : json_null());
        json_object_set_new(one, "test_acc", rr->sc.best_test >= 0 ? json_real(rr->sc.best_test) : json_null());
        json_object_set_new(one, "epochs", json_integer(rr->sc.epochs));
        json_object_set_new(one, "images_per_s", json_real(rr->sc.images_per_s));
        if (!rr->ok) json_object_set_new(one, "error", json_string(rr->why));
        json_array_append_new(jr, one);
    }
    json_object_set_new(o, "runs", jr);
    if (!ps->checked_ok) json_object_set_new(o, "error", json_string(ps->why));
    else if (!ok && n_runs) json_object_set_new(o, "error", json_string(runs[0].ok && n_runs > 1 ? runs[n_runs - 1].why : runs[0].why));
    if (same_as_eval > 0) json_object_set_new(o, "same_as", json_integer(same_as_eval));
    json_object_set_new(o, "wall_s", json_real(wall));
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!s) return bg_fail(d->ctx, BG_ERR_OOM, "search: out of memory");
    bg_status st = bg_drive_history_append(d->ctx, d->hist, s);
    free(s);
    /* the terminal: one line per evaluation */
    if (!st) {
        printf("eval %-4ld %-48s ", eval, ps->args_line);
        if (ok) printf("val acc %.2f%%%s", 100 * acc, d->macs ? "" : "");
        else printf("infeasible: %s", !ps->checked_ok ? ps->why : n_runs ? runs[0].ok && n_runs > 1 ? runs[n_runs - 1].why : runs[0].why : "?");
        if (d->macs && ps->macs > 0) printf(", %.2f MMACs", ps->macs / 1e6);
        if (same_as_eval > 0) printf(" (the network of eval %ld)", same_as_eval);
        printf(" [%.1f s]\n", wall);
        fflush(stdout);
    }
    return st;
}

/* A run folder that a killed search left without a history line: moved
 * aside, since budgie train never reuses a folder. */
static void clear_stale(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) return;
    char to[1100];
    for (int k = 1; k < 1000; k++) {
        snprintf(to, sizeof to, "%s.stale-%d", dir, k);
        if (stat(to, &st) != 0) break;
    }
    rename(dir, to);
}

typedef struct {
    drive *d;
    run_res *res;
    point_state *ps;
    int *left;          /* runs still going per point */
} batch_ctx;

static void finish_point(drive *d, point_state *ps, run_res *runs, int n_runs)
{
    double acc = 0;
    bool ok = true;
    for (int r = 0; r < n_runs; r++) {
        ok = ok && runs[r].ok;
        acc += runs[r].sc.best_val;
    }
    acc = ok ? acc / n_runs : NAN;
    if (d->macs && !isfinite(d->baseline_acc) && ok) d->baseline_acc = acc; /* X0 comes first */
    double out[BG_MADS_MAX_OUT] = {0};
    outputs(d, acc, ps->macs, out);
    const double wall = bg_monotonic_s() - ps->t0;
    if (!d->err && append_record(d, ps->eval, ps->x, ps, ok, out, acc, runs, n_runs, wall, -1)) d->err = d->ctx->status;
    if (!remember(d, ps->key, out, acc, ok, ps->eval) && !d->err)
        d->err = bg_fail(d->ctx, BG_ERR_OOM, "search: out of memory");
}

static void job_done(void *user, bg_drive_job *job)
{
    batch_ctx *b = user;
    drive *d = b->d;
    run_res *rr = job->user;
    rr->ok = false;
    if (job->why[0]) snprintf(rr->why, sizeof rr->why, "%s", job->why);
    else if (job->spawn_failed) snprintf(rr->why, sizeof rr->why, "could not start the run");
    else if (job->timed_out) snprintf(rr->why, sizeof rr->why, "killed after %g s (eval timeout)", job->timeout_s);
    else if (job->signal) snprintf(rr->why, sizeof rr->why, "killed by signal %d", job->signal);
    else {
        bg_ctx c;
        bg_ctx_init(&c, BG_CPU, 0);
        if (bg_drive_score_read(&c, job->dir, &rr->sc)) snprintf(rr->why, sizeof rr->why, "%s", bg_errmsg(&c));
        bg_ctx_free(&c);
        if (job->exit_code != 0) {
            char err[1100], last[400];
            snprintf(err, sizeof err, "%s/stderr.txt", job->dir);
            bg_drive_last_line(err, last, sizeof last);
            snprintf(rr->why, sizeof rr->why, "exit %d: %.280s", job->exit_code, last);
        } else if (!rr->sc.done) {
            snprintf(rr->why, sizeof rr->why, "the run's log has no done line");
        } else if (rr->sc.best_val < 0) {
            snprintf(rr->why, sizeof rr->why, "no validation accuracy: the budget ended before the first epoch's "
                     "evaluation");
        } else {
            rr->ok = true;
        }
    }
    if (--b->left[rr->point] == 0) {
        int first = 0;
        while (b->res[first].point != rr->point) first++;
        finish_point(d, &b->ps[rr->point], &b->res[first], d->repeats);
    }
}

static bg_status drv_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    drive *d = user;
    const int n = d->sp.n;
    point_state *ps = calloc((size_t)count, sizeof *ps);
    run_res *res = calloc((size_t)count * d->repeats, sizeof *res);
    bg_drive_job *jobs = calloc((size_t)count * d->repeats, sizeof *jobs);
    int *left = calloc((size_t)count, sizeof *left);
    char (*argbuf)[1024] = calloc((size_t)count, sizeof *argbuf);
    char (*sdir)[8][32] = calloc((size_t)count * d->repeats, sizeof *sdir);
    if (!ps || !res || !jobs || !left || !argbuf || !sdir) {
        free(ps), free(res), free(jobs), free(left), free(argbuf), free(sdir);
        return bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
    }
    int n_jobs = 0;
    for (int i = 0; i < count; i++) {
        point_state *p = &ps[i];
        p->x = x + (size_t)i * n;
        p->same_as = -1, p->pending_same = -1;
        p->t0 = bg_monotonic_s();
        const char *args[BG_DRIVE_MAX_ARGS];
        int na = 0;
        if (bg_drive_decode(ctx, &d->sp, p->x, argbuf[i], sizeof argbuf[i], args, &na)) goto fail;
        bg_drive_decode_line(&d->sp, p->x, p->args_line, sizeof p->args_line);
        p->checked_ok = true;
        if (d->sp.kind == BG_DRIVE_NAS) {
            bg_drive_model_check mc;
            if (bg_drive_check_model(ctx, args[1], d->batch, d->mem_cap, &mc)) goto fail;
            p->checked_ok = mc.ok, p->macs = mc.macs;
            snprintf(p->why, sizeof p->why, "%s", mc.why);
            snprintf(p->key, sizeof p->key, "%s", mc.key);
        } else {
            snprintf(p->key, sizeof p->key, "%s", p->args_line);
        }
        if (p->checked_ok) {
            p->same_as = find_key(d, p->key);
            for (int j = 0; j < i && p->same_as < 0; j++)
                if (ps[j].checked_ok && ps[j].same_as < 0 && ps[j].pending_same < 0 && !strcmp(ps[j].key, p->key))
                    p->pending_same = j;
        }
        if (!p->checked_ok || p->same_as >= 0 || p->pending_same >= 0) continue;
        p->eval = d->next_eval++;
        for (int r = 0; r < d->repeats; r++) {
            bg_drive_job *j = &jobs[n_jobs];
            run_res *rr = &res[n_jobs];
            rr->point = i, rr->rep = r;
            if (d->repeats > 1) snprintf(j->dir, sizeof j->dir, "%s/evals/%ld-%d", d->dir, p->eval, r);
            else snprintf(j->dir, sizeof j->dir, "%s/evals/%ld", d->dir, p->eval);
            clear_stale(j->dir);
            int a = 1;
            j->argv[a++] = "train";
            j->argv[a++] = d->recipe_path;
            for (int k = 0; k < na; k++) j->argv[a++] = (char *)args[k];
            j->argv[a++] = "--out";
            j->argv[a++] = j->dir;
            if (d->repeats > 1) {
                snprintf(sdir[n_jobs][0], sizeof sdir[n_jobs][0], "%ld", d->seed0 + r);
                j->argv[a++] = "--seed";
                j->argv[a++] = sdir[n_jobs][0];
            }
            j->argv[a] = NULL;
            j->timeout_s = d->timeout;
            j->user = rr;
            n_jobs++;
            left[i]++;
        }
    }
    /* the runs; argv points into argbuf, which lives until here */
    {
        /* jobs' argv strings for decoded args were pointers into argbuf: stable */
        batch_ctx b = {d, res, ps, left};
        /* infeasible-without-training points first, in order */
        for (int i = 0; i < count; i++) {
            point_state *p = &ps[i];
            if (p->checked_ok) continue;
            p->eval = d->next_eval++;
            double o[BG_MADS_MAX_OUT] = {0};
            if (append_record(d, p->eval, p->x, p, false, o, NAN, NULL, 0, bg_monotonic_s() - p->t0, -1)) goto fail;
            if (!remember(d, "", o, NAN, false, p->eval)) goto oom;
        }
        if (n_jobs && d->launcher->run(d->launcher, ctx, jobs, n_jobs, job_done, &b)) goto fail;
        if (d->err) goto fail;
        /* points that are a network already evaluated: its result, recorded under their own x */
        for (int i = 0; i < count; i++) {
            point_state *p = &ps[i];
            if (!p->checked_ok || (p->same_as < 0 && p->pending_same < 0)) continue;
            long src = p->same_as >= 0 ? p->same_as : find_key(d, p->key);
            if (src < 0) continue;
            p->eval = d->next_eval++;
            const bool sok = d->ok_done[src];
            const double acc = d->acc_done[src];
            double o[BG_MADS_MAX_OUT] = {0};
            outputs(d, acc, p->macs, o);
            if (append_record(d, p->eval, p->x, p, sok, o, acc, NULL, 0, 0, d->eval_no[src])) goto fail;
            if (!remember(d, p->key, o, acc, sok, p->eval)) goto oom;
        }
    }
    /* answers, from the records just made (the last with each point's key or eval) */
    for (int i = 0; i < count; i++) {
        long src = -1;
        for (long k = d->n_done - 1; k >= 0 && src < 0; k--)
            if (d->eval_no[k] == ps[i].eval) src = k;
        ok[i] = src >= 0 && d->ok_done[src];
        for (int j = 0; j < d->m; j++) out[(size_t)i * d->m + j] = src >= 0 ? d->out_done[(size_t)src * d->m + j] : NAN;
    }
    free(ps), free(res), free(jobs), free(left), free(argbuf), free(sdir);
    return BG_OK;
oom:
    bg_fail(ctx, BG_ERR_OOM, "search: out of memory");
fail:
    free(ps), free(res), free(jobs), free(left), free(argbuf), free(sdir);
    return ctx->status ? ctx->status : BG_ERR_IO;
}

/* ---- the verb ------------------------------------------------------------------ */

static const char *recipe_file(const char *arg, char *buf, size_t cap)
{
    struct stat st;
    if (stat(arg, &st) == 0 || strchr(arg, '/')) return arg;
    snprintf(buf, cap, "recipes/%s", arg);
    return stat(buf, &st) == 0 ? buf : arg;
}

static bool mkdir_p(const char *path)
{
    char buf[800];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return false;
            *p = '/';
        }
    return mkdir(buf, 0777) == 0 || errno == EEXIST;
}

static bool is_search_opt(const bg_opt *opts, int n, const char *a)
{
    if (strncmp(a, "--", 2)) return false;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(a + 2, "="), a + 2);
    if (!strcmp(name, "help")) return true;
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, name)) return true;
    return false;
}

static json_t *header_json(const drive *d, const char *verb, const char *recipe_text, const char *objective)
{
    json_t *vars = json_array();
    for (int i = 0; i < d->sp.n; i++) {
        const bg_drive_var *v = &d->sp.v[i];
        json_array_append_new(vars, json_pack("{s:s, s:s, s:f, s:f, s:f, s:f}", "name", v->name, "type",
                                              v->type == BG_MADS_REAL ? "R" : v->type == BG_MADS_INTEGER ? "I" : "C",
                                              "lb", v->lb, "ub", v->ub, "x0", v->x0, "granularity", v->granularity));
    }
    return json_pack("{s:s, s:i, s:s, s:o, s:s, s:f, s:i, s:s}", "search", verb, "version", 1, "recipe", recipe_text,
                     "vars", vars, "objective", objective, "budget_per_eval", d->budget, "repeats", d->repeats,
                     "outputs", d->macs ? "OBJ PB" : "OBJ");
}

int bg_search_drive(const char *verb, int argc, char **argv)
{
    const char *recipe_arg = NULL, *out_dir = NULL, *objective = "accuracy", *vars = NULL, *bounds = NULL,
               *launcher = "local", *budgie = NULL, *sshloginfile = NULL, *partition = NULL, *sbatch_args = NULL;
    double budget = 60, timeout = 0;
    int64_t evals = 100, repeats = 1, jobs = 1, devices = -1, seed = 0;
    bool resume = false;
    const bool nas = !strcmp(verb, "nas");
    const bg_opt opts[] = {
        {.name = "out", .type = BG_OPT_STR, .dst = &out_dir},
        {.name = "budget-per-eval", .type = BG_OPT_NUM, .dst = &budget, .min = 0.1, .max = 1e7},
        {.name = "evals", .type = BG_OPT_INT, .dst = &evals, .min = 1, .max = 1e6},
        {.name = "objective", .type = BG_OPT_CHOICE, .dst = &objective, .choices = "accuracy|macs"},
        {.name = "vars", .type = BG_OPT_STR, .dst = &vars},
        {.name = "bounds", .type = BG_OPT_STR, .dst = &bounds},
        {.name = "repeats", .type = BG_OPT_INT, .dst = &repeats, .min = 1, .max = 8},
        {.name = "jobs", .type = BG_OPT_INT, .dst = &jobs, .min = 1, .max = 256},
        {.name = "devices", .type = BG_OPT_INT, .dst = &devices, .min = 0, .max = 256},
        {.name = "launcher", .type = BG_OPT_CHOICE, .dst = &launcher, .choices = "local|parallel|slurm"},
        {.name = "sshloginfile", .type = BG_OPT_STR, .dst = &sshloginfile},
        {.name = "partition", .type = BG_OPT_STR, .dst = &partition},
        {.name = "sbatch-args", .type = BG_OPT_STR, .dst = &sbatch_args},
        {.name = "budgie", .type = BG_OPT_STR, .dst = &budgie},
        {.name = "eval-timeout", .type = BG_OPT_NUM, .dst = &timeout, .min = 0.1, .max = 1e7},
        {.name = "seed", .type = BG_OPT_INT, .dst = &seed, .min = 0, .max = 4294967295.0},
        {.name = "resume", .type = BG_OPT_FLAG, .dst = &resume},
    };
    const int n_opts = (int)(sizeof opts / sizeof *opts);
    char vname[32];
    snprintf(vname, sizeof vname, "search %s", verb);
    /* split: the search's own options, and --key value recipe overrides */
    char **mine = calloc((size_t)argc + 1, sizeof *mine), **over = calloc((size_t)argc + 1, sizeof *over);
    int n_mine = 1, n_over = 0;
    if (!mine || !over) return 1;
    mine[0] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || is_search_opt(opts, n_opts, argv[i]) || !strcmp(argv[i], "-h")) {
            mine[n_mine++] = argv[i];
            /* the value of a search option that takes one */
            if (!strncmp(argv[i], "--", 2) && !strchr(argv[i], '=') && strcmp(argv[i], "--resume") &&
                strcmp(argv[i], "--help") && i + 1 < argc)
                mine[n_mine++] = argv[++i];
            continue;
        }
        over[n_over++] = argv[i];
        if (!strchr(argv[i], '=') && i + 1 < argc) over[n_over++] = argv[++i];
    }
    int n_pos = 0, rc = 2;
    const int prc = bg_opts_parse(vname, opts, n_opts, n_mine, mine, &recipe_arg, 1, &n_pos);
    drive *d = calloc(1, sizeof *d);
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, 0);
    bg_recipe r;
    bg_recipe_defaults(&r);
    char buf[700], *rtext = NULL, *header = NULL;
    bg_drive_launcher lau = {0};
    bg_drive_history h = {0};
    if (prc == 1) {
        printf("usage:\n");
        bg_search_drive_usage(stdout);
        rc = 0;
        goto out;
    }
    if (prc) goto out;
    if (!d) goto out;
    d->ctx = &ctx;
    d->baseline_acc = NAN;
    if (!recipe_arg) {
        fprintf(stderr, "budgie %s: give a RECIPE (a file or a name in recipes/)\n", vname);
        goto out;
    }
    if (!nas && strcmp(objective, "accuracy")) {
        fprintf(stderr, "budgie %s: --objective %s is for nas; hpo maximises validation accuracy\n", vname, objective);
        goto out;
    }
    if (!nas && vars) {
        fprintf(stderr, "budgie %s: --vars is for nas (hpo searches lr, wd, optimizer, batch)\n", vname);
        goto out;
    }
    /* 1. the recipe, its overrides, and the search's own keys */
    if (bg_recipe_load(&ctx, &r, recipe_file(recipe_arg, buf, sizeof buf))) goto bad;
    for (int i = 0; i < n_over; i++) {
        const char *a = over[i], *eq = strchr(a, '='), *v;
        char key[64], where[80];
        if (strncmp(a, "--", 2) || !a[2]) {
            bg_fail(&ctx, BG_ERR_ARG, "'%.200s': expected --key value", a);
            goto bad;
        }
        snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
        for (char *p = key; *p; p++)
            if (*p == '-') *p = '_';
        snprintf(where, sizeof where, "--%s", key);
        if (eq) v = eq + 1;
        else if (i + 1 < n_over && strncmp(over[i + 1], "--", 2)) v = over[++i];
        else {
            bg_fail(&ctx, BG_ERR_ARG, "%s needs a value", a);
            goto bad;
        }
        if (!strcmp(key, "out") || !strcmp(key, "budget") || !strcmp(key, "select")) {
            bg_fail(&ctx, BG_ERR_ARG, "--%s belongs to the search (each run gets its own folder, --budget-per-eval "
                    "seconds, and is selected on validation)", key);
            goto bad;
        }
        if (bg_recipe_set(&ctx, &r, key, v, where)) goto bad;
    }
    snprintf(buf, sizeof buf, "%.17g", budget);
    if (bg_recipe_set(&ctx, &r, "budget", buf, "--budget-per-eval") || bg_recipe_set(&ctx, &r, "select", "val", "search"))
        goto bad;
    r.out[0] = 0;
    if (bg_recipe_check(&ctx, &r)) goto bad;
    if (r.val_per_class <= 0) {
        bg_fail(&ctx, BG_ERR_ARG, "val_per_class is 0 in %s: the search scores each run on a validation split "
                "carved from the training data (never the test split); give --val-per-class K", r.name);
        goto bad;
    }
    /* 2. the variables */
    if (nas ? bg_drive_space_nas(&ctx, &d->sp, r.model, vars)
            : bg_drive_space_hpo(&ctx, &d->sp, r.lr, r.wd, r.optimizer, (long)r.batch))
        goto bad;
    if (bounds && bg_drive_space_bounds(&ctx, &d->sp, bounds)) goto bad;
    d->macs = nas && !strcmp(objective, "macs");
    d->m = d->macs ? 2 : 1;
    d->repeats = (int)repeats;
    d->seed0 = (long)r.seed;
    d->batch = (long)r.batch;
    d->mem_cap = r.mem_cap;
    d->budget = budget;
    d->timeout = timeout > 0 ? timeout : 1.5 * budget + 30;
    /* 3. the folder's name (the engine launchers keep their files in it) and the launcher */
    if (!out_dir) {
        char stamp[32];
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
        snprintf(d->dir, sizeof d->dir, "search-%s-%s", verb, stamp);
    } else {
        snprintf(d->dir, sizeof d->dir, "%.600s", out_dir);
    }
    char self[1024];
    if (!budgie) {
        ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
        self[l > 0 ? l : 0] = 0;
        budgie = self;
    }
    const bool is_par = !strcmp(launcher, "parallel"), is_slurm = !strcmp(launcher, "slurm");
    if (sshloginfile && !is_par) {
        fprintf(stderr, "budgie %s: --sshloginfile is for --launcher parallel\n", vname);
        goto out;
    }
    if ((partition || sbatch_args) && !is_slurm) {
        fprintf(stderr, "budgie %s: --%s is for --launcher slurm\n", vname, partition ? "partition" : "sbatch-args");
        goto out;
    }
    if (devices < 0) devices = bg_cuda_available() ? 1 : 0;
    const bg_drive_engine_opts eo = {.exe = budgie, .dir = d->dir, .slots = (int)jobs, .devices = (int)devices,
                                     .sshloginfile = sshloginfile, .partition = partition,
                                     .sbatch_args = sbatch_args};
    if (is_par ? bg_drive_launcher_parallel(&ctx, &lau, &eo)
        : is_slurm ? bg_drive_launcher_slurm(&ctx, &lau, &eo)
                   : bg_drive_launcher_local(&ctx, &lau, budgie, (int)jobs, (int)devices))
        goto bad;
    d->launcher = &lau;
    /* 4. the folder, the recipe every run reads, the history */
    snprintf(d->hist, sizeof d->hist, "%s/history.jsonl", d->dir);
    snprintf(d->recipe_path, sizeof d->recipe_path, "%s/recipe", d->dir);
    snprintf(r.name, sizeof r.name, "%.250s", d->recipe_path);
    if (!(rtext = bg_recipe_text(&r))) goto oom;
    json_t *hj = header_json(d, verb, rtext, nas ? objective : "accuracy");
    header = hj ? json_dumps(hj, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(hj);
    if (!header) goto oom;
    struct stat st;
    if (resume) {
        if (stat(d->hist, &st) != 0) {
            fprintf(stderr, "budgie %s: --resume: no history %s\n", vname, d->hist);
            goto out;
        }
        if (bg_drive_history_load(&ctx, d->hist, header, d->sp.n, d->m, &h)) goto bad;
        if (h.dropped_tail)
            fprintf(stderr, "budgie %s: note: the last line of %s was cut (a kill while writing it); it was dropped and "
                    "that point is evaluated again\n", vname, d->hist);
        if (stat(d->hist, &st) == 0 && st.st_size == 0 && bg_drive_history_create(&ctx, d->hist, header)) goto bad;
    } else {
        if (stat(d->hist, &st) == 0) {
            fprintf(stderr, "budgie %s: %s already holds a search (%s); --resume goes on with it, or give a new --out\n",
                    vname, d->dir, d->hist);
            goto out;
        }
        if (!mkdir_p(d->dir)) {
            fprintf(stderr, "budgie %s: cannot create %s: %s\n", vname, d->dir, strerror(errno));
            goto out;
        }
        if (bg_drive_history_create(&ctx, d->hist, header)) goto bad;
    }
    snprintf(buf, sizeof buf, "%.600s/evals", d->dir);
    mkdir(buf, 0777);
    FILE *rf = fopen(d->recipe_path, "w");
    if (!rf || fputs(rtext, rf) < 0 || fclose(rf) != 0) {
        fprintf(stderr, "budgie %s: cannot write %s: %s\n", vname, d->recipe_path, strerror(errno));
        goto out;
    }
    for (long k = 0; k < h.count; k++)
        if (!remember(d, h.key[k], h.out + (size_t)k * d->m, h.acc[k], h.ok[k], k + 1)) goto oom;
    d->next_eval = h.max_eval + 1;
    if (d->macs && h.count > 0) d->baseline_acc = h.ok[0] ? h.acc[0] : NAN;

    printf("search %s: %s, %d variables:", verb, d->dir, d->sp.n);
    for (int i = 0; i < d->sp.n; i++)
        printf(" %s in [%g, %g] from %g%s", d->sp.v[i].name, d->sp.v[i].lb, d->sp.v[i].ub, d->sp.v[i].x0,
               i + 1 < d->sp.n ? "," : "");
    printf("\n  objective %s, %.0f s per run, %d run(s) per point, %lld at once (%s launcher)%s\n",
           d->macs ? "min MACs s.t. val acc >= baseline" : "max val acc", budget, d->repeats, (long long)jobs,
           lau.name, h.count ? "" : "");
    if (h.count) printf("  resuming: %ld evaluations in the history are replayed\n", h.count);
    if (nas && !vars) printf("  (r is not searched by default: budgie train does not resize the data; see docs/search.md)\n");
    fflush(stdout);

    /* 5. MADS */
    bg_mads_problem p;
    bg_drive_space_problem(&d->sp, d->m, &p);
    if (d->macs) p.out[1] = BG_MADS_PB;
    if (bg_mads_problem_check(&ctx, &p)) goto bad;
    bg_mads_options o;
    bg_mads_options_default(&o);
    o.max_bb_eval = evals;
    o.seed = (uint32_t)seed;
    o.block_size = (int)jobs;
    o.eval = drv_eval;
    o.eval_user = d;
    o.n_replay = h.count;
    o.replay_x = h.x;
    o.replay_out = h.out;
    o.replay_ok = h.ok;
    if (d->macs && h.count == 0) {
        /* the baseline first: every other point's constraint needs its accuracy */
        double bo[BG_MADS_MAX_OUT];
        bool bok;
        if (drv_eval(d, &ctx, 1, p.x0[0], bo, &bok)) goto fail;
        if (!bok) {
            fprintf(stderr, "budgie %s: the baseline (X0) failed, so there is no accuracy to hold the smaller models "
                    "to (%s)\n", vname, d->hist);
            rc = 1;
            goto out;
        }
        bg_drive_history_free(&h);
        if (bg_drive_history_load(&ctx, d->hist, header, d->sp.n, d->m, &h)) goto fail;
        o.n_replay = h.count, o.replay_x = h.x, o.replay_out = h.out, o.replay_ok = h.ok;
    }
    if (d->macs && !isfinite(d->baseline_acc)) {
        fprintf(stderr, "budgie %s: the baseline (X0, eval 1 of %s) failed: no accuracy to hold the smaller models to\n",
                vname, d->hist);
        rc = 1;
        goto out;
    }
    bg_mads_result res;
    if (bg_mads_run(&ctx, &p, &o, &res)) goto fail;
    fflush(stdout);
    printf("\nstop: %s; %ld evaluations (%ld failed, %ld replayed from the history)\n", bg_mads_stop_name(res.stop),
           res.evaluations, res.failed, res.replayed);
    if (d->n_ok == 0) {
        fprintf(stderr, "budgie %s: every evaluation failed (see %s and the runs' stderr.txt under %s/evals)\n", vname,
                d->hist, d->dir);
        rc = 1;
        goto out;
    }
    if (!res.has_feasible) {
        fprintf(stderr, "budgie %s: no feasible point (%s)\n", vname, d->hist);
        rc = 1;
        goto out;
    }
    char line[1024];
    bg_drive_decode_line(&d->sp, res.x, line, sizeof line);
    printf("best: f = %.6g: budgie train %s %s\n", res.f, d->recipe_path, line);
    printf("report: budgie search report %s\n", d->hist);
    rc = 0;
    goto out;
oom:
    bg_fail(&ctx, BG_ERR_OOM, "out of memory");
fail:
    fprintf(stderr, "budgie %s: %s\n", vname, bg_errmsg(&ctx));
    rc = 1;
    goto out;
bad:
    fprintf(stderr, "budgie %s: %s\n", vname, bg_errmsg(&ctx));
    rc = 2;
out:
    if (lau.close) lau.close(&lau);
    bg_drive_history_free(&h);
    if (d) {
        for (long k = 0; k < d->n_done; k++) free(d->key[k]);
        free(d->key), free(d->out_done), free(d->acc_done), free(d->ok_done), free(d->eval_no);
    }
    free(d), free(rtext), free(header), free(mine), free(over);
    bg_ctx_free(&ctx);
    return rc;
}
