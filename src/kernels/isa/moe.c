/*
 * moe.c - the mixing step of a mixture of experts (MMoE, PLE): each
 * example's output is its gate-weighted sum of selected experts' outputs.
 * The experts themselves and the gate are linear layers elsewhere; this
 * file only mixes, and never allocates.
 *
 * Legend: B examples, E experts computed, S experts this gate selects,
 * H expert output width. experts is (B, E, H) so that all experts' layers
 * can run as one wide GEMM and the mix reads one contiguous block per row.
 */
#include "level.h"

void CR_ISA(cr_moe_mix_forward)(float *out, const float *gate, const float *experts, const int *sel,
                        int B, int S, int E, int H) {
    CR_ASSERT(out && gate && experts && B >= 0 && S >= 0 && E >= 0 && H >= 0);
    CR_ASSERT(sel || S <= E);
    CR_PARALLEL_FOR((size_t)B * S * H > CR_PAR_MIN_WORK)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * H;
        const float *g = gate + (size_t)b * S;
        const float *ex = experts + (size_t)b * E * H;
        for (int h = 0; h < H; h++) o[h] = 0.0f;
        for (int s = 0; s < S; s++) {
            int e = sel ? sel[s] : s;
            CR_ASSERT(e >= 0 && e < E);
            const float *x = ex + (size_t)e * H;
            float gs = g[s];
            for (int h = 0; h < H; h++) o[h] += gs * x[h];
        }
    }
}

/* out_b = sum_s g_bs x_b,sel(s), so
 *   dL/dg_bs         = <dout_b, x_b,sel(s)>
 *   dL/dx_b,sel(s)  += g_bs dout_b
 * (an expert selected twice receives both contributions). Each example
 * writes only its own rows of dgate and dexperts, so threads split
 * examples and no two threads touch the same memory. */
void CR_ISA(cr_moe_mix_backward)(float *dgate, float *dexperts, const float *dout, const float *gate,
                         const float *experts, const int *sel, int B, int S, int E, int H) {
    CR_ASSERT(dout && B >= 0 && S >= 0 && E >= 0 && H >= 0);
    CR_ASSERT(sel || S <= E);
    if (!dgate && !dexperts) return;
    CR_PARALLEL_FOR((size_t)B * S * H > CR_PAR_MIN_WORK)
    for (int b = 0; b < B; b++) {
        const float *dy = dout + (size_t)b * H;
        for (int s = 0; s < S; s++) {
            int e = sel ? sel[s] : s;
            CR_ASSERT(e >= 0 && e < E);
            size_t row = ((size_t)b * E + (size_t)e) * H;
            if (dgate) {
                const float *x = experts + row;
                float acc = 0.0f;
                for (int h = 0; h < H; h++) acc += dy[h] * x[h];
                dgate[(size_t)b * S + s] += acc;
            }
            if (dexperts) {
                float gs = gate[(size_t)b * S + s];
                float *dx = dexperts + row;
                for (int h = 0; h < H; h++) dx[h] += gs * dy[h];
            }
        }
    }
}
