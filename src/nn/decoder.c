/*
 * decoder.c - the decoder language model: config checks, parameter
 * registration (llama-style names, docs/decoder.md), workspaces and the
 * forward pass of both variants through the kernels. Forward never
 * allocates; only workspace creation does. Backward is decoder_backward.c,
 * files decoder_load.c, generation decoder_gen.c.
 *
 * Legend: B sequences, T tokens, N = B*T rows, C dim, H hidden, V vocab,
 * L layers, NH heads, NKV kv heads, HD head dim, KV = NKV*HD, QKV = C+2KV.
 */
#include "decoder.h"
#include "decoder_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *cr_dec_arch_name(cr_dec_arch a) { return a == CR_DEC_GPT2 ? "gpt2" : "llama"; }

int cr_dec_arch_parse(const char *s) {
    if (!strcmp(s, "llama")) return CR_DEC_LLAMA;
    if (!strcmp(s, "gpt2")) return CR_DEC_GPT2;
    return -1;
}

/* Limits keep every size product well inside size_t and int arithmetic
 * (rows * widths are formed in size_t; GEMM dimensions are int). */
cr_status cr_dec_cfg_check(const cr_dec_cfg *c, cr_error *e) {
    struct { const char *name; int v, lo, hi; } f[] = {
        {"dim", c->dim, 1, 1 << 16},         {"hidden_dim", c->hidden_dim, 1, 1 << 18},
        {"n_layers", c->n_layers, 1, 1024},  {"n_heads", c->n_heads, 1, 1024},
        {"n_kv_heads", c->n_kv_heads, 1, 1024}, {"vocab", c->vocab, 1, 1 << 22},
        {"max_seq", c->max_seq, 1, 1 << 20},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < f[i].lo || f[i].v > f[i].hi)
            return cr_err(e, CR_ERR_CONFIG, "decoder: %s = %d, expected %d to %d", f[i].name,
                          f[i].v, f[i].lo, f[i].hi);
    if (c->arch != CR_DEC_LLAMA && c->arch != CR_DEC_GPT2)
        return cr_err(e, CR_ERR_CONFIG, "decoder: unknown arch %d", (int)c->arch);
    if (c->dim % c->n_heads || (c->dim / c->n_heads) % 2)
        return cr_err(e, CR_ERR_CONFIG,
                      "decoder: dim %d must split into n_heads %d heads of an even size",
                      c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return cr_err(e, CR_ERR_CONFIG, "decoder: n_heads %d is not a multiple of n_kv_heads %d",
                      c->n_heads, c->n_kv_heads);
    if (c->arch == CR_DEC_GPT2 && c->n_kv_heads != c->n_heads)
        return cr_err(e, CR_ERR_CONFIG, "decoder: gpt2 needs n_kv_heads == n_heads (%d != %d)",
                      c->n_kv_heads, c->n_heads);
    if (!(c->norm_eps > 0.0f) || !(c->norm_eps < 1.0f))
        return cr_err(e, CR_ERR_CONFIG, "decoder: norm_eps %g, expected in (0, 1)",
                      (double)c->norm_eps);
    return CR_OK;
}

/* ---- parameters --------------------------------------------------------------- */

static cr_status reg(cr_decoder *d, int *idx, int flags, cr_error *e, int64_t d0, int64_t d1,
                     const char *fmt, int layer) {
    char name[CR_MAX_NAME];
    snprintf(name, sizeof name, fmt, layer);
    int64_t shape[2] = {d0, d1};
    return cr_nn_add(&d->pt, idx, name, d1 > 0 ? 2 : 1, shape, flags, e);
}

/* Register every tensor, in the order docs/decoder.md lists them. */
static cr_status cr_dec_register(cr_decoder *d, cr_error *e) {
    const cr_dec_cfg *c = &d->cfg;
    int C = c->dim, H = c->hidden_dim, KV = cr_dec_kv(c), g = c->arch == CR_DEC_GPT2;
    int nd = CR_PARAM_NO_DECAY;
    d->pos_emb = d->final_norm_b = d->wcls = -1;
    CR_TRY(reg(d, &d->tok_emb, 0, e, c->vocab, C, "tok_emb", 0));
    if (g) CR_TRY(reg(d, &d->pos_emb, 0, e, c->max_seq, C, "pos_emb", 0));
    for (int l = 0; l < c->n_layers; l++) {
        cr_dec_layer *y = &d->layers[l];
        memset(y, 0xff, sizeof *y); /* every index -1 */
        CR_TRY(reg(d, &y->attn_norm, nd, e, C, 0, "layers.%d.attn_norm", l));
        if (g) CR_TRY(reg(d, &y->attn_norm_b, nd, e, C, 0, "layers.%d.attn_norm_bias", l));
        if (g) {
            CR_TRY(reg(d, &y->wqkv, 0, e, 3 * (int64_t)C, C, "layers.%d.wqkv", l));
            CR_TRY(reg(d, &y->bqkv, nd, e, 3 * (int64_t)C, 0, "layers.%d.bqkv", l));
        } else {
            CR_TRY(reg(d, &y->wq, 0, e, C, C, "layers.%d.wq", l));
            CR_TRY(reg(d, &y->wk, 0, e, KV, C, "layers.%d.wk", l));
            CR_TRY(reg(d, &y->wv, 0, e, KV, C, "layers.%d.wv", l));
        }
        CR_TRY(reg(d, &y->wo, 0, e, C, C, "layers.%d.wo", l));
        if (g) CR_TRY(reg(d, &y->bo, nd, e, C, 0, "layers.%d.bo", l));
        CR_TRY(reg(d, &y->ffn_norm, nd, e, C, 0, "layers.%d.ffn_norm", l));
        if (g) CR_TRY(reg(d, &y->ffn_norm_b, nd, e, C, 0, "layers.%d.ffn_norm_bias", l));
        CR_TRY(reg(d, &y->w1, 0, e, H, C, "layers.%d.w1", l));
        if (g) CR_TRY(reg(d, &y->b1, nd, e, H, 0, "layers.%d.b1", l));
        CR_TRY(reg(d, &y->w2, 0, e, C, H, "layers.%d.w2", l));
        if (g) CR_TRY(reg(d, &y->b2, nd, e, C, 0, "layers.%d.b2", l));
        if (!g) CR_TRY(reg(d, &y->w3, 0, e, H, C, "layers.%d.w3", l));
    }
    CR_TRY(reg(d, &d->final_norm, nd, e, C, 0, "final_norm", 0));
    if (g) CR_TRY(reg(d, &d->final_norm_b, nd, e, C, 0, "final_norm_bias", 0));
    if (!c->tied) CR_TRY(reg(d, &d->wcls, 0, e, c->vocab, C, "wcls", 0));
    return CR_OK;
}

cr_status cr_dec_setup(cr_decoder *d, const cr_dec_cfg *cfg, cr_error *e) {
    memset(d, 0, sizeof *d);
    cr_ptable_init(&d->pt);
    CR_TRY(cr_dec_cfg_check(cfg, e));
    d->cfg = *cfg;
    d->layers = cr_alloc_e(sizeof *d->layers * (size_t)cfg->n_layers, e, "decoder layers");
    if (!d->layers) return CR_ERR_NOMEM;
    CR_TRY(cr_dec_register(d, e));
    d->w = cr_alloc_e(sizeof *d->w * (size_t)d->pt.n, e, "decoder weight pointers");
    return d->w ? CR_OK : CR_ERR_NOMEM;
}

cr_status cr_dec_create(cr_decoder *d, const cr_dec_cfg *cfg, cr_error *e) {
    CR_TRY(cr_dec_setup(d, cfg, e));
    CR_TRY(cr_ptable_alloc(&d->pt, e));
    d->owned = 1;
    for (int i = 0; i < d->pt.n; i++) d->w[i] = cr_ptable_ptr(&d->pt, d->pt.data, i);
    return CR_OK;
}

void cr_dec_free(cr_decoder *d) {
    if (!d) return;
    cr_dec_bf16_drop(d);
    cr_ptable_free(&d->pt);
    cr_free(d->w);
    cr_free(d->layers);
    if (d->map.data) cr_mmap_close(&d->map);
    memset(d, 0, sizeof *d);
}

int cr_dec_cls(const cr_decoder *d) { return d->cfg.tied ? d->tok_emb : d->wcls; }

/* Biases and norm shifts 0, norm scales 1 (every NO_DECAY tensor whose name
 * does not end in a bias is a norm scale). */
void cr_dec_init(cr_decoder *d, cr_rng *r) {
    CR_ASSERT(d->owned);
    float sp = 0.02f / sqrtf(2.0f * d->cfg.n_layers);
    for (int i = 0; i < d->pt.n; i++) {
        const cr_tensor_info *t = &d->pt.t[i];
        float *w = d->w[i];
        if (t->flags & CR_PARAM_NO_DECAY) {
            int is_norm = strstr(t->name, "norm") && !strstr(t->name, "bias");
            for (size_t j = 0; j < t->numel; j++) w[j] = is_norm ? 1.0f : 0.0f;
        } else {
            const char *s = strrchr(t->name, '.');
            int proj = s && (!strcmp(s, ".wo") || !strcmp(s, ".w2"));
            cr_rng_fill_normal(r, w, t->numel, proj ? sp : 0.02f);
        }
    }
}

/* ---- workspaces ---------------------------------------------------------------- */

static float *wsa(size_t n, cr_status *st, cr_error *e, const char *what) {
    if (*st != CR_OK || n == 0) return NULL;
    float *p = cr_alloc_e(n * sizeof(float), e, what);
    if (!p) *st = CR_ERR_NOMEM;
    return p;
}

cr_status cr_dec_ws_create(cr_dec_ws *ws, const cr_decoder *d, int cap_B, int cap_T, int flags,
                           cr_error *e) {
    memset(ws, 0, sizeof *ws);
    const cr_dec_cfg *c = &d->cfg;
    if (cap_B < 1 || cap_T < 1 || cap_T > c->max_seq)
        return cr_err(e, CR_ERR_ARG, "decoder workspace: %d x %d tokens, expected B >= 1 and "
                      "1 <= T <= max_seq %d", cap_B, cap_T, c->max_seq);
    int bw = (flags & CR_DEC_WS_BACKWARD) != 0;
    if (bw && !(flags & CR_DEC_WS_FROZEN) && !d->owned)
        return cr_err(e, CR_ERR_ARG, "decoder workspace: weights mapped read-only from a file "
                      "can only be used frozen (load with copy to train them)");
    ws->cap_B = cap_B;
    ws->cap_T = cap_T;
    ws->flags = flags;
    size_t N = (size_t)cap_B * cap_T, C = (size_t)c->dim, H = (size_t)c->hidden_dim;
    size_t V = (size_t)c->vocab, L = (size_t)c->n_layers, KV = (size_t)cr_dec_kv(c);
    size_t QKV = C + 2 * KV, A = (size_t)cap_B * c->n_heads * cap_T * cap_T;
    size_t nl = bw ? L : 1; /* copies of per-layer buffers */
    int g = c->arch == CR_DEC_GPT2;
    cr_status st = CR_OK;
    ws->x = wsa((bw ? 2 * L + 1 : 1) * N * C, &st, e, "decoder residual stream");
    ws->n1 = wsa(nl * N * C, &st, e, "decoder norms");
    ws->n2 = wsa(nl * N * C, &st, e, "decoder norms");
    ws->nf = wsa(N * C, &st, e, "decoder norms");
    ws->rstd1 = wsa(nl * N, &st, e, "decoder norms");
    ws->rstd2 = wsa(nl * N, &st, e, "decoder norms");
    ws->rstdf = wsa(N, &st, e, "decoder norms");
    if (g) {
        ws->mean1 = wsa(nl * N, &st, e, "decoder norms");
        ws->mean2 = wsa(nl * N, &st, e, "decoder norms");
        ws->meanf = wsa(N, &st, e, "decoder norms");
    }
    ws->qkv = wsa(nl * N * QKV, &st, e, "decoder qkv");
    ws->att = wsa(nl * A, &st, e, "decoder attention probabilities");
    ws->ao = wsa(nl * N * C, &st, e, "decoder attention output");
    ws->h1 = wsa(nl * N * H, &st, e, "decoder feed-forward");
    if (!g) ws->h3 = wsa(nl * N * H, &st, e, "decoder feed-forward");
    ws->hg = wsa(nl * N * H, &st, e, "decoder feed-forward");
    ws->tmp = wsa(N * C, &st, e, "decoder projection");
    ws->logits = wsa(N * V, &st, e, "decoder logits");
    ws->lse = wsa(N, &st, e, "decoder logsumexp");
    if (st == CR_OK) {
        ws->targets = cr_alloc_e(N * sizeof(int32_t), e, "decoder targets");
        ws->ids = cr_alloc_e(N * sizeof(int32_t), e, "decoder ids");
        if (!ws->targets || !ws->ids) st = CR_ERR_NOMEM;
    }
    if (flags & CR_DEC_WS_KV_CACHE) {
        ws->kc = wsa(L * N * KV, &st, e, "decoder key cache");
        ws->vc = wsa(L * N * KV, &st, e, "decoder value cache");
    }
    if (bw) {
        ws->dx = wsa(N * C, &st, e, "decoder gradients");
        ws->dn = wsa(N * C, &st, e, "decoder gradients");
        ws->dqkv = wsa(N * QKV, &st, e, "decoder gradients");
        ws->dsc = wsa(A, &st, e, "decoder gradients");
        ws->dao = wsa(N * C, &st, e, "decoder gradients");
        ws->dh1 = wsa(N * H, &st, e, "decoder gradients");
        if (!g) ws->dh3 = wsa(N * H, &st, e, "decoder gradients");
        ws->dhg = wsa(N * H, &st, e, "decoder gradients");
        ws->dlogits = wsa(N * V, &st, e, "decoder gradients");
        if (!(flags & CR_DEC_WS_FROZEN))
            ws->grads = wsa(d->pt.total, &st, e, "decoder parameter gradients");
    }
    if (st != CR_OK) cr_dec_ws_free(ws);
    return st;
}

void cr_dec_ws_free(cr_dec_ws *ws) {
    if (!ws) return;
    float *bufs[] = {ws->x,     ws->n1,    ws->n2,   ws->nf,    ws->mean1, ws->mean2,
                     ws->meanf, ws->rstd1, ws->rstd2, ws->rstdf, ws->qkv,  ws->att,
                     ws->ao,    ws->h1,    ws->h3,   ws->hg,    ws->tmp,   ws->logits,
                     ws->lse,   ws->kc,    ws->vc,   ws->dx,    ws->dn,    ws->dqkv,
                     ws->dsc,   ws->dao,   ws->dh1,  ws->dh3,   ws->dhg,   ws->dlogits,
                     ws->grads};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cr_free(bufs[i]);
    cr_free(ws->targets);
    cr_free(ws->ids);
    memset(ws, 0, sizeof *ws);
}

void cr_dec_zero_grad(const cr_decoder *d, cr_dec_ws *ws) {
    if (ws->grads) memset(ws->grads, 0, d->pt.total * sizeof(float));
}

/* ---- forward -------------------------------------------------------------------- */

cr_status cr_dec_embed(const cr_decoder *d, float *emb, const int32_t *ids, int N, cr_error *e) {
    int C = d->cfg.dim;
    for (int r = 0; r < N; r++) {
        if (ids[r] < 0) continue;
        if (ids[r] >= d->cfg.vocab)
            return cr_err(e, CR_ERR_ARG, "decoder: token id %d at position %d is outside the "
                          "vocabulary of %d", (int)ids[r], r, d->cfg.vocab);
        memcpy(emb + (size_t)r * C, d->w[d->tok_emb] + (size_t)ids[r] * C, C * sizeof(float));
    }
    return CR_OK;
}

/* out = a + b elementwise; out may be a or b (inference shares buffers). */
static void cr_add(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* out = inp W[wi]^T + b through the bf16 copy of W[wi] when there is one. */
static void cr_dec_linear(const cr_decoder *d, int wi, int bi, float *out, const float *inp,
                          int N, int C, int OC, int ldi, int ldo) {
    int bf16 = d->wb && d->wb[wi];
    cr_weight w = {.form = bf16 ? CR_WEIGHT_BF16 : CR_WEIGHT_F32, .OC = OC, .C = C,
                   .w = bf16 ? (const void *)d->wb[wi] : d->w[wi]};
    cr_linear(out, inp, &w, bi >= 0 ? d->w[bi] : NULL, N, ldi, ldo, 0, NULL);
}

/* One block. Llama: x += wo attn(rope(q, k), v) of rmsnorm(x), then
 * x += w2 (silu(w1 n) * w3 n) of rmsnorm(x). GPT-2: the same with
 * LayerNorm, a fused biased qkv, biases and gelu(w1 n + b1). */
static void cr_dec_block_forward(const cr_decoder *d, cr_dec_ws *ws, int l, int B, int T,
                                 int pos0) {
    const cr_dec_cfg *c = &d->cfg;
    const cr_dec_layer *y = &d->layers[l];
    float *const *W = d->w;
    int g = c->arch == CR_DEC_GPT2, N = B * T, C = c->dim, H = c->hidden_dim;
    int KV = cr_dec_kv(c), QKV = C + 2 * KV, HD = C / c->n_heads;
    cr_dec_acts a = cr_dec_layer_acts(d, ws, l);
    if (g)
        cr_layernorm_forward(a.n1, a.mean1, a.rstd1, a.xin, W[y->attn_norm], W[y->attn_norm_b],
                             N, C, c->norm_eps);
    else
        cr_rmsnorm_forward(a.n1, a.rstd1, a.xin, W[y->attn_norm], N, C, c->norm_eps);
    if (g) {
        cr_dec_linear(d, y->wqkv, y->bqkv, a.qkv, a.n1, N, C, QKV, C, QKV);
    } else {
        cr_dec_linear(d, y->wq, -1, a.qkv, a.n1, N, C, C, C, QKV);
        cr_dec_linear(d, y->wk, -1, a.qkv + C, a.n1, N, C, KV, C, QKV);
        cr_dec_linear(d, y->wv, -1, a.qkv + C + KV, a.n1, N, C, KV, C, QKV);
        cr_rope_forward(a.qkv, B, T, c->n_heads, HD, QKV, pos0);
        cr_rope_forward(a.qkv + C, B, T, c->n_kv_heads, HD, QKV, pos0);
    }
    if (ws->kc) {
        /* keys and values of these positions into the cache, then attend
         * over everything cached so far */
        size_t lo = (size_t)l * ws->cap_B * ws->cap_T * KV;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *row = a.qkv + ((size_t)b * T + t) * QKV;
                size_t o = lo + ((size_t)b * ws->cap_T + pos0 + t) * KV;
                memcpy(ws->kc + o, row + C, KV * sizeof(float));
                memcpy(ws->vc + o, row + C + KV, KV * sizeof(float));
            }
        cr_attention_forward(a.ao, a.att, a.qkv, ws->kc + lo, ws->vc + lo, B, T, ws->cap_T,
                             pos0, c->n_heads, c->n_kv_heads, HD, QKV, KV);
    } else {
        cr_attention_forward(a.ao, a.att, a.qkv, a.qkv + C, a.qkv + C + KV, B, T, T, 0,
                             c->n_heads, c->n_kv_heads, HD, QKV, QKV);
    }
    cr_dec_linear(d, y->wo, g ? y->bo : -1, ws->tmp, a.ao, N, C, C, C, C);
    cr_add(a.xmid, a.xin, ws->tmp, (size_t)N * C);
    if (g)
        cr_layernorm_forward(a.n2, a.mean2, a.rstd2, a.xmid, W[y->ffn_norm], W[y->ffn_norm_b],
                             N, C, c->norm_eps);
    else
        cr_rmsnorm_forward(a.n2, a.rstd2, a.xmid, W[y->ffn_norm], N, C, c->norm_eps);
    cr_dec_linear(d, y->w1, g ? y->b1 : -1, a.h1, a.n2, N, C, H, C, H);
    if (g) {
        cr_gelu_forward(a.hg, a.h1, (size_t)N * H);
    } else {
        cr_dec_linear(d, y->w3, -1, a.h3, a.n2, N, C, H, C, H);
        cr_swiglu_forward(a.hg, a.h1, a.h3, (size_t)N * H);
    }
    cr_dec_linear(d, y->w2, g ? y->b2 : -1, ws->tmp, a.hg, N, H, C, H, C);
    cr_add(a.xout, a.xmid, ws->tmp, (size_t)N * C);
}

cr_status cr_dec_forward(const cr_decoder *d, cr_dec_ws *ws, const int32_t *ids,
                         const float *emb, const int32_t *targets, int B, int T, int pos0,
                         cr_error *e) {
    const cr_dec_cfg *c = &d->cfg;
    if ((ids == NULL) == (emb == NULL))
        return cr_err(e, CR_ERR_ARG, "decoder forward: pass exactly one of ids and embeddings");
    if (B < 1 || B > ws->cap_B || T < 1 || pos0 < 0 || pos0 + T > ws->cap_T)
        return cr_err(e, CR_ERR_ARG, "decoder forward: %d x %d tokens at position %d do not "
                      "fit the workspace (%d x %d)", B, T, pos0, ws->cap_B, ws->cap_T);
    if (pos0 > 0 && !ws->kc)
        return cr_err(e, CR_ERR_ARG, "decoder forward: position %d > 0 needs a workspace with "
                      "a key/value cache", pos0);
    int N = B * T, C = c->dim, V = c->vocab;
    if (targets)
        for (int r = 0; r < N; r++)
            if (targets[r] < -1 || targets[r] >= V)
                return cr_err(e, CR_ERR_ARG, "decoder forward: target %d at position %d is "
                              "outside -1..%d", (int)targets[r], r, V - 1);
    float *x0 = ws->x;
    if (ids) {
        for (int r = 0; r < N; r++)
            if (ids[r] < 0 || ids[r] >= V)
                return cr_err(e, CR_ERR_ARG, "decoder forward: token id %d at position %d is "
                              "outside 0..%d", (int)ids[r], r, V - 1);
        CR_TRY(cr_dec_embed(d, x0, ids, N, e));
        memcpy(ws->ids, ids, (size_t)N * sizeof *ids);
    } else {
        memcpy(x0, emb, (size_t)N * C * sizeof(float));
    }
    ws->B = B, ws->T = T, ws->pos0 = pos0, ws->from_ids = ids != NULL;
    if (c->arch == CR_DEC_GPT2) {
        const float *pe = d->w[d->pos_emb];
        for (int r = 0; r < N; r++)
            for (int j = 0; j < C; j++)
                x0[(size_t)r * C + j] += pe[(size_t)(pos0 + r % T) * C + j];
    }
    for (int l = 0; l < c->n_layers; l++) cr_dec_block_forward(d, ws, l, B, T, pos0);
    const float *xf = cr_dec_layer_acts(d, ws, c->n_layers - 1).xout;
    if (c->arch == CR_DEC_GPT2)
        cr_layernorm_forward(ws->nf, ws->meanf, ws->rstdf, xf, d->w[d->final_norm],
                             d->w[d->final_norm_b], N, C, c->norm_eps);
    else
        cr_rmsnorm_forward(ws->nf, ws->rstdf, xf, d->w[d->final_norm], N, C, c->norm_eps);
    cr_dec_linear(d, cr_dec_cls(d), -1, ws->logits, ws->nf, N, C, V, C, V);
    ws->loss = 0.0f;
    ws->n_valid = 0;
    if (targets) {
        memcpy(ws->targets, targets, (size_t)N * sizeof *targets);
        double sum = cr_xent_forward(ws->lse, ws->logits, targets, N, V, &ws->n_valid);
        ws->loss = ws->n_valid ? (float)(sum / ws->n_valid) : 0.0f;
    } else {
        for (int r = 0; r < N; r++) ws->targets[r] = -1;
    }
    return CR_OK;
}
