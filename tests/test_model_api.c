/*
 * test_model_api.c - the public cr_model_* API: a saved ranker, scored from
 * rows of text, must give exactly the predictions the training-time data
 * path gives for the same rows; bad values are errors naming row and column.
 */
#include "util/testutil.h"

#include "../src/data/config.h"
#include "../src/rank/checkpoint.h"
#include "../src/rank/evaluate.h"

#include <stdlib.h>
#include <string.h>

static const char *yaml =
    "data:\n"
    "  path: d.csv\n"
    "  split: {by: fraction, valid: 0.2, test: 0.2, seed: 3}\n"
    "features:\n"
    "  - {name: user, type: categorical, column: user, dim: 4}\n"
    "  - {name: item, type: categorical, column: item, dim: 4, hash_buckets: 50}\n"
    "  - {name: tags, type: multi, column: tags, dim: 3, pooling: mean}\n"
    "  - {name: hist, type: multi, column: hist, share: user}\n"
    "  - {name: age, type: bucketized, column: age, dim: 2, boundaries: [20, 40, 60]}\n"
    "  - {name: pop, type: numeric, column: pop, transform: log1p_zscore, default: 1}\n"
    "tasks:\n"
    "  - {name: click, type: binary, label: click}\n"
    "  - {name: stay, type: regression, label: stay, mask: click}\n";

static void write_csv(const char *path, int n) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "user,item,tags,hist,age,pop,click,stay\n");
    cr_rng r;
    cr_rng_seed(&r, 9);
    static const char *tags[] = {"a", "b", "c", "a|b", "", "c|a|b"};
    for (int i = 0; i < n; i++) {
        int u = (int)cr_rng_below(&r, 12), it = (int)cr_rng_below(&r, 30);
        int click = (u + it) % 3 == 0;
        fprintf(f, "u%d,i%d,%s,u%d|u%d,%s,%s,%d,%s\n", u, it, tags[cr_rng_below(&r, 6)],
                (int)cr_rng_below(&r, 12), (int)cr_rng_below(&r, 14),
                i % 7 == 0 ? "" : (i % 2 ? "35" : "61"), i % 5 == 0 ? "" : "12.5", click,
                click ? "0.5" : "");
    }
    fclose(f);
}

static void test_score_matches_training_path(void **state) {
    (void)state;
    char dir[256], csv[512], model[512], cfgp[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/d.csv", dir);
    snprintf(cfgp, sizeof cfgp, "%s/c.yaml", dir);
    snprintf(model, sizeof model, "%s/m.safetensors", dir);
    write_csv(csv, 200);
    FILE *f = fopen(cfgp, "w");
    fputs(yaml, f);
    fclose(f);
    cr_error e = {0};
    cr_yaml_doc *doc;
    assert_int_equal(cr_yaml_load(&doc, cfgp, &e), CR_OK);
    cr_data_cfg dc;
    cr_schema s;
    assert_int_equal(cr_data_config_parse(cr_yaml_root(doc), cfgp, &dc, &s, &e), CR_OK);
    cr_yaml_free(doc);
    cr_dataset ds;
    assert_int_equal(cr_dataset_load(&ds, &s, &dc, 1, &e), CR_OK);
    cr_model_cfg mc;
    cr_model_cfg_defaults(&mc, &s);
    mc.arch = CR_ARCH_MMOE;
    cr_ranker *r;
    assert_int_equal(cr_ranker_create(&r, &s, &mc, 5, &e), CR_OK);
    assert_int_equal(cr_ranker_save(r, &s, model, NULL, &e), CR_OK);

    /* reference: the dataset path over every row, in file order */
    int64_t n = ds.n;
    uint32_t *rows = malloc((size_t)n * sizeof *rows);
    for (int64_t i = 0; i < n; i++) rows[i] = (uint32_t)i;
    float *ref = malloc((size_t)r->cfg.n_heads * (size_t)n * sizeof(float));
    assert_int_equal(cr_rank_predict_rows(r, &ds, rows, n, 64, ref, NULL, &e), CR_OK);

    /* the public API over the same rows as text */
    cr_model *m;
    assert_int_equal(cr_model_load(&m, model, &e), CR_OK);
    int NI = cr_model_n_inputs(m), NO = cr_model_n_outputs(m);
    assert_int_equal(NI, 6);
    assert_int_equal(NO, 2);
    assert_string_equal(cr_model_output_name(m, 1), "stay");
    assert_true(cr_model_output_is_binary(m, 0));
    cr_csv *in;
    assert_int_equal(cr_csv_open(&in, csv, 0, &e), CR_OK);
    char **vals = calloc((size_t)n * (size_t)NI, sizeof(char *));
    for (int64_t i = 0; i < n; i++) {
        int done;
        assert_int_equal(cr_csv_next(in, &done, &e), CR_OK);
        for (int j = 0; j < NI; j++)
            vals[i * NI + j] = strdup(cr_csv_field(in, cr_csv_find(in, cr_model_input_column(m, j)), NULL));
    }
    cr_csv_close(in);
    float *got = malloc((size_t)NO * (size_t)n * sizeof(float));
    assert_int_equal(cr_model_score(m, n, (const char *const *)vals, got, &e), CR_OK);
    /* Same rows, same weights; only the batch size differs from the
     * reference pass, which may change GEMM summation order: allow
     * float rounding, nothing more. */
    float *want = malloc((size_t)NO * (size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        for (int o = 0; o < NO; o++)
            want[i * NO + o] = ref[(size_t)cr_rank_task_head(r, o) * (size_t)n + (size_t)i];
    assert_true(cr_test_close("cr_model_score", got, want, (size_t)(n * NO), 1e-6, 1e-5));
    free(want);

    /* a bad number names the row and the column */
    char *saved = vals[3 * NI + 5];
    vals[3 * NI + 5] = "lots";
    assert_int_equal(cr_model_score(m, n, (const char *const *)vals, got, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "row 3"));
    assert_non_null(strstr(e.msg, "'pop'"));
    vals[3 * NI + 5] = saved;

    for (int64_t i = 0; i < n * NI; i++) free(vals[i]);
    free(vals);
    free(got);
    free(ref);
    free(rows);
    cr_model_free(m);
    cr_ranker_free(r);
    cr_dataset_free(&ds);
    cr_schema_free(&s);
    cr_test_rmdir(dir);
}

static void test_load_errors(void **state) {
    (void)state;
    cr_error e = {0};
    cr_model *m;
    assert_int_not_equal(cr_model_load(&m, "/nonexistent/model.safetensors", &e), CR_OK);
    assert_non_null(strstr(e.msg, "/nonexistent/model.safetensors"));
    assert_int_equal(cr_model_load(&m, "tests/fixtures/st_reference.safetensors", &e), CR_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "not a crossrec ranker"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_matches_training_path),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
