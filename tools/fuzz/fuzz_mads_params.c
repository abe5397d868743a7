/* libFuzzer harness: the NOMAD parameter-file parser (bg_mads_params_parse).
 * The input is the file's text; relative paths (X0 files) point into a
 * directory that does not exist. */
#include <stdlib.h>
#include <string.h>
#include "../../search/batch/mads_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) {
        free(text);
        return 0;
    }
    static bg_mads_params pp; /* large: keep it off the stack */
    if (bg_mads_params_parse(&ctx, text, "fuzz.txt", "/nonexistent-fuzz-dir", &pp) == BG_OK) {
        char buf[8192];
        bg_mads_params_command(&pp, buf, sizeof buf);
        bg_mads_params_path(&pp, "history.txt", buf, sizeof buf);
    }
    bg_ctx_free(&ctx);
    free(text);
    return 0;
}
