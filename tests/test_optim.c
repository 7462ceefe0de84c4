/*
 * test_optim.c - the optimizers against their PyTorch twin
 * (tests/fixtures/optim_twin.safetensors, written by tools/twin_optim.py):
 * Adam, AdamW and SGD over a parameter table, sparse Adagrad, lazy Adam and
 * SGD over an embedding table, and clip_grad_norm_, compared after every
 * one of 5 steps. Also the LR schedule, the skipping of frozen and sparse
 * tensors, the parallel path over a large slab, and argument checking.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/train/optim.h"

#define FIXTURE "tests/fixtures/optim_twin.safetensors"
#define STEPS 5
#define V 6
#define D 4
#define MAXR 3
/* On FMA hardware the C code reproduces torch bit for bit (see CR_FMA in
 * optim.c); the tolerance leaves room for builds without FMA, which differ
 * by an ulp or two. */
#define ATOL 1e-7
#define RTOL 1e-6

typedef struct twin {
    cr_st_file f;
    float hp_beta1, hp_beta2, hp_eps, hp_wd, hp_ada_eps, hp_ada_init, hp_sb1, hp_sb2, hp_seps,
        hp_clip;
} twin;

static const float *tensor(twin *t, const char *name, int ndim, const int64_t *shape) {
    const cr_st_tensor *x = NULL;
    cr_error e;
    if (cr_st_expect(&t->f, name, CR_DT_F32, ndim, shape, &x, &e) != CR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    /* The twin pads the header to 8 bytes and stores only 4-byte types, so
     * every tensor is 4-byte aligned in the map and can be read in place. */
    assert_true(((uintptr_t)x->data & 3) == 0);
    return (const float *)x->data;
}

static const int32_t *tensor_i32(twin *t, const char *name, int ndim, const int64_t *shape) {
    const cr_st_tensor *x = NULL;
    cr_error e;
    if (cr_st_expect(&t->f, name, CR_DT_I32, ndim, shape, &x, &e) != CR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    assert_true(((uintptr_t)x->data & 3) == 0);
    return (const int32_t *)x->data;
}

static float meta(twin *t, const char *key) {
    const char *s = cr_st_meta(&t->f, key);
    if (!s) {
        fprintf(stderr, "%s: metadata '%s' missing (regenerate with tools/twin_optim.py)\n",
                FIXTURE, key);
        fail();
    }
    return strtof(s, NULL);
}

static int twin_open(void **state) {
    twin *t = calloc(1, sizeof *t);
    if (!t) return -1;
    cr_error e;
    if (cr_st_open(&t->f, FIXTURE, &e) != CR_OK) {
        fprintf(stderr, "%s (run the tests from the repository root)\n", e.msg);
        free(t);
        return -1;
    }
    t->hp_beta1 = meta(t, "beta1");
    t->hp_beta2 = meta(t, "beta2");
    t->hp_eps = meta(t, "eps");
    t->hp_wd = meta(t, "weight_decay");
    t->hp_ada_eps = meta(t, "adagrad_eps");
    t->hp_ada_init = meta(t, "adagrad_init");
    t->hp_sb1 = meta(t, "sparse_beta1");
    t->hp_sb2 = meta(t, "sparse_beta2");
    t->hp_seps = meta(t, "sparse_eps");
    t->hp_clip = meta(t, "clip_max_norm");
    *state = t;
    return 0;
}

static int twin_close(void **state) {
    twin *t = *state;
    if (t) cr_st_close(&t->f);
    free(t);
    return 0;
}

/* A table like a model's: a decayed weight, a frozen tensor, a sparse
 * embedding table (owned by the sparse optimizer) and a no-decay bias. */
enum { T_W, T_FROZEN, T_EMB, T_B };
static void make_table(cr_ptable *pt) {
    cr_ptable_init(pt);
    const int64_t sw[2] = {3, 5}, sf[1] = {4}, se[2] = {V, D}, sb[1] = {7};
    assert_int_equal(cr_ptable_add(pt, "w", 2, sw, 0), T_W);
    assert_int_equal(cr_ptable_add(pt, "frozen", 1, sf, CR_PARAM_FROZEN), T_FROZEN);
    assert_int_equal(cr_ptable_add(pt, "emb", 2, se, CR_PARAM_SPARSE), T_EMB);
    assert_int_equal(cr_ptable_add(pt, "b", 1, sb, CR_PARAM_NO_DECAY), T_B);
    assert_int_equal(cr_ptable_alloc(pt, NULL), CR_OK);
}

static void dense_twin(twin *t, cr_dense_opt_kind kind, const char *name) {
    const int64_t s_w[2] = {3, 5}, s_b[1] = {7}, s_gw[3] = {STEPS, 3, 5}, s_gb[2] = {STEPS, 7},
                  s_lr[1] = {STEPS};
    const float *w0 = tensor(t, "init.w", 2, s_w), *b0 = tensor(t, "init.b", 1, s_b);
    const float *gw = tensor(t, "grad.w", 3, s_gw), *gb = tensor(t, "grad.b", 2, s_gb);
    const float *lr = tensor(t, "lr", 1, s_lr);
    char nw[64], nb[64];
    snprintf(nw, sizeof nw, "%s.w", name);
    snprintf(nb, sizeof nb, "%s.b", name);
    const float *ew = tensor(t, nw, 3, s_gw), *eb = tensor(t, nb, 2, s_gb);

    cr_ptable pt;
    make_table(&pt);
    float *grads = cr_alloc(pt.total * sizeof(float));
    float *before = cr_alloc(pt.total * sizeof(float));
    assert_non_null(grads);
    assert_non_null(before);
    float *p = pt.data;
    memcpy(p + pt.t[T_W].offset, w0, 15 * sizeof(float));
    memcpy(p + pt.t[T_B].offset, b0, 7 * sizeof(float));
    cr_test_fill(p + pt.t[T_FROZEN].offset, 4, 1.0f, 7);
    cr_test_fill(p + pt.t[T_EMB].offset, V * D, 1.0f, 8);

    cr_adam o;
    cr_error e;
    assert_int_equal(cr_adam_init(&o, &pt, kind, lr[0], t->hp_beta1, t->hp_beta2, t->hp_eps,
                                  t->hp_wd, &e),
                     CR_OK);
    assert_true(kind == CR_OPT_SGD ? o.m == NULL : o.m != NULL);
    for (int s = 0; s < STEPS; s++) {
        /* Frozen and sparse tensors get gradients too: they must be ignored. */
        cr_test_fill(grads, pt.total, 3.0f, 100 + (uint64_t)s);
        memcpy(grads + pt.t[T_W].offset, gw + s * 15, 15 * sizeof(float));
        memcpy(grads + pt.t[T_B].offset, gb + s * 7, 7 * sizeof(float));
        memcpy(before, p, pt.total * sizeof(float));
        cr_adam_step(&o, &pt, p, grads, lr[s]);
        char what[96];
        snprintf(what, sizeof what, "%s step %d: w", name, s + 1);
        assert_true(cr_test_close(what, p + pt.t[T_W].offset, ew + s * 15, 15, ATOL, RTOL));
        snprintf(what, sizeof what, "%s step %d: b", name, s + 1);
        assert_true(cr_test_close(what, p + pt.t[T_B].offset, eb + s * 7, 7, ATOL, RTOL));
        assert_memory_equal(p + pt.t[T_FROZEN].offset, before + pt.t[T_FROZEN].offset,
                            4 * sizeof(float));
        assert_memory_equal(p + pt.t[T_EMB].offset, before + pt.t[T_EMB].offset,
                            V * D * sizeof(float));
    }
    assert_int_equal(o.t, STEPS);
    cr_adam_free(&o);
    cr_free(grads);
    cr_free(before);
    cr_ptable_free(&pt);
}

static void test_adam_twin(void **state) { dense_twin(*state, CR_OPT_ADAM, "adam"); }
static void test_adamw_twin(void **state) { dense_twin(*state, CR_OPT_ADAMW, "adamw"); }
static void test_sgd_twin(void **state) { dense_twin(*state, CR_OPT_SGD, "sgd"); }

/* The same updates on a slab large enough for the parallel loop: the twin's
 * 15 weights tiled thousands of times must each follow the twin exactly. */
static void test_adamw_large_slab(void **state) {
    twin *t = *state;
    const int64_t s_w[2] = {3, 5}, s_gw[3] = {STEPS, 3, 5}, s_lr[1] = {STEPS};
    const float *w0 = tensor(t, "init.w", 2, s_w), *gw = tensor(t, "grad.w", 3, s_gw);
    const float *lr = tensor(t, "lr", 1, s_lr), *ew = tensor(t, "adamw.w", 3, s_gw);
    enum { REP = 5000 };
    cr_ptable pt;
    cr_ptable_init(&pt);
    const int64_t shape[2] = {REP, 15};
    assert_int_equal(cr_ptable_add(&pt, "big", 2, shape, 0), 0);
    assert_int_equal(cr_ptable_alloc(&pt, NULL), CR_OK);
    float *g = cr_alloc(pt.total * sizeof(float));
    assert_non_null(g);
    for (int r = 0; r < REP; r++) memcpy(pt.data + r * 15, w0, 15 * sizeof(float));
    cr_adam o;
    assert_int_equal(cr_adam_init(&o, &pt, CR_OPT_ADAMW, lr[0], t->hp_beta1, t->hp_beta2,
                                  t->hp_eps, t->hp_wd, NULL),
                     CR_OK);
    for (int s = 0; s < STEPS; s++) {
        for (int r = 0; r < REP; r++) memcpy(g + r * 15, gw + s * 15, 15 * sizeof(float));
        cr_adam_step(&o, &pt, pt.data, g, lr[s]);
    }
    for (int r = 0; r < REP; r++)
        assert_true(cr_test_close("large adamw", pt.data + r * 15, ew + 4 * 15, 15, ATOL, RTOL));
    cr_adam_free(&o);
    cr_free(g);
    cr_ptable_free(&pt);
}

static void sparse_twin(twin *t, cr_sparse_opt_kind kind, const char *name) {
    const int64_t s_e[2] = {V, D}, s_rows[2] = {STEPS, MAXR}, s_n[1] = {STEPS},
                  s_vals[3] = {STEPS, MAXR, D}, s_out[3] = {STEPS, V, D};
    const float *e0 = tensor(t, "sparse.init", 2, s_e);
    const int32_t *rows = tensor_i32(t, "sparse.rows", 2, s_rows);
    const int32_t *nrows = tensor_i32(t, "sparse.nrows", 1, s_n);
    const float *vals = tensor(t, "sparse.vals", 3, s_vals);
    const float *lr = tensor(t, "sparse.lr", 1, s_n);
    char nm[64];
    snprintf(nm, sizeof nm, "%s.emb", name);
    const float *expect = tensor(t, nm, 3, s_out);

    float table[V * D];
    memcpy(table, e0, sizeof table);
    cr_sparse_opt o;
    cr_sparse_grad g;
    cr_error e;
    float eps = kind == CR_SPARSE_ADAGRAD ? t->hp_ada_eps : t->hp_seps;
    assert_int_equal(cr_sparse_opt_init(&o, kind, V, D, lr[0], t->hp_sb1, t->hp_sb2, eps,
                                        t->hp_ada_init, &e),
                     CR_OK);
    assert_int_equal(cr_sparse_grad_init(&g, MAXR, D, &e), CR_OK);
    for (int s = 0; s < STEPS; s++) {
        g.n = nrows[s];
        assert_true(g.n >= 1 && g.n <= MAXR);
        memcpy(g.rows, rows + s * MAXR, (size_t)g.n * sizeof(int32_t));
        memcpy(g.vals, vals + s * MAXR * D, (size_t)g.n * D * sizeof(float));
        cr_sparse_opt_step(&o, table, &g, lr[s]);
        char what[96];
        snprintf(what, sizeof what, "%s step %d", name, s + 1);
        assert_true(cr_test_close(what, table, expect + s * V * D, V * D, ATOL, RTOL));
    }
    assert_int_equal(o.t, STEPS);
    cr_sparse_grad_free(&g);
    cr_sparse_opt_free(&o);
}

static void test_adagrad_twin(void **state) { sparse_twin(*state, CR_SPARSE_ADAGRAD, "adagrad"); }
static void test_lazy_adam_twin(void **state) {
    sparse_twin(*state, CR_SPARSE_LAZY_ADAM, "lazy_adam");
}
static void test_sparse_sgd_twin(void **state) { sparse_twin(*state, CR_SPARSE_SGD, "sparse_sgd"); }

static void test_clip_twin(void **state) {
    twin *t = *state;
    const int64_t s_gw[3] = {STEPS, 3, 5}, s_gb[2] = {STEPS, 7}, s_w[2] = {3, 5}, s_b[1] = {7},
                  s_1[1] = {1};
    const float *gw = tensor(t, "grad.w", 3, s_gw), *gb = tensor(t, "grad.b", 2, s_gb);
    const float *cw = tensor(t, "clip.w", 2, s_w), *cb = tensor(t, "clip.b", 1, s_b);
    const float *norm = tensor(t, "clip.norm", 1, s_1);
    cr_ptable pt;
    make_table(&pt);
    float *g = cr_alloc(pt.total * sizeof(float));
    assert_non_null(g);
    /* Large gradients on the frozen and sparse tensors: not counted, not scaled. */
    for (size_t i = 0; i < pt.total; i++) g[i] = 100.0f;
    memcpy(g + pt.t[T_W].offset, gw, 15 * sizeof(float));
    memcpy(g + pt.t[T_B].offset, gb, 7 * sizeof(float));
    float n = cr_clip_grad_norm(&pt, g, t->hp_clip);
    assert_true(cr_test_close("clip norm", &n, norm, 1, ATOL, RTOL));
    assert_true(norm[0] > t->hp_clip); /* the fixture really clips */
    assert_true(cr_test_close("clip w", g + pt.t[T_W].offset, cw, 15, ATOL, RTOL));
    assert_true(cr_test_close("clip b", g + pt.t[T_B].offset, cb, 7, ATOL, RTOL));
    assert_true(g[pt.t[T_FROZEN].offset] == 100.0f);
    assert_true(g[pt.t[T_EMB].offset + V * D - 1] == 100.0f);
    cr_free(g);
    cr_ptable_free(&pt);
}

static void test_clip_by_hand(void **state) {
    (void)state;
    cr_ptable pt;
    cr_ptable_init(&pt);
    const int64_t s2[1] = {2}, sbig[1] = {100003};
    cr_ptable_add(&pt, "a", 1, s2, 0);
    cr_ptable_add(&pt, "big", 1, sbig, CR_PARAM_NO_DECAY);
    assert_int_equal(cr_ptable_alloc(&pt, NULL), CR_OK);
    float *g = cr_alloc(pt.total * sizeof(float));
    assert_non_null(g);
    float *a = g + pt.t[0].offset, *big = g + pt.t[1].offset;
    a[0] = 3.0f;
    a[1] = 4.0f;
    /* under the limit: untouched; max_norm 0: only measured */
    assert_float_equal(cr_clip_grad_norm(&pt, g, 10.0f), 5.0, 1e-6);
    assert_true(a[0] == 3.0f && a[1] == 4.0f);
    assert_float_equal(cr_clip_grad_norm(&pt, g, 0.0f), 5.0, 1e-6);
    assert_true(a[0] == 3.0f && a[1] == 4.0f);
    /* over: scaled by max_norm / (norm + 1e-6) */
    assert_float_equal(cr_clip_grad_norm(&pt, g, 1.0f), 5.0, 1e-6);
    assert_float_equal(a[0], 3.0 / (5.0 + 1e-6), 1e-7);
    assert_float_equal(a[1], 4.0 / (5.0 + 1e-6), 1e-7);
    /* a large tensor (chunked, parallel sum) against a serial double sum */
    cr_test_fill(big, 100003, 1.0f, 5);
    double ss = (double)a[0] * a[0] + (double)a[1] * a[1];
    for (int i = 0; i < 100003; i++) ss += (double)big[i] * big[i];
    float n = cr_clip_grad_norm(&pt, g, 1e9f);
    assert_float_equal(n, sqrt(ss), sqrt(ss) * 1e-7);
    /* a NaN gradient: the norm says so and nothing is scaled */
    big[777] = NAN;
    float keep = big[0];
    assert_true(isnan(cr_clip_grad_norm(&pt, g, 1.0f)));
    assert_true(big[0] == keep);
    cr_free(g);
    cr_ptable_free(&pt);
}

static void test_lr_schedule(void **state) {
    (void)state;
    const float lr = 0.01f;
    /* warmup 4: (s + 1) / 4 of the rate, then constant */
    assert_float_equal(cr_lr_at(CR_SCHED_CONSTANT, lr, 0, 4, 100, 0.0f), lr * 0.25, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_CONSTANT, lr, 2, 4, 100, 0.0f), lr * 0.75, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_CONSTANT, lr, 3, 4, 100, 0.0f), lr, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_CONSTANT, lr, 4000, 4, 100, 0.0f), lr, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_CONSTANT, lr, 0, 0, 100, 0.0f), lr, 1e-9);
    /* cosine: warmup 2, total 10, floor 0.1: lr at step 2, halfway (q = 0.5)
     * at step 6, the floor from step 10 on */
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, 1, 2, 10, 0.1f), lr, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, 2, 2, 10, 0.1f), lr, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, 6, 2, 10, 0.1f), lr * 0.55, 1e-9);
    double q = 0.25, want = lr * (0.1 + 0.9 * 0.5 * (1.0 + cos(M_PI * q)));
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, 4, 2, 10, 0.1f), want, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, 10, 2, 10, 0.1f), lr * 0.1, 1e-9);
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, 99, 2, 10, 0.1f), lr * 0.1, 1e-9);
    /* nothing left to decay over: the floor */
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, 5, 5, 5, 0.0f), 0.0, 1e-12);
    assert_float_equal(cr_lr_at(CR_SCHED_COSINE, lr, -3, 0, 10, 0.0f), lr, 1e-9);
}

