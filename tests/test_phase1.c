/*
 * test_phase1.c - phase 1 of the item encoder on a tiny synthetic case:
 * each of the five losses falls, the checkpoint written by the loop loads
 * back bit for bit, retrieval runs; item texts are built and tokenised
 * with the documented truncation rule; bad input (a CF file of the wrong
 * dimension, missing files, unknown loss names) gives clear errors.
 */
#include "util/testutil.h"

#include "../src/ilm/item_text.h"
#include "../src/ilm/phase1.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NI = 48, NU = 16, D = 8, V0 = 16, T = 8, NTRAIN = 40 };

typedef struct synth {
    float   item[NI * D], user[NU * D];
    int32_t tok[NI * T], len[NI], train[NTRAIN], ii[2 * NI], ui[2 * NU * 3];
    cr_phase1_data d;
} synth;

/* Texts that depend on the CF vectors (the signs of the first four values,
 * and the item's group of four), so the encoder has something to align. */
static void synth_make(synth *s) {
    cr_test_fill(s->item, NI * D, 1, 11);
    cr_test_fill(s->user, NU * D, 1, 12);
    for (int i = 0; i < NI; i++) {
        int32_t *r = s->tok + i * T;
        r[0] = V0;
        for (int j = 0; j < 4; j++) r[1 + j] = 2 * j + (s->item[i * D + j] > 0);
        r[5] = 8 + (i / 4) % 8;
        r[6] = V0 + 2;
        r[7] = V0 + 2;
        s->len[i] = i % 3 ? 7 : 6; /* some rows end early: [EOS] at 5 */
        if (s->len[i] == 6) r[5] = V0 + 2;
    }
    for (int i = 0; i < NTRAIN; i++) s->train[i] = i;
    for (int i = 0; i < NI; i++) s->ii[2 * i] = i, s->ii[2 * i + 1] = (i + 4) % NI;
    for (int u = 0; u < NU; u++)
        for (int k = 0; k < 3; k++) s->ui[2 * (u * 3 + k)] = u, s->ui[2 * (u * 3 + k) + 1] = (u * 3 + k) % NI;
    s->d = (cr_phase1_data){.n_items = NI, .n_users = NU, .d = D, .item_cf = s->item,
                            .user_cf = s->user, .T = T, .tok = s->tok, .tok_len = s->len,
                            .train_items = s->train, .n_train = NTRAIN, .ii = s->ii,
                            .n_ii = NI, .ui = s->ui, .n_ui = NU * 3};
}

static void tiny_cfg(cr_qformer_cfg *c) {
    cr_qformer_cfg_default(c);
    c->nq = 4, c->layers = 1, c->width = 16, c->heads = 2, c->ffn = 32, c->n_kv = 2;
    c->d_cf = D, c->vocab = V0 + 3, c->max_text = T, c->embed = 8;
}

static void test_losses_fall_and_checkpoint(void **state) {
    (void)state;
    static synth s;
    synth_make(&s);
    cr_qformer_cfg c;
    tiny_cfg(&c);
    cr_qformer m;
    cr_error e = {0};
    assert_int_equal(cr_qformer_init(&m, &c, 5, &e), CR_OK);
    char dir[256], path[300];
    cr_test_tmpdir(dir, sizeof dir);
    cr_phase1_opts o;
    cr_phase1_opts_default(&o);
    o.steps = 120, o.batch = 8, o.optim.lr = 3e-3f, o.optim.warmup = 5, o.log_every = 20, o.seed = 3;
    o.out_dir = dir, o.ckpt_every = 60;
    cr_phase1_result r;
    memset(&r, 0, sizeof r);
    double r1 = 0, r10 = 0;
    assert_int_equal(cr_phase1_train(&m, &s.d, &o, &r, &e), CR_OK);
    for (int k = 0; k < CR_P1_NLOSS; k++) {
        fprintf(stderr, "%s: %.4f -> %.4f\n", cr_p1_loss_name(k), r.first[k], r.last[k]);
        assert_true(isfinite(r.first[k]) && isfinite(r.last[k]));
        assert_true(r.last[k] < r.first[k]);
    }
    /* the step-120 checkpoint is the trained model */
    snprintf(path, sizeof path, "%s/qformer.safetensors", dir);
    cr_qformer m2;
    assert_int_equal(cr_qformer_load(&m2, path, &e), CR_OK);
    assert_int_equal(m2.pt.total, m.pt.total);
    assert_memory_equal(m2.pt.data, m.pt.data, m.pt.total * sizeof(float));
    cr_qformer_free(&m2);
    /* retrieval on the training items runs and is a share */
    assert_int_equal(cr_phase1_recall(&m, &s.d, s.train, NTRAIN, 8, &r1, &r10, &e), CR_OK);
    assert_true(r1 >= 0 && r1 <= r10 && r10 <= 1);
    assert_true(r10 > 10.0 / NTRAIN); /* better than chance after training */
    /* CF vectors of the wrong size for this encoder */
    s.d.d = D + 1;
    assert_int_equal(cr_phase1_train(&m, &s.d, &o, &r, &e), CR_ERR_SHAPE);
    assert_non_null(strstr(e.msg, "expects 8"));
    cr_qformer_free(&m);
    cr_test_rmdir(dir);
}

