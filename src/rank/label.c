/*
 * label.c - runs a frozen teacher over target-domain rows as the map file
 * says, and writes its predictions beside the input columns. Streams: one
 * chunk of rows is held at a time, whatever the file's size. The teacher
 * is only read, never updated; its ids come from its own vocabularies, so
 * a target value it never saw lands on its out-of-vocabulary row 0.
 *
 * Legend: B rows in a chunk, NF teacher features, NC input columns,
 * NH teacher heads, NT mapped teacher tasks.
 */
#include "label.h"

#include "../data/config.h"
#include "checkpoint.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct label_ctx {
    const cr_label_opts *o;
    cr_ranker *m;
    cr_schema s;
    cr_distill_map map;
    int *fmap;                /* (NF) map entry of each teacher feature */
    cr_csv *in;
    cr_csv_writer *w;
    int NC, NF, chunk;
    char *arena;              /* the chunk's input fields, NUL-separated */
    size_t arena_n, arena_cap;
    size_t *foff;             /* (B, NC) field offsets into arena */
    int64_t *line;            /* (B) input line of each row */
    const char **vals;        /* (B, NF) each teacher feature's text */
    cr_batch b;
    int64_t *off;             /* (n_multi, B + 1) */
    int64_t **bag_off_p;
    int32_t **bag_ids;        /* [n_multi] grown as needed */
    size_t *bag_cap;
    cr_ranker_ws *ws;
    float *pred;              /* (NH, B) */
    cr_label_report rep;
} label_ctx;

static cr_status bad_value(const label_ctx *c, int fi, int i, const char *v, const char *what,
                           cr_error *e) {
    const cr_map_feature *mf = &c->map.features[c->fmap[fi]];
    if (mf->source == CR_MAP_CONSTANT)
        return cr_err(e, CR_ERR_PARSE, "%s:%d:%d: constant '%.60s' for teacher feature '%s': %s",
                      c->map.path, mf->vline, mf->vcol, v, mf->feature, what);
    return cr_err(e, CR_ERR_PARSE, "%s:%lld: column '%s' (teacher feature '%s'): %s, got '%.60s'",
                  c->o->data, (long long)c->line[i], mf->value, mf->feature, what, v);
}

/* The chunk's rows -> the teacher's batch through the feature encoder
 * (data/config.h) that training and serving use, so a value gets the id
 * the teacher learnt for it; coverage is counted as it goes. */
static cr_status encode(label_ctx *c, int B, cr_error *e) {
    const cr_schema *s = &c->s;
    cr_batch *b = &c->b;
    for (int fi = 0; fi < c->NF; fi++) {
        const cr_feature *f = &s->features[fi];
        cr_label_feature *cov = &c->rep.features[fi];
        cr_encoder enc;
        cr_encoder_init(&enc, s, fi, NULL, 1);
        int slot = f->kind == CR_FEAT_MULTI ? 0 : -1, q = 0;
        for (int k = 0; k < s->n_cat; k++) if (s->cat_feat[k] == fi) slot = k;
        for (int k = 0; k < s->n_multi; k++) if (s->multi_feat[k] == fi) q = k;
        for (int k = 0; k < s->n_dense; k++) if (s->dense_feat[k] == fi) slot = k;
        int64_t *off = c->off + (size_t)q * (size_t)(c->chunk + 1), n = 0;
        off[0] = 0;
        for (int i = 0; i < B; i++) {
            const char *v = c->vals[(size_t)i * c->NF + fi];
            cr_value x;
            cr_value_text(&x, v, strlen(v));
            cov->empty += x.missing;
            cr_status st = CR_OK;
            int32_t id = 0;
            double num = 0;
            int64_t n0 = n;
            switch (f->kind) {
            case CR_FEAT_CATEGORICAL:
                st = cr_encode_id(&enc, &x, &id, e);
                cov->oov += !st && !x.missing && cov->vocab && id == 0;
                b->cat[(size_t)i * s->n_cat + slot] = id;
                break;
            case CR_FEAT_BUCKET:
                st = cr_encode_bucket(&enc, &x, &id, e);
                b->cat[(size_t)i * s->n_cat + slot] = id;
                break;
            case CR_FEAT_MULTI:
                st = cr_encode_bag(&enc, &x, &c->bag_ids[q], &c->bag_cap[q], &n, e);
                for (int64_t j = n0; !st && cov->vocab && j < n; j++) cov->oov += c->bag_ids[q][j] == 0;
                off[i + 1] = n;
                break;
            case CR_FEAT_NUMERIC:
                st = cr_encode_number(&enc, &x, &num, e);
                if (!st) b->dense[(size_t)i * s->n_dense + slot] = cr_feature_zscore(f, num);
                break;
            }
            if (st == CR_ERR_PARSE && x.fail) return bad_value(c, fi, i, v, x.why, e);
            if (st) return st;
            cov->values += f->kind == CR_FEAT_MULTI ? n - n0 : !x.missing;
        }
        if (f->kind == CR_FEAT_MULTI) {
            b->bag_off[q] = off;
            b->bag_ids[q] = c->bag_ids[q];
        }
    }
    b->B = B;
    return CR_OK;
}

