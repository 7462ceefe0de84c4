/*
 * qf_attention.c - multi-head attention with an arbitrary additive mask, for
 * the item encoder (Q-Former): queries from one sequence, keys and values
 * from another (or the same), and a (Tq, Tk) mask shared by the batch or
 * given per batch row. It covers the self-attention of [queries; text] under
 * BLIP-2's three masks (with the padding of each row folded in) and the
 * cross-attention of the queries to the collaborative-filtering tokens.
 * No allocation: the caller passes the probability cache and the scratch.
 *
 * Legend: B sequences, Tq query rows, Tk key/value rows per sequence, NH
 * heads, HD head dim (NH * HD = the model width).
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* ---- forward -------------------------------------------------------------------
 * Per (b, h): S = Q K^T / sqrt(HD) + M_b, P = softmax(S) row by row, O = P V.
 * A mask entry of -INFINITY removes a key from a row exactly: its
 * probability is written as 0, not exp(-inf - max) computed, so a row whose
 * every key is masked gets P = 0 and O = 0 instead of NaN (its gradient is
 * then 0 too). Finite mask values are added to the scores as they are (a
 * soft bias). The (b, h) pairs write disjoint blocks of att and out, so
 * they are the parallel loop; cr_sgemm called inside runs on that thread. */
void cr_mha_forward(float *out, float *att, const float *q, const float *k, const float *v,
                    const float *mask, size_t mask_bs, int B, int Tq, int Tk, int NH,
                    int HD, int ldq, int ldkv) {
    CR_ASSERT(out && att && q && k && v && B >= 0 && Tq > 0 && Tk > 0 && NH > 0 && HD > 0);
    CR_ASSERT(ldq >= NH * HD && ldkv >= NH * HD);
    int C = NH * HD, BH = B * NH;
    float scale = (float)(1.0 / sqrt((double)HD));
    int isa = cr_thread_isa(); /* the call's kernel set, for every thread (kernels.h) */
    CR_PARALLEL_FOR(BH > 1 && (size_t)BH * Tq * Tk * HD > CR_PAR_MIN_WORK)
    for (int bh = 0; bh < BH; bh++) {
        cr_set_thread_isa(isa);
        int b = bh / NH, h = bh % NH;
        const float *Q = q + (size_t)b * Tq * ldq + (size_t)h * HD;
        const float *K = k + (size_t)b * Tk * ldkv + (size_t)h * HD;
        const float *Vv = v + (size_t)b * Tk * ldkv + (size_t)h * HD;
        const float *M = mask ? mask + (size_t)b * mask_bs : NULL;
        float *P = att + (size_t)bh * Tq * Tk;
        float *O = out + (size_t)b * Tq * C + (size_t)h * HD;
        cr_sgemm(0, 1, Tq, Tk, HD, scale, Q, ldq, K, ldkv, 0.0f, P, Tk);
        for (int t = 0; t < Tq; t++) {
            float *p = P + (size_t)t * Tk;
            const float *m = M ? M + (size_t)t * Tk : NULL;
            float mx = -INFINITY;
            for (int j = 0; j < Tk; j++) {
                if (m) p[j] += m[j];
                mx = p[j] > mx ? p[j] : mx;
            }
            if (mx == -INFINITY) { /* nothing visible */
                memset(p, 0, sizeof(float) * (size_t)Tk);
                continue;
            }
            double sum = 0.0;
            for (int j = 0; j < Tk; j++) {
                p[j] = p[j] == -INFINITY ? 0.0f : expf(p[j] - mx);
                sum += p[j];
            }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j < Tk; j++) p[j] *= inv;
        }
        cr_sgemm(0, 0, Tq, HD, Tk, 1.0f, P, Tk, Vv, ldkv, 0.0f, O, C);
    }
}

/* ---- backward ------------------------------------------------------------------
 * Per (b, h), with S = s Q K^T + M (s = 1/sqrt(HD)), P = softmax(S), O = P V:
 *   dV = P^T dO,  dP = dO V^T,
 *   dS_tj = P_tj (dP_tj - sum_i dP_ti P_ti)   (the softmax Jacobian),
 *   dQ = s dS K,  dK = s dS^T Q.
 * The mask is a constant added to S, so it has no gradient, and a masked
 * entry has P_tj = 0, hence dS_tj = 0: backward needs no mask at all.
 * Every (b, h) writes its own column block of dq, dk and dv (no grouped
 * heads here), so the pairs are again the parallel loop. */
