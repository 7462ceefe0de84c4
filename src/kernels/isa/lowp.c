/*
 * lowp.c - the serving products on bf16 and int8 weights (packed by
 * src/kernels/weight.c): out = x @ W^T (+ b) for nr <= 4 rows of inputs
 * already rounded (bf16) or quantised (int8), W in blocks of 16 outputs.
 * Products are exact or in fp32 and sums in fp32 (bf16) or int32 (int8),
 * so levels differ only in the order of the fp32 sums (int8 results are
 * the same bits on every level). Never allocates.
 *
 * Layout (both precisions): per block of 16 outputs, input channels in
 * runs of R (2 for bf16, 4 for int8), the 16 outputs' R values side by side:
 *     blk[(cr * 16 + lane) * R + j] = w[o = 16*blk + lane][c = cr*R + j]
 * which is the operand of VDPBF16PS / VPDPBUSD with the input's R values
 * broadcast. Padding is zero.
 *   AVX512_BF16 / VNNI: those instructions, 16 outputs per zmm.
 *   AVX2 (and avx512 without them): bf16 widened by a 16-bit shift (low
 *     half) or a mask (high half) and two FMAs; int8 as signed bytes,
 *     |x| * sign(w, x) by VPMADDUBSW (|x|, |w| <= 127, so the pair sums
 *     never saturate) and VPMADDWD against ones: the four products of an
 *     output in one int32 lane, exact.
 *   NEON: bf16 pairs split by a de-interleaving load (vld2), each half
 *     widened by a 16-bit shift, two FMAs; int8 de-interleaved by vld4,
 *     widened to 16 bits and multiplied into int32 by SMLAL (exact, the
 *     same integers as the other levels).
 *   scalar: the same arithmetic in plain C.
 *
 * Legend: nr rows, CP input width (padded to R), OC outputs, NB blocks.
 * x: nr rows of CP values one after another; int8 x is stored q + 128
 * (unsigned, VPDPBUSD's operand), xs its per-row scales, sc/ws the weight
 * rows' scales and sums of quantised values.
 */
#include "level.h"

#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* What the serving path runs on this level (`crossrec cpu`): the kernels
 * below, or the packed fp32 kernel on weights widened at load (level.h). */
#if CR_ISA_BF16_NATIVE
const char CR_ISA(cr_lowp_bf16_how)[] = "avx512_bf16";
#elif defined(__AVX512F__) && defined(__AVX512BW__)
const char CR_ISA(cr_lowp_bf16_how)[] = "avx512 (bf16 widened, fp32 fma)";
#elif defined(__AVX2__) && defined(__FMA__)
const char CR_ISA(cr_lowp_bf16_how)[] = "widened to fp32 at load (avx2 fp32 kernel)";
#elif CR_NEON
const char CR_ISA(cr_lowp_bf16_how)[] = "widened to fp32 at load (neon fp32 kernel)";
#else
const char CR_ISA(cr_lowp_bf16_how)[] = "widened to fp32 at load (scalar fp32 kernel)";
#endif
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
const char CR_ISA(cr_lowp_int8_how)[] = "avx512_vnni";
#elif defined(__AVX512F__) && defined(__AVX512BW__)
const char CR_ISA(cr_lowp_int8_how)[] = "avx512bw (vpmaddubsw)";
#elif defined(__AVX2__)
const char CR_ISA(cr_lowp_int8_how)[] = "avx2 (vpmaddubsw; widened to fp32 under 64 inputs)";
#elif CR_NEON
const char CR_ISA(cr_lowp_int8_how)[] = "widened to fp32 at load (neon fp32 kernel)";
#else
const char CR_ISA(cr_lowp_int8_how)[] = "widened to fp32 at load (scalar fp32 kernel)";
#endif

static inline int cr_lowp_n(int OC, int blk) { return OC - blk * 16 < 16 ? OC - blk * 16 : 16; }

/* FN(rows, ...) with rows = nr as a compile-time constant, so each
 * instance keeps its accumulators in registers. */
