/*
 * test_decoder.c - the decoder against its PyTorch twin (tools/twin_decoder.py,
 * fixtures tests/fixtures/dec_*.safetensors): for a tiny Llama and a tiny
 * GPT-2 (loaded from Hugging Face layout), input embeddings with soft
 * tokens spliced in, logits, loss, every parameter gradient and the
 * input-embedding gradient, the frozen mode's embedding gradient, then 3
 * AdamW steps against the twin's losses. stories260K.bin: logits of a fixed
 * sequence and 64 greedy ids from BOS against the twin, with the weights
 * mapped read-only. Also: the llama2.c loader's errors on files the test
 * writes, save/load, the sampler, and workspace misuse.
 */
#include "util/testutil.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/ptable_io.h"
#include "../src/nn/decoder.h"
#include "../src/train/optim.h"

#define LOGIT_ATOL 2e-5
#define LOGIT_RTOL 1e-4
#define GRAD_ATOL 2e-6
#define GRAD_RTOL 2e-4
#define STORIES "data/models/stories260K.bin"

static const cr_st_tensor *need(const cr_st_file *f, const char *name, cr_dtype dt,
                                size_t numel) {
    const cr_st_tensor *t = cr_st_find(f, name);
    if (!t) {
        fprintf(stderr, "%s: tensor '%s' missing (regenerate with tools/twin_decoder.py)\n",
                f->path, name);
        fail();
    }
    if (t->dtype != dt || t->numel != numel) {
        fprintf(stderr, "%s: '%s' is %s with %zu values, expected %s with %zu\n", f->path, name,
                cr_dtype_name(t->dtype), t->numel, cr_dtype_name(dt), numel);
        fail();
    }
    return t;
}

static void *take(const cr_st_file *f, const char *name, cr_dtype dt, size_t numel) {
    const cr_st_tensor *t = need(f, name, dt, numel);
    void *p = malloc(t->nbytes ? t->nbytes : 1);
    assert_non_null(p);
    memcpy(p, t->data, t->nbytes);
    return p;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Bit-identical floats (paths that must run the same arithmetic). */
static int same(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) {
            fprintf(stderr, "%s: differ at [%zu]: %.9g vs %.9g\n", what, i, (double)a[i],
                    (double)b[i]);
            return 0;
        }
    return 1;
}

static void cfg_from_json(cr_dec_cfg *c, const char *json) {
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    memset(c, 0, sizeof *c);
    c->arch = (cr_dec_arch)cr_dec_arch_parse(cJSON_GetObjectItem(j, "arch")->valuestring);
    c->dim = cJSON_GetObjectItem(j, "dim")->valueint;
    c->hidden_dim = cJSON_GetObjectItem(j, "hidden_dim")->valueint;
    c->n_layers = cJSON_GetObjectItem(j, "n_layers")->valueint;
    c->n_heads = cJSON_GetObjectItem(j, "n_heads")->valueint;
    c->n_kv_heads = cJSON_GetObjectItem(j, "n_kv_heads")->valueint;
    c->vocab = cJSON_GetObjectItem(j, "vocab")->valueint;
    c->max_seq = cJSON_GetObjectItem(j, "max_seq")->valueint;
    c->tied = cJSON_IsTrue(cJSON_GetObjectItem(j, "tied"));
    c->norm_eps = 1e-5f;
    cJSON_Delete(j);
}

/* ---- the tiny twins ------------------------------------------------------------------ */
typedef struct twin {
    cr_st_file f;
    cr_decoder d;
    int B, T, C, V;
    int32_t *ids, *targets;
    float *emb; /* the twin's input embeddings (soft tokens included) */
} twin;

