/*
 * evaluate.c - predictions over a split and their metrics. The popularity
 * baseline ranks by one numeric feature's value (a monotone transform of
 * it, so its AUC and NDCG are those of the raw count) and predicts the
 * training mean for regression tasks: the bar a model must clear.
 */
#include "evaluate.h"

#include "loss.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cr_rank_task_head(const cr_ranker *m, int k) {
    for (int h = 0; h < m->cfg.n_heads; h++) {
        const cr_head *hd = &m->cfg.heads[h];
        if (hd->served && hd->target_kind == CR_TARGET_LABEL && hd->target == k) return h;
    }
    return -1;
}

/* Predictions (NH, n) of rows into pred; with lsum and wsum (NH) also
 * each head's summed loss and mask mass, added into them. */
static cr_status predict_part(const cr_ranker *m, const cr_dataset *ds, const uint32_t *rows,
                              int64_t n, int max_B, float *pred, double *lsum, double *wsum,
                              cr_error *e) {
    int NH = m->cfg.n_heads;
    cr_batch b;
    cr_ranker_ws *ws = NULL;
    float *bp = NULL;
    const int head_loss = lsum != NULL;
    cr_status st = cr_batch_init(&b, ds, max_B, e);
    if (st) return st;
    if ((st = cr_ranker_ws_create(&ws, m, max_B, 0, 0, e))) goto done;
    bp = cr_alloc_e((size_t)NH * (size_t)max_B * sizeof(float), e, "predictions");
    if (!bp) {
        st = CR_ERR_NOMEM;
        goto done;
    }
    for (int64_t i = 0; i < n; i += max_B) {
        int B = (int)(n - i < max_B ? n - i : max_B);
        if ((st = cr_batch_gather(&b, ds, rows + i, B, e))) goto done;
        if ((st = cr_ranker_forward(m, ws, &b, e))) goto done;
        cr_ranker_predict(m, ws, bp);
        for (int h = 0; h < NH; h++) memcpy(pred + (size_t)h * (size_t)n + (size_t)i,
                                            bp + (size_t)h * (size_t)B, (size_t)B * sizeof(float));
        if (head_loss) {
            double hl[CR_MODEL_MAX_HEADS], tot;
            if ((st = cr_multitask_loss(m->cfg.heads, NH, CR_LOSS_FIXED, NULL, &b, ws->out, NULL,
                                        NULL, hl, &tot, e)))
                goto done;
            /* Re-weight each batch's mean by its mask mass so the split's
             * loss is the mean over all its defined examples. */
            for (int h = 0; h < NH; h++) {
                const cr_head *hd = &m->cfg.heads[h];
                double c = 0;
                for (int j = 0; j < B; j++) {
                    double w = b.weight ? b.weight[j] : 1.0;
                    double mk = hd->mask_task >= 0 ? b.mask[(size_t)hd->mask_task * (size_t)B + (size_t)j] : 1.0;
                    c += w * mk;
                }
                lsum[h] += hl[h] * c;
                wsum[h] += c;
            }
        }
    }
done:
    cr_free(bp);
    cr_ranker_ws_free(ws);
    cr_batch_free(&b);
    return st;
}

cr_status cr_rank_predict_rows_dist(const cr_dist *d, const cr_ranker *m, const cr_dataset *ds,
                                    const uint32_t *rows, int64_t n, int max_B, float *pred,
                                    double *head_loss, cr_error *e) {
    int NH = m->cfg.n_heads, P = cr_dist_size(d);
    int64_t lo, hi;
    cr_dist_split(n, cr_dist_rank(d), P, &lo, &hi);
    double sums[2 * CR_MODEL_MAX_HEADS] = {0}; /* lsum then wsum */
    float *part = pred, *tmp = NULL;
    if (P > 1) {
        part = malloc(((size_t)NH * (size_t)(hi - lo) + 1) * sizeof(float));
        tmp = malloc(((size_t)NH * (size_t)n + 1) * sizeof(float));
        if (!part || !tmp) {
            free(part);
            free(tmp);
            return cr_err(e, CR_ERR_NOMEM, "out of memory for %lld predictions", (long long)n);
        }
    }
    cr_status st = predict_part(m, ds, rows + lo, hi - lo, max_B, part,
                                head_loss ? sums : NULL, head_loss ? sums + NH : NULL, e);
    if (!st && head_loss) st = cr_dist_sum_f64(d, sums, 2 * (size_t)NH, e);
    if (!st) st = cr_dp_gather_cols(d, part, NH, n, tmp, pred, e);
    if (part != pred) free(part);
    free(tmp);
    if (st) return st;
    if (head_loss)
        for (int h = 0; h < NH; h++) head_loss[h] = sums[NH + h] > 0 ? sums[h] / sums[NH + h] : NAN;
    return CR_OK;
}

cr_status cr_rank_predict_rows(const cr_ranker *m, const cr_dataset *ds, const uint32_t *rows,
                               int64_t n, int max_B, float *pred, double *head_loss, cr_error *e) {
    return cr_rank_predict_rows_dist(NULL, m, ds, rows, n, max_B, pred, head_loss, e);
}

