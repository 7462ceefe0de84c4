/*
 * linear.c - the fully connected layer, out = inp @ w^T + b, in PyTorch's
 * nn.Linear layout (w is (OC, C)). Both matrix products go through
 * cr_sgemm; this file must never hand-roll a GEMM or allocate.
 *
 * Legend: B batch rows, C input channels, OC output channels; ldi and ldo
 * are the row strides of inp/dinp and out/dout (so a layer can read or
 * write a column slice of a wider buffer, e.g. the concatenated features).
 */
#include "kernels.h"

/* Seed every row of out with the bias (when there is one) and return the
 * beta for the GEMM that follows. */
static float cr_linear_seed(float *out, const float *b, int B, int OC, int ldo) {
    if (!b) return 0.0f;
    /* then the GEMM accumulates onto it (beta = 1): one pass over out
     * instead of two */
    CR_PARALLEL_FOR((size_t)B * OC > CR_PAR_MIN_WORK)
    for (int r = 0; r < B; r++) {
        float *o = out + (size_t)r * ldo;
        for (int j = 0; j < OC; j++) o[j] = b[j];
    }
    return 1.0f;
}

void cr_linear_forward(float *out, const float *inp, const float *w, const float *b, int B,
                       int C, int OC, int ldi, int ldo) {
    CR_ASSERT(out && inp && w && B >= 0 && C >= 0 && OC >= 0);
    CR_ASSERT(ldi >= C && ldo >= OC);
    if (B == 0 || OC == 0) return;
    float beta = cr_linear_seed(out, b, B, OC, ldo);
    cr_sgemm(0, 1, B, OC, C, 1.0f, inp, ldi, w, C, beta, out, ldo);
}

void cr_linear_forward_rows(float *out, const float *inp, const float *w, const float *b,
                            int B, int C, int OC, int ldi, int ldo) {
    CR_ASSERT(out && inp && w && B >= 0 && C >= 0 && OC >= 0);
    CR_ASSERT(ldi >= C && ldo >= OC);
    if (B == 0 || OC == 0) return;
    float beta = cr_linear_seed(out, b, B, OC, ldo);
    cr_sgemm_rows(0, 1, B, OC, C, 1.0f, inp, ldi, w, C, beta, out, ldo);
}

/* Column sums of dout into db, one output channel per lane. Each db[j]
 * sums its rows in the order r = 0..B-1 whatever the thread count, and
 * threads own disjoint blocks of columns, so no atomics and no reduction
 * whose order could change between runs. */
static void cr_linear_bias_grad(float *db, const float *dout, int B, int OC, int ldo) {
    enum { CB = 256 }; /* columns per task: a few cache lines of db */
    int nblk = (OC + CB - 1) / CB;
    CR_PARALLEL_FOR(nblk > 1 && (size_t)B * OC > CR_PAR_MIN_WORK)
    for (int blk = 0; blk < nblk; blk++) {
        int j0 = blk * CB, j1 = j0 + CB < OC ? j0 + CB : OC;
        float acc[CB];
        for (int j = j0; j < j1; j++) acc[j - j0] = 0.0f;
        for (int r = 0; r < B; r++) {
            const float *d = dout + (size_t)r * ldo;
            for (int j = j0; j < j1; j++) acc[j - j0] += d[j];
        }
        for (int j = j0; j < j1; j++) db[j] += acc[j - j0];
    }
}

/* With y = x W^T + b:  dL/dx = dL/dy W  (B,OC)@(OC,C),
 *                      dL/dW = (dL/dy)^T x  (OC,B)@(B,C),
 *                      dL/db = sum over rows of dL/dy.
 * All three accumulate (beta = 1) so a shared input or a weight used twice
 * sums its gradients. */
void cr_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, int B, int C, int OC, int ldi,
                        int ldo) {
    CR_ASSERT(dout && B >= 0 && C >= 0 && OC >= 0 && ldi >= C && ldo >= OC);
    if (B == 0) return;
    if (dinp) {
        CR_ASSERT(w);
        cr_sgemm(0, 0, B, C, OC, 1.0f, dout, ldo, w, C, 1.0f, dinp, ldi);
    }
    if (dw) {
        CR_ASSERT(inp);
        cr_sgemm(1, 0, OC, C, B, 1.0f, dout, ldo, inp, ldi, 1.0f, dw, C);
    }
    if (db) cr_linear_bias_grad(db, dout, B, OC, ldo);
}

/* ---- weights packed once for inference (the kernels: isa/linear_packed.c) -------
 * ceil(OC / NR) slivers of (C, NR), zero past OC: one layout for every
 * instruction-set level (the AVX2 tile reads a sliver as two halves of 16),
 * so a packed snapshot does not depend on the kernel set. */
int cr_linear_pack_width(void) { return CR_PACK_NR; }

size_t cr_linear_pack_floats(int OC, int C) {
    CR_ASSERT(OC >= 0 && C >= 0);
    return (size_t)((OC + CR_PACK_NR - 1) / CR_PACK_NR) * CR_PACK_NR * (size_t)C;
}

void cr_linear_pack(float *wp, const float *w, int OC, int C) {
    CR_ASSERT(wp && (w || OC == 0 || C == 0) && OC >= 0 && C >= 0);
    int ns = (OC + CR_PACK_NR - 1) / CR_PACK_NR;
    for (int s = 0; s < ns; s++) {
        float *d = wp + (size_t)s * C * CR_PACK_NR;
        int j0 = s * CR_PACK_NR, nr = OC - j0 < CR_PACK_NR ? OC - j0 : CR_PACK_NR;
        /* read w row by row (contiguous), write with stride NR */
        for (int j = 0; j < nr; j++) {
            const float *src = w + (size_t)(j0 + j) * C;
            for (int k = 0; k < C; k++) d[(size_t)k * CR_PACK_NR + j] = src[k];
        }
        for (int j = nr; j < CR_PACK_NR; j++)
            for (int k = 0; k < C; k++) d[(size_t)k * CR_PACK_NR + j] = 0.0f;
    }
}
