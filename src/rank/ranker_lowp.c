/*
 * ranker_lowp.c - bf16 and int8 weights for the serving forward: packing a
 * Linear weight once at load, and out = inp @ w^T + b with products in the
 * packed precision and sums in fp32 (bf16) or int32 (int8). The products
 * are the active kernel set's (src/kernels/isa/lowp.c: AVX-512 BF16 / VNNI,
 * AVX2, or plain C), the same arithmetic on every level, so results do not
 * depend on the CPU beyond summation order. Serving only: nothing here has a backward, and it never allocates in
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
#include "../kernels/isa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* Rows converted at a time, and outputs per weight panel: the kernels run
 * 4 rows at a time, and reading all of a layer's weights once per 4 rows
 * (880 KB of bf16 for the reference shape's widest layer) made the bf16
 * path slower than fp32; now a panel of 64 outputs (55 KB) stays in L2
 * while 32 converted rows stream past it. */
#define CR_LP_RB 32
#define CR_LP_OB 64

/* CR_LP_RB rows of converted input, each padded to a multiple of 4 values,
 * plus alignment slack. */
size_t cr_lp_scratch_bytes(int C) { return CR_LP_RB * ((size_t)C + 8) * sizeof(float) + 256; }

const char *cr_lp_isa(cr_precision p) {
    const cr_kernel_set *k = cr_kernels_active();
    return p == CR_PRECISION_BF16 ? k->lowp_bf16 : k->lowp_int8;
}

void cr_lp_linear(float *out, const float *inp, const cr_lp_weight *w, int g, const float *b,
                  int B, int ldi, int ldo, void *scratch) {
    CR_ASSERT(w && g >= 0 && g < w->G && ldi >= w->C && ldo >= w->OC);
    const int C = w->C, CP = w->CP, OC = w->OC;
    uint8_t *s = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    size_t so = (size_t)g * w->NB * 16; /* this group's scales and sums */
    float xs[CR_LP_RB];
    for (int r0 = 0; r0 < B; r0 += CR_LP_RB) {
        int nb = B - r0 < CR_LP_RB ? B - r0 : CR_LP_RB;
        for (int r = 0; r < nb; r++) {
            const float *src = inp + (size_t)(r0 + r) * ldi;
            if (w->p == CR_PRECISION_BF16) {
                uint16_t *d = (uint16_t *)s + (size_t)r * CP;
                cr_bf16_round(d, src, (size_t)C);
                for (int c = C; c < CP; c++) d[c] = 0;
            } else {
                xs[r] = cr_int8_quant_row(s + (size_t)r * CP, src, C, CP);
            }
        }
        /* a panel of outputs (whole blocks of 16: W + o0 * CP) against the rows */
        for (int o0 = 0; o0 < OC; o0 += CR_LP_OB) {
            int oc = OC - o0 < CR_LP_OB ? OC - o0 : CR_LP_OB;
            const float *bo = b ? b + o0 : NULL;
            for (int r = 0; r < nb; r += 4) {
                int nr = nb - r < 4 ? nb - r : 4;
                float *o = out + (size_t)(r0 + r) * ldo + o0;
                if (w->p == CR_PRECISION_BF16)
                    cr_lowp_bf16_rows(o, ldo, (const uint16_t *)s + (size_t)r * CP, nr,
                                      (const uint16_t *)w->data + (size_t)g * w->group_elems +
                                          (size_t)o0 * CP,
                                      bo, CP, oc);
                else
                    cr_lowp_int8_rows(o, ldo, s + (size_t)r * CP, xs + r, nr,
                                      (const int8_t *)w->data + (size_t)g * w->group_elems +
                                          (size_t)o0 * CP,
                                      w->scale + so + o0, w->wsum + so + o0, bo, CP, oc);
            }
        }
    }
}
