/*
 * test_synth.c - the synthetic two-domain generator: same seed same bytes,
 * a different seed different ones; row counts, the traffic ratio and the
 * time split; source-only signals empty in the target; labels only on
 * clicks; the files load through the trainer's config and dataset loader;
 * config errors name the file and the field.
 */
#include "util/testutil.h"

#include "../src/core/yaml.h"
#include "../src/data/config.h"
#include "../src/data/data.h"
#include "../src/data/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void small(cr_synth_cfg *c) {
    cr_synth_defaults(c);
    c->users = 60;
    c->genres = 6;
    c->source.requests = 400;
    c->source.items = 120;
    c->target.requests = 40;
    c->target.items = 30;
    c->target.candidates = 4;
    c->item_overlap = 0.2;
}

static char *slurp(const char *p, size_t *n) {
    char *t = NULL;
    cr_error e = {0};
    assert_int_equal(cr_read_file(p, &t, n, &e), CR_OK);
    return t;
}

static void test_deterministic(void **st) {
    char d1[256], d2[256], d3[256], p[512];
    cr_test_tmpdir(d1, sizeof d1);
    cr_test_tmpdir(d2, sizeof d2);
    cr_test_tmpdir(d3, sizeof d3);
    cr_synth_cfg c;
    small(&c);
    cr_error e = {0};
    assert_int_equal(cr_synth_write(&c, d1, NULL, NULL, &e), CR_OK);
    assert_int_equal(cr_synth_write(&c, d2, NULL, NULL, &e), CR_OK);
    c.seed = 2;
    assert_int_equal(cr_synth_write(&c, d3, NULL, NULL, &e), CR_OK);
    const char *f[2] = {"source.csv", "target.csv"};
    for (int i = 0; i < 2; i++) {
        size_t n1, n2, n3;
        snprintf(p, sizeof p, "%s/%s", d1, f[i]);
        char *a = slurp(p, &n1);
        snprintf(p, sizeof p, "%s/%s", d2, f[i]);
        char *b = slurp(p, &n2);
        snprintf(p, sizeof p, "%s/%s", d3, f[i]);
        char *x = slurp(p, &n3);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        assert_true(n1 != n3 || memcmp(a, x, n1) != 0);
        cr_free(a);
        cr_free(b);
        cr_free(x);
    }
    cr_test_rmdir(d1);
    cr_test_rmdir(d2);
    cr_test_rmdir(d3);
}

/* Walk a written file with the CSV reader and check its structure. */
static void check_file(const char *path, int is_target, const cr_synth_cfg *c,
                       const cr_synth_stats *s) {
    cr_csv *csv;
    cr_error e = {0};
    assert_int_equal(cr_csv_open(&csv, path, 0, &e), CR_OK);
    int col_sig = cr_csv_find(csv, "user_sig1"), col_click = cr_csv_find(csv, "click");
    int col_split = cr_csv_find(csv, "split"), col_req = cr_csv_find(csv, "request_id");
    int col_lab = cr_csv_find(csv, is_target ? "engagement" : "watch_time");
    int col_item = cr_csv_find(csv, "item_id");
    assert_true(col_sig >= 0 && col_click >= 0 && col_split >= 0 && col_req >= 0 && col_lab >= 0);
    assert_int_equal(cr_csv_find(csv, is_target ? "watch_time" : "engagement"), -1);
    int64_t rows = 0, clicks = 0, split[3] = {0, 0, 0}, shared = 0;
    const char *last_req = NULL;
    char prev[64] = "";
    int64_t requests = 0;
    for (;;) {
        int done;
        assert_int_equal(cr_csv_next(csv, &done, &e), CR_OK);
        if (done) break;
        rows++;
        const char *sig = cr_csv_field(csv, col_sig, NULL);
        assert_int_equal(sig[0] == 0, is_target); /* the target never logs the signals */
        int click = cr_csv_field(csv, col_click, NULL)[0] == '1';
        clicks += click;
        /* a label exactly where there is a click */
        assert_int_equal(cr_csv_field(csv, col_lab, NULL)[0] != 0, click);
        const char *sp = cr_csv_field(csv, col_split, NULL);
        split[!strcmp(sp, "train") ? 0 : !strcmp(sp, "valid") ? 1 : 2]++;
        last_req = cr_csv_field(csv, col_req, NULL);
        if (strcmp(prev, last_req)) requests++;
        snprintf(prev, sizeof prev, "%s", last_req);
        if (is_target) shared += cr_csv_field(csv, col_item, NULL)[0] == 's';
    }
    cr_csv_close(csv);
    const cr_synth_domain *d = is_target ? &c->target : &c->source;
    assert_int_equal(requests, d->requests);
    assert_int_equal(rows, d->requests * d->candidates);
    assert_int_equal(rows, s->rows[is_target]);
    assert_int_equal(clicks, s->clicks[is_target]);
    for (int i = 0; i < 3; i++) assert_int_equal(split[i], s->split_rows[is_target][i]);
    /* 80 / 10 / 10 by time */
    assert_int_equal(split[0], (int64_t)(0.8 * (double)d->requests) * d->candidates);
    assert_true(clicks > rows / 20 && clicks < rows * 9 / 10);
    if (is_target) assert_true(shared > 0); /* item_overlap 0.2: some source items appear */
}

