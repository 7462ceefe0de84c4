/*
 * bpe.c - GPT-2's byte-level BPE: the pre-tokenisation regex written out by
 * hand over UTF-8, the byte-to-unicode alphabet, loading encoder.json and
 * vocab.bpe, encoding text to ids and decoding ids to bytes. Encoding must
 * equal OpenAI's encoder.py id for id (tests/test_bpe.c checks thousands of
 * strings against the JavaScript port), and any byte string must round-trip:
 * malformed UTF-8 is split, never refused. Tokens are kept as raw bytes, so
 * the byte-to-unicode spelling exists only at the file edge.
 */
#include "bpe.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ----------------------------------------------------------------------
 * Strict decoding (Unicode Table 3-7): the ranges of the second byte rule
 * out overlong forms, surrogates and code points above U+10FFFF. */
size_t cr_utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t need;
    uint32_t v;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
        v = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        v = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;      /* overlong */
        else if (b0 == 0xED) hi = 0x9F; /* surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        v = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;      /* overlong */
        else if (b0 == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        *cp = UINT32_MAX; /* continuation byte, C0, C1 or F5..FF */
        return 1;
    }
    if (n < need || s[1] < lo || s[1] > hi) {
        *cp = UINT32_MAX;
        return 1;
    }
    v = (v << 6) | (s[1] & 0x3F);
    for (size_t i = 2; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = UINT32_MAX;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return need;
}

/* A malformed byte (UINT32_MAX) is OTHER: it behaves like U+FFFD would. */
static cr_uni_class cr_pretok_class(uint32_t cp) {
    return cp == UINT32_MAX ? CR_UNI_OTHER : cr_uni_classify(cp);
}

/* ---- bytes_to_unicode ------------------------------------------------------------
 * GPT-2 spells every byte as a printable character so that merges can be
 * written as text: '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF stand for
 * themselves; the 68 others (0..32, 127..160, 173) become U+0100.. in byte
 * order. Computed, not tabulated: three ranges are easier to check. */
uint32_t cr_gpt2_byte_to_cp(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100 + b;                /* 33 control bytes and space */
    if (b >= 0x7F && b <= 0xA0) return 0x121 + (b - 0x7F); /* 34: DEL, C1, NBSP */
    return 0x143;                                   /* 0xAD, the soft hyphen */
}

int cr_gpt2_cp_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(0x7F + (cp - 0x121));
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* ---- the regex ----------------------------------------------------------------------
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * At each position the first alternative that matches wins, and every
 * character is a letter, a number, a space or "other", so one always does.
 * The only backtracking is in \s+(?!\S): a run of spaces followed by a
 * non-space gives up its last space, which then prefixes the next word
 * (" b" in "a  b"); a run at the end of the text is kept whole. */

/* End of the maximal run of class c starting at pos. */
static size_t cr_pretok_run(const uint8_t *s, size_t len, size_t pos, cr_uni_class c) {
    while (pos < len) {
        uint32_t cp;
        size_t k = cr_utf8_next(s + pos, len - pos, &cp);
        if (cr_pretok_class(cp) != c) break;
        pos += k;
    }
    return pos;
}