static void twin_open(twin *tw, const char *fixture, const char *hf) {
    cr_error e = {0};
    memset(tw, 0, sizeof *tw);
    assert_int_equal(cr_st_open(&tw->f, fixture, &e), CR_OK);
    cr_dec_cfg c;
    cfg_from_json(&c, cr_st_meta(&tw->f, "config"));
    if (hf) {
        if (cr_dec_load_gpt2_hf(&tw->d, hf, c.n_heads, &e) != CR_OK) {
            fprintf(stderr, "%s\n", e.msg);
            fail();
        }
        assert_int_equal(tw->d.cfg.dim, c.dim);
        assert_int_equal(tw->d.cfg.n_layers, c.n_layers);
        assert_int_equal(tw->d.cfg.hidden_dim, c.hidden_dim);
        assert_int_equal(tw->d.cfg.max_seq, c.max_seq);
    } else {
        assert_int_equal(cr_dec_create(&tw->d, &c, &e), CR_OK);
        /* init.<name> for every parameter */
        if (cr_ptable_from_st(&tw->d.pt, tw->d.pt.data, "init.", &tw->f, 0, &e) != CR_OK) {
            fprintf(stderr, "%s\n", e.msg);
            fail();
        }
    }
    tw->B = 2, tw->T = 8, tw->C = c.dim, tw->V = c.vocab;
    size_t N = (size_t)tw->B * tw->T;
    tw->ids = take(&tw->f, "batch.ids", CR_DT_I32, N);
    tw->targets = take(&tw->f, "batch.targets", CR_DT_I32, N);
    tw->emb = take(&tw->f, "batch.emb", CR_DT_F32, N * tw->C);
}

static void twin_close(twin *tw) {
    cr_dec_free(&tw->d);
    cr_st_close(&tw->f);
    free(tw->ids), free(tw->targets), free(tw->emb);
}

/* The caller's side of soft tokens: token rows from cr_dec_embed, soft rows
 * (ids < 0) copied from the twin's embeddings. */
static void build_emb(twin *tw, float *emb) {
    cr_error e = {0};
    size_t N = (size_t)tw->B * tw->T;
    memset(emb, 0, N * tw->C * sizeof(float));
    assert_int_equal(cr_dec_embed(&tw->d, emb, tw->ids, (int)N, &e), CR_OK);
    for (size_t r = 0; r < N; r++)
        if (tw->ids[r] < 0)
            memcpy(emb + r * tw->C, tw->emb + r * tw->C, tw->C * sizeof(float));
}

