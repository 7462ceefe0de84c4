/*
 * gemm_internal.h - what the blocked GEMMs (gemm_portable.c in fp32,
 * gemm_bf16.c in bfloat16) share: how an output is cut into tasks, and the
 * store of a tile cut by the matrix edge. Internal to src/kernels.
 */
#ifndef CR_GEMM_INTERNAL_H
#define CR_GEMM_INTERNAL_H

#include <math.h>
#include <stddef.h>

/* The output cut into nic x njc independent blocks ("tasks") of at most
 * mc x nc (multiples of the register tile mr x nr), at least as many as
 * threads. A task packs its own slices of A and B and runs the whole K
 * loop, so the split decides which thread runs a tile, never what it
 * computes. */
typedef struct {
    int mc, nc, nic, njc;
} cr_gemm_plan;

cr_gemm_plan cr_gemm_plan_make(int M, int N, int nt, int mr, int nr, int mc_max, int nc_max);

/* One product, as a task sees it. */
typedef struct cr_gemm_args {
    int transA, transB, M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
} cr_gemm_args;
/* C[ic : ic+mc, jc : jc+nc] over the whole K range; a task keeps its
 * packing buffers in its own frame, so each thread has one set. */
typedef void (*cr_gemm_task_fn)(const cr_gemm_args *g, int ic, int jc, int mc, int nc);
/* Every task of plan p, on the calling thread alone unless par (then
 * handed out one at a time to OpenMP threads, so a descheduled thread
 * delays only its own task). */
void cr_gemm_run(const cr_gemm_args *g, const cr_gemm_plan *p, int par, cr_gemm_task_fn task);

/* C (mr x nr, stride ldc) = alpha * tile + beta * C (beta 0: overwrite),
 * tile rows tile_ld apart: the edge of a blocked product.
 * Inline, so it multiplies like the level that includes it: one fused
 * multiply-add per element where the level has FMA (the vector tiles'
 * epilogue), a product and a sum where it does not (the plain-C tile's). */
static inline void cr_gemm_store_edge(float *C, int ldc, int mr, int nr, const float *tile,
                                      int tile_ld, float alpha, float beta) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *c = C + (size_t)i * ldc + j;
            float t = tile[(size_t)i * tile_ld + j];
#if defined(__FMA__) || CR_NEON
            *c = beta == 0.0f ? alpha * t : fmaf(alpha, t, beta * *c);
#else
            *c = beta == 0.0f ? alpha * t : alpha * t + beta * *c;
#endif
        }
}

#if defined(__AVX512F__)
#include <immintrin.h>
#include <stddef.h>

/* The 12 x 32 AVX-512 register tile's store: row i of C (stride ldc) =
 * alpha * (c0[i] | c1[i]) + beta * C, beta 0 overwriting. Shared by the
 * fp32 and bf16 micro-kernels, so both round the epilogue alike. */
static inline __attribute__((always_inline)) void
cr_gemm_store_tile12x32(float *C, int ldc, const __m512 *c0, const __m512 *c1, float alpha,
                        float beta) {
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) {
            _mm512_storeu_ps(c, _mm512_mul_ps(va, c0[i]));
            _mm512_storeu_ps(c + 16, _mm512_mul_ps(va, c1[i]));
        } else {
            _mm512_storeu_ps(c, _mm512_fmadd_ps(va, c0[i], _mm512_mul_ps(vb, _mm512_loadu_ps(c))));
            _mm512_storeu_ps(c + 16, _mm512_fmadd_ps(va, c1[i],
                                                     _mm512_mul_ps(vb, _mm512_loadu_ps(c + 16))));
        }
    }
}
#endif

#endif /* CR_GEMM_INTERNAL_H */
