/*
 * kernels.h - pure forward/backward functions. No allocation, no state, no
 * I/O: callers pass every buffer. Signature order: outputs, cached values,
 * inputs, weights, dimensions. Backward functions ADD into gradients, and a
 * NULL gradient pointer means "skip it" (a frozen weight costs nothing).
 * All matrices are row-major float32.
 *
 * Dimension legend: B batch rows, C input channels, OC output channels,
 * N row length, D embedding dim, V table rows, E experts, S selected
 * experts, H expert output width, NNZ ids in a bag batch.
 */
#ifndef CR_KERNELS_H
#define CR_KERNELS_H

#include "../core/core.h"

/* ---- GEMM seam -------------------------------------------------------------
 * C = alpha * op(A) @ op(B) + beta * C, row-major, op(X) = X or X^T.
 * op(A) is (M, K), op(B) is (K, N), C is (M, N). beta == 0 overwrites C
 * (NaNs in C are not propagated). Every matrix product in crossrec goes
 * through cr_sgemm; the backend is chosen at build time (BLAS=openblas,
 * blis or 0) and can be forced at run time for testing. */
void cr_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc);

typedef enum { CR_GEMM_AUTO = 0, CR_GEMM_NAIVE, CR_GEMM_PORTABLE, CR_GEMM_BLAS } cr_gemm_backend;
void        cr_sgemm_set_backend(cr_gemm_backend b); /* AUTO = BLAS if built, else PORTABLE */
const char *cr_sgemm_backend_name(void);             /* e.g. "openblas", "blis", "portable" */
/* Notes on the seam (gemm.c): the forced backend is one process-wide atomic
 * (a testing knob, not a tuning one). Forcing BLAS in a build without BLAS
 * gives PORTABLE. AUTO with BLIS keeps products under 40^3 multiply-adds
 * on PORTABLE (BLIS's call overhead). BLAS threads follow cr_get_threads()
 * on every call. Results do not depend on the thread count for NAIVE and
 * PORTABLE; for BLAS that is up to the library. PORTABLE keeps its packing
 * buffers on the stack: about 400 KB on each thread that runs it. */
/* The reference and the portable versions, callable directly (kernel lab). */
void cr_sgemm_naive(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc);
void cr_sgemm_portable(int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc);
/* The portable blocked path for every shape (no small-matrix shortcut):
 * each element is one fused multiply-add chain over k in a fixed order. */
void cr_sgemm_tiled(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc);
/* The K block of the blocked path: a sum over k runs in chains of this many
 * terms, each added to the running value. cr_linear_forward_packed cuts K
 * the same way, which is what makes the two agree bit for bit. */
#ifndef CR_GEMM_KC
#define CR_GEMM_KC 256
#endif
/* C = alpha * op(A) @ op(B) + beta * C where row i of C depends only on row
 * i of op(A), row i of C and op(B): the same bits whatever M, whatever the
 * other rows and the thread count. What scoring promises (a candidate's
 * score does not depend on the batch it came in); AUTO and BLAS use the
 * blocked portable path, NAIVE the reference. */
void cr_sgemm_rows(int transA, int transB, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc);
/* Few rows or few columns (serving a handful of candidates, a 1-wide output
 * layer): no packing, A and B read in place. Correct for any shape; the
 * portable backend routes small M or N here (gemm_small.c). */
void cr_sgemm_small(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc);
/* y = alpha * x @ B^T + beta * y for one row x (K) and B (N, K), row
 * stride ldb (beta == 0 overwrites y): the M = 1, transB product, which the
 * seam routes here on the AUTO and PORTABLE backends (gemv.c). B is read
 * once, row after row; threads take contiguous blocks of rows, and y[j]
 * does not depend on N or the thread count. */
void cr_sgemv_t(int N, int K, float alpha, const float *x, const float *B, int ldb,
                float beta, float *y);
/* The portable kernel's instruction set in this build: "avx512", "avx2" or
 * "generic" (chosen at compile time from -march). */
const char *cr_sgemm_portable_isa(void);

