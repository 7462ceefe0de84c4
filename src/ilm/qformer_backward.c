/*
 * qformer_backward.c - the item encoder's backward pass: from dL/dout (the
 * final LayerNorm outputs, stream-major) to every parameter gradient and,
 * on request, dL/dcf. It walks the forward of qformer.c in reverse and
 * keeps one running gradient of the residual stream (dres); every kernel
 * adds into its gradients, so the scratch inputs are zeroed before use.
 * It never allocates and never prints.
 */
#include "qformer.h"

#include "../kernels/kernels.h"

#include <string.h>

static void cr_qf_zero(float *p, size_t n) { memset(p, 0, sizeof(float) * n); }

void cr_qformer_backward(cr_qformer *m, cr_qformer_ws *w, float *dcf) {
    const cr_qformer_cfg *c = &m->c;
    CR_ASSERT(m->grad && w->B >= 1);
    int B = w->B, T = w->T, W = c->width, F = c->ffn, NQ = c->nq, NKV = c->n_kv;
    int NH = c->heads, HD = W / NH, L = c->layers;
    int S = NQ + T, R = B * S, RQ = B * NQ, RT = B * T, RK = B * NKV;
#define P_(i) cr_qformer_p(m, (i))
#define G_(i) cr_qformer_g(m, (i))
    float *dres = w->dres;
    /* out = LN_f(x_L) */
    cr_qf_zero(dres, (size_t)R * W);
    cr_layernorm_backward(dres, G_(m->ix.lnf_w), G_(m->ix.lnf_b), w->dout, w->xin[L],
                          P_(m->ix.lnf_w), w->lnf_m, w->lnf_r, R, W);
    cr_qf_zero(w->dkv, (size_t)RK * W);
    for (int l = L - 1; l >= 0; l--) {
        const cr_qf_layer_idx *ix = &m->lx[l];
        /* x_{l+1} = x2 + fc2(gelu(fc1(LN2(x2)))) per stream. The residual
         * passes dres through unchanged; the branch adds its input gradient
         * to it, so after this block dres = dL/dx2. */
        for (int s = 0; s < 2; s++) {
            int r0 = s ? RQ : 0, n = s ? RT : RQ;
            if (!n) continue;
            size_t o = (size_t)r0 * W, oF = (size_t)r0 * F;
            cr_qf_zero(w->dF, (size_t)n * F);
            cr_qf_zero(w->dF2, (size_t)n * F);
            cr_qf_zero(w->d1, (size_t)n * W);
            cr_linear_backward(w->dF, G_(s ? ix->fc2t_w : ix->fc2q_w),
                               G_(s ? ix->fc2t_b : ix->fc2q_b), dres + o, w->g[l] + oF,
                               P_(s ? ix->fc2t_w : ix->fc2q_w), n, F, W, F, W);
            cr_gelu_backward(w->dF2, w->dF, w->h[l] + oF, (size_t)n * F);
            cr_linear_backward(w->d1, G_(s ? ix->fc1t_w : ix->fc1q_w),
                               G_(s ? ix->fc1t_b : ix->fc1q_b), w->dF2, w->ln2[l] + o,
                               P_(s ? ix->fc1t_w : ix->fc1q_w), n, W, F, W, F);
            cr_layernorm_backward(dres + o, G_(s ? ix->ln2t_w : ix->ln2q_w),
                                  G_(s ? ix->ln2t_b : ix->ln2q_b), w->d1, w->x2[l] + o,
                                  P_(s ? ix->ln2t_w : ix->ln2q_w), w->ln2_m[l] + r0,
                                  w->ln2_r[l] + r0, n, W);
        }
        /* x2_q = x1_q + co_proj(CrossAttn(cq(LNc(x1_q)), ckv(kv))): the
         * CF tokens' gradient is gathered over layers in dkv. */
        float *dco = w->d1, *dcq = w->d2;
        cr_qf_zero(dco, (size_t)RQ * W);
        cr_linear_backward(dco, G_(ix->co_w), G_(ix->co_b), dres, w->co[l], P_(ix->co_w), RQ, W,
                           W, W, W);
        cr_qf_zero(dcq, (size_t)RQ * W);
        cr_qf_zero(w->dckv, (size_t)RK * 2 * W);
        cr_mha_backward(dcq, w->dckv, w->dckv + W, w->scr, dco, w->catt[l], w->cq[l], w->ckv[l],
                        w->ckv[l] + W, B, NQ, NKV, NH, HD, W, 2 * W);
        cr_linear_backward(w->dkv, G_(ix->ckv_w), G_(ix->ckv_b), w->dckv, w->kv, P_(ix->ckv_w),
                           RK, W, 2 * W, W, 2 * W);
        float *dlnc = w->d1;
        cr_qf_zero(dlnc, (size_t)RQ * W);
        cr_linear_backward(dlnc, G_(ix->cq_w), G_(ix->cq_b), dcq, w->lnc[l], P_(ix->cq_w), RQ, W,
                           W, W, W);
        cr_layernorm_backward(dres, G_(ix->lnc_w), G_(ix->lnc_b), dlnc, w->x1[l], P_(ix->lnc_w),
                              w->lnc_m[l], w->lnc_r[l], RQ, W);
        /* x1 = x + proj(SelfAttn(qkv(LN1(x)))); attention runs per sequence,
         * so its output gradient is packed and its qkv gradient unpacked. */
        float *dao = w->d1;
        cr_qf_zero(dao, (size_t)R * W);
        cr_linear_backward(dao, G_(ix->proj_w), G_(ix->proj_b), dres, w->ao[l], P_(ix->proj_w),
                           R, W, W, W, W);
        cr_qf_pack(w->d2, dao, B, NQ, T, W);
        float *dqkv = w->d1;
        cr_qf_zero(dqkv, (size_t)R * 3 * W);
        cr_mha_backward(dqkv, dqkv + W, dqkv + 2 * W, w->scr, w->d2, w->att[l], w->qkv[l],
                        w->qkv[l] + W, w->qkv[l] + 2 * W, B, S, S, NH, HD, 3 * W, 3 * W);
        cr_qf_unpack(w->d2, dqkv, B, NQ, T, 3 * W);
        float *dln1 = w->d1;
        cr_qf_zero(dln1, (size_t)R * W);
        cr_linear_backward(dln1, G_(ix->qkv_w), G_(ix->qkv_b), w->d2, w->ln1[l], P_(ix->qkv_w),
                           R, W, 3 * W, W, 3 * W);
        cr_layernorm_backward(dres, G_(ix->ln1_w), G_(ix->ln1_b), dln1, w->xin[l],
                              P_(ix->ln1_w), w->ln1_m[l], w->ln1_r[l], R, W);
    }
    /* x_0: every sequence's query rows are the same parameter, so its
     * gradient sums the batch; text rows scatter into the token and position
     * tables (ids repeat, so this loop stays serial). Padding rows carry a
     * zero gradient: nothing downstream reads them. */
    float *dq = G_(m->ix.query);
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < (size_t)NQ * W; i++) dq[i] += dres[(size_t)b * NQ * W + i];
    float *dtok = G_(m->ix.tok_emb), *dpos = G_(m->ix.pos_emb);
    for (int r = 0; r < RT; r++) {
        const float *d = dres + ((size_t)RQ + r) * W;
        float *dt = dtok + (size_t)w->ids[r] * W, *dp = dpos + (size_t)(r % T) * W;
        for (int j = 0; j < W; j++) dt[j] += d[j], dp[j] += d[j];
    }
    /* kv = LN(kv0), kv0 = reshape(cf_w cf + cf_b) + cf_type[kind] */
    float *dkv0 = w->d1;
    cr_qf_zero(dkv0, (size_t)RK * W);
    cr_layernorm_backward(dkv0, G_(m->ix.cf_ln_w), G_(m->ix.cf_ln_b), w->dkv, w->kv0,
                          P_(m->ix.cf_ln_w), w->kv_m, w->kv_r, RK, W);
    float *dtype = G_(m->ix.cf_type);
    for (int r = 0; r < RK; r++)
        for (int j = 0; j < W; j++) dtype[w->kind[r / NKV] * W + j] += dkv0[(size_t)r * W + j];
    cr_linear_backward(dcf, G_(m->ix.cf_w), G_(m->ix.cf_b), dkv0, w->cf, P_(m->ix.cf_w), B,
                       c->d_cf, NKV * W, c->d_cf, NKV * W);
#undef P_
#undef G_
}
