/*
 * test_api_tools.c - the public entry points the command-line tool's
 * data, file and tokenizer commands stand on (crossrec.h): whole-file read
 * and atomic write, a checkpoint's table of contents, synthetic domains,
 * MovieLens impressions, the ONNX export with its vocabulary path and the
 * encoded graph inputs, batch scoring of a file, the HTTP server's
 * lifecycle, tokenizers, LM pretraining and perplexity. Each
 * one once on real input, and each with the bad arguments it must refuse
 * with a status (never a crash).
 */
#include "util/fit_fixture.h"

/* ---- files and inspect -------------------------------------------------------------- */

static void test_files(void **state) {
    const fixture *f = *state;
    char p[512];
    snprintf(p, sizeof p, "%s/x.txt", f->dir);
    cr_error e = {0};
    assert_int_equal(cr_write_file_atomic(p, "hello\n", 6, &e), CR_OK);
    char *txt = NULL;
    size_t n = 0;
    assert_int_equal(cr_read_file(p, &txt, &n, &e), CR_OK);
    assert_int_equal(n, 6);
    assert_string_equal(txt, "hello\n");
    cr_free(txt);
    txt = (char *)1;
    assert_int_equal(cr_read_file(NULL, &txt, &n, &e), CR_ERR_ARG);
    assert_null(txt);
    assert_int_equal(cr_read_file(p, NULL, NULL, &e), CR_ERR_ARG);
    assert_int_equal(cr_write_file_atomic(NULL, "x", 1, &e), CR_ERR_ARG);
    assert_int_equal(cr_write_file_atomic(p, NULL, 3, &e), CR_ERR_ARG);
    snprintf(p, sizeof p, "%s/no/such/file", f->dir);
    assert_int_equal(cr_read_file(p, &txt, NULL, &e), CR_ERR_IO);
    assert_non_null(strstr(e.msg, "no/such/file"));
}

static void test_inspect(void **state) {
    (void)state;
    cr_error e = {0};
    char *json = NULL;
    assert_int_equal(cr_inspect("data/models/austen-small/model.safetensors", &json, &e), CR_OK);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const cJSON *ts = cJSON_GetObjectItem(o, "tensors");
    assert_true(cJSON_GetArraySize(ts) > 3);
    const cJSON *t0 = cJSON_GetArrayItem(ts, 0);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(t0, "name")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(t0, "shape")));
    assert_true(cJSON_GetObjectItem(t0, "bytes")->valuedouble > 0);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(o, "metadata")));
    cJSON_Delete(o);
    cr_free(json);
    json = (char *)1;
    assert_int_equal(cr_inspect(NULL, &json, &e), CR_ERR_ARG);
    assert_null(json);
    assert_int_equal(cr_inspect("README.md", NULL, &e), CR_ERR_ARG);
    assert_int_not_equal(cr_inspect("README.md", &json, &e), CR_OK); /* not a safetensors file */
    assert_null(json);
}

/* ---- synthetic domains and MovieLens ------------------------------------------------------ */

static void test_synth(void **state) {
    const fixture *f = *state;
    cr_synth_cfg c;
    cr_synth_defaults(&c);
    c.users = 50;
    c.source.requests = 300;
    c.source.items = 60;
    c.target.requests = 40;
    c.target.items = 30;
    char out[512], p[600];
    snprintf(out, sizeof out, "%s/synth", f->dir);
    cr_error e = {0};
    cr_synth_stats st;
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.quiet = 1;
    cr_ctx *ctx = NULL;
    assert_int_equal(cr_ctx_new(&ctx, &cp, &e), CR_OK);
    cr_status s = cr_synth(ctx, &c, out, &st, &e);
    if (s) fprintf(stderr, "cr_synth: %s\n", e.msg);
    assert_int_equal(s, CR_OK);
    assert_int_equal(st.requests[0], 300);
    assert_int_equal(st.requests[1], 40);
    assert_int_equal(st.rows[1], st.split_rows[1][0] + st.split_rows[1][1] + st.split_rows[1][2]);
    snprintf(p, sizeof p, "%s/%s.csv", out, c.target.name);
    assert_true(cr_file_exists(p));

    assert_int_equal(cr_synth(ctx, NULL, out, &st, &e), CR_ERR_ARG);
    assert_int_equal(cr_synth(ctx, &c, NULL, &st, &e), CR_ERR_ARG);
    c.users = 0;
    assert_int_equal(cr_synth(ctx, &c, out, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "users"));
    assert_int_equal(cr_synth_cfg_load(NULL, "x.yaml", &e), CR_ERR_ARG);
    assert_int_equal(cr_synth_cfg_load(&c, "no/such.yaml", &e), CR_ERR_IO);
    cr_ctx_free(ctx);
}

