/*
 * test_kserve.c - the Open Inference Protocol (KServe v2 REST) as its
 * published specification (kserve/open-inference-protocol,
 * specification/protocol/inference_rest.md) writes it, driven with plain
 * HTTP: health (200 = true), server and model metadata with their fields,
 * model readiness with and without a version, inference with BYTES, FP32
 * and INT64 tensors whose outputs equal cr_model_score on the same rows, a
 * bag as lists the same as the bag as text,
 * the request id echoed, the outputs a request names and no others,
 * errors as {"error": $string} with a 4xx status, and two named models in
 * one server.
 */
#include "util/serve_fixture.h"
#include "util/testutil.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

static cr_sf F;
static char model2[600];

static int setup(void **state) {
    (void)state;
    if (cr_sf_init(&F)) return 1;
    snprintf(model2, sizeof model2, "%s/other.safetensors", F.log.dir);
    cr_sf_save_model(&F, model2, 77, -1, 0);
    cr_server_cfg c;
    cr_sf_cfg(&F, &c); /* model "m" */
    char arg[700];
    snprintf(arg, sizeof arg, "second=%s", model2);
    cr_error e = {0};
    if (cr_server_cfg_add_model(&c, arg, &e)) return 1;
    return cr_sf_start(&F, &c);
}

static int teardown(void **state) {
    (void)state;
    cr_sf_free(&F);
    return 0;
}

/* GET path: status, and the body parsed (NULL if not JSON). */
static int get(const char *path, cJSON **j) {
    char *raw;
    const char *body;
    int st = cr_sf_http(F.port, "GET", path, NULL, "", 0, &raw, &body);
    *j = cJSON_Parse(body);
    free(raw);
    return st;
}

static int post(const char *path, const char *req, cJSON **j) {
    char *raw;
    const char *body;
    int st = cr_sf_http(F.port, "POST", path, NULL, req, strlen(req), &raw, &body);
    *j = cJSON_Parse(body);
    free(raw);
    return st;
}

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* An error: a 4xx status and {"error": $string}, nothing else. */
static void expect_error(int st, cJSON *j, int want, const char *needle) {
    const cJSON *e = item(j, "error");
    if (st != want || !cJSON_IsString(e) || cJSON_GetArraySize(j) != 1 ||
        (needle && !strstr(e->valuestring, needle))) {
        char *s = j ? cJSON_PrintUnformatted(j) : NULL;
        fail_msg("status %d (want %d), body %s (want an error with '%s')", st, want, s ? s : "(none)",
                 needle ? needle : "");
    }
    cJSON_Delete(j);
}

