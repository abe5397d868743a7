// The emulator's self-test, and the probe that anchors it to the hardware.
//
// Built by nvcc-emu (make emu-selftest) it checks every emulated PTX
// instruction and warp collective against worked examples derived from the
// PTX ISA's fragment layouts (written here independently of tools/emu/rt),
// then checks that the emulator reports the faults it promises to catch.
// Built by the real nvcc (tools/emu/hwprobe.sh on a GPU machine) the same
// probes run on the device: `selftest --record FILE` writes every raw result,
// and `selftest --fixture FILE` (the emulated build does this when
// tools/emu/fixtures/hw-sm90.txt exists) compares the emulator's raw
// results with what the hardware returned, word for word.
//
// Every probe fills 32-bit words; a probe passes when the words match the
// worked example (and the fixture, when one is given).
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                                                  \
    do {                                                                                                       \
        cudaError_t e_ = (x);                                                                                  \
        if (e_ != cudaSuccess) {                                                                               \
            printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));                    \
            exit(1);                                                                                           \
        }                                                                                                      \
    } while (0)

static int g_fail, g_pass;
static FILE *g_record;
static char *g_fixture; // the whole fixture file, or null

// ---- helpers on the host ----------------------------------------------------------------------
static uint16_t h_bits(float f)
{
    __half h = __float2half_rn(f);
    uint16_t b;
    memcpy(&b, &h, 2);
    return b;
}
static float h_float(uint16_t b)
{
    __half h;
    memcpy(&h, &b, 2);
    return __half2float(h);
}
static uint32_t f_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

// Compare n words with the worked example; record them; compare with the fixture.
static void check(const char *probe, const uint32_t *got, const uint32_t *want, int n)
{
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++)
        if (want && got[i] != want[i]) bad++, first = first < 0 ? i : first;
    if (g_record) {
        fprintf(g_record, "%s %d", probe, n);
        for (int i = 0; i < n; i++) fprintf(g_record, " %08x", got[i]);
        fprintf(g_record, "\n");
    }
    if (g_fixture) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", probe);
        const char *p = strstr(g_fixture, key);
        if (!p) printf("     %s: not in the hardware fixture\n", probe);
        else {
            p += strlen(key);
            int m = (int)strtol(p, (char **)&p, 10), hw_bad = 0;
            for (int i = 0; i < m && i < n; i++) {
                uint32_t w = (uint32_t)strtoul(p, (char **)&p, 16);
                if (w != got[i]) {
                    if (!hw_bad) printf("     %s: word %d is %08x, the hardware gave %08x\n", probe, i, got[i], w);
                    hw_bad++;
                }
            }
            if (m != n) printf("     %s: %d words, the hardware fixture has %d\n", probe, n, m), hw_bad++;
            if (hw_bad) bad += hw_bad;
        }
    }
    if (bad) {
        g_fail++;
        printf("FAIL %s: %d of %d words differ", probe, bad, n);
        if (first >= 0) printf(" (first: word %d = %08x, want %08x)", first, got[first], want[first]);
        printf("\n");
    } else g_pass++;
}

