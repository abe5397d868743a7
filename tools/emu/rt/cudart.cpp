// The CUDA runtime API as the project uses it, in place of libcudart: one
// emulated device (an H100's properties and limits), memory (memory.cpp),
// streams that run their work at once, events, stream capture into graphs
// and their replay, launches (sched.cpp) and loading the libraries the
// emulated NVRTC builds (rt/nvrtc.c). Prototypes come from NVIDIA's own
// header, so every signature is checked against the real one.
#include <cxxabi.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <map>
#include <set>
#include <string>
#include <thread>
#include "internal.h"

namespace bgemu {
size_t mem_capacity();
size_t mem_used();
} // namespace bgemu

using namespace bgemu;

// ---- handles ------------------------------------------------------------------------------------
enum { N_KERNEL, N_MEMCPY, N_MEMSET, N_EVENT };
struct Node {
    int type;
    std::shared_ptr<ArgPack> pack;
    LaunchCfg cfg{dim3(1), dim3(1)};
    const char *name = nullptr, *site = nullptr;
    void *dst = nullptr;
    const void *src = nullptr;
    size_t bytes = 0;
    int value = 0;
    cudaMemcpyKind kind = cudaMemcpyDefault;
    cudaEvent_t ev = nullptr;
};
typedef std::vector<std::shared_ptr<Node>> Nodes;

constexpr uint32_t MAGIC_STREAM = 0x57524d53, MAGIC_EVENT = 0x45564e54, MAGIC_GRAPH = 0x47524150,
                   MAGIC_EXEC = 0x47455845, MAGIC_LIB = 0x4c494252;

struct CUstream_st {
    uint32_t magic = MAGIC_STREAM;
    unsigned flags = 0;
    bool capturing = false, invalidated = false;
    cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
    std::thread::id capture_thread;
    Nodes nodes;
};
struct CUevent_st {
    uint32_t magic = MAGIC_EVENT;
    double t = 0;
    bool recorded = false;
};
struct CUgraph_st {
    uint32_t magic = MAGIC_GRAPH;
    Nodes nodes;
};
struct CUgraphExec_st {
    uint32_t magic = MAGIC_EXEC;
    Nodes nodes;
};
struct CUlib_st {
    uint32_t magic = MAGIC_LIB;
    void *dl = nullptr;
    std::string path;
    std::vector<KernelInfo *> kernels;
};

// Built on first use: kernels register from other files' static constructors,
// in an order nobody chooses. Never destroyed (atexit order is as arbitrary).
static std::recursive_mutex &api_mutex()
{
    static std::recursive_mutex *m = new std::recursive_mutex();
    return *m;
}
static std::set<cudaStream_t> &streams()
{
    static std::set<cudaStream_t> *s = new std::set<cudaStream_t>();
    return *s;
}
static std::set<cudaEvent_t> &events()
{
    static std::set<cudaEvent_t> *s = new std::set<cudaEvent_t>();
    return *s;
}
static std::map<const void *, KernelInfo *> &kernels() // by host function address
{
    static std::map<const void *, KernelInfo *> *m = new std::map<const void *, KernelInfo *>();
    return *m;
}
static std::set<const void *> &kernel_records() // the KernelInfo objects themselves (cudaKernel_t)
{
    static std::set<const void *> *s = new std::set<const void *>();
    return *s;
}
#define g_api api_mutex()
#define g_streams streams()
#define g_events events()
#define g_kernels kernels()
static CUlib_st *g_loading;            // the library whose constructors are registering
static thread_local cudaError_t t_last = cudaSuccess;

void bgemu::set_last_error(cudaError_t e)
{
    if (e != cudaSuccess) t_last = e;
}
static cudaError_t ret(cudaError_t e)
{
    set_last_error(e);
    return e;
}

static double now_ms()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

