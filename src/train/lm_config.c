/*
 * lm_config.c - the language-model recipe read from YAML, and the corpus
 * as a stream of token ids: tokenised once, cached beside the run with a
 * header that says which corpus and tokenizer made it, split by position
 * and cut into training windows. Never trusts a cache it cannot match.
 */
#include "lm_train.h"

#include "../core/yaml.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cr_lm_cfg_default(cr_lm_cfg *c) {
    memset(c, 0, sizeof *c);
    c->model.arch = CR_DEC_LLAMA;
    c->model.norm_eps = 1e-5f;
    c->model.tied = 1;
    c->batch = 8;
    c->seq_len = 128;
    c->steps = 1000;
    cr_optim_cfg_adamw_cosine(&c->opt, 0.1f, 100);
    c->opt.beta2 = 0.95f;
    c->seed = 1;
    c->threads = 0;
    c->eval_every = 200;
    c->eval_batches = 8;
    c->checkpoint_every = 200;
    c->log_every = 10;
    c->valid_frac = 0.05;
}

/* Resolve p against the config file's directory (absolute paths stay). */
static cr_status join_path(char *out, size_t cap, const char *base, const char *p,
                           const char *what, cr_error *e) {
    int n = (p[0] == '/' || !base || !base[0]) ? snprintf(out, cap, "%s", p)
                                               : snprintf(out, cap, "%s/%s", base, p);
    if (n < 0 || (size_t)n >= cap) return cr_err(e, CR_ERR_CONFIG, "%s: path too long", what);
    return CR_OK;
}

static cr_status parse_model(cr_lm_cfg *c, const cr_yaml_node *m, cr_error *e) {
    static const char *const keys[] = {"arch", "dim", "n_layers", "n_heads", "n_kv_heads",
                                       "hidden_dim", "max_seq", "tied", "norm_eps", NULL};
    static const char *const archs[] = {"llama", "gpt2", NULL};
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, "model", e));
    CR_TRY(cr_yaml_check_keys(m, keys, "model", e));
    cr_dec_cfg *d = &c->model;
    int arch = 0;
    double eps = 1e-5;
    CR_TRY(cr_yaml_enum(m, "arch", "model", 0, 0, archs, &arch, e));
    d->arch = (cr_dec_arch)arch;
    /* bounds that keep a model trainable on one machine; the decoder's own
     * check (heads dividing dim, ...) runs once the vocabulary is known */
    CR_TRY(cr_yaml_int32(m, "dim", "model", 1, 0, 2, 8192, &d->dim, e));
    CR_TRY(cr_yaml_int32(m, "n_layers", "model", 1, 0, 1, 256, &d->n_layers, e));
    CR_TRY(cr_yaml_int32(m, "n_heads", "model", 1, 0, 1, 256, &d->n_heads, e));
    CR_TRY(cr_yaml_int32(m, "n_kv_heads", "model", 0, d->n_heads, 1, 256, &d->n_kv_heads, e));
    /* Llama's default is llama2.c's: 2/3 of 4C, rounded up to a multiple of 32 */
    int hd = d->arch == CR_DEC_GPT2 ? 4 * d->dim : ((8 * d->dim / 3 + 31) / 32) * 32;
    CR_TRY(cr_yaml_int32(m, "hidden_dim", "model", 0, hd, 1, 65536, &d->hidden_dim, e));
    CR_TRY(cr_yaml_int32(m, "max_seq", "model", 0, 0, 0, 65536, &d->max_seq, e));
    CR_TRY(cr_yaml_bool(m, "tied", "model", 0, 1, &d->tied, e));
    CR_TRY(cr_yaml_double(m, "norm_eps", "model", 0, 1e-5, 1e-12, 0.1, &eps, e));
    d->norm_eps = (float)eps;
    return CR_OK;
}

