/*
 * experiment.c - runs a distillation study end to end: teacher, labels,
 * the control's search (experiment_tune.c), every student variant per
 * seed and data fraction, and the comparisons (experiment_stats.c) into
 * results.json and report.html. Every variant of a student reads the same
 * labelled rows with the same split, the same tuned settings and the same
 * stopping rule; only the distillation heads differ, so differences are the
 * technique's. Finished runs are reused when their inputs are unchanged.
 */
#include "experiment_int.h"

#include "checkpoint.h"
#include "fit.h"
#include "label.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const cr_study_tech_names[] = {"none", "aux_head", "soft_label", "aux_head_tempered",
                                           "new_head", NULL};

void study_log(const study_ctx *c, const char *fmt, ...) {
    if (!c->o->progress) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->o->progress, fmt, ap);
    va_end(ap);
    fflush(c->o->progress);
}

/* ---- the study file -------------------------------------------------------------- */

static void resolve(char *out, size_t cap, const char *base_file, const char *p) {
    if (p[0] == '/' || !base_file) {
        snprintf(out, cap, "%s", p);
        return;
    }
    const char *slash = strrchr(base_file, '/');
    if (!slash) snprintf(out, cap, "%s", p);
    else snprintf(out, cap, "%.*s/%s", (int)(slash - base_file), base_file, p);
}

