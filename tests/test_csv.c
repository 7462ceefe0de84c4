/*
 * test_csv.c - the CSV/TSV reader and writer: quoting, line ends, a BOM,
 * rows that straddle the 4 MiB read blocks, every error message, number
 * parsing, and the writer's round trip. Inputs are generated in a tmp dir.
 */
#include "util/testutil.h"

#include "../src/data/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK ((size_t)4 << 20) /* the reader's block size (csv.c CR_CSV_BLOCK) */

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

/* Write text (of length n) to dir/name and return the path. */
static const char *put(fx *f, const char *name, const char *text, size_t n) {
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, n, fp), n);
    fclose(fp);
    return f->path;
}
#define PUTS(f, name, lit) put(f, name, lit, sizeof(lit) - 1)

static void expect_field(cr_csv *c, int col, const char *want) {
    size_t n;
    const char *s = cr_csv_field(c, col, &n);
    if (strlen(want) != n || memcmp(s, want, n) != 0)
        fail_msg("line %lld col %d: got '%s' (len %zu), expected '%s'", (long long)cr_csv_line(c),
                 col, s, n, want);
    assert_int_equal(s[n], 0);
}

static void next_ok(cr_csv *c) {
    cr_error e;
    int done = 1;
    cr_err_clear(&e);
    if (cr_csv_next(c, &done, &e) != CR_OK) fail_msg("%s", e.msg);
    assert_int_equal(done, 0);
}

static void expect_end(cr_csv *c) {
    cr_error e;
    int done = 0;
    assert_int_equal(cr_csv_next(c, &done, &e), CR_OK);
    assert_int_equal(done, 1);
}

/* Open must fail with PARSE and a message containing want. */
static void open_fails(const char *path, const char *want) {
    cr_csv *c = NULL;
    cr_error e;
    cr_err_clear(&e);
    cr_status s = cr_csv_open(&c, path, 0, &e);
    assert_int_not_equal(s, CR_OK);
    assert_null(c);
    if (!strstr(e.msg, want)) fail_msg("message '%s' lacks '%s'", e.msg, want);
}

/* The first failing cr_csv_next must report want. */
static void next_fails(const char *path, const char *want) {
    cr_csv *c = NULL;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, path, 0, &e), CR_OK);
    int done = 0;
    cr_status s;
    while ((s = cr_csv_next(c, &done, &e)) == CR_OK && !done) {}
    assert_int_equal(s, CR_ERR_PARSE);
    if (!strstr(e.msg, want)) fail_msg("message '%s' lacks '%s'", e.msg, want);
    cr_csv_close(c);
}

static void test_basic_quoting(void **state) {
    fx *f = *state;
    const char *p = PUTS(f, "q.csv",
                         "\xEF\xBB\xBFid,name,note\r\n"
                         "1,plain,\r\n"
                         "2,\"a, b\",\"say \"\"hi\"\"\"\r\n"
                         "\n"
                         "3,\"two\nlines\",x\"y\n"
                         "4,\"\",\"\"\"\"\n"
                         "5,last,no newline");
    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, p, 0, &e), CR_OK);
    assert_int_equal(cr_csv_ncols(c), 3);
    assert_string_equal(cr_csv_colname(c, 0), "id"); /* BOM skipped */
    assert_int_equal(cr_csv_find(c, "note"), 2);
    assert_int_equal(cr_csv_find(c, "nope"), -1);
    assert_string_equal(cr_csv_path(c), p);
    next_ok(c);
    assert_int_equal(cr_csv_line(c), 2);
    expect_field(c, 0, "1");
    expect_field(c, 1, "plain");
    expect_field(c, 2, "");
    next_ok(c);
    assert_int_equal(cr_csv_line(c), 3);
    expect_field(c, 1, "a, b");
    expect_field(c, 2, "say \"hi\"");
    next_ok(c); /* the blank line 4 is skipped */
    assert_int_equal(cr_csv_line(c), 5);
    expect_field(c, 1, "two\nlines");
    expect_field(c, 2, "x\"y"); /* a quote inside an unquoted field is literal */
    next_ok(c);
    assert_int_equal(cr_csv_line(c), 7); /* the quoted newline counted */
    expect_field(c, 1, "");
    expect_field(c, 2, "\"");
    next_ok(c);
    assert_int_equal(cr_csv_line(c), 8);
    expect_field(c, 2, "no newline");
    expect_end(c);
    expect_end(c); /* stays at the end */
    cr_csv_close(c);
}

