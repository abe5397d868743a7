// The scheduler: blocks, CUDA threads as fibers, barriers, warp collectives,
// shared memory and its checks (internal.h describes the model).
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <algorithm>
#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define BGEMU_ASAN 1
#include <sanitizer/asan_interface.h>
#endif
// Under ThreadSanitizer the runtime itself is compiled without instrumentation
// (its bookkeeping is no CUDA thread's work) but announces fibers and the
// happens-before edges of barriers to TSan (BGEMU_TSAN_HOOKS, make TSAN=1).
#if defined(__SANITIZE_THREAD__) || defined(BGEMU_TSAN_HOOKS)
#define BGEMU_TSAN 1
#include <sanitizer/tsan_interface.h>
#endif

namespace bgemu {

thread_local ThreadVars *t_cur;
thread_local Sched g_sched;

// ---- settings ----------------------------------------------------------------------------
static Settings read_settings()
{
    Settings s = {};
    s.cp_late = 1;
    const char *e = getenv("BGEMU_SCHEDULE");
    if (e && *e) {
        if (!strcmp(e, "forward")) s.schedule = 0;
        else if (!strcmp(e, "reverse")) s.schedule = 1;
        else if (!strncmp(e, "random", 6)) {
            s.schedule = 2;
            s.seed = e[6] == ':' ? strtoull(e + 7, nullptr, 0) : 1;
        } else {
            fprintf(stderr, "bgemu: BGEMU_SCHEDULE=%s: expected forward, reverse or random[:SEED]\n", e);
            exit(2);
        }
    }
    e = getenv("BGEMU_CP_ASYNC");
    if (e && *e) {
        if (!strcmp(e, "late")) s.cp_late = 1;
        else if (!strcmp(e, "early")) s.cp_late = 0;
        else {
            fprintf(stderr, "bgemu: BGEMU_CP_ASYNC=%s: expected late or early\n", e);
            exit(2);
        }
    }
    s.abort_on_error = getenv("BGEMU_ABORT") && atoi(getenv("BGEMU_ABORT"));
    s.verbose = getenv("BGEMU_VERBOSE") ? atoi(getenv("BGEMU_VERBOSE")) : 0;
    s.fail_exit = getenv("BGEMU_FAIL_EXIT") && atoi(getenv("BGEMU_FAIL_EXIT"));
    return s;
}

const Settings &settings()
{
    static const Settings s = read_settings();
    return s;
}

// ---- errors -----------------------------------------------------------------------------------
static int g_kernel_errors; // guarded by the launch lock (cudart.cpp) in practice

static void report_errors_at_exit()
{
    if (!g_kernel_errors) return;
    fprintf(stderr, "bgemu: %d kernel error%s detected in this process (see the messages above)\n", g_kernel_errors,
            g_kernel_errors == 1 ? "" : "s");
    fflush(stderr);
    if (settings().fail_exit) _exit(3);
}

void note_kernel_error()
{
    static bool registered;
    if (!registered) registered = true, atexit(report_errors_at_exit);
    g_kernel_errors++;
}


static void vformat_error(char *buf, size_t n, const char *site, const char *fmt, va_list ap)
{
    Sched &S = g_sched;
    size_t k = 0;
    if (S.L) {
        const Block *B = S.B;
        k += (size_t)snprintf(buf + k, n - k, "kernel %s (launched at %s)", S.L->name ? S.L->name : "?",
                              S.L->site ? S.L->site : "?");
        if (B && k < n) k += (size_t)snprintf(buf + k, n - k, ", block (%u,%u,%u)", B->bid.x, B->bid.y, B->bid.z);
        if (S.cur && k < n)
            k += (size_t)snprintf(buf + k, n - k, ", thread (%u,%u,%u) [warp %d lane %d]", S.cur->v.tid.x,
                                  S.cur->v.tid.y, S.cur->v.tid.z, S.cur->warp, S.cur->lane);
        if (k < n) k += (size_t)snprintf(buf + k, n - k, ": ");
    }
    if (k < n) k += (size_t)vsnprintf(buf + k, n - k, fmt, ap);
    if (site && k < n) snprintf(buf + k, n - k, " (at %s)", site);
}

// Records an error found by the scheduler itself (not on a fiber).
static void sched_error(cudaError_t code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sched_error(cudaError_t code, const char *fmt, ...)
{
    Sched &S = g_sched;
    if (S.L && S.L->failed) return; // the first error of a launch is the one that counts
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    Thread *keep = S.cur;
    S.cur = nullptr;
    vformat_error(msg, sizeof msg, nullptr, fmt, ap);
    S.cur = keep;
    va_end(ap);
    fprintf(stderr, "bgemu: error: %s\n", msg);
    fflush(stderr);
    note_kernel_error();
    if (settings().abort_on_error) abort();
    if (S.L) S.L->failed = true, S.L->err = code;
}

static void yield_to_scheduler();

[[noreturn]] void kfail(cudaError_t code, const char *site, const char *fmt, ...)
{
    Sched &S = g_sched;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vformat_error(msg, sizeof msg, site, fmt, ap);
    va_end(ap);
    fprintf(stderr, "bgemu: error: %s\n", msg);
    fflush(stderr);
    if (!S.in_kernel || !S.L) abort();
    note_kernel_error();
    if (settings().abort_on_error) abort();
    if (!S.L->failed) S.L->failed = true, S.L->err = code;
    if (S.cur) {
        S.cur->state = TS_DONE;
        yield_to_scheduler(); // never resumed: the launch is over
    }
    siglongjmp(S.fault_jmp, 1);
}

[[noreturn]] void device_trap(const char *site, const char *what) { kfail(cudaErrorLaunchFailure, site, "%s", what); }

long long clock64()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// ---- fibers ------------------------------------------------------------------------------------
constexpr size_t STACK_SIZE = 256 * 1024;
#if !BGEMU_TSAN
static thread_local std::vector<Stack *> *t_stacks; // free stacks of this OS thread

static Stack *stack_get()
{
    if (!t_stacks) t_stacks = new std::vector<Stack *>();
    if (!t_stacks->empty()) {
        Stack *s = t_stacks->back();
        t_stacks->pop_back();
#if BGEMU_ASAN
        // a fiber abandoned after an error leaves its frames' redzones behind
        __asan_unpoison_memory_region(s->lo, s->size);
#endif
        return s;
    }
    Stack *s = bgemu_stack_new(STACK_SIZE);
    if (!s) {
        fprintf(stderr, "bgemu: out of memory for fiber stacks\n");
        abort();
    }
    return s;
}

static void stack_put(Stack *s) { t_stacks->push_back(s); }
#endif

static void yield_to_scheduler()
{
    Sched &S = g_sched;
    Thread *t = S.cur;
#if BGEMU_TSAN
    __tsan_switch_to_fiber(S.main_tsan, 1);
#endif
    bgemu_fiber_switch(&t->fib, &S.main);
}

static void thread_entry(void *arg)
{
    Thread *t = (Thread *)arg;
    bgemu_fiber_arrived(&t->fib);
    Sched &S = g_sched;
#if BGEMU_TSAN
    __tsan_acquire(S.L);
#endif
    S.L->pack->run();
#if BGEMU_TSAN
    __tsan_release(&S.L->err);
#endif
    t->state = TS_DONE;
    yield_to_scheduler();
    abort(); // a finished fiber is never resumed
}

static void resume(Thread &t)
{
    Sched &S = g_sched;
    if (t.state == TS_NEW) {
#if BGEMU_TSAN
        // One TSan fiber, and one stack, per thread index, reused by every
        // block: creating a TSan fiber costs ~1 MB of clearing, and a stack
        // that passed between TSan threads would look like a race on every
        // frame. Thread i of a block is thus ordered after thread i of the
        // previous block (races between blocks are still seen for other
        // indices, races within a block always).
        static thread_local std::vector<std::pair<void *, Stack *>> *pool;
        if (!pool) pool = new std::vector<std::pair<void *, Stack *>>();
        if (pool->size() <= (size_t)t.lin) pool->resize((size_t)t.lin + 1, {nullptr, nullptr});
        auto &slot = (*pool)[(size_t)t.lin];
        if (!slot.first) slot.first = __tsan_create_fiber(0), slot.second = bgemu_stack_new(STACK_SIZE);
        t.tsan_fiber = slot.first;
        t.stack = slot.second;
#else
        t.stack = stack_get();
#endif
        bgemu_fiber_make(&t.fib, t.stack, thread_entry, &t);
    }
    t.state = TS_READY;
    S.cur = &t;
    t_cur = &t.v;
#if BGEMU_TSAN
    __tsan_switch_to_fiber(t.tsan_fiber, 1);
#endif
    bgemu_fiber_switch(&S.main, &t.fib);
    S.cur = nullptr;
    t_cur = nullptr;
}

static void release_fiber(Thread &t)
{
#if BGEMU_TSAN
    t.stack = nullptr; // the pooled fiber and stack stay for the next block
    t.tsan_fiber = nullptr;
#else
    if (t.stack) stack_put(t.stack), t.stack = nullptr;
#endif
}

// ---- scheduling order ------------------------------------------------------------------------------
static uint64_t rng_next(uint64_t &s)
{
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
}

static void make_order(std::vector<int> &o, int n, uint64_t &rng)
{
    o.resize((size_t)n);
    const int mode = settings().schedule;
    for (int i = 0; i < n; i++) o[(size_t)i] = mode == 1 ? n - 1 - i : i;
    if (mode == 2)
        for (int i = n - 1; i > 0; i--) std::swap(o[(size_t)i], o[(size_t)(rng_next(rng) % (uint64_t)(i + 1))]);
}

// ---- shared memory ----------------------------------------------------------------------------------
static size_t pgsize() { return (size_t)sysconf(_SC_PAGESIZE); }
static size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

struct ArenaCache {
    uint8_t *map = nullptr;
    size_t size = 0;
};
static thread_local ArenaCache t_arena;

// Maps (or reuses) an arena for `dyn` dynamic bytes: the dynamic region
// ending at a PROT_NONE page, then the static region.
static void arena_setup(Block &b, size_t dyn)
{
    const size_t pg = pgsize();
    b.dyn_size = dyn;
    b.dyn_alloc = round_up(dyn, 128);
    const size_t dyn_pages = round_up(b.dyn_alloc, pg);
    const size_t need = dyn_pages + pg + STATIC_CAP;
#if BGEMU_TSAN
    // A fresh mapping per block: ThreadSanitizer forgets the previous block's
    // accesses when its mapping goes (munmap clears the shadow without
    // counting as anybody's write), so two blocks' shared memory never race
    b.arena_map = need;
    void *m = mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, "bgemu: cannot map %zu bytes of shared memory\n", need);
        abort();
    }
    b.arena = (uint8_t *)m;
    mprotect(b.arena + dyn_pages, pg, PROT_NONE);
#else
    if (t_arena.size != need) {
        if (t_arena.map) munmap(t_arena.map, t_arena.size);
        void *m = mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, "bgemu: cannot map %zu bytes of shared memory\n", need);
            abort();
        }
        t_arena.map = (uint8_t *)m;
        t_arena.size = need;
        mprotect(t_arena.map + dyn_pages, pg, PROT_NONE);
    }
    b.arena = t_arena.map;
    b.arena_map = t_arena.size;
