/* The fast CPU backend (engine/cpu_isa.h): the entries op rows name in their
 * fast_fwd / fast_bwd columns. Each reads the node like the reference does,
 * runs the kernels of the context's instruction set, and declines
 * (BG_ERR_UNSUPPORTED, nothing touched) what it does not cover, which the
 * reference then runs. Layout: ops/fast/<family>.c is the glue and the
 * threading, kernels/cpu/isa/<family>.c the loops compiled per ISA. */
#ifndef BG_CPU_FAST_H
#define BG_CPU_FAST_H
#include "../../engine/op.h"

bg_status bg_fast_relu_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_relu_bwd(bg_ctx *ctx, bg_node *n);

/* batchnorm2d and batchnorm2d_relu (ops/fast/batchnorm.c) */
bg_status bg_fast_bn_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_bn_bwd(bg_ctx *ctx, bg_node *n);

/* se_scale (ops/fast/se_scale.c) */
bg_status bg_fast_se_scale_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_se_scale_bwd(bg_ctx *ctx, bg_node *n);

/* add and mul (ops/fast/binary.c) */
bg_status bg_fast_add_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_add_bwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_mul_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_mul_bwd(bg_ctx *ctx, bg_node *n);

/* split_attn (ops/fast/split_attn.c) */
bg_status bg_fast_split_attn_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_split_attn_bwd(bg_ctx *ctx, bg_node *n);

/* global_avgpool, avgpool2d, maxpool2d (ops/fast/pool.c) */
bg_status bg_fast_gap_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_gap_bwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_avgpool_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_avgpool_bwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_maxpool_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_maxpool_bwd(bg_ctx *ctx, bg_node *n);
/* The GEMM family (kernels/cpu/gemm.c, conv.c, linear.c). */
/* Whether the fast conv kernels take this conv2d / conv2d_fused node under
 * ctx (f32, contiguous, fast backend): their only allocator-counted scratch
 * is then the fused backward's dz (the memory planner asks). */
bool bg_fast_conv2d_takes(const bg_ctx *ctx, const bg_node *n);
bg_status bg_fast_conv2d_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_conv2d_bwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_conv2d_fused_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_conv2d_fused_bwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_linear_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_linear_bwd(bg_ctx *ctx, bg_node *n);

#endif
