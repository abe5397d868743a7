/* The command line as a user meets it: `budgie --version`, `budgie ops`
 * telling a kernel that exists from one that can run here, `budgie augment`
 * on a JPEG cut inside its headers (the built binary: bin/budgie, or
 * BUDGIE_BIN), and the test runner's progress lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../engine/context.h"
#include "../engine/version.h"
#include "../augment/transforms.h"
#include "cli_util.h"
#include "harness.h"


/* Runs `budgie ARGS` with stderr into stdout; returns the exit status (-1
 * when it did not exit) and the output in out (caller frees). */
static int run_budgie(const char *args, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bg_test_budgie_bin(), args);
    FILE *p = popen(cmd, "r");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!p || !buf) {
        if (p) pclose(p);
        free(buf);
        *out = NULL;
        return -1;
    }
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *b = realloc(buf, cap *= 2);
            if (!b) break;
            buf = b;
        }
    }
    buf[n] = 0;
    *out = buf;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

BG_TEST(cli_version_names_build_and_device)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    char *out;
    int rc = run_budgie("--version", &out);
    CHECK(rc == 0, "exit %d: %s", rc, out ? out : "");
    char want[64];
    snprintf(want, sizeof want, "budgie %s (commit ", BG_VERSION);
    CHECK(out && !strncmp(out, want, strlen(want)), "first line: %s", out ? out : "");
    CHECK(out && strstr(out, "\nbuild:  ") && strstr(out, "\ndevice: "), "output: %s", out ? out : "");
#ifdef BG_WITH_CUDA
    CHECK(out && strstr(out, "CUDA runtime "), "a CUDA build names its runtime: %s", out ? out : "");
#else
    CHECK(out && strstr(out, "CPU-only build"), "output: %s", out ? out : "");
#endif
    /* budgie shortens libgomp's spinning unless the user chose (tools/budgie.c) */
    CHECK(out && (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") ||
                  strstr(out, "\ncpu:    OpenMP waits: GOMP_SPINCOUNT=1000\n")),
          "the spin count budgie sets: %s", out ? out : "");
    free(out);
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=active %s --version 2>&1", bg_test_budgie_bin());
        static char o2[4096];
        rc = bg_test_run_cmd(cmd, o2, sizeof o2);
        CHECK(rc == 0 && strstr(o2, "\ncpu:    OpenMP waits: OMP_WAIT_POLICY=active\n"), "the user's choice stays: %s", o2);
    }
    rc = run_budgie("version", &out);
    CHECK(rc == 0 && out && !strncmp(out, want, strlen(want)), "`budgie version`: exit %d, %s", rc, out ? out : "");
    free(out);
}

/* cuda:available only where a device is present; otherwise "implemented"
 * (a kernel in this build) or "no" - never "yes" on a machine without one. */
BG_TEST(cli_ops_tells_implemented_from_available)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    char *out;
    int rc = run_budgie("ops", &out);
    CHECK(rc == 0 && out, "exit %d", rc);
    if (!out) return;
    CHECK(!strstr(out, "cuda:yes"), "the old, ambiguous cuda:yes: %.300s", out);
    const char *conv = strstr(out, "\nconv2d ");
    CHECK(conv != NULL, "no conv2d row: %.300s", out);
    const int dev = bg_cuda_available();
#ifdef BG_WITH_CUDA
    const char *want = dev ? "cuda:available" : "cuda:implemented";
#else
    const char *want = "cuda:no";
#endif
    const char *eol = conv ? strchr(conv + 1, '\n') : NULL;
    CHECK(conv && eol && strstr(conv, want) && strstr(conv, want) < eol, "conv2d row lacks %s: %.200s", want,
          conv ? conv : "");
    CHECK(!strncmp(out, "# cuda: ", 8), "the first line says what 'available' means here: %.120s", out);
    if (!dev) CHECK(!strstr(out, "cuda:available"), "cuda:available without a device");
    free(out);
}

/* A JPEG cut to 100 bytes ends inside its headers: the decoder's header
 * parse succeeds without a size. Reported as truncated, never as a size made
 * of uninitialised variables. */
