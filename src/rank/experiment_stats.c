/*
 * experiment_stats.c - what a study measures: each run's test predictions
 * and metrics, the teacher's zero-shot metrics on the same rows, agreement
 * with the teacher, and the comparisons with the control (intervals over
 * seeds, paired t-tests, a paired bootstrap over test requests), gathered
 * into results.json. Every number comes from the same cr_eval_task the
 * trainer's metrics.json uses.
 */
#include "experiment_int.h"

#include "checkpoint.h"
#include "evaluate.h"
#include "stats.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const metric_names[N_METRIC] = {"auc", "gauc", "logloss", "calibration",
                                                   "ndcg", "r2", "rmse"};
static const int bin_metrics[] = {M_AUC, M_GAUC, M_LOGLOSS, M_CALIB, M_NDCG};
static const int reg_metrics[] = {M_R2, M_RMSE, M_NDCG};

void student_res_free(student_res *r) {
    free(r->label); free(r->mask); free(r->user); free(r->group); free(r->slice);
    free(r->tpred); free(r->pred); free(r->val); free(r->agree); free(r->steps);
    free(r->secs); free(r->dir);
    memset(r, 0, sizeof *r);
}

static void metrics_to(const cr_task_metrics *m, double *out) {
    out[M_AUC] = m->auc;
    out[M_GAUC] = m->gauc;
    out[M_LOGLOSS] = m->logloss;
    out[M_CALIB] = m->calibration;
    out[M_NDCG] = m->k > 0 ? m->ndcg : NAN;
    out[M_R2] = m->r2;
    out[M_RMSE] = m->rmse;
}

/* Metrics of one task's predictions on the test rows, overall and on the slice. */
static cr_status eval_pair(const student_res *r, int k, const float *p, cr_task_metrics out[2],
                           cr_error *e) {
    for (int q = 0; q < 2; q++) {
        cr_task_metrics_init(&out[q]);
        if (q == 1 && !r->slice) continue;
        cr_eval_input in = {p, r->label + (size_t)k * (size_t)r->n, r->mask + (size_t)k * (size_t)r->n,
                            q ? r->slice : NULL, r->user, r->group, r->n, r->bin[k], r->rk[k]};
        CR_TRY(cr_eval_task(&in, &out[q], e));
    }
    return CR_OK;
}

/* The control_check's no-model predictor of a regression task: y = a + b x
 * on one numeric feature x (as the student reads it: transformed, empty
 * cells at their default), a and b by least squares on the training rows
 * under the task's mask; its R2 on the test rows. */
static cr_status nomodel_fits(const study_ctx *c, const cr_rank_config *cfg, const cr_dataset *ds,
                              const uint32_t *test_rows, student_res *r, cr_error *e) {
    const cr_schema *sc = &cfg->schema;
    for (int k = 0; k < r->K; k++) {
        r->nomodel_r2[k] = NAN;
        r->nomodel[k][0] = 0;
        int i = 0;
        while (i < c->st.n_cc && strcmp(c->st.cc_task[i], r->task[k])) i++;
        if (i == c->st.n_cc) continue;
        if (r->bin[k])
            return cr_err(e, CR_ERR_CONFIG, "%s: control_check.%s: a binary task's check is the "
                          "popularity baseline (eval.popularity_feature); name a feature for "
                          "regression tasks only", c->st.path, r->task[k]);
        int slot = -1;
        for (int d = 0; d < ds->n_dense; d++)
            if (!strcmp(sc->features[sc->dense_feat[d]].name, c->st.cc_feature[i])) slot = d;
        if (slot < 0)
            return cr_err(e, CR_ERR_CONFIG, "%s: control_check.%s: '%s' is not a numeric feature "
                          "of %s", c->st.path, r->task[k], c->st.cc_feature[i], cfg->path);
        double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int64_t row = 0; row < ds->n; row++) {
            float mk = ds->mask[(size_t)k * (size_t)ds->n + (size_t)row];
            if (ds->split[row] != CR_SPLIT_TRAIN || !(mk > 0)) continue;
            double x = ds->dense[(size_t)row * (size_t)ds->n_dense + (size_t)slot];
            double y = ds->label[(size_t)k * (size_t)ds->n + (size_t)row];
            n++, sx += x, sy += y, sxx += x * x, sxy += x * y;
        }
        double var = sxx - sx * sx / (n > 0 ? n : 1);
        double b = n > 1 && var > 0 ? (sxy - sx * sy / n) / var : 0, a = n > 0 ? (sy - b * sx) / n : 0;
        float *p = malloc((size_t)r->n * sizeof(float));
        if (!p) return cr_err(e, CR_ERR_NOMEM, "out of memory");
        for (int64_t j = 0; j < r->n; j++)
            p[j] = (float)(a + b * ds->dense[(size_t)test_rows[j] * (size_t)ds->n_dense + (size_t)slot]);
        cr_eval_input in = {p, r->label + (size_t)k * (size_t)r->n, r->mask + (size_t)k * (size_t)r->n,
                            NULL, NULL, NULL, r->n, 0, 0};
        cr_task_metrics tm;
        cr_status s = cr_eval_task(&in, &tm, e);
        free(p);
        if (s) return s;
        r->nomodel_r2[k] = tm.r2;
        snprintf(r->nomodel[k], sizeof r->nomodel[k], "%s", c->st.cc_feature[i]);
    }
    return CR_OK;
}

