/*
 * metrics.c - evaluation metrics for one task (see metrics.h for the exact
 * definitions). Rows are first filtered by mask and slice into a list of
 * row ids; every grouped metric then sorts a copy of that list with a
 * stable merge sort, so results never depend on the platform's qsort or on
 * the thread count. This file must never change predictions or labels.
 */
#include "metrics.h"

#include <cJSON.h>
#include <math.h>
#include <string.h>

/* ---- a stable merge sort of row ids ------------------------------------------ */

/* Returns < 0 when row a must come before row b, > 0 after, 0 when equal
 * (a stable sort then keeps the original order). */
typedef int (*cr_row_cmp)(int64_t a, int64_t b, const void *ctx);

/* Bottom-up merge sort of idx (n) using tmp (n) as scratch. Stable:
 * O(n log n) comparisons whatever the input, unlike some qsort fallbacks. */
static void cr_sort_rows(int64_t *idx, int64_t *tmp, int64_t n, cr_row_cmp cmp,
                         const void *ctx) {
    int64_t *src = idx, *dst = tmp;
    for (int64_t width = 1; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            int64_t mid = lo + width < n ? lo + width : n;
            int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t i = lo, j = mid, o = lo;
            /* take from the left run unless the right one is strictly smaller */
            while (i < mid && j < hi) dst[o++] = cmp(src[j], src[i], ctx) < 0 ? src[j++] : src[i++];
            while (i < mid) dst[o++] = src[i++];
            while (j < hi) dst[o++] = src[j++];
        }
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx) memcpy(idx, src, (size_t)n * sizeof *idx);
}

typedef struct cr_cmp_ctx {
    const float   *score;
    const int64_t *key; /* user or request id; NULL = none */
} cr_cmp_ctx;

static int cr_cmp_f(float a, float b) { return (a > b) - (a < b); }
static int cr_cmp_i(int64_t a, int64_t b) { return (a > b) - (a < b); }

/* (key ascending, score ascending): AUC and GAUC */
static int cr_cmp_key_score_asc(int64_t a, int64_t b, const void *ctx) {
    const cr_cmp_ctx *c = ctx;
    if (c->key) {
        int k = cr_cmp_i(c->key[a], c->key[b]);
        if (k) return k;
    }
    return cr_cmp_f(c->score[a], c->score[b]);
}

/* (key ascending, score descending): ranking within requests, ideal orders */
static int cr_cmp_key_score_desc(int64_t a, int64_t b, const void *ctx) {
    const cr_cmp_ctx *c = ctx;
    if (c->key) {
        int k = cr_cmp_i(c->key[a], c->key[b]);
        if (k) return k;
    }
    return cr_cmp_f(c->score[b], c->score[a]);
}

/* ---- AUC ------------------------------------------------------------------------------ */

/* AUC of rows idx[0..m) already sorted by score ascending. Each block of
 * equal scores credits its positives with every negative below it plus half
 * of the negatives tied with them: the Mann-Whitney U with average ranks. */
static double cr_auc_sorted(const int64_t *idx, int64_t m, const float *score,
                            const float *label, const float *weight) {
    double area = 0.0, neg_below = 0.0, pos_total = 0.0;
    for (int64_t lo = 0; lo < m;) {
        int64_t hi = lo;
        double bp = 0.0, bn = 0.0;
        float s = score[idx[lo]];
        while (hi < m && score[idx[hi]] == s) {
            int64_t r = idx[hi++];
            double w = weight ? (double)weight[r] : 1.0;
            if (label[r] > 0.5f) bp += w;
            else bn += w;
        }
        area += bp * (neg_below + 0.5 * bn);
        neg_below += bn;
        pos_total += bp;
        lo = hi;
    }
    if (!(pos_total > 0.0) || !(neg_below > 0.0)) return NAN;
    return area / (pos_total * neg_below);
}

