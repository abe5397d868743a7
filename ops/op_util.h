/* Shared by the op files: the CUDA column macro and the dtype and launch
 * checks every op makes, so each op file holds only its own math. */
#ifndef BG_OP_UTIL_H
#define BG_OP_UTIL_H
#include "../engine/op.h"

/* The CUDA column of an op row: the function in a CUDA build, else NULL
 * (dispatch then reports the missing kernel; nothing falls back silently). */
#ifdef BG_WITH_CUDA
#define BG_CUDA_FN(f) f
#else
#define BG_CUDA_FN(f) NULL
#endif

/* An optional input's data, or an input's gradient buffer: NULL when the
 * tensor (or its gradient) is absent. */
static inline void *bg_data_or_null(const bg_tensor *t) { return t ? t->data : NULL; }
static inline void *bg_grad_or_null(const bg_tensor *t) { return t && t->grad ? t->grad->data : NULL; }

/* Below this many elements an OpenMP parallel region costs more than it saves. */
#define BG_PAR_MIN 32768

/* The CPU reference computes in f32 or f64; anything else fails naming the
 * op, the tensor's role ("x", "a", "dy"...) and its dtype. */
bg_status bg_op_cpu_dtype(bg_ctx *ctx, const bg_node *n, const bg_tensor *t, const char *role);
/* CUDA kernels take f32 or f16 storage; *half says which. */
bg_status bg_op_cuda_dtype(bg_ctx *ctx, const bg_node *n, const bg_tensor *t, const char *role, int *half);
/* Every present float input of n is dense and of a dtype the backend's
 * kernels take (CPU: f32/f64; CUDA: f32/f16); *half (may be NULL) says
 * whether x (input 0) is f16. Labels and other integer inputs are skipped. */
bg_status bg_op_check_dense_inputs(bg_ctx *ctx, const bg_node *n, bg_device dev, int *half);
/* For supports checks: every present input of in[0..n_in) has in[0]'s dtype,
 * and the backend's kernels take it (CPU f32/f64, CUDA f32/f16). */
bool bg_op_same_backend_dtype(bg_device dev, bg_tensor *const *in, int n_in);
/* After a kernel launch: a launch error becomes BG_ERR_CUDA naming the op and pass. */
bg_status bg_op_cuda_launched(bg_ctx *ctx, const bg_node *n, const char *pass);

#endif
