/*
 * crossrec/data.h - part of the public API (include <crossrec.h>, which
 * includes every part in order): data and the optimizer: files, synthetic domains, MovieLens, the one optimizer configuration.
 */
#ifndef CROSSREC_DATA_H
#define CROSSREC_DATA_H

#ifndef CROSSREC_H
#error "include <crossrec.h>, not its parts"
#endif

/* ---- data: files, synthetic domains, MovieLens --------------------------------------- */

/* The metadata and tensor table of a safetensors file as JSON (*json, free
 * with cr_free): {"path", "metadata": {key: value, in file order},
 * "tensors": [{"name", "dtype", "shape": [..], "numel", "bytes"}]}. Every
 * offset is checked against the file first; nothing is loaded. Thread-safe. */
CR_API cr_status cr_inspect(const char *path, char **json, cr_error *e);

/* A synthetic source and target domain with known structure
 * (docs/experiment.md): every key of a synth YAML; start from
 * cr_synth_defaults or cr_synth_cfg_load, then change fields. */
typedef struct cr_synth_domain {
    char    name[32];        /* file stem: <name>.csv */
    int64_t requests;        /* requests in the whole period */
    int     items;           /* catalogue size */
    int     candidates;      /* impressions per request */
    double  click_bias;      /* intercept of the click logit */
    double  specific;        /* weight of the domain's own taste component (0 = none) */
    double  catalogue;       /* share of items already released on day 0 */
} cr_synth_domain;

typedef struct cr_synth_cfg {
    uint64_t seed;
    int      users;
    int      dim;               /* taste dimensions */
    int      genres;
    double   days;              /* length of the logged period */
    double   valid, test;       /* latest shares of requests, by time */
    double   label_noise;       /* std of the Gaussian noise on every logit */
    double   popularity_skew;   /* Zipf exponent of item exposure */
    double   new_release_days;  /* an item younger than this is a new release */
    double   new_release_boost; /* exposure multiplier of new releases */
    double   item_overlap;      /* share of target items that are source items */
    int      user_signals;      /* source-only user features (noisy views of the taste) */
    cr_synth_domain source, target;
} cr_synth_cfg;

/* What cr_synth wrote; [0] the source domain, [1] the target. */
typedef struct cr_synth_stats {
    int64_t requests[2], rows[2];
    int64_t split_rows[2][3];              /* train, valid, test */
    int64_t clicks[2];
    int64_t new_release_rows[2];
    int64_t shared_items;                  /* target items that are source items */
    double  seconds;
} cr_synth_stats;

CR_API void      cr_synth_defaults(cr_synth_cfg *c);
/* A synth YAML into *c: the defaults, then the file's keys over them;
 * unknown keys and bad values are CR_ERR_CONFIG naming the file, line and key. */
CR_API cr_status cr_synth_cfg_load(cr_synth_cfg *c, const char *path, cr_error *e);
/* Write out_dir/<source>.csv and out_dir/<target>.csv (directories created,
 * each file atomically); same cfg, same bytes. Progress lines go to the
 * context's log. A cfg out of range is CR_ERR_CONFIG naming the key. */
CR_API cr_status cr_synth(cr_ctx *ctx, const cr_synth_cfg *c, const char *out_dir,
                          cr_synth_stats *st, cr_error *e);

/* ---- optimizer ---------------------------------------------------------------------
 * One configuration for every training loop (the ranker's train:, the LM's
 * train:, the ILM's phase1: and phase2:): clip -> schedule -> update. */
typedef enum { CR_OPT_ADAM = 0, CR_OPT_ADAMW = 1, CR_OPT_SGD = 2 } cr_dense_opt_kind;
typedef enum { CR_SPARSE_ADAGRAD = 0, CR_SPARSE_LAZY_ADAM = 1, CR_SPARSE_SGD = 2 } cr_sparse_opt_kind;
typedef enum { CR_SCHED_CONSTANT = 0, CR_SCHED_COSINE = 1 } cr_sched_kind;

typedef struct cr_optim_cfg {
    cr_dense_opt_kind  kind;          /* dense weights: adam | adamw | sgd */
    float              lr, beta1, beta2, eps, weight_decay;
    cr_sched_kind      schedule;      /* after the warmup: constant | cosine */
    int64_t            warmup;        /* steps of linear warmup */
    float              min_lr_frac;   /* cosine's floor, a fraction of lr */
    float              clip;          /* bound on the dense gradients' global norm; 0 = none */
    cr_sparse_opt_kind sparse_kind;   /* embedding tables: adagrad | lazy_adam | sgd */
    float              sparse_lr, adagrad_init;
} cr_optim_cfg;

/* MovieLens ratings as a ranking impression log (docs/movielens.md): every
 * rating of the domain is a request with the rated movie (click=1) and
 * `negatives` movies the user never rated (click=0). */
