/* The zoo: the family table, spec-string parsing, model lifetime, moving a
 * model between devices/dtypes, and the summary's section marks. */
#include "model.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "layers.h"

static const bg_model_family *const families[] = {
    &bg_family_senet18,           &bg_family_resnet18,    &bg_family_preact_resnet18, &bg_family_mobilenetv2,
    &bg_family_resnest50d_1s4x24d, &bg_family_resnest50d, &bg_family_resnest26d, &bg_family_small_cnn,
};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

int bg_model_family_count(void) { return N_FAMILIES; }
const char *bg_model_family_name(int i) { return i >= 0 && i < N_FAMILIES ? families[i]->name : NULL; }
const char *bg_model_family_help(int i) { return i >= 0 && i < N_FAMILIES ? families[i]->help : NULL; }

static const bg_model_family *find_family(const char *name, size_t len)
{
    for (int i = 0; i < N_FAMILIES; i++)
        if (strlen(families[i]->name) == len && !strncmp(families[i]->name, name, len)) return families[i];
    return NULL;
}

static bool key_allowed(const bg_model_family *f, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = f->keys; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == kl && !strncmp(p, key, l)) return true;
        p += l + (e ? 1 : 0);
    }
    return false;
}

/* A strictly parsed number: the whole value, finite. */
static bool parse_number(const char *s, double *v)
{
    char *end;
    if (!*s || isspace((unsigned char)*s)) return false;
    *v = strtod(s, &end);
    return *end == 0 && isfinite(*v);
}

static bg_status parse_spec(bg_ctx *ctx, const char *spec, const bg_model_family **fam, bg_model_args *a)
{
    if (!spec || !*spec) return bg_fail(ctx, BG_ERR_ARG, "model spec is empty (e.g. senet18:w=0.67)");
    const char *colon = strchr(spec, ':');
    size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
    const bg_model_family *f = find_family(spec, nl);
    if (!f) {
        char known[256] = "";
        for (int i = 0; i < N_FAMILIES; i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, families[i]->name, sizeof known - strlen(known) - 1);
        }
        return bg_fail(ctx, BG_ERR_ARG, "unknown model '%.*s' (known: %s)", (int)nl, spec, known);
    }
    *fam = f;
    *a = (bg_model_args){.w = 1, .d = 1, .r = 1, .classes = f->default_classes, .size = f->default_size, .c = 3};
    if (!colon) return BG_OK;
    char buf[256];
    if (strlen(colon + 1) >= sizeof buf) return bg_fail(ctx, BG_ERR_ARG, "model spec '%s' is too long", spec);
    snprintf(buf, sizeof buf, "%s", colon + 1);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return bg_fail(ctx, BG_ERR_ARG, "%s: '%s' is not key=value (keys: %s)", f->name, tok, f->keys);
        *eq = 0;
        const char *key = tok, *val = eq + 1;
        if (!key_allowed(f, key)) return bg_fail(ctx, BG_ERR_ARG, "%s: unknown key '%s' (keys: %s)", f->name, key, f->keys);
        double v;
        if (!parse_number(val, &v)) return bg_fail(ctx, BG_ERR_ARG, "%s: key '%s' needs a number, got '%s'", f->name, key, val);
        if (!strcmp(key, "w") || !strcmp(key, "d") || !strcmp(key, "r")) {
            if (!(v > 0) || v > 64)
                return bg_fail(ctx, BG_ERR_ARG, "%s: key '%s' must be > 0 (and at most 64), got %s", f->name, key, val);
            if (key[0] == 'w') a->w = v;
            else if (key[0] == 'd') a->d = v;
            else a->r = v;
        } else if (!strcmp(key, "classes") || !strcmp(key, "size") || !strcmp(key, "c")) {
            if (v != floor(v) || v < 1 || v > 1000000)
                return bg_fail(ctx, BG_ERR_ARG, "%s: key '%s' must be a positive integer, got %s", f->name, key, val);
            if (!strcmp(key, "classes")) a->classes = (int)v;
            else if (!strcmp(key, "c")) a->c = (int)v;
            else a->size = (int)v;
        }
    }
    return BG_OK;
}

bg_status bg_model_spec_check(bg_ctx *ctx, const char *spec)
{
    const bg_model_family *f;
    bg_model_args a;
    return parse_spec(ctx, spec, &f, &a);
}

bool bg_model_spec_has_key(const char *spec, const char *key)
{
    const char *colon = spec ? strchr(spec, ':') : NULL;
    const size_t kl = strlen(key);
    for (const char *p = colon; p; p = strchr(p + 1, ','))
        if (!strncmp(p + 1, key, kl) && p[1 + kl] == '=') return true;
    return false;
}

bg_status bg_model_new(bg_ctx *ctx, bg_device device, const char *spec, bg_model **out)
{
    return bg_model_new_ex(ctx, device, spec, 0, out);
}

