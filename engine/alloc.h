/* A capped allocator with exact accounting. Every byte the engine takes on a
 * device goes through here, so `in_use` and `peak` are the real numbers the
 * profile phase reads when it searches the largest batch under a memory cap.
 * Sizes are counted as requested, rounded up to BG_ALLOC_ALIGN. */
#ifndef BG_ALLOC_H
#define BG_ALLOC_H
#include <stddef.h>
#include <stdint.h>

#define BG_ALLOC_ALIGN 256

typedef struct {
    size_t cap;       /* 0 = unlimited */
    size_t in_use;    /* bytes currently allocated (rounded) */
    size_t peak;      /* high-water mark of in_use */
    uint64_t n_alloc; /* number of live allocations */
} bg_allocator;

struct bg_ctx;
size_t bg_alloc_rounded(size_t bytes);
/* Allocate `bytes` on the context's allocator for `device` (an int so this
 * header need not include context.h). `what` names the request in errors. */
int bg_alloc(struct bg_ctx *ctx, int device, size_t bytes, const char *what, void **out);
void bg_free(struct bg_ctx *ctx, int device, void *p, size_t bytes);
void bg_alloc_set_cap(struct bg_ctx *ctx, int device, size_t cap);
void bg_alloc_reset_peak(struct bg_ctx *ctx, int device);

#endif
