/* Evaluation of a trainer's model on a loader's test subset (the callback
 * bg_run_config.evaluate takes). */
#ifndef BG_EVALUATE_H
#define BG_EVALUATE_H
#include "../augment/loader.h"
#include "trainer.h"

/* Top-1 accuracy over the loader's whole test subset (data = a bg_loader),
 * in chunks of tr->eval_batch images. */
bg_status bg_evaluate_loader(void *data, bg_trainer *tr, double *accuracy);
/* The same over the loader's validation split (bg_loader_split_val). */
bg_status bg_evaluate_loader_val(void *data, bg_trainer *tr, double *accuracy);

#endif
