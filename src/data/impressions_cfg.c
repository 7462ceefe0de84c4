/*
 * impressions_cfg.c - the YAML that describes an interaction log for
 * `crossrec impressions` (docs/impressions.md): its files and columns, the
 * protocol, the split, the domain, the labels and the output's column
 * names; and the builder's options, their checks and its label
 * expressions, which every reader of a log shares. Parsing and checking
 * only; it opens no data file. Every error names file:line:column and the key.
 */
#include "config.h"
#include "impressions.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- the builder's options, names and labels ---------------------------------------- */

#define CR_IMP_MAX_NEGATIVES 1000
#define CR_IMP_MAX_RETURN_DAYS 3650

const char *const cr_imp_colnames[CR_IMP_NCOL] = {
#define CR_IMP_NAME_OF(id, name) name,
    CR_IMP_COLUMNS(CR_IMP_NAME_OF)
#undef CR_IMP_NAME_OF
};
const char *const cr_imp_period_names[] = {"year", "month", "day", NULL};
static const char *const cr_imp_varnames[CR_IMP_NVAR] = {
#define CR_IMP_VNAME(id, name) name,
    CR_IMP_VARS(CR_IMP_VNAME)
#undef CR_IMP_VNAME
};

typedef struct cr_imp_resolve_ctx {
    int         n_values;
    const char (*values)[CR_IMP_NAME];
    uint64_t    reads;
} cr_imp_resolve_ctx;

static int cr_imp_resolve(void *ctx, const char *name) {
    cr_imp_resolve_ctx *c = ctx;
    int v = -1;
    for (int i = 0; i < CR_IMP_NVAR && v < 0; i++)
        if (!strcmp(cr_imp_varnames[i], name)) v = i;
    for (int i = 0; i < c->n_values && v < 0; i++)
        if (!strcmp(c->values[i], name)) v = CR_IMP_NVAR + i;
    if (v >= 0) c->reads |= 1ull << v;
    return v;
}

cr_status cr_imp_label_parse(const cr_imp_label *l, int n_values,
                             const char (*values)[CR_IMP_NAME], cr_expr **out, uint64_t *reads,
                             cr_error *e) {
    cr_imp_resolve_ctx c = {n_values, values, 0};
    *reads = 0;
    if (cr_expr_parse(out, l->expr, cr_imp_resolve, &c, e) == CR_OK) {
        *reads = c.reads;
        return CR_OK;
    }
    char vars[CR_IMP_NVAR * 20 + CR_IMP_MAX_VALUES * 66] = "";
    size_t n = 0;
    for (int i = 0; i < CR_IMP_NVAR; i++)
        n += (size_t)snprintf(vars + n, sizeof vars - n, "%s%s", i ? ", " : "", cr_imp_varnames[i]);
    for (int i = 0; i < n_values && n < sizeof vars; i++)
        n += (size_t)snprintf(vars + n, sizeof vars - n, ", %s", values[i]);
    return cr_err_prefix(e, "label '%s' (its variables: %s)", l->name, vars);
}

void cr_imp_opts_default(cr_imp_opts *o) {
    memset(o, 0, sizeof *o);
    o->negatives = 4;
    o->protocol = CR_ML_POPULARITY;
    o->period = CR_IMP_PERIOD_YEAR;
    o->seed = 1;
    o->valid_frac = 0.1;
    o->test_frac = 0.1;
    o->history = CR_ML_HISTORY_DOMAIN;
    o->keep_fraction = 1.0;
    o->return_days = 30;
}