static void run_twin(const char *fixture, const char *hf, const char *label) {
    twin tw;
    twin_open(&tw, fixture, hf);
    cr_decoder *d = &tw.d;
    cr_error e = {0};
    int B = tw.B, T = tw.T, C = tw.C, V = tw.V;
    size_t N = (size_t)B * T;
    /* sized for more than we run: any smaller B, T works */
    cr_dec_ws ws;
    assert_int_equal(cr_dec_ws_create(&ws, d, B + 1, T + 3, CR_DEC_WS_BACKWARD, &e), CR_OK);
    float *emb = calloc(N * C, sizeof(float)), *demb = calloc(N * C, sizeof(float));
    build_emb(&tw, emb);
    assert_true(same("embeddings", emb, tw.emb, N * C));

    cr_dec_zero_grad(d, &ws);
    assert_int_equal(cr_dec_forward(d, &ws, NULL, emb, tw.targets, B, T, 0, &e), CR_OK);
    const float *want = need(&tw.f, "logits", CR_DT_F32, N * V)->data;
    float *wl = malloc(N * V * sizeof(float));
    memcpy(wl, want, N * V * sizeof(float));
    int ok = cr_test_close("logits", ws.logits, wl, N * V, LOGIT_ATOL, LOGIT_RTOL);
    float *wloss = take(&tw.f, "loss", CR_DT_F32, 1);
    fprintf(stderr, "%s: loss %.7f twin %.7f, logits max |diff| %.3g\n", label, (double)ws.loss,
            (double)wloss[0], max_abs_diff(ws.logits, wl, N * V));
    ok &= fabs(ws.loss - wloss[0]) < 1e-5;

    assert_int_equal(cr_dec_backward(d, &ws, demb, &e), CR_OK);
    cr_dec_embed_backward(d, &ws, demb, tw.ids, (int)N);
    float *gemb = take(&tw.f, "grad.emb", CR_DT_F32, N * C);
    ok &= cr_test_close("grad.emb", demb, gemb, N * C, GRAD_ATOL, GRAD_RTOL);
    double worst = 0;
    for (int i = 0; i < d->pt.n; i++) {
        char name[CR_MAX_NAME + 8];
        snprintf(name, sizeof name, "grad.%s", d->pt.t[i].name);
        float *g = take(&tw.f, name, CR_DT_F32, d->pt.t[i].numel);
        const float *mine = cr_ptable_ptr(&d->pt, ws.grads, i);
        ok &= cr_test_close(name, mine, g, d->pt.t[i].numel, GRAD_ATOL, GRAD_RTOL);
        double m = max_abs_diff(mine, g, d->pt.t[i].numel);
        worst = m > worst ? m : worst;
        free(g);
    }
    fprintf(stderr, "%s: %d parameter gradients, max |diff| %.3g; grad.emb max |diff| %.3g\n",
            label, d->pt.n, worst, max_abs_diff(demb, gemb, N * C));

    /* frozen: no gradient slab, the same embedding gradient */
    cr_dec_ws fz;
    assert_int_equal(cr_dec_ws_create(&fz, d, B, T, CR_DEC_WS_BACKWARD | CR_DEC_WS_FROZEN, &e),
                     CR_OK);
    assert_null(fz.grads);
    float *demb2 = calloc(N * C, sizeof(float));
    assert_int_equal(cr_dec_forward(d, &fz, NULL, emb, tw.targets, B, T, 0, &e), CR_OK);
    assert_int_equal(cr_dec_backward(d, &fz, demb2, &e), CR_OK);
    cr_dec_embed_backward(d, &fz, demb2, tw.ids, (int)N); /* a no-op when frozen */
    /* the full backward's demb includes nothing from the lookup, so equal */
    ok &= same("frozen grad.emb", demb2, demb, N * C);
    cr_dec_ws_free(&fz);

    /* 3 AdamW steps on the same batch, soft tokens fixed */
    float *sl = take(&tw.f, "steps.loss", CR_DT_F32, 3);
    cr_adam o;
    assert_int_equal(cr_adam_init(&o, &d->pt, CR_OPT_ADAMW, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, &e),
                     CR_OK);
    float got[3];
    for (int s = 0; s < 3; s++) {
        cr_dec_zero_grad(d, &ws);
        build_emb(&tw, emb);
        memset(demb, 0, N * C * sizeof(float));
        assert_int_equal(cr_dec_forward(d, &ws, NULL, emb, tw.targets, B, T, 0, &e), CR_OK);
        got[s] = ws.loss;
        assert_int_equal(cr_dec_backward(d, &ws, demb, &e), CR_OK);
        cr_dec_embed_backward(d, &ws, demb, tw.ids, (int)N);
        cr_adam_step(&o, &d->pt, d->pt.data, ws.grads, 1e-2f);
    }
    fprintf(stderr, "%s: AdamW losses %.6f %.6f %.6f, twin %.6f %.6f %.6f\n", label,
            (double)got[0], (double)got[1], (double)got[2], (double)sl[0], (double)sl[1],
            (double)sl[2]);
    ok &= cr_test_close("steps.loss", got, sl, 3, 1e-5, 1e-5);
    cr_adam_free(&o);
    cr_dec_ws_free(&ws);
    free(emb), free(demb), free(demb2), free(wl), free(wloss), free(gemb), free(sl);
    twin_close(&tw);
    assert_true(ok);
}

static void test_llama_twin(void **state) {
    (void)state;
    run_twin("tests/fixtures/dec_llama.safetensors", NULL, "llama");
}

static void test_gpt2_twin(void **state) {
    (void)state;
    run_twin("tests/fixtures/dec_gpt2.safetensors", "tests/fixtures/dec_gpt2_hf.safetensors",
             "gpt2");
}

/* A forward from ids is a forward from cr_dec_embed's rows, and its
 * backward scatters the embedding gradient into tok_emb. */