// ---- ldmatrix ------------------------------------------------------------------------------------
// tile[i][r][c] = 1000 i + 10 r + c (four 8x8 matrices of b16). Lane 8i+j
// gives the address of row (3 j) % 8 of matrix i, so each matrix's rows come
// permuted: row j of what ldmatrix sees is stored row (3 j) % 8.
template <int NM, bool TRANS>
__global__ void ldm_k(uint32_t *out)
{
    __shared__ __align__(16) uint16_t tile[4][8][8];
    const int l = threadIdx.x;
    for (int e = l; e < 256; e += 32) tile[e / 64][(e / 8) % 8][e % 8] = (uint16_t)(1000 * (e / 64) + 10 * ((e / 8) % 8) + e % 8);
    __syncthreads();
    const int i = (l / 8) % NM, j = l % 8;
    unsigned a = (unsigned)__cvta_generic_to_shared(&tile[i][(3 * j) % 8][0]);
    unsigned r[4] = {0, 0, 0, 0};
    if (NM == 1 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(a));
    if (NM == 2 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
    if (NM == 4 && !TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    if (NM == 1 && TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(a));
    if (NM == 2 && TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
    if (NM == 4 && TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    for (int k = 0; k < 4; k++) out[l * 4 + k] = r[k];
}

template <int NM, bool TRANS>
static void probe_ldmatrix(const char *name)
{
    uint32_t *d, got[128], want[128] = {};
    CK(cudaMalloc(&d, sizeof got));
    ldm_k<NM, TRANS><<<1, 32>>>(d);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    CK(cudaFree(d));
    // PTX ISA, ldmatrix: for matrix i, lane l holds (row l/4, columns 2(l%4), 2(l%4)+1);
    // with .trans it holds the transposed matrix's, i.e. (rows 2(l%4), 2(l%4)+1, column l/4).
    auto M = [](int i, int row, int col) { return (uint32_t)(1000 * i + 10 * ((3 * row) % 8) + col); };
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < NM; i++) {
            uint32_t lo, hi;
            if (!TRANS) lo = M(i, l / 4, 2 * (l % 4)), hi = M(i, l / 4, 2 * (l % 4) + 1);
            else lo = M(i, 2 * (l % 4), l / 4), hi = M(i, 2 * (l % 4) + 1, l / 4);
            want[l * 4 + i] = lo | hi << 16;
        }
    // one value spelled out: lane 5 of .x1 holds row 1 (stored row 3), columns 2 and 3
    if (NM == 1 && !TRANS && want[5 * 4] != (32u | 33u << 16)) printf("FAIL worked example of ldmatrix is wrong\n"), g_fail++;
    check(name, got, want, 128);
}

// ---- mma.sync ---------------------------------------------------------------------------------------
// Small integers: every product and sum is exact in f16 and f32.
static float Aval(int i, int k) { return (float)((i * 3 + k * 5) % 7 - 3); }
static float Bval(int k, int j) { return (float)((k * 2 + j * 3) % 5 - 2); }
static float Cval(int i, int j) { return (float)(i - j); }

struct MmaData {
    uint16_t A[16][16], B[16][8];
    float C[16][8];
};

__device__ uint32_t pack2(uint16_t lo, uint16_t hi) { return (uint32_t)lo | (uint32_t)hi << 16; }

// Fragments per the PTX ISA (g = lane/4, t = lane%4): A a0 (g, 2t..2t+1),
// a1 (g+8, ...), a2 (g, 2t+8..), a3 (g+8, 2t+8..); B b0 (k 2t..2t+1, col g),
// b1 (k 2t+8..); C/D c0,c1 (g, 2t / 2t+1), c2,c3 (g+8, ...).
template <int K, bool F16ACC>
__global__ void mma_k(const MmaData *in, float *D)
{
    const int l = threadIdx.x, g = l / 4, t = l % 4;
    uint32_t a0 = pack2(in->A[g][2 * t], in->A[g][2 * t + 1]), a1 = pack2(in->A[g + 8][2 * t], in->A[g + 8][2 * t + 1]);
    uint32_t b0 = pack2(in->B[2 * t][g], in->B[2 * t + 1][g]);
    float c[4] = {in->C[g][2 * t], in->C[g][2 * t + 1], in->C[g + 8][2 * t], in->C[g + 8][2 * t + 1]};
    float d[4];
    if (K == 16) {
        uint32_t a2 = pack2(in->A[g][2 * t + 8], in->A[g][2 * t + 9]), a3 = pack2(in->A[g + 8][2 * t + 8], in->A[g + 8][2 * t + 9]);
        uint32_t b1 = pack2(in->B[2 * t + 8][g], in->B[2 * t + 9][g]);
        if (!F16ACC) {
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                         "{%10,%11,%12,%13};"
                         : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
        } else {
            __half2 c01 = __floats2half2_rn(c[0], c[1]), c23 = __floats2half2_rn(c[2], c[3]);
            uint32_t ci0, ci1, d0, d1;
            memcpy(&ci0, &c01, 4);
            memcpy(&ci1, &c23, 4);
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%8,%9};"
                         : "=r"(d0), "=r"(d1)
                         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(ci0), "r"(ci1));
            __half2 x0, x1;
            memcpy(&x0, &d0, 4);
            memcpy(&x1, &d1, 4);
            float2 f0 = __half22float2(x0), f1 = __half22float2(x1);
            d[0] = f0.x, d[1] = f0.y, d[2] = f1.x, d[3] = f1.y;
        }
    } else {
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                     : "r"(a0), "r"(a1), "r"(b0), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
    }
    D[g * 8 + 2 * t] = d[0], D[g * 8 + 2 * t + 1] = d[1], D[(g + 8) * 8 + 2 * t] = d[2], D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

template <int K, bool F16ACC>
static void probe_mma(const char *name)
{
    MmaData h;
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++) h.A[i][k] = h_bits(Aval(i, k));
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 8; j++) h.B[k][j] = h_bits(Bval(k, j));
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++) h.C[i][j] = Cval(i, j);
    MmaData *din;
    float *dd, got[128];
    CK(cudaMalloc(&din, sizeof h));
    CK(cudaMalloc(&dd, sizeof got));
    CK(cudaMemcpy(din, &h, sizeof h, cudaMemcpyHostToDevice));
    mma_k<K, F16ACC><<<1, 32>>>(din, dd);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, dd, sizeof got, cudaMemcpyDeviceToHost));
    CK(cudaFree(din));
    CK(cudaFree(dd));
    uint32_t want[128], gw[128];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++) {
            float s = Cval(i, j);
            for (int k = 0; k < K; k++) s += Aval(i, k) * Bval(k, j);
            want[i * 8 + j] = f_bits(s);
        }
    // spelled out: D[0][0] = C 0 + sum_k A[0][k] B[k][0], k < 16: A[0][k] = 5k%7-3, B[k][0] = 2k%5-2:
    // 6 +0 +0 +2 +3 -2 +0 -6 -2 +0 +4 +0 +2 +1 -3 -4 = 1
    if (K == 16 && want[0] != f_bits(1.0f)) printf("FAIL worked example of mma is wrong (%f)\n", *(float *)&want[0]), g_fail++;
    memcpy(gw, got, sizeof gw);
    check(name, gw, want, 128);
}

