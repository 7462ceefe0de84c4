/*
 * data.h - from CSV/TSV logs to encoded, split, batched examples.
 * The CSV reader streams and reports bad input as file:line:column; the
 * schema turns columns into features and task labels (vocabularies are fit
 * on the training split only); the dataset is columnar and gathers batches.
 * Nothing here knows the model's architecture.
 */
#ifndef CR_DATA_H
#define CR_DATA_H

#include "../core/core.h"
#include "../kernels/kernels.h"

/* ---- CSV / TSV reader ---------------------------------------------------------
 * RFC 4180 quoting ("a, b" and "" escapes), LF or CRLF line ends, a header
 * row naming the columns. Streams through the file in large blocks; field
 * views stay valid until the next cr_csv_next. A row with the wrong number
 * of fields is an error naming file:line and both counts. */
typedef struct cr_csv cr_csv;

/* sep 0 = by extension: ".tsv" -> '\t', otherwise ','. */
cr_status   cr_csv_open(cr_csv **out, const char *path, char sep, cr_error *e);
void        cr_csv_close(cr_csv *c);
int         cr_csv_ncols(const cr_csv *c);
const char *cr_csv_colname(const cr_csv *c, int col);
int         cr_csv_find(const cr_csv *c, const char *name); /* -1 if absent */
const char *cr_csv_path(const cr_csv *c);
/* Advance to the next row; *done = 1 (and CR_OK) at end of file. */
cr_status   cr_csv_next(cr_csv *c, int *done, cr_error *e);
int64_t     cr_csv_line(const cr_csv *c); /* 1-based line where the row starts */
/* Read only shard index of count, right after opening: the data bytes
 * after the header cut into count equal byte ranges, each row belonging to
 * the range its first byte falls in (so the shards partition the rows, in
 * order). Lines keep their numbers in messages. Rows must not hold line
 * breaks inside quoted fields (a cut could land inside one). */
cr_status   cr_csv_shard(cr_csv *c, int index, int count, cr_error *e);
/* Bytes of the file consumed so far, and its size (0 for a pipe): a
 * streaming job's progress. */
int64_t     cr_csv_offset(const cr_csv *c);
int64_t     cr_csv_size(const cr_csv *c);
/* NUL-terminated view of a field of the current row (unquoted). */
const char *cr_csv_field(const cr_csv *c, int col, size_t *len);
/* Parse a field as a finite number; empty -> *missing = 1 (if missing is
 * NULL an empty field is an error). NaN, inf and junk are errors that name
 * file:line:column and the column's name. */
cr_status   cr_csv_double(const cr_csv *c, int col, double *out, int *missing, cr_error *e);
/* The same reading of a number from n bytes of text: blanks around it
 * ignored, decimal notation only, finite. 1 with *out (and *empty = 1, *out
 * = 0 for blank text), or 0 with what was expected in *why. */
int         cr_parse_number(const char *s, size_t n, double *out, int *empty, const char **why);
cr_status   cr_csv_int64(const cr_csv *c, int col, int64_t *out, cr_error *e);

/* Streaming writer (through cr_atomic_file): quotes fields that need it. */
typedef struct cr_csv_writer cr_csv_writer;
cr_status cr_csv_writer_open(cr_csv_writer **out, const char *path, char sep, cr_error *e);
cr_status cr_csv_write_row(cr_csv_writer *w, int n, const char *const *fields, cr_error *e);
cr_status cr_csv_writer_commit(cr_csv_writer *w, cr_error *e); /* frees w */
void      cr_csv_writer_abort(cr_csv_writer *w);               /* frees w */

/* ---- expressions ----------------------------------------------------------------
 * Labels and masks may be expressions over columns: "rating >= 4",
 * "rating / 5", "(a > 0) * b". Grammar: numbers, column names
 * ([A-Za-z_][A-Za-z0-9_]*), + - * /, unary -, comparisons < <= > >= == !=
 * (1 or 0), && ||, parentheses. Names are resolved when parsing. */
typedef struct cr_expr cr_expr;
typedef int (*cr_expr_resolve)(void *ctx, const char *name); /* var index or -1 */
cr_status cr_expr_parse(cr_expr **out, const char *text, cr_expr_resolve resolve,
                        void *ctx, cr_error *e);
double    cr_expr_eval(const cr_expr *x, const double *vars);
void      cr_expr_free(cr_expr *x);

