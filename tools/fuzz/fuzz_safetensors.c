/* libFuzzer harness: safetensors parsing from memory (bg_st_parse), then
 * every accessor a loader would use on each entry. */
#include "../../engine/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) return 0;
    bg_st_file f = {0};
    if (bg_st_parse(&ctx, data, size, "fuzz.safetensors", &f) == BG_OK) {
        for (int i = 0; i < f.n; i++) {
            const bg_st_entry *e = &f.entries[i];
            const bg_st_entry *g = bg_st_find(&f, e->name);
            const uint8_t *b = bg_st_bytes(&f, g ? g : e);
            volatile uint8_t sink = 0;
            for (size_t k = e->begin; k < e->end; k++) sink ^= b[k - e->begin];
            (void)sink;
            if (e->dtype != BG_DTYPE_COUNT) {
                bg_tensor *t = bg_st_load(&ctx, &f, e->name, BG_CPU);
                bg_tensor_free(&ctx, t);
            }
        }
        (void)bg_st_meta(&f, "format");
        bg_st_close(&f);
    }
    bg_ctx_free(&ctx);
    return 0;
}
