/* safetensors reader and writer. The reader trusts nothing in the file: the
 * header length is checked against the real size before any allocation that
 * depends on it, every entry is checked for dtype, rank, dims and byte count,
 * and the entries must tile the data section exactly (sorted by offset, no
 * gap, no overlap, nothing left over), which is what the reference loader
 * demands too, so a file we accept is one it accepts. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as host order"
#endif

/* The reference implementation refuses headers above 100 MB; so do we, so a
 * corrupt length cannot make us allocate or scan an absurd amount. */
#define ST_MAX_HEADER ((uint64_t)100000000)

typedef struct {
    const char *name;
    size_t size;     /* bytes per element */
    bg_dtype dtype;  /* BG_DTYPE_COUNT when the engine has no such type */
} st_dtype_info;

static const st_dtype_info ST_DTYPES[] = {
    {"F64", 8, BG_F64},           {"F32", 4, BG_F32},           {"F16", 2, BG_F16},
    {"BF16", 2, BG_DTYPE_COUNT},  {"I64", 8, BG_DTYPE_COUNT},   {"I32", 4, BG_I32},
    {"I16", 2, BG_DTYPE_COUNT},   {"I8", 1, BG_DTYPE_COUNT},    {"U8", 1, BG_U8},
    {"BOOL", 1, BG_DTYPE_COUNT},  {"U16", 2, BG_DTYPE_COUNT},   {"U32", 4, BG_DTYPE_COUNT},
    {"U64", 8, BG_DTYPE_COUNT},   {"F8_E4M3", 1, BG_DTYPE_COUNT}, {"F8_E5M2", 1, BG_DTYPE_COUNT},
};
#define ST_NDTYPES ((int)(sizeof(ST_DTYPES) / sizeof(ST_DTYPES[0])))

static const st_dtype_info *st_dtype_lookup(const char *s)
{
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(ST_DTYPES[i].name, s) == 0) return &ST_DTYPES[i];
    return NULL;
}

static const char *st_dtype_of(bg_dtype dt)
{
    switch (dt) {
    case BG_F32: return "F32";
    case BG_F16: return "F16";
    case BG_F64: return "F64";
    case BG_U8: return "U8";
    case BG_I32: return "I32";
    default: return NULL;
    }
}

void bg_st_close(bg_st_file *f)
{
    if (!f) return;
    free(f->entries);
    for (int i = 0; i < f->n_meta; i++) {
        if (f->meta_keys) free(f->meta_keys[i]);
        if (f->meta_vals) free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->base_);
    char path[sizeof f->path];
    memcpy(path, f->path, sizeof path);
    memset(f, 0, sizeof *f);
    memcpy(f->path, path, sizeof path); /* keep the label for messages after close */
}

/* ---------------------------------------------------------------- parsing */

static int cmp_entry(const void *a, const void *b)
{
    const bg_st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static bg_status parse_metadata(bg_ctx *ctx, const char *label, json_t *meta, bg_st_file *f)
{
    if (!json_is_object(meta))
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: __metadata__ is not a JSON object", label);
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof(char *));
    f->meta_vals = calloc(n ? n : 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_vals)
        return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory for %zu metadata entries", label, n);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", label, k);
        f->meta_keys[f->n_meta] = strdup(k);
        f->meta_vals[f->n_meta] = strdup(json_string_value(v));
        f->n_meta++; /* counted before the check so close frees a half-made pair */
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_vals[f->n_meta - 1])
            return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory copying metadata '%s'", label, k);
    }
    return BG_OK;
}

static bg_status get_u64(bg_ctx *ctx, const char *label, const char *tname, const char *field,
                         json_t *v, uint64_t *out)
{
    if (!json_is_integer(v))
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': %s holds a non-integer", label, tname, field);
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': negative value %lld in %s", label,
                       tname, (long long)x, field);
    *out = (uint64_t)x;
    return BG_OK;
}

