/*
 * test_expr.c - label/mask expressions: numbers, precedence and
 * associativity, comparisons and logic, division by zero, unknown column
 * names and malformed text (each error names the position).
 */
#include "util/testutil.h"

#include "../src/data/data.h"

#include <math.h>
#include <string.h>

/* Columns a, b, c, rating, is_click (vars 0..4) in the tests. */
static const char *const names[] = {"a", "b", "c", "rating", "is_click"};

static int resolve(void *ctx, const char *name) {
    int *calls = ctx;
    if (calls) (*calls)++;
    for (int i = 0; i < 5; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

static double eval(const char *text, const double *vars) {
    cr_expr *x = NULL;
    cr_error e;
    cr_err_clear(&e);
    if (cr_expr_parse(&x, text, resolve, NULL, &e) != CR_OK) fail_msg("'%s': %s", text, e.msg);
    double v = cr_expr_eval(x, vars);
    cr_expr_free(x);
    return v;
}

#define EQ(text, vars, want)                                                        \
    do {                                                                            \
        double got_ = eval(text, vars);                                             \
        if (!(got_ == (want))) fail_msg("'%s' = %.17g, expected %.17g", text, got_, \
                                        (double)(want));                            \
    } while (0)

static void parse_fails(const char *text, cr_status want_status, const char *want) {
    cr_expr *x = (cr_expr *)1;
    cr_error e;
    cr_err_clear(&e);
    cr_status s = cr_expr_parse(&x, text, resolve, NULL, &e);
    if (s != want_status) fail_msg("'%s': status %d (%s), expected %d", text, s, e.msg, want_status);
    assert_null(x);
    if (!strstr(e.msg, want)) fail_msg("'%s': message '%s' lacks '%s'", text, e.msg, want);
}

static void test_numbers(void **state) {
    (void)state;
    double v[5] = {0};
    EQ("4", v, 4);
    EQ("0.5", v, 0.5);
    EQ("1e-3", v, 1e-3);
    EQ("2.5E+2", v, 250);
    EQ(".25", v, 0.25);
    EQ("3.", v, 3);
    EQ("  7  ", v, 7);
    EQ("-4", v, -4);
    EQ("--4", v, 4);
}

static void test_precedence(void **state) {
    (void)state;
    double v[5] = {2, 3, 4, 3.5, 1};
    EQ("1 + 2 * 3", v, 7);
    EQ("(1 + 2) * 3", v, 9);
    EQ("10 - 4 - 3", v, 3);         /* left associative */
    EQ("24 / 4 / 2", v, 3);
    EQ("-a * b", v, -6);
    EQ("-(a + b)", v, -5);
    EQ("a - -b", v, 5);
    EQ("2 * -3", v, -6);
    EQ("a + b * c - 1", v, 13);
    EQ("1 + 2 < 4", v, 1);          /* arithmetic binds tighter than comparison */
    EQ("1 < 2 && 3 < 2", v, 0);     /* comparison binds tighter than && */
    EQ("1 || 0 && 0", v, 1);        /* && binds tighter than || */
    EQ("(1 || 0) && 0", v, 0);
    EQ("a<b==1", v, 1);             /* one comparison level, left to right */
    EQ("rating >= 4", v, 0);
    EQ("rating / 5", v, 0.7);
    EQ("(a > 0) * b", v, 3);
    EQ("is_click == 1 || rating >= 4.5", v, 1);
    EQ("((((a))))", v, 2);
}

static void test_comparisons_and_logic(void **state) {
    (void)state;
    double v[5] = {1, 2, 0, 4, -1};
    EQ("a < b", v, 1);
    EQ("b < a", v, 0);
    EQ("a <= 1", v, 1);
    EQ("a > 1", v, 0);
    EQ("a >= 1", v, 1);
    EQ("a == 1", v, 1);
    EQ("a != 1", v, 0);
    EQ("c && a", v, 0);
    EQ("a && is_click", v, 1); /* any non-zero value is true */
    EQ("c || c", v, 0);
    EQ("c || rating", v, 1);
    /* Division by zero yields 0 (documented), never inf or NaN. */
    EQ("a / c", v, 0);
    EQ("a / (b - 2)", v, 0);
    EQ("0 / 0", v, 0);
    /* The same parsed expression over many rows. */
    cr_expr *x;
    cr_error e;
    assert_int_equal(cr_expr_parse(&x, "rating >= 4 && b != 0", resolve, NULL, &e), CR_OK);
    int hits = 0;
    for (int i = 0; i < 100; i++) {
        double row[5] = {0, i % 3, 0, i % 6, 0};
        hits += cr_expr_eval(x, row) == 1.0;
    }
    assert_int_equal(hits, 32); /* i % 6 in {4, 5} (then i % 3 != 0): 16 cycles of 6 */
    cr_expr_free(x);
}

static void test_unknown_names(void **state) {
    (void)state;
    parse_fails("ratin >= 4", CR_ERR_NOT_FOUND, "expression 'ratin >= 4': unknown column 'ratin' at position 0");
    parse_fails("a + zz", CR_ERR_NOT_FOUND, "unknown column 'zz' at position 4");
    /* Names are resolved once, while parsing. */
    int calls = 0;
    cr_expr *x;
    cr_error e;
    assert_int_equal(cr_expr_parse(&x, "a + a * b", resolve, &calls, &e), CR_OK);
    assert_int_equal(calls, 3);
    double v[5] = {1, 2, 0, 0, 0};
    for (int i = 0; i < 10; i++) assert_true(cr_expr_eval(x, v) == 3);
    assert_int_equal(calls, 3);
    cr_expr_free(x);
    /* Without a resolver every name is unknown. */
    x = (cr_expr *)1;
    assert_int_equal(cr_expr_parse(&x, "a", NULL, NULL, &e), CR_ERR_NOT_FOUND);
    assert_null(x);
}

static void test_garbage(void **state) {
    (void)state;
    parse_fails("rating >= ", CR_ERR_PARSE,
                "expression 'rating >= ': expected a number or column name at position 10");
    parse_fails("", CR_ERR_PARSE, "expected a number or column name at position 0 (the end of the text)");
    parse_fails("   ", CR_ERR_PARSE, "at position 3");
    parse_fails("rating 4", CR_ERR_PARSE, "expected an operator or the end at position 7, got '4'");
    parse_fails("(a + b", CR_ERR_PARSE, "expected ')' to close a '(' at position 6");
    parse_fails("a + b)", CR_ERR_PARSE, "unbalanced ')' at position 5");
    parse_fails("a = 1", CR_ERR_PARSE, "'=' is not an operator; use '==' at position 2");
    parse_fails("a & b", CR_ERR_PARSE, "use '&&' at position 2");
    parse_fails("a | b", CR_ERR_PARSE, "use '||' at position 2");
    parse_fails("1e", CR_ERR_PARSE, "malformed number at position 0");
    parse_fails("4abc", CR_ERR_PARSE, "malformed number at position 0");
    parse_fails("1.2.3", CR_ERR_PARSE, "malformed number");
    parse_fails("a * * b", CR_ERR_PARSE, "expected a number or column name at position 4, got '* b'");
    parse_fails("+a", CR_ERR_PARSE, "position 0");
    parse_fails("a $ b", CR_ERR_PARSE, "position 2, got '$ b'");
    parse_fails("inf", CR_ERR_NOT_FOUND, "unknown column 'inf'");
    parse_fails("0x10", CR_ERR_PARSE, "malformed number");
    /* Absurd nesting is refused instead of overflowing a stack. */
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "a");
    parse_fails(deep, CR_ERR_LIMIT, "too deeply nested");
    memset(deep, '-', 200);
    strcpy(deep + 200, "a");
    parse_fails(deep, CR_ERR_LIMIT, "too deeply nested");
    /* ...but reasonable nesting is fine. */
    char ok[200];
    int k = 0;
    for (int i = 0; i < 30; i++) ok[k++] = '(';
    ok[k++] = 'b';
    for (int i = 0; i < 30; i++) ok[k++] = ')';
    ok[k] = 0;
    double v[5] = {0, 9, 0, 0, 0};
    EQ(ok, v, 9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_comparisons_and_logic),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
