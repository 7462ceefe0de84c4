/*
 * crossrec.h - the public API of crossrec, and its manual.
 *
 * crossrec trains small multi-task rankers on recommendation logs, distils a
 * large source-domain ranker into them zero-shot, and serves them. Every
 * function that can fail returns a cr_status; details go to a cr_error the
 * caller owns. The library never exits and never prints unless asked to.
 */
#ifndef CROSSREC_H
#define CROSSREC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header. cr_version() gives the library's, which may
 * be newer within the same major version (the SONAME is libcrossrec.so.MAJOR). */
#define CR_VERSION_MAJOR 0
#define CR_VERSION_MINOR 2
#define CR_VERSION_PATCH 0
#define CR_VERSION "0.2.0"

/* Every entry point of the shared library carries CR_API; nothing else is
 * exported (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define CR_API __attribute__((visibility("default")))
#else
#define CR_API
#endif

/* "0.2.0": the version of the library actually loaded. */
CR_API const char *cr_version(void);

/* ---- status and errors ------------------------------------------------ */

typedef enum cr_status {
    CR_OK = 0,
    CR_ERR_NOMEM,     /* an allocation failed */
    CR_ERR_IO,        /* open/read/write/rename failed (errno text in message) */
    CR_ERR_PARSE,     /* malformed text input: CSV, YAML, JSON */
    CR_ERR_CONFIG,    /* a well-formed config that says something invalid */
    CR_ERR_FORMAT,    /* a binary file (checkpoint) that is truncated or corrupt */
    CR_ERR_SHAPE,     /* tensor shapes or sizes that do not agree */
    CR_ERR_ARG,       /* a bad argument from the caller */
    CR_ERR_MISMATCH,  /* two valid things that do not belong together */
    CR_ERR_NOT_FOUND, /* a named thing (column, tensor, feature) is absent */
    CR_ERR_LIMIT,     /* a size limit was exceeded */
    CR_ERR_INTERNAL,  /* a bug: please report it */
    CR_ERR_CANCELLED  /* stopped by cr_ctx_cancel (work done so far is kept as documented) */
} cr_status;

/* What went wrong, in words: "data.csv:12:3: expected a number in column
 * 'rating', got 'abc'". Functions taking a cr_error* accept NULL. */
typedef struct cr_error {
    cr_status status;
    char msg[1024];
} cr_error;

CR_API const char *cr_strerror(cr_status s);

/* ---- memory ------------------------------------------------------------------ */

/* Frees a buffer the library returned (text, ids, JSON); NULL is a no-op. */
CR_API void cr_free(void *p);

/* ---- files ------------------------------------------------------------------- */

/* A whole file into *out, NUL-terminated (free with cr_free); *len (may be
 * NULL) receives its size. Errors name the path and errno's text. Thread-safe. */
CR_API cr_status cr_read_file(const char *path, char **out, size_t *len, cr_error *e);
/* Write n bytes to path atomically: to a temporary name beside it, flushed,
 * fsynced and renamed over path, so a reader (or a crash) sees the old file
 * or the new one, never half of one. "-" writes to standard output; an
 * existing path that is not a regular file is CR_ERR_IO. Thread-safe for
 * distinct paths. */
CR_API cr_status cr_write_file_atomic(const char *path, const void *buf, size_t n, cr_error *e);

/* ---- kernels and the CPU ------------------------------------------------------
 * The hot kernels are chosen once per process from the CPU's features:
 * scalar, avx2, avx512 or avx512bf16 (x86-64), scalar or neon (arm64). The
 * environment variable CROSSREC_ISA forces a lower set (docs/kernels.md). */
/* The set in use ("avx2", ...), and the CPU's model name. */
CR_API const char *cr_kernel_set_name(void);
CR_API const char *cr_cpu_name(void);
/* CR_OK, or why CROSSREC_ISA cannot be honoured (an unknown name, or the
 * CPU feature the set needs and lacks); a program may refuse to start on
 * it (the library alone falls back to the best set, with one warning). */
