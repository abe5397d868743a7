/* The capped, accounted allocator and the CUDA block cache (semantics in
 * alloc.h). The cache is a plain array of free blocks searched from the end
 * for an exact size: the tape allocates the same shapes again and again
 * (re-recording a graph, the profile phase's batch search), and exact sizes
 * keep in_use + cached == reserved with no fragmentation to account for.
 * Requests come at recording time, not per step, so a linear scan is fine. */
#include "alloc.h"
#include <stdlib.h>
#include "context.h"
#ifdef BG_WITH_CUDA
#include "../kernels/cuda_api.h"
#endif

typedef struct {
    void *p;
    size_t bytes; /* rounded */
} cached_block;

struct bg_alloc_cache {
    cached_block *v;
    size_t n, cap;
};

size_t bg_alloc_rounded(size_t bytes)
{
    if (bytes == 0) bytes = 1;
    return (bytes + BG_ALLOC_ALIGN - 1) / BG_ALLOC_ALIGN * BG_ALLOC_ALIGN;
}

static void note_reserved(bg_allocator *a)
{
    size_t r = a->in_use + a->cached;
    if (r > a->peak_reserved) a->peak_reserved = r;
}

/* 0, or nonzero when the device refused (the block is still allocated). */
static int device_free(int device, void *p)
{
    if (device == BG_CPU) {
        free(p);
        return 0;
    }
#ifdef BG_WITH_CUDA
    return bg_cuda_free(p);
#else
    return 0;
#endif
}

/* Only CUDA allocations of CUDA contexts are cached (see alloc.h). */
static bool caching(const bg_ctx *ctx, int device) { return device == BG_CUDA && ctx->device == BG_CUDA; }

#ifdef BG_WITH_CUDA
/* Take a block of exactly r bytes from list c, most recently added first. */
static void *list_take(struct bg_alloc_cache *c, size_t r)
{
    if (!c) return NULL;
    for (size_t i = c->n; i-- > 0;) {
        if (c->v[i].bytes != r) continue;
        void *p = c->v[i].p;
        c->v[i] = c->v[--c->n];
        return p;
    }
    return NULL;
}

static void *cache_take(bg_allocator *a, size_t r)
{
    void *p = list_take(a->cache, r);
    if (p) a->cached -= r;
    return p;
}
#endif

/* Give cached blocks back to the device, oldest first, until `need` more
 * bytes fit under the cap (need == SIZE_MAX: all of them). A block the
 * device refuses to free (cudaFree fails inside a stream capture) stays in
 * the cache and in the accounting: it is still allocated. Never called
 * while capturing (bg_alloc fails fast instead). */
static void cache_release(bg_allocator *a, int device, size_t need)
{
    struct bg_alloc_cache *c = a->cache;
    if (!c || a->capturing) return;
    size_t i = 0;
    while (i < c->n) {
        if (need != SIZE_MAX && a->cap && a->in_use + a->cached <= a->cap && need <= a->cap - a->in_use - a->cached)
            break;
        if (device_free(device, c->v[i].p)) break;
        a->cached -= c->v[i].bytes;
        i++;
    }
    for (size_t j = i; j < c->n; j++) c->v[j - i] = c->v[j];
    c->n -= i;
}

/* Append a block to the list *cp (created on first use); false when host
 * memory runs out. */
