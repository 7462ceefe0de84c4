/*
 * fit.c - the ranker's training loop. Shuffled mini-batches, dense Adam(W)
 * plus row-sparse table updates, a learning-rate schedule, evaluation on
 * the validation split with early stopping that never lets one task's
 * criterion decide for the others, atomic checkpoints and exact resume.
 * For a seed and a thread count, a run is bit-for-bit repeatable. Under a
 * cr_dist job each rank runs its slice of every global batch and the
 * gradients are exchanged (train/dp.c): the run equals the job of one's to
 * float rounding, whatever the number of ranks.
 */
#include "fit.h"
#include "oov.h"

#include "../core/ptable_io.h"
#include "../train/dp.h"
#include "loss.h"
#include "metrics.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fit_ctx {
    cr_rank_config *cfg;
    const cr_fit_opts *o;
    cr_dataset ds;
    cr_ranker *m;
    cr_ranker_ws *ws;
    cr_batch b;
    cr_batch bg;                  /* the whole global batch (labels for the loss), with ranks */
    float *gout, *gdout, *gtmp;   /* (NH, batch_size) the global batch's outputs, d loss/d out */
    cr_dp dp;
    int rank, P;
    uint32_t *train_rows, *valid_rows, *perm;
    int64_t n_train, n_valid;
    cr_train_state st;
    cr_optim opt;                 /* the dense weights, then one table optimizer per table */
    float *best_params, *best_tables;
    float head_weight[CR_MODEL_MAX_HEADS]; /* as configured (frozen tasks get 0 while training) */
    int evals;
    double seconds;
    int finished; /* resumed a checkpoint of a run that had ended */
    char path_model[1200], path_last[1200];
} fit_ctx;

static void logf_(const fit_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const fit_ctx *c, const char *fmt, ...) {
    if (!c->o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->o->log, fmt, ap);
    va_end(ap);
    fflush(c->o->log);
}

/* Freeze (or thaw) everything that only task k uses: its tower, its gate
 * and every head reading its tower; its heads' losses are dropped. */
static void set_task_frozen(fit_ctx *c, int k, int frozen) {
    cr_ranker *m = c->m;
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "towers.%d.", k);
    snprintf(p2, sizeof p2, "gates.%d.", k);
    for (int i = 0; i < m->params.n; i++) {
        cr_tensor_info *t = &m->params.t[i];
        int mine = !strncmp(t->name, p1, strlen(p1)) || !strncmp(t->name, p2, strlen(p2));
        for (int h = 0; h < m->cfg.n_heads && !mine; h++) {
            char p3[96];
            snprintf(p3, sizeof p3, "heads.%s.", m->cfg.heads[h].name);
            mine = m->cfg.heads[h].tower == k && !strncmp(t->name, p3, strlen(p3));
        }
        if (!mine) continue;
        if (frozen) t->flags |= CR_PARAM_FROZEN;
        else t->flags &= ~CR_PARAM_FROZEN;
    }
    for (int h = 0; h < m->cfg.n_heads; h++)
        if (m->cfg.heads[h].tower == k) m->cfg.heads[h].weight = frozen ? 0.0f : c->head_weight[h];
}

/* The checkpoint: weights and training state in one file, one rename. */
static cr_status save_last(fit_ctx *c, int finished, cr_error *e) {
    if (c->rank != 0) return CR_OK; /* every rank holds the same state: rank 0 writes it */
    /* The model file carries the configured head weights, not the frozen 0s. */
    float saved[CR_MODEL_MAX_HEADS];
    for (int h = 0; h < c->m->cfg.n_heads; h++) {
        saved[h] = c->m->cfg.heads[h].weight;
        c->m->cfg.heads[h].weight = c->head_weight[h];
    }
    c->st.adam = c->opt.dense[0].a;
    cr_status s = cr_rank_checkpoint_save(c->m, &c->cfg->schema, &c->st, finished, c->path_last, e);
    for (int h = 0; h < c->m->cfg.n_heads; h++) c->m->cfg.heads[h].weight = saved[h];
    return s;
}

static cr_status save_model(fit_ctx *c, cr_error *e) {
    if (c->rank != 0) return CR_OK;
    float saved[CR_MODEL_MAX_HEADS];
    for (int h = 0; h < c->m->cfg.n_heads; h++) {
        saved[h] = c->m->cfg.heads[h].weight;
        c->m->cfg.heads[h].weight = c->head_weight[h];
    }
    cr_status s = cr_ranker_save(c->m, &c->cfg->schema, c->path_model, NULL, e);
    for (int h = 0; h < c->m->cfg.n_heads; h++) c->m->cfg.heads[h].weight = saved[h];
    return s;
}

/* A soft-label head trains on a blend of label and teacher, but is judged
 * (early stopping, metrics) on the label alone: clear the blends around an
 * evaluation, and put them back after. */
