/*
 * crossrec/rank.h - part of the public API (include <crossrec.h>, which
 * includes every part in order): rankers: load and score rows and requests, serve them over HTTP, score files, train, evaluate, and distil (label, export, the study).
 */
#ifndef CROSSREC_RANK_H
#define CROSSREC_RANK_H

#ifndef CROSSREC_H
#error "include <crossrec.h>, not its parts"
#endif

/* ---- models: load, score, free ----------------------------------------------
 * A trained ranker (crossrec train writes DIR/model.safetensors). The file
 * carries its schema, vocabularies included, so rows are given as the text
 * of their feature columns, exactly as they appear in the training CSV.
 * Loading packs the weights once for the scoring kernel (about the size of
 * the dense weights again); a row's scores are the same bits whatever else
 * is in its batch and whatever the thread count. */
typedef struct cr_model cr_model;

CR_API cr_status   cr_model_load(cr_model **out, const char *path, cr_error *e);
CR_API void        cr_model_free(cr_model *m);
/* Inputs: one per feature, in the model's feature order. */
CR_API int         cr_model_n_inputs(const cr_model *m);
CR_API const char *cr_model_input_column(const cr_model *m, int i); /* the CSV column it reads */
/* Outputs: one per served task head. */
CR_API int         cr_model_n_outputs(const cr_model *m);
CR_API const char *cr_model_output_name(const cr_model *m, int i);
CR_API int         cr_model_output_is_binary(const cr_model *m, int i);
/* Score n rows: values[r * n_inputs + i] is row r's text for input i ("" =
 * missing; multi-valent values joined by the feature's separator, e.g.
 * "Comedy|Drama"). scores (n, n_outputs): a probability for binary tasks,
 * a value for regression tasks. Safe to call from several threads at once
 * on one model. A value that is not what its feature expects is an error
 * naming the row and the column. */
CR_API cr_status   cr_model_score(const cr_model *m, int64_t n, const char *const *values,
                           float *scores, cr_error *e);


/* Score n rows given as typed columns, one per input in the model's input
 * order, without printing numbers to text: a number column feeds numeric
 * and bucketized inputs directly (NaN = missing: the feature's default),
 * and an integral number is an id for a categorical input (looked up as
 * its decimal text, as the CSV reader sees it). Text columns are as in
 * cr_model_score (NULL or "" = missing). A text-list column gives a
 * multi-valent input its bag item by item, with no separator: row r is a
 * cr_text_list of n single values (n = 0: missing, an empty bag; a NULL or
 * "" item is skipped; an item holding the feature's separator is an error,
 * as is a list for an input that takes one value). Row r of a column is
 * data[r * stride] (stride 0 = 1), so the columns of a row-major table or of
 * a data frame pass without copies. */
typedef enum cr_column_type {
    CR_COL_TEXT = 0,     /* const char *const *: one string per row */
    CR_COL_F64 = 1,      /* const double * */
    CR_COL_F32 = 2,      /* const float * */
    CR_COL_I64 = 3,      /* const int64_t * */
    CR_COL_I32 = 4,      /* const int32_t * */
    CR_COL_TEXT_LIST = 5 /* const cr_text_list *: one list per row (multi-valent inputs) */
} cr_column_type;

typedef struct cr_text_list {
    const char *const *items; /* (n) */
    int64_t            n;
} cr_text_list;

typedef struct cr_column {
    cr_column_type type;
    const void    *data;
    int64_t        stride; /* in elements */
} cr_column;

CR_API cr_status cr_model_score_columns(const cr_model *m, int64_t n, const cr_column *columns,
                                        float *scores, cr_error *e);

/* ---- requests: one context, many candidates ------------------------------------
 * A serving request scores N candidates for one context (the user, the
 * time, the history). The context part of the network's first layer is
 * computed once per request and shared by every candidate, so a request of
 * N candidates costs much less than N independent rows. Each candidate gets
 * one score per output, a ranking score from a formula over the outputs,
 * and its place in the order. */
