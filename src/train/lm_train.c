/*
 * lm_train.c - the language-model pretraining loop: random windows of the
 * training split, forward + backward through the decoder, clipping, AdamW
 * on warmup + cosine, validation perplexity on fixed windows of the
 * held-out tail, and checkpoints (model + resumable state) written
 * atomically. For a seed and a thread count a run is bit-for-bit
 * repeatable, stopped and resumed or not. Prints only to opts->log.
 */
#include "lm_train.h"

#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- evaluation ------------------------------------------------------------------------ */

cr_status cr_lm_eval_ids(const cr_decoder *d, cr_dec_ws *ws, const int32_t *ids, size_t n,
                         int B, int T, int32_t bos, int64_t max_windows, double *loss,
                         int64_t *count, cr_error *e) {
    *loss = 0;
    *count = 0;
    if (B < 1 || T < 1 || B > ws->cap_B || T > ws->cap_T)
        return cr_err(e, CR_ERR_ARG, "eval: %d x %d tokens do not fit a workspace of %d x %d", B,
                      T, ws->cap_B, ws->cap_T);
    int W = cr_lm_window_tokens(T, bos);
    if (n < (size_t)W)
        return cr_err(e, CR_ERR_LIMIT, "eval: %zu tokens, one window of %d needs %d", n, T, W);
    /* windows i*T .. i*T+W-1: the targets of consecutive windows never overlap */
    int64_t nw = (int64_t)((n - (size_t)(W - T)) / (size_t)T);
    int64_t k = (max_windows > 0 && max_windows < nw) ? max_windows : nw;
    int32_t *in = cr_alloc_e((size_t)B * T * sizeof *in, e, "eval inputs");
    int32_t *tgt = cr_alloc_e((size_t)B * T * sizeof *tgt, e, "eval targets");
    cr_status s = (in && tgt) ? CR_OK : CR_ERR_NOMEM;
    double sum = 0;
    int64_t cnt = 0;
    for (int64_t j0 = 0; s == CR_OK && j0 < k; j0 += B) {
        int nb = (int)(k - j0 < B ? k - j0 : B);
        for (int b = 0; b < nb; b++) {
            int64_t i = (j0 + b) * nw / k; /* evenly spaced when k < nw */
            cr_lm_window(ids + (size_t)i * T, T, bos, in + (size_t)b * T, tgt + (size_t)b * T);
        }
        s = cr_dec_forward(d, ws, in, NULL, tgt, nb, T, 0, e);
        if (s == CR_OK) {
            sum += (double)ws->loss * ws->n_valid;
            cnt += ws->n_valid;
        }
    }
    cr_free(in);
    cr_free(tgt);
    if (s == CR_OK) {
        *loss = cnt ? sum / (double)cnt : 0;
        *count = cnt;
    }
    return s;
}

/* ---- resumable state --------------------------------------------------------------------
 * train_state.safetensors: the parameters, AdamW's moments, the step and the
 * window sampler's RNG, with a fingerprint of everything that must not
 * change between a run and its resumption. The parameters travel with the
 * moments so the two can never come from different steps. */

static void fingerprint(char *buf, size_t cap, const cr_lm_cfg *c, const cr_dec_cfg *m,
                        size_t n_train, int32_t bos) {
    snprintf(buf, cap,
             "{\"arch\":\"%s\",\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,"
             "\"n_kv_heads\":%d,\"vocab\":%d,\"max_seq\":%d,\"tied\":%d,\"batch\":%d,"
             "\"seq_len\":%d,\"seed\":%llu,\"n_train\":%zu,\"bos\":%d}",
             cr_dec_arch_name(m->arch), m->dim, m->hidden_dim, m->n_layers, m->n_heads,
             m->n_kv_heads, m->vocab, m->max_seq, m->tied, c->batch, c->seq_len,
             (unsigned long long)c->seed, n_train, (int)bos);
}

