/*
 * evaluate.h - scoring a dataset split with a ranker and turning the
 * predictions into per-task metrics (overall, per slice, and for a
 * popularity baseline) as JSON. Read-only on the model.
 */
#ifndef CR_RANK_EVALUATE_H
#define CR_RANK_EVALUATE_H

#include "config.h"
#include "metrics.h"
#include "ranker.h"
#include "../train/dp.h"

/* Predictions of every head for the given rows: pred (n_heads, n), sigmoid
 * for binary heads. head_loss (n_heads) receives each head's mean loss
 * (NULL to skip). Batches of max_B. */
cr_status cr_rank_predict_rows(const cr_ranker *m, const cr_dataset *ds, const uint32_t *rows,
                               int64_t n, int max_B, float *pred, double *head_loss, cr_error *e);
/* The same over a job: each rank predicts its cr_dist_split share of the
 * rows, and every rank gets all of pred and the same head_loss (the
 * per-head sums are added over the ranks, so they equal the job of one's
 * to rounding). d == NULL is cr_rank_predict_rows. */
cr_status cr_rank_predict_rows_dist(const cr_dist *d, const cr_ranker *m, const cr_dataset *ds,
                                    const uint32_t *rows, int64_t n, int max_B, float *pred,
                                    double *head_loss, cr_error *e);

/* The served head of task k, or -1. */
int cr_rank_task_head(const cr_ranker *m, int k);

/* Evaluate one split: writes into obj (a cJSON object) per task the
 * metrics of its served head, per slice, and (if baseline) those of the
 * popularity baseline; task_loss (K) gets each task's mean validation loss. */
cr_status cr_rank_evaluate(const cr_ranker *m, const cr_schema *s, const cr_dataset *ds,
                           int split, const cr_eval_cfg *ec, void *obj, double *task_loss,
                           cr_error *e);

#endif /* CR_RANK_EVALUATE_H */
