/* The evaluation cache: every point the run has evaluated, in order, so no
 * point is ever sent to the blackbox twice (blackbox calls cost minutes).
 *
 * Points are compared with a per-coordinate tolerance far below the finest
 * mesh, not bitwise: x0 + 3*0.1 and x0 + 30*0.01 are the same mesh point but
 * different doubles. Lookup hashes the point's cell on a coarse grid and, for
 * a coordinate lying within the tolerance of a cell border, also the
 * neighbouring cell, so equal points are always found. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mads_internal.h"

static uint64_t mix(uint64_t h, uint64_t v)
{
    /* splitmix64 finaliser on a running combination */
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h;
}

/* Cells are shifted by an irrational fraction of their width: mesh points
 * are round numbers, and round numbers would otherwise sit exactly on cell
 * borders and need the neighbour check every time. */
#define CELL_SHIFT 0.3819660112501051

static int64_t cell_of(double x, double w)
{
    double k = floor(x / w + CELL_SHIFT);
    if (!(k > -9e18)) return INT64_MIN;
    if (k > 9e18) return INT64_MAX;
    return (int64_t)k;
}

static uint64_t hash_cells(const int64_t *k, int n)
{
    uint64_t h = 0x51ED270B27A1F3C5ull;
    for (int i = 0; i < n; i++) h = mix(h, (uint64_t)k[i]);
    return h;
}

static bool same(const mads_cache *c, const double *a, const double *b)
{
    for (int i = 0; i < c->n; i++) {
        /* a point computed as centre + steps carries the rounding of the
         * centre and steps, not only of its own (maybe tiny) value */
        double t = c->tol[i] + 4 * 2.220446049250313e-16 * fmax(fmax(fabs(a[i]), fabs(b[i])), c->mag[i]);
        if (!(fabs(a[i] - b[i]) <= t)) return false;
    }
    return true;
}

bg_status mads_cache_init(bg_ctx *ctx, mads_cache *c, int n, int m, const double *scale, const double *tol)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->m = m;
    for (int i = 0; i < n; i++) {
        c->tol[i] = tol[i];
        c->mag[i] = isfinite(scale[i]) ? scale[i] : 0;
        /* cells a million times coarser than the tolerance: one cell per point
         * in practice, and a neighbour check only at cell borders */
        c->cell[i] = fmax(scale[i] * 1e-6, tol[i] * 1e6);
        if (!(c->cell[i] > 0)) c->cell[i] = 1e-6;
    }
    c->tsize = 1024;
    c->table = malloc((size_t)c->tsize * sizeof *c->table);
    if (!c->table) return bg_fail(ctx, BG_ERR_OOM, "mads cache: out of memory");
    for (long i = 0; i < c->tsize; i++) c->table[i] = -1;
    return BG_OK;
}

void mads_cache_free(mads_cache *c)
{
    free(c->x);
    free(c->out);
    free(c->f);
    free(c->hpb);
    free(c->heb);
    free(c->from);
    free(c->flags);
    free(c->table);
    memset(c, 0, sizeof *c);
}

static long probe_find(const mads_cache *c, uint64_t h, const double *x)
{
    long mask = c->tsize - 1;
    for (long s = (long)(h & (uint64_t)mask);; s = (s + 1) & mask) {
        long e = c->table[s];
        if (e < 0) return -1;
        if (same(c, x, c->x + (size_t)e * c->n)) return e;
    }
}

long mads_cache_find(const mads_cache *c, const double *x)
{
    if (c->count == 0) return -1;
    int64_t k[MADS_N];
    int border[MADS_N], nb = 0; /* coordinates near a cell border: -1 low side, +1 high side */
    int which[MADS_N];
    for (int i = 0; i < c->n; i++) {
        k[i] = cell_of(x[i], c->cell[i]);
        double t = c->tol[i] + 4 * 2.220446049250313e-16 * fmax(fabs(x[i]), c->mag[i]) * 2;
        double lo = x[i] - ((double)k[i] - CELL_SHIFT) * c->cell[i];
        if (lo < t) { border[nb] = -1; which[nb++] = i; }
        else if (c->cell[i] - lo < t) { border[nb] = 1; which[nb++] = i; }
    }
    if (nb > 10) nb = 10; /* never in practice; bounded work on adversarial input */
    for (long mask = 0; mask < (1L << nb); mask++) {
        int64_t kk[MADS_N];
        memcpy(kk, k, sizeof(int64_t) * (size_t)c->n);
        for (int j = 0; j < nb; j++)
            if (mask & (1L << j)) kk[which[j]] += border[j];
        long e = probe_find(c, hash_cells(kk, c->n), x);
        if (e >= 0) return e;
    }
    return -1;
}

static void table_put(mads_cache *c, long e)
{
    int64_t k[MADS_N];
    const double *x = c->x + (size_t)e * c->n;
    for (int i = 0; i < c->n; i++) k[i] = cell_of(x[i], c->cell[i]);
    long mask = c->tsize - 1;
    long s = (long)(hash_cells(k, c->n) & (uint64_t)mask);
    while (c->table[s] >= 0) s = (s + 1) & mask;
    c->table[s] = e;
}

static bool grow(mads_cache *c)
{
    long cap = c->cap ? 2 * c->cap : 256;
    double *x = realloc(c->x, (size_t)cap * c->n * sizeof *x);
    if (x) c->x = x;
    double *out = realloc(c->out, (size_t)cap * (c->m > 0 ? c->m : 1) * sizeof *out);
    if (out) c->out = out;
    double *f = realloc(c->f, (size_t)cap * sizeof *f);
    if (f) c->f = f;
    double *hpb = realloc(c->hpb, (size_t)cap * sizeof *hpb);
    if (hpb) c->hpb = hpb;
    double *heb = realloc(c->heb, (size_t)cap * sizeof *heb);
    if (heb) c->heb = heb;
    long *from = realloc(c->from, (size_t)cap * sizeof *from);
    if (from) c->from = from;
    uint8_t *fl = realloc(c->flags, (size_t)cap * sizeof *fl);
    if (fl) c->flags = fl;
    if (!x || !out || !f || !hpb || !heb || !from || !fl) return false;
    c->cap = cap;
    return true;
}

long mads_cache_add(bg_ctx *ctx, mads_cache *c, const double *x, const double *out, uint8_t flags)
{
    if (c->count == c->cap && !grow(c)) {
        bg_fail(ctx, BG_ERR_OOM, "mads cache: out of memory at %ld points", c->count);
        return -1;
    }
    if (2 * (c->count + 1) > c->tsize) {
        long *t = malloc((size_t)c->tsize * 2 * sizeof *t);
        if (!t) {
            bg_fail(ctx, BG_ERR_OOM, "mads cache: out of memory at %ld points", c->count);
            return -1;
        }
        free(c->table);
        c->table = t;
        c->tsize *= 2;
        for (long i = 0; i < c->tsize; i++) c->table[i] = -1;
        for (long e = 0; e < c->count; e++) table_put(c, e);
    }
    long e = c->count++;
    memcpy(c->x + (size_t)e * c->n, x, (size_t)c->n * sizeof *x);
    if (c->m > 0) memcpy(c->out + (size_t)e * c->m, out, (size_t)c->m * sizeof *out);
    c->flags[e] = flags;
    c->f[e] = INFINITY;
    c->hpb[e] = c->heb[e] = INFINITY;
    c->from[e] = -1;
    table_put(c, e);
    return e;
}
