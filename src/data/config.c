/*
 * config.c - reads the data:, features: and tasks: sections of a job's YAML
 * into a cr_data_cfg and a cr_schema, validating everything it can before a
 * single row is read. Never touches the data file and never fills in a value
 * the user did not write except the documented defaults (docs/config.md).
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const cr_feat_kind_names[] = {"categorical", "multi", "numeric", "bucketized", NULL};
const char *const cr_transform_names[] = {"none", "zscore", "log1p", "log1p_zscore", NULL};
const char *const cr_pooling_names[] = {"sum", "mean", NULL};
const char *const cr_task_kind_names[] = {"binary", "regression", NULL};
const char *const cr_split_kind_names[] = {"time", "fraction", "column", NULL};

static const char *const top_keys[] = {"data",  "features", "tasks",   "model",
                                       "train", "eval",     "distill", "serve", NULL};
static const char *const data_keys[] = {"path",  "sep",    "split",  "group",
                                        "user",  "weight", "slices", "extra", NULL};
static const char *const split_keys[] = {"by", "column", "valid", "test", "seed", NULL};
static const char *const feat_keys[] = {"name",     "type",      "column",    "dim",
                                        "hash_buckets", "min_count", "max_vocab", "sep",
                                        "pooling",  "share",     "transform", "default",
                                        "boundaries", "id_dropout", NULL};
static const char *const task_keys[] = {"name", "type", "label", "mask", "weight", NULL};

#define CR_MAX_DIM 65536

static int is_ident(const char *s) {
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (const char *p = s + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_')) return 0;
    return 1;
}

/* The value node of `key`, or the map itself when absent (for positions). */
static const cr_yaml_node *at(const cr_yaml_node *map, const char *key) {
    const cr_yaml_node *v = cr_yaml_get(map, key);
    return v ? v : map;
}

/* Key node of `key` in map (for "does not apply" messages), or the map. */
static const cr_yaml_node *key_at(const cr_yaml_node *map, const char *key) {
    for (int i = 0; map && map->kind == CR_YAML_MAP && i < map->n; i++)
        if (strcmp(map->keys[i]->value, key) == 0) return map->keys[i];
    return map;
}

cr_status cr_config_name(const cr_yaml_node *m, const char *path, char *out, size_t cap,
                         cr_error *e) {
    char kp[160];
    CR_TRY(cr_yaml_str(m, "name", path, 1, NULL, out, cap, e));
    cr_yaml_path_key(kp, sizeof kp, path, "name");
    if (!is_ident(out))
        return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "name"), kp,
                           "expected a name of letters, digits and '_' not starting with a "
                           "digit, got '%s'", out);
    return CR_OK;
}

/* ---- data: ---------------------------------------------------------------------- */

cr_status cr_config_resolve_path(const cr_yaml_node *n, const char *config_path, const char *rel,
                                 const char *field, char *out, size_t cap, cr_error *e) {
    const char *slash = config_path ? strrchr(config_path, '/') : NULL;
    int w;
    if (rel[0] == '/' || !slash) w = snprintf(out, cap, "%s", rel);
    else w = snprintf(out, cap, "%.*s/%s", (int)(slash - config_path), config_path, rel);
    if (w < 0 || (size_t)w >= cap)
        return cr_yaml_err(e, CR_ERR_LIMIT, n, field, "the resolved path is longer "
                           "than %zu characters", cap - 1);
    return CR_OK;
}