#define CR_LOWP_ROWS(FN, ...)                                                                \
    switch (nr) {                                                                          \
    case 4: FN(4, __VA_ARGS__); break;                                                     \
    case 3: FN(3, __VA_ARGS__); break;                                                     \
    case 2: FN(2, __VA_ARGS__); break;                                                     \
    default: FN(1, __VA_ARGS__); break;                                                    \
    }

/* ---- bf16 ------------------------------------------------------------------------ */

#if defined(__AVX512F__) && defined(__AVX512BW__)
/* A weight vector (16 outputs x a pair) and an input pair made ready for
 * the multiply-add, and the multiply-add: VDPBF16PS on the pairs where the
 * level has it, else the two weights widened (shift, mask) and two FMAs. */
#if CR_ISA_BF16_NATIVE
typedef __m512i cr_bfw;
static inline cr_bfw cr_bfw_prep(__m512i w) { return w; }
static inline __m512 cr_bf_mac(__m512 acc, __m512i xv, cr_bfw w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)xv, (__m512bh)w);
}
#else
typedef struct { __m512 l, h; } cr_bfw;
static inline cr_bfw cr_bfw_prep(__m512i w) {
    cr_bfw r = {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)),
                _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000u)))};
    return r;
}
static inline __m512 cr_bf_mac(__m512 acc, __m512i xv, cr_bfw w) {
    __m512 xl = _mm512_castsi512_ps(_mm512_slli_epi32(xv, 16));
    __m512 xh = _mm512_castsi512_ps(_mm512_and_si512(xv, _mm512_set1_epi32((int)0xFFFF0000u)));
    return _mm512_fmadd_ps(xh, w.h, _mm512_fmadd_ps(xl, w.l, acc));
}
#endif
/* NR rows x NBB blocks of 16 outputs (constants after inlining): up to 16
 * independent accumulator chains, enough to hide VDPBF16PS's latency (four
 * chains, one block at a time, ran at a third of the fp32 rate). */
static inline __attribute__((always_inline)) void
cr_lowp_bf16_blk(const int NR, const int NBB, float *out, int ldo, const uint16_t *x,
                 const uint16_t *W, const float *b, int CP, int OC, int blk0) {
    const int NC = CP / 2;
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int q = 0; q < NBB; q++) acc[r][q] = _mm512_setzero_ps();
    const uint16_t *wb = W + (size_t)blk0 * 16 * CP;
    for (int cr = 0; cr < NC; cr++) {
        cr_bfw wv[4];
        #pragma GCC unroll 4
        for (int q = 0; q < NBB; q++)
            wv[q] = cr_bfw_prep(
                _mm512_loadu_si512((const void *)(wb + (size_t)q * 16 * CP + (size_t)cr * 32)));
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            uint32_t pair;
            memcpy(&pair, x + (size_t)r * CP + 2 * cr, 4);
            __m512i xv = _mm512_set1_epi32((int)pair);
            #pragma GCC unroll 4
            for (int q = 0; q < NBB; q++)
                acc[r][q] = cr_bf_mac(acc[r][q], xv, wv[q]);
        }
    }
    #pragma GCC unroll 4
    for (int q = 0; q < NBB; q++) {
        int blk = blk0 + q;
        __mmask16 k = (__mmask16)((1u << cr_lowp_n(OC, blk)) - 1u);
        __m512 bv = b ? _mm512_maskz_loadu_ps(k, b + blk * 16) : _mm512_setzero_ps();
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++)
            _mm512_mask_storeu_ps(out + (size_t)r * ldo + blk * 16, k, _mm512_add_ps(acc[r][q], bv));
    }
}

void CR_ISA(cr_lowp_bf16_rows)(float *out, int ldo, const uint16_t *x, int nr,
                               const uint16_t *W, const float *b, int CP, int OC) {
    const int NB = (OC + 15) / 16;
    int blk = 0;
    for (; blk + 4 <= NB; blk += 4)
        CR_LOWP_ROWS(cr_lowp_bf16_blk, 4, out, ldo, x, W, b, CP, OC, blk)
    /* the last 1-3 blocks together: narrow layers are all remainder */
    if (NB - blk == 3) CR_LOWP_ROWS(cr_lowp_bf16_blk, 3, out, ldo, x, W, b, CP, OC, blk)
    else if (NB - blk == 2) CR_LOWP_ROWS(cr_lowp_bf16_blk, 2, out, ldo, x, W, b, CP, OC, blk)
    else if (NB - blk == 1) CR_LOWP_ROWS(cr_lowp_bf16_blk, 1, out, ldo, x, W, b, CP, OC, blk)
}
#elif defined(__AVX2__) && defined(__FMA__)
/* NR rows (a constant after inlining, so the 8 accumulators stay in
 * registers) of one block of 16 outputs. */
