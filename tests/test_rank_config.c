/*
 * test_rank_config.c - the model, train and eval sections of a ranking
 * config: every value given is the value parsed, absent sections give the
 * documented defaults, and every bad value is an error that names
 * file:line:col and the field (unknown keys, wrong types, out of range,
 * unknown enums, a popularity feature that is not numeric). Also the model
 * config's JSON form: a round trip is exact and corrupt JSON is refused.
 * Config files only: no data file is ever read.
 */
#include "util/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/rank/config.h"

/* The data/features/tasks part every config below starts with (10 lines,
 * so an appended section starts on line 11). The data file need not exist:
 * parsing never opens it. */
static const char BASE[] =
    "data:\n"
    "  path: d.csv\n"
    "features:\n"
    "  - {name: user, type: categorical, column: user_id, dim: 4}\n"
    "  - {name: price, type: numeric}\n"
    "  - {name: tags, type: multi, dim: 3}\n"
    "tasks:\n"
    "  - {name: click, type: binary}\n"
    "  - {name: like, type: binary, mask: click, weight: 0.5}\n"
    "  - {name: dwell, type: regression}\n";
enum { BASE_LINES = 10 };

typedef struct fixture {
    char dir[256];
    char path[512];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    cr_test_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->path, sizeof f->path, "%s/cfg.yaml", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    cr_test_rmdir(f->dir);
    free(f);
    return 0;
}

static void write_cfg(const fixture *f, const char *sections) {
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs(BASE, fp);
    fputs(sections, fp);
    assert_int_equal(fclose(fp), 0);
}

/* Load BASE + sections; it must fail with status st and a message holding
 * "cfg.yaml:<line>:<col>:" (line counted within `sections`, 0 = no
 * position expected) and each of the NULL-terminated substrings. */
static void expect_error(const fixture *f, const char *sections, cr_status st, int line, int col,
                         ...) {
    write_cfg(f, sections);
    cr_rank_config c;
    cr_error e = {0};
    cr_status s = cr_rank_config_load(&c, f->path, &e);
    if (s != st) {
        fprintf(stderr, "config:\n%s\nexpected status %d, got %d: %s\n", sections, (int)st,
                (int)s, e.msg);
        if (s == CR_OK) cr_rank_config_free(&c);
        fail();
    }
    char want[64];
    if (line > 0) {
        snprintf(want, sizeof want, "cfg.yaml:%d:%d:", BASE_LINES + line, col);
        if (!strstr(e.msg, want)) {
            fprintf(stderr, "config:\n%s\nmessage lacks '%s': %s\n", sections, want, e.msg);
            fail();
        }
    }
    va_list ap;
    va_start(ap, col);
    for (const char *sub; (sub = va_arg(ap, const char *));)
        if (!strstr(e.msg, sub)) {
            fprintf(stderr, "config:\n%s\nmessage lacks '%s': %s\n", sections, sub, e.msg);
            va_end(ap);
            fail();
        }
    va_end(ap);
}

static void load_ok(const fixture *f, const char *sections, cr_rank_config *c) {
    write_cfg(f, sections);
    cr_error e = {0};
    cr_status s = cr_rank_config_load(c, f->path, &e);
    if (s) fprintf(stderr, "config:\n%s\nunexpected error: %s\n", sections, e.msg);
    assert_int_equal(s, CR_OK);
}

/* ---- every value given is the value parsed ---------------------------------------- */

