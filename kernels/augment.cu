// GPU augmentation (see augment.h): one block per image, the image in shared
// memory, every decision and every value computed by the functions of
// augment/aa_numerics.h that the CPU reference calls too.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include "augment.h"

namespace {

const int THREADS = 256;

// Per-block state beside the two image buffers (dynamic shared memory).
struct block_state {
    bg_aug_plan plan;
    bg_aa_prep prep;
    uint32_t hist[4][256];
    unsigned long long sum_l;
    float lut[4][256]; // normalisation table, as bg_make_batch builds it
};

int report(cudaError_t e, const char *what, char *err, size_t errn)
{
    if (e == cudaSuccess) return 0;
    if (err && errn) snprintf(err, errn, "%s: %s", what, cudaGetErrorString(e));
    return (int)e;
}

// Per-image quantities of a step: histograms -> tables (AutoContrast,
// Equalize), the grey mean (Contrast), matrices (shear, rotate).
__device__ void prepare(block_state &S, const bg_aa_step *step, const uint8_t *a, int h, int w, int c)
{
    const int tid = threadIdx.x, nt = blockDim.x, npx = h * w;
    if (tid == 0) {
        S.prep.st = *step;
        S.prep.f = (float)step->fval; // PIL's C blend takes a float
        S.prep.mean = 0;
        S.sum_l = 0;
    }
    for (int i = tid; i < 4 * 256; i += nt) (&S.hist[0][0])[i] = 0;
    __syncthreads();
    const int op = step->op;
    if (op == BG_AA_AUTOCONTRAST || op == BG_AA_EQUALIZE) {
        for (int i = tid; i < npx * c; i += nt) atomicAdd(&S.hist[i % c][a[i]], 1u); // integer: order-free
        __syncthreads();
        if (tid < c) bg_aa_channel_lut(op, S.hist[tid], S.prep.lut[tid]);
    } else if (op == BG_AA_CONTRAST) {
        unsigned long long part = 0;
        for (int i = tid; i < npx; i += nt)
            part += c >= 3 ? bg_pil_grey(a[i * c], a[i * c + 1], a[i * c + 2]) : a[i * c];
        atomicAdd(&S.sum_l, part);
        __syncthreads();
        if (tid == 0) S.prep.mean = bg_aa_contrast_mean(S.sum_l, (uint64_t)npx);
    } else if (op == BG_AA_SHEARX || op == BG_AA_SHEARY || op == BG_AA_ROTATE) {
        if (tid == 0) bg_aa_prep_geometry(&S.prep, w, h);
    }
    __syncthreads();
}

// dst = step(a) for the block's image; dst may be global or shared.
__device__ void apply(block_state &S, const bg_aa_step *step, const uint8_t *a, uint8_t *dst, int h, int w, int c)
{
    prepare(S, step, a, h, w, c);
    const int n = h * w * c;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int ch = i % c, px = i / c;
        dst[i] = bg_aa_pixel(&S.prep, a, w, h, c, px % w, px / w, ch);
    }
    __syncthreads();
}

__global__ void batch_kernel(const uint8_t *pixels, int h, int w, int c, const int64_t *idx,
                             bg_cuda_batch_cfg cfg, uint64_t seed, uint64_t step, void *out, int f16)
{
    extern __shared__ uint8_t dyn[];
    __shared__ block_state S;
    const int n = h * w * c, tid = threadIdx.x, nt = blockDim.x;
    const unsigned p = blockIdx.x;
    uint8_t *a = dyn, *b = dyn + n;
    if (tid == 0) S.plan = bg_aug_plan_make(&cfg.aug, seed, step, (uint32_t)p, h, w);
    for (int i = tid; i < c * 256; i += nt) {
        int ch = i / 256, v = i % 256;
        S.lut[ch][v] = BG_FDIV(BG_FSUB(BG_FDIV((float)v, 255.0f), cfg.mean[ch]), cfg.std[ch]);
    }
    __syncthreads();
    const uint8_t *src = pixels + (size_t)idx[p] * (size_t)n;
    for (int i = tid; i < n; i += nt) {
        int ch = i % c, px = i / c;
        a[i] = bg_aug_crop_pixel(&S.plan, src, h, w, c, px % w, px / w, ch);
    }
    __syncthreads();
    for (int k = 0; k < 2; k++) {
        if (bg_aa_is_identity(&S.plan.op[k])) continue; // uniform across the block
        apply(S, &S.plan.op[k], a, b, h, w, c);
        uint8_t *t = a;
        a = b, b = t;
    }
    const size_t base = (size_t)p * (size_t)n;
    for (int i = tid; i < n; i += nt) {
        int ch = i % c, px = i / c;
        float v = bg_aug_in_hole(&S.plan, cfg.aug.cutout, h, w, px % w, px / w)
                      ? (cfg.cutout_after_norm ? 0.0f : S.lut[ch][0]) // before: the hole is pixel 0
                      : S.lut[ch][a[i]];
        if (f16) ((__half *)out)[base + i] = __float2half_rn(v);
        else ((float *)out)[base + i] = v;
    }
}

