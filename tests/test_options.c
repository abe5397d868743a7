/* The command line's option parser (tools/options.h): every type, both
 * spellings, positionals, and each kind of error named with exit status 2. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include "../tools/options.h"
#include "harness.h"

typedef struct {
    const char *s, *c;
    int64_t i;
    double x;
    bool f;
    int ints[3], n_ints;
} vals;

static int parse(vals *v, const char *const *args, int n, const char **pos, int *n_pos)
{
    memset(v, 0, sizeof *v);
    const bg_opt opts[] = {
        {.name = "str", .type = BG_OPT_STR, .dst = &v->s},
        {.name = "choice", .type = BG_OPT_CHOICE, .dst = &v->c, .choices = "a|bb|c-c"},
        {.name = "int", .type = BG_OPT_INT, .dst = &v->i, .min = -5, .max = 100},
        {.name = "num", .type = BG_OPT_NUM, .dst = &v->x, .min = 0, .max = 1},
        {.name = "flag", .type = BG_OPT_FLAG, .dst = &v->f},
        {.name = "ints", .type = BG_OPT_INTS, .dst = v->ints, .min = 4, .max = 64, .count = &v->n_ints, .max_items = 3},
    };
    char *argv[16] = {"verb"};
    for (int i = 0; i < n && i < 15; i++) argv[i + 1] = (char *)args[i];
    return bg_opts_parse("test", opts, 6, n + 1, argv, pos, 2, n_pos);
}

BG_TEST(options_parse_every_type)
{
    vals v;
    const char *pos[2];
    int np = -1;
    const char *ok[] = {"--str", "x y", "p1", "--choice=bb", "--int", "-5", "--num", "0.25", "--flag", "--ints",
                        "4,16,64", "p2"};
    CHECK(parse(&v, ok, 12, pos, &np) == 0, "a good command line");
    CHECK(!strcmp(v.s, "x y") && !strcmp(v.c, "bb") && v.i == -5 && v.x == 0.25 && v.f, "values %s %s %lld %g %d",
          v.s, v.c, (long long)v.i, v.x, v.f);
    CHECK(v.n_ints == 3 && v.ints[0] == 4 && v.ints[1] == 16 && v.ints[2] == 64, "ints %d: %d %d %d", v.n_ints,
          v.ints[0], v.ints[1], v.ints[2]);
    CHECK(np == 2 && !strcmp(pos[0], "p1") && !strcmp(pos[1], "p2"), "positionals %d", np);
    const char *help[] = {"--int", "3", "-h"};
    CHECK(parse(&v, help, 3, pos, &np) == 1, "--help");
    const char *bad[][3] = {
        {"--int", "abc"}, {"--int", "2.5"}, {"--int", "101"}, {"--num", "inf"}, {"--num", "nan"}, {"--num", "1.5"},
        {"--num", " 0.5"}, {"--choice", "b"}, {"--ints", "4,,8"}, {"--ints", "4,8,"}, {"--ints", "2"},
        {"--ints", "4,8,16,32"}, {"--int"}, {"--str", "--flag"}, {"--flag=1"}, {"--nope", "1"}, {"-x"},
        {"p1", "p2", "p3"},
    };
    /* the messages go to stderr: keep them out of the suite's output */
    fflush(stderr);
    const int saved = dup(2), null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int n = bad[k][2] ? 3 : bad[k][1] ? 2 : 1;
        CHECK(parse(&v, bad[k], n, pos, &np) == 2, "'%s %s' was accepted", bad[k][0], bad[k][1] ? bad[k][1] : "");
    }
    fflush(stderr);
    if (saved >= 0) dup2(saved, 2), close(saved);
    if (null >= 0) close(null);
}
