/* tools/emu/rewrite: turns a preprocessed CUDA translation unit into host
 * C++ for the emulator (tools/emu/README.md).
 *
 *   rewrite IN.ii OUT.cpp
 *
 * It works on tokens, in the files of the project only (not in system
 * headers, nor in tools/emu's own), and keeps every line where it was (line
 * markers stay valid, so compiler messages and debuggers point at the
 * original source):
 *   k<<<g, b, s, st>>>(args)       -> ::bgemu::launch(k, ::bgemu::LaunchCfg(g, b, s, st), "k", "site")(args)
 *   __shared__ T x[N], y;           -> references to per-block objects (bgemu::shared_var)
 *   extern __shared__ T x[];        -> a pointer to the dynamic shared memory
 *   asm("tmpl" : outs : ins);       -> ::bgemu::ptx("tmpl", "site", {operands})
 *   __global__                      -> dropped; a non-template kernel is registered for cudaLaunchKernel
 *   __launch_bounds__(n, m)         -> dropped; the kernel body checks the block size against n
 *   __syncthreads(), __shfl_*_sync(...) and the votes get their call site as an argument.
 * Namespace-scope __shared__ variables become accessor functions, and their
 * later uses in the translation unit are renamed.
 * Exits 1 with "file:line: message" for a construct it cannot rewrite. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- input --------------------------------------------------------------------------- */
typedef enum { T_IDENT, T_NUM, T_STR, T_CHAR, T_PUNCT, T_EOF } tkind;

typedef struct {
    tkind k;
    int pos, len;      /* in the source buffer */
    int line;          /* line in the current file */
    int file;          /* index into files[] */
    int rewrite;       /* inside a project file */
} token;

static char *src;
static int src_len;
static token *tok;
static int ntok, cap_tok;
static char **files;
static int nfiles;

