/*
 * checkpoint.c - saving and loading rankers and their training state as
 * safetensors. Loading trusts nothing: the format tag, the JSON metadata,
 * and every tensor's dtype and shape are checked before a byte is copied.
 */
#include "checkpoint.h"

#include "../core/ptable_io.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The model's metadata and tensors added to w (which may hold others
 * already), then w saved to path. */
static cr_status ranker_write(const cr_ranker *m, const cr_schema *s, const char *const *extra_meta,
                              cr_st_writer *w, const char *path, cr_error *e) {
    char *schema_json = NULL, *model_json = NULL;
    cr_status st;
    if ((st = cr_schema_to_json(s, &schema_json, e))) goto done;
    if ((st = cr_model_cfg_to_json(&m->cfg, &model_json, e))) goto done;
    if ((st = cr_st_add_meta(w, "format", CR_RANKER_FORMAT, e))) goto done;
    if ((st = cr_st_add_meta(w, "format_version", CR_RANKER_FORMAT_VERSION, e))) goto done;
    if ((st = cr_st_add_meta(w, "crossrec_version", CR_VERSION, e))) goto done;
    if ((st = cr_st_add_meta(w, "schema", schema_json, e))) goto done;
    if ((st = cr_st_add_meta(w, "model", model_json, e))) goto done;
    for (int i = 0; extra_meta && extra_meta[i]; i += 2)
        if ((st = cr_st_add_meta(w, extra_meta[i], extra_meta[i + 1], e))) goto done;
    if ((st = cr_ptable_to_st(&m->params, m->params.data, "", w, e))) goto done;
    if ((st = cr_ptable_to_st(&m->tables, m->tables.data, "", w, e))) goto done;
    st = cr_st_save(w, path, e);
done:
    free(schema_json);
    free(model_json);
    return st;
}

cr_status cr_ranker_save(const cr_ranker *m, const cr_schema *s, const char *path,
                         const char *const *extra_meta, cr_error *e) {
    cr_st_writer w;
    cr_st_writer_init(&w);
    cr_status st = ranker_write(m, s, extra_meta, &w, path, e);
    cr_st_writer_free(&w);
    return st;
}

cr_status cr_ranker_load(cr_ranker **out, cr_schema *s, const char *path, cr_error *e) {
    *out = NULL;
    memset(s, 0, sizeof *s);
    cr_st_file f;
    cr_status st = cr_st_open(&f, path, e);
    if (st) return st;
    cr_ranker *m = NULL;
    const char *fmt = cr_st_meta(&f, "format");
    if (!fmt || strcmp(fmt, CR_RANKER_FORMAT) != 0) {
        st = cr_err(e, CR_ERR_FORMAT,
                    "%s: not a crossrec ranker (metadata 'format' is %s%s%s, expected '%s')",
                    path, fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "",
                    CR_RANKER_FORMAT);
        goto fail;
    }
    const char *ver = cr_st_meta(&f, "format_version");
    if (!ver || strcmp(ver, CR_RANKER_FORMAT_VERSION) != 0) {
        st = cr_err(e, CR_ERR_FORMAT, "%s: ranker format version %s is not supported (expected %s)",
                    path, ver ? ver : "(missing)", CR_RANKER_FORMAT_VERSION);
        goto fail;
    }
    const char *sj = cr_st_meta(&f, "schema"), *mj = cr_st_meta(&f, "model");
    if (!sj || !mj) {
        st = cr_err(e, CR_ERR_FORMAT, "%s: metadata lacks '%s'", path, sj ? "model" : "schema");
        goto fail;
    }
    if ((st = cr_schema_from_json(s, sj, e))) {
        cr_err_prefix(e, "%s: metadata 'schema'", path);
        goto fail;
    }
    cr_model_cfg cfg;
    if ((st = cr_model_cfg_from_json(&cfg, mj, e))) {
        cr_err_prefix(e, "%s: metadata 'model'", path);
        goto fail;
    }
    if ((st = cr_ranker_create(&m, s, &cfg, 0, e))) {
        cr_err_prefix(e, "%s", path);
        goto fail;
    }
    if ((st = cr_ptable_from_st(&m->params, m->params.data, "", &f, 0, e))) goto fail;
    if ((st = cr_ptable_from_st(&m->tables, m->tables.data, "", &f, 0, e))) goto fail;
    /* A tensor in the file that the model does not know means the file and
     * the config disagree: say so rather than ignore it. A checkpoint's
     * training state is the one known exception. */
    int has_state = cr_st_meta(&f, "train_state") != NULL;
    size_t np = strlen(CR_TRAIN_STATE_PREFIX);
    for (int i = 0; i < f.n; i++)
        if (!(has_state && !strncmp(f.t[i].name, CR_TRAIN_STATE_PREFIX, np)) &&
            cr_ptable_find(&m->params, f.t[i].name) < 0 &&
            cr_ptable_find(&m->tables, f.t[i].name) < 0) {
            st = cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s' is not part of the model its metadata describes",
                        path, f.t[i].name);
            goto fail;
        }
    cr_st_close(&f);
    *out = m;
    return CR_OK;