static cr_status parse_train(cr_lm_cfg *c, const cr_yaml_node *t, cr_error *e) {
    static const char *const keys[] = {
        "batch",   "seq_len", "steps",   "lr",      "warmup",       "min_lr_frac",
        "weight_decay", "beta1", "beta2", "eps",   "clip",         "seed",
        "threads", "eval_every", "eval_batches", "checkpoint_every", "log_every",
        "valid_frac", NULL};
    CR_TRY(cr_yaml_check_keys(t, keys, "train", e));
    static const char *const opt_keys[] = {"lr",    "warmup", "min_lr_frac", "weight_decay",
                                           "beta1", "beta2",  "eps",         "clip", NULL};
    int64_t seed;
    const char *p = "train";
    CR_TRY(cr_yaml_int32(t, "batch", p, 0, c->batch, 1, 4096, &c->batch, e));
    CR_TRY(cr_yaml_int32(t, "seq_len", p, 0, c->seq_len, 2, 65536, &c->seq_len, e));
    CR_TRY(cr_yaml_int(t, "steps", p, 0, c->steps, 1, INT64_C(1) << 40, &c->steps, e));
    CR_TRY(cr_optim_cfg_parse(&c->opt, t, p, opt_keys, e));
    CR_TRY(cr_yaml_int(t, "seed", p, 0, (int64_t)c->seed, 0, INT64_MAX, &seed, e));
    CR_TRY(cr_yaml_int32(t, "threads", p, 0, c->threads, 0, 1024, &c->threads, e));
    CR_TRY(cr_yaml_int(t, "eval_every", p, 0, c->eval_every, 0, INT64_C(1) << 40,
                       &c->eval_every, e));
    CR_TRY(cr_yaml_int32(t, "eval_batches", p, 0, c->eval_batches, 0, 1 << 20,
                         &c->eval_batches, e));
    CR_TRY(cr_yaml_int(t, "checkpoint_every", p, 0, c->checkpoint_every, 0, INT64_C(1) << 40,
                       &c->checkpoint_every, e));
    CR_TRY(cr_yaml_int(t, "log_every", p, 0, c->log_every, 1, INT64_C(1) << 40, &c->log_every,
                       e));
    CR_TRY(cr_yaml_double(t, "valid_frac", p, 0, c->valid_frac, 0.001, 0.5, &c->valid_frac, e));
    c->seed = (uint64_t)seed;
    return CR_OK;
}

static cr_status parse_root(cr_lm_cfg *c, const cr_yaml_node *root, const char *base,
                            cr_error *e) {
    static const char *const keys[] = {"corpus", "tokenizer", "train_tokenizer", "model",
                                       "train", NULL};
    CR_TRY(cr_yaml_expect(root, CR_YAML_MAP, "", e));
    CR_TRY(cr_yaml_check_keys(root, keys, "", e));
    char tmp[CR_LM_PATH];
    CR_TRY(cr_yaml_str(root, "corpus", "", 1, NULL, tmp, sizeof tmp, e));
    CR_TRY(join_path(c->corpus, sizeof c->corpus, base, tmp, "corpus", e));
    const cr_yaml_node *tk = cr_yaml_get(root, "tokenizer");
    const cr_yaml_node *tt = cr_yaml_get(root, "train_tokenizer");
    if ((tk != NULL) == (tt != NULL))
        return cr_yaml_err(e, CR_ERR_CONFIG, tk ? tk : root, "",
                           "give exactly one of 'tokenizer' (a BPE directory) and "
                           "'train_tokenizer' ({vocab_size: N})");
    if (tk) {
        CR_TRY(cr_yaml_str(root, "tokenizer", "", 1, NULL, tmp, sizeof tmp, e));
        CR_TRY(join_path(c->tokenizer, sizeof c->tokenizer, base, tmp, "tokenizer", e));
    } else {
        static const char *const tkeys[] = {"vocab_size", NULL};
        CR_TRY(cr_yaml_expect(tt, CR_YAML_MAP, "train_tokenizer", e));
        CR_TRY(cr_yaml_check_keys(tt, tkeys, "train_tokenizer", e));
        CR_TRY(cr_yaml_int32(tt, "vocab_size", "train_tokenizer", 0, 4096, 258, 1 << 20,
                             &c->train_vocab, e));
    }
    CR_TRY(parse_model(c, cr_yaml_get(root, "model"), e));
    CR_TRY(parse_train(c, cr_yaml_get(root, "train"), e));
    if (c->model.max_seq == 0) c->model.max_seq = c->seq_len;
    if (c->seq_len > c->model.max_seq)
        return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(cr_yaml_get(root, "train"), "seq_len"),
                           "train.seq_len", "%d is longer than model.max_seq %d", c->seq_len,
                           c->model.max_seq);
    return CR_OK;
}

/* A message about a missing key has no node to take a position from:
 * name the file in front of it (the fuzzer found "model: missing"). */
static cr_status name_file(cr_status s, const char *file, cr_error *e) {
    if (s && e && strncmp(e->msg, file, strlen(file)) != 0) cr_err_prefix(e, "%s", file);
    return s;
}

cr_status cr_lm_cfg_parse(cr_lm_cfg *c, const char *text, const char *name, const char *base_dir,
                          cr_error *e) {
    cr_lm_cfg_default(c);
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load_string(&doc, text, name, e));
    cr_status s = parse_root(c, cr_yaml_root(doc), base_dir, e);
    cr_yaml_free(doc);
    return name_file(s, name, e);
}

cr_status cr_lm_cfg_load(cr_lm_cfg *c, const char *path, cr_error *e) {
    cr_lm_cfg_default(c);
    char base[CR_LM_PATH];
    snprintf(base, sizeof base, "%s", path);
    char *slash = strrchr(base, '/');
    if (slash) *slash = 0;
    else base[0] = 0;
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load(&doc, path, e));
    cr_status s = parse_root(c, cr_yaml_root(doc), base, e);
    cr_yaml_free(doc);
    return name_file(s, path, e);
}

