/* The caching device allocator (engine/alloc.c): exact accounting with the
 * cache (in_use as requested-rounded bytes, cached blocks reported apart,
 * reserved = in_use + cached), reuse of exact sizes, the cap applied to what
 * is reserved (cached blocks are given back before a request fails), and
 * bg_alloc_trim. One CPU test checks that the CPU allocator never caches. */
#include <string.h>
#include "harness.h"
#ifdef BG_WITH_CUDA
#include "../engine/cuda_graph.h"
#include "../kernels/cuda_api.h"
#endif

BG_TEST(alloc_cpu_never_caches)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    void *p = NULL;
    CHECK_OK(&ctx, bg_alloc(&ctx, BG_CPU, 1000, "a", &p));
    bg_free(&ctx, BG_CPU, p, 1000);
    const bg_allocator *a = &ctx.alloc[BG_CPU];
    CHECK(a->in_use == 0 && a->cached == 0 && bg_alloc_reserved(&ctx, BG_CPU) == 0, "in_use %zu cached %zu", a->in_use,
          a->cached);
    CHECK(a->n_requests == 1 && a->n_device_allocs == 1 && a->peak_reserved == 1024, "requests %llu, peak reserved %zu",
          (unsigned long long)a->n_requests, a->peak_reserved);
    bg_alloc_trim(&ctx, BG_CPU); /* nothing to do, must be harmless */
    bg_ctx_free(&ctx);
}

BG_GPU_TEST(gpu_alloc_cache_accounting)
{
    bg_ctx gpu;
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 1));
    if (tc->failures) return;
    const bg_allocator *a = &gpu.alloc[BG_CUDA];
    void *p = NULL, *q = NULL;
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 100000, "a", &p));
    CHECK(a->in_use == bg_alloc_rounded(100000) && a->cached == 0, "in_use %zu cached %zu", a->in_use, a->cached);
    bg_free(&gpu, BG_CUDA, p, 100000);
    CHECK(a->in_use == 0 && a->cached == bg_alloc_rounded(100000), "after free: in_use %zu cached %zu", a->in_use,
          a->cached);
    CHECK(a->peak == bg_alloc_rounded(100000), "peak %zu", a->peak);
    /* the same rounded size comes back from the cache, without a device call */
    uint64_t dev = a->n_device_allocs;
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 99999, "b", &q));
    CHECK(q == p && a->n_device_allocs == dev, "exact-size reuse: %p vs %p, device allocs %llu -> %llu", q, p,
          (unsigned long long)dev, (unsigned long long)a->n_device_allocs);
    CHECK(a->cached == 0 && a->in_use == bg_alloc_rounded(100000), "after reuse: in_use %zu cached %zu", a->in_use,
          a->cached);
    /* another size does not take it */
    void *r = NULL;
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 5000, "c", &r));
    CHECK(r != q, "a different size reused a block");
    bg_free(&gpu, BG_CUDA, q, 99999);
    bg_free(&gpu, BG_CUDA, r, 5000);
    CHECK(bg_alloc_reserved(&gpu, BG_CUDA) == a->in_use + a->cached && a->in_use == 0, "reserved %zu",
          bg_alloc_reserved(&gpu, BG_CUDA));
    CHECK(a->peak_reserved == bg_alloc_rounded(100000) + bg_alloc_rounded(5000), "peak reserved %zu", a->peak_reserved);
    bg_alloc_trim(&gpu, BG_CUDA);
    CHECK(a->cached == 0 && a->cache == NULL, "trim left %zu cached", a->cached);
    bg_ctx_free(&gpu);
}

BG_GPU_TEST(gpu_alloc_cap_counts_reserved_bytes)
{
    bg_ctx gpu;
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 1));
    if (tc->failures) return;
    const bg_allocator *a = &gpu.alloc[BG_CUDA];
    bg_alloc_set_cap(&gpu, BG_CUDA, 1 << 20);
    void *p = NULL, *q = NULL;
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 600000, "a", &p));
    bg_free(&gpu, BG_CUDA, p, 600000); /* cached: reserved stays 600,064 */
    /* 700,000 does not fit next to the cached block: the cache gives it back first */
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 700000, "b", &q));
    CHECK(a->cached == 0 && a->in_use == bg_alloc_rounded(700000), "in_use %zu cached %zu", a->in_use, a->cached);
    CHECK(bg_alloc_reserved(&gpu, BG_CUDA) <= (size_t)1 << 20, "reserved %zu over the cap", bg_alloc_reserved(&gpu, BG_CUDA));
    /* past the cap with nothing cached: a clean failure naming the request and the cap */
    void *r = NULL;
    CHECK_ERR(&gpu, bg_alloc(&gpu, BG_CUDA, 400000, "activations.c", &r), BG_ERR_OOM, "'activations.c'");
    CHECK(strstr(gpu.err, "cap 1048576"), "message must name the cap: %s", gpu.err);
    CHECK(r == NULL && a->in_use == bg_alloc_rounded(700000), "a failed request changed in_use to %zu", a->in_use);
    /* lowering the cap under what is cached trims the cache at once */
    bg_free(&gpu, BG_CUDA, q, 700000);
    bg_alloc_set_cap(&gpu, BG_CUDA, 4096);
    CHECK(a->cached == 0, "cache above a lowered cap: %zu", a->cached);
    bg_alloc_trim(&gpu, BG_CUDA);
    bg_ctx_free(&gpu);
}