static bool list_put(struct bg_alloc_cache **cp, void *p, size_t r)
{
    struct bg_alloc_cache *c = *cp;
    if (!c) {
        c = *cp = calloc(1, sizeof *c);
        if (!c) return false;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        cached_block *v = realloc(c->v, cap * sizeof *v);
        if (!v) return false;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = (cached_block){p, r};
    return true;
}

/* Keep a freed block; false (caller frees it) when host memory runs out. */
static bool cache_put(bg_allocator *a, void *p, size_t r)
{
    if (!list_put(&a->cache, p, r)) return false;
    a->cached += r;
    return true;
}

int bg_alloc(bg_ctx *ctx, int device, size_t bytes, const char *what, void **out)
{
    *out = NULL;
    if (device < 0 || device >= BG_NDEVICES)
        return bg_fail(ctx, BG_ERR_ARG, "allocation for '%s': unknown device %d", what, device);
    bg_allocator *a = &ctx->alloc[device];
    a->n_requests++;
    size_t r = bg_alloc_rounded(bytes);
    if (r < bytes) return bg_fail(ctx, BG_ERR_OOM, "allocation for '%s': %zu bytes overflows", what, bytes);
#ifdef BG_WITH_CUDA
    /* inside a capture, a block freed earlier in the same capture first:
     * it is still counted in in_use (see alloc.h) */
    if (a->capturing && caching(ctx, device)) {
        void *p = list_take(a->capture_free, r);
        if (p) {
            a->n_alloc++;
            *out = p;
            return BG_OK;
        }
    }
#endif
    if (a->cap && (r > a->cap || a->in_use > a->cap - r))
        return bg_fail(ctx, BG_ERR_OOM,
                       "allocation of %zu bytes for '%s' on %s exceeds the memory cap: %zu in use + %zu > cap %zu",
                       bytes, what, bg_device_name((bg_device)device), a->in_use, r, a->cap);
    void *p = NULL;
    if (device == BG_CPU) {
        p = aligned_alloc(BG_ALLOC_ALIGN, r);
        if (!p) return bg_fail(ctx, BG_ERR_OOM, "allocation of %zu bytes for '%s' on cpu failed", bytes, what);
        a->n_device_allocs++;
    } else {
#ifdef BG_WITH_CUDA
        if (caching(ctx, device)) p = cache_take(a, r);
        if (!p && a->capturing) {
            /* Inside a stream capture nothing may be given back (cudaFree is
             * forbidden there, and cudaMalloc too unless the capture is
             * relaxed): fail fast, leaving the cache and the accounting as
             * they are; the caller's capture falls back to eager work. */
            char err[200];
            if (a->cap && a->in_use + a->cached > a->cap - r)
                return bg_fail(ctx, BG_ERR_OOM,
                               "allocation of %zu bytes for '%s' during CUDA graph capture: the cap %zu would need cached "
                               "blocks freed, which a capture forbids",
                               bytes, what, a->cap);
            if (bg_cuda_malloc(&p, r, err, sizeof err))
                return bg_fail(ctx, BG_ERR_OOM, "allocation of %zu bytes for '%s' during CUDA graph capture failed: %s",
                               bytes, what, err);
            a->n_device_allocs++;
        } else if (!p) {
            /* make room under the cap from the cache first: in_use + r <= cap holds */
            if (a->cap) cache_release(a, device, r);
            char err[200];
            if (bg_cuda_malloc(&p, r, err, sizeof err)) {
                /* the device itself is full: give back every cached block, try once more */
                cache_release(a, device, SIZE_MAX);
                if (bg_cuda_malloc(&p, r, err, sizeof err))
                    return bg_fail(ctx, BG_ERR_OOM, "allocation of %zu bytes for '%s' on cuda failed: %s", bytes, what,
                                   err);
            }
            a->n_device_allocs++;
        }
#else
        return bg_fail(ctx, BG_ERR_UNSUPPORTED, "allocation for '%s' on cuda: this build has no CUDA", what);
#endif
    }
    a->in_use += r;
    a->n_alloc++;
    if (a->in_use > a->peak) a->peak = a->in_use;
    note_reserved(a);
    *out = p;
    return BG_OK;
}

void bg_free(bg_ctx *ctx, int device, void *p, size_t bytes)
{
    if (!p) return;
    bg_allocator *a = &ctx->alloc[device];
    size_t r = bg_alloc_rounded(bytes);
    a->n_alloc--;
    if (a->capturing && caching(ctx, device)) {
        /* the graph being captured may use this block: it stays in use;
         * if the list cannot grow, the block is kept forever (never reused) */
        list_put(&a->capture_free, p, r);
        return;
    }
    a->in_use -= r <= a->in_use ? r : a->in_use;
    if (caching(ctx, device) && cache_put(a, p, r)) return;
    device_free(device, p); /* a refusal here leaks the block: only a capture refuses, and then it is cached */
}

void bg_alloc_set_cap(bg_ctx *ctx, int device, size_t cap)
{
    bg_allocator *a = &ctx->alloc[device];
    a->cap = cap;
    /* a lower cap applies to what is cached at once */
    if (cap && a->in_use + a->cached > cap) cache_release(a, device, 0);
}

void bg_alloc_reset_peak(bg_ctx *ctx, int device)
{
    bg_allocator *a = &ctx->alloc[device];
    a->peak = a->in_use;
    a->peak_reserved = a->in_use + a->cached;
}

size_t bg_alloc_reserved(const bg_ctx *ctx, int device) { return ctx->alloc[device].in_use + ctx->alloc[device].cached; }

void bg_alloc_trim(bg_ctx *ctx, int device)
{
    bg_allocator *a = &ctx->alloc[device];
    if (!a->cache) return;
    cache_release(a, device, SIZE_MAX);
    free(a->cache->v);
    free(a->cache);
    a->cache = NULL;
}

void bg_alloc_capture_begin(bg_ctx *ctx, int device) { ctx->alloc[device].capturing = 1; }

bg_alloc_blocks *bg_alloc_capture_end(bg_ctx *ctx, int device)
{
    bg_allocator *a = &ctx->alloc[device];
    bg_alloc_blocks *b = a->capture_free;
    a->capture_free = NULL;
    a->capturing = 0;
    if (b && b->n == 0) {
        free(b->v);
        free(b);
        b = NULL;
    }
    return b;
}

void bg_alloc_blocks_release(bg_ctx *ctx, int device, bg_alloc_blocks *b)
{
    if (!b) return;
    bg_allocator *a = &ctx->alloc[device];
    for (size_t i = 0; i < b->n; i++) {
        size_t r = b->v[i].bytes;
        a->in_use -= r <= a->in_use ? r : a->in_use;
        if (!cache_put(a, b->v[i].p, r)) device_free(device, b->v[i].p);
    }
    free(b->v);
    free(b);
}

size_t bg_alloc_blocks_bytes(const bg_alloc_blocks *b)
{
    size_t t = 0;
    for (size_t i = 0; b && i < b->n; i++) t += b->v[i].bytes;
    return t;
}
