/*
 * test_kernels_gemm.c - the GEMM seam: the naive reference against a hand
 * computed product, then every backend against the reference for all four
 * transpose combinations, alpha/beta variants (beta 0 overwrites NaN),
 * padded leading dimensions (padding is NaN, so reading it fails the test),
 * and sizes 1, odd and ~300. Also: thread-count independence, rows that
 * do not depend on the batch they are in (cr_sgemm_rows), and the one-row
 * product of a decode step (cr_sgemv_t) on its own.
 */
#include "util/testutil.h"

#include "../src/kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What a case runs: cr_sgemm_portable called directly, or the cr_sgemm seam
 * with a forced backend. */
enum { VIA_PORTABLE_DIRECT = -1, VIA_SMALL_DIRECT = -2, VIA_ROWS = -3 };

static void run_gemm(int via, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (via == VIA_PORTABLE_DIRECT) {
        cr_sgemm_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (via == VIA_SMALL_DIRECT) {
        cr_sgemm_small(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (via == VIA_ROWS) {
        cr_sgemm_rows(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cr_sgemm_set_backend((cr_gemm_backend)via);
    cr_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    cr_sgemm_set_backend(CR_GEMM_AUTO);
}

static void test_naive_by_hand(void **state) {
    (void)state;
    /* A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12] -> A B = [58 64; 139 154] */
    const float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {7, 8, 9, 10, 11, 12};
    const float At[6] = {1, 4, 2, 5, 3, 6}, Bt[6] = {7, 9, 11, 8, 10, 12};
    const float want[4] = {58, 64, 139, 154};
    float C[4];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int i = 0; i < 4; i++) C[i] = NAN;
            cr_sgemm_naive(ta, tb, 2, 2, 3, 1.0f, ta ? At : A, ta ? 2 : 3, tb ? Bt : B,
                           tb ? 3 : 2, 0.0f, C, 2);
            assert_memory_equal(C, want, sizeof want);
        }
    /* alpha 2, beta -1 onto C = 1 */
    for (int i = 0; i < 4; i++) C[i] = 1;
    cr_sgemm_naive(0, 0, 2, 2, 3, 2.0f, A, 3, B, 2, -1.0f, C, 2);
    const float want2[4] = {115, 127, 277, 307};
    assert_memory_equal(C, want2, sizeof want2);
}

/* Build op(A) (M,K) and op(B) (K,N) stored with the given transposes and
 * padded leading dimensions; padding holds NaN. */
static float *make_mat(int rows, int cols, int ld, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)rows * ld + 1);
    for (int r = 0; r < rows; r++) {
        cr_test_fill(x + (size_t)r * ld, (size_t)cols, 1.0f, seed + (uint64_t)r);
        for (int c = cols; c < ld; c++) x[(size_t)r * ld + c] = NAN;
    }
    return x;
}

/* One case: the chosen path against the naive reference. */
static int check_case(int via, const char *name, int ta, int tb, int M, int N, int K,
                      float alpha, float beta, int pad, int nan_c) {
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    float *A = make_mat(ar, ac, lda, 11), *B = make_mat(br, bc, ldb, 1234);
    float *C = make_mat(M, N, ldc, 99), *R = make_mat(M, N, ldc, 99);
    if (nan_c)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = R[(size_t)i * ldc + j] = NAN;
    /* sentinels in C's padding must survive */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) C[(size_t)i * ldc + j] = R[(size_t)i * ldc + j] = -777.0f;
    cr_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    run_gemm(via, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    int ok = 1;
    char what[160];
    snprintf(what, sizeof what, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d", name,
             ta, tb, M, N, K, (double)alpha, (double)beta, pad);
    /* float accumulation of K products of values in (-1, 1) */
    double atol = 4e-7 * (K + 8) * (fabs(alpha) + 1) + 1e-6;
    for (int i = 0; i < M && ok; i++) {
        ok = cr_test_close(what, C + (size_t)i * ldc, R + (size_t)i * ldc, (size_t)N, atol,
                           1e-5);
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != -777.0f) {
                fprintf(stderr, "%s: wrote padding at row %d col %d\n", what, i, j);
                ok = 0;
            }
    }
    free(A);
    free(B);
    free(C);
    free(R);
    return ok;
}

static const struct { int M, N, K; } sizes[] = {
    {1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 7}, {17, 33, 9}, {31, 16, 1},
    {64, 64, 64}, {33, 47, 129}, {129, 65, 31}, {300, 290, 310},
    /* few rows or columns: the unpacked path, serial and split by columns */
    {2, 300, 310}, {4, 1000, 300}, {700, 5, 300}, {300, 3, 50}, {8, 8, 8},
};