// The kernel's own name (demangled: template arguments included) when the
// binary exports it (-rdynamic), else what the launch site wrote.
static const char *kernel_name(const void *fn, const char *fallback)
{
    Dl_info di;
    if (!dladdr(fn, &di) || !di.dli_sname || di.dli_saddr != fn) return fallback;
    int st = 0;
    char *d = abi::__cxa_demangle(di.dli_sname, nullptr, nullptr, &st);
    if (st != 0 || !d) return di.dli_sname;
    // drop the parameter list: "ns::k<T>(int, float*)" -> "ns::k<T>"; the
    // return type of a template instantiation ("void ns::k<T>(...)") too
    char *paren = strrchr(d, '(');
    if (paren) *paren = 0;
    if (!strncmp(d, "void ", 5)) memmove(d, d + 5, strlen(d + 5) + 1);
    return d; // kept for the process
}

KernelInfo *bgemu::kernel_info(const void *fn, const char *name)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    auto it = g_kernels.find(fn);
    if (it != g_kernels.end()) {
        if (!it->second->name && name) it->second->name = name;
        return it->second;
    }
    KernelInfo *k = new KernelInfo{fn, kernel_name(fn, name), -1, 0, false, nullptr, nullptr};
    g_kernels[fn] = k;
    kernel_records().insert(k);
    return k;
}

void bgemu::register_kernel(const void *fn, const char *name, PackFromArgv make)
{
    KernelInfo *k = kernel_info(fn, name);
    k->make = make;
    if (g_loading) k->name = name; // cudaLibraryGetKernel looks it up by this name
    if (g_loading) {
        k->lib = g_loading;
        g_loading->kernels.push_back(k);
    }
}

// A cudaKernel_t from a library is its KernelInfo; anything else is a host
// function address.
static KernelInfo *lookup_func(const void *func)
{
    if (kernel_records().count(func)) return (KernelInfo *)func;
    auto it = g_kernels.find(func);
    return it == g_kernels.end() ? nullptr : it->second;
}

// ---- capture -------------------------------------------------------------------------------------
static bool valid_stream(cudaStream_t s)
{
    return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || g_streams.count(s);
}
static CUstream_st *real_stream(cudaStream_t s)
{
    return (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) ? nullptr : (CUstream_st *)s;
}

// The capture that an unsafe call on this thread would invalidate, if any.
static CUstream_st *capture_of_this_thread()
{
    for (cudaStream_t s : g_streams) {
        CUstream_st *st = (CUstream_st *)s;
        if (!st->capturing || st->mode == cudaStreamCaptureModeRelaxed) continue;
        if (st->mode == cudaStreamCaptureModeGlobal || st->capture_thread == std::this_thread::get_id()) return st;
    }
    return nullptr;
}

// cudaMalloc, cudaFree, synchronous copies...: refused while this thread captures.
static bool unsafe_during_capture(const char *what)
{
    CUstream_st *st = capture_of_this_thread();
    if (!st) return false;
    if (!st->invalidated && getenv("BGEMU_VERBOSE"))
        fprintf(stderr, "bgemu: %s during stream capture: refused, the capture is invalidated\n", what);
    st->invalidated = true;
    return true;
}

// Work for stream s: recorded when it captures, else performed now.
static bool recording(cudaStream_t s, const std::shared_ptr<Node> &n, cudaError_t *err)
{
    *err = cudaSuccess;
    CUstream_st *st = real_stream(s);
    if (!st) {
        // the legacy stream synchronises with every blocking stream: using it
        // while another stream captures (globally) breaks that capture
        if (capture_of_this_thread()) {
            unsafe_during_capture("work on the legacy default stream");
            *err = cudaErrorStreamCaptureImplicit;
            return true;
        }
        return false;
    }
    if (!st->capturing) return false;
    if (st->invalidated) *err = cudaErrorStreamCaptureInvalidated;
    else st->nodes.push_back(n);
    return true;
}

