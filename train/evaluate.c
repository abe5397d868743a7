/* Test accuracy through the trainer's eval graph (see evaluate.h). */
#include "evaluate.h"
#include <stdlib.h>

bg_status bg_evaluate_loader(void *data, bg_trainer *tr, double *accuracy)
{
    bg_loader *ld = data;
    const size_t img = (size_t)tr->h * tr->w * tr->c;
    float *x = malloc((size_t)tr->eval_batch * img * sizeof *x);
    int32_t *pred = malloc((size_t)tr->eval_batch * sizeof *pred), *y = malloc((size_t)tr->eval_batch * sizeof *y);
    bg_status s = BG_OK;
    if (!x || !pred || !y) s = bg_fail(ld->ctx, BG_ERR_OOM, "evaluate: out of host memory for %d images", tr->eval_batch);
    int64_t correct = 0;
    for (int64_t i = 0; !s && i < ld->n_test; i += tr->eval_batch) {
        const int n = (int)(ld->n_test - i < tr->eval_batch ? ld->n_test - i : tr->eval_batch);
        s = bg_loader_test_batch(ld, i, n, x, y);
        if (!s) s = bg_trainer_predict(tr, x, n, pred);
        for (int j = 0; !s && j < n; j++) correct += pred[j] == y[j];
    }
    free(x), free(pred), free(y);
    if (!s) *accuracy = ld->n_test ? (double)correct / (double)ld->n_test : 0.0;
    return s;
}
