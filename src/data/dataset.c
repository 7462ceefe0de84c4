/*
 * dataset.c - one streaming pass over a CSV/TSV log that decides each row's
 * split and encodes its features, labels, masks, weights and groups into
 * columnar arrays; vocabularies and numeric statistics are then fit on the
 * training rows alone and applied. Valid and test rows must never influence
 * anything that is fit.
 *
 * Why one pass: values are interned into first-appearance dictionaries while
 * reading (every string is hashed once), so the training split - which a
 * time split only knows after the last row - can be applied afterwards by
 * remapping integers instead of re-reading the file.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CR_UNSET 255

/* A label or mask value: a plain column (x == NULL) or an expression. */
typedef struct cr_ds_value {
    cr_expr *x;
    int      var;          /* x == NULL: the variable holding the column */
    int      first, nvars; /* into ld->uses: variables it reads (for emptiness) */
} cr_ds_value;

enum { CR_MASK_NONE, CR_MASK_TASK, CR_MASK_VALUE };

typedef struct cr_loader {
    cr_csv            *csv;
    const cr_data_cfg *cfg;
    cr_schema         *s;
    int                fit;
    int                ncols;
    int               *feat_col;  /* (n_features) CSV column of each feature */
    int               *owner;     /* (n_features) feature whose table it reads */
    int               *slot;      /* (n_features) cat, multi or dense slot */
    cr_vocab         **raw;       /* (n_features) fit: first-appearance dictionary per owner */
    /* numeric variables read by labels and masks, one per distinct column */
    int                nvars;
    int               *var_col;   /* (ncols) */
    int               *col_var;   /* (ncols) -1 = not a variable */
    double            *vars;      /* (ncols) this row's values */
    uint8_t           *miss;      /* (ncols) this row's field was empty */
    int               *uses;
    size_t             nuses, cap_uses;
    cr_ds_value       *label, *maskv; /* (n_tasks) */
    int               *mask_kind, *mask_task;
    char               unknown[64];   /* a name the resolver did not find */
    int                split_col, group_col, user_col, weight_col;
    int                slice_col[8], extra_col[16];
    cr_vocab          *groups, *users;
    uint8_t           *gsplit;    /* (groups) split of the group's first row */
    int64_t           *gline;     /* (groups) its line, for messages */
    size_t             gcap;
    /* per-row temporaries, row-major while the row count is unknown */
    int64_t            cap;
    double            *num;       /* (cap, n_dense) after log1p, before the z-score */
    double            *times;     /* (cap) time split */
    float             *lab, *msk; /* (cap, n_tasks) */
    uint8_t           *sl;        /* (cap, n_slices) */
    float             *ex;        /* (cap, n_extra) */
    size_t            *bag_cap;   /* (n_multi) */
} cr_loader;

/* ---- columns and expressions ------------------------------------------------------ */

static cr_status missing_column(cr_loader *ld, const char *name, const char *field,
                                cr_error *e) {
    char list[640];
    size_t used = 0;
    list[0] = 0;
    for (int c = 0; c < ld->ncols && used < sizeof list - 8; c++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", c ? ", " : "",
                                 cr_csv_colname(ld->csv, c));
    if (used >= sizeof list - 8) snprintf(list + sizeof list - 8, 8, ", ...");
    return cr_err(e, CR_ERR_NOT_FOUND, "%s: column '%.100s' named by %s is not in the header "
                  "(columns: %s)", ld->cfg->path, name, field, list);
}

static cr_status find_col(cr_loader *ld, const char *name, const char *field, int *col,
                          cr_error *e) {
    *col = -1;
    if (!name[0]) return CR_OK;
    *col = cr_csv_find(ld->csv, name);
    return *col < 0 ? missing_column(ld, name, field, e) : CR_OK;
}

static int var_of_col(cr_loader *ld, int col) {
    if (ld->col_var[col] < 0) {
        ld->col_var[col] = ld->nvars;
        ld->var_col[ld->nvars++] = col;
    }
    return ld->col_var[col];
}

static int resolve(void *ctx, const char *name) {
    cr_loader *ld = ctx;
    int col = cr_csv_find(ld->csv, name);
    if (col < 0) {
        snprintf(ld->unknown, sizeof ld->unknown, "%s", name);
        return -1;
    }
    int v = var_of_col(ld, col);
    /* Capacity is reserved before parsing (see value_of): no allocation here. */
    if (ld->nuses < ld->cap_uses) ld->uses[ld->nuses++] = v;
    return v;
}

