/*
 * decoder_load.c - decoder weights from files: llama2.c's legacy checkpoint
 * (mapped read-only and used in place, or copied to train), Hugging Face
 * GPT-2 safetensors (Conv1D weights transposed into nn.Linear layout), and
 * crossrec's own safetensors format. Every size a file states is checked
 * against the file before anything is read; errors name the file and say
 * what was wrong. docs/decoder.md describes the formats.
 *
 * Legend: C dim, H hidden, V vocab, L layers, S max_seq, KV kv width.
 */
#include "decoder.h"
#include "decoder_internal.h"
#include "../core/ptable_io.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- llama2.c -------------------------------------------------------------------
 * Legacy layout (export.py legacy_export / llama2.c run.c): int32 dim,
 * hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; then
 * float32 token embeddings (V, C); rms_att (L, C); wq (L, C, C);
 * wk (L, KV, C); wv (L, KV, C); wo (L, C, C); rms_ffn (L, C); w1 (L, H, C);
 * w2 (L, C, H); w3 (L, H, C); rms_final (C); freq_cis_real and _imag
 * (S, HD/2) each (unused: RoPE angles are computed); wcls (V, C) only when
 * vocab_size < 0. */
#define CR_L2C_HEADER 28

/* Point (or copy) tensor idx of every layer at consecutive blocks. */
static size_t l2c_stack(cr_decoder *d, const uint8_t *base, size_t off, size_t per_layer,
                        size_t field) {
    for (int l = 0; l < d->cfg.n_layers; l++) {
        int idx = *(const int *)((const char *)&d->layers[l] + field);
        d->w[idx] = (float *)(base + off);
        off += per_layer * sizeof(float);
    }
    return off;
}

