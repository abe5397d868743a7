#include "cpu_isa.h"
#include <string.h>
#include "context.h"

static const char *const ISA_NAMES[BG_NISA] = {"generic", "avx2", "avx512"};

const char *bg_cpu_backend_name(bg_cpu_backend b) { return b == BG_CPU_REF ? "ref" : "fast"; }

const char *bg_cpu_isa_name(bg_cpu_isa isa) { return isa >= 0 && isa < BG_NISA ? ISA_NAMES[isa] : "invalid"; }

bool bg_cpu_isa_runs(bg_cpu_isa isa)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    /* libgcc's CPU model checks XCR0 too: a feature the OS does not save
     * across context switches reads as absent. */
    switch (isa) {
    case BG_ISA_GENERIC: return true;
    case BG_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case BG_ISA_AVX512:
        return bg_cpu_isa_runs(BG_ISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
    default: return false;
    }
#else
    return isa == BG_ISA_GENERIC;
#endif
}

bg_cpu_isa bg_cpu_isa_best(void)
{
    for (int i = BG_NISA - 1; i > 0; i--)
        if (bg_cpu_isa_runs((bg_cpu_isa)i)) return (bg_cpu_isa)i;
    return BG_ISA_GENERIC;
}

bg_status bg_ctx_set_cpu(bg_ctx *ctx, const char *backend, const char *isa, const char *what_backend,
                         const char *what_isa)
{
    if (backend && *backend) { /* an empty variable counts as unset */
        if (!strcmp(backend, "ref")) ctx->cpu_backend = BG_CPU_REF;
        else if (!strcmp(backend, "fast")) ctx->cpu_backend = BG_CPU_FAST;
        else return bg_fail(ctx, BG_ERR_ARG, "%s=%s: the CPU backend is 'ref' or 'fast'", what_backend, backend);
    }
    if (isa && *isa) {
        int k = -1;
        for (int i = 0; i < BG_NISA; i++)
            if (!strcmp(isa, ISA_NAMES[i])) k = i;
        if (k < 0) return bg_fail(ctx, BG_ERR_ARG, "%s=%s: the instruction set is avx512, avx2 or generic", what_isa, isa);
        if (!bg_cpu_isa_runs((bg_cpu_isa)k))
            return bg_fail(ctx, BG_ERR_UNSUPPORTED, "%s=%s: this CPU cannot run %s (the best it runs is %s)", what_isa,
                           isa, k == BG_ISA_AVX512 ? "AVX-512 F/BW/DQ/VL" : "AVX2 with FMA",
                           bg_cpu_isa_name(bg_cpu_isa_best()));
        ctx->cpu_isa = (bg_cpu_isa)k;
    }
    return BG_OK;
}
