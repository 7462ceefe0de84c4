/*
 * test_api.c - the public contract beyond scoring (crossrec.h): contexts
 * that isolate their calls (thread counts and kernel sets restored, two
 * contexts on two threads at once, one of them forcing the scalar kernels,
 * each giving what they give alone), the log sink,
 * progress and cancel (a cancelled run resumes to the uninterrupted
 * model), a context in use refused, argument checks that return a status
 * instead of crashing, and the decoder LM entry points.
 */
#include "util/fit_fixture.h"

#include <pthread.h>

static void config(const fixture *f, const char *name, int epochs, char *path, size_t cap) {
    cfg_opts o = defaults();
    o.epochs = epochs;
    write_cfg(f->dir, name, &o, path, cap);
}

static cr_ctx *make_ctx_k(int threads, const char *kernels, cr_log_fn log, void *user) {
    cr_ctx_params p;
    cr_ctx_params_init(&p);
    p.threads = threads;
    p.kernels = kernels;
    p.log = log;
    p.log_user = user;
    if (!log) p.quiet = 1;
    cr_ctx *c = NULL;
    cr_error e = {0};
    assert_int_equal(cr_ctx_new(&c, &p, &e), CR_OK);
    return c;
}

static cr_ctx *make_ctx(int threads, cr_log_fn log, void *user) {
    return make_ctx_k(threads, NULL, log, user);
}

static void train_ok(cr_ctx *c, const char *cfg, const char *out, int resume) {
    cr_train_opts o;
    cr_train_opts_init(&o);
    o.resume = resume;
    cr_run *r = NULL;
    cr_error e = {0};
    cr_status s = cr_train(c, cfg, out, &o, &r, &e);
    if (s) fprintf(stderr, "cr_train %s -> %s: %s\n", cfg, out, e.msg);
    assert_int_equal(s, CR_OK);
    cr_run_free(r);
}

static int same_model(const char *dir_a, const char *dir_b) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/model.safetensors", dir_a);
    snprintf(b, sizeof b, "%s/model.safetensors", dir_b);
    return same_bytes(a, b);
}

/* ---- train, the run handle, the log sink ------------------------------------------- */

typedef struct lines {
    int  n, warn;
    char first[256];
    int  saw_model;
} lines;

static void collect(void *user, cr_log_level lv, const char *line) {
    lines *l = user;
    if (!l->n++) snprintf(l->first, sizeof l->first, "%s", line);
    if (lv == CR_LOG_WARN) l->warn++;
    if (strstr(line, "dense parameters")) l->saw_model = 1;
    assert_null(strchr(line, '\n'));
}

static void test_train_run_and_log(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], p[600];
    config(f, "t.yaml", 2, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_t", f->dir);
    lines l = {0};
    cr_ctx *c = make_ctx(1, collect, &l);
    cr_run *r = NULL;
    cr_error e = {0};
    assert_int_equal(cr_train(c, cfg, out, NULL, &r, &e), CR_OK);
    assert_non_null(r);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    assert_string_equal(cr_run_model_path(r), p);
    assert_string_equal(cr_run_dir(r), out);
    snprintf(p, sizeof p, "%s/metrics.json", out);
    size_t n;
    char *txt = slurp(p, &n);
    assert_string_equal(cr_run_metrics_json(r), txt);
    cr_free(txt);
    assert_true(l.n > 3);
    assert_true(l.saw_model);
    assert_true(!strncmp(l.first, "loading ", 8) && strstr(l.first, "data.csv"));

    /* evaluate the saved model through the same context */
    char *m = NULL;
    assert_int_equal(cr_evaluate(c, cr_run_model_path(r), cfg, NULL, "test", &m, &e), CR_OK);
    cJSON *j = cJSON_Parse(m);
    assert_non_null(j);
    double auc = jnum(j, "eval.tasks.click.model.auc");
    cJSON *mj = cJSON_Parse(cr_run_metrics_json(r));
    assert_true(fabs(auc - jnum(mj, "test.tasks.click.model.auc")) < 1e-6);
    assert_string_equal(cJSON_GetObjectItem(j, "split")->valuestring, "test");
    cJSON_Delete(j);
    cJSON_Delete(mj);
    cr_free(m);
    assert_int_equal(cr_evaluate(c, cr_run_model_path(r), cfg, NULL, "nope", &m, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "nope"));
    assert_null(m);
    cr_run_free(r);
    cr_ctx_free(c);
}

