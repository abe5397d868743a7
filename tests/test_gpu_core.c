/* GPU suite: the core runtime on the CUDA backend. */
#include <string.h>
#include "harness.h"

/* The same (seed, offset) gives the same numbers on both backends. */
BG_GPU_TEST(gpu_philox_streams_match_cpu)
{
    bg_ctx cpu, gpu;
    bg_test_ctx(&cpu, 7);
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 7));
    if (tc->failures) return;
    int64_t n = 100003; /* not a multiple of 4: exercises the tail */
    bg_tensor *h = bg_tensor_new(&cpu, BG_CPU, BG_F32, 1, &n, "h");
    bg_tensor *d = bg_tensor_new(&gpu, BG_CUDA, BG_F32, 1, &n, "d");
    bg_tensor *back = bg_tensor_new(&cpu, BG_CPU, BG_F32, 1, &n, "back");
    CHECK_OK(&cpu, bg_tensor_fill_uniform(&cpu, h, -2, 3));
    CHECK_OK(&gpu, bg_tensor_fill_uniform(&gpu, d, -2, 3));
    CHECK_OK(&gpu, bg_tensor_download(&gpu, d, back->data, bg_nbytes(back)));
    CHECK(memcmp(h->data, back->data, bg_nbytes(h)) == 0, "uniform draws differ between cpu and cuda");
    CHECK_OK(&cpu, bg_tensor_fill_normal(&cpu, h, 1, 2));
    CHECK_OK(&gpu, bg_tensor_fill_normal(&gpu, d, 1, 2));
    CHECK_OK(&gpu, bg_tensor_download(&gpu, d, back->data, bg_nbytes(back)));
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = bg_get(h, i), b = bg_get(back, i), e = fabs(a - b) / fmax(1.0, fabs(a));
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    CHECK(worst <= 1e-6, "normal draws differ by %g (relative)", worst);
    bg_tensor_free(&cpu, h);
    bg_tensor_free(&cpu, back);
    bg_tensor_free(&gpu, d);
    bg_ctx_free(&gpu);
}

/* The cap holds on the device too, with exact accounting. */
BG_GPU_TEST(gpu_alloc_cap)
{
    bg_ctx gpu;
    CHECK_OK(&gpu, bg_ctx_init(&gpu, BG_CUDA, 1));
    if (tc->failures) return;
    bg_alloc_set_cap(&gpu, BG_CUDA, 1 << 20);
    int64_t n = 200000; /* 800,000 B */
    bg_tensor *a = bg_tensor_new(&gpu, BG_CUDA, BG_F32, 1, &n, "a");
    CHECK(a && gpu.alloc[BG_CUDA].in_use == bg_alloc_rounded(800000), "in_use %zu", gpu.alloc[BG_CUDA].in_use);
    bg_tensor *b = bg_tensor_new(&gpu, BG_CUDA, BG_F32, 1, &n, "b");
    CHECK(!b && gpu.status == BG_ERR_OOM && strstr(gpu.err, "'b'") && strstr(gpu.err, "cap 1048576"),
          "second allocation must hit the cap: %s", gpu.err);
    bg_tensor_free(&gpu, a);
    CHECK(gpu.alloc[BG_CUDA].in_use == 0, "in_use after free %zu", gpu.alloc[BG_CUDA].in_use);
    bg_ctx_free(&gpu);
}
