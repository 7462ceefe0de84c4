/*
 * test_encode.c - the feature encoder of the data layer (data/encode.c),
 * the one every reader of features calls: each kind of feature from text
 * and from a number, ids looked up (unknown and missing -> row 0), hashed
 * and interned while fitting, a bag from text and from a list giving the
 * same ids, numbers with their default, log1p and the serving range check,
 * and every refusal saying what was expected and what came.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data/config.h"

#define HAS(msg, sub)                                                          \
    do {                                                                       \
        if (!strstr((msg), (sub))) {                                           \
            fprintf(stderr, "message '%s' lacks '%s'\n", (msg), (sub));        \
            fail();                                                            \
        }                                                                      \
    } while (0)

enum { F_USER, F_ITEM, F_TAGS, F_SEEN, F_POP, F_YEAR };

static const char *const cfg =
    "data: {path: x.csv}\n"
    "features:\n"
    "  - {name: user, type: categorical, column: user, dim: 4}\n"
    "  - {name: item, type: categorical, column: item, dim: 4, hash_buckets: 100}\n"
    "  - {name: tags, type: multi, column: tags, dim: 4}\n"
    "  - {name: seen, type: multi, column: seen, sep: \";\", share: user}\n"
    "  - {name: pop, type: numeric, column: pop, transform: log1p_zscore, default: 2}\n"
    "  - {name: year, type: bucketized, column: year, boundaries: [1970, 1990, 2000], dim: 4}\n"
    "tasks:\n"
    "  - {name: click, label: click}\n";

static cr_vocab *vocab_of(const char *const *keys, int n) {
    cr_vocab *v = cr_vocab_new();
    assert_non_null(v);
    for (int i = 0; i < n; i++) assert_int_equal(cr_vocab_add(v, keys[i], strlen(keys[i]), NULL), CR_OK);
    return v;
}

/* The schema above with fitted vocabularies and statistics. */
static void schema(cr_schema *s) {
    cr_yaml_doc *doc = NULL;
    cr_data_cfg d;
    cr_error e = {0};
    assert_int_equal(cr_yaml_load_string(&doc, cfg, "enc.yaml", &e), CR_OK);
    cr_status st = cr_data_config_parse(cr_yaml_root(doc), "enc.yaml", &d, s, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(st, CR_OK);
    cr_yaml_free(doc);
    static const char *const users[] = {"u1", "7"}, *const tags[] = {"a", "b", "c"};
    s->features[F_USER].vocab = vocab_of(users, 2);
    s->features[F_TAGS].vocab = vocab_of(tags, 3);
    cr_feature *pop = &s->features[F_POP];
    pop->mean = 1.5, pop->std = 0.5, pop->lo = 0, pop->hi = log1p(100.0);
}

static void test_ids(void **state) {
    (void)state;
    cr_schema s;
    schema(&s);
    cr_encoder c;
    cr_value v;
    cr_error e = {0};
    int32_t id = -1;
    cr_encoder_init(&c, &s, F_USER, NULL, 1);
    cr_value_text(&v, "u1", 2);
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
    assert_int_equal(id, 1);
    cr_value_text(&v, "nobody", 6); /* unknown -> the OOV row */
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
    assert_int_equal(id, 0);
    cr_value_text(&v, NULL, 0); /* missing */
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
    assert_int_equal(id, 0);
    assert_true(v.missing);
    /* an integral number is its decimal digits, as a CSV field */
    cr_value_number(&v, 7.0);
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
    assert_int_equal(id, 2);
    cr_value_int(&v, 7);
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
    assert_int_equal(id, 2);
    cr_value_number(&v, NAN);
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
    assert_int_equal(id, 0);
    cr_value_number(&v, 7.5);
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_ERR_PARSE);
    HAS(e.msg, "expected an id, got the number 7.5");
    assert_int_equal(v.fail, CR_VALUE_BAD);
    static const char *const two[] = {"u1", "7"};
    cr_value_list(&v, two, 2);
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_ERR_PARSE);
    HAS(e.msg, "expected one value, not a list, got a list of 2 values");
    /* hashed: 1 + FNV-1a % buckets, text or number alike */
    cr_encoder_init(&c, &s, F_ITEM, NULL, 1);
    cr_value_int(&v, 12345);
    assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
    assert_int_equal(id, (int32_t)(1 + cr_hash64("12345", 5) % 100));
    cr_value_text(&v, "12345", 5);
    int32_t id2 = -1;
    assert_int_equal(cr_encode_id(&c, &v, &id2, &e), CR_OK);
    assert_int_equal(id2, id);
    cr_schema_free(&s);
}

