/*
 * model_api.c - the public cr_model_* functions of crossrec.h: load a
 * saved ranker and score rows given as text or typed columns, encoded with
 * the model's own schema by encode.c. The loaded model is never written, so one model serves many
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
} score_buf;

static cr_status encode(const cr_model *m, score_buf *sb, int64_t r0, int B,
                        const cr_column *cols, int32_t **bag_ids, size_t *bag_cap,
                        cr_error *e) {
    const cr_schema *s = &m->s;
    for (int fi = 0; fi < s->n_features; fi++) {
        int q = m->feat_slot[fi] - s->n_cat;
        int64_t *off = q >= 0 && q < s->n_multi ? sb->off + (size_t)q * (CR_SCORE_CHUNK + 1) : NULL;
        CR_TRY(cr_encode_input(m, fi, &cols[fi], r0, B, CR_ENC_ROW, &sb->b, off, bag_ids, bag_cap,
                               NULL, e));
    }
    sb->b.B = B;
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
    for (int i = 0; i < m->s.n_features; i++) CR_TRY(cr_check_column(m, "columns", i, n, &columns[i], e));
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