// ---- shuffles and votes -----------------------------------------------------------------------------
__global__ void shfl_k(uint32_t *out)
{
    const int l = threadIdx.x;
    const int v = 100 + l;
    uint32_t *o = out + l * 12;
    o[0] = (uint32_t)__shfl_sync(0xffffffffu, v, (l * 7) % 32);
    o[1] = (uint32_t)__shfl_sync(0xffffffffu, v, 3, 8);      // lane 3 of each group of 8
    o[2] = (uint32_t)__shfl_sync(0xffffffffu, v, 13, 8);     // 13 % 8 = 5 within the group
    o[3] = (uint32_t)__shfl_up_sync(0xffffffffu, v, 3, 16);  // lanes < 3 of each 16 keep theirs
    o[4] = (uint32_t)__shfl_down_sync(0xffffffffu, v, 5, 8); // lanes > 2 of each 8 keep theirs
    o[5] = (uint32_t)__shfl_xor_sync(0xffffffffu, v, 6);
    o[6] = (uint32_t)__shfl_xor_sync(0xffffffffu, v, 5, 4);  // xor stays inside groups of 4 only where it can
    o[7] = l < 16 ? (uint32_t)__shfl_xor_sync(0x0000ffffu, v, 1) : 0u; // half the warp
    o[8] = __ballot_sync(0xffffffffu, l % 3 == 0);
    o[9] = l < 8 ? (uint32_t)__any_sync(0xffu, l == 6) : 7u;
    o[10] = l < 8 ? (uint32_t)__all_sync(0xffu, l < 7) : 7u;
    o[11] = __float_as_uint(__shfl_sync(0xffffffffu, 2.5f * (float)l, 31 - l)); // a float travels whole
}

