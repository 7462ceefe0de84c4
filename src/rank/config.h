/*
 * config.h - one ranking job's configuration: the YAML file's data,
 * features and tasks (parsed by data/config.c) plus its model, train and
 * eval sections (parsed here), and the model config's JSON form that a
 * checkpoint carries in its __metadata__.
 */
#ifndef CR_RANK_CONFIG_H
#define CR_RANK_CONFIG_H

#include "../core/yaml.h"
#include "../data/config.h"
#include "../train/train.h"
#include "distill_cfg.h"
#include "ranker.h"

typedef struct cr_eval_cfg {
    int k;             /* NDCG@k / Recall@k cut-off (default 10) */
    int baseline;      /* also evaluate the popularity baseline (default 1) */
    char popularity_feature[64]; /* feature whose raw value ranks the baseline */
} cr_eval_cfg;

typedef struct cr_rank_config {
    char         path[1024];
    cr_data_cfg  data;
    cr_schema    schema;
    cr_model_cfg model;
    cr_train_cfg train;
    cr_eval_cfg  eval;
    cr_distill_cfg distill; /* already applied to model (heads) and data (extra) */
} cr_rank_config;

/* Load and validate a whole config file. On failure everything is freed. */
cr_status cr_rank_config_load(cr_rank_config *c, const char *path, cr_error *e);
/* Parse the model/train/eval sections of an already loaded tree (the
 * schema's tasks must be parsed first: default heads come from them). */
cr_status cr_model_cfg_parse(const cr_yaml_node *root, const cr_schema *s, cr_model_cfg *m,
                             cr_error *e);
cr_status cr_train_cfg_parse(const cr_yaml_node *root, cr_train_cfg *t, cr_error *e);
cr_status cr_eval_cfg_parse(const cr_yaml_node *root, cr_eval_cfg *v, cr_error *e);
void      cr_rank_config_free(cr_rank_config *c);

/* The model config as JSON (heads included) and back, for checkpoints.
 * free() the string. */
cr_status cr_model_cfg_to_json(const cr_model_cfg *m, char **json, cr_error *e);
cr_status cr_model_cfg_from_json(cr_model_cfg *m, const char *json, cr_error *e);

extern const char *const cr_arch_names[];         /* shared_bottom, mmoe, ple */
extern const char *const cr_loss_weighting_names[]; /* fixed, uncertainty */
extern const char *const cr_es_names[];             /* sum_loss, per_task, none, metric */

/* Write the config as `crossrec train` saves it beside the model
 * (OUT/config.yaml): the file at c->path re-emitted with data.path made
 * absolute, so the copy works from wherever it lies, and the model, train and
 * eval sections written out in full from c, every default filled in. */
cr_status cr_rank_config_save(const cr_rank_config *c, const char *out_path, cr_error *e);

#endif /* CR_RANK_CONFIG_H */
