// The inline-PTX interpreter. An asm statement arrives as its template
// string and its bound operands (bgemu::ptx); the template is parsed once
// into instructions, then each execution binds %0.. to the operand values,
// runs the instructions and writes the outputs back.
//
// Emulated: mov, cvt, cvta(.to).shared, a little integer arithmetic, setp,
// selp, ld/st.shared, bar.sync, cp.async (.ca/.cg, commit_group,
// wait_group, wait_all), ldmatrix (.x1/.x2/.x4, .trans), mma.sync
// (m16n8k16 and m16n8k8, f16/bf16 inputs, f32 or f16 accumulators), the
// wgmma family (fence, mma_async m64nNk16 f16/bf16 -> f32 from shared-memory
// descriptors with K-major operands, commit_group, wait_group) and
// fence.proxy.async. Fragment layouts follow the PTX ISA; tools/emu/selftest
// checks them against hand-worked examples. Anything else ends the launch
// with a message naming the instruction.
#include <stdlib.h>
#include <string.h>
#include <string>
#include <unordered_map>
#include "internal.h"

namespace bgemu {

// ---- binary16 / bfloat16 ------------------------------------------------------------------------
static float f16_to_f32(uint16_t h)
{
    const uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    uint32_t b;
    if (e == 31) b = s | 0x7f800000u | (m << 13);
    else if (e) b = s | ((e + 112) << 23) | (m << 13);
    else if (!m) b = s;
    else { // subnormal: normalise
        int k = 0;
        uint32_t mm = m;
        while (!(mm & 1024)) mm <<= 1, k++;
        b = s | ((uint32_t)(113 - k) << 23) | ((mm & 1023) << 13);
    }
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static uint16_t f32_to_f16(float f) // round to nearest even
{
    uint32_t b;
    memcpy(&b, &f, 4);
    const uint32_t s = (b >> 16) & 0x8000;
    const uint32_t a = b & 0x7fffffff;
    if (a > 0x7f800000) return (uint16_t)(s | 0x7e00);        // NaN
    if (a >= 0x477ff000) return (uint16_t)(s | 0x7c00);       // overflow to inf (>= 65520)
    if (a < 0x38800000) {                                     // subnormal or zero in f16
        if (a < 0x33000000) return (uint16_t)s;               // below half the smallest subnormal
        const uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        const int shift = 126 - (int)e;                       // 14..24
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(s | r);
    }
    uint32_t r = ((a >> 13) - (112 << 10)), rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(s | r);
}

// f16 -> f32 by table: the tensor-core instructions convert every operand
static const float *f16_table()
{
    static float *t = [] {
        float *p = new float[65536];
        for (uint32_t i = 0; i < 65536; i++) p[i] = f16_to_f32((uint16_t)i);
        return p;
    }();
    return t;
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static float as_f32(uint64_t v)
{
    float f;
    uint32_t b = (uint32_t)v;
    memcpy(&f, &b, 4);
    return f;
}
static double as_f64(uint64_t v)
{
    double d;
    memcpy(&d, &v, 8);
    return d;
}
static uint64_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

// ---- parsed form -------------------------------------------------------------------------------
enum { O_NONE, O_ARG, O_NAMED, O_LOCAL, O_IMM, O_SPECIAL, O_MEM, O_VEC };
struct Opnd {
    int kind = O_NONE;
    int idx = 0;          // ARG: operand number; LOCAL: register; SPECIAL: id
    int64_t imm = 0;      // IMM value; MEM: offset
    bool neg = false;     // a negated predicate
    std::string name;     // NAMED
    std::vector<Opnd> sub; // MEM: the base (one); VEC: the elements
};
// Decoded once at parse time, so an execution does no string work.
enum {
    OP_BAD, OP_MOV, OP_CVTA_TO, OP_CVTA_FROM, OP_CVT, OP_ALU, OP_SETP, OP_SELP, OP_LDS, OP_STS, OP_BAR, OP_CP_ASYNC,
    OP_CP_COMMIT, OP_CP_WAIT, OP_CP_WAITALL, OP_LDMATRIX, OP_MMA, OP_WGMMA, OP_FENCE_PROXY, OP_NOP
};
enum { ALU_ADD, ALU_SUB, ALU_MUL, ALU_AND, ALU_OR, ALU_XOR, ALU_SHL, ALU_SHR };
struct Instr {
    std::string text;     // for messages
    std::vector<std::string> part; // the mnemonic split at '.'
    std::vector<Opnd> ops;
    bool guarded = false;
    Opnd guard;
    int op = OP_BAD;
    const char *why = "instruction not emulated"; // OP_BAD's message
    int bits = 64;        // the instruction type's width
    bool fl = false, sg = false;
    int dbits = 64, sbits = 64; // cvt: destination and source types
    bool dfl = false, dsg = false, sfl = false, ssg = false;
    int rnd = 0;          // cvt to integer: 0 nearest, 1 zero, 2 down, 3 up
    int alu = 0;
    std::string cmp;      // setp
    bool shared = false;  // a .shared state space (window addresses)
    bool trans = false, cg = false;
    int nm = 0;           // ldmatrix matrices
    int mk = 0;           // mma: K (16 or 8)
    bool m_bf16 = false, m_accf16 = false, m_cf16 = false;
    int wg_what = 0, wg_n = 0; // wgmma: 0 fence, 1 mma_async, 2 commit, 3 wait; its N
};
// The templates every f16 load and store and every shared address go
// through, recognised at parse time and run without the general machinery.
enum { FAST_NONE, FAST_H2F, FAST_F2H, FAST_SMEM_ADDR };
struct Program {
    int fast = FAST_NONE;
    int max_arg = -1;     // the highest %N used
    std::vector<Instr> ins;
    std::vector<std::string> locals;
    std::string error;    // a parse error, reported at execution
};

enum { SP_LANEID = 1, SP_WARPID, SP_TIDX, SP_TIDY, SP_TIDZ };

static std::string trim(const std::string &s)
{
    size_t a = 0, b = s.size();
    while (a < b && isspace((unsigned char)s[a])) a++;
    while (b > a && isspace((unsigned char)s[b - 1])) b--;
    return s.substr(a, b - a);
}

static std::vector<std::string> split_top(const std::string &s, char sep)
{
    std::vector<std::string> out;
    int depth = 0;
    std::string cur;
    for (char c : s) {
        if (c == '{' || c == '[') depth++;
        if (c == '}' || c == ']') depth--;
        if (c == sep && depth == 0) {
            out.push_back(trim(cur));
            cur.clear();
        } else cur += c;
    }
    if (!trim(cur).empty() || !out.empty()) out.push_back(trim(cur));
    return out;
}

static int find_local(const Program &p, const std::string &n)
{
    for (size_t i = 0; i < p.locals.size(); i++)
        if (p.locals[i] == n) return (int)i;
    return -1;
}

static bool parse_opnd(Program &P, const std::string &s0, Opnd &o)
{
    std::string s = trim(s0);
    if (s.empty()) return false;
    if (s[0] == '{') {
        if (s.back() != '}') return false;
        o.kind = O_VEC;
        for (const std::string &e : split_top(s.substr(1, s.size() - 2), ',')) {
            Opnd x;
            if (!parse_opnd(P, e, x)) return false;
            o.sub.push_back(x);
        }
        return true;
    }
    if (s[0] == '[') {
        if (s.back() != ']') return false;
        std::string in = trim(s.substr(1, s.size() - 2));
        o.kind = O_MEM;
        size_t plus = in.find_first_of("+-", 1);
        std::string base = trim(plus == std::string::npos ? in : in.substr(0, plus));
        Opnd b;
        if (!parse_opnd(P, base, b)) return false;
        o.sub.push_back(b);
        if (plus != std::string::npos) {
            std::string off = trim(in.substr(plus + 1));
            o.imm = strtoll(off.c_str(), nullptr, 0);
            if (in[plus] == '-') o.imm = -o.imm;
        }
        return true;
    }
    if (s[0] == '!') {
        if (!parse_opnd(P, s.substr(1), o)) return false;
        o.neg = true;
        return true;
    }
    if (s[0] == '%') {
        if (s.size() > 1 && isdigit((unsigned char)s[1])) {
            o.kind = O_ARG;
            o.idx = atoi(s.c_str() + 1);
            if (o.idx > P.max_arg) P.max_arg = o.idx;
            return true;
        }
        if (s.size() > 2 && s[1] == '[' && s.back() == ']') {
            o.kind = O_NAMED;
            o.name = s.substr(2, s.size() - 3);
            return true;
        }
        std::string sp = s[1] == '%' ? s.substr(2) : s.substr(1);
        o.kind = O_SPECIAL;
        if (sp == "laneid") o.idx = SP_LANEID;
        else if (sp == "warpid") o.idx = SP_WARPID;
        else if (sp == "tid.x") o.idx = SP_TIDX;
        else if (sp == "tid.y") o.idx = SP_TIDY;
        else if (sp == "tid.z") o.idx = SP_TIDZ;
        else {
            int l = find_local(P, s);
            if (l < 0) return false;
            o.kind = O_LOCAL, o.idx = l;
        }
        return true;
    }
    if (isdigit((unsigned char)s[0]) || s[0] == '-') {
        o.kind = O_IMM;
        if (s.size() > 2 && s[0] == '0' && (s[1] == 'f' || s[1] == 'F')) o.imm = (int64_t)strtoull(s.c_str() + 2, nullptr, 16);
        else if (s.size() > 2 && s[0] == '0' && (s[1] == 'd' || s[1] == 'D'))
            o.imm = (int64_t)strtoull(s.c_str() + 2, nullptr, 16);
        else o.imm = strtoll(s.c_str(), nullptr, 0);
        return true;
    }
    int l = find_local(P, s);
    if (l < 0) return false;
    o.kind = O_LOCAL, o.idx = l;
    return true;
}

static void decode(Instr &in);

static void parse_stmt(Program &P, const std::string &st)
{
    std::string s = trim(st);
    if (s.empty()) return;
    if (s.compare(0, 4, ".reg") == 0) {
        // .reg .type a, b; or .reg .type r<4>;
        std::string rest = trim(s.substr(4));
        size_t sp = rest.find_first_of(" \t");
        rest = sp == std::string::npos ? "" : trim(rest.substr(sp));
        for (const std::string &n : split_top(rest, ',')) {
            size_t lt = n.find('<');
            if (lt != std::string::npos) {
                int cnt = atoi(n.c_str() + lt + 1);
                for (int i = 0; i < cnt; i++) P.locals.push_back(trim(n.substr(0, lt)) + std::to_string(i));
            } else P.locals.push_back(trim(n));
        }
        return;
    }
    Instr in;
    in.text = s;
    if (s[0] == '@') {
        size_t sp = s.find_first_of(" \t");
        if (sp == std::string::npos || !parse_opnd(P, s.substr(1, sp - 1), in.guard)) {
            P.error = "cannot parse the guard of '" + s + "'";
            return;
        }
        in.guarded = true;
        s = trim(s.substr(sp));
    }
    size_t k = 0;
    while (k < s.size() && (isalnum((unsigned char)s[k]) || s[k] == '.' || s[k] == '_' || s[k] == ':')) k++;
    std::string mn = s.substr(0, k);
    size_t a = 0;
    while (a <= mn.size()) {
        size_t d = mn.find('.', a);
        if (d == std::string::npos) d = mn.size();
        in.part.push_back(mn.substr(a, d - a));
        a = d + 1;
    }
    std::string ops = trim(s.substr(k));
    if (!ops.empty())
        for (const std::string &o : split_top(ops, ',')) {
            Opnd x;
            if (!parse_opnd(P, o, x)) {
                P.error = "cannot parse operand '" + o + "' of '" + in.text + "'";
                return;
            }
            in.ops.push_back(x);
        }
    decode(in);
    P.ins.push_back(in);
}

static bool has(const Instr &in, const char *p)
{
    for (const std::string &s : in.part)
        if (s == p) return true;
    return false;
}

// type of the instruction: the last part naming one (from_end: skip that many)
static int type_bits(const Instr &in, bool *is_float, bool *is_signed, size_t from_end = 0)
{
    size_t seen = 0;
    for (size_t i = in.part.size(); i-- > 1;) {
        const std::string &p = in.part[i];
        if (p.size() < 2 || !strchr("ubsf", p[0]) || !isdigit((unsigned char)p[1])) continue;
        if (p == "f16x2") continue;
        if (seen++ < from_end) continue;
        *is_float = p[0] == 'f';
        *is_signed = p[0] == 's';
        return atoi(p.c_str() + 1);
    }
    *is_float = false, *is_signed = false;
    return 64;
}

static void decode(Instr &in)
{
    const std::string &op = in.part[0];
    in.bits = type_bits(in, &in.fl, &in.sg);
    in.shared = has(in, "shared") || has(in, "shared::cta");
    if (op == "mov") in.op = in.ops.size() == 2 ? OP_MOV : OP_BAD;
    else if (op == "cvta") in.op = has(in, "to") ? OP_CVTA_TO : OP_CVTA_FROM;
    else if (op == "cvt") {
        in.op = OP_CVT;
        in.dbits = type_bits(in, &in.dfl, &in.dsg, 1);
        in.sbits = type_bits(in, &in.sfl, &in.ssg, 0);
        in.rnd = has(in, "rzi") ? 1 : has(in, "rmi") ? 2 : has(in, "rpi") ? 3 : 0;
        if (has(in, "bf16")) in.op = OP_BAD, in.why = "cvt with .bf16 is not emulated";
        if (in.dfl && (has(in, "rz") || has(in, "rm") || has(in, "rp") || has(in, "sat")))
            in.op = OP_BAD, in.why = "cvt to a float type: only round-to-nearest (.rn) is emulated";
    } else if (op == "add" || op == "sub" || op == "mul" || op == "and" || op == "or" || op == "xor" || op == "shl" ||
               op == "shr") {
        in.op = OP_ALU;
        in.alu = op == "add" ? ALU_ADD : op == "sub" ? ALU_SUB : op == "mul" ? ALU_MUL : op == "and" ? ALU_AND
               : op == "or" ? ALU_OR : op == "xor" ? ALU_XOR : op == "shl" ? ALU_SHL : ALU_SHR;
        if (in.fl) in.op = OP_BAD, in.why = "floating-point arithmetic in PTX is not emulated";
        if (in.ops.size() != 3) in.op = OP_BAD, in.why = "takes three operands";
    } else if (op == "setp") in.op = OP_SETP, in.cmp = in.part.size() > 1 ? in.part[1] : "";
    else if (op == "selp") in.op = OP_SELP;
    else if (op == "ld" && in.shared) in.op = OP_LDS;
    else if (op == "st" && in.shared) in.op = OP_STS;
    else if (op == "bar" || op == "barrier") in.op = OP_BAR;
    else if (op == "cp" && in.part.size() > 1 && in.part[1] == "async") {
        if (has(in, "commit_group")) in.op = OP_CP_COMMIT;
        else if (has(in, "wait_group")) in.op = OP_CP_WAIT;
        else if (has(in, "wait_all")) in.op = OP_CP_WAITALL;
        else if (has(in, "bulk")) in.op = OP_BAD, in.why = "cp.async.bulk (TMA) is not emulated";
        else in.op = OP_CP_ASYNC, in.cg = has(in, "cg");
    } else if (op == "ldmatrix") {
        in.op = OP_LDMATRIX;
        in.nm = has(in, "x4") ? 4 : has(in, "x2") ? 2 : has(in, "x1") ? 1 : 0;
        in.trans = has(in, "trans");
        if (!has(in, "m8n8") || !has(in, "b16")) in.op = OP_BAD, in.why = "only the m8n8 .b16 shape is emulated";
        else if (!in.nm || in.ops.size() != 2 || in.ops[0].kind != O_VEC || (int)in.ops[0].sub.size() != in.nm)
            in.op = OP_BAD, in.why = "needs {d...} with one register per matrix, and [addr]";
    } else if (op == "mma") {
        // mma.sync.aligned.m16n8k16.row.col.dtype.atype.btype.ctype d, a, b, c
        in.op = OP_MMA;
        in.mk = has(in, "m16n8k16") ? 16 : has(in, "m16n8k8") ? 8 : 0;
        std::vector<std::string> ty;
        for (const std::string &p : in.part)
            if (p == "f16" || p == "bf16" || p == "f32") ty.push_back(p);
        if (!in.mk || !has(in, "row") || !has(in, "col")) in.op = OP_BAD, in.why = "only m16n8k16 / m16n8k8 .row.col are emulated";
        else if (ty.size() != 4 || ty[1] != ty[2] || ty[1] == "f32") in.op = OP_BAD, in.why = "types must be .dtype.f16|bf16.f16|bf16.ctype";
        else {
            in.m_bf16 = ty[1] == "bf16", in.m_accf16 = ty[0] == "f16", in.m_cf16 = ty[3] == "f16";
            const size_t na = in.mk == 16 ? 4 : 2, nb = in.mk == 16 ? 2 : 1, nd = in.m_accf16 ? 2 : 4, nc = in.m_cf16 ? 2 : 4;
            if (in.m_bf16 && (in.m_accf16 || in.m_cf16)) in.op = OP_BAD, in.why = "bf16 inputs accumulate in f32";
            else if (in.ops.size() != 4 || in.ops[0].sub.size() != nd || in.ops[1].sub.size() != na ||
                     in.ops[2].sub.size() != nb || in.ops[3].sub.size() != nc)
                in.op = OP_BAD, in.why = "operand vectors of the wrong length";
        }
    } else if (op == "wgmma") {
        in.op = OP_WGMMA;
        if (has(in, "fence")) in.wg_what = 0;
        else if (has(in, "commit_group")) in.wg_what = 2;
        else if (has(in, "wait_group")) {
            in.wg_what = 3;
            if (in.ops.size() != 1) in.op = OP_BAD, in.why = "wait_group takes one immediate";
        } else if (has(in, "mma_async")) {
            in.wg_what = 1;
            for (const std::string &p : in.part)
                if (p.size() > 5 && p.compare(0, 4, "m64n") == 0 && p.find("k16") != std::string::npos) in.wg_n = atoi(p.c_str() + 4);
            bool f32 = false, f16 = false, bf = false;
            for (const std::string &p : in.part) f32 |= p == "f32", f16 |= p == "f16", bf |= p == "bf16";
            in.m_bf16 = bf;
            if (in.wg_n < 8 || in.wg_n > 256 || in.wg_n % 8) in.op = OP_BAD, in.why = "only m64nNk16 shapes are emulated";
            else if (!f32 || (!f16 && !bf)) in.op = OP_BAD, in.why = "only .f32 accumulation of .f16/.bf16 operands is emulated";
            else if (in.ops.size() != 8 || in.ops[0].kind != O_VEC || (int)in.ops[0].sub.size() != in.wg_n / 2)
                in.op = OP_BAD, in.why = "needs {d x N/2}, a-desc, b-desc, scale-d, imm-scale-a, imm-scale-b, imm-trans-a, "
                                         "imm-trans-b (A from registers is not emulated)";
        } else in.op = OP_BAD, in.why = "this wgmma instruction is not emulated";
    }
    else if (op == "fence" && has(in, "proxy") && has(in, "async")) in.op = OP_FENCE_PROXY;
    else if (op == "fence" || op == "membar") in.op = OP_NOP; // ordering only: everything here is sequentially consistent
}

static bool is_arg(const Opnd &o, int idx) { return o.kind == O_ARG && o.idx == idx && !o.neg; }

// cvt.f32.f16 %0, %1 / cvt.rn.f16.f32 %0, %1 / { cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }
static void classify(Program &P)
{
    if (!P.error.empty()) return;
    if (P.ins.size() == 1 && P.ins[0].op == OP_CVT && !P.ins[0].guarded && P.ins[0].ops.size() == 2 &&
        is_arg(P.ins[0].ops[0], 0) && is_arg(P.ins[0].ops[1], 1)) {
        const Instr &in = P.ins[0];
        if (in.dfl && in.dbits == 32 && in.sfl && in.sbits == 16) P.fast = FAST_H2F;
        if (in.dfl && in.dbits == 16 && in.sfl && in.sbits == 32) P.fast = FAST_F2H; // decode kept only .rn
    }
    if (P.ins.size() == 2 && P.locals.size() == 1 && P.ins[0].op == OP_CVTA_TO && P.ins[1].op == OP_CVT &&
        !P.ins[0].guarded && !P.ins[1].guarded && P.ins[0].ops.size() == 2 && P.ins[1].ops.size() == 2 &&
        P.ins[0].ops[0].kind == O_LOCAL && is_arg(P.ins[0].ops[1], 1) && is_arg(P.ins[1].ops[0], 0) &&
        P.ins[1].ops[1].kind == O_LOCAL && P.ins[1].dbits == 32 && !P.ins[1].dfl && !P.ins[1].sfl)
        P.fast = FAST_SMEM_ADDR;
}

static Program *parse(const char *tmpl)
{
    Program *P = new Program();
    std::string t;
    // drop comments; braces that open or close a scope separate statements
    for (const char *c = tmpl; *c; c++) {
        if (c[0] == '/' && c[1] == '/') {
            while (*c && *c != '\n') c++;
            if (!*c) break;
            continue;
        }
        t += *c;
    }
    std::string cur;
    int depth = 0; // inside an operand's braces or brackets
    for (size_t i = 0; i < t.size(); i++) {
        char c = t[i];
        if ((c == '{' || c == '}') && depth == 0 && trim(cur).empty()) continue; // scope
        if (c == '{' || c == '[') depth++;
        if (c == '}' || c == ']') depth--;
        if (c == ';' && depth == 0) {
            parse_stmt(*P, cur);
            cur.clear();
            if (!P->error.empty()) return P;
            continue;
        }
        cur += c;
    }
    if (!trim(cur).empty()) parse_stmt(*P, cur);
    classify(*P);
    return P;
}

static std::mutex g_prog_mu;

// Parsed templates, kept for the process (never destroyed, so they stay
// reachable for LeakSanitizer).
static Program *program_for(const char *tmpl)
{
    static auto *progs = new std::unordered_map<const char *, Program *>();
    std::lock_guard<std::mutex> lk(g_prog_mu);
    auto it = progs->find(tmpl);
    if (it != progs->end()) return it->second;
    Program *p = parse(tmpl);
    (*progs)[tmpl] = p;
    return p;
}

// ---- execution state ---------------------------------------------------------------------------------
struct Exec {
    const Program *P;
    const PtxArg *args;
    int nargs;
    // Operands are read from args until written; a written one lives in out[]
    // (bit i of written) and goes back to its variable at the end.
    uint64_t out[160];
    uint64_t written[3];
    bool direct;        // one instruction: inputs are all read before any output is written,
                        // so outputs go straight to their variables
    uint64_t loc[64];
    const char *site;
    const Instr *cur;
};

[[noreturn]] static void bad(Exec &X, const char *what)
{
    kfail(cudaErrorLaunchFailure, X.site, "PTX '%s': %s", X.cur ? X.cur->text.c_str() : "?", what);
}

static inline int arg_index(Exec &X, const Opnd &o)
{
    if (o.kind == O_ARG) return o.idx; // checked against the operand count on entry
    for (int i = 0; i < X.nargs; i++)
        if (X.args[i].name && o.name == X.args[i].name) return i;
    bad(X, "unknown named operand");
}

__attribute__((always_inline)) static inline uint64_t rd(Exec &X, const Opnd &o)
{
    if (o.kind == O_ARG && !o.neg) {
        if (X.direct) return X.args[o.idx].v;
        return (X.written[o.idx >> 6] >> (o.idx & 63)) & 1 ? X.out[o.idx] : X.args[o.idx].v;
    }
    uint64_t v = 0;
    switch (o.kind) {
    case O_ARG:
    case O_NAMED: {
        const int i = arg_index(X, o);
        v = (X.written[i >> 6] >> (i & 63)) & 1 ? X.out[i] : X.args[i].v;
        break;
    }
    case O_LOCAL: v = X.loc[o.idx]; break;
    case O_IMM: v = (uint64_t)o.imm; break;
    case O_SPECIAL: {
        Thread *t = cur_thread();
        v = o.idx == SP_LANEID ? (uint64_t)t->lane : o.idx == SP_WARPID ? (uint64_t)t->warp
          : o.idx == SP_TIDX ? t->v.tid.x : o.idx == SP_TIDY ? t->v.tid.y : t->v.tid.z;
        break;
    }
    default: bad(X, "operand of the wrong kind");
    }
    return o.neg ? (uint64_t)!v : v;
}

__attribute__((always_inline)) static inline void wr(Exec &X, const Opnd &o, uint64_t v)
{
    if (o.kind == O_ARG || o.kind == O_NAMED) {
        int i = arg_index(X, o);
        if (X.args[i].dir == 0) bad(X, "writes an input operand");
        if (X.direct) {
            memcpy(X.args[i].p, &v, X.args[i].size);
            return;
        }
        X.out[i] = v;
        X.written[i >> 6] |= 1ull << (i & 63);
    } else if (o.kind == O_LOCAL) X.loc[o.idx] = v;
    else bad(X, "destination is not a register");
}

static uint64_t mem_addr(Exec &X, const Opnd &o)
{
    if (o.kind != O_MEM) bad(X, "expected a [memory] operand");
    return rd(X, o.sub[0]) + (uint64_t)o.imm;
}

static uint64_t mask_bits(uint64_t v, int bits) { return bits >= 64 ? v : v & ((1ull << bits) - 1); }
static int64_t sext(uint64_t v, int bits) { return bits >= 64 ? (int64_t)v : (int64_t)(v << (64 - bits)) >> (64 - bits); }

// ---- cp.async -----------------------------------------------------------------------------------------------
static void check_chunk_write(Exec &X, Thread &t, uint32_t win, const char *what)
{
    Block &b = *g_sched.B;
    Chunk &c = chunk_at(win & ~15u);
    if (c.pending >= 0 && c.pending != t.lin)
        kfail(cudaErrorLaunchFailure, X.site, "%s into shared 0x%x while thread %d's cp.async into the same 16 bytes is "
              "still in flight", what, win, c.pending);
    if (c.read_epoch == b.epoch && (c.read_warps & ~(1u << t.warp)))
        kfail(cudaErrorLaunchFailure, X.site, "%s overwrites shared 0x%x, which warp(s) 0x%x read since the last "
              "barrier: a __syncthreads is missing between those reads and this refill", what, win,
              c.read_warps & ~(1u << t.warp));
    if (c.wg_reads > 0)
        kfail(cudaErrorLaunchFailure, X.site, "%s overwrites shared 0x%x, which an unfinished wgmma reads (its "
              "wgmma.wait_group has not run)", what, win);
}

static void cp_async(Exec &X, const Instr &in)
{
    Thread &t = *cur_thread();
    if (in.ops.size() < 3) bad(X, "needs [dst], [src], cp-size");
    const bool cg = in.cg;
    const uint64_t dst_a = mem_addr(X, in.ops[0]);
    const uint64_t src_a = mem_addr(X, in.ops[1]);
    const int size = (int)rd(X, in.ops[2]);
    const int src_bytes = in.ops.size() > 3 && in.ops[3].kind != O_NONE ? (int)rd(X, in.ops[3]) : size;
    if (cg ? size != 16 : (size != 4 && size != 8 && size != 16)) bad(X, "cp-size must be 16 for .cg, 4/8/16 for .ca");
    if (src_bytes < 0 || src_bytes > size) bad(X, "src-size larger than cp-size");
    const uint32_t dst = in.shared ? (uint32_t)dst_a : smem_window((void *)dst_a, X.site);
    if (dst % (uint32_t)size)
        kfail(cudaErrorMisalignedAddress, X.site, "cp.async destination 0x%x is not %d-byte aligned", dst, size);
    if (src_a % (uint64_t)size)
        kfail(cudaErrorMisalignedAddress, X.site, "cp.async source %p is not %d-byte aligned", (void *)src_a, size);
    uint8_t *dh = smem_host(dst, (size_t)size, X.site, "cp.async destination");
    if (src_bytes > 0 && !mem_find((const void *)src_a, (size_t)src_bytes)) {
        char d[200];
        mem_describe((const void *)src_a, d, sizeof d);
        kfail(cudaErrorIllegalAddress, X.site, "cp.async reads %d bytes at %p: %s", src_bytes, (void *)src_a, d);
    }
    check_chunk_write(X, t, dst, "cp.async");
    AsyncCopy c{dst, dh, (const uint8_t *)src_a, size, src_bytes, t.groups};
    t.copies.push_back(c);
    if (settings().cp_late) chunk_at(dst & ~15u).pending = t.lin;
    else complete_copies(t, UINT32_MAX, X.site); // early: lands at once
}

// ---- ldmatrix -----------------------------------------------------------------------------------------------
struct LdmIn {
    uint64_t addr;
    bool shared; // a .shared window address (else generic)
    int nm;
    bool trans;
    const char *site;
};

static void check_chunk_read(Thread &reader, uint32_t win, const char *site, const char *what, int wg_base_warp = -1)
{
    Block &b = *g_sched.B;
    Chunk &c = chunk_at(win);
    if (c.pending >= 0)
        kfail(cudaErrorLaunchFailure, site, "%s reads shared 0x%x before thread %d's cp.async into it completed (a "
              "cp.async.wait_group is missing)", what, win, c.pending);
    const bool same = wg_base_warp >= 0 ? (c.done_thread / 32 >= wg_base_warp && c.done_thread / 32 < wg_base_warp + 4)
                                        : c.done_thread / 32 == reader.warp;
    if (c.done_thread >= 0 && c.done_epoch == b.epoch && !same)
        kfail(cudaErrorLaunchFailure, site, "%s reads shared 0x%x, which thread %d's cp.async filled after the last "
              "barrier: a __syncthreads is missing between the wait and this read", what, win, c.done_thread);
    if (c.read_epoch != b.epoch) c.read_epoch = b.epoch, c.read_warps = 0;
    if (wg_base_warp >= 0) c.read_warps |= 0xFu << wg_base_warp;
    else c.read_warps |= 1u << reader.warp;
}

static void ldmatrix_compute(Coll &, Thread **lanes, int n)
{
    const LdmIn &l0 = *(const LdmIn *)lanes[0]->cin;
    const int nm = l0.nm;
    uint16_t m[4][8][8];
    for (int i = 0; i < nm; i++)
        for (int r = 0; r < 8; r++) {
            Thread &src = *lanes[8 * i + r];
            const LdmIn &in = *(const LdmIn *)src.cin;
            uint32_t win = in.shared ? (uint32_t)in.addr : smem_window((const void *)in.addr, in.site);
            if (win & 15)
                kfail(cudaErrorMisalignedAddress, in.site, "ldmatrix row address 0x%x from lane %d is not 16-byte aligned",
                      win, src.lane);
            const uint8_t *p = smem_host(win, 16, in.site, "ldmatrix row");
            check_chunk_read(src, win, in.site, "ldmatrix");
            memcpy(m[i][r], p, 16);
        }
    for (int k = 0; k < n; k++) {
        Thread &t = *lanes[k];
        const int l = t.lane;
        uint32_t *out = (uint32_t *)t.cout;
        for (int i = 0; i < nm; i++) {
            uint16_t lo, hi;
            if (!l0.trans) lo = m[i][l / 4][2 * (l % 4)], hi = m[i][l / 4][2 * (l % 4) + 1];
            else lo = m[i][2 * (l % 4)][l / 4], hi = m[i][2 * (l % 4) + 1][l / 4];
            out[i] = (uint32_t)lo | ((uint32_t)hi << 16);
        }
    }
}

static void ldmatrix(Exec &X, const Instr &in)
{
    const int nm = in.nm;
    LdmIn li{mem_addr(X, in.ops[1]), in.shared, nm, in.trans, X.site};
    uint32_t out[4] = {};
    const uint64_t full[2] = {0xffffffffull, 0};
    collective(K_LDMATRIX, X.site, 32, full, &li, out, ldmatrix_compute);
    for (int i = 0; i < nm; i++) wr(X, in.ops[0].sub[(size_t)i], out[i]);
}

// ---- mma.sync -----------------------------------------------------------------------------------------------
struct MmaIn {
    uint32_t a[4], b[2];
    uint32_t c[4];
    int k;            // 16 or 8
    bool bf16, acc_f16, c_f16;
};


static inline float hval(uint16_t h, bool bf16, const float *tab) { return bf16 ? bf16_to_f32(h) : tab[h]; }

static void mma_compute(Coll &, Thread **lanes, int)
{
    const MmaIn &i0 = *(const MmaIn *)lanes[0]->cin;
    const int K = i0.k;
    const bool bf = i0.bf16;
    const float *tab = f16_table();
    float A[16][16], B[16][8], D[16][8];
    for (int l = 0; l < 32; l++) {
        const MmaIn &in = *(const MmaIn *)lanes[l]->cin;
        const int g = l >> 2, t = l & 3;
        A[g][2 * t] = hval((uint16_t)in.a[0], bf, tab), A[g][2 * t + 1] = hval((uint16_t)(in.a[0] >> 16), bf, tab);
        A[g + 8][2 * t] = hval((uint16_t)in.a[1], bf, tab), A[g + 8][2 * t + 1] = hval((uint16_t)(in.a[1] >> 16), bf, tab);
        B[2 * t][g] = hval((uint16_t)in.b[0], bf, tab), B[2 * t + 1][g] = hval((uint16_t)(in.b[0] >> 16), bf, tab);
        if (K == 16) {
            A[g][2 * t + 8] = hval((uint16_t)in.a[2], bf, tab), A[g][2 * t + 9] = hval((uint16_t)(in.a[2] >> 16), bf, tab);
            A[g + 8][2 * t + 8] = hval((uint16_t)in.a[3], bf, tab);
            A[g + 8][2 * t + 9] = hval((uint16_t)(in.a[3] >> 16), bf, tab);
            B[2 * t + 8][g] = hval((uint16_t)in.b[1], bf, tab), B[2 * t + 9][g] = hval((uint16_t)(in.b[1] >> 16), bf, tab);
        }
        if (in.c_f16) {
            D[g][2 * t] = tab[(uint16_t)in.c[0]], D[g][2 * t + 1] = tab[(uint16_t)(in.c[0] >> 16)];
            D[g + 8][2 * t] = tab[(uint16_t)in.c[1]], D[g + 8][2 * t + 1] = tab[(uint16_t)(in.c[1] >> 16)];
        } else {
            D[g][2 * t] = as_f32(in.c[0]), D[g][2 * t + 1] = as_f32(in.c[1]);
            D[g + 8][2 * t] = as_f32(in.c[2]), D[g + 8][2 * t + 1] = as_f32(in.c[3]);
        }
    }
    // D = C + A B, each output summing k in order; f16 (and bf16) products are
    // exact in f32, so each step rounds once, as an fma would
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < K; k++) {
            const float a = A[r][k];
            for (int c = 0; c < 8; c++) D[r][c] += a * B[k][c];
        }
    for (int l = 0; l < 32; l++) {
        const MmaIn &in = *(const MmaIn *)lanes[l]->cin;
        uint32_t *d = (uint32_t *)lanes[l]->cout;
        const int g = l >> 2, t = l & 3;
        if (in.acc_f16) {
            d[0] = f32_to_f16(D[g][2 * t]) | ((uint32_t)f32_to_f16(D[g][2 * t + 1]) << 16);
            d[1] = f32_to_f16(D[g + 8][2 * t]) | ((uint32_t)f32_to_f16(D[g + 8][2 * t + 1]) << 16);
        } else {
            d[0] = (uint32_t)f32_bits(D[g][2 * t]), d[1] = (uint32_t)f32_bits(D[g][2 * t + 1]);
            d[2] = (uint32_t)f32_bits(D[g + 8][2 * t]), d[3] = (uint32_t)f32_bits(D[g + 8][2 * t + 1]);
        }
    }
}

static void mma(Exec &X, const Instr &in)
{
    MmaIn mi{};
    mi.k = in.mk;
    mi.bf16 = in.m_bf16, mi.acc_f16 = in.m_accf16, mi.c_f16 = in.m_cf16;
    const size_t na = in.mk == 16 ? 4 : 2, nb = in.mk == 16 ? 2 : 1, nd = mi.acc_f16 ? 2 : 4, nc = mi.c_f16 ? 2 : 4;
    for (size_t i = 0; i < na; i++) mi.a[i] = (uint32_t)rd(X, in.ops[1].sub[i]);
    for (size_t i = 0; i < nb; i++) mi.b[i] = (uint32_t)rd(X, in.ops[2].sub[i]);
    for (size_t i = 0; i < nc; i++) mi.c[i] = (uint32_t)rd(X, in.ops[3].sub[i]);
    uint32_t d[4] = {};
    const uint64_t full[2] = {0xffffffffull, 0};
    collective(K_MMA, X.site, 32, full, &mi, d, mma_compute);
    for (size_t i = 0; i < nd; i++) wr(X, in.ops[0].sub[i], d[i]);
}

// ---- wgmma ----------------------------------------------------------------------------------------------------
struct WgOp {
    int n;
    uint64_t da, db;
    bool scale_d, bf16;
    int sa, sb;
    std::vector<float *> dst; // [thread][register] of the accumulators
    std::vector<uint32_t> chunks; // shared chunks it reads
    const char *site;
};

// Byte address of element (row, k) of a K-major operand described by desc.
static uint32_t desc_addr(uint64_t desc, int row, int k)
{
    const uint32_t start = (uint32_t)(desc & 0x3FFF) << 4;
    const uint32_t lbo = (uint32_t)((desc >> 16) & 0x3FFF) << 4, sbo = (uint32_t)((desc >> 32) & 0x3FFF) << 4;
    const int mode = (int)(desc >> 62);
    if (mode == 0) // core matrices of 8 rows x 16 bytes
        return start + (uint32_t)(row / 8) * sbo + (uint32_t)(k / 8) * lbo + (uint32_t)(row % 8) * 16 + (uint32_t)(k % 8) * 2;
    const uint32_t width = mode == 1 ? 128 : mode == 2 ? 64 : 32; // bytes per swizzled row
    uint32_t a = start + (uint32_t)(row / 8) * sbo + (uint32_t)(row % 8) * width + (uint32_t)k * 2;
    // XOR the 16-byte chunk index with the row within the swizzle atom
    const uint32_t bits = mode == 1 ? 7 : mode == 2 ? 3 : 1;
    return a ^ (((a >> 7) & bits) << 4);
}

static void wg_read(const WgOp &op, uint64_t desc, int rows, float (*dst)[16], Thread &t, int wg_warp, bool check)
{
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < 16; k++) {
            const uint32_t a = desc_addr(desc, r, k);
            if (a & 1) kfail(cudaErrorMisalignedAddress, op.site, "wgmma descriptor gives an odd address 0x%x", a);
            const uint8_t *p = smem_host(a, 2, op.site, "wgmma operand");
            if (check && (k % 8) == 0) check_chunk_read(t, a & ~15u, op.site, "wgmma", wg_warp);
            uint16_t h;
            memcpy(&h, p, 2);
            dst[r][k] = op.bf16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
}

static void wg_execute(WgOp &op)
{
    static thread_local float A[64][16], B[256][16];
    Thread &t = *cur_thread();
    wg_read(op, op.da, 64, A, t, 0, false);
    wg_read(op, op.db, op.n, B, t, 0, false);
    const int nr = op.n / 2;
    for (int th = 0; th < 128; th++) {
        const int w = th / 32, l = th % 32, g = l / 4, q = l % 4;
        for (int i = 0; i < nr; i++) {
            const int row = 16 * w + g + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + 2 * q + (i & 1);
            float acc = op.scale_d ? *op.dst[(size_t)(th * nr + i)] : 0.f;
            for (int k = 0; k < 16; k++) acc += ((float)op.sa * A[row][k]) * ((float)op.sb * B[col][k]); // exact products
            *op.dst[(size_t)(th * nr + i)] = acc;
        }
    }
}

static void wg_release_reads(WgOp &op)
{
    for (uint32_t c : op.chunks) chunk_at(c).wg_reads--;
}

struct WgIn {
    int what; // 0 fence, 1 mma_async, 2 commit, 3 wait
    int wait_n;
    WgOp op;  // mma_async: this thread's view (descriptors; its own accumulators)
    Exec *X;
    const Opnd *dvec;
};

static void wg_compute(Coll &c, Thread **lanes, int n)
{
    Block &b = *g_sched.B;
    const WgIn &i0 = *(const WgIn *)lanes[0]->cin;
    WgState &ws = b.wg[(size_t)(lanes[0]->lin / 128)];
    if (n != 128) kfail(cudaErrorLaunchFailure, c.site, "wgmma needs all 128 threads of the warpgroup");
    if (i0.what == 0) return;
    if (i0.what == 2) {
        ws.groups.push_back(ws.open);
        ws.open.clear();
        return;
    }
    if (i0.what == 3) {
        while (ws.groups.size() > (size_t)i0.wait_n) {
            for (auto &op : ws.groups.front()) {
                if (settings().cp_late) wg_execute(*op);
                wg_release_reads(*op);
            }
            ws.groups.erase(ws.groups.begin());
        }
        return;
    }
    // mma_async: every thread must name the same operands
    auto op = std::make_shared<WgOp>(i0.op);
    const int nr = op->n / 2;
    op->dst.resize((size_t)(128 * nr));
    for (int th = 0; th < 128; th++) {
        const WgIn &in = *(const WgIn *)lanes[th]->cin;
        if (in.op.da != op->da || in.op.db != op->db || in.op.n != op->n || in.op.scale_d != op->scale_d)
            kfail(cudaErrorLaunchFailure, c.site, "the threads of a warpgroup pass different wgmma descriptors "
                  "(thread %d: 0x%llx/0x%llx, thread 0: 0x%llx/0x%llx)", th, (unsigned long long)in.op.da,
                  (unsigned long long)in.op.db, (unsigned long long)op->da, (unsigned long long)op->db);
        for (int i = 0; i < nr; i++) {
            const int ai = arg_index(*in.X, in.dvec->sub[(size_t)i]);
            op->dst[(size_t)(th * nr + i)] = (float *)in.X->args[ai].p;
            if (!in.X->args[ai].p || in.X->args[ai].size != 4) kfail(cudaErrorLaunchFailure, c.site, "wgmma accumulators must be f32 output operands");
        }
    }
    // the operands' chunks: ordering checks now, overwrite checks until it completes
    Thread &t = *cur_thread();
    const int wg_warp = lanes[0]->lin / 32;
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t d = pass ? op->db : op->da;
        const int rows = pass ? op->n : 64;
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < 16; k += 8) {
                const uint32_t a = desc_addr(d, r, k) & ~15u;
                smem_host(a, 16, c.site, "wgmma operand");
                Chunk &ch = chunk_at(a);
                if (ch.unfenced >= 0)
                    kfail(cudaErrorLaunchFailure, c.site, "wgmma reads shared 0x%x, which thread %d's cp.async wrote "
                          "without a fence.proxy.async after it", a, ch.unfenced);
                check_chunk_read(t, a, c.site, "wgmma", wg_warp);
                ch.wg_reads++;
                op->chunks.push_back(a);
            }
    }
    // The accumulators are computed straight into their variables (op->dst):
    // at wgmma.wait_group (late), or now (early). The asm statement writes
    // nothing back for them: they are not written through wr().
    if (!settings().cp_late) wg_execute(*op);
    ws.open.push_back(op);
}

