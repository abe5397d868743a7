/* safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *   "__metadata__": {string: string}}), then the raw little-endian data.
 * Reading validates everything (header length against the file size, JSON,
 * dtypes, shapes against byte counts, offsets inside the data and not
 * overlapping) and names the file and tensor in every error. Writing goes to
 * a temporary file that is renamed into place. */
#ifndef BG_SAFETENSORS_H
#define BG_SAFETENSORS_H
#include "tensor.h"

#define BG_ST_MAX_DIMS 8

typedef struct {
    char name[256];
    char st_dtype[8];          /* as in the file: "F32", "F16", "F64", "I64", "I32", "U8", "BF16", ... */
    bg_dtype dtype;            /* BG_DTYPE_COUNT when the engine has no such dtype (I64, BF16...) */
    int ndim;
    int64_t shape[BG_ST_MAX_DIMS];
    size_t begin, end;         /* byte offsets into the data section */
} bg_st_entry;

typedef struct {
    char path[1024];
    bg_st_entry *entries;      /* in file order of offsets */
    int n;
    char **meta_keys, **meta_vals; /* __metadata__, both arrays of n_meta strings */
    int n_meta;
    unsigned char *data;       /* the data section */
    size_t data_len;
    void *base_;               /* whole-file buffer (implementation detail) */
    size_t base_len_;
} bg_st_file;

bg_status bg_st_open(bg_ctx *ctx, const char *path, bg_st_file *f);
/* Parse from memory (tests feed malformed buffers through this); `label`
 * stands for the path in messages. The buffer is copied. */
bg_status bg_st_parse(bg_ctx *ctx, const void *buf, size_t len, const char *label, bg_st_file *f);
void bg_st_close(bg_st_file *f);
const bg_st_entry *bg_st_find(const bg_st_file *f, const char *name);
const char *bg_st_meta(const bg_st_file *f, const char *key); /* NULL if absent */
const void *bg_st_bytes(const bg_st_file *f, const bg_st_entry *e);

/* Load one tensor as an engine tensor on `device`. I64 is narrowed to I32
 * (range checked), BF16 widened to F32. Fails naming the tensor if absent. */
bg_tensor *bg_st_load(bg_ctx *ctx, const bg_st_file *f, const char *name, bg_device device);

/* Write tensors (any device; copied to host as needed) with optional
 * metadata pairs. Tensor names come from `names` (or t->name when NULL).
 * Data is written contiguously in the given order; the header is padded with
 * spaces to a multiple of 8 bytes, as the reference implementation does. */
bg_status bg_st_save(bg_ctx *ctx, const char *path, bg_tensor *const *ts, const char *const *names,
                     int n, const char *const *meta_keys, const char *const *meta_vals, int n_meta);

#endif
