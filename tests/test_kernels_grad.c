/*
 * test_kernels_grad.c - finite-difference checks of every dense backward
 * (linear, activations, softmax, layer norm, moe mixing) at tiny shapes:
 * the scalar is sum(out * r) for fixed random r, so dout = r. Also: backward
 * accumulates (twice = double), NULL gradients are skipped, a wrong
 * gradient is caught, and 1 and 2 threads give the same bits.
 */
#include "util/testutil.h"

#include "../src/kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FD_H 1e-2
#define FD_TOL 1e-2

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static float *fmake(size_t n, float a, uint64_t seed) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    cr_test_fill(x, n, a, seed);
    return x;
}

static float *fzero(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* ---- linear, with strided input and output ------------------------------- */
typedef struct {
    int B, C, OC, ldi, ldo;
    float *inp, *w, *b, *out, *r;
} lin_ctx;

static double lin_f(void *p) {
    lin_ctx *c = p;
    cr_linear_forward(c->out, c->inp, c->w, c->b, c->B, c->C, c->OC, c->ldi, c->ldo);
    double s = 0;
    for (int i = 0; i < c->B; i++)
        s += dotd(c->out + (size_t)i * c->ldo, c->r + (size_t)i * c->ldo, (size_t)c->OC);
    return s;
}

static void test_linear_grad(void **state) {
    (void)state;
    lin_ctx c = {.B = 3, .C = 4, .OC = 5, .ldi = 6, .ldo = 7};
    c.inp = fmake((size_t)c.B * c.ldi, 1, 1);
    c.w = fmake((size_t)c.OC * c.C, 1, 2);
    c.b = fmake((size_t)c.OC, 1, 3);
    c.out = fzero((size_t)c.B * c.ldo);
    c.r = fmake((size_t)c.B * c.ldo, 1, 4); /* dout, padding included but unread */
    float *dinp = fzero((size_t)c.B * c.ldi), *dw = fzero((size_t)c.OC * c.C),
          *db = fzero((size_t)c.OC);
    cr_linear_backward(dinp, dw, db, c.r, c.inp, c.w, c.B, c.C, c.OC, c.ldi, c.ldo);
    /* dinp's padding columns must stay 0 (they are not part of the input) */
    uint8_t skip[18] = {0};
    for (int i = 0; i < c.B; i++)
        for (int j = c.C; j < c.ldi; j++) {
            assert_true(dinp[i * c.ldi + j] == 0.0f);
            skip[i * c.ldi + j] = 1;
        }
    assert_true(cr_test_gradcheck("linear dinp", lin_f, &c, c.inp, dinp, 18, FD_H, FD_TOL, skip));
    assert_true(cr_test_gradcheck("linear dw", lin_f, &c, c.w, dw, 20, FD_H, FD_TOL, NULL));
    assert_true(cr_test_gradcheck("linear db", lin_f, &c, c.b, db, 5, FD_H, FD_TOL, NULL));

    /* A corrupted gradient must be caught: the check can fail. */
    dw[7] += 0.1f;
    assert_false(cr_test_gradcheck("linear dw (corrupted on purpose)", lin_f, &c, c.w, dw, 20,
                                   FD_H, FD_TOL, NULL));
    dw[7] -= 0.1f;

    /* Accumulation: a second call adds the same again. */
    float *dinp2 = malloc(sizeof(float) * 18), *dw2 = malloc(sizeof(float) * 20),
          *db2 = malloc(sizeof(float) * 5);
    memcpy(dinp2, dinp, sizeof(float) * 18);
    memcpy(dw2, dw, sizeof(float) * 20);
    memcpy(db2, db, sizeof(float) * 5);
    cr_linear_backward(dinp2, dw2, db2, c.r, c.inp, c.w, c.B, c.C, c.OC, c.ldi, c.ldo);
    for (int i = 0; i < 18; i++) assert_float_equal(dinp2[i], 2 * dinp[i], 1e-6);
    for (int i = 0; i < 20; i++) assert_float_equal(dw2[i], 2 * dw[i], 1e-6);
    for (int i = 0; i < 5; i++) assert_float_equal(db2[i], 2 * db[i], 1e-6);

    /* NULL gradients are skipped; the others are unaffected. */
    float *dw3 = fzero(20);
    cr_linear_backward(NULL, dw3, NULL, c.r, c.inp, c.w, c.B, c.C, c.OC, c.ldi, c.ldo);
    assert_memory_equal(dw3, dw, sizeof(float) * 20);
    cr_linear_backward(NULL, NULL, NULL, c.r, NULL, NULL, c.B, c.C, c.OC, c.ldi, c.ldo);

    /* No bias: out = inp @ w^T exactly as a GEMM. */
    cr_linear_forward(c.out, c.inp, c.w, NULL, c.B, c.C, c.OC, c.ldi, c.ldo);
    for (int i = 0; i < c.B; i++)
        for (int o = 0; o < c.OC; o++)
            assert_float_equal(c.out[i * c.ldo + o],
                               dotd(c.inp + i * c.ldi, c.w + o * c.C, (size_t)c.C), 1e-5);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.r);
    free(dinp), free(dw), free(db), free(dinp2), free(dw2), free(db2), free(dw3);
}

