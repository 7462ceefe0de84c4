/*
 * test_server.c - the HTTP server in-process on a free loopback port, with
 * a small socket client: served scores equal cr_model_score on the same
 * rows; bags as JSON lists the same as bags as text, bad lists refused;
 * /healthz and /metrics; a thousand malformed requests all answered
 * 4xx with the server still healthy; reloads (one of a corrupt file) under
 * load with no failed request; 16 connections at once with no error.
 * Every loop is bounded by a count, never by a clock.
 */
#include "util/serve_fixture.h"
#include "util/testutil.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { NROWS = CR_SF_NROWS, NI = CR_SF_NI };

static cr_sf F;

static int setup(void **state) {
    (void)state;
    if (cr_sf_init(&F)) return 1;
    cr_server_cfg c;
    cr_sf_cfg(&F, &c);
    return cr_sf_start(&F, &c);
}

static int teardown(void **state) {
    (void)state;
    cr_sf_free(&F);
    return 0;
}

static int http(const char *method, const char *path, const char *body, size_t len, char **raw,
                const char **out) {
    return cr_sf_http(F.port, method, path, NULL, body, len, raw, out);
}

static char *request_json(int crow, const int *rows, int n) {
    return cr_sf_request_json(&F, crow, rows, n);
}

static void expected_scores(cr_model *m, int crow, const int *rows, int n, float *want) {
    cr_sf_expected(&F, m, crow, rows, n, want);
}

/* Parse a /v1/score answer into got (n, 2); checks shape and order. */
static int parse_scores(const char *body, int n, float *got, char *version, size_t vcap) {
    cJSON *root = cJSON_Parse(body);
    if (!root) return 0;
    cJSON *sc = cJSON_GetObjectItem(root, "scores"), *rk = cJSON_GetObjectItem(root, "ranking_score");
    cJSON *ord = cJSON_GetObjectItem(root, "order"), *ver = cJSON_GetObjectItem(root, "model_version");
    int ok = sc && rk && ord && cJSON_IsString(ver) && cJSON_GetArraySize(sc) == n &&
             cJSON_GetArraySize(rk) == n && cJSON_GetArraySize(ord) == n;
    for (int i = 0; ok && i < n; i++) {
        cJSON *s = cJSON_GetArrayItem(sc, i);
        cJSON *click = cJSON_GetObjectItem(s, "click"), *stay = cJSON_GetObjectItem(s, "stay");
        ok = cJSON_IsNumber(click) && cJSON_IsNumber(stay);
        if (!ok) break;
        got[i * 2] = (float)click->valuedouble;
        got[i * 2 + 1] = (float)stay->valuedouble;
        /* default formula: the click probability; order best first */
        ok = cJSON_GetArrayItem(rk, i)->valuedouble == click->valuedouble;
        if (i) {
            int a = cJSON_GetArrayItem(ord, i - 1)->valueint, b = cJSON_GetArrayItem(ord, i)->valueint;
            ok = ok && cJSON_GetArrayItem(rk, a)->valuedouble >= cJSON_GetArrayItem(rk, b)->valuedouble;
        }
    }
    if (ok && version) snprintf(version, vcap, "%s", ver->valuestring);
    cJSON_Delete(root);
    return ok;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_scores_match_model(void **state) {
    (void)state;
    cr_model *m;
    cr_error e = {0};
    assert_int_equal(cr_model_load(&m, F.model, &e), CR_OK);
    enum { N = 40 };
    int rows[N];
    for (int i = 0; i < N; i++) rows[i] = (i * 7 + 3) % NROWS;
    for (int crow = 0; crow < 3; crow++) {
        char *req = request_json(crow * 10, rows, N), *raw;
        const char *body;
        assert_int_equal(http("POST", "/v1/score", req, strlen(req), &raw, &body), 200);
        float got[N * 2], want[N * 2];
        assert_true(parse_scores(body, N, got, NULL, 0));
        expected_scores(m, crow * 10, rows, N, want);
        /* split forward vs plain forward: float rounding only */
        assert_true(cr_test_close("served scores", got, want, N * 2, 1e-6, 1e-5));
        free(raw);
        /* the same values with a column of mixed JSON types (one candidate's
         * pop as a string: the column goes as text) and the context's age
         * as a number (it goes as a number): the same scores */
        cJSON *root = cJSON_Parse(req), *ctx = cJSON_GetObjectItem(root, "context");
        cJSON *age = cJSON_GetObjectItem(ctx, "age");
        if (age && age->valuestring[0])
            cJSON_ReplaceItemInObject(ctx, "age", cJSON_CreateNumber(atof(age->valuestring)));
        for (int i = 0; i < N; i++) {
            cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "candidates"), i);
            cJSON *pop = cJSON_GetObjectItem(c, "pop");
            if (!pop) continue;
            char t[64];
            snprintf(t, sizeof t, "%.17g", pop->valuedouble);
            cJSON_ReplaceItemInObject(c, "pop", cJSON_CreateString(t));
            break;
        }
        char *mixed = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        assert_int_equal(http("POST", "/v1/score", mixed, strlen(mixed), &raw, &body), 200);
        float got2[N * 2];
        assert_true(parse_scores(body, N, got2, NULL, 0));
        assert_true(cr_test_close("mixed JSON types", got2, want, N * 2, 1e-6, 1e-5));
        free(raw);
        free(mixed);
        free(req);
    }
    cr_model_free(m);
}

