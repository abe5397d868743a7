/* `budgie validate`: read the op call a safetensors file describes, run it on
 * each backend through the generic op table, compare with the file's
 * expected tensors. Everything the op needs comes from its table row (input
 * and output names, parameter fields), so a new op is validated with no
 * change here. */
#include "validate.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/op.h"

/* What a file asks for, checked once before any backend runs. */
typedef struct {
    const bg_st_file *f;
    const char *path;
    const bg_op *op;
    union { unsigned char bytes[BG_PARAM_BYTES]; double align_; } p;
    bool train, nchw;
    double atol, rtol;
    const bg_st_entry *in[BG_MAX_IN];        /* inputs present in the file */
    const bg_st_entry *in_after[BG_MAX_IN];  /* out.<input>: its state after the call */
    const bg_st_entry *out[BG_MAX_OUT];      /* out.<output> */
    const bg_st_entry *dout[BG_MAX_OUT];     /* dout.<output> */
    const bg_st_entry *grad[BG_MAX_IN];      /* grad.<input> */
    int n_in;                                /* last present input + 1 */
    bool backward;
} vcase;

void bg_validate_defaults(bg_validate_opts *o)
{
    o->atol = 1e-5;
    o->rtol = 1e-4;
    o->backends = BG_VAL_ALL;
}

/* Prefix the context's message with the file name unless it has it. The
 * message is copied first because bg_fail formats into the same buffer. */
static bg_status with_file(bg_ctx *ctx, bg_status s, const char *path)
{
    if (!strncmp(bg_errmsg(ctx), path, strlen(path))) {
        ctx->status = s;
        return s;
    }
    char msg[sizeof ctx->err];
    snprintf(msg, sizeof msg, "%s", bg_errmsg(ctx));
    return bg_fail(ctx, s, "%s: %s", path, msg);
}

static const char *list_names(const char *const *names, int n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k < cap; i++)
        if (names[i]) k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? ", " : "", names[i]);
    return buf;
}

/* ------------------------------------------------------------ the header */

static bg_status parse_params(bg_ctx *ctx, vcase *vc, const char *text)
{
    const bg_op *op = vc->op;
    bg_op_default_params(op, vc->p.bytes);
    if (!text) return BG_OK;
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata 'params' is not valid JSON: %s", vc->path, jerr.text);
    bg_status s = BG_OK;
    if (!json_is_object(root)) {
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata 'params' must be a JSON object", vc->path);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        bool known = false;
        for (int i = 0; i < op->n_fields; i++) known |= strcmp(op->fields[i].name, key) == 0;
        if (!known) {
            const char *names[BG_MAX_FIELDS];
            char buf[256];
            for (int i = 0; i < op->n_fields; i++) names[i] = op->fields[i].name;
            s = bg_fail(ctx, BG_ERR_FORMAT, "%s: params: op '%s' has no parameter '%s' (known: %s)",
                        vc->path, op->name, key, op->n_fields ? list_names(names, op->n_fields, buf, sizeof buf) : "none");
            goto out;
        }
        double v[4];
        int nv = 0;
        if (json_is_number(val)) v[nv++] = json_number_value(val);
        else if (json_is_boolean(val)) v[nv++] = json_is_true(val);
        else if (json_is_array(val) && json_array_size(val) >= 1 && json_array_size(val) <= 4) {
            size_t i;
            json_t *x;
            json_array_foreach(val, i, x) {
                if (!json_is_number(x)) break;
                v[nv++] = json_number_value(x);
            }
            if ((size_t)nv != json_array_size(val)) nv = 0;
        }
        if (nv == 0) {
            s = bg_fail(ctx, BG_ERR_FORMAT,
                        "%s: params: '%s' must be a number, a boolean or an array of 1 to 4 numbers",
                        vc->path, key);
            goto out;
        }
        if ((s = bg_op_set_param(ctx, op, vc->p.bytes, key, v, nv)) != BG_OK) {
            s = with_file(ctx, BG_ERR_FORMAT, vc->path);
            goto out;
        }
    }
out:
    json_decref(root);
    return s;
}

