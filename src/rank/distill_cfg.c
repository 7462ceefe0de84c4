/*
 * distill_cfg.c - reads the `distill:` section of a student's job and turns
 * it into never-served heads (or a blended served target) of the model
 * config. It may add heads and data columns but must never change which
 * heads are served or what they compute at serving time.
 */
#include "distill_cfg.h"

#include <math.h>
#include <string.h>

const char *const cr_distill_technique_names[] = {"none", "aux_head", "soft_label",
                                                  "aux_head_tempered", NULL};
static const char *const mask_names[] = {"auto", "task", "none", NULL};
static const char *const task_keys[] = {"task",   "technique", "column",      "head",
                                        "weight", "lambda",    "temperature", "mask", NULL};
static const char *const new_keys[] = {"name", "column", "kind", "weight", "tower", "mask", NULL};

static int task_index(const cr_schema *s, const char *name) {
    for (int k = 0; k < s->n_tasks; k++)
        if (!strcmp(s->tasks[k].name, name)) return k;
    return -1;
}

/* Which optional keys each technique takes; the rest are errors, so a
 * `lambda` under aux_head is not silently ignored. */
static int key_applies(cr_distill_technique t, const char *key) {
    if (!strcmp(key, "task") || !strcmp(key, "technique")) return 1;
    if (t == CR_DISTILL_NONE) return 0;
    if (!strcmp(key, "column")) return 1;
    if (t == CR_DISTILL_SOFT_LABEL) return !strcmp(key, "lambda");
    if (!strcmp(key, "head") || !strcmp(key, "weight") || !strcmp(key, "mask")) return 1;
    return t == CR_DISTILL_AUX_TEMPERED && !strcmp(key, "temperature");
}

static cr_status parse_task(const cr_yaml_node *m, const char *path, const cr_schema *s,
                            cr_distill_cfg *d, cr_error *e) {
    cr_distill_task *t = &d->tasks[d->n_tasks];
    memset(t, 0, sizeof *t);
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(m, task_keys, path, e));
    CR_TRY(cr_yaml_str(m, "task", path, 1, NULL, t->task, sizeof t->task, e));
    int k = task_index(s, t->task);
    if (k < 0)
        return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(m, "task"), path,
                           "'%s' is not a task of this job", t->task);
    int tech;
    CR_TRY(cr_yaml_enum(m, "technique", path, 1, 0, cr_distill_technique_names, &tech, e));
    t->technique = (cr_distill_technique)tech;
    for (int i = 0; i < m->n; i++)
        if (!key_applies(t->technique, m->keys[i]->value))
            return cr_yaml_err(e, CR_ERR_CONFIG, m->keys[i], path,
                               "'%s' does not apply to technique %s", m->keys[i]->value,
                               cr_distill_technique_names[tech]);
    if (t->technique == CR_DISTILL_NONE) return CR_OK;
    CR_TRY(cr_yaml_str(m, "column", path, 1, NULL, t->column, sizeof t->column, e));
    if (!t->column[0])
        return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(m, "column"), path,
                           "column: expected the teacher's column, got an empty string");
    const cr_task *st = &s->tasks[k];
    if (t->technique == CR_DISTILL_AUX_TEMPERED && st->kind != CR_TASK_BINARY)
        return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(m, "technique"), path,
                           "aux_head_tempered needs a binary task; '%s' is a regression",
                           t->task);
    double v;
    CR_TRY(cr_yaml_double(m, "weight", path, 0, 0.5, 0, 1e6, &v, e));
    t->weight = (float)v;
    CR_TRY(cr_yaml_double(m, "lambda", path, 0, 0.5, 0, 1, &v, e));
    t->lambda = (float)v;
    CR_TRY(cr_yaml_double(m, "temperature", path, 0, 2.0, 1e-3, 1000, &v, e));
    t->temperature = t->technique == CR_DISTILL_AUX_TEMPERED ? (float)v : 0.0f;
    int mk;
    CR_TRY(cr_yaml_enum(m, "mask", path, 0, 0, mask_names, &mk, e));
    t->mask = (cr_distill_mask)mk;
    char def[64];
    snprintf(def, sizeof def, "%.40s_%s", t->task,
             t->technique == CR_DISTILL_AUX_TEMPERED ? "tempered" : "distill");
    CR_TRY(cr_yaml_str(m, "head", path, 0, def, t->head, sizeof t->head, e));
    for (int j = 0; j < d->n_tasks; j++) {
        const cr_distill_task *o = &d->tasks[j];
        if (t->technique == CR_DISTILL_SOFT_LABEL && o->technique == CR_DISTILL_SOFT_LABEL &&
            !strcmp(o->task, t->task))
            return cr_yaml_err(e, CR_ERR_CONFIG, m, path,
                               "task '%s' has two soft_label entries; its served target can "
                               "blend in one teacher column", t->task);
    }
    return CR_OK;
}

