/*
 * test_distill.c - zero-shot cross-domain distillation: the distillation
 * losses (aux head, soft label, tempered) and their gradients against the
 * PyTorch twin (tests/fixtures/distill_loss.safetensors, tools/twin_distill.py);
 * the distill: section turning into heads; labelling a target file with a
 * teacher through a map, with coverage counted on a hand-made case and the
 * soft-label columns read back equal to the teacher's own scores; the
 * messages of mismatched maps; and export dropping the never-served heads
 * with a file the size of a model trained without them and bit-identical
 * served scores.
 */
#include "util/testutil.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/rank/checkpoint.h"
#include "../src/rank/evaluate.h"
#include "../src/rank/fit.h"
#include "../src/rank/label.h"
#include "../src/rank/loss.h"

/* ---- the losses against the twin ------------------------------------------------ */

static void fx_load(const cr_st_file *f, const char *name, float *dst, size_t numel) {
    const cr_st_tensor *t = cr_st_find(f, name);
    if (!t || t->dtype != CR_DT_F32 || t->numel != numel) {
        fprintf(stderr, "%s: tensor '%s' missing or mis-shaped (regenerate with "
                "tools/twin_distill.py)\n", f->path, name);
        fail();
    }
    memcpy(dst, t->data, t->nbytes);
}

static void test_losses_match_twin(void **state) {
    (void)state;
    cr_st_file f;
    cr_error e = {0};
    assert_int_equal(cr_st_open(&f, "tests/fixtures/distill_loss.safetensors", &e), CR_OK);
    cJSON *cfg = cJSON_Parse(cr_st_meta(&f, "config"));
    assert_non_null(cfg);
    const int B = cJSON_GetObjectItem(cfg, "B")->valueint;
    cr_head heads[CR_MODEL_MAX_HEADS];
    int NH = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(cfg, "heads")) {
        cr_head *h = &heads[NH++];
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "%s", cJSON_GetObjectItem(it, "name")->valuestring);
        h->tower = cJSON_GetObjectItem(it, "tower")->valueint;
        h->kind = strcmp(cJSON_GetObjectItem(it, "kind")->valuestring, "binary") ? CR_HEAD_REGRESSION
                                                                                 : CR_HEAD_BINARY;
        h->served = cJSON_GetObjectItem(it, "served")->valueint;
        h->target_kind = strcmp(cJSON_GetObjectItem(it, "target_kind")->valuestring, "label")
                             ? CR_TARGET_EXTRA : CR_TARGET_LABEL;
        h->target = cJSON_GetObjectItem(it, "target")->valueint;
        h->mask_task = cJSON_GetObjectItem(it, "mask_task")->valueint;
        h->weight = (float)cJSON_GetObjectItem(it, "weight")->valuedouble;
        const cJSON *bl = cJSON_GetObjectItem(it, "blend_lambda");
        if (bl) {
            h->blend_lambda = (float)bl->valuedouble;
            h->blend_extra = cJSON_GetObjectItem(it, "blend_extra")->valueint;
        }
        const cJSON *tp = cJSON_GetObjectItem(it, "temperature");
        if (tp) h->temperature = (float)tp->valuedouble;
    }
    assert_int_equal(NH, 9);
    float out[9 * 8], label[3 * 8], mask[3 * 8], weight[8], extra[4 * 8];
    assert_int_equal(B, 8);
    fx_load(&f, "out", out, 9 * 8);
    fx_load(&f, "label", label, 3 * 8);
    fx_load(&f, "mask", mask, 3 * 8);
    fx_load(&f, "weight", weight, 8);
    fx_load(&f, "extra", extra, 4 * 8);
    cr_batch b;
    memset(&b, 0, sizeof b);
    b.B = b.max_B = B;
    b.n_tasks = 3;
    b.n_extra = 4;
    b.label = label;
    b.mask = mask;
    b.weight = weight;
    b.extra = extra;
    static const char *const cases[2] = {"fixed", "uncertainty"};
    for (int c = 0; c < 2; c++) {
        char name[64];
        float want_heads[9], want_total, want_dout[9 * 8], lv[3], want_dlv[3];
        snprintf(name, sizeof name, "%s.loss.heads", cases[c]);
        fx_load(&f, name, want_heads, 9);
        snprintf(name, sizeof name, "%s.loss.total", cases[c]);
        fx_load(&f, name, &want_total, 1);
        snprintf(name, sizeof name, "%s.dout", cases[c]);
        fx_load(&f, name, want_dout, 9 * 8);
        snprintf(name, sizeof name, "%s.log_var", cases[c]);
        fx_load(&f, name, lv, 3);
        snprintf(name, sizeof name, "%s.dlog_var", cases[c]);
        fx_load(&f, name, want_dlv, 3);
        double hl[9], total;
        float dout[9 * 8], dlv[3] = {0, 0, 0}, got_heads[9], got_total;
        assert_int_equal(cr_multitask_loss(heads, NH, c ? CR_LOSS_UNCERTAINTY : CR_LOSS_FIXED, lv,
                                           &b, out, dout, dlv, hl, &total, &e),
                         CR_OK);
        for (int h = 0; h < NH; h++) got_heads[h] = (float)hl[h];
        got_total = (float)total;
        assert_true(cr_test_close("head losses", got_heads, want_heads, 9, 1e-6, 1e-5));
        assert_true(cr_test_close("total loss", &got_total, &want_total, 1, 1e-6, 1e-5));
        assert_true(cr_test_close("d total / d out", dout, want_dout, 9 * 8, 1e-7, 1e-5));
        assert_true(cr_test_close("d total / d log_var", dlv, want_dlv, 3, 1e-7, 1e-5));
    }
    /* a tempered regression head is refused, not silently treated as BCE */
    heads[5].temperature = 2.0f;
    double total;
    assert_int_equal(cr_multitask_loss(heads, NH, CR_LOSS_FIXED, NULL, &b, out, NULL, NULL, NULL,
                                       &total, &e),
                     CR_ERR_CONFIG);
    cJSON_Delete(cfg);
    cr_st_close(&f);
}

