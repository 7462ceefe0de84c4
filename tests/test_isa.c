/*
 * test_isa.c - every kernel set this CPU can run, checked kernel by kernel
 * against the naive reference through its own table (cr_kernels_for), over
 * the shape classes that break tiled code: one row, one column, narrow,
 * edges of every tile size, wide, K across blocks; then a decoder forward
 * run once per level in a child process (CROSSREC_ISA is read once per
 * process) and compared with the scalar level's to rounding; and the
 * calling thread's level (what a context sets for its calls) followed by
 * the dispatch and by the worker threads of a parallel kernel.
 *
 * Legend: M rows, N columns (outputs), K inner dimension.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/kernels/isa.h"
#include "../src/kernels/kernels.h"
#include "../src/nn/decoder.h"

#define STORIES "data/models/stories260K.bin"

static float *mat(size_t n, uint64_t seed) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    cr_test_fill(x, n, 1.0f, seed);
    return x;
}

/* Tolerance of a K-long float dot product of U(-1, 1) values against the
 * double reference: rounding grows like sqrt(K) per term, bounded here by K. */
static double tol_k(int K) { return 2e-6 * (K + 8); }

static const struct { int M, N, K; } shapes[] = {
    {1, 1, 1},    {1, 37, 300},  {1, 1024, 429}, {2, 5, 3},    {4, 33, 17},  {5, 3, 70},
    {7, 1, 257},  {13, 33, 7},   {12, 32, 256},  {25, 65, 513}, {64, 129, 64}, {150, 70, 300},
    {37, 4, 600}, {200, 16, 33}, {6, 17, 31},    {3, 300, 2},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* The table's three fp32 GEMMs against naive, every transpose, two
 * alpha/beta pairs (beta 0 over a NaN-filled C). */
static void check_gemm(const cr_kernel_set *ks) {
    cr_gemm_fn fns[3] = {ks->sgemm_portable, ks->sgemm_tiled, ks->sgemm_small};
    const char *names[3] = {"portable", "tiled", "small"};
    for (int s = 0; s < NSHAPES; s++) {
        int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        float *A = mat((size_t)M * K, 1 + s), *B = mat((size_t)K * N, 100 + s);
        float *C0 = mat((size_t)M * N, 200 + s), *ref = malloc(sizeof(float) * M * N),
              *got = malloc(sizeof(float) * M * N);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int ab = 0; ab < 2; ab++) {
                    float alpha = ab ? -0.5f : 1.0f, beta = ab ? 2.0f : 0.0f;
                    int lda = ta ? M : K, ldb = tb ? K : N;
                    memcpy(ref, C0, sizeof(float) * M * N);
                    cr_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, ref, N);
                    for (int f = 0; f < 3; f++) {
                        if (beta == 0.0f)
                            for (int i = 0; i < M * N; i++) got[i] = NAN;
                        else memcpy(got, C0, sizeof(float) * M * N);
                        fns[f](ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, got, N);
                        char what[96];
                        snprintf(what, sizeof what, "%s %s %dx%dx%d t%d%d ab%d", ks->name,
                                 names[f], M, N, K, ta, tb, ab);
                        assert_true(cr_test_close(what, got, ref, (size_t)M * N, tol_k(K), 1e-5));
                    }
                }
        free(A), free(B), free(C0), free(ref), free(got);
    }
}

static void check_gemv(const cr_kernel_set *ks) {
    for (int N = 1; N <= 70; N += 23)
        for (int K = 1; K <= 301; K += 25) {
            float *x = mat((size_t)K, 7), *B = mat((size_t)N * K, 8), *y0 = mat((size_t)N, 9);
            float *ref = malloc(sizeof(float) * N), *got = malloc(sizeof(float) * N);
            memcpy(ref, y0, sizeof(float) * N);
            memcpy(got, y0, sizeof(float) * N);
            cr_sgemm_naive(0, 1, 1, N, K, 0.75f, x, K, B, K, 0.5f, ref, N);
            ks->sgemv_t(N, K, 0.75f, x, B, K, 0.5f, got);
            assert_true(cr_test_close("gemv", got, ref, (size_t)N, tol_k(K), 1e-5));
            free(x), free(B), free(y0), free(ref), free(got);
        }
}