static void test_healthz_and_metrics(void **state) {
    (void)state;
    char *raw;
    const char *body;
    assert_int_equal(http("GET", "/healthz", "", 0, &raw, &body), 200);
    assert_non_null(strstr(body, "\"status\":\"ok\""));
    assert_non_null(strstr(body, "model_version"));
    free(raw);
    /* a request with a missing candidate value (row 0 has no pop) */
    int rows[2] = {0, 5};
    char *req = request_json(1, rows, 2);
    assert_int_equal(http("POST", "/v1/score", req, strlen(req), &raw, &body), 200);
    free(raw);
    free(req);
    assert_int_equal(http("GET", "/metrics", "", 0, &raw, &body), 200);
    assert_non_null(strstr(raw, "text/plain"));
    assert_non_null(strstr(body, "crossrec_http_requests_total{endpoint=\"/v1/score\",code=\"200\"}"));
    assert_non_null(strstr(body, "crossrec_score_duration_seconds_bucket{le=\"+Inf\"}"));
    assert_non_null(strstr(body, "crossrec_score_duration_seconds_count"));
    assert_non_null(strstr(body, "crossrec_http_errors_total{kind=\"bad_json\"}"));
    assert_non_null(strstr(body, "crossrec_model_info{model=\"m\",version=\""));
    /* the sample lines, not their # HELP lines */
    const char *c = strstr(body, "\ncrossrec_candidates_scored_total ");
    const char *mi = strstr(body, "\ncrossrec_missing_feature_defaults_total ");
    assert_non_null(c);
    assert_non_null(mi);
    assert_true(atoll(c + strlen("\ncrossrec_candidates_scored_total ")) >= 2);
    assert_true(atoll(mi + strlen("\ncrossrec_missing_feature_defaults_total ")) >= 1);
    free(raw);
}