/* ---- isolation: thread counts restored, two contexts at once ---------------------- */

typedef struct job {
    cr_ctx     *ctx;
    const char *cfg;
    char        out[512];
    cr_status   s;
    int         threads_after;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    cr_set_threads(3);
    cr_run *r = NULL;
    cr_error e = {0};
    j->s = cr_train(j->ctx, j->cfg, j->out, NULL, &r, &e);
    if (j->s) fprintf(stderr, "%s\n", e.msg);
    j->threads_after = cr_get_threads();
    cr_run_free(r);
    return NULL;
}

static void test_contexts_isolated(void **state) {
    const fixture *f = *state;
    char cfg[512];
    config(f, "iso.yaml", 2, cfg, sizeof cfg);
    cr_ctx *one = make_ctx(1, NULL, NULL), *two = make_ctx(2, NULL, NULL);

    /* each alone, on this thread: the caller's setting survives the call */
    job a = {one, cfg, "", 0, 0}, b = {two, cfg, "", 0, 0};
    snprintf(a.out, sizeof a.out, "%s/alone_1", f->dir);
    snprintf(b.out, sizeof b.out, "%s/alone_2", f->dir);
    run_job(&a);
    run_job(&b);
    assert_int_equal(a.s, CR_OK);
    assert_int_equal(b.s, CR_OK);
#ifdef _OPENMP
    assert_int_equal(a.threads_after, 3);
    assert_int_equal(b.threads_after, 3);
#endif
    /* both at once, on two threads */
    job a2 = {one, cfg, "", 0, 0}, b2 = {two, cfg, "", 0, 0};
    snprintf(a2.out, sizeof a2.out, "%s/both_1", f->dir);
    snprintf(b2.out, sizeof b2.out, "%s/both_2", f->dir);
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, run_job, &a2), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_job, &b2), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a2.s, CR_OK);
    assert_int_equal(b2.s, CR_OK);
    assert_true(same_model(a.out, a2.out));
    assert_true(same_model(b.out, b2.out));
    cr_ctx_free(one);
    cr_ctx_free(two);
}

/* ---- the kernel set and the thread count are the context's ------------------------ */

/* What the calling thread runs with while a call logs: its kernel set and
 * thread count on the first line, and whether any later line saw others. */
typedef struct seen {
    char kernels[32];
    int  threads, lines, changed;
} seen;

static void observe(void *user, cr_log_level lv, const char *line) {
    seen *s = user;
    (void)lv;
    (void)line;
    if (!s->lines++) {
        snprintf(s->kernels, sizeof s->kernels, "%s", cr_kernel_set_name());
        s->threads = cr_get_threads();
    } else if (strcmp(s->kernels, cr_kernel_set_name()) || s->threads != cr_get_threads()) {
        s->changed = 1;
    }
}

static double metric(const char *dir, const char *path) {
    char p[600];
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    size_t n;
    char *txt = slurp(p, &n);
    cJSON *j = cJSON_Parse(txt);
    assert_non_null(j);
    double v = jnum(j, path);
    cJSON_Delete(j);
    cr_free(txt);
    return v;
}

