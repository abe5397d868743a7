/* The trainer's CUDA step (see step_cuda.h): an eager first step, then the
 * whole step captured once and replayed as a CUDA graph. */
#include "step_cuda.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef BG_WITH_CUDA
#include <cuda_runtime_api.h>
#include "../kernels/cuda_api.h"
#endif

/* ---- the trainer's CUDA step --------------------------------------------------------- */
struct bg_trainer_cuda {
    bg_trainer_cuda_opts o;
    bg_cuda_graph *graph;
    bool graph_failed;
    char note[256];
    int64_t captures;
    bool last_graph, last_skipped;
    void *d_amp;         /* f32 scale, f32 1/scale, i32 found_inf */
    float dev_scale;     /* the scale last written to d_amp */
    uint16_t *h_half;    /* staging for f16 inputs */
    size_t h_half_n;
};

enum { AMP_SCALE = 0, AMP_INV = 1, AMP_FOUND = 2, AMP_BYTES = 16 };

bg_trainer_cuda_opts bg_trainer_cuda_defaults(void)
{
    bg_trainer_cuda_opts o = {.graph = true, .amp = false, .scaler = bg_loss_scaler_defaults()};
    return o;
}

bg_status bg_trainer_cuda_init(bg_trainer *tr)
{
    tr->cuda = calloc(1, sizeof *tr->cuda);
    if (!tr->cuda) return bg_fail(tr->ctx, BG_ERR_OOM, "trainer: out of host memory");
    tr->cuda->o = bg_trainer_cuda_defaults();
    return BG_OK;
}

void bg_trainer_cuda_free(bg_trainer *tr)
{
    struct bg_trainer_cuda *cu = tr->cuda;
    if (!cu) return;
    bg_cuda_graph_free(tr->ctx, cu->graph);
    if (cu->d_amp) bg_free(tr->ctx, BG_CUDA, cu->d_amp, AMP_BYTES);
    free(cu->h_half);
    free(cu);
    tr->cuda = NULL;
}

bg_status bg_trainer_set_cuda(bg_trainer *tr, const bg_trainer_cuda_opts *o)
{
    if (!tr->cuda) return bg_fail(tr->ctx, BG_ERR_ARG, "trainer: CUDA options on a %s trainer", bg_device_name(tr->device));
    if (tr->train_g) return bg_fail(tr->ctx, BG_ERR_ARG, "trainer: CUDA options must be set before the first step");
    if (o->amp) {
        bg_status s = bg_loss_scaler_check(tr->ctx, &o->scaler);
        if (s) return s;
    }
    tr->cuda->o = *o;
    return BG_OK;
}

bg_status bg_trainer_set_amp(bg_trainer *tr, bool amp)
{
    if (!tr->cuda) return BG_OK;
    bg_trainer_cuda_opts o = bg_trainer_cuda_defaults();
    o.amp = amp;
    return bg_trainer_set_cuda(tr, &o);
}

bg_loss_scaler *bg_trainer_cuda_scaler(bg_trainer *tr) { return tr->cuda && tr->cuda->o.amp ? &tr->cuda->o.scaler : NULL; }

void bg_trainer_cuda_get_status(const bg_trainer *tr, bg_trainer_cuda_status *out)
{
    memset(out, 0, sizeof *out);
    const struct bg_trainer_cuda *cu = tr->cuda;
    if (!cu) {
        snprintf(out->graph_note, sizeof out->graph_note, "not a CUDA trainer");
        return;
    }
    out->graph_active = cu->last_graph;
    out->graph_nodes = bg_cuda_graph_nodes(cu->graph);
    out->graph_pinned_bytes = bg_cuda_graph_pinned_bytes(cu->graph);
    out->captures = cu->captures;
    if (!cu->o.graph) snprintf(out->graph_note, sizeof out->graph_note, "CUDA graphs are off");
    else snprintf(out->graph_note, sizeof out->graph_note, "%s", cu->note);
    out->amp = cu->o.amp;
    out->loss_scale = cu->o.amp ? cu->o.scaler.scale : 1.0;
    out->skipped_steps = cu->o.scaler.skipped;
    out->last_skipped = cu->last_skipped;
}

