/*
 * loss.c - per-task losses: binary cross-entropy on logits (click, like,
 * finish) and squared error (watch time, rating), with per-example weights
 * and masks for tasks an example has no label for. Forward returns a sum
 * in double; normalising is the caller's choice. Never allocates.
 *
 * Legend: B examples. A masked example (mask 0) is skipped outright, so a
 * missing label may hold anything, NaN included.
 */
#include "kernels.h"

#include <math.h>

/* The weight of example b: w*m, 0 if masked. */
static inline float cr_loss_wm(const float *mask, const float *weight, int b) {
    float m = mask ? mask[b] : 1.0f;
    if (m == 0.0f) return 0.0f;
    return m * (weight ? weight[b] : 1.0f);
}

/* BCE(z, y) = -y log s(z) - (1-y) log(1 - s(z)) rewritten without s:
 *   = max(z, 0) - z y + log1p(exp(-|z|)),
 * which never takes the log of 0 nor exp of a positive number, so it is
 * exact for |z| = 100 where the textbook form gives inf or 0. y may be
 * soft (any value in [0, 1], e.g. a teacher's probability). The sum is in
 * double: a batch of thousands of small terms loses digits in float. */
double cr_bce_logits_forward(const float *logit, const float *label, const float *mask,
                             const float *weight, int B) {
    CR_ASSERT(logit && label && B >= 0);
    double sum = 0.0;
    for (int b = 0; b < B; b++) {
        float wm = cr_loss_wm(mask, weight, b);
        if (wm == 0.0f) continue;
        double z = logit[b], y = label[b];
        double l = (z > 0.0 ? z : 0.0) - z * y + log1p(exp(-fabs(z)));
        sum += (double)wm * l;
    }
    return sum;
}

/* dBCE/dz = sigmoid(z) - y, with the sigmoid evaluated on the side where
 * exp cannot overflow. */
void cr_bce_logits_backward(float *dlogit, const float *logit, const float *label,
                            const float *mask, const float *weight, int B, float scale) {
    CR_ASSERT(logit && label && B >= 0);
    if (!dlogit) return;
    for (int b = 0; b < B; b++) {
        float wm = cr_loss_wm(mask, weight, b);
        if (wm == 0.0f) continue;
        double z = logit[b];
        double s = z >= 0.0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
        dlogit[b] += (float)((double)scale * wm * (s - (double)label[b]));
    }
}

/* MSE(p, y) = (p - y)^2 per example (PyTorch's MSELoss before its mean). */
double cr_mse_forward(const float *pred, const float *label, const float *mask,
                      const float *weight, int B) {
    CR_ASSERT(pred && label && B >= 0);
    double sum = 0.0;
    for (int b = 0; b < B; b++) {
        float wm = cr_loss_wm(mask, weight, b);
        if (wm == 0.0f) continue;
        double d = (double)pred[b] - (double)label[b];
        sum += (double)wm * d * d;
    }
    return sum;
}

/* dMSE/dp = 2 (p - y). */
void cr_mse_backward(float *dpred, const float *pred, const float *label, const float *mask,
                     const float *weight, int B, float scale) {
    CR_ASSERT(pred && label && B >= 0);
    if (!dpred) return;
    for (int b = 0; b < B; b++) {
        float wm = cr_loss_wm(mask, weight, b);
        if (wm == 0.0f) continue;
        double d = (double)pred[b] - (double)label[b];
        dpred[b] += (float)((double)scale * wm * 2.0 * d);
    }
}
