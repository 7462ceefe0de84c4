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

#ifdef __cplusplus
}
#endif
#endif /* CROSSREC_H */
