/* Open a train/test pair from a directory, whatever its format:
 *  - <dir>/train/<class>/<image>.jpg and <dir>/test/<class>/<image>.jpg (image folders,
 *    e.g. the CIFAR-10 JPEG archive unpacked by tools/fetch_data.sh);
 *  - <dir>/data_batch_{1..5}.bin + test_batch.bin (official CIFAR-10 binary);
 *  - <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (MNIST, Fashion-MNIST). */
#ifndef BG_DATA_SOURCE_H
#define BG_DATA_SOURCE_H
#include "dataset.h"

/* Path tests shared by the readers and the verbs. */
bool bg_is_dir(const char *path);
bool bg_is_file(const char *path);
/* First of "<dir>/<name>" and "<dir>/<name>.gz" that exists, into out. */
bool bg_find_idx(const char *dir, const char *name, char *out, size_t n);

/* max_per_class limits image-folder reads (0 = all; for fast tests).
 * *format gets "folders", "cifar-bin" or "idx". */
bg_status bg_open_train_test(bg_ctx *ctx, const char *dir, int max_per_class, bg_dataset *train, bg_dataset *test,
                             const char **format);

#endif