static void test_malformed_requests(void **state) {
    (void)state;
    static const char *bad[] = {
        "{",                                                     /* truncated */
        "{\"context\":{\"user\":\"u1\"},\"candidates\":[{\"item\":\"i1\"}",
        "not json at all",
        "[1,2,3]",                                               /* not an object */
        "{\"candidates\":[]}",                                   /* empty */
        "{\"candidates\":{}}",                                   /* not a list */
        "{\"context\":{\"user\":\"u1\"}}",                       /* no candidates */
        "{\"candidates\":[{\"item\":{\"id\":1}}]}",              /* object as a value */
        "{\"candidates\":[{\"item\":true}]}",                    /* boolean */
        "{\"candidates\":[{\"item\":[\"i1\",\"i2\"]}]}",         /* list for a single value */
        "{\"candidates\":[{\"pop\":1e999}]}",                    /* huge number */
        "{\"candidates\":[{\"pop\":\"12e400\"}]}",               /* huge number as text */
        "{\"candidates\":[{\"pop\":\"lots\"}]}",                 /* not a number */
        "{\"candidates\":[{\"color\":\"red\"}]}",                /* unknown feature */
        "{\"context\":{\"colour\":1},\"candidates\":[{}]}",      /* unknown context feature */
        "{\"context\":{\"item\":\"i1\"},\"candidates\":[{\"item\":\"i2\"}]}", /* both */
        "{\"candidates\":[1]}",                                  /* candidate not an object */
        "{\"candidates\":[{}],\"extra\":1}",                     /* unknown key */
        "{\"context\":[],\"candidates\":[{}]}",                  /* context not an object */
        "{\"candidates\":[{\"tags\":[\"a|b\"]}]}",               /* separator inside a list */
        "{\"candidates\":[{\"tags\":[{}]}]}",                    /* object inside a list */
        "{\"candidates\":[{\"pop\":-5}]}",                       /* below log1p's domain */
    };
    enum { NB = sizeof bad / sizeof bad[0] };
    /* too many candidates, and a body over the 64 KiB limit */
    size_t big_n = 70 << 10;
    char *big = malloc(big_n + 1);
    memset(big, ' ', big_n);
    big[0] = '{';
    big[big_n - 1] = '}';
    big[big_n] = 0;
    char *many = malloc(501 * 3 + 64), *p = many;
    p += sprintf(p, "{\"candidates\":[");
    for (int i = 0; i < 501; i++) p += sprintf(p, i ? ",{}" : "{}");
    sprintf(p, "]}");
    int fails = 0;
    for (int i = 0; i < 1000; i++) {
        int k = i % (NB + 4);
        char *raw;
        const char *body;
        int st;
        if (k < NB) st = http("POST", "/v1/score", bad[k], strlen(bad[k]), &raw, &body);
        else if (k == NB) st = http("POST", "/v1/score", big, big_n, &raw, &body);
        else if (k == NB + 1) st = http("POST", "/v1/score", many, strlen(many), &raw, &body);
        else if (k == NB + 2) st = http("GET", "/v1/score", "", 0, &raw, &body);
        else st = http("GET", "/v3/nothing", "", 0, &raw, &body);
        int want_json = strstr(body, "{\"error\":{\"kind\":\"") == body;
        if (st < 400 || st > 499 || !want_json) {
            if (fails++ < 5)
                fprintf(stderr, "malformed request %d: status %d, body %.200s\n", k, st, body);
        }
        if (i < NB + 4 && k == 13) assert_non_null(strstr(body, "candidates[0].color"));
        if (i < NB + 4 && k == NB) assert_int_equal(st, 413);
        if (i < NB + 4 && k == NB + 1) assert_non_null(strstr(body, "at most 500"));
        free(raw);
    }
    free(big);
    free(many);
    assert_int_equal(fails, 0);
    /* still healthy, still scoring */
    char *raw;
    const char *body;
    assert_int_equal(http("GET", "/healthz", "", 0, &raw, &body), 200);
    free(raw);
    int rows[3] = {1, 2, 3};
    char *req = request_json(4, rows, 3);
    assert_int_equal(http("POST", "/v1/score", req, strlen(req), &raw, &body), 200);
    free(raw);
    free(req);
}

/* A bag as a JSON list goes to the encoder item by item: the same scores,
 * bit for bit, as the bag as text (per candidate and in context, integers
 * as their digits, a list beside texts in one column); a list item holding
 * the separator, which only the list path refuses, and a list with an
 * object, a null, a fraction or a nested list in it are 400s that name the
 * item and what was expected. */
