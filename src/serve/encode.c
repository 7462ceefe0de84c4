/*
 * encode.c - the one encoder of a loaded model's inputs: a value from a
 * column of any type (text, or a number) becomes what the network reads.
 * An id input looks the value up in its feature's vocabulary (an integral
 * number is read as its decimal digits, as ids read from a CSV are); a
 * bucketized input finds its bucket; a multi-valent input splits text at
 * the feature's separator into a bag of ids; a numeric input takes its
 * default when missing, is checked against the range seen in training and
 * transformed. Rows (cr_model_score_columns), requests given as text and
 * requests given as typed columns all come through here, so a number is
 * never printed to text and read back. Errors name the row, candidate or
 * context, the column, what was expected and what came.
 */
#include "serve_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One input value of one row: text (NULL or "" = missing) or a number
 * (NaN = missing). */
typedef struct cr_cell {
    const char *s;
    size_t      len;
    double      x;
    int64_t     k;       /* an int64 column's value, exact past 2^53 */
    int         is_i64;
    int         missing;
    char        buf[32]; /* an integral number as its digits */
} cr_cell;

static void cr_cell_at(const cr_column *c, int64_t r, cr_cell *v) {
    int64_t at = r * (c->stride ? c->stride : 1);
    v->s = NULL;
    v->missing = 0;
    v->is_i64 = 0;
    switch (c->type) {
    case CR_COL_TEXT: {
        const char *s = ((const char *const *)c->data)[at];
        v->s = s ? s : "";
        v->len = strlen(v->s);
        v->missing = !v->len;
        return;
    }
    case CR_COL_F64: v->x = ((const double *)c->data)[at]; break;
    case CR_COL_F32: v->x = ((const float *)c->data)[at]; break;
    case CR_COL_I64:
        v->k = ((const int64_t *)c->data)[at];
        v->x = (double)v->k;
        v->is_i64 = 1;
        return;
    case CR_COL_I32: v->x = ((const int32_t *)c->data)[at]; break;
    }
    v->missing = isnan(v->x);
}

/* "row 12", "candidates[12]" or "context": where a value came from. */
static cr_status cr_enc_bad(cr_error *e, cr_enc_at at, int64_t r, const cr_feature *f,
                            const char *what, const cr_cell *v) {
    char where[48], got[96];
    if (at == CR_ENC_CONTEXT) snprintf(where, sizeof where, "context");
    else if (at == CR_ENC_CANDIDATE) snprintf(where, sizeof where, "candidates[%lld]", (long long)r);
    else snprintf(where, sizeof where, "row %lld", (long long)r);
    if (v->s) snprintf(got, sizeof got, "'%.60s'", v->s);
    else snprintf(got, sizeof got, "the number %g", v->x);
    return cr_err(e, CR_ERR_PARSE, "%s: column '%s': %s, got %s", where, f->column, what, got);
}

/* The value as text, for a vocabulary lookup. */
static cr_status cr_cell_text(cr_cell *v, cr_enc_at at, int64_t r, const cr_feature *f,
                              cr_error *e) {
    if (v->s) return CR_OK;
    if (v->is_i64) {
        snprintf(v->buf, sizeof v->buf, "%lld", (long long)v->k);
        v->s = v->buf;
        v->len = strlen(v->buf);
        return CR_OK;
    }
    if (!isfinite(v->x) || v->x != floor(v->x) || fabs(v->x) > 9.0e15)
        return cr_enc_bad(e, at, r, f, "expected an id", v);
    snprintf(v->buf, sizeof v->buf, "%.0f", v->x);
    v->s = v->buf;
    v->len = strlen(v->buf);
    return CR_OK;
}

/* The value as a number, parsing text. */
static cr_status cr_cell_number(cr_cell *v, cr_enc_at at, int64_t r, const cr_feature *f,
                                cr_error *e) {
    if (!v->s) {
        if (!isfinite(v->x)) return cr_enc_bad(e, at, r, f, "expected a finite number", v);
        return CR_OK;
    }
    char *end;
    errno = 0;
    v->x = strtod(v->s, &end);
    if (errno || end == v->s || *end || !isfinite(v->x))
        return cr_enc_bad(e, at, r, f, "expected a finite number", v);
    return CR_OK;
}

