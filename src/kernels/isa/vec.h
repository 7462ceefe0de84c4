/*
 * vec.h - the vector layer of the streaming kernels (gemv.c,
 * linear_bf16.c): VW float lanes per vector, loads of the first n lanes
 * that never touch memory past them, bfloat16 loads widened to float, and a
 * horizontal sum in a fixed order. AVX-512, AVX2 + FMA, NEON (the neon
 * level), or one plain float per "vector", chosen by the level's flags.
 * Internal to src/kernels: not part of the API, no state, no allocation.
 */
#ifndef CR_VEC_H
#define CR_VEC_H

#include <stdint.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
typedef __m512 cr_vf;
#define CR_VF_W 16
#define CR_VF_ISA "avx512"
static inline cr_vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline cr_vf vf_add(cr_vf a, cr_vf b) { return _mm512_add_ps(a, b); }
static inline cr_vf vf_fma(cr_vf a, cr_vf b, cr_vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline cr_vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline cr_vf vf_load_n(const float *p, int n) {
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}
/* bf16 is the top half of a float: widen to 32 bits, shift into place */
static inline cr_vf vf_load_bf16(const uint16_t *p) {
    __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}
static inline cr_vf vf_load_bf16_n(const uint16_t *p, int n) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    __m256i r = _mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1u), p);
#else
    uint16_t t[16] = {0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    __m256i r = _mm256_loadu_si256((const __m256i *)t);
#endif
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(r), 16));
}
static inline float vf_sum(cr_vf v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 cr_vf;
#define CR_VF_W 8
#define CR_VF_ISA "avx2"
static inline __m256i vf_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline cr_vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline cr_vf vf_add(cr_vf a, cr_vf b) { return _mm256_add_ps(a, b); }
static inline cr_vf vf_fma(cr_vf a, cr_vf b, cr_vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline cr_vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline cr_vf vf_load_n(const float *p, int n) { return _mm256_maskload_ps(p, vf_mask(n)); }
static inline cr_vf vf_load_bf16(const uint16_t *p) {
    __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
static inline cr_vf vf_load_bf16_n(const uint16_t *p, int n) {
    uint16_t t[8] = {0}; /* AVX2 has no 16-bit masked load */
    for (int i = 0; i < n; i++) t[i] = p[i];
    return vf_load_bf16(t);
}
static inline float vf_sum(cr_vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
}
#elif CR_NEON
typedef float32x4_t cr_vf;
#define CR_VF_W 4
#define CR_VF_ISA "neon"
static inline cr_vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline cr_vf vf_add(cr_vf a, cr_vf b) { return vaddq_f32(a, b); }
static inline cr_vf vf_fma(cr_vf a, cr_vf b, cr_vf c) { return vfmaq_f32(c, a, b); }
static inline cr_vf vf_load(const float *p) { return vld1q_f32(p); }
static inline cr_vf vf_load_n(const float *p, int n) { /* NEON has no masked load */
    float t[4] = {0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return vld1q_f32(t);
}
static inline cr_vf vf_load_bf16(const uint16_t *p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}
static inline cr_vf vf_load_bf16_n(const uint16_t *p, int n) {
    uint16_t t[4] = {0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return vf_load_bf16(t);
}
/* (l0 + l1) + (l2 + l3): a fixed order, like the x86 reductions */
static inline float vf_sum(cr_vf v) {
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}
#else
typedef float cr_vf;
#define CR_VF_W 1
#define CR_VF_ISA "generic"
static inline cr_vf vf_zero(void) { return 0.0f; }
static inline cr_vf vf_add(cr_vf a, cr_vf b) { return a + b; }
static inline cr_vf vf_fma(cr_vf a, cr_vf b, cr_vf c) { return a * b + c; }
static inline cr_vf vf_load(const float *p) { return *p; }
static inline cr_vf vf_load_n(const float *p, int n) { return n > 0 ? *p : 0.0f; }
static inline cr_vf vf_load_bf16(const uint16_t *p) {
    union { uint32_t u; float f; } v = {(uint32_t)*p << 16};
    return v.f;
}
static inline cr_vf vf_load_bf16_n(const uint16_t *p, int n) {
    return n > 0 ? vf_load_bf16(p) : 0.0f;
}
static inline float vf_sum(cr_vf v) { return v; }
#endif

/* NAME(x, w, K) = x . w over K, x float, w of type WT read through LOAD /
 * LOAD_N (full and first-n vector loads): chunk c of CR_VF_W inputs goes
 * into accumulator c % 4, the last partial chunk through LOAD_N, then
 * (a0 + a1) + (a2 + a3) and vf_sum. One order for every caller, so the
 * float GEMV and the bf16-weight linear sum alike, and an output never
 * depends on the row count, its position or the thread count. */
#define CR_VF_DOT_DEFINE(NAME, WT, LOAD, LOAD_N)                                          \
    static inline cr_vf NAME##_tail(cr_vf acc, const float *x, const WT *w, int *k, int K) { \
        if (*k >= K) return acc;                                                          \
        int n = K - *k < CR_VF_W ? K - *k : CR_VF_W;                                      \
        acc = vf_fma(vf_load_n(x + *k, n), LOAD_N(w + *k, n), acc);                       \
        *k += CR_VF_W;                                                                    \
        return acc;                                                                       \
    }                                                                                     \
    static inline float NAME(const float *x, const WT *w, int K) {                        \
        cr_vf a0 = vf_zero(), a1 = a0, a2 = a0, a3 = a0;                                  \
        int k = 0;                                                                        \
        for (; k + 4 * CR_VF_W <= K; k += 4 * CR_VF_W) {                                  \
            a0 = vf_fma(vf_load(x + k), LOAD(w + k), a0);                                 \
            a1 = vf_fma(vf_load(x + k + CR_VF_W), LOAD(w + k + CR_VF_W), a1);             \
            a2 = vf_fma(vf_load(x + k + 2 * CR_VF_W), LOAD(w + k + 2 * CR_VF_W), a2);     \
            a3 = vf_fma(vf_load(x + k + 3 * CR_VF_W), LOAD(w + k + 3 * CR_VF_W), a3);     \
        }                                                                                 \
        /* fewer than four chunks left: they continue the rotation */                    \
        a0 = NAME##_tail(a0, x, w, &k, K);                                                \
        a1 = NAME##_tail(a1, x, w, &k, K);                                                \
        a2 = NAME##_tail(a2, x, w, &k, K);                                                \
        a3 = NAME##_tail(a3, x, w, &k, K);                                                \
        return vf_sum(vf_add(vf_add(a0, a1), vf_add(a2, a3)));                            \
    }

#endif /* CR_VEC_H */
