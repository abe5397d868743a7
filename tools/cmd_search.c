/* `budgie search`: blackbox optimisation with MADS (search/mads*.c).
 *   search blackbox PARAM_FILE  run a NOMAD 4 parameter file unchanged
 *   search report HISTORY       best points and a plot of the progress
 * The blackbox driver below connects the engine's run to the files: each
 * evaluation is logged (JSON line, stats on a new best, history line last,
 * then flushed), so a killed run resumes from its history with --resume. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../augment/dataset.h"
#include "../search/batch/mads_batch.h"
#include "../search/batch/mads_report.h"
#include "options.h"
#include "search_verbs.h"
#include "verbs.h"
#include "../engine/clock.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: budgie search blackbox PARAM_FILE [options]\n"
        "       budgie search report HISTORY [--param PARAM_FILE] [--top K] [--out plot.png]\n");
    bg_search_drive_usage(f);
    fprintf(f,
        "\n"
        "blackbox: minimise a blackbox with MADS (NOMAD 4's algorithm: GMesh, OrthoMADS\n"
        "  polls, speculative and quadratic-model searches, extreme/progressive barrier)\n"
        "  from a NOMAD 4 parameter file, unchanged. Keys: DIMENSION, BB_EXE,\n"
        "  BB_OUTPUT_TYPE (OBJ EB PB CSTR CNT_EVAL -), BB_INPUT_TYPE (R I B, and C for\n"
        "  categorical), X0, LOWER_BOUND, UPPER_BOUND, MAX_BB_EVAL, MAX_TIME, SEED,\n"
        "  DIRECTION_TYPE (ORTHO N+1 QUAD | ORTHO N+1 NEG | ORTHO 2N), QUAD_MODEL_SEARCH,\n"
        "  SPECULATIVE_SEARCH, NB_THREADS_PARALLEL_EVAL, HISTORY_FILE, STATS_FILE,\n"
        "  DISPLAY_DEGREE, and GRANULARITY, INITIAL_FRAME_SIZE, MIN_MESH_SIZE, H_MAX_0,\n"
        "  ANISOTROPY_FACTOR, ADD_SEED_TO_FILE_NAMES, EXTENDED_POLL_TRIGGER, TMP_DIR,\n"
        "  DISABLE MODELS; DISPLAY_ALL_EVAL and NB_THREADS_OPENMP are ignored. `#` starts\n"
        "  a comment. The blackbox (run from the parameter file's directory through\n"
        "  /bin/sh, a leading '$' as in NOMAD) gets the path of a file holding one point\n"
        "  and prints its outputs on one line; a non-zero exit, a crash, a timeout or an\n"
        "  unreadable line is a failed evaluation. NB_THREADS_PARALLEL_EVAL runs that\n"
        "  many blackboxes at once. Output files sit beside the parameter file, with the\n"
        "  seed in their name (NOMAD: history.txt -> history.0.txt); HISTORY.jsonl holds\n"
        "  one JSON record per evaluation.\n"
        "  --resume          replay the history (a killed run) and continue: the same\n"
        "                    seed ends where an uninterrupted run ends\n"
        "  --eval-timeout S  kill an evaluation after S seconds (failed evaluation)\n"
        "  --quiet-bb        send the blackbox's stderr to /dev/null\n"
        "  --log FILE        JSON-lines log (default HISTORY.jsonl when HISTORY_FILE is set)\n"
        "\n"
        "report: print the run's best points (from HISTORY.jsonl, or from HISTORY read\n"
        "  with --param) and, with --out, plot the best objective against evaluations.\n"
        "  --top K           how many best points to list (default 10)\n"
        "\n"
        "Exit status: 0 a feasible point was found, 1 none was (every evaluation failed, or\n"
        "  none satisfied the constraints) or the search failed, 2 usage or parameter-file error.\n"
        "Algorithm notes and measured evaluation counts: docs/mads.md.\n");
}

/* ---- the blackbox driver ---------------------------------------------------- */

typedef struct {
    bg_mads_params *pp;
    bg_mads_blackbox *bb;
    FILE *hist, *log, *stats;
    double t0;
    int reason_next;  /* next reason of the current block to hand out */
    long written;
} driver;

