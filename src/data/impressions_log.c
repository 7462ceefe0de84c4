/*
 * impressions_log.c - the interaction log in memory: a text arena, key maps
 * for users and items, the catalogue's categories and years, the events in
 * file order. Every reader fills it through these calls, so keys, category
 * sets and years mean the same whichever file they came from. It never
 * computes a feature.
 */
#include "impressions.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

cr_status cr_imp_text(cr_imp_log *g, const char *s, size_t n, size_t *off, cr_error *e) {
    cr_imp_arena *a = &g->text;
    if (n == 0 && a->len > 0) {
        *off = 0;
        return CR_OK;
    }
    CR_TRY(cr_grow((void **)&a->buf, &a->cap, a->len + n + 1, 1, e));
    memcpy(a->buf + a->len, s, n);
    a->buf[a->len + n] = '\0';
    *off = a->len;
    a->len += n + 1;
    return CR_OK;
}

cr_status cr_imp_log_init(cr_imp_log *g, cr_error *e) {
    memset(g, 0, sizeof *g);
    g->noun_event = "event";
    g->noun_item = "item";
    g->noun_cat = "category";
    size_t empty;
    CR_TRY(cr_imp_text(g, "", 0, &empty, e));
    CR_ASSERT(empty == 0); /* offset 0 is "" for every text field left unset */
    return CR_OK;
}

static void cr_imp_map_free(cr_imp_map *m) {
    cr_free(m->hash);
    cr_free(m->vals);
    memset(m, 0, sizeof *m);
}

void cr_imp_log_free(cr_imp_log *g) {
    free(g->text.buf);
    cr_imp_map_free(&g->item_map);
    cr_imp_map_free(&g->user_map);
    free(g->items);
    free(g->users);
    free(g->ev_user);
    free(g->ev_item);
    free(g->ev_ts);
    free(g->ev_line);
    free(g->ev_rating);
    free(g->ev_value);
    memset(g, 0, sizeof *g);
}

/* ---- key maps: text -> dense index ----------------------------------------------- */

/* The key of index v: an item's or a user's, by the map it belongs to. */
static const char *cr_imp_key(const cr_imp_log *g, const cr_imp_map *m, int32_t v) {
    return cr_imp_str(g, m == &g->item_map ? g->items[v].key : g->users[v].key);
}

static int32_t cr_imp_map_get(const cr_imp_log *g, const cr_imp_map *m, const char *key,
                              size_t n) {
    if (m->cap == 0) return -1;
    uint64_t h = cr_hash64(key, n);
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->vals[i] >= 0) {
        if (m->hash[i] == h) {
            const char *k = cr_imp_key(g, m, m->vals[i]);
            if (strlen(k) == n && !memcmp(k, key, n)) return m->vals[i];
        }
        i = (i + 1) & mask;
    }
    return -1;
}

static cr_status cr_imp_map_put(cr_imp_map *m, uint64_t h, int32_t val, cr_error *e) {
    if (2 * (m->n + 1) > m->cap) {
        size_t ncap = m->cap ? 2 * m->cap : 1024;
        uint64_t *nh = cr_alloc(ncap * sizeof *nh);
        int32_t *nv = cr_alloc(ncap * sizeof *nv);
        if (!nh || !nv) {
            cr_free(nh);
            cr_free(nv);
            return cr_err(e, CR_ERR_NOMEM, "out of memory growing a key map to %zu slots", ncap);
        }
        for (size_t i = 0; i < ncap; i++) nv[i] = -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->vals[i] < 0) continue;
            size_t j = (size_t)m->hash[i] & (ncap - 1);
            while (nv[j] >= 0) j = (j + 1) & (ncap - 1);
            nh[j] = m->hash[i];
            nv[j] = m->vals[i];
        }
        cr_free(m->hash);
        cr_free(m->vals);
        m->hash = nh;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->vals[i] >= 0) i = (i + 1) & mask;
    m->hash[i] = h;
    m->vals[i] = val;
    m->n++;
    return CR_OK;
}

int32_t cr_imp_item_find(const cr_imp_log *g, const char *key, size_t n) {
    return cr_imp_map_get(g, &g->item_map, key, n);
}

int32_t cr_imp_user_find(const cr_imp_log *g, const char *key, size_t n) {
    return cr_imp_map_get(g, &g->user_map, key, n);
}

cr_status cr_imp_item_add(cr_imp_log *g, const char *key, size_t n, int32_t *idx, cr_error *e) {
    *idx = -1;
    if (cr_imp_item_find(g, key, n) >= 0) return CR_OK;
    if (g->n_items >= INT32_MAX - 1)
        return cr_err(e, CR_ERR_LIMIT, "more than %d %ss", INT32_MAX - 1, g->noun_item);
    CR_TRY(cr_grow((void **)&g->items, &g->cap_items, g->n_items + 1, sizeof *g->items, e));
    cr_imp_item *it = &g->items[g->n_items];
    memset(it, 0, sizeof *it);
    CR_TRY(cr_imp_text(g, key, n, &it->key, e));
    CR_TRY(cr_imp_map_put(&g->item_map, cr_hash64(key, n), (int32_t)g->n_items, e));
    *idx = (int32_t)g->n_items++;
    return CR_OK;
}

