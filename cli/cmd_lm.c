/*
 * cmd_lm.c - `crossrec lm`: generate with a decoder language model
 * (llama2.c checkpoint, Hugging Face GPT-2 safetensors or crossrec's own
 * decoder file), printing ids or text; pretrain one on a text corpus from a
 * YAML recipe (`lm train`); measure its perplexity on a text (`lm eval`).
 * Generation and evaluation only read; a llama2.c file is used in place.
 */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void lm_usage(FILE *f) {
    fprintf(f,
            "usage: crossrec lm <command> [options]\n\ncommands:\n"
            "  generate  tokens after a prompt, from a llama2.c, GPT-2 or crossrec decoder\n"
            "  train     pretrain a decoder on a text corpus (docs/lm.md)\n"
            "  eval      perplexity of a decoder on a text file\n"
            "\nRun 'crossrec lm <command> --help' for a command's options and defaults.\n");
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec lm generate --model FILE [options]\n"
            "\n"
            "Generates tokens after a prompt (by default the BOS id alone) and prints\n"
            "them: ids separated by spaces, or text when a tokenizer is given.\n"
            "  --model FILE         llama2.c .bin, GPT-2 .safetensors (config.json beside it,\n"
            "                       or --heads) or a crossrec decoder .safetensors\n"
            "  -n, --steps N        tokens to generate [64]\n"
            "  --greedy             take the most likely token (same as --temperature 0)\n"
            "  --temperature T      sampling temperature, 0 = greedy [1.0]\n"
            "  --top-k K            sample among the K most likely, 0 = all [0]\n"
            "  --top-p P            nucleus sampling mass in (0, 1] [0.9]\n"
            "  --seed S             sampling seed [0]\n"
            "  --prompt-ids \"I ...\" prompt token ids [the BOS id]\n"
            "  --bos ID             the BOS id [a BPE tokenizer's <|endoftext|>, else 1 for\n"
            "                       Llama, vocab-1 for GPT-2]\n"
            "  --prompt TEXT        prompt text (needs --tokenizer; BOS is prepended); with\n"
            "                       BOS it must fit the model's context (max_seq) with -n\n"
            "  --tokenizer PATH     llama2.c tokenizer.bin file, or a GPT-2 BPE directory\n"
            "                       (encoder.json, vocab.bpe); output becomes text (the\n"
            "                       prompt, then its continuation)\n"
            "  --ids                print ids even with a tokenizer\n"
            "  --heads N            GPT-2 head count when there is no config.json\n"
            "  --bf16               multiply by bf16 copies of the weight matrices (inference\n"
            "                       only: about half the time per token; logits move by\n"
            "                       bf16 rounding, so ids may differ) [off: float32]\n"
            "  --help               this text\n");
}

/* "1 2 3" into ids (appended to *n); every entry a whole integer in range. */
static int parse_ids(const char *s, int32_t *out, int cap, int *n, int V) {
    char *end;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\t') s++;
        if (!*s) break;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= V || *n >= cap) return 1;
        out[(*n)++] = (int32_t)v;
        s = end;
    }
    return 0;
}