cr_status cr_dec_load_llama2c(cr_decoder *d, const char *path, int copy, cr_error *e) {
    memset(d, 0, sizeof *d);
    cr_mmap m;
    CR_TRY(cr_mmap_open(&m, path, e));
    cr_status st = CR_OK;
    int32_t h[7];
    if (m.size < CR_L2C_HEADER) {
        st = cr_err(e, CR_ERR_FORMAT, "%s: %zu bytes, too short for a llama2.c header (28)",
                    path, m.size);
        goto fail;
    }
    memcpy(h, m.data, sizeof h);
    if (h[0] == 0x616b3432) { /* "ak42": llama2.c's versioned exports */
        st = cr_err(e, CR_ERR_FORMAT, "%s: a versioned llama2.c export (magic ak42); only the "
                    "legacy format is read (export with --version 0)", path);
        goto fail;
    }
    cr_dec_cfg c = {.arch = CR_DEC_LLAMA, .dim = h[0], .hidden_dim = h[1], .n_layers = h[2],
                    .n_heads = h[3], .n_kv_heads = h[4], .vocab = h[5] == INT32_MIN ? 0 : h[5] < 0 ? -h[5] : h[5],
                    .max_seq = h[6], .norm_eps = 1e-5f, .tied = h[5] > 0};
    if ((st = cr_dec_cfg_check(&c, e)) != CR_OK) {
        cr_err_prefix(e, "%s: llama2.c header (dim %d, hidden %d, layers %d, heads %d, kv heads "
                      "%d, vocab %d, seq_len %d)", path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
        st = CR_ERR_FORMAT;
        if (e) e->status = st;
        goto fail;
    }
    /* Sizes are bounded by cr_dec_cfg_check, so these products fit in 64 bits. */
    uint64_t C = (uint64_t)c.dim, H = (uint64_t)c.hidden_dim, L = (uint64_t)c.n_layers;
    uint64_t V = (uint64_t)c.vocab, KV = (uint64_t)cr_dec_kv(&c), HD = C / (uint64_t)c.n_heads;
    uint64_t floats = V * C + L * (2 * C + 2 * C * C + 2 * KV * C + 3 * H * C) + C +
                      (uint64_t)c.max_seq * HD + (c.tied ? 0 : V * C);
    uint64_t want = CR_L2C_HEADER + floats * 4;
    if ((uint64_t)m.size != want) {
        st = cr_err(e, CR_ERR_FORMAT, "%s: %zu bytes, but its header (dim %d, hidden %d, "
                    "layers %d, heads %d, kv heads %d, vocab %d, seq_len %d) implies %llu: "
                    "%s", path, m.size, h[0], h[1], h[2], h[3], h[4], h[5], h[6],
                    (unsigned long long)want,
                    (uint64_t)m.size < want ? "the file is truncated" : "trailing data");
        goto fail;
    }
    if ((st = cr_dec_setup(d, &c, e)) != CR_OK) goto fail;
    const uint8_t *base = m.data;
    size_t off = CR_L2C_HEADER;
    d->w[d->tok_emb] = (float *)(base + off);
    off += V * C * sizeof(float);
#define CR_L2C(field, n) off = l2c_stack(d, base, off, (n), offsetof(cr_dec_layer, field))
    CR_L2C(attn_norm, C);
    CR_L2C(wq, C * C);
    CR_L2C(wk, KV * C);
    CR_L2C(wv, KV * C);
    CR_L2C(wo, C * C);
    CR_L2C(ffn_norm, C);
    CR_L2C(w1, H * C);
    CR_L2C(w2, C * H);
    CR_L2C(w3, H * C);
#undef CR_L2C
    d->w[d->final_norm] = (float *)(base + off);
    off += C * sizeof(float);
    off += (size_t)c.max_seq * HD * sizeof(float); /* freq_cis_real, freq_cis_imag */
    if (!c.tied) d->w[d->wcls] = (float *)(base + off);
    if (copy) {
        if ((st = cr_ptable_alloc(&d->pt, e)) != CR_OK) goto fail;
        for (int i = 0; i < d->pt.n; i++) {
            float *dst = cr_ptable_ptr(&d->pt, d->pt.data, i);
            memcpy(dst, d->w[i], d->pt.t[i].numel * sizeof(float));
            d->w[i] = dst;
        }
        d->owned = 1;
        cr_mmap_close(&m);
    } else {
        d->map = m; /* the weights stay in the read-only map */
    }
    return CR_OK;
fail:
    cr_dec_free(d);
    cr_mmap_close(&m);
    return st;
}

/* ---- Hugging Face GPT-2 -------------------------------------------------------- */

/* Copy one stored tensor into parameter idx, transposing (in, out) Conv1D
 * weights into (out, in) when transpose is set. */
static cr_status hf_take(cr_decoder *d, const cr_st_file *f, const char *pre, const char *name,
                         int layer, int idx, int transpose, float *tmp, cr_error *e) {
    char full[CR_MAX_NAME + 32];
    if (layer >= 0) snprintf(full, sizeof full, "%sh.%d.%s", pre, layer, name);
    else snprintf(full, sizeof full, "%s%s", pre, name);
    const cr_tensor_info *t = &d->pt.t[idx];
    int64_t shape[2] = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0};
    if (transpose) shape[0] = t->shape[1], shape[1] = t->shape[0];
    const cr_st_tensor *s = cr_st_find(f, full);
    if (!s) return cr_err(e, CR_ERR_NOT_FOUND, "%s: tensor '%s' missing", f->path, full);
    if (s->dtype != CR_DT_F32 && s->dtype != CR_DT_F16 && s->dtype != CR_DT_BF16 &&
        s->dtype != CR_DT_F64)
        return cr_err(e, CR_ERR_MISMATCH, "%s: tensor '%s' is %s, expected a float type",
                      f->path, full, cr_dtype_name(s->dtype));
    if (s->ndim != t->ndim || s->shape[0] != shape[0] || (t->ndim > 1 && s->shape[1] != shape[1]))
        return cr_err(e, CR_ERR_SHAPE, "%s: tensor '%s' has shape [%lld, %lld], expected "
                      "[%lld, %lld]", f->path, full, (long long)s->shape[0],
                      (long long)(s->ndim > 1 ? s->shape[1] : 0), (long long)shape[0],
                      (long long)shape[1]);
    float *dst = d->w[idx];
    if (!transpose) {
        cr_st_to_f32(s, dst);
        return CR_OK;
    }
    cr_st_to_f32(s, tmp);
    int64_t R = shape[0], K = shape[1]; /* stored (R, K) = (in, out) */
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < K; j++) dst[j * R + i] = tmp[i * K + j];
    return CR_OK;
}

