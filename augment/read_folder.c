/* Image-folder reader: <root>/<class>/<image>, JPEG through TurboJPEG.
 *
 * The listing is serial and sorted so labels and image order never depend on
 * the file system; decoding is parallel (one TurboJPEG handle per thread)
 * straight into the dataset's buffer. Failures are recorded per file and the
 * lowest-numbered one is decoded again serially to produce its message, so
 * the error reported is the same whatever the thread count. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include "dataset.h"

typedef struct {
    char **v;
    int n, cap;
} name_list;

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static char *path_join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    p[na] = '/';
    memcpy(p + na + 1, b, nb + 1);
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in `dir` that are directories (want_dirs) or regular files, sorted by
 * bytes (not locale) so the class -> label map is the same everywhere.
 * Hidden names are ignored: .DS_Store and editor files are not images. */
static bg_status list_dir(bg_ctx *ctx, const char *dir, bool want_dirs, const char *what,
                          name_list *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return bg_fail(ctx, BG_ERR_IO, "%s %s: cannot open: %s", what, dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        bool is_dir = e->d_type == DT_DIR, is_reg = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            /* Follow links: a folder of symlinks to images is a normal layout. */
            char *p = path_join(dir, e->d_name);
            struct stat st;
            if (p && stat(p, &st) == 0) {
                is_dir = S_ISDIR(st.st_mode);
                is_reg = S_ISREG(st.st_mode);
            } else if (p && !want_dirs) {
                is_reg = true; /* dangling link: let the decoder report it by name */
            }
            free(p);
        }
        if (want_dirs ? !is_dir : !is_reg) continue;
        if (out->n == out->cap) {
            int cap = out->cap ? out->cap * 2 : 64;
            char **v = realloc(out->v, (size_t)cap * sizeof *v);
            if (!v) goto oom;
            out->v = v;
            out->cap = cap;
        }
        if (!(out->v[out->n] = strdup(e->d_name))) goto oom;
        out->n++;
    }
    closedir(d);
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_names);
    return BG_OK;
oom:
    closedir(d);
    names_free(out);
    return bg_fail(ctx, BG_ERR_OOM, "%s %s: out of memory listing it", what, dir);
}

enum { DEC_OK = 0, DEC_IO, DEC_NOT_JPEG, DEC_CORRUPT, DEC_SIZE, DEC_OOM };

typedef struct {
    tjhandle tj;
    unsigned char *buf; /* file bytes, reused across files */
    size_t cap;
} decoder;

/* TurboJPEG 2.1 leaves a handle mid-header after a failed tjDecompressHeader3,
 * and the next file then fails too; a fresh handle after any failure keeps
 * one bad file from spoiling the rest (failures are rare, so this is cheap).
 * decode_file creates the handle lazily. */
static void decoder_reset(decoder *dc)
{
    if (dc->tj) tjDestroy(dc->tj);
    dc->tj = NULL;
}

static void decoder_free(decoder *dc)
{
    decoder_reset(dc);
    free(dc->buf);
    dc->buf = NULL;
    dc->cap = 0;
}

/* Decode `path` to RGB. With want_w == 0 the image only has to be valid (its
 * size is returned and the pixels go to a scratch buffer); otherwise it must
 * be want_w x want_h and lands in `out`. On failure msg says why, naming path. */
