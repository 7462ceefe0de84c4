/*
 * isa.h - kernels chosen at run time. The hot kernels (the blocked and
 * small GEMMs, the decode GEMV, the packed and bf16-weight inference
 * linears, the bf16 training GEMM, the int8/bf16 serving products) are
 * compiled once per instruction-set level from the files of src/kernels/isa/, each
 * translation unit with its own target flags, and each level exports one
 * immutable table of function pointers, a cr_kernel_set. The rest of the
 * library is built for the baseline (x86-64-v2, or armv8-a) and reaches the
 * hot kernels through the table of the set of the calling thread's context
 * (cr_ctx_params.kernels), or else the process's, chosen once, at first
 * use, from the CPU's features (CPUID + XGETBV for the OS's register state,
 * or getauxval on arm64), or forced lower by CROSSREC_ISA.
 *
 * No mutable state is exposed: cr_kernels_active() returns the set of the
 * calling thread's call, cr_kernels_for() any set this CPU can run (for
 * tests and the kernel lab, which call a set's functions directly).
 */
#ifndef CR_ISA_H
#define CR_ISA_H

#include "kernels.h"

#include <stdint.h>

/* The levels (cr_isa) and what this CPU runs are named in core.h (cpu.c),
 * so that a context can check the level it is given. */

typedef void (*cr_gemm_fn)(int transA, int transB, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta,
                           float *C, int ldc);

/* Every kernel of a set: X(return type, name, (parameters), (arguments)).
 * The entry point cr_<name> of kernels.h calls the active set's; the
 * struct, each level's declarations and tables, and the entry points are
 * all generated from this one list. */