cr_status cr_imp_opts_check(const cr_imp_opts *o, cr_error *e) {
    if (!o->out_path || !*o->out_path)
        return cr_err(e, CR_ERR_ARG, "out_path: expected a file, got none");
    if (o->negatives < 0 || o->negatives > CR_IMP_MAX_NEGATIVES)
        return cr_err(e, CR_ERR_ARG, "negatives: expected 0 to %d, got %d", CR_IMP_MAX_NEGATIVES,
                      o->negatives);
    if (o->protocol != CR_ML_POPULARITY && o->protocol != CR_ML_UNIFORM && o->protocol != CR_ML_PERIOD)
        return cr_err(e, CR_ERR_ARG, "protocol: expected popularity, uniform or period, got %d",
                      (int)o->protocol);
    if (o->period != CR_IMP_PERIOD_YEAR && o->period != CR_IMP_PERIOD_MONTH &&
        o->period != CR_IMP_PERIOD_DAY)
        return cr_err(e, CR_ERR_ARG, "period: expected year, month or day, got %d", (int)o->period);
    if (o->history != CR_ML_HISTORY_DOMAIN && o->history != CR_ML_HISTORY_ALL)
        return cr_err(e, CR_ERR_ARG, "history: expected all or domain, got %d", (int)o->history);
    if (!(o->valid_frac >= 0 && o->valid_frac < 1))
        return cr_err(e, CR_ERR_ARG, "valid_frac: expected a fraction in [0, 1), got %g",
                      o->valid_frac);
    if (!(o->test_frac >= 0 && o->test_frac < 1))
        return cr_err(e, CR_ERR_ARG, "test_frac: expected a fraction in [0, 1), got %g",
                      o->test_frac);
    if (!(o->valid_frac + o->test_frac < 1))
        return cr_err(e, CR_ERR_ARG, "valid_frac + test_frac: expected less than 1, got %g",
                      o->valid_frac + o->test_frac);
    if (o->return_days < 1 || o->return_days > CR_IMP_MAX_RETURN_DAYS)
        return cr_err(e, CR_ERR_ARG, "return_days: expected 1 to %d, got %d",
                      CR_IMP_MAX_RETURN_DAYS, o->return_days);
    if (!(o->keep_fraction >= 0 && o->keep_fraction <= 1))
        return cr_err(e, CR_ERR_ARG, "keep_fraction: expected a fraction in [0, 1], got %g",
                      o->keep_fraction);
    if (o->n_labels < 0 || o->n_labels > CR_IMP_MAX_LABELS)
        return cr_err(e, CR_ERR_ARG, "labels: expected at most %d, got %d", CR_IMP_MAX_LABELS,
                      o->n_labels);
    return CR_OK;
}

/* ---- the YAML ----------------------------------------------------------------------- */

static const char *const top_keys[] = {"log", "items", "users", "protocol", "split", "domain",
                                       "labels", "return_days", "columns", NULL};
static const char *const log_keys[] = {"path", "sep", "user", "item", "time", "time_format",
                                       "rating", "values", NULL};
static const char *const item_keys[] = {"path", "sep", "key", "categories", "separator",
                                        "no_categories", "year", "year_format", "attributes",
                                        "optional", NULL};
static const char *const user_keys[] = {"path", "sep", "key", "attributes", NULL};
static const char *const protocol_keys[] = {"negatives", "sampling", "period", "seed",
                                            "keep_fraction", NULL};
static const char *const split_keys[] = {"valid", "test", NULL};
static const char *const domain_keys[] = {"include", "exclude", "strict", "history", NULL};
static const char *const label_keys[] = {"name", "expr", NULL};
static const char *const time_formats[] = {"unix", "date", NULL};
static const char *const year_formats[] = {"number", "title", NULL};
static const char *const sampling_names[] = {"popularity", "uniform", "period", NULL};
static const char *const history_names[] = {"domain", "all", NULL};

/* "log.yaml:12:5: items[1]": where a section stands, for the readers' messages. */
static void where_of(char *out, size_t cap, const cr_yaml_node *n, const char *path) {
    snprintf(out, cap, "%s:%d:%d: %s", n->file, n->line, n->col, path);
}

static const cr_yaml_node *at(const cr_yaml_node *map, const char *key) {
    const cr_yaml_node *v = cr_yaml_get(map, key);
    return v ? v : map;
}