static cr_status state_save(const char *path, const char *fp, const cr_decoder *d,
                            const cr_adam *a, int64_t step, const cr_rng *r, cr_error *e) {
    cr_st_writer w;
    cr_st_writer_init(&w);
    int64_t shn[1] = {(int64_t)d->pt.total}, sh1[1] = {1}, shr[1] = {(int64_t)sizeof *r};
    int64_t t = a->t;
    cr_status s;
    if ((s = cr_st_add(&w, "params", CR_DT_F32, 1, shn, d->pt.data, e)) ||
        (s = cr_st_add(&w, "adam_m", CR_DT_F32, 1, shn, a->m, e)) ||
        (s = cr_st_add(&w, "adam_v", CR_DT_F32, 1, shn, a->v, e)) ||
        (s = cr_st_add(&w, "step", CR_DT_I64, 1, sh1, &step, e)) ||
        (s = cr_st_add(&w, "adam_t", CR_DT_I64, 1, sh1, &t, e)) ||
        (s = cr_st_add(&w, "rng", CR_DT_U8, 1, shr, r, e)) ||
        (s = cr_st_add_meta(&w, "lm_state", fp, e)))
        goto done;
    s = cr_st_save(&w, path, e);
done:
    cr_st_writer_free(&w);
    return s;
}

static cr_status state_load(const char *path, const char *fp, cr_decoder *d, cr_adam *a,
                            int64_t *step, cr_rng *r, cr_error *e) {
    if (!cr_file_exists(path))
        return cr_err(e, CR_ERR_NOT_FOUND, "%s: no training state to resume from (run without "
                      "--resume to start afresh)", path);
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    cr_status s = CR_OK;
    const char *theirs = cr_st_meta(&f, "lm_state");
    if (!theirs || strcmp(theirs, fp)) {
        s = cr_err(e, CR_ERR_MISMATCH, "%s was written for another run:\n  its settings: %s\n  "
                   "this config:  %s\nresume with the config that made it, or start afresh",
                   path, theirs ? theirs : "(none)", fp);
        goto done;
    }
    int64_t shn[1] = {(int64_t)d->pt.total}, sh1[1] = {1}, shr[1] = {(int64_t)sizeof *r};
    const cr_st_tensor *tp, *tm, *tv, *ts, *tt, *tr;
    if ((s = cr_st_expect(&f, "params", CR_DT_F32, 1, shn, &tp, e)) ||
        (s = cr_st_expect(&f, "adam_m", CR_DT_F32, 1, shn, &tm, e)) ||
        (s = cr_st_expect(&f, "adam_v", CR_DT_F32, 1, shn, &tv, e)) ||
        (s = cr_st_expect(&f, "step", CR_DT_I64, 1, sh1, &ts, e)) ||
        (s = cr_st_expect(&f, "adam_t", CR_DT_I64, 1, sh1, &tt, e)) ||
        (s = cr_st_expect(&f, "rng", CR_DT_U8, 1, shr, &tr, e)))
        goto done;
    memcpy(d->pt.data, tp->data, tp->nbytes);
    memcpy(a->m, tm->data, tm->nbytes);
    memcpy(a->v, tv->data, tv->nbytes);
    memcpy(step, ts->data, 8);
    memcpy(&a->t, tt->data, 8);
    memcpy(r, tr->data, sizeof *r);
    if (*step < 0 || a->t != *step || r->idx < 0 || r->idx > 624)
        s = cr_err(e, CR_ERR_FORMAT, "%s: inconsistent state (step %lld, adam step %lld)", path,
                   (long long)*step, (long long)a->t);
done:
    cr_st_close(&f);
    return s;
}

/* ---- the loop ------------------------------------------------------------------------ */

typedef struct lm_run {
    const cr_lm_cfg *c;
    const cr_lm_opts *o;
    cr_bpe *bpe;
    int32_t *ids, bos;
    size_t n, n_train;
    cr_decoder d;
    cr_dec_ws ws;
    cr_optim opt;
    cr_rng wr; /* the window sampler */
    int32_t *in, *tgt;
    char tok_dir[CR_LM_PATH + 16], p_model[CR_LM_PATH + 32], p_state[CR_LM_PATH + 32];
    char fp[1024];
} lm_run;