/* ---- vocabulary: string -> row id (row 0 is out-of-vocabulary) -------------- */
typedef struct cr_vocab cr_vocab;
cr_vocab *cr_vocab_new(void);
void      cr_vocab_free(cr_vocab *v);
/* Counting phase (training split). */
cr_status cr_vocab_count(cr_vocab *v, const char *s, size_t len, cr_error *e);
/* Keep keys with count >= min_count (at most max_size, most frequent first,
 * ties by first appearance); ids 1..n in that order. */
cr_status cr_vocab_finalize(cr_vocab *v, int64_t min_count, int64_t max_size, cr_error *e);
int32_t   cr_vocab_lookup(const cr_vocab *v, const char *s, size_t len); /* 0 = OOV */
int64_t   cr_vocab_size(const cr_vocab *v); /* rows including OOV */
const char *cr_vocab_key(const cr_vocab *v, int32_t id); /* NULL for 0 */
/* Add a key with the next id directly (loading a saved vocabulary). */
cr_status cr_vocab_add(cr_vocab *v, const char *s, size_t len, cr_error *e);

/* ---- schema: features and tasks ---------------------------------------------- */
typedef enum {
    CR_FEAT_CATEGORICAL, /* one id per row: vocabulary or hashed */
    CR_FEAT_MULTI,       /* several ids per row ("Comedy|Drama"), pooled */
    CR_FEAT_NUMERIC,     /* one float, transformed */
    CR_FEAT_BUCKET       /* a number cut at boundaries into an embedded id */
} cr_feat_kind;

typedef enum { CR_TX_NONE, CR_TX_ZSCORE, CR_TX_LOG1P, CR_TX_LOG1P_ZSCORE } cr_transform;

#define CR_MAX_BOUNDARIES 64

typedef struct cr_feature {
    char         name[64];
    char         column[64];
    cr_feat_kind kind;
    int          dim;           /* embedding width (categorical, multi, bucket) */
    int64_t      hash_buckets;  /* > 0: id = 1 + hash(value) % buckets, no vocabulary */
    int64_t      min_count;     /* vocabulary: keep values seen this often (default 1) */
    int64_t      max_vocab;     /* 0 = no cap */
    char         sep;           /* multi: separator, default '|' */
    cr_pooling   pooling;       /* multi: sum or mean (default mean) */
    cr_transform transform;     /* numeric */
    double       default_value; /* numeric: value for an empty field */
    int          n_boundaries;  /* bucket */
    double       boundaries[CR_MAX_BOUNDARIES];
    char         share[64];     /* use this other feature's vocabulary and table */
    float        id_dropout;    /* training only: each id becomes row 0 (OOV) with this
                                   probability, so the OOV row learns what an unseen
                                   value should score (a teacher meets only unseen items
                                   in another domain) */
    /* fitted on the training split */
    int64_t      rows;          /* table rows including row 0 (OOV / missing) */
    double       mean, std;     /* z-score statistics after the log1p, if any */
    double       lo, hi;        /* numeric: range of the training values after the log1p,
                                   if any (lo > hi: unknown, a model from before 0.x) */
    cr_vocab    *vocab;         /* NULL when hashed, bucketised, numeric or shared */
    int          table;         /* index of the embedding table it reads (after sharing) */
} cr_feature;

typedef enum { CR_TASK_BINARY, CR_TASK_REGRESSION } cr_task_kind;

typedef struct cr_task {
    char         name[64];
    cr_task_kind kind;
    char         label[256]; /* a column name or an expression */
    char         mask[256];  /* "" = always defined; a task name, column or expression */
    float        weight;     /* loss weight (default 1) */
} cr_task;

typedef enum { CR_SPLIT_TIME, CR_SPLIT_FRACTION, CR_SPLIT_COLUMN } cr_split_kind;

typedef struct cr_data_cfg {
    char          path[1024];    /* resolved relative to the config file */
    char          sep;           /* 0 = by extension */
    cr_split_kind split;
    char          split_column[64]; /* time: timestamp column; column: "train"/"valid"/"test" values */
    double        valid_frac, test_frac;
    uint64_t      split_seed;
    char          group_column[64]; /* request id: rows of one request stay together */
    char          user_column[64];  /* GAUC groups */
    char          weight_column[64];/* optional per-example weight */
    int           n_slices;
    char          slices[8][64];    /* 0/1 columns for sliced evaluation */
    int           n_extra;
    char          extra[16][64];    /* float columns carried along (soft labels) */
    int           no_labels;        /* scoring: label and mask columns are not read
                                       (labels and masks are 0) */
    int           keep_raw;         /* also keep numeric and bucket features' values as
                                       read, before any transform (cr_dataset.raw) */
    int           shard, n_shards;  /* n_shards > 1: read only that byte range of the
                                       file (cr_csv_shard); set by code, never by YAML */
} cr_data_cfg;

