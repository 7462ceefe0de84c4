/*
 * ranker_backward.c - the ranker's backward pass: heads -> towers -> gates
 * and mix -> experts or bottom -> x -> row-sparse table gradients, one
 * merged, deduplicated list per table. Adds into the workspace's gradients;
 * must never allocate, print, or write the model.
 *
 * Legend: B batch rows, C_in model input width, K tasks (= towers),
 * E experts, S experts one gate mixes, He expert output width, D table dim.
 */
#include "ranker.h"

#include <string.h>

void cr_ranker_zero_grad(const cr_ranker *m, cr_ranker_ws *ws) {
    CR_ASSERT(ws->train);
    memset(ws->grads, 0, m->params.total * sizeof(float));
    for (int t = 0; t < ws->n_sgrads; t++) ws->sgrads[t].n = 0;
}

void cr_sparse_grad_to_dense(const cr_sparse_grad *g, float *dense, int64_t rows) {
    memset(dense, 0, (size_t)rows * g->D * sizeof(float));
    for (int i = 0; i < g->n; i++) {
        CR_ASSERT(g->rows[i] >= 0 && g->rows[i] < rows);
        memcpy(dense + (size_t)g->rows[i] * g->D, g->vals + (size_t)i * g->D,
               (size_t)g->D * sizeof(float));
    }
}

/* Merge n sorted unique rows (rows, vals) into the sorted unique list g:
 * a two-pointer merge into the scratch, summing rows present in both, then
 * copied back. A table read by several features (item and last_items) gets
 * one entry per row, as the optimizer requires. */
static cr_status cr_merge_rows(cr_ranker_ws *ws, cr_sparse_grad *g, const int32_t *rows,
                               const float *vals, int n, const char *table, cr_error *e) {
    const int D = g->D;
    const size_t rb = (size_t)D * sizeof(float);
    if (g->n == 0) {
        if (n > g->cap) goto full;
        memcpy(g->rows, rows, (size_t)n * sizeof(int32_t));
        memcpy(g->vals, vals, (size_t)n * rb);
        g->n = n;
        return CR_OK;
    }
    int i = 0, j = 0, o = 0;
    while (i < g->n || j < n) {
        if (o >= g->cap || o >= ws->merge_cap) goto full;
        float *dst = ws->merge_vals + (size_t)o * D;
        if (j >= n || (i < g->n && g->rows[i] < rows[j])) {
            ws->merge_rows[o] = g->rows[i];
            memcpy(dst, g->vals + (size_t)i * D, rb);
            i++;
        } else if (i >= g->n || rows[j] < g->rows[i]) {
            ws->merge_rows[o] = rows[j];
            memcpy(dst, vals + (size_t)j * D, rb);
            j++;
        } else {
            const float *a = g->vals + (size_t)i * D, *c = vals + (size_t)j * D;
            ws->merge_rows[o] = rows[j];
            for (int d = 0; d < D; d++) dst[d] = a[d] + c[d];
            i++;
            j++;
        }
        o++;
    }
    memcpy(g->rows, ws->merge_rows, (size_t)o * sizeof(int32_t));
    memcpy(g->vals, ws->merge_vals, (size_t)o * rb);
    g->n = o;
    return CR_OK;
full:
    return cr_err(e, CR_ERR_LIMIT,
                  "table '%s': the sparse gradient holds %d rows and this batch needs more "
                  "(call cr_ranker_zero_grad between batches)",
                  table, g->cap);
}

/* dx (B, C_in) -> per-slot row lists -> merged per-table gradients. */
static cr_status cr_tables_backward(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                                    const float *dx, cr_error *e) {
    const int B = b->B, C = m->C_in;
    for (int i = 0; i < m->n_cat + m->n_multi; i++) {
        int multi = i >= m->n_cat, s = multi ? i - m->n_cat : i;
        int t = multi ? m->multi_table[s] : m->cat_table[s];
        int pi = m->table_param[t];
        if (m->tables.t[pi].flags & CR_PARAM_FROZEN) continue;
        const int D = m->table_dim[t];
        int n = 0;
        if (!multi) {
            cr_embedding_backward(ws->emb_rows, ws->emb_vals, &n, ws->ids + (size_t)s * ws->max_B,
                                  dx + m->cat_col[s], B, D, C, ws->emb_scratch);
        } else {
            const int64_t *off = b->bag_off[s];
            int64_t nnz = off[B] - off[0];
            if (nnz > ws->max_bag_ids)
                return cr_err(e, CR_ERR_LIMIT,
                              "batch: multi slot %d has %lld ids, above the workspace's "
                              "max_bag_ids %lld (create the workspace with a larger one)",
                              s, (long long)nnz, (long long)ws->max_bag_ids);
            cr_bag_backward(ws->emb_rows, ws->emb_vals, &n, off, b->bag_ids[s],
                            dx + m->multi_col[s], B, D, C, m->multi_pool[s], ws->emb_scratch);
        }
        CR_ASSERT(n <= ws->emb_cap);
        CR_TRY(cr_merge_rows(ws, &ws->sgrads[t], ws->emb_rows, ws->emb_vals, n,
                             m->tables.t[pi].name, e));
    }
    return CR_OK;
}