static const char FULL[] =
    "model:\n"
    "  type: mmoe\n"
    "  bottom_layers: [12]\n"
    "  experts: 3\n"
    "  expert_layers: [16, 8]\n"
    "  tower_layers: [4, 2]\n"
    "  loss_weighting: uncertainty\n"
    "  emb_init: 0.1\n"
    "train:\n"
    "  optimizer: adamw\n"
    "  lr: 0.003\n"
    "  beta1: 0.8\n"
    "  beta2: 0.99\n"
    "  eps: 1e-6\n"
    "  weight_decay: 0.01\n"
    "  sparse_optimizer: lazy_adam\n"
    "  sparse_lr: 0.2\n"
    "  adagrad_init: 0.1\n"
    "  batch_size: 64\n"
    "  epochs: 3\n"
    "  max_steps: 100\n"
    "  schedule: cosine\n"
    "  warmup_steps: 5\n"
    "  min_lr_frac: 0.1\n"
    "  clip_norm: 1.5\n"
    "  seed: 7\n"
    "  threads: 2\n"
    "  checkpoint_every: 4\n"
    "  precision: bf16\n"
    "  early_stopping: {mode: per_task, patience: 3, eval_every: 50}\n"
    "eval:\n"
    "  k: 5\n"
    "  baseline: false\n"
    "  popularity_feature: price\n";

static void test_full_config(void **state) {
    const fixture *f = *state;
    cr_rank_config c;
    load_ok(f, FULL, &c);
    const cr_model_cfg *m = &c.model;
    assert_int_equal(m->arch, CR_ARCH_MMOE);
    assert_int_equal(m->n_bottom, 1);
    assert_int_equal(m->bottom_layers[0], 12);
    assert_int_equal(m->n_experts, 3);
    assert_int_equal(m->n_expert_layers, 2);
    assert_int_equal(m->expert_layers[0], 16);
    assert_int_equal(m->expert_layers[1], 8);
    assert_int_equal(m->n_tower, 2);
    assert_int_equal(m->tower_layers[0], 4);
    assert_int_equal(m->tower_layers[1], 2);
    assert_int_equal(m->loss_weighting, CR_LOSS_UNCERTAINTY);
    assert_float_equal(m->emb_init, 0.1f, 1e-7);
    /* default heads: one served head per task, its own label and mask */
    assert_int_equal(m->n_heads, 3);
    const char *names[3] = {"click", "like", "dwell"};
    for (int k = 0; k < 3; k++) {
        assert_string_equal(m->heads[k].name, names[k]);
        assert_int_equal(m->heads[k].tower, k);
        assert_int_equal(m->heads[k].served, 1);
        assert_int_equal(m->heads[k].target_kind, CR_TARGET_LABEL);
        assert_int_equal(m->heads[k].target, k);
        assert_int_equal(m->heads[k].mask_task, k);
    }
    assert_int_equal(m->heads[0].kind, CR_HEAD_BINARY);
    assert_int_equal(m->heads[2].kind, CR_HEAD_REGRESSION);
    assert_float_equal(m->heads[1].weight, 0.5f, 0);
    assert_float_equal(m->heads[2].weight, 1.0f, 0);

    const cr_train_cfg *t = &c.train;
    assert_int_equal(t->opt.kind, CR_OPT_ADAMW);
    assert_float_equal(t->opt.lr, 0.003f, 1e-9);
    assert_float_equal(t->opt.beta1, 0.8f, 1e-7);
    assert_float_equal(t->opt.beta2, 0.99f, 1e-7);
    assert_float_equal(t->opt.eps, 1e-6f, 1e-12);
    assert_float_equal(t->opt.weight_decay, 0.01f, 1e-9);
    assert_int_equal(t->opt.sparse_kind, CR_SPARSE_LAZY_ADAM);
    assert_int_equal(t->precision, CR_GEMM_BF16);
    assert_float_equal(t->opt.sparse_lr, 0.2f, 1e-8);
    assert_float_equal(t->opt.adagrad_init, 0.1f, 1e-8);
    assert_int_equal(t->batch_size, 64);
    assert_int_equal(t->epochs, 3);
    assert_int_equal(t->max_steps, 100);
    assert_int_equal(t->opt.schedule, CR_SCHED_COSINE);
    assert_int_equal(t->opt.warmup, 5);
    assert_float_equal(t->opt.min_lr_frac, 0.1f, 1e-8);
    assert_float_equal(t->opt.clip, 1.5f, 0);
    assert_int_equal(t->seed, 7);
    assert_int_equal(t->threads, 2);
    assert_int_equal(t->checkpoint_every, 4);
    assert_int_equal(t->early_stopping, CR_ES_PER_TASK);
    assert_int_equal(t->patience, 3);
    assert_int_equal(t->eval_every, 50);

    assert_int_equal(c.eval.k, 5);
    assert_int_equal(c.eval.baseline, 0);
    assert_string_equal(c.eval.popularity_feature, "price");
    assert_int_equal(c.schema.n_features, 3);
    assert_int_equal(c.schema.n_tasks, 3);
    cr_rank_config_free(&c);
}

