/* The command line's option parser (see options.h). */
#include "options.h"
#include "../train/recipe.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_value(const char *verb, const bg_opt *o, const char *v)
{
    double x;
    switch (o->type) {
    case BG_OPT_FLAG: return 0;
    case BG_OPT_STR: *(const char **)o->dst = v; return 0;
    case BG_OPT_CHOICE:
        if (!bg_choice_ok(o->choices, v)) {
            fprintf(stderr, "budgie %s: --%s takes %s, got '%s'\n", verb, o->name, o->choices, v);
            return 2;
        }
        *(const char **)o->dst = v;
        return 0;
    case BG_OPT_INT:
    case BG_OPT_NUM:
        if (!bg_parse_finite(v, &x) || (o->type == BG_OPT_INT && x != floor(x))) {
            fprintf(stderr, "budgie %s: --%s takes %s, got '%s'\n", verb, o->name,
                    o->type == BG_OPT_INT ? "an integer" : "a finite number", v);
            return 2;
        }
        if (x < o->min || x > o->max) {
            fprintf(stderr, "budgie %s: --%s = %s is outside [%g, %g]\n", verb, o->name, v, o->min, o->max);
            return 2;
        }
        if (o->type == BG_OPT_INT) *(int64_t *)o->dst = (int64_t)x;
        else *(double *)o->dst = x;
        return 0;
    case BG_OPT_INTS: {
        int n = 0;
        const char *p = v;
        while (*p) {
            char item[32];
            const char *comma = strchr(p, ',');
            const size_t l = comma ? (size_t)(comma - p) : strlen(p);
            if (l == 0 || l >= sizeof item || n == o->max_items) {
                fprintf(stderr, "budgie %s: --%s takes up to %d comma-separated integers, got '%s'\n", verb, o->name,
                        o->max_items, v);
                return 2;
            }
            memcpy(item, p, l);
            item[l] = 0;
            if (!bg_parse_finite(item, &x) || x != floor(x) || x < o->min || x > o->max) {
                fprintf(stderr, "budgie %s: --%s: '%s' is not an integer in [%g, %g]\n", verb, o->name, item, o->min,
                        o->max);
                return 2;
            }
            ((int *)o->dst)[n++] = (int)x;
            p += l + (comma ? 1 : 0);
            if (comma && !*p) {
                fprintf(stderr, "budgie %s: --%s ends with a comma: '%s'\n", verb, o->name, v);
                return 2;
            }
        }
        if (n == 0) {
            fprintf(stderr, "budgie %s: --%s needs at least one integer\n", verb, o->name);
            return 2;
        }
        if (o->count) *o->count = n;
        return 0;
    }
    }
    return 2;
}

int bg_opts_parse(const char *verb, const bg_opt *opts, int n, int argc, char **argv, const char **pos, int max_pos,
                  int *n_pos)
{
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (strncmp(a, "--", 2) || !a[2]) {
            if (a[0] == '-' && a[1]) {
                fprintf(stderr, "budgie %s: unknown option '%s' (budgie %s --help)\n", verb, a, verb);
                return 2;
            }
            if (np == max_pos) {
                fprintf(stderr, "budgie %s: unexpected argument '%s' (budgie %s --help)\n", verb, a, verb);
                return 2;
            }
            pos[np++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        const size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const bg_opt *o = NULL;
        for (int k = 0; k < n && !o; k++)
            if (strlen(opts[k].name) == len && !strncmp(opts[k].name, a + 2, len)) o = &opts[k];
        if (!o) {
            fprintf(stderr, "budgie %s: unknown option '%.*s' (budgie %s --help)\n", verb, (int)len + 2, a, verb);
            return 2;
        }
        if (o->type == BG_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "budgie %s: --%s takes no value\n", verb, o->name);
                return 2;
            }
            *(bool *)o->dst = true;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) {
                fprintf(stderr, "budgie %s: --%s needs a value\n", verb, o->name);
                return 2;
            }
            v = argv[++i];
        }
        const int rc = set_value(verb, o, v);
        if (rc) return rc;
    }
    if (n_pos) *n_pos = np;
    return 0;
}
