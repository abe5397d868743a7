/* NVRTC specialisation of the GEMM and convolution kernels.
 *
 * The precompiled kernels read every shape value (channels, strides, image
 * size...) from their parameters, so their address arithmetic runs real
 * integer divisions. A bg_rtc cache compiles, at run time, the same kernel
 * source (the .cuh files of kernels/gemm and kernels/conv, embedded in the
 * library) with one layer's geometry as compile-time constants and a chosen
 * tile, for the device's exact architecture, and keeps the result:
 *   - in memory, per cache object (the caller owns it; typically one per
 *     training context), so a layer compiles once per run;
 *   - on disk, keyed by a hash of the source text, the generated
 *     specialisation, the compile options, the architecture and the NVRTC
 *     version: <dir>/<key>.cubin, written to a temporary file and renamed into
 *     place, so concurrent processes never see half a file.
 * NVRTC is loaded with dlopen: without libnvrtc (or when a compile fails) the
 * launchers fall back to the precompiled kernels, and the cache records one
 * note saying so, which the caller can print once (bg_rtc_note).
 *
 * The cache also remembers tile choices timed by bg_conv_tune (conv.h), so a
 * shape is tuned once per cache object.
 *
 * Not thread-safe: one cache per thread (or a lock around it). */
#ifndef BG_RTC_H
#define BG_RTC_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct bg_rtc bg_rtc;

/* dir: the on-disk cache folder, created if missing; NULL picks
 * $BG_KERNEL_CACHE, else $XDG_CACHE_HOME/budgie/kernels, else
 * ~/.cache/budgie/kernels; "" disables the disk cache. Returns NULL only when
 * out of host memory. NVRTC and the device are probed lazily, on first use. */
bg_rtc *bg_rtc_new(const char *dir);
void bg_rtc_free(bg_rtc *r);
/* on = 0: never compile (the cache then only remembers tuned tiles, see
 * bg_conv_tune); on = 1 (the default): specialise when NVRTC is there. */
void bg_rtc_enable(bg_rtc *r, int on);
/* 1 once NVRTC has loaded and the device's architecture is known. */
int bg_rtc_available(bg_rtc *r);
/* A message worth printing once ("NVRTC unavailable ...: using the precompiled
 * kernels"); returns it the first time only, then NULL. */
const char *bg_rtc_note(bg_rtc *r);
/* Counters: kernels compiled by NVRTC, loaded from the disk cache, served from
 * memory, and failed compiles. */
void bg_rtc_stats(const bg_rtc *r, int *compiled, int *disk_hits, int *mem_hits, int *failures);
/* Compile, without a device and without loading, one specialisation of a few
 * kernel kinds for `arch` ("sm_90"): checks that the embedded source builds
 * under NVRTC. 0 on success, 1 with NVRTC's message in err, -1 when NVRTC is
 * not installed. */
int bg_rtc_selftest(bg_rtc *r, const char *arch, char *err, size_t errn);

#ifdef __cplusplus
}
#endif
#endif