static void run_all(int via, const char *name) {
    int ok = 1;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = sizes[s].M, N = sizes[s].N, K = sizes[s].K;
                /* the large shapes alternate the two main cases (the naive
                 * reference dominates the test's run time) */
                int big = M * N * K > 1000000;
                if (!big || (ta + tb) % 2 == 0)
                    ok &= check_case(via, name, ta, tb, M, N, K, 1.0f, 0.0f, 0, 1);
                if (!big || (ta + tb) % 2 == 1)
                    ok &= check_case(via, name, ta, tb, M, N, K, 1.0f, 1.0f, 3, 0);
                if (M * N * K < 200000) {
                    ok &= check_case(via, name, ta, tb, M, N, K, -0.5f, 2.0f, 1, 0);
                    ok &= check_case(via, name, ta, tb, M, N, K, 2.0f, 0.0f, 5, 1);
                }
            }
    assert_true(ok);
}

static void test_portable_direct(void **state) {
    (void)state;
    run_all(VIA_PORTABLE_DIRECT, "portable");
}

static void test_small_direct(void **state) {
    (void)state;
    run_all(VIA_SMALL_DIRECT, "small");
}

static void test_seam_portable(void **state) {
    (void)state;
    run_all(CR_GEMM_PORTABLE, "seam/portable");
}

static void test_seam_blas(void **state) {
    (void)state;
    cr_sgemm_set_backend(CR_GEMM_BLAS);
    const char *name = cr_sgemm_backend_name();
    cr_sgemm_set_backend(CR_GEMM_AUTO);
    if (strcmp(name, "portable") == 0) skip(); /* built with BLAS=0 */
    run_all(CR_GEMM_BLAS, name);
}

static void test_seam_auto_and_naive(void **state) {
    (void)state;
    run_all(CR_GEMM_AUTO, "seam/auto");
    cr_sgemm_set_backend(CR_GEMM_NAIVE);
    assert_string_equal(cr_sgemm_backend_name(), "naive");
    cr_sgemm_set_backend(CR_GEMM_AUTO);
    assert_true(check_case(CR_GEMM_NAIVE, "seam/naive", 1, 0, 13, 11, 7, 1.5f, 0.5f, 2, 0));
}

static void test_rows_correct(void **state) {
    (void)state;
    run_all(VIA_ROWS, "rows");
}

/* cr_sgemm_rows: row i of C is the same bits whether it is computed in a
 * batch of 1, 3, 7, 13 or all M rows, at any offset, on 1 or 2 threads;
 * every transpose combination, and the linear layer row by row. */
static void test_rows_batch_independent(void **state) {
    (void)state;
    int saved = cr_get_threads();
    const int M = 150, N = 70, K = 300;
    static const int chunks[] = {1, 3, 7, 13, 150};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = make_mat(ta ? K : M, ta ? M : K, lda, 5);
            float *B = make_mat(tb ? N : K, tb ? K : N, ldb, 6);
            float *bias = make_mat(1, N, N, 7);
            float *ref = malloc(sizeof(float) * (size_t)M * N);
            float *C = malloc(sizeof(float) * (size_t)M * N);
            for (int i = 0; i < M; i++) memcpy(ref + (size_t)i * N, bias, sizeof(float) * N);
            cr_set_threads(1);
            cr_sgemm_rows(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, ref, N);
            for (int t = 1; t <= 2; t++)
                for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
                    cr_set_threads(t);
                    for (int i = 0; i < M; i++) memcpy(C + (size_t)i * N, bias, sizeof(float) * N);
                    for (int i0 = 0; i0 < M; i0 += chunks[c]) {
                        int m = M - i0 < chunks[c] ? M - i0 : chunks[c];
                        /* rows i0.. of op(A): a row offset, or a column one */
                        const float *Ai = ta ? A + i0 : A + (size_t)i0 * lda;
                        cr_sgemm_rows(ta, tb, m, N, K, 1.0f, Ai, lda, B, ldb, 1.0f,
                                      C + (size_t)i0 * N, N);
                    }
                    assert_memory_equal(C, ref, sizeof(float) * (size_t)M * N);
                }
            /* and the linear layer built on it */
            float *W = make_mat(N, K, K, 8), *X = make_mat(M, K, K, 9);
            cr_set_threads(1);
            cr_linear_forward_rows(ref, X, W, bias, M, K, N, K, N);
            for (int i = 0; i < M; i++)
                cr_linear_forward_rows(C + (size_t)i * N, X + (size_t)i * K, W, bias, 1, K, N, K,
                                       N);
            assert_memory_equal(C, ref, sizeof(float) * (size_t)M * N);
            free(W);
            free(X);
            free(A);
            free(B);
            free(bias);
            free(ref);
            free(C);
        }
    cr_set_threads(saved);
}

/* K = 0 and alpha = 0 mean C = beta * C on every backend; beta 0 writes
 * zeros over NaN. */
