/*
 * model_api.c - the public cr_model_* functions of crossrec.h: load a
 * saved ranker, encode rows given as text with the model's own schema, and
 * score them. The loaded model is never written, so one model serves many
 * threads; each cr_model_score call brings its own workspace and batch
 * (requests, with their workspace pool, are in request_api.c).
 */
#include "serve_internal.h"

#include "../rank/checkpoint.h"
#include "../rank/evaluate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CR_SCORE_CHUNK 1024

/* "YYYYmmddTHHMMSSZ-<hash>": the mtime says when, a hash of the header
 * (names, shapes, offsets, metadata) and of the data's ends tells apart
 * two files written in the same second. */
static cr_status cr_model_version_of(char *out, size_t cap, const char *path, cr_error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return cr_err(e, CR_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    unsigned char len8[8];
    cr_status s = CR_OK;
    char *hdr = NULL;
    if (fstat(fileno(f), &st) || fread(len8, 1, 8, f) != 8) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: cannot read the safetensors header length", path);
        goto done;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    if (n > (uint64_t)st.st_size - 8 || n > (100u << 20)) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: header of %llu bytes does not fit the file", path,
                   (unsigned long long)n);
        goto done;
    }
    hdr = malloc(n + 1);
    if (!hdr || fread(hdr, 1, n, f) != n) {
        s = cr_err(e, hdr ? CR_ERR_FORMAT : CR_ERR_NOMEM, "%s: cannot read the header", path);
        goto done;
    }
    /* the header alone does not change when only the weights do (same
     * shapes, same offsets): mix in up to 1 MiB from each end of the data */
    uint64_t h = cr_hash64(hdr, n);
    uint64_t data = (uint64_t)st.st_size - 8 - n, part = data < (1u << 20) ? data : (1u << 20);
    for (int end = 0; end < 2 && part > 0; end++) {
        char *buf = malloc(part);
        if (!buf || fseeko(f, (off_t)(end ? (uint64_t)st.st_size - part : 8 + n), SEEK_SET) ||
            fread(buf, 1, part, f) != part) {
            free(buf);
            s = cr_err(e, buf ? CR_ERR_FORMAT : CR_ERR_NOMEM, "%s: cannot read the tensor data", path);
            goto done;
        }
        h = (h ^ cr_hash64(buf, part)) * 0x100000001b3ull;
        free(buf);
    }
    struct tm tm;
    char when[32];
    time_t t = st.st_mtime;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(out, cap, "%s-%016llx", when, (unsigned long long)h);
done:
    free(hdr);
    fclose(f);
    return s;
}

void cr_model_opts_defaults(cr_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->formula = CR_RANK_WEIGHTED_SUM;
    o->precision = CR_PRECISION_FP32;
    o->max_pool = 16;
}

cr_status cr_model_load(cr_model **out, const char *path, cr_error *e) {
    cr_model_opts o;
    cr_model_opts_defaults(&o);
    return cr_model_load_opts(out, path, &o, e);
}

cr_status cr_model_load_opts(cr_model **out, const char *path, const cr_model_opts *o,
                             cr_error *e) {
    *out = NULL;
    cr_model *m = calloc(1, sizeof *m);
    if (!m) return cr_err(e, CR_ERR_NOMEM, "out of memory loading %s", path);
    cr_status s = cr_ranker_load(&m->r, &m->s, path, e);
    if (s) {
        free(m);
        return s;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    for (int h = 0; h < m->r->cfg.n_heads; h++)
        if (m->r->cfg.heads[h].served) m->out_head[m->n_out++] = h;
    /* a loaded model is only scored: pack its weights once */
    if ((s = cr_ranker_pack(m->r, e)) ||
        (s = cr_model_version_of(m->version, sizeof m->version, path, e)) ||
        (s = cr_model_request_init(m, o, e))) {
        cr_model_free(m);
        return s;
    }
    *out = m;
    return CR_OK;
}

const char *cr_model_version(const cr_model *m) { return m->version; }
const char *cr_model_path(const cr_model *m) { return m->path; }

cr_status cr_model_check_finite(const cr_model *m, cr_error *e) {
    const cr_ptable *t[2] = {&m->r->params, &m->r->tables};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < t[p]->n; i++) {
            const float *x = cr_ptable_ptr(t[p], t[p]->data, i);
            for (size_t j = 0; j < t[p]->t[i].numel; j++)
                if (!isfinite(x[j]))
                    return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s' holds %g at element %zu: "
                                  "the model would score every request as null",
                                  m->path, t[p]->t[i].name, (double)x[j], j);
        }
    return CR_OK;
}
cr_precision cr_model_precision(const cr_model *m) { return m->precision; }

