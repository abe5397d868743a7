/* Test accuracy through the trainer's eval graph (see evaluate.h). */
#include "evaluate.h"
#include <stdlib.h>

static bg_status evaluate(bg_loader *ld, bg_trainer *tr, bool val, double *accuracy)
{
    const int64_t total = val ? ld->n_val : ld->n_test;
    const size_t img = (size_t)tr->h * tr->w * tr->c;
    float *x = malloc((size_t)tr->eval_batch * img * sizeof *x);
    int32_t *pred = malloc((size_t)tr->eval_batch * sizeof *pred), *y = malloc((size_t)tr->eval_batch * sizeof *y);
    bg_status s = BG_OK;
    if (!x || !pred || !y) s = bg_fail(ld->ctx, BG_ERR_OOM, "evaluate: out of host memory for %d images", tr->eval_batch);
    int64_t correct = 0;
    for (int64_t i = 0; !s && i < total; i += tr->eval_batch) {
        const int n = (int)(total - i < tr->eval_batch ? total - i : tr->eval_batch);
        s = val ? bg_loader_val_batch(ld, i, n, x, y) : bg_loader_test_batch(ld, i, n, x, y);
        if (!s) s = bg_trainer_predict(tr, x, n, pred);
        for (int j = 0; !s && j < n; j++) correct += pred[j] == y[j];
    }
    free(x), free(pred), free(y);
    if (!s) *accuracy = total ? (double)correct / (double)total : 0.0;
    return s;
}

bg_status bg_evaluate_loader(void *data, bg_trainer *tr, double *accuracy) { return evaluate(data, tr, false, accuracy); }
bg_status bg_evaluate_loader_val(void *data, bg_trainer *tr, double *accuracy) { return evaluate(data, tr, true, accuracy); }