static cr_status parse_split(const cr_yaml_node *sp, cr_data_cfg *d, cr_error *e) {
    int by;
    CR_TRY(cr_yaml_check_keys(sp, split_keys, "data.split", e));
    CR_TRY(cr_yaml_enum(sp, "by", "data.split", 1, 0, cr_split_kind_names, &by, e));
    d->split = (cr_split_kind)by;
    int needs_column = by != CR_SPLIT_FRACTION, has_fracs = by != CR_SPLIT_COLUMN;
    if (needs_column)
        CR_TRY(cr_yaml_str(sp, "column", "data.split", 1, NULL, d->split_column,
                           sizeof d->split_column, e));
    else if (cr_yaml_get(sp, "column"))
        return cr_yaml_err(e, CR_ERR_CONFIG, key_at(sp, "column"), "data.split.column",
                           "only used with by: time or by: column");
    static const char *const frac_keys[] = {"valid", "test"};
    for (int i = 0; i < 2 && !has_fracs; i++)
        if (cr_yaml_get(sp, frac_keys[i]))
            return cr_yaml_err(e, CR_ERR_CONFIG, key_at(sp, frac_keys[i]), "data.split",
                               "'%s' does not apply to by: column (the column decides)",
                               frac_keys[i]);
    if (by != CR_SPLIT_FRACTION && cr_yaml_get(sp, "seed"))
        return cr_yaml_err(e, CR_ERR_CONFIG, key_at(sp, "seed"), "data.split.seed",
                           "only used with by: fraction");
    if (has_fracs) {
        /* [0, 1): a split may be empty but never everything. */
        CR_TRY(cr_yaml_double(sp, "valid", "data.split", 0, 0.1, 0, 1, &d->valid_frac, e));
        CR_TRY(cr_yaml_double(sp, "test", "data.split", 0, 0.1, 0, 1, &d->test_frac, e));
        if (d->valid_frac >= 1)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(sp, "valid"), "data.split.valid",
                               "expected a fraction in [0, 1), got %g", d->valid_frac);
        if (d->test_frac >= 1)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(sp, "test"), "data.split.test",
                               "expected a fraction in [0, 1), got %g", d->test_frac);
        if (d->valid_frac + d->test_frac >= 1)
            return cr_yaml_err(e, CR_ERR_CONFIG, sp, "data.split",
                               "valid + test must be below 1 (leaving rows to train on), "
                               "got %g + %g", d->valid_frac, d->test_frac);
    }
    int64_t seed = 0;
    CR_TRY(cr_yaml_int(sp, "seed", "data.split", 0, 0, 0, INT64_MAX, &seed, e));
    d->split_seed = (uint64_t)seed;
    return CR_OK;
}

static cr_status parse_data(const cr_yaml_node *root, const char *config_path, cr_data_cfg *d,
                            cr_error *e) {
    const cr_yaml_node *m = cr_yaml_get(root, "data");
    char rel[1024], sep[8];
    if (!m) return cr_yaml_err(e, CR_ERR_CONFIG, root, "", "missing required section 'data'");
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, "data", e));
    CR_TRY(cr_yaml_check_keys(m, data_keys, "data", e));
    CR_TRY(cr_yaml_str(m, "path", "data", 1, NULL, rel, sizeof rel, e));
    if (!rel[0]) return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "path"), "data.path",
                                    "expected a file name, got an empty string");
    CR_TRY(cr_config_resolve_path(at(m, "path"), config_path, rel, "data.path", d->path,
                                  sizeof d->path, e));
    CR_TRY(cr_yaml_str(m, "sep", "data", 0, "", sep, sizeof sep, e));
    if (strlen(sep) > 1 || (cr_yaml_get(m, "sep") && !sep[0]) || sep[0] == '"' ||
        sep[0] == '\n' || sep[0] == '\r')
        return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "sep"), "data.sep",
                           "expected one separator character such as ',' or \"\\t\", got '%s'",
                           sep);
    d->sep = sep[0];
    const cr_yaml_node *sp = cr_yaml_get(m, "split");
    if (sp && !cr_yaml_is_null(sp)) {
        CR_TRY(cr_yaml_expect(sp, CR_YAML_MAP, "data.split", e));
        CR_TRY(parse_split(sp, d, e));
    } else {
        d->split = CR_SPLIT_FRACTION;
        d->valid_frac = d->test_frac = 0.1;
    }
    CR_TRY(cr_yaml_str(m, "group", "data", 0, "", d->group_column, sizeof d->group_column, e));
    CR_TRY(cr_yaml_str(m, "user", "data", 0, "", d->user_column, sizeof d->user_column, e));
    CR_TRY(cr_yaml_str(m, "weight", "data", 0, "", d->weight_column, sizeof d->weight_column, e));
    CR_TRY(cr_yaml_strs(m, "slices", "data", 0, &d->slices[0][0], sizeof d->slices[0], 8,
                        &d->n_slices, e));
    CR_TRY(cr_yaml_strs(m, "extra", "data", 0, &d->extra[0][0], sizeof d->extra[0], 16,
                        &d->n_extra, e));
    return CR_OK;
}

