/*
 * crossrec/lm.h - part of the public API (include <crossrec.h>, which
 * includes every part in order): the decoder language model and its tokenizers.
 */
#ifndef CROSSREC_LM_H
#define CROSSREC_LM_H

#ifndef CROSSREC_H
#error "include <crossrec.h>, not its parts"
#endif

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


/* Pretrain a decoder on a text corpus from a YAML recipe (docs/lm.md) into
 * out_dir: model.safetensors, train_state.safetensors, tokens.bin,
 * metrics.json and, with train_tokenizer, tokenizer/. resume = 1 continues
 * from out_dir's train_state exactly (same thread count, same bits).
 * Progress lines go to the context's log; threads as the context says. *r
 * (may be NULL) receives the last step's figures. A recipe error is
 * CR_ERR_CONFIG naming the file, line and key. */
typedef struct cr_lm_train_result {
    int64_t step;                      /* steps done */
    int64_t n_train, n_valid;          /* tokens in each split */
    int32_t vocab;
    double  train_loss;                /* mean over the last logging interval */
    double  valid_loss, valid_ppl;     /* the last evaluation */
    double  tokens_per_s;              /* training tokens per second in this run */
} cr_lm_train_result;

CR_API cr_status cr_lm_pretrain(cr_ctx *ctx, const char *config, const char *out_dir, int resume,
                                cr_lm_train_result *r, cr_error *e);

/* Cross-entropy of a loaded LM on a text file, over consecutive windows of
 * seq_len tokens, each starting with the tokenizer's <|endoftext|> as BOS
 * when it has one (as training does). The LM must have been loaded with a
 * GPT-2 BPE tokenizer directory. */
typedef struct cr_lm_eval_opts {
    int     seq_len;     /* tokens per window, 2..context length; 0 = the context length [0] */
    int     batch;       /* windows per forward, 1..4096 [4] */
    int64_t max_windows; /* score this many evenly spaced windows; 0 = all [0] */
} cr_lm_eval_opts;

typedef struct cr_lm_eval_result {
    double  loss;        /* mean cross-entropy per scored token (nats); perplexity = exp(loss) */
    int64_t scored;      /* tokens scored */
    int64_t tokens;      /* tokens in the text */
} cr_lm_eval_result;

CR_API void      cr_lm_eval_opts_init(cr_lm_eval_opts *o);
CR_API cr_status cr_lm_eval(cr_ctx *ctx, cr_lm *lm, const char *text_path,
                            const cr_lm_eval_opts *o, cr_lm_eval_result *r, cr_error *e);

/* ---- tokenizers ------------------------------------------------------------------------
 * A tokenizer on its own: a GPT-2 byte-level BPE directory (encoder.json,
 * vocab.bpe) or a llama2.c tokenizer.bin (docs/tokenizers.md). Immutable
 * once loaded: safe to share between threads. */
typedef struct cr_tokenizer cr_tokenizer;

/* Flags of cr_tokenizer_encode, for a tokenizer.bin only (CR_ERR_ARG on a BPE). */
#define CR_TOK_BOS             1 /* prepend BOS, id 1 */
#define CR_TOK_EOS             2 /* append EOS, id 2 */
#define CR_TOK_NO_DUMMY_PREFIX 4 /* do not prepend the " " llama2.c adds to non-empty text */

/* path: a directory = a GPT-2 BPE, a file = a tokenizer.bin. */
CR_API cr_status cr_tokenizer_load(cr_tokenizer **out, const char *path, cr_error *e);
CR_API void      cr_tokenizer_free(cr_tokenizer *t);
CR_API int       cr_tokenizer_is_bpe(const cr_tokenizer *t);   /* 1 GPT-2 BPE, 0 tokenizer.bin */
CR_API int32_t   cr_tokenizer_vocab_size(const cr_tokenizer *t);
/* len bytes of text (NUL bytes allowed) to *ids (*n of them; free with cr_free). */
CR_API cr_status cr_tokenizer_encode(const cr_tokenizer *t, const char *text, size_t len,
                                     int flags, int32_t **ids, size_t *n, cr_error *e);
/* ids back to their bytes: *text (NUL-terminated, *len without the NUL;
 * free with cr_free). An id out of range is CR_ERR_ARG naming it. */
CR_API cr_status cr_tokenizer_decode(const cr_tokenizer *t, const int32_t *ids, size_t n,
                                     char **text, size_t *len, cr_error *e);

/* Learn a GPT-2-format byte-level BPE from a corpus file. */
typedef struct cr_tokenizer_train_opts {
    int32_t vocab_size;    /* 256 bytes + merges + <|endoftext|>, 257..1000000 [4096] */
    int64_t min_frequency; /* never merge a pair seen fewer times, >= 1 [2] */
} cr_tokenizer_train_opts;

CR_API void      cr_tokenizer_train_opts_init(cr_tokenizer_train_opts *o);
/* Writes out_dir/encoder.json and out_dir/vocab.bpe (created, atomically);
 * *vocab (may be NULL) receives the size reached, which is below
 * vocab_size when no pair is frequent enough. Deterministic. */
CR_API cr_status cr_tokenizer_train(cr_ctx *ctx, const char *corpus,
                                    const cr_tokenizer_train_opts *o, const char *out_dir,
                                    int32_t *vocab, cr_error *e);

#endif /* CROSSREC_LM_H */