static cr_status parse_student(const cr_yaml_node *m, const char *path, const char *file,
                               study_student *s, cr_error *e) {
    static const char *const keys[] = {"name", "config", "distill", "new_heads", "techniques", NULL};
    static const char *const tkeys[] = {"task",   "column", "logit_column", "weight",
                                        "lambda", "temperature", NULL};
    static const char *const nkeys[] = {"name", "column", "kind", "weight", "tower", "mask", NULL};
    char rel[1024], p[200];
    memset(s, 0, sizeof *s);
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(m, keys, path, e));
    CR_TRY(cr_yaml_str(m, "name", path, 1, NULL, s->name, sizeof s->name, e));
    CR_TRY(cr_yaml_str(m, "config", path, 1, NULL, rel, sizeof rel, e));
    resolve(s->config, sizeof s->config, file, rel);
    const cr_yaml_node *d = cr_yaml_get(m, "distill");
    cr_yaml_path_key(p, sizeof p, path, "distill");
    if (d && !cr_yaml_is_null(d)) {
        CR_TRY(cr_yaml_expect(d, CR_YAML_SEQ, p, e));
        if (d->n > CR_DISTILL_MAX)
            return cr_yaml_err(e, CR_ERR_LIMIT, d, p, "at most %d tasks", CR_DISTILL_MAX);
        for (int i = 0; i < d->n; i++) {
            char ip[220];
            cr_yaml_path_index(ip, sizeof ip, p, i);
            const cr_yaml_node *t = d->items[i];
            study_task *st = &s->tasks[s->n_tasks++];
            double v;
            CR_TRY(cr_yaml_expect(t, CR_YAML_MAP, ip, e));
            CR_TRY(cr_yaml_check_keys(t, tkeys, ip, e));
            CR_TRY(cr_yaml_str(t, "task", ip, 1, NULL, st->task, sizeof st->task, e));
            CR_TRY(cr_yaml_str(t, "column", ip, 1, NULL, st->column, sizeof st->column, e));
            CR_TRY(cr_yaml_str(t, "logit_column", ip, 0, "", st->logit_column,
                               sizeof st->logit_column, e));
            CR_TRY(cr_yaml_double(t, "weight", ip, 0, 0.5, 0, 1e6, &v, e));
            st->weight = (float)v;
            CR_TRY(cr_yaml_double(t, "lambda", ip, 0, 0.5, 0, 1, &v, e));
            st->lambda = (float)v;
            CR_TRY(cr_yaml_double(t, "temperature", ip, 0, 2.0, 1e-3, 1000, &v, e));
            st->temperature = (float)v;
        }
    }
    const cr_yaml_node *nh = cr_yaml_get(m, "new_heads");
    cr_yaml_path_key(p, sizeof p, path, "new_heads");
    if (nh && !cr_yaml_is_null(nh)) {
        CR_TRY(cr_yaml_expect(nh, CR_YAML_SEQ, p, e));
        if (nh->n > CR_DISTILL_MAX)
            return cr_yaml_err(e, CR_ERR_LIMIT, nh, p, "at most %d new heads", CR_DISTILL_MAX);
        for (int i = 0; i < nh->n; i++) {
            char ip[220];
            cr_yaml_path_index(ip, sizeof ip, p, i);
            const cr_yaml_node *t = nh->items[i];
            cr_distill_new_head *h = &s->new_heads[s->n_new++];
            double v;
            int kind;
            CR_TRY(cr_yaml_expect(t, CR_YAML_MAP, ip, e));
            CR_TRY(cr_yaml_check_keys(t, nkeys, ip, e));
            CR_TRY(cr_yaml_str(t, "name", ip, 1, NULL, h->name, sizeof h->name, e));
            CR_TRY(cr_yaml_str(t, "column", ip, 0, h->name, h->column, sizeof h->column, e));
            CR_TRY(cr_yaml_enum(t, "kind", ip, 0, 0, cr_task_kind_names, &kind, e));
            h->kind = kind == CR_TASK_BINARY ? CR_HEAD_BINARY : CR_HEAD_REGRESSION;
            CR_TRY(cr_yaml_double(t, "weight", ip, 0, 0.5, 0, 1e6, &v, e));
            h->weight = (float)v;
            CR_TRY(cr_yaml_str(t, "tower", ip, 1, NULL, h->tower, sizeof h->tower, e));
            CR_TRY(cr_yaml_str(t, "mask", ip, 0, "", h->mask, sizeof h->mask, e));
        }
    }
    const cr_yaml_node *tn = cr_yaml_get(m, "techniques");
    cr_yaml_path_key(p, sizeof p, path, "techniques");
    if (!tn || cr_yaml_is_null(tn)) { /* the control plus whatever applies */
        s->tech[s->n_tech++] = CR_STUDY_NONE;
        if (s->n_tasks) s->tech[s->n_tech++] = CR_STUDY_AUX;
        if (s->n_new) s->tech[s->n_tech++] = CR_STUDY_NEW;
    } else {
        CR_TRY(cr_yaml_expect(tn, CR_YAML_SEQ, p, e));
        if (tn->n > CR_STUDY_MAX_TECH)
            return cr_yaml_err(e, CR_ERR_LIMIT, tn, p, "at most %d techniques", CR_STUDY_MAX_TECH);
        for (int i = 0; i < tn->n; i++) {
            char ip[220];
            int t;
            cr_yaml_path_index(ip, sizeof ip, p, i);
            CR_TRY(cr_yaml_as_enum(tn->items[i], ip, cr_study_tech_names, &t, e));
            for (int j = 0; j < s->n_tech; j++)
                if (s->tech[j] == t)
                    return cr_yaml_err(e, CR_ERR_CONFIG, tn->items[i], ip, "'%s' is listed twice",
                                       cr_study_tech_names[t]);
            if (t == CR_STUDY_NEW && !s->n_new)
                return cr_yaml_err(e, CR_ERR_CONFIG, tn->items[i], ip,
                                   "new_head needs the student's new_heads list");
            if (t != CR_STUDY_NONE && t != CR_STUDY_NEW && !s->n_tasks)
                return cr_yaml_err(e, CR_ERR_CONFIG, tn->items[i], ip,
                                   "%s needs the student's distill list (task -> teacher column)",
                                   cr_study_tech_names[t]);
            s->tech[s->n_tech++] = t;
        }
        /* the control first: every comparison is against it */
        int has_none = 0;
        for (int j = 0; j < s->n_tech; j++) has_none |= s->tech[j] == CR_STUDY_NONE;
        if (!has_none)
            return cr_yaml_err(e, CR_ERR_CONFIG, tn, p, "include none: the control every "
                               "technique is compared with");
        for (int j = 0; j < s->n_tech; j++)
            if (s->tech[j] == CR_STUDY_NONE) {
                s->tech[j] = s->tech[0];
                s->tech[0] = CR_STUDY_NONE;
            }
    }
    return CR_OK;
}