static void test_degenerate(void **state) {
    (void)state;
    const cr_gemm_backend bs[] = {CR_GEMM_NAIVE, CR_GEMM_PORTABLE, CR_GEMM_BLAS, CR_GEMM_AUTO};
    for (size_t i = 0; i < 4; i++) {
        cr_sgemm_set_backend(bs[i]);
        float A[6] = {1, 2, 3, 4, 5, 6}, C[4] = {NAN, NAN, NAN, NAN}, C2[4] = {1, 2, 3, 4};
        cr_sgemm(0, 0, 2, 2, 0, 1.0f, A, 1, A, 2, 0.0f, C, 2);
        for (int j = 0; j < 4; j++) assert_true(C[j] == 0.0f);
        cr_sgemm(0, 0, 2, 2, 3, 0.0f, A, 3, A, 2, 0.5f, C2, 2);
        const float want[4] = {0.5f, 1, 1.5f, 2};
        assert_memory_equal(C2, want, sizeof want);
        cr_sgemm(0, 0, 0, 2, 3, 1.0f, A, 3, A, 2, 0.0f, C2, 2); /* M = 0: nothing */
        assert_memory_equal(C2, want, sizeof want);
    }
    cr_sgemm_set_backend(CR_GEMM_AUTO);
}

/* The portable kernels split output blocks between threads and never the
 * K loop, so 1 and 2 threads give the same bits (packed and small paths). */
static void test_portable_threads(void **state) {
    (void)state;
    int saved = cr_get_threads();
    static const int shapes[][5] = {{0, 1, 200, 150, 170}, {1, 0, 130, 300, 60},
                                    {0, 1, 4, 1000, 300},  {0, 0, 3, 1000, 400},
                                    {0, 1, 700, 5, 300}};
    for (int s = 0; s < 5; s++) {
        int ta = shapes[s][0], tb = shapes[s][1];
        int M = shapes[s][2], N = shapes[s][3], K = shapes[s][4];
        float *A = make_mat(ta ? K : M, ta ? M : K, ta ? M : K, 1);
        float *B = make_mat(tb ? N : K, tb ? K : N, tb ? K : N, 2);
        float *C1 = calloc((size_t)M * N, sizeof(float));
        float *C2 = calloc((size_t)M * N, sizeof(float));
        cr_set_threads(1);
        cr_sgemm_portable(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C1, N);
        cr_set_threads(2);
        cr_sgemm_portable(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C2, N);
        assert_memory_equal(C1, C2, sizeof(float) * (size_t)M * N);
        free(A);
        free(B);
        free(C1);
        free(C2);
    }
    cr_set_threads(saved);
}

/* cr_sgemv_t against the reference on K not a multiple of any vector width
 * (and multiples of them), padded rows of NaN, alpha and beta; then each
 * output must be the same bits when computed alone, and on 1 or 2 threads. */
static void test_gemv(void **state) {
    (void)state;
    static const int Ns[] = {1, 3, 33, 1000}, Ks[] = {1, 7, 15, 16, 17, 63, 64, 65, 100, 301};
    int saved = cr_get_threads(), ok = 1;
    for (size_t a = 0; a < sizeof Ns / sizeof Ns[0]; a++)
        for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++) {
            int N = Ns[a], K = Ks[b], ldb = K + 3;
            float *x = make_mat(1, K, K, 5), *B = make_mat(N, K, ldb, 6);
            float *y = make_mat(1, N, N, 7), *r = make_mat(1, N, N, 7);
            float *y2 = make_mat(1, N, N, 7), *one = make_mat(1, 1, 1, 8);
            cr_sgemm_naive(0, 1, 1, N, K, -0.5f, x, K, B, ldb, 2.0f, r, N);
            cr_set_threads(1);
            cr_sgemv_t(N, K, -0.5f, x, B, ldb, 2.0f, y);
            char what[64];
            snprintf(what, sizeof what, "gemv N=%d K=%d", N, K);
            ok &= cr_test_close(what, y, r, (size_t)N, 4e-7 * (K + 8) * 1.5 + 1e-6, 1e-5);
            cr_sgemv_t(N, K, 1.0f, x, B, ldb, 0.0f, y);
            for (int j = 0; j < N; j += 7) { /* one row alone: the same bits */
                one[0] = NAN;
                cr_sgemv_t(1, K, 1.0f, x, B + (size_t)j * ldb, ldb, 0.0f, one);
                ok &= memcmp(one, y + j, sizeof(float)) == 0;
            }
            cr_set_threads(2);
            cr_sgemv_t(N, K, 1.0f, x, B, ldb, 0.0f, y2);
            ok &= memcmp(y, y2, sizeof(float) * (size_t)N) == 0;
            free(x), free(B), free(y), free(r), free(y2), free(one);
        }
    cr_set_threads(saved);
    assert_true(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naive_by_hand),   cmocka_unit_test(test_portable_direct),
        cmocka_unit_test(test_small_direct),
        cmocka_unit_test(test_seam_portable),   cmocka_unit_test(test_seam_blas),
        cmocka_unit_test(test_seam_auto_and_naive), cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_portable_threads),
        cmocka_unit_test(test_rows_correct),    cmocka_unit_test(test_rows_batch_independent),
        cmocka_unit_test(test_gemv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
