/*
 * phase2.c - phase 2 of the Item-Language Model: the adapter (linear after
 * the Q-Former, or the MLP baseline straight from the CF vector), one
 * batch through the frozen LM with soft tokens spliced in, the AdamW loop
 * over encoder + adapter only, and the run that proves the LM untouched
 * (weight hash and held-out perplexity before and after). The LM is only
 * ever read: its workspace is FROZEN, so no weight gradient exists.
 */
#include "phase2.h"

#include "../core/ptable_io.h"
#include "../kernels/kernels.h"
#include "../train/lm_train.h"
#include "../train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model ------------------------------------------------------------------------ */
static cr_status cr_p2_add(cr_p2_model *m, int *idx, const char *name, int64_t r, int64_t c,
                           cr_error *e) {
    int64_t shape[2] = {r, c};
    *idx = cr_ptable_add(&m->pt, name, c ? 2 : 1, shape, c ? 0 : CR_PARAM_NO_DECAY);
    return *idx < 0 ? cr_err(e, CR_ERR_NOMEM, "adapter: out of memory") : CR_OK;
}

static cr_status cr_p2_alloc(cr_p2_model *m, cr_error *e) {
    CR_TRY(cr_ptable_alloc(&m->pt, e));
    m->grad = cr_alloc(sizeof(float) * m->pt.total);
    if (!m->grad) return cr_err(e, CR_ERR_NOMEM, "adapter: out of memory for gradients");
    return CR_OK;
}

static float *cr_p2_p(const cr_p2_model *m, int i) { return cr_ptable_ptr(&m->pt, m->pt.data, i); }
static float *cr_p2_g(const cr_p2_model *m, int i) { return cr_ptable_ptr(&m->pt, m->grad, i); }

/* Phase 2 reads only the query path: the text branch and the phase-1 heads
 * are frozen so AdamW's decay does not wear them down for nothing. */
static void cr_p2_freeze_text(cr_qformer *q) {
    const cr_qf_idx *x = &q->ix;
    int off[] = {x->tok_emb, x->pos_emb, x->proj_item, x->proj_text, x->itm_w, x->itm_b,
                 x->logit_scale};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++) q->pt.t[off[i]].flags |= CR_PARAM_FROZEN;
    for (int l = 0; l < q->c.layers; l++) {
        const cr_qf_layer_idx *y = &q->lx[l];
        int lo[] = {y->ln2t_w, y->ln2t_b, y->fc1t_w, y->fc1t_b, y->fc2t_w, y->fc2t_b};
        for (size_t i = 0; i < sizeof lo / sizeof *lo; i++) q->pt.t[lo[i]].flags |= CR_PARAM_FROZEN;
    }
}

static cr_status cr_p2_register(cr_p2_model *m, cr_error *e) {
    cr_ptable_init(&m->pt);
    m->w = m->b = m->w1 = m->b1 = m->w2 = m->b2 = -1;
    if (m->kind == CR_P2_QFORMER) {
        CR_TRY(cr_p2_add(m, &m->w, "adapter.w", m->C, m->W, e));
        CR_TRY(cr_p2_add(m, &m->b, "adapter.b", m->C, 0, e));
    } else {
        CR_TRY(cr_p2_add(m, &m->w1, "mlp.w1", m->H, m->D, e));
        CR_TRY(cr_p2_add(m, &m->b1, "mlp.b1", m->H, 0, e));
        CR_TRY(cr_p2_add(m, &m->w2, "mlp.w2", (int64_t)m->nq * m->C, m->H, e));
        CR_TRY(cr_p2_add(m, &m->b2, "mlp.b2", (int64_t)m->nq * m->C, 0, e));
    }
    return cr_p2_alloc(m, e);
}

cr_status cr_p2_model_qformer(cr_p2_model *m, const char *qformer_path, int C, float emb_rms,
                              uint64_t seed, cr_error *e) {
    memset(m, 0, sizeof *m);
    m->kind = CR_P2_QFORMER;
    cr_status s = cr_qformer_load(&m->qf, qformer_path, e);
    if (s == CR_OK) s = cr_qformer_grad_alloc(&m->qf, e);
    if (s != CR_OK) {
        cr_p2_model_free(m);
        return s;
    }
    cr_p2_freeze_text(&m->qf);
    m->nq = m->qf.c.nq, m->W = m->qf.c.width, m->D = m->qf.c.d_cf, m->C = C;
    if ((s = cr_p2_register(m, e)) != CR_OK) {
        cr_p2_model_free(m);
        return s;
    }
    /* LayerNorm outputs have unit variance per value, so std emb_rms / sqrt(W)
     * gives soft tokens the RMS of the LM's own token embeddings */
    cr_rng r;
    cr_rng_seed(&r, seed * 31 + 5);
    cr_rng_fill_normal(&r, cr_p2_p(m, m->w), (size_t)m->C * m->W, emb_rms / sqrtf((float)m->W));
    return CR_OK;
}

