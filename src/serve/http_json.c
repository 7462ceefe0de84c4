/*
 * http_json.c - the JSON side of POST /v1/score: a request body becomes a
 * request of typed columns (context values once, candidate values per
 * candidate, keyed by the model's input columns; JSON numbers stay
 * numbers), and the scores become the response; and
 * what both protocols share: the strict parse (UTF-8, one value, no key
 * twice), the text of values and the scoring call. Every rejection is a
 * JSON error whose message names the field but never a file path or the
 * model's schema. Knows nothing of HTTP transport; never prints.
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
    "unauthorized", "rate_limited",      "bad_http",       "not_ready",
};

const char *cr_http_err_name(cr_http_err k) {
    return k >= 0 && k < CR_HE_N ? cr_he_names[k] : "unknown";
}

/* A JSON string body for a message: quotes, backslashes and control bytes
 * escaped (messages quote user input), and any byte that does not start a
 * whole UTF-8 sequence (a quote cut short by %.60s, raw bytes from a
 * client) written as U+FFFD, so the response is always valid UTF-8. */
void cr_json_escape(char *out, size_t cap, const char *s) {
    size_t n = 0, len = strlen(s);
    for (size_t i = 0; i < len && n + 7 < cap;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
            i++;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            out[n++] = (char)c;
            i++;
        } else {
            size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (i + k <= len && cr_utf8_check(s + i, k) == k && n + k + 1 < cap) {
                memcpy(out + n, s + i, k);
                n += k, i += k;
            } else {
                memcpy(out + n, "\\ufffd", 6);
                n += 6, i++;
            }
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
    if (r->v2) /* the Open Inference Protocol's error object */
        r->len = (size_t)snprintf(r->body, cap, "{\"error\":\"%s\"}\n", esc);
    else
        r->len = (size_t)snprintf(r->body, cap,
                                  "{\"error\":{\"kind\":\"%s\",\"message\":\"%s\"}}\n",
                                  cr_http_err_name(kind), esc);
}

/* ---- the strict parse ---------------------------------------------------------------- */

/* Offset of the first byte that breaks UTF-8 (overlong forms, surrogates
 * and code points above U+10FFFF included), or len if there is none. */
size_t cr_utf8_check(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int n = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (n < 0 || i + (size_t)n >= len) return i;
        unsigned lo = 0x80, hi = 0xBF; /* the second byte's range */
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
        if (u[i + 1] < lo || u[i + 1] > hi) return i;
        for (int k = 2; k <= n; k++)
            if ((u[i + k] & 0xC0) != 0x80) return i;
        i += (size_t)n + 1;
    }
    return len;
}

static int cr_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key given twice in any object of the tree (NULL if none);
 * sorted per object, so a huge object costs n log n, not n^2. */
static const char *cr_json_dup_key(const cJSON *v) {
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return NULL;
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) n++;
    if (cJSON_IsObject(v) && n > 1) {
        const char **k = malloc((size_t)n * sizeof *k);
        if (!k) return "(out of memory)";
        int i = 0;
        cJSON_ArrayForEach(it, v) k[i++] = it->string;
        qsort(k, (size_t)n, sizeof *k, cr_cmp_str);
        const char *dup = NULL;
        for (i = 1; i < n && !dup; i++)
            if (!strcmp(k[i - 1], k[i])) dup = k[i];
        free(k);
        if (dup) return dup;
    }
    cJSON_ArrayForEach(it, v) {
        const char *d = cr_json_dup_key(it);
        if (d) return d;
    }
    return NULL;
}

