/* Cutting work across OpenMP threads for the fast CPU kernels: contiguous
 * chunks, at least a grain of elements each, so small tensors stay on one
 * thread (a fork costs microseconds) and every thread streams its own part
 * of memory. */
#ifndef BG_CPU_PARALLEL_H
#define BG_CPU_PARALLEL_H
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Elements below which a loop stays on the calling thread. */
#define BG_CPU_GRAIN 32768

/* How many chunks to cut n items into, each at least `grain`. */
static inline int bg_cpu_chunks(int64_t n, int64_t grain)
{
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
    int64_t t = omp_get_max_threads(), k = grain > 0 ? n / grain : n;
    if (k < 1) k = 1;
    return (int)(k < t ? k : t);
#else
    (void)n, (void)grain;
    return 1;
#endif
}

/* The calling thread's number inside a parallel region (0 outside one). */
static inline int bg_cpu_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Chunk c of `chunks` over [0, n): [*lo, *hi), aligned to `align` items. */
static inline void bg_cpu_chunk(int64_t n, int chunks, int c, int64_t align, int64_t *lo, int64_t *hi)
{
    int64_t per = (n + chunks - 1) / chunks;
    per = (per + align - 1) / align * align;
    *lo = per * c < n ? per * c : n;
    *hi = per * (c + 1) < n ? per * (c + 1) : n;
}

#endif
