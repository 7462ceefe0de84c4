/*
 * packed.c - a parameter table's matrices packed for the inference linear
 * (cr_linear_pack), in one slab beside the parameters. Scoring a thousand
 * candidates with the blocked GEMM repacks every weight on every call;
 * packing once when a model is loaded for scoring removes that copy. The
 * slab is a snapshot: a model whose parameters change afterwards (a
 * training step, a reload) must be packed again, which is why training
 * never uses it.
 *
 * Legend: G groups (the experts of a per-expert layer), OC rows, C columns.
 */
#include "nn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A matrix is a 2-D (OC, C) tensor or a 3-D (G, OC, C) bank of them. */
static int cr_nn_is_matrix(const cr_tensor_info *t) { return t->ndim == 2 || t->ndim == 3; }

static void cr_nn_dims(const cr_tensor_info *t, int *G, int *OC, int *C) {
    *G = t->ndim == 3 ? (int)t->shape[0] : 1;
    *OC = (int)t->shape[t->ndim - 2];
    *C = (int)t->shape[t->ndim - 1];
}

cr_status cr_nn_pack(cr_nn_packed *pk, const cr_ptable *pt, const float *params, cr_error *e) {
    pk->data = NULL;
    pk->off = NULL;
    pk->mat = NULL;
    pk->n = 0;
    size_t *off = malloc(((size_t)pt->n + 1) * sizeof *off);
    unsigned char *mat = malloc((size_t)pt->n + 1);
    if (!off || !mat) {
        free(off);
        free(mat);
        return cr_err(e, CR_ERR_NOMEM, "out of memory (packed weight offsets)");
    }
    size_t total = 0;
    for (int i = 0; i < pt->n; i++) {
        const cr_tensor_info *t = &pt->t[i];
        /* biases of a per-expert layer are (G, OC) too, but never multiplied */
        mat[i] = cr_nn_is_matrix(t) && !(t->flags & CR_PARAM_NO_DECAY);
        off[i] = total;
        if (mat[i]) {
            int G, OC, C;
            cr_nn_dims(t, &G, &OC, &C);
            total += (size_t)G * cr_linear_pack_floats(OC, C);
        } else {
            total += t->numel;
        }
        total = (total + 15) & ~(size_t)15; /* each tensor on a cache line */
    }
    float *data = cr_alloc_e((total ? total : 1) * sizeof(float), e, "packed weights");
    if (!data) {
        free(off);
        free(mat);
        return CR_ERR_NOMEM;
    }
    float *P = (float *)params;
    for (int i = 0; i < pt->n; i++) {
        const float *w = cr_ptable_ptr(pt, P, i);
        if (!mat[i]) {
            memcpy(data + off[i], w, pt->t[i].numel * sizeof(float));
            continue;
        }
        int G, OC, C;
        cr_nn_dims(&pt->t[i], &G, &OC, &C);
        size_t per = cr_linear_pack_floats(OC, C);
        for (int g = 0; g < G; g++)
            cr_linear_pack(data + off[i] + (size_t)g * per, w + (size_t)g * OC * C, OC, C);
    }
    pk->data = data;
    pk->off = off;
    pk->mat = mat;
    pk->n = pt->n;
    return CR_OK;
}

void cr_nn_packed_free(cr_nn_packed *pk) {
    if (!pk) return;
    cr_free(pk->data);
    free(pk->off);
    free(pk->mat);
    pk->data = NULL;
    pk->off = NULL;
    pk->mat = NULL;
    pk->n = 0;
}

const float *cr_nn_packed_w(const cr_nn_packed *pk, const cr_ptable *pt, int idx, int g) {
    if (!pk || !pk->data || idx < 0 || idx >= pk->n || !pk->mat[idx]) return NULL;
    int G, OC, C;
    cr_nn_dims(&pt->t[idx], &G, &OC, &C);
    CR_ASSERT(g >= 0 && g < G);
    return pk->data + pk->off[idx] + (size_t)g * cr_linear_pack_floats(OC, C);
}

const float *cr_nn_packed_copy(const cr_nn_packed *pk, int idx) {
    if (!pk || !pk->data || idx < 0 || idx >= pk->n || pk->mat[idx]) return NULL;
    return pk->data + pk->off[idx];
}

cr_weight cr_nn_weight(const cr_nn_weights *W, int widx, int bidx, int g, const float **b) {
    const cr_tensor_info *t = &W->pt->t[widx];
    int G, OC, C;
    cr_nn_dims(t, &G, &OC, &C);
    CR_ASSERT(cr_nn_is_matrix(t) && g >= 0 && g < G);
    cr_weight w = {.form = CR_WEIGHT_F32, .OC = OC, .C = C, .g = g};
    float *P = (float *)W->params;
    const float *bias = bidx >= 0 ? cr_ptable_ptr(W->pt, P, bidx) : NULL;
    const float *wp = W->rows ? cr_nn_packed_w(W->pk, W->pt, widx, g) : NULL;
    if (W->rows && W->lp && W->lp[widx]) {
        w.form = CR_WEIGHT_LOWP;
        w.w = W->lp[widx];
    } else if (wp) {
        /* the packed snapshot's bias too: one snapshot */
        w.form = CR_WEIGHT_PACKED;
        w.w = wp;
        if (bidx >= 0) bias = cr_nn_packed_copy(W->pk, bidx);
    } else {
        w.w = cr_ptable_ptr(W->pt, P, widx) + (size_t)g * OC * C;
    }
    if (b) *b = bias ? bias + (size_t)g * OC : NULL;
    return w;
}

void cr_nn_linear(const cr_nn_weights *W, int widx, int bidx, int g, float *out,
                  const float *inp, int B, int ldi, int ldo, int relu) {
    const float *b;
    cr_weight w = cr_nn_weight(W, widx, bidx, g, &b);
    cr_linear(out, inp, &w, b, B, ldi, ldo,
              (W->rows ? CR_LINEAR_ROWS : 0) | (relu ? CR_LINEAR_RELU : 0), W->scratch);
}
