/*
 * stats.h - the statistics a study reports: mean and t-interval over seeds
 * (also on the log scale, for positive quantities), a paired t-test over
 * seeds with its verdict, and a paired bootstrap over test requests. The
 * distributions and the resampling draws are GSL's; these are pure functions
 * of their inputs, and the bootstrap is deterministic for a seed.
 */
#ifndef CR_RANK_STATS_H
#define CR_RANK_STATS_H

#include "../core/core.h"

/* Student's t with df > 0 degrees of freedom (GSL's gsl_cdf_tdist_*):
 * the two-sided p-value P(|T| >= |t|), and the quantile t with P(T <= t) =
 * p for p in (0, 1). NaN outside those domains (GSL is never handed them). */
double cr_t_pvalue2(double t, double df);
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
/* The same for a quantity that is positive by nature (a perplexity): the
 * t-interval of log x, mapped back with exp, so it never leaves (0, inf)
 * and is as asymmetric as the spread of ratios makes it. mean is the
 * geometric mean exp(mean log x); sd and half stay on the log scale; lo and
 * hi are exp(mean log x -/+ half). Values <= 0 are skipped like NaN. */
void cr_mean_ci_log_of(const double *x, int n, double level, cr_mean_ci *out);

/* Paired t-test of a against b (same seeds, a[i] - b[i]); pairs with a NaN
 * are dropped. p is two-sided; NaN with fewer than 2 pairs, 1 when every
 * difference is 0, 0 when the differences are equal and nonzero. */
typedef struct cr_paired_t {
    int    n;
    double mean_diff, sd_diff, t, df, p;
    double lo, hi;     /* level interval of the mean difference */
} cr_paired_t;
void cr_paired_t_test(const double *a, const double *b, int n, double level, cr_paired_t *out);

/* What a paired test may be said to show at `level`. With fewer than
 * CR_MIN_SEEDS pairs the verdict is "not enough seeds" whatever p is: with
 * one degree of freedom the spread of two differences is itself a guess,
 * and a p that small is an accident of two draws. */
#define CR_MIN_SEEDS 3
typedef enum { CR_VERDICT_FEW = 0, CR_VERDICT_NS, CR_VERDICT_SIG } cr_verdict;
cr_verdict  cr_paired_verdict(const cr_paired_t *t, double level);
/* "not enough seeds", "not significant", "significant" */
const char *cr_verdict_name(cr_verdict v);

/* Paired bootstrap over groups (test requests). Each of B resamples draws
 * as many groups as there are, with replacement (the counts as one
 * multinomial draw from GSL's MT19937 seeded with `seed`); a row's weight is
 * how often its group was drawn. fn(ctx, w) returns the statistic under row
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