cr_status cr_encode_input(const cr_model *m, int fi, const cr_column *col, int64_t r0, int B,
                          cr_enc_at at, cr_batch *b, int64_t *off, int32_t **ids, size_t *cap,
                          int64_t *missing, cr_error *e) {
    const cr_schema *s = &m->s;
    const cr_feature *f = &s->features[fi];
    const cr_feature *own = &s->features[cr_feature_owner(s, fi)];
    int slot = m->feat_slot[fi];
    cr_cell v;
    if (slot < s->n_cat) {
        for (int i = 0; i < B; i++) {
            int64_t r = r0 + i;
            cr_cell_at(col, r, &v);
            int32_t id = 0;
            if (v.missing) {
                if (missing) (*missing)++;
                if (f->kind != CR_FEAT_BUCKET) id = cr_feature_id(own, "", 0);
            } else if (f->kind == CR_FEAT_BUCKET) {
                CR_TRY(cr_cell_number(&v, at, r, f, e));
                id = cr_feature_bucket(f, v.x);
            } else {
                CR_TRY(cr_cell_text(&v, at, r, f, e));
                id = cr_feature_id(own, v.s, v.len);
            }
            b->cat[(size_t)i * (size_t)s->n_cat + (size_t)slot] = id;
        }
        return CR_OK;
    }
    if (slot < s->n_cat + s->n_multi) {
        int q = slot - s->n_cat;
        size_t n = 0;
        off[0] = 0;
        for (int i = 0; i < B; i++) {
            int64_t r = r0 + i;
            cr_cell_at(col, r, &v);
            const char *p = "";
            if (v.missing) {
                if (missing) (*missing)++;
            } else {
                CR_TRY(cr_cell_text(&v, at, r, f, e));
                p = v.s;
            }
            while (*p) { /* empty tokens ("a||b") are skipped, as in training */
                const char *t = strchr(p, f->sep);
                size_t len = t ? (size_t)(t - p) : strlen(p);
                if (len) {
                    CR_TRY(cr_grow((void **)&ids[q], &cap[q], n + 1, sizeof(int32_t), e));
                    ids[q][n++] = cr_feature_id(own, p, len);
                }
                p += len + (t ? 1 : 0);
            }
            off[i + 1] = (int64_t)n;
        }
        b->bag_off[q] = off;
        b->bag_ids[q] = ids[q];
        return CR_OK;
    }
    int d = slot - s->n_cat - s->n_multi;
    for (int i = 0; i < B; i++) {
        int64_t r = r0 + i;
        cr_cell_at(col, r, &v);
        double x = f->default_value;
        if (v.missing) {
            if (missing) (*missing)++;
        } else {
            CR_TRY(cr_cell_number(&v, at, r, f, e));
            x = v.x;
        }
        char why[200];
        if (!cr_feature_value_ok(f, x, why, sizeof why)) return cr_enc_bad(e, at, r, f, why, &v);
        b->dense[(size_t)i * (size_t)s->n_dense + (size_t)d] = cr_feature_transform(f, x);
    }
    return CR_OK;
}

cr_status cr_check_column(const cr_model *m, const char *what, int i, int64_t n,
                          const cr_column *c, cr_error *e) {
    const char *name = m->s.features[i].column;
    if ((unsigned)c->type > CR_COL_I32)
        return cr_err(e, CR_ERR_ARG, "%s[%d] ('%s'): unknown type %d", what, i, name, (int)c->type);
    if (n && !c->data) return cr_err(e, CR_ERR_ARG, "%s[%d] ('%s'): data is NULL", what, i, name);
    if (c->stride < 0) return cr_err(e, CR_ERR_ARG, "%s[%d] ('%s'): negative stride", what, i, name);
    return CR_OK;
}