static bg_status parse_entry(bg_ctx *ctx, const char *label, const char *name, json_t *obj,
                             size_t data_len, bg_st_entry *e)
{
    if (strlen(name) >= sizeof e->name)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor name '%.40s...' is longer than %zu bytes",
                       label, name, sizeof e->name - 1);
    memset(e, 0, sizeof *e);
    strcpy(e->name, name);
    if (!json_is_object(obj))
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", label, name);

    json_t *jd = json_object_get(obj, "dtype");
    json_t *js = json_object_get(obj, "shape");
    json_t *jo = json_object_get(obj, "data_offsets");
    if (!json_is_string(jd))
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", label, name);
    if (!json_is_array(js))
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", label, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return bg_fail(ctx, BG_ERR_FORMAT,
                       "%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", label, name);

    const st_dtype_info *di = st_dtype_lookup(json_string_value(jd));
    if (!di)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%.16s\"", label, name,
                       json_string_value(jd));
    snprintf(e->st_dtype, sizeof e->st_dtype, "%s", di->name);
    e->dtype = di->dtype;

    size_t nd = json_array_size(js);
    if (nd > BG_ST_MAX_DIMS)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': %zu dims, at most %d are supported",
                       label, name, nd, BG_ST_MAX_DIMS);
    e->ndim = (int)nd;
    /* Count bytes in 64 bits with an overflow check: a crafted shape must not
     * wrap around to a small number that happens to match the offsets. */
    uint64_t bytes = di->size;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d))
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not an integer",
                           label, name, i);
        json_int_t v = json_integer_value(d);
        if (v < 0)
            return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': negative dim %lld at shape[%zu]",
                           label, name, (long long)v, i);
        e->shape[i] = (int64_t)v;
        if (v != 0 && bytes > UINT64_MAX / (uint64_t)v) overflow = 1;
        else bytes *= (uint64_t)v;
    }

    uint64_t b, en;
    bg_status s = get_u64(ctx, label, name, "data_offsets", json_array_get(jo, 0), &b);
    if (s == BG_OK) s = get_u64(ctx, label, name, "data_offsets", json_array_get(jo, 1), &en);
    if (s != BG_OK) return s;
    if (en < b)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                       label, name, (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return bg_fail(ctx, BG_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] past the end of the data (%zu bytes)",
                       label, name, (unsigned long long)b, (unsigned long long)en, data_len);
    if (overflow || bytes != en - b) {
        char sh[160];
        size_t k = 0;
        sh[0] = 0;
        for (int i = 0; i < e->ndim && k < sizeof sh - 24; i++)
            k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%lld", i ? ", " : "", (long long)e->shape[i]);
        return bg_fail(ctx, BG_ERR_FORMAT,
                       "%s: tensor '%s': shape [%s] of %s needs %s%llu bytes but data_offsets span %llu",
                       label, name, sh, di->name, overflow ? "more than " : "",
                       (unsigned long long)(overflow ? UINT64_MAX : bytes), (unsigned long long)(en - b));
    }
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return BG_OK;
}

/* Parse a whole-file buffer the file struct now owns (freed by bg_st_close). */
static bg_status parse_owned(bg_ctx *ctx, bg_st_file *f)
{
    const char *label = f->path;
    const unsigned char *buf = f->base_;
    size_t len = f->base_len_;
    if (len < 8)
        return bg_fail(ctx, BG_ERR_FORMAT,
                       "%s: truncated: %zu bytes, shorter than the 8-byte header length", label, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > len - 8)
        return bg_fail(ctx, BG_ERR_FORMAT,
                       "%s: truncated or corrupt: header length %llu exceeds the %zu bytes after it",
                       label, (unsigned long long)hlen, len - 8);
    if (hlen > ST_MAX_HEADER)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit", label,
                       (unsigned long long)hlen);
    if (hlen < 2 || buf[8] != '{')
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: invalid JSON header: it must start with '{'", label);

    f->data = (unsigned char *)buf + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: invalid JSON header: %s (line %d, column %d)", label,
                       jerr.text, jerr.line, jerr.column);
    bg_status s = BG_OK;
    if (!json_is_object(root)) {
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: invalid JSON header: not an object", label);
        goto done;
    }
    size_t nobj = json_object_size(root);
    f->entries = calloc(nobj ? nobj : 1, sizeof *f->entries);
    if (!f->entries) {
        s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory for %zu header entries", label, nobj);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) s = parse_metadata(ctx, label, val, f);
        else if ((s = parse_entry(ctx, label, key, val, f->data_len, &f->entries[f->n])) == BG_OK) f->n++;
        if (s != BG_OK) goto done;
    }

    qsort(f->entries, (size_t)f->n, sizeof *f->entries, cmp_entry);
    size_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const bg_st_entry *e = &f->entries[i];
        if (e->begin < at) {
            s = bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s' [%zu, %zu) overlaps tensor '%s' ending at %zu",
                        label, e->name, e->begin, e->end, f->entries[i - 1].name, at);
            goto done;
        }
        if (e->begin > at) {
            s = bg_fail(ctx, BG_ERR_FORMAT,
                        "%s: gap of %zu bytes in the data before tensor '%s' (offsets must tile the data)",
                        label, e->begin - at, e->name);
            goto done;
        }
        at = e->end;
    }
    if (at != f->data_len)
        s = bg_fail(ctx, BG_ERR_FORMAT,
                    "%s: gap of %zu unused bytes after the last tensor (offsets must tile the data)",
                    label, f->data_len - at);