static void test_tsv_and_trailing(void **state) {
    fx *f = *state;
    const char *p = PUTS(f, "t.tsv", "a\tb\n1,5\t\"x\ty\"\n\n\n");
    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, p, 0, &e), CR_OK); /* tab by extension */
    assert_int_equal(cr_csv_ncols(c), 2);
    next_ok(c);
    expect_field(c, 0, "1,5");
    expect_field(c, 1, "x\ty");
    expect_end(c);
    cr_csv_close(c);
    /* An explicit separator wins over the extension. */
    p = PUTS(f, "semi.txt", "a;b\r\n1;2\r\n");
    assert_int_equal(cr_csv_open(&c, p, ';', &e), CR_OK);
    next_ok(c);
    expect_field(c, 1, "2");
    expect_end(c);
    cr_csv_close(c);
    /* A header-only file has no rows. */
    p = PUTS(f, "h.csv", "x,y");
    assert_int_equal(cr_csv_open(&c, p, 0, &e), CR_OK);
    assert_string_equal(cr_csv_colname(c, 1), "y");
    expect_end(c);
    cr_csv_close(c);
}

static void test_errors(void **state) {
    fx *f = *state;
    next_fails(PUTS(f, "ratings.csv",
                    "userId,movieId,rating,timestamp\n1,2,3.5,10\n1,3,4\n"),
               "ratings.csv:3: expected 4 fields (userId,movieId,rating,timestamp), got 3");
    next_fails(PUTS(f, "many.csv", "a,b\n1,2\n1,2,3\n"), "many.csv:3: expected 2 fields (a,b), got 3");
    next_fails(PUTS(f, "unterm.csv", "a,b\n1,2\n3,\"never\nclosed\n4,5\n"),
               "unterm.csv:3:2: unterminated quoted field");
    next_fails(PUTS(f, "unterm2.csv", "a,b\n1,\"x\ny\"\n2,\"open\n"),
               "unterm2.csv:4:2: unterminated");
    next_fails(PUTS(f, "after.csv", "a,b\n\"x\"y,2\n"), "after.csv:2:1: expected a separator");
    open_fails(PUTS(f, "empty.csv", ""), "empty.csv: the file is empty: expected a header row");
    open_fails(PUTS(f, "blank.csv", "\xEF\xBB\xBF\r\n\n"), "the file is empty");
    open_fails(PUTS(f, "dup.csv", "a,b,a\n1,2,3\n"),
               "dup.csv:1: duplicate column name 'a' (columns 1 and 3)");
    open_fails(PUTS(f, "hq.csv", "a,\"b\n"), "hq.csv:1:2: unterminated");
    /* a NUL inside a field (plain or quoted) and CR-only line ends */
    next_fails(PUTS(f, "nul.csv", "a,b\n1,2\n3,x\0y\n"), "nul.csv:3:2: a NUL byte inside the field");
    next_fails(PUTS(f, "nulq.csv", "a,b\n\"p\0\",2\n"), "nulq.csv:2:1: a NUL byte");
    open_fails(PUTS(f, "nulh.csv", "a\0,b\n1,2\n"), "nulh.csv:1:1: a NUL byte");
    open_fails(PUTS(f, "mac.csv", "a,b\r1,2\r3,4\r"), "mac.csv:1: the lines end with a lone CR");
    cr_csv *c = NULL;
    cr_error e;
    snprintf(f->path, sizeof f->path, "%s/missing.csv", f->dir);
    assert_int_equal(cr_csv_open(&c, f->path, 0, &e), CR_ERR_IO);
    assert_non_null(strstr(e.msg, "missing.csv"));
}