double cr_auc(const float *score, const float *label, const float *weight, int64_t n) {
    if (n <= 0) return NAN;
    for (int64_t i = 0; i < n; i++)
        if (isnan(score[i])) return NAN; /* no order to rank by */
    int64_t *idx = cr_alloc((size_t)n * sizeof *idx);
    int64_t *tmp = cr_alloc((size_t)n * sizeof *tmp);
    double auc = NAN;
    if (idx && tmp) {
        for (int64_t i = 0; i < n; i++) idx[i] = i;
        cr_cmp_ctx c = {score, NULL};
        cr_sort_rows(idx, tmp, n, cr_cmp_key_score_asc, &c);
        auc = cr_auc_sorted(idx, n, score, label, weight);
    }
    cr_free(idx);
    cr_free(tmp);
    return auc;
}

/* GAUC over rows sel[0..m): work is sorted by (user, pred) so each user's
 * rows form one block already in score order. */
static void cr_gauc(cr_task_metrics *out, int64_t *work, int64_t *tmp, const int64_t *sel,
                    int64_t m, const cr_eval_input *in) {
    memcpy(work, sel, (size_t)m * sizeof *work);
    cr_cmp_ctx c = {in->pred, in->user};
    cr_sort_rows(work, tmp, m, cr_cmp_key_score_asc, &c);
    double sum = 0.0;
    int64_t users = 0, rows = 0;
    for (int64_t lo = 0; lo < m;) {
        int64_t hi = lo, u = in->user[work[lo]];
        while (hi < m && in->user[work[hi]] == u) hi++;
        double a = cr_auc_sorted(work + lo, hi - lo, in->pred, in->label, NULL);
        if (!isnan(a)) {
            sum += (double)(hi - lo) * a;
            rows += hi - lo;
            users++;
        }
        lo = hi;
    }
    out->gauc = rows > 0 ? sum / (double)rows : NAN;
    out->gauc_users = users;
    out->gauc_rows = rows;
}

/* ---- ranking within requests ---------------------------------------------------------- */

/* NDCG@k and Recall@k. work is sorted by (request, pred descending); the
 * stable sort keeps equal predictions in row order because sel is
 * ascending. scratch (m) receives one request's rows for its ideal order;
 * it may alias sel, which is only read before the first request. */
static void cr_ranking(cr_task_metrics *out, int64_t *work, int64_t *tmp, int64_t *scratch,
                       const int64_t *sel, int64_t m, const cr_eval_input *in) {
    memcpy(work, sel, (size_t)m * sizeof *work);
    cr_cmp_ctx c = {in->pred, in->group};
    cr_sort_rows(work, tmp, m, cr_cmp_key_score_desc, &c);
    const float thr = in->is_binary ? 0.5f : 0.0f;
    const int64_t k = in->k;
    cr_cmp_ctx byl = {in->label, NULL};
    double ndcg_sum = 0.0, recall_sum = 0.0;
    int64_t used = 0;
    for (int64_t lo = 0; lo < m;) {
        int64_t hi = lo, g = in->group[work[lo]];
        while (hi < m && in->group[work[hi]] == g) hi++;
        int64_t len = hi - lo, top = len < k ? len : k;
        int64_t rel = 0, rel_top = 0;
        double dcg = 0.0;
        for (int64_t i = 0; i < len; i++) {
            float y = in->label[work[lo + i]];
            if (y > thr) rel += 1;
            if (i < top) {
                dcg += (double)y / log2((double)i + 2.0);
                if (y > thr) rel_top += 1;
            }
        }
        /* A request of one row is ranked perfectly whatever the model says
         * (and without a group column every row is its own request): it
         * carries no ranking information, so it is not counted. */
        if (rel > 0 && len > 1) {
            /* The ideal order: the request's labels from high to low. */
            memcpy(scratch, work + lo, (size_t)len * sizeof *scratch);
            cr_sort_rows(scratch, tmp, len, cr_cmp_key_score_desc, &byl);
            double idcg = 0.0;
            for (int64_t i = 0; i < top; i++)
                idcg += (double)in->label[scratch[i]] / log2((double)i + 2.0);
            /* labels are >= 0 and one is > thr >= 0, so idcg > 0 */
            CR_ASSERT(idcg > 0.0);
            ndcg_sum += dcg / idcg;
            recall_sum += (double)rel_top / (double)rel;
            used++;
        }
        lo = hi;
    }
    out->k = in->k;
    out->rank_requests = used;
    out->ndcg = used > 0 ? ndcg_sum / (double)used : NAN;
    out->recall = used > 0 ? recall_sum / (double)used : NAN;
}

