/*
 * prompts.c - the text side of phase 2: the LM's tokenizer (GPT-2 BPE or
 * llama2.c), the task templates, and filling a template into a batch row
 * where every {item}, {user} and {history} entity becomes NQ soft
 * positions (id -1) and only the target's tokens are scored. Pure
 * bookkeeping: no model is touched here, nothing prints.
 */
#include "phase2.h"

#include "../train/lm_train.h"

#include <string.h>
#include <sys/stat.h>

/* ---- tokenizer ------------------------------------------------------------------------- */
static int cr_p2_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

cr_status cr_p2_tok_open(cr_p2_tok *t, const char *path, cr_error *e) {
    memset(t, 0, sizeof *t);
    t->bos = t->eos = -1;
    char p[4096];
    if (cr_p2_is_dir(path)) {
        snprintf(p, sizeof p, "%s/encoder.json", path);
        if (cr_file_exists(p)) {
            CR_TRY(cr_bpe_load(&t->bpe, path, e));
            t->vocab = cr_bpe_vocab_size(t->bpe);
            /* the LM was trained with "<|endoftext|>" first in every sequence
             * (cr_lm_bos), and the same token ends a document */
            t->bos = t->eos = cr_lm_bos(t->bpe);
            return CR_OK;
        }
        snprintf(p, sizeof p, "%s/tokenizer.bin", path);
        if (!cr_file_exists(p))
            return cr_err(e, CR_ERR_NOT_FOUND, "%s: neither encoder.json (GPT-2 BPE) nor "
                          "tokenizer.bin (llama2.c) in this directory", path);
    } else {
        snprintf(p, sizeof p, "%s", path);
    }
    CR_TRY(cr_sp_load(&t->sp, p, 0, e));
    t->vocab = cr_sp_vocab_size(t->sp);
    t->bos = CR_SP_BOS_ID, t->eos = CR_SP_EOS_ID;
    return CR_OK;
}

void cr_p2_tok_free(cr_p2_tok *t) {
    cr_bpe_free(t->bpe);
    cr_sp_free(t->sp);
    memset(t, 0, sizeof *t);
}

cr_status cr_p2_tok_encode(const cr_p2_tok *t, const char *s, size_t len, int32_t **ids,
                           size_t *n, cr_error *e) {
    if (t->bpe) return cr_bpe_encode(t->bpe, s, len, ids, n, e);
    return cr_sp_encode(t->sp, s, len, CR_SP_NO_DUMMY_PREFIX, ids, n, e);
}

