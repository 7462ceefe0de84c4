/*
 * guard.c - deadlines and fair eviction for the server's connections, what
 * libmicrohttpd 0.9.75 lacks: its timeout is an idle timeout, so a client
 * sending one byte every few seconds (slowloris) holds a connection
 * forever. The guard follows every connection through its phases (waiting
 * for headers, receiving a body, answering), and a watchdog thread shuts
 * down any connection whose headers take longer than header_s or whose
 * request (headers and body) takes longer than request_s. When the
 * connection table is nearly full, a new connection evicts the one that
 * has waited longest for its headers, so valid clients keep getting in
 * while slow ones are cycled out. The guard is the server's connection
 * limit: libmicrohttpd splits its own limit evenly among its worker
 * threads, so one worker could refuse a client while others had room;
 * its limit is set to a backstop above ours. It only ever shuts a socket down (the
 * library still owns and closes it), under the lock that the library's
 * close notification takes first, so a descriptor is never touched after
 * it was closed.
 */
#include "guard.h"

#include "../core/core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum { PH_FREE, PH_HEADERS, PH_BODY, PH_ANSWER };

struct cr_guard_conn {
    int    fd;
    int    phase;
    int    doomed; /* shut down already */
    double t;      /* when the phase's deadline clock started */
};

struct cr_guard {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    pthread_t       th;
    int             stop, started;
    int             cap, used, limit, evict_at;
    double          header_s, request_s;
    cr_guard_conn  *c;   /* (cap) */
    int64_t         n_deadline, n_evicted, n_refused;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void doom(cr_guard_conn *k) {
    if (k->doomed) return;
    k->doomed = 1;
    shutdown(k->fd, SHUT_RDWR); /* the library sees the end and closes it */
}

/* Nearly full: shut down the connections that have waited longest for
 * their headers (at least a quarter second, so a fresh one is never the
 * victim) until evict_at are left, keeping room for new clients. spare is
 * never chosen. */
static void evict(cr_guard *g, double t, const cr_guard_conn *spare) {
    int live = 0;
    for (int i = 0; i < g->cap; i++) live += g->c[i].phase != PH_FREE && !g->c[i].doomed;
    while (live > g->evict_at) {
        cr_guard_conn *old = NULL;
        for (int i = 0; i < g->cap; i++) {
            cr_guard_conn *x = &g->c[i];
            if (x->phase == PH_HEADERS && !x->doomed && x != spare && t - x->t > 0.25 &&
                (!old || x->t < old->t))
                old = x;
        }
        if (!old) return;
        doom(old);
        g->n_evicted++;
        live--;
    }
}

static void *watch(void *arg) {
    cr_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000; /* ten looks a second */
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        double t = now_s();
        for (int i = 0; i < g->cap; i++) {
            cr_guard_conn *k = &g->c[i];
            if (k->phase == PH_FREE || k->doomed) continue;
            if ((k->phase == PH_HEADERS && t - k->t > g->header_s) ||
                (k->phase == PH_BODY && t - k->t > g->request_s)) {
                doom(k);
                g->n_deadline++;
            }
        }
        evict(g, t, NULL);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

cr_status cr_guard_create(cr_guard **out, int max_conns, int backstop, double header_s,
                          double request_s, cr_error *e) {
    *out = NULL;
    cr_guard *g = calloc(1, sizeof *g);
    if (!g || !(g->c = calloc((size_t)backstop + 16, sizeof *g->c))) {
        free(g);
        return cr_err(e, CR_ERR_NOMEM, "out of memory for %d connections", backstop);
    }
    /* the library may hand over a few more than its limit while closing */
    g->cap = backstop + 16;
    g->limit = max_conns;
    g->evict_at = max_conns - (max_conns / 16 > 1 ? max_conns / 16 : 1);
    if (g->evict_at < 1) g->evict_at = 1;
    g->header_s = header_s;
    g->request_s = request_s;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->th, NULL, watch, g)) {
        cr_guard_free(g);
        return cr_err(e, CR_ERR_INTERNAL, "cannot start the connection watchdog");
    }
    g->started = 1;
    *out = g;
    return CR_OK;
}

void cr_guard_free(cr_guard *g) {
    if (!g) return;
    if (g->started) {
        pthread_mutex_lock(&g->mu);
        g->stop = 1;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->th, NULL);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->c);
    free(g);
}

cr_guard_conn *cr_guard_open(cr_guard *g, int fd) {
    pthread_mutex_lock(&g->mu);
    double t = now_s();
    cr_guard_conn *k = NULL;
    for (int i = 0; i < g->cap && !k; i++)
        if (g->c[i].phase == PH_FREE) k = &g->c[i];
    if (k) {
        *k = (cr_guard_conn){fd, PH_HEADERS, 0, t};
        g->used++;
    }
    /* over the limit: make room by eviction, else turn the newcomer away */
    int live = 0;
    for (int i = 0; i < g->cap; i++) live += g->c[i].phase != PH_FREE && !g->c[i].doomed;
    if (k && live > g->limit) {
        int before = (int)g->n_evicted;
        int save = g->evict_at;
        g->evict_at = g->limit;
        evict(g, t, k);
        g->evict_at = save;
        if ((int)g->n_evicted == before) {
            doom(k);
            g->n_refused++;
        }
    }
    evict(g, t, k);
    pthread_mutex_unlock(&g->mu);
    return k;
}

void cr_guard_close(cr_guard *g, cr_guard_conn *k) {
    if (!k) return;
    pthread_mutex_lock(&g->mu);
    k->phase = PH_FREE;
    g->used--;
    pthread_mutex_unlock(&g->mu);
}

static void set_phase(cr_guard *g, cr_guard_conn *k, int ph, int restart) {
    if (!k) return;
    pthread_mutex_lock(&g->mu);
    k->phase = ph;
    if (restart) k->t = now_s();
    pthread_mutex_unlock(&g->mu);
}

/* Headers are in: the request deadline keeps counting from the request's
 * start (the headers' clock), so headers and body share request_s. */
void cr_guard_body(cr_guard *g, cr_guard_conn *k) { set_phase(g, k, PH_BODY, 0); }
void cr_guard_answer(cr_guard *g, cr_guard_conn *k) { set_phase(g, k, PH_ANSWER, 0); }
/* The answer went out: the next request's headers have header_s, from now. */
void cr_guard_next(cr_guard *g, cr_guard_conn *k) { set_phase(g, k, PH_HEADERS, 1); }

void cr_guard_counts(cr_guard *g, int64_t *deadline, int64_t *evicted, int64_t *refused,
                     int *open) {
    pthread_mutex_lock(&g->mu);
    *deadline = g->n_deadline;
    *evicted = g->n_evicted;
    *refused = g->n_refused;
    *open = g->used;
    pthread_mutex_unlock(&g->mu);
}
