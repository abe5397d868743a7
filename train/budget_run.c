#include "budget_run.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

double bg_run_lr(const bg_run_config *cfg, double elapsed, int64_t step, int64_t epoch)
{
    if (cfg->sched.kind == BG_SCHED_COSINE_TIME) return bg_sched_lr_time(&cfg->sched, elapsed, cfg->budget_s);
    int64_t t = cfg->sched_per_epoch ? epoch : step;
    if (cfg->sched_freeze > 0 && t > cfg->sched_freeze) t = cfg->sched_freeze;
    return bg_sched_lr(&cfg->sched, t);
}

void bg_run_log_json(FILE *f, json_t *obj)
{
    if (f && obj) {
        char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (s) fprintf(f, "%s\n", s), fflush(f);
        free(s);
    }
    json_decref(obj);
}

/* bg_trainer_step_fill's callback: the run's device batch for one step. */
typedef struct {
    const bg_run_config *cfg;
    int64_t epoch, k, step;
} device_batch;

static bg_status fill_device(void *arg, bg_tensor *x, int32_t *y)
{
    const device_batch *d = arg;
    return d->cfg->next_batch_device(d->cfg->data, d->epoch, d->k, d->step, x, y);
}

/* A checkpoint at pos, timed (the slowest one sizes the reserve at the end). */
static bg_status checkpoint(const bg_run_config *cfg, bg_trainer *tr, const bg_run_position *pos, bg_run_result *res)
{
    if (!cfg->checkpoint) return BG_OK;
    const double t = bg_monotonic_s();
    bg_status s = cfg->checkpoint(cfg->data, tr, pos);
    const double dt = bg_monotonic_s() - t;
    if (dt > res->checkpoint_s) res->checkpoint_s = dt;
    return s;
}