static void test_lazy_adam_empty_step(void **state) {
    (void)state;
    /* A step whose batch touched no row still counts (torch increments the
     * table's step whenever it has a gradient) and changes nothing. */
    cr_sparse_opt o;
    cr_sparse_grad g;
    assert_int_equal(cr_sparse_opt_init(&o, CR_SPARSE_LAZY_ADAM, 3, 2, 0.1f, 0.9f, 0.99f, 1e-8f,
                                        0.0f, NULL),
                     CR_OK);
    assert_int_equal(cr_sparse_grad_init(&g, 2, 2, NULL), CR_OK);
    float table[6] = {1, 2, 3, 4, 5, 6}, ref[6];
    memcpy(ref, table, sizeof ref);
    g.n = 0;
    cr_sparse_opt_step(&o, table, &g, 0.1f);
    assert_int_equal(o.t, 1);
    assert_memory_equal(table, ref, sizeof ref);
    /* Step 2 on row 1: bias corrections use t = 2, so the first move is
     * lr * sqrt(1 - b2^2) / (1 - b1^2) * m / (sqrt(v) + eps) with m = 0.1g,
     * v = 0.01 g^2: for g = 1, 0.1 * sqrt(0.0199)/0.19 * 0.1/(0.1 + 1e-8). */
    g.n = 1;
    g.rows[0] = 1;
    g.vals[0] = 1.0f;
    g.vals[1] = -1.0f;
    cr_sparse_opt_step(&o, table, &g, 0.1f);
    double d = 0.1 * sqrt(1.0 - 0.99 * 0.99) / (1.0 - 0.9 * 0.9) * (0.1 / (0.1 + 1e-8));
    assert_float_equal(table[2], 3.0 - d, 1e-5);
    assert_float_equal(table[3], 4.0 + d, 1e-5);
    assert_true(table[0] == 1.0f && table[5] == 6.0f);
    cr_sparse_grad_free(&g);
    cr_sparse_opt_free(&o);
}

