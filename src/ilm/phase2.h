/*
 * phase2.h - phase 2 of the Item-Language Model: item and user CF vectors
 * become soft tokens of a FROZEN decoder LM. The item encoder (the phase-1
 * Q-Former) gives NQ query outputs per entity and a linear adapter maps
 * each into the LM's input space; the baseline (ELM/CoLLM style) is a
 * two-layer MLP from the CF vector straight to NQ soft tokens. Prompts are
 * templates with {item}, {user} and {history} slots; the loss is the LM's
 * cross-entropy on the target tokens only. Only the encoder and the
 * adapter train: the LM runs in frozen mode and its weights are never
 * written (the run hashes them before and after). Nothing here prints.
 *
 * Legend: B sequences, T tokens, E entities (items or users) in a batch,
 * NQ soft tokens per entity, W Q-Former width, D CF size, H MLP hidden
 * width, C the LM's width, V the LM's vocabulary.
 */
#ifndef CR_ILM_PHASE2_H
#define CR_ILM_PHASE2_H

#include "mf.h"
#include "qformer.h"

#include "../data/bpe.h"
#include "../nn/decoder.h"
#include "../train/optim.h"

/* ---- the LM's tokenizer (prompts.c) ----------------------------------------------------
 * A GPT-2 BPE directory (encoder.json, vocab.bpe) or a llama2.c
 * tokenizer.bin (a file, or a directory holding one). bos/eos: the BPE's
 * "<|endoftext|>" for both (-1 if it has none), or 1 and 2 for llama2.c. */
typedef struct cr_p2_tok {
    cr_bpe  *bpe;
    cr_sp   *sp;
    int32_t  bos, eos, vocab;
} cr_p2_tok;

cr_status cr_p2_tok_open(cr_p2_tok *t, const char *path, cr_error *e);
void      cr_p2_tok_free(cr_p2_tok *t);
/* Plain text to ids: no BOS/EOS, no dummy prefix. *ids: cr_free. */
cr_status cr_p2_tok_encode(const cr_p2_tok *t, const char *s, size_t len, int32_t **ids,
                           size_t *n, cr_error *e);
/* Ids to text (BOS/EOS give nothing). *text: cr_free. */
cr_status cr_p2_tok_decode(const cr_p2_tok *t, const int32_t *ids, size_t n, char **text,
                           cr_error *e);

/* ---- tasks and prompts (prompts.c) ------------------------------------------------------ */
/* cr_p2_task, CR_P2_NTASK and cr_p2_task_name are public (crossrec.h). */
/* The prompt of a task, e.g. "The movie {item} is described as:". */
const char *cr_p2_template(int task);

/* One sequence: a template whose slots take soft tokens, then the target. */
typedef struct cr_p2_example {
    const char    *tmpl;    /* text with {item}, {user}, {history} (each at most once) */
    int32_t        item;    /* CF row for {item} (-1: no such slot) */
    int32_t        user;    /* CF row for {user} */
    const int32_t *hist;    /* CF item rows for {history}, oldest first, ", " between */
    int            n_hist;
    const char    *target;  /* scored continuation (NULL: prompt only) */
    int            eos;     /* end the target with the tokenizer's EOS (if it has one) */
} cr_p2_example;

/* A padded batch. Row b is BOS, the prompt's tokens with NQ soft positions
 * per slot entity, then the target's tokens; tgt[b, t] = ids[b, t + 1] for
 * the positions that predict a target token (from tstart - 1 to len - 2),
 * -1 everywhere else (prompt, soft tokens, padding). */
typedef struct cr_p2_batch {
    int      cap_B, cap_T, cap_E, nq;
    int      B, T, E;       /* rows, longest row, entities so far */
    int32_t *ids;           /* (cap_B, cap_T) token ids; -1 at soft positions; pad after len */
    int32_t *tgt;           /* (cap_B, cap_T) */
    int32_t *soft;          /* (cap_B, cap_T) e * NQ + q at soft positions, else -1 */
    int32_t *len;           /* (cap_B) */
    int32_t *tstart;        /* (cap_B) position of the target's first token (= len: none) */
    int32_t *ent;           /* (cap_E) CF rows */
    uint8_t *kind;          /* (cap_E) CR_QF_ITEM or CR_QF_USER */
    int      truncated;     /* targets cut to fit cap_T so far */
} cr_p2_batch;

cr_status cr_p2_batch_init(cr_p2_batch *b, int cap_B, int cap_T, int cap_E, int nq, cr_error *e);
void      cr_p2_batch_free(cr_p2_batch *b);
void      cr_p2_batch_clear(cr_p2_batch *b);
/* Fill a template and append it as a row. A target that does not fit is
 * cut (at least one target token is kept, b->truncated counts it); a
 * prompt that does not fit, a slot without its entity, an unknown slot or
 * a full batch is an error. */
cr_status cr_p2_batch_add(cr_p2_batch *b, const cr_p2_tok *tok, const cr_p2_example *x,
                          cr_error *e);

/* ---- the encoder + adapter (phase2.c) --------------------------------------------------- */
typedef enum { CR_P2_QFORMER = 0, CR_P2_MLP = 1 } cr_p2_kind;

