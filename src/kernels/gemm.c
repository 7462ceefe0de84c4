/*
 * gemm.c - the GEMM seam: every matrix product in crossrec enters here.
 * It validates shapes, handles the degenerate cases once, and routes to the
 * naive reference, the portable blocked kernel (gemm_portable.c) or BLAS.
 * No other file may include a BLAS header or call a BLAS routine.
 */
#include "kernels.h"
#include "isa/gemm_internal.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#if defined(CR_BLAS_OPENBLAS) && defined(CR_BLAS_BLIS)
#error "define at most one of CR_BLAS_OPENBLAS and CR_BLAS_BLIS"
#endif

#if defined(CR_BLAS_OPENBLAS)
#include <cblas.h>
#define CR_HAVE_BLAS 1
#define CR_BLAS_NAME "openblas"
#elif defined(CR_BLAS_BLIS)
/* blis.h is included with -I, not as a system header, so its own static
 * inline helpers trip our warnings (unused under clang, always-true range
 * checks under gcc). Silence those two for the header only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wtype-limits"
#include <blis.h>
#pragma GCC diagnostic pop
#define CR_HAVE_BLAS 1
#define CR_BLAS_NAME "blis"
#else
#define CR_HAVE_BLAS 0
#endif

/* Below this many multiply-adds (M*N*K) the AUTO backend uses the portable
 * kernel even when BLAS is built in, because the call overhead of BLAS
 * dominates tiny products (gates, narrow towers). Measured with
 * bench/kernels.c (docs/kernels.md): BLIS takes ~1 us even for 8x8x8 and
 * loses to the portable kernel up to about 40^3; OpenBLAS has a fast
 * small-matrix path and wins at every size on one thread, so it gets
 * everything. */
#if defined(CR_BLAS_BLIS)
#define CR_GEMM_BLAS_MIN_WORK (40 * 40 * 40)
#else
#define CR_GEMM_BLAS_MIN_WORK 0
#endif

/* With OpenBLAS on kernels narrower than the portable one, products of at
 * least this many multiply-adds go to portable; below it OpenBLAS's
 * small-matrix path still wins (bench/kernels.c tiny_* rows, docs/kernels.md). */
#define CR_GEMM_NARROW_BLAS_MAX_WORK (64.0 * 64 * 64)

/* The forced backend is the one process-wide knob in this layer. It exists
 * for tests and the kernel lab (run the same model on every backend), not
 * for production tuning, so an atomic int is enough: relaxed loads cost
 * nothing next to a GEMM, and a change races with nothing but itself. */
static _Atomic int cr_gemm_forced = CR_GEMM_AUTO;

void cr_sgemm_set_backend(cr_gemm_backend b) {
    CR_ASSERT(b >= CR_GEMM_AUTO && b <= CR_GEMM_BLAS);
    atomic_store_explicit(&cr_gemm_forced, (int)b, memory_order_relaxed);
}

/* The precision is per calling thread (a training loop's, set around its
 * steps), so two models training in one process do not interfere. */
static _Thread_local int cr_gemm_prec = CR_GEMM_FP32;
void cr_sgemm_set_precision(cr_gemm_precision p) {
    CR_ASSERT(p == CR_GEMM_FP32 || p == CR_GEMM_BF16);
    cr_gemm_prec = (int)p;
}
cr_gemm_precision cr_sgemm_get_precision(void) { return (cr_gemm_precision)cr_gemm_prec; }

/* Whether AUTO may give large products to BLAS. OpenBLAS picks its kernels at run
 * time from the CPU, or from OPENBLAS_CORETYPE when that is set; told
 * "Haswell" on an AVX-512 machine it runs 8-wide kernels at about two thirds
 * of the portable 16-wide one (docs/kernels.md). So when this build's
 * portable kernel is AVX-512 and OpenBLAS reports a core without AVX-512
 * kernels, AUTO keeps those to the portable one. The core type is read once
 * per process (it does not change; -1 = not yet known); the portable
 * kernel is the calling thread's (its context may name another set). */
static _Atomic int cr_gemm_blas_wide = -1;

static int cr_gemm_blas_usable(void) {
#if defined(CR_BLAS_OPENBLAS)
    if (strcmp(cr_sgemm_portable_isa(), "avx512")) return 1;
    int wide = atomic_load_explicit(&cr_gemm_blas_wide, memory_order_relaxed);
    if (wide < 0) {
        const char *core = openblas_get_corename();
        static const char *const names[] = {"skylakex", "cooperlake", "sapphirerapids"};
        wide = 0;
        for (size_t i = 0; core && i < sizeof names / sizeof names[0]; i++)
            if (!strcasecmp(core, names[i])) wide = 1;
        atomic_store_explicit(&cr_gemm_blas_wide, wide, memory_order_relaxed);
    }
    return wide;
#else
    return 1;
#endif
}