fail:
    cr_ranker_free(m);
    cr_schema_free(s);
    cr_st_close(&f);
    return st;
}

cr_status cr_ranker_served(const cr_ranker *m, const cr_schema *s, cr_ranker **out,
                           cr_error *e) {
    *out = NULL;
    cr_ranker *x = NULL;
    cr_model_cfg cfg = m->cfg;
    cfg.n_heads = 0;
    for (int h = 0; h < m->cfg.n_heads; h++) {
        if (!m->cfg.heads[h].served) continue;
        cr_head hd = m->cfg.heads[h];
        /* the blend only shaped the training target; serving never reads it */
        hd.blend_extra = 0;
        hd.blend_lambda = 0.0f;
        hd.temperature = 0.0f;
        cfg.heads[cfg.n_heads++] = hd;
    }
    CR_TRY(cr_ranker_create(&x, s, &cfg, 0, e));
    /* Copy by name: every tensor of the served model exists in m with the
     * same shape (the served heads keep their names). */
    const cr_ptable *src[2] = {&m->params, &m->tables};
    cr_ptable *dst[2] = {&x->params, &x->tables};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < dst[p]->n; i++) {
            const cr_tensor_info *t = &dst[p]->t[i];
            int j = cr_ptable_find(src[p], t->name);
            if (j < 0 || src[p]->t[j].numel != t->numel) {
                cr_ranker_free(x);
                return cr_err(e, CR_ERR_INTERNAL, "tensor '%s' of the served model has no "
                              "counterpart", t->name);
            }
            memcpy(cr_ptable_ptr(dst[p], dst[p]->data, i),
                   cr_ptable_ptr(src[p], src[p]->data, j), t->numel * sizeof(float));
        }
    *out = x;
    return CR_OK;
}

cr_status cr_ranker_export(const char *in_path, const char *out_path, int *dropped,
                           cr_error *e) {
    cr_ranker *m = NULL, *x = NULL;
    cr_schema s;
    CR_TRY(cr_ranker_load(&m, &s, in_path, e));
    cr_status st = cr_ranker_served(m, &s, &x, e);
    if (st) {
        cr_err_prefix(e, "exporting %s", in_path);
        goto done;
    }
    if ((st = cr_ranker_save(x, &s, out_path, NULL, e))) goto done;
    if (dropped) *dropped = m->cfg.n_heads - x->cfg.n_heads;
done:
    cr_ranker_free(x);
    cr_ranker_free(m);
    cr_schema_free(&s);
    return st;
}