/* ---- files -------------------------------------------------------------------------- */

typedef struct fixture {
    char dir[256];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    cr_test_tmpdir(f->dir, sizeof f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    cr_test_rmdir(f->dir);
    free(f);
    return 0;
}

static void put(const char *dir, const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static const char *const teacher_yaml =
    "data:\n"
    "  path: source.csv\n"
    "  split: {by: column, column: split}\n"
    "features:\n"
    "  - {name: user, type: categorical, column: user_id, dim: 4}\n"
    "  - {name: item, type: categorical, column: item_id, dim: 4, hash_buckets: 50}\n"
    "  - {name: genres, type: multi, column: genres, dim: 3}\n"
    "  - {name: device, type: categorical, dim: 2}\n"
    "  - {name: age, type: numeric, default: 30}\n"
    "  - {name: pop, type: bucketized, boundaries: [1, 3, 5], dim: 2}\n"
    "tasks:\n"
    "  - {name: click, type: binary}\n"
    "  - {name: like, type: binary, mask: click}\n"
    "  - {name: dwell, type: regression}\n"
    "model: {type: mmoe, experts: 2, expert_layers: [8], tower_layers: [4]}\n";

/* A teacher over a source domain: users u0..u9, genres a, b, c, devices
 * mobile, tv, desktop. Random weights are as good a frozen teacher as any
 * for checking the mechanics. */
static void make_teacher(const char *dir, char *tpath, size_t cap) {
    char p[512];
    snprintf(p, sizeof p, "%s/source.csv", dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    static const char *const g[] = {"a", "b", "c", "a|b", "", "b|c"};
    static const char *const dev[] = {"mobile", "tv", "desktop"};
    fprintf(fp, "user_id,item_id,genres,device,age,pop,click,like,dwell,split\n");
    for (int i = 0; i < 120; i++) {
        int click = i % 3 == 0;
        fprintf(fp, "u%d,i%d,%s,%s,%d,%d,%d,%s,%.1f,train\n", i % 10, i % 30, g[i % 6],
                dev[i % 3], 20 + i % 40, i % 7, click, click ? (i % 2 ? "1" : "0") : "",
                0.1 * (i % 10));
    }
    assert_int_equal(fclose(fp), 0);
    put(dir, "teacher.yaml", teacher_yaml, p, sizeof p);
    cr_rank_config c;
    cr_error e = {0};
    assert_int_equal(cr_rank_config_load(&c, p, &e), CR_OK);
    cr_dataset ds;
    assert_int_equal(cr_dataset_load(&ds, &c.schema, &c.data, 1, &e), CR_OK);
    cr_ranker *m;
    assert_int_equal(cr_ranker_create(&m, &c.schema, &c.model, 7, &e), CR_OK);
    snprintf(tpath, cap, "%s/teacher.safetensors", dir);
    assert_int_equal(cr_ranker_save(m, &c.schema, tpath, NULL, &e), CR_OK);
    cr_ranker_free(m);
    cr_dataset_free(&ds);
    cr_rank_config_free(&c);
}

static const char *const map_yaml =
    "features:\n"
    "  - {feature: user, column: uid}\n"
    "  - {feature: item, column: track}\n"
    "  - {feature: genres, column: tags}\n"
    "  - {feature: device, constant: mobile}\n"
    "  - {feature: age, default: true}\n"
    "  - {feature: pop, default: true}\n"
    "teacher_tasks:\n"
    "  - {name: teacher_click, head: click, form: probability}\n"
    "  - {name: teacher_like, head: like}\n"
    "  - {name: teacher_click_logit, head: click, form: logit}\n"
    "  - {name: teacher_dwell, head: dwell, form: value}\n";

/* ---- labelling: coverage and the round trip ----------------------------------------- */

static void test_label_coverage_and_round_trip(void **state) {
    fixture *fx = *state;
    char teacher[512], map[512], data[512], out[512], cov[512], scfg[512];
    make_teacher(fx->dir, teacher, sizeof teacher);
    put(fx->dir, "map.yaml", map_yaml, map, sizeof map);
    /* 10 rows: user x1, x2, x3 unseen by the teacher and one empty; genre
     * tokens d, zz, q unseen (of 14) and two empty bags; one empty track */
    static const char *const rows[10][3] = {
        {"u1", "t1", "a|b"}, {"u2", "t2", ""},    {"u3", "t3", "d"}, {"x1", "t4", "a|zz|c"},
        {"x2", "t5", "b"},   {"", "t6", "a"},     {"u1", "", "c|c"}, {"u5", "t8", "q"},
        {"x3", "t9", ""},    {"u9", "t10", "a|b|c"}};
    snprintf(data, sizeof data, "%s/target.csv", fx->dir);
    FILE *fp = fopen(data, "w");
    assert_non_null(fp);
    fprintf(fp, "uid,track,tags,click,like\n");
    for (int i = 0; i < 10; i++)
        fprintf(fp, "%s,%s,%s,%d,%s\n", rows[i][0], rows[i][1], rows[i][2], i % 2,
                i % 2 ? "1" : "");
    assert_int_equal(fclose(fp), 0);
    snprintf(out, sizeof out, "%s/labelled.csv", fx->dir);
    snprintf(cov, sizeof cov, "%s/coverage.json", fx->dir);
    cr_label_opts o = {.teacher = teacher, .map = map, .data = data, .out = out,
                       .coverage = cov};
    cr_label_report r;
    cr_error e = {0};
    if (cr_distill_label(&o, &r, &e)) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(e.status, CR_OK);
    assert_int_equal(r.rows, 10);
    assert_int_equal(r.n_features, 6);
    assert_int_equal(r.n_defaulted, 2);
    assert_int_equal(r.n_constant, 1);
    assert_int_equal(r.n_column, 3);
    assert_true(fabs(r.defaulted_share - 2.0 / 6.0) < 1e-12);
    const cr_label_feature *u = &r.features[0], *it = &r.features[1], *g = &r.features[2];
    const cr_label_feature *dv = &r.features[3], *age = &r.features[4];
    assert_string_equal(u->feature, "user");
    assert_int_equal(u->vocab, 1);
    assert_int_equal(u->empty, 1);
    assert_int_equal(u->values, 9);
    assert_int_equal(u->oov, 3);
    assert_int_equal(it->vocab, 0); /* hashed: every value has a row, OOV is not defined */
    assert_int_equal(it->empty, 1);
    assert_int_equal(it->values, 9);
    assert_int_equal(g->vocab, 1);
    assert_int_equal(g->empty, 2);
    assert_int_equal(g->values, 14);
    assert_int_equal(g->oov, 3);
    assert_int_equal(dv->source, CR_MAP_CONSTANT);
    assert_int_equal(dv->values, 10);
    assert_int_equal(dv->oov, 0);
    assert_int_equal(age->source, CR_MAP_DEFAULT);
    assert_int_equal(age->empty, 10);
    cr_label_report_free(&r);
    char *txt;
    size_t n;
    assert_int_equal(cr_read_file(cov, &txt, &n, &e), CR_OK);
    cJSON *j = cJSON_Parse(txt);
    cr_free(txt);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "features_defaulted")->valueint, 2);
    const cJSON *pf = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "per_feature"), 0);
    assert_true(fabs(cJSON_GetObjectItem(pf, "oov_rate")->valuedouble - 3.0 / 9.0) < 1e-12);
    cJSON_Delete(j);

    /* Reference: the teacher through the public scoring API, fed by hand
     * with what the map says each feature holds. */
    cr_model *tm;
    assert_int_equal(cr_model_load(&tm, teacher, &e), CR_OK);
    assert_int_equal(cr_model_n_inputs(tm), 6);
    const char *vals[10 * 6];
    for (int i = 0; i < 10; i++) {
        vals[i * 6 + 0] = rows[i][0];
        vals[i * 6 + 1] = rows[i][1];
        vals[i * 6 + 2] = rows[i][2];
        vals[i * 6 + 3] = "mobile";
        vals[i * 6 + 4] = "";
        vals[i * 6 + 5] = "";
    }
    float ref[10 * 3];
    assert_int_equal(cr_model_n_outputs(tm), 3); /* click, like, dwell */
    assert_int_equal(cr_model_score(tm, 10, vals, ref, &e), CR_OK);
    cr_model_free(tm);

    /* Read the labelled file back as a student does, the teacher's columns
     * as data.extra, and compare. */
    put(fx->dir, "student.yaml",
        "data:\n"
        "  path: labelled.csv\n"
        "  split: {by: fraction, valid: 0, test: 0}\n"
        "  extra: [teacher_click, teacher_like, teacher_dwell]\n"
        "features:\n"
        "  - {name: user, type: categorical, column: uid, dim: 2}\n"
        "tasks:\n"
        "  - {name: click, type: binary}\n"
        "distill:\n"
        "  tasks:\n"
        "    - {task: click, technique: aux_head_tempered, column: teacher_click_logit}\n",
        scfg, sizeof scfg);
    cr_rank_config c;
    assert_int_equal(cr_rank_config_load(&c, scfg, &e), CR_OK);
    assert_int_equal(c.data.n_extra, 4); /* the tempered head's column was added */
    assert_string_equal(c.data.extra[3], "teacher_click_logit");
    cr_dataset ds;
    assert_int_equal(cr_dataset_load(&ds, &c.schema, &c.data, 1, &e), CR_OK);
    assert_int_equal(ds.n, 10);
    for (int i = 0; i < 10; i++) {
        for (int k = 0; k < 3; k++)
            if (ds.extra[(size_t)k * 10 + (size_t)i] != ref[i * 3 + k]) {
                fprintf(stderr, "row %d, teacher task %d: labelled %.9g, teacher %.9g\n", i, k,
                        (double)ds.extra[(size_t)k * 10 + (size_t)i], (double)ref[i * 3 + k]);
                fail();
            }
        double p = 1.0 / (1.0 + exp(-(double)ds.extra[30 + i]));
        assert_true(fabs(p - ref[i * 3]) < 1e-6);
    }
    /* a logit column read as a probability is refused */
    cr_model_cfg bad = c.model;
    bad.heads[1].temperature = 0.0f;
    bad.heads[1].target = 3;
    assert_int_equal(cr_distill_check_data(&c.model, &ds, &e), CR_OK);
    for (int i = 0; i < 10; i++) ds.extra[30 + i] = 0.5f;
    ds.extra[30 + 4] = -1.5f; /* a logit below 0, at data row 5 */
    assert_int_equal(cr_distill_check_data(&bad, &ds, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "column 'teacher_click_logit' holds -1.5 at data row 5"));
    cr_dataset_free(&ds);
    cr_rank_config_free(&c);
}

