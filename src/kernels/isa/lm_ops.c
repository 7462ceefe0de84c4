/*
 * lm_ops.c - the per-token pieces of a decoder language model that the
 * ranker never needed: RMSNorm (Llama's normalisation), SwiGLU (Llama's
 * feed-forward gate) and cross-entropy over a vocabulary with an ignore
 * index. Pure functions over caller buffers: no allocation, no state.
 *
 * Legend: B rows, C channels, N rows of logits, V vocabulary size.
 */
#include "level.h"
#include "vmath.h"

#include <math.h>

/* ---- RMSNorm ------------------------------------------------------------------ */

/* y = x * rstd * w with rstd = 1/sqrt(mean(x^2) + eps): LayerNorm without
 * centring and without a bias. The mean of squares is summed in double. */
void CR_ISA(cr_rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *w, int B,
                        int C, float eps) {
    CR_ASSERT(out && inp && B >= 0 && C > 0);
    CR_PARALLEL_FOR((size_t)B * C > CR_PAR_MIN_WORK / 4)
    for (int r = 0; r < B; r++) {
        const float *x = inp + (size_t)r * C;
        float *y = out + (size_t)r * C;
        double ss = 0.0;
        for (int j = 0; j < C; j++) ss += (double)x[j] * x[j];
        float rs = (float)(1.0 / sqrt(ss / C + (double)eps));
        for (int j = 0; j < C; j++) y[j] = x[j] * rs * (w ? w[j] : 1.0f);
        if (rstd) rstd[r] = rs;
    }
}

/* With s = rstd, n_j = x_j s and g_j = dout_j w_j (the gradient at n):
 *   ds/dx_k = -s^3 x_k / C, so
 *   dL/dx_k = s g_k + sum_j g_j x_j (-s^3 x_k / C) = s (g_k - n_k mean_j(g_j n_j))
 * (LayerNorm's formula without the mean term), and dL/dw_j = sum_rows dout_j n_j.
 * Rows for the input gradient, column blocks for the weight gradient, so
 * each loop writes disjoint memory in a fixed order. */
void CR_ISA(cr_rmsnorm_backward)(float *dinp, float *dw, const float *dout, const float *rstd,
                         const float *inp, const float *w, int B, int C) {
    CR_ASSERT(dout && rstd && inp && B >= 0 && C > 0);
    if (dinp) {
        CR_PARALLEL_FOR((size_t)B * C > CR_PAR_MIN_WORK / 4)
        for (int r = 0; r < B; r++) {
            const float *x = inp + (size_t)r * C;
            const float *dy = dout + (size_t)r * C;
            float *dx = dinp + (size_t)r * C;
            float rs = rstd[r];
            double sgn = 0.0;
            for (int j = 0; j < C; j++) sgn += (double)dy[j] * (w ? w[j] : 1.0f) * (x[j] * rs);
            float m = (float)(sgn / C);
            for (int j = 0; j < C; j++) {
                float g = dy[j] * (w ? w[j] : 1.0f);
                dx[j] += rs * (g - x[j] * rs * m);
            }
        }
    }
    if (dw) {
        enum { CB = 128 };
        int nblk = (C + CB - 1) / CB;
        CR_PARALLEL_FOR(nblk > 1 && (size_t)B * C > CR_PAR_MIN_WORK / 4)
        for (int blk = 0; blk < nblk; blk++) {
            int j0 = blk * CB, j1 = j0 + CB < C ? j0 + CB : C;
            float acc[CB];
            for (int j = 0; j < j1 - j0; j++) acc[j] = 0.0f;
            for (int r = 0; r < B; r++) {
                const float *x = inp + (size_t)r * C;
                const float *dy = dout + (size_t)r * C;
                float rs = rstd[r];
                for (int j = j0; j < j1; j++) acc[j - j0] += dy[j] * x[j] * rs;
            }
            for (int j = j0; j < j1; j++) dw[j] += acc[j - j0];
        }
    }
}

/* ---- SwiGLU ------------------------------------------------------------------- */

#define CR_SWIGLU_PAR (1 << 14)

/* Branch-free and libm-free so the SwiGLU loops vectorise. */
static inline float cr_sigm(float x) { return 1.0f / (1.0f + cr_vexpf(-x)); }