static void test_movielens(void **state) {
    const fixture *f = *state;
    char out[512];
    snprintf(out, sizeof out, "%s/ml/imp.csv", f->dir);
    cr_ml_opts o;
    cr_ml_opts_default(&o);
    o.in_dir = "tests/fixtures/ml_tiny";
    o.out_path = out;
    o.negatives = 2;
    cr_ml_stats st;
    cr_error e = {0};
    assert_int_equal(cr_movielens_prepare(NULL, &o, &st, &e), CR_OK);
    assert_int_equal(st.rows, 42); /* as tests/cli.sh's movielens run */
    assert_int_equal(st.rows, st.rows_split[0] + st.rows_split[1] + st.rows_split[2]);
    assert_true(cr_file_exists(out));

    cr_ml_protocol pr;
    cr_ml_history h;
    assert_int_equal(cr_ml_protocol_parse("period", &pr, &e), CR_OK);
    assert_int_equal(pr, CR_ML_PERIOD);
    assert_string_equal(cr_ml_protocol_name(pr), "period");
    assert_int_equal(cr_ml_protocol_parse("nope", &pr, &e), CR_ERR_ARG);
    assert_int_equal(cr_ml_protocol_parse("uniform", NULL, &e), CR_ERR_ARG);
    assert_int_equal(cr_ml_history_parse("all", &h, &e), CR_OK);
    assert_string_equal(cr_ml_history_name(h), "all");
    assert_int_equal(cr_ml_history_parse(NULL, &h, &e), CR_ERR_ARG);

    assert_int_equal(cr_movielens_prepare(NULL, NULL, &st, &e), CR_ERR_ARG);
    o.in_dir = NULL;
    assert_int_equal(cr_movielens_prepare(NULL, &o, &st, &e), CR_ERR_ARG);
    o.in_dir = "tests/fixtures/ml_tiny";
    o.negatives = -1;
    assert_int_equal(cr_movielens_prepare(NULL, &o, &st, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "negatives"));
}

/* ---- a trained ranker: ONNX export, encoded inputs, scoring a file, serving -------------- */

