/*
 * linear_packed.c - the inference linear on weights packed once: out =
 * inp @ w^T + b, optionally followed by ReLU, with w laid out in the
 * micro-kernel's order ahead of time (cr_linear_pack) and the input rows
 * read where they are. The blocked GEMM (gemm_portable.c) copies both
 * operands into packed buffers on every call; for a scoring forward of a
 * thousand candidates those copies (strided gathers of w and of the input)
 * took as long as a third of the multiply-adds. Here neither is copied.
 *
 * The sums are those of cr_linear_forward_rows, bit for bit: each output is
 * one fused multiply-add chain over k in blocks of CR_GEMM_KC, the first
 * block added to the bias (or standing alone), each later block added to
 * the running value, exactly as cr_sgemm_tiled does with beta = 1 after the
 * bias seed. So a packed model scores like an unpacked one, and a row
 * depends only on its own input row (whatever B, the other rows or the
 * thread count). The ReLU is max(x, 0) on the final value, like
 * cr_relu_forward. Backward is cr_linear_backward on the unpacked w: this
 * is a faster route to the same forward, not a new layer.
 *
 * Packed layout, for OC output channels of C inputs: ceil(OC / NR) slivers,
 * sliver s holding rows s*NR .. s*NR+NR-1 of w transposed, (C, NR), row k
 * = w[s*NR + j][k] for j = 0..NR-1, zero past OC.
 *
 * Legend: B batch rows, C input channels, OC output channels, NR sliver
 * width, MR rows per register tile.
 */
#include "level.h"
#include "simd_tr.h"

#include <string.h>

#define CR_LP_NR CR_PACK_NR
/* The vector layer of the tiles below: VL float lanes, masks of the first
 * n lanes for the edge columns. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define CR_LP_MR 12
#define CR_LP_MR_SHORT 4 /* a batch of 1000 ends in 4 rows: 12 would waste 8 */
typedef __m512 cr_lpv;
typedef __mmask16 cr_lpm;
#define CR_LP_VL 16
#define CR_LP_NV 2 /* vectors of columns per tile row: 24 of 32 zmm accumulate */
#define lpv_zero _mm512_setzero_ps
#define lpv_load _mm512_load_ps
#define lpv_loadu _mm512_loadu_ps
#define lpv_store _mm512_store_ps
#define lpv_set1 _mm512_set1_ps
#define lpv_fma _mm512_fmadd_ps
#define lpv_add _mm512_add_ps
#define lpv_max _mm512_max_ps
#define lpv_lanes(n) cr_lanes(n)
#define lpv_maskload(p, m) _mm512_maskz_loadu_ps(m, p)
#define lpv_maskstore(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CR_LP_MR 6 /* 16 ymm: 12 accumulators, 2 weight vectors, a broadcast */
#define CR_LP_MR_SHORT 3
typedef __m256 cr_lpv;
typedef __m256i cr_lpm;
#define CR_LP_VL 8
#define CR_LP_NV 2
#define lpv_zero _mm256_setzero_ps
#define lpv_load _mm256_load_ps
#define lpv_loadu _mm256_loadu_ps
#define lpv_store _mm256_store_ps
#define lpv_set1 _mm256_set1_ps
#define lpv_fma _mm256_fmadd_ps
#define lpv_add _mm256_add_ps
#define lpv_max _mm256_max_ps
#define lpv_lanes(n) cr_lanes8(n)
#define lpv_maskload(p, m) _mm256_maskload_ps(p, m)
#define lpv_maskstore(p, m, v) _mm256_maskstore_ps(p, m, v)
#elif CR_NEON
#define CR_LP_MR 6 /* 32 q: 24 accumulators, 4 weight vectors, the broadcasts */
#define CR_LP_MR_SHORT 3
typedef float32x4_t cr_lpv;
typedef int cr_lpm; /* how many leading lanes: NEON has no masked loads */
#define CR_LP_VL 4
#define CR_LP_NV 4 /* a part is 16 columns, half the sliver, like AVX2's */
#define lpv_zero() vdupq_n_f32(0.0f)
#define lpv_load vld1q_f32
#define lpv_loadu vld1q_f32
#define lpv_store vst1q_f32
#define lpv_set1 vdupq_n_f32 /* folded into FMLA by element */
#define lpv_fma(a, b, c) vfmaq_f32(c, a, b)
#define lpv_add vaddq_f32
/* x86's max, a > b ? a : b: a NaN sum becomes 0 under ReLU as there (FMAX
 * would keep the NaN) */
