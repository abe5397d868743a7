/* Engine core: Philox, f16, allocator cap and accounting, tensors, params. */
#include <string.h>
#include "harness.h"
#include "../engine/philox.h"
#include "../ops/ops.h"

BG_TEST(philox_known_answers)
{
    /* Known-answer vectors of Philox-4x32-10 (Salmon et al., Random123). */
    struct { uint32_t ctr[4]; uint64_t key; uint32_t want[4]; } kat[] = {
        {{0, 0, 0, 0}, 0, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffffffffffull,
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0x299f31d0a4093822ull,
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    for (int i = 0; i < 3; i++) {
        bg_u32x4 c = {{kat[i].ctr[0], kat[i].ctr[1], kat[i].ctr[2], kat[i].ctr[3]}};
        bg_u32x4 r = bg_philox4x32_10(c, kat[i].key);
        for (int k = 0; k < 4; k++)
            CHECK(r.v[k] == kat[i].want[k], "vector %d word %d: %08x, want %08x", i, k, r.v[k], kat[i].want[k]);
    }
}

BG_TEST(philox_streams_are_reproducible)
{
    bg_ctx a, b;
    bg_test_ctx(&a, 42);
    bg_test_ctx(&b, 42);
    int64_t n = 1001;
    bg_tensor *x = bg_tensor_new(&a, BG_CPU, BG_F32, 1, &n, "x");
    bg_tensor *y = bg_tensor_new(&b, BG_CPU, BG_F32, 1, &n, "y");
    CHECK_OK(&a, bg_tensor_fill_normal(&a, x, 0, 1));
    CHECK_OK(&b, bg_tensor_fill_normal(&b, y, 0, 1));
    CHECK(memcmp(x->data, y->data, bg_nbytes(x)) == 0, "same seed, different numbers");
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += bg_get(x, i) / (double)n;
    for (int64_t i = 0; i < n; i++) var += (bg_get(x, i) - mean) * (bg_get(x, i) - mean) / (double)n;
    CHECK(fabs(mean) < 0.1 && fabs(var - 1) < 0.15, "N(0,1) draws: mean %g var %g", mean, var);
    /* the next draw continues the stream: different numbers */
    CHECK_OK(&a, bg_tensor_fill_normal(&a, x, 0, 1));
    CHECK(memcmp(x->data, y->data, bg_nbytes(x)) != 0, "stream did not advance");
    bg_tensor_free(&a, x);
    bg_tensor_free(&b, y);
}

BG_TEST(f16_conversion)
{
    struct { float f; uint16_t h; } cases[] = {
        {0.0f, 0x0000}, {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {1e6f, 0x7c00},
        {5.9604645e-08f, 0x0001}, {6.1035156e-05f, 0x0400}, {0.33325195f, 0x3555}, {1.0009766f, 0x3c01},
        {1.00048828125f, 0x3c00} /* tie -> even */, {1.00146484375f, 0x3c02} /* tie -> even (up) */,
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = bg_f32_to_f16(cases[i].f);
        CHECK(h == cases[i].h, "f32 %g -> f16 0x%04x, want 0x%04x", cases[i].f, h, cases[i].h);
    }
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite positive half round-trips */
        if (bg_f32_to_f16(bg_f16_to_f32((uint16_t)h)) != h) { CHECK(false, "round trip of 0x%04x", h); break; }
    CHECK(isnan(bg_f16_to_f32(bg_f32_to_f16(NAN))), "NaN must stay NaN");
}

BG_TEST(alloc_cap_and_peak_are_exact)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    bg_alloc_set_cap(&ctx, BG_CPU, 10 * 1024);
    int64_t s1 = 1000, s2 = 300; /* 4000 B -> 4096; 1200 B -> 1280 */
    bg_tensor *a = bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, &s1, "a");
    bg_tensor *b = bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, &s2, "b");
    CHECK(a && b, "allocations under the cap failed: %s", bg_errmsg(&ctx));
    CHECK(ctx.alloc[BG_CPU].in_use == 4096 + 1280, "in_use %zu", ctx.alloc[BG_CPU].in_use);
    int64_t big = 1500; /* 6000 B -> 6144: 5376 + 6144 > 10240 */
    bg_clear_error(&ctx);
    bg_tensor *c = bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, &big, "activations.c");
    CHECK(c == NULL, "allocation past the cap succeeded");
    CHECK(ctx.status == BG_ERR_OOM, "status %s", bg_status_name(ctx.status));
    CHECK(strstr(ctx.err, "activations.c") && strstr(ctx.err, "cap 10240") && strstr(ctx.err, "6000 bytes"),
          "message must name the request and the cap: %s", ctx.err);
    bg_tensor_free(&ctx, a);
    CHECK(ctx.alloc[BG_CPU].in_use == 1280, "in_use after free %zu", ctx.alloc[BG_CPU].in_use);
    CHECK(ctx.alloc[BG_CPU].peak == 4096 + 1280, "peak %zu", ctx.alloc[BG_CPU].peak);
    bg_tensor_free(&ctx, b);
    CHECK(ctx.alloc[BG_CPU].in_use == 0 && ctx.alloc[BG_CPU].n_alloc == 0, "leak in accounting");
}

