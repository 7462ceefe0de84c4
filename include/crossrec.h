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


/* ---- models: load, score, free ----------------------------------------------
 * A trained ranker (crossrec train writes DIR/model.safetensors). The file
 * carries its schema, vocabularies included, so rows are given as the text
 * of their feature columns, exactly as they appear in the training CSV. */
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

#ifdef __cplusplus
}
#endif
#endif /* CROSSREC_H */