// ---- performing work ---------------------------------------------------------------------------------
static cudaError_t check_range(const void *p, size_t n, const char *what)
{
    if (!n) return cudaSuccess;
    if (!mem_find(p, n)) {
        char d[200];
        mem_describe(p, d, sizeof d);
        fprintf(stderr, "bgemu: error: %s of %zu bytes at %p: %s\n", what, n, p, d);
        note_kernel_error();
        return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

static cudaError_t do_memcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind)
{
    if (!n) return cudaSuccess;
    const bool dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    cudaError_t e = cudaSuccess;
    if (kind == cudaMemcpyDefault) {
        // unified addressing: whichever side is device memory must hold the range
        if (mem_find(dst, 1) && (e = check_range(dst, n, "cudaMemcpy destination"))) return e;
        if (mem_find(src, 1) && (e = check_range(src, n, "cudaMemcpy source"))) return e;
    } else {
        if (dd && (e = check_range(dst, n, "cudaMemcpy destination"))) return e;
        if (sd && (e = check_range(src, n, "cudaMemcpy source"))) return e;
    }
    memmove(dst, src, n);
    return cudaSuccess;
}

static cudaError_t do_memset(void *p, int v, size_t n)
{
    cudaError_t e = check_range(p, n, "cudaMemset");
    if (e) return e;
    memset(p, v, n);
    return cudaSuccess;
}

static cudaError_t do_launch(ArgPack *pack, const LaunchCfg &cfg, const char *name, const char *site)
{
    Launch L{};
    L.pack = pack;
    L.cfg = cfg;
    L.ki = kernel_info(pack->fn, name);
    L.name = L.ki->name ? L.ki->name : name;
    L.site = site;
    L.nthreads = (int)(cfg.block.x * cfg.block.y * cfg.block.z);
    if (settings().verbose)
        fprintf(stderr, "bgemu: launch %s grid (%u,%u,%u) block (%u,%u,%u) smem %zu at %s\n", L.name ? L.name : "?",
                cfg.grid.x, cfg.grid.y, cfg.grid.z, cfg.block.x, cfg.block.y, cfg.block.z, cfg.smem, site ? site : "?");
    fault_handlers_install();
    run_grid(L);
    mem_check_slack(L.name, site);
    return L.failed ? L.err : cudaSuccess;
}

static cudaError_t check_config(const LaunchCfg &c, KernelInfo *k)
{
    const dim3 g = c.grid, b = c.block;
    if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z) return cudaErrorInvalidConfiguration;
    if (b.x > 1024 || b.y > 1024 || b.z > 64 || (unsigned long long)b.x * b.y * b.z > 1024)
        return cudaErrorInvalidConfiguration;
    if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) return cudaErrorInvalidConfiguration;
    const size_t dyn = c.smem;
    const size_t st = k->static_known ? k->static_bytes : 0;
    if (k->max_dyn < 0 ? st + dyn > DEFAULT_SMEM : dyn > (size_t)k->max_dyn) return cudaErrorInvalidValue;
    return cudaSuccess;
}

static cudaError_t run_node(const Node &n)
{
    switch (n.type) {
    case N_KERNEL: return do_launch(n.pack.get(), n.cfg, n.name, n.site);
    case N_MEMCPY: return do_memcpy(n.dst, n.src, n.bytes, n.kind);
    case N_MEMSET: return do_memset(n.dst, n.value, n.bytes);
    case N_EVENT:
        if (g_events.count(n.ev)) n.ev->t = now_ms(), n.ev->recorded = true;
        return cudaSuccess;
    }
    return cudaErrorUnknown;
}

void bgemu::submit(ArgPack *pack, const LaunchCfg &cfg, const char *name, const char *site)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    KernelInfo *k = kernel_info(pack->fn, name);
    cudaError_t e = check_config(cfg, k);
    if (e == cudaSuccess && !valid_stream(cfg.stream)) e = cudaErrorInvalidResourceHandle;
    if (e != cudaSuccess) {
        if (e == cudaErrorInvalidValue)
            fprintf(stderr, "bgemu: launch of %s at %s refused: %zu bytes of dynamic shared memory (limit %s)\n",
                    k->name ? k->name : name, site ? site : "?", cfg.smem,
                    k->max_dyn < 0 ? "48 KiB with the static bytes, no cudaFuncSetAttribute" : "the kernel's attribute");
        delete pack;
        set_last_error(e);
        return;
    }
    auto n = std::make_shared<Node>();
    n->type = N_KERNEL;
    n->pack.reset(pack);
    n->cfg = cfg;
    n->name = name, n->site = site;
    if (recording(cfg.stream, n, &e)) {
        set_last_error(e);
        return;
    }
    set_last_error(run_node(*n));
}

