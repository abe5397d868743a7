#include "cli_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

const char *bg_test_budgie_bin(void) { return getenv("BUDGIE_BIN") ? getenv("BUDGIE_BIN") : "bin/budgie"; }

int bg_test_run_cmd(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
