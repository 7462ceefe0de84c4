/*
 * test_schema.c - the data/features/tasks config sections (the documented
 * example and every validation message), vocabularies (min_count, caps,
 * OOV, determinism) and the schema's JSON round trip with vocabularies.
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

static const char *const example =
    "data:\n"
    "  path: impressions.csv\n"
    "  split: {by: time, column: timestamp, valid: 0.1, test: 0.2}\n"
    "  group: request_id\n"
    "  user: user_id\n"
    "  weight: w\n"
    "  slices: [new_release]\n"
    "  extra: [teacher_click]\n"
    "features:\n"
    "  - {name: user, type: categorical, column: user_id, dim: 16, min_count: 2}\n"
    "  - {name: item, type: categorical, column: movie_id, dim: 16, hash_buckets: 10000}\n"
    "  - {name: genres, type: multi, column: genres, sep: \"|\", dim: 8, pooling: mean}\n"
    "  - {name: last_items, type: multi, column: last_items, sep: \"|\", share: item}\n"
    "  - {name: hist_count, type: numeric, column: hist_count, transform: log1p_zscore, "
    "default: 0}\n"
    "  - {name: year, type: bucketized, column: year, boundaries: [1970, 1990, 2000], dim: 4}\n"
    "tasks:\n"
    "  - {name: click, type: binary, label: click}\n"
    "  - {name: like, type: binary, label: \"rating >= 4\", mask: click, weight: 1.0}\n"
    "  - {name: engagement, type: regression, label: \"rating / 5\", mask: click}\n"
    "model: {anything: goes}\n"
    "train: {epochs: 3}\n";

/* Parse text as "conf/ranker.yaml"; returns the status, leaves e set. */
static cr_status parse(const char *text, cr_data_cfg *d, cr_schema *s, cr_error *e) {
    cr_yaml_doc *doc = NULL;
    cr_status st = cr_yaml_load_string(&doc, text, "conf/ranker.yaml", e);
    if (st == CR_OK) st = cr_data_config_parse(cr_yaml_root(doc), "conf/ranker.yaml", d, s, e);
    cr_yaml_free(doc);
    return st;
}

