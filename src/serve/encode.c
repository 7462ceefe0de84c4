/*
 * encode.c - a loaded model's inputs from typed columns: each cell (text, a
 * number, or a list of single values for a bag) goes once to the feature
 * encoder of the data layer (data/encode.c), the same one that read the
 * training data, and its result lands in the batch: an id, a bucket, a bag
 * or a transformed number, with the range check of serving on. Rows
 * (cr_model_score_columns), requests given as text and requests given as
 * typed columns all come through here, so a number is never printed to text
 * and read back and a list is never joined and split again. Errors name
 * the row, candidate or context and the column, then what the encoder
 * expected and what came.
 */
#include "serve_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Row r of column c as a value. */
static void cr_cell_at(const cr_column *c, int64_t r, cr_value *v) {
    int64_t at = r * (c->stride ? c->stride : 1);
    switch (c->type) {
    case CR_COL_TEXT: {
        const char *s = ((const char *const *)c->data)[at];
        cr_value_text(v, s, s ? strlen(s) : 0);
        return;
    }
    case CR_COL_F64: cr_value_number(v, ((const double *)c->data)[at]); return;
    case CR_COL_F32: cr_value_number(v, ((const float *)c->data)[at]); return;
    case CR_COL_I64: cr_value_int(v, ((const int64_t *)c->data)[at]); return;
    case CR_COL_I32: cr_value_number(v, ((const int32_t *)c->data)[at]); return;
    case CR_COL_TEXT_LIST: {
        const cr_text_list *l = &((const cr_text_list *)c->data)[at];
        cr_value_list(v, l->items, l->n);
        return;
    }
    }
}

/* "row 12: column 'x': ", "candidates[12]: ..." or "context: ...": where the
 * value the encoder refused came from. */
static cr_status cr_enc_where(cr_error *e, cr_enc_at at, int64_t r, const cr_feature *f) {
    if (at == CR_ENC_CONTEXT) return cr_err_prefix(e, "context: column '%s'", f->column);
    if (at == CR_ENC_CANDIDATE)
        return cr_err_prefix(e, "candidates[%lld]: column '%s'", (long long)r, f->column);
    return cr_err_prefix(e, "row %lld: column '%s'", (long long)r, f->column);
}

cr_status cr_encode_input(const cr_model *m, int fi, const cr_column *col, int64_t r0, int B,
                          cr_enc_at at, cr_batch *b, int64_t *off, int32_t **ids, size_t *cap,
                          int64_t *missing, cr_error *e) {
    const cr_schema *s = &m->s;
    const cr_feature *f = &s->features[fi];
    const int slot = m->feat_slot[fi];
    const int q = slot - s->n_cat, d = slot - s->n_cat - s->n_multi;
    cr_encoder c;
    cr_encoder_init(&c, s, fi, NULL, 1);
    cr_value v;
    int64_t n = 0;
    if (off) off[0] = 0;
    for (int i = 0; i < B; i++) {
        const int64_t r = r0 + i;
        cr_cell_at(col, r, &v);
        if (v.missing && missing) (*missing)++;
        cr_status st;
        if (slot < s->n_cat)
            st = f->kind == CR_FEAT_BUCKET
                     ? cr_encode_bucket(&c, &v, &b->cat[(size_t)i * (size_t)s->n_cat + (size_t)slot], e)
                     : cr_encode_id(&c, &v, &b->cat[(size_t)i * (size_t)s->n_cat + (size_t)slot], e);
        else if (q < s->n_multi) {
            st = cr_encode_bag(&c, &v, &ids[q], &cap[q], &n, e);
            off[i + 1] = n;
        } else {
            double x = 0;
            st = cr_encode_number(&c, &v, &x, e);
            if (!st) b->dense[(size_t)i * (size_t)s->n_dense + (size_t)d] = cr_feature_zscore(f, x);
        }
        if (st == CR_ERR_PARSE && v.fail) return cr_enc_where(e, at, r, f);
        if (st) return st;
    }
    if (slot >= s->n_cat && q < s->n_multi) {
        b->bag_off[q] = off;
        b->bag_ids[q] = ids[q];
    }
    return CR_OK;
}

cr_status cr_check_column(const cr_model *m, const char *what, int i, int64_t n,
                          const cr_column *c, cr_error *e) {
    const char *name = m->s.features[i].column;
    if ((unsigned)c->type > CR_COL_TEXT_LIST)
        return cr_err(e, CR_ERR_ARG, "%s[%d] ('%s'): unknown type %d", what, i, name, (int)c->type);
    if (n && !c->data) return cr_err(e, CR_ERR_ARG, "%s[%d] ('%s'): data is NULL", what, i, name);
    if (c->stride < 0) return cr_err(e, CR_ERR_ARG, "%s[%d] ('%s'): negative stride", what, i, name);
    return CR_OK;
}
