/*
 * experiment_tune.c - what makes a study's control as strong as a tuned
 * model: one convergence rule for the control and every variant (the
 * study's `convergence:` section), a search of the control's learning rate
 * and width on validation (`tune:`), and the no-model predictor a
 * regression control must beat (`control_check:`). The search trains the
 * control once per setting and tune seed on the full fraction, reads only
 * the validation metrics of each run (its metrics.json has no test
 * section), and hands the best setting to every variant of the student.
 */
#include "experiment_int.h"

#include "fit.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the study file's sections ---------------------------------------------------- */

static cr_status parse_convergence(const cr_yaml_node *r, study *st, cr_error *e) {
    static const char *const keys[] = {"mode", "patience", "max_epochs", NULL};
    const cr_yaml_node *n = cr_yaml_get(r, "convergence");
    st->conv_mode = -1;
    if (!n || cr_yaml_is_null(n)) return CR_OK;
    CR_TRY(cr_yaml_expect(n, CR_YAML_MAP, "convergence", e));
    CR_TRY(cr_yaml_check_keys(n, keys, "convergence", e));
    CR_TRY(cr_yaml_enum(n, "mode", "convergence", 0, CR_ES_METRIC, cr_es_names, &st->conv_mode, e));
    CR_TRY(cr_yaml_int32(n, "patience", "convergence", 0, 3, 1, 1000, &st->conv_patience, e));
    CR_TRY(cr_yaml_int32(n, "max_epochs", "convergence", 0, 30, 1, 100000, &st->conv_max_epochs, e));
    if (st->epochs > 0)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, "convergence", "give the students' epochs either "
                           "as epochs or as convergence.max_epochs, not both");
    return CR_OK;
}

static cr_status parse_tune(const cr_yaml_node *r, study *st, cr_error *e) {
    static const char *const keys[] = {"lr", "width", "seeds", NULL};
    const cr_yaml_node *n = cr_yaml_get(r, "tune");
    if (!n || cr_yaml_is_null(n)) return CR_OK;
    CR_TRY(cr_yaml_expect(n, CR_YAML_MAP, "tune", e));
    CR_TRY(cr_yaml_check_keys(n, keys, "tune", e));
    st->tune = 1;
    CR_TRY(cr_yaml_doubles(n, "lr", "tune", 0, 1e-7, 10, st->tune_lr, CR_STUDY_MAX_TUNE,
                           &st->n_tune_lr, e));
    CR_TRY(cr_yaml_doubles(n, "width", "tune", 0, 0.05, 16, st->tune_width, CR_STUDY_MAX_TUNE,
                           &st->n_tune_width, e));
    int64_t seeds[CR_STUDY_MAX_SEEDS];
    CR_TRY(cr_yaml_ints(n, "seeds", "tune", 0, 0, INT64_MAX, seeds, CR_STUDY_MAX_SEEDS,
                        &st->n_tune_seeds, e));
    for (int i = 0; i < st->n_tune_seeds; i++) st->tune_seeds[i] = (uint64_t)seeds[i];
    /* absent lists: the config's value, the study's first seed */
    if (!st->n_tune_lr) st->tune_lr[st->n_tune_lr++] = 0;
    if (!st->n_tune_width) st->tune_width[st->n_tune_width++] = 1;
    if (!st->n_tune_seeds) st->tune_seeds[st->n_tune_seeds++] = st->seeds[0];
    return CR_OK;
}

static cr_status parse_check(const cr_yaml_node *r, study *st, cr_error *e) {
    const cr_yaml_node *n = cr_yaml_get(r, "control_check");
    if (!n || cr_yaml_is_null(n)) return CR_OK;
    CR_TRY(cr_yaml_expect(n, CR_YAML_MAP, "control_check", e));
    if (n->n > CR_MAX_TASKS)
        return cr_yaml_err(e, CR_ERR_LIMIT, n, "control_check", "at most %d tasks", CR_MAX_TASKS);
    for (int i = 0; i < n->n; i++) {
        char p[200];
        cr_yaml_path_key(p, sizeof p, "control_check", n->keys[i]->value);
        snprintf(st->cc_task[i], sizeof st->cc_task[i], "%s", n->keys[i]->value);
        CR_TRY(cr_yaml_as_str(n->items[i], p, st->cc_feature[i], sizeof st->cc_feature[i], e));
        st->n_cc++;
    }
    return CR_OK;
}

cr_status study_parse_controls(const cr_yaml_node *root, study *st, cr_error *e) {
    CR_TRY(parse_convergence(root, st, e));
    CR_TRY(parse_tune(root, st, e));
    return parse_check(root, st, e);
}

