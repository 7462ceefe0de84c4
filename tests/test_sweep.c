/*
 * test_sweep.c - the map of when distillation pays on a tiny synthetic
 * case: a study file with a sweep section runs the study once per distinct
 * cell of two maps (the base cell shared), trains one teacher per distinct
 * source file, defaults the listed map features as the defaulted knob asks
 * (the cell's coverage report says so), and writes results.json (format
 * crossrec.sweep) and a report with one heatmap per map and technique. A
 * second run reuses everything and gives the same numbers. Also the sweep
 * section's errors.
 */
#include "util/study_case.h"
#include "util/testutil.h"

#include "../src/rank/experiment.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_case(const char *dir, const char *sweep) {
    cr_test_study_data(dir, 0); /* each cell writes its own */
    cr_test_study_configs(dir);
    char buf[4096];
    snprintf(buf, sizeof buf,
             "teacher: {config: teacher.yaml}\n"
             "map: map.yaml\n"
             "target: target.csv\n"
             "students:\n"
             "  - name: home\n"
             "    config: home.yaml\n"
             "    distill:\n"
             "      - {task: click, column: teacher_click, logit_column: teacher_click_logit}\n"
             "    techniques: [none, aux_head, aux_head_tempered]\n"
             "seeds: [1, 2]\n"
             "min_positives: 3\n"
             "bootstrap: {resamples: 30, seed: 3}\n"
             "%s",
             sweep);
    cr_test_put_file(dir, "study.yaml", buf);
}

static const char *good_sweep =
    "sweep:\n"
    "  synth: synth.yaml\n"
    "  defaultable: [genre, item_quality]\n"
    "  base: {target_requests: 80}\n"
    "  maps:\n"
    "    - {x: target_requests, x_values: [80, 40], y: specific, y_values: [0.5]}\n"
    "    - {x: defaulted, x_values: [0, 1], y: source_requests, y_values: [300]}\n";

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static double cell_defaulted_share(const char *out, const char *cell) {
    char p[600], *txt = NULL;
    size_t n;
    cr_error e = {0};
    snprintf(p, sizeof p, "%s/cells/%s/study/results.json", out, cell);
    assert_int_equal(cr_read_file(p, &txt, &n, &e), CR_OK);
    cJSON *r = cJSON_Parse(txt);
    cr_free(txt);
    assert_non_null(r);
    const cJSON *d = get(get(get(r, "teacher"), "coverage"), "defaulted_share");
    assert_true(cJSON_IsNumber(d));
    double v = d->valuedouble;
    cJSON_Delete(r);
    return v;
}