static cr_status parse_new(const cr_yaml_node *m, const char *path, const cr_schema *s,
                           cr_distill_cfg *d, cr_error *e) {
    cr_distill_new_head *h = &d->new_heads[d->n_new];
    memset(h, 0, sizeof *h);
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(m, new_keys, path, e));
    CR_TRY(cr_yaml_str(m, "name", path, 1, NULL, h->name, sizeof h->name, e));
    CR_TRY(cr_yaml_str(m, "column", path, 0, h->name, h->column, sizeof h->column, e));
    int kind;
    CR_TRY(cr_yaml_enum(m, "kind", path, 0, 0, cr_task_kind_names, &kind, e));
    h->kind = kind == CR_TASK_BINARY ? CR_HEAD_BINARY : CR_HEAD_REGRESSION;
    double v;
    CR_TRY(cr_yaml_double(m, "weight", path, 0, 0.5, 0, 1e6, &v, e));
    h->weight = (float)v;
    CR_TRY(cr_yaml_str(m, "tower", path, 1, NULL, h->tower, sizeof h->tower, e));
    if (task_index(s, h->tower) < 0)
        return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(m, "tower"), path,
                           "tower '%s' is not a task of this job", h->tower);
    CR_TRY(cr_yaml_str(m, "mask", path, 0, "", h->mask, sizeof h->mask, e));
    if (h->mask[0] && task_index(s, h->mask) < 0)
        return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(m, "mask"), path,
                           "mask '%s' is not a task of this job", h->mask);
    return CR_OK;
}

cr_status cr_distill_cfg_parse(const cr_yaml_node *root, const cr_schema *s, cr_distill_cfg *d,
                               cr_error *e) {
    memset(d, 0, sizeof *d);
    const cr_yaml_node *n = cr_yaml_get(root, "distill");
    if (!n || cr_yaml_is_null(n)) return CR_OK;
    static const char *const keys[] = {"tasks", "new_heads", NULL};
    CR_TRY(cr_yaml_expect(n, CR_YAML_MAP, "distill", e));
    CR_TRY(cr_yaml_check_keys(n, keys, "distill", e));
    static const char *const lists[2] = {"tasks", "new_heads"};
    for (int l = 0; l < 2; l++) {
        const cr_yaml_node *seq = cr_yaml_get(n, lists[l]);
        char path[160];
        if (!seq || cr_yaml_is_null(seq)) continue;
        cr_yaml_path_key(path, sizeof path, "distill", lists[l]);
        CR_TRY(cr_yaml_expect(seq, CR_YAML_SEQ, path, e));
        if (seq->n > CR_DISTILL_MAX)
            return cr_yaml_err(e, CR_ERR_LIMIT, seq, path, "%d entries, at most %d", seq->n,
                               CR_DISTILL_MAX);
        for (int i = 0; i < seq->n; i++) {
            char ip[160];
            cr_yaml_path_index(ip, sizeof ip, path, i);
            if (l == 0) {
                CR_TRY(parse_task(seq->items[i], ip, s, d, e));
                d->n_tasks++;
            } else {
                CR_TRY(parse_new(seq->items[i], ip, s, d, e));
                d->n_new++;
            }
        }
    }
    /* Heads share one namespace with the served ones: check here, where a
     * position can be given, rather than when the model is built. */
    cr_model_cfg probe;
    cr_model_cfg_default_heads(&probe, s);
    cr_data_cfg dc;
    memset(&dc, 0, sizeof dc);
    cr_error pe = {0};
    cr_status st = cr_distill_apply(d, s, &dc, &probe, &pe);
    if (st) return cr_yaml_err(e, st, n, "distill", "%s", pe.msg);
    return CR_OK;
}

/* Index of column in data->extra, appending it if absent. */
static cr_status extra_col(cr_data_cfg *data, const char *col, int *idx, cr_error *e) {
    for (int i = 0; i < data->n_extra; i++)
        if (!strcmp(data->extra[i], col)) {
            *idx = i;
            return CR_OK;
        }
    if (data->n_extra >= 16)
        return cr_err(e, CR_ERR_LIMIT, "teacher column '%s' would be data.extra's 17th column; "
                      "at most 16", col);
    snprintf(data->extra[data->n_extra], sizeof data->extra[0], "%s", col);
    *idx = data->n_extra++;
    return CR_OK;
}

static cr_status add_head(cr_model_cfg *m, const cr_head *h, cr_error *e) {
    for (int i = 0; i < m->n_heads; i++)
        if (!strcmp(m->heads[i].name, h->name))
            return cr_err(e, CR_ERR_CONFIG, "head name '%s' is used twice; give the entry a "
                          "different head: name", h->name);
    if (m->n_heads >= CR_MODEL_MAX_HEADS)
        return cr_err(e, CR_ERR_LIMIT, "more than %d heads", CR_MODEL_MAX_HEADS);
    m->heads[m->n_heads++] = *h;
    return CR_OK;
}

