/* NOMAD 4 parameter files (search/batch/mads_params.c) and the batch-mode file
 * formats (search/batch/mads_history.c, output parsing). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../search/batch/mads_batch.h"
#include "harness.h"

/* The HAET final HPO file (ScaledSENET_HPO/param.txt), keys as they were. */
static const char haet[] =
    "DIMENSION      4              # number of variables\n"
    "\n"
    "BB_EXE         \"$python3 linker.py\"\n"
    "BB_OUTPUT_TYPE OBJ - - -\n"
    "BB_INPUT_TYPE  ( I I R I )\n"
    "\n"
    "X0             ( 2 3 -1 3 )\n"
    "LOWER_BOUND    ( 1 1 -3.0 1 )\n"
    "UPPER_BOUND    ( 3 6 -0.22 7 )\n"
    "\n"
    "MAX_BB_EVAL    100\n"
    "DISPLAY_DEGREE 3\n"
    "HISTORY_FILE   history.txt\n"
    "DISPLAY_ALL_EVAL yes\n"
    "STATS_FILE stats.txt BBE ( SOL ) OBJ [BBO]\n"
    "# NB_THREADS_OPENMP 1 # for Nomad 4 only\n";

BG_TEST(mads_params_haet_file)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_params *pp = malloc(sizeof *pp);
    CHECK_OK(&ctx, bg_mads_params_parse(&ctx, haet, "param.txt", "/work/hpo", pp));
    const bg_mads_problem *p = &pp->pb;
    CHECK(p->n == 4 && p->m == 4, "n %d m %d", p->n, p->m);
    CHECK(p->type[0] == BG_MADS_INTEGER && p->type[2] == BG_MADS_REAL && p->type[3] == BG_MADS_INTEGER, "types");
    CHECK(p->out[0] == BG_MADS_OBJ && p->out[1] == BG_MADS_EXTRA && p->out[3] == BG_MADS_EXTRA, "outputs");
    CHECK(p->n_x0 == 1 && p->x0[0][0] == 2 && p->x0[0][2] == -1, "x0");
    CHECK(p->lb[2] == -3 && p->ub[2] == -0.22 && p->ub[3] == 7, "bounds");
    CHECK(pp->opt.max_bb_eval == 100 && pp->display_degree == 3, "budget %ld display %d", pp->opt.max_bb_eval,
          pp->display_degree);
    CHECK(pp->bb_exe_global && !strcmp(pp->bb_exe, "python3 linker.py"), "BB_EXE '%s' global %d", pp->bb_exe,
          pp->bb_exe_global);
    CHECK(!strcmp(pp->stats_file, "stats.txt") && !strcmp(pp->stats_format, "BBE ( SOL ) OBJ [BBO]"),
          "stats '%s' '%s'", pp->stats_file, pp->stats_format);
    CHECK(pp->n_notes == 1 && strstr(pp->notes[0], "DISPLAY_ALL_EVAL"), "notes: %d", pp->n_notes);
    /* NOMAD defaults */
    CHECK(pp->opt.seed == 0 && pp->opt.direction == BG_MADS_ORTHO_NP1_QUAD && pp->opt.quad_model_search &&
              pp->opt.speculative_search && pp->nb_threads == 1,
          "defaults");
    char path[2 * BG_MADS_PATH];
    bg_mads_params_path(pp, pp->history_file, path, sizeof path);
    CHECK(!strcmp(path, "/work/hpo/history.0.txt"), "history path %s", path);
    char cmd[4096];
    bg_mads_params_command(pp, cmd, sizeof cmd);
    CHECK(!strcmp(cmd, "python3 linker.py"), "command '%s'", cmd);
    free(pp);
    bg_ctx_free(&ctx);
}

