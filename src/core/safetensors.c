/*
 * safetensors.c - read and write the checkpoint format: an 8-byte little-
 * endian header length, a JSON header, then raw tensor bytes. The reader
 * maps the file and trusts no count or offset it has not checked against
 * the file's size; the writer never leaves a partial file behind.
 */
#include "core.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Tensor bytes are written and read in host order; the format is little
 * endian, so a big-endian host would need byte swaps this file lacks. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* A header bigger than this is corruption, not a model (the reference
 * implementation uses the same cap). */
#define CR_ST_HEADER_MAX ((uint64_t)100 * 1000 * 1000)
/* JSON numbers are doubles in cJSON: integers above 2^53 are not exact. */
#define CR_ST_INT_MAX 9007199254740992.0

#define CR_ST_HINT "the file may be truncated; re-export it"

size_t cr_dtype_size(cr_dtype dt) {
    switch (dt) {
    case CR_DT_F32: return 4;
    case CR_DT_F16: return 2;
    case CR_DT_BF16: return 2;
    case CR_DT_F64: return 8;
    case CR_DT_I8: return 1;
    case CR_DT_U8: return 1;
    case CR_DT_I32: return 4;
    case CR_DT_I64: return 8;
    }
    CR_ASSERT(0);
    return 0;
}

const char *cr_dtype_name(cr_dtype dt) {
    switch (dt) {
    case CR_DT_F32: return "F32";
    case CR_DT_F16: return "F16";
    case CR_DT_BF16: return "BF16";
    case CR_DT_F64: return "F64";
    case CR_DT_I8: return "I8";
    case CR_DT_U8: return "U8";
    case CR_DT_I32: return "I32";
    case CR_DT_I64: return "I64";
    }
    return "?";
}

static int st_dtype_parse(const char *s, cr_dtype *out) {
    for (int d = CR_DT_F32; d <= CR_DT_I64; d++)
        if (strcmp(s, cr_dtype_name((cr_dtype)d)) == 0) {
            *out = (cr_dtype)d;
            return 1;
        }
    return 0;
}

/* "[64, 32]" */
static void st_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* numel and bytes of a shape, or 0 on overflow. */
static int st_sizes(int ndim, const int64_t *shape, cr_dtype dt, size_t *numel, size_t *nbytes) {
    size_t m = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return 0;
        if (__builtin_mul_overflow(m, (size_t)shape[i], &m)) return 0;
    }
    if (__builtin_mul_overflow(m, cr_dtype_size(dt), nbytes)) return 0;
    *numel = m;
    return 1;
}

/* ---- reader -------------------------------------------------------------- */

/* A JSON number that is a non-negative integer exactly representable. */
static int st_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!isfinite(d) || d < 0 || d > CR_ST_INT_MAX || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static cr_status st_parse_tensor(const cr_st_file *f, const cJSON *j, const uint8_t *base,
                                 size_t data_size, cr_st_tensor *t, cr_error *e) {
    const char *name = j->string;
    memset(t, 0, sizeof *t);
    if (strlen(name) >= CR_MAX_NAME)
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor name '%.60s...' is %zu bytes long (at most %d)",
                      f->path, name, strlen(name), CR_MAX_NAME - 1);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!cJSON_IsObject(j))
        return cr_err(e, CR_ERR_FORMAT,
                      "%s: tensor '%s': expected an object with dtype, shape and data_offsets; %s",
                      f->path, name, CR_ST_HINT);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(dt))
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"; %s",
                      f->path, name, CR_ST_HINT);
    if (!st_dtype_parse(dt->valuestring, &t->dtype))
        return cr_err(e, CR_ERR_FORMAT,
                      "%s: tensor '%s' has dtype '%.40s', which crossrec does not read "
                      "(supported: F32 F16 BF16 F64 I8 U8 I32 I64); convert the tensor",
                      f->path, name, dt->valuestring);
    if (!cJSON_IsArray(sh))
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"; %s",
                      f->path, name, CR_ST_HINT);
    int nd = cJSON_GetArraySize(sh);
    if (nd > CR_MAX_DIMS)
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most %d)", f->path,
                      name, nd, CR_MAX_DIMS);
    t->ndim = nd;
    int i = 0;
    for (const cJSON *d = sh->child; d; d = d->next, i++) {
        uint64_t v;
        if (!st_uint(d, &v))
            return cr_err(e, CR_ERR_FORMAT,
                          "%s: tensor '%s': shape[%d] is not a non-negative integer; %s", f->path,
                          name, i, CR_ST_HINT);
        t->shape[i] = (int64_t)v;
    }
    size_t need;
    char shs[128];
    st_shape_str(shs, sizeof shs, t->ndim, t->shape);
    if (!st_sizes(t->ndim, t->shape, t->dtype, &t->numel, &need))
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s': shape %s overflows the address space; %s",
                      f->path, name, shs, CR_ST_HINT);
    uint64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !st_uint(of->child, &b) ||
        !st_uint(of->child->next, &en))
        return cr_err(e, CR_ERR_FORMAT,
                      "%s: tensor '%s': \"data_offsets\" must be [begin, end] with non-negative "
                      "integers; %s", f->path, name, CR_ST_HINT);
    if (b > en)
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                      "] end before they begin; %s", f->path, name, b, en, CR_ST_HINT);
    if (en > data_size)
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                      "] run past the end of the data (%zu bytes); %s",
                      f->path, name, b, en, data_size, CR_ST_HINT);
    if (en - b != need)
        return cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                      "] hold %" PRIu64 " bytes, but %s %s needs %zu; %s",
                      f->path, name, b, en, en - b, cr_dtype_name(t->dtype), shs, need, CR_ST_HINT);
    t->data = base + b;
    t->nbytes = need;
    return CR_OK;
}

