/*
 * schema.c - what the features and tasks are once parsed: the derived model
 * inputs (cat, multi and dense slots; embedding tables after sharing) and
 * the JSON form a checkpoint carries so new data is encoded exactly as at
 * training time (the encoders themselves are encode.c). Never reads data or config files.
 */
#include "config.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CR_SCHEMA_VERSION 1

static void free_derived(cr_schema *s) {
    free(s->cat_feat);
    free(s->multi_feat);
    free(s->dense_feat);
    free(s->table_rows);
    free(s->table_dim);
    free(s->table_name);
    s->cat_feat = s->multi_feat = s->dense_feat = NULL;
    s->table_rows = NULL;
    s->table_dim = NULL;
    s->table_name = NULL;
    s->n_cat = s->n_multi = s->n_dense = s->n_tables = 0;
}

void cr_schema_free(cr_schema *s) {
    if (!s) return;
    for (int i = 0; i < s->n_features && s->features; i++) cr_vocab_free(s->features[i].vocab);
    free(s->features);
    free(s->tasks);
    free_derived(s);
    s->features = NULL;
    s->tasks = NULL;
    s->n_features = s->n_tasks = 0;
}

/* ---- derived fields ----------------------------------------------------------------- */

static int embedded(const cr_feature *f) { return f->kind != CR_FEAT_NUMERIC; }

/* Checks that also guard schemas loaded from JSON (the config parser has
 * already reported the same problems with file positions). */
static cr_status validate(const cr_schema *s, cr_error *e) {
    if (s->n_features < 1) return cr_err(e, CR_ERR_CONFIG, "schema: no features");
    if (s->n_tasks < 1) return cr_err(e, CR_ERR_CONFIG, "schema: no tasks");
    for (int i = 0; i < s->n_features; i++) {
        const cr_feature *f = &s->features[i];
        if (!f->name[0] || !f->column[0])
            return cr_err(e, CR_ERR_CONFIG, "schema: features[%d] has no name or column", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->features[j].name, f->name))
                return cr_err(e, CR_ERR_CONFIG, "schema: feature name '%s' is used twice",
                              f->name);
        if ((unsigned)f->kind > CR_FEAT_BUCKET)
            return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' has an unknown type", f->name);
        if (embedded(f) && f->dim < 1)
            return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s': dim must be positive, got %d",
                          f->name, f->dim);
        if (f->kind == CR_FEAT_BUCKET) {
            if (f->n_boundaries < 1 || f->n_boundaries > CR_MAX_BOUNDARIES)
                return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s': expected 1 to %d "
                              "boundaries, got %d", f->name, CR_MAX_BOUNDARIES, f->n_boundaries);
            for (int b = 1; b < f->n_boundaries; b++)
                if (!(f->boundaries[b] > f->boundaries[b - 1]))
                    return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s': boundaries must "
                                  "be strictly increasing", f->name);
        }
        if (f->hash_buckets < 0 || f->hash_buckets >= INT32_MAX)
            return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s': hash_buckets out of range",
                          f->name);
        if (f->share[0]) {
            int j = 0;
            while (j < i && strcmp(s->features[j].name, f->share)) j++;
            if (j == i)
                return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' shares '%s', which is "
                              "not an earlier feature", f->name, f->share);
            if (s->features[j].kind != CR_FEAT_CATEGORICAL && s->features[j].kind != CR_FEAT_MULTI)
                return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' shares '%s', which is "
                              "not categorical or multi", f->name, f->share);
            if (f->kind != CR_FEAT_CATEGORICAL && f->kind != CR_FEAT_MULTI)
                return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' cannot share a table: "
                              "only categorical and multi features can", f->name);
            if (f->vocab)
                return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' shares '%s' but has a "
                              "vocabulary of its own", f->name, f->share);
        }
    }
    for (int i = 0; i < s->n_tasks; i++) {
        const cr_task *t = &s->tasks[i];
        if (!t->name[0] || !t->label[0])
            return cr_err(e, CR_ERR_CONFIG, "schema: tasks[%d] has no name or label", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->tasks[j].name, t->name))
                return cr_err(e, CR_ERR_CONFIG, "schema: task name '%s' is used twice", t->name);
        if (!(t->weight >= 0) || !isfinite(t->weight))
            return cr_err(e, CR_ERR_CONFIG, "schema: task '%s': weight must be >= 0", t->name);
    }
    return CR_OK;
}

