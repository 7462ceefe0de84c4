/*
 * tiny_log.c - the small impression log shared by the serving-side tests;
 * see tiny_log.h. Test-only code: it may print.
 */
#include "tiny_log.h"

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cr_tiny_cols[CR_TINY_NI] = {"user", "item", "tags", "hist", "age", "pop"};

static const char *tiny_yaml =
    "data:\n"
    "  path: d.csv\n"
    "  split: {by: fraction, valid: 0.2, test: 0.2, seed: 3}\n"
    "features:\n"
    "  - {name: user, type: categorical, column: user, dim: 4}\n"
    "  - {name: item, type: categorical, column: item, dim: 4, hash_buckets: 50}\n"
    "  - {name: tags, type: multi, column: tags, dim: 3, pooling: mean}\n"
    "  - {name: hist, type: multi, column: hist, share: user}\n"
    "  - {name: age, type: bucketized, column: age, dim: 2, boundaries: [20, 40, 60]}\n"
    "  - {name: pop, type: numeric, column: pop, transform: log1p_zscore, default: 1}\n"
    "tasks:\n"
    "  - {name: click, type: binary, label: click}\n"
    "  - {name: stay, type: regression, label: stay, mask: click}\n";

int cr_tiny_log_make(cr_tiny_log *t, int n) {
    memset(t, 0, sizeof *t);
    cr_test_tmpdir(t->dir, sizeof t->dir);
    snprintf(t->csv, sizeof t->csv, "%s/d.csv", t->dir);
    snprintf(t->cfg, sizeof t->cfg, "%s/c.yaml", t->dir);
    t->n = n;
    t->text = calloc((size_t)n, sizeof *t->text);
    FILE *f = fopen(t->csv, "w");
    if (!t->text || !f) return 1;
    fprintf(f, "user,item,tags,hist,age,pop,click,stay\n");
    cr_rng r;
    cr_rng_seed(&r, 9);
    static const char *tags[] = {"a", "b", "c", "a|b", "", "c|a|b"};
    for (int i = 0; i < n; i++) {
        int u = (int)cr_rng_below(&r, 12), it = (int)cr_rng_below(&r, 30);
        int click = (u + it) % 3 == 0;
        char(*row)[32] = t->text[i];
        snprintf(row[0], 32, "u%d", u);
        snprintf(row[1], 32, "i%d", it);
        snprintf(row[2], 32, "%s", tags[cr_rng_below(&r, 6)]);
        snprintf(row[3], 32, "u%d|u%d", (int)cr_rng_below(&r, 12), (int)cr_rng_below(&r, 14));
        snprintf(row[4], 32, "%s", i % 7 == 0 ? "" : (i % 2 ? "35" : "61"));
        snprintf(row[5], 32, "%s", i % 5 == 0 ? "" : (i % 3 ? "12.5" : "3"));
        fprintf(f, "%s,%s,%s,%s,%s,%s,%d,%s\n", row[0], row[1], row[2], row[3], row[4], row[5],
                click, click ? "0.5" : "");
    }
    fclose(f);
    f = fopen(t->cfg, "w");
    if (!f) return 1;
    fputs(tiny_yaml, f);
    fclose(f);
    cr_error e = {0};
    cr_yaml_doc *doc;
    cr_dataset ds;
    if (cr_yaml_load(&doc, t->cfg, &e)) goto fail;
    cr_status st = cr_data_config_parse(cr_yaml_root(doc), t->cfg, &t->dc, &t->s, &e);
    cr_yaml_free(doc);
    if (st || cr_dataset_load(&ds, &t->s, &t->dc, 1, &e)) goto fail;
    cr_dataset_free(&ds);
    return 0;
fail:
    fprintf(stderr, "tiny log: %s\n", e.msg);
    return 1;
}

void cr_tiny_log_free(cr_tiny_log *t) {
    cr_schema_free(&t->s);
    free(t->text);
    if (t->dir[0]) cr_test_rmdir(t->dir);
    memset(t, 0, sizeof *t);
}
