/* A capped allocator with exact accounting. Every byte the engine takes on a
 * device goes through here, so `in_use` and `peak` are the real numbers the
 * profile phase reads when it searches the largest batch under a memory cap.
 * Sizes are counted as requested, rounded up to BG_ALLOC_ALIGN.
 *
 * CUDA contexts cache device blocks. Freeing a CUDA tensor of a context
 * created for BG_CUDA keeps its block in a per-context cache instead of
 * calling cudaFree (which synchronises the device), and a later request of
 * the same rounded size takes it back. Blocks are exactly the rounded
 * request size (no splitting, no size classes), so:
 *   in_use  = bytes of live allocations (as requested, rounded) - unchanged;
 *   cached  = bytes of free blocks kept for reuse;
 *   reserved = in_use + cached = what the device has given this context;
 *   peak    = the high-water mark of in_use (what the program needed);
 *   peak_reserved = the high-water mark of reserved.
 * The cap bounds what is reserved from the device: a request that would
 * push in_use + cached past it first returns cached blocks to the device,
 * then fails (BG_ERR_OOM, naming the request and the cap) only if in_use +
 * request > cap, exactly as without a cache. Every context uses one stream,
 * so a block freed by one op and handed to the next is stream-ordered: the
 * new owner's work cannot start before the old owner's finished.
 * CPU allocations and CUDA allocations of non-CUDA contexts (the test
 * harness runs CUDA ops from CPU contexts) are never cached.
 *
 * CUDA graph capture (engine/cuda_graph.c): a captured step keeps the
 * device pointers it used. A block an op allocates and frees inside the
 * capture (a per-call workspace) must therefore never go to another owner
 * while the graph exists. Between bg_alloc_capture_begin and _end such
 * blocks go to a capture-only free list (later requests of the capture may
 * take them again: stream order holds inside the graph), and _end hands them
 * to the graph, pinned. They stay counted in in_use (the step needs them)
 * until bg_alloc_blocks_release, when the graph is freed, moves them to the
 * cache. */
#ifndef BG_ALLOC_H
#define BG_ALLOC_H
#include <stddef.h>
#include <stdint.h>

#define BG_ALLOC_ALIGN 256

struct bg_alloc_cache;

typedef struct {
    size_t cap;       /* 0 = unlimited; bounds reserved bytes (in_use + cached) */
    size_t in_use;    /* bytes currently allocated (rounded) */
    size_t peak;      /* high-water mark of in_use */
    uint64_t n_alloc; /* number of live allocations */
    size_t cached;            /* free device blocks kept for reuse (CUDA contexts) */
    size_t peak_reserved;     /* high-water mark of in_use + cached */
    uint64_t n_requests;      /* allocation calls so far (a CUDA graph capture checks none happen) */
    uint64_t n_device_allocs; /* of those, the ones that went to the device (cache misses) */
    struct bg_alloc_cache *cache;
    int capturing;                        /* between bg_alloc_capture_begin and _end */
    struct bg_alloc_cache *capture_free;  /* blocks freed during the capture */
} bg_allocator;

/* Blocks pinned by a captured CUDA graph. */
typedef struct bg_alloc_cache bg_alloc_blocks;

struct bg_ctx;
size_t bg_alloc_rounded(size_t bytes);
/* Allocate `bytes` on the context's allocator for `device` (an int so this
 * header need not include context.h). `what` names the request in errors. */
int bg_alloc(struct bg_ctx *ctx, int device, size_t bytes, const char *what, void **out);
void bg_free(struct bg_ctx *ctx, int device, void *p, size_t bytes);
void bg_alloc_set_cap(struct bg_ctx *ctx, int device, size_t cap);
void bg_alloc_reset_peak(struct bg_ctx *ctx, int device);
/* in_use + cached. */
size_t bg_alloc_reserved(const struct bg_ctx *ctx, int device);
/* Return every cached block to the device and free the cache's host memory.
 * bg_ctx_free must call this for each device (a context's cache otherwise
 * outlives it). Safe to call any time; live allocations are untouched. */
void bg_alloc_trim(struct bg_ctx *ctx, int device);

/* CUDA graph capture (see above). _end returns the pinned blocks (NULL when
 * none); _release gives them back to the cache once the graph is freed. */
void bg_alloc_capture_begin(struct bg_ctx *ctx, int device);
bg_alloc_blocks *bg_alloc_capture_end(struct bg_ctx *ctx, int device);
void bg_alloc_blocks_release(struct bg_ctx *ctx, int device, bg_alloc_blocks *blocks);
size_t bg_alloc_blocks_bytes(const bg_alloc_blocks *blocks); /* 0 for NULL */

#endif
