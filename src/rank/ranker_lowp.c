/*
 * ranker_lowp.c - bf16 and int8 weights for the serving forward: packing a
 * Linear weight once at load, and out = inp @ w^T + b with products in the
 * packed precision and sums in fp32 (bf16) or int32 (int8). AVX-512 BF16 /
 * VNNI when the build targets them, the same arithmetic in plain C
 * otherwise, so results do not depend on the path beyond summation order.
 * Serving only: nothing here has a backward, and it never allocates in
 * cr_lp_linear.
 *
 * Legend: B rows, C input width (CP padded), OC outputs of one group, G
 * groups (experts), NB blocks of 16 outputs.
 *
 * Packed layout (both precisions): per group, NB = ceil(OC/16) blocks of 16
 * outputs; inside a block, input channels in runs of R (R = 2 for bf16, 4
 * for int8) with the 16 outputs' R values side by side:
 *     blk[(cr * 16 + lane) * R + j] = w[o = 16*blk + lane][c = cr*R + j]
 * which is exactly the operand of _mm512_dpbf16_ps / _mm512_dpbusd_epi32
 * when the input's R values are broadcast to every lane. Padding is zero.
 */
#include "ranker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && (defined(__AVX512BF16__) || defined(__AVX512VNNI__))
#include <immintrin.h>
#endif

struct cr_lp_weight {
    cr_precision p;
    int      G, OC, C, CP, NB, R;
    size_t   group_elems;  /* packed values per group */
    void    *data;         /* uint16_t (bf16) or int8_t values */
    float   *scale;        /* int8: (G, NB*16) per-row scale */
    int32_t *wsum;         /* int8: (G, NB*16) sum of a row's quantised values */
};

cr_status cr_lp_pack(cr_lp_weight **out, cr_precision p, const float *w, int G, int OC, int C,
                     cr_error *e) {
    *out = NULL;
    if (p != CR_PRECISION_BF16 && p != CR_PRECISION_INT8)
        return cr_err(e, CR_ERR_ARG, "packing weights: precision %d is not bf16 or int8", (int)p);
    if (G < 1 || OC < 1 || C < 1)
        return cr_err(e, CR_ERR_ARG, "packing weights: shape (%d, %d, %d)", G, OC, C);
    cr_lp_weight *lw = calloc(1, sizeof *lw);
    if (!lw) return cr_err(e, CR_ERR_NOMEM, "out of memory packing weights");
    lw->p = p;
    lw->G = G;
    lw->OC = OC;
    lw->C = C;
    lw->R = p == CR_PRECISION_BF16 ? 2 : 4;
    lw->CP = (C + lw->R - 1) / lw->R * lw->R;
    lw->NB = (OC + 15) / 16;
    lw->group_elems = (size_t)lw->NB * 16 * (size_t)lw->CP;
    size_t esz = p == CR_PRECISION_BF16 ? 2 : 1, n = (size_t)G * lw->group_elems;
    lw->data = cr_alloc(n * esz);
    if (p == CR_PRECISION_INT8) {
        lw->scale = cr_alloc((size_t)G * lw->NB * 16 * sizeof(float));
        lw->wsum = cr_alloc((size_t)G * lw->NB * 16 * sizeof(int32_t));
    }
    if (!lw->data || (p == CR_PRECISION_INT8 && (!lw->scale || !lw->wsum))) {
        cr_lp_free(lw);
        return cr_err(e, CR_ERR_NOMEM, "out of memory packing weights (%d x %d)", G * OC, C);
    }
    const int R = lw->R;
    for (int g = 0; g < G; g++) {
        for (int o = 0; o < OC; o++) {
            const float *row = w + ((size_t)g * OC + o) * C;
            int blk = o / 16, lane = o % 16;
            size_t base = (size_t)g * lw->group_elems + (size_t)blk * 16 * lw->CP;
            float inv = 0.0f;
            if (p == CR_PRECISION_INT8) {
                /* symmetric per-row scale: the row's largest magnitude -> 127 */
                float amax = 0.0f;
                for (int c = 0; c < C; c++) amax = fabsf(row[c]) > amax ? fabsf(row[c]) : amax;
                float sc = amax > 0.0f ? amax / 127.0f : 1.0f;
                lw->scale[(size_t)g * lw->NB * 16 + o] = sc;
                inv = 1.0f / sc;
            }
            int32_t sum = 0;
            for (int c = 0; c < C; c++) {
                size_t at = base + ((size_t)(c / R) * 16 + lane) * R + (size_t)(c % R);
                if (p == CR_PRECISION_BF16) {
                    ((uint16_t *)lw->data)[at] = cr_bf16_from_f32(row[c]);
                } else {
                    long q = lrintf(row[c] * inv);
                    q = q > 127 ? 127 : q < -127 ? -127 : q;
                    ((int8_t *)lw->data)[at] = (int8_t)q;
                    sum += (int32_t)q;
                }
            }
            if (p == CR_PRECISION_INT8) lw->wsum[(size_t)g * lw->NB * 16 + o] = sum;
        }
    }
    *out = lw;
    return CR_OK;
}

