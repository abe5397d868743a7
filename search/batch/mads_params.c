/* NOMAD 4 parameter files: `KEY values...` per line, `#` starts a comment,
 * keys are case-insensitive, values may be quoted ('...' or "...") and
 * arrays come as `( v1 ... vn )`, `* v` (all), `i v` or `i-j v` (0-based
 * indices) or n plain values. DIMENSION may appear anywhere, so the file is
 * read into entries first and interpreted second. Every error names the file,
 * the line and the key. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "mads_batch.h"

#define MAX_TOK 600

typedef struct {
    int line;
    int ntok;
    char *tok[MAX_TOK];
    bool quoted[MAX_TOK];
} entry;

typedef struct {
    bg_ctx *ctx;
    const char *name;
    bg_mads_params *pp;
    entry *e;
    int ne, cap;
    char *buf; /* token storage */
} parser;

static bg_status perr(parser *P, int line, const char *fmt, const char *a, const char *b)
{
    char msg[400];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    if (line > 0) return bg_fail(P->ctx, BG_ERR_FORMAT, "%s:%d: %s", P->name, line, msg);
    return bg_fail(P->ctx, BG_ERR_FORMAT, "%s: %s", P->name, msg);
}

static void note(bg_mads_params *pp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(bg_mads_params *pp, const char *fmt, ...)
{
    if (pp->n_notes >= BG_MADS_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pp->notes[pp->n_notes++], sizeof pp->notes[0], fmt, ap);
    va_end(ap);
}

void bg_mads_params_default(bg_mads_params *pp)
{
    memset(pp, 0, sizeof *pp);
    bg_mads_problem_init(&pp->pb, 0, 1);
    pp->pb.n_x0 = 0;
    bg_mads_options_default(&pp->opt);
    pp->display_degree = 2;
    pp->nb_threads = 1;
    pp->add_seed_to_file_names = true;
    strcpy(pp->dir, ".");
}

/* ---- tokenising ------------------------------------------------------------ */

static bg_status tokenize(parser *P, const char *text)
{
    size_t len = strlen(text);
    P->buf = malloc(2 * len + 2);
    if (!P->buf) return bg_fail(P->ctx, BG_ERR_OOM, "%s: out of memory", P->name);
    char *w = P->buf;
    int line = 1;
    const char *s = text;
    while (*s) {
        entry cur = {.line = line};
        /* one line */
        while (*s && *s != '\n') {
            if (*s == '#') {
                while (*s && *s != '\n') s++;
                break;
            }
            if (isspace((unsigned char)*s)) {
                s++;
                continue;
            }
            if (cur.ntok >= MAX_TOK) return perr(P, line, "too many values on one line", NULL, NULL);
            cur.tok[cur.ntok] = w;
            cur.quoted[cur.ntok] = false;
            if (*s == '"' || *s == '\'') {
                char q = *s++;
                while (*s && *s != q && *s != '\n') *w++ = *s++;
                if (*s != q) return perr(P, line, "unterminated quote", NULL, NULL);
                s++;
                cur.quoted[cur.ntok] = true;
            } else if (*s == '(' || *s == ')') {
                *w++ = *s++;
            } else {
                while (*s && !isspace((unsigned char)*s) && *s != '#' && *s != '(' && *s != ')' && *s != '"' &&
                       *s != '\'')
                    *w++ = *s++;
            }
            *w++ = 0;
            cur.ntok++;
        }
        if (*s == '\n') s++;
        if (cur.ntok > 0) {
            if (P->ne == P->cap) {
                int cap = P->cap ? 2 * P->cap : 32;
                entry *e = realloc(P->e, (size_t)cap * sizeof *e);
                if (!e) return bg_fail(P->ctx, BG_ERR_OOM, "%s: out of memory", P->name);
                P->e = e;
                P->cap = cap;
            }
            P->e[P->ne++] = cur;
        }
        line++;
    }
    return BG_OK;
}

/* ---- values ---------------------------------------------------------------- */

static bool parse_double(const char *s, double *v)
{
    if (!strcasecmp(s, "inf") || !strcasecmp(s, "+inf")) { *v = INFINITY; return true; }
    if (!strcasecmp(s, "-inf")) { *v = -INFINITY; return true; }
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end || isnan(d)) return false;
    *v = d;
    return true;
}