static int generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"steps", required_argument, 0, 'n'},
        {"greedy", no_argument, 0, 'g'},           {"temperature", required_argument, 0, 't'},
        {"top-k", required_argument, 0, 'k'},      {"top-p", required_argument, 0, 'p'},
        {"seed", required_argument, 0, 's'},       {"prompt-ids", required_argument, 0, 'i'},
        {"bos", required_argument, 0, 'b'},        {"prompt", required_argument, 0, 'P'},
        {"tokenizer", required_argument, 0, 'T'},  {"ids", no_argument, 0, 'I'},
        {"heads", required_argument, 0, 'H'},      {"bf16", no_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    const char *model = NULL, *prompt_ids = NULL, *prompt = NULL, *tokp = NULL;
    long long steps = 64, top_k = 0, seed = 0, bos = -1, heads = 0;
    double temp = 1.0, top_p = 0.9;
    int greedy = 0, want_ids = 0, bf16 = 0, ch;
    const char *cmd = "lm generate";
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "n:", opts)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'm': model = optarg; break;
        case 'n': bad = cr_cli_int(cmd, "--steps", optarg, 1, 1 << 20, &steps); break;
        case 'g': greedy = 1; break;
        case 't': bad = cr_cli_num(cmd, "--temperature", optarg, 0, 100, &temp); break;
        case 'k': bad = cr_cli_int(cmd, "--top-k", optarg, 0, 1 << 30, &top_k); break;
        case 'p': bad = cr_cli_num(cmd, "--top-p", optarg, 1e-9, 1, &top_p); break;
        case 's': bad = cr_cli_int(cmd, "--seed", optarg, 0, INT64_MAX, &seed); break;
        case 'i': prompt_ids = optarg; break;
        case 'b': bad = cr_cli_int(cmd, "--bos", optarg, 0, INT32_MAX, &bos); break;
        case 'P': prompt = optarg; break;
        case 'T': tokp = optarg; break;
        case 'I': want_ids = 1; break;
        case 'H': bad = cr_cli_int(cmd, "--heads", optarg, 1, 1024, &heads); break;
        case 'F': bf16 = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) return 2;
    }
    if (!model || optind != argc) {
        fprintf(stderr, "crossrec %s: %s\n", cmd, model ? "unexpected argument" : "--model is required");
        usage(stderr);
        return 2;
    }
    if (prompt && prompt_ids) {
        fprintf(stderr, "crossrec %s: give --prompt or --prompt-ids, not both\n", cmd);
        return 2;
    }
    if (prompt && !tokp) {
        fprintf(stderr, "crossrec %s: --prompt needs --tokenizer\n", cmd);
        return 2;
    }
    cr_error e = {0};
    cr_lm_load_opts lo;
    cr_lm_load_opts_init(&lo);
    lo.tokenizer = tokp;
    lo.gpt2_heads = (int)heads;
    lo.bf16 = bf16;
    cr_lm *lm = NULL;
    if (cr_lm_load(&lm, model, &lo, &e)) return cr_cli_fail(cmd, &e);
    int V = cr_lm_vocab_size(lm), ctxlen = cr_lm_context_length(lm), rc = 1;
    cr_gen_opts go;
    cr_gen_opts_init(&go);
    go.n_tokens = (int)steps;
    go.temperature = greedy ? 0.0f : (float)temp;
    go.top_k = (int)top_k;
    go.top_p = (float)top_p;
    go.seed = (uint64_t)seed;
    go.bos = (int32_t)bos;
    int32_t *ids = NULL, *out = NULL, *enc = NULL;
    char *text = NULL;
    int n_prompt = 0;
    if (tokp && !want_ids && !prompt_ids) {
        /* text in, text out: the library prepends BOS and decodes */
        if (cr_lm_generate(NULL, lm, prompt ? prompt : "", &go, &text, &e)) goto fail;
        if (prompt) fputs(prompt, stdout); /* the continuation reads on from the prompt */
        fputs(text, stdout);
        printf("\n");
        rc = 0;
        goto done;
    }
    ids = calloc((size_t)ctxlen + 1, sizeof *ids);
    out = calloc((size_t)steps, sizeof *out);
    if (!ids || !out) {
        fprintf(stderr, "crossrec %s: out of memory\n", cmd);
        goto done;
    }
    if (prompt_ids) {
        if (parse_ids(prompt_ids, ids, ctxlen, &n_prompt, V) || !n_prompt) {
            fprintf(stderr, "crossrec %s: --prompt-ids expects 1 to %d ids in [0, %d), got '%s'\n",
                    cmd, ctxlen, V, prompt_ids);
            rc = 2;
            goto done;
        }
    } else {
        /* ids out: BOS (ours, or the model's own) then the prompt's ids */
        size_t n = 0;
        if (prompt && cr_lm_tokenize(lm, prompt, &enc, &n, &e)) goto fail;
        if (n + 1 > (size_t)ctxlen) {
            fprintf(stderr, "crossrec %s: the prompt is %zu tokens (%zu with BOS), longer than the "
                    "model's context of %d tokens (max_seq); shorten it\n", cmd, n, n + 1, ctxlen);
            goto done;
        }
        ids[n_prompt++] = go.bos >= 0 ? go.bos : cr_lm_bos_id(lm);
        for (size_t i = 0; i < n; i++) ids[n_prompt++] = enc[i];
    }
    if (cr_lm_generate_ids(NULL, lm, ids, n_prompt, &go, out, &e)) goto fail;
    if (tokp && !want_ids) {
        if (cr_lm_detokenize(lm, out, (size_t)steps, &text, &e)) goto fail;
        fputs(text, stdout);
        printf("\n");
    } else {
        for (long long i = 0; i < steps; i++) printf(i ? " %d" : "%d", (int)out[i]);
        printf("\n");
    }
    rc = 0;
    goto done;
fail:
    rc = cr_cli_fail(cmd, &e);
done:
    cr_free(text);
    cr_free(enc);
    free(ids);
    free(out);
    cr_lm_free(lm);
    return rc;
}

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: crossrec lm train --config FILE.yaml --out DIR [--resume]\n"
            "\n"
            "Pretrains a decoder language model on a text corpus (recipe and keys:\n"
            "docs/lm.md). Writes DIR/model.safetensors, DIR/train_state.safetensors,\n"
            "DIR/tokens.bin (the corpus as ids), DIR/metrics.json and, with\n"
            "train_tokenizer, DIR/tokenizer/. Progress goes to stderr.\n"
            "  --config FILE        the YAML recipe (required)\n"
            "  --out DIR            output directory (required; created)\n"
            "  --resume             continue from DIR/train_state.safetensors, exactly\n"
            "  --help               this text\n");
}