BG_TEST(mads_params_syntax_variants)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_params *pp = malloc(sizeof *pp);
    const char *t =
        "dimension 5\n"
        "bb_exe 'python3 bb.py'   # quoted, no $\n"
        "BB_OUTPUT_TYPE OBJ EB PB CSTR CNT_EVAL -\n"
        "BB_INPUT_TYPE * I\n"
        "BB_INPUT_TYPE_UNUSED_GUARD_REMOVED 0\n";
    /* an unknown key is reported with its line */
    CHECK_ERR(&ctx, bg_mads_params_parse(&ctx, t, "p.txt", ".", pp), BG_ERR_FORMAT,
              "p.txt:5: unknown parameter 'BB_INPUT_TYPE_UNUSED_GUARD_REMOVED'");
    t = "DIMENSION 5\n"
        "BB_EXE 'python3 bb.py'\n"
        "BB_OUTPUT_TYPE OBJ EB PB CSTR CNT_EVAL -\n"
        "BB_INPUT_TYPE * I\n"
        "X0 * 1\n"
        "X0 1 * 2\n"
        "LOWER_BOUND * -4\n"
        "UPPER_BOUND 1-3 8\n"
        "UPPER_BOUND_NOT_A_KEY_GUARD 1\n";
    CHECK_ERR(&ctx, bg_mads_params_parse(&ctx, t, "p.txt", ".", pp), BG_ERR_FORMAT, "p.txt:9: unknown parameter");
    t = "DIMENSION 5\n"
        "BB_EXE 'python3 bb.py'\n"
        "BB_OUTPUT_TYPE OBJ EB PB CSTR CNT_EVAL -\n"
        "BB_INPUT_TYPE * I\n"
        "X0 * 1\n"
        "X0 1 * 2\n"
        "LOWER_BOUND * -4\n"
        "UPPER_BOUND 1-3 8\n"
        "SEED 42\n"
        "DIRECTION_TYPE ORTHO 2N\n"
        "QUAD_MODEL_SEARCH no\n"
        "SPECULATIVE_SEARCH false\n"
        "NB_THREADS_PARALLEL_EVAL 3\n"
        "MAX_TIME 60\n"
        "ADD_SEED_TO_FILE_NAMES no\n"
        "HISTORY_FILE h.txt\n"
        "NB_THREADS_OPENMP 2\n";
    CHECK_OK(&ctx, bg_mads_params_parse(&ctx, t, "p.txt", "/d", pp));
    const bg_mads_problem *p = &pp->pb;
    CHECK(p->m == 6 && p->out[1] == BG_MADS_EB && p->out[2] == BG_MADS_PB && p->out[3] == BG_MADS_PB &&
              p->out[4] == BG_MADS_CNT_EVAL && p->out[5] == BG_MADS_EXTRA,
          "output types");
    CHECK(p->type[4] == BG_MADS_INTEGER, "* I");
    CHECK(p->n_x0 == 2 && p->x0[0][3] == 1 && p->x0[1][0] == 2, "two starting points");
    CHECK(p->lb[4] == -4 && p->ub[0] == INFINITY && p->ub[1] == 8 && p->ub[3] == 8 && p->ub[4] == INFINITY,
          "index ranges");
    CHECK(pp->opt.seed == 42 && pp->opt.direction == BG_MADS_ORTHO_2N && !pp->opt.quad_model_search &&
              !pp->opt.speculative_search && pp->opt.block_size == 3 && pp->opt.max_time == 60,
          "options");
    CHECK(!pp->bb_exe_global && !strcmp(pp->bb_exe, "python3 bb.py"), "BB_EXE");
    char path[2 * BG_MADS_PATH];
    bg_mads_params_path(pp, pp->history_file, path, sizeof path);
    CHECK(!strcmp(path, "/d/h.txt"), "history path %s", path);
    free(pp);
    bg_ctx_free(&ctx);
}

BG_TEST(mads_params_errors)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_params *pp = malloc(sizeof *pp);
    const char *head = "DIMENSION 3\nBB_EXE bb.sh\nBB_OUTPUT_TYPE OBJ\n";
    char t[1024];
