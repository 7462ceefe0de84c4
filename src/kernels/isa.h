/*
 * isa.h - kernels chosen at run time. The hot kernels (the blocked and
 * small GEMMs, the decode GEMV, the packed and bf16-weight inference
 * linears, the bf16 training GEMM, the int8/bf16 serving products) are
 * compiled once per instruction-set level from the files of src/kernels/isa/, each
 * translation unit with its own target flags, and each level exports one
 * immutable table of function pointers, a cr_kernel_set. The rest of the
 * library is built for the baseline (x86-64-v2, or armv8-a) and reaches the
 * hot kernels through the table of the set chosen once, at first use, from
 * the CPU's features (CPUID + XGETBV for the OS's register state, or
 * getauxval on arm64), or forced lower by CROSSREC_ISA.
 *
 * No mutable state is exposed: cr_kernels_active() returns the set chosen
 * for the process, cr_kernels_for() any set this CPU can run (for tests and
 * the kernel lab, which call a set's functions directly). A future context
 * object (cr_ctx) holds a `const cr_kernel_set *` the same way.
 */
#ifndef CR_ISA_H
#define CR_ISA_H

#include "../core/core.h"

#include <stdint.h>

/* Levels, lowest first. Each x86 level includes the ones before it. */
typedef enum {
    CR_ISA_SCALAR = 0, /* the baseline: plain C, auto-vectorised for SSE4.2 or NEON */
    CR_ISA_AVX2,       /* + AVX2, FMA (Haswell, Zen 1-3) */
    CR_ISA_AVX512,     /* + AVX-512 F, BW, VL, DQ (Skylake-X, Zen 4) */
    CR_ISA_AVX512BF16, /* + AVX512_BF16, AVX512_VNNI (Cooper Lake, Sapphire Rapids, Zen 4) */
    CR_ISA_NEON,       /* arm64 Advanced SIMD (every arm64 CPU) */
    CR_ISA_COUNT
} cr_isa;

typedef void (*cr_gemm_fn)(int transA, int transB, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta,
                           float *C, int ldc);

/* One instruction-set level's kernels. The entry points of kernels.h with
 * the same names call the active set's; see there for their contracts. */
typedef struct cr_kernel_set {
    cr_isa      isa;
    const char *name;      /* "scalar", "avx2", "avx512", "avx512bf16", "neon" */
    int         bf16_native; /* sgemm_bf16 multiplies in bf16 (else it is fp32) */
    const char *lowp_bf16; /* how the bf16-weight serving product runs */
    const char *lowp_int8; /* how the int8-weight serving product runs */

    /* fp32 GEMM (gemm_portable.c, gemm_small.c, gemv.c) */
    cr_gemm_fn sgemm_portable;
    cr_gemm_fn sgemm_tiled;
    cr_gemm_fn sgemm_small;
    void (*sgemv_t)(int N, int K, float alpha, const float *x, const float *B, int ldb,
                    float beta, float *y);
    /* training GEMM on bf16-rounded operands (gemm_bf16.c) */
    cr_gemm_fn sgemm_bf16;

    /* inference linears (linear_packed.c, linear_bf16.c) */
    void (*linear_forward_packed)(float *out, const float *inp, const float *wp,
                                  const float *b, int B, int C, int OC, int ldi, int ldo,
                                  int relu);
    void (*linear_forward_bf16)(float *out, const float *inp, const uint16_t *wb,
                                const float *b, int B, int C, int OC, int ldi, int ldo);

    /* serving products on packed bf16 / int8 weights (lowp.c; layout in
     * kernels.h, "reduced-precision serving weights"), nr <= 4 rows */
    void (*lowp_bf16_rows)(float *out, int ldo, const uint16_t *x, int nr, const uint16_t *W,
                           const float *b, int CP, int OC);
    void (*lowp_int8_rows)(float *out, int ldo, const uint8_t *x, const float *xs, int nr,
                           const int8_t *W, const float *sc, const int32_t *ws,
                           const float *b, int CP, int OC);
} cr_kernel_set;

/* The set this process uses: chosen on the first call (thread-safe) and
 * never changed. CROSSREC_ISA=scalar|avx2|avx512|avx512bf16|neon|auto
 * forces a level; a level this CPU cannot run, or an unknown name, is
 * reported once on stderr and the best level is used instead (a kernel
 * cannot return an error; cr_kernels_check() lets a caller refuse). */
const cr_kernel_set *cr_kernels_active(void);
/* The set of `isa` if this build has it and this CPU can run it, else NULL. */
const cr_kernel_set *cr_kernels_for(cr_isa isa);
/* CR_OK, or why CROSSREC_ISA cannot be honoured (naming the missing CPU
 * feature, or the accepted names). The CLI calls it before any command. */
cr_status cr_kernels_check(cr_error *e);

/* ---- the CPU -------------------------------------------------------------- */
/* Whether this CPU (and its OS, for the wider registers) can run `isa`;
 * if not and missing is non-NULL, *missing names the first feature lacking. */
int         cr_isa_supported(cr_isa isa, const char **missing);
const char *cr_isa_name(cr_isa isa);
/* cr_isa by name; -1 if unknown. */
int         cr_isa_parse(const char *name);
/* The best level this CPU can run. */
cr_isa      cr_isa_best(void);
/* The features found, space-separated ("sse4.2 avx avx2 fma avx512f ..."),
 * and the CPU's model name, for `crossrec cpu` and bench outputs. */
const char *cr_cpu_features(void);
const char *cr_cpu_model(void);

#endif /* CR_ISA_H */
