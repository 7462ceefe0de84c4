/*
 * test_ml_leak.c - the guard on the MovieLens study's undistilled labels:
 * every student of examples/movielens/study.yaml is fitted on its own
 * features alone (no teacher) over the Musical target built from
 * data/movielens, and every binary task the study does not distil must stay
 * below test AUC 0.95. A label the row's features compute (as `discovery`
 * is) would be scored near 1; the test shows it catches exactly that.
 */
#include "util/testutil.h"

#include "../src/data/movielens.h"
#include "../src/rank/experiment_int.h"
#include "../src/rank/fit.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUDY "examples/movielens/study.yaml"
#define LEAK_AUC 0.95
#define EPOCHS 30 /* ten times what the study trains, so under-fitting does not hide a leak */

/* The study's target, exactly as its data step builds it. */
static void build_target(const char *out) {
    cr_ml_opts o;
    cr_ml_opts_default(&o);
    o.in_dir = "data/movielens";
    o.out_path = out;
    o.include_genre = "Musical";
    o.history = CR_ML_HISTORY_ALL;
    o.protocol = CR_ML_PERIOD;
    cr_error e;
    cr_err_clear(&e);
    if (cr_ml_build(&o, NULL, &e) != CR_OK) fail_msg("cr_ml_build: %s", e.msg);
}

/* Fit cfg on data into dir for task k alone (the other heads weigh 0, so
 * they neither train nor choose the epoch kept), with early stopping on its
 * validation loss: the model fits that label as well as it can. Returns the
 * test AUC. */
static double fit_auc(cr_rank_config *cfg, const char *data, const char *dir, int k) {
    const char *task = cfg->schema.tasks[k].name;
    snprintf(cfg->data.path, sizeof cfg->data.path, "%s", data);
    cfg->train.epochs = EPOCHS;
    cfg->train.early_stopping = CR_ES_SUM_LOSS;
    cfg->train.patience = 5;
    cfg->train.opt.lr *= 8;
    for (int h = 0; h < cfg->model.n_heads; h++)
        if (cfg->model.heads[h].tower != k) cfg->model.heads[h].weight = 0.0f;
    cr_fit_opts fo = {.out_dir = dir};
    char *metrics = NULL;
    cr_error e;
    cr_err_clear(&e);
    if (cr_rank_fit(cfg, &fo, &metrics, &e) != CR_OK) fail_msg("%s: %s", cfg->path, e.msg);
    cJSON *j = cJSON_Parse(metrics);
    assert_non_null(j);
    const cJSON *tasks = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "test"), "tasks");
    const cJSON *auc =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(tasks, task), "model"), "auc");
    if (!cJSON_IsNumber(auc)) fail_msg("%s: no test AUC for task '%s'", cfg->path, task);
    double a = auc->valuedouble;
    cJSON_Delete(j);
    free(metrics);
    return a;
}

static int distilled(const study_student *s, const char *task) {
    for (int i = 0; i < s->n_tasks; i++)
        if (!strcmp(s->tasks[i].task, task)) return 1;
    return 0;
}

static void test_undistilled_labels(void **state) {
    (void)state;
    if (!cr_file_exists("data/movielens/ratings.csv")) skip();
    char dir[256], data[512], run[600];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/target.csv", dir);
    build_target(data);
    study st;
    cr_error e;
    cr_err_clear(&e);
    if (study_load(&st, STUDY, &e) != CR_OK) fail_msg("%s", e.msg);
    int checked = 0;
    for (int i = 0; i < st.n_students; i++) {
        const study_student *s = &st.students[i];
        cr_rank_config cfg;
        if (cr_rank_config_load(&cfg, s->config, &e) != CR_OK) fail_msg("%s", e.msg);
        for (int t = 0; t < cfg.schema.n_tasks; t++) {
            const cr_task *tk = &cfg.schema.tasks[t];
            if (tk->kind != CR_TASK_BINARY || distilled(s, tk->name)) continue;
            snprintf(run, sizeof run, "%s/%s_%s", dir, s->name, tk->name);
            double auc = fit_auc(&cfg, data, run, t);
            fprintf(stderr, "  %s: %s test AUC %.4f from the features alone\n", s->name, tk->name,
                    auc);
            if (!(auc < LEAK_AUC))
                fail_msg("student '%s', task '%s': test AUC %.4f from the row's features alone "
                         "(>= %.2f): its label is a function of the features", s->name, tk->name,
                         auc, LEAK_AUC);
            checked++;
        }
        cr_rank_config_free(&cfg);
    }
    assert_true(checked >= 2); /* home's genre_return and radio's like */

    /* The check can fail: the first student with discovery, a label its
     * features compute (genres against the user's past genres), in place of
     * its last task is scored near 1. */
    cr_rank_config cfg;
    if (cr_rank_config_load(&cfg, st.students[0].config, &e) != CR_OK) fail_msg("%s", e.msg);
    int last = cfg.schema.n_tasks - 1;
    cr_task *tk = &cfg.schema.tasks[last];
    snprintf(tk->label, sizeof tk->label, "discovery");
    snprintf(tk->mask, sizeof tk->mask, "click");
    snprintf(run, sizeof run, "%s/discovery", dir);
    double auc = fit_auc(&cfg, data, run, last);
    fprintf(stderr, "  %s: discovery test AUC %.4f (the known easy label)\n",
            st.students[0].name, auc);
    assert_true(auc >= LEAK_AUC);
    cr_rank_config_free(&cfg);
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undistilled_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