/* bf16 training GEMM: against naive on bf16-rounded operands where the level
 * multiplies in bf16 (test_gemm_bf16_levels), on the float operands where it
 * falls back to fp32 (test_every_level). */
static void check_gemm_bf16(const cr_kernel_set *ks) {
    for (int s = 0; s < NSHAPES; s++) {
        int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        float *A = mat((size_t)M * K, 31 + s), *B = mat((size_t)N * K, 32 + s);
        float *ref = malloc(sizeof(float) * M * N), *got = malloc(sizeof(float) * M * N);
        if (ks->bf16_native) {
            for (int i = 0; i < M * K; i++) A[i] = cr_bf16_to_f32(cr_bf16_from_f32(A[i]));
            for (int i = 0; i < N * K; i++) B[i] = cr_bf16_to_f32(cr_bf16_from_f32(B[i]));
        }
        cr_sgemm_naive(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, ref, N);
        ks->sgemm_bf16(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, got, N);
        assert_true(cr_test_close("gemm_bf16", got, ref, (size_t)M * N, tol_k(K), 1e-5));
        free(A), free(B), free(ref), free(got);
    }
}

/* The packed linear: against naive (+ bias, ReLU), and bit for bit against
 * the same level's blocked GEMM seeded with the bias (the rows path). */
static void check_packed(const cr_kernel_set *ks) {
    for (int s = 0; s < NSHAPES; s++)
        for (int relu = 0; relu < 2; relu++) {
            int B = shapes[s].M, OC = shapes[s].N, C = shapes[s].K;
            float *x = mat((size_t)B * C, 41 + s), *w = mat((size_t)OC * C, 42 + s);
            float *b = mat((size_t)OC, 43 + s);
            float *wp = malloc(sizeof(float) * cr_linear_pack_floats(OC, C));
            float *ref = malloc(sizeof(float) * B * OC), *rows = malloc(sizeof(float) * B * OC),
                  *got = malloc(sizeof(float) * B * OC);
            cr_linear_pack(wp, w, OC, C);
            for (int i = 0; i < B; i++) memcpy(ref + (size_t)i * OC, b, sizeof(float) * OC);
            memcpy(rows, ref, sizeof(float) * B * OC);
            cr_sgemm_naive(0, 1, B, OC, C, 1.0f, x, C, w, C, 1.0f, ref, OC);
            ks->sgemm_tiled(0, 1, B, OC, C, 1.0f, x, C, w, C, 1.0f, rows, OC);
            if (relu)
                for (int i = 0; i < B * OC; i++) {
                    ref[i] = ref[i] > 0.0f ? ref[i] : 0.0f;
                    rows[i] = rows[i] > 0.0f ? rows[i] : 0.0f;
                }
            ks->linear_forward_packed(got, x, wp, b, B, C, OC, C, OC, relu);
            char what[80];
            snprintf(what, sizeof what, "%s packed %dx%dx%d", ks->name, B, OC, C);
            assert_true(cr_test_close(what, got, ref, (size_t)B * OC, tol_k(C), 1e-5));
            if (memcmp(got, rows, sizeof(float) * B * OC)) {
                fprintf(stderr, "%s: packed and rows differ in bits\n", what);
                fail();
            }
            free(x), free(w), free(b), free(wp), free(ref), free(rows), free(got);
        }
}

/* The bf16-weight inference linear: float inputs, rounded weights. */
static void check_linear_bf16(const cr_kernel_set *ks) {
    for (int s = 0; s < NSHAPES; s++) {
        int B = shapes[s].M, OC = shapes[s].N, C = shapes[s].K;
        float *x = mat((size_t)B * C, 51 + s), *w = mat((size_t)OC * C, 52 + s);
        float *b = mat((size_t)OC, 53 + s);
        uint16_t *wb = malloc(sizeof(uint16_t) * OC * C);
        float *ref = malloc(sizeof(float) * B * OC), *got = malloc(sizeof(float) * B * OC);
        cr_bf16_round(wb, w, (size_t)OC * C);
        for (int i = 0; i < OC * C; i++) w[i] = cr_bf16_to_f32(wb[i]);
        for (int i = 0; i < B; i++) memcpy(ref + (size_t)i * OC, b, sizeof(float) * OC);
        cr_sgemm_naive(0, 1, B, OC, C, 1.0f, x, C, w, C, 1.0f, ref, OC);
        ks->linear_forward_bf16(got, x, wb, b, B, C, OC, C, OC);
        assert_true(cr_test_close("linear_bf16", got, ref, (size_t)B * OC, tol_k(C), 1e-5));
        free(x), free(w), free(b), free(wb), free(ref), free(got);
    }
}