/* ---- the entry point ------------------------------------------------------------------- */

void cr_task_metrics_init(cr_task_metrics *m) {
    memset(m, 0, sizeof *m);
    m->mean_pred = m->mean_label = NAN;
    m->auc = m->logloss = m->calibration = m->gauc = NAN;
    m->rmse = m->mae = m->r2 = NAN;
    m->ndcg = m->recall = NAN;
}

/* Reject values the metrics cannot mean anything for; names the row. */
static cr_status cr_check_row(const cr_eval_input *in, int64_t r, int need_nonneg, cr_error *e) {
    float p = in->pred[r], y = in->label[r];
    if (in->is_binary) {
        if (!(p >= 0.0f && p <= 1.0f))
            return cr_err(e, CR_ERR_ARG,
                          "row %lld: prediction %g is not a probability in [0, 1] "
                          "(binary tasks are evaluated on sigmoid outputs, not logits)",
                          (long long)r, (double)p);
        if (!(y >= 0.0f && y <= 1.0f))
            return cr_err(e, CR_ERR_ARG, "row %lld: binary label %g: expected a value in [0, 1]",
                          (long long)r, (double)y);
        return CR_OK;
    }
    if (!isfinite(p))
        return cr_err(e, CR_ERR_ARG, "row %lld: prediction %g: expected a finite value",
                      (long long)r, (double)p);
    if (!isfinite(y))
        return cr_err(e, CR_ERR_ARG, "row %lld: label %g: expected a finite value", (long long)r,
                      (double)y);
    if (need_nonneg && y < 0.0f)
        return cr_err(e, CR_ERR_ARG,
                      "row %lld: label %g: NDCG uses labels as gains, expected a value >= 0",
                      (long long)r, (double)y);
    return CR_OK;
}

/* Pointwise metrics in row order (sums in double). */
static void cr_pointwise(cr_task_metrics *out, const int64_t *sel, int64_t m,
                         const cr_eval_input *in) {
    double sp = 0.0, sy = 0.0;
    int64_t pos = 0;
    for (int64_t i = 0; i < m; i++) {
        sp += (double)in->pred[sel[i]];
        sy += (double)in->label[sel[i]];
        if (in->label[sel[i]] > 0.5f) pos++;
    }
    out->mean_pred = sp / (double)m;
    out->mean_label = sy / (double)m;
    if (in->is_binary) {
        const double lo = 1e-7, hi = 1.0 - 1e-7;
        double ll = 0.0;
        for (int64_t i = 0; i < m; i++) {
            double p = (double)in->pred[sel[i]], y = (double)in->label[sel[i]];
            p = p < lo ? lo : (p > hi ? hi : p);
            ll -= y * log(p) + (1.0 - y) * log(1.0 - p);
        }
        out->positives = pos;
        out->logloss = ll / (double)m;
        out->calibration = out->mean_label > 0.0 ? out->mean_pred / out->mean_label : NAN;
        return;
    }
    double sse = 0.0, sae = 0.0, sst = 0.0;
    for (int64_t i = 0; i < m; i++) {
        double d = (double)in->pred[sel[i]] - (double)in->label[sel[i]];
        double c = (double)in->label[sel[i]] - out->mean_label;
        sse += d * d;
        sae += fabs(d);
        sst += c * c;
    }
    out->rmse = sqrt(sse / (double)m);
    out->mae = sae / (double)m;
    out->r2 = sst > 0.0 ? 1.0 - sse / sst : NAN;
}

