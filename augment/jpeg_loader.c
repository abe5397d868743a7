/* The threaded JPEG loader (augment/jpeg_loader.h).
 *
 * Batch number `seq` (counted from the start, across epochs) lives in slot
 * seq % K. A slot is FILLING while decoders write its images, READY when all
 * are in, HELD while the consumer has it, and moves on to seq + K when the
 * consumer releases it. Decoders claim images one at a time, in (seq, pos)
 * order, under the lock; a claim for a slot still held waits. Each image is a
 * pure function of (seed, epoch, position), so the claim order and the thread
 * count change nothing in the output. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "jpeg_loader.h"
#include "dataset.h"
#include "../engine/dtype.h"
#ifdef BG_WITH_CUDA
#include "../kernels/host_mem.h"
#include "../engine/clock.h"
#endif

/* ---------------------------------------------------------------- listing */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_strs(char **v, int64_t n)
{
    for (int64_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (!s) return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

/* Names in dir (not starting with '.') that are directories (want_dir) or
 * regular files, sorted bytewise. */
static bg_status list_dir(bg_ctx *ctx, const char *dir, bool want_dir, char ***out, int64_t *nout)
{
    *out = NULL;
    *nout = 0;
    DIR *d = opendir(dir);
    if (!d) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **v = NULL;
    int64_t n = 0, cap = 0;
    struct dirent *e;
    bg_status s = BG_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = join(dir, e->d_name);
        if (!full) { s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory listing it", dir); break; }
        struct stat st;
        bool keep = stat(full, &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(full);
        if (!keep) continue;
        if (n == cap) {
            int64_t nc = cap ? 2 * cap : 64;
            char **nv = realloc(v, (size_t)nc * sizeof *nv);
            if (!nv) { s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory listing it", dir); break; }
            v = nv;
            cap = nc;
        }
        if (!(v[n] = strdup(e->d_name))) { s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory listing it", dir); break; }
        n++;
    }
    closedir(d);
    if (s) { free_strs(v, n); return s; }
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    *nout = n;
    return BG_OK;
}

void bg_jpeg_list_free(bg_jpeg_list *l)
{
    if (!l) return;
    free_strs(l->paths, l->n);
    free(l->labels);
    free_strs(l->class_names, l->n_classes);
    memset(l, 0, sizeof *l);
}

bg_status bg_jpeg_list_folder(bg_ctx *ctx, const char *root, int max_per_class, bg_jpeg_list *l)
{
    if (!root || !l) return bg_fail(ctx, BG_ERR_ARG, "bg_jpeg_list_folder: NULL argument");
    memset(l, 0, sizeof *l);
    char **cls;
    int64_t ncls;
    bg_status s = list_dir(ctx, root, true, &cls, &ncls);
    if (s) return s;
    if (ncls == 0) return bg_fail(ctx, BG_ERR_FORMAT, "%s: no class subdirectories (expected root/<class>/<image>)", root);
    if (ncls > INT32_MAX) { free_strs(cls, ncls); return bg_fail(ctx, BG_ERR_FORMAT, "%s: too many classes", root); }
    l->class_names = cls;
    l->n_classes = (int)ncls;
    int64_t cap = 0;
    for (int c = 0; c < l->n_classes; c++) {
        char *dir = join(root, cls[c]);
        if (!dir) { s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory listing it", root); goto fail; }
        char **files;
        int64_t nf;
        s = list_dir(ctx, dir, false, &files, &nf);
        if (s) { free(dir); goto fail; }
        const int64_t listed = nf;
        if (max_per_class > 0 && nf > max_per_class) nf = max_per_class;
        if (l->n + nf > cap) {
            int64_t nc = cap ? cap : 256;
            while (nc < l->n + nf) nc *= 2;
            char **np = realloc(l->paths, (size_t)nc * sizeof *np);
            if (np) l->paths = np;
            int32_t *nl = np ? realloc(l->labels, (size_t)nc * sizeof *nl) : NULL;
            if (nl) l->labels = nl;
            if (!np || !nl) {
                free(dir);
                free_strs(files, listed);
                s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory listing it", root);
                goto fail;
            }
            cap = nc;
        }
        for (int64_t i = 0; i < nf && !s; i++) {
            char *p = join(dir, files[i]);
            if (!p) { s = bg_fail(ctx, BG_ERR_OOM, "%s: out of memory listing it", root); break; }
            l->paths[l->n] = p;
            l->labels[l->n++] = c;
        }
        /* list_dir may have returned more than max_per_class names */
        for (int64_t i = 0; i < listed; i++) free(files[i]);
        free(files);
        free(dir);
        if (s) goto fail;
    }
    if (l->n == 0) { s = bg_fail(ctx, BG_ERR_FORMAT, "%s: no image files under its class directories", root); goto fail; }
    return BG_OK;
fail:
    bg_jpeg_list_free(l);
    return s;
}

/* ----------------------------------------------------------------- loader */

enum { SLOT_IDLE, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct {
    void *x;
    int32_t *y;
    bool pinned;
    int state;
    int64_t seq, n, done;
    bg_status err;
    int64_t err_pos;
    char msg[512];
} slot_t;

struct bg_jpeg_loader {
    bg_ctx *ctx;
    const bg_jpeg_list *list;
    bg_jpeg_loader_opts o;
    int64_t spe, per_epoch, total;
    int K, nthreads, started;
    size_t img_vals;          /* S*S*3 */
    slot_t *slots;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    bool stop;
    /* claims */
    int64_t claim_seq, claim_pos, *order, order_epoch;
    /* consumer */
    int64_t next_seq;
    bg_status failed;
    char fail_msg[512];
    bg_jpeg_loader_stats st;
};

static int64_t batch_n(const bg_jpeg_loader *ld, int64_t seq)
{
    int64_t first = (seq % ld->spe) * ld->o.batch, left = ld->per_epoch - first;
    return left < ld->o.batch ? left : ld->o.batch;
}

/* Slot `s` takes batch `seq` (or goes idle past the end). Under the lock. */
static void slot_assign(bg_jpeg_loader *ld, slot_t *s, int64_t seq)
{
    s->seq = seq;
    s->done = 0;
    s->err = BG_OK;
    s->err_pos = -1;
    s->msg[0] = 0;
    if (seq < ld->total) {
        s->state = SLOT_FILLING;
        s->n = batch_n(ld, seq);
    } else {
        s->state = SLOT_IDLE;
        s->n = 0;
    }
}

typedef struct {
    bg_ctx ctx;               /* messages only */
    bg_jpeg j;
    uint8_t *u8;              /* S*S*3 */
    float *f;                 /* S*S*3 (f16 output) */
} worker_t;

/* Decode and transform list image `img` at epoch position q into w->u8. */
static bg_status decode_one(bg_jpeg_loader *ld, worker_t *w, int64_t img, int64_t epoch, int64_t q)
{
    const char *path = ld->list->paths[img];
    uint8_t *data = NULL;
    size_t n = 0;
    bg_status s = bg_read_file(&w->ctx, path, &data, &n);
    if (s) return s;
    const int S = ld->o.size;
    if (ld->o.train) {
        s = bg_jpeg_rrc(&w->ctx, &w->j, data, n, path, S, &ld->o.rrc, ld->o.flip, ld->o.seed, (uint64_t)epoch,
                        (uint32_t)q, w->u8);
    } else {
        int fw, fh;
        s = bg_jpeg_size(&w->ctx, &w->j, data, n, path, &fw, &fh);
        if (!s) {
            /* DCT-scale as long as the shorter side stays >= resize. */
            int R = ld->o.resize, mw = fw <= fh ? R : 1, mh = fw <= fh ? 1 : R;
            const uint8_t *px;
            int dw, dh;
            s = bg_jpeg_decode(&w->ctx, &w->j, data, n, path, mw, mh, &px, &dw, &dh);
            if (!s) s = bg_resize_center_crop(&w->ctx, px, dw, dh, 3, R, S, w->u8);
        }
    }
    free(data);
    return s;
}

static void *worker_main(void *arg)
{
    bg_jpeg_loader *ld = arg;
    worker_t w;
    memset(&w, 0, sizeof w);
    const size_t nv = ld->img_vals;
    w.u8 = malloc(nv);
    w.f = ld->o.f16 ? malloc(nv * sizeof *w.f) : NULL;
    bool oom = !w.u8 || (ld->o.f16 && !w.f);
    pthread_mutex_lock(&ld->mu);
    while (!ld->stop && ld->claim_seq < ld->total) {
        slot_t *s = &ld->slots[ld->claim_seq % ld->K];
        if (s->seq != ld->claim_seq || s->state != SLOT_FILLING) {
            pthread_cond_wait(&ld->work_cv, &ld->mu);
            continue;
        }
        const int64_t seq = ld->claim_seq, p = ld->claim_pos, epoch = seq / ld->spe;
        const int64_t q = (seq % ld->spe) * ld->o.batch + p;
        if (ld->order_epoch != epoch) {
            for (int64_t i = 0; i < ld->list->n; i++) ld->order[i] = i;
            if (ld->o.shuffle) bg_shuffle(ld->order, ld->list->n, ld->o.seed, (uint64_t)epoch);
            ld->order_epoch = epoch;
        }
        int64_t img = ld->order[q];
        if (++ld->claim_pos == s->n) ld->claim_pos = 0, ld->claim_seq++;
        pthread_mutex_unlock(&ld->mu);

        /* outside the lock: the slot cannot move on before its done count is full */
        bg_status err = BG_OK;
        int64_t skipped = 0, tried = 0;
        char note[256] = "";
        if (oom) {
            err = bg_fail(&w.ctx, BG_ERR_OOM, "jpeg loader: out of memory for a decode thread's buffers");
        } else {
            const int64_t N = ld->list->n, max_try = N < 64 ? N : 64;
            for (;;) {
                err = decode_one(ld, &w, img, epoch, q);
                tried++;
                if (!err || !ld->o.skip_bad) break;
                if (!skipped) snprintf(note, sizeof note, "%s", bg_errmsg(&w.ctx));
                skipped++;
                if (tried >= max_try) {
                    err = bg_fail(&w.ctx, err, "jpeg loader: %lld images in a row are unreadable; the first: %s",
                                  (long long)tried, note);
                    break;
                }
                img = (img + 1) % N;
            }
        }
        if (!err) {
            const size_t off = (size_t)p * nv;
            if (ld->o.f16) {
                bg_normalize_u8(w.u8, nv / 3, 3, ld->o.mean, ld->o.std, w.f);
                uint16_t *dst = (uint16_t *)s->x + off;
                for (size_t i = 0; i < nv; i++) dst[i] = bg_f32_to_f16(w.f[i]);
            } else {
                bg_normalize_u8(w.u8, nv / 3, 3, ld->o.mean, ld->o.std, (float *)s->x + off);
            }
            s->y[p] = ld->list->labels[img];
        }

        pthread_mutex_lock(&ld->mu);
        ld->st.images += tried;
        if (skipped) {
            if (!ld->st.skipped) snprintf(ld->st.skip_note, sizeof ld->st.skip_note, "%s", note);
            ld->st.skipped += skipped;
        }
        if (err && (!s->err || p < s->err_pos)) {
            s->err = err;
            s->err_pos = p;
            snprintf(s->msg, sizeof s->msg, "%s", bg_errmsg(&w.ctx));
        }
        if (++s->done == s->n) {
            s->state = SLOT_READY;
            pthread_cond_broadcast(&ld->ready_cv);
        }
    }
    pthread_mutex_unlock(&ld->mu);
    bg_jpeg_free(&w.j);
    free(w.u8);
    free(w.f);
    return NULL;
}

int64_t bg_jpeg_loader_steps_per_epoch(const bg_jpeg_loader *ld) { return ld ? ld->spe : 0; }

static void slot_free_mem(slot_t *s)
{
#ifdef BG_WITH_CUDA
    if (s->pinned) bg_host_free_pinned(s->x);
    else
#endif
        free(s->x);
    free(s->y);
    s->x = NULL;
    s->y = NULL;
}

void bg_jpeg_loader_free(bg_jpeg_loader *ld)
{
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_cond_broadcast(&ld->ready_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->started; i++) pthread_join(ld->th[i], NULL);
    for (int k = 0; ld->slots && k < ld->K; k++) slot_free_mem(&ld->slots[k]);
    free(ld->slots);
    free(ld->th);
    free(ld->order);
    pthread_cond_destroy(&ld->ready_cv);
    pthread_cond_destroy(&ld->work_cv);
    pthread_mutex_destroy(&ld->mu);
    free(ld);
}

bg_status bg_jpeg_loader_start(bg_ctx *ctx, const bg_jpeg_list *list, const bg_jpeg_loader_opts *opts,
                               bg_jpeg_loader **out)
{
    if (!out) return bg_fail(ctx, BG_ERR_ARG, "bg_jpeg_loader_start: NULL argument");
    *out = NULL;
    if (!list || !opts || list->n <= 0 || !list->paths || !list->labels)
        return bg_fail(ctx, BG_ERR_ARG, "bg_jpeg_loader_start: NULL argument or empty image list");
    bg_jpeg_loader_opts o = *opts;
    if (o.batch <= 0 || o.size <= 0 || o.size > 8192 || o.threads < 0 || o.threads > 256 || o.prefetch < 0 ||
        o.prefetch > 1024 || o.epochs < 0 || o.resize < 0 || o.first_batch < 0)
        return bg_fail(ctx, BG_ERR_ARG,
                       "jpeg loader: batch %d, size %d, threads %d, prefetch %d, epochs %lld, resize %d: out of range",
                       o.batch, o.size, o.threads, o.prefetch, (long long)o.epochs, o.resize);
    if (!o.threads) o.threads = 4;
    if (!o.prefetch) o.prefetch = 2 * o.threads;
    if (o.prefetch < 2) o.prefetch = 2;
    if (!o.resize) o.resize = (int)((int64_t)o.size * 256 / 224 + ((int64_t)o.size * 256 % 224 >= 112));
    if (o.resize < o.size) return bg_fail(ctx, BG_ERR_ARG, "jpeg loader: resize %d < crop %d", o.resize, o.size);
    if (o.rrc.scale_lo == 0 && o.rrc.scale_hi == 0 && o.rrc.ratio_lo == 0 && o.rrc.ratio_hi == 0)
        o.rrc = (bg_rrc_opts){0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0};
    if (!(o.rrc.scale_lo > 0 && o.rrc.scale_lo <= o.rrc.scale_hi && o.rrc.scale_hi <= 1 && o.rrc.ratio_lo > 0 &&
          o.rrc.ratio_lo <= o.rrc.ratio_hi))
        return bg_fail(ctx, BG_ERR_ARG, "jpeg loader: random-resized-crop scale %g..%g ratio %g..%g", o.rrc.scale_lo,
                       o.rrc.scale_hi, o.rrc.ratio_lo, o.rrc.ratio_hi);
    bool zero_norm = true;
    for (int c = 0; c < 3; c++) zero_norm = zero_norm && o.mean[c] == 0 && o.std[c] == 0;
    if (zero_norm) {
        const float m[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
        memcpy(o.mean, m, sizeof m);
        memcpy(o.std, sd, sizeof sd);
    }
    for (int c = 0; c < 3; c++)
        if (!(o.std[c] > 0) || o.std[c] != o.std[c] || o.mean[c] != o.mean[c])
            return bg_fail(ctx, BG_ERR_ARG, "jpeg loader: channel %d mean %g std %g (std must be > 0)", c,
                           (double)o.mean[c], (double)o.std[c]);
    int64_t spe = o.drop_last ? list->n / o.batch : (list->n + o.batch - 1) / o.batch;
    if (spe == 0)
        return bg_fail(ctx, BG_ERR_ARG, "jpeg loader: %lld images make no full batch of %d (drop_last)",
                       (long long)list->n, o.batch);

    bg_jpeg_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return bg_fail(ctx, BG_ERR_OOM, "jpeg loader: out of host memory");
    ld->ctx = ctx;
    ld->list = list;
    ld->o = o;
    ld->spe = spe;
    ld->per_epoch = o.drop_last ? spe * o.batch : list->n;
    ld->total = o.epochs ? o.epochs * spe : INT64_MAX;
    ld->K = o.prefetch;
    ld->nthreads = o.threads;
    ld->img_vals = (size_t)o.size * (size_t)o.size * 3;
    ld->order_epoch = -1;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work_cv, NULL);
    pthread_cond_init(&ld->ready_cv, NULL);
    ld->slots = calloc((size_t)ld->K, sizeof *ld->slots);
    ld->th = calloc((size_t)ld->nthreads, sizeof *ld->th);
    ld->order = malloc((size_t)list->n * sizeof *ld->order);
    bg_status s = BG_OK;
    if (!ld->slots || !ld->th || !ld->order) {
        s = bg_fail(ctx, BG_ERR_OOM, "jpeg loader: out of host memory");
        goto fail;
    }
    const size_t bytes = (size_t)o.batch * ld->img_vals * (o.f16 ? 2 : 4);
#ifdef BG_WITH_CUDA
    bool pin = bg_cuda_available();
#endif
    for (int k = 0; k < ld->K; k++) {
        slot_t *sl = &ld->slots[k];
#ifdef BG_WITH_CUDA
        char err[128];
        if (pin && bg_host_alloc_pinned(&sl->x, bytes, err, sizeof err) == 0) sl->pinned = true;
        else pin = false; /* fall back to pageable memory for the rest */
#endif
        if (!sl->x) sl->x = malloc(bytes);
        sl->y = malloc((size_t)o.batch * sizeof *sl->y);
        if (!sl->x || !sl->y) {
            s = bg_fail(ctx, BG_ERR_OOM, "jpeg loader: out of host memory for %d batches of %zu bytes", ld->K, bytes);
            goto fail;
        }
    }
    /* batch number seq lives in slot seq % K, from the first one on */
    for (int k = 0; k < ld->K; k++) slot_assign(ld, &ld->slots[(o.first_batch + k) % ld->K], o.first_batch + k);
    ld->claim_seq = ld->next_seq = o.first_batch;
    for (int i = 0; i < ld->nthreads; i++) {
        int e = pthread_create(&ld->th[i], NULL, worker_main, ld);
        if (e) {
            s = bg_fail(ctx, BG_ERR_OOM, "jpeg loader: cannot start decode thread %d: %s", i, strerror(e));
            goto fail;
        }
        ld->started++;
    }
    *out = ld;
    return BG_OK;
fail:
    bg_jpeg_loader_free(ld);
    return s;
}

bg_status bg_jpeg_loader_next(bg_jpeg_loader *ld, bg_jpeg_batch *b)
{
    if (!ld || !b) return ld ? bg_fail(ld->ctx, BG_ERR_ARG, "bg_jpeg_loader_next: NULL argument") : BG_ERR_ARG;
    memset(b, 0, sizeof *b);
    b->slot = -1;
    pthread_mutex_lock(&ld->mu);
    if (ld->failed) {
        bg_status f = ld->failed;
        pthread_mutex_unlock(&ld->mu);
        return bg_fail(ld->ctx, f, "%s", ld->fail_msg);
    }
    if (ld->next_seq >= ld->total) {
        pthread_mutex_unlock(&ld->mu);
        return BG_OK;
    }
    const int64_t seq = ld->next_seq;
    slot_t *s = &ld->slots[seq % ld->K];
    if (s->seq != seq) {
        pthread_mutex_unlock(&ld->mu);
        return bg_fail(ld->ctx, BG_ERR_ARG, "jpeg loader: all %d batch slots are held; release one before taking more",
                       ld->K);
    }
    if (s->state != SLOT_READY) {
        double t0 = bg_monotonic_s();
        while (s->state != SLOT_READY) pthread_cond_wait(&ld->ready_cv, &ld->mu);
        ld->st.wait_s += bg_monotonic_s() - t0;
    }
    if (s->err) {
        ld->failed = s->err;
        snprintf(ld->fail_msg, sizeof ld->fail_msg, "%s", s->msg);
        pthread_mutex_unlock(&ld->mu);
        return bg_fail(ld->ctx, ld->failed, "%s", ld->fail_msg);
    }
    s->state = SLOT_HELD;
    b->x = s->x;
    b->y = s->y;
    b->n = s->n;
    b->seq = seq;
    b->epoch = seq / ld->spe;
    b->index = seq % ld->spe;
    b->slot = (int)(seq % ld->K);
    b->f16 = ld->o.f16;
    b->pinned = s->pinned;
    ld->next_seq++;
    ld->st.batches++;
    pthread_mutex_unlock(&ld->mu);
    return BG_OK;
}

void bg_jpeg_loader_release(bg_jpeg_loader *ld, bg_jpeg_batch *b)
{
    if (!ld || !b || b->slot < 0 || b->slot >= ld->K || b->n == 0) return;
    pthread_mutex_lock(&ld->mu);
    slot_t *s = &ld->slots[b->slot];
    if (s->state == SLOT_HELD && s->seq == b->seq) {
        slot_assign(ld, s, s->seq + ld->K);
        pthread_cond_broadcast(&ld->work_cv);
    }
    pthread_mutex_unlock(&ld->mu);
    b->x = NULL;
    b->y = NULL;
    b->slot = -1;
}

void bg_jpeg_loader_get_stats(bg_jpeg_loader *ld, bg_jpeg_loader_stats *st)
{
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    *st = ld->st;
    pthread_mutex_unlock(&ld->mu);
}