/* Parse column col of a one-row file holding text as a double. */
static cr_status one_double(fx *f, const char *text, double *v, int *missing, cr_error *e) {
    char body[256];
    snprintf(body, sizeof body, "id,rating\n7,%s\n", text);
    cr_csv *c;
    assert_int_equal(cr_csv_open(&c, put(f, "n.csv", body, strlen(body)), 0, e), CR_OK);
    next_ok(c);
    cr_status s = cr_csv_double(c, 1, v, missing, e);
    cr_csv_close(c);
    return s;
}

static void double_fails(fx *f, const char *text, const char *want) {
    double v;
    int missing;
    cr_error e;
    cr_err_clear(&e);
    assert_int_equal(one_double(f, text, &v, &missing, &e), CR_ERR_PARSE);
    if (!strstr(e.msg, want)) fail_msg("'%s': message '%s' lacks '%s'", text, e.msg, want);
}

static void test_doubles(void **state) {
    fx *f = *state;
    double v;
    int missing;
    cr_error e;
    assert_int_equal(one_double(f, "3.5", &v, &missing, &e), CR_OK);
    assert_true(v == 3.5 && missing == 0);
    assert_int_equal(one_double(f, " -1e-3 ", &v, &missing, &e), CR_OK);
    assert_true(v == -1e-3);
    assert_int_equal(one_double(f, "1e-400", &v, &missing, &e), CR_OK); /* underflow: kept */
    assert_true(v == 0);
    assert_int_equal(one_double(f, "", &v, &missing, &e), CR_OK);
    assert_int_equal(missing, 1);
    assert_int_equal(one_double(f, "", &v, NULL, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "n.csv:2:2: expected a number in column 'rating', got an empty field"));
    double_fails(f, "abc", "n.csv:2:2: expected a number in column 'rating', got 'abc'");
    double_fails(f, "NaN", "(NaN and infinity are not allowed) in column 'rating', got 'NaN'");
    double_fails(f, "-inf", "got '-inf'");
    double_fails(f, "Infinity", "not allowed");
    double_fails(f, "1e999", "overflow) in column 'rating', got '1e999'");
    double_fails(f, "0x10", "got '0x10'");
    double_fails(f, "1.2.3", "got '1.2.3'");
    double_fails(f, "3.5x", "got '3.5x'");
    double_fails(f, "-", "got '-'");

    /* The fast decimal path must agree with strtod bit for bit. */
    cr_rng r;
    cr_rng_seed(&r, 42);
    char body[64];
    for (int i = 0; i < 300; i++) {
        int digits = 1 + (int)cr_rng_below(&r, 17), dot = (int)cr_rng_below(&r, (uint64_t)digits + 1);
        int k = 0;
        if (cr_rng_below(&r, 2)) body[k++] = '-';
        for (int d = 0; d < digits; d++) {
            if (d == dot && d > 0) body[k++] = '.';
            body[k++] = (char)('0' + cr_rng_below(&r, 10));
        }
        body[k] = 0;
        assert_int_equal(one_double(f, body, &v, NULL, &e), CR_OK);
        assert_true(v == strtod(body, NULL));
    }
}