static inline __attribute__((always_inline)) void
cr_lowp_bf16_blk(const int NR, float *out, int ldo, const uint16_t *x, const uint16_t *wb,
                 const float *b, int CP, int n) {
    const int NC = CP / 2;
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256 acc[4][2];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int cr = 0; cr < NC; cr++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + (size_t)cr * 32));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + (size_t)cr * 32 + 16));
        /* lane o holds (w[o][2cr], w[o][2cr+1]): the low half shifted up,
         * the high half masked, are the two weights as floats */
        __m256 w0l = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
        __m256 w0h = _mm256_castsi256_ps(_mm256_and_si256(w0, hi));
        __m256 w1l = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
        __m256 w1h = _mm256_castsi256_ps(_mm256_and_si256(w1, hi));
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            uint32_t pair;
            memcpy(&pair, x + (size_t)r * CP + 2 * cr, 4);
            __m256i xv = _mm256_set1_epi32((int)pair);
            __m256 xl = _mm256_castsi256_ps(_mm256_slli_epi32(xv, 16));
            __m256 xh = _mm256_castsi256_ps(_mm256_and_si256(xv, hi));
            acc[r][0] = _mm256_fmadd_ps(xh, w0h, _mm256_fmadd_ps(xl, w0l, acc[r][0]));
            acc[r][1] = _mm256_fmadd_ps(xh, w1h, _mm256_fmadd_ps(xl, w1l, acc[r][1]));
        }
    }
    float bb[16] = {0};
    if (b) memcpy(bb, b, (size_t)n * sizeof(float));
    __m256 b0 = _mm256_loadu_ps(bb), b1 = _mm256_loadu_ps(bb + 8);
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        float v[16];
        _mm256_storeu_ps(v, _mm256_add_ps(acc[r][0], b0));
        _mm256_storeu_ps(v + 8, _mm256_add_ps(acc[r][1], b1));
        memcpy(out + (size_t)r * ldo, v, (size_t)n * sizeof(float));
    }
}

#elif CR_NEON
/* NR rows (a constant after inlining) against one block of 16 outputs:
 * acc[r][q] holds outputs 4q .. 4q+3 of row r. */
static inline __attribute__((always_inline)) void
cr_lowp_bf16_blk(const int NR, float *out, int ldo, const uint16_t *x, const uint16_t *wb,
                 const float *b, int CP, int n) {
    const int NC = CP / 2;
    float32x4_t acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_f32(0.0f);
    for (int cr = 0; cr < NC; cr++) {
        /* 16 outputs' pairs: val[0] the first of each pair (8 outputs), val[1] the second */
        uint16x8x2_t w01 = vld2q_u16(wb + (size_t)cr * 32);
        uint16x8x2_t w23 = vld2q_u16(wb + (size_t)cr * 32 + 16);
        float32x4_t lo[4], hi[4];
        lo[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w01.val[0]), 16));
        lo[1] = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(w01.val[0]), 16));
        lo[2] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w23.val[0]), 16));
        lo[3] = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(w23.val[0]), 16));
        hi[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w01.val[1]), 16));
        hi[1] = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(w01.val[1]), 16));
        hi[2] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w23.val[1]), 16));
        hi[3] = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(w23.val[1]), 16));
        for (int r = 0; r < NR; r++) {
            float32x4_t xl = vdupq_n_f32(cr_bf16_to_f32(x[(size_t)r * CP + 2 * cr]));
            float32x4_t xh = vdupq_n_f32(cr_bf16_to_f32(x[(size_t)r * CP + 2 * cr + 1]));
            for (int q = 0; q < 4; q++) {
                acc[r][q] = vfmaq_f32(acc[r][q], xl, lo[q]);
                acc[r][q] = vfmaq_f32(acc[r][q], xh, hi[q]);
            }
        }
    }
    float bb[16] = {0};
    if (b) memcpy(bb, b, (size_t)n * sizeof(float));
    for (int r = 0; r < NR; r++) {
        float v[16];
        for (int q = 0; q < 4; q++) vst1q_f32(v + 4 * q, vaddq_f32(acc[r][q], vld1q_f32(bb + 4 * q)));
        memcpy(out + (size_t)r * ldo, v, (size_t)n * sizeof(float));
    }
}

