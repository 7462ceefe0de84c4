/*
 * simd_tr.h - a 16 x 16 float transpose through AVX-512 registers, shared by
 * the blocked GEMM's packing (gemm_portable.c) and the narrow packed linear
 * (linear_packed.c), and 8 x 8 (AVX2) and 4 x 4 (NEON) ones for the
 * latter. Moving values changes no result; it only decides how
 * fast operands reach the multiply-adds. Internal to src/kernels.
 */
#ifndef CR_SIMD_TR_H
#define CR_SIMD_TR_H

#if defined(__AVX512F__)
#include <immintrin.h>
#include <stddef.h>

/* dst[k * dld + i] = src[i * ld + k] for k < 16 and i < nrows (<= 16);
 * zero for nrows <= i < 16 and for k outside lmask (those inputs are not
 * read, so a row may end before k = 16); lanes outside smask are not
 * stored. */
static inline __attribute__((always_inline)) void cr_tr16(float *dst, size_t dld, __mmask16 smask, __mmask16 lmask,
                           const float *src, size_t ld, int nrows) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++)
        r[i] = i < nrows ? _mm512_maskz_loadu_ps(lmask, src + (size_t)i * ld)
                         : _mm512_setzero_ps();
    /* pairs of rows interleaved within each 128-bit lane */
    for (int p = 0; p < 8; p++) {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    /* u[4q + c], lane L: rows 4q .. 4q+3 at k = 4L + c */
    for (int q = 0; q < 4; q++) {
        __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
        __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
        u[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* a 4 x 4 transpose of 128-bit lanes: k = 4L + c gathers lane L of
     * u[c], u[4 + c], u[8 + c], u[12 + c] */
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        _mm512_mask_storeu_ps(dst + (size_t)c * dld, smask, _mm512_shuffle_f32x4(v0, v2, 0x88));
        _mm512_mask_storeu_ps(dst + (size_t)(4 + c) * dld, smask,
                              _mm512_shuffle_f32x4(v0, v2, 0xDD));
        _mm512_mask_storeu_ps(dst + (size_t)(8 + c) * dld, smask,
                              _mm512_shuffle_f32x4(v1, v3, 0x88));
        _mm512_mask_storeu_ps(dst + (size_t)(12 + c) * dld, smask,
                              _mm512_shuffle_f32x4(v1, v3, 0xDD));
    }
}

/* The first n of 16 lanes (none for n <= 0, all for n >= 16). */
static inline __mmask16 cr_lanes(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}
#elif defined(__AVX2__)
#include <immintrin.h>
#include <stddef.h>

/* The first n of 8 lanes as a mask for maskload/maskstore. */
static inline __m256i cr_lanes8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* dst[k * dld + i] = src[i * ld + k] for k < 8 and i < nrows (<= 8); zero
 * for nrows <= i < 8 and for k >= kn (those inputs are not read). dst is
 * 32-byte aligned with dld a multiple of 8. */
static inline __attribute__((always_inline)) void cr_tr8(float *dst, size_t dld, int kn,
                                                          const float *src, size_t ld,
                                                          int nrows) {
    __m256i m = cr_lanes8(kn);
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = i < nrows ? _mm256_maskload_ps(src + (size_t)i * ld, m) : _mm256_setzero_ps();
    for (int p = 0; p < 4; p++) {
        t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    /* u[4h + c], 128-bit lane L: rows 4h .. 4h+3 at k = 4L + c */
    for (int h = 0; h < 2; h++) {
        u[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        _mm256_store_ps(dst + (size_t)c * dld, _mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
        _mm256_store_ps(dst + (size_t)(4 + c) * dld, _mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
    }
}
#elif CR_NEON
#include <stddef.h>

/* dst[k * dld + i] = src[i * ld + k] for k < 4 and i < nrows (<= 4); zero
 * for nrows <= i < 4 and for k >= kn (those inputs are not read). Four
 * rows, two rounds of TRN: pairs of floats, then pairs of pairs. */
static inline __attribute__((always_inline)) void cr_tr4(float *dst, size_t dld, int kn,
                                                          const float *src, size_t ld,
                                                          int nrows) {
    float32x4_t r[4];
    for (int i = 0; i < 4; i++) {
        const float *s = src + (size_t)i * ld;
        if (i >= nrows) r[i] = vdupq_n_f32(0.0f);
        else if (kn >= 4) r[i] = vld1q_f32(s);
        else {
            float t[4] = {0};
            for (int k = 0; k < kn; k++) t[k] = s[k];
            r[i] = vld1q_f32(t);
        }
    }
    float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1]));
    float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1]));
    float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3]));
    float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
    vst1q_f32(dst, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
    vst1q_f32(dst + dld, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
    vst1q_f32(dst + 2 * dld, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
    vst1q_f32(dst + 3 * dld, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
}
#endif

#endif /* CR_SIMD_TR_H */
