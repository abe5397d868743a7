/* One table-driven option parser for the verbs of the command line: each
 * option names its type, where the value goes and what is allowed; values
 * are parsed strictly (the whole string, finite, in range, one of the
 * choices) and every error names the verb and the option, with exit
 * status 2 (usage). `--name value` and `--name=value` both work.
 * `budgie train` takes its options from the recipe key table instead
 * (train/recipe.h), which follows the same rules. */
#ifndef BG_OPTIONS_H
#define BG_OPTIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BG_OPT_FLAG,   /* bool *: no value */
    BG_OPT_STR,    /* const char **: the argument itself */
    BG_OPT_INT,    /* int64_t *, in [min, max] */
    BG_OPT_NUM,    /* double *, finite, in [min, max] */
    BG_OPT_CHOICE, /* const char **: one of `choices` ("a|b|c") */
    BG_OPT_INTS    /* int *: a comma list of up to `max_items` integers in [min, max]; *count gets how many */
} bg_opt_type;

typedef struct {
    const char *name;    /* without the dashes: "sizes" for --sizes */
    bg_opt_type type;
    void *dst;
    double min, max;
    const char *choices; /* BG_OPT_CHOICE */
    int *count;          /* BG_OPT_INTS: items parsed */
    int max_items;       /* BG_OPT_INTS */
} bg_opt;

/* Parse argv[1..argc) against opts (n of them). Arguments that do not start
 * with "--" are positional: up to max_pos go to pos[], *n_pos gets how many.
 * "--help"/"-h" returns 1 (the caller prints its usage). On an error prints
 * "budgie VERB: ..." to stderr and returns 2; 0 on success. */
int bg_opts_parse(const char *verb, const bg_opt *opts, int n, int argc, char **argv, const char **pos, int max_pos,
                  int *n_pos);

#endif