#else
void CR_ISA(cr_lowp_bf16_rows)(float *out, int ldo, const uint16_t *x, int nr,
                               const uint16_t *W, const float *b, int CP, int OC) {
    const int NC = CP / 2, NB = (OC + 15) / 16;
    for (int blk = 0; blk < NB; blk++) {
        const uint16_t *wb = W + (size_t)blk * 16 * CP;
        int n = cr_lowp_n(OC, blk);
        for (int r = 0; r < nr; r++) {
            float acc[16] = {0};
            for (int cr = 0; cr < NC; cr++) {
                float xl = cr_bf16_to_f32(x[(size_t)r * CP + 2 * cr]);
                float xh = cr_bf16_to_f32(x[(size_t)r * CP + 2 * cr + 1]);
                const uint16_t *wc = wb + (size_t)cr * 32;
                for (int lane = 0; lane < 16; lane++) {
                    acc[lane] += xl * cr_bf16_to_f32(wc[2 * lane]);
                    acc[lane] += xh * cr_bf16_to_f32(wc[2 * lane + 1]);
                }
            }
            for (int lane = 0; lane < n; lane++)
                out[(size_t)r * ldo + blk * 16 + lane] = acc[lane] + (b ? b[blk * 16 + lane] : 0.0f);
        }
    }
}
#endif

#if !(defined(__AVX512F__) && defined(__AVX512BW__)) && \
    ((defined(__AVX2__) && defined(__FMA__)) || CR_NEON)
/* AVX2 and NEON: one block of 16 outputs at a time, for 1 to 4 rows */
void CR_ISA(cr_lowp_bf16_rows)(float *out, int ldo, const uint16_t *x, int nr,
                               const uint16_t *W, const float *b, int CP, int OC) {
    const int NB = (OC + 15) / 16;
    for (int blk = 0; blk < NB; blk++) {
        const uint16_t *wb = W + (size_t)blk * 16 * CP;
        const float *bb = b ? b + blk * 16 : NULL;
        float *o = out + blk * 16;
        int n = cr_lowp_n(OC, blk);
        CR_LOWP_ROWS(cr_lowp_bf16_blk, o, ldo, x, wb, bb, CP, n)
    }
}
#endif

/* ---- int8 ------------------------------------------------------------------------ */

#if defined(__AVX512F__) && defined(__AVX512BW__)
/* With VNNI, VPDPBUSD on the stored inputs: sum_c (q_c + 128) w_c =
 * sum_c q_c w_c + 128 * wsum, and the row sum of the weight takes the
 * offset back out (CR_I8_OFF). Without it, AVX2's |q| * sign(w, q) on
 * zmm registers (AVX-512 has no VPSIGNB: a masked negation instead), no
 * offset. NR rows x NBB blocks as for bf16. */
