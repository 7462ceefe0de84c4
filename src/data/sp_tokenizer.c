/*
 * sp_tokenizer.c - llama2.c's tokenizer.bin: a SentencePiece vocabulary
 * exported as (score, piece) records, encoded the way llama2.c's run.c
 * encodes (greedy highest-score merges, <0xXX> byte fallback, dummy
 * prefix). The ids must be llama2.c's for the same text; only the search
 * for the best pair is faster (a heap instead of a rescan per merge).
 */
#include "bpe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cr_sp {
    int32_t  n_vocab;
    int32_t  max_len;  /* max_token_length from the header */
    char    *pool;     /* pieces back to back, each NUL-terminated */
    size_t  *off;      /* (n_vocab + 1), the NUL not counted in lengths */
    float   *score;    /* (n_vocab) */
    int32_t *slot;     /* piece -> lowest id with that piece, -1 = empty */
    size_t   slot_mask;
    int32_t  byte_id[256]; /* id of "<0xXX>", -1 if the vocabulary lacks it */
};

/* llama2.c never merges into a piece scoring at or below its initial best. */
#define CR_SP_MIN_SCORE (-1e10f)

static uint64_t cr_sp_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static size_t cr_sp_len(const cr_sp *t, int32_t id) { return t->off[id + 1] - t->off[id] - 1; }

int32_t cr_sp_piece_id(const cr_sp *t, const char *piece, size_t len) {
    for (size_t i = cr_sp_hash(piece, len) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        int32_t id = t->slot[i];
        if (id < 0) return -1;
        if (cr_sp_len(t, id) == len && !memcmp(t->pool + t->off[id], piece, len)) return id;
    }
}

int32_t cr_sp_vocab_size(const cr_sp *t) { return t->n_vocab; }
int32_t cr_sp_max_token_length(const cr_sp *t) { return t->max_len; }

const char *cr_sp_piece(const cr_sp *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = cr_sp_len(t, id);
    return t->pool + t->off[id];
}

float cr_sp_score(const cr_sp *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->score[id] : NAN;
}

void cr_sp_free(cr_sp *t) {
    if (!t) return;
    cr_free(t->pool);
    cr_free(t->off);
    cr_free(t->score);
    cr_free(t->slot);
    cr_free(t);
}

static int32_t cr_sp_i32(const uint8_t *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}

static float cr_sp_f32(const uint8_t *p) {
    int32_t i = cr_sp_i32(p);
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* "<0xXX>" (either case of hex digit) -> the byte, else -1. */
static int cr_sp_byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                     : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

cr_status cr_sp_load(cr_sp **out, const char *path, int32_t expect_vocab, cr_error *e) {
    *out = NULL;
    cr_mmap m;
    CR_TRY(cr_mmap_open(&m, path, e));
    cr_status s = CR_OK;
    cr_sp *t = NULL;
    const uint8_t *d = m.data;
    size_t size = m.size;
    if (size < 4) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: %zu bytes; a tokenizer.bin starts with an int32 "
                   "max_token_length", path, size);
        goto fail;
    }
    int32_t max_len = cr_sp_i32(d);
    if (max_len <= 0 || max_len > (1 << 20)) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: max_token_length is %d; expected 1..%d", path, max_len,
                   1 << 20);
        goto fail;
    }
    /* First pass: count and check every record before allocating. */
    int32_t n = 0;
    size_t bytes = 0;
    for (size_t p = 4; p < size; n++) {
        if (size - p < 8) {
            s = cr_err(e, CR_ERR_FORMAT, "%s: token %d: record header truncated at byte %zu "
                       "(file is %zu bytes)", path, n, p, size);
            goto fail;
        }
        float sc = cr_sp_f32(d + p);
        int32_t len = cr_sp_i32(d + p + 4);
        if (!isfinite(sc)) {
            s = cr_err(e, CR_ERR_FORMAT, "%s: token %d: score is not a finite number", path, n);
            goto fail;
        }
        if (len < 0 || len > max_len) {
            s = cr_err(e, CR_ERR_FORMAT, "%s: token %d: length %d; expected 0..%d "
                       "(max_token_length)", path, n, len, max_len);
            goto fail;
        }
        if ((size_t)len > size - p - 8) {
            s = cr_err(e, CR_ERR_FORMAT, "%s: token %d: %d bytes of piece run past the end of "
                       "the file at byte %zu", path, n, len, size);
            goto fail;
        }
        p += 8 + (size_t)len;
        bytes += (size_t)len + 1;
        if (n == INT32_MAX - 1) {
            s = cr_err(e, CR_ERR_LIMIT, "%s: too many tokens", path);
            goto fail;
        }
    }
    if (n < 3) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: %d tokens; llama2.c's layout needs at least <unk>, "
                   "<s> and </s> (ids 0, 1, 2)", path, n);
        goto fail;
    }
    if (expect_vocab > 0 && n != expect_vocab) {
        s = cr_err(e, CR_ERR_MISMATCH, "%s: %d tokens, but the model expects %d", path, n,
                   expect_vocab);
        goto fail;
    }

    t = cr_alloc_e(sizeof *t, e, "a tokenizer");
    if (!t) {
        s = CR_ERR_NOMEM;
        goto fail;
    }
    t->n_vocab = n;
    t->max_len = max_len;
    t->pool = cr_alloc_e(bytes, e, "tokenizer pieces");
    t->off = cr_alloc_e(((size_t)n + 1) * sizeof *t->off, e, "tokenizer offsets");
    t->score = cr_alloc_e((size_t)n * sizeof *t->score, e, "tokenizer scores");
    t->slot_mask = 15;
    while (t->slot_mask + 1 < 2 * (size_t)n) t->slot_mask = t->slot_mask * 2 + 1;
    t->slot = cr_alloc_e((t->slot_mask + 1) * sizeof *t->slot, e, "tokenizer table");
    if (!t->pool || !t->off || !t->score || !t->slot) {
        s = CR_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i <= t->slot_mask; i++) t->slot[i] = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;

    size_t at = 0, p = 4;
    for (int32_t id = 0; id < n; id++) {
        size_t len = (size_t)cr_sp_i32(d + p + 4);
        t->score[id] = cr_sp_f32(d + p);
        t->off[id] = at;
        memcpy(t->pool + at, d + p + 8, len);
        t->pool[at + len] = 0;
        at += len + 1;
        p += 8 + len;
        /* A repeated piece keeps its lowest id (llama2.c's binary search
         * over a sorted copy would return either). */
        size_t i = cr_sp_hash(t->pool + t->off[id], len) & t->slot_mask;
        int dup = 0;
        for (; t->slot[i] >= 0; i = (i + 1) & t->slot_mask) {
            int32_t o = t->slot[i];
            if (t->off[o + 1] - t->off[o] - 1 == len &&
                !memcmp(t->pool + t->off[o], t->pool + t->off[id], len)) {
                dup = 1;
                break;
            }
        }
        if (!dup) t->slot[i] = id;
        int b = cr_sp_byte_piece(t->pool + t->off[id], len);
        if (b >= 0 && t->byte_id[b] < 0) t->byte_id[b] = id;
    }
    t->off[n] = at;
    cr_mmap_close(&m);
    *out = t;
    return CR_OK;