typedef struct cr_schema {
    int         n_features;
    cr_feature *features;   /* in config order */
    int         n_tasks;
    cr_task    *tasks;
    /* derived: how features map to model inputs */
    int         n_cat;      /* categorical + bucket features (one id each) */
    int         n_multi;
    int         n_dense;
    int        *cat_feat;   /* (n_cat) feature index of each cat slot */
    int        *multi_feat; /* (n_multi) */
    int        *dense_feat; /* (n_dense) */
    int         n_tables;   /* embedding tables after sharing */
    int64_t    *table_rows; /* (n_tables) */
    int        *table_dim;  /* (n_tables) */
    char      (*table_name)[64];
} cr_schema;

void      cr_schema_free(cr_schema *s);
/* Fill derived fields from features/tasks (after parsing or loading). */
cr_status cr_schema_finish(cr_schema *s, cr_error *e);
/* The whole schema, vocabularies included, as a JSON string (for a
 * checkpoint's __metadata__); and back. free() the string. */
cr_status cr_schema_to_json(const cr_schema *s, char **json, cr_error *e);
cr_status cr_schema_from_json(cr_schema *s, const char *json, cr_error *e);

/* ---- dataset: encoded columns -------------------------------------------------- */
enum { CR_SPLIT_TRAIN = 0, CR_SPLIT_VALID = 1, CR_SPLIT_TEST = 2 };

typedef struct cr_dataset {
    int64_t   n;
    int       n_cat, n_multi, n_dense, n_tasks, n_slices, n_extra;
    int32_t  *cat;      /* (n, n_cat) */
    int64_t **bag_off;  /* [n_multi] (n + 1) */
    int32_t **bag_ids;  /* [n_multi] */
    float    *dense;    /* (n, n_dense) transformed */
    double   *raw;      /* with cfg->keep_raw: (n, n_features) the value of each numeric
                           and bucket feature as read, NaN where empty (and for every
                           other kind); else NULL */
    float    *label;    /* (n_tasks, n) task-major */
    float    *mask;     /* (n_tasks, n) 1 where the task is defined */
    float    *weight;   /* (n) or NULL */
    int64_t  *group;    /* (n) request id (row index if no group column) */
    int64_t  *user;     /* (n) user id (= group if no user column) */
    uint8_t  *split;    /* (n) CR_SPLIT_* */
    uint8_t  *slices;   /* (n_slices, n) */
    char    (*slice_names)[64];
    float    *extra;    /* (n_extra, n) */
    char    (*extra_names)[64];
    int64_t   n_split[3];
} cr_dataset;

/* Read a CSV/TSV through the schema. If fit is set, vocabularies and
 * numeric statistics are fit on the training split first (two passes);
 * otherwise the schema's fitted state is used (scoring new data). Columns
 * the schema names but the file lacks are an error naming both. */
cr_status cr_dataset_load(cr_dataset *ds, cr_schema *schema, const cr_data_cfg *cfg,
                          int fit, cr_error *e);
void      cr_dataset_free(cr_dataset *ds);
/* Row indices of one split, in file order. free() the result. */
cr_status cr_dataset_rows(const cr_dataset *ds, int split, uint32_t **rows, int64_t *n,
                          cr_error *e);

/* ---- batches ---------------------------------------------------------------------
 * A batch owns buffers sized for max_B rows and gathers any B <= max_B. */
typedef struct cr_batch {
    int        B, max_B;
    int        n_cat, n_multi, n_dense, n_tasks, n_extra;
    int32_t   *cat;     /* (B, n_cat) */
    int64_t  **bag_off; /* [n_multi] (B + 1) */
    int32_t  **bag_ids; /* [n_multi] */
    float     *dense;   /* (B, n_dense) */
    float     *label;   /* (n_tasks, B) */
    float     *mask;    /* (n_tasks, B) */
    float     *weight;  /* (B) or NULL */
    float     *extra;   /* (n_extra, B) */
    int64_t   *group, *user; /* (B) */
    uint32_t  *rows;    /* (B) dataset rows */
    size_t    *bag_cap; /* [n_multi] capacity of bag_ids */
} cr_batch;

cr_status cr_batch_init(cr_batch *b, const cr_dataset *ds, int max_B, cr_error *e);
cr_status cr_batch_gather(cr_batch *b, const cr_dataset *ds, const uint32_t *rows, int B,
                          cr_error *e);
void      cr_batch_free(cr_batch *b);

#endif /* CR_DATA_H */
