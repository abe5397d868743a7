/* The CPU backends and instruction sets.
 *
 * Two CPU backends share the BG_CPU device (same host memory, same tensors):
 *   ref   the plain reference kernels in ops/: the oracle every test compares
 *         against, readable first, fast second;
 *   fast  the vectorised kernels of ops/fast/ over kernels/cpu/ (AVX-512, AVX2+FMA or a
 *         portable build of the same source), the default. An op row without
 *         a fast kernel runs its reference on both.
 * The fast kernels are compiled once per instruction set and picked at run
 * time from what the CPU (and the OS, which must save the wide registers)
 * supports. Two environment variables, read by bg_ctx_init, override:
 *   BUDGIE_CPU=ref|fast
 *   BUDGIE_CPU_ISA=avx512|avx2|generic   (a set the CPU lacks is an error) */
#ifndef BG_CPU_ISA_H
#define BG_CPU_ISA_H
#include <stdbool.h>
#include "status.h"

typedef enum { BG_CPU_FAST = 0, BG_CPU_REF = 1 } bg_cpu_backend;
/* Ordered: a CPU that runs one level runs every level below it. */
typedef enum { BG_ISA_GENERIC = 0, BG_ISA_AVX2 = 1, BG_ISA_AVX512 = 2, BG_NISA } bg_cpu_isa;

const char *bg_cpu_backend_name(bg_cpu_backend b);
const char *bg_cpu_isa_name(bg_cpu_isa isa);
/* The best set this CPU and OS run (AVX-512 means F, BW, DQ and VL). */
bg_cpu_isa bg_cpu_isa_best(void);
bool bg_cpu_isa_runs(bg_cpu_isa isa);

struct bg_ctx;
/* Parse and check a backend / ISA name ("ref", "avx512", ...); NULL keeps the
 * context's current value. The message names the variable given in `what`
 * (e.g. "BUDGIE_CPU_ISA") and, for an ISA the CPU lacks, what it has. */
bg_status bg_ctx_set_cpu(struct bg_ctx *ctx, const char *backend, const char *isa, const char *what_backend,
                         const char *what_isa);

#endif
