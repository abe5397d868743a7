/* Search drivers: architecture (NAS) and hyper-parameter (HPO) search over
 * real training runs, the HAET 2021 way (docs/search.md). MADS
 * (search/mads.h) proposes points; here a point becomes `budgie train`
 * options (drive_space.c), each evaluation is one or more training runs as
 * child processes started by a launcher (drive_launch.c), scored from the
 * runs' log.jsonl (drive_score.c) and appended to a JSON-lines history that
 * a resumed search replays (drive_history.c). The MADS core includes none
 * of this. */
#ifndef BG_DRIVE_H
#define BG_DRIVE_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "../../engine/clock.h"
#include "../mads.h"

#define BG_DRIVE_MAX_VARS 8
#define BG_DRIVE_MAX_ARGS 48

/* ---- the search space (drive_space.c) ------------------------------------- */
typedef enum { BG_DRIVE_NAS = 0, BG_DRIVE_HPO } bg_drive_kind;

typedef struct {
    char name[16];          /* d, w, r | lr, wd, optimizer, batch */
    bg_mads_vartype type;
    double lb, ub, x0, granularity;
    char help[96];          /* how it decodes, for the start-up summary */
} bg_drive_var;

typedef struct {
    bg_drive_kind kind;
    int n;
    bg_drive_var v[BG_DRIVE_MAX_VARS];
    char model[192];        /* the recipe's model spec (NAS: the family and its fixed keys) */
    char optimizer[16];     /* the recipe's (HPO X0) */
} bg_drive_space;

/* The seven optimizers of the seed's final HPO (seed-spec §1.4), in its order
 * (categorical values 1..7), and their lr multipliers on the base lr. */
#define BG_DRIVE_N_OPTIM 7
const char *bg_drive_optim_name(int k);   /* k in 1..7 */
double bg_drive_optim_lr_scale(int k);

/* The variables of a search over `model` (NAS: the family's d, w, r among
 * `vars`, a comma list, NULL = every one the family has) or over the
 * recipe's optimisation (HPO: lr, wd, optimizer, batch), with the seed's
 * bounds and X0 from the recipe (lr, wd, batch, optimizer, the spec's
 * d/w/r). Errors name the variable or the model. */
bg_status bg_drive_space_nas(bg_ctx *ctx, bg_drive_space *s, const char *model, const char *vars);
bg_status bg_drive_space_hpo(bg_ctx *ctx, bg_drive_space *s, double lr, double wd, const char *optimizer,
                             long batch);
/* "name=lo:hi,name=lo:hi": new bounds; an unknown name, a number that does
 * not parse, lo > hi or an X0 left outside is an error naming it. */
bg_status bg_drive_space_bounds(bg_ctx *ctx, bg_drive_space *s, const char *text);
/* Into a MADS problem (x0, bounds, types, granularities); m outputs. */
void bg_drive_space_problem(const bg_drive_space *s, int m, bg_mads_problem *p);
/* A point's recipe overrides as "--key value" pairs (argv-style, into
 * args[0..*n), text in buf). NAS: --model with the multipliers put into the
 * recipe's spec; HPO: --lr, --wd, --optimizer, --batch. */
bg_status bg_drive_decode(bg_ctx *ctx, const bg_drive_space *s, const double *x, char *buf, size_t cap,
                          const char **args, int *n);
/* The same as one line ("--model senet18:w=0.5,... --lr 0.1"). */
void bg_drive_decode_line(const bg_drive_space *s, const double *x, char *out, size_t cap);

/* ---- a NAS point before training (drive_check.c) ----------------------------
 * The spec is built without weights and summarised at the recipe's batch:
 * MACs and parameters, and the training memory (activations and saved
 * tensors at the batch, plus weights, gradients and two optimizer buffers
 * per parameter) against mem_cap. A spec the builder rejects (a width that
 * rounds to zero channels, a map that vanishes before the head) or a model
 * over the cap is infeasible without training: ok false, why says so. */
typedef struct {
    bool ok;
    char why[320];
    double macs;            /* per image */
    long long params;
    double train_bytes;     /* 0 when mem_cap is 0 (not computed) */
    char key[160];          /* the network as built: points that round to the same one share it */
} bg_drive_model_check;
bg_status bg_drive_check_model(bg_ctx *ctx, const char *spec, long batch, double mem_cap, bg_drive_model_check *out);

/* ---- one run's result (drive_score.c) -------------------------------------- */
typedef struct {
    bool done;              /* the log has its "done" line */
    double best_val, last_val;  /* -1 when never validated */
    double best_test, last_test;
    double images_per_s;    /* of the last epoch line, 0 if none */
    long epochs;
    char stopped_by[16];
} bg_drive_score;

/* Read RUN_DIR/log.jsonl. BG_OK with done false when the log stops early. */
bg_status bg_drive_score_read(bg_ctx *ctx, const char *run_dir, bg_drive_score *s);
/* The last non-empty line of a file (a child's stderr), "" when none;
 * budgie train's closing notes on checkpoints are skipped (the line before
 * them says what went wrong). */
void bg_drive_last_line(const char *path, char *out, size_t cap);

/* ---- launchers (drive_launch*.c) -------------------------------------------
 * A launcher runs a batch of jobs (argv + run folder), at most `slots` at a
 * time, and reports each as it ends. `local` spawns them on this machine;
 * `parallel` hands them to GNU parallel (drive_launch_parallel.c), `slurm`
 * submits them as a Slurm job array (drive_launch_slurm.c). Every launcher
 * leaves the job's stdout.txt and stderr.txt in its run folder. */