// ---- device ------------------------------------------------------------------------------------------
extern "C" {

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *device)
{
    *device = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return ret(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }
cudaError_t cudaSetDeviceFlags(unsigned int) { return cudaSuccess; }
cudaError_t cudaDeviceReset(void) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (unsafe_during_capture("cudaDeviceSynchronize")) return ret(cudaErrorStreamCaptureUnsupported);
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = CUDART_VERSION;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v)
{
    *v = CUDART_VERSION;
    return cudaSuccess;
}

// BGEMU_SM_COUNT pretends another device size (read at every query, so a
// test can vary it): plans that must not depend on it can be checked.
static int sm_count_setting()
{
    const char *e = getenv("BGEMU_SM_COUNT");
    const int n = e ? atoi(e) : 0;
    return n > 0 ? n : 132;
}

static int attr_value(cudaDeviceAttr a)
{
    switch (a) {
    case cudaDevAttrMultiProcessorCount: return sm_count_setting();
    case cudaDevAttrComputeCapabilityMajor: return 9;
    case cudaDevAttrComputeCapabilityMinor: return 0;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: return (int)OPTIN_SMEM;
    case cudaDevAttrMaxSharedMemoryPerBlock: return (int)DEFAULT_SMEM;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: return 233472;
    case cudaDevAttrMaxThreadsPerBlock: return 1024;
    case cudaDevAttrMaxThreadsPerMultiProcessor: return 2048;
    case cudaDevAttrMaxBlockDimX: case cudaDevAttrMaxBlockDimY: return 1024;
    case cudaDevAttrMaxBlockDimZ: return 64;
    case cudaDevAttrMaxGridDimX: return 0x7fffffff;
    case cudaDevAttrMaxGridDimY: case cudaDevAttrMaxGridDimZ: return 65535;
    case cudaDevAttrWarpSize: return 32;
    case cudaDevAttrMaxRegistersPerBlock: return 65536;
    case cudaDevAttrL2CacheSize: return 50 * 1024 * 1024;
    case cudaDevAttrUnifiedAddressing: return 1;
    case cudaDevAttrConcurrentKernels: return 1;
    default: return 0;
    }
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device)
{
    if (device != 0) return ret(cudaErrorInvalidDevice);
    *value = attr_value(attr);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device)
{
    if (device != 0) return ret(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "budgie CUDA emulator (sm_90, H100 limits)");
    p->totalGlobalMem = mem_capacity();
    p->sharedMemPerBlock = DEFAULT_SMEM;
    p->sharedMemPerBlockOptin = OPTIN_SMEM;
    p->sharedMemPerMultiprocessor = 233472;
    p->regsPerBlock = 65536;
    p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsPerMultiProcessor = 2048;
    p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
    p->multiProcessorCount = sm_count_setting();
    p->major = 9, p->minor = 0;
    p->l2CacheSize = 50 * 1024 * 1024;
    p->memoryBusWidth = 5120;
    p->unifiedAddressing = 1;
    p->concurrentKernels = 1;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_, size_t *total)
{
    *total = mem_capacity();
    *free_ = *total - mem_used();
    return cudaSuccess;
}

// ---- errors ----------------------------------------------------------------------------------------------
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return t_last; }

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
#define N(x) case x: return #x;
        N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation) N(cudaErrorInvalidConfiguration)
        N(cudaErrorInvalidDevice) N(cudaErrorInvalidResourceHandle) N(cudaErrorIllegalAddress)
        N(cudaErrorLaunchFailure) N(cudaErrorLaunchOutOfResources) N(cudaErrorInvalidDeviceFunction)
        N(cudaErrorNotSupported) N(cudaErrorStreamCaptureUnsupported) N(cudaErrorStreamCaptureInvalidated)
        N(cudaErrorStreamCaptureImplicit) N(cudaErrorStreamCaptureWrongThread) N(cudaErrorIllegalState)
        N(cudaErrorInvalidKernelImage) N(cudaErrorSymbolNotFound) N(cudaErrorNoDevice) N(cudaErrorUnknown)
        N(cudaErrorMisalignedAddress) N(cudaErrorNotReady)
