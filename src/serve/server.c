/*
 * server.c - the HTTP transport of `crossrec serve`: libmicrohttpd in
 * thread-pool mode, routing, body limits, Prometheus metrics, a
 * reference-counted model swapped atomically on reload, and a graceful
 * stop; and the `serve:` section of a YAML config. JSON in and out is
 * http_json.c's business. The server object owns every piece of state;
 * nothing here prints, exits or touches signals.
 */
#include "server.h"

#include "../core/core.h"
#include "../core/yaml.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- metrics -------------------------------------------------------------------------- */

enum { EP_SCORE, EP_RELOAD, EP_HEALTHZ, EP_METRICS, EP_OTHER, EP_N };
static const char *const ep_name[EP_N] = {"/v1/score", "/v1/reload", "/healthz", "/metrics",
                                          "other"};
static const int codes[] = {200, 400, 404, 405, 413, 500, 503};
#define N_CODES ((int)(sizeof codes / sizeof codes[0]))
/* Latency buckets of POST /v1/score, seconds (Prometheus `le`). */
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

/* ---- the served model ------------------------------------------------------------------ */

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
    int                port;
    pthread_mutex_t    mu;        /* guards cur and refs */
    pthread_mutex_t    reload_mu; /* one reload at a time */
    cr_served         *cur;
    _Atomic int64_t    inflight;
    cr_metrics         met;
};

