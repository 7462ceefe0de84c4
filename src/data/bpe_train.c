/*
 * bpe_train.c - learns a byte-level BPE in GPT-2's format: count pre-tokens,
 * then repeatedly merge the most frequent adjacent pair. Deterministic by
 * construction (ties are broken by the tokens' bytes, never by hash order),
 * so the same corpus gives the same files on any machine. Writes through
 * atomic files only; never touches a tokenizer that is in use.
 */
#include "bpe.h"

#include <stdlib.h>
#include <string.h>

/* A distinct pre-token and how often it occurred; sym[] is its current
 * segmentation, shrinking as merges apply. */
typedef struct cr_bt_word {
    int64_t  count;
    int32_t *sym;
    int32_t  n;
    uint32_t stamp; /* last merge that visited this word */
} cr_bt_word;

/* An adjacent pair, its weighted count and the words that may contain it
 * (a superset: entries are not removed when a merge destroys the pair). */
typedef struct cr_bt_pair {
    int32_t  left, right;
    int64_t  count;
    int32_t *words;
    int32_t  n_words, cap_words;
    uint32_t dirty;  /* merge step at which count last rose */
    int      merged; /* already written to vocab.bpe */
} cr_bt_pair;

typedef struct cr_bt_heap {
    int64_t count;
    int32_t pair;
} cr_bt_heap;

struct cr_bpe_trainer {
    /* pre-token counting: bytes -> word */
    uint8_t    *wpool;
    size_t      wpool_n, wpool_cap;
    size_t     *woff; /* (n_words + 1) */
    size_t      woff_cap;
    int64_t    *wcount;
    size_t      wcount_cap;
    int32_t    *wslot; /* hash table, -1 = empty */
    size_t      wslot_mask;
    int32_t     n_words;
    /* fitting */
    int         fitted; /* fit was called: no more text */
    int         ready;  /* fit succeeded: the vocabulary can be saved */
    cr_bt_word *words;
    uint8_t    *tpool; /* token bytes */
    size_t      tpool_n, tpool_cap;
    size_t     *toff; /* (n_tokens + 1) */
    size_t      toff_cap;
    int32_t     n_tokens; /* bytes + merges so far */
    int32_t    *tslot; /* token bytes -> id, -1 = empty */
    size_t      tslot_mask;
    int32_t    *merge_l, *merge_r; /* (n_merges) in vocab.bpe order */
    size_t      merge_cap, n_merges;
    cr_bt_pair *pairs;
    size_t      n_pairs, pairs_cap;
    int32_t    *pslot; /* pair key -> index, -1 = empty */
    size_t      pslot_mask;
    cr_bt_heap *heap;
    size_t      n_heap, heap_cap;
    char      **special;
    int         n_special;
};

void cr_bpe_train_opts_default(cr_bpe_train_opts *o) {
    static const char *const eot[] = {"<|endoftext|>"};
    o->vocab_size = 4096;
    o->min_frequency = 2;
    o->special = eot;
    o->n_special = 1;
}