cr_status cr_st_open(cr_st_file *f, const char *path, cr_error *e) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path)
        return cr_err(e, CR_ERR_ARG, "%.200s...: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    cJSON *root = NULL;
    cr_status s = cr_mmap_open(&f->map, path, e);
    if (s != CR_OK) goto fail;
    const uint8_t *d = f->map.data;
    size_t size = f->map.size;
    if (size < 8) {
        s = cr_err(e, CR_ERR_FORMAT,
                   "%s: the file is %zu bytes, too short to hold the 8-byte header length; %s",
                   path, size, CR_ST_HINT);
        goto fail;
    }
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | d[i];
    if (hn > CR_ST_HEADER_MAX) {
        s = cr_err(e, CR_ERR_FORMAT,
                   "%s: header length %" PRIu64 " is over the %" PRIu64 "-byte limit: this is "
                   "not a safetensors file, or it is corrupt", path, hn, CR_ST_HEADER_MAX);
        goto fail;
    }
    if (hn > size - 8) {
        s = cr_err(e, CR_ERR_FORMAT,
                   "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes); %s",
                   path, hn, size, CR_ST_HINT);
        goto fail;
    }
    const char *hdr = (const char *)d + 8, *end = NULL;
    if (hn < 2 || hdr[0] != '{') {
        s = cr_err(e, CR_ERR_FORMAT, "%s: the header does not start with a JSON object; %s", path,
                   CR_ST_HINT);
        goto fail;
    }
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hn, &end, 0);
    if (!root) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: the header is not valid JSON (error near byte %zu of %" PRIu64
                   "); %s", path, end ? (size_t)(end - hdr) : (size_t)0, hn, CR_ST_HINT);
        goto fail;
    }
    /* Only padding (spaces, as the reference writer emits) may follow. */
    for (const char *p = end; p < hdr + hn; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            s = cr_err(e, CR_ERR_FORMAT,
                       "%s: unexpected bytes after the JSON header (at byte %zu of %" PRIu64 "); %s",
                       path, (size_t)(p - hdr), hn, CR_ST_HINT);
            goto fail;
        }
    if (!cJSON_IsObject(root)) {
        s = cr_err(e, CR_ERR_FORMAT, "%s: the header is not a JSON object; %s", path, CR_ST_HINT);
        goto fail;
    }
    const uint8_t *base = d + 8 + hn;
    size_t data_size = size - 8 - (size_t)hn;
    int n = cJSON_GetArraySize(root);
    f->t = calloc((size_t)n + 1, sizeof *f->t);
    if (!f->t) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory for %d tensors", path, n);
        goto fail;
    }
    int seen_meta = 0;
    for (const cJSON *j = root->child; j; j = j->next) {
        if (strcmp(j->string, "__metadata__") == 0) {
            if (seen_meta++ || !cJSON_IsObject(j)) {
                s = cr_err(e, CR_ERR_FORMAT,
                           "%s: \"__metadata__\" must be one object mapping strings to strings; %s",
                           path, CR_ST_HINT);
                goto fail;
            }
            int nm = cJSON_GetArraySize(j);
            f->meta_key = calloc((size_t)nm + 1, sizeof *f->meta_key);
            f->meta_val = calloc((size_t)nm + 1, sizeof *f->meta_val);
            if (!f->meta_key || !f->meta_val) {
                s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory for metadata", path);
                goto fail;
            }
            for (const cJSON *m = j->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    s = cr_err(e, CR_ERR_FORMAT,
                               "%s: __metadata__ entry '%.100s' is not a string (safetensors "
                               "metadata maps strings to strings); %s", path, m->string, CR_ST_HINT);
                    goto fail;
                }
                f->meta_key[f->n_meta] = strdup(m->string);
                f->meta_val[f->n_meta] = strdup(m->valuestring);
                if (!f->meta_key[f->n_meta] || !f->meta_val[f->n_meta]) {
                    f->n_meta++;
                    s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory for metadata", path);
                    goto fail;
                }
                f->n_meta++;
            }
            continue;
        }
        if ((s = st_parse_tensor(f, j, base, data_size, &f->t[f->n], e)) != CR_OK) goto fail;
        for (int k = 0; k < f->n; k++)
            if (strcmp(f->t[k].name, f->t[f->n].name) == 0) {
                s = cr_err(e, CR_ERR_FORMAT, "%s: tensor '%s' appears twice in the header; %s", path,
                           f->t[k].name, CR_ST_HINT);
                goto fail;
            }
        f->n++;
    }
    cJSON_Delete(root);
    return CR_OK;