static void probe_shfl()
{
    uint32_t *d, got[32 * 12], want[32 * 12];
    CK(cudaMalloc(&d, sizeof got));
    shfl_k<<<1, 32>>>(d);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    CK(cudaFree(d));
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++) ballot |= (l % 3 == 0 ? 1u : 0u) << l;
    for (int l = 0; l < 32; l++) {
        uint32_t *w = want + l * 12;
        w[0] = 100 + (l * 7) % 32;
        w[1] = 100 + (l / 8) * 8 + 3;
        w[2] = 100 + (l / 8) * 8 + 5;
        w[3] = 100 + (l % 16 >= 3 ? l - 3 : l);
        w[4] = 100 + (l % 8 + 5 < 8 ? l + 5 : l);
        w[5] = 100 + (l ^ 6);
        // width 4: a source past the end of the lane's group of 4 returns the lane's own value
        w[6] = 100 + ((l ^ 5) <= ((l & ~3) | 3) ? l ^ 5 : l);
        w[7] = l < 16 ? 100 + (l ^ 1) : 0;
        w[8] = ballot;
        w[9] = l < 8 ? 1 : 7;
        w[10] = l < 8 ? 0 : 7;
        w[11] = f_bits(2.5f * (float)(31 - l));
    }
    check("shfl_votes", got, want, 32 * 12);
}

// ---- cp.async with zero fill ---------------------------------------------------------------------------
__global__ void cpasync_k(const uint8_t *g, uint32_t *out)
{
    __shared__ __align__(16) uint8_t s[4][16];
    const int l = threadIdx.x;
    for (int i = l; i < 64; i += 32) s[i / 16][i % 16] = 0xAB;
    __syncthreads();
    if (l < 4) {
        const int src_bytes = l == 0 ? 0 : l == 1 ? 4 : l == 2 ? 9 : 16;
        unsigned dst = (unsigned)__cvta_generic_to_shared(&s[l][0]);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(g + 16 * l), "r"(src_bytes));
        asm volatile("cp.async.commit_group;");
        asm volatile("cp.async.wait_group 0;");
    }
    __syncthreads();
    if (l < 16) out[l] = ((const uint32_t *)&s[0][0])[l];
}

static void probe_cpasync()
{
    uint8_t hg[64];
    for (int i = 0; i < 64; i++) hg[i] = (uint8_t)(i + 1);
    uint8_t *dg;
    uint32_t *d, got[16], want[16];
    CK(cudaMalloc(&dg, 64));
    CK(cudaMalloc(&d, sizeof got));
    CK(cudaMemcpy(dg, hg, 64, cudaMemcpyHostToDevice));
    cpasync_k<<<1, 32>>>(dg, d);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    CK(cudaFree(dg));
    CK(cudaFree(d));
    uint8_t ws[64];
    const int nb[4] = {0, 4, 9, 16};
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 16; i++) ws[16 * c + i] = i < nb[c] ? hg[16 * c + i] : 0; // the rest of the chunk is zero-filled
    memcpy(want, ws, 64);
    check("cp_async_zero_fill", got, want, 16);
}

// ---- cvt between f32 and f16 ----------------------------------------------------------------------------
__global__ void cvt_k(const float *in, int n, uint32_t *out)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        unsigned short h;
        float f;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(in[i]));
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
        out[2 * i] = h;
        out[2 * i + 1] = __float_as_uint(f);
    }
}

static void probe_cvt()
{
    // round-to-nearest-even cases: exact, halfway (even below / above), overflow, subnormals, NaN
    const float v[] = {1.0f, 1.0f + 1.0f / 1024, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65519.0f, 65520.0f,
                       -1e9f, 5.9604644775390625e-8f /* 2^-24 */, 2.98023223876953125e-8f /* 2^-25: ties to 0 */,
                       8.940696716308594e-8f /* 1.5 * 2^-24: ties to 2 * 2^-24 */,
                       1.4901161193847656e-7f /* 2.5 * 2^-24: ties to 2 * 2^-24 */, -0.0f, NAN, 0.333333333f};
    const int n = (int)(sizeof v / sizeof v[0]);
    const uint16_t wh[] = {0x3c00, 0x3c01, 0x3c00, 0x3c02, 0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x0001, 0x0000, 0x0002,
                           0x0002, 0x8000, 0x7e00, 0x3555};
    float *din;
    uint32_t *d, got[64], want[64];
    CK(cudaMalloc(&din, sizeof v));
    CK(cudaMalloc(&d, sizeof got));
    CK(cudaMemcpy(din, v, sizeof v, cudaMemcpyHostToDevice));
    cvt_k<<<1, 32>>>(din, n, d);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, d, 8 * n, cudaMemcpyDeviceToHost));
    CK(cudaFree(din));
    CK(cudaFree(d));
    for (int i = 0; i < n; i++) {
        want[2 * i] = wh[i];
        want[2 * i + 1] = f_bits(h_float(wh[i]));
    }
    // NaN: any quiet NaN will do on the way back; compare the class, keep the hardware's bits in the record
    const int nan_at = 13;
    if ((got[2 * nan_at] & 0x7c00) == 0x7c00 && (got[2 * nan_at] & 0x3ff)) want[2 * nan_at] = got[2 * nan_at];
    if (isnan(*(float *)&got[2 * nan_at + 1])) want[2 * nan_at + 1] = got[2 * nan_at + 1];
    check("cvt_f16_f32", got, want, 2 * n);
}

