/*
 * weight.c - a layer's weight in any of its forms, and the one linear over
 * it: out = inp @ W^T + b (then ReLU when asked), whatever form W has.
 *
 *   CR_WEIGHT_F32     row-major fp32 (OC, C): the training GEMM, or
 *                     batch-independent rows (CR_LINEAR_ROWS) for inference
 *   CR_WEIGHT_PACKED  fp32 in cr_linear_pack's order (a loaded model packed
 *                     once): the register-tiled kernel, ReLU fused
 *   CR_WEIGHT_BF16    row-major bfloat16 (OC, C): the decoder's bf16 weights
 *   CR_WEIGHT_LOWP    bf16 or int8 packed for serving (cr_lp_pack, below)
 *
 * Every forward (the ranker's plain and request paths, the decoder) builds
 * a descriptor for the layer it runs and calls cr_linear; which kernel runs
 * a form is decided here and in the active kernel set (isa.h), nowhere else.
 *
 * bf16 and int8 serving weights: packing a Linear weight once at load, and
 * out = inp @ w^T + b with products in the packed precision and sums in
 * fp32 (bf16) or int32 (int8). The products are the active kernel set's
 * (src/kernels/isa/lowp.c: AVX-512 BF16 / VNNI, AVX-512 or AVX2 widening in
 * registers), or, where the set's rule says its reduced kernel is slower
 * than its fp32 one (cr_kernel_set.lowp_bf16_wide, lowp_int8_wide_below),
 * the packed fp32 kernel on the reduced values widened at load. Either way
 * the numbers multiplied are the precision's, so results do not depend on
 * the CPU beyond the fp32 summation. Serving only: nothing here has a
 * backward, and it never allocates in cr_lp_linear.
 *
 * Legend: B rows, C input width (CP padded), OC outputs of one group, G
 * groups (experts), NB blocks of 16 outputs.
 *
 * Narrow layout (both precisions): per group, NB = ceil(OC/16) blocks of 16
 * outputs; inside a block, input channels in runs of R (R = 2 for bf16, 4
 * for int8) with the 16 outputs' R values side by side:
 *     blk[(cr * 16 + lane) * R + j] = w[o = 16*blk + lane][c = cr*R + j]
 * which is exactly the operand of _mm512_dpbf16_ps / _mm512_dpbusd_epi32
 * when the input's R values are broadcast to every lane. Padding is zero.
 * Wide layout: per group, cr_linear_pack's of the (OC, C) reduced values.
 */
#include "isa.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cr_lp_weight {
    cr_precision p;
    int      G, OC, C, CP, NB, R;
    size_t   group_elems;  /* packed values (narrow) or floats (wide) per group */
    void    *data;         /* narrow: uint16_t (bf16) or int8_t values, else NULL */
    float   *wide;         /* wide: the same values as floats, cr_linear_pack's layout */
    float   *scale;        /* int8: (G, NB*16) per-row scale */
    int32_t *wsum;         /* int8: (G, NB*16) sum of a row's quantised values */
};

/* Whether a weight of precision p runs widened on the active kernel set:
 * its reduced values (bf16, or int8 times the row's scale) as floats in the
 * packed fp32 layout, inputs rounded (or quantised and scaled back) the
 * same way as for the reduced kernels, so the products are those of the
 * precision and only the fp32 summation differs. */
static int cr_lp_widens(cr_precision p, int C) {
    const cr_kernel_set *k = cr_kernels_active();
    return p == CR_PRECISION_BF16 ? k->lowp_bf16_wide : C < k->lowp_int8_wide_below;
}

/* One row quantised to int8 (symmetric, per row: the largest magnitude ->
 * 127): q values as floats into dst, returns the scale. */
static float cr_lp_quant_weight_row(float *dst, const float *row, int C, int32_t *sum) {
    float amax = 0.0f;
    for (int c = 0; c < C; c++) amax = fabsf(row[c]) > amax ? fabsf(row[c]) : amax;
    float sc = amax > 0.0f ? amax / 127.0f : 1.0f, inv = 1.0f / sc;
    int32_t s = 0;
    for (int c = 0; c < C; c++) {
        long q = lrintf(row[c] * inv);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        dst[c] = (float)q;
        s += (int32_t)q;
    }
    *sum = s;
    return sc;
}

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
    int wide = cr_lp_widens(p, C);
    size_t esz = p == CR_PRECISION_BF16 ? 2 : 1;
    lw->group_elems = wide ? cr_linear_pack_floats(OC, C) : (size_t)lw->NB * 16 * (size_t)lw->CP;
    /* the reduced values of one group as floats, (OC, C) */
    float *vals = cr_alloc((size_t)OC * C * sizeof(float));
    if (wide) lw->wide = cr_alloc((size_t)G * lw->group_elems * sizeof(float));
    else lw->data = cr_alloc((size_t)G * lw->group_elems * esz);
    if (p == CR_PRECISION_INT8) {
        lw->scale = cr_alloc((size_t)G * lw->NB * 16 * sizeof(float));
        lw->wsum = cr_alloc((size_t)G * lw->NB * 16 * sizeof(int32_t));
    }
    if (!vals || !(lw->data || lw->wide) ||
        (p == CR_PRECISION_INT8 && (!lw->scale || !lw->wsum))) {
        cr_free(vals);
        cr_lp_free(lw);
        return cr_err(e, CR_ERR_NOMEM, "out of memory packing weights (%d x %d)", G * OC, C);
    }
    const int R = lw->R;
    for (int g = 0; g < G; g++) {
        for (int o = 0; o < OC; o++) {
            const float *row = w + ((size_t)g * OC + o) * C;
            float *v = vals + (size_t)o * C;
            if (p == CR_PRECISION_INT8) {
                size_t so = (size_t)g * lw->NB * 16 + o;
                lw->scale[so] = cr_lp_quant_weight_row(v, row, C, &lw->wsum[so]);
            } else {
                for (int c = 0; c < C; c++) v[c] = cr_bf16_to_f32(cr_bf16_from_f32(row[c]));
            }
            if (wide) continue;
            int blk = o / 16, lane = o % 16;
            size_t base = (size_t)g * lw->group_elems + (size_t)blk * 16 * lw->CP;
            for (int c = 0; c < C; c++) {
                size_t at = base + ((size_t)(c / R) * 16 + lane) * R + (size_t)(c % R);
                if (p == CR_PRECISION_BF16) ((uint16_t *)lw->data)[at] = cr_bf16_from_f32(v[c]);
                else ((int8_t *)lw->data)[at] = (int8_t)v[c];
            }
        }
        if (!wide) continue;
        if (p == CR_PRECISION_INT8) /* the quantised weights scaled back */
            for (int o = 0; o < OC; o++)
                for (int c = 0; c < C; c++)
                    vals[(size_t)o * C + c] *= lw->scale[(size_t)g * lw->NB * 16 + o];
        cr_linear_pack(lw->wide + (size_t)g * lw->group_elems, vals, OC, C);
    }
    cr_free(vals);
    *out = lw;
    return CR_OK;
}

