/*
 * train.h - what a training run needs that is not the model: its settings,
 * the early-stopping bookkeeping, and the progress line. The loop itself
 * lives with the model that it trains (rank/fit.c); nothing here prints
 * unless given a FILE*.
 */
#ifndef CR_TRAIN_H
#define CR_TRAIN_H

#include "../core/core.h"
#include "optim.h"

#define CR_MAX_TASKS 16

typedef enum {
    CR_ES_SUM_LOSS = 0, /* stop when the sum of weighted validation losses stops improving */
    CR_ES_PER_TASK = 1, /* freeze each task's tower and head when its own metric stops improving */
    CR_ES_NONE = 2,
    CR_ES_METRIC = 3    /* stop when the mean of the served tasks' validation AUC / R^2 stops improving */
} cr_es_mode;

typedef struct cr_train_cfg {
    cr_optim_cfg       opt;          /* optimizer, schedule, clipping, table optimizer */
    int                batch_size;
    int                epochs;
    int64_t            max_steps;    /* 0 = epochs decide */
    uint64_t           seed;
    int                threads;      /* 0 = all cores */
    cr_es_mode         early_stopping;
    int                patience;     /* evaluations without improvement */
    int64_t            eval_every;   /* steps; 0 = once per epoch */
    int                checkpoint_every; /* evaluations between checkpoints; 0 = only the end */
    int                precision;    /* products of training steps: CR_GEMM_FP32 | CR_GEMM_BF16 */
    int64_t            max_bag_ids;  /* ids of one multi feature in one batch; 0 = as many as
                                        the batch_size largest bags of the data hold */
} cr_train_cfg;

void cr_train_cfg_default(cr_train_cfg *c);

/* ---- early stopping ------------------------------------------------------------
 * Validation scores are "higher is better" (callers pass -loss for losses,
 * or the mean primary metric in metric mode, which stops like sum-loss mode).
 * In per-task mode each task has its own best score and patience counter;
 * a task whose counter runs out is frozen (its loss dropped, its tower and
 * heads no longer updated) and training stops when every task is frozen. */
typedef struct cr_early_stop {
    cr_es_mode mode;
    int        patience, n_tasks;
    double     best;                 /* sum-loss mode */
    int        bad;
    int64_t    best_step;
    double     task_best[CR_MAX_TASKS];
    int        task_bad[CR_MAX_TASKS];
    int        frozen[CR_MAX_TASKS];
    int64_t    frozen_step[CR_MAX_TASKS];
} cr_early_stop;

void cr_es_init(cr_early_stop *s, cr_es_mode mode, int patience, int n_tasks);
/* Feed one evaluation. overall = higher-is-better score for sum mode;
 * task_scores = per task (NaN = no information, counts as no improvement).
 * Returns 1 if the overall score improved (save a best snapshot), and sets
 * *newly_frozen bits (per-task mode) and *stop. */
int  cr_es_update(cr_early_stop *s, int64_t step, double overall, const double *task_scores,
                  uint32_t *newly_frozen, int *stop);

/* ---- progress line ---------------------------------------------------------------
 * "train 340/1.7k steps | 41.2k ex/s | epoch 2/10, loss 0.512 click 0.41 like 0.62 |
 *  0:12 elapsed, eta 0:31": the core's progress meter (cr_meter), redrawn in
 * place on a terminal, a whole line every few seconds otherwise. */
typedef struct cr_progress {
    cr_meter m;       /* m.out NULL = silent; m.t0 = when the count started */
} cr_progress;

void cr_progress_init(cr_progress *p, FILE *out, int64_t total_steps);
void cr_progress_update(cr_progress *p, int epoch, int epochs, int64_t step, int64_t examples,
                        double loss, int n_tasks, char (*task_names)[64], const double *task_loss,
                        int force);
void cr_progress_done(cr_progress *p);

#endif /* CR_TRAIN_H */
