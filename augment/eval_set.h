/* The images a run is tested or validated on, whatever the data path: n
 * images of h x w x c with labels in [0, k), handed out in consecutive
 * chunks in a fixed order, normalised (NHWC floats). Evaluation and the
 * test-time ensembles (train/evaluate.h, train/ensemble.h) read data only
 * through this, so `budgie train` and `budgie eval` see the same images. */
#ifndef BG_EVAL_SET_H
#define BG_EVAL_SET_H
#include <stdint.h>
#include "../engine/context.h"

/* One chunk: images first..first+n-1 (x: n*h*w*c floats, y: n labels), valid during the call. */
typedef bg_status (*bg_chunk_fn)(void *arg, int64_t first, int n, const float *x, const int32_t *y);

typedef struct {
    int64_t n;
    int h, w, c, k;
    /* Calls fn for every chunk of at most `chunk` images, in order; stops at the first error. */
    bg_status (*each)(void *impl, int chunk, bg_chunk_fn fn, void *arg);
    void *impl;
} bg_eval_set;

static inline bg_status bg_eval_set_each(const bg_eval_set *s, int chunk, bg_chunk_fn fn, void *arg)
{
    return s->each(s->impl, chunk, fn, arg);
}

#endif
