/*
 * movielens_internal.h - what the MovieLens reader and the impression
 * builder share: the loaded ratings, movies and users, and running state.
 * Private to src/data/movielens*.c; never include it anywhere else.
 */
#ifndef CR_DATA_MOVIELENS_INTERNAL_H
#define CR_DATA_MOVIELENS_INTERNAL_H

#include "movielens.h"

#define CR_ML_MAX_GENRES 64 /* a genre set is one uint64_t bit mask */
#define CR_ML_LAST 5        /* last_items length */
#define CR_ML_UNDEFINED 2   /* a label left empty */

/* All text (genre strings, director names...) lives in one arena and is
 * referred to by offset, because the arena moves when it grows. Offset 0
 * is the empty string. */
typedef struct cr_ml_arena {
    char  *buf;
    size_t len, cap;
} cr_ml_arena;

/* Open-addressing map from an external id (userId, movieId) to a dense
 * index; capacity stays a power of two at most half full. */
typedef struct cr_ml_map {
    int64_t *keys;
    int32_t *vals; /* -1 = empty slot */
    size_t   cap, n;
} cr_ml_map;

static inline uint64_t cr_ml_hash(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct cr_ml_movie {
    int64_t  id;
    int32_t  year;        /* 0 = no year in the title */
    int      in_domain;
    int      hidden;      /* strict: of the excluded genre, never read at all */
    uint64_t genres;      /* bit per genre id */
    size_t   title;       /* arena offsets; 0 = empty */
    size_t   genres_text;
    size_t   director, mpaa, major, imdb, runtime;
    int64_t  pop;         /* ratings so far in the global order */
    double   sum;         /* their rating sum */
    int64_t  train_count; /* ratings before the valid cut-off */
    int      positive;    /* seen as a positive (stats) */
} cr_ml_movie;

typedef struct cr_ml_user {
    int64_t id;
    int64_t count;          /* past ratings in the history scope */
    double  sum;
    int64_t first_ts;
    int32_t last[CR_ML_LAST]; /* ring of movie indices */
    int     last_pos;
    uint64_t genres;        /* genres ever rated in the scope */
    int     requested;      /* has a request (stats) */
} cr_ml_user;

typedef struct cr_ml_event {
    int64_t ts;
    int32_t idx; /* row in ratings.csv order: the tie-break */
} cr_ml_event;

typedef struct cr_ml_ctx {
    const cr_ml_opts *o;
    char          path_ratings[4096], path_movies[4096], path_extra[4096];
    cr_ml_arena   text;
    int           n_genres;
    char          genre[CR_ML_MAX_GENRES][64];
    int           genre_rank[CR_ML_MAX_GENRES]; /* alphabetical rank: tie-break for top genres */
    cr_ml_map     movie_map, user_map;
    cr_ml_movie  *movies;
    size_t        n_movies, cap_movies;
    cr_ml_user   *users;
    size_t        n_users, cap_users;
    int32_t      *gcount; /* (n_users, CR_ML_MAX_GENRES) past ratings per genre */
    /* ratings in file order */
    int32_t      *r_user, *r_movie;
    double       *r_rating;
    int64_t      *r_ts, *r_line;
    uint8_t      *r_return; /* (n_ratings) genre_return: 0, 1, CR_ML_UNDEFINED */
    size_t        n_ratings, cap_ratings;
    cr_ml_event  *order;  /* (n_ratings) by (timestamp, file order) */
    int64_t      *rated_off; /* (n_users + 1) CSR of the movies each user rated */
    int32_t      *rated;
    /* Candidate movies for negatives: pool 0 is the training period's; with
     * the period protocol pools 1.. are one per calendar year (UTC) of the
     * domain's ratings, year first_year + (i - 1). */
    int           n_pools, first_year;
    int32_t     **pool;     /* (n_pools) */
    int64_t     **cum;      /* (n_pools) (n_pool[i]) cumulative sampling weight */
    size_t       *n_pool;   /* (n_pools) */
    int32_t      *fb_movie; /* (n_pool) fallback scratch */
    int64_t      *fb_cum;
} cr_ml_ctx;
/* Read movies.csv, the optional movies-extra.tsv and ratings.csv from
 * x->o->in_dir into x (x zeroed, x->o set), and fill the file counts of st. */
cr_status cr_ml_load(cr_ml_ctx *x, cr_ml_stats *st, cr_error *e);
void      cr_ml_ctx_free(cr_ml_ctx *x);

#endif /* CR_DATA_MOVIELENS_INTERNAL_H */
