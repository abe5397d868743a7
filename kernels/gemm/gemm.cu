// GEMM launchers (kernels/gemm/gemm.h): argument checks, algorithm and tile
// choice, split-K, the naive reference kernel, the bias-gradient column sum,
// event timing, and the host helpers of igemm_launch.h shared with conv.
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include "gemm.h"
#include "gemm_problem.cuh"
#include "igemm_launch.h"
#include "../rtc/rtc_internal.h"

namespace bgk {

int fail(char *err, size_t errn, int code, const char *fmt, ...)
{
    if (err && errn) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errn, fmt, ap);
        va_end(ap);
    }
    return code;
}

int cuda_fail(char *err, size_t errn, cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return 0;
    return fail(err, errn, (int)e, "%s: %s", what, cudaGetErrorString(e));
}

int sm_count()
{
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

static long long tiles(long long M, long long N, long long z, int bm, int bn)
{
    return ((M + bm - 1) / bm) * ((N + bn - 1) / bn) * z;
}

int tc_pick(long long M, long long N, long long z, int sms)
{
    if (sms <= 0) sms = NOMINAL_SMS; // unknown device: plan for an H100
    if (N > 64 && tiles(M, N, z, 128, 128) >= sms) return CFG_L;
    if (tiles(M, N, z, 128, 64) >= sms) return CFG_W;
    return CFG_S;
}

int simt_pick(long long M, long long N, long long z, int sms)
{
    if (sms <= 0) sms = NOMINAL_SMS;
    return tiles(M, N, z, 128, 128) >= sms ? CFG_L : CFG_S;
}

const char *tc_name(int cfg)
{
    switch (cfg) {
    case CFG_L: return "128x128x32/8w/4st";
    case CFG_W: return "128x64x32/4w/4st";
    case CFG_S: return "64x64x32/4w/4st";
    default: return NULL;
    }
}

__device__ __forceinline__ int pad_map(PadMap m, int i) { return m.pad > 0 ? (i / m.real) * m.pad + i % m.real : i; }

const char *cfg_type_name(bool simt, bool scalar, int cfg)
{
    if (simt) return cfg == CFG_L ? "bgk::SimtCfg<128, 128, 8>" : "bgk::SimtCfg<64, 64, 8>";
    if (scalar) return "bgk::TcCfg<64, 64, 32, 2, 2, 4>";
    switch (cfg) {
    case CFG_L: return "bgk::TcCfg<128, 128, 32, 2, 4, 4, 2>";
    case CFG_W: return "bgk::TcCfg<128, 64, 32, 2, 2, 4>";
    default: return "bgk::TcCfg<64, 64, 32, 2, 2, 4>";
    }
}

template <class T>
__global__ void splitk_reduce_k(const float *ws, long long ws_stride, int splits, T *out, int rows, int cols,
                                long long ldo, long long ldw, PadMap rmap, PadMap cmap, BgEpilogue epi)
{
    const long long total = (long long)rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const int r = (int)(i / cols), c = (int)(i - (long long)r * cols);
        const float *src = ws + pad_map(rmap, r) * ldw + pad_map(cmap, c);
        float s = 0.f;
        for (int k = 0; k < splits; k++) s += src[k * ws_stride];
        epi_one<T>(epi, out, r * ldo + c, c, s);
    }
}

cudaError_t splitk_reduce(const float *ws, long long ws_stride, int splits, void *out, int half, int rows, int cols,
                          long long ldo, long long ldw, PadMap rmap, PadMap cmap, const BgEpilogue &epi,
                          cudaStream_t s)
{
    const long long total = (long long)rows * cols;
    if (total <= 0) return cudaSuccess;
    const int threads = 256;
    const long long want = (total + threads - 1) / threads;
    const int blocks = (int)(want < 65535 ? want : 65535);
    if (half)
        splitk_reduce_k<bg_f16><<<blocks, threads, 0, s>>>(ws, ws_stride, splits, (bg_f16 *)out, rows, cols, ldo, ldw,
                                                           rmap, cmap, epi);
    else
        splitk_reduce_k<float><<<blocks, threads, 0, s>>>(ws, ws_stride, splits, (float *)out, rows, cols, ldo, ldw,
                                                          rmap, cmap, epi);
    return cudaGetLastError();
}