static cr_status path_key(const cr_yaml_node *m, const char *path, const char *yaml, char *out,
                          size_t cap, cr_error *e) {
    char rel[4096], kp[160];
    cr_yaml_path_key(kp, sizeof kp, path, "path");
    CR_TRY(cr_yaml_str(m, "path", path, 1, NULL, rel, sizeof rel, e));
    return cr_config_resolve_path(at(m, "path"), yaml, rel, kp, out, cap, e);
}

/* sep: one character ("\t" for tab); absent = by the file's extension. */
static cr_status sep_key(const cr_yaml_node *m, const char *key, const char *path, char def,
                         char *out, cr_error *e) {
    char buf[8], kp[160];
    const char d[2] = {def, 0};
    CR_TRY(cr_yaml_str(m, key, path, 0, d, buf, sizeof buf, e));
    cr_yaml_path_key(kp, sizeof kp, path, key);
    if (strlen(buf) > 1 || (buf[0] && (buf[0] == '"' || buf[0] == '\n' || buf[0] == '\r')) ||
        (!buf[0] && def))
        return cr_yaml_err(e, CR_ERR_CONFIG, at(m, key), kp,
                           "expected one character (\"\\t\" for a tab), got '%s'", buf);
    *out = buf[0];
    return CR_OK;
}

/* attributes: {output column: file column, ...} in order. */
static cr_status attrs_key(const cr_yaml_node *m, const char *path, cr_imp_attr *out, int *n,
                           int room, cr_error *e) {
    const cr_yaml_node *a = cr_yaml_get(m, "attributes");
    char kp[160];
    cr_yaml_path_key(kp, sizeof kp, path, "attributes");
    *n = 0;
    if (!a || cr_yaml_is_null(a)) return CR_OK;
    CR_TRY(cr_yaml_expect(a, CR_YAML_MAP, kp, e));
    if (a->n > room)
        return cr_yaml_err(e, CR_ERR_CONFIG, a, kp, "expected at most %d attributes in all, "
                           "got %d more", CR_IMP_MAX_ATTRS, a->n);
    for (int i = 0; i < a->n; i++) {
        char ip[200];
        cr_yaml_path_key(ip, sizeof ip, kp, a->keys[i]->value);
        CR_TRY(cr_yaml_as_str(a->keys[i], ip, out[i].out, sizeof out[i].out, e));
        CR_TRY(cr_yaml_as_str(a->items[i], ip, out[i].column, sizeof out[i].column, e));
        if (!out[i].out[0] || !out[i].column[0])
            return cr_yaml_err(e, CR_ERR_CONFIG, a->items[i], ip,
                               "expected an output name and a column, got an empty one");
    }
    *n = a->n;
    return CR_OK;
}

static cr_status parse_log(cr_impressions_cfg *c, const cr_yaml_node *r, cr_error *e) {
    const cr_yaml_node *m = cr_yaml_get(r, "log");
    if (!m) return cr_yaml_err(e, CR_ERR_CONFIG, r, "", "missing required key 'log'");
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, "log", e));
    CR_TRY(cr_yaml_check_keys(m, log_keys, "log", e));
    where_of(c->log_where, sizeof c->log_where, m, "log");
    CR_TRY(path_key(m, "log", c->yaml, c->log_path, sizeof c->log_path, e));
    CR_TRY(sep_key(m, "sep", "log", 0, &c->log_sep, e));
    CR_TRY(cr_yaml_str(m, "user", "log", 1, NULL, c->user, sizeof c->user, e));
    CR_TRY(cr_yaml_str(m, "item", "log", 1, NULL, c->item, sizeof c->item, e));
    CR_TRY(cr_yaml_str(m, "time", "log", 1, NULL, c->time, sizeof c->time, e));
    CR_TRY(cr_yaml_enum(m, "time_format", "log", 0, CR_IMP_TIME_UNIX, time_formats,
                        &c->time_format, e));
    CR_TRY(cr_yaml_str(m, "rating", "log", 0, "", c->rating, sizeof c->rating, e));
    CR_TRY(cr_yaml_strs(m, "values", "log", 0, &c->values[0][0], sizeof c->values[0],
                        CR_IMP_MAX_VALUES, &c->n_values, e));
    for (int k = 0; k < c->n_values; k++) /* a value shadowing a variable could not be read */
        for (int v = 0; v < CR_IMP_NVAR; v++)
            if (!strcmp(c->values[k], cr_imp_varnames[v]))
                return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "values"), "log.values",
                                   "'%s' is a built-in label variable, so a value of that "
                                   "name could never be read (a rating column is log.rating)",
                                   c->values[k]);
    return CR_OK;
}