cr_status study_reference(study_ctx *c, int si, student_res *r, cr_error *e) {
    const study_student *st = &c->st.students[si];
    cr_rank_config cfg;
    CR_TRY(study_variant_config(c, si, 0, CR_STUDY_NONE, c->st.seeds[0], &cfg, e));
    int K = cfg.schema.n_tasks;
    memset(r, 0, sizeof *r);
    r->F = c->st.n_fracs;
    r->V = st->n_tech;
    r->S = c->st.n_seeds;
    r->K = K;
    /* the teacher's columns ride along as extra columns */
    int tcol[CR_MAX_TASKS];
    cr_status s = CR_OK;
    for (int k = 0; k < K; k++) {
        snprintf(r->task[k], sizeof r->task[k], "%s", cfg.schema.tasks[k].name);
        r->bin[k] = cfg.schema.tasks[k].kind == CR_TASK_BINARY;
        r->rk[k] = cfg.schema.tasks[k].mask[0] ? 0 : cfg.eval.k;
        r->teacher[k] = tcol[k] = -1;
        for (int i = 0; i < st->n_tasks; i++)
            if (!strcmp(st->tasks[i].task, r->task[k])) r->teacher[k] = i;
        if (r->teacher[k] < 0) continue;
        if (cfg.data.n_extra >= 16) {
            s = cr_err(e, CR_ERR_LIMIT, "student %s: too many extra columns", st->name);
            goto fail_cfg;
        }
        snprintf(cfg.data.extra[cfg.data.n_extra], 64, "%s", st->tasks[r->teacher[k]].column);
        tcol[k] = cfg.data.n_extra++;
    }
    for (int i = 0; i < st->n_tasks; i++) {
        int found = 0;
        for (int k = 0; k < K; k++) found |= r->teacher[k] == i;
        if (!found) {
            s = cr_err(e, CR_ERR_CONFIG, "%s: students[%d].distill names task '%s', which %s "
                       "does not have", c->st.path, si, st->tasks[i].task, st->config);
            goto fail_cfg;
        }
    }
    int qs = -1;
    for (int q = 0; q < cfg.data.n_slices; q++)
        if (!strcmp(cfg.data.slices[q], c->st.slice)) qs = q;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    uint32_t *rows = NULL;
    if (c->st.slice[0] && qs < 0) {
        s = cr_err(e, CR_ERR_CONFIG, "%s: slice '%s' is not among data.slices of %s (student "
                   "%s); name one of those, or leave slice out for none", c->st.path,
                   c->st.slice, st->config, st->name);
        goto fail_cfg;
    }
    if ((s = cr_dataset_load(&ds, &cfg.schema, &cfg.data, 1, e))) goto fail;
    if ((s = cr_dataset_rows(&ds, CR_SPLIT_TEST, &rows, &r->n, e))) goto fail;
    if (r->n == 0) {
        s = cr_err(e, CR_ERR_CONFIG, "student %s: the target data has no test rows", st->name);
        goto fail;
    }
    size_t n = (size_t)r->n, Kn = (size_t)K * n, runs = (size_t)r->F * (size_t)r->V * (size_t)r->S;
    r->label = malloc(Kn * sizeof(float));
    r->mask = malloc(Kn * sizeof(float));
    r->tpred = calloc(Kn, sizeof(float));
    r->user = malloc(n * sizeof(int64_t));
    r->group = malloc(n * sizeof(int64_t));
    r->slice = qs >= 0 ? malloc(n) : NULL;
    r->pred = malloc(runs * Kn * sizeof(float));
    r->val = malloc(runs * (size_t)K * 2 * N_METRIC * sizeof(double));
    r->agree = malloc(runs * (size_t)K * sizeof(double));
    r->steps = malloc(runs * sizeof(double));
    r->secs = malloc(runs * sizeof(double));
    r->dir = calloc(runs, sizeof *r->dir);
    if (!r->label || !r->mask || !r->tpred || !r->user || !r->group || (qs >= 0 && !r->slice) ||
        !r->pred || !r->val || !r->agree || !r->steps || !r->secs || !r->dir) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory for student %s's results", st->name);
        goto fail;
    }
    for (size_t i = 0; i < runs * (size_t)K * 2 * N_METRIC; i++) r->val[i] = NAN;
    for (size_t i = 0; i < runs * (size_t)K; i++) r->agree[i] = NAN;
    for (size_t i = 0; i < n; i++) {
        uint32_t row = rows[i];
        r->user[i] = ds.user[row];
        r->group[i] = ds.group[row];
        if (r->slice) r->slice[i] = ds.slices[(size_t)qs * (size_t)ds.n + row];
        for (int k = 0; k < K; k++) {
            r->label[(size_t)k * n + i] = ds.label[(size_t)k * (size_t)ds.n + row];
            r->mask[(size_t)k * n + i] = ds.mask[(size_t)k * (size_t)ds.n + row];
            if (tcol[k] >= 0)
                r->tpred[(size_t)k * n + i] = ds.extra[(size_t)tcol[k] * (size_t)ds.n + row];
        }
    }
    if ((s = nomodel_fits(c, &cfg, &ds, rows, r, e))) goto fail;
    /* what an AUC or R2 rests on: the positives (binary) or rows (regression)
     * each task has on the test rows and on the slice */
    for (int k = 0; k < K; k++)
        for (size_t i = 0; i < n; i++) {
            const float y = r->label[(size_t)k * n + i];
            if (!(r->mask[(size_t)k * n + i] > 0) || (r->bin[k] && !(y > 0.5f))) continue;
            r->count[k][0]++;
            if (r->slice && r->slice[i]) r->count[k][1]++;
        }
    for (int k = 0; k < K; k++)
        if (r->teacher[k] >= 0) {
            /* a binary task's teacher column must be a probability to be scored as one */
            const float *tp = r->tpred + (size_t)k * n;
            int ok = 1;
            for (size_t i = 0; i < n && r->bin[k]; i++) ok &= tp[i] >= 0 && tp[i] <= 1;
            if (!ok) {
                s = cr_err(e, CR_ERR_CONFIG, "student %s: teacher column '%s' for binary task "
                           "'%s' is not a probability in [0, 1]", st->name,
                           st->tasks[r->teacher[k]].column, r->task[k]);
                goto fail;
            }
            if ((s = eval_pair(r, k, tp, r->tm[k], e))) goto fail;
        }