static bg_status parse_number(bg_ctx *ctx, const vcase *vc, const char *key, double *v)
{
    const char *txt = bg_st_meta(vc->f, key);
    if (!txt) return BG_OK;
    char *end;
    double x = strtod(txt, &end);
    if (end == txt || *end || !(x >= 0) || isinf(x))
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata '%s' = \"%s\" is not a non-negative number",
                       vc->path, key, txt);
    *v = x;
    return BG_OK;
}

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], s) == 0) return i;
    return -1;
}

/* Sort every tensor of the file into its role; anything else is an error so
 * a typo ("weights", "out.out") is reported rather than silently ignored. */
static bg_status classify_tensors(bg_ctx *ctx, vcase *vc)
{
    const bg_op *op = vc->op;
    const bg_st_file *f = vc->f;
    int n_out = 0;
    while (n_out < BG_MAX_OUT && op->out_names[n_out]) n_out++;
    bool any_4d = false;
    char ins[160], outs[80];
    list_names(op->in_names, op->n_in, ins, sizeof ins);
    list_names(op->out_names, n_out, outs, sizeof outs);
    for (int e = 0; e < f->n; e++) {
        const bg_st_entry *en = &f->entries[e];
        const char *nm = en->name;
        any_4d |= en->ndim == 4;
        int k;
        if ((k = name_index(op->in_names, op->n_in, nm)) >= 0) vc->in[k] = en;
        else if (!strncmp(nm, "out.", 4) && (k = name_index(op->out_names, n_out, nm + 4)) >= 0) vc->out[k] = en;
        else if (!strncmp(nm, "out.", 4) && (k = name_index(op->in_names, op->n_in, nm + 4)) >= 0) vc->in_after[k] = en;
        else if (!strncmp(nm, "dout.", 5) && (k = name_index(op->out_names, n_out, nm + 5)) >= 0) vc->dout[k] = en;
        else if (!strncmp(nm, "grad.", 5) && (k = name_index(op->in_names, op->n_in, nm + 5)) >= 0) {
            if (!op->in_differentiable[k])
                return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': input '%s' of %s has no gradient",
                               vc->path, nm, nm + 5, op->name);
            vc->grad[k] = en;
        } else
            return bg_fail(ctx, BG_ERR_FORMAT,
                           "%s: tensor '%s' is not an input of %s (%s), out.<output> (%s), out.<input>, "
                           "dout.<output> or grad.<input>",
                           vc->path, nm, op->name, ins, outs);
    }
    for (int i = 0; i < op->n_in; i++) {
        if (vc->in[i]) vc->n_in = i + 1;
        else if (i < op->n_in_required)
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: missing input tensor '%s' (op %s takes %s)", vc->path,
                           op->in_names[i], op->name, ins);
        if (vc->in_after[i] && !vc->in[i])
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor 'out.%s' given but input '%s' is absent",
                           vc->path, op->in_names[i], op->in_names[i]);
        if (vc->grad[i] && !vc->in[i])
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor 'grad.%s' given but input '%s' is absent",
                           vc->path, op->in_names[i], op->in_names[i]);
    }
    bool any_out = false, any_grad = false;
    for (int k = 0; k < n_out; k++) {
        vc->backward |= vc->dout[k] != NULL;
        any_out |= vc->out[k] != NULL;
    }
    for (int i = 0; i < op->n_in; i++) {
        any_grad |= vc->grad[i] != NULL;
        any_out |= vc->in_after[i] != NULL;
    }
    if (any_grad && !vc->backward)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: grad.<input> tensors need upstream gradients dout.<output> (%s)",
                       vc->path, outs);
    if (!any_out && !any_grad)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: nothing to compare: no out.<output> (%s) or grad.<input> tensor",
                       vc->path, outs);
    const char *lay = bg_st_meta(f, "layout");
    if (lay && strcmp(lay, "NCHW") && strcmp(lay, "NHWC"))
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata 'layout' = \"%s\": use NCHW or NHWC", vc->path, lay);
    if (!lay && any_4d)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata 'layout' (NCHW or NHWC) is required: the file has 4-D tensors",
                       vc->path);
    vc->nchw = lay && !strcmp(lay, "NCHW");
    return BG_OK;
}