/* ---- features: ---------------------------------------------------------------- */

/* Which keys each feature type accepts beyond name, type and column. */
static int key_applies(cr_feat_kind k, int shared, const char *key) {
    static const char *const cat[] = {"dim", "hash_buckets", "min_count", "max_vocab", "share",
                                      "id_dropout", NULL};
    static const char *const multi[] = {"sep", "pooling", NULL};
    static const char *const num[] = {"transform", "default", NULL};
    static const char *const bucket[] = {"boundaries", "dim", NULL};
    if (!strcmp(key, "name") || !strcmp(key, "type") || !strcmp(key, "column")) return 1;
    if (shared && (!strcmp(key, "hash_buckets") || !strcmp(key, "min_count") ||
                   !strcmp(key, "max_vocab")))
        return 0;
    const char *const *lists[2] = {NULL, NULL};
    if (k == CR_FEAT_CATEGORICAL) lists[0] = cat;
    if (k == CR_FEAT_MULTI) lists[0] = cat, lists[1] = multi;
    if (k == CR_FEAT_NUMERIC) lists[0] = num;
    if (k == CR_FEAT_BUCKET) lists[0] = bucket;
    for (int l = 0; l < 2; l++)
        for (int i = 0; lists[l] && lists[l][i]; i++)
            if (!strcmp(lists[l][i], key)) return 1;
    return 0;
}

