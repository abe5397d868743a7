// NVRTC specialisation cache (kernels/rtc/rtc.h): host code only.
//
// The kernel source is the library's own: the four .cuh files below are
// embedded into this object with the assembler's .incbin (paths relative to
// the repository root, where make runs), and also #included here so that the
// build's dependency files rebuild this object whenever one of them changes.
// A specialisation is that source, stripped of its local #includes (it is
// concatenated in dependency order instead), plus a StaticGeo struct holding
// the layer's geometry as constants and one extern "C" entry point.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <nvrtc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rtc.h"
#include "rtc_internal.h"
// Dependency tracking only (see above); nothing from them is instantiated here.
#include "../conv/conv_problem.cuh"
#include "../gemm/gemm_problem.cuh"

#if !defined(__CUDA_ARCH__)
#define BG_EMBED(sym, path)                                                                          \
    asm(".pushsection .rodata\n.balign 16\n.globl " #sym "\n" #sym ":\n.incbin \"" path "\"\n.byte 0\n" \
        ".popsection\n")
BG_EMBED(bg_rtc_src_tc_core, "kernels/gemm/tc_core.cuh");
BG_EMBED(bg_rtc_src_igemm_main, "kernels/gemm/igemm_main.cuh");
BG_EMBED(bg_rtc_src_gemm_problem, "kernels/gemm/gemm_problem.cuh");
BG_EMBED(bg_rtc_src_conv_problem, "kernels/conv/conv_problem.cuh");
#endif
extern "C" const char bg_rtc_src_tc_core[], bg_rtc_src_igemm_main[], bg_rtc_src_gemm_problem[],
    bg_rtc_src_conv_problem[];

// ---- NVRTC through dlopen ---------------------------------------------------------------
typedef nvrtcResult (*fn_version)(int *, int *);
typedef nvrtcResult (*fn_create)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                 const char *const *);
typedef nvrtcResult (*fn_compile)(nvrtcProgram, int, const char *const *);
typedef nvrtcResult (*fn_size)(nvrtcProgram, size_t *);
typedef nvrtcResult (*fn_get)(nvrtcProgram, char *);
typedef nvrtcResult (*fn_destroy)(nvrtcProgram *);
typedef const char *(*fn_errstr)(nvrtcResult);

struct Nvrtc {
    void *lib;
    fn_version version;
    fn_create create;
    fn_compile compile;
    fn_size cubin_size, log_size;
    fn_get cubin, log;
    fn_destroy destroy;
    fn_errstr errstr;
    int major, minor;
};

struct RtcEntry {
    uint64_t k0, k1;        // key
    cudaLibrary_t lib;      // NULL: the compile failed, don't retry
    cudaKernel_t kern;
};

struct RtcTuned {
    char key[160];
    int cfg;
};

struct bg_rtc {
    char dir[1024];         // "" = no disk cache
    int probed, ok;         // NVRTC + device looked at; usable
    int disabled;           // bg_rtc_enable(r, 0): tuned-tile memory only
    Nvrtc nv;
    char arch[16];          // "sm_90"
    RtcEntry *ent;
    int n_ent, cap_ent;
    RtcTuned *tuned;
    int n_tuned, cap_tuned;
    char note[512];
    int note_state;         // 0 none, 1 pending, 2 taken
    int compiled, disk_hits, mem_hits, failures;
    unsigned tmp_counter;
};

static void set_note(bg_rtc *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_note(bg_rtc *r, const char *fmt, ...)
{
    if (r->note_state) return; // said once
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof r->note, fmt, ap);
    va_end(ap);
    r->note_state = 1;
}