// ---- wgmma (sm_90a) ---------------------------------------------------------------------------------------
// hwprobe.sh defines BG_SELFTEST_SM90A when it builds for sm_90a
#if defined(BG_EMU) || defined(BG_SELFTEST_SM90A)
#define HAVE_WGMMA_PROBE 1
#endif
// A: 64 x 32 (two k16 slices), B: N x 32, both K-major in 1024-byte aligned
// tiles of 128-byte rows with the 128-byte swizzle (chunk ^ row % 8). The
// accumulator layout (PTX ISA, wgmma .m64nNk16 D): register i of thread
// (warp w, lane 4g + t) holds row 16w + g + 8 ((i / 2) % 2), column
// 8 (i / 4) + 2t + i % 2.
template <int N>
__global__ void wgmma_k(const uint16_t *A, const uint16_t *B, float *D)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(BG_EMU)
    extern __shared__ __align__(128) uint8_t raw[];
    const unsigned base = (unsigned)__cvta_generic_to_shared(raw);
    uint8_t *As = raw + (((base + 1023) & ~1023u) - base), *Bs = As + 64 * 128;
    const int t = threadIdx.x;
    for (int e = t; e < 64 * 32; e += 128) {
        const int r = e / 32, k = e % 32, chunk = (k / 8) ^ (r % 8);
        memcpy(As + r * 128 + chunk * 16 + (k % 8) * 2, &A[e], 2);
    }
    for (int e = t; e < N * 32; e += 128) {
        const int r = e / 32, k = e % 32, chunk = (k / 8) ^ (r % 8);
        memcpy(Bs + r * 128 + chunk * 16 + (k % 8) * 2, &B[e], 2);
    }
    asm volatile("fence.proxy.async.shared::cta;");
    __syncthreads();
    float d[N / 2];
    for (int i = 0; i < N / 2; i++) d[i] = 0.f;
    const unsigned a0 = (unsigned)__cvta_generic_to_shared(As), b0 = (unsigned)__cvta_generic_to_shared(Bs);
    asm volatile("wgmma.fence.sync.aligned;");
    for (int ks = 0; ks < 2; ks++) {
        auto desc = [](unsigned s) {
            return (uint64_t)((s & 0x3FFFF) >> 4) | (uint64_t)1 << 16 | (uint64_t)(1024 >> 4) << 32 | (uint64_t)1 << 62;
        };
        const uint64_t da = desc(a0 + 32 * ks), db = desc(b0 + 32 * ks);
        if (N == 8)
            asm volatile("wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0,%1,%2,%3}, %4, %5, 1, 1, 1, 0, 0;"
                         : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "l"(da), "l"(db));
        if (N == 16)
            asm volatile("wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, 1, 1, 1, 0, 0;"
                         : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                         : "l"(da), "l"(db));
    }
    asm volatile("wgmma.commit_group.sync.aligned;");
    asm volatile("wgmma.wait_group.sync.aligned 0;");
    const int w = t / 32, l = t % 32, g = l / 4, q = l % 4;
    for (int i = 0; i < N / 2; i++) D[(16 * w + g + 8 * ((i / 2) % 2)) * N + 8 * (i / 4) + 2 * q + i % 2] = d[i];