CR_API cr_status cr_kernels_check(cr_error *e);
/* "cpu:", "features:", "kernels:" (the set in use and its GEMM, bf16 and
 * int8 paths) and "kernel sets:" (each set, and what this CPU lacks for
 * the ones it cannot run) lines; f is a FILE *. */
CR_API void cr_kernels_print(void *f);

/* ---- the context --------------------------------------------------------------
 * A cr_ctx holds what a computation may depend on besides its inputs: the
 * thread count, the kernel set, the arithmetic precision, where log lines
 * go, a progress callback and a cancel flag. Every entry point that
 * computes (train, evaluate, label, experiment, generate) takes one; NULL
 * means a default context (all of the process's CPUs, the best kernel set,
 * fp32, log to stderr, no progress).
 *
 * No call leaves process-wide state changed: the thread count is set for
 * the calling thread for the duration of the call and restored after it,
 * so two contexts used from two threads at once each get the results they
 * would get alone. One context serves one call at a time: using it from a
 * second thread while a call runs is CR_ERR_ARG (make one per thread).
 *
 * Threads: 0 means the CPUs of the process's affinity mask (taskset,
 * cpusets), capped by its cgroup v1/v2 CPU quota rounded up (a container
 * limited to 2 CPUs on a 64-core host gets 2). Waiting threads: libgomp
 * reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded, and by
 * default an idle thread spins before it sleeps, which makes training many
 * times slower when another process shares the cores (docs/bench.md). A
 * library cannot change that afterwards: a program that links crossrec
 * should start with OMP_WAIT_POLICY=passive in its environment (the crossrec
 * command re-executes itself with it when neither variable is set). */
typedef struct cr_ctx cr_ctx;

/* Arithmetic of the heavy products. For scoring, bf16 rounds weights and
 * inputs to bfloat16 and sums in fp32 (AVX-512 BF16 when the CPU has it,
 * the same rounding in plain C otherwise); int8 quantises weights per output
 * row and inputs per row (symmetric) and sums integer products (AVX-512
 * VNNI when available). For training only fp32 and bf16 exist (bf16 mixed
 * precision: master weights and optimizer state stay fp32). */
typedef enum cr_precision { CR_PRECISION_FP32 = 0, CR_PRECISION_BF16 = 1, CR_PRECISION_INT8 = 2 } cr_precision;

/* Log levels of the sink. */
typedef enum cr_log_level { CR_LOG_INFO = 0, CR_LOG_WARN = 1 } cr_log_level;

/* One line of log text, without its newline. Called on the thread that made
 * the library call. */
typedef void (*cr_log_fn)(void *user, cr_log_level level, const char *line);

/* Where a long job is. total is 0 when unknown; unit names what done counts
 * ("steps", "rows", "runs", "tokens"). */
typedef struct cr_progress_info {
    const char *stage;   /* "train", "label", "experiment", ... */
    int64_t     done;
    int64_t     total;
    const char *unit;
    double      seconds; /* since the stage started */
    double      loss;    /* the running training loss, NaN when there is none */
} cr_progress_info;

/* Called now and then (at most a few times a second) on the calling thread.
 * Returning non-zero cancels the job, as cr_ctx_cancel does. */
typedef int (*cr_progress_fn)(void *user, const cr_progress_info *p);

/* A job of one or more processes (MPI ranks). Built with `make MPI=1`,
 * cr_dist_init joins the job mpirun started (MPI_Init); otherwise, or
 * without mpirun, it is a job of one. A context whose params name a job
 * trains data-parallel over its ranks: every rank makes the same calls
 * (docs/distributed.md). NULL everywhere means this process alone. */
typedef struct cr_dist cr_dist;
CR_API cr_status cr_dist_init(cr_dist **out, int *argc, char ***argv, cr_error *e);
/* Leave the job (MPI_Finalize) and free d. */
CR_API void      cr_dist_finalize(cr_dist *d);
/* End every rank of the job at once with this exit status (MPI_Abort); a
 * job of one exits. For a program's main, never for library code. */
CR_API void      cr_dist_abort(const cr_dist *d, int status);
CR_API int       cr_dist_rank(const cr_dist *d); /* 0 for NULL */
CR_API int       cr_dist_size(const cr_dist *d); /* 1 for NULL */
CR_API int       cr_dist_has_mpi(void);          /* 1 when built with MPI=1 */