/* A label or mask: the exact column if the header has one, else an expression. */
static cr_status value_of(cr_loader *ld, const char *text, const char *field, cr_ds_value *out,
                          cr_error *e) {
    /* Each variable reference uses one slot; an expression has fewer
     * references than characters. */
    CR_TRY(cr_grow((void **)&ld->uses, &ld->cap_uses, ld->nuses + strlen(text) + 1,
                   sizeof *ld->uses, e));
    out->first = (int)ld->nuses;
    int col = cr_csv_find(ld->csv, text);
    if (col >= 0) {
        out->var = var_of_col(ld, col);
        ld->uses[ld->nuses++] = out->var;
    } else {
        ld->unknown[0] = 0;
        cr_status s = cr_expr_parse(&out->x, text, resolve, ld, e);
        if (s && ld->unknown[0]) {
            char what[160];
            snprintf(what, sizeof what, "%s ('%.100s')", field, text);
            return missing_column(ld, ld->unknown, what, e);
        }
        if (s) {
            cr_err_prefix(e, "%s: %s", ld->cfg->path, field);
            return s;
        }
    }
    out->nvars = (int)ld->nuses - out->first;
    return CR_OK;
}

static cr_status setup(cr_loader *ld, cr_error *e) {
    const cr_schema *s = ld->s;
    const cr_data_cfg *cfg = ld->cfg;
    char field[160];
    size_t nf = (size_t)s->n_features, nt = (size_t)s->n_tasks, nc = (size_t)ld->ncols;
    ld->feat_col = calloc(nf, sizeof *ld->feat_col);
    ld->owner = calloc(nf, sizeof *ld->owner);
    ld->slot = calloc(nf, sizeof *ld->slot);
    ld->raw = calloc(nf, sizeof *ld->raw);
    ld->var_col = calloc(nc, sizeof *ld->var_col);
    ld->col_var = malloc(nc * sizeof *ld->col_var);
    ld->vars = calloc(nc, sizeof *ld->vars);
    ld->miss = calloc(nc, sizeof *ld->miss);
    ld->label = calloc(nt, sizeof *ld->label);
    ld->maskv = calloc(nt, sizeof *ld->maskv);
    ld->mask_kind = calloc(nt, sizeof *ld->mask_kind);
    ld->mask_task = calloc(nt, sizeof *ld->mask_task);
    ld->bag_cap = calloc((size_t)s->n_multi + 1, sizeof *ld->bag_cap);
    if (!ld->feat_col || !ld->owner || !ld->slot || !ld->raw || !ld->var_col || !ld->col_var ||
        !ld->vars || !ld->miss || !ld->label || !ld->maskv || !ld->mask_kind ||
        !ld->mask_task || !ld->bag_cap)
        return cr_err(e, CR_ERR_NOMEM, "out of memory preparing to read %s", cfg->path);
    for (size_t c = 0; c < nc; c++) ld->col_var[c] = -1;
    for (int k = 0; k < s->n_cat; k++) ld->slot[s->cat_feat[k]] = k;
    for (int k = 0; k < s->n_multi; k++) ld->slot[s->multi_feat[k]] = k;
    for (int k = 0; k < s->n_dense; k++) ld->slot[s->dense_feat[k]] = k;
    for (int i = 0; i < s->n_features; i++) {
        const cr_feature *f = &s->features[i];
        snprintf(field, sizeof field, "features[%d].column", i);
        CR_TRY(find_col(ld, f->column, field, &ld->feat_col[i], e));
        ld->owner[i] = cr_feature_owner(s, i);
        int vocab_kind = (f->kind == CR_FEAT_CATEGORICAL || f->kind == CR_FEAT_MULTI) &&
                         ld->owner[i] == i && f->hash_buckets == 0;
        if (!vocab_kind) continue;
        if (ld->fit) {
            if (!(ld->raw[i] = cr_vocab_new()))
                return cr_err(e, CR_ERR_NOMEM, "out of memory for a vocabulary");
        } else if (!f->vocab) {
            return cr_err(e, CR_ERR_ARG, "feature '%s' has no fitted vocabulary: load the "
                          "training data with fitting first, or the schema of a trained model",
                          f->name);
        }
    }
    if (cfg->split != CR_SPLIT_FRACTION && !cfg->split_column[0])
        return cr_err(e, CR_ERR_CONFIG, "%s: data.split.column is required with by: %s",
                      cfg->path, cr_split_kind_names[cfg->split]);
    CR_TRY(find_col(ld, cfg->split == CR_SPLIT_FRACTION ? "" : cfg->split_column,
                    "data.split.column", &ld->split_col, e));
    CR_TRY(find_col(ld, cfg->group_column, "data.group", &ld->group_col, e));
    CR_TRY(find_col(ld, cfg->user_column, "data.user", &ld->user_col, e));
    CR_TRY(find_col(ld, cfg->weight_column, "data.weight", &ld->weight_col, e));
    for (int k = 0; k < cfg->n_slices; k++) {
        snprintf(field, sizeof field, "data.slices[%d]", k);
        CR_TRY(find_col(ld, cfg->slices[k], field, &ld->slice_col[k], e));
    }
    for (int k = 0; k < cfg->n_extra; k++) {
        snprintf(field, sizeof field, "data.extra[%d]", k);
        CR_TRY(find_col(ld, cfg->extra[k], field, &ld->extra_col[k], e));
    }
    if ((ld->group_col >= 0 && !(ld->groups = cr_vocab_new())) ||
        (ld->user_col >= 0 && !(ld->users = cr_vocab_new())))
        return cr_err(e, CR_ERR_NOMEM, "out of memory for group ids");
    for (int t = 0; t < s->n_tasks && !cfg->no_labels; t++) {
        const cr_task *tk = &s->tasks[t];
        snprintf(field, sizeof field, "tasks[%d].label", t);
        CR_TRY(value_of(ld, tk->label, field, &ld->label[t], e));
        ld->mask_kind[t] = CR_MASK_NONE;
        if (!tk->mask[0]) continue;
        for (int j = 0; j < t && ld->mask_kind[t] == CR_MASK_NONE; j++)
            if (!strcmp(tk->mask, s->tasks[j].name)) {
                ld->mask_kind[t] = CR_MASK_TASK;
                ld->mask_task[t] = j;
            }
        if (ld->mask_kind[t] == CR_MASK_TASK) continue;
        ld->mask_kind[t] = CR_MASK_VALUE;
        snprintf(field, sizeof field, "tasks[%d].mask", t);
        CR_TRY(value_of(ld, tk->mask, field, &ld->maskv[t], e));
    }
    return CR_OK;
}