static void set_blends(cr_ranker *m, float *saved, int restore) {
    for (int h = 0; h < m->cfg.n_heads; h++) {
        if (!restore) saved[h] = m->cfg.heads[h].blend_lambda;
        m->cfg.heads[h].blend_lambda = restore ? saved[h] : 0.0f;
    }
}

/* Metric mode: each served task's primary validation metric (AUC for a
 * binary task, R^2 for a regression task, under the task's mask) into
 * metric[k], and their mean into *overall. Distillation heads are not
 * served and never count. */
static cr_status valid_metrics(fit_ctx *c, const float *pred, double *metric, double *overall,
                               cr_error *e) {
    const cr_schema *sc = &c->cfg->schema;
    int64_t n = c->n_valid;
    float *lab = malloc((size_t)n * sizeof(float)), *msk = malloc((size_t)n * sizeof(float));
    cr_status s = CR_OK;
    double sum = 0;
    int used = 0;
    if (!lab || !msk) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory for validation metrics");
        goto done;
    }
    for (int k = 0; k < sc->n_tasks; k++) {
        int h = cr_rank_task_head(c->m, k), bin = sc->tasks[k].kind == CR_TASK_BINARY;
        metric[k] = NAN;
        if (h < 0) continue;
        for (int64_t i = 0; i < n; i++) {
            lab[i] = c->ds.label[(size_t)k * (size_t)c->ds.n + c->valid_rows[i]];
            msk[i] = c->ds.mask[(size_t)k * (size_t)c->ds.n + c->valid_rows[i]];
        }
        cr_eval_input in = {pred + (size_t)h * (size_t)n, lab, msk, NULL, NULL, NULL, n, bin, 0};
        cr_task_metrics tm;
        if ((s = cr_eval_task(&in, &tm, e))) goto done;
        metric[k] = bin ? tm.auc : tm.r2;
        if (isfinite(metric[k])) sum += metric[k], used++;
    }
    /* no task with a defined metric: never an improvement */
    *overall = used ? sum / used : -INFINITY;
done:
    free(lab);
    free(msk);
    return s;
}

/* Validation losses per task (served heads), scored higher-is-better; in
 * metric mode also each task's primary metric (metric, NULL otherwise),
 * whose mean is then *overall. */
static cr_status evaluate_valid(fit_ctx *c, double *task_loss, double *metric, double *overall,
                                cr_error *e) {
    cr_ranker *m = c->m;
    int K = c->cfg->schema.n_tasks, NH = m->cfg.n_heads;
    float *pred = malloc((size_t)NH * (size_t)c->n_valid * sizeof(float));
    double hl[CR_MODEL_MAX_HEADS];
    float blends[CR_MODEL_MAX_HEADS];
    if (!pred) return cr_err(e, CR_ERR_NOMEM, "out of memory for validation predictions");
    set_blends(m, blends, 0);
    cr_status s = cr_rank_predict_rows_dist(c->o->dist, m, &c->ds, c->valid_rows, c->n_valid, 1024,
                                            pred, hl, e);
    set_blends(m, blends, 1);
    *overall = 0;
    for (int k = 0; k < K; k++) {
        int h = cr_rank_task_head(m, k);
        task_loss[k] = h >= 0 ? hl[h] : NAN;
        if (h >= 0 && isfinite(hl[h])) *overall -= c->head_weight[h] * hl[h];
    }
    if (!s && metric) s = valid_metrics(c, pred, metric, overall, e);
    free(pred);
    return s;
}

static cr_status do_eval(fit_ctx *c, int *stop, cr_error *e) {
    int K = c->cfg->schema.n_tasks;
    double tl[CR_MAX_TASKS], score[CR_MAX_TASKS], metric[CR_MAX_TASKS], overall = 0;
    int by_metric = c->cfg->train.early_stopping == CR_ES_METRIC;
    /* unseen ids read an untrained row 0 unless it is made neutral (oov.c) */
    CR_TRY(cr_rank_oov_fill(c->m, &c->cfg->schema, &c->ds, c->train_rows, c->n_train, e));
    CR_TRY(evaluate_valid(c, tl, by_metric ? metric : NULL, &overall, e));
    for (int k = 0; k < K; k++) score[k] = by_metric ? metric[k] : -tl[k];
    uint32_t frozen = 0;
    int improved = cr_es_update(&c->st.es, c->st.step, overall, score, &frozen, stop);
    c->evals++;
    if (c->o->log) {
        if (c->o->log && isatty(fileno(c->o->log))) fputc('\n', c->o->log);
        logf_(c, "eval step %lld: valid loss", (long long)c->st.step);
        for (int k = 0; k < K; k++) logf_(c, " %s %.5f", c->cfg->schema.tasks[k].name, tl[k]);
        if (by_metric) {
            logf_(c, " | valid");
            for (int k = 0; k < K; k++) logf_(c, " %s %.4f", c->cfg->schema.tasks[k].name, metric[k]);
            logf_(c, " | mean %.5f%s\n", overall, improved ? " (best)" : "");
        } else {
            logf_(c, " | sum %.5f%s\n", -overall, improved ? " (best)" : "");
        }
    }
    for (int k = 0; k < K; k++)
        if (frozen & (1u << k)) {
            set_task_frozen(c, k, 1);
            logf_(c, "task %s stopped improving: its tower and heads are frozen at step %lld\n",
                  c->cfg->schema.tasks[k].name, (long long)c->st.step);
        }
    if (improved) {
        memcpy(c->best_params, c->m->params.data, c->m->params.total * sizeof(float));
        memcpy(c->best_tables, c->m->tables.data, c->m->tables.total * sizeof(float));
        CR_TRY(save_model(c, e));
    }
    int every = c->cfg->train.checkpoint_every;
    if (every > 0 && c->evals % every == 0) CR_TRY(save_last(c, 0, e));
    return CR_OK;
}

