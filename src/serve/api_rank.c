/*
 * api_rank.c - the public training and evaluation entry points
 * (crossrec.h): a config file in, a run directory and its metrics out.
 * Each call brackets its work with the context (threads set and restored,
 * progress, cancel); the CLI's train and eval commands are thin callers.
 * Nothing here prints except through the context's log.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../rank/checkpoint.h"
#include "../rank/evaluate.h"
#include "../rank/fit.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

struct cr_run {
    char *metrics;  /* metrics.json's text */
    char  dir[1200];  /* as fit.c's paths */
    char  model[1232];
    int   finished; /* resume found a finished run: nothing was trained */
};

void cr_train_opts_init(cr_train_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->seed = -1;
    o->max_steps = -1;
}

static cr_status check_train_opts(const cr_train_opts *o, cr_error *e) {
    if (o->resume != 0 && o->resume != 1)
        return cr_err(e, CR_ERR_ARG, "cr_train_opts.resume: expected 0 or 1, got %d", o->resume);
    if (o->seed < -1) return cr_err(e, CR_ERR_ARG, "cr_train_opts.seed: expected -1 or >= 0");
    if (o->epochs < 0 || o->epochs > 100000)
        return cr_err(e, CR_ERR_ARG, "cr_train_opts.epochs: expected 0 (the config's) to 100000, "
                      "got %d", o->epochs);
    if (o->max_steps < -1)
        return cr_err(e, CR_ERR_ARG, "cr_train_opts.max_steps: expected -1 (the config's) or >= 0");
    if (o->stop_after_steps < 0)
        return cr_err(e, CR_ERR_ARG, "cr_train_opts.stop_after_steps: expected >= 0");
    return CR_OK;
}

cr_status cr_train(cr_ctx *ctx, const char *config, const char *out_dir, const cr_train_opts *o,
                   cr_run **run, cr_error *e) {
    if (run) *run = NULL;
    if (!config || !out_dir || !run)
        return cr_err(e, CR_ERR_ARG, "cr_train: config, out_dir and run must not be NULL");
    if (strlen(out_dir) >= 1200)
        return cr_err(e, CR_ERR_LIMIT, "cr_train: out_dir is longer than %d bytes", 1199);
    cr_train_opts def;
    if (!o) {
        cr_train_opts_init(&def);
        o = &def;
    }
    CR_TRY(check_train_opts(o, e));
    cr_run *r = calloc(1, sizeof *r);
    if (!r) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    snprintf(r->dir, sizeof r->dir, "%s", out_dir);
    snprintf(r->model, sizeof r->model, "%s/model.safetensors", out_dir);
    cr_call k;
    cr_status s = cr_call_begin(&k, ctx, "cr_train", e);
    if (s) {
        free(r);
        return s;
    }
    cr_rank_config cfg;
    if ((s = cr_rank_config_load(&cfg, config, e))) goto done;
    /* the context's thread count, else the config's train.threads, else
     * every CPU; set once here, restored by cr_call_end */
    if (k.ctx->p.threads > 0) cfg.train.threads = k.ctx->p.threads;
    cr_set_threads(cr_ctx_threads_for(k.ctx, cfg.train.threads));
    if (k.ctx->p.precision == CR_PRECISION_BF16) cfg.train.precision = CR_PRECISION_BF16;
    else if (k.ctx->p.precision == CR_PRECISION_INT8)
        s = cr_err(e, CR_ERR_ARG, "cr_train: training takes fp32 or bf16 precision, not int8");
    if (o->seed >= 0) cfg.train.seed = (uint64_t)o->seed;
    if (o->epochs > 0) cfg.train.epochs = o->epochs;
    if (o->max_steps >= 0) cfg.train.max_steps = o->max_steps;
    if (!s) {
        cr_fit_opts fo = {.out_dir = out_dir, .resume = o->resume, .log = cr_ctx_log(k.ctx),
                          .stop_after_steps = o->stop_after_steps, .ctx = k.ctx,
                          .dist = k.ctx->p.dist, .finished = &r->finished};
        s = cr_rank_fit(&cfg, &fo, &r->metrics, e);
    }
    cr_rank_config_free(&cfg);
done:
    cr_call_end(&k);
    if (s) {
        cr_run_free(r);
        return s;
    }
    *run = r;
    return CR_OK;
}

const char *cr_run_metrics_json(const cr_run *r) { return r ? r->metrics : NULL; }
const char *cr_run_model_path(const cr_run *r) { return r ? r->model : NULL; }
const char *cr_run_dir(const cr_run *r) { return r ? r->dir : NULL; }
int         cr_run_finished(const cr_run *r) { return r ? r->finished : 0; }

void cr_run_free(cr_run *r) {
    if (!r) return;
    free(r->metrics);
    free(r);
}

cr_status cr_evaluate(cr_ctx *ctx, const char *model, const char *config, const char *data_path,
                      const char *split, char **metrics_json, cr_error *e) {
    if (metrics_json) *metrics_json = NULL;
    if (!model || !config || !metrics_json)
        return cr_err(e, CR_ERR_ARG, "cr_evaluate: model, config and metrics_json must not be NULL");
    if (!split) split = "test";
    int sp = !strcmp(split, "test") ? CR_SPLIT_TEST : !strcmp(split, "valid") ? CR_SPLIT_VALID
             : !strcmp(split, "train") ? CR_SPLIT_TRAIN : -1;
    if (sp < 0) return cr_err(e, CR_ERR_ARG, "split: expected test, valid or train, got '%s'", split);
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_evaluate", e));
    cr_rank_config cfg;
    cr_schema ms;
    memset(&ms, 0, sizeof ms);
    cr_ranker *m = NULL;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    cJSON *root = NULL;
    cr_status s = cr_rank_config_load(&cfg, config, e);
    if (s) goto done_call;
    if (data_path) snprintf(cfg.data.path, sizeof cfg.data.path, "%s", data_path);
    if ((s = cr_ranker_load(&m, &ms, model, e))) goto done;
    if ((s = cr_ranker_pack(m, e))) goto done;
    if ((s = cr_schema_check_same(&ms, &cfg.schema, model, e))) goto done;
    if ((s = cr_dataset_load(&ds, &ms, &cfg.data, 0, e))) goto done;
    root = cJSON_CreateObject();
    cJSON *ev = NULL;
    if (!root || !cJSON_AddStringToObject(root, "model", model) ||
        !cJSON_AddStringToObject(root, "data", cfg.data.path) ||
        !cJSON_AddStringToObject(root, "split", split) ||
        !(ev = cJSON_AddObjectToObject(root, "eval"))) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((s = cr_rank_evaluate(m, &ms, &ds, sp, &cfg.eval, ev, NULL, e))) goto done;
    *metrics_json = cJSON_Print(root);
    if (!*metrics_json) s = cr_err(e, CR_ERR_NOMEM, "out of memory");
done:
    cJSON_Delete(root);
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_schema_free(&ms);
    cr_rank_config_free(&cfg);
done_call:
    cr_call_end(&k);
    return s;
}