fail:
    free(rows);
    cr_dataset_free(&ds);
fail_cfg:
    cr_rank_config_free(&cfg);
    return s;
}

static double json_num(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

cr_status study_score_run(study_ctx *c, int si, int f, int v, int sd, const cr_rank_config *cfg,
                          const char *dir, student_res *r, cr_error *e) {
    char path[1500];
    size_t idx = RUN_IDX(r, f, v, sd), n = (size_t)r->n;
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    char *txt = NULL;
    size_t len;
    CR_TRY(cr_read_file(path, &txt, &len, e));
    cJSON *mj = cJSON_Parse(txt);
    cr_free(txt);
    r->steps[idx] = json_num(mj, "train", "steps");
    r->secs[idx] = json_num(mj, "train", "seconds");
    /* the popularity baseline on the same test rows (eval.popularity_feature) */
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(mj, "test"), "tasks");
    for (int k = 0; k < r->K; k++)
        r->pop_auc[k] = json_num(cJSON_GetObjectItemCaseSensitive(tasks, r->task[k]),
                                 "baseline_popularity", "auc");
    cJSON_Delete(mj);

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_ranker *m = NULL;
    cr_schema ms;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    memset(&ms, 0, sizeof ms);
    uint32_t *rows = NULL;
    int64_t nt = 0;
    float *pred = NULL;
    cr_status s = cr_ranker_load(&m, &ms, path, e);
    if (s) return s;
    if ((s = cr_dataset_load(&ds, &ms, &cfg->data, 0, e))) goto done;
    if ((s = cr_dataset_rows(&ds, CR_SPLIT_TEST, &rows, &nt, e))) goto done;
    if (nt != r->n) {
        s = cr_err(e, CR_ERR_INTERNAL, "%s: %lld test rows, the reference has %lld", dir,
                   (long long)nt, (long long)r->n);
        goto done;
    }
    pred = malloc((size_t)m->cfg.n_heads * n * sizeof(float));
    if (!pred) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory scoring %s", dir);
        goto done;
    }
    if ((s = cr_rank_predict_rows(m, &ds, rows, nt, 1024, pred, NULL, e))) goto done;
    for (int k = 0; k < r->K; k++) {
        int h = cr_rank_task_head(m, k);
        if (h < 0) {
            s = cr_err(e, CR_ERR_MISMATCH, "%s: no served head for task '%s'", path, r->task[k]);
            goto done;
        }
        float *dst = r->pred + (idx * (size_t)r->K + (size_t)k) * n;
        memcpy(dst, pred + (size_t)h * n, n * sizeof(float));
        cr_task_metrics tm[2];
        if ((s = eval_pair(r, k, dst, tm, e))) goto done;
        double *val = r->val + ((idx * (size_t)r->K + (size_t)k) * 2) * N_METRIC;
        metrics_to(&tm[0], val);
        metrics_to(&tm[1], val + N_METRIC);
        if (r->teacher[k] >= 0)
            r->agree[idx * (size_t)r->K + (size_t)k] = cr_pearson(dst, r->tpred + (size_t)k * n, NULL, r->n);
    }
