/* safetensors: round trips, a file PyTorch's side wrote, and one crafted
 * buffer per way a file can be malformed (each must name the problem). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "../engine/safetensors.h"

/* 8-byte little-endian length + header text + `data_len` bytes of data
 * (byte i = i). `hlen` overrides the length field when non-zero. */
static unsigned char *craft(const char *header, size_t data_len, uint64_t hlen, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = malloc(*len);
    uint64_t v = hlen ? hlen : h;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)i;
    return b;
}

/* Parse a crafted header; it must fail with `code` and a message holding
 * both the label and `needle`. */
static void expect_bad(bg_t *tc, const char *header, size_t data_len, uint64_t hlen, bg_status code,
                       const char *needle)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    size_t len;
    unsigned char *b = craft(header, data_len, hlen, &len);
    bg_st_file f;
    CHECK_ERR(&ctx, bg_st_parse(&ctx, b, len, "crafted.safetensors", &f), code, needle);
    CHECK(strstr(bg_errmsg(&ctx), "crafted.safetensors") != NULL, "message does not name the file: %s",
          bg_errmsg(&ctx));
    bg_st_close(&f);
    free(b);
}

static char *tmp_dir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/bg_st_test_XXXXXX");
    return mkdtemp(buf);
}

BG_TEST(safetensors_round_trip_all_dtypes)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 7);
    char dir[64], path[128];
    CHECK(tmp_dir(dir, sizeof dir) != NULL, "mkdtemp failed");
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);

    const bg_dtype dts[] = {BG_F32, BG_F16, BG_F64, BG_U8, BG_I32};
    const char *st[] = {"F32", "F16", "F64", "U8", "I32"};
    const int64_t shapes[][4] = {{2, 3, 4, 5}, {7}, {3, 2}, {5, 1, 3}, {1, 2, 2, 1}};
    const int nds[] = {4, 1, 2, 3, 4};
    bg_tensor *ts[5];
    for (int i = 0; i < 5; i++) {
        ts[i] = bg_tensor_new(&ctx, BG_CPU, dts[i], nds[i], shapes[i], st[i]);
        CHECK(ts[i] != NULL, "tensor %d: %s", i, bg_errmsg(&ctx));
        if (!ts[i]) return;
        for (int64_t k = 0; k < bg_numel(ts[i]); k++) bg_set(ts[i], k, (double)((k * 37 + i) % 101) - 50.0 * (dts[i] != BG_U8));
    }
    const char *names[] = {"conv.weight", "half", "double.v", "bytes", "ints"};
    const char *mk[] = {"op", "note"}, *mv[] = {"conv2d", "{\"json\": [1, 2]} \xc3\xa9"};
    CHECK_OK(&ctx, bg_st_save(&ctx, path, ts, names, 5, mk, mv, 2));

    /* The header length is a multiple of 8 and the JSON starts right after it. */
    FILE *fp = fopen(path, "rb");
    unsigned char head[9];
    CHECK(fp && fread(head, 1, 9, fp) == 9, "cannot read back %s", path);
    if (fp) fclose(fp);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | head[i];
    CHECK(hl % 8 == 0 && head[8] == '{', "header length %llu, first byte '%c'", (unsigned long long)hl, head[8]);

    bg_st_file f;
    CHECK_OK(&ctx, bg_st_open(&ctx, path, &f));
    CHECK(f.n == 5, "%d entries", f.n);
    CHECK(f.n_meta == 2 && bg_st_meta(&f, "op") && !strcmp(bg_st_meta(&f, "op"), "conv2d"), "metadata op");
    CHECK(bg_st_meta(&f, "note") && !strcmp(bg_st_meta(&f, "note"), mv[1]), "metadata note");
    CHECK(bg_st_meta(&f, "absent") == NULL, "absent key found");
    for (int i = 0; i < 5 && f.n == 5; i++) {
        CHECK(!strcmp(f.entries[i].name, names[i]), "entry %d is '%s', want '%s' (offset order)", i,
              f.entries[i].name, names[i]);
        const bg_st_entry *e = bg_st_find(&f, names[i]);
        CHECK(e && !strcmp(e->st_dtype, st[i]) && e->dtype == dts[i] && e->ndim == nds[i], "entry %s", names[i]);
        bg_tensor *l = bg_st_load(&ctx, &f, names[i], BG_CPU);
        CHECK(l != NULL, "load %s: %s", names[i], bg_errmsg(&ctx));
        if (!l) continue;
        CHECK(l->dtype == dts[i] && bg_same_shape(l, ts[i]), "%s: dtype/shape changed", names[i]);
        CHECK(!strcmp(l->name, names[i]) && l->layout == BG_LAYOUT_ANY, "%s: name '%s' layout %d", names[i],
              l->name, (int)l->layout);
        CHECK(memcmp(l->data, ts[i]->data, bg_nbytes(ts[i])) == 0, "%s: bytes differ", names[i]);
        bg_tensor_free(&ctx, l);
    }
    CHECK_ERR(&ctx, bg_st_load(&ctx, &f, "nope", BG_CPU) ? BG_OK : ctx.status, BG_ERR_ARG, "nope");
    bg_st_close(&f);

    /* Names from t->name when `names` is NULL; repeated names are refused. */
    CHECK_OK(&ctx, bg_st_save(&ctx, path, ts, NULL, 2, NULL, NULL, 0));
    CHECK_OK(&ctx, bg_st_open(&ctx, path, &f));
    CHECK(f.n == 2 && bg_st_find(&f, "F32") && bg_st_find(&f, "F16") && f.n_meta == 0, "t->name entries");
    bg_st_close(&f);
    const char *dup[] = {"a", "a"};
    CHECK_ERR(&ctx, bg_st_save(&ctx, path, ts, dup, 2, NULL, NULL, 0), BG_ERR_ARG, "'a'");

    /* A truncated copy of a good file: the last tensor runs past the end. */
    CHECK_OK(&ctx, bg_st_save(&ctx, path, ts, names, 5, mk, mv, 2));
    fp = fopen(path, "rb");
    unsigned char *all = malloc(1 << 16);
    size_t n = fp ? fread(all, 1, 1 << 16, fp) : 0;
    if (fp) fclose(fp);
    CHECK_ERR(&ctx, bg_st_parse(&ctx, all, n - 3, "cut.safetensors", &f), BG_ERR_FORMAT, "past the end");
    CHECK(strstr(bg_errmsg(&ctx), "'ints'") != NULL, "names the tensor: %s", bg_errmsg(&ctx));
    /* The same file cut inside its header: the length field says more than there is. */
    CHECK_ERR(&ctx, bg_st_parse(&ctx, all, 20, "cut.safetensors", &f), BG_ERR_FORMAT, "exceeds");
    free(all);

    for (int i = 0; i < 5; i++) bg_tensor_free(&ctx, ts[i]);
    unlink(path);
    rmdir(dir);
}

