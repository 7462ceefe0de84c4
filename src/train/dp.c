/*
 * dp.c - the gradient exchange of data-parallel training. Dense: one sum
 * of the whole gradient slab, started before the sparse exchange and
 * finished after it. Sparse: every rank's touched rows and their gradients,
 * all tables in one message, are all-gathered and merged (rows ascending,
 * duplicates summed in rank order), the scheme that keeps the tables replicated; docs/distributed.md
 * weighs it against row-sharded tables with an all-to-all.
 */
#include "dp.h"

#include <stdlib.h>
#include <string.h>

cr_status cr_dp_init(cr_dp *p, const cr_dist *d, int n_tables, const int *dims, cr_error *e) {
    memset(p, 0, sizeof *p);
    p->d = d;
    p->n_tables = n_tables;
    int P = cr_dist_size(d);
    if (P == 1 || n_tables == 0) return CR_OK;
    if (P > CR_DP_MAX_RANKS)
        return cr_err(e, CR_ERR_LIMIT, "data-parallel training over %d ranks (at most %d)", P,
                      CR_DP_MAX_RANKS);
    p->merged = calloc((size_t)n_tables, sizeof *p->merged);
    p->dims = malloc((size_t)n_tables * sizeof *p->dims);
    p->counts = malloc((size_t)P * sizeof *p->counts);
    p->cur_rows = malloc((size_t)P * sizeof *p->cur_rows);
    p->cur_vals = malloc((size_t)P * sizeof *p->cur_vals);
    p->left = malloc((size_t)P * sizeof *p->left);
    if (!p->merged || !p->dims || !p->counts || !p->cur_rows || !p->cur_vals || !p->left)
        return cr_err(e, CR_ERR_NOMEM, "out of memory");
    memcpy(p->dims, dims, (size_t)n_tables * sizeof *p->dims);
    for (int i = 0; i < n_tables; i++) CR_TRY(cr_sparse_grad_init(&p->merged[i], 1, dims[i], e));
    return CR_OK;
}

void cr_dp_free(cr_dp *p) {
    if (p->merged)
        for (int i = 0; i < p->n_tables; i++) cr_sparse_grad_free(&p->merged[i]);
    free(p->merged);
    free(p->dims);
    free(p->counts);
    free(p->cur_rows);
    free(p->cur_vals);
    free(p->left);
    free(p->send);
    free(p->recv);
    memset(p, 0, sizeof *p);
}

/* One message per rank for every table: (n_tables) row counts, then each
 * table's rows (int32), then each table's values (n_t, D_t) floats. One
 * all-gather per step, whatever the number of tables: on a busy machine or
 * a big job every collective costs a latency, whatever its size. */
static cr_status pack(cr_dp *p, const cr_sparse_grad *sg, size_t *bytes, cr_error *e) {
    size_t n = (size_t)p->n_tables * sizeof(int32_t);
    for (int t = 0; t < p->n_tables; t++)
        n += (size_t)sg[t].n * (sizeof(int32_t) + (size_t)sg[t].D * sizeof(float));
    CR_TRY(cr_grow((void **)&p->send, &p->send_cap, n, 1, e));
    char *w = p->send;
    for (int t = 0; t < p->n_tables; t++) {
        int32_t n_t = sg[t].n;
        memcpy(w, &n_t, sizeof n_t);
        w += sizeof n_t;
    }
    for (int t = 0; t < p->n_tables; t++) {
        memcpy(w, sg[t].rows, (size_t)sg[t].n * sizeof(int32_t));
        w += (size_t)sg[t].n * sizeof(int32_t);
    }
    for (int t = 0; t < p->n_tables; t++) {
        memcpy(w, sg[t].vals, (size_t)sg[t].n * (size_t)sg[t].D * sizeof(float));
        w += (size_t)sg[t].n * (size_t)sg[t].D * sizeof(float);
    }
    *bytes = n;
    return CR_OK;
}

/* Table t's merged gradient from every rank's message: each rank's rows
 * are ascending and duplicate-free, so a P-way merge (ties to the lower
 * rank) gives the rows ascending with each sum in rank order. */