cr_status study_load(study *st, const char *path, cr_error *e) {
    static const char *const keys[] = {"teacher", "map",     "target",    "students",
                                       "seeds",   "fractions", "epochs",  "max_steps",
                                       "threads", "bootstrap", "slice",   "keep_seed",
                                       "min_positives", "convergence", "tune",
                                       "control_check", "sweep", NULL};
    static const char *const tkeys[] = {"config", "model", NULL};
    static const char *const bkeys[] = {"resamples", "level", "seed", NULL};
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", path);
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load(&doc, path, e));
    const cr_yaml_node *r = cr_yaml_root(doc), *t = cr_yaml_get(r, "teacher");
    char rel[1024];
    cr_status s;
    if ((s = cr_yaml_check_keys(r, keys, "", e))) goto done;
    if ((s = cr_yaml_expect(t, CR_YAML_MAP, "teacher", e))) goto done;
    if ((s = cr_yaml_check_keys(t, tkeys, "teacher", e))) goto done;
    if ((s = cr_yaml_str(t, "config", "teacher", 0, "", rel, sizeof rel, e))) goto done;
    if (rel[0]) resolve(st->teacher_config, sizeof st->teacher_config, path, rel);
    if ((s = cr_yaml_str(t, "model", "teacher", 0, "", rel, sizeof rel, e))) goto done;
    if (rel[0]) resolve(st->teacher_model, sizeof st->teacher_model, path, rel);
    if (!st->teacher_config[0] == !st->teacher_model[0]) {
        s = cr_yaml_err(e, CR_ERR_CONFIG, t, "teacher", "give exactly one of config (a ranker "
                        "YAML to train) and model (a trained checkpoint)");
        goto done;
    }
    if ((s = cr_yaml_str(r, "map", "", 1, NULL, rel, sizeof rel, e))) goto done;
    resolve(st->map, sizeof st->map, path, rel);
    if ((s = cr_yaml_str(r, "target", "", 1, NULL, rel, sizeof rel, e))) goto done;
    resolve(st->target, sizeof st->target, path, rel);
    const cr_yaml_node *sl = cr_yaml_get(r, "students");
    if ((s = cr_yaml_expect(sl, CR_YAML_SEQ, "students", e))) goto done;
    if (sl->n < 1 || sl->n > CR_STUDY_MAX_STUDENTS) {
        s = cr_yaml_err(e, CR_ERR_CONFIG, sl, "students", "1 to %d students, got %d",
                        CR_STUDY_MAX_STUDENTS, sl->n);
        goto done;
    }
    for (int i = 0; i < sl->n; i++) {
        char ip[64];
        cr_yaml_path_index(ip, sizeof ip, "students", i);
        if ((s = parse_student(sl->items[i], ip, path, &st->students[i], e))) goto done;
        for (int j = 0; j < i; j++)
            if (!strcmp(st->students[j].name, st->students[i].name)) {
                s = cr_yaml_err(e, CR_ERR_CONFIG, sl->items[i], ip, "name '%s' is used twice",
                                st->students[i].name);
                goto done;
            }
        st->n_students++;
    }
    int64_t seeds[CR_STUDY_MAX_SEEDS];
    if ((s = cr_yaml_ints(r, "seeds", "", 0, 0, INT64_MAX, seeds, CR_STUDY_MAX_SEEDS,
                          &st->n_seeds, e)))
        goto done;
    if (st->n_seeds == 0) seeds[st->n_seeds++] = 1;
    for (int i = 0; i < st->n_seeds; i++) st->seeds[i] = (uint64_t)seeds[i];
    if ((s = cr_yaml_doubles(r, "fractions", "", 0, 1e-6, 1, st->fractions, CR_STUDY_MAX_FRACS,
                             &st->n_fracs, e)))
        goto done;
    if (st->n_fracs == 0) st->fractions[st->n_fracs++] = 1.0;
    if ((s = cr_yaml_int32(r, "epochs", "", 0, 0, 0, 100000, &st->epochs, e))) goto done;
    if ((s = cr_yaml_int(r, "max_steps", "", 0, 0, 0, INT64_MAX / 2, &st->max_steps, e))) goto done;
    if ((s = cr_yaml_int32(r, "threads", "", 0, -1, -1, 1024, &st->threads, e))) goto done;
    /* no slice unless one is named: a default column would be one most data lacks */
    if ((s = cr_yaml_str(r, "slice", "", 0, "", st->slice, sizeof st->slice, e))) goto done;
    if ((s = cr_yaml_int32(r, "min_positives", "", 0, 30, 1, 1000000, &st->min_positives, e)))
        goto done;
    int64_t ks;
    if ((s = cr_yaml_int(r, "keep_seed", "", 0, 1, 0, INT64_MAX, &ks, e))) goto done;
    st->keep_seed = (uint64_t)ks;
    const cr_yaml_node *b = cr_yaml_get(r, "bootstrap");
    if ((s = cr_yaml_check_keys(b, bkeys, "bootstrap", e))) goto done;
    if ((s = cr_yaml_int32(b, "resamples", "bootstrap", 0, 1000, 0, 1000000, &st->resamples, e)))
        goto done;
    if ((s = cr_yaml_double(b, "level", "bootstrap", 0, 0.95, 0.5, 0.999, &st->level, e))) goto done;
    int64_t bs;
    if ((s = cr_yaml_int(b, "seed", "bootstrap", 0, 7, 0, INT64_MAX, &bs, e))) goto done;
    st->boot_seed = (uint64_t)bs;
    s = study_parse_controls(r, st, e);
