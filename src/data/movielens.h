/*
 * movielens.h - turns MovieLens ratings into a ranking impression log: one
 * request per rating (the positive plus k sampled "not rated" negatives),
 * every feature computed only from what happened strictly before it.
 * It must never let a row see its own rating or anything later.
 */
#ifndef CR_DATA_MOVIELENS_H
#define CR_DATA_MOVIELENS_H

#include "data.h"

/* How negatives are drawn from the domain's candidate movies. */
typedef enum cr_ml_protocol {
    /* In proportion to each movie's rating count in the training period of
     * the domain. Negatives then look as popular as positives, so "click"
     * has to be predicted from taste, not from popularity. The default. */
    CR_ML_POPULARITY,
    /* Uniformly over the movies rated in the domain's training period. Easy
     * negatives: popularity alone separates them from the positive. */
    CR_ML_UNIFORM,
    /* Drawn in proportion to each movie's rating count in the request's
     * calendar year: the negatives' item mix follows the positives' over
     * time, so a new movie is a negative as often as it is rated that year,
     * in every split alike. */
    CR_ML_PERIOD
} cr_ml_protocol;

/* Which of the user's past ratings feed the user-history features. */
typedef enum cr_ml_history {
    CR_ML_HISTORY_DOMAIN, /* only ratings of movies in the domain (default) */
    CR_ML_HISTORY_ALL     /* every past rating, in any domain */
} cr_ml_history;

typedef struct cr_ml_opts {
    const char    *in_dir;        /* ratings.csv, movies.csv, optional movies-extra.tsv */
    const char    *out_path;      /* the impressions CSV (written atomically) */
    int            negatives;     /* k negatives per request (default 4) */
    cr_ml_protocol protocol;      /* default CR_ML_POPULARITY */
    uint64_t       seed;          /* negatives and keep_fraction (default 1) */
    double         valid_frac;    /* timestamp-quantile split (default 0.1) */
    double         test_frac;     /* (default 0.1) */
    const char    *include_genre; /* domain: movies with this genre (NULL = any) */
    const char    *exclude_genre; /* domain: movies without this genre (NULL = none) */
    cr_ml_history  history;       /* default CR_ML_HISTORY_DOMAIN */
    double         keep_fraction; /* share of training requests kept (default 1) */
    /* Strict domains: the exclude_genre's movies vanish from the input, so
     * no row, history, feature or candidate of the build reads them (with
     * history ALL too). The source of a zero-shot study: its teacher never
     * sees a target item. Needs exclude_genre. */
    int            strict;
    /* genre_return's horizon: the user rates another movie of the domain
     * sharing a genre within this many days after the rating (default 30). */
    int            return_days;
} cr_ml_opts;

/* What a build wrote. Rates are over requests (that is, over positives). */
typedef struct cr_ml_stats {
    int64_t ratings;            /* rows of ratings.csv */
    int64_t movies;             /* rows of movies.csv */
    int64_t extra_movies;       /* rows of movies-extra.tsv (0 if absent) */
    int64_t domain_ratings;     /* ratings of movies in the domain */
    int64_t requests, rows;     /* written */
    int64_t requests_split[3];  /* by CR_SPLIT_TRAIN / VALID / TEST */
    int64_t rows_split[3];
    int64_t dropped;            /* training requests removed by keep_fraction */
    int64_t users;              /* distinct users with at least one request */
    int64_t items;              /* distinct movies among the positives */
    int64_t pool;               /* candidate movies for negatives */
    int64_t t_valid, t_test;    /* first timestamp of valid and of test */
    double  like_rate;          /* share of positives with rating >= 4 */
    double  mean_engagement;    /* mean rating / 5 of positives */
    double  discovery_rate;     /* share of positives with a genre new to the user */
    double  return_rate;        /* share of genre_return = 1 where it is defined */
    int64_t return_undefined;   /* positives whose genre_return is empty (censored, no genre) */
    int64_t hidden_ratings;     /* ratings that strict removed from the input */
    double  new_release_rate;   /* share of positives that are new releases */
} cr_ml_stats;

void cr_ml_opts_default(cr_ml_opts *o);
/* Read o->in_dir, write o->out_path. stats may be NULL. Deterministic for
 * a seed: the same inputs and options give the same bytes. */
cr_status cr_ml_build(const cr_ml_opts *o, cr_ml_stats *stats, cr_error *e);

/* Names for the options, as the CLI and docs spell them. */
const char *cr_ml_protocol_name(cr_ml_protocol p);
const char *cr_ml_history_name(cr_ml_history h);
/* Parse "popularity"/"uniform" and "all"/"domain"; CR_ERR_ARG otherwise. */
cr_status cr_ml_protocol_parse(const char *s, cr_ml_protocol *out, cr_error *e);
cr_status cr_ml_history_parse(const char *s, cr_ml_history *out, cr_error *e);

/* ---- the files: the one reader of MovieLens' ratings.csv, movies.csv and
 * movies-extra.tsv, for the impressions builder and the item-language model */

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
