/*
 * test_safetensors.c - the checkpoint format: a round trip of every dtype
 * with metadata, a file written by Python (tools/make_st_fixture.py), every
 * kind of corruption (each a CR_ERR_FORMAT naming what is wrong, including
 * every truncation point), and parameter tables saved and loaded.
 */
#include "util/testutil.h"

#include "../src/core/ptable_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/st_reference.safetensors"

typedef struct {
    char dir[256];
    char path[512];
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    cr_test_tmpdir(f->dir, sizeof f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    cr_test_rmdir(f->dir);
    free(f);
    return 0;
}

static const char *tmp_path(fx *f, const char *name) {
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    return f->path;
}

static void put_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

/* A hand-made file: the given header text (padded to 8), then data. */
static void put_st(const char *path, const char *json, const void *data, size_t n) {
    size_t jl = strlen(json), hn = (jl + 7) & ~(size_t)7;
    uint8_t *buf = calloc(1, 8 + hn + n + 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(buf + 8, json, jl);
    memset(buf + 8 + jl, ' ', hn - jl);
    if (n) memcpy(buf + 8 + hn, data, n);
    put_bytes(path, buf, 8 + hn + n);
    free(buf);
}

static void open_fails(const char *path, const char *want) {
    cr_st_file f;
    cr_error e;
    cr_err_clear(&e);
    cr_status s = cr_st_open(&f, path, &e);
    if (s != CR_ERR_FORMAT) fail_msg("%s: status %d (%s), expected CR_ERR_FORMAT", path, s, e.msg);
    if (!strstr(e.msg, want)) fail_msg("message '%s' lacks '%s'", e.msg, want);
    if (!strstr(e.msg, path)) fail_msg("message '%s' does not name the file", e.msg);
    assert_int_equal(f.n, 0); /* a failed open leaves nothing to close */
    assert_null(f.t);
    cr_st_close(&f);
}

static void test_dtypes(void **state) {
    (void)state;
    const char *names[] = {"F32", "F16", "BF16", "F64", "I8", "U8", "I32", "I64"};
    const size_t sizes[] = {4, 2, 2, 8, 1, 1, 4, 8};
    for (int d = CR_DT_F32; d <= CR_DT_I64; d++) {
        assert_string_equal(cr_dtype_name((cr_dtype)d), names[d]);
        assert_int_equal(cr_dtype_size((cr_dtype)d), sizes[d]);
    }
}

static void test_round_trip(void **state) {
    fx *f = *state;
    float f32[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
    uint16_t f16[3] = {0x3c00, 0xb800, 0x7bff}, bf16[2] = {0x3fc0, 0xc010};
    double f64[2] = {1.0 / 3, -1e300};
    int8_t i8[5] = {-128, -1, 0, 1, 127};
    uint8_t u8[3] = {0, 200, 255};
    int32_t i32[2] = {-2147483647 - 1, 2147483647};
    int64_t i64[2] = {INT64_MIN, (int64_t)1 << 50};
    float scalar = 42;
    const int64_t s23[] = {2, 3}, s3[] = {3}, s2[] = {2}, s5[] = {5}, s1111[] = {1, 1, 1, 2},
                  s03[] = {0, 3};
    cr_st_writer w;
    cr_error e;
    cr_st_writer_init(&w);
    /* An odd-sized tensor first, so the later ones start unaligned. */
    assert_int_equal(cr_st_add(&w, "i8", CR_DT_I8, 1, s5, i8, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "f32", CR_DT_F32, 2, s23, f32, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "f16", CR_DT_F16, 1, s3, f16, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "bf16", CR_DT_BF16, 1, s2, bf16, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "f64", CR_DT_F64, 1, s2, f64, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "u8", CR_DT_U8, 1, s3, u8, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "i32", CR_DT_I32, 4, s1111, i32, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "i64", CR_DT_I64, 1, s2, i64, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "scalar", CR_DT_F32, 0, NULL, &scalar, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "empty", CR_DT_F32, 2, s03, NULL, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "f32", CR_DT_F32, 1, s2, f32, &e), CR_ERR_ARG); /* twice */
    assert_int_equal(cr_st_add(&w, "__metadata__", CR_DT_F32, 1, s2, f32, &e), CR_ERR_ARG);
    assert_int_equal(cr_st_add_meta(&w, "schema", "{\"a\": [1, \"x\"]}", &e), CR_OK);
    assert_int_equal(cr_st_add_meta(&w, "epoch", "1", &e), CR_OK);
    assert_int_equal(cr_st_add_meta(&w, "epoch", "3", &e), CR_OK); /* replaces */
    assert_int_equal(cr_st_save(&w, tmp_path(f, "rt.safetensors"), &e), CR_OK);
    cr_st_writer_free(&w);

    cr_st_file sf;
    if (cr_st_open(&sf, f->path, &e) != CR_OK) fail_msg("%s", e.msg);
    assert_int_equal(sf.n, 10);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | sf.map.data[i];
    assert_int_equal((8 + hn) % 8, 0); /* data section 8-aligned, header padded */
    const char *order[] = {"i8", "f32", "f16", "bf16", "f64", "u8", "i32", "i64", "scalar", "empty"};
    for (int i = 0; i < 10; i++) assert_string_equal(sf.t[i].name, order[i]); /* insertion order */
    const struct {
        const char *name;
        cr_dtype dt;
        const void *p;
        size_t nbytes;
    } want[] = {{"i8", CR_DT_I8, i8, 5},         {"f32", CR_DT_F32, f32, 24},
                {"f16", CR_DT_F16, f16, 6},      {"bf16", CR_DT_BF16, bf16, 4},
                {"f64", CR_DT_F64, f64, 16},     {"u8", CR_DT_U8, u8, 3},
                {"i32", CR_DT_I32, i32, 8},      {"i64", CR_DT_I64, i64, 16},
                {"scalar", CR_DT_F32, &scalar, 4}};
    for (int i = 0; i < 9; i++) {
        const cr_st_tensor *t = cr_st_find(&sf, want[i].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, want[i].dt);
        assert_int_equal(t->nbytes, want[i].nbytes);
        assert_memory_equal(t->data, want[i].p, want[i].nbytes);
    }
    const cr_st_tensor *t;
    assert_int_equal(cr_st_expect(&sf, "i32", CR_DT_I32, 4, s1111, &t, &e), CR_OK);
    assert_int_equal(t->numel, 2);
    assert_int_equal(cr_st_expect(&sf, "scalar", CR_DT_F32, 0, NULL, &t, &e), CR_OK);
    assert_int_equal(t->numel, 1);
    assert_int_equal(cr_st_expect(&sf, "empty", CR_DT_F32, 2, s03, &t, &e), CR_OK);
    assert_int_equal(t->numel, 0);
    assert_string_equal(cr_st_meta(&sf, "epoch"), "3");
    assert_string_equal(cr_st_meta(&sf, "schema"), "{\"a\": [1, \"x\"]}");
    assert_null(cr_st_meta(&sf, "nope"));
    assert_int_equal(sf.n_meta, 2);

    /* cr_st_expect explains each kind of mismatch. */
    const int64_t want_shape[] = {3, 3};
    char msg[600];
    assert_int_equal(cr_st_expect(&sf, "f32", CR_DT_F32, 2, want_shape, &t, &e), CR_ERR_SHAPE);
    assert_null(t);
    snprintf(msg, sizeof msg, "%s: tensor 'f32' has shape [2, 3], expected [3, 3]", f->path);
    assert_string_equal(e.msg, msg);
    assert_int_equal(cr_st_expect(&sf, "f32", CR_DT_F32, 1, s3, NULL, &e), CR_ERR_SHAPE);
    assert_non_null(strstr(e.msg, "has shape [2, 3], expected [3]"));
    assert_int_equal(cr_st_expect(&sf, "f32", CR_DT_BF16, 2, s23, NULL, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "tensor 'f32' has dtype F32, expected BF16"));
    assert_int_equal(cr_st_expect(&sf, "tower.0.l0.weight", CR_DT_F32, 2, s23, NULL, &e),
                     CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no tensor 'tower.0.l0.weight'"));
    cr_st_close(&sf);
    cr_st_close(&sf); /* closing twice is harmless */
}

static void test_python_fixture(void **state) {
    fx *f = *state;
    cr_st_file sf;
    cr_error e;
    if (cr_st_open(&sf, FIXTURE, &e) != CR_OK) fail_msg("%s", e.msg);
    assert_int_equal(sf.n, 4);
    assert_string_equal(cr_st_meta(&sf, "format"), "pt");
    assert_string_equal(cr_st_meta(&sf, "producer"), "tools/make_st_fixture.py");

    const int64_t s23[] = {2, 3}, s22[] = {2, 2}, s4[] = {4}, s3[] = {3};
    const cr_st_tensor *t;
    float out[8];
    assert_int_equal(cr_st_expect(&sf, "dense.weight", CR_DT_F32, 2, s23, &t, &e), CR_OK);
    cr_st_to_f32(t, out);
    const float w_dense[] = {0.5f, -1.25f, 3.0f, 1e-3f, -0.0f, 100.0f};
    assert_memory_equal(out, w_dense, sizeof w_dense);
    /* torch's bf16 rounding of 1.5, -2.25, 0.1, 3.14159 */
    assert_int_equal(cr_st_expect(&sf, "emb.weight", CR_DT_BF16, 2, s22, &t, &e), CR_OK);
    cr_st_to_f32(t, out);
    const float w_bf[] = {1.5f, -2.25f, 0.10009765625f, 3.140625f};
    assert_memory_equal(out, w_bf, sizeof w_bf);
    assert_int_equal(cr_st_expect(&sf, "norm.scale", CR_DT_F16, 1, s4, &t, &e), CR_OK);
    cr_st_to_f32(t, out);
    const float w_half[] = {1.0f, -0.5f, 65504.0f, 0x1p-24f};
    assert_memory_equal(out, w_half, sizeof w_half);
    assert_int_equal(cr_st_expect(&sf, "ids", CR_DT_I64, 1, s3, &t, &e), CR_OK);
    int64_t ids[3];
    memcpy(ids, t->data, sizeof ids);
    assert_true(ids[0] == 1 && ids[1] == -2 && ids[2] == ((int64_t)1 << 40));
    cr_st_to_f32(t, out);
    assert_true(out[2] == 0x1p40f);

    /* The C writer given the same tensors writes the same bytes. */
    cr_st_writer w;
    cr_st_writer_init(&w);
    assert_int_equal(cr_st_add_meta(&w, "format", "pt", &e), CR_OK);
    assert_int_equal(cr_st_add_meta(&w, "producer", "tools/make_st_fixture.py", &e), CR_OK);
    for (int i = 0; i < sf.n; i++)
        assert_int_equal(cr_st_add(&w, sf.t[i].name, sf.t[i].dtype, sf.t[i].ndim, sf.t[i].shape,
                                   sf.t[i].data, &e), CR_OK);
    assert_int_equal(cr_st_save(&w, tmp_path(f, "again.safetensors"), &e), CR_OK);
    cr_st_writer_free(&w);
    char *a, *b;
    size_t na, nb;
    assert_int_equal(cr_read_file(FIXTURE, &a, &na, &e), CR_OK);
    assert_int_equal(cr_read_file(f->path, &b, &nb, &e), CR_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    cr_free(a);
    cr_free(b);
    cr_st_close(&sf);
}

static void test_half_conversions(void **state) {
    (void)state;
    /* Every finite half converts exactly: check against the formula. */
    uint16_t h[65536];
    float out[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    cr_st_tensor t = {.dtype = CR_DT_F16, .ndim = 1, .numel = 65536, .data = h};
    cr_st_to_f32(&t, out);
    for (int i = 0; i < 65536; i++) {
        int ex = (i >> 10) & 31, man = i & 1023;
        double v = ex == 0 ? man * 0x1p-24 : (1 + man / 1024.0) * ldexp(1, ex - 15);
        if (i & 0x8000) v = -v;
        if (ex == 31) {
            assert_true(man ? isnan(out[i]) : isinf(out[i]));
            continue;
        }
        if (out[i] != (float)v) fail_msg("half 0x%04x -> %g, expected %g", i, out[i], v);
    }
    /* BF16, F64 and integers from an unaligned buffer. */
    uint8_t raw[1 + 16];
    double d[2] = {0.25, -3};
    memcpy(raw + 1, d, 16);
    t = (cr_st_tensor){.dtype = CR_DT_F64, .ndim = 1, .numel = 2, .data = raw + 1};
    cr_st_to_f32(&t, out);
    assert_true(out[0] == 0.25f && out[1] == -3.0f);
    uint16_t bf = 0xbf80; /* -1 */
    memcpy(raw + 1, &bf, 2);
    t = (cr_st_tensor){.dtype = CR_DT_BF16, .ndim = 1, .numel = 1, .data = raw + 1};
    cr_st_to_f32(&t, out);
    assert_true(out[0] == -1.0f);
    int8_t i8[2] = {-5, 7};
    t = (cr_st_tensor){.dtype = CR_DT_I8, .ndim = 1, .numel = 2, .data = i8};
    cr_st_to_f32(&t, out);
    assert_true(out[0] == -5 && out[1] == 7);
}

/* ---- corruption ------------------------------------------------------------------ */

static const char GOOD[] =
    "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";

static void test_corrupt_headers(void **state) {
    fx *f = *state;
    float d[4] = {1, 2, 3, 4};
    const char *p = tmp_path(f, "bad.safetensors");
    put_st(p, GOOD, d, 12);
    cr_st_file sf;
    cr_error e;
    assert_int_equal(cr_st_open(&sf, p, &e), CR_OK); /* the baseline is valid */
    cr_st_close(&sf);

    put_bytes(p, "", 0);
    open_fails(p, "the file is 0 bytes, too short");
    put_bytes(p, "\x10\0\0\0", 4);
    open_fails(p, "the file is 4 bytes, too short to hold the 8-byte header length; "
                  "the file may be truncated; re-export it");
    uint8_t big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    put_bytes(p, big, 16);
    open_fails(p, "is over the 100000000-byte limit");
    uint8_t past[16] = {64, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    put_bytes(p, past, 16);
    open_fails(p, "header length 64 runs past the end of the file (16 bytes)");

    put_st(p, "{\"a\":{\"dtype\":\"F32\",", d, 12);
    open_fails(p, "the header is not valid JSON");
    put_st(p, "[1, 2]", d, 12);
    open_fails(p, "does not start with a JSON object");
    put_st(p, "{} x", d, 12);
    open_fails(p, "unexpected bytes after the JSON header");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}", d, 12);
    open_fails(p, "tensor 'a': data_offsets [4, 16] run past the end of the data (12 bytes)");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,0]}}", d, 12);
    open_fails(p, "end before they begin");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d, 12);
    open_fails(p, "tensor 'a': data_offsets [0, 8] hold 8 bytes, but F32 [3] needs 12");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "but F32 [2, 2] needs 16");
    put_st(p, "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[3],\"data_offsets\":[0,3]}}", d, 12);
    open_fails(p, "tensor 'a' has dtype 'F8_E4M3', which crossrec does not read");
    put_st(p, "{\"a\":{\"dtype\":4,\"shape\":[3],\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "tensor 'a': missing or non-string \"dtype\"");
    put_st(p, "{\"__metadata__\":{\"epoch\":3},\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
              "\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "__metadata__ entry 'epoch' is not a string");
    put_st(p, "{\"__metadata__\":[\"x\"]}", d, 12);
    open_fails(p, "\"__metadata__\" must be one object mapping strings to strings");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,3],\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "tensor 'a' has 5 dimensions (at most 4)");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "tensor 'a': shape[0] is not a non-negative integer");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "shape[0] is not a non-negative integer");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
              "\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "overflows");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3]}}", d, 12);
    open_fails(p, "\"data_offsets\" must be [begin, end]");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12,24]}}", d, 12);
    open_fails(p, "\"data_offsets\" must be [begin, end]");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,1e300]}}", d, 12);
    open_fails(p, "\"data_offsets\" must be [begin, end]");
    put_st(p, "{\"a\":[1,2]}", d, 12);
    open_fails(p, "tensor 'a': expected an object");
    put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", d, 12);
    open_fails(p, "tensor 'a' appears twice");
    char longname[400];
    memset(longname, 'n', 200);
    longname[200] = 0;
    char json[600];
    snprintf(json, sizeof json, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
             longname);
    put_st(p, json, d, 12);
    open_fails(p, "is 200 bytes long (at most 95)");
    /* A missing file is an I/O error, not a format error. */
    assert_int_equal(cr_st_open(&sf, tmp_path(f, "nope.safetensors"), &e), CR_ERR_IO);
}