static void test_fit_interns(void **state) {
    (void)state;
    cr_schema s;
    schema(&s);
    cr_vocab *fit = cr_vocab_new();
    cr_encoder c;
    cr_encoder_init(&c, &s, F_USER, fit, 0);
    cr_error e = {0};
    cr_value v;
    static const char *const seen[] = {"x", "y", "x", "", "u1"};
    static const int32_t want[] = {1, 2, 1, 0, 3}; /* 1 + first appearance; "" stays 0 */
    for (int i = 0; i < 5; i++) {
        int32_t id = -1;
        cr_value_text(&v, seen[i], strlen(seen[i]));
        assert_int_equal(cr_encode_id(&c, &v, &id, &e), CR_OK);
        assert_int_equal(id, want[i]);
    }
    /* a bag interns its tokens into the same dictionary */
    int32_t *ids = NULL;
    size_t cap = 0;
    int64_t n = 0;
    cr_encoder_init(&c, &s, F_SEEN, fit, 0);
    cr_value_text(&v, "y;z", 3);
    assert_int_equal(cr_encode_bag(&c, &v, &ids, &cap, &n, &e), CR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 4);
    free(ids);
    cr_vocab_free(fit);
    cr_schema_free(&s);
}

static void test_buckets(void **state) {
    (void)state;
    cr_schema s;
    schema(&s);
    cr_encoder c;
    cr_encoder_init(&c, &s, F_YEAR, NULL, 1);
    cr_error e = {0};
    cr_value v;
    int32_t id;
    static const struct { const char *text; double x; int32_t id; } cases[] = {
        {"1960", 1960, 1}, {"1970", 1970, 2}, {"1985", 1985, 2}, {" 1999.5 ", 1999.5, 3},
        {"2005", 2005, 4}, {"", NAN, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_value_text(&v, cases[i].text, strlen(cases[i].text));
        assert_int_equal(cr_encode_bucket(&c, &v, &id, &e), CR_OK);
        assert_int_equal(id, cases[i].id);
        if (!isnan(cases[i].x)) assert_true(v.x == cases[i].x); /* the number read */
        cr_value_number(&v, cases[i].x);
        assert_int_equal(cr_encode_bucket(&c, &v, &id, &e), CR_OK);
        assert_int_equal(id, cases[i].id);
    }
    cr_value_text(&v, "soon", 4);
    assert_int_equal(cr_encode_bucket(&c, &v, &id, &e), CR_ERR_PARSE);
    HAS(e.msg, "expected a number, got 'soon'");
    cr_value_text(&v, "inf", 3);
    assert_int_equal(cr_encode_bucket(&c, &v, &id, &e), CR_ERR_PARSE);
    HAS(v.why, "NaN and infinity are not allowed");
    cr_value_number(&v, INFINITY);
    assert_int_equal(cr_encode_bucket(&c, &v, &id, &e), CR_ERR_PARSE);
    HAS(e.msg, "expected a finite number, got the number inf");
    cr_schema_free(&s);
}

/* The bag of v for feature fi: its ids in *ids (n of them). */
static cr_status bag(const cr_schema *s, int fi, cr_value *v, int32_t **ids, int64_t *n,
                     cr_error *e) {
    cr_encoder c;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    cr_encoder_init(&c, s, fi, NULL, 1);
    return cr_encode_bag(&c, v, ids, &cap, n, e);
}

static void test_bags(void **state) {
    (void)state;
    cr_schema s;
    schema(&s);
    cr_error e = {0};
    cr_value v;
    int32_t *a, *b;
    int64_t na, nb;
    /* text split at the separator, empty tokens skipped, unknown -> 0 */
    cr_value_text(&v, "c|a||zz|", 8);
    assert_int_equal(bag(&s, F_TAGS, &v, &a, &na, &e), CR_OK);
    static const char *const items[] = {"c", "a", "", "zz", NULL};
    cr_value_list(&v, items, 5);
    assert_int_equal(bag(&s, F_TAGS, &v, &b, &nb, &e), CR_OK);
    assert_int_equal(na, 3);
    assert_int_equal(nb, 3);
    static const int32_t want[] = {3, 1, 0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i], want[i]);
        assert_int_equal(b[i], want[i]);
    }
    free(a);
    free(b);
    /* a shared vocabulary, its own separator, and a number as one id */
    cr_value_text(&v, "7;u1", 4);
    assert_int_equal(bag(&s, F_SEEN, &v, &a, &na, &e), CR_OK);
    assert_int_equal(na, 2);
    assert_int_equal(a[0], 2);
    assert_int_equal(a[1], 1);
    free(a);
    cr_value_int(&v, 7);
    assert_int_equal(bag(&s, F_SEEN, &v, &a, &na, &e), CR_OK);
    assert_int_equal(na, 1);
    assert_int_equal(a[0], 2);
    free(a);
    /* missing: text, an empty list */
    cr_value_text(&v, "", 0);
    assert_int_equal(bag(&s, F_TAGS, &v, &a, &na, &e), CR_OK);
    assert_int_equal(na, 0);
    free(a);
    cr_value_list(&v, items, 0);
    assert_int_equal(bag(&s, F_TAGS, &v, &a, &na, &e), CR_OK);
    assert_int_equal(na, 0);
    assert_true(v.missing);
    free(a);
    /* an item is one value: the separator inside it is refused, not split */
    static const char *const joined[] = {"a", "b|c"};
    cr_value_list(&v, joined, 2);
    assert_int_equal(bag(&s, F_TAGS, &v, &a, &na, &e), CR_ERR_PARSE);
    HAS(e.msg, "item 1 ('b|c') holds the separator '|'");
    HAS(e.msg, "got a list of 2 values");
    free(a);
    cr_value_list(&v, NULL, 2);
    assert_int_equal(bag(&s, F_TAGS, &v, &a, &na, &e), CR_ERR_PARSE);
    HAS(e.msg, "expected a list with its items");
    free(a);
    cr_value_number(&v, 2.5);
    assert_int_equal(bag(&s, F_TAGS, &v, &a, &na, &e), CR_ERR_PARSE);
    HAS(e.msg, "expected an id, got the number 2.5");
    free(a);
    cr_schema_free(&s);
}