#undef N
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorInvalidKernelImage: return "device kernel image is invalid";
    case cudaErrorSymbolNotFound: return "named symbol not found";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unknown error";
    }
}

// ---- memory ------------------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void **p, size_t size)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    *p = nullptr;
    if (unsafe_during_capture("cudaMalloc")) return ret(cudaErrorStreamCaptureUnsupported);
    return ret(mem_alloc(p, size, 0));
}
cudaError_t cudaFree(void *p)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (unsafe_during_capture("cudaFree")) return ret(cudaErrorStreamCaptureUnsupported);
    if (p) mem_check_slack(nullptr, nullptr);
    return ret(mem_free(p, 0));
}
cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    *p = nullptr;
    if (unsafe_during_capture("cudaHostAlloc")) return ret(cudaErrorStreamCaptureUnsupported);
    return ret(mem_alloc(p, size, 1));
}
cudaError_t cudaMallocHost(void **p, size_t size) { return cudaHostAlloc(p, size, 0); }
cudaError_t cudaFreeHost(void *p)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (unsafe_during_capture("cudaFreeHost")) return ret(cudaErrorStreamCaptureUnsupported);
    return ret(mem_free(p, 1));
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, cudaMemcpyKind kind, cudaStream_t stream)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!valid_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
    auto n = std::make_shared<Node>();
    n->type = N_MEMCPY, n->dst = dst, n->src = src, n->bytes = count, n->kind = kind;
    cudaError_t e;
    if (recording(stream, n, &e)) return ret(e);
    return ret(do_memcpy(dst, src, count, kind));
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, cudaMemcpyKind kind)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (unsafe_during_capture("cudaMemcpy")) return ret(cudaErrorStreamCaptureUnsupported);
    return ret(do_memcpy(dst, src, count, kind));
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t count, cudaStream_t stream)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!valid_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
    auto n = std::make_shared<Node>();
    n->type = N_MEMSET, n->dst = p, n->value = value, n->bytes = count;
    cudaError_t e;
    if (recording(stream, n, &e)) return ret(e);
    return ret(do_memset(p, value, count));
}
cudaError_t cudaMemset(void *p, int value, size_t count)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (unsafe_during_capture("cudaMemset")) return ret(cudaErrorStreamCaptureUnsupported);
    return ret(do_memset(p, value, count));
}

// ---- streams and events -------------------------------------------------------------------------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    CUstream_st *st = new CUstream_st();
    st->flags = flags;
    g_streams.insert(st);
    *s = st;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!g_streams.count(s)) return ret(cudaErrorInvalidResourceHandle);
    if (((CUstream_st *)s)->capturing) return ret(cudaErrorIllegalState);
    g_streams.erase(s);
    delete (CUstream_st *)s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    CUstream_st *st = real_stream(s);
    if (st && st->capturing) {
        st->invalidated = true;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    if (unsafe_during_capture("cudaStreamSynchronize")) return ret(cudaErrorStreamCaptureUnsupported);
    return cudaSuccess; // work ran when it was enqueued
}
cudaError_t cudaStreamQuery(cudaStream_t s) { return valid_stream(s) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle); }
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t, unsigned int)
{
    return valid_stream(s) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    CUevent_st *ev = new CUevent_st();
    g_events.insert(ev);
    *e = ev;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!g_events.erase(e)) return ret(cudaErrorInvalidResourceHandle);
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!g_events.count(e) || !valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    auto n = std::make_shared<Node>();
    n->type = N_EVENT, n->ev = e;
    cudaError_t err;
    if (recording(s, n, &err)) return ret(err);
    return ret(run_node(*n));
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return g_events.count(e) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!g_events.count(e)) return ret(cudaErrorInvalidResourceHandle);
    if (unsafe_during_capture("cudaEventSynchronize")) return ret(cudaErrorStreamCaptureUnsupported);
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!g_events.count(a) || !g_events.count(b)) return ret(cudaErrorInvalidResourceHandle);
    if (!a->recorded || !b->recorded) return ret(cudaErrorInvalidResourceHandle);
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}

