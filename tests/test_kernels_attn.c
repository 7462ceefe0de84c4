/*
 * test_kernels_attn.c - the decoder kernels: finite-difference checks of
 * RMSNorm, SwiGLU, cross-entropy with an ignore index, RoPE and causal
 * grouped-query attention (on a fused, strided qkv layout), attention
 * against a naive loop, decode steps (one query against a key/value cache)
 * against the full causal forward, and the RoPE formula itself.
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

/* ---- RMSNorm --------------------------------------------------------------------- */
typedef struct {
    int B, C;
    float *inp, *w, *out, *rstd, *r;
} rms_ctx;

static double rms_f(void *p) {
    rms_ctx *c = p;
    cr_rmsnorm_forward(c->out, c->rstd, c->inp, c->w, c->B, c->C, 1e-5f);
    return dotd(c->out, c->r, (size_t)c->B * c->C);
}

static void test_rmsnorm_grad(void **state) {
    (void)state;
    rms_ctx c = {.B = 3, .C = 7};
    size_t n = (size_t)c.B * c.C;
    c.inp = fmake(n, 1, 1);
    c.w = fmake((size_t)c.C, 1, 2);
    c.out = fzero(n);
    c.rstd = fzero((size_t)c.B);
    c.r = fmake(n, 1, 3);
    rms_f(&c);
    /* the formula, directly */
    for (int b = 0; b < c.B; b++) {
        double ss = 0;
        for (int j = 0; j < c.C; j++) ss += c.inp[b * c.C + j] * c.inp[b * c.C + j];
        double rs = 1 / sqrt(ss / c.C + 1e-5);
        for (int j = 0; j < c.C; j++)
            assert_true(fabs(c.out[b * c.C + j] - c.inp[b * c.C + j] * rs * c.w[j]) < 1e-5);
    }
    float *dinp = fzero(n), *dw = fzero((size_t)c.C);
    cr_rmsnorm_backward(dinp, dw, c.r, c.rstd, c.inp, c.w, c.B, c.C);
    assert_true(cr_test_gradcheck("rmsnorm dinp", rms_f, &c, c.inp, dinp, n, FD_H, FD_TOL, NULL));
    assert_true(cr_test_gradcheck("rmsnorm dw", rms_f, &c, c.w, dw, (size_t)c.C, FD_H, FD_TOL,
                                  NULL));
    /* accumulates; NULL skips */
    float *dinp2 = fzero(n);
    memcpy(dinp2, dinp, n * sizeof(float));
    cr_rmsnorm_backward(dinp2, NULL, c.r, c.rstd, c.inp, c.w, c.B, c.C);
    for (size_t i = 0; i < n; i++) assert_true(fabsf(dinp2[i] - 2 * dinp[i]) < 1e-6f);
    free(c.inp), free(c.w), free(c.out), free(c.rstd), free(c.r), free(dinp), free(dw),
        free(dinp2);
}

/* ---- SwiGLU ----------------------------------------------------------------------- */
typedef struct {
    size_t n;
    float *a, *b, *out, *r;
} swi_ctx;

static double swi_f(void *p) {
    swi_ctx *c = p;
    cr_swiglu_forward(c->out, c->a, c->b, c->n);
    return dotd(c->out, c->r, c->n);
}

static void test_swiglu_grad(void **state) {
    (void)state;
    swi_ctx c = {.n = 23};
    c.a = fmake(c.n, 4, 1);
    c.b = fmake(c.n, 2, 2);
    c.out = fzero(c.n);
    c.r = fmake(c.n, 1, 3);
    swi_f(&c);
    for (size_t i = 0; i < c.n; i++) {
        double a = c.a[i];
        assert_true(fabs(c.out[i] - a / (1 + exp(-a)) * c.b[i]) < 1e-5);
    }
    float *da = fzero(c.n), *db = fzero(c.n);
    cr_swiglu_backward(da, db, c.r, c.a, c.b, c.n);
    assert_true(cr_test_gradcheck("swiglu da", swi_f, &c, c.a, da, c.n, 1e-3, FD_TOL, NULL));
    assert_true(cr_test_gradcheck("swiglu db", swi_f, &c, c.b, db, c.n, 1e-3, FD_TOL, NULL));
    free(c.a), free(c.b), free(c.out), free(c.r), free(da), free(db);
}

