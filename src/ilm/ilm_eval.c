/*
 * ilm_eval.c - evaluating an Item-Language Model through its frozen LM:
 * candidates ranked by the likelihood of their titles (the paper's
 * spirit: the LM itself names the next item), held-out items' description
 * perplexity, and genre questions answered by likelihood. The candidate
 * lists depend only on the data and a seed, so every variant of a study
 * faces exactly the same questions. Never prints.
 */
#include "ilm_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cr_ilm_eval_opts_default(cr_ilm_eval_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->users = 200;
    o->negatives = 49;
    o->hist = 3;
    o->max_seq = 96;
    o->items = 200;
    o->batch = 16;
    o->use_test = 1;
    o->seed = 7;
}

/* ---- candidates ------------------------------------------------------------------------ */
void cr_ilm_cands_free(cr_ilm_cands *c) {
    cr_free(c->user), cr_free(c->item), cr_free(c->pos);
    memset(c, 0, sizeof *c);
}

cr_status cr_ilm_cands_make(cr_ilm_cands *c, const cr_p2_data *d, int users, int negatives,
                            int use_test, uint64_t seed, cr_error *e) {
    memset(c, 0, sizeof *c);
    int32_t NU = d->x.n_users, NI = d->x.n_items;
    if (negatives < 1 || users < 0)
        return cr_err(e, CR_ERR_ARG, "candidates: negatives must be >= 1, users >= 0");
    uint32_t *elig = cr_alloc(sizeof(uint32_t) * (size_t)(NU ? NU : 1));
    int32_t *stamp = cr_alloc(sizeof(int32_t) * (size_t)NI);
    if (!elig || !stamp) {
        cr_free(elig), cr_free(stamp);
        return cr_err(e, CR_ERR_NOMEM, "candidates: out of memory");
    }
    size_t ne = 0;
    for (int32_t u = 0; u < NU; u++) {
        int64_t p = use_test ? d->split.test_pos[u] : d->split.valid_pos[u];
        if (p >= 0 && d->title[d->x.item[p]]) elig[ne++] = (uint32_t)u;
    }
    cr_rng r;
    cr_rng_seed(&r, seed);
    cr_rng_shuffle_u32(&r, elig, ne);
    size_t n = users > 0 && (size_t)users < ne ? (size_t)users : ne;
    /* ascending ids: the same users in the same order whatever the sample size */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && elig[j - 1] > elig[j]; j--) {
            uint32_t t = elig[j];
            elig[j] = elig[j - 1], elig[j - 1] = t;
        }
    c->n = (int32_t)n, c->per = 1 + negatives;
    c->user = cr_alloc(sizeof(int32_t) * (n ? n : 1));
    c->item = cr_alloc(sizeof(int32_t) * (n ? n : 1) * c->per);
    c->pos = cr_alloc(sizeof(int64_t) * (n ? n : 1));
    cr_status s = CR_OK;
    if (!c->user || !c->item || !c->pos) s = cr_err(e, CR_ERR_NOMEM, "candidates: out of memory");
    for (int32_t i = 0; i < NI; i++) stamp[i] = -1;
    for (size_t k = 0; s == CR_OK && k < n; k++) {
        int32_t u = (int32_t)elig[k];
        int64_t a = d->x.user_off[u], b = d->x.user_off[u + 1];
        for (int64_t j = a; j < b; j++) stamp[d->x.item[j]] = u;
        int64_t rated = 0;
        for (int32_t i = 0; i < NI; i++) rated += stamp[i] == u || !d->title[i];
        if (NI - rated < negatives) {
            s = cr_err(e, CR_ERR_LIMIT, "candidates: user %d has only %lld never-rated items "
                       "with a title, %d asked", u, (long long)(NI - rated), negatives);
            break;
        }
        c->user[k] = u;
        c->pos[k] = use_test ? d->split.test_pos[u] : d->split.valid_pos[u];
        int32_t *row = c->item + k * (size_t)c->per;
        row[0] = d->x.item[c->pos[k]];
        for (int q = 1; q < c->per;) { /* rejection: drawn items are stamped too */
            int32_t it = (int32_t)cr_rng_below(&r, (uint64_t)NI);
            if (stamp[it] == u || !d->title[it]) continue;
            stamp[it] = u;
            row[q++] = it;
        }
    }
    cr_free(elig), cr_free(stamp);
    if (s != CR_OK) cr_ilm_cands_free(c);
    return s;
}

void cr_ilm_rank_metrics(const double *score, int64_t n, int per, cr_next_item_metrics *out) {
    memset(out, 0, sizeof *out);
    out->users = n;
    for (int64_t u = 0; u < n; u++) {
        const double *s = score + u * per;
        int rank = 0;
        for (int j = 1; j < per; j++) rank += !(s[j] < s[0]); /* ties (and NaN) count against */
        if (rank < 5) out->hr5 += 1, out->ndcg5 += 1 / log2(rank + 2.0);
        if (rank < 10) out->hr10 += 1, out->ndcg10 += 1 / log2(rank + 2.0);
    }
    if (n) out->hr5 /= n, out->hr10 /= n, out->ndcg5 /= n, out->ndcg10 /= n;
}

