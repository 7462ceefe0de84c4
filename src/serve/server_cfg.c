/*
 * server_cfg.c - the server's settings: defaults, checks, the address to
 * bind (an IPv4 or IPv6 address or a host name such as localhost), the
 * models ("name=path"), and the `serve:` section of a YAML config. Safe
 * defaults: loopback only, admin endpoints off, limits on connections,
 * per-address connections, header and request time.
 */
#include "server.h"

#include "../core/core.h"
#include "../core/yaml.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void cr_server_cfg_defaults(cr_server_cfg *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    cr_model_opts_defaults(&c->model);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 8080;
    c->threads = 4;
    c->kernel_threads = 1;
    c->max_body = 1 << 20;
    c->max_candidates = 10000;
    c->timeout_s = 30;
    c->drain_s = 10;
    c->max_connections = 512;
    c->max_per_ip = 128;
    c->header_timeout_s = 10;
    c->request_timeout_s = 60;
    c->reload_interval_s = 5;
}

static int name_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

cr_status cr_server_cfg_add_model(cr_server_cfg *c, const char *arg, cr_error *e) {
    if (!c || !arg) return cr_err(e, CR_ERR_ARG, "cr_server_cfg_add_model: c and arg must not be NULL");
    if (c->n_models >= CR_SERVER_MAX_MODELS)
        return cr_err(e, CR_ERR_ARG, "--model %s: at most %d models", arg, CR_SERVER_MAX_MODELS);
    cr_server_model *m = &c->models[c->n_models];
    const char *eq = strchr(arg, '=');
    if (eq) {
        snprintf(m->name, sizeof m->name, "%.*s", (int)(eq - arg), arg);
        snprintf(m->path, sizeof m->path, "%s", eq + 1);
    } else { /* named after the file: dir/ranker.safetensors is "ranker" */
        const char *base = strrchr(arg, '/');
        base = base ? base + 1 : arg;
        const char *dot = strstr(base, ".safetensors");
        snprintf(m->name, sizeof m->name, "%.*s", (int)(dot ? dot - base : (long)strlen(base)), base);
        snprintf(m->path, sizeof m->path, "%s", arg);
    }
    if (!name_ok(m->name) || (eq && (size_t)(eq - arg) >= sizeof m->name))
        return cr_err(e, CR_ERR_ARG,
                      "--model %s: the model name '%s' must be 1 to 63 letters, digits, '-', '_' "
                      "or '.' (give one as NAME=PATH)", arg, m->name);
    if (!m->path[0]) return cr_err(e, CR_ERR_ARG, "--model %s: no file after '='", arg);
    for (int k = 0; k < c->n_models; k++)
        if (!strcmp(c->models[k].name, m->name))
            return cr_err(e, CR_ERR_ARG, "--model %s: a model named '%s' is given twice", arg,
                          m->name);
    c->n_models++;
    return CR_OK;
}

cr_status cr_server_cfg_check(const cr_server_cfg *c, cr_error *e) {
    if (c->n_models < 1) return cr_err(e, CR_ERR_ARG, "server: no model to serve");
    if (c->threads < 1 || c->threads > 1024 || c->port < 0 || c->port > 65535 ||
        c->max_body < 1 || c->max_candidates < 1 || c->kernel_threads < 0 || c->timeout_s < 0 ||
        c->max_connections < 1 || c->max_connections > 65536 || c->max_per_ip < 0 ||
        !(c->header_timeout_s > 0) || !(c->request_timeout_s > 0) || !(c->reload_interval_s >= 0))
        return cr_err(e, CR_ERR_ARG,
                      "server: threads %d, port %d, max_body %lld, max_candidates %lld, "
                      "max_connections %d, max_per_ip %d, header_timeout_s %g, request_timeout_s "
                      "%g: one is out of range",
                      c->threads, c->port, (long long)c->max_body, (long long)c->max_candidates,
                      c->max_connections, c->max_per_ip, c->header_timeout_s, c->request_timeout_s);
    return CR_OK;
}

cr_status cr_server_resolve(const cr_server_cfg *c, struct sockaddr_storage *addr, int *v6,
                            cr_error *e) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    int rc = getaddrinfo(c->host, port, &hints, &res);
    if (rc) { /* ::1 on a machine whose only IPv6 address is loopback */
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(c->host, port, &hints, &res);
    }
    if (rc || !res)
        return cr_err(e, CR_ERR_ARG, "server: host '%s' is not an address or a known host name: %s",
                      c->host, gai_strerror(rc));
    memset(addr, 0, sizeof *addr);
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return CR_OK;
}

/* ---- the serve: section ------------------------------------------------------------
 *   serve:
 *     port: 8080
 *     threads: 4
 *     precision: bf16
 *     limits: {max_body_bytes: 1048576, max_candidates: 10000, max_connections: 512,
 *              max_per_ip: 128}
 *     header_timeout_s: 10
 *     request_timeout_s: 60
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
    if (!c || !path) return cr_err(e, CR_ERR_ARG, "cr_server_cfg_load: c and path must not be NULL");
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load(&doc, path, e));
    const cr_yaml_node *root = cr_yaml_root(doc);
    /* a job config may carry the other sections beside serve: */
    static const char *const top[] = {"data", "features", "tasks", "model", "train",
                                      "eval", "distill",  "serve", NULL};
    static const char *const keys[] = {"host",           "port",           "threads",
                                       "kernel_threads", "precision",      "limits",
                                       "ranking",        "timeout_s",      "drain_s",
                                       "header_timeout_s", "request_timeout_s",
                                       "reload_interval_s", NULL};
    static const char *const lkeys[] = {"max_body_bytes", "max_candidates", "max_connections",
                                        "max_per_ip", NULL};
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
        (st = cr_yaml_double(s, "header_timeout_s", "serve", 0, c->header_timeout_s, 0.001, 86400,
                             &c->header_timeout_s, e)) ||
        (st = cr_yaml_double(s, "request_timeout_s", "serve", 0, c->request_timeout_s, 0.001,
                             86400, &c->request_timeout_s, e)) ||
        (st = cr_yaml_double(s, "reload_interval_s", "serve", 0, c->reload_interval_s, 0, 86400,
                             &c->reload_interval_s, e)) ||
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
                           &c->max_candidates, e)) ||
         (st = cr_yaml_int32(l, "max_connections", "serve.limits", 0, c->max_connections, 1,
                             65536, &c->max_connections, e)) ||
         (st = cr_yaml_int32(l, "max_per_ip", "serve.limits", 0, c->max_per_ip, 0, 65536,
                             &c->max_per_ip, e))))
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