void cr_lp_free(cr_lp_weight *w) {
    if (!w) return;
    cr_free(w->data);
    cr_free(w->wide);
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

/* The widened path converts CR_LP_WB rows at a time into floats (a
 * multiple of every level's packed tile height, 12, 6 and 4) and hands them
 * to the packed fp32 kernel in one call. */
#define CR_LP_WB 240

/* Narrow: CR_LP_RB rows of converted input, each padded to a multiple of 4
 * values; wide: CR_LP_WB rows of C floats; plus
 * alignment slack. */
size_t cr_lp_scratch_bytes(int C) {
    size_t narrow = CR_LP_RB * ((size_t)C + 8) * sizeof(float);
    size_t wide = CR_LP_WB * (size_t)C * sizeof(float);
    return (narrow > wide ? narrow : wide) + 256;
}

const char *cr_lp_isa(cr_precision p) {
    const cr_kernel_set *k = cr_kernels_active();
    return p == CR_PRECISION_BF16 ? k->lowp_bf16 : k->lowp_int8;
}

/* The widened path: each input row rounded to bf16 (or quantised to int8
 * and scaled back) as floats, then the packed fp32 kernel on the widened
 * weights with the bias. */
static void cr_lp_linear_wide(float *out, const float *inp, const cr_lp_weight *w, int g,
                              const float *b, int B, int ldi, int ldo, void *scratch) {
    const int C = w->C, OC = w->OC;
    float *x = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const float *wp = w->wide + (size_t)g * w->group_elems;
    for (int r0 = 0; r0 < B; r0 += CR_LP_WB) {
        int nb = B - r0 < CR_LP_WB ? B - r0 : CR_LP_WB;
        cr_lowp_round_rows(x, inp + (size_t)r0 * ldi, nb, C, ldi, w->p == CR_PRECISION_INT8);
        cr_linear_forward_packed(out + (size_t)r0 * ldo, x, wp, b, nb, C, OC, C, ldo, 0);
    }
}

void cr_lp_linear(float *out, const float *inp, const cr_lp_weight *w, int g, const float *b,
                  int B, int ldi, int ldo, void *scratch) {
    CR_ASSERT(w && g >= 0 && g < w->G && ldi >= w->C && ldo >= w->OC);
    if (w->wide) {
        cr_lp_linear_wide(out, inp, w, g, b, B, ldi, ldo, scratch);
        return;
    }
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

/* ---- the one linear --------------------------------------------------------------- */

int cr_linear_fuses_relu(const cr_weight *w) { return w->form == CR_WEIGHT_PACKED; }

/* ReLU over a (B, OC) block of row stride ldo: one pass when contiguous. */
static void cr_linear_relu(float *out, int B, int OC, int ldo) {
    if (ldo == OC) {
        cr_relu_forward(out, out, (size_t)B * OC);
        return;
    }
    for (int i = 0; i < B; i++) /* a column slice: no threads per row */
        for (int j = 0; j < OC; j++) {
            float *o = out + (size_t)i * ldo + j;
            *o = *o > 0.0f ? *o : 0.0f;
        }
}

void cr_linear(float *out, const float *inp, const cr_weight *w, const float *b, int B, int ldi,
               int ldo, int flags, void *scratch) {
    CR_ASSERT(out && inp && w && w->w && B >= 0 && ldi >= w->C && ldo >= w->OC);
    const int C = w->C, OC = w->OC, relu = (flags & CR_LINEAR_RELU) != 0;
    switch (w->form) {
    case CR_WEIGHT_PACKED:
        cr_linear_forward_packed(out, inp, w->w, b, B, C, OC, ldi, ldo, relu);
        return;
    case CR_WEIGHT_LOWP:
        CR_ASSERT(scratch);
        cr_lp_linear(out, inp, w->w, w->g, b, B, ldi, ldo, scratch);
        break;
    case CR_WEIGHT_BF16:
        cr_linear_forward_bf16(out, inp, w->w, b, B, C, OC, ldi, ldo);
        break;
    case CR_WEIGHT_F32:
        (flags & CR_LINEAR_ROWS ? cr_linear_forward_rows : cr_linear_forward)(out, inp, w->w, b,
                                                                             B, C, OC, ldi, ldo);
        break;
    }
    if (relu) cr_linear_relu(out, B, OC, ldo);
}
