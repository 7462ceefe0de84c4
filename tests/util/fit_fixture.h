/*
 * fit_fixture.h - the small synthetic log, configs and file helpers shared by
 * test_fit.c and test_resume.c. The log: 150 requests of 4 impressions (600
 * rows; 480 train, 60 valid, 60 test by a split column). click depends on
 * item quality and on whether the item's category is the user's favourite;
 * like (masked by click) on quality; dwell (regression, always defined) on
 * quality and device; coin is a fair coin, a task that can only be overfit.
 * Test-only: static functions, some unused by one of the two files.
 */
#ifndef CR_FIT_FIXTURE_H
#define CR_FIT_FIXTURE_H
#include "testutil.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../../src/rank/fit.h"

enum { N_REQ = 150, PER_REQ = 4, N_USERS = 30, N_ITEMS = 40, N_CATS = 6 };
enum { STEPS_PER_EPOCH = 15 }; /* 480 training rows, batch 32 */

typedef struct fixture {
    char dir[256];
} fixture;

/* ---- the synthetic log -------------------------------------------------------- */

static inline double uni(cr_rng *r) { return cr_rng_uniform(r); }
static inline double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* dwell_base shifts the regression label: 2 keeps it positive, 0 makes
 * about a quarter of it negative. */
static inline void write_data(const char *dir, const char *name, double dwell_base) {
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
    const char *item_dropout; /* id_dropout of the item feature, or NULL */
    int expert;          /* expert width, 16 unless changed */
    int batch;           /* 32 unless changed */
    const char *precision; /* train.precision */
    const char *optimizer; /* train.optimizer */
} cfg_opts;

static inline cfg_opts defaults(void) {
    cfg_opts o = {"none", 2, 0, 4, 0, 0, 3, 8, "0.01", "data.csv", NULL, 16, 32, "fp32", "adam"};
    return o;
}

static inline void write_cfg(const char *dir, const char *name, const cfg_opts *o, char *path,
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
            "  - {name: item, type: categorical, column: item_id, dim: 4, id_dropout: %s}\n"
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
            "  expert_layers: [%d]\n"
            "  tower_layers: [%d]\n"
            "train:\n"
            "  optimizer: %s\n"
            "  lr: %s\n"
            "  sparse_lr: 0.1\n"
            "  batch_size: %d\n"
            "  precision: %s\n"
            "  epochs: %d\n"
            "  max_steps: %d\n"
            "  seed: 3\n"
            "  threads: 2\n"
            "  checkpoint_every: 1\n"
            "  early_stopping: {mode: %s, patience: %d, eval_every: %d}\n"
            "eval:\n"
            "  k: 4\n"
            "  popularity_feature: price\n",
            o->data, o->item_dropout ? o->item_dropout : "0", o->category_dim,
            o->coin ? "  - {name: coin, type: binary}\n" : "", o->expert, o->tower, o->optimizer,
            o->lr,
            o->batch, o->precision, o->epochs, o->max_steps, o->es, o->patience, o->eval_every);
    assert_int_equal(fclose(f), 0);
}

static inline void load_cfg(const char *path, cr_rank_config *c) {
    cr_error e = {0};
    cr_status s = cr_rank_config_load(c, path, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
}

/* One run of cr_rank_fit with a fresh config. Returns the status; the log
 * (if log != NULL) is returned as a string to free(). */
static inline cr_status fit(const char *cfg_path, const char *out, int resume, int64_t stop_after,
                     char **log, cr_error *e) {
    cr_rank_config c;
    load_cfg(cfg_path, &c);
    char *buf = NULL;
    size_t len = 0;
    FILE *lf = log ? open_memstream(&buf, &len) : NULL;
    cr_fit_opts o = {.out_dir = out, .resume = resume, .log = lf, .stop_after_steps = stop_after};
    /* what cr_train does: the config's thread count, set by the caller */
    int saved = cr_get_threads();
    cr_set_threads(c.train.threads);
    cr_status s = cr_rank_fit(&c, &o, NULL, e);
    cr_set_threads(saved);
    if (lf) {
        fclose(lf);
        *log = buf;
    }
    cr_rank_config_free(&c);
    return s;
}

static inline void fit_ok(const char *cfg_path, const char *out, int resume, char **log) {
    cr_error e = {0};
    cr_status s = fit(cfg_path, out, resume, 0, log, &e);
    if (s) fprintf(stderr, "fit %s -> %s: %s\n", cfg_path, out, e.msg);
    assert_int_equal(s, CR_OK);
}

/* Train the default config for one epoch into dir/out_<tag> (config
 * dir/<tag>.yaml); cfg and model receive the config's and the model's paths. */
static inline void fit_one_epoch(const char *dir, const char *tag, char *cfg, size_t cfg_cap,
                                 char *model, size_t model_cap) {
    cfg_opts o = defaults();
    o.epochs = 1;
    char name[64], out[512];
    snprintf(name, sizeof name, "%s.yaml", tag);
    write_cfg(dir, name, &o, cfg, cfg_cap);
    snprintf(out, sizeof out, "%s/out_%s", dir, tag);
    fit_ok(cfg, out, 0, NULL);
    snprintf(model, model_cap, "%s/model.safetensors", out);
}

/* ---- files ---------------------------------------------------------------------- */

static inline char *slurp(const char *path, size_t *n) {
    char *txt = NULL;
    cr_error e = {0};
    if (cr_read_file(path, &txt, n, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    return txt;
}

static inline void spit(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static inline int same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    if (!same) fprintf(stderr, "%s (%zu bytes) and %s (%zu bytes) differ\n", a, na, b, nb);
    cr_free(x);
    cr_free(y);
    return same;
}

static inline cJSON *read_json(const char *path) {
    size_t n;
    char *txt = slurp(path, &n);
    cJSON *j = cJSON_Parse(txt);
    if (!j) fprintf(stderr, "%s is not JSON\n", path);
    cr_free(txt);
    assert_non_null(j);
    return j;
}

static inline const cJSON *jget(const cJSON *o, const char *path) {
    /* "a.b.c" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cur;
}

static inline double jnum(const cJSON *o, const char *path) {
    const cJSON *v = jget(o, path);
    if (!cJSON_IsNumber(v)) {
        fprintf(stderr, "metrics: '%s' is not a number\n", path);
        fail();
    }
    return v->valuedouble;
}

/* The step numbers of the "eval step N:" lines of a log, in order. */
static inline int eval_steps(const char *log, long *steps, int cap) {
    int n = 0;
    for (const char *p = log; (p = strstr(p, "eval step ")) && n < cap; p++)
        steps[n++] = strtol(p + 10, NULL, 10);
    return n;
}

/* ---- end to end -------------------------------------------------------------------- */

__attribute__((unused)) static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    cr_test_tmpdir(f->dir, sizeof f->dir);
    write_data(f->dir, "data.csv", 2.0);
    *state = f;
    return 0;
}

__attribute__((unused)) static int teardown(void **state) {
    fixture *f = *state;
    cr_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Weighted validation loss of a model on a freshly loaded copy of the data,
 * encoded with the config's schema as cr_rank_fit fitted it. */
static inline double valid_sum_loss(const cr_ranker *m, cr_schema *s, const cr_data_cfg *d) {
    cr_dataset ds;
    cr_error e = {0};
    assert_int_equal(cr_dataset_load(&ds, s, d, 0, &e), CR_OK);
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

#endif