static void test_int64(void **state) {
    fx *f = *state;
    const char *p = PUTS(f, "i.csv",
                         "userId,x\n"
                         "9223372036854775807,-9223372036854775808\n"
                         "9223372036854775808,12\n"
                         "3.5,+4\n"
                         ",abc\n");
    cr_csv *c;
    cr_error e;
    int64_t v;
    assert_int_equal(cr_csv_open(&c, p, 0, &e), CR_OK);
    next_ok(c);
    assert_int_equal(cr_csv_int64(c, 0, &v, &e), CR_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(cr_csv_int64(c, 1, &v, &e), CR_OK);
    assert_true(v == INT64_MIN);
    next_ok(c);
    assert_int_equal(cr_csv_int64(c, 0, &v, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "i.csv:3:1: expected an integer in the 64-bit range (overflow) "
                                  "in column 'userId', got '9223372036854775808'"));
    next_ok(c);
    assert_int_equal(cr_csv_int64(c, 0, &v, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "i.csv:4:1: expected an integer in column 'userId', got '3.5'"));
    assert_int_equal(cr_csv_int64(c, 1, &v, &e), CR_OK);
    assert_true(v == 4);
    next_ok(c);
    assert_int_equal(cr_csv_int64(c, 0, &v, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "got an empty field"));
    assert_int_equal(cr_csv_int64(c, 1, &v, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "i.csv:5:2: expected an integer in column 'x', got 'abc'"));
    cr_csv_close(c);
}

/* ---- streaming across blocks ---------------------------------------------------- */

/* A random field: plain, or one that must be quoted (separator, quotes,
 * CR, LF). The expected value is what the reader must return. */
static void gen_field(cr_rng *r, char *want, size_t cap, char *raw, size_t rcap) {
    int kind = (int)cr_rng_below(r, 6);
    size_t n = 1 + cr_rng_below(r, 20), k = 0;
    CR_ASSERT(n * 2 + 4 < rcap && n < cap);
    static const char special[] = {',', '"', '\n', '\r', ' '};
    for (size_t i = 0; i < n; i++) {
        char ch = (char)('a' + cr_rng_below(r, 26));
        if (kind == 0 && cr_rng_below(r, 4) == 0) ch = special[cr_rng_below(r, 5)];
        want[i] = ch;
    }
    want[n] = 0;
    if (kind == 5) want[0] = 0; /* empty */
    int quote = kind == 0 || kind == 4 || strpbrk(want, ",\"\r\n") != NULL;
    if (!quote) {
        snprintf(raw, rcap, "%s", want);
        return;
    }
    raw[k++] = '"';
    for (const char *s = want; *s; s++) {
        raw[k++] = *s;
        if (*s == '"') raw[k++] = '"';
    }
    raw[k++] = '"';
    raw[k] = 0;
}

#define NCOL 5

static void test_streaming_random(void **state) {
    fx *f = *state;
    snprintf(f->path, sizeof f->path, "%s/big.csv", f->dir);
    char want[64], raw[128];
    /* Enough rows to cross the 4 MiB block boundary more than once. */
    const int rows = 165000;
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    fputs("c0,c1,c2,c3,c4\n", fp);
    cr_rng r;
    cr_rng_seed(&r, 7);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < NCOL; j++) {
            gen_field(&r, want, sizeof want, raw, sizeof raw);
            fputs(raw, fp);
            fputs(j + 1 < NCOL ? "," : (i % 3 == 0 ? "\r\n" : "\n"), fp);
        }
    }
    long size = ftell(fp);
    fclose(fp);
    if ((size_t)size <= 2 * BLOCK) fail_msg("only %ld bytes", size);

    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, f->path, 0, &e), CR_OK);
    cr_rng_seed(&r, 7);
    for (int i = 0; i < rows; i++) {
        next_ok(c);
        for (int j = 0; j < NCOL; j++) {
            gen_field(&r, want, sizeof want, raw, sizeof raw);
            expect_field(c, j, want);
        }
    }
    expect_end(c);
    cr_csv_close(c);
}

