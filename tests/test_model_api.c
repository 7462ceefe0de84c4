/*
 * test_model_api.c - the public cr_model_* API: a saved ranker, scored from
 * rows of text, must give exactly the predictions the training-time data
 * path gives for the same rows; bad values are errors naming row and column.
 */
#include "util/testutil.h"
#include "util/tiny_log.h"

#include "../src/data/config.h"
#include "../src/rank/checkpoint.h"
#include "../src/rank/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_score_matches_training_path(void **state) {
    (void)state;
    cr_tiny_log t;
    assert_int_equal(cr_tiny_log_make(&t, 200), 0);
    char model[512];
    snprintf(model, sizeof model, "%s/m.safetensors", t.dir);
    cr_error e = {0};
    cr_schema *s = &t.s; /* freed with t */
    cr_dataset ds;
    assert_int_equal(cr_dataset_load(&ds, s, &t.dc, 0, &e), CR_OK);
    cr_model_cfg mc;
    cr_model_cfg_defaults(&mc, s);
    mc.arch = CR_ARCH_MMOE;
    cr_ranker *r;
    assert_int_equal(cr_ranker_create(&r, s, &mc, 5, &e), CR_OK);
    assert_int_equal(cr_ranker_save(r, s, model, NULL, &e), CR_OK);

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
    assert_int_equal(cr_csv_open(&in, t.csv, 0, &e), CR_OK);
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

    /* the same rows as typed columns: numbers as doubles (missing as NaN),
     * integral ids as int64, the rest as text; every score the same bits */
    cr_column *cols = calloc((size_t)NI, sizeof *cols);
    void **bufs = calloc((size_t)NI, sizeof *bufs);
    int n_num = 0, n_id = 0;
    for (int j = 0; j < NI; j++) {
        int ints = 1;
        for (int64_t i = 0; i < n && ints; i++) {
            char *end;
            const char *v = vals[i * NI + j];
            (void)strtoll(v, &end, 10);
            ints = *v && !*end;
        }
        if (cr_model_input_is_number(m, j)) {
            double *x = malloc((size_t)n * sizeof *x);
            for (int64_t i = 0; i < n; i++)
                x[i] = *vals[i * NI + j] ? strtod(vals[i * NI + j], NULL) : NAN;
            cols[j] = (cr_column){CR_COL_F64, x, 0};
            bufs[j] = x;
            n_num++;
        } else if (ints) {
            int64_t *x = malloc((size_t)n * sizeof *x);
            for (int64_t i = 0; i < n; i++) x[i] = strtoll(vals[i * NI + j], NULL, 10);
            cols[j] = (cr_column){CR_COL_I64, x, 1};
            bufs[j] = x;
            n_id++;
        } else {
            const char **x = malloc((size_t)n * sizeof *x);
            for (int64_t i = 0; i < n; i++) x[i] = vals[i * NI + j];
            cols[j] = (cr_column){CR_COL_TEXT, x, 1};
            bufs[j] = x;
        }
    }
    assert_true(n_num >= 1);
    float *colscore = malloc((size_t)NO * (size_t)n * sizeof(float));
    assert_int_equal(cr_model_score_columns(m, n, cols, colscore, &e), CR_OK);
    assert_memory_equal(colscore, got, (size_t)NO * (size_t)n * sizeof(float));
    /* a fractional number where an id is expected names row and column */
    for (int j = 0; j < NI; j++)
        if (cols[j].type == CR_COL_I64 || cols[j].type == CR_COL_TEXT) {
            if (cr_model_input_is_number(m, j)) continue;
            double *x = malloc((size_t)n * sizeof *x);
            for (int64_t i = 0; i < n; i++) x[i] = 1.5;
            cr_column keep = cols[j];
            cols[j] = (cr_column){CR_COL_F64, x, 1};
            assert_int_equal(cr_model_score_columns(m, n, cols, colscore, &e), CR_ERR_PARSE);
            assert_non_null(strstr(e.msg, "row 0"));
            assert_non_null(strstr(e.msg, "expected an id"));
            cols[j] = keep;
            free(x);
            break;
        }
    cols[0].type = (cr_column_type)9;
    assert_int_equal(cr_model_score_columns(m, n, cols, colscore, &e), CR_ERR_ARG);
    for (int j = 0; j < NI; j++) free(bufs[j]);
    free(bufs);
    free(cols);
    free(colscore);
    (void)n_id;

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
    cr_tiny_log_free(&t);
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