static bool load_nvrtc(bg_rtc *r)
{
    static const char *names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "/usr/local/cuda/lib64/libnvrtc.so"};
    void *h = NULL;
    // RTLD_NODELETE: libnvrtc's C++ runtime keeps process-lifetime allocations
    // (its exception pool); unmapping it at dlclose would orphan them.
    for (size_t i = 0; i < sizeof names / sizeof *names && !h; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        set_note(r, "NVRTC not found (libnvrtc.so): run-time kernel specialisation is off; using the precompiled kernels");
        return false;
    }
    Nvrtc &n = r->nv;
    n.lib = h;
    n.version = (fn_version)dlsym(h, "nvrtcVersion");
    n.create = (fn_create)dlsym(h, "nvrtcCreateProgram");
    n.compile = (fn_compile)dlsym(h, "nvrtcCompileProgram");
    n.cubin_size = (fn_size)dlsym(h, "nvrtcGetCUBINSize");
    n.cubin = (fn_get)dlsym(h, "nvrtcGetCUBIN");
    n.log_size = (fn_size)dlsym(h, "nvrtcGetProgramLogSize");
    n.log = (fn_get)dlsym(h, "nvrtcGetProgramLog");
    n.destroy = (fn_destroy)dlsym(h, "nvrtcDestroyProgram");
    n.errstr = (fn_errstr)dlsym(h, "nvrtcGetErrorString");
    if (!n.version || !n.create || !n.compile || !n.cubin_size || !n.cubin || !n.log_size || !n.log || !n.destroy ||
        !n.errstr || n.version(&n.major, &n.minor) != NVRTC_SUCCESS) {
        set_note(r, "NVRTC library lacks the expected entry points: run-time specialisation is off; using the "
                    "precompiled kernels");
        dlclose(h);
        n.lib = NULL;
        return false;
    }
    return true;
}

// NVRTC and the device, looked at once per cache object.
static bool probe(bg_rtc *r)
{
    if (r->probed) return r->ok;
    r->probed = 1;
    if (!load_nvrtc(r)) return false;
    int dev = 0;
    cudaDeviceProp pr;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&pr, dev) != cudaSuccess) {
        cudaGetLastError();
        set_note(r, "no CUDA device: run-time kernel specialisation is off");
        return false;
    }
    snprintf(r->arch, sizeof r->arch, "sm_%d%d", pr.major, pr.minor);
    r->ok = 1;
    return true;
}

static void default_dir(char *dir, size_t n)
{
    const char *e = getenv("BG_KERNEL_CACHE");
    if (e) {
        snprintf(dir, n, "%s", e);
        return;
    }
    e = getenv("XDG_CACHE_HOME");
    if (e && *e) {
        snprintf(dir, n, "%s/budgie/kernels", e);
        return;
    }
    e = getenv("HOME");
    if (e && *e) snprintf(dir, n, "%s/.cache/budgie/kernels", e);
    else dir[0] = 0;
}

extern "C" bg_rtc *bg_rtc_new(const char *dir)
{
    bg_rtc *r = (bg_rtc *)calloc(1, sizeof *r);
    if (!r) return NULL;
    if (dir) snprintf(r->dir, sizeof r->dir, "%s", dir);
    else default_dir(r->dir, sizeof r->dir);
    return r;
}

extern "C" void bg_rtc_free(bg_rtc *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_ent; i++)
        if (r->ent[i].lib) cudaLibraryUnload(r->ent[i].lib);
    free(r->ent);
    free(r->tuned);
    if (r->nv.lib) dlclose(r->nv.lib);
    free(r);
}

extern "C" void bg_rtc_enable(bg_rtc *r, int on)
{
    if (r) r->disabled = !on;
}

extern "C" int bg_rtc_available(bg_rtc *r) { return r && !r->disabled && probe(r); }

extern "C" const char *bg_rtc_note(bg_rtc *r)
{
    if (!r || r->note_state != 1) return NULL;
    r->note_state = 2;
    return r->note;
}

extern "C" void bg_rtc_stats(const bg_rtc *r, int *compiled, int *disk_hits, int *mem_hits, int *failures)
{
    if (compiled) *compiled = r ? r->compiled : 0;
    if (disk_hits) *disk_hits = r ? r->disk_hits : 0;
    if (mem_hits) *mem_hits = r ? r->mem_hits : 0;
    if (failures) *failures = r ? r->failures : 0;
}

// ---- source assembly ---------------------------------------------------------------------------
struct Buf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void put(Buf &b, const char *s, size_t len)
{
    if (b.oom) return;
    if (b.n + len + 1 > b.cap) {
        size_t cap = b.cap ? b.cap : 4096;
        while (cap < b.n + len + 1) cap *= 2;
        char *q = (char *)realloc(b.p, cap);
        if (!q) {
            b.oom = true;
            return;
        }
        b.p = q, b.cap = cap;
    }
    memcpy(b.p + b.n, s, len);
    b.n += len;
    b.p[b.n] = 0;
}