static void test_example_config(void **state) {
    (void)state;
    cr_data_cfg d;
    cr_schema s;
    cr_error e;
    cr_status st = parse(example, &d, &s, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(st, CR_OK);
    assert_string_equal(d.path, "conf/impressions.csv");
    assert_int_equal(d.split, CR_SPLIT_TIME);
    assert_string_equal(d.split_column, "timestamp");
    assert_true(d.valid_frac == 0.1 && d.test_frac == 0.2);
    assert_string_equal(d.group_column, "request_id");
    assert_string_equal(d.user_column, "user_id");
    assert_string_equal(d.weight_column, "w");
    assert_int_equal(d.n_slices, 1);
    assert_string_equal(d.slices[0], "new_release");
    assert_int_equal(d.n_extra, 1);
    assert_string_equal(d.extra[0], "teacher_click");

    assert_int_equal(s.n_features, 6);
    const cr_feature *f = s.features;
    assert_int_equal(f[0].kind, CR_FEAT_CATEGORICAL);
    assert_string_equal(f[0].column, "user_id");
    assert_int_equal(f[0].min_count, 2);
    assert_int_equal(f[1].hash_buckets, 10000);
    assert_int_equal(f[1].rows, 10001);
    assert_int_equal(f[2].kind, CR_FEAT_MULTI);
    assert_int_equal(f[2].sep, '|');
    assert_int_equal(f[2].pooling, CR_POOL_MEAN);
    assert_string_equal(f[3].share, "item");
    assert_int_equal(f[3].dim, 16); /* inherited */
    assert_int_equal(f[3].hash_buckets, 10000);
    assert_int_equal(f[4].transform, CR_TX_LOG1P_ZSCORE);
    assert_int_equal(f[5].kind, CR_FEAT_BUCKET);
    assert_int_equal(f[5].n_boundaries, 3);
    assert_int_equal(f[5].rows, 5);

    /* Derived slots: categorical + bucket, multi, dense; tables after sharing. */
    assert_int_equal(s.n_cat, 3);
    assert_int_equal(s.cat_feat[0], 0);
    assert_int_equal(s.cat_feat[1], 1);
    assert_int_equal(s.cat_feat[2], 5);
    assert_int_equal(s.n_multi, 2);
    assert_int_equal(s.n_dense, 1);
    assert_int_equal(s.dense_feat[0], 4);
    assert_int_equal(s.n_tables, 4); /* user, item (+last_items), genres, year */
    assert_int_equal(f[3].table, f[1].table);
    assert_int_equal(s.table_rows[f[1].table], 10001);
    assert_int_equal(s.table_rows[f[5].table], 5);
    assert_int_equal(s.table_dim[f[5].table], 4);
    assert_string_equal(s.table_name[f[2].table], "genres");

    assert_int_equal(s.n_tasks, 3);
    assert_string_equal(s.tasks[1].label, "rating >= 4");
    assert_string_equal(s.tasks[1].mask, "click");
    assert_int_equal(s.tasks[2].kind, CR_TASK_REGRESSION);
    assert_true(s.tasks[0].weight == 1.0f);
    cr_schema_free(&s);
}

static void test_defaults(void **state) {
    (void)state;
    cr_data_cfg d;
    cr_schema s;
    cr_error e;
    assert_int_equal(parse("data: {path: /abs/x.tsv}\n"
                           "features: [{name: a, type: categorical, dim: 4},\n"
                           "           {name: n, type: numeric}]\n"
                           "tasks: [{name: click}]\n",
                           &d, &s, &e),
                     CR_OK);
    assert_string_equal(d.path, "/abs/x.tsv");
    assert_int_equal(d.split, CR_SPLIT_FRACTION);
    assert_true(d.valid_frac == 0.1 && d.test_frac == 0.1);
    assert_int_equal(d.sep, 0);
    assert_string_equal(s.features[0].column, "a");
    assert_int_equal(s.features[0].min_count, 1);
    assert_int_equal(s.features[0].rows, 0); /* not fitted yet */
    assert_int_equal(s.features[1].transform, CR_TX_ZSCORE);
    assert_int_equal(s.tasks[0].kind, CR_TASK_BINARY);
    assert_string_equal(s.tasks[0].label, "click");
    assert_int_equal(s.tasks[0].mask[0], 0);
    cr_schema_free(&s);
}

typedef struct {
    const char *yaml, *msg;
} bad_case;

static void test_config_errors(void **state) {
    (void)state;
    static const char *const ok_feat = "features: [{name: a, type: categorical, dim: 4}]\n";
    static const char *const ok_task = "tasks: [{name: t}]\n";
    char buf[2048];
    static const bad_case cases[] = {
        {"data: {path: x.csv}\nfeature: []\n",
         "conf/ranker.yaml:2:1: unknown key 'feature'; expected one of: data, features"},
        {"data: {paht: x.csv}\n@F@T", "conf/ranker.yaml:1:8: data: unknown key 'paht'"},
        {"data: {sep: ','}\n@F@T", "data: missing required key 'path'"},
        {"@F@T", "missing required section 'data'"},
        {"data: {path: x.csv, split: {by: random}}\n@F@T",
         "data.split.by: expected one of: time, fraction, column; got 'random'"},
        {"data: {path: x.csv, split: {by: time}}\n@F@T",
         "data.split: missing required key 'column'"},
        {"data: {path: x.csv, split: {by: fraction, valid: 0.6, test: 0.5}}\n@F@T",
         "valid + test must be below 1"},
        {"data: {path: x.csv, split: {by: fraction, test: 1}}\n@F@T",
         "data.split.test: expected a fraction in [0, 1), got 1"},
        {"data: {path: x.csv, split: {by: column, column: s, valid: 0.1}}\n@F@T",
         "'valid' does not apply to by: column"},
        {"data: {path: x.csv, sep: ab}\n@F@T", "data.sep: expected one separator character"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: categorical, dim: abc}\n@T",
         "conf/ranker.yaml:3:39: features[0].dim: expected an integer in [1, 65536], got 'abc'"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: categorical, dim: 0}\n@T",
         "features[0].dim: expected an integer in [1, 65536], got '0'"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: categorical}\n@T",
         "conf/ranker.yaml:3:5: features[0]: missing required key 'dim'"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: cat, dim: 2}\n@T",
         "features[0].type: expected one of: categorical, multi, numeric, bucketized"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: numeric, dims: 2}\n@T",
         "features[0]: unknown key 'dims'"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: numeric, dim: 2}\n@T",
         "features[0]: 'dim' does not apply to a numeric feature"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: categorical, dim: 2}\n"
         "  - {name: a, type: numeric}\n@T",
         "conf/ranker.yaml:4:12: features[1]: feature name 'a' is used twice"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: 2a, type: numeric}\n@T",
         "features[0].name: expected a name of letters"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: y, type: bucketized, dim: 2, "
         "boundaries: [1, 3, 2]}\n@T",
         "features[0].boundaries[2]: boundaries must be strictly increasing: 2 follows 3"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: y, type: bucketized, dim: 2, "
         "boundaries: []}\n@T",
         "features[0].boundaries: expected at least one boundary"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: b, type: multi, share: a}\n"
         "  - {name: a, type: categorical, dim: 2}\n@T",
         "features[0].share: 'a' is not an earlier feature"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: numeric}\n"
         "  - {name: b, type: multi, share: a}\n@T",
         "features[1].share: 'a' is a numeric feature"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: categorical, dim: 2}\n"
         "  - {name: b, type: multi, share: a, dim: 3}\n@T",
         "features[1]: dim: 3 differs from the dim 2 of the shared feature 'a'"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: categorical, dim: 2}\n"
         "  - {name: b, type: multi, share: a, min_count: 3}\n@T",
         "features[1]: 'min_count' does not apply to a multi feature that shares 'a'"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: categorical, dim: 2, "
         "hash_buckets: 10, min_count: 2}\n@T",
         "min_count and max_vocab do not apply with hash_buckets"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: multi, dim: 2, sep: '||'}\n@T",
         "features[0]: sep: expected a single character, got '||'"},
        {"data: {path: x.csv}\nfeatures:\n  - {name: a, type: numeric, transform: log}\n@T",
         "features[0].transform: expected one of: none, zscore, log1p, log1p_zscore"},
        {"data: {path: x.csv}\nfeatures: []\n@T", "features: expected at least one feature"},
        {"data: {path: x.csv}\n@Ftasks: []\n", "tasks: expected at least one task"},
        {"data: {path: x.csv}\n@F", "missing required section 'tasks'"},
        {"data: {path: x.csv}\n@Ftasks: [{name: t, type: ranking}]\n",
         "tasks[0].type: expected one of: binary, regression"},
        {"data: {path: x.csv}\n@Ftasks: [{name: t, label: \"rating >= \"}]\n",
         "conf/ranker.yaml:3:26: tasks[0].label: expression 'rating >= '"},
        {"data: {path: x.csv}\n@Ftasks: [{name: t}, {name: t}]\n",
         "tasks[1]: task name 't' is used twice"},
        {"data: {path: x.csv}\n@Ftasks: [{name: t, mask: t}]\n",
         "tasks[0].mask: a task cannot be masked by itself"},
        {"data: {path: x.csv}\n@Ftasks: [{name: t, mask: u}, {name: u}]\n",
         "tasks[0].mask: names task 'u', which is listed later"},
        {"data: {path: x.csv}\n@Ftasks: [{name: t, weight: -1}]\n",
         "tasks[0].weight: expected a number >= 0, got '-1'"},
        {"data: {path: x.csv}\n@Ftasks: [{name: t, lable: x}]\n",
         "tasks[0]: unknown key 'lable'; expected one of: name, type, label, mask, weight"},
        {"", "the config is empty"},
        {"- a\n- b\n", "expected a mapping, got a sequence"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* @F and @T stand for a valid features and tasks section. */
        size_t o = 0;
        for (const char *y = cases[i].yaml; *y && o < sizeof buf - 200; y++) {
            if (y[0] == '@' && (y[1] == 'F' || y[1] == 'T')) {
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", y[1] == 'F' ? ok_feat : ok_task);
                y++;
            } else {
                buf[o++] = *y;
            }
        }
        buf[o] = 0;
        cr_data_cfg d;
        cr_schema s;
        cr_error e;
        cr_err_clear(&e);
        cr_status st = parse(buf, &d, &s, &e);
        if (st == CR_OK) {
            fprintf(stderr, "case %zu parsed but should fail:\n%s\n", i, buf);
            cr_schema_free(&s);
            fail();
        }
        if (!strstr(e.msg, cases[i].msg)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, e.msg, cases[i].msg);
            fail();
        }
        assert_null(s.features); /* nothing left to free on failure */
    }
}