/* Place text so that the block boundary falls split bytes into it. */
static void boundary_case(fx *f, const char *tail, int split, const char *const *want, int nwant) {
    snprintf(f->path, sizeof f->path, "%s/edge.csv", f->dir);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    const char *hdr = "a,b\n";
    fputs(hdr, fp);
    size_t at = strlen(hdr), target = BLOCK - (size_t)split;
    /* Filler rows "x,<n p>\n" (n + 3 bytes): 503-byte rows while more
     * than two remain, then one row of the exact rest (501..1003 bytes). */
    while (at < target) {
        size_t left = target - at, n = left > 1006 ? 500 : left - 3;
        fputs("x,", fp);
        for (size_t i = 0; i < n; i++) fputc('p', fp);
        fputc('\n', fp);
        at += n + 3;
    }
    CR_ASSERT(at == target);
    fputs(tail, fp);
    fclose(fp);

    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, f->path, 0, &e), CR_OK);
    int done = 0;
    for (;;) {
        if (cr_csv_next(c, &done, &e) != CR_OK) fail_msg("%s", e.msg);
        if (done || strcmp(cr_csv_field(c, 0, NULL), "x") != 0) break;
    }
    assert_false(done);
    for (int k = 0; k < nwant; k += 2) {
        if (k) next_ok(c);
        expect_field(c, 0, want[k]);
        expect_field(c, 1, want[k + 1]);
    }
    expect_end(c);
    cr_csv_close(c);
}

static void test_block_boundaries(void **state) {
    fx *f = *state;
    /* The number is how many bytes of the text end the first block. */
    const char *w1[] = {"k", "v", "k2", "v2"};
    boundary_case(f, "k,v\r\nk2,v2\r\n", 4, w1, 4);           /* CR | LF */
    const char *w2[] = {"k", "a\"b", "k2", "v2"};
    boundary_case(f, "k,\"a\"\"b\"\nk2,v2\n", 5, w2, 4);      /* " | " of an escape */
    const char *w3[] = {"k", "ab", "z", "y"};
    boundary_case(f, "k,\"ab\"\nz,y", 6, w3, 4);             /* closing " | LF */
    const char *w4[] = {"k", "a\nb", "z", "y"};
    boundary_case(f, "k,\"a\nb\"\r\nz,y\r\n", 5, w4, 4);     /* quoted LF | b */
    boundary_case(f, "k,\"a\nb\"\r\nz,y\r\n", 7, w4, 4);     /* closing " | CR */
    boundary_case(f, "k,\"a\nb\"\r\nz,y\r\n", 8, w4, 4);     /* CR | LF after a quote */
    boundary_case(f, "k,\"a\nb\"\r\nz,y\r\n", 3, w4, 4);     /* opening " | a */
    const char *w5[] = {"k", "v"};
    boundary_case(f, "k,v\r\n\r\n", 6, w5, 2);               /* CR | LF of a blank line */
}

static void test_huge_field(void **state) {
    fx *f = *state;
    /* One quoted field larger than two blocks forces the buffer to grow. */
    size_t n = 2 * BLOCK + 12345;
    char *body = malloc(n + 64);
    assert_non_null(body);
    size_t k = (size_t)sprintf(body, "a,b\n1,\"");
    for (size_t i = 0; i < n; i++) body[k++] = (i % 1000 == 999) ? '\n' : 'q';
    k += (size_t)sprintf(body + k, "\"\n2,x\n");
    const char *p = put(f, "huge.csv", body, k);
    free(body);
    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, p, 0, &e), CR_OK);
    next_ok(c);
    size_t len;
    const char *s = cr_csv_field(c, 1, &len);
    assert_int_equal(len, n);
    assert_int_equal(s[999], '\n');
    assert_int_equal(s[n - 1], 'q');
    next_ok(c);
    assert_int_equal(cr_csv_line(c), 2 + (int64_t)(n / 1000) + 1);
    expect_field(c, 1, "x");
    expect_end(c);
    cr_csv_close(c);
}

/* ---- writer ----------------------------------------------------------------------- */

