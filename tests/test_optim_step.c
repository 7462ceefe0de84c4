/*
 * test_optim_step.c - the training loops' one optimizer (optim_step.c):
 * its keys (each loop's spelling, the ranges, the errors), and its step
 * against the primitives it is made of: clip -> cr_lr_at -> cr_adam_step
 * per slab -> cr_sparse_opt_step per table at the scheduled share of
 * sparse_lr, bit for bit; two slabs step exactly as one slab holding both;
 * a non-finite gradient stops the step and changes nothing.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/train/optim.h"

/* ---- keys ------------------------------------------------------------------------------- */

static cr_status parse(const char *yaml, const char *const *keys, cr_optim_cfg *c, cr_error *e) {
    cr_yaml_doc *doc;
    assert_int_equal(cr_yaml_load_string(&doc, yaml, "t.yaml", e), CR_OK);
    cr_status s = cr_optim_cfg_parse(c, cr_yaml_get(cr_yaml_root(doc), "train"), "train", keys, e);
    cr_yaml_free(doc);
    return s;
}

static void test_keys(void **state) {
    (void)state;
    static const char *const rank[] = {"optimizer", "sparse_optimizer", "schedule", "lr",
                                       "beta1", "beta2", "eps", "weight_decay", "sparse_lr",
                                       "adagrad_init", "min_lr_frac", "clip_norm",
                                       "warmup_steps", NULL};
    static const char *const lm[] = {"lr", "warmup", "min_lr_frac", "weight_decay", "beta1",
                                     "beta2", "eps", "clip", NULL};
    cr_optim_cfg c;
    cr_error e = {0};
    cr_optim_cfg_default(&c);
    assert_int_equal(parse("train: {optimizer: adamw, sparse_optimizer: lazy_adam, schedule: "
                           "cosine, lr: 0.01, warmup_steps: 7, clip_norm: 2.5, adagrad_init: "
                           "0.25}\n", rank, &c, &e), CR_OK);
    assert_int_equal(c.kind, CR_OPT_ADAMW);
    assert_int_equal(c.sparse_kind, CR_SPARSE_LAZY_ADAM);
    assert_int_equal(c.schedule, CR_SCHED_COSINE);
    assert_true(c.lr == 0.01f && c.warmup == 7 && c.clip == 2.5f && c.adagrad_init == 0.25f);
    assert_true(c.beta2 == 0.999f && c.sparse_lr == 0.05f); /* untouched defaults */
    /* the LM's spelling of the same two keys, over its own defaults */
    cr_optim_cfg_adamw_cosine(&c, 0.1f, 100);
    assert_int_equal(parse("train: {warmup: 3, clip: 0, beta2: 0.95}\n", lm, &c, &e), CR_OK);
    assert_true(c.warmup == 3 && c.clip == 0.0f && c.beta2 == 0.95f);
    assert_true(c.kind == CR_OPT_ADAMW && c.weight_decay == 0.1f && c.min_lr_frac == 0.1f);
    /* a key the section does not list is not read (its check_keys refuses it) */
    assert_int_equal(parse("train: {optimizer: sgd}\n", lm, &c, &e), CR_OK);
    assert_int_equal(c.kind, CR_OPT_ADAMW);
    /* one range everywhere, errors naming section and key */
    assert_int_equal(parse("train: {lr: -1}\n", lm, &c, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "train.lr"));
    assert_int_equal(parse("train: {beta1: 1}\n", rank, &c, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "train.beta1"));
    assert_int_equal(parse("train: {warmup: -2}\n", lm, &c, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "train.warmup"));
    assert_int_equal(parse("train: {optimizer: rmsprop}\n", rank, &c, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "adam, adamw, sgd"));
    /* a caller asking for a key the optimizer does not have is a bug */
    static const char *const bad[] = {"lr", "momentum", NULL};
    assert_int_equal(parse("train: {lr: 0.1}\n", bad, &c, &e), CR_ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "momentum"));
}

/* ---- the step --------------------------------------------------------------------------- */

/* Slab A holds tensors a0 (5x7) and a1 (7, no decay); slab B holds b0 (3x11)
 * and b1 (frozen, 4); slab C holds all four in that order. */