BG_TEST(safetensors_reads_pytorch_fixture)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char path[1024];
    snprintf(path, sizeof path, "%s/ops/softmax_xent_ls0p1.safetensors", bg_test_fixtures_dir());
    bg_st_file f;
    CHECK_OK(&ctx, bg_st_open(&ctx, path, &f));
    if (ctx.status) return;
    CHECK(bg_st_meta(&f, "op") && !strcmp(bg_st_meta(&f, "op"), "softmax_xent"), "op metadata");
    const bg_st_entry *lab = bg_st_find(&f, "labels");
    CHECK(lab && !strcmp(lab->st_dtype, "I64") && lab->dtype == BG_DTYPE_COUNT, "labels are I64 in the file");
    bg_tensor *l = bg_st_load(&ctx, &f, "labels", BG_CPU);
    CHECK(l && l->dtype == BG_I32 && l->ndim == 1 && l->shape[0] == 5, "labels load as i32 {5}: %s", bg_errmsg(&ctx));
    for (int i = 0; l && i < 5; i++) CHECK(bg_get(l, i) >= 0 && bg_get(l, i) < 7, "label %d = %g", i, bg_get(l, i));
    bg_tensor *z = bg_st_load(&ctx, &f, "logits", BG_CPU);
    CHECK(z && z->dtype == BG_F32 && z->ndim == 2 && z->shape[0] == 5 && z->shape[1] == 7, "logits {5, 7} f32");
    bg_tensor_free(&ctx, l);
    bg_tensor_free(&ctx, z);
    bg_st_close(&f);
}

BG_TEST(safetensors_converts_i64_bf16_bool)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    /* data: i64 {-3, 2^31-1}, bf16 {1.0, -2.0}, bool {0, 5} */
    const char *h = "{\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]},"
                    "\"q\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[20,22]}}";
    size_t len;
    unsigned char *buf = craft(h, 22, 0, &len);
    unsigned char *d = buf + 8 + strlen(h);
    const unsigned char data[22] = {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0,
                                    0x80, 0x3f, 0x00, 0xc0, 0, 5};
    memcpy(d, data, 22);
    bg_st_file f;
    CHECK_OK(&ctx, bg_st_parse(&ctx, buf, len, "conv.safetensors", &f));
    bg_tensor *i = bg_st_load(&ctx, &f, "i", BG_CPU), *b = bg_st_load(&ctx, &f, "b", BG_CPU),
              *q = bg_st_load(&ctx, &f, "q", BG_CPU);
    CHECK(i && i->dtype == BG_I32 && bg_get(i, 0) == -3 && bg_get(i, 1) == 2147483647.0, "I64 -> I32");
    CHECK(b && b->dtype == BG_F32 && bg_get(b, 0) == 1.0 && bg_get(b, 1) == -2.0, "BF16 -> F32");
    CHECK(q && q->dtype == BG_U8 && bg_get(q, 0) == 0 && bg_get(q, 1) == 1, "BOOL -> U8");
    bg_tensor_free(&ctx, i);
    bg_tensor_free(&ctx, b);
    bg_tensor_free(&ctx, q);
    bg_st_close(&f);

    d[12] = 0x01; /* element 1 becomes 2^32 + 2^31 - 1: outside i32 */
    CHECK_OK(&ctx, bg_st_parse(&ctx, buf, len, "conv.safetensors", &f));
    CHECK_ERR(&ctx, bg_st_load(&ctx, &f, "i", BG_CPU) ? BG_OK : ctx.status, BG_ERR_FORMAT, "does not fit in i32");
    CHECK(strstr(bg_errmsg(&ctx), "'i'") != NULL, "names the tensor: %s", bg_errmsg(&ctx));
    bg_st_close(&f);
    free(buf);

    /* More dims than the engine holds: parsed, but not loadable. */
    const char *h5 = "{\"v\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,2]}}";
    buf = craft(h5, 2, 0, &len);
    CHECK_OK(&ctx, bg_st_parse(&ctx, buf, len, "five.safetensors", &f));
    CHECK_ERR(&ctx, bg_st_load(&ctx, &f, "v", BG_CPU) ? BG_OK : ctx.status, BG_ERR_SHAPE, "5 dims");
    bg_st_close(&f);
    free(buf);
}

