/*
 * test_dataset.c - loading a CSV written here through a config: encodings of
 * every feature kind, splits (time, fraction, column; groups never
 * straddle), train-only vocabularies and statistics, labels and masks from
 * expressions, refitting-free scoring, the error messages for bad files,
 * and batch gathering.
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

#define G 50 /* requests of 4 rows in the main file */

typedef struct {
    char dir[256];
    char yaml[512];
} fixture;

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The generator of the main file; the checks below recompute from it. */
static double hist_of(int r) { return r % 13 == 0 ? 0 : (double)(r % 7); } /* empty -> default 0 */
static int click_of(int r) { return r % 4 == 0 || r % 3 == 0; }
static int rating_of(int r) { return r % 5 + 1; }

static void write_main_csv(const char *path, int groups) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "request_id,user_id,movie_id,genres,last_items,hist_count,year,timestamp,click,"
               "rating,w,new_release,teacher_click,split\n");
    static const char *const genres[] = {"Comedy|Drama", "", "Action", "Drama||Comedy"};
    for (int g = 0; g < groups; g++)
        for (int j = 0; j < 4; j++) {
            int r = g * 4 + j;
            char user[16], movie[16], last[40], hist[16], year[16], rating[8];
            if (g >= groups - 5) snprintf(user, sizeof user, "ulate");
            else snprintf(user, sizeof user, "u%d", g % 10);
            if (r == 5) snprintf(movie, sizeof movie, "monce");
            else if (g >= groups - 5) snprintf(movie, sizeof movie, "mlate");
            else snprintf(movie, sizeof movie, "m%d", r % 20);
            if (j == 1) last[0] = 0;
            else if (g >= groups - 5) snprintf(last, sizeof last, "mlate|m%d", (r + 1) % 20);
            else snprintf(last, sizeof last, "m%d|m%d", (r + 1) % 20, (r + 2) % 20);
            if (r % 13 == 0) hist[0] = 0;
            else snprintf(hist, sizeof hist, "%d", r % 7);
            if (r % 17 == 0) year[0] = 0;
            else snprintf(year, sizeof year, "%d", 1960 + (r * 7) % 60);
            if (click_of(r)) snprintf(rating, sizeof rating, "%d", rating_of(r));
            else rating[0] = 0;
            fprintf(f, "r%d,%s,%s,\"%s\",%s,%s,%s,%d,%d,%s,%d,%d,%g,%s\n", g, user, movie,
                    genres[j], last, hist, year, 1000 + g * 10 + j, click_of(r), rating,
                    1 + r % 2, r % 4 == 0, 0.25 * j,
                    g % 10 == 0 ? "test" : g % 10 == 1 ? "valid" : "train");
        }
    fclose(f);
}

static const char *const main_features =
    "features:\n"
    "  - {name: user, type: categorical, column: user_id, dim: 4}\n"
    "  - {name: item, type: categorical, column: movie_id, dim: 8, min_count: 2}\n"
    "  - {name: genres, type: multi, dim: 4, pooling: sum}\n"
    "  - {name: last_items, type: multi, share: item}\n"
    "  - {name: hist_count, type: numeric, transform: log1p_zscore, default: 0}\n"
    "  - {name: year, type: bucketized, boundaries: [1970, 1990, 2000], dim: 2}\n"
    "  - {name: hashed, type: categorical, column: movie_id, dim: 2, hash_buckets: 7}\n"
    "tasks:\n"
    "  - {name: click, type: binary, label: click}\n"
    "  - {name: like, type: binary, label: \"rating >= 4\", mask: click}\n"
    "  - {name: engagement, type: regression, label: \"rating / 5\", mask: click}\n";

