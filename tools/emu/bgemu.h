/* What CUDA sources see once tools/emu/rewrite has turned them into host C++.
 *
 * Every construct the GPU executes in a special way becomes a call into the
 * emulator's runtime (tools/emu/rt): a kernel launch, a __shared__
 * declaration, an inline-PTX statement, a barrier, a warp shuffle or vote.
 * Everything else in a kernel (arithmetic, loads, stores, loops) is compiled
 * by the host compiler as it is written, and each CUDA thread runs it on a
 * fiber of its own; the built-in variables (threadIdx ...) read the running
 * fiber's values. Included through tools/emu/prelude.h, after the real CUDA
 * headers, so the runtime types (dim3, cudaStream_t, __half) are NVIDIA's. */
#ifndef BGEMU_H
#define BGEMU_H
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <initializer_list>
#include <tuple>
#include <type_traits>
#include <utility>

namespace bgemu {

// ---- the running CUDA thread -------------------------------------------------------
struct ThreadVars {
    uint3 tid, bid;
    dim3 bdim, gdim;
};
// Points at the running fiber's values while a kernel runs (null otherwise).
extern thread_local ThreadVars *t_cur;

// ---- launches --------------------------------------------------------------------------
// A kernel with its arguments, copied at launch (a captured graph keeps it).
struct ArgPack {
    const void *fn = nullptr; // the kernel's host address: its identity
    virtual ~ArgPack() {}
    virtual void run() = 0;   // one CUDA thread: the kernel on copies of the arguments
};
template <class... P>
struct ArgPackT final : ArgPack {
    void (*f)(P...);
    std::tuple<std::decay_t<P>...> a;
    explicit ArgPackT(void (*f_)(P...), std::decay_t<P>... v) : f(f_), a(std::move(v)...) { fn = (const void *)f_; }
    void run() override { std::apply(f, a); }
};

struct LaunchCfg {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    LaunchCfg() : grid(1), block(1), smem(0), stream(0) {}
    LaunchCfg(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = 0) : grid(g), block(b), smem(s), stream(st) {}
};
// Runs (or, while the stream captures, records) the launch; takes the pack.
// Errors go where cudaGetLastError finds them, as for a real launch.
void submit(ArgPack *pack, const LaunchCfg &cfg, const char *name, const char *site);

// `k<<<g, b, s, st>>>(args)` becomes `bgemu::launch(k, LaunchCfg(g, b, s, st), ...)(args)`:
// the call operator takes the kernel's own parameter types, so the arguments
// convert exactly as in a call of the kernel.
template <class... P>
struct Launcher {
    void (*f)(P...);
    LaunchCfg cfg;
    const char *name, *site;
    void operator()(P... v) const { submit(new ArgPackT<P...>(f, std::move(v)...), cfg, name, site); }
};
template <class... P>
Launcher<P...> launch(void (*f)(P...), const LaunchCfg &cfg, const char *name, const char *site)
{
    return Launcher<P...>{f, cfg, name, site};
}

// cudaLaunchKernel (a void ** argument array) needs to know the parameter
// types: the rewriter registers every non-template kernel with one of these.
typedef ArgPack *(*PackFromArgv)(const void *fn, void **argv);
void register_kernel(const void *fn, const char *name, PackFromArgv make);
template <class... P, size_t... I>
ArgPack *pack_from_argv(void (*f)(P...), void **argv, std::index_sequence<I...>)
{
    return new ArgPackT<P...>(f, *(std::decay_t<P> *)argv[I]...);
}
template <class... P>
struct KernelReg {
    KernelReg(void (*f)(P...), const char *name) { register_kernel((const void *)f, name, &make); }
    static ArgPack *make(const void *fn, void **argv)
    {
        return pack_from_argv((void (*)(P...))fn, argv, std::index_sequence_for<P...>{});
    }
};
template <class... P> KernelReg(void (*)(P...), const char *) -> KernelReg<P...>;

// __launch_bounds__(max_threads): a launch with more threads fails on a GPU.
void launch_bounds(long long max_threads, const char *site);

// ---- shared memory -----------------------------------------------------------------------
// `__shared__ T x;` -> `auto &x = shared_var<T>(&key, site)`: one object per
// block (key: a static of the declaring function, so one per instantiation).
void *shared_static(const void *key, size_t size, size_t align, const char *site);
template <class T>
T &shared_var(const void *key, const char *site)
{
    return *(T *)shared_static(key, sizeof(T), alignof(T), site);
}
// The same with an __align__(A) from the declaration (A = 0: none).
template <class T, size_t A>
T &shared_var_al(const void *key, const char *site)
{
    return *(T *)shared_static(key, sizeof(T), A > alignof(T) ? A : alignof(T), site);
}
// `extern __shared__ T x[];` -> `T *const x = (T *)shared_dynamic(align, site)`.
void *shared_dynamic(size_t align, const char *site);

// ---- barriers, warp collectives --------------------------------------------------------------
void syncthreads_at(const char *site);
int syncthreads_or_at(const char *site, int pred);
int syncthreads_and_at(const char *site, int pred);
int syncthreads_count_at(const char *site, int pred);
void syncwarp_at(const char *site, unsigned mask = 0xffffffffu);
unsigned ballot_sync_at(const char *site, unsigned mask, int pred);
int any_sync_at(const char *site, unsigned mask, int pred);
int all_sync_at(const char *site, unsigned mask, int pred);
unsigned activemask_at(const char *site);
enum { SHFL_IDX = 0, SHFL_UP = 1, SHFL_DOWN = 2, SHFL_XOR = 3 };
uint64_t shfl_raw(const char *site, int kind, unsigned mask, uint64_t bits, int arg, int width);

template <class T>
T shfl_any(const char *site, int kind, unsigned mask, T v, int arg, int width)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type over 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    b = shfl_raw(site, kind, mask, b, arg, width);
    T r;
    memcpy(&r, &b, sizeof r);
    return r;
}
template <class T> T shfl_sync_at(const char *s, unsigned m, T v, int lane, int w = 32) { return shfl_any(s, SHFL_IDX, m, v, lane, w); }
template <class T> T shfl_up_sync_at(const char *s, unsigned m, T v, unsigned d, int w = 32) { return shfl_any(s, SHFL_UP, m, v, (int)d, w); }
template <class T> T shfl_down_sync_at(const char *s, unsigned m, T v, unsigned d, int w = 32) { return shfl_any(s, SHFL_DOWN, m, v, (int)d, w); }
template <class T> T shfl_xor_sync_at(const char *s, unsigned m, T v, int x, int w = 32) { return shfl_any(s, SHFL_XOR, m, v, x, w); }