static void test_health_and_metadata(void **state) {
    (void)state;
    cJSON *j;
    assert_int_equal(get("/v2/health/live", &j), 200);
    assert_true(cJSON_IsTrue(item(j, "live")));
    cJSON_Delete(j);
    assert_int_equal(get("/v2/health/ready", &j), 200);
    assert_true(cJSON_IsTrue(item(j, "ready")));
    cJSON_Delete(j);
    /* $metadata_server_response: name, version, extensions */
    assert_int_equal(get("/v2", &j), 200);
    assert_true(cJSON_IsString(item(j, "name")) && cJSON_IsString(item(j, "version")));
    assert_true(cJSON_IsArray(item(j, "extensions")));
    cJSON_Delete(j);
    /* $metadata_model_response: name, versions, platform, inputs, outputs
     * of $metadata_tensor {name, datatype, shape} */
    assert_int_equal(get("/v2/models/m", &j), 200);
    assert_string_equal(item(j, "name")->valuestring, "m");
    assert_true(cJSON_IsString(item(j, "platform")));
    const cJSON *vs = item(j, "versions");
    assert_true(cJSON_IsArray(vs) && cJSON_GetArraySize(vs) == 1);
    char ver[64], path[200];
    snprintf(ver, sizeof ver, "%s", cJSON_GetArrayItem(vs, 0)->valuestring);
    const cJSON *in = item(j, "inputs"), *t;
    assert_int_equal(cJSON_GetArraySize(in), CR_SF_NI); /* hist shares user's table, not its column */
    int seen = 0;
    cJSON_ArrayForEach(t, in) {
        const char *n = item(t, "name")->valuestring, *dt = item(t, "datatype")->valuestring;
        assert_true(cJSON_IsArray(item(t, "shape")));
        assert_int_equal(cJSON_GetArrayItem(item(t, "shape"), 0)->valueint, -1);
        if (!strcmp(n, "pop") || !strcmp(n, "age")) assert_string_equal(dt, "FP32"), seen++;
        if (!strcmp(n, "item") || !strcmp(n, "tags")) assert_string_equal(dt, "BYTES"), seen++;
    }
    assert_int_equal(seen, 4);
    const cJSON *out = item(j, "outputs");
    assert_int_equal(cJSON_GetArraySize(out), 4); /* click, stay, ranking_score, order */
    assert_string_equal(item(cJSON_GetArrayItem(out, 0), "name")->valuestring, "click");
    assert_string_equal(item(cJSON_GetArrayItem(out, 3), "datatype")->valuestring, "INT64");
    cJSON_Delete(j);
    /* $ready_model_response, with and without the version */
    assert_int_equal(get("/v2/models/m/ready", &j), 200);
    assert_string_equal(item(j, "name")->valuestring, "m");
    assert_true(cJSON_IsTrue(item(j, "ready")));
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/v2/models/m/versions/%s/ready", ver);
    assert_int_equal(get(path, &j), 200);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/v2/models/m/versions/%s", ver);
    assert_int_equal(get(path, &j), 200);
    assert_string_equal(item(j, "name")->valuestring, "m");
    cJSON_Delete(j);
    int st = get("/v2/models/m/versions/nope/ready", &j);
    expect_error(st, j, 404, "version");
    st = get("/v2/models/absent", &j);
    expect_error(st, j, 404, "absent");
    st = get("/v2/models/m/infer", &j);
    expect_error(st, j, 405, "POST");
    st = get("/v2/models/m/explain", &j);
    expect_error(st, j, 404, NULL);
    assert_int_equal(get("/v2/models/second", &j), 200);
    assert_string_equal(item(j, "name")->valuestring, "second");
    cJSON_Delete(j);
}

/* An inference request for context row crow and candidate rows: user and
 * hist as BYTES of one element (context), age as INT64 of one element,
 * item and tags as BYTES and pop as FP32 of one element per candidate. */
