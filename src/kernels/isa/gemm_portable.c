/*
 * gemm_portable.c - the fast portable GEMM: blocked and packed (the BLIS
 * loop structure) around one register-tiled micro-kernel, written with
 * AVX-512, AVX2/FMA or NEON intrinsics for the level being compiled and in
 * plain C for the scalar one. It must never depend on BLAS, allocate, or
 * split the K loop between threads (that would make results depend on the
 * thread count).
 *
 * Legend: op(A) is (M, K), op(B) is (K, N), C is (M, N), all row-major.
 */
#include "level.h"

#include <math.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif
#include "gemm_internal.h"
#include "simd_tr.h"

/* Register tile MR x NR: MR rows of op(A) times NR columns of op(B) kept in
 * accumulators for a whole KC-long dot product.
 *   AVX-512: 12 x 32 = 24 zmm accumulators + 2 for B + 1 broadcast (of 32).
 *   AVX2:     6 x 16 = 12 ymm accumulators + 2 for B + 1 broadcast (of 16).
 *   NEON:     8 x 12 = 24 q accumulators + 3 for B + 2 holding A's 8 values,
 *             each multiplied by lane (fmla by element) (of 32).
 *   plain C:  4 x 16, left to the auto-vectoriser. */
#if defined(__AVX512F__)
#define CR_MR 12
#define CR_NR 32
#elif defined(__AVX2__) && defined(__FMA__)
#define CR_MR 6
#define CR_NR 16
#elif CR_NEON
#define CR_MR 8
#define CR_NR 12
#define CR_NC_MAX 252 /* a multiple of NR */
#else
#define CR_MR 4
#define CR_NR 16
#endif

/* Cache blocking. A KC x NR sliver of packed B (32 KB with AVX-512) stays
 * in L1 while the MC/MR slivers of A stream past it from L2, where the
 * MC x KC block of A (<= 147 KB) and the KC x NC block of B (<= 256 KB)
 * live. NC 256 measured 10% faster than 128 on the MLP shapes; larger KC
 * or NC did not pay for the stack (KC is CR_GEMM_KC, kernels.h, because the
 * packed linear must cut K the same way). Both buffers are on each thread's stack
 * (the kernel layer never allocates): about 400 KB, well inside default
 * thread stacks (documented in kernels.h). The #ifndefs let the lab try
 * other sizes with -D. */
#define CR_KC CR_GEMM_KC
#ifndef CR_NC_MAX
#define CR_NC_MAX 256
#endif
#ifndef CR_MC_MAX
#define CR_MC_MAX (12 * CR_MR)
#endif

/* Below this many multiply-adds one thread is faster than forking two. */
#define CR_GEMM_PAR_MIN_WORK (1 << 20)

/* ---- packing ----------------------------------------------------------------
 * Packed A: for each MR-row sliver, kc groups of MR values (column k of the
 * sliver). Packed B: for each NR-column sliver, kc rows of NR values. Rows
 * or columns past the matrix edge are zero, so the micro-kernel always
 * runs full tiles and only the store looks at the edge.
 *
 * Packing only moves values, so how it moves them changes no result. Two
 * of the four cases are transposes (A not transposed: rows of A become
 * columns of the sliver; B transposed, the nn.Linear weight: the same),
 * and as scalar gathers they cost a fifth of a training step of the
 * reference ranker; with AVX-512 they go 16 x 16 through registers. The
 * other two copy short runs, which as loops became a memmove call per run
 * (another 7%); with AVX-512 they are masked loads and stores. */

