/* Host-side datasets: readers for image folders (JPEG), the official CIFAR
 * binary batches and idx files (MNIST, Fashion-MNIST), seeded samplers, and
 * batch assembly (uint8 HWC -> normalised float NHWC with crop/flip).
 *
 * Pixels live in host memory from plain malloc, not bg_alloc: the capped
 * allocator models the training working set (the profile phase reads its
 * peak to size batches), and a 150 MB dataset that never reaches the device
 * would distort that number. Everything here is owned by the bg_dataset and
 * released by bg_dataset_free.
 *
 * Randomness is Philox (engine/philox.h) keyed by the caller's seed, with a
 * distinct tag per use in the counter's top word, so the subset, the epoch
 * shuffle and the augmentation draws never share a stream:
 *   subset : ctr = {draw lo, draw hi, class, 'SUBS'}
 *   shuffle: ctr = {i lo, i hi, epoch, 'SHUF'}
 *   batch  : ctr = {position in batch, step lo, step hi, 'BTCH'}
 * Each value is a pure function of its counter, so results do not depend on
 * the number of threads. */
#ifndef BG_DATASET_H
#define BG_DATASET_H
#include <stdbool.h>
#include <stdint.h>
#include "../engine/context.h"

typedef struct {
    int64_t n;            /* images */
    int h, w, c;          /* every image has this shape */
    uint8_t *pixels;      /* n*h*w*c bytes, image-major, each image HWC row-major */
    int32_t *labels;      /* n labels in [0, n_classes) */
    int n_classes;
    char **class_names;   /* n_classes strings */
    int64_t n_skipped;    /* files skipped by skip_bad */
    char skip_note[256];  /* why the first skipped file was skipped */
    char source[256];     /* the path read, for messages */
} bg_dataset;

static inline uint8_t *bg_dataset_image(const bg_dataset *ds, int64_t i)
{
    return ds->pixels + (size_t)i * (size_t)ds->h * (size_t)ds->w * (size_t)ds->c;
}

/* Releases everything and zeroes *ds; safe on a zeroed or half-built dataset. */
void bg_dataset_free(bg_dataset *ds);

/* ---- shared by the readers (augment/dataset.c) ---- */

/* Allocate pixels and labels for n images of h*w*c; `file` names the source
 * in the out-of-memory message. */
bg_status bg_dataset_alloc(bg_ctx *ctx, bg_dataset *ds, int64_t n, int h, int w, int c,
                           const char *file);
/* Class names "0".."n-1". */
bg_status bg_dataset_number_names(bg_ctx *ctx, bg_dataset *ds, int n_classes);

/* ---- readers: on failure *ds is left empty and the message names the file ---- */

typedef struct {
    int max_per_class;    /* 0 = all; else the first K images (by name) of each class */
    bool skip_bad;        /* skip unreadable or non-JPEG files, counted in n_skipped */
} bg_folder_opts;

/* <root>/<class>/<image>: classes are the subdirectory names in byte order
 * (label = rank), images sorted by name; names starting with '.' are ignored.
 * Decoded to RGB (c = 3); all images must share one size. */
bg_status bg_read_image_folder(bg_ctx *ctx, const char *root, const bg_folder_opts *opts,
                               bg_dataset *ds);

/* Official CIFAR binary batches, read in order and concatenated. Records are
 * n_label_bytes label bytes + 3072 channel-planar bytes (R, G, B planes of
 * 32x32). n_label_bytes = 1: CIFAR-10 (10 classes); 2: CIFAR-100 (coarse,
 * fine: the fine label is used, 100 classes). Class names come from
 * batches.meta.txt / fine_label_names.txt beside the first file when present. */
bg_status bg_read_cifar_bin(bg_ctx *ctx, const char *const *paths, int n_paths,
                            int n_label_bytes, bg_dataset *ds);

/* idx3-ubyte images + idx1-ubyte labels, each gzip or plain. c = 1;
 * n_classes = largest label + 1; class names are the label numbers. */
bg_status bg_read_idx(bg_ctx *ctx, const char *images_path, const char *labels_path,
                      bg_dataset *ds);

/* ---- samplers (augment/subset.c) ---- */

/* n_per_class indices of each class, drawn without replacement by a seeded
 * partial Fisher-Yates over that class's indices. Returned sorted by class,
 * then by draw order (so the subset for K is a prefix of the one for K+1).
 * *idx_out is malloc'd; the caller frees it. */
bg_status bg_subset_per_class(bg_ctx *ctx, const bg_dataset *ds, int n_per_class, uint64_t seed,
                              int64_t **idx_out, int64_t *n_out);

/* Split the images idx[0..n) of ds into k_per_class per class (val, a
 * seeded draw) and the rest (in their order); fails naming the class when
 * one has too few images or none would be left to train on. */
bg_status bg_split_per_class(bg_ctx *ctx, const bg_dataset *ds, const int64_t *idx, int64_t n, int k_per_class,
                             uint64_t seed, int64_t **val, int64_t *n_val, int64_t **rest, int64_t *n_rest);

/* In-place Fisher-Yates of idx[0..n), a pure function of (seed, epoch). */
void bg_shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t epoch);

/* ---- batch assembly (augment/batch.c) ---- */

typedef struct {
    float mean[4], std[4]; /* per channel, in [0,1] pixel units: (p/255 - mean) / std */
    int crop_pad;          /* > 0: random crop of the image size from the image padded
                              with black (pixel 0, as torchvision's RandomCrop) by this */
    bool flip;             /* random horizontal flip, p = 0.5 */
    /* The HAET chain (augment/transforms.h), all off when zero:
     * crop -> flip -> AutoAugment -> Cutout -> normalise. */
    int autoaugment;       /* 0 off; 1 CIFAR-10 policy with PIL numerics (DeepVoltaire, as HAET
                              ran it); 2 torchvision's variant (BG_AUTOAUG_* in aa_numerics.h) */
    int cutout;            /* > 0: one square hole of this side per image, centre uniform */
    bool cutout_after_norm;/* false (HAET): the hole is black, cut before normalising;
                              true (upstream Cutout): the hole is 0 after normalising */
} bg_batch_opts;

/* Images idx[0..n) -> out_nhwc (n*h*w*c floats), labels -> labels_out (may be
 * NULL). The draws for batch position p are Philox(seed, {p, step, 'BTCH'});
 * AutoAugment and Cutout add the 'AUTO' and 'CUTO' blocks (aa_numerics.h). */
bg_status bg_make_batch(bg_ctx *ctx, const bg_dataset *ds, const int64_t *idx, int64_t n,
                        const bg_batch_opts *aug, uint64_t seed, uint64_t step,
                        float *out_nhwc, int32_t *labels_out);

/* ---- previews (augment/png_write.c) ---- */

/* 8-bit PNG, channels 1..4 (grey, grey+alpha, RGB, RGBA), rows top to bottom.
 * Written to "<path>.tmp" and renamed, so a reader never sees a partial file. */
bg_status bg_write_png(bg_ctx *ctx, const char *path, int w, int h, int channels,
                       const uint8_t *pixels);

#endif
