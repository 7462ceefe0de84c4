/*
 * item_text.c - item descriptions from MovieLens' movies.csv and
 * movies-extra.tsv, joined to the CF item table by movieId, and their token
 * rows for the item encoder. The text is built from fields only (no
 * ratings, no tags), so a held-out item's text says nothing about the
 * interactions the encoder was trained on.
 */
#include "item_text.h"

#include "../data/data.h"

#include <stdlib.h>
#include <string.h>

typedef struct { int64_t raw; int32_t idx; } cr_it_key;

static int cr_it_cmp(const void *a, const void *b) {
    int64_t x = ((const cr_it_key *)a)->raw, y = ((const cr_it_key *)b)->raw;
    return x < y ? -1 : x > y;
}

static int32_t cr_it_find(const cr_it_key *k, int32_t n, int64_t raw) {
    cr_it_key q = {raw, 0};
    const cr_it_key *h = bsearch(&q, k, (size_t)n, sizeof *k, cr_it_cmp);
    return h ? h->idx : -1;
}

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

static cr_status cr_it_col(cr_csv *c, const char *name, int *col, cr_error *e) {
    *col = cr_csv_find(c, name);
    if (*col < 0)
        return cr_err(e, CR_ERR_PARSE, "%s: no column '%s'", cr_csv_path(c), name);
    return CR_OK;
}

static cr_status cr_it_movies(cr_item_texts *t, const char *path, const cr_it_key *k,
                              cr_error *e) {
    cr_csv *c = NULL;
    CR_TRY(cr_csv_open(&c, path, ',', e));
    int ci, ct, cg;
    cr_status s;
    if ((s = cr_it_col(c, "movieId", &ci, e)) || (s = cr_it_col(c, "title", &ct, e)) ||
        (s = cr_it_col(c, "genres", &cg, e)))
        goto done;
    for (;;) {
        int finished;
        int64_t id;
        if ((s = cr_csv_next(c, &finished, e)) != CR_OK || finished) break;
        if ((s = cr_csv_int64(c, ci, &id, e)) != CR_OK) break;
        int32_t idx = cr_it_find(k, t->n, id);
        if (idx < 0 || t->text[idx]) continue; /* not a CF item (never rated), or repeated */
        size_t tl, gl;
        const char *title = cr_csv_field(c, ct, &tl), *g = cr_csv_field(c, cg, &gl);
        if ((s = cr_it_append(&t->text[idx], title, tl, e)) != CR_OK) break;
        if (gl && strcmp(g, "(no genres listed)")) {
            if ((s = cr_it_append(&t->text[idx], ". ", 2, e)) != CR_OK) break;
            for (size_t a = 0; a < gl && s == CR_OK;) {
                size_t b = a;
                while (b < gl && g[b] != '|') b++;
                if (a) s = cr_it_append(&t->text[idx], ", ", 2, e);
                if (s == CR_OK) s = cr_it_append(&t->text[idx], g + a, b - a, e);
                a = b + 1;
            }
            if (s != CR_OK) break;
        }
        if ((s = cr_it_append(&t->text[idx], ".", 1, e)) != CR_OK) break;
    }
done:
    cr_csv_close(c);
    return s;
}

static cr_status cr_it_extra(cr_item_texts *t, const char *path, const cr_it_key *k,
                             cr_error *e) {
    if (!cr_file_exists(path)) return CR_OK;
    cr_csv *c = NULL;
    CR_TRY(cr_csv_open(&c, path, '\t', e));
    int ci, cd, cm;
    cr_status s;
    if ((s = cr_it_col(c, "movieId", &ci, e)) || (s = cr_it_col(c, "director", &cd, e)) ||
        (s = cr_it_col(c, "mpaa_rating", &cm, e)))
        goto done;
    for (;;) {
        int finished;
        int64_t id;
        if ((s = cr_csv_next(c, &finished, e)) != CR_OK || finished) break;
        if ((s = cr_csv_int64(c, ci, &id, e)) != CR_OK) break;
        int32_t idx = cr_it_find(k, t->n, id);
        if (idx < 0 || !t->text[idx]) continue;
        size_t dl, ml;
        const char *d = cr_csv_field(c, cd, &dl), *m = cr_csv_field(c, cm, &ml);
        if (dl && ((s = cr_it_append(&t->text[idx], " Directed by ", 13, e)) != CR_OK ||
                   (s = cr_it_append(&t->text[idx], d, dl, e)) != CR_OK ||
                   (s = cr_it_append(&t->text[idx], ".", 1, e)) != CR_OK))
            break;
        if (ml && ((s = cr_it_append(&t->text[idx], " Rated ", 7, e)) != CR_OK ||
                   (s = cr_it_append(&t->text[idx], m, ml, e)) != CR_OK ||
                   (s = cr_it_append(&t->text[idx], ".", 1, e)) != CR_OK))
            break;
    }
done:
    cr_csv_close(c);
    return s;
}

cr_status cr_item_texts_load(cr_item_texts *t, const char *dir, const int64_t *raw_item,
                             int32_t n, cr_error *e) {
    memset(t, 0, sizeof *t);
    if (n < 1) return cr_err(e, CR_ERR_ARG, "item texts: no items");
    char path[4096];
    cr_it_key *k = cr_alloc(sizeof *k * (size_t)n);
    t->text = cr_alloc(sizeof *t->text * (size_t)n);
    if (!k || !t->text) {
        cr_free(k);
        cr_item_texts_free(t);
        return cr_err(e, CR_ERR_NOMEM, "item texts: out of memory for %d items", n);
    }
    t->n = n;
    for (int32_t i = 0; i < n; i++) k[i] = (cr_it_key){raw_item[i], i};
    qsort(k, (size_t)n, sizeof *k, cr_it_cmp);
    snprintf(path, sizeof path, "%s/movies.csv", dir);
    cr_status s = cr_it_movies(t, path, k, e);
    if (s == CR_OK) {
        snprintf(path, sizeof path, "%s/movies-extra.tsv", dir);
        s = cr_it_extra(t, path, k, e);
    }
    cr_free(k);
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
