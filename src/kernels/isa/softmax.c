/*
 * softmax.c - softmax over each row of N values (MMoE/PLE gates, attention
 * weights). Rows are independent, so threads split rows. In-place forward
 * is allowed; backward adds into dinp and needs only the forward output.
 *
 * Legend: B rows, N values per row.
 */
#include "level.h"

#include <math.h>

/* Subtracting the row maximum keeps every exponent <= 0, so no overflow,
 * and the largest term is exactly 1, so the sum is >= 1 (no division by
 * zero, even for rows of -inf except one). The sum runs in double so a
 * row of thousands of tiny terms keeps its precision. */
void CR_ISA(cr_softmax_forward)(float *out, const float *inp, int B, int N) {
    CR_ASSERT(B >= 0 && N >= 0);
    CR_PARALLEL_FOR((size_t)B * N > CR_PAR_MIN_WORK / 4)
    for (int r = 0; r < B; r++) {
        const float *x = inp + (size_t)r * N;
        float *y = out + (size_t)r * N;
        float mx = -INFINITY;
        for (int j = 0; j < N; j++) mx = x[j] > mx ? x[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < N; j++) {
            y[j] = expf(x[j] - mx);
            sum += y[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < N; j++) y[j] *= inv;
    }
}

/* With y = softmax(x): dL/dx_j = y_j (dL/dy_j - sum_k dL/dy_k y_k),
 * the Jacobian diag(y) - y y^T applied to dout without forming it. */
void CR_ISA(cr_softmax_backward)(float *dinp, const float *dout, const float *out, int B, int N) {
    CR_ASSERT(B >= 0 && N >= 0);
    if (!dinp) return;
    CR_PARALLEL_FOR((size_t)B * N > CR_PAR_MIN_WORK / 4)
    for (int r = 0; r < B; r++) {
        const float *dy = dout + (size_t)r * N;
        const float *y = out + (size_t)r * N;
        float *dx = dinp + (size_t)r * N;
        double dot = 0.0;
        for (int j = 0; j < N; j++) dot += (double)dy[j] * y[j];
        float fdot = (float)dot;
        for (int j = 0; j < N; j++) dx[j] += y[j] * (dy[j] - fdot);
    }
}