static void test_lists(void **state) {
    (void)state;
    static const char *const same[][2] = {
        {"{\"candidates\":[{\"item\":\"i1\",\"tags\":[\"a\",\"b\"]},{\"item\":\"i2\",\"tags\":[\"c\",7]},"
         "{\"item\":\"i3\",\"tags\":[]},{\"item\":\"i4\",\"tags\":[\"b\",\"\",\"a\"]}]}",
         "{\"candidates\":[{\"item\":\"i1\",\"tags\":\"a|b\"},{\"item\":\"i2\",\"tags\":\"c|7\"},"
         "{\"item\":\"i3\",\"tags\":\"\"},{\"item\":\"i4\",\"tags\":\"b||a\"}]}"},
        {"{\"context\":{\"tags\":[\"c\",\"a\"]},\"candidates\":[{\"item\":\"i1\"},{\"item\":\"i2\"}]}",
         "{\"context\":{\"tags\":\"c|a\"},\"candidates\":[{\"item\":\"i1\"},{\"item\":\"i2\"}]}"},
        {"{\"candidates\":[{\"tags\":[\"a\",\"c\"]},{\"tags\":\"b\"},{\"tags\":5},{\"tags\":null},{}]}",
         "{\"candidates\":[{\"tags\":\"a|c\"},{\"tags\":\"b\"},{\"tags\":\"5\"},{\"tags\":\"\"},{}]}"},
    };
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++) {
        char *raw1, *raw2;
        const char *b1, *b2;
        assert_int_equal(http("POST", "/v1/score", same[k][0], strlen(same[k][0]), &raw1, &b1), 200);
        assert_int_equal(http("POST", "/v1/score", same[k][1], strlen(same[k][1]), &raw2, &b2), 200);
        assert_string_equal(b1, b2); /* %.9g floats: equal text is equal bits */
        free(raw1);
        free(raw2);
    }
    /* the bags matter: another list, other scores */
    {
        static const char *const x = "{\"candidates\":[{\"item\":\"i1\",\"tags\":[\"a\"]}]}",
                                 *y = "{\"candidates\":[{\"item\":\"i1\",\"tags\":[\"c\",\"b\"]}]}";
        char *raw1, *raw2;
        const char *b1, *b2;
        assert_int_equal(http("POST", "/v1/score", x, strlen(x), &raw1, &b1), 200);
        assert_int_equal(http("POST", "/v1/score", y, strlen(y), &raw2, &b2), 200);
        assert_true(strcmp(b1, b2) != 0);
        free(raw1);
        free(raw2);
    }
    static const struct { const char *body, *kind, *needle; } bad[] = {
        {"{\"candidates\":[{\"tags\":[\"a\",{\"id\":1}]}]}", "wrong_type",
         "candidates[0].tags[1]: expected a string or an integer (an item of a list), got an object"},
        {"{\"candidates\":[{},{\"tags\":[\"a\",null]}]}", "wrong_type",
         "candidates[1].tags[1]: expected a string or an integer (an item of a list), got null"},
        {"{\"context\":{\"tags\":[[\"a\"]]},\"candidates\":[{}]}", "wrong_type",
         "context.tags[0]: expected a string or an integer (an item of a list), got a list"},
        {"{\"candidates\":[{\"tags\":[1.5]}]}", "wrong_type", "got a number with a fraction"},
        {"{\"candidates\":[{\"tags\":[true]}]}", "wrong_type", "got a boolean"},
        {"{\"candidates\":[{\"tags\":[\"a|b\"]}]}", "bad_value",
         "candidates[0]: column 'tags': item 0 ('a|b') holds the separator '|'"},
        {"{\"candidates\":[{\"tags\":[\"a\"]},{\"tags\":\"b|c\"}]}", "bad_value",
         "the text 'b|c' holds the separator '|' while other candidates give lists"},
        {"{\"candidates\":[{\"item\":[\"i1\"]}]}", "wrong_type",
         "candidates[0].item: expected a string or a number, got a list"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *raw;
        const char *body;
        int st = http("POST", "/v1/score", bad[k].body, strlen(bad[k].body), &raw, &body);
        char kind[64];
        snprintf(kind, sizeof kind, "\"kind\":\"%s\"", bad[k].kind);
        if (st != 400 || !strstr(body, kind) || !strstr(body, bad[k].needle))
            fail_msg("list case %zu: status %d, body %s (want 400, %s, '%s')", k, st, body,
                     bad[k].kind, bad[k].needle);
        free(raw);
    }
}

/* ---- load ------------------------------------------------------------------------------ */

typedef struct client {
    int id, n_req;
    atomic_int *stop;
    int done, failed;
} client;

static void *client_run(void *arg) {
    client *c = arg;
    int rows[20];
    for (int i = 0; i < 20; i++) rows[i] = (i * 11 + c->id * 5) % NROWS;
    char *req = request_json(c->id % NROWS, rows, 20);
    for (int i = 0; i < c->n_req && !(c->stop && atomic_load(c->stop)); i++) {
        char *raw;
        const char *body;
        float got[40];
        int st = http("POST", "/v1/score", req, strlen(req), &raw, &body);
        if (st != 200 || !parse_scores(body, 20, got, NULL, 0)) {
            if (c->failed++ < 3) fprintf(stderr, "client %d: status %d %.200s\n", c->id, st, body);
        }
        c->done++;
        free(raw);
    }
    free(req);
    return NULL;
}

