/* The sub-verbs of `budgie data` (tools/cmd_data.c dispatches). */
#ifndef BG_DATA_CMDS_H
#define BG_DATA_CMDS_H
#include "../augment/dataset.h"

/* One split of a data source: a pack file, a CIFAR binary batch file, an
 * image folder (<class>/<image>), or a data set directory (train/ and/or test/
 * image folders, CIFAR-10 data_batch_*.bin + test_batch.bin, CIFAR-100
 * train.bin + test.bin, MNIST-style idx files) from which `split` ("train" or
 * "test") is read. *format names what was found. */
bg_status bg_data_open(bg_ctx *ctx, const char *src, const char *split, int max_per_class, bg_dataset *ds,
                       const char **format);

int bg_data_pack(int argc, char **argv);
int bg_data_preview(int argc, char **argv);
int bg_data_bench(int argc, char **argv);

#endif
