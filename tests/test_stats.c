/*
 * test_stats.c - the study's statistics against values known in closed form
 * or from printed tables: the incomplete beta's special cases, Student's t
 * for 1 and 2 degrees of freedom (whose CDFs are elementary), the table
 * quantiles 12.706 / 4.303 / 2.776 / 2.228, a mean interval and a paired
 * t-test worked by hand, and the bootstrap's determinism and coverage.
 */
#include "util/testutil.h"

#include "../src/rank/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_betainc(void **st) {
    const double xs[] = {0.0, 0.1, 0.37, 0.5, 0.9, 1.0};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        double x = xs[i];
        assert_true(fabs(cr_betainc(1, 1, x) - x) < 1e-12);
        assert_true(fabs(cr_betainc(3, 1, x) - x * x * x) < 1e-12);         /* I_x(a,1) = x^a */
        assert_true(fabs(cr_betainc(1, 2.5, x) - (1 - pow(1 - x, 2.5))) < 1e-12);
        /* symmetry I_x(a, b) = 1 - I_{1-x}(b, a) */
        assert_true(fabs(cr_betainc(2.5, 4, x) - (1 - cr_betainc(4, 2.5, 1 - x))) < 1e-12);
    }
    /* I_{1/2}(a, a) = 1/2 */
    assert_true(fabs(cr_betainc(7.3, 7.3, 0.5) - 0.5) < 1e-12);
    assert_true(isnan(cr_betainc(-1, 1, 0.5)));
    assert_true(isnan(cr_betainc(1, 1, 1.5)));
}

static void test_t_distribution(void **st) {
    /* df = 1 is Cauchy: F(t) = 1/2 + atan(t) / pi */
    const double ts[] = {-3.0, -0.5, 0.0, 1.0, 2.0, 10.0};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        double t = ts[i];
        assert_true(fabs(cr_t_cdf(t, 1) - (0.5 + atan(t) / M_PI)) < 1e-12);
        /* df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)) */
        assert_true(fabs(cr_t_cdf(t, 2) - (0.5 + t / (2 * sqrt(2 + t * t)))) < 1e-12);
    }
    assert_true(fabs(cr_t_pvalue2(1.0, 1) - 0.5) < 1e-12);
    assert_true(fabs(cr_t_pvalue2(-2.0, 2) - (1 - 2 / sqrt(6.0))) < 1e-12);
    /* large df approaches the normal: P(|Z| > 1.959964) = 0.05 */
    assert_true(fabs(cr_t_pvalue2(1.959964, 1e7) - 0.05) < 1e-5);
    /* printed t tables, two-sided 95% */
    assert_true(fabs(cr_t_quantile(0.975, 1) - 12.706) < 1e-3);
    assert_true(fabs(cr_t_quantile(0.975, 2) - 4.303) < 1e-3);
    assert_true(fabs(cr_t_quantile(0.975, 4) - 2.776) < 1e-3);
    assert_true(fabs(cr_t_quantile(0.975, 10) - 2.228) < 1e-3);
    assert_true(fabs(cr_t_quantile(0.995, 4) - 4.604) < 1e-3);
    assert_true(fabs(cr_t_quantile(0.025, 4) + 2.776) < 1e-3);
    /* quantile and CDF invert each other */
    assert_true(fabs(cr_t_cdf(cr_t_quantile(0.9, 3.5), 3.5) - 0.9) < 1e-10);
}

static void test_mean_ci(void **st) {
    const double x[] = {1, 2, 3, 4, 5, NAN};
    cr_mean_ci c;
    cr_mean_ci_of(x, 6, 0.95, &c);
    assert_int_equal(c.n, 5); /* the NaN seed is skipped */
    assert_true(fabs(c.mean - 3) < 1e-12);
    assert_true(fabs(c.sd - sqrt(2.5)) < 1e-12);
    /* 2.776445 * sqrt(2.5) / sqrt(5) */
    assert_true(fabs(c.half - 2.7764451 * sqrt(0.5)) < 1e-6);
    assert_true(fabs(c.lo - (3 - c.half)) < 1e-12 && fabs(c.hi - (3 + c.half)) < 1e-12);
    cr_mean_ci_of(x, 1, 0.95, &c);
    assert_int_equal(c.n, 1);
    assert_true(c.lo == 1 && c.hi == 1 && isnan(c.half));
    cr_mean_ci_of(x + 5, 1, 0.95, &c);
    assert_int_equal(c.n, 0);
    assert_true(isnan(c.mean));
}

