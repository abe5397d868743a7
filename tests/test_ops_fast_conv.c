/* Op cases for the fast CPU backend's conv2d, conv2d_fused and linear
 * (ops/fast/conv.c, linear.c, gemm.c): the runner's cpu-fast check runs
 * each against the reference at every ISA this CPU has (f32-vs-f64 comes
 * with them). Shapes pick the paths and edges: channel counts off every tile
 * width (3, 13, 17, 33, 37), A rows read in place (16+ channels per group)
 * and gathered (fewer), taps longer than a k-block (300 channels), more
 * output pixels than one row block, 1x1 stride 1 (plain GEMM) and stride 2,
 * 3x3 stride 2, dilation 2, 7x7 stride 2, groups 2 and 4, depthwise, a
 * weight gradient with k (pixels) long enough for the deep split, few
 * rows (column slabs; shared B packed by all threads; col2im tasks of
 * several images), and enough multiply-adds to run on several threads. Too big for finite
 * differences: the reference's gradients are checked by the small cases in
 * test_ops_conv.c. */
#include "harness.h"

static const bg_op_case fast_conv_cases[] = {
    /* 17 channels: rows in place; 162 pixels > one 144-row block; 13 outputs */
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 9, 9, 17}, {13, 3, 3, 17}, {13}}, .no_gradcheck = true},
    /* 3 channels (gathered rows), 3x3 stride 2, 17 outputs */
    {.op = "conv2d", .params = "stride=2 padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 11, 11, 3}, {17, 3, 3, 3}, {17}}, .no_gradcheck = true},
    /* 1x1 stride 1: plain GEMMs; 1x1 stride 2: im2col rows in place, no overlap */
    {.op = "conv2d", .params = "", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 12, 12, 40}, {33, 1, 1, 40}, {33}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2", .n_in = 3, .ndim = {4, 4, 0},
     .shape = {{2, 9, 9, 24}, {20, 1, 1, 24}}, .no_gradcheck = true},
    /* 3x3 stride 2 with 32 channels (the downsampling conv of a stage) */
    {.op = "conv2d", .params = "stride=2 padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{3, 10, 10, 32}, {48, 3, 3, 32}, {48}}, .no_gradcheck = true},
    /* dilation 2 */
    {.op = "conv2d", .params = "padding=2 dilation=2", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{1, 9, 9, 16}, {16, 3, 3, 16}, {16}}, .no_gradcheck = true},
    /* 7x7 stride 2 pad 3 stem */
    {.op = "conv2d", .params = "stride=2 padding=3", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 16, 16, 3}, {20, 7, 7, 3}, {20}}, .no_gradcheck = true},
    /* groups 2 (17 channels each, in place) and 4 (3 each, gathered) */
    {.op = "conv2d", .params = "padding=1 groups=2", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 8, 8, 34}, {26, 3, 3, 17}, {26}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=1 groups=4", .n_in = 3, .ndim = {4, 4, 0},
     .shape = {{2, 9, 9, 12}, {20, 3, 3, 3}}, .no_gradcheck = true},
    /* depthwise, stride 1 and 2 */
    {.op = "conv2d", .params = "padding=1 groups=37", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 9, 9, 37}, {37, 3, 3, 1}, {37}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=1 groups=40", .n_in = 3, .ndim = {4, 4, 0},
     .shape = {{3, 10, 10, 40}, {40, 3, 3, 1}}, .no_gradcheck = true},
    /* 300 channels: one tap spans two k-blocks */
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{1, 5, 5, 300}, {7, 3, 3, 300}, {7}}, .no_gradcheck = true},
    /* 4096 pixels, 16 x 144 weight gradient: k split across threads */
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{4, 32, 32, 16}, {16, 3, 3, 16}, {16}}, .no_gradcheck = true},
    /* Few rows (a deep stage at small batch): 32 output pixels, 96 outputs,
     * so the forward and the stride-1 data gradient (weights read flipped,
     * no copy) cut columns across threads; 338 pixels: three row blocks,
     * the weights packed by the threads together, then rows x columns;
     * stride 2 on 4 x 4 output planes: the data gradient's col2im tasks
     * take several whole images each */
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{2, 4, 4, 64}, {96, 3, 3, 64}, {96}}, .no_gradcheck = true},
    /* A weight gradient with more rows (output channels) than one row
     * block, its im2col B read in place: 164 = 84 + 80 rows (even row
     * blocks rounded to 4, not 12), 80 = 6 x 12 + 8 ending in the 8-row
     * edge kernel (AVX2: 82 + 82, 13 x 6 + 4) */
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 0},
     .shape = {{2, 4, 4, 32}, {164, 3, 3, 32}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "padding=1", .n_in = 3, .ndim = {4, 4, 0},
     .shape = {{2, 13, 13, 32}, {40, 3, 3, 32}}, .no_gradcheck = true},
    {.op = "conv2d", .params = "stride=2 padding=1", .n_in = 3, .ndim = {4, 4, 1},
     .shape = {{4, 8, 8, 48}, {64, 3, 3, 48}, {64}}, .no_gradcheck = true},
    /* the fused row: residual + relu, sigmoid, depthwise + residual + relu */
    {.op = "conv2d_fused", .params = "padding=1 act=1", .n_in = 4, .ndim = {4, 4, 1, 4},
     .shape = {{2, 9, 9, 17}, {13, 3, 3, 17}, {13}, {2, 9, 9, 13}}, .no_gradcheck = true},
    {.op = "conv2d_fused", .params = "stride=2 padding=1 act=2", .n_in = 4, .ndim = {4, 4, 1, 0},
     .shape = {{2, 10, 10, 3}, {33, 3, 3, 3}, {33}}, .no_gradcheck = true},
    /* CUDA f16: relu masks flipped at the kink by f16 rounding, 4.3e-5 under the emulator */
    {.op = "conv2d_fused", .params = "act=1", .n_in = 4, .ndim = {4, 4, 0, 4},
     .shape = {{2, 12, 12, 40}, {33, 1, 1, 40}, {0}, {2, 12, 12, 33}}, .tol_f16 = 2e-4, .no_gradcheck = true},
    {.op = "conv2d_fused", .params = "padding=1 groups=37 act=1", .n_in = 4, .ndim = {4, 4, 1, 4},
     .shape = {{2, 9, 9, 37}, {37, 3, 3, 1}, {37}, {2, 9, 9, 37}}, .no_gradcheck = true},
};
BG_OP_CASES(fast_conv_cases)

static const bg_op_case fast_linear_cases[] = {
    {.op = "linear", .n_in = 3, .ndim = {2, 2, 1}, .shape = {{37, 300}, {45, 300}, {45}}, .no_gradcheck = true},
    {.op = "linear", .n_in = 3, .ndim = {2, 2, 0}, .shape = {{200, 70}, {130, 70}}, .no_gradcheck = true},
    {.op = "linear", .n_in = 3, .ndim = {2, 2, 1}, .shape = {{5, 600}, {10, 600}, {10}}, .no_gradcheck = true},
};
BG_OP_CASES(fast_linear_cases)