/* ---- scoring through the LM ------------------------------------------------------------ */
typedef struct {
    cr_p2_batch b;
    cr_p2_step  st;
    double     *sum;
    int32_t    *cnt;
} cr_ilm_run;

static cr_status cr_ilm_run_init(cr_ilm_run *r, const cr_p2_model *m, const cr_decoder *lm,
                                 int batch, int max_seq, int ent_per_row, cr_error *e) {
    memset(r, 0, sizeof *r);
    int cap_E = batch * ent_per_row;
    CR_TRY(cr_p2_batch_init(&r->b, batch, max_seq, cap_E, m->nq, e));
    cr_status s = cr_p2_step_init(&r->st, m, lm, batch, max_seq, cap_E, 0, e);
    r->sum = cr_alloc(sizeof(double) * batch);
    r->cnt = cr_alloc(sizeof(int32_t) * batch);
    if (s == CR_OK && (!r->sum || !r->cnt)) s = cr_err(e, CR_ERR_NOMEM, "eval: out of memory");
    return s;
}

static void cr_ilm_run_free(cr_ilm_run *r) {
    cr_p2_batch_free(&r->b);
    cr_p2_step_free(&r->st);
    cr_free(r->sum), cr_free(r->cnt);
}

/* Forward the filled batch; per-row log-probability sums and counts. */
static cr_status cr_ilm_run_go(cr_ilm_run *r, cr_p2_model *m, const cr_decoder *lm,
                               const cr_p2_data *d, cr_error *e) {
    double loss;
    CR_TRY(cr_p2_forward(m, &r->st, lm, &r->b, d->mf.item, d->mf.user, 0, &loss, e));
    cr_p2_row_logprob(&r->st, &r->b, lm->cfg.vocab, r->sum, r->cnt);
    return CR_OK;
}

cr_status cr_ilm_score_next(cr_p2_model *m, const cr_decoder *lm, const cr_p2_tok *tok,
                            const cr_p2_data *d, const cr_ilm_cands *c, int hist, int max_seq,
                            int batch, double *score, cr_error *e) {
    cr_ilm_run R;
    int32_t *h = cr_alloc(sizeof(int32_t) * (size_t)(hist > 0 ? hist : 1));
    cr_status s = h ? cr_ilm_run_init(&R, m, lm, batch, max_seq, hist + 2, e)
                    : cr_err(e, CR_ERR_NOMEM, "eval: out of memory");
    char buf[512];
    for (int32_t k = 0; s == CR_OK && k < c->n; k++) {
        int32_t u = c->user[k];
        int64_t a = d->x.user_off[u], p = c->pos[k];
        int nh = 0;
        for (int64_t j = p - hist > a ? p - hist : a; j < p; j++) h[nh++] = d->x.item[j];
        for (int q0 = 0; s == CR_OK && q0 < c->per; q0 += batch) {
            int nb = c->per - q0 < batch ? c->per - q0 : batch;
            cr_p2_batch_clear(&R.b);
            for (int q = 0; s == CR_OK && q < nb; q++) {
                int32_t it = c->item[(size_t)k * c->per + q0 + q];
                snprintf(buf, sizeof buf, " %s.", d->title[it]);
                cr_p2_example x = {.tmpl = cr_p2_template(CR_P2_NEXT), .item = -1, .user = u,
                                   .hist = h, .n_hist = nh, .target = buf, .eos = 1};
                s = cr_p2_batch_add(&R.b, tok, &x, e);
            }
            if (s == CR_OK) s = cr_ilm_run_go(&R, m, lm, d, e);
            for (int q = 0; s == CR_OK && q < nb; q++)
                score[(size_t)k * c->per + q0 + q] = R.cnt[q] ? R.sum[q] / R.cnt[q] : -INFINITY;
        }
    }
    if (h) cr_ilm_run_free(&R);
    cr_free(h);
    return s;
}

