/*
 * test_kernels_loss.c - BCE-with-logits and MSE: values against closed
 * forms, stability at |z| = 100, soft labels, masks (a masked NaN label is
 * ignored), weights, finite differences of the summed loss, and backward's
 * accumulation and NULL skip.
 */
#include "util/testutil.h"

#include "../src/kernels/kernels.h"
#include "../src/kernels/isa/vmath.h"

#include <math.h>
#include <string.h>

#define FD_H 1e-2
#define FD_TOL 1e-2

/* The kernels' exp: NaN stays NaN without undefined behaviour (the
 * sanitizer build stops on the conversion it once did), infinities and
 * large values clamp, ordinary values are close to libm's. */
static void test_vexpf_edges(void **state) {
    (void)state;
    volatile float nan_in = NAN;
    assert_true(isnan(cr_vexpf(nan_in)));
    assert_true(isnan(cr_vexpf(-nan_in)));
    assert_true(isfinite(cr_vexpf(INFINITY)) && cr_vexpf(INFINITY) > 1e38f);
    assert_true(cr_vexpf(-INFINITY) >= 0.0f && cr_vexpf(-INFINITY) < 1e-37f);
    for (float x = -20.0f; x <= 20.0f; x += 0.37f)
        assert_float_equal(cr_vexpf(x), expf(x), 1e-6 * expf(x));
    /* GELU (which runs on it) keeps a NaN input NaN, its neighbours finite */
    float row[20], out[20];
    for (int i = 0; i < 20; i++) row[i] = 0.25f * (float)(i - 10);
    row[7] = NAN;
    cr_gelu_forward(out, row, 20);
    for (int i = 0; i < 20; i++) assert_true(i == 7 ? isnan(out[i]) : isfinite(out[i]));
}

static void test_bce_values(void **state) {
    (void)state;
    const float z[6] = {0.0f, 2.0f, 100.0f, 100.0f, -100.0f, -100.0f};
    const float y[6] = {1.0f, 0.25f, 1.0f, 0.0f, 1.0f, 0.0f};
    /* closed form, in double, with the textbook expression where it is safe */
    double want[6] = {log(2.0), 2.0 - 0.5 + log1p(exp(-2.0)), log1p(exp(-100.0)), 100.0,
                      100.0, log1p(exp(-100.0))};
    for (int i = 0; i < 6; i++) {
        double l = cr_bce_logits_forward(z + i, y + i, NULL, NULL, 1);
        assert_true(isfinite(l));
        assert_float_equal(l, want[i], 1e-6 * (1 + want[i]));
    }
    /* total is the sum, in double */
    double total = cr_bce_logits_forward(z, y, NULL, NULL, 6), s = 0;
    for (int i = 0; i < 6; i++) s += want[i];
    assert_float_equal(total, s, 1e-9 * s);
    /* gradients at the extremes are finite and right */
    float g[6] = {0};
    cr_bce_logits_backward(g, z, y, NULL, NULL, 6, 1.0f);
    assert_float_equal(g[0], -0.5, 1e-7);
    assert_float_equal(g[2], 0.0, 1e-30);
    assert_float_equal(g[3], 1.0, 1e-7);
    assert_float_equal(g[4], -1.0, 1e-7);
    assert_true(g[5] >= 0.0f && g[5] < 1e-40f);
    /* a soft label is a minimum at z = logit(y) */
    float zs = (float)log(0.3 / 0.7), ys = 0.3f, gs = 0;
    cr_bce_logits_backward(&gs, &zs, &ys, NULL, NULL, 1, 1.0f);
    assert_float_equal(gs, 0.0, 1e-7);
}

static void test_mask_weight(void **state) {
    (void)state;
    const float z[4] = {0.5f, -1.0f, 3.0f, 0.0f}, p[4] = {0.5f, -1.0f, 3.0f, 0.0f};
    const float y[4] = {1.0f, 0.0f, NAN, 0.7f};
    const float mask[4] = {1, 1, 0, 1}, w[4] = {2.0f, 1.0f, 5.0f, 0.5f};
    /* the masked NaN label is ignored, the weights scale each term */
    double bce = cr_bce_logits_forward(z, y, mask, w, 4);
    double bce_parts = 0;
    for (int i = 0; i < 4; i++)
        if (mask[i] != 0) bce_parts += w[i] * cr_bce_logits_forward(z + i, y + i, NULL, NULL, 1);
    assert_true(isfinite(bce));
    assert_float_equal(bce, bce_parts, 1e-12);
    double mse = cr_mse_forward(p, y, mask, w, 4);
    assert_float_equal(mse, 2 * 0.25 + 1 * 1 + 0.5 * 0.49, 1e-6);

    float g[4] = {0}, gm[4] = {0};
    cr_bce_logits_backward(g, z, y, mask, w, 4, 0.25f);
    cr_mse_backward(gm, p, y, mask, w, 4, 1.0f);
    assert_true(g[2] == 0.0f && gm[2] == 0.0f); /* masked: untouched, not NaN */
    assert_float_equal(g[0], 0.25 * 2 * (1 / (1 + exp(-0.5)) - 1), 1e-7);
    assert_float_equal(gm[3], 0.5 * 2 * (0.0 - 0.7), 1e-6);
    /* accumulates; NULL is skipped */
    float g2[4];
    memcpy(g2, g, sizeof g);
    cr_bce_logits_backward(g2, z, y, mask, w, 4, 0.25f);
    for (int i = 0; i < 4; i++) assert_float_equal(g2[i], 2 * g[i], 1e-7);
    cr_bce_logits_backward(NULL, z, y, mask, w, 4, 1.0f);
    cr_mse_backward(NULL, p, y, mask, w, 4, 1.0f);
    /* an all-masked batch contributes nothing */
    const float none[4] = {0, 0, 0, 0};
    assert_true(cr_bce_logits_forward(z, y, none, NULL, 4) == 0.0);
    assert_true(cr_mse_forward(p, y, none, NULL, 4) == 0.0);
}

typedef struct {
    int mse, B;
    float *x, *y, *mask, *w;
} loss_ctx;

static double loss_f(void *p) {
    loss_ctx *c = p;
    return c->mse ? cr_mse_forward(c->x, c->y, c->mask, c->w, c->B)
                  : cr_bce_logits_forward(c->x, c->y, c->mask, c->w, c->B);
}

static void test_loss_gradcheck(void **state) {
    (void)state;
    enum { B = 12 };
    float x[B], y[B], mask[B], w[B], g[B];
    cr_test_fill(x, B, 4, 1);
    cr_test_fill(y, B, 0.5f, 2);
    cr_test_fill(w, B, 1, 3);
    for (int i = 0; i < B; i++) {
        y[i] += 0.5f; /* soft labels in [0, 1] */
        w[i] += 1.5f;
        mask[i] = i % 4 == 3 ? 0.0f : 1.0f;
    }
    for (int mse = 0; mse < 2; mse++) {
        loss_ctx c = {.mse = mse, .B = B, .x = x, .y = y, .mask = mask, .w = w};
        memset(g, 0, sizeof g);
        if (mse) cr_mse_backward(g, x, y, mask, w, B, 1.0f);
        else cr_bce_logits_backward(g, x, y, mask, w, B, 1.0f);
        assert_true(cr_test_gradcheck(mse ? "mse" : "bce", loss_f, &c, x, g, B, FD_H, FD_TOL,
                                      NULL));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vexpf_edges),
        cmocka_unit_test(test_bce_values),
        cmocka_unit_test(test_mask_weight),
        cmocka_unit_test(test_loss_gradcheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