/* A uniform number in [0, 1) from (seed, step, row, slot): stateless, so a
 * resumed run drops exactly the ids an uninterrupted one would. */
static double drop_u(uint64_t seed, int64_t step, int64_t row, int64_t slot) {
    uint64_t z = seed ^ ((uint64_t)step * 0x9E3779B97F4A7C15ULL) ^
                 ((uint64_t)row * 0xBF58476D1CE4E5B9ULL) ^ ((uint64_t)slot * 0x94D049BB133111EBULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* id_dropout: replace ids by the OOV row 0 with the feature's probability. */
static void apply_id_dropout(fit_ctx *c, int B) {
    const cr_schema *s = &c->cfg->schema;
    cr_batch *b = &c->b;
    uint64_t seed = c->cfg->train.seed ^ 0xd50;
    for (int q = 0; q < s->n_cat; q++) {
        float p = s->features[s->cat_feat[q]].id_dropout;
        if (p <= 0) continue;
        for (int i = 0; i < B; i++)
            if (drop_u(seed, c->st.step, b->rows[i], q) < p) b->cat[(size_t)i * (size_t)s->n_cat + (size_t)q] = 0;
    }
    for (int q = 0; q < s->n_multi; q++) {
        float p = s->features[s->multi_feat[q]].id_dropout;
        if (p <= 0) continue;
        for (int i = 0; i < B; i++)
            for (int64_t k = b->bag_off[q][i]; k < b->bag_off[q][i + 1]; k++)
                if (drop_u(seed, c->st.step, b->rows[i], 1000003 * (q + 1) + k - b->bag_off[q][i]) < p)
                    b->bag_ids[q][k] = 0;
    }
}

/* What train.precision gives in this build (the log and metrics.json). */
static const char *precision_name(int precision) {
    if (precision == CR_GEMM_FP32) return "fp32";
    return cr_sgemm_bf16_native() ? "bf16" : "bf16 (fp32 products: no AVX512_BF16)";
}

/* One step over the global batch rows (B). Each rank runs forward and
 * backward on its cr_dist_split slice; the loss is taken over the whole
 * batch (every rank gathers all outputs, so the normalisation and the
 * uncertainty weights are the job of one's), and the gradients are summed
 * over ranks before the same update everywhere. */
static cr_status train_step(fit_ctx *c, const uint32_t *rows, int B, double *loss,
                            double *head_loss, cr_error *e) {
    const cr_train_cfg *t = &c->cfg->train;
    cr_ranker *m = c->m;
    int64_t lo, hi;
    cr_dist_split(B, c->rank, c->P, &lo, &hi);
    int Bl = (int)(hi - lo), NH = m->cfg.n_heads;
    const cr_batch *gb = &c->b;
    if (c->P > 1) {
        CR_TRY(cr_batch_gather(&c->bg, &c->ds, rows, B, e));
        gb = &c->bg;
    }
    if (Bl > 0) {
        CR_TRY(cr_batch_gather(&c->b, &c->ds, rows + lo, Bl, e));
        apply_id_dropout(c, Bl);
    }
    cr_ranker_zero_grad(m, c->ws);
    /* train.precision governs this step's products only: evaluation and
     * scoring stay fp32 (they never go through cr_sgemm's setting) */
    cr_gemm_precision prev = cr_sgemm_get_precision();
    cr_sgemm_set_precision((cr_gemm_precision)t->precision);
    cr_status s = Bl > 0 ? cr_ranker_forward(m, c->ws, &c->b, e) : CR_OK;
    float *out = c->P > 1 ? c->gout : c->ws->out, *dout = c->P > 1 ? c->gdout : c->ws->dout;
    if (!s) s = cr_dp_gather_cols(c->o->dist, c->ws->out, NH, B, c->gtmp, out, e);
    const float *lv = m->log_var >= 0 ? cr_ptable_ptr(&m->params, m->params.data, m->log_var) : NULL;
    /* d loss / d log-variance is the batch's, once: on rank 0 */
    float *dlv = c->rank == 0 ? cr_nn_grad(&m->params, c->ws->grads, m->log_var) : NULL;
    if (!s)
        s = cr_multitask_loss(m->cfg.heads, NH, m->cfg.loss_weighting, lv, gb, out, dout, dlv,
                              head_loss, loss, e);
    if (!s && !isfinite(*loss))
        s = cr_err(e, CR_ERR_INTERNAL,
                   "the training loss became %g at step %lld; lower train.lr or set train.clip_norm",
                   *loss, (long long)c->st.step);
    if (!s && c->P > 1)
        for (int h = 0; h < NH; h++)
            memcpy(c->ws->dout + (size_t)h * (size_t)Bl, dout + (size_t)h * (size_t)B + (size_t)lo,
                   (size_t)Bl * sizeof(float));
    if (!s && Bl > 0) s = cr_ranker_backward(m, c->ws, &c->b, NULL, e);
    cr_sgemm_set_precision(prev);
    if (s) return s;
    const cr_sparse_grad *sg[64];
    CR_ASSERT(m->n_tables <= 64);
    CR_TRY(cr_dp_reduce(&c->dp, c->ws->grads, m->params.total, c->ws->sgrads, sg, e));
    CR_TRY(cr_optim_step(&c->opt, c->st.step, sg, e));
    c->st.step++;
    c->st.epoch_step++;
    c->st.examples += B;
    return CR_OK;
}

static cr_status write_metrics(fit_ctx *c, int stopped_early, char **metrics, cr_error *e) {
    if (c->rank != 0) return CR_OK; /* the weights are the same everywhere */
    cr_rank_config *cfg = c->cfg;
    cJSON *root = cJSON_CreateObject();
    if (!root) return cr_err(e, CR_ERR_NOMEM, "out of memory writing metrics");
    cr_status s = CR_OK;
    cJSON_AddStringToObject(root, "config", cfg->path);
    cJSON_AddStringToObject(root, "model", "model.safetensors");
    cJSON_AddStringToObject(root, "arch", cr_arch_name(c->m->cfg.arch));
    cJSON *tr = cJSON_AddObjectToObject(root, "train");
    cJSON_AddNumberToObject(tr, "steps", (double)c->st.step);
    cJSON_AddNumberToObject(tr, "examples", (double)c->st.examples);
    cJSON_AddNumberToObject(tr, "seconds", c->seconds);
    cJSON_AddNumberToObject(tr, "examples_per_second", c->seconds > 0 ? (double)c->st.examples / c->seconds : 0);
    cJSON_AddNumberToObject(tr, "best_step", (double)c->st.es.best_step);
    cJSON_AddBoolToObject(tr, "stopped_early", stopped_early);
    cJSON_AddStringToObject(tr, "early_stopping", cr_es_names[cfg->train.early_stopping]);
    if (cfg->train.early_stopping == CR_ES_METRIC)
        cJSON_AddNumberToObject(tr, "best_valid_metric", c->st.es.best);
    cJSON_AddNumberToObject(tr, "threads", cr_get_threads());
    cJSON_AddStringToObject(tr, "precision", precision_name(cfg->train.precision));
    cJSON_AddNumberToObject(tr, "parameters", (double)(c->m->params.total));
    cJSON_AddNumberToObject(tr, "table_parameters", (double)(c->m->tables.total));
    if (c->P > 1) {
        cJSON *dj = cJSON_AddObjectToObject(tr, "distributed");
        double st = c->dp.steps > 0 ? (double)c->dp.steps : 1.0;
        cJSON_AddNumberToObject(dj, "ranks", c->P);
        cJSON_AddNumberToObject(dj, "comm_seconds_per_step", c->dp.comm_seconds / st);
        cJSON_AddNumberToObject(dj, "dense_bytes_per_step", c->dp.dense_bytes / st);
        cJSON_AddNumberToObject(dj, "sparse_bytes_per_step", c->dp.sparse_bytes / st);
    }
    cJSON *fz = cJSON_AddObjectToObject(tr, "frozen_at_step");
    for (int k = 0; k < cfg->schema.n_tasks; k++)
        if (c->st.es.frozen[k])
            cJSON_AddNumberToObject(fz, cfg->schema.tasks[k].name, (double)c->st.es.frozen_step[k]);
    cJSON *sizes = cJSON_AddObjectToObject(root, "rows");
    cJSON_AddNumberToObject(sizes, "train", (double)c->ds.n_split[0]);
    cJSON_AddNumberToObject(sizes, "valid", (double)c->ds.n_split[1]);
    cJSON_AddNumberToObject(sizes, "test", (double)c->ds.n_split[2]);
    const int splits[2] = {CR_SPLIT_VALID, CR_SPLIT_TEST};
    const char *names[2] = {"valid", "test"};
    for (int i = 0; i < 2; i++) {
        if (c->ds.n_split[splits[i]] == 0 || (splits[i] == CR_SPLIT_TEST && c->o->no_test)) continue;
        cJSON *o = cJSON_AddObjectToObject(root, names[i]);
        float blends[CR_MODEL_MAX_HEADS];
        set_blends(c->m, blends, 0);
        s = cr_rank_evaluate(c->m, &cfg->schema, &c->ds, splits[i], &cfg->eval, o, NULL, e);
        set_blends(c->m, blends, 1);
        if (s) goto done;
    }
    char *txt = cJSON_Print(root);
    if (!txt) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory writing metrics");
        goto done;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.json", c->o->out_dir);
    s = cr_write_file_atomic(path, txt, strlen(txt), e);
    if (!s && metrics) *metrics = txt;
    else free(txt);
done:
    cJSON_Delete(root);
    return s;
}

static cr_status copy_config(const fit_ctx *c, cr_error *e) {
    if (c->rank != 0) return CR_OK;
    char path[1200];
    snprintf(path, sizeof path, "%s/config.yaml", c->o->out_dir);
    return cr_rank_config_save(c->cfg, path, e);
}

/* Every rank must hold the same value (a fitted schema's hash, the step
 * resumed from): a rank that differs names what went wrong. */
static cr_status agree(const fit_ctx *c, uint64_t v, const char *what, cr_error *e) {
    if (c->P == 1) return CR_OK;
    double x[2] = {(double)(v >> 11), -(double)(v >> 11)};
    CR_TRY(cr_dist_max_f64(c->o->dist, x, 2, e));
    if (x[0] != -x[1])
        return cr_err(e, CR_ERR_MISMATCH, "%s: the ranks disagree on %s", c->cfg->path, what);
    return CR_OK;
}

static int cmp_desc_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* The most ids one multi feature can put in one training batch: the sum of
 * its batch_size largest bags. train.max_bag_ids may set it (a memory
 * cap); below this bound it would fail mid-run, so refuse it up front. */
static cr_status bag_ids_bound(fit_ctx *c, int64_t *out, cr_error *e) {
    const cr_schema *s = &c->cfg->schema;
    const int64_t B = c->cfg->train.batch_size, cap = c->cfg->train.max_bag_ids;
    int64_t need = 1;
    int64_t *len = malloc((size_t)(c->n_train ? c->n_train : 1) * sizeof *len);
    if (!len) return cr_err(e, CR_ERR_NOMEM, "out of memory sizing the bags");
    for (int q = 0; q < s->n_multi; q++) {
        const int64_t *off = c->ds.bag_off[q];
        int64_t big = 0, row = 0;
        for (int64_t i = 0; i < c->n_train; i++) {
            len[i] = off[c->train_rows[i] + 1] - off[c->train_rows[i]];
            if (len[i] > big) big = len[i], row = c->train_rows[i];
        }
        qsort(len, (size_t)c->n_train, sizeof *len, cmp_desc_i64);
        int64_t sum = 0;
        for (int64_t i = 0; i < c->n_train && i < B; i++) sum += len[i];
        if (cap > 0 && sum > cap) {
            free(len);
            return cr_err(e, CR_ERR_CONFIG,
                          "%s: train.max_bag_ids %lld is below the %lld ids that %lld rows of "
                          "feature '%s' can hold in one batch (data row %lld of %s has %lld); "
                          "raise it, or leave it out to size it from the data",
                          c->cfg->path, (long long)cap, (long long)sum, (long long)B,
                          s->features[s->multi_feat[q]].name, (long long)row + 1,
                          c->cfg->data.path, (long long)big);
        }
        if (sum > need) need = sum;
    }
    free(len);
    if (need > INT32_MAX / 4)
        return cr_err(e, CR_ERR_LIMIT, "%s: a batch of %lld rows can hold %lld ids of one multi "
                      "feature, above %d; lower train.batch_size",
                      c->cfg->path, (long long)B, (long long)need, INT32_MAX / 4);
    *out = cap > 0 ? cap : need;
    return CR_OK;
}

static cr_status try_resume(fit_ctx *c, cr_error *e) {
    if (!cr_file_exists(c->path_last)) {
        logf_(c, "no checkpoint in %s: starting from scratch\n", c->o->out_dir);
        return CR_OK;
    }
    cr_st_file f;
    CR_TRY(cr_st_open(&f, c->path_last, e));
    char *mine = NULL, *model = NULL;
    cr_status s = cr_schema_to_json(&c->cfg->schema, &mine, e);
    if (!s) s = cr_model_cfg_to_json(&c->m->cfg, &model, e);
    const char *theirs = cr_st_meta(&f, "schema"), *their_model = cr_st_meta(&f, "model");
    if (!s && (!theirs || strcmp(theirs, mine) != 0 || !their_model || strcmp(their_model, model) != 0))
        s = cr_err(e, CR_ERR_MISMATCH,
                   "%s: this checkpoint was trained with a different schema or data than %s; "
                   "use a fresh --out directory",
                   c->path_last, c->cfg->path);
    free(mine);
    free(model);
    if (!s) s = cr_ptable_from_st(&c->m->params, c->m->params.data, "", &f, 0, e);
    if (!s) s = cr_ptable_from_st(&c->m->tables, c->m->tables.data, "", &f, 0, e);
    cr_st_close(&f);
    if (s) return s;
    c->st.adam = c->opt.dense[0].a;
    CR_TRY(cr_train_state_load(&c->st, &c->finished, c->path_last, e));
    c->opt.dense[0].a.t = c->st.adam.t; /* the moments were loaded in place; the step count by value */
    if (c->finished) {
        logf_(c, "the run in %s finished at step %lld: nothing to resume (train into a fresh "
              "--out directory to train again)\n",
              c->o->out_dir, (long long)c->st.step);
        return CR_OK;
    }
    for (int k = 0; k < c->cfg->schema.n_tasks; k++)
        if (c->st.es.frozen[k]) set_task_frozen(c, k, 1);
    if (cr_file_exists(c->path_model)) {
        cr_st_file g;
        CR_TRY(cr_st_open(&g, c->path_model, e));
        s = cr_ptable_from_st(&c->m->params, c->best_params, "", &g, 0, e);
        if (!s) s = cr_ptable_from_st(&c->m->tables, c->best_tables, "", &g, 0, e);
        cr_st_close(&g);
        if (s) return s;
    }
    logf_(c, "resuming at step %lld (epoch %d)\n", (long long)c->st.step, c->st.epoch + 1);
    return CR_OK;
}

cr_status cr_rank_fit(cr_rank_config *cfg, const cr_fit_opts *opts, char **metrics, cr_error *e) {
    fit_ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    cr_fit_opts oo = *opts;
    const cr_fit_opts *o = &oo;
    c.o = o;
    c.rank = cr_dist_rank(o->dist);
    c.P = cr_dist_size(o->dist);
    if (c.rank != 0) oo.log = NULL; /* one voice per job */
    cr_train_cfg *t = &cfg->train;
    cr_status s;
    if (metrics) *metrics = NULL;
    /* threads: the caller's count (the entry point set it from the context
     * or train.threads); t->threads says what the config asked for */
    if ((s = cr_mkdirs(o->out_dir, e))) return s;
    snprintf(c.path_model, sizeof c.path_model, "%s/model.safetensors", o->out_dir);
    snprintf(c.path_last, sizeof c.path_last, "%s/last.safetensors", o->out_dir);
    cr_checkpoint_sweep(o->out_dir); /* what a killed run left half-written */

    double t0 = cr_now();
    logf_(&c, "loading %s\n", cfg->data.path);
    if ((s = cr_dataset_load(&c.ds, &cfg->schema, &cfg->data, 1, e))) goto done;
    logf_(&c, "rows: %lld train, %lld valid, %lld test (%.1f s)\n", (long long)c.ds.n_split[0],
          (long long)c.ds.n_split[1], (long long)c.ds.n_split[2], cr_now() - t0);
    /* a teacher column in the wrong form (a logit where a probability is
     * learnt) would train silently on nonsense */
    if ((s = cr_distill_check_data(&cfg->model, &c.ds, e))) goto done;
    if ((s = cr_dataset_rows(&c.ds, CR_SPLIT_TRAIN, &c.train_rows, &c.n_train, e))) goto done;
    if ((s = cr_dataset_rows(&c.ds, CR_SPLIT_VALID, &c.valid_rows, &c.n_valid, e))) goto done;
    if (c.n_train == 0 || c.n_valid == 0) {
        s = cr_err(e, CR_ERR_CONFIG, "%s: the %s split is empty; check data.split", cfg->path,
                   c.n_train == 0 ? "training" : "validation");
        goto done;
    }
    if (c.P > 1) { /* each rank fitted the vocabularies on its own pass over the same file */
        char *sj = NULL;
        if ((s = cr_schema_to_json(&cfg->schema, &sj, e))) goto done;
        uint64_t h = cr_hash64(sj, strlen(sj)) ^ (uint64_t)c.n_train * 0x9E3779B97F4A7C15ULL;
        free(sj);
        if ((s = agree(&c, h, "the data (vocabularies or split): does every rank read the same file?", e)))
            goto done;
    }
    if ((s = cr_ranker_create(&c.m, &cfg->schema, &cfg->model, t->seed, e))) goto done;
    int64_t max_bag_ids = 0;
    if ((s = bag_ids_bound(&c, &max_bag_ids, e))) goto done;
    if ((s = cr_ranker_ws_create(&c.ws, c.m, t->batch_size, 1, max_bag_ids, e))) goto done;
    if ((s = cr_batch_init(&c.b, &c.ds, t->batch_size, e))) goto done;
    if (c.P > 1) {
        size_t nb = (size_t)c.m->cfg.n_heads * (size_t)t->batch_size * sizeof(float);
        if ((s = cr_batch_init(&c.bg, &c.ds, t->batch_size, e))) goto done;
        c.gout = cr_alloc_e(nb, e, "the global batch's outputs");
        c.gdout = cr_alloc_e(nb, e, "the global batch's output gradients");
        c.gtmp = cr_alloc_e(nb, e, "the gathered outputs");
        if (!c.gout || !c.gdout || !c.gtmp) {
            s = CR_ERR_NOMEM;
            goto done;
        }
    }
    if ((s = cr_dp_init(&c.dp, o->dist, c.m->n_tables, c.m->table_dim, e))) goto done;
    c.best_params = cr_alloc_e(c.m->params.total * sizeof(float) + 64, e, "best parameters");
    c.best_tables = cr_alloc_e(c.m->tables.total * sizeof(float) + 64, e, "best tables");
    c.perm = malloc((size_t)c.n_train * sizeof(uint32_t));
    if (!c.best_params || !c.best_tables || !c.perm) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory setting up training");
        goto done;
    }
    int64_t spe = (c.n_train + t->batch_size - 1) / t->batch_size;
    int64_t total = (int64_t)t->epochs * spe;
    if (t->max_steps > 0 && t->max_steps < total) total = t->max_steps;
    t->max_steps = total; /* the schedule's horizon */
    cr_optim_init(&c.opt, &t->opt, total, 0);
    if ((s = cr_optim_add_dense(&c.opt, &c.m->params, c.m->params.data, c.ws->grads, e)))
        goto done;
    for (int i = 0; i < c.m->n_tables; i++)
        if ((s = cr_optim_add_table(&c.opt, cr_ptable_ptr(&c.m->tables, c.m->tables.data,
                                                          c.m->table_param[i]),
                                    c.m->table_rows[i], c.m->table_dim[i], e)))
            goto done;
    c.st.n_sparse = c.opt.n_sparse;
    c.st.sparse = c.opt.sparse;
    for (int h = 0; h < c.m->cfg.n_heads; h++) c.head_weight[h] = c.m->cfg.heads[h].weight;
    cr_es_init(&c.st.es, t->early_stopping, t->patience, cfg->schema.n_tasks);
    cr_rng_seed(&c.st.epoch_rng, t->seed ^ 0x5eed5eedULL);
    memcpy(c.best_params, c.m->params.data, c.m->params.total * sizeof(float));
    memcpy(c.best_tables, c.m->tables.data, c.m->tables.total * sizeof(float));
    if (o->resume && (s = try_resume(&c, e))) goto done;
    if ((s = agree(&c, (uint64_t)c.st.step << 11,
                   "the step to resume from: every rank must see the same --out directory", e)))
        goto done;
    if (o->finished) *o->finished = c.finished;
    if (c.finished) { /* its files stay as they are; hand back its metrics */
        char path[1200], *txt = NULL;
        size_t n;
        snprintf(path, sizeof path, "%s/metrics.json", o->out_dir);
        if (metrics && cr_file_exists(path)) {
            if ((s = cr_read_file(path, &txt, &n, e))) goto done;
            if (!(*metrics = strdup(txt))) s = cr_err(e, CR_ERR_NOMEM, "out of memory");
            cr_free(txt);
        }
        goto done;
    }
    if ((s = copy_config(&c, e))) goto done;
    logf_(&c, "model %s: %zu dense parameters, %zu table parameters, %d threads, %s products\n",
          cr_arch_name(c.m->cfg.arch), c.m->params.total, c.m->tables.total, cr_get_threads(),
          precision_name(t->precision));
    if (t->precision == CR_GEMM_BF16 && !cr_sgemm_bf16_native())
        logf_(&c, "warning: train.precision bf16: kernel set %s has no AVX512_BF16, so this run "
                  "trains with fp32 products (as fast as, and the same as, precision fp32)\n",
              cr_sgemm_portable_isa());

    cr_progress pg;
    cr_progress_init(&pg, o->log, total);
    int stop = 0, K = cfg->schema.n_tasks;
    char (*tnames)[64] = malloc((size_t)K * sizeof *tnames);
    if (!tnames) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < K; k++) snprintf(tnames[k], 64, "%s", cfg->schema.tasks[k].name);
    double ema = NAN, tema[CR_MAX_TASKS];
    for (int k = 0; k < K; k++) tema[k] = NAN;
    double tstart = cr_now();
    int64_t ex0 = c.st.examples;
    while (!stop && c.st.epoch < t->epochs && c.st.step < total) {
        cr_rng rng = c.st.epoch_rng;
        memcpy(c.perm, c.train_rows, (size_t)c.n_train * sizeof(uint32_t));
        cr_rng_shuffle_u32(&rng, c.perm, (size_t)c.n_train);
        int64_t step_before = c.st.step;
        while (!stop && c.st.epoch_step < spe && c.st.step < total) {
            int64_t i0 = c.st.epoch_step * t->batch_size;
            int B = (int)(c.n_train - i0 < t->batch_size ? c.n_train - i0 : t->batch_size);
            double loss, hl[CR_MODEL_MAX_HEADS];
            if ((s = train_step(&c, c.perm + i0, B, &loss, hl, e))) goto done_names;
            ema = isnan(ema) ? loss : 0.98 * ema + 0.02 * loss;
            for (int k = 0; k < K; k++) {
                int h = cr_rank_task_head(c.m, k);
                double v = h >= 0 ? hl[h] : NAN;
                tema[k] = isnan(tema[k]) ? v : 0.98 * tema[k] + 0.02 * v;
            }
            pg.m.t0 = tstart;
            cr_progress_update(&pg, c.st.epoch + 1, t->epochs, c.st.step, c.st.examples - ex0, ema,
                               K, tnames, tema, 0);
            if (t->eval_every > 0 && c.st.step % t->eval_every == 0 &&
                (s = do_eval(&c, &stop, e)))
                goto done_names;
            cr_progress_info pi = {"train", c.st.step, total, "steps", cr_now() - tstart, ema};
            if (cr_ctx_poll(o->ctx, &pi)) {
                /* cancelled: keep the work so far as the resume point */
                if (!(s = save_last(&c, 0, e)))
                    s = cr_err(e, CR_ERR_CANCELLED,
                               "training cancelled at step %lld; %s resumes it (--resume)",
                               (long long)c.st.step, c.path_last);
                goto done_names;
            }
            if (o->stop_after_steps > 0 && c.st.step >= o->stop_after_steps) {
                s = cr_err(e, CR_ERR_LIMIT, "stopped after %lld steps as asked",
                           (long long)c.st.step);
                goto done_names;
            }
        }
        /* a resumed run whose checkpoint was this epoch's evaluation takes no
         * step here and must not evaluate the same weights twice */
        if (!stop && t->eval_every == 0 && c.st.step > step_before &&
            (s = do_eval(&c, &stop, e)))
            goto done_names;
        if (c.st.epoch_step >= spe) {
            c.st.epoch++;
            c.st.epoch_step = 0;
            c.st.epoch_rng = rng;
        }
    }
    cr_progress_done(&pg);
    c.seconds = cr_now() - tstart;
    /* sum_loss and metric keep the best model by the overall criterion; per_task
     * keeps the final one, whose frozen towers stopped at their own best;
     * none selects nothing: the final step's weights are the model. */
    if ((t->early_stopping == CR_ES_SUM_LOSS || t->early_stopping == CR_ES_METRIC) &&
        c.st.es.best_step >= 0) {
        memcpy(c.m->params.data, c.best_params, c.m->params.total * sizeof(float));
        memcpy(c.m->tables.data, c.best_tables, c.m->tables.total * sizeof(float));
    }
    for (int h = 0; h < c.m->cfg.n_heads; h++) c.m->cfg.heads[h].weight = c.head_weight[h];
    /* the model and metrics first, the finished checkpoint last: a kill in
     * between resumes from the previous checkpoint and writes both again */
    if ((s = cr_rank_oov_fill(c.m, &c.cfg->schema, &c.ds, c.train_rows, c.n_train, e)) ||
        (s = save_model(&c, e)))
        goto done_names;
    logf_(&c, "trained %lld steps in %.1f s (%.0f examples/s); best step %lld\n",
          (long long)c.st.step, c.seconds,
          c.seconds > 0 ? (double)(c.st.examples - ex0) / c.seconds : 0.0,
          (long long)c.st.es.best_step);
    if ((s = write_metrics(&c, stop, metrics, e))) goto done_names;
    if ((s = save_last(&c, 1, e))) goto done_names;
    /* no rank returns before rank 0's files exist: a caller may read them next */
    s = cr_dist_barrier(o->dist, e);
done_names:
    free(tnames);
done:
    cr_free(c.best_params);
    cr_free(c.best_tables);
    cr_free(c.gout);
    cr_free(c.gdout);
    cr_free(c.gtmp);
    cr_dp_free(&c.dp);
    cr_batch_free(&c.bg);
    cr_optim_free(&c.opt);
    free(c.perm);
    free(c.train_rows);
    free(c.valid_rows);
    cr_batch_free(&c.b);
    cr_ranker_ws_free(c.ws);
    cr_ranker_free(c.m);
    cr_dataset_free(&c.ds);
    return s;
}