/* ---- cross-entropy ------------------------------------------------------------------ */
typedef struct {
    int N, V;
    float *logits;
    int32_t *tg;
} xent_ctx;

static double xent_f(void *p) {
    xent_ctx *c = p;
    int nv = 0;
    return cr_xent_forward(NULL, c->logits, c->tg, c->N, c->V, &nv);
}

static void test_xent_grad(void **state) {
    (void)state;
    int32_t tg[5] = {3, -1, 0, 6, -1};
    xent_ctx c = {.N = 5, .V = 7, .tg = tg};
    size_t n = (size_t)c.N * c.V;
    c.logits = fmake(n, 3, 1);
    float lse[5];
    int nv = -1;
    double L = cr_xent_forward(lse, c.logits, tg, c.N, c.V, &nv);
    assert_int_equal(nv, 3);
    double ref = 0;
    for (int r = 0; r < c.N; r++) {
        double s = 0;
        for (int j = 0; j < c.V; j++) s += exp(c.logits[r * c.V + j]);
        assert_true(fabs(lse[r] - log(s)) < 1e-5);
        if (tg[r] >= 0) ref += log(s) - c.logits[r * c.V + tg[r]];
    }
    assert_true(fabs(L - ref) < 1e-5);
    assert_true(fabs(xent_f(&c) - ref) < 1e-5);
    float *d = fzero(n);
    cr_xent_backward(d, lse, c.logits, tg, c.N, c.V, 1.0f);
    for (int j = 0; j < c.V; j++) assert_true(d[1 * c.V + j] == 0.0f); /* ignored row */
    assert_true(cr_test_gradcheck("xent", xent_f, &c, c.logits, d, n, 1e-3, FD_TOL, NULL));
    free(c.logits), free(d);
}

/* ---- RoPE ---------------------------------------------------------------------------- */
static void test_rope(void **state) {
    (void)state;
    enum { B = 2, T = 3, NH = 2, HD = 6, LD = 15 };
    size_t n = (size_t)B * T * LD;
    float *x = fmake(n, 1, 1), *y = fzero(n);
    memcpy(y, x, n * sizeof(float));
    int pos0 = 5;
    cr_rope_forward(y, B, T, NH, HD, LD, pos0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < HD / 2; i++) {
                    size_t o = ((size_t)b * T + t) * LD + (size_t)h * HD + 2 * i;
                    double th = (pos0 + t) * pow(10000.0, -2.0 * i / HD);
                    double e0 = x[o] * cos(th) - x[o + 1] * sin(th);
                    double e1 = x[o] * sin(th) + x[o + 1] * cos(th);
                    assert_true(fabs(y[o] - e0) < 1e-5 && fabs(y[o + 1] - e1) < 1e-5);
                }
    /* columns past NH*HD are untouched */
    for (size_t r = 0; r < (size_t)B * T; r++)
        for (int j = NH * HD; j < LD; j++) assert_true(y[r * LD + j] == x[r * LD + j]);
    /* backward is the inverse rotation: <R x, g> = <x, R^T g> */
    float *g = fmake(n, 1, 2), *gt = fzero(n);
    memcpy(gt, g, n * sizeof(float));
    cr_rope_backward(gt, B, T, NH, HD, LD, pos0);
    assert_true(fabs(dotd(y, g, n) - dotd(x, gt, n)) < 1e-4);
    cr_rope_forward(gt, B, T, NH, HD, LD, pos0);
    assert_true(cr_test_close("rope round trip", gt, g, n, 1e-5, 1e-5));
    free(x), free(y), free(g), free(gt);
}