fail:
    cJSON_Delete(root);
    cr_st_close(f);
    return s;
}

const cr_st_tensor *cr_st_find(const cr_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *cr_st_meta(const cr_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
    return NULL;
}

cr_status cr_st_expect(const cr_st_file *f, const char *name, cr_dtype dt, int ndim,
                       const int64_t *shape, const cr_st_tensor **out, cr_error *e) {
    if (out) *out = NULL;
    const cr_st_tensor *t = cr_st_find(f, name);
    if (!t)
        return cr_err(e, CR_ERR_NOT_FOUND, "%s: no tensor '%s' (the file holds %d tensors)",
                      f->path, name, f->n);
    if (t->dtype != dt)
        return cr_err(e, CR_ERR_MISMATCH, "%s: tensor '%s' has dtype %s, expected %s", f->path,
                      name, cr_dtype_name(t->dtype), cr_dtype_name(dt));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char have[128], want[128];
        st_shape_str(have, sizeof have, t->ndim, t->shape);
        st_shape_str(want, sizeof want, ndim, shape);
        return cr_err(e, CR_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", f->path, name,
                      have, want);
    }
    if (out) *out = t;
    return CR_OK;
}

void cr_st_close(cr_st_file *f) {
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->meta_key);
    free(f->meta_val);
    free(f->t);
    cr_mmap_close(&f->map);
    memset(f, 0, sizeof *f);
}

/* ---- writer ---------------------------------------------------------------- */

void cr_st_writer_init(cr_st_writer *w) { memset(w, 0, sizeof *w); }

cr_status cr_st_add(cr_st_writer *w, const char *name, cr_dtype dt, int ndim,
                    const int64_t *shape, const void *data, cr_error *e) {
    size_t len = strlen(name);
    if (len == 0 || len >= CR_MAX_NAME || strcmp(name, "__metadata__") == 0)
        return cr_err(e, CR_ERR_ARG, "tensor name '%.100s': must be 1 to %d bytes and not __metadata__",
                      name, CR_MAX_NAME - 1);
    if (ndim < 0 || ndim > CR_MAX_DIMS)
        return cr_err(e, CR_ERR_ARG, "tensor '%s': %d dimensions (0 to %d allowed)", name, ndim,
                      CR_MAX_DIMS);
    if ((unsigned)dt > CR_DT_I64)
        return cr_err(e, CR_ERR_ARG, "tensor '%s': unknown dtype %d", name, (int)dt);
    size_t numel, nbytes;
    if (!st_sizes(ndim, shape, dt, &numel, &nbytes))
        return cr_err(e, CR_ERR_ARG, "tensor '%s': negative or overflowing shape", name);
    if (nbytes && !data) return cr_err(e, CR_ERR_ARG, "tensor '%s': no data", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return cr_err(e, CR_ERR_ARG, "tensor '%s' added twice", name);
    size_t cap = (size_t)w->cap;
    void *p = w->t;
    CR_TRY(cr_grow(&p, &cap, (size_t)w->n + 1, sizeof *w->t, e));
    w->t = p;
    w->cap = (int)cap;
    cr_st_tensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, len + 1); /* copied: callers may build names on the fly */
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->nbytes = nbytes;
    t->data = data; /* borrowed until cr_st_save */
    return CR_OK;
}

