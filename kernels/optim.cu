// The fused multi-tensor optimizer update and the inf/NaN check (see
// kernels/optim.h). One block per chunk (grid-stride over chunks), each
// thread striding through its chunk; a chunk belongs to one tensor, so the
// entry is read once per block. Every arithmetic step uses the _rn
// intrinsics in the order of engine/optim_kernels.inc: no FMA contraction,
// correctly rounded division and square root, hence the CPU's f32 results.
#include "optim.h"
#include "reduce.cuh"

namespace {

__device__ __forceinline__ float M(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float A(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float S(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float D(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float SQ(float a) { return __fsqrt_rn(a); }
// torch.maximum: NaN in either operand wins (optim_kernels.inc's nanmax).
__device__ __forceinline__ float nanmax(float a, float b) { return (a > b || a != a) ? a : b; }

__device__ __forceinline__ float grad_at(const bg_opt_tensor &t, int64_t i)
{
    return t.g_half ? __half2float(((const __half *)t.g)[i]) : ((const float *)t.g)[i];
}

template <int KIND>
__device__ __forceinline__ void update(const bg_opt_tensor &t, int64_t i, float d)
{
    const float *s = t.s;
    const bool wd = t.flags & BG_OPTF_WD;
    float p = t.p[i];
    if (KIND == BG_OPTK_SGD) {
        if (wd) d = A(d, M(s[0], p));
        if (t.b0) {
            const float b = (t.flags & BG_OPTF_FIRST) ? d : A(M(t.b0[i], s[1]), M(s[2], d));
            t.b0[i] = b;
            d = (t.flags & BG_OPTF_NESTEROV) ? A(d, M(s[1], b)) : b;
        }
        p = A(p, M(s[3], d));
    } else if (KIND == BG_OPTK_ADAM || KIND == BG_OPTK_ADAMW) {
        if (t.flags & BG_OPTF_DECOUPLED) p = M(p, s[1]);
        if (wd) d = A(d, M(s[0], p));
        const float m = A(M(t.b0[i], s[2]), M(s[4], d));
        const float v = A(M(t.b1[i], s[3]), M(M(s[5], d), d));
        t.b0[i] = m;
        t.b1[i] = v;
        float q = v;
        if (t.b2) q = t.b2[i] = nanmax(t.b2[i], v);
        const float denom = A(D(SQ(q), s[6]), s[7]);
        p = A(p, D(M(s[8], m), denom));
    } else if (KIND == BG_OPTK_ADAMAX) {
        if (wd) d = A(d, M(s[0], p));
        const float m = A(M(t.b0[i], s[1]), M(s[3], d));
        const float u = nanmax(M(t.b1[i], s[2]), A(fabsf(d), s[4]));
        t.b0[i] = m;
        t.b1[i] = u;
        p = A(p, D(M(s[5], m), u));
    } else if (KIND == BG_OPTK_ADAGRAD) {
        if (wd) d = A(d, M(s[0], p));
        const float sum = A(t.b0[i], M(d, d));
        t.b0[i] = sum;
        const float sd = A(SQ(sum), s[1]);
        p = A(p, D(M(s[2], d), sd));
    } else if (KIND == BG_OPTK_ADADELTA) {
        if (wd) d = A(d, M(s[0], p));
        const float sq = A(M(t.b0[i], s[1]), M(M(s[2], d), d));
        t.b0[i] = sq;
        const float sd = SQ(A(sq, s[3]));
        const float delta = M(D(SQ(A(t.b1[i], s[3])), sd), d);
        t.b1[i] = A(M(t.b1[i], s[1]), M(M(s[2], delta), delta));
        p = A(p, M(s[4], delta));
    } else { // ASGD
        if (wd) d = A(d, M(s[0], p));
        float q = M(p, s[1]);
        q = A(q, M(s[2], d));
        p = q;
        t.b0[i] = (t.flags & BG_OPTF_AVERAGE) ? A(t.b0[i], M(S(q, t.b0[i]), s[3])) : q;
    }
    t.p[i] = p;
    if (t.p16) ((__half *)t.p16)[i] = __float2half_rn(p);
}

template <int KIND>
__global__ void __launch_bounds__(256) update_k(const bg_opt_tensor *ts, const bg_opt_chunk *cs, int64_t n_chunks,
                                               const float *inv_scale, const int32_t *found_inf)
{
    if (found_inf && *found_inf) return; // the loss scaler skips this step
    const float inv = inv_scale ? *inv_scale : 1.f;
    for (int64_t c = blockIdx.x; c < n_chunks; c += gridDim.x) {
        const bg_opt_chunk ch = cs[c];
        const bg_opt_tensor t = ts[ch.tensor];
        const int64_t end = ch.start + BG_OPT_CHUNK < t.n ? ch.start + BG_OPT_CHUNK : t.n;
        for (int64_t i = ch.start + threadIdx.x; i < end; i += blockDim.x) update<KIND>(t, i, M(grad_at(t, i), inv));
    }
}

__global__ void __launch_bounds__(256) nonfinite_k(const bg_opt_tensor *ts, const bg_opt_chunk *cs, int64_t n_chunks,
                                                  const float *inv_scale, int32_t *found_inf)
{
    const float inv = inv_scale ? *inv_scale : 1.f;
    for (int64_t c = blockIdx.x; c < n_chunks; c += gridDim.x) {
        const bg_opt_chunk ch = cs[c];
        const bg_opt_tensor t = ts[ch.tensor];
        const int64_t end = ch.start + BG_OPT_CHUNK < t.n ? ch.start + BG_OPT_CHUNK : t.n;
        int bad = 0;
        for (int64_t i = ch.start + threadIdx.x; i < end; i += blockDim.x) bad |= !isfinite(M(grad_at(t, i), inv));
        if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1;
    }
}

unsigned grid_for(int64_t n_chunks)
{
    return (unsigned)(n_chunks < bgkr::kMaxBlocks ? n_chunks : bgkr::kMaxBlocks);
}

} // namespace

extern "C" void bg_cuda_optim_update(int kind, const bg_opt_tensor *tensors, const bg_opt_chunk *chunks,
                                     int64_t n_chunks, const float *inv_scale, const int32_t *found_inf, void *stream)
{
    if (n_chunks <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    const unsigned g = grid_for(n_chunks);
    switch (kind) {
    case BG_OPTK_SGD: update_k<BG_OPTK_SGD><<<g, 256, 0, st>>>(tensors, chunks, n_chunks, inv_scale, found_inf); break;
    case BG_OPTK_ADAM: update_k<BG_OPTK_ADAM><<<g, 256, 0, st>>>(tensors, chunks, n_chunks, inv_scale, found_inf); break;
    case BG_OPTK_ADAMW: update_k<BG_OPTK_ADAMW><<<g, 256, 0, st>>>(tensors, chunks, n_chunks, inv_scale, found_inf); break;
    case BG_OPTK_ADAMAX: update_k<BG_OPTK_ADAMAX><<<g, 256, 0, st>>>(tensors, chunks, n_chunks, inv_scale, found_inf); break;
    case BG_OPTK_ADAGRAD: update_k<BG_OPTK_ADAGRAD><<<g, 256, 0, st>>>(tensors, chunks, n_chunks, inv_scale, found_inf); break;
    case BG_OPTK_ADADELTA: update_k<BG_OPTK_ADADELTA><<<g, 256, 0, st>>>(tensors, chunks, n_chunks, inv_scale, found_inf); break;
    case BG_OPTK_ASGD: update_k<BG_OPTK_ASGD><<<g, 256, 0, st>>>(tensors, chunks, n_chunks, inv_scale, found_inf); break;
    default: break; // optim.c only passes valid kinds
    }
}

extern "C" void bg_cuda_nonfinite_check(const bg_opt_tensor *tensors, const bg_opt_chunk *chunks, int64_t n_chunks,
                                        const float *inv_scale, int32_t *found_inf, void *stream)
{
    if (n_chunks <= 0) return;
    nonfinite_k<<<grid_for(n_chunks), 256, 0, (cudaStream_t)stream>>>(tensors, chunks, n_chunks, inv_scale, found_inf);
}