/* The serving products on packed bf16 / int8 weights, in the layout of
 * kernels.h (blocks of 16 outputs, runs of R inputs), built here from its
 * definition: blk[(cr * 16 + lane) * R + j] = w[16 blk + lane][cr R + j]. */
static void check_lowp(const cr_kernel_set *ks) {
    static const int dims[][3] = {{1, 1, 1}, {4, 16, 2}, {3, 17, 5}, {2, 40, 33}, {4, 70, 429}};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
        int nr = dims[s][0], OC = dims[s][1], C = dims[s][2], NB = (OC + 15) / 16;
        /* bf16: R = 2 */
        int CP = (C + 1) / 2 * 2;
        float *x = mat((size_t)nr * C, 61 + s), *w = mat((size_t)OC * C, 62 + s);
        float *b = mat((size_t)OC, 63 + s);
        uint16_t *xb = calloc((size_t)nr * CP, 2), *W = calloc((size_t)NB * 16 * CP, 2);
        double *want = calloc((size_t)nr * OC, sizeof(double));
        float *got = malloc(sizeof(float) * nr * OC), *wantf = malloc(sizeof(float) * nr * OC);
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < C; c++) xb[(size_t)r * CP + c] = cr_bf16_from_f32(x[r * C + c]);
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++)
                W[(size_t)(o / 16) * 16 * CP + ((size_t)(c / 2) * 16 + o % 16) * 2 + c % 2] =
                    cr_bf16_from_f32(w[o * C + c]);
        for (int r = 0; r < nr; r++)
            for (int o = 0; o < OC; o++) {
                double a = b[o];
                for (int c = 0; c < C; c++)
                    a += (double)cr_bf16_to_f32(xb[(size_t)r * CP + c]) *
                         cr_bf16_to_f32(cr_bf16_from_f32(w[o * C + c]));
                wantf[r * OC + o] = (float)a;
            }
        ks->lowp_bf16_rows(got, OC, xb, nr, W, b, CP, OC);
        assert_true(cr_test_close("lowp bf16", got, wantf, (size_t)nr * OC, tol_k(C), 1e-5));
        /* int8: R = 4, inputs stored q + 128, per-row scales */
        CP = (C + 3) / 4 * 4;
        uint8_t *xq = malloc((size_t)nr * CP);
        int8_t *Wq = calloc((size_t)NB * 16 * CP, 1);
        float xs[4], *sc = malloc(sizeof(float) * NB * 16);
        int32_t *ws = calloc((size_t)NB * 16, sizeof(int32_t));
        memset(xq, 128, (size_t)nr * CP);
        for (int r = 0; r < nr; r++) {
            xs[r] = 1.0f / 127.0f;
            for (int c = 0; c < C; c++)
                xq[(size_t)r * CP + c] = (uint8_t)(lrintf(x[r * C + c] * 127.0f) + 128);
        }
        for (int o = 0; o < NB * 16; o++) sc[o] = 0.01f + 0.001f * (float)o;
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) {
                int8_t q = (int8_t)lrintf(w[o * C + c] * 127.0f);
                Wq[(size_t)(o / 16) * 16 * CP + ((size_t)(c / 4) * 16 + o % 16) * 4 + c % 4] = q;
                ws[o] += q;
            }
        for (int r = 0; r < nr; r++)
            for (int o = 0; o < OC; o++) {
                int64_t acc = 0;
                for (int c = 0; c < C; c++)
                    acc += (int64_t)((int)xq[(size_t)r * CP + c] - 128) *
                           Wq[(size_t)(o / 16) * 16 * CP + ((size_t)(c / 4) * 16 + o % 16) * 4 +
                              c % 4];
                want[r * OC + o] = (double)acc * sc[o] * xs[r] + b[o];
                wantf[r * OC + o] = (float)want[r * OC + o];
            }
        ks->lowp_int8_rows(got, OC, xq, xs, nr, Wq, sc, ws, b, CP, OC);
        /* integer sums are exact: only the epilogue rounds */
        assert_true(cr_test_close("lowp int8", got, wantf, (size_t)nr * OC, 1e-6, 1e-6));
        free(x), free(w), free(b), free(xb), free(W), free(want), free(got), free(wantf);
        free(xq), free(Wq), free(sc), free(ws);
    }
}

