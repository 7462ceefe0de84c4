/*
 * mf.c - BPR matrix factorisation over a time-ordered leave-one-out split,
 * its next-item evaluation, and its file. The embeddings it produces are
 * what the item encoder reads; their own quality is measured here first.
 */
#include "mf.h"

#include "../core/ptable_io.h"
#include "../data/data.h"
#include "../data/movielens.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- loading ----------------------------------------------------------------------- */

typedef struct raw_row {
    int64_t user, item, ts, order;
    float   rating;
} raw_row;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_row(const void *a, const void *b) {
    const raw_row *x = a, *y = b;
    if (x->user != y->user) return (x->user > y->user) - (x->user < y->user);
    if (x->ts != y->ts) return (x->ts > y->ts) - (x->ts < y->ts);
    return (x->order > y->order) - (x->order < y->order);
}

/* Sorted unique values; returns the count. */
static int64_t uniq(int64_t *v, int64_t n) {
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (k == 0 || v[i] != v[k - 1]) v[k++] = v[i];
    return k;
}

static int32_t find_id(const int64_t *v, int64_t n, int64_t key) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (v[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return (int32_t)lo;
}

cr_status cr_interactions_load(cr_interactions *x, const char *path, cr_error *e) {
    memset(x, 0, sizeof *x);
    raw_row *rows = NULL;
    int64_t n = 0, *us = NULL, *is = NULL;
    cr_ml_ratings rr;
    cr_status s = cr_ml_ratings_read(&rr, path, e); /* the one MovieLens ratings reader */
    if (s) return s;
    n = rr.n;
    rows = malloc((size_t)n * sizeof *rows);
    if (!rows) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int64_t i = 0; i < n; i++)
        rows[i] = (raw_row){rr.user[i], rr.movie[i], rr.ts[i], i, (float)rr.rating[i]};
    us = malloc((size_t)n * sizeof *us);
    is = malloc((size_t)n * sizeof *is);
    x->item = malloc((size_t)n * sizeof *x->item);
    x->rating = malloc((size_t)n * sizeof *x->rating);
    if (!us || !is || !x->item || !x->rating) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) {
        us[i] = rows[i].user;
        is[i] = rows[i].item;
    }
    int64_t nu = uniq(us, n), ni = uniq(is, n);
    if (nu > INT32_MAX || ni > INT32_MAX) {
        s = cr_err(e, CR_ERR_LIMIT, "%s: too many users or items", path);
        goto fail;
    }
    qsort(rows, (size_t)n, sizeof *rows, cmp_row);
    x->n = n;
    x->n_users = (int32_t)nu;
    x->n_items = (int32_t)ni;
    x->user_off = calloc((size_t)nu + 1, sizeof *x->user_off);
    x->raw_user = malloc((size_t)nu * sizeof *x->raw_user);
    x->raw_item = malloc((size_t)ni * sizeof *x->raw_item);
    if (!x->user_off || !x->raw_user || !x->raw_item) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    memcpy(x->raw_user, us, (size_t)nu * sizeof *us);
    memcpy(x->raw_item, is, (size_t)ni * sizeof *is);
    for (int64_t i = 0; i < n; i++) {
        int32_t u = find_id(us, nu, rows[i].user);
        x->user_off[u + 1]++;
        x->item[i] = find_id(is, ni, rows[i].item);
        x->rating[i] = rows[i].rating;
    }
    for (int64_t u = 0; u < nu; u++) x->user_off[u + 1] += x->user_off[u];
    free(us);
    free(is);
    free(rows);
    cr_ml_ratings_free(&rr);
    return CR_OK;
fail:
    free(us);
    free(is);
    free(rows);
    cr_ml_ratings_free(&rr);
    cr_interactions_free(x);
    return s;
}

void cr_interactions_free(cr_interactions *x) {
    free(x->user_off);
    free(x->item);
    free(x->rating);
    free(x->raw_user);
    free(x->raw_item);
    memset(x, 0, sizeof *x);
}

cr_status cr_loo_split_make(cr_loo_split *s, const cr_interactions *x, cr_error *e) {
    s->test_pos = malloc((size_t)x->n_users * sizeof(int64_t));
    s->valid_pos = malloc((size_t)x->n_users * sizeof(int64_t));
    if (!s->test_pos || !s->valid_pos) {
        cr_loo_split_free(s);
        return cr_err(e, CR_ERR_NOMEM, "out of memory for the split");
    }
    for (int32_t u = 0; u < x->n_users; u++) {
        int64_t a = x->user_off[u], b = x->user_off[u + 1];
        s->test_pos[u] = b - a >= 3 ? b - 1 : -1;
        s->valid_pos[u] = b - a >= 3 ? b - 2 : -1;
    }
    return CR_OK;
}

