/* The emulator's NVRTC (built as libnvrtc.so into the emulated build's lib
 * folder, which the test binary's RPATH searches before the system's): a
 * program is compiled by tools/emu/nvcc-emu into a shared object, and the
 * "cubin" handed back is that object behind a magic header, which the
 * emulated cudaLibraryLoadData (rt/cudart.cpp) loads with dlopen. So kernels
 * specialised at run time execute under the emulator like the precompiled
 * ones. nvrtcVersion reports 0.1 so that a kernel cache keyed by the NVRTC
 * version never mixes these images with real cubins. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <nvrtc.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BGEMU_NVCC
#define BGEMU_NVCC "tools/emu/nvcc-emu"
#endif
#ifndef BGEMU_REWRITE
#define BGEMU_REWRITE ""
#endif

extern char **environ;

struct _nvrtcProgram {
    char *src, *name;
    char *log;
    char *image;
    size_t image_n;
};

const char *nvrtcGetErrorString(nvrtcResult r)
{
    switch (r) {
    case NVRTC_SUCCESS: return "NVRTC_SUCCESS";
    case NVRTC_ERROR_OUT_OF_MEMORY: return "NVRTC_ERROR_OUT_OF_MEMORY";
    case NVRTC_ERROR_INVALID_INPUT: return "NVRTC_ERROR_INVALID_INPUT";
    case NVRTC_ERROR_INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
    case NVRTC_ERROR_INVALID_OPTION: return "NVRTC_ERROR_INVALID_OPTION";
    case NVRTC_ERROR_COMPILATION: return "NVRTC_ERROR_COMPILATION";
    case NVRTC_ERROR_INTERNAL_ERROR: return "NVRTC_ERROR_INTERNAL_ERROR";
    default: return "NVRTC_ERROR (emulated)";
    }
}

nvrtcResult nvrtcVersion(int *major, int *minor)
{
    *major = 0, *minor = 1;
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcCreateProgram(nvrtcProgram *prog, const char *src, const char *name, int num_headers,
                               const char *const *headers, const char *const *include_names)
{
    (void)headers, (void)include_names;
    if (!prog || !src) return NVRTC_ERROR_INVALID_INPUT;
    if (num_headers) return NVRTC_ERROR_INVALID_INPUT; /* the project never passes headers */
    struct _nvrtcProgram *p = calloc(1, sizeof *p);
    if (!p) return NVRTC_ERROR_OUT_OF_MEMORY;
    p->src = strdup(src);
    p->name = strdup(name ? name : "rtc.cu");
    if (!p->src || !p->name) {
        free(p->src), free(p->name), free(p);
        return NVRTC_ERROR_OUT_OF_MEMORY;
    }
    *prog = p;
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog)
{
    if (!prog || !*prog) return NVRTC_ERROR_INVALID_PROGRAM;
    struct _nvrtcProgram *p = *prog;
    free(p->src), free(p->name), free(p->log), free(p->image), free(p);
    *prog = NULL;
    return NVRTC_SUCCESS;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1))) {
            if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                buf = NULL;
            } else {
                buf[len] = 0;
                *n = (size_t)len;
            }
        }
    }
    fclose(f);
    return buf;
}