BG_TEST(safetensors_rejects_malformed)
{
    const char *ok1 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    char h[512];
    /* shorter than the length field */
    {
        bg_ctx ctx;
        bg_test_ctx(&ctx, 1);
        bg_st_file f;
        CHECK_ERR(&ctx, bg_st_parse(&ctx, "\x02\0\0", 3, "crafted.safetensors", &f), BG_ERR_FORMAT,
                  "shorter than the 8-byte header length");
    }
    snprintf(h, sizeof h, "{%s}", ok1);
    expect_bad(tc, h, 8, (uint64_t)1 << 40, BG_ERR_FORMAT, "header length 1099511627776 exceeds");
    expect_bad(tc, h, 8, strlen(h) + 9, BG_ERR_FORMAT, "exceeds");
    expect_bad(tc, "{\"a\": {\"dtype\": ", 8, 0, BG_ERR_FORMAT, "invalid JSON");
    expect_bad(tc, "[1, 2]", 0, 0, BG_ERR_FORMAT, "invalid JSON");
    expect_bad(tc, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, BG_ERR_FORMAT,
               "unknown dtype \"Q4\"");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, BG_ERR_FORMAT,
               "needs 12 bytes but data_offsets span 8");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0, BG_ERR_FORMAT,
               "past the end");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, BG_ERR_FORMAT,
               "overlaps");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, 0, BG_ERR_FORMAT,
               "gap of 4 bytes");
    snprintf(h, sizeof h, "{%s}", ok1);
    expect_bad(tc, h, 12, 0, BG_ERR_FORMAT, "4 unused bytes after the last tensor");
    snprintf(h, sizeof h, "{\"__metadata__\":{\"k\":1},%s}", ok1);
    expect_bad(tc, h, 8, 0, BG_ERR_FORMAT, "value of 'k' is not a string");
    expect_bad(tc, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, 0,
               BG_ERR_FORMAT, "9 dims");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, BG_ERR_FORMAT,
               "negative dim");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, BG_ERR_FORMAT,
               "end before begin");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0, BG_ERR_FORMAT, "data_offsets");
    expect_bad(tc, "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, 0,
               BG_ERR_FORMAT, "needs more than");
    snprintf(h, sizeof h, "{%s,%s}", ok1, ok1);
    expect_bad(tc, h, 8, 0, BG_ERR_FORMAT, "duplicate");
}

BG_TEST(safetensors_open_checks_size_first)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64], path[128];
    CHECK(tmp_dir(dir, sizeof dir) != NULL, "mkdtemp failed");
    snprintf(path, sizeof path, "%s/huge.safetensors", dir);
    size_t len;
    unsigned char *b = craft("{}", 0, (uint64_t)1 << 40, &len);
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(b, 1, len, fp) == len, "write %s", path);
    if (fp) fclose(fp);
    free(b);
    bg_st_file f;
    CHECK_ERR(&ctx, bg_st_open(&ctx, path, &f), BG_ERR_FORMAT, "exceeds");
    CHECK(strstr(bg_errmsg(&ctx), path) != NULL, "names the file: %s", bg_errmsg(&ctx));
    fp = fopen(path, "wb");
    if (fp) fwrite("abc", 1, 3, fp), fclose(fp);
    CHECK_ERR(&ctx, bg_st_open(&ctx, path, &f), BG_ERR_FORMAT, "shorter than the 8-byte");
    unlink(path);
    CHECK_ERR(&ctx, bg_st_open(&ctx, path, &f), BG_ERR_IO, "huge.safetensors");
    /* An empty header with no tensors is a valid file. */
    b = craft("{}      ", 0, 0, &len);
    CHECK_OK(&ctx, bg_st_parse(&ctx, b, len, "empty", &f));
    CHECK(f.n == 0 && f.n_meta == 0 && f.data_len == 0, "empty file");
    bg_st_close(&f);
    free(b);
    rmdir(dir);
}
