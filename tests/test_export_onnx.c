/*
 * test_export_onnx.c - the ONNX exporter's contract in process: what it
 * does not cover is refused by name and writes nothing, never-served heads
 * are dropped by the same rule as the safetensors export, and the encoded
 * inputs are the dataset encoder's values (the graph's numeric transform of
 * a raw value gives the dataset's transformed value bit for bit). The graph
 * itself is checked with onnx.checker and ONNX Runtime in tests/onnx.sh.
 */
#include "util/testutil.h"
#include "util/tiny_log.h"

#include "../src/data/config.h"
#include "../src/rank/checkpoint.h"
#include "../src/rank/export_onnx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A ranker on the tiny log's schema; with model (600 bytes) also saved
 * there as <dir>/m.safetensors. */
static cr_ranker *make_ranker(cr_tiny_log *t, cr_arch arch, int extra_head, char *model) {
    cr_model_cfg mc;
    cr_model_cfg_defaults(&mc, &t->s);
    mc.arch = arch;
    if (extra_head) { /* a never-served head on tower 0, as distillation adds */
        cr_head *h = &mc.heads[mc.n_heads++];
        *h = mc.heads[0];
        snprintf(h->name, sizeof h->name, "click_distill");
        h->served = 0;
    }
    cr_ranker *m = NULL;
    cr_error e = {0};
    if (cr_ranker_create(&m, &t->s, &mc, 3, &e)) fail_msg("create: %s", e.msg);
    if (model) {
        snprintf(model, 600, "%s/m.safetensors", t->dir);
        if (cr_ranker_save(m, &t->s, model, NULL, &e)) fail_msg("save: %s", e.msg);
    }
    return m;
}

/* Each thing the exporter does not mirror: an error naming it, no file. */
static void test_uncovered_is_named(void **state) {
    (void)state;
    cr_tiny_log t;
    assert_int_equal(cr_tiny_log_make(&t, 120), 0);
    cr_ranker *m = make_ranker(&t, CR_ARCH_PLE, 0, NULL);
    char out[600], vocab[600];
    snprintf(out, sizeof out, "%s/m.onnx", t.dir);
    snprintf(vocab, sizeof vocab, "%s/m.vocab.json", t.dir);
    cr_error e = {0};
    cr_feature *tags = &t.s.features[2], *age = &t.s.features[4], *pop = &t.s.features[5];
    assert_int_equal(tags->kind, CR_FEAT_MULTI);
    assert_int_equal(pop->kind, CR_FEAT_NUMERIC);

    tags->pooling = (cr_pooling)7;
    assert_int_equal(cr_onnx_write(m, &t.s, out, NULL, CR_PRECISION_FP32, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "feature 'tags': pooling 7 is not covered"));
    tags->pooling = CR_POOL_MEAN;

    pop->transform = (cr_transform)9;
    assert_int_equal(cr_onnx_write(m, &t.s, out, NULL, CR_PRECISION_FP32, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "feature 'pop': transform 9 is not covered"));
    pop->transform = CR_TX_LOG1P_ZSCORE;

    cr_feat_kind k = age->kind;
    age->kind = (cr_feat_kind)11;
    assert_int_equal(cr_onnx_write(m, &t.s, out, NULL, CR_PRECISION_FP32, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "feature 'age': kind 11 is not covered"));
    age->kind = k;

    m->cfg.heads[1].kind = (cr_head_kind)5;
    assert_int_equal(cr_onnx_write(m, &t.s, out, NULL, CR_PRECISION_FP32, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "head 'stay': kind 5 is not covered"));
    m->cfg.heads[1].kind = CR_HEAD_REGRESSION;

    cr_arch a = m->cfg.arch;
    m->cfg.arch = (cr_arch)6;
    assert_int_equal(cr_onnx_write(m, &t.s, out, NULL, CR_PRECISION_FP32, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "architecture 6 is not covered"));
    m->cfg.arch = a;

    assert_int_equal(cr_onnx_write(m, &t.s, out, NULL, CR_PRECISION_INT8, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "weights in int8 are not covered"));
    assert_false(cr_file_exists(out));
    assert_false(cr_file_exists(vocab));

    /* restored, the same model exports */
    assert_int_equal(cr_onnx_write(m, &t.s, out, NULL, CR_PRECISION_FP32, &e), CR_OK);
    assert_true(cr_file_exists(out));
    assert_true(cr_file_exists(vocab));
    cr_ranker_free(m);
    cr_tiny_log_free(&t);
}

