/* State dicts: PyTorch names and layouts at the boundary. Conv weights are
 * OHWI here and OIHW in PyTorch; a Linear that reads a flattened HxW map has
 * (h,w,c) columns here (NHWC flatten) and (c,h,w) in PyTorch (NCHW flatten);
 * everything else is the same array. Loading validates the whole file
 * against the model before touching a single weight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/safetensors.h"
#include "model.h"

/* PyTorch's shape of an entry. */
static int torch_shape(const bg_sd_entry *e, int64_t *shape)
{
    const bg_tensor *t = e->t;
    if (e->kind == BG_SD_CONV) {
        shape[0] = t->shape[0], shape[1] = t->shape[3], shape[2] = t->shape[1], shape[3] = t->shape[2];
        return 4;
    }
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    return t->ndim;
}

static const char *shape_str(const int64_t *s, int nd, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < nd && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)s[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* The index map between our flat layout (OHWI convs, HWC-flattened linear
 * inputs) and PyTorch's (OIHW, CHW): one walk over both, copying from `src`
 * into `dst` in the direction `to_torch` names. */
static void convert_layout(const bg_sd_entry *e, const float *src, float *dst, bool to_torch)
{
    const bg_tensor *t = e->t;
    if (e->kind == BG_SD_CONV) {
        int64_t O = t->shape[0], KH = t->shape[1], KW = t->shape[2], I = t->shape[3];
        for (int64_t o = 0; o < O; o++)
            for (int64_t y = 0; y < KH; y++)
                for (int64_t x = 0; x < KW; x++)
                    for (int64_t i = 0; i < I; i++) {
                        int64_t ours = ((o * KH + y) * KW + x) * I + i, torch = ((o * I + i) * KH + y) * KW + x;
                        if (to_torch) dst[torch] = src[ours];
                        else dst[ours] = src[torch];
                    }
    } else if (e->kind == BG_SD_LINEAR_HWC) {
        int64_t O = t->shape[0], IN = t->shape[1], HW = (int64_t)e->hw[0] * e->hw[1], C = IN / HW;
        for (int64_t o = 0; o < O; o++)
            for (int64_t p = 0; p < HW; p++)
                for (int64_t c = 0; c < C; c++) {
                    int64_t ours = o * IN + p * C + c, torch = o * IN + c * HW + p;
                    if (to_torch) dst[torch] = src[ours];
                    else dst[ours] = src[torch];
                }
    } else {
        memcpy(dst, src, (size_t)bg_numel(t) * sizeof *src);
    }
}

static void to_torch(const bg_sd_entry *e, const float *ours, float *torch) { convert_layout(e, ours, torch, true); }
static void from_torch(const bg_sd_entry *e, const float *torch, float *ours) { convert_layout(e, torch, ours, false); }

/* t's values as f32 on the host, from any device and float dtype. */
static bg_status read_f32(bg_ctx *ctx, const bg_tensor *t, float *dst)
{
    int64_t n = bg_numel(t);
    if (t->device == BG_CPU && t->dtype == BG_F32 && bg_is_contiguous(t)) {
        memcpy(dst, t->data, (size_t)n * sizeof *dst);
        return BG_OK;
    }
    bg_tensor *h = bg_tensor_new(ctx, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
    if (!h) return ctx->status;
    bg_status s = bg_tensor_copy(ctx, h, t);
    for (int64_t i = 0; !s && i < n; i++) dst[i] = (float)bg_get(h, i);
    bg_tensor_free(ctx, h);
    return s;
}

static bg_status write_f32(bg_ctx *ctx, bg_tensor *t, const float *src)
{
    int64_t n = bg_numel(t);
    if (t->device == BG_CPU && t->dtype == BG_F32) {
        memcpy(t->data, src, (size_t)n * sizeof *src);
        return BG_OK;
    }
    bg_tensor *h = bg_tensor_new(ctx, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
    if (!h) return ctx->status;
    for (int64_t i = 0; i < n; i++) bg_set(h, i, src[i]);
    bg_status s = bg_tensor_copy(ctx, t, h);
    bg_tensor_free(ctx, h);
    return s;
}

bg_status bg_model_entry_torch(bg_ctx *ctx, const bg_sd_entry *e, bool grad, float *dst)
{
    if (e->kind == BG_SD_COUNTER) {
        if (grad) return bg_fail(ctx, BG_ERR_ARG, "'%s' is a counter: it has no gradient", e->name);
        dst[0] = (float)*(const int32_t *)e->t->data;
        return BG_OK;
    }
    const bg_tensor *src = grad ? e->t->grad : e->t;
    if (!src) return bg_fail(ctx, BG_ERR_ARG, "'%s' has no gradient (run backward first)", e->name);
    int64_t n = bg_numel(e->t);
    float *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!tmp) return bg_fail(ctx, BG_ERR_OOM, "'%s': out of host memory", e->name);
    bg_status s = read_f32(ctx, src, tmp);
    if (!s) to_torch(e, tmp, dst);
    free(tmp);
    return s;
}

bg_status bg_model_save(bg_ctx *ctx, const bg_model *m, const char *path)
{
    const char *keys[1] = {"format"}, *vals[1] = {"pt"};
    return bg_model_save_ex(ctx, m, path, NULL, 0, keys, vals, 1);
}

bg_status bg_model_save_ex(bg_ctx *ctx, const bg_model *m, const char *path, bg_tensor *const *extra, int n_extra,
                           const char *const *meta_keys, const char *const *meta_vals, int n_meta)
{
    bg_tensor **ts = calloc((size_t)(m->n_sd + n_extra) + 1, sizeof *ts);
    const char **names = calloc((size_t)(m->n_sd + n_extra) + 1, sizeof *names);
    const char **mk = calloc((size_t)n_meta + 1, sizeof *mk), **mv = calloc((size_t)n_meta + 1, sizeof *mv);
    bg_status s = BG_OK;
    if (!ts || !names || !mk || !mv) {
        s = bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory", path);
        goto out;
    }
    for (int i = 0; i < m->n_sd && !s; i++) {
        const bg_sd_entry *e = &m->sd[i];
        names[i] = e->name;
        if (e->kind == BG_SD_COUNTER) {
            ts[i] = e->t; /* already a host 0-d I32: written as is */
            continue;
        }
        int64_t shape[4];
        int nd = torch_shape(e, shape);
        ts[i] = bg_tensor_new(ctx, BG_CPU, BG_F32, nd, shape, e->name);
        if (!ts[i]) s = ctx->status;
        else s = bg_model_entry_torch(ctx, e, false, ts[i]->data);
    }
    for (int i = 0; i < n_extra; i++) {
        ts[m->n_sd + i] = extra[i];
        names[m->n_sd + i] = extra[i]->name;
    }
    if (!s) {
        mk[0] = "budgie_model", mv[0] = m->spec;
        for (int i = 0; i < n_meta; i++) mk[i + 1] = meta_keys[i], mv[i + 1] = meta_vals[i];
        s = bg_st_save(ctx, path, ts, names, m->n_sd + n_extra, mk, mv, n_meta + 1);
    }
out:
    if (ts)
        for (int i = 0; i < m->n_sd; i++)
            if (m->sd[i].kind != BG_SD_COUNTER) bg_tensor_free(ctx, ts[i]);
    free(ts);
    free(names);
    free(mk);
    free(mv);
    return s;
}

static bool is_float_st(const char *d)
{
    return !strcmp(d, "F32") || !strcmp(d, "F16") || !strcmp(d, "F64") || !strcmp(d, "BF16");
}

static bool is_int_st(const char *d) { return d[0] == 'I' || d[0] == 'U'; }

/* Every check, before anything is written. */
static bg_status validate(bg_ctx *ctx, const bg_model *m, const bg_st_file *f, const char *skip_prefix)
{
    char a[96], b[96];
    for (int i = 0; i < m->n_sd; i++) {
        const bg_sd_entry *e = &m->sd[i];
        const bg_st_entry *se = bg_st_find(f, e->name);
        int64_t shape[4];
        int nd = torch_shape(e, shape);
        if (!se) {
            if (e->kind == BG_SD_COUNTER) continue; /* PyTorch tolerates a missing num_batches_tracked too */
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: missing tensor '%s' (model %s expects shape %s)", f->path, e->name,
                           m->spec, shape_str(shape, nd, a, sizeof a));
        }
        if (e->kind == BG_SD_COUNTER) {
            int64_t cnt = 1;
            for (int d = 0; d < se->ndim; d++) cnt *= se->shape[d];
            if (!is_int_st(se->st_dtype) || cnt != 1)
                return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s' must be one integer (0-d I64 in PyTorch), got %s %s",
                               f->path, e->name, se->st_dtype, shape_str(se->shape, se->ndim, a, sizeof a));
            continue;
        }
        bool same = se->ndim == nd;
        for (int d = 0; same && d < nd; d++) same = se->shape[d] == shape[d];
        if (!same)
            return bg_fail(ctx, BG_ERR_SHAPE, "%s: tensor '%s' has shape %s, model %s expects %s", f->path, e->name,
                           shape_str(se->shape, se->ndim, a, sizeof a), m->spec, shape_str(shape, nd, b, sizeof b));
        if (!is_float_st(se->st_dtype))
            return bg_fail(ctx, BG_ERR_DTYPE, "%s: tensor '%s' is %s; weights must be F32, F16, F64 or BF16", f->path,
                           e->name, se->st_dtype);
    }
    for (int i = 0; i < f->n; i++)
        if (!bg_model_find(m, f->entries[i].name) &&
            !(skip_prefix && !strncmp(f->entries[i].name, skip_prefix, strlen(skip_prefix))))
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: unexpected tensor '%s' (not a state-dict key of %s)", f->path,
                           f->entries[i].name, m->spec);
    return BG_OK;
}

