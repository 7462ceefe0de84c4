/*
 * onnx_inputs.c - what an ONNX graph exported by crossrec takes and how a
 * serving stack produces it: the input names, the vocabulary document
 * (model.vocab.json and the graph's metadata) and the encoding of CSV rows
 * into those inputs through the dataset loader, the one encoder training
 * and scoring use. It writes no graph and encodes no value itself.
 */
#include "export_onnx.h"

#include "checkpoint.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cr_onnx_input_names(const cr_feature *f, char name[2][80]) {
    if (f->kind == CR_FEAT_MULTI) {
        snprintf(name[0], 80, "%s.ids", f->name);
        snprintf(name[1], 80, "%s.mask", f->name);
        return 2;
    }
    snprintf(name[0], 80, "%s", f->name);
    name[1][0] = 0;
    return 1;
}

/* ---- the vocabulary document -------------------------------------------------------- */

static const char *const missing_rule[] = {
    [CR_FEAT_CATEGORICAL] = "an empty value, or one not in the vocabulary, is id 0",
    [CR_FEAT_MULTI] = ("tokens are split at sep, empty tokens are dropped, each token "
                      "encodes as a categorical value; an empty bag has mask all 0"),
    [CR_FEAT_NUMERIC] = "send NaN for an empty value: the graph replaces it by default",
    [CR_FEAT_BUCKET] = "send NaN for an empty value: the graph maps it to id 0",
};

/* One feature's entry. The encoding (vocab, hash or shared) is its table
 * owner's: a shared feature names the owner instead of repeating the map. */
static int feature_json(const cr_schema *s, int i, cJSON *o) {
    const cr_feature *f = &s->features[i];
    const cr_feature *own = &s->features[cr_feature_owner(s, i)];
    char in[2][80];
    cr_onnx_input_names(f, in);
    int ok = cJSON_AddStringToObject(o, "name", f->name) &&
             cJSON_AddStringToObject(o, "column", f->column) &&
             cJSON_AddStringToObject(o, "type", cr_feat_kind_names[f->kind]) &&
             cJSON_AddStringToObject(o, "missing", missing_rule[f->kind]);
    cJSON *ins = ok ? cJSON_AddObjectToObject(o, "inputs") : NULL;
    ok = ins != NULL;
    switch (f->kind) {
    case CR_FEAT_CATEGORICAL:
        ok = ok && cJSON_AddStringToObject(ins, "ids", in[0]);
        break;
    case CR_FEAT_MULTI: {
        char sep[2] = {f->sep, 0};
        ok = ok && cJSON_AddStringToObject(ins, "ids", in[0]) &&
             cJSON_AddStringToObject(ins, "mask", in[1]) &&
             cJSON_AddStringToObject(o, "sep", sep) &&
             cJSON_AddStringToObject(o, "pooling", cr_pooling_names[f->pooling]);
        break;
    }
    case CR_FEAT_BUCKET: {
        ok = ok && cJSON_AddStringToObject(ins, "value", in[0]);
        cJSON *bd = ok ? cJSON_CreateDoubleArray(f->boundaries, f->n_boundaries) : NULL;
        ok = ok && bd && cJSON_AddItemToObject(o, "boundaries", bd) &&
             cJSON_AddStringToObject(o, "id", "1 + the number of boundaries <= value");
        break;
    }
    case CR_FEAT_NUMERIC:
        ok = ok && cJSON_AddStringToObject(ins, "value", in[0]) &&
             cJSON_AddNumberToObject(o, "default", f->default_value) &&
             cJSON_AddStringToObject(o, "transform", cr_transform_names[f->transform]) &&
             cJSON_AddNumberToObject(o, "mean", f->mean) &&
             cJSON_AddNumberToObject(o, "std", f->std);
        return ok;
    }
    if (!ok) return 0;
    if (f->kind == CR_FEAT_BUCKET) return cJSON_AddNumberToObject(o, "rows", (double)f->rows) != NULL;
    ok = cJSON_AddNumberToObject(o, "rows", (double)own->rows) != NULL;
    if (own != f) return ok && cJSON_AddStringToObject(o, "vocab_of", own->name);
    if (own->hash_buckets > 0) {
        cJSON *h = cJSON_AddObjectToObject(o, "hash");
        return ok && h && cJSON_AddStringToObject(h, "function", "fnv1a64") &&
               cJSON_AddNumberToObject(h, "buckets", (double)own->hash_buckets) &&
               cJSON_AddStringToObject(h, "id", "1 + fnv1a64(UTF-8 bytes) % buckets");
    }
    cJSON *v = ok ? cJSON_AddObjectToObject(o, "vocab") : NULL;
    int64_t n = own->vocab ? cr_vocab_size(own->vocab) : 1;
    for (int32_t id = 1; v && id < n; id++)
        if (!cJSON_AddNumberToObject(v, cr_vocab_key(own->vocab, id), id)) v = NULL;
    return v != NULL;
}