void cr_mha_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                     const float *att, const float *q, const float *k, const float *v, int B,
                     int Tq, int Tk, int NH, int HD, int ldq, int ldkv) {
    CR_ASSERT(scratch && dout && att && q && k && v && B >= 0 && Tq > 0 && Tk > 0);
    CR_ASSERT(NH > 0 && HD > 0 && ldq >= NH * HD && ldkv >= NH * HD);
    if (!dq && !dk && !dv) return;
    int C = NH * HD, BH = B * NH;
    float scale = (float)(1.0 / sqrt((double)HD));
    int isa = cr_thread_isa(); /* the call's kernel set, for every thread (kernels.h) */
    CR_PARALLEL_FOR(BH > 1 && (size_t)BH * Tq * Tk * HD > CR_PAR_MIN_WORK)
    for (int bh = 0; bh < BH; bh++) {
        cr_set_thread_isa(isa);
        int b = bh / NH, h = bh % NH;
        const float *Q = q + (size_t)b * Tq * ldq + (size_t)h * HD;
        const float *K = k + (size_t)b * Tk * ldkv + (size_t)h * HD;
        const float *Vv = v + (size_t)b * Tk * ldkv + (size_t)h * HD;
        const float *P = att + (size_t)bh * Tq * Tk;
        const float *dO = dout + (size_t)b * Tq * C + (size_t)h * HD;
        float *dS = scratch + (size_t)bh * Tq * Tk;
        if (dv)
            cr_sgemm(1, 0, Tk, HD, Tq, 1.0f, P, Tk, dO, C, 1.0f,
                     dv + (size_t)b * Tk * ldkv + (size_t)h * HD, ldkv);
        if (!dq && !dk) continue;
        cr_sgemm(0, 1, Tq, Tk, HD, 1.0f, dO, C, Vv, ldkv, 0.0f, dS, Tk);
        for (int t = 0; t < Tq; t++) {
            float *d = dS + (size_t)t * Tk;
            const float *p = P + (size_t)t * Tk;
            double dot = 0.0;
            for (int j = 0; j < Tk; j++) dot += (double)d[j] * p[j];
            float fd = (float)dot;
            for (int j = 0; j < Tk; j++) d[j] = p[j] * (d[j] - fd);
        }
        if (dq)
            cr_sgemm(0, 0, Tq, HD, Tk, scale, dS, Tk, K, ldkv, 1.0f,
                     dq + (size_t)b * Tq * ldq + (size_t)h * HD, ldq);
        if (dk)
            cr_sgemm(1, 0, Tk, HD, Tq, scale, dS, Tk, Q, ldq, 1.0f,
                     dk + (size_t)b * Tk * ldkv + (size_t)h * HD, ldkv);
    }
}

/* ---- BLIP-2's masks over [NQ queries; T text tokens] ------------------------------
 * Row i of a sequence sees key j when:
 *   ITC (unimodal): both are queries, or both are text;
 *   ITM (bidirectional): always;
 *   ITG (multimodal causal): j is a query, or both are text and j <= i.
 * Text keys at positions >= len[b] (padding) are hidden from every row. A
 * padding row still sees the queries (ITM, ITG) or its own row's earlier
 * text, so no row is empty unless len[b] = 0 in ITC. */
void cr_qf_mask_fill(float *mask, const int32_t *len, int mode, int B, int NQ, int T) {
    CR_ASSERT(mask && B >= 0 && NQ >= 0 && T >= 0 && mode >= 0 && mode <= 2);
    int S = NQ + T;
    CR_PARALLEL_FOR((size_t)B * S * S > CR_PAR_MIN_WORK)
    for (int b = 0; b < B; b++) {
        int L = len ? len[b] : T;
        float *M = mask + (size_t)b * S * S;
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) {
                int iq = i < NQ, jq = j < NQ, vis;
                if (!jq && j - NQ >= L) vis = 0;
                else if (mode == 1) vis = 1;                      /* ITM */
                else if (mode == 0) vis = iq == jq;               /* ITC */
                else vis = jq || (!iq && j <= i);                 /* ITG */
                M[(size_t)i * S + j] = vis ? 0.0f : -INFINITY;
            }
    }
}