/* ---- activations -------------------------------------------------------- */
enum { ACT_RELU, ACT_GELU, ACT_SIGMOID };
typedef struct {
    int kind;
    size_t n;
    float *x, *y, *r;
} act_ctx;

static void act_fwd(act_ctx *c) {
    if (c->kind == ACT_RELU) cr_relu_forward(c->y, c->x, c->n);
    if (c->kind == ACT_GELU) cr_gelu_forward(c->y, c->x, c->n);
    if (c->kind == ACT_SIGMOID) cr_sigmoid_forward(c->y, c->x, c->n);
}

static double act_f(void *p) {
    act_ctx *c = p;
    act_fwd(c);
    return dotd(c->y, c->r, c->n);
}

static void act_bwd(act_ctx *c, float *dx) {
    if (c->kind == ACT_RELU) cr_relu_backward(dx, c->r, c->y, c->n);
    if (c->kind == ACT_GELU) cr_gelu_backward(dx, c->r, c->x, c->n);
    if (c->kind == ACT_SIGMOID) cr_sigmoid_backward(dx, c->r, c->y, c->n);
}

static void test_activation_grad(void **state) {
    (void)state;
    const char *names[] = {"relu", "gelu", "sigmoid"};
    for (int k = 0; k < 3; k++) {
        act_ctx c = {.kind = k, .n = 40};
        c.x = fmake(c.n, 3, 10 + (uint64_t)k);
        c.y = fzero(c.n);
        c.r = fmake(c.n, 1, 20);
        uint8_t skip[40] = {0};
        for (size_t i = 0; i < c.n; i++) skip[i] = k == ACT_RELU && fabsf(c.x[i]) < 3 * FD_H;
        act_fwd(&c);
        float *dx = fzero(c.n);
        act_bwd(&c, dx);
        assert_true(cr_test_gradcheck(names[k], act_f, &c, c.x, dx, c.n, FD_H, FD_TOL, skip));
        /* accumulates (recompute c.y first: the gradient check left it at a
         * perturbed point) */
        act_fwd(&c);
        float *dx2 = malloc(sizeof(float) * c.n);
        memcpy(dx2, dx, sizeof(float) * c.n);
        act_bwd(&c, dx2);
        for (size_t i = 0; i < c.n; i++) assert_float_equal(dx2[i], 2 * dx[i], 1e-6);
        act_bwd(&c, NULL); /* skipped */
        /* in place forward gives the same values */
        float *xi = malloc(sizeof(float) * c.n);
        memcpy(xi, c.x, sizeof(float) * c.n);
        act_ctx ci = c;
        ci.y = xi;
        ci.x = xi;
        act_fwd(&ci);
        assert_memory_equal(xi, c.y, sizeof(float) * c.n);
        free(c.x), free(c.y), free(c.r), free(dx), free(dx2), free(xi);
    }
    /* known values: gelu_tanh(1) = 0.8411920, sigmoid(-100) > 0, relu(-0) = 0 */
    float x[3] = {1.0f, -100.0f, 100.0f}, y[3];
    cr_gelu_forward(y, x, 1);
    assert_float_equal(y[0], 0.841192f, 1e-6);
    cr_sigmoid_forward(y, x, 3);
    assert_true(y[1] > 0.0f && y[1] < 1e-40f && y[2] == 1.0f);
}