/* ---- corpus ids ----------------------------------------------------------------------- */

int32_t cr_lm_bos(const cr_bpe *b) { return cr_bpe_token_id(b, "<|endoftext|>", 13); }

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * UINT64_C(1099511628211);
    return h;
}
#define FNV0 UINT64_C(14695981039346656037)

#define CACHE_MAGIC "CRLMTOK"
#define CACHE_VERSION 1u
typedef struct cache_hdr {
    char     magic[8];
    uint32_t version;
    int32_t  vocab;
    uint64_t n, corpus_bytes, corpus_hash, tok_hash;
} cache_hdr; /* 48 bytes, no padding */

static cr_status tok_hash(const char *dir, uint64_t *h, cr_error *e) {
    static const char *const files[] = {"encoder.json", "vocab.bpe"};
    *h = FNV0;
    for (int i = 0; i < 2; i++) {
        char path[CR_LM_PATH + 32], *buf;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CR_TRY(cr_read_file(path, &buf, &len, e));
        *h = fnv1a(*h, buf, len);
        cr_free(buf);
    }
    return CR_OK;
}

/* The cached ids when the header matches exactly; anything else (absent,
 * stale, truncated) means "tokenise again", so it is not an error. */
static int cache_read(const char *path, const cache_hdr *want, int32_t **ids, size_t *n) {
    cr_mmap m;
    if (!cr_file_exists(path) || cr_mmap_open(&m, path, NULL)) return 0;
    cache_hdr h;
    int ok = m.size >= sizeof h;
    if (ok) memcpy(&h, m.data, sizeof h);
    ok = ok && !memcmp(h.magic, want->magic, 8) && h.version == want->version &&
         h.vocab == want->vocab && h.corpus_bytes == want->corpus_bytes &&
         h.corpus_hash == want->corpus_hash && h.tok_hash == want->tok_hash &&
         h.n <= (m.size - sizeof h) / 4 && m.size == sizeof h + 4 * h.n;
    if (ok) {
        *ids = cr_alloc(h.n ? h.n * 4 : 4);
        ok = *ids != NULL;
        if (ok) memcpy(*ids, m.data + sizeof h, h.n * 4);
        *n = (size_t)h.n;
        for (uint64_t i = 0; ok && i < h.n; i++) ok = (*ids)[i] >= 0 && (*ids)[i] < h.vocab;
        if (!ok) {
            cr_free(*ids);
            *ids = NULL;
        }
    }
    cr_mmap_close(&m);
    return ok;
}

cr_status cr_lm_corpus_ids(const char *corpus, const cr_bpe *b, const char *tok_dir,
                           const char *cache_path, int32_t **ids, size_t *n, cr_error *e) {
    char *text = NULL;
    size_t len = 0;
    *ids = NULL;
    *n = 0;
    CR_TRY(cr_read_file(corpus, &text, &len, e));
    cache_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, sizeof CACHE_MAGIC);
    h.version = CACHE_VERSION;
    h.vocab = cr_bpe_vocab_size(b);
    h.corpus_bytes = len;
    h.corpus_hash = fnv1a(FNV0, text, len);
    cr_status s = CR_OK;
    if (cache_path && (s = tok_hash(tok_dir, &h.tok_hash, e))) goto done;
    if (cache_path && cache_read(cache_path, &h, ids, n)) goto done;
    if ((s = cr_bpe_encode(b, text, len, ids, n, e))) {
        cr_err_prefix(e, "tokenising %s", corpus);
        goto done;
    }
    if (cache_path) {
        h.n = *n;
        cr_atomic_file a;
        if ((s = cr_atomic_open(&a, cache_path, e))) goto done;
        if ((s = cr_atomic_write(&a, &h, sizeof h, e)) ||
            (s = cr_atomic_write(&a, *ids, *n * 4, e))) {
            cr_atomic_abort(&a);
            goto done;
        }
        s = cr_atomic_commit(&a, e);
    }
done:
    if (s) {
        cr_free(*ids);
        *ids = NULL;
        *n = 0;
    }
    cr_free(text);
    return s;
}

size_t cr_lm_split(size_t n, double valid_frac) {
    size_t nv = (size_t)floor((double)n * valid_frac);
    return n - nv;
}

int cr_lm_window_tokens(int T, int32_t bos) { return bos >= 0 ? T : T + 1; }

void cr_lm_window(const int32_t *s, int T, int32_t bos, int32_t *in, int32_t *tgt) {
    if (bos >= 0) {
        in[0] = bos;
        memcpy(in + 1, s, (size_t)(T - 1) * sizeof *in);
        memcpy(tgt, s, (size_t)T * sizeof *tgt);
    } else {
        memcpy(in, s, (size_t)T * sizeof *in);
        memcpy(tgt, s + 1, (size_t)T * sizeof *tgt);
    }
}