// ---- capture and graphs ------------------------------------------------------------------------------------
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    CUstream_st *st = real_stream(s);
    if (!st) return ret(valid_stream(s) ? cudaErrorStreamCaptureUnsupported : cudaErrorInvalidResourceHandle);
    if (!g_streams.count(s)) return ret(cudaErrorInvalidResourceHandle);
    if (st->capturing) return ret(cudaErrorIllegalState);
    st->capturing = true;
    st->invalidated = false;
    st->mode = mode;
    st->capture_thread = std::this_thread::get_id();
    st->nodes.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    *graph = nullptr;
    CUstream_st *st = real_stream(s);
    if (!st || !g_streams.count(s) || !st->capturing) return ret(cudaErrorIllegalState);
    if (st->capture_thread != std::this_thread::get_id() && st->mode != cudaStreamCaptureModeRelaxed)
        return ret(cudaErrorStreamCaptureWrongThread);
    st->capturing = false;
    if (st->invalidated) {
        st->nodes.clear();
        return ret(cudaErrorStreamCaptureInvalidated);
    }
    CUgraph_st *g = new CUgraph_st();
    g->nodes.swap(st->nodes);
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    CUstream_st *st = real_stream(s);
    *status = !st ? cudaStreamCaptureStatusNone
            : !st->capturing ? cudaStreamCaptureStatusNone
            : st->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *num)
{
    if (!g || g->magic != MAGIC_GRAPH) return ret(cudaErrorInvalidValue);
    if (!nodes) {
        *num = g->nodes.size();
        return cudaSuccess;
    }
    size_t n = *num < g->nodes.size() ? *num : g->nodes.size();
    for (size_t i = 0; i < n; i++) nodes[i] = (cudaGraphNode_t)g->nodes[i].get();
    *num = n;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long)
{
    if (!g || g->magic != MAGIC_GRAPH) return ret(cudaErrorInvalidValue);
    CUgraphExec_st *x = new CUgraphExec_st();
    x->nodes = g->nodes; // shares the nodes: they outlive the graph (arguments included)
    *exec = x;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long f)
{
    return cudaGraphInstantiate(exec, g, f);
}

cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
    if (!g || g->magic != MAGIC_GRAPH) return ret(cudaErrorInvalidValue);
    g->magic = 0;
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x)
{
    if (!x || x->magic != MAGIC_EXEC) return ret(cudaErrorInvalidValue);
    x->magic = 0;
    delete x;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!x || x->magic != MAGIC_EXEC) return ret(cudaErrorInvalidValue);
    if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    CUstream_st *st = real_stream(s);
    if (st && st->capturing) {
        // a graph launched into a capture: its nodes join the capture
        if (st->invalidated) return ret(cudaErrorStreamCaptureInvalidated);
        st->nodes.insert(st->nodes.end(), x->nodes.begin(), x->nodes.end());
        return cudaSuccess;
    }
    for (const auto &n : x->nodes) {
        cudaError_t e = run_node(*n);
        if (e != cudaSuccess) return ret(e);
    }
    return cudaSuccess;
}

// ---- kernels ----------------------------------------------------------------------------------------------------
cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    KernelInfo *k = lookup_func(func);
    if (!k) k = kernel_info(func, nullptr);
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        const size_t st = k->static_known ? k->static_bytes : 0;
        if (value < 0 || (size_t)value + st > OPTIN_SMEM) return ret(cudaErrorInvalidValue);
        k->max_dyn = value;
        return cudaSuccess;
    }
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
    return ret(cudaErrorInvalidValue);
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, const void *func)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    KernelInfo *k = lookup_func(func);
    memset(a, 0, sizeof *a);
    if (!k) return ret(cudaErrorInvalidDeviceFunction);
    a->sharedSizeBytes = k->static_bytes;
    a->maxThreadsPerBlock = 1024;
    a->maxDynamicSharedSizeBytes = k->max_dyn < 0 ? (int)(DEFAULT_SMEM - k->static_bytes) : k->max_dyn;
    a->ptxVersion = a->binaryVersion = 90;
    return cudaSuccess;
}