static void test_ple_and_shared_bottom(void **state) {
    const fixture *f = *state;
    cr_rank_config c;
    load_ok(f,
            "model: {type: ple, shared_experts: 3, task_experts: 2, expert_layers: [8]}\n"
            "train: {early_stopping: {mode: none}}\n",
            &c);
    assert_int_equal(c.model.arch, CR_ARCH_PLE);
    assert_int_equal(c.model.shared_experts, 3);
    assert_int_equal(c.model.task_experts, 2);
    assert_int_equal(c.model.n_expert_layers, 1);
    assert_int_equal(c.model.expert_layers[0], 8);
    assert_int_equal(c.train.early_stopping, CR_ES_NONE);
    assert_int_equal(c.train.patience, 2); /* the block's other keys keep their defaults */
    cr_rank_config_free(&c);
    load_ok(f, "train: {early_stopping: {mode: metric, patience: 4}}\n", &c);
    assert_int_equal(c.train.early_stopping, CR_ES_METRIC);
    assert_int_equal(c.train.patience, 4);
    cr_rank_config_free(&c);

    /* towers and bottoms of zero layers are allowed (heads read the input) */
    load_ok(f, "model: {type: shared_bottom, bottom_layers: [], tower_layers: []}\n", &c);
    assert_int_equal(c.model.arch, CR_ARCH_SHARED_BOTTOM);
    assert_int_equal(c.model.n_bottom, 0);
    assert_int_equal(c.model.n_tower, 0);
    cr_rank_config_free(&c);
}

/* ---- defaults --------------------------------------------------------------------- */

static void check_defaults(const cr_rank_config *c) {
    const cr_model_cfg *m = &c->model;
    assert_int_equal(m->arch, CR_ARCH_MMOE);
    assert_int_equal(m->n_experts, 4);
    assert_int_equal(m->n_expert_layers, 2);
    assert_int_equal(m->expert_layers[0], 64);
    assert_int_equal(m->expert_layers[1], 32);
    assert_int_equal(m->n_bottom, 2);
    assert_int_equal(m->bottom_layers[0], 128);
    assert_int_equal(m->bottom_layers[1], 64);
    assert_int_equal(m->shared_experts, 2);
    assert_int_equal(m->task_experts, 1);
    assert_int_equal(m->n_tower, 1);
    assert_int_equal(m->tower_layers[0], 32);
    assert_int_equal(m->loss_weighting, CR_LOSS_FIXED);
    assert_float_equal(m->emb_init, 0.05f, 0);
    assert_int_equal(m->n_heads, 3);

    const cr_train_cfg *t = &c->train;
    assert_int_equal(t->opt.kind, CR_OPT_ADAM);
    assert_float_equal(t->opt.lr, 1e-3f, 0);
    assert_float_equal(t->opt.beta1, 0.9f, 0);
    assert_float_equal(t->opt.beta2, 0.999f, 0);
    assert_int_equal(t->opt.sparse_kind, CR_SPARSE_ADAGRAD);
    assert_int_equal(t->precision, CR_GEMM_FP32);
    assert_float_equal(t->opt.sparse_lr, 0.05f, 0);
    assert_int_equal(t->batch_size, 512);
    assert_int_equal(t->epochs, 10);
    assert_int_equal(t->max_steps, 0);
    assert_int_equal(t->opt.schedule, CR_SCHED_CONSTANT);
    assert_float_equal(t->opt.clip, 0.0f, 0);
    assert_int_equal(t->seed, 1);
    assert_int_equal(t->threads, 0);
    assert_int_equal(t->early_stopping, CR_ES_SUM_LOSS);
    assert_int_equal(t->patience, 2);
    assert_int_equal(t->eval_every, 0);
    assert_int_equal(t->checkpoint_every, 1);

    assert_int_equal(c->eval.k, 10);
    assert_int_equal(c->eval.baseline, 1);
    assert_string_equal(c->eval.popularity_feature, "");
}