static bg_status parse_case(bg_ctx *ctx, const bg_st_file *f, const bg_validate_opts *o, vcase *vc)
{
    memset(vc, 0, sizeof *vc);
    vc->f = f;
    vc->path = f->path;
    vc->atol = o->atol;
    vc->rtol = o->rtol;
    const char *name = bg_st_meta(f, "op");
    if (!name)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: missing __metadata__ key 'op' (the op table name)", vc->path);
    vc->op = bg_op_find(name);
    if (!vc->op) {
        char known[400];
        size_t k = 0;
        known[0] = 0;
        for (int i = 0; i < bg_op_count() && k < sizeof known; i++)
            if (bg_op_at(i))
                k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", k ? ", " : "", bg_op_at(i)->name);
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: unknown op '%s' (known: %s)", vc->path, name, known);
    }
    bg_status s = parse_params(ctx, vc, bg_st_meta(f, "params"));
    if (s) return s;
    const char *tr = bg_st_meta(f, "train");
    if (!tr || !strcmp(tr, "1") || !strcmp(tr, "true")) vc->train = true;
    else if (!strcmp(tr, "0") || !strcmp(tr, "false")) vc->train = false;
    else return bg_fail(ctx, BG_ERR_FORMAT, "%s: metadata 'train' = \"%s\": use 1 or 0", vc->path, tr);
    if ((s = parse_number(ctx, vc, "atol", &vc->atol)) || (s = parse_number(ctx, vc, "rtol", &vc->rtol)))
        return s;
    return classify_tensors(ctx, vc);
}

/* ------------------------------------------------------------ tensors */

/* {N,C,H,W} -> {N,H,W,C}: PyTorch's activation layout to ours; the same
 * permutation takes OIHW conv weights to OHWI. */
static bg_tensor *nchw_to_nhwc(bg_ctx *ctx, const bg_tensor *src)
{
    const int64_t N = src->shape[0], C = src->shape[1], H = src->shape[2], W = src->shape[3];
    int64_t shape[4] = {N, H, W, C};
    bg_tensor *dst = bg_tensor_new(ctx, BG_CPU, src->dtype, 4, shape, src->name);
    if (!dst) return NULL;
    size_t es = bg_dtype_size(src->dtype);
    const unsigned char *s = src->data;
    unsigned char *d = dst->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++)
                    memcpy(d + (size_t)(((n * H + h) * W + w) * C + c) * es,
                           s + (size_t)(((n * C + c) * H + h) * W + w) * es, es);
    return dst;
}

/* A file tensor on the CPU in our layout; floats become `as` when as is a
 * float type (inputs compute in f32), integers keep their type. */
static bg_tensor *load_host(bg_ctx *ctx, const vcase *vc, const bg_st_entry *e, bg_dtype as)
{
    bg_tensor *t = bg_st_load(ctx, vc->f, e->name, BG_CPU);
    if (!t) return NULL;
    if (bg_dtype_is_float(t->dtype) && as != BG_DTYPE_COUNT && t->dtype != as) {
        bg_tensor *c = bg_tensor_new(ctx, BG_CPU, as, t->ndim, t->shape, t->name);
        if (!c || bg_tensor_convert(ctx, c, t) != BG_OK) {
            bg_tensor_free(ctx, c);
            bg_tensor_free(ctx, t);
            return NULL;
        }
        bg_tensor_free(ctx, t);
        t = c;
    }
    if (vc->nchw && t->ndim == 4) {
        bg_tensor *p = nchw_to_nhwc(ctx, t);
        bg_tensor_free(ctx, t);
        t = p;
    }
    if (t && t->ndim == 4) t->layout = BG_NHWC; /* the format's 4-D tensors are ours once loaded */
    return t;
}