cr_status cr_p2_tok_decode(const cr_p2_tok *t, const int32_t *ids, size_t n, char **text,
                           cr_error *e) {
    int32_t *k = cr_alloc(sizeof(int32_t) * (n ? n : 1));
    if (!k) return cr_err(e, CR_ERR_NOMEM, "decode: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != t->bos && ids[i] != t->eos) k[m++] = ids[i];
    size_t len;
    cr_status s = t->bpe ? cr_bpe_decode(t->bpe, k, m, text, &len, e)
                         : cr_sp_decode(t->sp, k, m, text, &len, e);
    cr_free(k);
    return s;
}

/* ---- tasks -------------------------------------------------------------------------------- */
static const char *const cr_p2_names[CR_P2_NTASK] = {"describe", "genre", "year", "director",
                                                     "next", "similar"};
/* The prompts end where the answer starts; targets begin with a space. */
static const char *const cr_p2_tmpl[CR_P2_NTASK] = {
    "The movie {item} is described as:",
    "The genres of the movie {item} are:",
    "The movie {item} came out in",
    "The movie {item} was directed by",
    "A viewer {user} has watched {history}. Next they will watch",
    "People who watched {item} also watched",
};

const char *cr_p2_task_name(int task) {
    return task >= 0 && task < CR_P2_NTASK ? cr_p2_names[task] : "?";
}
const char *cr_p2_template(int task) {
    return task >= 0 && task < CR_P2_NTASK ? cr_p2_tmpl[task] : NULL;
}

/* ---- batches ---------------------------------------------------------------------------- */
cr_status cr_p2_batch_init(cr_p2_batch *b, int cap_B, int cap_T, int cap_E, int nq, cr_error *e) {
    memset(b, 0, sizeof *b);
    if (cap_B < 1 || cap_T < 2 || cap_E < 1 || nq < 1)
        return cr_err(e, CR_ERR_ARG, "prompt batch: bad sizes B %d, T %d, E %d, NQ %d", cap_B,
                      cap_T, cap_E, nq);
    size_t n = (size_t)cap_B * cap_T;
    b->cap_B = cap_B, b->cap_T = cap_T, b->cap_E = cap_E, b->nq = nq;
    b->ids = cr_alloc(sizeof(int32_t) * n);
    b->tgt = cr_alloc(sizeof(int32_t) * n);
    b->soft = cr_alloc(sizeof(int32_t) * n);
    b->len = cr_alloc(sizeof(int32_t) * cap_B);
    b->tstart = cr_alloc(sizeof(int32_t) * cap_B);
    b->ent = cr_alloc(sizeof(int32_t) * cap_E);
    b->kind = cr_alloc((size_t)cap_E);
    if (!b->ids || !b->tgt || !b->soft || !b->len || !b->tstart || !b->ent || !b->kind) {
        cr_p2_batch_free(b);
        return cr_err(e, CR_ERR_NOMEM, "prompt batch: out of memory");
    }
    cr_p2_batch_clear(b);
    return CR_OK;
}

void cr_p2_batch_free(cr_p2_batch *b) {
    cr_free(b->ids), cr_free(b->tgt), cr_free(b->soft), cr_free(b->len), cr_free(b->tstart);
    cr_free(b->ent), cr_free(b->kind);
    memset(b, 0, sizeof *b);
}

void cr_p2_batch_clear(cr_p2_batch *b) {
    size_t n = (size_t)b->cap_B * b->cap_T;
    b->B = b->T = b->E = 0;
    b->truncated = 0;
    memset(b->ids, 0, sizeof(int32_t) * n); /* padding is token 0: never scored */
    for (size_t i = 0; i < n; i++) b->tgt[i] = -1, b->soft[i] = -1;
}

/* A row being written: tokens and soft slots go in until cap_T. */
typedef struct {
    cr_p2_batch *b;
    int32_t     *ids, *soft;
    int          pos, E;
} cr_p2_row;

static cr_status cr_p2_put_text(cr_p2_row *r, const cr_p2_tok *tok, const char *s, size_t n,
                                cr_error *e) {
    if (!n) return CR_OK;
    int32_t *ids;
    size_t k;
    CR_TRY(cr_p2_tok_encode(tok, s, n, &ids, &k, e));
    if (r->pos + (int)k > r->b->cap_T) {
        cr_free(ids);
        return cr_err(e, CR_ERR_LIMIT, "prompt: does not fit in %d tokens", r->b->cap_T);
    }
    for (size_t i = 0; i < k; i++) r->ids[r->pos++] = ids[i];
    cr_free(ids);
    return CR_OK;
}

static cr_status cr_p2_put_entity(cr_p2_row *r, int32_t row, uint8_t kind, cr_error *e) {
    cr_p2_batch *b = r->b;
    if (row < 0) return cr_err(e, CR_ERR_ARG, "prompt: a slot has no entity");
    if (r->E >= b->cap_E)
        return cr_err(e, CR_ERR_LIMIT, "prompt batch: more than %d entities", b->cap_E);
    if (r->pos + b->nq > b->cap_T)
        return cr_err(e, CR_ERR_LIMIT, "prompt: does not fit in %d tokens", b->cap_T);
    b->ent[r->E] = row, b->kind[r->E] = kind;
    for (int q = 0; q < b->nq; q++) {
        r->ids[r->pos] = -1;
        r->soft[r->pos] = r->E * b->nq + q;
        r->pos++;
    }
    r->E++;
    return CR_OK;
}

static cr_status cr_p2_fill(cr_p2_row *r, const cr_p2_tok *tok, const cr_p2_example *x,
                            cr_error *e) {
    if (tok->bos >= 0) r->ids[r->pos++] = tok->bos;
    const char *s = x->tmpl;
    while (*s) {
        const char *open = strchr(s, '{');
        if (!open) {
            CR_TRY(cr_p2_put_text(r, tok, s, strlen(s), e));
            break;
        }
        CR_TRY(cr_p2_put_text(r, tok, s, (size_t)(open - s), e));
        const char *close = strchr(open, '}');
        size_t nl = close ? (size_t)(close - open - 1) : 0;
        if (close && nl == 4 && !strncmp(open + 1, "item", 4)) {
            CR_TRY(cr_p2_put_entity(r, x->item, CR_QF_ITEM, e));
        } else if (close && nl == 4 && !strncmp(open + 1, "user", 4)) {
            CR_TRY(cr_p2_put_entity(r, x->user, CR_QF_USER, e));
        } else if (close && nl == 7 && !strncmp(open + 1, "history", 7)) {
            if (x->n_hist < 1) return cr_err(e, CR_ERR_ARG, "prompt: {history} is empty");
            for (int h = 0; h < x->n_hist; h++) {
                if (h) CR_TRY(cr_p2_put_text(r, tok, ",", 1, e));
                CR_TRY(cr_p2_put_entity(r, x->hist[h], CR_QF_ITEM, e));
            }
        } else {
            return cr_err(e, CR_ERR_ARG, "prompt '%s': unknown slot at '%.12s' (slots are "
                          "{item}, {user}, {history})", x->tmpl, open);
        }
        s = close + 1;
    }
    return CR_OK;
}

cr_status cr_p2_batch_add(cr_p2_batch *b, const cr_p2_tok *tok, const cr_p2_example *x,
                          cr_error *e) {
    if (b->B >= b->cap_B) return cr_err(e, CR_ERR_LIMIT, "prompt batch: full (%d rows)", b->cap_B);
    size_t off = (size_t)b->B * b->cap_T;
    cr_p2_row r = {b, b->ids + off, b->soft + off, 0, b->E};
    cr_status s = cr_p2_fill(&r, tok, x, e);
    int32_t *tg = b->tgt + off;
    int tstart = r.pos, cut = 0;
    if (s == CR_OK && x->target) {
        int32_t *ids = NULL;
        size_t k = 0;
        if ((s = cr_p2_tok_encode(tok, x->target, strlen(x->target), &ids, &k, e)) == CR_OK) {
            int want = (int)k + (x->eos && tok->eos >= 0);
            int room = b->cap_T - r.pos;
            if (want > 0 && room < 1)
                s = cr_err(e, CR_ERR_LIMIT, "prompt: no room for the target in %d tokens",
                           b->cap_T);
            int n = want < room ? want : room;
            cut = n < want;
            for (int i = 0; s == CR_OK && i < n; i++)
                r.ids[r.pos++] = i < (int)k ? ids[i] : tok->eos;
        }
        cr_free(ids);
    }
    if (s == CR_OK && tstart == 0)
        s = cr_err(e, CR_ERR_ARG, "prompt: empty (no BOS, no text, no slot)");
    if (s != CR_OK) { /* leave the batch as it was */
        for (int t = 0; t < b->cap_T; t++) r.ids[t] = 0, r.soft[t] = -1;
        return s;
    }
    /* position t predicts token t + 1: only target tokens are scored */
    for (int t = tstart - 1; t + 1 < r.pos; t++) tg[t] = r.ids[t + 1];
    b->len[b->B] = r.pos;
    b->tstart[b->B] = tstart;
    b->T = r.pos > b->T ? r.pos : b->T;
    b->E = r.E;
    b->truncated += cut;
    b->B++;
    return CR_OK;
}