/* ---- growing storage ------------------------------------------------------------------ */

static cr_status regrow(void **p, size_t n, size_t elt, cr_error *e) {
    if (n == 0) return CR_OK;
    void *q = realloc(*p, n * elt);
    if (!q) return cr_err(e, CR_ERR_NOMEM, "out of memory growing the dataset to %zu bytes",
                          n * elt);
    *p = q;
    return CR_OK;
}

static cr_status grow_rows(cr_loader *ld, cr_dataset *ds, int64_t need, cr_error *e) {
    if (need <= ld->cap) return CR_OK;
    size_t c = ld->cap ? (size_t)ld->cap * 2 : 4096;
    const cr_schema *s = ld->s;
    CR_TRY(regrow((void **)&ds->cat, c * (size_t)s->n_cat, sizeof *ds->cat, e));
    for (int m = 0; m < s->n_multi; m++)
        CR_TRY(regrow((void **)&ds->bag_off[m], c + 1, sizeof *ds->bag_off[m], e));
    CR_TRY(regrow((void **)&ld->num, c * (size_t)s->n_dense, sizeof *ld->num, e));
    CR_TRY(regrow((void **)&ld->lab, c * (size_t)s->n_tasks, sizeof *ld->lab, e));
    CR_TRY(regrow((void **)&ld->msk, c * (size_t)s->n_tasks, sizeof *ld->msk, e));
    CR_TRY(regrow((void **)&ld->sl, c * (size_t)ds->n_slices, sizeof *ld->sl, e));
    CR_TRY(regrow((void **)&ld->ex, c * (size_t)ds->n_extra, sizeof *ld->ex, e));
    CR_TRY(regrow((void **)&ds->group, c, sizeof *ds->group, e));
    CR_TRY(regrow((void **)&ds->user, c, sizeof *ds->user, e));
    CR_TRY(regrow((void **)&ds->split, c, sizeof *ds->split, e));
    if (ld->weight_col >= 0) CR_TRY(regrow((void **)&ds->weight, c, sizeof *ds->weight, e));
    if (ld->cfg->keep_raw)
        CR_TRY(regrow((void **)&ds->raw, c * (size_t)s->n_features, sizeof *ds->raw, e));
    if (ld->cfg->split == CR_SPLIT_TIME)
        CR_TRY(regrow((void **)&ld->times, c, sizeof *ld->times, e));
    ld->cap = (int64_t)c;
    return CR_OK;
}

/* ---- one row ------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) {
    /* splitmix64's finalizer: spreads every input bit over the output. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Intern a group/user value; ids are dense, in order of first appearance. */
static cr_status intern_id(cr_vocab *v, const char *s, size_t len, int64_t *id, cr_error *e) {
    int32_t k;
    CR_TRY(cr_vocab_intern(v, s, len, 1, &k, e));
    *id = k;
    return CR_OK;
}

