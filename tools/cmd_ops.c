/* budgie ops: print the op table (what exists, on which backends). */
#include <stdio.h>
#include <string.h>
#include "../engine/context.h"
#include "../ops/ops.h"
#include "verbs.h"

int bg_cmd_ops(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: budgie ops\n  lists every op: inputs, parameters with defaults, and its backends:\n"
               "  cpu:yes (the reference), fast:yes|no (a fast CPU kernel; without one the reference serves the\n"
               "  fast backend too), and cuda:available (a kernel, and a device to run it here), cuda:implemented\n"
               "  (a kernel, but no device here) or cuda:no (no kernel in this build)\n");
        return 0;
    }
    const int dev = bg_cuda_available();
    printf("# cuda: %s\n", dev ? "a device is present: kernels marked available run on it"
                               : "no CUDA device here (or a CPU-only build): kernels are implemented, none available");
    for (int i = 0; i < bg_op_count(); i++) {
        const bg_op *op = bg_op_at(i);
        if (!op) continue;
        unsigned char p[BG_PARAM_BYTES];
        char ps[256];
        bg_op_default_params(op, p);
        printf("%-15s in(", op->name);
        for (int k = 0; k < op->n_in; k++) printf("%s%s%s", k ? "," : "", op->in_names[k], k >= op->n_in_required ? "?" : "");
        const char *cuda = !op->fwd[BG_CUDA] ? "no" : dev ? "available" : "implemented";
        printf(")  cpu:%s fast:%s cuda:%s  %s\n", op->fwd[BG_CPU] ? "yes" : "no", op->fast_fwd ? "yes" : "no", cuda,
               bg_op_params_str(op, p, ps, sizeof ps));
    }
    return 0;
}