size_t cr_gpt2_split(const char *text, size_t len, size_t pos) {
    const uint8_t *s = (const uint8_t *)text;
    CR_ASSERT(pos < len);

    /* 's 't 're 've 'm 'll 'd: ASCII apostrophe and lowercase only, with no
     * look-ahead ("'sun" splits as "'s" "un", as in GPT-2). */
    if (s[pos] == '\'' && pos + 1 < len) {
        uint8_t c1 = s[pos + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
        if (pos + 2 < len) {
            uint8_t c2 = s[pos + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return pos + 3;
        }
    }

    uint32_t cp;
    size_t k = cr_utf8_next(s + pos, len - pos, &cp);
    cr_uni_class c = cr_pretok_class(cp);

    /* ' ?X+' for X in letters, numbers, other: only U+0020 is the optional
     * prefix, and only when a run of X follows it. */
    if (cp == ' ' && pos + 1 < len) {
        uint32_t cp2;
        (void)cr_utf8_next(s + pos + 1, len - pos - 1, &cp2);
        cr_uni_class c2 = cr_pretok_class(cp2);
        if (c2 != CR_UNI_SPACE) return cr_pretok_run(s, len, pos + 1, c2);
    }
    if (c != CR_UNI_SPACE) return cr_pretok_run(s, len, pos, c);

    /* \s+(?!\S) then \s+: find the run and the start of its last character. */
    size_t last = pos, end = pos + k;
    while (end < len) {
        uint32_t cq;
        size_t kq = cr_utf8_next(s + end, len - end, &cq);
        if (cr_pretok_class(cq) != CR_UNI_SPACE) break;
        last = end;
        end += kq;
    }
    if (end == len) return end; /* (?!\S) holds at the end of the text */
    if (last > pos) return last; /* give back one space to the next token */
    return end;                  /* a single space before a non-space: \s+ */
}

/* Open-addressing hash tables: bytes -> id (the vocabulary) and
 * (left id, right id) -> merge. Sizes are powers of two at most half full. */
typedef struct cr_bpe_merge {
    uint64_t key;    /* left << 32 | right; UINT64_MAX = empty slot */
    int32_t  rank;   /* line order in vocab.bpe: lower merges first */
    int32_t  result; /* id of left + right */
} cr_bpe_merge;

struct cr_bpe {
    int32_t       n_vocab;
    int32_t       n_merges;
    uint8_t      *pool;     /* every token's bytes, back to back */
    size_t       *off;      /* (n_vocab + 1) offsets into pool */
    int32_t      *slot;     /* bytes -> id table, -1 = empty */
    size_t        slot_mask;
    cr_bpe_merge *merge;
    size_t        merge_mask;
    int32_t       byte_id[256]; /* id of each single-byte token */
};

static uint64_t cr_bpe_hash(const uint8_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t cr_bpe_mix(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static size_t cr_bpe_pow2(size_t n) {
    size_t p = 16;
    while (p < 2 * n) p *= 2;
    return p;
}

int32_t cr_bpe_token_id(const cr_bpe *b, const char *bytes, size_t len) {
    const uint8_t *s = (const uint8_t *)bytes;
    for (size_t i = cr_bpe_hash(s, len) & b->slot_mask;; i = (i + 1) & b->slot_mask) {
        int32_t id = b->slot[i];
        if (id < 0) return -1;
        size_t n = b->off[id + 1] - b->off[id];
        if (n == len && memcmp(b->pool + b->off[id], s, len) == 0) return id;
    }
}

/* The merge for a pair, or NULL. */
static const cr_bpe_merge *cr_bpe_find_merge(const cr_bpe *b, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (size_t i = cr_bpe_mix(key) & b->merge_mask;; i = (i + 1) & b->merge_mask) {
        if (b->merge[i].key == key) return &b->merge[i];
        if (b->merge[i].key == UINT64_MAX) return NULL;
    }
}

int32_t cr_bpe_merge_rank(const cr_bpe *b, int32_t left, int32_t right) {
    const cr_bpe_merge *mg = cr_bpe_find_merge(b, left, right);
    return mg ? mg->rank : -1;
}

int32_t cr_bpe_vocab_size(const cr_bpe *b) { return b->n_vocab; }
int32_t cr_bpe_n_merges(const cr_bpe *b) { return b->n_merges; }

const uint8_t *cr_bpe_token(const cr_bpe *b, int32_t id, size_t *len) {
    if (id < 0 || id >= b->n_vocab) return NULL;
    if (len) *len = b->off[id + 1] - b->off[id];
    return b->pool + b->off[id];
}

void cr_bpe_free(cr_bpe *b) {
    if (!b) return;
    cr_free(b->pool);
    cr_free(b->off);
    cr_free(b->slot);
    cr_free(b->merge);
    cr_free(b);
}

/* ---- loading ----------------------------------------------------------------------- */

/* Turn GPT-2's spelling of a token (UTF-8 of alphabet characters) into raw
 * bytes written at out (room for n bytes: never more bytes than input).
 * Returns the byte count, or -1 with *bad set to the offending code point
 * (UINT32_MAX for malformed UTF-8). */
static long cr_bpe_unspell(const char *s, size_t n, uint8_t *out, uint32_t *bad) {
    const uint8_t *u = (const uint8_t *)s;
    long m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += cr_utf8_next(u + i, n - i, &cp);
        int byte = cp == UINT32_MAX ? -1 : cr_gpt2_cp_to_byte(cp);
        if (byte < 0) {
            *bad = cp;
            return -1;
        }
        out[m++] = (uint8_t)byte;
    }
    return m;
}

/* Line number of a byte offset, for messages. */
static int cr_bpe_line_of(const char *buf, size_t off) {
    int line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    return line;
}

static cr_status cr_bpe_load_vocab(cr_bpe *b, const char *path, cr_error *e) {
    char *buf = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    cr_status s = cr_read_file(path, &buf, &len, e);
    if (s != CR_OK) return s;

    /* The parse-end pointer, unlike cJSON_GetErrorPtr, is not global state. */
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        s = cr_err(e, CR_ERR_PARSE, "%s:%d: not valid JSON (expected an object of token: id)",
                   path, cr_bpe_line_of(buf, off));
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        s = cr_err(e, CR_ERR_PARSE, "%s: expected a JSON object of token: id", path);
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    if (n < 256) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: %d tokens; a byte-level vocabulary needs at least 256",
                   path, n);
        goto done;
    }
    b->n_vocab = n;
    size_t pool_bytes = 0;
    for (cJSON *it = root->child; it; it = it->next) pool_bytes += strlen(it->string);
    b->pool = cr_alloc_e(pool_bytes + 1, e, "BPE token bytes");
    b->off = cr_alloc_e(((size_t)n + 1) * sizeof *b->off, e, "BPE offsets");
    size_t *len_of = cr_alloc_e((size_t)n * sizeof *len_of, e, "BPE token lengths");
    size_t *start = cr_alloc_e((size_t)n * sizeof *start, e, "BPE token starts");
    uint8_t *seen = cr_alloc_e((size_t)n, e, "BPE id flags");
    b->slot_mask = cr_bpe_pow2((size_t)n) - 1;
    b->slot = cr_alloc_e((b->slot_mask + 1) * sizeof *b->slot, e, "BPE vocabulary table");
    if (!b->pool || !b->off || !len_of || !start || !seen || !b->slot) {
        s = CR_ERR_NOMEM;
        goto free_tmp;
    }

    /* Unspell every token into the pool in file order, remembering where
     * each id's bytes start; then lay out offsets by id. */
    size_t used = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        const char *key = it->string;
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!cJSON_IsNumber(it)) {
            s = cr_err(e, CR_ERR_FORMAT, "%s: token '%s' has an id that is not a number", path,
                       key);
            goto free_tmp;
        }
        if (v < 0 || v >= n || v != (double)(int32_t)v) {
            s = cr_err(e, CR_ERR_FORMAT,
                       "%s: token '%s' has id %g; expected an integer in 0..%d (each id once)",
                       path, key, v, n - 1);
            goto free_tmp;
        }
        int32_t id = (int32_t)v;
        if (seen[id]) {
            s = cr_err(e, CR_ERR_FORMAT, "%s: id %d is given to two tokens (second: '%s')", path,
                       id, key);
            goto free_tmp;
        }
        seen[id] = 1;
        uint32_t bad = 0;
        long m = cr_bpe_unspell(key, strlen(key), b->pool + used, &bad);
        if (m <= 0) {
            if (m == 0)
                s = cr_err(e, CR_ERR_FORMAT, "%s: token %d is the empty string", path, id);
            else if (bad == UINT32_MAX)
                s = cr_err(e, CR_ERR_FORMAT, "%s: token %d is not valid UTF-8", path, id);
            else
                s = cr_err(e, CR_ERR_FORMAT,
                           "%s: token '%s' (id %d) contains U+%04X, which is not in GPT-2's "
                           "byte alphabet (bytes_to_unicode)",
                           path, key, id, (unsigned)bad);
            goto free_tmp;
        }
        start[id] = used;
        len_of[id] = (size_t)m;
        used += (size_t)m;
    }
    /* Every id 0..n-1 was seen exactly once (n keys, no repeats). Reorder
     * the pool by id so that off[] is monotone. */
    uint8_t *pool2 = cr_alloc_e(used + 1, e, "BPE token bytes");
    if (!pool2) {
        s = CR_ERR_NOMEM;
        goto free_tmp;
    }
    size_t at = 0;
    for (int32_t id = 0; id < n; id++) {
        b->off[id] = at;
        memcpy(pool2 + at, b->pool + start[id], len_of[id]);
        at += len_of[id];
    }
    b->off[n] = at;
    cr_free(b->pool);
    b->pool = pool2;

    for (size_t i = 0; i <= b->slot_mask; i++) b->slot[i] = -1;
    for (int32_t id = 0; id < n; id++) {
        const uint8_t *tok = b->pool + b->off[id];
        size_t tl = b->off[id + 1] - b->off[id];
        size_t i = cr_bpe_hash(tok, tl) & b->slot_mask;
        for (; b->slot[i] >= 0; i = (i + 1) & b->slot_mask) {
            int32_t o = b->slot[i];
            if (b->off[o + 1] - b->off[o] == tl && !memcmp(b->pool + b->off[o], tok, tl)) {
                s = cr_err(e, CR_ERR_FORMAT, "%s: ids %d and %d are the same token", path, o,
                           id);
                goto free_tmp;
            }
        }
        b->slot[i] = id;
    }
    for (int byte = 0; byte < 256; byte++) {
        uint8_t c = (uint8_t)byte;
        b->byte_id[byte] = cr_bpe_token_id(b, (const char *)&c, 1);
        if (b->byte_id[byte] < 0) {
            s = cr_err(e, CR_ERR_FORMAT,
                       "%s: no token for byte 0x%02X (spelled U+%04X); a byte-level BPE needs "
                       "all 256",
                       path, byte, (unsigned)cr_gpt2_byte_to_cp(c));
            goto free_tmp;
        }
    }
    s = CR_OK;