cr_status cr_p2_model_mlp(cr_p2_model *m, int D, int nq, int H, int C, float emb_rms,
                          uint64_t seed, cr_error *e) {
    memset(m, 0, sizeof *m);
    if (D < 1 || nq < 1 || H < 1 || C < 1)
        return cr_err(e, CR_ERR_ARG, "MLP adapter: bad sizes D %d, NQ %d, H %d, C %d", D, nq, H, C);
    m->kind = CR_P2_MLP;
    m->D = D, m->nq = nq, m->H = H, m->C = C;
    cr_status s = cr_p2_register(m, e);
    if (s != CR_OK) {
        cr_p2_model_free(m);
        return s;
    }
    cr_rng r;
    cr_rng_seed(&r, seed * 31 + 7);
    /* PyTorch's default for the first layer; the second is scaled like the
     * linear adapter (GELU of unit-ish inputs has an RMS near 0.5) */
    cr_rng_fill_uniform(&r, cr_p2_p(m, m->w1), (size_t)H * D, 1.0f / sqrtf((float)D));
    cr_rng_fill_normal(&r, cr_p2_p(m, m->w2), (size_t)nq * C * H, 2 * emb_rms / sqrtf((float)H));
    return CR_OK;
}

void cr_p2_model_free(cr_p2_model *m) {
    if (m->kind == CR_P2_QFORMER) cr_qformer_free(&m->qf);
    cr_ptable_free(&m->pt);
    cr_free(m->grad);
    memset(m, 0, sizeof *m);
}

void cr_p2_model_zero_grad(cr_p2_model *m) {
    memset(m->grad, 0, sizeof(float) * m->pt.total);
    if (m->kind == CR_P2_QFORMER) cr_qformer_zero_grad(&m->qf);
}

int64_t cr_p2_model_trainable(const cr_p2_model *m) {
    int64_t n = (int64_t)m->pt.total;
    if (m->kind == CR_P2_QFORMER)
        for (int i = 0; i < m->qf.pt.n; i++)
            if (!(m->qf.pt.t[i].flags & CR_PARAM_FROZEN)) n += (int64_t)m->qf.pt.t[i].numel;
    return n;
}

cr_status cr_p2_model_save(const cr_p2_model *m, const char *dir, const char *const *meta_kv,
                           int n_meta, cr_error *e) {
    char path[4096], buf[256];
    CR_TRY(cr_mkdirs(dir, e));
    if (m->kind == CR_P2_QFORMER) {
        snprintf(path, sizeof path, "%s/qformer.safetensors", dir);
        const char *kv[2] = {"phase", "2"};
        CR_TRY(cr_qformer_save(&m->qf, path, kv, 1, e));
    }
    cr_st_writer w;
    cr_st_writer_init(&w);
    snprintf(buf, sizeof buf, "{\"kind\": \"%s\", \"nq\": %d, \"C\": %d, \"D\": %d, \"W\": %d, "
             "\"H\": %d}", m->kind == CR_P2_QFORMER ? "qformer" : "mlp", m->nq, m->C, m->D, m->W,
             m->H);
    cr_status s = cr_st_add_meta(&w, "format", "crossrec.ilm_adapter", e);
    if (s == CR_OK) s = cr_st_add_meta(&w, "adapter", buf, e);
    for (int i = 0; s == CR_OK && i < n_meta; i++)
        s = cr_st_add_meta(&w, meta_kv[2 * i], meta_kv[2 * i + 1], e);
    if (s == CR_OK) s = cr_ptable_to_st(&m->pt, m->pt.data, NULL, &w, e);
    snprintf(path, sizeof path, "%s/adapter.safetensors", dir);
    if (s == CR_OK) s = cr_st_save(&w, path, e);
    cr_st_writer_free(&w);
    return s;
}

