/*
 * study_case.c - the tiny two-domain case of the study tests (study_case.h).
 */
#include "study_case.h"

#include "testutil.h"

#include "../../src/data/synth.h"

#include <stdio.h>
#include <string.h>

void cr_test_put_file(const char *dir, const char *name, const char *text) {
    char p[512];
    cr_error e = {0};
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(cr_write_file_atomic(p, text, strlen(text), &e), CR_OK);
}

void cr_test_study_data(const char *dir, int write_data) {
    cr_test_put_file(dir, "synth.yaml",
                     "users: 40\ngenres: 5\n"
                     "source: {name: source, requests: 300, items: 60}\n"
                     "target: {name: target, requests: 80, items: 30}\n");
    if (!write_data) return;
    char p[512];
    snprintf(p, sizeof p, "%s/synth.yaml", dir);
    cr_synth_cfg c;
    cr_error e = {0};
    assert_int_equal(cr_synth_cfg_load(&c, p, &e), CR_OK);
    assert_int_equal(cr_synth_write(&c, dir, NULL, NULL, &e), CR_OK);
}

static const char *features =
    "  - {name: user, type: categorical, column: user_id, dim: 4}\n"
    "  - {name: item, type: categorical, column: item_id, dim: 4}\n"
    "  - {name: genre, type: categorical, column: genre, dim: 2}\n"
    "  - {name: item_quality, type: numeric, transform: zscore}\n";

void cr_test_study_configs(const char *dir) {
    char buf[8192];
    const char *data = "data:\n  path: %s\n  split: {by: column, column: split}\n"
                       "  group: request_id\n  user: user_id\n  slices: [new_release]\n";
    const char *train = "train: {batch_size: 64, epochs: 1, seed: 1, threads: 1}\n";
    char t[1024];
    snprintf(t, sizeof t, data, "source.csv");
    snprintf(buf, sizeof buf,
             "%sfeatures:\n%s  - {name: user_sig1, type: numeric, default: 0}\n"
             "tasks:\n  - {name: click, type: binary, label: click}\n"
             "  - {name: watch_time, type: regression, label: watch_time, mask: click}\n"
             "model: {type: mmoe, experts: 2, expert_layers: [8], tower_layers: [4]}\n%s",
             t, features, train);
    cr_test_put_file(dir, "teacher.yaml", buf);
    snprintf(t, sizeof t, data, "target.csv");
    snprintf(buf, sizeof buf,
             "%sfeatures:\n%s"
             "tasks:\n  - {name: click, type: binary, label: click}\n"
             "  - {name: engagement, type: regression, label: engagement, mask: click}\n"
             "  - {name: discovery, type: binary, label: discovery, mask: click}\n"
             "model: {type: shared_bottom, bottom_layers: [8], tower_layers: [4]}\n"
             "eval: {popularity_feature: item_quality}\n%s",
             t, features, train);
    cr_test_put_file(dir, "home.yaml", buf);
    snprintf(buf, sizeof buf,
             "%sfeatures:\n%s"
             "tasks:\n  - {name: complete, type: binary, label: complete, mask: click}\n"
             "model: {type: shared_bottom, bottom_layers: [8], tower_layers: [4]}\n%s",
             t, features, train);
    cr_test_put_file(dir, "radio.yaml", buf);
    cr_test_put_file(dir, "map.yaml",
             "features:\n"
             "  - {feature: user, column: user_id}\n"
             "  - {feature: item, column: item_id}\n"
             "  - {feature: genre, column: genre}\n"
             "  - {feature: item_quality, column: item_quality}\n"
             "  - {feature: user_sig1, default: true}\n"
             "teacher_tasks:\n"
             "  - {name: teacher_click, head: click}\n"
             "  - {name: teacher_click_logit, head: click, form: logit}\n"
             "  - {name: teacher_watch_time, head: watch_time}\n");
}