static cr_status parse_items(cr_impressions_cfg *c, const cr_yaml_node *seq, cr_error *e) {
    if (!seq || cr_yaml_is_null(seq)) return CR_OK;
    CR_TRY(cr_yaml_expect(seq, CR_YAML_SEQ, "items", e));
    if (seq->n > CR_IMP_MAX_FILES)
        return cr_yaml_err(e, CR_ERR_CONFIG, seq, "items", "expected at most %d files, got %d",
                           CR_IMP_MAX_FILES, seq->n);
    int room = CR_IMP_MAX_ATTRS;
    for (int i = 0; i < seq->n; i++) {
        const cr_yaml_node *m = seq->items[i];
        cr_imp_file *f = &c->items[i];
        char p[64];
        cr_yaml_path_index(p, sizeof p, "items", i);
        CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, p, e));
        CR_TRY(cr_yaml_check_keys(m, item_keys, p, e));
        where_of(f->where, sizeof f->where, m, p);
        CR_TRY(path_key(m, p, c->yaml, f->path, sizeof f->path, e));
        CR_TRY(sep_key(m, "sep", p, 0, &f->sep, e));
        CR_TRY(cr_yaml_str(m, "key", p, 1, NULL, f->key, sizeof f->key, e));
        CR_TRY(cr_yaml_str(m, "categories", p, 0, "", f->categories, sizeof f->categories, e));
        CR_TRY(sep_key(m, "separator", p, '|', &f->cat_sep, e));
        CR_TRY(cr_yaml_str(m, "no_categories", p, 0, "", f->no_categories,
                           sizeof f->no_categories, e));
        CR_TRY(cr_yaml_str(m, "year", p, 0, "", f->year, sizeof f->year, e));
        CR_TRY(cr_yaml_enum(m, "year_format", p, 0, CR_IMP_YEAR_NUMBER, year_formats,
                            &f->year_format, e));
        CR_TRY(cr_yaml_bool(m, "optional", p, 0, 0, &f->optional, e));
        if (i == 0 && f->optional)
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "optional"), p,
                               "the first item file is the catalogue and cannot be optional");
        CR_TRY(attrs_key(m, p, f->attrs, &f->n_attrs, room, e));
        room -= f->n_attrs;
    }
    c->n_item_files = seq->n;
    return CR_OK;
}

static cr_status parse_users(cr_impressions_cfg *c, const cr_yaml_node *m, cr_error *e) {
    if (!m || cr_yaml_is_null(m)) return CR_OK;
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, "users", e));
    CR_TRY(cr_yaml_check_keys(m, user_keys, "users", e));
    cr_imp_file *f = &c->users;
    where_of(f->where, sizeof f->where, m, "users");
    CR_TRY(path_key(m, "users", c->yaml, f->path, sizeof f->path, e));
    CR_TRY(sep_key(m, "sep", "users", 0, &f->sep, e));
    CR_TRY(cr_yaml_str(m, "key", "users", 1, NULL, f->key, sizeof f->key, e));
    CR_TRY(attrs_key(m, "users", f->attrs, &f->n_attrs, CR_IMP_MAX_ATTRS, e));
    c->has_users = 1;
    return CR_OK;
}

