/*
 * ranker_request.c - the ranker's forward for a serving request: one
 * context row, B candidate rows. The first layers that read x are split by
 * columns, W x + b = (W_ctx x_ctx + b) + W_cand x_cand, so the context
 * costs one row per request instead of one per candidate; everything after
 * those layers is the one forward (ranker_forward.c). Like cr_ranker_forward,
 * this must never allocate, print, or write the model or the plan.
 *
 * Legend: B candidate rows, C_in model input width, CC candidate columns of
 * x, OC outputs of all x readers side by side, K tasks, E experts, S experts
 * per gate, NH heads.
 */
#include "ranker.h"

#include <stdlib.h>
#include <string.h>

/* A linear layer that reads x directly. Their outputs sit side by side in
 * one (B, OC) block so the candidate part is one GEMM. */
typedef enum { RD_EXPERTS, RD_GATE, RD_BOTTOM, RD_TOWER, RD_HEAD } cr_rd_kind;

typedef struct cr_req_reader {
    cr_rd_kind kind;
    int        idx;   /* task (gate, tower) or head */
    int        w, b;  /* parameter indices: weight (n, C_in), bias (n) */
    int        n;     /* outputs */
    int        off;   /* first column in the (B, OC) block */
} cr_req_reader;

struct cr_req_plan {
    const cr_ranker *m;
    cr_precision     precision;
    int              n_rd, OC;
    cr_req_reader   *rd;
    int              n_slots;
    int             *slot_col, *slot_w; /* (n_slots) column of x and width */
    int              max_in;            /* widest input of any dense layer (scratch) */
    cr_lp_weight   **lp;                /* (params.n) packed weights, NULL under fp32 */
};

struct cr_req_ws {
    int           max_B;
    cr_ranker_ws *a;        /* the plain forward's activation layout */
    float        *x_ctx;    /* (C_in) context slots, zeros elsewhere */
    float        *ctx_pre;  /* (OC) W x_ctx + b */
    float        *x_cand;   /* (max_B, CC) candidate slots, compact */
    float        *pre;      /* (max_B, OC) */
    float        *w_cand;   /* (OC, CC) the readers' candidate columns */
    cr_lp_weight *lp_cand;  /* w_cand packed (reduced precision only) */
    float        *wp_cand;  /* w_cand in cr_linear_pack form (fp32, NULL otherwise) */
    void         *lp_scratch;
    uint8_t      *mask;     /* (n_slots) the split w_cand was gathered for */
    int           have_mask, CC;
    int          *slot_cc;  /* (n_slots) column in x_cand, -1 for context slots */
    int32_t      *ids;      /* (max_B) one cat slot's ids */
};

/* ---- plan ------------------------------------------------------------------------ */

static cr_status cr_req_add(cr_req_plan *p, cr_rd_kind kind, int idx, int w, int b,
                            cr_error *e) {
    const cr_ptable *pt = &p->m->params;
    cr_req_reader *r = &p->rd[p->n_rd++];
    r->kind = kind;
    r->idx = idx;
    r->w = w;
    r->b = b;
    r->n = (int)pt->t[w].shape[0];
    if (pt->t[w].ndim != 2 || pt->t[w].shape[1] != p->m->C_in)
        return cr_err(e, CR_ERR_INTERNAL, "request plan: '%s' does not read x", pt->t[w].name);
    r->off = p->OC;
    p->OC += r->n;
    return CR_OK;
}