static void die(const token *t, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(const token *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (t) fprintf(stderr, "%s:%d: bgemu rewrite: ", files[t->file], t->line);
    else fprintf(stderr, "bgemu rewrite: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) die(NULL, "out of memory");
    return p;
}

static int is(const token *t, const char *s)
{
    return (int)strlen(s) == t->len && !memcmp(src + t->pos, s, (size_t)t->len);
}

static int file_index(const char *name, size_t n)
{
    for (int i = 0; i < nfiles; i++)
        if (strlen(files[i]) == n && !memcmp(files[i], name, n)) return i;
    files = xrealloc(files, sizeof *files * (size_t)(nfiles + 1));
    files[nfiles] = strndup(name, n);
    return nfiles++;
}

/* A file is rewritten unless it is a system header (flag 3 of the line
 * marker), a compiler pseudo-file, or the emulator's own headers. */
static int project_file(const char *name, int system)
{
    if (system || name[0] == '<') return 0;
    if (strstr(name, "tools/emu/bgemu.h") || strstr(name, "tools/emu/prelude.h")) return 0;
    return 1;
}

static const char *puncts[] = {"<<=", ">>=", "...", "->*", "::", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=",
                               "&&", "||", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", ".*", "##", NULL};

static void push(tkind k, int pos, int len, int line, int file, int rw)
{
    if (ntok == cap_tok) {
        cap_tok = cap_tok ? 2 * cap_tok : 65536;
        tok = xrealloc(tok, sizeof *tok * (size_t)cap_tok);
    }
    tok[ntok++] = (token){k, pos, len, line, file, rw};
}

static void lex(void)
{
    int i = 0, line = 1, file = file_index("<input>", 7), rw = 0, bol = 1;
    while (i < src_len) {
        char c = src[i];
        if (c == '\n') {
            line++, i++, bol = 1;
            continue;
        }
        if (isspace((unsigned char)c)) {
            i++;
            continue;
        }
        if (bol && c == '#') {
            /* a line marker: # N "file" flags, or a kept directive (#pragma) */
            int j = i + 1;
            while (j < src_len && (src[j] == ' ' || src[j] == '\t')) j++;
            if (j < src_len && isdigit((unsigned char)src[j])) {
                int n = atoi(src + j);
                while (j < src_len && isdigit((unsigned char)src[j])) j++;
                while (j < src_len && src[j] == ' ') j++;
                if (j < src_len && src[j] == '"') {
                    int k = j + 1;
                    while (k < src_len && src[k] != '"') k += src[k] == '\\' ? 2 : 1;
                    file = file_index(src + j + 1, (size_t)(k - j - 1));
                    j = k + 1;
                }
                int system = 0;
                while (j < src_len && src[j] != '\n') {
                    if (src[j] == '3' && (src[j - 1] == ' ')) system = 1;
                    j++;
                }
                rw = project_file(files[file], system);
                line = n - 1; /* the newline below makes it n */
                i = j;
                continue;
            }
            while (i < src_len && src[i] != '\n') i++; /* #pragma and the like: left as they are */
            continue;
        }
        bol = 0;
        int start = i;
        if (isalpha((unsigned char)c) || c == '_') {
            /* string prefixes: u8"", L"", R"()" */
            while (i < src_len && (isalnum((unsigned char)src[i]) || src[i] == '_')) i++;
            if (i < src_len && (src[i] == '"' || src[i] == '\'') && i - start <= 3) {
                int raw = src[i - 1] == 'R';
                if (raw && src[i] == '"') {
                    int d0 = i + 1, d1 = d0;
                    while (d1 < src_len && src[d1] != '(') d1++;
                    char delim[32];
                    int dl = d1 - d0;
                    if (dl > 16) die(NULL, "raw string delimiter too long");
                    delim[0] = ')';
                    memcpy(delim + 1, src + d0, (size_t)dl);
                    delim[dl + 1] = '"';
                    delim[dl + 2] = 0;
                    char *e = strstr(src + d1, delim);
                    if (!e) die(NULL, "unterminated raw string");
                    for (char *q = src + i; q < e; q++) line += *q == '\n';
                    i = (int)(e - src) + dl + 2;
                    push(T_STR, start, i - start, line, file, rw);
                    continue;
                }
                char q = src[i++];
                while (i < src_len && src[i] != q) i += src[i] == '\\' ? 2 : 1;
                i++;
                push(q == '"' ? T_STR : T_CHAR, start, i - start, line, file, rw);
                continue;
            }
            push(T_IDENT, start, i - start, line, file, rw);
            continue;
        }
        if (isdigit((unsigned char)c) || (c == '.' && i + 1 < src_len && isdigit((unsigned char)src[i + 1]))) {
            while (i < src_len && (isalnum((unsigned char)src[i]) || src[i] == '.' || src[i] == '\'' || src[i] == '_' ||
                                   ((src[i] == '+' || src[i] == '-') && strchr("eEpP", src[i - 1]))))
                i++;
            push(T_NUM, start, i - start, line, file, rw);
            continue;
        }
        if (c == '"' || c == '\'') {
            i++;
            while (i < src_len && src[i] != c) {
                if (src[i] == '\n') die(NULL, "line %d: newline in a literal", line);
                i += src[i] == '\\' ? 2 : 1;
            }
            i++;
            push(c == '"' ? T_STR : T_CHAR, start, i - start, line, file, rw);
            continue;
        }
        int len = 1;
        for (const char **p = puncts; *p; p++)
            if (!strncmp(src + i, *p, strlen(*p))) {
                len = (int)strlen(*p);
                break;
            }
        push(T_PUNCT, i, len, line, file, rw);
        i += len;
    }
    push(T_EOF, src_len, 0, line, file, 0);
}

/* ---- edits --------------------------------------------------------------------------- */
typedef struct {
    int pos, end; /* replace [pos, end) */
    char *text;
    int seq;
} edit;
static edit *edits;
static int nedits, cap_edits;

static void add_edit(int pos, int end, const char *text)
{
    if (nedits == cap_edits) {
        cap_edits = cap_edits ? 2 * cap_edits : 256;
        edits = xrealloc(edits, sizeof *edits * (size_t)cap_edits);
    }
    edits[nedits] = (edit){pos, end, strdup(text), nedits};
    nedits++;
}

/* Replaces tokens [a, b] with text, keeping the lines: as many newlines as
 * the replaced span held follow the text. */
static void replace_span(int a, int b, const char *text)
{
    int pos = tok[a].pos, end = tok[b].pos + tok[b].len, nl = 0;
    for (int i = pos; i < end; i++) nl += src[i] == '\n';
    size_t n = strlen(text);
    char *t = malloc(n + (size_t)nl + 1);
    if (!t) die(NULL, "out of memory");
    memcpy(t, text, n);
    memset(t + n, '\n', (size_t)nl);
    t[n + (size_t)nl] = 0;
    add_edit(pos, end, t);
    free(t);
}

static int cmp_edit(const void *a, const void *b)
{
    const edit *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return x->seq - y->seq;
}

/* ---- a growable string ------------------------------------------------------------------- */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}
/* Tokens [a, b] as text on one line. */
static void sb_tokens(sbuf *b, int a, int e)
{
    for (int i = a; i <= e; i++) {
        if (i > a && tok[i].pos > tok[i - 1].pos + tok[i - 1].len) sb_puts(b, " ");
        sb_put(b, src + tok[i].pos, (size_t)tok[i].len);
    }
}

/* Namespace-scope __shared__ variables become accessor functions: later
 * uses of their names are renamed (rewrite_shared fills the table). */
typedef struct {
    char name[256];
    char repl[300];
} rename_t;
static rename_t *renames;
static int nrenames;

static const char *renamed(int i)
{
    if (tok[i].k != T_IDENT || (i > 0 && (is(&tok[i - 1], ".") || is(&tok[i - 1], "->")))) return NULL;
    for (int r = 0; r < nrenames; r++)
        if (is(&tok[i], renames[r].name)) return renames[r].repl;
    return NULL;
}

/* Tokens [a, b] as text on one line, with the renames applied (an
 * expression copied into generated code). */
static void sb_expr(sbuf *b, int a, int e)
{
    for (int i = a; i <= e; i++) {
        if (i > a && tok[i].pos > tok[i - 1].pos + tok[i - 1].len) sb_puts(b, " ");
        const char *r = renamed(i);
        if (r) sb_puts(b, r);
        else sb_put(b, src + tok[i].pos, (size_t)tok[i].len);
    }
}

/* "file:line" of a token, as a C string literal's contents. */
static void site_of(const token *t, char *buf, size_t n)
{
    const char *f = files[t->file];
    /* drop leading "./" and fold "dir/../" so sites read like source paths */
    char path[1024];
    snprintf(path, sizeof path, "%s", f);
    char *p;
    while (!strncmp(path, "./", 2)) memmove(path, path + 2, strlen(path + 2) + 1);
    while ((p = strstr(path, "/../"))) {
        char *q = p;
        while (q > path && q[-1] != '/') q--;
        if (q == p) break;
        memmove(q, p + 4, strlen(p + 4) + 1);
    }
    snprintf(buf, n, "%s:%d", path, t->line);
}

/* ---- structure ------------------------------------------------------------------------------ */
static int *match; /* index of the matching bracket for ( [ { */

static void match_brackets(void)
{
    match = malloc(sizeof *match * (size_t)ntok);
    int *stack = malloc(sizeof *stack * (size_t)ntok), sp = 0;
    if (!match || !stack) die(NULL, "out of memory");
    for (int i = 0; i < ntok; i++) {
        match[i] = -1;
        if (tok[i].k != T_PUNCT || tok[i].len != 1) continue;
        char c = src[tok[i].pos];
        if (c == '(' || c == '[' || c == '{') stack[sp++] = i;
        else if (c == ')' || c == ']' || c == '}') {
            if (!sp) die(&tok[i], "unbalanced '%c'", c);
            int o = stack[--sp];
            char oc = src[tok[o].pos];
            if ((c == ')' && oc != '(') || (c == ']' && oc != '[') || (c == '}' && oc != '{'))
                die(&tok[i], "'%c' closes '%c' of line %d", c, oc, tok[o].line);
            match[o] = i, match[i] = o;
        }
    }
    if (sp) die(&tok[stack[sp - 1]], "unclosed bracket");
    free(stack);
}

/* Brace contexts: 1 for a function body (or a block inside one), 0 otherwise. */
static char *in_func; /* per token: inside a function body */

static int skip_back_qualifiers(int i)
{
    for (;;) {
        if (i < 0) return i;
        if (tok[i].k == T_IDENT && (is(&tok[i], "const") || is(&tok[i], "volatile") || is(&tok[i], "noexcept") ||
                                    is(&tok[i], "override") || is(&tok[i], "final") || is(&tok[i], "mutable"))) {
            i--;
            continue;
        }
        if (is(&tok[i], ")") && match[i] > 0 && (is(&tok[match[i] - 1], "noexcept") || is(&tok[match[i] - 1], "__attribute__") ||
                                                  is(&tok[match[i] - 1], "throw"))) {
            i = match[i] - 2;
            continue;
        }
        if (is(&tok[i], ")") && match[i] > 0 && is(&tok[match[i] - 1], "(") && match[match[i] - 1] > 0 &&
            is(&tok[match[match[i] - 1] - 1], "__attribute__")) {
            i = match[match[i] - 1] - 2;
            continue;
        }
        return i;
    }
}

static void mark_functions(void)
{
    in_func = calloc((size_t)ntok, 1);
    char *stack = malloc((size_t)ntok + 1);
    int sp = 0;
    char cur = 0;
    for (int i = 0; i < ntok; i++) {
        if (is(&tok[i], "{")) {
            char kind = cur;
            if (!cur) {
                int j = skip_back_qualifiers(i - 1);
                kind = j >= 0 && (is(&tok[j], ")") || is(&tok[j], "]"));
            }
            stack[sp++] = cur;
            cur = kind;
            in_func[i] = cur;
            continue;
        }
        if (is(&tok[i], "}")) {
            in_func[i] = cur;
            cur = sp ? stack[--sp] : 0;
            continue;
        }
        in_func[i] = cur;
    }
    free(stack);
}

static int counter; /* unique names */

/* ---- kernel launches -------------------------------------------------------------------------- */
/* The callee of a launch ends at token e: `name`, `ns::name`, `name<args>`,
 * `::a::b<c>`. Returns its first token. */
static int callee_start(int e)
{
    int i = e;
    for (;;) {
        if (is(&tok[i], ">") || is(&tok[i], ">>")) {
            /* template arguments: walk back to the matching '<' */
            int depth = 0;
            for (; i >= 0; i--) {
                if (is(&tok[i], ">")) depth++;
                else if (is(&tok[i], ">>")) depth += 2;
                else if (is(&tok[i], "<")) depth--;
                else if (is(&tok[i], ")") || is(&tok[i], "]")) i = match[i];
                if (depth == 0) break;
            }
            if (i < 0) die(&tok[e], "cannot find the start of the launched kernel's name");
            i--; /* the template's name */
        }
        if (tok[i].k != T_IDENT) die(&tok[i], "cannot parse the launched kernel's name");
        if (i > 0 && is(&tok[i - 1], "::")) {
            if (i > 1 && (tok[i - 2].k == T_IDENT || is(&tok[i - 2], ">") || is(&tok[i - 2], ">>")) &&
                !is(&tok[i - 2], "return") && !is(&tok[i - 2], "else")) {
                i -= 2;
                continue;
            }
            return i - 1; /* ::name */
        }
        return i;
    }
}

static void rewrite_launch(int i)
{
    /* tok[i] is '<<' followed by '<' */
    int lt = i + 1;
    if (!is(&tok[lt], "<")) die(&tok[i], "expected <<<");
    int start = callee_start(i - 1);
    /* the matching >>>: '>>' '>' at bracket depth 0 */
    int j = lt + 1, close = -1;
    for (; j < ntok; j++) {
        if (match[j] > j && (is(&tok[j], "(") || is(&tok[j], "[") || is(&tok[j], "{"))) {
            j = match[j];
            continue;
        }
        if (is(&tok[j], ">>") && is(&tok[j + 1], ">") && tok[j + 1].pos == tok[j].pos + 2) {
            close = j;
            break;
        }
        if (is(&tok[j], ";")) break;
    }
    if (close < 0) die(&tok[i], "no >>> closes this launch");
    char site[1200];
    site_of(&tok[i], site, sizeof site);
    sbuf name = {0};
    sb_tokens(&name, start, i - 1);
    add_edit(tok[start].pos, tok[start].pos, "::bgemu::launch(");
    add_edit(tok[i].pos, tok[lt].pos + 1, ", ::bgemu::LaunchCfg(");
    sbuf tail = {0};
    sb_puts(&tail, "), \"");
    for (const char *c = name.p; *c; c++) sb_put(&tail, *c == '"' ? "'" : c, 1);
    sb_printf(&tail, "\", \"%s\")", site);
    add_edit(tok[close].pos, tok[close + 1].pos + 1, tail.p);
    free(name.p);
    free(tail.p);
}

/* ---- __shared__ ------------------------------------------------------------------------------- */
/* Skips __attribute__((...)) at i; notes aligned(N). Returns the next token. */
static int skip_attr(int i, int *align)
{
    if (!is(&tok[i], "__attribute__") || !is(&tok[i + 1], "(")) return i;
    int e = match[i + 1];
    for (int k = i + 1; k < e; k++)
        if (is(&tok[k], "aligned") && is(&tok[k + 1], "(")) *align = atoi(src + tok[k + 2].pos);
    return e + 1;
}

static int stmt_begin(int i)
{
    /* back to the token after ; { } or a label's : at the same depth */
    int j = i - 1;
    while (j >= 0) {
        if (is(&tok[j], ";") || is(&tok[j], "{") || is(&tok[j], "}")) break;
        if (is(&tok[j], ")") || is(&tok[j], "]")) {
            j = match[j] - 1;
            continue;
        }
        if (is(&tok[j], ":") && j > 0 && !is(&tok[j - 1], ":")) break;
        j--;
    }
    return j + 1;
}

static int stmt_end(int i)
{
    for (int j = i; j < ntok; j++) {
        if (is(&tok[j], ";")) return j;
        if (match[j] > j) j = match[j];
    }
    die(&tok[i], "no ';' ends this declaration");
}

static void rewrite_shared(int at)
{
    const int ns_scope = !in_func[at];
    int a = stmt_begin(at), e = stmt_end(at);
    int ext = 0, align = 0;
    /* the specifiers (tokens kept), then the declarators */
    int keep[512], nkeep = 0;
    int i = a;
    for (; i < e; i++) {
        if (is(&tok[i], "__shared__") || is(&tok[i], "static")) continue;
        if (is(&tok[i], "extern")) {
            ext = 1;
            continue;
        }
        if (is(&tok[i], "__attribute__")) {
            i = skip_attr(i, &align) - 1;
            continue;
        }
        if (nkeep == 512) die(&tok[at], "__shared__ declaration too long");
        keep[nkeep++] = i;
    }
    /* split the kept tokens at top-level commas; the first part holds the specifiers */
    int parts[64][2], np = 0, depth = 0, s0 = 0;
    for (int k = 0; k <= nkeep; k++) {
        if (k < nkeep) {
            const token *t = &tok[keep[k]];
            if (is(t, "(") || is(t, "[") || is(t, "<")) depth++;
            else if (is(t, ")") || is(t, "]") || is(t, ">")) depth--;
            else if (is(t, ">>")) depth -= 2;
            if (!(is(t, ",") && depth == 0)) continue;
        }
        if (np == 64) die(&tok[at], "too many declarators");
        parts[np][0] = s0, parts[np][1] = k - 1;
        np++;
        s0 = k + 1;
    }
    /* in the first part the declarator is the name (the last identifier
     * before any '[', '=' or the end) with the '*' and '&' before it */
    int p0e = parts[0][1], name_k = -1;
    for (int k = parts[0][0]; k <= p0e; k++) {
        const token *t = &tok[keep[k]];
        if (is(t, "[") || is(t, "=")) break;
        if (t->k == T_IDENT) name_k = k;
        if (is(t, "<")) { /* template arguments of the type: skip */
            int d = 1;
            while (++k <= p0e && d) d += is(&tok[keep[k]], "<") - is(&tok[keep[k]], ">") - 2 * is(&tok[keep[k]], ">>");
            k--;
        }
    }
    if (name_k < 0) die(&tok[at], "cannot find the name in this __shared__ declaration");
    int spec_end = name_k - 1;
    while (spec_end >= parts[0][0] && (is(&tok[keep[spec_end]], "*") || is(&tok[keep[spec_end]], "&"))) spec_end--;
    sbuf spec = {0};
    for (int k = parts[0][0]; k <= spec_end; k++) {
        if (k > parts[0][0]) sb_puts(&spec, " ");
        sb_put(&spec, src + tok[keep[k]].pos, (size_t)tok[keep[k]].len);
    }
    char site[1200];
    site_of(&tok[at], site, sizeof site);
    sbuf out = {0};
    for (int d = 0; d < np; d++) {
        int b0 = d == 0 ? spec_end + 1 : parts[d][0], b1 = parts[d][1];
        /* declarator: ptr ops, name, [dims] */
        sbuf ptrs = {0}, dims = {0};
        int k = b0, nm = -1;
        while (k <= b1 && (is(&tok[keep[k]], "*") || is(&tok[keep[k]], "&"))) sb_put(&ptrs, src + tok[keep[k]].pos, 1), k++;
        if (k > b1 || tok[keep[k]].k != T_IDENT) die(&tok[at], "cannot parse a declarator of this __shared__ declaration");
        nm = keep[k++];
        int empty_dim = 0;
        while (k <= b1 && is(&tok[keep[k]], "[")) {
            int close = k + 1;
            while (close <= b1 && keep[close] != match[keep[k]]) close++;
            if (close == k + 1) empty_dim = 1;
            sb_puts(&dims, "[");
            if (close > k + 1) sb_tokens(&dims, keep[k + 1], keep[close - 1]);
            sb_puts(&dims, "]");
            k = close + 1;
        }
        if (k <= b1) die(&tok[keep[k]], "__shared__ variables cannot have initializers");
        char name[256];
        snprintf(name, sizeof name, "%.*s", tok[nm].len, src + tok[nm].pos);
        int id = counter++;
        if (ext) {
            if (!empty_dim || strcmp(dims.p, "[]")) die(&tok[at], "extern __shared__ must be a one-dimensional T name[]");
            if (ns_scope) {
                sb_printf(&out, "static inline %s %s*bgemu_sv_%s_%d() { return (%s %s*)::bgemu::shared_dynamic(%d, \"%s\"); } ",
                          spec.p, ptrs.p ? ptrs.p : "", name, id, spec.p, ptrs.p ? ptrs.p : "", align, site);
            } else {
                sb_printf(&out, "%s %s*const %s = (%s %s*)::bgemu::shared_dynamic(%d, \"%s\"); ", spec.p, ptrs.p ? ptrs.p : "",
                          name, spec.p, ptrs.p ? ptrs.p : "", align, site);
            }
        } else {
            if (empty_dim) die(&tok[at], "a __shared__ array needs a size (or extern)");
            char type[2048];
            snprintf(type, sizeof type, "%s %s%s", spec.p, ptrs.p ? ptrs.p : "", dims.p ? dims.p : "");
            if (ns_scope)
                sb_printf(&out, "static char bgemu_sk_%d; static inline decltype(auto) bgemu_sv_%s_%d() { return "
                                "::bgemu::shared_var_al<%s, %d>(&bgemu_sk_%d, \"%s\"); } ",
                          id, name, id, type, align, id, site);
            else
                sb_printf(&out, "static char bgemu_sk_%d; auto &%s = ::bgemu::shared_var_al<%s, %d>(&bgemu_sk_%d, \"%s\"); ",
                          id, name, type, align, id, site);
        }
        if (ns_scope) {
            renames = xrealloc(renames, sizeof *renames * (size_t)(nrenames + 1));
            snprintf(renames[nrenames].name, sizeof renames[nrenames].name, "%s", name);
            snprintf(renames[nrenames].repl, sizeof renames[nrenames].repl, "(bgemu_sv_%s_%d())", name, id);
            nrenames++;
        }
        free(ptrs.p);
        free(dims.p);
    }
    replace_span(a, e, out.p);
    free(out.p);
    free(spec.p);
}

/* ---- asm ---------------------------------------------------------------------------------------- */
static void rewrite_asm(int at)
{
    int i = at + 1;
    while (tok[i].k == T_IDENT && (is(&tok[i], "volatile") || is(&tok[i], "__volatile__") || is(&tok[i], "__volatile") ||
                                   is(&tok[i], "inline")))
        i++;
    if (is(&tok[i], "goto")) die(&tok[at], "asm goto cannot be emulated");
    if (!is(&tok[i], "(")) return; /* not a statement (an asm label on a declaration) */
    int open = i, close = match[i];
    char site[1200];
    site_of(&tok[at], site, sizeof site);
    sbuf out = {0};
    sb_puts(&out, "::bgemu::ptx(");
    i = open + 1;
    int any = 0;
    while (i < close && tok[i].k == T_STR) {
        if (any) sb_puts(&out, " ");
        sb_put(&out, src + tok[i].pos, (size_t)tok[i].len);
        any = 1, i++;
    }
    if (!any) die(&tok[at], "asm without a string template");
    sb_printf(&out, ", \"%s\", {", site);
    /* sections: outputs, inputs, clobbers, separated by ':' ('::' is two) */
    int section = 0, nops = 0;
    while (i < close) {
        if (is(&tok[i], ":")) {
            section++, i++;
            continue;
        }
        if (is(&tok[i], "::")) {
            section += 2, i++;
            continue;
        }
        if (is(&tok[i], ",")) {
            i++;
            continue;
        }
        if (section >= 3) { /* clobbers */
            i++;
            continue;
        }
        char opname[128] = "";
        if (is(&tok[i], "[")) {
            snprintf(opname, sizeof opname, "%.*s", tok[i + 1].len, src + tok[i + 1].pos);
            i = match[i] + 1;
        }
        if (tok[i].k != T_STR) die(&tok[i], "expected an asm constraint string");
        const char *c = src + tok[i].pos + 1;
        int inout = 0, is_out = section == 1;
        while (*c == '=' || *c == '+' || *c == '&') inout |= *c == '+', c++;
        char letter = *c;
        if (!strchr("rlhfdnc", letter)) die(&tok[i], "asm constraint \"%.*s\" is not emulated", tok[i].len - 2, src + tok[i].pos + 1);
        i++;
        if (!is(&tok[i], "(")) die(&tok[i], "expected (expression) after the constraint");
        int ee = match[i];
        sb_printf(&out, "%s::bgemu::%s<'%c'>(", nops ? ", " : "", !is_out ? "pin" : inout ? "pinout" : "pout", letter);
        if (ee > i + 1) sb_expr(&out, i + 1, ee - 1);
        if (opname[0]) sb_printf(&out, ", \"%s\"", opname);
        sb_puts(&out, ")");
        nops++;
        i = ee + 1;
    }
    sb_puts(&out, "})");
    replace_span(at, close, out.p);
    free(out.p);
}

/* ---- kernels --------------------------------------------------------------------------------------- */
static void rewrite_global(int at)
{
    add_edit(tok[at].pos, tok[at].pos + tok[at].len, "");
    /* the declaration: from its start to '(' of the parameters */
    int a = stmt_begin(at), is_template = 0;
    for (int k = a; k < at; k++)
        if (is(&tok[k], "template")) is_template = 1;
    int lb = -1, lb_arg_end = -1, name = -1, paren = -1;
    for (int k = at + 1; k < ntok; k++) {
        if (is(&tok[k], "__launch_bounds__")) {
            lb = k;
            k = match[k + 1];
            continue;
        }
        if (is(&tok[k], "__attribute__")) {
            k = match[k + 1];
            continue;
        }
        if (is(&tok[k], "(")) {
            paren = k;
            name = k - 1;
            break;
        }
        if (is(&tok[k], ";") || is(&tok[k], "{")) break;
    }
    if (paren < 0 || tok[name].k != T_IDENT) die(&tok[at], "cannot find the kernel's name");
    int after = match[paren] + 1;
    while (after < ntok && !is(&tok[after], "{") && !is(&tok[after], ";")) {
        if (match[after] > after) after = match[after];
        after++;
    }
    char site[1200];
    site_of(&tok[name], site, sizeof site);
    if (lb >= 0) {
        int open = lb + 1, close = match[open];
        lb_arg_end = close - 1;
        int depth = 0;
        for (int k = open + 1; k < close; k++) {
            if (is(&tok[k], "(") || is(&tok[k], "[") || is(&tok[k], "<")) depth++;
            else if (is(&tok[k], ")") || is(&tok[k], "]") || is(&tok[k], ">")) depth--;
            if (is(&tok[k], ",") && depth == 0) {
                lb_arg_end = k - 1;
                break;
            }
        }
        if (after < ntok && is(&tok[after], "{")) {
            sbuf chk = {0};
            sb_puts(&chk, " ::bgemu::launch_bounds((long long)(");
            sb_expr(&chk, open + 1, lb_arg_end);
            sb_printf(&chk, "), \"%s\");", site);
            add_edit(tok[after].pos + 1, tok[after].pos + 1, chk.p);
            free(chk.p);
        }
        replace_span(lb, close, "");
    }
    if (after < ntok && is(&tok[after], "{") && !is_template && !in_func[at]) {
        char reg[512];
        snprintf(reg, sizeof reg, " static ::bgemu::KernelReg bgemu_kr_%d(%.*s, \"%.*s\");", counter++, tok[name].len,
                 src + tok[name].pos, tok[name].len, src + tok[name].pos);
        int end = match[after];
        add_edit(tok[end].pos + 1, tok[end].pos + 1, reg);
    }
}

/* ---- intrinsics that get their call site ---------------------------------------------------------- */
static const char *intrinsics[][2] = {
    {"__syncthreads", "syncthreads_at"},   {"__syncthreads_or", "syncthreads_or_at"},
    {"__syncthreads_and", "syncthreads_and_at"}, {"__syncthreads_count", "syncthreads_count_at"},
    {"__syncwarp", "syncwarp_at"},         {"__shfl_sync", "shfl_sync_at"},
    {"__shfl_up_sync", "shfl_up_sync_at"}, {"__shfl_down_sync", "shfl_down_sync_at"},
    {"__shfl_xor_sync", "shfl_xor_sync_at"}, {"__ballot_sync", "ballot_sync_at"},
    {"__any_sync", "any_sync_at"},         {"__all_sync", "all_sync_at"},
    {"__activemask", "activemask_at"},     {NULL, NULL}};

static void rewrite_intrinsic(int at, const char *to)
{
    char site[1200], text[1400];
    site_of(&tok[at], site, sizeof site);
    const int empty = is(&tok[at + 2], ")");
    snprintf(text, sizeof text, "::bgemu::%s(\"%s\"%s", to, site, empty ? "" : ", ");
    add_edit(tok[at].pos, tok[at + 1].pos + 1, text);
}

/* ---- driver ---------------------------------------------------------------------------------------- */
int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: rewrite IN.ii OUT.cpp\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) die(NULL, "cannot open %s", argv[1]);
    fseek(f, 0, SEEK_END);
    src_len = (int)ftell(f);
    fseek(f, 0, SEEK_SET);
    src = malloc((size_t)src_len + 1);
    if (!src || fread(src, 1, (size_t)src_len, f) != (size_t)src_len) die(NULL, "cannot read %s", argv[1]);
    src[src_len] = 0;
    fclose(f);

    lex();
    match_brackets();
    mark_functions();
    for (int i = 0; i < ntok; i++) {
        const token *t = &tok[i];
        if (!t->rewrite || t->k == T_EOF) continue;
        if (t->k == T_PUNCT && is(t, "<<") && is(&tok[i + 1], "<") && tok[i + 1].pos == t->pos + 2 && in_func[i]) {
            rewrite_launch(i);
            continue;
        }
        if (t->k != T_IDENT) continue;
        if (is(t, "__shared__")) {
            int e = stmt_end(i);
            rewrite_shared(i);
            i = e;
            continue;
        }
        if ((is(t, "asm") || is(t, "__asm__") || is(t, "__asm")) && in_func[i]) {
            rewrite_asm(i);
            int k = i + 1;
            while (tok[k].k == T_IDENT) k++;
            if (is(&tok[k], "(")) i = match[k];
            continue;
        }
        if (is(t, "__global__")) {
            rewrite_global(i);
            continue;
        }
        if (is(t, "__launch_bounds__")) continue; /* handled with its __global__ */
        if (in_func[i] && is(&tok[i + 1], "(")) {
            for (int k = 0; intrinsics[k][0]; k++)
                if (is(t, intrinsics[k][0])) {
                    rewrite_intrinsic(i, intrinsics[k][1]);
                    break;
                }
        }
        const char *r = renamed(i);
        if (r) add_edit(t->pos, t->pos + t->len, r);
    }

    qsort(edits, (size_t)nedits, sizeof *edits, cmp_edit);
    FILE *o = fopen(argv[2], "wb");
    if (!o) die(NULL, "cannot write %s", argv[2]);
    int pos = 0;
    for (int k = 0; k < nedits; k++) {
        if (edits[k].pos < pos) die(NULL, "overlapping rewrites at offset %d", edits[k].pos);
        fwrite(src + pos, 1, (size_t)(edits[k].pos - pos), o);
        fputs(edits[k].text, o);
        pos = edits[k].end;
    }
    fwrite(src + pos, 1, (size_t)(src_len - pos), o);
    if (fclose(o)) die(NULL, "cannot write %s", argv[2]);
    return 0;
}