static cr_status row_split(cr_loader *ld, cr_dataset *ds, int64_t r, int64_t line,
                           const char *gval, size_t glen, cr_error *e) {
    const cr_data_cfg *cfg = ld->cfg;
    size_t len;
    if (cfg->split == CR_SPLIT_TIME) {
        ds->split[r] = CR_UNSET; /* decided once all timestamps are known */
        return cr_csv_double(ld->csv, ld->split_col, &ld->times[r], NULL, e);
    }
    if (cfg->split == CR_SPLIT_FRACTION) {
        uint64_t key = gval ? cr_hash64(gval, glen) : mix64((uint64_t)r);
        double u = (double)(mix64(key ^ mix64(cfg->split_seed)) >> 11) * 0x1p-53;
        ds->split[r] = u < cfg->test_frac                   ? CR_SPLIT_TEST
                       : u < cfg->test_frac + cfg->valid_frac ? CR_SPLIT_VALID
                                                              : CR_SPLIT_TRAIN;
        return CR_OK;
    }
    const char *v = cr_csv_field(ld->csv, ld->split_col, &len);
    if (!strcmp(v, "train")) ds->split[r] = CR_SPLIT_TRAIN;
    else if (!strcmp(v, "valid")) ds->split[r] = CR_SPLIT_VALID;
    else if (!strcmp(v, "test")) ds->split[r] = CR_SPLIT_TEST;
    else
        return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: column '%s' (data.split.column) must be "
                      "train, valid or test, got '%.60s'", cfg->path, (long long)line,
                      ld->split_col + 1, cfg->split_column, v);
    if (ld->group_col < 0) return CR_OK;
    int64_t g = ds->group[r];
    if (ld->gsplit[g] == CR_UNSET) {
        ld->gsplit[g] = ds->split[r];
        ld->gline[g] = line;
    } else if (ld->gsplit[g] != ds->split[r]) {
        static const char *const names[] = {"train", "valid", "test"};
        return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: group '%.60s' (data.group) is in split "
                      "'%s' here but in '%s' at line %lld; a group must not straddle splits",
                      cfg->path, (long long)line, ld->split_col + 1, gval,
                      names[ds->split[r]], names[ld->gsplit[g]], (long long)ld->gline[g]);
    }
    return CR_OK;
}

/* A feature's field that the encoder refused: where, in the CSV's words. */
static cr_status bad_field(cr_loader *ld, int i, int64_t line, int col, const cr_value *v,
                           double x, cr_error *e) {
    const cr_feature *f = &ld->s->features[i];
    if (v->fail == CR_VALUE_LOG1P)
        return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: features[%d] '%s' takes log1p, which needs "
                      "values >= -1 in column '%s', got %g", ld->cfg->path, (long long)line,
                      col + 1, i, f->name, f->column, x);
    return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: %s in column '%.100s', got '%.60s'%s",
                  ld->cfg->path, (long long)line, col + 1, v->why, f->column, v->s,
                  v->len > 60 ? "..." : "");
}

static cr_status row_features(cr_loader *ld, cr_dataset *ds, int64_t r, int64_t line,
                              cr_error *e) {
    const cr_schema *s = ld->s;
    for (int i = 0; i < s->n_features; i++) {
        const cr_feature *f = &s->features[i];
        int col = ld->feat_col[i], k = ld->slot[i];
        size_t len;
        const char *text = cr_csv_field(ld->csv, col, &len);
        cr_encoder c;
        cr_encoder_init(&c, s, i, ld->raw[ld->owner[i]], 0);
        cr_value v;
        cr_value_text(&v, text, len);
        cr_status st = CR_OK;
        double x = NAN;
        switch (f->kind) {
        case CR_FEAT_CATEGORICAL: st = cr_encode_id(&c, &v, &ds->cat[r * s->n_cat + k], e); break;
        case CR_FEAT_MULTI: {
            int64_t at = ds->bag_off[k][r];
            st = cr_encode_bag(&c, &v, &ds->bag_ids[k], &ld->bag_cap[k], &at, e);
            ds->bag_off[k][r + 1] = at;
            break;
        }
        case CR_FEAT_BUCKET: st = cr_encode_bucket(&c, &v, &ds->cat[r * s->n_cat + k], e); break;
        case CR_FEAT_NUMERIC: st = cr_encode_number(&c, &v, &ld->num[r * s->n_dense + k], e); break;
        }
        if (st == CR_ERR_PARSE && v.fail) {
            x = v.missing ? f->default_value : v.x;
            return bad_field(ld, i, line, col, &v, x, e);
        }
        if (st) return st;
        if (ld->cfg->keep_raw)
            ds->raw[r * s->n_features + i] =
                (f->kind == CR_FEAT_BUCKET || f->kind == CR_FEAT_NUMERIC) && !v.missing ? v.x : NAN;
    }
    return CR_OK;
}

/* Value of a label or mask on this row; *missing = one of its columns is empty. */
static double value_eval(const cr_loader *ld, const cr_ds_value *v, int *missing_var) {
    *missing_var = -1;
    for (int u = 0; u < v->nvars; u++)
        if (ld->miss[ld->uses[v->first + u]]) {
            *missing_var = ld->uses[v->first + u];
            return 0;
        }
    return v->x ? cr_expr_eval(v->x, ld->vars) : ld->vars[v->var];
}

