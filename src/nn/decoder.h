/*
 * decoder.h - a decoder-only language model in two variants, Llama
 * (RMSNorm, RoPE, SwiGLU, grouped-query attention) and GPT-2 (LayerNorm,
 * learned positions, GELU-tanh, fused qkv), with forward and backward over
 * token ids or caller-written input embeddings (so soft tokens can be
 * spliced into a prompt), a frozen mode that produces only the gradient of
 * the input embeddings, a key/value cache for generation, and loaders for
 * llama2.c checkpoints and Hugging Face GPT-2 safetensors.
 * docs/decoder.md has the math, the parameter names and the formats.
 *
 * Legend: B sequences, T tokens per sequence, C = dim, H = hidden_dim,
 * V = vocab, L = n_layers, NH heads, NKV key/value heads, HD = C / NH,
 * KV = NKV * HD. A sequence batch is (B, T, ...), row b*T + t.
 */
#ifndef CR_DECODER_H
#define CR_DECODER_H

#include "nn.h"

typedef enum cr_dec_arch { CR_DEC_LLAMA = 0, CR_DEC_GPT2 = 1 } cr_dec_arch;

typedef struct cr_dec_cfg {
    cr_dec_arch arch;
    int   dim;        /* C */
    int   hidden_dim; /* H: feed-forward width */
    int   n_layers;
    int   n_heads;
    int   n_kv_heads; /* divides n_heads; GPT-2 requires n_kv_heads == n_heads */
    int   vocab;
    int   max_seq;    /* longest sequence (RoPE has no table; GPT-2 has pos_emb rows) */
    float norm_eps;   /* 1e-5 for both llama2.c and GPT-2 */
    int   tied;       /* 1: the classifier is tok_emb; 0: a separate wcls */
} cr_dec_cfg;

/* Validate a config: positive sizes, dim divisible by n_heads into an even
 * head dim (RoPE rotates pairs), n_heads divisible by n_kv_heads, sizes that
 * fit memory arithmetic. Errors name the field. */
cr_status cr_dec_cfg_check(const cr_dec_cfg *c, cr_error *e);
/* The arch name ("llama", "gpt2") and back; -1 for an unknown name. */
const char *cr_dec_arch_name(cr_dec_arch a);
int         cr_dec_arch_parse(const char *s);

/* Parameter indices in the table (-1 when the variant has no such tensor). */
typedef struct cr_dec_layer {
    int attn_norm, attn_norm_b;   /* (C); bias: GPT-2 */
    int wq, wk, wv;               /* Llama: (C, C), (KV, C), (KV, C) */
    int wqkv, bqkv;               /* GPT-2: (3C, C), (3C) */
    int wo, bo;                   /* (C, C); bias: GPT-2 */
    int ffn_norm, ffn_norm_b;     /* (C); bias: GPT-2 */
    int w1, b1;                   /* (H, C); bias: GPT-2 (c_fc) */
    int w2, b2;                   /* (C, H); bias: GPT-2 (mlp c_proj) */
    int w3;                       /* Llama: (H, C), the SwiGLU value branch */
} cr_dec_layer;

/* The model. pt names every parameter and lays out the gradient (and
 * optimizer) slabs; w[i] points at parameter i: into pt.data when the model
 * owns its weights (trainable), or straight into a read-only file map
 * (llama2.c checkpoints opened without copying; only frozen use). */
typedef struct cr_decoder {
    cr_dec_cfg    cfg;
    cr_ptable     pt;
    float       **w;      /* (pt.n) */
    int           owned;  /* 1: w[i] = pt.data + offset; 0: into map */
    cr_mmap       map;
    int           tok_emb, pos_emb, final_norm, final_norm_b, wcls;
    cr_dec_layer *layers; /* (L) */
    /* bf16 copies of the matrices for inference (cr_dec_bf16_make): wb[i]
     * is parameter i rounded to bf16 when it is one, else NULL; wb NULL:
     * none made */
    uint16_t    **wb;     /* (pt.n) */
    uint16_t     *wb_data;
} cr_decoder;

/* Register and allocate an owned, zeroed model (call cr_dec_init or load
 * weights next). On failure d is left freeable. */
cr_status cr_dec_create(cr_decoder *d, const cr_dec_cfg *cfg, cr_error *e);
/* GPT-2's initialisation: weights ~ N(0, 0.02), the output projections of
 * each block (wo, w2) N(0, 0.02/sqrt(2L)), norms 1, biases 0. Owned only. */