/* ---- bfloat16 products for mixed-precision training (gemm_bf16.c) ---------
 * cr_sgemm_bf16 has cr_sgemm's contract except that op(A) and op(B) are
 * rounded to bfloat16 (nearest even) before they are multiplied; products
 * and sums are fp32, C stays fp32, results do not depend on the thread
 * count. With AVX512_BF16 it runs at twice the fp32 rate; a build without
 * it (cr_sgemm_bf16_native() == 0) computes the fp32 product instead. The
 * rounding is cr_bf16_from_f32's (below) for normal values; denormal
 * inputs flush to zero, as the instruction does.
 *
 * The precision of cr_sgemm itself is a per-thread setting (default FP32)
 * that a training loop turns on around its steps: with BF16, products of
 * at least CR_GEMM_BF16_MIN_WORK multiply-adds whose M and N are both at
 * least 16 go to cr_sgemm_bf16 (a forced NAIVE backend still wins). It
 * never touches cr_sgemm_rows or the packed inference linear, so scoring
 * stays fp32. */
void  cr_sgemm_bf16(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc);
int   cr_sgemm_bf16_native(void);
typedef enum { CR_GEMM_FP32 = 0, CR_GEMM_BF16 = 1 } cr_gemm_precision;
#define CR_GEMM_BF16_MIN_WORK (64.0 * 64 * 64)
void              cr_sgemm_set_precision(cr_gemm_precision p); /* this thread's */
cr_gemm_precision cr_sgemm_get_precision(void);

/* ---- linear: out = inp @ w^T + b  (PyTorch's nn.Linear layout) ---------- */
void cr_linear_forward(float *out,          /* (B, OC), row stride ldo */
                       const float *inp,    /* (B, C),  row stride ldi */
                       const float *w,      /* (OC, C) */
                       const float *b,      /* (OC) or NULL */
                       int B, int C, int OC, int ldi, int ldo);
typedef void (*cr_linear_fn)(float *out, const float *inp, const float *w, const float *b,
                             int B, int C, int OC, int ldi, int ldo);
/* The same product through cr_sgemm_rows: each output row depends only on
 * its input row (inference forwards that promise batch-independent scores). */
void cr_linear_forward_rows(float *out, const float *inp, const float *w, const float *b,
                            int B, int C, int OC, int ldi, int ldo);
/* Inference on weights packed once (linear_packed.c): cr_linear_pack writes
 * w (OC, C) into wp (cr_linear_pack_floats(OC, C) floats) in the order the
 * micro-kernel reads it, and cr_linear_forward_packed computes exactly the
 * bits of cr_linear_forward_rows (followed by cr_relu_forward when relu is
 * 1) without packing anything per call: a row depends only on its input
 * row. Its backward is cr_linear_backward on the unpacked w. */
/* Output channels per packed sliver, the same on every kernel set. */
#define CR_PACK_NR 32
size_t cr_linear_pack_floats(int OC, int C);
int    cr_linear_pack_width(void); /* output channels per packed sliver */
void   cr_linear_pack(float *wp, const float *w, int OC, int C);
void   cr_linear_forward_packed(float *out, const float *inp, const float *wp, const float *b,
                                int B, int C, int OC, int ldi, int ldo, int relu);
/* Inference with bfloat16 weights (linear_bf16.c): wb (OC, C) holds w
 * rounded by cr_bf16_round; out = inp @ wb^T + b with inputs, products and
 * sums in float (bf16 widens exactly), in gemv.c's order, so a row's outputs
 * do not depend on B, the other rows or the thread count. No backward. */
void     cr_linear_forward_bf16(float *out, const float *inp, const uint16_t *wb,
                                const float *b, int B, int C, int OC, int ldi, int ldo);
/* ---- one linear over a weight descriptor (weight.c) ------------------------
 * Every forward names the weight of a layer by its form and calls cr_linear;
 * the kernel that runs a form is chosen there (and in the active kernel
 * set), nowhere else. */
typedef struct cr_lp_weight cr_lp_weight;
typedef enum cr_weight_form {
    CR_WEIGHT_F32 = 0, /* w: (OC, C) row-major floats */
    CR_WEIGHT_PACKED,  /* w: cr_linear_pack's form of (OC, C) floats */
    CR_WEIGHT_BF16,    /* w: (OC, C) row-major bfloat16 (cr_bf16_round) */
    CR_WEIGHT_LOWP     /* w: a cr_lp_weight (bf16 or int8 for serving), group g */
} cr_weight_form;
typedef struct cr_weight {
    cr_weight_form form;
    int            OC, C;
    const void    *w;
    int            g;
} cr_weight;
enum {
    CR_LINEAR_ROWS = 1, /* F32: batch-independent rows (cr_linear_forward_rows),
                         * not the training GEMM */
    CR_LINEAR_RELU = 2  /* ReLU in place after the bias */
};
/* out (B, OC) stride ldo = inp (B, C) stride ldi @ W^T + b (OC, or NULL),
 * then ReLU with CR_LINEAR_RELU. scratch: cr_lp_scratch_bytes(C) bytes for
 * a LOWP weight (it never allocates), else unused. Each form computes what
 * its own kernel computes (see the forms above); ROWS, PACKED, BF16 and
 * LOWP rows do not depend on the other rows of the call. */
