/*
 * attention.c - causal multi-head self-attention with grouped-query heads
 * (Llama's n_kv_heads <= n_heads; GPT-2 is the case NKV = NH), and the
 * rotary position embedding applied to its queries and keys. The products
 * go through cr_sgemm one (sequence, head) at a time; nothing is allocated,
 * so the caller supplies the probability cache and the backward scratch.
 *
 * Legend: B sequences, T (Tq) query tokens, Tk keys seen, Tkv rows of the
 * key/value buffer per sequence, NH query heads, NKV key/value heads, HD
 * head dim, G = NH / NKV query heads per key/value head.
 */
#include "level.h"
#include "vmath.h"

#include <math.h>
#include <string.h>

/* ---- rotary positions ---------------------------------------------------------
 * llama2.c's convention: within each head, the pair (x[2i], x[2i+1]) is
 * rotated by theta = pos * 10000^(-2i/HD):
 *   x'[2i]   = x[2i] cos - x[2i+1] sin
 *   x'[2i+1] = x[2i] sin + x[2i+1] cos
 * Angles are formed in double (pos * freq loses bits in float at long
 * positions) and rounded once. Threads split tokens; every head of a token
 * shares the same angles, so each (cos, sin) pair is computed once per
 * token and pair index. */
static void cr_rope_apply(float *x, int B, int T, int NH, int HD, int ld, int pos0,
                          double sign) {
    CR_ASSERT(x && HD > 0 && HD % 2 == 0 && NH > 0 && ld >= NH * HD && pos0 >= 0);
    int N = B * T;
    CR_PARALLEL_FOR((size_t)N * NH * HD > CR_PAR_MIN_WORK)
    for (int r = 0; r < N; r++) {
        int pos = pos0 + r % T;
        float *row = x + (size_t)r * ld;
        for (int i = 0; i < HD / 2; i++) {
            double th = (double)pos * pow(10000.0, -2.0 * i / HD);
            float c = (float)cos(th), s = (float)(sign * sin(th));
            for (int h = 0; h < NH; h++) {
                float *p = row + (size_t)h * HD + 2 * i;
                float a = p[0], b = p[1];
                p[0] = a * c - b * s;
                p[1] = a * s + b * c;
            }
        }
    }
}

void CR_ISA(cr_rope_forward)(float *x, int B, int T, int NH, int HD, int ld, int pos0) {
    cr_rope_apply(x, B, T, NH, HD, ld, pos0, 1.0);
}

/* y = R x with R orthogonal, so dL/dx = R^T dL/dy = R(-theta) dL/dy. */
void CR_ISA(cr_rope_backward)(float *dx, int B, int T, int NH, int HD, int ld, int pos0) {
    cr_rope_apply(dx, B, T, NH, HD, ld, pos0, -1.0);
}

/* ---- attention forward -------------------------------------------------------- */

/* Per (b, h): S = Q K^T / sqrt(HD) over the Tk = pos0 + Tq visible keys,
 * then a masked softmax row by row (query t sees keys 0 .. pos0 + t; the
 * rest of the row is set to exactly 0, so the P V product adds nothing
 * from the future), then out = P V. The (b, h) pairs write disjoint blocks
 * of att and out, so they are the parallel loop; cr_sgemm called inside a
 * parallel region runs on the calling thread. */
void CR_ISA(cr_attention_forward)(float *out, float *att, const float *q, const float *k,
                          const float *v, int B, int Tq, int Tkv, int pos0, int NH, int NKV,
                          int HD, int ldq, int ldkv) {
    CR_ASSERT(out && att && q && k && v && B >= 0 && Tq > 0 && pos0 >= 0);
    CR_ASSERT(NKV > 0 && NH % NKV == 0 && HD > 0 && Tkv >= pos0 + Tq);
    CR_ASSERT(ldq >= NH * HD && ldkv >= NKV * HD);
    int Tk = pos0 + Tq, G = NH / NKV, C = NH * HD;
    float scale = (float)(1.0 / sqrt((double)HD));
    int BH = B * NH;
    CR_PARALLEL_FOR(BH > 1 && (size_t)BH * Tq * Tk * HD > CR_PAR_MIN_WORK)
    for (int bh = 0; bh < BH; bh++) {
        int b = bh / NH, h = bh % NH, g = h / G;
        const float *Q = q + (size_t)b * Tq * ldq + (size_t)h * HD;
        const float *K = k + (size_t)b * Tkv * ldkv + (size_t)g * HD;
        const float *Vv = v + (size_t)b * Tkv * ldkv + (size_t)g * HD;
        float *P = att + (size_t)bh * Tq * Tk;
        float *O = out + (size_t)b * Tq * C + (size_t)h * HD;
        cr_sgemm(0, 1, Tq, Tk, HD, scale, Q, ldq, K, ldkv, 0.0f, P, Tk);
        for (int t = 0; t < Tq; t++) {
            float *p = P + (size_t)t * Tk;
            int n = pos0 + t + 1; /* visible keys */
            float mx = -INFINITY;
            for (int j = 0; j < n; j++) mx = p[j] > mx ? p[j] : mx;
            for (int j = 0; j < n; j++) p[j] = cr_vexpf(p[j] - mx); /* vectorises */
            double sum = 0.0;
            for (int j = 0; j < n; j++) sum += p[j];
            float inv = (float)(1.0 / sum);
            for (int j = 0; j < n; j++) p[j] *= inv;
            for (int j = n; j < Tk; j++) p[j] = 0.0f;
        }
        cr_sgemm(0, 0, Tq, HD, Tk, 1.0f, P, Tk, Vv, ldkv, 0.0f, O, C);
    }
}