static void cr_pack_a(float *restrict dst, int transA, const float *A, int lda, int i0, int mc,
                      int p0, int kc) {
    for (int r = 0; r < mc; r += CR_MR) {
        int mr = mc - r < CR_MR ? mc - r : CR_MR;
        int k = 0;
#if defined(__AVX512F__)
        if (transA) { /* op(A)[i][k] = A[k][i]: the MR values are contiguous */
            __mmask16 m = cr_lanes(mr);
            for (; k < kc; k++)
                _mm512_mask_storeu_ps(dst + (size_t)k * CR_MR, cr_lanes(CR_MR),
                                      _mm512_maskz_loadu_ps(m, A + (size_t)(p0 + k) * lda + i0 + r));
        } else {
            for (; k + 16 <= kc; k += 16)
                cr_tr16(dst + (size_t)k * CR_MR, CR_MR, cr_lanes(CR_MR), 0xFFFF,
                        A + (size_t)(i0 + r) * lda + p0 + k, (size_t)lda, mr);
        }
#endif
        for (; k < kc; k++) {
            float *d = dst + (size_t)k * CR_MR;
            if (transA) {
                const float *s = A + (size_t)(p0 + k) * lda + i0 + r;
                for (int i = 0; i < mr; i++) d[i] = s[i];
            } else {
                const float *s = A + (size_t)(i0 + r) * lda + p0 + k;
                for (int i = 0; i < mr; i++) d[i] = s[(size_t)i * lda];
            }
            for (int i = mr; i < CR_MR; i++) d[i] = 0.0f;
        }
        dst += (size_t)kc * CR_MR;
    }
}

static void cr_pack_b_sliver(float *restrict dst, int transB, const float *B, int ldb, int p0,
                             int kc, int j0, int nr) {
    int k = 0;
#if defined(__AVX512F__)
    if (transB) { /* op(B)[k][j] = B[j][k]: two 16-row transposes per 16 k */
        for (; k + 16 <= kc; k += 16) {
            const float *s = B + (size_t)j0 * ldb + p0 + k;
            cr_tr16(dst + (size_t)k * CR_NR, CR_NR, 0xFFFF, 0xFFFF, s, (size_t)ldb, nr < 16 ? nr : 16);
            cr_tr16(dst + (size_t)k * CR_NR + 16, CR_NR, 0xFFFF, 0xFFFF, s + (size_t)16 * ldb,
                    (size_t)ldb, nr - 16);
        }
    } else {
        __mmask16 m0 = cr_lanes(nr), m1 = cr_lanes(nr - 16);
        for (; k < kc; k++) {
            const float *s = B + (size_t)(p0 + k) * ldb + j0;
            float *d = dst + (size_t)k * CR_NR;
            _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, s));
            _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + 16));
        }
    }
#endif
    for (; k < kc; k++) {
        float *d = dst + (size_t)k * CR_NR;
        if (transB) {
            const float *s = B + (size_t)j0 * ldb + p0 + k;
            for (int j = 0; j < nr; j++) d[j] = s[(size_t)j * ldb];
        } else {
            const float *s = B + (size_t)(p0 + k) * ldb + j0;
            for (int j = 0; j < nr; j++) d[j] = s[j];
        }
        for (int j = nr; j < CR_NR; j++) d[j] = 0.0f;
    }
}

/* ---- micro-kernels -----------------------------------------------------------
 * acc = sum_k a[k, :]^T b[k, :] over a full MR x NR tile, then
 * C = alpha*acc + beta*C where beta == 0 never reads C (it may hold NaN).
 * Edge tiles go to a scratch tile and through cr_gemm_store_edge, which uses
 * the same fused multiply-add per element, so a value does not depend on
 * where the tile grid falls.
 *
 * The micro-kernel is aligned to a cache line: with the same object code,
 * a link that happened to place it differently ran 20% slower on Zen 4
 * (the loop's position against the op-cache windows). */
