// The launchers' side of the NVRTC cache (C++, kernels/*/*.cu only).
#ifndef BG_RTC_INTERNAL_H
#define BG_RTC_INTERNAL_H
#include "rtc.h"
#include "../gemm/tc_core.cuh"

namespace bgk {
// A kernel specialised for `geo`: body(p) is
//   tc_body<Cfg, Prob<StaticGeo, elem, Cfg>, vec>   (simt == 0)
//   simt_body<Cfg, Prob<StaticGeo, float, Cfg>>     (simt == 1)
// with prob_tmpl e.g. "bgk::ConvFprop" or "bgk::GemmProb" (extra_targs: the
// template arguments after Cfg, e.g. "false, true" for GemmProb's TA, TB) and
// cfg_type e.g. "bgk::TcCfg<128, 128, 32, 2, 4, 4>". On success *fn is a
// handle for cudaLaunchKernel / cudaFuncSetAttribute and 0 is returned; on
// any failure nonzero (the reason goes into the cache's one-time note).
int rtc_igemm_kernel(bg_rtc *r, const char *prob_tmpl, const char *extra_targs, const char *cfg_type, int vec,
                     int simt, const BgGeo &geo, const void **fn);
// The tuned tile for a key (bg_conv_tune), or 0.
int rtc_tuned_get(const bg_rtc *r, const char *key);
void rtc_tuned_put(bg_rtc *r, const char *key, int cfg);
} // namespace bgk
#endif