static cr_status cr_req_readers(cr_req_plan *p, cr_error *e) {
    const cr_ranker *m = p->m;
    p->rd = calloc((size_t)(m->K + m->cfg.n_heads + 1), sizeof *p->rd);
    if (!p->rd) return cr_err(e, CR_ERR_NOMEM, "out of memory (request plan)");
    if (m->cfg.arch != CR_ARCH_SHARED_BOTTOM) {
        CR_TRY(cr_req_add(p, RD_EXPERTS, 0, m->experts.w[0], m->experts.b[0], e));
        for (int k = 0; k < m->K; k++)
            CR_TRY(cr_req_add(p, RD_GATE, k, m->gate_w[k], m->gate_b[k], e));
    } else if (m->bottom.n_layers > 0) {
        CR_TRY(cr_req_add(p, RD_BOTTOM, 0, m->bottom.w[0], m->bottom.b[0], e));
    } else {
        /* no bottom: every tower reads x, and a tower of 0 layers hands x
         * straight to its heads */
        for (int k = 0; k < m->K; k++)
            if (m->towers[k].n_layers > 0)
                CR_TRY(cr_req_add(p, RD_TOWER, k, m->towers[k].w[0], m->towers[k].b[0], e));
        for (int h = 0; h < m->cfg.n_heads; h++)
            if (m->towers[m->cfg.heads[h].tower].n_layers == 0)
                CR_TRY(cr_req_add(p, RD_HEAD, h, m->head_w[h], m->head_b[h], e));
    }
    return CR_OK;
}

/* Every weight of the candidate part but the x readers (whose candidate
 * columns are gathered per split, see cr_req_gather) gets packed once. */
static cr_status cr_req_pack(cr_req_plan *p, int w, cr_error *e) {
    const cr_ptable *pt = &p->m->params;
    const cr_tensor_info *t = &pt->t[w];
    /* a per-expert weight (E, H, Hp) packs as (E*H, Hp): expert e is the
     * row range [e*H, (e+1)*H) */
    int64_t OC = t->ndim == 3 ? t->shape[0] * t->shape[1] : t->shape[0];
    int C = (int)t->shape[t->ndim - 1];
    if (C > p->max_in) p->max_in = C;
    int G = t->ndim == 3 ? (int)t->shape[0] : 1;
    /* A layer of fewer than CR_LP_MIN_OUT outputs stays fp32 (the packed
     * fp32 tiles and narrow lanes): there the reduced-precision kernels
     * run too few accumulator chains, and converting each input row costs
     * as much as the products saved (MovieLens's 32-wide towers and
     * 1-wide heads were 2-3x slower in int8 than in fp32). */
    if (OC / G < CR_LP_MIN_OUT) return CR_OK;
    return cr_lp_pack(&p->lp[w], p->precision, cr_ptable_ptr(pt, pt->data, w), G,
                      (int)(OC / G), C, e);
}

static cr_status cr_req_pack_all(cr_req_plan *p, cr_error *e) {
    const cr_ranker *m = p->m;
    p->lp = calloc((size_t)m->params.n, sizeof *p->lp);
    if (!p->lp) return cr_err(e, CR_ERR_NOMEM, "out of memory (request plan)");
    if (m->cfg.arch != CR_ARCH_SHARED_BOTTOM)
        for (int i = 1; i < m->experts.n_layers; i++) CR_TRY(cr_req_pack(p, m->experts.w[i], e));
    else
        for (int i = 1; i < m->bottom.n_layers; i++) CR_TRY(cr_req_pack(p, m->bottom.w[i], e));
    int no_trunk = m->cfg.arch == CR_ARCH_SHARED_BOTTOM && m->bottom.n_layers == 0;
    for (int k = 0; k < m->K; k++)
        for (int i = no_trunk ? 1 : 0; i < m->towers[k].n_layers; i++)
            CR_TRY(cr_req_pack(p, m->towers[k].w[i], e));
    for (int h = 0; h < m->cfg.n_heads; h++)
        if (!(no_trunk && m->towers[m->cfg.heads[h].tower].n_layers == 0))
            CR_TRY(cr_req_pack(p, m->head_w[h], e));
    return CR_OK;
}