/* ---- attention ------------------------------------------------------------------------
 * A fused qkv row (q of NH heads, k and v of NKV heads, then 2 padding
 * columns) exercises the strides and grouped-query heads together. */
enum { AB = 2, AT = 5, ANH = 4, ANKV = 2, AHD = 3 };
#define AC (ANH * AHD)
#define AKV (ANKV * AHD)
#define ALD (AC + 2 * AKV + 2)

typedef struct {
    float *qkv, *out, *att, *r;
} att_ctx;

static double att_f(void *p) {
    att_ctx *c = p;
    cr_attention_forward(c->out, c->att, c->qkv, c->qkv + AC, c->qkv + AC + AKV, AB, AT, AT, 0,
                         ANH, ANKV, AHD, ALD, ALD);
    return dotd(c->out, c->r, (size_t)AB * AT * AC);
}

static void naive_attention(float *out, const float *qkv) {
    int G = ANH / ANKV;
    for (int b = 0; b < AB; b++)
        for (int h = 0; h < ANH; h++)
            for (int t = 0; t < AT; t++) {
                double s[AT], mx = -1e30, sum = 0;
                const float *qr = qkv + ((size_t)b * AT + t) * ALD + h * AHD;
                for (int j = 0; j <= t; j++) {
                    const float *kr = qkv + ((size_t)b * AT + j) * ALD + AC + (h / G) * AHD;
                    s[j] = 0;
                    for (int d = 0; d < AHD; d++) s[j] += (double)qr[d] * kr[d];
                    s[j] /= sqrt((double)AHD);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                for (int d = 0; d < AHD; d++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++)
                        o += s[j] / sum *
                             qkv[((size_t)b * AT + j) * ALD + AC + AKV + (h / G) * AHD + d];
                    out[((size_t)b * AT + t) * AC + h * AHD + d] = (float)o;
                }
            }
}

static void test_attention(void **state) {
    (void)state;
    size_t nq = (size_t)AB * AT * ALD, no = (size_t)AB * AT * AC;
    size_t na = (size_t)AB * ANH * AT * AT;
    att_ctx c;
    c.qkv = fmake(nq, 1.5f, 1);
    c.out = fzero(no);
    c.att = fzero(na);
    c.r = fmake(no, 1, 2);
    att_f(&c);
    float *ref = fzero(no);
    naive_attention(ref, c.qkv);
    assert_true(cr_test_close("attention vs naive", c.out, ref, no, 1e-6, 1e-5));
    /* probabilities: rows sum to 1, the future is exactly 0 */
    for (size_t r = 0; r < (size_t)AB * ANH * AT; r++) {
        int t = (int)(r % AT);
        double s = 0;
        for (int j = 0; j < AT; j++) {
            if (j > t) assert_true(c.att[r * AT + j] == 0.0f);
            s += c.att[r * AT + j];
        }
        assert_true(fabs(s - 1) < 1e-6);
    }
    /* gradients into one fused buffer, padding columns must stay 0 */
    float *dqkv = fzero(nq), *scratch = fzero(na);
    cr_attention_backward(dqkv, dqkv + AC, dqkv + AC + AKV, scratch, c.r, c.att, c.qkv,
                          c.qkv + AC, c.qkv + AC + AKV, AB, AT, ANH, ANKV, AHD, ALD, ALD);
    uint8_t *skip = calloc(nq, 1);
    for (size_t r = 0; r < (size_t)AB * AT; r++)
        for (int j = AC + 2 * AKV; j < ALD; j++) {
            assert_true(dqkv[r * ALD + j] == 0.0f);
            skip[r * ALD + j] = 1;
        }
    assert_true(cr_test_gradcheck("attention dqkv", att_f, &c, c.qkv, dqkv, nq, FD_H, FD_TOL,
                                  skip));
    /* NULL gradients are skipped, the others unchanged */
    float *dv_only = fzero(nq);
    cr_attention_backward(NULL, NULL, dv_only + AC + AKV, scratch, c.r, c.att, c.qkv, c.qkv + AC,
                          c.qkv + AC + AKV, AB, AT, ANH, ANKV, AHD, ALD, ALD);
    for (size_t r = 0; r < (size_t)AB * AT; r++)
        for (int j = 0; j < ALD; j++) {
            float want = (j >= AC + AKV && j < AC + 2 * AKV) ? dqkv[r * ALD + j] : 0.0f;
            assert_true(dv_only[r * ALD + j] == want);
        }
    free(c.qkv), free(c.out), free(c.att), free(c.r), free(ref), free(dqkv), free(scratch),
        free(skip), free(dv_only);
}

