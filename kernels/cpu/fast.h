/* The fast CPU backend (engine/cpu_isa.h): the entries op rows name in their
 * fast_fwd / fast_bwd columns. Each reads the node like the reference does,
 * runs the kernels of the context's instruction set, and declines
 * (BG_ERR_UNSUPPORTED, nothing touched) what it does not cover, which the
 * reference then runs. Layout: kernels/cpu/<family>.c is the glue and the
 * threading, kernels/cpu/isa/<family>.c the loops compiled per ISA. */
#ifndef BG_CPU_FAST_H
#define BG_CPU_FAST_H
#include "../../engine/op.h"

bg_status bg_fast_relu_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_relu_bwd(bg_ctx *ctx, bg_node *n);

/* The GEMM family (kernels/cpu/gemm.c, conv.c, linear.c). */
bg_status bg_fast_conv2d_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_conv2d_bwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_conv2d_fused_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_conv2d_fused_bwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_linear_fwd(bg_ctx *ctx, bg_node *n);
bg_status bg_fast_linear_bwd(bg_ctx *ctx, bg_node *n);

#endif