cr_status cr_req_plan_create(cr_req_plan **out, const cr_ranker *m, cr_precision precision,
                             cr_error *e) {
    *out = NULL;
    if (precision != CR_PRECISION_FP32 && precision != CR_PRECISION_BF16 &&
        precision != CR_PRECISION_INT8)
        return cr_err(e, CR_ERR_ARG, "request plan: unknown precision %d", (int)precision);
    cr_req_plan *p = calloc(1, sizeof *p);
    if (!p) return cr_err(e, CR_ERR_NOMEM, "out of memory (request plan)");
    p->m = m;
    p->precision = precision;
    p->n_slots = m->n_cat + m->n_multi + m->n_dense;
    p->max_in = m->C_in;
    p->slot_col = calloc((size_t)p->n_slots + 1, sizeof(int));
    p->slot_w = calloc((size_t)p->n_slots + 1, sizeof(int));
    cr_status st = CR_OK;
    if (!p->slot_col || !p->slot_w) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory (request plan)");
        goto fail;
    }
    for (int i = 0; i < m->n_cat; i++) {
        p->slot_col[i] = m->cat_col[i];
        p->slot_w[i] = m->table_dim[m->cat_table[i]];
    }
    for (int i = 0; i < m->n_multi; i++) {
        p->slot_col[m->n_cat + i] = m->multi_col[i];
        p->slot_w[m->n_cat + i] = m->table_dim[m->multi_table[i]];
    }
    for (int i = 0; i < m->n_dense; i++) {
        p->slot_col[m->n_cat + m->n_multi + i] = m->dense_col + i;
        p->slot_w[m->n_cat + m->n_multi + i] = 1;
    }
    if ((st = cr_req_readers(p, e))) goto fail;
    if (precision != CR_PRECISION_FP32 && (st = cr_req_pack_all(p, e))) goto fail;
    *out = p;
    return CR_OK;
fail:
    cr_req_plan_free(p);
    return st;
}

void cr_req_plan_free(cr_req_plan *p) {
    if (!p) return;
    if (p->lp)
        for (int i = 0; i < p->m->params.n; i++) cr_lp_free(p->lp[i]);
    free(p->lp);
    free(p->rd);
    free(p->slot_col);
    free(p->slot_w);
    free(p);
}

int cr_req_plan_slots(const cr_req_plan *p) { return p->n_slots; }

/* ---- workspace --------------------------------------------------------------------- */

cr_status cr_req_ws_create(cr_req_ws **out, const cr_req_plan *p, int max_B, cr_error *e) {
    *out = NULL;
    const cr_ranker *m = p->m;
    cr_req_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return cr_err(e, CR_ERR_NOMEM, "out of memory (request workspace)");
    cr_status st = cr_ranker_ws_create(&ws->a, m, max_B, 0, 0, e);
    if (st) goto fail;
    ws->max_B = max_B;
    size_t C = (size_t)m->C_in, OC = (size_t)p->OC, B = (size_t)max_B;
    ws->x_ctx = cr_alloc_e(C * sizeof(float), e, "request context row");
    ws->ctx_pre = cr_alloc_e(OC * sizeof(float), e, "request context part");
    ws->x_cand = cr_alloc_e(B * C * sizeof(float), e, "request candidate rows");
    ws->pre = cr_alloc_e(B * OC * sizeof(float), e, "request first layer");
    ws->w_cand = cr_alloc_e(OC * C * sizeof(float), e, "request candidate weights");
    ws->mask = cr_alloc_e((size_t)p->n_slots + 1, e, "request split");
    ws->slot_cc = cr_alloc_e(((size_t)p->n_slots + 1) * sizeof(int), e, "request split");
    ws->ids = cr_alloc_e(B * sizeof(int32_t), e, "request ids");
    if (!ws->x_ctx || !ws->ctx_pre || !ws->x_cand || !ws->pre || !ws->w_cand || !ws->mask ||
        !ws->slot_cc || !ws->ids) {
        st = CR_ERR_NOMEM;
        goto fail;
    }
    if (p->precision != CR_PRECISION_FP32) {
        ws->lp_scratch = cr_alloc_e(cr_lp_scratch_bytes(p->max_in), e, "request scratch");
        if (!ws->lp_scratch) {
            st = CR_ERR_NOMEM;
            goto fail;
        }
    } else {
        ws->wp_cand = cr_alloc_e(cr_linear_pack_floats(p->OC, (int)C) * sizeof(float) + 1, e,
                                 "request candidate weights, packed");
        if (!ws->wp_cand) {
            st = CR_ERR_NOMEM;
            goto fail;
        }
    }
    *out = ws;
    return CR_OK;
fail:
    cr_req_ws_free(ws);
    return st;
}

