/*
 * test_kernels_qf.c - the item encoder's masked attention: the forward
 * against a naive loop (shared and per-row masks, hidden keys, a row that
 * sees nothing), finite differences of dq, dk and dv for self-attention
 * under a per-row mask and for cross-attention (Tq != Tk, strided fused
 * inputs), accumulation and NULL gradients, and BLIP-2's three masks.
 * The scalar for gradient checks is sum(out * r) for fixed random r.
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

typedef struct {
    int B, Tq, Tk, NH, HD, ldq, ldkv;
    size_t mask_bs;
    float *q, *k, *v, *mask, *out, *att, *r;
} mha_ctx;

static size_t nq_(const mha_ctx *c) { return (size_t)c->B * c->Tq * c->ldq; }
static size_t nkv_(const mha_ctx *c) { return (size_t)c->B * c->Tk * c->ldkv; }
static size_t nout_(const mha_ctx *c) { return (size_t)c->B * c->Tq * c->NH * c->HD; }

static double mha_f(void *p) {
    mha_ctx *c = p;
    cr_mha_forward(c->out, c->att, c->q, c->k, c->v, c->mask, c->mask_bs, c->B, c->Tq, c->Tk,
                   c->NH, c->HD, c->ldq, c->ldkv);
    return dotd(c->out, c->r, nout_(c));
}

static void mha_setup(mha_ctx *c, uint64_t seed) {
    c->q = fmake(nq_(c), 1, seed);
    c->k = fmake(nkv_(c), 1, seed + 1);
    c->v = fmake(nkv_(c), 1, seed + 2);
    c->out = fzero(nout_(c));
    c->att = fzero((size_t)c->B * c->NH * c->Tq * c->Tk);
    c->r = fmake(nout_(c), 1, seed + 3);
}

static void mha_free(mha_ctx *c) {
    free(c->q), free(c->k), free(c->v), free(c->out), free(c->att), free(c->r), free(c->mask);
}

/* out = softmax(q k^T / sqrt(HD) + mask) v, in double, straight from the formula */
static void naive(const mha_ctx *c, double *want) {
    int C = c->NH * c->HD;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->NH; h++)
            for (int t = 0; t < c->Tq; t++) {
                double s[64], mx = -INFINITY, sum = 0;
                for (int j = 0; j < c->Tk; j++) {
                    double d = 0;
                    for (int x = 0; x < c->HD; x++)
                        d += (double)c->q[((size_t)b * c->Tq + t) * c->ldq + h * c->HD + x] *
                             c->k[((size_t)b * c->Tk + j) * c->ldkv + h * c->HD + x];
                    d /= sqrt((double)c->HD);
                    if (c->mask) d += c->mask[b * c->mask_bs + (size_t)t * c->Tk + j];
                    s[j] = d;
                    if (d > mx) mx = d;
                }
                for (int j = 0; j < c->Tk; j++) {
                    s[j] = mx == -INFINITY ? 0 : exp(s[j] - mx);
                    sum += s[j];
                }
                for (int x = 0; x < c->HD; x++) {
                    double o = 0;
                    for (int j = 0; j < c->Tk; j++)
                        o += (sum > 0 ? s[j] / sum : 0) *
                             c->v[((size_t)b * c->Tk + j) * c->ldkv + h * c->HD + x];
                    want[((size_t)b * c->Tq + t) * C + h * c->HD + x] = o;
                }
            }
}

static void check_naive(mha_ctx *c) {
    mha_f(c);
    size_t n = nout_(c);
    double *want = malloc(n * sizeof(double));
    naive(c, want);
    for (size_t i = 0; i < n; i++) assert_true(fabs(c->out[i] - want[i]) < 1e-5);
    free(want);
}

static void test_forward_naive(void **state) {
    (void)state;
    /* shared mask with hidden keys and one row that sees nothing */
    mha_ctx c = {.B = 2, .Tq = 4, .Tk = 5, .NH = 2, .HD = 3, .ldq = 6, .ldkv = 6};
    mha_setup(&c, 10);
    c.mask = fzero((size_t)c.Tq * c.Tk);
    c.mask[1] = -INFINITY, c.mask[7] = 0.5f, c.mask[8] = -INFINITY;
    for (int j = 0; j < c.Tk; j++) c.mask[3 * c.Tk + j] = -INFINITY;
    check_naive(&c);
    for (int h = 0; h < c.NH; h++)
        for (int x = 0; x < c.HD; x++) assert_true(c.out[(3 * c.NH + h) * c.HD + x] == 0.0f);
    assert_true(c.att[1] == 0.0f); /* hidden key: exactly 0 */
    mha_free(&c);
    /* no mask */
    mha_ctx d = {.B = 3, .Tq = 2, .Tk = 3, .NH = 1, .HD = 4, .ldq = 4, .ldkv = 4};
    mha_setup(&d, 20);
    check_naive(&d);
    mha_free(&d);
}

