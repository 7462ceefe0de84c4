/*
 * test_gemm_bf16.c - the bfloat16 product for mixed-precision training:
 * the vector rounding inside the kernel equals cr_bf16_from_f32's (ties to
 * even, overflow to inf); every transpose case, edge and odd
 * shapes, K across blocks and odd K, alpha/beta and padded strides (padding
 * NaN) against a double reference on the *rounded* operands (bf16 x bf16 is
 * exact in fp32, so only the order of fp32 sums differs); the error against
 * the unrounded product is bf16-sized and not zero (the operands really are
 * rounded); 1 and 2 threads give the same bits; and the per-thread
 * precision switch of cr_sgemm routes large products only. Without bf16
 * products in the kernel set, only the switch runs; the rest say skipped.
 */
#include "util/testutil.h"

#include "../src/kernels/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Without AVX512_BF16 in the kernel set (the CPU lacks it, or CROSSREC_ISA
 * forces a lower set) cr_sgemm_bf16 is the fp32 product: a claim about bf16
 * products has nothing to check, so its test says "skipped", not "passed".
 * (The fallback itself is checked by test_precision_switch here and per
 * level by test_isa.) */
static void need_bf16_products(void) {
    if (cr_sgemm_bf16_native()) return;
    print_message("kernel set %s has no bf16 products (AVX512_BF16): skipped\n",
                  cr_sgemm_portable_isa());
    skip();
}

/* One value rounded to bf16 and back (kernels.h's rounding). */
static float rnd(float x) { return cr_bf16_to_f32(cr_bf16_from_f32(x)); }

/* A (M x 1) times a row of ones: C[i][j] = bf16(A[i]) exactly, the vector
 * conversion inside the kernel against the scalar one. */
static void test_round_in_kernel(void **state) {
    (void)state;
    need_bf16_products();
    enum { M = 40, N = 33 };
    float a[M], ones[N], c[M * N];
    cr_test_fill(a, M, 3.0f, 7);
    a[0] = 1.0f + 0x1p-8f;
    a[1] = 1.0f + 3 * 0x1p-8f;
    a[2] = -1e30f;
    a[3] = 65504.0f;
    a[4] = 3.4e38f;
    for (int j = 0; j < N; j++) ones[j] = 1.0f;
    for (int ta = 0; ta < 2; ta++) {
        cr_sgemm_bf16(ta, 0, M, N, 1, 1.0f, a, ta ? M : 1, ones, N, 0.0f, c, N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                assert_true(c[i * N + j] == rnd(a[i]));
            }
    }
}

static float *make(int rows, int cols, int ld, uint64_t seed) {
    float *x = malloc(sizeof(float) * ((size_t)rows * ld + 1));
    for (int r = 0; r < rows; r++) {
        cr_test_fill(x + (size_t)r * ld, (size_t)cols, 1.0f, seed + (uint64_t)r);
        for (int c = cols; c < ld; c++) x[(size_t)r * ld + c] = NAN;
    }
    return x;
}

/* C = alpha op(A) op(B) + beta C in double, on operands rounded (or not). */
static double ref_elem(int ta, int tb, int i, int j, int K, const float *A, int lda,
                       const float *B, int ldb, int round, double *mag) {
    double s = 0, m = 0;
    for (int p = 0; p < K; p++) {
        float a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
        float b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
        if (round) {
            a = rnd(a);
            b = rnd(b);
        }
        s += (double)a * b;
        m += fabs((double)a * b);
    }
    *mag = m;
    return s;
}

static const struct { int M, N, K; } shapes[] = {
    {1, 1, 1},     {13, 33, 37},  {12, 32, 512}, {150, 70, 600}, {5, 100, 1},
    {40, 31, 1025}, {200, 257, 64}, {17, 16, 3},  {145, 300, 513},
};

