/*
 * linear_bf16.c - the inference linear with bfloat16 weights: out = inp @
 * w^T + b, w (OC, C) rounded once to bf16 (round to nearest even), inp,
 * out and b in float, every product and sum in float. Half the bytes of a
 * float32 weight, so a decode step, which only streams weights, takes about
 * half the time. Inference only: there is no backward (the decoder refuses
 * one while bf16 weights are in use). Never allocates.
 *
 * Why not AVX512_BF16's dot product instruction: it rounds the input to
 * bf16 as well, an error of up to 2^-8 of every activation, while widening
 * bf16 to float is exact (a 16-bit shift) and costs nothing next to the
 * memory traffic.
 *
 * Legend: B input rows, C input channels, OC output channels, VW float lanes,
 * RB input rows per register tile, JP weight rows per panel.
 *
 * Order of the sums: gemv.c's (chunk c of VW lanes into accumulator c % 4,
 * (a0 + a1) + (a2 + a3), a fixed horizontal sum), then + b[o]. Every output
 * is that sum whatever B, the row's place in a tile or the thread count, so
 * a row's outputs do not depend on the other rows.
 */
#include "level.h"
#include "vec.h"

/* Written branch-free (cr_bf16_from_f32 is a select), so it vectorises
 * for the level: the serving path rounds every input row with it. */
void CR_ISA(cr_bf16_round)(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = cr_bf16_from_f32(src[i]);
}

#if CR_VF_W >= 16 || CR_NEON
#define CR_BF_RB 4 /* 16 accumulators + 4 weight vectors: 32 registers (zmm or NEON q) */
#elif CR_VF_W >= 8
#define CR_BF_RB 2 /* 16 ymm registers */
#else
#define CR_BF_RB 1
#endif
#define CR_BF_JP 64 /* weight rows per panel: 64 x C bf16 stay in L2 across row tiles */

/* The tile's loops are short and constant after inlining; unrolled, the
 * accumulators stay in registers (GCC keeps them in memory otherwise). */
#define CR_BF_UNROLL CR_PRAGMA_(GCC unroll 4)

/* rb input rows (a constant after inlining) against weight row j. */
static inline __attribute__((always_inline)) void
cr_bf16_tile(int rb, float *out, int ldo, const float *inp, int ldi, const uint16_t *w,
             const float *b, int j, int C) {
    cr_vf acc[CR_BF_RB][4];
    CR_BF_UNROLL
    for (int r = 0; r < rb; r++) {
        CR_BF_UNROLL
        for (int q = 0; q < 4; q++) acc[r][q] = vf_zero();
    }
    int k = 0;
    for (; k + 4 * CR_VF_W <= C; k += 4 * CR_VF_W) {
        CR_BF_UNROLL
        for (int q = 0; q < 4; q++) {
            cr_vf wv = vf_load_bf16(w + k + q * CR_VF_W);
            CR_BF_UNROLL
            for (int r = 0; r < rb; r++)
                acc[r][q] = vf_fma(vf_load(inp + (size_t)r * ldi + k + q * CR_VF_W), wv, acc[r][q]);
        }
    }
    /* fewer than four chunks left: they continue the rotation */
    CR_BF_UNROLL
    for (int q = 0; q < 4; q++) {
        if (k < C) {
            int n = C - k < CR_VF_W ? C - k : CR_VF_W;
            cr_vf wv = vf_load_bf16_n(w + k, n);
            CR_BF_UNROLL
            for (int r = 0; r < rb; r++)
                acc[r][q] = vf_fma(vf_load_n(inp + (size_t)r * ldi + k, n), wv, acc[r][q]);
        }
        k += CR_VF_W;
    }
    CR_BF_UNROLL
    for (int r = 0; r < rb; r++) {
        float s = vf_sum(vf_add(vf_add(acc[r][0], acc[r][1]), vf_add(acc[r][2], acc[r][3])));
        out[(size_t)r * ldo + j] = b ? s + b[j] : s;
    }
}

/* One input row against weight row j: the tile's sums, in gemv.c's order
 * (a decode step runs only this, at the speed of memory). */
CR_VF_DOT_DEFINE(cr_bf16_dot, uint16_t, vf_load_bf16, vf_load_bf16_n)

/* Weight rows j0..j1 against every input row: tiles of RB rows, the
 * leftover rows one at a time (the same sums). */
static void cr_bf16_panel(float *out, const float *inp, const uint16_t *w, const float *b,
                          int B, int C, int j0, int j1, int ldi, int ldo) {
    int i = 0;
    for (; i + CR_BF_RB <= B; i += CR_BF_RB)
        for (int j = j0; j < j1; j++)
            cr_bf16_tile(CR_BF_RB, out + (size_t)i * ldo, ldo, inp + (size_t)i * ldi, ldi,
                         w + (size_t)j * C, b, j, C);
    for (; i < B; i++) {
        const float *x = inp + (size_t)i * ldi;
        float *o = out + (size_t)i * ldo;
        for (int j = j0; j < j1; j++) {
            float s = cr_bf16_dot(x, w + (size_t)j * C, C);
            o[j] = b ? s + b[j] : s;
        }
    }
}

void CR_ISA(cr_linear_forward_bf16)(float *out, const float *inp, const uint16_t *w, const float *b,
                            int B, int C, int OC, int ldi, int ldo) {
    CR_ASSERT(out && inp && w && B >= 0 && C >= 0 && OC >= 0);
    CR_ASSERT(ldi >= C && ldo >= OC);
    if (B == 0 || OC == 0) return;
    int np = (OC + CR_BF_JP - 1) / CR_BF_JP;
    /* Threads take contiguous runs of panels (schedule(static)), so each
     * streams one stretch of w; a one-thread call never forks. */
    if (cr_get_threads() == 1 || np == 1 || (double)B * OC * C < (1 << 17)) {
        for (int p = 0; p < np; p++) {
            int j0 = p * CR_BF_JP, j1 = j0 + CR_BF_JP < OC ? j0 + CR_BF_JP : OC;
            cr_bf16_panel(out, inp, w, b, B, C, j0, j1, ldi, ldo);
        }
        return;
    }
    CR_PARALLEL_FOR(1)
    for (int p = 0; p < np; p++) {
        int j0 = p * CR_BF_JP, j1 = j0 + CR_BF_JP < OC ? j0 + CR_BF_JP : OC;
        cr_bf16_panel(out, inp, w, b, B, C, j0, j1, ldi, ldo);
    }
}