typedef struct cr_ctx_params {
    int            threads;        /* 0 = the CPUs this process may use (affinity, quota) */
    cr_precision   precision;      /* default fp32; training takes fp32 or bf16 */
    cr_log_fn      log;            /* NULL = lines to stderr */
    void          *log_user;
    int            quiet;          /* 1 = no log lines at all (warnings included) */
    cr_progress_fn progress;       /* NULL = none */
    void          *progress_user;
    const cr_dist *dist;           /* the job training runs over; NULL = this process alone */
} cr_ctx_params;

/* The defaults above; always start from these (fields may be added). */
CR_API void      cr_ctx_params_init(cr_ctx_params *p);
/* p NULL = the defaults. A bad value (threads < 0 or > 4096, a precision
 * out of range) is CR_ERR_ARG naming the field. */
CR_API cr_status cr_ctx_new(cr_ctx **out, const cr_ctx_params *p, cr_error *e);
CR_API void      cr_ctx_free(cr_ctx *c);
/* Ask the running job to stop at its next safe point; it then returns
 * CR_ERR_CANCELLED. Safe from any thread and from a signal handler. The
 * flag stays set until cr_ctx_reset_cancel. */
CR_API void      cr_ctx_cancel(cr_ctx *c);
CR_API void      cr_ctx_reset_cancel(cr_ctx *c);
/* The thread count calls on this context use (threads 0 resolved). */
CR_API int       cr_ctx_threads(const cr_ctx *c);

/* The calling thread's thread count for calls that take no context
 * (cr_model_score and friends); 0 = all CPUs this process may use.
 * Prefer a cr_ctx. Results are bit-identical for a given seed and thread
 * count. */
CR_API void cr_set_threads(int n);
CR_API int  cr_get_threads(void);

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
 * cr_model_score (NULL or "" = missing). Row r of a column is
 * data[r * stride] (stride 0 = 1), so the columns of a row-major table or of
 * a data frame pass without copies. */
typedef enum cr_column_type {
    CR_COL_TEXT = 0, /* const char *const *: one string per row */
    CR_COL_F64 = 1,  /* const double * */
    CR_COL_F32 = 2,  /* const float * */
    CR_COL_I64 = 3,  /* const int64_t * */
    CR_COL_I32 = 4   /* const int32_t * */
} cr_column_type;

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

/* ---- the decoder language model ------------------------------------------------------
 * A decoder LM for text: a llama2.c checkpoint (.bin), a crossrec LM
 * checkpoint (crossrec lm train), or a GPT-2 in Hugging Face safetensors,
 * with its tokenizer (a GPT-2 BPE directory with encoder.json and vocab.bpe,
 * or a llama2.c tokenizer.bin). One cr_lm may be used by one call at a time. */
typedef struct cr_lm cr_lm;

typedef struct cr_lm_load_opts {
    const char *tokenizer;  /* NULL = none: ids only */
    int         gpt2_heads; /* GPT-2 head count when the file has no config [0] */
    int         bf16;       /* multiply by bf16 copies of the weights (inference only) [0] */
} cr_lm_load_opts;

typedef struct cr_gen_opts {
    int      n_tokens;     /* how many to generate [64] */
    float    temperature;  /* 0 = greedy [1.0] */
    int      top_k;        /* 0 = off [0] */
    float    top_p;        /* nucleus mass, in (0, 1] [0.9] */
    uint64_t seed;         /* [0] */
    int32_t  bos;          /* -1 = the model's or tokenizer's own [-1] */
} cr_gen_opts;

CR_API void        cr_lm_load_opts_init(cr_lm_load_opts *o);
CR_API void        cr_gen_opts_init(cr_gen_opts *o);
CR_API cr_status   cr_lm_load(cr_lm **out, const char *path, const cr_lm_load_opts *o, cr_error *e);
CR_API void        cr_lm_free(cr_lm *lm);
CR_API int         cr_lm_vocab_size(const cr_lm *lm);
CR_API int         cr_lm_context_length(const cr_lm *lm);  /* max_seq */
CR_API int         cr_lm_has_tokenizer(const cr_lm *lm);
/* The BOS id prompts start with: <|endoftext|> of a BPE tokenizer, GPT-2's
 * last id, or 1 (llama2.c). */