static cr_status parse_feature(const cr_yaml_node *m, const char *path, cr_feature *fs, int idx,
                               cr_error *e) {
    cr_feature *f = &fs[idx];
    char kp[160], sep[8];
    int kind;
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(m, feat_keys, path, e));
    CR_TRY(cr_config_name(m, path, f->name, sizeof f->name, e));
    for (int j = 0; j < idx; j++)
        if (!strcmp(fs[j].name, f->name))
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "name"), path,
                               "feature name '%s' is used twice (also features[%d])", f->name, j);
    CR_TRY(cr_yaml_enum(m, "type", path, 1, 0, cr_feat_kind_names, &kind, e));
    f->kind = (cr_feat_kind)kind;
    CR_TRY(cr_yaml_str(m, "column", path, 0, f->name, f->column, sizeof f->column, e));
    if (!f->column[0])
        return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "column"), path, "column: expected a "
                           "column name, got an empty string");
    CR_TRY(cr_yaml_str(m, "share", path, 0, "", f->share, sizeof f->share, e));
    int shared = f->share[0] != 0;
    for (int i = 0; i < m->n; i++)
        if (!key_applies(f->kind, shared, m->keys[i]->value))
            return cr_yaml_err(e, CR_ERR_CONFIG, m->keys[i], path,
                               "'%s' does not apply to a %s feature%s%s%s",
                               m->keys[i]->value, cr_feat_kind_names[kind],
                               shared ? " that shares '" : "", shared ? f->share : "",
                               shared ? "' (it uses that feature's vocabulary)" : "");

    f->min_count = 1;
    f->sep = '|';
    f->pooling = CR_POOL_MEAN;
    f->transform = CR_TX_ZSCORE;
    f->std = 1;
    int embedded = f->kind != CR_FEAT_NUMERIC;
    if (shared) {
        int j = 0;
        while (j < idx && strcmp(fs[j].name, f->share)) j++;
        cr_yaml_path_key(kp, sizeof kp, path, "share");
        if (j == idx)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "share"), kp,
                               "'%s' is not an earlier feature (share must name a "
                               "categorical or multi feature listed before this one)", f->share);
        if (fs[j].kind != CR_FEAT_CATEGORICAL && fs[j].kind != CR_FEAT_MULTI)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "share"), kp,
                               "'%s' is a %s feature; only categorical and multi features "
                               "have a vocabulary to share", f->share,
                               cr_feat_kind_names[fs[j].kind]);
        /* The table is the owner's, so are its width and its id space. */
        CR_TRY(cr_yaml_int32(m, "dim", path, 0, fs[j].dim, 1, CR_MAX_DIM, &f->dim, e));
        if (f->dim != fs[j].dim)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "dim"), path,
                               "dim: %d differs from the dim %d of the shared feature '%s' "
                               "(leave it out to inherit it)", f->dim, fs[j].dim, f->share);
        f->hash_buckets = fs[j].hash_buckets;
        f->min_count = fs[j].min_count;
        f->max_vocab = fs[j].max_vocab;
    } else if (embedded) {
        CR_TRY(cr_yaml_int32(m, "dim", path, 1, 0, 1, CR_MAX_DIM, &f->dim, e));
    }
    if (!shared && (f->kind == CR_FEAT_CATEGORICAL || f->kind == CR_FEAT_MULTI)) {
        CR_TRY(cr_yaml_int(m, "hash_buckets", path, 0, 0, 1, INT32_MAX - 1, &f->hash_buckets, e));
        CR_TRY(cr_yaml_int(m, "min_count", path, 0, 1, 1, INT64_MAX, &f->min_count, e));
        CR_TRY(cr_yaml_int(m, "max_vocab", path, 0, 0, 0, INT32_MAX - 2, &f->max_vocab, e));
        if (f->hash_buckets && (cr_yaml_get(m, "min_count") || cr_yaml_get(m, "max_vocab")))
            return cr_yaml_err(e, CR_ERR_CONFIG,
                               key_at(m, cr_yaml_get(m, "min_count") ? "min_count" : "max_vocab"),
                               path, "min_count and max_vocab do not apply with hash_buckets "
                               "(a hashed feature has no vocabulary)");
    }
    if (f->kind == CR_FEAT_CATEGORICAL || f->kind == CR_FEAT_MULTI) {
        double p;
        CR_TRY(cr_yaml_double(m, "id_dropout", path, 0, 0.0, 0.0, 0.99, &p, e));
        f->id_dropout = (float)p;
    }
    if (f->kind == CR_FEAT_MULTI) {
        CR_TRY(cr_yaml_str(m, "sep", path, 0, "|", sep, sizeof sep, e));
        if (strlen(sep) != 1)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "sep"), path,
                               "sep: expected a single character, got '%s'", sep);
        f->sep = sep[0];
        int pool;
        CR_TRY(cr_yaml_enum(m, "pooling", path, 0, CR_POOL_MEAN, cr_pooling_names, &pool, e));
        f->pooling = (cr_pooling)pool;
    }
    if (f->kind == CR_FEAT_NUMERIC) {
        int tx;
        CR_TRY(cr_yaml_enum(m, "transform", path, 0, CR_TX_ZSCORE, cr_transform_names, &tx, e));
        f->transform = (cr_transform)tx;
        CR_TRY(cr_yaml_double(m, "default", path, 0, 0, -INFINITY, INFINITY,
                              &f->default_value, e));
        if (cr_feature_takes_log(f) && f->default_value < -1)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "default"), path,
                               "default: %g is below -1, where log1p is undefined",
                               f->default_value);
    }
    if (f->kind == CR_FEAT_BUCKET) {
        CR_TRY(cr_yaml_doubles(m, "boundaries", path, 1, -INFINITY, INFINITY, f->boundaries,
                               CR_MAX_BOUNDARIES, &f->n_boundaries, e));
        cr_yaml_path_key(kp, sizeof kp, path, "boundaries");
        const cr_yaml_node *b = cr_yaml_get(m, "boundaries");
        if (f->n_boundaries == 0)
            return cr_yaml_err(e, CR_ERR_CONFIG, b, kp, "expected at least one boundary");
        for (int i = 1; i < f->n_boundaries; i++)
            if (!(f->boundaries[i] > f->boundaries[i - 1])) {
                char ip[200];
                cr_yaml_path_index(ip, sizeof ip, kp, i);
                return cr_yaml_err(e, CR_ERR_CONFIG, b->items[i], ip,
                                   "boundaries must be strictly increasing: %g follows %g",
                                   f->boundaries[i], f->boundaries[i - 1]);
            }
        f->rows = f->n_boundaries + 2;
    }
    if (f->hash_buckets) f->rows = 1 + f->hash_buckets;
    return CR_OK;
}