/* Decode: feeding tokens one at a time against a cache (q of one token,
 * k/v buffer of capacity Tkv > T) gives the rows of the full forward, and
 * so does a prefill of 2 tokens followed by single steps. */
static void test_attention_decode(void **state) {
    (void)state;
    enum { CAP = 8 };
    size_t nq = (size_t)AB * AT * ALD, no = (size_t)AB * AT * AC;
    float *qkv = fmake(nq, 1.5f, 7);
    float *full = fzero(no), *att = fzero((size_t)AB * ANH * AT * AT);
    cr_attention_forward(full, att, qkv, qkv + AC, qkv + AC + AKV, AB, AT, AT, 0, ANH, ANKV, AHD,
                         ALD, ALD);
    /* caches (B, CAP, KV) and a packed q of B rows */
    float *kc = fzero((size_t)AB * CAP * AKV), *vc = fzero((size_t)AB * CAP * AKV);
    float *q1 = fzero((size_t)AB * 2 * AC), *o1 = fzero((size_t)AB * 2 * AC);
    float *a1 = fzero((size_t)AB * ANH * 2 * CAP);
    int pos = 0;
    while (pos < AT) {
        int n = pos == 0 ? 2 : 1; /* a 2-token prefill, then steps */
        for (int b = 0; b < AB; b++)
            for (int t = 0; t < n; t++) {
                const float *row = qkv + ((size_t)b * AT + pos + t) * ALD;
                memcpy(q1 + ((size_t)b * n + t) * AC, row, AC * sizeof(float));
                memcpy(kc + ((size_t)b * CAP + pos + t) * AKV, row + AC, AKV * sizeof(float));
                memcpy(vc + ((size_t)b * CAP + pos + t) * AKV, row + AC + AKV,
                       AKV * sizeof(float));
            }
        cr_attention_forward(o1, a1, q1, kc, vc, AB, n, CAP, pos, ANH, ANKV, AHD, AC, AKV);
        for (int b = 0; b < AB; b++)
            for (int t = 0; t < n; t++)
                assert_true(cr_test_close("decode step", o1 + ((size_t)b * n + t) * AC,
                                          full + ((size_t)b * AT + pos + t) * AC, AC, 1e-6,
                                          1e-5));
        pos += n;
    }
    free(qkv), free(full), free(att), free(kc), free(vc), free(q1), free(o1), free(a1);
}

