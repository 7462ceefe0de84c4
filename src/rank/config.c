/*
 * config.c - the model, train and eval sections of a ranking config, and
 * the model config's JSON form for checkpoints. Every value is range-
 * checked and every unknown key is an error naming file:line:col; nothing
 * is clamped silently.
 */
#include "config.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const cr_arch_names[] = {"shared_bottom", "mmoe", "ple", NULL};
const char *const cr_loss_weighting_names[] = {"fixed", "uncertainty", NULL};
const char *const cr_es_names[] = {"sum_loss", "per_task", "none", "metric", NULL};

static cr_status layers(const cr_yaml_node *m, const char *key, int *n, int *out, int def_n,
                        const int *def, cr_error *e) {
    if (!cr_yaml_get(m, key)) {
        *n = def_n;
        for (int i = 0; i < def_n; i++) out[i] = def[i];
        return CR_OK;
    }
    int64_t v[CR_MODEL_MAX_LAYERS];
    CR_TRY(cr_yaml_ints(m, key, "model", 0, 1, 65536, v, CR_MODEL_MAX_LAYERS, n, e));
    for (int i = 0; i < *n; i++) out[i] = (int)v[i];
    return CR_OK;
}

cr_status cr_model_cfg_parse(const cr_yaml_node *root, const cr_schema *s, cr_model_cfg *m,
                             cr_error *e) {
    cr_model_cfg_defaults(m, s);
    const cr_yaml_node *n = cr_yaml_get(root, "model");
    if (cr_yaml_is_null(n)) n = NULL; /* `model:` with no value = absent */
    static const char *const keys[] = {"type", "bottom_layers", "experts", "expert_layers",
                                       "shared_experts", "task_experts", "tower_layers",
                                       "loss_weighting", "emb_init", NULL};
    CR_TRY(cr_yaml_check_keys(n, keys, "model", e));
    int arch = (int)m->arch;
    CR_TRY(cr_yaml_enum(n, "type", "model", 0, arch, cr_arch_names, &arch, e));
    m->arch = (cr_arch)arch;
    int d_bottom[CR_MODEL_MAX_LAYERS], d_exp[CR_MODEL_MAX_LAYERS], d_tower[CR_MODEL_MAX_LAYERS];
    memcpy(d_bottom, m->bottom_layers, sizeof d_bottom);
    memcpy(d_exp, m->expert_layers, sizeof d_exp);
    memcpy(d_tower, m->tower_layers, sizeof d_tower);
    CR_TRY(layers(n, "bottom_layers", &m->n_bottom, m->bottom_layers, m->n_bottom, d_bottom, e));
    CR_TRY(layers(n, "expert_layers", &m->n_expert_layers, m->expert_layers, m->n_expert_layers,
                  d_exp, e));
    CR_TRY(layers(n, "tower_layers", &m->n_tower, m->tower_layers, m->n_tower, d_tower, e));
    CR_TRY(cr_yaml_int32(n, "experts", "model", 0, m->n_experts, 1, 64, &m->n_experts, e));
    CR_TRY(cr_yaml_int32(n, "shared_experts", "model", 0, m->shared_experts, 0, 64,
                         &m->shared_experts, e));
    CR_TRY(cr_yaml_int32(n, "task_experts", "model", 0, m->task_experts, 0, 64, &m->task_experts,
                         e));
    int lw = (int)m->loss_weighting;
    CR_TRY(cr_yaml_enum(n, "loss_weighting", "model", 0, lw, cr_loss_weighting_names, &lw, e));
    m->loss_weighting = (cr_loss_weighting)lw;
    double ei = m->emb_init;
    CR_TRY(cr_yaml_double(n, "emb_init", "model", 0, ei, 0.0, 10.0, &ei, e));
    m->emb_init = (float)ei;
    if ((m->arch == CR_ARCH_MMOE || m->arch == CR_ARCH_PLE) && m->n_expert_layers < 1)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, "model.expert_layers",
                           "%s needs at least one expert layer", cr_arch_names[m->arch]);
    if (m->arch == CR_ARCH_PLE && m->task_experts + m->shared_experts < 1)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, "model",
                           "ple needs shared_experts + task_experts >= 1");
    return CR_OK;
}

