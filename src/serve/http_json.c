/*
 * http_json.c - the JSON side of POST /v1/score: a request body becomes a
 * cr_request (context values once, candidate values per candidate, keyed
 * by the model's input columns), and the scores become the response. Every
 * rejection is a JSON error whose message names the field. Knows nothing of
 * HTTP transport; never prints.
 */
#include "server.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cr_he_names[CR_HE_N] = {
    "none",        "bad_json",           "bad_request",    "unknown_feature", "wrong_type",
    "bad_value",   "empty_candidates",   "too_many_candidates", "body_too_large",
    "scoring",     "reload",             "not_found",      "method",
};

const char *cr_http_err_name(cr_http_err k) {
    return k >= 0 && k < CR_HE_N ? cr_he_names[k] : "unknown";
}

/* A JSON string body for a message: quotes, backslashes and control bytes
 * escaped (messages quote user input). */
static void cr_json_escape(char *out, size_t cap, const char *s) {
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
}

void cr_http_error(cr_http_result *r, int status, cr_http_err kind, const char *fmt, ...) {
    char msg[1024], esc[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cr_json_escape(esc, sizeof esc, msg);
    free(r->body);
    size_t cap = strlen(esc) + 128;
    r->body = malloc(cap);
    r->status = status;
    r->kind = kind;
    if (!r->body) {
        r->len = 0;
        return;
    }
    r->len = (size_t)snprintf(r->body, cap, "{\"error\":{\"kind\":\"%s\",\"message\":\"%s\"}}\n",
                              cr_http_err_name(kind), esc);
}

/* ---- text for values ---------------------------------------------------------------- */

/* Bump allocator for the text of numbers and joined arrays; freed with the request. */
typedef struct cr_arena {
    char  *blk[64];
    int    n;
    size_t used, cap;
} cr_arena;

static char *cr_arena_put(cr_arena *a, const char *s, size_t len) {
    if (a->n == 0 || a->used + len + 1 > a->cap) {
        if (a->n == 64) return NULL;
        size_t cap = len + 1 > ((size_t)64 << 10) << (a->n / 4) ? len + 1 : ((size_t)64 << 10) << (a->n / 4);
        if (!(a->blk[a->n] = malloc(cap))) return NULL;
        a->n++;
        a->used = 0;
        a->cap = cap;
    }
    char *p = a->blk[a->n - 1] + a->used;
    memcpy(p, s, len);
    p[len] = 0;
    a->used += len + 1;
    return p;
}

static void cr_arena_free(cr_arena *a) {
    for (int i = 0; i < a->n; i++) free(a->blk[i]);
}

/* A number as text the schema's encoders read back to the same value:
 * integers without a fraction (ids "12"), others with 17 digits. */
static int cr_num_text(char *buf, size_t cap, double x) {
    if (x == floor(x) && fabs(x) < 1e15) return snprintf(buf, cap, "%.0f", x);
    return snprintf(buf, cap, "%.17g", x);
}

typedef struct cr_req_parse {
    const cr_model *m;
    int             NI;
    cr_arena        arena;
    cr_http_result *r;
} cr_req_parse;

/* The text of one JSON value for input i; NULL (with r filled) if the
 * value cannot be one. where names the field for messages. */
static const char *cr_value_text(cr_req_parse *p, int i, const cJSON *v, const char *where,
                                 int *bad) {
    char buf[64];
    char sep = cr_model_input_sep(p->m, i);
    *bad = 0;
    if (cJSON_IsNull(v)) return "";
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble)) {
            cr_http_error(p->r, 400, CR_HE_BAD_VALUE, "%s: number out of range", where);
            *bad = 1;
            return NULL;
        }
        int n = cr_num_text(buf, sizeof buf, v->valuedouble);
        const char *t = cr_arena_put(&p->arena, buf, (size_t)n);
        if (!t) cr_http_error(p->r, 500, CR_HE_SCORING, "out of memory");
        *bad = !t;
        return t;
    }
    if (cJSON_IsArray(v) && sep) {
        /* a bag: ["Comedy", "Drama"] is "Comedy|Drama" */
        size_t len = 0;
        const cJSON *x;
        int k = 0;
        cJSON_ArrayForEach(x, v) {
            if (cJSON_IsString(x)) {
                if (strchr(x->valuestring, sep)) {
                    cr_http_error(p->r, 400, CR_HE_BAD_VALUE,
                                  "%s[%d]: a value of a list may not contain the separator '%c'",
                                  where, k, sep);
                    *bad = 1;
                    return NULL;
                }
                len += strlen(x->valuestring) + 1;
            } else if (cJSON_IsNumber(x) && isfinite(x->valuedouble)) {
                len += 32;
            } else {
                cr_http_error(p->r, 400, CR_HE_WRONG_TYPE,
                              "%s[%d]: expected a string or a finite number", where, k);
                *bad = 1;
                return NULL;
            }
            k++;
        }
        char *joined = malloc(len + 1), *at = joined;
        if (!joined) {
            cr_http_error(p->r, 500, CR_HE_SCORING, "out of memory");
            *bad = 1;
            return NULL;
        }
        k = 0;
        cJSON_ArrayForEach(x, v) {
            if (k++) *at++ = sep;
            if (cJSON_IsString(x)) {
                size_t n = strlen(x->valuestring);
                memcpy(at, x->valuestring, n);
                at += n;
            } else {
                at += cr_num_text(at, 32, x->valuedouble);
            }
        }
        *at = 0;
        const char *t = cr_arena_put(&p->arena, joined, (size_t)(at - joined));
        free(joined);
        if (!t) cr_http_error(p->r, 500, CR_HE_SCORING, "out of memory");
        *bad = !t;
        return t;
    }
    cr_http_error(p->r, 400, CR_HE_WRONG_TYPE, "%s: expected %s, got %s", where,
                  sep ? "a string, a number or a list of them" : "a string or a number",
                  cJSON_IsObject(v) ? "an object" : cJSON_IsArray(v) ? "a list" : "a boolean");
    *bad = 1;
    return NULL;
}