cr_status study_check_controls(const study *st, cr_error *e) {
    for (int i = 0; i < st->n_cc; i++) {
        int found = 0;
        for (int si = 0; si < st->n_students && !found; si++) {
            cr_rank_config cfg;
            CR_TRY(cr_rank_config_load(&cfg, st->students[si].config, e));
            for (int k = 0; k < cfg.schema.n_tasks; k++)
                found |= !strcmp(cfg.schema.tasks[k].name, st->cc_task[i]);
            cr_rank_config_free(&cfg);
        }
        if (!found)
            return cr_err(e, CR_ERR_CONFIG, "%s: control_check.%s: no student has a task '%s'",
                          st->path, st->cc_task[i], st->cc_task[i]);
    }
    return CR_OK;
}

/* ---- the search ---------------------------------------------------------------------- */

/* The fraction the search trains on: 1 if the study has it, else the largest. */
static int full_fraction(const study *st) {
    int best = 0;
    for (int f = 1; f < st->n_fracs; f++)
        if (st->fractions[f] > st->fractions[best]) best = f;
    return best;
}

/* The run's mean validation primary metric (AUC, R^2) over the served
 * tasks, each task's value into task_val; NaN when none is defined. Only
 * the "valid" section of metrics.json is read. */
static double valid_score(const cJSON *mj, const cr_rank_config *cfg, double *task_val) {
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(mj, "valid"), "tasks");
    double sum = 0;
    int n = 0;
    for (int k = 0; k < cfg->schema.n_tasks; k++) {
        const cr_task *t = &cfg->schema.tasks[k];
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tasks, t->name),
                                             "model"),
            t->kind == CR_TASK_BINARY ? "auc" : "r2");
        task_val[k] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        if (isfinite(task_val[k])) sum += task_val[k], n++;
    }
    return n ? sum / n : NAN;
}

/* Train (or reuse) the control of one setting and seed; its validation
 * score into *score and per task into task_val. */
static cr_status tune_run(study_ctx *c, int si, int f, uint64_t seed, const char *dir,
                          double *score, double *task_val, int *n_tasks, cr_error *e) {
    const study_student *st = &c->st.students[si];
    cr_rank_config cfg;
    CR_TRY(study_variant_config(c, si, f, CR_STUDY_NONE, seed, &cfg, e));
    char desc[600];
    int dn = snprintf(desc, sizeof desc, "tune|%s|%g|%llu|%g|%g|%d|%d|%d|%d|%lld", st->config,
                      c->st.fractions[f], (unsigned long long)seed, c->lr[si], c->width[si],
                      c->st.conv_mode, c->st.conv_patience, c->st.conv_max_epochs, c->st.epochs,
                      (long long)c->st.max_steps);
    uint64_t key = cr_hash64(desc, (size_t)dn) ^ study_text_key(st->config) * 3 ^
                   c->frac_key[f] * 5;
    char path[1500], *txt = NULL;
    size_t len;
    cr_status s = CR_OK;
    if (!study_stamp_ok(c, dir, key, "metrics.json")) {
        double t0 = cr_now();
        cr_fit_opts fo = {.out_dir = dir, .no_test = 1}; /* chosen on validation: no test rows */
        if ((s = cr_rank_fit(&cfg, &fo, NULL, e))) {
            cr_err_prefix(e, "tuning student %s (lr %g, width %g, seed %llu)", st->name,
                          cfg.train.opt.lr, c->width[si], (unsigned long long)seed);
            goto done;
        }
        study_log(c, "tune %s: trained %s in %.1f s\n", st->name, dir, cr_now() - t0);
        if ((s = study_stamp_write(dir, key, e))) goto done;
    }
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    if ((s = cr_read_file(path, &txt, &len, e))) goto done;
    cJSON *mj = cJSON_Parse(txt);
    cr_free(txt);
    *score = valid_score(mj, &cfg, task_val);
    *n_tasks = cfg.schema.n_tasks;
    cJSON_Delete(mj);
done:
    cr_rank_config_free(&cfg);
    return s;
}