static bool parse_long(const char *s, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (end == s || *end || errno) return false;
    *v = x;
    return true;
}

static bool parse_bool(const char *s, bool *b)
{
    if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcasecmp(s, "y") || !strcmp(s, "1") ||
        !strcasecmp(s, "t")) { *b = true; return true; }
    if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcasecmp(s, "n") || !strcmp(s, "0") ||
        !strcasecmp(s, "f")) { *b = false; return true; }
    return false;
}

/* "i" or "i-j" (0-based) */
static bool parse_range(const char *s, int n, int *a, int *b)
{
    const char *dash = strchr(s, '-');
    long x, y;
    if (!dash || dash == s) {
        if (!parse_long(s, &x)) return false;
        y = x;
    } else {
        char t[64];
        size_t k = (size_t)(dash - s);
        if (k >= sizeof t) return false;
        memcpy(t, s, k);
        t[k] = 0;
        if (!parse_long(t, &x) || !parse_long(dash + 1, &y)) return false;
    }
    if (x < 0 || y < x || y >= n) return false;
    *a = (int)x;
    *b = (int)y;
    return true;
}

/* The value words of an array parameter, as strings per coordinate:
 * ( list ), * v, i v, i-j v, or n plain words. `set` marks assigned ones. */
static bg_status array_words(parser *P, const entry *e, int first, int n, const char **word, bool *set)
{
    const char *key = e->tok[0];
    int nt = e->ntok - first;
    const char **t = (const char **)e->tok + first;
    if (nt <= 0) return perr(P, e->line, "%s: no value", key, NULL);
    if (!strcmp(t[0], "(")) {
        if (strcmp(t[nt - 1], ")")) return perr(P, e->line, "%s: missing ')'", key, NULL);
        int k = nt - 2;
        if (k != n) {
            char a[64];
            snprintf(a, sizeof a, "%d values, DIMENSION is %d", k, n);
            return perr(P, e->line, "%s has %s", key, a);
        }
        for (int i = 0; i < n; i++) word[i] = t[1 + i], set[i] = true;
        return BG_OK;
    }
    int a, b;
    if (nt == 2 && !strcmp(t[0], "*")) {
        for (int i = 0; i < n; i++) word[i] = t[1], set[i] = true;
        return BG_OK;
    }
    /* "i v" / "i-j v"; with DIMENSION 2, two plain numbers are the two values */
    if (nt == 2 && (n != 2 || (strchr(t[0] + 1, '-') != NULL)) && parse_range(t[0], n, &a, &b)) {
        for (int i = a; i <= b; i++) word[i] = t[1], set[i] = true;
        return BG_OK;
    }
    if (nt == n) {
        for (int i = 0; i < n; i++) word[i] = t[i], set[i] = true;
        return BG_OK;
    }
    char m[64];
    snprintf(m, sizeof m, "%d values, DIMENSION is %d", nt, n);
    return perr(P, e->line, "%s has %s (use ( v1 ... vn ), * v or i v)", key, m);
}

static bg_status array_doubles(parser *P, const entry *e, int first, int n, double *v, bool allow_undef)
{
    const char *word[BG_MADS_MAX_DIM] = {0};
    bool set[BG_MADS_MAX_DIM] = {0};
    bg_status st = array_words(P, e, first, n, word, set);
    if (st) return st;
    for (int i = 0; i < n; i++) {
        if (!set[i]) continue;
        if (allow_undef && !strcmp(word[i], "-")) {
            v[i] = NAN; /* undefined: the caller knows what that means */
            continue;
        }
        if (!parse_double(word[i], &v[i])) {
            char a[200];
            snprintf(a, sizeof a, "'%s' for variable %d", word[i], i);
            return perr(P, e->line, "%s: not a number: %s", e->tok[0], a);
        }
    }
    return BG_OK;
}