/* The elementwise, norm, embedding and mixing kernels of a level against
 * the scalar level's (whose own tests check them against references and
 * finite differences), to rounding: every level compiles the same source. */
#define NE 1003 /* not a multiple of any vector width */
static void check_elementwise(const cr_kernel_set *ks, const cr_kernel_set *sc) {
    float *x = mat(NE, 71), *d = mat(NE, 72), *y = mat(NE, 73);
    float *a = malloc(sizeof(float) * NE), *b = malloc(sizeof(float) * NE);
    float *a2 = malloc(sizeof(float) * NE), *b2 = malloc(sizeof(float) * NE);
    for (int i = 0; i < NE; i++) x[i] *= 6.0f; /* exp well away from 1 */
#define SAME(what) assert_true(cr_test_close(what, a, b, NE, 1e-6, 1e-5))
#define UNARY(f)                                                                          \
    ks->f##_forward(a, x, NE), sc->f##_forward(b, x, NE), SAME(#f " forward");           \
    memset(a2, 0, sizeof(float) * NE), memset(b2, 0, sizeof(float) * NE);                 \
    ks->f##_backward(a2, d, a, NE), sc->f##_backward(b2, d, b, NE);                       \
    assert_true(cr_test_close(#f " backward", a2, b2, NE, 1e-6, 1e-5));
    UNARY(relu)
    UNARY(sigmoid)
    ks->gelu_forward(a, x, NE), sc->gelu_forward(b, x, NE), SAME("gelu forward");
    memset(a, 0, sizeof(float) * NE), memset(b, 0, sizeof(float) * NE);
    ks->gelu_backward(a, d, x, NE), sc->gelu_backward(b, d, x, NE), SAME("gelu backward");
    ks->swiglu_forward(a, x, y, NE), sc->swiglu_forward(b, x, y, NE), SAME("swiglu forward");
    /* 17 rows of 59: softmax, layer norm, rms norm */
    ks->softmax_forward(a, x, 17, 59), sc->softmax_forward(b, x, 17, 59), SAME("softmax");
    memset(a2, 0, sizeof(float) * NE), memset(b2, 0, sizeof(float) * NE);
    ks->softmax_backward(a2, d, b, 17, 59), sc->softmax_backward(b2, d, b, 17, 59);
    assert_true(cr_test_close("softmax backward", a2, b2, 17 * 59, 1e-6, 1e-5));
    ks->layernorm_forward(a, NULL, NULL, x, y, d, 17, 59, 1e-5f);
    sc->layernorm_forward(b, NULL, NULL, x, y, d, 17, 59, 1e-5f);
    SAME("layernorm");
    float r1[17], r2[17];
    ks->rmsnorm_forward(a, r1, x, y, 17, 59, 1e-5f), sc->rmsnorm_forward(b, r2, x, y, 17, 59, 1e-5f);
    SAME("rmsnorm");
    int32_t tg[17];
    for (int i = 0; i < 17; i++) tg[i] = (i * 7) % 59;
    int nv1 = 0, nv2 = 0;
    double l1 = ks->xent_forward(r1, x, tg, 17, 59, &nv1), l2 = sc->xent_forward(r2, x, tg, 17, 59, &nv2);
    assert_int_equal(nv1, nv2);
    assert_true(fabs(l1 - l2) <= 1e-5 * fabs(l2) + 1e-6);
    /* bags of 3 ids over a 40 x 25 table, mean pooling; moe mix of 3 experts */
    int64_t off[11];
    int32_t ids[30];
    for (int i = 0; i <= 10; i++) off[i] = 3 * i;
    for (int i = 0; i < 30; i++) ids[i] = (i * 13) % 40;
    ks->bag_forward(a, off, ids, y, 10, 25, 25, CR_POOL_MEAN);
    sc->bag_forward(b, off, ids, y, 10, 25, 25, CR_POOL_MEAN);
    assert_true(cr_test_close("bag mean", a, b, 250, 1e-6, 1e-6));
    ks->moe_mix_forward(a, d, x, NULL, 10, 3, 3, 29), sc->moe_mix_forward(b, d, x, NULL, 10, 3, 3, 29);
    assert_true(cr_test_close("moe mix", a, b, 290, 1e-6, 1e-5));
    /* int8 input quantisation: exact, the same bytes and scale on every level */
    uint8_t *q1 = malloc(NE + 5), *q2 = malloc(NE + 5);
    float s1 = ks->int8_quant_row(q1, x, NE, NE + 5), s2 = sc->int8_quant_row(q2, x, NE, NE + 5);
    assert_true(s1 == s2 && s1 > 0.0f);
    assert_memory_equal(q1, q2, NE + 5);
    assert_int_equal(q1[NE + 4], 128);
    memset(a, 0, sizeof(float) * NE);
    assert_true(ks->int8_quant_row(q1, a, NE, NE) == 1.0f && q1[7] == 128);
    /* the widened serving path's inputs: 3 rows of 37 (stride 41) as the
     * reduced products see them, bit for bit */
    enum { RR = 3, RC = 37, RLD = 41 };
    float *rr = malloc(sizeof(float) * RR * RC);
    for (int int8 = 0; int8 < 2; int8++) {
        ks->lowp_round_rows(rr, x, RR, RC, RLD, int8);
        for (int r = 0; r < RR; r++) {
            float s = int8 ? ks->int8_quant_row(q1, x + r * RLD, RC, RC) : 0.0f;
            for (int c = 0; c < RC; c++) {
                float v = x[r * RLD + c];
                float want = int8 ? (float)((int)q1[c] - 128) * s
                                  : cr_bf16_to_f32(cr_bf16_from_f32(v));
                assert_true(rr[r * RC + c] == want);
            }
        }
    }
    free(rr);
    free(q1), free(q2);
#undef UNARY
#undef SAME
    free(x), free(d), free(y), free(a), free(b), free(a2), free(b2);
}

static void test_every_level(void **state) {
    (void)state;
    int n = 0;
    for (int i = 0; i < CR_ISA_COUNT; i++) {
        const cr_kernel_set *ks = cr_kernels_for((cr_isa)i);
        if (!ks) continue;
        fprintf(stderr, "kernel set %s\n", ks->name);
        assert_int_equal(ks->isa, i);
        check_gemm(ks);
        check_gemv(ks);
        if (!ks->bf16_native) check_gemm_bf16(ks); /* the fp32 fallback */
        check_packed(ks);
        check_linear_bf16(ks);
        check_lowp(ks);
        check_elementwise(ks, cr_kernels_for(CR_ISA_SCALAR));
        n++;
    }
    assert_true(n >= 2); /* scalar and at least one vector level on x86-64 and arm64 */
    /* the active set is one of them, the best unless forced */
    assert_non_null(cr_kernels_for(cr_kernels_active()->isa));
}

/* The levels that multiply in bf16; skipped on a CPU that runs none. */
static void test_gemm_bf16_levels(void **state) {
    (void)state;
    int n = 0;
    for (int i = 0; i < CR_ISA_COUNT; i++) {
        const cr_kernel_set *ks = cr_kernels_for((cr_isa)i);
        if (!ks || !ks->bf16_native) continue;
        fprintf(stderr, "bf16 products of kernel set %s\n", ks->name);
        check_gemm_bf16(ks);
        n++;
    }
    if (n == 0) {
        print_message("no kernel set this CPU runs multiplies in bf16 (AVX512_BF16): skipped\n");
        skip();
    }
}

static void test_names(void **state) {
    (void)state;
    for (int i = 0; i < CR_ISA_COUNT; i++) assert_int_equal(cr_isa_parse(cr_isa_name((cr_isa)i)), i);
    assert_int_equal(cr_isa_parse("avx3"), -1);
    assert_non_null(cr_kernels_for(CR_ISA_SCALAR));
    assert_true(cr_isa_supported(cr_isa_best(), NULL));
    /* a level the CPU lacks names what is missing */
    for (int i = 0; i < CR_ISA_COUNT; i++) {
        const char *missing = NULL;
        if (!cr_isa_supported((cr_isa)i, &missing)) {
            assert_non_null(missing);
            assert_null(cr_kernels_for((cr_isa)i));
        }
    }
    /* core's list of the levels built (what a context is checked against)
     * is dispatch's list of tables */
    for (int i = 0; i < CR_ISA_COUNT; i++)
        if (cr_isa_supported((cr_isa)i, NULL))
            assert_int_equal(cr_isa_built((cr_isa)i), cr_kernels_for((cr_isa)i) != NULL);
    assert_non_null(cr_kernels_for(cr_isa_best()));
    assert_non_null(cr_kernels_for(cr_isa_default()));
}

/* ---- the calling thread's level ------------------------------------------------------ */

/* Attention over (b, h) pairs forks threads that each call cr_sgemm: on
 * two threads under a thread level, every pair must give the bits of one
 * thread under that level, which holds only if the workers ran the
 * level's GEMM too (they do not inherit the thread-local by themselves).
 * One query row makes the first product a GEMV, whose bits differ between
 * levels (fused or unfused products), so the check can tell. */
static void test_thread_level(void **state) {
    (void)state;
    assert_int_equal(cr_thread_isa(), -1);
    assert_int_equal((int)cr_kernels_active()->isa, (int)cr_isa_default());
    for (int i = 0; i < CR_ISA_COUNT; i++) {
        if (!cr_kernels_for((cr_isa)i)) continue;
        cr_set_thread_isa(i);
        assert_int_equal((int)cr_kernels_active()->isa, i);
        assert_string_equal(cr_kernel_set_name(), cr_isa_name((cr_isa)i));
    }
    cr_set_thread_isa(-1);
    assert_int_equal((int)cr_kernels_active()->isa, (int)cr_isa_default());

    enum { B = 2, NH = 8, TQ = 1, TK = 64, HD = 64, C = NH * HD };
    const size_t no = (size_t)B * TQ * C, na = (size_t)B * NH * TQ * TK;
    float *q = mat(no, 1), *k = mat((size_t)B * TK * C, 2), *v = mat((size_t)B * TK * C, 3);
    float *o1 = malloc(sizeof(float) * no), *o2 = malloc(sizeof(float) * no);
    float *a1 = malloc(sizeof(float) * na), *a2 = malloc(sizeof(float) * na);
    int saved = cr_get_threads(), levels = 0, other = 0;
    for (int i = 0; i < CR_ISA_COUNT; i++) {
        if (!cr_kernels_for((cr_isa)i)) continue;
        levels++;
        cr_set_thread_isa(i);
        cr_set_threads(1);
        cr_mha_forward(o1, a1, q, k, v, NULL, 0, B, TQ, TK, NH, HD, C, C);
        cr_set_threads(2);
        cr_mha_forward(o2, a2, q, k, v, NULL, 0, B, TQ, TK, NH, HD, C, C);
        assert_memory_equal(o1, o2, sizeof(float) * no);
        assert_memory_equal(a1, a2, sizeof(float) * na);
        /* the process's level on one thread: some level must differ from
         * it, or this check could not see a worker on the wrong level */
        cr_set_thread_isa(-1);
        cr_set_threads(1);
        cr_mha_forward(o2, a2, q, k, v, NULL, 0, B, TQ, TK, NH, HD, C, C);
        if (memcmp(a1, a2, sizeof(float) * na)) other++;
    }
    cr_set_threads(saved);
    cr_set_thread_isa(-1);
    if (levels > 1) assert_true(other > 0);
    free(q), free(k), free(v), free(o1), free(o2), free(a1), free(a2);
}

/* ---- a decoder forward on every level, each in its own process ---------------------- */

#define DEC_T 8
#define DEC_V 512

/* The child: T = 8 logits through the portable kernels (cr_sgemm's
 * products of the forward), then one more token through the cache (the
 * decode GEMV), written to path. */
static int child_decoder(const char *path) {
    cr_error e = {0};
    cr_decoder d;
    cr_sgemm_set_backend(CR_GEMM_PORTABLE);
    if (cr_dec_load_llama2c(&d, STORIES, 0, &e) != CR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    cr_dec_ws ws;
    int32_t ids[DEC_T + 1] = {1, 403, 407, 261, 379, 378, 265, 260, 334};
    float *out = malloc(sizeof(float) * (DEC_T + 1) * DEC_V);
    if (cr_dec_ws_create(&ws, &d, 1, 16, CR_DEC_WS_KV_CACHE, &e) != CR_OK ||
        cr_dec_forward(&d, &ws, ids, NULL, NULL, 1, DEC_T, 0, &e) != CR_OK)
        return fprintf(stderr, "%s\n", e.msg), 1;
    memcpy(out, ws.logits, sizeof(float) * DEC_T * DEC_V);
    if (cr_dec_forward(&d, &ws, ids + DEC_T, NULL, NULL, 1, 1, DEC_T, &e) != CR_OK)
        return fprintf(stderr, "%s\n", e.msg), 1;
    memcpy(out + DEC_T * DEC_V, ws.logits, sizeof(float) * DEC_V);
    FILE *f = fopen(path, "wb");
    const char *name = cr_kernels_active()->name;
    int ok = f && fprintf(f, "%-16s", name) == 16 &&
             fwrite(out, sizeof(float), (DEC_T + 1) * DEC_V, f) == (DEC_T + 1) * DEC_V;
    if (f) fclose(f);
    cr_dec_ws_free(&ws);
    cr_dec_free(&d);
    free(out);
    return ok ? 0 : 1;
}

/* The child's output for level isa: run here, or, when CR_TEST_DECODER_DIR
 * is set, already written there by `test_isa --child-decoder DIR/dec_ISA.bin`
 * under CROSSREC_ISA=ISA (make test-arm64: qemu-user hangs in fork() on
 * this project's machines, so the Makefile runs the children itself). */
static float *run_child(const char *isa, const char *dir) {
    char path[512];
    const char *pre = getenv("CR_TEST_DECODER_DIR");
    snprintf(path, sizeof path, "%s/dec_%s.bin", pre && *pre ? pre : dir, isa);
    if (!(pre && *pre)) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            setenv("CROSSREC_ISA", isa, 1);
            execl("/proc/self/exe", "test_isa", "--child-decoder", path, (char *)NULL);
            _exit(127);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char name[17] = {0};
    float *v = malloc(sizeof(float) * (DEC_T + 1) * DEC_V);
    assert_int_equal(fread(name, 1, 16, f), 16);
    assert_int_equal(fread(v, sizeof(float), (DEC_T + 1) * DEC_V, f), (DEC_T + 1) * DEC_V);
    fclose(f);
    /* the child ran the level it was asked for */
    assert_int_equal(strncmp(name, isa, strlen(isa)), 0);
    assert_true(name[strlen(isa)] == ' ');
    return v;
}

static void test_decoder_every_level(void **state) {
    (void)state;
    char dir[256];
    cr_test_tmpdir(dir, sizeof dir);
    float *ref = run_child("scalar", dir);
    for (int i = 0; i < CR_ISA_COUNT; i++) {
        if (i == CR_ISA_SCALAR || !cr_kernels_for((cr_isa)i)) continue;
        float *got = run_child(cr_isa_name((cr_isa)i), dir);
        char what[64];
        snprintf(what, sizeof what, "decoder logits %s vs scalar", cr_isa_name((cr_isa)i));
        /* logits reach |15|: 1e-4 is 7e-6 of that scale. neon fuses its
         * products and scalar does not; on arm64 a near-zero logit differed
         * by 2.2e-5 (the largest difference, 4e-5, was 3e-6 of its row's
         * largest logit) */
        assert_true(cr_test_close(what, got, ref, (size_t)(DEC_T + 1) * DEC_V, 1e-4, 1e-4));
        free(got);
    }
    free(ref);
    cr_test_rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--child-decoder")) return child_decoder(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_thread_level),
        cmocka_unit_test(test_every_level),
        cmocka_unit_test(test_gemm_bf16_levels),
        cmocka_unit_test(test_decoder_every_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