cJSON *cr_json_parse_strict(const char *body, size_t len, cr_http_result *r) {
    size_t bad = cr_utf8_check(body, len);
    if (bad < len) {
        cr_http_error(r, 400, CR_HE_BAD_JSON, "the body is not valid UTF-8 (at byte %zu of %zu)",
                      bad, len);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        cr_http_error(r, 400, CR_HE_BAD_JSON, "the body is not valid JSON (at byte %lld of %zu)",
                      end ? (long long)(end - body) : -1LL, len);
        return NULL;
    }
    size_t at = (size_t)(end - body);
    while (at < len && (body[at] == ' ' || body[at] == '\t' || body[at] == '\n' || body[at] == '\r'))
        at++;
    if (at < len) {
        cr_http_error(r, 400, CR_HE_BAD_JSON,
                      "the body holds more than one JSON value (bytes after the value at byte %zu "
                      "of %zu)", at, len);
        cJSON_Delete(root);
        return NULL;
    }
    const char *dup = cr_json_dup_key(root);
    if (dup) {
        cr_http_error(r, 400, CR_HE_BAD_JSON, "the key '%.100s' appears twice in one object", dup);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---- text for values ---------------------------------------------------------------- */

/* Bump allocator for the text of numbers and the item arrays of lists; freed with the request. */
typedef struct cr_arena {
    char  *blk[64];
    int    n;
    size_t used, cap;
} cr_arena;

/* n bytes aligned for pointers (the item arrays of lists, and text). */
static void *cr_arena_alloc(cr_arena *a, size_t n) {
    size_t at = (a->used + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
    if (a->n == 0 || at + n > a->cap) {
        if (a->n == 64) return NULL;
        size_t cap = ((size_t)64 << 10) << (a->n / 4);
        if (n > cap) cap = n;
        if (!(a->blk[a->n] = malloc(cap))) return NULL;
        a->n++;
        a->cap = cap;
        at = 0;
    }
    a->used = at + n;
    return a->blk[a->n - 1] + at;
}

static char *cr_arena_put(cr_arena *a, const char *s, size_t len) {
    char *p = cr_arena_alloc(a, len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

static void cr_arena_free(cr_arena *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) free(a->blk[i]);
    free(a);
}

/* ---- a request under construction ------------------------------------------------------ */

int cr_req_begin(cr_req_build *b, const cr_model *m, int64_t N, cr_http_result *r) {
    memset(b, 0, sizeof *b);
    b->m = m;
    b->NI = cr_model_n_inputs(m);
    b->N = N;
    b->r = r;
    b->ctx = calloc((size_t)b->NI, sizeof *b->ctx);
    b->cand = calloc((size_t)N * (size_t)b->NI, sizeof *b->cand);
    b->num = calloc((size_t)(N + 1) * (size_t)b->NI, sizeof *b->num);
    b->is_num = calloc((size_t)(N + 1) * (size_t)b->NI, 1);
    b->list = calloc((size_t)(N + 1) * (size_t)b->NI, sizeof *b->list);
    b->cols = calloc(2 * (size_t)b->NI, sizeof *b->cols);
    b->in_cand = calloc((size_t)b->NI, 1);
    b->arena = calloc(1, sizeof(cr_arena));
    b->scores = malloc((size_t)N * (size_t)cr_model_n_outputs(m) * sizeof(float));
    b->rank = malloc((size_t)N * sizeof(float));
    b->order = malloc((size_t)N * sizeof(int64_t));
    if (!b->ctx || !b->cand || !b->num || !b->is_num || !b->list || !b->cols || !b->in_cand || !b->arena || !b->scores || !b->rank || !b->order) {
        cr_http_error(r, 500, CR_HE_SCORING, "out of memory for %lld candidates", (long long)N);
        return 1;
    }
    return 0;
}

void cr_req_end(cr_req_build *b) {
    free(b->ctx);
    free(b->cand);
    free(b->num);
    free(b->is_num);
    free(b->list);
    free(b->cols);
    free(b->in_cand);
    cr_arena_free(b->arena);
    free(b->scores);
    free(b->rank);
    free(b->order);
    memset(b, 0, sizeof *b);
}

int cr_req_inputs_of(const cr_model *m, const char *key, int *idx, int cap) {
    int n = 0;
    for (int i = 0; i < cr_model_n_inputs(m) && n < cap; i++)
        if (!strcmp(cr_model_input_column(m, i), key)) idx[n++] = i;
    return n;
}

/* Mark a value that is a number (b->num holds it) or a list (b->list) in
 * ctx/cand. */
static const char cr_number_mark[] = "", cr_list_mark[] = "";

/* A JSON list for a bag as the encoder's list: its strings as they are,
 * its integers as their decimal digits (an id, as a single number is);
 * anything else is refused naming the item. 1 with r filled on failure. */
static int cr_req_list(cr_req_build *b, const cJSON *v, const char *where, cr_text_list *out) {
    cr_arena *a = b->arena;
    int64_t n = cJSON_GetArraySize(v), k = 0;
    const char **items = cr_arena_alloc(a, (size_t)(n ? n : 1) * sizeof *items);
    if (!items) {
        cr_http_error(b->r, 500, CR_HE_SCORING, "out of memory");
        return 1;
    }
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        if (cJSON_IsString(x)) {
            items[k++] = x->valuestring;
            continue;
        }
        double d = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9.0e15) {
            cr_http_error(b->r, 400, CR_HE_WRONG_TYPE,
                          "%s[%lld]: expected a string or an integer (an item of a list), got %s",
                          where, (long long)k,
                          cJSON_IsObject(x) ? "an object" : cJSON_IsArray(x) ? "a list"
                          : cJSON_IsNull(x) ? "null" : cJSON_IsBool(x) ? "a boolean"
                          : "a number with a fraction");
            return 1;
        }
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%.0f", d);
        if (!(items[k++] = cr_arena_put(a, buf, (size_t)len))) {
            cr_http_error(b->r, 500, CR_HE_SCORING, "out of memory");
            return 1;
        }
    }
    *out = (cr_text_list){items, n};
    return 0;
}

int cr_req_set(cr_req_build *b, int i, int64_t cand, const cJSON *v, const char *where) {
    size_t at = (size_t)(cand < 0 ? b->N : cand) * (size_t)b->NI + (size_t)i;
    const char **slot = cand < 0 ? &b->ctx[i] : &b->cand[(size_t)cand * (size_t)b->NI + (size_t)i];
    char sep = cr_model_input_sep(b->m, i);
    if (cand >= 0) b->in_cand[i] = 1;
    b->is_num[at] = 0;
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble)) {
            cr_http_error(b->r, 400, CR_HE_BAD_VALUE, "%s: number out of range", where);
            return 1;
        }
        b->num[at] = v->valuedouble;
        b->is_num[at] = 1;
        *slot = cr_number_mark;
    } else if (cJSON_IsNull(v)) {
        *slot = "";
    } else if (cJSON_IsString(v)) {
        *slot = v->valuestring;
    } else if (cJSON_IsArray(v) && sep) { /* a bag: ["Comedy", "Drama"], item by item */
        if (cr_req_list(b, v, where, &b->list[at])) return 1;
        *slot = cr_list_mark;
    } else {
        cr_http_error(b->r, 400, CR_HE_WRONG_TYPE, "%s: expected %s, got %s", where,
                      sep ? "a string, a number or a list of them" : "a string or a number",
                      cJSON_IsObject(v) ? "an object" : cJSON_IsArray(v) ? "a list" : "a boolean");
        return 1;
    }
    return 0;
}