static void test_contexts_kernels(void **state) {
    const fixture *f = *state;
    char cfg[512];
    config(f, "k.yaml", 1, cfg, sizeof cfg); /* its train.threads is 2 */
    const char *process = cr_kernel_set_name();
    seen s1 = {0}, d1 = {0}, s2 = {0}, d2 = {0};
    /* scalar on 1 thread; the process's set on 0 threads, so the config's 2 apply */
    cr_ctx *sc = make_ctx_k(1, "scalar", observe, &s1), *dc = make_ctx_k(0, "auto", observe, &d1);
    assert_string_equal(cr_ctx_kernels(sc), "scalar");
    assert_string_equal(cr_ctx_kernels(dc), process);
    assert_string_equal(cr_ctx_kernels(NULL), process);

    job a = {sc, cfg, "", 0, 0}, b = {dc, cfg, "", 0, 0};
    snprintf(a.out, sizeof a.out, "%s/k_alone_scalar", f->dir);
    snprintf(b.out, sizeof b.out, "%s/k_alone_auto", f->dir);
    run_job(&a);
    assert_string_equal(cr_kernel_set_name(), process); /* restored after the call */
    run_job(&b);
    assert_int_equal(a.s, CR_OK);
    assert_int_equal(b.s, CR_OK);
    assert_true(s1.lines > 3 && d1.lines > 3);
    assert_string_equal(s1.kernels, "scalar");
    assert_string_equal(d1.kernels, process);
    assert_false(s1.changed || d1.changed);
#ifdef _OPENMP
    assert_int_equal(s1.threads, 1);
    assert_int_equal(d1.threads, 2); /* train.threads, as the context leaves it 0 */
    assert_int_equal(a.threads_after, 3);
    assert_int_equal(b.threads_after, 3);
    assert_int_equal((int)metric(b.out, "train.threads"), 2);
#endif
    assert_int_equal((int)metric(a.out, "train.threads"), 1);
    cr_ctx_free(sc);
    cr_ctx_free(dc);

    /* both at once, on two threads: each what it gave alone */
    sc = make_ctx_k(1, "scalar", observe, &s2);
    dc = make_ctx_k(0, NULL, observe, &d2);
    job a2 = {sc, cfg, "", 0, 0}, b2 = {dc, cfg, "", 0, 0};
    snprintf(a2.out, sizeof a2.out, "%s/k_both_scalar", f->dir);
    snprintf(b2.out, sizeof b2.out, "%s/k_both_auto", f->dir);
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, run_job, &a2), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_job, &b2), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a2.s, CR_OK);
    assert_int_equal(b2.s, CR_OK);
    assert_string_equal(s2.kernels, "scalar");
    assert_string_equal(d2.kernels, process);
    assert_false(s2.changed || d2.changed);
#ifdef _OPENMP
    assert_int_equal(a2.threads_after, 3);
    assert_int_equal(b2.threads_after, 3);
#endif
    assert_true(same_model(a.out, a2.out));
    assert_true(same_model(b.out, b2.out));
    /* and the evaluation through the scalar context agrees with itself, from
     * this thread, whose own set stays the process's */
    char model[600], *m1 = NULL, *m2 = NULL;
    cr_error e = {0};
    snprintf(model, sizeof model, "%s/model.safetensors", a.out);
    assert_int_equal(cr_evaluate(sc, model, cfg, NULL, "test", &m1, &e), CR_OK);
    assert_int_equal(cr_evaluate(sc, model, cfg, NULL, "test", &m2, &e), CR_OK);
    assert_string_equal(m1, m2);
    assert_string_equal(cr_kernel_set_name(), process);
    cr_free(m1);
    cr_free(m2);
    cr_ctx_free(sc);
    cr_ctx_free(dc);

    /* scoring splits its 600 rows over the context's threads, each thread
     * running the whole network: on two threads the scalar set's scores
     * are the bits of one thread, so every thread ran the scalar set */
    char data[600], out1[600], out2[600];
    snprintf(data, sizeof data, "%s/data.csv", f->dir);
    snprintf(out1, sizeof out1, "%s/k_scores_1.csv", f->dir);
    snprintf(out2, sizeof out2, "%s/k_scores_2.csv", f->dir);
    cr_score_csv_opts so;
    cr_score_csv_opts_init(&so);
    so.model = model;
    so.data = data;
    so.out = out1;
    sc = make_ctx_k(1, "scalar", NULL, NULL);
    assert_int_equal(cr_score_csv(sc, &so, NULL, &e), CR_OK);
    cr_ctx_free(sc);
    sc = make_ctx_k(2, "scalar", NULL, NULL);
    so.out = out2;
    assert_int_equal(cr_score_csv(sc, &so, NULL, &e), CR_OK);
    cr_ctx_free(sc);
    assert_true(same_bytes(out1, out2));
}

/* ---- progress, cancel, a context in use ------------------------------------------- */

typedef struct prog {
    cr_ctx *ctx;
    int     calls;
    int64_t last_done, total;
    int     cancel_at;     /* return 1 on this call (1-based); 0 = never */
    cr_status nested;      /* what a call on the busy context returned */
    char    cfg[512];
} prog;

static int on_progress(void *user, const cr_progress_info *p) {
    prog *g = user;
    g->calls++;
    assert_string_equal(p->stage, "train");
    assert_string_equal(p->unit, "steps");
    assert_true(p->done >= g->last_done);
    g->last_done = p->done;
    g->total = p->total;
    if (g->calls == 1 && g->ctx) {
        char *m = NULL;
        cr_error e = {0};
        g->nested = cr_evaluate(g->ctx, "x.safetensors", g->cfg, NULL, "test", &m, &e);
        assert_non_null(strstr(e.msg, "in use"));
    }
    return g->cancel_at && g->calls >= g->cancel_at;
}

