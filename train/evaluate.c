/* Test accuracy through the trainer's eval graph (see evaluate.h). */
#include "evaluate.h"
#include <stdlib.h>

typedef struct {
    bg_trainer *tr;
    int32_t *pred;
    int64_t correct;
} counting;

static bg_status count_chunk(void *arg, int64_t first, int n, const float *x, const int32_t *y)
{
    counting *c = arg;
    bg_status s = bg_trainer_predict(c->tr, x, n, c->pred);
    for (int j = 0; !s && j < n; j++) c->correct += c->pred[j] == y[j];
    return s;
}

bg_status bg_evaluate_set(const bg_eval_set *set, bg_trainer *tr, double *accuracy)
{
    if (set->h != tr->h || set->w != tr->w || set->c != tr->c)
        return bg_fail(tr->ctx, BG_ERR_SHAPE, "evaluate: images of %dx%dx%d for a model evaluated at %dx%dx%d", set->h,
                       set->w, set->c, tr->h, tr->w, tr->c);
    counting c = {.tr = tr, .pred = malloc((size_t)tr->eval_batch * sizeof *c.pred)};
    if (!c.pred) return bg_fail(tr->ctx, BG_ERR_OOM, "evaluate: out of host memory for %d images", tr->eval_batch);
    bg_status s = bg_eval_set_each(set, tr->eval_batch, count_chunk, &c);
    free(c.pred);
    if (!s) *accuracy = set->n ? (double)c.correct / (double)set->n : 0.0;
    return s;
}

bg_status bg_evaluate_loader(void *data, bg_trainer *tr, double *accuracy)
{
    const bg_eval_set set = bg_loader_test_set(data);
    return bg_evaluate_set(&set, tr, accuracy);
}

bg_status bg_evaluate_loader_val(void *data, bg_trainer *tr, double *accuracy)
{
    const bg_eval_set set = bg_loader_val_set(data);
    return bg_evaluate_set(&set, tr, accuracy);
}