typedef enum cr_ml_protocol {
    CR_ML_POPULARITY, /* negatives by training-period rating count (default) */
    CR_ML_UNIFORM,    /* uniformly over movies rated in the training period */
    CR_ML_PERIOD      /* by rating count in the request's calendar year */
} cr_ml_protocol;
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

typedef struct cr_ml_stats {
    int64_t ratings;            /* rows of ratings.csv */
    int64_t movies;             /* rows of movies.csv */
    int64_t extra_movies;       /* rows of movies-extra.tsv (0 if absent) */
    int64_t domain_ratings;     /* ratings of movies in the domain */
    int64_t requests, rows;     /* written */
    int64_t requests_split[3];  /* train, valid, test */
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

CR_API void        cr_ml_opts_default(cr_ml_opts *o);
/* "popularity", "uniform", "period"; "domain", "all" (a value out of range
 * names the default), and back: an unknown name is CR_ERR_ARG listing the
 * valid ones. */
CR_API const char *cr_ml_protocol_name(cr_ml_protocol p);
CR_API const char *cr_ml_history_name(cr_ml_history h);
CR_API cr_status   cr_ml_protocol_parse(const char *s, cr_ml_protocol *out, cr_error *e);
CR_API cr_status   cr_ml_history_parse(const char *s, cr_ml_history *out, cr_error *e);
/* Build the impressions CSV; *st (may be NULL) receives what was read and
 * written. Bad options are CR_ERR_ARG naming the field; a malformed input
 * file CR_ERR_PARSE naming its line. Writes nothing on error. */
CR_API cr_status   cr_movielens_prepare(cr_ctx *ctx, const cr_ml_opts *o, cr_ml_stats *st,
                                        cr_error *e);

/* ---- impressions from any interaction log (docs/impressions.md) ----------------------
 * The same protocol as cr_movielens_prepare for a log described in YAML: a
 * CSV of (user, item, time, optional rating and numeric columns), an
 * optional item file (the catalogue, its categories, release year and
 * attributes) and user file; negatives, split, domain and labels (as
 * expressions) from the file too. */
typedef struct cr_impressions_cfg cr_impressions_cfg;

#define CR_IMPRESSIONS_MAX_LABELS 16

typedef struct cr_impressions_stats {
    int64_t events;             /* rows of the log */
    int64_t catalogue;          /* items known (the item file's rows, or the log's items) */
    int64_t domain_events;      /* events of items in the domain */
    int64_t requests, rows;     /* written */
    int64_t requests_split[3];  /* train, valid, test */
    int64_t rows_split[3];
    int64_t dropped;            /* training requests removed by keep_fraction */
    int64_t users;              /* distinct users with at least one request */
    int64_t items;              /* distinct items among the positives */
    int64_t pool;               /* candidate items for negatives (training period) */
    int64_t t_valid, t_test;    /* first timestamp of valid and of test */
    int64_t hidden_events;      /* events that strict removed from the input */
    double  new_release_rate;   /* share of positives that are new releases */
    int     n_labels;
    char    label[CR_IMPRESSIONS_MAX_LABELS][64];
    double  label_sum[CR_IMPRESSIONS_MAX_LABELS];     /* over positives where defined */
    int64_t label_defined[CR_IMPRESSIONS_MAX_LABELS]; /* positives where it is not empty */
    double  label_mean[CR_IMPRESSIONS_MAX_LABELS];
} cr_impressions_stats;

/* Read and check a log description (YAML; keys in docs/config-reference.md).
 * Relative paths are relative to the YAML file. Unknown keys, bad values and
 * label expressions naming unknown variables are CR_ERR_CONFIG naming
 * file:line:column and the key; no data file is opened yet. *out is the
 * caller's: free it with cr_impressions_cfg_free (NULL is fine). A loaded
 * cfg is read-only, so threads may share it. */
CR_API cr_status cr_impressions_cfg_load(cr_impressions_cfg **out, const char *path,
                                         cr_error *e);
CR_API void      cr_impressions_cfg_free(cr_impressions_cfg *c);
/* Read the files the cfg names and write the impressions CSV to out_path
 * (directories created, written to a temporary name and renamed: nothing
 * is left on error). *st (may be NULL) receives what was read and written.
 * A malformed input is CR_ERR_PARSE naming file:line and the column (an
 * unparseable time, a non-number rating); a column the YAML names but the
 * file lacks CR_ERR_NOT_FOUND; an item of the log missing from the item
 * file CR_ERR_MISMATCH naming both. Deterministic: same files and cfg, same
 * bytes. Thread-safe for distinct out_paths. */
CR_API cr_status cr_impressions(cr_ctx *ctx, const cr_impressions_cfg *c, const char *out_path,
                                cr_impressions_stats *st, cr_error *e);

#endif /* CROSSREC_DATA_H */
