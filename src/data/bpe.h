/*
 * bpe.h - text to token ids and back, for the decoder language model:
 * GPT-2's byte-level BPE (encoder.json + vocab.bpe), a trainer that writes
 * that same format, and llama2.c's tokenizer.bin (SentencePiece-style score
 * merges with byte fallback). Tokenizers are immutable after loading, so
 * one may be shared by threads; nothing here prints. docs/tokenizers.md
 * describes the formats and the exactness guarantees.
 */
#ifndef CR_BPE_H
#define CR_BPE_H

#include "../core/core.h"

/* ---- Unicode classes for GPT-2's pre-tokenisation (bpe_unicode.c) ------------
 * Generated from Python's unicodedata; cr_uni_version names the Unicode
 * version ("14.0.0"). SPACE is JavaScript's \s. */
typedef enum cr_uni_class {
    CR_UNI_OTHER = 0, /* neither letter, number nor space: punctuation, symbols, emoji */
    CR_UNI_LETTER,    /* \p{L}: Lu Ll Lt Lm Lo */
    CR_UNI_NUMBER,    /* \p{N}: Nd Nl No */
    CR_UNI_SPACE      /* \s */
} cr_uni_class;

extern const char cr_uni_version[];
cr_uni_class cr_uni_classify(uint32_t cp);

/* Decode one UTF-8 code point at s[0..n) (n >= 1). Returns its length in
 * bytes and sets *cp. A malformed sequence (overlong, surrogate, above
 * U+10FFFF, truncated, stray continuation byte) yields length 1 and
 * *cp = UINT32_MAX, which classifies as OTHER: byte-level BPE can still
 * encode it, and decoding gives the same bytes back. */
size_t cr_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);

/* GPT-2's pre-tokeniser, by hand:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Returns the end of the pre-token that starts at pos (pos < len), so
 * `for (p = 0; p < len; p = cr_gpt2_split(s, len, p))` walks them all. */
size_t cr_gpt2_split(const char *text, size_t len, size_t pos);

/* ---- GPT-2 byte-level BPE ------------------------------------------------------ */
typedef struct cr_bpe cr_bpe;

/* Load dir/encoder.json and dir/vocab.bpe. Errors name the file and what
 * was wrong: bad JSON, an id that is not 0..n-1 exactly once, a token with
 * a character outside GPT-2's 256-character byte alphabet, a merge line
 * that is not two symbols, a merge naming a symbol (or producing a token)
 * missing from encoder.json. */
cr_status cr_bpe_load(cr_bpe **out, const char *dir, cr_error *e);
cr_status cr_bpe_load_files(cr_bpe **out, const char *encoder_json, const char *vocab_bpe,
                            cr_error *e);
void      cr_bpe_free(cr_bpe *b);

int32_t cr_bpe_vocab_size(const cr_bpe *b);
int32_t cr_bpe_n_merges(const cr_bpe *b);
/* Raw bytes of a token (not the byte-to-unicode spelling); NULL if id is
 * out of range. */
const uint8_t *cr_bpe_token(const cr_bpe *b, int32_t id, size_t *len);
/* Id of the token with exactly these bytes, or -1: cr_bpe_token_id(b,
 * "<|endoftext|>", 13) is 50256 for GPT-2. */
int32_t cr_bpe_token_id(const cr_bpe *b, const char *bytes, size_t len);
/* Rank of the merge (left, right) (its line in vocab.bpe, from 0), or -1. */
int32_t cr_bpe_merge_rank(const cr_bpe *b, int32_t left, int32_t right);

/* Encode len bytes of text (any bytes; UTF-8 expected). *ids is allocated
 * (free with cr_free) and never NULL on success, even when *n is 0.
 * Special tokens are not recognised in text: "<|endoftext|>" encodes as
 * ordinary characters, as GPT-2's encoder does. Cost is O(m log m) per
 * pre-token of m bytes, so adversarial runs of one character stay cheap. */
cr_status cr_bpe_encode(const cr_bpe *b, const char *text, size_t len, int32_t **ids,
                        size_t *n, cr_error *e);
/* Concatenate the tokens' bytes. *text is NUL-terminated (not counted in
 * *len), free with cr_free. An id outside 0..vocab-1 is CR_ERR_ARG naming
 * its position. */
cr_status cr_bpe_decode(const cr_bpe *b, const int32_t *ids, size_t n, char **text,
                        size_t *len, cr_error *e);

/* GPT-2's bytes_to_unicode: byte -> code point used to spell tokens in
 * encoder.json and vocab.bpe (printable bytes map to themselves, the other
 * 68 to U+0100..U+0143 in byte order). */