static bg_status drv_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok)
{
    driver *d = user;
    d->reason_next = 0;
    return bg_mads_blackbox_eval(d->bb, ctx, count, x, out, ok);
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static bg_status drv_observe(void *user, bg_ctx *ctx, const bg_mads_eval_info *e)
{
    driver *d = user;
    if (e->replayed) return BG_OK; /* already in the files */
    const char *reason = "";
    /* the observer sees the block's fresh points in the order they were evaluated */
    if (d->reason_next < d->bb->last_count) reason = d->bb->reason[d->reason_next++];
    double t = bg_monotonic_s() - d->t0;
    int dd = d->pp->display_degree;
    if (d->log) {
        json_t *o = json_object(), *x = json_array(), *out = json_array();
        for (int i = 0; i < e->n; i++) json_array_append_new(x, jnum(e->x[i]));
        for (int j = 0; j < e->m; j++) json_array_append_new(out, e->ok ? jnum(e->out[j]) : json_null());
        json_object_set_new(o, "eval", json_integer(e->index + 1));
        json_object_set_new(o, "bbe", json_integer(e->bb_evals));
        json_object_set_new(o, "iter", json_integer(e->iteration));
        json_object_set_new(o, "step", json_string(e->step));
        json_object_set_new(o, "x", x);
        json_object_set_new(o, "out", out);
        json_object_set_new(o, "ok", json_boolean(e->ok));
        json_object_set_new(o, "counted", json_boolean(e->counted));
        json_object_set_new(o, "f", jnum(e->f));
        json_object_set_new(o, "h", jnum(e->h));
        json_object_set_new(o, "improved", json_boolean(e->improved));
        json_object_set_new(o, "best_f", jnum(e->best_f));
        json_object_set_new(o, "time_s", json_real(t));
        if (!e->ok && reason[0]) json_object_set_new(o, "fail", json_string(reason));
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
        json_decref(o);
        if (!s) return bg_fail(ctx, BG_ERR_OOM, "search log: out of memory");
        fprintf(d->log, "%s\n", s);
        free(s);
    }
    char line[8192];
    if (e->improved && (d->stats || dd >= 2)) {
        bg_mads_stats_line(d->pp->stats_format, e, t, line, sizeof line);
        if (d->stats) fputs(line, d->stats);
        if (dd >= 2 && dd < 3) {
            char disp[8192];
            bg_mads_stats_line("BBE ( SOL ) OBJ", e, t, disp, sizeof disp);
            printf("%s", disp);
        }
    }
    if (dd >= 3) {
        char hl[8192];
        bg_mads_history_line(&d->pp->pb, e->x, e->out, e->ok, hl, sizeof hl);
        hl[strcspn(hl, "\n")] = 0;
        printf("#%-5ld %-11s %s%s%s%s\n", e->index + 1, e->step, hl, e->improved ? "  (new best)" : "",
               e->ok ? "" : "  failed: ", e->ok ? "" : reason);
    }
    if (d->hist) {
        /* the history line last: a kill before it means the point is evaluated again on resume */
        bg_mads_history_line(&d->pp->pb, e->x, e->out, e->ok, line, sizeof line);
        fputs(line, d->hist);
    }
    FILE *files[3] = {d->log, d->stats, d->hist};
    for (int k = 0; k < 3; k++)
        if (files[k] && fflush(files[k]) != 0)
            return bg_fail(ctx, BG_ERR_IO, "search: cannot write the run's files: %s", strerror(errno));
    if (dd >= 2) fflush(stdout);
    d->written++;
    return BG_OK;
}

static void print_point(const char *label, const bg_mads_problem *p, const double *x, double f, double h)
{
    printf("%s ( ", label);
    for (int i = 0; i < p->n; i++) {
        char v[64];
        bg_mads_format_value(x[i], p->type[i] != BG_MADS_REAL, v, sizeof v);
        printf("%s ", v);
    }
    printf(") f = %.10g", f);
    if (h > 0) printf(" h = %.10g", h);
    printf("\n");
}

static FILE *open_out(const char *path, bool append, const char *what)
{
    FILE *f = fopen(path, append ? "a" : "w");
    if (!f) fprintf(stderr, "budgie search: cannot open the %s %s: %s\n", what, path, strerror(errno));
    return f;
}

static int cmd_blackbox(int argc, char **argv)
{
    const char *param = NULL, *log_path = NULL;
    bool resume = false, quiet = false;
    double timeout = 0;
    int n_pos = 0;
    const bg_opt opts[] = {
        {.name = "resume", .type = BG_OPT_FLAG, .dst = &resume},
        {.name = "quiet-bb", .type = BG_OPT_FLAG, .dst = &quiet},
        {.name = "eval-timeout", .type = BG_OPT_NUM, .dst = &timeout, .min = 1e-3, .max = 1e7},
        {.name = "log", .type = BG_OPT_STR, .dst = &log_path},
    };
    /* argv[1] is the sub-command: it stands as the verb of the sub-command line */
    const int prc = bg_opts_parse("search blackbox", opts, 4, argc - 1, argv + 1, &param, 1, &n_pos);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc) return prc;
    if (!param) {
        usage(stderr);
        return 2;
    }
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, 0);
    /* the parameter and blackbox records are large: on the heap */
    bg_mads_params *ppp = malloc(sizeof *ppp);
    bg_mads_blackbox *bbp = malloc(sizeof *bbp);
    if (!ppp || !bbp) {
        free(ppp);
        free(bbp);
        fprintf(stderr, "budgie search: out of memory\n");
        return 1;
    }
    bg_mads_params *pp = ppp;
    bg_mads_blackbox *bb = bbp;
    if (bg_mads_params_read(&ctx, param, pp)) {
        fprintf(stderr, "budgie search: %s\n", bg_errmsg(&ctx));
        free(ppp);
        free(bbp);
        return 2;
    }
    for (int k = 0; k < pp->n_notes; k++) fprintf(stderr, "budgie search: note: %s\n", pp->notes[k]);
    char hist[2 * BG_MADS_PATH] = "", stats[2 * BG_MADS_PATH] = "", logp[2 * BG_MADS_PATH + 8] = "";
    if (pp->history_file[0]) bg_mads_params_path(pp, pp->history_file, hist, sizeof hist);
    if (pp->stats_file[0]) bg_mads_params_path(pp, pp->stats_file, stats, sizeof stats);
    if (log_path) snprintf(logp, sizeof logp, "%s", log_path);
    else if (hist[0]) snprintf(logp, sizeof logp, "%s.jsonl", hist);
    if (resume && !hist[0]) {
        fprintf(stderr, "budgie search: --resume needs a HISTORY_FILE in %s\n", param);
        free(ppp);
        free(bbp);
        return 2;
    }

    int rc = 1;
    double *rx = NULL, *rout = NULL;
    long nrep = 0;
    driver d = {.pp = pp, .t0 = bg_monotonic_s()};
    bool bb_open = false;
    if (resume) {
        long valid;
        if (access(hist, F_OK) != 0) {
            fprintf(stderr, "budgie search: --resume: no history %s yet; starting afresh\n", hist);
        } else if (bg_mads_history_read(&ctx, hist, pp->pb.n, pp->pb.m, &rx, &rout, &nrep, &valid) ||
                   truncate(hist, valid) != 0) {
            fprintf(stderr, "budgie search: %s\n", ctx.status ? bg_errmsg(&ctx) : strerror(errno));
            goto done;
        }
    }
    if (hist[0] && !(d.hist = open_out(hist, resume, "history"))) goto done;
    if (stats[0] && !(d.stats = open_out(stats, resume, "stats file"))) goto done;
    if (logp[0] && !(d.log = open_out(logp, resume, "log"))) goto done;
    char cmd[4096];
    bg_mads_params_command(pp, cmd, sizeof cmd);
    if (bg_mads_blackbox_open(&ctx, bb, cmd, pp->dir, pp->tmp_dir, &pp->pb)) {
        fprintf(stderr, "budgie search: %s\n", bg_errmsg(&ctx));
        goto done;
    }
    bb_open = true;
    bb->timeout_s = timeout;
    bb->quiet = quiet;
    d.bb = bb;

    bg_mads_options o = pp->opt;
    o.eval = drv_eval;
    o.eval_user = &d;
    o.observer = drv_observe;
    o.observer_user = &d;
    o.n_replay = nrep;
    o.replay_x = rx;
    o.replay_out = rout;
    if (pp->display_degree >= 2) {
        printf("MADS: %d variables, %d outputs, seed %u, blackbox: %s\n", pp->pb.n, pp->pb.m, (unsigned)o.seed, cmd);
        if (hist[0]) printf("history: %s\n", hist);
        if (nrep) printf("resuming: %ld evaluations in the history will be replayed\n", nrep);
        printf("BBE ( SOL ) OBJ\n");
    }
    bg_mads_result r;
    bg_status st = bg_mads_run(&ctx, &pp->pb, &o, &r);
    if (st) {
        fprintf(stderr, "budgie search: %s\n", bg_errmsg(&ctx));
        goto done;
    }
    if (pp->display_degree >= 1) {
        printf("\nstop: %s\n", bg_mads_stop_name(r.stop));
        printf("blackbox evaluations: %ld (%ld failed, %ld replayed from the history, %ld cache hits)\n",
               r.bb_evals, r.failed, r.replayed, r.cache_hits);
        if (r.has_feasible) print_point("best feasible solution:", &pp->pb, r.x, r.f, 0);
        else printf("no feasible solution found\n");
        if (r.has_infeasible) print_point("best infeasible solution:", &pp->pb, r.x_inf, r.f_inf, r.h_inf);
    }
    /* a search that found nothing (every evaluation failed: a missing BB_EXE, say) is not a success */
    if (r.evaluations > 0 && r.failed == r.evaluations) {
        fflush(stdout);
        fprintf(stderr, "budgie search: every evaluation failed (%ld); is the blackbox %s there and working?\n",
                r.failed, cmd);
        goto done;
    }
    if (!r.has_feasible) {
        fflush(stdout);
        fprintf(stderr, "budgie search: no feasible point was found\n");
        goto done;
    }
    rc = 0;