static cr_status setup(label_ctx *c, cr_error *e) {
    const cr_label_opts *o = c->o;
    const cr_schema *s = &c->s;
    c->NF = s->n_features;
    c->NC = cr_csv_ncols(c->in);
    c->chunk = o->batch > 0 ? o->batch : 1024;
    int B = c->chunk, nm = s->n_multi > 0 ? s->n_multi : 1;
    c->fmap = calloc((size_t)c->NF + 1, sizeof(int));
    c->foff = malloc((size_t)B * (size_t)c->NC * sizeof(size_t));
    c->line = malloc((size_t)B * sizeof(int64_t));
    c->vals = malloc(((size_t)B * (size_t)c->NF + 1) * sizeof(char *));
    c->b.cat = malloc(((size_t)B * (size_t)s->n_cat + 1) * sizeof(int32_t));
    c->b.dense = malloc(((size_t)B * (size_t)s->n_dense + 1) * sizeof(float));
    c->b.label = calloc((size_t)B * (size_t)s->n_tasks + 1, sizeof(float));
    c->b.mask = calloc((size_t)B * (size_t)s->n_tasks + 1, sizeof(float));
    c->off = malloc((size_t)nm * (size_t)(B + 1) * sizeof(int64_t));
    c->bag_off_p = calloc((size_t)nm, sizeof(int64_t *));
    c->bag_ids = calloc((size_t)nm, sizeof(int32_t *));
    c->bag_cap = calloc((size_t)nm, sizeof(size_t));
    c->pred = malloc((size_t)c->m->cfg.n_heads * (size_t)B * sizeof(float));
    c->rep.features = calloc((size_t)c->NF + 1, sizeof(cr_label_feature));
    if (!c->fmap || !c->foff || !c->line || !c->vals || !c->b.cat || !c->b.dense ||
        !c->b.label || !c->b.mask || !c->off || !c->bag_off_p || !c->bag_ids || !c->bag_cap ||
        !c->pred || !c->rep.features)
        return cr_err(e, CR_ERR_NOMEM, "out of memory setting up labelling");
    c->b.max_B = B;
    c->b.n_cat = s->n_cat;
    c->b.n_multi = s->n_multi;
    c->b.n_dense = s->n_dense;
    c->b.n_tasks = s->n_tasks;
    c->b.bag_off = c->bag_off_p;
    c->b.bag_ids = c->bag_ids;
    for (int i = 0; i < c->map.n_features; i++) c->fmap[c->map.features[i].teacher_feature] = i;
    cr_label_report *r = &c->rep;
    r->n_features = c->NF;
    for (int fi = 0; fi < c->NF; fi++) {
        const cr_feature *f = &s->features[fi];
        const cr_map_feature *mf = &c->map.features[c->fmap[fi]];
        cr_label_feature *cov = &r->features[fi];
        snprintf(cov->feature, sizeof cov->feature, "%s", f->name);
        cov->kind = f->kind;
        cov->source = mf->source;
        snprintf(cov->from, sizeof cov->from, "%.63s", mf->value);
        cov->vocab = (f->kind == CR_FEAT_CATEGORICAL || f->kind == CR_FEAT_MULTI) &&
                     s->features[cr_feature_owner(s, fi)].vocab != NULL;
        r->n_defaulted += mf->source == CR_MAP_DEFAULT;
        r->n_constant += mf->source == CR_MAP_CONSTANT;
        r->n_column += mf->source == CR_MAP_COLUMN;
    }
    r->defaulted_share = c->NF ? (double)r->n_defaulted / c->NF : 0.0;
    r->n_tasks = c->map.n_tasks;
    for (int t = 0; t < c->map.n_tasks; t++) {
        snprintf(r->task_column[t], 64, "%s", c->map.tasks[t].name);
        snprintf(r->task_head[t], 64, "%s", c->map.tasks[t].head);
        r->task_form[t] = c->map.tasks[t].form;
    }
    return cr_ranker_ws_create(&c->ws, c->m, B, 0, 0, e);
}