#define PARSE_ERR(body, needle)                                                                   \
    do {                                                                                          \
        snprintf(t, sizeof t, "%s%s", head, body);                                                \
        CHECK_ERR(&ctx, bg_mads_params_parse(&ctx, t, "p.txt", ".", pp), BG_ERR_FORMAT, needle); \
    } while (0)
    PARSE_ERR("X0 ( 0 0 )\n", "p.txt:4: X0 has 2 values, DIMENSION is 3");
    PARSE_ERR("X0 ( 0 0 0 )\nLOWER_BOUND ( 0 0 0 0 )\n", "p.txt:5: LOWER_BOUND has 4 values, DIMENSION is 3");
    PARSE_ERR("X0 ( 0 0 0 )\nUPPER_BOUND 1 2 3 4\n", "p.txt:5: UPPER_BOUND has 4 values, DIMENSION is 3");
    PARSE_ERR("X0 ( 0 0 0 )\nBB_INPUT_TYPE ( R Q R )\n", "p.txt:5: BB_INPUT_TYPE: unknown type 'Q'");
    PARSE_ERR("X0 ( 0 0 0 )\nBB_INPUT_TYPE ( R I )\n", "p.txt:5: BB_INPUT_TYPE has 2 values");
    PARSE_ERR("X0 ( 0 0 0 )\nBB_OUTPUT_TYPE OBJ\n", "p.txt:5: BB_OUTPUT_TYPE given twice (first on line 3)");
    PARSE_ERR("X0 ( 0 0 0 )\nFOO 1\n", "p.txt:5: unknown parameter 'FOO'");
    PARSE_ERR("X0 ( 0 x 0 )\n", "p.txt:4: X0: not a number: 'x' for variable 1");
    PARSE_ERR("X0 ( 0 0 0 )\nMAX_BB_EVAL -3\n", "p.txt:5: MAX_BB_EVAL: bad value '-3'");
    PARSE_ERR("X0 ( 0 0 0 )\nDIRECTION_TYPE LT 2N\n", "DIRECTION_TYPE: 'LT 2N' is not supported");
    PARSE_ERR("X0 ( 0 0 0 )\nBB_EXE 'unterminated\n", "p.txt:5: unterminated quote");
    PARSE_ERR("X0 ( 0 0.5 0 )\nBB_INPUT_TYPE ( R I R )\n", "is not an integer");
    PARSE_ERR("X0 ( 0 0 9 )\nUPPER_BOUND * 1\n", "outside its bounds");
    PARSE_ERR("LOWER_BOUND * 0\n", "p.txt: X0 is missing");
    CHECK_ERR(&ctx, bg_mads_params_parse(&ctx, "BB_EXE x\nX0 ( 0 )\n", "p.txt", ".", pp), BG_ERR_FORMAT,
              "p.txt: DIMENSION is missing");
    CHECK_ERR(&ctx, bg_mads_params_parse(&ctx, "DIMENSION 0\n", "p.txt", ".", pp), BG_ERR_FORMAT,
              "p.txt:1: DIMENSION: '0' is not an integer in 1..64");
    CHECK_ERR(&ctx, bg_mads_params_parse(&ctx, "DIMENSION 1\nX0 ( 0 )\n", "p.txt", ".", pp), BG_ERR_FORMAT,
              "BB_EXE is missing");
    CHECK_ERR(&ctx, bg_mads_params_read(&ctx, "/nonexistent/param.txt", pp), BG_ERR_IO, "/nonexistent/param.txt");
#undef PARSE_ERR
    free(pp);
    bg_ctx_free(&ctx);
}

