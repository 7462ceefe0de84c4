/*
 * phase1_losses.c - the five phase-1 losses of the item encoder, forward
 * and backward, on one batch each: ITC (max-over-queries cosine, learnable
 * temperature, in-batch negatives both ways), ITM (binary head on the mean
 * query output, hard negatives drawn from the ITC similarities), ITG
 * (next-token cross-entropy, text causal over itself and all queries,
 * tied output embedding), and item-item / user-item InfoNCE on pooled query
 * outputs. The formulas are in docs/ilm.md; the derivations are next to
 * each backward. Never allocates after cr_phase1_init, never prints.
 */
#include "phase1.h"

#include "../kernels/kernels.h"

#include <math.h>
#include <string.h>

#define CR_P1_MAX_LOGIT_SCALE 4.6051702f /* log(100): CLIP's clamp of 1/temperature */

const char *cr_p1_loss_name(int k) {
    static const char *const n[CR_P1_NLOSS] = {"itc", "itm", "itg", "ii", "ui"};
    return k >= 0 && k < CR_P1_NLOSS ? n[k] : "?";
}

cr_status cr_p1_parse_losses(const char *s, float w[CR_P1_NLOSS], cr_error *e) {
    if (!s || !w) return cr_err(e, CR_ERR_ARG, "cr_p1_parse_losses: s and w must not be NULL");
    for (int k = 0; k < CR_P1_NLOSS; k++) w[k] = 0;
    const char *p = s;
    int any = 0;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int k = 0; k < CR_P1_NLOSS; k++)
            if (strlen(cr_p1_loss_name(k)) == n && !strncmp(p, cr_p1_loss_name(k), n))
                w[k] = 1, found = any = 1;
        if (!found)
            return cr_err(e, CR_ERR_ARG, "unknown loss '%.*s' in '%s' (expected a list of "
                          "itc, itm, itg, ii, ui)", (int)n, p, s);
        p += n + (p[n] == ',');
    }
    return any ? CR_OK : cr_err(e, CR_ERR_ARG, "no loss named in '%s'", s);
}

cr_status cr_phase1_init(cr_phase1 *p, cr_qformer *m, int max_b, int max_text, cr_error *e) {
    memset(p, 0, sizeof *p);
    const cr_qformer_cfg *c = &m->c;
    if (max_b < 2)
        return cr_err(e, CR_ERR_ARG, "phase 1: a batch needs at least 2 pairs (in-batch "
                      "negatives), got %d", max_b);
    CR_TRY(cr_qformer_grad_alloc(m, e));
    CR_TRY(cr_qformer_ws_init(&p->ws, m, 3 * max_b, max_text, e));
    p->m = m;
    p->max_b = max_b;
    p->max_text = max_text;
    size_t Bm = (size_t)max_b, NQ = (size_t)c->nq, E = (size_t)c->embed, W = (size_t)c->width;
    size_t T = (size_t)(max_text ? max_text : 1), V = (size_t)c->vocab;
    size_t zr = (Bm * NQ > 2 * Bm ? Bm * NQ : 2 * Bm);
    int ok = 1;
#define A_(ptr, n) ok = ok && ((ptr) = cr_alloc(sizeof *(ptr) * (n))) != NULL
    A_(p->pq, zr * E); A_(p->zq, zr * E); A_(p->dzq, zr * E); A_(p->nrm_q, zr);
    A_(p->pt, Bm * E); A_(p->zt, Bm * E); A_(p->dzt, Bm * E); A_(p->nrm_t, Bm);
    A_(p->sq, Bm * NQ * Bm); A_(p->logits, Bm * Bm); A_(p->dlogits, Bm * Bm);
    A_(p->arg, Bm * Bm); A_(p->excl, Bm * Bm);
    A_(p->pool, 3 * Bm * W); A_(p->dpool, 3 * Bm * W); A_(p->small, 9 * Bm);
    A_(p->lm, Bm * T * V); A_(p->dlm, Bm * T * V); A_(p->lse, Bm * T); A_(p->tgt, Bm * T);
    A_(p->neg_t, Bm); A_(p->neg_i, Bm);
    A_(p->cf3, 3 * Bm * (size_t)c->d_cf); A_(p->ids3, 3 * Bm * T); A_(p->len3, 3 * Bm);
    A_(p->kind2, 3 * Bm);
#undef A_
    if (!ok) {
        cr_phase1_free(p);
        return cr_err(e, CR_ERR_NOMEM, "phase 1: out of memory for batches of %d", max_b);
    }
    return CR_OK;
}