static cr_status parse_features(const cr_yaml_node *root, cr_schema *s, cr_error *e) {
    const cr_yaml_node *seq = cr_yaml_get(root, "features");
    char path[64];
    if (!seq)
        return cr_yaml_err(e, CR_ERR_CONFIG, root, "", "missing required section 'features'");
    CR_TRY(cr_yaml_expect(seq, CR_YAML_SEQ, "features", e));
    if (seq->n == 0)
        return cr_yaml_err(e, CR_ERR_CONFIG, seq, "features", "expected at least one feature");
    s->features = calloc((size_t)seq->n, sizeof *s->features);
    if (!s->features) return cr_err(e, CR_ERR_NOMEM, "out of memory for %d features", seq->n);
    s->n_features = seq->n;
    for (int i = 0; i < seq->n; i++) {
        cr_yaml_path_index(path, sizeof path, "features", i);
        CR_TRY(parse_feature(seq->items[i], path, s->features, i, e));
    }
    return CR_OK;
}

/* ---- tasks: ---------------------------------------------------------------------- */

typedef struct {
    int n;
} cr_count_vars;

/* Any name is a variable while only the syntax is being checked. */
static int any_name(void *ctx, const char *name) {
    (void)name;
    return ((cr_count_vars *)ctx)->n++;
}

/* Only text that looks like an expression is checked here: a bare column
 * name may contain characters the expression grammar does not (the loader
 * tries an exact column match first). */
static cr_status check_expr(const cr_yaml_node *n, const char *path, const char *text,
                            cr_error *e) {
    if (!strpbrk(text, "+-*/<>=!&|()")) return CR_OK;
    cr_expr *x = NULL;
    cr_count_vars cv = {0};
    cr_error sub;
    cr_err_clear(&sub);
    if (cr_expr_parse(&x, text, any_name, &cv, &sub) != CR_OK)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "%s", sub.msg);
    cr_expr_free(x);
    return CR_OK;
}

