/*
 * impressions_read.c - reads the files a log description names (the item
 * files, the events, the user file) into the interaction log, checking
 * each value as it goes, and runs the builder on it. Messages name
 * file:line and the column, and for a column the file lacks also the YAML
 * key that named it. It never computes a feature.
 */
#include "impressions.h"

#include <stdlib.h>
#include <string.h>

/* ---- dates ----------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t cr_imp_days(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int cr_imp_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9') return 0;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 1;
}

int cr_imp_parse_date(const char *s, int64_t *out) {
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!cr_imp_digits(&p, 4, &y) || *p++ != '-' || !cr_imp_digits(&p, 2, &mo) || *p++ != '-' ||
        !cr_imp_digits(&p, 2, &d))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) return 0;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return 0;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!cr_imp_digits(&p, 2, &h) || *p++ != ':' || !cr_imp_digits(&p, 2, &mi)) return 0;
        if (*p == ':' && (p++, !cr_imp_digits(&p, 2, &sec))) return 0;
        if (h > 23 || mi > 59 || sec > 59) return 0;
    }
    if (*p == 'Z') p++;
    if (*p) return 0;
    *out = cr_imp_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 1;
}

/* ---- columns ---------------------------------------------------------------------- */

/* The column `name` that the YAML key where.key names. */
static cr_status cr_imp_col(cr_csv *c, const char *name, const char *where, const char *key,
                            int *out, cr_error *e) {
    if ((*out = cr_csv_find(c, name)) >= 0) return CR_OK;
    return cr_err(e, CR_ERR_NOT_FOUND, "%s:1: expected a column '%s' in the header (named by "
                  "%s.%s)", cr_csv_path(c), name, where, key);
}

/* A key field: never empty, at most 255 bytes. */
static cr_status cr_imp_key_field(cr_csv *c, int col, const char **s, size_t *n, cr_error *e) {
    *s = cr_csv_field(c, col, n);
    if (*n == 0 || *n > 255)
        return cr_err(e, CR_ERR_PARSE, "%s:%lld: column '%s': expected a key of 1 to 255 "
                      "bytes, got %zu bytes", cr_csv_path(c), (long long)cr_csv_line(c),
                      cr_csv_colname(c, col), *n);
    return CR_OK;
}

/* The attribute columns of f, appended to the log's item or user names. */
static cr_status cr_imp_attr_cols(cr_imp_log *g, cr_csv *c, const cr_imp_file *f, int items,
                                  int *col, int *first, cr_error *e) {
    int *n = items ? &g->n_item_attrs : &g->n_user_attrs;
    char (*names)[CR_IMP_NAME] = items ? g->item_attr : g->user_attr;
    *first = *n;
    for (int a = 0; a < f->n_attrs; a++) {
        char key[100];
        snprintf(key, sizeof key, "attributes.%s", f->attrs[a].out);
        CR_TRY(cr_imp_col(c, f->attrs[a].column, f->where, key, &col[a], e));
        snprintf(names[*n], CR_IMP_NAME, "%s", f->attrs[a].out);
        (*n)++;
    }
    return CR_OK;
}

static cr_status cr_imp_attr_set(cr_imp_log *g, cr_csv *c, const cr_imp_file *f, const int *col,
                                 size_t *attr, cr_error *e) {
    for (int a = 0; a < f->n_attrs; a++) {
        size_t len;
        const char *v = cr_csv_field(c, col[a], &len);
        CR_TRY(cr_imp_text(g, v, len, &attr[a], e));
    }
    return CR_OK;
}

/* ---- the files ------------------------------------------------------------------------- */

/* An item file: the first defines the catalogue (a key may not repeat);
 * later ones join by key (a key not in the catalogue is an error). */