void cr_phase1_free(cr_phase1 *p) {
    cr_qformer_ws_free(&p->ws);
    void *bufs[] = {p->pq, p->zq, p->dzq, p->nrm_q, p->pt, p->zt, p->dzt, p->nrm_t, p->sq,
                    p->logits, p->dlogits, p->arg, p->excl, p->pool, p->dpool, p->small, p->lm,
                    p->dlm, p->lse, p->tgt, p->neg_t, p->neg_i, p->cf3, p->ids3, p->len3,
                    p->kind2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cr_free(bufs[i]);
    memset(p, 0, sizeof *p);
}

/* ---- shared pieces --------------------------------------------------------------- */

/* z = x / |x| per row of E (|x| floored at 1e-12 as F.normalize); keeps |x|. */
static void cr_p1_normalize(float *z, double *nrm, const float *x, int n, int E) {
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int j = 0; j < E; j++) s += (double)x[(size_t)r * E + j] * x[(size_t)r * E + j];
        nrm[r] = sqrt(s) > 1e-12 ? sqrt(s) : 1e-12;
        for (int j = 0; j < E; j++) z[(size_t)r * E + j] = (float)(x[(size_t)r * E + j] / nrm[r]);
    }
}

/* In place dz -> dx for z = x/|x|: dx = (dz - z <z, dz>) / |x|. */
static void cr_p1_normalize_back(float *dz, const float *z, const double *nrm, int n, int E) {
    for (int r = 0; r < n; r++) {
        float *d = dz + (size_t)r * E;
        const float *zz = z + (size_t)r * E;
        double dot = 0;
        for (int j = 0; j < E; j++) dot += (double)d[j] * zz[j];
        for (int j = 0; j < E; j++) d[j] = (float)((d[j] - zz[j] * dot) / nrm[r]);
    }
}

/* Symmetric InfoNCE with the positives on the diagonal of logits (B, B):
 *   L = 1/2 [ 1/B sum_i CE(row i, i) + 1/B sum_j CE(column j, j) ]
 * over the entries not excluded (excl may be NULL). Writes dL/dlogits:
 *   dlogits_ij = 1/(2B) [ (softmax_row_i)_j - d_ij + (softmax_col_j)_i - d_ij ]. */
static double cr_p1_infonce(float *dlogits, const float *logits, const uint8_t *excl, int B) {
    memset(dlogits, 0, sizeof(float) * (size_t)B * B);
    double loss = 0, h = 0.5 / B;
    for (int dir = 0; dir < 2; dir++)
        for (int i = 0; i < B; i++) {
            /* dir 0: row i over j; dir 1: column i over j (entry (j, i)) */
#define IDX_(i, j) (dir ? (size_t)(j) * B + (i) : (size_t)(i) * B + (j))
            double mx = -INFINITY, s = 0;
            for (int j = 0; j < B; j++)
                if (j == i || !excl || !excl[IDX_(i, j)]) mx = fmax(mx, logits[IDX_(i, j)]);
            for (int j = 0; j < B; j++)
                if (j == i || !excl || !excl[IDX_(i, j)]) s += exp(logits[IDX_(i, j)] - mx);
            double lse = mx + log(s);
            loss += h * (lse - logits[IDX_(i, i)]);
            for (int j = 0; j < B; j++)
                if (j == i || !excl || !excl[IDX_(i, j)])
                    dlogits[IDX_(i, j)] += (float)(h * (exp(logits[IDX_(i, j)] - lse) - (i == j)));
#undef IDX_
        }
    return loss;
}

static float cr_p1_scale(const cr_qformer *m, int which, int *clamped) {
    float ls = cr_qformer_p(m, m->ix.logit_scale)[which];
    *clamped = ls > CR_P1_MAX_LOGIT_SCALE;
    return expf(*clamped ? CR_P1_MAX_LOGIT_SCALE : ls);
}

