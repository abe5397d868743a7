#include "trainer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../ops/ops.h"
#include "checkpoint.h"
#include "step_cuda.h"

bg_status bg_trainer_init(bg_trainer *tr, bg_ctx *ctx, bg_device device, bg_forward_fn forward, void *model,
                          int batch, int eval_batch, int h, int w, int c, const bg_optim_config *optim,
                          float label_smoothing)
{
    memset(tr, 0, sizeof *tr);
    if (batch < 1 || eval_batch < 1 || h < 1 || w < 1 || c < 1)
        return bg_fail(ctx, BG_ERR_ARG, "trainer: batch %d, eval batch %d and input %dx%dx%d must all be positive",
                       batch, eval_batch, h, w, c);
    bg_status s = bg_optim_check(ctx, optim);
    if (s) return s;
    tr->ctx = ctx;
    tr->device = device;
    tr->forward = forward;
    tr->model = model;
    tr->batch = batch;
    tr->eval_batch = eval_batch;
    tr->h = h, tr->w = w, tr->c = c;
    tr->optim_cfg = *optim;
    tr->label_smoothing = label_smoothing;
    /* CUDA: graph replay and mixed precision (engine/cuda_graph.h) */
    if (device == BG_CUDA) return bg_trainer_cuda_init(tr);
    return BG_OK;
}

/* The first step records: input tensors, the model, the loss, the optimizer.
 * Recording is deferred (nothing runs or is allocated per op) and the tape's
 * memory is then planned into one arena (engine/plan.h): the step's peak is
 * known before it runs, and the first step replays like every later one. */
static bg_status record_train(bg_trainer *tr)
{
    bg_ctx *ctx = tr->ctx;
    tr->train_g = bg_graph_new(ctx, tr->device, true);
    if (!tr->train_g) return ctx->status;
    tr->train_g->defer = true;
    int64_t xs[4] = {tr->batch, tr->h, tr->w, tr->c}, ys[1] = {tr->batch};
    tr->x = bg_graph_tensor(tr->train_g, bg_trainer_input_dtype(tr), 4, xs, "input");
    tr->y = bg_graph_tensor(tr->train_g, BG_I32, 1, ys, "labels");
    return tr->x && tr->y ? BG_OK : ctx->status;
}

static bg_status build_train(bg_trainer *tr)
{
    bg_ctx *ctx = tr->ctx;
    tr->logits = tr->forward(tr->train_g, tr->model, tr->x);
    tr->loss = bg_softmax_xent(tr->train_g, tr->logits, tr->y, tr->label_smoothing);
    if (!tr->loss) return ctx->status ? ctx->status : bg_fail(ctx, BG_ERR_ARG, "trainer: the model built no output");
    bg_tensor *keep[2] = {tr->logits, tr->loss};
    bg_status s = bg_graph_plan(tr->train_g, tr->loss, keep, 2);
    if (s) return s;
    bg_tensor *params[1024];
    int n = bg_graph_params(tr->train_g, params, 1024);
    if (n > 1024) return bg_fail(ctx, BG_ERR_ARG, "trainer: %d parameters (at most 1024)", n);
    s = bg_optim_new(ctx, &tr->optim_cfg, params, n, &tr->opt);
    if (!s && tr->resume_path[0]) s = bg_ckpt_restore_optim(ctx, tr->resume_path, tr->opt);
    return s;
}

bg_status bg_trainer_resume_from(bg_trainer *tr, const char *checkpoint)
{
    if (tr->train_g) return bg_fail(tr->ctx, BG_ERR_ARG, "trainer: resume before the first step, not after");
    if (strlen(checkpoint) >= sizeof tr->resume_path)
        return bg_fail(tr->ctx, BG_ERR_ARG, "trainer: checkpoint path too long: %s", checkpoint);
    snprintf(tr->resume_path, sizeof tr->resume_path, "%s", checkpoint);
    return BG_OK;
}

/* One step whose input batch comes either from host floats or from a fill
 * callback that writes the input tensor where it lives (GPU-resident data). */