cr_status cr_schema_check_same(const cr_schema *a, const cr_schema *b, const char *model_path,
                               cr_error *e) {
    if (a->n_features != b->n_features)
        return cr_err(e, CR_ERR_MISMATCH, "%s: the model has %d features, the config declares %d",
                      model_path, a->n_features, b->n_features);
    for (int i = 0; i < a->n_features; i++) {
        const cr_feature *x = &a->features[i], *y = &b->features[i];
        if (strcmp(x->name, y->name) || x->kind != y->kind || strcmp(x->column, y->column) ||
            (x->kind != CR_FEAT_NUMERIC && !x->share[0] && x->dim != y->dim))
            return cr_err(e, CR_ERR_MISMATCH,
                          "%s: feature %d is '%s' (column '%s', dim %d) in the model but '%s' "
                          "(column '%s', dim %d) in the config",
                          model_path, i, x->name, x->column, x->dim, y->name, y->column, y->dim);
    }
    if (a->n_tasks != b->n_tasks)
        return cr_err(e, CR_ERR_MISMATCH, "%s: the model has %d tasks, the config declares %d",
                      model_path, a->n_tasks, b->n_tasks);
    for (int k = 0; k < a->n_tasks; k++)
        if (strcmp(a->tasks[k].name, b->tasks[k].name) || a->tasks[k].kind != b->tasks[k].kind)
            return cr_err(e, CR_ERR_MISMATCH, "%s: task %d is '%s' in the model but '%s' in the config",
                          model_path, k, a->tasks[k].name, b->tasks[k].name);
    return CR_OK;
}

/* ---- training state ----------------------------------------------------------------- */

/* Names of the training state's tensors inside a checkpoint (name is a
 * buffer of 64). */
static const char *state_name(char *name, const char *what, int i) {
    if (i < 0) snprintf(name, 64, "%s%s", CR_TRAIN_STATE_PREFIX, what);
    else snprintf(name, 64, "%ssparse.%d.%s", CR_TRAIN_STATE_PREFIX, i, what);
    return name;
}

cr_status cr_rank_checkpoint_save(const cr_ranker *m, const cr_schema *s, const cr_train_state *t,
                                  int finished, const char *path, cr_error *e) {
    cr_st_writer w;
    cr_st_writer_init(&w);
    cr_status st;
    char buf[64], name[64];
    int64_t counters[4] = {t->step, t->epoch, t->epoch_step, t->examples};
    int64_t sh4[1] = {4}, shn[1] = {(int64_t)t->adam.n}, shr[1] = {(int64_t)sizeof(cr_rng)};
    int64_t she[1] = {(int64_t)sizeof(cr_early_stop)}, sht[1] = {1};
    snprintf(buf, sizeof buf, "%d", t->n_sparse);
    const char *meta[] = {"train_state", CR_TRAIN_STATE_FORMAT, "finished", finished ? "1" : "0",
                          "n_sparse", buf, NULL};
    if ((st = cr_st_add(&w, state_name(name, "counters", -1), CR_DT_I64, 1, sh4, counters, e)))
        goto done;
    /* The RNG and early-stopping structs are plain data of fixed layout;
     * stored as bytes and checked for size on load. */
    if ((st = cr_st_add(&w, state_name(name, "epoch_rng", -1), CR_DT_U8, 1, shr, &t->epoch_rng, e)))
        goto done;
    if ((st = cr_st_add(&w, state_name(name, "early_stop", -1), CR_DT_U8, 1, she, &t->es, e)))
        goto done;
    if ((st = cr_st_add(&w, state_name(name, "adam.t", -1), CR_DT_I64, 1, sht, &t->adam.t, e)))
        goto done;
    if (t->adam.m) { /* SGD keeps no moments */
        if ((st = cr_st_add(&w, state_name(name, "adam.m", -1), CR_DT_F32, 1, shn, t->adam.m, e)))
            goto done;
        if (t->adam.v &&
            (st = cr_st_add(&w, state_name(name, "adam.v", -1), CR_DT_F32, 1, shn, t->adam.v, e)))
            goto done;
    }
    for (int i = 0; i < t->n_sparse; i++) {
        const cr_sparse_opt *o = &t->sparse[i];
        int64_t sh2[2] = {o->V, o->D};
        if ((st = cr_st_add(&w, state_name(name, "t", i), CR_DT_I64, 1, sht, &o->t, e))) goto done;
        if (o->s1 && (st = cr_st_add(&w, state_name(name, "s1", i), CR_DT_F32, 2, sh2, o->s1, e)))
            goto done;
        if (o->s2 && (st = cr_st_add(&w, state_name(name, "s2", i), CR_DT_F32, 2, sh2, o->s2, e)))
            goto done;
    }
    /* the model's own tensors and metadata, then one atomic write */
    st = ranker_write(m, s, meta, &w, path, e);
done:
    cr_st_writer_free(&w);
    return st;
}