static void test_writer_round_trip(void **state) {
    fx *f = *state;
    snprintf(f->path, sizeof f->path, "%s/out.csv", f->dir);
    const char *rows[][3] = {
        {"id", "title", "note"},
        {"1", "American President, The (1995)", ""},
        {"2", "say \"hi\"", "two\nlines"},
        {"3", "cr\rhere", "tab\tok"},
    };
    cr_csv_writer *w;
    cr_error e;
    assert_int_equal(cr_csv_writer_open(&w, f->path, 0, &e), CR_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(cr_csv_write_row(w, 3, rows[i], &e), CR_OK);
    assert_int_equal(cr_csv_writer_commit(w, &e), CR_OK);

    char *text;
    size_t len;
    assert_int_equal(cr_read_file(f->path, &text, &len, &e), CR_OK);
    assert_string_equal(text, "id,title,note\n1,\"American President, The (1995)\",\n"
                              "2,\"say \"\"hi\"\"\",\"two\nlines\"\n3,\"cr\rhere\",tab\tok\n");
    cr_free(text);

    cr_csv *c;
    assert_int_equal(cr_csv_open(&c, f->path, 0, &e), CR_OK);
    for (int i = 1; i < 4; i++) {
        next_ok(c);
        for (int j = 0; j < 3; j++) expect_field(c, j, rows[i][j]);
    }
    expect_end(c);
    cr_csv_close(c);

    /* TSV by extension; a lone empty field survives as "". */
    snprintf(f->path, sizeof f->path, "%s/one.tsv", f->dir);
    assert_int_equal(cr_csv_writer_open(&w, f->path, 0, &e), CR_OK);
    const char *h[] = {"only"}, *empty[] = {""}, *tab[] = {"a\tb"};
    assert_int_equal(cr_csv_write_row(w, 1, h, &e), CR_OK);
    assert_int_equal(cr_csv_write_row(w, 1, empty, &e), CR_OK);
    assert_int_equal(cr_csv_write_row(w, 1, tab, &e), CR_OK);
    assert_int_equal(cr_csv_writer_commit(w, &e), CR_OK);
    assert_int_equal(cr_csv_open(&c, f->path, 0, &e), CR_OK);
    next_ok(c);
    expect_field(c, 0, "");
    next_ok(c);
    expect_field(c, 0, "a\tb");
    expect_end(c);
    cr_csv_close(c);

    /* Abort leaves neither the file nor the temporary. */
    snprintf(f->path, sizeof f->path, "%s/aborted.csv", f->dir);
    assert_int_equal(cr_csv_writer_open(&w, f->path, 0, &e), CR_OK);
    assert_int_equal(cr_csv_write_row(w, 3, rows[0], &e), CR_OK);
    cr_csv_writer_abort(w);
    assert_false(cr_file_exists(f->path));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", f->path, (long)getpid());
    assert_false(cr_file_exists(tmp));
}

static void test_writer_large(void **state) {
    fx *f = *state;
    /* More than the write buffer, through flushes; read back and count. */
    snprintf(f->path, sizeof f->path, "%s/large.csv", f->dir);
    cr_csv_writer *w;
    cr_error e;
    assert_int_equal(cr_csv_writer_open(&w, f->path, ',', &e), CR_OK);
    const char *hdr[] = {"i", "s"};
    assert_int_equal(cr_csv_write_row(w, 2, hdr, &e), CR_OK);
    char num[32], big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[10] = ',';
    for (int i = 0; i < 1000; i++) {
        snprintf(num, sizeof num, "%d", i);
        const char *row[] = {num, big};
        assert_int_equal(cr_csv_write_row(w, 2, row, &e), CR_OK);
    }
    assert_int_equal(cr_csv_writer_commit(w, &e), CR_OK);
    cr_csv *c;
    assert_int_equal(cr_csv_open(&c, f->path, 0, &e), CR_OK);
    for (int i = 0; i < 1000; i++) {
        next_ok(c);
        int64_t v;
        assert_int_equal(cr_csv_int64(c, 0, &v, &e), CR_OK);
        assert_int_equal(v, i);
        expect_field(c, 1, big);
    }
    expect_end(c);
    cr_csv_close(c);
}

/* ---- the bundled MovieLens movies file --------------------------------------------- */

/* Shards partition the rows in order, whatever the count: every row (its
 * fields and its line number) is read by exactly one shard, blank lines,
 * CRLF and quoted fields included, and a file cut inside its header row
 * region or its last byte still works. */
static void test_shards(void **state) {
    fx *f = *state;
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "a,b\n");
    int rows = 0;
    for (int i = 0; i < 120; i++, rows++) {
        if (i % 17 == 3) n += (size_t)snprintf(text + n, sizeof text - n, "\n");
        if (i % 5 == 0) n += (size_t)snprintf(text + n, sizeof text - n, "\"q,%d\",x\r\n", i);
        else n += (size_t)snprintf(text + n, sizeof text - n, "%d,%*d\n", i, 1 + i % 13, i);
    }
    const char *path = put(f, "shards.csv", text, n);
    int64_t all_line[200];
    char all_a[200][16];
    cr_error e = {0};
    cr_csv *c = NULL;
    assert_int_equal(cr_csv_open(&c, path, 0, &e), CR_OK);
    for (int i = 0; i < rows; i++) {
        next_ok(c);
        all_line[i] = cr_csv_line(c);
        snprintf(all_a[i], sizeof all_a[i], "%s", cr_csv_field(c, 0, NULL));
    }
    expect_end(c);
    cr_csv_close(c);
    for (int count = 1; count <= 7; count++) {
        int got = 0;
        for (int k = 0; k < count; k++) {
            assert_int_equal(cr_csv_open(&c, path, 0, &e), CR_OK);
            assert_int_equal(cr_csv_shard(c, k, count, &e), CR_OK);
            int done = 0;
            for (;;) {
                assert_int_equal(cr_csv_next(c, &done, &e), CR_OK);
                if (done) break;
                assert_true(got < rows);
                assert_int_equal(cr_csv_line(c), all_line[got]);
                assert_string_equal(cr_csv_field(c, 0, NULL), all_a[got]);
                got++;
            }
            cr_csv_close(c);
        }
        assert_int_equal(got, rows);
    }
}

