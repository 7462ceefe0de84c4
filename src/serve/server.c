/*
 * server.c - the HTTP transport of `crossrec serve`: libmicrohttpd in
 * thread-pool mode with a connection limit, a per-address limit and the
 * guard's deadlines (guard.c); body limits for Content-Length and chunked
 * bodies alike; framing a proxy could read differently refused; routing
 * for crossrec's own protocol (/v1) and the Open Inference Protocol (/v2);
 * named models, each reference-counted and swapped atomically on a reload
 * that validates first; admin endpoints behind a bearer token and a rate
 * limit; Prometheus metrics; a graceful stop. JSON in and out is
 * http_json.c's and kserve.c's business. The server object owns every
 * piece of state; nothing here prints, exits or touches signals: messages
 * for the operator go to the configured log callback, never to clients.
 */
#include "server.h"

#include "../core/core.h"
#include "guard.h"
#include "serve_internal.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- metrics -------------------------------------------------------------------------- */

enum { EP_SCORE, EP_RELOAD, EP_HEALTHZ, EP_METRICS, EP_INFER, EP_V2, EP_OTHER, EP_N };
static const char *const ep_name[EP_N] = {"/v1/score", "/v1/reload", "/healthz", "/metrics",
                                          "/v2/models/infer", "/v2", "other"};
static const int codes[] = {200, 400, 401, 403, 404, 405, 413, 429, 500, 503};
#define N_CODES ((int)(sizeof codes / sizeof codes[0]))
/* Latency buckets of scoring requests (either protocol), seconds (Prometheus `le`). */
static const double lat_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
#define N_LAT ((int)(sizeof lat_le / sizeof lat_le[0]))

typedef struct cr_metrics {
    _Atomic uint64_t requests[EP_N][N_CODES];
    _Atomic uint64_t errors[CR_HE_N];
    _Atomic uint64_t lat_bucket[N_LAT + 1]; /* last = +Inf */
    _Atomic uint64_t lat_sum_ns, lat_count;
    _Atomic uint64_t candidates, missing;
    _Atomic uint64_t reload_ok, reload_err;
} cr_metrics;

/* ---- the served models ------------------------------------------------------------------ */

/* A loaded model and the number of holders: the server (while current)
 * and each request running on it. The last release frees it, so a reload
 * never pulls a model from under a request. */
typedef struct cr_served {
    cr_model *m;
    int       refs;
    double    loaded_at; /* unix seconds */
} cr_served;

struct cr_server {
    cr_server_cfg      cfg;
    struct MHD_Daemon *d;
    cr_guard          *guard;
    int                port;
    pthread_mutex_t    mu;        /* guards cur[] and refs */
    pthread_mutex_t    reload_mu; /* one reload at a time */
    cr_served         *cur[CR_SERVER_MAX_MODELS];
    double             last_admin_reload; /* monotonic seconds; 0 = never */
    _Atomic int        draining;
    _Atomic int64_t    inflight;
    cr_metrics         met;
};

static void slog(const cr_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void slog(const cr_server *s, const char *fmt, ...) {
    if (!s->cfg.log) return;
    char msg[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_ctx, msg);
}

static cr_served *cr_acquire(cr_server *s, int k) {
    pthread_mutex_lock(&s->mu);
    cr_served *sm = s->cur[k];
    sm->refs++;
    pthread_mutex_unlock(&s->mu);
    return sm;
}

static void cr_release(cr_server *s, cr_served *sm) {
    pthread_mutex_lock(&s->mu);
    int last = --sm->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) {
        cr_model_free(sm->m);
        free(sm);
    }
}

/* Whether two models read the same inputs the same way (a client's
 * requests mean the same to both). */