/* A number as text the encoder reads back to the same value: integers
 * without a fraction (ids "12"), others with 17 digits. NULL on no memory. */
static const char *cr_req_num_text(cr_req_build *b, double x) {
    char buf[64];
    int n = x == floor(x) && fabs(x) < 1e15 ? snprintf(buf, sizeof buf, "%.0f", x)
                                            : snprintf(buf, sizeof buf, "%.17g", x);
    return cr_arena_put(b->arena, buf, (size_t)n);
}

/* Candidate input i as a column: numbers when every given value is a
 * number (the others missing: NaN); lists when any value is a list (a
 * number or a text without the separator is then a list of one); else
 * text, numbers written as text the encoder reads back to the same value.
 * 1 with r filled on failure. */
static int cr_req_column(cr_req_build *b, int i, cr_column *col) {
    const size_t NI = (size_t)b->NI;
    const char sep = cr_model_input_sep(b->m, i);
    int all_num = 1, any_list = 0;
    for (int64_t j = 0; j < b->N; j++) {
        size_t at = (size_t)j * NI + (size_t)i;
        any_list = any_list || b->cand[at] == cr_list_mark;
        all_num = all_num && !any_list && (b->is_num[at] || !b->cand[at] || !b->cand[at][0]);
    }
    if (all_num) { /* in place: the numbers of input i, one row of NI apart */
        for (int64_t j = 0; j < b->N; j++) {
            size_t at = (size_t)j * NI + (size_t)i;
            if (!b->is_num[at]) b->num[at] = NAN;
        }
        *col = (cr_column){CR_COL_F64, b->num + i, (int64_t)NI};
        return 0;
    }
    for (int64_t j = 0; j < b->N; j++) {
        size_t at = (size_t)j * NI + (size_t)i;
        const char *t = b->cand[at] ? b->cand[at] : "";
        if (b->is_num[at] && !(t = cr_req_num_text(b, b->num[at]))) {
            cr_http_error(b->r, 500, CR_HE_SCORING, "out of memory");
            return 1;
        }
        b->cand[at] = t;
        if (!any_list || t == cr_list_mark) continue;
        if (strchr(t, sep)) {
            cr_http_error(b->r, 400, CR_HE_BAD_VALUE,
                          "input '%.60s' of candidate %lld: the text '%.60s' holds the separator "
                          "'%c' while other candidates give lists; give every candidate's value "
                          "as a list, or every one as text", cr_model_input_column(b->m, i),
                          (long long)j, t, sep);
            return 1;
        }
        const char **one = t[0] ? cr_arena_alloc(b->arena, sizeof *one) : NULL;
        if (t[0] && !one) {
            cr_http_error(b->r, 500, CR_HE_SCORING, "out of memory");
            return 1;
        }
        if (one) one[0] = t;
        b->list[at] = (cr_text_list){one, one ? 1 : 0};
    }
    *col = any_list ? (cr_column){CR_COL_TEXT_LIST, b->list + i, (int64_t)NI}
                    : (cr_column){CR_COL_TEXT, b->cand + i, (int64_t)NI};
    return 0;
}

