/*
 * ranker_forward.c - the ranker's one forward pass: features -> x ->
 * shared bottom | MMoE | PLE -> towers -> heads. Training, scoring rows and
 * serving requests all run cr_ranker_forward_rest; they differ only in how
 * the layers that read x get their outputs (the plain forward multiplies
 * x; a request adds a context part computed once to each candidate's part,
 * ranker_request.c) and in the form of the weights (cr_nn_weights: the
 * training GEMM, batch-independent rows, the packed snapshot, or a
 * serving plan's bf16/int8). It must never allocate, print, or write the
 * model.
 *
 * Legend: B batch rows, C_in model input width, K tasks (= towers),
 * E experts, S experts one gate mixes, He expert output width, NH heads.
 */
#include "ranker.h"

#include <string.h>

static int cr_is_moe(const cr_ranker *m) { return m->cfg.arch != CR_ARCH_SHARED_BOTTOM; }

float *cr_ranker_tower_in(const cr_ranker *m, const cr_ranker_ws *ws, float *base, int k,
                          int *ld) {
    if (cr_is_moe(m)) {
        *ld = m->experts.dims[m->experts.n_layers - 1];
        return base + ws->off_mix[k];
    }
    if (m->bottom.n_layers > 0) {
        *ld = cr_mlp_out_dim(&m->bottom);
        return cr_mlp_out(&m->bottom, base + ws->off_trunk, ws->max_B);
    }
    *ld = m->C_in; /* no bottom: every tower reads x */
    return base + ws->off_x;
}

float *cr_ranker_head_in(const cr_ranker *m, const cr_ranker_ws *ws, float *base, int h,
                         int *ld) {
    int k = m->cfg.heads[h].tower;
    const cr_mlp *t = &m->towers[k];
    if (t->n_layers == 0) return cr_ranker_tower_in(m, ws, base, k, ld);
    *ld = cr_mlp_out_dim(t);
    return cr_mlp_out(t, base + ws->off_tower[k], ws->max_B);
}

/* Bad ids would read outside a table, so every id and bag offset is checked
 * here (a few comparisons per id, nothing next to the GEMMs). Cat ids are
 * gathered from the batch's (B, n_cat) rows into one contiguous column per
 * slot, the layout the embedding kernels take; backward reuses them. */
static cr_status cr_check_batch(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                                cr_error *e) {
    if (b->B < 1 || b->B > ws->max_B)
        return cr_err(e, CR_ERR_ARG, "batch of %d rows, expected 1 to the workspace's %d",
                      b->B, ws->max_B);
    if (b->n_cat != m->n_cat || b->n_multi != m->n_multi || b->n_dense != m->n_dense)
        return cr_err(e, CR_ERR_MISMATCH,
                      "batch has %d categorical, %d multi and %d dense features; the model "
                      "expects %d, %d and %d",
                      b->n_cat, b->n_multi, b->n_dense, m->n_cat, m->n_multi, m->n_dense);
    const int B = b->B;
    for (int i = 0; i < m->n_cat; i++) {
        int64_t rows = m->table_rows[m->cat_table[i]];
        int32_t *col = ws->ids + (size_t)i * ws->max_B;
        for (int r = 0; r < B; r++) {
            int32_t id = b->cat[(size_t)r * m->n_cat + i];
            if (id < 0 || id >= rows)
                return cr_err(e, CR_ERR_ARG,
                              "batch row %d: categorical slot %d has id %d, outside its "
                              "table of %lld rows",
                              r, i, (int)id, (long long)rows);
            col[r] = id;
        }
    }
    for (int i = 0; i < m->n_multi; i++) {
        int64_t rows = m->table_rows[m->multi_table[i]];
        const int64_t *off = b->bag_off[i];
        const int32_t *ids = b->bag_ids[i];
        if (off[0] < 0)
            return cr_err(e, CR_ERR_ARG, "batch: multi slot %d starts at offset %lld", i,
                          (long long)off[0]);
        for (int r = 0; r < B; r++) {
            if (off[r + 1] < off[r])
                return cr_err(e, CR_ERR_ARG,
                              "batch row %d: multi slot %d has offsets %lld > %lld (must not "
                              "decrease)",
                              r, i, (long long)off[r], (long long)off[r + 1]);
            for (int64_t j = off[r]; j < off[r + 1]; j++)
                if (ids[j] < 0 || ids[j] >= rows)
                    return cr_err(e, CR_ERR_ARG,
                                  "batch row %d: multi slot %d has id %d, outside its table "
                                  "of %lld rows",
                                  r, i, (int)ids[j], (long long)rows);
        }
    }
    return CR_OK;
}

