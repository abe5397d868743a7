/* `budgie validate`, library side: a safetensors file describes one op call
 * (op name, parameters, inputs, expected outputs and gradients, usually
 * computed by PyTorch); we run the same call on each requested backend and
 * compare element by element. The file format is in docs/validate-format.md.
 *
 * A tensor passes when every element satisfies |got - want| <= atol + rtol*|want|
 * (NaN or an infinity mismatch never passes). Reported per tensor:
 *   max_abs = max |got - want|
 *   max_rel = max |got - want| / max(|want|, atol)   (atol keeps near-zero
 *             references from turning rounding noise into huge ratios). */
#ifndef BG_VALIDATE_H
#define BG_VALIDATE_H
#include <stdio.h>
#include "../engine/safetensors.h"

typedef enum {
    BG_VAL_CPU = 1,
    BG_VAL_CUDA = 2,
    BG_VAL_ALL = 3   /* CPU, plus CUDA when bg_cuda_available() (noted, not an error, if not) */
} bg_val_backend;

typedef struct {
    double atol, rtol;        /* defaults 1e-5 and 1e-4; a file's atol/rtol metadata wins */
    bg_val_backend backends;
} bg_validate_opts;

typedef struct {
    int n_tensors;            /* comparisons made, summed over backends */
    int n_pass, n_fail;
    int n_backends;           /* backends that ran */
} bg_validate_counts;

void bg_validate_defaults(bg_validate_opts *o);

/* Validate one file. Prints one line per compared tensor to `log` (may be
 * NULL) and adds to *counts. Returns BG_OK when the comparisons ran, whatever
 * their outcome; a malformed file, an unknown op or parameter, a missing
 * input, a shape mismatch or a failing kernel is an error naming the file and
 * the key or tensor. */
bg_status bg_validate_file(bg_ctx *ctx, const char *path, const bg_validate_opts *o, FILE *log,
                           bg_validate_counts *counts);
/* The same on a file already open (tests feed modified buffers this way). */
bg_status bg_validate_st(bg_ctx *ctx, const bg_st_file *f, const bg_validate_opts *o, FILE *log,
                         bg_validate_counts *counts);

#endif