#if defined(__AVX512VNNI__)
#define CR_I8_OFF 1
static inline __m512i cr_i8_xprep(__m512i xv) { return xv; }
static inline __m512i cr_i8_mac(__m512i acc, __m512i xv, __m512i w) {
    return _mm512_dpbusd_epi32(acc, xv, w);
}
#else
#define CR_I8_OFF 0
static inline __m512i cr_i8_xprep(__m512i xv) {
    return _mm512_xor_si512(xv, _mm512_set1_epi8((char)0x80)); /* q, signed */
}
static inline __m512i cr_i8_mac(__m512i acc, __m512i q, __m512i w) {
    __mmask64 neg = _mm512_movepi8_mask(q);
    __m512i sw = _mm512_mask_sub_epi8(w, neg, _mm512_setzero_si512(), w);
    __m512i p = _mm512_maddubs_epi16(_mm512_abs_epi8(q), sw);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
}
#endif
static inline __attribute__((always_inline)) void
cr_lowp_int8_blk(const int NR, const int NBB, float *out, int ldo, const uint8_t *x,
                 const float *xs, const int8_t *W, const float *sc, const int32_t *ws,
                 const float *b, int CP, int OC, int blk0) {
    const int NC = CP / 4;
    __m512i acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
        #pragma GCC unroll 4
        for (int q = 0; q < NBB; q++) acc[r][q] = _mm512_setzero_si512();
    const int8_t *wb = W + (size_t)blk0 * 16 * CP;
    for (int cr = 0; cr < NC; cr++) {
        __m512i wv[4];
        #pragma GCC unroll 4
        for (int q = 0; q < NBB; q++)
            wv[q] = _mm512_loadu_si512((const void *)(wb + (size_t)q * 16 * CP + (size_t)cr * 64));
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            uint32_t quad;
            memcpy(&quad, x + (size_t)r * CP + 4 * cr, 4);
            __m512i xv = cr_i8_xprep(_mm512_set1_epi32((int)quad));
            #pragma GCC unroll 4
            for (int q = 0; q < NBB; q++) acc[r][q] = cr_i8_mac(acc[r][q], xv, wv[q]);
        }
    }
    #pragma GCC unroll 4
    for (int q = 0; q < NBB; q++) {
        int blk = blk0 + q;
        __mmask16 k = (__mmask16)((1u << cr_lowp_n(OC, blk)) - 1u);
        __m512 bv = b ? _mm512_maskz_loadu_ps(k, b + blk * 16) : _mm512_setzero_ps();
        __m512 sv = _mm512_maskz_loadu_ps(k, sc + blk * 16);
        __m512i off = CR_I8_OFF ? _mm512_slli_epi32(_mm512_maskz_loadu_epi32(k, ws + blk * 16), 7)
                                : _mm512_setzero_si512();
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][q], off));
            v = _mm512_fmadd_ps(v, _mm512_mul_ps(sv, _mm512_set1_ps(xs[r])), bv);
            _mm512_mask_storeu_ps(out + (size_t)r * ldo + blk * 16, k, v);
        }
    }
}

void CR_ISA(cr_lowp_int8_rows)(float *out, int ldo, const uint8_t *x, const float *xs, int nr,
                               const int8_t *W, const float *sc, const int32_t *ws,
                               const float *b, int CP, int OC) {
    const int NB = (OC + 15) / 16;
    int blk = 0;
    for (; blk + 4 <= NB; blk += 4)
        CR_LOWP_ROWS(cr_lowp_int8_blk, 4, out, ldo, x, xs, W, sc, ws, b, CP, OC, blk)
    if (NB - blk == 3)
        CR_LOWP_ROWS(cr_lowp_int8_blk, 3, out, ldo, x, xs, W, sc, ws, b, CP, OC, blk)
    else if (NB - blk == 2)
        CR_LOWP_ROWS(cr_lowp_int8_blk, 2, out, ldo, x, xs, W, sc, ws, b, CP, OC, blk)
    else if (NB - blk == 1)
        CR_LOWP_ROWS(cr_lowp_int8_blk, 1, out, ldo, x, xs, W, sc, ws, b, CP, OC, blk)
}
#elif defined(__AVX2__) && defined(__FMA__)
static inline __attribute__((always_inline)) void
cr_lowp_int8_blk(const int NR, float *out, int ldo, const uint8_t *x, const float *xs,
                 const int8_t *wb, const float *sc, const float *b, int CP, int n) {
    const int NC = CP / 4;
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256i acc[4][2];
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int cr = 0; cr < NC; cr++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + (size_t)cr * 64));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + (size_t)cr * 64 + 32));
        #pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            uint32_t quad;
            memcpy(&quad, x + (size_t)r * CP + 4 * cr, 4);
            /* q = stored - 128 as signed bytes, the same four in every lane */
            __m256i q = _mm256_xor_si256(_mm256_set1_epi32((int)quad), flip);
            __m256i aq = _mm256_abs_epi8(q);
            __m256i p0 = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(w0, q));
            __m256i p1 = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(w1, q));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
        }
    }
    float bb[16] = {0}, ss[16] = {0};
    if (b) memcpy(bb, b, (size_t)n * sizeof(float));
    memcpy(ss, sc, (size_t)n * sizeof(float));
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        float v[16];
        __m256 xsr = _mm256_set1_ps(xs[r]);
        #pragma GCC unroll 4
        for (int h = 0; h < 2; h++) {
            __m256 s = _mm256_mul_ps(_mm256_loadu_ps(ss + 8 * h), xsr);
            _mm256_storeu_ps(v + 8 * h, _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][h]), s,
                                                        _mm256_loadu_ps(bb + 8 * h)));
        }
        memcpy(out + (size_t)r * ldo, v, (size_t)n * sizeof(float));
    }
}

