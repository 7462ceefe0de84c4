/*
 * fuzz_yaml.c - the YAML configs: the first byte picks the reader (ranker
 * config, ILM study, teacher map, serve section, LM config), the rest is
 * the file. Any input must parse or fail with a message naming the file.
 */
#include "fuzz_util.h"

#include "../../src/ilm/ilm_study.h"
#include "../../src/rank/config.h"
#include "../../src/rank/distill_map.h"
#include "../../src/serve/server.h"
#include "../../src/train/lm_train.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    char p[256];
    fuzz_file("cfg.yaml", d + 1, n - 1, p, sizeof p);
    cr_error e = {0};
    cr_status st;
    switch (d[0] % 5) {
    case 0: {
        cr_rank_config c;
        if ((st = cr_rank_config_load(&c, p, &e)) == CR_OK) cr_rank_config_free(&c);
        break;
    }
    case 1: {
        cr_ilm_study_cfg c;
        cr_ilm_study_cfg_default(&c);
        st = cr_ilm_study_load(&c, p, &e);
        break;
    }
    case 2: {
        cr_distill_map m;
        memset(&m, 0, sizeof m);
        st = cr_distill_map_load(&m, p, &e);
        if (st == CR_OK) cr_distill_map_free(&m);
        break;
    }
    case 3: {
        cr_server_cfg c;
        cr_server_cfg_defaults(&c);
        st = cr_server_cfg_load(&c, p, &e);
        break;
    }
    default: {
        cr_lm_cfg c;
        cr_lm_cfg_default(&c);
        st = cr_lm_cfg_load(&c, p, &e);
        break;
    }
    }
    if (st) FUZZ_CHECK(strstr(e.msg, "cfg.yaml") != NULL || strstr(e.msg, "out of memory"));
    return 0;
}