void cr_lp_free(cr_lp_weight *w) {
    if (!w) return;
    cr_free(w->data);
    cr_free(w->scale);
    cr_free(w->wsum);
    free(w);
}

/* 4 rows of converted input, each padded to a multiple of 4 values, plus
 * alignment slack. */
size_t cr_lp_scratch_bytes(int C) { return 4 * ((size_t)C + 8) * sizeof(float) + 256; }

const char *cr_lp_isa(cr_precision p) {
#if defined(__AVX512F__) && defined(__AVX512BF16__)
    if (p == CR_PRECISION_BF16) return "avx512_bf16";
#endif
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
    if (p == CR_PRECISION_INT8) return "avx512_vnni";
#endif
    return "generic";
}

/* ---- bf16 ------------------------------------------------------------------------- */

static void cr_lp_bf16_rows(float *out, const uint16_t *x, const cr_lp_weight *w,
                            const uint16_t *W, const float *b, int nr, int ldo) {
    /* x: nr rows of CP bf16 values, one after another */
    const int CP = w->CP, NC = CP / 2;
#if defined(__AVX512F__) && defined(__AVX512BF16__)
    for (int blk = 0; blk < w->NB; blk++) {
        const uint16_t *wb = W + (size_t)blk * 16 * CP;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        for (int cr = 0; cr < NC; cr++) {
            __m512i wv = _mm512_loadu_si512((const void *)(wb + (size_t)cr * 32));
            for (int r = 0; r < nr; r++) {
                uint32_t pair;
                memcpy(&pair, x + (size_t)r * CP + 2 * cr, 4);
                __m512i xv = _mm512_set1_epi32((int)pair);
                acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)xv, (__m512bh)wv);
            }
        }
        int n = w->OC - blk * 16 < 16 ? w->OC - blk * 16 : 16;
        __mmask16 k = (__mmask16)((1u << n) - 1u);
        __m512 bv = b ? _mm512_maskz_loadu_ps(k, b + blk * 16) : _mm512_setzero_ps();
        for (int r = 0; r < nr; r++)
            _mm512_mask_storeu_ps(out + (size_t)r * ldo + blk * 16, k, _mm512_add_ps(acc[r], bv));
    }
#else
    for (int blk = 0; blk < w->NB; blk++) {
        const uint16_t *wb = W + (size_t)blk * 16 * CP;
        int n = w->OC - blk * 16 < 16 ? w->OC - blk * 16 : 16;
        for (int r = 0; r < nr; r++)
            for (int lane = 0; lane < n; lane++) {
                float acc = 0.0f;
                for (int cr = 0; cr < NC; cr++)
                    for (int j = 0; j < 2; j++)
                        acc += cr_bf16_to_f32(x[(size_t)r * CP + 2 * cr + j]) *
                               cr_bf16_to_f32(wb[((size_t)cr * 16 + lane) * 2 + j]);
                out[(size_t)r * ldo + blk * 16 + lane] = acc + (b ? b[blk * 16 + lane] : 0.0f);
            }
    }
#endif
}

/* ---- int8 ------------------------------------------------------------------------- */

/* x: nr rows of CP values quantised to [-127, 127] and stored + 128 as
 * unsigned (VNNI multiplies unsigned by signed bytes); xs: their scales.
 * sum_c (q_c + 128) w_c = sum_c q_c w_c + 128 * wsum, so the row sum of the
 * weight takes the offset back out. */
