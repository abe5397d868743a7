/* Evaluation of a trainer's model on a loader's test subset or on any
 * evaluation set (the callbacks bg_run_config.evaluate and .validate take). */
#ifndef BG_EVALUATE_H
#define BG_EVALUATE_H
#include "../augment/eval_set.h"
#include "../augment/loader.h"
#include "trainer.h"

/* Top-1 accuracy over a set, in chunks of tr->eval_batch images; the set's
 * images must be the trainer's input size. */
bg_status bg_evaluate_set(const bg_eval_set *set, bg_trainer *tr, double *accuracy);
/* Top-1 accuracy over the loader's whole test subset (data = a bg_loader). */
bg_status bg_evaluate_loader(void *data, bg_trainer *tr, double *accuracy);
/* The same over the loader's validation split (bg_loader_split_val). */
bg_status bg_evaluate_loader_val(void *data, bg_trainer *tr, double *accuracy);

#endif