#elif CR_NEON
/* NR rows against one block of 16 outputs: acc[r][q] = outputs 4q .. 4q+3
 * of row r, int32, exact. */
static inline __attribute__((always_inline)) void
cr_lowp_int8_blk(const int NR, float *out, int ldo, const uint8_t *x, const float *xs,
                 const int8_t *wb, const float *sc, const float *b, int CP, int n) {
    const int NC = CP / 4;
    int32x4_t acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_s32(0);
    for (int cr = 0; cr < NC; cr++) {
        /* val[j]: input j of the run for the 16 outputs, widened to 16 bits */
        int8x16x4_t w = vld4q_s8(wb + (size_t)cr * 64);
        int16x8_t wl[4], wh[4];
        for (int j = 0; j < 4; j++) {
            wl[j] = vmovl_s8(vget_low_s8(w.val[j]));
            wh[j] = vmovl_s8(vget_high_s8(w.val[j]));
        }
        for (int r = 0; r < NR; r++) {
            const uint8_t *xq = x + (size_t)r * CP + 4 * cr;
            for (int j = 0; j < 4; j++) {
                int16_t q = (int16_t)((int)xq[j] - 128);
                acc[r][0] = vmlal_n_s16(acc[r][0], vget_low_s16(wl[j]), q);
                acc[r][1] = vmlal_n_s16(acc[r][1], vget_high_s16(wl[j]), q);
                acc[r][2] = vmlal_n_s16(acc[r][2], vget_low_s16(wh[j]), q);
                acc[r][3] = vmlal_n_s16(acc[r][3], vget_high_s16(wh[j]), q);
            }
        }
    }
    float bb[16] = {0}, ss[16] = {0};
    if (b) memcpy(bb, b, (size_t)n * sizeof(float));
    memcpy(ss, sc, (size_t)n * sizeof(float));
    for (int r = 0; r < NR; r++) {
        float v[16];
        float32x4_t xsr = vdupq_n_f32(xs[r]);
        for (int q = 0; q < 4; q++) {
            float32x4_t s = vmulq_f32(vld1q_f32(ss + 4 * q), xsr);
            vst1q_f32(v + 4 * q, vfmaq_f32(vld1q_f32(bb + 4 * q), vcvtq_f32_s32(acc[r][q]), s));
        }
        memcpy(out + (size_t)r * ldo, v, (size_t)n * sizeof(float));
    }
}

#else
void CR_ISA(cr_lowp_int8_rows)(float *out, int ldo, const uint8_t *x, const float *xs, int nr,
                               const int8_t *W, const float *sc, const int32_t *ws,
                               const float *b, int CP, int OC) {
    (void)ws;
    const int NC = CP / 4, NB = (OC + 15) / 16;
    for (int blk = 0; blk < NB; blk++) {
        const int8_t *wb = W + (size_t)blk * 16 * CP;
        int n = cr_lowp_n(OC, blk);
        for (int r = 0; r < nr; r++) {
            int32_t acc[16] = {0};
            for (int cr = 0; cr < NC; cr++) {
                const uint8_t *xq = x + (size_t)r * CP + 4 * cr;
                const int8_t *wc = wb + (size_t)cr * 64;
                for (int lane = 0; lane < 16; lane++)
                    for (int j = 0; j < 4; j++)
                        acc[lane] += ((int32_t)xq[j] - 128) * (int32_t)wc[4 * lane + j];
            }
            for (int lane = 0; lane < n; lane++) {
                int o = blk * 16 + lane;
                /* the vector paths' epilogue: acc * (sc * xs) + b, one rounding */
                float v = (float)acc[lane];
                out[(size_t)r * ldo + o] = __builtin_fmaf(v, sc[o] * xs[r], b ? b[o] : 0.0f);
            }
        }
    }
}
#endif