// ---- the naive reference: one thread per output, sum in k order ----------------------
template <class T>
__global__ void gemm_naive_k(const BgIgemmParams p, int ta, int tb)
{
    const BgGeo &g = p.geo;
    const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= (long long)g.M * g.N) return;
    const int m = (int)(idx / g.N), n = (int)(idx - (long long)m * g.N), z = blockIdx.y;
    const T *A = (const T *)p.a + z * g.sA, *B = (const T *)p.b + z * g.sB;
    float acc = 0.f;
    for (int k = 0; k < g.K; k++) {
        const float a = to_f(ta ? A[k * g.lda + m] : A[m * g.lda + k]);
        const float b = to_f(tb ? B[n * g.ldb + k] : B[k * g.ldb + n]);
        acc = fmaf(a, b, acc);
    }
    epi_one<T>(p.epi, (T *)p.out, z * g.sC + m * g.ldc + n, n, acc);
}

// ---- instantiation switches -------------------------------------------------------------
template <bool TA, bool TB>
static cudaError_t run_tc(int cfg, bool vec, dim3 grid_of_cfg[CFG_COUNT], cudaStream_t s, const BgIgemmParams &p)
{
    if (!vec)
        return launch(tc_kernel<TcScalar, GemmProb<BgGeo, bg_f16, TcScalar, TA, TB>, false>, grid_of_cfg[CFG_S],
                      TcScalar::THREADS, TcScalar::SMEM_SCALAR, s, p);
    switch (cfg) {
    case CFG_L:
        return launch(tc_kernel<TcL, GemmProb<BgGeo, bg_f16, TcL, TA, TB>, true>, grid_of_cfg[CFG_L], TcL::THREADS,
                      TcL::SMEM_VEC, s, p);
    case CFG_W:
        return launch(tc_kernel<TcW, GemmProb<BgGeo, bg_f16, TcW, TA, TB>, true>, grid_of_cfg[CFG_W], TcW::THREADS,
                      TcW::SMEM_VEC, s, p);
    default:
        return launch(tc_kernel<TcS, GemmProb<BgGeo, bg_f16, TcS, TA, TB>, true>, grid_of_cfg[CFG_S], TcS::THREADS,
                      TcS::SMEM_VEC, s, p);
    }
}

template <bool TA, bool TB>
static cudaError_t run_simt(int cfg, dim3 grid_of_cfg[CFG_COUNT], cudaStream_t s, const BgIgemmParams &p)
{
    if (cfg == CFG_L)
        return launch(simt_kernel<SimtL, GemmProb<BgGeo, float, SimtL, TA, TB>>, grid_of_cfg[CFG_L], SimtL::THREADS,
                      SimtL::SMEM, s, p);
    return launch(simt_kernel<SimtS, GemmProb<BgGeo, float, SimtS, TA, TB>>, grid_of_cfg[CFG_S], SimtS::THREADS,
                  SimtS::SMEM, s, p);
}

} // namespace bgk

using namespace bgk;

extern "C" const char *bg_gemm_config_name(int half, int config)
{
    if (half) return tc_name(config);
    return config == CFG_L ? "128x128x8/fma" : config == CFG_S ? "64x64x8/fma" : NULL;
}

static bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