free_tmp:
    cr_free(len_of);
    cr_free(start);
    cr_free(seen);
done:
    cJSON_Delete(root);
    cr_free(buf);
    return s;
}

/* Look up a merge symbol spelled in GPT-2's alphabet. */
static cr_status cr_bpe_symbol(const cr_bpe *b, const char *path, int line, const char *sym,
                               size_t n, uint8_t *tmp, int32_t *id, cr_error *e) {
    uint32_t bad = 0;
    long m = cr_bpe_unspell(sym, n, tmp, &bad);
    if (m < 0)
        return cr_err(e, CR_ERR_FORMAT,
                      "%s:%d: merge symbol '%.*s' contains U+%04X, outside GPT-2's byte "
                      "alphabet",
                      path, line, (int)n, sym, bad == UINT32_MAX ? 0xFFFDu : (unsigned)bad);
    *id = cr_bpe_token_id(b, (const char *)tmp, (size_t)m);
    if (*id < 0)
        return cr_err(e, CR_ERR_NOT_FOUND,
                      "%s:%d: merge symbol '%.*s' is not a token of encoder.json", path, line,
                      (int)n, sym);
    return CR_OK;
}

static cr_status cr_bpe_load_merges(cr_bpe *b, const char *path, cr_error *e) {
    char *buf = NULL;
    size_t len = 0;
    CR_TRY(cr_read_file(path, &buf, &len, e));
    cr_status s = CR_OK;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    b->merge_mask = cr_bpe_pow2(lines) - 1;
    b->merge = cr_alloc_e((b->merge_mask + 1) * sizeof *b->merge, e, "BPE merge table");
    /* Scratch for unspelled symbols: a line's bytes bound each symbol's. */
    uint8_t *tmp = cr_alloc_e(len + 1, e, "BPE merge scratch");
    if (!b->merge || !tmp) {
        s = CR_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i <= b->merge_mask; i++) b->merge[i].key = UINT64_MAX;

    int line = 0;
    for (size_t p = 0; p < len;) {
        size_t q = p;
        while (q < len && buf[q] != '\n') q++;
        size_t end = q;
        line++;
        if (end > p && buf[end - 1] == '\r') end--;
        const char *l = buf + p;
        size_t ll = end - p;
        p = q + 1;
        /* The first line is "#version: 0.2"; blank lines (the file's final
         * newline) carry nothing. */
        if (ll == 0 || (line == 1 && l[0] == '#')) continue;

        const char *f[3];
        size_t fl[3];
        int nf = 0;
        for (size_t i = 0; i < ll;) {
            while (i < ll && (l[i] == ' ' || l[i] == '\t')) i++;
            if (i == ll) break;
            size_t j = i;
            while (j < ll && l[j] != ' ' && l[j] != '\t') j++;
            if (nf < 3) {
                f[nf] = l + i;
                fl[nf] = j - i;
            }
            nf++;
            i = j;
        }
        if (nf != 2) {
            s = cr_err(e, CR_ERR_PARSE,
                       "%s:%d: expected two symbols separated by a space, got %d field%s", path,
                       line, nf, nf == 1 ? "" : "s");
            goto done;
        }
        int32_t a, c, r;
        if ((s = cr_bpe_symbol(b, path, line, f[0], fl[0], tmp, &a, e)) != CR_OK) goto done;
        if ((s = cr_bpe_symbol(b, path, line, f[1], fl[1], tmp, &c, e)) != CR_OK) goto done;
        size_t la = b->off[a + 1] - b->off[a], lc = b->off[c + 1] - b->off[c];
        memcpy(tmp, b->pool + b->off[a], la);
        memcpy(tmp + la, b->pool + b->off[c], lc);
        r = cr_bpe_token_id(b, (const char *)tmp, la + lc);
        if (r < 0) {
            s = cr_err(e, CR_ERR_NOT_FOUND,
                       "%s:%d: merge '%.*s %.*s' makes a token that is not in encoder.json",
                       path, line, (int)fl[0], f[0], (int)fl[1], f[1]);
            goto done;
        }
        /* A repeated pair takes its later rank, as Python's dict(zip(...))
         * does in encoder.py. */
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
        size_t i = cr_bpe_mix(key) & b->merge_mask;
        while (b->merge[i].key != UINT64_MAX && b->merge[i].key != key)
            i = (i + 1) & b->merge_mask;
        b->merge[i].key = key;
        b->merge[i].rank = b->n_merges++;
        b->merge[i].result = r;
    }
done:
    cr_free(tmp);
    cr_free(buf);
    return s;
}