/* Write data.csv (if csv != NULL) and ranker.yaml, then parse the config. */
static cr_status setup(fixture *fx, const char *csv, const char *data_section,
                       const char *rest, cr_data_cfg *d, cr_schema *s, cr_error *e) {
    char path[512], text[4096];
    if (csv) {
        snprintf(path, sizeof path, "%s/data.csv", fx->dir);
        write_text(path, csv);
    }
    snprintf(fx->yaml, sizeof fx->yaml, "%s/ranker.yaml", fx->dir);
    snprintf(text, sizeof text, "%s%s", data_section, rest);
    write_text(fx->yaml, text);
    cr_yaml_doc *doc = NULL;
    cr_status st = cr_yaml_load(&doc, fx->yaml, e);
    if (st == CR_OK) st = cr_data_config_parse(cr_yaml_root(doc), fx->yaml, d, s, e);
    cr_yaml_free(doc);
    return st;
}

static void load_main(fixture *fx, const char *data_section, int groups, cr_data_cfg *d,
                      cr_schema *s, cr_dataset *ds) {
    char path[512];
    cr_error e;
    cr_test_tmpdir(fx->dir, sizeof fx->dir);
    snprintf(path, sizeof path, "%s/data.csv", fx->dir);
    write_main_csv(path, groups);
    cr_status st = setup(fx, NULL, data_section, main_features, d, s, &e);
    if (st == CR_OK) st = cr_dataset_load(ds, s, d, 1, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(st, CR_OK);
}

static const char *const time_data =
    "data:\n"
    "  path: data.csv\n"
    "  split: {by: time, column: timestamp, valid: 0.2, test: 0.2}\n"
    "  group: request_id\n"
    "  user: user_id\n"
    "  weight: w\n"
    "  slices: [new_release]\n"
    "  extra: [teacher_click]\n";

static void test_time_split_and_encodings(void **state) {
    (void)state;
    fixture fx;
    cr_data_cfg d;
    cr_schema s;
    cr_dataset ds;
    load_main(&fx, time_data, G, &d, &s, &ds);
    int64_t n = ds.n;
    assert_int_equal(n, 4 * G);
    /* Time quantiles: groups 0-29 train, 30-39 valid, 40-49 test. */
    assert_int_equal(ds.n_split[CR_SPLIT_TRAIN], 120);
    assert_int_equal(ds.n_split[CR_SPLIT_VALID], 40);
    assert_int_equal(ds.n_split[CR_SPLIT_TEST], 40);
    for (int64_t r = 0; r < n; r++) {
        int g = (int)(r / 4);
        assert_int_equal(ds.split[r], g < 30 ? CR_SPLIT_TRAIN : g < 40 ? CR_SPLIT_VALID : CR_SPLIT_TEST);
        assert_int_equal(ds.group[r], g); /* dense ids in order of first appearance */
        assert_int_equal(ds.user[r], g >= G - 5 ? 10 : g % 10);
    }
    assert_int_equal(ds.n_cat, 4); /* user, item, year, hashed */
    assert_int_equal(ds.n_multi, 2);
    assert_int_equal(ds.n_dense, 1);
    assert_int_equal(ds.n_tasks, 3);
    const cr_feature *f = s.features;

    /* user: ten users with equal counts, ids by first appearance; "ulate"
     * appears only in test rows, so it is out of vocabulary. */
    assert_int_equal(cr_vocab_size(f[0].vocab), 11);
    for (int64_t r = 0; r < n; r++) {
        int g = (int)(r / 4);
        assert_int_equal(ds.cat[r * 4 + 0], g >= G - 5 ? 0 : g % 10 + 1);
    }
    assert_int_equal(cr_vocab_lookup(f[0].vocab, "ulate", 5), 0);

    /* item: "monce" is seen once (min_count 2) and "mlate" only after the
     * training period: both OOV. last_items reads the same vocabulary. */
    assert_int_equal(ds.cat[5 * 4 + 1], 0);
    assert_int_equal(ds.cat[(n - 1) * 4 + 1], 0);
    assert_null(f[3].vocab);
    assert_int_equal(f[3].table, f[1].table);
    assert_int_equal(f[3].rows, f[1].rows);
    assert_int_equal(f[1].rows, cr_vocab_size(f[1].vocab));
    assert_int_equal(s.table_rows[f[1].table], f[1].rows);
    assert_int_equal(cr_vocab_lookup(f[1].vocab, "monce", 5), 0);
    assert_int_equal(cr_vocab_lookup(f[1].vocab, "mlate", 5), 0);
    int32_t m1 = cr_vocab_lookup(f[1].vocab, "m1", 2), m2 = cr_vocab_lookup(f[1].vocab, "m2", 2);
    assert_true(m1 > 0 && m2 > 0 && m1 != m2);
    assert_int_equal(ds.cat[1 * 4 + 1], m1); /* row 1 is movie m1 */
    const int64_t *lo = ds.bag_off[1];
    const int32_t *li = ds.bag_ids[1];
    assert_int_equal(lo[1] - lo[0], 2); /* row 0: "m1|m2" */
    assert_int_equal(li[lo[0]], m1);
    assert_int_equal(li[lo[0] + 1], m2);
    assert_int_equal(lo[2] - lo[1], 0); /* row 1: empty */
    int64_t last = n - 1;                /* "mlate|m..." in a test row */
    assert_int_equal(lo[last + 1] - lo[last], 2);
    assert_int_equal(li[lo[last]], 0);
    assert_true(li[lo[last] + 1] > 0);

    /* genres: "Comedy|Drama", "", "Action", "Drama||Comedy" (empty token skipped). */
    const int64_t *go = ds.bag_off[0];
    const int32_t *gi = ds.bag_ids[0];
    for (int64_t r = 0; r < n; r++) {
        static const int len[4] = {2, 0, 1, 2};
        assert_int_equal(go[r + 1] - go[r], len[r % 4]);
    }
    assert_int_equal(gi[go[0]], gi[go[3] + 1]); /* Comedy */
    assert_int_equal(gi[go[0] + 1], gi[go[3]]); /* Drama */
    assert_int_equal(cr_vocab_size(f[2].vocab), 4);

    /* hist_count: log1p then z-score with statistics of the training rows only. */
    double sum = 0, ss = 0;
    for (int r = 0; r < 120; r++) sum += log1p(hist_of(r));
    double mean = sum / 120;
    for (int r = 0; r < 120; r++) ss += (log1p(hist_of(r)) - mean) * (log1p(hist_of(r)) - mean);
    double sd = sqrt(ss / 120);
    assert_true(fabs(f[4].mean - mean) < 1e-12);
    assert_true(fabs(f[4].std - sd) < 1e-12);
    for (int64_t r = 0; r < n; r++) {
        assert_true(fabsf(ds.dense[r] - (float)((log1p(hist_of((int)r)) - mean) / sd)) < 1e-5f);
        /* serving's one-value encoder agrees bit for bit */
        assert_true(ds.dense[r] == cr_feature_transform(&f[4], hist_of((int)r)));
    }

    /* year: 1 + index of the first boundary above the value; empty -> 0. */
    for (int64_t r = 0; r < n; r++) {
        int y = 1960 + (int)(r * 7) % 60;
        int want = r % 17 == 0 ? 0 : y < 1970 ? 1 : y < 1990 ? 2 : y < 2000 ? 3 : 4;
        assert_int_equal(ds.cat[r * 4 + 2], want);
    }
    assert_int_equal(s.table_rows[f[5].table], 5);
    /* hashed: 1 + FNV-1a % 7, no vocabulary. */
    assert_int_equal(ds.cat[0 * 4 + 3], (int32_t)(1 + cr_hash64("m0", 2) % 7));
    assert_null(f[6].vocab);
    assert_int_equal(s.table_rows[f[6].table], 8);

    /* Labels and masks, task-major. */
    for (int64_t r = 0; r < n; r++) {
        int c = click_of((int)r), rt = rating_of((int)r);
        assert_true(ds.label[0 * n + r] == (float)c && ds.mask[0 * n + r] == 1.0f);
        assert_true(ds.mask[1 * n + r] == (float)c && ds.mask[2 * n + r] == (float)c);
        assert_true(ds.label[1 * n + r] == (c && rt >= 4 ? 1.0f : 0.0f));
        assert_true(fabsf(ds.label[2 * n + r] - (c ? (float)rt / 5 : 0.0f)) < 1e-7f);
        assert_true(ds.weight[r] == (float)(1 + r % 2));
        assert_int_equal(ds.slices[r], r % 4 == 0);
        assert_true(ds.extra[r] == 0.25f * (float)(r % 4));
    }
    assert_string_equal(ds.slice_names[0], "new_release");
    assert_string_equal(ds.extra_names[0], "teacher_click");

    /* Rows of a split, in file order. */
    uint32_t *rows;
    int64_t nr;
    cr_error e;
    assert_int_equal(cr_dataset_rows(&ds, CR_SPLIT_VALID, &rows, &nr, &e), CR_OK);
    assert_int_equal(nr, 40);
    assert_int_equal(rows[0], 120);
    assert_int_equal(rows[39], 159);
    free(rows);

    /* Scoring: the fitted schema (also after a JSON round trip) encodes
     * the file exactly as fitting did. */
    char *json = NULL;
    cr_schema s2;
    cr_dataset ds2;
    assert_int_equal(cr_schema_to_json(&s, &json, &e), CR_OK);
    assert_int_equal(cr_schema_from_json(&s2, json, &e), CR_OK);
    free(json);
    cr_status st = cr_dataset_load(&ds2, &s2, &d, 0, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(st, CR_OK);
    assert_int_equal(ds2.n, n);
    assert_memory_equal(ds2.cat, ds.cat, (size_t)n * 4 * sizeof(int32_t));
    for (int m = 0; m < 2; m++) {
        assert_memory_equal(ds2.bag_off[m], ds.bag_off[m], (size_t)(n + 1) * sizeof(int64_t));
        assert_memory_equal(ds2.bag_ids[m], ds.bag_ids[m], (size_t)ds.bag_off[m][n] * sizeof(int32_t));
    }
    assert_memory_equal(ds2.dense, ds.dense, (size_t)n * sizeof(float));
    assert_memory_equal(ds2.label, ds.label, (size_t)n * 3 * sizeof(float));
    cr_dataset_free(&ds2);
    cr_schema_free(&s2);

    cr_dataset_free(&ds);
    cr_schema_free(&s);
    cr_test_rmdir(fx.dir);
}

static void test_fraction_split(void **state) {
    (void)state;
    fixture fx;
    cr_data_cfg d;
    cr_schema s;
    cr_dataset a, b;
    cr_error e;
    load_main(&fx, "data:\n  path: data.csv\n  group: request_id\n"
                   "  split: {by: fraction, valid: 0.2, test: 0.1, seed: 7}\n",
              500, &d, &s, &a);
    int64_t n = a.n, groups[3] = {0, 0, 0};
    for (int64_t r = 0; r < n; r++) {
        if (r % 4) assert_int_equal(a.split[r], a.split[r - 1]); /* groups stay together */
        else groups[a.split[r]]++;
    }
    assert_true(groups[CR_SPLIT_VALID] > 70 && groups[CR_SPLIT_VALID] < 130);
    assert_true(groups[CR_SPLIT_TEST] > 25 && groups[CR_SPLIT_TEST] < 75);
    /* The same seed gives the same split; another seed another one. */
    assert_int_equal(cr_dataset_load(&b, &s, &d, 1, &e), CR_OK);
    assert_memory_equal(a.split, b.split, (size_t)n);
    cr_dataset_free(&b);
    d.split_seed = 8;
    assert_int_equal(cr_dataset_load(&b, &s, &d, 1, &e), CR_OK);
    assert_memory_not_equal(a.split, b.split, (size_t)n);
    cr_dataset_free(&b);
    /* Without a group column rows are split one by one. */
    d.group_column[0] = 0;
    assert_int_equal(cr_dataset_load(&b, &s, &d, 1, &e), CR_OK);
    int straddle = 0;
    for (int64_t r = 1; r < n; r++) straddle |= r % 4 && b.split[r] != b.split[r - 1];
    assert_true(straddle);
    assert_true(b.n_split[CR_SPLIT_VALID] > 300 && b.n_split[CR_SPLIT_VALID] < 500);
    assert_int_equal(b.group[17], 17);
    cr_dataset_free(&b);
    cr_dataset_free(&a);
    cr_schema_free(&s);
    cr_test_rmdir(fx.dir);
}

static void test_column_split(void **state) {
    (void)state;
    fixture fx;
    cr_data_cfg d;
    cr_schema s;
    cr_dataset ds;
    load_main(&fx, "data: {path: data.csv, group: request_id, split: {by: column, column: split}}\n",
              G, &d, &s, &ds);
    for (int64_t r = 0; r < ds.n; r++) {
        int g = (int)(r / 4);
        assert_int_equal(ds.split[r], g % 10 == 0 ? CR_SPLIT_TEST : g % 10 == 1 ? CR_SPLIT_VALID
                                                                                : CR_SPLIT_TRAIN);
    }
    assert_int_equal(ds.n_split[CR_SPLIT_TEST], 20);
    assert_null(ds.weight);
    assert_null(ds.slices);
    assert_null(ds.extra);
    /* Loading without fitting needs fitted vocabularies. */
    cr_dataset_free(&ds);
    cr_schema_free(&s);
    cr_error e;
    assert_int_equal(setup(&fx, NULL, "data: {path: data.csv}\n", main_features, &d, &s, &e),
                     CR_OK);
    assert_int_equal(cr_dataset_load(&ds, &s, &d, 0, &e), CR_ERR_ARG);
    HAS(e.msg, "feature 'user' has no fitted vocabulary");
    cr_schema_free(&s);
    cr_test_rmdir(fx.dir);
}

typedef struct {
    const char *csv, *data, *ft, *msg;
} bad_case;

static void test_errors(void **state) {
    (void)state;
    static const char *const H = "request_id,user_id,hist_count,click,rating,split\n";
    static const char *const all_train = "data: {path: data.csv, split: {by: fraction, valid: 0, test: 0}}\n";
    static const char *const ft =
        "features:\n"
        "  - {name: user, type: categorical, column: user_id, dim: 4}\n"
        "  - {name: hist, type: numeric, column: hist_count, transform: log1p}\n"
        "tasks:\n"
        "  - {name: click, label: click}\n"
        "  - {name: like, label: \"rating >= 4\", mask: click}\n";
    static const bad_case cases[] = {
        {"r1,u1,3,1,5,train\n", NULL,
         "features: [{name: user, type: categorical, column: movie, dim: 4}]\ntasks: [{name: click}]\n",
         "data.csv: column 'movie' named by features[0].column is not in the header (columns: "
         "request_id, user_id, hist_count, click, rating, split)"},
        {"r1,u1,3,1,5,train\nr2,u1,abc,1,5,train\n", NULL, NULL,
         "data.csv:3:3: expected a number in column 'hist_count', got 'abc'"},
        {"r1,u1,3,1,,train\n", NULL, NULL,
         "data.csv:2:5: tasks[1] 'like': the label needs column 'rating', which is empty"},
        {"r1,u1,-2,1,5,train\n", NULL, NULL,
         "data.csv:2:3: features[1] 'hist' takes log1p, which needs values >= -1"},
        {"r1,u1,3,3,5,train\n", NULL, NULL,
         "data.csv:2: tasks[0] 'click': expected a binary label in [0, 1], got 3"},
        {"r1,u1,3,1,5,train\nr2,u1,3,1,5,tst\n",
         "data: {path: data.csv, split: {by: column, column: split}}\n", NULL,
         "data.csv:3:6: column 'split' (data.split.column) must be train, valid or test, got 'tst'"},
        {"r1,u1,3,1,5,train\nr1,u1,3,1,5,valid\n",
         "data: {path: data.csv, group: request_id, split: {by: column, column: split}}\n", NULL,
         "data.csv:3:6: group 'r1' (data.group) is in split 'valid' here but in 'train' at line 2"},
        {"r1,u1,3,1,5,train\n", NULL,
         "features: [{name: user, type: categorical, column: user_id, dim: 4}]\n"
         "tasks: [{name: click}, {name: like, label: \"ratin >= 4\"}]\n",
         "column 'ratin' named by tasks[1].label ('ratin >= 4') is not in the header"},
        {"r1,u1,3,1,5,train\n",
         "data: {path: data.csv, group: req, split: {by: fraction, valid: 0, test: 0}}\n", NULL,
         "column 'req' named by data.group is not in the header"},
        {"", NULL, NULL, "data.csv: no data rows"},
        {"r1,u1,3,1,5,test\n", "data: {path: data.csv, split: {by: column, column: split}}\n",
         NULL, "the split leaves no training rows"},
        {"r1,u1,3,0,,train\n", "data: {path: data.csv, split: {by: time, column: rating}}\n",
         NULL, "data.csv:2:5: expected a number in column 'rating', got an empty field"},
        {"r1,u1,3,1,5,train\n",
         "data: {path: data.csv, slices: [hist_count], split: {by: fraction, valid: 0, test: 0}}\n",
         NULL, "data.csv:2:3: column 'hist_count' (data.slices[0]) must be 0 or 1, got 3"},
        {"r1,u1,3,1,5,train\n", "data: {path: missing.csv}\n", NULL, "missing.csv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        cr_data_cfg d;
        cr_schema s;
        cr_dataset ds;
        cr_error e;
        char csv[512];
        cr_test_tmpdir(fx.dir, sizeof fx.dir);
        snprintf(csv, sizeof csv, "%s%s", H, cases[i].csv);
        cr_status st = setup(&fx, csv, cases[i].data ? cases[i].data : all_train,
                             cases[i].ft ? cases[i].ft : ft, &d, &s, &e);
        if (st) fprintf(stderr, "case %zu: config: %s\n", i, e.msg);
        assert_int_equal(st, CR_OK);
        cr_err_clear(&e);
        st = cr_dataset_load(&ds, &s, &d, 1, &e);
        if (st == CR_OK) {
            fprintf(stderr, "case %zu loaded but should fail\n", i);
            cr_dataset_free(&ds);
            fail();
        }
        if (!strstr(e.msg, cases[i].msg)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, e.msg, cases[i].msg);
            fail();
        }
        assert_null(ds.cat); /* nothing left allocated */
        cr_schema_free(&s);
        cr_test_rmdir(fx.dir);
    }
}

static void test_masks_from_columns_and_expressions(void **state) {
    (void)state;
    fixture fx;
    cr_data_cfg d;
    cr_schema s;
    cr_dataset ds;
    cr_error e;
    cr_test_tmpdir(fx.dir, sizeof fx.dir);
    /* An empty field in a mask column means "undefined here"; a label may
     * be empty where its mask is 0. A TSV by extension. */
    const char *tsv = "u\tseen\tscore\tb c\n"
                      "a\t1\t0.5\t1\n"
                      "b\t0\t\t0\n"
                      "c\t\t\t1\n"
                      "d\t1\t2\t0\n";
    char path[512];
    snprintf(path, sizeof path, "%s/data.tsv", fx.dir);
    write_text(path, tsv);
    assert_int_equal(setup(&fx, NULL, "data: {path: data.tsv, split: {by: fraction, valid: 0, test: 0}}\n",
                           "features: [{name: u, type: categorical, dim: 2}]\n"
                           "tasks:\n"
                           "  - {name: s, type: regression, label: score, mask: seen}\n"
                           "  - {name: big, label: \"score > 1\", mask: \"seen == 1 && score >= 0\"}\n"
                           "  - {name: odd, label: b c}\n"
                           "  - {name: t, label: \"seen\", mask: s}\n",
                           &d, &s, &e),
                     CR_OK);
    cr_status st = cr_dataset_load(&ds, &s, &d, 1, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(st, CR_OK);
    int64_t n = ds.n;
    assert_int_equal(n, 4);
    static const float mask_s[4] = {1, 0, 0, 1}, lab_s[4] = {0.5f, 0, 0, 2};
    static const float mask_big[4] = {1, 0, 0, 1}, lab_big[4] = {0, 0, 0, 1};
    static const float lab_odd[4] = {1, 0, 1, 0};
    static const float mask_t[4] = {1, 0, 0, 1}, lab_t[4] = {1, 0, 0, 1};
    for (int r = 0; r < 4; r++) {
        assert_true(ds.mask[0 * n + r] == mask_s[r] && ds.label[0 * n + r] == lab_s[r]);
        assert_true(ds.mask[1 * n + r] == mask_big[r] && ds.label[1 * n + r] == lab_big[r]);
        assert_true(ds.mask[2 * n + r] == 1 && ds.label[2 * n + r] == lab_odd[r]);
        assert_true(ds.mask[3 * n + r] == mask_t[r] && ds.label[3 * n + r] == lab_t[r]);
    }
    cr_dataset_free(&ds);
    cr_schema_free(&s);
    cr_test_rmdir(fx.dir);
}

static void test_batch_gather(void **state) {
    (void)state;
    fixture fx;
    cr_data_cfg d;
    cr_schema s;
    cr_dataset ds;
    cr_batch b;
    cr_error e;
    load_main(&fx, time_data, G, &d, &s, &ds);
    int64_t n = ds.n;
    assert_int_equal(cr_batch_init(&b, &ds, 4, &e), CR_OK);
    uint32_t rows[3] = {5, 0, 199};
    assert_int_equal(cr_batch_gather(&b, &ds, rows, 3, &e), CR_OK);
    assert_int_equal(b.B, 3);
    for (int i = 0; i < 3; i++) {
        uint32_t r = rows[i];
        assert_memory_equal(b.cat + i * 4, ds.cat + r * 4, 4 * sizeof(int32_t));
        assert_true(b.dense[i] == ds.dense[r]);
        for (int t = 0; t < 3; t++) {
            assert_true(b.label[t * 3 + i] == ds.label[t * n + r]);
            assert_true(b.mask[t * 3 + i] == ds.mask[t * n + r]);
        }
        assert_true(b.weight[i] == ds.weight[r]);
        assert_true(b.extra[i] == ds.extra[r]);
        assert_int_equal(b.group[i], ds.group[r]);
        assert_int_equal(b.user[i], ds.user[r]);
        assert_int_equal(b.rows[i], r);
        for (int m = 0; m < 2; m++) {
            int64_t len = ds.bag_off[m][r + 1] - ds.bag_off[m][r];
            assert_int_equal(b.bag_off[m][i + 1] - b.bag_off[m][i], len);
            if (len)
                assert_memory_equal(b.bag_ids[m] + b.bag_off[m][i], ds.bag_ids[m] + ds.bag_off[m][r],
                                    (size_t)len * sizeof(int32_t));
        }
    }
    assert_int_equal(b.bag_off[0][0], 0);
    /* A smaller batch reuses the buffers; bad requests are refused. */
    assert_int_equal(cr_batch_gather(&b, &ds, rows + 1, 1, &e), CR_OK);
    assert_int_equal(b.B, 1);
    assert_int_equal(b.bag_off[0][1], 2); /* row 0: "Comedy|Drama" */
    uint32_t many[5] = {0, 1, 2, 3, 4}, bad = 200;
    assert_int_equal(cr_batch_gather(&b, &ds, many, 5, &e), CR_ERR_ARG);
    HAS(e.msg, "at most 4");
    assert_int_equal(cr_batch_gather(&b, &ds, &bad, 1, &e), CR_ERR_ARG);
    HAS(e.msg, "row 200");
    cr_batch_free(&b);
    cr_dataset_free(&ds);
    cr_schema_free(&s);
    cr_test_rmdir(fx.dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_split_and_encodings),
        cmocka_unit_test(test_fraction_split),
        cmocka_unit_test(test_column_split),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_masks_from_columns_and_expressions),
        cmocka_unit_test(test_batch_gather),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
