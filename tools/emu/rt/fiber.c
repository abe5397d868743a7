/* Fibers (fiber.h). */
#define _GNU_SOURCE
#include "fiber.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define BGEMU_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__SANITIZE_THREAD__)
#define BGEMU_TSAN 1
#include <sanitizer/tsan_interface.h>
#endif

static size_t page_size(void)
{
    static size_t p;
    if (!p) p = (size_t)sysconf(_SC_PAGESIZE);
    return p;
}

Stack *bgemu_stack_new(size_t size)
{
    size_t pg = page_size();
    size = (size + pg - 1) / pg * pg;
    Stack *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->map_size = size + pg;
    s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s->map == MAP_FAILED) {
        free(s);
        return NULL;
    }
    mprotect(s->map, pg, PROT_NONE); /* stacks grow down: the guard is below */
    s->lo = (char *)s->map + pg;
    s->size = size;
    return s;
}

void bgemu_stack_free(Stack *s)
{
    if (!s) return;
    munmap(s->map, s->map_size);
    free(s);
}

#if defined(__x86_64__)
/* bgemu_switch(void **save, void *load): push the callee-saved registers and
 * the floating-point control words on the current stack, store the stack
 * pointer in *save, load `load`, pop the same from there and return into the
 * other fiber. A new fiber's stack is prepared to look the same, with
 * bgemu_start as the return address. */
__asm__(".text\n"
        ".globl bgemu_switch\n"
        ".type bgemu_switch,@function\n"
        "bgemu_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size bgemu_switch, .-bgemu_switch\n"
        /* first run of a fiber: r12 = argument, r13 = entry */
        ".globl bgemu_start\n"
        ".type bgemu_start,@function\n"
        "bgemu_start:\n"
        "    movq %r12, %rdi\n"
        "    callq *%r13\n"
        "    ud2\n"
        ".size bgemu_start, .-bgemu_start\n");
void bgemu_switch(void **save, void *load);
void bgemu_start(void);

void bgemu_fiber_make(Fiber *f, Stack *s, void (*entry)(void *), void *arg)
{
    memset(f, 0, sizeof *f);
    uintptr_t top = ((uintptr_t)s->lo + s->size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    /* after the final ret rsp == top, 16-aligned for bgemu_start's call */
    *--sp = (uint64_t)(uintptr_t)bgemu_start;
    *--sp = 0;                      /* rbp */
    *--sp = 0;                      /* rbx */
    *--sp = (uint64_t)(uintptr_t)arg;   /* r12 */
    *--sp = (uint64_t)(uintptr_t)entry; /* r13 */
    *--sp = 0;                      /* r14 */
    *--sp = 0;                      /* r15 */
    *--sp = 0x037F00001F80ull;      /* MXCSR (default) | x87 control word (default) << 32 */
    f->sp = sp;
    f->stack_lo = s->lo;
    f->stack_size = s->size;
}
#else
void bgemu_fiber_make(Fiber *f, Stack *s, void (*entry)(void *), void *arg)
{
    memset(f, 0, sizeof *f);
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = s->lo;
    f->uc.uc_stack.ss_size = s->size;
    f->uc.uc_link = NULL;
    /* makecontext passes int arguments: split the pointer */
    uintptr_t a = (uintptr_t)arg, e = (uintptr_t)entry;
    extern void bgemu_uc_start(unsigned, unsigned, unsigned, unsigned);
    makecontext(&f->uc, (void (*)(void))bgemu_uc_start, 4, (unsigned)(e >> 32), (unsigned)e, (unsigned)(a >> 32),
                (unsigned)a);
    f->stack_lo = s->lo;
    f->stack_size = s->size;
}
void bgemu_uc_start(unsigned eh, unsigned el, unsigned ah, unsigned al)
{
    void (*entry)(void *) = (void (*)(void *))(((uintptr_t)eh << 32) | el);
    entry((void *)(((uintptr_t)ah << 32) | al));
    abort();
}
#endif

#if BGEMU_ASAN
static _Thread_local Fiber *switching_from;
#endif

void bgemu_fiber_switch(Fiber *from, Fiber *to)
{
#if BGEMU_ASAN
    switching_from = from;
    __sanitizer_start_switch_fiber(&from->asan_fake, to->stack_lo, to->stack_size);
#endif
#if defined(__x86_64__)
    bgemu_switch(&from->sp, to->sp);
#else
    swapcontext(&from->uc, &to->uc);
#endif
    bgemu_fiber_arrived(from);
}

void bgemu_fiber_arrived(Fiber *self)
{
#if BGEMU_ASAN
    const void *old_lo = NULL;
    size_t old_size = 0;
    __sanitizer_finish_switch_fiber(self->asan_fake, &old_lo, &old_size);
    /* the OS thread's own stack: learnt from the first switch away from it */
    if (switching_from && !switching_from->stack_lo) {
        switching_from->stack_lo = old_lo;
        switching_from->stack_size = old_size;
    }
#else
    (void)self;
#endif
}