static void test_reload_under_load(void **state) {
    (void)state;
    enum { T = 4 };
    atomic_int stop = 0;
    client cl[T];
    pthread_t tid[T];
    for (int t = 0; t < T; t++) {
        cl[t] = (client){t, 3000, &stop, 0, 0};
        pthread_create(&tid[t], NULL, client_run, &cl[t]);
    }
    char *raw;
    const char *body;
    char v0[64], v1[64], v2[64], tmp[600];
    cr_server_version(F.srv, v0, sizeof v0);
    /* a good new model, written next to the old and renamed over it */
    snprintf(tmp, sizeof tmp, "%s/new.safetensors", F.log.dir);
    cr_sf_save_model(&F, tmp, 77, -1, 0);
    assert_int_equal(rename(tmp, F.model), 0);
    cr_error e = {0};
    assert_int_equal(cr_server_reload(F.srv, &e), CR_OK); /* as SIGHUP does */
    cr_server_version(F.srv, v1, sizeof v1);
    assert_string_not_equal(v0, v1);
    /* a corrupt one: rejected, the good one keeps serving */
    FILE *f = fopen(tmp, "wb");
    fputs("\x10\x00\x00\x00\x00\x00\x00\x00{\"broken\": tru", f);
    fclose(f);
    char keep[600];
    snprintf(keep, sizeof keep, "%s/keep.safetensors", F.log.dir);
    assert_int_equal(rename(F.model, keep), 0);
    assert_int_equal(rename(tmp, F.model), 0);
    assert_int_not_equal(cr_server_reload(F.srv, &e), CR_OK);
    assert_non_null(strstr(e.msg, "m.safetensors")); /* the operator's message names the file */
    cr_server_version(F.srv, v2, sizeof v2);
    assert_string_equal(v1, v2);
    assert_int_equal(rename(keep, F.model), 0);
    /* let the clients see the new model for a while, then stop them */
    int seen = 0;
    for (int i = 0; i < 200 && seen < 50; i++) {
        assert_int_equal(http("GET", "/healthz", "", 0, &raw, &body), 200);
        assert_non_null(strstr(body, v1));
        free(raw);
        seen = cl[0].done;
    }
    atomic_store(&stop, 1);
    int done = 0, failed = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(tid[t], NULL);
        done += cl[t].done;
        failed += cl[t].failed;
    }
    assert_true(done > 0);
    assert_int_equal(failed, 0);
    assert_int_equal(http("GET", "/metrics", "", 0, &raw, &body), 200);
    assert_non_null(strstr(body, "crossrec_model_reloads_total{result=\"error\"} 1"));
    free(raw);
}

static void test_sixteen_connections(void **state) {
    (void)state;
    enum { T = 16 };
    client cl[T];
    pthread_t tid[T];
    for (int t = 0; t < T; t++) {
        cl[t] = (client){t, 60, NULL, 0, 0};
        pthread_create(&tid[t], NULL, client_run, &cl[t]);
    }
    int done = 0, failed = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(tid[t], NULL);
        done += cl[t].done;
        failed += cl[t].failed;
    }
    assert_int_equal(done, T * 60);
    assert_int_equal(failed, 0);
}

static void test_serve_config(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/serve.yaml", F.log.dir);
    FILE *f = fopen(path, "w");
    fputs("data: {path: x.csv}\nserve:\n  port: 0\n  threads: 2\n  precision: int8\n"
          "  limits: {max_candidates: 7}\n"
          "  ranking: {formula: product, weights: {click: 2, stay: 0.5}}\n", f);
    fclose(f);
    cr_server_cfg c;
    cr_server_cfg_defaults(&c);
    cr_error e = {0};
    assert_int_equal(cr_server_cfg_load(&c, path, &e), CR_OK);
    assert_string_equal(c.host, "127.0.0.1"); /* absent: the safe default kept */
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.max_candidates, 7);
    assert_int_equal(c.max_body, 1 << 20);
    assert_int_equal(c.model.precision, CR_PRECISION_INT8);
    assert_int_equal(c.model.formula, CR_RANK_PRODUCT);
    assert_int_equal(c.model.n_weights, 2);
    assert_string_equal(c.model.weight_name[1], "stay");
    assert_true(c.model.weight[0] == 2.0f);
    f = fopen(path, "w");
    fputs("serve:\n  limits: {max_candidate: 7}\n", f);
    fclose(f);
    assert_int_equal(cr_server_cfg_load(&c, path, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, ":2:"));
    assert_non_null(strstr(e.msg, "serve.limits"));
    assert_non_null(strstr(e.msg, "max_candidate"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_match_model),
        cmocka_unit_test(test_healthz_and_metrics),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_reload_under_load),
        cmocka_unit_test(test_sixteen_connections),
        cmocka_unit_test(test_serve_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
