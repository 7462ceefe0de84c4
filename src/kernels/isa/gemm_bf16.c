/*
 * gemm_bf16.c - the training product in bfloat16 (mixed precision):
 * C = alpha * op(A) @ op(B) + beta * C with fp32 operands and result, the
 * operands rounded to bf16 (nearest even) as they are packed, and products
 * summed in fp32 by AVX512_BF16's VDPBF16PS, which multiplies two k at once:
 * on Zen 4 it retires one 512-bit instruction per cycle like the fp32 FMA,
 * so twice the multiply-adds (bench/kernels.c: 234 against 116 GFLOP/s on
 * one core). Master weights, optimizer state, activations and every sum
 * stay fp32; only what enters a product loses mantissa bits (8 of 24).
 *
 * The structure is gemm_portable.c's: the output cut into independent
 * tasks, each packing its slices of A and B per K block and running a
 * register-tiled micro-kernel. Packed operands hold *pairs*: a uint32 whose
 * low half is bf16(x[k]) and high half bf16(x[k+1]) for an even k, which is
 * the operand order VDPBF16PS reads. An odd K ends in a pair whose high
 * half is zero on both sides.
 *   packed A: per MR-row sliver, kp groups of MR pairs (pair p of row i);
 *   packed B: per NR-column sliver, kp rows of NR pairs (pair p of col j).
 * Results do not depend on the thread count (the split never cuts K), but
 * they do on K blocking and so differ in the last bits from the fp32 paths.
 *
 * On a level without AVX512_BF16 (scalar, avx2, avx512) the entry point
 * is that level's fp32 product, and its table's bf16_native is 0.
 *
 * Legend: op(A) (M, K), op(B) (K, N), C (M, N), row-major; kp = ceil(kc/2).
 */
#include "level.h"
#include "gemm_internal.h"
#include "simd_tr.h"

#include <stdint.h>
#include <string.h>

#if CR_ISA_BF16_NATIVE
#include <immintrin.h>

#define CR_BF_MR 12
#define CR_BF_NR 32
/* k values per K block (256 pairs): a B sliver of 256 x 32 pairs is 32 KB,
 * the size of the fp32 kernel's. */
#define CR_BF_KC 512
#define CR_BF_KP (CR_BF_KC / 2)
#define CR_BF_MC_MAX (43 * CR_BF_MR)
#define CR_BF_NC_MAX 256
/* The transposing packers write whole groups of 16 pairs; the slack lets
 * the last sliver's group run past its end. */
#define CR_BF_SLACK (16 * CR_BF_NR)
#define CR_BF_PAR_MIN_WORK (1 << 20)