done:
    json_decref(root);
    return s;
}

static void set_label(bg_st_file *f, const char *label)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", label ? label : "(buffer)");
}

bg_status bg_st_parse(bg_ctx *ctx, const void *buf, size_t len, const char *label, bg_st_file *f)
{
    set_label(f, label);
    if (!buf && len)
        return bg_fail(ctx, BG_ERR_ARG, "%s: NULL buffer", f->path);
    /* Validate the length field before copying so a bogus header length
     * never drives an allocation; parse_owned repeats the checks. */
    if (len >= 8) {
        const unsigned char *b = buf;
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
        if (hlen > len - 8)
            return bg_fail(ctx, BG_ERR_FORMAT,
                           "%s: truncated or corrupt: header length %llu exceeds the %zu bytes after it",
                           f->path, (unsigned long long)hlen, len - 8);
    }
    f->base_ = malloc(len ? len : 1);
    if (!f->base_) return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory copying %zu bytes", f->path, len);
    if (len) memcpy(f->base_, buf, len);
    f->base_len_ = len;
    bg_status s = parse_owned(ctx, f);
    if (s != BG_OK) bg_st_close(f);
    return s;
}

bg_status bg_st_open(bg_ctx *ctx, const char *path, bg_st_file *f)
{
    set_label(f, path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bg_status s = BG_OK;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        s = bg_fail(ctx, BG_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    /* Check the header length against the size on disk before reading the
     * file in, so the message says "truncated" rather than "out of memory". */
    unsigned char head[8];
    if (size < 8 || fread(head, 1, 8, fp) != 8) {
        s = bg_fail(ctx, BG_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than the 8-byte header length",
                    path, size);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | head[i];
    if (hlen > size - 8) {
        s = bg_fail(ctx, BG_ERR_FORMAT,
                    "%s: truncated or corrupt: header length %llu exceeds the %zu bytes after it", path,
                    (unsigned long long)hlen, size - 8);
        goto out;
    }
    f->base_ = malloc(size);
    if (!f->base_) {
        s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory reading %zu bytes", path, size);
        goto out;
    }
    memcpy(f->base_, head, 8);
    if (fread((unsigned char *)f->base_ + 8, 1, size - 8, fp) != size - 8) {
        s = bg_fail(ctx, BG_ERR_IO, "%s: short read (file changed while reading?)", path);
        goto out;
    }
    f->base_len_ = size;
    s = parse_owned(ctx, f);
out:
    fclose(fp);
    if (s != BG_OK) bg_st_close(f);
    return s;
}

const bg_st_entry *bg_st_find(const bg_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

const char *bg_st_meta(const bg_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

const void *bg_st_bytes(const bg_st_file *f, const bg_st_entry *e)
{
    return f->data + e->begin;
}

/* ---------------------------------------------------------------- loading */

/* Integer element i of little-endian data of `size`-byte elements, widened
 * to 64 bits; unsigned values come back in *uv, signed ones in *v. */
static void read_int(const unsigned char *p, size_t size, int is_signed, int64_t i, int64_t *v,
                     uint64_t *uv)
{
    const unsigned char *q = p + (size_t)i * size;
    uint64_t u = 0;
    for (int k = (int)size - 1; k >= 0; k--) u = (u << 8) | q[k];
    if (is_signed && size < 8 && ((u >> (size * 8 - 1)) & 1)) u |= ~(uint64_t)0 << (size * 8);
    *uv = u;
    memcpy(v, &u, sizeof *v); /* two's complement reinterpretation */
}

bg_tensor *bg_st_load(bg_ctx *ctx, const bg_st_file *f, const char *name, bg_device device)
{
    const bg_st_entry *e = bg_st_find(f, name);
    if (!e) {
        bg_fail(ctx, BG_ERR_ARG, "%s: no tensor named '%s'", f->path, name);
        return NULL;
    }
    if (e->ndim > BG_MAX_DIMS) {
        bg_fail(ctx, BG_ERR_SHAPE, "%s: tensor '%s' has %d dims, the engine holds at most %d", f->path,
                name, e->ndim, BG_MAX_DIMS);
        return NULL;
    }
    const char *sd = e->st_dtype;
    const st_dtype_info *di = st_dtype_lookup(sd);
    int is_signed = sd[0] == 'I';
    int is_int = is_signed || (sd[0] == 'U' && strcmp(sd, "U8") != 0);
    bg_dtype dt = e->dtype;
    if (dt == BG_DTYPE_COUNT) {
        if (strcmp(sd, "BF16") == 0) dt = BG_F32;
        else if (is_int) dt = BG_I32;
        else if (strcmp(sd, "BOOL") == 0) dt = BG_U8;
        else {
            bg_fail(ctx, BG_ERR_DTYPE, "%s: tensor '%s' has dtype %s, which the engine cannot hold",
                    f->path, name, sd);
            return NULL;
        }
    }
    int ndim = e->ndim;
    int64_t shape[BG_MAX_DIMS] = {1, 1, 1, 1};
    for (int i = 0; i < e->ndim; i++) shape[i] = e->shape[i];
    char tname[sizeof ((bg_tensor *)0)->name];
    snprintf(tname, sizeof tname, "%s", name); /* truncates long names safely */

    bg_tensor *t = bg_tensor_new(ctx, device, dt, ndim, shape, tname);
    if (!t) return NULL;
    t->layout = BG_LAYOUT_ANY;
    const unsigned char *src = bg_st_bytes(f, e);
    size_t nb = bg_nbytes(t);
    int64_t numel = bg_numel(t);
    if (e->dtype != BG_DTYPE_COUNT) {
        /* Same representation: hand the bytes over as they are. */
        if (bg_tensor_upload(ctx, t, src, nb) != BG_OK) goto fail;
        return t;
    }
    void *tmp = malloc(nb ? nb : 1);
    if (!tmp) {
        bg_fail(ctx, BG_ERR_OOM, "%s: out of memory converting tensor '%s'", f->path, name);
        goto fail;
    }
    if (dt == BG_F32) { /* BF16: the top half of an f32 */
        float *o = tmp;
        for (int64_t i = 0; i < numel; i++) {
            uint32_t u = (uint32_t)(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
            memcpy(&o[i], &u, 4);
        }
    } else if (dt == BG_U8) { /* BOOL: one byte each, any non-zero is true */
        unsigned char *o = tmp;
        for (int64_t i = 0; i < numel; i++) o[i] = src[i] != 0;
    } else {
        int32_t *o = tmp;
        for (int64_t i = 0; i < numel; i++) {
            int64_t v;
            uint64_t uv;
            read_int(src, di->size, is_signed, i, &v, &uv);
            if (is_signed ? (v < INT32_MIN || v > INT32_MAX) : uv > INT32_MAX) {
                if (is_signed)
                    bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': element %lld = %lld does not fit in i32",
                            f->path, name, (long long)i, (long long)v);
                else
                    bg_fail(ctx, BG_ERR_FORMAT, "%s: tensor '%s': element %lld = %llu does not fit in i32",
                            f->path, name, (long long)i, (unsigned long long)uv);
                free(tmp);
                goto fail;
            }
            o[i] = (int32_t)(is_signed ? v : (int64_t)uv);
        }
    }
    bg_status s = bg_tensor_upload(ctx, t, tmp, nb);
    free(tmp);
    if (s != BG_OK) goto fail;
    return t;
fail:
    bg_tensor_free(ctx, t);
    return NULL;
}

/* ---------------------------------------------------------------- writing */

static bg_status write_all(bg_ctx *ctx, FILE *fp, const void *p, size_t n, const char *path)
{
    if (n && fwrite(p, 1, n, fp) != n)
        return bg_fail(ctx, BG_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return BG_OK;
}

bg_status bg_st_save(bg_ctx *ctx, const char *path, bg_tensor *const *ts, const char *const *names,
                     int n, const char *const *meta_keys, const char *const *meta_vals, int n_meta)
{
    if (n < 0 || n_meta < 0 || (n && !ts) || (n_meta && (!meta_keys || !meta_vals)))
        return bg_fail(ctx, BG_ERR_ARG, "%s: bad tensor or metadata arguments", path);
    bg_status s = BG_OK;
    json_t *root = json_object();
    char *hdr = NULL;
    FILE *fp = NULL;
    char tmp[1100];
    tmp[0] = 0;
    if (!root) return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory building the header", path);

    if (n_meta > 0) {
        json_t *m = json_object();
        json_object_set_new(root, "__metadata__", m);
        for (int i = 0; i < n_meta; i++) {
            if (!meta_keys[i] || !meta_vals[i]) {
                s = bg_fail(ctx, BG_ERR_ARG, "%s: metadata pair %d is NULL", path, i);
                goto out;
            }
            if (json_object_set_new(m, meta_keys[i], json_string(meta_vals[i])) != 0) {
                s = bg_fail(ctx, BG_ERR_ARG, "%s: metadata '%s' is not valid UTF-8", path, meta_keys[i]);
                goto out;
            }
        }
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const bg_tensor *t = ts[i];
        const char *nm = names ? names[i] : t ? t->name : NULL;
        if (!t || !nm || !nm[0]) {
            s = bg_fail(ctx, BG_ERR_ARG, "%s: tensor %d is NULL or has no name", path, i);
            goto out;
        }
        if (strcmp(nm, "__metadata__") == 0 || json_object_get(root, nm)) {
            s = bg_fail(ctx, BG_ERR_ARG, "%s: tensor name '%s' is reserved or repeated", path, nm);
            goto out;
        }
        const char *sd = st_dtype_of(t->dtype);
        if (!sd) {
            s = bg_fail(ctx, BG_ERR_DTYPE, "%s: tensor '%s' has no safetensors dtype", path, nm);
            goto out;
        }
        json_t *e = json_object(), *sh = json_array(), *of = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(sh, json_integer(t->shape[d]));
        size_t nb = bg_nbytes(t);
        json_array_append_new(of, json_integer((json_int_t)off));
        json_array_append_new(of, json_integer((json_int_t)(off + nb)));
        json_object_set_new(e, "dtype", json_string(sd));
        json_object_set_new(e, "shape", sh);
        json_object_set_new(e, "data_offsets", of);
        if (json_object_set_new(root, nm, e) != 0) {
            s = bg_fail(ctx, BG_ERR_ARG, "%s: tensor name '%s' is not valid UTF-8", path, nm);
            goto out;
        }
        off += nb;
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) {
        s = bg_fail(ctx, BG_ERR_OOM, "%s: could not serialise the header", path);
        goto out;
    }
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        s = bg_fail(ctx, BG_ERR_ARG, "%s: path too long", path);
        tmp[0] = 0;
        goto out;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        s = bg_fail(ctx, BG_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; a weights file is meant to be shared */
    fp = fdopen(fd, "wb");
    if (!fp) {
        close(fd);
        s = bg_fail(ctx, BG_ERR_IO, "%s: fdopen: %s", tmp, strerror(errno));
        goto out;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    if ((s = write_all(ctx, fp, lenb, 8, tmp)) != BG_OK) goto out;
    if ((s = write_all(ctx, fp, hdr, hl, tmp)) != BG_OK) goto out;
    for (size_t i = hl; i < padded; i++)
        if (fputc(' ', fp) == EOF) {
            s = bg_fail(ctx, BG_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
            goto out;
        }
    for (int i = 0; i < n; i++) {
        size_t nb = bg_nbytes(ts[i]);
        void *buf = malloc(nb ? nb : 1);
        if (!buf) {
            s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory staging tensor '%s'", path,
                        names ? names[i] : ts[i]->name);
            goto out;
        }
        s = bg_tensor_download(ctx, ts[i], buf, nb);
        if (s == BG_OK) s = write_all(ctx, fp, buf, nb, tmp);
        free(buf);
        if (s != BG_OK) goto out;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        s = bg_fail(ctx, BG_ERR_IO, "%s: flush failed: %s", tmp, strerror(errno));
        goto out;
    }
    int rc = fclose(fp);
    fp = NULL;
    if (rc != 0) {
        s = bg_fail(ctx, BG_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        s = bg_fail(ctx, BG_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto out;
    }
    tmp[0] = 0; /* renamed: nothing to clean up */
    {
        /* the rename itself must reach the disk: fsync the folder */
        char dir[1100];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *(slash == dir ? slash + 1 : slash) = 0;
        else snprintf(dir, sizeof dir, ".");
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
out:
    if (fp) fclose(fp);
    if (tmp[0]) unlink(tmp);
    free(hdr);
    json_decref(root);
    return s;
}
