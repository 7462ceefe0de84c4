/*
 * phase2_tasks.c - what phase 2 trains on: the ratings with the MF file's
 * dense ids and leave-one-out split, each item's text and fields (title,
 * year, genres, director), phase 1's held-out items (whose texts no task
 * may ever target, so their description perplexity stays honest), and the
 * draw of one training example per task. Only the ratings' training part
 * (each user's last two ratings left out) feeds next-item and "movies
 * like" examples. Reads files; never prints.
 */
#include "phase2.h"

#include "item_text.h"

#include "../data/data.h"
#include "../data/movielens.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *cr_p2_strndup(const char *s, size_t n) {
    char *p = cr_alloc(n + 1);
    if (p) memcpy(p, s, n), p[n] = '\0';
    return p;
}

/* Index of a genre name, added when new (up to CR_P2_MAX_GENRES). */
static int cr_p2_genre_id(cr_p2_data *d, const char *g, size_t n) {
    for (int i = 0; i < d->n_genres; i++)
        if (strlen(d->genre[i]) == n && !strncmp(d->genre[i], g, n)) return i;
    if (d->n_genres >= CR_P2_MAX_GENRES || n >= sizeof d->genre[0]) return -1;
    memcpy(d->genre[d->n_genres], g, n);
    d->genre[d->n_genres][n] = '\0';
    return d->n_genres++;
}

/* The catalogue's title, year, genres and director of every CF item. */
static cr_status cr_p2_fields(cr_p2_data *d, const char *dir, cr_error *e) {
    int32_t n = d->mf.n_items;
    cr_ml_catalog *cat = NULL;
    CR_TRY(cr_ml_catalog_open(&cat, dir, e));
    cr_status s = CR_OK;
    for (int32_t it = 0; it < n && !s; it++) {
        int32_t j = cr_ml_catalog_find(cat, d->raw_item[it]);
        if (j < 0) continue;
        cr_ml_item m;
        cr_ml_catalog_item(cat, j, &m);
        d->year[it] = m.year;
        if (!(d->title[it] = cr_p2_strndup(m.title, strlen(m.title))) ||
            (*m.director && !(d->director[it] = cr_p2_strndup(m.director, strlen(m.director))))) {
            s = cr_err(e, CR_ERR_NOMEM, "phase 2: out of memory");
            break;
        }
        size_t gl = strlen(m.genres);
        if (!gl) continue;
        char *gs = cr_alloc(2 * gl + 1);
        if (!gs) {
            s = cr_err(e, CR_ERR_NOMEM, "phase 2: out of memory");
            break;
        }
        size_t o = 0;
        for (const char *g = m.genres; *g;) {
            size_t len = strcspn(g, "|");
            int gid = cr_p2_genre_id(d, g, len);
            if (gid >= 0) d->gmask[it] |= 1u << gid;
            if (o) gs[o++] = ',', gs[o++] = ' ';
            memcpy(gs + o, g, len);
            o += len;
            g += len + (g[len] == '|');
        }
        gs[o] = '\0';
        d->genres[it] = gs;
    }
    cr_ml_catalog_free(cat);
    return s;
}

cr_status cr_p2_data_load(cr_p2_data *d, const char *data_dir, const char *mf_path,
                          double held_frac, uint64_t seed, cr_error *e) {
    memset(d, 0, sizeof *d);
    if (!(held_frac > 0 && held_frac < 0.9))
        return cr_err(e, CR_ERR_ARG, "phase 2: held-out share must be in (0, 0.9)");
    char path[4096];
    snprintf(path, sizeof path, "%s/ratings.csv", data_dir);
    cr_status s = cr_interactions_load(&d->x, path, e);
    if (s == CR_OK) s = cr_loo_split_make(&d->split, &d->x, e);
    if (s == CR_OK) s = cr_mf_load(&d->mf, &d->raw_user, &d->raw_item, mf_path, e);
    if (s != CR_OK) goto fail;
    int32_t n = d->mf.n_items;
    if (d->mf.n_users != d->x.n_users || n != d->x.n_items ||
        memcmp(d->raw_user, d->x.raw_user, sizeof(int64_t) * (size_t)d->x.n_users) ||
        memcmp(d->raw_item, d->x.raw_item, sizeof(int64_t) * (size_t)n)) {
        s = cr_err(e, CR_ERR_MISMATCH, "%s was not trained on %s (its users or items differ); "
                   "run `crossrec ilm mf --ratings %s` first", mf_path, path, path);
        goto fail;
    }
    cr_item_texts tx;
    if ((s = cr_item_texts_load(&tx, data_dir, d->raw_item, n, e))) goto fail;
    d->text = tx.text; /* ownership moves here; freed item by item below */
    d->title = cr_alloc(sizeof(char *) * (size_t)n);
    d->genres = cr_alloc(sizeof(char *) * (size_t)n);
    d->director = cr_alloc(sizeof(char *) * (size_t)n);
    d->year = cr_alloc(sizeof(int32_t) * (size_t)n);
    d->gmask = cr_alloc(sizeof(uint32_t) * (size_t)n);
    d->held = cr_alloc((size_t)n);
    d->held_items = cr_alloc(sizeof(int32_t) * (size_t)n);
    d->pop = cr_alloc(sizeof(int64_t) * (size_t)n);
    d->tr_users = cr_alloc(sizeof(int32_t) * (size_t)(d->x.n_users ? d->x.n_users : 1));
    if (!d->title || !d->genres || !d->director || !d->year || !d->gmask || !d->held ||
        !d->held_items || !d->pop || !d->tr_users) {
        s = cr_err(e, CR_ERR_NOMEM, "phase 2: out of memory for %d items", n);
        goto fail;
    }
    if ((s = cr_p2_fields(d, data_dir, e))) goto fail;
    /* phase 1's rule (cr_phase1_run): the items with a text, shuffled by the
     * seed, the first round(held_frac * n) held out */
    int32_t *with = d->held_items;
    for (int32_t i = 0; i < n; i++)
        if (d->text[i]) with[d->n_text++] = i;
    cr_rng r;
    cr_rng_seed(&r, seed);
    cr_rng_shuffle_u32(&r, (uint32_t *)with, (size_t)d->n_text);
    d->n_held = (int32_t)lround(held_frac * d->n_text);
    for (int32_t i = 0; i < d->n_held; i++) d->held[with[i]] = 1;
    for (int32_t u = 0; u < d->x.n_users; u++) {
        int64_t a = d->x.user_off[u], b = cr_p2_train_end(d, u);
        for (int64_t k = a; k < b; k++) d->pop[d->x.item[k]]++;
        if (b - a >= 2) d->tr_users[d->n_tr_users++] = u;
    }
    return CR_OK;
fail:
    cr_p2_data_free(d);
    return s;
}

