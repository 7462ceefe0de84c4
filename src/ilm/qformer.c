/*
 * qformer.c - the item encoder's parameters, checkpoint, workspace and
 * forward pass (the backward pass is in qformer_backward.c). A layer is
 * pre-norm:
 *   x  = x + SelfAttn(LN1(x))          over [queries; text], BLIP-2 mask
 *   xq = xq + CrossAttn(LNc(xq), KV)   queries only, every layer
 *   x  = x + FFN_s(LN2_s(x))           s = query or text stream weights
 * then a final LayerNorm shared by both streams. KV are the CF tokens:
 * LN(reshape(cf_w cf + cf_b) + cf_type[kind]). This file never prints and
 * never allocates after cr_qformer_ws_init.
 */
#include "qformer.h"

#include "../core/ptable_io.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CR_QF_LN_EPS 1e-5f

void cr_qformer_cfg_default(cr_qformer_cfg *c) {
    memset(c, 0, sizeof *c);
    c->nq = 8;
    c->layers = 2;
    c->width = 64;
    c->heads = 4;
    c->ffn = 256;
    c->n_kv = 4;
    c->max_text = 32;
    c->embed = 64;
}

cr_status cr_qformer_cfg_check(const cr_qformer_cfg *c, cr_error *e) {
#define CR_QF_RANGE_(f, lo, hi)                                                       \
    if (c->f < (lo) || c->f > (hi))                                                   \
        return cr_err(e, CR_ERR_ARG, "item encoder: " #f " must be in %d..%d, got %d", \
                      (lo), (hi), c->f);
    CR_QF_RANGE_(nq, 1, 256)
    CR_QF_RANGE_(layers, 1, 64)
    CR_QF_RANGE_(width, 2, 8192)
    CR_QF_RANGE_(heads, 1, 256)
    CR_QF_RANGE_(ffn, 1, 65536)
    CR_QF_RANGE_(n_kv, 1, 256)
    CR_QF_RANGE_(d_cf, 1, 65536)
    CR_QF_RANGE_(vocab, 4, 1 << 24)
    CR_QF_RANGE_(max_text, 2, 4096)
    CR_QF_RANGE_(embed, 1, 8192)
#undef CR_QF_RANGE_
    if (c->width % c->heads)
        return cr_err(e, CR_ERR_ARG, "item encoder: width %d is not a multiple of heads %d",
                      c->width, c->heads);
    return CR_OK;
}

float *cr_qformer_p(const cr_qformer *m, int idx) { return cr_ptable_ptr(&m->pt, m->pt.data, idx); }
float *cr_qformer_g(const cr_qformer *m, int idx) { return cr_ptable_ptr(&m->pt, m->grad, idx); }

/* Register one tensor; a vector (cols 0) is exempt from weight decay. */
static int cr_qf_reg(cr_qformer *m, const char *name, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    return cr_ptable_add(&m->pt, name, cols ? 2 : 1, shape, cols ? 0 : CR_PARAM_NO_DECAY);
}