static cr_status row_labels(cr_loader *ld, int64_t r, int64_t line, cr_error *e) {
    const cr_schema *s = ld->s;
    int nt = s->n_tasks, mv;
    if (ld->cfg->no_labels) {
        memset(ld->lab + r * nt, 0, (size_t)nt * sizeof *ld->lab);
        memset(ld->msk + r * nt, 0, (size_t)nt * sizeof *ld->msk);
        return CR_OK;
    }
    for (int v = 0; v < ld->nvars; v++) {
        int missing;
        CR_TRY(cr_csv_double(ld->csv, ld->var_col[v], &ld->vars[v], &missing, e));
        ld->miss[v] = (uint8_t)missing;
    }
    float *lab = ld->lab + r * nt, *msk = ld->msk + r * nt;
    for (int t = 0; t < nt; t++) {
        const cr_task *tk = &s->tasks[t];
        double m = 1;
        /* An empty mask column means the task is undefined on this row. */
        if (ld->mask_kind[t] == CR_MASK_TASK) m = lab[ld->mask_task[t]] > 0;
        else if (ld->mask_kind[t] == CR_MASK_VALUE) {
            m = value_eval(ld, &ld->maskv[t], &mv);
            m = mv >= 0 ? 0 : m != 0;
        }
        msk[t] = (float)m;
        lab[t] = 0;
        if (m == 0) continue;
        double y = value_eval(ld, &ld->label[t], &mv);
        if (mv >= 0)
            return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: tasks[%d] '%s': the label needs column "
                          "'%s', which is empty on a row where the task is defined (mask 1)",
                          ld->cfg->path, (long long)line, ld->var_col[mv] + 1, t, tk->name,
                          cr_csv_colname(ld->csv, ld->var_col[mv]));
        if (!isfinite(y) || (tk->kind == CR_TASK_BINARY && (y < 0 || y > 1)))
            return cr_err(e, CR_ERR_PARSE, "%s:%lld: tasks[%d] '%s': expected %s, got %g "
                          "(from label '%.100s')", ld->cfg->path, (long long)line, t, tk->name,
                          tk->kind == CR_TASK_BINARY ? "a binary label in [0, 1]"
                                                     : "a finite label", y, tk->label);
        lab[t] = (float)y;
    }
    return CR_OK;
}

static cr_status row_extras(cr_loader *ld, cr_dataset *ds, int64_t r, int64_t line,
                            cr_error *e) {
    double x;
    int missing;
    if (ld->weight_col >= 0) {
        CR_TRY(cr_csv_double(ld->csv, ld->weight_col, &x, NULL, e));
        if (x < 0)
            return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: column '%s' (data.weight) must be >= 0, "
                          "got %g", ld->cfg->path, (long long)line, ld->weight_col + 1,
                          ld->cfg->weight_column, x);
        ds->weight[r] = (float)x;
    }
    for (int k = 0; k < ds->n_slices; k++) {
        CR_TRY(cr_csv_double(ld->csv, ld->slice_col[k], &x, &missing, e));
        if (missing) x = 0;
        if (x != 0 && x != 1)
            return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: column '%s' (data.slices[%d]) must be "
                          "0 or 1, got %g", ld->cfg->path, (long long)line,
                          ld->slice_col[k] + 1, ld->cfg->slices[k], k, x);
        ld->sl[r * ds->n_slices + k] = (uint8_t)x;
    }
    for (int k = 0; k < ds->n_extra; k++) {
        CR_TRY(cr_csv_double(ld->csv, ld->extra_col[k], &x, NULL, e));
        ld->ex[r * ds->n_extra + k] = (float)x;
    }
    return CR_OK;
}

static cr_status read_rows(cr_loader *ld, cr_dataset *ds, cr_error *e) {
    for (int64_t r = 0;; r++) {
        int done;
        CR_TRY(cr_csv_next(ld->csv, &done, e));
        if (done) {
            ds->n = r;
            return CR_OK;
        }
        if (r >= (int64_t)UINT32_MAX)
            return cr_err(e, CR_ERR_LIMIT, "%s: more than %u rows (batches index rows with "
                          "32 bits); split the file", ld->cfg->path, UINT32_MAX);
        int64_t line = cr_csv_line(ld->csv);
        CR_TRY(grow_rows(ld, ds, r + 1, e));
        const char *gval = NULL;
        size_t glen = 0, ulen;
        ds->group[r] = r;
        if (ld->group_col >= 0) {
            gval = cr_csv_field(ld->csv, ld->group_col, &glen);
            CR_TRY(intern_id(ld->groups, gval, glen, &ds->group[r], e));
            if ((size_t)ds->group[r] >= ld->gcap) {
                size_t old = ld->gcap, nc = old ? old * 2 : 4096;
                CR_TRY(regrow((void **)&ld->gsplit, nc, 1, e));
                CR_TRY(regrow((void **)&ld->gline, nc, sizeof *ld->gline, e));
                memset(ld->gsplit + old, CR_UNSET, nc - old);
                ld->gcap = nc;
            }
        }
        ds->user[r] = ds->group[r];
        if (ld->user_col >= 0) {
            const char *u = cr_csv_field(ld->csv, ld->user_col, &ulen);
            CR_TRY(intern_id(ld->users, u, ulen, &ds->user[r], e));
        }
        CR_TRY(row_split(ld, ds, r, line, gval, glen, e));
        CR_TRY(row_features(ld, ds, r, line, e));
        CR_TRY(row_labels(ld, r, line, e));
        CR_TRY(row_extras(ld, ds, r, line, e));
    }
}

