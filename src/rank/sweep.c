/*
 * sweep.c - the map of when distillation pays: one whole study per cell of
 * a grid over the synthetic generator's knobs. A study file with a `sweep:`
 * section names the base generator config, the knobs each map crosses
 * (target traffic, source traffic = teacher quality, the target's own taste
 * = domain shift, and the share of the teacher's features the target lacks)
 * and the values each takes; every other setting is the study's own. For
 * each cell the generator writes both domains, a teacher is trained on the
 * source (once per distinct source file), the study runs on the cell's
 * target with the teacher given, and the gain of each technique over the
 * control on one task is read from the cell's results.json. DIR/results.json
 * (format "crossrec.sweep") and DIR/report.html (heatmaps,
 * sweep_report.c) summarise; each cell keeps its own study directory.
 * docs/experiment.md, "The map of when distillation pays".
 */
#include "experiment_int.h"
#include "fit.h"
#include "../data/synth.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SW_MAX_MAPS   4
#define SW_MAX_VALUES 8
#define SW_MAX_CELLS  (SW_MAX_MAPS * SW_MAX_VALUES * SW_MAX_VALUES)
#define SW_MAX_DEF    32

enum { K_TARGET = 0, K_SOURCE, K_SPECIFIC, K_DEFAULTED, K_COUNT };
static const char *const knob_names[] = {"target_requests", "source_requests", "specific",
                                         "defaulted", NULL};

typedef struct sw_map {
    int    x, y, nx, ny;
    double xv[SW_MAX_VALUES], yv[SW_MAX_VALUES];
} sw_map;

typedef struct sw_cfg {
    char   synth[1024];
    int    has_base[K_COUNT]; /* base: knobs set instead of the synth file's */
    double base[K_COUNT];
    char   student[64], task[64];
    int    n_def;
    char   defaultable[SW_MAX_DEF][64];
    int    n_maps;
    sw_map maps[SW_MAX_MAPS];
} sw_cfg;

typedef struct sw_cell {
    double k[K_COUNT];
    char   id[160];
} sw_cell;

/* ---- the sweep section --------------------------------------------------------- */

static cr_status parse_map(const cr_yaml_node *n, const char *path, sw_map *m, cr_error *e) {
    static const char *const keys[] = {"x", "x_values", "y", "y_values", NULL};
    CR_TRY(cr_yaml_expect(n, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(n, keys, path, e));
    CR_TRY(cr_yaml_enum(n, "x", path, 1, 0, knob_names, &m->x, e));
    CR_TRY(cr_yaml_enum(n, "y", path, 1, 0, knob_names, &m->y, e));
    if (m->x == m->y)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "x and y are both '%s'; a map crosses "
                           "two different knobs", knob_names[m->x]);
    const int ax[2] = {m->x, m->y};
    double *vals[2] = {m->xv, m->yv};
    int *cnt[2] = {&m->nx, &m->ny};
    const char *vk[2] = {"x_values", "y_values"};
    for (int a = 0; a < 2; a++) {
        /* requests are counts, specific a weight, defaulted a share */
        double lo = ax[a] == K_DEFAULTED ? 0 : ax[a] == K_SPECIFIC ? 0 : 10;
        double hi = ax[a] == K_DEFAULTED ? 1 : ax[a] == K_SPECIFIC ? 10 : 1e9;
        CR_TRY(cr_yaml_doubles(n, vk[a], path, 1, lo, hi, vals[a], SW_MAX_VALUES, cnt[a], e));
        if (*cnt[a] < 1)
            return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "%s: at least one value", vk[a]);
    }
    return CR_OK;
}

