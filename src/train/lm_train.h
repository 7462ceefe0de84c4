/*
 * lm_train.h - pretraining the decoder language model on a text corpus:
 * the YAML recipe, the corpus as a cached stream of token ids split by
 * position into training and validation, the AdamW loop with warmup +
 * cosine and clipping, atomic checkpoints that resume bit for bit, and
 * perplexity on held-out text. Prints only to the FILE* it is given.
 * docs/lm.md has the recipe and every key.
 *
 * Legend: B sequences per batch, T tokens per sequence, N tokens in a
 * stream, V vocabulary.
 */
#ifndef CR_LM_TRAIN_H
#define CR_LM_TRAIN_H

#include "../core/core.h"
#include "../data/bpe.h"
#include "../nn/decoder.h"
#include "optim.h"

#define CR_LM_PATH 1024

/* The recipe (crossrec lm train --config F.yaml). Relative paths in the
 * file are relative to the file. */
typedef struct cr_lm_cfg {
    char       corpus[CR_LM_PATH];     /* a UTF-8 text file */
    char       tokenizer[CR_LM_PATH];  /* a GPT-2 BPE directory, or "" with train_vocab */
    int        train_vocab;            /* > 0: learn a BPE of this size into OUT/tokenizer */
    cr_dec_cfg model;                  /* vocab comes from the tokenizer */
    int        batch, seq_len;         /* B, T */
    int64_t    steps;
    cr_optim_cfg opt;                  /* AdamW, warmup then cosine, clipped (optim.h) */
    uint64_t   seed;
    int        threads;                /* 0 = all cores; set by the entry point (cr_lm_pretrain)
                                        * when its context leaves threads 0, never here */
    int64_t    eval_every;             /* steps; 0 = only at the end */
    int        eval_batches;           /* 0 = the whole validation split */
    int64_t    checkpoint_every;       /* steps; 0 = only at the end */
    int64_t    log_every;              /* steps between progress lines */
    double     valid_frac;             /* the last fraction of tokens, by position (0.05) */
} cr_lm_cfg;

void      cr_lm_cfg_default(cr_lm_cfg *c);
/* Read a recipe; unknown keys, missing required ones and absurd sizes are
 * CR_ERR_CONFIG naming file:line:col and the key. The model section is
 * checked with the decoder's own rules once the vocabulary is known. */
cr_status cr_lm_cfg_load(cr_lm_cfg *c, const char *path, cr_error *e);
/* The same from text; base_dir resolves relative paths ("" = as given). */
cr_status cr_lm_cfg_parse(cr_lm_cfg *c, const char *text, const char *name,
                          const char *base_dir, cr_error *e);

/* ---- the corpus as token ids ------------------------------------------------------
 * The id of "<|endoftext|>" in a BPE, or -1. Training puts it first in
 * every sequence (the BOS), so "BOS + prompt" at generation time looks like
 * training; without one, sequences are plain windows of the stream. */
int32_t   cr_lm_bos(const cr_bpe *b);
/* Tokenise the corpus, or read ids cached in cache_path (NULL = no cache)
 * when its header matches the corpus (size and FNV-1a hash) and the
 * tokenizer (vocabulary size and hash of its two files). The cache is a
 * small binary file: magic "CRLMTOK\0", version, V, N, corpus size and
 * hash, tokenizer hash, then N int32 ids; written atomically. *ids: free
 * with cr_free. */
cr_status cr_lm_corpus_ids(const char *corpus, const cr_bpe *b, const char *tok_dir,
                           const char *cache_path, int32_t **ids, size_t *n, cr_error *e);
/* Split a stream of n tokens by position: the first n_train for training,
 * the rest (the last valid_frac, rounded down) for validation. */
size_t    cr_lm_split(size_t n, double valid_frac);

/* One window of the stream as a sequence of T inputs and targets: with a
 * BOS, inputs = BOS, s[0..T-2] and targets = s[0..T-1] (T stream tokens);
 * without, inputs = s[0..T-1], targets = s[1..T] (T + 1). */
int       cr_lm_window_tokens(int T, int32_t bos);
void      cr_lm_window(const int32_t *s, int T, int32_t bos, int32_t *in, int32_t *tgt);

/* Mean cross-entropy over windows of T tokens of ids[0..n): consecutive,
 * non-overlapping windows, or max_windows of them evenly spaced (0 = all),
 * in batches of B through ws (cap_B >= B, cap_T >= T). *loss is the mean
 * over every counted target, *count their number. Too short a stream for
 * one window is CR_ERR_LIMIT. */
cr_status cr_lm_eval_ids(const cr_decoder *d, cr_dec_ws *ws, const int32_t *ids, size_t n,
                         int B, int T, int32_t bos, int64_t max_windows, double *loss,
                         int64_t *count, cr_error *e);

/* ---- training -------------------------------------------------------------------- */
typedef struct cr_lm_opts {
    const char *out_dir;   /* model.safetensors, train_state.safetensors, tokens.bin,
                              tokenizer/ (when learnt), metrics.json */
    int         resume;    /* continue from out_dir's train_state.safetensors */
    int64_t     stop_at;   /* > 0: checkpoint and return once this step is done, as if
                              the run were stopped there (tests of --resume) */
    FILE       *log;       /* progress lines; NULL = silent */
} cr_lm_opts;

/* The figures of a run: the public cr_lm_train_result (crossrec.h). */
typedef cr_lm_train_result cr_lm_result;

/* Train per the recipe into o->out_dir (created). Writes the model with
 * cr_dec_save and a resumable state (parameters, AdamW moments, step, the
 * window sampler's RNG), both atomically, every checkpoint_every steps and
 * at the end. A resumed run continues bit for bit as if never stopped (same
 * thread count). Weight decay applies to the matrices of the blocks only:
 * norms, biases and the token and position embeddings are not decayed. */
cr_status cr_lm_train(const cr_lm_cfg *c, const cr_lm_opts *o, cr_lm_result *r, cr_error *e);

#endif /* CR_LM_TRAIN_H */