static cr_status cr_same_inputs(const cr_model *a, const cr_model *b, const char *path,
                                cr_error *e) {
    if (cr_model_n_inputs(a) != cr_model_n_inputs(b))
        return cr_err(e, CR_ERR_MISMATCH, "%s: %d inputs, the model being served has %d", path,
                      cr_model_n_inputs(b), cr_model_n_inputs(a));
    for (int i = 0; i < cr_model_n_inputs(a); i++)
        if (strcmp(cr_model_input_column(a, i), cr_model_input_column(b, i)) ||
            cr_model_input_is_number(a, i) != cr_model_input_is_number(b, i) ||
            cr_model_input_sep(a, i) != cr_model_input_sep(b, i))
            return cr_err(e, CR_ERR_MISMATCH,
                          "%s: input %d reads column '%s', the model being served reads '%s' "
                          "(or another type)", path, i, cr_model_input_column(b, i),
                          cr_model_input_column(a, i));
    return CR_OK;
}

/* Load model k's file and validate it: finite weights, and (against the
 * model it would replace, if any) the same inputs. */
static cr_status cr_load(const cr_server *s, int k, const cr_model *old, cr_served **out,
                         cr_error *e) {
    const char *path = s->cfg.models[k].path;
    cr_served *sm = calloc(1, sizeof *sm);
    if (!sm) return cr_err(e, CR_ERR_NOMEM, "out of memory loading %s", path);
    cr_status st = cr_model_load_opts(&sm->m, path, &s->cfg.model, e);
    if (!st) st = cr_model_check_finite(sm->m, e);
    if (!st && old && !s->cfg.allow_schema_change && (st = cr_same_inputs(old, sm->m, path, e)))
        cr_err_prefix(e, "model '%s' (pass --allow-schema-change to accept it)",
                      s->cfg.models[k].name);
    if (st) {
        cr_model_free(sm->m);
        free(sm);
        return st;
    }
    sm->refs = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sm->loaded_at = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    *out = sm;
    return CR_OK;
}

cr_status cr_server_reload(cr_server *s, cr_error *e) {
    if (!s) return cr_err(e, CR_ERR_ARG, "cr_server_reload: s is NULL");
    pthread_mutex_lock(&s->reload_mu);
    cr_status first = CR_OK;
    for (int k = 0; k < s->cfg.n_models; k++) {
        cr_served *sm, *old = cr_acquire(s, k);
        cr_error ek = {0};
        cr_status st = cr_load(s, k, old->m, &sm, &ek);
        cr_release(s, old);
        if (st) {
            atomic_fetch_add(&s->met.reload_err, 1);
            slog(s, "reload of model '%s' rejected, the old one keeps serving: %s",
                 s->cfg.models[k].name, ek.msg);
            if (!first) {
                first = st;
                if (e) *e = ek;
            }
            continue;
        }
        pthread_mutex_lock(&s->mu);
        old = s->cur[k];
        s->cur[k] = sm;
        pthread_mutex_unlock(&s->mu);
        cr_release(s, old); /* the server's hold; running requests keep theirs */
        atomic_fetch_add(&s->met.reload_ok, 1);
    }
    pthread_mutex_unlock(&s->reload_mu);
    return first;
}

void cr_server_version(cr_server *s, char *buf, size_t cap) {
    if (!buf || !cap) return;
    if (!s) {
        buf[0] = 0;
        return;
    }
    cr_served *sm = cr_acquire(s, 0);
    snprintf(buf, cap, "%s", cr_model_version(sm->m));
    cr_release(s, sm);
}

/* ---- responses -------------------------------------------------------------------------- */

typedef struct cr_conn {
    char          *buf;
    size_t         len, cap;
    int            too_big;   /* the body passed max_body: its bytes are dropped */
    int            chunked;   /* no Content-Length */
    int            close;     /* answer with Connection: close (body left unread) */
    size_t         dropped;
    double         t0;
    cr_guard_conn *gk;
} cr_conn;

static void cr_count(cr_server *s, int ep, int status, cr_http_err kind) {
    int ci = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == status) ci = i;
    if (ci < N_CODES) atomic_fetch_add_explicit(&s->met.requests[ep][ci], 1, memory_order_relaxed);
    if (kind != CR_HE_NONE) atomic_fetch_add_explicit(&s->met.errors[kind], 1, memory_order_relaxed);
}