cr_status cr_schema_finish(cr_schema *s, cr_error *e) {
    CR_TRY(validate(s, e));
    free_derived(s);
    size_t nf = (size_t)s->n_features;
    s->cat_feat = calloc(nf, sizeof *s->cat_feat);
    s->multi_feat = calloc(nf, sizeof *s->multi_feat);
    s->dense_feat = calloc(nf, sizeof *s->dense_feat);
    s->table_rows = calloc(nf, sizeof *s->table_rows);
    s->table_dim = calloc(nf, sizeof *s->table_dim);
    s->table_name = calloc(nf, sizeof *s->table_name);
    if (!s->cat_feat || !s->multi_feat || !s->dense_feat || !s->table_rows || !s->table_dim ||
        !s->table_name) {
        free_derived(s);
        return cr_err(e, CR_ERR_NOMEM, "out of memory finishing a schema of %zu features", nf);
    }
    for (int i = 0; i < s->n_features; i++) {
        cr_feature *f = &s->features[i];
        switch (f->kind) {
        case CR_FEAT_CATEGORICAL:
        case CR_FEAT_BUCKET: s->cat_feat[s->n_cat++] = i; break;
        case CR_FEAT_MULTI: s->multi_feat[s->n_multi++] = i; break;
        case CR_FEAT_NUMERIC: s->dense_feat[s->n_dense++] = i; f->table = -1; continue;
        }
        int o = cr_feature_owner(s, i);
        if (o != i) {
            /* Sharing means one table: same rows, width and id space. */
            const cr_feature *own = &s->features[o];
            f->table = own->table;
            f->rows = own->rows;
            f->dim = own->dim;
            f->hash_buckets = own->hash_buckets;
            continue;
        }
        if (f->kind == CR_FEAT_BUCKET) f->rows = f->n_boundaries + 2;
        else if (f->hash_buckets > 0) f->rows = 1 + f->hash_buckets;
        else if (f->vocab) f->rows = cr_vocab_size(f->vocab);
        /* else: a vocabulary not fitted yet keeps rows (0 until cr_dataset_load) */
        f->table = s->n_tables++;
        s->table_rows[f->table] = f->rows;
        s->table_dim[f->table] = f->dim;
        snprintf(s->table_name[f->table], sizeof s->table_name[0], "%s", f->name);
    }
    return CR_OK;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static cr_status feature_to_json(const cr_feature *f, cJSON *o, cr_error *e) {
    char sep[2] = {f->sep, 0};
    int ok = cJSON_AddStringToObject(o, "name", f->name) &&
             cJSON_AddStringToObject(o, "column", f->column) &&
             cJSON_AddStringToObject(o, "type", cr_feat_kind_names[f->kind]) &&
             cJSON_AddNumberToObject(o, "dim", f->dim) &&
             cJSON_AddNumberToObject(o, "hash_buckets", (double)f->hash_buckets) &&
             cJSON_AddNumberToObject(o, "min_count", (double)f->min_count) &&
             cJSON_AddNumberToObject(o, "max_vocab", (double)f->max_vocab) &&
             cJSON_AddStringToObject(o, "sep", sep) &&
             cJSON_AddStringToObject(o, "pooling", cr_pooling_names[f->pooling]) &&
             cJSON_AddStringToObject(o, "transform", cr_transform_names[f->transform]) &&
             cJSON_AddNumberToObject(o, "default", f->default_value) &&
             cJSON_AddStringToObject(o, "share", f->share) &&
             cJSON_AddNumberToObject(o, "rows", (double)f->rows) &&
             cJSON_AddNumberToObject(o, "mean", f->mean) &&
             cJSON_AddNumberToObject(o, "std", f->std) &&
             (f->lo > f->hi || (cJSON_AddNumberToObject(o, "min", f->lo) &&
                                cJSON_AddNumberToObject(o, "max", f->hi)));
    cJSON *b = ok ? cJSON_AddArrayToObject(o, "boundaries") : NULL;
    for (int i = 0; b && i < f->n_boundaries; i++) {
        cJSON *x = cJSON_CreateNumber(f->boundaries[i]);
        if (!x || !cJSON_AddItemToArray(b, x)) { cJSON_Delete(x); b = NULL; }
    }
    ok = ok && b;
    if (ok && f->vocab) {
        cJSON *v = cJSON_AddArrayToObject(o, "vocab");
        int64_t n = cr_vocab_size(f->vocab);
        for (int32_t id = 1; v && id < n; id++) {
            cJSON *x = cJSON_CreateString(cr_vocab_key(f->vocab, id));
            if (!x || !cJSON_AddItemToArray(v, x)) { cJSON_Delete(x); v = NULL; }
        }
        ok = v != NULL;
    }
    return ok ? CR_OK : cr_err(e, CR_ERR_NOMEM, "out of memory writing feature '%s' as JSON",
                               f->name);
}

cr_status cr_schema_to_json(const cr_schema *s, char **json, cr_error *e) {
    *json = NULL;
    cr_status st = CR_OK;
    cJSON *root = cJSON_CreateObject(), *fa = NULL, *ta = NULL;
    if (!root || !cJSON_AddStringToObject(root, "format", "crossrec-schema") ||
        !cJSON_AddNumberToObject(root, "version", CR_SCHEMA_VERSION) ||
        !(fa = cJSON_AddArrayToObject(root, "features")) ||
        !(ta = cJSON_AddArrayToObject(root, "tasks")))
        goto nomem;
    for (int i = 0; i < s->n_features; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(fa, o)) { cJSON_Delete(o); goto nomem; }
        if ((st = feature_to_json(&s->features[i], o, e))) goto fail;
    }
    for (int i = 0; i < s->n_tasks; i++) {
        const cr_task *t = &s->tasks[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(ta, o)) { cJSON_Delete(o); goto nomem; }
        if (!cJSON_AddStringToObject(o, "name", t->name) ||
            !cJSON_AddStringToObject(o, "type", cr_task_kind_names[t->kind]) ||
            !cJSON_AddStringToObject(o, "label", t->label) ||
            !cJSON_AddStringToObject(o, "mask", t->mask) ||
            !cJSON_AddNumberToObject(o, "weight", t->weight))
            goto nomem;
    }
    if (!(*json = cJSON_PrintUnformatted(root))) goto nomem;
    cJSON_Delete(root);
    return CR_OK;
nomem:
    st = cr_err(e, CR_ERR_NOMEM, "out of memory writing the schema as JSON");
fail:
    cJSON_Delete(root);
    return st;
}