/* RoPE + attention gradient together (the order the decoder runs them). */
static void test_rope_attention_grad(void **state) {
    (void)state;
    /* head dim must be even for RoPE: a separate small layout */
    enum { B = 1, T = 4, NH = 2, NKV = 1, HD = 4, C = NH * HD, KV = NKV * HD, LD = C + 2 * KV };
    size_t nq = (size_t)B * T * LD, no = (size_t)B * T * C;
    float *raw = fmake(nq, 1, 11), *qkv = fzero(nq), *out = fzero(no);
    float *att = fzero((size_t)B * NH * T * T), *r = fmake(no, 1, 12);
    float *dqkv = fzero(nq), *scratch = fzero((size_t)B * NH * T * T);
    /* analytic: forward, attention backward, inverse rotation on q and k */
    memcpy(qkv, raw, nq * sizeof(float));
    cr_rope_forward(qkv, B, T, NH, HD, LD, 0);
    cr_rope_forward(qkv + C, B, T, NKV, HD, LD, 0);
    cr_attention_forward(out, att, qkv, qkv + C, qkv + C + KV, B, T, T, 0, NH, NKV, HD, LD, LD);
    cr_attention_backward(dqkv, dqkv + C, dqkv + C + KV, scratch, r, att, qkv, qkv + C,
                          qkv + C + KV, B, T, NH, NKV, HD, LD, LD);
    cr_rope_backward(dqkv, B, T, NH, HD, LD, 0);
    cr_rope_backward(dqkv + C, B, T, NKV, HD, LD, 0);
    /* numeric, element by element */
    int ok = 1;
    for (size_t i = 0; i < nq; i++) {
        double f[2];
        for (int s = 0; s < 2; s++) {
            memcpy(qkv, raw, nq * sizeof(float));
            qkv[i] += (float)(s ? -FD_H : FD_H);
            cr_rope_forward(qkv, B, T, NH, HD, LD, 0);
            cr_rope_forward(qkv + C, B, T, NKV, HD, LD, 0);
            cr_attention_forward(out, att, qkv, qkv + C, qkv + C + KV, B, T, T, 0, NH, NKV, HD,
                                 LD, LD);
            f[s] = dotd(out, r, no);
        }
        double num = (f[0] - f[1]) / (2 * FD_H);
        double err = fabs(num - dqkv[i]) / (1e-3 + fabs(num) + fabs(dqkv[i]));
        if (!(err <= FD_TOL)) {
            fprintf(stderr, "rope+attention grad[%zu]: analytic %g numeric %g\n", i,
                    (double)dqkv[i], num);
            ok = 0;
        }
    }
    assert_true(ok);
    free(raw), free(qkv), free(out), free(att), free(r), free(dqkv), free(scratch);
}

/* A shape big enough for the parallel loops: 1 and 2 threads give the
 * same bits, forward and backward (each (b, h) or (b, g) block is computed
 * by one thread in a fixed order). */
static void run_big(float *out, float *dqkv, const float *qkv, const float *r, float *att,
                    float *scratch, int threads) {
    enum { B = 2, T = 24, NH = 4, NKV = 2, HD = 16, C = NH * HD, KV = NKV * HD, LD = C + 2 * KV };
    cr_set_threads(threads);
    cr_attention_forward(out, att, qkv, qkv + C, qkv + C + KV, B, T, T, 0, NH, NKV, HD, LD, LD);
    memset(dqkv, 0, (size_t)B * T * LD * sizeof(float));
    cr_attention_backward(dqkv, dqkv + C, dqkv + C + KV, scratch, r, att, qkv, qkv + C,
                          qkv + C + KV, B, T, NH, NKV, HD, LD, LD);
    cr_rope_backward(dqkv, B, T, NH, HD, LD, 0);
}

static void test_attention_threads(void **state) {
    (void)state;
    size_t nq = 2 * 24 * (64 + 64), no = 2 * 24 * 64, na = 2 * 4 * 24 * 24;
    float *qkv = fmake(nq, 1, 21), *r = fmake(no, 1, 22);
    float *o1 = fzero(no), *o2 = fzero(no), *d1 = fzero(nq), *d2 = fzero(nq);
    float *att = fzero(na), *sc = fzero(na);
    int saved = cr_get_threads();
    run_big(o1, d1, qkv, r, att, sc, 1);
    run_big(o2, d2, qkv, r, att, sc, 2);
    cr_set_threads(saved);
    assert_memory_equal(o1, o2, no * sizeof(float));
    assert_memory_equal(d1, d2, nq * sizeof(float));
    free(qkv), free(r), free(o1), free(o2), free(d1), free(d2), free(att), free(sc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm_grad),    cmocka_unit_test(test_swiglu_grad),
        cmocka_unit_test(test_xent_grad),       cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),       cmocka_unit_test(test_attention_decode),
        cmocka_unit_test(test_rope_attention_grad), cmocka_unit_test(test_attention_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