done:
    cr_yaml_free(doc);
    return s;
}

/* ---- reuse: a run is kept when the text of everything it read is the same ----- */

static uint64_t file_key(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    char buf[2200];
    int n = snprintf(buf, sizeof buf, "%s|%lld|%lld", path, (long long)sb.st_size,
                     (long long)sb.st_mtime);
    return cr_hash64(buf, (size_t)n);
}

uint64_t study_text_key(const char *path) {
    char *t = NULL;
    size_t n = 0;
    cr_error e = {0};
    if (cr_read_file(path, &t, &n, &e)) return 0;
    uint64_t h = cr_hash64(t, n);
    cr_free(t);
    return h;
}

int study_stamp_ok(const study_ctx *c, const char *dir, uint64_t key, const char *needed) {
    char p[1400], want[32];
    if (!c->o->reuse && !c->reuse_all) return 0;
    snprintf(p, sizeof p, "%s/%s", dir, needed);
    if (!cr_file_exists(p)) return 0;
    snprintf(p, sizeof p, "%s/study_stamp.txt", dir);
    char *t = NULL;
    size_t n = 0;
    cr_error e = {0};
    if (cr_read_file(p, &t, &n, &e)) return 0;
    snprintf(want, sizeof want, "%016llx\n", (unsigned long long)key);
    int ok = n == strlen(want) && !memcmp(t, want, n);
    cr_free(t);
    return ok;
}

cr_status study_stamp_write(const char *dir, uint64_t key, cr_error *e) {
    char p[1500], txt[32];
    if (snprintf(p, sizeof p, "%s/study_stamp.txt", dir) >= (int)sizeof p)
        return cr_err(e, CR_ERR_LIMIT, "%s: path too long", dir);
    int n = snprintf(txt, sizeof txt, "%016llx\n", (unsigned long long)key);
    return cr_write_file_atomic(p, txt, (size_t)n, e);
}

/* ---- teacher and labels ---------------------------------------------------------- */

/* The thread count of a job: the context's (o->threads), else the
 * study's `threads`, else `own`, the job's train.threads (0 = every CPU
 * the process may use). A study is one call whose jobs may each name their
 * own count, so this is set per job; cr_experiment's bracket restores the
 * caller's count after the call. */
static int job_threads(const study_ctx *c, int own) {
    int n = c->o->threads >= 0 ? c->o->threads : c->st.threads >= 0 ? c->st.threads : own;
    cr_set_threads(n);
    return n;
}

/* epochs and max_steps are the students' budget, convergence their
 * stopping rule; threads apply to every job */
static void apply_overrides(const study_ctx *c, cr_rank_config *cfg, int student) {
    if (student && c->st.epochs > 0) cfg->train.epochs = c->st.epochs;
    if (student && c->st.conv_mode >= 0) {
        cfg->train.early_stopping = (cr_es_mode)c->st.conv_mode;
        cfg->train.patience = c->st.conv_patience;
        cfg->train.epochs = c->st.conv_max_epochs;
    }
    if (student && c->st.max_steps > 0) cfg->train.max_steps = c->st.max_steps;
    cfg->train.threads = job_threads(c, cfg->train.threads);
}

