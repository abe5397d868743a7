/* libFuzzer harness: the CIFAR binary-batch reader (bg_read_cifar_bin). The
 * first byte picks CIFAR-10 (even) or CIFAR-100 (odd) records and whether
 * the same file is given twice (bit 1); the rest is the batch file. */
#include <string.h>
#include "../../augment/dataset.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) fd = fuzz_memfd("cifar", path, sizeof path);
    if (size < 1) return 0;
    int nlab = (data[0] & 1) ? 2 : 1;
    int npaths = (data[0] & 2) ? 2 : 1;
    fuzz_memfd_set(fd, data + 1, size - 1);
    const char *paths[2] = {path, path};
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) return 0;
    bg_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (bg_read_cifar_bin(&ctx, paths, npaths, nlab, &ds) == BG_OK) {
        volatile uint32_t sink = 0;
        for (int64_t i = 0; i < ds.n; i++) sink += (uint32_t)ds.labels[i] + bg_dataset_image(&ds, i)[0];
        for (int k = 0; k < ds.n_classes; k++) sink += (uint32_t)strlen(ds.class_names[k]);
        (void)sink;
    }
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
    return 0;
}