static void rm_tree(const char *dir, const char **names, int n)
{
    char p[4200];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int fail_at(const char *step);

nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int num_options, const char *const *options)
{
    if (!prog) return NVRTC_ERROR_INVALID_PROGRAM;
    if (fail_at("compile")) {
        free(prog->log);
        prog->log = strdup("bgemu: compile failure injected by BGEMU_NVRTC_FAIL=compile");
        return NVRTC_ERROR_COMPILATION;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bgemu-nvrtc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return NVRTC_ERROR_OUT_OF_MEMORY;
    char cu[4200], so[4200], log[4200];
    snprintf(cu, sizeof cu, "%s/%s", dir, "prog.cu");
    snprintf(so, sizeof so, "%s/%s", dir, "prog.so");
    snprintf(log, sizeof log, "%s/%s", dir, "log.txt");
    const char *names[] = {"prog.cu", "prog.so", "prog.emu.ii", "prog.emu.cpp", "log.txt", "prog.so.o"};
    FILE *f = fopen(cu, "wb");
    if (!f || fputs(prog->src, f) < 0 || fclose(f)) {
        rm_tree(dir, names, 6);
        return NVRTC_ERROR_OUT_OF_MEMORY;
    }
    /* nvcc-emu -shared [options the compiler understands] prog.cu -o prog.so */
    const char *nvcc = getenv("BGEMU_NVCC") ? getenv("BGEMU_NVCC") : BGEMU_NVCC;
    const char *argv[64];
    int argc = 0;
    argv[argc++] = "/bin/sh";
    argv[argc++] = nvcc;
    argv[argc++] = "-shared";
    for (int i = 0; i < num_options && argc < 56; i++) {
        const char *o = options[i];
        if (!strncmp(o, "-D", 2) || !strncmp(o, "-U", 2) || !strncmp(o, "-I", 2) || !strncmp(o, "-std=", 5) ||
            !strncmp(o, "--std=", 6))
            argv[argc++] = o[1] == '-' ? o + 1 : o;
        /* --gpu-architecture and the like: the emulator has one */
    }
    argv[argc++] = cu;
    argv[argc++] = "-o";
    argv[argc++] = so;
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    /* the rewriter the build made, unless the environment names one */
    if (!getenv("BGEMU_REWRITE") && BGEMU_REWRITE[0]) setenv("BGEMU_REWRITE", BGEMU_REWRITE, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, (char *const *)argv, environ), status = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (rc == 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    size_t n = 0;
    free(prog->log);
    prog->log = slurp(log, &n);
    if (!prog->log) prog->log = strdup(rc ? "nvcc-emu could not be started" : "");
    nvrtcResult res = NVRTC_ERROR_COMPILATION;
    if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        size_t sn = 0;
        char *obj = slurp(so, &sn);
        if (obj) {
            free(prog->image);
            prog->image = malloc(16 + sn);
            if (prog->image) {
                uint64_t n64 = sn;
                memcpy(prog->image, "BGEMU-SO", 8);
                memcpy(prog->image + 8, &n64, 8);
                memcpy(prog->image + 16, obj, sn);
                prog->image_n = 16 + sn;
                res = NVRTC_SUCCESS;
            } else res = NVRTC_ERROR_OUT_OF_MEMORY;
            free(obj);
        }
    }
    rm_tree(dir, names, 6);
    return res;
}

/* BGEMU_NVRTC_FAIL=compile|cubin makes that step fail (tests of the callers'
 * error paths; real NVRTC failures are hard to provoke on purpose). */
static int fail_at(const char *step)
{
    const char *e = getenv("BGEMU_NVRTC_FAIL");
    return e && !strcmp(e, step);
}

nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t *n)
{
    if (fail_at("cubin")) return NVRTC_ERROR_INTERNAL_ERROR;
    if (!prog || !prog->image) return NVRTC_ERROR_INVALID_PROGRAM;
    *n = prog->image_n;
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char *out)
{
    if (!prog || !prog->image) return NVRTC_ERROR_INVALID_PROGRAM;
    memcpy(out, prog->image, prog->image_n);
    return NVRTC_SUCCESS;
}

/* PTX does not exist here: the image stands in for it too. */
nvrtcResult nvrtcGetPTXSize(nvrtcProgram prog, size_t *n) { return nvrtcGetCUBINSize(prog, n); }
nvrtcResult nvrtcGetPTX(nvrtcProgram prog, char *out) { return nvrtcGetCUBIN(prog, out); }

nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t *n)
{
    if (!prog) return NVRTC_ERROR_INVALID_PROGRAM;
    *n = (prog->log ? strlen(prog->log) : 0) + 1;
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char *out)
{
    if (!prog) return NVRTC_ERROR_INVALID_PROGRAM;
    strcpy(out, prog->log ? prog->log : "");
    return NVRTC_SUCCESS;
}