/* ---- softmax ------------------------------------------------------------- */
typedef struct {
    int B, N;
    float *x, *y, *r;
} sm_ctx;

static double sm_f(void *p) {
    sm_ctx *c = p;
    cr_softmax_forward(c->y, c->x, c->B, c->N);
    return dotd(c->y, c->r, (size_t)c->B * c->N);
}

/* GELU uses its own branch-free tanh (so its loops vectorise): against the
 * formula with libm's tanh in double, forward within 1e-6 absolute over
 * [-12, 12] and the derivative within 3e-6 (measured 3.6e-7 and 2.0e-6; the
 * float formula with libm's tanhf: 4.3e-7 and 5.5e-7). */
static void test_gelu_accuracy(void **state) {
    (void)state;
    enum { N = 24001 };
    static float x[N], y[N], dx[N], one[N];
    for (int i = 0; i < N; i++) {
        x[i] = -12.0f + 0.001f * (float)i;
        one[i] = 1.0f;
        dx[i] = 0.0f;
    }
    cr_gelu_forward(y, x, N);
    cr_gelu_backward(dx, one, x, N);
    double worst_f = 0, worst_b = 0;
    for (int i = 0; i < N; i++) {
        double v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v), t = tanh(u);
        double f = 0.5 * v * (1 + t);
        double g = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v);
        if (fabs(y[i] - f) > worst_f) worst_f = fabs(y[i] - f);
        if (fabs(dx[i] - g) > worst_b) worst_b = fabs(dx[i] - g);
    }
    fprintf(stderr, "gelu: worst forward error %.3g, derivative %.3g\n", worst_f, worst_b);
    assert_true(worst_f < 1e-6);
    assert_true(worst_b < 3e-6);
}

static void test_softmax_grad(void **state) {
    (void)state;
    sm_ctx c = {.B = 3, .N = 6};
    size_t n = 18;
    c.x = fmake(n, 2, 30);
    c.y = fzero(n);
    c.r = fmake(n, 1, 31);
    sm_f(&c);
    for (int b = 0; b < c.B; b++) {
        double s = 0;
        for (int j = 0; j < c.N; j++) s += c.y[b * c.N + j];
        assert_float_equal(s, 1.0, 1e-6);
    }
    float *dx = fzero(n);
    cr_softmax_backward(dx, c.r, c.y, c.B, c.N);
    assert_true(cr_test_gradcheck("softmax", sm_f, &c, c.x, dx, n, FD_H, FD_TOL, NULL));
    cr_softmax_backward(NULL, c.r, c.y, c.B, c.N);
    /* large logits do not overflow */
    float big[3] = {1000.0f, 999.0f, -1000.0f}, p[3];
    cr_softmax_forward(p, big, 1, 3);
    assert_float_equal(p[0], 1.0 / (1.0 + exp(-1.0)), 1e-6);
    assert_true(p[2] == 0.0f);
    free(c.x), free(c.y), free(c.r), free(dx);
}

/* ---- layer norm --------------------------------------------------------- */
typedef struct {
    int B, C;
    float *x, *w, *b, *y, *mean, *rstd, *r;
} ln_ctx;

static double ln_f(void *p) {
    ln_ctx *c = p;
    cr_layernorm_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->B, c->C, 1e-5f);
    return dotd(c->y, c->r, (size_t)c->B * c->C);
}

