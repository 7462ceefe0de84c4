/*
 * distill_map.c - reads and checks the teacher-to-target map file. Every
 * mistake a map can hold (a typo in a feature, a head or a column, a
 * feature left out or mapped twice) must be caught here, before a single
 * row is labelled, and named with the map's file:line:col.
 */
#include "distill_map.h"

#include "../core/yaml.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const cr_map_source_names[] = {"column", "constant", "default", NULL};
const char *const cr_map_form_names[] = {"probability", "logit", "value", NULL};

static const char *const top_keys[] = {"features", "teacher_tasks", NULL};
static const char *const feat_keys[] = {"feature", "column", "constant", "default", NULL};
static const char *const task_keys[] = {"name", "head", "form", NULL};

static cr_status parse_feature(cr_distill_map *m, const cr_yaml_node *n, const char *path,
                               cr_error *e) {
    cr_map_feature *f = &m->features[m->n_features];
    memset(f, 0, sizeof *f);
    f->teacher_feature = f->csv_col = -1;
    CR_TRY(cr_yaml_expect(n, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(n, feat_keys, path, e));
    CR_TRY(cr_yaml_str(n, "feature", path, 1, NULL, f->feature, sizeof f->feature, e));
    const cr_yaml_node *fn = cr_yaml_get(n, "feature");
    f->line = fn->line;
    f->col = fn->col;
    int given = 0;
    const cr_yaml_node *v = NULL;
    for (int s = 0; s < 3; s++) {
        const cr_yaml_node *x = cr_yaml_get(n, cr_map_source_names[s]);
        if (!x || cr_yaml_is_null(x)) continue;
        if (given++)
            return cr_yaml_err(e, CR_ERR_CONFIG, x, path,
                               "feature '%s': give exactly one of column, constant or default",
                               f->feature);
        f->source = (cr_map_source)s;
        v = x;
    }
    if (!given)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, path,
                           "feature '%s': give one of column, constant or default: true",
                           f->feature);
    f->vline = v->line;
    f->vcol = v->col;
    char kp[160];
    cr_yaml_path_key(kp, sizeof kp, path, cr_map_source_names[f->source]);
    if (f->source == CR_MAP_DEFAULT) {
        int yes;
        CR_TRY(cr_yaml_as_bool(v, kp, &yes, e));
        if (!yes)
            return cr_yaml_err(e, CR_ERR_CONFIG, v, kp,
                               "only 'default: true' means something; map the feature to a "
                               "column or a constant instead");
    } else {
        CR_TRY(cr_yaml_as_str(v, kp, f->value, sizeof f->value, e));
        if (f->source == CR_MAP_COLUMN && !f->value[0])
            return cr_yaml_err(e, CR_ERR_CONFIG, v, kp, "expected a column name, got ''");
    }
    return CR_OK;
}

static cr_status parse_task(cr_distill_map *m, const cr_yaml_node *n, const char *path,
                            cr_error *e) {
    cr_map_task *t = &m->tasks[m->n_tasks];
    memset(t, 0, sizeof *t);
    t->teacher_head = -1;
    CR_TRY(cr_yaml_expect(n, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(n, task_keys, path, e));
    CR_TRY(cr_yaml_str(n, "name", path, 1, NULL, t->name, sizeof t->name, e));
    CR_TRY(cr_yaml_str(n, "head", path, 0, t->name, t->head, sizeof t->head, e));
    const cr_yaml_node *nn = cr_yaml_get(n, "name"), *hn = cr_yaml_get(n, "head");
    if (!hn) hn = nn;
    t->line = nn->line;
    t->col = nn->col;
    t->hline = hn->line;
    t->hcol = hn->col;
    if (!t->name[0])
        return cr_yaml_err(e, CR_ERR_CONFIG, nn, path, "name: expected a column name, got ''");
    const cr_yaml_node *fm = cr_yaml_get(n, "form");
    t->form_given = fm && !cr_yaml_is_null(fm);
    int form;
    CR_TRY(cr_yaml_enum(n, "form", path, 0, 0, cr_map_form_names, &form, e));
    t->form = (cr_map_form)form;
    return CR_OK;
}

cr_status cr_distill_map_load(cr_distill_map *m, const char *path, cr_error *e) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    cr_yaml_doc *doc = NULL;
    CR_TRY(cr_yaml_load(&doc, path, e));
    const cr_yaml_node *root = cr_yaml_root(doc), *fs, *ts;
    cr_status s;
    if ((s = cr_yaml_expect(root, CR_YAML_MAP, "", e))) goto fail;
    if ((s = cr_yaml_check_keys(root, top_keys, "", e))) goto fail;
    fs = cr_yaml_get(root, "features");
    ts = cr_yaml_get(root, "teacher_tasks");
    if (!fs || !ts) {
        s = cr_yaml_err(e, CR_ERR_CONFIG, root, "", "missing required key '%s'",
                        fs ? "teacher_tasks" : "features");
        goto fail;
    }
    if ((s = cr_yaml_expect(fs, CR_YAML_SEQ, "features", e))) goto fail;
    if ((s = cr_yaml_expect(ts, CR_YAML_SEQ, "teacher_tasks", e))) goto fail;
    m->line = fs->line;
    m->col = fs->col;
    if (ts->n < 1 || ts->n > CR_MODEL_MAX_HEADS) {
        s = cr_yaml_err(e, CR_ERR_CONFIG, ts, "teacher_tasks", "%d entries, expected 1 to %d",
                        ts->n, CR_MODEL_MAX_HEADS);
        goto fail;
    }
    m->features = calloc((size_t)fs->n + 1, sizeof *m->features);
    m->tasks = calloc((size_t)ts->n, sizeof *m->tasks);
    if (!m->features || !m->tasks) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory reading %s", path);
        goto fail;
    }
    for (int i = 0; i < fs->n; i++, m->n_features++) {
        char ip[64];
        cr_yaml_path_index(ip, sizeof ip, "features", i);
        if ((s = parse_feature(m, fs->items[i], ip, e))) goto fail;
    }
    for (int i = 0; i < ts->n; i++, m->n_tasks++) {
        char ip[64];
        cr_yaml_path_index(ip, sizeof ip, "teacher_tasks", i);
        if ((s = parse_task(m, ts->items[i], ip, e))) goto fail;
    }
    cr_yaml_free(doc);
    return CR_OK;