cr_status cr_eval_task(const cr_eval_input *in, cr_task_metrics *out, cr_error *e) {
    cr_task_metrics_init(out);
    if (in->n < 0) return cr_err(e, CR_ERR_ARG, "evaluation: %lld rows: expected >= 0", (long long)in->n);
    if (in->k < 0) return cr_err(e, CR_ERR_ARG, "evaluation: k = %d: expected >= 0 (0 = no ranking metrics)", in->k);
    if (in->n > 0 && (!in->pred || !in->label))
        return cr_err(e, CR_ERR_ARG, "evaluation: predictions and labels are required");
    const int ranking = in->group != NULL && in->k > 0;
    if (in->n == 0) return CR_OK;

    int64_t *sel = cr_alloc_e((size_t)in->n * sizeof *sel, e, "evaluation row ids");
    int64_t *work = sel ? cr_alloc_e((size_t)in->n * sizeof *work, e, "evaluation sort buffer") : NULL;
    int64_t *tmp = work ? cr_alloc_e((size_t)in->n * sizeof *tmp, e, "evaluation sort buffer") : NULL;
    cr_status st = CR_OK;
    if (!tmp) {
        st = CR_ERR_NOMEM;
        goto done;
    }
    int64_t m = 0;
    for (int64_t r = 0; r < in->n; r++) {
        if (in->mask && !(in->mask[r] > 0.0f)) continue;
        if (in->slice && !in->slice[r]) continue;
        st = cr_check_row(in, r, ranking, e);
        if (st != CR_OK) goto done;
        sel[m++] = r;
    }
    out->n = m;
    if (ranking) out->k = in->k; /* asked for: reported (as NaN) even with no rows */
    if (m == 0) goto done;

    cr_pointwise(out, sel, m, in);
    if (in->is_binary) {
        memcpy(work, sel, (size_t)m * sizeof *work);
        cr_cmp_ctx c = {in->pred, NULL};
        cr_sort_rows(work, tmp, m, cr_cmp_key_score_asc, &c);
        out->auc = cr_auc_sorted(work, m, in->pred, in->label, NULL);
        if (in->user) cr_gauc(out, work, tmp, sel, m, in);
    }
    /* Last, because it reuses sel's storage as scratch once sel is copied. */
    if (ranking) cr_ranking(out, work, tmp, sel, sel, m, in);
done:
    cr_free(sel);
    cr_free(work);
    cr_free(tmp);
    return st;
}

/* ---- JSON -------------------------------------------------------------------------------- */

static int cr_json_num(cJSON *o, const char *key, double v) {
    cJSON *x = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    if (!x) return 0;
    if (!cJSON_AddItemToObject(o, key, x)) {
        cJSON_Delete(x);
        return 0;
    }
    return 1;
}

cr_status cr_task_metrics_to_json(const cr_task_metrics *m, int is_binary, void *cjson_object) {
    cJSON *o = cjson_object;
    if (!o || !cJSON_IsObject(o)) return CR_ERR_ARG;
    int ok = cr_json_num(o, "n", (double)m->n) && cr_json_num(o, "mean_pred", m->mean_pred) &&
             cr_json_num(o, "mean_label", m->mean_label);
    if (ok && is_binary)
        ok = cr_json_num(o, "positives", (double)m->positives) && cr_json_num(o, "auc", m->auc) &&
             cr_json_num(o, "logloss", m->logloss) &&
             cr_json_num(o, "calibration", m->calibration) && cr_json_num(o, "gauc", m->gauc) &&
             cr_json_num(o, "gauc_users", (double)m->gauc_users);
    if (ok && !is_binary)
        ok = cr_json_num(o, "rmse", m->rmse) && cr_json_num(o, "mae", m->mae) &&
             cr_json_num(o, "r2", m->r2);
    if (ok && m->k > 0 && m->rank_requests > 0) /* absent, not perfect, without requests */
        ok = cr_json_num(o, "k", (double)m->k) && cr_json_num(o, "ndcg", m->ndcg) &&
             cr_json_num(o, "recall", m->recall) &&
             cr_json_num(o, "rank_requests", (double)m->rank_requests);
    return ok ? CR_OK : CR_ERR_NOMEM;
}
