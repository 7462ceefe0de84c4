/*
 * serve_fixture.h - what the server tests share: the tiny log and models
 * saved from it, a server started in-process on a free loopback port with
 * settings a test adjusts, a small HTTP/1.1 client over raw sockets (so a
 * test can also send what no well-behaved client would), and /v1 request
 * bodies built from the log's rows. Test-only code.
 */
#ifndef CR_SERVE_FIXTURE_H
#define CR_SERVE_FIXTURE_H

#include "tiny_log.h"

#include "../../src/serve/server.h"

enum { CR_SF_NROWS = 120, CR_SF_NI = CR_TINY_NI };
/* which columns the /v1 requests put in context: user, hist, age */
extern const int cr_sf_is_ctx[CR_SF_NI];

typedef struct cr_sf {
    cr_tiny_log log;       /* the CSV, its fields and the fitted schema */
    char        model[512]; /* dir/m.safetensors */
    cr_server  *srv;
    int         port;
} cr_sf;

/* Make the log and a model (seed 5) at f->model; 0 on success. */
int  cr_sf_init(cr_sf *f);
void cr_sf_free(cr_sf *f); /* stops the server if running, removes the files */
/* A model with weights from seed written atomically to path; with
 * nan_at >= 0 one weight is NaN; other_schema reads 'pop' from a column
 * named 'popularity' (another input schema). */
void cr_sf_save_model(const cr_sf *f, const char *path, uint64_t seed, int nan_at, int other_schema);
/* Settings for a test server on 127.0.0.1, any port, serving f->model. */
void cr_sf_cfg(const cr_sf *f, cr_server_cfg *c);
/* Start with c; 0 on success (f->srv, f->port set). */
int  cr_sf_start(cr_sf *f, const cr_server_cfg *c);
void cr_sf_stop(cr_sf *f);

/* A connected socket to 127.0.0.1:port with 10 s send/receive timeouts
 * (a hung server fails the test instead of hanging it); -1 on failure. */
int  cr_sf_connect(int port);
/* Send raw bytes, read the whole answer (until the server closes);
 * returns the status code or -1; *body points into *raw (free it). */
int  cr_sf_raw(int port, const char *req, size_t len, char **raw, const char **body);
/* One request with Connection: close; headers: extra header lines, each
 * ending in \r\n, or NULL. */
int  cr_sf_http(int port, const char *method, const char *path, const char *headers,
                const char *body, size_t len, char **raw, const char **out);
/* /v1 JSON for context row crow and candidate rows[0..n): values as
 * strings, except pop as a JSON number and tags as a list. */
char *cr_sf_request_json(const cr_sf *f, int crow, const int *rows, int n);
/* What cr_model_score gives for the same rows: want (n, 2). */
void cr_sf_expected(const cr_sf *f, cr_model *m, int crow, const int *rows, int n, float *want);

#endif