#endif
    b.dyn = b.arena + dyn_pages - b.dyn_alloc;
    b.stat = b.arena + dyn_pages + pg;
    b.shadow.assign(b.arena_map / 16, Chunk{-1, -1, 0, 0, 0, 0, -1});
}

static void arena_release(Block &b)
{
#if BGEMU_TSAN
    munmap(b.arena, b.arena_map);
    b.arena = nullptr;
#else
    (void)b;
#endif
}

static size_t g_shadow_lo, g_shadow_hi; // chunk range touched in this block

Chunk &chunk_at(uint32_t win)
{
    Block &b = *g_sched.B;
    size_t i = (win - WIN_BASE) / 16;
    if (i < g_shadow_lo) g_shadow_lo = i;
    if (i + 1 > g_shadow_hi) g_shadow_hi = i + 1;
    return b.shadow[i];
}

static void block_smem_begin(Block &b)
{
    b.vars.clear();
    b.static_used = b.static_bytes = 0;
    // static variables are poisoned as they are placed (shared_static); under
    // ThreadSanitizer all at once here, before the threads start, so that
    // the poisoning is nobody's racing write
    memset(b.dyn, POISON, b.dyn_alloc);
#if BGEMU_TSAN
    memset(b.stat, POISON, STATIC_CAP);
#endif
    for (size_t i = g_shadow_lo; i < g_shadow_hi && i < b.shadow.size(); i++) b.shadow[i] = Chunk{-1, -1, 0, 0, 0, 0, -1};
    g_shadow_lo = SIZE_MAX, g_shadow_hi = 0;
}