/* ---- after the pass: splits, fitting, layout ------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile cut-offs on time: the latest test_frac of rows are test, the
 * valid_frac before them valid; then every group follows its first row. */
static cr_status time_split(cr_loader *ld, cr_dataset *ds, cr_error *e) {
    int64_t n = ds->n;
    double *t = malloc((size_t)n * sizeof *t);
    if (!t) return cr_err(e, CR_ERR_NOMEM, "out of memory sorting %lld timestamps", (long long)n);
    memcpy(t, ld->times, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    int64_t n_test = llround((double)n * ld->cfg->test_frac);
    int64_t n_valid = llround((double)n * ld->cfg->valid_frac);
    if (n_test + n_valid > n) n_valid = n - n_test;
    double cut_test = n_test > 0 ? t[n - n_test] : INFINITY;
    double cut_valid = n_valid > 0 ? t[n - n_test - n_valid] : cut_test;
    free(t);
    for (int64_t r = 0; r < n; r++) {
        double x = ld->times[r];
        uint8_t sp = x >= cut_test ? CR_SPLIT_TEST : x >= cut_valid ? CR_SPLIT_VALID : CR_SPLIT_TRAIN;
        if (ld->group_col >= 0) {
            uint8_t *g = &ld->gsplit[ds->group[r]];
            if (*g == CR_UNSET) *g = sp;
            sp = *g;
        }
        ds->split[r] = sp;
    }
    return CR_OK;
}

/* Replace the first-appearance ids of one owner feature (and the features
 * sharing it) by vocabulary ids counted on the training rows only. */
static cr_status fit_vocab(cr_loader *ld, cr_dataset *ds, int o, cr_error *e) {
    cr_schema *s = ld->s;
    cr_feature *f = &s->features[o];
    cr_vocab *raw = ld->raw[o], *v = NULL;
    int64_t nraw = cr_vocab_size(raw) - 1, n_order = 0;
    int64_t *count = calloc((size_t)nraw + 1, sizeof *count);
    int32_t *order = malloc(((size_t)nraw + 1) * sizeof *order);
    int32_t *remap = malloc(((size_t)nraw + 1) * sizeof *remap);
    cr_status st = CR_OK;
    if (!count || !order || !remap || !(v = cr_vocab_new())) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory fitting the vocabulary of '%s'", f->name);
        goto fail;
    }
    /* Count in file order, so ties are broken by first appearance in training. */
    for (int64_t r = 0; r < ds->n; r++) {
        if (ds->split[r] != CR_SPLIT_TRAIN) continue;
        for (int i = o; i < s->n_features; i++) {
            if (ld->owner[i] != o) continue;
            const int32_t *ids;
            int64_t a, b;
            if (s->features[i].kind == CR_FEAT_CATEGORICAL) {
                ids = ds->cat + r * s->n_cat + ld->slot[i];
                a = 0, b = 1;
            } else {
                ids = ds->bag_ids[ld->slot[i]];
                a = ds->bag_off[ld->slot[i]][r], b = ds->bag_off[ld->slot[i]][r + 1];
            }
            for (int64_t j = a; j < b; j++) {
                int32_t id = ids[j];
                if (id == 0) continue;
                if (count[id]++ == 0) order[n_order++] = id;
            }
        }
    }
    for (int64_t j = 0; j < n_order; j++) {
        const char *key = cr_vocab_key(raw, order[j]);
        if ((st = cr_vocab_intern(v, key, strlen(key), count[order[j]], NULL, e))) goto fail;
    }
    if ((st = cr_vocab_finalize(v, f->min_count, f->max_vocab, e))) goto fail;
    remap[0] = 0;
    for (int64_t id = 1; id <= nraw; id++) {
        const char *key = cr_vocab_key(raw, (int32_t)id);
        remap[id] = cr_vocab_lookup(v, key, strlen(key));
    }
    for (int i = o; i < s->n_features; i++) {
        if (ld->owner[i] != o) continue;
        if (s->features[i].kind == CR_FEAT_CATEGORICAL) {
            int32_t *c = ds->cat + ld->slot[i];
            for (int64_t r = 0; r < ds->n; r++) c[r * s->n_cat] = remap[c[r * s->n_cat]];
        } else {
            int k = ld->slot[i];
            int32_t *ids = ds->bag_ids[k];
            for (int64_t j = 0, nb = ds->bag_off[k][ds->n]; j < nb; j++) ids[j] = remap[ids[j]];
        }
    }
    cr_vocab_free(f->vocab);
    f->vocab = v;
    v = NULL;
fail:
    cr_vocab_free(v);
    free(count);
    free(order);
    free(remap);
    return st;
}