/* One loss on at a time also trains (the other paths are skipped). */
static void test_single_losses(void **state) {
    (void)state;
    static synth s;
    synth_make(&s);
    cr_qformer_cfg c;
    tiny_cfg(&c);
    for (int k = 0; k < CR_P1_NLOSS; k++) {
        cr_qformer m;
        cr_error e = {0};
        assert_int_equal(cr_qformer_init(&m, &c, 6, &e), CR_OK);
        cr_phase1_opts o;
        cr_phase1_opts_default(&o);
        o.steps = 40, o.batch = 8, o.optim.lr = 3e-3f, o.optim.warmup = 2, o.log_every = 10;
        for (int j = 0; j < CR_P1_NLOSS; j++) o.weight[j] = j == k;
        cr_phase1_result r;
        assert_int_equal(cr_phase1_train(&m, &s.d, &o, &r, &e), CR_OK);
        for (int j = 0; j < CR_P1_NLOSS; j++)
            if (j != k && j != CR_P1_ITC) assert_true(isnan(r.last[j]));
        assert_true(r.last[k] < r.first[k]);
        cr_qformer_free(&m);
    }
}

static void write_file(const char *dir, const char *name, const char *text) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_item_texts_and_truncation(void **state) {
    (void)state;
    char dir[256], tok[300];
    cr_test_tmpdir(dir, sizeof dir);
    write_file(dir, "movies.csv",
               "movieId,title,genres\n"
               "1,Toy Story (1995),Adventure|Animation\n"
               "2,\"American President, The (1995)\",Comedy|Drama|Romance\n"
               "3,Nothing (2001),(no genres listed)\n");
    write_file(dir, "movies-extra.tsv",
               "movieId\tdirector\tmpaa_rating\timdb_rating\n1\tJohn Lasseter\tG\t8.2\n"
               "2\tRob Reiner\t\t6.8\n");
    int64_t raw[4] = {2, 1, 3, 99};
    cr_item_texts t;
    cr_error e = {0};
    assert_int_equal(cr_item_texts_load(&t, dir, raw, 4, &e), CR_OK);
    assert_string_equal(t.text[0], "American President, The (1995). Comedy, Drama, Romance. "
                                   "Directed by Rob Reiner.");
    assert_string_equal(t.text[1], "Toy Story (1995). Adventure, Animation. Directed by John "
                                   "Lasseter. Rated G.");
    assert_string_equal(t.text[2], "Nothing (2001).");
    assert_null(t.text[3]);
    assert_int_equal(t.missing, 1);
    /* a tokenizer from these texts; then the truncation rule */
    cr_bpe_trainer *tr;
    assert_int_equal(cr_bpe_trainer_new(&tr, &e), CR_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cr_bpe_trainer_add(tr, t.text[i], strlen(t.text[i]), &e), CR_OK);
    cr_bpe_train_opts bo;
    cr_bpe_train_opts_default(&bo);
    bo.vocab_size = 300;
    snprintf(tok, sizeof tok, "%s/tok", dir);
    assert_int_equal(cr_bpe_trainer_fit(tr, &bo, &e), CR_OK);
    assert_int_equal(cr_bpe_trainer_save(tr, tok, &e), CR_OK);
    cr_bpe_trainer_free(tr);
    cr_bpe *bpe;
    assert_int_equal(cr_bpe_load(&bpe, tok, &e), CR_OK);
    int32_t V = cr_bpe_vocab_size(bpe), row[64], len, trunc;
    int32_t *ids;
    size_t n;
    assert_int_equal(cr_bpe_encode(bpe, t.text[1], strlen(t.text[1]), &ids, &n, &e), CR_OK);
    assert_true(n > 6);
    assert_int_equal(cr_item_text_encode(bpe, t.text[1], 6, row, &len, &trunc, &e), CR_OK);
    assert_int_equal(len, 6);
    assert_int_equal(trunc, 1);
    assert_int_equal(row[0], V);     /* [CLS] */
    for (int i = 0; i < 4; i++) assert_int_equal(row[1 + i], ids[i]); /* the first T-2 kept */
    assert_int_equal(row[5], V + 2); /* [EOS] */
    assert_int_equal(cr_item_text_encode(bpe, t.text[1], (int)n + 4, row, &len, &trunc, &e),
                     CR_OK);
    assert_int_equal(len, (int)n + 2);
    assert_int_equal(trunc, 0);
    assert_int_equal(row[n + 1], V + 2);
    assert_int_equal(row[n + 3], V + 2); /* padding */
    assert_int_equal(cr_item_text_encode(bpe, "x", 1, row, &len, &trunc, &e), CR_ERR_ARG);
    cr_free(ids);
    cr_bpe_free(bpe);
    cr_item_texts_free(&t);
    /* a data directory without movies.csv */
    char empty[256];
    cr_test_tmpdir(empty, sizeof empty);
    assert_int_not_equal(cr_item_texts_load(&t, empty, raw, 4, &e), CR_OK);
    assert_non_null(strstr(e.msg, "movies.csv"));
    cr_test_rmdir(empty);
    cr_test_rmdir(dir);
}