static int count_dirs(const char *path) {
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void test_sweep(void **st) {
    (void)st;
    char dir[256], cfg[320], out[320], p[400];
    cr_test_tmpdir(dir, sizeof dir);
    write_case(dir, good_sweep);
    snprintf(cfg, sizeof cfg, "%s/study.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    cr_experiment_opts o = {.config = cfg, .out_dir = out, .reuse = 1, .threads = 1};
    char *res = NULL;
    cr_error e = {0};
    cr_status s = cr_experiment_run(&o, &res, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
    cJSON *r = cJSON_Parse(res);
    assert_non_null(r);
    assert_string_equal(get(r, "format")->valuestring, "crossrec.sweep");
    assert_string_equal(get(r, "student")->valuestring, "home");
    assert_string_equal(get(r, "task")->valuestring, "click");
    /* 2 + 2 cells, the base (80 target, 300 source, 0.5, nothing defaulted) in both */
    assert_int_equal((int)get(r, "cells")->valuedouble, 3);
    const cJSON *maps = get(r, "maps");
    assert_int_equal(cJSON_GetArraySize(maps), 2);
    const cJSON *m;
    cJSON_ArrayForEach(m, maps) {
        const cJSON *c;
        assert_int_equal(cJSON_GetArraySize(get(m, "cells")), 2);
        cJSON_ArrayForEach(c, get(m, "cells")) {
            assert_non_null(get(c, "control"));
            assert_non_null(get(c, "teacher"));
            const cJSON *t = get(get(c, "techniques"), "aux_head");
            assert_true(cJSON_IsObject(t));
            assert_true(cJSON_IsNumber(get(t, "mean_diff")) || cJSON_IsTrue(get(t, "too_few")));
            assert_true(cJSON_IsObject(get(get(c, "techniques"), "aux_head_tempered")));
        }
    }
    assert_string_equal(get(cJSON_GetArrayItem(get(cJSON_GetArrayItem(maps, 0), "cells"), 0), "dir")
                            ->valuestring,
                        get(cJSON_GetArrayItem(get(cJSON_GetArrayItem(maps, 1), "cells"), 0), "dir")
                            ->valuestring);
    /* one source file for every cell: one teacher */
    snprintf(p, sizeof p, "%s/teachers", out);
    assert_int_equal(count_dirs(p), 1);
    /* the defaulted knob at 1 defaults both listed features on top of user_sig1 */
    double d0 = cell_defaulted_share(out, "t80_s300_sp0.5_d0");
    double d1 = cell_defaulted_share(out, "t80_s300_sp0.5_d1");
    assert_true(d1 > d0 + 0.3);
    snprintf(p, sizeof p, "%s/report.html", out);
    char *html = NULL;
    size_t n;
    assert_int_equal(cr_read_file(p, &html, &n, &e), CR_OK);
    assert_non_null(strstr(html, "When distillation pays"));
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "aux_head_tempered against the control"));
    cr_free(html);
    char *table = NULL;
    size_t tn = 0;
    FILE *tf = open_memstream(&table, &tn);
    assert_int_equal(cr_experiment_print_table(tf, res, &e), CR_OK);
    fclose(tf);
    assert_non_null(strstr(table, "rows: specific, columns: target_requests"));
    free(table);
    /* again: every cell, teacher and run reused, the same numbers */
    char *res2 = NULL;
    assert_int_equal(cr_experiment_run(&o, &res2, &e), CR_OK);
    cJSON *r2 = cJSON_Parse(res2);
    const cJSON *a = get(get(cJSON_GetArrayItem(get(cJSON_GetArrayItem(maps, 1), "cells"), 1),
                             "techniques"), "aux_head");
    const cJSON *b = get(get(cJSON_GetArrayItem(get(cJSON_GetArrayItem(get(r2, "maps"), 1), "cells"), 1),
                             "techniques"), "aux_head");
    assert_true(cJSON_Compare(a, b, 1));
    cJSON_Delete(r2);
    free(res2);
    cJSON_Delete(r);
    free(res);
    cr_test_rmdir(dir);
}

static void expect_error(const char *dir, const char *sweep, cr_status want, const char *msg) {
    write_case(dir, sweep);
    char cfg[320], out[320];
    snprintf(cfg, sizeof cfg, "%s/study.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    cr_experiment_opts o = {.config = cfg, .out_dir = out, .reuse = 1, .threads = 1};
    cr_error e = {0};
    assert_int_equal(cr_experiment_run(&o, NULL, &e), want);
    if (!strstr(e.msg, msg)) fprintf(stderr, "got: %s\n", e.msg);
    assert_non_null(strstr(e.msg, msg));
}

static void test_sweep_errors(void **st) {
    (void)st;
    char dir[256];
    cr_test_tmpdir(dir, sizeof dir);
    expect_error(dir, "sweep: {synth: synth.yaml, maps: [{x: specific, x_values: [1], y: specific, "
                      "y_values: [2]}]}\n", CR_ERR_CONFIG, "two different knobs");
    expect_error(dir, "sweep: {synth: synth.yaml, maps: [{x: traffic, x_values: [1], y: specific, "
                      "y_values: [2]}]}\n", CR_ERR_CONFIG, "target_requests");
    expect_error(dir, "sweep: {synth: synth.yaml, maps: [{x: defaulted, x_values: [1], y: specific, "
                      "y_values: [2]}]}\n", CR_ERR_CONFIG, "sweep.defaultable");
    expect_error(dir, "sweep: {synth: synth.yaml, maps: [{x: defaulted, x_values: [2], y: specific, "
                      "y_values: [2]}], defaultable: [genre]}\n", CR_ERR_CONFIG, "x_values");
    expect_error(dir, "sweep: {synth: synth.yaml, base: {traffic: 2}, maps: [{x: specific, "
                      "x_values: [1], y: source_requests, y_values: [300]}]}\n", CR_ERR_CONFIG,
                 "sweep.base");
    expect_error(dir, "sweep: {synth: synth.yaml, task: nope, maps: [{x: specific, x_values: [1], "
                      "y: source_requests, y_values: [300]}]}\n", CR_ERR_CONFIG, "'nope'");
    expect_error(dir, "sweep: {synth: synth.yaml, defaultable: [hour], maps: [{x: defaulted, "
                      "x_values: [1], y: specific, y_values: [0.5]}]}\n", CR_ERR_CONFIG,
                 "'hour'");
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_sweep_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