void cr_loo_split_free(cr_loo_split *s) {
    free(s->test_pos);
    free(s->valid_pos);
    s->test_pos = s->valid_pos = NULL;
}

/* End of user u's training interactions (exclusive). */
static int64_t train_end(const cr_interactions *x, const cr_loo_split *s, int32_t u) {
    return s->valid_pos[u] >= 0 ? s->valid_pos[u] : x->user_off[u + 1];
}

/* ---- training ----------------------------------------------------------------------- */

void cr_mf_cfg_default(cr_mf_cfg *c) {
    if (!c) return;
    c->dim = 32;
    c->epochs = 20;
    c->lr = 0.05f;
    c->reg = 0.001f;
    c->min_rating = 0.0f;
    c->seed = 1;
}

void cr_mf_free(cr_mf *m) {
    cr_free(m->user);
    cr_free(m->item);
    cr_free(m->item_bias);
    memset(m, 0, sizeof *m);
}

/* Per-user sorted item sets (all of the user's items, so negatives are
 * items the user never touched at any time). */
typedef struct item_sets {
    int64_t *off;
    int32_t *items;
} item_sets;

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static cr_status sets_make(item_sets *st, const cr_interactions *x, cr_error *e) {
    st->off = malloc(((size_t)x->n_users + 1) * sizeof *st->off);
    st->items = malloc((size_t)x->n * sizeof *st->items);
    if (!st->off || !st->items) return cr_err(e, CR_ERR_NOMEM, "out of memory for item sets");
    memcpy(st->off, x->user_off, ((size_t)x->n_users + 1) * sizeof *st->off);
    memcpy(st->items, x->item, (size_t)x->n * sizeof *st->items);
    for (int32_t u = 0; u < x->n_users; u++)
        qsort(st->items + st->off[u], (size_t)(st->off[u + 1] - st->off[u]), sizeof(int32_t), cmp_i32);
    return CR_OK;
}

static int sets_has(const item_sets *st, int32_t u, int32_t item) {
    const int32_t *a = st->items + st->off[u];
    return bsearch(&item, a, (size_t)(st->off[u + 1] - st->off[u]), sizeof *a, cmp_i32) != NULL;
}

static void sets_free(item_sets *st) {
    free(st->off);
    free(st->items);
}

/* An item u never interacted with, or -1 if 64 draws all hit (a user who
 * touched nearly everything). */
static int32_t draw_negative(cr_rng *r, const item_sets *st, int32_t u, int32_t n_items) {
    for (int t = 0; t < 64; t++) {
        int32_t j = (int32_t)cr_rng_below(r, (uint64_t)n_items);
        if (!sets_has(st, u, j)) return j;
    }
    return -1;
}