/* A host tensor moved to `dev` (the host copy is consumed). */
static bg_tensor *to_device(bg_ctx *ctx, bg_tensor *h, bg_device dev)
{
    if (!h || dev == BG_CPU) return h;
    bg_tensor *d = bg_tensor_new(ctx, dev, h->dtype, h->ndim, h->shape, h->name);
    if (d && bg_tensor_copy(ctx, d, h) != BG_OK) {
        bg_tensor_free(ctx, d);
        d = NULL;
    }
    bg_tensor_free(ctx, h);
    return d;
}

/* Any tensor's elements as doubles on the host (caller frees). */
static double *to_doubles(bg_ctx *ctx, const bg_tensor *t)
{
    size_t nb = bg_nbytes(t);
    int64_t n = bg_numel(t);
    unsigned char *raw = malloc(nb ? nb : 1);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!raw || !v) {
        free(raw);
        free(v);
        bg_fail(ctx, BG_ERR_OOM, "out of memory reading '%s'", t->name);
        return NULL;
    }
    if (bg_tensor_download(ctx, t, raw, nb) != BG_OK) {
        free(raw);
        free(v);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case BG_F32: { float x; memcpy(&x, raw + 4 * i, 4); v[i] = x; } break;
        case BG_F64: memcpy(&v[i], raw + 8 * i, 8); break;
        case BG_F16: { uint16_t x; memcpy(&x, raw + 2 * i, 2); v[i] = bg_f16_to_f32(x); } break;
        case BG_I32: { int32_t x; memcpy(&x, raw + 4 * i, 4); v[i] = x; } break;
        case BG_U8: v[i] = raw[i]; break;
        default: v[i] = NAN; break;
        }
    }
    free(raw);
    return v;
}

/* ------------------------------------------------------------ comparison */

static void index_str(const bg_tensor *t, int64_t i, char *buf, size_t cap)
{
    int64_t idx[BG_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? i % t->shape[d] : 0;
        i = t->shape[d] ? i / t->shape[d] : 0;
    }
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)idx[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* Compare `got` (any device) with the expected file tensor; one report line. */
static bg_status compare(bg_ctx *ctx, const vcase *vc, bg_device dev, const char *label,
                         const bg_tensor *got, const bg_st_entry *want_e, FILE *log, bg_validate_counts *c)
{
    bg_tensor *want = load_host(ctx, vc, want_e, BG_DTYPE_COUNT); /* keep the file's precision */
    if (!want) return with_file(ctx, ctx->status, vc->path);
    char a[96], b[96];
    if (!bg_same_shape(got, want)) {
        bool permuted = vc->nchw && want->ndim == 4;
        bg_shape_str(want, a, sizeof a);
        bg_shape_str(got, b, sizeof b);
        bg_tensor_free(ctx, want);
        return bg_fail(ctx, BG_ERR_SHAPE, "%s: tensor '%s' has shape %s%s but %s gives %s", vc->path, label,
                       a, permuted ? " (after NCHW->NHWC)" : "", vc->op->name, b);
    }
    double *g = to_doubles(ctx, got), *w = g ? to_doubles(ctx, want) : NULL;
    if (!g || !w) {
        free(g);
        bg_tensor_free(ctx, want);
        return with_file(ctx, ctx->status, vc->path);
    }
    int64_t n = bg_numel(want), bad = 0, worst = -1;
    double max_abs = 0, max_rel = 0, worst_excess = -1;
    bool nan_seen = false;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(g[i] - w[i]);
        double lim = vc->atol + vc->rtol * fabs(w[i]);
        double floor_ = fmax(fabs(w[i]), vc->atol);
        /* Equal infinities give d = NaN; they agree, so count them as 0. */
        if (isinf(g[i]) && g[i] == w[i]) d = 0;
        double rel = d == 0 ? 0 : floor_ > 0 ? d / floor_ : INFINITY;
        bool ok = d <= lim; /* false for NaN on either side */
        if (isnan(d)) nan_seen = true;
        else max_abs = fmax(max_abs, d), max_rel = fmax(max_rel, rel);
        if (!ok) {
            bad++;
            double excess = isnan(d) ? INFINITY : d / fmax(lim, 1e-300);
            if (excess > worst_excess) worst_excess = excess, worst = i;
        }
    }
    if (nan_seen) max_abs = max_rel = NAN;
    c->n_tensors++;
    if (bad) c->n_fail++;
    else c->n_pass++;
    if (log) {
        fprintf(log, "  [%s] %-18s %-22s max_abs %-9.3g max_rel %-9.3g %s\n", bg_device_name(dev), label,
                bg_shape_str(want, a, sizeof a), max_abs, max_rel, bad ? "FAIL" : "PASS");
        if (bad) {
            index_str(want, worst, b, sizeof b);
            fprintf(log, "        %lld of %lld elements out of tolerance; worst at %s: got %.9g, want %.9g\n",
                    (long long)bad, (long long)n, b, g[worst], w[worst]);
        }
    }
    free(g);
    free(w);
    bg_tensor_free(ctx, want);
    return BG_OK;
}

