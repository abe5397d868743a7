#include "gpu_parity.h"
#include <string.h>
#ifdef BG_WITH_CUDA
#include "../kernels/gemm/gemm.h"
#endif
#include <math.h>
#include <stdlib.h>

double gp_rnd(gp_rng *r)
{
    r->s ^= r->s << 13, r->s ^= r->s >> 7, r->s ^= r->s << 17;
    return (double)(r->s >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

bg_tensor *gp_upload(bg_ctx *g, int64_t n, int half, const double *v, double *back)
{
    int64_t cnt = n > 0 ? n : 1;
    bg_tensor *t = bg_tensor_new(g, BG_CUDA, half ? BG_F16 : BG_F32, 1, &cnt, "buf");
    if (!t) return NULL;
    void *h = calloc((size_t)cnt, half ? 2 : 4);
    for (int64_t i = 0; i < n; i++) {
        if (half) {
            uint16_t b = bg_f32_to_f16((float)v[i]);
            ((uint16_t *)h)[i] = b;
            back[i] = bg_f16_to_f32(b);
        } else {
            ((float *)h)[i] = (float)v[i];
            back[i] = (float)v[i];
        }
    }
    bg_status s = h ? bg_tensor_upload(g, t, h, bg_nbytes(t)) : BG_ERR_OOM;
    free(h);
    if (s) bg_tensor_free(g, t), t = NULL;
    return t;
}

bool gp_download(bg_ctx *g, const bg_tensor *t, int64_t n, double *out)
{
    bool half = t->dtype == BG_F16;
    void *h = malloc(bg_nbytes(t));
    bool ok = h && bg_tensor_download(g, t, h, bg_nbytes(t)) == BG_OK;
    for (int64_t i = 0; ok && i < n; i++) out[i] = half ? bg_f16_to_f32(((uint16_t *)h)[i]) : ((float *)h)[i];
    free(h);
    return ok;
}

double gp_rel_l2(const double *got, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

bool gp_on_emulator(char *name, size_t n)
{
    if (n) name[0] = 0;
#ifdef BG_WITH_CUDA
    if (bg_cuda_device_info(name, n, NULL, NULL, NULL)) return false;
    return strstr(name, "emulator") != NULL;
#else
    return false;
#endif
}