cr_status cr_bpe_load_files(cr_bpe **out, const char *encoder_json, const char *vocab_bpe,
                            cr_error *e) {
    *out = NULL;
    cr_bpe *b = cr_alloc_e(sizeof *b, e, "a BPE tokenizer");
    if (!b) return CR_ERR_NOMEM;
    cr_status s = cr_bpe_load_vocab(b, encoder_json, e);
    if (s == CR_OK) s = cr_bpe_load_merges(b, vocab_bpe, e);
    if (s != CR_OK) {
        cr_bpe_free(b);
        return s;
    }
    *out = b;
    return CR_OK;
}

cr_status cr_bpe_load(cr_bpe **out, const char *dir, cr_error *e) {
    char ej[4096], vb[4096];
    int n1 = snprintf(ej, sizeof ej, "%s/encoder.json", dir);
    int n2 = snprintf(vb, sizeof vb, "%s/vocab.bpe", dir);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof ej || (size_t)n2 >= sizeof vb) {
        *out = NULL;
        return cr_err(e, CR_ERR_ARG, "%s: path too long", dir);
    }
    return cr_bpe_load_files(out, ej, vb, e);
}

/* ---- encoding -------------------------------------------------------------------------
 * encoder.py merges, in rounds, every occurrence of the lowest-ranked pair
 * present, left to right. Rescanning the word each round is O(m^2) for a
 * pre-token of m bytes (a long run of dashes or spaces is one pre-token),
 * so the pairs live in a min-heap keyed by (rank, position) over a linked
 * list of symbols. A round pops every entry of the smallest rank first, then
 * merges them in position order, skipping entries made stale by an earlier
 * merge; pairs formed by the round wait in the heap for later rounds even if
 * their rank is lower, exactly as the rescanning loop would treat them. */
