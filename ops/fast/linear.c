/* linear on the fast CPU backend (f32; ops/linear.c has the layout and the
 * reference): y = x . W^T + b is one fast GEMM with the bias in its epilogue
 * (and no pass to initialise y); dx += dy . W and dW += dy^T . x are two more,
 * db the column sums of dy in double. */
#include <stdlib.h>
#include "fast.h"
#include "../../kernels/cpu/gemm.h"

static bool covered(const bg_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && (n->in[i]->dtype != BG_F32 || !bg_is_contiguous(n->in[i]))) return false;
    return true;
}

bg_status bg_fast_linear_fwd(bg_ctx *ctx, bg_node *n)
{
    if (!covered(n)) return BG_ERR_UNSUPPORTED;
    int64_t N = n->in[0]->shape[0], K = n->in[0]->shape[1], M = n->in[1]->shape[0];
    bg_gemm_job j = {.m = N, .n = M, .k = K, .c = n->out[0]->data, .ldc = M};
    j.a = (bg_gsrc){.kind = BG_GS_ROWS, .p = n->in[0]->data, .ld = K};
    j.b = (bg_gsrc){.kind = BG_GS_COLS, .p = n->in[1]->data, .ld = K};
    j.ep = (bg_gemm_ep){.overwrite = true, .bias = n->in[2] ? (const float *)n->in[2]->data : NULL};
    return bg_fast_gemm_job(ctx, &j);
}

bg_status bg_fast_linear_bwd(bg_ctx *ctx, bg_node *n)
{
    if (!covered(n)) return BG_ERR_UNSUPPORTED;
    if (!n->out[0]->grad) return BG_OK;
    int64_t N = n->in[0]->shape[0], K = n->in[0]->shape[1], M = n->in[1]->shape[0];
    const float *x = n->in[0]->data, *w = n->in[1]->data, *dy = n->out[0]->grad->data;
    if (n->in[2] && n->in[2]->grad) {
        float *db = n->in[2]->grad->data;
        double *acc = calloc((size_t)M, sizeof(double));
        if (!acc) return bg_fail(ctx, BG_ERR_OOM, "linear (fast): out of host memory for the bias gradient");
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < M; j++) acc[j] += dy[i * M + j];
        for (int64_t j = 0; j < M; j++) db[j] += (float)acc[j];
        free(acc);
    }
    bg_status s = BG_OK;
    if (n->in[0]->grad) s = bg_fast_gemm_f32(ctx, false, false, N, K, M, dy, M, w, K, n->in[0]->grad->data, K);
    if (!s && n->in[1]->grad) s = bg_fast_gemm_f32(ctx, true, false, M, K, N, dy, M, x, K, n->in[1]->grad->data, K);
    return s;
}
