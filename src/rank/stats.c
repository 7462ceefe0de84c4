/*
 * stats.c - intervals and tests for comparing trained variants: Student's t
 * quantiles and p-values and the bootstrap's random draws from GSL,
 * t-intervals over seeds (on the log scale for positive quantities), paired
 * t-tests and their verdicts, and a paired bootstrap over test requests.
 * Nothing here knows what a model is, and nothing hand-rolls a distribution.
 */
#include "stats.h"

#include "metrics.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* GSL's default error handler aborts, and setting another is process-wide:
 * so every argument is checked here first and GSL is only ever called inside
 * its domains (the one error left to its handler is gsl_rng_alloc running
 * out of memory). */
double cr_t_pvalue2(double t, double df) {
    if (!(df > 0) || isnan(t)) return NAN;
    if (isinf(t)) return 0;
    return 2 * gsl_cdf_tdist_Q(fabs(t), df);
}

double cr_t_quantile(double p, double df) {
    if (!(p > 0 && p < 1 && df > 0)) return NAN;
    return gsl_cdf_tdist_Pinv(p, df);
}

void cr_mean_ci_of(const double *x, int n, double level, cr_mean_ci *o) {
    memset(o, 0, sizeof *o);
    double s = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) s += x[i], o->n++;
    if (o->n == 0) {
        o->mean = o->sd = o->half = o->lo = o->hi = NAN;
        return;
    }
    o->mean = s / o->n;
    if (o->n == 1) {
        o->sd = o->half = NAN;
        o->lo = o->hi = o->mean;
        return;
    }
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) ss += (x[i] - o->mean) * (x[i] - o->mean);
    o->sd = sqrt(ss / (o->n - 1));
    o->half = cr_t_quantile(0.5 + level / 2, o->n - 1) * o->sd / sqrt((double)o->n);
    o->lo = o->mean - o->half;
    o->hi = o->mean + o->half;
}

void cr_mean_ci_log_of(const double *x, int n, double level, cr_mean_ci *o) {
    double *lx = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!lx) { /* no room for n doubles: say nothing rather than something wrong */
        memset(o, 0, sizeof *o);
        o->mean = o->sd = o->half = o->lo = o->hi = NAN;
        return;
    }
    for (int i = 0; i < n; i++) lx[i] = x[i] > 0 && isfinite(x[i]) ? log(x[i]) : NAN;
    cr_mean_ci_of(lx, n, level, o);
    free(lx);
    o->mean = exp(o->mean); /* exp(NaN) stays NaN */
    o->lo = exp(o->lo);
    o->hi = exp(o->hi);
}

void cr_paired_t_test(const double *a, const double *b, int n, double level, cr_paired_t *o) {
    memset(o, 0, sizeof *o);
    double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    int m = 0;
    for (int i = 0; d && i < n; i++)
        if (isfinite(a[i]) && isfinite(b[i])) d[m++] = a[i] - b[i];
    cr_mean_ci ci;
    cr_mean_ci_of(d, m, level, &ci);
    free(d);
    o->n = ci.n;
    o->mean_diff = ci.mean;
    o->sd_diff = ci.sd;
    o->df = ci.n - 1;
    o->lo = ci.lo;
    o->hi = ci.hi;
    if (ci.n < 2) {
        o->t = o->p = NAN;
        return;
    }
    if (ci.sd == 0) { /* no spread: either no difference at all or a certain one */
        o->t = ci.mean == 0 ? 0 : copysign(INFINITY, ci.mean);
        o->p = ci.mean == 0 ? 1 : 0;
        return;
    }
    o->t = ci.mean / (ci.sd / sqrt((double)ci.n));
    o->p = cr_t_pvalue2(o->t, o->df);
}

cr_verdict cr_paired_verdict(const cr_paired_t *t, double level) {
    if (t->n < CR_MIN_SEEDS || isnan(t->p)) return CR_VERDICT_FEW;
    return t->p < 1 - level ? CR_VERDICT_SIG : CR_VERDICT_NS;
}

