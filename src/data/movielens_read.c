/*
 * movielens_read.c - the one reader of MovieLens' ratings.csv, movies.csv
 * and the optional movies-extra.tsv: through the CSV reader into the
 * interaction log the impressions builder reads (cr_ml_log_load) and,
 * as ratings and a catalogue, for the item-language model. It only reads
 * and checks; it never computes a feature or writes a row.
 */
#include "movielens.h"

#include <stdlib.h>
#include <string.h>

/* ---- reading ------------------------------------------------------------- */

static cr_status cr_ml_col(cr_csv *c, const char *name, int *out, cr_error *e) {
    *out = cr_csv_find(c, name);
    if (*out >= 0) return CR_OK;
    return cr_err(e, CR_ERR_NOT_FOUND, "%s:1: expected a column '%s' in the header",
                  cr_csv_path(c), name);
}

/* A movieId as the log's key: its canonical decimal text. */
static size_t cr_ml_key(char *buf, size_t cap, int64_t id) {
    return (size_t)snprintf(buf, cap, "%lld", (long long)id);
}

/* The item attributes of a MovieLens log, in this order: the title (read
 * by the item-language model, never written), then the columns of
 * movies-extra.tsv as the impressions name them. */
enum { CR_ML_TITLE, CR_ML_DIRECTOR, CR_ML_MPAA, CR_ML_MAJOR, CR_ML_IMDB, CR_ML_RUNTIME, CR_ML_NATTR };
static const char *const cr_ml_attr_out[CR_ML_NATTR] = {"title", "director", "mpaa",
                                                        "major_genre", "imdb_rating",
                                                        "running_time"};

