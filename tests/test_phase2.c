/*
 * test_phase2.c - phase 2 of the Item-Language Model on tiny parts: prompt
 * filling (each slot becomes NQ soft positions in entity order, only the
 * target's tokens are scored, long targets are cut, bad templates fail),
 * the adapters' and the Q-Former's gradients against finite differences
 * through a frozen random LM, and training steps that move the encoder and
 * adapter while the LM's weights stay bit-identical (no gradient slab is
 * ever allocated for it) and its perplexity on a text is unchanged.
 */
#include "util/testutil.h"

#include "../src/ilm/phase2.h"
#include "../src/train/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const corpus[] = {
    "The movie is described as: a comedy about toys.",
    "A viewer has watched many movies. Next they will watch a drama.",
    "The genres of the movie are: Comedy, Drama, Romance.",
    "People who watched it also watched Heat (1995). Directed by Michael Mann.",
};

/* A BPE trained on the sentences above, saved under dir/tok. */
static void make_tok(const char *dir, cr_p2_tok *tok) {
    cr_error e = {0};
    cr_bpe_trainer *t;
    assert_int_equal(cr_bpe_trainer_new(&t, &e), CR_OK);
    for (int r = 0; r < 3; r++)
        for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++)
            assert_int_equal(cr_bpe_trainer_add(t, corpus[i], strlen(corpus[i]), &e), CR_OK);
    cr_bpe_train_opts o;
    cr_bpe_train_opts_default(&o);
    o.vocab_size = 300;
    char p[512];
    snprintf(p, sizeof p, "%s/tok", dir);
    assert_int_equal(cr_bpe_trainer_fit(t, &o, &e), CR_OK);
    assert_int_equal(cr_bpe_trainer_save(t, p, &e), CR_OK);
    cr_bpe_trainer_free(t);
    assert_int_equal(cr_p2_tok_open(tok, p, &e), CR_OK);
    assert_true(tok->bos >= 0 && tok->eos == tok->bos);
}

