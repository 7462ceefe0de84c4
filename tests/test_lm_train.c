/*
 * test_lm_train.c - language-model pretraining on a tiny corpus the test
 * writes (sentences from a small grammar) with a tiny model and a BPE learnt
 * from the corpus: the loss falls within a few dozen steps; the corpus is
 * split by position and cached with a header that notices a changed corpus;
 * evaluation windows are what they claim; a run stopped and resumed equals
 * an uninterrupted one byte for byte; bad recipes and a corpus too small
 * for one sequence fail with messages that say what is wrong.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/train/lm_train.h"

/* ~20 KB of sentences from a tiny grammar: learnable, but not a copy loop. */
static void write_corpus(const char *path, int n_sentences) {
    static const char *const who[] = {"the cat", "a dog", "my sister", "the old man", "Emma"};
    static const char *const did[] = {"sat on", "looked at", "walked to", "spoke of", "liked"};
    static const char *const what[] = {"the mat", "a garden", "the house", "her friend",
                                       "the river"};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    cr_rng r;
    cr_rng_seed(&r, 5);
    for (int i = 0; i < n_sentences; i++) {
        fprintf(f, "%s %s %s.", who[cr_rng_below(&r, 5)], did[cr_rng_below(&r, 5)],
                what[cr_rng_below(&r, 5)]);
        fputs(i % 7 == 6 ? "\n\n" : " ", f);
    }
    fclose(f);
}

static const char *const RECIPE =
    "corpus: %s\n"
    "train_tokenizer: {vocab_size: 300}\n"
    "model: {arch: %s, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_seq: 16}\n"
    "train: {batch: 4, seq_len: 16, steps: %d, lr: 1.0e-2, warmup: 4, threads: 1,\n"
    "        eval_every: 3, eval_batches: 2, checkpoint_every: 4, log_every: 5}\n";

