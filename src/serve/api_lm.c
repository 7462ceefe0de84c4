/*
 * api_lm.c - the public decoder-LM entry points (crossrec.h): load a
 * checkpoint with its tokenizer, tokenize, generate. This is the one place
 * that turns a prompt into ids (BOS, context checks) and ids back into
 * text; `crossrec lm generate` is a thin caller. It never prints.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../data/bpe.h"
#include "../nn/decoder.h"
#include "../train/lm_train.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct cr_lm {
    cr_decoder d;
    cr_bpe    *bpe;  /* a GPT-2 BPE directory, or */
    cr_sp     *sp;   /* a llama2.c tokenizer.bin, or neither */
    int32_t    bos;  /* the default BOS */
};

void cr_lm_load_opts_init(cr_lm_load_opts *o) {
    if (o) memset(o, 0, sizeof *o);
}

void cr_gen_opts_init(cr_gen_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->n_tokens = 64;
    o->temperature = 1.0f;
    o->top_p = 0.9f;
    o->bos = -1;
}

cr_status cr_lm_load(cr_lm **out, const char *path, const cr_lm_load_opts *o, cr_error *e) {
    if (!out || !path) return cr_err(e, CR_ERR_ARG, "cr_lm_load: out and path must not be NULL");
    *out = NULL;
    cr_lm_load_opts def;
    if (!o) {
        cr_lm_load_opts_init(&def);
        o = &def;
    }
    if (o->gpt2_heads < 0 || o->gpt2_heads > 1024)
        return cr_err(e, CR_ERR_ARG, "cr_lm_load_opts.gpt2_heads: expected 0 to 1024, got %d",
                      o->gpt2_heads);
    cr_lm *lm = calloc(1, sizeof *lm);
    if (!lm) return cr_err(e, CR_ERR_NOMEM, "out of memory loading %s", path);
    cr_status s = o->gpt2_heads ? cr_dec_load_gpt2_hf(&lm->d, path, o->gpt2_heads, e)
                                : cr_dec_open(&lm->d, path, 0, e);
    if (s) {
        free(lm);
        return s;
    }
    if (o->tokenizer) {
        struct stat st;
        if (stat(o->tokenizer, &st) == 0 && S_ISDIR(st.st_mode))
            s = cr_bpe_load(&lm->bpe, o->tokenizer, e);
        else
            s = cr_sp_load(&lm->sp, o->tokenizer, 0, e);
        if (s) goto fail;
        int tv = lm->bpe ? cr_bpe_vocab_size(lm->bpe) : 0;
        if (tv > lm->d.cfg.vocab) {
            s = cr_err(e, CR_ERR_MISMATCH, "%s: the tokenizer has %d tokens, the model %s only %d",
                       o->tokenizer, tv, path, lm->d.cfg.vocab);
            goto fail;
        }
    }
    /* models trained by `lm train` start every sequence with the BPE's
     * <|endoftext|>; GPT-2's is its last id, so the two defaults agree */
    lm->bos = lm->bpe && cr_lm_bos(lm->bpe) >= 0 ? cr_lm_bos(lm->bpe)
              : lm->d.cfg.arch == CR_DEC_GPT2     ? lm->d.cfg.vocab - 1
                                                  : 1;
    if (o->bf16 && (s = cr_dec_bf16_make(&lm->d, e))) goto fail;
    *out = lm;
    return CR_OK;
fail:
    cr_lm_free(lm);
    return s;
}

void cr_lm_free(cr_lm *lm) {
    if (!lm) return;
    if (lm->bpe) cr_bpe_free(lm->bpe);
    if (lm->sp) cr_sp_free(lm->sp);
    cr_dec_free(&lm->d);
    free(lm);
}

int cr_lm_vocab_size(const cr_lm *lm) { return lm ? lm->d.cfg.vocab : 0; }
int cr_lm_context_length(const cr_lm *lm) { return lm ? lm->d.cfg.max_seq : 0; }
int cr_lm_has_tokenizer(const cr_lm *lm) { return lm && (lm->bpe || lm->sp); }
int32_t cr_lm_bos_id(const cr_lm *lm) { return lm ? lm->bos : -1; }

cr_status cr_lm_tokenize(const cr_lm *lm, const char *text, int32_t **ids, size_t *n,
                         cr_error *e) {
    if (!lm || !text || !ids || !n)
        return cr_err(e, CR_ERR_ARG, "cr_lm_tokenize: lm, text, ids and n must not be NULL");
    *ids = NULL;
    *n = 0;
    if (!cr_lm_has_tokenizer(lm))
        return cr_err(e, CR_ERR_ARG, "this model was loaded without a tokenizer (cr_lm_load_opts.tokenizer)");
    cr_status s = lm->bpe ? cr_bpe_encode(lm->bpe, text, strlen(text), ids, n, e)
                          : cr_sp_encode(lm->sp, text, strlen(text), 0, ids, n, e);
    if (s) return s;
    for (size_t i = 0; i < *n; i++)
        if ((*ids)[i] < 0 || (*ids)[i] >= lm->d.cfg.vocab) {
            int bad = (*ids)[i];
            cr_free(*ids);
            *ids = NULL;
            *n = 0;
            return cr_err(e, CR_ERR_MISMATCH, "the tokenizer gave id %d, the model has %d", bad,
                          lm->d.cfg.vocab);
        }
    return CR_OK;
}