static void test_prompt_fill(void **state) {
    (void)state;
    char dir[256];
    cr_test_tmpdir(dir, sizeof dir);
    cr_p2_tok tok;
    make_tok(dir, &tok);
    cr_error e = {0};
    const int NQ = 3;
    cr_p2_batch b;
    assert_int_equal(cr_p2_batch_init(&b, 3, 64, 8, NQ, &e), CR_OK);
    int32_t hist[2] = {11, 12};
    cr_p2_example x = {.tmpl = "A viewer {user} has watched {history}. Next they will watch",
                       .item = -1, .user = 5, .hist = hist, .n_hist = 2,
                       .target = " Heat (1995).", .eos = 1};
    assert_int_equal(cr_p2_batch_add(&b, &tok, &x, &e), CR_OK);
    assert_int_equal(b.B, 1);
    assert_int_equal(b.E, 3);
    assert_int_equal(b.ent[0], 5), assert_int_equal(b.kind[0], CR_QF_USER);
    assert_int_equal(b.ent[1], 11), assert_int_equal(b.kind[1], CR_QF_ITEM);
    assert_int_equal(b.ent[2], 12), assert_int_equal(b.kind[2], CR_QF_ITEM);
    assert_int_equal(b.ids[0], tok.bos);
    /* soft positions: NQ per entity, in order, ids -1, never scored */
    int nsoft = 0, last = -1;
    for (int t = 0; t < b.len[0]; t++) {
        if (b.soft[t] < 0) {
            assert_true(b.ids[t] >= 0);
            continue;
        }
        assert_int_equal(b.ids[t], -1);
        assert_int_equal(b.tgt[t], -1);
        assert_int_equal(b.soft[t], last + 1);
        last = b.soft[t];
        nsoft++;
    }
    assert_int_equal(nsoft, NQ * 3);
    /* the target: its tokens, then EOS; predicted from the position before each */
    int32_t *ti;
    size_t tn;
    assert_int_equal(cr_p2_tok_encode(&tok, " Heat (1995).", 13, &ti, &tn, &e), CR_OK);
    int ts = b.tstart[0];
    assert_int_equal(b.len[0], ts + (int)tn + 1);
    for (size_t i = 0; i < tn; i++) assert_int_equal(b.ids[ts + i], ti[i]);
    assert_int_equal(b.ids[ts + tn], tok.eos);
    for (int t = 0; t < b.cap_T; t++) {
        int scored = t >= ts - 1 && t < b.len[0] - 1;
        assert_int_equal(b.tgt[t], scored ? b.ids[t + 1] : -1);
    }
    /* a second row: {item}; the batch is padded to the longest row */
    cr_p2_example y = {.tmpl = "The movie {item} is", .item = 7, .user = -1, .target = " good",
                       .eos = 0};
    assert_int_equal(cr_p2_batch_add(&b, &tok, &y, &e), CR_OK);
    assert_int_equal(b.E, 4);
    int first = -1, n1 = 0;
    for (int t = 0; t < b.len[1]; t++)
        if (b.soft[b.cap_T + t] >= 0) first = first < 0 ? t : first, n1++;
    assert_int_equal(n1, NQ);
    assert_int_equal(b.soft[b.cap_T + first], 3 * NQ); /* the fourth entity's first query */
    assert_int_equal(b.T, b.len[0] > b.len[1] ? b.len[0] : b.len[1]);
    for (int t = b.len[1]; t < b.cap_T; t++) assert_int_equal(b.tgt[b.cap_T + t], -1);
    /* errors leave the batch as it was */
    cr_p2_example bad = {.tmpl = "what is {thing}", .item = 1, .user = -1, .target = " x"};
    assert_int_equal(cr_p2_batch_add(&b, &tok, &bad, &e), CR_ERR_ARG);
    cr_p2_example nouser = {.tmpl = "{user} likes", .item = 1, .user = -1, .target = " x"};
    assert_int_equal(cr_p2_batch_add(&b, &tok, &nouser, &e), CR_ERR_ARG);
    assert_int_equal(b.B, 2);
    assert_int_equal(b.E, 4);
    /* a target too long for the row is cut, not the prompt */
    cr_p2_batch s;
    assert_int_equal(cr_p2_batch_init(&s, 1, 12, 2, NQ, &e), CR_OK);
    cr_p2_example lng = {.tmpl = "{item}:", .item = 2, .user = -1,
                         .target = " a comedy about toys and a drama about movies", .eos = 1};
    assert_int_equal(cr_p2_batch_add(&s, &tok, &lng, &e), CR_OK);
    assert_int_equal(s.len[0], 12);
    assert_int_equal(s.truncated, 1);
    cr_p2_batch_clear(&s);
    cr_p2_example huge = {.tmpl = "{item} {item} {item} {item}", .item = 2, .user = -1};
    assert_int_equal(cr_p2_batch_add(&s, &tok, &huge, &e), CR_ERR_LIMIT);
    cr_free(ti);
    cr_p2_batch_free(&s);
    cr_p2_batch_free(&b);
    cr_p2_tok_free(&tok);
    cr_test_rmdir(dir);
}

/* ---- a tiny frozen LM, encoder and data ------------------------------------------------- */
enum { D = 4, NI = 10, NU = 3 };

typedef struct fx {
    char        dir[256];
    cr_p2_tok   tok;
    cr_decoder  lm;
    float       item[NI * D], user[NU * D];
    cr_p2_batch b;
} fx;

static void fx_make(fx *f) {
    cr_test_tmpdir(f->dir, sizeof f->dir);
    make_tok(f->dir, &f->tok);
    cr_error e = {0};
    cr_dec_cfg c = {.arch = CR_DEC_LLAMA, .dim = 16, .hidden_dim = 32, .n_layers = 1,
                    .n_heads = 2, .n_kv_heads = 2, .vocab = f->tok.vocab, .max_seq = 64,
                    .norm_eps = 1e-5f, .tied = 1};
    assert_int_equal(cr_dec_create(&f->lm, &c, &e), CR_OK);
    cr_rng r;
    cr_rng_seed(&r, 3);
    cr_dec_init(&f->lm, &r);
    /* GPT-2's 0.02 leaves a 16-wide LM nearly deaf to its context; louder
     * weights make the targets depend on the soft tokens */
    for (size_t i = 0; i < f->lm.pt.total; i++) f->lm.pt.data[i] *= 3;
    cr_test_fill(f->item, NI * D, 1, 21);
    cr_test_fill(f->user, NU * D, 1, 22);
    assert_int_equal(cr_p2_batch_init(&f->b, 3, 48, 8, 3, &e), CR_OK);
    int32_t hist[2] = {1, 4};
    cr_p2_example xs[3] = {
        {.tmpl = "The movie {item} is described as:", .item = 3, .user = -1,
         .target = " a comedy about toys.", .eos = 1},
        {.tmpl = "A viewer {user} has watched {history}. Next they will watch", .item = -1,
         .user = 2, .hist = hist, .n_hist = 2, .target = " Heat (1995).", .eos = 1},
        {.tmpl = "People who watched {item} also watched", .item = 8, .user = -1,
         .target = " a drama.", .eos = 1}};
    for (int i = 0; i < 3; i++) assert_int_equal(cr_p2_batch_add(&f->b, &f->tok, &xs[i], &e), CR_OK);
}