static cr_status get_teacher(study_ctx *c, cr_error *e) {
    if (c->st.teacher_model[0]) {
        snprintf(c->teacher_path, sizeof c->teacher_path, "%s", c->st.teacher_model);
        c->teacher_trained = 0;
        study_log(c, "teacher: %s (given)\n", c->teacher_path);
        return CR_OK;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/teacher", c->o->out_dir);
    snprintf(c->teacher_path, sizeof c->teacher_path, "%s/model.safetensors", dir);
    c->teacher_trained = 1;
    uint64_t key = study_text_key(c->st.teacher_config) ^ file_key(c->st.teacher_config) * 3;
    if (study_stamp_ok(c, dir, key, "metrics.json")) {
        study_log(c, "teacher: reusing %s\n", c->teacher_path);
        return CR_OK;
    }
    cr_rank_config cfg;
    CR_TRY(cr_rank_config_load(&cfg, c->st.teacher_config, e));
    apply_overrides(c, &cfg, 0);
    study_log(c, "teacher: training %s\n", c->st.teacher_config);
    double t0 = cr_now();
    cr_fit_opts fo = {.out_dir = dir, .dist = c->o->dist, /* the teacher: data-parallel */
                      .log = c->o->progress}; /* its progress and evaluations */
    cr_status s = cr_rank_fit(&cfg, &fo, NULL, e);
    cr_rank_config_free(&cfg);
    if (s) {
        cr_err_prefix(e, "teacher %s", c->st.teacher_config);
        return s;
    }
    study_log(c, "teacher: trained in %.1f s\n", cr_now() - t0);
    return study_stamp_write(dir, key, e);
}

/* The one call into labelling: the teacher scores every target row through
 * the map, its columns are appended, and the coverage report is kept. */
static cr_status label_target(study_ctx *c, cr_error *e) {
    char dir[1024], cov[1100];
    snprintf(dir, sizeof dir, "%s/data", c->o->out_dir);
    CR_TRY(cr_mkdirs(dir, e));
    snprintf(c->labelled, sizeof c->labelled, "%s/labelled.csv", dir);
    snprintf(cov, sizeof cov, "%s/coverage.json", dir);
    uint64_t key = file_key(c->teacher_path) ^ study_text_key(c->st.map) * 5 ^ file_key(c->st.target) * 7;
    for (int i = 0; i < c->o->n_map_default; i++)
        key ^= cr_hash64(c->o->map_default[i], strlen(c->o->map_default[i])) * (11 + 2 * (uint64_t)i);
    if (!study_stamp_ok(c, dir, key, "labelled.csv")) {
        study_log(c, "labelling %s with the teacher\n", c->st.target);
        cr_label_opts lo = {.teacher = c->teacher_path, .map = c->st.map, .data = c->st.target,
                            .out = c->labelled, .coverage = cov, .dist = c->o->dist,
                            .force_default = c->o->map_default,
                            .n_force_default = c->o->n_map_default};
        job_threads(c, 0); /* labelling has no config of its own */
        CR_TRY(cr_distill_label(&lo, NULL, e));
        CR_TRY(study_stamp_write(dir, key, e));
    } else {
        study_log(c, "labels: reusing %s\n", c->labelled);
    }
    char *txt = NULL;
    size_t n;
    if (cr_read_file(cov, &txt, &n, e) == CR_OK) {
        c->coverage = cJSON_Parse(txt);
        cr_free(txt);
    }
    return CR_OK;
}

/* ---- data fractions ----------------------------------------------------------------
 * Each fraction's file holds every labelled row of valid and test and the
 * training rows of a `fraction` share of training requests, plus a
 * study_split column fixing the split of the full data, so a time split is
 * not recomputed on fewer rows. A request is kept when a hash of (seed, its
 * id) falls below the fraction: a smaller fraction keeps a subset. */

static double keep_u(uint64_t seed, const char *id, size_t len) {
    uint64_t h = cr_hash64(id, len) ^ (seed * 0x9E3779B97F4A7C15ULL);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (double)(h >> 11) / 9007199254740992.0;
}

static cr_status write_fractions(study_ctx *c, cr_error *e) {
    static const char *const names[3] = {"train", "valid", "test"};
    cr_rank_config cfg;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    CR_TRY(cr_rank_config_load(&cfg, c->st.students[0].config, e));
    if (snprintf(cfg.data.path, sizeof cfg.data.path, "%s", c->labelled) >= (int)sizeof cfg.data.path) {
        cr_rank_config_free(&cfg);
        return cr_err(e, CR_ERR_LIMIT, "%s: path too long", c->labelled);
    }
    cr_status s = cr_dataset_load(&ds, &cfg.schema, &cfg.data, 1, e);
    if (s) {
        cr_err_prefix(e, "splitting the labelled target data with %s's data section",
                      c->st.students[0].name);
        goto done;
    }
    for (int f = 0; f < c->st.n_fracs; f++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/data", c->o->out_dir);
        snprintf(c->frac_path[f], sizeof c->frac_path[f], "%s/target_f%g.csv", dir,
                 c->st.fractions[f]);
        cr_csv *in = NULL;
        cr_csv_writer *w = NULL;
        if ((s = cr_csv_open(&in, c->labelled, 0, e))) goto done;
        int NC = cr_csv_ncols(in), gcol = cfg.data.group_column[0] ? cr_csv_find(in, cfg.data.group_column) : -1;
        const char **fields = malloc((size_t)(NC + 1) * sizeof(char *));
        if (!fields) {
            cr_csv_close(in);
            s = cr_err(e, CR_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int k = 0; k < NC; k++) fields[k] = cr_csv_colname(in, k);
        fields[NC] = "study_split";
        s = cr_csv_writer_open(&w, c->frac_path[f], ',', e);
        if (!s) s = cr_csv_write_row(w, NC + 1, fields, e);
        int64_t row = 0, kept = 0;
        for (;;) {
            int end;
            if (s || (s = cr_csv_next(in, &end, e)) || end) break;
            if (row >= ds.n) {
                s = cr_err(e, CR_ERR_INTERNAL, "%s has more rows than were loaded", c->labelled);
                break;
            }
            int sp = ds.split[row];
            char idx[32];
            size_t len;
            const char *id = gcol >= 0 ? cr_csv_field(in, gcol, &len) : idx;
            if (gcol < 0) len = (size_t)snprintf(idx, sizeof idx, "%lld", (long long)row);
            int keep = sp != CR_SPLIT_TRAIN || c->st.fractions[f] >= 1.0 ||
                       keep_u(c->st.keep_seed, id, len) < c->st.fractions[f];
            row++;
            if (!keep) continue;
            kept += sp == CR_SPLIT_TRAIN;
            for (int k = 0; k < NC; k++) fields[k] = cr_csv_field(in, k, NULL);
            fields[NC] = names[sp];
            s = cr_csv_write_row(w, NC + 1, fields, e);
        }
        free(fields);
        cr_csv_close(in);
        if (s) {
            if (w) cr_csv_writer_abort(w);
            goto done;
        }
        if ((s = cr_csv_writer_commit(w, e))) goto done;
        c->train_rows[f] = kept;
        /* by content: the file is rewritten on every run, with the same bytes */
        c->frac_key[f] = study_text_key(c->frac_path[f]);
        study_log(c, "fraction %g: %lld of %lld training rows -> %s\n", c->st.fractions[f],
                  (long long)kept, (long long)ds.n_split[0], c->frac_path[f]);
    }
    for (int k = 0; k < 3; k++) c->split_rows[k] = ds.n_split[k];
done:
    cr_dataset_free(&ds);
    cr_rank_config_free(&cfg);
    return s;
}

/* ---- one student's variants -------------------------------------------------------- */

/* The distill section a technique means for a student. */
static void build_distill(const study_student *st, int tech, cr_distill_cfg *d) {
    memset(d, 0, sizeof *d);
    if (tech == CR_STUDY_NEW) {
        d->n_new = st->n_new;
        memcpy(d->new_heads, st->new_heads, (size_t)st->n_new * sizeof d->new_heads[0]);
        return;
    }
    if (tech == CR_STUDY_NONE) return;
    for (int i = 0; i < st->n_tasks; i++) {
        const study_task *t = &st->tasks[i];
        cr_distill_task *x = &d->tasks[d->n_tasks++];
        memset(x, 0, sizeof *x);
        snprintf(x->task, sizeof x->task, "%s", t->task);
        snprintf(x->column, sizeof x->column, "%s", t->column);
        x->weight = t->weight;
        x->lambda = t->lambda;
        x->mask = CR_DISTILL_MASK_AUTO;
        x->technique = tech == CR_STUDY_SOFT ? CR_DISTILL_SOFT_LABEL : CR_DISTILL_AUX_HEAD;
        /* tempering needs a logit; a task without one keeps the plain aux head */
        if (tech == CR_STUDY_TEMPERED && t->logit_column[0]) {
            x->technique = CR_DISTILL_AUX_TEMPERED;
            x->temperature = t->temperature;
            snprintf(x->column, sizeof x->column, "%s", t->logit_column);
        }
        snprintf(x->head, sizeof x->head, "%.40s_%s", t->task,
                 x->technique == CR_DISTILL_AUX_TEMPERED ? "tempered" : "distill");
    }
}

/* Load the student's config for one variant: the fraction's data, the split
 * column, the variant's heads and the study's overrides. */
cr_status study_variant_config(const study_ctx *c, int si, int f, int tech, uint64_t seed,
                               cr_rank_config *cfg, cr_error *e) {
    const study_student *st = &c->st.students[si];
    CR_TRY(cr_rank_config_load(cfg, st->config, e));
    if (cfg->distill.n_tasks || cfg->distill.n_new) {
        cr_rank_config_free(cfg);
        return cr_err(e, CR_ERR_CONFIG, "%s: a student's config must not have a distill section; "
                      "the study adds one per technique", st->config);
    }
    if (snprintf(cfg->data.path, sizeof cfg->data.path, "%s", c->frac_path[f]) >= (int)sizeof cfg->data.path) {
        cr_rank_config_free(cfg);
        return cr_err(e, CR_ERR_LIMIT, "%s: path too long", c->frac_path[f]);
    }
    cfg->data.split = CR_SPLIT_COLUMN;
    snprintf(cfg->data.split_column, sizeof cfg->data.split_column, "study_split");
    apply_overrides(c, cfg, 1);
    study_apply_setting(c, si, cfg);
    cfg->train.seed = seed;
    build_distill(st, tech, &cfg->distill);
    cr_status s = cr_distill_apply(&cfg->distill, &cfg->schema, &cfg->data, &cfg->model, e);
    if (s) {
        cr_rank_config_free(cfg);
        cr_err_prefix(e, "student %s, %s", st->name, cr_study_tech_names[tech]);
        return s;
    }
    return CR_OK;
}

/* Train (or reuse) one run, then (r != NULL) score the test split with
 * its model. */
static cr_status run_one(study_ctx *c, int si, int f, int v, int sd, student_res *r,
                         cr_error *e) {
    const study_student *st = &c->st.students[si];
    int tech = st->tech[v];
    uint64_t seed = c->st.seeds[sd];
    cr_rank_config cfg;
    CR_TRY(study_variant_config(c, si, f, tech, seed, &cfg, e));
    char dir[1400];
    snprintf(dir, sizeof dir, "%s/runs/%s/%s/f%g/seed%llu", c->o->out_dir, st->name,
             cr_study_tech_names[tech], c->st.fractions[f], (unsigned long long)seed);
    if (r)
        snprintf(r->dir[RUN_IDX(r, f, v, sd)], sizeof r->dir[0], "runs/%s/%s/f%g/seed%llu",
                 st->name, cr_study_tech_names[tech], c->st.fractions[f], (unsigned long long)seed);
    char desc[600];
    int dn = snprintf(desc, sizeof desc, "%s|%d|%g|%llu|%d|%lld|%d|%g|%g", st->config, tech,
                      c->st.fractions[f], (unsigned long long)seed, c->st.epochs,
                      (long long)c->st.max_steps, cfg.model.n_heads, c->lr[si], c->width[si]);
    uint64_t key = cr_hash64(desc, (size_t)dn) ^ study_text_key(st->config) * 3 ^
                   c->frac_key[f] * 5 ^ study_text_key(c->st.path) * 7;
    cr_status s = CR_OK;
    c->run_no++;
    cr_progress_info pi = {"experiment", c->run_no - 1, c->n_runs, "runs", cr_now() - c->t_start, NAN};
    if (cr_ctx_poll(c->o->ctx, &pi)) {
        s = cr_err(e, CR_ERR_CANCELLED, "the study was cancelled before run %d of %d; finished "
                   "runs are kept and reused by the next call", c->run_no, c->n_runs);
        goto done;
    }
    if (study_stamp_ok(c, dir, key, "metrics.json")) {
        study_log(c, "[%d/%d] %s %s fraction %g seed %llu: reusing %s\n", c->run_no, c->n_runs,
                  st->name, cr_study_tech_names[tech], c->st.fractions[f],
                  (unsigned long long)seed, dir);
    } else {
        double t0 = cr_now();
        cr_fit_opts fo = {.out_dir = dir}; /* a run: one rank alone */
        char *metrics = NULL;
        s = cr_rank_fit(&cfg, &fo, &metrics, e);
        if (s) {
            cr_err_prefix(e, "student %s, %s, fraction %g, seed %llu", st->name,
                          cr_study_tech_names[tech], c->st.fractions[f], (unsigned long long)seed);
            goto done;
        }
        cJSON *mj = cJSON_Parse(metrics);
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(mj, "train"), "steps");
        double took = cr_now() - t0;
        c->trained++;
        c->train_secs += took;
        /* eta: the trained runs' mean time for every run still to come */
        char eta[32];
        cr_meter_clock(eta, sizeof eta, c->train_secs / c->trained * (c->n_runs - c->run_no));
        study_log(c, "[%d/%d] %s %s fraction %g seed %llu: %g steps, %.1f s | eta %s\n",
                  c->run_no, c->n_runs, st->name, cr_study_tech_names[tech], c->st.fractions[f],
                  (unsigned long long)seed, cJSON_IsNumber(steps) ? steps->valuedouble : NAN,
                  took, eta);
        cJSON_Delete(mj);
        free(metrics);
        if ((s = study_stamp_write(dir, key, e))) goto done;
    }
    if (r) s = study_score_run(c, si, f, v, sd, &cfg, dir, r, e);
done:
    cr_rank_config_free(&cfg);
    return s;
}

cr_status cr_experiment_run(const cr_experiment_opts *o, char **results, cr_error *e) {
    study_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    if (results) *results = NULL;
    if (!o || !o->config || !o->out_dir)
        return cr_err(e, CR_ERR_ARG, "experiment: a study config and an output directory are required");
    if (!o->target && !o->teacher_model && cr_sweep_present(o->config))
        return cr_sweep_run(o, results, e);
    CR_TRY(study_load(&c.st, o->config, e));
    if (o->target) snprintf(c.st.target, sizeof c.st.target, "%s", o->target);
    if (o->teacher_model) {
        snprintf(c.st.teacher_model, sizeof c.st.teacher_model, "%s", o->teacher_model);
        c.st.teacher_config[0] = 0;
    }
    CR_TRY(cr_mkdirs(o->out_dir, e));
    double t0 = cr_now();
    c.t_start = t0;
    student_res res[CR_STUDY_MAX_STUDENTS];
    memset(res, 0, sizeof res);
    cr_status s;
    double ts = t0;
    if ((s = study_check_controls(&c.st, e))) goto done;
    if ((s = get_teacher(&c, e))) goto done;
    c.stage[0] = cr_now() - ts;
    ts = cr_now();
    if ((s = label_target(&c, e))) goto done;
    if ((s = write_fractions(&c, e))) goto done;
    c.stage[1] = cr_now() - ts;
    ts = cr_now();
    /* the control's setting first: every run of a student uses the pick.
     * Under a job rank 0 searches and the others then reuse its runs. */
    {
        int P = cr_dist_size(o->dist), me = cr_dist_rank(o->dist);
        if (P > 1 && me != 0) {
            if ((s = cr_dist_barrier(o->dist, e))) goto done;
            c.reuse_all = 1;
        }
        for (int si = 0; si < c.st.n_students; si++)
            if ((s = study_tune(&c, si, e))) goto done;
        c.reuse_all = 0;
        if (P > 1 && me == 0 && (s = cr_dist_barrier(o->dist, e))) goto done;
    }
    c.stage[4] = cr_now() - ts;
    ts = cr_now();
    for (int si = 0; si < c.st.n_students; si++)
        c.n_runs += c.st.n_fracs * c.st.students[si].n_tech * c.st.n_seeds;
    if (cr_dist_size(o->dist) > 1) {
        /* The runs are independent: rank r trains runs r, r + P, ... alone,
         * then rank 0 collects them all as reusable runs (this needs the
         * study directory on a file system every rank shares). */
        int P = cr_dist_size(o->dist), me = cr_dist_rank(o->dist), i = 0;
        for (int si = 0; si < c.st.n_students; si++) {
            const study_student *st = &c.st.students[si];
            for (int f = 0; f < c.st.n_fracs; f++)
                for (int v = 0; v < st->n_tech; v++)
                    for (int sd = 0; sd < c.st.n_seeds; sd++, i++)
                        if (i % P == me && (s = run_one(&c, si, f, v, sd, NULL, e))) goto done;
        }
        if ((s = cr_dist_barrier(o->dist, e))) goto done;
        if (me != 0) goto done;
        c.reuse_all = 1;
        c.run_no = 0;
    }
    for (int si = 0; si < c.st.n_students; si++) {
        if ((s = study_reference(&c, si, &res[si], e))) goto done;
        const study_student *st = &c.st.students[si];
        for (int f = 0; f < c.st.n_fracs; f++)
            for (int v = 0; v < st->n_tech; v++)
                for (int sd = 0; sd < c.st.n_seeds; sd++)
                    if ((s = run_one(&c, si, f, v, sd, &res[si], e))) goto done;
    }
    c.stage[2] = cr_now() - ts;
    study_log(&c, "comparing: paired t-tests over %d seeds, %d bootstrap resamples of test "
              "requests\n", c.st.n_seeds, c.st.resamples);
    char *txt = NULL;
    if ((s = study_results_json(&c, res, t0, &txt, e))) goto done;
    char path[1200];
    snprintf(path, sizeof path, "%s/results.json", o->out_dir);
    if (!(s = cr_write_file_atomic(path, txt, strlen(txt), e))) {
        snprintf(path, sizeof path, "%s/report.html", o->out_dir);
        s = cr_experiment_report_html(txt, path, e);
    }
    if (!s) study_log(&c, "wrote %s/results.json and %s/report.html (%.1f s)\n", o->out_dir,
                      o->out_dir, cr_now() - t0);
    if (!s && results) *results = txt;
    else free(txt);
done:
    for (int si = 0; si < CR_STUDY_MAX_STUDENTS; si++) {
        student_res_free(&res[si]);
        cJSON_Delete(c.tune_json[si]);
    }
    cJSON_Delete(c.coverage);
    return s;
}