/* Description perplexity over held-out items, and genre questions. */
static cr_status cr_ilm_items(cr_p2_model *m, const cr_decoder *lm, const cr_p2_tok *tok,
                              const cr_p2_data *d, const cr_ilm_eval_opts *o,
                              cr_ilm_eval_result *r, cr_error *e) {
    int n = o->items > 0 && o->items < d->n_held ? o->items : d->n_held;
    int G = d->n_genres, B = o->batch > G ? o->batch : G;
    cr_ilm_run R;
    CR_TRY(cr_ilm_run_init(&R, m, lm, B, o->max_seq, 1, e));
    char (*buf)[512] = cr_alloc(sizeof *buf * (size_t)B);
    cr_status s = buf ? CR_OK : cr_err(e, CR_ERR_NOMEM, "eval: out of memory");
    double nll = 0, hits = 0, chance = 0;
    int64_t tokens = 0;
    /* descriptions, in batches */
    for (int i0 = 0; s == CR_OK && i0 < n; i0 += B) {
        int nb = n - i0 < B ? n - i0 : B;
        cr_p2_batch_clear(&R.b);
        for (int q = 0; s == CR_OK && q < nb; q++) {
            int32_t it = d->held_items[i0 + q];
            snprintf(buf[q], sizeof buf[q], " %s", d->text[it]);
            cr_p2_example x = {.tmpl = cr_p2_template(CR_P2_DESCRIBE), .item = it, .user = -1,
                               .target = buf[q], .eos = 1};
            s = cr_p2_batch_add(&R.b, tok, &x, e);
        }
        if (s == CR_OK) s = cr_ilm_run_go(&R, m, lm, d, e);
        for (int q = 0; s == CR_OK && q < nb; q++) nll -= R.sum[q], tokens += R.cnt[q];
    }
    /* genres: every genre name after the genre prompt, the likeliest wins */
    int gi = 0;
    for (int i = 0; s == CR_OK && i < n && G > 1; i++) {
        int32_t it = d->held_items[i];
        if (!d->gmask[it]) continue;
        cr_p2_batch_clear(&R.b);
        for (int g = 0; s == CR_OK && g < G; g++) {
            snprintf(buf[g], sizeof buf[g], " %s", d->genre[g]);
            cr_p2_example x = {.tmpl = cr_p2_template(CR_P2_GENRE), .item = it, .user = -1,
                               .target = buf[g], .eos = 0};
            s = cr_p2_batch_add(&R.b, tok, &x, e);
        }
        if (s == CR_OK) s = cr_ilm_run_go(&R, m, lm, d, e);
        if (s != CR_OK) break;
        int best = 0;
        double bs = -INFINITY;
        for (int g = 0; g < G; g++) {
            double v = R.cnt[g] ? R.sum[g] / R.cnt[g] : -INFINITY;
            if (v > bs) bs = v, best = g;
        }
        hits += (d->gmask[it] >> best) & 1u;
        chance += (double)__builtin_popcount(d->gmask[it]) / G;
        gi++;
    }
    if (s == CR_OK) {
        r->desc_items = n;
        r->desc_tokens = tokens;
        r->desc_ppl = tokens ? exp(nll / (double)tokens) : NAN;
        r->genre_items = gi;
        r->n_genres = G;
        r->genre_acc = gi ? hits / gi : NAN;
        r->genre_chance = gi ? chance / gi : NAN;
    }
    cr_free(buf);
    cr_ilm_run_free(&R);
    return s;
}

cr_status cr_ilm_evaluate(cr_p2_model *m, const cr_decoder *lm, const cr_p2_tok *tok,
                          const cr_p2_data *d, const cr_ilm_eval_opts *o, cr_ilm_eval_result *r,
                          cr_error *e) {
    memset(r, 0, sizeof *r);
    if (o->batch < 1 || o->hist < 1 || o->max_seq < 8)
        return cr_err(e, CR_ERR_ARG, "eval: batch >= 1, history >= 1 and rows >= 8 tokens");
    double t0 = cr_now();
    cr_ilm_cands c;
    CR_TRY(cr_ilm_cands_make(&c, d, o->users, o->negatives, o->use_test, o->seed, e));
    size_t n = (size_t)c.n * c.per;
    double *sc = cr_alloc(sizeof(double) * (n ? n : 1));
    cr_status s = sc ? CR_OK : cr_err(e, CR_ERR_NOMEM, "eval: out of memory");
    r->per = c.per;
    if (s == CR_OK)
        s = cr_ilm_score_next(m, lm, tok, d, &c, o->hist, o->max_seq, o->batch, sc, e);
    if (s == CR_OK) cr_ilm_rank_metrics(sc, c.n, c.per, &r->lm);
    /* references on the same lists: BPR's own score and training popularity */
    const cr_mf *mf = &d->mf;
    for (int ref = 0; s == CR_OK && ref < 2; ref++) {
        for (int32_t k = 0; k < c.n; k++)
            for (int q = 0; q < c.per; q++) {
                int32_t it = c.item[(size_t)k * c.per + q], u = c.user[k];
                double v = (double)d->pop[it];
                if (!ref) {
                    v = mf->item_bias[it];
                    for (int j = 0; j < mf->dim; j++)
                        v += (double)mf->user[(size_t)u * mf->dim + j] * mf->item[(size_t)it * mf->dim + j];
                }
                sc[(size_t)k * c.per + q] = v;
            }
        cr_ilm_rank_metrics(sc, c.n, c.per, ref ? &r->pop : &r->bpr);
    }
    if (s == CR_OK) s = cr_ilm_items(m, lm, tok, d, o, r, e);
    r->seconds = cr_now() - t0;
    cr_free(sc);
    cr_ilm_cands_free(&c);
    return s;
}

cr_status cr_ilm_eval_dir(const char *dir, const cr_ilm_eval_opts *o, cr_ilm_eval_result *r,
                          cr_error *e) {
    cr_p2_bundle b;
    CR_TRY(cr_p2_bundle_open(&b, dir, e));
    cr_status s = cr_ilm_evaluate(&b.m, &b.lm, &b.tok, &b.d, o, r, e);
    cr_p2_bundle_free(&b);
    return s;
}