static bool all_poison(const uint8_t *p, size_t n, size_t *first)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != POISON) {
            *first = i;
            return false;
        }
    return true;
}

// Writes past a static variable or past the dynamic bytes land in poisoned
// gaps: find them when the block ends.
static void block_smem_end(Block &b)
{
    size_t at;
    for (size_t i = 0; i < b.vars.size(); i++) {
        const StaticVar &v = b.vars[i];
        const size_t gap_end = i + 1 < b.vars.size() ? b.vars[i + 1].off : v.off + v.size + REDZONE;
        if (!all_poison(b.stat + v.off + v.size, gap_end - v.off - v.size, &at)) {
            sched_error(cudaErrorIllegalAddress,
                        "a write landed %zu bytes past the end of the %zu-byte __shared__ variable declared at %s",
                        at, v.size, v.site ? v.site : "?");
            return;
        }
    }
    if (!all_poison(b.dyn + b.dyn_size, b.dyn_alloc - b.dyn_size, &at))
        sched_error(cudaErrorIllegalAddress, "a write landed %zu bytes past the end of the %zu bytes of dynamic shared memory",
                    at, b.dyn_size);
}

static void check_smem_limits(Launch &L, size_t static_bytes, const char *site)
{
    const size_t dyn = L.cfg.smem;
    if (static_bytes > DEFAULT_SMEM)
        kfail(cudaErrorInvalidValue, site, "%zu bytes of static __shared__ memory: a GPU allows 48 KiB", static_bytes);
    if (L.ki->max_dyn < 0 && static_bytes + dyn > DEFAULT_SMEM)
        kfail(cudaErrorInvalidValue, site,
              "the launch asks for %zu bytes of dynamic shared memory beside %zu static bytes: %zu in all, over the "
              "48 KiB a kernel gets unless cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize) raises it",
              dyn, static_bytes, dyn + static_bytes);
    if (L.ki->max_dyn >= 0 && static_bytes + (size_t)L.ki->max_dyn > OPTIN_SMEM)
        kfail(cudaErrorInvalidValue, site,
              "%zu static + %d dynamic bytes of shared memory (cudaFuncAttributeMaxDynamicSharedMemorySize) exceed the "
              "%zu bytes a block may have",
              static_bytes, L.ki->max_dyn, OPTIN_SMEM);
}