bg_dtype bg_trainer_input_dtype(const bg_trainer *tr) { return tr->cuda && tr->cuda->o.amp ? BG_F16 : BG_F32; }

bg_status bg_trainer_upload_input(bg_trainer *tr, bg_tensor *t, const float *host)
{
    bg_ctx *ctx = tr->ctx;
    if (t->dtype == BG_F32) return bg_tensor_upload(ctx, t, host, bg_nbytes(t));
    if (t->dtype != BG_F16 || !tr->cuda)
        return bg_fail(ctx, BG_ERR_DTYPE, "trainer: input '%s' is %s", t->name, bg_dtype_name(t->dtype));
    struct bg_trainer_cuda *cu = tr->cuda;
    size_t n = (size_t)bg_numel(t);
    if (cu->h_half_n < n) {
        uint16_t *p = realloc(cu->h_half, n * sizeof *p);
        if (!p) return bg_fail(ctx, BG_ERR_OOM, "trainer: out of host memory for the f16 input");
        cu->h_half = p;
        cu->h_half_n = n;
    }
    for (size_t i = 0; i < n; i++) cu->h_half[i] = bg_f32_to_f16(host[i]);
    return bg_tensor_upload(ctx, t, cu->h_half, n * sizeof *cu->h_half);
}

bg_status bg_trainer_download_f32(bg_trainer *tr, const bg_tensor *t, float *host)
{
    bg_ctx *ctx = tr->ctx;
    if (t->dtype == BG_F32) return bg_tensor_download(ctx, t, host, bg_nbytes(t));
    if (t->dtype != BG_F16)
        return bg_fail(ctx, BG_ERR_DTYPE, "trainer: output '%s' is %s", t->name, bg_dtype_name(t->dtype));
    size_t n = (size_t)bg_numel(t);
    uint16_t *h = malloc(n * sizeof *h);
    if (!h) return bg_fail(ctx, BG_ERR_OOM, "trainer: out of host memory for an f16 download");
    bg_status s = bg_tensor_download(ctx, t, h, n * sizeof *h);
    for (size_t i = 0; !s && i < n; i++) host[i] = bg_f16_to_f32(h[i]);
    free(h);
    return s;
}

#ifdef BG_WITH_CUDA
static float *amp_f32(const struct bg_trainer_cuda *cu, int k) { return (float *)cu->d_amp + k; }
static int32_t *amp_found(const struct bg_trainer_cuda *cu) { return (int32_t *)cu->d_amp + AMP_FOUND; }

static bg_status write_scale(bg_ctx *ctx, struct bg_trainer_cuda *cu)
{
    float v[2] = {(float)cu->o.scaler.scale, (float)(1.0 / cu->o.scaler.scale)};
    char err[200];
    if (bg_cuda_memcpy(cu->d_amp, v, sizeof v, BG_COPY_H2D, ctx->stream, err, sizeof err))
        return bg_fail(ctx, BG_ERR_CUDA, "trainer: loss scale upload: %s", err);
    cu->dev_scale = v[0];
    return BG_OK;
}

/* [inf/NaN check], update: what follows the backward (the optimizer's
 * tables must have been prepared after the grads exist). */
static bg_status update(bg_ctx *ctx, bg_trainer *tr)
{
    struct bg_trainer_cuda *cu = tr->cuda;
    bg_status s;
    const float *inv = NULL;
    int32_t *found = NULL;
    if (cu->o.amp) {
        char err[200];
        inv = amp_f32(cu, AMP_INV);
        found = amp_found(cu);
        if (bg_cuda_memset(found, 0, sizeof *found, ctx->stream, err, sizeof err))
            return bg_fail(ctx, BG_ERR_CUDA, "trainer: inf flag reset: %s", err);
        if ((s = bg_optim_cuda_check_finite(ctx, tr->opt, inv, found))) return s;
    }
    return bg_optim_cuda_launch(ctx, tr->opt, inv, found);
}