/* Adapter tensors in one slab: for the Q-Former, "adapter.w" (C, W) and
 * "adapter.b" (C); for the MLP, "mlp.w1" (H, D), "mlp.b1" (H), "mlp.w2"
 * (NQ*C, H), "mlp.b2" (NQ*C). */
typedef struct cr_p2_model {
    int         kind;
    int         nq, C, D, W, H;
    cr_qformer  qf;          /* CR_P2_QFORMER only */
    cr_ptable   pt;
    float      *grad;        /* same offsets as pt.data */
    int         w, b, w1, b1, w2, b2;
} cr_p2_model;

/* The Q-Former from its checkpoint plus a linear adapter to width C. The
 * adapter's initial scale matches the LM's token embeddings (emb_rms, the
 * RMS of tok_emb), so soft tokens start as loud as words. Q-Former tensors
 * off the query path (text branch, heads) are flagged frozen. */
cr_status cr_p2_model_qformer(cr_p2_model *m, const char *qformer_path, int C, float emb_rms,
                              uint64_t seed, cr_error *e);
/* The MLP baseline: D -> H (GELU) -> NQ*C. */
cr_status cr_p2_model_mlp(cr_p2_model *m, int D, int nq, int H, int C, float emb_rms,
                          uint64_t seed, cr_error *e);
void      cr_p2_model_free(cr_p2_model *m);
void      cr_p2_model_zero_grad(cr_p2_model *m);
/* Trainable floats (adapter + Q-Former tensors that are not frozen). */
int64_t   cr_p2_model_trainable(const cr_p2_model *m);
/* dir/adapter.safetensors (the adapter and its sizes, plus meta_kv pairs)
 * and, for the Q-Former kind, dir/qformer.safetensors; atomic. */
cr_status cr_p2_model_save(const cr_p2_model *m, const char *dir, const char *const *meta_kv,
                           int n_meta, cr_error *e);
cr_status cr_p2_model_load(cr_p2_model *m, const char *dir, cr_error *e);

/* Soft tokens for E entities. */
typedef struct cr_p2_enc_ws {
    int            cap_E, E;  /* capacity; the last forward's entities */
    cr_qformer_ws  q;        /* Q-Former kind */
    float         *hpre, *h; /* (cap_E, H) MLP kind */
    float         *dhpre;    /* (cap_E, H) */
    float         *soft;     /* (cap_E, NQ, C) */
    float         *dsoft;    /* (cap_E, NQ, C): the caller adds dL/dsoft */
    float         *dh;       /* (cap_E, H) */
    float         *cf;       /* (cap_E, D) the last forward's input */
} cr_p2_enc_ws;

cr_status cr_p2_enc_ws_init(cr_p2_enc_ws *w, const cr_p2_model *m, int cap_E, cr_error *e);
void      cr_p2_enc_ws_free(cr_p2_enc_ws *w);
/* cf (E, D), kind (E) -> w->soft; zeroes w->dsoft. */
void      cr_p2_encode(const cr_p2_model *m, cr_p2_enc_ws *w, const float *cf,
                       const uint8_t *kind, int E);
/* Backward of the last cr_p2_encode from w->dsoft into m->grad and the
 * Q-Former's gradient (allocated by the model constructors). */
void      cr_p2_encode_backward(cr_p2_model *m, cr_p2_enc_ws *w);

/* ---- one batch through the frozen LM (phase2.c) ------------------------------------------ */
typedef struct cr_p2_step {
    cr_p2_enc_ws ew;
    cr_dec_ws    dws;        /* BACKWARD | FROZEN when training, else inference */
    float       *emb, *demb; /* (cap_B, cap_T, C) */
    float       *cf;         /* (cap_E, D) */
    int32_t     *ids, *tgt;  /* (cap_B, cap_T) the batch packed to its own T */
    int          train;
} cr_p2_step;

cr_status cr_p2_step_init(cr_p2_step *s, const cr_p2_model *m, const cr_decoder *lm, int cap_B,
                          int cap_T, int cap_E, int train, cr_error *e);
void      cr_p2_step_free(cr_p2_step *s);
/* Encode the batch's entities (rows of item_cf / user_cf), write the input
 * embeddings (token rows from the LM, soft tokens at the slots) and run the
 * LM; *loss is the mean cross-entropy over the target tokens. With
 * backward (a training step), the gradient flows through the frozen LM
 * into the soft tokens and on into m->grad and the Q-Former's gradient
 * (added: zero them first). Afterwards s->dws.logits holds (B, T, V). */
cr_status cr_p2_forward(cr_p2_model *m, cr_p2_step *s, const cr_decoder *lm,
                        const cr_p2_batch *b, const float *item_cf, const float *user_cf,
                        int backward, double *loss, cr_error *e);
/* Per-row sum of target log-probabilities and target counts of the last
 * forward (for ranking candidates by likelihood). */
void      cr_p2_row_logprob(const cr_p2_step *s, const cr_p2_batch *b, int V, double *sum,
                            int32_t *count);

