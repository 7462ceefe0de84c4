/*
 * test_experiment.c - a whole distillation study on a tiny synthetic case
 * (a few hundred rows, 2 seeds, 1 epoch): the teacher is trained, the
 * target labelled, every student variant trained per seed and fraction;
 * results.json holds every variant and task with intervals, paired tests
 * and bootstrap intervals, the teacher's zero-shot row, and report.html an
 * <svg> chart. A second run reuses every finished run and gives the same
 * numbers. The convergence rule and the control's search on validation
 * (tune), and the study file's errors.
 */
#include "util/study_case.h"
#include "util/testutil.h"

#include "../src/rank/experiment.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void write_case(const char *dir) {
    cr_test_study_data(dir, 1);
    cr_test_study_configs(dir);
    cr_test_put_file(dir, "study.yaml",
             "teacher: {config: teacher.yaml}\n"
             "map: map.yaml\n"
             "target: target.csv\n"
             "students:\n"
             "  - name: home\n"
             "    config: home.yaml\n"
             "    distill:\n"
             "      - {task: click, column: teacher_click, logit_column: teacher_click_logit}\n"
             "      - {task: engagement, column: teacher_watch_time}\n"
             "    techniques: [aux_head, none, soft_label, aux_head_tempered]\n"
             "  - name: radio\n"
             "    config: radio.yaml\n"
             "    new_heads:\n"
             "      - {name: wt_distill, column: teacher_watch_time, kind: regression, tower: complete}\n"
             "seeds: [1, 2]\n"
             "fractions: [1.0, 0.5]\n"
             "slice: new_release\nmin_positives: 5\n"
             "bootstrap: {resamples: 50, seed: 3}\n");
}

static const cJSON *at(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, "."))
        o = cJSON_GetObjectItemCaseSensitive(o, tok);
    return o;
}