/* Adding a key again replaces its value. */
cr_status cr_st_add_meta(cr_st_writer *w, const char *key, const char *value, cr_error *e) {
    char *v = strdup(value);
    if (!v) return cr_err(e, CR_ERR_NOMEM, "out of memory for metadata '%.100s'", key);
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_key[i], key) == 0) {
            free(w->meta_val[i]);
            w->meta_val[i] = v;
            return CR_OK;
        }
    char *k = strdup(key);
    size_t ck = (size_t)w->cap_meta, cv = (size_t)w->cap_meta;
    void *pk = w->meta_key, *pv = w->meta_val;
    cr_status s = k ? CR_OK : cr_err(e, CR_ERR_NOMEM, "out of memory for metadata '%.100s'", key);
    if (s == CR_OK) s = cr_grow(&pk, &ck, (size_t)w->n_meta + 1, sizeof(char *), e);
    w->meta_key = pk;
    if (s == CR_OK) s = cr_grow(&pv, &cv, (size_t)w->n_meta + 1, sizeof(char *), e);
    w->meta_val = pv;
    if (s != CR_OK) {
        free(k);
        free(v);
        return s;
    }
    w->cap_meta = (int)(ck < cv ? ck : cv);
    w->meta_key[w->n_meta] = k;
    w->meta_val[w->n_meta] = v;
    w->n_meta++;
    return CR_OK;
}

/* Integers go in as raw JSON text: cJSON would print them through a double
 * and could switch to exponent notation for large values. */
static cJSON *st_json_u64(uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

/* The header: "__metadata__" first, then the tensors in the order they were
 * added, each with data right after the previous one. */
static char *st_header_json(const cr_st_writer *w) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    if (w->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) goto fail;
        for (int i = 0; i < w->n_meta; i++)
            if (!cJSON_AddStringToObject(m, w->meta_key[i], w->meta_val[i])) goto fail;
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const cr_st_tensor *t = &w->t[i];
        cJSON *o = cJSON_AddObjectToObject(root, t->name);
        cJSON *sh = cJSON_CreateArray(), *of = cJSON_CreateArray();
        if (!o || !cJSON_AddStringToObject(o, "dtype", cr_dtype_name(t->dtype)) ||
            !cJSON_AddItemToObject(o, "shape", sh)) {
            cJSON_Delete(sh);
            cJSON_Delete(of);
            goto fail;
        }
        if (!cJSON_AddItemToObject(o, "data_offsets", of)) {
            cJSON_Delete(of);
            goto fail;
        }
        for (int k = 0; k < t->ndim; k++)
            if (!cJSON_AddItemToArray(sh, st_json_u64((uint64_t)t->shape[k]))) goto fail;
        if (!cJSON_AddItemToArray(of, st_json_u64(off)) ||
            !cJSON_AddItemToArray(of, st_json_u64(off + t->nbytes)))
            goto fail;
        off += t->nbytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return json;
fail:
    cJSON_Delete(root);
    return NULL;
}

cr_status cr_st_save(const cr_st_writer *w, const char *path, cr_error *e) {
    char *json = st_header_json(w);
    if (!json) return cr_err(e, CR_ERR_NOMEM, "%s: out of memory building the header", path);
    /* Pad with spaces so the data starts at a multiple of 8 bytes, as the
     * reference writer does: 8-byte tensors can then be read in place. */
    size_t jl = strlen(json), hn = (jl + 7) & ~(size_t)7;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    static const char spaces[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    cr_atomic_file a;
    cr_status s = cr_atomic_open(&a, path, e);
    if (s != CR_OK) {
        cJSON_free(json);
        return s;
    }
    s = cr_atomic_write(&a, len8, 8, e);
    if (s == CR_OK) s = cr_atomic_write(&a, json, jl, e);
    if (s == CR_OK) s = cr_atomic_write(&a, spaces, hn - jl, e);
    for (int i = 0; s == CR_OK && i < w->n; i++)
        s = cr_atomic_write(&a, w->t[i].data, w->t[i].nbytes, e);
    cJSON_free(json);
    if (s != CR_OK) {
        cr_atomic_abort(&a);
        return s;
    }
    return cr_atomic_commit(&a, e);
}

void cr_st_writer_free(cr_st_writer *w) {
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_key[i]);
        free(w->meta_val[i]);
    }
    free(w->meta_key);
    free(w->meta_val);
    free(w->t);
    memset(w, 0, sizeof *w);
}