void cr_req_ws_free(cr_req_ws *ws) {
    if (!ws) return;
    cr_ranker_ws_free(ws->a);
    cr_free(ws->x_ctx);
    cr_free(ws->ctx_pre);
    cr_free(ws->x_cand);
    cr_free(ws->pre);
    cr_free(ws->w_cand);
    cr_lp_free(ws->lp_cand);
    cr_free(ws->wp_cand);
    cr_free(ws->lp_scratch);
    cr_free(ws->mask);
    cr_free(ws->slot_cc);
    cr_free(ws->ids);
    free(ws);
}

int cr_req_ws_max_B(const cr_req_ws *ws) { return ws->max_B; }

/* ---- forward ------------------------------------------------------------------------ */

/* Columns of x the candidates supply, and the readers' weights restricted
 * to them: w_cand (OC, CC), row r of reader j is row r of its weight at
 * those columns. Redone only when the split changes between requests. */
static cr_status cr_req_gather(const cr_req_plan *p, cr_req_ws *ws, const uint8_t *is_ctx,
                               cr_error *e) {
    if (ws->have_mask && !memcmp(ws->mask, is_ctx, (size_t)p->n_slots)) return CR_OK;
    const cr_ranker *m = p->m;
    const cr_ptable *pt = &m->params;
    int CC = 0;
    for (int s = 0; s < p->n_slots; s++) {
        ws->slot_cc[s] = is_ctx[s] ? -1 : CC;
        if (!is_ctx[s]) CC += p->slot_w[s];
    }
    for (int j = 0; j < p->n_rd; j++) {
        const cr_req_reader *r = &p->rd[j];
        const float *W = cr_ptable_ptr(pt, pt->data, r->w);
        for (int o = 0; o < r->n; o++) {
            const float *src = W + (size_t)o * m->C_in;
            float *dst = ws->w_cand + (size_t)(r->off + o) * CC;
            for (int s = 0; s < p->n_slots; s++)
                if (!is_ctx[s])
                    memcpy(dst + ws->slot_cc[s], src + p->slot_col[s],
                           (size_t)p->slot_w[s] * sizeof(float));
        }
    }
    ws->CC = CC;
    if (p->precision != CR_PRECISION_FP32) {
        cr_lp_free(ws->lp_cand);
        ws->lp_cand = NULL;
        if (CC > 0) CR_TRY(cr_lp_pack(&ws->lp_cand, p->precision, ws->w_cand, 1, p->OC, CC, e));
    } else if (CC > 0) {
        cr_linear_pack(ws->wp_cand, ws->w_cand, p->OC, CC);
    }
    memcpy(ws->mask, is_ctx, (size_t)p->n_slots);
    ws->have_mask = 1;
    return CR_OK;
}

/* The ids and bag offsets of the slots a batch supplies must stay inside
 * their tables (ctx: is_ctx slots; candidates: the others). */