static double num_at(const cJSON *o, const char *path) {
    const cJSON *x = at(o, path);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void check_results(const cJSON *r) {
    assert_string_equal(cJSON_GetStringValue(at(r, "format")), "crossrec.experiment");
    assert_int_equal(cJSON_GetArraySize(at(r, "seeds")), 2);
    /* every stage's seconds, the comparison included, within the total */
    static const char *const stages[4] = {"stage_seconds.teacher", "stage_seconds.labelling",
                                          "stage_seconds.runs", "stage_seconds.comparison"};
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        double v = num_at(r, stages[i]);
        assert_true(v >= 0);
        sum += v;
    }
    assert_true(num_at(r, "stage_seconds.comparison") > 0);
    assert_true(sum <= num_at(r, "seconds") + 1e-6);
    assert_true(num_at(r, "teacher.coverage.defaulted_share") > 0); /* user_sig1 defaulted */
    const cJSON *studs = at(r, "students");
    assert_int_equal(cJSON_GetArraySize(studs), 2);
    const char *sname[2] = {"home", "radio"};
    const char *tech[2][4] = {{"none", "aux_head", "soft_label", "aux_head_tempered"},
                              {"none", "new_head", NULL, NULL}};
    int ntech[2] = {4, 2}, ntask[2] = {3, 1};
    const char *tasks[2][3] = {{"click", "engagement", "discovery"}, {"complete", NULL, NULL}};
    for (int si = 0; si < 2; si++) {
        const cJSON *s = cJSON_GetArrayItem(studs, si);
        assert_string_equal(cJSON_GetStringValue(at(s, "name")), sname[si]);
        assert_int_equal(cJSON_GetArraySize(at(s, "tasks")), ntask[si]);
        /* the teacher's zero-shot row: only for the distilled tasks */
        if (si == 0) {
            assert_true(isfinite(num_at(s, "teacher_zero_shot.click.metrics.auc")));
            assert_true(isfinite(num_at(s, "teacher_zero_shot.engagement.metrics.r2")));
            assert_null(at(s, "teacher_zero_shot.discovery"));
        } else {
            assert_null(at(s, "teacher_zero_shot.complete"));
        }
        const cJSON *fr = at(s, "fractions");
        assert_int_equal(cJSON_GetArraySize(fr), 2);
        for (int f = 0; f < 2; f++) {
            const cJSON *fo = cJSON_GetArrayItem(fr, f);
            const cJSON *vs = at(fo, "variants");
            assert_int_equal(cJSON_GetArraySize(vs), ntech[si]);
            for (int v = 0; v < ntech[si]; v++) {
                const cJSON *vo = cJSON_GetArrayItem(vs, v);
                /* the control comes first whatever order the study lists */
                assert_string_equal(cJSON_GetStringValue(at(vo, "technique")), tech[si][v]);
                assert_int_equal(cJSON_GetArraySize(at(vo, "runs")), 2);
                for (int k = 0; k < ntask[si]; k++) {
                    char p[128];
                    const char *pm = !strcmp(tasks[si][k], "engagement") ? "r2" : "auc";
                    snprintf(p, sizeof p, "tasks.%s.metrics.%s.values", tasks[si][k], pm);
                    assert_int_equal(cJSON_GetArraySize(at(vo, p)), 2);
                    snprintf(p, sizeof p, "tasks.%s.metrics.%s.mean", tasks[si][k], pm);
                    assert_true(isfinite(num_at(vo, p)));
                    snprintf(p, sizeof p, "tasks.%s.vs_control", tasks[si][k]);
                    if (v == 0) {
                        assert_null(at(vo, p));
                        /* the control against a model-free predictor: popularity
                         * (binary, where the config names a popularity feature:
                         * home only) or the constant predictor (regression) */
                        snprintf(p, sizeof p, "tasks.%s.control_check", tasks[si][k]);
                        const cJSON *cc = at(vo, p);
                        int reg = !strcmp(pm, "r2");
                        if (!reg && si != 0) {
                            assert_null(cc);
                            continue;
                        }
                        assert_non_null(cc);
                        assert_string_equal(cJSON_GetStringValue(at(cc, "baseline")),
                                            reg ? "constant" : "popularity");
                        double base = num_at(cc, "baseline_value"), ctl = num_at(cc, "control");
                        assert_true(reg ? base == 0 : base > 0 && base < 1);
                        snprintf(p, sizeof p, "tasks.%s.metrics.%s.mean", tasks[si][k], pm);
                        assert_true(fabs(ctl - num_at(vo, p)) < 1e-9);
                        assert_int_equal(cJSON_IsTrue(at(cc, "passes")), ctl > base);
                        continue;
                    }
                    snprintf(p, sizeof p, "tasks.%s.vs_control.p", tasks[si][k]);
                    double pv = num_at(vo, p);
                    assert_true(pv >= 0 && pv <= 1);
                    snprintf(p, sizeof p, "tasks.%s.vs_control.bootstrap.lo", tasks[si][k]);
                    double lo = num_at(vo, p);
                    snprintf(p, sizeof p, "tasks.%s.vs_control.bootstrap.hi", tasks[si][k]);
                    double hi = num_at(vo, p);
                    assert_true(isfinite(lo) && isfinite(hi) && lo <= hi);
                    snprintf(p, sizeof p, "tasks.%s.vs_control.bootstrap.resamples", tasks[si][k]);
                    assert_int_equal((int)num_at(vo, p), 50);
                    /* two seeds: a p-value, but no verdict */
                    snprintf(p, sizeof p, "tasks.%s.vs_control.verdict", tasks[si][k]);
                    assert_string_equal(cJSON_GetStringValue(at(vo, p)), "not enough seeds");
                    /* the slice has no positive here: no AUC of 1, no test */
                    snprintf(p, sizeof p, "tasks.%s.slice.too_few", tasks[si][k]);
                    assert_true(cJSON_IsTrue(at(vo, p)));
                    snprintf(p, sizeof p, "tasks.%s.slice.%s", tasks[si][k], pm);
                    assert_null(at(vo, p));
                    snprintf(p, sizeof p, "tasks.%s.vs_control.slice.too_few", tasks[si][k]);
                    assert_true(cJSON_IsTrue(at(vo, p)));
                    snprintf(p, sizeof p, "tasks.%s.vs_control.slice.p", tasks[si][k]);
                    assert_null(at(vo, p));
                }
            }
        }
    }
}

/* A context's log sink writing into a stream. */
static void log_line(void *user, cr_log_level lv, const char *line) {
    (void)lv;
    fprintf(user, "%s\n", line);
}