/* 32 consecutive floats x[0..n) (n <= 32, zero past it) as 16 pairs. */
static inline __m512i cr_bf_row_pairs(const float *x, int n) {
    __m512 lo = _mm512_maskz_loadu_ps(cr_lanes(n), x);
    __m512 hi = _mm512_maskz_loadu_ps(cr_lanes(n - 16), x + 16);
    /* words 0..15 from the second operand, 16..31 from the first */
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* Lane i = (bf16(r0[i]), bf16(r1[i])) for the lanes in m; r1 NULL = zeros. */
static inline __m512i cr_bf_two_rows(const float *r0, const float *r1, __mmask16 m) {
    static const uint16_t inter[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                       21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                       11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512 a = _mm512_maskz_loadu_ps(m, r0);
    __m512 b = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
    __m512i w = (__m512i)_mm512_cvtne2ps_pbh(b, a);
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(inter), w);
}

/* Rows or columns whose k run is contiguous in memory (A not transposed,
 * B transposed): for each group of 32 k, convert each of the n <= 16
 * lines to 16 pairs, then transpose the 16 x 16 pairs so pair p of line i
 * lands at dst[p * dld + i]. */
static void cr_bf_pack_lines(uint32_t *dst, int dld, __mmask16 smask, const float *src,
                             size_t ld, int n, int kc) {
    _Alignas(64) uint32_t tmp[16 * 16];
    for (int k = 0; k < kc; k += 32) {
        int w = kc - k < 32 ? kc - k : 32;
        for (int i = 0; i < 16; i++)
            _mm512_store_si512(tmp + 16 * i, i < n ? cr_bf_row_pairs(src + (size_t)i * ld + k, w)
                                                   : _mm512_setzero_si512());
        cr_tr16((float *)(dst + (size_t)(k / 2) * dld), (size_t)dld, smask, 0xFFFF,
                (const float *)tmp, 16, 16);
    }
}

/* Packed A for rows [i0, i0+mc): slivers of MR rows, each kp groups of MR
 * pairs. Transposed A is read row pair by row pair across all slivers, so
 * memory is walked in order (a sliver at a time would fetch every cache
 * line of the block once per sliver it touches). */
static void cr_bf_pack_a(uint32_t *dst, int transA, const float *A, int lda, int i0, int mc,
                         int p0, int kc) {
    int kp = (kc + 1) / 2;
    if (!transA) {
        for (int r = 0; r < mc; r += CR_BF_MR) {
            int mr = mc - r < CR_BF_MR ? mc - r : CR_BF_MR;
            cr_bf_pack_lines(dst + (size_t)r * kp, CR_BF_MR, cr_lanes(CR_BF_MR),
                             A + (size_t)(i0 + r) * lda + p0, (size_t)lda, mr, kc);
        }
        return;
    }
    /* op(A)[i][k] = A[k][i]: rows k and k+1 of memory interleave */
    for (int p = 0; p < kp; p++) {
        const float *r0 = A + (size_t)(p0 + 2 * p) * lda + i0;
        const float *r1 = 2 * p + 1 < kc ? r0 + lda : NULL;
        for (int r = 0; r < mc; r += CR_BF_MR) {
            int mr = mc - r < CR_BF_MR ? mc - r : CR_BF_MR;
            _mm512_mask_storeu_epi32(dst + (size_t)r * kp + (size_t)p * CR_BF_MR,
                                     cr_lanes(CR_BF_MR),
                                     cr_bf_two_rows(r0 + r, r1 ? r1 + r : NULL, cr_lanes(mr)));
        }
    }
}

/* Packed B for columns [j0, j0+nc): slivers of NR columns, each kp rows of
 * NR pairs (sliver s at s * kp * NR); untransposed B row pair by row pair
 * across the slivers, for the same reason as A. */
static void cr_bf_pack_b(uint32_t *dst, int transB, const float *B, int ldb, int p0, int kc,
                         int j0, int nc) {
    int kp = (kc + 1) / 2;
    if (transB) { /* op(B)[k][j] = B[j][k]: column j's k run is row j of memory */
        for (int j = 0; j < nc; j += CR_BF_NR) {
            int nr = nc - j < CR_BF_NR ? nc - j : CR_BF_NR;
            uint32_t *d = dst + (size_t)j * kp;
            const float *s = B + (size_t)(j0 + j) * ldb + p0;
            cr_bf_pack_lines(d, CR_BF_NR, 0xFFFF, s, (size_t)ldb, nr < 16 ? nr : 16, kc);
            cr_bf_pack_lines(d + 16, CR_BF_NR, 0xFFFF, s + (size_t)16 * ldb, (size_t)ldb,
                             nr - 16, kc);
        }
        return;
    }
    for (int p = 0; p < kp; p++) {
        const float *r0 = B + (size_t)(p0 + 2 * p) * ldb + j0;
        const float *r1 = 2 * p + 1 < kc ? r0 + ldb : NULL;
        for (int j = 0; j < nc; j += CR_BF_NR) {
            int nr = nc - j < CR_BF_NR ? nc - j : CR_BF_NR;
            uint32_t *d = dst + (size_t)j * kp + (size_t)p * CR_BF_NR;
            _mm512_storeu_si512(d, cr_bf_two_rows(r0 + j, r1 ? r1 + j : NULL, cr_lanes(nr)));
            _mm512_storeu_si512(d + 16, cr_bf_two_rows(r0 + j + 16, r1 ? r1 + j + 16 : NULL,
                                                       cr_lanes(nr - 16)));
        }
    }
}

/* MR x NR tile over kp pairs: C = alpha * acc + beta * C (beta 0 overwrites). */
__attribute__((aligned(64)))
static void cr_bf_ukernel(int kp, const uint32_t *restrict a, const uint32_t *restrict b,
                          float *C, int ldc, float alpha, float beta) {
    __m512 c0[CR_BF_MR], c1[CR_BF_MR];
#pragma GCC unroll 12
    for (int i = 0; i < CR_BF_MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b + (size_t)p * CR_BF_NR);
        __m512bh b1 = (__m512bh)_mm512_load_si512(b + (size_t)p * CR_BF_NR + 16);
        const uint32_t *ap = a + (size_t)p * CR_BF_MR;
#pragma GCC unroll 12
        for (int i = 0; i < CR_BF_MR; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)ap[i]);
            c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
            c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
        }
    }
    cr_gemm_store_tile12x32(C, ldc, c0, c1, alpha, beta);
}