/* Every prefix of a valid file must be rejected, and never crash (run
 * under SAN=1 to check that no byte outside the file is read). */
static void test_truncation_everywhere(void **state) {
    fx *f = *state;
    const char *full = tmp_path(f, "full.safetensors");
    float d[5] = {1, 2, 3, 4, 5};
    uint16_t h[3] = {1, 2, 3};
    const int64_t s5[] = {5}, s3[] = {3};
    cr_st_writer w;
    cr_error e;
    cr_st_writer_init(&w);
    assert_int_equal(cr_st_add_meta(&w, "note", "truncate me", &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "x", CR_DT_F32, 1, s5, d, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "y", CR_DT_BF16, 1, s3, h, &e), CR_OK);
    assert_int_equal(cr_st_save(&w, full, &e), CR_OK);
    cr_st_writer_free(&w);
    char *buf;
    size_t n;
    assert_int_equal(cr_read_file(full, &buf, &n, &e), CR_OK);
    char cut[600];
    snprintf(cut, sizeof cut, "%s/cut.safetensors", f->dir);
    for (size_t k = 0; k < n; k++) {
        put_bytes(cut, buf, k);
        cr_st_file sf;
        cr_err_clear(&e);
        cr_status s = cr_st_open(&sf, cut, &e);
        if (s != CR_ERR_FORMAT) fail_msg("cut at %zu of %zu: status %d (%s)", k, n, s, e.msg);
        if (!strstr(e.msg, "truncated")) fail_msg("cut at %zu: message '%s' gives no hint", k, e.msg);
    }
    /* Header cut short at every byte, with the length field kept consistent:
     * cJSON must stop at the given length. */
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | (uint8_t)buf[i];
    for (size_t k = 1; k < hn; k++) {
        char *b2 = malloc(8 + k);
        for (int i = 0; i < 8; i++) b2[i] = (char)((uint64_t)k >> (8 * i));
        memcpy(b2 + 8, buf + 8, k);
        put_bytes(cut, b2, 8 + k);
        free(b2);
        cr_st_file sf;
        cr_status s = cr_st_open(&sf, cut, &e);
        /* A prefix ending inside the padding is still a valid header whose
         * tensors then point past the (absent) data. */
        if (s != CR_ERR_FORMAT) fail_msg("header cut at %zu: status %d (%s)", k, s, e.msg);
    }
    cr_free(buf);
}