/* Which backend an AUTO call of this size takes. Forcing BLAS in a build
 * without BLAS falls back to the portable kernel (documented in kernels.h). */
static cr_gemm_backend cr_gemm_pick(int M, int N, int K) {
    int f = atomic_load_explicit(&cr_gemm_forced, memory_order_relaxed);
    if (f == CR_GEMM_NAIVE) return CR_GEMM_NAIVE;
    if (f == CR_GEMM_PORTABLE) return CR_GEMM_PORTABLE;
    if (!CR_HAVE_BLAS) return CR_GEMM_PORTABLE;
    if (f == CR_GEMM_BLAS) return CR_GEMM_BLAS;
    if (!cr_gemm_blas_usable() && (double)M * N * K >= CR_GEMM_NARROW_BLAS_MAX_WORK)
        return CR_GEMM_PORTABLE;
    if ((double)M * N * K < CR_GEMM_BLAS_MIN_WORK) return CR_GEMM_PORTABLE;
    return CR_GEMM_BLAS;
}

const char *cr_sgemm_backend_name(void) {
    int f = atomic_load_explicit(&cr_gemm_forced, memory_order_relaxed);
    if (f == CR_GEMM_NAIVE) return "naive";
    if (f == CR_GEMM_PORTABLE || !CR_HAVE_BLAS) return "portable";
#if CR_HAVE_BLAS
    if (f == CR_GEMM_AUTO && !cr_gemm_blas_usable()) return "portable+" CR_BLAS_NAME;
    return CR_BLAS_NAME;
#else
    return "portable";
#endif
}

/* Shape checks shared by every entry point. A bad leading dimension is a
 * caller bug (shapes come from the model, not from input files). */
static void cr_gemm_check(int transA, int transB, int M, int N, int K, int lda, int ldb,
                          int ldc) {
    CR_ASSERT(M >= 0 && N >= 0 && K >= 0);
    /* BLAS also demands ld >= 1; an empty product returns before any
     * backend sees it, so zero-width operands may pass ld = 0. */
    CR_ASSERT(ldc >= N);
    CR_ASSERT(lda >= (transA ? M : K));
    CR_ASSERT(ldb >= (transB ? K : N));
}

/* C = beta * C, where beta == 0 writes zeros (so NaN or garbage in an
 * uninitialised C never leaks through). */
static void cr_gemm_scale_c(int M, int N, float beta, float *C, int ldc) {
    if (beta == 1.0f) return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < N; j++) c[j] = 0.0f;
        else
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* The reference: one dot product per output, accumulated in double, in the
 * plain order k = 0..K-1. Slow on purpose; everything else is checked
 * against it. */
void cr_sgemm_naive(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc) {
    cr_gemm_check(transA, transB, M, N, K, lda, ldb, ldc);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int p = 0; p < K; p++) {
                float a = transA ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = transB ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)a * (double)b;
            }
            float *c = C + (size_t)i * ldc + j;
            double prev = beta == 0.0f ? 0.0 : (double)beta * (double)*c;
            *c = (float)((double)alpha * acc + prev);
        }
    }
}

#if CR_HAVE_BLAS
static void cr_sgemm_blas(int transA, int transB, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc) {
#if defined(CR_BLAS_OPENBLAS)
    /* OpenBLAS's OpenMP build reads omp_get_max_threads() on every call
     * (num_cpu_avail), which is exactly cr_get_threads(); inside an
     * enclosing parallel region it runs on one thread. Nothing to tell it. */
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
#else
    /* BLIS's global thread count comes from the environment, not from
     * OpenMP, so pass cr_get_threads() in a per-call runtime object instead
     * of mutating BLIS's global (bli_thread_set_num_threads) from library
     * code. The typed API takes row and column strides, so row-major and
     * transposes are just stride choices. */
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(cr_get_threads(), &rntm);
    float a = alpha, b = beta;
    inc_t rsa = transA ? 1 : lda, csa = transA ? lda : 1;
    inc_t rsb = transB ? 1 : ldb, csb = transB ? ldb : 1;
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &a, (float *)A, rsa, csa,
                 (float *)B, rsb, csb, &b, C, ldc, 1, NULL, &rntm);
#endif
}
#endif