cr_status study_tune(study_ctx *c, int si, cr_error *e) {
    const study *sd = &c->st;
    const study_student *st = &sd->students[si];
    c->lr[si] = 0;
    c->width[si] = 0;
    if (!sd->tune) return CR_OK;
    int f = full_fraction(sd), best = -1, NL = sd->n_tune_lr, NW = sd->n_tune_width;
    double best_score = -INFINITY;
    cr_rank_config base;
    CR_TRY(cr_rank_config_load(&base, st->config, e));
    double base_lr = base.train.opt.lr;
    char names[CR_MAX_TASKS][64];
    int K = base.schema.n_tasks;
    for (int k = 0; k < K; k++) snprintf(names[k], sizeof names[k], "%s", base.schema.tasks[k].name);
    cr_rank_config_free(&base);
    cJSON *tj = cJSON_CreateObject(), *sa = cJSON_AddArrayToObject(tj, "settings");
    if (!tj) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(tj, "fraction", sd->fractions[f]);
    cJSON_AddStringToObject(tj, "criterion", "mean validation primary metric (AUC, R2) of the "
                            "served tasks, averaged over the tune seeds");
    cJSON *seeds = cJSON_AddArrayToObject(tj, "seeds");
    for (int i = 0; i < sd->n_tune_seeds; i++)
        cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)sd->tune_seeds[i]));
    cr_status s = CR_OK;
    for (int a = 0; a < NL && !s; a++)
        for (int b = 0; b < NW && !s; b++) {
            double lr = sd->tune_lr[a] > 0 ? sd->tune_lr[a] : base_lr, w = sd->tune_width[b];
            c->lr[si] = lr;
            c->width[si] = w;
            double sum = 0, tv_sum[CR_MAX_TASKS] = {0};
            int nk = 0, ok = 0;
            cJSON *so = cJSON_CreateObject();
            cJSON_AddItemToArray(sa, so);
            cJSON_AddNumberToObject(so, "lr", lr);
            cJSON_AddNumberToObject(so, "width", w);
            cJSON *dirs = cJSON_AddArrayToObject(so, "runs");
            for (int i = 0; i < sd->n_tune_seeds && !s; i++) {
                char dir[1400], rel[400];
                snprintf(rel, sizeof rel, "runs/%s/tune/lr%g_w%g/seed%llu", st->name, lr, w,
                         (unsigned long long)sd->tune_seeds[i]);
                snprintf(dir, sizeof dir, "%s/%s", c->o->out_dir, rel);
                double score, tv[CR_MAX_TASKS];
                s = tune_run(c, si, f, sd->tune_seeds[i], dir, &score, tv, &nk, e);
                if (s) break;
                cJSON_AddItemToArray(dirs, cJSON_CreateString(rel));
                sum += score;
                ok += isfinite(score);
                for (int k = 0; k < nk && k < K; k++) tv_sum[k] += tv[k];
            }
            if (s) break;
            double mean = ok == sd->n_tune_seeds ? sum / ok : NAN;
            cJSON *vo = cJSON_AddObjectToObject(so, "valid");
            for (int k = 0; k < K; k++)
                cJSON_AddNumberToObject(vo, names[k], tv_sum[k] / sd->n_tune_seeds);
            cJSON_AddNumberToObject(so, "score", mean);
            study_log(c, "tune %s: lr %g, width %g: validation %.4f\n", st->name, lr, w, mean);
            /* strictly better: a tie keeps the earlier (listed first) setting */
            if (isfinite(mean) && mean > best_score) {
                best_score = mean;
                best = a * NW + b;
            }
        }
    if (!s && best < 0)
        s = cr_err(e, CR_ERR_CONFIG, "%s: tuning student %s: no setting has a defined "
                   "validation metric", sd->path, st->name);
    if (s) {
        cJSON_Delete(tj);
        return s;
    }
    c->lr[si] = sd->tune_lr[best / NW] > 0 ? sd->tune_lr[best / NW] : base_lr;
    c->width[si] = sd->tune_width[best % NW];
    cJSON *pk = cJSON_AddObjectToObject(tj, "pick");
    cJSON_AddNumberToObject(pk, "lr", c->lr[si]);
    cJSON_AddNumberToObject(pk, "width", c->width[si]);
    cJSON_AddNumberToObject(pk, "score", best_score);
    study_log(c, "tune %s: picked lr %g, width %g (validation %.4f)\n", st->name, c->lr[si],
              c->width[si], best_score);
    cJSON_Delete(c->tune_json[si]);
    c->tune_json[si] = tj;
    return CR_OK;
}

/* The tuned setting on a loaded config: the learning rate, and every hidden
 * layer (bottom, experts, towers) scaled by the width, at least 1 unit. */
void study_apply_setting(const study_ctx *c, int si, cr_rank_config *cfg) {
    if (c->lr[si] > 0) cfg->train.opt.lr = (float)c->lr[si];
    double w = c->width[si];
    if (!(w > 0) || w == 1) return;
    cr_model_cfg *m = &cfg->model;
    int *lists[3] = {m->bottom_layers, m->expert_layers, m->tower_layers};
    int ns[3] = {m->n_bottom, m->n_expert_layers, m->n_tower};
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < ns[l]; i++) {
            long v = lround(lists[l][i] * w);
            lists[l][i] = v < 1 ? 1 : (int)v;
        }
}