extern "C" int bg_gemm_cuda(const bg_gemm_desc *d, bg_gemm_algo algo, void *stream, char *err, size_t errn)
{
    if (!d) return fail(err, errn, BG_KERR_ARG, "gemm: no descriptor");
    const int batch = d->batch > 0 ? d->batch : 1;
    if (d->m < 0 || d->n < 0 || d->k < 0)
        return fail(err, errn, BG_KERR_ARG, "gemm: negative size m=%d n=%d k=%d", d->m, d->n, d->k);
    if (d->m == 0 || d->n == 0) return 0;
    const long long min_lda = d->ta ? d->m : d->k, min_ldb = d->tb ? d->k : d->n;
    if (d->lda < (min_lda > 1 ? min_lda : 1) || d->ldb < (min_ldb > 1 ? min_ldb : 1) || d->ldc < d->n)
        return fail(err, errn, BG_KERR_ARG,
                    "gemm: leading dimensions lda=%lld ldb=%lld ldc=%lld too small for m=%d n=%d k=%d ta=%d tb=%d "
                    "(need >= %lld, %lld, %d)",
                    (long long)d->lda, (long long)d->ldb, (long long)d->ldc, d->m, d->n, d->k, d->ta, d->tb, min_lda,
                    min_ldb, d->n);
    if (d->act < BG_ACT_NONE || d->act > BG_ACT_SIGMOID) return fail(err, errn, BG_KERR_ARG, "gemm: unknown activation %d", d->act);
    if (!d->C || (d->k > 0 && (!d->A || !d->B)))
        return fail(err, errn, BG_KERR_ARG, "gemm: null operand (A %p, B %p, C %p)", d->A, d->B, d->C);
    if (batch > 65535) return fail(err, errn, BG_KERR_ARG, "gemm: batch %d exceeds 65535", batch);
    if (!d->half && (algo == BG_GEMM_TC || algo == BG_GEMM_TC_SCALAR))
        return fail(err, errn, BG_KERR_ARG, "gemm: the tensor-core algorithms take f16 operands; these are f32");
    if (d->half && algo == BG_GEMM_SIMT)
        return fail(err, errn, BG_KERR_ARG, "gemm: the FMA algorithm takes f32 operands; these are f16");

    cudaStream_t s = (cudaStream_t)stream;
    BgIgemmParams p = {};
    p.geo.M = d->m, p.geo.N = d->n, p.geo.K = d->k, p.geo.batch = batch;
    p.geo.lda = d->lda, p.geo.ldb = d->ldb, p.geo.ldc = d->ldc;
    p.geo.sA = d->sA, p.geo.sB = d->sB, p.geo.sC = d->sC;
    p.epi.alpha = d->alpha, p.epi.beta = d->beta, p.epi.bias = d->bias, p.epi.act = d->act;
    p.a = d->A, p.b = d->B, p.out = d->C;
    p.splits = 1;

    if (algo == BG_GEMM_NAIVE) {
        const long long total = (long long)d->m * d->n;
        const dim3 grid((unsigned)((total + 255) / 256), (unsigned)batch);
        if (d->half) gemm_naive_k<bg_f16><<<grid, 256, 0, s>>>(p, d->ta, d->tb);
        else gemm_naive_k<float><<<grid, 256, 0, s>>>(p, d->ta, d->tb);
        return cuda_fail(err, errn, cudaGetLastError(), "gemm naive launch");
    }

    if (algo == BG_GEMM_WGMMA) {
        int dev = 0, major = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
            cudaGetLastError(), major = 0;
        if (!d->half || d->ta || !d->tb || d->splits > 1)
            return fail(err, errn, BG_KERR_ARG, "gemm: the wgmma path takes f16 A (m x k) and B (n x k), ta=0 tb=1, no split-K");
        if (!aligned16(d->A) || !aligned16(d->B) || d->lda % 8 || d->ldb % 8 || (batch > 1 && (d->sA % 8 || d->sB % 8)))
            return fail(err, errn, BG_KERR_ARG, "gemm: the wgmma path needs 16-byte aligned rows (lda, ldb multiples of 8)");
        if (major != 9)
            return fail(err, errn, BG_KERR_UNSUPPORTED, "gemm: wgmma needs a Hopper (sm_90) device, this one is sm_%d", major * 10);
        cudaError_t e = wgmma_gemm_launch(p, batch, s);
        if (e == cudaErrorNotSupported)
            return fail(err, errn, BG_KERR_UNSUPPORTED,
                        "gemm: this build has no sm_90a code; compile kernels/gemm/*_sm90a.cu with "
                        "-gencode arch=compute_90a,code=sm_90a -DBG_SM90A_BUILD=1 (docs/kernels-gemm-conv.md)");
        return cuda_fail(err, errn, e, "gemm wgmma launch");
    }

    // deterministic: the tile from the shape alone (a nominal H100), never the device's SM count
    const int sms = d->deterministic ? NOMINAL_SMS : sm_count();
    // split-K: batch 1, a workspace, and enough K to share out
    int splits = d->splits > 1 ? d->splits : 1;
    if (splits > 1) {
        const size_t need = (size_t)splits * (size_t)d->m * (size_t)d->ldc * sizeof(float);
        if (batch != 1 || !d->ws || d->ws_bytes < need)
            return fail(err, errn, BG_KERR_ARG,
                        "gemm: split-K x%d needs batch 1 and a %zu-byte f32 workspace (batch %d, ws %zu bytes)", splits,
                        need, batch, d->ws ? d->ws_bytes : (size_t)0);
    }

    bool vec = false;
    int cfg;
    if (d->half) {
        vec = aligned16(d->A) && aligned16(d->B) && d->lda % 8 == 0 && d->ldb % 8 == 0 &&
              (batch == 1 || (d->sA % 8 == 0 && d->sB % 8 == 0));
        if (algo == BG_GEMM_TC && !vec)
            return fail(err, errn, BG_KERR_ARG,
                        "gemm: the cp.async path needs 16-byte aligned A and B with lda, ldb (and batch strides) "
                        "multiples of 8 (lda=%lld ldb=%lld)",
                        (long long)d->lda, (long long)d->ldb);
        if (algo == BG_GEMM_TC_SCALAR) vec = false;
        cfg = vec ? (d->config > 0 ? d->config : tc_pick(d->m, d->n, batch, sms)) : CFG_S;
        if (cfg >= CFG_COUNT) return fail(err, errn, BG_KERR_ARG, "gemm: no tensor-core config %d", d->config);
    } else {
        cfg = d->config > 0 ? d->config : simt_pick(d->m, d->n, batch, sms);
        if (cfg != CFG_L && cfg != CFG_S) return fail(err, errn, BG_KERR_ARG, "gemm: no FMA config %d", d->config);
    }

    const int bk = d->half ? 32 : 8;
    const int ktiles = (d->k + bk - 1) / bk;
    if (splits > ktiles) splits = ktiles > 0 ? ktiles : 1;
    if (splits > 1) {
        p.splits = splits;
        p.kt_per_split = (ktiles + splits - 1) / splits;
        p.splits = (ktiles + p.kt_per_split - 1) / p.kt_per_split; // no empty slices
        p.ws = d->ws;
        p.ws_stride = (long long)d->m * d->ldc;
    }
    dim3 grids[CFG_COUNT];
    const unsigned gz = (unsigned)(batch * p.splits);
    grids[CFG_L] = dim3((unsigned)((d->m + 127) / 128), (unsigned)((d->n + 127) / 128), gz);
    grids[CFG_W] = dim3((unsigned)((d->m + 127) / 128), (unsigned)((d->n + 63) / 64), gz);
    grids[CFG_S] = dim3((unsigned)((d->m + 63) / 64), (unsigned)((d->n + 63) / 64), gz);
    if (grids[CFG_S].y > 65535) return fail(err, errn, BG_KERR_ARG, "gemm: n=%d needs too many column tiles", d->n);

    cudaError_t e = cudaSuccess;
    const int sel = d->ta * 2 + d->tb;
    const void *fn = NULL; // an NVRTC specialisation, when a cache is given and it compiles
    if (d->rtc) {
        static const char *targs[4] = {"false, false", "false, true", "true, false", "true, true"};
        if (rtc_igemm_kernel(d->rtc, "bgk::GemmProb", targs[sel], cfg_type_name(!d->half, d->half && !vec, cfg),
                             vec, !d->half, p.geo, &fn))
            fn = NULL;
    }
    if (fn) {
        int bm = 64, bn = 64, threads = 128, smem = TcS::SMEM_SCALAR;
        if (!d->half) bm = bn = cfg == CFG_L ? 128 : 64, threads = 256, smem = cfg == CFG_L ? SimtL::SMEM : SimtS::SMEM;
        else if (vec && cfg == CFG_L) bm = 128, bn = 128, threads = TcL::THREADS, smem = TcL::SMEM_VEC;
        else if (vec && cfg == CFG_W) bm = 128, bn = 64, threads = TcW::THREADS, smem = TcW::SMEM_VEC;
        else if (vec) smem = TcS::SMEM_VEC;
        const dim3 grid((unsigned)((d->m + bm - 1) / bm), (unsigned)((d->n + bn - 1) / bn), gz);
        if (smem > 48 * 1024) e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        void *args[] = {(void *)&p};
        if (e == cudaSuccess) e = cudaLaunchKernel(fn, grid, dim3(threads), args, (size_t)smem, s);
    } else if (d->half) {
        switch (sel) {
        case 0: e = run_tc<false, false>(cfg, vec, grids, s, p); break;
        case 1: e = run_tc<false, true>(cfg, vec, grids, s, p); break;
        case 2: e = run_tc<true, false>(cfg, vec, grids, s, p); break;
        default: e = run_tc<true, true>(cfg, vec, grids, s, p); break;
        }
    } else {
        switch (sel) {
        case 0: e = run_simt<false, false>(cfg, grids, s, p); break;
        case 1: e = run_simt<false, true>(cfg, grids, s, p); break;
        case 2: e = run_simt<true, false>(cfg, grids, s, p); break;
        default: e = run_simt<true, true>(cfg, grids, s, p); break;
        }
    }
    if (e != cudaSuccess) return cuda_fail(err, errn, e, "gemm launch");
    if (p.splits > 1) {
        e = splitk_reduce(p.ws, p.ws_stride, p.splits, d->C, d->half, d->m, d->n, d->ldc, d->ldc, PadMap{0, 1}, PadMap{0, 1},
                          p.epi, s);
        if (e != cudaSuccess) return cuda_fail(err, errn, e, "gemm split-K reduce");
    }
    return 0;
}

