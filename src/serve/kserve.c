/*
 * kserve.c - the JSON side of the Open Inference Protocol (KServe v2 REST):
 * a model's metadata (one input tensor per input column, one output tensor
 * per head plus the ranking score and the order), and an inference request
 * whose tensors become a crossrec request: a tensor of one element is
 * context (the same for every candidate), a tensor of N elements gives one
 * value per candidate. Errors are the protocol's {"error": "..."}. Knows
 * nothing of HTTP transport; never prints.
 */
#include "server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DT_BYTES, DT_FP32, DT_FP64, DT_INT32, DT_INT64, DT_N };
static const char *const dt_names[DT_N] = {"BYTES", "FP32", "FP64", "INT32", "INT64"};

/* Index of the first input reading the same column as input i (columns
 * are the tensors: a column feeding several features is one tensor). */
static int first_of_column(const cr_model *m, int i) {
    for (int j = 0; j < i; j++)
        if (!strcmp(cr_model_input_column(m, j), cr_model_input_column(m, i))) return j;
    return i;
}

static void tensor_meta(cr_buf *b, const char *name, const char *dt, int first) {
    char esc[300];
    cr_json_escape(esc, sizeof esc, name);
    cr_buf_fmt(b, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[-1]}", first ? "" : ",", esc,
               dt);
}

cr_status cr_kserve_metadata(const cr_model *m, const char *name, cr_http_result *r) {
    cr_buf b = {0};
    char esc[300];
    r->v2 = 1;
    cr_json_escape(esc, sizeof esc, name);
    cr_buf_fmt(&b, "{\"name\":\"%s\",\"versions\":[\"%s\"],\"platform\":\"crossrec\",\"inputs\":[",
               esc, cr_model_version(m));
    int k = 0;
    for (int i = 0; i < cr_model_n_inputs(m); i++)
        if (first_of_column(m, i) == i)
            tensor_meta(&b, cr_model_input_column(m, i),
                        cr_model_input_is_number(m, i) ? "FP32" : "BYTES", k++ == 0);
    cr_buf_fmt(&b, "],\"outputs\":[");
    for (int o = 0; o < cr_model_n_outputs(m); o++)
        tensor_meta(&b, cr_model_output_name(m, o), "FP32", o == 0);
    tensor_meta(&b, "ranking_score", "FP32", 0);
    tensor_meta(&b, "order", "INT64", 0);
    cr_buf_fmt(&b, "]}\n");
    cr_buf_done(&b, r, "the metadata");
    return r->body ? CR_OK : CR_ERR_NOMEM;
}

/* ---- tensors -------------------------------------------------------------------------- */

/* The elements of a tensor's data, flattened in row-major order (the
 * protocol allows nested or flat data); at most cap, counted in *n. A list
 * at depth list_depth (the shape's rank, for a bag) is one element: that
 * candidate's bag, item by item. */
static int flatten(const cJSON *d, const cJSON **out, int64_t cap, int64_t *n, int depth,
                   int list_depth) {
    if (!cJSON_IsArray(d) || depth == list_depth) {
        if (*n >= cap) return 1;
        out[(*n)++] = d;
        return 0;
    }
    if (depth > 2) return 1;
    const cJSON *x;
    cJSON_ArrayForEach(x, d) if (flatten(x, out, cap, n, depth + 1, list_depth)) return 1;
    return 0;
}

/* Whether element x may be of datatype dt (a list's items are checked
 * when it is set). */
static const char *element_ok(const cJSON *x, int dt) {
    if (dt == DT_BYTES)
        return cJSON_IsString(x) || cJSON_IsArray(x) ? NULL : "a string (BYTES), or a list for a bag";
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return "a finite number";
    if ((dt == DT_INT32 || dt == DT_INT64) &&
        (x->valuedouble != floor(x->valuedouble) || fabs(x->valuedouble) > 9007199254740992.0))
        return "an integer";
    if (dt == DT_INT32 && fabs(x->valuedouble) > 2147483647.0) return "a 32-bit integer";
    if (dt == DT_FP32 && fabs(x->valuedouble) > 3.4028234663852886e38) return "a number within FP32";
    return NULL;
}

