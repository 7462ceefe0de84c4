/*
 * decoder_backward.c - the decoder's backward pass: from the mean
 * cross-entropy of the last forward down to the input embeddings, adding
 * parameter gradients into the workspace's slab. Frozen workspaces have no
 * slab, so every weight-gradient GEMM is skipped (the kernels' NULL rule)
 * and only d loss / d embeddings is computed. Never allocates.
 *
 * Legend: B sequences, T tokens, N = B*T, C dim, H hidden, V vocab,
 * KV key/value width, QKV = C + 2KV.
 */
#include "decoder.h"
#include "decoder_internal.h"

#include <string.h>

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof *p); }

void cr_dec_embed_backward(const cr_decoder *d, cr_dec_ws *ws, const float *demb,
                           const int32_t *ids, int N) {
    float *g = cr_nn_grad(&d->pt, ws->grads, d->tok_emb);
    if (!g) return;
    int C = d->cfg.dim;
    /* Serial in row order: repeated ids add up in a fixed order. */
    for (int r = 0; r < N; r++) {
        if (ids[r] < 0) continue;
        CR_ASSERT(ids[r] < d->cfg.vocab);
        float *gr = g + (size_t)ids[r] * C;
        const float *dr = demb + (size_t)r * C;
        for (int j = 0; j < C; j++) gr[j] += dr[j];
    }
}

/* One block, from dx = dL/d(block output) (in ws->dx) to dL/d(block input)
 * (in ws->dx again). The residual x_out = x_mid + f(x_mid) passes dx
 * through unchanged, so each branch's input gradient is simply added into
 * dx in place:
 *   ffn:  dhg = dx W2;  Llama: dh1, dh3 from SwiGLU, dn = dh1 W1 + dh3 W3;
 *         GPT-2: dh1 = gelu'(h1) dhg, dn = dh1 W1;  dx += norm2'(dn)
 *   attn: dao = dx Wo; dq, dk, dv from attention (then the inverse RoPE
 *         rotation for Llama); dn = [dq dk dv] [Wq; Wk; Wv];  dx += norm1'(dn)
 * Weight gradients (W^T-side products) go to grads when it is not NULL. */
static void cr_dec_block_backward(const cr_decoder *d, cr_dec_ws *ws, int l) {
    const cr_dec_cfg *c = &d->cfg;
    const cr_dec_layer *y = &d->layers[l];
    float *const *W = d->w;
    const cr_ptable *pt = &d->pt;
    float *G = ws->grads;
    int g = c->arch == CR_DEC_GPT2, B = ws->B, T = ws->T, N = B * T, C = c->dim;
    int H = c->hidden_dim, KV = cr_dec_kv(c), QKV = C + 2 * KV, HD = C / c->n_heads;
    cr_dec_acts a = cr_dec_layer_acts(d, ws, l);
    size_t NC = (size_t)N * C, NH = (size_t)N * H;

    /* feed-forward */
    zero(ws->dhg, NH);
    cr_linear_backward(ws->dhg, cr_nn_grad(pt, G, y->w2), cr_nn_grad(pt, G, y->b2), ws->dx,
                       a.hg, W[y->w2], N, H, C, H, C);
    zero(ws->dh1, NH);
    zero(ws->dn, NC);
    if (g) {
        cr_gelu_backward(ws->dh1, ws->dhg, a.h1, NH);
        cr_linear_backward(ws->dn, cr_nn_grad(pt, G, y->w1), cr_nn_grad(pt, G, y->b1), ws->dh1,
                           a.n2, W[y->w1], N, C, H, C, H);
        cr_layernorm_backward(ws->dx, cr_nn_grad(pt, G, y->ffn_norm),
                              cr_nn_grad(pt, G, y->ffn_norm_b), ws->dn, a.xmid, W[y->ffn_norm],
                              a.mean2, a.rstd2, N, C);
    } else {
        zero(ws->dh3, NH);
        cr_swiglu_backward(ws->dh1, ws->dh3, ws->dhg, a.h1, a.h3, NH);
        cr_linear_backward(ws->dn, cr_nn_grad(pt, G, y->w1), NULL, ws->dh1, a.n2, W[y->w1], N,
                           C, H, C, H);
        cr_linear_backward(ws->dn, cr_nn_grad(pt, G, y->w3), NULL, ws->dh3, a.n2, W[y->w3], N,
                           C, H, C, H);
        cr_rmsnorm_backward(ws->dx, cr_nn_grad(pt, G, y->ffn_norm), ws->dn, a.rstd2, a.xmid,
                            W[y->ffn_norm], N, C);
    }

    /* attention */
    zero(ws->dao, NC);
    cr_linear_backward(ws->dao, cr_nn_grad(pt, G, y->wo), cr_nn_grad(pt, G, y->bo), ws->dx,
                       a.ao, W[y->wo], N, C, C, C, C);
    zero(ws->dqkv, (size_t)N * QKV);
    cr_attention_backward(ws->dqkv, ws->dqkv + C, ws->dqkv + C + KV, ws->dsc, ws->dao, a.att,
                          a.qkv, a.qkv + C, a.qkv + C + KV, B, T, c->n_heads, c->n_kv_heads, HD,
                          QKV, QKV);
    zero(ws->dn, NC);
    if (g) {
        cr_linear_backward(ws->dn, cr_nn_grad(pt, G, y->wqkv), cr_nn_grad(pt, G, y->bqkv),
                           ws->dqkv, a.n1, W[y->wqkv], N, C, QKV, C, QKV);
        cr_layernorm_backward(ws->dx, cr_nn_grad(pt, G, y->attn_norm),
                              cr_nn_grad(pt, G, y->attn_norm_b), ws->dn, a.xin, W[y->attn_norm],
                              a.mean1, a.rstd1, N, C);
    } else {
        /* attention saw the rotated q and k: rotate their gradients back */
        cr_rope_backward(ws->dqkv, B, T, c->n_heads, HD, QKV, 0);
        cr_rope_backward(ws->dqkv + C, B, T, c->n_kv_heads, HD, QKV, 0);
        cr_linear_backward(ws->dn, cr_nn_grad(pt, G, y->wq), NULL, ws->dqkv, a.n1, W[y->wq], N,
                           C, C, C, QKV);
        cr_linear_backward(ws->dn, cr_nn_grad(pt, G, y->wk), NULL, ws->dqkv + C, a.n1, W[y->wk],
                           N, C, KV, C, QKV);
        cr_linear_backward(ws->dn, cr_nn_grad(pt, G, y->wv), NULL, ws->dqkv + C + KV, a.n1,
                           W[y->wv], N, C, KV, C, QKV);
        cr_rmsnorm_backward(ws->dx, cr_nn_grad(pt, G, y->attn_norm), ws->dn, a.rstd1, a.xin,
                            W[y->attn_norm], N, C);
    }
}

