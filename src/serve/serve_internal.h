/*
 * serve_internal.h - what the files of src/serve share about a loaded
 * model: the struct behind the public cr_model handle, its pool of request
 * workspaces, and the ranking formula. Not part of the public API; nothing
 * outside src/serve includes it.
 */
#ifndef CR_SERVE_INTERNAL_H
#define CR_SERVE_INTERNAL_H

#include "crossrec.h"

#include "../data/config.h"
#include "../rank/ranker.h"

#include <pthread.h>

/* Candidates per forward: a request with more runs in chunks on one
 * workspace, the context part computed once. */
#define CR_REQ_CHUNK 256

/* One thread's state for a request: the rank-layer workspace and the
 * encoded context row and candidate rows. Kept in the model's pool. */
typedef struct cr_req_slot {
    cr_req_ws *ws;
    uint8_t   *is_ctx;         /* (n_slots) */
    cr_batch   ctx, cand;      /* 1 row; CR_REQ_CHUNK rows (buffers owned here) */
    int64_t   *ctx_off, *cand_off; /* (n_multi, 2) and (n_multi, CR_REQ_CHUNK + 1) */
    int32_t  **ctx_ids, **cand_ids; /* [n_multi] grown as needed */
    size_t    *ctx_cap, *cand_cap;
    cr_column *cols;           /* (2 n_features) a text request as columns: context, candidates */
    float     *pred;           /* (n_heads, CR_REQ_CHUNK) */
    void      *sort;           /* (sort_cap) pairs for the order */
    size_t     sort_cap;
    struct cr_req_slot *next;  /* pool list */
} cr_req_slot;

struct cr_model {
    cr_ranker   *r;
    cr_schema    s;
    char         path[1024];
    int          n_out;
    int          out_head[CR_MODEL_MAX_HEADS];
    /* requests */
    int          n_slots;
    int         *feat_slot;    /* (n_features) slot of each input */
    cr_req_plan *plan;
    cr_precision precision;
    cr_rank_formula formula;
    float        rank_w[CR_MODEL_MAX_HEADS]; /* per output */
    char         version[64];
    pthread_mutex_t pool_mu;
    cr_req_slot *pool;         /* idle slots */
    int          n_pool, max_pool;
};

/* ---- encoding (encode.c) ---------------------------------------------------------
 * Input fi of rows [r0, r0 + B) of col into rows [0, B) of b: an id, a
 * bucket, a bag (off: B + 1 offsets; ids[q]/cap[q] grow) or a transformed
 * number. at says how errors name a row; missing (may be NULL) counts
 * missing values. */
typedef enum cr_enc_at { CR_ENC_ROW, CR_ENC_CANDIDATE, CR_ENC_CONTEXT } cr_enc_at;
cr_status cr_encode_input(const cr_model *m, int fi, const cr_column *col, int64_t r0, int B,
                          cr_enc_at at, cr_batch *b, int64_t *off, int32_t **ids, size_t *cap,
                          int64_t *missing, cr_error *e);
/* Argument checks of c, n rows of input i; what names its array in the
 * message ("columns", "candidates"). */
cr_status cr_check_column(const cr_model *m, const char *what, int i, int64_t n,
                          const cr_column *c, cr_error *e);

/* Every weight and table entry finite (a file with a NaN would answer
 * every request with null scores); the error names the file and tensor. */
cr_status cr_model_check_finite(const cr_model *m, cr_error *e);
/* Set up the request side of a freshly loaded model (model_api.c calls it). */
cr_status cr_model_request_init(cr_model *m, const cr_model_opts *o, cr_error *e);
void      cr_model_request_free(cr_model *m);

#endif /* CR_SERVE_INTERNAL_H */
