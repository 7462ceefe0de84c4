/*
 * item_text.c - item descriptions from MovieLens' movies.csv and
 * movies-extra.tsv, joined to the CF item table by movieId, and their token
 * rows for the item encoder. The text is built from fields only (no
 * ratings, no tags), so a held-out item's text says nothing about the
 * interactions the encoder was trained on.
 */
#include "item_text.h"

#include "../data/data.h"
#include "../data/movielens.h"

#include <stdlib.h>
#include <string.h>

/* Append src[0..n) to the heap string *s (NULL = empty). */
static cr_status cr_it_append(char **s, const char *src, size_t n, cr_error *e) {
    size_t old = *s ? strlen(*s) : 0;
    char *p = cr_alloc(old + n + 1);
    if (!p) return cr_err(e, CR_ERR_NOMEM, "item texts: out of memory");
    if (old) memcpy(p, *s, old);
    memcpy(p + old, src, n);
    p[old + n] = '\0';
    cr_free(*s);
    *s = p;
    return CR_OK;
}

static cr_status cr_it_cat(char **s, const char *src, cr_error *e) {
    return cr_it_append(s, src, strlen(src), e);
}

/* "Title. Genre, Genre. Directed by D. Rated R." from the catalogue's fields. */
static cr_status cr_it_text(char **out, const cr_ml_item *m, cr_error *e) {
    cr_status s = cr_it_cat(out, m->title, e);
    if (!s && *m->genres) {
        s = cr_it_cat(out, ". ", e);
        for (const char *g = m->genres; !s && *g;) {
            size_t n = strcspn(g, "|");
            if (g != m->genres) s = cr_it_cat(out, ", ", e);
            if (!s) s = cr_it_append(out, g, n, e);
            g += n + (g[n] == '|');
        }
    }
    if (!s) s = cr_it_cat(out, ".", e);
    if (!s && *m->director) {
        s = cr_it_cat(out, " Directed by ", e);
        if (!s) s = cr_it_cat(out, m->director, e);
        if (!s) s = cr_it_cat(out, ".", e);
    }
    if (!s && *m->mpaa) {
        s = cr_it_cat(out, " Rated ", e);
        if (!s) s = cr_it_cat(out, m->mpaa, e);
        if (!s) s = cr_it_cat(out, ".", e);
    }
    return s;
}

cr_status cr_item_texts_load(cr_item_texts *t, const char *dir, const int64_t *raw_item,
                             int32_t n, cr_error *e) {
    memset(t, 0, sizeof *t);
    if (n < 1) return cr_err(e, CR_ERR_ARG, "item texts: no items");
    cr_ml_catalog *cat = NULL;
    CR_TRY(cr_ml_catalog_open(&cat, dir, e));
    t->text = cr_alloc(sizeof *t->text * (size_t)n);
    if (!t->text) {
        cr_ml_catalog_free(cat);
        return cr_err(e, CR_ERR_NOMEM, "item texts: out of memory for %d items", n);
    }
    t->n = n;
    cr_status s = CR_OK;
    for (int32_t i = 0; i < n && !s; i++) {
        int32_t j = cr_ml_catalog_find(cat, raw_item[i]);
        if (j < 0) continue; /* a CF item without a catalogue entry: no text */
        cr_ml_item m;
        cr_ml_catalog_item(cat, j, &m);
        s = cr_it_text(&t->text[i], &m, e);
    }
    cr_ml_catalog_free(cat);
    if (s != CR_OK) {
        cr_item_texts_free(t);
        return s;
    }
    for (int32_t i = 0; i < n; i++) t->missing += !t->text[i];
    return CR_OK;
}

void cr_item_texts_free(cr_item_texts *t) {
    for (int32_t i = 0; t->text && i < t->n; i++) cr_free(t->text[i]);
    cr_free(t->text);
    memset(t, 0, sizeof *t);
}

cr_status cr_item_text_encode(const cr_bpe *bpe, const char *text, int T, int32_t *row,
                              int32_t *len, int *truncated, cr_error *e) {
    if (T < 2) return cr_err(e, CR_ERR_ARG, "item text rows need at least 2 tokens, got %d", T);
    int32_t V0 = cr_bpe_vocab_size(bpe);
    int32_t *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_bpe_encode(bpe, text, strlen(text), &ids, &n, e));
    size_t keep = n > (size_t)(T - 2) ? (size_t)(T - 2) : n;
    row[0] = V0; /* [CLS]; the encoder swaps in [DEC] for generation */
    for (size_t i = 0; i < keep; i++) row[1 + i] = ids[i];
    row[1 + keep] = V0 + 2; /* [EOS] */
    for (int i = (int)keep + 2; i < T; i++) row[i] = V0 + 2;
    *len = (int32_t)keep + 2;
    if (truncated) *truncated = keep < n;
    cr_free(ids);
    return CR_OK;
}
