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
#if defined(__AVX512F__)
#include <immintrin.h>
#define CR_LP_MR 12
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CR_LP_MR 6
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
#if defined(__AVX512F__)
/* MRC rows of registers: CR_LP_MR, or 4 for a last tile of at most 4 rows
 * (a batch of 1000 ends in 4: twelve would be 8 rows of wasted work). */
static inline __attribute__((always_inline)) void
cr_lp_tile_n(const int MRC, int kc, const float *a, int lda, int mr, const float *restrict w,
             float *out, int ldo, int nr, const float *bias, int first, int relu) {
    const float *ar[CR_LP_MR];
#pragma GCC unroll 12
    for (int i = 0; i < MRC; i++) ar[i] = a + (size_t)(i < mr ? i : mr - 1) * lda;
    __m512 c0[CR_LP_MR], c1[CR_LP_MR];
#pragma GCC unroll 12
    for (int i = 0; i < MRC; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(w + (size_t)k * CR_LP_NR);
        __m512 b1 = _mm512_loadu_ps(w + (size_t)k * CR_LP_NR + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MRC; i++) {
            __m512 ai = _mm512_set1_ps(ar[i][k]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1u);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1u);
    __m512 z = _mm512_setzero_ps();
    __m512 bb0 = z, bb1 = z;
    if (first && bias) {
        bb0 = _mm512_maskz_loadu_ps(m0, bias);
        bb1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    for (int i = 0; i < mr; i++) {
        float *o = out + (size_t)i * ldo;
        __m512 v0 = c0[i], v1 = c1[i];
        if (!first) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, o));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, o + 16));
        } else if (bias) {
            v0 = _mm512_add_ps(v0, bb0);
            v1 = _mm512_add_ps(v1, bb1);
        }
        if (relu) {
            v0 = _mm512_max_ps(v0, z);
            v1 = _mm512_max_ps(v1, z);
        }
        _mm512_mask_storeu_ps(o, m0, v0);
        _mm512_mask_storeu_ps(o + 16, m1, v1);
    }
}

__attribute__((aligned(64)))
static void cr_lp_tile(int kc, const float *a, int lda, int mr, const float *restrict w,
                       float *out, int ldo, int nr, const float *bias, int first, int relu) {
    if (mr <= 4)
        cr_lp_tile_n(4, kc, a, lda, mr, w, out, ldo, nr, bias, first, relu);
    else
        cr_lp_tile_n(CR_LP_MR, kc, a, lda, mr, w, out, ldo, nr, bias, first, relu);
}
#else
/* Plain C, with the same operations as the blocked GEMM of this build:
 * fused multiply-adds when the target has them (the AVX2 micro-kernel),
 * a rounded product then a sum otherwise (the plain one). */
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

#if defined(__AVX512F__)
/* ---- narrow layers: a lane per row ------------------------------------------
 * A layer of at most CR_LP_NARROW outputs (a gate over a few experts, a
 * 1-wide head) fills 1 to 8 of the tile's 32 lanes, so the tile above wastes
 * most of its multiply-adds (a 4-wide gate over 429 inputs ran at 13
 * GFLOP/s). Here a lane is a row instead: 16 input rows are transposed into
 * (k, 16) order, 64 inputs at a time, and output j of those rows is one
 * vector whose chain over k multiplies by w[j][k] broadcast. Each output is
 * still one fused multiply-add chain over k per K block with the same
 * epilogue, so the bits are those of the tile (and of the rows path).
 * G groups of 16 rows share each broadcast: up to 24 accumulators. */
#define CR_LP_NARROW 16
#define CR_LP_KB 64

/* Rows [0, mr) of the task (mr <= 16 G; rows past mr are computed on zeros
 * and not stored), outputs [0, J), inputs k0 .. k0+kc of the K block. */