cr_status cr_dec_backward(const cr_decoder *d, cr_dec_ws *ws, float *demb, cr_error *e) {
    const cr_dec_cfg *c = &d->cfg;
    if (!(ws->flags & CR_DEC_WS_BACKWARD))
        return cr_err(e, CR_ERR_ARG, "decoder backward: the workspace was created without "
                      "CR_DEC_WS_BACKWARD");
    if (ws->B < 1 || ws->pos0 != 0)
        return cr_err(e, CR_ERR_ARG, "decoder backward: needs a forward at position 0 first");
    if (d->wb)
        return cr_err(e, CR_ERR_ARG, "decoder backward: the model multiplies by bf16 copies of "
                      "its weights, which are for inference only (cr_dec_bf16_drop them, then "
                      "run the forward again, to take gradients)");
    const cr_ptable *pt = &d->pt;
    float *G = ws->grads;
    int B = ws->B, T = ws->T, N = B * T, C = c->dim, V = c->vocab;
    size_t NC = (size_t)N * C;

    /* loss = (1/n_valid) sum_rows xent: each counted row gets 1/n_valid */
    zero(ws->dlogits, (size_t)N * V);
    if (ws->n_valid > 0)
        cr_xent_backward(ws->dlogits, ws->lse, ws->logits, ws->targets, N, V,
                         1.0f / (float)ws->n_valid);
    zero(ws->dn, NC);
    cr_linear_backward(ws->dn, cr_nn_grad(pt, G, cr_dec_cls(d)), NULL, ws->dlogits, ws->nf,
                       d->w[cr_dec_cls(d)], N, C, V, C, V);
    const float *xf = cr_dec_layer_acts(d, ws, c->n_layers - 1).xout;
    zero(ws->dx, NC);
    if (c->arch == CR_DEC_GPT2)
        cr_layernorm_backward(ws->dx, cr_nn_grad(pt, G, d->final_norm),
                              cr_nn_grad(pt, G, d->final_norm_b), ws->dn, xf,
                              d->w[d->final_norm], ws->meanf, ws->rstdf, N, C);
    else
        cr_rmsnorm_backward(ws->dx, cr_nn_grad(pt, G, d->final_norm), ws->dn, ws->rstdf, xf,
                            d->w[d->final_norm], N, C);
    for (int l = c->n_layers - 1; l >= 0; l--) cr_dec_block_backward(d, ws, l);

    /* ws->dx is now dL/dx0, x0 = emb (+ pos_emb[t] for GPT-2) */
    float *gpe = cr_nn_grad(pt, G, d->pos_emb);
    if (gpe)
        for (int b = 0; b < B; b++) /* b outer: a fixed summation order per position */
            for (int t = 0; t < T; t++) {
                float *gr = gpe + (size_t)t * C;
                const float *dr = ws->dx + ((size_t)b * T + t) * C;
                for (int j = 0; j < C; j++) gr[j] += dr[j];
            }
    if (demb)
        for (size_t i = 0; i < NC; i++) demb[i] += ws->dx[i];
    if (ws->from_ids) cr_dec_embed_backward(d, ws, ws->dx, ws->ids, N);
    return CR_OK;
}