/* ---- keys ------------------------------------------------------------------ */

static bool is(const entry *e, const char *key) { return !strcasecmp(e->tok[0], key); }

static bg_status one_value(parser *P, const entry *e)
{
    if (e->ntok != 2) return perr(P, e->line, "%s takes one value", e->tok[0], NULL);
    return BG_OK;
}

static bg_status set_types(parser *P, const entry *e, int n)
{
    const char *word[BG_MADS_MAX_DIM] = {0};
    bool set[BG_MADS_MAX_DIM] = {0};
    bg_status st = array_words(P, e, 1, n, word, set);
    if (st) return st;
    for (int i = 0; i < n; i++) {
        if (!set[i]) continue;
        const char *w = word[i];
        bg_mads_vartype t;
        if (!strcasecmp(w, "R")) t = BG_MADS_REAL;
        else if (!strcasecmp(w, "I")) t = BG_MADS_INTEGER;
        else if (!strcasecmp(w, "B")) t = BG_MADS_BINARY;
        else if (!strcasecmp(w, "C")) t = BG_MADS_CATEGORICAL;
        else return perr(P, e->line, "BB_INPUT_TYPE: unknown type '%s' (R, I, B or C)", w, NULL);
        P->pp->pb.type[i] = t;
    }
    return BG_OK;
}

static bg_status set_outputs(parser *P, const entry *e)
{
    bg_mads_problem *p = &P->pp->pb;
    int m = 0;
    for (int k = 1; k < e->ntok; k++) {
        const char *w = e->tok[k];
        if (!strcmp(w, "(") || !strcmp(w, ")")) continue;
        if (m >= BG_MADS_MAX_OUT) return perr(P, e->line, "BB_OUTPUT_TYPE: more than 32 outputs", NULL, NULL);
        bg_mads_outtype t;
        if (!strcasecmp(w, "OBJ")) t = BG_MADS_OBJ;
        else if (!strcasecmp(w, "EB")) t = BG_MADS_EB;
        else if (!strcasecmp(w, "PB") || !strcasecmp(w, "CSTR")) t = BG_MADS_PB;
        else if (!strcasecmp(w, "F")) {
            t = BG_MADS_PB;
            note(P->pp, "BB_OUTPUT_TYPE (line %d): filter constraint F is treated as PB", e->line);
        } else if (!strcasecmp(w, "CNT_EVAL")) t = BG_MADS_CNT_EVAL;
        else if (!strcmp(w, "-") || !strcasecmp(w, "NOTHING") || !strcasecmp(w, "EXTRA_O") ||
                 !strcasecmp(w, "BBO_UNDEFINED")) t = BG_MADS_EXTRA;
        else return perr(P, e->line, "BB_OUTPUT_TYPE: unknown type '%s' (OBJ, EB, PB, CSTR, CNT_EVAL or -)", w, NULL);
        p->out[m++] = t;
    }
    if (m == 0) return perr(P, e->line, "BB_OUTPUT_TYPE: no output type", NULL, NULL);
    p->m = m;
    return BG_OK;
}

static bg_status read_x0_file(parser *P, const entry *e, const char *file)
{
    bg_mads_params *pp = P->pp;
    char path[2 * BG_MADS_PATH];
    if (file[0] == '/') snprintf(path, sizeof path, "%s", file);
    else snprintf(path, sizeof path, "%s/%s", pp->dir, file);
    FILE *f = fopen(path, "r");
    if (!f) return perr(P, e->line, "X0: cannot open '%s': %s", path, strerror(errno));
    int n = pp->pb.n, k = 0;
    double v;
    bg_status st = BG_OK;
    while (fscanf(f, "%lf", &v) == 1) {
        int pt = k / n, i = k % n;
        if (pt >= BG_MADS_MAX_X0) {
            st = perr(P, e->line, "X0: more than 8 starting points in '%s'", path, NULL);
            break;
        }
        pp->pb.x0[pt][i] = v;
        k++;
    }
    if (!st && !feof(f)) st = perr(P, e->line, "X0: '%s' holds something that is not a number", path, NULL);
    fclose(f);
    if (st) return st;
    if (k == 0 || k % n) {
        char a[80];
        snprintf(a, sizeof a, "%d values, not a multiple of DIMENSION %d", k, n);
        return perr(P, e->line, "X0: '%s' has %s", path, a);
    }
    pp->pb.n_x0 = k / n;
    return BG_OK;
}

