/*
 * phase1.c - the phase-1 run of the item encoder: data (CF vectors from
 * `ilm mf`, item texts, a BPE trained on the training items' texts only,
 * interaction pairs from the ratings' training part), the AdamW loop that
 * alternates item-text and interaction batches, held-out item -> text
 * retrieval, and atomic checkpoints. Reports go through a callback; this
 * file never prints.
 */
#include "phase1.h"

#include "item_text.h"

#include "../data/bpe.h"
#include "../kernels/kernels.h"
#include "../train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cr_phase1_opts_default(cr_phase1_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    cr_qformer_cfg_default(&o->model);
    o->steps = 600;
    o->batch = 32;
    cr_optim_cfg_adamw_cosine(&o->optim, 0.05f, 50);
    for (int k = 0; k < CR_P1_NLOSS; k++) o->weight[k] = 1;
    o->bpe_vocab = 2048;
    o->held_frac = 0.1;
    o->eval_items = 1000;
    o->log_every = 50;
    o->seed = 1;
}

/* ---- batches ------------------------------------------------------------------------ */
typedef struct cr_p1_bufs {
    float   *cf, *cf_b, *u;
    int32_t *ids, *len, *perm, *key_a, *key_b;
} cr_p1_bufs;

static void cr_p1_bufs_free(cr_p1_bufs *b) {
    cr_free(b->cf), cr_free(b->cf_b), cr_free(b->u), cr_free(b->ids), cr_free(b->len);
    cr_free(b->perm), cr_free(b->key_a), cr_free(b->key_b);
}

static cr_status cr_p1_bufs_init(cr_p1_bufs *b, const cr_phase1_data *d, int B, cr_error *e) {
    memset(b, 0, sizeof *b);
    size_t n = (size_t)B;
    b->cf = cr_alloc(sizeof(float) * n * d->d);
    b->cf_b = cr_alloc(sizeof(float) * n * d->d);
    b->u = cr_alloc(sizeof(float) * 2 * n);
    b->ids = cr_alloc(sizeof(int32_t) * n * d->T);
    b->len = cr_alloc(sizeof(int32_t) * n);
    b->perm = cr_alloc(sizeof(int32_t) * (size_t)(d->n_train ? d->n_train : 1));
    b->key_a = cr_alloc(sizeof(int32_t) * n);
    b->key_b = cr_alloc(sizeof(int32_t) * n);
    if (!b->cf || !b->cf_b || !b->u || !b->ids || !b->len || !b->perm || !b->key_a || !b->key_b) {
        cr_p1_bufs_free(b);
        return cr_err(e, CR_ERR_NOMEM, "phase 1: out of memory for batches");
    }
    for (int32_t i = 0; i < d->n_train; i++) b->perm[i] = d->train_items[i];
    return CR_OK;
}

/* Gather items into a text batch; T is the longest row among them. */
static void cr_p1_text_gather(cr_p1_text_batch *tb, cr_p1_bufs *bf, const cr_phase1_data *d,
                              const int32_t *items, int B) {
    int T = 2;
    for (int i = 0; i < B; i++) T = d->tok_len[items[i]] > T ? d->tok_len[items[i]] : T;
    for (int i = 0; i < B; i++) {
        int32_t it = items[i];
        memcpy(bf->cf + (size_t)i * d->d, d->item_cf + (size_t)it * d->d, sizeof(float) * d->d);
        memcpy(bf->ids + (size_t)i * T, d->tok + (size_t)it * d->T, sizeof(int32_t) * T);
        bf->len[i] = d->tok_len[it];
    }
    *tb = (cr_p1_text_batch){.B = B, .T = T, .cf = bf->cf, .ids = bf->ids, .len = bf->len,
                             .u = bf->u};
}

