/*
 * fuzz_bpe.c - GPT-2 byte-level BPE: with the first byte even, the rest
 * is text for the real GPT-2 tokenizer (data/tokenizers/gpt2) and must
 * round-trip exactly (decode(encode(x)) == x, any bytes); odd, the rest is
 * a pair of tokenizer files (encoder.json, NUL, vocab.bpe) that must load
 * or fail with a message, and a tokenizer that loads must round-trip a
 * fixed text whenever it can encode it.
 */
#include "fuzz_util.h"

#include "../../src/data/bpe.h"

static cr_bpe *gpt2;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("CROSSREC_GPT2_DIR");
    cr_error e = {0};
    if (cr_bpe_load(&gpt2, dir ? dir : "data/tokenizers/gpt2", &e)) {
        fprintf(stderr, "fuzz_bpe: %s (run from the repository root)\n", e.msg);
        abort();
    }
    return 0;
}

/* decode(encode(text)) == text, or encode fails with a message */
static void round_trip(const cr_bpe *b, const char *text, size_t len, int must_encode) {
    int32_t *ids = NULL;
    size_t n = 0, m = 0;
    char *back = NULL;
    cr_error e = {0};
    if (cr_bpe_encode(b, text, len, &ids, &n, &e)) {
        FUZZ_CHECK(!must_encode && e.msg[0]);
        return;
    }
    FUZZ_CHECK(n <= len); /* every token covers a byte at least */
    FUZZ_CHECK(cr_bpe_decode(b, ids, n, &back, &m, &e) == CR_OK);
    FUZZ_CHECK(m == len && memcmp(back, text, len) == 0);
    cr_free(ids);
    cr_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    if (d[0] % 2 == 0) {
        round_trip(gpt2, (const char *)d + 1, n - 1, 1);
        return 0;
    }
    const uint8_t *nul = memchr(d + 1, 0, n - 1);
    size_t a = nul ? (size_t)(nul - d - 1) : n - 1;
    char pe[256], pv[256];
    fuzz_file("encoder.json", d + 1, a, pe, sizeof pe);
    fuzz_file("vocab.bpe", nul ? nul + 1 : d + n, nul ? n - a - 2 : 0, pv, sizeof pv);
    cr_bpe *b = NULL;
    cr_error e = {0};
    if (cr_bpe_load_files(&b, pe, pv, &e)) {
        FUZZ_CHECK(e.msg[0] != 0);
        return 0;
    }
    static const char text[] = "Hello, world! It's 2024 \xc3\xa9t\xc3\xa9   \n\tok";
    round_trip(b, text, sizeof text - 1, 0);
    cr_bpe_free(b);
    return 0;
}