/* Typed field readers for from_json: every message names the field. */
static cr_status jnum(const cJSON *o, const char *what, const char *key, double lo, double hi,
                      double *out, cr_error *e) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < lo ||
        x->valuedouble > hi)
        return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s.%s: expected a number in [%g, %g]",
                      what, key, lo, hi);
    *out = x->valuedouble;
    return CR_OK;
}

static cr_status jstr(const cJSON *o, const char *what, const char *key, char *out, size_t cap,
                      cr_error *e) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(x) || strlen(x->valuestring) >= cap)
        return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s.%s: expected a string of at most %zu "
                      "characters", what, key, cap - 1);
    memcpy(out, x->valuestring, strlen(x->valuestring) + 1);
    return CR_OK;
}

static cr_status jenum(const cJSON *o, const char *what, const char *key,
                       const char *const *names, int *out, cr_error *e) {
    char v[32];
    CR_TRY(jstr(o, what, key, v, sizeof v, e));
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], v)) {
            *out = i;
            return CR_OK;
        }
    return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s.%s: unknown value '%s'", what, key, v);
}

static cr_status feature_from_json(const cJSON *o, const char *what, cr_feature *f,
                                   cr_error *e) {
    double x;
    int k;
    char sep[4];
    if (!cJSON_IsObject(o)) return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s: expected an object", what);
    CR_TRY(jstr(o, what, "name", f->name, sizeof f->name, e));
    CR_TRY(jstr(o, what, "column", f->column, sizeof f->column, e));
    CR_TRY(jenum(o, what, "type", cr_feat_kind_names, &k, e));
    f->kind = (cr_feat_kind)k;
    CR_TRY(jnum(o, what, "dim", 0, 1 << 20, &x, e));
    f->dim = (int)x;
    CR_TRY(jnum(o, what, "hash_buckets", 0, INT32_MAX - 1, &x, e));
    f->hash_buckets = (int64_t)x;
    CR_TRY(jnum(o, what, "min_count", 0, 9.2e18, &x, e));
    f->min_count = (int64_t)x;
    CR_TRY(jnum(o, what, "max_vocab", 0, INT32_MAX, &x, e));
    f->max_vocab = (int64_t)x;
    CR_TRY(jstr(o, what, "sep", sep, sizeof sep, e));
    f->sep = sep[0];
    CR_TRY(jenum(o, what, "pooling", cr_pooling_names, &k, e));
    f->pooling = (cr_pooling)k;
    CR_TRY(jenum(o, what, "transform", cr_transform_names, &k, e));
    f->transform = (cr_transform)k;
    CR_TRY(jnum(o, what, "default", -INFINITY, INFINITY, &f->default_value, e));
    CR_TRY(jstr(o, what, "share", f->share, sizeof f->share, e));
    CR_TRY(jnum(o, what, "rows", 0, INT32_MAX, &x, e));
    f->rows = (int64_t)x;
    CR_TRY(jnum(o, what, "mean", -INFINITY, INFINITY, &f->mean, e));
    CR_TRY(jnum(o, what, "std", 0, INFINITY, &f->std, e));
    /* the training range: absent in models written before it was kept */
    f->lo = 1, f->hi = 0;
    if (cJSON_GetObjectItemCaseSensitive(o, "min")) {
        CR_TRY(jnum(o, what, "min", -INFINITY, INFINITY, &f->lo, e));
        CR_TRY(jnum(o, what, "max", f->lo, INFINITY, &f->hi, e));
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "boundaries");
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) > CR_MAX_BOUNDARIES)
        return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s.boundaries: expected an array of at "
                      "most %d numbers", what, CR_MAX_BOUNDARIES);
    const cJSON *it;
    f->n_boundaries = 0;
    cJSON_ArrayForEach(it, b) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s.boundaries[%d]: expected a number",
                          what, f->n_boundaries);
        f->boundaries[f->n_boundaries++] = it->valuedouble;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "vocab");
    if (v) {
        if (!cJSON_IsArray(v))
            return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s.vocab: expected an array", what);
        if (!(f->vocab = cr_vocab_new()))
            return cr_err(e, CR_ERR_NOMEM, "out of memory loading the vocabulary of %s", what);
        int i = 0;
        cJSON_ArrayForEach(it, v) {
            if (!cJSON_IsString(it))
                return cr_err(e, CR_ERR_FORMAT, "schema JSON: %s.vocab[%d]: expected a string",
                              what, i);
            cr_status st = cr_vocab_add(f->vocab, it->valuestring, strlen(it->valuestring), e);
            if (st) {
                cr_err_prefix(e, "schema JSON: %s.vocab[%d]", what, i);
                return st;
            }
            i++;
        }
        /* An empty saved vocabulary is still a fitted one (every value OOV). */
        if (i == 0) CR_TRY(cr_vocab_finalize(f->vocab, 1, 0, e));
    }
    return CR_OK;
}