bg_status bg_model_new_ex(bg_ctx *ctx, bg_device device, const char *spec, unsigned flags, bg_model **out)
{
    *out = NULL;
    const bg_model_family *f = NULL;
    bg_model_args a;
    bg_status s = parse_spec(ctx, spec, &f, &a);
    if (s) return s;
    bg_model *m = calloc(1, sizeof *m);
    if (!m) return bg_fail(ctx, BG_ERR_OOM, "model %s: out of host memory", spec);
    m->family = f;
    m->device = device;
    m->dtype = BG_F32;
    m->flags = flags;
    m->n_classes = a.classes;
    s = f->build(ctx, m, &a);
    if (s) {
        bg_model_free(ctx, m);
        return s;
    }
    *out = m;
    return BG_OK;
}

void bg_model_free(bg_ctx *ctx, bg_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_sd; i++) bg_tensor_free(ctx, m->sd[i].t);
    if (m->family && m->family->free_arch) m->family->free_arch(m->arch);
    free(m->sd);
    free(m->marks);
    free(m);
}

bg_tensor *bg_model_forward(bg_graph *g, void *model, bg_tensor *x)
{
    bg_model *m = model;
    if (!x) return NULL;
    char b[96];
    if (x->ndim != 4 || x->shape[3] != m->in_c) {
        bg_fail(g->ctx, BG_ERR_SHAPE, "model %s: input '%s' %s must be NHWC {N,H,W,%d}", m->spec, x->name,
                bg_shape_str(x, b, sizeof b), m->in_c);
        return NULL;
    }
    return m->family->forward(g, m, x);
}

int64_t bg_model_param_count(const bg_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_sd; i++)
        if (m->sd[i].t->is_param) n += bg_numel(m->sd[i].t);
    return n;
}

const bg_sd_entry *bg_model_find(const bg_model *m, const char *name)
{
    for (int i = 0; i < m->n_sd; i++)
        if (!strcmp(m->sd[i].name, name)) return &m->sd[i];
    return NULL;
}

void bg_model_mark_section(bg_graph *g, bg_model *m, const char *name)
{
    if (!m->marks && m->cap_marks == 0) return; /* not recording a summary */
    if (m->n_marks == m->cap_marks) {
        int cap = 2 * m->cap_marks;
        bg_model_mark *p = realloc(m->marks, (size_t)cap * sizeof *p);
        if (!p) return; /* the summary notices the missing sections; forward is unaffected */
        m->marks = p;
        m->cap_marks = cap;
    }
    bg_model_mark *k = &m->marks[m->n_marks++];
    snprintf(k->name, sizeof k->name, "%s", name);
    k->end_node = g->n_nodes;
}

/* Replace t's storage by a copy on `device` as `dt`, keeping the handle. */
static bg_status retarget(bg_ctx *ctx, bg_tensor *t, bg_device device, bg_dtype dt)
{
    if (t->device == device && t->dtype == dt) {
        bg_tensor_free(ctx, t->grad);
        t->grad = NULL;
        return BG_OK;
    }
    bg_tensor *h32 = NULL, *hdt = NULL, *nt = NULL;
    bg_status s = BG_OK;
    /* Through the host: download as is, convert on the CPU, upload. */
    h32 = bg_tensor_new(ctx, BG_CPU, t->dtype, t->ndim, t->shape, t->name);
    hdt = bg_tensor_new(ctx, BG_CPU, dt, t->ndim, t->shape, t->name);
    nt = bg_tensor_new(ctx, device, dt, t->ndim, t->shape, t->name);
    if (!h32 || !hdt || !nt) s = ctx->status;
    if (!s) s = bg_tensor_copy(ctx, h32, t);
    if (!s) s = bg_tensor_convert(ctx, hdt, h32);
    if (!s) s = bg_tensor_copy(ctx, nt, hdt);
    if (!s) {
        bg_tensor tmp = *t;
        *t = *nt;
        *nt = tmp;
        /* the handle keeps its identity: name, flags; the old storage (and grad) leave with nt */
        memcpy(t->name, nt->name, sizeof t->name);
        t->is_param = nt->is_param;
        t->requires_grad = nt->requires_grad;
        t->layout = nt->layout;
    }
    bg_tensor_free(ctx, h32);
    bg_tensor_free(ctx, hdt);
    bg_tensor_free(ctx, nt);
    return s;
}

bg_status bg_model_to(bg_ctx *ctx, bg_model *m, bg_device device, bg_dtype dt)
{
    if (dt != BG_F32 && dt != BG_F16 && dt != BG_F64)
        return bg_fail(ctx, BG_ERR_DTYPE, "model %s: parameters can be f32, f16 or f64, not %s", m->spec, bg_dtype_name(dt));
    for (int i = 0; i < m->n_sd; i++) {
        if (m->sd[i].kind == BG_SD_COUNTER) continue;
        bg_status s = retarget(ctx, m->sd[i].t, device, dt);
        if (s) return s;
    }
    m->device = device;
    m->dtype = dt;
    return BG_OK;
}
