/* MADS batch mode, the NOMAD way: a parameter file (mads_params.c), a
 * blackbox executable run once per point (mads_blackbox.c), and the history,
 * stats and JSON-lines files (mads_history.c). `budgie search blackbox`
 * (tools/cmd_search.c) puts them together. */
#ifndef BG_MADS_BATCH_H
#define BG_MADS_BATCH_H
#include <stddef.h>
#include <stdio.h>
#include "../mads.h"

#define BG_MADS_PATH 1024
#define BG_MADS_MAX_NOTES 16

typedef struct {
    bg_mads_problem pb;
    bg_mads_options opt;          /* callbacks left NULL */
    char bb_exe[4096];            /* the command, quotes and a leading '$' removed */
    bool bb_exe_global;           /* '$': a system command, no directory added */
    char dir[BG_MADS_PATH];       /* directory of the parameter file ("." when none) */
    char name[BG_MADS_PATH];      /* the parameter file, for messages */
    char history_file[BG_MADS_PATH];  /* as written ("" none) */
    char stats_file[BG_MADS_PATH];
    char stats_format[1024];      /* the words after the stats file name */
    char tmp_dir[BG_MADS_PATH];   /* TMP_DIR ("" : $TMPDIR or /tmp) */
    int display_degree;           /* 0..3, default 2 */
    int nb_threads;               /* NB_THREADS_PARALLEL_EVAL, default 1 */
    bool add_seed_to_file_names;  /* NOMAD default yes */
    bool seed_random;             /* SEED -1 / DIFF */
    int n_notes;                  /* keys accepted but ignored, and similar remarks */
    char notes[BG_MADS_MAX_NOTES][200];
} bg_mads_params;

void bg_mads_params_default(bg_mads_params *pp);
/* Parse parameter-file text. `name` is used in messages ("file:line: ...")
 * and `dir` is where relative paths point. */
bg_status bg_mads_params_parse(bg_ctx *ctx, const char *text, const char *name, const char *dir,
                               bg_mads_params *pp);
bg_status bg_mads_params_read(bg_ctx *ctx, const char *path, bg_mads_params *pp);
/* An output file's path: relative to the parameter file's directory, with
 * ".SEED" before the extension when ADD_SEED_TO_FILE_NAMES is on (NOMAD's
 * history.txt -> history.0.txt). */
void bg_mads_params_path(const bg_mads_params *pp, const char *file, char *out, size_t cap);
/* The shell command that runs the blackbox (directory prepended to a
 * relative executable that exists there, unless '$'). */
void bg_mads_params_command(const bg_mads_params *pp, char *out, size_t cap);

/* ---- the blackbox executable (mads_blackbox.c) ----------------------------
 * Each point goes to a file of its own (values separated by spaces, integers
 * written as integers) whose path is appended to the command; the command
 * runs through /bin/sh in `workdir`, its standard output comes back through a
 * pipe and its last line must hold the m outputs. A non-zero exit, a signal,
 * a timeout or an unreadable line is a failed evaluation, never an error of
 * the search. Up to `count` processes run at once (one block). */
#define BG_MADS_MAX_BLOCK 256
typedef struct {
    char cmd[4096];
    char workdir[BG_MADS_PATH];
    char tmp[BG_MADS_PATH];       /* private directory for point files */
    double timeout_s;             /* per evaluation; <= 0: none */
    bool quiet;                   /* blackbox stderr to /dev/null */
    int n, m;
    bg_mads_vartype types[BG_MADS_MAX_DIM];
    long seq;
    int last_count;
    char reason[BG_MADS_MAX_BLOCK][160];  /* why each point of the last block failed ("" ok) */
} bg_mads_blackbox;

bg_status bg_mads_blackbox_open(bg_ctx *ctx, bg_mads_blackbox *bb, const char *cmd, const char *workdir,
                                const char *tmp_parent, const bg_mads_problem *p);
/* A bg_mads_eval_fn: user is the bg_mads_blackbox. */
bg_status bg_mads_blackbox_eval(void *user, bg_ctx *ctx, int count, const double *x, double *out, bool *ok);
void bg_mads_blackbox_close(bg_mads_blackbox *bb);
/* The m numbers of an output text (its last non-empty line). False, with the
 * reason, when it does not hold exactly m numbers. */
bool bg_mads_parse_outputs(const char *text, int m, double *out, char *why, size_t cap);

/* ---- files (mads_history.c) -------------------------------------------------
 * HISTORY_FILE: one line per evaluation in evaluation order, the point's
 * coordinates then its outputs, separated by spaces (failed evaluations:
 * outputs "nan"). Values are written so they read back bit for bit. */
void bg_mads_format_value(double v, bool integer, char *buf, size_t cap);
/* Append one history line for (x, out) to buf. */
void bg_mads_history_line(const bg_mads_problem *p, const double *x, const double *out, bool ok, char *buf,
                          size_t cap);
/* Read a history: *x (count*n), *out (count*m) malloc'd. A last line cut by
 * a kill (no newline, wrong count) is dropped; *valid_bytes is the length of
 * the complete part (truncate to it before appending). */
bg_status bg_mads_history_read(bg_ctx *ctx, const char *path, int n, int m, double **x, double **out,
                               long *count, long *valid_bytes);
/* One STATS_FILE line: the format's keywords (BBE, EVAL, OBJ, SOL, BBO,
 * CONS_H, H_MAX, TIME, ITER_NUM, MESH_SIZE, FRAME_SIZE, optionally preceded
 * by a printf format such as %.2E) replaced by the values of e. */
void bg_mads_stats_line(const char *format, const bg_mads_eval_info *e, double time_s, char *buf, size_t cap);

#endif