static void test_movielens_movies(void **state) {
    (void)state;
    const char *p = "data/movielens/movies.csv"; /* in the repository: never skipped */
    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, p, 0, &e), CR_OK);
    int id = cr_csv_find(c, "movieId"), ti = cr_csv_find(c, "title"), ge = cr_csv_find(c, "genres");
    assert_true(id == 0 && ti == 1 && ge == 2);
    int found = 0, done = 0;
    int64_t rows = 0;
    while (cr_csv_next(c, &done, &e) == CR_OK && !done) {
        rows++;
        int64_t m;
        assert_int_equal(cr_csv_int64(c, id, &m, &e), CR_OK);
        const char *t = cr_csv_field(c, ti, NULL);
        if (m == 1) {
            assert_string_equal(t, "Toy Story (1995)");
            assert_string_equal(cr_csv_field(c, ge, NULL), "Adventure|Animation|Children|Comedy|Fantasy");
            found++;
        } else if (m == 11) {
            assert_string_equal(t, "American President, The (1995)");
            assert_string_equal(cr_csv_field(c, ge, NULL), "Comedy|Drama|Romance");
            found++;
        } else if (m == 51372) {
            assert_string_equal(t, "\"Great Performances\" Cats (1998)");
            found++;
        }
    }
    assert_int_equal(done, 1);
    assert_int_equal(found, 3);
    assert_true(rows > 9000);
    cr_csv_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsv_and_trailing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doubles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shards, setup, teardown),
        cmocka_unit_test(test_movielens_movies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
