/*
 * metrics.h - offline evaluation of one task's predictions: AUC, GAUC,
 * logloss and calibration for binary tasks, RMSE/MAE/R^2 for regression,
 * NDCG@k and Recall@k within requests. All sums are in double, every
 * result is deterministic and sorting is O(n log n). Nothing here prints.
 */
#ifndef CR_METRICS_H
#define CR_METRICS_H

#include "../core/core.h"

/* What to evaluate. Only rows that pass both filters count:
 *   mask  (NULL = all rows): a row with mask[i] > 0 is evaluated, mask 0
 *         (or negative, or NaN) drops it - tasks defined only on clicked
 *         rows are evaluated with their label mask;
 *   slice (NULL = all rows): only rows with slice[i] != 0 are evaluated.
 * Predictions of binary tasks are probabilities (sigmoid outputs, not
 * logits) and labels lie in [0, 1] (soft labels allowed); a label > 0.5 is a
 * positive. Regression predictions and labels are any finite values. Values
 * outside these ranges (or NaN/inf) on an evaluated row are an error that
 * names the row. */
typedef struct cr_eval_input {
    const float   *pred;   /* (n) */
    const float   *label;  /* (n) */
    const float   *mask;   /* (n) or NULL */
    const uint8_t *slice;  /* (n) or NULL */
    const int64_t *user;   /* (n) or NULL: GAUC groups (binary tasks only) */
    const int64_t *group;  /* (n) or NULL: request ids for NDCG@k and Recall@k */
    int64_t        n;
    int            is_binary;
    int            k;      /* ranking cutoff; 0 = no ranking metrics */
} cr_eval_input;

/* Every metric that was not computed, or is undefined, is NaN:
 * AUC with one class only, GAUC with no user having both classes,
 * calibration with mean label 0, R^2 with constant labels, ranking metrics
 * with no request holding a relevant row, and everything when n is 0. */
typedef struct cr_task_metrics {
    int64_t n;           /* rows evaluated (after mask and slice) */
    double  mean_pred, mean_label;
    /* binary tasks */
    int64_t positives;   /* rows with label > 0.5 */
    double  auc;         /* ROC AUC; tied predictions get half credit */
    double  logloss;     /* mean binary cross-entropy, p clipped to [1e-7, 1 - 1e-7] */
    double  calibration; /* mean_pred / mean_label (1 = calibrated) */
    /* GAUC (Zhou et al. 2018, "Deep Interest Network", eq. 1): the AUC of each
     * user's rows, averaged with weights = that user's number of evaluated
     * rows (impressions), over users whose rows hold both classes; users with
     * one class only carry no ranking information and are left out. */
    double  gauc;
    int64_t gauc_users;  /* users that entered the average */
    int64_t gauc_rows;   /* their rows (the denominator) */
    /* regression tasks */
    double  rmse, mae;
    double  r2;          /* 1 - SSE/SST, SST about the mean of the evaluated labels */
    /* ranking within requests: rows are grouped by request id (they need not
     * be adjacent) and ordered by prediction, highest first; equal
     * predictions keep their original row order. Relevant rows: label > 0.5
     * for binary tasks, label > 0 for regression tasks. Requests without a
     * relevant row, and requests of one row (always ranked perfectly; without
     * a group column every row is one), are skipped; the others are averaged
     * with equal weight.
     *   NDCG@k   = DCG@k / IDCG@k, DCG@k = sum_{i<k} label_(i) / log2(i + 2)
     *              (gain = the label itself), IDCG@k the same over the
     *              request's labels sorted from high to low;
     *   Recall@k = relevant rows in the top k / relevant rows in the request.
     * Labels must be >= 0 when ranking metrics are asked for. */
    int     k;           /* cutoff used; 0 when ranking metrics were not computed */
    double  ndcg, recall;
    int64_t rank_requests; /* requests that entered the average */
} cr_task_metrics;

/* Set every count to 0 and every metric to NaN. */
void cr_task_metrics_init(cr_task_metrics *m);

/* Evaluate one task. Binary tasks get auc, logloss, calibration, positives
 * and (with user) gauc; regression tasks get rmse, mae and r2; both get n,
 * mean_pred, mean_label and (with group and k > 0) ndcg and recall. Fails
 * with CR_ERR_ARG on a bad value or k < 0, CR_ERR_NOMEM if the sort buffers
 * (3 int64 per row) cannot be allocated. */
cr_status cr_eval_task(const cr_eval_input *in, cr_task_metrics *out, cr_error *e);

/* ROC AUC of score against binary labels (label > 0.5 is positive), with
 * optional non-negative weights (NULL = 1): the weighted probability that a
 * random positive scores above a random negative, ties counting one half
 * (the average-rank formula when unweighted). NaN when one class has no
 * weight, when a score is NaN, or when a sort buffer cannot be allocated. */
double cr_auc(const float *score, const float *label, const float *weight, int64_t n);

/* Add the metrics of one task as members of a cJSON object (a cJSON *,
 * passed as void * so this header needs no cJSON): "n", "mean_pred",
 * "mean_label"; binary: "positives", "auc", "logloss", "calibration",
 * "gauc", "gauc_users"; regression: "rmse", "mae", "r2"; when k > 0 and at
 * least one request was ranked: "k", "ndcg", "recall", "rank_requests". NaN is written as null. Returns
 * CR_ERR_ARG for a NULL object and CR_ERR_NOMEM if cJSON cannot allocate. */
cr_status cr_task_metrics_to_json(const cr_task_metrics *m, int is_binary, void *cjson_object);

#endif /* CR_METRICS_H */
