/*
 * request_api.c - cr_model_score_request(_columns): one context and N
 * candidates, given as text or as typed columns, encoded by encode.c with
 * the model's schema and scored with the split forward of
 * ranker_request.c; then the ranking formula and the order.
 * Workspaces come from a small mutex-guarded pool in the model so a warm
 * model allocates nothing per request but bags that outgrow their buffers.
 * Never prints; errors name the input column and the candidate.
 */
#include "serve_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *cr_precision_name(cr_precision p) {
    switch (p) {
    case CR_PRECISION_FP32: return "fp32";
    case CR_PRECISION_BF16: return "bf16";
    case CR_PRECISION_INT8: return "int8";
    }
    return "unknown";
}

const char *cr_rank_formula_name(cr_rank_formula f) {
    return f == CR_RANK_PRODUCT ? "product" : f == CR_RANK_WEIGHTED_SUM ? "weighted_sum" : "unknown";
}

/* ---- the pool -------------------------------------------------------------------- */

static void cr_slot_free(const cr_model *m, cr_req_slot *sl) {
    if (!sl) return;
    cr_req_ws_free(sl->ws);
    for (int q = 0; q < m->s.n_multi; q++) {
        if (sl->ctx_ids) free(sl->ctx_ids[q]);
        if (sl->cand_ids) free(sl->cand_ids[q]);
    }
    free(sl->ctx_ids);
    free(sl->cand_ids);
    free(sl->ctx_cap);
    free(sl->cand_cap);
    free(sl->ctx.bag_off);
    free(sl->ctx.bag_ids);
    free(sl->cand.bag_off);
    free(sl->cand.bag_ids);
    free(sl->ctx_off);
    free(sl->cand_off);
    free(sl->ctx.cat);
    free(sl->ctx.dense);
    free(sl->cand.cat);
    free(sl->cand.dense);
    free(sl->is_ctx);
    free(sl->cols);
    free(sl->pred);
    free(sl->sort);
    free(sl);
}

static void cr_slot_shape(cr_batch *b, const cr_schema *s, int max_B) {
    b->max_B = max_B;
    b->n_cat = s->n_cat;
    b->n_multi = s->n_multi;
    b->n_dense = s->n_dense;
    b->n_tasks = s->n_tasks;
}

static cr_status cr_slot_new(const cr_model *m, cr_req_slot **out, cr_error *e) {
    const cr_schema *s = &m->s;
    size_t nm = (size_t)s->n_multi + 1, C = CR_REQ_CHUNK;
    cr_req_slot *sl = calloc(1, sizeof *sl);
    if (!sl) return cr_err(e, CR_ERR_NOMEM, "out of memory (request workspace)");
    cr_slot_shape(&sl->ctx, s, 1);
    cr_slot_shape(&sl->cand, s, CR_REQ_CHUNK);
    sl->is_ctx = calloc((size_t)m->n_slots + 1, 1);
    sl->cols = calloc(2 * (size_t)s->n_features + 1, sizeof *sl->cols);
    sl->ctx.cat = calloc((size_t)s->n_cat + 1, sizeof(int32_t));
    sl->ctx.dense = calloc((size_t)s->n_dense + 1, sizeof(float));
    sl->cand.cat = calloc(C * (size_t)s->n_cat + 1, sizeof(int32_t));
    sl->cand.dense = calloc(C * (size_t)s->n_dense + 1, sizeof(float));
    sl->ctx.bag_off = calloc(nm, sizeof(int64_t *));
    sl->ctx.bag_ids = calloc(nm, sizeof(int32_t *));
    sl->cand.bag_off = calloc(nm, sizeof(int64_t *));
    sl->cand.bag_ids = calloc(nm, sizeof(int32_t *));
    sl->ctx_off = calloc(nm * 2, sizeof(int64_t));
    sl->cand_off = calloc(nm * (C + 1), sizeof(int64_t));
    sl->ctx_ids = calloc(nm, sizeof(int32_t *));
    sl->cand_ids = calloc(nm, sizeof(int32_t *));
    sl->ctx_cap = calloc(nm, sizeof(size_t));
    sl->cand_cap = calloc(nm, sizeof(size_t));
    sl->pred = malloc((size_t)m->r->cfg.n_heads * C * sizeof(float));
    if (!sl->is_ctx || !sl->cols || !sl->ctx.cat || !sl->ctx.dense || !sl->cand.cat || !sl->cand.dense ||
        !sl->ctx.bag_off || !sl->ctx.bag_ids || !sl->cand.bag_off || !sl->cand.bag_ids ||
        !sl->ctx_off || !sl->cand_off || !sl->ctx_ids || !sl->cand_ids || !sl->ctx_cap ||
        !sl->cand_cap || !sl->pred) {
        cr_slot_free(m, sl);
        return cr_err(e, CR_ERR_NOMEM, "out of memory (request workspace)");
    }
    for (int q = 0; q < s->n_multi; q++) {
        sl->ctx.bag_off[q] = sl->ctx_off + (size_t)q * 2;
        sl->cand.bag_off[q] = sl->cand_off + (size_t)q * (C + 1);
    }
    cr_status st = cr_req_ws_create(&sl->ws, m->plan, CR_REQ_CHUNK, e);
    if (st) {
        cr_slot_free(m, sl);
        return st;
    }
    *out = sl;
    return CR_OK;
}

