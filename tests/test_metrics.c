/*
 * test_metrics.c - evaluation metrics against values worked out by hand
 * (AUC with ties and weights, GAUC, NDCG@k and Recall@k, R^2, logloss,
 * calibration), masks and slices, undefined cases (NaN), bad input, the
 * JSON form, and a random case checked against an O(n^2) pairwise AUC.
 */
#include "util/testutil.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/rank/metrics.h"

#define EPS 1e-12

static cr_eval_input input(const float *pred, const float *label, int64_t n, int is_binary) {
    cr_eval_input in;
    memset(&in, 0, sizeof in);
    in.pred = pred;
    in.label = label;
    in.n = n;
    in.is_binary = is_binary;
    return in;
}

static void test_auc_ties_and_weights(void **state) {
    (void)state;
    /* No ties: the textbook example, 3 of 4 pairs ordered. */
    const float s0[4] = {0.1f, 0.4f, 0.35f, 0.8f}, y0[4] = {0, 0, 1, 1};
    assert_float_equal(cr_auc(s0, y0, NULL, 4), 0.75, EPS);
    /* Positives {0.5, 0.8}, negatives {0.5, 0.2}: pairs 0.5, 1, 1, 1. */
    const float s[4] = {0.5f, 0.5f, 0.2f, 0.8f}, y[4] = {1, 0, 0, 1};
    assert_float_equal(cr_auc(s, y, NULL, 4), 3.5 / 4.0, EPS);
    /* Weight 2 on the tied positive: (2*0.5 + 2*1 + 1 + 1) / (3 * 2). */
    const float w[4] = {2, 1, 1, 1};
    assert_float_equal(cr_auc(s, y, w, 4), 5.0 / 6.0, EPS);
    /* Everything tied: exactly one half. */
    const float st[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    assert_float_equal(cr_auc(st, y, NULL, 4), 0.5, EPS);
    /* Perfectly reversed scores. */
    const float sr[4] = {0.1f, 0.9f, 0.8f, 0.2f};
    assert_float_equal(cr_auc(sr, y, NULL, 4), 0.0, EPS);
}

static void test_auc_one_class_is_nan(void **state) {
    (void)state;
    const float s[3] = {0.1f, 0.5f, 0.9f}, ones[3] = {1, 1, 1}, zeros[3] = {0, 0, 0};
    assert_true(isnan(cr_auc(s, ones, NULL, 3)));
    assert_true(isnan(cr_auc(s, zeros, NULL, 3)));
    assert_true(isnan(cr_auc(s, ones, NULL, 0)));
    /* a class whose only rows weigh 0 is absent */
    const float y[3] = {1, 0, 0}, w[3] = {0, 1, 1};
    assert_true(isnan(cr_auc(s, y, w, 3)));
    const float sn[3] = {0.1f, NAN, 0.9f};
    assert_true(isnan(cr_auc(sn, y, NULL, 3)));

    cr_eval_input in = input(s, ones, 3, 1);
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.positives, 3);
    assert_true(isnan(m.auc));
    assert_false(isnan(m.logloss));
    in.label = zeros;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_true(isnan(m.auc));
    assert_true(isnan(m.calibration)); /* mean label 0 */
}

static void test_gauc_by_hand(void **state) {
    (void)state;
    /* user 7: AUC 1 over 3 rows; user 3: AUC 0.125 over 4 rows (one tied
     * pair); user 5: positives only, left out. Rows are interleaved.
     * GAUC = (3*1 + 4*0.125) / 7 = 0.5. */
    const int64_t user[9] = {7, 3, 5, 3, 7, 3, 5, 7, 3};
    const float pred[9] = {0.9f, 0.3f, 0.5f, 0.6f, 0.2f, 0.4f, 0.7f, 0.5f, 0.4f};
    const float label[9] = {1, 1, 1, 0, 0, 1, 1, 0, 0};
    cr_eval_input in = input(pred, label, 9, 1);
    in.user = user;
    cr_task_metrics m;
    cr_error e;
    assert_int_equal(cr_eval_task(&in, &m, &e), CR_OK);
    assert_float_equal(m.gauc, 0.5, EPS);
    assert_int_equal(m.gauc_users, 2);
    assert_int_equal(m.gauc_rows, 7);
    assert_float_equal(m.auc, cr_auc(pred, label, NULL, 9), EPS);

    /* No user with both classes: NaN, zero users. */
    const float yl[9] = {1, 0, 1, 0, 1, 0, 1, 1, 0};
    in.label = yl;
    assert_int_equal(cr_eval_task(&in, &m, &e), CR_OK);
    assert_true(isnan(m.gauc));
    assert_int_equal(m.gauc_users, 0);
    assert_false(isnan(m.auc));
}