/* Score the chunk and append its rows to the output. */
static cr_status flush(label_ctx *c, int B, cr_error *e) {
    if (B == 0) return CR_OK;
    for (int i = 0; i < B; i++)
        for (int fi = 0; fi < c->NF; fi++) {
            const cr_map_feature *mf = &c->map.features[c->fmap[fi]];
            c->vals[(size_t)i * c->NF + fi] =
                mf->source == CR_MAP_COLUMN
                    ? c->arena + c->foff[(size_t)i * c->NC + (size_t)mf->csv_col]
                : mf->source == CR_MAP_CONSTANT ? mf->value
                                                : "";
        }
    CR_TRY(encode(c, B, e));
    cr_status s = cr_ranker_forward(c->m, c->ws, &c->b, e);
    if (s) {
        cr_err_prefix(e, "%s, rows at lines %lld-%lld", c->o->data, (long long)c->line[0],
                      (long long)c->line[B - 1]);
        return s;
    }
    cr_ranker_predict(c->m, c->ws, c->pred);
    const char **fields = malloc(((size_t)c->NC + (size_t)c->map.n_tasks) * sizeof(char *));
    char (*num)[32] = malloc((size_t)c->map.n_tasks * sizeof *num);
    if (!fields || !num) s = cr_err(e, CR_ERR_NOMEM, "out of memory writing rows");
    for (int i = 0; i < B && !s; i++) {
        for (int j = 0; j < c->NC; j++) fields[j] = c->arena + c->foff[(size_t)i * c->NC + j];
        for (int t = 0; t < c->map.n_tasks; t++) {
            const cr_map_task *k = &c->map.tasks[t];
            const float *src = k->form == CR_FORM_LOGIT ? c->ws->out : c->pred;
            /* %.9g: a float read back from the text is the same float */
            snprintf(num[t], sizeof num[t], "%.9g",
                     (double)src[(size_t)k->teacher_head * (size_t)B + (size_t)i]);
            fields[c->NC + t] = num[t];
        }
        s = cr_csv_write_row(c->w, c->NC + c->map.n_tasks, fields, e);
    }
    free(fields);
    free(num);
    c->rep.rows += B;
    c->arena_n = 0;
    return s;
}

/* Rows labelled, their rate and the eta from the bytes of --data read. */
static void progress(const label_ctx *c, cr_meter *m, int final) {
    char extra[64];
    cr_meter_count(extra, sizeof extra, (double)c->rep.rows);
    strncat(extra, " rows", sizeof extra - strlen(extra) - 1);
    cr_meter_update(m, cr_csv_offset(c->in), (double)c->rep.rows, "rows", extra, final);
    if (final) cr_meter_done(m);
}