static void say(const lm_run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const lm_run *R, const char *fmt, ...) {
    if (!R->o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(R->o->log, fmt, ap);
    va_end(ap);
    fflush(R->o->log);
}

/* Rough bytes a run needs (parameters, gradients, two moments, the
 * workspace), so an absurd config fails with a number, not an OOM. */
static double need_bytes(const cr_dec_cfg *m, int B, int T) {
    double C = m->dim, H = m->hidden_dim, L = m->n_layers, V = m->vocab;
    double KV = C / m->n_heads * m->n_kv_heads;
    double P = V * C * (m->tied ? 1 : 2) + L * (2 * C * C + 2 * C * KV + 3 * C * H) +
               (m->arch == CR_DEC_GPT2 ? (double)m->max_seq * C : 0);
    double N = (double)B * T;
    double act = N * L * (8 * C + 2 * KV + 4 * H) + (double)B * m->n_heads * T * T * L * 2 +
                 N * V * 2;
    return 4 * (4 * P + act);
}

static cr_status setup(lm_run *R, cr_error *e) {
    const cr_lm_cfg *c = R->c;
    const char *out = R->o->out_dir;
    CR_TRY(cr_mkdirs(out, e));
    snprintf(R->p_model, sizeof R->p_model, "%s/model.safetensors", out);
    snprintf(R->p_state, sizeof R->p_state, "%s/train_state.safetensors", out);
    if (c->train_vocab > 0) {
        snprintf(R->tok_dir, sizeof R->tok_dir, "%s/tokenizer", out);
        char enc[sizeof R->tok_dir + 16];
        snprintf(enc, sizeof enc, "%s/encoder.json", R->tok_dir);
        /* a resumed run keeps the tokenizer its ids were made with */
        if (!(R->o->resume && cr_file_exists(enc))) {
            cr_bpe_train_opts to;
            cr_bpe_train_opts_default(&to);
            to.vocab_size = c->train_vocab;
            say(R, "training a BPE tokenizer of %d tokens on %s\n", c->train_vocab, c->corpus);
            CR_TRY(cr_bpe_train_file(c->corpus, &to, R->tok_dir, NULL, e));
        }
    } else {
        snprintf(R->tok_dir, sizeof R->tok_dir, "%s", c->tokenizer);
    }
    CR_TRY(cr_bpe_load(&R->bpe, R->tok_dir, e));
    R->bos = cr_lm_bos(R->bpe);
    char cache[CR_LM_PATH + 32];
    snprintf(cache, sizeof cache, "%s/tokens.bin", out);
    CR_TRY(cr_lm_corpus_ids(c->corpus, R->bpe, R->tok_dir, cache, &R->ids, &R->n, e));
    R->n_train = cr_lm_split(R->n, c->valid_frac);
    size_t nv = R->n - R->n_train;
    int W = cr_lm_window_tokens(c->seq_len, R->bos);
    if (R->n_train < (size_t)W || nv < (size_t)W)
        return cr_err(e, CR_ERR_LIMIT,
                      "%s gives %zu tokens: %zu for training and %zu for validation (the last "
                      "%g), but each split must hold one sequence of %d tokens (seq_len %d); "
                      "use a larger corpus or a smaller seq_len",
                      c->corpus, R->n, R->n_train, nv, c->valid_frac, W, c->seq_len);
    cr_dec_cfg m = c->model;
    m.vocab = cr_bpe_vocab_size(R->bpe);
    CR_TRY(cr_dec_cfg_check(&m, e));
    double gb = need_bytes(&m, c->batch, c->seq_len) / 1073741824.0;
    if (gb > 64)
        return cr_err(e, CR_ERR_LIMIT, "the model and batch need about %.0f GiB; reduce dim, "
                      "n_layers, batch or seq_len", gb);
    CR_TRY(cr_dec_create(&R->d, &m, e));
    cr_rng ir;
    cr_rng_seed(&ir, c->seed);
    cr_dec_init(&R->d, &ir);
    /* embeddings are lookup tables, not maps: decaying them towards zero
     * only shrinks rare tokens (norms and biases are already NO_DECAY).
     * After cr_dec_init, which reads the flag as "a norm or a bias". */
    R->d.pt.t[R->d.tok_emb].flags |= CR_PARAM_NO_DECAY;
    if (R->d.pos_emb >= 0) R->d.pt.t[R->d.pos_emb].flags |= CR_PARAM_NO_DECAY;
    CR_TRY(cr_dec_ws_create(&R->ws, &R->d, c->batch, c->seq_len, CR_DEC_WS_BACKWARD, e));
    /* guarded: a non-finite gradient norm stops the run even without clipping */
    cr_optim_init(&R->opt, &c->opt, c->steps, 1);
    CR_TRY(cr_optim_add_dense(&R->opt, &R->d.pt, R->d.pt.data, R->ws.grads, e));
    /* a stream of its own, so the windows do not depend on the initialisation */
    cr_rng_seed(&R->wr, c->seed ^ UINT64_C(0x9E3779B97F4A7C15));
    size_t N = (size_t)c->batch * c->seq_len;
    R->in = cr_alloc_e(N * sizeof *R->in, e, "batch inputs");
    R->tgt = cr_alloc_e(N * sizeof *R->tgt, e, "batch targets");
    if (!R->in || !R->tgt) return CR_ERR_NOMEM;
    fingerprint(R->fp, sizeof R->fp, c, &m, R->n_train, R->bos);
    return CR_OK;
}

static cr_status checkpoint(lm_run *R, int64_t step, cr_error *e) {
    CR_TRY(cr_dec_save(&R->d, R->p_model, e));
    return state_save(R->p_state, R->fp, &R->d, &R->opt.dense[0].a, step, &R->wr, e);
}

static cr_status evaluate(lm_run *R, double *loss, cr_error *e) {
    int64_t cnt;
    return cr_lm_eval_ids(&R->d, &R->ws, R->ids + R->n_train, R->n - R->n_train, R->c->batch,
                          R->c->seq_len, R->bos, (int64_t)R->c->eval_batches * R->c->batch,
                          loss, &cnt, e);
}

static void clock_str(char *b, size_t n, double s) {
    long t = (long)(s + 0.5);
    snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static cr_status write_metrics(const lm_run *R, const cr_lm_result *r, cr_error *e) {
    char buf[1024], path[CR_LM_PATH + 32];
    int n = snprintf(buf, sizeof buf,
                     "{\n  \"step\": %lld,\n  \"vocab\": %d,\n  \"params\": %zu,\n"
                     "  \"n_train_tokens\": %lld,\n  \"n_valid_tokens\": %lld,\n"
                     "  \"train_loss\": %.6f,\n  \"valid_loss\": %.6f,\n  \"valid_ppl\": %.4f\n}\n",
                     (long long)r->step, (int)r->vocab, R->d.pt.total, (long long)r->n_train,
                     (long long)r->n_valid, r->train_loss, r->valid_loss, r->valid_ppl);
    snprintf(path, sizeof path, "%s/metrics.json", R->o->out_dir);
    return cr_write_file_atomic(path, buf, (size_t)n, e);
}

static cr_status loop(lm_run *R, cr_lm_result *r, cr_error *e) {
    const cr_lm_cfg *c = R->c;
    int B = c->batch, T = c->seq_len, W = cr_lm_window_tokens(T, R->bos);
    int64_t step = 0;
    if (R->o->resume) {
        CR_TRY(state_load(R->p_state, R->fp, &R->d, &R->opt.dense[0].a, &step, &R->wr, e));
        say(R, "resuming %s at step %lld\n", R->o->out_dir, (long long)step);
    }
    say(R, "%zu tokens (vocab %d): %zu training, %zu validation; %zu parameters; %lld steps "
        "of %d x %d tokens\n", R->n, R->d.cfg.vocab, R->n_train, R->n - R->n_train,
        R->d.pt.total, (long long)c->steps, B, T);
    double t0 = cr_now(), acc = 0, vloss = NAN;
    int64_t acc_n = 0, step0 = step;
    uint64_t span = R->n_train - (size_t)W + 1;
    while (step < c->steps) {
        for (int b = 0; b < B; b++) {
            size_t s = (size_t)cr_rng_below(&R->wr, span);
            cr_lm_window(R->ids + s, T, R->bos, R->in + (size_t)b * T, R->tgt + (size_t)b * T);
        }
        cr_dec_zero_grad(&R->d, &R->ws);
        CR_TRY(cr_dec_forward(&R->d, &R->ws, R->in, NULL, R->tgt, B, T, 0, e));
        CR_TRY(cr_dec_backward(&R->d, &R->ws, NULL, e));
        if (!isfinite(R->ws.loss))
            return cr_err(e, CR_ERR_LIMIT, "training diverged at step %lld (loss %g); lower lr "
                          "or raise warmup", (long long)step, (double)R->ws.loss);
        CR_TRY(cr_optim_step(&R->opt, step, NULL, e));
        float lr = R->opt.lr;
        step++;
        acc += R->ws.loss;
        acc_n++;
        int last = step == c->steps, stop = R->o->stop_at > 0 && step >= R->o->stop_at;
        int do_eval = last || (c->eval_every > 0 && step % c->eval_every == 0);
        if (do_eval || step % c->log_every == 0) {
            double el = cr_now() - t0, tps = (double)(step - step0) * B * T / (el > 0 ? el : 1);
            char ce[32], ceta[32];
            clock_str(ce, sizeof ce, el);
            clock_str(ceta, sizeof ceta, tps > 0 ? (double)(c->steps - step) * B * T / tps : 0);
            r->train_loss = acc / (double)acc_n;
            r->tokens_per_s = tps;
            char vs[96] = "";
            if (do_eval) {
                CR_TRY(evaluate(R, &vloss, e));
                snprintf(vs, sizeof vs, " | valid %.4f ppl %.2f", vloss, exp(vloss));
            }
            say(R, "step %lld/%lld | lr %.2e | train %.4f%s | %.0f tok/s | %s elapsed, eta %s\n",
                (long long)step, (long long)c->steps, (double)lr, r->train_loss, vs, tps, ce,
                ceta);
            acc = 0;
            acc_n = 0;
        }
        if (last || stop || (c->checkpoint_every > 0 && step % c->checkpoint_every == 0))
            CR_TRY(checkpoint(R, step, e));
        if (stop) break;
    }
    r->step = step;
    if (isnan(vloss)) CR_TRY(evaluate(R, &vloss, e)); /* a run with nothing left to do */
    r->valid_loss = vloss;
    r->valid_ppl = exp(vloss);
    if (step == c->steps) CR_TRY(write_metrics(R, r, e));
    return CR_OK;
}

cr_status cr_lm_train(const cr_lm_cfg *c, const cr_lm_opts *o, cr_lm_result *r, cr_error *e) {
    cr_lm_result tmp;
    if (!r) r = &tmp;
    memset(r, 0, sizeof *r);
    if (!o || !o->out_dir || !o->out_dir[0])
        return cr_err(e, CR_ERR_ARG, "lm train: no output directory");
    lm_run R;
    memset(&R, 0, sizeof R);
    R.c = c;
    R.o = o;
    cr_status s = setup(&R, e);
    if (s == CR_OK) {
        r->n_train = (int64_t)R.n_train;
        r->n_valid = (int64_t)(R.n - R.n_train);
        r->vocab = R.d.cfg.vocab;
        s = loop(&R, r, e);
    }
    cr_free(R.in);
    cr_free(R.tgt);
    cr_optim_free(&R.opt);
    cr_dec_ws_free(&R.ws);
    cr_dec_free(&R.d);
    cr_free(R.ids);
    if (R.bpe) cr_bpe_free(R.bpe);
    return s;
}