static char *infer_request(int crow, const int *rows, int n, const char *outputs) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", "req-42");
    cJSON *in = cJSON_AddArrayToObject(root, "inputs");
    const char *names[6] = {"user", "hist", "age", "item", "tags", "pop"};
    const char *dts[6] = {"BYTES", "BYTES", "INT64", "BYTES", "BYTES", "FP32"};
    const int col[6] = {0, 3, 4, 1, 2, 5};
    for (int k = 0; k < 6; k++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", names[k]);
        cJSON_AddStringToObject(t, "datatype", dts[k]);
        int m = k < 3 ? 1 : n;
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(m));
        cJSON *d = cJSON_AddArrayToObject(t, "data");
        for (int i = 0; i < m; i++) {
            const char *v = F.log.text[k < 3 ? crow : rows[i]][col[k]];
            if (!strcmp(dts[k], "BYTES")) cJSON_AddItemToArray(d, cJSON_CreateString(v));
            else cJSON_AddItemToArray(d, cJSON_CreateNumber(atof(v)));
        }
        cJSON_AddItemToArray(in, t);
    }
    if (outputs) cJSON_AddItemToObject(root, "outputs", cJSON_Parse(outputs));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static void test_infer_matches_model(void **state) {
    (void)state;
    enum { N = 24 };
    int rows[N], n = 0;
    for (int i = 1; n < N; i++) /* rows with a pop value (FP32 has no empty value) */
        if (F.log.text[i][5][0]) rows[n++] = i;
    int crow = 1; /* with an age */
    cr_model *m;
    cr_error e = {0};
    assert_int_equal(cr_model_load(&m, F.model, &e), CR_OK);
    float want[N * 2];
    cr_sf_expected(&F, m, crow, rows, N, want);
    char *req = infer_request(crow, rows, N, NULL);
    cJSON *j;
    assert_int_equal(post("/v2/models/m/infer", req, &j), 200);
    free(req);
    /* $inference_response: model_name, model_version, id, outputs of
     * $response_output {name, shape, datatype, data} */
    assert_string_equal(item(j, "model_name")->valuestring, "m");
    assert_string_equal(item(j, "model_version")->valuestring, cr_model_version(m));
    assert_string_equal(item(j, "id")->valuestring, "req-42");
    const cJSON *outs = item(j, "outputs"), *o;
    assert_int_equal(cJSON_GetArraySize(outs), 4);
    float got[N * 2];
    int found = 0;
    cJSON_ArrayForEach(o, outs) {
        const char *name = item(o, "name")->valuestring;
        assert_int_equal(cJSON_GetArrayItem(item(o, "shape"), 0)->valueint, N);
        const cJSON *d = item(o, "data");
        assert_int_equal(cJSON_GetArraySize(d), N);
        int h = !strcmp(name, "click") ? 0 : !strcmp(name, "stay") ? 1 : -1;
        if (h >= 0) {
            assert_string_equal(item(o, "datatype")->valuestring, "FP32");
            for (int i = 0; i < N; i++) got[i * 2 + h] = (float)cJSON_GetArrayItem(d, i)->valuedouble;
            found++;
        }
        if (!strcmp(name, "order")) assert_string_equal(item(o, "datatype")->valuestring, "INT64");
    }
    assert_int_equal(found, 2);
    assert_true(cr_test_close("v2 infer vs cr_model_score", got, want, N * 2, 1e-6, 1e-5));
    cJSON_Delete(j);
    /* only the outputs asked for */
    req = infer_request(crow, rows, 3, "[{\"name\":\"stay\"}]");
    assert_int_equal(post("/v2/models/m/infer", req, &j), 200);
    outs = item(j, "outputs");
    assert_int_equal(cJSON_GetArraySize(outs), 1);
    assert_string_equal(item(cJSON_GetArrayItem(outs, 0), "name")->valuestring, "stay");
    assert_float_equal(cJSON_GetArrayItem(item(cJSON_GetArrayItem(outs, 0), "data"), 0)->valuedouble,
                       want[1], 1e-5);
    cJSON_Delete(j);
    free(req);
    /* a [2, 1] tensor with nested data is the same as [2] flat */
    const char *nested = "{\"inputs\":[{\"name\":\"item\",\"shape\":[2,1],\"datatype\":\"BYTES\","
                         "\"data\":[[\"i1\"],[\"i2\"]]}],\"outputs\":[{\"name\":\"click\"}]}";
    const char *flat = "{\"inputs\":[{\"name\":\"item\",\"shape\":[2],\"datatype\":\"BYTES\","
                       "\"data\":[\"i1\",\"i2\"]}],\"outputs\":[{\"name\":\"click\"}]}";
    cJSON *j2;
    assert_int_equal(post("/v2/models/m/infer", nested, &j), 200);
    assert_int_equal(post("/v2/models/m/infer", flat, &j2), 200);
    char *a = cJSON_PrintUnformatted(item(j, "outputs")), *b = cJSON_PrintUnformatted(item(j2, "outputs"));
    assert_string_equal(a, b);
    free(a);
    free(b);
    cJSON_Delete(j);
    cJSON_Delete(j2);
    /* a bag as lists (one element per candidate, item by item, integers
     * as their digits) is the same as the bag as text; flat or nested */
    static const char *const same[][2] = {
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[\"i1\",\"i2\",\"i3\"]},"
         "{\"name\":\"tags\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[[\"a\",\"b\"],[\"c\",7],[]]}]}",
         "{\"inputs\":[{\"name\":\"item\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[\"i1\",\"i2\",\"i3\"]},"
         "{\"name\":\"tags\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[\"a|b\",\"c|7\",\"\"]}]}"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[\"i1\",\"i2\",\"i3\"]},"
         "{\"name\":\"tags\",\"shape\":[3,1],\"datatype\":\"BYTES\",\"data\":[[[\"a\",\"b\"]],[[\"c\",7]],[[]]]}]}",
         "{\"inputs\":[{\"name\":\"item\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[\"i1\",\"i2\",\"i3\"]},"
         "{\"name\":\"tags\",\"shape\":[3,1],\"datatype\":\"BYTES\",\"data\":[[\"a|b\"],[\"c|7\"],[\"\"]]}]}"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"i1\",\"i2\"]},"
         "{\"name\":\"tags\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[[\"b\",\"c\"]]}]}",
         "{\"inputs\":[{\"name\":\"item\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"i1\",\"i2\"]},"
         "{\"name\":\"tags\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"b|c\"]}]}"},
    };
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++) {
        assert_int_equal(post("/v2/models/m/infer", same[k][0], &j), 200);
        assert_int_equal(post("/v2/models/m/infer", same[k][1], &j2), 200);
        a = cJSON_PrintUnformatted(item(j, "outputs"));
        b = cJSON_PrintUnformatted(item(j2, "outputs"));
        assert_string_equal(a, b);
        free(a);
        free(b);
        cJSON_Delete(j);
        cJSON_Delete(j2);
    }
    /* the second model scores the same request differently */
    req = infer_request(crow, rows, 3, "[{\"name\":\"click\"}]");
    assert_int_equal(post("/v2/models/second/infer", req, &j), 200);
    assert_string_equal(item(j, "model_name")->valuestring, "second");
    double c2 = cJSON_GetArrayItem(item(cJSON_GetArrayItem(item(j, "outputs"), 0), "data"), 0)->valuedouble;
    assert_true(c2 != (double)want[0]);
    cJSON_Delete(j);
    free(req);
    cr_model_free(m);
}

