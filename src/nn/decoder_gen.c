/*
 * decoder_gen.c - token generation with the decoder: greedy decoding and
 * temperature / top-k / top-p sampling from explicit RNG state, one
 * sequence at a time over a key/value cache (the prompt runs as one
 * forward, then one single-token forward per new token). Allocates only
 * the sampler's scratch, once per call.
 *
 * Legend: V vocabulary size.
 */
#include "decoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int32_t cr_argmax(const float *x, int V) {
    int32_t best = 0;
    for (int j = 1; j < V; j++)
        if (x[j] > x[best]) best = j; /* strict: the lowest id wins a tie */
    return best;
}

/* Insertion into a descending list would be O(V k); a full sort of V
 * (prob, id) pairs is simpler and V is small next to the forward pass.
 * Ties order by id so a draw is reproducible across libc qsort versions. */
typedef struct { float p; int32_t id; } cr_pid;

static int cr_pid_desc(const void *a, const void *b) {
    const cr_pid *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

int32_t cr_dec_sample(const float *logits, int V, const cr_dec_sampler *s, cr_rng *r,
                      float *scratch) {
    if (!s || s->temperature <= 0.0f || !r) return cr_argmax(logits, V);
    cr_pid *pi = (cr_pid *)scratch; /* 2V floats hold V pairs of 8 bytes */
    float mx = logits[cr_argmax(logits, V)];
    double sum = 0.0;
    for (int j = 0; j < V; j++) {
        pi[j].p = expf((logits[j] - mx) / s->temperature);
        pi[j].id = j;
        sum += pi[j].p;
    }
    for (int j = 0; j < V; j++) pi[j].p = (float)(pi[j].p / sum);
    qsort(pi, (size_t)V, sizeof *pi, cr_pid_desc);
    int n = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    /* the smallest prefix whose mass reaches top_p (at least one token) */
    if (s->top_p > 0.0f && s->top_p < 1.0f) {
        double acc = 0.0;
        int m = 0;
        while (m < n) {
            acc += pi[m++].p;
            if (acc >= s->top_p) break;
        }
        n = m;
    }
    double mass = 0.0;
    for (int j = 0; j < n; j++) mass += pi[j].p;
    double u = cr_rng_uniform(r) * mass, acc = 0.0;
    for (int j = 0; j < n; j++) {
        acc += pi[j].p;
        if (u < acc) return pi[j].id;
    }
    return pi[n - 1].id; /* u landed on the rounding slack at the end */
}

cr_status cr_dec_generate(const cr_decoder *d, cr_dec_ws *ws, const int32_t *prompt,
                          int n_prompt, int n_new, const cr_dec_sampler *s, cr_rng *r,
                          int32_t *out, cr_error *e) {
    int V = d->cfg.vocab;
    if (!ws->kc)
        return cr_err(e, CR_ERR_ARG, "generate: the workspace needs a key/value cache");
    if (n_prompt < 1 || n_new < 0)
        return cr_err(e, CR_ERR_ARG, "generate: a prompt of %d ids and %d new ids (the prompt "
                      "needs at least one id, e.g. BOS)", n_prompt, n_new);
    if (n_new == 0) return CR_OK;
    if (n_prompt + n_new - 1 > ws->cap_T)
        return cr_err(e, CR_ERR_LIMIT, "generate: %d prompt + %d new ids need %d positions, "
                      "the workspace has %d (max_seq %d)", n_prompt, n_new,
                      n_prompt + n_new - 1, ws->cap_T, d->cfg.max_seq);
    float *scratch = cr_alloc_e(2 * (size_t)V * sizeof(float), e, "sampler scratch");
    if (!scratch) return CR_ERR_NOMEM;
    cr_status st = cr_dec_forward(d, ws, prompt, NULL, NULL, 1, n_prompt, 0, e);
    int pos = n_prompt;
    for (int i = 0; st == CR_OK && i < n_new; i++) {
        /* the last row of the last forward predicts the next token */
        const float *row = ws->logits + (size_t)(ws->T - 1) * V;
        out[i] = cr_dec_sample(row, V, s, r, scratch);
        if (i + 1 < n_new) st = cr_dec_forward(d, ws, &out[i], NULL, NULL, 1, 1, pos++, e);
    }
    cr_free(scratch);
    return st;
}
