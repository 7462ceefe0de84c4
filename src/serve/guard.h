/*
 * guard.h - deadlines and fair eviction for the server's connections
 * (guard.c): header and whole-request deadlines enforced by a watchdog
 * thread, and the oldest header-waiting connection evicted when the table
 * is nearly full. Internal to src/serve.
 */
#ifndef CR_SERVE_GUARD_H
#define CR_SERVE_GUARD_H

#include "crossrec.h"

typedef struct cr_guard      cr_guard;
typedef struct cr_guard_conn cr_guard_conn;

/* max_conns: the limit the guard keeps (a newcomer beyond it evicts the
 * longest header wait, or is turned away); backstop: the most the library
 * may hand over at once (its own, per-thread limit, summed). */
cr_status      cr_guard_create(cr_guard **g, int max_conns, int backstop, double header_s,
                               double request_s, cr_error *e);
void           cr_guard_free(cr_guard *g);
/* A connection was accepted (NULL if the table is full: it is then not
 * guarded, which the library's own limit keeps from happening). */
cr_guard_conn *cr_guard_open(cr_guard *g, int fd);
/* It is about to be closed by the library (before its descriptor is). */
void           cr_guard_close(cr_guard *g, cr_guard_conn *k);
/* Its headers are in / its answer is queued / its answer went out. */
void           cr_guard_body(cr_guard *g, cr_guard_conn *k);
void           cr_guard_answer(cr_guard *g, cr_guard_conn *k);
void           cr_guard_next(cr_guard *g, cr_guard_conn *k);
/* Connections shut down by a deadline, by eviction, turned away at the
 * limit, and open now. */
void           cr_guard_counts(cr_guard *g, int64_t *deadline, int64_t *evicted, int64_t *refused,
                               int *open);

#endif /* CR_SERVE_GUARD_H */