static void tables(cr_ptable *a, cr_ptable *b, cr_ptable *c) {
    cr_error e = {0};
    const int64_t s0[2] = {5, 7}, s1[1] = {7}, s2[2] = {3, 11}, s3[1] = {4};
    cr_ptable_init(a), cr_ptable_init(b), cr_ptable_init(c);
    cr_ptable_add(a, "a0", 2, s0, 0), cr_ptable_add(a, "a1", 1, s1, CR_PARAM_NO_DECAY);
    cr_ptable_add(b, "b0", 2, s2, 0), cr_ptable_add(b, "b1", 1, s3, CR_PARAM_FROZEN);
    cr_ptable_add(c, "a0", 2, s0, 0), cr_ptable_add(c, "a1", 1, s1, CR_PARAM_NO_DECAY);
    cr_ptable_add(c, "b0", 2, s2, 0), cr_ptable_add(c, "b1", 1, s3, CR_PARAM_FROZEN);
    assert_int_equal(cr_ptable_alloc(a, &e), CR_OK);
    assert_int_equal(cr_ptable_alloc(b, &e), CR_OK);
    assert_int_equal(cr_ptable_alloc(c, &e), CR_OK);
}

/* tensor k of C, and the same tensor in A or B */
static float *in_c(cr_ptable *c, float *slab, int k) { return cr_ptable_ptr(c, slab, k); }
static float *in_ab(cr_ptable *a, cr_ptable *b, float *sa, float *sb, int k) {
    return k < 2 ? cr_ptable_ptr(a, sa, k) : cr_ptable_ptr(b, sb, k - 2);
}

static void test_step_against_primitives(void **state) {
    (void)state;
    enum { STEPS = 8, V = 9, DT = 3, NR = 4 };
    cr_ptable a, b, c;
    tables(&a, &b, &c);
    float *ga = calloc(a.total, 4), *gb = calloc(b.total, 4), *gc = calloc(c.total, 4);
    float *ra = calloc(a.total, 4), *rb = calloc(b.total, 4), *rga = calloc(a.total, 4),
          *rgb = calloc(b.total, 4);
    float tab[V * DT], rtab[V * DT];
    cr_test_fill(tab, V * DT, 0.5f, 3);
    memcpy(rtab, tab, sizeof tab);
    for (int k = 0; k < 4; k++) {
        size_t n = c.t[k].numel;
        cr_test_fill(in_ab(&a, &b, a.data, b.data, k), n, 1.0f, 10 + (uint64_t)k);
        memcpy(in_c(&c, c.data, k), in_ab(&a, &b, a.data, b.data, k), n * 4);
    }
    memcpy(ra, a.data, a.total * 4), memcpy(rb, b.data, b.total * 4);
    cr_optim_cfg cfg;
    cr_optim_cfg_adamw_cosine(&cfg, 0.05f, 2);
    cfg.clip = 0.9f; /* below the gradients' norm: every step clips */
    cfg.sparse_kind = CR_SPARSE_ADAGRAD;
    cfg.sparse_lr = 0.2f;
    cr_error e = {0};
    cr_optim two, one;
    cr_optim_init(&two, &cfg, STEPS, 0);
    cr_optim_init(&one, &cfg, STEPS, 0);
    assert_int_equal(cr_optim_add_dense(&two, &a, a.data, ga, &e), CR_OK);
    assert_int_equal(cr_optim_add_dense(&two, &b, b.data, gb, &e), CR_OK);
    assert_int_equal(cr_optim_add_table(&two, tab, V, DT, &e), CR_OK);
    assert_int_equal(cr_optim_add_dense(&one, &c, c.data, gc, &e), CR_OK);
    /* the reference: the primitives, composed by hand */
    cr_adam ma, mb;
    cr_sparse_opt st;
    assert_int_equal(cr_adam_init(&ma, &a, CR_OPT_ADAMW, cfg.lr, 0.9f, 0.999f, 1e-8f, 0.05f, &e),
                     CR_OK);
    assert_int_equal(cr_adam_init(&mb, &b, CR_OPT_ADAMW, cfg.lr, 0.9f, 0.999f, 1e-8f, 0.05f, &e),
                     CR_OK);
    assert_int_equal(cr_sparse_opt_init(&st, CR_SPARSE_ADAGRAD, V, DT, cfg.sparse_lr, 0.9f, 0.999f,
                                        1e-10f, 0.0f, &e), CR_OK);
    cr_sparse_grad sg;
    assert_int_equal(cr_sparse_grad_init(&sg, NR, DT, &e), CR_OK);
    const cr_sparse_grad *sgp[1] = {&sg};
    for (int s = 0; s < STEPS; s++) {
        for (int k = 0; k < 4; k++) {
            size_t n = c.t[k].numel;
            cr_test_fill(in_ab(&a, &b, ga, gb, k), n, 1.0f, 100 + 7 * (uint64_t)s + (uint64_t)k);
            memcpy(in_c(&c, gc, k), in_ab(&a, &b, ga, gb, k), n * 4);
        }
        memcpy(rga, ga, a.total * 4), memcpy(rgb, gb, b.total * 4);
        sg.n = 2 + s % 2;
        for (int r = 0; r < sg.n; r++) sg.rows[r] = r * 3 + s % 2;
        cr_test_fill(sg.vals, (size_t)sg.n * DT, 1.0f, 500 + (uint64_t)s);
        /* reference: one norm over every owned tensor of both slabs, the
         * rate of the schedule, then each primitive */
        double ss = 0;
        for (int k = 0; k < 3; k++) { /* b1 is frozen */
            const float *g = in_ab(&a, &b, rga, rgb, k);
            double t = 0;
            for (size_t i = 0; i < c.t[k].numel; i++) t += (double)g[i] * g[i];
            ss += t;
        }
        double norm = sqrt(ss);
        assert_true(norm > cfg.clip);
        float coef = (float)((double)cfg.clip / (norm + 1e-6));
        for (int k = 0; k < 3; k++) {
            float *g = in_ab(&a, &b, rga, rgb, k);
            for (size_t i = 0; i < c.t[k].numel; i++) g[i] *= coef;
        }
        float lr = cr_lr_at(CR_SCHED_COSINE, cfg.lr, s, 2, STEPS, 0.1f);
        cr_adam_step(&ma, &a, ra, rga, lr);
        cr_adam_step(&mb, &b, rb, rgb, lr);
        cr_sparse_opt_step(&st, rtab, &sg, cfg.sparse_lr * (lr / cfg.lr));

        assert_int_equal(cr_optim_step(&two, s, sgp, &e), CR_OK);
        assert_int_equal(cr_optim_step(&one, s, NULL, &e), CR_OK);
        assert_true(two.lr == lr && one.lr == lr);
        assert_true(fabs(two.norm - norm) <= 1e-6 * norm && two.norm == one.norm);
        assert_memory_equal(a.data, ra, a.total * 4);
        assert_memory_equal(b.data, rb, b.total * 4);
        assert_memory_equal(tab, rtab, sizeof tab);
        for (int k = 0; k < 4; k++) /* two slabs step as one holding both */
            assert_memory_equal(in_c(&c, c.data, k), in_ab(&a, &b, a.data, b.data, k),
                                c.t[k].numel * 4);
    }
    assert_true(two.dense[0].a.t == STEPS && two.sparse[0].t == STEPS);
    cr_optim_free(&two), cr_optim_free(&one);
    cr_adam_free(&ma), cr_adam_free(&mb), cr_sparse_opt_free(&st), cr_sparse_grad_free(&sg);
    free(ga), free(gb), free(gc), free(ra), free(rb), free(rga), free(rgb);
    cr_ptable_free(&a), cr_ptable_free(&b), cr_ptable_free(&c);
}