static inline __attribute__((always_inline)) void
cr_lp_lanes(const int G, const int J, int kc, const float *a, int lda, int mr,
            const float *restrict w, float *out, int ldo, const float *bias, int first,
            int relu) {
    float xt[8 * CR_LP_KB * 16] __attribute__((aligned(64)));
    __m512 acc[8][CR_LP_NARROW];
#pragma GCC unroll 16
    for (int g = 0; g < G; g++)
#pragma GCC unroll 16
        for (int j = 0; j < J; j++) acc[g][j] = _mm512_setzero_ps();
    for (int k0 = 0; k0 < kc; k0 += CR_LP_KB) {
        int kb = kc - k0 < CR_LP_KB ? kc - k0 : CR_LP_KB;
        for (int g = 0; g < G; g++)
            for (int kk = 0; kk < kb; kk += 16)
                cr_tr16(xt + ((size_t)g * CR_LP_KB + kk) * 16, 16, 0xFFFF, cr_lanes(kb - kk),
                        a + (size_t)g * 16 * lda + k0 + kk, (size_t)lda, mr - g * 16);
        const float *wk = w + (size_t)k0 * CR_LP_NR;
        for (int k = 0; k < kb; k++, wk += CR_LP_NR) {
            __m512 wj[CR_LP_NARROW];
#pragma GCC unroll 16
            for (int j = 0; j < J; j++) wj[j] = _mm512_set1_ps(wk[j]);
#pragma GCC unroll 16
            for (int g = 0; g < G; g++) {
                __m512 xv = _mm512_load_ps(xt + ((size_t)g * CR_LP_KB + k) * 16);
#pragma GCC unroll 16
                for (int j = 0; j < J; j++) acc[g][j] = _mm512_fmadd_ps(xv, wj[j], acc[g][j]);
            }
        }
    }
    __m512 z = _mm512_setzero_ps();
    float v[16] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (int g = 0; g < G; g++) {
        if (g * 16 >= mr) break;
        int n = mr - g * 16 < 16 ? mr - g * 16 : 16;
        float *o = out + (size_t)g * 16 * ldo;
#pragma GCC unroll 16
        for (int j = 0; j < J; j++) {
            __m512 x = acc[g][j];
            if (!first) {
                for (int i = 0; i < n; i++) v[i] = o[(size_t)i * ldo + j];
                x = _mm512_add_ps(x, _mm512_maskz_load_ps(cr_lanes(n), v));
            } else if (bias) {
                x = _mm512_add_ps(x, _mm512_set1_ps(bias[j]));
            }
            if (relu) x = _mm512_max_ps(x, z);
            _mm512_store_ps(v, x);
            for (int i = 0; i < n; i++) o[(size_t)i * ldo + j] = v[i];
        }
    }
}

/* Every width J with its row groups G: as many as fit 24 accumulators, at
 * most 8 (the transposed inputs stay in L1). One instance per width, and
 * the table the dispatch reads, from this one list. */
#define CR_LP_WIDTHS(X)                                                                     \
    X(1, 8) X(2, 8) X(3, 8) X(4, 6) X(5, 4) X(6, 4) X(7, 3) X(8, 3) X(9, 2) X(10, 2)      \
    X(11, 2) X(12, 2) X(13, 1) X(14, 1) X(15, 1) X(16, 1)

#define CR_LP_LANES_FN(J, G)                                                                \
    static void cr_lp_lanes_##J(int kc, const float *a, int lda, int mr, const float *w,   \
                                float *out, int ldo, const float *bias, int first, int relu) { \
        cr_lp_lanes(G, J, kc, a, lda, mr, w, out, ldo, bias, first, relu);                 \
    }
CR_LP_WIDTHS(CR_LP_LANES_FN)

typedef void (*cr_lp_lanes_fn)(int kc, const float *a, int lda, int mr, const float *w,
                               float *out, int ldo, const float *bias, int first, int relu);
/* Entry J: the instance for J outputs and the rows one call covers. */
#define CR_LP_LANES_ENTRY(J, G) [J] = {cr_lp_lanes_##J, 16 * (G)},
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
#if defined(__AVX512F__)
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
