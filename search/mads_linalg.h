/* Dense helpers for the quadratic models (mads_linalg.c). Row-major. */
#ifndef BG_MADS_LINALG_H
#define BG_MADS_LINALG_H
#include <stdbool.h>
#include <stddef.h>

/* Least squares min |A X - B| for nrhs right-hand sides (A: rows x cols,
 * rows >= cols; B: rows x nrhs; X: cols x nrhs). A and B are overwritten.
 * False when A is (numerically) rank deficient. */
bool mads_lsq(double *A, int rows, int cols, double *B, int nrhs, double *X);
/* Solve M y = b for symmetric positive definite M (n x n, overwritten);
 * b becomes y. False when M is not positive definite. */
bool mads_cholesky_solve(double *M, int n, double *b);

#endif
