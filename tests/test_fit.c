/*
 * test_fit.c - cr_rank_fit end to end on a small synthetic log written into
 * a temporary directory: the files it writes and what metrics.json holds,
 * that the validation loss falls, that runs repeat bit for bit, that a run
 * stopped part-way and resumed ends exactly like an uninterrupted one, that
 * per-task early stopping freezes an overfitting task, that the saved model
 * scores like the trained one, and the errors a bad or mismatched
 * checkpoint must produce. A failed save must never damage a file already
 * written.
 *
 * The log: 150 requests of 4 impressions (600 rows; 480 train, 60 valid,
 * 60 test by a split column). click depends on item quality and on whether
 * the item's category is the user's favourite; like (masked by click) on
 * quality; dwell (regression, always defined) on quality and device; coin
 * is a fair coin, a task that can only be overfit.
 */
#include "util/testutil.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../src/rank/fit.h"

enum { N_REQ = 150, PER_REQ = 4, N_USERS = 30, N_ITEMS = 40, N_CATS = 6 };
enum { STEPS_PER_EPOCH = 15 }; /* 480 training rows, batch 32 */

typedef struct fixture {
    char dir[256];
} fixture;

/* ---- the synthetic log -------------------------------------------------------- */

static double uni(cr_rng *r) { return cr_rng_uniform(r); }
static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* dwell_base shifts the regression label: 2 keeps it positive, 0 makes
 * about a quarter of it negative. */
static void write_data(const char *dir, const char *name, double dwell_base) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    cr_rng r;
    cr_rng_seed(&r, 12345);
    int fav[N_USERS], age[N_USERS], cat[N_ITEMS], price[N_ITEMS];
    double quality[N_ITEMS], ubias[N_USERS];
    char tags[N_ITEMS][32];
    for (int u = 0; u < N_USERS; u++) {
        fav[u] = (int)cr_rng_below(&r, N_CATS);
        age[u] = 18 + (int)cr_rng_below(&r, 50);
        ubias[u] = 2 * uni(&r) - 1;
    }
    for (int i = 0; i < N_ITEMS; i++) {
        cat[i] = (int)cr_rng_below(&r, N_CATS);
        price[i] = 5 + (int)cr_rng_below(&r, 95);
        quality[i] = 2 * uni(&r) - 1;
        /* the category's tag, plus up to two more */
        int o = snprintf(tags[i], sizeof tags[i], "t%d", cat[i]);
        int extra = (int)cr_rng_below(&r, 3);
        for (int j = 0; j < extra; j++)
            o += snprintf(tags[i] + o, sizeof tags[i] - (size_t)o, "|t%d",
                          (int)cr_rng_below(&r, N_CATS + 2));
    }
    static const char *const devices[3] = {"mobile", "desktop", "tv"};
    fprintf(f, "request_id,user_id,item_id,category,device,tags,price,age,split,click,like,dwell,"
               "coin\n");
    for (int q = 0; q < N_REQ; q++) {
        int u = (int)cr_rng_below(&r, N_USERS);
        int dev = (int)cr_rng_below(&r, 3);
        const char *split = q % 10 == 8 ? "valid" : q % 10 == 9 ? "test" : "train";
        int items[PER_REQ];
        for (int j = 0; j < PER_REQ; j++) {
            int again;
            do { /* distinct items within a request */
                items[j] = (int)cr_rng_below(&r, N_ITEMS);
                again = 0;
                for (int k = 0; k < j; k++) again |= items[k] == items[j];
            } while (again);
            int i = items[j];
            double logit = 2.0 * quality[i] + 1.5 * (cat[i] == fav[u]) + 0.5 * ubias[u] - 0.5;
            int click = uni(&r) < sigm(logit);
            char like[8] = "";
            if (click) snprintf(like, sizeof like, "%d", uni(&r) < sigm(3.0 * quality[i]));
            double dwell = dwell_base + quality[i] + 0.5 * (dev == 0) + 0.2 * (uni(&r) - 0.5);
            int coin = uni(&r) < 0.5;
            fprintf(f, "%d,u%d,i%d,c%d,%s,%s,%d,%d,%s,%d,%s,%.4f,%d\n", q, u, i, cat[i],
                    devices[dev], tags[i], price[i], age[u], split, click, like, dwell, coin);
        }
    }
    assert_int_equal(fclose(f), 0);
}

/* ---- configs ------------------------------------------------------------------ */

typedef struct cfg_opts {
    const char *es;      /* early-stopping mode */
    int patience;
    int eval_every;      /* steps; 0 = once per epoch */
    int epochs;
    int max_steps;
    int coin;            /* add the coin task */
    int category_dim;    /* 3 unless changed (a different schema) */
    int tower;           /* tower width, 8 unless changed (a different model) */
    const char *lr;
    const char *data;    /* the log, in the fixture's directory */
} cfg_opts;