static bg_status set_x0(parser *P, const entry *e)
{
    bg_mads_params *pp = P->pp;
    int n = pp->pb.n, first = 1;
    /* a file of points */
    if (e->ntok == 2 && strcmp(e->tok[1], "*") && !parse_double(e->tok[1], &(double){0}))
        return read_x0_file(P, e, e->tok[1]);
    /* "X0 k ..." : the k-th starting point (NOMAD's "X0 1 * 1.0") */
    int pt = pp->pb.n_x0;
    long k;
    if (e->ntok >= 3 && parse_long(e->tok[1], &k) && (!strcmp(e->tok[2], "*") || !strcmp(e->tok[2], "(")) &&
        !(n == 2 && e->ntok == 3)) {
        if (k < 0 || k >= BG_MADS_MAX_X0) return perr(P, e->line, "X0: point index %s out of range 0..7", e->tok[1], NULL);
        pt = (int)k;
        first = 2;
    }
    if (pt >= BG_MADS_MAX_X0) return perr(P, e->line, "X0: more than 8 starting points", NULL, NULL);
    double v[BG_MADS_MAX_DIM];
    for (int i = 0; i < n; i++) v[i] = pt < pp->pb.n_x0 ? pp->pb.x0[pt][i] : NAN;
    bg_status st = array_doubles(P, e, first, n, v, false);
    if (st) return st;
    memcpy(pp->pb.x0[pt], v, sizeof(double) * (size_t)n);
    if (pt >= pp->pb.n_x0) pp->pb.n_x0 = pt + 1;
    return BG_OK;
}

static bg_status set_direction(parser *P, const entry *e)
{
    char s[200] = "";
    for (int k = 1; k < e->ntok; k++) {
        if (k > 1) strncat(s, " ", sizeof s - strlen(s) - 1);
        strncat(s, e->tok[k], sizeof s - strlen(s) - 1);
    }
    for (char *c = s; *c; c++) *c = (char)toupper((unsigned char)*c);
    bg_mads_options *o = &P->pp->opt;
    if (!strcmp(s, "ORTHO N+1 QUAD") || !strcmp(s, "ORTHO N+1")) o->direction = BG_MADS_ORTHO_NP1_QUAD;
    else if (!strcmp(s, "ORTHO N+1 NEG")) o->direction = BG_MADS_ORTHO_NP1_NEG;
    else if (!strcmp(s, "ORTHO 2N") || !strcmp(s, "ORTHO")) o->direction = BG_MADS_ORTHO_2N;
    else return perr(P, e->line, "DIRECTION_TYPE: '%s' is not supported (ORTHO N+1 QUAD, ORTHO N+1 NEG, ORTHO 2N)", s, NULL);
    return BG_OK;
}

static bg_status set_bool(parser *P, const entry *e, bool *b)
{
    bg_status st = one_value(P, e);
    if (st) return st;
    if (!parse_bool(e->tok[1], b)) return perr(P, e->line, "%s: '%s' is not yes or no", e->tok[0], e->tok[1]);
    return BG_OK;
}

static bg_status set_number(parser *P, const entry *e, double *v, double lo, bool inf_ok)
{
    bg_status st = one_value(P, e);
    if (st) return st;
    double d;
    if (!parse_double(e->tok[1], &d) || d < lo || (!inf_ok && !isfinite(d)))
        return perr(P, e->line, "%s: bad value '%s'", e->tok[0], e->tok[1]);
    *v = d;
    return BG_OK;
}