static void test_cancel_then_resume(void **state) {
    const fixture *f = *state;
    char cfg[512], whole[512], cut[512], p[600];
    config(f, "c.yaml", 3, cfg, sizeof cfg);
    snprintf(whole, sizeof whole, "%s/whole", f->dir);
    snprintf(cut, sizeof cut, "%s/cut", f->dir);
    cr_ctx *plain = make_ctx(2, NULL, NULL);
    train_ok(plain, cfg, whole, 0);

    prog g = {0};
    g.cancel_at = 1;
    snprintf(g.cfg, sizeof g.cfg, "%s", cfg);
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.threads = 2;
    cp.quiet = 1;
    cp.progress = on_progress;
    cp.progress_user = &g;
    cr_ctx *c = NULL;
    cr_error e = {0};
    assert_int_equal(cr_ctx_new(&c, &cp, &e), CR_OK);
    g.ctx = c;
    cr_run *r = (cr_run *)1;
    assert_int_equal(cr_train(c, cfg, cut, NULL, &r, &e), CR_ERR_CANCELLED);
    assert_null(r);
    assert_int_equal(g.nested, CR_ERR_ARG); /* the context was busy */
    assert_int_equal(g.calls, 1);
    assert_true(g.last_done >= 1 && g.last_done < g.total);
    assert_non_null(strstr(e.msg, "cancelled"));
    snprintf(p, sizeof p, "%s/last.safetensors", cut);
    assert_true(cr_file_exists(p));
    snprintf(p, sizeof p, "%s/model.safetensors", cut);
    assert_false(cr_file_exists(p));

    /* the flag stays until reset; a resumed run ends where the whole one did */
    assert_int_equal(cr_train(c, cfg, cut, NULL, &r, &e), CR_ERR_CANCELLED);
    cr_ctx_reset_cancel(c);
    g.cancel_at = 0;
    g.ctx = NULL;
    cr_train_opts o;
    cr_train_opts_init(&o);
    o.resume = 1;
    assert_int_equal(cr_train(c, cfg, cut, &o, &r, &e), CR_OK);
    assert_int_equal(g.last_done, g.total);
    cr_run_free(r);
    assert_true(same_model(whole, cut));
    /* cancel from outside the job, before it starts */
    cr_ctx_cancel(c);
    snprintf(p, sizeof p, "%s/never", f->dir);
    assert_int_equal(cr_train(c, cfg, p, NULL, &r, &e), CR_ERR_CANCELLED);
    cr_ctx_free(c);
    cr_ctx_free(plain);
}

/* ---- bad arguments: a status and a message, never a crash ---------------------------- */

static void test_bad_arguments(void **state) {
    const fixture *f = *state;
    cr_error e = {0};
    cr_ctx_params p;
    cr_ctx_params_init(&p);
    cr_ctx *c = (cr_ctx *)1;
    p.threads = -1;
    assert_int_equal(cr_ctx_new(&c, &p, &e), CR_ERR_ARG);
    assert_null(c);
    assert_non_null(strstr(e.msg, "threads"));
    cr_ctx_params_init(&p);
    p.precision = (cr_precision)7;
    assert_int_equal(cr_ctx_new(&c, &p, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "precision"));
    cr_ctx_params_init(&p);
    p.kernels = "avx9";
    assert_int_equal(cr_ctx_new(&c, &p, &e), CR_ERR_ARG);
    assert_null(c);
    assert_non_null(strstr(e.msg, "cr_ctx_params.kernels 'avx9'"));
    assert_non_null(strstr(e.msg, "expected auto, scalar"));
#if defined(__x86_64__)
    p.kernels = "neon"; /* a set of another architecture */
    assert_int_equal(cr_ctx_new(&c, &p, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "this build has no neon kernels"));
#endif
    p.kernels = "";
    assert_int_equal(cr_ctx_new(&c, &p, &e), CR_OK);
    assert_string_equal(cr_ctx_kernels(c), cr_kernel_set_name());
    cr_ctx_free(c);
    assert_int_equal(cr_ctx_new(NULL, NULL, NULL), CR_ERR_ARG);
    cr_ctx_free(NULL);
    cr_ctx_cancel(NULL);

    cr_run *r = NULL;
    assert_int_equal(cr_train(NULL, NULL, "x", NULL, &r, &e), CR_ERR_ARG);
    assert_int_equal(cr_train(NULL, "x.yaml", "x", NULL, NULL, NULL), CR_ERR_ARG);
    cr_train_opts o;
    cr_train_opts_init(&o);
    o.epochs = -2;
    assert_int_equal(cr_train(NULL, "x.yaml", "x", &o, &r, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "epochs"));
    char out[512];
    snprintf(out, sizeof out, "%s/o", f->dir);
    assert_int_equal(cr_train(NULL, "no/such/config.yaml", out, NULL, &r, &e), CR_ERR_IO);
    assert_non_null(strstr(e.msg, "no/such/config.yaml"));
    assert_null(r);
    assert_null(cr_run_metrics_json(NULL));
    cr_run_free(NULL);
    char *m = (char *)1;
    assert_int_equal(cr_evaluate(NULL, NULL, "c", NULL, NULL, &m, &e), CR_ERR_ARG);
    assert_null(m);
    assert_string_equal(cr_version(), CR_VERSION);
    assert_string_equal(cr_strerror(CR_ERR_CANCELLED), "cancelled");
}