static void test_export_encode_score_serve(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], model[600], onnx[600], vocab[600], enc[600], data[600];
    cfg_opts co = defaults();
    co.epochs = 1;
    write_cfg(f->dir, "t.yaml", &co, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/run", f->dir);
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.quiet = 1;
    cp.threads = 1;
    cr_ctx *ctx = NULL;
    cr_error e = {0};
    assert_int_equal(cr_ctx_new(&ctx, &cp, &e), CR_OK);
    cr_run *r = NULL;
    assert_int_equal(cr_train(ctx, cfg, out, NULL, &r, &e), CR_OK);
    snprintf(model, sizeof model, "%s", cr_run_model_path(r));
    cr_run_free(r);
    cr_ctx_free(ctx);

    snprintf(onnx, sizeof onnx, "%s/m.onnx", f->dir);
    snprintf(vocab, sizeof vocab, "%s/elsewhere.vocab.json", f->dir);
    int dropped = -1;
    assert_int_equal(cr_export_onnx(model, onnx, vocab, CR_PRECISION_BF16, &dropped, &e), CR_OK);
    assert_int_equal(dropped, 0);
    assert_true(cr_file_exists(onnx) && cr_file_exists(vocab));
    assert_int_equal(cr_export_onnx(model, onnx, NULL, CR_PRECISION_INT8, &dropped, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "weights"));
    assert_int_equal(cr_export_onnx(NULL, onnx, NULL, CR_PRECISION_FP32, NULL, &e), CR_ERR_ARG);

    snprintf(data, sizeof data, "%s/data.csv", f->dir);
    snprintf(enc, sizeof enc, "%s/inputs.safetensors", f->dir);
    int64_t rows = 0;
    assert_int_equal(cr_encode_csv(model, data, enc, &rows, &e), CR_OK);
    assert_int_equal(rows, N_REQ * PER_REQ);
    char *json = NULL;
    assert_int_equal(cr_inspect(enc, &json, &e), CR_OK); /* a readable safetensors file */
    cr_free(json);
    assert_int_equal(cr_encode_csv(model, NULL, enc, &rows, &e), CR_ERR_ARG);
    assert_int_equal(rows, 0);
    assert_int_equal(cr_encode_csv(model, "no/such.csv", enc, NULL, &e), CR_ERR_IO);

    /* batch scoring of the file, with an id column copied through */
    char scored[600];
    snprintf(scored, sizeof scored, "%s/scored.csv", f->dir);
    static const char *const ids[] = {"user_id"};
    cr_score_csv_opts so;
    cr_score_csv_opts_init(&so);
    assert_int_equal(so.batch, 1024);
    so.model = model;
    so.data = data;
    so.out = scored;
    so.id_columns = ids;
    so.n_id_columns = 1;
    so.batch = 64;
    assert_int_equal(cr_score_csv(NULL, &so, &rows, &e), CR_OK);
    assert_int_equal(rows, N_REQ * PER_REQ);
    size_t len = 0;
    char *txt = slurp(scored, &len);
    assert_true(!strncmp(txt, "user_id,click,", 14));
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += txt[i] == '\n';
    assert_int_equal(lines, N_REQ * PER_REQ + 1);
    cr_free(txt);
    static const char *const nope[] = {"no_such_column"};
    so.id_columns = nope;
    assert_int_equal(cr_score_csv(NULL, &so, &rows, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no_such_column"));
    so.n_id_columns = CR_SCORE_MAX_IDS + 1;
    assert_int_equal(cr_score_csv(NULL, &so, &rows, &e), CR_ERR_ARG);
    so.n_id_columns = 0;
    so.batch = 0;
    assert_int_equal(cr_score_csv(NULL, &so, &rows, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "batch"));
    assert_int_equal(cr_score_csv(NULL, NULL, &rows, &e), CR_ERR_ARG);

    /* the HTTP server's lifecycle on that model */
    cr_server_cfg sc;
    cr_server_cfg_defaults(&sc);
    sc.port = 0;
    sc.threads = 1;
    char arg[700];
    snprintf(arg, sizeof arg, "m=%s", model);
    assert_int_equal(cr_server_cfg_add_model(&sc, arg, &e), CR_OK);
    assert_string_equal(sc.models[0].name, "m");
    cr_server *srv = NULL;
    assert_int_equal(cr_server_start(&srv, &sc, &e), CR_OK);
    assert_true(cr_server_port(srv) > 0);
    char ver[64];
    cr_server_version(srv, ver, sizeof ver);
    assert_true(strlen(ver) > 16);
    assert_int_equal(cr_server_reload(srv, &e), CR_OK);
    cr_server_stop(srv);
    assert_int_equal(cr_server_start(NULL, &sc, &e), CR_ERR_ARG);
    assert_int_equal(cr_server_start(&srv, NULL, &e), CR_ERR_ARG);
    assert_null(srv);
    assert_int_equal(cr_server_reload(NULL, &e), CR_ERR_ARG);
    assert_int_equal(cr_server_port(NULL), 0);
    cr_server_version(NULL, ver, sizeof ver);
    assert_string_equal(ver, "");
    assert_int_equal(cr_server_cfg_add_model(&sc, NULL, &e), CR_ERR_ARG);
    assert_int_equal(cr_server_cfg_load(&sc, NULL, &e), CR_ERR_ARG);
    cr_server_cfg_defaults(&sc);
    assert_int_not_equal(cr_server_start(&srv, &sc, &e), CR_OK); /* no model */
    cr_server_stop(NULL);
}

/* ---- tokenizers ----------------------------------------------------------------------------- */

static void test_tokenizer(void **state) {
    const fixture *f = *state;
    cr_error e = {0};
    cr_tokenizer *t = NULL;
    assert_int_equal(cr_tokenizer_load(&t, "data/tokenizers/gpt2", &e), CR_OK);
    assert_true(cr_tokenizer_is_bpe(t));
    assert_int_equal(cr_tokenizer_vocab_size(t), 50257);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(cr_tokenizer_encode(t, "Hello world", 11, 0, &ids, &n, &e), CR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 15496);
    assert_int_equal(ids[1], 995);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(cr_tokenizer_decode(t, ids, n, &text, &len, &e), CR_OK);
    assert_int_equal(len, 11);
    assert_string_equal(text, "Hello world");
    cr_free(text);
    cr_free(ids);
    assert_int_equal(cr_tokenizer_encode(t, "x", 1, CR_TOK_BOS, &ids, &n, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "tokenizer.bin"));
    assert_int_equal(cr_tokenizer_encode(t, NULL, 3, 0, &ids, &n, &e), CR_ERR_ARG);
    assert_int_equal(cr_tokenizer_decode(NULL, ids, 0, &text, &len, &e), CR_ERR_ARG);
    cr_tokenizer_free(t);
    cr_tokenizer_free(NULL);
    assert_int_equal(cr_tokenizer_load(&t, NULL, &e), CR_ERR_ARG);
    assert_int_equal(cr_tokenizer_load(&t, "no/such/tokenizer", &e), CR_ERR_IO);
    assert_null(t);

    /* train a small BPE, then load and use it */
    char corpus[512], dir[512];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", f->dir);
    FILE *fp = fopen(corpus, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++) fprintf(fp, "the cat sat on the mat %d times. ", i % 7);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/bpe", f->dir);
    cr_tokenizer_train_opts o;
    cr_tokenizer_train_opts_init(&o);
    assert_int_equal(o.vocab_size, 4096);
    o.vocab_size = 300;
    int32_t vocab = 0;
    assert_int_equal(cr_tokenizer_train(NULL, corpus, &o, dir, &vocab, &e), CR_OK);
    assert_true(vocab > 257 && vocab <= 300);
    assert_int_equal(cr_tokenizer_load(&t, dir, &e), CR_OK);
    assert_int_equal(cr_tokenizer_vocab_size(t), vocab);
    assert_int_equal(cr_tokenizer_encode(t, "the cat", 7, 0, &ids, &n, &e), CR_OK);
    assert_true(n >= 1 && n < 7); /* merged */
    cr_free(ids);
    cr_tokenizer_free(t);
    o.vocab_size = 10;
    assert_int_equal(cr_tokenizer_train(NULL, corpus, &o, dir, &vocab, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "vocab_size"));
    assert_int_equal(cr_tokenizer_train(NULL, NULL, NULL, dir, &vocab, &e), CR_ERR_ARG);
}

/* ---- LM pretraining and perplexity -------------------------------------------------------- */

/* The thread count the calling thread had while the call logged: the most
 * seen, and the fewest. */
typedef struct seen_threads {
    int lines, most, fewest;
} seen_threads;

static void lm_log(void *user, cr_log_level lv, const char *line) {
    seen_threads *s = user;
    (void)lv;
    (void)line;
    int n = cr_get_threads();
    if (!s->lines++ || n > s->most) s->most = n;
    if (s->lines == 1 || n < s->fewest) s->fewest = n;
}

static void test_lm_pretrain_and_eval(void **state) {
    const fixture *f = *state;
    char corpus[512], cfg[512], out[512], model[600], tok[600];
    snprintf(corpus, sizeof corpus, "%s/lm.txt", f->dir);
    FILE *fp = fopen(corpus, "w");
    assert_non_null(fp);
    static const char *const w[] = {"the cat", "a dog", "my sister", "Emma", "the old man"};
    for (int i = 0; i < 400; i++) fprintf(fp, "%s liked %s. ", w[i % 5], w[(i * 3 + 1) % 5]);
    fclose(fp);
    snprintf(cfg, sizeof cfg, "%s/lm.yaml", f->dir);
    fp = fopen(cfg, "w");
    assert_non_null(fp);
    fprintf(fp, "corpus: %s\n"
                "train_tokenizer: {vocab_size: 300}\n"
                "model: {arch: gpt2, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_seq: 16}\n"
                "train: {batch: 4, seq_len: 16, steps: 8, lr: 1.0e-2, warmup: 2, threads: 1,\n"
                "        eval_every: 4, eval_batches: 2, checkpoint_every: 8, log_every: 4}\n",
            corpus);
    fclose(fp);
    snprintf(out, sizeof out, "%s/lm", f->dir);
    /* threads 0: the config's train.threads (1) applies for the call, and the
     * caller's count (3) is back after it */
    seen_threads seen = {0};
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.log = lm_log;
    cp.log_user = &seen;
    cr_ctx *ctx = NULL;
    cr_error e = {0};
    assert_int_equal(cr_ctx_new(&ctx, &cp, &e), CR_OK);
    int saved = cr_get_threads();
    cr_set_threads(3);
    int three = cr_get_threads(); /* 1 in a build without OpenMP */
    cr_lm_train_result r;
    cr_status s = cr_lm_pretrain(ctx, cfg, out, 0, &r, &e);
    if (s) fprintf(stderr, "cr_lm_pretrain: %s\n", e.msg);
    assert_int_equal(s, CR_OK);
    assert_int_equal(cr_get_threads(), three);
    cr_set_threads(saved);
    assert_true(seen.lines > 0);
    assert_int_equal(seen.most, 1);
    assert_int_equal(seen.fewest, 1);
    assert_int_equal(r.step, 8);
#ifdef _OPENMP
    {   /* a context that names a count wins over the config's */
        seen_threads two = {0};
        cr_ctx_params c2;
        cr_ctx_params_init(&c2);
        c2.threads = 2;
        c2.log = lm_log;
        c2.log_user = &two;
        cr_ctx *ctx2 = NULL;
        assert_int_equal(cr_ctx_new(&ctx2, &c2, &e), CR_OK);
        char out2[600];
        snprintf(out2, sizeof out2, "%s/lm2", f->dir);
        cr_lm_train_result r2;
        assert_int_equal(cr_lm_pretrain(ctx2, cfg, out2, 0, &r2, &e), CR_OK);
        assert_int_equal(two.most, 2);
        assert_int_equal(two.fewest, 2);
        cr_ctx_free(ctx2);
    }
#endif
    assert_true(isfinite(r.valid_loss) && r.valid_loss > 0);

    snprintf(model, sizeof model, "%s/model.safetensors", out);
    snprintf(tok, sizeof tok, "%s/tokenizer", out);
    cr_lm_load_opts lo;
    cr_lm_load_opts_init(&lo);
    lo.tokenizer = tok;
    cr_lm *lm = NULL;
    assert_int_equal(cr_lm_load(&lm, model, &lo, &e), CR_OK);
    cr_lm_eval_opts eo;
    cr_lm_eval_opts_init(&eo);
    assert_int_equal(eo.batch, 4);
    cr_lm_eval_result er;
    assert_int_equal(cr_lm_eval(ctx, lm, corpus, &eo, &er, &e), CR_OK);
    assert_true(er.scored > 0 && er.scored <= er.tokens);
    assert_true(isfinite(er.loss) && er.loss > 0 && er.loss < log(300.0) + 1);
    eo.seq_len = 17; /* longer than max_seq */
    assert_int_equal(cr_lm_eval(ctx, lm, corpus, &eo, &er, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "seq_len"));
    assert_int_equal(cr_lm_eval(ctx, lm, NULL, NULL, &er, &e), CR_ERR_ARG);
    assert_int_equal(cr_lm_eval(ctx, NULL, corpus, NULL, &er, &e), CR_ERR_ARG);
    cr_lm_free(lm);

    assert_int_equal(cr_lm_pretrain(ctx, NULL, out, 0, &r, &e), CR_ERR_ARG);
    assert_int_equal(cr_lm_pretrain(ctx, cfg, out, 2, &r, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "resume"));
    assert_int_equal(cr_lm_pretrain(ctx, "no/such.yaml", out, 0, NULL, &e), CR_ERR_IO);
    cr_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test_setup_teardown(test_synth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_movielens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_encode_score_serve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokenizer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lm_pretrain_and_eval, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