/* ---- mismatched maps -------------------------------------------------------------------- */

static void expect_map_error(const fixture *fx, const char *teacher, const char *map_text,
                             const char *where, const char *name) {
    char map[512], data[512], out[512];
    put(fx->dir, "bad.yaml", map_text, map, sizeof map);
    put(fx->dir, "t.csv", "uid,track,tags\nu1,t1,a\n", data, sizeof data);
    snprintf(out, sizeof out, "%s/never.csv", fx->dir);
    cr_label_opts o = {.teacher = teacher, .map = map, .data = data, .out = out};
    cr_error e = {0};
    assert_int_equal(cr_distill_label(&o, NULL, &e), CR_ERR_CONFIG);
    if (!strstr(e.msg, where) || !strstr(e.msg, name)) {
        fprintf(stderr, "message '%s' lacks '%s' or '%s'\n", e.msg, where, name);
        fail();
    }
    struct stat st;
    assert_int_not_equal(stat(out, &st), 0); /* nothing half-written */
}

static void test_map_errors(void **state) {
    fixture *fx = *state;
    char teacher[512];
    make_teacher(fx->dir, teacher, sizeof teacher);
    const char *head =
        "features:\n"
        "  - {feature: user, column: uid}\n"
        "  - {feature: item, column: track}\n"
        "  - {feature: genres, column: tags}\n"
        "  - {feature: device, constant: mobile}\n"
        "  - {feature: age, default: true}\n";
    char buf[2048];
    /* a teacher feature mapped to a column the data lacks */
    snprintf(buf, sizeof buf, "%s  - {feature: pop, column: popularity}\n"
             "teacher_tasks:\n  - {name: tc, head: click}\n", head);
    expect_map_error(fx, teacher, buf, "bad.yaml:7:28", "popularity");
    /* a task mapped to a head the teacher lacks */
    snprintf(buf, sizeof buf, "%s  - {feature: pop, default: true}\n"
             "teacher_tasks:\n  - {name: tc, head: finish}\n", head);
    expect_map_error(fx, teacher, buf, "bad.yaml:9:22", "finish");
    /* a map naming a feature the teacher does not have */
    snprintf(buf, sizeof buf, "%s  - {feature: pop, default: true}\n"
             "  - {feature: country, constant: fr}\n"
             "teacher_tasks:\n  - {name: tc, head: click}\n", head);
    expect_map_error(fx, teacher, buf, "bad.yaml:8:15", "country");
    /* a feature left unmapped */
    snprintf(buf, sizeof buf, "%steacher_tasks:\n  - {name: tc, head: click}\n", head);
    expect_map_error(fx, teacher, buf, "bad.yaml:2:3", "'pop' is not mapped");
    /* mapped twice, a form that does not fit, an output that shadows an input */
    snprintf(buf, sizeof buf, "%s  - {feature: pop, default: true}\n  - {feature: age, default: true}\n"
             "teacher_tasks:\n  - {name: tc, head: click}\n", head);
    expect_map_error(fx, teacher, buf, "bad.yaml:8:15", "'age' is mapped twice");
    snprintf(buf, sizeof buf, "%s  - {feature: pop, default: true}\n"
             "teacher_tasks:\n  - {name: tc, head: dwell, form: logit}\n", head);
    expect_map_error(fx, teacher, buf, "bad.yaml:9:22", "regression");
    snprintf(buf, sizeof buf, "%s  - {feature: pop, default: true}\n"
             "teacher_tasks:\n  - {name: uid, head: click}\n", head);
    expect_map_error(fx, teacher, buf, "bad.yaml:9:12", "'uid' is already a column");
}