void cr_linear(float *out, const float *inp, const cr_weight *w, const float *b, int B, int ldi,
               int ldo, int flags, void *scratch);
/* Whether cr_linear applies the ReLU inside the kernel for this form (a
 * caller running many column slices may prefer one pass after them). */
int  cr_linear_fuses_relu(const cr_weight *w);

/* A weight (G groups of OC rows, C columns; G > 1 for the per-expert layers,
 * group g is rows [g*OC, (g+1)*OC)) packed for bf16 or int8 products. */
cr_status cr_lp_pack(cr_lp_weight **out, cr_precision p, const float *w, int G, int OC, int C,
                     cr_error *e);
void      cr_lp_free(cr_lp_weight *w);
/* Bytes of scratch cr_lp_linear needs for inputs up to C wide. */
size_t    cr_lp_scratch_bytes(int C);
/* out (B, OC) stride ldo = inp (B, C) stride ldi @ (group g of w)^T + b (OC
 * or NULL), products in the packed precision, sums and bias in fp32. */
void      cr_lp_linear(float *out, const float *inp, const cr_lp_weight *w, int g,
                       const float *b, int B, int ldi, int ldo, void *scratch);
/* How cr_lp_linear runs p on the active kernel set: "avx512_bf16",
 * "avx512_vnni", "avx2 (vpmaddubsw; ...)", "widened to fp32 at load (...)". */
const char *cr_lp_isa(cr_precision p);

/* Serving products on reduced-precision weights (isa/lowp.c; packing and
 * input conversion in weight.c). out (nr <= 4 rows, stride
 * ldo) = x @ W^T + b for OC outputs. W holds blocks of 16 outputs, input
 * channels in runs of R (2 for bf16, 4 for int8), the 16 outputs' R values
 * side by side: blk[(cr * 16 + lane) * R + j] = w[16 blk + lane][cr R + j],
 * CP inputs per row (padded to R with zeros). bf16: x rounded to bf16, sums
 * in fp32. int8: x stored q + 128 with scale xs[r], W quantised with scale
 * sc[o] and row sums ws[o]; out = (sum q w) * sc * xs + b, the sum exact. */
void cr_lowp_bf16_rows(float *out, int ldo, const uint16_t *x, int nr, const uint16_t *W,
                       const float *b, int CP, int OC);
void cr_lowp_int8_rows(float *out, int ldo, const uint8_t *x, const float *xs, int nr,
                       const int8_t *W, const float *sc, const int32_t *ws, const float *b,
                       int CP, int OC);
/* One input row (n floats) quantised for cr_lowp_int8_rows, padded with
 * zeros (128) to np; returns its scale, max|x| / 127 (1 if all zero). */
float cr_int8_quant_row(uint8_t *dst, const float *src, int n, int np);
/* B rows of C floats (stride ldi) as the reduced products see them, as
 * floats in dst (rows of C): rounded to bf16, or (int8 != 0) quantised as
 * cr_int8_quant_row does and scaled back (q * scale). For the serving path
 * on weights widened to fp32 (weight.c). */
void  cr_lowp_round_rows(float *dst, const float *src, int B, int C, int ldi, int int8);
/* float -> bf16, round to nearest even (NaN stays a quiet NaN, overflow
 * rounds to infinity); bf16 -> float is exact. */
/* Inline, so the vector loops of every kernel set (cr_bf16_round) and
 * scalar callers round the same way from one definition. */
static inline uint16_t cr_bf16_from_f32(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t u = v.u;
    uint16_t q = (uint16_t)((u >> 16) | 0x40u);          /* NaN: stays a quiet NaN */
    uint16_t r = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16); /* nearest, ties even */
    return (u & 0x7fffffffu) > 0x7f800000u ? q : r;
}
static inline float cr_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
void cr_bf16_round(uint16_t *dst, const float *src, size_t n); /* the active set's */
void cr_linear_backward(float *dinp,        /* (B, C) stride ldi, or NULL */
                        float *dw,          /* (OC, C) or NULL */
                        float *db,          /* (OC) or NULL */
                        const float *dout,  /* (B, OC) stride ldo */
                        const float *inp,   /* (B, C) stride ldi */
                        const float *w,     /* (OC, C) */
                        int B, int C, int OC, int ldi, int ldo);