static uint64_t cr_bt_hash(const uint8_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t cr_bt_mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

cr_status cr_bpe_trainer_new(cr_bpe_trainer **out, cr_error *e) {
    cr_bpe_trainer *t = cr_alloc_e(sizeof *t, e, "a BPE trainer");
    *out = t;
    if (!t) return CR_ERR_NOMEM;
    t->wslot_mask = 1023;
    t->wslot = cr_alloc_e((t->wslot_mask + 1) * sizeof *t->wslot, e, "BPE trainer words");
    t->woff = cr_alloc_e(16 * sizeof *t->woff, e, "BPE trainer words");
    if (!t->wslot || !t->woff) {
        cr_bpe_trainer_free(t);
        *out = NULL;
        return CR_ERR_NOMEM;
    }
    t->woff_cap = 16;
    for (size_t i = 0; i <= t->wslot_mask; i++) t->wslot[i] = -1;
    return CR_OK;
}

void cr_bpe_trainer_free(cr_bpe_trainer *t) {
    if (!t) return;
    free(t->wpool);
    cr_free(t->woff);
    free(t->wcount);
    cr_free(t->wslot);
    if (t->words)
        for (int32_t i = 0; i < t->n_words; i++) free(t->words[i].sym);
    free(t->words);
    free(t->tpool);
    free(t->toff);
    cr_free(t->tslot);
    free(t->merge_l);
    free(t->merge_r);
    for (size_t i = 0; i < t->n_pairs; i++) free(t->pairs[i].words);
    free(t->pairs);
    cr_free(t->pslot);
    free(t->heap);
    for (int i = 0; i < t->n_special; i++) free(t->special[i]);
    free(t->special);
    cr_free(t);
}

/* ---- counting pre-tokens ------------------------------------------------------------ */

static cr_status cr_bt_rehash_words(cr_bpe_trainer *t, cr_error *e) {
    size_t mask = (t->wslot_mask + 1) * 2 - 1;
    int32_t *slot = cr_alloc_e((mask + 1) * sizeof *slot, e, "BPE trainer words");
    if (!slot) return CR_ERR_NOMEM;
    for (size_t i = 0; i <= mask; i++) slot[i] = -1;
    for (int32_t w = 0; w < t->n_words; w++) {
        size_t i = cr_bt_hash(t->wpool + t->woff[w], t->woff[w + 1] - t->woff[w]) & mask;
        while (slot[i] >= 0) i = (i + 1) & mask;
        slot[i] = w;
    }
    cr_free(t->wslot);
    t->wslot = slot;
    t->wslot_mask = mask;
    return CR_OK;
}

static cr_status cr_bt_count(cr_bpe_trainer *t, const uint8_t *s, size_t n, cr_error *e) {
    size_t i = cr_bt_hash(s, n) & t->wslot_mask;
    for (; t->wslot[i] >= 0; i = (i + 1) & t->wslot_mask) {
        int32_t w = t->wslot[i];
        if (t->woff[w + 1] - t->woff[w] == n && !memcmp(t->wpool + t->woff[w], s, n)) {
            t->wcount[w]++;
            return CR_OK;
        }
    }
    if (t->n_words == INT32_MAX - 1)
        return cr_err(e, CR_ERR_LIMIT, "BPE trainer: more than %d distinct pre-tokens",
                      INT32_MAX - 1);
    int32_t w = t->n_words;
    CR_TRY(cr_grow((void **)&t->wpool, &t->wpool_cap, t->wpool_n + n, 1, e));
    CR_TRY(cr_grow((void **)&t->wcount, &t->wcount_cap, (size_t)w + 1, sizeof *t->wcount, e));
    if ((size_t)w + 2 > t->woff_cap) {
        size_t nc = t->woff_cap * 2;
        size_t *o = cr_alloc_e(nc * sizeof *o, e, "BPE trainer words");
        if (!o) return CR_ERR_NOMEM;
        memcpy(o, t->woff, ((size_t)w + 1) * sizeof *o);
        cr_free(t->woff);
        t->woff = o;
        t->woff_cap = nc;
    }
    memcpy(t->wpool + t->wpool_n, s, n);
    t->wpool_n += n;
    t->woff[w + 1] = t->wpool_n;
    t->wcount[w] = 1;
    t->wslot[i] = w;
    t->n_words++;
    if ((size_t)t->n_words * 2 > t->wslot_mask + 1) return cr_bt_rehash_words(t, e);
    return CR_OK;
}

cr_status cr_bpe_trainer_add(cr_bpe_trainer *t, const char *text, size_t len, cr_error *e) {
    if (t->fitted)
        return cr_err(e, CR_ERR_ARG, "BPE trainer: text added after cr_bpe_trainer_fit");
    for (size_t p = 0; p < len;) {
        size_t q = cr_gpt2_split(text, len, p);
        CR_TRY(cr_bt_count(t, (const uint8_t *)text + p, q - p, e));
        p = q;
    }
    return CR_OK;
}

/* ---- tokens and pairs ------------------------------------------------------------------ */

static const uint8_t *cr_bt_tok(const cr_bpe_trainer *t, int32_t id, size_t *n) {
    *n = t->toff[id + 1] - t->toff[id];
    return t->tpool + t->toff[id];
}

static int cr_bt_cmp_tok(const cr_bpe_trainer *t, int32_t a, int32_t b) {
    size_t na, nb;
    const uint8_t *pa = cr_bt_tok(t, a, &na), *pb = cr_bt_tok(t, b, &nb);
    int c = memcmp(pa, pb, na < nb ? na : nb);
    if (c) return c;
    return na < nb ? -1 : na > nb;
}

/* Heap order: higher count first, then the smaller (left, right) bytes. */
static int cr_bt_before(const cr_bpe_trainer *t, cr_bt_heap x, cr_bt_heap y) {
    if (x.count != y.count) return x.count > y.count;
    const cr_bt_pair *px = &t->pairs[x.pair], *py = &t->pairs[y.pair];
    int c = cr_bt_cmp_tok(t, px->left, py->left);
    if (!c) c = cr_bt_cmp_tok(t, px->right, py->right);
    return c < 0;
}

static cr_status cr_bt_push(cr_bpe_trainer *t, int32_t pair, cr_error *e) {
    CR_TRY(cr_grow((void **)&t->heap, &t->heap_cap, t->n_heap + 1, sizeof *t->heap, e));
    cr_bt_heap v = {t->pairs[pair].count, pair};
    size_t i = t->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cr_bt_before(t, v, t->heap[p])) break;
        t->heap[i] = t->heap[p];
        i = p;
    }
    t->heap[i] = v;
    return CR_OK;
}

