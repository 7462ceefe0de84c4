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

#ifdef __cplusplus
}
#endif
#endif /* CROSSREC_H */