static bg_status set_path(parser *P, const entry *e, char *dst, size_t cap)
{
    if (e->ntok < 2) return perr(P, e->line, "%s: no file name", e->tok[0], NULL);
    if (strlen(e->tok[1]) >= cap) return perr(P, e->line, "%s: file name too long", e->tok[0], NULL);
    strcpy(dst, e->tok[1]);
    return BG_OK;
}

static bg_status apply(parser *P, const entry *e)
{
    bg_mads_params *pp = P->pp;
    bg_mads_problem *p = &pp->pb;
    bg_mads_options *o = &pp->opt;
    int n = p->n;
    bg_status st = BG_OK;
    if (is(e, "DIMENSION")) return BG_OK; /* done first */
    if (is(e, "BB_EXE")) {
        if (e->ntok < 2) return perr(P, e->line, "BB_EXE: no command", NULL, NULL);
        char cmd[4096] = "";
        for (int k = 1; k < e->ntok; k++) {
            if (k > 1) strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
            strncat(cmd, e->tok[k], sizeof cmd - strlen(cmd) - 1);
        }
        if (e->ntok > 2)
            note(pp, "BB_EXE (line %d): the words run as one command: %.120s", e->line, cmd);
        const char *c = cmd;
        pp->bb_exe_global = c[0] == '$';
        if (pp->bb_exe_global) c++;
        snprintf(pp->bb_exe, sizeof pp->bb_exe, "%s", c);
        return BG_OK;
    }
    if (is(e, "BB_OUTPUT_TYPE")) return set_outputs(P, e);
    if (is(e, "BB_INPUT_TYPE")) return set_types(P, e, n);
    if (is(e, "X0")) return set_x0(P, e);
    if (is(e, "LOWER_BOUND") || is(e, "UPPER_BOUND")) {
        bool lower = is(e, "LOWER_BOUND");
        double *v = lower ? p->lb : p->ub;
        st = array_doubles(P, e, 1, n, v, true);
        for (int i = 0; i < n; i++)
            if (isnan(v[i])) v[i] = lower ? -INFINITY : INFINITY;
        return st;
    }
    if (is(e, "GRANULARITY")) return array_doubles(P, e, 1, n, p->granularity, false);
    if (is(e, "INITIAL_FRAME_SIZE") || is(e, "INITIAL_POLL_SIZE")) {
        double v[BG_MADS_MAX_DIM];
        if (e->ntok == 2 && parse_double(e->tok[1], &v[0]) && n != 1) {
            for (int i = 0; i < n; i++) p->frame0[i] = v[0];
            return BG_OK;
        }
        return array_doubles(P, e, 1, n, p->frame0, false);
    }
    if (is(e, "MAX_BB_EVAL")) {
        double v;
        if ((st = set_number(P, e, &v, 1, true))) return st;
        o->max_bb_eval = isfinite(v) ? (long)v : 0;
        return BG_OK;
    }
    if (is(e, "MAX_TIME")) {
        double v;
        if ((st = set_number(P, e, &v, 0, true))) return st;
        o->max_time = isfinite(v) ? v : 0;
        return BG_OK;
    }
    if (is(e, "MAX_ITERATIONS")) {
        double v;
        if ((st = set_number(P, e, &v, 1, true))) return st;
        o->max_iterations = isfinite(v) ? (long)v : 0;
        return BG_OK;
    }
    if (is(e, "SEED")) {
        if ((st = one_value(P, e))) return st;
        long s;
        if (!strcasecmp(e->tok[1], "DIFF") || (parse_long(e->tok[1], &s) && s == -1)) {
            pp->seed_random = true;
            o->seed = (uint32_t)getpid() ^ (uint32_t)time(NULL);
            return BG_OK;
        }
        if (!parse_long(e->tok[1], &s) || s < 0 || s > 4294967295L)
            return perr(P, e->line, "SEED: '%s' is not an integer in 0..4294967295, -1 or DIFF", e->tok[1], NULL);
        o->seed = (uint32_t)s;
        return BG_OK;
    }
    if (is(e, "DIRECTION_TYPE")) return set_direction(P, e);
    if (is(e, "QUAD_MODEL_SEARCH")) return set_bool(P, e, &o->quad_model_search);
    if (is(e, "SPECULATIVE_SEARCH")) return set_bool(P, e, &o->speculative_search);
    if (is(e, "VNS_MADS_SEARCH")) return set_bool(P, e, &o->vns_search);
    if (is(e, "VNS_MADS_SEARCH_TRIGGER")) return set_number(P, e, &o->vns_trigger, 0, false);
    if (is(e, "ANISOTROPIC_MESH")) return set_bool(P, e, &o->anisotropic);
    if (is(e, "ANISOTROPY_FACTOR")) return set_number(P, e, &o->anisotropy_factor, 0, false);
    if (is(e, "H_MAX_0")) return set_number(P, e, &o->h_max0, 0, true);
    if (is(e, "MIN_MESH_SIZE")) return set_number(P, e, &o->min_mesh_size, 0, false);
    if (is(e, "EXTENDED_POLL_TRIGGER")) {
        if ((st = one_value(P, e))) return st;
        const char *w = e->tok[1];
        bool rel = w[0] == 'r' || w[0] == 'R';
        double v;
        if (!parse_double(w + rel, &v) || v < 0) return perr(P, e->line, "EXTENDED_POLL_TRIGGER: bad value '%s'", w, NULL);
        o->ext_poll_trigger = v;
        o->ext_poll_relative = rel;
        return BG_OK;
    }
    if (is(e, "DISABLE")) {
        for (int k = 1; k < e->ntok; k++) {
            if (!strcasecmp(e->tok[k], "MODELS")) {
                o->quad_model_search = false;
                o->model_sort = false;
                if (o->direction == BG_MADS_ORTHO_NP1_QUAD) o->direction = BG_MADS_ORTHO_NP1_NEG;
            } else if (!strcasecmp(e->tok[k], "EVAL_SORT")) {
                o->model_sort = false;
            } else {
                return perr(P, e->line, "DISABLE: '%s' (MODELS or EVAL_SORT)", e->tok[k], NULL);
            }
        }
        return BG_OK;
    }
    if (is(e, "NB_THREADS_PARALLEL_EVAL")) {
        if ((st = one_value(P, e))) return st;
        long t;
        if (!parse_long(e->tok[1], &t) || t == 0 || t < -1 || t > BG_MADS_MAX_BLOCK)
            return perr(P, e->line, "NB_THREADS_PARALLEL_EVAL: '%s' is not -1 or 1..256", e->tok[1], NULL);
        if (t == -1) {
            long c = sysconf(_SC_NPROCESSORS_ONLN);
            t = c > 0 ? (c > BG_MADS_MAX_BLOCK ? BG_MADS_MAX_BLOCK : c) : 1;
        }
        pp->nb_threads = (int)t;
        o->block_size = (int)t;
        return BG_OK;
    }
    if (is(e, "HISTORY_FILE")) return set_path(P, e, pp->history_file, sizeof pp->history_file);
    if (is(e, "TMP_DIR")) return set_path(P, e, pp->tmp_dir, sizeof pp->tmp_dir);
    if (is(e, "STATS_FILE")) {
        if ((st = set_path(P, e, pp->stats_file, sizeof pp->stats_file))) return st;
        pp->stats_format[0] = 0;
        for (int k = 2; k < e->ntok; k++) {
            if (k > 2) strncat(pp->stats_format, " ", sizeof pp->stats_format - strlen(pp->stats_format) - 1);
            strncat(pp->stats_format, e->tok[k], sizeof pp->stats_format - strlen(pp->stats_format) - 1);
        }
        if (!pp->stats_format[0]) strcpy(pp->stats_format, "BBE OBJ");
        return BG_OK;
    }
    if (is(e, "DISPLAY_DEGREE")) {
        if ((st = one_value(P, e))) return st;
        const char *w = e->tok[1];
        long d;
        if (parse_long(w, &d) && d >= 0 && d <= 4) pp->display_degree = (int)(d > 3 ? 3 : d);
        else if (!strcasecmp(w, "NO") || !strcasecmp(w, "NO_DISPLAY")) pp->display_degree = 0;
        else if (!strncasecmp(w, "MIN", 3)) pp->display_degree = 1;
        else if (!strncasecmp(w, "NORMAL", 6)) pp->display_degree = 2;
        else if (!strncasecmp(w, "FULL", 4)) pp->display_degree = 3;
        else return perr(P, e->line, "DISPLAY_DEGREE: '%s' (0..3, NO, MINIMAL, NORMAL or FULL)", w, NULL);
        return BG_OK;
    }
    if (is(e, "ADD_SEED_TO_FILE_NAMES")) return set_bool(P, e, &pp->add_seed_to_file_names);
    if (is(e, "DISPLAY_ALL_EVAL") || is(e, "NB_THREADS_OPENMP") || is(e, "DISPLAY_STATS") ||
        is(e, "DISPLAY_INFEASIBLE") || is(e, "DISPLAY_UNSUCCESSFUL")) {
        note(pp, "%.60s (line %d) is accepted and ignored", e->tok[0], e->line);
        return BG_OK;
    }
    return perr(P, e->line, "unknown parameter '%s'", e->tok[0], NULL);
}