BG_TEST(cli_augment_names_a_truncated_jpeg)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char src[512], dir[64] = "/tmp/bg_cli_XXXXXX", cut[128], png[128], args[512];
    snprintf(src, sizeof src, "%s/augment/in_0.jpg", bg_test_fixtures_dir());
    uint8_t *d = NULL;
    size_t n = 0;
    CHECK_OK(&ctx, bg_read_file(&ctx, src, &d, &n));
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    if (!d || n < 300) {
        free(d);
        bg_ctx_free(&ctx);
        return;
    }
    snprintf(cut, sizeof cut, "%s/cut.jpg", dir);
    snprintf(png, sizeof png, "%s/out.png", dir);
    FILE *f = fopen(cut, "wb");
    CHECK(f && fwrite(d, 1, 100, f) == 100, "writing %s", cut);
    if (f) fclose(f);
    snprintf(args, sizeof args, "augment --op Rotate --magnitude 5 --in %s --out %s", cut, png);
    char *out;
    int rc = run_budgie(args, &out);
    CHECK(rc == 1, "exit %d (want 1): %s", rc, out ? out : "");
    CHECK(out && strstr(out, "cut.jpg: corrupt or truncated JPEG: its 100 bytes end before the image size"),
          "output: %s", out ? out : "");
    CHECK(access(png, F_OK) != 0, "an output was written for a broken input");
    free(out);
    free(d);
    unlink(cut);
    rmdir(dir);
    bg_ctx_free(&ctx);
}

/* The runner itself, with --progress (what a terminal gets): a line as each
 * group starts, counting what is done out of what was selected. */
BG_TEST(cli_test_runner_prints_group_progress)
{
    char cmd[512], line[512];
    snprintf(cmd, sizeof cmd, "/proc/%d/exe --progress data_png_write validate_rejects_bad_files 2>&1", (int)getpid());
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen %s", cmd);
    if (!p) return;
    int groups = 0, summary = 0;
    while (fgets(line, sizeof line, p)) {
        if (!strncmp(line, "[   0/2,", 8) && strstr(line, "tests/test_data.c")) groups |= 1;
        if (!strncmp(line, "[   1/2,", 8) && strstr(line, "tests/test_validate.c")) groups |= 2;
        if (!strcmp(line, "2 passed, 0 failed, 0 skipped\n")) summary = 1;
    }
    int st = pclose(p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "runner status %d", st);
    CHECK(groups == 3, "group lines seen: %d of 3", groups);
    CHECK(summary, "no summary line");
}

/* BUDGIE_CPU / BUDGIE_CPU_ISA choose the CPU kernels of every command; a
 * value the machine cannot honour stops with a message naming it. */
BG_TEST(cli_cpu_backend_switch)
{
    if (access(bg_test_budgie_bin(), X_OK) != 0) SKIP("%s not built (make builds it)", bg_test_budgie_bin());
    static char o[4096];
    char cmd[512];
    snprintf(cmd, sizeof cmd, "BUDGIE_CPU=ref BUDGIE_CPU_ISA=generic %s --version 2>&1", bg_test_budgie_bin());
    int rc = bg_test_run_cmd(cmd, o, sizeof o);
    CHECK(rc == 0 && strstr(o, "\ncpu:    kernels: ref, instruction set generic (best here: "), "exit %d: %s", rc, o);
    snprintf(cmd, sizeof cmd, "BUDGIE_CPU=gpu %s --version 2>&1", bg_test_budgie_bin());
    rc = bg_test_run_cmd(cmd, o, sizeof o);
    CHECK(rc == 2 && strstr(o, "BUDGIE_CPU=gpu: the CPU backend is 'ref' or 'fast'"), "exit %d: %s", rc, o);
    snprintf(cmd, sizeof cmd, "BUDGIE_CPU_ISA=sse9 %s model summary small_cnn 2>&1", bg_test_budgie_bin());
    rc = bg_test_run_cmd(cmd, o, sizeof o);
    CHECK(rc == 2 && strstr(o, "BUDGIE_CPU_ISA=sse9: the instruction set is avx512, avx2 or generic"), "exit %d: %s", rc, o);
    if (!bg_cpu_isa_runs(BG_ISA_AVX512)) { /* the forced-ISA refusal, where this CPU lacks AVX-512 */
        snprintf(cmd, sizeof cmd, "BUDGIE_CPU_ISA=avx512 %s --version 2>&1", bg_test_budgie_bin());
        rc = bg_test_run_cmd(cmd, o, sizeof o);
        CHECK(rc == 2 && strstr(o, "BUDGIE_CPU_ISA=avx512: this CPU cannot run AVX-512"), "exit %d: %s", rc, o);
    }
    char *out;
    rc = run_budgie("ops", &out);
    CHECK(rc == 0 && out && strstr(out, "\nrelu ") && strstr(strstr(out, "\nrelu "), "fast:yes"), "relu has a fast kernel: %.400s",
          out ? out : "");
    free(out);
}