static void wgmma(Exec &X, const Instr &in)
{
    WgIn wi{};
    wi.X = &X;
    wi.what = in.wg_what;
    if (wi.what == 3) wi.wait_n = (int)rd(X, in.ops[0]);
    if (wi.what == 1) {
        const int n = in.wg_n;
        if (rd(X, in.ops[6]) || rd(X, in.ops[7])) bad(X, "transposed (MN-major) operands are not emulated");
        wi.op.n = n;
        wi.op.da = rd(X, in.ops[1]);
        wi.op.db = rd(X, in.ops[2]);
        wi.op.scale_d = rd(X, in.ops[3]) != 0;
        wi.op.sa = (int)(int64_t)rd(X, in.ops[4]) < 0 ? -1 : 1;
        wi.op.sb = (int)(int64_t)rd(X, in.ops[5]) < 0 ? -1 : 1;
        wi.op.bf16 = in.m_bf16;
        wi.op.site = X.site;
        wi.dvec = &in.ops[0];
    }
    const uint64_t full[2] = {~0ull, ~0ull};
    collective(K_WGMMA, X.site, 128, full, &wi, nullptr, wg_compute);
}

void wg_block_end(Block &b)
{
    for (WgState &ws : b.wg) {
        if (!ws.open.empty() || !ws.groups.empty()) {
            if (!b.L->failed)
                fprintf(stderr, "bgemu: error: kernel %s: a block ended with wgmma operations in flight (a "
                                "wgmma.wait_group is missing)\n", b.L->name ? b.L->name : "?");
            if (!b.L->failed) note_kernel_error(), b.L->failed = true, b.L->err = cudaErrorLaunchFailure;
        }
        ws.open.clear();
        ws.groups.clear();
    }
}