/* B distinct training items (a partial Fisher-Yates shuffle) and 2B uniforms. */
static void cr_p1_text_batch_draw(cr_p1_text_batch *tb, cr_p1_bufs *bf, const cr_phase1_data *d,
                                  int B, cr_rng *r) {
    for (int i = 0; i < B; i++) {
        uint64_t j = (uint64_t)i + cr_rng_below(r, (uint64_t)(d->n_train - i));
        int32_t t = bf->perm[i];
        bf->perm[i] = bf->perm[j];
        bf->perm[j] = t;
    }
    for (int i = 0; i < 2 * B; i++) bf->u[i] = (float)cr_rng_uniform(r);
    cr_p1_text_gather(tb, bf, d, bf->perm, B);
}

/* B pairs drawn with replacement; keys mark in-batch duplicates. */
static void cr_p1_pair_batch_draw(cr_p1_pair_batch *pb, cr_p1_bufs *bf, const cr_phase1_data *d,
                                  int which, int B, cr_rng *r) {
    const int32_t *pairs = which == CR_P1_II ? d->ii : d->ui;
    int64_t n = which == CR_P1_II ? d->n_ii : d->n_ui;
    const float *ta = which == CR_P1_II ? d->item_cf : d->user_cf;
    for (int i = 0; i < B; i++) {
        int64_t k = (int64_t)cr_rng_below(r, (uint64_t)n);
        bf->key_a[i] = pairs[2 * k], bf->key_b[i] = pairs[2 * k + 1];
        memcpy(bf->cf + (size_t)i * d->d, ta + (size_t)bf->key_a[i] * d->d, sizeof(float) * d->d);
        memcpy(bf->cf_b + (size_t)i * d->d, d->item_cf + (size_t)bf->key_b[i] * d->d,
               sizeof(float) * d->d);
    }
    *pb = (cr_p1_pair_batch){.B = B, .a = bf->cf, .b = bf->cf_b,
                             .kind_a = which == CR_P1_II ? CR_QF_ITEM : CR_QF_USER,
                             .kind_b = CR_QF_ITEM, .key_a = bf->key_a, .key_b = bf->key_b};
}

/* ---- the loop ---------------------------------------------------------------------------- */
static cr_status cr_p1_save(const cr_qformer *m, const cr_phase1_opts *o, int64_t step,
                            cr_error *e) {
    char path[4096], st[32];
    snprintf(path, sizeof path, "%s/qformer.safetensors", o->out_dir);
    snprintf(st, sizeof st, "%lld", (long long)step);
    const char *kv[6] = {"phase", "1", "steps", st, "tokenizer", "tokenizer"};
    return cr_qformer_save(m, path, kv, 3, e);
}