static void test_ids_path(void **state) {
    (void)state;
    twin tw;
    twin_open(&tw, "tests/fixtures/dec_llama.safetensors", NULL);
    cr_decoder *d = &tw.d;
    cr_error e = {0};
    int B = tw.B, T = tw.T, C = tw.C, V = tw.V;
    size_t N = (size_t)B * T;
    for (size_t r = 0; r < N; r++)
        if (tw.ids[r] < 0) tw.ids[r] = (int32_t)(r % V);
    cr_dec_ws a, b;
    assert_int_equal(cr_dec_ws_create(&a, d, B, T, CR_DEC_WS_BACKWARD, &e), CR_OK);
    assert_int_equal(cr_dec_ws_create(&b, d, B, T, CR_DEC_WS_BACKWARD, &e), CR_OK);
    float *emb = calloc(N * C, sizeof(float)), *demb = calloc(N * C, sizeof(float));
    assert_int_equal(cr_dec_embed(d, emb, tw.ids, (int)N, &e), CR_OK);
    cr_dec_zero_grad(d, &a);
    cr_dec_zero_grad(d, &b);
    assert_int_equal(cr_dec_forward(d, &a, tw.ids, NULL, tw.targets, B, T, 0, &e), CR_OK);
    assert_int_equal(cr_dec_forward(d, &b, NULL, emb, tw.targets, B, T, 0, &e), CR_OK);
    assert_true(same("ids vs emb logits", a.logits, b.logits, N * V));
    assert_int_equal(cr_dec_backward(d, &a, NULL, &e), CR_OK);
    assert_int_equal(cr_dec_backward(d, &b, demb, &e), CR_OK);
    cr_dec_embed_backward(d, &b, demb, tw.ids, (int)N);
    assert_true(same("ids vs emb grads", a.grads, b.grads, d->pt.total));
    /* bad ids and targets are errors, not crashes */
    tw.ids[3] = V;
    assert_int_equal(cr_dec_forward(d, &a, tw.ids, NULL, NULL, B, T, 0, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "position 3"));
    tw.targets[2] = V;
    assert_int_equal(cr_dec_forward(d, &b, NULL, emb, tw.targets, B, T, 0, &e), CR_ERR_ARG);
    assert_int_equal(cr_dec_forward(d, &b, NULL, emb, NULL, B + 1, T, 0, &e), CR_ERR_ARG);
    assert_int_equal(cr_dec_forward(d, &b, NULL, emb, NULL, B, T - 2, 1, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "cache"));
    assert_int_equal(cr_dec_forward(d, &b, tw.ids, emb, NULL, B, T, 0, &e), CR_ERR_ARG);
    cr_dec_ws_free(&a);
    cr_dec_ws_free(&b);
    cr_dec_ws inf;
    assert_int_equal(cr_dec_ws_create(&inf, d, B, T, 0, &e), CR_OK);
    assert_int_equal(cr_dec_forward(d, &inf, NULL, emb, NULL, B, T, 0, &e), CR_OK);
    assert_int_equal(cr_dec_backward(d, &inf, demb, &e), CR_ERR_ARG);
    cr_dec_ws_free(&inf);
    free(emb), free(demb);
    twin_close(&tw);
}

/* ---- stories260K ------------------------------------------------------------------------ */
static void test_stories(void **state) {
    (void)state;
    cr_error e = {0};
    cr_decoder d;
    if (cr_dec_load_llama2c(&d, STORIES, 0, &e) != CR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    assert_int_equal(d.owned, 0);
    assert_int_equal(d.cfg.dim, 64);
    assert_int_equal(d.cfg.hidden_dim, 172);
    assert_int_equal(d.cfg.n_layers, 5);
    assert_int_equal(d.cfg.n_kv_heads, 4);
    assert_int_equal(d.cfg.vocab, 512);
    assert_true(d.cfg.tied);
    /* the weights are the map itself, not a copy */
    assert_true((const uint8_t *)d.w[d.tok_emb] == d.map.data + 28);
    assert_null(d.pt.data);

    cr_st_file f;
    assert_int_equal(cr_st_open(&f, "tests/fixtures/dec_stories.safetensors", &e), CR_OK);
    int T = 8, V = 512;
    int32_t *ids = take(&f, "ids", CR_DT_I32, (size_t)T);
    float *want = take(&f, "logits", CR_DT_F32, (size_t)T * V);
    int32_t *greedy = take(&f, "greedy", CR_DT_I32, 64);
    cr_dec_ws ws;
    assert_int_equal(cr_dec_ws_create(&ws, &d, 1, 64, CR_DEC_WS_KV_CACHE, &e), CR_OK);
    assert_int_equal(cr_dec_forward(&d, &ws, ids, NULL, NULL, 1, T, 0, &e), CR_OK);
    fprintf(stderr, "stories260K: logits max |diff| vs twin %.3g\n",
            max_abs_diff(ws.logits, want, (size_t)T * V));
    assert_true(cr_test_close("stories logits", ws.logits, want, (size_t)T * V, LOGIT_ATOL,
                              LOGIT_RTOL));
    int32_t out[64], bos = 1;
    assert_int_equal(cr_dec_generate(&d, &ws, &bos, 1, 64, NULL, NULL, out, &e), CR_OK);
    int same = 0;
    while (same < 64 && out[same] == greedy[same]) same++;
    if (same < 64)
        fprintf(stderr, "greedy: first difference at step %d: %d, twin %d\n", same, out[same],
                greedy[same]);
    assert_int_equal(same, 64);
    /* too long for the workspace */
    assert_int_equal(cr_dec_generate(&d, &ws, &bos, 1, 66, NULL, NULL, out, &e), CR_ERR_LIMIT);
    /* a mapped model trains nothing */
    cr_dec_ws bad;
    assert_int_equal(cr_dec_ws_create(&bad, &d, 1, 4, CR_DEC_WS_BACKWARD, &e), CR_ERR_ARG);
    assert_int_equal(cr_dec_ws_create(&bad, &d, 1, 4, CR_DEC_WS_BACKWARD | CR_DEC_WS_FROZEN, &e),
                     CR_OK);
    cr_dec_ws_free(&bad);
    cr_dec_ws_free(&ws);
    cr_st_close(&f);
    free(ids), free(want), free(greedy);
    cr_dec_free(&d);
}

/* ---- llama2.c loader errors, on files written here ------------------------------------ */
static void write_l2c(const char *path, const int32_t h[7], size_t floats) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(h, 4, 7, fp), 7);
    float z = 0.5f;
    for (size_t i = 0; i < floats; i++) assert_int_equal(fwrite(&z, 4, 1, fp), 1);
    fclose(fp);
}