static cr_status copy_tensor(const cr_st_file *f, const char *name, cr_dtype dt, int ndim,
                             const int64_t *shape, void *dst, cr_error *e) {
    const cr_st_tensor *t;
    CR_TRY(cr_st_expect(f, name, dt, ndim, shape, &t, e));
    memcpy(dst, t->data, t->nbytes);
    return CR_OK;
}

cr_status cr_train_state_load(cr_train_state *t, int *finished, const char *path, cr_error *e) {
    cr_st_file f;
    CR_TRY(cr_st_open(&f, path, e));
    cr_status st;
    char name[64];
    const char *fmt = cr_st_meta(&f, "train_state"), *fin = cr_st_meta(&f, "finished");
    if (!fmt || strcmp(fmt, CR_TRAIN_STATE_FORMAT) || !fin) {
        st = cr_err(e, CR_ERR_FORMAT,
                    "%s: holds no training state to resume from (a model file, or a checkpoint "
                    "of an older crossrec); train into a fresh --out directory",
                    path);
        goto done;
    }
    int64_t counters[4];
    int64_t sh4[1] = {4}, shn[1] = {(int64_t)t->adam.n}, shr[1] = {(int64_t)sizeof(cr_rng)};
    int64_t she[1] = {(int64_t)sizeof(cr_early_stop)}, sht[1] = {1};
    if ((st = copy_tensor(&f, state_name(name, "counters", -1), CR_DT_I64, 1, sh4, counters, e)) ||
        (st = copy_tensor(&f, state_name(name, "epoch_rng", -1), CR_DT_U8, 1, shr, &t->epoch_rng, e)) ||
        (st = copy_tensor(&f, state_name(name, "early_stop", -1), CR_DT_U8, 1, she, &t->es, e)) ||
        (st = copy_tensor(&f, state_name(name, "adam.t", -1), CR_DT_I64, 1, sht, &t->adam.t, e)))
        goto done;
    if (t->adam.m) {
        if ((st = copy_tensor(&f, state_name(name, "adam.m", -1), CR_DT_F32, 1, shn, t->adam.m, e)))
            goto done;
        if (t->adam.v &&
            (st = copy_tensor(&f, state_name(name, "adam.v", -1), CR_DT_F32, 1, shn, t->adam.v, e)))
            goto done;
    }
    for (int i = 0; i < t->n_sparse; i++) {
        cr_sparse_opt *o = &t->sparse[i];
        int64_t sh2[2] = {o->V, o->D};
        if ((st = copy_tensor(&f, state_name(name, "t", i), CR_DT_I64, 1, sht, &o->t, e)) ||
            (o->s1 && (st = copy_tensor(&f, state_name(name, "s1", i), CR_DT_F32, 2, sh2, o->s1, e))) ||
            (o->s2 && (st = copy_tensor(&f, state_name(name, "s2", i), CR_DT_F32, 2, sh2, o->s2, e))))
            goto done;
    }
    t->step = counters[0];
    t->epoch = (int)counters[1];
    t->epoch_step = counters[2];
    t->examples = counters[3];
    if (finished) *finished = !strcmp(fin, "1");
    st = CR_OK;
done:
    cr_st_close(&f);
    return st;
}

void cr_checkpoint_sweep(const char *dir) {
    static const char *const ours[] = {"model.safetensors", "last.safetensors", "metrics.json",
                                       "config.yaml", "train_state.safetensors", NULL};
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *x; (x = readdir(d));)
        for (int i = 0; ours[i]; i++) {
            size_t n = strlen(ours[i]);
            if (strncmp(x->d_name, ours[i], n) || strncmp(x->d_name + n, ".tmp.", 5)) continue;
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", dir, x->d_name);
            unlink(p);
        }
    closedir(d);
}