cr_status cr_phase1_train(cr_qformer *m, const cr_phase1_data *d, const cr_phase1_opts *o,
                          cr_phase1_result *res, cr_error *e) {
    const float *w = o->weight;
    int text_on = w[CR_P1_ITC] > 0 || w[CR_P1_ITM] > 0 || w[CR_P1_ITG] > 0;
    int pair_on = (w[CR_P1_II] > 0 && d->n_ii > 0) || (w[CR_P1_UI] > 0 && d->n_ui > 0);
    int B = o->batch;
    if (!text_on && !pair_on)
        return cr_err(e, CR_ERR_ARG, "phase 1: every loss is off (or has no pairs)");
    if (B < 2 || (text_on && d->n_train < B))
        return cr_err(e, CR_ERR_ARG, "phase 1: batch %d needs 2..%d training items", B,
                      d->n_train);
    if (d->d != m->c.d_cf)
        return cr_err(e, CR_ERR_SHAPE, "phase 1: CF vectors have %d values, the encoder "
                      "expects %d", d->d, m->c.d_cf);
    cr_phase1 p;
    cr_p1_bufs bf;
    cr_optim opt = {0};
    CR_TRY(cr_phase1_init(&p, m, B, d->T, e));
    cr_status s = cr_p1_bufs_init(&bf, d, B, e);
    if (s != CR_OK) {
        cr_phase1_free(&p);
        return s;
    }
    /* guarded: a non-finite gradient stops the run even without clipping */
    cr_optim_init(&opt, &o->optim, o->steps, 1);
    if ((s = cr_optim_add_dense(&opt, &m->pt, m->pt.data, m->grad, e)) != CR_OK) goto done;
    cr_rng r;
    cr_rng_seed(&r, o->seed * 7919 + 17);
    double acc[CR_P1_NLOSS] = {0}, t0 = cr_now();
    int cnt[CR_P1_NLOSS] = {0}, reports = 0;
    for (int k = 0; k < CR_P1_NLOSS; k++) res->first[k] = res->last[k] = NAN;
    for (int64_t step = 0; step < o->steps; step++) {
        double l[CR_P1_NLOSS];
        for (int k = 0; k < CR_P1_NLOSS; k++) l[k] = NAN;
        cr_qformer_zero_grad(m);
        if (text_on && (!pair_on || step % 2 == 0)) {
            cr_p1_text_batch tb;
            cr_p1_text_batch_draw(&tb, &bf, d, B, &r);
            cr_phase1_text_losses(&p, &tb, w, l, NULL);
        } else {
            for (int which = CR_P1_II; which <= CR_P1_UI; which++) {
                if (w[which] <= 0 || (which == CR_P1_II ? d->n_ii : d->n_ui) == 0) continue;
                cr_p1_pair_batch pb;
                cr_p1_pair_batch_draw(&pb, &bf, d, which, B, &r);
                cr_phase1_pair_loss(&p, &pb, which, w[which], &l[which]);
            }
        }
        if ((s = cr_optim_step(&opt, step, NULL, e)) != CR_OK) {
            cr_err_prefix(e, "phase 1");
            goto done;
        }
        float lr = opt.lr;
        for (int k = 0; k < CR_P1_NLOSS; k++)
            if (!isnan(l[k])) acc[k] += l[k], cnt[k]++;
        if ((o->log_every > 0 && (step + 1) % o->log_every == 0) || step + 1 == o->steps) {
            cr_phase1_report rep = {.step = step + 1, .steps = o->steps, .lr = lr,
                                    .seconds = cr_now() - t0};
            for (int k = 0; k < CR_P1_NLOSS; k++) {
                rep.loss[k] = cnt[k] ? acc[k] / cnt[k] : NAN;
                if (reports == 0) res->first[k] = rep.loss[k];
                res->last[k] = rep.loss[k];
                acc[k] = 0, cnt[k] = 0;
            }
            reports++;
            if (o->progress) o->progress(o->ctx, &rep);
        }
        if (o->out_dir && o->ckpt_every > 0 && (step + 1) % o->ckpt_every == 0 &&
            (s = cr_p1_save(m, o, step + 1, e)) != CR_OK)
            goto done;
    }
    res->seconds = cr_now() - t0;
done:
    cr_optim_free(&opt);
    cr_p1_bufs_free(&bf);
    cr_phase1_free(&p);
    return s;
}

/* ---- retrieval ------------------------------------------------------------------------- */
cr_status cr_phase1_recall(cr_qformer *m, const cr_phase1_data *d, const int32_t *items,
                           int32_t n, int batch, double *r1, double *r10, cr_error *e) {
    if (n < 2) return cr_err(e, CR_ERR_ARG, "retrieval needs at least 2 items, got %d", n);
    int NQ = m->c.nq, E = m->c.embed, B = batch < 2 ? 2 : batch;
    cr_phase1 p;
    cr_p1_bufs bf;
    CR_TRY(cr_phase1_init(&p, m, B, d->T, e));
    cr_status s = cr_p1_bufs_init(&bf, d, B, e);
    float *zi = cr_alloc(sizeof(float) * (size_t)n * NQ * E);
    float *zt = cr_alloc(sizeof(float) * (size_t)n * E);
    float *sim = cr_alloc(sizeof(float) * (size_t)NQ * n);
    if (s == CR_OK && (!zi || !zt || !sim))
        s = cr_err(e, CR_ERR_NOMEM, "retrieval: out of memory for %d items", n);
    for (int32_t i0 = 0; s == CR_OK && i0 < n; i0 += B) {
        int b = n - i0 < B ? n - i0 : B;
        cr_p1_text_batch tb;
        cr_p1_text_gather(&tb, &bf, d, items + i0, b);
        cr_phase1_embed(&p, &tb, zi + (size_t)i0 * NQ * E, zt + (size_t)i0 * E);
    }
    int64_t hit1 = 0, hit10 = 0;
    for (int32_t i = 0; s == CR_OK && i < n; i++) {
        /* item i's NQ query vectors against every text, max over queries */
        cr_sgemm(0, 1, NQ, n, E, 1.0f, zi + (size_t)i * NQ * E, E, zt, E, 0.0f, sim, n);
        for (int32_t j = 0; j < n; j++)
            for (int k = 1; k < NQ; k++)
                sim[j] = sim[(size_t)k * n + j] > sim[j] ? sim[(size_t)k * n + j] : sim[j];
        int64_t rank = 0;
        for (int32_t j = 0; j < n; j++) rank += j != i && sim[j] >= sim[i];
        hit1 += rank < 1;
        hit10 += rank < 10;
    }
    *r1 = (double)hit1 / n;
    *r10 = (double)hit10 / n;
    cr_free(zi), cr_free(zt), cr_free(sim);
    cr_p1_bufs_free(&bf);
    cr_phase1_free(&p);
    return s;
}

