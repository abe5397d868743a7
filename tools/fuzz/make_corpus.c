/* Writes small valid seed inputs for the fuzz harnesses (docs/fuzz.md):
 *   make_corpus OUTDIR
 * fills OUTDIR/{idx,cifar,pack,mads_params}/ (safetensors and JPEG seeds are
 * copied from the repository by the Makefile). Each harness's input framing
 * is described in its tools/fuzz/fuzz_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../../augment/pack.h"

static int put(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* [2-byte LE image-file length][idx3 images n x rows x cols][idx1 labels n] */
static int idx_seed(const char *dir, const char *name, int n, int rows, int cols)
{
    size_t ni = 16 + (size_t)n * rows * cols, nl = 8 + (size_t)n;
    uint8_t *b = calloc(1, 2 + ni + nl);
    if (!b) return 1;
    b[0] = (uint8_t)ni, b[1] = (uint8_t)(ni >> 8);
    uint8_t *im = b + 2, *lb = b + 2 + ni;
    be32(im, 0x803), be32(im + 4, (uint32_t)n), be32(im + 8, (uint32_t)rows), be32(im + 12, (uint32_t)cols);
    for (size_t i = 16; i < ni; i++) im[i] = (uint8_t)(i * 7);
    be32(lb, 0x801), be32(lb + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) lb[8 + i] = (uint8_t)(i % 10);
    int r = put(dir, name, b, 2 + ni + nl);
    free(b);
    return r;
}

/* [flags byte][n records of nlab label bytes + 3072 pixel bytes] */
static int cifar_seed(const char *dir, const char *name, uint8_t flags, int n)
{
    int nlab = (flags & 1) ? 2 : 1;
    size_t rec = (size_t)nlab + 3072, len = 1 + rec * n;
    uint8_t *b = calloc(1, len);
    if (!b) return 1;
    b[0] = flags;
    for (int i = 0; i < n; i++) {
        uint8_t *r = b + 1 + rec * i;
        for (int k = 0; k < nlab; k++) r[k] = (uint8_t)(i + k);
        for (size_t k = nlab; k < rec; k++) r[k] = (uint8_t)(k + i);
    }
    int r = put(dir, name, b, len);
    free(b);
    return r;
}

static int pack_seed(const char *dir, const char *name, int n, int h, int w, int c, int ncls)
{
    bg_ctx ctx;
    if (bg_ctx_init(&ctx, BG_CPU, 0)) return 1;
    bg_dataset ds;
    memset(&ds, 0, sizeof ds);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = 1;
    if (!bg_dataset_alloc(&ctx, &ds, n, h, w, c, "seed") && !bg_dataset_number_names(&ctx, &ds, ncls)) {
        for (size_t i = 0; i < (size_t)n * h * w * c; i++) ds.pixels[i] = (uint8_t)(i * 13);
        for (int i = 0; i < n; i++) ds.labels[i] = i % ncls;
        rc = bg_pack_write(&ctx, &ds, path) != BG_OK;
    }
    if (rc) fprintf(stderr, "make_corpus: %s\n", bg_errmsg(&ctx));
    bg_dataset_free(&ds);
    bg_ctx_free(&ctx);
    return rc;
}

static const char *const mads_seeds[] = {
    "DIMENSION 4\nBB_EXE \"$python3 linker.py\"\nBB_OUTPUT_TYPE OBJ PB EB\nX0 ( 2 3 -1 3 )\n"
    "LOWER_BOUND * -5\nUPPER_BOUND ( 5 5 5 5 )\nMAX_BB_EVAL 100\n",
    "DIMENSION 5\nBB_EXE 'python3 bb.py'\nBB_OUTPUT_TYPE OBJ CNT_EVAL\nBB_INPUT_TYPE ( R I B R I )\n"
    "X0 * 1\nX0 1 * 2\nLOWER_BOUND 0-2 -1\nSEED 7 # comment\nDISPLAY_DEGREE 3\nHISTORY_FILE h.txt\n"
    "STATS_FILE stats.txt BBE OBJ\nDIRECTION_TYPE ORTHO 2N\nMIN_MESH_SIZE 1e-9\nTMP_DIR /tmp\n",
    "DIMENSION 2\nBB_EXE bb.sh\nBB_OUTPUT_TYPE OBJ\nX0 x0.txt\nADD_SEED_TO_FILE_NAMES no\nSEED DIFF\n"
    "NB_THREADS_PARALLEL_EVAL 4\nMAX_TIME 60\n",
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus OUTDIR\n");
        return 2;
    }
    char d[1024];
    int rc = 0;
    const char *sub[] = {"idx", "cifar", "pack", "mads_params"};
    for (int i = 0; i < 4; i++) {
        snprintf(d, sizeof d, "%s/%s", argv[1], sub[i]);
        mkdir(argv[1], 0777);
        mkdir(d, 0777);
    }
    snprintf(d, sizeof d, "%s/idx", argv[1]);
    rc |= idx_seed(d, "seed_3x4x5", 3, 4, 5);
    rc |= idx_seed(d, "seed_1x1x1", 1, 1, 1);
    snprintf(d, sizeof d, "%s/cifar", argv[1]);
    rc |= cifar_seed(d, "seed_c10", 0, 2);
    rc |= cifar_seed(d, "seed_c100", 1, 1);
    rc |= cifar_seed(d, "seed_c10_twice", 2, 1);
    snprintf(d, sizeof d, "%s/pack", argv[1]);
    rc |= pack_seed(d, "seed_grey", 3, 2, 2, 1, 2);
    rc |= pack_seed(d, "seed_rgb", 2, 4, 3, 3, 10);
    snprintf(d, sizeof d, "%s/mads_params", argv[1]);
    for (size_t i = 0; i < sizeof mads_seeds / sizeof *mads_seeds; i++) {
        char name[32];
        snprintf(name, sizeof name, "seed_%zu", i);
        rc |= put(d, name, mads_seeds[i], strlen(mads_seeds[i]));
    }
    return rc;
}
