/*
 * test_decoder_bf16.c - the decoder's bf16 weights for inference
 * (cr_dec_bf16_make). Three claims, on small random Llama (grouped heads,
 * untied classifier) and GPT-2 (biases, tied classifier) models and on
 * stories260K.bin:
 *   1. the bf16 forward is the float32 forward of a model whose matrices
 *      were rounded to bf16 values, to float summation tolerance (so every
 *      matrix, and only the matrices, goes through its copy);
 *   2. against the unrounded float32 model, logits move by what bf16
 *      rounding explains (tolerance derived below), prefill and decode
 *      steps agree, and dropping the copies restores the float32 bits;
 *   3. backward refuses while the copies exist.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/kernels/kernels.h"
#include "../src/nn/decoder.h"

#define STORIES "data/models/stories260K.bin"

static void widen(float *dst, const uint16_t *src, size_t n) {
    for (size_t j = 0; j < n; j++) dst[j] = cr_bf16_to_f32(src[j]);
}

/* A copy of d (owned) whose bf16-rounded matrices hold their rounded values
 * in float: what the bf16 forward should compute, in float32. Always
 * untied, because a tied model's lookup keeps the float rows while its
 * classifier uses the rounded ones (the twin's wcls, registered last, so
 * every other index is d's). */
static void rounded_twin(cr_decoder *out, const cr_decoder *d) {
    cr_error e = {0};
    cr_dec_cfg c = d->cfg;
    c.tied = 0;
    assert_int_equal(cr_dec_create(out, &c, &e), CR_OK);
    for (int i = 0; i < d->pt.n; i++) {
        size_t n = d->pt.t[i].numel;
        if (d->wb[i] && !(d->cfg.tied && i == d->tok_emb))
            widen(out->w[i], d->wb[i], n);
        else
            memcpy(out->w[i], d->w[i], n * sizeof(float));
    }
    if (d->cfg.tied)
        widen(out->w[out->wcls], d->wb[d->tok_emb], d->pt.t[d->tok_emb].numel);
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i] - b[i]) > m ? fabs(a[i] - b[i]) : m;
    return m;
}

/* Logits of T ids at position 0 into a fresh (T, V) buffer. */
static float *logits_of(const cr_decoder *d, const int32_t *ids, int T) {
    cr_error e = {0};
    cr_dec_ws ws;
    assert_int_equal(cr_dec_ws_create(&ws, d, 1, T, 0, &e), CR_OK);
    assert_int_equal(cr_dec_forward(d, &ws, ids, NULL, NULL, 1, T, 0, &e), CR_OK);
    size_t n = (size_t)T * d->cfg.vocab;
    float *out = malloc(n * sizeof(float));
    memcpy(out, ws.logits, n * sizeof(float));
    cr_dec_ws_free(&ws);
    return out;
}

/* How far bf16 may move the logits. Rounding a weight to bf16 (8
 * significant bits, round to nearest) changes it by at most 2^-8 of
 * itself, so each product x W^T moves by at most 2^-8 sum_k |x_k w_jk|:
 * about 2^-8 |y_j| times a factor for cancellation among random signs. To
 * first order the errors of the 2L+1 products along the path add (norms
 * rescale, they do not amplify). The test allows 2^-8 * 2 * (2L+1) of the
 * largest logit (a factor 2 for cancellation); the measured error is
 * printed, and is several times smaller. */
static double bf16_tol(const cr_dec_cfg *c, double scale) {
    return ldexp(1.0, -8) * 2.0 * (2 * c->n_layers + 1) * scale;
}

/* Claims 1 and 2 on one model, which must be owned (the test writes its
 * weights) or mapped (only read). */
static void check_model(cr_decoder *d, const char *label) {
    cr_error e = {0};
    const cr_dec_cfg *c = &d->cfg;
    int T = 9, V = c->vocab;
    size_t n = (size_t)T * V;
    int32_t ids[9];
    for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 37 + 5) % V);
    float *f32 = logits_of(d, ids, T);

    assert_int_equal(cr_dec_bf16_make(d, &e), CR_OK);
    assert_non_null(d->wb);
    size_t mats = 0;
    for (int i = 0; i < d->pt.n; i++)
        if (d->wb[i]) mats += d->pt.t[i].numel;
    assert_int_equal(cr_dec_bf16_bytes(d), mats * 2);
    assert_non_null(d->wb[cr_dec_cls(d)]);
    assert_null(d->wb[d->final_norm]);
    float *bf = logits_of(d, ids, T);

    /* 1. the same as float32 on rounded weights */
    cr_decoder r;
    rounded_twin(&r, d);
    float *rf = logits_of(&r, ids, T);
    double scale = max_abs(f32, n);
    char what[96];
    snprintf(what, sizeof what, "%s: bf16 forward vs float32 on rounded weights", label);
    assert_true(cr_test_close(what, bf, rf, n, 2e-5 * (scale + 1), 1e-4));

    /* 2. near the unrounded model, by what rounding explains */
    double diff = max_abs_diff(bf, f32, n), tol = bf16_tol(c, scale);
    fprintf(stderr, "%s: bf16 logits max |diff| %.3g vs float32 (largest logit %.3g, "
            "allowed %.3g)\n", label, diff, scale, tol);
    assert_true(diff <= tol);
    assert_true(diff > 0); /* the copies really are used */

    /* prefill then decode steps give the prefill's logits (the kernel's
     * sums do not depend on the number of rows) */
    cr_dec_ws ws;
    assert_int_equal(cr_dec_ws_create(&ws, d, 1, T, CR_DEC_WS_KV_CACHE, &e), CR_OK);
    assert_int_equal(cr_dec_forward(d, &ws, ids, NULL, NULL, 1, 4, 0, &e), CR_OK);
    for (int t = 4; t < T; t++) {
        assert_int_equal(cr_dec_forward(d, &ws, ids + t, NULL, NULL, 1, 1, t, &e), CR_OK);
        snprintf(what, sizeof what, "%s: bf16 decode step %d vs prefill", label, t);
        assert_true(cr_test_close(what, ws.logits, bf + (size_t)t * V, (size_t)V,
                                  2e-5 * (scale + 1), 1e-4));
    }

    /* 3. no gradients through bf16 copies, frozen or not */
    cr_dec_ws bw;
    int flags = CR_DEC_WS_BACKWARD | (d->owned ? 0 : CR_DEC_WS_FROZEN);
    assert_int_equal(cr_dec_ws_create(&bw, d, 1, T, flags, &e), CR_OK);
    int32_t tgt[9];
    for (int t = 0; t < T; t++) tgt[t] = ids[(t + 1) % T];
    assert_int_equal(cr_dec_forward(d, &bw, ids, NULL, tgt, 1, T, 0, &e), CR_OK);
    e.msg[0] = 0;
    assert_int_equal(cr_dec_backward(d, &bw, NULL, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "bf16"));

    /* dropping them gives back the float32 model, bit for bit */
    cr_dec_bf16_drop(d);
    assert_null(d->wb);
    assert_int_equal(cr_dec_bf16_bytes(d), 0);
    float *again = logits_of(d, ids, T);
    assert_memory_equal(again, f32, n * sizeof(float));
    assert_int_equal(cr_dec_forward(d, &bw, ids, NULL, tgt, 1, T, 0, &e), CR_OK);
    assert_int_equal(cr_dec_backward(d, &bw, NULL, &e), CR_OK);

    cr_dec_ws_free(&bw);
    cr_dec_ws_free(&ws);
    cr_dec_free(&r);
    free(f32), free(bf), free(rf), free(again);
}

