/*
 * encode.c - the feature encoder: one value of one feature becomes what the
 * network reads. An id looks its text up in the vocabulary of the feature
 * that owns the table (or hashes it), or while training data is read
 * interns it into a first-appearance dictionary; a bucket finds the first
 * boundary above its number; a bag is ids of a text split at the feature's
 * separator or of a list item by item; a number takes its default when
 * missing, log1p when the transform says so, and at serving a range check.
 * Text, numbers and lists all come here: the dataset loader, the teacher's
 * labelling and the serving encoder call these functions and never repeat
 * a rule. Errors say what was expected and what came; callers add where.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the rules on plain values ------------------------------------------------------ */

int cr_feature_owner(const cr_schema *s, int feature) {
    CR_ASSERT(feature >= 0 && feature < s->n_features);
    /* share always names an earlier feature (checked by cr_schema_finish),
     * so this walk ends. */
    for (int hops = 0; s->features[feature].share[0]; hops++) {
        CR_ASSERT(hops <= s->n_features);
        int j = 0;
        while (j < feature && strcmp(s->features[j].name, s->features[feature].share)) j++;
        CR_ASSERT(j < feature);
        feature = j;
    }
    return feature;
}

int32_t cr_feature_id(const cr_feature *owner, const char *s, size_t len) {
    if (len == 0) return 0;
    if (owner->hash_buckets > 0)
        return (int32_t)(1 + cr_hash64(s, len) % (uint64_t)owner->hash_buckets);
    return owner->vocab ? cr_vocab_lookup(owner->vocab, s, len) : 0;
}