/* The model's answer to what was set: an input nobody gave is context,
 * missing, so it takes its default once per request. */
int cr_req_score(cr_req_build *b) {
    static const char *const missing_text = "";
    cr_column *ctx = b->cols, *cand = b->cols + b->NI;
    const size_t row = (size_t)b->N * (size_t)b->NI;
    for (int i = 0; i < b->NI; i++) {
        cand[i] = (cr_column){CR_COL_TEXT, NULL, 1};
        if (!b->ctx[i] && !b->in_cand[i]) b->ctx[i] = missing_text;
        if (b->ctx[i] && b->is_num[row + (size_t)i])
            ctx[i] = (cr_column){CR_COL_F64, b->num + row + i, 1};
        else if (b->ctx[i] == cr_list_mark)
            ctx[i] = (cr_column){CR_COL_TEXT_LIST, b->list + row + i, 1};
        else if (b->ctx[i])
            ctx[i] = (cr_column){CR_COL_TEXT, b->ctx + i, 1};
        else {
            ctx[i] = (cr_column){CR_COL_TEXT, NULL, 1};
            if (cr_req_column(b, i, &cand[i])) return 1;
        }
    }
    cr_request_columns rq = {ctx, b->N, cand};
    cr_response rs = {b->scores, b->rank, b->order, 0};
    cr_error e = {0};
    cr_status st = cr_model_score_request_columns(b->m, &rq, &rs, &e);
    if (st == CR_ERR_PARSE || st == CR_ERR_ARG) {
        cr_http_error(b->r, 400, CR_HE_BAD_VALUE, "%s", e.msg);
        return 1;
    }
    if (st) {
        cr_http_error(b->r, 500, CR_HE_SCORING, "%s", e.msg);
        return 1;
    }
    b->missing = rs.n_missing;
    return 0;
}

/* ---- the response -------------------------------------------------------------------- */

