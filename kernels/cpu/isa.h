/* Included by the sources in kernels/cpu/isa/, which the Makefile compiles
 * once per instruction set with -DBG_ISA=0 (generic: the compiler's baseline,
 * SSE2 on x86-64), 1 (AVX2 + FMA) or 2 (AVX-512 F/BW/DQ/VL), each at -O3 with
 * floating-point contraction on. BG_ISA_FN gives each copy of a function its
 * own name; kernels/cpu/dispatch.h picks one from the context at run time.
 * The code is plain C whose loops the compiler vectorises (`omp simd` where
 * it needs the licence), so one source serves every width. */
#ifndef BG_CPU_ISA_TMPL_H
#define BG_CPU_ISA_TMPL_H
#include <stdint.h>

#ifndef BG_ISA
#error "kernels/cpu/isa/*.c are built once per instruction set by the Makefile (-DBG_ISA=0|1|2)"
#endif
#if BG_ISA == 2
#define BG_ISA_FN(name) name##_avx512
#define BG_VEC_F32 16 /* floats per vector register */
#elif BG_ISA == 1
#define BG_ISA_FN(name) name##_avx2
#define BG_VEC_F32 8
#else
#define BG_ISA_FN(name) name##_generic
#define BG_VEC_F32 4
#endif

#endif