/* ---- activations (elementwise over n values; in-place allowed) ------------ */
void cr_relu_forward(float *out, const float *inp, size_t n);
void cr_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
/* GELU, tanh approximation (GPT-2's gelu_new; PyTorch approximate="tanh"). */
void cr_gelu_forward(float *out, const float *inp, size_t n);
void cr_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
void cr_sigmoid_forward(float *out, const float *inp, size_t n);
void cr_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);

/* ---- softmax over each row of N ------------------------------------------- */
void cr_softmax_forward(float *out, const float *inp, int B, int N);
void cr_softmax_backward(float *dinp, const float *dout, const float *out, int B, int N);

/* ---- layer norm over each row of C ---------------------------------------- */
void cr_layernorm_forward(float *out,       /* (B, C) */
                          float *mean,      /* (B) cached */
                          float *rstd,      /* (B) cached */
                          const float *inp, /* (B, C) */
                          const float *w, const float *b, /* (C), either may be NULL */
                          int B, int C, float eps);
/* mean and rstd may be NULL in forward when no backward follows. */
void cr_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int B, int C);

/* ---- embeddings ---------------------------------------------------------------
 * Lookup writes row ids[b] of table into out[b*ldo : b*ldo + D], so features
 * land directly in the concatenated input of the first layer. Backward is
 * row-sparse: it produces the unique touched rows in ascending order and
 * their summed gradients; n_rows receives how many. scratch must hold
 * 2*B (lookup) or 2*NNZ (bags) int32 values. Deterministic. */
void cr_embedding_forward(float *out, const int32_t *ids, const float *table,
                          int B, int D, int ldo);
void cr_embedding_backward(int32_t *rows,       /* (<= B) unique rows, ascending */
                           float *drows,        /* (<= B, D) their gradients */
                           int *n_rows,
                           const int32_t *ids,  /* (B) */
                           const float *dout,   /* (B, D) stride ldo */
                           int B, int D, int ldo, int32_t *scratch);

typedef enum { CR_POOL_SUM = 0, CR_POOL_MEAN = 1 } cr_pooling;
/* Bags: example b uses ids[off[b] .. off[b+1]); an empty bag gives zeros. */
void cr_bag_forward(float *out, const int64_t *off, const int32_t *ids,
                    const float *table, int B, int D, int ldo, cr_pooling mode);
void cr_bag_backward(int32_t *rows, float *drows, int *n_rows,
                     const int64_t *off, const int32_t *ids, const float *dout,
                     int B, int D, int ldo, cr_pooling mode, int32_t *scratch);
/* rows, drows and n_rows are written, not accumulated (a fresh list per
 * call; the optimizer applies it row by row). ids must be >= 0, and a bag
 * batch's off[B] - off[0] must fit in int32 (the scratch holds positions). */

/* ---- mixture of experts -------------------------------------------------------
 * out[b] = sum_s gate[b, s] * experts[b, sel[s], :], experts laid out
 * (B, E, H) so all experts' layers can run as wide GEMMs. sel lists which
 * of the E experts this gate mixes (PLE); NULL means 0..S-1 (MMoE, S = E).
 * The gate itself is cr_linear + cr_softmax. */
void cr_moe_mix_forward(float *out,           /* (B, H) */
                        const float *gate,    /* (B, S) */
                        const float *experts, /* (B, E, H) */
                        const int *sel,       /* (S) or NULL */
                        int B, int S, int E, int H);
void cr_moe_mix_backward(float *dgate,         /* (B, S) or NULL */
                         float *dexperts,      /* (B, E, H) or NULL */
                         const float *dout,    /* (B, H) */
                         const float *gate, const float *experts, const int *sel,
                         int B, int S, int E, int H);

/* ---- losses -------------------------------------------------------------------
 * Per-example weight w (NULL = 1) and mask m (NULL = 1; 0 drops the example).
 * Forward returns sum_b w*m*loss_b in double; the caller divides by its
 * normaliser (usually sum w*m) and passes scale = 1/normaliser to backward,
 * which adds scale*w*m*dloss/dpred into dpred. */