static cr_bt_heap cr_bt_pop(cr_bpe_trainer *t) {
    cr_bt_heap top = t->heap[0], v = t->heap[--t->n_heap];
    size_t i = 0, n = t->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cr_bt_before(t, t->heap[c + 1], t->heap[c])) c++;
        if (!cr_bt_before(t, t->heap[c], v)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = v;
    return top;
}

static cr_status cr_bt_rehash_pairs(cr_bpe_trainer *t, cr_error *e) {
    size_t mask = t->pslot ? (t->pslot_mask + 1) * 2 - 1 : 4095;
    int32_t *slot = cr_alloc_e((mask + 1) * sizeof *slot, e, "BPE trainer pairs");
    if (!slot) return CR_ERR_NOMEM;
    for (size_t i = 0; i <= mask; i++) slot[i] = -1;
    for (size_t p = 0; p < t->n_pairs; p++) {
        uint64_t key = (uint64_t)(uint32_t)t->pairs[p].left << 32 | (uint32_t)t->pairs[p].right;
        size_t i = cr_bt_mix(key) & mask;
        while (slot[i] >= 0) i = (i + 1) & mask;
        slot[i] = (int32_t)p;
    }
    cr_free(t->pslot);
    t->pslot = slot;
    t->pslot_mask = mask;
    return CR_OK;
}

/* Index of pair (l, r), created with count 0 if new. */
static cr_status cr_bt_pair_id(cr_bpe_trainer *t, int32_t l, int32_t r, int32_t *out, cr_error *e) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    size_t i = cr_bt_mix(key) & t->pslot_mask;
    for (; t->pslot[i] >= 0; i = (i + 1) & t->pslot_mask) {
        const cr_bt_pair *p = &t->pairs[t->pslot[i]];
        if (p->left == l && p->right == r) {
            *out = t->pslot[i];
            return CR_OK;
        }
    }
    CR_TRY(cr_grow((void **)&t->pairs, &t->pairs_cap, t->n_pairs + 1, sizeof *t->pairs, e));
    cr_bt_pair *p = &t->pairs[t->n_pairs];
    memset(p, 0, sizeof *p);
    p->left = l;
    p->right = r;
    p->dirty = UINT32_MAX;
    t->pslot[i] = (int32_t)t->n_pairs;
    *out = (int32_t)t->n_pairs++;
    if (t->n_pairs * 2 > t->pslot_mask + 1) return cr_bt_rehash_pairs(t, e);
    return CR_OK;
}

/* Add delta occurrences of every adjacent pair of word w. When adding,
 * also note w in the pair's word list and remember the pair as risen so
 * that it is pushed once after the merge step (step). */