char cr_model_input_sep(const cr_model *m, int i) {
    if (i < 0 || i >= m->s.n_features || m->s.features[i].kind != CR_FEAT_MULTI) return 0;
    return m->s.features[i].sep;
}

int cr_model_input_is_number(const cr_model *m, int i) {
    if (i < 0 || i >= m->s.n_features) return 0;
    return m->s.features[i].kind == CR_FEAT_NUMERIC || m->s.features[i].kind == CR_FEAT_BUCKET;
}

void cr_model_free(cr_model *m) {
    if (!m) return;
    cr_model_request_free(m);
    cr_ranker_free(m->r);
    cr_schema_free(&m->s);
    free(m);
}

int cr_model_n_inputs(const cr_model *m) { return m->s.n_features; }
const char *cr_model_input_column(const cr_model *m, int i) {
    return i >= 0 && i < m->s.n_features ? m->s.features[i].column : NULL;
}
int cr_model_n_outputs(const cr_model *m) { return m->n_out; }
const char *cr_model_output_name(const cr_model *m, int i) {
    return i >= 0 && i < m->n_out ? m->r->cfg.heads[m->out_head[i]].name : NULL;
}
int cr_model_output_is_binary(const cr_model *m, int i) {
    return i >= 0 && i < m->n_out && m->r->cfg.heads[m->out_head[i]].kind == CR_HEAD_BINARY;
}

/* A batch whose buffers this file owns (cr_batch_init needs a dataset). */
typedef struct score_buf {
    cr_batch b;
    int64_t *off;     /* (n_multi, chunk + 1) */
    int32_t *ids;     /* grown as needed, per multi feature */
    size_t   ids_cap;
} score_buf;

/* One input value of one row, from a column of any type: text (NULL or ""
 * = missing) or a number (NaN = missing). */
typedef struct cell {
    const char *s;   /* text, or NULL for a number */
    size_t      len;
    double      x;
    int         missing;
    char        buf[32]; /* an integer id as text */
} cell;

static void cell_at(const cr_column *c, int64_t r, cell *v) {
    int64_t at = r * (c->stride ? c->stride : 1);
    v->s = NULL;
    v->missing = 0;
    switch (c->type) {
    case CR_COL_TEXT: {
        const char *s = ((const char *const *)c->data)[at];
        v->s = s ? s : "";
        v->len = strlen(v->s);
        v->missing = !v->len;
        return;
    }
    case CR_COL_F64: v->x = ((const double *)c->data)[at]; break;
    case CR_COL_F32: v->x = ((const float *)c->data)[at]; break;
    case CR_COL_I64: v->x = (double)((const int64_t *)c->data)[at]; break;
    case CR_COL_I32: v->x = ((const int32_t *)c->data)[at]; break;
    }
    v->missing = isnan(v->x);
}

/* The value as text, for a vocabulary lookup: text as it is, an integral
 * number as its decimal digits (ids read from a CSV look the same). */
static cr_status cell_text(cell *v, const cr_model *m, const cr_column *c, int64_t r,
                           const cr_feature *f, cr_error *e) {
    if (v->s) return CR_OK;
    if (!isfinite(v->x) || v->x != floor(v->x) || fabs(v->x) > 9.0e15)
        return cr_err(e, CR_ERR_PARSE, "row %lld, column '%s': expected an id, got the number %g",
                      (long long)r, f->column, v->x);
    if (c->type == CR_COL_I64)
        snprintf(v->buf, sizeof v->buf, "%lld", (long long)((const int64_t *)c->data)[r * (c->stride ? c->stride : 1)]);
    else
        snprintf(v->buf, sizeof v->buf, "%.0f", v->x);
    v->s = v->buf;
    v->len = strlen(v->buf);
    (void)m;
    return CR_OK;
}

