#include "budget_run.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

double bg_run_lr(const bg_run_config *cfg, double elapsed, int64_t step, int64_t epoch)
{
    if (cfg->sched.kind == BG_SCHED_COSINE_TIME) return bg_sched_lr_time(&cfg->sched, elapsed, cfg->budget_s);
    int64_t t = cfg->sched_per_epoch ? epoch : step;
    if (cfg->sched_freeze > 0 && t > cfg->sched_freeze) t = cfg->sched_freeze;
    return bg_sched_lr(&cfg->sched, t);
}

double bg_monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void log_json(FILE *f, json_t *obj)
{
    if (f) {
        char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (s) fprintf(f, "%s\n", s), fflush(f);
        free(s);
    }
    json_decref(obj);
}

bg_status bg_run_budgeted(bg_ctx *ctx, bg_trainer *tr, const bg_run_config *cfg, bg_run_result *res)
{
    *res = (bg_run_result){0};
    if (cfg->steps_per_epoch < 1 || !(cfg->budget_s > 0))
        return bg_fail(ctx, BG_ERR_ARG, "run: steps per epoch %lld and budget %g s must be positive",
                       (long long)cfg->steps_per_epoch, cfg->budget_s);
    bg_status s = bg_sched_check(ctx, &cfg->sched);
    if (s) return s;
    size_t xn = (size_t)tr->batch * tr->h * tr->w * tr->c;
    float *x = malloc(xn * sizeof *x);
    int32_t *y = malloc((size_t)tr->batch * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        return bg_fail(ctx, BG_ERR_OOM, "run: out of host memory for a batch");
    }
    const double t0 = cfg->t0 > 0 ? cfg->t0 : bg_monotonic_s();
    double slowest_step = 0, eval_cost = -1;
    for (int64_t epoch = 0; !cfg->max_epochs || epoch < cfg->max_epochs; epoch++) {
        double loss_sum = 0;
        int64_t n_steps = 0;
        for (int64_t k = 0; k < cfg->steps_per_epoch; k++) {
            double elapsed = bg_monotonic_s() - t0;
            /* before the first evaluation: half a training step per image */
            const double eval_est =
                eval_cost >= 0 ? eval_cost : 0.5 * slowest_step * (double)cfg->eval_images / (double)tr->batch;
            if (elapsed + 1.1 * (slowest_step + eval_est) + cfg->reserve_s > cfg->budget_s) {
                res->stopped_by_budget = true;
                break;
            }
            double lr = bg_run_lr(cfg, elapsed, res->steps, epoch);
            double ts = bg_monotonic_s(), loss = 0;
            if ((s = cfg->next_batch(cfg->data, epoch, k, res->steps, x, y))) goto out;
            if ((s = bg_trainer_step(tr, x, y, lr, &loss))) goto out;
            if (!isfinite(loss)) {
                s = bg_fail(ctx, BG_ERR_NUMERIC, "run: loss became %g at step %lld", loss, (long long)res->steps);
                goto out;
            }
            double dt = bg_monotonic_s() - ts;
            /* the first step records the graph and is slower: count it once */
            if (dt > slowest_step && res->steps > 0) slowest_step = dt;
            if (res->steps == 0) slowest_step = dt / 2;
            loss_sum += loss;
            n_steps++;
            res->steps++;
        }
        if (n_steps == 0) break;
        double te = bg_monotonic_s();
        if ((s = cfg->evaluate(cfg->data, tr, &res->last_accuracy))) goto out;
        eval_cost = bg_monotonic_s() - te;
        res->epochs++;
        res->last_loss = loss_sum / (double)n_steps;
        if (res->last_accuracy > res->best_accuracy) res->best_accuracy = res->last_accuracy;
        log_json(cfg->log, json_pack("{s:I, s:I, s:f, s:f, s:f, s:f}", "epoch", (json_int_t)res->epochs, "steps",
                                     (json_int_t)res->steps, "elapsed_s", bg_monotonic_s() - t0, "train_loss", res->last_loss,
                                     "test_acc", res->last_accuracy, "lr",
                                     bg_run_lr(cfg, bg_monotonic_s() - t0, res->steps, epoch + 1)));
        if (res->stopped_by_budget) break;
    }
    s = BG_OK;
out:
    res->elapsed_s = bg_monotonic_s() - t0;
    free(x), free(y);
    if (!s)
        log_json(cfg->log, json_pack("{s:b, s:I, s:I, s:f, s:f, s:f, s:f}", "done", 1, "epochs", (json_int_t)res->epochs,
                                     "steps", (json_int_t)res->steps, "elapsed_s", res->elapsed_s, "budget_s",
                                     cfg->budget_s, "best_test_acc", res->best_accuracy, "last_test_acc",
                                     res->last_accuracy));
    return s;
}