// ---- the rest ------------------------------------------------------------------------------------------------
static uint64_t cvt(const Instr &in, uint64_t a)
{
    const int db = in.dbits, sb = in.sbits;
    if (!in.sfl && !in.dfl) return in.ssg ? mask_bits((uint64_t)sext(a, sb), db) : mask_bits(a, db); // integer widths
    if (in.sfl && sb == 16 && in.dfl && db == 32) return f32_bits(f16_to_f32((uint16_t)a));          // the common ones first
    if (in.sfl && sb == 32 && in.dfl && db == 16) return f32_to_f16(as_f32(a));
    double v;
    if (in.sfl) v = sb == 16 ? f16_to_f32((uint16_t)a) : sb == 32 ? as_f32(a) : as_f64(a);
    else v = in.ssg ? (double)sext(a, sb) : (double)mask_bits(a, sb);
    if (in.dfl) {
        if (db == 16) return f32_to_f16((float)v);
        if (db == 32) return f32_bits((float)v);
        uint64_t r;
        memcpy(&r, &v, 8);
        return r;
    }
    // float -> integer: .rni/.rzi/.rmi/.rpi rounding, saturating like PTX
    if (v != v) return 0;
    double r = in.rnd == 1 ? trunc(v) : in.rnd == 2 ? floor(v) : in.rnd == 3 ? ceil(v) : nearbyint(v);
    if (in.dsg) {
        const double lo = -ldexp(1.0, db - 1), hi = ldexp(1.0, db - 1) - 1;
        r = r < lo ? lo : r > hi ? hi : r;
        return mask_bits((uint64_t)(int64_t)r, db);
    }
    const double hi = ldexp(1.0, db) - 1;
    r = r < 0 ? 0 : r > hi ? hi : r;
    return (uint64_t)r;
}