/* ---- the whole run ---------------------------------------------------------------------- */
typedef struct { int64_t raw; int32_t idx; } cr_p1_key;

static int cr_p1_key_cmp(const void *a, const void *b) {
    int64_t x = ((const cr_p1_key *)a)->raw, y = ((const cr_p1_key *)b)->raw;
    return x < y ? -1 : x > y;
}

/* raw id -> dense index of the CF file, or -1 */
static int32_t cr_p1_lookup(const cr_p1_key *k, int32_t n, int64_t raw) {
    cr_p1_key q = {raw, 0};
    const cr_p1_key *h = bsearch(&q, k, (size_t)n, sizeof *k, cr_p1_key_cmp);
    return h ? h->idx : -1;
}

static cr_p1_key *cr_p1_index(const int64_t *raw, int32_t n) {
    cr_p1_key *k = cr_alloc(sizeof *k * (size_t)n);
    if (!k) return NULL;
    for (int32_t i = 0; i < n; i++) k[i] = (cr_p1_key){raw[i], i};
    qsort(k, (size_t)n, sizeof *k, cr_p1_key_cmp);
    return k;
}

/* Pairs from the ratings' training part (each user's last two ratings, the
 * MF file's valid and test, are left out): item-item from consecutive
 * ratings of a user (distinct items), user-item from ratings >= 4. */
static cr_status cr_p1_pairs(const char *data_dir, const int64_t *raw_user, int32_t n_users,
                             const int64_t *raw_item, int32_t n_items, int32_t **ii,
                             int64_t *n_ii, int32_t **ui, int64_t *n_ui, cr_error *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ratings.csv", data_dir);
    cr_interactions x;
    CR_TRY(cr_interactions_load(&x, path, e));
    cr_p1_key *ku = cr_p1_index(raw_user, n_users), *ki = cr_p1_index(raw_item, n_items);
    *ii = cr_alloc(sizeof(int32_t) * 2 * (size_t)(x.n ? x.n : 1));
    *ui = cr_alloc(sizeof(int32_t) * 2 * (size_t)(x.n ? x.n : 1));
    *n_ii = *n_ui = 0;
    cr_status s = CR_OK;
    if (!ku || !ki || !*ii || !*ui) s = cr_err(e, CR_ERR_NOMEM, "phase 1: out of memory for pairs");
    for (int32_t u = 0; s == CR_OK && u < x.n_users; u++) {
        int32_t mu = cr_p1_lookup(ku, n_users, x.raw_user[u]);
        int64_t a = x.user_off[u], b = x.user_off[u + 1];
        if (b - a >= 3) b -= 2;
        int32_t prev = -1;
        for (int64_t k = a; k < b; k++) {
            int32_t it = cr_p1_lookup(ki, n_items, x.raw_item[x.item[k]]);
            if (it < 0) { prev = -1; continue; }
            if (prev >= 0 && prev != it) {
                (*ii)[2 * *n_ii] = prev, (*ii)[2 * *n_ii + 1] = it;
                (*n_ii)++;
            }
            if (mu >= 0 && x.rating[k] >= 4.0f) {
                (*ui)[2 * *n_ui] = mu, (*ui)[2 * *n_ui + 1] = it;
                (*n_ui)++;
            }
            prev = it;
        }
    }
    cr_free(ku), cr_free(ki);
    cr_interactions_free(&x);
    return s;
}