BG_TEST(mads_output_parsing)
{
    double out[4];
    char why[200];
    CHECK(bg_mads_parse_outputs("-0.87 1 2\n", 3, out, why, sizeof why) && out[0] == -0.87 && out[2] == 2, "plain");
    CHECK(bg_mads_parse_outputs("epoch 1 ... \nBest valid acc 87\n-0.87 Inf nan\n\n", 3, out, why, sizeof why) &&
              isinf(out[1]) && isnan(out[2]),
          "last line, inf and nan");
    CHECK(!bg_mads_parse_outputs("", 1, out, why, sizeof why) && strstr(why, "no output"), "empty: %s", why);
    CHECK(!bg_mads_parse_outputs("Traceback (most recent call last)\n", 1, out, why, sizeof why) &&
              strstr(why, "unreadable output"),
          "garbage: %s", why);
    CHECK(!bg_mads_parse_outputs("1 2\n", 3, out, why, sizeof why) && strstr(why, "want 3 numbers"), "count: %s",
          why);
}

BG_TEST(mads_history_files)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_mads_problem p;
    bg_mads_problem_init(&p, 3, 2);
    p.type[0] = BG_MADS_INTEGER;
    double x[3] = {3, 0.1 + 0.2, -1e-7}, out[2] = {-0.8731, 2.5};
    char line[512];
    bg_mads_history_line(&p, x, out, true, line, sizeof line);
    CHECK(!strcmp(line, "3 0.30000000000000004 -1e-07 -0.8731 2.5\n"), "line '%s'", line);
    bg_mads_history_line(&p, x, out, false, line, sizeof line);
    CHECK(!strcmp(line, "3 0.30000000000000004 -1e-07 nan nan\n"), "failed '%s'", line);
    /* read back bit for bit; a last line cut by a kill is dropped */
    char path[] = "/tmp/budgie-mads-hist-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    bg_mads_history_line(&p, x, out, true, line, sizeof line);
    fputs(line, f);
    bg_mads_history_line(&p, x, out, false, line, sizeof line);
    fputs(line, f);
    long full = ftell(f);
    fputs("4 0.5 1", f); /* the kill */
    fclose(f);
    double *hx, *ho;
    long count, valid;
    CHECK_OK(&ctx, bg_mads_history_read(&ctx, path, 3, 2, &hx, &ho, &count, &valid));
    CHECK(count == 2 && valid == full, "count %ld valid %ld of %ld", count, valid, full);
    if (count == 2) {
        CHECK(!memcmp(hx, x, sizeof x) && ho[0] == out[0] && isnan(ho[2]), "values read back");
    }
    free(hx);
    free(ho);
    f = fopen(path, "w");
    fputs("1 2 3 4 5\n1 2 3\n1 2 3 4 5\n", f);
    fclose(f);
    CHECK_ERR(&ctx, bg_mads_history_read(&ctx, path, 3, 2, &hx, &ho, &count, &valid), BG_ERR_FORMAT,
              ":2: expected 5 values (3 coordinates, 2 outputs), found 3");
    unlink(path);
    bg_ctx_free(&ctx);
}

BG_TEST(mads_stats_format)
{
    double x[2] = {1, 0.25}, out[3] = {-0.5, 0, 7}, mesh[2] = {0.01, 0.01}, frame[2] = {0.1, 0.1};
    bg_mads_eval_info e = {.index = 11, .n = 2, .m = 3, .x = x, .out = out, .f = -0.5, .h = 0, .bb_evals = 12,
                           .mesh = mesh, .frame = frame, .iteration = 4};
    char line[512];
    bg_mads_stats_line("BBE ( SOL ) OBJ [BBO]", &e, 1.5, line, sizeof line);
    CHECK(!strcmp(line, "12 ( 1 0.25 ) -0.5 [-0.5 0 7]\n"), "'%s'", line);
    bg_mads_stats_line("EVAL f=%.2EOBJ ITER_NUM", &e, 1.5, line, sizeof line);
    CHECK(!strcmp(line, "12 f=-5.00E-01 4\n"), "'%s'", line);
}
