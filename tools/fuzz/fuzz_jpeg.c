/* libFuzzer harness: JPEG decoding from memory (bg_jpeg_size, bg_jpeg_decode
 * at full size and DCT-scaled). Images over 4096x4096 are skipped so the
 * fuzzer explores the decoder rather than the allocator. */
#include "../../augment/transforms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) return 0;
    bg_jpeg j = {0};
    int w = 0, h = 0;
    if (bg_jpeg_size(&ctx, &j, data, size, "fuzz.jpg", &w, &h) == BG_OK && (int64_t)w * h <= 4096 * 4096) {
        const uint8_t *px = NULL;
        int dw = 0, dh = 0;
        if (bg_jpeg_decode(&ctx, &j, data, size, "fuzz.jpg", 0, 0, &px, &dw, &dh) == BG_OK) {
            volatile uint8_t sink = px[(size_t)dw * dh * 3 - 1];
            (void)sink;
        }
        if (bg_jpeg_decode(&ctx, &j, data, size, "fuzz.jpg", 8, 8, &px, &dw, &dh) == BG_OK) {
            volatile uint8_t sink = px[(size_t)dw * dh * 3 - 1];
            (void)sink;
        }
    }
    bg_jpeg_free(&j);
    bg_ctx_free(&ctx);
    return 0;
}