cr_status cr_schema_from_json(cr_schema *s, const char *json, cr_error *e) {
    memset(s, 0, sizeof *s);
    cr_status st = CR_OK;
    char what[48];
    double x;
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        return cr_err(e, CR_ERR_FORMAT, "schema JSON: malformed near '%.40s'", at ? at : "");
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "crossrec-schema")) {
        st = cr_err(e, CR_ERR_FORMAT, "schema JSON: expected \"format\": \"crossrec-schema\"");
        goto fail;
    }
    if ((st = jnum(root, "schema", "version", 0, 1e9, &x, e))) goto fail;
    if ((int)x != CR_SCHEMA_VERSION) {
        st = cr_err(e, CR_ERR_FORMAT, "schema JSON: version %d is not supported (this build "
                    "reads version %d); re-train or upgrade crossrec", (int)x, CR_SCHEMA_VERSION);
        goto fail;
    }
    const cJSON *fa = cJSON_GetObjectItemCaseSensitive(root, "features");
    const cJSON *ta = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    if (!cJSON_IsArray(fa) || !cJSON_IsArray(ta) || cJSON_GetArraySize(fa) < 1 ||
        cJSON_GetArraySize(ta) < 1) {
        st = cr_err(e, CR_ERR_FORMAT, "schema JSON: expected non-empty arrays 'features' and "
                    "'tasks'");
        goto fail;
    }
    int nf = cJSON_GetArraySize(fa), nt = cJSON_GetArraySize(ta);
    s->features = calloc((size_t)nf, sizeof *s->features);
    s->tasks = calloc((size_t)nt, sizeof *s->tasks);
    if (!s->features || !s->tasks) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory loading a schema");
        goto fail;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, fa) {
        snprintf(what, sizeof what, "features[%d]", s->n_features);
        /* counted before parsing so cr_schema_free releases a half-read vocabulary */
        cr_feature *f = &s->features[s->n_features++];
        if ((st = feature_from_json(it, what, f, e))) goto fail;
    }
    cJSON_ArrayForEach(it, ta) {
        snprintf(what, sizeof what, "tasks[%d]", s->n_tasks);
        cr_task *t = &s->tasks[s->n_tasks++];
        int k;
        if (!cJSON_IsObject(it)) {
            st = cr_err(e, CR_ERR_FORMAT, "schema JSON: %s: expected an object", what);
            goto fail;
        }
        if ((st = jstr(it, what, "name", t->name, sizeof t->name, e)) ||
            (st = jenum(it, what, "type", cr_task_kind_names, &k, e)) ||
            (st = jstr(it, what, "label", t->label, sizeof t->label, e)) ||
            (st = jstr(it, what, "mask", t->mask, sizeof t->mask, e)) ||
            (st = jnum(it, what, "weight", 0, INFINITY, &x, e)))
            goto fail;
        t->kind = (cr_task_kind)k;
        t->weight = (float)x;
    }
    if ((st = cr_schema_finish(s, e))) goto fail;
    cJSON_Delete(root);
    return CR_OK;
fail:
    cJSON_Delete(root);
    cr_schema_free(s);
    return st;
}
