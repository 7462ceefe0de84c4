/*
 * fuzz_map.c - the teacher map: arbitrary YAML parsed as a map, then
 * bound against a real teacher (the tiny log's schema and a model config)
 * and the header of its data, as `crossrec label` does. Any input must
 * bind or fail with a message naming the map file.
 */
#include "fuzz_util.h"

#include "../util/tiny_log.h"

#include "../../src/data/data.h"
#include "../../src/rank/config.h"
#include "../../src/rank/distill_map.h"

static cr_tiny_log t;
static cr_model_cfg mc;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (cr_tiny_log_make(&t, 30)) abort();
    cr_model_cfg_defaults(&mc, &t.s);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    char p[256];
    fuzz_file("map.yaml", d, n, p, sizeof p);
    cr_distill_map m;
    memset(&m, 0, sizeof m);
    cr_error e = {0};
    if (cr_distill_map_load(&m, p, &e)) {
        FUZZ_CHECK(strstr(e.msg, "map.yaml") || strstr(e.msg, "out of memory"));
        return 0;
    }
    cr_csv *csv = NULL;
    if (cr_csv_open(&csv, t.csv, 0, &e)) abort();
    if (cr_distill_map_bind(&m, &t.s, &mc, "teacher.safetensors", csv, &e))
        FUZZ_CHECK(e.msg[0] != 0);
    cr_csv_close(csv);
    cr_distill_map_free(&m);
    return 0;
}