/* ---- attention backward ------------------------------------------------------
 * Derivation, per (b, h) with S = Q K^T * s (s = 1/sqrt(HD)), P = softmax(S)
 * row-wise over the visible keys and O = P V:
 *   dV = P^T dO, dP = dO V^T;
 *   softmax: dS_tj = P_tj (dP_tj - sum_i dP_ti P_ti) (masked P_tj = 0 gives
 *   dS_tj = 0, so the mask needs no special case);
 *   dQ = s dS K, dK = s dS^T Q.
 * The parallel loop runs over (b, g) key/value groups: dK and dV of a group
 * receive all its G query heads in order h = g*G .. g*G+G-1, so no two
 * threads write the same gradient and the sum order is fixed. dQ of each
 * head belongs to exactly one group. */
void CR_ISA(cr_attention_backward)(float *dq, float *dk, float *dv, float *scratch,
                           const float *dout, const float *att, const float *q,
                           const float *k, const float *v, int B, int T, int NH, int NKV,
                           int HD, int ldq, int ldkv) {
    CR_ASSERT(scratch && dout && att && q && k && v && B >= 0 && T > 0);
    CR_ASSERT(NKV > 0 && NH % NKV == 0 && HD > 0);
    if (!dq && !dk && !dv) return;
    int G = NH / NKV, C = NH * HD;
    float scale = (float)(1.0 / sqrt((double)HD));
    int BG = B * NKV;
    CR_PARALLEL_FOR(BG > 1 && (size_t)B * NH * T * T * HD > CR_PAR_MIN_WORK)
    for (int bg = 0; bg < BG; bg++) {
        int b = bg / NKV, g = bg % NKV;
        const float *K = k + (size_t)b * T * ldkv + (size_t)g * HD;
        const float *Vv = v + (size_t)b * T * ldkv + (size_t)g * HD;
        for (int h = g * G; h < (g + 1) * G; h++) {
            size_t bh = (size_t)b * NH + h;
            const float *P = att + bh * T * T;
            const float *dO = dout + (size_t)b * T * C + (size_t)h * HD;
            const float *Q = q + (size_t)b * T * ldq + (size_t)h * HD;
            float *dS = scratch + bh * T * T;
            if (dv)
                cr_sgemm(1, 0, T, HD, T, 1.0f, P, T, dO, C, 1.0f,
                         dv + (size_t)b * T * ldkv + (size_t)g * HD, ldkv);
            if (!dq && !dk) continue;
            /* dP into the scratch, then turned into dS in place */
            cr_sgemm(0, 1, T, T, HD, 1.0f, dO, C, Vv, ldkv, 0.0f, dS, T);
            for (int t = 0; t < T; t++) {
                float *d = dS + (size_t)t * T;
                const float *p = P + (size_t)t * T;
                double dot = 0.0;
                for (int j = 0; j <= t; j++) dot += (double)d[j] * p[j];
                float fd = (float)dot;
                for (int j = 0; j <= t; j++) d[j] = p[j] * (d[j] - fd);
                for (int j = t + 1; j < T; j++) d[j] = 0.0f;
            }
            if (dq)
                cr_sgemm(0, 0, T, HD, T, scale, dS, T, K, ldkv, 1.0f,
                         dq + (size_t)b * T * ldq + (size_t)h * HD, ldq);
            if (dk)
                cr_sgemm(1, 0, T, HD, T, scale, dS, T, Q, ldq, 1.0f,
                         dk + (size_t)b * T * ldkv + (size_t)g * HD, ldkv);
        }
    }
}