static int train(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"out", required_argument, 0, 'o'},
                                         {"resume", no_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cfgp = NULL, *out = NULL, *cmd = "lm train";
    int resume = 0, ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'c': cfgp = optarg; break;
        case 'o': out = optarg; break;
        case 'r': resume = 1; break;
        case 'h': train_usage(stdout); return 0;
        default: train_usage(stderr); return 2;
        }
    }
    if (!cfgp || !out || optind != argc) {
        fprintf(stderr, "crossrec %s: %s\n", cmd,
                optind != argc ? "unexpected argument" : "--config and --out are required");
        train_usage(stderr);
        return 2;
    }
    cr_error e = {0};
    cr_lm_train_result r;
    if (cr_lm_pretrain(NULL, cfgp, out, resume, &r, &e)) return cr_cli_fail(cmd, &e);
    printf("step %lld: train loss %.4f, validation loss %.4f, perplexity %.2f -> %s/model.safetensors\n",
           (long long)r.step, r.train_loss, r.valid_loss, r.valid_ppl, out);
    return 0;
}

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: crossrec lm eval --model FILE --tokenizer DIR --text FILE [options]\n"
            "\n"
            "Cross-entropy and perplexity of a decoder on a text, over consecutive\n"
            "windows of --seq-len tokens; each window starts with the tokenizer's\n"
            "<|endoftext|> as BOS when it has one (as `lm train` does).\n"
            "  --model FILE         a decoder checkpoint (as for lm generate)\n"
            "  --tokenizer DIR      GPT-2 BPE directory (encoder.json, vocab.bpe)\n"
            "  --text FILE          the text to score\n"
            "  --seq-len N          tokens per window [the model's max_seq]\n"
            "  --batch B            windows per forward [4]\n"
            "  --max-windows K      score K evenly spaced windows, 0 = all [0]\n"
            "  --threads N          threads, 0 = the usable CPUs [0]\n"
            "  --help               this text\n");
}

static int eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"tokenizer", required_argument, 0, 'T'},
        {"text", required_argument, 0, 'x'},    {"seq-len", required_argument, 0, 'L'},
        {"batch", required_argument, 0, 'B'},   {"max-windows", required_argument, 0, 'K'},
        {"threads", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *tokp = NULL, *text = NULL, *cmd = "lm eval";
    long long seq = 0, batch = 4, maxw = 0, threads = 0;
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'm': model = optarg; break;
        case 'T': tokp = optarg; break;
        case 'x': text = optarg; break;
        case 'L': bad = cr_cli_int(cmd, "--seq-len", optarg, 2, 1 << 20, &seq); break;
        case 'B': bad = cr_cli_int(cmd, "--batch", optarg, 1, 4096, &batch); break;
        case 'K': bad = cr_cli_int(cmd, "--max-windows", optarg, 0, INT64_MAX, &maxw); break;
        case 'j': bad = cr_cli_int(cmd, "--threads", optarg, 0, 1024, &threads); break;
        case 'h': eval_usage(stdout); return 0;
        default: eval_usage(stderr); return 2;
        }
        if (bad) return 2;
    }
    if (!model || !tokp || !text || optind != argc) {
        fprintf(stderr, "crossrec %s: %s\n", cmd,
                optind != argc ? "unexpected argument" : "--model, --tokenizer and --text are required");
        eval_usage(stderr);
        return 2;
    }
    cr_error e = {0};
    cr_lm_load_opts lo;
    cr_lm_load_opts_init(&lo);
    lo.tokenizer = tokp;
    cr_lm *lm = NULL;
    if (cr_lm_load(&lm, model, &lo, &e)) return cr_cli_fail(cmd, &e);
    int max_seq = cr_lm_context_length(lm);
    if (seq == 0) seq = max_seq;
    if (seq > max_seq) {
        fprintf(stderr, "crossrec %s: --seq-len %lld is longer than the model's max_seq %d\n",
                cmd, seq, max_seq);
        cr_lm_free(lm);
        return 2;
    }
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.threads = (int)threads;
    cr_ctx *ctx = NULL;
    cr_lm_eval_opts eo;
    cr_lm_eval_opts_init(&eo);
    eo.seq_len = (int)seq;
    eo.batch = (int)batch;
    eo.max_windows = maxw;
    cr_lm_eval_result r;
    cr_status s = cr_ctx_new(&ctx, &cp, &e);
    if (!s) s = cr_lm_eval(ctx, lm, text, &eo, &r, &e);
    cr_ctx_free(ctx);
    cr_lm_free(lm);
    if (s) return cr_cli_fail(cmd, &e);
    printf("%s: %lld tokens scored (of %lld), loss %.4f, perplexity %.2f\n", text,
           (long long)r.scored, (long long)r.tokens, r.loss, exp(r.loss));
    return 0;
}

int cr_cli_lm(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "generate")) return generate(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "train")) return train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "eval")) return eval(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        lm_usage(stdout);
        return 0;
    }
    static const char *const subs[] = {"generate", "train", "eval"};
    const char *near = argc >= 2 ? cr_cli_suggest(argv[1], subs, 3) : NULL;
    if (argc >= 2) fprintf(stderr, "crossrec lm: unknown command '%s'", argv[1]);
    else fprintf(stderr, "crossrec lm: expected a command: generate, train or eval");
    if (near) fprintf(stderr, "; did you mean '%s'?\n", near);
    else {
        fprintf(stderr, "\n");
        lm_usage(stderr);
    }
    return 2;
}