static void fx_free(fx *f) {
    cr_p2_batch_free(&f->b);
    cr_dec_free(&f->lm);
    cr_p2_tok_free(&f->tok);
    cr_test_rmdir(f->dir);
}

static void make_qformer(const fx *f, cr_p2_model *m, uint64_t seed) {
    cr_qformer_cfg c;
    cr_qformer_cfg_default(&c);
    c.nq = 3, c.layers = 1, c.width = 8, c.heads = 2, c.ffn = 16, c.n_kv = 2, c.d_cf = D;
    c.vocab = 12, c.max_text = 4, c.embed = 4;
    cr_qformer q;
    cr_error e = {0};
    char p[512];
    snprintf(p, sizeof p, "%s/q.safetensors", f->dir);
    assert_int_equal(cr_qformer_init(&q, &c, seed, &e), CR_OK);
    assert_int_equal(cr_qformer_save(&q, p, NULL, 0, &e), CR_OK);
    cr_qformer_free(&q);
    assert_int_equal(cr_p2_model_qformer(m, p, 16, cr_p2_emb_rms(&f->lm), seed, &e), CR_OK);
}

typedef struct { cr_p2_model *m; cr_p2_step *s; fx *f; } fd_ctx;

static double fd_loss(void *ctx) {
    fd_ctx *c = ctx;
    double l;
    cr_error e = {0};
    assert_int_equal(cr_p2_forward(c->m, c->s, &c->f->lm, &c->f->b, c->f->item, c->f->user, 0,
                                   &l, &e), CR_OK);
    return l;
}

static void check_grads(fx *f, cr_p2_model *m) {
    cr_error e = {0};
    cr_p2_step s;
    assert_int_equal(cr_p2_step_init(&s, m, &f->lm, 3, 48, 8, 1, &e), CR_OK);
    assert_null(s.dws.grads); /* frozen: the LM has no gradient slab at all */
    double l;
    cr_p2_model_zero_grad(m);
    assert_int_equal(cr_p2_forward(m, &s, &f->lm, &f->b, f->item, f->user, 1, &l, &e), CR_OK);
    assert_true(isfinite(l) && l > 0);
    fd_ctx c = {m, &s, f};
    size_t n = m->pt.total < 200 ? m->pt.total : 200;
    /* float32 through the LM: a loss near 6 moves in steps of ~5e-7, so
     * central differences at h = 2e-3 cannot resolve gradients below ~5e-3 */
    static uint8_t skip[200];
    int checked = 0;
    for (size_t i = 0; i < n; i++) checked += !(skip[i] = fabsf(m->grad[i]) < 5e-3f);
    assert_true(checked > 20);
    assert_true(cr_test_gradcheck("adapter", fd_loss, &c, m->pt.data, m->grad, n, 2e-3, 3e-2, skip));
    if (m->kind == CR_P2_QFORMER) { /* and on into the encoder: its queries and CF projection */
        int ix[2] = {m->qf.ix.query, m->qf.ix.cf_w};
        for (int k = 0; k < 2; k++) {
            float *p = cr_qformer_p(&m->qf, ix[k]), *g = cr_qformer_g(&m->qf, ix[k]);
            size_t nk = m->qf.pt.t[ix[k]].numel;
            assert_true(cr_test_gradcheck(m->qf.pt.t[ix[k]].name, fd_loss, &c, p, g, nk, 2e-3,
                                          5e-2, NULL));
        }
        /* the text branch is not on the query path: no gradient, frozen */
        float *g = cr_qformer_g(&m->qf, m->qf.ix.tok_emb);
        for (size_t i = 0; i < m->qf.pt.t[m->qf.ix.tok_emb].numel; i++) assert_true(g[i] == 0);
        assert_true(m->qf.pt.t[m->qf.ix.tok_emb].flags & CR_PARAM_FROZEN);
    }
    cr_p2_step_free(&s);
}

