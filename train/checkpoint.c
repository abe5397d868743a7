/* Checkpoints (see checkpoint.h). */
#include "checkpoint.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/safetensors.h"
#include "../engine/version.h"

#define MAX_OPT_STATE 8192

enum { M_POS = 0, M_RNG, M_SCALER, M_RECIPE, M_COMMIT, M_FORMAT, M_N };

bg_status bg_ckpt_save(bg_ctx *ctx, const char *path, const bg_model *m, bg_trainer *tr, const bg_ckpt_meta *meta)
{
    bg_tensor **state = NULL;
    int n = 0;
    if (tr && tr->opt) {
        n = bg_optim_state(tr->opt, NULL, 0);
        if (n > MAX_OPT_STATE) return bg_fail(ctx, BG_ERR_ARG, "%s: %d optimizer tensors (at most %d)", path, n, MAX_OPT_STATE);
        state = calloc((size_t)n + 1, sizeof *state);
        if (!state) return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", path);
        bg_optim_state(tr->opt, state, n);
    }
    char pos[512], rng[32], scaler[256];
    const bg_run_position *p = &meta->pos;
    snprintf(pos, sizeof pos, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %.17g %.17g %.17g %.17g %.17g", p->epoch,
             p->step_in_epoch, p->step, p->epochs_done, p->elapsed_s, p->best_accuracy, p->last_accuracy,
             p->best_select, p->last_val);
    snprintf(rng, sizeof rng, "%" PRIu64, meta->rng_offset);
    const bg_loss_scaler *sc = &meta->scaler;
    if (meta->has_scaler)
        snprintf(scaler, sizeof scaler, "%.17g %.17g %.17g %" PRId64 " %.17g %.17g %" PRId64 " %" PRId64 " %" PRId64,
                 sc->scale, sc->growth, sc->backoff, sc->growth_interval, sc->min_scale, sc->max_scale, sc->clean_steps,
                 sc->skipped, sc->steps);
    else snprintf(scaler, sizeof scaler, "none");
    const char *keys[M_N] = {"position", "rng_offset", "loss_scaler", "recipe", "commit", "budgie_checkpoint"};
    const char *vals[M_N] = {pos, rng, scaler, meta->recipe, bg_build_commit(), "1"};
    bg_status s = bg_model_save_ex(ctx, m, path, state, n, keys, vals, M_N);
    free(state);
    return s;
}

bg_status bg_ckpt_read_meta(bg_ctx *ctx, const char *path, bg_ckpt_meta *meta)
{
    memset(meta, 0, sizeof *meta);
    bg_st_file f;
    bg_status s = bg_st_open(ctx, path, &f);
    if (s) return s;
    const char *fmt = bg_st_meta(&f, "budgie_checkpoint"), *pos = bg_st_meta(&f, "position"),
               *rng = bg_st_meta(&f, "rng_offset"), *sc = bg_st_meta(&f, "loss_scaler"),
               *recipe = bg_st_meta(&f, "recipe"), *model = bg_st_meta(&f, "budgie_model");
    if (!fmt || !pos || !rng || !sc || !recipe || !model) {
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: not a budgie checkpoint (metadata %s is missing)", path,
                    !fmt ? "budgie_checkpoint" : !pos ? "position" : !rng ? "rng_offset" : !sc ? "loss_scaler"
                    : !recipe ? "recipe" : "budgie_model");
        goto out;
    }
    bg_run_position *p = &meta->pos;
    int used = 0;
    if (sscanf(pos, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %lf %lf %lf %lf %lf%n", &p->epoch,
               &p->step_in_epoch, &p->step, &p->epochs_done, &p->elapsed_s, &p->best_accuracy, &p->last_accuracy,
               &p->best_select, &p->last_val, &used) != 9 ||
        pos[used] != 0) {
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata position '%s' is malformed", path, pos);
        goto out;
    }
    if (sscanf(rng, "%" SCNu64 "%n", &meta->rng_offset, &used) != 1 || rng[used] != 0) {
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata rng_offset '%s' is malformed", path, rng);
        goto out;
    }
    if (strcmp(sc, "none")) {
        bg_loss_scaler *l = &meta->scaler;
        if (sscanf(sc, "%lf %lf %lf %" SCNd64 " %lf %lf %" SCNd64 " %" SCNd64 " %" SCNd64 "%n", &l->scale, &l->growth,
                   &l->backoff, &l->growth_interval, &l->min_scale, &l->max_scale, &l->clean_steps, &l->skipped,
                   &l->steps, &used) != 9 ||
            sc[used] != 0) {
            s = bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata loss_scaler '%s' is malformed", path, sc);
            goto out;
        }
        meta->has_scaler = true;
    }
    if (strlen(recipe) >= sizeof meta->recipe || strlen(model) >= sizeof meta->model) {
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata recipe or model too long", path);
        goto out;
    }
    snprintf(meta->recipe, sizeof meta->recipe, "%s", recipe);
    snprintf(meta->model, sizeof meta->model, "%s", model);
out:
    bg_st_close(&f);
    return s;
}

bg_status bg_ckpt_load_model(bg_ctx *ctx, const char *path, bg_model *m)
{
    return bg_model_load_ex(ctx, m, path, "optim.");
}

bg_status bg_ckpt_restore_optim(bg_ctx *ctx, const char *path, bg_optim *opt)
{
    const int n = bg_optim_state(opt, NULL, 0);
    if (n > MAX_OPT_STATE) return bg_fail(ctx, BG_ERR_ARG, "%s: %d optimizer tensors (at most %d)", path, n, MAX_OPT_STATE);
    bg_tensor **state = calloc((size_t)n + 1, sizeof *state);
    if (!state) return bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", path);
    bg_optim_state(opt, state, n);
    bg_st_file f;
    bg_status s = bg_st_open(ctx, path, &f);
    if (s) {
        free(state);
        return s;
    }
    int in_file = 0;
    for (int i = 0; i < f.n; i++) in_file += !strncmp(f.entries[i].name, "optim.", 6);
    if (in_file != n)
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: %d optimizer tensors, but this run's %s optimizer has %d (another "
                    "optimizer, model or precision made it)", path, in_file, bg_optim_name(bg_optim_get_config(opt)->kind), n);
    for (int i = 0; i < n && !s; i++) {
        bg_tensor *t = state[i];
        const bg_st_entry *e = bg_st_find(&f, t->name);
        bool same = e && e->ndim == t->ndim && e->dtype == t->dtype;
        for (int d = 0; same && d < t->ndim; d++) same = e->shape[d] == t->shape[d];
        if (!same) {
            char b[96];
            s = bg_fail(ctx, BG_ERR_FORMAT, "%s: optimizer tensor '%s' %s (this run needs %s)", path, t->name,
                        e ? "differs in shape or dtype" : "is missing", bg_shape_str(t, b, sizeof b));
            break;
        }
        s = bg_tensor_upload(ctx, t, bg_st_bytes(&f, e), bg_nbytes(t));
    }
    bg_st_close(&f);
    free(state);
    return s;
}