bg_status bg_model_load(bg_ctx *ctx, bg_model *m, const char *path) { return bg_model_load_ex(ctx, m, path, NULL); }

bg_status bg_model_load_ex(bg_ctx *ctx, bg_model *m, const char *path, const char *skip_prefix)
{
    bg_st_file f;
    bg_status s = bg_st_open(ctx, path, &f);
    if (s) return s;
    s = validate(ctx, m, &f, skip_prefix);
    float *torch = NULL, *ours = NULL;
    for (int i = 0; i < m->n_sd && !s; i++) {
        bg_sd_entry *e = &m->sd[i];
        if (!bg_st_find(&f, e->name)) continue;
        bg_tensor *h = bg_st_load(ctx, &f, e->name, BG_CPU);
        if (!h) {
            s = ctx->status;
            break;
        }
        if (e->kind == BG_SD_COUNTER) {
            *(int32_t *)e->t->data = (int32_t)bg_get(h, 0);
            bg_tensor_free(ctx, h);
            continue;
        }
        int64_t n = bg_numel(h);
        float *t2 = realloc(torch, (size_t)(n ? n : 1) * sizeof *t2);
        if (t2) torch = t2;
        float *o2 = t2 ? realloc(ours, (size_t)(n ? n : 1) * sizeof *o2) : NULL;
        if (o2) ours = o2;
        if (!t2 || !o2) {
            bg_tensor_free(ctx, h);
            s = bg_fail(ctx, BG_ERR_OOM, "%s: out of host memory loading '%s'", path, e->name);
            break;
        }
        for (int64_t k = 0; k < n; k++) torch[k] = (float)bg_get(h, k);
        bg_tensor_free(ctx, h);
        from_torch(e, torch, ours);
        s = write_f32(ctx, e->t, ours);
    }
    free(torch);
    free(ours);
    bg_st_close(&f);
    return s;
}