// ---- column sums (bias gradients) ---------------------------------------------------------
// Block: 32 columns x 8 row lanes. Pass 1 sums row chunk blockIdx.y of each
// column; with one chunk it adds straight into db, otherwise into ws[chunk][col]
// and pass 2 adds the chunks up in order.
template <class T>
__global__ void colsum_k(const T *dy, long long rows, long long cols, long long ld, long long chunk, T *db, float *ws)
{
    __shared__ float part[8][33];
    const int cx = threadIdx.x & 31, cy = threadIdx.x >> 5;
    const long long j = blockIdx.x * 32LL + cx;
    const long long r0 = blockIdx.y * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
    float s = 0.f;
    if (j < cols)
        for (long long r = r0 + cy; r < r1; r += 8) s += to_f(dy[r * ld + j]);
    part[cy][cx] = s;
    __syncthreads();
    if (cy == 0 && j < cols) {
        float t = 0.f;
        for (int q = 0; q < 8; q++) t += part[q][cx];
        if (ws) ws[blockIdx.y * cols + j] = t;
        else from_f(db[j], to_f(db[j]) + t);
    }
}

template <class T>
__global__ void colsum_fin_k(const float *ws, long long nchunks, long long cols, T *db)
{
    const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (j >= cols) return;
    float t = 0.f;
    for (long long q = 0; q < nchunks; q++) t += ws[q * cols + j];
    from_f(db[j], to_f(db[j]) + t);
}

