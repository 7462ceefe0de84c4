/*
 * test_kernels_bf16.c - bfloat16 weights (linear_bf16.c): rounding float to
 * bf16 (nearest, ties to even, NaN, overflow, the exact way back), then
 * cr_linear_forward_bf16 against a scalar double reference over the same
 * rounded weights on odd shapes (one row and several, C not a multiple of
 * any vector width, bias or none, strided input and output whose padding
 * is NaN or a sentinel), rows that give the same bits alone as in a batch,
 * and one thread against two.
 */
#include "util/testutil.h"

#include "../src/kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_round(void **state) {
    (void)state;
    assert_int_equal(cr_bf16_from_f32(1.0f), 0x3f80);
    assert_int_equal(cr_bf16_from_f32(-2.0f), 0xc000);
    assert_int_equal(cr_bf16_from_f32(0.0f), 0x0000);
    /* halfway cases go to the even neighbour; above halfway rounds up */
    assert_int_equal(cr_bf16_from_f32(bits_f(0x3f808000u)), 0x3f80);
    assert_int_equal(cr_bf16_from_f32(bits_f(0x3f818000u)), 0x3f82);
    assert_int_equal(cr_bf16_from_f32(bits_f(0x3f808001u)), 0x3f81);
    assert_int_equal(cr_bf16_from_f32(bits_f(0x3f807fffu)), 0x3f80);
    /* the largest float rounds past bf16's largest to infinity; infinities stay */
    assert_int_equal(cr_bf16_from_f32(bits_f(0x7f7fffffu)), 0x7f80);
    assert_int_equal(cr_bf16_from_f32(INFINITY), 0x7f80);
    assert_int_equal(cr_bf16_from_f32(-INFINITY), 0xff80);
    /* a NaN whose payload sits only in the dropped bits stays a NaN */
    assert_true(isnan(cr_bf16_to_f32(cr_bf16_from_f32(bits_f(0x7f800001u)))));
    assert_true(isnan(cr_bf16_to_f32(cr_bf16_from_f32(NAN))));
    /* relative error at most 2^-8 (8 significant bits); the way back is exact */
    float x[1000];
    uint16_t h[1000];
    cr_test_fill(x, 1000, 3.0f, 9);
    cr_bf16_round(h, x, 1000);
    for (int i = 0; i < 1000; i++) {
        float y = cr_bf16_to_f32(h[i]);
        assert_true(fabs((double)y - x[i]) <= ldexp(fabs((double)x[i]), -8));
        assert_int_equal(cr_bf16_from_f32(y), h[i]);
    }
}

/* rows x cols in a buffer of stride ld, padding NaN */
static float *make_mat(int rows, int cols, int ld, uint64_t seed) {
    float *x = malloc(sizeof(float) * ((size_t)rows * ld + 1));
    for (int r = 0; r < rows; r++) {
        cr_test_fill(x + (size_t)r * ld, (size_t)cols, 1.0f, seed + (uint64_t)r);
        for (int c = cols; c < ld; c++) x[(size_t)r * ld + c] = NAN;
    }
    return x;
}

/* One shape: the kernel against sum_k x * widen(w) + b in double. */
static int check_shape(int B, int C, int OC, int bias, int pad) {
    int ldi = C + pad, ldo = OC + pad;
    float *x = make_mat(B, C, ldi, 100), *w = make_mat(OC, C, C, 200);
    float *b = make_mat(1, OC, OC, 300);
    uint16_t *wb = malloc(sizeof(uint16_t) * ((size_t)OC * C + 1));
    cr_bf16_round(wb, w, (size_t)OC * C);
    float *y = malloc(sizeof(float) * (size_t)B * ldo);
    for (size_t i = 0; i < (size_t)B * ldo; i++) y[i] = -777.0f;
    cr_linear_forward_bf16(y, x, wb, bias ? b : NULL, B, C, OC, ldi, ldo);
    int ok = 1;
    char what[96];
    snprintf(what, sizeof what, "bf16 linear B=%d C=%d OC=%d bias=%d pad=%d", B, C, OC, bias,
             pad);
    float *ref = malloc(sizeof(float) * (size_t)OC);
    for (int i = 0; i < B && ok; i++) {
        for (int j = 0; j < OC; j++) {
            double s = bias ? b[j] : 0.0;
            for (int k = 0; k < C; k++)
                s += (double)x[(size_t)i * ldi + k] * cr_bf16_to_f32(wb[(size_t)j * C + k]);
            ref[j] = (float)s;
        }
        /* float sums of C products of values in (-1, 1) */
        ok = cr_test_close(what, y + (size_t)i * ldo, ref, (size_t)OC, 4e-7 * (C + 8) + 1e-6,
                           1e-5);
        for (int j = OC; j < ldo; j++) ok &= y[(size_t)i * ldo + j] == -777.0f;
    }
    /* each row alone: the same bits */
    float *one = malloc(sizeof(float) * (size_t)OC);
    for (int i = 0; i < B && ok; i += 3) {
        cr_linear_forward_bf16(one, x + (size_t)i * ldi, wb, bias ? b : NULL, 1, C, OC, C, OC);
        ok &= memcmp(one, y + (size_t)i * ldo, sizeof(float) * (size_t)OC) == 0;
    }
    free(x), free(w), free(b), free(wb), free(y), free(ref), free(one);
    return ok;
}

static void test_linear(void **state) {
    (void)state;
    static const int Bs[] = {1, 2, 3, 5, 9}, Cs[] = {1, 7, 16, 17, 63, 65, 100, 301};
    static const int OCs[] = {1, 5, 70, 130};
    int ok = 1;
    for (size_t a = 0; a < sizeof Bs / sizeof Bs[0]; a++)
        for (size_t c = 0; c < sizeof Cs / sizeof Cs[0]; c++)
            for (size_t o = 0; o < sizeof OCs / sizeof OCs[0]; o++)
                ok &= check_shape(Bs[a], Cs[c], OCs[o], (int)(a + c + o) % 2, (int)(c % 3));
    assert_true(ok);
}

/* Threads split the weight rows, never a sum: 1 and 2 threads agree bit
 * for bit, on one row (a decode step) and on many (a prefill). */
static void test_threads(void **state) {
    (void)state;
    int saved = cr_get_threads();
    static const int shapes[][3] = {{1, 300, 1000}, {37, 129, 500}};
    for (int s = 0; s < 2; s++) {
        int B = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *x = make_mat(B, C, C, 1), *w = make_mat(OC, C, C, 2);
        uint16_t *wb = malloc(sizeof(uint16_t) * (size_t)OC * C);
        cr_bf16_round(wb, w, (size_t)OC * C);
        float *y1 = calloc((size_t)B * OC, sizeof(float)), *y2 = calloc((size_t)B * OC, 4);
        cr_set_threads(1);
        cr_linear_forward_bf16(y1, x, wb, NULL, B, C, OC, C, OC);
        cr_set_threads(2);
        cr_linear_forward_bf16(y2, x, wb, NULL, B, C, OC, C, OC);
        assert_memory_equal(y1, y2, sizeof(float) * (size_t)B * OC);
        free(x), free(w), free(wb), free(y1), free(y2);
    }
    cr_set_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
