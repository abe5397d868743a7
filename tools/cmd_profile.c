/* budgie profile SPEC... --mem-cap 6G [--sizes 160,224] [--precision amp,fp32] [--budget 9h]
 * [--n-train N]: for every model, size and precision, the largest batch whose
 * real training step fits under the cap, the step and epoch times and the
 * epochs that fit the budget (train/profile.h), as a table like the RCV
 * winners' Table 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/model.h"
#include "../train/profile.h"
#include "../train/recipe.h"
#include "options.h"
#include "verbs.h"

#define MAX_ITEMS 8

static void usage(FILE *f)
{
    fprintf(f, "usage: budgie profile SPEC... --mem-cap BYTES [--sizes S1,S2] [--precision amp,fp32]\n"
               "                      [--budget B] [--n-train N] [--max-batch N] [--device auto|cpu|cuda]\n"
               "\n"
               "For each model spec, input size and precision: the largest batch whose training step\n"
               "(forward, loss, backward, SGD update on random data) fits under --mem-cap. The memory\n"
               "planner's peak (liveness over the recorded step, one arena; computed without running a\n"
               "kernel) picks the batch, and one real step at that batch confirms it through the allocator's\n"
               "exact peak (both printed; where the confirmation does not fit, real trials search instead);\n"
               "then the time of a step and of an epoch of --n-train images (default 5000), and the epochs\n"
               "that fit --budget (600, 10m, 9h, 10m@v100 as budgie train takes it). Sizes default to each\n"
               "model's own; amp runs on CUDA only.\n");
}

int bg_cmd_profile(int argc, char **argv)
{
    const char *specs[MAX_ITEMS], *mem_cap = NULL, *budget = NULL, *precision = "fp32", *dev = "auto";
    int n_specs = 0, sizes[MAX_ITEMS] = {0}, n_sizes = 0, n_prec = 0;
    bool prec_amp[2];
    int64_t n_train = 5000, max_batch = 0;
    const bg_opt opts[] = {
        {.name = "mem-cap", .type = BG_OPT_STR, .dst = &mem_cap},
        {.name = "budget", .type = BG_OPT_STR, .dst = &budget},
        {.name = "sizes", .type = BG_OPT_INTS, .dst = sizes, .min = 4, .max = 4096, .count = &n_sizes,
         .max_items = MAX_ITEMS},
        {.name = "precision", .type = BG_OPT_CHOICE, .dst = &precision, .choices = "fp32|amp|fp32,amp|amp,fp32"},
        {.name = "n-train", .type = BG_OPT_INT, .dst = &n_train, .min = 1, .max = 1e9},
        {.name = "max-batch", .type = BG_OPT_INT, .dst = &max_batch, .min = 1, .max = 1e6},
        {.name = "device", .type = BG_OPT_CHOICE, .dst = &dev, .choices = "auto|cpu|cuda"},
    };
    const int prc = bg_opts_parse("profile", opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, specs, MAX_ITEMS,
                                  &n_specs);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc) return prc;
    bg_ctx ctx;
    bg_ctx_init(&ctx, BG_CPU, 0);
    bg_recipe scratch; /* the recipe parser checks --mem-cap and --budget as budgie train would */
    bg_recipe_defaults(&scratch);
    scratch.mem_cap = 0;
    if ((mem_cap && bg_recipe_set(&ctx, &scratch, "mem_cap", mem_cap, "--mem-cap")) ||
        (budget && bg_recipe_set(&ctx, &scratch, "budget", budget, "--budget"))) {
        fprintf(stderr, "budgie profile: %s\n", bg_errmsg(&ctx));
        goto bad;
    }
    if (strstr(precision, "fp32")) prec_amp[n_prec++] = false;
    if (strstr(precision, "amp")) prec_amp[n_prec++] = true;
    if (!n_specs || !(scratch.mem_cap > 0)) {
        fprintf(stderr, "budgie profile: give at least one model spec and --mem-cap (budgie profile --help)\n");
        goto bad;
    }
    for (int k = 0; k < n_specs; k++)
        if (bg_model_spec_check(&ctx, specs[k])) {
            fprintf(stderr, "budgie profile: %s\n", bg_errmsg(&ctx));
            goto bad;
        }
    if (!n_sizes) sizes[n_sizes++] = 0;
    const bg_device device = !strcmp(dev, "cpu") ? BG_CPU : !strcmp(dev, "cuda") || bg_cuda_available() ? BG_CUDA : BG_CPU;
    if (device == BG_CUDA && !bg_cuda_available()) {
        fprintf(stderr, "budgie profile: --device cuda, but no CUDA device is present\n");
        goto bad;
    }
    printf("device %s, memory cap %.0f MiB, %lld training images per epoch, budget %s (%.0f s%s)\n",
           bg_device_name(device), scratch.mem_cap / 1048576, (long long)n_train, scratch.budget, scratch.budget_s,
           scratch.budget_gpu[0] ? ", taken as wall time here" : "");
    printf("%-28s %5s %-9s %7s %11s %11s %9s %9s %8s %7s\n", "model", "size", "precision", "batch", "peak MiB",
           "planned MiB", "step s", "epoch s", "epochs", "trials");
    int rc = 0;
    for (int a = 0; a < n_specs; a++)
        for (int b = 0; b < n_sizes; b++)
            for (int c = 0; c < n_prec; c++) {
                bg_profile_query q = {.spec = specs[a], .size = sizes[b], .amp = prec_amp[c], .device = device,
                                      .mem_cap = scratch.mem_cap, .max_batch = max_batch, .n_train = n_train,
                                      .budget_s = scratch.budget_s, .seed = 0};
                bg_profile_result res;
                char size[16];
                snprintf(size, sizeof size, "%d", sizes[b]);
                if (bg_profile(&ctx, &q, &res)) {
                    fprintf(stderr, "budgie profile: %s\n", bg_errmsg(&ctx));
                    rc = 1;
                    continue;
                }
                if (res.note[0] || res.batch == 0) {
                    printf("%-28s %5s %-9s   (%s)\n", specs[a], sizes[b] ? size : "own", prec_amp[c] ? "amp" : "fp32",
                           res.note[0] ? res.note : "no batch fits");
                    continue;
                }
                printf("%-28s %5s %-9s %7lld %11.1f %11.1f %9.3f %9.1f %8lld %7d\n", specs[a],
                       sizes[b] ? size : "own", prec_amp[c] ? "amp" : "fp32", (long long)res.batch,
                       res.peak_bytes / 1048576, res.planned_peak_bytes / 1048576, res.step_s, res.epoch_s,
                       (long long)res.epochs_in_budget, res.trials);
                fflush(stdout);
            }
    bg_ctx_free(&ctx);
    return rc;
bad:
    bg_ctx_free(&ctx);
    return 2;
}