/* log1p at run time, as the encoder calls it (a constant folded by the
 * compiler may round the other way). */
static double L(double x) {
    volatile double y = x;
    return log1p(y);
}

static void test_numbers(void **state) {
    (void)state;
    cr_schema s;
    schema(&s);
    const cr_feature *f = &s.features[F_POP];
    cr_encoder serve, read;
    cr_encoder_init(&serve, &s, F_POP, NULL, 1);
    cr_encoder_init(&read, &s, F_POP, NULL, 0);
    cr_error e = {0};
    cr_value v;
    double x;
    /* text and number alike; the result is past the log1p; the z-score
     * finishes the transform bit for bit */
    cr_value_text(&v, "3", 1);
    assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_OK);
    assert_true(x == L(3.0));
    float t = cr_feature_zscore(f, x);
    assert_true(t == cr_feature_transform(f, 3.0));
    assert_true(t == (float)((L(3.0) - 1.5) / 0.5));
    cr_value_number(&v, 3.0);
    assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_OK);
    assert_true(x == L(3.0));
    cr_value_int(&v, 3);
    assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_OK);
    assert_true(x == L(3.0));
    /* missing: empty or blank text, NaN -> the default (2) */
    static const char *const blanks[] = {"", "  "};
    for (int i = 0; i < 2; i++) {
        cr_value_text(&v, blanks[i], strlen(blanks[i]));
        assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_OK);
        assert_true(x == L(2.0));
        assert_true(v.missing);
    }
    cr_value_number(&v, NAN);
    assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_OK);
    assert_true(x == L(2.0));
    /* below log1p's domain, whichever way read */
    cr_value_text(&v, "-5", 2);
    assert_int_equal(cr_encode_number(&read, &v, &x, &e), CR_ERR_PARSE);
    assert_int_equal(v.fail, CR_VALUE_LOG1P);
    HAS(e.msg, "expected a number >= -1 (the transform takes log1p), got '-5'");
    /* far outside the training range: refused when serving, read from a file */
    cr_value_number(&v, 1e300);
    assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_ERR_PARSE);
    assert_int_equal(v.fail, CR_VALUE_RANGE);
    HAS(e.msg, "expected a number from");
    HAS(e.msg, "got the number 1e+300");
    cr_value_number(&v, 1e300);
    assert_int_equal(cr_encode_number(&read, &v, &x, &e), CR_OK);
    assert_true(x == L(1e300));
    cr_value_text(&v, "lots", 4);
    assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_ERR_PARSE);
    HAS(e.msg, "expected a number, got 'lots'");
    assert_string_equal(v.why, "expected a number");
    static const char *const one[] = {"3"};
    cr_value_list(&v, one, 1);
    assert_int_equal(cr_encode_number(&serve, &v, &x, &e), CR_ERR_PARSE);
    HAS(e.msg, "not a list");
    cr_schema_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),     cmocka_unit_test(test_fit_interns),
        cmocka_unit_test(test_buckets), cmocka_unit_test(test_bags),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