static void test_study(void **st) {
    char dir[256], cfg[320], out[320], p[400];
    cr_test_tmpdir(dir, sizeof dir);
    write_case(dir);
    snprintf(cfg, sizeof cfg, "%s/study.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char *log = NULL;
    size_t loglen = 0;
    FILE *lf = open_memstream(&log, &loglen);
    cr_experiment_opts o = {.config = cfg, .out_dir = out, .progress = lf, .reuse = 1, .threads = 1};
    char *res = NULL;
    cr_error e = {0};
    cr_status s = cr_experiment_run(&o, &res, &e);
    fclose(lf);
    if (s) fprintf(stderr, "%s\n%s\n", e.msg, log);
    assert_int_equal(s, CR_OK);
    assert_non_null(strstr(log, "[24/24]"));
    free(log);
    cJSON *r = cJSON_Parse(res);
    assert_non_null(r);
    check_results(r);
    /* the fraction 0.5 file keeps about half the training rows, all of the test rows */
    const cJSON *fr = at(cJSON_GetArrayItem(at(r, "students"), 0), "fractions");
    double t1 = num_at(cJSON_GetArrayItem(fr, 0), "train_rows");
    double t5 = num_at(cJSON_GetArrayItem(fr, 1), "train_rows");
    assert_true(t1 == 320 && t5 > 0.25 * t1 && t5 < 0.75 * t1);
    snprintf(p, sizeof p, "%s/report.html", out);
    size_t n;
    char *html = NULL;
    assert_int_equal(cr_read_file(p, &html, &n, &e), CR_OK);
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "teacher (zero-shot)"));
    assert_non_null(strstr(html, "not enough seeds"));
    assert_non_null(strstr(html, "too few"));
    assert_null(strstr(html, ">significant<"));
    assert_null(strstr(html, "<script"));
    cr_free(html);
    /* the text table has a row per variant, the verdicts and the empty slice */
    char *tab = NULL;
    assert_int_equal(cr_experiment_table(res, &tab, &e), CR_OK);
    assert_non_null(strstr(tab, "aux_head_tempered"));
    assert_non_null(strstr(tab, "none (control)"));
    assert_non_null(strstr(tab, "not enough seeds"));
    assert_non_null(strstr(tab, "new_release AUC"));
    assert_non_null(strstr(tab, "too few"));
    cr_free(tab);
    assert_int_equal(cr_experiment_table("{", &tab, &e), CR_ERR_PARSE);
    assert_null(tab);

    /* again, through the public entry point: every run is reused, and the
     * numbers are the same */
    log = NULL;
    lf = open_memstream(&log, &loglen);
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.threads = 1;
    cp.log = log_line;
    cp.log_user = lf;
    cr_ctx *ctx = NULL;
    assert_int_equal(cr_ctx_new(&ctx, &cp, &e), CR_OK);
    char *res2 = NULL;
    s = cr_experiment(ctx, cfg, out, 0, &res2, &e);
    cr_ctx_free(ctx);
    fclose(lf);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
    assert_non_null(strstr(log, "teacher: reusing"));
    assert_non_null(strstr(log, "labels: reusing"));
    assert_null(strstr(log, " steps, "));
    free(log);
    cJSON *r2 = cJSON_Parse(res2);
    const char *path = "students";
    const cJSON *a = at(r, path), *b = at(r2, path);
    char *ja = cJSON_PrintUnformatted(a), *jb = cJSON_PrintUnformatted(b);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    cJSON_Delete(r);
    cJSON_Delete(r2);
    free(res);
    free(res2);

    /* A study without slice: has none (it does not fall back to a column
     * such as new_release), and at the default min_positives (30) this
     * tiny target's tasks are all "too few". */
    cr_test_put_file(dir, "study1.yaml",
             "teacher: {config: teacher.yaml}\nmap: map.yaml\ntarget: target.csv\n"
             "students:\n  - name: radio\n    config: radio.yaml\n    new_heads:\n"
             "      - {name: wt_distill, column: teacher_watch_time, kind: regression, tower: complete}\n"
             "seeds: [1]\nbootstrap: {resamples: 20}\n");
    snprintf(cfg, sizeof cfg, "%s/study1.yaml", dir);
    o.progress = NULL;
    assert_int_equal(cr_experiment_run(&o, &res, &e), CR_OK);
    r = cJSON_Parse(res);
    assert_true(cJSON_IsNull(at(r, "slice")));
    assert_int_equal((int)num_at(r, "min_positives"), 30);
    const cJSON *v1 = at(cJSON_GetArrayItem(at(cJSON_GetArrayItem(at(r, "students"), 0), "fractions"), 0),
                         "variants");
    v1 = cJSON_GetArrayItem(v1, 1);
    assert_true(cJSON_IsTrue(at(v1, "tasks.complete.metrics.too_few")));
    assert_true(num_at(v1, "tasks.complete.metrics.positives") < 30);
    assert_null(at(v1, "tasks.complete.metrics.auc"));
    assert_null(at(v1, "tasks.complete.slice"));
    assert_true(cJSON_IsTrue(at(v1, "tasks.complete.vs_control.too_few")));
    assert_null(at(v1, "tasks.complete.vs_control.p"));
    assert_int_equal(cr_experiment_table(res, &tab, &e), CR_OK);
    assert_non_null(strstr(tab, "too few"));
    assert_null(strstr(tab, "new_release"));
    assert_null(strstr(tab, "sl.diff"));
    cr_free(tab);
    snprintf(p, sizeof p, "%s/report.html", out);
    assert_int_equal(cr_read_file(p, &html, &n, &e), CR_OK);
    assert_non_null(strstr(html, "too few"));
    assert_null(strstr(html, "new_release"));
    cr_free(html);
    cJSON_Delete(r);
    free(res);
    /* a slice the student's data does not have is an error, not silence */
    cr_test_put_file(dir, "study2.yaml",
             "teacher: {config: teacher.yaml}\nmap: map.yaml\ntarget: target.csv\n"
             "students: [{name: radio, config: radio.yaml}]\nslice: no_such\n");
    snprintf(cfg, sizeof cfg, "%s/study2.yaml", dir);
    assert_int_equal(cr_experiment_run(&o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "slice 'no_such' is not among data.slices"));
    cr_test_rmdir(dir);
}