typedef struct kin {
    const cJSON  *t;      /* the input object */
    const char   *name;
    int           dt;
    int64_t       n;      /* elements */
    const cJSON **el;     /* (n) */
} kin;

/* bag: the input named is multi-valent, so an element may be a list. */
static int parse_input(const cr_model *m, const cJSON *t, int k, kin *in, int64_t max_el,
                       cr_http_result *r) {
    memset(in, 0, sizeof *in);
    in->t = t;
    if (!cJSON_IsObject(t)) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST, "inputs[%d]: expected an object", k);
        return 1;
    }
    const cJSON *name = NULL, *shape = NULL, *dt = NULL, *data = NULL, *it;
    cJSON_ArrayForEach(it, t) {
        if (!strcmp(it->string, "name")) name = it;
        else if (!strcmp(it->string, "shape")) shape = it;
        else if (!strcmp(it->string, "datatype")) dt = it;
        else if (!strcmp(it->string, "data")) data = it;
        else if (strcmp(it->string, "parameters")) {
            cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                          "inputs[%d]: unknown key '%.60s'; expected name, shape, datatype, "
                          "parameters, data", k, it->string);
            return 1;
        }
    }
    if (!cJSON_IsString(name) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) || !data) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                      "inputs[%d]: name and datatype (strings), shape (a list) and data are "
                      "required", k);
        return 1;
    }
    in->name = name->valuestring;
    in->dt = -1;
    for (int i = 0; i < DT_N; i++)
        if (!strcmp(dt->valuestring, dt_names[i])) in->dt = i;
    if (in->dt < 0) {
        cr_http_error(r, 400, CR_HE_WRONG_TYPE,
                      "inputs[%d] '%.60s': datatype '%.20s' is not one of BYTES, FP32, FP64, "
                      "INT32, INT64", k, in->name, dt->valuestring);
        return 1;
    }
    /* shape: [n] or [n, 1], n >= 1 */
    int64_t numel = 1;
    int nd = cJSON_GetArraySize(shape);
    int d = 0;
    cJSON_ArrayForEach(it, shape) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (v < 0 || v != floor(v) || v > (double)max_el || (d == 1 && v != 1)) {
            cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                          "inputs[%d] '%.60s': shape must be [n] or [n, 1] with 1 <= n <= %lld",
                          k, in->name, (long long)max_el);
            return 1;
        }
        numel *= (int64_t)v;
        d++;
    }
    if (nd < 1 || nd > 2 || numel < 1) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                      "inputs[%d] '%.60s': shape must be [n] or [n, 1] with 1 <= n <= %lld", k,
                      in->name, (long long)max_el);
        return 1;
    }
    in->el = malloc((size_t)numel * sizeof *in->el);
    if (!in->el) {
        cr_http_error(r, 500, CR_HE_SCORING, "out of memory");
        return 1;
    }
    int idx[1], bag = cr_req_inputs_of(m, in->name, idx, 1) && cr_model_input_sep(m, idx[0]);
    if (flatten(data, in->el, numel, &in->n, 0, bag ? nd : -1) || in->n != numel) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                      "inputs[%d] '%.60s': data must hold exactly the %lld elements of its shape",
                      k, in->name, (long long)numel);
        return 1;
    }
    for (int64_t i = 0; i < in->n; i++) {
        const char *want = element_ok(in->el[i], in->dt);
        if (want) {
            cr_http_error(r, 400, CR_HE_WRONG_TYPE, "inputs[%d] '%.60s': data[%lld]: expected %s",
                          k, in->name, (long long)i, want);
            return 1;
        }
    }
    return 0;
}

/* ---- the response ------------------------------------------------------------------------ */

static void out_tensor(cr_buf *b, const char *name, const char *dt, int64_t N, int *first) {
    char esc[300];
    cr_json_escape(esc, sizeof esc, name);
    cr_buf_fmt(b, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[%lld],\"data\":[",
               *first ? "" : ",", esc, dt, (long long)N);
    *first = 0;
}