/* ---- the distill: section ------------------------------------------------------------- */

static const char *const student_head =
    "data:\n"
    "  path: labelled.csv\n"
    "  split: {by: column, column: split}\n"
    "features:\n"
    "  - {name: user, type: categorical, column: uid, dim: 4}\n"
    "  - {name: track, type: categorical, dim: 4}\n"
    "  - {name: tags, type: multi, dim: 3}\n"
    "tasks:\n"
    "  - {name: click, type: binary}\n"
    "  - {name: like, type: binary, mask: click}\n"
    "model: {type: mmoe, experts: 2, expert_layers: [8], tower_layers: [4]}\n"
    "train: {batch_size: 32, epochs: 2, lr: 0.01, threads: 1, seed: 3}\n";

static const char *const student_distill =
    "distill:\n"
    "  tasks:\n"
    "    - {task: click, technique: aux_head, column: teacher_click, weight: 0.5}\n"
    "    - {task: like, technique: soft_label, column: teacher_like, lambda: 0.25}\n"
    "    - {task: like, technique: aux_head, column: teacher_like}\n"
    "    - {task: click, technique: aux_head_tempered, column: teacher_click_logit, temperature: 3}\n"
    "  new_heads:\n"
    "    - {name: teacher_dwell, column: teacher_dwell, kind: regression, tower: click}\n";