static void test_run_errors(void **state) {
    (void)state;
    char dir[256], mfp[300], out[300];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(mfp, sizeof mfp, "%s/mf.safetensors", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    /* a tiny MF file of dimension 4 */
    int64_t off[3] = {0, 2, 3}, ru[2] = {10, 11}, ri[3] = {1, 2, 3};
    int32_t item[3] = {0, 1, 2};
    float rating[3] = {4, 5, 3}, uv[8], iv[12], ib[3] = {0};
    cr_test_fill(uv, 8, 1, 1);
    cr_test_fill(iv, 12, 1, 2);
    cr_interactions x = {.n_users = 2, .n_items = 3, .n = 3, .user_off = off, .item = item,
                         .rating = rating, .raw_user = ru, .raw_item = ri};
    cr_mf mf = {.n_users = 2, .n_items = 3, .dim = 4, .user = uv, .item = iv, .item_bias = ib};
    cr_error e = {0};
    assert_int_equal(cr_mf_save(&mf, &x, mfp, &e), CR_OK);
    cr_phase1_opts o;
    cr_phase1_opts_default(&o);
    o.mf_path = mfp, o.data_dir = dir, o.out_dir = out, o.steps = 0;
    cr_phase1_result r;
    /* the encoder asks for 8-dimensional CF vectors */
    o.model.d_cf = 8;
    assert_int_equal(cr_phase1_run(&o, &r, &e), CR_ERR_SHAPE);
    assert_non_null(strstr(e.msg, "mf.safetensors"));
    assert_non_null(strstr(e.msg, "expects 8"));
    /* no movies.csv in the data directory */
    o.model.d_cf = 0;
    assert_int_not_equal(cr_phase1_run(&o, &r, &e), CR_OK);
    assert_non_null(strstr(e.msg, "movies.csv"));
    /* no MF file */
    o.mf_path = "/nonexistent/mf.safetensors";
    assert_int_not_equal(cr_phase1_run(&o, &r, &e), CR_OK);
    assert_non_null(strstr(e.msg, "/nonexistent/mf.safetensors"));
    /* loss names */
    float w[CR_P1_NLOSS];
    assert_int_equal(cr_p1_parse_losses("itc,ui", w, &e), CR_OK);
    assert_true(w[CR_P1_ITC] == 1 && w[CR_P1_UI] == 1 && w[CR_P1_ITM] == 0);
    assert_int_equal(cr_p1_parse_losses("itc,foo", w, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "foo"));
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_losses_fall_and_checkpoint),
        cmocka_unit_test(test_single_losses),
        cmocka_unit_test(test_item_texts_and_truncation),
        cmocka_unit_test(test_run_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
