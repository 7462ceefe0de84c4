/*
 * item_text.h - the text side of the Item-Language Model's items: one short
 * description per MovieLens movie (title with year, genres, and director
 * and MPAA rating from movies-extra.tsv when present), aligned with the CF
 * item table by raw movieId, and its token rows for the item encoder.
 * Reads files and returns statuses; never prints.
 */
#ifndef CR_ILM_ITEM_TEXT_H
#define CR_ILM_ITEM_TEXT_H

#include "../core/core.h"
#include "../data/bpe.h"

typedef struct cr_item_texts {
    int32_t n;       /* items, in the CF table's order */
    char  **text;    /* (n) NUL-terminated, or NULL for a movie missing from movies.csv */
    int32_t missing; /* how many are NULL */
} cr_item_texts;

/* dir/movies.csv (movieId,title,genres) and, if present, dir/movies-extra.tsv
 * (movieId, director, mpaa_rating, ...). raw_item: the n CF items' movieIds.
 * The text reads, e.g.:
 *   "Toy Story (1995). Adventure, Animation, Children. Directed by John
 *    Lasseter. Rated G."
 * (the last two sentences only when known). */
cr_status cr_item_texts_load(cr_item_texts *t, const char *dir, const int64_t *raw_item,
                             int32_t n, cr_error *e);
void      cr_item_texts_free(cr_item_texts *t);

/* Token row of a text for the encoder: [CLS] t1 .. tn [EOS] padded with
 * [EOS] to T, where the tokenizer has V0 = cr_bpe_vocab_size tokens and
 * CLS = V0, DEC = V0 + 1, EOS = V0 + 2 (the encoder's vocabulary is V0 + 3).
 * Truncation rule: a text of more than T - 2 tokens keeps its first T - 2
 * and still ends with [EOS]; *truncated (may be NULL) is set to 1 then,
 * else 0. *len receives the row's length (2..T). T >= 2. */
cr_status cr_item_text_encode(const cr_bpe *bpe, const char *text, int T, int32_t *row,
                              int32_t *len, int *truncated, cr_error *e);

#endif /* CR_ILM_ITEM_TEXT_H */
