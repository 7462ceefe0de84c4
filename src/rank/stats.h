/*
 * stats.h - the statistics a study reports: mean and t-interval over seeds,
 * a paired t-test over seeds (Student's t CDF through the regularised
 * incomplete beta function), and a paired bootstrap over test requests.
 * Pure functions of their inputs; the bootstrap is deterministic for a seed.
 */
#ifndef CR_RANK_STATS_H
#define CR_RANK_STATS_H

#include "../core/core.h"

/* Regularised incomplete beta I_x(a, b) for a, b > 0, x in [0, 1]
 * (continued fraction, Lentz's method, relative accuracy ~1e-14). NaN
 * outside the domain. */
double cr_betainc(double a, double b, double x);
/* CDF of Student's t with df > 0 degrees of freedom. */
double cr_t_cdf(double t, double df);
/* Two-sided p-value P(|T| >= |t|). */
double cr_t_pvalue2(double t, double df);
/* Quantile: the t with cr_t_cdf(t, df) = p, p in (0, 1) (bisection). */
double cr_t_quantile(double p, double df);

/* Mean and a two-sided `level` (e.g. 0.95) t-interval of the finite values
 * of x (NaN entries are skipped: a metric undefined for one seed). With one
 * value the interval is [mean, mean] and half = NaN; with none, all NaN. */
typedef struct cr_mean_ci {
    int    n;          /* finite values used */
    double mean, sd;   /* sd with n - 1 */
    double half;       /* t_{(1+level)/2, n-1} sd / sqrt(n) */
    double lo, hi;
} cr_mean_ci;
void cr_mean_ci_of(const double *x, int n, double level, cr_mean_ci *out);

/* Paired t-test of a against b (same seeds, a[i] - b[i]); pairs with a NaN
 * are dropped. p is two-sided; NaN with fewer than 2 pairs, 1 when every
 * difference is 0, 0 when the differences are equal and nonzero. */
typedef struct cr_paired_t {
    int    n;
    double mean_diff, sd_diff, t, df, p;
    double lo, hi;     /* level interval of the mean difference */
} cr_paired_t;
void cr_paired_t_test(const double *a, const double *b, int n, double level, cr_paired_t *out);

/* Paired bootstrap over groups (test requests). Each of B resamples draws
 * as many groups as there are, with replacement; a row's weight is how
 * often its group was drawn. fn(ctx, w) returns the statistic under row
 * weights w (n rows), e.g. metric(variant) - metric(control) on the same
 * resample, so both sides see the same requests. The percentile interval
 * at `level` comes from the finite resample values. */
typedef double (*cr_boot_fn)(void *ctx, const float *w);
typedef struct cr_boot_ci {
    double estimate;   /* fn with every weight 1 */
    double lo, hi, se; /* percentile interval; sd of the resample values */
    int    B, valid;   /* resamples asked; finite ones */
    int64_t groups;
} cr_boot_ci;
cr_status cr_bootstrap_groups(const int64_t *group, int64_t n, int B, uint64_t seed,
                              double level, cr_boot_fn fn, void *ctx, cr_boot_ci *out,
                              cr_error *e);

/* Weighted statistics the bootstrap callbacks use (w NULL = all 1; rows
 * with mask 0 or weight 0 do not count; mask NULL = all rows). */
double cr_weighted_r2(const float *pred, const float *label, const float *mask, const float *w,
                      int64_t n);
double cr_weighted_auc(const float *pred, const float *label, const float *mask, const float *w,
                       int64_t n, float *scratch); /* scratch (n) */
/* Pearson correlation over rows with mask > 0 (NaN if either side is constant). */
double cr_pearson(const float *a, const float *b, const float *mask, int64_t n);

#endif /* CR_RANK_STATS_H */