static int decode_file(decoder *dc, const char *path, int want_w, int want_h, uint8_t *out,
                       int *got_w, int *got_h, char *msg, size_t msgsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msgsz, "%s: cannot open: %s", path, strerror(errno));
        return DEC_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        snprintf(msg, msgsz, "%s: cannot stat: %s", path, strerror(errno));
        fclose(f);
        return DEC_IO;
    }
    size_t size = (size_t)st.st_size;
    if (size > dc->cap) {
        unsigned char *b = realloc(dc->buf, size);
        if (!b) {
            snprintf(msg, msgsz, "%s: cannot allocate %zu bytes to read it", path, size);
            fclose(f);
            return DEC_OOM;
        }
        dc->buf = b;
        dc->cap = size;
    }
    size_t got = size ? fread(dc->buf, 1, size, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    if (got != size) {
        snprintf(msg, msgsz, "%s: read %zu of %zu bytes%s%s", path, got, size, rerr ? ": " : "",
                 rerr ? strerror(errno) : "");
        return DEC_IO;
    }
    /* Every JPEG starts with SOI then a marker; checking it first gives a
     * clear "not a JPEG" instead of a decoder complaint about a text file. */
    if (size < 4 || dc->buf[0] != 0xFF || dc->buf[1] != 0xD8 || dc->buf[2] != 0xFF) {
        if (size == 0) {
            snprintf(msg, msgsz, "%s: empty file, not a JPEG image", path);
        } else {
            unsigned char b[4] = {0, 0, 0, 0};
            memcpy(b, dc->buf, size < 4 ? size : 4);
            snprintf(msg, msgsz, "%s: not a JPEG image (starts with %02x %02x %02x %02x)", path,
                     b[0], b[1], b[2], b[3]);
        }
        return DEC_NOT_JPEG;
    }
    if (!dc->tj && !(dc->tj = tjInitDecompress())) {
        snprintf(msg, msgsz, "%s: cannot create a JPEG decoder", path);
        return DEC_OOM;
    }
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(dc->tj, dc->buf, (unsigned long)size, &w, &h, &subsamp, &cs) != 0) {
        snprintf(msg, msgsz, "%s: corrupt JPEG header: %s", path, tjGetErrorStr2(dc->tj));
        decoder_reset(dc);
        return DEC_CORRUPT;
    }
    /* A file cut before its frame header "succeeds" without a size. */
    if (w <= 0 || h <= 0) {
        snprintf(msg, msgsz, "%s: corrupt or truncated JPEG: its %zu bytes end before the image size", path,
                 (size_t)size);
        decoder_reset(dc);
        return DEC_CORRUPT;
    }
    *got_w = w;
    *got_h = h;
    if (want_w && (w != want_w || h != want_h)) {
        snprintf(msg, msgsz, "%s: image is %dx%d, the others are %dx%d (WxH); "
                 "all images of a folder dataset must share one size", path, w, h, want_w, want_h);
        return DEC_SIZE;
    }
    uint8_t *dst = out, *scratch = NULL;
    if (!want_w) {
        if (!(scratch = malloc((size_t)w * (size_t)h * 3))) {
            snprintf(msg, msgsz, "%s: cannot allocate a %dx%d image", path, w, h);
            return DEC_OOM;
        }
        dst = scratch;
    }
    /* STOPONWARNING: a truncated file only raises a libjpeg warning ("premature
     * end of data") and would otherwise decode to a grey-padded image. */
    int rc = tjDecompress2(dc->tj, dc->buf, (unsigned long)size, dst, w, 0, h, TJPF_RGB,
                           TJFLAG_STOPONWARNING);
    free(scratch);
    if (rc != 0) {
        snprintf(msg, msgsz, "%s: corrupt or truncated JPEG: %s", path, tjGetErrorStr2(dc->tj));
        decoder_reset(dc);
        return DEC_CORRUPT;
    }
    return DEC_OK;
}

static void note_skip(bg_dataset *ds, const char *msg)
{
    if (ds->n_skipped++ == 0) snprintf(ds->skip_note, sizeof ds->skip_note, "%s", msg);
}

typedef struct {
    name_list classes;
    name_list *files; /* per class */
    char **class_dirs;
    char **paths;     /* one window of full paths */
    unsigned char *codes;
} folder_state;

static void state_free(folder_state *s)
{
    for (int k = 0; k < s->classes.n; k++) {
        if (s->files) names_free(&s->files[k]);
        if (s->class_dirs) free(s->class_dirs[k]);
    }
    free(s->files);
    free(s->class_dirs);
    names_free(&s->classes);
    free(s->paths);
    free(s->codes);
}

/* The first decodable image fixes the dataset's size. Bad files before it are
 * not counted here; the main pass meets them again and counts them once. */
static bg_status find_reference(bg_ctx *ctx, const folder_state *s, const char *root,
                                const bg_folder_opts *o, int *w, int *h)
{
    decoder dc = {NULL, NULL, 0};
    char msg[512] = "", first_bad[512] = "";
    int code = DEC_IO;
    for (int k = 0; k < s->classes.n && code != DEC_OK; k++) {
        for (int i = 0; i < s->files[k].n; i++) {
            char *p = path_join(s->class_dirs[k], s->files[k].v[i]);
            if (!p) { code = DEC_OOM; snprintf(msg, sizeof msg, "%s: out of memory", root); break; }
            code = decode_file(&dc, p, 0, 0, NULL, w, h, msg, sizeof msg);
            free(p);
            if (code == DEC_OK) break;
            if (!first_bad[0]) snprintf(first_bad, sizeof first_bad, "%s", msg);
            if (!o->skip_bad || code == DEC_OOM) break;
        }
        if (code != DEC_OK && (!o->skip_bad || code == DEC_OOM)) break;
    }
    decoder_free(&dc);
    if (code == DEC_OK) return BG_OK;
    if (!o->skip_bad || code == DEC_OOM)
        return bg_fail(ctx, code == DEC_OOM ? BG_ERR_OOM : code == DEC_IO ? BG_ERR_IO : BG_ERR_FORMAT,
                       "%s", msg);
    return bg_fail(ctx, BG_ERR_FORMAT, "image folder %s: no readable JPEG image (first: %s)", root,
                   first_bad);
}