/* *has = 0 when the study file has no sweep section. */
static cr_status sweep_load(sw_cfg *c, const char *path, int *has, cr_error *e) {
    static const char *const keys[] = {"synth", "student", "task", "defaultable", "base", "maps",
                                       NULL};
    memset(c, 0, sizeof *c);
    *has = 0;
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load(&doc, path, e));
    const cr_yaml_node *s = cr_yaml_get(cr_yaml_root(doc), "sweep");
    cr_status st = CR_OK;
    char rel[1024];
    if (!s) goto done;
    *has = 1;
    if ((st = cr_yaml_expect(s, CR_YAML_MAP, "sweep", e))) goto done;
    if ((st = cr_yaml_check_keys(s, keys, "sweep", e))) goto done;
    if ((st = cr_yaml_str(s, "synth", "sweep", 1, NULL, rel, sizeof rel, e))) goto done;
    if ((st = cr_config_resolve_path(cr_yaml_get(s, "synth"), path, rel, "sweep.synth", c->synth,
                                     sizeof c->synth, e)))
        goto done;
    if ((st = cr_yaml_str(s, "student", "sweep", 0, "", c->student, sizeof c->student, e)))
        goto done;
    if ((st = cr_yaml_str(s, "task", "sweep", 0, "click", c->task, sizeof c->task, e))) goto done;
    if ((st = cr_yaml_strs(s, "defaultable", "sweep", 0, &c->defaultable[0][0], 64, SW_MAX_DEF,
                           &c->n_def, e)))
        goto done;
    const cr_yaml_node *bn = cr_yaml_get(s, "base");
    if (bn) {
        if ((st = cr_yaml_expect(bn, CR_YAML_MAP, "sweep.base", e))) goto done;
        if ((st = cr_yaml_check_keys(bn, knob_names, "sweep.base", e))) goto done;
        for (int k = 0; k < K_COUNT; k++) {
            if (!cr_yaml_get(bn, knob_names[k])) continue;
            double lo = k == K_DEFAULTED || k == K_SPECIFIC ? 0 : 10;
            double hi = k == K_DEFAULTED ? 1 : k == K_SPECIFIC ? 10 : 1e9;
            if ((st = cr_yaml_double(bn, knob_names[k], "sweep.base", 1, 0, lo, hi, &c->base[k], e)))
                goto done;
            c->has_base[k] = 1;
        }
    }
    const cr_yaml_node *ml = cr_yaml_get(s, "maps");
    if ((st = cr_yaml_expect(ml, CR_YAML_SEQ, "sweep.maps", e))) goto done;
    if (ml->n < 1 || ml->n > SW_MAX_MAPS) {
        st = cr_yaml_err(e, CR_ERR_CONFIG, ml, "sweep.maps", "1 to %d maps, got %d", SW_MAX_MAPS,
                         ml->n);
        goto done;
    }
    for (int i = 0; i < ml->n; i++) {
        char ip[64];
        cr_yaml_path_index(ip, sizeof ip, "sweep.maps", i);
        if ((st = parse_map(ml->items[i], ip, &c->maps[i], e))) goto done;
        const sw_map *m = &c->maps[i];
        if ((m->x == K_DEFAULTED || m->y == K_DEFAULTED) && c->n_def == 0) {
            st = cr_yaml_err(e, CR_ERR_CONFIG, ml->items[i], ip,
                             "the defaulted knob needs sweep.defaultable: the map features it "
                             "defaults, in order");
            goto done;
        }
        c->n_maps++;
    }
done:
    cr_yaml_free(doc);
    return st;
}

int cr_sweep_present(const char *study_path) {
    sw_cfg c;
    int has = 0;
    cr_error e = {0};
    (void)sweep_load(&c, study_path, &has, &e); /* a bad section: the sweep reports it */
    return has;
}

/* ---- cells ----------------------------------------------------------------------- */

static void cell_id(sw_cell *c) {
    snprintf(c->id, sizeof c->id, "t%.0f_s%.0f_sp%g_d%g", c->k[K_TARGET], c->k[K_SOURCE],
             c->k[K_SPECIFIC], c->k[K_DEFAULTED]);
}

/* The cell of map m at (i, j): the base with the map's two knobs set;
 * returns its index among the distinct cells (added when new). */
static int cell_add(sw_cell *cells, int *n, const double *base, const sw_map *m, int i, int j) {
    sw_cell c;
    memcpy(c.k, base, sizeof c.k);
    c.k[m->x] = m->xv[i];
    c.k[m->y] = m->yv[j];
    cell_id(&c);
    for (int q = 0; q < *n; q++)
        if (!strcmp(cells[q].id, c.id)) return q;
    cells[*n] = c;
    return (*n)++;
}

