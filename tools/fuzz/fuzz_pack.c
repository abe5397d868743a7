/* libFuzzer harness: the pack reader (bg_pack_is_pack, bg_pack_read). */
#include <string.h>
#include "../../augment/pack.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) fd = fuzz_memfd("pack", path, sizeof path);
    fuzz_memfd_set(fd, data, size);
    (void)bg_pack_is_pack(path);
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) return 0;
    bg_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (bg_pack_read(&ctx, path, &ds) == BG_OK) {
        volatile uint32_t sink = 0;
        for (int64_t i = 0; i < ds.n; i++) sink += (uint32_t)ds.labels[i] + bg_dataset_image(&ds, i)[0];
        for (int k = 0; k < ds.n_classes; k++) sink += (uint32_t)strlen(ds.class_names[k]);
        (void)sink;
    }
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
    return 0;
}