/* The score the tune stage ranks a setting by: the mean over its tasks of
 * the "valid" values it recorded. */
static double setting_score(const cJSON *so) {
    const cJSON *v;
    double sum = 0;
    int n = 0;
    cJSON_ArrayForEach(v, at(so, "valid")) sum += v->valuedouble, n++;
    return n ? sum / n : NAN;
}

static cJSON *run_study(const char *cfg, const char *out, char **log) {
    size_t loglen = 0;
    FILE *lf = open_memstream(log, &loglen);
    cr_experiment_opts o = {.config = cfg, .out_dir = out, .progress = lf, .reuse = 1, .threads = 1};
    char *res = NULL;
    cr_error e = {0};
    cr_status s = cr_experiment_run(&o, &res, &e);
    fclose(lf);
    if (s) fprintf(stderr, "%s\n%s\n", e.msg, *log);
    assert_int_equal(s, CR_OK);
    cJSON *r = cJSON_Parse(res);
    assert_non_null(r);
    free(res);
    return r;
}

/* The variant run's config as run (config.yaml) holds `want`. */
static void run_config_has(const char *out, const char *run, const char *want) {
    char p[600], *txt = NULL;
    size_t n;
    cr_error e = {0};
    snprintf(p, sizeof p, "%s/runs/%s/config.yaml", out, run);
    assert_int_equal(cr_read_file(p, &txt, &n, &e), CR_OK);
    if (!strstr(txt, want)) fprintf(stderr, "%s lacks '%s':\n%s", p, want, txt);
    assert_non_null(strstr(txt, want));
    cr_free(txt);
}

/* convergence, tune and control_check: the control is searched over lr x
 * width on validation only, the whole search and its pick are recorded,
 * every run of the student trains with the pick under the study's
 * stopping rule, and a regression task's check names its no-model fit. */