/* A hash of a file's bytes, streamed. */
static cr_status content_key(const char *path, uint64_t *key, cr_error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return cr_err(e, CR_ERR_IO, "%s: cannot open to hash it", path);
    enum { CH = 1 << 20 };
    char *buf = malloc(CH);
    if (!buf) {
        fclose(f);
        return cr_err(e, CR_ERR_NOMEM, "out of memory");
    }
    uint64_t h = 1469598103934665603ull;
    size_t n;
    while ((n = fread(buf, 1, CH, f)) > 0) h = (h * 1099511628211ull) ^ cr_hash64(buf, n);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) return cr_err(e, CR_ERR_IO, "%s: read error while hashing", path);
    *key = h;
    return CR_OK;
}

/* The teacher of a source file, trained once per distinct file content into
 * out/teachers/<key>/ (reused when its model exists and the sweep reuses). */
static cr_status cell_teacher(const cr_experiment_opts *o, const study *st, const char *source,
                              char *model, size_t cap, cr_error *e) {
    uint64_t key = 0;
    CR_TRY(content_key(source, &key, e));
    char dir[1400];
    snprintf(dir, sizeof dir, "%s/teachers/%016llx", o->out_dir, (unsigned long long)key);
    snprintf(model, cap, "%s/model.safetensors", dir);
    char metrics[1500];
    snprintf(metrics, sizeof metrics, "%s/metrics.json", dir);
    if (o->reuse && cr_file_exists(metrics) && cr_file_exists(model)) {
        if (o->progress) fprintf(o->progress, "sweep: teacher %s reused\n", dir);
        return CR_OK;
    }
    cr_rank_config cfg;
    CR_TRY(cr_rank_config_load(&cfg, st->teacher_config, e));
    if (strlen(source) >= sizeof cfg.data.path) {
        cr_rank_config_free(&cfg);
        return cr_err(e, CR_ERR_LIMIT, "%s: path too long", source);
    }
    memcpy(cfg.data.path, source, strlen(source) + 1);
    /* as a study's own teacher: the call's threads, else the study's, else its config's */
    if (o->threads >= 0) cfg.train.threads = o->threads;
    else if (st->threads >= 0) cfg.train.threads = st->threads;
    cr_set_threads(cfg.train.threads); /* cr_experiment's bracket restores the caller's */
    if (o->progress) fprintf(o->progress, "sweep: training the teacher on %s\n", source);
    cr_fit_opts fo = {.out_dir = dir, .log = o->progress, .ctx = o->ctx};
    cr_status s = cr_rank_fit(&cfg, &fo, NULL, e);
    cr_rank_config_free(&cfg);
    if (s) cr_err_prefix(e, "sweep teacher on %s", source);
    return s;
}

/* What a cell's results.json says of the chosen student, first fraction and
 * task: the control's primary metric, the teacher's zero-shot one, and for
 * every other technique its vs_control block. */
static cJSON *cell_summary(const char *results, const sw_cfg *c, cr_error *e, cr_status *st) {
    cJSON *root = cJSON_Parse(results), *out = cJSON_CreateObject();
    *st = CR_OK;
    const cJSON *stu = NULL, *list = cJSON_GetObjectItemCaseSensitive(root, "students");
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (!stu && (!c->student[0] || (cJSON_IsString(nm) && !strcmp(nm->valuestring, c->student))))
            stu = it;
    }
    if (!stu) {
        *st = cr_err(e, CR_ERR_CONFIG, "sweep.student '%s' is not a student of the study",
                     c->student);
        goto done;
    }
    const cJSON *zs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(stu, "teacher_zero_shot"), c->task);
    const cJSON *fr = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(stu, "fractions"), 0);
    const cJSON *v;
    int found = 0;
    cJSON *techs = cJSON_AddObjectToObject(out, "techniques");
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(fr, "variants")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(v, "tasks"), c->task);
        if (!t) continue;
        found = 1;
        const char *tn = cJSON_GetObjectItemCaseSensitive(v, "technique")->valuestring;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "metrics");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "control"))) {
            cJSON_AddItemToObject(out, "control", cJSON_Duplicate(m, 1));
            const cJSON *cc = cJSON_GetObjectItemCaseSensitive(t, "control_check");
            if (cc) cJSON_AddItemToObject(out, "control_check", cJSON_Duplicate(cc, 1));
        } else {
            const cJSON *vc = cJSON_GetObjectItemCaseSensitive(t, "vs_control");
            cJSON_AddItemToObject(techs, tn, vc ? cJSON_Duplicate(vc, 1) : cJSON_CreateNull());
        }
    }
    if (!found) {
        *st = cr_err(e, CR_ERR_CONFIG, "sweep.task '%s' is not a task of the student", c->task);
        goto done;
    }
    if (zs) cJSON_AddItemToObject(out, "teacher", cJSON_Duplicate(
                                      cJSON_GetObjectItemCaseSensitive(zs, "metrics"), 1));