static void expect_err(const char *path, cr_status want, const char *needle) {
    cr_error e = {0};
    cr_decoder d;
    cr_status st = cr_dec_load_llama2c(&d, path, 0, &e);
    if (st != want || !strstr(e.msg, needle)) {
        fprintf(stderr, "%s: got %s '%s', wanted %s with '%s'\n", path, cr_strerror(st), e.msg,
                cr_strerror(want), needle);
        fail();
    }
}

static void test_llama2c_errors(void **state) {
    (void)state;
    char dir[256], p[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/m.bin", dir);
    /* dim 8, hidden 12, 1 layer, 2 heads, 1 kv head, vocab 10, seq 4 */
    int32_t h[7] = {8, 12, 1, 2, 1, 10, 4};
    size_t C = 8, H = 12, V = 10, KV = 4, HD = 4;
    size_t n = V * C + 2 * C + 2 * C * C + 2 * KV * C + 3 * H * C + C + 4 * HD;
    write_l2c(p, h, n);
    cr_error e = {0};
    cr_decoder d;
    assert_int_equal(cr_dec_load_llama2c(&d, p, 1, &e), CR_OK); /* well formed, copied */
    assert_int_equal(d.owned, 1);
    assert_true(d.w[d.layers[0].w3][0] == 0.5f);
    cr_dec_free(&d);
    write_l2c(p, h, n - 1);
    expect_err(p, CR_ERR_FORMAT, "truncated");
    write_l2c(p, h, n + 3);
    expect_err(p, CR_ERR_FORMAT, "trailing");
    int32_t un[7] = {8, 12, 1, 2, 1, -10, 4}; /* untied: wcls must follow */
    write_l2c(p, un, n);
    expect_err(p, CR_ERR_FORMAT, "truncated");
    write_l2c(p, un, n + V * C);
    assert_int_equal(cr_dec_load_llama2c(&d, p, 0, &e), CR_OK);
    assert_false(d.cfg.tied);
    assert_true(d.w[d.wcls] != d.w[d.tok_emb]);
    cr_dec_free(&d);
    int32_t bad[][7] = {{-8, 12, 1, 2, 1, 10, 4},      {8, 12, 1, 3, 1, 10, 4},
                        {8, 12, 1, 2, 3, 10, 4},       {8, 12, 0, 2, 1, 10, 4},
                        {8, 12, 1, 2, 1, 10, 1 << 30}, {1 << 30, 1 << 30, 1 << 20, 2, 1, 10, 4},
                        {8, 12, 1, 2, 1, INT32_MIN, 4}}; /* -INT32_MIN overflows */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_l2c(p, bad[i], 16);
        expect_err(p, CR_ERR_FORMAT, "llama2.c header");
    }
    FILE *fp = fopen(p, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    expect_err(p, CR_ERR_FORMAT, "too short");
    snprintf(p, sizeof p, "%s/missing.bin", dir);
    assert_int_equal(cr_dec_load_llama2c(&d, p, 0, &e), CR_ERR_IO);
    cr_test_rmdir(dir);
}

/* ---- own format and format detection ---------------------------------------------- */
static void test_save_open(void **state) {
    (void)state;
    char dir[256], p[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/lm.safetensors", dir);
    cr_error e = {0};
    cr_dec_cfg c = {.arch = CR_DEC_LLAMA, .dim = 16, .hidden_dim = 24, .n_layers = 2,
                    .n_heads = 4, .n_kv_heads = 2, .vocab = 20, .max_seq = 8,
                    .norm_eps = 1e-5f, .tied = 0};
    cr_decoder a, b, s;
    assert_int_equal(cr_dec_create(&a, &c, &e), CR_OK);
    cr_rng r;
    cr_rng_seed(&r, 3);
    cr_dec_init(&a, &r);
    assert_int_equal(cr_dec_save(&a, p, &e), CR_OK);
    assert_int_equal(cr_dec_open(&b, p, 0, &e), CR_OK);
    assert_int_equal(b.cfg.tied, 0);
    assert_int_equal(b.pt.n, a.pt.n);
    assert_true(same("save/load", b.pt.data, a.pt.data, a.pt.total));
    cr_dec_free(&b);
    /* a mapped llama2.c file saved as safetensors keeps its values */
    assert_int_equal(cr_dec_open(&s, STORIES, 0, &e), CR_OK);
    assert_int_equal(s.owned, 0);
    assert_int_equal(cr_dec_save(&s, p, &e), CR_OK);
    assert_int_equal(cr_dec_open(&b, p, 0, &e), CR_OK);
    for (int i = 0; i < s.pt.n; i++)
        assert_true(same(s.pt.t[i].name, b.w[i], s.w[i], s.pt.t[i].numel));
    cr_dec_free(&b);
    cr_dec_free(&s);
    /* GPT-2 by content needs config.json for the head count */
    assert_int_equal(cr_dec_open(&b, "tests/fixtures/dec_gpt2_hf.safetensors", 0, &e),
                     CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "config.json"));
    /* a safetensors file that is neither */
    assert_int_equal(cr_dec_open(&b, "tests/fixtures/st_reference.safetensors", 0, &e),
                     CR_ERR_FORMAT);
    /* bad configs name the field */
    c.n_kv_heads = 3;
    assert_int_equal(cr_dec_create(&b, &c, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "n_kv_heads"));
    cr_dec_free(&b);
    cr_dec_free(&a);
    cr_test_rmdir(dir);
}

/* ---- sampler ---------------------------------------------------------------------------- */
static void test_sampler(void **state) {
    (void)state;
    float logits[6] = {0.1f, 2.0f, -1.0f, 2.0f, 1.5f, 0.0f}, scratch[12];
    cr_rng r;
    cr_rng_seed(&r, 42);
    assert_int_equal(cr_dec_sample(logits, 6, NULL, NULL, scratch), 1); /* lowest id on ties */
    cr_dec_sampler k1 = {.temperature = 1.0f, .top_k = 1, .top_p = 1.0f};
    for (int i = 0; i < 20; i++) assert_int_equal(cr_dec_sample(logits, 6, &k1, &r, scratch), 1);
    cr_dec_sampler k3 = {.temperature = 1.0f, .top_k = 3, .top_p = 1.0f};
    int seen[6] = {0};
    for (int i = 0; i < 300; i++) seen[cr_dec_sample(logits, 6, &k3, &r, scratch)]++;
    assert_true(seen[1] > 0 && seen[3] > 0 && seen[4] > 0);
    assert_true(seen[0] + seen[2] + seen[5] == 0);
    cr_dec_sampler p = {.temperature = 1.0f, .top_k = 0, .top_p = 0.3f};
    for (int i = 0; i < 50; i++) assert_int_equal(cr_dec_sample(logits, 6, &p, &r, scratch), 1);
    /* the same seed gives the same draws */
    cr_dec_sampler t = {.temperature = 0.8f, .top_k = 0, .top_p = 0.95f};
    cr_rng r1, r2;
    cr_rng_seed(&r1, 7);
    cr_rng_seed(&r2, 7);
    for (int i = 0; i < 30; i++)
        assert_int_equal(cr_dec_sample(logits, 6, &t, &r1, scratch),
                         cr_dec_sample(logits, 6, &t, &r2, scratch));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_twin),     cmocka_unit_test(test_gpt2_twin),
        cmocka_unit_test(test_ids_path),       cmocka_unit_test(test_stories),
        cmocka_unit_test(test_llama2c_errors), cmocka_unit_test(test_save_open),
        cmocka_unit_test(test_sampler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
