/*
 * kernels.c - the kernel lab: checks every fast sgemm variant against the
 * naive reference, then times naive (small shapes only), portable and BLAS
 * on a recommender MLP's shapes at 1 and 2 threads, tiny square products
 * (where the AUTO backend's BLAS threshold comes from) and a large square
 * GEMM, plus few-row (serving) products. Prints `name: value` lines. A
 * bench, not a test: it measures time.
 *
 * Usage: kernels [--quick]   (--quick skips the 2-thread and peak runs)
 */
#include "../src/kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*cr_gemm_fn)(int, int, int, int, int, float, const float *, int, const float *,
                           int, float, float *, int);

/* cr_sgemm with the BLAS backend forced (falls back to portable in BLAS=0). */
static void bench_blas(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cr_sgemm_set_backend(CR_GEMM_BLAS);
    cr_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    cr_sgemm_set_backend(CR_GEMM_AUTO);
}

static void bench_auto(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cr_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static float *bench_mat(size_t n, uint64_t seed) {
    float *x = cr_alloc(n * sizeof(float));
    if (!x) {
        fprintf(stderr, "kernels: out of memory for %zu floats\n", n);
        exit(1);
    }
    cr_rng r;
    cr_rng_seed(&r, seed);
    cr_rng_fill_uniform(&r, x, n, 1.0f);
    return x;
}

/* Worst |fast - naive| relative to the magnitude of the result. */
static int check_variant(const char *name, cr_gemm_fn fn) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 129}, {129, 31, 300},
                                    {256, 200, 96}};
    int ok = 1;
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                float *A = bench_mat((size_t)M * K, 1), *B = bench_mat((size_t)K * N, 2);
                float *C = bench_mat((size_t)M * N, 3), *R = cr_alloc((size_t)M * N * 4);
                memcpy(R, C, (size_t)M * N * 4);
                int lda = ta ? M : K, ldb = tb ? K : N;
                cr_sgemm_naive(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, R, N);
                fn(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C, N);
                for (size_t i = 0; i < (size_t)M * N; i++) {
                    double e = fabs((double)C[i] - R[i]) / (1.0 + fabs((double)R[i]));
                    if (!(e <= worst)) worst = e;
                }
                cr_free(A), cr_free(B), cr_free(C), cr_free(R);
            }
    ok = worst < 1e-4;
    printf("check_%s: %s (max rel err %.2e)\n", name, ok ? "ok" : "FAILED", worst);
    return ok;
}

/* Best time of one call, over repetitions lasting at least min_s in all. */
static double time_gemm(cr_gemm_fn fn, int ta, int tb, int M, int N, int K, const float *A,
                        const float *B, float *C, double min_s) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    fn(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N); /* warm up caches and threads */
    double best = 1e30, total = 0;
    int reps = 0;
    while (total < min_s || reps < 3) {
        double t0 = cr_now();
        fn(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        double dt = cr_now() - t0;
        best = dt < best ? dt : best;
        total += dt;
        reps++;
    }
    return best;
}

static double gflops(int M, int N, int K, double s) { return 2.0 * M * N * K / s * 1e-9; }