/* out = silu(a) * b: in Llama, a = x W1^T (the gate) and b = x W3^T (the
 * value); out then goes through W2. out may alias a or b only when no
 * backward follows (backward needs both inputs). */
void CR_ISA(cr_swiglu_forward)(float *out, const float *a, const float *b, size_t n) {
    CR_PARALLEL_FOR(n > CR_SWIGLU_PAR)
    for (size_t i = 0; i < n; i++) {
        float x = a[i];
        out[i] = x * cr_sigm(x) * b[i];
    }
}

/* d silu(a)/da = s + a s (1 - s) with s = sigmoid(a), so
 *   da += dout * b * s (1 + a (1 - s)),  db += dout * a s. */
void CR_ISA(cr_swiglu_backward)(float *da, float *db, const float *dout, const float *a,
                        const float *b, size_t n) {
    if (!da && !db) return;
    CR_PARALLEL_FOR(n > CR_SWIGLU_PAR)
    for (size_t i = 0; i < n; i++) {
        float x = a[i], s = cr_sigm(x);
        if (da) da[i] += dout[i] * b[i] * s * (1.0f + x * (1.0f - s));
        if (db) db[i] += dout[i] * x * s;
    }
}

/* ---- cross-entropy with an ignore index -------------------------------------- */

/* log(sum_j exp(x_j - mx)) + mx: the exponentials in float (cr_vexpf, 16
 * lanes, each lane's terms summed in float), the lanes and the log in
 * double. libm's double exp here was 4% of a training step of the bundled
 * model's shape; each lane sums at most V/16 terms of at most 1. */
static double cr_lse_row(const float *x, int V) {
    float mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    float part[16] = {0};
    int j = 0;
    for (; j + 16 <= V; j += 16)
        for (int l = 0; l < 16; l++) part[l] += cr_vexpf(x[j + l] - mx);
    double s = 0.0;
    for (int l = 0; l < 16; l++) s += part[l];
    for (; j < V; j++) s += cr_vexpf(x[j] - mx);
    return (double)mx + log(s);
}

/* Row loss = lse - logit[target] with lse = max + log(sum exp(logit - max))
 * (no overflow). The per-row losses are summed in row order in double after
 * the parallel loop, so the total does not depend on the thread count. The
 * lse of an ignored row is still written (it costs the same and keeps the
 * cache fully defined). */
double CR_ISA(cr_xent_forward)(float *lse, const float *logits, const int32_t *targets, int N, int V,
                       int *n_valid) {
    CR_ASSERT(logits && targets && N >= 0 && V > 0);
    double total = 0.0;
    int nv = 0;
    for (int r = 0; r < N; r++) {
        CR_ASSERT(targets[r] < V);
        nv += targets[r] >= 0;
    }
    CR_PARALLEL_FOR((size_t)N * V > CR_PAR_MIN_WORK)
    for (int r = 0; r < N; r++) {
        double l = cr_lse_row(logits + (size_t)r * V, V);
        if (lse) lse[r] = (float)l;
    }
    /* A second, serial pass for the sum: lse alone is not enough when the
     * caller passed NULL, so recompute from the logits in that case. */
    for (int r = 0; r < N; r++) {
        if (targets[r] < 0) continue;
        const float *x = logits + (size_t)r * V;
        double l;
        l = lse ? lse[r] : cr_lse_row(x, V);
        total += l - x[targets[r]];
    }
    if (n_valid) *n_valid = nv;
    return total;
}

/* d(lse - x_t)/dx_j = softmax_j - [j == t], with softmax_j = exp(x_j - lse). */
void CR_ISA(cr_xent_backward)(float *dlogits, const float *lse, const float *logits,
                      const int32_t *targets, int N, int V, float scale) {
    CR_ASSERT(dlogits && lse && logits && targets && N >= 0 && V > 0);
    CR_PARALLEL_FOR((size_t)N * V > CR_PAR_MIN_WORK)
    for (int r = 0; r < N; r++) {
        int t = targets[r];
        if (t < 0) continue;
        const float *x = logits + (size_t)r * V;
        float *dx = dlogits + (size_t)r * V;
        float l = lse[r];
        for (int j = 0; j < V; j++) dx[j] += scale * cr_vexpf(x[j] - l);
        dx[t] -= scale;
    }
}