// Generic <-> shared window addresses (cvta), for __cvta_generic_to_shared.
uint32_t cvta_to_shared(const void *p);
void *cvta_to_generic(uint32_t win);

// A kernel-side fault the emulator found (never returns).
[[noreturn]] void device_trap(const char *site, const char *what);

// ---- inline PTX ------------------------------------------------------------------------------
// `asm("tmpl" : "=r"(a) : "l"(p))` -> `ptx("tmpl", site, {pout<'r'>(a), pin<'l'>(p)})`.
struct PtxArg {
    char con;          // constraint letter: r l h f d n (c: memory clobber marker, unused)
    char dir;          // 0 input, 1 output, 2 input and output
    unsigned char size;
    void *p;           // outputs: where the value goes
    uint64_t v;        // inputs: the bits
    const char *name;  // [name] operands, or null
};
void ptx(const char *tmpl, const char *site, std::initializer_list<PtxArg> args);

template <char C> constexpr unsigned char con_size() { return C == 'h' ? 2 : (C == 'l' || C == 'd') ? 8 : C == 'n' ? 8 : 4; }
template <char C, class T>
PtxArg pin(const T &x, const char *name = nullptr)
{
    PtxArg a{C, 0, con_size<C>(), nullptr, 0, name};
    if constexpr (std::is_pointer<T>::value) a.v = (uint64_t)(uintptr_t)x;
    else if constexpr (C == 'f') { float f = (float)x; memcpy(&a.v, &f, 4); }
    else if constexpr (C == 'd') { double d = (double)x; memcpy(&a.v, &d, 8); }
    else if constexpr (std::is_integral<T>::value || std::is_enum<T>::value) a.v = (uint64_t)(long long)x;
    else { static_assert(sizeof(T) <= 8, "PTX operand over 8 bytes"); memcpy(&a.v, &x, sizeof x); }
    if (a.size < 8) a.v &= (1ull << (8 * a.size)) - 1;
    return a;
}
template <char C, class T>
PtxArg pout(T &x, const char *name = nullptr)
{
    static_assert(sizeof(T) == con_size<C>() || (C == 'r' && sizeof(T) == 4), "PTX output operand of the wrong size");
    return PtxArg{C, 1, (unsigned char)sizeof(T), (void *)&x, 0, name};
}
template <char C, class T>
PtxArg pinout(T &x, const char *name = nullptr)
{
    static_assert(sizeof(T) == con_size<C>(), "PTX operand of the wrong size");
    PtxArg a{C, 2, (unsigned char)sizeof(T), (void *)&x, 0, name};
    memcpy(&a.v, &x, sizeof x);
    return a;
}

