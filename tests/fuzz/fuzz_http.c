/*
 * fuzz_http.c - request bodies of both protocols against one small model:
 * the first byte picks POST /v1/score or POST /v2/models/m/infer, the rest
 * is the body. Every answer must be a JSON document (parsed back) that is
 * valid UTF-8, with a 200 or a 4xx/5xx status matching its shape; never
 * crash or leak.
 */
#include "fuzz_util.h"

#include "../util/tiny_log.h"

#include "../../src/rank/checkpoint.h"
#include "../../src/serve/server.h"

#include <cJSON.h>

static cr_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static cr_tiny_log t;
    if (cr_tiny_log_make(&t, 60)) abort();
    cr_model_cfg mc;
    cr_model_cfg_defaults(&mc, &t.s);
    mc.arch = CR_ARCH_MMOE;
    mc.n_experts = 2;
    mc.expert_layers[0] = 4;
    mc.tower_layers[0] = 2;
    cr_ranker *r;
    cr_error e = {0};
    char p[256];
    fuzz_path("http.safetensors", p, sizeof p);
    if (cr_ranker_create(&r, &t.s, &mc, 1, &e) || cr_ranker_save(r, &t.s, p, NULL, &e) ||
        cr_model_load(&model, p, &e)) {
        fprintf(stderr, "fuzz_http: %s\n", e.msg);
        abort();
    }
    cr_ranker_free(r);
    unlink(p);
    cr_tiny_log_free(&t);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    cr_http_result r = {0};
    const char *body = (const char *)d + 1;
    int v2 = d[0] % 2;
    cr_status st = v2 ? cr_kserve_infer(model, "m", body, n - 1, 64, &r)
                      : cr_http_score(model, body, n - 1, 64, &r);
    FUZZ_CHECK(st == CR_OK && r.body);
    FUZZ_CHECK(cr_utf8_check(r.body, r.len) == r.len);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    FUZZ_CHECK(j != NULL);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    FUZZ_CHECK((r.status == 200) == (err == NULL));
    FUZZ_CHECK(r.status == 200 || (r.status >= 400 && r.status < 600));
    if (err) FUZZ_CHECK(v2 ? cJSON_IsString(err) : cJSON_IsObject(err));
    cJSON_Delete(j);
    free(r.body);
    return 0;
}