static bg_status interpret(parser *P)
{
    bg_mads_params *pp = P->pp;
    int dim_line = 0;
    /* DIMENSION first: the arrays depend on it */
    for (int k = 0; k < P->ne; k++) {
        entry *e = &P->e[k];
        if (!is(e, "DIMENSION")) continue;
        if (dim_line) {
            char a[32];
            snprintf(a, sizeof a, "%d", dim_line);
            return perr(P, e->line, "DIMENSION given twice (first on line %s)", a, NULL);
        }
        dim_line = e->line;
        long n;
        if (e->ntok != 2 || !parse_long(e->tok[1], &n) || n < 1 || n > BG_MADS_MAX_DIM)
            return perr(P, e->line, "DIMENSION: '%s' is not an integer in 1..64", e->ntok > 1 ? e->tok[1] : "", NULL);
        pp->pb.n = (int)n;
    }
    if (!dim_line) return perr(P, 0, "DIMENSION is missing", NULL, NULL);
    /* keys given twice (X0 may repeat: several starting points) */
    for (int a = 0; a < P->ne; a++)
        for (int b = a + 1; b < P->ne; b++)
            if (!strcasecmp(P->e[a].tok[0], P->e[b].tok[0]) && !is(&P->e[a], "X0") && !is(&P->e[a], "DISABLE")) {
                char l[32];
                snprintf(l, sizeof l, "%d", P->e[a].line);
                char key[100];
                snprintf(key, sizeof key, "%s", P->e[b].tok[0]);
                return perr(P, P->e[b].line, "%s given twice (first on line %s)", key, l);
            }
    int x0_line = 0;
    for (int k = 0; k < P->ne; k++) {
        bg_status st = apply(P, &P->e[k]);
        if (st) return st;
        if (is(&P->e[k], "X0") && !x0_line) x0_line = P->e[k].line;
    }
    if (!pp->bb_exe[0]) return perr(P, 0, "BB_EXE is missing", NULL, NULL);
    if (pp->pb.n_x0 == 0) return perr(P, 0, "X0 is missing", NULL, NULL);
    for (int k = 0; k < pp->pb.n_x0; k++)
        for (int i = 0; i < pp->pb.n; i++)
            if (isnan(pp->pb.x0[k][i])) {
                char a[64];
                snprintf(a, sizeof a, "point %d, variable %d", k, i);
                return perr(P, x0_line, "X0: no value for %s", a, NULL);
            }
    bg_status st = bg_mads_problem_check(P->ctx, &pp->pb);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bg_errmsg(P->ctx));
        return bg_fail(P->ctx, BG_ERR_FORMAT, "%s: %s", P->name, msg);
    }
    return BG_OK;
}

