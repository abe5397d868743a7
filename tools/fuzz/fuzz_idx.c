/* libFuzzer harness: the idx reader (bg_read_idx, gzip or plain). The input
 * is split in two: the first two bytes (little-endian) give the length of the
 * images file, the rest after it is the labels file. */
#include <string.h>
#include "../../augment/dataset.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd_img = -1, fd_lab = -1;
    static char p_img[64], p_lab[64];
    if (fd_img < 0) {
        fd_img = fuzz_memfd("images", p_img, sizeof p_img);
        fd_lab = fuzz_memfd("labels", p_lab, sizeof p_lab);
    }
    if (size < 2) return 0;
    size_t n_img = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    if (n_img > size) n_img = size;
    fuzz_memfd_set(fd_img, data, n_img);
    fuzz_memfd_set(fd_lab, data + n_img, size - n_img);
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) return 0;
    bg_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (bg_read_idx(&ctx, p_img, p_lab, &ds) == BG_OK) {
        volatile uint32_t sink = 0;
        for (int64_t i = 0; i < ds.n; i++) sink += (uint32_t)ds.labels[i] + bg_dataset_image(&ds, i)[0];
        (void)sink;
    }
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
    return 0;
}