static void random_model(cr_decoder *d, const cr_dec_cfg *c, uint64_t seed) {
    cr_error e = {0};
    cr_rng r;
    cr_rng_seed(&r, seed);
    assert_int_equal(cr_dec_create(d, c, &e), CR_OK);
    cr_dec_init(d, &r);
    /* weights 3x GPT-2's 0.02, so logits span a few units; biases and norm
     * gains away from 0 and 1 */
    for (int i = 0; i < d->pt.n; i++)
        for (size_t j = 0; j < d->pt.t[i].numel; j++)
            d->w[i][j] = d->w[i][j] * 3.0f + (float)(cr_rng_uniform(&r) - 0.5) * 0.2f;
}

static void test_random_llama(void **state) {
    (void)state;
    /* K = 70 and 150: not multiples of 16; V = 301 */
    cr_dec_cfg c = {CR_DEC_LLAMA, 70, 150, 3, 5, 1, 301, 16, 1e-5f, 0};
    cr_decoder d;
    random_model(&d, &c, 3);
    check_model(&d, "random llama");
    cr_dec_free(&d);
}

static void test_random_gpt2(void **state) {
    (void)state;
    cr_dec_cfg c = {CR_DEC_GPT2, 48, 130, 2, 4, 4, 257, 16, 1e-5f, 1};
    cr_decoder d;
    random_model(&d, &c, 4);
    check_model(&d, "random gpt2");
    cr_dec_free(&d);
}

/* stories260K, mapped read-only: the copies come from the map. Greedy
 * decoding from BOS may part from float32's ids at a near-tie, so the check
 * is that every id bf16 picks is, by float32's own logits for that prefix,
 * within the rounding tolerance of the best one. */
static void test_stories(void **state) {
    (void)state;
    cr_error e = {0};
    cr_decoder d;
    if (cr_dec_load_llama2c(&d, STORIES, 0, &e) != CR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    check_model(&d, "stories260K");
    enum { G = 64 };
    int V = d.cfg.vocab;
    cr_dec_ws ws;
    assert_int_equal(cr_dec_ws_create(&ws, &d, 1, G, CR_DEC_WS_KV_CACHE, &e), CR_OK);
    int32_t f32[G], seq[G + 1];
    seq[0] = 1; /* BOS */
    assert_int_equal(cr_dec_generate(&d, &ws, seq, 1, G, NULL, NULL, f32, &e), CR_OK);
    assert_int_equal(cr_dec_bf16_make(&d, &e), CR_OK);
    assert_int_equal(cr_dec_generate(&d, &ws, seq, 1, G, NULL, NULL, seq + 1, &e), CR_OK);
    int same = 0;
    while (same < G && seq[1 + same] == f32[same]) same++;
    cr_dec_bf16_drop(&d);
    float *lg = logits_of(&d, seq, G); /* float32 logits along bf16's path */
    double tol = bf16_tol(&d.cfg, max_abs(lg, (size_t)G * V)), worst = 0;
    for (int t = 0; t < G; t++) {
        const float *row = lg + (size_t)t * V;
        double best = -INFINITY;
        for (int j = 0; j < V; j++) best = row[j] > best ? row[j] : best;
        double gap = best - row[seq[t + 1]];
        worst = gap > worst ? gap : worst;
    }
    fprintf(stderr, "stories260K: bf16 greedy ids equal float32's for %d of %d steps; the "
            "largest float32 logit gap of a bf16 pick is %.3g (allowed %.3g)\n", same, G,
            worst, 2 * tol);
    assert_true(worst <= 2 * tol);
    free(lg);
    cr_dec_ws_free(&ws);
    cr_dec_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_llama),
        cmocka_unit_test(test_random_gpt2),
        cmocka_unit_test(test_stories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
