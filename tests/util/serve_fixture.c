/*
 * serve_fixture.c - the server tests' shared fixture and raw HTTP client
 * (serve_fixture.h). Test-only code.
 */
#include "serve_fixture.h"

#include "testutil.h"

#include "../../src/rank/checkpoint.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

const int cr_sf_is_ctx[CR_SF_NI] = {1, 0, 0, 1, 1, 0};

void cr_sf_save_model(const cr_sf *f, const char *path, uint64_t seed, int nan_at, int other_schema) {
    cr_schema s = f->log.s; /* shares the features: a rename is undone below */
    char col[64];
    snprintf(col, sizeof col, "%s", s.features[5].column);
    if (other_schema) snprintf(s.features[5].column, sizeof s.features[5].column, "popularity");
    cr_model_cfg mc;
    cr_model_cfg_defaults(&mc, &s);
    mc.arch = CR_ARCH_MMOE;
    mc.n_experts = 3;
    mc.expert_layers[0] = 12;
    mc.expert_layers[1] = 6;
    mc.tower_layers[0] = 8;
    cr_ranker *r;
    cr_error e = {0};
    if (cr_ranker_create(&r, &s, &mc, seed, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        abort();
    }
    if (nan_at >= 0) r->params.data[nan_at % (int)r->params.total] = NAN;
    if (cr_ranker_save(r, &s, path, NULL, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        abort();
    }
    cr_ranker_free(r);
    snprintf(s.features[5].column, sizeof s.features[5].column, "%s", col);
}

int cr_sf_init(cr_sf *f) {
    memset(f, 0, sizeof *f);
    cr_set_threads(1);
    if (cr_tiny_log_make(&f->log, CR_SF_NROWS)) return 1;
    snprintf(f->model, sizeof f->model, "%s/m.safetensors", f->log.dir);
    cr_sf_save_model(f, f->model, 5, -1, 0);
    return 0;
}

void cr_sf_cfg(const cr_sf *f, cr_server_cfg *c) {
    cr_server_cfg_defaults(c);
    cr_error e = {0};
    if (cr_server_cfg_add_model(c, f->model, &e)) abort();
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 0;
    c->threads = 4;
    c->max_body = 64 << 10;
    c->max_candidates = 500;
    c->drain_s = 5;
}

int cr_sf_start(cr_sf *f, const cr_server_cfg *c) {
    cr_error e = {0};
    if (cr_server_start(&f->srv, c, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    f->port = cr_server_port(f->srv);
    return f->port > 0 ? 0 : 1;
}

void cr_sf_stop(cr_sf *f) {
    cr_server_stop(f->srv);
    f->srv = NULL;
}

void cr_sf_free(cr_sf *f) {
    if (f->srv) cr_sf_stop(f);
    cr_tiny_log_free(&f->log);
}

int cr_sf_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

int cr_sf_raw(int port, const char *req, size_t len, char **raw, const char **body) {
    *raw = NULL;
    *body = "";
    int fd = cr_sf_connect(port);
    if (fd < 0) return -1;
    for (size_t off = 0; off < len;) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0) break; /* the server may answer (413) before reading it all */
        off += (size_t)k;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = 0;
    *raw = buf;
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    char *b = strstr(buf, "\r\n\r\n");
    *body = b ? b + 4 : "";
    return status;
}

int cr_sf_http(int port, const char *method, const char *path, const char *headers,
               const char *body, size_t len, char **raw, const char **out) {
    size_t cap = len + 1024 + (headers ? strlen(headers) : 0);
    char *req = malloc(cap);
    int h = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, headers ? headers : "", len);
    memcpy(req + h, body, len);
    int st = cr_sf_raw(port, req, (size_t)h + len, raw, out);
    free(req);
    return st;
}

char *cr_sf_request_json(const cr_sf *f, int crow, const int *rows, int n) {
    const char *const *cols = cr_tiny_cols;
    cJSON *root = cJSON_CreateObject(), *ctx = cJSON_AddObjectToObject(root, "context");
    cJSON *cands = cJSON_AddArrayToObject(root, "candidates");
    for (int j = 0; j < CR_SF_NI; j++)
        if (cr_sf_is_ctx[j]) cJSON_AddStringToObject(ctx, cols[j], f->log.text[crow][j]);
    for (int i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        const char(*row)[32] = f->log.text[rows[i]];
        cJSON_AddStringToObject(c, "item", row[1]);
        cJSON *tags = cJSON_AddArrayToObject(c, "tags");
        char t[32];
        snprintf(t, sizeof t, "%s", row[2]);
        /* strtok_r: client threads build requests at the same time */
        for (char *save = NULL, *tok = strtok_r(t, "|", &save); tok;
             tok = strtok_r(NULL, "|", &save))
            cJSON_AddItemToArray(tags, cJSON_CreateString(tok));
        if (row[5][0]) cJSON_AddNumberToObject(c, "pop", atof(row[5])); /* absent = missing */
        cJSON_AddItemToArray(cands, c);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

void cr_sf_expected(const cr_sf *f, cr_model *m, int crow, const int *rows, int n, float *want) {
    const char **vals = calloc((size_t)n * CR_SF_NI, sizeof(char *));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < CR_SF_NI; j++)
            vals[i * CR_SF_NI + j] = f->log.text[cr_sf_is_ctx[j] ? crow : rows[i]][j];
    cr_error e = {0};
    if (cr_model_score(m, n, vals, want, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        abort();
    }
    free(vals);
}
