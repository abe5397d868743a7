/* The foundation's end-to-end check: the small CNN trains with SGD on a
 * 1,000-image CIFAR-10 subset on the CPU and must beat chance (10%) by a
 * margin. Measured on this code (seed 0, 300 steps): see the note in
 * train_small_cnn_beats_chance. Needs the CIFAR JPEG archive unpacked by
 * tools/fetch_data.sh (make test runs it); skipped, saying so, without it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "harness.h"
#include "../augment/data_source.h"
#include "../augment/loader.h"
#include "../train/budget_run.h"
#include "../train/evaluate.h"
#include "../models/model.h"

/* Under AddressSanitizer (make test SAN=1) the CPU kernels run ~20x slower:
 * there the run is 40 steps and asserts the loss falls; the accuracy bar is
 * asserted by the normal build. */
#if defined(__SANITIZE_ADDRESS__)
#define TRAIN_EPOCHS 2
#else
#define TRAIN_EPOCHS 15
#endif

BG_TEST(train_small_cnn_beats_chance)
{
    struct stat st;
    if (stat(".cache/cifar10/train", &st) != 0) SKIP("no .cache/cifar10 (run tools/fetch_data.sh)");
    bg_ctx ctx;
    bg_test_ctx(&ctx, 0);
    bg_dataset train = {0}, test = {0};
    const char *fmt;
    /* 100 train / 50 test images per class: the first ones by name, then a
     * seeded subset of the same size is the identity permutation of those */
    CHECK_OK(&ctx, bg_open_train_test(&ctx, ".cache/cifar10", 100, &train, &test, &fmt));
    if (tc->failures) return;
    CHECK(train.n == 1000 && test.n == 1000 && train.n_classes == 10, "subset sizes %lld/%lld", (long long)train.n,
          (long long)test.n);
    bg_batch_opts aug = {.crop_pad = 4, .flip = true}, plain = {0};
    for (int c = 0; c < 4; c++) aug.mean[c] = plain.mean[c] = 0.5f, aug.std[c] = plain.std[c] = 0.25f;
    bg_loader ld;
    CHECK_OK(&ctx, bg_loader_init(&ld, &ctx, &train, &test, 0, 0, 50, &aug, &plain, 0));
    bg_model *m = NULL;
    CHECK_OK(&ctx, bg_model_new(&ctx, BG_CPU, "small_cnn", &m));
    bg_optim_config oc = bg_optim_defaults(BG_OPT_SGD);
    oc.lr = 0.05, oc.momentum = 0.9, oc.weight_decay = 5e-4;
    bg_trainer tr;
    CHECK_OK(&ctx, bg_trainer_init(&tr, &ctx, BG_CPU, bg_model_forward, m, 50, 250, 32, 32, 3, &oc, 0.0f));
    if (tc->failures) goto out;
    bg_sched sc = bg_sched_make(BG_SCHED_COSINE, 0.05);
    sc.t_max = 20 * TRAIN_EPOCHS;
    bg_run_config cfg = {.next_batch = bg_loader_next_batch, .evaluate = bg_evaluate_loader, .data = &ld,
                         .steps_per_epoch = bg_loader_steps_per_epoch(&ld), .budget_s = 600, .max_epochs = TRAIN_EPOCHS,
                         .sched = sc, .log = getenv("BG_TEST_VERBOSE") ? stdout : NULL};
    bg_run_result res;
    CHECK_OK(&ctx, bg_run_budgeted(&ctx, &tr, &cfg, &res));
    CHECK(res.steps == 20 * TRAIN_EPOCHS && res.epochs == TRAIN_EPOCHS, "ran %lld steps in %lld epochs",
          (long long)res.steps, (long long)res.epochs);
#if TRAIN_EPOCHS == 15
    /* Chance is 10%; measured 38.3% with this seed (300 steps, 33.7 s on the
     * 2-core CI machine). The bar of 30% leaves room for rounding
     * differences between platforms, not for a broken engine. */
    CHECK(res.last_accuracy >= 0.30, "test accuracy %.3f after %lld steps (chance 0.10, required 0.30)",
          res.last_accuracy, (long long)res.steps);
    CHECK(res.last_loss < 2.0, "final training loss %.3f (ln 10 = 2.303 at chance)", res.last_loss);
#else
    CHECK(res.last_loss < 2.25, "mean training loss of epoch 2 is %.3f (ln 10 = 2.303 at chance)", res.last_loss);
#endif
    printf("    small CNN: %lld steps, %.1f s, final train loss %.3f, test accuracy %.3f\n", (long long)res.steps,
           res.elapsed_s, res.last_loss, res.last_accuracy);
out:
    bg_trainer_free(&tr);
    bg_model_free(&ctx, m);
    bg_loader_free(&ld);
    bg_dataset_free(&train);
    bg_dataset_free(&test);
}

/* The budget's clock starts at exec: the process's age is positive and
 * grows with the monotonic clock (to the 10 ms tick of /proc). */
BG_TEST(process_age_runs_from_exec)
{
    const double a0 = bg_process_age_s(), m0 = bg_monotonic_s();
    struct timespec nap = {0, 200 * 1000 * 1000};
    nanosleep(&nap, NULL);
    const double a1 = bg_process_age_s(), m1 = bg_monotonic_s();
    CHECK(a0 > 0 && a0 < 1e6, "age %g s", a0);
    CHECK(fabs((a1 - a0) - (m1 - m0)) <= 0.03, "age moved %.3f s while the clock moved %.3f s", a1 - a0, m1 - m0);
}