typedef enum cr_rank_formula {
    CR_RANK_WEIGHTED_SUM = 0, /* sum_k w_k * p_k */
    CR_RANK_PRODUCT = 1       /* prod_k max(p_k, 1e-12)^w_k (outputs with w_k = 0 skipped) */
} cr_rank_formula;

#define CR_RANK_MAX_WEIGHTS 32
typedef struct cr_model_opts {
    cr_rank_formula formula;                     /* default weighted_sum */
    int   n_weights;                             /* 0: weight 1 on the first output only */
    char  weight_name[CR_RANK_MAX_WEIGHTS][64];  /* output names; outputs not listed weigh 0 */
    float weight[CR_RANK_MAX_WEIGHTS];
    cr_precision precision;                      /* default fp32 */
    int   max_pool;                              /* idle workspaces kept for reuse (default 16) */
} cr_model_opts;

CR_API void        cr_model_opts_defaults(cr_model_opts *o);
CR_API const char *cr_precision_name(cr_precision p);   /* "fp32", "bf16", "int8" */
CR_API const char *cr_rank_formula_name(cr_rank_formula f);
/* Load with options; unknown output names in the weights are an error
 * naming them. cr_model_load is this with the defaults. */
CR_API cr_status   cr_model_load_opts(cr_model **out, const char *path, const cr_model_opts *o,
                               cr_error *e);
/* "YYYYmmddTHHMMSSZ-<16 hex>": the file's mtime (UTC) and a hash of its
 * header (tensor names, shapes, offsets and metadata) and of up to 1 MiB
 * at each end of the tensor data, fixed at load. */
CR_API const char *cr_model_version(const cr_model *m);
CR_API const char *cr_model_path(const cr_model *m);
CR_API cr_precision cr_model_precision(const cr_model *m);
/* Separator of a multi-valent input ("A|B"), or 0 for a single-valued one. */
CR_API char        cr_model_input_sep(const cr_model *m, int i);
/* 1 if the input is a number (numeric or bucketized), else 0 (ids, bags). */
CR_API int         cr_model_input_is_number(const cr_model *m, int i);

typedef struct cr_request {
    /* (n_inputs) the text of each context input; NULL marks a candidate
     * input, whose text comes from each candidate instead. */
    const char *const *context;
    int64_t            n_candidates;  /* >= 1 */
    /* (n_candidates, n_inputs) row-major; entries of context inputs are
     * never read (may be NULL). "" = missing: the schema's default (row 0
     * for ids, an empty bag, the feature's default number). */
    const char *const *candidates;
} cr_request;

typedef struct cr_response {  /* buffers owned by the caller */
    float   *scores;    /* (n_candidates, n_outputs): probabilities or values */
    float   *ranking;   /* (n_candidates) the formula's score */
    int64_t *order;     /* (n_candidates) candidate indices, best first (ties: lower index) */
    int64_t  n_missing; /* out: values that were "" (a context value counts once) */
} cr_response;

/* Score one request. Thread-safe on one model: workspaces come from a small
 * pool inside the model, so a warm model allocates nothing per call but the
 * bags of multi-valent values that outgrow what a workspace has seen. Errors
 * name the input column and, for candidate values, the candidate index. */
CR_API cr_status cr_model_score_request(const cr_model *m, const cr_request *rq, cr_response *rs,
                                 cr_error *e);
/* The same request as typed columns, so numbers need no text: context[i]
 * holds input i's value in its row 0, or has data NULL to mark a
 * candidate input; candidates[i] holds the n_candidates values of a
 * candidate input (entries of context inputs are never read). Missing:
 * NULL or "" text, NaN numbers. An integral number read by an id input is
 * looked up as its decimal digits. The same pool, thread safety and
 * errors as cr_model_score_request, whose text goes through the same
 * encoder. */
typedef struct cr_request_columns {
    const cr_column *context;      /* (n_inputs) */
    int64_t          n_candidates; /* >= 1 */
    const cr_column *candidates;   /* (n_inputs) */
} cr_request_columns;

CR_API cr_status cr_model_score_request_columns(const cr_model *m, const cr_request_columns *rq,
                                                cr_response *rs, cr_error *e);
