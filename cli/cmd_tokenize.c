/*
 * cmd_tokenize.c - `crossrec tokenize`: text on stdin to token ids on
 * stdout, ids back to text with --decode, or a new GPT-2-format BPE learned
 * from a corpus with --train. Parsing and printing only; the tokenizers are
 * crossrec.h's cr_tokenizer. Bad values are rejected, never clamped.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void cr_tok_usage(FILE *f) {
    cr_tokenizer_train_opts d;
    cr_tokenizer_train_opts_init(&d);
    fprintf(f,
            "usage: crossrec tokenize --tokenizer DIR|FILE.bin [options] < input\n"
            "       crossrec tokenize --train CORPUS --out DIR [--vocab-size N]\n"
            "\n"
            "Encodes standard input to token ids, printed on one line separated by spaces;\n"
            "with --decode, reads whitespace-separated ids and writes their text exactly\n"
            "(no newline added). The input is encoded as it is, trailing newline included.\n"
            "See docs/tokenizers.md.\n"
            "\n"
            "  --tokenizer PATH      a directory holding encoder.json and vocab.bpe (GPT-2\n"
            "                        byte-level BPE, e.g. data/tokenizers/gpt2), or a\n"
            "                        llama2.c tokenizer.bin file (required to encode/decode)\n"
            "  --decode              ids to text instead of text to ids (default: encode)\n"
            "  --bos                 tokenizer.bin only: prepend BOS, id 1 (default: off)\n"
            "  --eos                 tokenizer.bin only: append EOS, id 2 (default: off)\n"
            "  --no-dummy-prefix     tokenizer.bin only: do not prepend the \" \" that\n"
            "                        llama2.c adds to non-empty text (default: prepend)\n"
            "  --train CORPUS        learn a byte-level BPE from the CORPUS file and write\n"
            "                        encoder.json and vocab.bpe to --out\n"
            "  --out DIR             with --train: output directory (created)\n"
            "  --vocab-size N        with --train: tokens in all, 256 bytes + merges +\n"
            "                        <|endoftext|>, 257 to 1000000 (default %d)\n"
            "  --min-frequency N     with --train: never merge a pair seen fewer than N\n"
            "                        times, N >= 1 (default %lld)\n"
            "  -h, --help            this help\n",
            d.vocab_size, (long long)d.min_frequency);
}

static int cr_tok_fail(const char *msg) {
    fprintf(stderr, "crossrec tokenize: %s\n", msg);
    return 1;
}

static int cr_tok_bad(const char *opt, const char *want, const char *got) {
    fprintf(stderr, "crossrec tokenize: %s: expected %s, got '%s'\n", opt, want, got);
    return 1;
}

static int cr_tok_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* All of stdin; NULL on a read error or out of memory. */
static char *cr_tok_read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, stdin);
        n += k;
        if (k == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Whitespace-separated decimal ids; a word that is not one is an error. */
static int cr_tok_parse_ids(char *text, int32_t **ids, size_t *n) {
    size_t cap = 256;
    *n = 0;
    *ids = malloc(cap * sizeof **ids);
    if (!*ids) return cr_tok_fail("out of memory");
    for (char *w = strtok(text, " \t\r\n"); w; w = strtok(NULL, " \t\r\n")) {
        long v;
        if (cr_tok_parse_long(w, 0, INT32_MAX, &v) != 0) {
            fprintf(stderr, "crossrec tokenize: stdin: token %zu: expected a token id (an "
                    "integer >= 0), got '%s'\n", *n, w);
            return 1;
        }
        if (*n == cap) {
            int32_t *q = realloc(*ids, 2 * cap * sizeof *q);
            if (!q) return cr_tok_fail("out of memory");
            *ids = q;
            cap *= 2;
        }
        (*ids)[(*n)++] = (int32_t)v;
    }
    return 0;
}

static int cr_tok_train(const char *corpus, const char *out, const cr_tokenizer_train_opts *o) {
    cr_error e = {0};
    int32_t vocab = 0;
    if (cr_tokenizer_train(NULL, corpus, o, out, &vocab, &e) != CR_OK) return cr_tok_fail(e.msg);
    printf("wrote %s/encoder.json and %s/vocab.bpe: %d tokens (%d requested)\n", out, out, vocab,
           o->vocab_size);
    return 0;
}

int cr_cli_tokenize(int argc, char **argv) {
    enum { O_BOS = 256, O_EOS, O_NO_PREFIX, O_TRAIN, O_OUT, O_VOCAB, O_MINFREQ };
    static const struct option opts[] = {
        {"tokenizer", required_argument, NULL, 't'},
        {"decode", no_argument, NULL, 'd'},
        {"bos", no_argument, NULL, O_BOS},
        {"eos", no_argument, NULL, O_EOS},
        {"no-dummy-prefix", no_argument, NULL, O_NO_PREFIX},
        {"train", required_argument, NULL, O_TRAIN},
        {"out", required_argument, NULL, O_OUT},
        {"vocab-size", required_argument, NULL, O_VOCAB},
        {"min-frequency", required_argument, NULL, O_MINFREQ},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *tok_path = NULL, *train = NULL, *out = NULL;
    int decode = 0, flags = 0, sp_only = 0, train_only = 0;
    cr_tokenizer_train_opts to;
    cr_tokenizer_train_opts_init(&to);
    long v;
    optind = 1;
    int c;
    while ((c = cr_cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (c) {
        case 't': tok_path = optarg; break;
        case 'd': decode = 1; break;
        case O_BOS: flags |= CR_TOK_BOS; sp_only = 1; break;
        case O_EOS: flags |= CR_TOK_EOS; sp_only = 1; break;
        case O_NO_PREFIX: flags |= CR_TOK_NO_DUMMY_PREFIX; sp_only = 1; break;
        case O_TRAIN: train = optarg; break;
        case O_OUT: out = optarg; train_only = 1; break;
        case O_VOCAB:
            if (cr_tok_parse_long(optarg, 257, 1000000, &v) != 0)
                return cr_tok_bad("--vocab-size", "an integer from 257 to 1000000", optarg);
            to.vocab_size = (int32_t)v;
            train_only = 1;
            break;
        case O_MINFREQ:
            if (cr_tok_parse_long(optarg, 1, INT32_MAX, &v) != 0)
                return cr_tok_bad("--min-frequency", "an integer >= 1", optarg);
            to.min_frequency = v;
            train_only = 1;
            break;
        case 'h': cr_tok_usage(stdout); return 0;
        default:
            fprintf(stderr, "Run 'crossrec tokenize --help' for the options.\n");
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec tokenize: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }

    if (train) {
        if (tok_path || decode || sp_only)
            return cr_tok_fail("--train cannot be combined with --tokenizer, --decode, --bos, "
                               "--eos or --no-dummy-prefix");
        if (!out) return cr_tok_fail("--train needs --out DIR");
        return cr_tok_train(train, out, &to);
    }
    if (train_only) return cr_tok_fail("--out, --vocab-size and --min-frequency need --train");
    if (!tok_path) return cr_tok_fail("--tokenizer DIR|FILE.bin is required (see --help)");

    struct stat st;
    if (stat(tok_path, &st) != 0) {
        fprintf(stderr, "crossrec tokenize: %s: %s\n", tok_path, strerror(errno));
        return 1;
    }
    int is_bpe = S_ISDIR(st.st_mode);
    if (is_bpe && sp_only)
        return cr_tok_fail("--bos, --eos and --no-dummy-prefix apply only to a tokenizer.bin");
    if (decode && (flags & (CR_TOK_BOS | CR_TOK_EOS | CR_TOK_NO_DUMMY_PREFIX)))
        return cr_tok_fail("--bos, --eos and --no-dummy-prefix apply only to encoding");

    cr_error e = {0};
    cr_tokenizer *tok = NULL;
    cr_status s = cr_tokenizer_load(&tok, tok_path, &e);
    if (s != CR_OK) return cr_tok_fail(e.msg);

    int rc = 0;
    size_t len = 0;
    char *in = cr_tok_read_stdin(&len);
    int32_t *ids = NULL;
    char *text = NULL;
    size_t n = 0;
    if (!in) {
        rc = cr_tok_fail(ferror(stdin) ? "stdin: read failed" : "out of memory reading stdin");
        goto done;
    }
    if (decode) {
        rc = cr_tok_parse_ids(in, &ids, &n);
        if (rc) goto done;
        s = cr_tokenizer_decode(tok, ids, n, &text, &len, &e);
        if (s != CR_OK) {
            rc = cr_tok_fail(e.msg);
            goto done;
        }
        if (fwrite(text, 1, len, stdout) != len) rc = cr_tok_fail("stdout: write failed");
    } else {
        s = cr_tokenizer_encode(tok, in, len, flags, &ids, &n, &e);
        if (s != CR_OK) {
            rc = cr_tok_fail(e.msg);
            goto done;
        }
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    if (fflush(stdout) != 0) rc = cr_tok_fail("stdout: write failed");
done:
    if (decode) free(ids);
    else cr_free(ids);
    cr_free(text);
    free(in);
    cr_tokenizer_free(tok);
    return rc;
}