static cr_served *cr_acquire(cr_server *s) {
    pthread_mutex_lock(&s->mu);
    cr_served *sm = s->cur;
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

static cr_status cr_load(const cr_server_cfg *c, cr_served **out, cr_error *e) {
    cr_served *sm = calloc(1, sizeof *sm);
    if (!sm) return cr_err(e, CR_ERR_NOMEM, "out of memory loading %s", c->model_path);
    cr_status st = cr_model_load_opts(&sm->m, c->model_path, &c->model, e);
    if (st) {
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
    pthread_mutex_lock(&s->reload_mu);
    cr_served *sm;
    cr_status st = cr_load(&s->cfg, &sm, e);
    if (st) {
        atomic_fetch_add(&s->met.reload_err, 1);
        pthread_mutex_unlock(&s->reload_mu);
        return st;
    }
    pthread_mutex_lock(&s->mu);
    cr_served *old = s->cur;
    s->cur = sm;
    pthread_mutex_unlock(&s->mu);
    cr_release(s, old); /* the server's hold; running requests keep theirs */
    atomic_fetch_add(&s->met.reload_ok, 1);
    pthread_mutex_unlock(&s->reload_mu);
    return CR_OK;
}

void cr_server_version(cr_server *s, char *buf, size_t cap) {
    cr_served *sm = cr_acquire(s);
    snprintf(buf, cap, "%s", cr_model_version(sm->m));
    cr_release(s, sm);
}

/* ---- responses -------------------------------------------------------------------------- */

typedef struct cr_conn {
    char  *buf;
    size_t len, cap;
    int    too_big;
    double t0;
} cr_conn;

static void cr_count(cr_server *s, int ep, int status, cr_http_err kind) {
    int ci = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == status) ci = i;
    if (ci < N_CODES) atomic_fetch_add_explicit(&s->met.requests[ep][ci], 1, memory_order_relaxed);
    if (kind != CR_HE_NONE) atomic_fetch_add_explicit(&s->met.errors[kind], 1, memory_order_relaxed);
}

/* Queue body (malloc'd, taken over) with status; counts it. */
static enum MHD_Result cr_send(cr_server *s, struct MHD_Connection *c, int ep, int status,
                               cr_http_err kind, char *body, size_t len, const char *type) {
    cr_count(s, ep, status, kind);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result q = MHD_queue_response(c, (unsigned int)status, r);
    MHD_destroy_response(r);
    return q;
}

static enum MHD_Result cr_send_result(cr_server *s, struct MHD_Connection *c, int ep,
                                      cr_http_result *hr) {
    if (!hr->body) return MHD_NO; /* out of memory: drop the connection */
    return cr_send(s, c, ep, hr->status, hr->kind, hr->body, hr->len, "application/json");
}

static enum MHD_Result cr_send_error(cr_server *s, struct MHD_Connection *c, int ep, int status,
                                     cr_http_err kind, const char *msg) {
    cr_http_result hr = {0};
    cr_http_error(&hr, status, kind, "%s", msg);
    return cr_send_result(s, c, ep, &hr);
}

/* ---- /metrics ------------------------------------------------------------------------- */

static char *cr_metrics_text(cr_server *s, size_t *len) {
    size_t cap = 16384, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
#define P(...) n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, __VA_ARGS__)
    cr_metrics *m = &s->met;
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
    P("# HELP crossrec_score_duration_seconds Time to answer POST /v1/score, body received to "
      "response queued.\n# TYPE crossrec_score_duration_seconds histogram\n");
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
    cr_served *sm = cr_acquire(s);
    P("# HELP crossrec_model_info The model being served (file mtime and hash).\n"
      "# TYPE crossrec_model_info gauge\n"
      "crossrec_model_info{version=\"%s\",precision=\"%s\"} 1\n"
      "# HELP crossrec_model_loaded_timestamp_seconds When the model was loaded.\n"
      "# TYPE crossrec_model_loaded_timestamp_seconds gauge\n"
      "crossrec_model_loaded_timestamp_seconds %.3f\n",
      cr_model_version(sm->m), cr_precision_name(cr_model_precision(sm->m)), sm->loaded_at);
    cr_release(s, sm);
#undef P
    if (n >= cap) { /* cannot happen with these few series; keep it honest */
        free(b);
        return NULL;
    }
    *len = n;
    return b;
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

static enum MHD_Result cr_route(cr_server *s, struct MHD_Connection *c, const char *url,
                                const char *method, cr_conn *cc) {
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    int ep = !strcmp(url, "/v1/score")    ? EP_SCORE
             : !strcmp(url, "/v1/reload") ? EP_RELOAD
             : !strcmp(url, "/healthz")   ? EP_HEALTHZ
             : !strcmp(url, "/metrics")   ? EP_METRICS
                                          : EP_OTHER;
    char msg[256];
    if (ep == EP_OTHER) {
        snprintf(msg, sizeof msg, "no endpoint %.100s; try POST /v1/score", url);
        return cr_send_error(s, c, ep, 404, CR_HE_NOT_FOUND, msg);
    }
    if ((ep <= EP_RELOAD && !post) || (ep >= EP_HEALTHZ && !get)) {
        snprintf(msg, sizeof msg, "%s takes %s, not %.20s", url, ep <= EP_RELOAD ? "POST" : "GET",
                 method);
        return cr_send_error(s, c, ep, 405, CR_HE_METHOD, msg);
    }
    if (cc->too_big) {
        snprintf(msg, sizeof msg, "body: larger than the limit of %lld bytes",
                 (long long)s->cfg.max_body);
        return cr_send_error(s, c, ep, 413, CR_HE_BODY_TOO_LARGE, msg);
    }
    if (ep == EP_HEALTHZ || ep == EP_RELOAD) {
        cr_error e = {0};
        int ok = ep == EP_HEALTHZ || cr_server_reload(s, &e) == CR_OK;
        if (!ok) {
            cr_http_result hr = {0};
            char ver[64];
            cr_server_version(s, ver, sizeof ver);
            cr_http_error(&hr, 500, CR_HE_RELOAD, "reload rejected, still serving %s: %s", ver,
                          e.msg);
            return cr_send_result(s, c, ep, &hr);
        }
        char ver[64], *b = malloc(256);
        if (!b) return MHD_NO;
        cr_server_version(s, ver, sizeof ver);
        int n = snprintf(b, 256, ep == EP_HEALTHZ ? "{\"status\":\"ok\",\"model_version\":\"%s\"}\n"
                                                  : "{\"reloaded\":true,\"model_version\":\"%s\"}\n",
                         ver);
        return cr_send(s, c, ep, 200, CR_HE_NONE, b, (size_t)n, "application/json");
    }
    if (ep == EP_METRICS) {
        size_t n;
        char *b = cr_metrics_text(s, &n);
        if (!b) return MHD_NO;
        return cr_send(s, c, ep, 200, CR_HE_NONE, b, n, "text/plain; version=0.0.4");
    }
    /* POST /v1/score: the kernels of one request run on kernel_threads
     * (OpenMP's setting is per calling thread, so set it on this one) */
    cr_set_threads(s->cfg.kernel_threads);
    cr_served *sm = cr_acquire(s);
    cr_http_result hr = {0};
    cr_http_score(sm->m, cc->buf ? cc->buf : "", cc->len, s->cfg.max_candidates, &hr);
    cr_release(s, sm);
    if (hr.status == 200) {
        atomic_fetch_add_explicit(&s->met.candidates, (uint64_t)hr.candidates, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->met.missing, (uint64_t)hr.missing, memory_order_relaxed);
    }
    cr_observe(s, cc->t0);
    return cr_send_result(s, c, ep, &hr);
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
        /* A declared length far above the limit is refused before reading
         * it; one just above is read and dropped, so the client can send
         * its whole body and read the answer. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoll(cl, NULL, 10) / 16 > s->cfg.max_body) {
            cc->too_big = 1;
            return cr_route(s, c, url, method, cc);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cc->too_big && cc->len + *upload_size > (size_t)s->cfg.max_body) {
            cc->too_big = 1;
            free(cc->buf);
            cc->buf = NULL;
            cc->len = cc->cap = 0;
        }
        if (!cc->too_big) {
            if (cc->len + *upload_size + 1 > cc->cap) {
                size_t cap = (cc->len + *upload_size + 1) * 2;
                if (cap > (size_t)s->cfg.max_body + 1) cap = (size_t)s->cfg.max_body + 1;
                char *p = realloc(cc->buf, cap);
                if (!p) return MHD_NO;
                cc->buf = p;
                cc->cap = cap;
            }
            memcpy(cc->buf + cc->len, upload, *upload_size);
            cc->len += *upload_size;
            cc->buf[cc->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return cr_route(s, c, url, method, cc);
}

static void cr_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    cr_server *s = cls;
    cr_conn *cc = *con_cls;
    if (!cc) return;
    free(cc->buf);
    free(cc);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

void cr_server_cfg_defaults(cr_server_cfg *c) {
    memset(c, 0, sizeof *c);
    cr_model_opts_defaults(&c->model);
    snprintf(c->host, sizeof c->host, "0.0.0.0");
    c->port = 8080;
    c->threads = 4;
    c->kernel_threads = 1;
    c->max_body = 1 << 20;
    c->max_candidates = 10000;
    c->timeout_s = 30;
    c->drain_s = 10;
}

cr_status cr_server_start(cr_server **out, const cr_server_cfg *c, cr_error *e) {
    *out = NULL;
    if (c->threads < 1 || c->threads > 1024 || c->port < 0 || c->port > 65535 ||
        c->max_body < 1 || c->max_candidates < 1 || c->kernel_threads < 0 || c->timeout_s < 0)
        return cr_err(e, CR_ERR_ARG,
                      "server: threads %d, port %d, max_body %lld, max_candidates %lld out of range",
                      c->threads, c->port, (long long)c->max_body, (long long)c->max_candidates);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->host, &addr.sin_addr) != 1)
        return cr_err(e, CR_ERR_ARG, "server: host '%s' is not an IPv4 address", c->host);
    cr_server *s = calloc(1, sizeof *s);
    if (!s) return cr_err(e, CR_ERR_NOMEM, "out of memory starting the server");
    s->cfg = *c;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->reload_mu, NULL);
    cr_status st = cr_load(&s->cfg, &s->cur, e);
    if (st) {
        pthread_mutex_destroy(&s->mu);
        pthread_mutex_destroy(&s->reload_mu);
        free(s);
        return st;
    }
    s->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC, 0, NULL, NULL,
                            cr_handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)c->threads,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->timeout_s,
                            MHD_OPTION_NOTIFY_COMPLETED, cr_completed, s, MHD_OPTION_END);
    if (!s->d) {
        cr_release(s, s->cur);
        pthread_mutex_destroy(&s->mu);
        pthread_mutex_destroy(&s->reload_mu);
        free(s);
        return cr_err(e, CR_ERR_IO, "server: cannot listen on %s:%d (in use? permission?)",
                      c->host, c->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : c->port;
    *out = s;
    return CR_OK;
}

int cr_server_port(const cr_server *s) { return s->port; }

void cr_server_stop(cr_server *s) {
    if (!s) return;
    /* no new connections; requests already received run to the end */
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    double until = cr_now() + s->cfg.drain_s;
    while (atomic_load(&s->inflight) > 0 && cr_now() < until) usleep(5000);
    MHD_stop_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    cr_release(s, s->cur);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->reload_mu);
    free(s);
}

/* ---- the serve: section ------------------------------------------------------------
 *   serve:
 *     port: 8080
 *     threads: 4
 *     precision: bf16
 *     limits: {max_body_bytes: 1048576, max_candidates: 10000}
 *     ranking: {formula: product, weights: {click: 1.0, like: 0.5}}
 * Every error names file:line:col and the field; values are never clamped. */

static const char *const prec_names[] = {"fp32", "bf16", "int8", NULL};
static const char *const formula_names[] = {"weighted_sum", "product", NULL};

static cr_status cr_ranking_parse(const cr_yaml_node *r, cr_model_opts *o, cr_error *e) {
    static const char *const keys[] = {"formula", "weights", NULL};
    CR_TRY(cr_yaml_check_keys(r, keys, "serve.ranking", e));
    int f = (int)o->formula;
    CR_TRY(cr_yaml_enum(r, "formula", "serve.ranking", 0, f, formula_names, &f, e));
    o->formula = (cr_rank_formula)f;
    const cr_yaml_node *w = cr_yaml_get(r, "weights");
    if (!w || cr_yaml_is_null(w)) return CR_OK;
    CR_TRY(cr_yaml_expect(w, CR_YAML_MAP, "serve.ranking.weights", e));
    if (w->n > CR_RANK_MAX_WEIGHTS)
        return cr_yaml_err(e, CR_ERR_CONFIG, w, "serve.ranking.weights",
                           "%d weights, at most %d", w->n, CR_RANK_MAX_WEIGHTS);
    o->n_weights = w->n;
    for (int i = 0; i < w->n; i++) {
        char path[160];
        cr_yaml_path_key(path, sizeof path, "serve.ranking.weights", w->keys[i]->value);
        CR_TRY(cr_yaml_as_str(w->keys[i], path, o->weight_name[i], sizeof o->weight_name[i], e));
        double v;
        CR_TRY(cr_yaml_as_double(w->items[i], path, -1e6, 1e6, &v, e));
        o->weight[i] = (float)v;
    }
    return CR_OK;
}

cr_status cr_server_cfg_load(cr_server_cfg *c, const char *path, cr_error *e) {
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load(&doc, path, e));
    const cr_yaml_node *root = cr_yaml_root(doc);
    /* a job config may carry the other sections beside serve: */
    static const char *const top[] = {"data", "features", "tasks", "model", "train",
                                      "eval", "distill",  "serve", NULL};
    static const char *const keys[] = {"host",      "port",           "threads",
                                       "kernel_threads", "precision", "limits",
                                       "ranking",   "timeout_s",      "drain_s",
                                       NULL};
    static const char *const lkeys[] = {"max_body_bytes", "max_candidates", NULL};
    cr_status st = CR_OK;
    const cr_yaml_node *s = NULL, *l = NULL, *r = NULL;
    int prec = (int)c->model.precision;
    char host[sizeof c->host]; /* the default may not alias the output */
    snprintf(host, sizeof host, "%s", c->host);
    if (!cr_yaml_is_null(root) && (st = cr_yaml_expect(root, CR_YAML_MAP, "", e))) goto done;
    if ((st = cr_yaml_check_keys(cr_yaml_is_null(root) ? NULL : root, top, "", e))) goto done;
    s = cr_yaml_get(root, "serve");
    if (!s || cr_yaml_is_null(s)) goto done;
    if ((st = cr_yaml_expect(s, CR_YAML_MAP, "serve", e)) ||
        (st = cr_yaml_check_keys(s, keys, "serve", e)) ||
        (st = cr_yaml_str(s, "host", "serve", 0, host, c->host, sizeof c->host, e)) ||
        (st = cr_yaml_int32(s, "port", "serve", 0, c->port, 0, 65535, &c->port, e)) ||
        (st = cr_yaml_int32(s, "threads", "serve", 0, c->threads, 1, 1024, &c->threads, e)) ||
        (st = cr_yaml_int32(s, "kernel_threads", "serve", 0, c->kernel_threads, 0, 1024,
                            &c->kernel_threads, e)) ||
        (st = cr_yaml_int32(s, "timeout_s", "serve", 0, c->timeout_s, 0, 86400, &c->timeout_s, e)) ||
        (st = cr_yaml_double(s, "drain_s", "serve", 0, c->drain_s, 0, 3600, &c->drain_s, e)) ||
        (st = cr_yaml_enum(s, "precision", "serve", 0, prec, prec_names, &prec, e)))
        goto done;
    c->model.precision = (cr_precision)prec;
    l = cr_yaml_get(s, "limits");
    if (l && !cr_yaml_is_null(l) &&
        ((st = cr_yaml_expect(l, CR_YAML_MAP, "serve.limits", e)) ||
         (st = cr_yaml_check_keys(l, lkeys, "serve.limits", e)) ||
         (st = cr_yaml_int(l, "max_body_bytes", "serve.limits", 0, c->max_body, 1, (int64_t)1 << 34,
                           &c->max_body, e)) ||
         (st = cr_yaml_int(l, "max_candidates", "serve.limits", 0, c->max_candidates, 1, 10000000,
                           &c->max_candidates, e))))
        goto done;
    r = cr_yaml_get(s, "ranking");
    if (r && !cr_yaml_is_null(r)) {
        if ((st = cr_yaml_expect(r, CR_YAML_MAP, "serve.ranking", e))) goto done;
        st = cr_ranking_parse(r, &c->model, e);
    }
done:
    cr_yaml_free(doc);
    return st;
}