static cr_status cr_req_check(const cr_ranker *m, const uint8_t *is_ctx, int want_ctx,
                              const cr_batch *b, const char *what, cr_error *e) {
    if (b->n_cat != m->n_cat || b->n_multi != m->n_multi || b->n_dense != m->n_dense)
        return cr_err(e, CR_ERR_MISMATCH,
                      "%s batch has %d categorical, %d multi and %d dense features; the "
                      "model expects %d, %d and %d",
                      what, b->n_cat, b->n_multi, b->n_dense, m->n_cat, m->n_multi, m->n_dense);
    for (int i = 0; i < m->n_cat; i++) {
        if (!is_ctx[i] != !want_ctx) continue;
        int64_t rows = m->table_rows[m->cat_table[i]];
        for (int r = 0; r < b->B; r++) {
            int32_t id = b->cat[(size_t)r * m->n_cat + i];
            if (id < 0 || id >= rows)
                return cr_err(e, CR_ERR_ARG,
                              "%s row %d: categorical slot %d has id %d, outside its table "
                              "of %lld rows",
                              what, r, i, (int)id, (long long)rows);
        }
    }
    for (int i = 0; i < m->n_multi; i++) {
        if (!is_ctx[m->n_cat + i] != !want_ctx) continue;
        int64_t rows = m->table_rows[m->multi_table[i]];
        const int64_t *off = b->bag_off[i];
        if (off[0] < 0)
            return cr_err(e, CR_ERR_ARG, "%s: multi slot %d starts at offset %lld", what, i,
                          (long long)off[0]);
        for (int r = 0; r < b->B; r++) {
            if (off[r + 1] < off[r])
                return cr_err(e, CR_ERR_ARG,
                              "%s row %d: multi slot %d has offsets %lld > %lld", what, r, i,
                              (long long)off[r], (long long)off[r + 1]);
            for (int64_t j = off[r]; j < off[r + 1]; j++)
                if (b->bag_ids[i][j] < 0 || b->bag_ids[i][j] >= rows)
                    return cr_err(e, CR_ERR_ARG,
                                  "%s row %d: multi slot %d has id %d, outside its table of "
                                  "%lld rows",
                                  what, r, i, (int)b->bag_ids[i][j], (long long)rows);
        }
    }
    return CR_OK;
}

/* Write the slots of batch b selected by (is_ctx == want_ctx) into x: slot
 * s at column col[s] (skipped when col[s] < 0), rows of stride ld. */
static void cr_req_embed(const cr_req_plan *p, cr_req_ws *ws, const uint8_t *is_ctx,
                         int want_ctx, const cr_batch *b, float *x, const int *col, int ld) {
    const cr_ranker *m = p->m;
    const float *T = m->tables.data;
    const int B = b->B;
    for (int i = 0; i < m->n_cat; i++) {
        if (!is_ctx[i] != !want_ctx || col[i] < 0) continue;
        int t = m->cat_table[i];
        for (int r = 0; r < B; r++) ws->ids[r] = b->cat[(size_t)r * m->n_cat + i];
        cr_embedding_forward(x + col[i], ws->ids,
                             cr_ptable_ptr(&m->tables, (float *)T, m->table_param[t]), B,
                             m->table_dim[t], ld);
    }
    for (int i = 0; i < m->n_multi; i++) {
        int s = m->n_cat + i;
        if (!is_ctx[s] != !want_ctx || col[s] < 0) continue;
        int t = m->multi_table[i];
        cr_bag_forward(x + col[s], b->bag_off[i], b->bag_ids[i],
                       cr_ptable_ptr(&m->tables, (float *)T, m->table_param[t]), B,
                       m->table_dim[t], ld, m->multi_pool[i]);
    }
    for (int i = 0; i < m->n_dense; i++) {
        int s = m->n_cat + m->n_multi + i;
        if (!is_ctx[s] != !want_ctx || col[s] < 0) continue;
        for (int r = 0; r < B; r++) x[(size_t)r * ld + col[s]] = b->dense[(size_t)r * m->n_dense + i];
    }
}

/* Copy a reader's columns of pre into a (B, n) block, with ReLU for hidden
 * layers (gate logits and head outputs stay raw). */
static void cr_req_take(float *dst, int ldd, const float *pre, int OC, int off, int n, int B,
                        int relu) {
    for (int r = 0; r < B; r++) {
        const float *s = pre + (size_t)r * OC + off;
        float *d = dst + (size_t)r * ldd;
        if (relu)
            for (int j = 0; j < n; j++) d[j] = s[j] > 0.0f ? s[j] : 0.0f;
        else
            memcpy(d, s, (size_t)n * sizeof(float));
    }
}