cr_status cr_p2_model_load(cr_p2_model *m, const char *dir, cr_error *e) {
    memset(m, 0, sizeof *m);
    char path[4096], kind[16] = "";
    snprintf(path, sizeof path, "%s/adapter.safetensors", dir);
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    const char *a = cr_st_meta(&f, "adapter"), *fmt = cr_st_meta(&f, "format");
    int nq = 0, C = 0, D = 0, W = 0, H = 0;
    cr_status s = CR_OK;
    if (!a || !fmt || strcmp(fmt, "crossrec.ilm_adapter") ||
        sscanf(a, "{\"kind\": \"%15[a-z]\", \"nq\": %d, \"C\": %d, \"D\": %d, \"W\": %d, \"H\": %d}",
               kind, &nq, &C, &D, &W, &H) != 6)
        s = cr_err(e, CR_ERR_FORMAT, "%s: not an ILM adapter (format crossrec.ilm_adapter with "
                   "its sizes in __metadata__); write one with `crossrec ilm phase2`", path);
    if (s == CR_OK && !strcmp(kind, "qformer")) {
        snprintf(path, sizeof path, "%s/qformer.safetensors", dir);
        s = cr_p2_model_qformer(m, path, C, 0.0f, 0, e);
    } else if (s == CR_OK) {
        s = cr_p2_model_mlp(m, D, nq, H, C, 0.0f, 0, e);
    }
    if (s == CR_OK && (m->nq != nq || m->D != D || m->C != C))
        s = cr_err(e, CR_ERR_SHAPE, "%s: the adapter's sizes (NQ %d, D %d) do not match the "
                   "encoder's (NQ %d, D %d)", dir, nq, D, m->nq, m->D);
    if (s == CR_OK) s = cr_ptable_from_st(&m->pt, m->pt.data, NULL, &f, 0, e);
    cr_st_close(&f);
    if (s != CR_OK) cr_p2_model_free(m);
    return s;
}

/* ---- encoding --------------------------------------------------------------------------- */
cr_status cr_p2_enc_ws_init(cr_p2_enc_ws *w, const cr_p2_model *m, int cap_E, cr_error *e) {
    memset(w, 0, sizeof *w);
    w->cap_E = cap_E;
    size_t nqc = (size_t)cap_E * m->nq * m->C;
    if (m->kind == CR_P2_QFORMER) {
        CR_TRY(cr_qformer_ws_init(&w->q, &m->qf, cap_E, 1, e));
    } else {
        w->hpre = cr_alloc(sizeof(float) * (size_t)cap_E * m->H);
        w->h = cr_alloc(sizeof(float) * (size_t)cap_E * m->H);
        w->dh = cr_alloc(sizeof(float) * (size_t)cap_E * m->H);
        w->dhpre = cr_alloc(sizeof(float) * (size_t)cap_E * m->H);
    }
    w->soft = cr_alloc(sizeof(float) * nqc);
    w->dsoft = cr_alloc(sizeof(float) * nqc);
    w->cf = cr_alloc(sizeof(float) * (size_t)cap_E * m->D);
    if (!w->soft || !w->dsoft || !w->cf ||
        (m->kind == CR_P2_MLP && (!w->hpre || !w->h || !w->dh || !w->dhpre))) {
        cr_p2_enc_ws_free(w);
        return cr_err(e, CR_ERR_NOMEM, "adapter workspace: out of memory for %d entities", cap_E);
    }
    return CR_OK;
}

void cr_p2_enc_ws_free(cr_p2_enc_ws *w) {
    if (w->q.slab) cr_qformer_ws_free(&w->q);
    cr_free(w->hpre), cr_free(w->h), cr_free(w->dh), cr_free(w->dhpre), cr_free(w->soft), cr_free(w->dsoft);
    cr_free(w->cf);
    memset(w, 0, sizeof *w);
}

void cr_p2_encode(const cr_p2_model *m, cr_p2_enc_ws *w, const float *cf, const uint8_t *kind,
                  int E) {
    CR_ASSERT(E >= 1 && E <= w->cap_E);
    size_t nqc = (size_t)E * m->nq * m->C;
    w->E = E;
    memcpy(w->cf, cf, sizeof(float) * (size_t)E * m->D);
    if (m->kind == CR_P2_QFORMER) {
        cr_qformer_forward(&m->qf, &w->q, cf, kind, NULL, NULL, E, 0, CR_QF_ITC);
        /* every query output is one soft token: (E*NQ, W) -> (E*NQ, C) */
        cr_linear_forward(w->soft, cr_qformer_query_out(&w->q), cr_p2_p(m, m->w),
                          cr_p2_p(m, m->b), E * m->nq, m->W, m->C, m->W, m->C);
    } else {
        cr_linear_forward(w->hpre, cf, cr_p2_p(m, m->w1), cr_p2_p(m, m->b1), E, m->D, m->H,
                          m->D, m->H);
        cr_gelu_forward(w->h, w->hpre, (size_t)E * m->H);
        cr_linear_forward(w->soft, w->h, cr_p2_p(m, m->w2), cr_p2_p(m, m->b2), E, m->H,
                          m->nq * m->C, m->H, m->nq * m->C);
    }
    memset(w->dsoft, 0, sizeof(float) * nqc);
}

