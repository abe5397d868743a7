/* `budgie validate` library: every PyTorch fixture in tests/fixtures/ops must
 * pass on the CPU, every op must have a fixture, a corrupted expectation must
 * fail, and malformed files must be errors that name the problem. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "../ops/validate.h"

static int is_fixture(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 12 && !strcmp(d->d_name + n - 12, ".safetensors");
}

static void run_all_fixtures(bg_t *tc, bg_val_backend backend)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/ops", bg_test_fixtures_dir());
    struct dirent **list = NULL;
    int n = scandir(dir, &list, is_fixture, alphasort);
    CHECK(n > 0, "no fixtures in %s (run tools/make_op_fixtures.py)", dir);
    bool covered[64] = {0};
    bg_validate_opts o;
    bg_validate_defaults(&o);
    o.backends = backend;
    int total = 0;
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
        free(list[i]);
        /* Collect the report in memory; print it only when something is wrong. */
        char *log = NULL;
        size_t log_len = 0;
        FILE *mem = open_memstream(&log, &log_len);
        bg_validate_counts c = {0};
        bg_clear_error(&ctx);
        bg_status s = bg_validate_file(&ctx, path, &o, mem, &c);
        fclose(mem);
        CHECK(s == BG_OK, "%s", bg_errmsg(&ctx));
        CHECK(s != BG_OK || (c.n_fail == 0 && c.n_tensors > 0), "%s: %d of %d tensors failed:\n%s", path,
              c.n_fail, c.n_tensors, log);
        total += c.n_tensors;
        free(log);
        bg_st_file f;
        if (bg_st_open(&ctx, path, &f) == BG_OK) {
            const char *op = bg_st_meta(&f, "op");
            for (int k = 0; op && k < bg_op_count() && k < 64; k++)
                if (bg_op_at(k) && !strcmp(bg_op_at(k)->name, op)) covered[k] = true;
            bg_st_close(&f);
        }
    }
    free(list);
    CHECK(total > 0, "no tensor compared");
    /* Every op in the table needs a reference file (a row not linked in is
     * the registry's problem, reported by its own tests). */
    if (backend == BG_VAL_CPU)
        for (int k = 0; k < bg_op_count() && k < 64; k++)
            CHECK(covered[k] || !bg_op_at(k), "op %s has no fixture in %s (add it to tools/make_op_fixtures.py)",
                  bg_op_at(k)->name, dir);
}

BG_TEST(validate_pytorch_fixtures_cpu) { run_all_fixtures(tc, BG_VAL_CPU); }

BG_GPU_TEST(validate_pytorch_fixtures_cuda) { run_all_fixtures(tc, BG_VAL_CUDA); }

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    unsigned char *b = malloc(1 << 20);
    *len = fread(b, 1, 1 << 20, fp);
    fclose(fp);
    return b;
}

BG_TEST(validate_detects_wrong_numbers)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char path[1024];
    snprintf(path, sizeof path, "%s/ops/conv2d_3x3_s1_p1_bias.safetensors", bg_test_fixtures_dir());
    size_t len = 0;
    unsigned char *b = read_all(path, &len);
    CHECK(b != NULL, "cannot read %s", path);
    if (!b) return;
    bg_validate_opts o;
    bg_validate_defaults(&o);
    o.backends = BG_VAL_CPU;
    const char *victims[] = {"out.y", "grad.weight"};
    for (int v = 0; v < 2; v++) {
        bg_st_file f;
        CHECK_OK(&ctx, bg_st_parse(&ctx, b, len, "corrupt.safetensors", &f));
        const bg_st_entry *e = bg_st_find(&f, victims[v]);
        CHECK(e != NULL, "fixture lacks %s", victims[v]);
        if (!e) {
            bg_st_close(&f);
            continue;
        }
        float x;
        unsigned char *p = f.data + e->begin + 4 * 5; /* element 5 */
        memcpy(&x, p, 4);
        x += 1e-2f;
        memcpy(p, &x, 4);
        char *log = NULL;
        size_t log_len = 0;
        FILE *mem = open_memstream(&log, &log_len);
        bg_validate_counts c = {0};
        CHECK_OK(&ctx, bg_validate_st(&ctx, &f, &o, mem, &c));
        fclose(mem);
        CHECK(c.n_fail == 1 && c.n_pass == c.n_tensors - 1, "%s: %d failed of %d:\n%s", victims[v], c.n_fail,
              c.n_tensors, log);
        CHECK(log && strstr(log, "FAIL") && strstr(log, victims[v]) && strstr(log, "1 of "),
              "report does not show the failure:\n%s", log ? log : "");
        /* The same file with NaN in it: NaN never passes, even with huge tolerances. */
        x = NAN;
        memcpy(p, &x, 4);
        bg_validate_opts loose = o;
        loose.atol = loose.rtol = 1e30;
        bg_validate_counts c2 = {0};
        CHECK_OK(&ctx, bg_validate_st(&ctx, &f, &loose, NULL, &c2));
        CHECK(c2.n_fail == 1, "NaN passed: %d failures", c2.n_fail);
        free(log);
        bg_st_close(&f);
    }
    free(b);
}