#if defined(__AVX512F__)
__attribute__((aligned(64)))
static void cr_ukernel(int kc, const float *restrict a, const float *restrict b, float *C,
                       int ldc, float alpha, float beta) {
    __m512 c0[CR_MR], c1[CR_MR];
#pragma GCC unroll 12
    for (int i = 0; i < CR_MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b + (size_t)k * CR_NR);
        __m512 b1 = _mm512_load_ps(b + (size_t)k * CR_NR + 16);
        const float *ak = a + (size_t)k * CR_MR;
#pragma GCC unroll 12
        for (int i = 0; i < CR_MR; i++) {
            __m512 ai = _mm512_set1_ps(ak[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    cr_gemm_store_tile12x32(C, ldc, c0, c1, alpha, beta);
}
#elif defined(__AVX2__) && defined(__FMA__)
__attribute__((aligned(64)))
static void cr_ukernel(int kc, const float *restrict a, const float *restrict b, float *C,
                       int ldc, float alpha, float beta) {
    __m256 c0[CR_MR], c1[CR_MR];
#pragma GCC unroll 6
    for (int i = 0; i < CR_MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b + (size_t)k * CR_NR);
        __m256 b1 = _mm256_load_ps(b + (size_t)k * CR_NR + 8);
        const float *ak = a + (size_t)k * CR_MR;
#pragma GCC unroll 6
        for (int i = 0; i < CR_MR; i++) {
            __m256 ai = _mm256_broadcast_ss(ak + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < CR_MR; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) {
            _mm256_storeu_ps(c, _mm256_mul_ps(va, c0[i]));
            _mm256_storeu_ps(c + 8, _mm256_mul_ps(va, c1[i]));
        } else {
            _mm256_storeu_ps(c, _mm256_fmadd_ps(va, c0[i], _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
            _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, c1[i],
                                                    _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8))));
        }
    }
}
#elif CR_NEON
__attribute__((aligned(64)))
static void cr_ukernel(int kc, const float *restrict a, const float *restrict b, float *C,
                       int ldc, float alpha, float beta) {
    float32x4_t c0[CR_MR], c1[CR_MR], c2[CR_MR];
#pragma GCC unroll 8
    for (int i = 0; i < CR_MR; i++) c0[i] = c1[i] = c2[i] = vdupq_n_f32(0.0f);
    for (int k = 0; k < kc; k++) {
        const float *bk = b + (size_t)k * CR_NR, *ak = a + (size_t)k * CR_MR;
        float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8);
        float32x4_t a0 = vld1q_f32(ak), a1 = vld1q_f32(ak + 4);
#define CR_NEON_ROW(i, av, l)                       \
    c0[i] = vfmaq_laneq_f32(c0[i], b0, av, l);      \
    c1[i] = vfmaq_laneq_f32(c1[i], b1, av, l);      \
    c2[i] = vfmaq_laneq_f32(c2[i], b2, av, l);
        CR_NEON_ROW(0, a0, 0) CR_NEON_ROW(1, a0, 1) CR_NEON_ROW(2, a0, 2) CR_NEON_ROW(3, a0, 3)
        CR_NEON_ROW(4, a1, 0) CR_NEON_ROW(5, a1, 1) CR_NEON_ROW(6, a1, 2) CR_NEON_ROW(7, a1, 3)
#undef CR_NEON_ROW
    }
    float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
#pragma GCC unroll 8
    for (int i = 0; i < CR_MR; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) {
            vst1q_f32(c, vmulq_f32(va, c0[i]));
            vst1q_f32(c + 4, vmulq_f32(va, c1[i]));
            vst1q_f32(c + 8, vmulq_f32(va, c2[i]));
        } else { /* alpha * acc + (beta * C), one rounding of the sum: as on x86 */
            vst1q_f32(c, vfmaq_f32(vmulq_f32(vb, vld1q_f32(c)), va, c0[i]));
            vst1q_f32(c + 4, vfmaq_f32(vmulq_f32(vb, vld1q_f32(c + 4)), va, c1[i]));
            vst1q_f32(c + 8, vfmaq_f32(vmulq_f32(vb, vld1q_f32(c + 8)), va, c2[i]));
        }
    }
}
#else
__attribute__((aligned(64)))
static void cr_ukernel(int kc, const float *restrict a, const float *restrict b, float *C,
                       int ldc, float alpha, float beta) {
    float acc[CR_MR][CR_NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        const float *ak = a + (size_t)k * CR_MR, *bk = b + (size_t)k * CR_NR;
        for (int i = 0; i < CR_MR; i++)
            for (int j = 0; j < CR_NR; j++) acc[i][j] += ak[i] * bk[j];
    }
    for (int i = 0; i < CR_MR; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < CR_NR; j++)
            c[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[j];
    }
}
#endif