done:
    free(pred);
    free(rows);
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_schema_free(&ms);
    return s;
}

/* ---- comparisons ---------------------------------------------------------------- */

typedef struct boot_ctx {
    const student_res *r;
    int f, v, k, bin;
    const float *mask;  /* the task's mask, times the slice for slice comparisons */
    float *scratch;
} boot_ctx;

static double primary(const boot_ctx *b, const float *p, const float *w) {
    const student_res *r = b->r;
    const float *y = r->label + (size_t)b->k * (size_t)r->n;
    return b->bin ? cr_weighted_auc(p, y, b->mask, w, r->n, b->scratch)
                  : cr_weighted_r2(p, y, b->mask, w, r->n);
}

/* Seed-averaged difference from the control on one resample of requests. */
static double boot_diff(void *ctx, const float *w) {
    const boot_ctx *b = ctx;
    const student_res *r = b->r;
    double s = 0;
    for (int sd = 0; sd < r->S; sd++) {
        const float *pv = r->pred + (RUN_IDX(r, b->f, b->v, sd) * (size_t)r->K + (size_t)b->k) * (size_t)r->n;
        const float *pc = r->pred + (RUN_IDX(r, b->f, 0, sd) * (size_t)r->K + (size_t)b->k) * (size_t)r->n;
        s += primary(b, pv, w) - primary(b, pc, w);
    }
    return s / r->S;
}

static void add_ci(cJSON *o, const char *name, const double *x, int n, double level) {
    cr_mean_ci ci;
    cr_mean_ci_of(x, n, level, &ci);
    cJSON *m = cJSON_AddObjectToObject(o, name);
    cJSON *vals = cJSON_AddArrayToObject(m, "values");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(vals, cJSON_CreateNumber(x[i]));
    cJSON_AddNumberToObject(m, "mean", ci.mean);
    cJSON_AddNumberToObject(m, "lo", ci.lo);
    cJSON_AddNumberToObject(m, "hi", ci.hi);
}