/* Mean and standard deviation of the training rows (two passes, in double). */
static void fit_numeric(cr_loader *ld, cr_dataset *ds, int i) {
    cr_feature *f = &ld->s->features[i];
    int k = ld->slot[i], nd = ld->s->n_dense;
    f->mean = 0;
    f->std = 1;
    f->lo = INFINITY, f->hi = -INFINITY;
    double sum = 0, ss = 0;
    int64_t cnt = 0;
    for (int64_t r = 0; r < ds->n; r++)
        if (ds->split[r] == CR_SPLIT_TRAIN) {
            double v = ld->num[r * nd + k];
            sum += v, cnt++;
            f->lo = fmin(f->lo, v), f->hi = fmax(f->hi, v);
        }
    if (!cnt) f->lo = 1, f->hi = 0; /* unknown */
    if (f->transform != CR_TX_ZSCORE && f->transform != CR_TX_LOG1P_ZSCORE) return;
    double mean = cnt ? sum / (double)cnt : 0;
    for (int64_t r = 0; r < ds->n; r++)
        if (ds->split[r] == CR_SPLIT_TRAIN) {
            double d = ld->num[r * nd + k] - mean;
            ss += d * d;
        }
    double sd = cnt ? sqrt(ss / (double)cnt) : 0;
    f->mean = mean;
    f->std = sd > 0 && isfinite(sd) ? sd : 1; /* a constant column stays 0, not NaN */
}

/* Row-major temporaries -> the task-major (K, n) arrays of cr_dataset. */
static cr_status finish_layout(cr_loader *ld, cr_dataset *ds, cr_error *e) {
    const cr_schema *s = ld->s;
    size_t n = (size_t)ds->n;
    int nt = s->n_tasks, nd = s->n_dense;
    /* Arrays with no columns stay NULL. */
    if (nd) ds->dense = malloc(n * (size_t)nd * sizeof *ds->dense);
    ds->label = malloc(n * (size_t)nt * sizeof *ds->label);
    ds->mask = malloc(n * (size_t)nt * sizeof *ds->mask);
    if (ds->n_slices) ds->slices = malloc(n * (size_t)ds->n_slices);
    if (ds->n_extra) ds->extra = malloc(n * (size_t)ds->n_extra * sizeof *ds->extra);
    if ((nd && !ds->dense) || !ds->label || !ds->mask || (ds->n_slices && !ds->slices) ||
        (ds->n_extra && !ds->extra))
        return cr_err(e, CR_ERR_NOMEM, "out of memory laying out %zu rows", n);
    for (int k = 0; k < nd; k++) {
        const cr_feature *f = &s->features[s->dense_feat[k]];
        /* The last step of cr_feature_transform, so serving one row gives
         * bit-identical inputs. */
        for (size_t r = 0; r < n; r++)
            ds->dense[r * (size_t)nd + (size_t)k] =
                cr_feature_zscore(f, ld->num[r * (size_t)nd + (size_t)k]);
    }
    for (size_t r = 0; r < n; r++) {
        for (int t = 0; t < nt; t++) {
            ds->label[(size_t)t * n + r] = ld->lab[r * (size_t)nt + (size_t)t];
            ds->mask[(size_t)t * n + r] = ld->msk[r * (size_t)nt + (size_t)t];
        }
        for (int k = 0; k < ds->n_slices; k++)
            ds->slices[(size_t)k * n + r] = ld->sl[r * (size_t)ds->n_slices + (size_t)k];
        for (int k = 0; k < ds->n_extra; k++)
            ds->extra[(size_t)k * n + r] = ld->ex[r * (size_t)ds->n_extra + (size_t)k];
    }
    return CR_OK;
}

static void loader_free(cr_loader *ld) {
    cr_csv_close(ld->csv);
    for (int i = 0; ld->raw && i < ld->s->n_features; i++) cr_vocab_free(ld->raw[i]);
    for (int t = 0; t < ld->s->n_tasks; t++) {
        if (ld->label) cr_expr_free(ld->label[t].x);
        if (ld->maskv) cr_expr_free(ld->maskv[t].x);
    }
    free(ld->feat_col); free(ld->owner); free(ld->slot); free(ld->raw);
    free(ld->var_col); free(ld->col_var); free(ld->vars); free(ld->miss); free(ld->uses);
    free(ld->label); free(ld->maskv); free(ld->mask_kind); free(ld->mask_task);
    cr_vocab_free(ld->groups); cr_vocab_free(ld->users);
    free(ld->gsplit); free(ld->gline);
    free(ld->num); free(ld->times); free(ld->lab); free(ld->msk); free(ld->sl); free(ld->ex);
    free(ld->bag_cap);
}