bg_status bg_mads_params_parse(bg_ctx *ctx, const char *text, const char *name, const char *dir,
                               bg_mads_params *pp)
{
    bg_mads_params_default(pp);
    snprintf(pp->name, sizeof pp->name, "%s", name ? name : "parameters");
    snprintf(pp->dir, sizeof pp->dir, "%s", dir && dir[0] ? dir : ".");
    parser P = {.ctx = ctx, .name = pp->name, .pp = pp};
    bg_status st = tokenize(&P, text ? text : "");
    if (!st) st = interpret(&P);
    free(P.e);
    free(P.buf);
    return st;
}

bg_status bg_mads_params_read(bg_ctx *ctx, const char *path, bg_mads_params *pp)
{
    FILE *f = fopen(path, "rb");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    char chunk[8192];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + k + 1 > cap) {
            cap = 2 * (len + k + 1);
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path);
            }
            text = t;
        }
        memcpy(text + len, chunk, k);
        len += k;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(text);
        return bg_fail(ctx, BG_ERR_IO, "%s: read error", path);
    }
    if (!text) text = calloc(1, 1);
    if (!text) return bg_fail(ctx, BG_ERR_OOM, "%s: out of memory", path);
    text[len] = 0;
    if (memchr(text, 0, len)) {
        free(text);
        return bg_fail(ctx, BG_ERR_FORMAT, "%s: not a text file", path);
    }
    char dir[BG_MADS_PATH];
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t d = (size_t)(slash - path);
        if (d == 0) d = 1;
        if (d >= sizeof dir) d = sizeof dir - 1;
        memcpy(dir, path, d);
        dir[d] = 0;
    } else {
        strcpy(dir, ".");
    }
    bg_status st = bg_mads_params_parse(ctx, text, path, dir, pp);
    free(text);
    return st;
}

