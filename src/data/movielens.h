/*
 * movielens.h - turns MovieLens ratings into a ranking impression log: one
 * request per rating (the positive plus k sampled "not rated" negatives),
 * every feature computed only from what happened strictly before it.
 * It must never let a row see its own rating or anything later.
 */
#ifndef CR_DATA_MOVIELENS_H
#define CR_DATA_MOVIELENS_H

#include "impressions.h"

/* cr_ml_protocol, cr_ml_history, cr_ml_opts and cr_ml_stats are public
 * (crossrec.h), with cr_ml_opts_default and the protocol and history names
 * and parsers; cr_movielens_prepare is cr_ml_build in a context. */

/* Read o->in_dir, write o->out_path. stats may be NULL. Deterministic for
 * a seed: the same inputs and options give the same bytes. The MovieLens
 * files become an interaction log (cr_ml_log_load) and cr_imp_build writes
 * it, with MovieLens' labels (rating, like, engagement, discovery,
 * genre_return) and column names (movie_id, genres, hist_top_genres,
 * genre_overlap). */
cr_status cr_ml_build(const cr_ml_opts *o, cr_ml_stats *stats, cr_error *e);


/* ---- the files: the one reader of MovieLens' ratings.csv, movies.csv and
 * movies-extra.tsv, for the impressions builder and the item-language model */

/* dir's movies.csv (the catalogue: genres, the title's year, the title as a
 * hidden attribute), movies-extra.tsv (director, mpaa, major_genre,
 * imdb_rating, running_time) and ratings.csv (the events, keys as decimal
 * ids) into g, which the caller frees with cr_imp_log_free (on error
 * nothing needs freeing). *n_extra: rows of movies-extra.tsv. */
cr_status cr_ml_log_load(cr_imp_log *g, const char *dir, int64_t *n_extra, cr_error *e);

/* ratings.csv (userId, movieId, rating in [0, 5], timestamp) in file order;
 * line is each rating's line in the file. */
typedef struct cr_ml_ratings {
    int64_t  n;
    int64_t *user, *movie, *ts, *line;
    double  *rating;
} cr_ml_ratings;

cr_status cr_ml_ratings_read(cr_ml_ratings *r, const char *path, cr_error *e);
void      cr_ml_ratings_free(cr_ml_ratings *r);

/* movies.csv joined with the optional movies-extra.tsv by movieId: every
 * movie once (a repeated movieId, or an extra row for an unknown movie, is
 * an error naming the line). Text fields are "" when unknown. */
typedef struct cr_ml_catalog cr_ml_catalog;
typedef struct cr_ml_item {
    int64_t     id;
    const char *title;        /* "Toy Story (1995)" */
    int32_t     year;         /* from a trailing "(YYYY)"; 0 = none */
    const char *genres;       /* "Adventure|Animation"; "" for "(no genres listed)" */
    const char *director, *mpaa, *major_genre, *imdb_rating, *running_time;
} cr_ml_item;

cr_status cr_ml_catalog_open(cr_ml_catalog **out, const char *dir, cr_error *e);
void      cr_ml_catalog_free(cr_ml_catalog *c);
int32_t   cr_ml_catalog_size(const cr_ml_catalog *c);
/* The movie's index in file order, or -1. */
int32_t   cr_ml_catalog_find(const cr_ml_catalog *c, int64_t movie_id);
void      cr_ml_catalog_item(const cr_ml_catalog *c, int32_t i, cr_ml_item *out);

#endif /* CR_DATA_MOVIELENS_H */
