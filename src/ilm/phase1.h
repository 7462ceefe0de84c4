/*
 * phase1.h - phase 1 of the Item-Language Model: training the item encoder
 * (qformer.h) without a language model, on BLIP-2's three item-text losses
 * (contrastive ITC, matching ITM with hard negatives, item-grounded
 * generation ITG) and two interaction losses (item-item and user-item
 * InfoNCE). Batches alternate between item texts and interaction pairs.
 * The exact formulas are in docs/ilm.md. Nothing here prints: progress
 * goes through a callback.
 */
#ifndef CR_ILM_PHASE1_H
#define CR_ILM_PHASE1_H

#include "mf.h"
#include "qformer.h"

/* cr_p1_loss, CR_P1_NLOSS, cr_p1_loss_name and cr_p1_parse_losses are public (crossrec.h). */

/* An item-text batch: B distinct items. ids rows are [CLS] t1 .. tn [EOS]
 * padded to T (item_text.h makes them); u holds 2B uniforms in [0, 1)
 * that pick the ITM hard negatives (u[i] the text for item i, u[B + j] the
 * item for text j), so a batch is reproducible. */
typedef struct cr_p1_text_batch {
    int            B, T;
    const float   *cf;   /* (B, D) */
    const int32_t *ids;  /* (B, T) */
    const int32_t *len;  /* (B) */
    const float   *u;    /* (2B) */
} cr_p1_text_batch;

/* An interaction batch: B positive pairs (a_i, b_i), both through the
 * encoder (users as CR_QF_USER rows). Pair (i, j != i) is not used as a
 * negative when key_a[i] == key_a[j] or key_b[i] == key_b[j] (the same
 * user or item twice in a batch is not a negative of itself). */
typedef struct cr_p1_pair_batch {
    int            B;
    const float   *a, *b;         /* (B, D) */
    uint8_t        kind_a, kind_b;
    const int32_t *key_a, *key_b; /* (B) or NULL */
} cr_p1_pair_batch;

/* The loss computer: a workspace for up to 3*max_b sequences of max_text
 * tokens (ITM's positives and two sets of negatives) and the losses' own
 * buffers. The model's gradients must be allocated. */
typedef struct cr_phase1 {
    cr_qformer    *m;
    cr_qformer_ws  ws;
    int            max_b, max_text;
    float   *pq, *zq, *dzq, *pt, *zt, *dzt, *sq, *logits, *dlogits;
    float   *pool, *dpool, *small, *lm, *dlm, *lse, *cf3;
    double  *nrm_q, *nrm_t;
    int32_t *arg, *tgt, *neg_t, *neg_i, *ids3, *len3;
    uint8_t *excl, *kind2;
} cr_phase1;

cr_status cr_phase1_init(cr_phase1 *p, cr_qformer *m, int max_b, int max_text, cr_error *e);
void      cr_phase1_free(cr_phase1 *p);

/* Each function runs forward and backward for the losses whose weight is
 * > 0, adding weight * dL/dtheta into the model's gradient, and writes the
 * unweighted losses to loss[k] (NaN for losses not computed). ITM needs
 * ITC's similarities, so it runs ITC's forward even when ITC's weight is 0.
 * neg (2B, may be NULL) receives the sampled hard negatives: neg[i] the
 * text for item i, neg[B + j] the item for text j. */
void cr_phase1_text_losses(cr_phase1 *p, const cr_p1_text_batch *tb, const float *weight,
                           double *loss, int32_t *neg);
/* which is CR_P1_II or CR_P1_UI (selects the temperature). */
void cr_phase1_pair_loss(cr_phase1 *p, const cr_p1_pair_batch *pb, int which, float weight,
                         double *loss);

/* Item and text embeddings for retrieval: z_item (B, NQ, E) unit vectors
 * per query and z_text (B, E) the unit [CLS] projection, from one ITC
 * forward (item i's score for text j is max_k <z_item[i,k], z_text[j]>). */
void cr_phase1_embed(cr_phase1 *p, const cr_p1_text_batch *tb, float *z_item, float *z_text);

/* ---- the training run --------------------------------------------------------------- */

/* cr_phase1_report, _opts, _result and cr_phase1_opts_default are public (crossrec.h). */

/* What the training loop reads: CF tables, token rows per item (len 0 =
 * no text), the items whose texts may be trained on, and the interaction
 * pairs (item-item: two items one user rated consecutively; user-item: a
 * rating >= 4). */
typedef struct cr_phase1_data {
    int32_t        n_items, n_users, d;
    const float   *item_cf;     /* (n_items, d) */
    const float   *user_cf;     /* (n_users, d) */
    int            T;           /* token row stride */
    const int32_t *tok;         /* (n_items, T) [CLS] .. [EOS] rows */
    const int32_t *tok_len;     /* (n_items) */
    const int32_t *train_items; /* (n_train) */
    int32_t        n_train;
    const int32_t *ii;          /* (n_ii, 2) item, next item */
    int64_t        n_ii;
    const int32_t *ui;          /* (n_ui, 2) user, item */
    int64_t        n_ui;
} cr_phase1_data;

/* AdamW with warmup + cosine (cr_lr_at), gradient clipping; even steps
 * take an item-text batch, odd steps an interaction batch (item-item and
 * user-item, both in the same step), or every step one kind when the other
 * kind's losses are all off. Reports every o->log_every steps through
 * o->progress; with o->out_dir set, writes out_dir/qformer.safetensors
 * every o->ckpt_every steps (0 = never; cr_phase1_run saves at the end).
 * res->first/last get the first and last report's losses. */
cr_status cr_phase1_train(cr_qformer *m, const cr_phase1_data *d, const cr_phase1_opts *o,
                          cr_phase1_result *res, cr_error *e);
/* Item -> text retrieval among n items: each item's texts are ranked by
 * max_k cos(z_item[k], z_text); recall@k is the share whose own text ranks
 * in the top k (ties count against). */
cr_status cr_phase1_recall(cr_qformer *m, const cr_phase1_data *d, const int32_t *items,
                           int32_t n, int batch, double *r1, double *r10, cr_error *e);

/* Load the data, train the tokenizer, build the encoder, train it (unless
 * steps == 0: ILM-rand), measure retrieval and write out_dir/qformer.safetensors,
 * out_dir/tokenizer/ and out_dir/phase1.json atomically. A CF file whose
 * dimension differs from a non-zero o->model.d_cf is CR_ERR_SHAPE. */
cr_status cr_phase1_run(const cr_phase1_opts *o, cr_phase1_result *res, cr_error *e);

#endif /* CR_ILM_PHASE1_H */