/* The coverage counts of every rank's shard, on every rank. */
static cr_status sum_report(label_ctx *c, cr_error *e) {
    const cr_dist *d = c->o->dist;
    if (cr_dist_size(d) == 1) return CR_OK;
    cr_label_report *r = &c->rep;
    int64_t *v = malloc((3 * (size_t)c->NF + 1) * sizeof *v);
    if (!v) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    v[0] = r->rows;
    for (int fi = 0; fi < c->NF; fi++) {
        v[1 + 3 * fi] = r->features[fi].empty;
        v[2 + 3 * fi] = r->features[fi].values;
        v[3 + 3 * fi] = r->features[fi].oov;
    }
    cr_status s = cr_dist_sum_i64(d, v, 3 * (size_t)c->NF + 1, e);
    r->rows = v[0];
    for (int fi = 0; fi < c->NF; fi++) {
        r->features[fi].empty = v[1 + 3 * fi];
        r->features[fi].values = v[2 + 3 * fi];
        r->features[fi].oov = v[3 + 3 * fi];
    }
    free(v);
    if (!s) s = cr_dist_max_f64(d, &r->seconds, 1, e);
    return s;
}

static cr_status run(label_ctx *c, cr_error *e) {
    const cr_label_opts *o = c->o;
    CR_TRY(cr_ranker_load(&c->m, &c->s, o->teacher, e));
    CR_TRY(cr_ranker_pack(c->m, e)); /* the teacher is never trained here */
    CR_TRY(cr_distill_map_load(&c->map, o->map, e));
    for (int i = 0; i < o->n_force_default; i++) {
        int f = 0;
        while (f < c->map.n_features && strcmp(c->map.features[f].feature, o->force_default[i]))
            f++;
        if (f == c->map.n_features)
            return cr_err(e, CR_ERR_CONFIG, "%s: feature '%s' (to read as its default) is not "
                          "in the map", o->map, o->force_default[i]);
        c->map.features[f].source = CR_MAP_DEFAULT;
        c->map.features[f].value[0] = 0;
    }
    CR_TRY(cr_csv_open(&c->in, o->data, o->sep, e));
    CR_TRY(cr_distill_map_bind(&c->map, &c->s, &c->m->cfg, o->teacher, c->in, e));
    CR_TRY(setup(c, e));
    const int rank = cr_dist_rank(o->dist);
    char part[4200];
    cr_dist_part_path(o->dist, o->out, part, sizeof part);
    CR_TRY(cr_csv_shard(c->in, rank, cr_dist_size(o->dist), e));
    CR_TRY(cr_csv_writer_open(&c->w, part, 0, e));
    if (rank == 0) { /* the header once, at the top of the joined file */
        const char **hdr = malloc(((size_t)c->NC + (size_t)c->map.n_tasks) * sizeof(char *));
        if (!hdr) return cr_err(e, CR_ERR_NOMEM, "out of memory");
        for (int j = 0; j < c->NC; j++) hdr[j] = cr_csv_colname(c->in, j);
        for (int t = 0; t < c->map.n_tasks; t++) hdr[c->NC + t] = c->map.tasks[t].name;
        cr_status s = cr_csv_write_row(c->w, c->NC + c->map.n_tasks, hdr, e);
        free(hdr);
        if (s) return s;
    }
    double t0 = cr_now();
    cr_meter m;
    cr_meter_start(&m, o->progress, "label", cr_csv_size(c->in), "bytes");
    int B = 0;
    for (;;) {
        int done = 0;
        CR_TRY(cr_csv_next(c->in, &done, e));
        if (done) break;
        c->line[B] = cr_csv_line(c->in);
        for (int j = 0; j < c->NC; j++) {
            size_t len;
            const char *v = cr_csv_field(c->in, j, &len);
            CR_TRY(cr_grow((void **)&c->arena, &c->arena_cap, c->arena_n + len + 1, 1, e));
            memcpy(c->arena + c->arena_n, v, len + 1);
            c->foff[(size_t)B * c->NC + j] = c->arena_n;
            c->arena_n += len + 1;
        }
        if (++B == c->chunk) {
            CR_TRY(flush(c, B, e));
            B = 0;
            progress(c, &m, 0);
            cr_progress_info pi = {"label", cr_csv_offset(c->in), cr_csv_size(c->in), "bytes",
                                   cr_now() - t0, NAN};
            if (cr_ctx_poll(o->ctx, &pi))
                return cr_err(e, CR_ERR_CANCELLED, "%s: labelling cancelled after %lld rows; "
                              "%s was not written", o->data, (long long)c->rep.rows, o->out);
        }
    }
    CR_TRY(flush(c, B, e));
    progress(c, &m, m.printed);
    c->rep.seconds = cr_now() - t0;
    cr_status s = cr_csv_writer_commit(c->w, e);
    c->w = NULL;
    if (s) return s;
    CR_TRY(cr_dist_concat(o->dist, part, o->out, e));
    CR_TRY(sum_report(c, e));
    if (o->coverage && rank == 0) {
        char *json = NULL;
        CR_TRY(cr_label_report_json(&c->rep, &json, e));
        s = cr_write_file_atomic(o->coverage, json, strlen(json), e);
        free(json);
    }
    return s;
}