static cr_status cr_bt_word_pairs(cr_bpe_trainer *t, int32_t w, int sign, uint32_t step,
                                  int32_t **risen, size_t *n_risen, size_t *cap_risen,
                                  cr_error *e) {
    cr_bt_word *wd = &t->words[w];
    for (int32_t i = 0; i + 1 < wd->n; i++) {
        int32_t pi;
        CR_TRY(cr_bt_pair_id(t, wd->sym[i], wd->sym[i + 1], &pi, e));
        cr_bt_pair *p = &t->pairs[pi];
        p->count += sign * wd->count;
        if (sign < 0) continue;
        if (p->n_words == 0 || p->words[p->n_words - 1] != w) {
            size_t cap = (size_t)p->cap_words;
            CR_TRY(cr_grow((void **)&p->words, &cap, (size_t)p->n_words + 1, sizeof *p->words, e));
            p->cap_words = (int32_t)cap;
            p->words[p->n_words++] = w;
        }
        if (p->dirty != step) {
            p->dirty = step;
            CR_TRY(cr_grow((void **)risen, cap_risen, *n_risen + 1, sizeof **risen, e));
            (*risen)[(*n_risen)++] = pi;
        }
    }
    return CR_OK;
}

static cr_status cr_bt_rehash_tokens(cr_bpe_trainer *t, cr_error *e) {
    size_t mask = t->tslot ? (t->tslot_mask + 1) * 2 - 1 : 1023;
    int32_t *slot = cr_alloc_e((mask + 1) * sizeof *slot, e, "BPE trainer tokens");
    if (!slot) return CR_ERR_NOMEM;
    for (size_t i = 0; i <= mask; i++) slot[i] = -1;
    for (int32_t id = 0; id < t->n_tokens; id++) {
        size_t n;
        const uint8_t *b = cr_bt_tok(t, id, &n);
        size_t i = cr_bt_hash(b, n) & mask;
        while (slot[i] >= 0) i = (i + 1) & mask;
        slot[i] = id;
    }
    cr_free(t->tslot);
    t->tslot = slot;
    t->tslot_mask = mask;
    return CR_OK;
}

/* Id of the token a + b, appended to the vocabulary if new. a and b may
 * point into tpool, which must already have room for both (no realloc). */
static cr_status cr_bt_token_id(cr_bpe_trainer *t, const uint8_t *a, size_t na,
                                const uint8_t *b, size_t nb, int32_t *out, cr_error *e) {
    CR_ASSERT(t->tpool_n + na + nb <= t->tpool_cap || na + nb == 0);
    uint8_t *dst = t->tpool + t->tpool_n; /* build the candidate in place */
    memcpy(dst, a, na);
    if (nb) memcpy(dst + na, b, nb);
    size_t n = na + nb;
    size_t i = cr_bt_hash(dst, n) & t->tslot_mask;
    for (; t->tslot[i] >= 0; i = (i + 1) & t->tslot_mask) {
        size_t tn;
        const uint8_t *tb = cr_bt_tok(t, t->tslot[i], &tn);
        if (tn == n && !memcmp(tb, dst, n)) {
            *out = t->tslot[i];
            return CR_OK;
        }
    }
    CR_TRY(cr_grow((void **)&t->toff, &t->toff_cap, (size_t)t->n_tokens + 2, sizeof *t->toff, e));
    if (t->n_tokens == 0) t->toff[0] = 0;
    t->tpool_n += n;
    t->toff[t->n_tokens + 1] = t->tpool_n;
    t->tslot[i] = t->n_tokens;
    *out = t->n_tokens++;
    if ((size_t)t->n_tokens * 2 > t->tslot_mask + 1) return cr_bt_rehash_tokens(t, e);
    return CR_OK;
}

/* ---- fitting ------------------------------------------------------------------------------ */

/* GPT-2's id order for the 256 byte tokens: bytes that spell as themselves
 * ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF), then the rest in byte order. */
static void cr_bt_byte_order(uint8_t order[256]) {
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++)
            if ((cr_gpt2_byte_to_cp((uint8_t)b) == (uint32_t)b) == (pass == 0))
                order[k++] = (uint8_t)b;
}

