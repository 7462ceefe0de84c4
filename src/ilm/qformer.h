/*
 * qformer.h - the Item-Language Model's item encoder: a BLIP-2 Q-Former
 * whose NQ learned queries cross-attend to an item's (or a user's)
 * collaborative-filtering vector, projected into n_kv key/value tokens, and
 * share self-attention with a small text encoder/decoder. Forward and
 * backward by hand over one parameter slab; the phase-1 losses
 * (phase1.h) and, later, the adapter into a frozen decoder LM read the
 * query outputs (B, NQ, W) and hand back their gradient. docs/ilm.md has
 * the architecture, the masks and the math.
 *
 * Legend: B sequences, NQ queries, T text tokens (0..max_text), S = NQ + T,
 * W width, NH heads, F feed-forward width, NKV CF tokens, D CF vector size,
 * V vocabulary (tokenizer + 3 specials), E contrastive embedding size.
 */
#ifndef CR_ILM_QFORMER_H
#define CR_ILM_QFORMER_H

#include "../core/core.h"

/* cr_qformer_cfg is public (crossrec.h). */

/* The defaults (crossrec.h); d_cf and vocab are left 0 for the caller. */
void      cr_qformer_cfg_default(cr_qformer_cfg *c);
/* Every field in range (CR_ERR_ARG naming the field otherwise). */
cr_status cr_qformer_cfg_check(const cr_qformer_cfg *c, cr_error *e);

/* The three specials of the text branch: a text is stored as
 * [CLS] t1 .. tn [EOS]; forward puts [CLS] (ITC, ITM) or [DEC] (ITG, as
 * BLIP-2's decoder token) at position 0, whatever the caller stored. */
#define CR_QF_CLS(c) ((c)->vocab - 3)
#define CR_QF_DEC(c) ((c)->vocab - 2)
#define CR_QF_EOS(c) ((c)->vocab - 1)

/* Self-attention masks (cr_qf_mask_fill): the values are the kernel's modes. */
typedef enum { CR_QF_ITC = 0, CR_QF_ITM = 1, CR_QF_ITG = 2 } cr_qf_mode;

/* Which CF table a row's vector comes from; a learned type vector is added
 * to its key/value tokens ("users are special items"). */
enum { CR_QF_ITEM = 0, CR_QF_USER = 1 };

/* Per-layer tensors: X(field, rows, cols) with 0 cols for a vector.
 * Self-attention, its LayerNorm and output projection are shared by the two
 * streams (BLIP-2); the feed-forward block, with its LayerNorm, is separate
 * for the query stream (q) and the text stream (t), also as in BLIP-2. */
#define CR_QF_LAYER_TENSORS(X)                                                \
    X(ln1_w, W, 0) X(ln1_b, W, 0) X(qkv_w, 3 * W, W) X(qkv_b, 3 * W, 0)       \
    X(proj_w, W, W) X(proj_b, W, 0)                                           \
    X(lnc_w, W, 0) X(lnc_b, W, 0) X(cq_w, W, W) X(cq_b, W, 0)                 \
    X(ckv_w, 2 * W, W) X(ckv_b, 2 * W, 0) X(co_w, W, W) X(co_b, W, 0)         \
    X(ln2q_w, W, 0) X(ln2q_b, W, 0) X(fc1q_w, F, W) X(fc1q_b, F, 0)           \
    X(fc2q_w, W, F) X(fc2q_b, W, 0)                                           \
    X(ln2t_w, W, 0) X(ln2t_b, W, 0) X(fc1t_w, F, W) X(fc1t_b, F, 0)           \
    X(fc2t_w, W, F) X(fc2t_b, W, 0)

/* Model-wide tensors: X(field, rows, cols). */
#define CR_QF_TENSORS(X)                                                      \
    X(query, NQ, W) X(cf_w, NKV * W, D) X(cf_b, NKV * W, 0) X(cf_type, 2, W)  \
    X(cf_ln_w, W, 0) X(cf_ln_b, W, 0) X(tok_emb, V, W) X(pos_emb, TM, W)      \
    X(lnf_w, W, 0) X(lnf_b, W, 0) X(proj_item, E, W) X(proj_text, E, W)       \
    X(itm_w, 1, W) X(itm_b, 1, 0) X(logit_scale, 3, 0)

/* logit_scale holds log(1/temperature) for ITC, item-item and user-item. */
enum { CR_QF_SCALE_ITC = 0, CR_QF_SCALE_II = 1, CR_QF_SCALE_UI = 2 };

#define CR_QF_FIELD_(f, r, c) int f;
typedef struct cr_qf_layer_idx { CR_QF_LAYER_TENSORS(CR_QF_FIELD_) } cr_qf_layer_idx;
typedef struct cr_qf_idx { CR_QF_TENSORS(CR_QF_FIELD_) } cr_qf_idx;
#undef CR_QF_FIELD_

