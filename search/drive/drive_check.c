/* A NAS point checked before any training: the builder's verdict on the
 * spec, MACs and parameters from the summary, and (with a memory cap) the
 * training memory at the recipe's batch. Everything runs in a context of
 * its own on the CPU, without weights, so it costs a graph recording. */
#include <stdio.h>
#include <string.h>
#include "../../models/model.h"
#include "drive.h"

bg_status bg_drive_check_model(bg_ctx *ctx, const char *spec, long batch, double mem_cap, bg_drive_model_check *out)
{
    memset(out, 0, sizeof *out);
    bg_ctx c;
    if (bg_ctx_init(&c, BG_CPU, 0)) return bg_fail(ctx, BG_ERR_OOM, "search: cannot make a context");
    bg_model *m = NULL;
    bg_summary s = {0};
    if (bg_model_spec_check(&c, spec) || bg_model_new_ex(&c, BG_CPU, spec, BG_MODEL_NO_INIT, &m) ||
        bg_model_summary(&c, m, (int)(batch > 0 ? batch : 1), 0, 0, 0, mem_cap > 0, &s)) {
        /* the builder's message names the fault (a vanishing map, zero channels) */
        snprintf(out->why, sizeof out->why, "%s", bg_errmsg(&c));
        goto done;
    }
    out->macs = s.macs;
    out->params = (long long)s.params;
    /* the family name, not the raw multipliers: two specs that round to the same network share a key */
    const char *colon = strchr(spec, ':');
    snprintf(out->key, sizeof out->key, "%.*s params=%lld macs=%.0f in=%dx%d",
             colon ? (int)(colon - spec) : (int)strlen(spec), spec, out->params, out->macs, m->in_h, m->in_w);
    if (mem_cap > 0) {
        /* weights, gradients and two optimizer buffers, f32 */
        out->train_bytes = s.act_bytes + 16.0 * (double)s.params;
        if (out->train_bytes > mem_cap) {
            snprintf(out->why, sizeof out->why, "needs about %.1f MiB to train at batch %ld (activations %.1f MiB, "
                     "%lld parameters), over mem_cap %.1f MiB", out->train_bytes / 1048576, batch,
                     s.act_bytes / 1048576, out->params, mem_cap / 1048576);
            goto done;
        }
    }
    out->ok = true;
done:
    bg_summary_free(&s);
    if (m) bg_model_free(&c, m);
    bg_ctx_free(&c);
    return BG_OK;
}
