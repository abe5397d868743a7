// Softmax cross-entropy kernels (see kernels/loss.h). One warp per row: the
// lanes stride over the classes and combine max and sums with a fixed
// butterfly, so a row's result does not depend on the launch. expf/logf are
// the accurate versions (no fast-math), the statistics are f32.
#include "loss.h"
#include "reduce.cuh"

namespace {

using bgkr::ld;
using bgkr::st;

constexpr int kWarps = 8; // rows per block

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) xent_rows_k(const T *x, const int32_t *lab, float *p, float *row_loss,
                                                          int64_t n, int64_t k, float eps)
{
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * kWarps;
    for (int64_t i = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); i < n; i += warps) {
        const T *xr = x + i * k;
        float mx = -INFINITY, sum_x = 0.f;
        for (int64_t j = lane; j < k; j += 32) {
            const float v = ld(xr, j);
            mx = fmaxf(mx, v);
            sum_x += v;
        }
        mx = bgkr::warp_max(mx);
        sum_x = bgkr::warp_sum(sum_x);
        float sum = 0.f;
        for (int64_t j = lane; j < k; j += 32) sum += expf(ld(xr, j) - mx);
        sum = bgkr::warp_sum(sum);
        const float lse = mx + logf(sum);
        float *pr = p + i * k;
        for (int64_t j = lane; j < k; j += 32) pr[j] = expf(ld(xr, j) - lse);
        if (lane == 0) {
            const int32_t l = lab[i];
            const bool ok = l >= 0 && (int64_t)l < k;
            const float tx = ok ? (1.f - eps) * ld(xr, l) + eps / (float)k * sum_x : NAN;
            row_loss[i] = lse - tx;
        }
    }
}

// One block of kSumThreads: each thread sums rows t, t+T, ... in order, then
// a fixed tree. n is small (a batch), so one block is plenty.
constexpr int kSumThreads = 1024;

__global__ void __launch_bounds__(kSumThreads) mean_k(const float *row_loss, float *loss, int64_t n)
{
    __shared__ float smem[kSumThreads];
    float acc = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += kSumThreads) acc += row_loss[i];
    acc = bgkr::block_sum(smem, acc);
    if (threadIdx.x == 0) loss[0] = acc / (float)n;
}

template <typename T>
__global__ void xent_bwd_k(const float *p, const int32_t *lab, const float *dloss, T *dx, int64_t n, int64_t k,
                           float eps)
{
    const float scale = dloss[0] / (float)n, off = eps / (float)k;
    const int64_t total = n * k;
    for (int64_t t = bgkr::gtid(); t < total; t += bgkr::gstride()) {
        const int64_t i = t / k, j = t % k;
        const int32_t l = lab[i];
        const float target = (j == (int64_t)l ? 1.f - eps : 0.f) + off;
        float g = (p[t] - target) * scale;
        if (l < 0 || (int64_t)l >= k) g = NAN;
        st(dx, t, ld(dx, t) + g);
    }
}

} // namespace

extern "C" void bg_cuda_xent_fwd(const void *logits, const int32_t *labels, float *probs, float *row_loss, float *loss,
                                 int64_t n, int64_t k, float label_smoothing, int half, void *stream)
{
    if (n <= 0 || k <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    int64_t blocks = (n + kWarps - 1) / kWarps;
    unsigned grid = (unsigned)(blocks < bgkr::kMaxBlocks ? blocks : bgkr::kMaxBlocks);
    if (half)
        xent_rows_k<__half><<<grid, kWarps * 32, 0, st>>>((const __half *)logits, labels, probs, row_loss, n, k,
                                                          label_smoothing);
    else
        xent_rows_k<float><<<grid, kWarps * 32, 0, st>>>((const float *)logits, labels, probs, row_loss, n, k,
                                                         label_smoothing);
    mean_k<<<1, kSumThreads, 0, st>>>(row_loss, loss, n);
}

extern "C" void bg_cuda_xent_bwd(const float *probs, const int32_t *labels, const float *dloss, void *dx, int64_t n,
                                 int64_t k, float label_smoothing, int half, void *stream)
{
    const int64_t total = n * k;
    if (total <= 0 || !dx) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (half)
        xent_bwd_k<__half><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(probs, labels, dloss, (__half *)dx, n, k,
                                                                             label_smoothing);
    else
        xent_bwd_k<float><<<bgkr::blocks_for(total), bgkr::kThreads, 0, st>>>(probs, labels, dloss, (float *)dx, n, k,
                                                                            label_smoothing);
}