/* The ranking formula alone over scores (n, n_outputs) of this model:
 * writes ranking (n) and order (n). */
CR_API cr_status   cr_model_rank(const cr_model *m, int64_t n, const float *scores, float *ranking,
                          int64_t *order, cr_error *e);


/* ---- the HTTP server ------------------------------------------------------------------
 * crossrec's own POST /v1/score and the Open Inference Protocol (KServe v2)
 * over one or more named models, with Prometheus metrics, reload without
 * dropping requests, limits and graceful stop (docs/serving.md). The
 * caller owns the signals: `crossrec serve` turns SIGHUP into
 * cr_server_reload and SIGTERM into cr_server_stop. */
#define CR_SERVER_MAX_MODELS 16

typedef struct cr_server_model {
    char name[64];   /* the Open Inference Protocol's model name: letters, digits, - _ . */
    char path[1024]; /* the checkpoint */
} cr_server_model;

typedef struct cr_server_cfg {
    int             n_models;       /* >= 1; the first also answers /v1/score */
    cr_server_model models[CR_SERVER_MAX_MODELS];
    cr_model_opts   model;          /* formula, weights, precision (every model) */
    char            host[256];      /* address or host name to bind, default "127.0.0.1" */
    int             port;           /* 0 = any free port (read it back with cr_server_port) */
    int             threads;        /* HTTP worker threads, default 4 */
    int             kernel_threads; /* threads inside one request's kernels, default 1 */
    int64_t         max_body;       /* bytes of a body, Content-Length or chunked, default 1 MiB */
    int64_t         max_candidates; /* default 10,000 */
    int             timeout_s;      /* idle connection timeout, default 30 */
    double          drain_s;        /* stop: wait this long for in-flight requests, default 10 */
    /* limits against hostile or broken clients */
    int             max_connections;   /* open connections, default 512 */
    int             max_per_ip;        /* open connections from one address, default 128; 0 = off */
    double          header_timeout_s;  /* headers of a request complete within this, default 10 */
    double          request_timeout_s; /* headers and body within this, default 60 */
    /* administration: POST /v1/reload only with a token (empty = no admin endpoints) */
    char            admin_token[256];
    double          reload_interval_s; /* at most one admin reload per this, default 5 */
    int             allow_schema_change; /* a reload may change the model's inputs */
    /* messages for the operator (reload failures with paths, ...); NULL = none */
    void          (*log)(void *ctx, const char *msg);
    void           *log_ctx;
} cr_server_cfg;

CR_API void      cr_server_cfg_defaults(cr_server_cfg *c);
/* Read the `serve:` section of a YAML file into c (keys absent keep c's
 * values; other top-level sections of a job config are ignored). Errors
 * name file:line:col and the field. */
CR_API cr_status cr_server_cfg_load(cr_server_cfg *c, const char *path, cr_error *e);
/* Add a model from "name=path" or "path" (named after the file, without
 * its .safetensors); errors name the argument. */
CR_API cr_status cr_server_cfg_add_model(cr_server_cfg *c, const char *arg, cr_error *e);

typedef struct cr_server cr_server;

/* Load the models, bind, and start serving in background threads (the
 * caller's thread returns at once). The server owns its threads and
 * state: no globals, no signal handlers, nothing printed (operator
 * messages go to c->log); several servers may run in one process. A bad
 * configuration is CR_ERR_CONFIG or CR_ERR_ARG naming the field. */
CR_API cr_status cr_server_start(cr_server **out, const cr_server_cfg *c, cr_error *e);
CR_API int       cr_server_port(const cr_server *s);     /* the bound port; 0 for NULL */
/* Load and validate every model file again (finite weights; the same
 * inputs unless allow_schema_change), then swap them in; requests already
 * running finish on the old models, freed by the last of them. A file that
 * fails leaves its old model serving and returns the error (which may name
 * the file: it is for the operator). Safe from any thread. */
CR_API cr_status cr_server_reload(cr_server *s, cr_error *e);
/* Stop accepting connections, wait up to drain_s for requests in flight,
 * stop the threads and free everything. */