static cr_status eval_into(cJSON *obj, const char *name, const float *pred, const float *label,
                           const float *mask, const uint8_t *slice, const int64_t *user,
                           const int64_t *group, int64_t n, int is_binary, int k, cr_error *e) {
    cr_eval_input in = {pred, label, mask, slice, user, group, n, is_binary, k};
    cr_task_metrics tm;
    CR_TRY(cr_eval_task(&in, &tm, e));
    cJSON *o = cJSON_CreateObject();
    if (!o) return cr_err(e, CR_ERR_NOMEM, "out of memory writing metrics");
    cr_status st = cr_task_metrics_to_json(&tm, is_binary, o);
    if (st) {
        cJSON_Delete(o);
        return cr_err(e, st, "could not write metrics as JSON");
    }
    cJSON_AddItemToObject(obj, name, o);
    return CR_OK;
}

cr_status cr_rank_evaluate(const cr_ranker *m, const cr_schema *s, const cr_dataset *ds,
                           int split, const cr_eval_cfg *ec, void *objv, double *task_loss,
                           cr_error *e) {
    cJSON *obj = objv;
    uint32_t *rows = NULL;
    int64_t n = 0;
    float *pred = NULL, *lab = NULL, *msk = NULL, *pop = NULL;
    int64_t *user = NULL, *group = NULL;
    uint8_t *sl = NULL;
    double hl[CR_MODEL_MAX_HEADS];
    cr_status st = cr_dataset_rows(ds, split, &rows, &n, e);
    if (st) return st;
    if (n == 0) {
        free(rows);
        return cr_err(e, CR_ERR_CONFIG, "the %s split is empty",
                      split == CR_SPLIT_VALID ? "validation" : split == CR_SPLIT_TEST ? "test" : "training");
    }
    int NH = m->cfg.n_heads, K = s->n_tasks;
    pred = malloc((size_t)NH * (size_t)n * sizeof(float));
    lab = malloc((size_t)n * sizeof(float));
    msk = malloc((size_t)n * sizeof(float));
    user = malloc((size_t)n * sizeof(int64_t));
    group = malloc((size_t)n * sizeof(int64_t));
    sl = malloc((size_t)n);
    pop = malloc((size_t)n * sizeof(float));
    if (!pred || !lab || !msk || !user || !group || !sl || !pop) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory evaluating %lld rows", (long long)n);
        goto done;
    }
    if ((st = cr_rank_predict_rows(m, ds, rows, n, 1024, pred, hl, e))) goto done;
    for (int64_t i = 0; i < n; i++) {
        user[i] = ds->user[rows[i]];
        group[i] = ds->group[rows[i]];
    }
    /* popularity baseline column: the dense slot of the named feature */
    int pop_slot = -1;
    for (int d = 0; d < ds->n_dense && ec->popularity_feature[0]; d++)
        if (!strcmp(s->features[s->dense_feat[d]].name, ec->popularity_feature)) pop_slot = d;
    if (pop_slot >= 0)
        for (int64_t i = 0; i < n; i++) {
            /* squashed into (0, 1) so the metrics accept it; order is kept */
            double x = ds->dense[(size_t)rows[i] * (size_t)ds->n_dense + (size_t)pop_slot];
            pop[i] = (float)(1.0 / (1.0 + exp(-x)));
        }
    cJSON_AddNumberToObject(obj, "rows", (double)n);
    cJSON *tasks = cJSON_AddObjectToObject(obj, "tasks");
    for (int k = 0; k < K; k++) {
        int h = cr_rank_task_head(m, k);
        if (task_loss) task_loss[k] = h >= 0 ? hl[h] : NAN;
        if (h < 0) continue;
        int bin = s->tasks[k].kind == CR_TASK_BINARY;
        /* A task defined only on some rows (a mask) usually has one row per
         * request (the clicked one): ranking within the request is then
         * trivially perfect, so no NDCG/Recall for it. */
        int rk = s->tasks[k].mask[0] ? 0 : ec->k;
        for (int64_t i = 0; i < n; i++) {
            lab[i] = ds->label[(size_t)k * (size_t)ds->n + rows[i]];
            msk[i] = ds->mask[(size_t)k * (size_t)ds->n + rows[i]];
            if (lab[i] < 0 && msk[i] != 0) rk = 0; /* NDCG needs non-negative gains */
        }
        cJSON *t = cJSON_AddObjectToObject(tasks, s->tasks[k].name);
        const float *p = pred + (size_t)h * (size_t)n;
        if ((st = eval_into(t, "model", p, lab, msk, NULL, user, group, n, bin, rk, e))) goto done;
        cJSON_AddNumberToObject(t, "loss", hl[h]);
        cJSON *slices = cJSON_AddObjectToObject(t, "slices");
        for (int q = 0; q < ds->n_slices; q++) {
            for (int64_t i = 0; i < n; i++) sl[i] = ds->slices[(size_t)q * (size_t)ds->n + rows[i]];
            if ((st = eval_into(slices, ds->slice_names[q], p, lab, msk, sl, user, group, n, bin,
                                rk, e)))
                goto done;
        }
        if (ec->baseline && pop_slot >= 0 && bin) {
            if ((st = eval_into(t, "baseline_popularity", pop, lab, msk, NULL, user, group, n, 1,
                                rk, e)))
                goto done;
            /* a popularity score is not a probability: only its ranking metrics mean anything */
            cJSON *bp = cJSON_GetObjectItemCaseSensitive(t, "baseline_popularity");
            cJSON_DeleteItemFromObject(bp, "logloss");
            cJSON_DeleteItemFromObject(bp, "calibration");
            cJSON_DeleteItemFromObject(bp, "mean_pred");
        }
    }
done:
    free(rows);
    free(pred);
    free(lab);
    free(msk);
    free(user);
    free(group);
    free(sl);
    free(pop);
    return st;
}