cr_status cr_dataset_load(cr_dataset *ds, cr_schema *schema, const cr_data_cfg *cfg, int fit,
                          cr_error *e) {
    memset(ds, 0, sizeof *ds);
    cr_loader ld = {.cfg = cfg, .s = schema, .fit = fit};
    cr_status st;
    if ((st = cr_schema_finish(schema, e))) return st;
    if ((st = cr_csv_open(&ld.csv, cfg->path, cfg->sep, e))) return st;
    if (cfg->n_shards > 1 && (st = cr_csv_shard(ld.csv, cfg->shard, cfg->n_shards, e))) {
        cr_csv_close(ld.csv);
        return st;
    }
    ld.ncols = cr_csv_ncols(ld.csv);
    ds->n_cat = schema->n_cat;
    ds->n_multi = schema->n_multi;
    ds->n_dense = schema->n_dense;
    ds->n_tasks = schema->n_tasks;
    ds->n_slices = cfg->n_slices;
    ds->n_extra = cfg->n_extra;
    ds->bag_off = calloc((size_t)schema->n_multi + 1, sizeof *ds->bag_off);
    ds->bag_ids = calloc((size_t)schema->n_multi + 1, sizeof *ds->bag_ids);
    ds->slice_names = calloc((size_t)cfg->n_slices + 1, sizeof *ds->slice_names);
    ds->extra_names = calloc((size_t)cfg->n_extra + 1, sizeof *ds->extra_names);
    if (!ds->bag_off || !ds->bag_ids || !ds->slice_names || !ds->extra_names) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory loading %s", cfg->path);
        goto fail;
    }
    for (int k = 0; k < cfg->n_slices; k++) memcpy(ds->slice_names[k], cfg->slices[k], 64);
    for (int k = 0; k < cfg->n_extra; k++) memcpy(ds->extra_names[k], cfg->extra[k], 64);
    if ((st = setup(&ld, e))) goto fail;
    if ((st = grow_rows(&ld, ds, 1, e))) goto fail;
    for (int m = 0; m < schema->n_multi; m++) ds->bag_off[m][0] = 0;
    if ((st = read_rows(&ld, ds, e))) goto fail;
    if (ds->n == 0) {
        st = cr_err(e, CR_ERR_PARSE, "%s: no data rows after the header", cfg->path);
        goto fail;
    }
    if (cfg->split == CR_SPLIT_TIME && (st = time_split(&ld, ds, e))) goto fail;
    for (int64_t r = 0; r < ds->n; r++) ds->n_split[ds->split[r]]++;
    if (fit) {
        if (ds->n_split[CR_SPLIT_TRAIN] == 0) {
            st = cr_err(e, CR_ERR_CONFIG, "%s: the split leaves no training rows (%lld rows: "
                        "%lld valid, %lld test)", cfg->path, (long long)ds->n,
                        (long long)ds->n_split[CR_SPLIT_VALID], (long long)ds->n_split[CR_SPLIT_TEST]);
            goto fail;
        }
        for (int i = 0; i < schema->n_features; i++) {
            if (ld.raw[i] && (st = fit_vocab(&ld, ds, i, e))) goto fail;
            if (schema->features[i].kind == CR_FEAT_NUMERIC) fit_numeric(&ld, ds, i);
        }
        if ((st = cr_schema_finish(schema, e))) goto fail;
    }
    if ((st = finish_layout(&ld, ds, e))) goto fail;
    loader_free(&ld);
    return CR_OK;
fail:
    loader_free(&ld);
    cr_dataset_free(ds);
    return st;
}

void cr_dataset_free(cr_dataset *ds) {
    if (!ds) return;
    free(ds->cat);
    for (int m = 0; m < ds->n_multi && ds->bag_off; m++) free(ds->bag_off[m]);
    for (int m = 0; m < ds->n_multi && ds->bag_ids; m++) free(ds->bag_ids[m]);
    free(ds->bag_off);
    free(ds->bag_ids);
    free(ds->dense);
    free(ds->raw);
    free(ds->label);
    free(ds->mask);
    free(ds->weight);
    free(ds->group);
    free(ds->user);
    free(ds->split);
    free(ds->slices);
    free(ds->slice_names);
    free(ds->extra);
    free(ds->extra_names);
    memset(ds, 0, sizeof *ds);
}

cr_status cr_dataset_rows(const cr_dataset *ds, int split, uint32_t **rows, int64_t *n,
                          cr_error *e) {
    *rows = NULL;
    *n = 0;
    if (split < 0 || split > 2)
        return cr_err(e, CR_ERR_ARG, "cr_dataset_rows: split must be 0, 1 or 2, got %d", split);
    int64_t cnt = ds->n_split[split];
    *rows = malloc(((size_t)cnt + 1) * sizeof **rows);
    if (!*rows) return cr_err(e, CR_ERR_NOMEM, "out of memory listing %lld rows", (long long)cnt);
    int64_t k = 0;
    for (int64_t r = 0; r < ds->n; r++)
        if (ds->split[r] == split) (*rows)[k++] = (uint32_t)r;
    CR_ASSERT(k == cnt);
    *n = cnt;
    return CR_OK;
}