void cr_p2_encode_backward(cr_p2_model *m, cr_p2_enc_ws *w) {
    int E = w->E;
    if (m->kind == CR_P2_QFORMER) {
        /* the adapter's input gradient lands in the Q-Former's dout (its first
         * E*NQ rows are the query outputs), which backward then reads */
        cr_linear_backward(w->q.dout, cr_p2_g(m, m->w), cr_p2_g(m, m->b), w->dsoft,
                           cr_qformer_query_out(&w->q), cr_p2_p(m, m->w), E * m->nq, m->W,
                           m->C, m->W, m->C);
        cr_qformer_backward(&m->qf, &w->q, NULL);
        return;
    }
    /* the kernels accumulate, so the hidden gradients start from zero */
    memset(w->dh, 0, sizeof(float) * (size_t)E * m->H);
    memset(w->dhpre, 0, sizeof(float) * (size_t)E * m->H);
    cr_linear_backward(w->dh, cr_p2_g(m, m->w2), cr_p2_g(m, m->b2), w->dsoft, w->h,
                       cr_p2_p(m, m->w2), E, m->H, m->nq * m->C, m->H, m->nq * m->C);
    cr_gelu_backward(w->dhpre, w->dh, w->hpre, (size_t)E * m->H);
    cr_linear_backward(NULL, cr_p2_g(m, m->w1), cr_p2_g(m, m->b1), w->dhpre, w->cf,
                       cr_p2_p(m, m->w1), E, m->D, m->H, m->D, m->H);
}

/* ---- one batch through the frozen LM ------------------------------------------------- */
cr_status cr_p2_step_init(cr_p2_step *s, const cr_p2_model *m, const cr_decoder *lm, int cap_B,
                          int cap_T, int cap_E, int train, cr_error *e) {
    memset(s, 0, sizeof *s);
    if (m->C != lm->cfg.dim)
        return cr_err(e, CR_ERR_SHAPE, "the adapter writes %d-wide soft tokens, the LM is %d wide",
                      m->C, lm->cfg.dim);
    if (cap_T > lm->cfg.max_seq)
        return cr_err(e, CR_ERR_LIMIT, "rows of %d tokens exceed the LM's context of %d", cap_T,
                      lm->cfg.max_seq);
    s->train = train;
    /* FROZEN: the LM's workspace has no gradient slab at all, so backward
     * can only produce the input-embedding gradient */
    int flags = train ? CR_DEC_WS_BACKWARD | CR_DEC_WS_FROZEN : 0;
    CR_TRY(cr_p2_enc_ws_init(&s->ew, m, cap_E, e));
    cr_status st = cr_dec_ws_create(&s->dws, lm, cap_B, cap_T, flags, e);
    size_t n = (size_t)cap_B * cap_T;
    if (st == CR_OK) {
        s->emb = cr_alloc(sizeof(float) * n * m->C);
        s->demb = train ? cr_alloc(sizeof(float) * n * m->C) : NULL;
        s->cf = cr_alloc(sizeof(float) * (size_t)cap_E * m->D);
        s->ids = cr_alloc(sizeof(int32_t) * n);
        s->tgt = cr_alloc(sizeof(int32_t) * n);
        if (!s->emb || (train && !s->demb) || !s->cf || !s->ids || !s->tgt)
            st = cr_err(e, CR_ERR_NOMEM, "phase 2: out of memory for %d x %d tokens", cap_B, cap_T);
    }
    if (st != CR_OK) cr_p2_step_free(s);
    return st;
}

void cr_p2_step_free(cr_p2_step *s) {
    cr_p2_enc_ws_free(&s->ew);
    cr_dec_ws_free(&s->dws);
    cr_free(s->emb), cr_free(s->demb), cr_free(s->cf), cr_free(s->ids), cr_free(s->tgt);
    memset(s, 0, sizeof *s);
}