/* Queue body (malloc'd, taken over) with status; counts it. extra: one
 * more header as "Name: value", or NULL. */
static enum MHD_Result cr_send(cr_server *s, struct MHD_Connection *c, cr_conn *cc, int ep,
                               int status, cr_http_err kind, char *body, size_t len,
                               const char *type, const char *extra) {
    cr_count(s, ep, status, kind);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (cc && cc->close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (extra) {
        char h[128];
        snprintf(h, sizeof h, "%s", extra);
        char *colon = strchr(h, ':');
        if (colon) {
            *colon = 0;
            MHD_add_response_header(r, h, colon + 2);
        }
    }
    enum MHD_Result q = MHD_queue_response(c, (unsigned int)status, r);
    MHD_destroy_response(r);
    if (cc && s->guard) cr_guard_answer(s->guard, cc->gk);
    return q;
}

static enum MHD_Result cr_send_result(cr_server *s, struct MHD_Connection *c, cr_conn *cc, int ep,
                                      cr_http_result *hr, const char *extra) {
    if (!hr->body) return MHD_NO; /* out of memory: drop the connection */
    return cr_send(s, c, cc, ep, hr->status, hr->kind, hr->body, hr->len, "application/json", extra);
}

static enum MHD_Result cr_send_error(cr_server *s, struct MHD_Connection *c, cr_conn *cc, int ep,
                                     int v2, int status, cr_http_err kind, const char *extra,
                                     const char *fmt, ...) __attribute__((format(printf, 9, 10)));
static enum MHD_Result cr_send_error(cr_server *s, struct MHD_Connection *c, cr_conn *cc, int ep,
                                     int v2, int status, cr_http_err kind, const char *extra,
                                     const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cr_http_result hr = {0};
    hr.v2 = v2;
    cr_http_error(&hr, status, kind, "%s", msg);
    return cr_send_result(s, c, cc, ep, &hr, extra);
}

static enum MHD_Result cr_send_text(cr_server *s, struct MHD_Connection *c, cr_conn *cc, int ep,
                                    int status, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result cr_send_text(cr_server *s, struct MHD_Connection *c, cr_conn *cc, int ep,
                                    int status, const char *fmt, ...) {
    char *b = malloc(1024);
    if (!b) return MHD_NO;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return cr_send(s, c, cc, ep, status, status == 200 ? CR_HE_NONE : CR_HE_NOT_READY, b,
                   (size_t)(n < 1024 ? n : 1023), "application/json", NULL);
}

/* ---- /metrics ------------------------------------------------------------------------- */

static char *cr_metrics_text(cr_server *s, size_t *len) {
    cr_buf b = {0};
    cr_metrics *m = &s->met;
#define P(...) cr_buf_fmt(&b, __VA_ARGS__)
    P("# HELP crossrec_http_requests_total Requests answered, by endpoint and status code.\n"
      "# TYPE crossrec_http_requests_total counter\n");
    for (int ep = 0; ep < EP_N; ep++)
        for (int ci = 0; ci < N_CODES; ci++) {
            uint64_t v = atomic_load(&m->requests[ep][ci]);
            if (v || (ep == EP_SCORE && codes[ci] == 200))
                P("crossrec_http_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n", ep_name[ep],
                  codes[ci], (unsigned long long)v);
        }
    P("# HELP crossrec_http_errors_total Rejected or failed requests, by kind.\n"
      "# TYPE crossrec_http_errors_total counter\n");
    for (int k = 1; k < CR_HE_N; k++)
        P("crossrec_http_errors_total{kind=\"%s\"} %llu\n", cr_http_err_name((cr_http_err)k),
          (unsigned long long)atomic_load(&m->errors[k]));
    P("# HELP crossrec_score_duration_seconds Time to answer a scoring request (POST /v1/score "
      "or .../infer), body received to response queued.\n"
      "# TYPE crossrec_score_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= N_LAT; i++) {
        cum += atomic_load(&m->lat_bucket[i]);
        if (i < N_LAT)
            P("crossrec_score_duration_seconds_bucket{le=\"%g\"} %llu\n", lat_le[i],
              (unsigned long long)cum);
        else
            P("crossrec_score_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    P("crossrec_score_duration_seconds_sum %.9f\n", 1e-9 * (double)atomic_load(&m->lat_sum_ns));
    P("crossrec_score_duration_seconds_count %llu\n", (unsigned long long)atomic_load(&m->lat_count));
    P("# HELP crossrec_candidates_scored_total Candidates scored.\n"
      "# TYPE crossrec_candidates_scored_total counter\n"
      "crossrec_candidates_scored_total %llu\n", (unsigned long long)atomic_load(&m->candidates));
    P("# HELP crossrec_missing_feature_defaults_total Feature values absent from requests that "
      "took the schema's default (a context value counts once).\n"
      "# TYPE crossrec_missing_feature_defaults_total counter\n"
      "crossrec_missing_feature_defaults_total %llu\n", (unsigned long long)atomic_load(&m->missing));
    P("# HELP crossrec_model_reloads_total Model reloads, by result.\n"
      "# TYPE crossrec_model_reloads_total counter\n"
      "crossrec_model_reloads_total{result=\"ok\"} %llu\n"
      "crossrec_model_reloads_total{result=\"error\"} %llu\n",
      (unsigned long long)atomic_load(&m->reload_ok), (unsigned long long)atomic_load(&m->reload_err));
    P("# HELP crossrec_requests_in_flight Requests being received or answered.\n"
      "# TYPE crossrec_requests_in_flight gauge\ncrossrec_requests_in_flight %lld\n",
      (long long)atomic_load(&s->inflight));
    int64_t dl, ev, rf;
    int open;
    cr_guard_counts(s->guard, &dl, &ev, &rf, &open);
    P("# HELP crossrec_connections_open Connections open now.\n"
      "# TYPE crossrec_connections_open gauge\ncrossrec_connections_open %d\n"
      "# HELP crossrec_connections_closed_total Connections the server shut down: a request "
      "past its deadline, the longest wait for headers evicted when the table was nearly full, "
      "or a newcomer turned away at the limit when none could be evicted.\n"
      "# TYPE crossrec_connections_closed_total counter\n"
      "crossrec_connections_closed_total{reason=\"deadline\"} %lld\n"
      "crossrec_connections_closed_total{reason=\"evicted\"} %lld\n"
      "crossrec_connections_closed_total{reason=\"limit\"} %lld\n",
      open, (long long)dl, (long long)ev, (long long)rf);
    P("# HELP crossrec_model_info The models being served (file mtime and hash).\n"
      "# TYPE crossrec_model_info gauge\n");
    for (int k = 0; k < s->cfg.n_models; k++) {
        cr_served *sm = cr_acquire(s, k);
        P("crossrec_model_info{model=\"%s\",version=\"%s\",precision=\"%s\"} 1\n",
          s->cfg.models[k].name, cr_model_version(sm->m),
          cr_precision_name(cr_model_precision(sm->m)));
        P("crossrec_model_loaded_timestamp_seconds{model=\"%s\"} %.3f\n", s->cfg.models[k].name,
          sm->loaded_at);
        cr_release(s, sm);
    }
#undef P
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}

/* ---- routing -------------------------------------------------------------------------- */

static void cr_observe(cr_server *s, double t0) {
    double dt = cr_now() - t0;
    int i = 0;
    while (i < N_LAT && dt > lat_le[i]) i++;
    atomic_fetch_add_explicit(&s->met.lat_bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->met.lat_sum_ns, (uint64_t)(dt * 1e9), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->met.lat_count, 1, memory_order_relaxed);
}

/* Constant-time comparison of the Authorization header with the token. */
static int cr_token_ok(const cr_server *s, const char *auth) {
    const char *tok = s->cfg.admin_token;
    size_t n = strlen(tok);
    if (!auth || strncasecmp(auth, "Bearer ", 7)) return 0;
    auth += 7;
    size_t m = strlen(auth);
    unsigned char diff = (unsigned char)(m != n);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(tok[i] ^ (i < m ? auth[i] : 0));
    return diff == 0;
}

static enum MHD_Result cr_reload_route(cr_server *s, struct MHD_Connection *c, cr_conn *cc) {
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth)
        return cr_send_error(s, c, cc, EP_RELOAD, 0, 401, CR_HE_UNAUTHORIZED,
                             "WWW-Authenticate: Bearer", "reload needs an admin token "
                             "(Authorization: Bearer TOKEN)");
    if (!cr_token_ok(s, auth))
        return cr_send_error(s, c, cc, EP_RELOAD, 0, 403, CR_HE_UNAUTHORIZED, NULL,
                             "the admin token is not right");
    pthread_mutex_lock(&s->reload_mu);
    double now = cr_now(), wait = s->last_admin_reload > 0
                                      ? s->last_admin_reload + s->cfg.reload_interval_s - now
                                      : 0;
    if (wait <= 0) s->last_admin_reload = now;
    pthread_mutex_unlock(&s->reload_mu);
    if (wait > 0) {
        char ra[64];
        snprintf(ra, sizeof ra, "Retry-After: %d", (int)wait + 1);
        return cr_send_error(s, c, cc, EP_RELOAD, 0, 429, CR_HE_RATE_LIMITED, ra,
                             "one reload per %g s; retry in %.1f s", s->cfg.reload_interval_s, wait);
    }
    cr_error e = {0};
    char ver[64];
    if (cr_server_reload(s, &e)) {
        cr_server_version(s, ver, sizeof ver);
        /* the reason names files: it went to the log, not to the client */
        return cr_send_error(s, c, cc, EP_RELOAD, 0, 500, CR_HE_RELOAD, NULL,
                             "reload rejected, still serving version %s (the server log says why)",
                             ver);
    }
    cr_server_version(s, ver, sizeof ver);
    slog(s, "reloaded on request, now serving version %s", ver);
    return cr_send_text(s, c, cc, EP_RELOAD, 200, "{\"reloaded\":true,\"model_version\":\"%s\"}\n",
                        ver);
}

static int cr_find_model(const cr_server *s, const char *name, size_t n) {
    for (int k = 0; k < s->cfg.n_models; k++)
        if (strlen(s->cfg.models[k].name) == n && !strncmp(s->cfg.models[k].name, name, n)) return k;
    return -1;
}

/* Score body with model k by either protocol. */
static enum MHD_Result cr_score_route(cr_server *s, struct MHD_Connection *c, cr_conn *cc, int ep,
                                      int k) {
    /* the kernels of one request run on kernel_threads. This runs on one of
     * the server's own worker threads (libmicrohttpd's pool), outside any
     * cr_ctx call: OpenMP's thread count is an ICV of the calling thread,
     * so setting it here changes this worker alone, for every request it
     * serves, and no thread of the program that started the server. */
    cr_set_threads(s->cfg.kernel_threads);
    cr_served *sm = cr_acquire(s, k);
    cr_http_result hr = {0};
    const char *body = cc->buf ? cc->buf : "";
    if (ep == EP_INFER)
        cr_kserve_infer(sm->m, s->cfg.models[k].name, body, cc->len, s->cfg.max_candidates, &hr);
    else
        cr_http_score(sm->m, body, cc->len, s->cfg.max_candidates, &hr);
    cr_release(s, sm);
    if (hr.status == 200) {
        atomic_fetch_add_explicit(&s->met.candidates, (uint64_t)hr.candidates, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->met.missing, (uint64_t)hr.missing, memory_order_relaxed);
    }
    cr_observe(s, cc->t0);
    return cr_send_result(s, c, cc, ep, &hr, NULL);
}

/* /v2...: the Open Inference Protocol. rest is the URL after "/v2". */
static enum MHD_Result cr_v2_route(cr_server *s, struct MHD_Connection *c, cr_conn *cc,
                                   const char *rest, int get, int post) {
    char esc[300];
    if (!*rest || !strcmp(rest, "/")) {
        if (!get) goto method;
        return cr_send_text(s, c, cc, EP_V2, 200,
                            "{\"name\":\"crossrec\",\"version\":\"%s\",\"extensions\":[]}\n",
                            CR_VERSION);
    }
    if (!strcmp(rest, "/health/live")) {
        if (!get) goto method;
        return cr_send_text(s, c, cc, EP_V2, 200, "{\"live\":true}\n");
    }
    if (!strcmp(rest, "/health/ready")) {
        if (!get) goto method;
        int ready = !atomic_load(&s->draining);
        return cr_send_text(s, c, cc, EP_V2, ready ? 200 : 503, "{\"ready\":%s}\n",
                            ready ? "true" : "false");
    }
    if (strncmp(rest, "/models/", 8)) goto not_found;
    const char *name = rest + 8, *p = name;
    while (*p && *p != '/') p++;
    int k = cr_find_model(s, name, (size_t)(p - name));
    if (k < 0) {
        char nm[128];
        snprintf(nm, sizeof nm, "%.*s", (int)(p - name > 100 ? 100 : p - name), name);
        cr_json_escape(esc, sizeof esc, nm);
        return cr_send_error(s, c, cc, EP_V2, 1, 404, CR_HE_NOT_FOUND, NULL,
                             "no model named '%s'", nm);
    }
    cr_served *sm = cr_acquire(s, k);
    char ver[64];
    snprintf(ver, sizeof ver, "%s", cr_model_version(sm->m));
    if (!strncmp(p, "/versions/", 10)) {
        const char *v = p + 10, *q = v;
        while (*q && *q != '/') q++;
        if ((size_t)(q - v) != strlen(ver) || strncmp(v, ver, strlen(ver))) {
            cr_release(s, sm);
            return cr_send_error(s, c, cc, EP_V2, 1, 404, CR_HE_NOT_FOUND, NULL,
                                 "model '%s' has no such version (it serves version %s)",
                                 s->cfg.models[k].name, ver);
        }
        p = q;
    }
    enum MHD_Result res;
    if (!*p) {
        if (!get) goto method_held;
        cr_http_result hr = {0};
        cr_kserve_metadata(sm->m, s->cfg.models[k].name, &hr);
        res = cr_send_result(s, c, cc, EP_V2, &hr, NULL);
    } else if (!strcmp(p, "/ready")) {
        if (!get) goto method_held;
        res = cr_send_text(s, c, cc, EP_V2, 200, "{\"name\":\"%s\",\"ready\":true}\n",
                           s->cfg.models[k].name);
    } else if (!strcmp(p, "/infer")) {
        if (!post) goto method_held;
        cr_release(s, sm);
        if (cc->too_big)
            return cr_send_error(s, c, cc, EP_INFER, 1, 413, CR_HE_BODY_TOO_LARGE, NULL,
                                 "body: larger than the limit of %lld bytes",
                                 (long long)s->cfg.max_body);
        return cr_score_route(s, c, cc, EP_INFER, k);
    } else {
        cr_release(s, sm);
        goto not_found;
    }
    cr_release(s, sm);
    return res;
method_held:
    cr_release(s, sm);
method:
    return cr_send_error(s, c, cc, EP_V2, 1, 405, CR_HE_METHOD, NULL,
                         "this endpoint takes %s", !strstr(rest, "/infer") ? "GET" : "POST");
not_found:
    return cr_send_error(s, c, cc, EP_V2, 1, 404, CR_HE_NOT_FOUND, NULL,
                         "no endpoint; see GET /v2 and /v2/models/NAME");
}

static enum MHD_Result cr_route(cr_server *s, struct MHD_Connection *c, const char *url,
                                const char *method, cr_conn *cc) {
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    if (!strncmp(url, "/v2", 3) && (url[3] == 0 || url[3] == '/'))
        return cr_v2_route(s, c, cc, url + 3, get, post);
    int admin = s->cfg.admin_token[0] != 0;
    int ep = !strcmp(url, "/v1/score")             ? EP_SCORE
             : !strcmp(url, "/v1/reload") && admin ? EP_RELOAD
             : !strcmp(url, "/healthz")            ? EP_HEALTHZ
             : !strcmp(url, "/metrics")            ? EP_METRICS
                                                   : EP_OTHER;
    if (ep == EP_OTHER)
        return cr_send_error(s, c, cc, ep, 0, 404, CR_HE_NOT_FOUND, NULL,
                             "no such endpoint; try POST /v1/score or GET /v2");
    if ((ep <= EP_RELOAD && !post) || (ep >= EP_HEALTHZ && !get))
        return cr_send_error(s, c, cc, ep, 0, 405, CR_HE_METHOD, NULL, "%s takes %s", url,
                             ep <= EP_RELOAD ? "POST" : "GET");
    if (cc->too_big)
        return cr_send_error(s, c, cc, ep, 0, 413, CR_HE_BODY_TOO_LARGE, NULL,
                             "body: larger than the limit of %lld bytes", (long long)s->cfg.max_body);
    if (ep == EP_RELOAD) return cr_reload_route(s, c, cc);
    if (ep == EP_HEALTHZ) {
        char ver[64];
        cr_server_version(s, ver, sizeof ver);
        return cr_send_text(s, c, cc, ep, 200, "{\"status\":\"ok\",\"model_version\":\"%s\"}\n", ver);
    }
    if (ep == EP_METRICS) {
        size_t n;
        char *b = cr_metrics_text(s, &n);
        if (!b) return MHD_NO;
        return cr_send(s, c, cc, ep, 200, CR_HE_NONE, b, n, "text/plain; version=0.0.4", NULL);
    }
    return cr_score_route(s, c, cc, EP_SCORE, 0);
}

/* ---- the request's life ------------------------------------------------------------------ */

typedef struct cr_hdr_count {
    int content_length, transfer_encoding;
} cr_hdr_count;

static enum MHD_Result cr_count_hdr(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
    cr_hdr_count *h = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) h->content_length++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) h->transfer_encoding++;
    return MHD_YES;
}

/* The first call, headers in: framing a proxy in front could read another
 * way is refused (request smuggling), and a declared length far above the
 * limit before any of it is read. */
static enum MHD_Result cr_begin(cr_server *s, struct MHD_Connection *c, const char *url,
                                const char *method, cr_conn *cc) {
    int v2 = !strncmp(url, "/v2", 3);
    cr_hdr_count h = {0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, cr_count_hdr, &h);
    if (h.content_length > 1 || (h.content_length && h.transfer_encoding)) {
        cc->close = 1;
        return cr_send_error(s, c, cc, v2 ? EP_V2 : EP_OTHER, v2, 400, CR_HE_BAD_HTTP, NULL,
                             "%s", h.content_length > 1
                                       ? "two Content-Length headers"
                                       : "both Content-Length and Transfer-Encoding");
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    cc->chunked = !cl;
    /* A length just above the limit is read and dropped, so the client can
     * send its whole body and read the answer; one far above is refused now. */
    if (cl && strtoll(cl, NULL, 10) / 2 > s->cfg.max_body) {
        cc->too_big = 1;
        cc->close = 1;
        return cr_route(s, c, url, method, cc);
    }
    return MHD_YES;
}

static enum MHD_Result cr_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    cr_server *s = cls;
    cr_conn *cc = *con_cls;
    if (!cc) {
        if (!(cc = calloc(1, sizeof *cc))) return MHD_NO;
        cc->t0 = cr_now();
        *con_cls = cc;
        atomic_fetch_add(&s->inflight, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        cc->gk = ci ? ci->socket_context : NULL;
        cr_guard_body(s->guard, cc->gk);
        return cr_begin(s, c, url, method, cc);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!cc->too_big && cc->len + n > (size_t)s->cfg.max_body) {
            cc->too_big = 1;
            free(cc->buf);
            cc->buf = NULL;
            cc->len = cc->cap = 0;
        }
        if (cc->too_big) {
            /* Past the limit, at most another max_body is read (and
             * dropped) so a client just over it reads its 413; beyond
             * that, and for a chunked body at once, the connection is
             * answered now if the library lets us, else closed. */
            cc->dropped += n;
            if (cc->chunked || cc->dropped > (size_t)s->cfg.max_body) {
                cc->close = 1;
                if (cr_route(s, c, url, method, cc) != MHD_YES) return MHD_NO;
            }
            return MHD_YES;
        }
        if (cc->len + n + 1 > cc->cap) {
            size_t cap = (cc->len + n + 1) * 2;
            if (cap > (size_t)s->cfg.max_body + 1) cap = (size_t)s->cfg.max_body + 1;
            char *p = realloc(cc->buf, cap);
            if (!p) return MHD_NO;
            cc->buf = p;
            cc->cap = cap;
        }
        memcpy(cc->buf + cc->len, upload, n);
        cc->len += n;
        cc->buf[cc->len] = 0;
        return MHD_YES;
    }
    return cr_route(s, c, url, method, cc);
}

static void cr_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    cr_server *s = cls;
    cr_conn *cc = *con_cls;
    if (!cc) return;
    cr_guard_next(s->guard, cc->gk);
    free(cc->buf);
    free(cc);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

static void cr_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code) {
    cr_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? cr_guard_open(s->guard, ci->connect_fd) : NULL;
    } else {
        cr_guard_close(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void cr_server_free(cr_server *s) {
    for (int k = 0; k < s->cfg.n_models; k++)
        if (s->cur[k]) cr_release(s, s->cur[k]);
    cr_guard_free(s->guard);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->reload_mu);
    free(s);
}

cr_status cr_server_start(cr_server **out, const cr_server_cfg *c, cr_error *e) {
    if (out) *out = NULL;
    if (!out || !c) return cr_err(e, CR_ERR_ARG, "cr_server_start: out and c must not be NULL");
    CR_TRY(cr_server_cfg_check(c, e));
    struct sockaddr_storage addr;
    int v6 = 0;
    CR_TRY(cr_server_resolve(c, &addr, &v6, e));
    cr_server *s = calloc(1, sizeof *s);
    if (!s) return cr_err(e, CR_ERR_NOMEM, "out of memory starting the server");
    s->cfg = *c;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->reload_mu, NULL);
    cr_status st = CR_OK;
    for (int k = 0; k < c->n_models && !st; k++) st = cr_load(s, k, NULL, &s->cur[k], e);
    /* libmicrohttpd splits its limit among the workers; each may take up to
     * ours (the guard then keeps the total), so theirs sums to a backstop */
    int backstop = c->max_connections * c->threads;
    if (!st) st = cr_guard_create(&s->guard, c->max_connections, backstop, c->header_timeout_s,
                                  c->request_timeout_s, e);
    if (st) {
        cr_server_free(s);
        return st;
    }
    s->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
        cr_handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)c->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)backstop,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)c->max_per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 << 10),
        MHD_OPTION_NOTIFY_COMPLETED, cr_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, cr_notify, s, MHD_OPTION_END);
    if (!s->d) {
        cr_server_free(s);
        return cr_err(e, CR_ERR_IO, "server: cannot listen on %s port %d (in use? permission?)",
                      c->host, c->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : c->port;
    *out = s;
    return CR_OK;
}

int cr_server_port(const cr_server *s) { return s ? s->port : 0; }

void cr_server_stop(cr_server *s) {
    if (!s) return;
    /* not ready any more; no new connections; requests already received run to the end */
    atomic_store(&s->draining, 1);
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    double until = cr_now() + s->cfg.drain_s;
    while (atomic_load(&s->inflight) > 0 && cr_now() < until) usleep(5000);
    MHD_stop_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    cr_server_free(s);
}