CR_API int32_t     cr_lm_bos_id(const cr_lm *lm);
/* Text to ids (*ids, free with cr_free) and back (*text, NUL-terminated). */
CR_API cr_status   cr_lm_tokenize(const cr_lm *lm, const char *text, int32_t **ids, size_t *n,
                                  cr_error *e);
CR_API cr_status   cr_lm_detokenize(const cr_lm *lm, const int32_t *ids, size_t n, char **text,
                                    cr_error *e);
/* Continue a prompt of ids (BOS is not added) with o->n_tokens ids written
 * to out. The prompt plus the new ids must fit the context length. */
CR_API cr_status   cr_lm_generate_ids(cr_ctx *ctx, cr_lm *lm, const int32_t *prompt,
                                      int n_prompt, const cr_gen_opts *o, int32_t *out,
                                      cr_error *e);
/* Continue a text prompt ("" = from BOS alone; BOS is prepended) and return
 * the continuation's text (*text, free with cr_free). Needs a tokenizer. */
CR_API cr_status   cr_lm_generate(cr_ctx *ctx, cr_lm *lm, const char *prompt,
                                  const cr_gen_opts *o, char **text, cr_error *e);


/* Pretrain a decoder on a text corpus from a YAML recipe (docs/lm.md) into
 * out_dir: model.safetensors, train_state.safetensors, tokens.bin,
 * metrics.json and, with train_tokenizer, tokenizer/. resume = 1 continues
 * from out_dir's train_state exactly (same thread count, same bits).
 * Progress lines go to the context's log; threads as the context says. *r
 * (may be NULL) receives the last step's figures. A recipe error is
 * CR_ERR_CONFIG naming the file, line and key. */
typedef struct cr_lm_train_result {
    int64_t step;                      /* steps done */
    int64_t n_train, n_valid;          /* tokens in each split */
    int32_t vocab;
    double  train_loss;                /* mean over the last logging interval */
    double  valid_loss, valid_ppl;     /* the last evaluation */
    double  tokens_per_s;              /* training tokens per second in this run */
} cr_lm_train_result;

CR_API cr_status cr_lm_pretrain(cr_ctx *ctx, const char *config, const char *out_dir, int resume,
                                cr_lm_train_result *r, cr_error *e);

/* Cross-entropy of a loaded LM on a text file, over consecutive windows of
 * seq_len tokens, each starting with the tokenizer's <|endoftext|> as BOS
 * when it has one (as training does). The LM must have been loaded with a
 * GPT-2 BPE tokenizer directory. */
typedef struct cr_lm_eval_opts {
    int     seq_len;     /* tokens per window, 2..context length; 0 = the context length [0] */
    int     batch;       /* windows per forward, 1..4096 [4] */
    int64_t max_windows; /* score this many evenly spaced windows; 0 = all [0] */
} cr_lm_eval_opts;

typedef struct cr_lm_eval_result {
    double  loss;        /* mean cross-entropy per scored token (nats); perplexity = exp(loss) */
    int64_t scored;      /* tokens scored */
    int64_t tokens;      /* tokens in the text */
} cr_lm_eval_result;

CR_API void      cr_lm_eval_opts_init(cr_lm_eval_opts *o);
CR_API cr_status cr_lm_eval(cr_ctx *ctx, cr_lm *lm, const char *text_path,
                            const cr_lm_eval_opts *o, cr_lm_eval_result *r, cr_error *e);

/* ---- tokenizers ------------------------------------------------------------------------
 * A tokenizer on its own: a GPT-2 byte-level BPE directory (encoder.json,
 * vocab.bpe) or a llama2.c tokenizer.bin (docs/tokenizers.md). Immutable
 * once loaded: safe to share between threads. */
typedef struct cr_tokenizer cr_tokenizer;