cr_status cr_p2_forward(cr_p2_model *m, cr_p2_step *s, const cr_decoder *lm,
                        const cr_p2_batch *b, const float *item_cf, const float *user_cf,
                        int backward, double *loss, cr_error *e) {
    int B = b->B, T = b->T, C = m->C, D = m->D;
    if (B < 1 || b->E < 1)
        return cr_err(e, CR_ERR_ARG, "phase 2: a batch needs a row and an entity");
    if (B > s->dws.cap_B || T > s->dws.cap_T || b->E > s->ew.cap_E)
        return cr_err(e, CR_ERR_LIMIT, "phase 2: batch %d x %d with %d entities exceeds the "
                      "workspace", B, T, b->E);
    if (backward && !s->train)
        return cr_err(e, CR_ERR_ARG, "phase 2: backward needs a training workspace");
    for (int i = 0; i < b->E; i++) {
        const float *src = b->kind[i] == CR_QF_USER ? user_cf : item_cf;
        memcpy(s->cf + (size_t)i * D, src + (size_t)b->ent[i] * D, sizeof(float) * D);
    }
    cr_p2_encode(m, &s->ew, s->cf, b->kind, b->E);
    for (int r = 0; r < B; r++) {
        memcpy(s->ids + (size_t)r * T, b->ids + (size_t)r * b->cap_T, sizeof(int32_t) * T);
        memcpy(s->tgt + (size_t)r * T, b->tgt + (size_t)r * b->cap_T, sizeof(int32_t) * T);
    }
    CR_TRY(cr_dec_embed(lm, s->emb, s->ids, B * T, e));
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            int32_t k = b->soft[(size_t)r * b->cap_T + t];
            if (k >= 0)
                memcpy(s->emb + ((size_t)r * T + t) * C, s->ew.soft + (size_t)k * C,
                       sizeof(float) * C);
        }
    CR_TRY(cr_dec_forward(lm, &s->dws, NULL, s->emb, s->tgt, B, T, 0, e));
    *loss = s->dws.loss;
    if (!backward) return CR_OK;
    memset(s->demb, 0, sizeof(float) * (size_t)B * T * C);
    CR_TRY(cr_dec_backward(lm, &s->dws, s->demb, e));
    /* each soft position's embedding gradient goes back to the soft token
     * (entity e, query q) that was copied there */
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            int32_t k = b->soft[(size_t)r * b->cap_T + t];
            if (k < 0) continue;
            float *d = s->ew.dsoft + (size_t)k * C;
            const float *g = s->demb + ((size_t)r * T + t) * C;
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
    cr_p2_encode_backward(m, &s->ew);
    return CR_OK;
}

void cr_p2_row_logprob(const cr_p2_step *s, const cr_p2_batch *b, int V, double *sum,
                       int32_t *count) {
    int T = b->T;
    for (int r = 0; r < b->B; r++) {
        double acc = 0;
        int32_t n = 0;
        for (int t = 0; t < T; t++) {
            int32_t y = s->tgt[(size_t)r * T + t];
            if (y < 0) continue;
            const float *l = s->dws.logits + ((size_t)r * T + t) * V;
            float mx = l[0];
            for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            double z = 0;
            for (int v = 0; v < V; v++) z += exp((double)(l[v] - mx));
            acc += (double)(l[y] - mx) - log(z);
            n++;
        }
        sum[r] = acc;
        count[r] = n;
    }
}

/* ---- the LM is only read ------------------------------------------------------------ */
uint64_t cr_p2_lm_hash(const cr_decoder *lm) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < lm->pt.n; i++) {
        const uint8_t *p = (const uint8_t *)lm->w[i];
        size_t n = lm->pt.t[i].numel * sizeof(float);
        for (size_t k = 0; k < n; k++) h = (h ^ p[k]) * 1099511628211ull;
    }
    return h;
}

float cr_p2_emb_rms(const cr_decoder *lm) {
    const float *w = lm->w[lm->tok_emb];
    size_t n = (size_t)lm->cfg.vocab * lm->cfg.dim;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * w[i];
    return n ? (float)sqrt(s / (double)n) : 1.0f;
}

cr_status cr_p2_lm_ppl(const cr_decoder *lm, const cr_p2_tok *tok, const char *path,
                       size_t bytes, int T, int windows, double *ppl, cr_error *e) {
    char *text;
    size_t len;
    CR_TRY(cr_read_file(path, &text, &len, e));
    size_t a = len > bytes ? len - bytes : 0;
    while (a > 0 && a < len && text[a - 1] != '\n') a++; /* start at a line */
    int32_t *ids = NULL;
    size_t n = 0;
    cr_dec_ws ws = {0};
    double loss = 0;
    int64_t cnt = 0;
    if (T > lm->cfg.max_seq) T = lm->cfg.max_seq;
    cr_status s = cr_p2_tok_encode(tok, text + a, len - a, &ids, &n, e);
    if (s == CR_OK) s = cr_dec_ws_create(&ws, lm, 4, T, 0, e);
    if (s == CR_OK)
        s = cr_lm_eval_ids(lm, &ws, ids, n, 4, T, tok->bos, windows, &loss, &cnt, e);
    if (s == CR_OK) *ppl = exp(loss);
    cr_dec_ws_free(&ws);
    cr_free(ids);
    cr_free(text);
    return s;
}