static bg_status step(bg_trainer *tr, const float *x, bg_fill_fn fill, void *arg, const int32_t *y_in, double lr,
                      double *loss)
{
    bg_ctx *ctx = tr->ctx;
    bg_status s;
    bool first = tr->train_g == NULL;
    if (first && (s = record_train(tr))) return s;
    int32_t *y_fill = NULL;
    const int32_t *y = y_in;
    if (fill) {
        if (!(y_fill = malloc((size_t)tr->batch * sizeof *y_fill))) return bg_fail(ctx, BG_ERR_OOM, "trainer: out of host memory");
        s = fill(arg, tr->x, y_fill);
        y = y_fill;
    } else {
        s = bg_trainer_upload_input(tr, tr->x, x);
    }
    if (!s) s = bg_tensor_upload(ctx, tr->y, y, bg_nbytes(tr->y));
    free(y_fill);
    if (s) return s;
    if (tr->cuda) { /* the CUDA step: graph replay, mixed precision */
        if (first && (s = build_train(tr))) return s;
        return bg_trainer_cuda_step(tr, lr, first, loss);
    }
    if (first && (s = build_train(tr))) return s;
    if ((s = bg_graph_forward(tr->train_g))) return s;
    if ((s = bg_graph_backward(tr->train_g, tr->loss))) return s;
    if ((s = bg_optim_set_lr(ctx, tr->opt, lr))) return s;
    if ((s = bg_optim_step(ctx, tr->opt))) return s;
    float l = 0;
    if ((s = bg_tensor_download(ctx, tr->loss, &l, sizeof l))) return s;
    if (loss) *loss = l;
    return BG_OK;
}

bg_status bg_trainer_step(bg_trainer *tr, const float *x, const int32_t *y, double lr, double *loss)
{
    return step(tr, x, NULL, NULL, y, lr, loss);
}

bg_status bg_trainer_step_fill(bg_trainer *tr, bg_fill_fn fill, void *arg, double lr, double *loss)
{
    return step(tr, NULL, fill, arg, NULL, lr, loss);
}

bg_status bg_trainer_logits(bg_trainer *tr, const float *x, int n, const float **logits)
{
    bg_ctx *ctx = tr->ctx;
    bg_status s;
    if (n < 0 || n > tr->eval_batch)
        return bg_fail(ctx, BG_ERR_ARG, "predict: %d images for an eval batch of %d", n, tr->eval_batch);
    size_t img = (size_t)tr->h * tr->w * tr->c;
    float *buf = calloc((size_t)tr->eval_batch * img, sizeof *buf);
    if (!buf) return bg_fail(ctx, BG_ERR_OOM, "predict: out of host memory");
    memcpy(buf, x, (size_t)n * img * sizeof *buf);
    s = BG_OK;
    if (!tr->eval_g) {
        /* deferred and planned without gradients: no intermediate outlives
         * its last reader, so the arena holds a few activations, not all */
        int64_t xs[4] = {tr->eval_batch, tr->h, tr->w, tr->c};
        tr->eval_g = bg_graph_new(ctx, tr->device, false);
        if (tr->eval_g) tr->eval_g->defer = true;
        tr->ex = tr->eval_g ? bg_graph_tensor(tr->eval_g, bg_trainer_input_dtype(tr), 4, xs, "eval_input") : NULL;
        s = tr->ex ? BG_OK : ctx->status;
        if (!s) {
            tr->elogits = tr->forward(tr->eval_g, tr->model, tr->ex);
            s = tr->elogits ? BG_OK : ctx->status;
        }
        if (!s) s = bg_graph_plan(tr->eval_g, NULL, &tr->elogits, 1);
        if (!s) {
            tr->host_logits = malloc((size_t)bg_numel(tr->elogits) * sizeof *tr->host_logits);
            if (!tr->host_logits) s = bg_fail(ctx, BG_ERR_OOM, "predict: out of host memory");
        }
    }
    if (!s) s = bg_trainer_upload_input(tr, tr->ex, buf);
    if (!s) s = bg_graph_forward(tr->eval_g);
    free(buf);
    if (s) return s;
    if ((s = bg_trainer_download_f32(tr, tr->elogits, tr->host_logits))) return s;
    *logits = tr->host_logits;
    return BG_OK;
}

int bg_trainer_classes(const bg_trainer *tr) { return tr->elogits ? (int)tr->elogits->shape[1] : 0; }

bg_status bg_trainer_predict(bg_trainer *tr, const float *x, int n, int32_t *pred)
{
    const float *logits;
    bg_status s = bg_trainer_logits(tr, x, n, &logits);
    if (s) return s;
    const int64_t k = tr->elogits->shape[1];
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * (size_t)k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        pred[i] = best;
    }
    return BG_OK;
}

void bg_trainer_free(bg_trainer *tr)
{
    if (!tr->ctx) return;
    bg_trainer_cuda_free(tr);
    bg_optim_free(tr->ctx, tr->opt);
    bg_graph_free(tr->train_g);
    bg_graph_free(tr->eval_g);
    free(tr->host_logits);
    memset(tr, 0, sizeof *tr);
}