BG_TEST(tensor_shapes_and_errors)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t sh[4] = {2, 3, 4, 5};
    bg_tensor *t = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, sh, "x");
    CHECK(t && bg_numel(t) == 120 && bg_nbytes(t) == 480, "numel");
    CHECK(t->stride[0] == 60 && t->stride[3] == 1 && bg_is_contiguous(t), "strides");
    CHECK(t->layout == BG_NHWC, "4-D tensors default to NHWC");
    char buf[64];
    CHECK(!strcmp(bg_shape_str(t, buf, sizeof buf), "[2, 3, 4, 5] f32 cpu"), "shape str %s", buf);
    /* an NCHW view of NHWC storage is expressible through strides */
    bg_tensor v = *t;
    v.alloc_bytes = 0;
    v.layout = BG_NCHW;
    int64_t N = 2, H = 3, W = 4, C = 5;
    v.shape[0] = N; v.shape[1] = C; v.shape[2] = H; v.shape[3] = W;
    v.stride[0] = H * W * C; v.stride[1] = 1; v.stride[2] = W * C; v.stride[3] = C;
    for (int64_t i = 0; i < 120; i++) bg_set(t, i, (double)i);
    CHECK(bg_get(&v, ((1 * C + 2) * H + 1) * W + 3) == (double)(((1 * H + 1) * W + 3) * C + 2), "NCHW view");
    CHECK(!bg_is_contiguous(&v), "the view is strided");
    int64_t bad[2] = {3, -1};
    CHECK(bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, bad, "neg") == NULL && strstr(ctx.err, "neg"), "negative dim");
    CHECK(bg_tensor_new(&ctx, BG_CPU, BG_F32, 5, sh, "five") == NULL && ctx.status == BG_ERR_SHAPE, "5 dims");
    bg_tensor *u = bg_tensor_new(&ctx, BG_CPU, BG_F64, 2, sh, "u");
    CHECK_ERR(&ctx, bg_tensor_copy(&ctx, u, t), BG_ERR_SHAPE, "'x' [2, 3, 4, 5] f32 cpu into 'u' [2, 3] f64 cpu");
    CHECK_ERR(&ctx, bg_tensor_upload(&ctx, u, buf, 3), BG_ERR_SHAPE, "3 bytes given");
#ifndef BG_WITH_CUDA
    CHECK(bg_tensor_new(&ctx, BG_CUDA, BG_F32, 1, sh, "gpu") == NULL && ctx.status == BG_ERR_UNSUPPORTED,
          "CUDA tensors in a CPU-only build must fail cleanly");
#endif
    bg_tensor_free(&ctx, t);
    bg_tensor_free(&ctx, u);
}

BG_TEST(op_params_parse_and_print)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    const bg_op *op = bg_op_find("conv2d");
    if (!op) SKIP("conv2d not registered yet");
    bg_conv2d_params p;
    bg_op_default_params(op, &p);
    CHECK(p.stride[0] == 1 && p.stride[1] == 1 && p.groups == 1 && p.dilation[1] == 1, "defaults");
    double two = 2, hw[2] = {1, 2};
    CHECK_OK(&ctx, bg_op_set_param(&ctx, op, &p, "stride", &two, 1));
    CHECK_OK(&ctx, bg_op_set_param(&ctx, op, &p, "padding", hw, 2));
    CHECK(p.stride[0] == 2 && p.stride[1] == 2 && p.padding[0] == 1 && p.padding[1] == 2, "set");
    CHECK_ERR(&ctx, bg_op_set_param(&ctx, op, &p, "strid", &two, 1), BG_ERR_ARG, "no parameter 'strid'");
    double half = 1.5;
    CHECK_ERR(&ctx, bg_op_set_param(&ctx, op, &p, "groups", &half, 1), BG_ERR_ARG, "must be an integer");
    char buf[200];
    bg_op_params_str(op, &p, buf, sizeof buf);
    CHECK(strstr(buf, "stride=2,2") && strstr(buf, "padding=1,2"), "params str: %s", buf);
}

/* Mixed devices and mixed dtypes are refused at node creation, naming both
 * tensors. A CUDA tensor is faked by tagging a copy of a CPU tensor's header
 * (never dereferenced: the check happens before any kernel runs). */