done:
    if (bb_open) bg_mads_blackbox_close(bb);
    if (d.hist) fclose(d.hist);
    if (d.stats) fclose(d.stats);
    if (d.log) fclose(d.log);
    free(rx);
    free(rout);
    free(ppp);
    free(bbp);
    return rc;
}

/* ---- report ------------------------------------------------------------------ */

typedef struct {
    double f;
    long k;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->f != y->f) return x->f < y->f ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static int cmd_report(int argc, char **argv)
{
    const char *hist = NULL, *param = NULL, *png = NULL;
    int64_t top = 10;
    int n_pos = 0;
    const bg_opt opts[] = {
        {.name = "param", .type = BG_OPT_STR, .dst = &param},
        {.name = "out", .type = BG_OPT_STR, .dst = &png},
        {.name = "top", .type = BG_OPT_INT, .dst = &top, .min = 1, .max = 1e9},
    };
    const int prc = bg_opts_parse("search report", opts, 3, argc - 1, argv + 1, &hist, 1, &n_pos);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc) return prc;
    if (!hist) {
        usage(stderr);
        return 2;
    }
    if (!param && bg_search_is_drive_history(hist)) return bg_search_drive_report(hist, (long)top, png);
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, 0);
    bg_mads_params *pp = param ? malloc(sizeof *pp) : NULL;
    if (param && (!pp || bg_mads_params_read(&ctx, param, pp))) {
        fprintf(stderr, "budgie search report: %s\n", pp ? bg_errmsg(&ctx) : "out of memory");
        free(pp);
        return 2;
    }
    bg_mads_records rec;
    bg_status lst = bg_mads_records_load(&ctx, hist, pp ? &pp->pb : NULL, &rec);
    free(pp);
    if (lst) {
        fprintf(stderr, "budgie search report: %s\n", bg_errmsg(&ctx));
        return 2;
    }
    long failed = 0, feasible = 0;
    ranked *rk = malloc((size_t)(rec.count > 0 ? rec.count : 1) * sizeof *rk);
    if (!rk) {
        bg_mads_records_free(&rec);
        fprintf(stderr, "budgie search report: out of memory\n");
        return 1;
    }
    for (long k = 0; k < rec.count; k++) {
        failed += !rec.ok[k];
        if (rec.ok[k] && rec.h[k] == 0 && !isnan(rec.f[k])) rk[feasible++] = (ranked){rec.f[k], k};
    }
    qsort(rk, (size_t)feasible, sizeof *rk, cmp_ranked);
    printf("%s: %ld evaluations, %ld failed, %ld feasible\n", hist, rec.count, failed, feasible);
    if (feasible) {
        printf("best feasible points:\n  %6s  %-16s  %s\n", "eval", "f", "x");
        for (long t = 0; t < feasible && t < top; t++) {
            long k = rk[t].k;
            printf("  %6ld  %-16.10g ", k + 1, rk[t].f);
            for (int i = 0; i < rec.n; i++) printf(" %.10g", rec.x[(size_t)k * BG_MADS_MAX_DIM + i]);
            printf("\n");
        }
    } else {
        printf("no feasible evaluation\n");
    }
    int rc = 0;
    if (png) {
        int w, h;
        uint8_t *px;
        if (bg_mads_plot_render(&ctx, &rec, &w, &h, &px) || bg_write_png(&ctx, png, w, h, 3, px)) {
            fprintf(stderr, "budgie search report: %s\n", bg_errmsg(&ctx));
            rc = 1;
        } else {
            printf("plot: %s\n", png);
        }
        free(px);
    }
    free(rk);
    bg_mads_records_free(&rec);
    return rc;
}

int bg_cmd_search(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "blackbox")) return cmd_blackbox(argc, argv);
    if (!strcmp(argv[1], "report")) return cmd_report(argc, argv);
    if (!strcmp(argv[1], "nas") || !strcmp(argv[1], "hpo")) return bg_search_drive(argv[1], argc - 1, argv + 1);
    fprintf(stderr, "budgie search: unknown sub-command '%s' (nas, hpo, blackbox or report)\n", argv[1]);
    usage(stderr);
    return 2;
}