/* The value as a number, parsing text. */
static cr_status cell_number(cell *v, int64_t r, const cr_feature *f, cr_error *e) {
    if (!v->s) {
        if (!isfinite(v->x))
            return cr_err(e, CR_ERR_PARSE, "row %lld, column '%s': expected a finite number, got %g",
                          (long long)r, f->column, v->x);
        return CR_OK;
    }
    char *end;
    errno = 0;
    v->x = strtod(v->s, &end);
    if (errno || end == v->s || *end || !isfinite(v->x))
        return cr_err(e, CR_ERR_PARSE, "row %lld, column '%s': expected a finite number, got '%.60s'",
                      (long long)r, f->column, v->s);
    return CR_OK;
}

static cr_status encode(const cr_model *m, score_buf *sb, int64_t r0, int B,
                        const cr_column *cols, int32_t **bag_ids, size_t *bag_cap,
                        cr_error *e) {
    const cr_schema *s = &m->s;
    cr_batch *b = &sb->b;
    cell v;
    for (int c = 0; c < s->n_cat; c++) {
        int fi = s->cat_feat[c];
        const cr_feature *f = &s->features[fi];
        const cr_feature *own = &s->features[cr_feature_owner(s, fi)];
        for (int i = 0; i < B; i++) {
            int64_t r = r0 + i;
            cell_at(&cols[fi], r, &v);
            int32_t id = 0;
            if (f->kind == CR_FEAT_BUCKET) {
                if (!v.missing) {
                    CR_TRY(cell_number(&v, r, f, e));
                    id = cr_feature_bucket(f, v.x);
                }
            } else if (v.missing) {
                id = cr_feature_id(own, "", 0);
            } else {
                CR_TRY(cell_text(&v, m, &cols[fi], r, f, e));
                id = cr_feature_id(own, v.s, v.len);
            }
            b->cat[(size_t)i * (size_t)s->n_cat + (size_t)c] = id;
        }
    }
    for (int q = 0; q < s->n_multi; q++) {
        int fi = s->multi_feat[q];
        const cr_feature *f = &s->features[fi];
        const cr_feature *own = &s->features[cr_feature_owner(s, fi)];
        int64_t *off = sb->off + (size_t)q * (CR_SCORE_CHUNK + 1);
        size_t n = 0;
        off[0] = 0;
        for (int i = 0; i < B; i++) {
            int64_t r = r0 + i;
            cell_at(&cols[fi], r, &v);
            const char *p = "";
            if (!v.missing) {
                CR_TRY(cell_text(&v, m, &cols[fi], r, f, e));
                p = v.s;
            }
            while (*p) {
                const char *t = strchr(p, f->sep);
                size_t len = t ? (size_t)(t - p) : strlen(p);
                if (len) {
                    if (n == bag_cap[q]) {
                        size_t nc = bag_cap[q] ? 2 * bag_cap[q] : 4096;
                        int32_t *np = realloc(bag_ids[q], nc * sizeof *np);
                        if (!np) return cr_err(e, CR_ERR_NOMEM, "out of memory encoding bags");
                        bag_ids[q] = np;
                        bag_cap[q] = nc;
                    }
                    bag_ids[q][n++] = cr_feature_id(own, p, len);
                }
                p += len + (t ? 1 : 0);
            }
            off[i + 1] = (int64_t)n;
        }
        b->bag_off[q] = off;
        b->bag_ids[q] = bag_ids[q];
    }
    for (int d = 0; d < s->n_dense; d++) {
        int fi = s->dense_feat[d];
        const cr_feature *f = &s->features[fi];
        for (int i = 0; i < B; i++) {
            int64_t r = r0 + i;
            cell_at(&cols[fi], r, &v);
            double x = f->default_value;
            if (!v.missing) {
                CR_TRY(cell_number(&v, r, f, e));
                x = v.x;
            }
            char why[200];
            if (!cr_feature_value_ok(f, x, why, sizeof why))
                return cr_err(e, CR_ERR_PARSE, "row %lld, column '%s': %s, got %g",
                              (long long)r, f->column, why, x);
            b->dense[(size_t)i * (size_t)s->n_dense + (size_t)d] = cr_feature_transform(f, x);
        }
    }
    b->B = B;
    return CR_OK;
}