/* gradients of q, k and v by finite differences, then: backward adds, NULL skips */
static void grad_case(mha_ctx *c) {
    mha_f(c);
    float *dq = fzero(nq_(c)), *dk = fzero(nkv_(c)), *dv = fzero(nkv_(c));
    float *scr = fzero((size_t)c->B * c->NH * c->Tq * c->Tk);
    cr_mha_backward(dq, dk, dv, scr, c->r, c->att, c->q, c->k, c->v, c->B, c->Tq, c->Tk, c->NH,
                    c->HD, c->ldq, c->ldkv);
    assert_true(cr_test_gradcheck("mha dq", mha_f, c, c->q, dq, nq_(c), FD_H, FD_TOL, NULL));
    assert_true(cr_test_gradcheck("mha dk", mha_f, c, c->k, dk, nkv_(c), FD_H, FD_TOL, NULL));
    assert_true(cr_test_gradcheck("mha dv", mha_f, c, c->v, dv, nkv_(c), FD_H, FD_TOL, NULL));
    mha_f(c);
    float *dk2 = fzero(nkv_(c));
    memcpy(dk2, dk, nkv_(c) * sizeof(float));
    cr_mha_backward(NULL, dk2, NULL, scr, c->r, c->att, c->q, c->k, c->v, c->B, c->Tq, c->Tk,
                    c->NH, c->HD, c->ldq, c->ldkv);
    for (size_t i = 0; i < nkv_(c); i++) assert_true(fabsf(dk2[i] - 2 * dk[i]) < 1e-5f);
    free(dq), free(dk), free(dv), free(scr), free(dk2);
}

static void test_self_masked_grad(void **state) {
    (void)state;
    /* BLIP-2's ITG mask with padding, per sequence: 2 queries + 4 text rows */
    int NQ = 2, T = 4;
    int32_t len[2] = {4, 2};
    mha_ctx c = {.B = 2, .Tq = 6, .Tk = 6, .NH = 2, .HD = 3, .ldq = 18, .ldkv = 18};
    c.mask_bs = (size_t)c.Tq * c.Tk;
    c.q = fmake((size_t)c.B * c.Tq * c.ldq, 1, 31); /* fused qkv rows */
    c.k = c.q + 6;
    c.v = c.q + 12;
    c.out = fzero(nout_(&c));
    c.att = fzero((size_t)c.B * c.NH * c.Tq * c.Tk);
    c.r = fmake(nout_(&c), 1, 33);
    c.mask = fzero((size_t)c.B * c.mask_bs);
    cr_qf_mask_fill(c.mask, len, 2, c.B, NQ, T);
    check_naive(&c);
    /* fused: one gradient buffer receives all three */
    mha_f(&c);
    size_t n = (size_t)c.B * c.Tq * c.ldq;
    float *d = fzero(n), *scr = fzero((size_t)c.B * c.NH * c.Tq * c.Tk);
    cr_mha_backward(d, d + 6, d + 12, scr, c.r, c.att, c.q, c.k, c.v, c.B, c.Tq, c.Tk, c.NH,
                    c.HD, c.ldq, c.ldkv);
    assert_true(cr_test_gradcheck("mha fused dqkv", mha_f, &c, c.q, d, n, FD_H, FD_TOL, NULL));
    /* keys of padded positions get no gradient: sequence 1, text 2..3 */
    for (int t = NQ + 2; t < NQ + T; t++)
        for (int x = 6; x < 18; x++) assert_true(d[((size_t)1 * c.Tq + t) * 18 + x] == 0.0f);
    free(d), free(scr), free(c.q), free(c.out), free(c.att), free(c.r), free(c.mask);
}

static void test_cross_grad(void **state) {
    (void)state;
    /* queries (3 rows, stride 8 > width 6) against 2 key/value tokens */
    mha_ctx c = {.B = 2, .Tq = 3, .Tk = 2, .NH = 2, .HD = 3, .ldq = 8, .ldkv = 6};
    mha_setup(&c, 40);
    grad_case(&c);
    mha_free(&c);
    /* shared mask that hides a key and leaves one row empty */
    mha_ctx m = {.B = 2, .Tq = 3, .Tk = 4, .NH = 1, .HD = 4, .ldq = 4, .ldkv = 4};
    mha_setup(&m, 50);
    m.mask = fzero((size_t)m.Tq * m.Tk);
    m.mask[2] = -INFINITY, m.mask[5] = 0.3f;
    for (int j = 0; j < m.Tk; j++) m.mask[2 * m.Tk + j] = -INFINITY;
    grad_case(&m);
    mha_free(&m);
}

static void test_masks(void **state) {
    (void)state;
    int NQ = 2, T = 3, S = 5;
    int32_t len[1] = {2};
    float m[25];
    /* expected visibility, rows then keys: q q t t pad */
    static const char *want[3] = {
        "11000" "11000" "00110" "00110" "00110",  /* ITC */
        "11110" "11110" "11110" "11110" "11110",  /* ITM */
        "11000" "11000" "11100" "11110" "11110"}; /* ITG */
    for (int mode = 0; mode < 3; mode++) {
        cr_qf_mask_fill(m, len, mode, 1, NQ, T);
        for (int i = 0; i < S * S; i++) {
            int vis = m[i] == 0.0f;
            if (vis != (want[mode][i] == '1')) fail_msg("mode %d entry %d", mode, i);
            if (!vis) assert_true(isinf(m[i]) && m[i] < 0);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_naive),
        cmocka_unit_test(test_self_masked_grad),
        cmocka_unit_test(test_cross_grad),
        cmocka_unit_test(test_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