/* A non-finite gradient: with clipping or the guard, the step is refused
 * and nothing moves; with neither, the norm is not even measured. */
static void test_non_finite(void **state) {
    (void)state;
    cr_ptable a, b, c;
    tables(&a, &b, &c);
    float *g = calloc(a.total, 4), *p0 = malloc(a.total * 4);
    cr_test_fill(a.data, a.total, 1.0f, 1);
    cr_test_fill(g, a.total, 1.0f, 2);
    g[3] = NAN;
    memcpy(p0, a.data, a.total * 4);
    cr_optim_cfg cfg;
    cr_optim_cfg_default(&cfg);
    cr_error e = {0};
    for (int guard = 0; guard < 2; guard++) {
        cfg.clip = guard ? 0.0f : 1.0f;
        cr_optim o;
        cr_optim_init(&o, &cfg, 10, guard);
        assert_int_equal(cr_optim_add_dense(&o, &a, a.data, g, &e), CR_OK);
        assert_int_equal(cr_optim_step(&o, 4, NULL, &e), CR_ERR_LIMIT);
        assert_non_null(strstr(e.msg, "step 4"));
        assert_true(isnan(o.norm));
        assert_memory_equal(a.data, p0, a.total * 4);
        assert_int_equal(o.dense[0].a.t, 0);
        cr_optim_free(&o);
    }
    cfg.clip = 0.0f;
    cr_optim o;
    cr_optim_init(&o, &cfg, 10, 0);
    assert_int_equal(cr_optim_add_dense(&o, &a, a.data, g, &e), CR_OK);
    assert_int_equal(cr_optim_step(&o, 0, NULL, &e), CR_OK);
    assert_true(isnan(o.norm) && o.dense[0].a.t == 1);
    cr_optim_free(&o);
    free(g), free(p0);
    cr_ptable_free(&a), cr_ptable_free(&b), cr_ptable_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_step_against_primitives),
        cmocka_unit_test(test_non_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
