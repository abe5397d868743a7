/* Philox-4x32-10 (Salmon et al., SC'11), counter based: the value at
 * (key, counter) is a pure function, so the CPU and CUDA backends draw the
 * same streams from (seed, offset) whatever the thread layout.
 * Header-only and usable from C and CUDA. */
#ifndef BG_PHILOX_H
#define BG_PHILOX_H
#include <stdint.h>

#ifdef __CUDACC__
#define BG_HD __host__ __device__ __forceinline__
#else
#define BG_HD static inline
#endif

typedef struct { uint32_t v[4]; } bg_u32x4;

BG_HD uint32_t bg_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* ctr: 128-bit counter (c0 lowest word), key: 64-bit key. */
BG_HD bg_u32x4 bg_philox4x32_10(bg_u32x4 ctr, uint64_t key64)
{
    uint32_t k0 = (uint32_t)key64, k1 = (uint32_t)(key64 >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = bg_mulhilo32(0xD2511F53u, ctr.v[0], &hi0);
        uint32_t lo1 = bg_mulhilo32(0xCD9E8D57u, ctr.v[2], &hi1);
        bg_u32x4 n;
        n.v[0] = hi1 ^ ctr.v[1] ^ k0;
        n.v[1] = lo1;
        n.v[2] = hi0 ^ ctr.v[3] ^ k1;
        n.v[3] = lo0;
        ctr = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return ctr;
}

/* Block `i` of stream `offset`: counter = (offset + i) as a 128-bit number. */
BG_HD bg_u32x4 bg_philox_block(uint64_t seed, uint64_t offset, uint64_t i)
{
    uint64_t c = offset + i;
    bg_u32x4 ctr = {{(uint32_t)c, (uint32_t)(c >> 32), 0u, 0u}};
    return bg_philox4x32_10(ctr, seed);
}

/* u32 -> float in [0,1): top 24 bits, exact in binary32. */
BG_HD float bg_u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
/* u32 -> float in (0,1]: never 0, safe for log(). */
BG_HD float bg_u32_to_unit_open0(uint32_t x) { return ((float)(x >> 8) + 1.0f) * (1.0f / 16777216.0f); }

#endif