static cr_status cr_bt_fit(cr_bpe_trainer *t, const cr_bpe_train_opts *o, cr_error *e) {
    int32_t byte_id[256];
    uint8_t order[256];
    cr_bt_byte_order(order);
    CR_TRY(cr_bt_rehash_tokens(t, e));
    for (int i = 0; i < 256; i++) {
        CR_TRY(cr_grow((void **)&t->tpool, &t->tpool_cap, t->tpool_n + 1, 1, e));
        CR_TRY(cr_bt_token_id(t, &order[i], 1, NULL, 0, &byte_id[order[i]], e));
    }
    t->words = calloc((size_t)t->n_words + 1, sizeof *t->words);
    if (!t->words) return cr_err(e, CR_ERR_NOMEM, "BPE trainer: out of memory for words");
    CR_TRY(cr_bt_rehash_pairs(t, e));

    int32_t *risen = NULL;
    size_t n_risen = 0, cap_risen = 0;
    cr_status s = CR_OK;
    for (int32_t w = 0; w < t->n_words && s == CR_OK; w++) {
        cr_bt_word *wd = &t->words[w];
        size_t n = t->woff[w + 1] - t->woff[w];
        wd->count = t->wcount[w];
        wd->n = (int32_t)n;
        wd->sym = malloc(n * sizeof *wd->sym);
        if (!wd->sym) {
            s = cr_err(e, CR_ERR_NOMEM, "BPE trainer: out of memory for words");
            break;
        }
        for (size_t i = 0; i < n; i++) wd->sym[i] = byte_id[t->wpool[t->woff[w] + i]];
        s = cr_bt_word_pairs(t, w, +1, 0, &risen, &n_risen, &cap_risen, e);
    }
    for (size_t i = 0; i < n_risen && s == CR_OK; i++) s = cr_bt_push(t, risen[i], e);

    int32_t target = o->vocab_size - o->n_special;
    uint32_t step = 0;
    while (s == CR_OK && t->n_tokens < target && t->n_heap) {
        cr_bt_heap top = cr_bt_pop(t);
        cr_bt_pair *p = &t->pairs[top.pair];
        if (top.count != p->count) {
            /* Stale. A count that rose was pushed afresh when it rose; one
             * that fell is pushed again at its true value. */
            if (p->count > 0 && p->count < top.count) s = cr_bt_push(t, top.pair, e);
            continue;
        }
        if (p->count < o->min_frequency || p->count <= 0) break;

        /* The merged bytes may already be a token, made by another split of
         * the same string ("ab"+"c" and "a"+"bc"): then the merge reuses that
         * id, as every BPE trainer must for encoder.json to stay one-to-one.
         * A pair can even re-form after its merge that way; it is merged
         * again in the words but written to vocab.bpe only once. */
        int32_t l = p->left, r = p->right, id;
        int merged_before = p->merged;
        size_t nl, nr;
        s = cr_grow((void **)&t->tpool, &t->tpool_cap,
                    t->tpool_n + (t->toff[l + 1] - t->toff[l]) + (t->toff[r + 1] - t->toff[r]), 1,
                    e);
        if (s != CR_OK) break;
        const uint8_t *bl = cr_bt_tok(t, l, &nl), *br = cr_bt_tok(t, r, &nr);
        s = cr_bt_token_id(t, bl, nl, br, nr, &id, e);
        if (s != CR_OK) break;
        if (!merged_before) {
            size_t cap_l = t->merge_cap, cap_r = t->merge_cap;
            s = cr_grow((void **)&t->merge_l, &cap_l, t->n_merges + 1, sizeof *t->merge_l, e);
            if (s == CR_OK)
                s = cr_grow((void **)&t->merge_r, &cap_r, t->n_merges + 1, sizeof *t->merge_r, e);
            if (s != CR_OK) break;
            t->merge_cap = cap_l < cap_r ? cap_l : cap_r;
            t->merge_l[t->n_merges] = l;
            t->merge_r[t->n_merges] = r;
            t->n_merges++;
            t->pairs[top.pair].merged = 1;
        }

        /* Rewrite every word that may hold (l, r): take its pairs out, merge
         * left to right as the encoder does, put its pairs back. The word
         * list is copied because re-adding pairs may grow it. */
        step++;
        n_risen = 0;
        int32_t nw = p->n_words;
        int32_t *ws = malloc((size_t)(nw ? nw : 1) * sizeof *ws);
        if (!ws) {
            s = cr_err(e, CR_ERR_NOMEM, "BPE trainer: out of memory");
            break;
        }
        memcpy(ws, p->words, (size_t)nw * sizeof *ws);
        for (int32_t k = 0; k < nw && s == CR_OK; k++) {
            cr_bt_word *wd = &t->words[ws[k]];
            if (wd->stamp == step) continue;
            wd->stamp = step;
            int has = 0;
            for (int32_t i = 0; i + 1 < wd->n && !has; i++)
                has = wd->sym[i] == l && wd->sym[i + 1] == r;
            if (!has) continue;
            s = cr_bt_word_pairs(t, ws[k], -1, step, NULL, NULL, NULL, e);
            int32_t j = 0;
            for (int32_t i = 0; i < wd->n; j++) {
                if (i + 1 < wd->n && wd->sym[i] == l && wd->sym[i + 1] == r) {
                    wd->sym[j] = id;
                    i += 2;
                } else {
                    wd->sym[j] = wd->sym[i++];
                }
            }
            wd->n = j;
            if (s == CR_OK) s = cr_bt_word_pairs(t, ws[k], +1, step, &risen, &n_risen, &cap_risen, e);
        }
        free(ws);
        /* The merged pair is gone; forget its words so a later pair with the
         * same index cannot revisit them. */
        p = &t->pairs[top.pair];
        p->n_words = 0;
        for (size_t i = 0; i < n_risen && s == CR_OK; i++)
            if (t->pairs[risen[i]].count > 0) s = cr_bt_push(t, risen[i], e);
    }
    free(risen);
    return s;
}

