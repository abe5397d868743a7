/* `budgie bench`: benchmark cases register themselves (constructor-based,
 * like tests) from the files in bench/, which the Makefile links into bin/budgie.
 * A case parses its own options, measures, prints a table to `out`, and
 * returns an exit code. GPU cases print "skipped: ..." and return 0 when no
 * CUDA device is present. Speed is measured here, never asserted in tests. */
#ifndef BG_BENCH_H
#define BG_BENCH_H
#include <stdint.h>
#include <stdio.h>
#include "../engine/clock.h"

typedef int (*bg_bench_fn)(int argc, char **argv, FILE *out);
void bg_bench_register(const char *name, const char *help, bg_bench_fn fn);

#define BG_BENCH(name, help)                                                        \
    static int bench_##name(int argc, char **argv, FILE *out);                      \
    __attribute__((constructor)) static void bg_reg_bench_##name(void) { bg_bench_register(#name, help, bench_##name); } \
    static int bench_##name(int argc, char **argv, FILE *out)

/* Path of the peer script bench/NAME: ./bench/NAME when run from the repo
 * root, else beside the executable (bin/../bench/NAME); NULL when absent. */
const char *bg_bench_peer_path(const char *name, char *buf, size_t n);
/* 1 when python3 imports torch and torch sees a CUDA device. */
int bg_bench_torch_cuda(void);
/* A step's batch: n_x inputs drawn uniform in [-2, 2) from a fixed xorshift
 * (random, never zeros; the same numbers every run) and labels i mod classes. */
void bg_bench_fill_batch(float *x, size_t n_x, int32_t *y, int64_t batch, int classes);

#endif