static void test_vocab(void **state) {
    (void)state;
    cr_error e;
    cr_vocab *v = cr_vocab_new();
    const char *words[] = {"b", "a", "c", "a", "d", "b", "a", "e", "c", "b"};
    /* counts: a 3, b 3, c 2, d 1, e 1; first appearance b, a, c, d, e */
    for (int i = 0; i < 10; i++)
        assert_int_equal(cr_vocab_count(v, words[i], strlen(words[i]), &e), CR_OK);
    assert_int_equal(cr_vocab_lookup(v, "a", 1), 0); /* no ids while counting */
    assert_int_equal(cr_vocab_finalize(v, 2, 0, &e), CR_OK);
    assert_int_equal(cr_vocab_size(v), 4);
    assert_int_equal(cr_vocab_lookup(v, "b", 1), 1); /* tie with a: b appeared first */
    assert_int_equal(cr_vocab_lookup(v, "a", 1), 2);
    assert_int_equal(cr_vocab_lookup(v, "c", 1), 3);
    assert_int_equal(cr_vocab_lookup(v, "d", 1), 0); /* below min_count */
    assert_int_equal(cr_vocab_lookup(v, "zz", 2), 0);
    assert_string_equal(cr_vocab_key(v, 2), "a");
    assert_null(cr_vocab_key(v, 0));
    assert_null(cr_vocab_key(v, 4));
    assert_int_not_equal(cr_vocab_count(v, "x", 1, &e), CR_OK);
    cr_vocab_free(v);

    /* max size keeps the most frequent. */
    v = cr_vocab_new();
    for (int i = 0; i < 10; i++) cr_vocab_count(v, words[i], strlen(words[i]), &e);
    assert_int_equal(cr_vocab_finalize(v, 1, 2, &e), CR_OK);
    assert_int_equal(cr_vocab_size(v), 3);
    assert_int_equal(cr_vocab_lookup(v, "c", 1), 0);
    cr_vocab_free(v);

    /* Many keys: growth, and two builds agree exactly (determinism). */
    cr_vocab *v1 = cr_vocab_new(), *v2 = cr_vocab_new();
    char key[32];
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7919) % 5000;
        int len = snprintf(key, sizeof key, "key%d", k);
        assert_int_equal(cr_vocab_count(v1, key, (size_t)len, &e), CR_OK);
        assert_int_equal(cr_vocab_count(v2, key, (size_t)len, &e), CR_OK);
        if (k % 3 == 0) cr_vocab_count(v1, key, (size_t)len, &e), cr_vocab_count(v2, key, (size_t)len, &e);
    }
    assert_int_equal(cr_vocab_finalize(v1, 1, 0, &e), CR_OK);
    assert_int_equal(cr_vocab_finalize(v2, 1, 0, &e), CR_OK);
    assert_int_equal(cr_vocab_size(v1), 5001);
    for (int32_t id = 1; id <= 5000; id++) {
        assert_string_equal(cr_vocab_key(v1, id), cr_vocab_key(v2, id));
        const char *k = cr_vocab_key(v1, id);
        assert_int_equal(cr_vocab_lookup(v1, k, strlen(k)), id);
    }
    /* keys counted 8 times (k % 3 == 0) come before those counted 4 times */
    assert_int_equal(atoi(cr_vocab_key(v1, 1) + 3) % 3, 0);
    assert_int_not_equal(atoi(cr_vocab_key(v1, 5000) + 3) % 3, 0);
    cr_vocab_free(v1);
    cr_vocab_free(v2);

    /* Direct adds (loading a saved vocabulary) and their errors. */
    v = cr_vocab_new();
    assert_int_equal(cr_vocab_add(v, "x", 1, &e), CR_OK);
    assert_int_equal(cr_vocab_add(v, "y", 1, &e), CR_OK);
    assert_int_equal(cr_vocab_add(v, "x", 1, &e), CR_ERR_MISMATCH);
    assert_int_equal(cr_vocab_lookup(v, "y", 1), 2);
    assert_int_equal(cr_vocab_lookup(v, "", 0), 0);
    cr_vocab_free(v);
}