static long long colsum_chunks(long long rows) { return rows <= 4096 ? 1 : (rows + 4095) / 4096 < 512 ? (rows + 4095) / 4096 : 512; }

extern "C" size_t bg_colsum_ws_bytes(int64_t rows, int64_t cols)
{
    const long long q = colsum_chunks(rows);
    return q > 1 ? (size_t)q * (size_t)cols * sizeof(float) : 0;
}

extern "C" int bg_colsum_cuda(const void *dy, int64_t rows, int64_t cols, int64_t ld, void *db, int half, float *ws,
                              size_t ws_bytes, void *stream, char *err, size_t errn)
{
    if (rows < 0 || cols < 0 || ld < cols) return fail(err, errn, BG_KERR_ARG, "colsum: bad shape %lldx%lld ld %lld", (long long)rows, (long long)cols, (long long)ld);
    if (rows == 0 || cols == 0) return 0;
    if (!dy || !db) return fail(err, errn, BG_KERR_ARG, "colsum: null pointer");
    cudaStream_t s = (cudaStream_t)stream;
    long long q = colsum_chunks(rows);
    if (!ws || ws_bytes < (size_t)q * (size_t)cols * sizeof(float)) q = 1, ws = NULL;
    if (q == 1) ws = NULL;
    const long long chunk = (rows + q - 1) / q;
    const dim3 grid((unsigned)((cols + 31) / 32), (unsigned)q);
    if ((cols + 31) / 32 > 0x7fffffffLL) return fail(err, errn, BG_KERR_ARG, "colsum: too many columns");
    if (half) colsum_k<bg_f16><<<grid, 256, 0, s>>>((const bg_f16 *)dy, rows, cols, ld, chunk, (bg_f16 *)db, ws);
    else colsum_k<float><<<grid, 256, 0, s>>>((const float *)dy, rows, cols, ld, chunk, (float *)db, ws);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && ws) {
        const unsigned b = (unsigned)((cols + 255) / 256);
        if (half) colsum_fin_k<bg_f16><<<b, 256, 0, s>>>(ws, q, cols, (bg_f16 *)db);
        else colsum_fin_k<float><<<b, 256, 0, s>>>(ws, q, cols, (float *)db);
        e = cudaGetLastError();
    }
    return cuda_fail(err, errn, e, "colsum launch");
}