void *shared_static(const void *key, size_t size, size_t align, const char *site)
{
    Sched &S = g_sched;
    if (!S.in_kernel || !S.cur) kfail(cudaErrorLaunchFailure, site, "__shared__ declaration outside a kernel");
    Block &b = *S.B;
    for (const StaticVar &v : b.vars)
        if (v.key == key) return b.stat + v.off;
    if (align < 16) align = 16;
    const size_t off = round_up(b.static_used, align);
    if (off + size + REDZONE > STATIC_CAP)
        kfail(cudaErrorInvalidValue, site, "static __shared__ memory of this kernel passes %zu bytes", STATIC_CAP - REDZONE);
    b.static_bytes = round_up(b.static_bytes, align) + size;
    check_smem_limits(*S.L, b.static_bytes, site);
#if !BGEMU_TSAN
    memset(b.stat + b.static_used, POISON, off + size + REDZONE - b.static_used); // alignment padding included
#endif
    b.vars.push_back(StaticVar{key, off, size, site});
    b.static_used = off + size + REDZONE;
    if (b.static_used > b.static_high) b.static_high = b.static_used;
    return b.stat + off;
}

void *shared_dynamic(size_t align, const char *site)
{
    Sched &S = g_sched;
    if (!S.in_kernel || !S.cur) kfail(cudaErrorLaunchFailure, site, "extern __shared__ declaration outside a kernel");
    if (align > 128)
        kfail(cudaErrorLaunchFailure, site, "extern __shared__ asks for %zu-byte alignment; the emulator aligns the dynamic "
              "region to 128 bytes", align);
    return S.B->dyn;
}

uint32_t smem_window(const void *host, const char *site)
{
    Block &b = *g_sched.B;
    const uint8_t *p = (const uint8_t *)host;
    const uint8_t *guard = b.dyn + b.dyn_alloc;
    if (p < b.arena || p >= b.arena + b.arena_map || (p >= guard && p < b.stat))
        kfail(cudaErrorIllegalAddress, site, "cvta.to.shared of %p, which is not shared memory", host);
    return WIN_BASE + (uint32_t)(p - b.arena);
}

uint32_t cvta_to_shared(const void *p) { return smem_window(p, nullptr); }
void *cvta_to_generic(uint32_t win) { return g_sched.B->arena + (win - WIN_BASE); }

uint8_t *smem_host(uint32_t win, size_t bytes, const char *site, const char *what)
{
    Block &b = *g_sched.B;
    if (win < WIN_BASE || (size_t)(win - WIN_BASE) + bytes > b.arena_map)
        kfail(cudaErrorIllegalAddress, site, "%s of %zu bytes at shared address 0x%x: outside shared memory", what, bytes,
              win);
    uint8_t *p = b.arena + (win - WIN_BASE);
    for (const StaticVar &v : b.vars)
        if (p >= b.stat + v.off && p + bytes <= b.stat + v.off + v.size) return p;
    if (p >= b.dyn && p + bytes <= b.dyn + b.dyn_size) return p;
    if (p >= b.dyn && p < b.dyn + b.dyn_alloc + pgsize())
        kfail(cudaErrorIllegalAddress, site, "%s of %zu bytes at shared address 0x%x runs past the %zu bytes of dynamic "
              "shared memory (offset %zu)", what, bytes, win, b.dyn_size, (size_t)(p - b.dyn));
    kfail(cudaErrorIllegalAddress, site, "%s of %zu bytes at shared address 0x%x: not inside a __shared__ variable or "
          "the dynamic shared memory", what, bytes, win);
}

// ---- launch bounds ---------------------------------------------------------------------------------
void launch_bounds(long long max_threads, const char *site)
{
    Sched &S = g_sched;
    if (!S.in_kernel || !S.L) return;
    const long long n = S.L->nthreads;
    if (n > max_threads)
        kfail(cudaErrorLaunchOutOfResources, site,
              "launched with %lld threads per block, over its __launch_bounds__ of %lld (a GPU refuses the launch)", n,
              max_threads);
}