static void puts_(Buf &b, const char *s) { put(b, s, strlen(s)); }

static void putf(Buf &b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(Buf &b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

// Append a source file, blanking its `#include "..."` lines: the files are
// concatenated in dependency order and guarded, so nothing is lost.
static void put_source(Buf &b, const char *src)
{
    const char *p = src;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p);
        const char *q = p;
        while (q < p + len && (*q == ' ' || *q == '\t')) q++;
        if (!strncmp(q, "#include \"", 10)) puts_(b, "\n");
        else put(b, p, len);
        p += len;
    }
}

static void put_geo(Buf &b, const BgGeo &g)
{
    puts_(b, "struct StaticGeo {\n");
    putf(b, "    static constexpr int M = %d, N = %d, K = %d, batch = %d;\n", g.M, g.N, g.K, g.batch);
    putf(b, "    static constexpr long long lda = %lldLL, ldb = %lldLL, ldc = %lldLL;\n", g.lda, g.ldb, g.ldc);
    putf(b, "    static constexpr long long sA = %lldLL, sB = %lldLL, sC = %lldLL;\n", g.sA, g.sB, g.sC);
    putf(b, "    static constexpr int n = %d, h = %d, w = %d, c = %d, co = %d, kh = %d, kw = %d, ho = %d, wo = %d;\n",
         g.n, g.h, g.w, g.c, g.co, g.kh, g.kw, g.ho, g.wo);
    putf(b, "    static constexpr int sh = %d, sw = %d, ph = %d, pw = %d, dh = %d, dw = %d;\n", g.sh, g.sw, g.ph, g.pw,
         g.dh, g.dw);
    putf(b, "    static constexpr int cg = %d, cog = %d, oc = %d, ocg = %d;\n", g.cg, g.cog, g.oc, g.ocg);
    puts_(b, "    __device__ StaticGeo(const BgGeo &) {}\n};\n");
}

static char *make_source(const char *prob, const char *extra, const char *cfg, int vec, int simt, const BgGeo &g)
{
    Buf b = {};
    puts_(b, "// budgie: NVRTC specialisation\n");
    put_source(b, bg_rtc_src_tc_core);
    put_source(b, bg_rtc_src_igemm_main);
    put_source(b, bg_rtc_src_gemm_problem);
    put_source(b, bg_rtc_src_conv_problem);
    put_geo(b, g);
    putf(b, "using BgCfg = %s;\n", cfg);
    putf(b, "using BgProb = %s<StaticGeo, %s, BgCfg%s%s>;\n", prob, simt ? "float" : "bg_f16", extra && *extra ? ", " : "",
         extra ? extra : "");
    puts_(b, "extern \"C\" __global__ void __launch_bounds__(BgCfg::THREADS) bg_rtc_kernel(const BgIgemmParams p)\n{\n");
    puts_(b, "    const StaticGeo g(p.geo);\n");
    if (simt) puts_(b, "    bgk::simt_body<BgCfg, BgProb>(p, g);\n}\n");
    else putf(b, "    bgk::tc_body<BgCfg, BgProb, %s>(p, g);\n}\n", vec ? "true" : "false");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

// Two independent 64-bit FNV-1a hashes: a 128-bit key.
static void hash128(const char *s, size_t n, uint64_t &h0, uint64_t &h1)
{
    for (size_t i = 0; i < n; i++) {
        h0 = (h0 ^ (unsigned char)s[i]) * 1099511628211ull;
        h1 = (h1 ^ (unsigned char)s[i]) * 0x100000001b3ull * 31ull + 0x9E3779B97F4A7C15ull;
    }
}

static int mkdirs(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
    return 0;
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = (char *)malloc((size_t)len))) {
            if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                buf = NULL;
            } else *n = (size_t)len;
        }
    }
    fclose(f);
    return buf;
}