static void test_ndcg_recall_by_hand(void **state) {
    (void)state;
    /* Request 10 (rows 0,2,4,6): labels in predicted order 0,1,0,1.
     *   DCG@3 = 1/log2(3), IDCG@3 = 1 + 1/log2(3), Recall@3 = 1/2.
     * Request 20 (rows 1,5): no positive, skipped.
     * Request 30 (rows 3,7): tied predictions, row 3 (label 0) first by row
     *   order: DCG@3 = 1/log2(3), IDCG = 1, Recall = 1. */
    const int64_t group[8] = {10, 20, 10, 30, 10, 20, 10, 30};
    const float pred[8] = {0.9f, 0.4f, 0.8f, 0.5f, 0.7f, 0.3f, 0.6f, 0.5f};
    const float label[8] = {0, 0, 1, 0, 0, 0, 1, 1};
    cr_eval_input in = input(pred, label, 8, 1);
    in.group = group;
    in.k = 3;
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    double l3 = 1.0 / log2(3.0);
    double n10 = l3 / (1.0 + l3), n30 = l3;
    assert_float_equal(m.ndcg, (n10 + n30) / 2.0, EPS);
    assert_float_equal(m.recall, (0.5 + 1.0) / 2.0, EPS);
    assert_int_equal(m.rank_requests, 2);
    assert_int_equal(m.k, 3);

    /* k = 1: request 10 puts a negative first (0, 0); request 30 too,
     * because the tie goes to the earlier row. */
    in.k = 1;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_float_equal(m.ndcg, 0.0, EPS);
    assert_float_equal(m.recall, 0.0, EPS);
    /* Swap the tied rows' labels: request 30 is now perfect at 1. */
    const float label2[8] = {0, 0, 1, 1, 0, 0, 1, 0};
    in.label = label2;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_float_equal(m.ndcg, 0.5, EPS);
    assert_float_equal(m.recall, 0.5, EPS);

    /* No group ids, or k = 0: no ranking metrics. */
    in.group = NULL;
    in.k = 3;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.k, 0);
    assert_true(isnan(m.ndcg));
}

static void test_ndcg_graded_regression(void **state) {
    (void)state;
    /* Graded gains: predicted order has labels 0, 2, 3; at k = 2
     * DCG = 2/log2(3), IDCG = 3 + 2/log2(3); relevant = label > 0 (2 rows),
     * one of them in the top 2. */
    const int64_t group[3] = {1, 1, 1};
    const float pred[3] = {0.9f, 0.5f, 0.1f}, label[3] = {0, 2, 3};
    cr_eval_input in = input(pred, label, 3, 0);
    in.group = group;
    in.k = 2;
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    double l3 = 1.0 / log2(3.0);
    assert_float_equal(m.ndcg, 2.0 * l3 / (3.0 + 2.0 * l3), EPS);
    assert_float_equal(m.recall, 0.5, EPS);
    /* k beyond the request's length uses all of it: NDCG of a perfect order is 1 */
    const float pred2[3] = {0.1f, 0.5f, 0.9f};
    in.pred = pred2;
    in.k = 50;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_float_equal(m.ndcg, 1.0, EPS);
    assert_float_equal(m.recall, 1.0, EPS);
    /* Negative gains are rejected, naming the row. */
    const float bad[3] = {0, -1, 3};
    in.label = bad;
    cr_error e;
    assert_int_equal(cr_eval_task(&in, &m, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "row 1"));
}

static void test_regression_by_hand(void **state) {
    (void)state;
    /* mean label 2.75, SST = 8.75, SSE = 3: R^2 = 1 - 3/8.75. */
    const float pred[4] = {1, 2, 3, 4}, label[4] = {1, 3, 2, 5};
    cr_eval_input in = input(pred, label, 4, 0);
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.n, 4);
    assert_float_equal(m.r2, 1.0 - 3.0 / 8.75, EPS);
    assert_float_equal(m.rmse, sqrt(0.75), EPS);
    assert_float_equal(m.mae, 0.75, EPS);
    assert_float_equal(m.mean_pred, 2.5, EPS);
    assert_float_equal(m.mean_label, 2.75, EPS);
    assert_true(isnan(m.auc)); /* not a binary task */
    /* Constant labels: R^2 undefined. */
    const float flat[4] = {2, 2, 2, 2};
    in.label = flat;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_true(isnan(m.r2));
    assert_float_equal(m.mae, 1.0, EPS);
    /* Non-finite values are rejected. */
    const float inf[4] = {1, 2, INFINITY, 4};
    in.pred = inf;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_ERR_ARG);
}