/* Flags of cr_tokenizer_encode, for a tokenizer.bin only (CR_ERR_ARG on a BPE). */
#define CR_TOK_BOS             1 /* prepend BOS, id 1 */
#define CR_TOK_EOS             2 /* append EOS, id 2 */
#define CR_TOK_NO_DUMMY_PREFIX 4 /* do not prepend the " " llama2.c adds to non-empty text */

/* path: a directory = a GPT-2 BPE, a file = a tokenizer.bin. */
CR_API cr_status cr_tokenizer_load(cr_tokenizer **out, const char *path, cr_error *e);
CR_API void      cr_tokenizer_free(cr_tokenizer *t);
CR_API int       cr_tokenizer_is_bpe(const cr_tokenizer *t);   /* 1 GPT-2 BPE, 0 tokenizer.bin */
CR_API int32_t   cr_tokenizer_vocab_size(const cr_tokenizer *t);
/* len bytes of text (NUL bytes allowed) to *ids (*n of them; free with cr_free). */
CR_API cr_status cr_tokenizer_encode(const cr_tokenizer *t, const char *text, size_t len,
                                     int flags, int32_t **ids, size_t *n, cr_error *e);
/* ids back to their bytes: *text (NUL-terminated, *len without the NUL;
 * free with cr_free). An id out of range is CR_ERR_ARG naming it. */
CR_API cr_status cr_tokenizer_decode(const cr_tokenizer *t, const int32_t *ids, size_t n,
                                     char **text, size_t *len, cr_error *e);

/* Learn a GPT-2-format byte-level BPE from a corpus file. */
typedef struct cr_tokenizer_train_opts {
    int32_t vocab_size;    /* 256 bytes + merges + <|endoftext|>, 257..1000000 [4096] */
    int64_t min_frequency; /* never merge a pair seen fewer times, >= 1 [2] */
} cr_tokenizer_train_opts;

CR_API void      cr_tokenizer_train_opts_init(cr_tokenizer_train_opts *o);
/* Writes out_dir/encoder.json and out_dir/vocab.bpe (created, atomically);
 * *vocab (may be NULL) receives the size reached, which is below
 * vocab_size when no pair is frequent enough. Deterministic. */
CR_API cr_status cr_tokenizer_train(cr_ctx *ctx, const char *corpus,
                                    const cr_tokenizer_train_opts *o, const char *out_dir,
                                    int32_t *vocab, cr_error *e);


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

/* ---- training the item-language model ----------------------------------------------
 * The steps `crossrec ilm` runs (docs/ilm.md): BPR collaborative-filtering
 * vectors (cr_ilm_mf), the item encoder's phase 1 without a language model
 * (cr_ilm_phase1), the encoder and an adapter in front of a frozen decoder
 * LM (cr_ilm_phase2), its evaluation (cr_ilm_eval) and the whole study over
 * variants and seeds (cr_ilm_study). Each writes its files atomically into
 * the directory it is given, takes the context (threads set and restored;
 * log lines to its sink) and checks its options first (CR_ERR_ARG naming
 * the field). Progress of the two phases goes to the opts' callback, called
 * on the calling thread every log_every steps. Start every option struct
 * from its _default. */
typedef struct cr_next_item_metrics {
    int64_t users;
    double  hr5, hr10, ndcg5, ndcg10;
} cr_next_item_metrics;

typedef struct cr_mf_cfg {
    int      dim;         /* factors (default 32) */
    int      epochs;      /* passes over the training interactions (default 20) */
    float    lr;          /* SGD step (default 0.05) */
    float    reg;         /* L2 on the factors touched by a step (default 0.001) */
    float    min_rating;  /* interactions below this are not positives (default 0) */
    uint64_t seed;        /* default 1 */
} cr_mf_cfg;
CR_API void cr_mf_cfg_default(cr_mf_cfg *c);

typedef struct cr_qformer_cfg {
    int nq;        /* learned queries (default 8) */
    int layers;    /* (default 2) */
    int width;     /* W (default 64) */
    int heads;     /* NH, divides W (default 4) */
    int ffn;       /* F (default 4W) */
    int n_kv;      /* CF key/value tokens (default 4) */
    int d_cf;      /* D: the MF vectors' size (no default: from the MF file) */
    int vocab;     /* V including the three specials at V-3, V-2, V-1 */
    int max_text;  /* longest text in tokens, specials included (default 32) */
    int embed;     /* E: contrastive projection size (default 64) */
} cr_qformer_cfg;