void      cr_dec_init(cr_decoder *d, cr_rng *r);
void      cr_dec_free(cr_decoder *d);
/* The classifier weight (V, C): tok_emb when tied. */
int       cr_dec_cls(const cr_decoder *d);

/* ---- workspaces ----------------------------------------------------------------
 * Sized once for at most cap_B sequences of cap_T tokens (cap_T <= max_seq);
 * every forward may use any B <= cap_B, T <= cap_T. Flags:
 *   BACKWARD  keep every layer's activations and allocate backward buffers;
 *             without it the layers share one set of buffers (inference).
 *   FROZEN    (with BACKWARD) no gradient slab: backward computes no weight
 *             gradient at all, only the input-embedding gradient.
 *   KV_CACHE  keep keys and values of every layer for cap_T positions, so a
 *             forward may start at pos0 > 0 (prefill, then decode steps). */
enum { CR_DEC_WS_BACKWARD = 1, CR_DEC_WS_FROZEN = 2, CR_DEC_WS_KV_CACHE = 4 };

typedef struct cr_dec_ws {
    int    cap_B, cap_T, flags;
    /* the last forward */
    int    B, T, pos0;
    int    from_ids;  /* forward took ids (backward scatters into tok_emb) */
    int    n_valid;   /* targets counted by the loss */
    float  loss;      /* mean cross-entropy over counted targets (0 if none) */
    float *logits;    /* (B, T, V) of the last forward */
    float *grads;     /* (pt.total): parameter gradients; NULL when frozen */
    /* internal buffers; "per layer" ones have L copies with BACKWARD */
    float *x;                     /* residual stream, (2L+1) slots of (N, C) */
    float *n1, *n2, *nf;          /* normed inputs (N, C), per layer / final */
    float *mean1, *mean2, *meanf; /* (N) LayerNorm means (GPT-2) */
    float *rstd1, *rstd2, *rstdf; /* (N) */
    float *qkv;                   /* (N, C + 2 KV) per layer, q and k rotated */
    float *att;                   /* (B, NH, T, Tk) per layer */
    float *ao;                    /* (N, C) attention output before wo */
    float *h1, *h3, *hg;          /* (N, H) per layer: gate, value, activated */
    float *tmp;                   /* (N, C) projections before the residual add */
    float *lse;                   /* (N) */
    int32_t *targets, *ids;       /* (N) copies from the last forward */
    float *kc, *vc;               /* (L, cap_B, cap_T, KV) key/value cache */
    float *dx, *dn, *dqkv, *dsc, *dao, *dh1, *dh3, *dhg, *dlogits; /* backward */
} cr_dec_ws;

cr_status cr_dec_ws_create(cr_dec_ws *ws, const cr_decoder *d, int cap_B, int cap_T, int flags,
                           cr_error *e);
void      cr_dec_ws_free(cr_dec_ws *ws);
/* Zero the gradient slab (no-op when frozen). */
void      cr_dec_zero_grad(const cr_decoder *d, cr_dec_ws *ws);

/* ---- forward / backward ------------------------------------------------------
 * Token embeddings of ids into emb (N, C); positions with id < 0 are left
 * as they are (the caller's soft tokens). Ids >= V are CR_ERR_ARG. */
cr_status cr_dec_embed(const cr_decoder *d, float *emb, const int32_t *ids, int N, cr_error *e);

/* Run the model on B sequences of T tokens starting at position pos0 (> 0
 * only with a KV cache, after the positions before it were run), from
 * exactly one of ids (B, T) or emb (B, T, C): the embeddings the caller has
 * written (tokens via cr_dec_embed plus soft tokens). GPT-2 adds its
 * position embeddings itself. Writes ws->logits (B, T, V). With targets
 * (B, T) (-1 = ignore), also ws->loss, the mean cross-entropy over the
 * counted targets, and ws->n_valid. */
cr_status cr_dec_forward(const cr_decoder *d, cr_dec_ws *ws, const int32_t *ids,
                         const float *emb, const int32_t *targets, int B, int T, int pos0,
                         cr_error *e);
/* Gradient of ws->loss of the last forward (which had targets and pos0 0):
 * adds parameter gradients into ws->grads (none when frozen; tensors
 * flagged CR_PARAM_FROZEN are skipped) and d loss / d emb into demb (B, T, C)
 * when demb is not NULL. A forward from ids also adds its embedding rows'
 * gradient into tok_emb's. */
