/* For tests that run the built `budgie` binary (bin/budgie, or BUDGIE_BIN,
 * e.g. the SAN=1 build's). */
#ifndef BG_TEST_CLI_UTIL_H
#define BG_TEST_CLI_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include "harness.h"

const char *bg_test_budgie_bin(void);
/* Run a shell command; its stdout (add 2>&1 for stderr) into out
 * (NUL-terminated, cut at cap - 1). Returns the exit status, -1 when the
 * command did not exit. */
int bg_test_run_cmd(const char *cmd, char *out, size_t cap);
/* A whole file as a NUL-terminated string (malloc'ed), NULL when unreadable. */
char *bg_test_slurp(const char *path);
/* The budgie binary is built and the CIFAR-10 cache is there; otherwise the
 * test is marked skipped, saying which, and false comes back. */
bool bg_test_have_cli(bg_t *tc);

#endif
