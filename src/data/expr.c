/*
 * expr.c - label and mask expressions over columns ("rating >= 4",
 * "(a > 0) * b"): a recursive-descent parser to postfix bytecode and a
 * small stack machine. Evaluation never allocates and never fails.
 */
#include "data.h"

#include <stdlib.h>
#include <string.h>

/* Evaluation uses a fixed stack so it needs no allocation per row; the
 * parser rejects expressions that would need more (they would have to be
 * absurdly nested) and limits recursion the same way. */
#define CR_EXPR_STACK 64
#define CR_EXPR_DEPTH 64
#define CR_EXPR_NAME  128

typedef enum {
    OP_CONST, OP_VAR, OP_NEG,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV,
    OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE,
    OP_AND, OP_OR
} cr_expr_op;

typedef struct cr_expr_ins {
    int    op;
    int    var;   /* OP_VAR */
    double value; /* OP_CONST */
} cr_expr_ins;

struct cr_expr {
    int          n;
    cr_expr_ins *code; /* postfix */
};

typedef struct cr_expr_parser {
    const char     *text;
    const char     *p;
    cr_expr_resolve resolve;
    void           *ctx;
    cr_error       *e;
    cr_expr_ins    *code;
    size_t          n, cap;
    int             sp, max_sp; /* stack height after the code so far */
    int             depth;
} cr_expr_parser;

static size_t ex_pos(const cr_expr_parser *ps, const char *at) { return (size_t)(at - ps->text); }