static void run_case(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    float *A = make(ta ? K : M, ta ? M : K, lda, 100 + (uint64_t)M);
    float *B = make(tb ? N : K, tb ? K : N, ldb, 200 + (uint64_t)N);
    float *C = make(M, N, ldc, 300), *C0 = make(M, N, ldc, 300);
    cr_sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst_rounded = 0, worst_exact = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double mag;
            double c0 = beta == 0.0f ? 0.0 : (double)beta * C0[(size_t)i * ldc + j];
            double want = alpha * ref_elem(ta, tb, i, j, K, A, lda, B, ldb, 1, &mag) + c0;
            double got = C[(size_t)i * ldc + j];
            double scale = fabs(alpha) * mag + fabs(c0) + 1e-30;
            double err = fabs(got - want) / scale;
            if (err > worst_rounded) worst_rounded = err;
            double mag2;
            double exact = alpha * ref_elem(ta, tb, i, j, K, A, lda, B, ldb, 0, &mag2) + c0;
            double err2 = fabs(got - exact) / scale;
            if (err2 > worst_exact) worst_exact = err2;
        }
        for (int j = N; j < ldc; j++) assert_true(isnan(C[(size_t)i * ldc + j])); /* padding */
    }
    /* fp32 sums of exact products: a few ulp of the magnitude */
    if (worst_rounded > 4e-7 * (1 + sqrt((double)K)))
        fail_msg("ta %d tb %d %dx%dx%d: error %.3g against the rounded operands", ta, tb, M, N,
                 K, worst_rounded);
    /* against the unrounded product: at most two bf16 roundings per term */
    assert_true(worst_exact <= 2 * 0x1p-8 + 1e-6);
    if (K > 1) assert_true(worst_exact > 1e-5);
    free(A);
    free(B);
    free(C);
    free(C0);
}

static void test_against_reference(void **state) {
    (void)state;
    need_bf16_products();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
            run_case(t & 1, t >> 1, M, N, K, 1.0f, 0.0f, 0);
            run_case(t & 1, t >> 1, M, N, K, -0.5f, 1.0f, 3);
            run_case(t & 1, t >> 1, M, N, K, 2.0f, 0.25f, s % 2);
        }
}

static void test_threads_same_bits(void **state) {
    (void)state;
    need_bf16_products();
    const int M = 300, N = 260, K = 700;
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        float *A = make(ta ? K : M, ta ? M : K, ta ? M : K, 1);
        float *B = make(tb ? N : K, tb ? K : N, tb ? K : N, 2);
        float *c1 = calloc((size_t)M * N, sizeof(float)), *c2 = calloc((size_t)M * N, sizeof(float));
        int saved = cr_get_threads();
        cr_set_threads(1);
        cr_sgemm_bf16(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, c1, N);
        cr_set_threads(2);
        cr_sgemm_bf16(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, c2, N);
        cr_set_threads(saved);
        assert_memory_equal(c1, c2, sizeof(float) * (size_t)M * N);
        free(A);
        free(B);
        free(c1);
        free(c2);
    }
}

static void *other_thread(void *arg) {
    *(int *)arg = (int)cr_sgemm_get_precision();
    return NULL;
}

/* cr_sgemm under BF16: large products are cr_sgemm_bf16's bits, narrow
 * ones (a 4-wide gate) stay fp32, and the setting belongs to this thread. */
static void test_precision_switch(void **state) {
    (void)state;
    const int M = 128, N = 96, K = 200;
    float *A = make(M, K, K, 5), *B = make(N, K, K, 6);
    float *want = calloc((size_t)M * N, sizeof(float)), *got = calloc((size_t)M * N, sizeof(float));
    float *f32 = calloc((size_t)M * N, sizeof(float));
    assert_int_equal(cr_sgemm_get_precision(), CR_GEMM_FP32);
    /* without bf16 products the precision changes nothing: cr_sgemm's fp32 */
    if (cr_sgemm_bf16_native()) cr_sgemm_bf16(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, want, N);
    else cr_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, want, N);
    cr_sgemm(0, 1, M, 4, K, 1.0f, A, K, B, K, 0.0f, f32, 4);
    cr_sgemm_set_precision(CR_GEMM_BF16);
    int seen = -1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, &seen), 0);
    pthread_join(th, NULL);
    assert_int_equal(seen, CR_GEMM_FP32);
    cr_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, got, N);
    assert_memory_equal(got, want, sizeof(float) * (size_t)M * N);
    cr_sgemm(0, 1, M, 4, K, 1.0f, A, K, B, K, 0.0f, got, 4);
    assert_memory_equal(got, f32, sizeof(float) * (size_t)M * 4);
    cr_sgemm_set_precision(CR_GEMM_FP32);
    free(A);
    free(B);
    free(want);
    free(got);
    free(f32);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_in_kernel),
        cmocka_unit_test(test_against_reference), cmocka_unit_test(test_threads_same_bits),
        cmocka_unit_test(test_precision_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
