/*
 * decoder_internal.h - what the decoder's own files share and no caller
 * needs: where a layer's activations live inside a workspace, and model
 * setup without weights (the loaders point them somewhere).
 */
#ifndef CR_DECODER_INTERNAL_H
#define CR_DECODER_INTERNAL_H

#include "decoder.h"

static inline int cr_dec_kv(const cr_dec_cfg *c) {
    return c->n_kv_heads * (c->dim / c->n_heads);
}

/* One layer's activations. With BACKWARD each layer has its own copies and
 * the residual stream has 2L+1 slots (layer l reads slot 2l, writes 2l+1
 * after attention and 2l+2 after the feed-forward); without it all layers
 * share one copy and the residual stream is updated in place. */
typedef struct cr_dec_acts {
    float *xin, *xmid, *xout;
    float *n1, *mean1, *rstd1, *qkv, *att, *ao;
    float *n2, *mean2, *rstd2, *h1, *h3, *hg;
} cr_dec_acts;

static inline float *cr_dec_slot(float *base, size_t stride, int i) {
    return base ? base + stride * (size_t)i : NULL;
}

static inline cr_dec_acts cr_dec_layer_acts(const cr_decoder *d, const cr_dec_ws *ws, int l) {
    const cr_dec_cfg *c = &d->cfg;
    size_t N = (size_t)ws->cap_B * ws->cap_T, C = (size_t)c->dim, H = (size_t)c->hidden_dim;
    size_t QKV = C + 2 * (size_t)cr_dec_kv(c);
    size_t A = (size_t)ws->cap_B * c->n_heads * ws->cap_T * ws->cap_T;
    int bw = (ws->flags & CR_DEC_WS_BACKWARD) != 0, i = bw ? l : 0;
    cr_dec_acts a;
    a.xin = cr_dec_slot(ws->x, N * C, bw ? 2 * l : 0);
    a.xmid = cr_dec_slot(ws->x, N * C, bw ? 2 * l + 1 : 0);
    a.xout = cr_dec_slot(ws->x, N * C, bw ? 2 * l + 2 : 0);
    a.n1 = cr_dec_slot(ws->n1, N * C, i);
    a.mean1 = cr_dec_slot(ws->mean1, N, i);
    a.rstd1 = cr_dec_slot(ws->rstd1, N, i);
    a.qkv = cr_dec_slot(ws->qkv, N * QKV, i);
    a.att = cr_dec_slot(ws->att, A, i);
    a.ao = cr_dec_slot(ws->ao, N * C, i);
    a.n2 = cr_dec_slot(ws->n2, N * C, i);
    a.mean2 = cr_dec_slot(ws->mean2, N, i);
    a.rstd2 = cr_dec_slot(ws->rstd2, N, i);
    a.h1 = cr_dec_slot(ws->h1, N * H, i);
    a.h3 = cr_dec_slot(ws->h3, N * H, i);
    a.hg = cr_dec_slot(ws->hg, N * H, i);
    return a;
}

/* Check the config, register every tensor and allocate the pointer array,
 * without a parameter slab (cr_dec_create adds one; the llama2.c loader
 * may point into a map instead). */
cr_status cr_dec_setup(cr_decoder *d, const cr_dec_cfg *cfg, cr_error *e);

#endif /* CR_DECODER_INTERNAL_H */