cr_status cr_phase1_run(const cr_phase1_opts *o, cr_phase1_result *res, cr_error *e) {
    memset(res, 0, sizeof *res);
    for (int k = 0; k < CR_P1_NLOSS; k++) res->first[k] = res->last[k] = NAN;
    if (!o->mf_path || !o->data_dir || !o->out_dir)
        return cr_err(e, CR_ERR_ARG, "phase 1: the MF file, the data directory and the output "
                      "directory are required");
    if (!(o->held_frac > 0 && o->held_frac < 0.9) || o->steps < 0 || o->bpe_vocab < 260)
        return cr_err(e, CR_ERR_ARG, "phase 1: held-out share must be in (0, 0.9), steps >= 0, "
                      "BPE vocabulary >= 260");
    cr_mf mf = {0};
    int64_t *raw_user = NULL, *raw_item = NULL;
    cr_item_texts tx = {0};
    cr_bpe *bpe = NULL;
    cr_bpe_trainer *tr = NULL;
    cr_qformer m = {0};
    int32_t *with = NULL, *tok = NULL, *tok_len = NULL, *ii = NULL, *ui = NULL;
    int64_t n_ii = 0, n_ui = 0;
    char path[4096];
    CR_TRY(cr_mf_load(&mf, &raw_user, &raw_item, o->mf_path, e));
    cr_status s = CR_OK;
    if (o->model.d_cf > 0 && o->model.d_cf != mf.dim) {
        s = cr_err(e, CR_ERR_SHAPE, "%s: CF vectors have %d values, the item encoder expects %d "
                   "(train the MF with --dim %d or drop the setting)", o->mf_path, mf.dim,
                   o->model.d_cf, o->model.d_cf);
        goto done;
    }
    if ((s = cr_mkdirs(o->out_dir, e)) || (s = cr_item_texts_load(&tx, o->data_dir, raw_item,
                                                                   mf.n_items, e)))
        goto done;
    /* items with a text, shuffled; the first held_frac never train */
    with = cr_alloc(sizeof(int32_t) * (size_t)mf.n_items);
    tok = cr_alloc(sizeof(int32_t) * (size_t)mf.n_items * o->model.max_text);
    tok_len = cr_alloc(sizeof(int32_t) * (size_t)mf.n_items);
    if (!with || !tok || !tok_len) {
        s = cr_err(e, CR_ERR_NOMEM, "phase 1: out of memory for %d items", mf.n_items);
        goto done;
    }
    int32_t n_text = 0;
    for (int32_t i = 0; i < mf.n_items; i++)
        if (tx.text[i]) with[n_text++] = i;
    cr_rng r;
    cr_rng_seed(&r, o->seed);
    cr_rng_shuffle_u32(&r, (uint32_t *)with, (size_t)n_text);
    int32_t n_held = (int32_t)lround(o->held_frac * n_text);
    if (n_held < 2 || n_text - n_held < 2) {
        s = cr_err(e, CR_ERR_ARG, "phase 1: %d items with a text in %s/movies.csv: too few to "
                   "hold out %.0f%%", n_text, o->data_dir, 100 * o->held_frac);
        goto done;
    }
    /* the tokenizer learns from the training items' texts only */
    cr_bpe_train_opts bo;
    cr_bpe_train_opts_default(&bo);
    bo.vocab_size = o->bpe_vocab;
    if ((s = cr_bpe_trainer_new(&tr, e))) goto done;
    for (int32_t i = n_held; i < n_text; i++)
        if ((s = cr_bpe_trainer_add(tr, tx.text[with[i]], strlen(tx.text[with[i]]), e))) goto done;
    snprintf(path, sizeof path, "%s/tokenizer", o->out_dir);
    if ((s = cr_bpe_trainer_fit(tr, &bo, e)) || (s = cr_bpe_trainer_save(tr, path, e)) ||
        (s = cr_bpe_load(&bpe, path, e)))
        goto done;
    cr_qformer_cfg c = o->model;
    c.d_cf = mf.dim;
    c.vocab = cr_bpe_vocab_size(bpe) + 3;
    int T = c.max_text;
    for (int32_t i = 0; i < n_text; i++) {
        int tr1 = 0, it = with[i];
        if ((s = cr_item_text_encode(bpe, tx.text[it], T, tok + (size_t)it * T, &tok_len[it],
                                     &tr1, e)))
            goto done;
        res->truncated += tr1;
    }
    if ((s = cr_p1_pairs(o->data_dir, raw_user, mf.n_users, raw_item, mf.n_items, &ii, &n_ii,
                         &ui, &n_ui, e)) ||
        (s = cr_qformer_init(&m, &c, o->seed, e)))
        goto done;
    cr_phase1_data d = {.n_items = mf.n_items, .n_users = mf.n_users, .d = mf.dim,
                        .item_cf = mf.item, .user_cf = mf.user, .T = T, .tok = tok,
                        .tok_len = tok_len, .train_items = with + n_held,
                        .n_train = n_text - n_held, .ii = ii, .n_ii = n_ii, .ui = ui,
                        .n_ui = n_ui};
    res->vocab = c.vocab, res->items = mf.n_items, res->train_items = d.n_train;
    res->held_items = n_held, res->ii_pairs = (int)n_ii, res->ui_pairs = (int)n_ui;
    res->eval_n = n_held < o->eval_items ? n_held : o->eval_items;
    if ((s = cr_phase1_recall(&m, &d, with, res->eval_n, o->batch, &res->recall1_init,
                              &res->recall10_init, e)))
        goto done;
    if (o->steps > 0 && (s = cr_phase1_train(&m, &d, o, res, e))) goto done;
    if ((s = cr_phase1_recall(&m, &d, with, res->eval_n, o->batch, &res->recall1,
                              &res->recall10, e)) ||
        (s = cr_p1_save(&m, o, o->steps, e)))
        goto done;
    char js[2048];
    int n = snprintf(js, sizeof js,
                     "{\"steps\": %d, \"vocab\": %d, \"train_items\": %d, \"held_items\": %d, "
                     "\"truncated\": %d, \"ii_pairs\": %d, \"ui_pairs\": %d, \"eval_n\": %d, "
                     "\"recall1_init\": %.4f, \"recall10_init\": %.4f, \"recall1\": %.4f, "
                     "\"recall10\": %.4f, \"seconds\": %.1f, \"losses\": {",
                     o->steps, res->vocab, res->train_items, res->held_items, res->truncated,
                     res->ii_pairs, res->ui_pairs, res->eval_n, res->recall1_init,
                     res->recall10_init, res->recall1, res->recall10, res->seconds);
    for (int k = 0; k < CR_P1_NLOSS; k++) {
        const char *sep = k ? ", " : "";
        if (isnan(res->first[k]))
            n += snprintf(js + n, sizeof js - n, "%s\"%s\": null", sep, cr_p1_loss_name(k));
        else
            n += snprintf(js + n, sizeof js - n, "%s\"%s\": [%.4f, %.4f]", sep,
                          cr_p1_loss_name(k), res->first[k], res->last[k]);
    }
    n += snprintf(js + n, sizeof js - n, "}}\n");
    snprintf(path, sizeof path, "%s/phase1.json", o->out_dir);
    s = cr_write_file_atomic(path, js, (size_t)n, e);
done:
    cr_qformer_free(&m);
    cr_bpe_free(bpe);
    cr_bpe_trainer_free(tr);
    cr_item_texts_free(&tx);
    cr_free(with), cr_free(tok), cr_free(tok_len), cr_free(ii), cr_free(ui);
    free(raw_user), free(raw_item); /* cr_mf_load allocates them with malloc */
    cr_mf_free(&mf);
    return s;
}
