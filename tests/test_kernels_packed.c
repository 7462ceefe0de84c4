/*
 * test_kernels_packed.c - the inference linear on packed weights: the same
 * bits as cr_linear_forward_rows (+ cr_relu_forward) on every shape class
 * (edge rows and columns, K across several blocks, one row, one column,
 * narrow layers of 1 to 16 outputs, tiles of at most four rows,
 * strided input and output whose padding is NaN), at one and two threads;
 * rows that do not depend on their batch; the packed layout itself; and
 * a check against the naive reference so a shared mistake cannot hide.
 */
#include "util/testutil.h"

#include "../src/kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *make_mat(int rows, int cols, int ld, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)rows * ld + 1);
    for (int r = 0; r < rows; r++) {
        cr_test_fill(x + (size_t)r * ld, (size_t)cols, 1.0f, seed + (uint64_t)r);
        for (int c = cols; c < ld; c++) x[(size_t)r * ld + c] = NAN;
    }
    return x;
}

static float *packed(const float *w, int OC, int C) {
    size_t n = cr_linear_pack_floats(OC, C);
    float *wp = cr_alloc(n * sizeof(float) + 1);
    cr_linear_pack(wp, w, OC, C);
    return wp;
}

/* Equal as bit patterns, padding included (NaN == NaN here). */
static void assert_same_rows(const float *a, const float *b, int B, int OC, int ldo) {
    assert_memory_equal(a, b, sizeof(float) * ((size_t)(B - 1) * ldo + OC));
}

static const struct { int B, C, OC; } shapes[] = {
    {1, 1, 1},     {1, 429, 1024}, {5, 7, 3},     {12, 32, 32},  {13, 33, 33},
    {150, 256, 64}, {150, 257, 65}, {37, 600, 4}, {1000, 64, 1}, {300, 429, 1024},
    {29, 513, 100},
    /* narrow layers (a lane per row): every width to 16, row counts around
     * the row groups, K over several blocks and not a multiple of 16 */
    {200, 429, 12}, {33, 300, 16}, {17, 70, 9},  {100, 64, 2},  {130, 257, 5},
    {49, 600, 6},   {97, 31, 7},   {16, 16, 8},  {65, 40, 10},  {34, 19, 11},
    {18, 33, 13},   {3, 50, 14},   {40, 17, 15}, {128, 3, 3},
    /* tiles of at most 4 rows */
    {4, 20, 32},    {28, 100, 70},
};

static void run_shape(int B, int C, int OC, int with_bias, int relu, int pad) {
    int ldi = C + pad, ldo = OC + pad;
    float *x = make_mat(B, C, ldi, 11), *w = make_mat(OC, C, C, 12);
    float *bias = with_bias ? make_mat(1, OC, OC, 13) : NULL;
    float *ref = make_mat(B, OC, ldo, 14), *got = malloc(sizeof(float) * (size_t)B * ldo + 1);
    memcpy(got, ref, sizeof(float) * (size_t)B * ldo);
    float *wp = packed(w, OC, C);
    int saved = cr_get_threads();
    cr_set_threads(1);
    cr_linear_forward_rows(ref, x, w, bias, B, C, OC, ldi, ldo);
    if (relu)
        for (int i = 0; i < B; i++) cr_relu_forward(ref + (size_t)i * ldo, ref + (size_t)i * ldo, (size_t)OC);
    for (int t = 1; t <= 2; t++) {
        cr_set_threads(t);
        cr_linear_forward_packed(got, x, wp, bias, B, C, OC, ldi, ldo, relu);
        assert_same_rows(got, ref, B, OC, ldo);
    }
    /* and against the reference in double, loosely: both paths above could
     * share a mistake (a wrong sliver, a dropped K block) */
    for (int i = 0; i < B; i += 1 + B / 7)
        for (int j = 0; j < OC; j += 1 + OC / 9) {
            double s = bias ? bias[j] : 0.0;
            for (int k = 0; k < C; k++) s += (double)x[(size_t)i * ldi + k] * w[(size_t)j * C + k];
            if (relu && s < 0) s = 0;
            assert_true(fabs(got[(size_t)i * ldo + j] - s) <= 1e-4 * (1.0 + fabs(s)) + 1e-5 * C);
        }
    cr_set_threads(saved);
    cr_free(wp);
    free(x);
    free(w);
    free(bias);
    free(ref);
    free(got);
}