static void test_infer_errors(void **state) {
    (void)state;
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"{\"inputs\":[]}", "inputs"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"i1\"]}]}",
         "exactly the 2 elements"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1.5]}]}",
         "expected datatype"},
        {"{\"inputs\":[{\"name\":\"pop\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[\"x\"]}]}",
         "expected a finite number"},
        {"{\"inputs\":[{\"name\":\"age\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[1.5]}]}",
         "expected an integer"},
        {"{\"inputs\":[{\"name\":\"color\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"red\"]}]}",
         "no input 'color'"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[1],\"datatype\":\"UINT8\",\"data\":[1]}]}",
         "datatype"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"a\",\"b\"]},"
         "{\"name\":\"tags\",\"shape\":[3],\"datatype\":\"BYTES\",\"data\":[\"a\",\"b\",\"c\"]}]}",
         "one per candidate"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a\"]},"
         "{\"name\":\"item\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"b\"]}]}", "twice"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a\"]}],"
         "\"outputs\":[{\"name\":\"dwell\"}]}", "no output 'dwell'"},
        {"{\"inputs\":[{\"name\":\"pop\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1e300]}]}",
         "FP32"},
        {"{\"inputs\":[{\"name\":\"pop\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[1e300]}]}",
         "'pop'"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a\"]}],"
         "\"id\":7}", "id"},
        {"{\"inputs\":[{\"name\":\"item\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a\"]}]} x",
         "more than one JSON value"},
        {"not json", "not valid JSON"},
        {"{\"inputs\":[{\"name\":\"tags\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[[\"a\",{}]]}]}",
         "data[0][1]: expected a string or an integer (an item of a list), got an object"},
        {"{\"inputs\":[{\"name\":\"tags\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[[\"a|b\"]]}]}",
         "column 'tags': item 0 ('a|b') holds the separator '|'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j;
        int st = post("/v2/models/m/infer", bad[i].body, &j);
        expect_error(st, j, 400, bad[i].needle);
    }
    cJSON *j;
    int st = post("/v2/models/absent/infer", "{}", &j);
    expect_error(st, j, 404, "absent");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_metadata),
        cmocka_unit_test(test_infer_matches_model),
        cmocka_unit_test(test_infer_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
