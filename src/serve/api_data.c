/*
 * api_data.c - the public data-preparation entry points (crossrec.h): a
 * checkpoint's table of contents, synthetic two-domain logs, MovieLens
 * impressions, impressions from any described log and the ONNX graph's inputs encoded from a CSV. Thin brackets
 * over src/core, src/data and src/rank that check every argument before any
 * work starts; nothing here prints except through the context's log.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../data/impressions.h"
#include "../data/movielens.h"
#include "../data/synth.h"
#include "../rank/export_onnx.h"

#include <cJSON.h>
#include <string.h>

static cr_status add_tensor(cJSON *arr, const cr_st_tensor *t) {
    cJSON *x = cJSON_CreateObject(), *shape = x ? cJSON_AddArrayToObject(x, "shape") : NULL;
    if (!x || !cJSON_AddItemToArray(arr, x) || !shape) {
        if (x && !shape) cJSON_Delete(x);
        return CR_ERR_NOMEM;
    }
    cJSON_AddStringToObject(x, "name", t->name);
    cJSON_AddStringToObject(x, "dtype", cr_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
    cJSON_AddNumberToObject(x, "numel", (double)t->numel);
    cJSON_AddNumberToObject(x, "bytes", (double)t->nbytes);
    return CR_OK;
}

cr_status cr_inspect(const char *path, char **json, cr_error *e) {
    if (json) *json = NULL;
    if (!path || !json) return cr_err(e, CR_ERR_ARG, "cr_inspect: path and json must not be NULL");
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    cr_status s = CR_OK;
    cJSON *o = cJSON_CreateObject(), *meta = NULL, *ts = NULL;
    if (!o || !cJSON_AddStringToObject(o, "path", path) ||
        !(meta = cJSON_AddObjectToObject(o, "metadata")) ||
        !(ts = cJSON_AddArrayToObject(o, "tensors")))
        s = CR_ERR_NOMEM;
    for (int i = 0; !s && i < f.n_meta; i++)
        if (!cJSON_AddStringToObject(meta, f.meta_key[i], f.meta_val[i])) s = CR_ERR_NOMEM;
    for (int i = 0; !s && i < f.n; i++) s = add_tensor(ts, &f.t[i]);
    if (!s && !(*json = cJSON_Print(o))) s = CR_ERR_NOMEM;
    cJSON_Delete(o);
    cr_st_close(&f);
    return s ? cr_err(e, s, "%s: out of memory describing the file", path) : CR_OK;
}

cr_status cr_encode_csv(const char *model, const char *data, const char *out, int64_t *rows,
                        cr_error *e) {
    if (rows) *rows = 0;
    if (!model || !data || !out)
        return cr_err(e, CR_ERR_ARG, "cr_encode_csv: model, data and out must not be NULL");
    int64_t n = 0;
    CR_TRY(cr_onnx_encode(model, data, out, &n, e));
    if (rows) *rows = n;
    return CR_OK;
}

cr_status cr_synth(cr_ctx *ctx, const cr_synth_cfg *c, const char *out_dir, cr_synth_stats *st,
                   cr_error *e) {
    if (st) memset(st, 0, sizeof *st);
    if (!c || !out_dir) return cr_err(e, CR_ERR_ARG, "cr_synth: c and out_dir must not be NULL");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_synth", e));
    cr_status s = cr_synth_write(c, out_dir, cr_ctx_log(k.ctx), st, e);
    cr_call_end(&k);
    return s;
}

cr_status cr_movielens_prepare(cr_ctx *ctx, const cr_ml_opts *o, cr_ml_stats *st, cr_error *e) {
    if (st) memset(st, 0, sizeof *st);
    if (!o || !o->in_dir || !o->out_path)
        return cr_err(e, CR_ERR_ARG, "cr_movielens_prepare: o, o->in_dir and o->out_path are required");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_movielens_prepare", e));
    cr_status s = cr_ml_build(o, st, e);
    cr_call_end(&k);
    return s;
}

cr_status cr_impressions(cr_ctx *ctx, const cr_impressions_cfg *c, const char *out_path,
                         cr_impressions_stats *st, cr_error *e) {
    if (st) memset(st, 0, sizeof *st);
    if (!c || !out_path || !*out_path)
        return cr_err(e, CR_ERR_ARG, "cr_impressions: c and out_path are required");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_impressions", e));
    cr_status s = cr_imp_run(c, out_path, st, e);
    cr_call_end(&k);
    return s;
}