static void add_boot(cJSON *o, const char *name, const cr_boot_ci *b) {
    cJSON *x = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(x, "estimate", b->estimate);
    cJSON_AddNumberToObject(x, "lo", b->lo);
    cJSON_AddNumberToObject(x, "hi", b->hi);
    cJSON_AddNumberToObject(x, "se", b->se);
    cJSON_AddNumberToObject(x, "resamples", b->B);
    cJSON_AddNumberToObject(x, "valid", b->valid);
    cJSON_AddNumberToObject(x, "requests", (double)b->groups);
}

static void add_t(cJSON *o, const cr_paired_t *p, double level) {
    cJSON_AddNumberToObject(o, "mean_diff", p->mean_diff);
    cJSON_AddNumberToObject(o, "lo", p->lo);
    cJSON_AddNumberToObject(o, "hi", p->hi);
    cJSON_AddNumberToObject(o, "t", p->t);
    cJSON_AddNumberToObject(o, "df", p->df);
    cJSON_AddNumberToObject(o, "p", p->p);
    cJSON_AddStringToObject(o, "verdict", cr_verdict_name(cr_paired_verdict(p, level)));
}

/* A part (q 0: every test row, 1: the slice) with fewer positives (binary)
 * or rows (regression) than min_positives reports no metric: an AUC of 1.0
 * on two positives says nothing. The count is written either way. */
static int add_count(const study_ctx *c, const student_res *r, int k, int q, cJSON *o) {
    int few = r->count[k][q] < c->st.min_positives;
    cJSON_AddNumberToObject(o, r->bin[k] ? "positives" : "rows", (double)r->count[k][q]);
    cJSON_AddBoolToObject(o, "too_few", few);
    return few;
}

/* A control that a model-free predictor beats cannot show what distillation
 * adds: its mean over seeds against the popularity baseline (binary tasks,
 * AUC) or the constant predictor (regression, R2 0) and, when the study
 * names one, the no-model linear fit on one feature (regression). */
static void control_check(const student_res *r, int f, int k, cJSON *t) {
    double sum = 0, base = r->bin[k] ? r->pop_auc[k] : 0.0;
    int m = r->bin[k] ? M_AUC : M_R2, n = 0;
    for (int sd = 0; sd < r->S; sd++) {
        double x = r->val[((RUN_IDX(r, f, 0, sd) * (size_t)r->K + (size_t)k) * 2) * N_METRIC + (size_t)m];
        if (isfinite(x)) sum += x, n++;
    }
    if (!n || !isfinite(base)) return; /* no metric, or no popularity feature */
    cJSON *o = cJSON_AddObjectToObject(t, "control_check");
    int pass = sum / n > base;
    cJSON_AddStringToObject(o, "metric", metric_names[m]);
    cJSON_AddStringToObject(o, "baseline", r->bin[k] ? "popularity" : "constant");
    cJSON_AddNumberToObject(o, "baseline_value", base);
    cJSON_AddNumberToObject(o, "control", sum / n);
    if (!r->bin[k] && r->nomodel[k][0]) {
        cJSON *nm = cJSON_AddObjectToObject(o, "no_model");
        cJSON_AddStringToObject(nm, "feature", r->nomodel[k]);
        cJSON_AddStringToObject(nm, "fit", "least squares on the training rows");
        cJSON_AddNumberToObject(nm, "value", r->nomodel_r2[k]);
        cJSON_AddBoolToObject(nm, "passes", sum / n > r->nomodel_r2[k]);
        pass &= sum / n > r->nomodel_r2[k];
    }
    cJSON_AddBoolToObject(o, "passes", pass);
}