static cfg_opts defaults(void) {
    cfg_opts o = {"none", 2, 0, 4, 0, 0, 3, 8, "0.01", "data.csv"};
    return o;
}

static void write_cfg(const char *dir, const char *name, const cfg_opts *o, char *path,
                      size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "data:\n"
            "  path: %s\n"
            "  split: {by: column, column: split}\n"
            "  group: request_id\n"
            "  user: user_id\n"
            "features:\n"
            "  - {name: user, type: categorical, column: user_id, dim: 4}\n"
            "  - {name: item, type: categorical, column: item_id, dim: 4}\n"
            "  - {name: category, type: categorical, dim: %d}\n"
            "  - {name: device, type: categorical, dim: 2}\n"
            "  - {name: tags, type: multi, dim: 3, pooling: mean}\n"
            "  - {name: price, type: numeric, transform: log1p_zscore}\n"
            "  - {name: age, type: numeric}\n"
            "tasks:\n"
            "  - {name: click, type: binary}\n"
            "  - {name: like, type: binary, mask: click}\n"
            "  - {name: dwell, type: regression, weight: 0.5}\n"
            "%s"
            "model:\n"
            "  type: mmoe\n"
            "  experts: 2\n"
            "  expert_layers: [16]\n"
            "  tower_layers: [%d]\n"
            "train:\n"
            "  lr: %s\n"
            "  sparse_lr: 0.1\n"
            "  batch_size: 32\n"
            "  epochs: %d\n"
            "  max_steps: %d\n"
            "  seed: 3\n"
            "  threads: 2\n"
            "  checkpoint_every: 1\n"
            "  early_stopping: {mode: %s, patience: %d, eval_every: %d}\n"
            "eval:\n"
            "  k: 4\n"
            "  popularity_feature: price\n",
            o->data, o->category_dim, o->coin ? "  - {name: coin, type: binary}\n" : "", o->tower, o->lr,
            o->epochs, o->max_steps, o->es, o->patience, o->eval_every);
    assert_int_equal(fclose(f), 0);
}