/* The pool is the model's only mutable state; the lock covers two pointer
 * moves, never a forward. */
static cr_status cr_slot_get(const cr_model *cm, cr_req_slot **out, cr_error *e) {
    cr_model *m = (cr_model *)cm;
    pthread_mutex_lock(&m->pool_mu);
    cr_req_slot *sl = m->pool;
    if (sl) {
        m->pool = sl->next;
        m->n_pool--;
    }
    pthread_mutex_unlock(&m->pool_mu);
    if (sl) {
        *out = sl;
        return CR_OK;
    }
    return cr_slot_new(m, out, e);
}

static void cr_slot_put(const cr_model *cm, cr_req_slot *sl) {
    cr_model *m = (cr_model *)cm;
    pthread_mutex_lock(&m->pool_mu);
    if (m->n_pool < m->max_pool) {
        sl->next = m->pool;
        m->pool = sl;
        m->n_pool++;
        sl = NULL;
    }
    pthread_mutex_unlock(&m->pool_mu);
    if (sl) cr_slot_free(m, sl); /* a burst above max_pool: let it go */
}

cr_status cr_model_request_init(cr_model *m, const cr_model_opts *o, cr_error *e) {
    const cr_schema *s = &m->s;
    if (o->formula != CR_RANK_WEIGHTED_SUM && o->formula != CR_RANK_PRODUCT)
        return cr_err(e, CR_ERR_ARG, "ranking formula %d, expected weighted_sum or product",
                      (int)o->formula);
    if (o->n_weights < 0 || o->n_weights > CR_RANK_MAX_WEIGHTS || o->max_pool < 0)
        return cr_err(e, CR_ERR_ARG, "model options: %d weights, pool %d", o->n_weights,
                      o->max_pool);
    m->formula = o->formula;
    m->precision = o->precision;
    m->max_pool = o->max_pool;
    if (o->n_weights == 0) m->rank_w[0] = 1.0f;
    for (int i = 0; i < o->n_weights; i++) {
        int found = -1;
        for (int k = 0; k < m->n_out; k++)
            if (!strcmp(o->weight_name[i], cr_model_output_name(m, k))) found = k;
        if (found < 0)
            return cr_err(e, CR_ERR_NOT_FOUND,
                          "ranking weight for '%s': %s has no output of that name", o->weight_name[i],
                          m->path);
        if (!isfinite(o->weight[i]))
            return cr_err(e, CR_ERR_ARG, "ranking weight for '%s' is not finite", o->weight_name[i]);
        m->rank_w[found] = o->weight[i];
    }
    m->n_slots = s->n_cat + s->n_multi + s->n_dense;
    m->feat_slot = calloc((size_t)s->n_features + 1, sizeof(int));
    if (!m->feat_slot) return cr_err(e, CR_ERR_NOMEM, "out of memory loading %s", m->path);
    for (int c = 0; c < s->n_cat; c++) m->feat_slot[s->cat_feat[c]] = c;
    for (int q = 0; q < s->n_multi; q++) m->feat_slot[s->multi_feat[q]] = s->n_cat + q;
    for (int d = 0; d < s->n_dense; d++) m->feat_slot[s->dense_feat[d]] = s->n_cat + s->n_multi + d;
    pthread_mutex_init(&m->pool_mu, NULL);
    return cr_req_plan_create(&m->plan, m->r, o->precision, e);
}