/* Inputs reading column `key` (a column may feed several features). */
static int cr_inputs_of(const cr_model *m, const char *key, int *idx, int cap) {
    int n = 0;
    for (int i = 0; i < cr_model_n_inputs(m) && n < cap; i++)
        if (!strcmp(cr_model_input_column(m, i), key)) idx[n++] = i;
    return n;
}

static void cr_unknown(cr_req_parse *p, const char *where) {
    char cols[512];
    size_t n = 0;
    cols[0] = 0;
    for (int i = 0; i < p->NI && n + 70 < sizeof cols; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= !strcmp(cr_model_input_column(p->m, i), cr_model_input_column(p->m, j));
        if (!dup) n += (size_t)snprintf(cols + n, sizeof cols - n, "%s%s", n ? ", " : "",
                                        cr_model_input_column(p->m, i));
    }
    cr_http_error(p->r, 400, CR_HE_UNKNOWN_FEATURE,
                  "%s: unknown feature; the model reads: %s", where, cols);
}

/* ---- the response -------------------------------------------------------------------- */

typedef struct cr_buf {
    char  *p;
    size_t n, cap;
    int    oom;
} cr_buf;

static void cr_buf_fmt(cr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cr_buf_fmt(cr_buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)(k > 0 ? k : 0) + 256;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* %.9g reads back as the same float; NaN and inf are not JSON. */
static void cr_buf_float(cr_buf *b, float v) {
    if (isfinite(v))
        cr_buf_fmt(b, "%.9g", (double)v);
    else
        cr_buf_fmt(b, "null");
}

static void cr_write_response(const cr_model *m, int64_t N, const float *scores,
                              const float *rank, const int64_t *order, cr_http_result *r) {
    int NO = cr_model_n_outputs(m);
    cr_buf b = {0};
    b.cap = (size_t)N * (size_t)(NO * 24 + 40) + 256;
    b.p = malloc(b.cap);
    b.oom = !b.p;
    cr_buf_fmt(&b, "{\"model_version\":\"%s\",\"scores\":[", cr_model_version(m));
    for (int64_t i = 0; i < N; i++) {
        cr_buf_fmt(&b, i ? ",{" : "{");
        for (int o = 0; o < NO; o++) {
            cr_buf_fmt(&b, "%s\"%s\":", o ? "," : "", cr_model_output_name(m, o));
            cr_buf_float(&b, scores[(size_t)i * NO + o]);
        }
        cr_buf_fmt(&b, "}");
    }
    cr_buf_fmt(&b, "],\"ranking_score\":[");
    for (int64_t i = 0; i < N; i++) {
        if (i) cr_buf_fmt(&b, ",");
        cr_buf_float(&b, rank[i]);
    }
    cr_buf_fmt(&b, "],\"order\":[");
    for (int64_t i = 0; i < N; i++) cr_buf_fmt(&b, i ? ",%lld" : "%lld", (long long)order[i]);
    cr_buf_fmt(&b, "]}\n");
    if (b.oom) {
        free(b.p);
        cr_http_error(r, 500, CR_HE_SCORING, "out of memory writing %lld scores", (long long)N);
        return;
    }
    free(r->body);
    r->body = b.p;
    r->len = b.n;
    r->status = 200;
    r->kind = CR_HE_NONE;
}

/* ---- the request ---------------------------------------------------------------------- */

cr_status cr_http_score(const cr_model *m, const char *body, size_t len, int64_t max_candidates,
                        cr_http_result *r) {
    cr_req_parse p = {m, cr_model_n_inputs(m), {{0}, 0, 0, 0}, r};
    const int NI = p.NI;
    const char *end = NULL;
    const char **ctx = NULL, **cand = NULL;
    float *scores = NULL, *rank = NULL;
    int64_t *order = NULL, N = 0;
    uint8_t *in_cand = NULL;
    char where[160];
    int idx[8], bad = 0;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        cr_http_error(r, 400, CR_HE_BAD_JSON, "the body is not valid JSON (at byte %lld of %zu)",
                      end ? (long long)(end - body) : -1LL, len);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST, "the body must be a JSON object with 'candidates'");
        goto done;
    }
    const cJSON *jctx = NULL, *jc = NULL, *it;
    cJSON_ArrayForEach(it, root) {
        if (!strcmp(it->string, "context")) jctx = it;
        else if (!strcmp(it->string, "candidates")) jc = it;
        else {
            cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                          "unknown key '%.60s'; expected context, candidates", it->string);
            goto done;
        }
    }
    if (jctx && !cJSON_IsObject(jctx) && !cJSON_IsNull(jctx)) {
        cr_http_error(r, 400, CR_HE_WRONG_TYPE, "context: expected an object");
        goto done;
    }
    if (!jc || !cJSON_IsArray(jc)) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST, "candidates: expected a list of objects");
        goto done;
    }
    N = cJSON_GetArraySize(jc);
    if (N < 1) {
        cr_http_error(r, 400, CR_HE_EMPTY_CANDIDATES, "candidates: the list is empty");
        goto done;
    }
    if (N > max_candidates) {
        cr_http_error(r, 400, CR_HE_TOO_MANY_CANDIDATES, "candidates: %lld candidates, at most %lld",
                      (long long)N, (long long)max_candidates);
        goto done;
    }
    ctx = calloc((size_t)NI, sizeof *ctx);
    cand = calloc((size_t)N * NI, sizeof *cand);
    in_cand = calloc((size_t)NI, 1);
    scores = malloc((size_t)N * (size_t)cr_model_n_outputs(m) * sizeof(float));
    rank = malloc((size_t)N * sizeof(float));
    order = malloc((size_t)N * sizeof(int64_t));
    if (!ctx || !cand || !in_cand || !scores || !rank || !order) {
        cr_http_error(r, 500, CR_HE_SCORING, "out of memory for %lld candidates", (long long)N);
        goto done;
    }
    if (jctx && cJSON_IsObject(jctx))
        cJSON_ArrayForEach(it, jctx) {
            snprintf(where, sizeof where, "context.%.100s", it->string);
            int n = cr_inputs_of(m, it->string, idx, 8);
            if (!n) {
                cr_unknown(&p, where);
                goto done;
            }
            for (int k = 0; k < n; k++)
                if (!(ctx[idx[k]] = cr_value_text(&p, idx[k], it, where, &bad))) goto done;
        }
    int64_t c = 0;
    const cJSON *cj;
    cJSON_ArrayForEach(cj, jc) {
        if (!cJSON_IsObject(cj)) {
            cr_http_error(r, 400, CR_HE_WRONG_TYPE, "candidates[%lld]: expected an object",
                          (long long)c);
            goto done;
        }
        cJSON_ArrayForEach(it, cj) {
            snprintf(where, sizeof where, "candidates[%lld].%.100s", (long long)c, it->string);
            int n = cr_inputs_of(m, it->string, idx, 8);
            if (!n) {
                cr_unknown(&p, where);
                goto done;
            }
            for (int k = 0; k < n; k++) {
                if (ctx[idx[k]]) {
                    cr_http_error(r, 400, CR_HE_BAD_REQUEST, "%s: also given in context", where);
                    goto done;
                }
                in_cand[idx[k]] = 1;
                if (!(cand[(size_t)c * NI + idx[k]] = cr_value_text(&p, idx[k], it, where, &bad)))
                    goto done;
            }
        }
        c++;
    }
    /* an input nobody gave is context, missing: its default once per request */
    for (int i = 0; i < NI; i++) {
        if (!ctx[i] && !in_cand[i]) ctx[i] = "";
        if (ctx[i]) continue;
        for (int64_t j = 0; j < N; j++)
            if (!cand[(size_t)j * NI + i]) cand[(size_t)j * NI + i] = "";
    }
    cr_request rq = {ctx, N, cand};
    cr_response rs = {scores, rank, order, 0};
    cr_error e = {0};
    cr_status st = cr_model_score_request(m, &rq, &rs, &e);
    if (st == CR_ERR_PARSE || st == CR_ERR_ARG) {
        cr_http_error(r, 400, CR_HE_BAD_VALUE, "%s", e.msg);
    } else if (st) {
        cr_http_error(r, 500, CR_HE_SCORING, "%s", e.msg);
    } else {
        r->candidates = N;
        r->missing = rs.n_missing;
        cr_write_response(m, N, scores, rank, order, r);
    }
done:
    cJSON_Delete(root);
    cr_arena_free(&p.arena);
    free(ctx);
    free(cand);
    free(in_cand);
    free(scores);
    free(rank);
    free(order);
    return r->body ? CR_OK : CR_ERR_NOMEM;
}