/* The never-served head is dropped, by the rule the safetensors export uses. */
static void test_served_heads_only(void **state) {
    (void)state;
    cr_tiny_log t;
    assert_int_equal(cr_tiny_log_make(&t, 120), 0);
    char model[600], out[600], st[600];
    cr_ranker *m = make_ranker(&t, CR_ARCH_MMOE, 1, model);
    snprintf(out, sizeof out, "%s/m.onnx", t.dir);
    snprintf(st, sizeof st, "%s/served.safetensors", t.dir);
    cr_error e = {0};
    int dropped = -1, dropped_st = -1;
    assert_int_equal(cr_ranker_export_onnx(model, out, NULL, CR_PRECISION_FP32, &dropped, &e), CR_OK);
    assert_int_equal(cr_ranker_export(model, st, &dropped_st, &e), CR_OK);
    assert_int_equal(dropped, 1);
    assert_int_equal(dropped_st, 1);
    /* the public call reaches the same export */
    char pub[600];
    snprintf(pub, sizeof pub, "%s/pub.onnx", t.dir);
    int dropped_pub = -1;
    assert_int_equal(cr_export(model, pub, "onnx-bf16", &dropped_pub, &e), CR_OK);
    assert_int_equal(dropped_pub, 1);
    snprintf(pub, sizeof pub, "%s/pub.vocab.json", t.dir);
    assert_true(cr_file_exists(pub));
    assert_int_equal(cr_export(model, pub, "tflite", NULL, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "onnx-bf16"));
    char vpath[600];
    snprintf(vpath, sizeof vpath, "%s/m.vocab.json", t.dir);
    char *v = NULL;
    size_t n = 0;
    assert_int_equal(cr_read_file(vpath, &v, &n, &e), CR_OK);
    assert_non_null(strstr(v, "\"outputs\":[{\"name\":\"click\""));
    assert_null(strstr(v, "click_distill"));
    cr_free(v);
    cr_ranker_free(m);
    cr_tiny_log_free(&t);
}

/* Encoded inputs: the dataset encoder's ids, padded bags with their mask,
 * and raw values whose transform (the graph's arithmetic, in double) is the
 * dataset's transformed value exactly; empty values are NaN. */
static void test_encode_is_the_dataset_encoding(void **state) {
    (void)state;
    cr_tiny_log t;
    assert_int_equal(cr_tiny_log_make(&t, 150), 0);
    char model[600], enc[600];
    cr_ranker *m = make_ranker(&t, CR_ARCH_SHARED_BOTTOM, 0, model);
    snprintf(enc, sizeof enc, "%s/in.safetensors", t.dir);
    cr_error e = {0};
    int64_t rows = 0;
    assert_int_equal(cr_onnx_encode(model, t.csv, enc, &rows, &e), CR_OK);
    cr_dataset ds;
    assert_int_equal(cr_dataset_load(&ds, &t.s, &t.dc, 0, &e), CR_OK);
    assert_int_equal(rows, ds.n);
    cr_st_file f;
    assert_int_equal(cr_st_open(&f, enc, &e), CR_OK);

    const cr_st_tensor *user = cr_st_find(&f, "user"), *age = cr_st_find(&f, "age");
    const cr_st_tensor *pop = cr_st_find(&f, "pop"), *ids = cr_st_find(&f, "tags.ids");
    const cr_st_tensor *mask = cr_st_find(&f, "tags.mask");
    assert_true(user && age && pop && ids && mask);
    assert_int_equal(user->dtype, CR_DT_I64);
    assert_int_equal(pop->dtype, CR_DT_F64);
    assert_int_equal(ids->ndim, 2);
    assert_int_equal(mask->dtype, CR_DT_F32);
    const cr_feature *fa = &t.s.features[4], *fp = &t.s.features[5];
    int64_t L = ids->shape[1];
    int empty = 0; /* the tiny log leaves every 7th age and 5th pop empty */
    for (int64_t r = 0; r < ds.n; r++) {
        int64_t u;
        memcpy(&u, (const char *)user->data + r * 8, 8);
        assert_int_equal(u, ds.cat[r * ds.n_cat + 0]);
        double a, p;
        memcpy(&a, (const char *)age->data + r * 8, 8);
        memcpy(&p, (const char *)pop->data + r * 8, 8);
        /* the bucket slot is the third cat slot (user, item, age) */
        int32_t want = ds.cat[r * ds.n_cat + 2];
        assert_int_equal(isnan(a) ? 0 : cr_feature_bucket(fa, a), want);
        empty += isnan(a) + isnan(p);
        double x = isnan(p) ? fp->default_value : p;
        float tx = (float)((log1p(x) - fp->mean) / (fp->std > 0 ? fp->std : 1.0));
        assert_true(tx == ds.dense[r * ds.n_dense + 0]);
        int64_t a0 = ds.bag_off[0][r], n = ds.bag_off[0][r + 1] - a0;
        for (int64_t j = 0; j < L; j++) {
            int64_t id;
            float mk;
            memcpy(&id, (const char *)ids->data + (r * L + j) * 8, 8);
            memcpy(&mk, (const char *)mask->data + (r * L + j) * 4, 4);
            assert_true(mk == (j < n ? 1.0f : 0.0f));
            assert_int_equal(id, j < n ? ds.bag_ids[0][a0 + j] : 0);
        }
    }
    assert_true(empty >= ds.n / 7 + ds.n / 5);
    cr_st_close(&f);
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_tiny_log_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncovered_is_named),
        cmocka_unit_test(test_served_heads_only),
        cmocka_unit_test(test_encode_is_the_dataset_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