static cr_status task_json(study_ctx *c, const student_res *r, int f, int v, int k, cJSON *t,
                           float *scratch, float *mslice, cr_error *e) {
    int S = r->S, pm = r->bin[k] ? M_AUC : M_R2;
    const int *ms = r->bin[k] ? bin_metrics : reg_metrics;
    int nm = r->bin[k] ? 5 : 3;
    double x[CR_STUDY_MAX_SEEDS], y[CR_STUDY_MAX_SEEDS];
    const char *part[2] = {"metrics", "slice"};
    for (int q = 0; q < 2; q++) {
        if (q && !r->slice) continue;
        cJSON *mo = cJSON_AddObjectToObject(t, part[q]);
        if (add_count(c, r, k, q, mo)) continue;
        for (int j = 0; j < nm; j++) {
            for (int sd = 0; sd < S; sd++)
                x[sd] = r->val[((RUN_IDX(r, f, v, sd) * (size_t)r->K + (size_t)k) * 2 + (size_t)q) * N_METRIC + (size_t)ms[j]];
            add_ci(mo, metric_names[ms[j]], x, S, c->st.level);
        }
    }
    if (r->teacher[k] >= 0) {
        for (int sd = 0; sd < S; sd++) x[sd] = r->agree[RUN_IDX(r, f, v, sd) * (size_t)r->K + (size_t)k];
        add_ci(t, "agreement", x, S, c->st.level);
    }
    if (v == 0) {
        control_check(r, f, k, t);
        return CR_OK;
    }
    cJSON *vc = cJSON_AddObjectToObject(t, "vs_control");
    cJSON_AddStringToObject(vc, "metric", metric_names[pm]);
    for (int q = 0; q < 2; q++) {
        if (q && !r->slice) continue;
        cJSON *side = q ? cJSON_AddObjectToObject(vc, "slice") : vc;
        if (add_count(c, r, k, q, side)) continue;
        cr_paired_t pt;
        for (int sd = 0; sd < S; sd++) {
            size_t b = ((size_t)k * 2 + (size_t)q) * N_METRIC + (size_t)pm;
            x[sd] = r->val[RUN_IDX(r, f, v, sd) * (size_t)r->K * 2 * N_METRIC + b];
            y[sd] = r->val[RUN_IDX(r, f, 0, sd) * (size_t)r->K * 2 * N_METRIC + b];
        }
        cr_paired_t_test(x, y, S, c->st.level, &pt);
        add_t(side, &pt, c->st.level);
        if (c->st.resamples > 0) {
            const float *mk = r->mask + (size_t)k * (size_t)r->n;
            if (q) {
                for (int64_t i = 0; i < r->n; i++) mslice[i] = mk[i] * (float)(r->slice[i] != 0);
                mk = mslice;
            }
            boot_ctx b = {r, f, v, k, r->bin[k], mk, scratch};
            cr_boot_ci bc;
            CR_TRY(cr_bootstrap_groups(r->group, r->n, c->st.resamples, c->st.boot_seed, c->st.level,
                                       boot_diff, &b, &bc, e));
            add_boot(side, "bootstrap", &bc);
        }
    }
    /* every other metric: the paired t-test only */
    if (r->count[k][0] < c->st.min_positives) return CR_OK;
    cJSON *all = cJSON_AddObjectToObject(vc, "metrics");
    for (int j = 0; j < nm; j++) {
        cr_paired_t pt;
        for (int sd = 0; sd < S; sd++) {
            size_t b = ((size_t)k * 2) * N_METRIC + (size_t)ms[j];
            x[sd] = r->val[RUN_IDX(r, f, v, sd) * (size_t)r->K * 2 * N_METRIC + b];
            y[sd] = r->val[RUN_IDX(r, f, 0, sd) * (size_t)r->K * 2 * N_METRIC + b];
        }
        cr_paired_t_test(x, y, S, c->st.level, &pt);
        add_t(cJSON_AddObjectToObject(all, metric_names[ms[j]]), &pt, c->st.level);
    }
    return CR_OK;
}

static void teacher_json(const study_ctx *c, const student_res *r, int k,
                         const study_student *st, cJSON *o) {
    cJSON *t = cJSON_AddObjectToObject(o, r->task[k]);
    cJSON_AddStringToObject(t, "column", st->tasks[r->teacher[k]].column);
    const int *ms = r->bin[k] ? bin_metrics : reg_metrics;
    int nm = r->bin[k] ? 5 : 3;
    static const char *const part[2] = {"metrics", "slice"};
    for (int q = 0; q < 2; q++) {
        if (q && !r->slice) continue;
        double v[N_METRIC];
        metrics_to(&r->tm[k][q], v);
        cJSON *m = cJSON_AddObjectToObject(t, part[q]);
        if (add_count(c, r, k, q, m)) continue;
        for (int j = 0; j < nm; j++) cJSON_AddNumberToObject(m, metric_names[ms[j]], v[ms[j]]);
    }
}