static cr_status parse_task(const cr_yaml_node *m, const char *path, cr_task *ts, int idx,
                            cr_error *e) {
    cr_task *t = &ts[idx];
    char kp[160];
    int kind;
    double w;
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, path, e));
    CR_TRY(cr_yaml_check_keys(m, task_keys, path, e));
    CR_TRY(cr_config_name(m, path, t->name, sizeof t->name, e));
    for (int j = 0; j < idx; j++)
        if (!strcmp(ts[j].name, t->name))
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "name"), path,
                               "task name '%s' is used twice (also tasks[%d])", t->name, j);
    CR_TRY(cr_yaml_enum(m, "type", path, 0, CR_TASK_BINARY, cr_task_kind_names, &kind, e));
    t->kind = (cr_task_kind)kind;
    CR_TRY(cr_yaml_str(m, "label", path, 0, t->name, t->label, sizeof t->label, e));
    cr_yaml_path_key(kp, sizeof kp, path, "label");
    if (!t->label[0])
        return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "label"), kp,
                           "expected a column name or an expression, got an empty string");
    CR_TRY(check_expr(at(m, "label"), kp, t->label, e));
    CR_TRY(cr_yaml_str(m, "mask", path, 0, "", t->mask, sizeof t->mask, e));
    cr_yaml_path_key(kp, sizeof kp, path, "mask");
    if (t->mask[0]) {
        /* A bare name that is a task means "where that task's label > 0";
         * it must come earlier so masks are computed in order, without cycles. */
        if (!strcmp(t->mask, t->name))
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "mask"), kp,
                               "a task cannot be masked by itself");
        CR_TRY(check_expr(at(m, "mask"), kp, t->mask, e));
    }
    CR_TRY(cr_yaml_double(m, "weight", path, 0, 1, 0, INFINITY, &w, e));
    t->weight = (float)w;
    return CR_OK;
}

static cr_status parse_tasks(const cr_yaml_node *root, cr_schema *s, cr_error *e) {
    const cr_yaml_node *seq = cr_yaml_get(root, "tasks");
    char path[64], kp[96];
    if (!seq) return cr_yaml_err(e, CR_ERR_CONFIG, root, "", "missing required section 'tasks'");
    CR_TRY(cr_yaml_expect(seq, CR_YAML_SEQ, "tasks", e));
    if (seq->n == 0)
        return cr_yaml_err(e, CR_ERR_CONFIG, seq, "tasks", "expected at least one task");
    s->tasks = calloc((size_t)seq->n, sizeof *s->tasks);
    if (!s->tasks) return cr_err(e, CR_ERR_NOMEM, "out of memory for %d tasks", seq->n);
    s->n_tasks = seq->n;
    for (int i = 0; i < seq->n; i++) {
        cr_yaml_path_index(path, sizeof path, "tasks", i);
        CR_TRY(parse_task(seq->items[i], path, s->tasks, i, e));
    }
    /* Masks naming a later task: only now are all the names known. */
    for (int i = 0; i < seq->n; i++)
        for (int j = i + 1; j < seq->n; j++)
            if (!strcmp(s->tasks[i].mask, s->tasks[j].name)) {
                cr_yaml_path_index(path, sizeof path, "tasks", i);
                cr_yaml_path_key(kp, sizeof kp, path, "mask");
                return cr_yaml_err(e, CR_ERR_CONFIG, at(seq->items[i], "mask"), kp,
                                   "names task '%s', which is listed later (tasks[%d]); a "
                                   "task used as a mask must come first", s->tasks[j].name, j);
            }
    return CR_OK;
}

cr_status cr_data_config_parse(const cr_yaml_node *root, const char *config_path,
                               cr_data_cfg *data, cr_schema *schema, cr_error *e) {
    cr_status s;
    memset(data, 0, sizeof *data);
    memset(schema, 0, sizeof *schema);
    if ((s = cr_yaml_expect(root, CR_YAML_MAP, "", e))) {
        if (root && cr_yaml_is_null(root))
            s = cr_yaml_err(e, CR_ERR_CONFIG, root, "", "the config is empty (expected the "
                            "sections data, features and tasks)");
        return s;
    }
    if ((s = cr_yaml_check_keys(root, top_keys, "", e))) return s;
    if ((s = parse_data(root, config_path, data, e))) goto fail;
    if ((s = parse_features(root, schema, e))) goto fail;
    if ((s = parse_tasks(root, schema, e))) goto fail;
    if ((s = cr_schema_finish(schema, e))) {
        cr_err_prefix(e, "%s", root->file);
        goto fail;
    }
    return CR_OK;
fail:
    cr_schema_free(schema);
    memset(schema, 0, sizeof *schema);
    return s;
}