cr_status cr_train_cfg_parse(const cr_yaml_node *root, cr_train_cfg *t, cr_error *e) {
    cr_train_cfg_default(t);
    const cr_yaml_node *n = cr_yaml_get(root, "train");
    if (cr_yaml_is_null(n)) n = NULL;
    static const char *const keys[] = {
        "optimizer", "lr", "beta1", "beta2", "eps", "weight_decay", "sparse_optimizer",
        "sparse_lr", "adagrad_init", "batch_size", "epochs", "max_steps", "schedule",
        "warmup_steps", "min_lr_frac", "clip_norm", "seed", "threads", "early_stopping",
        "checkpoint_every", "precision", "max_bag_ids", NULL};
    CR_TRY(cr_yaml_check_keys(n, keys, "train", e));
    /* the optimizer's keys, by the names this section gives them */
    static const char *const opt_keys[] = {
        "optimizer", "sparse_optimizer", "schedule", "lr", "beta1", "beta2", "eps",
        "weight_decay", "sparse_lr", "adagrad_init", "min_lr_frac", "clip_norm",
        "warmup_steps", NULL};
    CR_TRY(cr_optim_cfg_parse(&t->opt, n, "train", opt_keys, e));
    static const char *const precision_names[] = {"fp32", "bf16", NULL}; /* cr_gemm_precision */
    CR_TRY(cr_yaml_enum(n, "precision", "train", 0, t->precision, precision_names,
                        &t->precision, e));
    CR_TRY(cr_yaml_int32(n, "batch_size", "train", 0, t->batch_size, 1, 1 << 20, &t->batch_size, e));
    CR_TRY(cr_yaml_int32(n, "epochs", "train", 0, t->epochs, 1, 100000, &t->epochs, e));
    CR_TRY(cr_yaml_int(n, "max_steps", "train", 0, t->max_steps, 0, INT64_MAX / 2, &t->max_steps, e));
    int64_t seed = (int64_t)t->seed;
    CR_TRY(cr_yaml_int(n, "seed", "train", 0, seed, 0, INT64_MAX, &seed, e));
    t->seed = (uint64_t)seed;
    CR_TRY(cr_yaml_int32(n, "threads", "train", 0, t->threads, 0, 1024, &t->threads, e));
    CR_TRY(cr_yaml_int(n, "max_bag_ids", "train", 0, t->max_bag_ids, 0, INT32_MAX / 4,
                       &t->max_bag_ids, e));
    CR_TRY(cr_yaml_int32(n, "checkpoint_every", "train", 0, t->checkpoint_every, 0, 1 << 30,
                         &t->checkpoint_every, e));
    const cr_yaml_node *es = cr_yaml_get(n, "early_stopping");
    if (es && !cr_yaml_is_null(es)) {
        static const char *const ek[] = {"mode", "patience", "eval_every", NULL};
        int v;
        CR_TRY(cr_yaml_expect(es, CR_YAML_MAP, "train.early_stopping", e));
        CR_TRY(cr_yaml_check_keys(es, ek, "train.early_stopping", e));
        v = (int)t->early_stopping;
        CR_TRY(cr_yaml_enum(es, "mode", "train.early_stopping", 0, v, cr_es_names, &v, e));
        t->early_stopping = (cr_es_mode)v;
        CR_TRY(cr_yaml_int32(es, "patience", "train.early_stopping", 0, t->patience, 1, 1000,
                             &t->patience, e));
        CR_TRY(cr_yaml_int(es, "eval_every", "train.early_stopping", 0, t->eval_every, 0,
                           INT64_MAX / 2, &t->eval_every, e));
    }
    return CR_OK;
}

cr_status cr_eval_cfg_parse(const cr_yaml_node *root, cr_eval_cfg *v, cr_error *e) {
    memset(v, 0, sizeof *v);
    const cr_yaml_node *n = cr_yaml_get(root, "eval");
    if (cr_yaml_is_null(n)) n = NULL;
    static const char *const keys[] = {"k", "baseline", "popularity_feature", NULL};
    CR_TRY(cr_yaml_check_keys(n, keys, "eval", e));
    CR_TRY(cr_yaml_int32(n, "k", "eval", 0, 10, 1, 1000, &v->k, e));
    CR_TRY(cr_yaml_bool(n, "baseline", "eval", 0, 1, &v->baseline, e));
    CR_TRY(cr_yaml_str(n, "popularity_feature", "eval", 0, "", v->popularity_feature,
                       sizeof v->popularity_feature, e));
    return CR_OK;
}

