/*
 * loop_util.c - training settings defaults, early-stopping bookkeeping and
 * the progress line. Early stopping never looks at one task's criterion on
 * behalf of the others: either the sum of all weighted validation losses,
 * or one patience counter per task, so click cannot overfit like.
 */
#include "train.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

void cr_train_cfg_default(cr_train_cfg *c) {
    memset(c, 0, sizeof *c);
    cr_optim_cfg_default(&c->opt);
    c->batch_size = 512;
    c->epochs = 10;
    c->max_steps = 0;
    c->seed = 1;
    c->threads = 0;
    c->early_stopping = CR_ES_SUM_LOSS;
    c->patience = 2;
    c->eval_every = 0;
    c->checkpoint_every = 1;
}

void cr_es_init(cr_early_stop *s, cr_es_mode mode, int patience, int n_tasks) {
    memset(s, 0, sizeof *s);
    CR_ASSERT(n_tasks >= 0 && n_tasks <= CR_MAX_TASKS);
    s->mode = mode;
    s->patience = patience;
    s->n_tasks = n_tasks;
    s->best = -INFINITY;
    s->best_step = -1;
    for (int k = 0; k < n_tasks; k++) s->task_best[k] = -INFINITY;
}

int cr_es_update(cr_early_stop *s, int64_t step, double overall, const double *task_scores,
                 uint32_t *newly_frozen, int *stop) {
    *newly_frozen = 0;
    *stop = 0;
    int improved = 0;
    if (overall > s->best) {
        s->best = overall;
        s->best_step = step;
        s->bad = 0;
        improved = 1;
    } else {
        s->bad++;
    }
    if (s->mode == CR_ES_SUM_LOSS || s->mode == CR_ES_METRIC) {
        *stop = s->bad >= s->patience;
        return improved;
    }
    if (s->mode == CR_ES_NONE) return improved;
    int active = 0;
    for (int k = 0; k < s->n_tasks; k++) {
        if (s->frozen[k]) continue;
        double v = task_scores ? task_scores[k] : NAN;
        if (v > s->task_best[k]) {
            s->task_best[k] = v;
            s->task_bad[k] = 0;
        } else if (++s->task_bad[k] >= s->patience) {
            s->frozen[k] = 1;
            s->frozen_step[k] = step;
            *newly_frozen |= 1u << k;
            continue;
        }
        active++;
    }
    *stop = active == 0;
    return improved;
}

void cr_progress_init(cr_progress *p, FILE *out, int64_t total_steps) {
    cr_meter_start(&p->m, out, "train", total_steps, "steps");
}

void cr_progress_update(cr_progress *p, int epoch, int epochs, int64_t step, int64_t examples,
                        double loss, int n_tasks, char (*task_names)[64], const double *task_loss,
                        int force) {
    if (!p->m.out) return;
    char extra[512];
    int o = snprintf(extra, sizeof extra, "epoch %d/%d, loss %.4f", epoch, epochs, loss);
    for (int k = 0; k < n_tasks && o < (int)sizeof extra - 40; k++)
        o += snprintf(extra + o, sizeof extra - (size_t)o, " %s %.4f", task_names[k], task_loss[k]);
    cr_meter_update(&p->m, step, (double)examples, "ex", extra, force);
}

void cr_progress_done(cr_progress *p) { cr_meter_done(&p->m); }