fail:
    cr_yaml_free(doc);
    cr_distill_map_free(m);
    return s;
}

void cr_distill_map_free(cr_distill_map *m) {
    free(m->features);
    free(m->tasks);
    m->features = NULL;
    m->tasks = NULL;
    m->n_features = m->n_tasks = 0;
}

/* "<map>:<line>:<col>: <message>" */
static cr_status at(cr_error *e, const cr_distill_map *m, int line, int col, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
static cr_status at(cr_error *e, const cr_distill_map *m, int line, int col, const char *fmt,
                    ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cr_err(e, CR_ERR_CONFIG, "%s:%d:%d: %s", m->path, line, col, msg);
}

cr_status cr_distill_map_bind(cr_distill_map *m, const cr_schema *t, const cr_model_cfg *tc,
                              const char *tpath, const cr_csv *data, cr_error *e) {
    int *seen = calloc((size_t)t->n_features + 1, sizeof(int));
    if (!seen) return cr_err(e, CR_ERR_NOMEM, "out of memory checking %s", m->path);
    cr_status s = CR_OK;
    for (int i = 0; i < m->n_features && !s; i++) {
        cr_map_feature *f = &m->features[i];
        f->teacher_feature = -1;
        for (int j = 0; j < t->n_features; j++)
            if (!strcmp(t->features[j].name, f->feature)) f->teacher_feature = j;
        if (f->teacher_feature < 0) {
            s = at(e, m, f->line, f->col, "features[%d]: the teacher %s has no feature '%s'", i,
                   tpath, f->feature);
            break;
        }
        if (seen[f->teacher_feature]) {
            s = at(e, m, f->line, f->col, "features[%d]: teacher feature '%s' is mapped twice "
                   "(also features[%d])", i, f->feature, seen[f->teacher_feature] - 1);
            break;
        }
        seen[f->teacher_feature] = i + 1;
        f->csv_col = -1;
        if (f->source == CR_MAP_COLUMN && data) {
            f->csv_col = cr_csv_find(data, f->value);
            if (f->csv_col < 0)
                s = at(e, m, f->vline, f->vcol, "features[%d].column: the data %s has no column "
                       "'%s' (for teacher feature '%s')", i, cr_csv_path(data), f->value,
                       f->feature);
        }
    }
    for (int j = 0; j < t->n_features && !s; j++)
        if (!seen[j])
            s = at(e, m, m->line, m->col, "features: teacher feature '%s' is not mapped; add "
                   "{feature: %s, column: ...}, {feature: %s, constant: ...} or "
                   "{feature: %s, default: true}", t->features[j].name, t->features[j].name,
                   t->features[j].name, t->features[j].name);
    free(seen);
    for (int i = 0; i < m->n_tasks && !s; i++) {
        cr_map_task *k = &m->tasks[i];
        k->teacher_head = -1;
        for (int h = 0; h < tc->n_heads; h++)
            if (!strcmp(tc->heads[h].name, k->head)) k->teacher_head = h;
        if (k->teacher_head < 0) {
            char list[512] = "";
            size_t o = 0;
            for (int h = 0; h < tc->n_heads && o < sizeof list - 70; h++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", h ? ", " : "",
                                      tc->heads[h].name);
            s = at(e, m, k->hline, k->hcol, "teacher_tasks[%d].head: the teacher %s has no head "
                   "'%s' (it has: %s)", i, tpath, k->head, list);
            break;
        }
        int binary = tc->heads[k->teacher_head].kind == CR_HEAD_BINARY;
        if (!k->form_given) k->form = binary ? CR_FORM_PROBABILITY : CR_FORM_VALUE;
        if (binary == (k->form == CR_FORM_VALUE))
            s = at(e, m, k->hline, k->hcol, "teacher_tasks[%d]: form %s does not fit head '%s', "
                   "a %s head (use %s)", i, cr_map_form_names[k->form], k->head,
                   binary ? "binary" : "regression",
                   binary ? "probability or logit" : "value");
        for (int j = 0; j < i && !s; j++)
            if (!strcmp(m->tasks[j].name, k->name))
                s = at(e, m, k->line, k->col, "teacher_tasks[%d]: output column '%s' is named "
                       "twice", i, k->name);
        if (!s && data && cr_csv_find(data, k->name) >= 0)
            s = at(e, m, k->line, k->col, "teacher_tasks[%d]: output column '%s' is already a "
                   "column of %s; choose another name", i, k->name, cr_csv_path(data));
    }
    return s;
}
