/* What this build of budgie is: its version, the commit it was built from,
 * and what it can run on, for `budgie --version` and the first log line of a
 * run (a benchmark result is only worth what it says about its build). */
#ifndef BG_VERSION_H
#define BG_VERSION_H
#include <stddef.h>

#define BG_VERSION "0.1.0"

/* The commit the binary was built from ("unknown" outside a git checkout;
 * "-dirty" when the tree had uncommitted changes). */
const char *bg_build_commit(void);
/* One line: the CUDA kernels this build has (and for which targets), or
 * that it is CPU-only; under the emulator, says so. */
void bg_build_describe(char *buf, size_t n);
/* One line on the GPU this process sees: runtime, driver, device 0; or why
 * there is none. */
void bg_device_describe(char *buf, size_t n);

#endif