/* ---- the decoder LM -------------------------------------------------------------------- */

static void test_lm(void **state) {
    (void)state;
    const char *model = "data/models/austen-small/model.safetensors";
    cr_error e = {0};
    cr_lm *lm = NULL;
    cr_lm_load_opts lo;
    cr_lm_load_opts_init(&lo);
    assert_int_equal(cr_lm_load(&lm, "no/such.bin", &lo, &e), CR_ERR_IO);
    assert_non_null(strstr(e.msg, "no/such.bin"));
    lo.tokenizer = "data/models/austen-small/tokenizer";
    assert_int_equal(cr_lm_load(&lm, model, &lo, &e), CR_OK);
    assert_true(cr_lm_has_tokenizer(lm));
    int V = cr_lm_vocab_size(lm), T = cr_lm_context_length(lm);
    assert_true(V > 256 && T >= 64);
    assert_true(cr_lm_bos_id(lm) >= 0 && cr_lm_bos_id(lm) < V);

    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    assert_int_equal(cr_lm_tokenize(lm, "Emma was not sorry", &ids, &n, &e), CR_OK);
    assert_true(n >= 2);
    assert_int_equal(cr_lm_detokenize(lm, ids, n, &text, &e), CR_OK);
    assert_string_equal(text, "Emma was not sorry");
    cr_free(text);

    /* greedy continuation: the same twice, and the text call agrees with ids */
    int32_t prompt[64], a[8], b[8];
    prompt[0] = cr_lm_bos_id(lm);
    for (size_t i = 0; i < n; i++) prompt[1 + i] = ids[i];
    cr_gen_opts g;
    cr_gen_opts_init(&g);
    g.n_tokens = 8;
    g.temperature = 0;
    assert_int_equal(cr_lm_generate_ids(NULL, lm, prompt, (int)n + 1, &g, a, &e), CR_OK);
    assert_int_equal(cr_lm_generate_ids(NULL, lm, prompt, (int)n + 1, &g, b, &e), CR_OK);
    assert_memory_equal(a, b, sizeof a);
    char *want = NULL;
    assert_int_equal(cr_lm_detokenize(lm, a, 8, &want, &e), CR_OK);
    assert_int_equal(cr_lm_generate(NULL, lm, "Emma was not sorry", &g, &text, &e), CR_OK);
    assert_string_equal(text, want);
    cr_free(text);
    cr_free(want);
    cr_free(ids);

    /* refusals */
    g.n_tokens = T + 1;
    assert_int_equal(cr_lm_generate_ids(NULL, lm, prompt, 1, &g, a, &e), CR_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "max_seq"));
    g.n_tokens = 4;
    prompt[0] = V;
    assert_int_equal(cr_lm_generate_ids(NULL, lm, prompt, 1, &g, a, &e), CR_ERR_ARG);
    g.top_p = 0;
    assert_int_equal(cr_lm_generate(NULL, lm, "x", &g, &text, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "top_p"));
    assert_int_equal(cr_lm_generate(NULL, NULL, "x", &g, &text, &e), CR_ERR_ARG);
    cr_lm_free(lm);

    /* without a tokenizer: ids only */
    cr_lm_load_opts_init(&lo);
    assert_int_equal(cr_lm_load(&lm, model, &lo, &e), CR_OK);
    assert_int_equal(cr_lm_tokenize(lm, "x", &ids, &n, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "tokenizer"));
    cr_lm_free(lm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_train_run_and_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contexts_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contexts_kernels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_then_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test(test_lm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