/* The micro-kernel on a tile that may be cut by the matrix edge. */
static void cr_tile(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                    float alpha, float beta) {
    if (mr == CR_MR && nr == CR_NR) {
        cr_ukernel(kc, a, b, C, ldc, alpha, beta);
        return;
    }
    _Alignas(64) float tile[CR_MR * CR_NR];
    cr_ukernel(kc, a, b, tile, CR_NR, 1.0f, 0.0f);
    cr_gemm_store_edge(C, ldc, mr, nr, tile, CR_NR, alpha, beta);
}

/* One task: C[ic : ic+mc, jc : jc+nc] over the whole K range. The first K
 * block applies beta; later ones accumulate onto it. */
static void cr_gemm_task(const cr_gemm_args *g, int ic, int jc, int mc, int nc) {
    _Alignas(64) float apack[CR_MC_MAX * CR_KC];
    _Alignas(64) float bpack[CR_KC * CR_NC_MAX];
    int nsl = (nc + CR_NR - 1) / CR_NR;
    for (int pc = 0; pc < g->K; pc += CR_KC) {
        int kc = g->K - pc < CR_KC ? g->K - pc : CR_KC;
        float cbeta = pc == 0 ? g->beta : 1.0f;
        cr_pack_a(apack, g->transA, g->A, g->lda, ic, mc, pc, kc);
        for (int s = 0; s < nsl; s++) {
            int j0 = s * CR_NR;
            int nr = nc - j0 < CR_NR ? nc - j0 : CR_NR;
            cr_pack_b_sliver(bpack + (size_t)s * kc * CR_NR, g->transB, g->B, g->ldb, pc, kc,
                             jc + j0, nr);
        }
        for (int s = 0; s < nsl; s++) {
            int j0 = s * CR_NR;
            int nr = nc - j0 < CR_NR ? nc - j0 : CR_NR;
            const float *bs = bpack + (size_t)s * kc * CR_NR;
            for (int r = 0; r < mc; r += CR_MR) {
                int mr = mc - r < CR_MR ? mc - r : CR_MR;
                cr_tile(kc, apack + (size_t)r * kc, bs,
                        g->C + (size_t)(ic + r) * g->ldc + jc + j0, g->ldc, mr, nr, g->alpha,
                        cbeta);
            }
        }
    }
}

void CR_ISA(cr_sgemm_portable)(int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc) {
    CR_ASSERT(M >= 0 && N >= 0 && K >= 0 && ldc >= N);
    CR_ASSERT(lda >= (transA ? M : K) && ldb >= (transB ? K : N));
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) { /* C = beta * C; beta 0 overwrites */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = C + (size_t)i * ldc + j;
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    /* Few rows (serving a handful of candidates), or a few output columns
     * of an nn.Linear-shaped product (the 1-wide logit layer, a gate): packing
     * would cost more than multiplying, so read the operands in place.
     * Crossovers measured with bench/kernels.c (docs/kernels.md). */
    if ((M <= 4 && !(transA && transB)) || (N <= 8 && transB && !transA)) {
        CR_ISA(cr_sgemm_small)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    CR_ISA(cr_sgemm_tiled)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The blocked path alone, for every shape. Each element of C is one chain
 * of fused multiply-adds over k = 0..K-1 in blocks of KC, the partial sum
 * stored to C between blocks (alpha * acc + beta * C, then acc + C): the
 * same operations whatever M, N, the tile a row falls in or the thread, so
 * a row of C depends only on its own row of op(A) (cr_sgemm_rows). */
void CR_ISA(cr_sgemm_tiled)(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C,
                    int ldc) {
    CR_ASSERT(M >= 0 && N >= 0 && K >= 0 && ldc >= N);
    CR_ASSERT(lda >= (transA ? M : K) && ldb >= (transB ? K : N));
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        CR_ISA(cr_sgemm_portable)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int nt = cr_get_threads();
    int par = nt > 1 && (double)M * N * K >= CR_GEMM_PAR_MIN_WORK;
    cr_gemm_plan p = cr_gemm_plan_make(M, N, par ? nt : 1, CR_MR, CR_NR, CR_MC_MAX, CR_NC_MAX);
    CR_ASSERT(p.mc <= CR_MC_MAX && p.nc <= CR_NC_MAX);
    cr_gemm_args g = {transA, transB, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc};
    cr_gemm_run(&g, &p, par, cr_gemm_task);
}