/* Decode paths[0..m) into slots base..base+m of ds in parallel; codes[j] per file. */
static void decode_window(char **paths, int m, int w, int h, bg_dataset *ds, int64_t base,
                          unsigned char *codes)
{
    const size_t per = (size_t)w * (size_t)h * 3;
#pragma omp parallel
    {
        decoder dc = {NULL, NULL, 0};
        char msg[256];
#pragma omp for schedule(dynamic, 16)
        for (int j = 0; j < m; j++) {
            int gw, gh;
            codes[j] = (unsigned char)decode_file(&dc, paths[j], w, h,
                                                  ds->pixels + (size_t)(base + j) * per, &gw, &gh,
                                                  msg, sizeof msg);
        }
        decoder_free(&dc);
    }
}

/* Decode one file again, serially, for its message; the parallel loop keeps
 * only codes so that messages never race. */
static int redecode(const char *path, int w, int h, uint8_t *slot, char *msg, size_t msgsz)
{
    decoder dc = {NULL, NULL, 0};
    int gw, gh;
    int code = decode_file(&dc, path, w, h, slot, &gw, &gh, msg, msgsz);
    decoder_free(&dc);
    return code;
}

static bg_status fail_file(bg_ctx *ctx, const char *path, int w, int h, uint8_t *slot, int code)
{
    char msg[512] = "";
    int again = redecode(path, w, h, slot, msg, sizeof msg);
    if (again == DEC_OK) /* the file changed under us; still report the first result */
        snprintf(msg, sizeof msg, "%s: failed to decode (code %d), then succeeded on retry", path, code);
    code = again == DEC_OK ? code : again;
    return bg_fail(ctx, code == DEC_OOM ? BG_ERR_OOM : code == DEC_IO ? BG_ERR_IO : BG_ERR_FORMAT,
                   "%s", msg);
}

/* Decode the files of class k, stopping at `need` good images; appends to ds. */
static bg_status read_class(bg_ctx *ctx, folder_state *s, int k, const bg_folder_opts *o, int w,
                            int h, bg_dataset *ds)
{
    const size_t per = (size_t)w * (size_t)h * 3;
    const name_list *fl = &s->files[k];
    int need = o->max_per_class > 0 && o->max_per_class < fl->n ? o->max_per_class : fl->n;
    int start = 0, got = 0;
    int64_t skipped_before = ds->n_skipped;
    /* Windows: with skip_bad a bad file is replaced by the next one by name,
     * so max_per_class still yields K images when the class has them. */
    while (need > 0 && start < fl->n) {
        int m = need < fl->n - start ? need : fl->n - start;
        for (int j = 0; j < m; j++) s->paths[j] = NULL;
        for (int j = 0; j < m; j++)
            if (!(s->paths[j] = path_join(s->class_dirs[k], fl->v[start + j]))) {
                for (int i = 0; i < j; i++) free(s->paths[i]);
                return bg_fail(ctx, BG_ERR_OOM, "class folder %s: out of memory", s->class_dirs[k]);
            }
        decode_window(s->paths, m, w, h, ds, ds->n, s->codes);
        bg_status st = BG_OK;
        int good = 0;
        for (int j = 0; j < m && st == BG_OK; j++) {
            int c = s->codes[j];
            if (c == DEC_OK) {
                if (good != j) /* close the gaps left by skipped files */
                    memmove(ds->pixels + (size_t)(ds->n + good) * per,
                            ds->pixels + (size_t)(ds->n + j) * per, per);
                ds->labels[ds->n + good] = k;
                good++;
            } else if (o->skip_bad && c != DEC_SIZE && c != DEC_OOM) {
                char msg[256] = "";
                /* Only the first skip keeps its reason. */
                if (ds->n_skipped == 0)
                    redecode(s->paths[j], w, h, ds->pixels + (size_t)(ds->n + j) * per, msg, sizeof msg);
                note_skip(ds, msg);
            } else {
                st = fail_file(ctx, s->paths[j], w, h, ds->pixels + (size_t)(ds->n + j) * per, c);
            }
        }
        for (int j = 0; j < m; j++) free(s->paths[j]);
        if (st != BG_OK) return st;
        ds->n += good;
        got += good;
        need -= good;
        start += m;
    }
    if (got == 0)
        return bg_fail(ctx, BG_ERR_FORMAT, "class folder %s: no readable images (%lld skipped: %s)",
                       s->class_dirs[k], (long long)(ds->n_skipped - skipped_before), ds->skip_note);
    return BG_OK;
}

