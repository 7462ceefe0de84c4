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

/* Every weight and table entry finite (a file with a NaN would answer
 * every request with null scores); the error names the file and tensor. */
cr_status cr_model_check_finite(const cr_model *m, cr_error *e);
/* Set up the request side of a freshly loaded model (model_api.c calls it). */
cr_status cr_model_request_init(cr_model *m, const cr_model_opts *o, cr_error *e);
void      cr_model_request_free(cr_model *m);

#endif /* CR_SERVE_INTERNAL_H */
