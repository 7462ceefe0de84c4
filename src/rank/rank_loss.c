/*
 * rank_loss.c - the multi-task loss of the ranker's heads and its gradient with
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

static double cr_sigmoid_d(double z) {
    return z >= 0.0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

/* The distillation variants of one head's loss (docs/distillation.md), in
 * double with the kernels' formulas, so a head without them never comes
 * here and keeps the kernels' exact results. Returns sum_b c_b l_b and, if
 * d is not NULL, adds scale * c_b * dl/dp into it.
 *   soft label (t != NULL): y' = (1 - lambda) y + lambda t, then BCE or MSE;
 *   tempered (T > 0):       l = T^2 BCE(z / T, sigmoid(t / T)),
 *                           dl/dz = T (sigmoid(z / T) - sigmoid(t / T)). */
static double cr_head_distill(const cr_head *hd, const float *p, const float *y,
                              const float *t, const float *mask, const float *weight, int B,
                              float *d, float scale) {
    const double lam = hd->blend_lambda, T = hd->temperature;
    double sum = 0.0;
    for (int b = 0; b < B; b++) {
        float m = mask ? mask[b] : 1.0f;
        if (m == 0.0f) continue;
        float wm = m * (weight ? weight[b] : 1.0f);
        if (wm == 0.0f) continue;
        double z = p[b], target = y[b], l, g;
        if (t) target = (1.0 - lam) * target + lam * (double)t[b];
        if (T > 0.0) {
            double zt = z / T, q = cr_sigmoid_d(target / T);
            l = T * T * ((zt > 0.0 ? zt : 0.0) - zt * q + log1p(exp(-fabs(zt))));
            g = T * (cr_sigmoid_d(zt) - q);
        } else if (hd->kind == CR_HEAD_BINARY) {
            l = (z > 0.0 ? z : 0.0) - z * target + log1p(exp(-fabs(z)));
            g = cr_sigmoid_d(z) - target;
        } else {
            double r = z - target;
            l = r * r;
            g = 2.0 * r;
        }
        sum += (double)wm * l;
        if (d) d[b] += (float)((double)scale * wm * g);
    }
    return sum;
}

/* The teacher column a soft-label head blends in, checked against the batch. */
static cr_status cr_head_blend(const cr_head *h, const cr_batch *b, const float **t,
                               cr_error *e) {
    *t = NULL;
    if (h->temperature > 0.0f && h->kind != CR_HEAD_BINARY)
        return cr_err(e, CR_ERR_CONFIG, "head '%s': a temperature needs a binary head", h->name);
    if (h->blend_lambda == 0.0f) return CR_OK;
    if (h->blend_extra < 0 || h->blend_extra >= b->n_extra || !b->extra)
        return cr_err(e, CR_ERR_MISMATCH, "head '%s': soft-label extra column %d, the batch has %d",
                      h->name, h->blend_extra, b->extra ? b->n_extra : 0);
    *t = b->extra + (size_t)h->blend_extra * b->B;
    return CR_OK;
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
        const float *tb = NULL;
        CR_TRY(cr_head_data(hd, b, &y, &mask, e));
        CR_TRY(cr_head_blend(hd, b, &tb, e));
        const int distill = tb != NULL || hd->temperature > 0.0f;
        const float *p = out + (size_t)h * B;
        double norm = cr_head_norm(mask, b->weight, B);
        double L = 0.0;
        if (norm > 0.0) {
            if (distill)
                L = cr_head_distill(hd, p, y, tb, mask, b->weight, B, NULL, 0.0f);
            else
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
                if (distill)
                    cr_head_distill(hd, p, y, tb, mask, b->weight, B, d, scale);
                else if (hd->kind == CR_HEAD_BINARY)
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