/* ------------------------------------------------------------ one backend */

/* An error the op raised speaks of the tensors as the op sees them: append
 * how they came from the file (4-D shapes permuted to budgie's NHWC order,
 * floats as f32, the file's I32 or I64 integers as i32), so the message
 * maps back onto what the file holds. */
static bg_status op_error(bg_ctx *ctx, const vcase *vc, bg_status s)
{
    char msg[sizeof ctx->err];
    snprintf(msg, sizeof msg, "%s", bg_errmsg(ctx));
    bool has4 = false;
    for (int i = 0; i < vc->n_in; i++)
        if (vc->in[i] && vc->in[i]->ndim == 4) has4 = true;
    const char *layout = !has4 ? ""
                         : vc->nchw ? "; 4-D shapes are in budgie's NHWC order: the file's NCHW tensors were permuted"
                                    : "; 4-D shapes are NHWC, as the file's layout says";
    return bg_fail(ctx, s, "%s (as loaded: float tensors as f32, I32 or I64 integers as i32%s)", msg, layout);
}

static bg_status run_backend(bg_ctx *ctx, const vcase *vc, bg_device dev, FILE *log, bg_validate_counts *c)
{
    const bg_op *op = vc->op;
    bg_tensor *in[BG_MAX_IN] = {0};
    bg_node node;
    memset(&node, 0, sizeof node);
    bg_status s = BG_OK;

    for (int i = 0; i < vc->n_in && s == BG_OK; i++) {
        if (!vc->in[i]) continue;
        in[i] = to_device(ctx, load_host(ctx, vc, vc->in[i], BG_F32), dev);
        if (!in[i]) s = ctx->status;
    }
    if (s == BG_OK && (s = bg_node_init(ctx, &node, op, vc->p.bytes, in, vc->n_in, vc->train)) != BG_OK)
        s = op_error(ctx, vc, s);
    if (s == BG_OK && (s = bg_node_forward(ctx, &node)) != BG_OK) s = op_error(ctx, vc, s);

    for (int k = 0; s == BG_OK && k < node.n_out; k++)
        if (vc->out[k]) s = compare(ctx, vc, dev, vc->out[k]->name, node.out[k], vc->out[k], log, c);
    for (int i = 0; s == BG_OK && i < vc->n_in; i++)
        if (vc->in_after[i]) s = compare(ctx, vc, dev, vc->in_after[i]->name, in[i], vc->in_after[i], log, c);

    if (s == BG_OK && vc->backward) {
        for (int k = 0; s == BG_OK && k < node.n_out; k++) {
            if ((s = bg_tensor_ensure_grad(ctx, node.out[k])) != BG_OK) break;
            if (!vc->dout[k]) continue;
            bg_tensor *h = load_host(ctx, vc, vc->dout[k], node.out[k]->dtype);
            if (!h) {
                s = ctx->status;
                break;
            }
            if (!bg_same_shape(h, node.out[k])) {
                char a[96], b[96];
                s = bg_fail(ctx, BG_ERR_SHAPE, "%s: tensor '%s' has shape %s but output '%s' is %s", vc->path,
                            vc->dout[k]->name, bg_shape_str(h, a, sizeof a), op->out_names[k],
                            bg_shape_str(node.out[k], b, sizeof b));
            } else {
                s = bg_tensor_copy(ctx, node.out[k]->grad, h);
            }
            bg_tensor_free(ctx, h);
        }
        for (int i = 0; s == BG_OK && i < vc->n_in; i++)
            if (in[i] && op->in_differentiable[i]) s = bg_tensor_ensure_grad(ctx, in[i]);
        if (s == BG_OK && (s = bg_node_backward(ctx, &node)) != BG_OK) s = op_error(ctx, vc, s);
        for (int i = 0; s == BG_OK && i < vc->n_in; i++)
            if (vc->grad[i]) s = compare(ctx, vc, dev, vc->grad[i]->name, in[i]->grad, vc->grad[i], log, c);
    }
    if (s != BG_OK) s = with_file(ctx, s, vc->path);
    bg_node_release(ctx, &node);
    for (int i = 0; i < BG_MAX_IN; i++) bg_tensor_free(ctx, in[i]);
    return s;
}

