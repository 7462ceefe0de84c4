/*
 * test_yaml.c - the YAML tree (positions, kinds, nulls), its typed getters
 * and their messages: wrong types, out-of-range values, unknown and missing
 * keys, malformed YAML, anchors, duplicate keys. Messages are checked by
 * substring because users read them.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../src/core/yaml.h"

#define HAS(msg, sub)                                                          \
    do {                                                                       \
        if (!strstr((msg), (sub))) {                                           \
            fprintf(stderr, "message '%s' lacks '%s'\n", (msg), (sub));        \
            fail();                                                            \
        }                                                                      \
    } while (0)

static cr_yaml_doc *load_ok(const char *text) {
    cr_yaml_doc *d = NULL;
    cr_error e;
    cr_err_clear(&e);
    cr_status s = cr_yaml_load_string(&d, text, "t.yaml", &e);
    if (s != CR_OK) fprintf(stderr, "load failed: %s\n", e.msg);
    assert_int_equal(s, CR_OK);
    return d;
}

static void test_tree_positions(void **state) {
    (void)state;
    cr_yaml_doc *d = load_ok("model:\n"
                             "  type: mmoe\n"
                             "  experts: 4\n"
                             "list: [1, 2, 3]\n"
                             "empty:\n"
                             "quoted: \"\"\n"
                             "seq:\n"
                             "  - {a: 1}\n"
                             "  - b\n");
    const cr_yaml_node *r = cr_yaml_root(d);
    assert_int_equal(r->kind, CR_YAML_MAP);
    assert_int_equal(r->n, 5);
    const cr_yaml_node *m = cr_yaml_get(r, "model");
    assert_non_null(m);
    assert_int_equal(m->kind, CR_YAML_MAP);
    const cr_yaml_node *ex = cr_yaml_get(m, "experts");
    assert_int_equal(ex->line, 3);
    assert_int_equal(ex->col, 12);
    assert_string_equal(ex->value, "4");
    assert_string_equal(ex->file, "t.yaml");
    assert_int_equal(m->keys[1]->line, 3);
    assert_int_equal(m->keys[1]->col, 3);
    const cr_yaml_node *l = cr_yaml_get(r, "list");
    assert_int_equal(l->kind, CR_YAML_SEQ);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->items[2]->value, "3");
    assert_true(cr_yaml_is_null(cr_yaml_get(r, "empty")));
    assert_false(cr_yaml_is_null(cr_yaml_get(r, "quoted")));
    const cr_yaml_node *sq = cr_yaml_get(r, "seq");
    assert_int_equal(sq->n, 2);
    assert_int_equal(sq->items[0]->kind, CR_YAML_MAP);
    assert_int_equal(sq->items[1]->line, 9);
    assert_null(cr_yaml_get(r, "nope"));
    assert_null(cr_yaml_get(l, "x")); /* not a map */
    cr_yaml_free(d);
}