static void test_defaults(void **state) {
    const fixture *f = *state;
    cr_rank_config c;
    load_ok(f, "", &c);
    check_defaults(&c);
    cr_rank_config_free(&c);
    /* empty mappings are the same as absent sections */
    load_ok(f, "model: {}\ntrain: {}\neval: {}\n", &c);
    check_defaults(&c);
    cr_rank_config_free(&c);
}

/* docs/config.md: "A key written with no value (`dim:`, `dim: ~`, `dim:
 * null`) counts as absent" - which holds for whole sections too. */
static void test_empty_sections(void **state) {
    const fixture *f = *state;
    const char *cases[] = {"model:\n", "train: ~\n", "eval: null\n", "train:\n  early_stopping:\n"};
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_cfg(f, cases[i]);
        cr_rank_config c;
        cr_error e = {0};
        if (cr_rank_config_load(&c, f->path, &e)) {
            fprintf(stderr, "'%.*s' with no value is not treated as absent: %s\n",
                    (int)strcspn(cases[i], "\n"), cases[i], e.msg);
            failures++;
            continue;
        }
        check_defaults(&c);
        cr_rank_config_free(&c);
    }
    assert_int_equal(failures, 0);
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_unknown_keys(void **state) {
    const fixture *f = *state;
    expect_error(f, "model:\n  type: mmoe\n  expert: 3\n", CR_ERR_CONFIG, 3, 3, "model",
                 "unknown key 'expert'", "experts", NULL);
    expect_error(f, "train:\n  lr: 0.1\n  learning_rate: 0.1\n", CR_ERR_CONFIG, 3, 3, "train",
                 "unknown key 'learning_rate'", "lr", NULL);
    expect_error(f, "eval:\n  topk: 5\n", CR_ERR_CONFIG, 2, 3, "eval", "unknown key 'topk'",
                 "popularity_feature", NULL);
    expect_error(f, "train:\n  early_stopping:\n    mode: sum_loss\n    patients: 3\n",
                 CR_ERR_CONFIG, 4, 5, "train.early_stopping", "unknown key 'patients'",
                 "patience", NULL);
    expect_error(f, "train:\n  early_stopping: {mode: sum_loss, every: 3}\n", CR_ERR_CONFIG, 2,
                 36, "train.early_stopping", "unknown key 'every'", NULL);
    /* a misspelt section is an unknown top-level key */
    expect_error(f, "modle:\n  type: mmoe\n", CR_ERR_CONFIG, 1, 1, "unknown key 'modle'", NULL);
}

static void test_wrong_types(void **state) {
    const fixture *f = *state;
    expect_error(f, "train:\n  lr: fast\n", CR_ERR_CONFIG, 2, 7, "train.lr", "'fast'", NULL);
    expect_error(f, "train:\n  precision: fp16\n", CR_ERR_CONFIG, 2, 14, "train.precision",
                 "'fp16'", "bf16", NULL);
    expect_error(f, "train:\n  batch_size: 3.5\n", CR_ERR_CONFIG, 2, 15, "train.batch_size",
                 "integer", "'3.5'", NULL);
    expect_error(f, "model:\n  experts: many\n", CR_ERR_CONFIG, 2, 12, "model.experts",
                 "'many'", NULL);
    expect_error(f, "model:\n  expert_layers: 16\n", CR_ERR_CONFIG, 2, 18,
                 "model.expert_layers", "sequence", NULL);
    expect_error(f, "model:\n  tower_layers: [8, wide]\n", CR_ERR_CONFIG, 2, 21,
                 "model.tower_layers[1]", "'wide'", NULL);
    expect_error(f, "train:\n  early_stopping: sum_loss\n", CR_ERR_CONFIG, 2, 19,
                 "train.early_stopping", "mapping", NULL);
    expect_error(f, "eval:\n  baseline: maybe\n", CR_ERR_CONFIG, 2, 13, "eval.baseline",
                 "true or false", NULL);
    expect_error(f, "model: [mmoe]\n", CR_ERR_CONFIG, 1, 8, "model", "mapping", NULL);
    /* special floats are not numbers here */
    expect_error(f, "train:\n  lr: .nan\n", CR_ERR_CONFIG, 2, 7, "train.lr", NULL);
    expect_error(f, "train:\n  clip_norm: .inf\n", CR_ERR_CONFIG, 2, 14, "train.clip_norm",
                 NULL);
}

