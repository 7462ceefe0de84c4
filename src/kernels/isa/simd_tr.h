/*
 * simd_tr.h - a 16 x 16 float transpose through AVX-512 registers, shared by
 * the blocked GEMM's packing (gemm_portable.c) and the narrow packed linear
 * (linear_packed.c). Moving values changes no result; it only decides how
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
#endif

#endif /* CR_SIMD_TR_H */