static void test_gradients_fd(void **state) {
    (void)state;
    static fx f;
    fx_make(&f);
    cr_p2_model m;
    make_qformer(&f, &m, 5);
    check_grads(&f, &m);
    cr_p2_model_free(&m);
    cr_error e = {0};
    assert_int_equal(cr_p2_model_mlp(&m, D, 3, 8, 16, cr_p2_emb_rms(&f.lm), 5, &e), CR_OK);
    check_grads(&f, &m);
    cr_p2_model_free(&m);
    fx_free(&f);
}

static void test_lm_stays_frozen(void **state) {
    (void)state;
    static fx f;
    fx_make(&f);
    cr_error e = {0};
    char text[512];
    snprintf(text, sizeof text, "%s/held.txt", f.dir);
    FILE *tf = fopen(text, "w");
    assert_non_null(tf);
    for (int r = 0; r < 20; r++) fprintf(tf, "%s\n", corpus[r % 4]);
    fclose(tf);
    double ppl0, ppl1;
    assert_int_equal(cr_p2_lm_ppl(&f.lm, &f.tok, text, 4096, 16, 4, &ppl0, &e), CR_OK);
    uint64_t h0 = cr_p2_lm_hash(&f.lm);
    cr_p2_model m;
    make_qformer(&f, &m, 9);
    float q0 = cr_qformer_p(&m.qf, m.qf.ix.query)[0], a0 = m.pt.data[0];
    cr_p2_step s;
    assert_int_equal(cr_p2_step_init(&s, &m, &f.lm, 3, 48, 8, 1, &e), CR_OK);
    cr_adam oa, oq;
    assert_int_equal(cr_adam_init(&oa, &m.pt, CR_OPT_ADAMW, 1e-2f, 0.9f, 0.999f, 1e-8f, 0, &e), CR_OK);
    assert_int_equal(cr_adam_init(&oq, &m.qf.pt, CR_OPT_ADAMW, 1e-2f, 0.9f, 0.999f, 1e-8f, 0, &e), CR_OK);
    double first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        cr_p2_model_zero_grad(&m);
        assert_int_equal(cr_p2_forward(&m, &s, &f.lm, &f.b, f.item, f.user, 1, &last, &e), CR_OK);
        if (!step) first = last;
        cr_adam_step(&oa, &m.pt, m.pt.data, m.grad, 1e-2f);
        cr_adam_step(&oq, &m.qf.pt, m.qf.pt.data, m.qf.grad, 1e-2f);
    }
    fprintf(stderr, "phase-2 loss %.4f -> %.4f\n", first, last);
    assert_true(last < first - 0.1);
    assert_true(cr_qformer_p(&m.qf, m.qf.ix.query)[0] != q0 && m.pt.data[0] != a0);
    assert_true(cr_p2_lm_hash(&f.lm) == h0);
    assert_int_equal(cr_p2_lm_ppl(&f.lm, &f.tok, text, 4096, 16, 4, &ppl1, &e), CR_OK);
    assert_true(ppl1 == ppl0);
    /* the adapter round-trips through its checkpoint */
    char d2[600];
    snprintf(d2, sizeof d2, "%s/p2", f.dir);
    assert_int_equal(cr_p2_model_save(&m, d2, NULL, 0, &e), CR_OK);
    cr_p2_model m2;
    assert_int_equal(cr_p2_model_load(&m2, d2, &e), CR_OK);
    assert_memory_equal(m2.pt.data, m.pt.data, sizeof(float) * m.pt.total);
    assert_memory_equal(m2.qf.pt.data, m.qf.pt.data, sizeof(float) * m.qf.pt.total);
    cr_p2_model_free(&m2);
    cr_adam_free(&oa), cr_adam_free(&oq);
    cr_p2_step_free(&s);
    cr_p2_model_free(&m);
    fx_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_fill),
        cmocka_unit_test(test_gradients_fd),
        cmocka_unit_test(test_lm_stays_frozen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