static void ex_skip(cr_expr_parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

/* Positions are 0-based character offsets into the text. */
static cr_status ex_fail(cr_expr_parser *ps, cr_status s, const char *at, const char *what) {
    if (*at)
        return cr_err(ps->e, s, "expression '%.300s': %s at position %zu, got '%.20s'", ps->text,
                      what, ex_pos(ps, at), at);
    return cr_err(ps->e, s, "expression '%.300s': %s at position %zu (the end of the text)",
                  ps->text, what, ex_pos(ps, at));
}

static cr_status ex_emit(cr_expr_parser *ps, int op, int var, double value) {
    if (ps->n == ps->cap) {
        void *p = ps->code;
        CR_TRY(cr_grow(&p, &ps->cap, ps->n + 1, sizeof *ps->code, ps->e));
        ps->code = p;
    }
    ps->code[ps->n++] = (cr_expr_ins){op, var, value};
    /* Constants and variables push one value, binary operators pop one net. */
    if (op == OP_CONST || op == OP_VAR)
        ps->sp++;
    else if (op != OP_NEG)
        ps->sp--;
    if (ps->sp > ps->max_sp) ps->max_sp = ps->sp;
    if (ps->max_sp > CR_EXPR_STACK)
        return cr_err(ps->e, CR_ERR_LIMIT,
                      "expression '%.300s': too deeply nested (needs more than %d stack slots)",
                      ps->text, CR_EXPR_STACK);
    return CR_OK;
}

static int ex_is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int ex_is_digit(char c) { return c >= '0' && c <= '9'; }

static cr_status ex_or(cr_expr_parser *ps);

/* primary := number | name | '(' or ')' */
static cr_status ex_primary(cr_expr_parser *ps) {
    ex_skip(ps);
    const char *at = ps->p;
    if (*at == '(') {
        ps->p++;
        CR_TRY(ex_or(ps));
        ex_skip(ps);
        if (*ps->p != ')') return ex_fail(ps, CR_ERR_PARSE, ps->p, "expected ')' to close a '('");
        ps->p++;
        return CR_OK;
    }
    if (ex_is_digit(*at) || (*at == '.' && ex_is_digit(at[1]))) {
        /* digits [. digits] [e [+-] digits], checked here so that strtod
         * cannot take hex, "inf" or "nan". */
        const char *q = at;
        while (ex_is_digit(*q)) q++;
        if (*q == '.') {
            q++;
            while (ex_is_digit(*q)) q++;
        }
        if (*q == 'e' || *q == 'E') {
            const char *x = q + 1;
            if (*x == '+' || *x == '-') x++;
            if (!ex_is_digit(*x)) return ex_fail(ps, CR_ERR_PARSE, at, "malformed number");
            while (ex_is_digit(*x)) x++;
            q = x;
        }
        if (ex_is_alpha(*q) || ex_is_digit(*q) || *q == '.')
            return ex_fail(ps, CR_ERR_PARSE, at, "malformed number");
        char tmp[64];
        if ((size_t)(q - at) >= sizeof tmp) return ex_fail(ps, CR_ERR_PARSE, at, "number too long");
        memcpy(tmp, at, (size_t)(q - at));
        tmp[q - at] = 0;
        ps->p = q;
        return ex_emit(ps, OP_CONST, 0, strtod(tmp, NULL));
    }
    if (ex_is_alpha(*at)) {
        const char *q = at;
        while (ex_is_alpha(*q) || ex_is_digit(*q)) q++;
        char name[CR_EXPR_NAME];
        if ((size_t)(q - at) >= sizeof name)
            return ex_fail(ps, CR_ERR_PARSE, at, "column name too long");
        memcpy(name, at, (size_t)(q - at));
        name[q - at] = 0;
        int var = ps->resolve ? ps->resolve(ps->ctx, name) : -1;
        if (var < 0)
            return cr_err(ps->e, CR_ERR_NOT_FOUND,
                          "expression '%.300s': unknown column '%s' at position %zu", ps->text,
                          name, ex_pos(ps, at));
        ps->p = q;
        return ex_emit(ps, OP_VAR, var, 0);
    }
    return ex_fail(ps, CR_ERR_PARSE, at, "expected a number or column name");
}

/* unary := '-' unary | primary   (a leading '+' is not part of the grammar) */
static cr_status ex_unary(cr_expr_parser *ps) {
    ex_skip(ps);
    if (*ps->p != '-') return ex_primary(ps);
    if (++ps->depth > CR_EXPR_DEPTH)
        return cr_err(ps->e, CR_ERR_LIMIT, "expression '%.300s': too deeply nested", ps->text);
    ps->p++;
    CR_TRY(ex_unary(ps));
    ps->depth--;
    return ex_emit(ps, OP_NEG, 0, 0);
}

/* mul := unary (('*' | '/') unary)* */
static cr_status ex_mul(cr_expr_parser *ps) {
    CR_TRY(ex_unary(ps));
    for (;;) {
        ex_skip(ps);
        char c = *ps->p;
        if (c != '*' && c != '/') return CR_OK;
        ps->p++;
        CR_TRY(ex_unary(ps));
        CR_TRY(ex_emit(ps, c == '*' ? OP_MUL : OP_DIV, 0, 0));
    }
}

/* add := mul (('+' | '-') mul)* */
static cr_status ex_add(cr_expr_parser *ps) {
    CR_TRY(ex_mul(ps));
    for (;;) {
        ex_skip(ps);
        char c = *ps->p;
        if (c != '+' && c != '-') return CR_OK;
        ps->p++;
        CR_TRY(ex_mul(ps));
        CR_TRY(ex_emit(ps, c == '+' ? OP_ADD : OP_SUB, 0, 0));
    }
}

/* cmp := add (('<' | '<=' | '>' | '>=' | '==' | '!=') add)*, left to right as in C */
static cr_status ex_cmp(cr_expr_parser *ps) {
    CR_TRY(ex_add(ps));
    for (;;) {
        ex_skip(ps);
        const char *at = ps->p;
        int op;
        if (at[0] == '<' && at[1] == '=') op = OP_LE;
        else if (at[0] == '>' && at[1] == '=') op = OP_GE;
        else if (at[0] == '=' && at[1] == '=') op = OP_EQ;
        else if (at[0] == '!' && at[1] == '=') op = OP_NE;
        else if (at[0] == '<') op = OP_LT;
        else if (at[0] == '>') op = OP_GT;
        else if (at[0] == '=') return ex_fail(ps, CR_ERR_PARSE, at, "'=' is not an operator; use '=='");
        else return CR_OK;
        ps->p += (op == OP_LT || op == OP_GT) ? 1 : 2;
        CR_TRY(ex_add(ps));
        CR_TRY(ex_emit(ps, op, 0, 0));
    }
}

/* and := cmp ('&&' cmp)* */
static cr_status ex_and(cr_expr_parser *ps) {
    CR_TRY(ex_cmp(ps));
    for (;;) {
        ex_skip(ps);
        if (ps->p[0] == '&' && ps->p[1] != '&')
            return ex_fail(ps, CR_ERR_PARSE, ps->p, "'&' is not an operator; use '&&'");
        if (ps->p[0] != '&') return CR_OK;
        ps->p += 2;
        CR_TRY(ex_cmp(ps));
        CR_TRY(ex_emit(ps, OP_AND, 0, 0));
    }
}

/* or := and ('||' and)* */
static cr_status ex_or(cr_expr_parser *ps) {
    if (++ps->depth > CR_EXPR_DEPTH)
        return cr_err(ps->e, CR_ERR_LIMIT, "expression '%.300s': too deeply nested", ps->text);
    CR_TRY(ex_and(ps));
    for (;;) {
        ex_skip(ps);
        if (ps->p[0] == '|' && ps->p[1] != '|')
            return ex_fail(ps, CR_ERR_PARSE, ps->p, "'|' is not an operator; use '||'");
        if (ps->p[0] != '|') break;
        ps->p += 2;
        CR_TRY(ex_and(ps));
        CR_TRY(ex_emit(ps, OP_OR, 0, 0));
    }
    ps->depth--;
    return CR_OK;
}

cr_status cr_expr_parse(cr_expr **out, const char *text, cr_expr_resolve resolve, void *ctx,
                        cr_error *e) {
    *out = NULL;
    cr_expr_parser ps = {.text = text, .p = text, .resolve = resolve, .ctx = ctx, .e = e};
    cr_status s = ex_or(&ps);
    if (s != CR_OK) goto fail;
    ex_skip(&ps);
    if (*ps.p) {
        s = ex_fail(&ps, CR_ERR_PARSE, ps.p,
                    *ps.p == ')' ? "unbalanced ')'" : "expected an operator or the end");
        goto fail;
    }
    CR_ASSERT(ps.sp == 1);
    cr_expr *x = malloc(sizeof *x);
    if (!x) {
        s = cr_err(e, CR_ERR_NOMEM, "expression '%.300s': out of memory", text);
        goto fail;
    }
    x->n = (int)ps.n;
    x->code = ps.code;
    *out = x;
    return CR_OK;
fail:
    free(ps.code);
    return s;
}

/* Comparisons and logic give exactly 1 or 0; any non-zero value is true.
 * Division by zero gives 0 rather than inf or NaN, so that a label such as
 * "clicks / impressions" stays finite on rows without impressions. */
double cr_expr_eval(const cr_expr *x, const double *vars) {
    double st[CR_EXPR_STACK];
    int sp = 0;
    for (const cr_expr_ins *i = x->code, *end = x->code + x->n; i < end; i++) {
        double b;
        switch (i->op) {
        case OP_CONST: st[sp++] = i->value; continue;
        case OP_VAR: st[sp++] = vars[i->var]; continue;
        case OP_NEG: st[sp - 1] = -st[sp - 1]; continue;
        default: break;
        }
        b = st[--sp];
        double *a = &st[sp - 1];
        switch (i->op) {
        case OP_ADD: *a += b; break;
        case OP_SUB: *a -= b; break;
        case OP_MUL: *a *= b; break;
        case OP_DIV: *a = b != 0 ? *a / b : 0; break;
        case OP_LT: *a = *a < b; break;
        case OP_LE: *a = *a <= b; break;
        case OP_GT: *a = *a > b; break;
        case OP_GE: *a = *a >= b; break;
        case OP_EQ: *a = *a == b; break;
        case OP_NE: *a = *a != b; break;
        case OP_AND: *a = (*a != 0) && (b != 0); break;
        case OP_OR: *a = (*a != 0) || (b != 0); break;
        default: CR_ASSERT(0);
        }
    }
    return st[0];
}

void cr_expr_free(cr_expr *x) {
    if (!x) return;
    free(x->code);
    free(x);
}