/* n_head and layer_norm_epsilon from config.json beside the weights. */
static cr_status hf_config(const char *path, int *n_heads, float *eps, cr_error *e) {
    char cfg[4096];
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path) : 1;
    snprintf(cfg, sizeof cfg, "%.*s/config.json", dl, slash ? path : ".");
    char *text = NULL;
    size_t n = 0;
    if (cr_read_file(cfg, &text, &n, e) != CR_OK)
        return cr_err(e, CR_ERR_NOT_FOUND, "%s: GPT-2 weights do not record the number of "
                      "heads; pass it, or put Hugging Face's config.json beside them (%s)",
                      path, cfg);
    cJSON *j = cJSON_Parse(text);
    cr_free(text);
    const cJSON *nh = cJSON_GetObjectItemCaseSensitive(j, "n_head");
    const cJSON *le = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon");
    cr_status st = CR_OK;
    if (!cJSON_IsNumber(nh)) st = cr_err(e, CR_ERR_PARSE, "%s: no numeric \"n_head\"", cfg);
    else *n_heads = (int)nh->valuedouble;
    if (cJSON_IsNumber(le)) *eps = (float)le->valuedouble;
    cJSON_Delete(j);
    return st;
}

cr_status cr_dec_load_gpt2_hf(cr_decoder *d, const char *path, int n_heads, cr_error *e) {
    memset(d, 0, sizeof *d);
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    cr_status st = CR_OK;
    float *tmp = NULL;
    const char *pre = cr_st_find(&f, "wte.weight") ? "" : "transformer.";
    char nm[CR_MAX_NAME + 32];
    snprintf(nm, sizeof nm, "%swte.weight", pre);
    const cr_st_tensor *wte = cr_st_find(&f, nm);
    snprintf(nm, sizeof nm, "%swpe.weight", pre);
    const cr_st_tensor *wpe = cr_st_find(&f, nm);
    snprintf(nm, sizeof nm, "%sh.0.mlp.c_fc.weight", pre);
    const cr_st_tensor *fc = cr_st_find(&f, nm);
    if (!wte || !wpe || !fc || wte->ndim != 2 || wpe->ndim != 2 || fc->ndim != 2) {
        st = cr_err(e, CR_ERR_FORMAT, "%s: not a GPT-2 checkpoint (needs 2-d wte.weight, "
                    "wpe.weight and h.0.mlp.c_fc.weight, optionally under transformer.)", path);
        goto done;
    }
    int L = 0;
    for (;; L++) {
        snprintf(nm, sizeof nm, "%sh.%d.ln_1.weight", pre, L);
        if (!cr_st_find(&f, nm) || L > 1024) break;
    }
    float eps = 1e-5f;
    if (n_heads <= 0 && (st = hf_config(path, &n_heads, &eps, e)) != CR_OK) goto done;
    cr_dec_cfg c = {.arch = CR_DEC_GPT2, .dim = (int)wte->shape[1], .hidden_dim = (int)fc->shape[1],
                    .n_layers = L, .n_heads = n_heads, .n_kv_heads = n_heads,
                    .vocab = (int)wte->shape[0], .max_seq = (int)wpe->shape[0],
                    .norm_eps = eps, .tied = 1};
    if ((st = cr_dec_create(d, &c, e)) != CR_OK) {
        cr_err_prefix(e, "%s", path);
        goto done;
    }
    size_t big = 0;
    for (int i = 0; i < d->pt.n; i++) big = d->pt.t[i].numel > big ? d->pt.t[i].numel : big;
    if (!(tmp = cr_alloc_e(big * sizeof(float), e, "GPT-2 conversion"))) {
        st = CR_ERR_NOMEM;
        goto done;
    }
#define HF(name, l, idx, tr)                                                                  \
    if ((st = hf_take(d, &f, pre, name, l, idx, tr, tmp, e)) != CR_OK) goto done
    HF("wte.weight", -1, d->tok_emb, 0);
    HF("wpe.weight", -1, d->pos_emb, 0);
    for (int l = 0; l < L; l++) {
        const cr_dec_layer *y = &d->layers[l];
        HF("ln_1.weight", l, y->attn_norm, 0);
        HF("ln_1.bias", l, y->attn_norm_b, 0);
        HF("attn.c_attn.weight", l, y->wqkv, 1);
        HF("attn.c_attn.bias", l, y->bqkv, 0);
        HF("attn.c_proj.weight", l, y->wo, 1);
        HF("attn.c_proj.bias", l, y->bo, 0);
        HF("ln_2.weight", l, y->ffn_norm, 0);
        HF("ln_2.bias", l, y->ffn_norm_b, 0);
        HF("mlp.c_fc.weight", l, y->w1, 1);
        HF("mlp.c_fc.bias", l, y->b1, 0);
        HF("mlp.c_proj.weight", l, y->w2, 1);
        HF("mlp.c_proj.bias", l, y->b2, 0);
    }
    HF("ln_f.weight", -1, d->final_norm, 0);
    HF("ln_f.bias", -1, d->final_norm_b, 0);
#undef HF
done:
    cr_free(tmp);
    cr_st_close(&f);
    if (st != CR_OK) cr_dec_free(d);
    return st;
}