bg_status bg_read_image_folder(bg_ctx *ctx, const char *root, const bg_folder_opts *opts,
                               bg_dataset *ds)
{
    if (!ds) return bg_fail(ctx, BG_ERR_ARG, "bg_read_image_folder: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!root) return bg_fail(ctx, BG_ERR_ARG, "bg_read_image_folder: root is NULL");
    bg_folder_opts o = opts ? *opts : (bg_folder_opts){0, false};
    if (o.max_per_class < 0)
        return bg_fail(ctx, BG_ERR_ARG, "image folder %s: max_per_class %d < 0", root, o.max_per_class);
    snprintf(ds->source, sizeof ds->source, "%s", root);

    folder_state s;
    memset(&s, 0, sizeof s);
    bg_status st = list_dir(ctx, root, true, "image folder", &s.classes);
    if (st != BG_OK) return st;
    if (s.classes.n == 0) {
        state_free(&s);
        return bg_fail(ctx, BG_ERR_FORMAT, "image folder %s: no class subdirectories", root);
    }
    int nk = s.classes.n;
    s.files = calloc((size_t)nk, sizeof *s.files);
    s.class_dirs = calloc((size_t)nk, sizeof *s.class_dirs);
    if (!s.files || !s.class_dirs) {
        state_free(&s);
        return bg_fail(ctx, BG_ERR_OOM, "image folder %s: out of memory", root);
    }
    int64_t bound = 0;
    int widest = 1;
    for (int k = 0; k < nk && st == BG_OK; k++) {
        if (!(s.class_dirs[k] = path_join(root, s.classes.v[k]))) {
            st = bg_fail(ctx, BG_ERR_OOM, "image folder %s: out of memory", root);
            break;
        }
        st = list_dir(ctx, s.class_dirs[k], false, "class folder", &s.files[k]);
        if (st == BG_OK && s.files[k].n == 0)
            st = bg_fail(ctx, BG_ERR_FORMAT, "class folder %s: no images", s.class_dirs[k]);
        int take = o.max_per_class > 0 && o.max_per_class < s.files[k].n ? o.max_per_class : s.files[k].n;
        bound += take;
        if (take > widest) widest = take;
    }
    int w = 0, h = 0;
    if (st == BG_OK) st = find_reference(ctx, &s, root, &o, &w, &h);
    if (st == BG_OK) {
        s.paths = calloc((size_t)widest, sizeof *s.paths);
        s.codes = calloc((size_t)widest, 1);
        if (!s.paths || !s.codes) st = bg_fail(ctx, BG_ERR_OOM, "image folder %s: out of memory", root);
    }
    if (st == BG_OK) st = bg_dataset_alloc(ctx, ds, bound, h, w, 3, root);
    ds->n = 0; /* filled class by class */
    for (int k = 0; k < nk && st == BG_OK; k++) st = read_class(ctx, &s, k, &o, w, h, ds);
    if (st == BG_OK) {
        ds->class_names = calloc((size_t)nk, sizeof(char *));
        if (!ds->class_names) st = bg_fail(ctx, BG_ERR_OOM, "image folder %s: out of memory", root);
        else {
            ds->n_classes = nk;
            for (int k = 0; k < nk; k++) { /* hand the strings over instead of copying */
                ds->class_names[k] = s.classes.v[k];
                s.classes.v[k] = NULL;
            }
        }
    }
    state_free(&s);
    if (st != BG_OK) {
        bg_dataset_free(ds);
        return st;
    }
    /* Skipped files leave unused slots at the end; give them back. */
    if (ds->n < bound && ds->n > 0) {
        uint8_t *p = realloc(ds->pixels, (size_t)ds->n * (size_t)h * (size_t)w * 3);
        if (p) ds->pixels = p;
    }
    return BG_OK;
}