static void expect_cfg_error(const fixture *fx, const char *distill, const char *want) {
    char p[512], text[4096];
    snprintf(text, sizeof text, "%s%s", student_head, distill);
    put(fx->dir, "s_bad.yaml", text, p, sizeof p);
    cr_rank_config c;
    cr_error e = {0};
    assert_int_equal(cr_rank_config_load(&c, p, &e), CR_ERR_CONFIG);
    if (!strstr(e.msg, want)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", e.msg, want);
        fail();
    }
}

static void test_distill_section(void **state) {
    fixture *fx = *state;
    char p[512], text[4096];
    snprintf(text, sizeof text, "%s%s", student_head, student_distill);
    put(fx->dir, "s.yaml", text, p, sizeof p);
    cr_rank_config c;
    cr_error e = {0};
    if (cr_rank_config_load(&c, p, &e)) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(e.status, CR_OK);
    /* columns appended to data.extra in order of first mention */
    assert_int_equal(c.data.n_extra, 4);
    assert_string_equal(c.data.extra[0], "teacher_click");
    assert_string_equal(c.data.extra[1], "teacher_like");
    assert_string_equal(c.data.extra[2], "teacher_click_logit");
    assert_string_equal(c.data.extra[3], "teacher_dwell");
    const cr_model_cfg *m = &c.model;
    assert_int_equal(m->n_heads, 6);
    /* served heads: click untouched, like blended */
    assert_true(m->heads[0].served && m->heads[0].blend_lambda == 0.0f);
    assert_true(m->heads[1].served && m->heads[1].blend_lambda == 0.25f);
    assert_int_equal(m->heads[1].blend_extra, 1);
    /* aux heads: never served, unmasked for click (no mask), masked for like */
    assert_string_equal(m->heads[2].name, "click_distill");
    assert_int_equal(m->heads[2].served, 0);
    assert_int_equal(m->heads[2].mask_task, -1);
    assert_true(m->heads[2].weight == 0.5f);
    assert_string_equal(m->heads[3].name, "like_distill");
    assert_int_equal(m->heads[3].tower, 1);
    assert_int_equal(m->heads[3].mask_task, 1);
    assert_int_equal(m->heads[3].target_kind, CR_TARGET_EXTRA);
    assert_int_equal(m->heads[3].target, 1);
    assert_string_equal(m->heads[4].name, "click_tempered");
    assert_true(m->heads[4].temperature == 3.0f);
    assert_int_equal(m->heads[4].target, 2);
    assert_string_equal(m->heads[5].name, "teacher_dwell");
    assert_int_equal(m->heads[5].kind, CR_HEAD_REGRESSION);
    assert_int_equal(m->heads[5].tower, 0);
    assert_int_equal(m->heads[5].served, 0);
    /* the distillation fields survive the checkpoint's JSON */
    char *json;
    cr_model_cfg back;
    assert_int_equal(cr_model_cfg_to_json(m, &json, &e), CR_OK);
    assert_int_equal(cr_model_cfg_from_json(&back, json, &e), CR_OK);
    free(json);
    assert_true(back.heads[1].blend_lambda == 0.25f && back.heads[1].blend_extra == 1);
    assert_true(back.heads[4].temperature == 3.0f && back.heads[0].temperature == 0.0f);
    cr_rank_config_free(&c);

    expect_cfg_error(fx, "distill:\n  tasks:\n    - {task: finish, technique: aux_head, column: x}\n",
                     "s_bad.yaml:15:14: distill.tasks[0]: 'finish' is not a task");
    expect_cfg_error(fx, "distill:\n  tasks:\n    - {task: click, technique: aux_head, column: x, lambda: 0.5}\n",
                     "'lambda' does not apply to technique aux_head");
    expect_cfg_error(fx, "distill:\n  tasks:\n    - {task: click, technique: distil, column: x}\n",
                     "distill.tasks[0].technique");
    expect_cfg_error(fx, "distill:\n  tasks:\n    - {task: click, technique: aux_head, column: x}\n"
                         "    - {task: click, technique: aux_head, column: y}\n",
                     "'click_distill' is used twice");
    expect_cfg_error(fx, "distill:\n  new_heads:\n    - {name: t, column: x, tower: nowhere}\n",
                     "tower 'nowhere' is not a task");
}