typedef enum { CR_P1_ITC = 0, CR_P1_ITM, CR_P1_ITG, CR_P1_II, CR_P1_UI } cr_p1_loss;
#define CR_P1_NLOSS 5
CR_API const char *cr_p1_loss_name(int k); /* "itc", "itm", "itg", "ii", "ui"; "?" out of range */
/* Parse "itc,itm,itg,ii,ui" (any subset, any order) into weights 1 / 0;
 * an unknown name is CR_ERR_ARG naming it. */
CR_API cr_status cr_p1_parse_losses(const char *s, float w[CR_P1_NLOSS], cr_error *e);

typedef struct cr_phase1_report {
    int64_t step, steps;
    double  loss[CR_P1_NLOSS]; /* running means since the last report (NaN = not run) */
    float   lr;
    double  seconds;
} cr_phase1_report;

typedef struct cr_phase1_opts {
    const char *mf_path;     /* from `crossrec ilm mf` (required) */
    const char *data_dir;    /* ratings.csv, movies.csv, optional movies-extra.tsv */
    const char *out_dir;     /* tokenizer/, qformer.safetensors, metrics.json */
    cr_qformer_cfg model;    /* d_cf and vocab are filled in from the data */
    int      steps;          /* optimizer steps (default 600); 0 = ILM-rand: save the init */
    int      batch;          /* pairs per batch (default 32) */
    cr_optim_cfg optim;      /* AdamW, peak lr 1e-3, weight decay 0.05, 50 warmup steps,
                                then cosine to 0.1 lr; gradient norm clipped to 1 */
    float    weight[CR_P1_NLOSS]; /* default all 1 */
    int      bpe_vocab;      /* BPE trained on the training items' texts (default 2048) */
    double   held_frac;      /* items whose texts are held out (default 0.1) */
    int      eval_items;     /* held-out items ranked in retrieval (default 1000, <= all) */
    int      log_every;      /* reports (default 50) */
    int      ckpt_every;     /* checkpoints (default 0 = only at the end) */
    uint64_t seed;           /* default 1 */
    void   (*progress)(void *ctx, const cr_phase1_report *r);
    void    *ctx;
} cr_phase1_opts;

typedef struct cr_phase1_result {
    int     vocab, items, train_items, held_items, ii_pairs, ui_pairs, truncated;
    double  first[CR_P1_NLOSS], last[CR_P1_NLOSS]; /* first and last report's losses */
    double  recall1, recall10;                     /* held-out item -> text retrieval */
    double  recall1_init, recall10_init;           /* the same before training */
    int     eval_n;                                /* candidates ranked */
    double  seconds;
} cr_phase1_result;

CR_API void cr_phase1_opts_default(cr_phase1_opts *o);

typedef enum {
    CR_P2_DESCRIBE = 0, /* {item} -> its whole text */
    CR_P2_GENRE,        /* {item} -> its genres */
    CR_P2_YEAR,         /* {item} -> its year */
    CR_P2_DIRECTOR,     /* {item} -> its director */
    CR_P2_NEXT,         /* {user} + {history} -> the next item's title */
    CR_P2_SIMILAR       /* {item} -> the title of an item co-consumed with it */
} cr_p2_task;
#define CR_P2_NTASK 6
CR_API const char *cr_p2_task_name(int task); /* "describe", "genre", ...; "?" out of range */

typedef struct cr_phase2_report {
    int64_t step, steps;
    double  loss;          /* mean since the last report */
    float   lr;
    double  seconds;
} cr_phase2_report;

