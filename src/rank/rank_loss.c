/*
 * loss.c - the multi-task loss of the ranker's heads and its gradient with
 * respect to the head outputs and the learned log-variances (see loss.h
 * for the formula). Pure function of its inputs: never allocates, never
 * touches model parameters other than reading log_var.
 *
 * Legend: B batch rows, NH heads, NS served heads, K tasks.
 */
#include "loss.h"

#include <math.h>
#include <string.h>

/* The target, mask and normaliser of one head; checks the batch has them. */
static cr_status cr_head_data(const cr_head *h, const cr_batch *b, const float **y,
                              const float **mask, cr_error *e) {
    const int B = b->B;
    if (h->target_kind == CR_TARGET_LABEL) {
        if (h->target < 0 || h->target >= b->n_tasks || !b->label)
            return cr_err(e, CR_ERR_MISMATCH, "head '%s': target task %d, the batch has %d",
                          h->name, h->target, b->label ? b->n_tasks : 0);
        *y = b->label + (size_t)h->target * B;
    } else {
        if (h->target < 0 || h->target >= b->n_extra || !b->extra)
            return cr_err(e, CR_ERR_MISMATCH,
                          "head '%s': target extra column %d, the batch has %d", h->name,
                          h->target, b->extra ? b->n_extra : 0);
        *y = b->extra + (size_t)h->target * B;
    }
    *mask = NULL;
    if (h->mask_task >= 0) {
        if (h->mask_task >= b->n_tasks || !b->mask)
            return cr_err(e, CR_ERR_MISMATCH, "head '%s': mask of task %d, the batch has %d",
                          h->name, h->mask_task, b->mask ? b->n_tasks : 0);
        *mask = b->mask + (size_t)h->mask_task * B;
    }
    return CR_OK;
}

/* sum_b c_b, skipping masked rows exactly as the loss kernels do (so a
 * masked row's weight never counts, whatever its label holds). */
static double cr_head_norm(const float *mask, const float *weight, int B) {
    double s = 0.0;
    for (int r = 0; r < B; r++) {
        float m = mask ? mask[r] : 1.0f;
        if (m == 0.0f) continue;
        s += (double)m * (weight ? weight[r] : 1.0f);
    }
    return s;
}

/* d total / d out_h = coef_h / norm_h * c_b * dl/dp, where coef_h is w_h
 * (fixed or not served) or exp(-s_k) w_h (uncertainty), via the kernels'
 * scale argument. d total / d s_k = 1 - exp(-s_k) w_h L_h. */
cr_status cr_multitask_loss(const cr_head *heads, int n_heads, cr_loss_weighting lw,
                            const float *log_var, const cr_batch *b, const float *out,
                            float *dout, float *dlog_var, double *head_loss, double *total,
                            cr_error *e) {
    const int B = b->B;
    if (lw == CR_LOSS_UNCERTAINTY && !log_var)
        return cr_err(e, CR_ERR_ARG, "uncertainty loss weighting needs the log-variances");
    double sum = 0.0;
    int k = 0;
    for (int h = 0; h < n_heads; h++) {
        const cr_head *hd = &heads[h];
        const float *y = NULL, *mask = NULL;
        CR_TRY(cr_head_data(hd, b, &y, &mask, e));
        const float *p = out + (size_t)h * B;
        double norm = cr_head_norm(mask, b->weight, B);
        double L = 0.0;
        if (norm > 0.0) {
            L = hd->kind == CR_HEAD_BINARY ? cr_bce_logits_forward(p, y, mask, b->weight, B)
                                           : cr_mse_forward(p, y, mask, b->weight, B);
            L /= norm;
        }
        double coef = hd->weight;
        int unc = lw == CR_LOSS_UNCERTAINTY && hd->served;
        if (unc) {
            double s = log_var[k];
            coef *= exp(-s);
            sum += s;
            if (dlog_var) dlog_var[k] += (float)(1.0 - coef * L);
            k++;
        }
        sum += coef * L;
        if (head_loss) head_loss[h] = L;
        if (dout) {
            float *d = dout + (size_t)h * B;
            memset(d, 0, (size_t)B * sizeof(float));
            if (norm > 0.0) {
                float scale = (float)(coef / norm);
                if (hd->kind == CR_HEAD_BINARY)
                    cr_bce_logits_backward(d, p, y, mask, b->weight, B, scale);
                else
                    cr_mse_backward(d, p, y, mask, b->weight, B, scale);
            }
        }
    }
    *total = sum;
    return CR_OK;
}

cr_status cr_ranker_loss(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                         double *head_loss, double *total, cr_error *e) {
    if (b->B != ws->B)
        return cr_err(e, CR_ERR_ARG,
                      "loss got a batch of %d rows; the last forward on this workspace had %d",
                      b->B, ws->B);
    const float *lv = m->log_var >= 0 ? cr_ptable_ptr(&m->params, m->params.data, m->log_var)
                                      : NULL;
    float *dlv = ws->train ? cr_nn_grad(&m->params, ws->grads, m->log_var) : NULL;
    return cr_multitask_loss(m->cfg.heads, m->cfg.n_heads, m->cfg.loss_weighting, lv, b,
                             ws->out, ws->train ? ws->dout : NULL, dlv, head_loss, total, e);
}