#define lpv_max(a, b) vbslq_f32(vcgtq_f32(a, b), a, b)
#define lpv_lanes(n) ((n) < 0 ? 0 : (n) > 4 ? 4 : (n))
static inline float32x4_t lpv_maskload(const float *p, int n) {
    if (n >= 4) return vld1q_f32(p);
    float t[4] = {0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return vld1q_f32(t);
}
static inline void lpv_maskstore(float *p, int n, float32x4_t v) {
    if (n >= 4) {
        vst1q_f32(p, v);
        return;
    }
    float t[4];
    vst1q_f32(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}
#else
#define CR_LP_MR 4
#endif

/* Rows and columns of one task (a block of the output one thread computes
 * whole): multiples of MR and NR, so the split never changes the tiles. */
#define CR_LP_MC (12 * CR_LP_MR)
#define CR_LP_NC 256
/* Below this many multiply-adds one thread is faster than forking two. */
#define CR_LP_PAR_MIN_WORK (1 << 20)

/* One register tile: rows a[0..MR) (row i at a + i*lda; rows past mr
 * repeat row mr-1 and are not stored), columns j0 .. j0+nr of the output,
 * inputs k0 .. k0+kc. first: the block that starts each sum (bias or
 * nothing before it); last: the block after which ReLU applies. */
#ifdef CR_LP_VL
/* MRC rows (CR_LP_MR, or CR_LP_MR_SHORT for a last short tile) by NV
 * vectors of columns (CR_LP_NV, a part of CR_LP_PW = NV * VL columns): the
 * whole 32-wide sliver with AVX-512, half of it with AVX2 and NEON (w then points
 * at the part; rows of the sliver are still NR apart). nr <= CR_LP_PW. */
#define CR_LP_PW (CR_LP_NV * CR_LP_VL)
static inline __attribute__((always_inline)) void
cr_lp_tile_n(const int MRC, int kc, const float *a, int lda, int mr, const float *restrict w,
             float *out, int ldo, int nr, const float *bias, int first, int relu) {
    const float *ar[CR_LP_MR];
#pragma GCC unroll 12
    for (int i = 0; i < MRC; i++) ar[i] = a + (size_t)(i < mr ? i : mr - 1) * lda;
    cr_lpv c[CR_LP_MR][CR_LP_NV];
#pragma GCC unroll 12
    for (int i = 0; i < MRC; i++)
#pragma GCC unroll 4
        for (int q = 0; q < CR_LP_NV; q++) c[i][q] = lpv_zero();
    for (int k = 0; k < kc; k++) {
        cr_lpv bk[CR_LP_NV];
#pragma GCC unroll 4
        for (int q = 0; q < CR_LP_NV; q++) bk[q] = lpv_loadu(w + (size_t)k * CR_LP_NR + q * CR_LP_VL);
#pragma GCC unroll 12
        for (int i = 0; i < MRC; i++) {
            cr_lpv ai = lpv_set1(ar[i][k]);
#pragma GCC unroll 4
            for (int q = 0; q < CR_LP_NV; q++) c[i][q] = lpv_fma(ai, bk[q], c[i][q]);
        }
    }
    cr_lpm m[CR_LP_NV];
    cr_lpv z = lpv_zero(), bb[CR_LP_NV];
#pragma GCC unroll 4
    for (int q = 0; q < CR_LP_NV; q++) {
        m[q] = lpv_lanes(nr - q * CR_LP_VL);
        bb[q] = first && bias ? lpv_maskload(bias + q * CR_LP_VL, m[q]) : z;
    }
    /* constant bounds, so the accumulators stay in registers (a loop to mr
     * made gcc keep the AVX2 ones in memory and store all twelve every k) */
#pragma GCC unroll 12
    for (int i = 0; i < MRC; i++) {
        if (i >= mr) break;
        float *o = out + (size_t)i * ldo;
#pragma GCC unroll 4
        for (int q = 0; q < CR_LP_NV; q++) {
            cr_lpv v = c[i][q];
            if (!first) v = lpv_add(v, lpv_maskload(o + q * CR_LP_VL, m[q]));
            else if (bias) v = lpv_add(v, bb[q]);
            if (relu) v = lpv_max(v, z);
            lpv_maskstore(o + q * CR_LP_VL, m[q], v);
        }
    }
}

__attribute__((aligned(64)))
static void cr_lp_part(int kc, const float *a, int lda, int mr, const float *restrict w,
                       float *out, int ldo, int nr, const float *bias, int first, int relu) {
    if (mr <= CR_LP_MR_SHORT)
        cr_lp_tile_n(CR_LP_MR_SHORT, kc, a, lda, mr, w, out, ldo, nr, bias, first, relu);
    else
        cr_lp_tile_n(CR_LP_MR, kc, a, lda, mr, w, out, ldo, nr, bias, first, relu);
}

/* The sliver's columns in parts of CR_LP_PW (one part with AVX-512). */
static void cr_lp_tile(int kc, const float *a, int lda, int mr, const float *restrict w,
                       float *out, int ldo, int nr, const float *bias, int first, int relu) {
    for (int j = 0; j < nr; j += CR_LP_PW)
        cr_lp_part(kc, a, lda, mr, w + j, out + j, ldo, nr - j < CR_LP_PW ? nr - j : CR_LP_PW,
                   bias ? bias + j : NULL, first, relu);
}
#else
/* Plain C (the scalar level), with the same operations as its blocked
 * GEMM: fused multiply-adds when the target has them, a rounded product
 * then a sum otherwise. */
static void cr_lp_tile(int kc, const float *a, int lda, int mr, const float *restrict w,
                       float *out, int ldo, int nr, const float *bias, int first, int relu) {
    float acc[CR_LP_MR][CR_LP_NR];
    memset(acc, 0, sizeof acc);
    for (int i = 0; i < mr; i++) {
        const float *ai = a + (size_t)i * lda;
        for (int k = 0; k < kc; k++) {
            const float *wk = w + (size_t)k * CR_LP_NR;
            for (int j = 0; j < CR_LP_NR; j++)
#if defined(__FMA__)
                acc[i][j] = __builtin_fmaf(ai[k], wk[j], acc[i][j]);
#else
                acc[i][j] += ai[k] * wk[j];
#endif
        }
    }
    for (int i = 0; i < mr; i++) {
        float *o = out + (size_t)i * ldo;
        for (int j = 0; j < nr; j++) {
            float v = acc[i][j];
            if (!first) v = v + o[j];
            else if (bias) v = v + bias[j];
            o[j] = relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
}
#endif

#ifdef CR_LP_VL
/* ---- narrow layers: a lane per row ------------------------------------------
 * A layer of at most CR_LP_NARROW outputs (a gate over a few experts, a
 * 1-wide head) fills 1 to 8 of the tile's 32 lanes, so the tile above wastes
 * most of its multiply-adds (a 4-wide gate over 429 inputs ran at 13
 * GFLOP/s). Here a lane is a row instead: VL input rows (16 with AVX-512, 8
 * with AVX2, 4 with NEON) are transposed into (k, VL) order, 64 inputs at a time, and
 * output j of those rows is one vector whose chain over k multiplies by
 * w[j][k] broadcast. Each output is still one fused multiply-add chain over
 * k per K block with the same epilogue, so the bits are those of the tile
 * (and of the rows path). G groups of VL rows share each broadcast. */
#if defined(__AVX512F__)
#define CR_LP_TR(dst, kn, src, ld, nrows) \
    cr_tr16(dst, 16, 0xFFFF, cr_lanes(kn), src, ld, nrows)
#elif CR_NEON
#define CR_LP_TR(dst, kn, src, ld, nrows) cr_tr4(dst, 4, kn, src, ld, nrows)
#else
#define CR_LP_TR(dst, kn, src, ld, nrows) cr_tr8(dst, 8, kn, src, ld, nrows)
/* 16 ymm registers: G*J accumulators + J broadcasts + the input vector
 * (one spill at J = 8); wider layers take the 6 x 16 half tiles. */
#define CR_LP_NARROW 8
#define CR_LP_WIDTHS(X) \
    X(1, 8) X(2, 6) X(3, 4) X(4, 2) X(5, 2) X(6, 1) X(7, 1) X(8, 1)
#endif
#if defined(__AVX512F__) || CR_NEON
/* 32 registers (zmm, or NEON q with the broadcasts read from the w row by
 * element): every width J with its row groups G, as many as fit 24
 * accumulators, at most 8 (the transposed inputs stay in L1). One instance
 * per width, and the table the dispatch reads, from this one list. */
#define CR_LP_NARROW 16
#define CR_LP_WIDTHS(X)                                                                     \
    X(1, 8) X(2, 8) X(3, 8) X(4, 6) X(5, 4) X(6, 4) X(7, 3) X(8, 3) X(9, 2) X(10, 2)      \
    X(11, 2) X(12, 2) X(13, 1) X(14, 1) X(15, 1) X(16, 1)
#endif
#define CR_LP_KB 64

/* Rows [0, mr) of the task (mr <= VL G; rows past mr are computed on zeros
 * and not stored), outputs [0, J), inputs k0 .. k0+kc of the K block. */
static inline __attribute__((always_inline)) void
cr_lp_lanes(const int G, const int J, int kc, const float *a, int lda, int mr,
            const float *restrict w, float *out, int ldo, const float *bias, int first,
            int relu) {
    float xt[8 * CR_LP_KB * CR_LP_VL] __attribute__((aligned(64)));
    cr_lpv acc[8][CR_LP_NARROW];
#pragma GCC unroll 16
    for (int g = 0; g < G; g++)
#pragma GCC unroll 16
        for (int j = 0; j < J; j++) acc[g][j] = lpv_zero();
    for (int k0 = 0; k0 < kc; k0 += CR_LP_KB) {
        int kb = kc - k0 < CR_LP_KB ? kc - k0 : CR_LP_KB;
        for (int g = 0; g < G; g++)
            for (int kk = 0; kk < kb; kk += CR_LP_VL)
                CR_LP_TR(xt + ((size_t)g * CR_LP_KB + kk) * CR_LP_VL, kb - kk,
                         a + (size_t)g * CR_LP_VL * lda + k0 + kk, (size_t)lda,
                         mr - g * CR_LP_VL);
        const float *wk = w + (size_t)k0 * CR_LP_NR;
        for (int k = 0; k < kb; k++, wk += CR_LP_NR) {
            cr_lpv wj[CR_LP_NARROW];
#pragma GCC unroll 16
            for (int j = 0; j < J; j++) wj[j] = lpv_set1(wk[j]);
#pragma GCC unroll 16
            for (int g = 0; g < G; g++) {
                cr_lpv xv = lpv_load(xt + ((size_t)g * CR_LP_KB + k) * CR_LP_VL);
#pragma GCC unroll 16
                for (int j = 0; j < J; j++) acc[g][j] = lpv_fma(xv, wj[j], acc[g][j]);
            }
        }
    }
    cr_lpv z = lpv_zero();
    /* lanes past n hold zeros or stale values and are never stored */
    float v[CR_LP_VL] __attribute__((aligned(64))) = {0};
#pragma GCC unroll 16
    for (int g = 0; g < G; g++) {
        if (g * CR_LP_VL >= mr) break;
        int n = mr - g * CR_LP_VL < CR_LP_VL ? mr - g * CR_LP_VL : CR_LP_VL;
        float *o = out + (size_t)g * CR_LP_VL * ldo;
#pragma GCC unroll 16
        for (int j = 0; j < J; j++) {
            cr_lpv x = acc[g][j];
            if (!first) {
                for (int i = 0; i < n; i++) v[i] = o[(size_t)i * ldo + j];
                x = lpv_add(x, lpv_load(v));
            } else if (bias) {
                x = lpv_add(x, lpv_set1(bias[j]));
            }
            if (relu) x = lpv_max(x, z);
            lpv_store(v, x);
            for (int i = 0; i < n; i++) o[(size_t)i * ldo + j] = v[i];
        }
    }
}

#define CR_LP_LANES_FN(J, G)                                                                \
    static void cr_lp_lanes_##J(int kc, const float *a, int lda, int mr, const float *w,   \
                                float *out, int ldo, const float *bias, int first, int relu) { \
        cr_lp_lanes(G, J, kc, a, lda, mr, w, out, ldo, bias, first, relu);                 \
    }
CR_LP_WIDTHS(CR_LP_LANES_FN)

typedef void (*cr_lp_lanes_fn)(int kc, const float *a, int lda, int mr, const float *w,
                               float *out, int ldo, const float *bias, int first, int relu);
/* Entry J: the instance for J outputs and the rows one call covers. */
#define CR_LP_LANES_ENTRY(J, G) [J] = {cr_lp_lanes_##J, CR_LP_VL * (G)},
static const struct { cr_lp_lanes_fn fn; int rows; } cr_lp_lanes_tab[CR_LP_NARROW + 1] = {
    CR_LP_WIDTHS(CR_LP_LANES_ENTRY)};

/* Rows [i0, i0+mr) of a narrow layer, every K block. */
static void cr_lp_narrow_task(float *out, const float *inp, const float *wp, const float *b,
                              int C, int OC, int ldi, int ldo, int relu, int i0, int mr) {
    cr_lp_lanes_fn fn = cr_lp_lanes_tab[OC].fn;
    for (int pc = 0; pc < C; pc += CR_GEMM_KC) {
        int kc = C - pc < CR_GEMM_KC ? C - pc : CR_GEMM_KC;
        fn(kc, inp + (size_t)i0 * ldi + pc, ldi, mr, wp + (size_t)pc * CR_LP_NR,
           out + (size_t)i0 * ldo, ldo, b, pc == 0, relu && pc + kc == C);
    }
}
#endif

/* Output block [i0, i0+mc) x [j0, j0+nc): for each tile of MR rows, each
 * sliver, each K block. The tile's MR input rows stay in L1 across the
 * block's slivers; its partial sums go out to `out` between K blocks. */
static void cr_lp_task(float *out, const float *inp, const float *wp, const float *b, int C,
                       int ldi, int ldo, int relu, int i0, int mc, int j0, int nc) {
    for (int r = 0; r < mc; r += CR_LP_MR) {
        int mr = mc - r < CR_LP_MR ? mc - r : CR_LP_MR;
        const float *a = inp + (size_t)(i0 + r) * ldi;
        float *o = out + (size_t)(i0 + r) * ldo;
        for (int j = j0; j < j0 + nc; j += CR_LP_NR) {
            int nr = j0 + nc - j < CR_LP_NR ? j0 + nc - j : CR_LP_NR;
            const float *ws = wp + (size_t)(j / CR_LP_NR) * C * CR_LP_NR;
            for (int pc = 0; pc < C; pc += CR_GEMM_KC) {
                int kc = C - pc < CR_GEMM_KC ? C - pc : CR_GEMM_KC;
                cr_lp_tile(kc, a + pc, ldi, mr, ws + (size_t)pc * CR_LP_NR, o + j, ldo, nr,
                           b ? b + j : NULL, pc == 0, relu && pc + kc == C);
            }
        }
    }
}

void CR_ISA(cr_linear_forward_packed)(float *out, const float *inp, const float *wp, const float *b,
                              int B, int C, int OC, int ldi, int ldo, int relu) {
    CR_ASSERT(out && inp && wp && B >= 0 && C >= 0 && OC >= 0);
    CR_ASSERT(ldi >= C && ldo >= OC);
    if (B == 0 || OC == 0) return;
    if (C == 0) { /* no products: the bias, or zeros */
        for (int i = 0; i < B; i++)
            for (int j = 0; j < OC; j++) {
                float v = b ? b[j] : 0.0f;
                out[(size_t)i * ldo + j] = relu && !(v > 0.0f) ? 0.0f : v;
            }
        return;
    }
#ifdef CR_LP_NARROW
    if (OC <= CR_LP_NARROW) {
        int rows = cr_lp_lanes_tab[OC].rows, nt = (B + rows - 1) / rows;
        int par = cr_get_threads() > 1 && nt > 1 && (double)B * OC * C >= CR_LP_PAR_MIN_WORK;
        (void)par;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (par)
#endif
        for (int t = 0; t < nt; t++) {
            int i0 = t * rows;
            cr_lp_narrow_task(out, inp, wp, b, C, OC, ldi, ldo, relu, i0,
                              B - i0 < rows ? B - i0 : rows);
        }
        return;
    }
#endif
    int nib = (B + CR_LP_MC - 1) / CR_LP_MC, njb = (OC + CR_LP_NC - 1) / CR_LP_NC;
    int ntask = nib * njb;
    int nt = cr_get_threads();
    int par = nt > 1 && ntask > 1 && (double)B * OC * C >= CR_LP_PAR_MIN_WORK;
    if (!par) {
        for (int t = 0; t < ntask; t++) {
            int i0 = (t / njb) * CR_LP_MC, j0 = (t % njb) * CR_LP_NC;
            cr_lp_task(out, inp, wp, b, C, ldi, ldo, relu, i0,
                       B - i0 < CR_LP_MC ? B - i0 : CR_LP_MC, j0,
                       OC - j0 < CR_LP_NC ? OC - j0 : CR_LP_NC);
        }
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int t = 0; t < ntask; t++) {
        int i0 = (t / njb) * CR_LP_MC, j0 = (t % njb) * CR_LP_NC;
        cr_lp_task(out, inp, wp, b, C, ldi, ldo, relu, i0,
                   B - i0 < CR_LP_MC ? B - i0 : CR_LP_MC, j0,
                   OC - j0 < CR_LP_NC ? OC - j0 : CR_LP_NC);
    }
}
