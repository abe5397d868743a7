/* The generic checks the runner derives from each op case. */
#ifndef BG_OP_CHECKS_H
#define BG_OP_CHECKS_H
#include "harness.h"

typedef struct {
    const bg_op_case *c;
    const char *file;
    int index;
} case_entry;

/* "conv2d[x=2x5x5x3 weight=4x3x3x3 stride=2]:gradcheck" */
void op_case_name(const case_entry *e, const char *kind, char *buf, size_t n);
/* kind: "gradcheck", "f32-vs-f64", "cuda-f32", "cuda-f16" */
void op_case_run(bg_t *tc, const case_entry *e, const char *kind);
/* Parse "stride=2 padding=1,1 groups=4" into an op's params. */
bg_status op_parse_params(bg_ctx *ctx, const bg_op *op, const char *spec, void *params);

#endif