void cr_model_request_free(cr_model *m) {
    if (!m->feat_slot) return; /* never initialised */
    while (m->pool) {
        cr_req_slot *n = m->pool->next;
        cr_slot_free(m, m->pool);
        m->pool = n;
    }
    pthread_mutex_destroy(&m->pool_mu);
    cr_req_plan_free(m->plan);
    free(m->feat_slot);
}

/* ---- ranking ------------------------------------------------------------------------ */

typedef struct { float s; int64_t i; } cr_rank_pair;

/* Best first; NaN after every number; ties by index (qsort is not stable). */
static int cr_rank_cmp(const void *a, const void *b) {
    const cr_rank_pair *x = a, *y = b;
    int xn = isnan(x->s), yn = isnan(y->s);
    if (xn != yn) return xn - yn;
    if (!xn && x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static float cr_rank_one(const cr_model *m, const float *p) {
    if (m->formula == CR_RANK_WEIGHTED_SUM) {
        float acc = 0.0f;
        for (int k = 0; k < m->n_out; k++) acc += m->rank_w[k] * p[k];
        return acc;
    }
    double acc = 1.0;
    for (int k = 0; k < m->n_out; k++)
        if (m->rank_w[k] != 0.0f) acc *= pow(p[k] > 1e-12f ? p[k] : 1e-12, m->rank_w[k]);
    return (float)acc;
}

static void cr_rank_into(const cr_model *m, int64_t n, const float *scores, float *ranking,
                         int64_t *order, cr_rank_pair *pairs) {
    for (int64_t i = 0; i < n; i++) {
        ranking[i] = cr_rank_one(m, scores + (size_t)i * (size_t)m->n_out);
        pairs[i].s = ranking[i];
        pairs[i].i = i;
    }
    qsort(pairs, (size_t)n, sizeof *pairs, cr_rank_cmp);
    for (int64_t i = 0; i < n; i++) order[i] = pairs[i].i;
}

cr_status cr_model_rank(const cr_model *m, int64_t n, const float *scores, float *ranking,
                        int64_t *order, cr_error *e) {
    if (n < 0) return cr_err(e, CR_ERR_ARG, "ranking %lld candidates", (long long)n);
    cr_rank_pair *pairs = malloc((size_t)(n ? n : 1) * sizeof *pairs);
    if (!pairs) return cr_err(e, CR_ERR_NOMEM, "out of memory ranking %lld candidates", (long long)n);
    cr_rank_into(m, n, scores, ranking, order, pairs);
    free(pairs);
    return CR_OK;
}

/* ---- a request ------------------------------------------------------------------------ */

/* ctx[fi].data NULL marks a candidate input, read from cand[fi]. */
static cr_status cr_request_run(const cr_model *m, cr_req_slot *sl, const cr_column *ctx,
                                int64_t n_cand, const cr_column *cand, cr_response *rs,
                                cr_error *e) {
    const cr_schema *s = &m->s;
    const int NF = s->n_features;
    int64_t missing = 0;
    for (int fi = 0; fi < NF; fi++) {
        sl->is_ctx[m->feat_slot[fi]] = ctx[fi].data != NULL;
        if (!ctx[fi].data) continue;
        int q = m->feat_slot[fi] - s->n_cat;
        int64_t *off = q >= 0 && q < s->n_multi ? sl->ctx.bag_off[q] : NULL;
        CR_TRY(cr_encode_input(m, fi, &ctx[fi], 0, 1, CR_ENC_CONTEXT, &sl->ctx, off, sl->ctx_ids,
                               sl->ctx_cap, &missing, e));
    }
    sl->ctx.B = 1;
    for (int64_t c0 = 0; c0 < n_cand; c0 += CR_REQ_CHUNK) {
        int B = (int)(n_cand - c0 < CR_REQ_CHUNK ? n_cand - c0 : CR_REQ_CHUNK);
        for (int fi = 0; fi < NF; fi++) {
            if (ctx[fi].data) continue;
            int slot = m->feat_slot[fi], q = slot - s->n_cat;
            int64_t *off = q >= 0 && q < s->n_multi ? sl->cand.bag_off[q] : NULL;
            CR_TRY(cr_encode_input(m, fi, &cand[fi], c0, B, CR_ENC_CANDIDATE, &sl->cand, off,
                                   sl->cand_ids, sl->cand_cap, &missing, e));
        }
        sl->cand.B = B;
        const float *out;
        CR_TRY(cr_req_forward(m->plan, sl->ws, sl->is_ctx, &sl->ctx, &sl->cand, c0 > 0, &out, e));
        for (int o = 0; o < m->n_out; o++) {
            int h = m->out_head[o];
            float *p = sl->pred + (size_t)h * B;
            if (m->r->cfg.heads[h].kind == CR_HEAD_BINARY)
                cr_sigmoid_forward(p, out + (size_t)h * B, (size_t)B);
            else
                memcpy(p, out + (size_t)h * B, (size_t)B * sizeof(float));
            for (int i = 0; i < B; i++) rs->scores[(size_t)(c0 + i) * m->n_out + o] = p[i];
        }
    }
    size_t need = (size_t)n_cand * sizeof(cr_rank_pair);
    if (need > sl->sort_cap) {
        void *p = realloc(sl->sort, need);
        if (!p) return cr_err(e, CR_ERR_NOMEM, "out of memory ranking %lld candidates",
                              (long long)n_cand);
        sl->sort = p;
        sl->sort_cap = need;
    }
    cr_rank_into(m, n_cand, rs->scores, rs->ranking, rs->order, sl->sort);
    rs->n_missing = missing;
    return CR_OK;
}

static cr_status cr_response_check(const cr_response *rs, int64_t n, cr_error *e) {
    if (!rs || n < 1 || !rs->scores || !rs->ranking || !rs->order)
        return cr_err(e, CR_ERR_ARG, "request: %lld candidates, expected >= 1 with every buffer "
                      "given", (long long)n);
    return CR_OK;
}

cr_status cr_model_score_request(const cr_model *m, const cr_request *rq, cr_response *rs,
                                 cr_error *e) {
    if (!m || !rq || !rq->context || !rq->candidates)
        return cr_err(e, CR_ERR_ARG, "request: the model, the context and the candidates are "
                      "required");
    CR_TRY(cr_response_check(rs, rq->n_candidates, e));
    cr_req_slot *sl = NULL;
    CR_TRY(cr_slot_get(m, &sl, e));
    /* the text as columns: the context's row, and the candidates' row-major
     * table read with a stride of one row */
    const int NF = m->s.n_features;
    cr_column *ctx = sl->cols, *cand = sl->cols + NF;
    for (int fi = 0; fi < NF; fi++) {
        ctx[fi] = (cr_column){CR_COL_TEXT, rq->context[fi] ? rq->context + fi : NULL, 1};
        cand[fi] = (cr_column){CR_COL_TEXT, rq->candidates + fi, NF};
    }
    cr_status st = cr_request_run(m, sl, ctx, rq->n_candidates, cand, rs, e);
    cr_slot_put(m, sl);
    return st;
}

cr_status cr_model_score_request_columns(const cr_model *m, const cr_request_columns *rq,
                                         cr_response *rs, cr_error *e) {
    if (!m || !rq || !rq->context || !rq->candidates)
        return cr_err(e, CR_ERR_ARG, "request: the model, the context and the candidates are "
                      "required");
    CR_TRY(cr_response_check(rs, rq->n_candidates, e));
    for (int fi = 0; fi < m->s.n_features; fi++)
        CR_TRY(rq->context[fi].data
                   ? cr_check_column(m, "context", fi, 1, &rq->context[fi], e)
                   : cr_check_column(m, "candidates", fi, rq->n_candidates, &rq->candidates[fi], e));
    cr_req_slot *sl = NULL;
    CR_TRY(cr_slot_get(m, &sl, e));
    cr_status st = cr_request_run(m, sl, rq->context, rq->n_candidates, rq->candidates, rs, e);
    cr_slot_put(m, sl);
    return st;
}