#endif
}

template <int N>
static void probe_wgmma(const char *name)
{
    uint16_t hA[64 * 32], hB[N * 32];
    for (int r = 0; r < 64; r++)
        for (int k = 0; k < 32; k++) hA[r * 32 + k] = h_bits((float)((r * 5 + k * 3) % 9 - 4));
    for (int n = 0; n < N; n++)
        for (int k = 0; k < 32; k++) hB[n * 32 + k] = h_bits((float)((n * 7 + k) % 5 - 2));
    uint16_t *dA, *dB;
    float *dD, got[64 * N];
    CK(cudaMalloc(&dA, sizeof hA));
    CK(cudaMalloc(&dB, sizeof hB));
    CK(cudaMalloc(&dD, sizeof got));
    CK(cudaMemcpy(dA, hA, sizeof hA, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, hB, sizeof hB, cudaMemcpyHostToDevice));
    const int smem = 1024 + (64 + N) * 128;
    wgmma_k<N><<<1, 128, smem>>>(dA, dB, dD);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, dD, sizeof got, cudaMemcpyDeviceToHost));
    CK(cudaFree(dA));
    CK(cudaFree(dB));
    CK(cudaFree(dD));
    uint32_t want[64 * N], gw[64 * N];
    for (int r = 0; r < 64; r++)
        for (int n = 0; n < N; n++) {
            float s = 0;
            for (int k = 0; k < 32; k++) s += h_float(hA[r * 32 + k]) * h_float(hB[n * 32 + k]);
            want[r * N + n] = f_bits(s);
        }
    memcpy(gw, got, sizeof gw);
    check(name, gw, want, 64 * N);
}

// ---- constructs the emulator's rewriter must handle ---------------------------------------------------
// Namespace-scope shared memory, several declarators in one declaration,
// named asm operands, a launch written through a macro and through a
// function pointer, and a kernel started by cudaLaunchKernel.
__shared__ int ns_shared[32];
#define LAUNCH_ONE(k, ...) k<<<1, 32>>>(__VA_ARGS__)

__global__ void constructs_k(int *out, int base)
{
    __shared__ int a[32], b, c[2][4];
    const int l = threadIdx.x;
    ns_shared[l] = base + l;
    a[l] = 2 * l;
    if (l == 0) b = 7;
    if (l < 8) c[l / 4][l % 4] = l;
    __syncthreads();
    int moved;
    asm("mov.b32 %[dst], %[src];" : [dst] "=r"(moved) : [src] "r"(ns_shared[31 - l]));
    out[l] = moved + a[l] + b + c[(l % 8) / 4][l % 4];
}

template <int K>
__global__ void scaled_k(int *out, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = K * i;
}

static void probe_constructs()
{
    int *d, got[64], want[64];
    CK(cudaMalloc(&d, sizeof got));
    LAUNCH_ONE(constructs_k, d, 1000);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, d, 32 * sizeof(int), cudaMemcpyDeviceToHost));
    // cudaLaunchKernel with a void ** argument array, as NVRTC kernels are started
    int base = 2000;
    void *args[] = {&d, &base};
    CK(cudaLaunchKernel((const void *)constructs_k, dim3(1), dim3(32), args, 0, 0));
    CK(cudaMemcpy(got + 32, d, 32 * sizeof(int), cudaMemcpyDeviceToHost));
    for (int l = 0; l < 32; l++) {
        want[l] = 1000 + (31 - l) + 2 * l + 7 + (l % 8);
        want[32 + l] = 2000 + (31 - l) + 2 * l + 7 + (l % 8);
    }
    check("rewriter_constructs", (const uint32_t *)got, (const uint32_t *)want, 64);
    void (*k)(int *, int) = scaled_k<3>; // launched through a pointer to a template instantiation
    k<<<1, 16>>>(d, 64);
    CK(cudaGetLastError());
    CK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 64; i++) want[i] = 3 * i;
    check("launch_through_pointer", (const uint32_t *)got, (const uint32_t *)want, 64);
    CK(cudaFree(d));
}