// setp's comparison on values of one kind (lo/ls/hi/hs are the unsigned names)
template <class V> static bool cmp(const std::string &op, V x, V y)
{
    if (op == "eq") return x == y;
    if (op == "ne") return x != y;
    if (op == "lt" || op == "lo") return x < y;
    if (op == "le" || op == "ls") return x <= y;
    if (op == "gt" || op == "hi") return x > y;
    if (op == "ge" || op == "hs") return x >= y;
    return false;
}

static bool compare(const std::string &op, uint64_t a, uint64_t b, int bits, bool fl, bool sg)
{
    if (fl) return bits == 32 ? cmp<double>(op, as_f32(a), as_f32(b)) : cmp<double>(op, as_f64(a), as_f64(b));
    if (sg) return cmp<int64_t>(op, sext(a, bits), sext(b, bits));
    return cmp<uint64_t>(op, mask_bits(a, bits), mask_bits(b, bits));
}

static void run_instr(Exec &X, const Instr &in)
{
    X.cur = &in;
    if (in.guarded && !rd(X, in.guard)) return;
    Thread *t = cur_thread();
    const int bits = in.bits;
    switch (in.op) {
    case OP_MOV: wr(X, in.ops[0], mask_bits(rd(X, in.ops[1]), bits)); break;
    case OP_CVTA_TO: wr(X, in.ops[0], smem_window((const void *)rd(X, in.ops[1]), X.site)); break;
    case OP_CVTA_FROM:
        wr(X, in.ops[0], (uint64_t)(uintptr_t)smem_host((uint32_t)rd(X, in.ops[1]), 0, X.site, "cvta.shared"));
        break;
    case OP_CVT: wr(X, in.ops[0], cvt(in, rd(X, in.ops[1]))); break;
    case OP_ALU: {
        const uint64_t a = rd(X, in.ops[1]), b = rd(X, in.ops[2]);
        uint64_t r;
        switch (in.alu) {
        case ALU_ADD: r = a + b; break;
        case ALU_SUB: r = a - b; break;
        case ALU_MUL: r = a * b; break;
        case ALU_AND: r = a & b; break;
        case ALU_OR: r = a | b; break;
        case ALU_XOR: r = a ^ b; break;
        case ALU_SHL: r = a << (b & 63); break;
        default: r = in.sg ? (uint64_t)(sext(a, bits) >> (b & 63)) : mask_bits(a, bits) >> (b & 63); break;
        }
        wr(X, in.ops[0], mask_bits(r, bits));
        break;
    }
    case OP_SETP: wr(X, in.ops[0], compare(in.cmp, rd(X, in.ops[1]), rd(X, in.ops[2]), bits, in.fl, in.sg)); break;
    case OP_SELP: wr(X, in.ops[0], rd(X, in.ops[3]) ? rd(X, in.ops[1]) : rd(X, in.ops[2])); break;
    case OP_LDS: {
        const uint32_t a = (uint32_t)mem_addr(X, in.ops[1]);
        const uint8_t *p = smem_host(a, (size_t)bits / 8, X.site, "ld.shared");
        uint64_t v = 0;
        memcpy(&v, p, (size_t)bits / 8);
        wr(X, in.ops[0], v);
        break;
    }
    case OP_STS: {
        const uint32_t a = (uint32_t)mem_addr(X, in.ops[0]);
        check_chunk_write(X, *t, a, "st.shared");
        uint8_t *p = smem_host(a, (size_t)bits / 8, X.site, "st.shared");
        const uint64_t v = rd(X, in.ops[1]);
        memcpy(p, &v, (size_t)bits / 8);
        break;
    }
    case OP_BAR:
        if (!in.ops.empty() && rd(X, in.ops[0]) != 0) bad(X, "only barrier 0 is emulated");
        if (in.ops.size() > 1) bad(X, "barriers with a thread count are not emulated");
        syncthreads_at(X.site);
        break;
    case OP_CP_COMMIT: t->groups++; break;
    case OP_CP_WAIT: complete_copies(*t, (uint32_t)rd(X, in.ops[0]), X.site); break;
    case OP_CP_WAITALL: t->groups++, complete_copies(*t, 0, X.site); break;
    case OP_CP_ASYNC: cp_async(X, in); break;
    case OP_LDMATRIX: ldmatrix(X, in); break;
    case OP_MMA: mma(X, in); break;
    case OP_WGMMA: wgmma(X, in); break;
    case OP_FENCE_PROXY:
        for (uint32_t c : t->unfenced) {
            Chunk &ch = chunk_at(c);
            if (ch.unfenced == t->lin) ch.unfenced = -1;
        }
        t->unfenced.clear();
        break;
    case OP_NOP: break;
    default: bad(X, in.why);
    }
}