// ---- barriers ----------------------------------------------------------------------------------------
enum { BAR_PLAIN, BAR_OR, BAR_AND, BAR_COUNT };

static bool same_site(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static void release_barrier(Block &b)
{
    if (b.nlive < b.n) {
        int first = -1;
        for (int i = 0; i < b.n && first < 0; i++)
            if (b.th[(size_t)i].state == TS_DONE) first = i;
        sched_error(cudaErrorLaunchFailure,
                    "divergent barrier: %d thread(s) (the first: thread %d) exited without reaching the __syncthreads "
                    "at %s that the other %d reached",
                    b.n - b.nlive, first, b.bar_site ? b.bar_site : "?", b.nlive);
        return;
    }
    const int r = b.bar_acc;
    for (Thread &t : b.th)
        if (t.state == TS_BAR) t.state = TS_READY, t.bar_result = r;
    b.epoch++;
    b.bar_arrived = 0;
}

static int barrier(int kind, const char *site, int pred)
{
    Sched &S = g_sched;
    Thread *t = S.cur;
    if (!S.in_kernel || !t) {
        fprintf(stderr, "bgemu: __syncthreads outside a kernel\n");
        abort();
    }
    Block &b = *S.B;
    if (b.bar_arrived == 0) {
        b.bar_site = site, b.bar_kind = kind;
        b.bar_acc = kind == BAR_AND ? 1 : 0;
    } else if (!same_site(b.bar_site, site) || b.bar_kind != kind) {
        kfail(cudaErrorLaunchFailure, site, "threads wait at different barriers: this one, and %s where %d thread(s) already wait",
              b.bar_site ? b.bar_site : "?", b.bar_arrived);
    }
    if (kind == BAR_OR) b.bar_acc |= pred != 0;
    else if (kind == BAR_AND) b.bar_acc &= pred != 0;
    else if (kind == BAR_COUNT) b.bar_acc += pred != 0;
    t->state = TS_BAR;
    t->wait_site = site;
    b.bar_arrived++;
#if BGEMU_TSAN
    __tsan_release(&b.epoch);
#endif
    if (b.bar_arrived == b.nlive) release_barrier(b);
    yield_to_scheduler();
#if BGEMU_TSAN
    __tsan_acquire(&b.epoch);
#endif
    return t->bar_result;
}

void syncthreads_at(const char *site) { barrier(BAR_PLAIN, site, 0); }
int syncthreads_or_at(const char *site, int p) { return barrier(BAR_OR, site, p); }
int syncthreads_and_at(const char *site, int p) { return barrier(BAR_AND, site, p); }
int syncthreads_count_at(const char *site, int p) { return barrier(BAR_COUNT, site, p); }

// ---- collectives -----------------------------------------------------------------------------------------
static bool mbit(const uint64_t m[2], int i) { return (m[i >> 6] >> (i & 63)) & 1; }
static const char *kind_name(int k);

void collective(int kind, const char *site, int size, const uint64_t mask_in[2], const void *in, void *out, CollFn fn,
                void *ctx)
{
    Sched &S = g_sched;
    Thread *t = S.cur;
    if (!S.in_kernel || !t) {
        fprintf(stderr, "bgemu: a warp collective (%s) outside a kernel\n", kind_name(kind));
        abort();
    }
    Block &b = *S.B;
    const int base = t->lin / size * size, me = t->lin - base;
    uint64_t mask[2] = {mask_in[0], size > 64 ? mask_in[1] : 0};
    if (size < 64) mask[0] &= (1ull << size) - 1;
    if (!mbit(mask, me))
        kfail(cudaErrorLaunchFailure, site, "%s with member mask 0x%llx, which leaves out the calling lane %d",
              kind_name(kind), (unsigned long long)mask[0], me);
    // Join the collective this lane belongs to: same kind, site and mask. A
    // different one may be pending for other lanes (a subset of the warp
    // busy elsewhere first is legal), but never one holding lanes this one
    // names: those wait somewhere else and cannot come.
    Coll *c = nullptr;
    for (Coll &x : b.colls)
        if (x.active && x.base == base && x.size == size && x.kind == kind && same_site(x.site, site) &&
            x.mask[0] == mask[0] && x.mask[1] == mask[1] && !mbit(x.arrived, me)) {
            c = &x;
            break;
        }
    if (!c) {
        // a new collective: every lane it names must exist and still run (one
        // that exits later, while the others wait, is caught by check_exit)
        for (int l = 0; l < size; l++) {
            if (!mbit(mask, l)) continue;
            const int lin = base + l;
            if (lin >= b.n)
                kfail(cudaErrorLaunchFailure, site, "%s names lane %d in its mask, but the block has only %d threads",
                      kind_name(kind), l, b.n);
            if (b.th[(size_t)lin].state == TS_DONE)
                kfail(cudaErrorLaunchFailure, site, "%s names lane %d in its mask, and that thread has already exited",
                      kind_name(kind), l);
        }
        for (const Coll &x : b.colls)
            if (x.active && x.base == base && x.size == size && ((x.arrived[0] & mask[0]) || (x.arrived[1] & mask[1]))) {
                if (x.kind == kind && same_site(x.site, site))
                    kfail(cudaErrorLaunchFailure, site, "lanes of one %s disagree on the member mask: 0x%llx here, 0x%llx for "
                          "lanes that arrived first", kind_name(kind), (unsigned long long)mask[0],
                          (unsigned long long)x.mask[0]);
                kfail(cudaErrorLaunchFailure, site, "divergent collectives: this lane's %s (mask 0x%llx) names lanes that "
                      "wait at a %s (mask 0x%llx, at %s)", kind_name(kind), (unsigned long long)mask[0], kind_name(x.kind),
                      (unsigned long long)x.mask[0], x.site ? x.site : "?");
            }
        for (Coll &x : b.colls)
            if (!x.active) {
                c = &x;
                break;
            }
        if (!c) {
            b.colls.push_back(Coll{});
            c = &b.colls.back();
        }
        *c = Coll{true, kind, site, base, size, {mask[0], mask[1]}, {0, 0}, fn, ctx};
    }
    c->arrived[me >> 6] |= 1ull << (me & 63);
    t->cin = in, t->cout = out;
    t->state = TS_COLL;
    t->wait_site = site, t->wait_kind = kind;
    if (c->arrived[0] == c->mask[0] && c->arrived[1] == c->mask[1]) {
        Thread *lanes[128];
        int n = 0;
        for (int l = 0; l < size; l++)
            if (mbit(mask, l)) lanes[n++] = &b.th[(size_t)(base + l)];
        Coll done = *c;
        c->active = false;
        fn(done, lanes, n);
        for (int i = 0; i < n; i++) lanes[i]->state = TS_READY;
    }
    yield_to_scheduler();
}

// Exiting while lanes wait for this thread in a collective is a deadlock on a GPU.
static void check_exit(Block &b, Thread &t)
{
    for (const Coll &c : b.colls) {
        if (!c.active || t.lin < c.base || t.lin >= c.base + c.size) continue;
        const int l = t.lin - c.base;
        if (mbit(c.mask, l) && !mbit(c.arrived, l)) {
            sched_error(cudaErrorLaunchFailure,
                        "thread %d (lane %d) exited while other lanes wait for it in a %s (at %s) whose mask names it",
                        t.lin, l, kind_name(c.kind), c.site ? c.site : "?");
            return;
        }
    }
}

// ---- shuffles and votes ----------------------------------------------------------------------------------
static const char *kind_name(int k)
{
    switch (k) {
    case K_SHFL: return "warp shuffle";
    case K_VOTE: return "warp vote";
    case K_SYNCWARP: return "__syncwarp";
    case K_LDMATRIX: return "ldmatrix";
    case K_MMA: return "mma.sync";
    case K_WGMMA: return "wgmma";
    default: return "warp collective";
    }
}

struct ShflIn {
    uint64_t bits;
    int kind, arg, width;
};

static void shfl_compute(Coll &c, Thread **lanes, int n)
{
    uint64_t src_bits[32];
    bool in_mask[32] = {};
    for (int i = 0; i < n; i++) {
        const int l = lanes[i]->lane;
        src_bits[l] = ((const ShflIn *)lanes[i]->cin)->bits;
        in_mask[l] = true;
    }
    for (int i = 0; i < n; i++) {
        const ShflIn &in = *(const ShflIn *)lanes[i]->cin;
        const int lane = lanes[i]->lane;
        // PTX shfl.sync: c = ((32 - width) << 8) | clamp, segmask = c[12:8]
        const int segmask = (32 - in.width) & 31;
        const int clamp = in.kind == SHFL_UP ? 0 : 31;
        const int minl = lane & segmask, maxl = (lane & segmask) | (clamp & ~segmask);
        int j;
        bool ok;
        switch (in.kind) {
        case SHFL_UP: j = lane - in.arg, ok = j >= maxl; break;
        case SHFL_DOWN: j = lane + in.arg, ok = j <= maxl; break;
        case SHFL_XOR: j = lane ^ in.arg, ok = j <= maxl; break;
        default: j = minl | (in.arg & ~segmask & 31), ok = j <= maxl; break;
        }
        if (!ok) j = lane;
        // reading a lane outside the mask: undefined on a GPU, poison here
        *(uint64_t *)lanes[i]->cout = (j >= 0 && j < 32 && in_mask[j]) ? src_bits[j] : ~0ull;
    }
    (void)c;
}

uint64_t shfl_raw(const char *site, int kind, unsigned mask, uint64_t bits, int arg, int width)
{
    if (width <= 0 || width > 32 || (width & (width - 1)))
        kfail(cudaErrorLaunchFailure, site, "warp shuffle with width %d: a power of two up to 32 is required", width);
    ShflIn in{bits, kind, arg, width};
    uint64_t out = 0;
    const uint64_t m[2] = {mask, 0};
    collective(K_SHFL, site, 32, m, &in, &out, shfl_compute);
    return out;
}

enum { V_BALLOT, V_ANY, V_ALL };
struct VoteIn {
    int kind, pred;
};
static void vote_compute(Coll &c, Thread **lanes, int n)
{
    unsigned ballot = 0;
    for (int i = 0; i < n; i++)
        if (((const VoteIn *)lanes[i]->cin)->pred) ballot |= 1u << lanes[i]->lane;
    for (int i = 0; i < n; i++) {
        const VoteIn &in = *(const VoteIn *)lanes[i]->cin;
        unsigned r = in.kind == V_BALLOT ? ballot : in.kind == V_ANY ? ballot != 0 : ballot == (unsigned)c.mask[0];
        *(unsigned *)lanes[i]->cout = r;
    }
}
static unsigned vote(const char *site, int kind, unsigned mask, int pred)
{
    VoteIn in{kind, pred};
    unsigned out = 0;
    const uint64_t m[2] = {mask, 0};
    collective(K_VOTE, site, 32, m, &in, &out, vote_compute);
    return out;
}
unsigned ballot_sync_at(const char *site, unsigned mask, int pred) { return vote(site, V_BALLOT, mask, pred); }
int any_sync_at(const char *site, unsigned mask, int pred) { return (int)vote(site, V_ANY, mask, pred); }
int all_sync_at(const char *site, unsigned mask, int pred) { return (int)vote(site, V_ALL, mask, pred); }

static void nothing(Coll &, Thread **, int) {}
void syncwarp_at(const char *site, unsigned mask)
{
    const uint64_t m[2] = {mask, 0};
#if BGEMU_TSAN
    Thread *t = g_sched.cur;
    void *sync = &g_sched.B->th[(size_t)(t->lin / 32 * 32)].lane;
    __tsan_release(sync);
#endif
    collective(K_SYNCWARP, site, 32, m, nullptr, nullptr, nothing);
#if BGEMU_TSAN
    __tsan_acquire(sync);
#endif
}

unsigned activemask_at(const char *site)
{
    Sched &S = g_sched;
    Thread *t = S.cur;
    if (!t) kfail(cudaErrorLaunchFailure, site, "__activemask outside a kernel");
    unsigned m = 0;
    const int base = t->lin / 32 * 32;
    for (int l = 0; l < 32 && base + l < S.B->n; l++)
        if (S.B->th[(size_t)(base + l)].state != TS_DONE) m |= 1u << l;
    return m;
}

// ---- cp.async completion ------------------------------------------------------------------------------------
// Performs every copy of thread t in a group older than the newest
// `keep_groups` committed ones (keep_groups < 0: all, uncommitted included).
void complete_copies(Thread &t, uint32_t keep_groups, const char *site)
{
    (void)site;
    size_t w = 0;
    const bool all = keep_groups == UINT32_MAX;
    const uint32_t limit = t.groups >= keep_groups ? t.groups - keep_groups : 0;
    Block &b = *g_sched.B;
    for (size_t i = 0; i < t.copies.size(); i++) {
        AsyncCopy &c = t.copies[i];
        if (!all && c.group >= limit) {
            t.copies[w++] = c;
            continue;
        }
        uint8_t *dst = c.dst_host;
        if (c.src_bytes > 0) memcpy(dst, c.src, (size_t)c.src_bytes);
        if (c.bytes > c.src_bytes) memset(dst + c.src_bytes, 0, (size_t)(c.bytes - c.src_bytes));
        for (int k = 0; k < c.bytes; k += 16) {
            Chunk &ch = chunk_at(c.dst + (uint32_t)k);
            ch.pending = -1;
            ch.done_thread = t.lin;
            ch.done_epoch = b.epoch;
            ch.unfenced = t.lin;
            t.unfenced.push_back(c.dst + (uint32_t)k);
        }
    }
    t.copies.resize(w);
}

// ---- the grid -------------------------------------------------------------------------------------------
static void deadlock(Block &b)
{
    char buf[1536];
    size_t k = 0;
    int shown = 0;
    for (const Thread &t : b.th) {
        if (t.state != TS_BAR && t.state != TS_COLL) continue;
        if (shown++ == 6) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "; ...");
            break;
        }
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%sthread %d waits at a %s (%s)", shown > 1 ? "; " : "", t.lin,
                              t.state == TS_BAR ? "__syncthreads" : kind_name(t.wait_kind),
                              t.wait_site ? t.wait_site : "?");
        if (k >= sizeof buf) break;
    }
    sched_error(cudaErrorLaunchFailure, "deadlock: no thread can go on (%s)", buf);
}

