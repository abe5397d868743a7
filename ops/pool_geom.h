/* The pooling geometry of ops/pool.c (PyTorch's rules: output size with
 * ceil mode, windows clipped to the padding, the divisor with and without
 * count_include_pad), shared with the fast CPU glue in ops/fast/pool.c so
 * the two backends cannot disagree on a window. */
#ifndef BG_POOL_GEOM_H
#define BG_POOL_GEOM_H
#include <stdbool.h>
#include <stdint.h>
#include "../engine/op.h"

typedef struct {
    int64_t N, H, W, C, Ho, Wo;
    int64_t kh, kw, sh, sw, ph, pw;
    bool ceil_mode, include_pad;
} pool_geom;

/* The node's geometry from its input shape and parameters (Ho, Wo 0 for a
 * zero stride). */
pool_geom pool_geometry(const bg_node *n);
/* Output o's window along one axis: [a, e) in real input coordinates and
 * the divisor's extent (the window clipped to the padded input, or to the
 * real one). */
void pool_window(int64_t o, int64_t k, int64_t s, int64_t p, int64_t in, bool include_pad, int64_t *a, int64_t *e,
                 int64_t *count);

#endif
