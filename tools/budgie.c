/* budgie: the command line. `budgie VERB [args]`, each verb with --help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../engine/context.h"
#include "../engine/version.h"
#include "verbs.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} verb;

static const verb verbs[] = {
    {"train", bg_cmd_train, "train a model under a time budget (budgie train --help)"},
    {"eval", bg_cmd_eval, "test accuracy of checkpoints: flip and multi-size TTA, ensembles, per class, confusion (budgie eval --help)"},
    {"plot", bg_cmd_plot, "draw a run's log: loss, accuracy and learning rate against time, as PNG (budgie plot --help)"},
    {"profile", bg_cmd_profile, "largest batch under a memory cap, step and epoch time, epochs in a budget (budgie profile --help)"},
    {"validate", bg_cmd_validate, "run ops described by safetensors files and compare with their reference numbers"},
    {"bench", bg_cmd_bench, "benchmarks: time, throughput, share of the hardware limit (budgie bench --help)"},
    {"search", bg_cmd_search, "blackbox optimisation (MADS, NOMAD 4 parameter files): run, report (budgie search --help)"},
    {"ops", bg_cmd_ops, "list the op table: ops, inputs, parameters, backends"},
    {"model", bg_cmd_model, "the model zoo: summary (params, MACs, memory), time, save (budgie model --help)"},
    {"augment", bg_cmd_augment, "apply one AutoAugment op to a JPEG, PIL-exact (budgie augment --help)"},
    {"data", bg_cmd_data, "data sets: pack, preview augmented samples, benchmark the CPU pipeline (budgie data --help)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: budgie VERB [options]   (budgie VERB --help for each)\n"
               "       budgie --version        the version, the commit, the build and the GPU this process sees\n\nverbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
}

/* libgomp reads its wait policy as it loads, before main(). Its default
 * spins a waiting thread some 300,000 times before it sleeps, which on a
 * machine doing other work collapses budgie's 2-thread CPU step: SENet-18
 * w=0.67, batch 64, forward + backward took 1.85 s quiet and 4.87 s beside
 * one busy process; with 1000 spins 1.90 s and 3.51 s (one thread alone:
 * about 3.6 s). bench/results/2026-12-06-omp-spin-cpu.md has the table.
 * Unless the user chose (OMP_WAIT_POLICY or GOMP_SPINCOUNT set), budgie sets
 * 1000 and runs itself again, once; if that exec fails it goes on as it is. */
static void short_omp_spin(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", "1000", 1)) return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    short_omp_spin(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        char build[256], dev[256];
        bg_build_describe(build, sizeof build);
        bg_device_describe(dev, sizeof dev);
        printf("budgie %s (commit %s)\nbuild:  %s\ndevice: %s\n", BG_VERSION, bg_build_commit(), build, dev);
        const char *spin = getenv("GOMP_SPINCOUNT"), *policy = getenv("OMP_WAIT_POLICY");
        printf("cpu:    OpenMP waits: %s%s%s%s\n", spin ? "GOMP_SPINCOUNT=" : "", spin ? spin : "",
               policy ? (spin ? ", OMP_WAIT_POLICY=" : "OMP_WAIT_POLICY=") : "", policy ? policy : "");
        bg_ctx probe; /* the CPU backend every command gets (BUDGIE_CPU, BUDGIE_CPU_ISA) */
        if (bg_ctx_init(&probe, BG_CPU, 0)) {
            fprintf(stderr, "budgie: %s\n", bg_errmsg(&probe));
            return 2;
        }
        printf("cpu:    kernels: %s, instruction set %s (best here: %s)\n", bg_cpu_backend_name(probe.cpu_backend),
               bg_cpu_isa_name(probe.cpu_isa), bg_cpu_isa_name(bg_cpu_isa_best()));
        bg_ctx_free(&probe);
        return 0;
    }
    {   /* BUDGIE_CPU / BUDGIE_CPU_ISA: checked once here, for every verb */
        bg_ctx probe;
        if (bg_ctx_init(&probe, BG_CPU, 0)) {
            fprintf(stderr, "budgie: %s\n", bg_errmsg(&probe));
            return 2;
        }
        bg_ctx_free(&probe);
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name)) return verbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "budgie: unknown verb '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