static void recipe(cr_lm_cfg *c, const char *corpus, const char *arch, int steps) {
    char text[2048];
    snprintf(text, sizeof text, RECIPE, corpus, arch, steps);
    cr_error e = {0};
    if (cr_lm_cfg_parse(c, text, "recipe.yaml", "", &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
}

static void train_ok(const cr_lm_cfg *c, const char *out, int resume, int64_t stop_at,
                     cr_lm_result *r) {
    cr_error e = {0};
    cr_lm_opts o = {.out_dir = out, .resume = resume, .stop_at = stop_at, .log = NULL};
    if (cr_lm_train(c, &o, r, &e)) {
        fprintf(stderr, "lm train: %s\n", e.msg);
        fail();
    }
}

static void test_loss_falls(void **state) {
    (void)state;
    char dir[256], corpus[300], out[300];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    write_corpus(corpus, 700);
    static const char *const archs[] = {"llama", "gpt2"};
    for (int a = 0; a < 2; a++) {
        snprintf(out, sizeof out, "%s/run_%s", dir, archs[a]);
        cr_lm_cfg c;
        recipe(&c, corpus, archs[a], 40);
        cr_lm_result r;
        train_ok(&c, out, 0, 0, &r);
        double uniform = log((double)r.vocab);
        fprintf(stderr, "%s: vocab %d, %lld train / %lld valid tokens, valid loss %.3f "
                "(uniform %.3f)\n", archs[a], (int)r.vocab, (long long)r.n_train,
                (long long)r.n_valid, r.valid_loss, uniform);
        assert_int_equal(r.step, 40);
        /* the held-out part is the last 5% of the stream, rounded down */
        assert_int_equal(r.n_valid, (int64_t)floor((double)(r.n_train + r.n_valid) * 0.05));
        assert_true(r.vocab > 256 && r.vocab <= 300);
        /* a grammar of 5 x 5 x 5 choices is far below the uniform loss */
        assert_true(r.valid_loss < uniform - 2.0);
        assert_true(r.train_loss < uniform - 2.0);
        assert_true(fabs(r.valid_ppl - exp(r.valid_loss)) < 1e-6 * r.valid_ppl);
        /* the files the run promises, and the model reloads */
        char p[400];
        snprintf(p, sizeof p, "%s/model.safetensors", out);
        cr_decoder d;
        cr_error e = {0};
        assert_int_equal(cr_dec_load(&d, p, &e), CR_OK);
        assert_int_equal(d.cfg.vocab, r.vocab);
        assert_int_equal((int)d.cfg.arch, a);
        cr_dec_free(&d);
        snprintf(p, sizeof p, "%s/tokenizer/vocab.bpe", out);
        assert_true(cr_file_exists(p));
        snprintf(p, sizeof p, "%s/metrics.json", out);
        assert_true(cr_file_exists(p));
    }
    cr_test_rmdir(dir);
}

/* The split is by position, and the cache holds exactly the encoding. */
static void test_split_and_cache(void **state) {
    (void)state;
    assert_int_equal(cr_lm_split(1000, 0.05), 950);
    assert_int_equal(cr_lm_split(1019, 0.05), 969); /* floor(50.95) = 50 held out */
    assert_int_equal(cr_lm_split(10, 0.05), 10);

    char dir[256], corpus[300], tok[300], cache[300];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(tok, sizeof tok, "%s/tok", dir);
    snprintf(cache, sizeof cache, "%s/tokens.bin", dir);
    write_corpus(corpus, 300);
    cr_error e = {0};
    cr_bpe_train_opts to;
    cr_bpe_train_opts_default(&to);
    to.vocab_size = 300;
    assert_int_equal(cr_bpe_train_file(corpus, &to, tok, NULL, &e), CR_OK);
    cr_bpe *b;
    assert_int_equal(cr_bpe_load(&b, tok, &e), CR_OK);
    assert_int_equal(cr_lm_bos(b), cr_bpe_vocab_size(b) - 1);

    int32_t *a = NULL, *c = NULL, *d = NULL;
    size_t na, nc, nd;
    assert_int_equal(cr_lm_corpus_ids(corpus, b, tok, NULL, &a, &na, &e), CR_OK);
    assert_int_equal(cr_lm_corpus_ids(corpus, b, tok, cache, &c, &nc, &e), CR_OK); /* writes */
    assert_true(cr_file_exists(cache));
    assert_int_equal(nc, na);
    assert_memory_equal(a, c, na * 4);
    cr_free(c);
    assert_int_equal(cr_lm_corpus_ids(corpus, b, tok, cache, &c, &nc, &e), CR_OK); /* reads */
    assert_int_equal(nc, na);
    assert_memory_equal(a, c, na * 4);

    /* a corpus that changed is tokenised again, never served from the cache */
    FILE *f = fopen(corpus, "a");
    assert_non_null(f);
    fputs(" The end.", f);
    fclose(f);
    assert_int_equal(cr_lm_corpus_ids(corpus, b, tok, cache, &d, &nd, &e), CR_OK);
    assert_true(nd > na);
    assert_memory_equal(a, d, (na - 2) * 4);
    cr_free(d);
    /* a truncated cache is ignored too */
    cr_mmap m;
    assert_int_equal(cr_mmap_open(&m, cache, &e), CR_OK);
    size_t half = m.size / 2;
    uint8_t *copy = malloc(half);
    memcpy(copy, m.data, half);
    cr_mmap_close(&m);
    assert_int_equal(cr_write_file_atomic(cache, copy, half, &e), CR_OK);
    free(copy);
    assert_int_equal(cr_lm_corpus_ids(corpus, b, tok, cache, &d, &nd, &e), CR_OK);
    assert_true(nd > na);

    /* windows: with a BOS the inputs are BOS + s[0..T-2], the targets s[0..T-1] */
    int32_t s[9] = {10, 11, 12, 13, 14, 15, 16, 17, 18}, in[4], tg[4];
    cr_lm_window(s, 4, 99, in, tg);
    assert_int_equal(in[0], 99);
    assert_int_equal(in[3], 12);
    assert_int_equal(tg[0], 10);
    assert_int_equal(tg[3], 13);
    cr_lm_window(s, 4, -1, in, tg);
    assert_int_equal(in[0], 10);
    assert_int_equal(tg[3], 14);
    assert_int_equal(cr_lm_window_tokens(4, 99), 4);
    assert_int_equal(cr_lm_window_tokens(4, -1), 5);

    /* evaluation = the mean of the windows' own forwards, targets weighted */
    cr_dec_cfg mc = {.arch = CR_DEC_LLAMA, .dim = 8, .hidden_dim = 16, .n_layers = 1,
                     .n_heads = 2, .n_kv_heads = 2, .vocab = cr_bpe_vocab_size(b), .max_seq = 8,
                     .norm_eps = 1e-5f, .tied = 1};
    cr_decoder dec;
    cr_dec_ws ws;
    cr_rng r;
    cr_rng_seed(&r, 3);
    assert_int_equal(cr_dec_create(&dec, &mc, &e), CR_OK);
    cr_dec_init(&dec, &r);
    assert_int_equal(cr_dec_ws_create(&ws, &dec, 2, 8, 0, &e), CR_OK);
    double loss, want = 0;
    int64_t cnt;
    int32_t bos = cr_lm_bos(b), win[8], wt[8];
    assert_int_equal(cr_lm_eval_ids(&dec, &ws, d, 41, 2, 8, bos, 0, &loss, &cnt, &e), CR_OK);
    assert_int_equal(cnt, 5 * 8); /* floor(41 / 8) windows */
    for (int i = 0; i < 5; i++) {
        cr_lm_window(d + i * 8, 8, bos, win, wt);
        assert_int_equal(cr_dec_forward(&dec, &ws, win, NULL, wt, 1, 8, 0, &e), CR_OK);
        want += ws.loss / 5.0;
    }
    assert_true(fabs(loss - want) < 1e-5);
    assert_int_equal(cr_lm_eval_ids(&dec, &ws, d, 7, 2, 8, bos, 0, &loss, &cnt, &e),
                     CR_ERR_LIMIT);
    cr_dec_ws_free(&ws);
    cr_dec_free(&dec);
    cr_free(a);
    cr_free(c);
    cr_free(d);
    cr_bpe_free(b);
    cr_test_rmdir(dir);
}

static void same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    assert_int_equal(cr_read_file(a, &x, &nx, NULL), CR_OK);
    assert_int_equal(cr_read_file(b, &y, &ny, NULL), CR_OK);
    if (nx != ny || memcmp(x, y, nx)) {
        fprintf(stderr, "%s and %s differ (%zu and %zu bytes)\n", a, b, nx, ny);
        fail();
    }
    cr_free(x);
    cr_free(y);
}

static void test_resume_exact(void **state) {
    (void)state;
    char dir[256], corpus[300], a[300], b[300], pa[400], pb[400];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(a, sizeof a, "%s/straight", dir);
    snprintf(b, sizeof b, "%s/stopped", dir);
    write_corpus(corpus, 400);
    cr_lm_cfg c;
    recipe(&c, corpus, "llama", 12);
    cr_lm_result ra, rb;
    train_ok(&c, a, 0, 0, &ra);
    /* stopped after step 5 (between checkpoints and evaluations), resumed twice */
    train_ok(&c, b, 0, 5, &rb);
    assert_int_equal(rb.step, 5);
    train_ok(&c, b, 1, 9, &rb);
    assert_int_equal(rb.step, 9);
    train_ok(&c, b, 1, 0, &rb);
    assert_int_equal(rb.step, 12);
    assert_true(rb.valid_loss == ra.valid_loss);
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    same_file(pa, pb);
    snprintf(pa, sizeof pa, "%s/train_state.safetensors", a);
    snprintf(pb, sizeof pb, "%s/train_state.safetensors", b);
    same_file(pa, pb);

    /* a different recipe does not resume someone else's state */
    cr_lm_cfg c2 = c;
    c2.batch = 3;
    cr_error e = {0};
    cr_lm_opts o = {.out_dir = b, .resume = 1};
    assert_int_equal(cr_lm_train(&c2, &o, NULL, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "another run"));
    /* nothing to resume from */
    snprintf(pa, sizeof pa, "%s/empty", dir);
    o.out_dir = pa;
    c2 = c;
    c2.train_vocab = 0;
    snprintf(c2.tokenizer, sizeof c2.tokenizer, "%s/tokenizer", a);
    assert_int_equal(cr_lm_train(&c2, &o, NULL, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no training state"));
    cr_test_rmdir(dir);
}

/* A recipe that must fail, and a fragment its message must contain. */
static void bad(const char *text, cr_status want, const char *frag) {
    cr_lm_cfg c;
    cr_error e = {0};
    cr_status s = cr_lm_cfg_parse(&c, text, "bad.yaml", "", &e);
    if (s != want || !strstr(e.msg, frag)) {
        fprintf(stderr, "recipe:\n%s\ngave status %d '%s', expected %d with '%s'\n", text, s,
                e.msg, want, frag);
        fail();
    }
}

static void test_bad_config(void **state) {
    (void)state;
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\nmodel: {dim: 16, n_layers: 1, "
        "n_heads: 2, widht: 3}\n",
        CR_ERR_CONFIG, "unknown key 'widht'");
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\nmodel: {dim: 16, n_layers: 1, "
        "n_heads: 2}\ntrain: {stpes: 3}\n",
        CR_ERR_CONFIG, "unknown key 'stpes'");
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\nmodel: {dim: 1000000, n_layers: 1, "
        "n_heads: 2}\n",
        CR_ERR_CONFIG, "model.dim");
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\nmodel: {dim: 16, n_layers: 0, "
        "n_heads: 2}\n",
        CR_ERR_CONFIG, "model.n_layers");
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\nmodel: {dim: 16, n_layers: 1, "
        "n_heads: 2, max_seq: 8}\ntrain: {seq_len: 16}\n",
        CR_ERR_CONFIG, "longer than model.max_seq");
    bad("corpus: c.txt\ntokenizer: tok\ntrain_tokenizer: {vocab_size: 300}\nmodel: {dim: 16, "
        "n_layers: 1, n_heads: 2}\n",
        CR_ERR_CONFIG, "exactly one of");
    bad("train_tokenizer: {vocab_size: 300}\nmodel: {dim: 16, n_layers: 1, n_heads: 2}\n",
        CR_ERR_CONFIG, "missing required key 'corpus'");
    /* a missing section has no line to point at: the file is named anyway
     * (found by tests/fuzz/fuzz_yaml.c) */
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\n", CR_ERR_CONFIG,
        "bad.yaml: model: missing");
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\nmodel: {arch: bert, dim: 16, "
        "n_layers: 1, n_heads: 2}\n",
        CR_ERR_CONFIG, "expected one of: llama, gpt2");
    bad("corpus: c.txt\ntrain_tokenizer: {vocab_size: 300}\nmodel: {dim: 16, n_layers: 1, "
        "n_heads: 2}\ntrain: {lr: fast}\n",
        CR_ERR_CONFIG, "train.lr");

    /* well-formed but impossible: caught once the vocabulary is known */
    char dir[256], corpus[300], out[300];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_corpus(corpus, 400);
    cr_lm_cfg c;
    cr_error e = {0};
    cr_lm_opts o = {.out_dir = out};
    recipe(&c, corpus, "llama", 3);
    c.model.n_heads = 3; /* 16 does not split into 3 heads */
    c.model.n_kv_heads = 3;
    assert_int_equal(cr_lm_train(&c, &o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "n_heads"));
    recipe(&c, corpus, "llama", 3);
    c.model.dim = 8192;
    c.model.n_layers = 256;
    c.model.hidden_dim = 65536;
    assert_int_equal(cr_lm_train(&c, &o, NULL, &e), CR_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "GiB"));

    /* a corpus too small for one sequence in each split */
    write_corpus(corpus, 12);
    snprintf(out, sizeof out, "%s/out2", dir);
    o.out_dir = out;
    recipe(&c, corpus, "llama", 3);
    assert_int_equal(cr_lm_train(&c, &o, NULL, &e), CR_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "smaller seq_len"));
    fprintf(stderr, "small corpus: %s\n", e.msg);
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_falls),
        cmocka_unit_test(test_split_and_cache),
        cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