double cr_bce_logits_forward(const float *logit, const float *label, const float *mask,
                             const float *weight, int B);
void   cr_bce_logits_backward(float *dlogit, const float *logit, const float *label,
                              const float *mask, const float *weight, int B, float scale);
double cr_mse_forward(const float *pred, const float *label, const float *mask,
                      const float *weight, int B);
void   cr_mse_backward(float *dpred, const float *pred, const float *label,
                       const float *mask, const float *weight, int B, float scale);

/* ---- shared by kernel implementations --------------------------------------
 * CR_PARALLEL_FOR(cond) is `#pragma omp parallel for if(cond)` when built with
 * OpenMP and nothing otherwise (so OMP=0 builds stay warning-free). Use it on
 * loops whose iterations write disjoint memory; cond keeps small calls serial,
 * where forking threads costs more than the work.
 * The kernel level of a call is the calling thread's (cr_thread_isa(), set
 * from its context), a thread-local that OpenMP's worker threads do not
 * inherit: a loop whose body calls an entry point that dispatches (cr_sgemm,
 * any cr_<name> of isa.h's list) reads it before the region and sets it in
 * the body, `int isa = cr_thread_isa();` ... `cr_set_thread_isa(isa);`.
 * The files of src/kernels/isa/ never dispatch (isa/level.h), so their
 * loops need nothing. */
#define CR_PRAGMA_(x) _Pragma(#x)
#ifdef _OPENMP
#define CR_PARALLEL_FOR(cond) CR_PRAGMA_(omp parallel for schedule(static) if(cond))
#else
#define CR_PARALLEL_FOR(cond)
#endif
/* Work (roughly, in multiply-adds) below which a kernel stays on one thread. */
#define CR_PAR_MIN_WORK 32768

/* ==== decoder language model (attention.c, lm_ops.c) ==========================
 * Legend: T tokens per sequence, NH query heads, NKV key/value heads
 * (NKV divides NH: grouped-query attention, NH/NKV query heads share one
 * key/value head), HD head dim, V vocabulary, H feed-forward width.
 * Sequences are laid out (B, T, ...), one row per token, row b*T + t. */

/* ---- RMSNorm: y = x * rstd * w, rstd = 1/sqrt(mean_j x_j^2 + eps) ----------- */
void cr_rmsnorm_forward(float *out,       /* (B, C) */
                        float *rstd,      /* (B) cached, or NULL */
                        const float *inp, /* (B, C) */
                        const float *w,   /* (C) or NULL */
                        int B, int C, float eps);
void cr_rmsnorm_backward(float *dinp,       /* (B, C) or NULL */
                         float *dw,         /* (C) or NULL */
                         const float *dout, /* (B, C) */
                         const float *rstd, /* (B) */
                         const float *inp, const float *w, int B, int C);

/* ---- SwiGLU: out = silu(a) * b, silu(a) = a * sigmoid(a) (elementwise) ------ */
void cr_swiglu_forward(float *out, const float *a, const float *b, size_t n);
void cr_swiglu_backward(float *da, float *db, /* either may be NULL */
                        const float *dout, const float *a, const float *b, size_t n);

/* ---- cross-entropy over a vocabulary, with an ignore index -----------------
 * Row r's loss is logsumexp(logits[r]) - logits[r, targets[r]]; a target < 0
 * (the ignore index -1) drops the row. Forward returns the summed loss in
 * double, caches each row's logsumexp (lse may be NULL) and sets *n_valid to
 * the number of counted rows. Backward adds scale * (softmax - onehot) into
 * dlogits (stride V) for counted rows; the caller picks scale = 1/n_valid
 * for a mean. Targets >= V are a bug (asserted). */
double cr_xent_forward(float *lse,             /* (N) cached, or NULL */
                       const float *logits,    /* (N, V) */
                       const int32_t *targets, /* (N) */
                       int N, int V, int *n_valid);
void   cr_xent_backward(float *dlogits, const float *lse, const float *logits,
                        const int32_t *targets, int N, int V, float scale);

/* ---- rotary positions (llama2.c / Meta Llama convention) ---------------------
 * Each head's pairs (2i, 2i+1) are rotated by the angle
 * (pos0 + t) * 10000^(-2i/HD), i = 0..HD/2-1. x holds B*T rows of NH heads
 * of HD values (HD even), consecutive rows ld floats apart (so the q and k
 * slices of a fused qkv row work in place). Both directions are in place:
 * backward applies the inverse rotation to the gradient that attention
 * produced for the rotated values, turning it into the gradient of the
 * unrotated ones (a rotation's Jacobian is the rotation itself, so there is
 * nothing to accumulate across calls). */