/* FNV-1a over every weight of the LM (the bits, in table order). */
uint64_t  cr_p2_lm_hash(const cr_decoder *lm);
/* RMS of the LM's token embedding rows (the adapter's initial scale). */
float     cr_p2_emb_rms(const cr_decoder *lm);
/* Perplexity of the LM on the last `bytes` bytes of a text file, in up to
 * `windows` windows of T tokens (BOS first when the tokenizer has one). */
cr_status cr_p2_lm_ppl(const cr_decoder *lm, const cr_p2_tok *tok, const char *path,
                       size_t bytes, int T, int windows, double *ppl, cr_error *e);

/* ---- the data (phase2_tasks.c) ----------------------------------------------------------- */
#define CR_P2_MAX_GENRES 32
typedef struct cr_p2_data {
    cr_mf            mf;
    int64_t         *raw_user, *raw_item;
    cr_interactions  x;            /* the same ratings as the MF file, same dense ids */
    cr_loo_split     split;
    char           **text;         /* (n_items) the phase-1 text, or NULL */
    char           **title;        /* (n_items) "Toy Story (1995)" */
    char           **genres;       /* (n_items) "Adventure, Animation" or NULL */
    char           **director;     /* (n_items) or NULL */
    int32_t         *year;         /* (n_items) 0 = unknown */
    uint32_t        *gmask;        /* (n_items) bit g = genre g */
    int              n_genres;
    char             genre[CR_P2_MAX_GENRES][24];
    uint8_t         *held;         /* (n_items) 1 = text held out (phase 1's rule) */
    int32_t         *held_items;   /* (n_held) in phase 1's order */
    int32_t          n_held, n_text;
    int64_t         *pop;          /* (n_items) training interactions */
    int32_t         *tr_users;     /* users with at least 2 training interactions */
    int32_t          n_tr_users;
} cr_p2_data;

/* Load ratings (data_dir/ratings.csv), the MF file (whose raw ids must be
 * the ratings' own), the texts and their fields (movies.csv,
 * movies-extra.tsv) and hold out phase 1's items: those with a text,
 * shuffled by cr_rng_seed(seed), the first round(held_frac * n) of them. */
cr_status cr_p2_data_load(cr_p2_data *d, const char *data_dir, const char *mf_path,
                          double held_frac, uint64_t seed, cr_error *e);
void      cr_p2_data_free(cr_p2_data *d);
/* Training positions of user u: x.item[user_off[u] .. end) with the valid
 * and test interactions left out. */
int64_t   cr_p2_train_end(const cr_p2_data *d, int32_t u);
/* Draw one training example of a task (targets are never held-out items'
 * texts). buf (cap bytes) receives the target text, hist (max_hist) the
 * history. Returns 0 when this draw found nothing usable (draw again). */
int       cr_p2_draw(const cr_p2_data *d, int task, int max_hist, cr_rng *r,
                     cr_p2_example *x, int32_t *hist, char *buf, size_t cap);

/* ---- the run (phase2.c) ---------------------------------------------------------------------- */

/* cr_phase2_report, _opts, _result and cr_phase2_opts_default are public (crossrec.h). */

/* Fill b with o->batch rows, tasks drawn by o->task_w (a draw that finds
 * nothing usable, e.g. an item without a director, is drawn again). hist
 * holds o->hist ids. */
cr_status cr_p2_fill_batch(cr_p2_batch *b, const cr_p2_tok *tok, const cr_p2_data *d,
                           const cr_phase2_opts *o, cr_rng *r, int32_t *hist, cr_error *e);
/* A JSON number (%.6g), or null for NaN. */
void      cr_p2_jnum(char out[32], double v);
/* The loop on loaded parts: AdamW (warmup + cosine) over the adapter and
 * the Q-Former, the global gradient norm clipped, tasks drawn per row by
 * task_w. The LM is only read. */
cr_status cr_phase2_train(cr_p2_model *m, const cr_decoder *lm, const cr_p2_tok *tok,
                          const cr_p2_data *d, const cr_phase2_opts *o, cr_phase2_result *r,
                          cr_error *e);
/* Load everything, hash the LM (and measure its perplexity on lm_text),
 * train, hash and measure again, write out_dir/adapter.safetensors (+
 * qformer.safetensors) and out_dir/phase2.json. A changed hash or
 * perplexity is CR_ERR_INTERNAL. */
cr_status cr_phase2_run(const cr_phase2_opts *o, cr_phase2_result *r, cr_error *e);

/* Everything a trained phase-2 directory names, loaded: the model, the
 * LM (mapped or loaded read-only use), its tokenizer and the data, with
 * the held-out items of the seed it was trained with. */
typedef struct cr_p2_bundle {
    cr_p2_model m;
    cr_decoder  lm;
    cr_p2_tok   tok;
    cr_p2_data  d;
    int         hist, max_seq;
} cr_p2_bundle;
cr_status cr_p2_bundle_open(cr_p2_bundle *b, const char *dir, cr_error *e);
void      cr_p2_bundle_free(cr_p2_bundle *b);

#endif /* CR_ILM_PHASE2_H */