/* CUDA allocations of a CPU context (the op-case harness) are not cached. */
BG_GPU_TEST(gpu_alloc_cpu_context_does_not_cache)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    void *p = NULL;
    CHECK_OK(&ctx, bg_alloc(&ctx, BG_CUDA, 4096, "x", &p));
    bg_free(&ctx, BG_CUDA, p, 4096);
    CHECK(ctx.alloc[BG_CUDA].cached == 0 && ctx.alloc[BG_CUDA].in_use == 0, "cached %zu", ctx.alloc[BG_CUDA].cached);
    bg_ctx_free(&ctx);
}

/* Blocks freed inside a CUDA graph capture are pinned to the graph: reused
 * within the capture, never handed out after it, counted in in_use until
 * the graph releases them (allocator logic only: no real capture needed). */
BG_GPU_TEST(gpu_alloc_capture_pins_freed_blocks)
{
    bg_ctx gpu;
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 1));
    if (tc->failures) return;
    const bg_allocator *a = &gpu.alloc[BG_CUDA];
    void *w = NULL, *w2 = NULL, *after = NULL;
    bg_alloc_capture_begin(&gpu, BG_CUDA);
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 3000, "workspace", &w));
    bg_free(&gpu, BG_CUDA, w, 3000);
    CHECK(a->in_use == bg_alloc_rounded(3000) && a->cached == 0, "freed in capture: in_use %zu cached %zu", a->in_use,
          a->cached);
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 3000, "workspace", &w2));
    CHECK(w2 == w && a->in_use == bg_alloc_rounded(3000), "reuse inside the capture: %p vs %p, in_use %zu", w2, w,
          a->in_use);
    bg_free(&gpu, BG_CUDA, w2, 3000);
    bg_alloc_blocks *pinned = bg_alloc_capture_end(&gpu, BG_CUDA);
    CHECK(pinned && bg_alloc_blocks_bytes(pinned) == bg_alloc_rounded(3000), "pinned %zu bytes",
          bg_alloc_blocks_bytes(pinned));
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 3000, "other", &after));
    CHECK(after != w, "a pinned block was handed out after the capture");
    bg_free(&gpu, BG_CUDA, after, 3000);
    bg_alloc_blocks_release(&gpu, BG_CUDA, pinned);
    CHECK(a->in_use == 0 && a->cached == 2 * bg_alloc_rounded(3000) && a->n_alloc == 0,
          "after release: in_use %zu cached %zu live %llu", a->in_use, a->cached, (unsigned long long)a->n_alloc);
    bg_alloc_trim(&gpu, BG_CUDA);
    bg_ctx_free(&gpu);
}

#ifdef BG_WITH_CUDA
typedef struct {
    size_t bytes;
    void *p;
} capture_request;

static bg_status allocate_in_capture(bg_ctx *ctx, void *arg)
{
    capture_request *c = arg;
    return bg_alloc(ctx, BG_CUDA, c->bytes, "new size in capture", &c->p);
}
#endif

/* A step that asks, inside a real stream capture, for a size the cache
 * lacks: cudaMalloc is refused there, and so is cudaFree. The request must
 * fail at once, naming the capture, with the cache and its accounting as
 * they were: a cached block must not leave the books while the device still
 * holds it (trimming afterwards gives every byte back). */
BG_GPU_TEST(gpu_alloc_capture_failure_keeps_the_cache)
{
#ifdef BG_WITH_CUDA
    bg_ctx gpu;
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 1));
    if (tc->failures) return;
    const bg_allocator *a = &gpu.alloc[BG_CUDA];
    size_t free0 = 0, free1 = 0, total = 0;
    CHECK(bg_cuda_mem_info(&free0, &total) == 0, "cudaMemGetInfo failed");
    void *p = NULL, *q = NULL;
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 1 << 20, "cached block", &p));
    bg_free(&gpu, BG_CUDA, p, 1 << 20);
    capture_request req = {3 << 20, NULL};
    bg_cuda_graph *g = NULL;
    bg_status s = bg_cuda_graph_capture(&gpu, allocate_in_capture, &req, &g);
    CHECK(s == BG_ERR_OOM && g == NULL, "capture that allocates: %s (%s)", bg_status_name(s), bg_errmsg(&gpu));
    CHECK(strstr(bg_errmsg(&gpu), "during CUDA graph capture") != NULL, "message: %s", bg_errmsg(&gpu));
    bg_clear_error(&gpu);
    CHECK(a->cached == bg_alloc_rounded(1 << 20) && a->in_use == 0, "after the failed capture: cached %zu in_use %zu",
          a->cached, a->in_use);
    CHECK_OK(&gpu, bg_alloc(&gpu, BG_CUDA, 1 << 20, "cached block again", &q));
    CHECK(q == p, "the cached block was not reused (%p vs %p)", q, p);
    bg_free(&gpu, BG_CUDA, q, 1 << 20);
    bg_alloc_trim(&gpu, BG_CUDA);
    CHECK(bg_cuda_mem_info(&free1, &total) == 0, "cudaMemGetInfo failed");
    CHECK(free1 + (1 << 19) >= free0, "device memory leaked: %zu bytes free before, %zu after", free0, free1);
    bg_ctx_free(&gpu);
#else
    SKIP("CPU-only build");
#endif
}