int32_t cr_feature_bucket(const cr_feature *f, double x) {
    /* upper bound: the first boundary strictly greater than x */
    int lo = 0, hi = f->n_boundaries;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (f->boundaries[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return 1 + lo;
}

int cr_feature_takes_log(const cr_feature *f) {
    return f->transform == CR_TX_LOG1P || f->transform == CR_TX_LOG1P_ZSCORE;
}

float cr_feature_zscore(const cr_feature *f, double v) {
    int z = f->transform == CR_TX_ZSCORE || f->transform == CR_TX_LOG1P_ZSCORE;
    double mean = z ? f->mean : 0, sd = z && f->std > 0 ? f->std : 1.0;
    return (float)((v - mean) / sd);
}

float cr_feature_transform(const cr_feature *f, double x) {
    return cr_feature_zscore(f, cr_feature_takes_log(f) ? log1p(x) : x);
}

int cr_feature_value_ok(const cr_feature *f, double x, char *why, size_t cap) {
    if (cr_feature_takes_log(f) && !(x >= -1)) {
        snprintf(why, cap, "expected a number >= -1 (the transform takes log1p)");
        return 0;
    }
    double v = cr_feature_takes_log(f) ? log1p(x) : x;
    if (f->lo <= f->hi) {
        double w = f->hi - f->lo, m = fmax(fabs(f->lo), fabs(f->hi));
        w = fmax(w, fmax(m, 1.0)); /* a constant column keeps some room */
        double lo = f->lo - CR_FEATURE_RANGE_WIDTHS * w, hi = f->hi + CR_FEATURE_RANGE_WIDTHS * w;
        if (!(v >= lo && v <= hi)) {
            double a = cr_feature_takes_log(f) ? expm1(lo) : lo;
            double b = cr_feature_takes_log(f) ? expm1(hi) : hi;
            snprintf(why, cap, "expected a number from %.6g to %.6g (the training values span %.6g to %.6g%s)",
                     a < -1 && cr_feature_takes_log(f) ? -1.0 : a, b,
                     cr_feature_takes_log(f) ? expm1(f->lo) : f->lo,
                     cr_feature_takes_log(f) ? expm1(f->hi) : f->hi,
                     cr_feature_takes_log(f) ? "; the range is judged after log1p" : "");
            return 0;
        }
    }
    if (!isfinite(cr_feature_transform(f, x))) {
        snprintf(why, cap, "expected a number whose transformed value fits a float");
        return 0;
    }
    return 1;
}


/* ---- values -------------------------------------------------------------------------- */

static void value_clear(cr_value *v) {
    v->s = NULL;
    v->len = 0;
    v->x = NAN;
    v->k = 0;
    v->is_i64 = 0;
    v->items = NULL;
    v->n = 0;
    v->is_list = 0;
    v->missing = 0;
    v->fail = 0;
    v->why[0] = 0;
}

void cr_value_text(cr_value *v, const char *s, size_t len) {
    value_clear(v);
    v->s = s ? s : "";
    v->len = s ? len : 0;
    v->missing = v->len == 0;
}

void cr_value_number(cr_value *v, double x) {
    value_clear(v);
    v->x = x;
    v->missing = isnan(x);
}

void cr_value_int(cr_value *v, int64_t k) {
    value_clear(v);
    v->k = k;
    v->x = (double)k;
    v->is_i64 = 1;
}

void cr_value_list(cr_value *v, const char *const *items, int64_t n) {
    value_clear(v);
    v->items = items;
    v->n = n;
    v->is_list = 1;
    v->missing = n == 0;
}

void cr_encoder_init(cr_encoder *c, const cr_schema *s, int fi, cr_vocab *fit, int check_range) {
    c->f = &s->features[fi];
    c->own = &s->features[cr_feature_owner(s, fi)];
    c->fit = fit;
    c->check_range = check_range;
}

/* "what, got 'text'" (or the number, or the list) in e; what also in v->why. */
static cr_status bad(cr_error *e, cr_value *v, int fail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cr_status bad(cr_error *e, cr_value *v, int fail, const char *fmt, ...) {
    char got[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
    v->fail = fail;
    if (v->is_list) snprintf(got, sizeof got, "a list of %lld values", (long long)v->n);
    else if (v->s) snprintf(got, sizeof got, "'%.60s'", v->s);
    else snprintf(got, sizeof got, "the number %g", v->x);
    return cr_err(e, CR_ERR_PARSE, "%s, got %s", v->why, got);
}

/* The value as text: an integral number as its decimal digits, as the CSV
 * reader sees an id. */
static cr_status text_of(cr_value *v, cr_error *e) {
    if (v->s) return CR_OK;
    if (v->is_i64) {
        snprintf(v->buf, sizeof v->buf, "%lld", (long long)v->k);
    } else {
        if (!isfinite(v->x) || v->x != floor(v->x) || fabs(v->x) > 9.0e15)
            return bad(e, v, CR_VALUE_BAD, "expected an id");
        snprintf(v->buf, sizeof v->buf, "%.0f", v->x);
    }
    v->s = v->buf;
    v->len = strlen(v->buf);
    return CR_OK;
}

/* The value as a number (v->x), reading text as the CSV reader does;
 * blank text is missing. */
static cr_status number_of(cr_value *v, cr_error *e) {
    if (!v->s) {
        if (!isfinite(v->x)) return bad(e, v, CR_VALUE_BAD, "expected a finite number");
        return CR_OK;
    }
    const char *why;
    int empty;
    if (!cr_parse_number(v->s, v->len, &v->x, &empty, &why))
        return bad(e, v, CR_VALUE_BAD, "%s", why);
    if (empty) {
        v->missing = 1;
        v->x = NAN;
    }
    return CR_OK;
}

static cr_status one_value(cr_value *v, cr_error *e) {
    return v->is_list ? bad(e, v, CR_VALUE_BAD, "expected one value, not a list") : CR_OK;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static cr_status id_of(const cr_encoder *c, const char *s, size_t len, int32_t *id, cr_error *e) {
    if (!c->fit || len == 0) {
        *id = cr_feature_id(c->own, s, len);
        return CR_OK;
    }
    int32_t k;
    CR_TRY(cr_vocab_intern(c->fit, s, len, 1, &k, e));
    *id = k + 1;
    return CR_OK;
}

cr_status cr_encode_id(const cr_encoder *c, cr_value *v, int32_t *id, cr_error *e) {
    *id = 0;
    CR_TRY(one_value(v, e));
    if (v->missing) return CR_OK;
    CR_TRY(text_of(v, e));
    return id_of(c, v->s, v->len, id, e);
}

cr_status cr_encode_bucket(const cr_encoder *c, cr_value *v, int32_t *id, cr_error *e) {
    *id = 0;
    CR_TRY(one_value(v, e));
    if (v->missing) return CR_OK;
    CR_TRY(number_of(v, e));
    if (!v->missing) *id = cr_feature_bucket(c->f, v->x);
    return CR_OK;
}

static cr_status bag_push(const cr_encoder *c, const char *s, size_t len, int32_t **ids,
                          size_t *cap, int64_t *n, cr_error *e) {
    CR_TRY(cr_grow((void **)ids, cap, (size_t)*n + 1, sizeof **ids, e));
    CR_TRY(id_of(c, s, len, &(*ids)[*n], e));
    (*n)++;
    return CR_OK;
}

cr_status cr_encode_bag(const cr_encoder *c, cr_value *v, int32_t **ids, size_t *cap, int64_t *n,
                        cr_error *e) {
    const char sep = c->f->sep;
    if (v->missing && !(v->is_list && v->n < 0)) return CR_OK;
    if (v->is_list) { /* item by item: an item is one value, never split */
        if (v->n < 0 || !v->items)
            return bad(e, v, CR_VALUE_BAD, "expected a list with its items (n >= 0, items not NULL)");
        for (int64_t j = 0; j < v->n; j++) {
            const char *s = v->items[j] ? v->items[j] : "";
            size_t len = strlen(s);
            if (memchr(s, sep, len))
                return bad(e, v, CR_VALUE_BAD, "item %lld ('%.60s') holds the separator '%c'; "
                           "the items of a list are single values", (long long)j, s, sep);
            if (len) CR_TRY(bag_push(c, s, len, ids, cap, n, e)); /* "" is skipped, as "a||b" */
        }
        return CR_OK;
    }
    CR_TRY(text_of(v, e));
    for (size_t a = 0; a < v->len;) {
        size_t b = a;
        while (b < v->len && v->s[b] != sep) b++;
        if (b > a) CR_TRY(bag_push(c, v->s + a, b - a, ids, cap, n, e)); /* "a||b": skipped */
        a = b + 1;
    }
    return CR_OK;
}

cr_status cr_encode_number(const cr_encoder *c, cr_value *v, double *out, cr_error *e) {
    const cr_feature *f = c->f;
    CR_TRY(one_value(v, e));
    if (!v->missing) CR_TRY(number_of(v, e));
    double x = v->missing ? f->default_value : v->x;
    if (cr_feature_takes_log(f) && !(x >= -1))
        return bad(e, v, CR_VALUE_LOG1P, "expected a number >= -1 (the transform takes log1p)");
    char why[200];
    if (c->check_range && !cr_feature_value_ok(f, x, why, sizeof why))
        return bad(e, v, CR_VALUE_RANGE, "%s", why);
    *out = cr_feature_takes_log(f) ? log1p(x) : x;
    return CR_OK;
}
