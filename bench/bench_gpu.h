/* Shared helpers of the GPU bench cases of issue 6 (bench/bench_{hbm,bn,se,
 * attn,opt,step}.c), implemented in bench/bench_hbm.c.
 *
 * Method (see /work/.library/device/METHOD.md): warm up, then time groups of
 * launches between stream synchronisations with the host clock and report
 * the median per launch; tensors are sized well past the L2 cache (50 MB on
 * an H100) so repeated launches measure HBM, not the cache; inputs are
 * random, never zeros. The bandwidth yardstick is measured in the same run:
 * a 16-byte-per-thread copy kernel over two 512 MiB buffers, counting bytes
 * read plus bytes written. Each kernel's GB/s counts its minimal traffic
 * (every input read once, every output written once, accumulated outputs
 * read and written), so "% of HBM" is the share of the card's measured
 * bandwidth the kernel would reach if it moved no extra byte. */
#ifndef BG_BENCH_GPU_H
#define BG_BENCH_GPU_H
#include <stdbool.h>
#include <stdio.h>
#include "../engine/tensor.h"

/* True (after printing "skipped: no CUDA device") when no GPU is usable. */
bool bg_bench_no_gpu(FILE *out);

/* Median seconds per call of fn(arg) on ctx: `warmup` calls, then `groups`
 * groups of `per_group` calls, each group timed between synchronisations.
 * NaN if a call or the synchronisation fails (the error is printed). */
double bg_bench_time(bg_ctx *ctx, FILE *out, int (*fn)(bg_ctx *ctx, void *arg), void *arg, int warmup, int groups,
                     int per_group);

/* The measured copy bandwidth in GB/s (1e9 bytes/s, read + write). */
double bg_bench_hbm_gbps(bg_ctx *ctx, FILE *out);

/* A CUDA tensor of dt filled with N(0,1) (or U(lo,hi) when lo < hi). */
bg_tensor *bg_bench_tensor(bg_ctx *ctx, bg_dtype dt, int ndim, const int64_t *shape, const char *name, double lo,
                           double hi);

/* Run `python3 bench/torch_ops_peer.py ARGS --json` once and set ms[i] to
 * the median milliseconds of the line whose "name" is names[i] (NaN when
 * missing: the peer's own output, echoed to out, says why). */
void bg_bench_torch_ms(FILE *out, const char *args, const char *const *names, double *ms, int n);

/* One result row: name, ms, minimal bytes, and optionally the torch ms. */
void bg_bench_row(FILE *out, const char *name, double sec, double bytes, double hbm_gbps, double torch_ms);
void bg_bench_header(FILE *out, double hbm_gbps);

/* Shared option parsing: "--key value" pairs; unknown keys are errors. */
typedef struct {
    const char *key;
    char kind;      /* 'i' int64, 'd' double, 's' string, 'b' flag */
    void *dst;
    const char *help;
} bg_bench_opt;
/* 0 on success, 1 after printing help (--help), 2 on a bad option. */
int bg_bench_parse(int argc, char **argv, const bg_bench_opt *opts, int n, FILE *out, const char *usage);

#endif
