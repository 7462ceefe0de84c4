/*
 * api_tokenizer.c - the public tokenizer entry points (crossrec.h): load a
 * GPT-2 BPE directory or a llama2.c tokenizer.bin behind one handle, encode,
 * decode, and learn a new BPE from a corpus. Argument checks and dispatch
 * only; the tokenizers themselves are src/data/bpe*.c and sp_tokenizer.c.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../data/bpe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(CR_TOK_BOS == CR_SP_BOS && CR_TOK_EOS == CR_SP_EOS &&
               CR_TOK_NO_DUMMY_PREFIX == CR_SP_NO_DUMMY_PREFIX,
               "the public tokenizer flags are the tokenizer.bin flags");

struct cr_tokenizer {
    cr_bpe *bpe; /* a GPT-2 BPE directory, or */
    cr_sp  *sp;  /* a llama2.c tokenizer.bin */
};

cr_status cr_tokenizer_load(cr_tokenizer **out, const char *path, cr_error *e) {
    if (out) *out = NULL;
    if (!out || !path) return cr_err(e, CR_ERR_ARG, "cr_tokenizer_load: out and path must not be NULL");
    struct stat st;
    if (stat(path, &st) != 0) return cr_err(e, CR_ERR_IO, "%s: %s", path, strerror(errno));
    cr_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return cr_err(e, CR_ERR_NOMEM, "out of memory loading %s", path);
    cr_status s = S_ISDIR(st.st_mode) ? cr_bpe_load(&t->bpe, path, e) : cr_sp_load(&t->sp, path, 0, e);
    if (s) {
        free(t);
        return s;
    }
    *out = t;
    return CR_OK;
}

void cr_tokenizer_free(cr_tokenizer *t) {
    if (!t) return;
    cr_bpe_free(t->bpe);
    cr_sp_free(t->sp);
    free(t);
}

int cr_tokenizer_is_bpe(const cr_tokenizer *t) { return t && t->bpe; }

int32_t cr_tokenizer_vocab_size(const cr_tokenizer *t) {
    return !t ? 0 : t->bpe ? cr_bpe_vocab_size(t->bpe) : cr_sp_vocab_size(t->sp);
}

cr_status cr_tokenizer_encode(const cr_tokenizer *t, const char *text, size_t len, int flags,
                              int32_t **ids, size_t *n, cr_error *e) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || (!text && len) || !ids || !n)
        return cr_err(e, CR_ERR_ARG, "cr_tokenizer_encode: t, text, ids and n must not be NULL");
    if (flags & ~(CR_TOK_BOS | CR_TOK_EOS | CR_TOK_NO_DUMMY_PREFIX))
        return cr_err(e, CR_ERR_ARG, "cr_tokenizer_encode: unknown flags 0x%x", (unsigned)flags);
    if (flags && t->bpe)
        return cr_err(e, CR_ERR_ARG, "cr_tokenizer_encode: CR_TOK_BOS, CR_TOK_EOS and "
                      "CR_TOK_NO_DUMMY_PREFIX apply only to a tokenizer.bin");
    if (!text) text = "";
    return t->bpe ? cr_bpe_encode(t->bpe, text, len, ids, n, e)
                  : cr_sp_encode(t->sp, text, len, flags, ids, n, e);
}

cr_status cr_tokenizer_decode(const cr_tokenizer *t, const int32_t *ids, size_t n, char **text,
                              size_t *len, cr_error *e) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!t || (!ids && n) || !text)
        return cr_err(e, CR_ERR_ARG, "cr_tokenizer_decode: t, ids and text must not be NULL");
    size_t l = 0;
    static const int32_t none[1] = {0};
    if (!ids) ids = none;
    CR_TRY(t->bpe ? cr_bpe_decode(t->bpe, ids, n, text, &l, e)
                  : cr_sp_decode(t->sp, ids, n, text, &l, e));
    if (len) *len = l;
    return CR_OK;
}

void cr_tokenizer_train_opts_init(cr_tokenizer_train_opts *o) {
    if (!o) return;
    cr_bpe_train_opts d;
    cr_bpe_train_opts_default(&d);
    o->vocab_size = d.vocab_size;
    o->min_frequency = d.min_frequency;
}

cr_status cr_tokenizer_train(cr_ctx *ctx, const char *corpus, const cr_tokenizer_train_opts *o,
                             const char *out_dir, int32_t *vocab, cr_error *e) {
    if (vocab) *vocab = 0;
    if (!corpus || !out_dir)
        return cr_err(e, CR_ERR_ARG, "cr_tokenizer_train: corpus and out_dir must not be NULL");
    cr_bpe_train_opts bo;
    cr_bpe_train_opts_default(&bo);
    if (o) {
        if (o->vocab_size < 257 || o->vocab_size > 1000000)
            return cr_err(e, CR_ERR_ARG, "cr_tokenizer_train_opts.vocab_size: expected 257 to "
                          "1000000, got %d", o->vocab_size);
        if (o->min_frequency < 1)
            return cr_err(e, CR_ERR_ARG, "cr_tokenizer_train_opts.min_frequency: expected >= 1, "
                          "got %lld", (long long)o->min_frequency);
        bo.vocab_size = o->vocab_size;
        bo.min_frequency = o->min_frequency;
    }
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_tokenizer_train", e));
    int32_t v = 0;
    cr_status s = cr_bpe_train_file(corpus, &bo, out_dir, &v, e);
    cr_call_end(&k);
    if (!s && vocab) *vocab = v;
    return s;
}