void bg_mads_params_path(const bg_mads_params *pp, const char *file, char *out, size_t cap)
{
    char base[2 * BG_MADS_PATH];
    if (file[0] == '/') snprintf(base, sizeof base, "%s", file);
    else snprintf(base, sizeof base, "%s/%s", pp->dir, file);
    if (!pp->add_seed_to_file_names) {
        snprintf(out, cap, "%s", base);
        return;
    }
    /* history.txt -> history.SEED.txt; no extension: history.SEED */
    const char *slash = strrchr(base, '/');
    const char *dot = strrchr(base, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : base)) {
        snprintf(out, cap, "%s.%u", base, (unsigned)pp->opt.seed);
        return;
    }
    snprintf(out, cap, "%.*s.%u%s", (int)(dot - base), base, (unsigned)pp->opt.seed, dot);
}

void bg_mads_params_command(const bg_mads_params *pp, char *out, size_t cap)
{
    const char *c = pp->bb_exe;
    if (pp->bb_exe_global || c[0] == '/') {
        snprintf(out, cap, "%s", c);
        return;
    }
    /* a relative executable that exists beside the parameter file gets its
     * directory, as NOMAD prepends the problem directory; anything else
     * (python3, a program on PATH) runs as written */
    size_t w = strcspn(c, " \t");
    char first[BG_MADS_PATH * 2];
    snprintf(first, sizeof first, "%s/%.*s", pp->dir, (int)w, c);
    struct stat st;
    if (w > 0 && stat(first, &st) == 0 && S_ISREG(st.st_mode)) {
        char abs[4096]; /* PATH_MAX, as realpath needs */
        if (!realpath(first, abs)) snprintf(abs, sizeof abs, "%s", first);
        snprintf(out, cap, "'%s'%s", abs, c + w);
        return;
    }
    snprintf(out, cap, "%s", c);
}