static void cr_bf_tile(int kp, const uint32_t *a, const uint32_t *b, float *C, int ldc, int mr,
                       int nr, float alpha, float beta) {
    if (mr == CR_BF_MR && nr == CR_BF_NR) {
        cr_bf_ukernel(kp, a, b, C, ldc, alpha, beta);
        return;
    }
    _Alignas(64) float tile[CR_BF_MR * CR_BF_NR];
    cr_bf_ukernel(kp, a, b, tile, CR_BF_NR, 1.0f, 0.0f);
    cr_gemm_store_edge(C, ldc, mr, nr, tile, CR_BF_NR, alpha, beta);
}

static void cr_bf_task(const cr_gemm_args *g, int ic, int jc, int mc, int nc) {
    _Alignas(64) uint32_t apack[CR_BF_MC_MAX * CR_BF_KP + CR_BF_SLACK];
    _Alignas(64) uint32_t bpack[CR_BF_KP * CR_BF_NC_MAX + CR_BF_SLACK];
    int nsl = (nc + CR_BF_NR - 1) / CR_BF_NR;
    for (int pc = 0; pc < g->K; pc += CR_BF_KC) {
        int kc = g->K - pc < CR_BF_KC ? g->K - pc : CR_BF_KC, kp = (kc + 1) / 2;
        float cbeta = pc == 0 ? g->beta : 1.0f;
        cr_bf_pack_a(apack, g->transA, g->A, g->lda, ic, mc, pc, kc);
        cr_bf_pack_b(bpack, g->transB, g->B, g->ldb, pc, kc, jc, nc);
        for (int s = 0; s < nsl; s++) {
            int j0 = s * CR_BF_NR, nr = nc - j0 < CR_BF_NR ? nc - j0 : CR_BF_NR;
            const uint32_t *bs = bpack + (size_t)s * kp * CR_BF_NR;
            for (int r = 0; r < mc; r += CR_BF_MR) {
                int mr = mc - r < CR_BF_MR ? mc - r : CR_BF_MR;
                cr_bf_tile(kp, apack + (size_t)r * kp, bs,
                           g->C + (size_t)(ic + r) * g->ldc + jc + j0, g->ldc, mr, nr, g->alpha,
                           cbeta);
            }
        }
    }
}

void CR_ISA(cr_sgemm_bf16)(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    CR_ASSERT(M >= 0 && N >= 0 && K >= 0 && ldc >= N);
    CR_ASSERT(lda >= (transA ? M : K) && ldb >= (transB ? K : N));
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) { /* nothing to multiply: the fp32 path's C = beta C */
        CR_ISA(cr_sgemm_portable)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int nt = cr_get_threads();
    int par = nt > 1 && (double)M * N * K >= CR_BF_PAR_MIN_WORK;
    cr_gemm_plan p =
        cr_gemm_plan_make(M, N, par ? nt : 1, CR_BF_MR, CR_BF_NR, CR_BF_MC_MAX, CR_BF_NC_MAX);
    cr_gemm_args g = {transA, transB, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc};
    cr_gemm_run(&g, &p, par, cr_bf_task);
}

#else /* no AVX512_BF16 on this level: the fp32 product */

void CR_ISA(cr_sgemm_bf16)(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    CR_ISA(cr_sgemm_portable)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#endif
