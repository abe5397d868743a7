/* The emulator runtime's shared state (not seen by rewritten sources).
 *
 * One launch runs its blocks one after another on the calling OS thread.
 * Inside a block every CUDA thread is a fiber (fiber.h); the scheduler
 * (sched.cpp) resumes them in the configured order, each running until its
 * next switch point: a barrier, a warp or warpgroup collective (shuffle,
 * vote, ldmatrix, mma, wgmma), or its end. A thread that is the last to
 * arrive at a barrier or collective completes it for everyone and still
 * yields, so the order of execution is exactly the schedule's. */
#ifndef BGEMU_INTERNAL_H
#define BGEMU_INTERNAL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <memory>
#include <mutex>
#include <vector>
#include "../bgemu.h"
#include "fiber.h"

namespace bgemu {

enum { TS_NEW, TS_READY, TS_BAR, TS_COLL, TS_DONE };
// Kinds of collectives (a collective's lanes must all be at the same kind and site).
enum { K_SHFL = 1, K_VOTE, K_SYNCWARP, K_LDMATRIX, K_MMA, K_WGMMA };

// Shared-memory layout: window addresses (what cvta.to.shared returns) are
// offsets into the block's arena plus WIN_BASE. The dynamic region comes
// first and ends at a guard page (an overrun faults); the static variables
// follow the guard. Dynamic windows stay below 256 KiB, the reach of a wgmma
// matrix descriptor, and host and window addresses agree modulo 1024 (the
// period of the 128-byte swizzle).
constexpr uint32_t WIN_BASE = 0x400;
constexpr size_t STATIC_CAP = 64 * 1024;   // static __shared__ region (48 KiB + redzones)
constexpr size_t REDZONE = 64;             // poisoned gap after each static variable
constexpr int MAX_THREADS = 1024;
constexpr size_t OPTIN_SMEM = 232448;      // H100: 227 KiB per block with the opt-in
constexpr size_t DEFAULT_SMEM = 48 * 1024; // without it (static + dynamic)
constexpr uint8_t POISON = 0xFF;           // fresh device and shared memory: f32/f16 NaN

struct AsyncCopy {
    uint32_t dst;        // shared window address
    uint8_t *dst_host;   // the same, checked at issue
    const uint8_t *src;
    int bytes, src_bytes;
    uint32_t group;      // commit-group number
};

struct Thread {
    ThreadVars v;        // what threadIdx & co read
    int lin, warp, lane;
    int state;
    Fiber fib;
    Stack *stack;
    const char *wait_site;
    int wait_kind;
    int bar_pred, bar_result;
    // collective exchange: my inputs and where my results go
    const void *cin;
    void *cout;
    // cp.async: copies in flight, groups committed so far
    std::vector<AsyncCopy> copies;
    uint32_t groups;
    // chunks this thread's cp.async filled that no fence.proxy.async covered yet
    std::vector<uint32_t> unfenced;
    void *tsan_fiber;
};

// A collective in progress in one warp (32 threads) or warpgroup (128).
struct Coll;
typedef void (*CollFn)(Coll &c, Thread **lanes, int n);
struct Coll {
    bool active;
    int kind;
    const char *site;
    int base, size;      // threads [base, base + size) by linear index
    uint64_t mask[2], arrived[2];
    CollFn fn;
    void *ctx;
};

struct StaticVar {
    const void *key;
    size_t off, size;
    const char *site;
};

// Shadow of one 16-byte shared-memory chunk, for the cp.async / ldmatrix /
// wgmma ordering checks.
struct Chunk {
    int32_t pending;     // thread with a cp.async in flight into it, or -1
    int32_t done_thread; // thread whose cp.async completed it last, or -1
    uint32_t done_epoch; // barrier interval of that completion
    uint32_t read_epoch; // barrier interval of the reads recorded in read_warps
    uint32_t read_warps; // warps that read it with ldmatrix / wgmma in read_epoch
    int32_t wg_reads;    // unfinished wgmma reading it
    int32_t unfenced;    // writer that has not executed fence.proxy.async since, or -1
};

struct KernelInfo {
    const void *fn;
    const char *name;
    int max_dyn;         // cudaFuncAttributeMaxDynamicSharedMemorySize, -1 = not set
    size_t static_bytes; // learned from the first block that ran
    bool static_known;
    PackFromArgv make;   // for cudaLaunchKernel (registered kernels only)
    void *lib;           // the library (NVRTC) that registered it, or null
};

struct Launch {
    ArgPack *pack;
    LaunchCfg cfg;
    const char *name, *site;
    KernelInfo *ki;
    int nthreads;
    size_t max_dyn;      // the dynamic size this launch may use
    bool failed;
    cudaError_t err;
};

struct Block {
    Launch *L;
    uint3 bid;
    std::vector<Thread> th;
    int n, nlive;
    // barrier
    int bar_arrived;
    const char *bar_site;
    int bar_kind, bar_acc;
    uint32_t epoch;
    // collectives in progress
    std::vector<Coll> colls;
    // shared memory
    uint8_t *arena;      // host address of window WIN_BASE
    size_t arena_map;    // bytes mapped (the guard page included)
    uint8_t *stat;       // static region (after the guard page)
    size_t static_used, static_bytes, static_high;
    std::vector<StaticVar> vars;
    uint8_t *dyn;        // dynamic region
    size_t dyn_size, dyn_alloc;
    std::vector<Chunk> shadow;
    // wgmma groups in flight, per warpgroup
    std::vector<struct WgState> wg;
};

// Per OS thread: the scheduler's own context and what is running.
struct Sched {
    Fiber main;
    void *main_tsan;     // ThreadSanitizer's handle of the OS thread's own context
    Launch *L;
    Block *B;
    Thread *cur;
    bool in_kernel;
    sigjmp_buf fault_jmp;
};
extern thread_local Sched g_sched;

// Settings from the environment (read once).
struct Settings {
    int schedule;        // 0 forward, 1 reverse, 2 random
    uint64_t seed;
    int cp_late;         // cp.async (and wgmma) complete at the wait, not at issue
    int abort_on_error;
    int verbose;
    int fail_exit;
};
const Settings &settings();

// ---- sched.cpp ------------------------------------------------------------------
// Runs a whole grid now (the stream is not capturing). Errors land in L.
void run_grid(Launch &L);
inline Thread *cur_thread() { return g_sched.in_kernel ? g_sched.cur : nullptr; } // null outside a kernel
// Ends the launch with an error: prints it, marks the launch failed and never
// returns to the calling fiber. Outside a kernel it aborts the process.
[[noreturn]] void kfail(cudaError_t code, const char *site, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Enter a collective of `size` threads (32: warp, 128: warpgroup) with the
// participants in mask; returns once fn has run for all of them.
void collective(int kind, const char *site, int size, const uint64_t mask[2], const void *in, void *out, CollFn fn,
                void *ctx = nullptr);
uint8_t *smem_host(uint32_t win, size_t bytes, const char *site, const char *what);
uint32_t smem_window(const void *host, const char *site);
Chunk &chunk_at(uint32_t win);
void complete_copies(Thread &t, uint32_t keep_groups, const char *site);
void note_kernel_error();

// ---- memory.cpp ------------------------------------------------------------------
struct Alloc {
    uintptr_t base;
    size_t size, usable;
    uint8_t *map;
    size_t map_size;
    int kind;            // 0 device, 1 pinned host
    bool freed;
    uint64_t serial;
};
cudaError_t mem_alloc(void **p, size_t size, int kind);
cudaError_t mem_free(void *p, int kind);
// The live allocation holding [p, p + n), or null.
const Alloc *mem_find(const void *p, size_t n);
// Text describing where p lies relative to the allocations (for fault reports).
void mem_describe(const void *p, char *buf, size_t n);
void mem_check_slack(const char *kernel, const char *site);
void fault_handlers_install();

// ---- cudart.cpp ----------------------------------------------------------------
KernelInfo *kernel_info(const void *fn, const char *name);
void set_last_error(cudaError_t e);

// ---- ptx.cpp ----------------------------------------------------------------------
// wgmma state of one warpgroup (ptx.cpp owns the layout).
struct WgOp;
struct WgState {
    std::vector<std::shared_ptr<WgOp>> open;                // issued, not committed
    std::vector<std::vector<std::shared_ptr<WgOp>>> groups; // committed, not waited for
};
void wg_block_end(Block &b);

} // namespace bgemu

#endif