static cr_status cr_qf_register(cr_qformer *m, cr_error *e) {
    const cr_qformer_cfg *c = &m->c;
    int64_t NQ = c->nq, W = c->width, F = c->ffn, NKV = c->n_kv, D = c->d_cf, V = c->vocab,
            TM = c->max_text, E = c->embed;
    (void)F;
    char name[CR_MAX_NAME];
#define CR_QF_REG_(f, r, cc)                                                   \
    if ((m->ix.f = cr_qf_reg(m, #f, (r), (cc))) < 0) goto oom;
    CR_QF_TENSORS(CR_QF_REG_)
#undef CR_QF_REG_
    m->lx = cr_alloc(sizeof *m->lx * (size_t)c->layers);
    if (!m->lx) goto oom;
    for (int l = 0; l < c->layers; l++) {
#define CR_QF_REG_(f, r, cc)                                                   \
    snprintf(name, sizeof name, "layers.%d." #f, l);                           \
    if ((m->lx[l].f = cr_qf_reg(m, name, (r), (cc))) < 0) goto oom;
        CR_QF_LAYER_TENSORS(CR_QF_REG_)
#undef CR_QF_REG_
    }
    (void)NQ, (void)NKV, (void)D, (void)V, (void)TM, (void)E;
    return cr_ptable_alloc(&m->pt, e);
oom:
    return cr_err(e, CR_ERR_NOMEM, "item encoder: out of memory registering parameters");
}

static void cr_qf_fill(cr_qformer *m, int idx, float v) {
    float *p = cr_qformer_p(m, idx);
    for (size_t i = 0; i < m->pt.t[idx].numel; i++) p[i] = v;
}

cr_status cr_qformer_init(cr_qformer *m, const cr_qformer_cfg *c, uint64_t seed, cr_error *e) {
    memset(m, 0, sizeof *m);
    CR_TRY(cr_qformer_cfg_check(c, e));
    m->c = *c;
    cr_ptable_init(&m->pt);
    cr_status s = cr_qf_register(m, e);
    if (s != CR_OK) {
        cr_qformer_free(m);
        return s;
    }
    /* Matrices N(0, 0.02) (BERT's and BLIP-2's initializer_range), vectors
     * 0, LayerNorm gains 1. The slab is zeroed by cr_alloc. */
    cr_rng r;
    cr_rng_seed(&r, seed);
    for (int i = 0; i < m->pt.n; i++)
        if (m->pt.t[i].ndim == 2) cr_rng_fill_normal(&r, cr_qformer_p(m, i), m->pt.t[i].numel, 0.02f);
    cr_qf_fill(m, m->ix.cf_ln_w, 1.0f);
    cr_qf_fill(m, m->ix.lnf_w, 1.0f);
    for (int l = 0; l < c->layers; l++) {
        cr_qf_fill(m, m->lx[l].ln1_w, 1.0f);
        cr_qf_fill(m, m->lx[l].lnc_w, 1.0f);
        cr_qf_fill(m, m->lx[l].ln2q_w, 1.0f);
        cr_qf_fill(m, m->lx[l].ln2t_w, 1.0f);
    }
    cr_qf_fill(m, m->ix.logit_scale, (float)log(1.0 / 0.07)); /* CLIP's initial temperature */
    return CR_OK;
}

cr_status cr_qformer_grad_alloc(cr_qformer *m, cr_error *e) {
    if (m->grad) return CR_OK;
    m->grad = cr_alloc_e(sizeof(float) * m->pt.total, e, "item encoder gradients");
    return m->grad ? CR_OK : CR_ERR_NOMEM;
}

void cr_qformer_zero_grad(cr_qformer *m) {
    if (m->grad) memset(m->grad, 0, sizeof(float) * m->pt.total);
}

void cr_qformer_free(cr_qformer *m) {
    cr_ptable_free(&m->pt);
    cr_free(m->grad);
    cr_free(m->lx);
    memset(m, 0, sizeof *m);
}

/* ---- checkpoint ------------------------------------------------------------------ */
#define CR_QF_CFG_FIELDS(X)                                                   \
    X(nq) X(layers) X(width) X(heads) X(ffn) X(n_kv) X(d_cf) X(vocab) X(max_text) X(embed)

cr_status cr_qformer_save(const cr_qformer *m, const char *path, const char *const *meta_kv,
                          int n_meta, cr_error *e) {
    cr_st_writer w;
    cr_st_writer_init(&w);
    char buf[32];
    cr_status s = cr_st_add_meta(&w, "format", "crossrec.qformer", e);
#define CR_QF_META_(f)                                                        \
    if (s == CR_OK) {                                                         \
        snprintf(buf, sizeof buf, "%d", m->c.f);                              \
        s = cr_st_add_meta(&w, #f, buf, e);                                   \
    }
    CR_QF_CFG_FIELDS(CR_QF_META_)
#undef CR_QF_META_
    for (int i = 0; s == CR_OK && i < n_meta; i++)
        s = cr_st_add_meta(&w, meta_kv[2 * i], meta_kv[2 * i + 1], e);
    if (s == CR_OK) s = cr_ptable_to_st(&m->pt, m->pt.data, NULL, &w, e);
    if (s == CR_OK) s = cr_st_save(&w, path, e);
    cr_st_writer_free(&w);
    return s;
}

cr_status cr_qformer_load(cr_qformer *m, const char *path, cr_error *e) {
    memset(m, 0, sizeof *m);
    cr_st_file st;
    CR_TRY(cr_st_open(&st, path, e));
    cr_status s = CR_OK;
    const char *fmt = cr_st_meta(&st, "format");
    cr_qformer_cfg c;
    memset(&c, 0, sizeof c);
    if (!fmt || strcmp(fmt, "crossrec.qformer")) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: not an item encoder checkpoint (format '%s', expected "
                   "'crossrec.qformer')", path, fmt ? fmt : "none");
        goto done;
    }
#define CR_QF_READ_(f)                                                        \
    if (s == CR_OK) {                                                         \
        const char *v = cr_st_meta(&st, #f);                                   \
        char *end = NULL;                                                     \
        long x = v ? strtol(v, &end, 10) : 0;                                 \
        if (!v || *end || x <= 0 || x > (1L << 30))                           \
            s = cr_err(e, CR_ERR_FORMAT, "%s: metadata '" #f "' missing or not a positive "  \
                       "integer", path);                                      \
        else c.f = (int)x;                                                    \
    }
    CR_QF_CFG_FIELDS(CR_QF_READ_)
#undef CR_QF_READ_
    if (s != CR_OK) goto done;
    if ((s = cr_qformer_init(m, &c, 0, e)) != CR_OK) goto done;
    if ((s = cr_ptable_from_st(&m->pt, m->pt.data, NULL, &st, 0, e)) != CR_OK) cr_qformer_free(m);
done:
    if (s != CR_OK) cr_err_prefix(e, "loading %s", path);
    cr_st_close(&st);
    return s;
}

/* ---- workspace ------------------------------------------------------------------- */
static size_t cr_qf_al(size_t n) { return (n + 15) & ~(size_t)15; }

cr_status cr_qformer_ws_init(cr_qformer_ws *w, const cr_qformer *m, int max_rows, int max_text,
                             cr_error *e) {
    memset(w, 0, sizeof *w);
    const cr_qformer_cfg *c = &m->c;
    if (max_rows < 1 || max_text < 0 || max_text > c->max_text)
        return cr_err(e, CR_ERR_ARG, "item encoder workspace: %d rows, %d tokens (max %d)",
                      max_rows, max_text, c->max_text);
    w->max_rows = max_rows;
    w->max_text = max_text;
    size_t Bm = (size_t)max_rows, W = (size_t)c->width, F = (size_t)c->ffn, NQ = (size_t)c->nq;
    size_t NKV = (size_t)c->n_kv, NH = (size_t)c->heads, L = (size_t)c->layers;
    size_t S = NQ + (size_t)max_text, R = Bm * S, RQ = Bm * NQ, RK = Bm * NKV;
    size_t att = Bm * NH * S * S, catt = Bm * NH * NQ * NKV;
    size_t scr = att > catt ? att : catt;
    /* sizes in float, in the order the pointers are assigned below */
    size_t per_layer = cr_qf_al(R * W) * 6 + cr_qf_al(R) * 4 + cr_qf_al(R * 3 * W) +
                       cr_qf_al(att) + cr_qf_al(RQ * W) * 3 + cr_qf_al(RQ) * 2 +
                       cr_qf_al(RK * 2 * W) + cr_qf_al(catt) + cr_qf_al(R * F) * 2;
    size_t global = cr_qf_al(Bm * S * S) + cr_qf_al(RK * W) * 2 + cr_qf_al(RK) * 2 +
                    cr_qf_al(R * W) * 3 + cr_qf_al(R) * 2 + cr_qf_al(Bm * (size_t)c->d_cf);
    size_t scratch = cr_qf_al(R * W) + cr_qf_al(R * 3 * W) * 2 + cr_qf_al(R * F) * 2 +
                     cr_qf_al(RK * W) + cr_qf_al(RK * 2 * W) + cr_qf_al(scr);
    size_t total = per_layer * L + global + scratch;
    w->slab = cr_alloc_e(sizeof(float) * total, e, "item encoder workspace");
    float ***lists[] = {&w->xin, &w->ln1, &w->ln1_m, &w->ln1_r, &w->qkv, &w->att, &w->ao,
                        &w->x1, &w->lnc, &w->lnc_m, &w->lnc_r, &w->cq, &w->ckv, &w->catt,
                        &w->co, &w->x2, &w->ln2, &w->ln2_m, &w->ln2_r, &w->h, &w->g};
    int ok = w->slab != NULL;
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        *lists[i] = cr_alloc(sizeof(float *) * (L + 1));
        ok = ok && *lists[i];
    }
    w->ids = cr_alloc(sizeof(int32_t) * Bm * (size_t)(max_text ? max_text : 1));
    w->len = cr_alloc(sizeof(int32_t) * Bm);
    w->kind = cr_alloc(Bm);
    if (!ok || !w->ids || !w->len || !w->kind) {
        cr_qformer_ws_free(w);
        return cr_err(e, CR_ERR_NOMEM, "item encoder workspace: out of memory (%zu floats)",
                      total);
    }
    float *p = w->slab;
#define TAKE_(n) (p += cr_qf_al(n), p - cr_qf_al(n))
    for (size_t l = 0; l < L; l++) {
        w->xin[l] = TAKE_(R * W);
        w->ln1[l] = TAKE_(R * W);
        w->ao[l] = TAKE_(R * W);
        w->x1[l] = TAKE_(R * W);
        w->x2[l] = TAKE_(R * W);
        w->ln2[l] = TAKE_(R * W);
        w->ln1_m[l] = TAKE_(R);
        w->ln1_r[l] = TAKE_(R);
        w->ln2_m[l] = TAKE_(R);
        w->ln2_r[l] = TAKE_(R);
        w->qkv[l] = TAKE_(R * 3 * W);
        w->att[l] = TAKE_(att);
        w->lnc[l] = TAKE_(RQ * W);
        w->cq[l] = TAKE_(RQ * W);
        w->co[l] = TAKE_(RQ * W);
        w->lnc_m[l] = TAKE_(RQ);
        w->lnc_r[l] = TAKE_(RQ);
        w->ckv[l] = TAKE_(RK * 2 * W);
        w->catt[l] = TAKE_(catt);
        w->h[l] = TAKE_(R * F);
        w->g[l] = TAKE_(R * F);
    }
    w->mask = TAKE_(Bm * S * S);
    w->kv0 = TAKE_(RK * W);
    w->kv = TAKE_(RK * W);
    w->kv_m = TAKE_(RK);
    w->kv_r = TAKE_(RK);
    w->xin[L] = TAKE_(R * W);
    w->out = TAKE_(R * W);
    w->dout = TAKE_(R * W);
    w->lnf_m = TAKE_(R);
    w->lnf_r = TAKE_(R);
    w->cf = TAKE_(Bm * (size_t)c->d_cf);
    w->dres = TAKE_(R * W);
    w->d1 = TAKE_(R * 3 * W);
    w->d2 = TAKE_(R * 3 * W);
    w->dF = TAKE_(R * F);
    w->dF2 = TAKE_(R * F);
    w->dkv = TAKE_(RK * W);
    w->dckv = TAKE_(RK * 2 * W);
    w->scr = TAKE_(scr);
#undef TAKE_
    CR_ASSERT((size_t)(p - w->slab) == total);
    return CR_OK;
}

void cr_qformer_ws_free(cr_qformer_ws *w) {
    float ***lists[] = {&w->xin, &w->ln1, &w->ln1_m, &w->ln1_r, &w->qkv, &w->att, &w->ao,
                        &w->x1, &w->lnc, &w->lnc_m, &w->lnc_r, &w->cq, &w->ckv, &w->catt,
                        &w->co, &w->x2, &w->ln2, &w->ln2_m, &w->ln2_r, &w->h, &w->g};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) cr_free(*lists[i]);
    cr_free(w->slab);
    cr_free(w->ids);
    cr_free(w->len);
    cr_free(w->kind);
    memset(w, 0, sizeof *w);
}

/* ---- layout helpers ---------------------------------------------------------------
 * Stream-major (query block, then text block) lets each stream's linear
 * layers run as one GEMM; attention wants each sequence contiguous. */
void cr_qf_pack(float *seq, const float *sm, int B, int NQ, int T, int C) {
    size_t S = (size_t)(NQ + T), RQ = (size_t)B * NQ;
    for (int b = 0; b < B; b++) {
        memcpy(seq + (size_t)b * S * C, sm + (size_t)b * NQ * C, sizeof(float) * NQ * C);
        if (T)
            memcpy(seq + ((size_t)b * S + NQ) * C, sm + (RQ + (size_t)b * T) * C,
                   sizeof(float) * T * C);
    }
}

void cr_qf_unpack(float *sm, const float *seq, int B, int NQ, int T, int C) {
    size_t S = (size_t)(NQ + T), RQ = (size_t)B * NQ;
    for (int b = 0; b < B; b++) {
        memcpy(sm + (size_t)b * NQ * C, seq + (size_t)b * S * C, sizeof(float) * NQ * C);
        if (T)
            memcpy(sm + (RQ + (size_t)b * T) * C, seq + ((size_t)b * S + NQ) * C,
                   sizeof(float) * T * C);
    }
}

float *cr_qformer_query_out(const cr_qformer_ws *w) { return w->out; }
float *cr_qformer_text_out(const cr_qformer *m, const cr_qformer_ws *w) {
    return w->out + (size_t)w->B * m->c.nq * m->c.width;
}

/* ---- forward ---------------------------------------------------------------------- */
void cr_qformer_forward(const cr_qformer *m, cr_qformer_ws *w, const float *cf,
                        const uint8_t *kind, const int32_t *ids, const int32_t *len, int B,
                        int T, cr_qf_mode mode) {
    const cr_qformer_cfg *c = &m->c;
    CR_ASSERT(B >= 1 && B <= w->max_rows && T >= 0 && T <= w->max_text && cf);
    CR_ASSERT(T == 0 || (ids && len));
    int W = c->width, F = c->ffn, NQ = c->nq, NKV = c->n_kv, NH = c->heads, HD = W / NH;
    int S = NQ + T, R = B * S, RQ = B * NQ, RT = B * T, RK = B * NKV;
    w->B = B, w->T = T, w->mode = (int)mode;
    memcpy(w->cf, cf, sizeof(float) * (size_t)B * c->d_cf);
    for (int b = 0; b < B; b++) {
        w->kind[b] = kind ? kind[b] : CR_QF_ITEM;
        CR_ASSERT(w->kind[b] <= CR_QF_USER);
        if (!T) continue;
        w->len[b] = len[b];
        CR_ASSERT(len[b] >= 1 && len[b] <= T);
        for (int t = 0; t < T; t++) {
            int32_t id = t == 0 ? (mode == CR_QF_ITG ? CR_QF_DEC(c) : CR_QF_CLS(c))
                         : t < len[b] ? ids[(size_t)b * T + t] : CR_QF_EOS(c);
            CR_ASSERT(id >= 0 && id < c->vocab);
            w->ids[(size_t)b * T + t] = id;
        }
    }
    /* CF tokens: one linear layer makes NKV tokens of W per vector, then the
     * row's type vector and a LayerNorm. */
    cr_linear_forward(w->kv0, w->cf, cr_qformer_p(m, m->ix.cf_w), cr_qformer_p(m, m->ix.cf_b),
                      B, c->d_cf, NKV * W, c->d_cf, NKV * W);
    const float *type = cr_qformer_p(m, m->ix.cf_type);
    for (int r = 0; r < RK; r++)
        for (int j = 0; j < W; j++) w->kv0[(size_t)r * W + j] += type[w->kind[r / NKV] * W + j];
    cr_layernorm_forward(w->kv, w->kv_m, w->kv_r, w->kv0, cr_qformer_p(m, m->ix.cf_ln_w),
                         cr_qformer_p(m, m->ix.cf_ln_b), RK, W, CR_QF_LN_EPS);
    /* embeddings: the learned queries, and token + position for the text */
    float *x = w->xin[0];
    const float *qry = cr_qformer_p(m, m->ix.query);
    for (int b = 0; b < B; b++) memcpy(x + (size_t)b * NQ * W, qry, sizeof(float) * NQ * W);
    const float *tok = cr_qformer_p(m, m->ix.tok_emb), *pos = cr_qformer_p(m, m->ix.pos_emb);
    for (int r = 0; r < RT; r++) {
        float *o = x + ((size_t)RQ + r) * W;
        const float *te = tok + (size_t)w->ids[r] * W, *pe = pos + (size_t)(r % T) * W;
        for (int j = 0; j < W; j++) o[j] = te[j] + pe[j];
    }
    cr_qf_mask_fill(w->mask, T ? w->len : NULL, (int)mode, B, NQ, T);
    for (int l = 0; l < c->layers; l++) {
        const cr_qf_layer_idx *ix = &m->lx[l];
#define P_(f) cr_qformer_p(m, ix->f)
        x = w->xin[l];
        /* self-attention over each [queries; text] sequence */
        cr_layernorm_forward(w->ln1[l], w->ln1_m[l], w->ln1_r[l], x, P_(ln1_w), P_(ln1_b), R, W,
                             CR_QF_LN_EPS);
        cr_linear_forward(w->d1, w->ln1[l], P_(qkv_w), P_(qkv_b), R, W, 3 * W, W, 3 * W);
        cr_qf_pack(w->qkv[l], w->d1, B, NQ, T, 3 * W);
        cr_mha_forward(w->d2, w->att[l], w->qkv[l], w->qkv[l] + W, w->qkv[l] + 2 * W, w->mask,
                       (size_t)S * S, B, S, S, NH, HD, 3 * W, 3 * W);
        cr_qf_unpack(w->ao[l], w->d2, B, NQ, T, W);
        cr_linear_forward(w->x1[l], w->ao[l], P_(proj_w), P_(proj_b), R, W, W, W, W);
        for (size_t i = 0; i < (size_t)R * W; i++) w->x1[l][i] += x[i];
        /* cross-attention of the queries to the CF tokens */
        cr_layernorm_forward(w->lnc[l], w->lnc_m[l], w->lnc_r[l], w->x1[l], P_(lnc_w), P_(lnc_b),
                             RQ, W, CR_QF_LN_EPS);
        cr_linear_forward(w->cq[l], w->lnc[l], P_(cq_w), P_(cq_b), RQ, W, W, W, W);
        cr_linear_forward(w->ckv[l], w->kv, P_(ckv_w), P_(ckv_b), RK, W, 2 * W, W, 2 * W);
        cr_mha_forward(w->co[l], w->catt[l], w->cq[l], w->ckv[l], w->ckv[l] + W, NULL, 0, B, NQ,
                       NKV, NH, HD, W, 2 * W);
        cr_linear_forward(w->x2[l], w->co[l], P_(co_w), P_(co_b), RQ, W, W, W, W);
        for (size_t i = 0; i < (size_t)RQ * W; i++) w->x2[l][i] += w->x1[l][i];
        memcpy(w->x2[l] + (size_t)RQ * W, w->x1[l] + (size_t)RQ * W, sizeof(float) * RT * W);
        /* feed-forward, each stream with its own weights */
        float *xn = w->xin[l + 1];
        for (int s = 0; s < 2; s++) {
            int r0 = s ? RQ : 0, n = s ? RT : RQ;
            if (!n) continue;
            size_t o = (size_t)r0 * W, oF = (size_t)r0 * F;
            cr_layernorm_forward(w->ln2[l] + o, w->ln2_m[l] + r0, w->ln2_r[l] + r0, w->x2[l] + o,
                                 s ? P_(ln2t_w) : P_(ln2q_w), s ? P_(ln2t_b) : P_(ln2q_b), n, W,
                                 CR_QF_LN_EPS);
            cr_linear_forward(w->h[l] + oF, w->ln2[l] + o, s ? P_(fc1t_w) : P_(fc1q_w),
                              s ? P_(fc1t_b) : P_(fc1q_b), n, W, F, W, F);
            cr_gelu_forward(w->g[l] + oF, w->h[l] + oF, (size_t)n * F);
            cr_linear_forward(xn + o, w->g[l] + oF, s ? P_(fc2t_w) : P_(fc2q_w),
                              s ? P_(fc2t_b) : P_(fc2q_b), n, F, W, F, W);
        }
        for (size_t i = 0; i < (size_t)R * W; i++) xn[i] += w->x2[l][i];
#undef P_
    }
    cr_layernorm_forward(w->out, w->lnf_m, w->lnf_r, w->xin[c->layers],
                         cr_qformer_p(m, m->ix.lnf_w), cr_qformer_p(m, m->ix.lnf_b), R, W,
                         CR_QF_LN_EPS);
    memset(w->dout, 0, sizeof(float) * (size_t)R * W);
}