static void test_out_of_range(void **state) {
    const fixture *f = *state;
    expect_error(f, "train:\n  batch_size: 0\n", CR_ERR_CONFIG, 2, 15, "train.batch_size",
                 "'0'", NULL);
    expect_error(f, "train:\n  lr: -1\n", CR_ERR_CONFIG, 2, 7, "train.lr", "'-1'", NULL);
    expect_error(f, "train:\n  epochs: 0\n", CR_ERR_CONFIG, 2, 11, "train.epochs", NULL);
    expect_error(f, "train:\n  beta1: 1\n", CR_ERR_CONFIG, 2, 10, "train.beta1", NULL);
    expect_error(f, "train:\n  threads: -3\n", CR_ERR_CONFIG, 2, 12, "train.threads", NULL);
    expect_error(f, "train:\n  seed: -1\n", CR_ERR_CONFIG, 2, 9, "train.seed", NULL);
    expect_error(f, "train:\n  early_stopping: {patience: 0}\n", CR_ERR_CONFIG, 2, 30,
                 "train.early_stopping.patience", NULL);
    expect_error(f, "model:\n  experts: 0\n", CR_ERR_CONFIG, 2, 12, "model.experts", NULL);
    expect_error(f, "model:\n  expert_layers: [16, 0]\n", CR_ERR_CONFIG, 2, 23,
                 "model.expert_layers[1]", NULL);
    expect_error(f, "model:\n  emb_init: -0.1\n", CR_ERR_CONFIG, 2, 13, "model.emb_init", NULL);
    expect_error(f, "eval:\n  k: 0\n", CR_ERR_CONFIG, 2, 6, "eval.k", NULL);
    /* combinations no single range catches */
    expect_error(f, "model:\n  type: mmoe\n  expert_layers: []\n", CR_ERR_CONFIG, 0, 0,
                 "model.expert_layers", "mmoe", NULL);
    expect_error(f, "model:\n  type: ple\n  shared_experts: 0\n  task_experts: 0\n",
                 CR_ERR_CONFIG, 0, 0, "ple", "shared_experts", NULL);
}

static void test_unknown_enums(void **state) {
    const fixture *f = *state;
    expect_error(f, "model:\n  type: transformer\n", CR_ERR_CONFIG, 2, 9, "model.type",
                 "'transformer'", "shared_bottom, mmoe, ple", NULL);
    expect_error(f, "train:\n  optimizer: rmsprop\n", CR_ERR_CONFIG, 2, 14, "train.optimizer",
                 "'rmsprop'", "adam", NULL);
    expect_error(f, "train:\n  sparse_optimizer: adam\n", CR_ERR_CONFIG, 2, 21,
                 "train.sparse_optimizer", "adagrad, lazy_adam, sgd", NULL);
    expect_error(f, "train:\n  schedule: linear\n", CR_ERR_CONFIG, 2, 13, "train.schedule",
                 "constant, cosine", NULL);
    expect_error(f, "train:\n  early_stopping: {mode: never}\n", CR_ERR_CONFIG, 2, 26,
                 "train.early_stopping.mode", "sum_loss, per_task, none", NULL);
    expect_error(f, "model:\n  loss_weighting: learned\n", CR_ERR_CONFIG, 2, 19,
                 "model.loss_weighting", "fixed, uncertainty", NULL);
}

