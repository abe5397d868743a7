// Device and pinned host memory. Every allocation is a mapping of its own:
// poisoned bytes (0xFF, a NaN in f32 and f16), the block ending at an
// inaccessible page so that a read or write past its end faults at once,
// another such page before it. The 0-255 bytes between the requested size and
// the next 256-byte boundary stay poisoned and are checked after every
// launch. Freed memory stays inaccessible for a while (use after free
// faults). A fault inside a kernel is reported with the allocation it missed
// and ends the launch with cudaErrorIllegalAddress.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <deque>
#include <map>
#include "internal.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(BGEMU_TSAN_HOOKS)
#define BGEMU_SANITIZER 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define BGEMU_ASAN 1
#include <sanitizer/asan_interface.h>
#endif

namespace bgemu {

// Built on first use and never destroyed: allocations still live at exit
// (a test's cached blocks) stay reachable for LeakSanitizer, and no static
// destructor runs before the last cudaFree.
static std::mutex g_mu;
struct Tables {
    std::map<uintptr_t, Alloc *> live;  // by base
    std::map<uintptr_t, Alloc *> freed; // quarantined, by base
    std::deque<Alloc *> quarantine;
};
static Tables &tables()
{
    static Tables *t = new Tables();
    return *t;
}
#define g_live tables().live
#define g_freed tables().freed
#define g_quarantine tables().quarantine
static size_t g_quarantine_bytes, g_live_bytes;
static uint64_t g_serial;

static size_t pg() { return (size_t)sysconf(_SC_PAGESIZE); }
static size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

size_t mem_capacity()
{
    static size_t cap;
    if (!cap) {
        const char *e = getenv("BGEMU_DEVICE_MEMORY"); // bytes, or with a G/M suffix
        cap = (size_t)8 << 30;
        if (e && *e) {
            char *end;
            double v = strtod(e, &end);
            if (*end == 'G' || *end == 'g') v *= 1073741824.0;
            else if (*end == 'M' || *end == 'm') v *= 1048576.0;
            if (v > 0) cap = (size_t)v;
        }
    }
    return cap;
}

size_t mem_used()
{
    std::lock_guard<std::mutex> lk(g_mu);
    return g_live_bytes;
}

cudaError_t mem_alloc(void **p, size_t size, int kind)
{
    *p = nullptr;
    const size_t usable = round_up(size, 256), body = round_up(usable ? usable : 1, pg());
    std::lock_guard<std::mutex> lk(g_mu);
    if (kind == 0 && g_live_bytes + usable > mem_capacity()) return cudaErrorMemoryAllocation;
    const size_t map_size = body + 2 * pg();
    void *m = mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return cudaErrorMemoryAllocation;
    uint8_t *map = (uint8_t *)m;
    mprotect(map, pg(), PROT_NONE);
    mprotect(map + pg() + body, pg(), PROT_NONE);
    memset(map + pg(), POISON, body);
#if BGEMU_ASAN
    // AddressSanitizer sees the rounding and the slack before the block as
    // out of bounds too: any access there is reported at once
    __asan_poison_memory_region(map + pg(), body - usable);
    __asan_poison_memory_region(map + pg() + body - usable + size, usable - size);
#endif
    Alloc *a = new Alloc{};
    a->map = map;
    a->map_size = map_size;
    a->base = (uintptr_t)(map + pg() + body - usable);
    a->size = size;
    a->usable = usable;
    a->kind = kind;
    a->serial = ++g_serial;
    g_live[a->base] = a;
    if (kind == 0) g_live_bytes += usable;
    *p = (void *)a->base;
    return cudaSuccess;
}

static const Alloc *containing(const std::map<uintptr_t, Alloc *> &m, uintptr_t p)
{
    auto it = m.upper_bound(p);
    if (it == m.begin()) return nullptr;
    --it;
    const Alloc *a = it->second;
    return p < a->base + (a->usable ? a->usable : 1) ? a : nullptr;
}

cudaError_t mem_free(void *p, int kind)
{
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_live.find((uintptr_t)p);
    if (it == g_live.end() || it->second->kind != kind) {
        const Alloc *f = containing(g_freed, (uintptr_t)p);
        const Alloc *l = containing(g_live, (uintptr_t)p);
        fprintf(stderr, "bgemu: %s(%p): %s\n", kind ? "cudaFreeHost" : "cudaFree", p,
                f && f->base == (uintptr_t)p ? "already freed (a double free)"
                : l ? "not the start of an allocation"
                : it != g_live.end() ? "memory of the other kind (device vs pinned host)"
                                     : "not an allocation of this runtime");
        return cudaErrorInvalidValue;
    }
    Alloc *a = it->second;
    g_live.erase(it);
    if (kind == 0) g_live_bytes -= a->usable;
    a->freed = true;
    mprotect(a->map + pg(), a->map_size - 2 * pg(), PROT_NONE);
    g_freed[a->base] = a;
    g_quarantine.push_back(a);
    g_quarantine_bytes += a->map_size;
    while (g_quarantine.size() > 2048 || g_quarantine_bytes > ((size_t)1 << 30)) {
        Alloc *old = g_quarantine.front();
        g_quarantine.pop_front();
        g_quarantine_bytes -= old->map_size;
        g_freed.erase(old->base);
#if BGEMU_ASAN
        __asan_unpoison_memory_region(old->map, old->map_size);
#endif
        munmap(old->map, old->map_size);
        delete old;
    }
    return cudaSuccess;
}

const Alloc *mem_find(const void *p, size_t n)
{
    std::lock_guard<std::mutex> lk(g_mu);
    const Alloc *a = containing(g_live, (uintptr_t)p);
    if (!a || (uintptr_t)p + n > a->base + a->size) return nullptr;
    return a;
}

static void describe_locked(uintptr_t p, char *buf, size_t n)
{
    const Alloc *a = containing(g_live, p);
    if (a) {
        if (p < a->base + a->size)
            snprintf(buf, n, "inside allocation #%llu (%zu bytes) at offset %zu", (unsigned long long)a->serial, a->size,
                     (size_t)(p - a->base));
        else
            snprintf(buf, n, "%zu bytes past the end of allocation #%llu (%zu bytes at %p)", (size_t)(p - a->base - a->size),
                     (unsigned long long)a->serial, a->size, (void *)a->base);
        return;
    }
    if ((a = containing(g_freed, p))) {
        snprintf(buf, n, "inside allocation #%llu (%zu bytes at %p), which was freed", (unsigned long long)a->serial,
                 a->size, (void *)a->base);
        return;
    }
    // nearest live allocation around p (within a page: the guards)
    auto it = g_live.upper_bound(p);
    if (it != g_live.end() && it->first - p <= 2 * pg()) {
        snprintf(buf, n, "%zu bytes before allocation #%llu (%zu bytes at %p)", (size_t)(it->first - p),
                 (unsigned long long)it->second->serial, it->second->size, (void *)it->first);
        return;
    }
    if (it != g_live.begin()) {
        --it;
        const Alloc *b = it->second;
        if (p >= b->base + b->size && p - (b->base + b->size) <= 2 * pg()) {
            snprintf(buf, n, "%zu bytes past the end of allocation #%llu (%zu bytes at %p)",
                     (size_t)(p - b->base - b->size), (unsigned long long)b->serial, b->size, (void *)b->base);
            return;
        }
    }
    snprintf(buf, n, "not in or near any device allocation");
}

void mem_describe(const void *p, char *buf, size_t n)
{
    // called from the fault handler: never wait for the lock
    if (!g_mu.try_lock()) {
        snprintf(buf, n, "(allocation table busy)");
        return;
    }
    describe_locked((uintptr_t)p, buf, n);
    g_mu.unlock();
}

void mem_check_slack(const char *kernel, const char *site)
{
#if BGEMU_ASAN
    (void)kernel, (void)site;
    return; // the rounding is poisoned for ASan, which reports any access there itself
#endif
    std::lock_guard<std::mutex> lk(g_mu);
    if (g_live.size() > 4096) return; // too many to scan after every launch; cudaFree still checks
    for (auto &kv : g_live) {
        const Alloc *a = kv.second;
        const uint8_t *p = (const uint8_t *)a->base;
        if (a->usable == a->size) continue;
        // the aligned words first (the common, clean case), bytes only to locate a hit
        size_t w0 = (a->size + 7) / 8 * 8;
        bool clean = true;
        for (size_t i = a->size; i < w0 && i < a->usable; i++) clean &= p[i] == POISON;
        for (size_t i = w0; clean && i < a->usable; i += 8) clean = *(const uint64_t *)(p + i) == ~0ull;
        if (clean) continue;
        for (size_t i = a->size; i < a->usable; i++)
            if (p[i] != POISON) {
                fprintf(stderr,
                        "bgemu: error: %s%s%s wrote %zu bytes past the end of allocation #%llu (%zu bytes at %p)\n",
                        kernel ? "kernel " : "a copy", kernel ? kernel : "", site ? site : "", i - a->size,
                        (unsigned long long)a->serial, a->size, (void *)a->base);
                note_kernel_error();
                memset((uint8_t *)p + a->size, POISON, a->usable - a->size); // report once
                break;
            }
    }
}

// ---- faults inside kernels ------------------------------------------------------------------------
#if !BGEMU_SANITIZER
static struct sigaction g_old_segv, g_old_bus, g_old_fpe;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    Sched &S = g_sched;
    if (!S.in_kernel || !S.L) {
        // not ours: the previous handler, or the default action
        struct sigaction *old = sig == SIGSEGV ? &g_old_segv : sig == SIGBUS ? &g_old_bus : &g_old_fpe;
        if (old->sa_flags & SA_SIGINFO && old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
        if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
            old->sa_handler(sig);
            return;
        }
        signal(sig, SIG_DFL);
        return; // the instruction faults again, now with the default action
    }
    char where[256], msg[2400];
    if (sig == SIGFPE) {
        snprintf(where, sizeof where, "an integer division by zero (a GPU returns an undefined value instead)");
    } else {
        char d[200];
        const uint8_t *a = (const uint8_t *)si->si_addr;
        Block *b = S.B;
        if (b && a >= b->dyn + b->dyn_size && a < b->stat)
            snprintf(d, sizeof d, "%zu bytes past the end of the %zu bytes of dynamic shared memory",
                     (size_t)(a - (b->dyn + b->dyn_size)), b->dyn_size);
        else if (b && a >= b->arena && a < b->arena + b->arena_map)
            snprintf(d, sizeof d, "shared memory at offset %zu of the block's arena", (size_t)(a - b->arena));
        else if (S.cur && S.cur->stack && a >= (uint8_t *)S.cur->stack->map && a < (uint8_t *)S.cur->stack->lo)
            snprintf(d, sizeof d, "the thread's stack overflowed (%zu bytes)", S.cur->stack->size);
        else mem_describe(a, d, sizeof d);
        snprintf(where, sizeof where, "invalid memory access at %p: %s", (void *)a, d);
    }
    const Block *B = S.B;
    snprintf(msg, sizeof msg, "bgemu: error: kernel %s (launched at %s), block (%u,%u,%u), thread (%u,%u,%u): %s\n",
             S.L->name ? S.L->name : "?", S.L->site ? S.L->site : "?", B ? B->bid.x : 0, B ? B->bid.y : 0,
             B ? B->bid.z : 0, S.cur ? S.cur->v.tid.x : 0, S.cur ? S.cur->v.tid.y : 0, S.cur ? S.cur->v.tid.z : 0,
             where);
    ssize_t w = write(2, msg, strlen(msg));
    (void)w;
    note_kernel_error();
    if (settings().abort_on_error) abort();
    if (!S.L->failed) S.L->failed = true, S.L->err = sig == SIGFPE ? cudaErrorLaunchFailure : cudaErrorIllegalAddress;
    siglongjmp(S.fault_jmp, 1);
}

#endif

void fault_handlers_install()
{
#if BGEMU_SANITIZER
    return; // the sanitizer reports faults itself, with better stacks
#else
    static thread_local bool alt_done;
    if (!alt_done) {
        alt_done = true;
        stack_t ss = {};
        ss.ss_size = 64 * 1024;
        ss.ss_sp = malloc(ss.ss_size);
        if (ss.ss_sp) sigaltstack(&ss, nullptr);
    }
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa = {};
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &g_old_segv);
        sigaction(SIGBUS, &sa, &g_old_bus);
        sigaction(SIGFPE, &sa, &g_old_fpe);
    });
#endif
}

} // namespace bgemu