/* ---- ITC ----------------------------------------------------------------------------
 * After an ITC forward: z_q = normalize(O_q P_item^T) per query, z_t =
 * normalize(O_cls P_text^T), s_ij = max_k <z_q[i,k], z_t[j]> (argmax kept),
 * logits = exp(ls) s. */
static void cr_p1_itc_embed(cr_phase1 *p, int B, int T) {
    cr_qformer *m = p->m;
    int NQ = m->c.nq, W = m->c.width, E = m->c.embed;
    cr_linear_forward(p->pq, cr_qformer_query_out(&p->ws), cr_qformer_p(m, m->ix.proj_item),
                      NULL, B * NQ, W, E, W, E);
    cr_p1_normalize(p->zq, p->nrm_q, p->pq, B * NQ, E);
    cr_linear_forward(p->pt, cr_qformer_text_out(m, &p->ws), cr_qformer_p(m, m->ix.proj_text),
                      NULL, B, W, E, T * W, E);
    cr_p1_normalize(p->zt, p->nrm_t, p->pt, B, E);
}

static double cr_p1_itc(cr_phase1 *p, const cr_p1_text_batch *tb, float weight) {
    cr_qformer *m = p->m;
    int B = tb->B, T = tb->T, NQ = m->c.nq, W = m->c.width, E = m->c.embed;
    cr_qformer_forward(m, &p->ws, tb->cf, NULL, tb->ids, tb->len, B, T, CR_QF_ITC);
    cr_p1_itc_embed(p, B, T);
    cr_sgemm(0, 1, B * NQ, B, E, 1.0f, p->zq, E, p->zt, E, 0.0f, p->sq, B);
    int clamped;
    float scale = cr_p1_scale(m, CR_QF_SCALE_ITC, &clamped);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            int best = 0;
            for (int k = 1; k < NQ; k++)
                if (p->sq[((size_t)i * NQ + k) * B + j] > p->sq[((size_t)i * NQ + best) * B + j])
                    best = k;
            p->arg[(size_t)i * B + j] = best;
            p->logits[(size_t)i * B + j] = scale * p->sq[((size_t)i * NQ + best) * B + j];
        }
    double loss = cr_p1_infonce(p->dlogits, p->logits, NULL, B);
    if (weight <= 0) return loss;
    /* logits = exp(ls) s: dls = sum dlogits * logits (0 when clamped);
     * ds = dlogits * exp(ls), routed to the arg-max query only (max is
     * piecewise the identity). */
    double dls = 0;
    memset(p->dzq, 0, sizeof(float) * (size_t)B * NQ * E);
    memset(p->dzt, 0, sizeof(float) * (size_t)B * E);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            float dl = weight * p->dlogits[(size_t)i * B + j];
            dls += (double)dl * p->logits[(size_t)i * B + j];
            float ds = dl * scale;
            int k = p->arg[(size_t)i * B + j];
            float *dq = p->dzq + ((size_t)i * NQ + k) * E, *dt = p->dzt + (size_t)j * E;
            const float *zq = p->zq + ((size_t)i * NQ + k) * E, *zt = p->zt + (size_t)j * E;
            for (int x = 0; x < E; x++) dq[x] += ds * zt[x], dt[x] += ds * zq[x];
        }
    if (!clamped) cr_qformer_g(m, m->ix.logit_scale)[CR_QF_SCALE_ITC] += (float)dls;
    cr_p1_normalize_back(p->dzq, p->zq, p->nrm_q, B * NQ, E);
    cr_p1_normalize_back(p->dzt, p->zt, p->nrm_t, B, E);
    cr_linear_backward(p->ws.dout, cr_qformer_g(m, m->ix.proj_item), NULL, p->dzq,
                       cr_qformer_query_out(&p->ws), cr_qformer_p(m, m->ix.proj_item), B * NQ, W,
                       E, W, E);
    cr_linear_backward(p->ws.dout + (size_t)B * NQ * W, cr_qformer_g(m, m->ix.proj_text), NULL,
                       p->dzt, cr_qformer_text_out(m, &p->ws), cr_qformer_p(m, m->ix.proj_text),
                       B, W, E, T * W, E);
    cr_qformer_backward(m, &p->ws, NULL);
    return loss;
}