/* Write a small file with the given metadata and tensors {2, 3} (f32 zeros). */
static bg_status write_case(bg_ctx *ctx, const char *path, const char *const *tn, int nt,
                            const char *const *mk, const char *const *mv, int nm, const int64_t *shape0)
{
    bg_tensor *ts[6] = {0};
    int64_t shape[2] = {2, 3};
    for (int i = 0; i < nt; i++) {
        ts[i] = bg_tensor_new(ctx, BG_CPU, BG_F32, 2, i == 0 || !shape0 ? shape : shape0, tn[i]);
        bg_tensor_fill_const(ctx, ts[i], 0.5);
    }
    bg_status s = bg_st_save(ctx, path, ts, tn, nt, mk, mv, nm);
    for (int i = 0; i < nt; i++) bg_tensor_free(ctx, ts[i]);
    return s;
}

BG_TEST(validate_rejects_bad_files)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/bg_val_test_XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    snprintf(path, sizeof path, "%s/case.safetensors", dir);
    bg_validate_opts o;
    bg_validate_defaults(&o);
    o.backends = BG_VAL_CPU;
    bg_validate_counts c = {0};
    const char *xy[] = {"x", "out.y"};

    const char *k1[] = {"layout"}, *v1[] = {"NHWC"};
    CHECK_OK(&ctx, write_case(&ctx, path, xy, 2, k1, v1, 1, NULL));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_FORMAT, "missing __metadata__ key 'op'");
    CHECK(strstr(bg_errmsg(&ctx), path) != NULL, "names the file: %s", bg_errmsg(&ctx));

    const char *k2[] = {"op"}, *v2[] = {"frobnicate"};
    CHECK_OK(&ctx, write_case(&ctx, path, xy, 2, k2, v2, 1, NULL));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_FORMAT, "unknown op 'frobnicate'");

    const char *k3[] = {"op", "params"}, *v3[] = {"relu", "{\"stride\": 2}"};
    CHECK_OK(&ctx, write_case(&ctx, path, xy, 2, k3, v3, 2, NULL));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_FORMAT, "no parameter 'stride'");

    const char *v4[] = {"conv2d", "{\"stride\": \"two\"}"};
    const char *xwy[] = {"x", "weight", "out.y"};
    CHECK_OK(&ctx, write_case(&ctx, path, xwy, 3, k3, v4, 2, NULL));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_FORMAT, "'stride' must be a number");

    const char *v5[] = {"linear", "{}"};
    CHECK_OK(&ctx, write_case(&ctx, path, xy, 2, k3, v5, 2, NULL));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_FORMAT, "missing input tensor 'weight'");

    const char *v6[] = {"relu", "{}"};
    const char *typo[] = {"x", "out.z"};
    CHECK_OK(&ctx, write_case(&ctx, path, typo, 2, k3, v6, 2, NULL));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_FORMAT, "tensor 'out.z'");

    int64_t wrong[2] = {3, 2};
    CHECK_OK(&ctx, write_case(&ctx, path, xy, 2, k3, v6, 2, wrong));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_SHAPE, "out.y");
    CHECK(strstr(bg_errmsg(&ctx), path) != NULL, "names the file: %s", bg_errmsg(&ctx));

    const char *k7[] = {"op", "train"}, *v7[] = {"relu", "maybe"};
    CHECK_OK(&ctx, write_case(&ctx, path, xy, 2, k7, v7, 2, NULL));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_FORMAT, "'train'");

    /* A good file passes, with the relu of 0.5 being 0.5. */
    CHECK_OK(&ctx, write_case(&ctx, path, xy, 2, k3, v6, 2, NULL));
    bg_validate_counts ok = {0};
    CHECK_OK(&ctx, bg_validate_file(&ctx, path, &o, NULL, &ok));
    CHECK(ok.n_tensors == 1 && ok.n_pass == 1 && ok.n_backends == 1, "%d/%d passed on %d backends", ok.n_pass,
          ok.n_tensors, ok.n_backends);

    CHECK_ERR(&ctx, bg_validate_file(&ctx, "/nonexistent/x.safetensors", &o, NULL, &c), BG_ERR_IO,
              "/nonexistent/x.safetensors");
    unlink(path);
    rmdir(dir);
}