typedef struct cr_qformer {
    cr_qformer_cfg   c;
    cr_ptable        pt;     /* names: "query", "layers.0.qkv_w", ... */
    float           *grad;   /* same offsets as pt.data; NULL until cr_qformer_grad_alloc */
    cr_qf_idx        ix;
    cr_qf_layer_idx *lx;     /* (layers) */
} cr_qformer;

/* Register and allocate the parameters and initialise them: weights
 * N(0, 0.02), biases 0, LayerNorm gains 1, logit scales log(1/0.07). */
cr_status cr_qformer_init(cr_qformer *m, const cr_qformer_cfg *c, uint64_t seed, cr_error *e);
cr_status cr_qformer_grad_alloc(cr_qformer *m, cr_error *e);
void      cr_qformer_zero_grad(cr_qformer *m);
void      cr_qformer_free(cr_qformer *m);
/* Parameter pointer by index (m->ix.query, m->lx[l].qkv_w, ...). */
float    *cr_qformer_p(const cr_qformer *m, int idx);
float    *cr_qformer_g(const cr_qformer *m, int idx);

/* Checkpoint: every tensor, and the config in __metadata__ (format
 * "crossrec.qformer"), extra metadata pairs appended (may be NULL/0).
 * Written atomically. Load rebuilds the model from the metadata and checks
 * every tensor's shape. */
cr_status cr_qformer_save(const cr_qformer *m, const char *path, const char *const *meta_kv,
                          int n_meta, cr_error *e);
cr_status cr_qformer_load(cr_qformer *m, const char *path, cr_error *e);

/* Activations for batches of up to max_rows sequences and max_text tokens;
 * one forward's values stay until the next forward. Stream-major rows: the
 * B*NQ query rows first (row b*NQ + i), then the B*T text rows
 * (B*NQ + b*T + t). */
typedef struct cr_qformer_ws {
    int    max_rows, max_text;
    int    B, T;              /* the last forward's shape */
    int    mode;
    float *slab;
    float *out;               /* (B*NQ + B*T, W) final-LayerNorm outputs */
    float *dout;              /* the same shape: the caller adds dL/dout here */
    /* caches (qformer.c lays them out) */
    float *mask, *kv0, *kv, *kv_m, *kv_r, *lnf_m, *lnf_r;
    float *cf;                /* (B, D) copy of the last forward's CF vectors */
    float **xin, **ln1, **ln1_m, **ln1_r, **qkv, **att, **ao, **x1, **lnc, **lnc_m, **lnc_r;
    float **cq, **ckv, **catt, **co, **x2, **ln2, **ln2_m, **ln2_r, **h, **g;
    /* backward scratch */
    float *dres, *d1, *d2, *dF, *dF2, *dkv, *dckv, *scr;
    int32_t *ids;             /* (max_rows, max_text) with position 0 replaced */
    int32_t *len;             /* (max_rows) */
    uint8_t *kind;            /* (max_rows) */
} cr_qformer_ws;

cr_status cr_qformer_ws_init(cr_qformer_ws *w, const cr_qformer *m, int max_rows, int max_text,
                             cr_error *e);
void      cr_qformer_ws_free(cr_qformer_ws *w);

/* Forward B sequences. cf: (B, D) CF vectors; kind: (B) CR_QF_ITEM or
 * CR_QF_USER (NULL = all items); ids: (B, T) token rows of stride T
 * (position 0 is overwritten by the mode's special, ids at t >= len[b] are
 * ignored); len: (B) valid tokens, 1..T (ignored when T = 0). T = 0 runs
 * the queries alone (in ITC mode that is the item branch exactly, since
 * queries never see text there). Zeroes w->dout. */
void cr_qformer_forward(const cr_qformer *m, cr_qformer_ws *w, const float *cf,
                        const uint8_t *kind, const int32_t *ids, const int32_t *len, int B,
                        int T, cr_qf_mode mode);
/* Query outputs (B, NQ, W) and text outputs (B, T, W) of the last forward. */
float *cr_qformer_query_out(const cr_qformer_ws *w);
float *cr_qformer_text_out(const cr_qformer *m, const cr_qformer_ws *w);
/* Backward of the last forward from w->dout: adds every parameter's
 * gradient into m->grad, and dL/dcf into dcf (B, D) when not NULL. */
void cr_qformer_backward(cr_qformer *m, cr_qformer_ws *w, float *dcf);

/* Helpers used by forward and backward (qformer.c), shared with
 * qformer_backward.c. */
void cr_qf_pack(float *seq, const float *sm, int B, int NQ, int T, int C);
void cr_qf_unpack(float *sm, const float *seq, int B, int NQ, int T, int C);

#endif /* CR_ILM_QFORMER_H */