/* ---- training ------------------------------------------------------------------------- */
void cr_phase2_opts_default(cr_phase2_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->steps = 300;
    o->batch = 8;
    o->hist = 3;
    o->max_seq = 96;
    cr_optim_cfg_adamw_cosine(&o->optim, 0.01f, 20);
    o->mlp_nq = 8;
    o->mlp_hidden = 256;
    for (int k = 0; k < CR_P2_NTASK; k++) o->task_w[k] = 1;
    o->held_frac = 0.1;
    o->seed = 1;
    o->log_every = 50;
}

/* A task by its sampling weight. */
static int cr_p2_pick_task(const float *w, cr_rng *r) {
    double tot = 0;
    for (int k = 0; k < CR_P2_NTASK; k++) tot += w[k] > 0 ? w[k] : 0;
    double u = cr_rng_uniform(r) * tot;
    for (int k = 0; k < CR_P2_NTASK; k++) {
        if (w[k] <= 0) continue;
        if (u < w[k]) return k;
        u -= w[k];
    }
    for (int k = CR_P2_NTASK - 1; k >= 0; k--)
        if (w[k] > 0) return k;
    return 0;
}

cr_status cr_p2_fill_batch(cr_p2_batch *b, const cr_p2_tok *tok, const cr_p2_data *d,
                           const cr_phase2_opts *o, cr_rng *r, int32_t *hist, cr_error *e) {
    char buf[1024];
    cr_p2_batch_clear(b);
    for (int row = 0; row < o->batch; row++) {
        cr_p2_example x;
        int ok = 0;
        for (int tries = 0; !ok && tries < 1000; tries++)
            ok = cr_p2_draw(d, cr_p2_pick_task(o->task_w, r), o->hist, r, &x, hist, buf,
                            sizeof buf);
        if (!ok) return cr_err(e, CR_ERR_ARG, "phase 2: no usable training example in 1000 draws "
                               "(too few items with texts, or every task weight 0?)");
        CR_TRY(cr_p2_batch_add(b, tok, &x, e));
    }
    return CR_OK;
}

cr_status cr_phase2_train(cr_p2_model *m, const cr_decoder *lm, const cr_p2_tok *tok,
                          const cr_p2_data *d, const cr_phase2_opts *o, cr_phase2_result *res,
                          cr_error *e) {
    if (o->batch < 1 || o->hist < 1 || o->steps < 0)
        return cr_err(e, CR_ERR_ARG, "phase 2: batch and history must be >= 1, steps >= 0");
    if (d->mf.dim != m->D)
        return cr_err(e, CR_ERR_SHAPE, "phase 2: CF vectors have %d values, the encoder expects "
                      "%d", d->mf.dim, m->D);
    int cap_E = o->batch * (o->hist + 2);
    cr_p2_batch b = {0};
    cr_p2_step st = {0};
    cr_optim opt = {0};
    int32_t *hist = cr_alloc(sizeof(int32_t) * (size_t)o->hist);
    cr_status s = hist ? CR_OK : cr_err(e, CR_ERR_NOMEM, "phase 2: out of memory");
    if (s == CR_OK) s = cr_p2_batch_init(&b, o->batch, o->max_seq, cap_E, m->nq, e);
    if (s == CR_OK) s = cr_p2_step_init(&st, m, lm, o->batch, o->max_seq, cap_E, 1, e);
    /* one optimizer over the adapter and the Q-Former: one global gradient
     * norm; guarded, so a non-finite one stops the run even without clipping */
    cr_optim_init(&opt, &o->optim, o->steps, 1);
    if (s == CR_OK) s = cr_optim_add_dense(&opt, &m->pt, m->pt.data, m->grad, e);
    if (s == CR_OK && m->kind == CR_P2_QFORMER)
        s = cr_optim_add_dense(&opt, &m->qf.pt, m->qf.pt.data, m->qf.grad, e);
    cr_rng r;
    cr_rng_seed(&r, o->seed * 6007 + 3);
    double acc = 0, t0 = cr_now();
    int cnt = 0, reports = 0;
    res->first_loss = res->last_loss = NAN;
    for (int64_t step = 0; s == CR_OK && step < o->steps; step++) {
        double loss;
        if ((s = cr_p2_fill_batch(&b, tok, d, o, &r, hist, e))) break;
        res->truncated += b.truncated;
        cr_p2_model_zero_grad(m);
        if ((s = cr_p2_forward(m, &st, lm, &b, d->mf.item, d->mf.user, 1, &loss, e))) break;
        if (!isfinite(loss)) {
            s = cr_err(e, CR_ERR_LIMIT, "phase 2: the loss became %g at step %lld", loss,
                       (long long)step);
            break;
        }
        if ((s = cr_optim_step(&opt, step, NULL, e))) {
            cr_err_prefix(e, "phase 2");
            break;
        }
        float lr = opt.lr;
        acc += loss, cnt++;
        if ((o->log_every > 0 && (step + 1) % o->log_every == 0) || step + 1 == o->steps) {
            cr_phase2_report rep = {.step = step + 1, .steps = o->steps, .loss = acc / cnt,
                                    .lr = lr, .seconds = cr_now() - t0};
            if (reports++ == 0) res->first_loss = rep.loss;
            res->last_loss = rep.loss;
            acc = 0, cnt = 0;
            if (o->progress) o->progress(o->ctx, &rep);
        }
    }
    res->seconds = cr_now() - t0;
    res->trainable = cr_p2_model_trainable(m);
    cr_optim_free(&opt);
    cr_p2_step_free(&st);
    cr_p2_batch_free(&b);
    cr_free(hist);
    return s;
}