const char *cr_verdict_name(cr_verdict v) {
    return v == CR_VERDICT_SIG ? "significant" : v == CR_VERDICT_NS ? "not significant"
                                                                    : "not enough seeds";
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Linear interpolation between order statistics (numpy's default). */
static double percentile(const double *sorted, int n, double q) {
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
}

cr_status cr_bootstrap_groups(const int64_t *group, int64_t n, int B, uint64_t seed,
                              double level, cr_boot_fn fn, void *ctx, cr_boot_ci *o,
                              cr_error *e) {
    memset(o, 0, sizeof *o);
    o->B = B;
    o->estimate = o->lo = o->hi = o->se = NAN;
    if (n <= 0 || B < 1 || !(level > 0 && level < 1))
        return cr_err(e, CR_ERR_ARG, "bootstrap: need rows (%lld), resamples (%d) and a level "
                      "in (0, 1) (%g)", (long long)n, B, level);
    int64_t *sorted = malloc((size_t)n * sizeof(int64_t));
    int64_t *gi = malloc((size_t)n * sizeof(int64_t)); /* dense group index per row */
    unsigned *cnt = NULL;
    double *prob = NULL;
    gsl_rng *rng = NULL;
    float *w = malloc((size_t)n * sizeof(float));
    double *val = malloc((size_t)B * sizeof(double));
    cr_status s = CR_OK;
    if (!sorted || !gi || !w || !val) {
        s = cr_err(e, CR_ERR_NOMEM, "bootstrap: out of memory for %lld rows", (long long)n);
        goto done;
    }
    memcpy(sorted, group, (size_t)n * sizeof(int64_t));
    qsort(sorted, (size_t)n, sizeof(int64_t), cmp_i64);
    int64_t G = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[i - 1]) sorted[G++] = sorted[i];
    for (int64_t i = 0; i < n; i++) { /* binary search: groups need not be adjacent */
        int64_t lo = 0, hi = G - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (sorted[mid] < group[i]) lo = mid + 1;
            else hi = mid;
        }
        gi[i] = lo;
    }
    o->groups = G;
    if (G > (int64_t)UINT_MAX) { /* GSL counts draws in an unsigned int */
        s = cr_err(e, CR_ERR_LIMIT, "bootstrap: %lld groups, at most %u", (long long)G, UINT_MAX);
        goto done;
    }
    cnt = malloc((size_t)G * sizeof(unsigned));
    prob = malloc((size_t)G * sizeof(double));
    rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!cnt || !prob || !rng) {
        s = cr_err(e, CR_ERR_NOMEM, "bootstrap: out of memory for %lld groups", (long long)G);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) w[i] = 1.0f;
    o->estimate = fn(ctx, w);
    /* A resample's group counts are one multinomial draw of G out of G
     * equally likely groups (GSL draws it as G conditional binomials). */
    for (int64_t g = 0; g < G; g++) prob[g] = 1.0;
    gsl_rng_set(rng, (unsigned long)(seed ^ (seed >> 32)));
    int m = 0;
    for (int b = 0; b < B; b++) {
        gsl_ran_multinomial(rng, (size_t)G, (unsigned)G, prob, cnt);
        for (int64_t i = 0; i < n; i++) w[i] = (float)cnt[gi[i]];
        double v = fn(ctx, w);
        if (isfinite(v)) val[m++] = v;
    }
    o->valid = m;
    if (m > 0) {
        qsort(val, (size_t)m, sizeof(double), cmp_double);
        o->lo = percentile(val, m, (1 - level) / 2);
        o->hi = percentile(val, m, (1 + level) / 2);
        double mu = 0, ss = 0;
        for (int i = 0; i < m; i++) mu += val[i];
        mu /= m;
        for (int i = 0; i < m; i++) ss += (val[i] - mu) * (val[i] - mu);
        o->se = m > 1 ? sqrt(ss / (m - 1)) : NAN;
    }
done:
    free(sorted);
    free(gi);
    free(cnt);
    free(prob);
    if (rng) gsl_rng_free(rng);
    free(w);
    free(val);
    return s;
}

double cr_weighted_r2(const float *pred, const float *label, const float *mask, const float *w,
                      int64_t n) {
    double sw = 0, sy = 0;
    for (int64_t i = 0; i < n; i++) {
        double c = (w ? w[i] : 1.0) * (mask ? (mask[i] > 0) : 1);
        sw += c;
        sy += c * label[i];
    }
    if (!(sw > 0)) return NAN;
    double mu = sy / sw, sse = 0, sst = 0;
    for (int64_t i = 0; i < n; i++) {
        double c = (w ? w[i] : 1.0) * (mask ? (mask[i] > 0) : 1);
        if (c == 0) continue;
        sse += c * (pred[i] - label[i]) * (pred[i] - label[i]);
        sst += c * (label[i] - mu) * (label[i] - mu);
    }
    return sst > 0 ? 1 - sse / sst : NAN;
}

double cr_weighted_auc(const float *pred, const float *label, const float *mask, const float *w,
                       int64_t n, float *scratch) {
    for (int64_t i = 0; i < n; i++)
        scratch[i] = (w ? w[i] : 1.0f) * (mask ? (mask[i] > 0 ? 1.0f : 0.0f) : 1.0f);
    return cr_auc(pred, label, scratch, n);
}

double cr_pearson(const float *a, const float *b, const float *mask, int64_t n) {
    double sa = 0, sb = 0, c = 0;
    for (int64_t i = 0; i < n; i++)
        if (!mask || mask[i] > 0) sa += a[i], sb += b[i], c++;
    if (c < 2) return NAN;
    double ma = sa / c, mb = sb / c, sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; i++)
        if (!mask || mask[i] > 0) {
            double x = a[i] - ma, y = b[i] - mb;
            sab += x * y, saa += x * x, sbb += y * y;
        }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}
