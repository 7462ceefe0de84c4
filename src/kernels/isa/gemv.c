/*
 * gemv.c - one row times a transposed matrix, y = alpha * x @ B^T + beta * y:
 * the product of a decode step, where every nn.Linear sees a single token.
 * There is nothing to reuse between outputs but x, so the time is the time
 * to stream B from memory once; the kernel reads B row after row, each row
 * from start to end, which is the access the hardware prefetchers follow
 * best (reading four or eight rows side by side, as the small-matrix path
 * does, measured at half the bandwidth on Zen 4). The seam (gemm.c) routes
 * M = 1, transB products here. Never allocates.
 *
 * Legend: N outputs (rows of B), K inputs, VW float lanes per vector.
 *
 * Order of the sums (the same in linear_bf16.c): x and a row are cut into
 * chunks of VW lanes; chunk c accumulates into one of four vectors,
 * number c % 4, the last partial chunk through masked loads; then
 * (a0 + a1) + (a2 + a3) and a fixed horizontal sum. An output does not
 * depend on N, on its position or on the thread count.
 */
#include "level.h"
#include "vec.h"

/* x . w over K, in the order above. */
CR_VF_DOT_DEFINE(cr_gemv_dot, float, vf_load, vf_load_n)

static void cr_gemv_rows(int j0, int j1, int K, float alpha, const float *x, const float *B,
                         int ldb, float beta, float *y) {
    for (int j = j0; j < j1; j++) {
        float s = alpha * cr_gemv_dot(x, B + (size_t)j * ldb, K);
        y[j] = beta == 0.0f ? s : s + beta * y[j];
    }
}

/* Rows per parallel task: contiguous blocks, so each thread streams one
 * long run of B (schedule(static) gives a thread consecutive tasks). */
#define CR_GEMV_ROWS 16
/* Below this many multiply-adds a thread fork costs more than it saves. */
#define CR_GEMV_PAR_MIN_WORK (1 << 17)

void CR_ISA(cr_sgemv_t)(int N, int K, float alpha, const float *x, const float *B, int ldb,
                float beta, float *y) {
    CR_ASSERT(N >= 0 && K >= 0 && ldb >= K && x && B && y);
    if (N == 0) return;
    int nblk = (N + CR_GEMV_ROWS - 1) / CR_GEMV_ROWS;
    if (cr_get_threads() == 1 || nblk == 1 || (double)N * K < CR_GEMV_PAR_MIN_WORK) {
        cr_gemv_rows(0, N, K, alpha, x, B, ldb, beta, y);
        return;
    }
    CR_PARALLEL_FOR(1)
    for (int t = 0; t < nblk; t++) {
        int j0 = t * CR_GEMV_ROWS, j1 = j0 + CR_GEMV_ROWS < N ? j0 + CR_GEMV_ROWS : N;
        cr_gemv_rows(j0, j1, K, alpha, x, B, ldb, beta, y);
    }
}