cr_status cr_distill_apply(const cr_distill_cfg *d, const cr_schema *s, cr_data_cfg *data,
                           cr_model_cfg *m, cr_error *e) {
    for (int i = 0; i < d->n_tasks; i++) {
        const cr_distill_task *t = &d->tasks[i];
        int k = task_index(s, t->task);
        if (k < 0)
            return cr_err(e, CR_ERR_CONFIG, "distill.tasks[%d]: '%s' is not a task", i, t->task);
        if (t->technique == CR_DISTILL_NONE) continue;
        int col;
        CR_TRY(extra_col(data, t->column, &col, e));
        const cr_task *st = &s->tasks[k];
        if (t->technique == CR_DISTILL_SOFT_LABEL) {
            int found = 0;
            for (int h = 0; h < m->n_heads; h++) {
                cr_head *hd = &m->heads[h];
                if (!hd->served || hd->tower != k || hd->target_kind != CR_TARGET_LABEL) continue;
                hd->blend_extra = col;
                hd->blend_lambda = t->lambda;
                found = 1;
            }
            if (!found)
                return cr_err(e, CR_ERR_CONFIG, "distill.tasks[%d]: task '%s' has no served head "
                              "to blend into", i, t->task);
            continue;
        }
        cr_head h;
        memset(&h, 0, sizeof h);
        snprintf(h.name, sizeof h.name, "%s", t->head);
        h.tower = k;
        h.kind = st->kind == CR_TASK_BINARY ? CR_HEAD_BINARY : CR_HEAD_REGRESSION;
        h.served = 0;
        h.target_kind = CR_TARGET_EXTRA;
        h.target = col;
        /* auto: a task with a mask (like after a click) keeps it; a task
         * defined everywhere has nothing to mask */
        h.mask_task = t->mask == CR_DISTILL_MASK_NONE                         ? -1
                      : t->mask == CR_DISTILL_MASK_TASK || st->mask[0] != 0 ? k
                                                                              : -1;
        h.weight = t->weight;
        h.temperature = t->technique == CR_DISTILL_AUX_TEMPERED ? t->temperature : 0.0f;
        CR_TRY(add_head(m, &h, e));
    }
    for (int i = 0; i < d->n_new; i++) {
        const cr_distill_new_head *n = &d->new_heads[i];
        int k = task_index(s, n->tower), mk = n->mask[0] ? task_index(s, n->mask) : -1;
        if (k < 0 || (n->mask[0] && mk < 0))
            return cr_err(e, CR_ERR_CONFIG, "distill.new_heads[%d]: '%s' is not a task", i,
                          k < 0 ? n->tower : n->mask);
        cr_head h;
        memset(&h, 0, sizeof h);
        snprintf(h.name, sizeof h.name, "%s", n->name);
        h.tower = k;
        h.kind = n->kind;
        h.target_kind = CR_TARGET_EXTRA;
        CR_TRY(extra_col(data, n->column, &h.target, e));
        h.mask_task = mk;
        h.weight = n->weight;
        CR_TRY(add_head(m, &h, e));
    }
    return CR_OK;
}

cr_status cr_distill_check_data(const cr_model_cfg *m, const cr_dataset *ds, cr_error *e) {
    for (int h = 0; h < m->n_heads; h++) {
        const cr_head *hd = &m->heads[h];
        if (hd->kind != CR_HEAD_BINARY) continue;
        int cols[2], nc = 0;
        if (hd->target_kind == CR_TARGET_EXTRA && hd->temperature == 0.0f) cols[nc++] = hd->target;
        if (hd->blend_lambda != 0.0f) cols[nc++] = hd->blend_extra;
        for (int c = 0; c < nc; c++) {
            if (cols[c] < 0 || cols[c] >= ds->n_extra)
                return cr_err(e, CR_ERR_MISMATCH, "head '%s' reads extra column %d; the data "
                              "carries %d", hd->name, cols[c], ds->n_extra);
            const float *x = ds->extra + (size_t)cols[c] * (size_t)ds->n;
            for (int64_t r = 0; r < ds->n; r++)
                if (!(x[r] >= 0.0f && x[r] <= 1.0f))
                    return cr_err(e, CR_ERR_CONFIG,
                                  "column '%s' holds %g at data row %lld; head '%s' learns it "
                                  "as a probability in [0, 1] (a logit column belongs to "
                                  "aux_head_tempered)",
                                  ds->extra_names[cols[c]], (double)x[r], (long long)r + 1,
                                  hd->name);
        }
    }
    return CR_OK;
}
