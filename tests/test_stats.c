/*
 * test_stats.c - the study's statistics against known values: Student's t
 * quantiles and two-sided p-values as scipy 1.10 (scipy.stats.t) and the
 * printed tables give them, the closed forms for 1 and 2 degrees of
 * freedom, a mean interval and a paired t-test worked by hand, the log-scale
 * interval of a positive quantity (it stays positive where the plain one
 * goes negative), the verdict that two seeds cannot give, and the
 * bootstrap's determinism and coverage.
 */
#include "util/testutil.h"

#include "../src/rank/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_t_distribution(void **st) {
    /* scipy.stats.t.ppf(p, df), to the 1e-9 relative precision GSL gives */
    static const double q[][3] = {
        {0.975, 1, 12.706204736432095}, {0.975, 2, 4.302652729911275},
        {0.975, 4, 2.7764451051977987}, {0.975, 29, 2.045229642132703},
        {0.995, 4, 4.604094871415897},  {0.9, 3.5, 1.5765766039594717},
        {0.999, 7, 4.785289628649168},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        double v = cr_t_quantile(q[i][0], q[i][1]);
        if (fabs(v - q[i][2]) > 1e-9 * q[i][2])
            fprintf(stderr, "t quantile p %g df %g: %.15g, scipy %.15g\n", q[i][0], q[i][1], v, q[i][2]);
        assert_true(fabs(v - q[i][2]) <= 1e-9 * q[i][2]);
        assert_true(fabs(cr_t_quantile(1 - q[i][0], q[i][1]) + q[i][2]) <= 1e-9 * q[i][2]);
    }
    assert_true(cr_t_quantile(0.5, 3) == 0);
    /* 2 * scipy.stats.t.sf(|t|, df) */
    static const double p[][3] = {
        {2.0, 2, 0.1835034190722739},      {1.0, 1, 0.49999999999999956},
        {3.5, 4, 0.02489616346022275},     {0.3, 9, 0.7709907037415249},
        {12.0, 4, 0.000276428548502973},   {-3.4641016151377544, 2, 0.07417990022744853},
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        double v = cr_t_pvalue2(p[i][0], p[i][1]);
        if (fabs(v - p[i][2]) > 1e-9 * p[i][2])
            fprintf(stderr, "p-value t %g df %g: %.15g, scipy %.15g\n", p[i][0], p[i][1], v, p[i][2]);
        assert_true(fabs(v - p[i][2]) <= 1e-9 * p[i][2]);
    }
    /* df = 1 is Cauchy and df = 2 elementary: P(|T| > t) in closed form */
    const double ts[] = {0.0, 0.5, 1.0, 2.0, 10.0};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        double t = ts[i];
        assert_true(fabs(cr_t_pvalue2(t, 1) - (1 - 2 * atan(t) / M_PI)) < 1e-12);
        assert_true(fabs(cr_t_pvalue2(t, 2) - (1 - t / sqrt(2 + t * t))) < 1e-12);
    }
    /* large df approaches the normal: P(|Z| > 1.959964) = 0.05 */
    assert_true(fabs(cr_t_pvalue2(1.959963984540054, 1e7) - 0.05) < 1e-6);
    assert_true(cr_t_pvalue2(INFINITY, 3) == 0);
    /* outside the domain: NaN, never GSL's error handler (which aborts) */
    assert_true(isnan(cr_t_quantile(0, 3)) && isnan(cr_t_quantile(1, 3)));
    assert_true(isnan(cr_t_quantile(1.5, 3)) && isnan(cr_t_quantile(0.9, 0)));
    assert_true(isnan(cr_t_pvalue2(NAN, 3)) && isnan(cr_t_pvalue2(1, -1)));
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

/* A perplexity over three seeds, 12, 80 and 15: the plain t-interval runs
 * to -59.8, a perplexity no model can have; on the log scale (scipy:
 * exp(mean log x -/+ t_{.975,2} sd(log x) / sqrt 3)) it is [1.8512, 319.73]
 * around the geometric mean 24.329. */