void cr_rope_forward(float *x, int B, int T, int NH, int HD, int ld, int pos0);
void cr_rope_backward(float *dx, int B, int T, int NH, int HD, int ld, int pos0);

/* ---- causal multi-head attention with grouped-query heads ---------------------
 * For each sequence b and head h (kv head g = h / (NH/NKV)), the Tq queries
 * sit at absolute positions pos0 .. pos0+Tq-1 and see keys 0 .. pos0+t:
 *   P = softmax(Q K^T / sqrt(HD)) with the future masked,  out = P V.
 * q: rows b*Tq + t, head h at column h*HD, stride ldq. k, v: row b*Tkv + j
 * (Tkv >= pos0+Tq is the time extent of the buffer, e.g. a KV cache), head
 * g at column g*HD, stride ldkv. out: (B, Tq, NH*HD) packed. att caches the
 * probabilities (B, NH, Tq, Tk) with Tk = pos0 + Tq (masked entries are 0).
 * Training is pos0 = 0, Tkv = Tq = T; one decode step is Tq = 1. */
void cr_attention_forward(float *out, float *att, const float *q, const float *k,
                          const float *v, int B, int Tq, int Tkv, int pos0, int NH, int NKV,
                          int HD, int ldq, int ldkv);
/* The training shape (pos0 = 0, Tq = Tkv = T). With dO = dout:
 *   dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),
 *   dV += P^T dO,  dQ += dS K / sqrt(HD),  dK += dS^T Q / sqrt(HD)
 * summed over the query heads of a group for dK and dV. Any of dq, dk, dv
 * may be NULL. scratch holds B*NH*T*T floats (dS). */
void cr_attention_backward(float *dq, float *dk, float *dv, float *scratch,
                           const float *dout, /* (B, T, NH*HD) */
                           const float *att, const float *q, const float *k, const float *v,
                           int B, int T, int NH, int NKV, int HD, int ldq, int ldkv);

/* ==== item encoder attention (qf_attention.c) =================================
 * Legend: Tq query rows and Tk key/value rows per sequence, NH heads of HD
 * values (no grouped heads). */

/* Multi-head attention with an additive mask: per sequence b and head h,
 *   P = softmax(Q K^T / sqrt(HD) + M_b),  out = P V.
 * q: row b*Tq + t, head h at column h*HD, stride ldq; k, v: row b*Tk + j,
 * stride ldkv (q, k, v may be slices of one fused row). mask: (Tq, Tk)
 * row-major, sequence b's at mask + b*mask_bs (mask_bs = 0: one mask for
 * the batch; Tq*Tk: one per sequence), or NULL for none. -INFINITY hides a
 * key; a row that sees no key gets zero probabilities and a zero output.
 * out: (B, Tq, NH*HD) packed; att caches P as (B, NH, Tq, Tk). */
void cr_mha_forward(float *out, float *att, const float *q, const float *k, const float *v,
                    const float *mask, size_t mask_bs, int B, int Tq, int Tk, int NH,
                    int HD, int ldq, int ldkv);
/* dV += P^T dO, dS = P * (dP - rowsum(dP * P)) with dP = dO V^T,
 * dQ += dS K / sqrt(HD), dK += dS^T Q / sqrt(HD). Any of dq, dk, dv may be
 * NULL; scratch holds B*NH*Tq*Tk floats. The mask is not needed (masked
 * probabilities are 0, so their dS is 0). */
void cr_mha_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                     const float *att, const float *q, const float *k, const float *v, int B,
                     int Tq, int Tk, int NH, int HD, int ldq, int ldkv);
/* BLIP-2's self-attention masks over [NQ queries; T text tokens], one
 * (S, S) block per sequence, S = NQ + T: mode 0 ITC (queries and text see
 * only their own kind), 1 ITM (all see all), 2 ITG (queries see queries;
 * text sees the queries and text up to itself). Text keys at positions
 * >= len[b] are hidden (len NULL = all T valid). mask: (B, S, S). */
void cr_qf_mask_fill(float *mask, const int32_t *len, int mode, int B, int NQ, int T);

#endif /* CR_KERNELS_H */