// Write to a temporary name in the same folder, then rename: readers see the
// old state or the whole new file, never a partial one.
static void write_atomic(bg_rtc *r, const char *path, const char *data, size_t n)
{
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), r->tmp_counter++);
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    bool ok = fwrite(data, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

// Compile `src` to a cubin for `arch`; on failure log always gets a message
// (NVRTC's, or which step failed).
static char *compile(bg_rtc *r, const char *src, const char *arch, size_t *n, char *log, size_t logn)
{
    Nvrtc &nv = r->nv;
    nvrtcProgram prog;
    if (logn) log[0] = 0;
    nvrtcResult e = nv.create(&prog, src, "bg_rtc.cu", 0, NULL, NULL);
    if (e != NVRTC_SUCCESS) {
        snprintf(log, logn, "nvrtcCreateProgram: %s", nv.errstr(e));
        return NULL;
    }
    char archopt[48];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    const char *opts[] = {archopt, "-std=c++17", "-DBG_RTC=1"};
    e = nv.compile(prog, 3, opts);
    char *out = NULL;
    if (e != NVRTC_SUCCESS) {
        size_t ls = 0;
        nv.log_size(prog, &ls);
        char *l = (char *)malloc(ls + 1);
        if (l && nv.log(prog, l) == NVRTC_SUCCESS) {
            l[ls] = 0;
            snprintf(log, logn, "%s: %.400s", nv.errstr(e), l);
        } else snprintf(log, logn, "%s", nv.errstr(e));
        free(l);
    } else {
        nvrtcResult se = nv.cubin_size(prog, n);
        if (se != NVRTC_SUCCESS) snprintf(log, logn, "nvrtcGetCUBINSize: %s", nv.errstr(se));
        else if (!(out = (char *)malloc(*n))) snprintf(log, logn, "out of host memory for a %zu-byte cubin", *n);
        else if ((se = nv.cubin(prog, out)) != NVRTC_SUCCESS) {
            free(out);
            out = NULL;
            snprintf(log, logn, "nvrtcGetCUBIN: %s", nv.errstr(se));
        }
    }
    nv.destroy(&prog);
    return out;
}

static RtcEntry *add_entry(bg_rtc *r, uint64_t k0, uint64_t k1)
{
    if (r->n_ent == r->cap_ent) {
        int cap = r->cap_ent ? 2 * r->cap_ent : 32;
        RtcEntry *e = (RtcEntry *)realloc(r->ent, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        r->ent = e, r->cap_ent = cap;
    }
    RtcEntry *e = &r->ent[r->n_ent++];
    memset(e, 0, sizeof *e);
    e->k0 = k0, e->k1 = k1;
    return e;
}

namespace bgk {

int rtc_igemm_kernel(bg_rtc *r, const char *prob_tmpl, const char *extra_targs, const char *cfg_type, int vec,
                     int simt, const BgGeo &geo, const void **fn)
{
    *fn = NULL;
    if (!r || r->disabled || !probe(r)) return 1;
    char *src = make_source(prob_tmpl, extra_targs, cfg_type, vec, simt, geo);
    if (!src) return 1;
    uint64_t k0 = 1469598103934665603ull, k1 = 0x6a09e667f3bcc908ull;
    char salt[96];
    snprintf(salt, sizeof salt, "|%s|-std=c++17 -DBG_RTC=1|nvrtc %d.%d", r->arch, r->nv.major, r->nv.minor);
    hash128(src, strlen(src), k0, k1);
    hash128(salt, strlen(salt), k0, k1);
    for (int i = 0; i < r->n_ent; i++)
        if (r->ent[i].k0 == k0 && r->ent[i].k1 == k1) {
            free(src);
            if (!r->ent[i].lib) return 1; // failed before: don't retry
            r->mem_hits++;
            *fn = (const void *)r->ent[i].kern;
            return 0;
        }
    RtcEntry *ent = add_entry(r, k0, k1);
    if (!ent) {
        free(src);
        return 1;
    }
    char path[1200] = "";
    if (r->dir[0]) snprintf(path, sizeof path, "%s/%016llx%016llx.cubin", r->dir, (unsigned long long)k0, (unsigned long long)k1);
    size_t n = 0;
    char *bin = path[0] ? read_file(path, &n) : NULL;
    if (bin) r->disk_hits++;
    else {
        char log[600];
        bin = compile(r, src, r->arch, &n, log, sizeof log);
        if (!bin) {
            r->failures++;
            set_note(r, "NVRTC could not specialise %s (%s): %s; using the precompiled kernels", prob_tmpl, cfg_type, log);
            free(src);
            return 1;
        }
        r->compiled++;
        if (path[0] && mkdirs(r->dir) == 0) write_atomic(r, path, bin, n);
    }
    free(src);
    cudaLibrary_t lib = NULL;
    cudaKernel_t kern = NULL;
    cudaError_t e = cudaLibraryLoadData(&lib, bin, NULL, NULL, 0, NULL, NULL, 0);
    if (e == cudaSuccess) e = cudaLibraryGetKernel(&kern, lib, "bg_rtc_kernel");
    free(bin);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (lib) cudaLibraryUnload(lib);
        r->failures++;
        set_note(r, "loading an NVRTC kernel failed (%s); using the precompiled kernels", cudaGetErrorString(e));
        if (path[0]) remove(path); // a corrupt cache file would fail forever
        return 1;
    }
    ent->lib = lib, ent->kern = kern;
    *fn = (const void *)kern;
    return 0;
}

int rtc_tuned_get(const bg_rtc *r, const char *key)
{
    if (!r) return 0;
    for (int i = 0; i < r->n_tuned; i++)
        if (!strcmp(r->tuned[i].key, key)) return r->tuned[i].cfg;
    return 0;
}

void rtc_tuned_put(bg_rtc *r, const char *key, int cfg)
{
    if (!r) return;
    for (int i = 0; i < r->n_tuned; i++)
        if (!strcmp(r->tuned[i].key, key)) {
            r->tuned[i].cfg = cfg;
            return;
        }
    if (r->n_tuned == r->cap_tuned) {
        int cap = r->cap_tuned ? 2 * r->cap_tuned : 32;
        RtcTuned *t = (RtcTuned *)realloc(r->tuned, (size_t)cap * sizeof *t);
        if (!t) return;
        r->tuned = t, r->cap_tuned = cap;
    }
    snprintf(r->tuned[r->n_tuned].key, sizeof r->tuned[0].key, "%s", key);
    r->tuned[r->n_tuned++].cfg = cfg;
}

} // namespace bgk

// Compile (without loading) one specialisation per kind for `arch`: proves,
// without a GPU, that the embedded source builds under NVRTC. Returns 0, 1
// with the reason in err, or -1 when NVRTC is absent.
extern "C" int bg_rtc_selftest(bg_rtc *r, const char *arch, char *err, size_t errn)
{
    if (!r) return 1;
    if (!r->nv.lib && !load_nvrtc(r)) {
        snprintf(err, errn, "%s", r->note);
        return -1;
    }
    BgGeo g = {};
    g.n = 2, g.h = 9, g.w = 7, g.c = 16, g.co = 24, g.kh = 3, g.kw = 3, g.sh = 2, g.sw = 1, g.ph = 1, g.pw = 1;
    g.dh = g.dw = 1, g.batch = 1, g.cg = 16, g.cog = 24, g.oc = 24, g.ocg = 24, g.ho = 5, g.wo = 7;
    g.M = g.n * g.ho * g.wo, g.N = 24, g.K = 9 * 16, g.lda = g.ldb = g.ldc = 0;
    struct { const char *prob, *extra, *cfg; int vec, simt; } k[] = {
        {"bgk::ConvDgrad", "", "bgk::TcCfg<64, 64, 32, 2, 2, 4>", 1, 0},
        {"bgk::ConvFprop", "", "bgk::TcCfg<64, 64, 32, 2, 2, 4>", 0, 0},
        {"bgk::GemmProb", "true, false", "bgk::SimtCfg<64, 64, 8>", 0, 1},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        char *src = make_source(k[i].prob, k[i].extra, k[i].cfg, k[i].vec, k[i].simt, g);
        if (!src) {
            snprintf(err, errn, "out of memory");
            return 1;
        }
        size_t n = 0;
        char log[600];
        char *bin = compile(r, src, arch, &n, log, sizeof log);
        free(src);
        if (!bin) {
            snprintf(err, errn, "%s %s: %s", k[i].prob, k[i].cfg, log);
            return 1;
        }
        free(bin);
    }
    return 0;
}