static int wanted(const cJSON *outs, const char *name) {
    if (!outs) return 1;
    const cJSON *o;
    cJSON_ArrayForEach(o, outs) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return 1;
    }
    return 0;
}

static void write_infer(const cr_req_build *q, const char *name, const cJSON *id,
                        const cJSON *outs, cr_http_result *r) {
    const cr_model *m = q->m;
    int NO = cr_model_n_outputs(m), first = 1;
    int64_t N = q->N;
    char esc[600];
    cr_buf b = {0};
    b.cap = (size_t)N * (size_t)(NO * 16 + 32) + 512;
    b.p = malloc(b.cap);
    b.oom = !b.p;
    cr_json_escape(esc, sizeof esc, name);
    cr_buf_fmt(&b, "{\"model_name\":\"%s\",\"model_version\":\"%s\"", esc, cr_model_version(m));
    if (id) {
        cr_json_escape(esc, sizeof esc, id->valuestring);
        cr_buf_fmt(&b, ",\"id\":\"%s\"", esc);
    }
    cr_buf_fmt(&b, ",\"outputs\":[");
    for (int o = 0; o < NO; o++) {
        if (!wanted(outs, cr_model_output_name(m, o))) continue;
        out_tensor(&b, cr_model_output_name(m, o), "FP32", N, &first);
        for (int64_t i = 0; i < N; i++) {
            if (i) cr_buf_fmt(&b, ",");
            cr_buf_float(&b, q->scores[(size_t)i * NO + o]);
        }
        cr_buf_fmt(&b, "]}");
    }
    if (wanted(outs, "ranking_score")) {
        out_tensor(&b, "ranking_score", "FP32", N, &first);
        for (int64_t i = 0; i < N; i++) {
            if (i) cr_buf_fmt(&b, ",");
            cr_buf_float(&b, q->rank[i]);
        }
        cr_buf_fmt(&b, "]}");
    }
    if (wanted(outs, "order")) {
        out_tensor(&b, "order", "INT64", N, &first);
        for (int64_t i = 0; i < N; i++) cr_buf_fmt(&b, i ? ",%lld" : "%lld", (long long)q->order[i]);
        cr_buf_fmt(&b, "]}");
    }
    cr_buf_fmt(&b, "]}\n");
    cr_buf_done(&b, r, "the outputs");
}

/* ---- POST /v2/models/NAME/infer -------------------------------------------------------- */

/* Whether every requested output exists (r holds the error otherwise). */
static int outputs_ok(const cr_model *m, const cJSON *outs, cr_http_result *r) {
    const cJSON *o;
    int k = 0;
    cJSON_ArrayForEach(o, outs) {
        const cJSON *n = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "name") : NULL;
        if (!cJSON_IsString(n)) {
            cr_http_error(r, 400, CR_HE_BAD_REQUEST, "outputs[%d]: expected an object with a name", k);
            return 0;
        }
        int found = !strcmp(n->valuestring, "ranking_score") || !strcmp(n->valuestring, "order");
        for (int i = 0; i < cr_model_n_outputs(m) && !found; i++)
            found = !strcmp(n->valuestring, cr_model_output_name(m, i));
        if (!found) {
            cr_http_error(r, 400, CR_HE_BAD_REQUEST, "outputs[%d]: the model has no output '%.60s'",
                          k, n->valuestring);
            return 0;
        }
        k++;
    }
    return 1;
}