static void load_cfg(const char *path, cr_rank_config *c) {
    cr_error e = {0};
    cr_status s = cr_rank_config_load(c, path, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
}

/* One run of cr_rank_fit with a fresh config. Returns the status; the log
 * (if log != NULL) is returned as a string to free(). */
static cr_status fit(const char *cfg_path, const char *out, int resume, int64_t stop_after,
                     char **log, cr_error *e) {
    cr_rank_config c;
    load_cfg(cfg_path, &c);
    char *buf = NULL;
    size_t len = 0;
    FILE *lf = log ? open_memstream(&buf, &len) : NULL;
    cr_fit_opts o = {out, resume, lf, stop_after};
    cr_status s = cr_rank_fit(&c, &o, NULL, e);
    if (lf) {
        fclose(lf);
        *log = buf;
    }
    cr_rank_config_free(&c);
    return s;
}

static void fit_ok(const char *cfg_path, const char *out, int resume, char **log) {
    cr_error e = {0};
    cr_status s = fit(cfg_path, out, resume, 0, log, &e);
    if (s) fprintf(stderr, "fit %s -> %s: %s\n", cfg_path, out, e.msg);
    assert_int_equal(s, CR_OK);
}

/* ---- files ---------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *n) {
    char *txt = NULL;
    cr_error e = {0};
    if (cr_read_file(path, &txt, n, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    return txt;
}

static void spit(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    if (!same) fprintf(stderr, "%s (%zu bytes) and %s (%zu bytes) differ\n", a, na, b, nb);
    cr_free(x);
    cr_free(y);
    return same;
}

static cJSON *read_json(const char *path) {
    size_t n;
    char *txt = slurp(path, &n);
    cJSON *j = cJSON_Parse(txt);
    if (!j) fprintf(stderr, "%s is not JSON\n", path);
    cr_free(txt);
    assert_non_null(j);
    return j;
}

static const cJSON *jget(const cJSON *o, const char *path) {
    /* "a.b.c" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cur;
}

static double jnum(const cJSON *o, const char *path) {
    const cJSON *v = jget(o, path);
    if (!cJSON_IsNumber(v)) {
        fprintf(stderr, "metrics: '%s' is not a number\n", path);
        fail();
    }
    return v->valuedouble;
}

/* The step numbers of the "eval step N:" lines of a log, in order. */
static int eval_steps(const char *log, long *steps, int cap) {
    int n = 0;
    for (const char *p = log; (p = strstr(p, "eval step ")) && n < cap; p++)
        steps[n++] = strtol(p + 10, NULL, 10);
    return n;
}

/* ---- end to end -------------------------------------------------------------------- */

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    cr_test_tmpdir(f->dir, sizeof f->dir);
    write_data(f->dir, "data.csv", 2.0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    cr_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Weighted validation loss of a model on a freshly loaded copy of the data,
 * encoded with the config's schema as cr_rank_fit fitted it. */
static double valid_sum_loss(const cr_ranker *m, cr_rank_config *c) {
    cr_dataset ds;
    cr_error e = {0};
    assert_int_equal(cr_dataset_load(&ds, &c->schema, &c->data, 0, &e), CR_OK);
    uint32_t *rows;
    int64_t n;
    assert_int_equal(cr_dataset_rows(&ds, CR_SPLIT_VALID, &rows, &n, &e), CR_OK);
    float *pred = malloc((size_t)m->cfg.n_heads * (size_t)n * sizeof(float));
    double hl[CR_MODEL_MAX_HEADS], sum = 0;
    assert_int_equal(cr_rank_predict_rows(m, &ds, rows, n, 64, pred, hl, &e), CR_OK);
    for (int h = 0; h < m->cfg.n_heads; h++) sum += m->cfg.heads[h].weight * hl[h];
    free(pred);
    free(rows);
    cr_dataset_free(&ds);
    return sum;
}

static void test_fit_end_to_end(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], p[600];
    cfg_opts o = defaults();
    o.es = "sum_loss";
    o.patience = 3;
    o.epochs = 8;
    write_cfg(f->dir, "e2e.yaml", &o, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_e2e", f->dir);

    cr_rank_config c;
    load_cfg(cfg, &c);
    char *buf = NULL, *metrics = NULL;
    size_t len = 0;
    FILE *lf = open_memstream(&buf, &len);
    cr_fit_opts fo = {out, 0, lf, 0};
    cr_error e = {0};
    cr_status s = cr_rank_fit(&c, &fo, &metrics, &e);
    fclose(lf);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);

    /* every file the header promises */
    const char *files[] = {"model.safetensors", "metrics.json", "config.yaml",
                           "last.safetensors", "train_state.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        if (!cr_file_exists(p)) fprintf(stderr, "missing %s\n", p);
        assert_true(cr_file_exists(p));
    }
    /* config.yaml is the config as given */
    snprintf(p, sizeof p, "%s/config.yaml", out);
    assert_true(same_bytes(p, cfg));

    /* metrics.json: the string returned is the file */
    snprintf(p, sizeof p, "%s/metrics.json", out);
    size_t n;
    char *txt = slurp(p, &n);
    assert_non_null(metrics);
    assert_string_equal(metrics, txt);
    cr_free(txt);
    cJSON *j = read_json(p);
    assert_int_equal((int)jnum(j, "rows.train"), 480);
    assert_int_equal((int)jnum(j, "rows.valid"), 60);
    assert_int_equal((int)jnum(j, "rows.test"), 60);
    double steps = jnum(j, "train.steps");
    assert_true(steps >= 1 && steps <= 8 * STEPS_PER_EPOCH);
    const char *splits[] = {"valid", "test"};
    const char *bin[] = {"click", "like"};
    for (int i = 0; i < 2; i++) {
        const cJSON *sp = jget(j, splits[i]);
        assert_true(cJSON_IsObject(sp));
        assert_int_equal((int)jnum(sp, "rows"), 60);
        for (int k = 0; k < 2; k++) {
            char key[64];
            snprintf(key, sizeof key, "tasks.%s.model.auc", bin[k]);
            double auc = jnum(sp, key);
            assert_true(auc >= 0.0 && auc <= 1.0);
            snprintf(key, sizeof key, "tasks.%s.model.logloss", bin[k]);
            assert_true(jnum(sp, key) > 0);
            snprintf(key, sizeof key, "tasks.%s.baseline_popularity.auc", bin[k]);
            double pauc = jnum(sp, key);
            assert_true(pauc >= 0.0 && pauc <= 1.0);
        }
        assert_true(jnum(sp, "tasks.dwell.model.rmse") >= 0);
        assert_true(isfinite(jnum(sp, "tasks.dwell.model.r2")));
        assert_null(jget(sp, "tasks.dwell.model.auc"));
    }
    /* the signal is real: click is learnt */
    assert_true(jnum(j, "valid.tasks.click.model.auc") > 0.6);

    /* the loss falls: the kept model's validation loss is below the first
     * evaluation's and well below the untrained model's */
    double final_sum = 0.5 * jnum(j, "valid.tasks.dwell.loss") + jnum(j, "valid.tasks.click.loss") +
                       jnum(j, "valid.tasks.like.loss");
    const char *first = strstr(buf, "| sum ");
    assert_non_null(first);
    double first_sum = strtod(first + 6, NULL);
    cr_ranker *m0 = NULL;
    assert_int_equal(cr_ranker_create(&m0, &c.schema, &c.model, c.train.seed, &e), CR_OK);
    double init_sum = valid_sum_loss(m0, &c);
    cr_ranker_free(m0);
    if (!(final_sum < first_sum && final_sum < 0.8 * init_sum))
        fprintf(stderr, "validation loss: untrained %.5f, first eval %.5f, final %.5f\nlog:\n%s",
                init_sum, first_sum, final_sum, buf);
    assert_true(final_sum < first_sum);
    assert_true(final_sum < 0.8 * init_sum);
    /* CR_TEST_VERBOSE=1 shows the margins, for when the model or data change */
    if (getenv("CR_TEST_VERBOSE"))
        fprintf(stderr, "untrained %.5f first %.5f final %.5f click auc %.4f steps %.0f\n%s",
                init_sum, first_sum, final_sum, jnum(j, "valid.tasks.click.model.auc"), steps, buf);

    cJSON_Delete(j);
    free(metrics);
    free(buf);
    cr_rank_config_free(&c);
}

static void test_determinism(void **state) {
    const fixture *f = *state;
    char cfg[512], a[512], b[512], p[600], q[600];
    cfg_opts o = defaults();
    o.es = "sum_loss";
    o.epochs = 3;
    o.eval_every = 7;
    write_cfg(f->dir, "det.yaml", &o, cfg, sizeof cfg);
    snprintf(a, sizeof a, "%s/out_det_a", f->dir);
    snprintf(b, sizeof b, "%s/out_det_b", f->dir);
    fit_ok(cfg, a, 0, NULL);
    fit_ok(cfg, b, 0, NULL);
    const char *files[] = {"model.safetensors", "last.safetensors", "train_state.safetensors"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", a, files[i]);
        snprintf(q, sizeof q, "%s/%s", b, files[i]);
        assert_true(same_bytes(p, q));
    }
    /* and the metrics, apart from the clock */
    snprintf(p, sizeof p, "%s/metrics.json", a);
    snprintf(q, sizeof q, "%s/metrics.json", b);
    cJSON *x = read_json(p), *y = read_json(q);
    const char *parts[] = {"valid", "test", "rows"};
    for (int i = 0; i < 3; i++) {
        char *sx = cJSON_PrintUnformatted(jget(x, parts[i]));
        char *sy = cJSON_PrintUnformatted(jget(y, parts[i]));
        assert_string_equal(sx, sy);
        free(sx);
        free(sy);
    }
    assert_true(jnum(x, "train.steps") == jnum(y, "train.steps"));
    cJSON_Delete(x);
    cJSON_Delete(y);
}

/* A regression target may be negative (docs/config.md puts no range on
 * it). A run on such a log must train and report its metrics; it must not
 * fail at the end, after training, because a ranking metric wants
 * non-negative gains. */
static void test_negative_regression_labels(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], p[600];
    write_data(f->dir, "data_neg.csv", 0.0);
    cfg_opts o = defaults();
    o.epochs = 2;
    o.data = "data_neg.csv";
    write_cfg(f->dir, "neg.yaml", &o, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_neg", f->dir);
    fit_ok(cfg, out, 0, NULL);
    snprintf(p, sizeof p, "%s/metrics.json", out);
    cJSON *j = read_json(p);
    assert_true(jnum(j, "test.tasks.dwell.model.rmse") >= 0);
    assert_true(jnum(j, "test.tasks.click.model.auc") >= 0);
    cJSON_Delete(j);
}

/* ---- resume --------------------------------------------------------------------------- */

/* Run uninterrupted into out_ref; then into out_cut stopped after `stop`
 * steps (CR_ERR_LIMIT) and resumed. Returns 1 if the two final models are
 * the same bytes and their step counts and test metrics agree. The logs
 * (if asked for) are returned for the caller to check and free. */
static int resume_case(const fixture *f, const char *tag, const cfg_opts *o, int64_t stop,
                       char **log_ref, char **log_cut, char **log_resumed) {
    char cfg[512], ref[512], cut[512], p[600], q[600], name[64];
    snprintf(name, sizeof name, "%s.yaml", tag);
    write_cfg(f->dir, name, o, cfg, sizeof cfg);
    snprintf(ref, sizeof ref, "%s/out_%s_ref", f->dir, tag);
    snprintf(cut, sizeof cut, "%s/out_%s_cut", f->dir, tag);
    fit_ok(cfg, ref, 0, log_ref);

    cr_error e = {0};
    cr_status s = fit(cfg, cut, 0, stop, log_cut, &e);
    if (s != CR_ERR_LIMIT) fprintf(stderr, "%s: stop after %lld: status %d: %s\n", tag,
                                   (long long)stop, (int)s, e.msg);
    assert_int_equal(s, CR_ERR_LIMIT);
    char want[64];
    snprintf(want, sizeof want, "%lld", (long long)stop);
    assert_non_null(strstr(e.msg, want));
    /* stopped "as if killed": no final metrics yet */
    snprintf(p, sizeof p, "%s/metrics.json", cut);
    assert_false(cr_file_exists(p));

    fit_ok(cfg, cut, 1, log_resumed);
    snprintf(p, sizeof p, "%s/model.safetensors", ref);
    snprintf(q, sizeof q, "%s/model.safetensors", cut);
    if (!same_bytes(p, q)) {
        fprintf(stderr, "%s: resumed after step %lld, the model differs from an uninterrupted run\n",
                tag, (long long)stop);
        return 0;
    }
    snprintf(p, sizeof p, "%s/metrics.json", ref);
    snprintf(q, sizeof q, "%s/metrics.json", cut);
    cJSON *x = read_json(p), *y = read_json(q);
    char *sx = cJSON_PrintUnformatted(jget(x, "test"));
    char *sy = cJSON_PrintUnformatted(jget(y, "test"));
    int same = jnum(x, "train.steps") == jnum(y, "train.steps") &&
               jnum(x, "train.examples") == jnum(y, "train.examples") && !strcmp(sx, sy);
    if (!same) fprintf(stderr, "%s: the resumed run's metrics.json differs\n", tag);
    free(sx);
    free(sy);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

/* Stopped inside the second epoch, between two checkpoints: the resumed
 * run restarts from the checkpoint at step 20 and redoes steps 21-22. */
static void test_resume_inside_epoch(void **state) {
    cfg_opts o = defaults();
    o.epochs = 3;
    o.eval_every = 4;
    assert_true(resume_case(*state, "mid", &o, 22, NULL, NULL, NULL));
}

/* Stopped right after the checkpoint that ends the first epoch. */
static void test_resume_epoch_boundary(void **state) {
    cfg_opts o = defaults();
    o.epochs = 3;
    o.eval_every = 5;
    assert_true(resume_case(*state, "edge", &o, STEPS_PER_EPOCH, NULL, NULL, NULL));
}

/* Evaluating once per epoch, the checkpoint is taken after the epoch's last
 * step; stopping one step into the next epoch resumes from there. */
static void test_resume_after_epoch_checkpoint(void **state) {
    cfg_opts o = defaults();
    o.epochs = 3;
    o.eval_every = 0;
    assert_true(resume_case(*state, "epoch", &o, STEPS_PER_EPOCH + 1, NULL, NULL, NULL));
}

/* Resuming must continue the run, not replay part of it: the evaluations
 * of the stopped run plus those of the resumed one are exactly those of an
 * uninterrupted run. An evaluation repeated at the resume point counts
 * once more against early stopping's patience (sum_loss, per_task), so
 * the resumed run could stop or freeze a task earlier. */
static void test_resume_no_repeated_eval(void **state) {
    cfg_opts o = defaults();
    o.es = "sum_loss";
    o.patience = 100; /* never stops: both runs take every step */
    o.epochs = 3;
    o.eval_every = 0;
    char *lr = NULL, *lc = NULL, *lres = NULL;
    /* the models are compared by the tests above; here only the evaluations */
    (void)resume_case(*state, "evals", &o, STEPS_PER_EPOCH + 1, &lr, &lc, &lres);
    long ref[64], got[64];
    int nr = eval_steps(lr, ref, 64);
    int nc = eval_steps(lc, got, 64);
    nc += eval_steps(lres, got + nc, 64 - nc);
    int same = nr == nc;
    for (int i = 0; same && i < nr; i++) same = ref[i] == got[i];
    if (!same) {
        fprintf(stderr, "evaluations: uninterrupted at steps");
        for (int i = 0; i < nr; i++) fprintf(stderr, " %ld", ref[i]);
        fprintf(stderr, "; stopped + resumed at steps");
        for (int i = 0; i < nc; i++) fprintf(stderr, " %ld", got[i]);
        fprintf(stderr, "\n");
    }
    free(lr);
    free(lc);
    free(lres);
    assert_true(same);
}

static void test_resume_mismatch(void **state) {
    const fixture *f = *state;
    char a[512], b[512], c2[512], out[512], p[600];
    cfg_opts o = defaults();
    o.epochs = 2;
    o.eval_every = 5;
    write_cfg(f->dir, "rm_a.yaml", &o, a, sizeof a);
    snprintf(out, sizeof out, "%s/out_rm", f->dir);
    cr_error e = {0};
    assert_int_equal(fit(a, out, 0, 12, NULL, &e), CR_ERR_LIMIT);
    snprintf(p, sizeof p, "%s/last.safetensors", out);
    assert_true(cr_file_exists(p));
    size_t n0, n1;
    char *before = slurp(p, &n0);
    int failures = 0;

    /* another schema: a feature of another width */
    cfg_opts ob = o;
    ob.category_dim = 5;
    write_cfg(f->dir, "rm_b.yaml", &ob, b, sizeof b);
    cr_status s = fit(b, out, 1, 0, NULL, &e);
    if (s != CR_ERR_MISMATCH || !strstr(e.msg, "last.safetensors")) {
        fprintf(stderr, "resume with another schema: status %d (want %d): %s\n", (int)s,
                (int)CR_ERR_MISMATCH, e.msg);
        failures++;
    }

    /* the same schema, another model: a wider tower */
    cfg_opts oc = o;
    oc.tower = 6;
    write_cfg(f->dir, "rm_c.yaml", &oc, c2, sizeof c2);
    s = fit(c2, out, 1, 0, NULL, &e);
    if (s != CR_ERR_MISMATCH || !strstr(e.msg, "last.safetensors")) {
        fprintf(stderr, "resume with another model section: status %d (want %d): %s\n", (int)s,
                (int)CR_ERR_MISMATCH, e.msg);
        failures++;
    }

    /* neither failed attempt touched the checkpoint */
    char *after = slurp(p, &n1);
    int same = n0 == n1 && memcmp(before, after, n0) == 0;
    cr_free(before);
    cr_free(after);
    assert_true(same);
    assert_int_equal(failures, 0);
}

/* ---- per-task early stopping ------------------------------------------------------- */

static int starts_with(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static void test_per_task_freeze(void **state) {
    const fixture *f = *state;
    char cfg[512], cfg2[512], a[512], b[512], p[600], q[600];
    cfg_opts o = defaults();
    o.es = "per_task";
    o.patience = 1;
    o.epochs = 12;
    o.coin = 1;
    o.lr = "0.03";
    write_cfg(f->dir, "pt.yaml", &o, cfg, sizeof cfg);
    snprintf(a, sizeof a, "%s/out_pt", f->dir);
    char *log = NULL;
    fit_ok(cfg, a, 0, &log);
    snprintf(p, sizeof p, "%s/metrics.json", a);
    cJSON *j = read_json(p);
    assert_string_equal(jget(j, "train.early_stopping")->valuestring, "per_task");
    const cJSON *fz = jget(j, "train.frozen_at_step.coin");
    if (!cJSON_IsNumber(fz)) fprintf(stderr, "coin was never frozen; log:\n%s", log);
    assert_true(cJSON_IsNumber(fz));
    int64_t at = (int64_t)fz->valuedouble;
    int64_t steps = (int64_t)jnum(j, "train.steps");
    assert_true(at > 0 && at < steps); /* frozen while the other tasks trained on */
    if (getenv("CR_TEST_VERBOSE"))
        fprintf(stderr, "coin frozen at %lld of %lld\n%s", (long long)at, (long long)steps, log);
    assert_non_null(strstr(log, "task coin stopped improving"));
    free(log);
    cJSON_Delete(j);

    /* The same run cut at the freezing step: coin's tower, gate and head
     * must be what the full run ended with, while shared experts moved on. */
    cfg_opts o2 = o;
    o2.max_steps = (int)at;
    write_cfg(f->dir, "pt2.yaml", &o2, cfg2, sizeof cfg2);
    snprintf(b, sizeof b, "%s/out_pt2", f->dir);
    fit_ok(cfg2, b, 0, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", a);
    snprintf(q, sizeof q, "%s/model.safetensors", b);
    cr_st_file x, y;
    cr_error e = {0};
    assert_int_equal(cr_st_open(&x, p, &e), CR_OK);
    assert_int_equal(cr_st_open(&y, q, &e), CR_OK);
    int frozen_checked = 0, shared_moved = 0;
    for (int i = 0; i < x.n; i++) {
        const cr_st_tensor *t = &x.t[i], *u = cr_st_find(&y, t->name);
        assert_non_null(u);
        assert_int_equal(t->nbytes, u->nbytes);
        int same = memcmp(t->data, u->data, t->nbytes) == 0;
        if (starts_with(t->name, "towers.3.") || starts_with(t->name, "gates.3.") ||
            starts_with(t->name, "heads.coin.")) {
            if (!same) fprintf(stderr, "%s changed after coin was frozen\n", t->name);
            assert_true(same);
            frozen_checked++;
        }
        if (starts_with(t->name, "experts.") && !same) shared_moved++;
    }
    cr_st_close(&x);
    cr_st_close(&y);
    assert_true(frozen_checked >= 4); /* tower layer w+b, gate w+b, head w+b */
    assert_true(shared_moved > 0);
}

/* ---- the saved model ------------------------------------------------------------------ */

/* Train once; loading model.safetensors gives a model that scores the test
 * rows exactly as the model at the end of fit did: its metrics equal those
 * fit wrote, to the last digit, and its own schema encodes the data like
 * the config's freshly fitted one. */
static void test_load_and_score(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], p[600];
    cfg_opts o = defaults();
    o.es = "sum_loss";
    o.epochs = 3;
    write_cfg(f->dir, "ls.yaml", &o, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_ls", f->dir);
    fit_ok(cfg, out, 0, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", out);

    cr_error e = {0};
    cr_ranker *m = NULL;
    cr_schema ms;
    cr_status s = cr_ranker_load(&m, &ms, p, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
    cr_rank_config c;
    load_cfg(cfg, &c);
    assert_int_equal(cr_schema_check_same(&ms, &c.schema, p, &e), CR_OK);

    /* the data through the model's schema (not refitted) and through a fresh fit */
    cr_dataset dm, dc;
    assert_int_equal(cr_dataset_load(&dm, &ms, &c.data, 0, &e), CR_OK);
    assert_int_equal(cr_dataset_load(&dc, &c.schema, &c.data, 1, &e), CR_OK);
    uint32_t *rows, *rows2;
    int64_t n, n2;
    assert_int_equal(cr_dataset_rows(&dm, CR_SPLIT_TEST, &rows, &n, &e), CR_OK);
    assert_int_equal(cr_dataset_rows(&dc, CR_SPLIT_TEST, &rows2, &n2, &e), CR_OK);
    assert_int_equal(n, 60);
    assert_int_equal(n2, n);
    size_t NH = (size_t)m->cfg.n_heads;
    float *pm = malloc(NH * (size_t)n * sizeof(float)), *pc = malloc(NH * (size_t)n * sizeof(float));
    float *pb = malloc(NH * (size_t)n * sizeof(float));
    assert_int_equal(cr_rank_predict_rows(m, &dm, rows, n, 64, pm, NULL, &e), CR_OK);
    assert_int_equal(cr_rank_predict_rows(m, &dc, rows2, n, 64, pc, NULL, &e), CR_OK);
    /* batch size changes nothing either */
    assert_int_equal(cr_rank_predict_rows(m, &dm, rows, n, 7, pb, NULL, &e), CR_OK);
    assert_memory_equal(pm, pc, NH * (size_t)n * sizeof(float));
    assert_memory_equal(pm, pb, NH * (size_t)n * sizeof(float));
    for (size_t i = 0; i < NH * (size_t)n; i++) assert_true(isfinite(pm[i]));

    /* the test metrics of the loaded model are fit's, exactly */
    cJSON *ev = cJSON_CreateObject();
    assert_int_equal(cr_rank_evaluate(m, &ms, &dm, CR_SPLIT_TEST, &c.eval, ev, NULL, &e), CR_OK);
    snprintf(p, sizeof p, "%s/metrics.json", out);
    cJSON *j = read_json(p);
    char *mine = cJSON_PrintUnformatted(ev);
    char *theirs = cJSON_PrintUnformatted(jget(j, "test"));
    assert_string_equal(mine, theirs);
    free(mine);
    free(theirs);
    cJSON_Delete(ev);
    cJSON_Delete(j);
    free(pm);
    free(pc);
    free(pb);
    free(rows);
    free(rows2);
    cr_dataset_free(&dm);
    cr_dataset_free(&dc);
    cr_rank_config_free(&c);
    cr_schema_free(&ms);
    cr_ranker_free(m);
}

static void expect_load_error(const char *path, cr_status want, const char *what,
                              const char *sub) {
    cr_ranker *m = (cr_ranker *)1;
    cr_schema s;
    cr_error e = {0};
    cr_status st = cr_ranker_load(&m, &s, path, &e);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (st != want || !strstr(e.msg, base) || (sub && !strstr(e.msg, sub))) {
        fprintf(stderr, "%s: status %d (want %d): %s\n", what, (int)st, (int)want, e.msg);
        if (st == CR_OK) {
            cr_ranker_free(m);
            cr_schema_free(&s);
        }
        fail();
    }
    assert_null(m);
}

static void test_load_errors(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], p[600], cut[600];
    cfg_opts o = defaults();
    o.epochs = 1;
    write_cfg(f->dir, "le.yaml", &o, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_le", f->dir);
    fit_ok(cfg, out, 0, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    size_t n;
    char *bytes = slurp(p, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (uint8_t)bytes[i];
    assert_true(8 + hl < n);

    /* truncated anywhere: inside the length, the header, the data, or one byte short */
    snprintf(cut, sizeof cut, "%s/cut.safetensors", f->dir);
    size_t at[] = {0, 3, 8, 9, 8 + (size_t)hl / 2, 8 + (size_t)hl - 1, 8 + (size_t)hl,
                   8 + (size_t)hl + 5, (8 + (size_t)hl + n) / 2, n - 4, n - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        spit(cut, bytes, at[i]);
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu bytes", at[i], n);
        expect_load_error(cut, CR_ERR_FORMAT, what, NULL);
    }
    cr_free(bytes);

    /* a valid safetensors file that is not a ranker: no format tag ... */
    char other[600];
    snprintf(other, sizeof other, "%s/plain.safetensors", f->dir);
    cr_st_writer w;
    cr_st_writer_init(&w);
    float v[4] = {1, 2, 3, 4};
    int64_t sh[1] = {4};
    cr_error e = {0};
    assert_int_equal(cr_st_add(&w, "towers.0.l0.weight", CR_DT_F32, 1, sh, v, &e), CR_OK);
    assert_int_equal(cr_st_save(&w, other, &e), CR_OK);
    cr_st_writer_free(&w);
    expect_load_error(other, CR_ERR_FORMAT, "no format tag", "format");
    /* ... or another crossrec file: the training state beside the model */
    snprintf(other, sizeof other, "%s/train_state.safetensors", out);
    expect_load_error(other, CR_ERR_FORMAT, "training state", "crossrec.train_state");
    /* a missing file names itself too */
    snprintf(other, sizeof other, "%s/absent.safetensors", f->dir);
    cr_ranker *m = NULL;
    cr_schema s;
    assert_int_not_equal(cr_ranker_load(&m, &s, other, &e), CR_OK);
    assert_non_null(strstr(e.msg, "absent.safetensors"));
}

static void test_schema_mismatch(void **state) {
    const fixture *f = *state;
    char cfg[512], cfg2[512], out[512], p[600];
    cfg_opts o = defaults();
    o.epochs = 1;
    write_cfg(f->dir, "sm.yaml", &o, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_sm", f->dir);
    fit_ok(cfg, out, 0, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_error e = {0};
    cr_ranker *m = NULL;
    cr_schema ms;
    assert_int_equal(cr_ranker_load(&m, &ms, p, &e), CR_OK);

    cr_rank_config c;
    /* a feature of another width */
    cfg_opts o2 = o;
    o2.category_dim = 5;
    write_cfg(f->dir, "sm2.yaml", &o2, cfg2, sizeof cfg2);
    load_cfg(cfg2, &c);
    assert_int_equal(cr_schema_check_same(&ms, &c.schema, p, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "category"));
    assert_non_null(strstr(e.msg, "model.safetensors"));
    cr_rank_config_free(&c);
    /* another task list */
    o2 = o;
    o2.coin = 1;
    write_cfg(f->dir, "sm3.yaml", &o2, cfg2, sizeof cfg2);
    load_cfg(cfg2, &c);
    assert_int_equal(cr_schema_check_same(&ms, &c.schema, p, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "task"));
    cr_rank_config_free(&c);
    /* the same config matches */
    load_cfg(cfg, &c);
    assert_int_equal(cr_schema_check_same(&ms, &c.schema, p, &e), CR_OK);
    cr_rank_config_free(&c);
    cr_schema_free(&ms);
    cr_ranker_free(m);
}

/* ---- a failed save damages nothing --------------------------------------------------- */

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *x; (x = readdir(d));) n += strstr(x->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_failed_save(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], p[600], dst[600];
    cfg_opts o = defaults();
    o.epochs = 1;
    write_cfg(f->dir, "fs.yaml", &o, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_fs", f->dir);
    fit_ok(cfg, out, 0, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_error e = {0};
    cr_ranker *m = NULL;
    cr_schema ms;
    assert_int_equal(cr_ranker_load(&m, &ms, p, &e), CR_OK);
    size_t n0, n1;
    char *before = slurp(p, &n0);

    /* The disk fills up half-way through the write (a file-size limit far
     * below the model's size): the save fails and the model already there
     * is untouched, with no temporary file left behind. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cr_status s = cr_ranker_save(m, &ms, p, NULL, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(s, CR_ERR_IO);
    assert_non_null(strstr(e.msg, "model.safetensors"));
    char *after = slurp(p, &n1);
    assert_true(n0 == n1 && memcmp(before, after, n0) == 0);
    cr_free(after);
    assert_int_equal(count_tmp_files(out), 0);

    /* A directory path that cannot be written (its parent is a file). */
    snprintf(dst, sizeof dst, "%s/config.yaml/model.safetensors", out);
    s = cr_ranker_save(m, &ms, dst, NULL, &e);
    assert_int_equal(s, CR_ERR_IO);
    assert_non_null(strstr(e.msg, "config.yaml/model.safetensors"));
    /* and a fit whose output directory cannot be made fails before training */
    snprintf(dst, sizeof dst, "%s/config.yaml/sub", out);
    s = fit(cfg, dst, 0, 0, NULL, &e);
    assert_int_equal(s, CR_ERR_IO);
    assert_non_null(strstr(e.msg, "config.yaml"));
    after = slurp(p, &n1);
    assert_true(n0 == n1 && memcmp(before, after, n0) == 0);
    cr_free(after);
    cr_free(before);
    cr_schema_free(&ms);
    cr_ranker_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fit_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_regression_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_inside_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_epoch_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_epoch_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_no_repeated_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_task_freeze, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_and_score, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_save, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