/* A JSON number, or null for NaN (JSON has no NaN). */
void cr_p2_jnum(char out[32], double v) {
    if (isfinite(v)) snprintf(out, 32, "%.6g", v);
    else snprintf(out, 32, "null");
}

/* ---- the run ---------------------------------------------------------------------------- */
cr_status cr_phase2_run(const cr_phase2_opts *o, cr_phase2_result *res, cr_error *e) {
    memset(res, 0, sizeof *res);
    res->lm_ppl_before = res->lm_ppl_after = NAN;
    if (!o->lm || !o->tokenizer || !o->mf_path || !o->data_dir || !o->out_dir)
        return cr_err(e, CR_ERR_ARG, "phase 2: the LM, its tokenizer, the MF file, the data "
                      "directory and the output directory are required");
    cr_p2_data d;
    cr_decoder lm = {0};
    cr_p2_tok tok = {0};
    cr_p2_model m = {0};
    CR_TRY(cr_p2_data_load(&d, o->data_dir, o->mf_path, o->held_frac, o->seed, e));
    cr_status s = cr_dec_open(&lm, o->lm, 0, e);
    if (s == CR_OK) s = cr_p2_tok_open(&tok, o->tokenizer, e);
    if (s == CR_OK && tok.vocab > lm.cfg.vocab)
        s = cr_err(e, CR_ERR_MISMATCH, "%s has %d tokens, more than the LM's %d: not its "
                   "tokenizer", o->tokenizer, tok.vocab, lm.cfg.vocab);
    if (s != CR_OK) goto done;
    float rms = cr_p2_emb_rms(&lm);
    s = o->encoder ? cr_p2_model_qformer(&m, o->encoder, lm.cfg.dim, rms, o->seed, e)
                   : cr_p2_model_mlp(&m, d.mf.dim, o->mlp_nq, o->mlp_hidden, lm.cfg.dim, rms,
                                     o->seed, e);
    if (s != CR_OK) goto done;
    res->lm_hash_before = cr_p2_lm_hash(&lm);
    if (o->lm_text && (s = cr_p2_lm_ppl(&lm, &tok, o->lm_text, 65536, 128, 16,
                                         &res->lm_ppl_before, e)))
        goto done;
    if ((s = cr_phase2_train(&m, &lm, &tok, &d, o, res, e))) goto done;
    res->lm_hash_after = cr_p2_lm_hash(&lm);
    if (o->lm_text && (s = cr_p2_lm_ppl(&lm, &tok, o->lm_text, 65536, 128, 16,
                                         &res->lm_ppl_after, e)))
        goto done;
    if (res->lm_hash_after != res->lm_hash_before ||
        (o->lm_text && res->lm_ppl_after != res->lm_ppl_before)) {
        s = cr_err(e, CR_ERR_INTERNAL, "phase 2: the frozen LM changed (hash %016llx -> %016llx, "
                   "perplexity %.4f -> %.4f)", (unsigned long long)res->lm_hash_before,
                   (unsigned long long)res->lm_hash_after, res->lm_ppl_before, res->lm_ppl_after);
        goto done;
    }
    char held[32], seed[32], hist[32], mseq[32];
    snprintf(held, sizeof held, "%.17g", o->held_frac);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    snprintf(hist, sizeof hist, "%d", o->hist);
    snprintf(mseq, sizeof mseq, "%d", o->max_seq);
    const char *kv[] = {"lm", o->lm, "tokenizer", o->tokenizer, "mf", o->mf_path,
                        "data", o->data_dir, "held_frac", held, "seed", seed, "hist", hist,
                        "max_seq", mseq};
    if ((s = cr_p2_model_save(&m, o->out_dir, kv, 8, e))) goto done;
    char js[1024], path[4096], v[4][32];
    cr_p2_jnum(v[0], res->first_loss), cr_p2_jnum(v[1], res->last_loss);
    cr_p2_jnum(v[2], res->lm_ppl_before), cr_p2_jnum(v[3], res->lm_ppl_after);
    int n = snprintf(js, sizeof js,
                     "{\"adapter\": \"%s\", \"steps\": %d, \"batch\": %d, \"trainable\": %lld, "
                     "\"first_loss\": %s, \"last_loss\": %s, \"lm_hash_before\": \"%016llx\", "
                     "\"lm_hash_after\": \"%016llx\", \"lm_ppl_before\": %s, "
                     "\"lm_ppl_after\": %s, \"truncated\": %d, \"seconds\": %.1f}\n",
                     m.kind == CR_P2_QFORMER ? "qformer" : "mlp", o->steps, o->batch,
                     (long long)res->trainable, v[0], v[1],
                     (unsigned long long)res->lm_hash_before,
                     (unsigned long long)res->lm_hash_after, v[2], v[3], res->truncated,
                     res->seconds);
    snprintf(path, sizeof path, "%s/phase2.json", o->out_dir);
    s = cr_write_file_atomic(path, js, (size_t)n, e);
done:
    cr_p2_model_free(&m);
    cr_p2_tok_free(&tok);
    cr_dec_free(&lm);
    cr_p2_data_free(&d);
    return s;
}