static void cr_lp_int8_rows(float *out, const uint8_t *x, const float *xs, const cr_lp_weight *w,
                            const int8_t *W, const float *sc, const int32_t *ws, const float *b,
                            int nr, int ldo) {
    const int CP = w->CP, NC = CP / 4;
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
    for (int blk = 0; blk < w->NB; blk++) {
        const int8_t *wb = W + (size_t)blk * 16 * CP;
        __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512(), _mm512_setzero_si512()};
        for (int cr = 0; cr < NC; cr++) {
            __m512i wv = _mm512_loadu_si512((const void *)(wb + (size_t)cr * 64));
            for (int r = 0; r < nr; r++) {
                uint32_t quad;
                memcpy(&quad, x + (size_t)r * CP + 4 * cr, 4);
                acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32((int)quad), wv);
            }
        }
        int n = w->OC - blk * 16 < 16 ? w->OC - blk * 16 : 16;
        __mmask16 k = (__mmask16)((1u << n) - 1u);
        __m512 bv = b ? _mm512_maskz_loadu_ps(k, b + blk * 16) : _mm512_setzero_ps();
        __m512 sv = _mm512_maskz_loadu_ps(k, sc + blk * 16);
        __m512i off = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(k, ws + blk * 16), 7);
        for (int r = 0; r < nr; r++) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r], off));
            v = _mm512_fmadd_ps(v, _mm512_mul_ps(sv, _mm512_set1_ps(xs[r])), bv);
            _mm512_mask_storeu_ps(out + (size_t)r * ldo + blk * 16, k, v);
        }
    }
#else
    for (int blk = 0; blk < w->NB; blk++) {
        const int8_t *wb = W + (size_t)blk * 16 * CP;
        int n = w->OC - blk * 16 < 16 ? w->OC - blk * 16 : 16;
        for (int r = 0; r < nr; r++)
            for (int lane = 0; lane < n; lane++) {
                int32_t acc = 0;
                for (int cr = 0; cr < NC; cr++)
                    for (int j = 0; j < 4; j++)
                        acc += (int32_t)x[(size_t)r * CP + 4 * cr + j] *
                               (int32_t)wb[((size_t)cr * 16 + lane) * 4 + j];
                int o = blk * 16 + lane;
                out[(size_t)r * ldo + o] =
                    (float)(acc - 128 * ws[o]) * sc[o] * xs[r] + (b ? b[o] : 0.0f);
            }
    }
#endif
}

void cr_lp_linear(float *out, const float *inp, const cr_lp_weight *w, int g, const float *b,
                  int B, int ldi, int ldo, void *scratch) {
    CR_ASSERT(w && g >= 0 && g < w->G && ldi >= w->C && ldo >= w->OC);
    const int C = w->C, CP = w->CP;
    uint8_t *s = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    for (int r0 = 0; r0 < B; r0 += 4) {
        int nr = B - r0 < 4 ? B - r0 : 4;
        if (w->p == CR_PRECISION_BF16) {
            uint16_t *x = (uint16_t *)s;
            for (int r = 0; r < nr; r++) {
                const float *src = inp + (size_t)(r0 + r) * ldi;
                uint16_t *d = x + (size_t)r * CP;
                for (int c = 0; c < C; c++) d[c] = cr_bf16_from_f32(src[c]);
                for (int c = C; c < CP; c++) d[c] = 0;
            }
            cr_lp_bf16_rows(out + (size_t)r0 * ldo, x, w,
                            (const uint16_t *)w->data + (size_t)g * w->group_elems, b, nr, ldo);
        } else {
            float xs[4];
            uint8_t *x = s;
            for (int r = 0; r < nr; r++) {
                const float *src = inp + (size_t)(r0 + r) * ldi;
                float amax = 0.0f;
                for (int c = 0; c < C; c++) amax = fabsf(src[c]) > amax ? fabsf(src[c]) : amax;
                xs[r] = amax > 0.0f ? amax / 127.0f : 1.0f;
                float inv = 1.0f / xs[r];
                uint8_t *d = x + (size_t)r * CP;
                for (int c = 0; c < C; c++) {
                    long q = lrintf(src[c] * inv);
                    q = q > 127 ? 127 : q < -127 ? -127 : q;
                    d[c] = (uint8_t)(q + 128);
                }
                for (int c = C; c < CP; c++) d[c] = 128; /* zero, offset */
            }
            size_t so = (size_t)g * w->NB * 16;
            cr_lp_int8_rows(out + (size_t)r0 * ldo, x, xs, w,
                            (const int8_t *)w->data + (size_t)g * w->group_elems,
                            w->scale + so, w->wsum + so, b, nr, ldo);
        }
    }
}