cr_status cr_rank_config_load(cr_rank_config *c, const char *path, cr_error *e) {
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    cr_yaml_doc *doc = NULL;
    cr_status s = cr_yaml_load(&doc, path, e);
    if (s) return s;
    const cr_yaml_node *root = cr_yaml_root(doc);
    if ((s = cr_data_config_parse(root, path, &c->data, &c->schema, e))) goto fail;
    if ((s = cr_model_cfg_parse(root, &c->schema, &c->model, e))) goto fail;
    if ((s = cr_distill_cfg_parse(root, &c->schema, &c->distill, e))) goto fail;
    if ((s = cr_distill_apply(&c->distill, &c->schema, &c->data, &c->model, e))) goto fail;
    if ((s = cr_train_cfg_parse(root, &c->train, e))) goto fail;
    if ((s = cr_eval_cfg_parse(root, &c->eval, e))) goto fail;
    if (c->eval.popularity_feature[0]) {
        int found = 0;
        for (int i = 0; i < c->schema.n_features; i++)
            if (!strcmp(c->schema.features[i].name, c->eval.popularity_feature) &&
                c->schema.features[i].kind == CR_FEAT_NUMERIC)
                found = 1;
        if (!found) {
            s = cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(cr_yaml_get(root, "eval"),
                                                          "popularity_feature"),
                            "eval.popularity_feature", "'%s' is not a numeric feature",
                            c->eval.popularity_feature);
            goto fail;
        }
    }
    cr_yaml_free(doc);
    return CR_OK;
fail:
    cr_yaml_free(doc);
    cr_schema_free(&c->schema);
    return s;
}

void cr_rank_config_free(cr_rank_config *c) { cr_schema_free(&c->schema); }

/* ---- JSON form of the model config ------------------------------------------------ */

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cr_status cr_model_cfg_to_json(const cr_model_cfg *m, char **json, cr_error *e) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return cr_err(e, CR_ERR_NOMEM, "out of memory writing the model config");
    cJSON_AddStringToObject(o, "arch", cr_arch_names[m->arch]);
    cJSON_AddItemToObject(o, "bottom_layers", int_array(m->bottom_layers, m->n_bottom));
    cJSON_AddNumberToObject(o, "experts", m->n_experts);
    cJSON_AddNumberToObject(o, "shared_experts", m->shared_experts);
    cJSON_AddNumberToObject(o, "task_experts", m->task_experts);
    cJSON_AddItemToObject(o, "expert_layers", int_array(m->expert_layers, m->n_expert_layers));
    cJSON_AddItemToObject(o, "tower_layers", int_array(m->tower_layers, m->n_tower));
    cJSON_AddStringToObject(o, "loss_weighting", cr_loss_weighting_names[m->loss_weighting]);
    cJSON_AddNumberToObject(o, "emb_init", m->emb_init);
    cJSON *hs = cJSON_AddArrayToObject(o, "heads");
    for (int h = 0; hs && h < m->n_heads; h++) {
        const cr_head *hd = &m->heads[h];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", hd->name);
        cJSON_AddNumberToObject(x, "tower", hd->tower);
        cJSON_AddStringToObject(x, "kind", hd->kind == CR_HEAD_BINARY ? "binary" : "regression");
        cJSON_AddBoolToObject(x, "served", hd->served);
        cJSON_AddStringToObject(x, "target_kind", hd->target_kind == CR_TARGET_LABEL ? "label" : "extra");
        cJSON_AddNumberToObject(x, "target", hd->target);
        cJSON_AddNumberToObject(x, "mask_task", hd->mask_task);
        cJSON_AddNumberToObject(x, "weight", hd->weight);
        /* distillation fields only when set, so a model without them has the
         * same metadata as before they existed (and as its export) */
        if (hd->blend_lambda != 0.0f) {
            cJSON_AddNumberToObject(x, "blend_extra", hd->blend_extra);
            cJSON_AddNumberToObject(x, "blend_lambda", hd->blend_lambda);
        }
        if (hd->temperature != 0.0f) cJSON_AddNumberToObject(x, "temperature", hd->temperature);
        cJSON_AddItemToArray(hs, x);
    }
    *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *json ? CR_OK : cr_err(e, CR_ERR_NOMEM, "out of memory writing the model config");
}

static int get_int(const cJSON *o, const char *k, int lo, int hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int get_layers(const cJSON *o, const char *k, int *n, int *out) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > CR_MODEL_MAX_LAYERS) return -1;
    *n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 65536 ||
            it->valuedouble != floor(it->valuedouble))
            return -1;
        out[(*n)++] = (int)it->valuedouble;
    }
    return 0;
}