fail:
    cr_sp_free(t);
    cr_mmap_close(&m);
    return s;
}

/* ---- encoding ---------------------------------------------------------------------------
 * run.c scans every adjacent pair per merge and takes the first pair with
 * the strictly highest score: O(m^2) over the whole text, which is never
 * pre-split. The same choice comes from a max-heap ordered by (score,
 * then leftmost position) over a linked list, with entries checked against
 * the current neighbours when popped. */
typedef struct cr_sp_cand {
    float   score;
    int32_t pos, rpos;   /* left and right node */
    int32_t lsym, rsym;  /* their ids when pushed: a changed id means stale */
    int32_t id;          /* the merged piece */
} cr_sp_cand;

static int cr_sp_before(const cr_sp_cand *a, const cr_sp_cand *b) {
    return a->score > b->score || (a->score == b->score && a->pos < b->pos);
}

typedef struct cr_sp_work {
    int32_t    *sym, *nxt, *prv;
    cr_sp_cand *heap; /* grows: most adjacent pairs are not pieces */
    size_t      n_heap, heap_cap;
    int         oom;
    char       *buf; /* 2 * max_len: two pieces side by side */
} cr_sp_work;

static void cr_sp_push(const cr_sp *t, cr_sp_work *w, int32_t pos) {
    int32_t r = w->nxt[pos];
    if (r < 0) return;
    size_t la = cr_sp_len(t, w->sym[pos]), lb = cr_sp_len(t, w->sym[r]);
    memcpy(w->buf, t->pool + t->off[w->sym[pos]], la);
    memcpy(w->buf + la, t->pool + t->off[w->sym[r]], lb);
    int32_t id = cr_sp_piece_id(t, w->buf, la + lb);
    if (id < 0 || !(t->score[id] > CR_SP_MIN_SCORE)) return;
    cr_sp_cand c = {t->score[id], pos, r, w->sym[pos], w->sym[r], id};
    if (w->n_heap == w->heap_cap) {
        size_t nc = w->heap_cap ? 2 * w->heap_cap : 256;
        cr_sp_cand *h = realloc(w->heap, nc * sizeof *h);
        if (!h) {
            w->oom = 1; /* reported by cr_sp_encode */
            return;
        }
        w->heap = h;
        w->heap_cap = nc;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cr_sp_before(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static cr_sp_cand cr_sp_pop(cr_sp_work *w) {
    cr_sp_cand top = w->heap[0], v = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cr_sp_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cr_sp_before(&w->heap[c], &v)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = v;
    return top;
}

cr_status cr_sp_encode(const cr_sp *t, const char *text, size_t len, int flags, int32_t **ids,
                       size_t *n, cr_error *e) {
    *ids = NULL;
    *n = 0;
    const uint8_t *u = (const uint8_t *)text;
    int prefix = len > 0 && !(flags & CR_SP_NO_DUMMY_PREFIX);
    int32_t space = -1;
    if (prefix && (space = cr_sp_piece_id(t, " ", 1)) < 0)
        return cr_err(e, CR_ERR_NOT_FOUND,
                      "tokenizer has no \" \" piece for the dummy prefix; encode with "
                      "CR_SP_NO_DUMMY_PREFIX");
    /* At most one token per byte, plus BOS, prefix and EOS. */
    size_t cap = len + 3;
    cr_sp_work w = {0};
    w.sym = cr_alloc(cap * sizeof *w.sym);
    w.nxt = cr_alloc(cap * sizeof *w.nxt);
    w.prv = cr_alloc(cap * sizeof *w.prv);
    w.buf = cr_alloc(2 * (size_t)t->max_len + 8);
    int32_t *outv = cr_alloc(cap * sizeof *outv);
    cr_status s = CR_OK;
    if (!w.sym || !w.nxt || !w.prv || !w.buf || !outv) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory encoding %zu bytes", len);
        goto done;
    }

    size_t m = 0;
    if (flags & CR_SP_BOS) w.sym[m++] = CR_SP_BOS_ID;
    if (prefix) w.sym[m++] = space;
    /* One piece per UTF-8 character as run.c cuts them: a byte and the
     * continuation bytes after it, at most 4 in all. */
    for (size_t i = 0; i < len;) {
        size_t k = 1;
        while (i + k < len && k < 4 && (u[i + k] & 0xC0) == 0x80) k++;
        int32_t id = cr_sp_piece_id(t, text + i, k);
        if (id >= 0) {
            w.sym[m++] = id;
        } else {
            for (size_t j = 0; j < k; j++) {
                int32_t b = t->byte_id[u[i + j]];
                if (b < 0) {
                    s = cr_err(e, CR_ERR_NOT_FOUND,
                               "byte %zu (0x%02X) is not a piece and the tokenizer has no "
                               "<0x%02X> byte-fallback token",
                               i + j, u[i + j], u[i + j]);
                    goto done;
                }
                w.sym[m++] = b;
            }
        }
        i += k;
    }
    for (size_t i = 0; i < m; i++) {
        w.prv[i] = (int32_t)i - 1;
        w.nxt[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < m; i++) cr_sp_push(t, &w, (int32_t)i);
    while (w.n_heap) {
        cr_sp_cand c = cr_sp_pop(&w);
        if (w.sym[c.pos] != c.lsym || w.nxt[c.pos] != c.rpos || w.sym[c.rpos] != c.rsym)
            continue; /* a neighbour merged since this pair was seen */
        int32_t r = c.rpos;
        w.sym[c.pos] = c.id;
        w.sym[r] = -1;
        w.nxt[c.pos] = w.nxt[r];
        if (w.nxt[r] >= 0) w.prv[w.nxt[r]] = c.pos;
        if (w.prv[c.pos] >= 0) cr_sp_push(t, &w, w.prv[c.pos]);
        cr_sp_push(t, &w, c.pos);
    }
    if (w.oom) { /* a lost candidate would change the merges: fail instead */
        s = cr_err(e, CR_ERR_NOMEM, "out of memory encoding %zu bytes", len);
        goto done;
    }
    size_t k = 0;
    if (m) /* node 0 is never merged away: merges keep the left node */
        for (int32_t i = 0; i >= 0; i = w.nxt[i]) outv[k++] = w.sym[i];
    if (flags & CR_SP_EOS) outv[k++] = CR_SP_EOS_ID;
    *ids = outv;
    *n = k;
    outv = NULL;
done:
    cr_free(w.sym);
    cr_free(w.nxt);
    cr_free(w.prv);
    free(w.heap);
    cr_free(w.buf);
    cr_free(outv);
    return s;
}

cr_status cr_sp_decode(const cr_sp *t, const int32_t *ids, size_t n, char **text, size_t *len,
                       cr_error *e) {
    *text = NULL;
    if (len) *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return cr_err(e, CR_ERR_ARG, "token %zu: id %d is outside the vocabulary 0..%d", i,
                          ids[i], t->n_vocab - 1);
        total += cr_sp_len(t, ids[i]);
    }
    char *out = cr_alloc_e(total + 1, e, "decoded text");
    if (!out) return CR_ERR_NOMEM;
    size_t at = 0;
    int start = 1; /* at the start of the text or right after BOS */
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id == CR_SP_BOS_ID) {
            start = 1;
            continue;
        }
        if (id == CR_SP_EOS_ID) continue;
        const char *p = t->pool + t->off[id];
        size_t pl = cr_sp_len(t, id);
        int b = cr_sp_byte_piece(p, pl);
        if (b >= 0) {
            out[at++] = (char)b;
        } else {
            if (start && pl && p[0] == ' ') { /* undo the dummy prefix */
                p++;
                pl--;
            }
            memcpy(out + at, p, pl);
            at += pl;
        }
        start = 0;
    }
    out[at] = 0;
    *text = out;
    if (len) *len = at;
    return CR_OK;
}