static bg_status whole_step(bg_ctx *ctx, void *arg)
{
    bg_trainer *tr = arg;
    bg_status s = bg_graph_forward(tr->train_g);
    if (!s) s = bg_graph_backward(tr->train_g, tr->loss);
    return s ? s : update(ctx, tr);
}

bg_status bg_trainer_cuda_step(bg_trainer *tr, double lr, bool first, double *loss)
{
    bg_ctx *ctx = tr->ctx;
    struct bg_trainer_cuda *cu = tr->cuda;
    bg_status s;
    if (!cu) return bg_fail(ctx, BG_ERR_ARG, "trainer: no CUDA state");
    if (first && cu->o.amp) {
        if ((s = bg_alloc(ctx, BG_CUDA, AMP_BYTES, "trainer.amp", &cu->d_amp))) return s;
        if ((s = write_scale(ctx, cu))) return s;
        tr->train_g->loss_seed = amp_f32(cu, AMP_SCALE);
    }
    if ((s = bg_optim_set_lr(ctx, tr->opt, lr))) return s;
    bool changed = false;
    if (first) {
        /* eager first step (deferred recording ran nothing); the plan made
         * the grads the optimizer's tables point at, before any capture */
        s = bg_graph_forward(tr->train_g);
        if (!s) s = bg_graph_backward(tr->train_g, tr->loss);
        if (!s) s = bg_optim_cuda_prepare(ctx, tr->opt, &changed);
        if (!s) s = update(ctx, tr);
        cu->last_graph = false;
    } else {
        if ((s = bg_optim_cuda_prepare(ctx, tr->opt, &changed))) return s;
        if (changed && cu->graph) { /* other parameters have grads now: the captured launch is stale */
            bg_cuda_graph_free(ctx, cu->graph);
            cu->graph = NULL;
        }
        if (cu->o.graph && !cu->graph_failed && !cu->graph) {
            s = bg_cuda_graph_capture(ctx, whole_step, tr, &cu->graph);
            if (s) {
                snprintf(cu->note, sizeof cu->note, "capture failed, replaying eagerly: %s", bg_errmsg(ctx));
                cu->graph_failed = true;
                bg_clear_error(ctx);
            } else {
                cu->captures++;
            }
        }
        if (cu->graph) s = bg_cuda_graph_launch(ctx, cu->graph);
        else s = whole_step(ctx, tr);
        cu->last_graph = cu->graph != NULL;
    }
    if (s) return s;
    float l = 0;
    if ((s = bg_tensor_download(ctx, tr->loss, &l, sizeof l))) return s; /* waits for the step */
    bool found = false;
    if (cu->o.amp) {
        int32_t f = 0;
        char err[200];
        if (bg_cuda_memcpy(&f, amp_found(cu), sizeof f, BG_COPY_D2H, ctx->stream, err, sizeof err))
            return bg_fail(ctx, BG_ERR_CUDA, "trainer: inf flag download: %s", err);
        found = f != 0;
        bg_loss_scaler_update(&cu->o.scaler, found);
        if (cu->o.scaler.collapsed)
            return bg_fail(ctx, BG_ERR_NUMERIC, "trainer: the loss scale collapsed: the f16 gradients overflow even at the "
                           "smallest scale %g (step %lld of the scaler); the loss is %g: lower the learning rate or "
                           "train in fp32", cu->o.scaler.min_scale, (long long)cu->o.scaler.steps, (double)l);
        if ((float)cu->o.scaler.scale != cu->dev_scale && (s = write_scale(ctx, cu))) return s;
    }
    cu->last_skipped = found;
    bg_optim_cuda_commit(tr->opt, !found);
    if (loss) *loss = l;
    return BG_OK;
}
#else
bg_status bg_trainer_cuda_step(bg_trainer *tr, double lr, bool first, double *loss)
{
    (void)lr, (void)first, (void)loss;
    return bg_fail(tr->ctx, BG_ERR_UNSUPPORTED, "trainer: this build has no CUDA");
}
#endif