static void test_study_tune(void **st) {
    char dir[256], cfg[320], out[320], p[600];
    cr_test_tmpdir(dir, sizeof dir);
    write_case(dir);
    cr_test_put_file(dir, "tune.yaml",
             "teacher: {config: teacher.yaml}\nmap: map.yaml\ntarget: target.csv\n"
             "students:\n  - name: home\n    config: home.yaml\n"
             "    distill: [{task: click, column: teacher_click}]\n"
             "    techniques: [none, aux_head]\n"
             "seeds: [1, 2]\nfractions: [1.0, 0.5]\nmin_positives: 5\n"
             "bootstrap: {resamples: 20}\n"
             "convergence: {mode: metric, patience: 1, max_epochs: 4}\n"
             "tune: {lr: [0.0001, 0.03], width: [1, 3], seeds: [1, 2]}\n"
             "control_check: {engagement: item_quality}\n");
    snprintf(cfg, sizeof cfg, "%s/tune.yaml", dir);
    snprintf(out, sizeof out, "%s/out_tune", dir);
    char *log = NULL;
    cJSON *r = run_study(cfg, out, &log);
    assert_non_null(strstr(log, "tune home: picked"));
    free(log);
    assert_string_equal(cJSON_GetStringValue(at(r, "convergence.mode")), "metric");
    assert_true(num_at(r, "convergence.patience") == 1 && num_at(r, "convergence.max_epochs") == 4);
    assert_true(num_at(r, "stage_seconds.tune") > 0);
    const cJSON *stu = cJSON_GetArrayItem(at(r, "students"), 0), *tj = at(stu, "tune");
    assert_non_null(tj);
    assert_true(num_at(tj, "fraction") == 1);
    const cJSON *sets = at(tj, "settings"), *so;
    assert_int_equal(cJSON_GetArraySize(sets), 4);
    /* the pick is the best recorded validation score; each setting's record
     * is its runs' validation metrics, and no tune run scored a test row */
    double best = -INFINITY, blr = NAN, bw = NAN;
    cJSON_ArrayForEach(so, sets) {
        double sc = setting_score(so);
        assert_true(fabs(sc - num_at(so, "score")) < 1e-9);
        assert_int_equal(cJSON_GetArraySize(at(so, "valid")), 3); /* click, engagement, discovery */
        if (sc > best) best = sc, blr = num_at(so, "lr"), bw = num_at(so, "width");
        const cJSON *d;
        double click = 0;
        cJSON_ArrayForEach(d, at(so, "runs")) {
            snprintf(p, sizeof p, "%s/%s/metrics.json", out, d->valuestring);
            char *txt = NULL;
            size_t n;
            cr_error e = {0};
            assert_int_equal(cr_read_file(p, &txt, &n, &e), CR_OK);
            cJSON *m = cJSON_Parse(txt);
            cr_free(txt);
            assert_null(at(m, "test"));
            assert_non_null(at(m, "valid"));
            assert_string_equal(cJSON_GetStringValue(at(m, "train.early_stopping")), "metric");
            click += num_at(m, "valid.tasks.click.model.auc") / 2;
            cJSON_Delete(m);
        }
        assert_int_equal(cJSON_GetArraySize(at(so, "runs")), 2);
        assert_true(fabs(click - num_at(so, "valid.click")) < 1e-9);
    }
    assert_true(num_at(tj, "pick.lr") == blr && num_at(tj, "pick.width") == bw);
    /* every variant trains with the pick, under the study's rule */
    char want[64];
    snprintf(want, sizeof want, "lr: %g", blr);
    run_config_has(out, "home/aux_head/f0.5/seed2", want);
    run_config_has(out, "home/none/f1/seed1", "mode: metric, patience: 1");
    snprintf(want, sizeof want, "bottom_layers: [%d]", (int)lround(8 * bw));
    run_config_has(out, "home/aux_head/f1/seed1", want);
    /* engagement's check names its no-model fit */
    const cJSON *cc = at(cJSON_GetArrayItem(at(cJSON_GetArrayItem(at(stu, "fractions"), 0),
                                               "variants"), 0), "tasks.engagement.control_check");
    assert_string_equal(cJSON_GetStringValue(at(cc, "no_model.feature")), "item_quality");
    assert_true(isfinite(num_at(cc, "no_model.value")));
    assert_true(cJSON_IsTrue(at(cc, "passes")) ==
                (num_at(cc, "control") > 0 && num_at(cc, "control") > num_at(cc, "no_model.value")));
    char *res = cJSON_Print(r), *tab = NULL;
    cr_error e = {0};
    assert_int_equal(cr_experiment_table(res, &tab, &e), CR_OK);
    assert_non_null(strstr(tab, "<- picked"));
    assert_non_null(strstr(tab, "no-model linear fit on item_quality"));
    assert_non_null(strstr(tab, "early_stopping metric, patience 1"));
    cr_free(tab);
    free(res);
    snprintf(p, sizeof p, "%s/report.html", out);
    size_t n;
    char *html = NULL;
    assert_int_equal(cr_read_file(p, &html, &n, &e), CR_OK);
    assert_non_null(strstr(html, "chosen on validation"));
    cr_free(html);

    /* a control_check task no student has is an error before any run */
    cr_test_put_file(dir, "tune_bad.yaml",
             "teacher: {config: teacher.yaml}\nmap: map.yaml\ntarget: target.csv\n"
             "students: [{name: home, config: home.yaml}]\n"
             "control_check: {engagment: item_quality}\n");
    snprintf(p, sizeof p, "%s/tune_bad.yaml", dir);
    cr_experiment_opts ob = {.config = p, .out_dir = out, .reuse = 1, .threads = 1};
    assert_int_equal(cr_experiment_run(&ob, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "no student has a task 'engagment'"));

    /* Picked by validation: make the worst setting's runs the best on
     * validation (their recorded valid metrics all 0.99), and the rerun picks it,
     * reusing every tune run. Their test sections stay absent. */
    const cJSON *worst = NULL;
    double lo = INFINITY;
    cJSON_ArrayForEach(so, sets)
        if (num_at(so, "score") < lo) lo = num_at(so, "score"), worst = so;
    double wlr = num_at(worst, "lr"), ww = num_at(worst, "width");
    const cJSON *d;
    cJSON_ArrayForEach(d, at(worst, "runs")) {
        snprintf(p, sizeof p, "%s/%s/metrics.json", out, d->valuestring);
        char *txt = NULL;
        assert_int_equal(cr_read_file(p, &txt, &n, &e), CR_OK);
        cJSON *m = cJSON_Parse(txt);
        cr_free(txt);
        cJSON_SetNumberValue(cJSON_GetObjectItem(at(m, "valid.tasks.click.model"), "auc"), 0.99);
        cJSON_SetNumberValue(cJSON_GetObjectItem(at(m, "valid.tasks.discovery.model"), "auc"), 0.99);
        cJSON_SetNumberValue(cJSON_GetObjectItem(at(m, "valid.tasks.engagement.model"), "r2"), 0.99);
        txt = cJSON_Print(m);
        assert_int_equal(cr_write_file_atomic(p, txt, strlen(txt), &e), CR_OK);
        free(txt);
        cJSON_Delete(m);
    }
    cJSON_Delete(r);
    log = NULL;
    r = run_study(cfg, out, &log);
    assert_null(strstr(log, "tune home: trained"));
    free(log);
    tj = at(cJSON_GetArrayItem(at(r, "students"), 0), "tune");
    assert_true(num_at(tj, "pick.lr") == wlr && num_at(tj, "pick.width") == ww);
    snprintf(want, sizeof want, "lr: %g", wlr);
    run_config_has(out, "home/aux_head/f1/seed1", want);
    cJSON_Delete(r);
    cr_test_rmdir(dir);
}