cr_status cr_model_score(const cr_model *m, int64_t n, const char *const *values, float *scores,
                         cr_error *e) {
    if (!m || n < 0 || (n && (!values || !scores)))
        return cr_err(e, CR_ERR_ARG, "cr_model_score: m, values and scores are required, n >= 0");
    int NF = m->s.n_features;
    cr_column *cols = calloc((size_t)NF + 1, sizeof *cols);
    if (!cols) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    /* row-major text: input i of row r is values[r * NF + i] */
    for (int i = 0; i < NF; i++) cols[i] = (cr_column){CR_COL_TEXT, values + i, NF};
    cr_status s = cr_model_score_columns(m, n, cols, scores, e);
    free(cols);
    return s;
}

cr_status cr_model_score_columns(const cr_model *m, int64_t n, const cr_column *columns,
                                 float *scores, cr_error *e) {
    if (!m || n < 0 || (n && (!columns || !scores)))
        return cr_err(e, CR_ERR_ARG, "cr_model_score_columns: m, columns and scores are required, "
                      "n >= 0");
    for (int i = 0; i < m->s.n_features; i++) {
        if ((unsigned)columns[i].type > CR_COL_I32)
            return cr_err(e, CR_ERR_ARG, "columns[%d] ('%s'): unknown type %d", i,
                          m->s.features[i].column, (int)columns[i].type);
        if (n && !columns[i].data)
            return cr_err(e, CR_ERR_ARG, "columns[%d] ('%s'): data is NULL", i, m->s.features[i].column);
        if (columns[i].stride < 0)
            return cr_err(e, CR_ERR_ARG, "columns[%d] ('%s'): negative stride", i, m->s.features[i].column);
    }
    const cr_schema *s = &m->s;
    int chunk = n < CR_SCORE_CHUNK ? (int)(n > 0 ? n : 1) : CR_SCORE_CHUNK;
    int NH = m->r->cfg.n_heads;
    score_buf sb;
    memset(&sb, 0, sizeof sb);
    cr_ranker_ws *ws = NULL;
    float *pred = NULL;
    int32_t *bag_ids[64] = {0};
    size_t bag_cap[64] = {0};
    int64_t *bag_off_ptrs[64];
    int32_t *bag_id_ptrs[64];
    cr_status st = CR_OK;
    if (s->n_multi > 64) return cr_err(e, CR_ERR_LIMIT, "%s: more than 64 multi-valent features", m->path);
    sb.b.max_B = chunk;
    sb.b.n_cat = s->n_cat;
    sb.b.n_multi = s->n_multi;
    sb.b.n_dense = s->n_dense;
    sb.b.n_tasks = s->n_tasks;
    sb.b.bag_off = bag_off_ptrs;
    sb.b.bag_ids = bag_id_ptrs;
    sb.b.cat = malloc(((size_t)chunk * (size_t)s->n_cat + 1) * sizeof(int32_t));
    sb.b.dense = malloc(((size_t)chunk * (size_t)s->n_dense + 1) * sizeof(float));
    sb.b.label = calloc((size_t)chunk * (size_t)s->n_tasks + 1, sizeof(float));
    sb.b.mask = calloc((size_t)chunk * (size_t)s->n_tasks + 1, sizeof(float));
    sb.off = malloc(((size_t)s->n_multi * (CR_SCORE_CHUNK + 1) + 1) * sizeof(int64_t));
    pred = malloc((size_t)NH * (size_t)chunk * sizeof(float));
    if (!sb.b.cat || !sb.b.dense || !sb.b.label || !sb.b.mask || !sb.off || !pred) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory scoring %lld rows", (long long)n);
        goto done;
    }
    if ((st = cr_ranker_ws_create(&ws, m->r, chunk, 0, 0, e))) goto done;
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int B = (int)(n - r0 < chunk ? n - r0 : chunk);
        if ((st = encode(m, &sb, r0, B, columns, bag_ids, bag_cap, e))) goto done;
        if ((st = cr_ranker_forward(m->r, ws, &sb.b, e))) goto done;
        cr_ranker_predict(m->r, ws, pred);
        for (int i = 0; i < B; i++)
            for (int o = 0; o < m->n_out; o++)
                scores[(size_t)(r0 + i) * (size_t)m->n_out + (size_t)o] =
                    pred[(size_t)m->out_head[o] * (size_t)B + (size_t)i];
    }
done:
    for (int q = 0; q < s->n_multi; q++) free(bag_ids[q]);
    cr_ranker_ws_free(ws);
    free(pred);
    free(sb.off);
    free(sb.b.cat);
    free(sb.b.dense);
    free(sb.b.label);
    free(sb.b.mask);
    return st;
}