static void test_logloss_and_calibration(void **state) {
    (void)state;
    const float pred[4] = {0.2f, 0.4f, 0.6f, 0.8f}, label[4] = {0, 1, 0, 0};
    cr_eval_input in = input(pred, label, 4, 1);
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    double ll = -(log(1.0 - (double)0.2f) + log((double)0.4f) + log(1.0 - (double)0.6f) +
                  log(1.0 - (double)0.8f)) / 4.0;
    assert_float_equal(m.logloss, ll, 1e-12);
    assert_float_equal(m.mean_pred, 0.5, 1e-7);
    assert_float_equal(m.calibration, 0.5 / 0.25, 1e-6);
    assert_int_equal(m.positives, 1);
    /* Confident mistakes are clipped at 1e-7: each costs -log(1e-7). */
    const float p2[2] = {0.0f, 1.0f}, y2[2] = {1, 0};
    in = input(p2, y2, 2, 1);
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_float_equal(m.logloss, -log(1e-7), 1e-6);
    /* Logits are not probabilities. */
    const float logit[2] = {-2.0f, 1.5f};
    in.pred = logit;
    cr_error e;
    assert_int_equal(cr_eval_task(&in, &m, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "row 0"));
    const float y3[2] = {2, 0};
    in.pred = p2;
    in.label = y3;
    assert_int_equal(cr_eval_task(&in, &m, &e), CR_ERR_ARG);
    in.label = y2;
    in.k = -1;
    assert_int_equal(cr_eval_task(&in, &m, &e), CR_ERR_ARG);
}

static void test_mask_and_slice(void **state) {
    (void)state;
    /* Rows 4-5 carry garbage (a logit, a bad label) that only the mask hides. */
    const float pred[6] = {0.5f, 0.5f, 0.2f, 0.8f, 7.0f, 0.3f};
    const float label[6] = {1, 0, 0, 1, 1, 9};
    const float mask[6] = {1, 1, 1, 1, 0, 0};
    cr_eval_input in = input(pred, label, 6, 1);
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_ERR_ARG);
    in.mask = mask;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.n, 4);
    assert_float_equal(m.auc, 3.5 / 4.0, EPS);
    assert_float_equal(m.mean_label, 0.5, EPS);

    /* A slice keeps rows 0, 2, 3: pairs (0.5>0.2), (0.8>0.2) -> 1. */
    const uint8_t slice[6] = {1, 0, 1, 1, 1, 1};
    in.slice = slice;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.positives, 2);
    assert_float_equal(m.auc, 1.0, EPS);

    /* Everything filtered out: n = 0 and every metric NaN, no error. */
    const uint8_t none[6] = {0};
    in.slice = none;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.n, 0);
    assert_true(isnan(m.auc) && isnan(m.logloss) && isnan(m.mean_pred));

    /* The mask also filters ranking and regression metrics. */
    const float rp[4] = {1, 2, 3, 100}, ry[4] = {1, 2, 3, -50}, rm[4] = {1, 1, 1, 0};
    in = input(rp, ry, 4, 0);
    in.mask = rm;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.n, 3);
    assert_float_equal(m.r2, 1.0, EPS);
    assert_float_equal(m.rmse, 0.0, EPS);
}

/* ---- a random case against brute force --------------------------------------- */

static double pairwise_auc(const float *s, const float *y, const float *w, const int64_t *user,
                           int64_t u, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (user && user[i] != u) continue;
        if (!(y[i] > 0.5f)) continue;
        for (int64_t j = 0; j < n; j++) {
            if (user && user[j] != u) continue;
            if (y[j] > 0.5f) continue;
            double ww = (w ? w[i] : 1.0) * (w ? w[j] : 1.0);
            num += ww * (s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0);
            den += ww;
        }
    }
    return den > 0 ? num / den : NAN;
}

static void test_random_against_pairwise(void **state) {
    (void)state;
    enum { N = 1500, USERS = 40 };
    float *s = malloc(N * sizeof *s), *y = malloc(N * sizeof *y), *w = malloc(N * sizeof *w);
    int64_t *user = malloc(N * sizeof *user);
    assert_non_null(s);
    assert_non_null(y);
    assert_non_null(w);
    assert_non_null(user);
    cr_rng r;
    cr_rng_seed(&r, 42);
    for (int i = 0; i < N; i++) {
        /* coarse scores so that many ties occur; labels correlated with them */
        s[i] = (float)(int)(cr_rng_uniform(&r) * 50.0) / 50.0f;
        y[i] = cr_rng_uniform(&r) < 0.2 + 0.6 * s[i] ? 1.0f : 0.0f;
        w[i] = (float)(0.25 + cr_rng_uniform(&r));
        user[i] = (int64_t)cr_rng_below(&r, USERS) * 1000 - 7000;
    }
    double a = cr_auc(s, y, NULL, N);
    assert_float_equal(a, pairwise_auc(s, y, NULL, NULL, 0, N), 1e-12);
    assert_true(a > 0.6 && a < 0.95);
    assert_float_equal(cr_auc(s, y, w, N), pairwise_auc(s, y, w, NULL, 0, N), 1e-12);

    /* GAUC: per-user brute force, weighted by the user's row count. */
    double num = 0.0, den = 0.0;
    int64_t used = 0;
    for (int u = 0; u < USERS; u++) {
        int64_t uid = (int64_t)u * 1000 - 7000, cnt = 0;
        for (int i = 0; i < N; i++) cnt += user[i] == uid;
        double au = pairwise_auc(s, y, NULL, user, uid, N);
        if (isnan(au)) continue;
        num += (double)cnt * au;
        den += (double)cnt;
        used++;
    }
    cr_eval_input in = input(s, y, N, 1);
    in.user = user;
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_float_equal(m.auc, a, 1e-12);
    assert_float_equal(m.gauc, num / den, 1e-12);
    assert_int_equal(m.gauc_users, used);
    free(s);
    free(y);
    free(w);
    free(user);
}

