/*
 * server.h - the HTTP scoring server behind `crossrec serve`: libmicrohttpd
 * in thread-pool mode, JSON requests scored with cr_model_score_request,
 * Prometheus metrics, model reload without dropping requests, limits, and
 * a graceful stop. A cr_server object holds all of its state (no globals);
 * it never prints, never exits and installs no signal handlers: the caller
 * (cli/cmd_serve.c) turns SIGHUP into cr_server_reload and SIGTERM into
 * cr_server_stop. Request and response formats: docs/serving.md.
 */
#ifndef CR_SERVE_SERVER_H
#define CR_SERVE_SERVER_H

#include "crossrec.h"

typedef struct cr_server_cfg {
    char          model_path[1024];
    cr_model_opts model;          /* formula, weights, precision */
    char          host[64];       /* address to bind, default "0.0.0.0" */
    int           port;           /* 0 = any free port (read it back with cr_server_port) */
    int           threads;        /* HTTP worker threads, default 4 */
    int           kernel_threads; /* threads inside one request's kernels, default 1 */
    int64_t       max_body;       /* bytes, default 1 MiB */
    int64_t       max_candidates; /* default 10,000 */
    int           timeout_s;      /* idle connection timeout, default 30 */
    double        drain_s;        /* stop: wait this long for in-flight requests, default 10 */
} cr_server_cfg;

void cr_server_cfg_defaults(cr_server_cfg *c);
/* Read the `serve:` section of a YAML file into c (keys absent keep c's
 * values; other top-level sections of a job config are ignored). Errors
 * name file:line:col and the field. */
cr_status cr_server_cfg_load(cr_server_cfg *c, const char *path, cr_error *e);

typedef struct cr_server cr_server;

/* Load the model, bind, and start serving in background threads. */
cr_status cr_server_start(cr_server **out, const cr_server_cfg *c, cr_error *e);
int       cr_server_port(const cr_server *s);
/* Load and validate the model file again (the configured path), then swap
 * it in; requests already running finish on the old model, which is freed
 * by the last of them. A file that fails to load leaves the old model
 * serving and returns the error. Safe from any thread. */
cr_status cr_server_reload(cr_server *s, cr_error *e);
/* Stop accepting connections, wait up to drain_s for requests in flight,
 * stop the threads and free everything. */
void      cr_server_stop(cr_server *s);
/* The model version being served (copied into buf). */
void      cr_server_version(cr_server *s, char *buf, size_t cap);

/* ---- shared by server.c and http_json.c -------------------------------------- */

/* Error kinds, counted in crossrec_http_errors_total{kind=...}. */
typedef enum cr_http_err {
    CR_HE_NONE = 0,
    CR_HE_BAD_JSON,            /* not JSON, or truncated */
    CR_HE_BAD_REQUEST,         /* JSON of the wrong shape: a key, a type at the top */
    CR_HE_UNKNOWN_FEATURE,     /* a key the model does not read */
    CR_HE_WRONG_TYPE,          /* a value of the wrong JSON type */
    CR_HE_BAD_VALUE,           /* a value the feature cannot take (not a number, too large) */
    CR_HE_EMPTY_CANDIDATES,
    CR_HE_TOO_MANY_CANDIDATES,
    CR_HE_BODY_TOO_LARGE,
    CR_HE_SCORING,             /* the model failed (a bug or out of memory) */
    CR_HE_RELOAD,              /* a reload was rejected */
    CR_HE_NOT_FOUND,
    CR_HE_METHOD,
    CR_HE_N
} cr_http_err;

const char *cr_http_err_name(cr_http_err k);

/* What one scoring request produced. */
typedef struct cr_http_result {
    int         status;     /* HTTP status */
    cr_http_err kind;       /* CR_HE_NONE on 200 */
    char       *body;       /* JSON, malloc'd (the caller frees) */
    size_t      len;
    int64_t     candidates; /* scored */
    int64_t     missing;    /* values that took the schema's default */
} cr_http_result;

/* POST /v1/score: parse body, score with m, write the response or a JSON
 * error naming the field. Fills r; returns CR_OK unless out of memory. */
cr_status cr_http_score(const cr_model *m, const char *body, size_t len, int64_t max_candidates,
                        cr_http_result *r);
/* {"error": {"kind": ..., "message": ...}} into r (status and kind set). */
void      cr_http_error(cr_http_result *r, int status, cr_http_err kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* CR_SERVE_SERVER_H */