typedef struct {
    char *argv[BG_DRIVE_MAX_ARGS + 16];
    char dir[1024];         /* the run folder; stdout.txt and stderr.txt go there */
    double timeout_s;       /* kill after this long (<= 0: never) */
    void *user;
    /* results */
    int exit_code;          /* -1 when it did not exit */
    int signal;             /* the signal that ended it, 0 if none */
    bool timed_out;
    bool spawn_failed;
    double wall_s;
    int slot;               /* which slot ran it (device assignment; -1 unknown) */
    char why[256];          /* the launcher's reason when the job has no exit status ("" none) */
} bg_drive_job;

typedef void (*bg_drive_job_done)(void *user, bg_drive_job *job);

typedef struct bg_drive_launcher bg_drive_launcher;
struct bg_drive_launcher {
    const char *name;
    int slots;
    /* Run the jobs; `done` is called as each one ends (in the caller's
     * thread). An error only when the launcher itself cannot work. */
    bg_status (*run)(bg_drive_launcher *l, bg_ctx *ctx, bg_drive_job *jobs, int n, bg_drive_job_done done,
                     void *user);
    void (*close)(bg_drive_launcher *l);
    void *impl;
};

/* The local launcher: `slots` processes at once; with `devices` > 0 each
 * gets CUDA_VISIBLE_DEVICES = slot % devices. `exe` must be executable. */
bg_status bg_drive_launcher_local(bg_ctx *ctx, bg_drive_launcher *l, const char *exe, int slots, int devices);

/* What the parallel and slurm launchers are given. Their files (the jobs
 * list, the joblog, the batch script, the engine's own output) go to
 * `dir`/launch/; the jobs run from this process's working directory. */
typedef struct {
    const char *exe;          /* the budgie binary, the same path on every host */
    const char *dir;          /* the search folder */
    int slots;                /* jobs at once (per host for parallel, array throttle for slurm) */
    int devices;              /* parallel: CUDA_VISIBLE_DEVICES = (job slot - 1) % devices; 0 leaves it */
    const char *sshloginfile; /* parallel: hosts (NULL: this machine only) */
    const char *partition;    /* slurm: --partition (NULL: the default one) */
    const char *sbatch_args;  /* slurm: more sbatch options, split at blanks (NULL: none) */
    double poll_s;            /* slurm: seconds between squeue polls (<= 0: 2) */
} bg_drive_engine_opts;

/* GNU parallel: each batch is one `parallel --jobs N --joblog ...` run.
 * An error naming the binary when `parallel` is not on PATH, or naming the
 * sshloginfile when it cannot be read. */
bg_status bg_drive_launcher_parallel(bg_ctx *ctx, bg_drive_launcher *l, const bg_drive_engine_opts *o);
/* Slurm: each batch is one `sbatch --array` job, waited for with squeue.
 * An error naming the binary when sbatch, squeue or scancel is not on PATH. */
bg_status bg_drive_launcher_slurm(bg_ctx *ctx, bg_drive_launcher *l, const bg_drive_engine_opts *o);

/* Helpers the engine launchers share (drive_shell.c). */
/* NAME found on PATH (a name with a slash is taken as it is): its path. */
bool bg_drive_which(const char *name, char *out, size_t cap);
/* Append s to out (holding len bytes) in single quotes, safe for any POSIX
 * shell; false when it does not fit or s has a newline (the engines read
 * one command per line). */
bool bg_drive_quote(char *out, size_t cap, size_t *len, const char *s);
/* Run argv (argv[0] looked up on PATH) and wait; its stdout and stderr
 * together into out (cut at cap - 1). *status: the exit status, or 128 +
 * the signal. An error when it cannot be started. */
bg_status bg_drive_capture(bg_ctx *ctx, char *const argv[], char *out, size_t cap, int *status);
/* DIR/launch created; its path into out. */
bg_status bg_drive_launch_dir(bg_ctx *ctx, const char *dir, char *out, size_t cap);
/* The next free "DIR/launch/PREFIX-K" stem (K from 1), so a resumed search
 * keeps the files of the one before. */
void bg_drive_launch_stem(const char *launch_dir, const char *prefix, char *out, size_t cap);

/* ---- the history (drive_history.c) ----------------------------------------
 * JSON lines. Line 1 describes the search ({"search": "nas", ...}); every
 * other line is one evaluation: {"eval": k, "x": [...], "ok", "out": [...],
 * "f", "h", "runs": [...], "args", "wall_s", ...}. Each line is written with
 * one write() and fsynced. */
typedef struct {
    long count;
    int n, m;
    double *x, *out;        /* count*n, count*m */
    bool *ok;
    char **key;             /* the evaluation's dedupe key ("" none) */
    double *acc;            /* count: the mean validation accuracy (NAN when failed) */
    long max_eval;          /* the largest "eval" number seen */
    bool dropped_tail;      /* a cut last line was dropped */
} bg_drive_history;

/* Create (truncate) PATH with the header line. */
bg_status bg_drive_history_create(bg_ctx *ctx, const char *path, const char *header);
/* Read PATH for a resume: the header must equal `header` field by field
 * (an error names the first field that differs); a last line without its
 * newline is dropped (and cut from the file); any other bad line is an
 * error naming PATH:LINE. */
bg_status bg_drive_history_load(bg_ctx *ctx, const char *path, const char *header, int n, int m,
                                bg_drive_history *h);
void bg_drive_history_free(bg_drive_history *h);
/* Append one line (a JSON object, compact) with one write() and fsync. */
bg_status bg_drive_history_append(bg_ctx *ctx, const char *path, const char *line);

#endif