BG_TEST(op_rejects_mixed_devices_and_dtypes)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    int64_t sh[4] = {2, 3, 3, 4};
    bg_tensor *a = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, sh, "act");
    bg_tensor *b = bg_tensor_new(&ctx, BG_CPU, BG_F64, 4, sh, "skip64");
    bg_tensor fake = *a;
    fake.device = BG_CUDA;
    fake.alloc_bytes = 0;
    snprintf(fake.name, sizeof fake.name, "gpu_skip");
    bg_node n;
    bg_tensor *in1[2] = {a, &fake};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, bg_op_find("add"), NULL, in1, 2, true), BG_ERR_DEVICE,
              "'gpu_skip' is on cuda but 'act' is on cpu");
    bg_tensor *in2[2] = {a, b};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, bg_op_find("add"), NULL, in2, 2, true), BG_ERR_DTYPE, "skip64");
    bg_tensor *in3[1] = {a};
    CHECK_ERR(&ctx, bg_node_init(&ctx, &n, bg_op_find("add"), NULL, in3, 1, true), BG_ERR_ARG, "takes 2 to 2 inputs");
    bg_tensor_free(&ctx, a);
    bg_tensor_free(&ctx, b);
}

/* The CPU backend switch: names, refusals, and the decline path (a fast
 * kernel that does not cover f64 hands the call to the reference). */
BG_TEST(cpu_backend_switch_and_decline)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 5);
    CHECK(bg_ctx_set_cpu(&ctx, "ref", "generic", "B", "I") == BG_OK && ctx.cpu_backend == BG_CPU_REF &&
              ctx.cpu_isa == BG_ISA_GENERIC,
          "ref/generic: %s", bg_errmsg(&ctx));
    CHECK(bg_ctx_set_cpu(&ctx, "", NULL, "B", "I") == BG_OK && ctx.cpu_backend == BG_CPU_REF, "an empty value is unset");
    CHECK(bg_ctx_set_cpu(&ctx, "quick", NULL, "B", "I") == BG_ERR_ARG && strstr(bg_errmsg(&ctx), "B=quick"),
          "bad backend: %s", bg_errmsg(&ctx));
    CHECK(bg_ctx_set_cpu(&ctx, NULL, "avx1024", "B", "I") == BG_ERR_ARG && strstr(bg_errmsg(&ctx), "I=avx1024"),
          "bad ISA: %s", bg_errmsg(&ctx));
    for (int i = 0; i < BG_NISA; i++) {
        bg_status s = bg_ctx_set_cpu(&ctx, NULL, bg_cpu_isa_name((bg_cpu_isa)i), "B", "I");
        if (bg_cpu_isa_runs((bg_cpu_isa)i)) CHECK(s == BG_OK && ctx.cpu_isa == (bg_cpu_isa)i, "%s: %s", bg_cpu_isa_name((bg_cpu_isa)i), bg_errmsg(&ctx));
        else CHECK(s == BG_ERR_UNSUPPORTED && strstr(bg_errmsg(&ctx), "cannot run"), "%s: %s", bg_cpu_isa_name((bg_cpu_isa)i), bg_errmsg(&ctx));
    }
    CHECK(bg_cpu_isa_runs(bg_cpu_isa_best()) && bg_cpu_isa_runs(BG_ISA_GENERIC), "the best set runs");
    /* relu has a fast f32 kernel that declines f64: the reference answers */
    ctx.cpu_backend = BG_CPU_FAST;
    int64_t shape[1] = {5};
    bg_tensor *x = bg_tensor_new(&ctx, BG_CPU, BG_F64, 1, shape, "x");
    bg_node n;
    CHECK(x && !bg_node_init(&ctx, &n, bg_op_find("relu"), NULL, &x, 1, false), "init: %s", bg_errmsg(&ctx));
    if (!x) return;
    for (int i = 0; i < 5; i++) bg_set(x, i, i - 2.5);
    CHECK(!strcmp(bg_node_cpu_kernels(&ctx, &n), "fast"), "relu runs fast kernels under the fast backend");
    CHECK(bg_node_forward(&ctx, &n) == BG_OK, "forward: %s", bg_errmsg(&ctx));
    for (int i = 0; i < 5; i++) CHECK(bg_get(n.out[0], i) == (i > 2 ? i - 2.5 : 0.0), "y[%d] = %g", i, bg_get(n.out[0], i));
    ctx.cpu_backend = BG_CPU_REF;
    CHECK(!strcmp(bg_node_cpu_kernels(&ctx, &n), "ref"), "and the reference under ref");
    bg_node_release(&ctx, &n);
    bg_tensor_free(&ctx, x);
    bg_ctx_free(&ctx);
}
