#include "cli_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

char *bg_test_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

bool bg_test_have_cli(bg_t *tc)
{
    struct stat st;
    if (access(bg_test_budgie_bin(), X_OK) != 0) {
        bg_test_skip(tc, "%s not built (make builds it)", bg_test_budgie_bin());
        return false;
    }
    if (stat(".cache/cifar10", &st) != 0) {
        bg_test_skip(tc, "no .cache/cifar10 (run tools/fetch_data.sh)");
        return false;
    }
    return true;
}