cr_status cr_bpe_trainer_fit(cr_bpe_trainer *t, const cr_bpe_train_opts *o, cr_error *e) {
    if (t->fitted) return cr_err(e, CR_ERR_ARG, "BPE trainer: fit called twice");
    if (o->n_special < 0 || (o->n_special > 0 && !o->special))
        return cr_err(e, CR_ERR_CONFIG, "BPE trainer: bad special token list");
    if (o->vocab_size < 256 + o->n_special)
        return cr_err(e, CR_ERR_CONFIG,
                      "BPE trainer: vocab_size %d is too small; it must be at least 256 bytes "
                      "+ %d special tokens",
                      o->vocab_size, o->n_special);
    if (o->min_frequency < 1)
        return cr_err(e, CR_ERR_CONFIG, "BPE trainer: min_frequency must be >= 1, got %lld",
                      (long long)o->min_frequency);
    t->fitted = 1;
    CR_TRY(cr_bt_fit(t, o, e));

    t->special = calloc((size_t)o->n_special + 1, sizeof *t->special);
    if (!t->special) return cr_err(e, CR_ERR_NOMEM, "BPE trainer: out of memory");
    for (int i = 0; i < o->n_special; i++) {
        const char *sp = o->special[i];
        size_t n = sp ? strlen(sp) : 0;
        if (n == 0) return cr_err(e, CR_ERR_CONFIG, "BPE trainer: special token %d is empty", i);
        for (int32_t id = 0; id < t->n_tokens; id++) {
            size_t tn;
            const uint8_t *tb = cr_bt_tok(t, id, &tn);
            if (tn == n && !memcmp(tb, sp, n))
                return cr_err(e, CR_ERR_CONFIG,
                              "BPE trainer: special token '%s' is also learned token %d", sp, id);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(t->special[j], sp))
                return cr_err(e, CR_ERR_CONFIG, "BPE trainer: special token '%s' given twice",
                              sp);
        t->special[i] = strdup(sp);
        if (!t->special[i]) return cr_err(e, CR_ERR_NOMEM, "BPE trainer: out of memory");
        t->n_special = i + 1;
    }
    t->ready = 1;
    return CR_OK;
}

int32_t cr_bpe_trainer_vocab_size(const cr_bpe_trainer *t) {
    return t->ready ? t->n_tokens + t->n_special : 0;
}

/* ---- saving ----------------------------------------------------------------------------------- */

typedef struct cr_bt_buf {
    char  *p;
    size_t n, cap;
} cr_bt_buf;

static cr_status cr_bt_put(cr_bt_buf *b, const void *s, size_t n, cr_error *e) {
    CR_TRY(cr_grow((void **)&b->p, &b->cap, b->n + n + 1, 1, e));
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return CR_OK;
}

/* Spell bytes in GPT-2's alphabet as UTF-8; for JSON, escape '"' and '\'
 * (every alphabet character is printable, so nothing else needs it). */