static void test_matches_rows_path(void **state) {
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int v = 0; v < 4; v++)
            run_shape(shapes[s].B, shapes[s].C, shapes[s].OC, v & 1, (v >> 1) & 1, s % 2 ? 3 : 0);
}

/* Scored in chunks of 1, 7, 13 or all 200 rows: the same bits. */
static void test_batch_independent(void **state) {
    (void)state;
    const int B = 200, C = 300, OC = 70;
    float *x = make_mat(B, C, C, 21), *w = make_mat(OC, C, C, 22), *b = make_mat(1, OC, OC, 23);
    float *wp = packed(w, OC, C);
    float *ref = malloc(sizeof(float) * (size_t)B * OC), *got = malloc(sizeof(float) * (size_t)B * OC);
    int saved = cr_get_threads();
    cr_set_threads(2);
    cr_linear_forward_packed(ref, x, wp, b, B, C, OC, C, OC, 1);
    static const int chunks[] = {1, 7, 13, 200};
    for (int t = 1; t <= 2; t++)
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            cr_set_threads(t);
            for (int i0 = 0; i0 < B; i0 += chunks[c]) {
                int m = B - i0 < chunks[c] ? B - i0 : chunks[c];
                cr_linear_forward_packed(got + (size_t)i0 * OC, x + (size_t)i0 * C, wp, b, m, C,
                                         OC, C, OC, 1);
            }
            assert_memory_equal(got, ref, sizeof(float) * (size_t)B * OC);
        }
    cr_set_threads(saved);
    cr_free(wp);
    free(x);
    free(w);
    free(b);
    free(ref);
    free(got);
}

/* The layout: sliver s, input k, lane j holds w[s*NR + j][k]; zero past OC. */
static void test_layout(void **state) {
    (void)state;
    const int NR = cr_linear_pack_width(), OC = NR + 3, C = 5;
    assert_int_equal(cr_linear_pack_floats(OC, C), (size_t)2 * NR * C);
    assert_int_equal(cr_linear_pack_floats(0, C), 0);
    float *w = make_mat(OC, C, C, 31), *wp = packed(w, OC, C);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < C; k++)
            for (int j = 0; j < NR; j++) {
                int o = s * NR + j;
                float want = o < OC ? w[(size_t)o * C + k] : 0.0f;
                assert_true(wp[((size_t)s * C + k) * NR + j] == want);
            }
    cr_free(wp);
    free(w);
}

/* No inputs (C = 0): the bias, through ReLU; B or OC = 0 writes nothing. */
static void test_degenerate(void **state) {
    (void)state;
    float b[3] = {-1.0f, 0.5f, 2.0f}, out[6], wp[1] = {0};
    float x[1] = {0};
    cr_linear_forward_packed(out, x, wp, b, 2, 0, 3, 0, 3, 1);
    for (int i = 0; i < 2; i++) {
        assert_true(out[i * 3] == 0.0f && out[i * 3 + 1] == 0.5f && out[i * 3 + 2] == 2.0f);
    }
    cr_linear_forward_packed(out, x, wp, NULL, 2, 0, 3, 0, 3, 0);
    for (int i = 0; i < 6; i++) assert_true(out[i] == 0.0f);
    out[0] = 7.0f;
    cr_linear_forward_packed(out, x, wp, b, 0, 4, 3, 4, 3, 0);
    cr_linear_forward_packed(out, x, wp, b, 2, 4, 0, 4, 3, 0);
    assert_true(out[0] == 7.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_rows_path),
        cmocka_unit_test(test_batch_independent),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