typedef struct cr_phase2_opts {
    const char *encoder;   /* phase-1 qformer.safetensors; NULL = the MLP baseline */
    const char *lm;        /* decoder file (cr_dec_open) */
    const char *tokenizer; /* the LM's tokenizer */
    const char *mf_path, *data_dir, *out_dir;
    const char *lm_text;   /* held-out text for the perplexity check (NULL = skip) */
    int      steps;        /* default 300 */
    int      batch;        /* sequences per step (default 8) */
    int      hist;         /* history items in {history} (default 3) */
    int      max_seq;      /* tokens per row (default 96, <= the LM's max_seq) */
    cr_optim_cfg optim;    /* AdamW, peak lr 1e-3, weight decay 0.01, 20 warmup steps, then
                              cosine to 0.1 lr; the global norm over encoder + adapter
                              clipped to 1 */
    int      mlp_nq;       /* MLP baseline: soft tokens per entity (default 8) */
    int      mlp_hidden;   /* (default 256) */
    float    task_w[CR_P2_NTASK]; /* sampling weights (default all 1) */
    double   held_frac;    /* phase 1's held-out share (default 0.1) */
    uint64_t seed;         /* phase 1's seed: the held-out items and the draws (default 1) */
    int      log_every;    /* default 50 */
    void   (*progress)(void *ctx, const cr_phase2_report *r);
    void    *ctx;
} cr_phase2_opts;

typedef struct cr_phase2_result {
    double   first_loss, last_loss;   /* first and last report */
    uint64_t lm_hash_before, lm_hash_after;
    double   lm_ppl_before, lm_ppl_after; /* NaN without lm_text */
    int64_t  trainable;
    int      truncated;
    double   seconds;
} cr_phase2_result;

CR_API void cr_phase2_opts_default(cr_phase2_opts *o);

typedef struct cr_ilm_eval_opts {
    int      users;      /* evaluated users, a seeded sample (default 200; 0 = all) */
    int      negatives;  /* never-rated candidates per user (default 49) */
    int      hist;       /* items in {history} (default 3) */
    int      max_seq;    /* tokens per row (default 96) */
    int      items;      /* held-out items for perplexity and genres (default 200; 0 = all) */
    int      batch;      /* rows per LM forward (default 16) */
    int      use_test;   /* 1: each user's last rating (default); 0: the one before */
    uint64_t seed;       /* users and candidates: the same lists for every model (default 7) */
} cr_ilm_eval_opts;

typedef struct cr_ilm_eval_result {
    cr_next_item_metrics lm;        /* candidates ranked by title likelihood */
    cr_next_item_metrics bpr, pop;  /* the same candidates, CF and popularity scores */
    int     per;                    /* candidates per user (1 + negatives) */
    double  desc_ppl;               /* held-out items' description perplexity */
    int64_t desc_tokens;
    int     desc_items;
    double  genre_acc, genre_chance; /* share of held-out items whose top genre is theirs */
    int     genre_items, n_genres;
    double  seconds;
} cr_ilm_eval_result;

CR_API void cr_ilm_eval_opts_default(cr_ilm_eval_opts *o);


/* Next-item quality of cr_ilm_mf: [0] the validation split, [1] the test
 * split, each for BPR and for popularity on the same candidates. */
typedef struct cr_ilm_mf_result {
    int64_t              interactions;
    int32_t              users, items;
    double               loss;         /* BPR loss of the last epoch */
    cr_next_item_metrics bpr[2], pop[2];
} cr_ilm_mf_result;

/* BPR on a time-ordered leave-one-out split of ratings (userId, movieId,
 * rating, timestamp), saved to out (safetensors), then evaluated among the
 * held-out item and `negatives` never-rated ones (1..100000). */
CR_API cr_status cr_ilm_mf(cr_ctx *ctx, const char *ratings, const char *out, const cr_mf_cfg *c,
                           int negatives, cr_ilm_mf_result *r, cr_error *e);
/* Phase 1: o->mf_path, o->data_dir and o->out_dir are required. */
CR_API cr_status cr_ilm_phase1(cr_ctx *ctx, const cr_phase1_opts *o, cr_phase1_result *r,
                               cr_error *e);
/* Phase 2: lm, tokenizer, mf_path, data_dir and out_dir are required;
 * encoder NULL trains the MLP baseline. The frozen LM's weights are hashed
 * before and after (a change is CR_ERR_INTERNAL). */