CR_API void      cr_server_stop(cr_server *s);
/* The version of the first model being served (copied into buf; "" for NULL). */
CR_API void      cr_server_version(cr_server *s, char *buf, size_t cap);


/* ---- batch scoring of a file ---------------------------------------------------------
 * Every row of a CSV/TSV (the model's feature columns; labels not needed)
 * scored into an output CSV: the id columns copied through, then one column
 * per served task (a probability for binary tasks, a value for regression
 * ones, "%.7g"), one row per input row in input order. The output is
 * written atomically ("-" = standard output). Progress goes to the
 * context's log (stage "score", unit "rows"); in a job of several
 * processes (cr_ctx_params.dist) each rank scores its byte range of the
 * input and rank 0 joins the parts. */
#define CR_SCORE_MAX_IDS 16
typedef struct cr_score_csv_opts {
    const char        *model;        /* the checkpoint */
    const char        *data;         /* rows to score */
    const char        *out;          /* the output CSV */
    const char *const *id_columns;   /* input columns copied first, in this order */
    int                n_id_columns; /* 0..CR_SCORE_MAX_IDS [0] */
    int                batch;        /* rows per forward pass, 1..1048576 [1024] */
} cr_score_csv_opts;

CR_API void      cr_score_csv_opts_init(cr_score_csv_opts *o);
/* *rows (may be NULL) receives the rows scored (of the whole job). An id
 * column the input lacks is CR_ERR_NOT_FOUND naming it; a bad value in a
 * row, CR_ERR_PARSE naming its line and column. */
CR_API cr_status cr_score_csv(cr_ctx *ctx, const cr_score_csv_opts *o, int64_t *rows,
                              cr_error *e);


/* ---- training and evaluation ------------------------------------------------------
 * A ranker is trained from a YAML config (docs/config.md) into a directory:
 * DIR/model.safetensors (what serves), DIR/metrics.json (validation and
 * test metrics per task), DIR/config.yaml, and DIR/last.safetensors with
 * DIR/train_state.safetensors for resuming. The context's threads and
 * precision, when not their defaults, override the config's train.threads
 * and train.precision. Progress goes to the context's callback (stage
 * "train", unit "steps"); cr_ctx_cancel stops at the next step, writes the
 * last checkpoint (so resume continues from there) and returns
 * CR_ERR_CANCELLED. */
typedef struct cr_run cr_run;

typedef struct cr_train_opts {
    int     resume;     /* continue from DIR/last.safetensors if present [0] */
    int64_t seed;       /* -1 = the config's train.seed [-1] */
    int     epochs;     /* 0 = the config's train.epochs [0] */
    int64_t max_steps;  /* -1 = the config's train.max_steps; 0 = no limit [-1] */
    /* For testing resume: stop after this many steps as if the process had
     * been killed there (no checkpoint written at that point; CR_ERR_LIMIT).
     * 0 = off [0]. */
    int64_t stop_after_steps;
} cr_train_opts;

CR_API void        cr_train_opts_init(cr_train_opts *o);
/* o NULL = the defaults. On success *run holds the result (free with
 * cr_run_free); on failure *run is NULL and e says why (the config's file,
 * line and key for a config error, the data file's line for a data error). */
CR_API cr_status   cr_train(cr_ctx *ctx, const char *config, const char *out_dir,
                            const cr_train_opts *o, cr_run **run, cr_error *e);
/* The metrics.json document, the model's path (DIR/model.safetensors) and
 * DIR; valid until cr_run_free. */
CR_API const char *cr_run_metrics_json(const cr_run *r);
CR_API const char *cr_run_model_path(const cr_run *r);
CR_API const char *cr_run_dir(const cr_run *r);
/* 1 when resume found DIR already finished: nothing was trained or written
 * (the metrics are the finished run's). */
CR_API int         cr_run_finished(const cr_run *r);
CR_API void        cr_run_free(cr_run *r);