/* ---- training with distillation, then export ------------------------------------------ */

static long file_size(const char *p) {
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (long)st.st_size;
}

static void test_train_and_export(void **state) {
    fixture *fx = *state;
    char teacher[512], map[512], data[512], p[512], text[4096], outdir[512];
    make_teacher(fx->dir, teacher, sizeof teacher);
    put(fx->dir, "map.yaml", map_yaml, map, sizeof map);
    snprintf(data, sizeof data, "%s/target.csv", fx->dir);
    FILE *fp = fopen(data, "w");
    assert_non_null(fp);
    fprintf(fp, "uid,track,tags,click,like,split\n");
    cr_rng r;
    cr_rng_seed(&r, 5);
    static const char *const g[] = {"a", "b|c", "", "a|d", "c"};
    for (int i = 0; i < 300; i++) {
        int u = (int)cr_rng_below(&r, 12), t = (int)cr_rng_below(&r, 40);
        int click = (u + t) % 3 == 0 || cr_rng_uniform(&r) < 0.2;
        fprintf(fp, "u%d,t%d,%s,%d,%s,%s\n", u, t, g[i % 5], click,
                click ? ((u + t) % 2 ? "1" : "0") : "",
                i % 10 == 8 ? "valid" : i % 10 == 9 ? "test" : "train");
    }
    assert_int_equal(fclose(fp), 0);
    char out[512];
    snprintf(out, sizeof out, "%s/labelled.csv", fx->dir);
    /* through the public entry point */
    cr_label_args la = {.teacher = teacher, .map = map, .data = data, .out = out, .batch = 64};
    cr_error e = {0};
    char *cov = NULL;
    if (cr_label(NULL, &la, &cov, &e)) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(e.status, CR_OK);
    assert_non_null(cov);
    assert_non_null(strstr(cov, "\"features\""));
    cr_free(cov);
    la.batch = -1;
    assert_int_equal(cr_label(NULL, &la, NULL, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "batch"));
    cr_err_clear(&e);

    /* the student: trained with every technique at once */
    snprintf(text, sizeof text, "%s%s", student_head, student_distill);
    put(fx->dir, "s.yaml", text, p, sizeof p);
    cr_rank_config c;
    assert_int_equal(cr_rank_config_load(&c, p, &e), CR_OK);
    snprintf(outdir, sizeof outdir, "%s/student", fx->dir);
    cr_fit_opts fo = {.out_dir = outdir};
    if (cr_rank_fit(&c, &fo, NULL, &e)) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(e.status, CR_OK);
    cr_rank_config_free(&c);
    char model[600], exported[600], control[600];
    snprintf(model, sizeof model, "%s/model.safetensors", outdir);
    snprintf(exported, sizeof exported, "%s/served.safetensors", fx->dir);
    int dropped = -1;
    assert_int_equal(cr_export(model, exported, "nope", &dropped, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "nope"));
    assert_int_equal(cr_export(model, exported, NULL, &dropped, &e), CR_OK);
    assert_int_equal(dropped, 4);

    /* the control: the same config without distill:, built and saved */
    put(fx->dir, "control.yaml", student_head, p, sizeof p);
    assert_int_equal(cr_rank_config_load(&c, p, &e), CR_OK);
    cr_dataset ds;
    assert_int_equal(cr_dataset_load(&ds, &c.schema, &c.data, 1, &e), CR_OK);
    cr_ranker *cm;
    assert_int_equal(cr_ranker_create(&cm, &c.schema, &c.model, 1, &e), CR_OK);
    snprintf(control, sizeof control, "%s/control.safetensors", fx->dir);
    assert_int_equal(cr_ranker_save(cm, &c.schema, control, NULL, &e), CR_OK);
    cr_ranker_free(cm);
    cr_dataset_free(&ds);
    cr_rank_config_free(&c);
    assert_true(file_size(model) > file_size(exported));
    assert_int_equal(file_size(exported), file_size(control));
    cr_st_file fe, fc;
    assert_int_equal(cr_st_open(&fe, exported, &e), CR_OK);
    assert_int_equal(cr_st_open(&fc, control, &e), CR_OK);
    assert_int_equal(fe.n, fc.n);
    for (int i = 0; i < fe.n; i++) {
        assert_string_equal(fe.t[i].name, fc.t[i].name);
        assert_int_equal(fe.t[i].numel, fc.t[i].numel);
        assert_null(strstr(fe.t[i].name, "distill"));
    }
    assert_string_equal(cr_st_meta(&fe, "model"), cr_st_meta(&fc, "model"));
    assert_null(strstr(cr_st_meta(&fe, "model"), "blend_lambda"));
    cr_st_file fm;
    assert_int_equal(cr_st_open(&fm, model, &e), CR_OK);
    /* the trained model keeps its blend (cleared only around evaluations) */
    assert_non_null(strstr(cr_st_meta(&fm, "model"), "\"blend_lambda\":0.25"));
    cr_st_close(&fm);
    cr_st_close(&fe);
    cr_st_close(&fc);

    /* served scores: bit for bit */
    cr_ranker *a, *b;
    cr_schema sa, sb;
    assert_int_equal(cr_ranker_load(&a, &sa, model, &e), CR_OK);
    assert_int_equal(cr_ranker_load(&b, &sb, exported, &e), CR_OK);
    cr_data_cfg dc;
    memset(&dc, 0, sizeof dc);
    snprintf(dc.path, sizeof dc.path, "%s", out);
    dc.split = CR_SPLIT_FRACTION;
    dc.no_labels = 1;
    assert_int_equal(cr_dataset_load(&ds, &sa, &dc, 0, &e), CR_OK);
    uint32_t *rows = malloc((size_t)ds.n * sizeof *rows);
    for (int64_t i = 0; i < ds.n; i++) rows[i] = (uint32_t)i;
    float *pa = malloc((size_t)a->cfg.n_heads * (size_t)ds.n * sizeof(float));
    float *pb = malloc((size_t)b->cfg.n_heads * (size_t)ds.n * sizeof(float));
    assert_int_equal(cr_rank_predict_rows(a, &ds, rows, ds.n, 128, pa, NULL, &e), CR_OK);
    assert_int_equal(cr_rank_predict_rows(b, &ds, rows, ds.n, 128, pb, NULL, &e), CR_OK);
    assert_int_equal(b->cfg.n_heads, 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(cr_rank_task_head(a, k), k);
        assert_memory_equal(pa + (size_t)k * ds.n, pb + (size_t)k * ds.n,
                            (size_t)ds.n * sizeof(float));
    }
    free(pa);
    free(pb);
    free(rows);
    cr_dataset_free(&ds);
    cr_ranker_free(a);
    cr_ranker_free(b);
    cr_schema_free(&sa);
    cr_schema_free(&sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_losses_match_twin),
        cmocka_unit_test_setup_teardown(test_label_coverage_and_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_distill_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_train_and_export, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