static void test_popularity_feature(void **state) {
    const fixture *f = *state;
    /* a categorical feature has no raw value to rank by */
    expect_error(f, "eval:\n  k: 5\n  popularity_feature: user\n", CR_ERR_CONFIG, 3, 23,
                 "eval.popularity_feature", "'user'", "numeric", NULL);
    expect_error(f, "eval:\n  popularity_feature: tags\n", CR_ERR_CONFIG, 2, 23,
                 "eval.popularity_feature", "'tags'", NULL);
    expect_error(f, "eval:\n  popularity_feature: views\n", CR_ERR_CONFIG, 2, 23,
                 "eval.popularity_feature", "'views'", NULL);
    cr_rank_config c;
    load_ok(f, "eval:\n  popularity_feature: price\n", &c);
    assert_string_equal(c.eval.popularity_feature, "price");
    cr_rank_config_free(&c);
}

/* ---- the model config as JSON ---------------------------------------------------- */

static void assert_model_cfg_equal(const cr_model_cfg *a, const cr_model_cfg *b) {
    assert_int_equal(a->arch, b->arch);
    assert_int_equal(a->n_bottom, b->n_bottom);
    assert_memory_equal(a->bottom_layers, b->bottom_layers, (size_t)a->n_bottom * sizeof(int));
    assert_int_equal(a->n_experts, b->n_experts);
    assert_int_equal(a->shared_experts, b->shared_experts);
    assert_int_equal(a->task_experts, b->task_experts);
    assert_int_equal(a->n_expert_layers, b->n_expert_layers);
    assert_memory_equal(a->expert_layers, b->expert_layers,
                        (size_t)a->n_expert_layers * sizeof(int));
    assert_int_equal(a->n_tower, b->n_tower);
    assert_memory_equal(a->tower_layers, b->tower_layers, (size_t)a->n_tower * sizeof(int));
    assert_int_equal(a->loss_weighting, b->loss_weighting);
    assert_true(a->emb_init == b->emb_init);
    assert_int_equal(a->n_heads, b->n_heads);
    for (int h = 0; h < a->n_heads; h++) {
        const cr_head *x = &a->heads[h], *y = &b->heads[h];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->tower, y->tower);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->served, y->served);
        assert_int_equal(x->target_kind, y->target_kind);
        assert_int_equal(x->target, y->target);
        assert_int_equal(x->mask_task, y->mask_task);
        assert_true(x->weight == y->weight);
    }
}

static void round_trip(const cr_model_cfg *m) {
    cr_error e = {0};
    char *j1 = NULL, *j2 = NULL;
    cr_model_cfg back;
    assert_int_equal(cr_model_cfg_to_json(m, &j1, &e), CR_OK);
    if (cr_model_cfg_from_json(&back, j1, &e)) {
        fprintf(stderr, "%s\n%s\n", j1, e.msg);
        fail();
    }
    assert_model_cfg_equal(m, &back);
    /* and the text is a fixed point */
    assert_int_equal(cr_model_cfg_to_json(&back, &j2, &e), CR_OK);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
}

static void test_json_round_trip(void **state) {
    const fixture *f = *state;
    cr_rank_config c;
    load_ok(f, FULL, &c);
    round_trip(&c.model);
    cr_rank_config_free(&c);
    load_ok(f, "", &c);
    round_trip(&c.model);
    cr_rank_config_free(&c);
    load_ok(f, "model: {type: ple, shared_experts: 1, task_experts: 2, tower_layers: []}\n", &c);
    /* an extra, never-served head reading a float column (distillation) */
    cr_head *h = &c.model.heads[c.model.n_heads++];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "click_soft");
    h->tower = 0;
    h->kind = CR_HEAD_REGRESSION;
    h->served = 0;
    h->target_kind = CR_TARGET_EXTRA;
    h->target = 1;
    h->mask_task = -1;
    h->weight = 0.25f;
    round_trip(&c.model);
    cr_rank_config_free(&c);
}