static void test_study_errors(void **st) {
    char dir[256], cfg[320], out[320];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/study.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    cr_experiment_opts o = {.config = cfg, .out_dir = out, .reuse = 1, .threads = 1};
    cr_error e = {0};
    cr_test_put_file(dir, "study.yaml",
             "teacher: {config: t.yaml, model: m.safetensors}\nmap: m.yaml\ntarget: t.csv\n"
             "students: [{name: a, config: a.yaml}]\n");
    assert_int_equal(cr_experiment_run(&o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "exactly one of"));
    cr_test_put_file(dir, "study.yaml",
             "teacher: {model: m.safetensors}\nmap: m.yaml\ntarget: t.csv\n"
             "students: [{name: a, config: a.yaml, techniques: [aux_head],\n"
             "            distill: [{task: click, column: c}]}]\n");
    assert_int_equal(cr_experiment_run(&o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "include none"));
    cr_test_put_file(dir, "study.yaml",
             "teacher: {model: m.safetensors}\nmap: m.yaml\ntarget: t.csv\n"
             "students: [{name: a, config: a.yaml, techniques: [none, new_head]}]\n");
    assert_int_equal(cr_experiment_run(&o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "new_heads"));
    cr_test_put_file(dir, "study.yaml",
             "teacher: {model: m.safetensors}\nmap: m.yaml\ntarget: t.csv\n"
             "students: [{name: a, config: a.yaml}]\nseeds: [1]\nfractionz: [1]\n");
    assert_int_equal(cr_experiment_run(&o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "study.yaml:6"));
    cr_test_put_file(dir, "study.yaml",
             "teacher: {model: m.safetensors}\nmap: m.yaml\ntarget: t.csv\n"
             "students: [{name: a, config: a.yaml}]\nepochs: 3\n"
             "convergence: {mode: metric, max_epochs: 9}\n");
    assert_int_equal(cr_experiment_run(&o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "not both"));
    cr_test_put_file(dir, "study.yaml",
             "teacher: {model: m.safetensors}\nmap: m.yaml\ntarget: t.csv\n"
             "students: [{name: a, config: a.yaml}]\ntune: {lr: [0.01], depth: [2]}\n");
    assert_int_equal(cr_experiment_run(&o, NULL, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "unknown key 'depth'"));
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_study),
        cmocka_unit_test(test_study_tune),
        cmocka_unit_test(test_study_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