static void test_encoders(void **state) {
    (void)state;
    cr_feature f;
    memset(&f, 0, sizeof f);
    f.kind = CR_FEAT_BUCKET;
    f.n_boundaries = 3;
    f.boundaries[0] = 1970, f.boundaries[1] = 1990, f.boundaries[2] = 2000;
    assert_int_equal(cr_feature_bucket(&f, 1960), 1);
    assert_int_equal(cr_feature_bucket(&f, 1970), 2); /* first boundary greater than x */
    assert_int_equal(cr_feature_bucket(&f, 1995), 3);
    assert_int_equal(cr_feature_bucket(&f, 2000), 4);
    assert_int_equal(cr_feature_bucket(&f, 3000), 4);
    memset(&f, 0, sizeof f);
    f.kind = CR_FEAT_CATEGORICAL;
    f.hash_buckets = 10;
    int32_t id = cr_feature_id(&f, "abc", 3);
    assert_true(id >= 1 && id <= 10);
    assert_int_equal(id, (int32_t)(1 + cr_hash64("abc", 3) % 10));
    assert_int_equal(cr_feature_id(&f, "", 0), 0);
    /* FNV-1a reference values: saved models depend on these never changing. */
    assert_true(cr_hash64("", 0) == 0xcbf29ce484222325ull);
    assert_true(cr_hash64("a", 1) == 0xaf63dc4c8601ec8cull);
    f.kind = CR_FEAT_NUMERIC;
    f.transform = CR_TX_LOG1P_ZSCORE;
    f.mean = 1;
    f.std = 2;
    assert_true(fabsf(cr_feature_transform(&f, exp(3.0) - 1) - 1.0f) < 1e-6f);
}

