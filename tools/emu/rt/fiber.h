/* Fibers: one stack and saved registers per CUDA thread. On x86-64 a switch
 * is a dozen instructions (the callee-saved registers, the stack pointer,
 * MXCSR and the x87 control word); elsewhere ucontext does it, slower.
 * Sanitizer builds tell AddressSanitizer and ThreadSanitizer about every
 * switch, so their shadow stacks and happens-before state follow the fiber. */
#ifndef BGEMU_FIBER_H
#define BGEMU_FIBER_H
#include <stddef.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Stack {
    void *map;          /* the whole mapping: guard page + stack */
    size_t map_size;
    void *lo;           /* usable stack: [lo, lo + size) */
    size_t size;
} Stack;

typedef struct Fiber {
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t uc;
#endif
    const void *stack_lo; /* for AddressSanitizer (null: the OS thread's own stack) */
    size_t stack_size;
    void *asan_fake;
} Fiber;

/* A stack of at least `size` bytes with an inaccessible page below it (an
 * overflow faults instead of corrupting a neighbour); null when out of memory. */
Stack *bgemu_stack_new(size_t size);
void bgemu_stack_free(Stack *s);
/* Prepares f to run entry(arg) on s at its first bgemu_fiber_switch. entry
 * must never return: it switches away for good instead. */
void bgemu_fiber_make(Fiber *f, Stack *s, void (*entry)(void *), void *arg);
/* Saves the running context into `from` and resumes `to`. */
void bgemu_fiber_switch(Fiber *from, Fiber *to);
/* Called first thing on a fiber resumed by bgemu_fiber_switch (its first run
 * included): completes the sanitizer's view of the switch. */
void bgemu_fiber_arrived(Fiber *self);

#ifdef __cplusplus
}
#endif
#endif