static int get_enum(const cJSON *o, const char *k, const char *const *names, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v)) return -1;
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], v->valuestring)) {
            *out = i;
            return 0;
        }
    return -1;
}

cr_status cr_model_cfg_from_json(cr_model_cfg *m, const char *json, cr_error *e) {
    memset(m, 0, sizeof *m);
    cJSON *o = cJSON_Parse(json);
    const char *bad = NULL;
    int v;
    if (!cJSON_IsObject(o)) { bad = "the model config is not a JSON object"; goto fail; }
    if (get_enum(o, "arch", cr_arch_names, &v)) { bad = "arch"; goto fail; }
    m->arch = (cr_arch)v;
    if (get_layers(o, "bottom_layers", &m->n_bottom, m->bottom_layers)) { bad = "bottom_layers"; goto fail; }
    if (get_layers(o, "expert_layers", &m->n_expert_layers, m->expert_layers)) { bad = "expert_layers"; goto fail; }
    if (get_layers(o, "tower_layers", &m->n_tower, m->tower_layers)) { bad = "tower_layers"; goto fail; }
    if (get_int(o, "experts", 0, 64, &m->n_experts)) { bad = "experts"; goto fail; }
    if (get_int(o, "shared_experts", 0, 64, &m->shared_experts)) { bad = "shared_experts"; goto fail; }
    if (get_int(o, "task_experts", 0, 64, &m->task_experts)) { bad = "task_experts"; goto fail; }
    if (get_enum(o, "loss_weighting", cr_loss_weighting_names, &v)) { bad = "loss_weighting"; goto fail; }
    m->loss_weighting = (cr_loss_weighting)v;
    const cJSON *ei = cJSON_GetObjectItemCaseSensitive(o, "emb_init");
    if (!cJSON_IsNumber(ei)) { bad = "emb_init"; goto fail; }
    m->emb_init = (float)ei->valuedouble;
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(o, "heads");
    if (!cJSON_IsArray(hs) || cJSON_GetArraySize(hs) > CR_MODEL_MAX_HEADS) { bad = "heads"; goto fail; }
    const cJSON *x;
    cJSON_ArrayForEach(x, hs) {
        cr_head *hd = &m->heads[m->n_heads++];
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(x, "name");
        static const char *const kinds[] = {"binary", "regression", NULL};
        static const char *const tk[] = {"label", "extra", NULL};
        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(x, "served");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(x, "weight");
        int kind, tkind;
        if (!cJSON_IsString(nm) || strlen(nm->valuestring) >= sizeof hd->name ||
            get_int(x, "tower", 0, CR_MAX_TASKS - 1, &hd->tower) ||
            get_enum(x, "kind", kinds, &kind) || !cJSON_IsBool(sv) ||
            get_enum(x, "target_kind", tk, &tkind) || get_int(x, "target", 0, 1 << 20, &hd->target) ||
            get_int(x, "mask_task", -1, CR_MAX_TASKS - 1, &hd->mask_task) || !cJSON_IsNumber(w)) {
            bad = "heads";
            goto fail;
        }
        snprintf(hd->name, sizeof hd->name, "%s", nm->valuestring);
        hd->kind = (cr_head_kind)kind;
        hd->served = cJSON_IsTrue(sv);
        hd->target_kind = (cr_target_kind)tkind;
        hd->weight = (float)w->valuedouble;
        const cJSON *bl = cJSON_GetObjectItemCaseSensitive(x, "blend_lambda");
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(x, "temperature");
        if (bl) {
            if (!cJSON_IsNumber(bl) || !(bl->valuedouble >= 0 && bl->valuedouble <= 1) ||
                get_int(x, "blend_extra", 0, 1 << 20, &hd->blend_extra)) {
                bad = "heads";
                goto fail;
            }
            hd->blend_lambda = (float)bl->valuedouble;
        }
        if (tp) {
            if (!cJSON_IsNumber(tp) || !(tp->valuedouble > 0 && tp->valuedouble <= 1000)) {
                bad = "heads";
                goto fail;
            }
            hd->temperature = (float)tp->valuedouble;
        }
    }
    cJSON_Delete(o);
    return CR_OK;
fail:
    cJSON_Delete(o);
    return cr_err(e, CR_ERR_FORMAT, "model config: missing or invalid field '%s'", bad);
}