void cr_buf_fmt(cr_buf *b, const char *fmt, ...) {
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
void cr_buf_float(cr_buf *b, float v) {
    if (isfinite(v))
        cr_buf_fmt(b, "%.9g", (double)v);
    else
        cr_buf_fmt(b, "null");
}

int cr_buf_done(cr_buf *b, cr_http_result *r, const char *what) {
    if (b->oom) {
        free(b->p);
        cr_http_error(r, 500, CR_HE_SCORING, "out of memory writing %s", what);
        return 1;
    }
    free(r->body);
    r->body = b->p;
    r->len = b->n;
    r->status = 200;
    r->kind = CR_HE_NONE;
    return 0;
}

static void cr_write_response(const cr_req_build *q, cr_http_result *r) {
    const cr_model *m = q->m;
    int NO = cr_model_n_outputs(m);
    int64_t N = q->N;
    cr_buf b = {0};
    b.cap = (size_t)N * (size_t)(NO * 24 + 40) + 256;
    b.p = malloc(b.cap);
    b.oom = !b.p;
    cr_buf_fmt(&b, "{\"model_version\":\"%s\",\"scores\":[", cr_model_version(m));
    for (int64_t i = 0; i < N; i++) {
        cr_buf_fmt(&b, i ? ",{" : "{");
        for (int o = 0; o < NO; o++) {
            cr_buf_fmt(&b, "%s\"%s\":", o ? "," : "", cr_model_output_name(m, o));
            cr_buf_float(&b, q->scores[(size_t)i * NO + o]);
        }
        cr_buf_fmt(&b, "}");
    }
    cr_buf_fmt(&b, "],\"ranking_score\":[");
    for (int64_t i = 0; i < N; i++) {
        if (i) cr_buf_fmt(&b, ",");
        cr_buf_float(&b, q->rank[i]);
    }
    cr_buf_fmt(&b, "],\"order\":[");
    for (int64_t i = 0; i < N; i++) cr_buf_fmt(&b, i ? ",%lld" : "%lld", (long long)q->order[i]);
    cr_buf_fmt(&b, "]}\n");
    cr_buf_done(&b, r, "the scores");
}

/* ---- POST /v1/score ---------------------------------------------------------------------- */

cr_status cr_http_score(const cr_model *m, const char *body, size_t len, int64_t max_candidates,
                        cr_http_result *r) {
    cr_req_build q;
    memset(&q, 0, sizeof q);
    char where[160];
    int idx[8];
    cJSON *root = cr_json_parse_strict(body, len, r);
    if (!root) goto done;
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
    int64_t N = cJSON_GetArraySize(jc);
    if (N < 1) {
        cr_http_error(r, 400, CR_HE_EMPTY_CANDIDATES, "candidates: the list is empty");
        goto done;
    }
    if (N > max_candidates) {
        cr_http_error(r, 400, CR_HE_TOO_MANY_CANDIDATES, "candidates: %lld candidates, at most %lld",
                      (long long)N, (long long)max_candidates);
        goto done;
    }
    if (cr_req_begin(&q, m, N, r)) goto done;
    if (jctx && cJSON_IsObject(jctx))
        cJSON_ArrayForEach(it, jctx) {
            snprintf(where, sizeof where, "context.%.100s", it->string);
            int n = cr_req_inputs_of(m, it->string, idx, 8);
            if (!n) {
                cr_http_error(r, 400, CR_HE_UNKNOWN_FEATURE, "%s: unknown feature", where);
                goto done;
            }
            for (int k = 0; k < n; k++)
                if (cr_req_set(&q, idx[k], -1, it, where)) goto done;
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
            int n = cr_req_inputs_of(m, it->string, idx, 8);
            if (!n) {
                cr_http_error(r, 400, CR_HE_UNKNOWN_FEATURE, "%s: unknown feature", where);
                goto done;
            }
            for (int k = 0; k < n; k++) {
                if (q.ctx[idx[k]]) {
                    cr_http_error(r, 400, CR_HE_BAD_REQUEST, "%s: also given in context", where);
                    goto done;
                }
                if (cr_req_set(&q, idx[k], c, it, where)) goto done;
            }
        }
        c++;
    }
    if (cr_req_score(&q)) goto done;
    r->candidates = N;
    r->missing = q.missing;
    cr_write_response(&q, r);
done:
    cJSON_Delete(root);
    cr_req_end(&q);
    return r->body ? CR_OK : CR_ERR_NOMEM;
}
