/*
 * dp.h - data-parallel training over a cr_dist job: after each rank's
 * backward over its slice of the global batch, the dense gradients are
 * summed (MPI_Allreduce) and the row-sparse table gradients all-gathered
 * and merged, so every rank applies the same update. Also the gather of a
 * rank's output columns into the global batch's. See docs/distributed.md.
 */
#ifndef CR_TRAIN_DP_H
#define CR_TRAIN_DP_H

#include "../core/dist.h"
#include "optim.h"

#define CR_DP_MAX_RANKS 4096

typedef struct cr_dp {
    const cr_dist  *d;
    int             n_tables;
    int            *dims;        /* (n_tables) */
    cr_sparse_grad *merged;      /* (n_tables) every rank's rows, summed, rows ascending */
    char           *send, *recv; /* this rank's message; every rank's, in rank order */
    size_t          send_cap, recv_cap;
    size_t         *counts;      /* (P) bytes of each rank's message */
    const int32_t **cur_rows;    /* (P) merge cursors */
    const float   **cur_vals;    /* (P) */
    int32_t        *left;        /* (P) */
    /* totals over the steps taken, for metrics.json and the benchmark */
    int64_t         steps;
    double          comm_seconds;          /* in the exchange (dense and sparse together) */
    double          dense_bytes, sparse_bytes; /* payload: the gradient slab; every rank's
                                                * sparse message (what each rank receives) */
} cr_dp;

cr_status cr_dp_init(cr_dp *p, const cr_dist *d, int n_tables, const int *dims, cr_error *e);
void      cr_dp_free(cr_dp *p);

/* Sum grads (n floats) over the ranks and merge each table's sparse
 * gradient sg[i]; *out[i] then points at the merged one (sg[i] itself in a
 * job of one). The dense sum travels while the sparse rows are exchanged.
 * Duplicate rows are summed in rank order, so every rank gets the same bits. */
cr_status cr_dp_reduce(cr_dp *p, float *grads, size_t n, cr_sparse_grad *sg,
                       const cr_sparse_grad **out, cr_error *e);

/* The global (R, B) matrix from each rank's column block (R, B_r) of
 * local, ranks holding consecutive blocks as cr_dist_split gives them;
 * tmp holds R * B floats. In a job of one, a copy. */
cr_status cr_dp_gather_cols(const cr_dist *d, const float *local, int R, int64_t B, float *tmp,
                            float *global, cr_error *e);

#endif /* CR_TRAIN_DP_H */