/* ---- a trained directory --------------------------------------------------------------- */
cr_status cr_p2_bundle_open(cr_p2_bundle *b, const char *dir, cr_error *e) {
    memset(b, 0, sizeof *b);
    char path[4096], lm[1024], tok[1024], mf[1024], data[1024];
    double held = 0.1;
    unsigned long long seed = 1;
    snprintf(path, sizeof path, "%s/adapter.safetensors", dir);
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    const char *v[8] = {cr_st_meta(&f, "lm"), cr_st_meta(&f, "tokenizer"), cr_st_meta(&f, "mf"),
                        cr_st_meta(&f, "data"), cr_st_meta(&f, "held_frac"),
                        cr_st_meta(&f, "seed"), cr_st_meta(&f, "hist"),
                        cr_st_meta(&f, "max_seq")};
    cr_status s = CR_OK;
    for (int i = 0; i < 8; i++)
        if (!v[i]) s = cr_err(e, CR_ERR_FORMAT, "%s: metadata lacks the paths and settings "
                              "`crossrec ilm phase2` writes (lm, tokenizer, mf, data, ...)", path);
    if (s == CR_OK) {
        snprintf(lm, sizeof lm, "%s", v[0]), snprintf(tok, sizeof tok, "%s", v[1]);
        snprintf(mf, sizeof mf, "%s", v[2]), snprintf(data, sizeof data, "%s", v[3]);
        held = strtod(v[4], NULL), seed = strtoull(v[5], NULL, 10);
        b->hist = atoi(v[6]), b->max_seq = atoi(v[7]);
    }
    cr_st_close(&f);
    if (s == CR_OK) s = cr_p2_model_load(&b->m, dir, e);
    if (s == CR_OK) s = cr_dec_open(&b->lm, lm, 0, e);
    if (s == CR_OK) s = cr_p2_tok_open(&b->tok, tok, e);
    if (s == CR_OK) s = cr_p2_data_load(&b->d, data, mf, held, seed, e);
    if (s == CR_OK && (b->m.C != b->lm.cfg.dim || b->m.D != b->d.mf.dim))
        s = cr_err(e, CR_ERR_SHAPE, "%s: the adapter (C %d, D %d) does not fit the LM (%d) or "
                   "the CF vectors (%d)", dir, b->m.C, b->m.D, b->lm.cfg.dim, b->d.mf.dim);
    if (s != CR_OK) cr_p2_bundle_free(b);
    return s;
}

void cr_p2_bundle_free(cr_p2_bundle *b) {
    cr_p2_model_free(&b->m);
    cr_dec_free(&b->lm);
    cr_p2_tok_free(&b->tok);
    cr_p2_data_free(&b->d);
    memset(b, 0, sizeof *b);
}