#if !(defined(__AVX512F__) && defined(__AVX512BW__)) && \
    ((defined(__AVX2__) && defined(__FMA__)) || CR_NEON)
/* AVX2 and NEON: one block of 16 outputs at a time, for 1 to 4 rows */
void CR_ISA(cr_lowp_int8_rows)(float *out, int ldo, const uint8_t *x, const float *xs, int nr,
                               const int8_t *W, const float *sc, const int32_t *ws,
                               const float *b, int CP, int OC) {
    (void)ws; /* signed inputs: no offset to take out */
    const int NB = (OC + 15) / 16;
    for (int blk = 0; blk < NB; blk++) {
        const int8_t *wb = W + (size_t)blk * 16 * CP;
        const float *bb = b ? b + blk * 16 : NULL, *s = sc + blk * 16;
        float *o = out + blk * 16;
        int n = cr_lowp_n(OC, blk);
        CR_LOWP_ROWS(cr_lowp_int8_blk, o, ldo, x, xs, wb, s, bb, CP, n)
    }
}
#endif

/* ---- int8 inputs --------------------------------------------------------------- */

/* A row's int8 scale: max|x| / 127 (1 for an all-zero row). Written so it
 * vectorises for the level: the largest magnitude as an integer maximum of
 * the sign-cleared bits (positive floats order like their bits; NaN is
 * skipped as the serving path always did). */
static inline float cr_int8_row_scale(const float *src, int n) {
    int32_t mb = 0; /* signed: gcc 12 vectorises this maximum, not the unsigned one */
    for (int c = 0; c < n; c++) {
        int32_t u;
        memcpy(&u, src + c, sizeof u);
        u &= 0x7fffffff;
        u = u > 0x7f800000 ? 0 : u;
        mb = u > mb ? u : mb;
    }
    float amax;
    memcpy(&amax, &mb, sizeof amax);
    return amax > 0.0f ? amax / 127.0f : 1.0f;
}

/* x / scale (x * inv) rounded to an integer in [-127, 127]: |x * inv| <=
 * 127 (a NaN clamps below); nearest even by the 1.5 * 2^23 trick, lrintf's
 * result, but it vectorises. */
static inline float cr_int8_q(float x, float inv) {
    float r = (x * inv + 12582912.0f) - 12582912.0f;
    r = r >= -127.0f ? r : -127.0f; /* NaN too */
    return r <= 127.0f ? r : 127.0f;
}

/* One row of n floats quantised for the int8 product: dst[c] =
 * cr_int8_q(x) + 128 for c < n and 128 (zero) up to np; returns the scale. */
float CR_ISA(cr_int8_quant_row)(uint8_t *dst, const float *src, int n, int np) {
    float scale = cr_int8_row_scale(src, n), inv = 1.0f / scale;
    for (int c = 0; c < n; c++) dst[c] = (uint8_t)((int)cr_int8_q(src[c], inv) + 128);
    for (int c = n; c < np; c++) dst[c] = 128;
    return scale;
}

/* The widened serving path's inputs: B rows of C floats (stride ldi) as the
 * reduced products see them, as floats, into dst (rows of C): rounded to
 * bf16 (int8 = 0), or quantised as cr_int8_quant_row does and scaled back
 * (q * scale, rounded once). */
void CR_ISA(cr_lowp_round_rows)(float *dst, const float *src, int B, int C, int ldi, int int8) {
    for (int r = 0; r < B; r++) {
        const float *x = src + (size_t)r * ldi;
        float *d = dst + (size_t)r * C;
        if (int8) {
            float scale = cr_int8_row_scale(x, C), inv = 1.0f / scale;
            for (int c = 0; c < C; c++) d[c] = cr_int8_q(x[c], inv) * scale;
        } else {
            for (int c = 0; c < C; c++) d[c] = cr_bf16_to_f32(cr_bf16_from_f32(x[c]));
        }
    }
}
