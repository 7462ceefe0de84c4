/*
 * decoder_bf16.c - bfloat16 copies of the decoder's matrices for inference:
 * which tensors get one (every weight the forward multiplies by, the
 * classifier included), rounding them into one slab, and freeing it. The
 * forward (decoder.c) reads a copy wherever one exists; backward refuses
 * while they do. The float32 weights are never touched.
 *
 * Legend: C dim, V vocab, L layers.
 */
#include "decoder.h"

#include "../kernels/kernels.h"

#include <string.h>

/* Mark the matrices of one model in want[] (pt.n flags). */
static void cr_dec_bf16_pick(const cr_decoder *d, unsigned char *want) {
    memset(want, 0, (size_t)d->pt.n);
    for (int l = 0; l < d->cfg.n_layers; l++) {
        const cr_dec_layer *y = &d->layers[l];
        const int m[] = {y->wq, y->wk, y->wv, y->wqkv, y->wo, y->w1, y->w2, y->w3};
        for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
            if (m[i] >= 0) want[m[i]] = 1;
    }
    want[cr_dec_cls(d)] = 1; /* tok_emb when tied: its lookup keeps the float rows */
}

void cr_dec_bf16_drop(cr_decoder *d) {
    if (!d) return;
    cr_free(d->wb);
    cr_free(d->wb_data);
    d->wb = NULL;
    d->wb_data = NULL;
}

size_t cr_dec_bf16_bytes(const cr_decoder *d) {
    if (!d->wb) return 0;
    size_t n = 0;
    for (int i = 0; i < d->pt.n; i++)
        if (d->wb[i]) n += d->pt.t[i].numel;
    return n * sizeof(uint16_t);
}

cr_status cr_dec_bf16_make(cr_decoder *d, cr_error *e) {
    cr_dec_bf16_drop(d);
    int n = d->pt.n;
    unsigned char *want = cr_alloc_e((size_t)n, e, "bf16 weight list");
    if (!want) return CR_ERR_NOMEM;
    cr_dec_bf16_pick(d, want);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (want[i]) total += d->pt.t[i].numel;
    uint16_t **wb = cr_alloc_e(sizeof *wb * (size_t)n, e, "bf16 weight pointers");
    uint16_t *slab = wb ? cr_alloc_e(total * sizeof *slab, e, "bf16 weights") : NULL;
    if (!wb || !slab) {
        cr_free(want);
        cr_free(wb);
        return CR_ERR_NOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        wb[i] = NULL;
        if (!want[i]) continue;
        wb[i] = slab + off;
        cr_bf16_round(wb[i], d->w[i], d->pt.t[i].numel);
        off += d->pt.t[i].numel;
    }
    cr_free(want);
    d->wb = wb;
    d->wb_data = slab;
    return CR_OK;
}
