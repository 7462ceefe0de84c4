/*
 * server.h - the HTTP scoring server behind `crossrec serve`: libmicrohttpd
 * in thread-pool mode, two protocols over the same models (crossrec's own
 * POST /v1/score and the Open Inference Protocol, KServe v2), several named
 * models, Prometheus metrics, model reload without dropping requests behind
 * a bearer token, limits and deadlines that keep one client from taking the
 * server down, and a graceful stop. A cr_server object holds all of its
 * state (no globals); it never prints (messages for operators go to the
 * configured log callback), never exits and installs no signal handlers:
 * the caller (cli/cmd_serve.c) turns SIGHUP into cr_server_reload and
 * SIGTERM into cr_server_stop. Request and response formats: docs/serving.md.
 */
#ifndef CR_SERVE_SERVER_H
#define CR_SERVE_SERVER_H

#include "crossrec.h"

#include <cJSON.h>

/* The configuration and lifecycle (cr_server_cfg, cr_server_start, reload,
 * stop, ...) are public: crossrec.h, "the HTTP server". */

/* ---- shared by the files of src/serve -------------------------------------- */

struct sockaddr_storage;
/* c's values in range (errors name them). */
cr_status cr_server_cfg_check(const cr_server_cfg *c, cr_error *e);
/* c->host and c->port as a socket address (*v6 set for IPv6). */
cr_status cr_server_resolve(const cr_server_cfg *c, struct sockaddr_storage *addr, int *v6,
                            cr_error *e);

/* Error kinds, counted in crossrec_http_errors_total{kind=...}. */
typedef enum cr_http_err {
    CR_HE_NONE = 0,
    CR_HE_BAD_JSON,            /* not JSON, not UTF-8, truncated, trailing bytes, a key twice */
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
    CR_HE_UNAUTHORIZED,        /* an admin request without the right token */
    CR_HE_RATE_LIMITED,        /* a reload too soon after the last */
    CR_HE_BAD_HTTP,            /* framing a proxy could read otherwise (two Content-Lengths) */
    CR_HE_NOT_READY,
    CR_HE_N
} cr_http_err;

const char *cr_http_err_name(cr_http_err k);

/* What one request produced. */
typedef struct cr_http_result {
    int         status;     /* HTTP status */
    cr_http_err kind;       /* CR_HE_NONE on 200 */
    int         v2;         /* errors in the Open Inference Protocol's shape: {"error": "..."} */
    char       *body;       /* JSON, malloc'd (the caller frees) */
    size_t      len;
    int64_t     candidates; /* scored */
    int64_t     missing;    /* values that took the schema's default */
} cr_http_result;

/* POST /v1/score: parse body, score with m, write the response or a JSON
 * error naming the field. Fills r; returns CR_OK unless out of memory. */
cr_status cr_http_score(const cr_model *m, const char *body, size_t len, int64_t max_candidates,
                        cr_http_result *r);
/* POST /v2/models/NAME/infer: the same for an Open Inference Protocol
 * request (one tensor per input column); name and version are echoed. */
cr_status cr_kserve_infer(const cr_model *m, const char *name, const char *body, size_t len,
                          int64_t max_candidates, cr_http_result *r);
/* GET /v2/models/NAME: the model's metadata (inputs, outputs, versions). */
cr_status cr_kserve_metadata(const cr_model *m, const char *name, cr_http_result *r);
/* An error body into r (status and kind set): {"error": {"kind", "message"}},
 * or {"error": "message"} when r->v2. */
void      cr_http_error(cr_http_result *r, int status, cr_http_err kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parse a body strictly: valid UTF-8, one JSON value and only whitespace
 * after it, no object with a key twice. NULL with a 400 in r otherwise. */
cJSON *cr_json_parse_strict(const char *body, size_t len, cr_http_result *r);
/* Offset of the first byte that breaks UTF-8, or len. */
size_t cr_utf8_check(const char *s, size_t len);
/* s as the inside of a JSON string: escaped, and always valid UTF-8. */
void   cr_json_escape(char *out, size_t cap, const char *s);

/* A growing response body. */
typedef struct cr_buf {
    char  *p;
    size_t n, cap;
    int    oom;
} cr_buf;
void cr_buf_fmt(cr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cr_buf_float(cr_buf *b, float v); /* NaN and inf as null */
/* Hand b to r as a 200 (or a 500 if it ran out of memory); 0 on success. */
int  cr_buf_done(cr_buf *b, cr_http_result *r, const char *what);

/* One request being built by either protocol: the text of every context
 * input and of every candidate's inputs, then scored. */
typedef struct cr_req_build {
    const cr_model *m;
    int             NI;
    int64_t         N;
    const char    **ctx;     /* (NI) NULL = not given */
    const char    **cand;    /* (N, NI) NULL = not given */
    double         *num;     /* (N + 1, NI) the numbers: candidates, then the context row */
    uint8_t        *is_num;  /* (N + 1, NI) the value was a JSON number */
    cr_text_list   *list;    /* (N + 1, NI) the value was a JSON list (for a bag) */
    uint8_t        *in_cand; /* (NI) given per candidate */
    cr_column      *cols;    /* (2 NI) the request as typed columns */
    void           *arena;   /* item arrays of lists; numbers of mixed columns as text */
    float          *scores;  /* (N, n_outputs) after cr_req_score */
    float          *rank;    /* (N) */
    int64_t        *order;   /* (N) */
    int64_t         missing;
    cr_http_result *r;
} cr_req_build;
/* Each returns 0, or 1 with the error in r. */
int         cr_req_begin(cr_req_build *b, const cr_model *m, int64_t N, cr_http_result *r);
int         cr_req_score(cr_req_build *b);
void        cr_req_end(cr_req_build *b);
/* Inputs reading column key (a column may feed several features). */
int         cr_req_inputs_of(const cr_model *m, const char *key, int *idx, int cap);
/* Set input i of candidate cand (-1: the context) from one JSON value
 * (string, number, null or a list for a bag). A number stays a number all
 * the way to the encoder when every value of its column is one, and a list
 * stays a list (a CR_COL_TEXT_LIST column), never joined into text. where
 * names the value in errors. */
int         cr_req_set(cr_req_build *b, int i, int64_t cand, const cJSON *v, const char *where);

#endif /* CR_SERVE_SERVER_H */