static cr_status cr_imp_read_items(const cr_impressions_cfg *cfg, int fi, cr_imp_log *g,
                                   cr_error *e) {
    const cr_imp_file *f = &cfg->items[fi];
    if (f->optional && !cr_file_exists(f->path)) return CR_OK;
    cr_csv *c = NULL;
    CR_TRY(cr_csv_open(&c, f->path, f->sep, e));
    cr_status s;
    int c_key, c_cat = -1, c_year = -1, col[CR_IMP_MAX_ATTRS], first;
    if ((s = cr_imp_col(c, f->key, f->where, "key", &c_key, e)) != CR_OK ||
        (f->categories[0] && (s = cr_imp_col(c, f->categories, f->where, "categories", &c_cat, e))) ||
        (f->year[0] && (s = cr_imp_col(c, f->year, f->where, "year", &c_year, e))) ||
        (s = cr_imp_attr_cols(g, c, f, 1, col, &first, e)) != CR_OK)
        goto done;
    for (;;) {
        int done;
        if ((s = cr_csv_next(c, &done, e)) != CR_OK || done) break;
        const char *key;
        size_t kn;
        int32_t mi;
        char where[4200];
        snprintf(where, sizeof where, "%s:%lld", f->path, (long long)cr_csv_line(c));
        if ((s = cr_imp_key_field(c, c_key, &key, &kn, e)) != CR_OK) break;
        if (fi == 0) {
            if ((s = cr_imp_item_add(g, key, kn, &mi, e)) != CR_OK) break;
            if (mi < 0) {
                s = cr_err(e, CR_ERR_PARSE, "%s: item '%s' appears twice", where, key);
                break;
            }
        } else if ((mi = cr_imp_item_find(g, key, kn)) < 0) {
            s = cr_err(e, CR_ERR_MISMATCH, "%s: item '%s' is not in %s", where, key,
                       cfg->items[0].path);
            break;
        }
        if (c_cat >= 0) {
            size_t n;
            const char *t = cr_csv_field(c, c_cat, &n);
            if ((s = cr_imp_item_cats(g, mi, t, n, f->cat_sep, f->no_categories, where, e)))
                break;
        }
        if (c_year >= 0) {
            size_t n;
            const char *t = cr_csv_field(c, c_year, &n);
            int32_t y = 0;
            if (f->year_format == CR_IMP_YEAR_TITLE) {
                y = cr_imp_title_year(t, n);
            } else if (n > 0) {
                char *end;
                long v = strtol(t, &end, 10);
                if (*end || v < 1 || v > 9999) {
                    s = cr_err(e, CR_ERR_PARSE, "%s: column '%s': expected a year from 1 to "
                               "9999 or nothing, got '%s'", where, f->year, t);
                    break;
                }
                y = (int32_t)v;
            }
            g->items[mi].year = y;
        }
        if ((s = cr_imp_attr_set(g, c, f, col, g->items[mi].attr + first, e)) != CR_OK) break;
    }
    if (!s && fi == 0 && g->n_items == 0)
        s = cr_err(e, CR_ERR_PARSE, "%s: expected at least one item, got none", f->path);
done:
    cr_csv_close(c);
    return s;
}

static cr_status cr_imp_read_events(const cr_impressions_cfg *cfg, cr_imp_log *g, cr_error *e) {
    cr_csv *c = NULL;
    CR_TRY(cr_csv_open(&c, cfg->log_path, cfg->log_sep, e));
    const char *w = cfg->log_where;
    int c_user, c_item, c_time, c_rating = -1, c_val[CR_IMP_MAX_VALUES];
    cr_status s;
    if ((s = cr_imp_col(c, cfg->user, w, "user", &c_user, e)) != CR_OK ||
        (s = cr_imp_col(c, cfg->item, w, "item", &c_item, e)) != CR_OK ||
        (s = cr_imp_col(c, cfg->time, w, "time", &c_time, e)) != CR_OK ||
        (cfg->rating[0] && (s = cr_imp_col(c, cfg->rating, w, "rating", &c_rating, e))))
        goto done;
    for (int k = 0; k < cfg->n_values; k++)
        if ((s = cr_imp_col(c, cfg->values[k], w, "values", &c_val[k], e)) != CR_OK) goto done;
    int catalogue = cfg->n_item_files > 0;
    for (;;) {
        int done;
        if ((s = cr_csv_next(c, &done, e)) != CR_OK || done) break;
        int64_t line = cr_csv_line(c), ts;
        const char *key;
        size_t kn;
        int32_t ui, mi;
        if ((s = cr_imp_key_field(c, c_item, &key, &kn, e)) != CR_OK) break;
        if (catalogue) {
            if ((mi = cr_imp_item_find(g, key, kn)) < 0) {
                s = cr_err(e, CR_ERR_MISMATCH, "%s:%lld: item '%s' is not in %s (every item of "
                           "the log must be in the catalogue)", cfg->log_path, (long long)line,
                           key, cfg->items[0].path);
                break;
            }
        } else {
            if ((s = cr_imp_item_add(g, key, kn, &mi, e)) != CR_OK) break;
            if (mi < 0) mi = cr_imp_item_find(g, key, kn);
        }
        if ((s = cr_imp_key_field(c, c_user, &key, &kn, e)) != CR_OK ||
            (s = cr_imp_user_get(g, key, kn, &ui, e)) != CR_OK)
            break;
        if (cfg->time_format == CR_IMP_TIME_UNIX) {
            if ((s = cr_csv_int64(c, c_time, &ts, e)) != CR_OK) break;
        } else if (!cr_imp_parse_date(cr_csv_field(c, c_time, NULL), &ts)) {
            s = cr_err(e, CR_ERR_PARSE, "%s:%lld: column '%s': expected a date YYYY-MM-DD, "
                       "optionally with THH:MM[:SS] and Z (UTC), got '%s'", cfg->log_path,
                       (long long)line, cfg->time, cr_csv_field(c, c_time, NULL));
            break;
        }
        double rating = NAN, v[CR_IMP_MAX_VALUES];
        int missing;
        if (c_rating >= 0 && (s = cr_csv_double(c, c_rating, &rating, &missing, e))) break;
        if (c_rating >= 0 && missing) rating = NAN;
        for (int k = 0; k < cfg->n_values && !s; k++) {
            s = cr_csv_double(c, c_val[k], &v[k], &missing, e);
            if (missing) v[k] = NAN;
        }
        if (s || (s = cr_imp_event_add(g, ui, mi, ts, rating, line, v, e)) != CR_OK) break;
    }
done:
    cr_csv_close(c);
    return s;
}

