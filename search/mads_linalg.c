/* Small dense linear algebra for the quadratic models: Householder QR least
 * squares (the model fit) and Cholesky (Newton steps on the faces of a box).
 * Sizes are tens to a few hundred, so plain loops are enough. */
#include <math.h>
#include "mads_linalg.h"

bool mads_lsq(double *A, int rows, int cols, double *B, int nrhs, double *X)
{
    if (rows < cols) return false;
    /* A <- Q'A column by column, applying each reflector to B as well */
    double diag_max = 0;
    for (int k = 0; k < cols; k++) {
        double nrm = 0;
        for (int i = k; i < rows; i++) nrm += A[(size_t)i * cols + k] * A[(size_t)i * cols + k];
        nrm = sqrt(nrm);
        if (nrm == 0) return false;
        double akk = A[(size_t)k * cols + k];
        double alpha = akk > 0 ? -nrm : nrm;
        double v0 = akk - alpha;
        /* v = (v0, A[k+1..rows-1][k]); beta = 2 / v'v */
        double vtv = v0 * v0 + nrm * nrm - akk * akk;
        if (!(vtv > 0)) return false;
        double beta = 2.0 / vtv;
        A[(size_t)k * cols + k] = v0;
        for (int j = k + 1; j < cols; j++) {
            double s = 0;
            for (int i = k; i < rows; i++) s += A[(size_t)i * cols + k] * A[(size_t)i * cols + j];
            s *= beta;
            for (int i = k; i < rows; i++) A[(size_t)i * cols + j] -= s * A[(size_t)i * cols + k];
        }
        for (int r = 0; r < nrhs; r++) {
            double s = 0;
            for (int i = k; i < rows; i++) s += A[(size_t)i * cols + k] * B[(size_t)i * nrhs + r];
            s *= beta;
            for (int i = k; i < rows; i++) B[(size_t)i * nrhs + r] -= s * A[(size_t)i * cols + k];
        }
        A[(size_t)k * cols + k] = alpha; /* R's diagonal */
        diag_max = fmax(diag_max, fabs(alpha));
    }
    for (int k = 0; k < cols; k++)
        if (!(fabs(A[(size_t)k * cols + k]) > 1e-13 * diag_max)) return false;
    /* back substitution R X = (Q'B)[0..cols) */
    for (int r = 0; r < nrhs; r++)
        for (int k = cols - 1; k >= 0; k--) {
            double s = B[(size_t)k * nrhs + r];
            for (int j = k + 1; j < cols; j++) s -= A[(size_t)k * cols + j] * X[(size_t)j * nrhs + r];
            X[(size_t)k * nrhs + r] = s / A[(size_t)k * cols + k];
        }
    return true;
}

bool mads_cholesky_solve(double *M, int n, double *b)
{
    for (int j = 0; j < n; j++) {
        double d = M[j * n + j];
        for (int k = 0; k < j; k++) d -= M[j * n + k] * M[j * n + k];
        if (!(d > 1e-12 * (fabs(M[j * n + j]) + 1e-300))) return false;
        d = sqrt(d);
        M[j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double s = M[i * n + j];
            for (int k = 0; k < j; k++) s -= M[i * n + k] * M[j * n + k];
            M[i * n + j] = s / d;
        }
    }
    for (int i = 0; i < n; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++) s -= M[i * n + k] * b[k];
        b[i] = s / M[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (int k = i + 1; k < n; k++) s -= M[k * n + i] * b[k];
        b[i] = s / M[i * n + i];
    }
    return true;
}