typedef struct {
    const char *pass;
    int ta, tb, M, N, K;
} bench_shape;

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: kernels [--quick]\n");
        return 2;
    }
    cr_sgemm_set_backend(CR_GEMM_BLAS);
    const char *blas = cr_sgemm_backend_name();
    cr_sgemm_set_backend(CR_GEMM_AUTO);
    int have_blas = strcmp(blas, "portable") != 0;
    int threads0 = cr_get_threads();
    printf("portable_isa: %s\n", cr_sgemm_portable_isa());
    cr_kernels_print(stdout);
    printf("blas: %s\n", have_blas ? blas : "none");
    printf("threads_available: %d\n", threads0);

    int ok = check_variant("portable", cr_sgemm_portable);
    ok &= check_variant("small", cr_sgemm_small);
    if (have_blas) ok &= check_variant(blas, bench_blas);
    ok &= check_variant("auto", bench_auto);
    if (!ok) return 1;

    /* A recommender MLP at batch 512: 429 input features (embeddings +
     * dense) -> 1024 -> ... and the narrow layers of a task tower.
     * fwd: out = x W^T; dx: dout W; dw: dout^T x. */
    enum { MB = 512 };
    static const int layers[][2] = {{429, 1024}, {256, 128}, {128, 64}};
    size_t cap = (size_t)1024 * 1024;
    float *A = bench_mat(cap, 5), *B = bench_mat(cap, 6), *C = bench_mat(cap, 7);
    int tmax = quick ? 1 : 2;
    for (int nt = 1; nt <= tmax; nt++) {
        cr_set_threads(nt);
        for (size_t l = 0; l < 3; l++) {
            int K = layers[l][0], N = layers[l][1];
            bench_shape sh[3] = {{"fwd", 0, 1, MB, N, K}, {"dx", 0, 0, MB, K, N},
                                 {"dw", 1, 0, N, K, MB}};
            for (int p = 0; p < 3; p++) {
                bench_shape s = sh[p];
                char name[96];
                snprintf(name, sizeof name, "mlp_%d_%d_%s_t%d", K, N, s.pass, nt);
                if (l == 2 && nt == 1) {
                    double t = time_gemm(cr_sgemm_naive, s.ta, s.tb, s.M, s.N, s.K, A, B, C, 0.02);
                    printf("%s_naive_gflops: %.2f\n", name, gflops(s.M, s.N, s.K, t));
                }
                double tp = time_gemm(cr_sgemm_portable, s.ta, s.tb, s.M, s.N, s.K, A, B, C, 0.05);
                printf("%s_portable_gflops: %.2f\n", name, gflops(s.M, s.N, s.K, tp));
                if (have_blas) {
                    double tb = time_gemm(bench_blas, s.ta, s.tb, s.M, s.N, s.K, A, B, C, 0.05);
                    printf("%s_%s_gflops: %.2f\n", name, blas, gflops(s.M, s.N, s.K, tb));
                }
            }
        }
    }
    cr_set_threads(threads0);

    /* Serving: a few candidates through the first layer (few rows, the
     * weight matrix is the big operand). */
    static const int serve_m[] = {1, 4, 16};
    for (size_t i = 0; i < sizeof serve_m / sizeof serve_m[0]; i++) {
        int m = serve_m[i];
        double tp = time_gemm(cr_sgemm_portable, 0, 1, m, 1024, 429, A, B, C, 0.02);
        printf("serve_m%d_429_1024_fwd_t%d_portable_gflops: %.2f\n", m, threads0,
               gflops(m, 1024, 429, tp));
        if (have_blas) {
            double tb = time_gemm(bench_blas, 0, 1, m, 1024, 429, A, B, C, 0.02);
            printf("serve_m%d_429_1024_fwd_t%d_%s_gflops: %.2f\n", m, threads0, blas,
                   gflops(m, 1024, 429, tb));
        }
    }

    /* Tiny products (gates, narrow towers, small batches): call overhead
     * decides. This is where CR_GEMM_BLAS_MIN_WORK in gemm.c comes from. */
    static const int tiny[] = {8, 16, 32, 48, 64, 96, 128};
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++) {
        int n = tiny[i];
        double tp = time_gemm(cr_sgemm_portable, 0, 1, n, n, n, A, B, C, 0.01);
        printf("tiny_%d_t%d_portable_gflops: %.2f\n", n, threads0, gflops(n, n, n, tp));
        if (have_blas) {
            double tb = time_gemm(bench_blas, 0, 1, n, n, n, A, B, C, 0.01);
            printf("tiny_%d_t%d_%s_gflops: %.2f\n", n, threads0, blas, gflops(n, n, n, tb));
        }
    }

    /* Peak: the best rate on a large square product at the current thread
     * count, over the fast backends. */
    if (!quick) {
        int n = 1024;
        double tp = time_gemm(cr_sgemm_portable, 0, 0, n, n, n, A, B, C, 0.2);
        double best = gflops(n, n, n, tp);
        printf("square_%d_t%d_portable_gflops: %.2f\n", n, threads0, best);
        if (have_blas) {
            double tb = time_gemm(bench_blas, 0, 0, n, n, n, A, B, C, 0.2);
            double g = gflops(n, n, n, tb);
            printf("square_%d_t%d_%s_gflops: %.2f\n", n, threads0, blas, g);
            best = g > best ? g : best;
        }
        printf("sgemm_peak_gflops: %.2f\n", best);
    }
    cr_free(A), cr_free(B), cr_free(C);
    return 0;
}