static void test_json(void **state) {
    (void)state;
    const float s[4] = {0.1f, 0.5f, 0.9f, 0.3f}, ones[4] = {1, 1, 1, 1};
    const int64_t group[4] = {1, 1, 2, 2};
    cr_eval_input in = input(s, ones, 4, 1);
    in.group = group;
    in.k = 5;
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    cJSON *o = cJSON_CreateObject();
    assert_non_null(o);
    assert_int_equal(cr_task_metrics_to_json(&m, 1, o), CR_OK);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "auc"))); /* one class */
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "logloss")));
    assert_int_equal((int)cJSON_GetObjectItem(o, "n")->valuedouble, 4);
    assert_int_equal((int)cJSON_GetObjectItem(o, "k")->valuedouble, 5);
    assert_float_equal(cJSON_GetObjectItem(o, "ndcg")->valuedouble, 1.0, EPS);
    assert_null(cJSON_GetObjectItem(o, "rmse"));
    char *txt = cJSON_PrintUnformatted(o);
    assert_non_null(txt);
    assert_null(strstr(txt, "nan"));
    cJSON_free(txt);
    cJSON_Delete(o);

    in.is_binary = 0;
    in.k = 0;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    o = cJSON_CreateObject();
    assert_int_equal(cr_task_metrics_to_json(&m, 0, o), CR_OK);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "r2"))); /* constant labels */
    assert_float_equal(cJSON_GetObjectItem(o, "mae")->valuedouble, 0.55, 1e-7);
    assert_null(cJSON_GetObjectItem(o, "auc"));
    assert_null(cJSON_GetObjectItem(o, "ndcg"));
    cJSON_Delete(o);
    assert_int_equal(cr_task_metrics_to_json(&m, 0, NULL), CR_ERR_ARG);
}

/* Every row its own request (what the dataset does without data.group):
 * any model ranks one row perfectly, so NDCG is absent, not 1. */
static void test_ndcg_absent_without_requests(void **state) {
    (void)state;
    const float s[4] = {0.1f, 0.5f, 0.9f, 0.3f}, y[4] = {1, 0, 1, 0};
    const int64_t group[4] = {0, 1, 2, 3};
    cr_eval_input in = input(s, y, 4, 1);
    in.group = group;
    in.k = 10;
    cr_task_metrics m;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.rank_requests, 0);
    assert_true(isnan(m.ndcg));
    cJSON *o = cJSON_CreateObject();
    assert_int_equal(cr_task_metrics_to_json(&m, 1, o), CR_OK);
    assert_null(cJSON_GetObjectItem(o, "ndcg"));
    assert_null(cJSON_GetObjectItem(o, "recall"));
    assert_non_null(cJSON_GetObjectItem(o, "auc"));
    cJSON_Delete(o);
    /* A one-row request beside a real one: only the real one counts. */
    const int64_t group2[4] = {7, 7, 8, 9};
    in.group = group2;
    assert_int_equal(cr_eval_task(&in, &m, NULL), CR_OK);
    assert_int_equal(m.rank_requests, 1);
    assert_float_equal(m.ndcg, 1.0 / log2(3.0), EPS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_ties_and_weights),
        cmocka_unit_test(test_auc_one_class_is_nan),
        cmocka_unit_test(test_gauc_by_hand),
        cmocka_unit_test(test_ndcg_recall_by_hand),
        cmocka_unit_test(test_ndcg_graded_regression),
        cmocka_unit_test(test_regression_by_hand),
        cmocka_unit_test(test_logloss_and_calibration),
        cmocka_unit_test(test_mask_and_slice),
        cmocka_unit_test(test_random_against_pairwise),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_ndcg_absent_without_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
