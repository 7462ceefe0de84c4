/*
 * dp.c - the gradient exchange of data-parallel training. Dense: one sum
 * of the whole gradient slab, started before the sparse exchange and
 * finished after it. Sparse: every rank's touched rows and their gradients
 * are all-gathered and merged (sorted by row, duplicates summed in rank
 * order), the scheme that keeps the tables replicated; docs/distributed.md
 * weighs it against row-sharded tables with an all-to-all.
 */
#include "dp.h"

#include <stdlib.h>
#include <string.h>

cr_status cr_dp_init(cr_dp *p, const cr_dist *d, int n_tables, const int *dims, cr_error *e) {
    memset(p, 0, sizeof *p);
    p->d = d;
    p->n_tables = n_tables;
    if (cr_dist_size(d) == 1 || n_tables == 0) return CR_OK;
    p->merged = calloc((size_t)n_tables, sizeof *p->merged);
    if (!p->merged) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_tables; i++) CR_TRY(cr_sparse_grad_init(&p->merged[i], 1, dims[i], e));
    return CR_OK;
}

void cr_dp_free(cr_dp *p) {
    if (p->merged)
        for (int i = 0; i < p->n_tables; i++) cr_sparse_grad_free(&p->merged[i]);
    free(p->merged);
    free(p->g_rows);
    free(p->g_vals);
    free(p->order);
    memset(p, 0, sizeof *p);
}

/* Gather table i's rows from every rank into m: each rank's list is
 * ascending and duplicate-free, so a P-way merge (ties to the lower rank)
 * gives the rows ascending with each sum in rank order. */
static cr_status exchange_table(cr_dp *p, const cr_sparse_grad *g, cr_sparse_grad *m,
                                cr_error *e) {
    int P = cr_dist_size(p->d), D = g->D;
    CR_TRY(cr_grow((void **)&p->order, &p->order_cap, 3 * (size_t)P, sizeof *p->order, e));
    size_t *bytes = (size_t *)p->order;          /* (P) each rank's row bytes */
    int64_t *cur = p->order + P, *end = cur + P; /* (P) each rank's run in g_rows */
    CR_TRY(cr_dist_allgatherv(p->d, g->rows, (size_t)g->n * sizeof(int32_t), NULL, bytes, e));
    size_t T = 0;
    for (int r = 0; r < P; r++) {
        cur[r] = (int64_t)T;
        T += bytes[r] / sizeof(int32_t);
        end[r] = (int64_t)T;
    }
    CR_TRY(cr_grow((void **)&p->g_rows, &p->rows_cap, T + 1, sizeof *p->g_rows, e));
    CR_TRY(cr_grow((void **)&p->g_vals, &p->vals_cap, (T + 1) * (size_t)D, sizeof *p->g_vals, e));
    CR_TRY(cr_dist_allgatherv(p->d, g->rows, (size_t)g->n * sizeof(int32_t), p->g_rows, NULL, e));
    CR_TRY(cr_dist_allgatherv(p->d, g->vals, (size_t)g->n * (size_t)D * sizeof(float), p->g_vals,
                              NULL, e));
    p->sparse_bytes += (double)T * (double)(sizeof(int32_t) + (size_t)D * sizeof(float));
    if ((size_t)m->cap < T) {
        cr_sparse_grad_free(m);
        CR_TRY(cr_sparse_grad_init(m, (int)(T ? T : 1), D, e));
    }
    int n = 0;
    for (;;) {
        int best = -1;
        int32_t row = 0;
        for (int r = 0; r < P; r++)
            if (cur[r] < end[r] && (best < 0 || p->g_rows[cur[r]] < row))
                best = r, row = p->g_rows[cur[r]];
        if (best < 0) break;
        const float *v = p->g_vals + (size_t)cur[best]++ * (size_t)D;
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
    cr_status s = CR_OK;
    for (int i = 0; i < p->n_tables && !s; i++) {
        s = exchange_table(p, &sg[i], &p->merged[i], e);
        out[i] = &p->merged[i];
    }
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