/* ------------------------------------------------------------ entry points */

bg_status bg_validate_st(bg_ctx *ctx, const bg_st_file *f, const bg_validate_opts *o, FILE *log,
                         bg_validate_counts *counts)
{
    bg_validate_opts dflt;
    if (!o) bg_validate_defaults(&dflt), o = &dflt;
    vcase vc;
    bg_status s = parse_case(ctx, f, o, &vc);
    if (s) return s;
    bool cuda = bg_cuda_available();
    if (o->backends == BG_VAL_CUDA && !cuda)
        return bg_fail(ctx, BG_ERR_UNSUPPORTED, "%s: backend cuda requested but CUDA is not available", f->path);
    if (log) {
        char ps[256];
        bg_op_params_str(vc.op, vc.p.bytes, ps, sizeof ps);
        fprintf(log, "%s: %s%s%s train=%d layout=%s atol=%g rtol=%g\n", f->path, vc.op->name, ps[0] ? " " : "",
                ps, vc.train, vc.nchw ? "NCHW" : "NHWC", vc.atol, vc.rtol);
    }
    if (o->backends & BG_VAL_CPU) {
        if ((s = run_backend(ctx, &vc, BG_CPU, log, counts)) != BG_OK) return s;
        counts->n_backends++;
    }
    if (o->backends & BG_VAL_CUDA) {
        if (!cuda) {
            if (log) fprintf(log, "  [cuda] skipped: CUDA is not available\n");
            return BG_OK;
        }
        /* CUDA work needs a context that owns a stream; errors come back
         * into the caller's context. */
        bg_ctx cctx;
        if ((s = bg_ctx_init(&cctx, BG_CUDA, ctx->seed)) == BG_OK) s = run_backend(&cctx, &vc, BG_CUDA, log, counts);
        if (s != BG_OK) bg_fail(ctx, s, "%s", bg_errmsg(&cctx));
        else counts->n_backends++;
        bg_ctx_free(&cctx);
    }
    return s;
}

bg_status bg_validate_file(bg_ctx *ctx, const char *path, const bg_validate_opts *o, FILE *log,
                           bg_validate_counts *counts)
{
    bg_st_file f;
    bg_status s = bg_st_open(ctx, path, &f);
    if (s) return s;
    s = bg_validate_st(ctx, &f, o, log, counts);
    bg_st_close(&f);
    return s;
}
