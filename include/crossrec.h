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

#define CR_VERSION "0.1.0"

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
    CR_ERR_INTERNAL   /* a bug: please report it */
} cr_status;

/* What went wrong, in words: "data.csv:12:3: expected a number in column
 * 'rating', got 'abc'". Functions taking a cr_error* accept NULL. */
typedef struct cr_error {
    cr_status status;
    char msg[1024];
} cr_error;

const char *cr_strerror(cr_status s);

/* ---- threads ------------------------------------------------------------ */

/* Number of threads for kernels and GEMM (0 = all cores). Results are
 * bit-identical for a given seed and thread count. */
void cr_set_threads(int n);
int  cr_get_threads(void);

/* ---- kernels and the CPU ------------------------------------------------------
 * The hot kernels are chosen once per process from the CPU's features:
 * scalar, avx2, avx512 or avx512bf16 (x86-64), scalar or neon (arm64). The
 * environment variable CROSSREC_ISA forces a lower set (docs/kernels.md). */
/* The set in use ("avx2", ...), and the CPU's model name. */
const char *cr_kernel_set_name(void);
const char *cr_cpu_name(void);
/* CR_OK, or why CROSSREC_ISA cannot be honoured (an unknown name, or the
 * CPU feature the set needs and lacks); a program may refuse to start on
 * it (the library alone falls back to the best set, with one warning). */
cr_status cr_kernels_check(cr_error *e);
/* "cpu:", "features:", "kernels:" (the set in use and its GEMM, bf16 and
 * int8 paths) and "kernel sets:" (each set, and what this CPU lacks for
 * the ones it cannot run) lines; f is a FILE *. */
void cr_kernels_print(void *f);


/* ---- models: load, score, free ----------------------------------------------
 * A trained ranker (crossrec train writes DIR/model.safetensors). The file
 * carries its schema, vocabularies included, so rows are given as the text
 * of their feature columns, exactly as they appear in the training CSV.
 * Loading packs the weights once for the scoring kernel (about the size of
 * the dense weights again); a row's scores are the same bits whatever else
 * is in its batch and whatever the thread count. */
typedef struct cr_model cr_model;

cr_status   cr_model_load(cr_model **out, const char *path, cr_error *e);
void        cr_model_free(cr_model *m);
/* Inputs: one per feature, in the model's feature order. */
int         cr_model_n_inputs(const cr_model *m);
const char *cr_model_input_column(const cr_model *m, int i); /* the CSV column it reads */
/* Outputs: one per served task head. */
int         cr_model_n_outputs(const cr_model *m);
const char *cr_model_output_name(const cr_model *m, int i);
int         cr_model_output_is_binary(const cr_model *m, int i);
/* Score n rows: values[r * n_inputs + i] is row r's text for input i ("" =
 * missing; multi-valent values joined by the feature's separator, e.g.
 * "Comedy|Drama"). scores (n, n_outputs): a probability for binary tasks,
 * a value for regression tasks. Safe to call from several threads at once
 * on one model. A value that is not what its feature expects is an error
 * naming the row and the column. */
cr_status   cr_model_score(const cr_model *m, int64_t n, const char *const *values,
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

/* Arithmetic of the dense layers' candidate part (the context part and
 * biases stay fp32). bf16 rounds weights and inputs to bfloat16 and sums
 * in fp32 (AVX-512 BF16 when the build has it, the same rounding in plain
 * C otherwise); int8 quantises weights per output row and inputs per row
 * (symmetric) and sums integer products (AVX-512 VNNI when available). */
typedef enum cr_precision { CR_PRECISION_FP32 = 0, CR_PRECISION_BF16 = 1, CR_PRECISION_INT8 = 2 } cr_precision;

#define CR_RANK_MAX_WEIGHTS 32
typedef struct cr_model_opts {
    cr_rank_formula formula;                     /* default weighted_sum */
    int   n_weights;                             /* 0: weight 1 on the first output only */
    char  weight_name[CR_RANK_MAX_WEIGHTS][64];  /* output names; outputs not listed weigh 0 */
    float weight[CR_RANK_MAX_WEIGHTS];
    cr_precision precision;                      /* default fp32 */
    int   max_pool;                              /* idle workspaces kept for reuse (default 16) */
} cr_model_opts;

void        cr_model_opts_defaults(cr_model_opts *o);
const char *cr_precision_name(cr_precision p);   /* "fp32", "bf16", "int8" */
const char *cr_rank_formula_name(cr_rank_formula f);
/* Load with options; unknown output names in the weights are an error
 * naming them. cr_model_load is this with the defaults. */
cr_status   cr_model_load_opts(cr_model **out, const char *path, const cr_model_opts *o,
                               cr_error *e);
/* "YYYYmmddTHHMMSSZ-<16 hex>": the file's mtime (UTC) and a hash of its
 * header (tensor names, shapes, offsets and metadata) and of up to 1 MiB
 * at each end of the tensor data, fixed at load. */
const char *cr_model_version(const cr_model *m);
const char *cr_model_path(const cr_model *m);
cr_precision cr_model_precision(const cr_model *m);
/* Separator of a multi-valent input ("A|B"), or 0 for a single-valued one. */
char        cr_model_input_sep(const cr_model *m, int i);
/* 1 if the input is a number (numeric or bucketized), else 0 (ids, bags). */
int         cr_model_input_is_number(const cr_model *m, int i);

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
cr_status cr_model_score_request(const cr_model *m, const cr_request *rq, cr_response *rs,
                                 cr_error *e);
/* The ranking formula alone over scores (n, n_outputs) of this model:
 * writes ranking (n) and order (n). */
cr_status   cr_model_rank(const cr_model *m, int64_t n, const float *scores, float *ranking,
                          int64_t *order, cr_error *e);

#ifdef __cplusplus
}
#endif
#endif /* CROSSREC_H */