static cr_status parse_protocol(cr_impressions_cfg *c, const cr_yaml_node *r, cr_error *e) {
    cr_imp_opts *o = &c->opts;
    const cr_yaml_node *m = cr_yaml_get(r, "protocol");
    CR_TRY(cr_yaml_check_keys(m, protocol_keys, "protocol", e));
    int v;
    int64_t seed;
    CR_TRY(cr_yaml_int32(m, "negatives", "protocol", 0, o->negatives, 0, CR_IMP_MAX_NEGATIVES,
                        &o->negatives, e));
    CR_TRY(cr_yaml_enum(m, "sampling", "protocol", 0, (int)o->protocol, sampling_names, &v, e));
    o->protocol = (cr_ml_protocol)v;
    CR_TRY(cr_yaml_enum(m, "period", "protocol", 0, (int)o->period, cr_imp_period_names, &v, e));
    o->period = (cr_imp_period)v;
    CR_TRY(cr_yaml_int(m, "seed", "protocol", 0, (int64_t)o->seed, 0, INT64_MAX, &seed, e));
    o->seed = (uint64_t)seed;
    CR_TRY(cr_yaml_double(m, "keep_fraction", "protocol", 0, o->keep_fraction, 0, 1,
                          &o->keep_fraction, e));
    m = cr_yaml_get(r, "split");
    CR_TRY(cr_yaml_check_keys(m, split_keys, "split", e));
    CR_TRY(cr_yaml_double(m, "valid", "split", 0, o->valid_frac, 0, 0.99, &o->valid_frac, e));
    CR_TRY(cr_yaml_double(m, "test", "split", 0, o->test_frac, 0, 0.99, &o->test_frac, e));
    if (!(o->valid_frac + o->test_frac < 1))
        return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "test"), "split",
                           "expected valid + test below 1, got %g", o->valid_frac + o->test_frac);
    m = cr_yaml_get(r, "domain");
    CR_TRY(cr_yaml_check_keys(m, domain_keys, "domain", e));
    CR_TRY(cr_yaml_str(m, "include", "domain", 0, "", c->include, sizeof c->include, e));
    CR_TRY(cr_yaml_str(m, "exclude", "domain", 0, "", c->exclude, sizeof c->exclude, e));
    CR_TRY(cr_yaml_bool(m, "strict", "domain", 0, 0, &o->strict, e));
    CR_TRY(cr_yaml_enum(m, "history", "domain", 0, (int)o->history, history_names, &v, e));
    o->history = (cr_ml_history)v;
    if (o->strict && !c->exclude[0])
        return cr_yaml_err(e, CR_ERR_CONFIG, at(m, "strict"), "domain.strict",
                           "expected domain.exclude (the category whose items the build must "
                           "never read), got none");
    o->include_cat = c->include[0] ? c->include : NULL;
    o->exclude_cat = c->exclude[0] ? c->exclude : NULL;
    return cr_yaml_int32(r, "return_days", "", 0, o->return_days, 1, CR_IMP_MAX_RETURN_DAYS,
                         &o->return_days, e);
}

static cr_status parse_labels(cr_impressions_cfg *c, const cr_yaml_node *seq, cr_error *e) {
    if (!seq || cr_yaml_is_null(seq)) return CR_OK;
    CR_TRY(cr_yaml_expect(seq, CR_YAML_SEQ, "labels", e));
    if (seq->n > CR_IMP_MAX_LABELS)
        return cr_yaml_err(e, CR_ERR_CONFIG, seq, "labels", "expected at most %d labels, got %d",
                           CR_IMP_MAX_LABELS, seq->n);
    for (int i = 0; i < seq->n; i++) {
        const cr_yaml_node *m = seq->items[i];
        cr_imp_label *l = &c->opts.labels[i];
        char p[64], kp[80];
        cr_yaml_path_index(p, sizeof p, "labels", i);
        CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, p, e));
        CR_TRY(cr_yaml_check_keys(m, label_keys, p, e));
        CR_TRY(cr_config_name(m, p, l->name, sizeof l->name, e));
        CR_TRY(cr_yaml_str(m, "expr", p, 1, NULL, l->expr, sizeof l->expr, e));
        cr_expr *x = NULL;
        uint64_t reads;
        cr_status s = cr_imp_label_parse(l, c->n_values, (const char (*)[CR_IMP_NAME])c->values,
                                         &x, &reads, e);
        cr_expr_free(x);
        cr_yaml_path_key(kp, sizeof kp, p, "expr");
        if (s) {
            const cr_yaml_node *n = at(m, "expr");
            return cr_err_prefix(e, "%s:%d:%d: %s", n->file, n->line, n->col, kp);
        }
    }
    c->opts.n_labels = seq->n;
    return CR_OK;
}

