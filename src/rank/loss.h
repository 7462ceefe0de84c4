/*
 * loss.h - the multi-task loss over a ranker's heads: per head BCE-with-
 * logits or squared error against a task label or an extra column (a
 * teacher's soft labels), masked and weighted, normalised per head, then
 * combined with fixed weights or learned uncertainty weights.
 *
 * Legend: B batch rows, NH heads, NS served heads.
 */
#ifndef CR_RANK_LOSS_H
#define CR_RANK_LOSS_H

#include "ranker.h"

/* For head h with prediction p = out[h] (a logit or a value), target y
 * (batch->label row `target`, or batch->extra row `target`), per-example
 * c_b = mask[mask_task][b] * weight[b] (mask 1 if mask_task < 0, weight 1
 * if batch->weight is NULL; c_b = 0 whenever the mask is 0):
 *     L_h = sum_b c_b l(p_b, y_b) / sum_b c_b     (0 if sum_b c_b = 0)
 * with l = BCE-with-logits (y may be soft, in [0, 1]) or (p - y)^2.
 * Distillation heads (cr_head.blend_lambda, .temperature) change l: a
 * soft-label head's target is (1 - lambda) y + lambda extra[blend_extra];
 * a tempered binary head's l is T^2 BCE(sigmoid(p / T), sigmoid(y / T))
 * with y a teacher's logit.
 *     fixed:       total = sum_h w_h L_h
 *     uncertainty: total = sum_{h served} (exp(-s_k) w_h L_h + s_k)
 *                        + sum_{h not served} w_h L_h
 * where k is h's index among the served heads and s = log_var (NS).
 * Writes head_loss (NH, the unweighted L_h; may be NULL) and *total;
 * if dout is not NULL it is overwritten with d total / d out (NH, B);
 * if dlog_var is not NULL, d total / d s is ADDED into it. */
cr_status cr_multitask_loss(const cr_head *heads, int n_heads, cr_loss_weighting lw,
                            const float *log_var,  /* (NS) under uncertainty, else unused */
                            const cr_batch *b,
                            const float *out,      /* (NH, B) */
                            float *dout,           /* (NH, B) or NULL */
                            float *dlog_var,       /* (NS) or NULL */
                            double *head_loss, double *total, cr_error *e);

/* The loss of the ranker's last forward on ws (ws->out). A training
 * workspace also gets ws->dout written and the log-variance gradients
 * added into ws->grads, ready for cr_ranker_backward(m, ws, b, NULL, e). */
cr_status cr_ranker_loss(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                         double *head_loss, double *total, cr_error *e);

#endif /* CR_RANK_LOSS_H */