// ---- faults the emulator must report -------------------------------------------------------------------
#ifdef BG_EMU
__global__ void misaligned_ldm_k()
{
    __shared__ __align__(16) uint16_t t[16][8];
    for (int i = threadIdx.x; i < 128; i += 32) t[i / 8][i % 8] = 0;
    __syncthreads();
    unsigned a = (unsigned)__cvta_generic_to_shared(&t[threadIdx.x % 8][0]) + (threadIdx.x == 3 ? 2 : 0), r;
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r) : "r"(a));
}
__global__ void exited_lane_k(int *out)
{
    if (threadIdx.x == 7) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}
__global__ void divergent_barrier_k(int *out)
{
    __shared__ int s[64];
    s[threadIdx.x] = (int)threadIdx.x;
    if (threadIdx.x < 32) __syncthreads();
    else __syncthreads();
    out[threadIdx.x] = s[63 - threadIdx.x];
}
__global__ void oob_read_k(const float *x, float *y)
{
    y[threadIdx.x] = x[threadIdx.x + 40]; // x holds 64 floats: thread 24 on reads past them
}
__global__ void early_read_k(const float *g, float *out)
{
    __shared__ __align__(16) float s[128];
    const int t = threadIdx.x;
    unsigned dst = (unsigned)__cvta_generic_to_shared(&s[4 * t]);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, 16;" ::"r"(dst), "l"(g + 4 * t));
    asm volatile("cp.async.commit_group;");
    // no cp.async.wait_group: the ldmatrix below reads chunks still in flight
    unsigned a = (unsigned)__cvta_generic_to_shared(&s[4 * (t % 8)]), r;
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r) : "r"(a));
    asm volatile("cp.async.wait_group 0;");
    out[t] = __uint_as_float(r);
}
__global__ void missing_barrier_k(const float *g, float *out)
{
    __shared__ __align__(16) float s[256];
    const int t = threadIdx.x; // 64 threads: warp 1 reads what warp 0 copied
    unsigned dst = (unsigned)__cvta_generic_to_shared(&s[4 * t]);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, 16;" ::"r"(dst), "l"(g + 4 * t));
    asm volatile("cp.async.commit_group;");
    asm volatile("cp.async.wait_group 0;");
    // a __syncthreads belongs here
    unsigned a = (unsigned)__cvta_generic_to_shared(&s[4 * ((t + 32) % 64)]), r;
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r) : "r"(a));
    out[t] = __uint_as_float(r);
}
__global__ void big_smem_k(float *out)
{
    extern __shared__ float dyn[];
    __shared__ float st[1024];
    st[threadIdx.x] = 1.f;
    dyn[threadIdx.x] = 2.f;
    __syncthreads();
    out[threadIdx.x] = st[threadIdx.x] + dyn[threadIdx.x];
}
__global__ void __launch_bounds__(64) bounded_k(float *out) { out[threadIdx.x] = 1.f; }
__global__ void dyn_overrun_k(float *out)
{
    extern __shared__ float dyn[];
    dyn[threadIdx.x] = 1.f; // 64 threads, 128 bytes of dynamic memory
    __syncthreads();
    out[threadIdx.x] = dyn[threadIdx.x];
}
__global__ void deadlock_k(int *out)
{
    int v = (int)threadIdx.x;
    if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1); // lanes 16-31 never come
    else __syncthreads();
    out[threadIdx.x] = v;
}

static void expect_fault(const char *name, cudaError_t want)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != want) {
        g_fail++;
        printf("FAIL fault %s: got %s, want %s\n", name, cudaGetErrorName(e), cudaGetErrorName(want));
    } else g_pass++;
}