void cr_phase1_embed(cr_phase1 *p, const cr_p1_text_batch *tb, float *z_item, float *z_text) {
    cr_qformer *m = p->m;
    cr_qformer_forward(m, &p->ws, tb->cf, NULL, tb->ids, tb->len, tb->B, tb->T, CR_QF_ITC);
    cr_p1_itc_embed(p, tb->B, tb->T);
    memcpy(z_item, p->zq, sizeof(float) * (size_t)tb->B * m->c.nq * m->c.embed);
    memcpy(z_text, p->zt, sizeof(float) * (size_t)tb->B * m->c.embed);
}

/* ---- ITM ----------------------------------------------------------------------------
 * Hard negatives as BLIP-2: for item i, text j != i with probability
 * softmax_j(logits[i, :]) renormalised without j = i; for text j, item i != j
 * from softmax_i(logits[:, j]) likewise. Drawn by inverse CDF with the
 * batch's uniforms (in double), so twins can replay them. No gradient flows
 * through the choice. */
static int cr_p1_draw(const float *logits, int B, int anchor, int col, double u) {
    double mx = -INFINITY, tot = 0, cum = 0;
#define L_(j) (col ? logits[(size_t)(j) * B + anchor] : logits[(size_t)anchor * B + (j)])
    for (int j = 0; j < B; j++)
        if (j != anchor) mx = fmax(mx, L_(j));
    for (int j = 0; j < B; j++)
        if (j != anchor) tot += exp(L_(j) - mx);
    int last = anchor ? 0 : 1;
    for (int j = 0; j < B; j++) {
        if (j == anchor) continue;
        cum += exp(L_(j) - mx);
        last = j;
        if (u * tot < cum) return j;
    }
#undef L_
    return last;
}

/* 3B sequences in ITM mode: (item i, text i) label 1, (item i, text
 * neg_t[i]) label 0, (item neg_i[j], text j) label 0. logit_b = w . mean_k
 * O_q[b, k] + b; L = mean_b BCE(logit_b, y_b). */
static double cr_p1_itm(cr_phase1 *p, const cr_p1_text_batch *tb, float weight) {
    cr_qformer *m = p->m;
    int B = tb->B, T = tb->T, NQ = m->c.nq, W = m->c.width, D = m->c.d_cf, B3 = 3 * B;
    for (int i = 0; i < B; i++) {
        p->neg_t[i] = cr_p1_draw(p->logits, B, i, 0, tb->u[i]);
        p->neg_i[i] = cr_p1_draw(p->logits, B, i, 1, tb->u[B + i]);
    }
    for (int r = 0; r < B3; r++) {
        int blk = r / B, i = r % B;
        int item = blk == 2 ? p->neg_i[i] : i, text = blk == 1 ? p->neg_t[i] : i;
        memcpy(p->cf3 + (size_t)r * D, tb->cf + (size_t)item * D, sizeof(float) * D);
        memcpy(p->ids3 + (size_t)r * T, tb->ids + (size_t)text * T, sizeof(int32_t) * T);
        p->len3[r] = tb->len[text];
    }
    cr_qformer_forward(m, &p->ws, p->cf3, NULL, p->ids3, p->len3, B3, T, CR_QF_ITM);
    const float *Oq = cr_qformer_query_out(&p->ws);
    const float *iw = cr_qformer_p(m, m->ix.itm_w), *ib = cr_qformer_p(m, m->ix.itm_b);
    float *logit = p->small, *label = p->small + B3, *dlog = p->small + 2 * B3;
    for (int r = 0; r < B3; r++) {
        double acc = 0;
        for (int j = 0; j < W; j++) {
            double s = 0;
            for (int k = 0; k < NQ; k++) s += Oq[((size_t)r * NQ + k) * W + j];
            p->pool[(size_t)r * W + j] = (float)(s / NQ);
            acc += iw[j] * (s / NQ);
        }
        logit[r] = (float)(acc + ib[0]);
        label[r] = r < B ? 1.0f : 0.0f;
        dlog[r] = 0;
    }
    double loss = cr_bce_logits_forward(logit, label, NULL, NULL, B3) / B3;
    if (weight <= 0) return loss;
    cr_bce_logits_backward(dlog, logit, label, NULL, NULL, B3, weight / B3);
    /* dw = sum_b dlogit_b pool_b, db = sum_b dlogit_b, dO_q[b,k] = dlogit_b w / NQ */
    float *gw = cr_qformer_g(m, m->ix.itm_w), *gb = cr_qformer_g(m, m->ix.itm_b);
    for (int r = 0; r < B3; r++) {
        gb[0] += dlog[r];
        for (int j = 0; j < W; j++) gw[j] += dlog[r] * p->pool[(size_t)r * W + j];
        for (int k = 0; k < NQ; k++)
            for (int j = 0; j < W; j++)
                p->ws.dout[((size_t)r * NQ + k) * W + j] += dlog[r] * iw[j] / NQ;
    }
    cr_qformer_backward(m, &p->ws, NULL);
    return loss;
}