static void test_json_round_trip(void **state) {
    (void)state;
    cr_data_cfg d;
    cr_schema s, s2;
    cr_error e;
    assert_int_equal(parse(example, &d, &s, &e), CR_OK);
    /* Fit the user vocabulary and numeric statistics by hand. */
    s.features[0].vocab = cr_vocab_new();
    const char *users[] = {"u1", "u2", "u1", "u3", "u2", "u1", "caf\xc3\xa9 \"q\""};
    for (int i = 0; i < 7; i++) cr_vocab_count(s.features[0].vocab, users[i], strlen(users[i]), &e);
    assert_int_equal(cr_vocab_finalize(s.features[0].vocab, 1, 0, &e), CR_OK);
    s.features[4].mean = 1.0 / 3.0;
    s.features[4].std = 0.1234567890123456789;
    assert_int_equal(cr_schema_finish(&s, &e), CR_OK);
    assert_int_equal(s.features[0].rows, 5);
    assert_int_equal(s.table_rows[s.features[0].table], 5);

    char *json = NULL;
    assert_int_equal(cr_schema_to_json(&s, &json, &e), CR_OK);
    cr_status st = cr_schema_from_json(&s2, json, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(st, CR_OK);
    assert_int_equal(s2.n_features, s.n_features);
    assert_int_equal(s2.n_tasks, s.n_tasks);
    for (int i = 0; i < s.n_features; i++) {
        const cr_feature *a = &s.features[i], *b = &s2.features[i];
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->column, b->column);
        assert_string_equal(a->share, b->share);
        assert_int_equal(a->kind, b->kind);
        assert_int_equal(a->dim, b->dim);
        assert_int_equal(a->hash_buckets, b->hash_buckets);
        assert_int_equal(a->min_count, b->min_count);
        assert_int_equal(a->sep, b->sep);
        assert_int_equal(a->pooling, b->pooling);
        assert_int_equal(a->transform, b->transform);
        assert_int_equal(a->rows, b->rows);
        assert_int_equal(a->table, b->table);
        assert_int_equal(a->n_boundaries, b->n_boundaries);
        for (int k = 0; k < a->n_boundaries; k++) assert_true(a->boundaries[k] == b->boundaries[k]);
        assert_true(a->mean == b->mean); /* bit-exact doubles */
        assert_true(a->std == b->std);
        assert_int_equal(a->vocab != NULL, b->vocab != NULL);
    }
    cr_vocab *v1 = s.features[0].vocab, *v2 = s2.features[0].vocab;
    assert_int_equal(cr_vocab_size(v1), cr_vocab_size(v2));
    for (int32_t id = 1; id < cr_vocab_size(v1); id++)
        assert_string_equal(cr_vocab_key(v1, id), cr_vocab_key(v2, id));
    assert_int_equal(cr_vocab_lookup(v2, users[6], strlen(users[6])), 4);
    for (int t = 0; t < s.n_tasks; t++) {
        assert_string_equal(s.tasks[t].name, s2.tasks[t].name);
        assert_string_equal(s.tasks[t].label, s2.tasks[t].label);
        assert_string_equal(s.tasks[t].mask, s2.tasks[t].mask);
        assert_int_equal(s.tasks[t].kind, s2.tasks[t].kind);
        assert_true(s.tasks[t].weight == s2.tasks[t].weight);
    }
    assert_int_equal(s2.n_tables, s.n_tables);
    for (int t = 0; t < s.n_tables; t++) {
        assert_int_equal(s2.table_rows[t], s.table_rows[t]);
        assert_int_equal(s2.table_dim[t], s.table_dim[t]);
    }
    /* The same JSON twice: serialisation is deterministic. */
    char *json2 = NULL;
    assert_int_equal(cr_schema_to_json(&s2, &json2, &e), CR_OK);
    assert_string_equal(json, json2);
    free(json2);

    /* Corrupt inputs fail with a named field and leave nothing allocated. */
    cr_schema s3;
    assert_int_equal(cr_schema_from_json(&s3, "{", &e), CR_ERR_FORMAT);
    HAS(e.msg, "schema JSON: malformed");
    assert_null(s3.features);
    char *bad = strdup(json);
    char *p = strstr(bad, "\"dim\":16");
    assert_non_null(p);
    memcpy(p, "\"dim\":-1", 8);
    assert_int_equal(cr_schema_from_json(&s3, bad, &e), CR_ERR_FORMAT);
    HAS(e.msg, "features[0].dim");
    assert_null(s3.features);
    free(bad);
    free(json);
    cr_schema_free(&s);
    cr_schema_free(&s2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_config), cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_config_errors),  cmocka_unit_test(test_vocab),
        cmocka_unit_test(test_encoders),       cmocka_unit_test(test_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