cr_status cr_lm_detokenize(const cr_lm *lm, const int32_t *ids, size_t n, char **text,
                           cr_error *e) {
    if (!lm || (!ids && n) || !text)
        return cr_err(e, CR_ERR_ARG, "cr_lm_detokenize: lm, ids and text must not be NULL");
    *text = NULL;
    if (!cr_lm_has_tokenizer(lm))
        return cr_err(e, CR_ERR_ARG, "this model was loaded without a tokenizer (cr_lm_load_opts.tokenizer)");
    size_t len = 0;
    return lm->bpe ? cr_bpe_decode(lm->bpe, ids, n, text, &len, e)
                   : cr_sp_decode(lm->sp, ids, n, text, &len, e);
}

static cr_status check_gen(const cr_lm *lm, const cr_gen_opts *o, int n_prompt, cr_error *e) {
    if (o->n_tokens < 1 || o->n_tokens > (1 << 20))
        return cr_err(e, CR_ERR_ARG, "cr_gen_opts.n_tokens: expected 1 to %d, got %d", 1 << 20,
                      o->n_tokens);
    if (!(o->temperature >= 0 && o->temperature <= 100))
        return cr_err(e, CR_ERR_ARG, "cr_gen_opts.temperature: expected 0 to 100, got %g",
                      (double)o->temperature);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return cr_err(e, CR_ERR_ARG, "cr_gen_opts.top_p: expected (0, 1], got %g",
                      (double)o->top_p);
    if (o->top_k < 0) return cr_err(e, CR_ERR_ARG, "cr_gen_opts.top_k: expected >= 0, got %d", o->top_k);
    if (o->bos >= lm->d.cfg.vocab)
        return cr_err(e, CR_ERR_ARG, "cr_gen_opts.bos: id %d is outside the model's vocabulary of %d",
                      (int)o->bos, lm->d.cfg.vocab);
    long long need = (long long)n_prompt + o->n_tokens - 1;
    if (need > lm->d.cfg.max_seq)
        return cr_err(e, CR_ERR_LIMIT,
                      "%d prompt ids + %d new ones exceed the model's context of %d tokens "
                      "(max_seq); ask for %d or fewer, or shorten the prompt",
                      n_prompt, o->n_tokens, lm->d.cfg.max_seq,
                      lm->d.cfg.max_seq - n_prompt + 1 > 0 ? lm->d.cfg.max_seq - n_prompt + 1 : 0);
    return CR_OK;
}

cr_status cr_lm_generate_ids(cr_ctx *ctx, cr_lm *lm, const int32_t *prompt, int n_prompt,
                             const cr_gen_opts *o, int32_t *out, cr_error *e) {
    if (!lm || !prompt || n_prompt < 1 || !out)
        return cr_err(e, CR_ERR_ARG,
                      "cr_lm_generate_ids: lm, prompt (at least one id) and out are required");
    cr_gen_opts def;
    if (!o) {
        cr_gen_opts_init(&def);
        o = &def;
    }
    CR_TRY(check_gen(lm, o, n_prompt, e));
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= lm->d.cfg.vocab)
            return cr_err(e, CR_ERR_ARG, "prompt[%d]: id %d is outside [0, %d)", i,
                          (int)prompt[i], lm->d.cfg.vocab);
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_lm_generate", e));
    cr_dec_ws ws = {0};
    cr_status s = cr_dec_ws_create(&ws, &lm->d, 1, n_prompt + o->n_tokens - 1, CR_DEC_WS_KV_CACHE, e);
    if (!s) {
        cr_dec_sampler smp = {.temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p};
        cr_rng r;
        cr_rng_seed(&r, o->seed);
        s = cr_dec_generate(&lm->d, &ws, prompt, n_prompt, o->n_tokens, &smp, &r, out, e);
    }
    cr_dec_ws_free(&ws);
    cr_call_end(&k);
    return s;
}