cudaError_t cudaLaunchKernel(const void *func, dim3 grid, dim3 block, void **args, size_t smem, cudaStream_t stream)
{
    KernelInfo *k;
    {
        std::lock_guard<std::recursive_mutex> lk(g_api);
        k = lookup_func(func);
    }
    if (!k || !k->make) {
        fprintf(stderr, "bgemu: cudaLaunchKernel(%p): not a kernel the emulator knows (only non-template kernels and "
                        "NVRTC kernels are registered)\n", func);
        return ret(cudaErrorInvalidDeviceFunction);
    }
    ArgPack *p = k->make(k->fn, args);
    t_last = cudaSuccess;
    submit(p, LaunchCfg(grid, block, smem, stream), k->name, "cudaLaunchKernel");
    return cudaGetLastError();
}

// ---- libraries (what the emulated NVRTC produced) -------------------------------------------------------------
// The image: "BGEMU-SO" then a shared object built from the rewritten source.
static const char SO_MAGIC[8] = {'B', 'G', 'E', 'M', 'U', '-', 'S', 'O'};

cudaError_t cudaLibraryLoadData(cudaLibrary_t *lib, const void *code, cudaJitOption *, void **, unsigned int,
                                cudaLibraryOption *, void **, unsigned int)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    *lib = nullptr;
    if (!code || memcmp(code, SO_MAGIC, 8)) {
        fprintf(stderr, "bgemu: cudaLibraryLoadData: not an image of the emulated NVRTC (a real cubin or PTX cannot "
                        "run under the emulator)\n");
        return ret(cudaErrorInvalidKernelImage);
    }
    uint64_t n;
    memcpy(&n, (const char *)code + 8, 8);
    const char *tmp = getenv("TMPDIR");
    std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/bgemu-lib-XXXXXX";
    std::vector<char> pbuf(path.begin(), path.end());
    pbuf.push_back(0);
    int fd = mkstemp(pbuf.data());
    if (fd < 0) return ret(cudaErrorInvalidKernelImage);
    bool ok = write(fd, (const char *)code + 16, n) == (ssize_t)n;
    close(fd);
    CUlib_st *L = new CUlib_st();
    L->path = pbuf.data();
    g_loading = L;
    L->dl = ok ? dlopen(L->path.c_str(), RTLD_NOW | RTLD_LOCAL) : nullptr;
    g_loading = nullptr;
    unlink(L->path.c_str()); // the mapping stays
    if (!L->dl) {
        fprintf(stderr, "bgemu: cudaLibraryLoadData: %s\n", ok ? dlerror() : "cannot write the image");
        delete L;
        return ret(cudaErrorInvalidKernelImage);
    }
    *lib = L;
    return cudaSuccess;
}

cudaError_t cudaLibraryGetKernel(cudaKernel_t *k, cudaLibrary_t lib, const char *name)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    *k = nullptr;
    if (!lib || lib->magic != MAGIC_LIB) return ret(cudaErrorInvalidResourceHandle);
    for (KernelInfo *ki : lib->kernels)
        if (ki->name && !strcmp(ki->name, name)) {
            *k = (cudaKernel_t)ki;
            return cudaSuccess;
        }
    return ret(cudaErrorSymbolNotFound);
}

cudaError_t cudaLibraryUnload(cudaLibrary_t lib)
{
    std::lock_guard<std::recursive_mutex> lk(g_api);
    if (!lib || lib->magic != MAGIC_LIB) return ret(cudaErrorInvalidResourceHandle);
    for (KernelInfo *ki : lib->kernels) {
        g_kernels.erase(ki->fn);
        kernel_records().erase(ki);
        delete ki;
    }
    dlclose(lib->dl);
    lib->magic = 0;
    delete lib;
    return cudaSuccess;
}

} // extern "C"