cr_status cr_dec_backward(const cr_decoder *d, cr_dec_ws *ws, float *demb, cr_error *e);
/* Add demb rows into tok_emb's gradient for ids >= 0 (after a forward from
 * embeddings whose token positions came from cr_dec_embed). */
void      cr_dec_embed_backward(const cr_decoder *d, cr_dec_ws *ws, const float *demb,
                                const int32_t *ids, int N);

/* ---- bf16 weights for inference (decoder_bf16.c) -----------------------------
 * cr_dec_bf16_make rounds every matrix the forward multiplies by (wq wk wv
 * wo w1 w2 w3, GPT-2's wqkv, and the classifier: wcls, or tok_emb's copy
 * when tied) to bfloat16, round to nearest even, into one new slab (half the
 * bytes of those float32 weights, which stay: the embedding lookup, norms
 * and biases keep reading them). From then on every forward multiplies by
 * the bf16 copies, with float inputs and float sums; a decode step, bound by
 * reading weights, runs about twice as fast. Inference only: backward
 * refuses (CR_ERR_ARG) while they exist, since gradients of the float
 * weights through a bf16 forward would be wrong. cr_dec_bf16_drop frees
 * them (the model is then exactly what it was); making them twice remakes
 * them from the current float weights. */
cr_status cr_dec_bf16_make(cr_decoder *d, cr_error *e);
void      cr_dec_bf16_drop(cr_decoder *d);
/* Bytes of the bf16 slab (0 without one). */
size_t    cr_dec_bf16_bytes(const cr_decoder *d);

/* ---- generation (decoder_gen.c) --------------------------------------------------
 * temperature 0 is greedy (argmax, lowest id on ties). Otherwise logits are
 * divided by temperature, cut to the top_k most likely (0 = all), then to
 * the smallest set whose probability reaches top_p (1 = all), and sampled
 * with r. */
typedef struct cr_dec_sampler {
    float temperature;
    int   top_k;
    float top_p;
} cr_dec_sampler;

/* One draw from a row of V logits; scratch holds 2V floats. */
int32_t   cr_dec_sample(const float *logits, int V, const cr_dec_sampler *s, cr_rng *r,
                        float *scratch);
/* Generate n_new ids after a prompt of n_prompt >= 1 ids (one sequence)
 * into out (n_new). Needs a workspace with KV_CACHE and
 * cap_T >= n_prompt + n_new - 1. r may be NULL for greedy. */
cr_status cr_dec_generate(const cr_decoder *d, cr_dec_ws *ws, const int32_t *prompt,
                          int n_prompt, int n_new, const cr_dec_sampler *s, cr_rng *r,
                          int32_t *out, cr_error *e);

/* ---- files (decoder_load.c) ---------------------------------------------------------
 * llama2.c's legacy checkpoint: seven int32 (dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab (negative: separate classifier), seq_len), then
 * fp32 weights in llama2.c order. copy = 0 maps the file read-only and
 * points the weights into it (frozen use only); copy = 1 copies them into
 * an owned, trainable slab. Every size is checked against the file. */
cr_status cr_dec_load_llama2c(cr_decoder *d, const char *path, int copy, cr_error *e);
/* Hugging Face GPT-2 safetensors (GPT2Model or GPT2LMHeadModel names, with or
 * without the "transformer." prefix; Conv1D weights are (in, out) and get
 * transposed). The sizes come from the shapes; n_heads is not in the file,
 * so it is passed (<= 0: read "n_head" from config.json beside the file). */
cr_status cr_dec_load_gpt2_hf(cr_decoder *d, const char *path, int n_heads, cr_error *e);
/* crossrec's own format: the parameter table as safetensors, config in
 * __metadata__["decoder"] as JSON. Written atomically. */
cr_status cr_dec_save(const cr_decoder *d, const char *path, cr_error *e);
cr_status cr_dec_load(cr_decoder *d, const char *path, cr_error *e);
/* Any of the three, by content: a safetensors file with a "decoder" config,
 * a GPT-2 safetensors file, else llama2.c (mapped when !copy). */
cr_status cr_dec_open(cr_decoder *d, const char *path, int copy, cr_error *e);

#endif /* CR_DECODER_H */