static void test_json_corrupt(void **state) {
    const fixture *f = *state;
    cr_rank_config c;
    load_ok(f, FULL, &c);
    cr_error e = {0};
    char *good = NULL;
    c.model.emb_init = 0.5f; /* exact in binary: the text holds "0.5" */
    assert_int_equal(cr_model_cfg_to_json(&c.model, &good, &e), CR_OK);
    cr_rank_config_free(&c);
    cr_model_cfg m;
    /* every proper prefix of the text is refused (cut at every byte) */
    size_t n = strlen(good);
    char *cut = malloc(n + 1);
    assert_non_null(cut);
    for (size_t i = 0; i < n; i++) {
        memcpy(cut, good, i);
        cut[i] = 0;
        cr_status s = cr_model_cfg_from_json(&m, cut, &e);
        if (s != CR_ERR_FORMAT) {
            fprintf(stderr, "prefix of %zu bytes accepted (status %d): %s\n", i, (int)s, cut);
            fail();
        }
    }
    free(cut);

    /* well-formed JSON that says the wrong thing, with the field it names */
    struct { const char *from, *to, *field; } bad[] = {
        {"\"arch\":\"mmoe\"", "\"arch\":\"transformer\"", "arch"},
        {"\"arch\":\"mmoe\"", "\"arch\":3", "arch"},
        {"\"experts\":3", "\"experts\":-1", "experts"},
        {"\"experts\":3", "\"experts\":2.5", "experts"},
        {"\"expert_layers\":[16,8]", "\"expert_layers\":[16,0]", "expert_layers"},
        {"\"expert_layers\":[16,8]", "\"expert_layers\":[16,8.5]", "expert_layers"},
        {"\"expert_layers\":[16,8]", "\"expert_layers\":16", "expert_layers"},
        {"\"tower_layers\":[4,2]", "\"tower_layers\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]",
         "tower_layers"},
        {"\"loss_weighting\":\"uncertainty\"", "\"loss_weighting\":\"learned\"", "loss_weighting"},
        {"\"emb_init\":0.5", "\"emb_init\":\"small\"", "emb_init"},
        {"\"tower\":1", "\"tower\":99", "heads"},
        {"\"kind\":\"binary\"", "\"kind\":\"ordinal\"", "heads"},
        {"\"served\":true", "\"served\":1", "heads"},
        {"\"mask_task\":2", "\"mask_task\":-2", "heads"},
        {"\"name\":\"dwell\"", "\"name\":7", "heads"},
    };
    int failures = 0; /* report every case, then fail */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *at = strstr(good, bad[i].from);
        if (!at) {
            fprintf(stderr, "'%s' not in %s\n", bad[i].from, good);
            fail();
        }
        size_t pre = (size_t)(at - good), nf = strlen(bad[i].from), nt = strlen(bad[i].to);
        char *txt = malloc(n - nf + nt + 1);
        assert_non_null(txt);
        memcpy(txt, good, pre);
        memcpy(txt + pre, bad[i].to, nt);
        strcpy(txt + pre + nt, at + nf);
        cr_status s = cr_model_cfg_from_json(&m, txt, &e);
        if (s != CR_ERR_FORMAT || !strstr(e.msg, bad[i].field)) {
            fprintf(stderr, "%s accepted or misreported (status %d): %s\n", bad[i].to, (int)s,
                    s ? e.msg : "");
            failures++;
        }
        free(txt);
    }
    /* not an object at all, or one missing its fields */
    const char *junk[] = {"", "null", "[]", "\"mmoe\"", "{}", "{\"arch\":\"mmoe\"}"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        if (cr_model_cfg_from_json(&m, junk[i], &e) != CR_ERR_FORMAT) {
            fprintf(stderr, "'%s' accepted\n", junk[i]);
            failures++;
        }
    free(good);
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ple_and_shared_bottom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_enums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_popularity_feature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