cr_status cr_mf_train(cr_mf *m, const cr_interactions *x, const cr_loo_split *s,
                      const cr_mf_cfg *c, double *train_loss, cr_error *e) {
    memset(m, 0, sizeof *m);
    if (c->dim < 1 || c->epochs < 0 || !(c->lr > 0) || !(c->reg >= 0))
        return cr_err(e, CR_ERR_ARG, "mf: dim >= 1, epochs >= 0, lr > 0 and reg >= 0 expected");
    m->n_users = x->n_users;
    m->n_items = x->n_items;
    m->dim = c->dim;
    int D = c->dim;
    m->user = cr_alloc((size_t)x->n_users * (size_t)D * sizeof(float));
    m->item = cr_alloc((size_t)x->n_items * (size_t)D * sizeof(float));
    m->item_bias = cr_alloc((size_t)x->n_items * sizeof(float));
    int64_t *pairs = malloc((size_t)x->n * sizeof *pairs);
    int32_t *pair_user = malloc((size_t)x->n * sizeof *pair_user);
    item_sets st = {0};
    cr_status rc = CR_OK;
    if (!m->user || !m->item || !m->item_bias || !pairs || !pair_user) {
        rc = cr_err(e, CR_ERR_NOMEM, "mf: out of memory");
        goto done;
    }
    if ((rc = sets_make(&st, x, e))) goto done;
    cr_rng r;
    cr_rng_seed(&r, c->seed);
    float a = 0.1f / sqrtf((float)D);
    cr_rng_fill_normal(&r, m->user, (size_t)x->n_users * (size_t)D, a);
    cr_rng_fill_normal(&r, m->item, (size_t)x->n_items * (size_t)D, a);
    int64_t np = 0;
    for (int32_t u = 0; u < x->n_users; u++)
        for (int64_t p = x->user_off[u]; p < train_end(x, s, u); p++)
            if (x->rating[p] >= c->min_rating) {
                pairs[np] = p;
                pair_user[np++] = u;
            }
    uint32_t *perm = malloc((size_t)(np ? np : 1) * sizeof *perm);
    if (!perm) {
        rc = cr_err(e, CR_ERR_NOMEM, "mf: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < np; i++) perm[i] = (uint32_t)i;
    double loss = 0;
    for (int ep = 0; ep < c->epochs; ep++) {
        cr_rng_shuffle_u32(&r, perm, (size_t)np);
        loss = 0;
        int64_t cnt = 0;
        for (int64_t k = 0; k < np; k++) {
            int64_t p = pairs[perm[k]];
            int32_t u = pair_user[perm[k]], i = x->item[p];
            int32_t j = draw_negative(&r, &st, u, x->n_items);
            if (j < 0) continue;
            float *pu = m->user + (size_t)u * D, *qi = m->item + (size_t)i * D,
                  *qj = m->item + (size_t)j * D;
            float d = m->item_bias[i] - m->item_bias[j];
            for (int f = 0; f < D; f++) d += pu[f] * (qi[f] - qj[f]);
            /* d/dd log sigmoid(d) = sigmoid(-d) */
            float g = 1.0f / (1.0f + expf(d));
            loss += d > 0 ? log1p(exp(-d)) : -d + log1p(exp(d));
            cnt++;
            for (int f = 0; f < D; f++) {
                float pf = pu[f], qif = qi[f], qjf = qj[f];
                pu[f] += c->lr * (g * (qif - qjf) - c->reg * pf);
                qi[f] += c->lr * (g * pf - c->reg * qif);
                qj[f] += c->lr * (-g * pf - c->reg * qjf);
            }
            m->item_bias[i] += c->lr * (g - c->reg * m->item_bias[i]);
            m->item_bias[j] += c->lr * (-g - c->reg * m->item_bias[j]);
        }
        loss = cnt ? loss / (double)cnt : NAN;
    }
    if (train_loss) *train_loss = loss;
    free(perm);
done:
    free(pairs);
    free(pair_user);
    sets_free(&st);
    if (rc) cr_mf_free(m);
    return rc;
}

/* ---- evaluation ---------------------------------------------------------------------- */

cr_status cr_mf_evaluate(const cr_mf *m, const cr_interactions *x, const cr_loo_split *s,
                         int use_test, int n_neg, uint64_t seed, cr_next_item_metrics *out,
                         cr_error *e) {
    memset(out, 0, sizeof *out);
    if (n_neg < 1) return cr_err(e, CR_ERR_ARG, "mf: n_neg must be >= 1");
    item_sets st = {0};
    float *pop = NULL;
    CR_TRY(sets_make(&st, x, e));
    if (!m) {
        pop = calloc((size_t)x->n_items, sizeof *pop);
        if (!pop) {
            sets_free(&st);
            return cr_err(e, CR_ERR_NOMEM, "mf: out of memory");
        }
        for (int32_t u = 0; u < x->n_users; u++)
            for (int64_t p = x->user_off[u]; p < train_end(x, s, u); p++) pop[x->item[p]] += 1;
    }
    cr_rng r;
    cr_rng_seed(&r, seed);
    for (int32_t u = 0; u < x->n_users; u++) {
        int64_t pos = use_test ? s->test_pos[u] : s->valid_pos[u];
        if (pos < 0) continue;
        int32_t target = x->item[pos];
        /* The same candidate draws for every model: they depend on the seed
         * and the user only (the rng advances identically). */
        float st_score = 0;
        int rank = 0, drawn = 0;
        float tscore;
        if (m) {
            const float *pu = m->user + (size_t)u * m->dim, *qi = m->item + (size_t)target * m->dim;
            tscore = m->item_bias[target];
            for (int f = 0; f < m->dim; f++) tscore += pu[f] * qi[f];
        } else {
            tscore = pop[target];
        }
        for (int k = 0; k < n_neg; k++) {
            int32_t j = draw_negative(&r, &st, u, x->n_items);
            if (j < 0) continue;
            drawn++;
            if (m) {
                const float *pu = m->user + (size_t)u * m->dim, *qj = m->item + (size_t)j * m->dim;
                st_score = m->item_bias[j];
                for (int f = 0; f < m->dim; f++) st_score += pu[f] * qj[f];
            } else {
                st_score = pop[j];
            }
            if (st_score >= tscore) rank++;
        }
        if (!drawn) continue;
        out->users++;
        if (rank < 5) {
            out->hr5 += 1;
            out->ndcg5 += 1.0 / log2(rank + 2.0);
        }
        if (rank < 10) {
            out->hr10 += 1;
            out->ndcg10 += 1.0 / log2(rank + 2.0);
        }
    }
    if (out->users) {
        double nu = (double)out->users;
        out->hr5 /= nu;
        out->hr10 /= nu;
        out->ndcg5 /= nu;
        out->ndcg10 /= nu;
    }
    free(pop);
    sets_free(&st);
    return CR_OK;
}

/* ---- file ------------------------------------------------------------------------------- */

cr_status cr_mf_save(const cr_mf *m, const cr_interactions *x, const char *path, cr_error *e) {
    cr_st_writer w;
    cr_st_writer_init(&w);
    int64_t su[2] = {m->n_users, m->dim}, si[2] = {m->n_items, m->dim};
    int64_t nu[1] = {m->n_users}, ni[1] = {m->n_items};
    cr_status s;
    if ((s = cr_st_add_meta(&w, "format", "crossrec.mf", e)) ||
        (s = cr_st_add(&w, "user", CR_DT_F32, 2, su, m->user, e)) ||
        (s = cr_st_add(&w, "item", CR_DT_F32, 2, si, m->item, e)) ||
        (s = cr_st_add(&w, "item_bias", CR_DT_F32, 1, ni, m->item_bias, e)) ||
        (s = cr_st_add(&w, "raw_user", CR_DT_I64, 1, nu, x->raw_user, e)) ||
        (s = cr_st_add(&w, "raw_item", CR_DT_I64, 1, ni, x->raw_item, e)))
        goto done;
    s = cr_st_save(&w, path, e);
done:
    cr_st_writer_free(&w);
    return s;
}

cr_status cr_mf_load(cr_mf *m, int64_t **raw_user, int64_t **raw_item, const char *path,
                     cr_error *e) {
    memset(m, 0, sizeof *m);
    *raw_user = *raw_item = NULL;
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    cr_status s = CR_OK;
    const char *fmt = cr_st_meta(&f, "format");
    const cr_st_tensor *u = cr_st_find(&f, "user"), *it = cr_st_find(&f, "item");
    if (!fmt || strcmp(fmt, "crossrec.mf") || !u || !it || u->ndim != 2 || it->ndim != 2 ||
        u->shape[1] != it->shape[1] || u->shape[1] < 1 || u->shape[0] > INT32_MAX ||
        it->shape[0] > INT32_MAX) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: not a crossrec matrix-factorisation file", path);
        goto done;
    }
    m->n_users = (int32_t)u->shape[0];
    m->n_items = (int32_t)it->shape[0];
    m->dim = (int)u->shape[1];
    int64_t sb[1] = {m->n_items}, su[1] = {m->n_users};
    const cr_st_tensor *b, *ru, *ri;
    if ((s = cr_st_expect(&f, "user", CR_DT_F32, 2, u->shape, &u, e)) ||
        (s = cr_st_expect(&f, "item", CR_DT_F32, 2, it->shape, &it, e)) ||
        (s = cr_st_expect(&f, "item_bias", CR_DT_F32, 1, sb, &b, e)) ||
        (s = cr_st_expect(&f, "raw_user", CR_DT_I64, 1, su, &ru, e)) ||
        (s = cr_st_expect(&f, "raw_item", CR_DT_I64, 1, sb, &ri, e)))
        goto done;
    m->user = cr_alloc(u->nbytes);
    m->item = cr_alloc(it->nbytes);
    m->item_bias = cr_alloc(b->nbytes);
    *raw_user = malloc(ru->nbytes);
    *raw_item = malloc(ri->nbytes);
    if (!m->user || !m->item || !m->item_bias || !*raw_user || !*raw_item) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(m->user, u->data, u->nbytes);
    memcpy(m->item, it->data, it->nbytes);
    memcpy(m->item_bias, b->data, b->nbytes);
    memcpy(*raw_user, ru->data, ru->nbytes);
    memcpy(*raw_item, ri->data, ri->nbytes);
done:
    if (s) {
        cr_mf_free(m);
        free(*raw_user);
        free(*raw_item);
        *raw_user = *raw_item = NULL;
    }
    cr_st_close(&f);
    return s;
}

cr_status cr_mf_fit_file(const char *ratings, const char *out, const cr_mf_cfg *c, FILE *log,
                         cr_interactions *x, cr_loo_split *s, cr_mf *m, double *loss,
                         cr_error *e) {
    memset(s, 0, sizeof *s);
    memset(m, 0, sizeof *m);
    CR_TRY(cr_interactions_load(x, ratings, e));
    cr_status st = cr_loo_split_make(s, x, e);
    if (!st && log)
        fprintf(log, "%lld interactions, %d users, %d items; training dim %d for %d epochs\n",
                (long long)x->n, x->n_users, x->n_items, c->dim, c->epochs);
    if (!st) st = cr_mf_train(m, x, s, c, loss, e);
    if (!st) st = cr_mf_save(m, x, out, e);
    if (st) {
        cr_mf_free(m);
        cr_loo_split_free(s);
        cr_interactions_free(x);
    }
    return st;
}