cr_status cr_lm_generate(cr_ctx *ctx, cr_lm *lm, const char *prompt, const cr_gen_opts *o,
                         char **text, cr_error *e) {
    if (!lm || !text) return cr_err(e, CR_ERR_ARG, "cr_lm_generate: lm and text must not be NULL");
    *text = NULL;
    cr_gen_opts def;
    if (!o) {
        cr_gen_opts_init(&def);
        o = &def;
    }
    if (!cr_lm_has_tokenizer(lm))
        return cr_err(e, CR_ERR_ARG, "cr_lm_generate: the model was loaded without a tokenizer; "
                      "use cr_lm_generate_ids");
    int32_t *enc = NULL, *ids = NULL, *out = NULL;
    size_t n = 0;
    cr_status s = CR_OK;
    if (prompt && *prompt && (s = cr_lm_tokenize(lm, prompt, &enc, &n, e))) return s;
    if (n + 1 > (size_t)lm->d.cfg.max_seq) {
        s = cr_err(e, CR_ERR_LIMIT,
                   "the prompt is %zu tokens (%zu with BOS), longer than the model's context "
                   "of %d tokens (max_seq); shorten it",
                   n, n + 1, lm->d.cfg.max_seq);
        goto done;
    }
    ids = malloc((n + 1) * sizeof *ids);
    out = malloc((size_t)(o->n_tokens > 0 ? o->n_tokens : 1) * sizeof *out);
    if (!ids || !out) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory generating %d tokens", o->n_tokens);
        goto done;
    }
    ids[0] = o->bos >= 0 ? o->bos : lm->bos;
    if (n) memcpy(ids + 1, enc, n * sizeof *ids);
    if ((s = cr_lm_generate_ids(ctx, lm, ids, (int)n + 1, o, out, e))) goto done;
    s = cr_lm_detokenize(lm, out, (size_t)o->n_tokens, text, e);
done:
    cr_free(enc);
    free(ids);
    free(out);
    return s;
}

/* ---- training and evaluation ---------------------------------------------------------- */

cr_status cr_lm_pretrain(cr_ctx *ctx, const char *config, const char *out_dir, int resume,
                         cr_lm_train_result *r, cr_error *e) {
    if (r) memset(r, 0, sizeof *r);
    if (!config || !out_dir)
        return cr_err(e, CR_ERR_ARG, "cr_lm_pretrain: config and out_dir must not be NULL");
    if (resume != 0 && resume != 1)
        return cr_err(e, CR_ERR_ARG, "cr_lm_pretrain: resume is 0 or 1, got %d", resume);
    cr_lm_cfg c;
    CR_TRY(cr_lm_cfg_load(&c, config, e));
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_lm_pretrain", e));
    /* the context's thread count, else the config's train.threads */
    cr_set_threads(cr_ctx_threads_for(k.ctx, c.threads));
    cr_lm_opts o = {.out_dir = out_dir, .resume = resume, .log = cr_ctx_log(k.ctx)};
    cr_lm_train_result local;
    cr_status s = cr_lm_train(&c, &o, r ? r : &local, e);
    cr_call_end(&k);
    return s;
}

void cr_lm_eval_opts_init(cr_lm_eval_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->batch = 4;
}

cr_status cr_lm_eval(cr_ctx *ctx, cr_lm *lm, const char *text_path, const cr_lm_eval_opts *o,
                     cr_lm_eval_result *r, cr_error *e) {
    if (r) memset(r, 0, sizeof *r);
    if (!lm || !text_path || !r)
        return cr_err(e, CR_ERR_ARG, "cr_lm_eval: lm, text_path and r must not be NULL");
    cr_lm_eval_opts def;
    if (!o) {
        cr_lm_eval_opts_init(&def);
        o = &def;
    }
    int T = o->seq_len ? o->seq_len : lm->d.cfg.max_seq;
    if (T < 2 || T > lm->d.cfg.max_seq)
        return cr_err(e, CR_ERR_ARG, "cr_lm_eval_opts.seq_len: expected 0 or 2 to the model's "
                      "max_seq %d, got %d", lm->d.cfg.max_seq, o->seq_len);
    if (o->batch < 1 || o->batch > 4096)
        return cr_err(e, CR_ERR_ARG, "cr_lm_eval_opts.batch: expected 1 to 4096, got %d", o->batch);
    if (o->max_windows < 0)
        return cr_err(e, CR_ERR_ARG, "cr_lm_eval_opts.max_windows: expected >= 0");
    if (!lm->bpe)
        return cr_err(e, CR_ERR_ARG, "cr_lm_eval: the model was loaded without a GPT-2 BPE "
                      "tokenizer directory (cr_lm_load_opts.tokenizer)");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_lm_eval", e));
    cr_dec_ws ws = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    cr_status s = cr_lm_corpus_ids(text_path, lm->bpe, NULL, NULL, &ids, &n, e);
    if (!s) s = cr_dec_ws_create(&ws, &lm->d, o->batch, T, 0, e);
    if (!s)
        s = cr_lm_eval_ids(&lm->d, &ws, ids, n, o->batch, T, cr_lm_bos(lm->bpe), o->max_windows,
                           &r->loss, &r->scored, e);
    if (!s) r->tokens = (int64_t)n;
    cr_dec_ws_free(&ws);
    cr_free(ids);
    cr_call_end(&k);
    return s;
}