static cr_status cr_bt_spell(cr_bt_buf *b, const uint8_t *s, size_t n, int json, cr_error *e) {
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cr_gpt2_byte_to_cp(s[i]);
        char u[4];
        size_t k;
        if (json && (cp == '"' || cp == '\\')) {
            u[0] = '\\';
            u[1] = (char)cp;
            k = 2;
        } else if (cp < 0x80) {
            u[0] = (char)cp;
            k = 1;
        } else { /* the alphabet stops at U+0143: two bytes suffice */
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            k = 2;
        }
        CR_TRY(cr_bt_put(b, u, k, e));
    }
    return CR_OK;
}

static cr_status cr_bt_json_entry(cr_bt_buf *b, const uint8_t *s, size_t n, int32_t id,
                                  int first, cr_error *e) {
    char num[32];
    if (!first) CR_TRY(cr_bt_put(b, ", ", 2, e));
    CR_TRY(cr_bt_put(b, "\"", 1, e));
    CR_TRY(cr_bt_spell(b, s, n, 1, e));
    int k = snprintf(num, sizeof num, "\": %d", id);
    return cr_bt_put(b, num, (size_t)k, e);
}

cr_status cr_bpe_trainer_save(const cr_bpe_trainer *t, const char *dir, cr_error *e) {
    if (!t->ready) return cr_err(e, CR_ERR_ARG, "BPE trainer: nothing to save before a successful fit");
    char path[4096];
    if (strlen(dir) + 16 >= sizeof path) return cr_err(e, CR_ERR_ARG, "%s: path too long", dir);
    CR_TRY(cr_mkdirs(dir, e));

    cr_bt_buf js = {0}, mg = {0};
    cr_status s = cr_bt_put(&js, "{", 1, e);
    for (int32_t id = 0; id < t->n_tokens && s == CR_OK; id++) {
        size_t n;
        const uint8_t *tb = cr_bt_tok(t, id, &n);
        s = cr_bt_json_entry(&js, tb, n, id, id == 0, e);
    }
    for (int i = 0; i < t->n_special && s == CR_OK; i++)
        s = cr_bt_json_entry(&js, (const uint8_t *)t->special[i], strlen(t->special[i]),
                             t->n_tokens + i, 0, e);
    if (s == CR_OK) s = cr_bt_put(&js, "}", 1, e);

    if (s == CR_OK) s = cr_bt_put(&mg, "#version: 0.2\n", 14, e);
    for (size_t m = 0; m < t->n_merges && s == CR_OK; m++) {
        size_t nl, nr;
        const uint8_t *bl = cr_bt_tok(t, t->merge_l[m], &nl);
        const uint8_t *br = cr_bt_tok(t, t->merge_r[m], &nr);
        s = cr_bt_spell(&mg, bl, nl, 0, e);
        if (s == CR_OK) s = cr_bt_put(&mg, " ", 1, e);
        if (s == CR_OK) s = cr_bt_spell(&mg, br, nr, 0, e);
        if (s == CR_OK) s = cr_bt_put(&mg, "\n", 1, e);
    }
    if (s == CR_OK) {
        snprintf(path, sizeof path, "%s/vocab.bpe", dir);
        s = cr_write_file_atomic(path, mg.p, mg.n, e);
    }
    if (s == CR_OK) {
        snprintf(path, sizeof path, "%s/encoder.json", dir);
        s = cr_write_file_atomic(path, js.p, js.n, e);
    }
    free(js.p);
    free(mg.p);
    return s;
}

cr_status cr_bpe_train_file(const char *corpus, const cr_bpe_train_opts *o, const char *dir,
                            int32_t *vocab_size, cr_error *e) {
    char *text = NULL;
    size_t len = 0;
    cr_bpe_trainer *t = NULL;
    if (vocab_size) *vocab_size = 0;
    CR_TRY(cr_read_file(corpus, &text, &len, e));
    cr_status s = cr_bpe_trainer_new(&t, e);
    if (s == CR_OK) s = cr_bpe_trainer_add(t, text, len, e);
    if (s == CR_OK) s = cr_bpe_trainer_fit(t, o, e);
    if (s == CR_OK) s = cr_bpe_trainer_save(t, dir, e);
    if (s == CR_OK && vocab_size) *vocab_size = cr_bpe_trainer_vocab_size(t);
    if (s != CR_OK) cr_err_prefix(e, "training a BPE on %s", corpus);
    cr_bpe_trainer_free(t);
    cr_free(text);
    return s;
}