typedef struct cr_bpe_work {
    int32_t  *sym, *prv, *nxt; /* (m) symbol id per position, -1 once merged away */
    uint64_t *heap;            /* rank << 32 | position */
    uint64_t *batch;
    size_t    cap, heap_cap, n_heap;
} cr_bpe_work;

static void cr_heap_push(cr_bpe_work *w, uint64_t v) {
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p] <= v) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = v;
}

static uint64_t cr_heap_pop(cr_bpe_work *w) {
    uint64_t top = w->heap[0], v = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1] < w->heap[c]) c++;
        if (v <= w->heap[c]) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = v;
    return top;
}

static void cr_bpe_push_pair(const cr_bpe *b, cr_bpe_work *w, int32_t pos) {
    int32_t nx = w->nxt[pos];
    if (nx < 0) return;
    const cr_bpe_merge *mg = cr_bpe_find_merge(b, w->sym[pos], w->sym[nx]);
    if (mg) cr_heap_push(w, (uint64_t)(uint32_t)mg->rank << 32 | (uint32_t)pos);
}

static cr_status cr_bpe_work_fit(cr_bpe_work *w, size_t m, cr_error *e) {
    if (m <= w->cap) return CR_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < m) cap *= 2;
    cr_free(w->sym);
    cr_free(w->prv);
    cr_free(w->nxt);
    cr_free(w->heap);
    cr_free(w->batch);
    w->cap = cap;
    w->heap_cap = 3 * cap; /* m-1 initial pairs + at most 2 per merge */
    w->sym = cr_alloc(cap * sizeof *w->sym);
    w->prv = cr_alloc(cap * sizeof *w->prv);
    w->nxt = cr_alloc(cap * sizeof *w->nxt);
    w->heap = cr_alloc(w->heap_cap * sizeof *w->heap);
    w->batch = cr_alloc(w->heap_cap * sizeof *w->batch);
    if (!w->sym || !w->prv || !w->nxt || !w->heap || !w->batch) {
        w->cap = 0;
        return cr_err(e, CR_ERR_NOMEM, "out of memory encoding a %zu-byte pre-token", m);
    }
    return CR_OK;
}

