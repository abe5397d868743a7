/* A threaded JPEG loader for ImageNet-style folders (root/<class>/<file>).
 *
 * bg_jpeg_list_folder lists the files without decoding them. A bg_jpeg_loader
 * runs N decode threads that fill a ring of K batch slots (pinned host memory
 * from cudaHostAlloc when a CUDA device is present, else malloc); the trainer
 * takes batches in order with bg_jpeg_loader_next and hands each slot back
 * with bg_jpeg_loader_release once it no longer reads it (after its
 * asynchronous host->device copy has finished, say). It only waits when the
 * decoders do not keep up; the wait is measured.
 *
 * Per image: train: RandomResizedCrop to size x size (TurboJPEG decodes in the
 * DCT domain at 1/2..1/8 when the crop is much larger than the output) and a
 * horizontal flip; eval: Resize(resize) + CenterCrop(size), also decoded
 * DCT-scaled when the image is much larger. Then (p/255 - mean)/std to NHWC
 * f32, or f16 rounded to nearest.
 *
 * Determinism: epoch e's order is bg_shuffle(0..n-1, seed, e) (identity when
 * shuffle is off); the image at position q of epoch e draws its crop and flip
 * from Philox(seed, step = e, pos = q) (bg_jpeg_rrc). Every value is a pure
 * function of (seed, epoch, position), so batches are bit-identical for any
 * thread count.
 *
 * Bad images: by default the batch holding one fails with BG_ERR_FORMAT (or
 * BG_ERR_IO) naming the file. With skip_bad the image is replaced by the next
 * readable one in list order ((i+1) mod n, ...; same augmentation draws, so
 * still deterministic) and counted in the statistics. */
#ifndef BG_JPEG_LOADER_H
#define BG_JPEG_LOADER_H
#include <stdbool.h>
#include <stdint.h>
#include "../engine/context.h"
#include "transforms.h"

typedef struct {
    int64_t n;            /* images */
    char **paths;         /* n paths "root/class/file" */
    int32_t *labels;      /* n labels: rank of the class directory in byte order */
    int n_classes;
    char **class_names;   /* n_classes directory names */
} bg_jpeg_list;

/* Classes are the subdirectories of root in byte order, files sorted by name;
 * names starting with '.' are ignored. max_per_class > 0 keeps the first K
 * files of each class. Nothing is opened but directories. */
bg_status bg_jpeg_list_folder(bg_ctx *ctx, const char *root, int max_per_class, bg_jpeg_list *list);
/* Safe on a zeroed or half-built list; zeroes it. */
void bg_jpeg_list_free(bg_jpeg_list *list);
/* Seeded class-balanced subsets of a list (augment/jpeg_subset.c), drawn by
 * the same samplers as the in-memory data sets (bg_subset_per_class,
 * bg_split_per_class): `keep` of each class (0 = all), then `split` of each
 * kept class carved out into *split_out (may be NULL when split is 0). The
 * outputs own copies of the paths and class names. */
bg_status bg_jpeg_list_subset(bg_ctx *ctx, const bg_jpeg_list *src, const char *name, int keep, uint64_t seed,
                              int split, uint64_t split_seed, bg_jpeg_list *out, bg_jpeg_list *split_out);

typedef struct {
    int batch;            /* images per batch (> 0) */
    int size;             /* output side S: batches are batch x S x S x 3 */
    bool train;           /* true: RandomResizedCrop + flip; false: resize + centre crop */
    int resize;           /* eval: shorter side before the crop; 0 = round(size * 256 / 224) */
    bool flip;            /* train: random horizontal flip, p = 0.5 */
    bg_rrc_opts rrc;      /* train: all zero = torchvision defaults (0.08..1, 3/4..4/3) */
    float mean[3], std[3];/* all zero = ImageNet (0.485 0.456 0.406 / 0.229 0.224 0.225) */
    bool shuffle;         /* reshuffle every epoch */
    bool drop_last;       /* drop the last partial batch of an epoch (train graphs have one shape) */
    int64_t epochs;       /* stop after this many epochs; 0 = endless */
    int threads;          /* decode threads; 0 = 4 */
    int prefetch;         /* ready-batch slots K; 0 = 2 * threads, at least 2 */
    bool f16;             /* output IEEE half instead of f32 */
    bool skip_bad;        /* replace unreadable images, counted, instead of failing */
    uint64_t seed;
    int64_t first_batch;  /* start at this batch number (epoch * steps_per_epoch + index): a resumed
                             run's position. Every batch is a function of its number, so the stream
                             from here is exactly the one a start at 0 would have reached */
} bg_jpeg_loader_opts;

typedef struct {
    void *x;              /* n x S x S x 3, f32 or f16 (pinned when a CUDA device is present) */
    int32_t *y;           /* n labels */
    int64_t n;            /* images in this batch; 0 = no more batches (epochs done) */
    int64_t epoch;        /* epoch of this batch */
    int64_t index;        /* batch index within the epoch */
    int64_t seq;          /* batch number since the start */
    int slot;             /* internal: the slot to release */
    bool f16, pinned;
} bg_jpeg_batch;

typedef struct {
    int64_t batches;      /* batches handed to the consumer */
    int64_t images;       /* images decoded (skipped replacements included) */
    int64_t skipped;      /* bad images replaced (skip_bad) */
    double wait_s;        /* time the consumer spent waiting in bg_jpeg_loader_next */
    char skip_note[256];  /* why the first skipped image was skipped */
} bg_jpeg_loader_stats;

typedef struct bg_jpeg_loader bg_jpeg_loader;

/* Starts the threads. `list` must outlive the loader. On failure *out is NULL. */
bg_status bg_jpeg_loader_start(bg_ctx *ctx, const bg_jpeg_list *list, const bg_jpeg_loader_opts *opts,
                               bg_jpeg_loader **out);
/* Batches per epoch. */
int64_t bg_jpeg_loader_steps_per_epoch(const bg_jpeg_loader *ld);
/* The next batch in order, waiting if needed. At most K batches may be held
 * (taken and not released); asking for one more fails with BG_ERR_ARG. After
 * the last epoch, BG_OK with batch->n == 0. A decode error fails here with the
 * file's name, and every later call fails the same way. Errors go to the ctx
 * given to bg_jpeg_loader_start; call from one consumer thread. */
bg_status bg_jpeg_loader_next(bg_jpeg_loader *ld, bg_jpeg_batch *batch);
/* Give the batch's slot back for refilling; batch->x is invalid afterwards. */
void bg_jpeg_loader_release(bg_jpeg_loader *ld, bg_jpeg_batch *batch);
void bg_jpeg_loader_get_stats(bg_jpeg_loader *ld, bg_jpeg_loader_stats *st);
/* Stops and joins the threads (mid-epoch is fine), frees every slot. NULL ok. */
void bg_jpeg_loader_free(bg_jpeg_loader *ld);

#endif