done:
    cJSON_Delete(root);
    if (*st) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static cr_status run_cell(const cr_experiment_opts *o, const study *st, const sw_cfg *c,
                          const cr_synth_cfg *base, const sw_cell *cell, cJSON **summary,
                          cr_error *e) {
    char dir[1300], data[1400], source[1500], target[1500], study_dir[1400], model[1600];
    snprintf(dir, sizeof dir, "%s/cells/%s", o->out_dir, cell->id);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(study_dir, sizeof study_dir, "%s/study", dir);
    cr_synth_cfg sc = *base;
    sc.target.requests = (int64_t)llround(cell->k[K_TARGET]);
    sc.source.requests = (int64_t)llround(cell->k[K_SOURCE]);
    sc.target.specific = cell->k[K_SPECIFIC];
    snprintf(source, sizeof source, "%s/%s.csv", data, sc.source.name);
    snprintf(target, sizeof target, "%s/%s.csv", data, sc.target.name);
    if (o->progress) fprintf(o->progress, "sweep: cell %s\n", cell->id);
    cr_synth_stats ss;
    CR_TRY(cr_synth_write(&sc, data, NULL, &ss, e));
    CR_TRY(cell_teacher(o, st, source, model, sizeof model, e));
    unlink(source); /* its teacher is kept; the rows are regenerated on demand */
    const char *defs[SW_MAX_DEF];
    int nd = (int)llround(cell->k[K_DEFAULTED] * c->n_def);
    for (int i = 0; i < nd; i++) defs[i] = c->defaultable[i];
    cr_experiment_opts co = *o;
    co.out_dir = study_dir;
    co.target = target;
    co.teacher_model = model;
    co.map_default = defs;
    co.n_map_default = nd;
    char *txt = NULL;
    CR_TRY(cr_experiment_run(&co, &txt, e));
    cr_status s;
    *summary = cell_summary(txt, c, e, &s);
    free(txt);
    return s;
}

/* ---- the sweep ------------------------------------------------------------------- */