/* Metrics of a saved model on a split ("test", "valid" or "train") of the
 * data its config names, or of data_path (same columns) when not NULL. The
 * model must have been trained with the config's schema. *metrics_json
 * receives {"model", "data", "split", "eval": {task: {metric: value}}}
 * (free with cr_free). */
CR_API cr_status   cr_evaluate(cr_ctx *ctx, const char *model, const char *config,
                               const char *data_path, const char *split, char **metrics_json,
                               cr_error *e);

/* ---- distillation: label, export, the study ----------------------------------------
 * Zero-shot labelling: a frozen source-domain teacher scores target rows
 * through a map file (docs/distillation.md); its predictions are written as
 * soft-label columns beside the input columns, atomically (on any error no
 * output file appears). */
typedef struct cr_label_args {
    const char *teacher;   /* the teacher checkpoint (.safetensors) */
    const char *map;       /* the map YAML */
    const char *data;      /* the target CSV/TSV (streamed, never held whole) */
    const char *out;       /* the labelled CSV/TSV */
    const char *coverage;  /* also write the coverage report as JSON here; NULL = no */
    int         batch;     /* rows per forward pass; 0 = 1024 */
} cr_label_args;

/* *coverage_json (may be NULL) receives the coverage report: per teacher
 * feature how it was filled (column, constant or default) and its
 * out-of-vocabulary rate (free with cr_free). Progress goes to the
 * context's callback (stage "label", unit "bytes" of data read); a cancel
 * stops between batches with CR_ERR_CANCELLED and no output file. */
CR_API cr_status cr_label(cr_ctx *ctx, const cr_label_args *a, char **coverage_json, cr_error *e);

/* The serving model from a trained student: never-served (distillation)
 * heads dropped. format: "safetensors" (NULL); "onnx", an ONNX graph (opset
 * 13, fp32 weights) with its vocabulary file beside it (out without ".onnx"
 * + ".vocab.json"; docs/formats.md); or "onnx-bf16", the same with bfloat16
 * weight matrices and tables. *dropped (may be NULL) receives how many heads
 * were dropped. */
CR_API cr_status cr_export(const char *model, const char *out, const char *format, int *dropped,
                           cr_error *e);
/* The ONNX export with its choices spelled out: vocab is the vocabulary
 * file's path (NULL = beside out, as cr_export), weights CR_PRECISION_FP32
 * or CR_PRECISION_BF16 (int8 is CR_ERR_ARG). cr_export's onnx formats are
 * this call. Writes both files atomically; thread-safe for distinct paths. */
CR_API cr_status cr_export_onnx(const char *model, const char *out, const char *vocab,
                                cr_precision weights, int *dropped, cr_error *e);
/* Rows of a CSV/TSV (data) encoded by a model's own schema into the inputs
 * of its exported ONNX graph, one tensor per graph input, written to out as
 * safetensors atomically (docs/formats.md); *rows (may be NULL) receives the
 * row count. A serving stack checks its encoder against it. Thread-safe
 * for distinct paths. */
CR_API cr_status cr_encode_csv(const char *model, const char *data, const char *out,
                               int64_t *rows, cr_error *e);

/* A whole distillation study (docs/experiment.md): teacher, labels, every
 * student variant over seeds and data fractions, intervals and paired
 * tests. Progress: stage "experiment", unit "runs"; a cancel stops before
 * the next run with CR_ERR_CANCELLED, keeping the finished runs (the next
 * call reuses them). Writes DIR/results.json and DIR/report.html; *results_json (may be
 * NULL) receives results.json's text (free with cr_free). fresh = 1 retrains
 * runs a previous call already finished. The context's threads, when set,
 * override every job's train.threads. */
CR_API cr_status cr_experiment(cr_ctx *ctx, const char *config, const char *out_dir, int fresh,
                               char **results_json, cr_error *e);
/* The study's tables as text (*text, free with cr_free), and its report
 * (self-contained HTML, written atomically), from results.json's text. */
CR_API cr_status cr_experiment_table(const char *results_json, char **text, cr_error *e);
CR_API cr_status cr_experiment_report(const char *results_json, const char *html_path,
                                      cr_error *e);

#endif /* CROSSREC_RANK_H */