/* ---- ITG ----------------------------------------------------------------------------
 * logits = O_t E_tok^T (tied); position t predicts ids[t+1] for t < len-1
 * ([DEC] predicts t1, ..., tn predicts [EOS]); L = mean over those. */
static double cr_p1_itg(cr_phase1 *p, const cr_p1_text_batch *tb, float weight) {
    cr_qformer *m = p->m;
    int B = tb->B, T = tb->T, W = m->c.width, V = m->c.vocab, N = B * T;
    cr_qformer_forward(m, &p->ws, tb->cf, NULL, tb->ids, tb->len, B, T, CR_QF_ITG);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            p->tgt[(size_t)b * T + t] = t < tb->len[b] - 1 ? tb->ids[(size_t)b * T + t + 1] : -1;
    const float *Ot = cr_qformer_text_out(m, &p->ws), *tok = cr_qformer_p(m, m->ix.tok_emb);
    cr_sgemm(0, 1, N, V, W, 1.0f, Ot, W, tok, W, 0.0f, p->lm, V);
    int nv = 0;
    double sum = cr_xent_forward(p->lse, p->lm, p->tgt, N, V, &nv);
    if (nv == 0) return 0;
    if (weight <= 0) return sum / nv;
    memset(p->dlm, 0, sizeof(float) * (size_t)N * V);
    cr_xent_backward(p->dlm, p->lse, p->lm, p->tgt, N, V, weight / nv);
    float *dOt = p->ws.dout + (size_t)B * m->c.nq * W;
    cr_sgemm(0, 0, N, W, V, 1.0f, p->dlm, V, tok, W, 1.0f, dOt, W);
    cr_sgemm(1, 0, V, W, N, 1.0f, p->dlm, V, Ot, W, 1.0f, cr_qformer_g(m, m->ix.tok_emb), W);
    cr_qformer_backward(m, &p->ws, NULL);
    return sum / nv;
}

void cr_phase1_text_losses(cr_phase1 *p, const cr_p1_text_batch *tb, const float *weight,
                           double *loss, int32_t *neg) {
    CR_ASSERT(tb->B >= 2 && tb->B <= p->max_b && tb->T >= 2 && tb->T <= p->max_text);
    for (int k = 0; k < CR_P1_NLOSS; k++) loss[k] = NAN;
    if (weight[CR_P1_ITC] > 0 || weight[CR_P1_ITM] > 0)
        loss[CR_P1_ITC] = cr_p1_itc(p, tb, weight[CR_P1_ITC]);
    if (weight[CR_P1_ITM] > 0) {
        loss[CR_P1_ITM] = cr_p1_itm(p, tb, weight[CR_P1_ITM]);
        if (neg) {
            memcpy(neg, p->neg_t, sizeof(int32_t) * tb->B);
            memcpy(neg + tb->B, p->neg_i, sizeof(int32_t) * tb->B);
        }
    }
    if (weight[CR_P1_ITG] > 0) loss[CR_P1_ITG] = cr_p1_itg(p, tb, weight[CR_P1_ITG]);
    if (weight[CR_P1_ITC] <= 0) loss[CR_P1_ITC] = NAN;
}