static void test_bad_arguments(void **state) {
    (void)state;
    cr_ptable pt;
    make_table(&pt);
    cr_adam o;
    cr_error e;
    assert_int_equal(cr_adam_init(&o, &pt, (cr_dense_opt_kind)7, 0.1f, 0.9f, 0.999f, 1e-8f, 0, &e),
                     CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "optimizer kind 7"));
    assert_int_equal(cr_adam_init(&o, &pt, CR_OPT_ADAM, 0.1f, 1.0f, 0.999f, 1e-8f, 0, &e),
                     CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "beta1"));
    assert_int_equal(cr_adam_init(&o, &pt, CR_OPT_ADAMW, -1.0f, 0.9f, 0.999f, 1e-8f, 0, &e),
                     CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "learning rate"));
    assert_int_equal(cr_adam_init(&o, &pt, CR_OPT_ADAMW, 0.1f, 0.9f, 0.999f, 1e-8f, NAN, &e),
                     CR_ERR_ARG);
    assert_null(o.m);
    cr_adam_free(&o); /* harmless on a failed init */

    cr_sparse_opt so;
    assert_int_equal(cr_sparse_opt_init(&so, CR_SPARSE_ADAGRAD, 0, 4, 0.1f, 0, 0, 1e-10f, 0, &e),
                     CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "0 rows"));
    assert_int_equal(cr_sparse_opt_init(&so, CR_SPARSE_ADAGRAD, 5, 4, 0.1f, 0, 0, 1e-10f, -1, &e),
                     CR_ERR_ARG);
    assert_int_equal(cr_sparse_opt_init(&so, CR_SPARSE_LAZY_ADAM, 5, 4, 0.1f, 0.9f, 1.5f, 1e-8f, 0,
                                        &e),
                     CR_ERR_ARG);
    /* Adagrad's accumulators start at init_acc */
    assert_int_equal(cr_sparse_opt_init(&so, CR_SPARSE_ADAGRAD, 5, 4, 0.1f, 0, 0, 1e-10f, 0.25f, &e),
                     CR_OK);
    assert_true(so.s1[0] == 0.25f && so.s1[19] == 0.25f && so.s2 == NULL);
    cr_sparse_opt_free(&so);

    cr_sparse_grad g;
    assert_int_equal(cr_sparse_grad_init(&g, 0, 4, &e), CR_ERR_ARG);
    assert_null(g.rows);
    cr_sparse_grad_free(&g);
    cr_ptable_free(&pt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_twin),
        cmocka_unit_test(test_adamw_twin),
        cmocka_unit_test(test_sgd_twin),
        cmocka_unit_test(test_adamw_large_slab),
        cmocka_unit_test(test_adagrad_twin),
        cmocka_unit_test(test_lazy_adam_twin),
        cmocka_unit_test(test_sparse_sgd_twin),
        cmocka_unit_test(test_clip_twin),
    };
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_clip_by_hand),
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_lazy_adam_empty_step),
        cmocka_unit_test(test_bad_arguments),
    };
    int fails = cmocka_run_group_tests_name("optim vs torch twin", tests, twin_open, twin_close);
    fails += cmocka_run_group_tests_name("optim", plain, NULL, NULL);
    return fails;
}