template <class T> struct nodeduce { typedef T type; };
} // namespace bgemu

// The runtime's C++ overloads that take a kernel as a function pointer (NVIDIA's
// header declares them only for nvcc).
template <class... P>
inline cudaError_t cudaFuncSetAttribute(void (*f)(P...), cudaFuncAttribute attr, int value)
{
    return ::cudaFuncSetAttribute((const void *)f, attr, value);
}
template <class... P>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, void (*f)(P...))
{
    return ::cudaFuncGetAttributes(a, (const void *)f);
}
template <class... P>
inline cudaError_t cudaLaunchKernel(void (*f)(P...), dim3 g, dim3 b, void **args, size_t smem = 0, cudaStream_t s = 0)
{
    return ::cudaLaunchKernel((const void *)f, g, b, args, smem, s);
}

// ---- the CUDA names kernels use -----------------------------------------------------------------
// Unrewritten call sites (none in the project's code) still work, without a site.
inline void __syncthreads() { bgemu::syncthreads_at(nullptr); }
inline int __syncthreads_or(int p) { return bgemu::syncthreads_or_at(nullptr, p); }
inline int __syncthreads_and(int p) { return bgemu::syncthreads_and_at(nullptr, p); }
inline int __syncthreads_count(int p) { return bgemu::syncthreads_count_at(nullptr, p); }
inline void __syncwarp(unsigned m = 0xffffffffu) { bgemu::syncwarp_at(nullptr, m); }
inline unsigned __ballot_sync(unsigned m, int p) { return bgemu::ballot_sync_at(nullptr, m, p); }
inline int __any_sync(unsigned m, int p) { return bgemu::any_sync_at(nullptr, m, p); }
inline int __all_sync(unsigned m, int p) { return bgemu::all_sync_at(nullptr, m, p); }
inline unsigned __activemask() { return bgemu::activemask_at(nullptr); }
template <class T> T __shfl_sync(unsigned m, T v, int l, int w = 32) { return bgemu::shfl_sync_at(nullptr, m, v, l, w); }
template <class T> T __shfl_up_sync(unsigned m, T v, unsigned d, int w = 32) { return bgemu::shfl_up_sync_at(nullptr, m, v, d, w); }
template <class T> T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32) { return bgemu::shfl_down_sync_at(nullptr, m, v, d, w); }
template <class T> T __shfl_xor_sync(unsigned m, T v, int x, int w = 32) { return bgemu::shfl_xor_sync_at(nullptr, m, v, x, w); }
inline size_t __cvta_generic_to_shared(const void *p) { return bgemu::cvta_to_shared(p); }
inline void *__cvta_shared_to_generic(size_t w) { return bgemu::cvta_to_generic((uint32_t)w); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
[[noreturn]] inline void __trap() { bgemu::device_trap(nullptr, "__trap() called"); }

// Atomics: fibers switch only at barriers and collectives, so a plain
// read-modify-write is atomic here.
template <class T> T atomicAdd(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = o + v; return o; }
template <class T> T atomicSub(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = o - v; return o; }
template <class T> T atomicExch(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = v; return o; }
template <class T> T atomicMin(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = v < o ? v : o; return o; }
template <class T> T atomicMax(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = v > o ? v : o; return o; }
template <class T> T atomicAnd(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = o & v; return o; }
template <class T> T atomicOr(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = o | v; return o; }
template <class T> T atomicXor(T *p, typename bgemu::nodeduce<T>::type v) { T o = *p; *p = o ^ v; return o; }
template <class T> T atomicCAS(T *p, typename bgemu::nodeduce<T>::type c, typename bgemu::nodeduce<T>::type v)
{
    T o = *p;
    if (o == c) *p = v;
    return o;
}
inline unsigned atomicInc(unsigned *p, unsigned lim) { unsigned o = *p; *p = o >= lim ? 0 : o + 1; return o; }
inline unsigned atomicDec(unsigned *p, unsigned lim) { unsigned o = *p; *p = (o == 0 || o > lim) ? lim : o - 1; return o; }

// Math intrinsics. The rounding-mode variants are the IEEE operations the host
// performs anyway (kernels are compiled with -ffp-contract=off, so nothing is
// fused behind their back); the fast approximations are the accurate ones.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x)
{
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) { return (unsigned long long)(((unsigned __int128)a * b) >> 64); }
template <class T> T __ldg(const T *p) { return *p; }
long long clock64();
// CUDA's device-side min/max overloads.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

#endif