static void test_layernorm_grad(void **state) {
    (void)state;
    for (int affine = 0; affine < 2; affine++) {
        ln_ctx c = {.B = 3, .C = 8};
        size_t n = 24;
        c.x = fmake(n, 2, 40);
        for (size_t i = 0; i < n; i++) c.x[i] += 3.0f; /* a common offset */
        c.w = affine ? fmake(8, 1, 41) : NULL;
        c.b = affine ? fmake(8, 1, 42) : NULL;
        c.y = fzero(n), c.mean = fzero(3), c.rstd = fzero(3);
        c.r = fmake(n, 1, 43);
        ln_f(&c);
        if (!affine) /* each row has mean 0 and variance ~1 */
            for (int b = 0; b < 3; b++) {
                double s = 0, s2 = 0;
                for (int j = 0; j < 8; j++) {
                    s += c.y[b * 8 + j];
                    s2 += c.y[b * 8 + j] * c.y[b * 8 + j];
                }
                assert_float_equal(s / 8, 0.0, 1e-6);
                assert_float_equal(s2 / 8, 1.0, 1e-3);
            }
        float *dx = fzero(n), *dw = fzero(8), *db = fzero(8);
        cr_layernorm_backward(dx, affine ? dw : NULL, affine ? db : NULL, c.r, c.x, c.w, c.mean,
                              c.rstd, c.B, c.C);
        assert_true(cr_test_gradcheck("layernorm dx", ln_f, &c, c.x, dx, n, FD_H, FD_TOL, NULL));
        if (affine) {
            assert_true(
                cr_test_gradcheck("layernorm dw", ln_f, &c, c.w, dw, 8, FD_H, FD_TOL, NULL));
            assert_true(
                cr_test_gradcheck("layernorm db", ln_f, &c, c.b, db, 8, FD_H, FD_TOL, NULL));
            /* dw alone gives the same dw; accumulates (forward again first:
             * the check left the cached statistics at a perturbed point) */
            ln_f(&c);
            float *dw2 = fzero(8);
            cr_layernorm_backward(NULL, dw2, NULL, c.r, c.x, c.w, c.mean, c.rstd, c.B, c.C);
            assert_memory_equal(dw2, dw, sizeof(float) * 8);
            cr_layernorm_backward(NULL, dw2, NULL, c.r, c.x, c.w, c.mean, c.rstd, c.B, c.C);
            for (int j = 0; j < 8; j++) assert_float_equal(dw2[j], 2 * dw[j], 1e-6);
            free(dw2);
        }
        free(c.x), free(c.w), free(c.b), free(c.y), free(c.mean), free(c.rstd), free(c.r);
        free(dx), free(dw), free(db);
    }
}

/* ---- moe mixing ---------------------------------------------------------- */
typedef struct {
    int B, S, E, H;
    const int *sel;
    float *gate, *ex, *y, *r;
} moe_ctx;

static double moe_f(void *p) {
    moe_ctx *c = p;
    cr_moe_mix_forward(c->y, c->gate, c->ex, c->sel, c->B, c->S, c->E, c->H);
    return dotd(c->y, c->r, (size_t)c->B * c->H);
}

static void test_moe_grad(void **state) {
    (void)state;
    static const int sel_ple[3] = {3, 0, 2}, sel_dup[2] = {1, 1};
    const struct { const int *sel; int S; } cases[] = {{NULL, 4}, {sel_ple, 3}, {sel_dup, 2}};
    for (int k = 0; k < 3; k++) {
        moe_ctx c = {.B = 2, .S = cases[k].S, .E = 4, .H = 5, .sel = cases[k].sel};
        size_t ng = (size_t)c.B * c.S, ne = (size_t)c.B * c.E * c.H, no = (size_t)c.B * c.H;
        c.gate = fmake(ng, 1, 50), c.ex = fmake(ne, 1, 51), c.y = fzero(no), c.r = fmake(no, 1, 52);
        moe_f(&c);
        /* forward by hand for one element */
        double want = 0;
        for (int s = 0; s < c.S; s++) {
            int e = c.sel ? c.sel[s] : s;
            want += (double)c.gate[c.S + s] * c.ex[(size_t)(c.E + e) * c.H + 2];
        }
        assert_float_equal(c.y[c.H + 2], want, 1e-5);
        float *dg = fzero(ng), *de = fzero(ne);
        cr_moe_mix_backward(dg, de, c.r, c.gate, c.ex, c.sel, c.B, c.S, c.E, c.H);
        assert_true(cr_test_gradcheck("moe dgate", moe_f, &c, c.gate, dg, ng, FD_H, FD_TOL, NULL));
        assert_true(cr_test_gradcheck("moe dexperts", moe_f, &c, c.ex, de, ne, FD_H, FD_TOL, NULL));
        /* unselected experts get exactly zero gradient */
        if (c.sel == sel_ple)
            for (int b = 0; b < c.B; b++)
                for (int h = 0; h < c.H; h++)
                    assert_true(de[((size_t)b * c.E + 1) * c.H + h] == 0.0f);
        /* NULL dexperts: dgate alone, and accumulation */
        float *dg2 = fzero(ng);
        cr_moe_mix_backward(dg2, NULL, c.r, c.gate, c.ex, c.sel, c.B, c.S, c.E, c.H);
        assert_memory_equal(dg2, dg, sizeof(float) * ng);
        cr_moe_mix_backward(dg2, NULL, c.r, c.gate, c.ex, c.sel, c.B, c.S, c.E, c.H);
        for (size_t i = 0; i < ng; i++) assert_float_equal(dg2[i], 2 * dg[i], 1e-6);
        free(c.gate), free(c.ex), free(c.y), free(c.r), free(dg), free(de), free(dg2);
    }
}