cr_status study_results_json(study_ctx *c, student_res *res, double t0, char **out,
                             cr_error *e) {
    const study *st = &c->st;
    double tc = cr_now();
    int64_t n_tasks = 0, n_done = 0;
    for (int si = 0; si < st->n_students; si++) n_tasks += (int64_t)res[si].F * res[si].V * res[si].K;
    cr_meter pm;
    cr_meter_start(&pm, c->o->progress, "comparing", n_tasks, "tasks");
    cJSON *root = cJSON_CreateObject();
    float *scratch = NULL, *mslice = NULL;
    cr_status s = CR_OK;
    if (!root) return cr_err(e, CR_ERR_NOMEM, "out of memory writing results");
    cJSON_AddStringToObject(root, "format", "crossrec.experiment");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "study", st->path);
    cJSON *secs = cJSON_AddNumberToObject(root, "seconds", 0); /* set at the end */
    cJSON *stages = cJSON_AddObjectToObject(root, "stage_seconds");
    cJSON *sa = cJSON_AddArrayToObject(root, "seeds");
    for (int i = 0; i < st->n_seeds; i++) cJSON_AddItemToArray(sa, cJSON_CreateNumber((double)st->seeds[i]));
    cJSON *fa = cJSON_AddArrayToObject(root, "fractions");
    for (int i = 0; i < st->n_fracs; i++) cJSON_AddItemToArray(fa, cJSON_CreateNumber(st->fractions[i]));
    if (st->slice[0]) cJSON_AddStringToObject(root, "slice", st->slice);
    else cJSON_AddNullToObject(root, "slice");
    cJSON_AddNumberToObject(root, "min_positives", st->min_positives);
    cJSON_AddNumberToObject(root, "level", st->level);
    cJSON *cv = cJSON_AddObjectToObject(root, "convergence");
    if (st->conv_mode >= 0) {
        cJSON_AddStringToObject(cv, "mode", cr_es_names[st->conv_mode]);
        cJSON_AddNumberToObject(cv, "patience", st->conv_patience);
        cJSON_AddNumberToObject(cv, "max_epochs", st->conv_max_epochs);
    } else {
        cJSON_AddStringToObject(cv, "mode", "each config's own");
    }
    cJSON *bo = cJSON_AddObjectToObject(root, "bootstrap");
    cJSON_AddNumberToObject(bo, "resamples", st->resamples);
    cJSON_AddNumberToObject(bo, "seed", (double)st->boot_seed);
    cJSON_AddStringToObject(bo, "unit", "test request");
    cJSON *te = cJSON_AddObjectToObject(root, "teacher");
    cJSON_AddStringToObject(te, "model", c->teacher_path);
    cJSON_AddBoolToObject(te, "trained", c->teacher_trained);
    if (c->teacher_trained) cJSON_AddStringToObject(te, "config", st->teacher_config);
    cJSON_AddStringToObject(te, "map", st->map);
    if (c->coverage) {
        cJSON_AddItemToObject(te, "coverage", c->coverage);
        c->coverage = NULL; /* now owned by root */
    }
    cJSON *da = cJSON_AddObjectToObject(root, "data");
    cJSON_AddStringToObject(da, "target", st->target);
    cJSON_AddStringToObject(da, "labelled", c->labelled);
    cJSON_AddNumberToObject(da, "train_rows", (double)c->split_rows[0]);
    cJSON_AddNumberToObject(da, "valid_rows", (double)c->split_rows[1]);
    cJSON_AddNumberToObject(da, "test_rows", (double)c->split_rows[2]);
    cJSON *studs = cJSON_AddArrayToObject(root, "students");
    for (int si = 0; si < st->n_students && !s; si++) {
        const study_student *ss = &st->students[si];
        student_res *r = &res[si];
        free(scratch);
        free(mslice);
        scratch = malloc((size_t)r->n * sizeof(float));
        mslice = malloc((size_t)r->n * sizeof(float));
        if (!scratch || !mslice) {
            s = cr_err(e, CR_ERR_NOMEM, "out of memory comparing student %s", ss->name);
            break;
        }
        cJSON *so = cJSON_CreateObject();
        cJSON_AddItemToArray(studs, so);
        cJSON_AddStringToObject(so, "name", ss->name);
        cJSON_AddStringToObject(so, "config", ss->config);
        cJSON_AddNumberToObject(so, "test_rows", (double)r->n);
        if (c->tune_json[si]) { /* the control's search, now owned by root */
            cJSON_AddItemToObject(so, "tune", c->tune_json[si]);
            c->tune_json[si] = NULL;
        }
        cJSON *ta = cJSON_AddArrayToObject(so, "tasks");
        for (int k = 0; k < r->K; k++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "name", r->task[k]);
            cJSON_AddStringToObject(t, "kind", r->bin[k] ? "binary" : "regression");
            cJSON_AddStringToObject(t, "primary", r->bin[k] ? "auc" : "r2");
            if (r->teacher[k] >= 0) cJSON_AddStringToObject(t, "teacher_column", ss->tasks[r->teacher[k]].column);
            else cJSON_AddNullToObject(t, "teacher_column");
            cJSON_AddItemToArray(ta, t);
        }
        cJSON *nh = cJSON_AddArrayToObject(so, "new_heads");
        for (int i = 0; i < ss->n_new; i++) {
            cJSON *h = cJSON_CreateObject();
            cJSON_AddStringToObject(h, "name", ss->new_heads[i].name);
            cJSON_AddStringToObject(h, "column", ss->new_heads[i].column);
            cJSON_AddStringToObject(h, "tower", ss->new_heads[i].tower);
            cJSON_AddItemToArray(nh, h);
        }
        cJSON *tz = cJSON_AddObjectToObject(so, "teacher_zero_shot");
        for (int k = 0; k < r->K; k++)
            if (r->teacher[k] >= 0) teacher_json(c, r, k, ss, tz);
        cJSON *fr = cJSON_AddArrayToObject(so, "fractions");
        for (int f = 0; f < r->F && !s; f++) {
            cJSON *fo = cJSON_CreateObject();
            cJSON_AddItemToArray(fr, fo);
            cJSON_AddNumberToObject(fo, "fraction", st->fractions[f]);
            cJSON_AddNumberToObject(fo, "train_rows", (double)c->train_rows[f]);
            cJSON *va = cJSON_AddArrayToObject(fo, "variants");
            for (int v = 0; v < r->V && !s; v++) {
                cJSON *vo = cJSON_CreateObject();
                cJSON_AddItemToArray(va, vo);
                cJSON_AddStringToObject(vo, "technique", cr_study_tech_names[ss->tech[v]]);
                cJSON_AddBoolToObject(vo, "control", v == 0);
                cJSON *runs = cJSON_AddArrayToObject(vo, "runs");
                for (int sd = 0; sd < r->S; sd++) {
                    size_t idx = RUN_IDX(r, f, v, sd);
                    cJSON *ro = cJSON_CreateObject();
                    cJSON_AddNumberToObject(ro, "seed", (double)st->seeds[sd]);
                    cJSON_AddStringToObject(ro, "dir", r->dir[idx]);
                    cJSON_AddNumberToObject(ro, "steps", r->steps[idx]);
                    cJSON_AddNumberToObject(ro, "seconds", r->secs[idx]);
                    cJSON_AddItemToArray(runs, ro);
                }
                cJSON *to = cJSON_AddObjectToObject(vo, "tasks");
                for (int k = 0; k < r->K && !s; k++) {
                    s = task_json(c, r, f, v, k, cJSON_AddObjectToObject(to, r->task[k]), scratch,
                                  mslice, e);
                    n_done++;
                    cr_meter_update(&pm, n_done, (double)n_done, NULL, NULL, 0);
                }
            }
        }
    }
    free(scratch);
    free(mslice);
    if (pm.printed) cr_meter_update(&pm, n_done, (double)n_done, NULL, NULL, 1);
    cr_meter_done(&pm);
    c->stage[3] = cr_now() - tc;
    static const char *const stage_names[5] = {"teacher", "labelling", "runs", "comparison",
                                               "tune"};
    for (int i = 0; i < 5; i++) cJSON_AddNumberToObject(stages, stage_names[i], c->stage[i]);
    cJSON_SetNumberValue(secs, cr_now() - t0);
    if (!s) {
        *out = cJSON_Print(root);
        if (!*out) s = cr_err(e, CR_ERR_NOMEM, "out of memory printing results");
    }
    cJSON_Delete(root);
    return s;
}