/* Users of the file that never appear in the log are skipped; users of the
 * log missing from the file get empty attributes. */
static cr_status cr_imp_read_users(const cr_impressions_cfg *cfg, cr_imp_log *g, cr_error *e) {
    const cr_imp_file *f = &cfg->users;
    cr_csv *c = NULL;
    CR_TRY(cr_csv_open(&c, f->path, f->sep, e));
    int c_key, col[CR_IMP_MAX_ATTRS], first;
    cr_status s;
    if ((s = cr_imp_col(c, f->key, f->where, "key", &c_key, e)) != CR_OK ||
        (s = cr_imp_attr_cols(g, c, f, 0, col, &first, e)) != CR_OK)
        goto done;
    for (;;) {
        int done;
        if ((s = cr_csv_next(c, &done, e)) != CR_OK || done) break;
        const char *key;
        size_t kn;
        if ((s = cr_imp_key_field(c, c_key, &key, &kn, e)) != CR_OK) break;
        int32_t ui = cr_imp_user_find(g, key, kn);
        if (ui >= 0 && (s = cr_imp_attr_set(g, c, f, col, g->users[ui].attr + first, e))) break;
    }
done:
    cr_csv_close(c);
    return s;
}

cr_status cr_imp_read(const cr_impressions_cfg *cfg, cr_imp_log *g, cr_error *e) {
    CR_TRY(cr_imp_log_init(g, e));
    cr_status s = CR_OK;
    snprintf(g->path, sizeof g->path, "%s", cfg->log_path);
    if (cfg->n_item_files) snprintf(g->items_path, sizeof g->items_path, "%s", cfg->items[0].path);
    g->has_rating = cfg->rating[0] != 0;
    g->n_values = cfg->n_values;
    memcpy(g->value, cfg->values, sizeof g->value);
    for (int i = 0; i < cfg->n_item_files && !s; i++) s = cr_imp_read_items(cfg, i, g, e);
    if (!s) s = cr_imp_read_events(cfg, g, e);
    if (!s && cfg->has_users) s = cr_imp_read_users(cfg, g, e);
    if (!s) s = cr_imp_log_finish(g, e);
    if (s) cr_imp_log_free(g);
    return s;
}

cr_status cr_imp_run(const cr_impressions_cfg *cfg, const char *out_path,
                     cr_impressions_stats *st, cr_error *e) {
    cr_imp_opts o = cfg->opts;
    o.out_path = out_path;
    CR_TRY(cr_imp_opts_check(&o, e));
    cr_imp_log g;
    CR_TRY(cr_imp_read(cfg, &g, e));
    cr_status s = cr_imp_build(&g, &o, st, e);
    cr_imp_log_free(&g);
    return s;
}
