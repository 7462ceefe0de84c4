/*
 * mf.h - collaborative-filtering embeddings for the Item-Language Model:
 * matrix factorisation for implicit feedback trained with BPR, on a
 * time-ordered leave-one-out split, with next-item HR@k / NDCG@k over a
 * fixed candidate list per user so their quality is known before anything
 * is built on them. Users and items are plain vectors; nothing here knows
 * about text.
 */
#ifndef CR_ILM_MF_H
#define CR_ILM_MF_H

#include "../core/core.h"

/* Interactions in time order per user, with dense ids. */
typedef struct cr_interactions {
    int32_t  n_users, n_items;
    int64_t  n;           /* interactions */
    int64_t *user_off;    /* (n_users + 1): user u's items are item[user_off[u] .. user_off[u+1]) in time order */
    int32_t *item;        /* (n) */
    float   *rating;      /* (n) */
    int64_t *raw_user;    /* (n_users) original ids */
    int64_t *raw_item;    /* (n_items) original ids */
} cr_interactions;

/* Read a ratings file in the GroupLens layout (userId,movieId,rating,timestamp;
 * CSV or TSV by extension). Ties in time keep file order. */
cr_status cr_interactions_load(cr_interactions *x, const char *path, cr_error *e);
void      cr_interactions_free(cr_interactions *x);

/* Leave-one-out by time: a user's last interaction is test, the one before
 * it valid, the rest train (users with fewer than 3 keep all as train and
 * are not evaluated). Positions are indices into x->item. */
typedef struct cr_loo_split {
    int64_t *test_pos;    /* (n_users) or -1 */
    int64_t *valid_pos;   /* (n_users) or -1 */
} cr_loo_split;
cr_status cr_loo_split_make(cr_loo_split *s, const cr_interactions *x, cr_error *e);
void      cr_loo_split_free(cr_loo_split *s);

/* cr_mf_cfg and cr_mf_cfg_default are public (crossrec.h). */

typedef struct cr_mf {
    int32_t n_users, n_items;
    int     dim;
    float  *user;         /* (n_users, dim) */
    float  *item;         /* (n_items, dim) */
    float  *item_bias;    /* (n_items) */
} cr_mf;

/* BPR (Rendle et al. 2009): for a training pair (u, i) and an item j the
 * user never interacted with in training, ascend log sigmoid(x_ui - x_uj)
 * with x_ui = <p_u, q_i> + b_i. Deterministic for a seed (single thread:
 * the updates are sequential by definition). *train_loss receives the last
 * epoch's mean BPR loss (may be NULL). */
cr_status cr_mf_train(cr_mf *m, const cr_interactions *x, const cr_loo_split *s,
                      const cr_mf_cfg *c, double *train_loss, cr_error *e);
void      cr_mf_free(cr_mf *m);

/* Next-item evaluation: for each evaluated user, the held-out item (test or
 * valid) among n_neg items the user never interacted with, sampled
 * uniformly with a fixed seed (the same list for every model compared).
 * score(u, i) comes from the model, or from popularity (training counts)
 * if m is NULL. Ties count against the held-out item. The metrics,
 * cr_next_item_metrics, are public (crossrec.h). */
cr_status cr_mf_evaluate(const cr_mf *m, const cr_interactions *x, const cr_loo_split *s,
                         int use_test, int n_neg, uint64_t seed, cr_next_item_metrics *out,
                         cr_error *e);

/* Save as safetensors: "user" (n_users, dim), "item" (n_items, dim),
 * "item_bias", "raw_user" (I64), "raw_item" (I64); metadata format
 * "crossrec.mf". Load checks all of it. */
cr_status cr_mf_save(const cr_mf *m, const cr_interactions *x, const char *path, cr_error *e);
/* The one path from a ratings file to saved vectors (cr_ilm_mf, the ILM
 * study): load, split leave-one-out, train, save to out. log (may be NULL)
 * gets one line with the counts before training. On success the caller
 * frees x, s and m; on error nothing is left to free. */
cr_status cr_mf_fit_file(const char *ratings, const char *out, const cr_mf_cfg *c, FILE *log,
                         cr_interactions *x, cr_loo_split *s, cr_mf *m, double *loss,
                         cr_error *e);
cr_status cr_mf_load(cr_mf *m, int64_t **raw_user, int64_t **raw_item, const char *path,
                     cr_error *e);

#endif /* CR_ILM_MF_H */