void cr_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc) {
    cr_gemm_check(transA, transB, M, N, K, lda, ldb, ldc);
    if (M == 0 || N == 0) return;
    /* Nothing to multiply: C = beta * C, identically on every backend. */
    if (K == 0 || alpha == 0.0f) {
        cr_gemm_scale_c(M, N, beta, C, ldc);
        return;
    }
    cr_gemm_backend be = cr_gemm_pick(M, N, K);
    /* Without native bf16 products the precision changes nothing: the fp32
     * backends below are the fastest fp32 this CPU has. */
    if (cr_gemm_prec == CR_GEMM_BF16 && be != CR_GEMM_NAIVE && cr_sgemm_bf16_native() &&
        M >= 16 && N >= 16 &&
        (double)M * N * K >= CR_GEMM_BF16_MIN_WORK) {
        cr_sgemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* One row against nn.Linear's (N, K) weight, a decode step's product:
     * streaming the weight is all the work (gemv.c); BLAS's general path
     * ran it at a third of the memory bandwidth (docs/lm.md, "Speed"). */
    if (M == 1 && !transA && transB && be != CR_GEMM_NAIVE &&
        atomic_load_explicit(&cr_gemm_forced, memory_order_relaxed) != CR_GEMM_BLAS) {
        cr_sgemv_t(N, K, alpha, A, B, ldb, beta, C);
        return;
    }
    switch (be) {
    case CR_GEMM_NAIVE:
        cr_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
#if CR_HAVE_BLAS
    case CR_GEMM_BLAS:
        cr_sgemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
#endif
    default:
        cr_sgemm_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
}

void cr_sgemm_rows(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cr_gemm_check(transA, transB, M, N, K, lda, ldb, ldc);
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        cr_gemm_scale_c(M, N, beta, C, ldc);
        return;
    }
    /* BLAS makes no such promise (OpenBLAS's AVX2 kernels round a row
     * differently in a 64-row call than in a 7-row one), nor does the
     * small-matrix path next to the blocked one: both are left out. */
    if (atomic_load_explicit(&cr_gemm_forced, memory_order_relaxed) == CR_GEMM_NAIVE)
        cr_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        cr_sgemm_tiled(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- the task split of the blocked GEMMs (every ISA level's) ------------------ */

/* The output is cut into independent MC x NC blocks ("tasks"); a task
 * packs its own slices of A and B and runs the whole K loop, so threads
 * never wait for each other until the end of the call. Repacking B once per
 * row block costs (K*N)*(M/MC) copies against M*N*K multiply-adds, under
 * 1% for MC >= 100. That trade matters on a shared machine: with a
 * shared B panel every K block needs two barriers, and one descheduled
 * thread stalls all of them (measured: 16 barriers per call made a
 * 512x1024x429 product 10x slower under load). Tasks are handed out
 * dynamically for the same reason.
 *
 * Block sizes are multiples of MR and NR, so the tile grid (and with it
 * every rounding) is the same whatever the split; the split only decides
 * which thread runs which tile. Results are identical for any thread count. */
cr_gemm_plan cr_gemm_plan_make(int M, int N, int nt, int mr, int nr, int mc_max, int nc_max) {
    int nic = (M + mc_max - 1) / mc_max, njc = (N + nc_max - 1) / nc_max;
    /* Enough tasks for every thread, and a multiple of the thread count
     * when tasks are few (so the last round is not half idle). */
    while (nt > 1 && (nic * njc < nt || (nic * njc < 4 * nt && (nic * njc) % nt))) {
        int mcur = (M + nic - 1) / nic, ncur = (N + njc - 1) / njc;
        if (mcur > mr && (mcur >= ncur || ncur <= nr)) nic++;
        else if (ncur > nr) njc++;
        else break;
    }
    cr_gemm_plan p;
    p.mc = ((M + nic - 1) / nic + mr - 1) / mr * mr;
    p.nc = ((N + njc - 1) / njc + nr - 1) / nr * nr;
    p.nic = (M + p.mc - 1) / p.mc;
    p.njc = (N + p.nc - 1) / p.nc;
    return p;
}

void cr_gemm_run(const cr_gemm_args *g, const cr_gemm_plan *p, int par, cr_gemm_task_fn task) {
    int ntask = p->nic * p->njc;
    if (!par || ntask == 1) {
        /* No OpenMP region at all: even a one-thread region costs about as
         * much as a 16x16x16 product. */
        for (int t = 0; t < ntask; t++) {
            int ic = (t / p->njc) * p->mc, jc = (t % p->njc) * p->nc;
            task(g, ic, jc, g->M - ic < p->mc ? g->M - ic : p->mc,
                 g->N - jc < p->nc ? g->N - jc : p->nc);
        }
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int t = 0; t < ntask; t++) {
        int ic = (t / p->njc) * p->mc, jc = (t % p->njc) * p->nc;
        task(g, ic, jc, g->M - ic < p->mc ? g->M - ic : p->mc,
             g->N - jc < p->nc ? g->N - jc : p->nc);
    }
}