static void test_counts_and_columns(void **st) {
    char dir[256], p[512];
    cr_test_tmpdir(dir, sizeof dir);
    cr_synth_cfg c;
    small(&c);
    cr_synth_stats s;
    cr_error e = {0};
    assert_int_equal(cr_synth_write(&c, dir, NULL, &s, &e), CR_OK);
    assert_int_equal(s.requests[0], 400);
    assert_int_equal(s.requests[1], 40);
    assert_int_equal(s.requests[0] / s.requests[1], 10); /* the traffic ratio */
    assert_int_equal(s.shared_items, 6);
    snprintf(p, sizeof p, "%s/source.csv", dir);
    check_file(p, 0, &c, &s);
    snprintf(p, sizeof p, "%s/target.csv", dir);
    check_file(p, 1, &c, &s);
    cr_test_rmdir(dir);
}

static void test_loads_with_trainer(void **st) {
    char dir[256], p[512];
    cr_test_tmpdir(dir, sizeof dir);
    cr_synth_cfg c;
    small(&c);
    cr_error e = {0};
    assert_int_equal(cr_synth_write(&c, dir, NULL, NULL, &e), CR_OK);
    const char *yaml =
        "data:\n"
        "  path: target.csv\n"
        "  split: {by: column, column: split}\n"
        "  group: request_id\n"
        "  user: user_id\n"
        "  slices: [new_release]\n"
        "features:\n"
        "  - {name: user, type: categorical, column: user_id, dim: 4}\n"
        "  - {name: item, type: categorical, column: item_id, dim: 4}\n"
        "  - {name: genre, type: categorical, column: genre, dim: 2}\n"
        "  - {name: item_f1, type: numeric, transform: zscore}\n"
        "  - {name: item_popularity, type: numeric, transform: log1p_zscore}\n"
        "  - {name: user_sig1, type: numeric, default: 0}\n"
        "tasks:\n"
        "  - {name: click, type: binary, label: click}\n"
        "  - {name: engagement, type: regression, label: engagement, mask: click}\n"
        "  - {name: complete, type: binary, label: complete, mask: click}\n";
    snprintf(p, sizeof p, "%s/job.yaml", dir);
    assert_int_equal(cr_write_file_atomic(p, yaml, strlen(yaml), &e), CR_OK);
    cr_yaml_doc *doc;
    assert_int_equal(cr_yaml_load(&doc, p, &e), CR_OK);
    cr_data_cfg dc;
    cr_schema sc;
    cr_status s = cr_data_config_parse(cr_yaml_root(doc), p, &dc, &sc, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
    cr_dataset ds;
    s = cr_dataset_load(&ds, &sc, &dc, 1, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
    assert_int_equal(ds.n, 160);
    assert_int_equal(ds.n_split[0], 128);
    assert_int_equal(ds.n_split[1], 16);
    assert_int_equal(ds.n_split[2], 16);
    /* engagement is defined exactly on clicks */
    for (int64_t i = 0; i < ds.n; i++) assert_true(ds.mask[ds.n + i] == ds.label[i]);
    cr_dataset_free(&ds);
    cr_schema_free(&sc);
    cr_yaml_free(doc);
    cr_test_rmdir(dir);
}

static void test_config_errors(void **st) {
    char dir[256], p[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/s.yaml", dir);
    cr_error e = {0};
    const char *bad = "seed: 3\nsource: {requests: 10, itemz: 5}\n";
    assert_int_equal(cr_write_file_atomic(p, bad, strlen(bad), &e), CR_OK);
    cr_synth_cfg c;
    assert_int_equal(cr_synth_cfg_load(&c, p, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "s.yaml:2"));
    assert_non_null(strstr(e.msg, "itemz"));
    const char *few = "target: {items: 10, candidates: 5, catalogue: 0.2}\n";
    assert_int_equal(cr_write_file_atomic(p, few, strlen(few), &e), CR_OK);
    assert_int_equal(cr_synth_cfg_load(&c, p, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "fewer than"));
    const char *ok = "seed: 7\nusers: 30\nsource: {requests: 50, name: src}\n";
    assert_int_equal(cr_write_file_atomic(p, ok, strlen(ok), &e), CR_OK);
    assert_int_equal(cr_synth_cfg_load(&c, p, &e), CR_OK);
    assert_int_equal((int)c.seed, 7);
    assert_int_equal(c.users, 30);
    assert_int_equal(c.source.requests, 50);
    assert_string_equal(c.source.name, "src");
    assert_int_equal(c.target.requests, 1000); /* default kept */
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_counts_and_columns),
        cmocka_unit_test(test_loads_with_trainer),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
