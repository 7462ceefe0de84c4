/*
 * fuzz_csv.c - the CSV reader through a schema: arbitrary bytes as the
 * data file of a small ranker config (every feature kind, a split column,
 * labels and a mask), loaded and fitted as training does. Any input must
 * load or fail with a message; never crash, leak or read out of bounds.
 */
#include "fuzz_util.h"

#include "../../src/rank/config.h"

static char cfg_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char data[256];
    fuzz_path("data.csv", data, sizeof data);
    fuzz_path("csv.yaml", cfg_path, sizeof cfg_path);
    FILE *f = fopen(cfg_path, "w");
    if (!f) abort();
    fprintf(f,
            "data: {path: %s, split: {by: column, column: split}, group: request_id}\n"
            "features:\n"
            "  - {name: user, type: categorical, column: user_id, dim: 2}\n"
            "  - {name: item, type: categorical, column: item_id, dim: 2, hash_buckets: 7}\n"
            "  - {name: tags, type: multi, column: tags, dim: 2}\n"
            "  - {name: year, type: bucketized, column: year, dim: 2, boundaries: [1960, 1990]}\n"
            "  - {name: pop, type: numeric, column: pop, transform: log1p_zscore}\n"
            "tasks:\n"
            "  - {name: click, type: binary, label: click}\n"
            "  - {name: stay, type: regression, label: stay, mask: click}\n"
            "model: {type: mmoe, experts: 2, expert_layers: [4], tower_layers: [2]}\n",
            data);
    fclose(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    char p[256];
    fuzz_file("data.csv", d, n, p, sizeof p);
    cr_rank_config c;
    cr_error e = {0};
    if (cr_rank_config_load(&c, cfg_path, &e)) abort(); /* the config is ours: it must load */
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (cr_dataset_load(&ds, &c.schema, &c.data, 1, &e) == CR_OK) {
        FUZZ_CHECK(ds.n >= 0);
        cr_dataset_free(&ds);
    } else {
        FUZZ_CHECK(e.msg[0] != 0); /* a failure says why */
    }
    cr_rank_config_free(&c);
    return 0;
}