/* columns: {fixed column: the name to write}, e.g. {item_id: movie_id}. */
static cr_status parse_columns(cr_impressions_cfg *c, const cr_yaml_node *m, cr_error *e) {
    const char *names[CR_IMP_NCOL + 1];
    int id[CR_IMP_NCOL], n = 0;
    for (int k = 0; k < CR_IMP_NCOL; k++)
        if (cr_imp_colnames[k][0]) {
            id[n] = k;
            names[n++] = cr_imp_colnames[k];
        }
    names[n] = NULL;
    CR_TRY(cr_yaml_check_keys(m, names, "columns", e));
    for (int i = 0; i < n; i++) {
        char kp[80];
        cr_yaml_path_key(kp, sizeof kp, "columns", names[i]);
        char *out = c->rename[id[i]];
        CR_TRY(cr_yaml_str(m, names[i], "columns", 0, "", out, CR_IMP_NAME, e));
        if (cr_yaml_get(m, names[i]) && !out[0])
            return cr_yaml_err(e, CR_ERR_CONFIG, at(m, names[i]), kp, "expected a column name, "
                               "got an empty one");
        c->opts.colname[id[i]] = out[0] ? out : NULL;
    }
    return CR_OK;
}

cr_status cr_impressions_cfg_load(cr_impressions_cfg **out, const char *path, cr_error *e) {
    if (!out || !path)
        return cr_err(e, CR_ERR_ARG, "cr_impressions_cfg_load: out and path must not be NULL");
    *out = NULL;
    if (strlen(path) >= sizeof((cr_impressions_cfg *)0)->yaml)
        return cr_err(e, CR_ERR_ARG, "%s: path too long", path);
    cr_impressions_cfg *c = calloc(1, sizeof *c);
    if (!c) return cr_err(e, CR_ERR_NOMEM, "out of memory reading %s", path);
    snprintf(c->yaml, sizeof c->yaml, "%s", path);
    cr_imp_opts_default(&c->opts);
    cr_yaml_doc *doc = NULL;
    cr_status s = cr_yaml_load(&doc, path, e);
    if (s) goto fail;
    const cr_yaml_node *r = cr_yaml_root(doc);
    if ((s = cr_yaml_expect(r, CR_YAML_MAP, "", e)) != CR_OK ||
        (s = cr_yaml_check_keys(r, top_keys, "", e)) != CR_OK ||
        (s = parse_log(c, r, e)) != CR_OK ||
        (s = parse_items(c, cr_yaml_get(r, "items"), e)) != CR_OK ||
        (s = parse_users(c, cr_yaml_get(r, "users"), e)) != CR_OK ||
        (s = parse_protocol(c, r, e)) != CR_OK ||
        (s = parse_labels(c, cr_yaml_get(r, "labels"), e)) != CR_OK ||
        (s = parse_columns(c, cr_yaml_get(r, "columns"), e)) != CR_OK)
        goto fail;
    cr_yaml_free(doc);
    *out = c;
    return CR_OK;
fail:
    if (s == CR_OK) s = CR_ERR_INTERNAL;
    cr_yaml_free(doc);
    free(c);
    return s;
}

void cr_impressions_cfg_free(cr_impressions_cfg *c) { free(c); }
