/*
 * gemm_small.c - GEMM for products with few rows or few columns (serving a
 * handful of candidates, a 1-wide output layer), where packing a weight
 * matrix would cost more than multiplying by it. Reads A and B in place,
 * never packs, never allocates, and never splits K between threads.
 *
 * Legend: op(A) is (M, K), op(B) is (K, N), C is (M, N), all row-major.
 * Two shapes of inner loop, chosen by which operand is contiguous:
 *   transB = 1 (nn.Linear forward): C[i, j] = <row i of A, row j of B>,
 *     SI x SJ dot products at once, vectorised along K;
 *   transB = 0: rows of C accumulate a(i, k) * (row k of B), vectorised
 *     along N, SI rows x 4 vectors of C in registers for the whole K loop.
 */
#include "level.h"

#include <math.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

/* A tiny vector layer so both loops are written once: VW floats per
 * vector, loads of the first n lanes (0 <= n <= VW) that never touch memory
 * past them, and a horizontal sum with a fixed order. */
#if defined(__AVX512F__)
typedef __m512 cr_v;
#define CR_VW 16
#define CR_SI 4
static inline cr_v v_zero(void) { return _mm512_setzero_ps(); }
static inline cr_v v_set1(float x) { return _mm512_set1_ps(x); }
static inline cr_v v_fma(cr_v a, cr_v b, cr_v c) { return _mm512_fmadd_ps(a, b, c); }
static inline cr_v v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline cr_v v_load_n(const float *p, int n) {
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}
static inline void v_store_n(float *p, cr_v v, int n) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v);
}
static inline float v_sum(cr_v v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 cr_v;
#define CR_VW 8
#define CR_SI 2 /* 16 ymm registers: 8 accumulators + loads */
static inline __m256i v_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline cr_v v_zero(void) { return _mm256_setzero_ps(); }
static inline cr_v v_set1(float x) { return _mm256_set1_ps(x); }
static inline cr_v v_fma(cr_v a, cr_v b, cr_v c) { return _mm256_fmadd_ps(a, b, c); }
static inline cr_v v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline cr_v v_load_n(const float *p, int n) { return _mm256_maskload_ps(p, v_mask(n)); }
static inline void v_store_n(float *p, cr_v v, int n) { _mm256_maskstore_ps(p, v_mask(n), v); }
static inline float v_sum(cr_v v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
}
#elif CR_NEON
#include "vec.h"
/* vec.h's NEON layer (4 lanes), plus the broadcast and the partial store */
typedef cr_vf cr_v;
#define CR_VW 4
#define CR_SI 4 /* 32 q registers: 16 accumulators + 4 rows of B + a row of A */
static inline cr_v v_zero(void) { return vf_zero(); }
static inline cr_v v_set1(float x) { return vdupq_n_f32(x); }
static inline cr_v v_fma(cr_v a, cr_v b, cr_v c) { return vf_fma(a, b, c); }
static inline cr_v v_load(const float *p) { return vf_load(p); }
static inline cr_v v_load_n(const float *p, int n) { return vf_load_n(p, n); }
static inline void v_store_n(float *p, cr_v v, int n) {
    float t[4];
    vst1q_f32(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}
static inline float v_sum(cr_v v) { return vf_sum(v); }
#else
typedef float cr_v;
#define CR_VW 1
#define CR_SI 2
static inline cr_v v_zero(void) { return 0.0f; }
static inline cr_v v_set1(float x) { return x; }
static inline cr_v v_fma(cr_v a, cr_v b, cr_v c) { return a * b + c; }
static inline cr_v v_load(const float *p) { return *p; }
static inline cr_v v_load_n(const float *p, int n) { return n > 0 ? *p : 0.0f; }
static inline void v_store_n(float *p, cr_v v, int n) {
    if (n > 0) *p = v;
}
static inline float v_sum(cr_v v) { return v; }
#endif

#define CR_SJ 4 /* rows of B per dot-product block */
#define CR_SV 4 /* vectors of C per row in the axpy block */

/* C = alpha * x + beta * C for one element; beta 0 never reads C. */
static inline void cr_small_put(float *c, float x, float alpha, float beta) {
    *c = beta == 0.0f ? alpha * x : alpha * x + beta * *c;
}

/* One block of the dot-product loop: si rows of A (si a compile-time
 * constant after inlining, so M = 1 does not pay for CR_SI rows) against
 * CR_SJ rows of B. Rows of B past the edge alias the last valid one (so the
 * loop has no branches); their results are not stored. */
static inline __attribute__((always_inline)) void
cr_dot_block(int si, int nb, const float *const *a, const float *const *b, int K, float alpha,
             float beta, float *C, int ldc) {
    cr_v acc[CR_SI][CR_SJ];
    for (int r = 0; r < si; r++)
        for (int q = 0; q < CR_SJ; q++) acc[r][q] = v_zero();
    int k = 0;
    for (; k + CR_VW <= K; k += CR_VW) {
        cr_v bv[CR_SJ];
        for (int q = 0; q < CR_SJ; q++) bv[q] = v_load(b[q] + k);
        for (int r = 0; r < si; r++) {
            cr_v av = v_load(a[r] + k);
            for (int q = 0; q < CR_SJ; q++) acc[r][q] = v_fma(av, bv[q], acc[r][q]);
        }
    }
    if (k < K) { /* the last K % VW values, through masked loads */
        int n = K - k;
        cr_v bv[CR_SJ];
        for (int q = 0; q < CR_SJ; q++) bv[q] = v_load_n(b[q] + k, n);
        for (int r = 0; r < si; r++) {
            cr_v av = v_load_n(a[r] + k, n);
            for (int q = 0; q < CR_SJ; q++) acc[r][q] = v_fma(av, bv[q], acc[r][q]);
        }
    }
    for (int r = 0; r < si; r++)
        for (int q = 0; q < nb; q++)
            cr_small_put(C + (size_t)r * ldc + q, v_sum(acc[r][q]), alpha, beta);
}

/* transB = 1, transA = 0: the B rows j0..j1 against every row of A. */
static void cr_small_dot(int M, int j0, int j1, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc) {
    for (int j = j0; j < j1; j += CR_SJ) {
        int nb = j1 - j < CR_SJ ? j1 - j : CR_SJ;
        const float *b[CR_SJ];
        for (int q = 0; q < CR_SJ; q++) b[q] = B + (size_t)(j + (q < nb ? q : nb - 1)) * ldb;
        for (int i = 0; i < M;) {
            const float *a[CR_SI];
            int mb = M - i < CR_SI ? M - i : CR_SI;
            for (int r = 0; r < mb; r++) a[r] = A + (size_t)(i + r) * lda;
            float *c = C + (size_t)i * ldc + j;
            if (mb == CR_SI) cr_dot_block(CR_SI, nb, a, b, K, alpha, beta, c, ldc);
#if CR_SI > 2
            else if (mb >= 2) {
                cr_dot_block(2, nb, a, b, K, alpha, beta, c, ldc);
                mb = 2;
            }
#endif
            else {
                cr_dot_block(1, nb, a, b, K, alpha, beta, c, ldc);
                mb = 1;
            }
            i += mb;
        }
    }
}

/* One block of the axpy loop: si rows of C (a constant after inlining),
 * CR_SV vectors wide, whole K loop in registers. nv[v] is how many lanes
 * of vector v are inside the matrix (0..VW). */
static inline __attribute__((always_inline)) void
cr_axpy_block(int si, int transA, int i, const int *nv, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cr_v acc[CR_SI][CR_SV];
    for (int r = 0; r < si; r++)
        for (int v = 0; v < CR_SV; v++) acc[r][v] = v_zero();
    for (int k = 0; k < K; k++) {
        const float *bk = B + (size_t)k * ldb;
        cr_v bv[CR_SV];
        for (int v = 0; v < CR_SV; v++)
            bv[v] = nv[v] == CR_VW ? v_load(bk + v * CR_VW) : v_load_n(bk + v * CR_VW, nv[v]);
        for (int r = 0; r < si; r++) {
            float a = transA ? A[(size_t)k * lda + i + r] : A[(size_t)(i + r) * lda + k];
            cr_v av = v_set1(a);
            for (int v = 0; v < CR_SV; v++) acc[r][v] = v_fma(av, bv[v], acc[r][v]);
        }
    }
    /* C = alpha*acc + beta*C lane by lane through a small buffer, so the
     * edge and the interior round alike. */
    for (int r = 0; r < si; r++)
        for (int v = 0; v < CR_SV; v++) {
            if (nv[v] == 0) continue;
            float lanes[CR_VW];
            v_store_n(lanes, acc[r][v], nv[v]);
            float *c = C + (size_t)(i + r) * ldc + v * CR_VW;
            for (int l = 0; l < nv[v]; l++) cr_small_put(c + l, lanes[l], alpha, beta);
        }
}

/* transB = 0: columns j0..j1 of C, CR_SV vectors at a time; op(A) is read
 * one element per row and k (either transpose). */
static void cr_small_axpy(int transA, int M, int j0, int j1, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc) {
    for (int j = j0; j < j1; j += CR_SV * CR_VW) {
        int nv[CR_SV];
        for (int v = 0; v < CR_SV; v++) {
            int n = j1 - (j + v * CR_VW);
            nv[v] = n < 0 ? 0 : n > CR_VW ? CR_VW : n;
        }
        for (int i = 0; i < M;) {
            int mb = M - i < CR_SI ? M - i : CR_SI;
            if (mb == CR_SI)
                cr_axpy_block(CR_SI, transA, i, nv, K, alpha, A, lda, B + j, ldb, beta, C + j, ldc);
#if CR_SI > 2
            else if (mb >= 2) {
                cr_axpy_block(2, transA, i, nv, K, alpha, A, lda, B + j, ldb, beta, C + j, ldc);
                mb = 2;
            }
#endif
            else {
                cr_axpy_block(1, transA, i, nv, K, alpha, A, lda, B + j, ldb, beta, C + j, ldc);
                mb = 1;
            }
            i += mb;
        }
    }
}

void CR_ISA(cr_sgemm_small)(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    CR_ASSERT(M >= 0 && N >= 0 && K >= 0 && ldc >= N);
    CR_ASSERT(lda >= (transA ? M : K) && ldb >= (transB ? K : N));
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = C + (size_t)i * ldc + j;
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    if (transA && transB) {
        /* Neither operand is contiguous along K or N: a rare shape, so a
         * plain loop (each element one dot product, fixed order). */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = 0.0f;
                for (int k = 0; k < K; k++) s += A[(size_t)k * lda + i] * B[(size_t)j * ldb + k];
                cr_small_put(C + (size_t)i * ldc + j, s, alpha, beta);
            }
        return;
    }
    /* Threads take disjoint column blocks of C; each element's arithmetic
     * is the same whoever computes it. Small calls stay out of OpenMP
     * altogether: even a one-thread parallel region costs a few hundred
     * nanoseconds, as much as an 8x8x8 product. */
    int step = transB ? CR_SJ * 16 : CR_SV * CR_VW * 4;
    int nblk = (N + step - 1) / step;
    if (nblk == 1 || (double)M * N * K < (1 << 20) || cr_get_threads() == 1) {
        if (transB) cr_small_dot(M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        else cr_small_axpy(transA, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    CR_PARALLEL_FOR(1)
    for (int t = 0; t < nblk; t++) {
        int j0 = t * step, j1 = j0 + step < N ? j0 + step : N;
        if (transB) cr_small_dot(M, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
        else cr_small_axpy(transA, M, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}