// ---- timing and device info -----------------------------------------------------------------
extern "C" int bg_cuda_time(int (*fn)(void *arg), void *arg, int warmup, int reps, void *stream, float *ms, char *err,
                            size_t errn)
{
    cudaStream_t s = (cudaStream_t)stream;
    cudaEvent_t a = NULL, b = NULL;
    int rc = 0;
    *ms = 0.f;
    for (int i = 0; i < warmup && !rc; i++) rc = fn(arg);
    if (rc) return rc;
    cudaError_t e = cudaEventCreate(&a);
    if (e == cudaSuccess) e = cudaEventCreate(&b);
    if (e == cudaSuccess) e = cudaEventRecord(a, s);
    for (int i = 0; i < reps && e == cudaSuccess && !rc; i++) rc = fn(arg);
    if (e == cudaSuccess && !rc) e = cudaEventRecord(b, s);
    if (e == cudaSuccess && !rc) e = cudaEventSynchronize(b);
    float t = 0.f;
    if (e == cudaSuccess && !rc) e = cudaEventElapsedTime(&t, a, b);
    if (a) cudaEventDestroy(a);
    if (b) cudaEventDestroy(b);
    if (rc) return rc;
    if (e != cudaSuccess) return cuda_fail(err, errn, e, "timing");
    *ms = reps > 0 ? t / reps : 0.f;
    return 0;
}

extern "C" int bg_cuda_device_info(char *name, size_t namen, int *sms, int *cc_major, int *cc_minor)
{
    int dev = 0;
    cudaDeviceProp pr;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&pr, dev) != cudaSuccess) {
        cudaGetLastError();
        return 1;
    }
    if (name && namen) snprintf(name, namen, "%s", pr.name);
    if (sms) *sms = pr.multiProcessorCount;
    if (cc_major) *cc_major = pr.major;
    if (cc_minor) *cc_minor = pr.minor;
    return 0;
}