/* Errors the op raises say how the file's tensors were loaded: float labels
 * are refused as not i32, and the note says I32 and I64 are what a file may
 * hold; a 4-D shape in the message is budgie's NHWC permutation of the
 * file's NCHW one, and the note says so. */
BG_TEST(validate_op_errors_say_how_tensors_were_loaded)
{
    bg_ctx ctx;
    bg_test_ctx(&ctx, 1);
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/bg_val_test_XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    snprintf(path, sizeof path, "%s/case.safetensors", dir);
    bg_validate_opts o;
    bg_validate_defaults(&o);
    o.backends = BG_VAL_CPU;
    bg_validate_counts c = {0};

    int64_t s_logits[2] = {2, 3}, s_labels[1] = {2}, s_loss[1] = {1};
    bg_tensor *t[4] = {bg_tensor_new(&ctx, BG_CPU, BG_F32, 2, s_logits, "logits"),
                       bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, s_labels, "labels"),
                       bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, s_loss, "out.loss"), NULL};
    for (int i = 0; i < 3; i++) bg_tensor_fill_const(&ctx, t[i], 1.0);
    const char *n1[] = {"logits", "labels", "out.loss"}, *k1[] = {"op"}, *v1[] = {"softmax_xent"};
    CHECK_OK(&ctx, bg_st_save(&ctx, path, t, n1, 3, k1, v1, 1));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_DTYPE, "must be i32, got f32");
    CHECK(strstr(bg_errmsg(&ctx), "I32 or I64 integers as i32") != NULL, "message: %s", bg_errmsg(&ctx));
    CHECK(strstr(bg_errmsg(&ctx), "NHWC") == NULL, "no 4-D tensor, no layout note: %s", bg_errmsg(&ctx));
    for (int i = 0; i < 3; i++) bg_tensor_free(&ctx, t[i]);

    /* conv2d, NCHW: x {1,2,5,5}, weight {4,2,3,3}, a bias of 3 for 4 outputs */
    int64_t s_x[4] = {1, 2, 5, 5}, s_w[4] = {4, 2, 3, 3}, s_b[1] = {3}, s_y[4] = {1, 4, 3, 3};
    t[0] = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, s_x, "x");
    t[1] = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, s_w, "weight");
    t[2] = bg_tensor_new(&ctx, BG_CPU, BG_F32, 1, s_b, "bias");
    t[3] = bg_tensor_new(&ctx, BG_CPU, BG_F32, 4, s_y, "out.y");
    for (int i = 0; i < 4; i++) bg_tensor_fill_const(&ctx, t[i], 0.25);
    const char *n2[] = {"x", "weight", "bias", "out.y"}, *k2[] = {"op", "layout"}, *v2[] = {"conv2d", "NCHW"};
    CHECK_OK(&ctx, bg_st_save(&ctx, path, t, n2, 4, k2, v2, 2));
    CHECK_ERR(&ctx, bg_validate_file(&ctx, path, &o, NULL, &c), BG_ERR_SHAPE, "bias 'bias'");
    CHECK(strstr(bg_errmsg(&ctx), "budgie's NHWC order: the file's NCHW tensors were permuted") != NULL,
          "message: %s", bg_errmsg(&ctx));
    CHECK(strstr(bg_errmsg(&ctx), path) != NULL, "names the file: %s", bg_errmsg(&ctx));
    for (int i = 0; i < 4; i++) bg_tensor_free(&ctx, t[i]);
    unlink(path);
    rmdir(dir);
    bg_ctx_free(&ctx);
}