/* The forward pass run backwards. Every activation gradient starts at zero
 * and every kernel adds, so a buffer read by several consumers (x by the
 * experts and every gate; a tower's last layer by several heads; the
 * shared bottom by every tower) sums their contributions.
 *
 * Gate k, with a = x Wg^T + bg, g = softmax(a), mix = sum_s g_s e_sel(s):
 *   dL/dg_s = <dL/dmix, e_sel(s)>,  dL/de_sel(s) += g_s dL/dmix   (mix kernel)
 *   dL/da   = g * (dL/dg - <dL/dg, g>)                            (softmax)
 *   dL/dWg += (dL/da)^T x,  dL/dx += dL/da Wg                     (linear) */
cr_status cr_ranker_backward(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                             const float *dout, cr_error *e) {
    if (!ws->train)
        return cr_err(e, CR_ERR_ARG, "backward needs a workspace created with train = 1");
    if (b->B != ws->B || b->B < 1)
        return cr_err(e, CR_ERR_ARG,
                      "backward got a batch of %d rows; the last forward on this workspace "
                      "had %d",
                      b->B, ws->B);
    if (!dout) dout = ws->dout;
    const int B = b->B, C = m->C_in, cap = ws->max_B;
    float *P = m->params.data, *G = ws->grads;
    const float *x = ws->acts + ws->off_x;
    /* x only needs a gradient when it feeds a table; dense inputs do not learn */
    float *dx = m->n_cat + m->n_multi > 0 ? ws->dacts + ws->off_x : NULL;
    memset(ws->dacts, 0, ws->acts_n * sizeof(float));

    /* heads: out_h = hin w_h^T + b_h, a (B, 1) linear with output stride 1 */
    for (int h = 0; h < m->cfg.n_heads; h++) {
        int ld;
        const float *hin = cr_ranker_head_in(m, ws, ws->acts, h, &ld);
        float *dhin = cr_ranker_head_in(m, ws, ws->dacts, h, &ld);
        cr_linear_backward(dhin, cr_nn_grad(&m->params, G, m->head_w[h]),
                           cr_nn_grad(&m->params, G, m->head_b[h]), dout + (size_t)h * B, hin,
                           cr_ptable_ptr(&m->params, P, m->head_w[h]), B, ld, 1, ld, 1);
    }
    for (int k = 0; k < m->K; k++) {
        int ld;
        const float *tin = cr_ranker_tower_in(m, ws, ws->acts, k, &ld);
        float *dtin = cr_ranker_tower_in(m, ws, ws->dacts, k, &ld);
        /* a tower reading x directly (no bottom, no experts) passes NULL
         * when x needs no gradient */
        if (dtin == ws->dacts + ws->off_x && !dx) dtin = NULL;
        cr_mlp_backward(&m->towers[k], &m->params, P, G, dtin, ws->dacts + ws->off_tower[k],
                        ws->dpre, ws->acts + ws->off_tower[k], tin, ld, B, cap);
    }
    if (m->cfg.arch == CR_ARCH_SHARED_BOTTOM) {
        cr_mlp_backward(&m->bottom, &m->params, P, G, dx, ws->dacts + ws->off_trunk, ws->dpre,
                        ws->acts + ws->off_trunk, x, C, B, cap);
    } else {
        const cr_experts *X = &m->experts;
        const int S = m->S, E = X->E, He = X->dims[X->n_layers - 1];
        const float *ex = cr_experts_out(X, ws->acts + ws->off_trunk, cap);
        float *dex = cr_experts_out(X, ws->dacts + ws->off_trunk, cap);
        for (int k = 0; k < m->K; k++) {
            const float *g = ws->acts + ws->off_gate[k];
            float *dg = ws->dacts + ws->off_gate[k];
            const int *sel = m->gate_sel ? m->gate_sel + (size_t)k * S : NULL;
            cr_moe_mix_backward(dg, dex, ws->dacts + ws->off_mix[k], g, ex, sel, B, S, E, He);
            memset(ws->dpre, 0, (size_t)B * S * sizeof(float));
            cr_softmax_backward(ws->dpre, dg, g, B, S);
            cr_linear_backward(dx, cr_nn_grad(&m->params, G, m->gate_w[k]),
                               cr_nn_grad(&m->params, G, m->gate_b[k]), ws->dpre, x,
                               cr_ptable_ptr(&m->params, P, m->gate_w[k]), B, C, S, C, S);
        }
        cr_experts_backward(X, &m->params, P, G, dx, ws->dacts + ws->off_trunk, ws->dpre,
                            ws->acts + ws->off_trunk, x, C, B, cap);
    }
    return dx ? cr_tables_backward(m, ws, b, dx, e) : CR_OK;
}