/* x = [cat embeddings | pooled bags | dense] for rows r0 .. r0+n-1, each
 * slot written in place. */
static void cr_ranker_embed(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b, int r0,
                            int n) {
    const int C = m->C_in, cap = ws->max_B;
    float *T = m->tables.data;
    float *x = ws->acts + ws->off_x + (size_t)r0 * C;
    for (int i = 0; i < m->n_cat; i++) {
        int t = m->cat_table[i];
        cr_embedding_forward(x + m->cat_col[i], ws->ids + (size_t)i * cap + r0,
                             cr_ptable_ptr(&m->tables, T, m->table_param[t]), n,
                             m->table_dim[t], C);
    }
    for (int i = 0; i < m->n_multi; i++) {
        int t = m->multi_table[i];
        cr_bag_forward(x + m->multi_col[i], b->bag_off[i] + r0, b->bag_ids[i],
                       cr_ptable_ptr(&m->tables, T, m->table_param[t]), n, m->table_dim[t], C,
                       m->multi_pool[i]);
    }
    for (int r = 0; r < n && m->n_dense > 0; r++)
        memcpy(x + (size_t)r * C + m->dense_col, b->dense + (size_t)(r0 + r) * m->n_dense,
               (size_t)m->n_dense * sizeof(float));
}

void cr_ranker_weights(const cr_ranker *m, const cr_ranker_ws *ws, cr_nn_weights *W) {
    /* An inference workspace promises batch-independent scores: a row's
     * predictions are the same bits whatever else is in its batch (and
     * whatever the batch size), which BLAS and the small-matrix GEMM path
     * do not give. Training keeps the fastest product. Inference runs on
     * the weights packed once for scoring when the model has them (the
     * same bits as the rows path, without repacking on every call). */
    memset(W, 0, sizeof *W);
    W->pt = &m->params;
    W->params = m->params.data;
    W->rows = !ws->train;
    W->pk = W->rows ? m->packed : NULL;
}

void cr_ranker_forward_rest(const cr_ranker *m, cr_ranker_ws *ws, const cr_nn_weights *W,
                            int r0, int n, int readers_done) {
    const int B = ws->B, C = m->C_in, cap = ws->max_B, first = readers_done ? 1 : 0;
    const float *x = ws->acts + ws->off_x + (size_t)r0 * C;
    if (!cr_is_moe(m)) {
        cr_mlp_forward(&m->bottom, W, ws->acts + ws->off_trunk, x, C, n, cap, r0, first);
    } else {
        const cr_experts *X = &m->experts;
        const int S = m->S, E = X->E, He = X->dims[X->n_layers - 1], KS = m->K * S;
        cr_experts_forward(X, W, ws->acts + ws->off_trunk, x, C, n, cap, r0, first);
        const float *ex = cr_experts_out(X, ws->acts + ws->off_trunk, cap) + (size_t)r0 * E * He;
        /* every gate's logits side by side, (n, K*S) = (n*K, S) */
        float *gall = ws->gate_logits + (size_t)r0 * KS;
        const float *gates = W->pk ? m->gates_packed : NULL;
        if (!readers_done && gates) {
            /* the K gates stacked into one packed layer: x streams once */
            cr_weight gw = {.form = CR_WEIGHT_PACKED, .OC = KS, .C = C, .w = gates};
            cr_linear(gall, x, &gw, gates + cr_linear_pack_floats(KS, C), n, C, KS, 0, NULL);
        } else if (!readers_done) {
            for (int k = 0; k < m->K; k++)
                cr_nn_linear(W, m->gate_w[k], m->gate_b[k], 0, gall + (size_t)k * S, x, n, C,
                             KS, 0);
        }
        cr_softmax_forward(gall, gall, n * m->K, S);
        for (int k = 0; k < m->K; k++) {
            /* gate_k = softmax(x Wg_k^T + bg_k), mix_k = sum_s gate_k[s] expert[sel_k[s]] */
            float *g = ws->acts + ws->off_gate[k] + (size_t)r0 * S;
            for (int r = 0; r < n; r++)
                memcpy(g + (size_t)r * S, gall + (size_t)r * KS + (size_t)k * S,
                       (size_t)S * sizeof(float));
            cr_moe_mix_forward(ws->acts + ws->off_mix[k] + (size_t)r0 * He, g, ex,
                               m->gate_sel ? m->gate_sel + (size_t)k * S : NULL, n, S, E, He);
        }
    }
    /* with no trunk the towers (and the heads of 0-layer towers) read x:
     * under readers_done their first layer is in place */
    const int x_readers = !cr_is_moe(m) && m->bottom.n_layers == 0 && readers_done;
    for (int k = 0; k < m->K; k++) {
        int ld;
        const float *tin = cr_ranker_tower_in(m, ws, ws->acts, k, &ld) + (size_t)r0 * ld;
        cr_mlp_forward(&m->towers[k], W, ws->acts + ws->off_tower[k], tin, ld, n, cap, r0,
                       x_readers);
    }
    for (int h = 0; h < m->cfg.n_heads; h++) {
        if (x_readers && m->towers[m->cfg.heads[h].tower].n_layers == 0) continue;
        int ld;
        const float *hin = cr_ranker_head_in(m, ws, ws->acts, h, &ld) + (size_t)r0 * ld;
        /* one output column: out row h is (B) with stride 1 */
        cr_nn_linear(W, m->head_w[h], m->head_b[h], 0, ws->out + (size_t)h * B + r0, hin, n, ld,
                     1, 0);
    }
}