#define CR_KERNEL_LIST(X) \
    /* fp32 GEMM (gemm_portable.c, gemm_small.c, gemv.c) */ \
    X(void, sgemm_portable, (int transA, int transB, int M, int N, int K, float alpha, \
      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc), (transA, \
      transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) \
    X(void, sgemm_tiled, (int transA, int transB, int M, int N, int K, float alpha, \
      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc), (transA, \
      transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) \
    X(void, sgemm_small, (int transA, int transB, int M, int N, int K, float alpha, \
      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc), (transA, \
      transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) \
    X(void, sgemv_t, (int N, int K, float alpha, const float *x, const float *B, int ldb, \
      float beta, float *y), (N, K, alpha, x, B, ldb, beta, y)) \
    /* the training GEMM on bf16-rounded operands (gemm_bf16.c) */ \
    X(void, sgemm_bf16, (int transA, int transB, int M, int N, int K, float alpha, \
      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc), (transA, \
      transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) \
    /* inference linears (linear_packed.c, linear_bf16.c) */ \
    X(void, linear_forward_packed, (float *out, const float *inp, const float *wp, \
      const float *b, int B, int C, int OC, int ldi, int ldo, int relu), (out, inp, wp, b, B, C, \
      OC, ldi, ldo, relu)) \
    X(void, linear_forward_bf16, (float *out, const float *inp, const uint16_t *wb, \
      const float *b, int B, int C, int OC, int ldi, int ldo), (out, inp, wb, b, B, C, OC, ldi, \
      ldo)) \
    /* serving products on packed bf16 / int8 weights (lowp.c) */ \
    X(void, bf16_round, (uint16_t *dst, const float *src, size_t n), (dst, src, n)) \
    X(float, int8_quant_row, (uint8_t *dst, const float *src, int n, int np), (dst, src, n, np)) \
    X(void, lowp_round_rows, (float *dst, const float *src, int B, int C, int ldi, int int8), \
      (dst, src, B, C, ldi, int8)) \
    X(void, lowp_bf16_rows, (float *out, int ldo, const uint16_t *x, int nr, const uint16_t *W, \
      const float *b, int CP, int OC), (out, ldo, x, nr, W, b, CP, OC)) \
    X(void, lowp_int8_rows, (float *out, int ldo, const uint8_t *x, const float *xs, int nr, \
      const int8_t *W, const float *sc, const int32_t *ws, const float *b, int CP, int OC), \
      (out, ldo, x, xs, nr, W, sc, ws, b, CP, OC)) \
    /* elementwise, softmax, norms (activation.c, softmax.c, layernorm.c, lm_ops.c) */ \
    X(void, relu_forward, (float *out, const float *inp, size_t n), (out, inp, n)) \
    X(void, relu_backward, (float *dinp, const float *dout, const float *out, size_t n), (dinp, \
      dout, out, n)) \
    X(void, gelu_forward, (float *out, const float *inp, size_t n), (out, inp, n)) \
    X(void, gelu_backward, (float *dinp, const float *dout, const float *inp, size_t n), (dinp, \
      dout, inp, n)) \
    X(void, sigmoid_forward, (float *out, const float *inp, size_t n), (out, inp, n)) \
    X(void, sigmoid_backward, (float *dinp, const float *dout, const float *out, size_t n), \
      (dinp, dout, out, n)) \
    X(void, softmax_forward, (float *out, const float *inp, int B, int N), (out, inp, B, N)) \
    X(void, softmax_backward, (float *dinp, const float *dout, const float *out, int B, int N), \
      (dinp, dout, out, B, N)) \
    X(void, layernorm_forward, (float *out, float *mean, float *rstd, const float *inp, \
      const float *w, const float *b, int B, int C, float eps), (out, mean, rstd, inp, w, b, B, \
      C, eps)) \
    X(void, layernorm_backward, (float *dinp, float *dw, float *db, const float *dout, \
      const float *inp, const float *w, const float *mean, const float *rstd, int B, int C), \
      (dinp, dw, db, dout, inp, w, mean, rstd, B, C)) \
    X(void, rmsnorm_forward, (float *out, float *rstd, const float *inp, const float *w, int B, \
      int C, float eps), (out, rstd, inp, w, B, C, eps)) \
    X(void, rmsnorm_backward, (float *dinp, float *dw, const float *dout, const float *rstd, \
      const float *inp, const float *w, int B, int C), (dinp, dw, dout, rstd, inp, w, B, C)) \
    X(void, swiglu_forward, (float *out, const float *a, const float *b, size_t n), (out, a, b, \
      n)) \
    X(void, swiglu_backward, (float *da, float *db, const float *dout, const float *a, \
      const float *b, size_t n), (da, db, dout, a, b, n)) \
    X(double, xent_forward, (float *lse, const float *logits, const int32_t *targets, int N, \
      int V, int *n_valid), (lse, logits, targets, N, V, n_valid)) \
    X(void, xent_backward, (float *dlogits, const float *lse, const float *logits, \
      const int32_t *targets, int N, int V, float scale), (dlogits, lse, logits, targets, N, V, \
      scale)) \
    /* embeddings, experts, attention (embedding.c, moe.c, attention.c) */ \
    X(void, embedding_forward, (float *out, const int32_t *ids, const float *table, int B, \
      int D, int ldo), (out, ids, table, B, D, ldo)) \
    X(void, bag_forward, (float *out, const int64_t *off, const int32_t *ids, \
      const float *table, int B, int D, int ldo, cr_pooling mode), (out, off, ids, table, B, D, \
      ldo, mode)) \
    X(void, embedding_backward, (int32_t *rows, float *drows, int *n_rows, const int32_t *ids, \
      const float *dout, int B, int D, int ldo, int32_t *scratch), (rows, drows, n_rows, ids, \
      dout, B, D, ldo, scratch)) \
    X(void, bag_backward, (int32_t *rows, float *drows, int *n_rows, const int64_t *off, \
      const int32_t *ids, const float *dout, int B, int D, int ldo, cr_pooling mode, \
      int32_t *scratch), (rows, drows, n_rows, off, ids, dout, B, D, ldo, mode, scratch)) \
    X(void, moe_mix_forward, (float *out, const float *gate, const float *experts, \
      const int *sel, int B, int S, int E, int H), (out, gate, experts, sel, B, S, E, H)) \
    X(void, moe_mix_backward, (float *dgate, float *dexperts, const float *dout, \
      const float *gate, const float *experts, const int *sel, int B, int S, int E, int H), \
      (dgate, dexperts, dout, gate, experts, sel, B, S, E, H)) \
    X(void, rope_forward, (float *x, int B, int T, int NH, int HD, int ld, int pos0), (x, B, T, \
      NH, HD, ld, pos0)) \
    X(void, rope_backward, (float *dx, int B, int T, int NH, int HD, int ld, int pos0), (dx, B, \
      T, NH, HD, ld, pos0)) \
    X(void, attention_forward, (float *out, float *att, const float *q, const float *k, \
      const float *v, int B, int Tq, int Tkv, int pos0, int NH, int NKV, int HD, int ldq, \
      int ldkv), (out, att, q, k, v, B, Tq, Tkv, pos0, NH, NKV, HD, ldq, ldkv)) \
    X(void, attention_backward, (float *dq, float *dk, float *dv, float *scratch, \
      const float *dout, const float *att, const float *q, const float *k, const float *v, \
      int B, int T, int NH, int NKV, int HD, int ldq, int ldkv), (dq, dk, dv, scratch, dout, \
      att, q, k, v, B, T, NH, NKV, HD, ldq, ldkv))

/* One instruction-set level's kernels: what it is, then a pointer per
 * entry of CR_KERNEL_LIST. */
#define CR_KSET_FIELD(ret, name, params, args) ret(*name) params;
typedef struct cr_kernel_set {
    cr_isa      isa;
    const char *name;        /* "scalar", "avx2", "avx512", "avx512bf16", "neon" */
    int         bf16_native; /* sgemm_bf16 multiplies in bf16 (else it is fp32) */
    const char *lowp_bf16;   /* how the bf16-weight serving product runs */
    const char *lowp_int8;   /* how the int8-weight serving product runs */
    /* The serving path on reduced-precision weights (src/kernels/weight.c)
     * runs a layer widened, its reduced values as floats through the packed
     * fp32 kernel, where this set's reduced kernel was measured slower than
     * that (docs/kernels.md, "Reduced precision on every set"): bf16 layers
     * if lowp_bf16_wide, int8 layers of fewer than lowp_int8_wide_below
     * inputs (0: never, INT_MAX: always). */
    int         lowp_bf16_wide;
    int         lowp_int8_wide_below;
    CR_KERNEL_LIST(CR_KSET_FIELD)
} cr_kernel_set;

/* The set the calling thread uses: the level its call's context names
 * (cr_thread_isa(), set by cr_call_begin), else the process's, chosen on
 * the first call (thread-safe) and never changed:
 * CROSSREC_ISA=scalar|avx2|avx512|avx512bf16|neon|auto forces a level; a
 * level this CPU cannot run, or an unknown name, is reported once on
 * stderr and the best level is used instead (a kernel cannot return an
 * error; cr_kernels_check() lets a caller refuse). */
const cr_kernel_set *cr_kernels_active(void);
/* The set of `isa` if this build has it and this CPU can run it, else NULL. */
const cr_kernel_set *cr_kernels_for(cr_isa isa);
/* CR_OK, or why CROSSREC_ISA cannot be honoured (naming the missing CPU
 * feature, or the accepted names). The CLI calls it before any command. */
/* cr_kernels_check, cr_kernels_print, cr_kernel_set_name and cr_cpu_name
 * are public (crossrec.h): what `crossrec cpu`, `crossrec --version` and
 * every bench print. */

#endif /* CR_ISA_H */
