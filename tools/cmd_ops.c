/* budgie ops: print the op table (what exists, on which backends). */
#include <stdio.h>
#include <string.h>
#include "../ops/ops.h"
#include "verbs.h"

int bg_cmd_ops(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: budgie ops\n  lists every op: inputs, parameters with defaults, and the backends that implement it\n");
        return 0;
    }
    for (int i = 0; i < bg_op_count(); i++) {
        const bg_op *op = bg_op_at(i);
        if (!op) continue;
        unsigned char p[BG_PARAM_BYTES];
        char ps[256];
        bg_op_default_params(op, p);
        printf("%-15s in(", op->name);
        for (int k = 0; k < op->n_in; k++) printf("%s%s%s", k ? "," : "", op->in_names[k], k >= op->n_in_required ? "?" : "");
        printf(")  cpu:%s cuda:%s  %s\n", op->fwd[BG_CPU] ? "yes" : "no", op->fwd[BG_CUDA] ? "yes" : "no",
               bg_op_params_str(op, p, ps, sizeof ps));
    }
    return 0;
}