/* ---- thread-count independence -------------------------------------------
 * Shapes large enough that every kernel takes its parallel path; the
 * portable GEMM is forced so the whole chain is ours. */
static void run_chain(float *res, size_t *nres) {
    enum { B = 256, C = 96, OC = 80, E = 4, H = 20 };
    float *x = fmake(B * C, 1, 60), *w = fmake(OC * C, 0.2f, 61), *bias = fmake(OC, 1, 62);
    float *h = fzero(B * OC), *a = fzero(B * OC), *ln = fzero(B * OC), *mean = fzero(B),
          *rstd = fzero(B), *sm = fzero(B * OC), *mix = fzero(B * H), *gate = fmake(B * E, 1, 63);
    float *dout = fmake(B * OC, 1, 64), *dx = fzero(B * C), *dw = fzero(OC * C), *db = fzero(OC),
          *dln = fzero(B * OC), *dlw = fzero(OC), *dge = fzero(B * E), *dex = fzero(B * OC);
    cr_linear_forward(h, x, w, bias, B, C, OC, C, OC);
    cr_gelu_forward(a, h, B * OC);
    cr_layernorm_forward(ln, mean, rstd, a, w, bias, B, OC, 1e-5f);
    cr_softmax_forward(sm, ln, B, OC);
    cr_moe_mix_forward(mix, gate, sm, NULL, B, E, E, H);
    cr_moe_mix_backward(dge, dex, dout, gate, sm, NULL, B, E, E, H);
    cr_softmax_backward(dln, dout, sm, B, OC);
    cr_layernorm_backward(dx, dlw, db, dln, a, w, mean, rstd, B, OC);
    cr_linear_backward(dx, dw, db, dout, x, w, B, C, OC, C, OC);
    size_t k = 0;
    const float *parts[] = {h, a, ln, sm, mix, dge, dex, dln, dlw, dx, dw, db};
    const size_t lens[] = {B * OC, B * OC, B * OC, B * OC, B * H, B * E, B * OC,
                           B * OC, OC, B * C, OC * C, OC};
    for (int i = 0; i < 12; i++) {
        memcpy(res + k, parts[i], sizeof(float) * lens[i]);
        k += lens[i];
    }
    *nres = k;
    free(x), free(w), free(bias), free(h), free(a), free(ln), free(mean), free(rstd), free(sm);
    free(mix), free(gate), free(dout), free(dx), free(dw), free(db), free(dln), free(dlw);
    free(dge), free(dex);
}

static void test_threads_identical(void **state) {
    (void)state;
    int saved = cr_get_threads();
    size_t cap = 400000, n1 = 0, n2 = 0;
    float *r1 = malloc(sizeof(float) * cap), *r2 = malloc(sizeof(float) * cap);
    cr_sgemm_set_backend(CR_GEMM_PORTABLE);
    cr_set_threads(1);
    run_chain(r1, &n1);
    cr_set_threads(2);
    run_chain(r2, &n2);
    cr_set_threads(saved);
    cr_sgemm_set_backend(CR_GEMM_AUTO);
    assert_true(n1 == n2 && n1 < cap);
    assert_memory_equal(r1, r2, sizeof(float) * n1);
    free(r1), free(r2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_grad),    cmocka_unit_test(test_activation_grad),
        cmocka_unit_test(test_softmax_grad),   cmocka_unit_test(test_layernorm_grad),
        cmocka_unit_test(test_moe_grad),       cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_gelu_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