static thread_local Block *t_block;

static void run_block(Launch &L, Block &b, uint64_t &rng)
{
    b.nlive = b.n;
    b.bar_arrived = 0;
    b.epoch = 1;
    for (Coll &c : b.colls) c.active = false;
    for (int i = 0; i < b.n; i++) {
        Thread &t = b.th[(size_t)i];
        t.state = TS_NEW;
        t.stack = nullptr;
        t.copies.clear();
        t.unfenced.clear();
        t.groups = 0;
        t.v.bid = b.bid;
    }
    block_smem_begin(b);
#if BGEMU_TSAN
    __tsan_release(&L); // this block's threads start after its setup (and after the host's work)
#endif
    std::vector<int> order;
    for (;;) {
        if (settings().schedule == 2 || order.size() != (size_t)b.n) make_order(order, b.n, rng);
        bool ran = false;
        for (int idx : order) {
            Thread &t = b.th[(size_t)idx];
            if (t.state != TS_NEW && t.state != TS_READY) continue;
            resume(t);
            ran = true;
            if (L.failed) return;
            if (t.state == TS_DONE) {
                release_fiber(t);
                b.nlive--;
                // copies still in flight when a thread exits complete anyway
                if (!t.copies.empty()) complete_copies(t, UINT32_MAX, nullptr);
                check_exit(b, t);
                if (L.failed) return;
                if (b.bar_arrived > 0 && b.bar_arrived == b.nlive) release_barrier(b);
                if (L.failed) return;
            }
        }
        if (b.nlive == 0) break;
        if (!ran) {
            deadlock(b);
            return;
        }
    }
    wg_block_end(b);
    if (!L.failed) block_smem_end(b);
    if (!L.failed && !L.ki->static_known) L.ki->static_bytes = b.static_bytes, L.ki->static_known = true;
}

