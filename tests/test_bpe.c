/*
 * test_bpe.c - the tokenizers: GPT-2's byte-level BPE against the committed
 * ids of the JavaScript reference (tests/fixtures/bpe_gpt2_cases.bin, made
 * by tools/gen_bpe_fixture.js), the pre-tokeniser and Unicode classes by
 * hand, the heap encoders against naive rescanning ones, loader errors, the
 * trainer (round trip, compression, determinism, a merge list worked out by
 * hand), and llama2.c's tokenizer.bin with a vocabulary written here.
 */
#include "util/testutil.h"

#include "../src/data/bpe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPT2_DIR "data/tokenizers/gpt2"
#define FIXTURE "tests/fixtures/bpe_gpt2_cases.bin"

/* One state for every test: a temporary directory and GPT-2, loaded once. */
typedef struct {
    char    dir[256];
    char    enc[512], voc[512]; /* dir/encoder.json, dir/vocab.bpe */
    cr_bpe *gpt2;
} fx;

static int group_setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    cr_error e;
    cr_test_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->enc, sizeof f->enc, "%s/encoder.json", f->dir);
    snprintf(f->voc, sizeof f->voc, "%s/vocab.bpe", f->dir);
    if (cr_bpe_load(&f->gpt2, GPT2_DIR, &e) != CR_OK) {
        print_error("%s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state) {
    fx *f = *state;
    cr_test_rmdir(f->dir);
    cr_bpe_free(f->gpt2);
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static char *slurp(const char *path, size_t *n) {
    char *buf;
    cr_error e;
    if (cr_read_file(path, &buf, n, &e) != CR_OK) fail_msg("%s", e.msg);
    return buf;
}

/* Compare id lists; on a difference print both and return 0. */
static int same_ids(const char *what, size_t wl, const int32_t *got, size_t n,
                    const int32_t *want, size_t nw) {
    if (n == nw && !memcmp(got, want, n * sizeof *got)) return 1;
    print_error("'%.*s': got", (int)wl, what);
    for (size_t i = 0; i < n; i++) print_error(" %d", got[i]);
    print_error("\n  expected");
    for (size_t i = 0; i < nw; i++) print_error(" %d", want[i]);
    print_error("\n");
    return 0;
}

/* Encode with b (GPT-2) or t (tokenizer.bin, with flags); decoding must
 * give the text back; returns the ids (cr_free). */
static int32_t *encode_rt(const cr_bpe *b, const cr_sp *t, int flags, const void *text,
                          size_t len, size_t *n) {
    int32_t *ids;
    char *back;
    size_t bl;
    cr_error e;
    cr_status s = b ? cr_bpe_encode(b, text, len, &ids, n, &e)
                    : cr_sp_encode(t, text, len, flags, &ids, n, &e);
    if (s != CR_OK) fail_msg("%s", e.msg);
    s = b ? cr_bpe_decode(b, ids, *n, &back, &bl, &e) : cr_sp_decode(t, ids, *n, &back, &bl, &e);
    if (s != CR_OK) fail_msg("%s", e.msg);
    if (bl != len || memcmp(back, text, len))
        fail_msg("'%.*s' does not round-trip", (int)len, (const char *)text);
    cr_free(back);
    return ids;
}

static void expect_enc(const cr_bpe *b, const cr_sp *t, int flags, const char *text, size_t len,
                       const int32_t *want, size_t nw) {
    size_t n;
    int32_t *ids = encode_rt(b, t, flags, text, len, &n);
    if (!same_ids(text, len, ids, n, want, nw)) fail_msg("ids differ for '%.*s'", (int)len, text);
    cr_free(ids);
}
#define EXPECT_ENC(b, t, flags, text, ...)                                                    \
    do {                                                                                      \
        const int32_t w_[] = {__VA_ARGS__};                                                   \
        expect_enc(b, t, flags, text, sizeof(text) - 1, w_, sizeof w_ / sizeof w_[0]);        \
    } while (0)
#define EXPECT_IDS(b, text, ...) EXPECT_ENC(b, NULL, 0, text, __VA_ARGS__)
#define EXPECT_SP(t, text, flags, ...) EXPECT_ENC(NULL, t, flags, text, __VA_ARGS__)

/* ---- the agreement fixture ------------------------------------------------------ */

typedef struct fx_case {
    const uint8_t *text;
    uint32_t       len, n_ids;
    const uint8_t *ids; /* u16 little-endian */
} fx_case;

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Parse the fixture into cases pointing into buf; returns the count. */
static size_t read_fixture(char **buf, fx_case **cases) {
    size_t len;
    *buf = slurp(FIXTURE, &len);
    const uint8_t *d = (const uint8_t *)*buf;
    assert_true(len >= 16 && !memcmp(d, "CRBPEFX1", 8) && rd32(d + 8) == 1);
    size_t n = rd32(d + 12), p = 16;
    *cases = calloc(n, sizeof **cases);
    for (size_t i = 0; i < n; i++) { /* every count checked against the size first */
        fx_case *c = &(*cases)[i];
        assert_true(p + 4 <= len && (c->len = rd32(d + p)) <= len - p - 4);
        c->text = d + p + 4;
        p += 4 + c->len;
        assert_true(p + 4 <= len && (c->n_ids = rd32(d + p)) <= (len - p - 4) / 2);
        c->ids = d + p + 4;
        p += 4 + 2 * (size_t)c->n_ids;
    }
    assert_int_equal(p, len);
    return n;
}

static void test_gpt2_agreement(void **state) {
    fx *f = *state;
    char *buf;
    fx_case *cases;
    size_t n = read_fixture(&buf, &cases), agree = 0, ids_total = 0;
    for (size_t i = 0; i < n; i++) {
        const fx_case *c = &cases[i];
        size_t m;
        int32_t *ids = encode_rt(f->gpt2, NULL, 0, c->text, c->len, &m);
        int32_t *want = malloc((c->n_ids + 1) * sizeof *want);
        for (size_t k = 0; k < c->n_ids; k++) want[k] = c->ids[2 * k] | c->ids[2 * k + 1] << 8;
        if (same_ids((const char *)c->text, c->len, ids, m, want, c->n_ids)) agree++;
        else print_error("  (case %zu differs from the reference)\n", i);
        ids_total += m;
        free(want);
        cr_free(ids);
    }
    print_message("GPT-2 BPE: %zu of %zu fixture strings agree with gpt-3-encoder 1.1.4 "
                  "(%zu ids) and round-trip\n", agree, n, ids_total);
    assert_true(n >= 2000);
    assert_int_equal(agree, n);
    free(cases);
    cr_free(buf);
}

static void test_gpt2_known(void **state) {
    fx *f = *state;
    const cr_bpe *b = f->gpt2;
    size_t len, n = 99;
    assert_true(cr_bpe_vocab_size(b) == 50257 && cr_bpe_n_merges(b) == 50000);
    assert_int_equal(cr_bpe_token_id(b, "<|endoftext|>", 13), 50256);
    assert_true(cr_bpe_token_id(b, "!", 1) == 0 && cr_bpe_token_id(b, " the", 4) == 262);
    assert_int_equal(cr_bpe_token_id(b, "no such token at all", 20), -1);
    assert_memory_equal(cr_bpe_token(b, 995, &len), " world", 6);
    assert_int_equal(len, 6);
    assert_null(cr_bpe_token(b, 50257, &len));
    /* The first merge of vocab.bpe is "Ġ t". */
    assert_int_equal(cr_bpe_merge_rank(b, cr_bpe_token_id(b, " ", 1), cr_bpe_token_id(b, "t", 1)),
                     0);
    EXPECT_IDS(b, "Hello world", 15496, 995);
    EXPECT_IDS(b, "Hello, world!", 15496, 11, 995, 0);
    /* The special token is text to the encoder, as in encoder.py. */
    EXPECT_IDS(b, "<|endoftext|>", 27, 91, 437, 1659, 5239, 91, 29);

    int32_t *ids = NULL;
    cr_error e;
    assert_int_equal(cr_bpe_encode(b, "", 0, &ids, &n, &e), CR_OK);
    assert_true(ids != NULL && n == 0);
    cr_free(ids);
    const int32_t bad[] = {15496, 50257};
    char *text;
    assert_int_equal(cr_bpe_decode(b, bad, 2, &text, &len, &e), CR_ERR_ARG);
    assert_true(text == NULL && strstr(e.msg, "token 1: id 50257"));
}

/* ---- pre-tokeniser and Unicode ------------------------------------------------------- */

static void expect_split(const char *text, const char *const *want, size_t nw) {
    size_t len = strlen(text), k = 0;
    for (size_t p = 0, q; p < len; k++, p = q) {
        q = cr_gpt2_split(text, len, p);
        assert_true(q > p && q <= len);
        if (k >= nw || strlen(want[k]) != q - p || memcmp(want[k], text + p, q - p))
            fail_msg("'%s': piece %zu is '%.*s', expected '%s'", text, k, (int)(q - p), text + p,
                     k < nw ? want[k] : "(none)");
    }
    if (k != nw) fail_msg("'%s': %zu pieces, expected %zu", text, k, nw);
}
#define EXPECT_SPLIT(text, ...)                                                               \
    do {                                                                                      \
        const char *const w_[] = {__VA_ARGS__};                                               \
        expect_split(text, w_, sizeof w_ / sizeof w_[0]);                                     \
    } while (0)

static void test_pretokenize(void **state) {
    (void)state;
    EXPECT_SPLIT("Hello world", "Hello", " world");
    EXPECT_SPLIT("a  b", "a", " ", " b");         /* the last space joins the word */
    EXPECT_SPLIT("a \tb", "a", " ", "\t", "b");   /* a tab is not the optional space */
    EXPECT_SPLIT("a   ", "a", "   ");             /* trailing run kept whole */
    EXPECT_SPLIT("a\n\nb", "a", "\n", "\n", "b");
    EXPECT_SPLIT("a \n b", "a", " \n", " b");
    EXPECT_SPLIT("it's we're I'M", "it", "'s", " we", "'re", " I", "'", "M");
    EXPECT_SPLIT("'sun ''s", "'s", "un", " ''", "s");
    EXPECT_SPLIT("they'll've", "they", "'ll", "'ve");
    EXPECT_SPLIT("x 123 4", "x", " 123", " 4");
    EXPECT_SPLIT("abc123def", "abc", "123", "def");
    EXPECT_SPLIT("Hi!!! ...ok", "Hi", "!!!", " ...", "ok");
    EXPECT_SPLIT("caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87", "caf\xc3\xa9", " \xe4\xb8\xad\xe6\x96\x87");
    /* e + COMBINING ACUTE: the mark is not a letter (Mn). */
    EXPECT_SPLIT("cafe\xcc\x81s", "cafe", "\xcc\x81", "s");
    /* U+00A0 is \s, so it is never the optional prefix. */
    EXPECT_SPLIT("a\xc2\xa0" "b", "a", "\xc2\xa0", "b");
    /* Malformed bytes are "other" and split like punctuation. */
    EXPECT_SPLIT("a\xff\xfe b\x80", "a", "\xff\xfe", " b", "\x80");
    EXPECT_SPLIT(" ", " ");
    EXPECT_SPLIT("  x", " ", " x");
}

static void test_unicode(void **state) {
    (void)state;
    assert_string_equal(cr_uni_version, "14.0.0");
    static const struct {
        uint32_t     cp;
        cr_uni_class c;
    } known[] = {
        /* letters: Lu, Lo ª, Lm ʰ, Lt ǅ, 中, mathematical bold A */
        {'A', CR_UNI_LETTER}, {0xAA, CR_UNI_LETTER}, {0x2B0, CR_UNI_LETTER},
        {0x1C5, CR_UNI_LETTER}, {0x4E2D, CR_UNI_LETTER}, {0x1D400, CR_UNI_LETTER},
        /* marks are not letters: combining acute (Mn), a Devanagari vowel sign (Mc) */
        {0x301, CR_UNI_OTHER}, {0x93F, CR_UNI_OTHER},
        /* numbers: Nd 7 and ٣, Nl Ⅻ, No ½ */
        {'7', CR_UNI_NUMBER}, {0x663, CR_UNI_NUMBER}, {0x216B, CR_UNI_NUMBER}, {0xBD, CR_UNI_NUMBER},
        {0x1F600, CR_UNI_OTHER}, {'_', CR_UNI_OTHER}, {0x10FFFF, CR_UNI_OTHER}, {0, CR_UNI_OTHER},
        /* JavaScript's \s, then look-alikes that are not in it */
        {9, CR_UNI_SPACE}, {13, CR_UNI_SPACE}, {32, CR_UNI_SPACE}, {0xA0, CR_UNI_SPACE},
        {0x1680, CR_UNI_SPACE}, {0x2000, CR_UNI_SPACE}, {0x200A, CR_UNI_SPACE},
        {0x2028, CR_UNI_SPACE}, {0x2029, CR_UNI_SPACE}, {0x202F, CR_UNI_SPACE},
        {0x205F, CR_UNI_SPACE}, {0x3000, CR_UNI_SPACE}, {0xFEFF, CR_UNI_SPACE},
        {0x85, CR_UNI_OTHER}, {0x1C, CR_UNI_OTHER}, {0x1F, CR_UNI_OTHER}, {0x180E, CR_UNI_OTHER},
        {0x200B, CR_UNI_OTHER},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (cr_uni_classify(known[i].cp) != known[i].c)
            fail_msg("U+%04X: class %d, expected %d", (unsigned)known[i].cp,
                     cr_uni_classify(known[i].cp), known[i].c);

    static const struct {
        const char *s;
        size_t      n, len;
        uint32_t    cp;
    } utf8[] = {
        {"\xf0\x9f\x98\x80", 4, 4, 0x1F600},   {"\xf4\x8f\xbf\xbf", 4, 4, 0x10FFFF},
        {"\xf0\x9f\x98", 3, 1, UINT32_MAX},     /* truncated */
        {"\xc0\xaf", 2, 1, UINT32_MAX},          /* overlong */
        {"\xed\xa0\x80", 3, 1, UINT32_MAX},     /* surrogate */
        {"\xf4\x90\x80\x80", 4, 1, UINT32_MAX}, /* above U+10FFFF */
        {"\x80", 1, 1, UINT32_MAX},             {"\xc3\xa9", 2, 2, 0xE9},
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        uint32_t cp;
        assert_int_equal(cr_utf8_next((const uint8_t *)utf8[i].s, utf8[i].n, &cp), utf8[i].len);
        assert_int_equal(cp, utf8[i].cp);
    }

    /* bytes_to_unicode is a bijection onto its 256 characters. */
    int hit[0x144] = {0};
    for (int byte = 0; byte < 256; byte++) {
        uint32_t c = cr_gpt2_byte_to_cp((uint8_t)byte);
        assert_true(c < 0x144 && hit[c]++ == 0 && cr_gpt2_cp_to_byte(c) == byte);
    }
    assert_int_equal(cr_gpt2_byte_to_cp(' '), 0x120);  /* Ġ */
    assert_int_equal(cr_gpt2_byte_to_cp('\n'), 0x10A); /* Ċ */
    assert_int_equal(cr_gpt2_byte_to_cp(0xAD), 0x143);
    assert_int_equal(cr_gpt2_cp_to_byte(0x144), -1);
    assert_int_equal(cr_gpt2_cp_to_byte(' '), -1);
}

/* ---- heap encoder vs the rescanning algorithm of encoder.py ------------------------------ */

/* encoder.py's bpe(): rescan for the lowest rank, merge all of it, repeat. */
static size_t naive_word(const cr_bpe *b, const uint8_t *s, size_t n, int32_t *w) {
    for (size_t i = 0; i < n; i++) w[i] = cr_bpe_token_id(b, (const char *)&s[i], 1);
    for (;;) {
        int32_t best = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t r = cr_bpe_merge_rank(b, w[i], w[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) best = r;
        }
        if (best < 0) return n;
        size_t j = 0;
        for (size_t i = 0; i < n; j++) {
            if (i + 1 < n && cr_bpe_merge_rank(b, w[i], w[i + 1]) == best) {
                size_t la, lb;
                const uint8_t *pa = cr_bpe_token(b, w[i], &la), *pb = cr_bpe_token(b, w[i + 1], &lb);
                uint8_t tmp[4096];
                memcpy(tmp, pa, la);
                memcpy(tmp + la, pb, lb);
                w[j] = cr_bpe_token_id(b, (const char *)tmp, la + lb);
                i += 2;
            } else {
                w[j] = w[i++];
            }
        }
        n = j;
    }
}

static void check_vs_naive(const cr_bpe *b, const uint8_t *s, size_t len) {
    int32_t *w = malloc((len + 1) * sizeof *w);
    size_t n, k = 0;
    int32_t *ids = encode_rt(b, NULL, 0, s, len, &n);
    for (size_t p = 0, q; p < len; p = q) {
        q = cr_gpt2_split((const char *)s, len, p);
        size_t m = naive_word(b, s + p, q - p, w);
        for (size_t i = 0; i < m; i++, k++)
            if (k >= n || ids[k] != w[i]) fail_msg("heap and naive BPE differ at token %zu", k);
    }
    assert_int_equal(k, n);
    cr_free(ids);
    free(w);
}

static void test_gpt2_heap_vs_naive(void **state) {
    fx *f = *state;
    cr_rng r;
    cr_rng_seed(&r, 7);
    uint8_t s[256];
    /* Arbitrary bytes (mostly invalid UTF-8), and ASCII-heavy strings whose
     * pre-tokens are long enough for many overlapping merges. */
    static const char alpha[] = "aaaabeeeeeelllnnsstt  \t\n''!!--..0123";
    for (int it = 0; it < 400; it++) {
        size_t len = 1 + cr_rng_below(&r, sizeof s);
        for (size_t i = 0; i < len; i++)
            s[i] = it % 2 ? (uint8_t)cr_rng_below(&r, 256)
                          : (uint8_t)alpha[cr_rng_below(&r, sizeof alpha - 1)];
        check_vs_naive(f->gpt2, s, len);
    }
    /* A run of one character is one pre-token; the heap keeps it exact
     * and cheap, up to 200,000 bytes. */
    const char runs[] = {' ', '-', 'a', '\n', '0', '!'};
    for (size_t i = 0; i < sizeof runs; i++) {
        memset(s, runs[i], sizeof s);
        check_vs_naive(f->gpt2, s, sizeof s);
    }
    size_t big = 200000, n;
    char *t = malloc(big);
    memset(t, '=', big);
    cr_free(encode_rt(f->gpt2, NULL, 0, t, big, &n));
    assert_true(n > 0 && n < big / 8);
    free(t);
}

/* ---- loader errors ------------------------------------------------------------------------- */

/* A small valid encoder.json: the 256 bytes in GPT-2's spelling (ids in
 * byte order), then extra tokens given as a raw JSON fragment. */
static char *tiny_encoder(const char *extra) {
    size_t cap = 8192 + strlen(extra), n = 1;
    char *js = malloc(cap);
    js[0] = '{';
    for (int byte = 0; byte < 256; byte++) {
        uint32_t cp = cr_gpt2_byte_to_cp((uint8_t)byte);
        char u[8];
        if (cp == '"' || cp == '\\') snprintf(u, sizeof u, "\\%c", (char)cp);
        else if (cp < 0x80) snprintf(u, sizeof u, "%c", (char)cp);
        else snprintf(u, sizeof u, "%c%c", (char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F)));
        n += (size_t)snprintf(js + n, cap - n, "%s\"%s\": %d", byte ? ", " : "", u, byte);
    }
    snprintf(js + n, cap - n, "%s}", extra);
    return js;
}

/* Loading must fail with want_s and a message containing want_msg. The
 * encoder is the tiny one plus extra, or raw_enc when given. */
static void load_fails(fx *f, const char *extra, const char *merges, cr_status want_s,
                       const char *want_msg, const char *raw_enc) {
    char *js = tiny_encoder(extra);
    write_file(f->enc, raw_enc ? raw_enc : js, strlen(raw_enc ? raw_enc : js));
    if (merges) write_file(f->voc, merges, strlen(merges));
    else remove(f->voc);
    free(js);
    cr_bpe *b = (cr_bpe *)1;
    cr_error e = {0};
    cr_status s = cr_bpe_load(&b, f->dir, &e);
    if (s != want_s || !strstr(e.msg, want_msg))
        fail_msg("status %d message '%s'; expected %d with '%s'", s, e.msg, want_s, want_msg);
    assert_null(b);
}

static void test_load_errors(void **state) {
    fx *f = *state;
    cr_bpe *b = NULL;
    cr_error e;
    assert_int_equal(cr_bpe_load(&b, "/nonexistent/tokenizer", &e), CR_ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/tokenizer/encoder.json: cannot open"));

    /* A good tiny tokenizer loads and merges. */
    char *js = tiny_encoder(", \"ab\": 256, \"abc\": 257");
    write_file(f->enc, js, strlen(js));
    free(js);
    write_file(f->voc, "#version: 0.2\na b\nab c\n", 23);
    if (cr_bpe_load(&b, f->dir, &e) != CR_OK) fail_msg("%s", e.msg);
    EXPECT_IDS(b, "abcab", 257, 256);
    cr_bpe_free(b);

    const char *v0 = "#version: 0.2\n", *ab = ", \"ab\": 256";
    load_fails(f, "", v0, CR_ERR_PARSE, "encoder.json:2: not valid JSON", "{\"a\": 0,\n \"b\": }");
    load_fails(f, "", v0, CR_ERR_PARSE, "expected a JSON object", "[1, 2]");
    load_fails(f, "", v0, CR_ERR_FORMAT, "at least 256", "{\"a\": 0}");
    load_fails(f, ", \"ab\": 300", v0, CR_ERR_FORMAT,
               "encoder.json: token 'ab' has id 300; expected an integer in 0..256", NULL);
    load_fails(f, ", \"ab\": \"x\"", v0, CR_ERR_FORMAT, "not a number", NULL);
    load_fails(f, ", \"ab\": 1.5", v0, CR_ERR_FORMAT, "has id 1.5; expected", NULL);
    load_fails(f, ", \"ab\": 5", v0, CR_ERR_FORMAT, "id 5 is given to two tokens (second: 'ab')",
               NULL);
    load_fails(f, ", \"a b\": 256", v0, CR_ERR_FORMAT,
               "contains U+0020, which is not in GPT-2's byte alphabet", NULL);
    load_fails(f, ", \"ab\": 256, \"ab\": 257", v0, CR_ERR_FORMAT,
               "ids 256 and 257 are the same token", NULL);
    load_fails(f, ", \"\": 256", v0, CR_ERR_FORMAT, "token 256 is the empty string", NULL);
    load_fails(f, ab, "#version: 0.2\na b\nab q\nab zz\n", CR_ERR_NOT_FOUND,
               "vocab.bpe:3: merge 'ab q' makes a token that is not in encoder.json", NULL);
    load_fails(f, ab, "#version: 0.2\na b\nab zz\n", CR_ERR_NOT_FOUND,
               "vocab.bpe:3: merge symbol 'zz' is not a token of encoder.json", NULL);
    load_fails(f, ab, "#version: 0.2\na b c\n", CR_ERR_PARSE,
               "vocab.bpe:2: expected two symbols separated by a space, got 3 fields", NULL);
    load_fails(f, ab, "#version: 0.2\n\nab\n", CR_ERR_PARSE, "vocab.bpe:3:", NULL);
    load_fails(f, ab, "#version: 0.2\na \xe2\x82\xac\n", CR_ERR_FORMAT,
               "outside GPT-2's byte alphabet", NULL);
    load_fails(f, "", NULL, CR_ERR_IO, "vocab.bpe: cannot open", NULL);
}

/* ---- trainer ------------------------------------------------------------------------------- */

/* Train on text (written to dir/corpus.txt) into dir with cr_bpe_train_file.
 * n_special < 0 keeps the default specials. */
static cr_status train_text(fx *f, const char *text, int32_t vocab, const char *const *special,
                            int n_special, int32_t *got, cr_error *e) {
    char corpus[600];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", f->dir);
    write_file(corpus, text, strlen(text));
    cr_bpe_train_opts o;
    cr_bpe_train_opts_default(&o);
    o.vocab_size = vocab;
    if (n_special >= 0) {
        o.special = special;
        o.n_special = n_special;
    }
    return cr_bpe_train_file(corpus, &o, f->dir, got, e);
}

static void test_train_by_hand(void **state) {
    fx *f = *state;
    /* "aaabdaaabac": (a,a) x4 merges first, leaving aa a b d aa a b a c;
     * then (aa,a) and (a,b) both count 2 and "a" < "aa" breaks the tie;
     * then (aa,ab) x2; everything else is seen once (< min_frequency). */
    int32_t got;
    cr_error e;
    if (train_text(f, "aaabdaaabac", 300, NULL, 0, &got, &e) != CR_OK) fail_msg("%s", e.msg);
    assert_int_equal(got, 259);
    size_t n;
    char *v = slurp(f->voc, &n);
    assert_string_equal(v, "#version: 0.2\na a\na b\naa ab\n");
    cr_free(v);
    char *js = slurp(f->enc, &n);
    assert_memory_equal(js, "{\"!\": 0, \"\\\"\": 1, \"#\": 2", 24);
    assert_non_null(strstr(js, "\"\xc4\xa0\": 220")); /* space is Ġ, id 220 as in GPT-2 */
    assert_non_null(strstr(js, "\"aaab\": 258}"));
    cr_free(js);

    cr_bpe *b;
    if (cr_bpe_load(&b, f->dir, &e) != CR_OK) fail_msg("%s", e.msg);
    assert_int_equal(cr_bpe_vocab_size(b), 259);
    assert_int_equal(cr_bpe_token_id(b, " ", 1), 220);
    EXPECT_IDS(b, "aaabdaaabac", 258, 67, 258, 64, 66); /* d = 'd'-33, a, c likewise */
    cr_bpe_free(b);

    assert_int_equal(train_text(f, "aaab", 256, NULL, -1, &got, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "vocab_size 256 is too small"));
    const char *sp[] = {"aa"};
    assert_int_equal(train_text(f, "aaab", 400, sp, 1, &got, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "special token 'aa' is also learned token 256"));
}

static void train_fixture(const fx_case *cases, size_t n, int32_t vocab, const char *dir) {
    cr_bpe_trainer *t;
    cr_error e;
    cr_bpe_train_opts o;
    cr_bpe_train_opts_default(&o);
    o.vocab_size = vocab;
    assert_int_equal(cr_bpe_trainer_new(&t, &e), CR_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cr_bpe_trainer_add(t, (const char *)cases[i].text, cases[i].len, &e),
                         CR_OK);
    assert_int_equal(cr_bpe_trainer_save(t, dir, &e), CR_ERR_ARG); /* nothing learned yet */
    if (cr_bpe_trainer_fit(t, &o, &e) != CR_OK) fail_msg("%s", e.msg);
    assert_int_equal(cr_bpe_trainer_vocab_size(t), vocab);
    assert_int_equal(cr_bpe_trainer_add(t, "x", 1, &e), CR_ERR_ARG); /* too late */
    if (cr_bpe_trainer_save(t, dir, &e) != CR_OK) fail_msg("%s", e.msg);
    cr_bpe_trainer_free(t);
}

static void test_train_corpus(void **state) {
    fx *f = *state;
    char *buf;
    fx_case *cases;
    size_t n = read_fixture(&buf, &cases);
    const int32_t vocab = 2048;
    train_fixture(cases, n, vocab, f->dir);

    cr_bpe *b;
    cr_error e;
    if (cr_bpe_load(&b, f->dir, &e) != CR_OK) fail_msg("%s", e.msg);
    assert_int_equal(cr_bpe_vocab_size(b), vocab);
    assert_int_equal(cr_bpe_token_id(b, "<|endoftext|>", 13), vocab - 1);
    size_t bytes = 0, tokens = 0, prose_bytes = 0, prose_tokens = 0, m;
    for (size_t i = 0; i < n; i++) {
        cr_free(encode_rt(b, NULL, 0, cases[i].text, cases[i].len, &m));
        bytes += cases[i].len;
        tokens += m;
        if (i < 1200) { /* the generator's Austen lines come first */
            prose_bytes += cases[i].len;
            prose_tokens += m;
        }
    }
    print_message("trained BPE (%d tokens): %zu bytes -> %zu tokens (%.2f bytes/token; "
                  "English prose %.2f)\n", vocab, bytes, tokens, (double)bytes / (double)tokens,
                  (double)prose_bytes / (double)prose_tokens);
    /* Compression: the whole mix (scripts, emoji, random strings) and, more
     * strongly, the English prose it has seen most of. */
    assert_true(tokens * 2 < bytes);
    assert_true(prose_tokens * 3 < prose_bytes);
    /* Bytes it never saw still round-trip (byte fallback is built in). */
    const char odd[] = "\xff\x00\x01 zebra-quagga \xf0\x9f\xa6\x93!";
    cr_free(encode_rt(b, NULL, 0, odd, sizeof odd - 1, &m));
    cr_bpe_free(b);

    /* Deterministic: a second run writes identical files. */
    char dir2[512];
    snprintf(dir2, sizeof dir2, "%s/again", f->dir);
    train_fixture(cases, n, vocab, dir2);
    for (int k = 0; k < 2; k++) {
        char p2[600];
        snprintf(p2, sizeof p2, "%s/%s", dir2, k ? "vocab.bpe" : "encoder.json");
        size_t n1, n2;
        char *a = slurp(k ? f->voc : f->enc, &n1), *c = slurp(p2, &n2);
        assert_true(n1 == n2 && !memcmp(a, c, n1));
        cr_free(a);
        cr_free(c);
    }
    free(cases);
    cr_free(buf);
}

/* ---- llama2.c tokenizer.bin ------------------------------------------------------------------ */

/* ids 0..2 control, 3..258 <0x00>..<0xFF>, then these. */
static const struct {
    const char *piece;
    float       score;
} sp_extra[] = {
    {" ", -1},     {"a", -1},      {"b", -1},    {"c", -1},     {"h", -1},
    {"e", -1},     {"l", -1},      {"o", -1},    {"ll", 5},     {"llo", 4},
    {"he", 3},     {"hello", 2},   {" hello", 1}, {"ab", 0.5f}, {"bc", 0.5f},
    {"\xc3\xa9", -1}, {" a", 0.2f}, {"abc", 0.1f}, {"z", -1},   {"zz", -1e10f},
    {"aa", 0.5f},  {"ba", 0.5f},   {"ca", 0.5f}, {"aaa", 0.5f}, {"  ", 0.3f},
};
enum { SP_SPACE = 259, SP_A, SP_B, SP_C, SP_H, SP_E, SP_L, SP_O, SP_LL, SP_LLO, SP_HE,
       SP_HELLO, SP_SHELLO, SP_AB, SP_BC, SP_EACUTE, SP_SA, SP_ABC, SP_Z, SP_ZZ, SP_AA,
       SP_BA, SP_CA, SP_AAA, SP_SPACE2 };

static void put_tok(FILE *fp, const char *piece, float score) {
    int32_t l = (int32_t)strlen(piece);
    assert_true(fwrite(&score, 4, 1, fp) == 1 && fwrite(&l, 4, 1, fp) == 1);
    assert_int_equal(fwrite(piece, 1, (size_t)l, fp), (size_t)l);
}

/* Write dir/tokenizer.bin (with_bytes 0: "#XX" placeholders instead of
 * the <0xXX> pieces, same ids) and load it. */
static cr_sp *load_sp(fx *f, int with_bytes) {
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.bin", f->dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    int32_t max_len = 8;
    assert_int_equal(fwrite(&max_len, 4, 1, fp), 1);
    const char *control[] = {"<unk>", "\n<s>\n", "\n</s>\n"}; /* as llama2.c exports them */
    for (int i = 0; i < 3; i++) put_tok(fp, control[i], 0);
    for (int byte = 0; byte < 256; byte++) {
        char p[8];
        snprintf(p, sizeof p, with_bytes ? "<0x%02X>" : "#%02X", byte);
        put_tok(fp, p, 0);
    }
    for (size_t i = 0; i < sizeof sp_extra / sizeof sp_extra[0]; i++)
        put_tok(fp, sp_extra[i].piece, sp_extra[i].score);
    fclose(fp);
    cr_sp *t;
    cr_error e;
    if (cr_sp_load(&t, path, 0, &e) != CR_OK) fail_msg("%s", e.msg);
    return t;
}

static void expect_sp_decode(const cr_sp *t, const char *want, size_t wl, const int32_t *ids,
                             size_t n) {
    char *text;
    size_t len;
    cr_error e;
    assert_int_equal(cr_sp_decode(t, ids, n, &text, &len, &e), CR_OK);
    assert_true(len == wl && !memcmp(text, want, wl));
    cr_free(text);
}
#define EXPECT_SP_DECODE(t, want, ...)                                                        \
    do {                                                                                      \
        const int32_t i_[] = {__VA_ARGS__};                                                   \
        expect_sp_decode(t, want, sizeof(want) - 1, i_, sizeof i_ / sizeof i_[0]);            \
    } while (0)

static void test_sp_known(void **state) {
    fx *f = *state;
    cr_sp *t = load_sp(f, 1);
    assert_true(cr_sp_vocab_size(t) == SP_SPACE2 + 1 && cr_sp_max_token_length(t) == 8);
    assert_int_equal(cr_sp_piece_id(t, "llo", 3), SP_LLO);
    assert_true(cr_sp_score(t, SP_LL) == 5.0f);
    size_t pl;
    assert_string_equal(cr_sp_piece(t, 3 + 0x41, &pl), "<0x41>");

    /* "hello": ll(5), llo(4), he(3), hello(2), then " hello"(1) with the
     * dummy prefix; BOS never merges with anything here. */
    EXPECT_SP(t, "hello", CR_SP_BOS, 1, SP_SHELLO);
    EXPECT_SP(t, "hello", CR_SP_BOS | CR_SP_EOS, 1, SP_SHELLO, 2);
    EXPECT_SP(t, "hello", CR_SP_NO_DUMMY_PREFIX, SP_HELLO);
    /* ab and bc tie at 0.5: the leftmost wins, then abc(0.1) beats " a"
     * which is no longer adjacent. Rightmost would give " a" "bc". */
    EXPECT_SP(t, "abc", 0, SP_SPACE, SP_ABC);
    /* "zz" scores -1e10, which llama2.c never merges. */
    EXPECT_SP(t, "zz", 0, SP_SPACE, SP_Z, SP_Z);
    /* é is a piece; '!' falls back to <0x21>; € (3 bytes) to its bytes. */
    EXPECT_SP(t, "\xc3\xa9!", 0, SP_SPACE, SP_EACUTE, 3 + 0x21);
    EXPECT_SP(t, "\xe2\x82\xac", 0, SP_SPACE, 3 + 0xE2, 3 + 0x82, 3 + 0xAC);
    /* Malformed UTF-8 goes byte by byte. */
    EXPECT_SP(t, "\xff\xfe", 0, SP_SPACE, 3 + 0xFF, 3 + 0xFE);
    /* Leading spaces: "  " (0.3) beats " a" (0.2). */
    EXPECT_SP(t, " a", 0, SP_SPACE2, SP_A);
    /* Empty text: no dummy prefix, only BOS/EOS. */
    EXPECT_SP(t, "", CR_SP_BOS | CR_SP_EOS, 1, 2);
    int32_t *ids;
    size_t n = 9;
    cr_error e;
    assert_true(cr_sp_encode(t, "", 0, 0, &ids, &n, &e) == CR_OK && n == 0);
    cr_free(ids);

    EXPECT_SP_DECODE(t, "hello", 1, SP_SHELLO, 2);
    EXPECT_SP_DECODE(t, "\xc3\xa9!", SP_SPACE, SP_EACUTE, 3 + 0x21);
    EXPECT_SP_DECODE(t, "hello hellohello", SP_SHELLO, SP_SHELLO, 1, SP_SHELLO);
    const int32_t bad[] = {SP_A, 9999};
    char *text;
    assert_int_equal(cr_sp_decode(t, bad, 2, &text, &pl, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "token 1: id 9999"));
    cr_sp_free(t);

    /* Without <0xXX> pieces, an unknown character is an error. */
    t = load_sp(f, 0);
    assert_int_equal(cr_sp_encode(t, "a!", 2, 0, &ids, &n, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no <0x21> byte-fallback token"));
    cr_sp_free(t);
}

/* run.c's encode, literally: rescan every pair per merge. */
static size_t sp_naive(const cr_sp *t, const char *text, size_t len, int32_t *out) {
    size_t n = 0;
    if (len) out[n++] = cr_sp_piece_id(t, " ", 1);
    for (size_t i = 0, k; i < len; i += k) {
        for (k = 1; i + k < len && k < 4 && ((uint8_t)text[i + k] & 0xC0) == 0x80;) k++;
        int32_t id = cr_sp_piece_id(t, text + i, k);
        for (size_t j = 0; j < (id >= 0 ? 1 : k); j++)
            out[n++] = id >= 0 ? id : (uint8_t)text[i + j] + 3;
    }
    for (;;) {
        float best = -1e10f;
        int32_t best_id = -1;
        size_t best_i = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            char buf[64];
            size_t la, lb;
            const char *pa = cr_sp_piece(t, out[i], &la), *pb = cr_sp_piece(t, out[i + 1], &lb);
            memcpy(buf, pa, la);
            memcpy(buf + la, pb, lb);
            int32_t id = cr_sp_piece_id(t, buf, la + lb);
            if (id >= 0 && cr_sp_score(t, id) > best) {
                best = cr_sp_score(t, id);
                best_id = id;
                best_i = i;
            }
        }
        if (best_id < 0) return n;
        out[best_i] = best_id;
        memmove(out + best_i + 1, out + best_i + 2, (n - best_i - 2) * sizeof *out);
        n--;
    }
}

static void test_sp_heap_vs_naive(void **state) {
    fx *f = *state;
    cr_sp *t = load_sp(f, 1);
    static const char *const alpha[] = {"a", "b", "c", "h", "e", "l", "o", "z", " ",
                                        "\xc3\xa9", "\xe2\x82\xac", "\xff", "!", "ll"};
    cr_rng r;
    cr_rng_seed(&r, 11);
    char text[256];
    int32_t want[300];
    for (int it = 0; it < 500; it++) {
        size_t len = 0, parts = 1 + cr_rng_below(&r, 40), n;
        for (size_t k = 0; k < parts; k++) {
            const char *p = alpha[cr_rng_below(&r, sizeof alpha / sizeof alpha[0])];
            memcpy(text + len, p, strlen(p));
            len += strlen(p);
        }
        size_t nw = sp_naive(t, text, len, want);
        int32_t *ids = encode_rt(NULL, t, 0, text, len, &n);
        if (!same_ids(text, len, ids, n, want, nw))
            fail_msg("heap and run.c-style encodings differ for '%.*s'", (int)len, text);
        cr_free(ids);
    }
    cr_sp_free(t);
}

static void sp_load_fails(fx *f, const void *data, size_t n, const char *want_msg) {
    char path[600];
    snprintf(path, sizeof path, "%s/bad.bin", f->dir);
    write_file(path, data, n);
    cr_sp *t = (cr_sp *)1;
    cr_error e = {0};
    cr_status s = cr_sp_load(&t, path, 0, &e);
    if (s != CR_ERR_FORMAT || !strstr(e.msg, want_msg))
        fail_msg("status %d message '%s'; expected FORMAT with '%s'", s, e.msg, want_msg);
    assert_null(t);
}

static void test_sp_errors(void **state) {
    fx *f = *state;
    cr_sp *t;
    cr_error e;
    assert_int_equal(cr_sp_load(&t, "/nonexistent/tokenizer.bin", 0, &e), CR_ERR_IO);
    sp_load_fails(f, "", 0, "0 bytes");
    int32_t hdr[16] = {0};
    sp_load_fails(f, hdr, 4, "max_token_length is 0");
    hdr[0] = 4;
    sp_load_fails(f, hdr, 4, "0 tokens");
    sp_load_fails(f, hdr, 10, "token 0: record header truncated at byte 4");
    hdr[2] = 9; /* token 0 length 9 > max 4 */
    sp_load_fails(f, hdr, 12, "token 0: length 9; expected 0..4");
    hdr[2] = 4;
    sp_load_fails(f, hdr, 14, "4 bytes of piece run past the end");
    float nan_score = NAN;
    memcpy(&hdr[1], &nan_score, 4);
    sp_load_fails(f, hdr, 16, "score is not a finite number");

    cr_sp_free(load_sp(f, 1));
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.bin", f->dir);
    assert_int_equal(cr_sp_load(&t, path, 32000, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "284 tokens, but the model expects 32000"));
    assert_int_equal(cr_sp_load(&t, path, 284, &e), CR_OK);
    cr_sp_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_agreement),   cmocka_unit_test(test_gpt2_known),
        cmocka_unit_test(test_pretokenize),      cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_gpt2_heap_vs_naive), cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_train_by_hand),    cmocka_unit_test(test_train_corpus),
        cmocka_unit_test(test_sp_known),         cmocka_unit_test(test_sp_heap_vs_naive),
        cmocka_unit_test(test_sp_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
