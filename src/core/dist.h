/*
 * dist.h - the one seam between crossrec and a distributed engine (MPI).
 * Everything else calls cr_dist_* and never includes mpi.h: built with
 * MPI=1 these are Open MPI collectives over the job's ranks; without it (or
 * with d == NULL) a job is one process and every call is a copy or a no-op.
 * Collectives must be called by every rank in the same order.
 */
#ifndef CR_CORE_DIST_H
#define CR_CORE_DIST_H

#include "core.h"

#include <stddef.h>
#include <stdint.h>

/* cr_dist, cr_dist_init, _finalize, _abort, _rank, _size and _has_mpi are
 * public (crossrec.h); the collectives below are the library's. */

/* Sums over ranks, in place; every rank gets the same bits. */
cr_status cr_dist_sum_f32(const cr_dist *d, float *x, size_t n, cr_error *e);
cr_status cr_dist_sum_f64(const cr_dist *d, double *x, size_t n, cr_error *e);
cr_status cr_dist_sum_i64(const cr_dist *d, int64_t *x, size_t n, cr_error *e);
cr_status cr_dist_max_f64(const cr_dist *d, double *x, size_t n, cr_error *e);

/* A sum started now and finished by cr_dist_wait, so other work (the
 * sparse exchange) runs while the dense gradients travel. x must not be
 * touched in between. */
typedef struct cr_dist_req { void *h; } cr_dist_req;
cr_status cr_dist_isum_f32(const cr_dist *d, float *x, size_t n, cr_dist_req *r, cr_error *e);
cr_status cr_dist_wait(cr_dist_req *r, cr_error *e);

/* root's bytes to every rank. */
cr_status cr_dist_bcast(const cr_dist *d, void *buf, size_t bytes, int root, cr_error *e);
/* Every rank's `bytes` from send, concatenated in rank order into recv;
 * counts (size entries, may be NULL) receives each rank's byte count. With
 * recv == NULL only the counts are exchanged (to size recv). */
cr_status cr_dist_allgatherv(const cr_dist *d, const void *send, size_t bytes, void *recv,
                             size_t *counts, cr_error *e);
cr_status cr_dist_barrier(const cr_dist *d, cr_error *e);

/* The rows [*lo, *hi) of n that rank r of size takes: contiguous, in rank
 * order, sizes differing by at most one. */
void cr_dist_split(int64_t n, int r, int size, int64_t *lo, int64_t *hi);

/* Sharded output: each rank wrote its part (a complete file at `part`,
 * which may be NULL on a rank with nothing to add); rank 0 writes `out` as
 * the parts concatenated in rank order (streamed over the job, so no
 * shared file system is needed), atomically. Every part file is removed. */
cr_status cr_dist_concat(const cr_dist *d, const char *part, const char *out, cr_error *e);
/* The name of this rank's part of `out`: "dir/.partR-name" for R = rank
 * (the same extension), or out itself in a job of one. */
void      cr_dist_part_path(const cr_dist *d, const char *out, char *buf, size_t cap);

#endif /* CR_CORE_DIST_H */