static void probe_faults()
{
    printf("     (the emulator reports each of the following faults; the messages are expected)\n");
    fflush(stdout);
    int *di;
    float *df, *dg;
    CK(cudaMalloc(&di, 256 * sizeof(int)));
    CK(cudaMalloc(&df, 64 * sizeof(float)));
    CK(cudaMalloc(&dg, 512 * sizeof(float)));
    CK(cudaMemset(dg, 0, 512 * sizeof(float)));
    misaligned_ldm_k<<<1, 32>>>();
    expect_fault("ldmatrix_misaligned", cudaErrorMisalignedAddress);
    exited_lane_k<<<1, 32>>>(di);
    expect_fault("shuffle_names_exited_lane", cudaErrorLaunchFailure);
    divergent_barrier_k<<<1, 64>>>(di);
    expect_fault("barriers_at_two_sites", cudaErrorLaunchFailure);
    oob_read_k<<<1, 32>>>(df, df);
    expect_fault("read_past_allocation", cudaErrorIllegalAddress);
    const char *cp = getenv("BGEMU_CP_ASYNC");
    if (!cp || strcmp(cp, "early")) {
        early_read_k<<<1, 32>>>(dg, df);
        expect_fault("ldmatrix_before_cp_async_wait", cudaErrorLaunchFailure);
    }
    missing_barrier_k<<<1, 64>>>(dg, dg + 256);
    expect_fault("ldmatrix_without_barrier_after_cp_async", cudaErrorLaunchFailure);
    big_smem_k<<<1, 32, 45 * 1024>>>(df); // 4 KiB static + 45 KiB dynamic, no opt-in
    expect_fault("static_plus_dynamic_over_48k", cudaErrorInvalidValue);
    bounded_k<<<1, 128>>>(df);
    expect_fault("over_launch_bounds", cudaErrorLaunchOutOfResources);
    dyn_overrun_k<<<1, 64, 128>>>(df);
    expect_fault("dynamic_shared_overrun", cudaErrorIllegalAddress);
    deadlock_k<<<1, 64>>>(di);
    expect_fault("deadlock", cudaErrorLaunchFailure);
    CK(cudaFree(di));
    CK(cudaFree(df));
    CK(cudaFree(dg));
}
#endif

int main(int argc, char **argv)
{
    const char *fixture = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--record") && i + 1 < argc) {
            g_record = fopen(argv[++i], "w");
            if (!g_record) return printf("cannot write %s\n", argv[i]), 2;
        } else if (!strcmp(argv[i], "--fixture") && i + 1 < argc) fixture = argv[++i];
        else return printf("usage: %s [--record FILE] [--fixture FILE]\n", argv[0]), 2;
    }
    if (fixture) {
        FILE *f = fopen(fixture, "rb");
        if (!f) return printf("cannot read %s\n", fixture), 2;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        g_fixture = (char *)calloc((size_t)n + 2, 1);
        g_fixture[0] = '\n';
        if (fread(g_fixture + 1, 1, (size_t)n, f) != (size_t)n) return printf("cannot read %s\n", fixture), 2;
        fclose(f);
    }
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    printf("emulator self-test on %s (sm_%d%d)\n", p.name, p.major, p.minor);
    if (g_record) fprintf(g_record, "# device %s sm_%d%d\n", p.name, p.major, p.minor);
    probe_ldmatrix<1, false>("ldmatrix_x1");
    probe_ldmatrix<2, false>("ldmatrix_x2");
    probe_ldmatrix<4, false>("ldmatrix_x4");
    probe_ldmatrix<1, true>("ldmatrix_x1_trans");
    probe_ldmatrix<2, true>("ldmatrix_x2_trans");
    probe_ldmatrix<4, true>("ldmatrix_x4_trans");
    probe_mma<16, false>("mma_m16n8k16_f32");
    probe_mma<16, true>("mma_m16n8k16_f16acc");
    probe_mma<8, false>("mma_m16n8k8_f32");
    probe_shfl();
    probe_cpasync();
    probe_cvt();
    probe_constructs();
#ifdef HAVE_WGMMA_PROBE
    if (p.major == 9) {
        CK(cudaFuncSetAttribute(wgmma_k<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 1024 + 72 * 128));
        CK(cudaFuncSetAttribute(wgmma_k<16>, cudaFuncAttributeMaxDynamicSharedMemorySize, 1024 + 80 * 128));
        probe_wgmma<8>("wgmma_m64n8k16_swizzle128");
        probe_wgmma<16>("wgmma_m64n16k16_swizzle128");
    }
#endif
#ifdef BG_EMU
    probe_faults();
#endif
    if (g_record) fclose(g_record);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