CR_API cr_status cr_ilm_phase2(cr_ctx *ctx, const cr_phase2_opts *o, cr_phase2_result *r,
                               cr_error *e);
/* Evaluate a phase-2 directory through its frozen LM. o->hist 0 = the
 * directory's; o->max_seq is always the directory's. */
CR_API cr_status cr_ilm_eval(cr_ctx *ctx, const char *dir, const cr_ilm_eval_opts *o,
                             cr_ilm_eval_result *r, cr_error *e);
/* The whole ILM study from its YAML (e.g. examples/movielens/ilm.yaml) into
 * out_dir: results.json, report.html and every run's files. Each finished
 * step is one log line. *table (may be NULL; free with cr_free) receives
 * the table of means and intervals; *seconds (may be NULL) the time taken. */
CR_API cr_status cr_ilm_study(cr_ctx *ctx, const char *config, const char *out_dir, char **table,
                              double *seconds, cr_error *e);
/* "1:15", "1:02:03": a duration for progress lines, as the library's own
 * progress lines print it. */
CR_API void      cr_meter_clock(char *buf, size_t n, double seconds);

/* ---- the item-language model --------------------------------------------------------
 * A trained ILM (crossrec ilm phase2 writes its directory): the Q-Former
 * over collaborative-filtering item vectors and the frozen decoder LM it
 * feeds. Items are named by their catalogue id (MovieLens movieId). One
 * cr_ilm serves one call at a time. */
typedef struct cr_ilm cr_ilm;

CR_API cr_status   cr_ilm_open(cr_ilm **out, const char *dir, cr_error *e);
CR_API void        cr_ilm_close(cr_ilm *m);
CR_API int64_t     cr_ilm_n_items(const cr_ilm *m);
/* The catalogue: item i's id and title (NULL when unknown), i in [0, n). */
CR_API int64_t     cr_ilm_item_id(const cr_ilm *m, int64_t i);
CR_API const char *cr_ilm_item_title(const cr_ilm *m, int64_t i);
/* The catalogue id whose title best matches a name a person typed, or -1. */
CR_API int64_t     cr_ilm_find(const cr_ilm *m, const char *name);
/* Recommend k items (ids, best first; scores: the frozen LM's mean
 * log-likelihood per title token, may be NULL) to a person who liked the
 * given items. *n_out may be below k for a small catalogue. An unknown
 * liked id is CR_ERR_NOT_FOUND naming it. */
CR_API cr_status   cr_ilm_recommend(cr_ctx *ctx, cr_ilm *m, const int64_t *liked, int n_liked,
                                    int k, int64_t *items, double *scores, int *n_out,
                                    cr_error *e);
/* One conversational turn: a line may name liked movies ("I liked Heat"),
 * ask for suggestions, both, or say "reset"; the conversation's state
 * lives in m. *reply: text (free with cr_free). */
CR_API cr_status   cr_ilm_chat(cr_ctx *ctx, cr_ilm *m, const char *line, char **reply,
                               cr_error *e);
typedef struct cr_chat_opts {
    int   k;          /* suggestions per answer (default 3) */
    int   shortlist;  /* nearest items re-ranked by the LM (default 30) */
    int   describe;   /* tokens the LM writes about the top pick (default 24; 0 = none) */
    float min_match;  /* fuzzy-match score a name needs (0..1, default 0.55) */
} cr_chat_opts;

CR_API void cr_chat_opts_default(cr_chat_opts *o);
/* cr_ilm_open with conversation options (cr_ilm_open uses the defaults). */
CR_API cr_status   cr_ilm_open_chat(cr_ilm **out, const char *dir, const cr_chat_opts *o,
                                    cr_error *e);
/* A whole conversation: one turn per line of in until its end or "quit",
 * each reply written to out (in and out are FILE *); prompt = 1 prints a
 * "> " before each line (for a terminal). */
CR_API cr_status   cr_ilm_chat_loop(cr_ctx *ctx, cr_ilm *m, void *in, void *out, int prompt,
                                    cr_error *e);

#ifdef __cplusplus
}
#endif
#endif /* CROSSREC_H */