static void test_log_interval(void **st) {
    const double x[] = {12, 80, 15};
    cr_mean_ci lin, lg;
    cr_mean_ci_of(x, 3, 0.95, &lin);
    assert_true(lin.lo < 0);
    cr_mean_ci_log_of(x, 3, 0.95, &lg);
    assert_int_equal(lg.n, 3);
    assert_true(fabs(lg.mean - 24.328807982293593) < 1e-9);
    assert_true(fabs(lg.lo - 1.851214396492365) < 1e-9);
    assert_true(fabs(lg.hi - 319.73114457234806) < 1e-6);
    assert_true(lg.lo > 0 && lg.lo < lg.mean && lg.mean < lg.hi);
    /* tight values: close to the plain interval, and still positive */
    const double y[] = {30.1, 30.4, 29.8, 30.0};
    cr_mean_ci_of(y, 4, 0.95, &lin);
    cr_mean_ci_log_of(y, 4, 0.95, &lg);
    assert_true(lg.lo > 0 && fabs(lg.lo - lin.lo) < 0.01 && fabs(lg.hi - lin.hi) < 0.01);
    /* a non-positive or NaN value is skipped; none left: NaN */
    const double z[] = {-1, 0, NAN, 5};
    cr_mean_ci_log_of(z, 4, 0.95, &lg);
    assert_int_equal(lg.n, 1);
    assert_true(fabs(lg.mean - 5) < 1e-12 && lg.lo == lg.mean && lg.hi == lg.mean);
    cr_mean_ci_log_of(z, 2, 0.95, &lg);
    assert_int_equal(lg.n, 0);
    assert_true(isnan(lg.mean) && isnan(lg.lo));
}

/* Two seeds never give a verdict, however small p is; three or more do. */
static void test_verdict(void **st) {
    /* two seeds, differences 0.0100 and 0.0101: t = 201, p = 0.0032 */
    const double a2[] = {0.7100, 0.7201}, b2[] = {0.7000, 0.7100};
    cr_paired_t t;
    cr_paired_t_test(a2, b2, 2, 0.95, &t);
    assert_int_equal(t.n, 2);
    assert_true(t.p < 0.01);
    assert_int_equal(cr_paired_verdict(&t, 0.95), CR_VERDICT_FEW);
    assert_string_equal(cr_verdict_name(CR_VERDICT_FEW), "not enough seeds");
    /* five seeds (scipy.stats.ttest_rel: t 2.7456, p 0.051606): not significant
     * at 95%, significant at 90% */
    const double a[] = {0.71, 0.69, 0.74, 0.70, 0.72}, b[] = {0.70, 0.69, 0.71, 0.69, 0.70};
    cr_paired_t_test(a, b, 5, 0.95, &t);
    assert_true(fabs(t.t - 2.7456258919345764) < 1e-9);
    assert_true(fabs(t.p - 0.051605957811174726) < 1e-9);
    assert_true(fabs((t.hi - t.lo) / 2 - 0.014157147769822758) < 1e-9);
    assert_int_equal(cr_paired_verdict(&t, 0.95), CR_VERDICT_NS);
    assert_string_equal(cr_verdict_name(cr_paired_verdict(&t, 0.95)), "not significant");
    assert_int_equal(cr_paired_verdict(&t, 0.90), CR_VERDICT_SIG);
    assert_string_equal(cr_verdict_name(CR_VERDICT_SIG), "significant");
    /* three identical runs: p = 1, a verdict (not significant) */
    cr_paired_t_test(a, a, 3, 0.95, &t);
    assert_int_equal(cr_paired_verdict(&t, 0.95), CR_VERDICT_NS);
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
        cmocka_unit_test(test_t_distribution), cmocka_unit_test(test_mean_ci),
        cmocka_unit_test(test_paired_t),       cmocka_unit_test(test_log_interval),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_bootstrap),     cmocka_unit_test(test_weighted_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