/* ---- parameter tables ------------------------------------------------------------- */

static void build_table(cr_ptable *pt, int64_t hidden) {
    cr_ptable_init(pt);
    const int64_t w[2] = {hidden, 3}, b[1] = {hidden}, emb[2] = {7, 4};
    assert_true(cr_ptable_add(pt, "l0.weight", 2, w, 0) >= 0);
    assert_true(cr_ptable_add(pt, "l0.bias", 1, b, CR_PARAM_NO_DECAY) >= 0);
    assert_true(cr_ptable_add(pt, "emb", 2, emb, CR_PARAM_SPARSE) >= 0);
    assert_int_equal(cr_ptable_alloc(pt, NULL), CR_OK);
}

static void test_ptable_io(void **state) {
    fx *f = *state;
    cr_ptable a, b;
    cr_error e;
    build_table(&a, 5);
    cr_test_fill(a.data, a.total, 1.0f, 11);
    cr_st_writer w;
    cr_st_writer_init(&w);
    assert_int_equal(cr_ptable_to_st(&a, a.data, "model.", &w, &e), CR_OK);
    assert_string_equal(w.t[0].name, "model.l0.weight"); /* names copied into the writer */
    assert_int_equal(cr_st_save(&w, tmp_path(f, "m.safetensors"), &e), CR_OK);
    cr_st_writer_free(&w);

    cr_st_file sf;
    assert_int_equal(cr_st_open(&sf, f->path, &e), CR_OK);
    assert_int_equal(sf.n, 3);
    build_table(&b, 5);
    if (cr_ptable_from_st(&b, b.data, "model.", &sf, 0, &e) != CR_OK) fail_msg("%s", e.msg);
    for (int i = 0; i < a.n; i++)
        assert_memory_equal(cr_ptable_ptr(&a, a.data, i), cr_ptable_ptr(&b, b.data, i),
                            a.t[i].numel * sizeof(float));
    /* Wrong prefix: every tensor missing. */
    assert_int_equal(cr_ptable_from_st(&b, b.data, "other.", &sf, 0, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no tensor 'other.l0.weight'"));
    assert_int_equal(cr_ptable_from_st(&b, b.data, "other.", &sf, 1, &e), CR_OK);
    cr_ptable_free(&b);

    /* A table with one more tensor: missing unless allowed, and then kept. */
    cr_ptable c;
    cr_ptable_init(&c);
    const int64_t w53[2] = {5, 3}, b5[1] = {5}, e74[2] = {7, 4}, x2[1] = {2};
    cr_ptable_add(&c, "l0.weight", 2, w53, 0);
    cr_ptable_add(&c, "l0.bias", 1, b5, 0);
    cr_ptable_add(&c, "emb", 2, e74, 0);
    int xi = cr_ptable_add(&c, "extra", 1, x2, 0);
    assert_int_equal(cr_ptable_alloc(&c, &e), CR_OK);
    float *x = cr_ptable_ptr(&c, c.data, xi);
    x[0] = 9, x[1] = 8;
    assert_int_equal(cr_ptable_from_st(&c, c.data, "model.", &sf, 0, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no tensor 'model.extra'"));
    assert_true(c.data[0] == 0); /* nothing copied before the error */
    assert_int_equal(cr_ptable_from_st(&c, c.data, "model.", &sf, 1, &e), CR_OK);
    assert_true(c.data[0] == a.data[0] && x[0] == 9 && x[1] == 8);
    cr_ptable_free(&c);

    /* A different shape is refused and the slab left alone. */
    build_table(&b, 6);
    assert_int_equal(cr_ptable_from_st(&b, b.data, "model.", &sf, 0, &e), CR_ERR_SHAPE);
    assert_non_null(strstr(e.msg, "tensor 'model.l0.weight' has shape [5, 3], expected [6, 3]"));
    for (size_t i = 0; i < b.total; i++) assert_true(b.data[i] == 0);
    cr_ptable_free(&b);
    cr_st_close(&sf);

    /* BF16 and F64 checkpoints load converted; integers are refused. */
    uint16_t bf[15];
    double f64[28];
    for (int i = 0; i < 15; i++) bf[i] = (uint16_t)(0x3f80 + i); /* 1, 1.0078125, ... */
    for (int i = 0; i < 28; i++) f64[i] = i * 0.5;
    float bias[5] = {1, 2, 3, 4, 5};
    const int64_t w53b[2] = {5, 3}, b5b[1] = {5}, e74b[2] = {7, 4};
    cr_st_writer_init(&w);
    assert_int_equal(cr_st_add(&w, "l0.weight", CR_DT_BF16, 2, w53b, bf, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "l0.bias", CR_DT_F32, 1, b5b, bias, &e), CR_OK);
    assert_int_equal(cr_st_add(&w, "emb", CR_DT_F64, 2, e74b, f64, &e), CR_OK);
    assert_int_equal(cr_st_save(&w, tmp_path(f, "mixed.safetensors"), &e), CR_OK);
    cr_st_writer_free(&w);
    assert_int_equal(cr_st_open(&sf, f->path, &e), CR_OK);
    build_table(&b, 5);
    assert_int_equal(cr_ptable_from_st(&b, b.data, NULL, &sf, 0, &e), CR_OK);
    assert_true(b.data[b.t[0].offset + 1] == 1.0078125f);
    assert_true(b.data[b.t[1].offset + 4] == 5.0f);
    assert_true(b.data[b.t[2].offset + 27] == 13.5f);
    cr_ptable_free(&b);
    cr_st_close(&sf);

    int32_t ints[15] = {0};
    cr_st_writer_init(&w);
    assert_int_equal(cr_st_add(&w, "l0.weight", CR_DT_I32, 2, w53b, ints, &e), CR_OK);
    assert_int_equal(cr_st_save(&w, tmp_path(f, "ints.safetensors"), &e), CR_OK);
    cr_st_writer_free(&w);
    assert_int_equal(cr_st_open(&sf, f->path, &e), CR_OK);
    build_table(&b, 5);
    assert_int_equal(cr_ptable_from_st(&b, b.data, "", &sf, 1, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "tensor 'l0.weight' has dtype I32, expected a float type"));
    cr_ptable_free(&b);
    cr_st_close(&sf);

    /* A prefix that makes a name too long is an error, not a truncation. */
    char prefix[120];
    memset(prefix, 'p', 100);
    prefix[100] = 0;
    cr_st_writer_init(&w);
    assert_int_equal(cr_ptable_to_st(&a, a.data, prefix, &w, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "name longer than 95 bytes"));
    cr_st_writer_free(&w);
    cr_ptable_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_fixture, setup, teardown),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test_setup_teardown(test_corrupt_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ptable_io, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