static void test_paired_t(void **st) {
    /* differences 1, 2, 3: mean 2, sd 1, t = 2 sqrt(3), df 2,
     * p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12/14) */
    const double a[] = {11, 22, 33}, b[] = {10, 20, 30};
    cr_paired_t p;
    cr_paired_t_test(a, b, 3, 0.95, &p);
    assert_int_equal(p.n, 3);
    assert_true(fabs(p.mean_diff - 2) < 1e-12);
    assert_true(fabs(p.t - 2 * sqrt(3.0)) < 1e-12);
    assert_true(fabs(p.p - (1 - sqrt(12.0 / 14.0))) < 1e-10);
    assert_true(fabs(p.hi - (2 + 4.302653 / sqrt(3.0))) < 1e-5);
    /* swapping sides flips the sign, not the p-value */
    cr_paired_t q;
    cr_paired_t_test(b, a, 3, 0.95, &q);
    assert_true(fabs(q.t + p.t) < 1e-12 && fabs(q.p - p.p) < 1e-12);
    /* identical runs: no evidence at all; a constant shift: certain */
    cr_paired_t_test(a, a, 3, 0.95, &q);
    assert_true(q.p == 1 && q.t == 0);
    const double c[] = {12, 23, 34};
    cr_paired_t_test(c, a, 3, 0.95, &q);
    assert_true(q.p == 0);
    cr_paired_t_test(a, b, 1, 0.95, &q);
    assert_true(isnan(q.p));
}

typedef struct {
    const float *v;
    int64_t n;
} mean_ctx;

static double wmean(void *ctx, const float *w) {
    const mean_ctx *c = ctx;
    double s = 0, sw = 0;
    for (int64_t i = 0; i < c->n; i++) s += w[i] * c->v[i], sw += w[i];
    return s / sw;
}

static void test_bootstrap(void **st) {
    enum { N = 400 };
    float v[N];
    int64_t g[N];
    cr_test_fill(v, N, 1.0f, 3);
    for (int i = 0; i < N; i++) g[i] = (i * 7919) % 100; /* 100 groups, not adjacent */
    mean_ctx c = {v, N};
    cr_boot_ci a, b;
    cr_error e = {0};
    assert_int_equal(cr_bootstrap_groups(g, N, 500, 42, 0.95, wmean, &c, &a, &e), CR_OK);
    assert_int_equal(cr_bootstrap_groups(g, N, 500, 42, 0.95, wmean, &c, &b, &e), CR_OK);
    assert_int_equal(a.groups, 100);
    assert_int_equal(a.valid, 500);
    assert_true(a.lo == b.lo && a.hi == b.hi); /* deterministic for a seed */
    double mean = 0;
    for (int i = 0; i < N; i++) mean += v[i];
    mean /= N;
    assert_true(fabs(a.estimate - mean) < 1e-6);
    assert_true(a.lo < mean && mean < a.hi);
    /* U(-1, 1) has sd 0.577; 100 groups of 4 rows: se of the mean ~ 0.0289 */
    assert_true(a.se > 0.018 && a.se < 0.04);
    assert_true(fabs((a.hi - a.lo) - 2 * 1.96 * a.se) < 0.3 * (a.hi - a.lo));
    assert_int_equal(cr_bootstrap_groups(g, N, 500, 43, 0.95, wmean, &c, &b, &e), CR_OK);
    assert_true(a.lo != b.lo);
    /* a constant statistic has a zero-width interval */
    float k[N];
    for (int i = 0; i < N; i++) k[i] = 0.25f;
    mean_ctx ck = {k, N};
    assert_int_equal(cr_bootstrap_groups(g, N, 50, 1, 0.95, wmean, &ck, &b, &e), CR_OK);
    assert_true(fabs(b.lo - 0.25) < 1e-7 && fabs(b.hi - 0.25) < 1e-7);
    assert_int_equal(cr_bootstrap_groups(g, 0, 50, 1, 0.95, wmean, &ck, &b, &e), CR_ERR_ARG);
}

static void test_weighted_metrics(void **st) {
    const float pred[] = {0.9f, 0.8f, 0.3f, 0.2f, 0.6f};
    const float lab[] = {1, 0, 1, 0, 0};
    const float msk[] = {1, 1, 1, 1, 0};
    float scratch[5];
    /* positives 0.9, 0.3; negatives 0.8, 0.2 (row 4 masked): 3 of 4 pairs */
    assert_true(fabs(cr_weighted_auc(pred, lab, msk, NULL, 5, scratch) - 0.75) < 1e-12);
    /* doubling row 2 (the 0.3 positive) doubles its pairs: 4 of 6 */
    const float w[] = {1, 1, 2, 1, 1};
    assert_true(fabs(cr_weighted_auc(pred, lab, msk, w, 5, scratch) - 4.0 / 6.0) < 1e-12);
    const float y[] = {1, 2, 3, 4};
    const float p[] = {1, 2, 3, 5};
    /* SSE 1, SST 5 */
    assert_true(fabs(cr_weighted_r2(p, y, NULL, NULL, 4) - 0.8) < 1e-12);
    const float w2[] = {1, 1, 1, 0};
    assert_true(fabs(cr_weighted_r2(p, y, NULL, w2, 4) - 1.0) < 1e-12);
    const float q[] = {2, 4, 6, 8};
    assert_true(fabs(cr_pearson(y, q, NULL, 4) - 1.0) < 1e-12);
    assert_true(isnan(cr_pearson(y, msk, NULL, 1)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_betainc),       cmocka_unit_test(test_t_distribution),
        cmocka_unit_test(test_mean_ci),       cmocka_unit_test(test_paired_t),
        cmocka_unit_test(test_bootstrap),     cmocka_unit_test(test_weighted_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