cr_status cr_onnx_vocab_json(const cr_ranker *m, const cr_schema *s, char **json, cr_error *e) {
    *json = NULL;
    cJSON *root = cJSON_CreateObject(), *fa = NULL, *oa = NULL;
    int ok = root && cJSON_AddStringToObject(root, "format", CR_ONNX_VOCAB_FORMAT) &&
             cJSON_AddNumberToObject(root, "version", 1) &&
             cJSON_AddStringToObject(root, "crossrec_version", CR_VERSION) &&
             cJSON_AddStringToObject(root, "batch", "every input's first dimension is the "
                                     "batch B; a multi feature's second is its bag length") &&
             (fa = cJSON_AddArrayToObject(root, "features")) &&
             (oa = cJSON_AddArrayToObject(root, "outputs"));
    for (int i = 0; ok && i < s->n_features; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(fa, o) && feature_json(s, i, o);
    }
    for (int h = 0; ok && h < m->cfg.n_heads; h++) {
        const cr_head *hd = &m->cfg.heads[h];
        if (!hd->served) continue;
        cJSON *o = cJSON_CreateObject();
        int bin = hd->kind == CR_HEAD_BINARY;
        ok = o && cJSON_AddItemToArray(oa, o) && cJSON_AddStringToObject(o, "name", hd->name) &&
             cJSON_AddStringToObject(o, "task", s->tasks[hd->tower].name) &&
             cJSON_AddStringToObject(o, "type", bin ? "binary" : "regression") &&
             cJSON_AddStringToObject(o, "value", bin ? "probability" : "value");
    }
    if (ok) ok = (*json = cJSON_PrintUnformatted(root)) != NULL;
    cJSON_Delete(root);
    return ok ? CR_OK : cr_err(e, CR_ERR_NOMEM, "out of memory writing the vocabulary document");
}

/* ---- encoding rows ------------------------------------------------------------------ */

/* The buffers of the inputs, kept alive until the writer saves them. */
typedef struct enc_bufs {
    void  **p;
    size_t  n, cap;
} enc_bufs;

static void *enc_alloc(enc_bufs *bf, size_t bytes, cr_error *e) {
    void *p = NULL;
    if (cr_grow((void **)&bf->p, &bf->cap, bf->n + 1, sizeof *bf->p, e)) return NULL;
    if (!(p = calloc(1, bytes ? bytes : 1))) {
        cr_err(e, CR_ERR_NOMEM, "out of memory encoding (%zu bytes)", bytes);
        return NULL;
    }
    return bf->p[bf->n++] = p;
}

static cr_status encode_feature(const cr_schema *s, const cr_dataset *ds, int i,
                                cr_st_writer *w, enc_bufs *bf, cr_error *e) {
    const cr_feature *f = &s->features[i];
    const int64_t n = ds->n;
    char in[2][80];
    cr_onnx_input_names(f, in);
    int slot = 0;
    const int *list = f->kind == CR_FEAT_MULTI ? s->multi_feat : s->cat_feat;
    int nl = f->kind == CR_FEAT_MULTI ? s->n_multi : s->n_cat;
    while (slot < nl && list[slot] != i) slot++;
    int64_t sh[2] = {n, 0};
    switch (f->kind) {
    case CR_FEAT_CATEGORICAL: {
        int64_t *ids = enc_alloc(bf, (size_t)n * sizeof *ids, e);
        if (!ids) return CR_ERR_NOMEM;
        for (int64_t r = 0; r < n; r++) ids[r] = ds->cat[r * ds->n_cat + slot];
        return cr_st_add(w, in[0], CR_DT_I64, 1, sh, ids, e);
    }
    case CR_FEAT_MULTI: {
        const int64_t *off = ds->bag_off[slot];
        int64_t L = 1;
        for (int64_t r = 0; r < n; r++) L = off[r + 1] - off[r] > L ? off[r + 1] - off[r] : L;
        sh[1] = L;
        int64_t *ids = enc_alloc(bf, (size_t)(n * L) * sizeof *ids, e);
        float *mask = ids ? enc_alloc(bf, (size_t)(n * L) * sizeof *mask, e) : NULL;
        if (!mask) return CR_ERR_NOMEM;
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = off[r]; j < off[r + 1]; j++) {
                ids[r * L + (j - off[r])] = ds->bag_ids[slot][j];
                mask[r * L + (j - off[r])] = 1.0f;
            }
        CR_TRY(cr_st_add(w, in[0], CR_DT_I64, 2, sh, ids, e));
        return cr_st_add(w, in[1], CR_DT_F32, 2, sh, mask, e);
    }
    case CR_FEAT_NUMERIC:
    case CR_FEAT_BUCKET: {
        double *v = enc_alloc(bf, (size_t)n * sizeof *v, e);
        if (!v) return CR_ERR_NOMEM;
        for (int64_t r = 0; r < n; r++) v[r] = ds->raw[r * s->n_features + i];
        return cr_st_add(w, in[0], CR_DT_F64, 1, sh, v, e);
    }
    }
    return cr_err(e, CR_ERR_CONFIG, "feature '%s': kind %d has no ONNX input", f->name,
                  (int)f->kind);
}

cr_status cr_onnx_encode(const char *model_path, const char *data_path, const char *out_path,
                         int64_t *rows, cr_error *e) {
    cr_ranker *m = NULL;
    cr_schema s;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    cr_data_cfg dc;
    memset(&dc, 0, sizeof dc);
    snprintf(dc.path, sizeof dc.path, "%s", data_path);
    dc.split = CR_SPLIT_FRACTION; /* every row, in file order */
    dc.no_labels = 1;
    dc.keep_raw = 1;
    cr_st_writer w;
    cr_st_writer_init(&w);
    enc_bufs bf = {0};
    CR_TRY(cr_ranker_load(&m, &s, model_path, e));
    cr_status st = cr_dataset_load(&ds, &s, &dc, 0, e);
    if (!st) st = cr_st_add_meta(&w, "format", "crossrec.onnx_inputs", e);
    for (int i = 0; !st && i < s.n_features; i++) st = encode_feature(&s, &ds, i, &w, &bf, e);
    if (!st) st = cr_st_save(&w, out_path, e);
    if (!st && rows) *rows = ds.n;
    for (size_t i = 0; i < bf.n; i++) free(bf.p[i]);
    free(bf.p);
    cr_st_writer_free(&w);
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_schema_free(&s);
    return st;
}
