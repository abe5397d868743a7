/* Fixed row chunks for the fast CPU kernels that reduce over the rows of an
 * {M, C} row-major (NHWC) tensor into per-channel sums (batchnorm
 * statistics, the SE gate's gradient).
 *
 * The chunk size depends on C only, never on the thread count or on timing:
 * each chunk's partial sums are computed the same way whichever thread runs
 * it, and the partials are added in chunk order afterwards, so the result is
 * bit-identical with 1 or 64 threads. Chunks are whole blocks of
 * BG_ROW_BLOCK rows (the float accumulation unit of the kernels in
 * kernels/cpu/isa/), so block boundaries do not move either. */
#ifndef BG_CPU_ROWS_H
#define BG_CPU_ROWS_H
#include <stdint.h>
#include "parallel.h"

/* Rows a kernel sums in float before adding the block's sum into double. */
#define BG_ROW_BLOCK 32

/* Rows per chunk: about BG_CPU_GRAIN elements, a whole number of blocks. */
static inline int64_t bg_row_chunk_rows(int64_t c)
{
    int64_t r = c > 0 ? (BG_CPU_GRAIN + c - 1) / c : BG_ROW_BLOCK;
    return (r + BG_ROW_BLOCK - 1) / BG_ROW_BLOCK * BG_ROW_BLOCK;
}

static inline int64_t bg_row_chunk_count(int64_t m, int64_t c)
{
    int64_t per = bg_row_chunk_rows(c);
    return (m + per - 1) / per;
}

/* Threads for `chunks` chunks of about BG_CPU_GRAIN elements each: one per
 * chunk up to the OpenMP limit (1 inside a parallel region). */
static inline int bg_row_threads(int64_t chunks) { return bg_cpu_chunks(chunks, 1); }

#endif
