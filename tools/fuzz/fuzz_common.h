/* Shared by the libFuzzer harnesses in tools/fuzz/ (see docs/fuzz.md).
 * Readers that take a path get the input through a memfd opened as
 * /proc/self/fd/N: no disk traffic, and every open() gets a fresh offset. */
#ifndef BG_FUZZ_COMMON_H
#define BG_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* An in-memory file whose path is written to `path`; returns the fd (created
 * once per process by the caller and reused). */
static inline int fuzz_memfd(const char *name, char *path, size_t cap)
{
    int fd = memfd_create(name, 0);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* Replace the memfd's contents with data[0..n). */
static inline void fuzz_memfd_set(int fd, const uint8_t *data, size_t n)
{
    if (ftruncate(fd, 0) != 0) abort();
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(fd, data + off, n - off, (off_t)off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
}
#endif