__global__ void aa_kernel(const uint8_t *src, uint8_t *dst, int h, int w, int c, bg_aa_step st)
{
    extern __shared__ uint8_t dyn[];
    __shared__ block_state S;
    const int n = h * w * c;
    const size_t base = (size_t)blockIdx.x * (size_t)n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) dyn[i] = src[base + i];
    __syncthreads();
    if (bg_aa_is_identity(&st)) {
        for (int i = threadIdx.x; i < n; i += blockDim.x) dst[base + i] = dyn[i];
        return;
    }
    apply(S, &st, dyn, dst + base, h, w, c);
}

// Opt in to more than 48 KB of dynamic shared memory when the image needs it.
template <typename K>
int set_smem(K kernel, size_t bytes, char *err, size_t errn)
{
    int dev = 0, optin = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    if (e != cudaSuccess) return report(e, "augment: device query", err, errn);
    if (bytes + sizeof(block_state) > (size_t)optin) {
        if (err && errn)
            snprintf(err, errn, "augment: images need %zu bytes of shared memory per block, the device allows %d",
                     bytes + sizeof(block_state), optin);
        return (int)cudaErrorInvalidValue;
    }
    // Without the opt-in a block gets 48 KiB in all: the static block_state
    // counts against it too, so the dynamic bytes alone decide nothing.
    if (bytes + sizeof(block_state) > 48 * 1024)
        return report(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes),
                      "augment: shared memory opt-in", err, errn);
    return 0;
}

} // namespace

extern "C" size_t bg_cuda_augment_smem(int h, int w, int c)
{
    return 2 * (size_t)h * (size_t)w * (size_t)c;
}

extern "C" int bg_cuda_augment_batch(const uint8_t *d_pixels, int h, int w, int c, const int64_t *d_idx, int n,
                                     const bg_cuda_batch_cfg *cfg, uint64_t seed, uint64_t step, void *d_out,
                                     int out_f16, void *stream, char *err, size_t errn)
{
    if (n <= 0) return 0;
    if (h <= 0 || w <= 0 || c < 1 || c > 4 || (cfg->aug.autoaugment && c != 1 && c != 3)) {
        if (err && errn) snprintf(err, errn, "augment: images %dx%dx%d not supported", h, w, c);
        return (int)cudaErrorInvalidValue;
    }
    size_t smem = bg_cuda_augment_smem(h, w, c);
    int rc = set_smem(batch_kernel, smem, err, errn);
    if (rc) return rc;
    batch_kernel<<<n, THREADS, smem, (cudaStream_t)stream>>>(d_pixels, h, w, c, d_idx, *cfg, seed, step, d_out, out_f16);
    return report(cudaGetLastError(), "augment: batch kernel launch", err, errn);
}

extern "C" int bg_cuda_aa_apply(const uint8_t *d_src, uint8_t *d_dst, int n, int h, int w, int c, const bg_aa_step *st,
                                void *stream, char *err, size_t errn)
{
    if (n <= 0) return 0;
    if (h <= 0 || w <= 0 || (c != 1 && c != 3)) {
        if (err && errn) snprintf(err, errn, "augment: images %dx%dx%d not supported (1 or 3 channels)", h, w, c);
        return (int)cudaErrorInvalidValue;
    }
    size_t smem = (size_t)h * w * c;
    int rc = set_smem(aa_kernel, smem, err, errn);
    if (rc) return rc;
    aa_kernel<<<n, THREADS, smem, (cudaStream_t)stream>>>(d_src, d_dst, h, w, c, *st);
    return report(cudaGetLastError(), "augment: op kernel launch", err, errn);
}