/* ---- item-item and user-item ----------------------------------------------------------
 * Both sides in one query-only forward (2B rows, ITC mode, T = 0): pooled
 * u_r = mean_k O_q[r, k], z_r = normalize(P_item u_r), logits_ij = exp(ls)
 * <z_a_i, z_b_j>, symmetric InfoNCE. Backward: dz_a = ds z_b, dz_b = ds^T z_a
 * with ds = dlogits exp(ls); then through the normalisation, P_item and the
 * mean (dO_q[r, k] = du_r / NQ). */
void cr_phase1_pair_loss(cr_phase1 *p, const cr_p1_pair_batch *pb, int which, float weight,
                         double *loss) {
    cr_qformer *m = p->m;
    CR_ASSERT(which == CR_P1_II || which == CR_P1_UI);
    int B = pb->B, B2 = 2 * B, NQ = m->c.nq, W = m->c.width, E = m->c.embed, D = m->c.d_cf;
    CR_ASSERT(B >= 2 && B <= p->max_b);
    int sidx = which == CR_P1_II ? CR_QF_SCALE_II : CR_QF_SCALE_UI;
    memcpy(p->cf3, pb->a, sizeof(float) * (size_t)B * D);
    memcpy(p->cf3 + (size_t)B * D, pb->b, sizeof(float) * (size_t)B * D);
    for (int r = 0; r < B2; r++) p->kind2[r] = r < B ? pb->kind_a : pb->kind_b;
    cr_qformer_forward(m, &p->ws, p->cf3, p->kind2, NULL, NULL, B2, 0, CR_QF_ITC);
    const float *Oq = cr_qformer_query_out(&p->ws);
    for (int r = 0; r < B2; r++)
        for (int j = 0; j < W; j++) {
            double s = 0;
            for (int k = 0; k < NQ; k++) s += Oq[((size_t)r * NQ + k) * W + j];
            p->pool[(size_t)r * W + j] = (float)(s / NQ);
        }
    cr_linear_forward(p->pq, p->pool, cr_qformer_p(m, m->ix.proj_item), NULL, B2, W, E, W, E);
    cr_p1_normalize(p->zq, p->nrm_q, p->pq, B2, E);
    int clamped;
    float scale = cr_p1_scale(m, sidx, &clamped);
    const float *za = p->zq, *zb = p->zq + (size_t)B * E;
    cr_sgemm(0, 1, B, B, E, scale, za, E, zb, E, 0.0f, p->logits, B);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++)
            p->excl[(size_t)i * B + j] =
                i != j && ((pb->key_a && pb->key_a[i] == pb->key_a[j]) ||
                           (pb->key_b && pb->key_b[i] == pb->key_b[j]));
    *loss = cr_p1_infonce(p->dlogits, p->logits, p->excl, B);
    if (weight <= 0) return;
    double dls = 0;
    for (size_t i = 0; i < (size_t)B * B; i++) {
        p->dlogits[i] *= weight;
        dls += (double)p->dlogits[i] * p->logits[i];
    }
    if (!clamped) cr_qformer_g(m, m->ix.logit_scale)[sidx] += (float)dls;
    float *dza = p->dzq, *dzb = p->dzq + (size_t)B * E;
    cr_sgemm(0, 0, B, E, B, scale, p->dlogits, B, zb, E, 0.0f, dza, E);
    cr_sgemm(1, 0, B, E, B, scale, p->dlogits, B, za, E, 0.0f, dzb, E);
    cr_p1_normalize_back(p->dzq, p->zq, p->nrm_q, B2, E);
    memset(p->dpool, 0, sizeof(float) * (size_t)B2 * W);
    cr_linear_backward(p->dpool, cr_qformer_g(m, m->ix.proj_item), NULL, p->dzq, p->pool,
                       cr_qformer_p(m, m->ix.proj_item), B2, W, E, W, E);
    for (int r = 0; r < B2; r++)
        for (int k = 0; k < NQ; k++)
            for (int j = 0; j < W; j++)
                p->ws.dout[((size_t)r * NQ + k) * W + j] += p->dpool[(size_t)r * W + j] / NQ;
    cr_qformer_backward(m, &p->ws, NULL);
}