static cr_status merge_table(cr_dp *p, int t, int D, const char *const *msg, cr_sparse_grad *m,
                             cr_error *e) {
    int P = cr_dist_size(p->d);
    const int32_t **rows = p->cur_rows;
    const float **vals = p->cur_vals;
    int32_t *left = p->left;
    size_t T = 0;
    for (int r = 0; r < P; r++) {
        const int32_t *cnt = (const int32_t *)(const void *)msg[r];
        const char *q = msg[r] + (size_t)p->n_tables * sizeof(int32_t);
        for (int u = 0; u < t; u++) q += (size_t)cnt[u] * sizeof(int32_t);
        rows[r] = (const int32_t *)(const void *)q;
        for (int u = t; u < p->n_tables; u++) q += (size_t)cnt[u] * sizeof(int32_t);
        for (int u = 0; u < t; u++) q += (size_t)cnt[u] * (size_t)p->dims[u] * sizeof(float);
        vals[r] = (const float *)(const void *)q;
        left[r] = cnt[t];
        T += (size_t)cnt[t];
    }
    if ((size_t)m->cap < T) {
        cr_sparse_grad_free(m);
        CR_TRY(cr_sparse_grad_init(m, (int)(T ? T : 1), D, e));
    }
    int n = 0;
    for (;;) {
        int best = -1;
        int32_t row = 0;
        for (int r = 0; r < P; r++)
            if (left[r] > 0 && (best < 0 || *rows[best] > *rows[r])) best = r;
        if (best < 0) break;
        row = *rows[best]++;
        const float *v = vals[best];
        vals[best] += D;
        left[best]--;
        if (n > 0 && m->rows[n - 1] == row) {
            float *o = m->vals + (size_t)(n - 1) * (size_t)D;
            for (int j = 0; j < D; j++) o[j] += v[j];
        } else {
            m->rows[n] = row;
            memcpy(m->vals + (size_t)n * (size_t)D, v, (size_t)D * sizeof(float));
            n++;
        }
    }
    m->n = n;
    return CR_OK;
}

static cr_status exchange_sparse(cr_dp *p, const cr_sparse_grad *sg, cr_error *e) {
    int P = cr_dist_size(p->d);
    size_t bytes = 0, total = 0;
    CR_TRY(pack(p, sg, &bytes, e));
    CR_TRY(cr_dist_allgatherv(p->d, p->send, bytes, NULL, p->counts, e));
    for (int r = 0; r < P; r++) total += p->counts[r];
    CR_TRY(cr_grow((void **)&p->recv, &p->recv_cap, total + 1, 1, e));
    CR_TRY(cr_dist_allgatherv(p->d, p->send, bytes, p->recv, NULL, e));
    p->sparse_bytes += (double)total;
    const char *msg[CR_DP_MAX_RANKS];
    for (int r = 0, off = 0; r < P; off += (int)p->counts[r], r++) msg[r] = p->recv + off;
    for (int t = 0; t < p->n_tables; t++)
        CR_TRY(merge_table(p, t, p->dims[t], msg, &p->merged[t], e));
    return CR_OK;
}

cr_status cr_dp_reduce(cr_dp *p, float *grads, size_t n, cr_sparse_grad *sg,
                       const cr_sparse_grad **out, cr_error *e) {
    p->steps++;
    if (cr_dist_size(p->d) == 1) {
        for (int i = 0; i < p->n_tables; i++) out[i] = &sg[i];
        return CR_OK;
    }
    double t0 = cr_now();
    cr_dist_req rq;
    CR_TRY(cr_dist_isum_f32(p->d, grads, n, &rq, e));
    p->dense_bytes += (double)n * sizeof(float);
    cr_status s = exchange_sparse(p, sg, e);
    for (int i = 0; i < p->n_tables; i++) out[i] = &p->merged[i];
    cr_status w = cr_dist_wait(&rq, e);
    p->comm_seconds += cr_now() - t0;
    return s ? s : w;
}

cr_status cr_dp_gather_cols(const cr_dist *d, const float *local, int R, int64_t B, float *tmp,
                            float *global, cr_error *e) {
    int P = cr_dist_size(d), me = cr_dist_rank(d);
    int64_t lo, hi;
    cr_dist_split(B, me, P, &lo, &hi);
    if (P == 1) {
        if (global != local) memcpy(global, local, (size_t)R * (size_t)B * sizeof(float));
        return CR_OK;
    }
    CR_TRY(cr_dist_allgatherv(d, local, (size_t)R * (size_t)(hi - lo) * sizeof(float), tmp, NULL, e));
    const float *src = tmp;
    for (int r = 0; r < P; r++) {
        cr_dist_split(B, r, P, &lo, &hi);
        for (int h = 0; h < R; h++, src += hi - lo)
            memcpy(global + (size_t)h * (size_t)B + (size_t)lo, src, (size_t)(hi - lo) * sizeof(float));
    }
    return CR_OK;
}
