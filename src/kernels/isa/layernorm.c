/*
 * layernorm.c - layer normalisation over each row of C channels, with an
 * optional elementwise affine (w, b). Forward caches each row's mean and
 * 1/std for backward; nothing is allocated and nothing is recomputed.
 *
 * Legend: B rows, C channels.
 */
#include "level.h"

#include <math.h>

/* y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps), var biased (as
 * PyTorch). Statistics are summed in double: rows of large C with a large
 * common offset would otherwise lose the variance to cancellation. mean and
 * rstd may be NULL when nothing will run backward (inference). */
void CR_ISA(cr_layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int B, int C, float eps) {
    CR_ASSERT(out && inp && B >= 0 && C > 0);
    CR_PARALLEL_FOR((size_t)B * C > CR_PAR_MIN_WORK / 4)
    for (int r = 0; r < B; r++) {
        const float *x = inp + (size_t)r * C;
        float *y = out + (size_t)r * C;
        double s = 0.0;
        for (int j = 0; j < C; j++) s += x[j];
        double m = s / C;
        double v = 0.0;
        for (int j = 0; j < C; j++) {
            double d = x[j] - m;
            v += d * d;
        }
        float fm = (float)m;
        float rs = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int j = 0; j < C; j++) {
            float n = (x[j] - fm) * rs;
            y[j] = n * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
        }
        if (mean) mean[r] = fm;
        if (rstd) rstd[r] = rs;
    }
}

/* With n = (x - mean) * rstd and g = dout * w (the gradient at n):
 *   dL/dx = rstd * (g - mean_j(g) - n * mean_j(g * n))
 * (the two means are the gradients through mean and through rstd), and
 *   dL/dw = sum_rows dout * n,  dL/db = sum_rows dout.
 * The input gradient is split by rows and the parameter gradients by
 * columns, so each loop writes disjoint memory; each column sums its rows
 * in the order 0..B-1, so results do not depend on the thread count. */
void CR_ISA(cr_layernorm_backward)(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int B, int C) {
    CR_ASSERT(dout && inp && mean && rstd && B >= 0 && C > 0);
    if (dinp) {
        CR_PARALLEL_FOR((size_t)B * C > CR_PAR_MIN_WORK / 4)
        for (int r = 0; r < B; r++) {
            const float *x = inp + (size_t)r * C;
            const float *dy = dout + (size_t)r * C;
            float *dx = dinp + (size_t)r * C;
            float m = mean[r], rs = rstd[r];
            double sg = 0.0, sgn = 0.0;
            for (int j = 0; j < C; j++) {
                float g = dy[j] * (w ? w[j] : 1.0f);
                sg += g;
                sgn += (double)g * ((x[j] - m) * rs);
            }
            float mg = (float)(sg / C), mgn = (float)(sgn / C);
            for (int j = 0; j < C; j++) {
                float n = (x[j] - m) * rs;
                float g = dy[j] * (w ? w[j] : 1.0f);
                dx[j] += rs * (g - mg - n * mgn);
            }
        }
    }
    if (dw || db) {
        enum { CB = 128 };
        int nblk = (C + CB - 1) / CB;
        CR_PARALLEL_FOR(nblk > 1 && (size_t)B * C > CR_PAR_MIN_WORK / 4)
        for (int blk = 0; blk < nblk; blk++) {
            int j0 = blk * CB, j1 = j0 + CB < C ? j0 + CB : C;
            float aw[CB], ab[CB];
            for (int j = 0; j < j1 - j0; j++) aw[j] = ab[j] = 0.0f;
            for (int r = 0; r < B; r++) {
                const float *x = inp + (size_t)r * C;
                const float *dy = dout + (size_t)r * C;
                float m = mean[r], rs = rstd[r];
                for (int j = j0; j < j1; j++) {
                    aw[j - j0] += dy[j] * ((x[j] - m) * rs);
                    ab[j - j0] += dy[j];
                }
            }
            for (int j = j0; j < j1; j++) {
                if (dw) dw[j] += aw[j - j0];
                if (db) db[j] += ab[j - j0];
            }
        }
    }
}