void cr_p2_data_free(cr_p2_data *d) {
    int32_t n = d->mf.n_items;
    for (int32_t i = 0; i < n; i++) {
        if (d->text) cr_free(d->text[i]);
        if (d->title) cr_free(d->title[i]);
        if (d->genres) cr_free(d->genres[i]);
        if (d->director) cr_free(d->director[i]);
    }
    cr_free(d->text), cr_free(d->title), cr_free(d->genres), cr_free(d->director);
    cr_free(d->year), cr_free(d->gmask), cr_free(d->held), cr_free(d->held_items);
    cr_free(d->pop), cr_free(d->tr_users);
    free(d->raw_user), free(d->raw_item); /* cr_mf_load allocates them with malloc */
    cr_mf_free(&d->mf);
    cr_loo_split_free(&d->split);
    if (d->x.user_off) cr_interactions_free(&d->x);
    memset(d, 0, sizeof *d);
}

int64_t cr_p2_train_end(const cr_p2_data *d, int32_t u) {
    int64_t v = d->split.valid_pos ? d->split.valid_pos[u] : -1;
    return v >= 0 ? v : d->x.user_off[u + 1];
}

/* An item whose text may be a target: it has one and phase 1 trained on it. */
static int cr_p2_trainable(const cr_p2_data *d, int32_t it) {
    return d->text[it] && !d->held[it] && d->title[it];
}

int cr_p2_draw(const cr_p2_data *d, int task, int max_hist, cr_rng *r, cr_p2_example *x,
               int32_t *hist, char *buf, size_t cap) {
    memset(x, 0, sizeof *x);
    x->tmpl = cr_p2_template(task);
    x->item = x->user = -1;
    x->target = buf;
    x->eos = 1;
    if (task <= CR_P2_DIRECTOR) {
        int32_t n_train = d->n_text - d->n_held;
        if (n_train < 1) return 0;
        int32_t it = d->held_items[d->n_held + (int32_t)cr_rng_below(r, (uint64_t)n_train)];
        x->item = it;
        switch (task) {
        case CR_P2_DESCRIBE: snprintf(buf, cap, " %s", d->text[it]); return 1;
        case CR_P2_GENRE:
            if (!d->genres[it]) return 0;
            snprintf(buf, cap, " %s.", d->genres[it]);
            return 1;
        case CR_P2_YEAR:
            if (!d->year[it]) return 0;
            snprintf(buf, cap, " %d.", d->year[it]);
            return 1;
        default:
            if (!d->director[it]) return 0;
            snprintf(buf, cap, " %s.", d->director[it]);
            return 1;
        }
    }
    if (d->n_tr_users < 1 || (task != CR_P2_NEXT && task != CR_P2_SIMILAR)) return 0;
    int32_t u = d->tr_users[cr_rng_below(r, (uint64_t)d->n_tr_users)];
    int64_t a = d->x.user_off[u], b = cr_p2_train_end(d, u);
    int64_t k = a + 1 + (int64_t)cr_rng_below(r, (uint64_t)(b - a - 1));
    int32_t target = d->x.item[k];
    if (!cr_p2_trainable(d, target)) return 0;
    if (task == CR_P2_SIMILAR) {
        x->item = d->x.item[k - 1];
        if (x->item == target) return 0;
    } else {
        int64_t h0 = k - max_hist > a ? k - max_hist : a;
        for (int64_t j = h0; j < k; j++) hist[x->n_hist++] = d->x.item[j];
        x->hist = hist;
        x->user = u;
    }
    snprintf(buf, cap, " %s.", d->title[target]);
    return 1;
}