cr_status cr_distill_label(const cr_label_opts *o, cr_label_report *r, cr_error *e) {
    if (r) memset(r, 0, sizeof *r);
    if (!o || !o->teacher || !o->map || !o->data || !o->out)
        return cr_err(e, CR_ERR_ARG, "label: teacher, map, data and out are required");
    label_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    cr_status s = run(&c, e);
    if (c.w) cr_csv_writer_abort(c.w);
    if (c.in) cr_csv_close(c.in);
    for (int q = 0; c.bag_ids && q < c.s.n_multi; q++) free(c.bag_ids[q]);
    free(c.bag_ids);
    free(c.bag_cap);
    free(c.bag_off_p);
    free(c.off);
    free(c.b.cat);
    free(c.b.dense);
    free(c.b.label);
    free(c.b.mask);
    free(c.pred);
    free(c.vals);
    free(c.line);
    free(c.foff);
    free(c.arena);
    free(c.fmap);
    cr_ranker_ws_free(c.ws);
    cr_ranker_free(c.m);
    cr_schema_free(&c.s);
    cr_distill_map_free(&c.map);
    if (!s && r) *r = c.rep;
    else free(c.rep.features);
    return s;
}

void cr_label_report_free(cr_label_report *r) {
    if (!r) return;
    free(r->features);
    r->features = NULL;
}

cr_status cr_label_report_json(const cr_label_report *r, char **json, cr_error *e) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return cr_err(e, CR_ERR_NOMEM, "out of memory writing the coverage report");
    cJSON_AddNumberToObject(o, "rows", (double)r->rows);
    cJSON_AddNumberToObject(o, "features", r->n_features);
    cJSON_AddNumberToObject(o, "features_from_columns", r->n_column);
    cJSON_AddNumberToObject(o, "features_constant", r->n_constant);
    cJSON_AddNumberToObject(o, "features_defaulted", r->n_defaulted);
    cJSON_AddNumberToObject(o, "defaulted_share", r->defaulted_share);
    cJSON *fs = cJSON_AddArrayToObject(o, "per_feature");
    for (int i = 0; fs && i < r->n_features; i++) {
        const cr_label_feature *f = &r->features[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "feature", f->feature);
        cJSON_AddStringToObject(x, "type", cr_feat_kind_names[f->kind]);
        cJSON_AddStringToObject(x, "source", cr_map_source_names[f->source]);
        if (f->source != CR_MAP_DEFAULT) cJSON_AddStringToObject(x, "from", f->from);
        cJSON_AddNumberToObject(x, "empty_share", r->rows ? (double)f->empty / r->rows : 0.0);
        cJSON_AddNumberToObject(x, "values", (double)f->values);
        if (f->vocab && f->source != CR_MAP_DEFAULT) {
            cJSON_AddNumberToObject(x, "oov", (double)f->oov);
            cJSON_AddNumberToObject(x, "oov_rate", f->values ? (double)f->oov / f->values : 0.0);
        }
        cJSON_AddItemToArray(fs, x);
    }
    cJSON *ts = cJSON_AddArrayToObject(o, "teacher_tasks");
    for (int t = 0; ts && t < r->n_tasks; t++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "column", r->task_column[t]);
        cJSON_AddStringToObject(x, "head", r->task_head[t]);
        cJSON_AddStringToObject(x, "form", cr_map_form_names[r->task_form[t]]);
        cJSON_AddItemToArray(ts, x);
    }
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    *json = cJSON_Print(o);
    cJSON_Delete(o);
    return *json ? CR_OK : cr_err(e, CR_ERR_NOMEM, "out of memory writing the coverage report");
}