cr_status cr_sweep_run(const cr_experiment_opts *o, char **results, cr_error *e) {
    sw_cfg c;
    int has;
    CR_TRY(sweep_load(&c, o->config, &has, e));
    if (!has) return cr_err(e, CR_ERR_CONFIG, "%s: no sweep section", o->config);
    study st;
    CR_TRY(study_load(&st, o->config, e));
    if (!st.teacher_config[0])
        return cr_err(e, CR_ERR_CONFIG, "%s: a sweep trains its teachers: teacher.config is "
                      "required (not teacher.model)", o->config);
    cr_synth_cfg base;
    CR_TRY(cr_synth_cfg_load(&base, c.synth, e));
    CR_TRY(cr_mkdirs(o->out_dir, e));
    double t0 = cr_now();
    double bk[K_COUNT] = {(double)base.target.requests, (double)base.source.requests,
                          base.target.specific, 0.0};
    for (int k = 0; k < K_COUNT; k++)
        if (c.has_base[k]) bk[k] = c.base[k];
    if (c.has_base[K_DEFAULTED] && c.n_def == 0)
        return cr_err(e, CR_ERR_CONFIG, "%s: sweep.base.defaulted needs sweep.defaultable",
                      o->config);
    static sw_cell cells[SW_MAX_CELLS];
    int n = 0, idx[SW_MAX_MAPS][SW_MAX_VALUES][SW_MAX_VALUES];
    for (int m = 0; m < c.n_maps; m++)
        for (int j = 0; j < c.maps[m].ny; j++)
            for (int i = 0; i < c.maps[m].nx; i++)
                idx[m][i][j] = cell_add(cells, &n, bk, &c.maps[m], i, j);
    cJSON *sum[SW_MAX_CELLS] = {0};
    cr_status s = CR_OK;
    for (int q = 0; q < n && !s; q++) {
        if (o->ctx && cr_ctx_cancelled(o->ctx)) {
            s = cr_err(e, CR_ERR_CANCELLED, "sweep cancelled after %d of %d cells", q, n);
            break;
        }
        if (o->progress) fprintf(o->progress, "sweep: %d of %d cells (%.0f s so far)\n", q + 1,
                                 n, cr_now() - t0);
        s = run_cell(o, &st, &c, &base, &cells[q], &sum[q], e);
        if (s) cr_err_prefix(e, "sweep cell %s", cells[q].id);
    }
    cJSON *root = NULL;
    char *txt = NULL;
    if (s) goto done;
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "crossrec.sweep");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "study", o->config);
    cJSON_AddStringToObject(root, "synth", c.synth);
    cJSON_AddStringToObject(root, "student", c.student[0] ? c.student : st.students[0].name);
    cJSON_AddStringToObject(root, "task", c.task);
    cJSON_AddNumberToObject(root, "fraction", st.fractions[0]);
    cJSON_AddNumberToObject(root, "seeds", st.n_seeds);
    cJSON *b = cJSON_AddObjectToObject(root, "base");
    for (int k = 0; k < K_COUNT; k++) cJSON_AddNumberToObject(b, knob_names[k], bk[k]);
    cJSON *dl = cJSON_AddArrayToObject(root, "defaultable");
    for (int i = 0; i < c.n_def; i++) cJSON_AddItemToArray(dl, cJSON_CreateString(c.defaultable[i]));
    cJSON *maps = cJSON_AddArrayToObject(root, "maps");
    for (int m = 0; m < c.n_maps; m++) {
        const sw_map *mp = &c.maps[m];
        cJSON *jm = cJSON_CreateObject();
        cJSON_AddStringToObject(jm, "x", knob_names[mp->x]);
        cJSON_AddItemToObject(jm, "x_values", cJSON_CreateDoubleArray(mp->xv, mp->nx));
        cJSON_AddStringToObject(jm, "y", knob_names[mp->y]);
        cJSON_AddItemToObject(jm, "y_values", cJSON_CreateDoubleArray(mp->yv, mp->ny));
        cJSON *cl = cJSON_AddArrayToObject(jm, "cells");
        for (int j = 0; j < mp->ny; j++)
            for (int i = 0; i < mp->nx; i++) {
                int q = idx[m][i][j];
                cJSON *jc = cJSON_Duplicate(sum[q], 1);
                cJSON_AddNumberToObject(jc, "i", i);
                cJSON_AddNumberToObject(jc, "j", j);
                cJSON_AddStringToObject(jc, "dir", cells[q].id);
                cJSON_AddItemToArray(cl, jc);
            }
        cJSON_AddItemToArray(maps, jm);
    }
    cJSON_AddNumberToObject(root, "cells", n);
    cJSON_AddNumberToObject(root, "seconds", cr_now() - t0);
    txt = cJSON_Print(root);
    if (!txt) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory writing the sweep's results");
        goto done;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/results.json", o->out_dir);
    if (!(s = cr_write_file_atomic(path, txt, strlen(txt), e))) {
        snprintf(path, sizeof path, "%s/report.html", o->out_dir);
        s = cr_experiment_report_html(txt, path, e);
    }
    if (!s && o->progress)
        fprintf(o->progress, "sweep: %d cells in %.0f s; wrote %s/results.json and report.html\n",
                n, cr_now() - t0, o->out_dir);
done:
    for (int q = 0; q < n; q++) cJSON_Delete(sum[q]);
    cJSON_Delete(root);
    if (!s && results) *results = txt;
    else free(txt);
    return s;
}
