/*
 * movielens_read.c - the one reader of MovieLens' ratings.csv, movies.csv
 * and the optional movies-extra.tsv: through the CSV reader into dense
 * arrays, for the impressions builder (cr_ml_load) and, as ratings and a
 * catalogue, for the item-language model. It only reads and checks; it
 * never computes a feature or writes a row.
 */
#include "movielens_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- small containers -------------------------------------------------- */

static cr_status cr_ml_arena_add(cr_ml_arena *a, const char *s, size_t n, size_t *off,
                                 cr_error *e) {
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

static int32_t cr_ml_map_get(const cr_ml_map *m, int64_t key) {
    if (m->cap == 0) return -1;
    size_t mask = m->cap - 1, i = (size_t)cr_ml_hash((uint64_t)key) & mask;
    while (m->vals[i] >= 0) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}

static cr_status cr_ml_map_put(cr_ml_map *m, int64_t key, int32_t val, cr_error *e) {
    if (2 * (m->n + 1) > m->cap) {
        size_t ncap = m->cap ? 2 * m->cap : 1024;
        int64_t *nk = cr_alloc(ncap * sizeof *nk);
        int32_t *nv = cr_alloc(ncap * sizeof *nv);
        if (!nk || !nv) {
            cr_free(nk);
            cr_free(nv);
            return cr_err(e, CR_ERR_NOMEM, "out of memory growing an id map to %zu slots", ncap);
        }
        for (size_t i = 0; i < ncap; i++) nv[i] = -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->vals[i] < 0) continue;
            size_t j = (size_t)cr_ml_hash((uint64_t)m->keys[i]) & (ncap - 1);
            while (nv[j] >= 0) j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        cr_free(m->keys);
        cr_free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t mask = m->cap - 1, i = (size_t)cr_ml_hash((uint64_t)key) & mask;
    while (m->vals[i] >= 0) {
        CR_ASSERT(m->keys[i] != key); /* callers look up first */
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return CR_OK;
}

static void cr_ml_map_free(cr_ml_map *m) {
    cr_free(m->keys);
    cr_free(m->vals);
    memset(m, 0, sizeof *m);
}
/* ---- reading ------------------------------------------------------------- */

static cr_status cr_ml_col(cr_csv *c, const char *name, int *out, cr_error *e) {
    *out = cr_csv_find(c, name);
    if (*out >= 0) return CR_OK;
    return cr_err(e, CR_ERR_NOT_FOUND, "%s:1: expected a column '%s' in the header",
                  cr_csv_path(c), name);
}

/* "Toy Story (1995)" -> 1995; 0 when the title does not end in "(dddd)". */
static int32_t cr_ml_title_year(const char *t, size_t n) {
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r')) n--;
    if (n < 6 || t[n - 1] != ')' || t[n - 6] != '(') return 0;
    int32_t y = 0;
    for (size_t i = n - 5; i < n - 1; i++) {
        if (t[i] < '0' || t[i] > '9') return 0;
        y = y * 10 + (t[i] - '0');
    }
    return y;
}

static cr_status cr_ml_genre_id(cr_ml_ctx *x, const char *g, size_t n, cr_csv *c, int *id,
                                cr_error *e) {
    for (int i = 0; i < x->n_genres; i++)
        if (strlen(x->genre[i]) == n && !memcmp(x->genre[i], g, n)) {
            *id = i;
            return CR_OK;
        }
    if (n >= sizeof x->genre[0])
        return cr_err(e, CR_ERR_LIMIT, "%s:%lld: genre '%.*s...' is longer than %zu bytes",
                      cr_csv_path(c), (long long)cr_csv_line(c), 20, g, sizeof x->genre[0] - 1);
    if (x->n_genres == CR_ML_MAX_GENRES)
        return cr_err(e, CR_ERR_LIMIT, "%s:%lld: more than %d distinct genres", cr_csv_path(c),
                      (long long)cr_csv_line(c), CR_ML_MAX_GENRES);
    memcpy(x->genre[x->n_genres], g, n);
    x->genre[x->n_genres][n] = '\0';
    *id = x->n_genres++;
    return CR_OK;
}

static cr_status cr_ml_read_movies(cr_ml_ctx *x, cr_error *e) {
    cr_csv *c = NULL;
    cr_status s = cr_csv_open(&c, x->path_movies, ',', e);
    if (s != CR_OK) return s;
    int c_id, c_title, c_genres;
    if ((s = cr_ml_col(c, "movieId", &c_id, e)) != CR_OK ||
        (s = cr_ml_col(c, "title", &c_title, e)) != CR_OK ||
        (s = cr_ml_col(c, "genres", &c_genres, e)) != CR_OK)
        goto fail;
    for (;;) {
        int done;
        if ((s = cr_csv_next(c, &done, e)) != CR_OK) goto fail;
        if (done) break;
        int64_t id;
        if ((s = cr_csv_int64(c, c_id, &id, e)) != CR_OK) goto fail;
        if (cr_ml_map_get(&x->movie_map, id) >= 0) {
            s = cr_err(e, CR_ERR_PARSE, "%s:%lld: movieId %lld appears twice", x->path_movies,
                       (long long)cr_csv_line(c), (long long)id);
            goto fail;
        }
        if ((s = cr_grow((void **)&x->movies, &x->cap_movies, x->n_movies + 1,
                         sizeof *x->movies, e)) != CR_OK)
            goto fail;
        cr_ml_movie *m = &x->movies[x->n_movies];
        memset(m, 0, sizeof *m);
        m->id = id;
        size_t tl, gl;
        const char *title = cr_csv_field(c, c_title, &tl);
        const char *g = cr_csv_field(c, c_genres, &gl);
        m->year = cr_ml_title_year(title, tl);
        /* MovieLens writes "(no genres listed)" for an empty set. */
        if (!strcmp(g, "(no genres listed)")) gl = 0;
        for (size_t a = 0; a < gl;) {
            size_t b = a;
            while (b < gl && g[b] != '|') b++;
            if (b > a) {
                int gid = 0;
                if ((s = cr_ml_genre_id(x, g + a, b - a, c, &gid, e)) != CR_OK) goto fail;
                m->genres |= 1ull << gid;
            }
            a = b + 1;
        }
        if ((s = cr_ml_arena_add(&x->text, g, gl, &m->genres_text, e)) != CR_OK ||
            (s = cr_ml_arena_add(&x->text, title, tl, &m->title, e)) != CR_OK)
            goto fail;
        if ((s = cr_ml_map_put(&x->movie_map, id, (int32_t)x->n_movies, e)) != CR_OK) goto fail;
        x->n_movies++;
        if (x->n_movies >= INT32_MAX) {
            s = cr_err(e, CR_ERR_LIMIT, "%s: more than %d movies", x->path_movies, INT32_MAX - 1);
            goto fail;
        }
    }
    if (x->n_movies == 0) {
        s = cr_err(e, CR_ERR_PARSE, "%s: expected at least one movie, got none", x->path_movies);
        goto fail;
    }
    cr_csv_close(c);
    return CR_OK;
fail:
    cr_csv_close(c);
    return s;
}

/* movies-extra.tsv: optional metadata joined by movieId; each column but
 * movieId is optional too. Numbers are checked, then written as they were. */
static cr_status cr_ml_read_extra(cr_ml_ctx *x, int64_t *n_rows, cr_error *e) {
    *n_rows = 0;
    if (!cr_file_exists(x->path_extra)) return CR_OK;
    cr_csv *c = NULL;
    cr_status s = cr_csv_open(&c, x->path_extra, '\t', e);
    if (s != CR_OK) return s;
    int c_id, col[5];
    static const char *const names[5] = {"director", "mpaa_rating", "major_genre",
                                         "imdb_rating", "running_time_min"};
    if ((s = cr_ml_col(c, "movieId", &c_id, e)) != CR_OK) goto fail;
    for (int k = 0; k < 5; k++) col[k] = cr_csv_find(c, names[k]); /* each optional: "" */
    for (;;) {
        int done;
        if ((s = cr_csv_next(c, &done, e)) != CR_OK) goto fail;
        if (done) break;
        int64_t id;
        if ((s = cr_csv_int64(c, c_id, &id, e)) != CR_OK) goto fail;
        int32_t mi = cr_ml_map_get(&x->movie_map, id);
        if (mi < 0) {
            s = cr_err(e, CR_ERR_MISMATCH, "%s:%lld: movieId %lld is not in %s", x->path_extra,
                       (long long)cr_csv_line(c), (long long)id, x->path_movies);
            goto fail;
        }
        for (int k = 3; k < 5; k++) { /* imdb_rating, running_time_min must be numbers */
            double v;
            int missing;
            if (col[k] >= 0 && (s = cr_csv_double(c, col[k], &v, &missing, e)) != CR_OK) goto fail;
        }
        size_t off[5];
        for (int k = 0; k < 5; k++) {
            size_t len = 0;
            const char *f = col[k] >= 0 ? cr_csv_field(c, col[k], &len) : "";
            if ((s = cr_ml_arena_add(&x->text, f, len, &off[k], e)) != CR_OK) goto fail;
        }
        cr_ml_movie *m = &x->movies[mi];
        m->director = off[0];
        m->mpaa = off[1];
        m->major = off[2];
        m->imdb = off[3];
        m->runtime = off[4];
        (*n_rows)++;
    }
    cr_csv_close(c);
    return CR_OK;
fail:
    cr_csv_close(c);
    return s;
}

void cr_ml_ratings_free(cr_ml_ratings *r) {
    free(r->user);
    free(r->movie);
    free(r->ts);
    free(r->line);
    free(r->rating);
    memset(r, 0, sizeof *r);
}

cr_status cr_ml_ratings_read(cr_ml_ratings *r, const char *path, cr_error *e) {
    memset(r, 0, sizeof *r);
    cr_csv *c = NULL;
    cr_status s = cr_csv_open(&c, path, 0, e);
    if (s != CR_OK) return s;
    static const char *const names[4] = {"userId", "movieId", "rating", "timestamp"};
    int col[4];
    for (int k = 0; k < 4; k++)
        if ((col[k] = cr_csv_find(c, names[k])) < 0) {
            s = cr_err(e, CR_ERR_NOT_FOUND, "%s:1: expected a column '%s' in the header (the "
                       "columns are userId, movieId, rating, timestamp)", path, names[k]);
            goto fail;
        }
    size_t cap = 0;
    for (;;) {
        int done;
        if ((s = cr_csv_next(c, &done, e)) != CR_OK) goto fail;
        if (done) break;
        size_t i = (size_t)r->n;
        if (i + 1 > cap) { /* five parallel arrays grow in step */
            size_t c1 = cap, c2 = cap, c3 = cap, c4 = cap, c5 = cap;
            if ((s = cr_grow((void **)&r->user, &c1, i + 1, sizeof(int64_t), e)) != CR_OK ||
                (s = cr_grow((void **)&r->movie, &c2, i + 1, sizeof(int64_t), e)) != CR_OK ||
                (s = cr_grow((void **)&r->rating, &c3, i + 1, sizeof(double), e)) != CR_OK ||
                (s = cr_grow((void **)&r->ts, &c4, i + 1, sizeof(int64_t), e)) != CR_OK ||
                (s = cr_grow((void **)&r->line, &c5, i + 1, sizeof(int64_t), e)) != CR_OK)
                goto fail;
            CR_ASSERT(c1 == c2 && c1 == c3 && c1 == c4 && c1 == c5);
            cap = c1;
        }
        if ((s = cr_csv_int64(c, col[0], &r->user[i], e)) != CR_OK ||
            (s = cr_csv_int64(c, col[1], &r->movie[i], e)) != CR_OK ||
            (s = cr_csv_double(c, col[2], &r->rating[i], NULL, e)) != CR_OK ||
            (s = cr_csv_int64(c, col[3], &r->ts[i], e)) != CR_OK)
            goto fail;
        r->line[i] = (int64_t)cr_csv_line(c);
        if (!(r->rating[i] >= 0.0 && r->rating[i] <= 5.0)) {
            s = cr_err(e, CR_ERR_PARSE,
                       "%s:%lld: expected a rating from 0 to 5 in column 'rating', got '%s'", path,
                       (long long)r->line[i], cr_csv_field(c, col[2], NULL));
            goto fail;
        }
        if (++r->n >= INT32_MAX) {
            s = cr_err(e, CR_ERR_LIMIT, "%s: more than %d ratings", path, INT32_MAX - 1);
            goto fail;
        }
    }
    if (r->n == 0) {
        s = cr_err(e, CR_ERR_PARSE, "%s: expected at least one rating, got none", path);
        goto fail;
    }
    cr_csv_close(c);
    return CR_OK;
fail:
    cr_csv_close(c);
    cr_ml_ratings_free(r);
    return s;
}

/* The ratings into the builder's dense users and movies. */
static cr_status cr_ml_read_ratings(cr_ml_ctx *x, cr_error *e) {
    cr_ml_ratings r;
    CR_TRY(cr_ml_ratings_read(&r, x->path_ratings, e));
    cr_status s = CR_OK;
    size_t n = (size_t)r.n;
    x->r_user = malloc(n * sizeof *x->r_user);
    x->r_movie = malloc(n * sizeof *x->r_movie);
    x->cap_ratings = n;
    if (!x->r_user || !x->r_movie) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory for %zu ratings", x->path_ratings, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t mi = cr_ml_map_get(&x->movie_map, r.movie[i]);
        if (mi < 0) {
            s = cr_err(e, CR_ERR_MISMATCH, "%s:%lld: movieId %lld is not in %s", x->path_ratings,
                       (long long)r.line[i], (long long)r.movie[i], x->path_movies);
            goto done;
        }
        int32_t ui = cr_ml_map_get(&x->user_map, r.user[i]);
        if (ui < 0) {
            if ((s = cr_grow((void **)&x->users, &x->cap_users, x->n_users + 1,
                             sizeof *x->users, e)) != CR_OK)
                goto done;
            ui = (int32_t)x->n_users++;
            memset(&x->users[ui], 0, sizeof x->users[ui]);
            x->users[ui].id = r.user[i];
            if ((s = cr_ml_map_put(&x->user_map, r.user[i], ui, e)) != CR_OK) goto done;
        }
        x->r_user[i] = ui;
        x->r_movie[i] = mi;
    }
    /* the rest is the reader's, as it read it */
    x->r_rating = r.rating, r.rating = NULL;
    x->r_ts = r.ts, r.ts = NULL;
    x->r_line = r.line, r.line = NULL;
    x->n_ratings = n;
done:
    cr_ml_ratings_free(&r);
    return s;
}

void cr_ml_ctx_free(cr_ml_ctx *x) {
    free(x->text.buf);
    cr_ml_map_free(&x->movie_map);
    cr_ml_map_free(&x->user_map);
    free(x->movies);
    free(x->users);
    free(x->r_user);
    free(x->r_movie);
    free(x->r_rating);
    free(x->r_ts);
    free(x->r_line);
    cr_free(x->gcount);
    cr_free(x->r_return);
    cr_free(x->order);
    cr_free(x->rated_off);
    cr_free(x->rated);
    for (int s = 0; s < x->n_pools; s++) {
        cr_free(x->pool[s]);
        cr_free(x->cum[s]);
    }
    free(x->pool);
    free(x->cum);
    free(x->n_pool);
    cr_free(x->fb_movie);
    cr_free(x->fb_cum);
}
static cr_status cr_ml_paths(cr_ml_ctx *x, cr_error *e) {
    const char *d = x->o->in_dir;
    if ((size_t)snprintf(x->path_ratings, sizeof x->path_ratings, "%s/ratings.csv", d) >=
            sizeof x->path_ratings ||
        (size_t)snprintf(x->path_movies, sizeof x->path_movies, "%s/movies.csv", d) >=
            sizeof x->path_movies ||
        (size_t)snprintf(x->path_extra, sizeof x->path_extra, "%s/movies-extra.tsv", d) >=
            sizeof x->path_extra)
        return cr_err(e, CR_ERR_ARG, "in_dir: expected a path shorter than %zu bytes, got %zu",
                      sizeof x->path_ratings - 20, strlen(d));
    return CR_OK;
}
/* ---- the catalogue on its own (the item-language model's view) ---------------------- */

struct cr_ml_catalog {
    cr_ml_opts o;
    cr_ml_ctx  x;
};

cr_status cr_ml_catalog_open(cr_ml_catalog **out, const char *dir, cr_error *e) {
    *out = NULL;
    cr_ml_catalog *c = calloc(1, sizeof *c);
    if (!c) return cr_err(e, CR_ERR_NOMEM, "out of memory reading %s", dir);
    cr_ml_opts_default(&c->o);
    c->o.in_dir = dir;
    c->x.o = &c->o;
    size_t empty;
    int64_t n_extra;
    cr_status s = cr_ml_paths(&c->x, e);
    if (!s) s = cr_ml_arena_add(&c->x.text, "", 0, &empty, e);
    if (!s) s = cr_ml_read_movies(&c->x, e);
    if (!s) s = cr_ml_read_extra(&c->x, &n_extra, e);
    if (s) {
        cr_ml_catalog_free(c);
        return s;
    }
    *out = c;
    return CR_OK;
}

void cr_ml_catalog_free(cr_ml_catalog *c) {
    if (!c) return;
    cr_ml_ctx_free(&c->x);
    free(c);
}

int32_t cr_ml_catalog_size(const cr_ml_catalog *c) { return (int32_t)c->x.n_movies; }

int32_t cr_ml_catalog_find(const cr_ml_catalog *c, int64_t movie_id) {
    return cr_ml_map_get(&c->x.movie_map, movie_id);
}

void cr_ml_catalog_item(const cr_ml_catalog *c, int32_t i, cr_ml_item *out) {
    const cr_ml_movie *m = &c->x.movies[i];
    const char *t = c->x.text.buf;
    *out = (cr_ml_item){m->id, t + m->title, m->year, t + m->genres_text, t + m->director,
                        t + m->mpaa, t + m->major, t + m->imdb, t + m->runtime};
}

cr_status cr_ml_load(cr_ml_ctx *x, cr_ml_stats *st, cr_error *e) {
    size_t empty;
    CR_TRY(cr_ml_paths(x, e));
    CR_TRY(cr_ml_arena_add(&x->text, "", 0, &empty, e));
    CR_ASSERT(empty == 0); /* offset 0 is "" for every text field left unset */
    CR_TRY(cr_ml_read_movies(x, e));
    CR_TRY(cr_ml_read_extra(x, &st->extra_movies, e));
    CR_TRY(cr_ml_read_ratings(x, e));
    st->movies = (int64_t)x->n_movies;
    st->ratings = (int64_t)x->n_ratings;
    for (int g = 0; g < x->n_genres; g++) { /* alphabetical rank of each genre */
        x->genre_rank[g] = 0;
        for (int h = 0; h < x->n_genres; h++)
            x->genre_rank[g] += strcmp(x->genre[h], x->genre[g]) < 0;
    }
    return CR_OK;
}