void run_grid(Launch &L)
{
    Sched &S = g_sched;
    if (!t_block) t_block = new Block();
    Block &b = *t_block;
    const dim3 g = L.cfg.grid, bd = L.cfg.block;
    b.L = &L;
    b.n = L.nthreads;
    b.th.resize((size_t)b.n);
    b.static_high = 0;
    b.wg.assign((size_t)((b.n + 127) / 128), WgState{});
    for (int i = 0; i < b.n; i++) {
        Thread &t = b.th[(size_t)i];
        t.lin = i, t.warp = i / 32, t.lane = i % 32;
        t.v.tid = make_uint3((unsigned)(i % (int)bd.x), (unsigned)(i / (int)bd.x % (int)bd.y),
                             (unsigned)(i / ((int)bd.x * (int)bd.y)));
        t.v.bdim = bd, t.v.gdim = g;
        t.tsan_fiber = nullptr;
    }
    arena_setup(b, L.cfg.smem);
    const uint64_t nblocks = (uint64_t)g.x * g.y * g.z;
    uint64_t rng = settings().seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    std::vector<uint64_t> perm;
    if (settings().schedule == 2) {
        perm.resize(nblocks);
        for (uint64_t i = 0; i < nblocks; i++) perm[i] = i;
        for (uint64_t i = nblocks; i-- > 1;) std::swap(perm[i], perm[rng_next(rng) % (i + 1)]);
    }
    S.L = &L;
    S.B = &b;
    S.cur = nullptr;
    S.in_kernel = true;
#if BGEMU_TSAN
    if (!S.main_tsan) S.main_tsan = __tsan_get_current_fiber();
    __tsan_release(&L);
#endif
    if (sigsetjmp(S.fault_jmp, 1) == 0) {
        for (uint64_t k = 0; k < nblocks && !L.failed; k++) {
            const uint64_t i = settings().schedule == 1 ? nblocks - 1 - k : settings().schedule == 2 ? perm[k] : k;
            b.bid = make_uint3((unsigned)(i % g.x), (unsigned)(i / g.x % g.y), (unsigned)(i / ((uint64_t)g.x * g.y)));
#if BGEMU_TSAN
            if (k) arena_setup(b, L.cfg.smem);
#endif
            run_block(L, b, rng);
#if BGEMU_TSAN
            arena_release(b);
#endif
        }
    }
    // an error may leave fibers behind: their stacks go back to the pool
    for (Thread &t : b.th) release_fiber(t);
    S.in_kernel = false;
    S.cur = nullptr;
    t_cur = nullptr;
#if BGEMU_TSAN
    __tsan_acquire(&L.err);
#endif
    (void)arena_release;
}

} // namespace bgemu