cr_status cr_imp_user_get(cr_imp_log *g, const char *key, size_t n, int32_t *idx, cr_error *e) {
    if ((*idx = cr_imp_user_find(g, key, n)) >= 0) return CR_OK;
    if (g->n_users >= INT32_MAX - 1)
        return cr_err(e, CR_ERR_LIMIT, "more than %d users", INT32_MAX - 1);
    CR_TRY(cr_grow((void **)&g->users, &g->cap_users, g->n_users + 1, sizeof *g->users, e));
    cr_imp_user *u = &g->users[g->n_users];
    memset(u, 0, sizeof *u);
    CR_TRY(cr_imp_text(g, key, n, &u->key, e));
    CR_TRY(cr_imp_map_put(&g->user_map, cr_hash64(key, n), (int32_t)g->n_users, e));
    *idx = (int32_t)g->n_users++;
    return CR_OK;
}

/* ---- categories and years ------------------------------------------------------------ */

static cr_status cr_imp_cat_id(cr_imp_log *g, const char *c, size_t n, const char *where, int *id,
                               cr_error *e) {
    for (int i = 0; i < g->n_cats; i++)
        if (strlen(g->cat[i]) == n && !memcmp(g->cat[i], c, n)) {
            *id = i;
            return CR_OK;
        }
    if (n >= sizeof g->cat[0])
        return cr_err(e, CR_ERR_LIMIT, "%s: %s '%.*s...' is longer than %zu bytes", where,
                      g->noun_cat, 20, c, sizeof g->cat[0] - 1);
    if (g->n_cats == CR_IMP_MAX_CATS)
        return cr_err(e, CR_ERR_LIMIT, "%s: more than %d distinct %ss", where, CR_IMP_MAX_CATS,
                      g->noun_cat);
    memcpy(g->cat[g->n_cats], c, n);
    g->cat[g->n_cats][n] = '\0';
    *id = g->n_cats++;
    return CR_OK;
}

cr_status cr_imp_item_cats(cr_imp_log *g, int32_t item, const char *text, size_t n, char sep,
                           const char *none, const char *where, cr_error *e) {
    if (none && strlen(none) == n && !memcmp(text, none, n)) n = 0;
    uint64_t mask = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && text[b] != sep) b++;
        if (b > a) {
            int id = 0;
            CR_TRY(cr_imp_cat_id(g, text + a, b - a, where, &id, e));
            mask |= 1ull << id;
        }
        a = b + 1;
    }
    g->items[item].cats = mask;
    return cr_imp_text(g, text, n, &g->items[item].cats_text, e);
}

int32_t cr_imp_title_year(const char *t, size_t n) {
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r')) n--;
    if (n < 6 || t[n - 1] != ')' || t[n - 6] != '(') return 0;
    int32_t y = 0;
    for (size_t i = n - 5; i < n - 1; i++) {
        if (t[i] < '0' || t[i] > '9') return 0;
        y = y * 10 + (t[i] - '0');
    }
    return y;
}

/* ---- events ----------------------------------------------------------------------------- */

cr_status cr_imp_event_add(cr_imp_log *g, int32_t user, int32_t item, int64_t ts, double rating,
                           int64_t line, const double *values, cr_error *e) {
    size_t i = g->n_events;
    if (i >= INT32_MAX - 1)
        return cr_err(e, CR_ERR_LIMIT, "%s: more than %d %ss", g->path, INT32_MAX - 1,
                      g->noun_event);
    if (i + 1 > g->cap_events) { /* parallel arrays grow in step */
        size_t cap = g->cap_events ? 2 * g->cap_events : 4096, nv = (size_t)g->n_values;
        void *p[6] = {realloc(g->ev_user, cap * sizeof *g->ev_user),
                      realloc(g->ev_item, cap * sizeof *g->ev_item),
                      realloc(g->ev_ts, cap * sizeof *g->ev_ts),
                      realloc(g->ev_line, cap * sizeof *g->ev_line),
                      realloc(g->ev_rating, cap * sizeof *g->ev_rating),
                      nv ? realloc(g->ev_value, cap * nv * sizeof *g->ev_value) : NULL};
        /* a failed realloc leaves the old block; keep whichever pointer is live */
        if (p[0]) g->ev_user = p[0];
        if (p[1]) g->ev_item = p[1];
        if (p[2]) g->ev_ts = p[2];
        if (p[3]) g->ev_line = p[3];
        if (p[4]) g->ev_rating = p[4];
        if (p[5]) g->ev_value = p[5];
        if (!p[0] || !p[1] || !p[2] || !p[3] || !p[4] || (nv && !p[5]))
            return cr_err(e, CR_ERR_NOMEM, "%s: out of memory for %zu %ss", g->path, cap,
                          g->noun_event);
        g->cap_events = cap;
    }
    g->ev_user[i] = user;
    g->ev_item[i] = item;
    g->ev_ts[i] = ts;
    g->ev_line[i] = line;
    g->ev_rating[i] = rating;
    for (int k = 0; k < g->n_values; k++) g->ev_value[i * (size_t)g->n_values + k] = values[k];
    g->n_events++;
    return CR_OK;
}

cr_status cr_imp_log_finish(cr_imp_log *g, cr_error *e) {
    if (g->n_events == 0)
        return cr_err(e, CR_ERR_PARSE, "%s: expected at least one %s, got none", g->path,
                      g->noun_event);
    for (int c = 0; c < g->n_cats; c++) { /* alphabetical rank of each category */
        g->cat_rank[c] = 0;
        for (int h = 0; h < g->n_cats; h++) g->cat_rank[c] += strcmp(g->cat[h], g->cat[c]) < 0;
    }
    return CR_OK;
}