// Parsed programs by template address: a small per-thread cache in front of
// the shared table, so the common path takes no lock.
static Program *lookup(const char *tmpl)
{
    static thread_local const char *keys[256];
    static thread_local Program *vals[256];
    const size_t h = ((uintptr_t)tmpl >> 3) & 255;
    if (keys[h] == tmpl) return vals[h];
    Program *p = program_for(tmpl);
    keys[h] = tmpl, vals[h] = p;
    return p;
}

void ptx(const char *tmpl, const char *site, std::initializer_list<PtxArg> args)
{
    if (!cur_thread()) {
        fprintf(stderr, "bgemu: inline PTX executed outside a kernel (%s): %s\n", site ? site : "?", tmpl);
        abort();
    }
    Program *P = lookup(tmpl);
    if (P->fast != FAST_NONE && args.size() == 2) {
        const PtxArg *a = args.begin();
        if (P->fast == FAST_H2F && a[0].dir == 1 && a[0].size == 4) {
            const float f = f16_table()[(uint16_t)a[1].v];
            memcpy(a[0].p, &f, 4);
            return;
        }
        if (P->fast == FAST_F2H && a[0].dir == 1 && a[0].size == 2) {
            const uint16_t h = f32_to_f16(as_f32(a[1].v));
            memcpy(a[0].p, &h, 2);
            return;
        }
        if (P->fast == FAST_SMEM_ADDR && a[0].dir == 1 && a[0].size == 4) {
            const uint32_t w = smem_window((const void *)(uintptr_t)a[1].v, site);
            memcpy(a[0].p, &w, 4);
            return;
        }
    }
    Exec X;
    X.P = P;
    X.args = args.begin();
    X.nargs = (int)args.size();
    X.site = site;
    X.cur = nullptr;
    if (X.nargs > 160) kfail(cudaErrorLaunchFailure, site, "an asm statement with more than 160 operands");
    if (!P->error.empty()) kfail(cudaErrorLaunchFailure, site, "inline PTX: %s", P->error.c_str());
    if (P->max_arg >= X.nargs) kfail(cudaErrorLaunchFailure, site, "inline PTX names %%%d, but the asm statement binds %d operands", P->max_arg, X.nargs);
    X.written[0] = X.written[1] = X.written[2] = 0;
    X.direct = P->ins.size() == 1;
    if (P->locals.size() > 64) kfail(cudaErrorLaunchFailure, site, "an asm statement with more than 64 registers");
    memset(X.loc, 0, sizeof(uint64_t) * P->locals.size());
    for (const Instr &in : P->ins) run_instr(X, in);
    for (int w = 0; w < 3; w++)
        for (uint64_t m = X.written[w]; m; m &= m - 1) {
            const int i = 64 * w + __builtin_ctzll(m);
            memcpy(X.args[i].p, &X.out[i], X.args[i].size);
        }
}

} // namespace bgemu