/* BPE one pre-token s[0..m) and append its ids. */
static cr_status cr_bpe_word(const cr_bpe *b, cr_bpe_work *w, const uint8_t *s, size_t m,
                             int32_t **ids, size_t *n, size_t *cap, cr_error *e) {
    CR_TRY(cr_bpe_work_fit(w, m, e));
    for (size_t i = 0; i < m; i++) {
        w->sym[i] = b->byte_id[s[i]];
        w->prv[i] = (int32_t)i - 1;
        w->nxt[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    }
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < m; i++) cr_bpe_push_pair(b, w, (int32_t)i);

    while (w->n_heap) {
        uint32_t rank = (uint32_t)(w->heap[0] >> 32);
        size_t nb = 0;
        while (w->n_heap && (uint32_t)(w->heap[0] >> 32) == rank) w->batch[nb++] = cr_heap_pop(w);
        for (size_t k = 0; k < nb; k++) {
            int32_t pos = (int32_t)(uint32_t)w->batch[k];
            int32_t nx = w->nxt[pos];
            if (w->sym[pos] < 0 || nx < 0) continue;
            const cr_bpe_merge *mg = cr_bpe_find_merge(b, w->sym[pos], w->sym[nx]);
            if (!mg || (uint32_t)mg->rank != rank) continue; /* stale entry */
            w->sym[pos] = mg->result;
            w->sym[nx] = -1;
            w->nxt[pos] = w->nxt[nx];
            if (w->nxt[nx] >= 0) w->prv[w->nxt[nx]] = pos;
            if (w->prv[pos] >= 0) cr_bpe_push_pair(b, w, w->prv[pos]);
            cr_bpe_push_pair(b, w, pos);
        }
    }
    for (int32_t i = 0; i >= 0; i = w->nxt[i]) {
        CR_TRY(cr_grow((void **)ids, cap, *n + 1, sizeof **ids, e));
        (*ids)[(*n)++] = w->sym[i];
    }
    return CR_OK;
}

cr_status cr_bpe_encode(const cr_bpe *b, const char *text, size_t len, int32_t **ids,
                        size_t *n, cr_error *e) {
    *ids = NULL;
    *n = 0;
    size_t cap = 0;
    cr_bpe_work w = {0};
    /* Typical text gives a little under one token per 4 bytes. */
    cr_status s = cr_grow((void **)ids, &cap, len / 3 + 1, sizeof **ids, e);
    for (size_t p = 0; s == CR_OK && p < len;) {
        size_t q = cr_gpt2_split(text, len, p);
        s = cr_bpe_word(b, &w, (const uint8_t *)text + p, q - p, ids, n, &cap, e);
        p = q;
    }
    cr_free(w.sym);
    cr_free(w.prv);
    cr_free(w.nxt);
    cr_free(w.heap);
    cr_free(w.batch);
    if (s != CR_OK) {
        cr_free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return s;
}

cr_status cr_bpe_decode(const cr_bpe *b, const int32_t *ids, size_t n, char **text,
                        size_t *len, cr_error *e) {
    *text = NULL;
    if (len) *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= b->n_vocab)
            return cr_err(e, CR_ERR_ARG, "token %zu: id %d is outside the vocabulary 0..%d", i,
                          ids[i], b->n_vocab - 1);
        total += b->off[ids[i] + 1] - b->off[ids[i]];
    }
    char *out = cr_alloc_e(total + 1, e, "decoded text");
    if (!out) return CR_ERR_NOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl = b->off[ids[i] + 1] - b->off[ids[i]];
        memcpy(out + at, b->pool + b->off[ids[i]], tl);
        at += tl;
    }
    out[at] = 0;
    *text = out;
    if (len) *len = at;
    return CR_OK;
}