static void test_typed_getters(void **state) {
    (void)state;
    cr_yaml_doc *d = load_ok("dim: 16\nlr: 1e-3\nneg: -2\nflag: yes\npool: mean\n"
                             "name: click\nbounds: [1970, 1990.5, 2000]\n"
                             "ids: [3, 4]\nnames: [a, bb]\nnull_dim: ~\n");
    const cr_yaml_node *r = cr_yaml_root(d);
    cr_error e;
    int64_t i64;
    int i32, b, en, n;
    double x, arr[4];
    int64_t iarr[4];
    char s[16], strs[3][8];
    static const char *const pools[] = {"sum", "mean", NULL};
    assert_int_equal(cr_yaml_int(r, "dim", "", 1, 0, 1, INT64_MAX, &i64, &e), CR_OK);
    assert_int_equal(i64, 16);
    assert_int_equal(cr_yaml_int32(r, "neg", "", 1, 0, -5, 5, &i32, &e), CR_OK);
    assert_int_equal(i32, -2);
    assert_int_equal(cr_yaml_double(r, "lr", "", 1, 0, 0, INFINITY, &x, &e), CR_OK);
    assert_true(fabs(x - 1e-3) < 1e-15);
    assert_int_equal(cr_yaml_bool(r, "flag", "", 1, 0, &b, &e), CR_OK);
    assert_int_equal(b, 1);
    assert_int_equal(cr_yaml_enum(r, "pool", "", 1, 0, pools, &en, &e), CR_OK);
    assert_int_equal(en, 1);
    assert_int_equal(cr_yaml_str(r, "name", "", 1, NULL, s, sizeof s, &e), CR_OK);
    assert_string_equal(s, "click");
    assert_int_equal(cr_yaml_doubles(r, "bounds", "", 1, -INFINITY, INFINITY, arr, 4, &n, &e),
                     CR_OK);
    assert_int_equal(n, 3);
    assert_true(arr[1] == 1990.5);
    assert_int_equal(cr_yaml_ints(r, "ids", "", 1, 0, 10, iarr, 4, &n, &e), CR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(iarr[1], 4);
    assert_int_equal(cr_yaml_strs(r, "names", "", 1, &strs[0][0], 8, 3, &n, &e), CR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(strs[1], "bb");
    /* Defaults: absent keys and explicit nulls. */
    assert_int_equal(cr_yaml_int(r, "absent", "", 0, 7, 1, 10, &i64, &e), CR_OK);
    assert_int_equal(i64, 7);
    assert_int_equal(cr_yaml_int(r, "null_dim", "", 0, 9, 1, 10, &i64, &e), CR_OK);
    assert_int_equal(i64, 9);
    assert_int_equal(cr_yaml_str(r, "absent", "", 0, "dflt", s, sizeof s, &e), CR_OK);
    assert_string_equal(s, "dflt");
    assert_int_equal(cr_yaml_doubles(r, "absent", "", 0, 0, 1, arr, 4, &n, &e), CR_OK);
    assert_int_equal(n, 0);
    /* A NULL map is an empty map. */
    assert_int_equal(cr_yaml_bool(NULL, "flag", "x", 0, 1, &b, &e), CR_OK);
    assert_int_equal(b, 1);
    cr_yaml_free(d);
}

static void test_getter_errors(void **state) {
    (void)state;
    cr_yaml_doc *d = load_ok("features:\n"
                             "  - name: user\n"
                             "    dim: abc\n"
                             "    big: 99999999999999999999999\n"
                             "    zero: 0\n"
                             "    frac: 1.5\n"
                             "    pool: avg\n"
                             "    on: maybe\n"
                             "    sub: {a: 1}\n"
                             "    list: [1, x]\n"
                             "    long: abcdefghijklmnopqrstuvwxyz\n"
                             "    hex: 0x10\n"
                             "    nan: .nan\n"
                             "    req:\n");
    const cr_yaml_node *f = cr_yaml_get(cr_yaml_root(d), "features")->items[0];
    cr_error e;
    int64_t i64;
    int i32, n;
    double x, arr[4];
    char s[8];
    static const char *const pools[] = {"sum", "mean", NULL};
    assert_int_equal(cr_yaml_int(f, "dim", "features[3]", 1, 0, 1, INT64_MAX, &i64, &e),
                     CR_ERR_CONFIG);
    assert_string_equal(e.msg, "t.yaml:3:10: features[3].dim: expected a positive integer, "
                               "got 'abc'");
    assert_int_equal(cr_yaml_int(f, "big", "f", 1, 0, INT64_MIN, INT64_MAX, &i64, &e),
                     CR_ERR_CONFIG);
    HAS(e.msg, "t.yaml:4:10: f.big: expected an integer, got '9999");
    assert_int_equal(cr_yaml_int32(f, "zero", "f", 1, 0, 1, 64, &i32, &e), CR_ERR_CONFIG);
    HAS(e.msg, "f.zero: expected an integer in [1, 64], got '0'");
    assert_int_equal(cr_yaml_double(f, "frac", "f", 1, 0, 0, 1, &x, &e), CR_ERR_CONFIG);
    HAS(e.msg, "t.yaml:6:11: f.frac: expected a number in [0, 1], got '1.5'");
    assert_int_equal(cr_yaml_enum(f, "pool", "f", 1, 0, pools, &i32, &e), CR_ERR_CONFIG);
    HAS(e.msg, "f.pool: expected one of: sum, mean; got 'avg'");
    assert_int_equal(cr_yaml_bool(f, "on", "f", 1, 0, &i32, &e), CR_ERR_CONFIG);
    HAS(e.msg, "f.on: expected true or false, got 'maybe'");
    assert_int_equal(cr_yaml_int(f, "sub", "f", 1, 0, 0, 5, &i64, &e), CR_ERR_CONFIG);
    HAS(e.msg, "t.yaml:9:10: f.sub: expected an integer in [0, 5], got a mapping");
    assert_int_equal(cr_yaml_doubles(f, "list", "f", 1, -INFINITY, INFINITY, arr, 4, &n, &e),
                     CR_ERR_CONFIG);
    HAS(e.msg, "t.yaml:10:15: f.list[1]: expected a number, got 'x'");
    assert_int_equal(cr_yaml_doubles(f, "dim", "f", 1, -INFINITY, INFINITY, arr, 4, &n, &e),
                     CR_ERR_CONFIG);
    HAS(e.msg, "f.dim: expected a sequence, got 'abc'");
    assert_int_equal(cr_yaml_doubles(f, "list", "f", 1, -INFINITY, INFINITY, arr, 1, &n, &e),
                     CR_ERR_CONFIG);
    HAS(e.msg, "expected at most 1 items, got 2");
    assert_int_equal(cr_yaml_str(f, "long", "f", 1, NULL, s, sizeof s, &e), CR_ERR_CONFIG);
    HAS(e.msg, "f.long: expected at most 7 characters, got 26");
    assert_int_equal(cr_yaml_int(f, "hex", "f", 1, 0, INT64_MIN, INT64_MAX, &i64, &e),
                     CR_ERR_CONFIG);
    assert_int_equal(cr_yaml_double(f, "hex", "f", 1, 0, -INFINITY, INFINITY, &x, &e),
                     CR_ERR_CONFIG);
    assert_int_equal(cr_yaml_double(f, "nan", "f", 1, 0, -INFINITY, INFINITY, &x, &e),
                     CR_ERR_CONFIG);
    /* Missing required key: reported at the map's position. */
    assert_int_equal(cr_yaml_str(f, "column", "features[0]", 1, NULL, s, sizeof s, &e),
                     CR_ERR_CONFIG);
    assert_string_equal(e.msg, "t.yaml:2:5: features[0]: missing required key 'column'");
    assert_int_equal(cr_yaml_str(f, "req", "f", 1, NULL, s, sizeof s, &e), CR_ERR_CONFIG);
    HAS(e.msg, "f.req: a value is required");
    cr_yaml_free(d);
}

static void test_unknown_keys(void **state) {
    (void)state;
    cr_yaml_doc *d = load_ok("model:\n  type: mmoe\n  expert: 4\n");
    const cr_yaml_node *m = cr_yaml_get(cr_yaml_root(d), "model");
    static const char *const keys[] = {"type", "experts", "tower", NULL};
    static const char *const more[] = {"type", "expert", NULL};
    cr_error e;
    assert_int_equal(cr_yaml_check_keys(m, keys, "model", &e), CR_ERR_CONFIG);
    assert_string_equal(e.msg, "t.yaml:3:3: model: unknown key 'expert'; expected one of: "
                               "type, experts, tower");
    assert_int_equal(cr_yaml_check_keys(m, more, "model", &e), CR_OK);
    assert_int_equal(cr_yaml_check_keys(NULL, keys, "model", &e), CR_OK);
    assert_int_equal(cr_yaml_check_keys(m->items[0], keys, "model.type", &e), CR_ERR_CONFIG);
    HAS(e.msg, "model.type: expected a mapping, got 'mmoe'");
    cr_yaml_free(d);
}

static void test_malformed(void **state) {
    (void)state;
    cr_yaml_doc *d = NULL;
    cr_error e;
    assert_int_equal(cr_yaml_load_string(&d, "a: [1, 2\nb: 3\n", "bad.yaml", &e), CR_ERR_PARSE);
    assert_null(d);
    HAS(e.msg, "bad.yaml:");
    HAS(e.msg, "malformed YAML");
    assert_int_equal(cr_yaml_load_string(&d, "a: 1\n  b: 2\n", "bad.yaml", &e), CR_ERR_PARSE);
    HAS(e.msg, "bad.yaml:2:");
    assert_int_equal(cr_yaml_load_string(&d, "a: &x 1\nb: *x\n", "al.yaml", &e), CR_ERR_PARSE);
    HAS(e.msg, "al.yaml:1:4: anchors and aliases");
    assert_int_equal(cr_yaml_load_string(&d, "a: 1\nb: 2\na: 3\n", "dup.yaml", &e),
                     CR_ERR_PARSE);
    HAS(e.msg, "dup.yaml:3:1: duplicate key 'a' (first at line 1)");
    assert_int_equal(cr_yaml_load_string(&d, "a: 1\n---\nb: 2\n", "two.yaml", &e),
                     CR_ERR_PARSE);
    HAS(e.msg, "two.yaml:2:1: expected a single YAML document");
    assert_int_equal(cr_yaml_load_string(&d, "? [a]\n: 1\n", "k.yaml", &e), CR_ERR_PARSE);
    HAS(e.msg, "mapping keys must be plain strings");
    /* Deep nesting is refused, not recursed into without bound. */
    char deep[400];
    memset(deep, '[', 200);
    deep[200] = 0;
    assert_int_not_equal(cr_yaml_load_string(&d, deep, "deep.yaml", &e), CR_OK);
    /* Empty text is a null document, not an error. */
    assert_int_equal(cr_yaml_load_string(&d, "", "empty.yaml", &e), CR_OK);
    assert_true(cr_yaml_is_null(cr_yaml_root(d)));
    cr_yaml_free(d);
}

static void test_load_file(void **state) {
    (void)state;
    char dir[256], path[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x: 1\ny: [a, b]\n", f);
    fclose(f);
    cr_yaml_doc *d = NULL;
    cr_error e;
    assert_int_equal(cr_yaml_load(&d, path, &e), CR_OK);
    const cr_yaml_node *y = cr_yaml_get(cr_yaml_root(d), "y");
    assert_string_equal(y->file, path);
    assert_int_equal(y->n, 2);
    cr_yaml_free(d);
    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    assert_int_equal(cr_yaml_load(&d, path, &e), CR_ERR_IO);
    HAS(e.msg, "missing.yaml");
    cr_test_rmdir(dir);
}

static void test_paths(void **state) {
    (void)state;
    char b[64];
    cr_yaml_path_index(b, sizeof b, "features", 3);
    assert_string_equal(b, "features[3]");
    cr_yaml_path_key(b, sizeof b, "features[3]", "dim");
    assert_string_equal(b, "features[3].dim");
    cr_yaml_path_key(b, sizeof b, "", "data");
    assert_string_equal(b, "data");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_positions), cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_getter_errors),  cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