cr_status cr_kserve_infer(const cr_model *m, const char *name, const char *body, size_t len,
                          int64_t max_candidates, cr_http_result *r) {
    r->v2 = 1;
    cr_req_build q;
    memset(&q, 0, sizeof q);
    kin *in = NULL;
    int n_in = 0, idx[8];
    cJSON *root = cr_json_parse_strict(body, len, r);
    if (!root) goto done;
    if (!cJSON_IsObject(root)) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST, "the body must be an inference request object");
        goto done;
    }
    const cJSON *id = NULL, *inputs = NULL, *outs = NULL, *it;
    cJSON_ArrayForEach(it, root) {
        if (!strcmp(it->string, "id")) id = it;
        else if (!strcmp(it->string, "inputs")) inputs = it;
        else if (!strcmp(it->string, "outputs")) outs = it;
        else if (strcmp(it->string, "parameters")) {
            cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                          "unknown key '%.60s'; expected id, parameters, inputs, outputs", it->string);
            goto done;
        }
    }
    if (id && !cJSON_IsString(id)) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST, "id: expected a string");
        goto done;
    }
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) < 1) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST, "inputs: expected a non-empty list of tensors");
        goto done;
    }
    if (outs && !cJSON_IsArray(outs)) {
        cr_http_error(r, 400, CR_HE_BAD_REQUEST, "outputs: expected a list");
        goto done;
    }
    if (outs && !outputs_ok(m, outs, r)) goto done;
    n_in = cJSON_GetArraySize(inputs);
    if (!(in = calloc((size_t)n_in, sizeof *in))) {
        cr_http_error(r, 500, CR_HE_SCORING, "out of memory");
        goto done;
    }
    /* every tensor first: its shape decides the number of candidates */
    int64_t N = 1;
    int k = 0;
    cJSON_ArrayForEach(it, inputs) {
        if (parse_input(m, it, k, &in[k], max_candidates, r)) goto done;
        for (int j = 0; j < k; j++)
            if (!strcmp(in[j].name, in[k].name)) {
                cr_http_error(r, 400, CR_HE_BAD_REQUEST, "inputs[%d]: '%.60s' is given twice", k,
                              in[k].name);
                goto done;
            }
        if (in[k].n > 1) {
            if (N > 1 && in[k].n != N) {
                cr_http_error(r, 400, CR_HE_BAD_REQUEST,
                              "inputs[%d] '%.60s': %lld elements, but another input has %lld "
                              "(each input has 1 element, for all candidates, or one per candidate)",
                              k, in[k].name, (long long)in[k].n, (long long)N);
                goto done;
            }
            N = in[k].n;
        }
        k++;
    }
    if (cr_req_begin(&q, m, N, r)) goto done;
    for (k = 0; k < n_in; k++) {
        int n = cr_req_inputs_of(m, in[k].name, idx, 8);
        if (!n) {
            cr_http_error(r, 400, CR_HE_UNKNOWN_FEATURE,
                          "inputs[%d]: the model has no input '%.60s' (its metadata lists them)", k,
                          in[k].name);
            goto done;
        }
        /* numbers for numeric inputs; ids as strings or integers; bags as
         * strings or lists (of strings or integers) */
        int num = cr_model_input_is_number(m, idx[0]), bag = cr_model_input_sep(m, idx[0]) != 0;
        int dt = in[k].dt;
        if ((!num && (dt == DT_FP32 || dt == DT_FP64)) || (bag && dt != DT_BYTES)) {
            cr_http_error(r, 400, CR_HE_WRONG_TYPE, "inputs[%d] '%.60s': expected datatype %s, got %s",
                          k, in[k].name, bag ? "BYTES" : "BYTES or INT64", dt_names[dt]);
            goto done;
        }
        char where[160];
        for (int64_t j = 0; j < in[k].n; j++) {
            snprintf(where, sizeof where, "inputs[%d] '%.60s' data[%lld]", k, in[k].name, (long long)j);
            for (int f = 0; f < n; f++)
                if (cr_req_set(&q, idx[f], in[k].n == 1 ? -1 : j, in[k].el[j], where)) goto done;
        }
    }
    if (cr_req_score(&q)) goto done;
    r->candidates = N;
    r->missing = q.missing;
    write_infer(&q, name, id, outs, r);
done:
    for (int i = 0; in && i < n_in; i++) free(in[i].el);
    free(in);
    cJSON_Delete(root);
    cr_req_end(&q);
    return r->body ? CR_OK : CR_ERR_NOMEM;
}
