/* Run-time choice among the per-instruction-set copies of a kernel in
 * kernels/cpu/isa/ (see kernels/cpu/isa.h). Declare a kernel once with
 * BG_ISA_DECL and call BG_ISA_PICK(ctx->cpu_isa, name)(args...). On a
 * non-x86 build only the generic copy exists and is always picked. */
#ifndef BG_CPU_DISPATCH_H
#define BG_CPU_DISPATCH_H
#include "../../engine/cpu_isa.h"

#define BG_ISA_DECL(ret, name, args) \
    ret name##_generic args;         \
    ret name##_avx2 args;            \
    ret name##_avx512 args;

#ifdef BG_CPU_X86_ISA
#define BG_ISA_PICK(isa, name) \
    ((isa) == BG_ISA_AVX512 ? name##_avx512 : (isa) == BG_ISA_AVX2 ? name##_avx2 : name##_generic)
#else
#define BG_ISA_PICK(isa, name) name##_generic
#endif

#endif