cr_status cr_req_forward(const cr_req_plan *p, cr_req_ws *ws, const uint8_t *is_ctx,
                         const cr_batch *ctx, const cr_batch *cand, int same_ctx,
                         const float **out, cr_error *e) {
    const cr_ranker *m = p->m;
    const cr_ptable *pt = &m->params;
    float *P = pt->data;
    if (ctx->B != 1)
        return cr_err(e, CR_ERR_ARG, "request: the context batch has %d rows, expected 1", ctx->B);
    if (cand->B < 1 || cand->B > ws->max_B)
        return cr_err(e, CR_ERR_ARG, "request: %d candidates, expected 1 to the workspace's %d",
                      cand->B, ws->max_B);
    if (same_ctx && !(ws->have_mask && !memcmp(ws->mask, is_ctx, (size_t)p->n_slots)))
        return cr_err(e, CR_ERR_ARG, "request: same_ctx set but the split changed");
    CR_TRY(cr_req_check(m, is_ctx, 0, cand, "candidate", e));
    if (!same_ctx) {
        CR_TRY(cr_req_check(m, is_ctx, 1, ctx, "context", e));
        CR_TRY(cr_req_gather(p, ws, is_ctx, e));
        /* ctx_pre = W x_ctx + b over the full width: candidate columns of
         * x_ctx are zero, so they add nothing */
        memset(ws->x_ctx, 0, (size_t)m->C_in * sizeof(float));
        cr_req_embed(p, ws, is_ctx, 1, ctx, ws->x_ctx, p->slot_col, m->C_in);
        for (int j = 0; j < p->n_rd; j++) {
            const cr_req_reader *r = &p->rd[j];
            cr_weight w = {.form = CR_WEIGHT_F32, .OC = r->n, .C = m->C_in,
                           .w = cr_ptable_ptr(pt, P, r->w)};
            cr_linear(ws->ctx_pre + r->off, ws->x_ctx, &w, cr_ptable_ptr(pt, P, r->b), 1,
                      m->C_in, r->n, 0, NULL);
        }
    }
    const int B = cand->B, OC = p->OC, CC = ws->CC;
    cr_ranker_ws *A = ws->a;
    A->B = B;

    /* pre = x_cand W_cand^T + ctx_pre: the context part rides in as the bias */
    if (CC > 0) {
        cr_req_embed(p, ws, is_ctx, 0, cand, ws->x_cand, ws->slot_cc, CC);
        cr_weight w = {.form = ws->lp_cand ? CR_WEIGHT_LOWP : CR_WEIGHT_PACKED, .OC = OC,
                       .C = CC, .w = ws->lp_cand ? (const void *)ws->lp_cand : ws->wp_cand};
        cr_linear(ws->pre, ws->x_cand, &w, ws->ctx_pre, B, CC, OC, 0, ws->lp_scratch);
    } else {
        for (int r = 0; r < B; r++)
            memcpy(ws->pre + (size_t)r * OC, ws->ctx_pre, (size_t)OC * sizeof(float));
    }

    /* each reader's columns of pre to where the plain forward writes that
     * layer's output (ReLU for hidden layers; gate logits and heads raw),
     * then the rest of the network is the one forward */
    for (int j = 0; j < p->n_rd; j++) {
        const cr_req_reader *r = &p->rd[j];
        switch (r->kind) {
        case RD_EXPERTS:
            cr_req_take(A->acts + A->off_trunk, r->n, ws->pre, OC, r->off, r->n, B, 1);
            break;
        case RD_GATE:
            cr_req_take(A->gate_logits + (size_t)r->idx * m->S, m->K * m->S, ws->pre, OC, r->off,
                        r->n, B, 0);
            break;
        case RD_BOTTOM:
            cr_req_take(A->acts + A->off_trunk, r->n, ws->pre, OC, r->off, r->n, B, 1);
            break;
        case RD_TOWER:
            cr_req_take(A->acts + A->off_tower[r->idx], r->n, ws->pre, OC, r->off, r->n, B, 1);
            break;
        case RD_HEAD: /* the head's output is this column */
            cr_req_take(A->out + (size_t)r->idx * B, 1, ws->pre, OC, r->off, 1, B, 0);
            break;
        }
    }
    cr_nn_weights W = {.pt = pt, .params = P, .rows = 1, .pk = m->packed, .lp = p->lp,
                       .scratch = ws->lp_scratch};
    cr_ranker_forward_rest(m, A, &W, 0, B, 1);
    *out = A->out;
    return CR_OK;
}