uint32_t cr_gpt2_byte_to_cp(uint8_t byte);
/* The inverse; -1 for a code point outside the alphabet. */
int      cr_gpt2_cp_to_byte(uint32_t cp);

/* ---- BPE trainer (bpe_train.c) --------------------------------------------------
 * Counts GPT-2 pre-tokens over the texts it is given (a pre-token never
 * spans two cr_bpe_trainer_add calls), then merges the most frequent
 * adjacent pair until the vocabulary has vocab_size tokens. Ties go to the
 * pair whose left token, then right token, has the smaller bytes
 * (shorter first on a common prefix), so training is deterministic. Ids:
 * the 256 bytes in GPT-2's order, then one per merge, then specials. */
typedef struct cr_bpe_train_opts {
    int32_t             vocab_size;    /* bytes + merges + specials (default 4096) */
    int64_t             min_frequency; /* never merge a pair seen fewer times (default 2) */
    const char *const  *special;       /* default {"<|endoftext|>"} */
    int                 n_special;
} cr_bpe_train_opts;

void cr_bpe_train_opts_default(cr_bpe_train_opts *o);

typedef struct cr_bpe_trainer cr_bpe_trainer;
cr_status cr_bpe_trainer_new(cr_bpe_trainer **out, cr_error *e);
void      cr_bpe_trainer_free(cr_bpe_trainer *t);
cr_status cr_bpe_trainer_add(cr_bpe_trainer *t, const char *text, size_t len, cr_error *e);
/* Learn the merges; may stop short of vocab_size when no pair is frequent
 * enough (cr_bpe_trainer_vocab_size tells). Fit once per trainer. */
cr_status cr_bpe_trainer_fit(cr_bpe_trainer *t, const cr_bpe_train_opts *o, cr_error *e);
int32_t   cr_bpe_trainer_vocab_size(const cr_bpe_trainer *t);
/* Write dir/encoder.json and dir/vocab.bpe (directory created), each
 * atomically, in GPT-2's spelling, loadable by cr_bpe_load. */
cr_status cr_bpe_trainer_save(const cr_bpe_trainer *t, const char *dir, cr_error *e);
/* Read a corpus file, train and save: the three steps above. */
cr_status cr_bpe_train_file(const char *corpus, const cr_bpe_train_opts *o, const char *dir,
                            int32_t *vocab_size, cr_error *e);

/* ---- llama2.c tokenizer.bin (sp_tokenizer.c) ----------------------------------
 * File: int32 max_token_length, then per token: float32 score, int32 len,
 * len bytes (little-endian; the token count is not stored, so the file is
 * read to its end). Encoding is llama2.c's: an optional BOS (id 1), a
 * "dummy prefix" token " " when the text is not empty, one token per UTF-8
 * character or its bytes as <0xXX> tokens, then repeatedly merge the
 * adjacent pair whose concatenation is a token with the highest score
 * (leftmost on ties; scores <= -1e10 never merge), then an optional EOS
 * (id 2). */
typedef struct cr_sp cr_sp;

enum {
    CR_SP_BOS             = 1, /* prepend id 1 */
    CR_SP_EOS             = 2, /* append id 2 */
    CR_SP_NO_DUMMY_PREFIX = 4  /* do not prepend " " (llama2.c always does) */
};
#define CR_SP_BOS_ID 1
#define CR_SP_EOS_ID 2

/* expect_vocab 0 = any; otherwise the file must hold exactly that many. */
cr_status cr_sp_load(cr_sp **out, const char *path, int32_t expect_vocab, cr_error *e);
void      cr_sp_free(cr_sp *t);
int32_t   cr_sp_vocab_size(const cr_sp *t);
int32_t   cr_sp_max_token_length(const cr_sp *t);
const char *cr_sp_piece(const cr_sp *t, int32_t id, size_t *len); /* NULL if out of range */
float     cr_sp_score(const cr_sp *t, int32_t id);
int32_t   cr_sp_piece_id(const cr_sp *t, const char *piece, size_t len); /* -1 if absent */
cr_status cr_sp_encode(const cr_sp *t, const char *text, size_t len, int flags, int32_t **ids,
                       size_t *n, cr_error *e);
/* Pieces concatenated; <0xXX> pieces become their byte; BOS and EOS give
 * nothing; the leading space of the first piece (or of one after BOS) is
 * dropped, undoing the dummy prefix as SentencePiece does. */
cr_status cr_sp_decode(const cr_sp *t, const int32_t *ids, size_t n, char **text, size_t *len,
                       cr_error *e);

#endif /* CR_BPE_H */