/* ---- crossrec's own format ------------------------------------------------------- */

cr_status cr_dec_save(const cr_decoder *d, const char *path, cr_error *e) {
    const cr_dec_cfg *c = &d->cfg;
    char json[512];
    snprintf(json, sizeof json,
             "{\"arch\":\"%s\",\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,"
             "\"n_kv_heads\":%d,\"vocab\":%d,\"max_seq\":%d,\"norm_eps\":%.9g,\"tied\":%d}",
             cr_dec_arch_name(c->arch), c->dim, c->hidden_dim, c->n_layers, c->n_heads,
             c->n_kv_heads, c->vocab, c->max_seq, (double)c->norm_eps, c->tied);
    cr_st_writer w;
    cr_st_writer_init(&w);
    cr_status st = cr_st_add_meta(&w, "decoder", json, e);
    for (int i = 0; st == CR_OK && i < d->pt.n; i++)
        st = cr_st_add(&w, d->pt.t[i].name, CR_DT_F32, d->pt.t[i].ndim, d->pt.t[i].shape,
                       d->w[i], e);
    if (st == CR_OK) st = cr_st_save(&w, path, e);
    cr_st_writer_free(&w);
    return st;
}

static int jint(const cJSON *o, const char *k, int *ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) *ok = 0;
    return cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
}

cr_status cr_dec_load(cr_decoder *d, const char *path, cr_error *e) {
    memset(d, 0, sizeof *d);
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    cr_status st = CR_OK;
    const char *meta = cr_st_meta(&f, "decoder");
    cJSON *j = meta ? cJSON_Parse(meta) : NULL;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "arch");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "norm_eps");
    int ok = j && cJSON_IsString(arch) && cJSON_IsNumber(eps);
    cr_dec_cfg c = {0};
    if (ok) {
        int a = cr_dec_arch_parse(arch->valuestring);
        ok = a >= 0;
        c.arch = (cr_dec_arch)(a < 0 ? 0 : a);
        c.dim = jint(j, "dim", &ok), c.hidden_dim = jint(j, "hidden_dim", &ok);
        c.n_layers = jint(j, "n_layers", &ok), c.n_heads = jint(j, "n_heads", &ok);
        c.n_kv_heads = jint(j, "n_kv_heads", &ok), c.vocab = jint(j, "vocab", &ok);
        c.max_seq = jint(j, "max_seq", &ok), c.tied = jint(j, "tied", &ok);
        c.norm_eps = (float)eps->valuedouble;
    }
    cJSON_Delete(j);
    if (!ok) {
        st = cr_err(e, CR_ERR_FORMAT, "%s: no valid decoder config in __metadata__[\"decoder\"]",
                    path);
    } else if ((st = cr_dec_create(d, &c, e)) == CR_OK) {
        st = cr_ptable_from_st(&d->pt, d->pt.data, "", &f, 0, e);
    }
    if (st != CR_OK) {
        cr_err_prefix(e, "%s", path);
        cr_dec_free(d);
    }
    cr_st_close(&f);
    return st;
}

/* Whether needle occurs in the n bytes at p (memmem is not POSIX). */
static int has_bytes(const uint8_t *p, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(p + i, needle, k)) return 1;
    return 0;
}

cr_status cr_dec_open(cr_decoder *d, const char *path, int copy, cr_error *e) {
    memset(d, 0, sizeof *d);
    cr_mmap m;
    CR_TRY(cr_mmap_open(&m, path, e));
    uint64_t hl = 0;
    int st_like = m.size > 9;
    if (st_like) memcpy(&hl, m.data, 8);
    st_like = st_like && hl > 1 && hl <= m.size - 8 && m.data[8] == '{';
    int has_cfg = st_like && has_bytes(m.data + 8, (size_t)hl, "\"decoder\"");
    cr_mmap_close(&m);
    if (!st_like) return cr_dec_load_llama2c(d, path, copy, e);
    return has_cfg ? cr_dec_load(d, path, e) : cr_dec_load_gpt2_hf(d, path, 0, e);
}
