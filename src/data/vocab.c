/*
 * vocab.c - string -> row id for categorical features: an open-addressing
 * hash map whose keys live in one growable arena, counted over the training
 * split and then frozen into ids 1..n (row 0 is out-of-vocabulary). Never
 * depends on hash order: ids follow counts, then first appearance.
 */
#include "data.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

typedef struct cr_vocab_entry {
    uint64_t hash;
    int64_t  off;   /* into keys: the NUL-terminated text */
    int64_t  count; /* occurrences while counting */
    uint32_t len;
} cr_vocab_entry;

struct cr_vocab {
    cr_vocab_entry *ent;    /* (n) in first-appearance order; after finalize, id - 1 */
    size_t          n, cap;
    int32_t        *slots;  /* (nslots) entry index or -1; nslots a power of two */
    size_t          nslots;
    char           *keys;   /* arena of NUL-terminated keys */
    size_t          keys_len, keys_cap;
    int             frozen; /* ids assigned: counting is over, lookups answer */
};

uint64_t cr_hash64(const char *s, size_t len) {
    /* FNV-1a: tiny, stable across platforms and releases, good enough for
     * short categorical values (saved models depend on it never changing). */
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The slot index is taken from the high bits mixed down: FNV's low bits are
 * weak for keys that differ only in their last character. */
static size_t slot_of(uint64_t h, size_t mask) {
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (size_t)h & mask;
}

cr_vocab *cr_vocab_new(void) { return calloc(1, sizeof(cr_vocab)); }

void cr_vocab_free(cr_vocab *v) {
    if (!v) return;
    free(v->ent);
    free(v->slots);
    free(v->keys);
    free(v);
}

static cr_status rehash(cr_vocab *v, size_t nslots, cr_error *e) {
    int32_t *s = malloc(nslots * sizeof *s);
    if (!s) return cr_err(e, CR_ERR_NOMEM, "out of memory growing a vocabulary to %zu slots",
                          nslots);
    memset(s, 0xff, nslots * sizeof *s); /* -1 = empty */
    size_t mask = nslots - 1;
    for (size_t i = 0; i < v->n; i++) {
        size_t j = slot_of(v->ent[i].hash, mask);
        while (s[j] >= 0) j = (j + 1) & mask;
        s[j] = (int32_t)i;
    }
    free(v->slots);
    v->slots = s;
    v->nslots = nslots;
    return CR_OK;
}

/* Index of the entry for s, or -1; *slot receives where it is or would go. */
static int64_t find(const cr_vocab *v, const char *s, size_t len, uint64_t h, size_t *slot) {
    if (!v->nslots) return -1;
    size_t mask = v->nslots - 1, j = slot_of(h, mask);
    for (;;) {
        int32_t k = v->slots[j];
        if (k < 0) break;
        const cr_vocab_entry *en = &v->ent[k];
        if (en->hash == h && en->len == len && memcmp(v->keys + en->off, s, len) == 0) {
            if (slot) *slot = j;
            return k;
        }
        j = (j + 1) & mask;
    }
    if (slot) *slot = j;
    return -1;
}

/* Append a new key (known to be absent) and return its entry index. */
static cr_status insert(cr_vocab *v, const char *s, size_t len, uint64_t h, int64_t *idx,
                        cr_error *e) {
    if (len > UINT32_MAX / 2)
        return cr_err(e, CR_ERR_LIMIT, "a vocabulary key of %zu bytes is too long", len);
    if (v->n >= (size_t)INT32_MAX - 1)
        return cr_err(e, CR_ERR_LIMIT, "a vocabulary cannot hold more than %d keys",
                      INT32_MAX - 2);
    /* Keep the load factor at most 1/2 so probe chains stay short. */
    if ((v->n + 1) * 2 > v->nslots)
        CR_TRY(rehash(v, v->nslots ? v->nslots * 2 : 64, e));
    CR_TRY(cr_grow((void **)&v->ent, &v->cap, v->n + 1, sizeof *v->ent, e));
    CR_TRY(cr_grow((void **)&v->keys, &v->keys_cap, v->keys_len + len + 1, 1, e));
    memcpy(v->keys + v->keys_len, s, len);
    v->keys[v->keys_len + len] = 0;
    cr_vocab_entry *en = &v->ent[v->n];
    en->hash = h;
    en->off = (int64_t)v->keys_len;
    en->len = (uint32_t)len;
    en->count = 0;
    v->keys_len += len + 1;
    size_t slot;
    int64_t found = find(v, s, len, h, &slot);
    CR_ASSERT(found < 0);
    v->slots[slot] = (int32_t)v->n;
    *idx = (int64_t)v->n++;
    return CR_OK;
}

cr_status cr_vocab_intern(cr_vocab *v, const char *s, size_t len, int64_t n, int32_t *index,
                          cr_error *e) {
    if (v->frozen)
        return cr_err(e, CR_ERR_ARG, "counting a vocabulary that is already finalized");
    uint64_t h = cr_hash64(s, len);
    int64_t k = find(v, s, len, h, NULL);
    if (k < 0) CR_TRY(insert(v, s, len, h, &k, e));
    v->ent[k].count += n;
    if (index) *index = (int32_t)k;
    return CR_OK;
}

cr_status cr_vocab_count(cr_vocab *v, const char *s, size_t len, cr_error *e) {
    return cr_vocab_intern(v, s, len, 1, NULL, e);
}

/* Does entry i come strictly before entry j? Count descending, then first
 * appearance (the entry index), so ties never depend on hashing. */
static int before(const cr_vocab_entry *ent, int64_t i, int64_t j) {
    if (ent[i].count != ent[j].count) return ent[i].count > ent[j].count;
    return i < j;
}

/* A merge sort (stable and deterministic; qsort_r is not portable C17). */
static void sort_idx(int64_t *a, int64_t *tmp, size_t n, const cr_vocab_entry *ent) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_idx(a, tmp, h, ent);
    sort_idx(a + h, tmp, n - h, ent);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = before(ent, a[j], a[i]) ? a[j++] : a[i++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

cr_status cr_vocab_finalize(cr_vocab *v, int64_t min_count, int64_t max_size, cr_error *e) {
    if (v->frozen)
        return cr_err(e, CR_ERR_ARG, "cr_vocab_finalize: the vocabulary is already finalized");
    cr_status s = CR_OK;
    int64_t *idx = NULL, *tmp = NULL;
    cr_vocab_entry *ent = NULL;
    char *keys = NULL;
    size_t n = v->n, kept = 0, klen = 0;
    if (n) {
        idx = malloc(n * sizeof *idx);
        tmp = malloc(n * sizeof *tmp);
        if (!idx || !tmp) {
            s = cr_err(e, CR_ERR_NOMEM, "out of memory finalizing a vocabulary of %zu keys", n);
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) idx[i] = (int64_t)i;
    sort_idx(idx, tmp, n, v->ent);
    while (kept < n && v->ent[idx[kept]].count >= min_count &&
           (max_size <= 0 || (int64_t)kept < max_size)) {
        klen += v->ent[idx[kept]].len + 1;
        kept++;
    }
    /* Rebuild with only the kept keys, so a large training vocabulary
     * pruned by min_count does not keep its memory. */
    ent = malloc((kept ? kept : 1) * sizeof *ent);
    keys = malloc(klen ? klen : 1);
    if (!ent || !keys) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory finalizing a vocabulary of %zu keys", kept);
        goto fail;
    }
    size_t off = 0;
    for (size_t i = 0; i < kept; i++) {
        const cr_vocab_entry *src = &v->ent[idx[i]];
        ent[i] = *src;
        ent[i].off = (int64_t)off;
        memcpy(keys + off, v->keys + src->off, src->len + 1);
        off += src->len + 1;
    }
    free(v->ent);
    free(v->keys);
    v->ent = ent;
    v->keys = keys;
    v->n = v->cap = kept;
    v->keys_len = v->keys_cap = klen;
    ent = NULL;
    keys = NULL;
    size_t ns = 64;
    while (ns < kept * 2 + 2) ns *= 2;
    if ((s = rehash(v, ns, e))) goto fail;
    v->frozen = 1;
fail:
    free(idx);
    free(tmp);
    free(ent);
    free(keys);
    return s;
}

int32_t cr_vocab_lookup(const cr_vocab *v, const char *s, size_t len) {
    if (!v->frozen) return 0;
    int64_t k = find(v, s, len, cr_hash64(s, len), NULL);
    return k < 0 ? 0 : (int32_t)(k + 1);
}

int64_t cr_vocab_size(const cr_vocab *v) { return (int64_t)v->n + 1; }

const char *cr_vocab_key(const cr_vocab *v, int32_t id) {
    if (id <= 0 || (size_t)id > v->n) return NULL;
    return v->keys + v->ent[id - 1].off;
}

cr_status cr_vocab_add(cr_vocab *v, const char *s, size_t len, cr_error *e) {
    if (!v->frozen && v->n)
        return cr_err(e, CR_ERR_ARG, "cr_vocab_add: the vocabulary is still counting");
    uint64_t h = cr_hash64(s, len);
    if (find(v, s, len, h, NULL) >= 0)
        return cr_err(e, CR_ERR_MISMATCH, "vocabulary key '%.*s' appears twice",
                      (int)(len < 100 ? len : 100), s);
    int64_t k;
    CR_TRY(insert(v, s, len, h, &k, e));
    v->frozen = 1;
    return CR_OK;
}