/* Rows r0 .. r0+n-1 of the forward, every stage: each block of ws->acts
 * is (max_B, width) row-major, so a row range is a pointer offset per block
 * and ranges write disjoint memory. */
static void cr_ranker_forward_range(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                                    int r0, int n) {
    cr_nn_weights W;
    cr_ranker_weights(m, ws, &W);
    cr_ranker_embed(m, ws, b, r0, n);
    cr_ranker_forward_rest(m, ws, &W, r0, n, 0);
}

/* Rows per thread below which an inference forward stays in one piece. */
#define CR_FWD_SPLIT_MIN_ROWS 64

cr_status cr_ranker_forward(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                            cr_error *e) {
    CR_TRY(cr_check_batch(m, ws, b, e));
    const int B = b->B;
    ws->B = B;
    int nt = cr_get_threads();
    /* Inference on several threads splits the batch by rows, each thread
     * running the whole network on its rows with one-thread kernels: one
     * fork per call instead of one per layer, and no layer too narrow to
     * share. Rows are batch-independent, so the split changes no bit.
     * Training keeps threads inside each kernel (its backward needs
     * whole-batch reductions in a fixed order). */
    if (ws->train || nt < 2 || B < nt * CR_FWD_SPLIT_MIN_ROWS) {
        cr_ranker_forward_range(m, ws, b, 0, B);
        return CR_OK;
    }
    /* chunks in whole register tiles (12 rows) where the batch allows */
    int per = ((B + nt - 1) / nt + 11) / 12 * 12, isa = cr_thread_isa();
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(nt)
#endif
    for (int t = 0; t < nt; t++) {
        int r0 = t * per, n = B - r0 < per ? B - r0 : per;
        if (n <= 0) continue;
        cr_set_threads(1), cr_set_thread_isa(isa); /* one thread, the call's set (per task) */
        cr_ranker_forward_range(m, ws, b, r0, n);
    }
    return CR_OK;
}

void cr_ranker_predict(const cr_ranker *m, const cr_ranker_ws *ws, float *pred) {
    const size_t B = (size_t)ws->B;
    for (int h = 0; h < m->cfg.n_heads; h++) {
        const float *o = ws->out + h * B;
        if (m->cfg.heads[h].kind == CR_HEAD_BINARY)
            cr_sigmoid_forward(pred + h * B, o, B);
        else
            memcpy(pred + h * B, o, B * sizeof(float));
    }
}