static cr_status cr_ml_read_movies(cr_imp_log *g, const char *path, cr_error *e) {
    cr_csv *c = NULL;
    cr_status s = cr_csv_open(&c, path, ',', e);
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
        char key[24], where[4200];
        int32_t mi;
        if ((s = cr_imp_item_add(g, key, cr_ml_key(key, sizeof key, id), &mi, e)) != CR_OK) goto fail;
        if (mi < 0) {
            s = cr_err(e, CR_ERR_PARSE, "%s:%lld: movieId %lld appears twice", path,
                       (long long)cr_csv_line(c), (long long)id);
            goto fail;
        }
        size_t tl, gl;
        const char *title = cr_csv_field(c, c_title, &tl);
        const char *genres = cr_csv_field(c, c_genres, &gl);
        g->items[mi].year = cr_imp_title_year(title, tl);
        snprintf(where, sizeof where, "%s:%lld", path, (long long)cr_csv_line(c));
        /* MovieLens writes "(no genres listed)" for an empty set. */
        if ((s = cr_imp_item_cats(g, mi, genres, gl, '|', "(no genres listed)", where, e)) != CR_OK ||
            (s = cr_imp_text(g, title, tl, &g->items[mi].attr[CR_ML_TITLE], e)) != CR_OK)
            goto fail;
    }
    if (g->n_items == 0) {
        s = cr_err(e, CR_ERR_PARSE, "%s: expected at least one movie, got none", path);
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
static cr_status cr_ml_read_extra(cr_imp_log *g, const char *path, const char *movies,
                                  int64_t *n_rows, cr_error *e) {
    *n_rows = 0;
    if (!cr_file_exists(path)) return CR_OK;
    cr_csv *c = NULL;
    cr_status s = cr_csv_open(&c, path, '\t', e);
    if (s != CR_OK) return s;
    int c_id, col[CR_ML_NATTR];
    static const char *const names[CR_ML_NATTR] = {"", "director", "mpaa_rating", "major_genre",
                                                   "imdb_rating", "running_time_min"};
    if ((s = cr_ml_col(c, "movieId", &c_id, e)) != CR_OK) goto fail;
    for (int k = CR_ML_DIRECTOR; k < CR_ML_NATTR; k++) col[k] = cr_csv_find(c, names[k]);
    for (;;) {
        int done;
        if ((s = cr_csv_next(c, &done, e)) != CR_OK) goto fail;
        if (done) break;
        int64_t id;
        if ((s = cr_csv_int64(c, c_id, &id, e)) != CR_OK) goto fail;
        char key[24];
        int32_t mi = cr_imp_item_find(g, key, cr_ml_key(key, sizeof key, id));
        if (mi < 0) {
            s = cr_err(e, CR_ERR_MISMATCH, "%s:%lld: movieId %lld is not in %s", path,
                       (long long)cr_csv_line(c), (long long)id, movies);
            goto fail;
        }
        for (int k = CR_ML_IMDB; k <= CR_ML_RUNTIME; k++) { /* must be numbers */
            double v;
            int missing;
            if (col[k] >= 0 && (s = cr_csv_double(c, col[k], &v, &missing, e)) != CR_OK) goto fail;
        }
        for (int k = CR_ML_DIRECTOR; k < CR_ML_NATTR; k++) {
            size_t len = 0;
            const char *f = col[k] >= 0 ? cr_csv_field(c, col[k], &len) : "";
            if ((s = cr_imp_text(g, f, len, &g->items[mi].attr[k], e)) != CR_OK) goto fail;
        }
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

/* The ratings as the log's events: users by first appearance. */
static cr_status cr_ml_read_ratings(cr_imp_log *g, const char *path, const char *movies,
                                    cr_error *e) {
    cr_ml_ratings r;
    CR_TRY(cr_ml_ratings_read(&r, path, e));
    cr_status s = CR_OK;
    for (int64_t i = 0; i < r.n && !s; i++) {
        char key[24];
        int32_t mi = cr_imp_item_find(g, key, cr_ml_key(key, sizeof key, r.movie[i])), ui;
        if (mi < 0)
            s = cr_err(e, CR_ERR_MISMATCH, "%s:%lld: movieId %lld is not in %s", path,
                       (long long)r.line[i], (long long)r.movie[i], movies);
        else if ((s = cr_imp_user_get(g, key, cr_ml_key(key, sizeof key, r.user[i]), &ui, e)) == CR_OK)
            s = cr_imp_event_add(g, ui, mi, r.ts[i], r.rating[i], r.line[i], NULL, e);
    }
    cr_ml_ratings_free(&r);
    return s;
}

static cr_status cr_ml_path(char *out, size_t cap, const char *dir, const char *file,
                            cr_error *e) {
    if ((size_t)snprintf(out, cap, "%s/%s", dir, file) < cap) return CR_OK;
    return cr_err(e, CR_ERR_ARG, "in_dir: expected a path shorter than %zu bytes, got %zu",
                  cap - 20, strlen(dir));
}

/* movies.csv and the optional movies-extra.tsv into g's catalogue. */
static cr_status cr_ml_read_catalog(cr_imp_log *g, const char *dir, int64_t *n_extra,
                                    cr_error *e) {
    char extra[4096];
    CR_TRY(cr_imp_log_init(g, e));
    g->noun_event = "rating";
    g->noun_item = "movie";
    g->noun_cat = "genre";
    g->n_item_attrs = CR_ML_NATTR;
    for (int k = 0; k < CR_ML_NATTR; k++)
        snprintf(g->item_attr[k], sizeof g->item_attr[k], "%s", cr_ml_attr_out[k]);
    g->item_attr_hidden[CR_ML_TITLE] = 1;
    CR_TRY(cr_ml_path(g->items_path, sizeof g->items_path, dir, "movies.csv", e));
    CR_TRY(cr_ml_path(extra, sizeof extra, dir, "movies-extra.tsv", e));
    CR_TRY(cr_ml_read_movies(g, g->items_path, e));
    return cr_ml_read_extra(g, extra, g->items_path, n_extra, e);
}

cr_status cr_ml_log_load(cr_imp_log *g, const char *dir, int64_t *n_extra, cr_error *e) {
    cr_status s = cr_ml_read_catalog(g, dir, n_extra, e);
    if (!s) s = cr_ml_path(g->path, sizeof g->path, dir, "ratings.csv", e);
    if (!s) s = cr_ml_read_ratings(g, g->path, g->items_path, e);
    if (!s) s = cr_imp_log_finish(g, e);
    if (s) cr_imp_log_free(g);
    return s;
}

/* ---- the catalogue on its own (the item-language model's view) ---------------------- */

struct cr_ml_catalog {
    cr_imp_log g;
};

cr_status cr_ml_catalog_open(cr_ml_catalog **out, const char *dir, cr_error *e) {
    *out = NULL;
    cr_ml_catalog *c = calloc(1, sizeof *c);
    if (!c) return cr_err(e, CR_ERR_NOMEM, "out of memory reading %s", dir);
    int64_t n_extra;
    cr_status s = cr_ml_read_catalog(&c->g, dir, &n_extra, e);
    if (s) {
        cr_ml_catalog_free(c);
        return s;
    }
    *out = c;
    return CR_OK;
}

void cr_ml_catalog_free(cr_ml_catalog *c) {
    if (!c) return;
    cr_imp_log_free(&c->g);
    free(c);
}

int32_t cr_ml_catalog_size(const cr_ml_catalog *c) { return (int32_t)c->g.n_items; }

int32_t cr_ml_catalog_find(const cr_ml_catalog *c, int64_t movie_id) {
    char key[24];
    return cr_imp_item_find(&c->g, key, cr_ml_key(key, sizeof key, movie_id));
}

void cr_ml_catalog_item(const cr_ml_catalog *c, int32_t i, cr_ml_item *out) {
    const cr_imp_log *g = &c->g;
    const cr_imp_item *m = &g->items[i];
    *out = (cr_ml_item){strtoll(cr_imp_str(g, m->key), NULL, 10), cr_imp_str(g, m->attr[CR_ML_TITLE]),
                        m->year, cr_imp_str(g, m->cats_text), cr_imp_str(g, m->attr[CR_ML_DIRECTOR]),
                        cr_imp_str(g, m->attr[CR_ML_MPAA]), cr_imp_str(g, m->attr[CR_ML_MAJOR]),
                        cr_imp_str(g, m->attr[CR_ML_IMDB]), cr_imp_str(g, m->attr[CR_ML_RUNTIME])};
}