bg_status bg_run_budgeted(bg_ctx *ctx, bg_trainer *tr, const bg_run_config *cfg, bg_run_result *res)
{
    *res = (bg_run_result){0};
    if (cfg->steps_per_epoch < 1 || !(cfg->budget_s > 0))
        return bg_fail(ctx, BG_ERR_ARG, "run: steps per epoch %lld and budget %g s must be positive",
                       (long long)cfg->steps_per_epoch, cfg->budget_s);
    const bg_run_position st = cfg->start;
    if (st.epoch < 0 || st.step_in_epoch < 0 || st.step_in_epoch > cfg->steps_per_epoch || st.step < 0 ||
        !(st.elapsed_s >= 0))
        return bg_fail(ctx, BG_ERR_ARG, "run: start position epoch %lld step %lld of %lld (step %lld, %g s) is invalid",
                       (long long)st.epoch, (long long)st.step_in_epoch, (long long)cfg->steps_per_epoch,
                       (long long)st.step, st.elapsed_s);
    bg_status s = bg_sched_check(ctx, &cfg->sched);
    if (s) return s;
    /* host staging for a batch, unless batches are made on the device */
    float *x = NULL;
    int32_t *y = NULL;
    if (!cfg->next_batch_device) {
        x = malloc((size_t)tr->batch * tr->h * tr->w * tr->c * sizeof *x);
        y = malloc((size_t)tr->batch * sizeof *y);
        if (!x || !y) {
            free(x), free(y);
            return bg_fail(ctx, BG_ERR_OOM, "run: out of host memory for a batch");
        }
    }
    const double t0 = cfg->t0 > 0 ? cfg->t0 : bg_monotonic_s();
#define ELAPSED() (st.elapsed_s + bg_monotonic_s() - t0)
/* an evaluation's cost: measured, or before the first one half a training step per image */
#define EVAL_EST() (eval_cost >= 0 ? eval_cost : 0.5 * slowest_step * (double)cfg->eval_images / (double)tr->batch)
/* the caller's final evaluation is reserved from the first measured epoch evaluation on (the estimate
 * before it, from a first step that also waited for the data, is too coarse to stop training on), with
 * the checkpoint's margin: its views are made differently (resized, mirrored, fresh eval graphs) */
#define RESERVE()                                                                                          \
    (cfg->reserve_s + BG_RUN_MARGIN * res->checkpoint_s +                                                  \
     (eval_cost >= 0 ? BG_RUN_MARGIN * cfg->final_eval_factor * eval_cost : 0))
    /* the step's cost: the first step (it records the graph) until a second
     * one is seen, then the slowest of the later ones */
    double slowest_later = 0, slowest_step = 0, eval_cost = -1, last_ckpt = bg_monotonic_s();
    bg_run_position pos = st;
    if (st.step == 0 && st.epochs_done == 0) pos.best_select = -1, pos.last_val = -1;
    res->best_accuracy = st.best_accuracy, res->last_accuracy = st.last_accuracy;
    bool stop = false;
    for (int64_t epoch = st.epoch; !stop && (!cfg->max_epochs || epoch < cfg->max_epochs); epoch++) {
        double loss_sum = 0, train_s = 0, window_loss = 0, window_s = 0;
        int64_t n_steps = 0, window_n = 0;
        const int64_t k0 = epoch == st.epoch ? st.step_in_epoch : 0;
        pos.epoch = epoch, pos.step_in_epoch = k0;
        for (int64_t k = k0; k < cfg->steps_per_epoch; k++) {
            double elapsed = ELAPSED();
            const double eval_est = EVAL_EST(), reserve = RESERVE();
            /* Another step must fit, and so must the evaluation after it;
             * but when the evaluation no longer fits even now, it is given
             * up and the time goes to training. */
            const bool step_fits = elapsed + 1.1 * slowest_step + reserve <= cfg->budget_s;
            const bool eval_after = elapsed + 1.1 * (slowest_step + eval_est) + reserve <= cfg->budget_s;
            const bool eval_now = elapsed + 1.1 * eval_est + reserve <= cfg->budget_s;
            if (!step_fits || (!eval_after && eval_now)) {
                res->stopped_by_budget = stop = true;
                break;
            }
            if (cfg->stop && *cfg->stop) {
                res->stopped_by_signal = stop = true;
                break;
            }
            if (cfg->max_steps > 0 && pos.step >= cfg->max_steps) {
                res->stopped_by_max_steps = stop = true;
                break;
            }
            double lr = bg_run_lr(cfg, elapsed, pos.step, epoch);
            double ts = bg_monotonic_s(), loss = 0;
            if (cfg->next_batch_device) {
                device_batch db = {cfg, epoch, k, pos.step};
                if ((s = bg_trainer_step_fill(tr, fill_device, &db, lr, &loss))) goto out;
            } else {
                if ((s = cfg->next_batch(cfg->data, epoch, k, pos.step, x, y))) goto out;
                if ((s = bg_trainer_step(tr, x, y, lr, &loss))) goto out;
            }
            if (!isfinite(loss)) {
                s = bg_fail(ctx, BG_ERR_NUMERIC, "run: loss became %g at step %lld", loss, (long long)pos.step);
                goto out;
            }
            double dt = bg_monotonic_s() - ts;
            if (res->steps > 0) slowest_later = fmax(slowest_later, dt);
            slowest_step = res->steps == 0 ? dt : slowest_later;
            if (cfg->on_step) cfg->on_step(cfg->data, pos.step, loss);
            train_s += dt;
            window_loss += loss, window_s += dt, window_n++;
            if (cfg->log_every > 0 && (pos.step + 1) % cfg->log_every == 0) {
                json_t *w = json_pack("{s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "step", (json_int_t)(pos.step + 1), "epoch",
                                      (json_int_t)epoch, "loss", window_loss / (double)window_n, "lr", lr,
                                      "images_per_s", (double)window_n * tr->batch / fmax(window_s, 1e-9),
                                      "elapsed_s", ELAPSED(), "budget_left_s", cfg->budget_s - ELAPSED());
                if (w && cfg->log_extra) cfg->log_extra(cfg->data, tr, w);
                bg_run_log_json(cfg->log, w);
                window_loss = window_s = 0, window_n = 0;
            }
            loss_sum += loss;
            n_steps++;
            res->steps++;
            pos.step++;
            pos.step_in_epoch = k + 1;
            if (cfg->checkpoint_every_s > 0 && bg_monotonic_s() - last_ckpt >= cfg->checkpoint_every_s &&
                k + 1 < cfg->steps_per_epoch) {
                pos.elapsed_s = ELAPSED();
                if ((s = checkpoint(cfg, tr, &pos, res))) goto out;
                last_ckpt = bg_monotonic_s();
            }
        }
        /* an epoch that ran to its end (or a budget stop after some steps) is
         * evaluated, when the evaluation still fits the budget */
        const bool finished = pos.step_in_epoch == cfg->steps_per_epoch;
        const bool want_eval = n_steps > 0 && (finished || res->stopped_by_budget);
        const bool eval_fits = ELAPSED() + 1.1 * EVAL_EST() + RESERVE() <= cfg->budget_s;
        if (want_eval && !eval_fits) {
            res->eval_skipped = true;
            bg_run_log_json(cfg->log, json_pack("{s:I, s:I, s:f, s:s}", "epoch", (json_int_t)pos.epochs_done + 1, "steps",
                                         (json_int_t)pos.step, "elapsed_s", ELAPSED(), "evaluation",
                                         "skipped: it would overrun the budget"));
        }
        if (want_eval && eval_fits) {
            double te = bg_monotonic_s();
            if ((s = cfg->evaluate(cfg->data, tr, &res->last_accuracy))) goto out;
            pos.last_val = -1;
            if (cfg->validate && (s = cfg->validate(cfg->data, tr, &pos.last_val))) goto out;
            eval_cost = bg_monotonic_s() - te;
            res->epochs++;
            pos.epochs_done++;
            res->last_loss = loss_sum / (double)n_steps;
            if (res->last_accuracy > res->best_accuracy) res->best_accuracy = res->last_accuracy;
            pos.best_accuracy = res->best_accuracy, pos.last_accuracy = res->last_accuracy;
            json_t *line = json_pack("{s:I, s:I, s:f, s:f, s:f, s:f}", "epoch", (json_int_t)pos.epochs_done, "steps",
                                     (json_int_t)pos.step, "elapsed_s", ELAPSED(), "train_loss", res->last_loss,
                                     "test_acc", res->last_accuracy, "lr", bg_run_lr(cfg, ELAPSED(), pos.step, epoch + 1));
            if (line && cfg->validate) json_object_set_new(line, "val_acc", json_real(pos.last_val));
            if (line) {
                json_object_set_new(line, "images_per_s", json_real((double)n_steps * tr->batch / fmax(train_s, 1e-9)));
                json_object_set_new(line, "budget_left_s", json_real(cfg->budget_s - ELAPSED()));
                if (cfg->log_extra) cfg->log_extra(cfg->data, tr, line);
            }
            /* the best so far, by the selection metric */
            const double sel = cfg->select_on_test ? res->last_accuracy : cfg->validate ? pos.last_val : -1;
            if (sel >= 0 && sel > pos.best_select) {
                pos.best_select = sel;
                if (finished) pos.epoch = epoch + 1, pos.step_in_epoch = 0;
                pos.elapsed_s = ELAPSED();
                if (cfg->checkpoint_best && (s = cfg->checkpoint_best(cfg->data, tr, &pos))) {
                    json_decref(line);
                    goto out;
                }
                if (line) json_object_set_new(line, "best", json_true());
            }
            bg_run_log_json(cfg->log, line);
        }
        if (finished) pos.epoch = epoch + 1, pos.step_in_epoch = 0;
        if (finished || stop) {
            pos.elapsed_s = ELAPSED();
            if ((s = checkpoint(cfg, tr, &pos, res))) goto out;
            last_ckpt = bg_monotonic_s();
        }
        if (n_steps == 0 && !finished) break;
    }
    s = BG_OK;
out:
    res->elapsed_s = ELAPSED();
    res->eval_s = EVAL_EST();
    res->end = pos;
    free(x), free(y);
    if (!s)
        bg_run_log_json(cfg->log, json_pack("{s:b, s:I, s:I, s:f, s:f, s:f, s:f, s:s}", "done", 1, "epochs",
                                     (json_int_t)pos.epochs_done, "steps", (json_int_t)pos.step, "elapsed_s",
                                     res->elapsed_s, "budget_s", cfg->budget_s, "best_test_acc", res->best_accuracy,
                                     "last_test_acc", res->last_accuracy, "stopped_by",
                                     res->stopped_by_signal      ? "signal"
                                     : res->stopped_by_max_steps ? "max_steps"
                                     : res->stopped_by_budget    ? "budget"
                                                                 : "epochs"));
    return s;
#undef ELAPSED
#undef EVAL_EST
#undef RESERVE
}
